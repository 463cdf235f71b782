//! Episodes and steps: turns the topic tables a decoder just wrote for one file into
//! `episodes` rows and aligned `steps` rows (RLDS-style), in two passes with bounded
//! memory. Pass 1 needs only timestamps (the decoder hands them over); pass 2 reads
//! the topic segments back one at a time. docs/steps.md is the user-facing description.

pub mod align;
pub mod build;
pub mod config;

pub use config::AlignConfig;

use crate::ingest::IngestError;
use crate::store::ChunkWriter;
use crate::version::blob::BlobPath;
use crate::version::{segment, SegmentMeta, WorkingEdit};
use datafusion::arrow::datatypes::SchemaRef;
use std::collections::BTreeMap;

/// What a decoder wrote for one topic of one file.
pub struct TopicData {
    pub msg_type: String,
    pub schema: SchemaRef,
    pub segments: Vec<SegmentMeta>,
    /// Log time of every row, in row order across `segments`.
    pub times: Vec<i64>,
    /// Blob columns some of `segments` hold (`version::blob`).
    pub blobs: Vec<BlobPath>,
}

/// The keys of the tables this module writes.
pub fn key_of(table: &str) -> Option<Vec<String>> {
    let k: &[&str] = match table {
        "steps" => &["episode_id", "step_index"],
        "episodes" => &["episode_id"],
        _ => return None,
    };
    Some(k.iter().map(|s| s.to_string()).collect())
}

/// Derives the episodes and steps of file `file_id` (stored as `name`) from its
/// topics and adds them to the working set.
pub fn derive(
    edit: &mut WorkingEdit<'_>,
    chunks: &mut ChunkWriter<'_>,
    name: &str,
    file_id: &str,
    topics: &BTreeMap<String, TopicData>,
    cfg: &AlignConfig,
) -> Result<(), crate::Error> {
    let bad = |what: String| -> crate::Error {
        IngestError::Bad {
            path: name.to_string(),
            what: format!("steps: {what}"),
        }
        .into()
    };
    let stored = match edit.root.table("steps")? {
        Some(t) if !t.segments.is_empty() => {
            Some(segment::decode_schema("steps", &t.schema)?.as_ref().clone())
        }
        _ => None,
    };
    let b = build::StepBuilder::new(cfg, file_id, topics).with_stored(stored);
    let Some(built) = b.build(chunks, &mut edit.nodes).map_err(bad)? else {
        return Ok(());
    };
    let kv = chunks.kv();
    let ep_schema = built.episodes.schema();
    let ep = segment::write_segment(
        "episodes",
        chunks,
        &mut edit.nodes,
        kv,
        &ep_schema,
        std::slice::from_ref(&built.episodes),
    )?;
    edit.root.add_segments(
        "episodes",
        segment::encode_schema(&ep_schema),
        key_of("episodes").unwrap_or_default(),
        vec![ep],
    )?;
    edit.root.add_segments(
        "steps",
        segment::encode_schema(&built.steps_schema),
        key_of("steps").unwrap_or_default(),
        built.steps,
    )?;
    Ok(())
}
