//! Export of a version's tables to files other tools read: `--format parquet` writes
//! one directory per table and one Parquet file per segment, named by the episode or
//! file the segment holds (steps segments never mix episodes), plus `_bagbase.json`
//! listing tables, files and row counts; `--format lerobot` writes the episodes and
//! steps as a LeRobot v3.0 dataset. The directory appears whole or not at all.

pub mod lerobot;
pub mod parquet;

use crate::store::{ChunkStore, Id};
use crate::version::manifest::SegmentMeta;
use crate::version::node;
use sha2::Digest;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{path}: the export directory exists and is not empty")]
    NotEmpty { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("table {table}: {detail}")]
    Table { table: String, detail: String },
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Runs `write` on a fresh hidden directory beside `out` (which must not exist or be
/// empty) and renames it to `out` once `write` succeeds; removes it if `write` fails.
pub(crate) fn into_new_dir<T>(
    out: &Path,
    write: impl FnOnce(&Path) -> Result<T, crate::Error>,
) -> Result<T, crate::Error> {
    if out.exists() {
        let mut rd = std::fs::read_dir(out).map_err(io(out))?;
        if rd.next().is_some() {
            return Err(ExportError::NotEmpty {
                path: out.to_path_buf(),
            }
            .into());
        }
    }
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "export".into());
    let tmp = out.with_file_name(format!(".{name}.partial"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let res = write(&tmp);
    if res.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
        return res;
    }
    if out.exists() {
        std::fs::remove_dir(out).map_err(io(out))?;
    }
    std::fs::rename(&tmp, out).map_err(io(out))?;
    res
}

/// The Parquet bytes of segment `s` of `table`, checked against its SHA-256.
pub(crate) fn read_segment(
    chunks: &ChunkStore,
    table: &str,
    s: &SegmentMeta,
) -> Result<bytes::Bytes, crate::Error> {
    let list = node::get_chunks(chunks.kv(), &s.chunks)?;
    let bytes = chunks.read_blob(&list)?;
    if Id(sha2::Sha256::digest(&bytes).into()) != s.id {
        return Err(crate::store::StoreError::Corrupt {
            what: format!("segment {} of table {table}", s.id.hex()),
            detail: "its chunks do not hash to the segment id; run 'bagbase fsck'".into(),
        }
        .into());
    }
    Ok(bytes::Bytes::from(bytes))
}

/// One table written by an export.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ExportedTable {
    pub table: String,
    /// Directory under the export root.
    pub dir: String,
    pub files: usize,
    pub rows: u64,
}

/// A directory name for a table: the name with `/` and anything outside
/// `[A-Za-z0-9._-]` percent-encoded, the leading `/` of a topic dropped
/// (`/imu/data` → `imu%2Fdata`).
pub fn dir_name(table: &str) -> String {
    let t = table.strip_prefix('/').unwrap_or(table);
    let mut out = String::new();
    for b in t.bytes() {
        if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() || out.starts_with('.') {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn dir_names() {
        assert_eq!(super::dir_name("/imu/data"), "imu%2Fdata");
        assert_eq!(super::dir_name("steps"), "steps");
        assert_eq!(super::dir_name("/"), "_");
        assert_eq!(super::dir_name("a b"), "a%20b");
    }
}
