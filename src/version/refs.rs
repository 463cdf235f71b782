//! Branches (`r/b/<name>`), tags (`r/t/<name>`) and working sets (`w/<branch>`), and
//! resolving what a user types — a branch, a tag, a version id or a unique prefix of
//! at least 7 hex digits — to a version.

use super::error::{Result, VersionError};
use super::record::{self, VERSION_PREFIX};
use crate::store::{Id, MetaKv};

pub const BRANCH_PREFIX: &str = "r/b/";
pub const TAG_PREFIX: &str = "r/t/";
pub const WS_PREFIX: &str = "w/";
pub const MIN_PREFIX: usize = 7;
/// Schema names the SQL layer owns; a ref may not take them.
pub const RESERVED: &[&str] = &["public", "information_schema", "pg_catalog", "bagbase"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefKind {
    Branch,
    Tag,
}

impl RefKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RefKind::Branch => "branch",
            RefKind::Tag => "tag",
        }
    }
    fn prefix(self) -> &'static str {
        match self {
            RefKind::Branch => BRANCH_PREFIX,
            RefKind::Tag => TAG_PREFIX,
        }
    }
}

/// What a ref name resolved to.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub version: Id,
    /// Set when the ref is a branch: reads then include its working set.
    pub branch: Option<String>,
}

pub fn ref_key(kind: RefKind, name: &str) -> Vec<u8> {
    format!("{}{name}", kind.prefix()).into_bytes()
}

pub fn ws_key(branch: &str) -> Vec<u8> {
    format!("{WS_PREFIX}{branch}").into_bytes()
}

fn id_value(raw: &[u8], what: &str) -> Result<Id> {
    Id::from_slice(raw).ok_or_else(|| VersionError::BadNode {
        id: what.to_string(),
        detail: "ref value is not a 32-byte id".into(),
    })
}

pub fn get(kv: &dyn MetaKv, kind: RefKind, name: &str) -> Result<Option<Id>> {
    kv.get(&ref_key(kind, name))?
        .map(|v| id_value(&v, name))
        .transpose()
}

pub fn list(kv: &dyn MetaKv) -> Result<Vec<(String, RefKind, Id)>> {
    let mut out = Vec::new();
    for kind in [RefKind::Branch, RefKind::Tag] {
        for (k, v) in kv.scan_prefix(kind.prefix().as_bytes())? {
            let name = String::from_utf8_lossy(&k[kind.prefix().len()..]).to_string();
            out.push((name.clone(), kind, id_value(&v, &name)?));
        }
    }
    Ok(out)
}

pub fn working_root(kv: &dyn MetaKv, branch: &str) -> Result<Id> {
    match kv.get(&ws_key(branch))? {
        Some(v) => id_value(&v, branch),
        None => Err(VersionError::NotABranch(branch.to_string())),
    }
}

/// Checks a new branch or tag name.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |why| {
        Err(VersionError::BadName {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() || name.len() > 200 {
        return bad("names are 1 to 200 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
    {
        return bad("use letters, digits, '.', '_', '-' and '/'");
    }
    if name.starts_with(['-', '.', '/']) || name.contains("..") {
        return bad("a name may not start with '-', '.' or '/' nor contain '..'");
    }
    if name.len() >= MIN_PREFIX && name.chars().all(|c| c.is_ascii_hexdigit()) {
        return bad("a name of 7 or more hex digits would read as a version id");
    }
    if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
        return bad("the name is reserved for a SQL schema");
    }
    Ok(())
}

/// Resolves a branch, tag, full version id or unique id prefix (≥ 7 hex digits).
pub fn resolve(kv: &dyn MetaKv, name: &str) -> Result<Resolved> {
    if let Some(v) = get(kv, RefKind::Branch, name)? {
        return Ok(Resolved {
            version: v,
            branch: Some(name.to_string()),
        });
    }
    if let Some(v) = get(kv, RefKind::Tag, name)? {
        return Ok(Resolved {
            version: v,
            branch: None,
        });
    }
    let lower = name.to_ascii_lowercase();
    if lower.len() >= MIN_PREFIX
        && lower.len() <= 64
        && lower.chars().all(|c| c.is_ascii_hexdigit())
    {
        let mut hits = Vec::new();
        kv.for_each_key(VERSION_PREFIX, &mut |k| {
            let h = hex::encode(&k[VERSION_PREFIX.len()..]);
            if h.starts_with(&lower) {
                hits.push(h);
            }
            Ok(())
        })?;
        match hits.len() {
            1 => {
                return Ok(Resolved {
                    version: Id::from_hex(&hits[0]).expect("hex from a key"),
                    branch: None,
                })
            }
            0 => {}
            _ => {
                return Err(VersionError::AmbiguousRef {
                    name: name.to_string(),
                    candidates: hits,
                })
            }
        }
    }
    let mut candidates: Vec<String> = list(kv)?.into_iter().map(|(n, _, _)| n).collect();
    candidates.sort();
    Err(VersionError::UnknownRef {
        name: name.to_string(),
        candidates,
    })
}

/// The root a reader of `r` sees: the working set for a branch, the snapshot otherwise.
pub fn read_root(kv: &dyn MetaKv, r: &Resolved) -> Result<Id> {
    match &r.branch {
        Some(b) => working_root(kv, b),
        None => Ok(record::load(kv, &r.version)?.root),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("main").is_ok());
        assert!(validate_name("feature/x-1").is_ok());
        assert!(validate_name("abcdef0").is_err());
        assert!(validate_name("public").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name("../x").is_err());
    }
}
