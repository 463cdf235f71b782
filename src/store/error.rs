//! Errors of the storage layer (chunks, packs, metadata KV).
//! Every variant carries the path or id a user needs to find the problem.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no bagbase store at {0} — run 'bagbase init'")]
    NoStore(PathBuf),
    #[error("a bagbase store already exists at {0}")]
    AlreadyExists(PathBuf),
    #[error("the store at {dir} is in use by process {pid} (one writer at a time); stop it or query through its server")]
    Locked { dir: PathBuf, pid: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("metadata store: {0}")]
    Meta(String),
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: String, detail: String },
    #[error("chunk {0} is not in the store")]
    MissingChunk(String),
    #[error(
        "store format version {found} is not supported (this build reads versions 1 to {supported})"
    )]
    UnsupportedFormat { found: u32, supported: u32 },
    #[error("invalid store configuration: {0}")]
    Config(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Attaches a path to an io::Error.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| StoreError::Io {
            path: path.into(),
            source,
        })
    }
}
