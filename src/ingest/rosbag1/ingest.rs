//! Decodes one bag into table segments in a working-set edit: `topics`, `messages` and
//! one table per topic, each segment holding rows of this file only.

use super::bag::{self, BagError};
use crate::ingest::message::write::bad;
use crate::ingest::message::{Stop, TopicWriter};
use crate::ingest::ReadOptions;
use crate::store::ChunkWriter;
use crate::version::WorkingEdit;
use std::io::Read;

/// Reads the bag `name` and adds its rows; returns warnings (a bag cut short).
pub fn decode_into<R: Read>(
    edit: &mut WorkingEdit<'_>,
    chunks: &mut ChunkWriter<'_>,
    name: &str,
    file_id: &str,
    input: R,
    opts: &ReadOptions,
) -> Result<Vec<String>, crate::Error> {
    // Large binary values refer to the bag's stored bytes instead of copying them.
    let blob_file = match chunks.store().config().blobs() {
        true => edit.root.file(file_id)?.map(|f| f.chunks),
        false => None,
    };
    let mut out = TopicWriter::new(file_id, blob_file);
    let scan = bag::scan(input, &mut |ev, at| -> Result<(), Stop<BagError>> {
        out.event(edit, chunks, ev, at)
    })
    .map_err(|e| e.into_error(name, |e| (e.offset, format!("expected {}", e.what))))?;
    let mut warnings = Vec::new();
    if let Some(at) = scan.truncated_at {
        let w = format!(
            "{name}: the recording is cut short: usable data ends at byte {at}; {} complete messages were read{}",
            scan.messages,
            if scan.indexed { "" } else { " (the bag has no index)" }
        );
        if opts.strict {
            return Err(bad(name, format!("{w} (--strict)")));
        }
        warnings.push(w);
    }
    warnings.extend(out.finish(edit, chunks, name, file_id, opts)?);
    Ok(warnings)
}
