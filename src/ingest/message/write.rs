//! Writes a recording's decoded rows as table segments into a working-set edit while the
//! container is scanned (bounded batches), then its `topics` rows, and derives episodes
//! and steps from the topic tables. Shared by every container reader.

use super::tables::{key_of, BagTables, DecodeError, Event, Rows};
use crate::ingest::steps::{self, TopicData};
use crate::ingest::{IngestError, ReadOptions};
use crate::store::{ChunkWriter, Id};
use crate::version::blob::BlobPath;
use crate::version::{segment, SegmentMeta, WorkingEdit};
use std::collections::BTreeMap;

/// Why a container scan stopped: the reader's own error `E` (bad bytes), a message
/// that does not decode (with the offset of its record), or the store failing.
pub enum Stop<E> {
    File(E),
    Decode(DecodeError, u64),
    Store(crate::Error),
}

impl<E> From<E> for Stop<E> {
    fn from(e: E) -> Self {
        Stop::File(e)
    }
}

impl<E> Stop<E> {
    /// The error a user sees: the file, the byte and what was expected there.
    pub fn into_error(self, name: &str, file: impl FnOnce(E) -> (u64, String)) -> crate::Error {
        let (offset, what) = match self {
            Stop::Store(e) => return e,
            Stop::File(e) => file(e),
            Stop::Decode(e, at) => (at, format!("topic {}: expected {}", e.topic, e.what)),
        };
        bad(name, format!("byte {offset}: {what}"))
    }
}

pub fn bad(name: &str, what: String) -> crate::Error {
    IngestError::Bad {
        path: name.to_string(),
        what,
    }
    .into()
}

/// The tables of one recording, written as it is read.
pub struct TopicWriter {
    tables: BagTables,
    /// Table → (encoded schema, segments written so far).
    segs: BTreeMap<String, (String, Vec<SegmentMeta>)>,
    ready: Vec<Rows>,
}

impl TopicWriter {
    /// `blob_file`: the stored file's chunk list, for blob values that refer to it
    /// (`None` keeps every value in the segments).
    pub fn new(file_id: &str, blob_file: Option<Id>) -> TopicWriter {
        TopicWriter {
            tables: BagTables::new(file_id, blob_file),
            segs: BTreeMap::new(),
            ready: Vec::new(),
        }
    }

    /// Takes one event of the record at byte `at`; writes a segment whenever a table's
    /// batch fills up.
    pub fn event<E>(
        &mut self,
        edit: &mut WorkingEdit<'_>,
        chunks: &mut ChunkWriter<'_>,
        ev: Event<'_>,
        at: u64,
    ) -> Result<(), Stop<E>> {
        self.tables
            .event(ev, &mut self.ready)
            .map_err(|e| Stop::Decode(e, at))?;
        if !self.ready.is_empty() {
            let rows = std::mem::take(&mut self.ready);
            self.write(rows, edit, chunks).map_err(Stop::Store)?;
        }
        Ok(())
    }

    fn write(
        &mut self,
        rows: Vec<Rows>,
        edit: &mut WorkingEdit<'_>,
        chunks: &mut ChunkWriter<'_>,
    ) -> Result<(), crate::Error> {
        for r in rows {
            let schema = r.batch.schema();
            let kv = chunks.kv();
            let seg = segment::write_segment_blobs(
                &r.table,
                chunks,
                &mut edit.nodes,
                kv,
                &schema,
                std::slice::from_ref(&r.batch),
                &r.blobs,
            )?;
            self.segs
                .entry(r.table)
                .or_insert_with(|| (segment::encode_schema(&schema), Vec::new()))
                .1
                .push(seg);
        }
        // Encoding a segment freed MiBs in the middle of the heap: return them now, or
        // the rest of the pass spreads over them and keeps them resident (a 2 GiB bag's
        // decode pass held 2–3 MiB more; docs/BENCHMARKS.md, ROS1 session 28).
        crate::store::pool::release_freed_memory();
        Ok(())
    }

    /// Writes what is left, adds every table's segments to the edit and derives episodes
    /// and steps. Returns the warnings met while decoding.
    pub fn finish(
        mut self,
        edit: &mut WorkingEdit<'_>,
        chunks: &mut ChunkWriter<'_>,
        name: &str,
        file_id: &str,
        opts: &ReadOptions,
    ) -> Result<Vec<String>, crate::Error> {
        let tables = std::mem::replace(&mut self.tables, BagTables::new(file_id, None));
        let mut fin = tables.finish();
        self.write(fin.rows, edit, chunks)?;
        let mut topics = BTreeMap::new();
        let mut warnings = fin.warnings;
        for (table, (schema, list)) in self.segs {
            let mut target = table.clone();
            if let Some((msg_type, _, _)) = fin.times.get(&table) {
                if let Some(why) = clash(edit, &table, &schema)? {
                    // Another recording's `/rosout` (ROS1 vs ROS 2, say): keep both.
                    target = format!("{table}:{msg_type}");
                    warnings.push(format!(
                        "{name}: topic {table}: table \"{table}\" holds another type ({why}); this file's rows go to table \"{target}\""
                    ));
                }
            }
            // Taken, not cloned: a topic's log times are 8 B per message of the file.
            if let Some((msg_type, schema, times)) = fin.times.remove(&table) {
                let mut blobs: Vec<BlobPath> = list.iter().flat_map(|s| s.blobs.clone()).collect();
                blobs.sort();
                blobs.dedup();
                topics.insert(
                    table.clone(),
                    TopicData {
                        msg_type,
                        schema,
                        segments: list.clone(),
                        times,
                        blobs,
                    },
                );
            }
            edit.root
                .add_segments(&target, schema, key_of(&table), list)?;
        }
        steps::derive(edit, chunks, name, file_id, &topics, &opts.align)?;
        Ok(warnings)
    }
}

/// Why rows of `schema` cannot join the stored table `table`, if they cannot.
fn clash(
    edit: &mut WorkingEdit<'_>,
    table: &str,
    schema: &str,
) -> Result<Option<String>, crate::Error> {
    Ok(match edit.root.table(table)? {
        Some(t) if !t.segments.is_empty() && t.schema != schema => {
            segment::merge_schemas(table, &t.schema, schema)
                .err()
                .map(|e| e.to_string())
        }
        _ => None,
    })
}
