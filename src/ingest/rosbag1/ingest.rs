//! Decodes one bag into table segments in a working-set edit: `topics`, `messages` and
//! one table per topic, each segment holding rows of this file only.

use super::bag::{self, BagError, Event};
use crate::ingest::message::{TopicWriter, WriteError};
use crate::ingest::{IngestError, ReadOptions};
use crate::store::ChunkWriter;
use crate::version::WorkingEdit;
use std::io::Read;

enum Stop {
    Bag(BagError),
    Write(WriteError, u64),
}

impl From<BagError> for Stop {
    fn from(e: BagError) -> Self {
        Stop::Bag(e)
    }
}

/// Reads the bag `name` and adds its rows; returns warnings (a bag cut short).
pub fn decode_into<R: Read>(
    edit: &mut WorkingEdit<'_>,
    chunks: &mut ChunkWriter<'_>,
    name: &str,
    file_id: &str,
    input: R,
    opts: &ReadOptions,
) -> Result<Vec<String>, crate::Error> {
    let mut out = TopicWriter::new(file_id);
    let res = bag::scan(input, &mut |ev, at| -> Result<(), Stop> {
        match ev {
            Event::Connection(c) => out
                .connection(c)
                .map_err(|e| Stop::Write(WriteError::Decode(e), at)),
            Event::Message { conn, time, data } => out
                .message(edit, chunks, conn, time, data)
                .map_err(|e| Stop::Write(e, at)),
        }
    });
    let scan = match res {
        Ok(s) => s,
        Err(Stop::Bag(e)) => {
            return Err(bad(name, format!("byte {}: expected {}", e.offset, e.what)))
        }
        Err(Stop::Write(WriteError::Decode(e), at)) => {
            return Err(bad(
                name,
                format!("byte {at}, topic {}: expected {}", e.topic, e.what),
            ))
        }
        Err(Stop::Write(WriteError::Store(e), _)) => return Err(e),
    };
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

pub(crate) fn bad(name: &str, what: String) -> crate::Error {
    IngestError::Bad {
        path: name.to_string(),
        what,
    }
    .into()
}
