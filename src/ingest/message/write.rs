//! Writes a recording's decoded rows as table segments into a working-set edit while the
//! container is scanned (bounded batches), then its `topics` rows, and derives episodes
//! and steps from the topic tables. Shared by every container reader.

use super::tables::{key_of, BagTables, Connection, DecodeError, Rows};
use crate::ingest::steps::{self, TopicData};
use crate::ingest::ReadOptions;
use crate::store::ChunkWriter;
use crate::version::{segment, SegmentMeta, WorkingEdit};
use std::collections::BTreeMap;

/// Why a message could not be added.
pub enum WriteError {
    Decode(DecodeError),
    Store(crate::Error),
}

/// The tables of one recording, written as it is read.
pub struct TopicWriter {
    tables: BagTables,
    /// Table → (encoded schema, segments written so far).
    segs: BTreeMap<String, (String, Vec<SegmentMeta>)>,
    ready: Vec<Rows>,
}

impl TopicWriter {
    pub fn new(file_id: &str) -> TopicWriter {
        TopicWriter {
            tables: BagTables::new(file_id),
            segs: BTreeMap::new(),
            ready: Vec::new(),
        }
    }

    pub fn connection(&mut self, c: Connection) -> Result<(), DecodeError> {
        self.tables.connection(c)
    }

    /// Adds one message; writes a segment whenever a table's batch fills up.
    pub fn message(
        &mut self,
        edit: &mut WorkingEdit<'_>,
        chunks: &mut ChunkWriter<'_>,
        conn: u32,
        time: i64,
        data: &[u8],
    ) -> Result<(), WriteError> {
        self.tables
            .message(conn, time, data, &mut self.ready)
            .map_err(WriteError::Decode)?;
        if !self.ready.is_empty() {
            let rows = std::mem::take(&mut self.ready);
            self.write(rows, edit, chunks).map_err(WriteError::Store)?;
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
            let seg = segment::write_segment(
                &r.table,
                chunks,
                &mut edit.nodes,
                kv,
                &schema,
                std::slice::from_ref(&r.batch),
            )?;
            self.segs
                .entry(r.table)
                .or_insert_with(|| (segment::encode_schema(&schema), Vec::new()))
                .1
                .push(seg);
        }
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
        let tables = std::mem::replace(&mut self.tables, BagTables::new(file_id));
        let fin = tables.finish();
        self.write(fin.rows, edit, chunks)?;
        let mut topics = BTreeMap::new();
        for (table, (schema, list)) in self.segs {
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
            edit.root
                .add_segments(&table, schema, key_of(&table), list)?;
        }
        steps::derive(edit, chunks, name, file_id, &topics, &opts.align)?;
        Ok(fin.warnings)
    }
}
