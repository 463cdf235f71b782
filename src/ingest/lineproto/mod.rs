//! InfluxDB line protocol: `parse` reads one line, `write` turns points into rows of
//! one table per measurement. `ingest_file` streams a `.lp` file in blocks of lines,
//! so memory stays bounded whatever the file's size; the HTTP server gathers a group of
//! request bodies in one `write::Pending`. `compact` merges the small segments writes
//! leave behind.

pub mod compact;
pub mod downsample;
pub mod parse;
mod points;
pub mod retention;
pub mod write;

pub use write::{LineError, Precision, Written};

use crate::ingest::IngestError;
use crate::store::ChunkWriter;
use crate::version::WorkingEdit;
use std::io::BufRead;

/// Bytes of lines handed to one `write_text` call (one segment per measurement).
const BLOCK_BYTES: usize = 32 << 20;
/// The longest line accepted.
const MAX_LINE: usize = 1 << 20;

/// Writes every point of a line-protocol file. Refused lines come back as warnings
/// naming file and line; with `strict` the first one is an error instead.
pub fn ingest_file<R: BufRead>(
    edit: &mut WorkingEdit<'_>,
    chunks: &mut ChunkWriter<'_>,
    name: &str,
    mut reader: R,
    strict: bool,
) -> Result<Vec<String>, crate::Error> {
    let now = crate::version::record::now_ns();
    let mut warnings = Vec::new();
    let (mut block, mut first, mut line_no) = (String::new(), 1usize, 0usize);
    let mut line = Vec::new();
    let mut offset = 0u64;
    loop {
        line.clear();
        let n = std::io::Read::take(&mut reader, MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|source| IngestError::Read {
                path: name.into(),
                offset,
                source,
            })?;
        if n > 0 {
            line_no += 1;
            if n > MAX_LINE && !line.ends_with(b"\n") {
                return Err(IngestError::Bad {
                    path: name.into(),
                    what: format!("line {line_no} (byte {offset}) is longer than {MAX_LINE} bytes"),
                }
                .into());
            }
            let text = std::str::from_utf8(&line).map_err(|e| IngestError::Bad {
                path: name.into(),
                what: format!(
                    "line {line_no} is not valid UTF-8 (byte {})",
                    offset + e.valid_up_to() as u64
                ),
            })?;
            block.push_str(text);
            offset += n as u64;
        }
        if (n == 0 && !block.is_empty()) || block.len() >= BLOCK_BYTES {
            let text = block.strip_suffix('\n').unwrap_or(&block);
            let w = write::write_text(edit, chunks, text, first, Precision::Nanoseconds, now)?;
            for e in &w.errors {
                if strict {
                    return Err(IngestError::Bad {
                        path: name.into(),
                        what: format!("{e} (--strict refuses a file with a bad line)"),
                    }
                    .into());
                }
                warnings.push(format!("{name}: {e}; line skipped"));
            }
            if w.refused > w.errors.len() {
                warnings.push(format!(
                    "{name}: {} more lines skipped",
                    w.refused - w.errors.len()
                ));
            }
            block.clear();
            first = line_no + 1;
        }
        if n == 0 {
            break;
        }
    }
    Ok(warnings)
}
