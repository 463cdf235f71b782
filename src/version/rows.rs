//! Rows written into a branch's working set by the library and by SQL `INSERT`: new
//! segments appended to a table, published as one batch. Also reads a table's columns
//! back (small user tables, for constraint checks). Never plans queries.

use super::error::{Result, VersionError};
use super::manifest::TableNode;
use super::{node, segment, WorkingEdit};
use crate::store::ChunkStore;
use datafusion::arrow::array::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::ProjectionMask;

/// Rows per segment written by `append`.
pub const SEGMENT_ROWS: usize = 256 * 1024;

/// What a caller may check, under the write lock, before rows are appended: the
/// working set they land in (to read existing rows) and the rows themselves.
pub type Check<'c> = dyn Fn(&mut WorkingEdit<'_>, &ChunkStore, &[RecordBatch]) -> Result<()> + 'c;

/// Appends `batches` to `table` in the working set of `branch`, as new segments; the
/// table is created with the batches' schema and `key` if it does not exist. Holds the
/// store's write lock from reading the working set until the batch is published.
pub fn append(
    chunks: &ChunkStore,
    branch: &str,
    table: &str,
    key: &[String],
    batches: &[RecordBatch],
    check: &Check<'_>,
) -> Result<u64> {
    let Some(first) = batches.first() else {
        return Ok(0);
    };
    let schema = first.schema();
    let _g = chunks.write_lock();
    let kv = chunks.kv();
    let mut edit = WorkingEdit::begin(kv, branch)?;
    check(&mut edit, chunks, batches)?;
    let mut w = chunks.writer();
    let mut node = match edit.root.table(table)? {
        Some(t) => {
            let have = segment::decode_schema(table, &t.schema)?;
            if have.fields() != schema.fields() {
                return Err(VersionError::Table {
                    table: table.into(),
                    detail: format!("rows have schema {schema:?}, the table has {have:?}"),
                });
            }
            t.clone()
        }
        None => TableNode {
            schema: segment::encode_schema(&schema),
            segments: vec![],
            key: key.to_vec(),
        },
    };
    let mut group: Vec<RecordBatch> = Vec::new();
    let (mut rows, mut total) = (0usize, 0u64);
    for (i, b) in batches.iter().enumerate() {
        group.push(b.clone());
        rows += b.num_rows();
        total += b.num_rows() as u64;
        if rows >= SEGMENT_ROWS || i + 1 == batches.len() {
            let seg = segment::write_segment(table, &mut w, &mut edit.nodes, kv, &schema, &group)?;
            node.segments.push(seg);
            group.clear();
            rows = 0;
        }
    }
    edit.root.put_table(table, node);
    w.finish()?;
    chunks.publish(edit.finish()?.0)?;
    w.keep();
    Ok(total)
}

/// Every value of `columns` in `table` (in segment order), reading each segment whole:
/// meant for the small tables users write by hand.
pub fn read_columns(
    chunks: &ChunkStore,
    table: &str,
    node: &TableNode,
    columns: &[&str],
) -> Result<Vec<RecordBatch>> {
    let err = |e: &dyn std::fmt::Display| VersionError::Table {
        table: table.into(),
        detail: e.to_string(),
    };
    let mut out = Vec::new();
    for s in &node.segments {
        let list = node::get_chunks(chunks.kv(), &s.chunks)?;
        let bytes = bytes::Bytes::from(chunks.read_blob(&list)?);
        let b = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| err(&e))?;
        let fields = b.parquet_schema();
        let idx: Vec<usize> = (0..fields.num_columns())
            .filter(|i| columns.contains(&fields.column(*i).name()))
            .collect();
        let mask = ProjectionMask::leaves(fields, idx);
        for batch in b.with_projection(mask).build().map_err(|e| err(&e))? {
            out.push(batch.map_err(|e| err(&e))?);
        }
    }
    Ok(out)
}
