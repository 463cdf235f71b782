//! Version records (`v/<id>`): the immutable snapshot header — root, parents, author,
//! message, time, branch. The id is the SHA-256 of the record's encoding.

use super::error::{Result, VersionError};
use crate::store::{Id, MetaKv};
use serde::{Deserialize, Serialize};

pub const VERSION_PREFIX: &[u8] = b"v/";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Version {
    pub root: Id,
    pub parents: Vec<Id>,
    pub author: String,
    pub message: String,
    /// Nanoseconds since the Unix epoch, UTC.
    pub created_at: i64,
    /// The branch the version was committed on.
    pub branch: String,
}

impl Version {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("version records serialize")
    }

    pub fn id(&self) -> Id {
        Id::of(&self.encode())
    }
}

pub fn version_key(id: &Id) -> Vec<u8> {
    [VERSION_PREFIX, &id.0].concat()
}

pub fn load(kv: &dyn MetaKv, id: &Id) -> Result<Version> {
    let raw = kv
        .get(&version_key(id))?
        .ok_or_else(|| VersionError::UnknownRef {
            name: id.hex(),
            candidates: vec![],
        })?;
    serde_json::from_slice(&raw).map_err(|e| VersionError::BadNode {
        id: id.hex(),
        detail: format!("version record: {e}"),
    })
}

/// Every version in the store (unordered).
pub fn all(kv: &dyn MetaKv) -> Result<Vec<(Id, Version)>> {
    let mut out = Vec::new();
    for (k, v) in kv.scan_prefix(VERSION_PREFIX)? {
        let id =
            Id::from_slice(&k[VERSION_PREFIX.len()..]).ok_or_else(|| VersionError::BadNode {
                id: hex::encode(&k),
                detail: "malformed version key".into(),
            })?;
        let rec = serde_json::from_slice(&v).map_err(|e| VersionError::BadNode {
            id: id.hex(),
            detail: format!("version record: {e}"),
        })?;
        out.push((id, rec));
    }
    Ok(out)
}

/// The author of new versions: BAGBASE_AUTHOR, else git's user.name, else $USER.
pub fn default_author() -> String {
    if let Ok(a) = std::env::var("BAGBASE_AUTHOR") {
        if !a.trim().is_empty() {
            return a.trim().to_string();
        }
    }
    if let Ok(out) = std::process::Command::new("git")
        .args(["config", "user.name"])
        .stderr(std::process::Stdio::null())
        .output()
    {
        let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !name.is_empty() {
            return name;
        }
    }
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}

/// The current time in ns since the Unix epoch, UTC. `BAGBASE_TIME` (ns) pins it, so
/// tests and reproducible pipelines get the same version ids on every run (like
/// SOURCE_DATE_EPOCH); a commit is still later than its parent by at least 1 ns.
pub fn now_ns() -> i64 {
    if let Some(t) = std::env::var("BAGBASE_TIME")
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        return t;
    }
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}
