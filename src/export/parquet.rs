//! `export --format parquet`: copies each segment's Parquet bytes (checked against the
//! segment's SHA-256) into `OUT/<table>/<episode or file>-<n>.parquet`. A segment
//! written under an older schema of its table is rewritten to the table's schema (new
//! columns NULL), so every file of a directory has one schema: pyarrow, pandas and
//! DuckDB read a directory as one table. A segment with blob columns is rewritten with
//! the bytes its values stand for.

use super::{dir_name, io, ExportError, ExportedTable};
use crate::store::{ChunkStore, Id};
use crate::version::blob;
use crate::version::manifest::{self, Root, SegmentMeta, StatValue};
use crate::version::segment;
use datafusion::arrow::array::{new_null_array, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use std::path::{Path, PathBuf};

/// The partition a segment belongs to: its episode, else its file, else "part".
fn partition(s: &SegmentMeta) -> String {
    if let Some(c) = s.stats.get("episode_id") {
        if let (Some(StatValue::Str(a)), Some(StatValue::Str(b))) = (&c.min, &c.max) {
            if a == b {
                return format!("episode-{a}");
            }
        }
    }
    match manifest::segment_file(s) {
        Some(f) => format!("file-{f}"),
        None => "part".into(),
    }
}

/// Writes every table of `root` (the tables of `version`) under `out`.
pub fn export(
    chunks: &ChunkStore,
    root: &Root,
    version: &Id,
    out: &Path,
) -> Result<Vec<ExportedTable>, crate::Error> {
    super::into_new_dir(out, |tmp| write_all(chunks, root, version, tmp))
}

fn write_all(
    chunks: &ChunkStore,
    root: &Root,
    version: &Id,
    tmp: &Path,
) -> Result<Vec<ExportedTable>, crate::Error> {
    let kv = chunks.kv();
    let mut done = Vec::new();
    for (name, id) in &root.tables {
        let t = manifest::load_table(kv, id)?;
        let schema = segment::decode_schema(name, &t.schema)?;
        let dir = dir_name(name);
        let path = tmp.join(&dir);
        std::fs::create_dir_all(&path).map_err(io(&path))?;
        let mut rows = 0;
        for (i, s) in t.segments.iter().enumerate() {
            let file = path.join(format!("{}-{i:05}.parquet", partition(s)));
            write_segment(chunks, name, &schema, s, &file)?;
            rows += s.rows;
        }
        done.push(ExportedTable {
            table: name.clone(),
            dir,
            files: t.segments.len(),
            rows,
        });
    }
    let meta = serde_json::json!({
        "format": "bagbase parquet export 1",
        "version": version.hex(),
        "tables": done,
    });
    let p = tmp.join("_bagbase.json");
    let text = serde_json::to_string_pretty(&meta).unwrap_or_default();
    std::fs::write(&p, text).map_err(io(&p))?;
    Ok(done)
}

fn write_segment(
    chunks: &ChunkStore,
    table: &str,
    schema: &SchemaRef,
    s: &SegmentMeta,
    file: &PathBuf,
) -> Result<(), crate::Error> {
    let bytes = super::read_segment(chunks, table, s)?;
    let bad = |e: &dyn std::fmt::Display| ExportError::Table {
        table: table.into(),
        detail: e.to_string(),
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).map_err(|e| bad(&e))?;
    // Blob columns are written with the bytes their values stand for.
    let same = reader.schema().fields() == schema.fields() && s.blobs.is_empty();
    if same {
        return std::fs::write(file, &bytes).map_err(|e| io(file)(e).into());
    }
    let f = std::fs::File::create(file).map_err(io(file))?;
    let mut w = ArrowWriter::try_new(f, schema.clone(), None).map_err(|e| bad(&e))?;
    let batches = reader.with_batch_size(1024).build().map_err(|e| bad(&e))?;
    for b in batches {
        let b = b.map_err(|e| bad(&e))?;
        for b in blob::resolved(chunks, b, &s.blobs, blob::BATCH_BYTES)? {
            write_batch(&mut w, schema, &b?).map_err(|e| bad(&e))?;
        }
    }
    w.close().map_err(|e| bad(&e))?;
    Ok(())
}

/// Writes `b` with the table's schema: columns it lacks are NULL, others cast.
fn write_batch(
    w: &mut ArrowWriter<std::fs::File>,
    schema: &SchemaRef,
    b: &RecordBatch,
) -> Result<(), Box<dyn std::error::Error>> {
    let cols = schema
        .fields()
        .iter()
        .map(|f| match b.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            Some(c) => datafusion::arrow::compute::cast(c, f.data_type()),
            None => Ok(new_null_array(f.data_type(), b.num_rows())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    w.write(&RecordBatch::try_new(schema.clone(), cols)?)?;
    Ok(())
}
