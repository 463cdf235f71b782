//! Errors of the ingest layer: every one names the file and, where known, the offset.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: read failed at byte {offset}: {source}")]
    Read {
        path: PathBuf,
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a file or directory")]
    NotAFile { path: PathBuf },
    #[error("nothing to ingest: {0}")]
    Empty(String),
    #[error("{path}: {what}")]
    Bad { path: String, what: String },
}
