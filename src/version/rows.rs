//! Rows written into a branch's working set by the library and by SQL `INSERT`: new
//! segments appended to a table, published as one batch. Also reads a table's columns
//! back (small user tables, for constraint checks). Never plans queries.

use super::error::{Result, VersionError};
use super::manifest::{SegmentMeta, StatValue, TableNode};
use super::{node, segment, WorkingEdit};
use crate::store::{ChunkStore, ChunkWriter};
use datafusion::arrow::array::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::ProjectionMask;
use std::sync::MutexGuard;

/// Rows per segment written by `append`.
pub const SEGMENT_ROWS: usize = 256 * 1024;

/// An open edit of one table in a branch's working set. Holds the store's write lock
/// from `begin` until `publish`; dropped without `publish`, it leaves the store as it
/// was (its chunks are rolled back).
pub struct TableEdit<'a> {
    chunks: &'a ChunkStore,
    edit: WorkingEdit<'a>,
    writer: ChunkWriter<'a>,
    table: String,
    node: TableNode,
    _lock: MutexGuard<'a, ()>,
}

impl<'a> TableEdit<'a> {
    /// Opens `table` in the working set of `branch`; a table that does not exist yet is
    /// created by the first `append`, with that batch's schema and `key`.
    pub fn begin(
        chunks: &'a ChunkStore,
        branch: &str,
        table: &str,
        key: &[String],
    ) -> Result<Self> {
        let lock = chunks.write_lock();
        let mut edit = WorkingEdit::begin(chunks.kv(), branch)?;
        let node = match edit.root.table(table)? {
            Some(t) => t.clone(),
            None => TableNode {
                schema: String::new(),
                segments: vec![],
                key: key.to_vec(),
            },
        };
        Ok(TableEdit {
            chunks,
            edit,
            writer: chunks.writer(),
            table: table.to_string(),
            node,
            _lock: lock,
        })
    }

    /// The working set being edited (to read rows already there).
    pub fn working(&mut self) -> &mut WorkingEdit<'a> {
        &mut self.edit
    }

    /// Removes every segment whose `column` holds only `value` (by its statistics, so
    /// nothing is read): how a partition — an episode, a file — is replaced or dropped.
    /// Returns the number of rows removed.
    pub fn remove_partition(&mut self, column: &str, value: &StatValue) -> u64 {
        let mut removed = 0;
        self.node.segments.retain(|s| {
            let only = s
                .stats
                .get(column)
                .is_some_and(|c| c.nulls == 0 && c.min.as_ref() == Some(value) && c.max == c.min);
            if only {
                removed += s.rows;
            }
            !only
        });
        removed
    }

    /// Writes `batches` as new segments of their own (split every `SEGMENT_ROWS`), so a
    /// caller decides the partitioning by how it groups its calls.
    pub fn append(&mut self, batches: &[RecordBatch]) -> Result<u64> {
        let Some(first) = batches.first() else {
            return Ok(0);
        };
        let schema = first.schema();
        if self.node.schema.is_empty() {
            self.node.schema = segment::encode_schema(&schema);
        } else {
            let have = segment::decode_schema(&self.table, &self.node.schema)?;
            if have.fields() != schema.fields() {
                return Err(VersionError::Table {
                    table: self.table.clone(),
                    detail: format!("rows have schema {schema:?}, the table has {have:?}"),
                });
            }
        }
        let kv = self.chunks.kv();
        let mut group: Vec<RecordBatch> = Vec::new();
        let (mut rows, mut total) = (0usize, 0u64);
        for (i, b) in batches.iter().enumerate() {
            group.push(b.clone());
            rows += b.num_rows();
            total += b.num_rows() as u64;
            if rows >= SEGMENT_ROWS || i + 1 == batches.len() {
                let seg = segment::write_segment(
                    &self.table,
                    &mut self.writer,
                    &mut self.edit.nodes,
                    kv,
                    &schema,
                    &group,
                )?;
                self.node.segments.push(seg);
                group.clear();
                rows = 0;
            }
        }
        Ok(total)
    }

    /// Publishes the edit: chunks durable first, then one metadata batch.
    pub fn publish(mut self) -> Result<()> {
        let node = std::mem::take(&mut self.node);
        if node.segments.is_empty() {
            self.edit.root.drop_table(&self.table);
        } else {
            self.edit.root.put_table(&self.table, node);
        }
        self.writer.finish()?;
        let TableEdit {
            edit,
            writer,
            chunks,
            ..
        } = self;
        chunks.publish(edit.finish()?.0)?;
        writer.keep();
        Ok(())
    }
}

/// Appends `batches` to `table` in the working set of `branch` as new segments, creating
/// the table with `key` if needed.
pub fn append(
    chunks: &ChunkStore,
    branch: &str,
    table: &str,
    key: &[String],
    batches: &[RecordBatch],
) -> Result<u64> {
    let mut t = TableEdit::begin(chunks, branch, table, key)?;
    let n = t.append(batches)?;
    t.publish()?;
    Ok(n)
}

/// Every value of `columns` in `table` (in segment order), reading each segment whole:
/// meant for the small tables users write by hand.
pub fn read_columns(
    chunks: &ChunkStore,
    table: &str,
    node: &TableNode,
    columns: &[&str],
) -> Result<Vec<RecordBatch>> {
    node.segments
        .iter()
        .map(|s| read_segment(chunks, None, table, s, columns))
        .collect()
}

/// The top-level `columns` of one segment of `table` as one batch (nested columns
/// whole). Reads the segment's bytes whole: segments are bounded in size. `pending`:
/// the nodes of an edit not published yet, where a new segment's chunk list is.
pub fn read_segment(
    chunks: &ChunkStore,
    pending: Option<&node::NodeWriter>,
    table: &str,
    seg: &SegmentMeta,
    columns: &[&str],
) -> Result<RecordBatch> {
    let err = |e: &dyn std::fmt::Display| VersionError::Table {
        table: table.into(),
        detail: e.to_string(),
    };
    let list = match pending {
        Some(w) => node::decode_chunks(&seg.chunks, &w.get(chunks.kv(), &seg.chunks)?)?,
        None => node::get_chunks(chunks.kv(), &seg.chunks)?,
    };
    let bytes = bytes::Bytes::from(chunks.read_blob(&list)?);
    let b = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| err(&e))?;
    let idx: Vec<usize> = b
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| columns.contains(&f.name().as_str()))
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(b.parquet_schema(), idx);
    let reader = b.with_projection(mask).build().map_err(|e| err(&e))?;
    let schema = datafusion::arrow::array::RecordBatchReader::schema(&reader);
    let batches: Vec<RecordBatch> = reader
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| err(&e))?;
    datafusion::arrow::compute::concat_batches(&schema, &batches).map_err(|e| err(&e))
}
