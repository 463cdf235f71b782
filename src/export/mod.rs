//! Export of a version's tables to files other tools read: `--format parquet` writes
//! one directory per table and one Parquet file per segment, named by the episode or
//! file the segment holds (steps segments never mix episodes), plus `_bagbase.json`
//! listing tables, files and row counts. The directory appears whole or not at all.

pub mod parquet;

use std::path::PathBuf;

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
