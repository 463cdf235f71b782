//! Errors of the version layer: refs, manifests, commits.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("unknown ref '{name}'{}", candidates_hint(.candidates))]
    UnknownRef {
        name: String,
        candidates: Vec<String>,
    },
    #[error("ref '{name}' is ambiguous: it matches {}", .candidates.join(", "))]
    AmbiguousRef {
        name: String,
        candidates: Vec<String>,
    },
    #[error("'{0}' is not a branch")]
    NotABranch(String),
    #[error("{kind} '{name}' already exists")]
    RefExists { kind: &'static str, name: String },
    #[error("invalid name '{name}': {why}")]
    BadName { name: String, why: &'static str },
    #[error("nothing to commit: the working set of branch '{0}' has no changes")]
    NothingToCommit(String),
    #[error("corrupt manifest node {id}: {detail}")]
    BadNode { id: String, detail: String },
    #[error("table '{table}': {detail}")]
    Table { table: String, detail: String },
    /// A row a user wrote breaks a rule of its table; `code` is the SQLSTATE.
    #[error("{message}")]
    Constraint {
        code: &'static str,
        message: String,
        detail: Option<String>,
    },
}

fn candidates_hint(c: &[String]) -> String {
    if c.is_empty() {
        String::new()
    } else {
        format!(" (known refs: {})", c.join(", "))
    }
}

pub type Result<T> = std::result::Result<T, VersionError>;
