//! Decodes one bag into table segments in a working-set edit: `topics`, `messages` and
//! one table per topic, each segment holding rows of this file only.

use super::bag::{self, BagError, Event};
use super::tables::{BagTables, DecodeError, Rows};
use crate::ingest::steps::{self, TopicData};
use crate::ingest::{IngestError, ReadOptions};
use crate::store::ChunkWriter;
use crate::version::{segment, SegmentMeta, WorkingEdit};
use std::collections::BTreeMap;
use std::io::Read;

enum Stop {
    Bag(BagError),
    Decode(DecodeError, u64),
    Store(crate::Error),
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
    let mut tables = BagTables::new(file_id);
    let mut segs: BTreeMap<String, (String, Vec<SegmentMeta>)> = BTreeMap::new();
    let mut ready: Vec<Rows> = Vec::new();
    let mut write = |rows: Vec<Rows>,
                     edit: &mut WorkingEdit<'_>,
                     chunks: &mut ChunkWriter<'_>|
     -> Result<(), crate::Error> {
        for r in rows {
            let schema = r.batch.schema();
            let kv = chunks.kv();
            let seg = segment::write_segment(
                &r.table,
                chunks,
                &mut edit.nodes,
                kv,
                &schema,
                std::slice::from_ref(&r.batch),
            )?;
            let e = segs
                .entry(r.table)
                .or_insert_with(|| (segment::encode_schema(&schema), Vec::new()));
            e.1.push(seg);
        }
        Ok(())
    };
    let res = bag::scan(input, &mut |ev, at| -> Result<(), Stop> {
        match ev {
            Event::Connection(c) => tables.connection(c).map_err(|e| Stop::Decode(e, at)),
            Event::Message { conn, time, data } => {
                tables
                    .message(conn, time, data, &mut ready)
                    .map_err(|e| Stop::Decode(e, at))?;
                if !ready.is_empty() {
                    write(std::mem::take(&mut ready), edit, chunks).map_err(Stop::Store)?;
                }
                Ok(())
            }
        }
    });
    let scan = match res {
        Ok(s) => s,
        Err(Stop::Bag(e)) => {
            return Err(bad(name, format!("byte {}: expected {}", e.offset, e.what)))
        }
        Err(Stop::Decode(e, at)) => {
            return Err(bad(
                name,
                format!("byte {at}, topic {}: expected {}", e.topic, e.what),
            ))
        }
        Err(Stop::Store(e)) => return Err(e),
    };
    let fin = tables.finish();
    let mut warnings = fin.warnings;
    write(fin.rows, edit, chunks)?;
    let mut topics = BTreeMap::new();
    for (table, (schema, list)) in segs {
        let key = super::tables::key_of(&table);
        if let Some((msg_type, schema, times)) = fin.times.get(&table) {
            topics.insert(
                table.clone(),
                TopicData {
                    msg_type: msg_type.clone(),
                    schema: schema.clone(),
                    segments: list.clone(),
                    times: times.clone(),
                },
            );
        }
        edit.root.add_segments(&table, schema, key, list)?;
    }
    if let Some(at) = scan.truncated_at {
        let w = format!(
            "{name}: the recording is cut short: usable data ends at byte {at}; {} complete messages were read{}",
            scan.messages,
            if scan.indexed { "" } else { " (the bag has no index)" }
        );
        if opts.strict {
            return Err(bad(name, format!("{w} (--strict)")));
        }
        warnings.insert(0, w);
    }
    steps::derive(edit, chunks, name, file_id, &topics, &opts.align)?;
    Ok(warnings)
}

fn bad(name: &str, what: String) -> crate::Error {
    IngestError::Bad {
        path: name.to_string(),
        what,
    }
    .into()
}
