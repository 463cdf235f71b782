//! Decodes one MCAP file into table segments in a working-set edit: `topics`, `messages`
//! and one table per decodable topic, each segment holding rows of this file only.

use super::scan::{self, McapError};
use crate::ingest::message::write::bad;
use crate::ingest::message::{Stop, TopicWriter};
use crate::ingest::ReadOptions;
use crate::store::ChunkWriter;
use crate::version::WorkingEdit;
use std::io::Read;

/// Reads the MCAP file `name` and adds its rows; returns warnings (a file cut short,
/// channels kept raw).
pub fn decode_into<R: Read>(
    edit: &mut WorkingEdit<'_>,
    chunks: &mut ChunkWriter<'_>,
    name: &str,
    file_id: &str,
    input: R,
    opts: &ReadOptions,
) -> Result<Vec<String>, crate::Error> {
    // Large binary values refer to the file's stored bytes where a message lies in it
    // as is (an uncompressed chunk), instead of copying them.
    let blob_file = match chunks.store().config().blobs() {
        true => edit.root.file(file_id)?.map(|f| f.chunks),
        false => None,
    };
    let mut out = TopicWriter::new(file_id, blob_file);
    let scan = scan::scan(input, &mut |ev, at| -> Result<(), Stop<McapError>> {
        out.event(edit, chunks, ev, at)
    })
    .map_err(|e| e.into_error(name, |e| (e.offset, format!("expected {}", e.what))))?;
    let mut warnings = Vec::new();
    if let Some(at) = scan.truncated_at {
        let w = format!(
            "{name}: the recording is cut short: usable data ends at byte {at}; {} complete messages were read",
            scan.messages
        );
        if opts.strict {
            return Err(bad(name, format!("{w} (--strict)")));
        }
        warnings.push(w);
    }
    for (topic, enc, schema_enc) in &scan.raw_channels {
        let schema = if schema_enc.is_empty() {
            "no schema".to_string()
        } else {
            format!("schema encoding '{schema_enc}'")
        };
        warnings.push(format!(
            "{name}: topic {topic}: message encoding '{enc}' with {schema} is not decoded (cdr with ros2msg and ros1 with ros1msg are); its messages are kept raw in `messages`"
        ));
    }
    warnings.extend(out.finish(edit, chunks, name, file_id, opts)?);
    Ok(warnings)
}
