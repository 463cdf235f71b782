//! Table segments: immutable Parquet files of rows, stored as blobs in the chunk store
//! and described in the manifest by a `SegmentMeta` with per-column min/max/null count.
//! Owns encoding rows into a segment and the statistics kept for pruning.

use super::blob::{self, BlobPath};
use super::error::{Result, VersionError};
use super::manifest::{ColumnStats, SegmentMeta, StatValue};
use super::node::NodeWriter;
use crate::store::{ChunkWriter, Id, MetaKv};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::{self, kernels::aggregate as agg};
use datafusion::arrow::datatypes::{
    DataType, Float64Type, Int64Type, Schema, SchemaRef, UInt64Type,
};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Rows per Parquet row group inside a segment (the unit of in-segment pruning).
pub const ROW_GROUP_ROWS: usize = 64 * 1024;
/// Rows per data page at most (the unit a point lookup decodes: pages are chosen by
/// the page index, then decoded whole).
pub const PAGE_ROWS: usize = 1024;
/// A column chunk's dictionary page at most (the `parquet` crate's default is 1 MiB):
/// past it the chunk goes on in plain encoding. A point lookup reads and decodes the
/// dictionary of every column chunk it touches, so a column of unique values (sensor
/// floats, timestamps) cost it up to 512 KiB per row group.
const DICTIONARY_BYTES: usize = 64 * 1024;
/// Longest string kept as a min/max statistic.
const MAX_STAT_STR: usize = 256;

fn table_err(table: &str, e: impl std::fmt::Display) -> VersionError {
    VersionError::Table {
        table: table.to_string(),
        detail: e.to_string(),
    }
}

/// The schema as an Arrow IPC stream holding no batches, hex-encoded.
pub fn encode_schema(schema: &Schema) -> String {
    let mut w = datafusion::arrow::ipc::writer::StreamWriter::try_new(Vec::new(), schema)
        .expect("an IPC stream header encodes into memory");
    w.finish().expect("an IPC stream end encodes into memory");
    hex::encode(w.into_inner().expect("in-memory writer"))
}

pub fn decode_schema(table: &str, hex_schema: &str) -> Result<SchemaRef> {
    let bytes = hex::decode(hex_schema).map_err(|e| table_err(table, format!("schema: {e}")))?;
    check_first_message(&bytes).map_err(|e| table_err(table, format!("schema: {e}")))?;
    let r =
        datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .map_err(|e| table_err(table, format!("schema: {e}")))?;
    Ok(r.schema())
}

/// The IPC stream's first message must fit in the bytes there are: arrow's reader
/// allocates (and zero-fills) the length a damaged prefix declares, up to 2 GiB for
/// four bytes of input (found by the `manifest_node` fuzz target).
fn check_first_message(bytes: &[u8]) -> std::result::Result<(), String> {
    let word = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    // Current streams: continuation marker 0xFFFFFFFF, then the length; legacy: the length.
    let (len, at) = match word(0) {
        Some(0xFFFF_FFFF) => (word(4), 8),
        w => (w, 4),
    };
    let len = len.ok_or("an IPC stream shorter than its first length prefix")? as usize;
    if len > bytes.len() - at.min(bytes.len()) {
        return Err(format!(
            "an IPC message of {len} bytes declared at byte offset {}, {} bytes there",
            at - 4,
            bytes.len().saturating_sub(at)
        ));
    }
    Ok(())
}

/// The union of two encoded schemas (see `RootEdit::add_segments`), encoded. Columns
/// only one side has become nullable; two struct columns merge field by field; any
/// other type clash is an error (old segments would no longer read).
pub fn merge_schemas(table: &str, old: &str, new: &str) -> Result<String> {
    let (a, b) = (decode_schema(table, old)?, decode_schema(table, new)?);
    let fields = merge_fields(table, "", a.fields(), b.fields())?;
    Ok(encode_schema(&Schema::new(fields)))
}

fn merge_fields(
    table: &str,
    prefix: &str,
    a: &datafusion::arrow::datatypes::Fields,
    b: &datafusion::arrow::datatypes::Fields,
) -> Result<Vec<datafusion::arrow::datatypes::Field>> {
    let mut out = Vec::new();
    for f in a {
        let Some((_, n)) = b.find(f.name()) else {
            out.push(f.as_ref().clone().with_nullable(true));
            continue;
        };
        let nullable = f.is_nullable() || n.is_nullable();
        let dt = match (f.data_type(), n.data_type()) {
            (x, y) if x == y => x.clone(),
            (DataType::Struct(x), DataType::Struct(y)) => {
                let path = format!("{prefix}{}.", f.name());
                DataType::Struct(merge_fields(table, &path, x, y)?.into())
            }
            (x, y) => {
                return Err(table_err(
                    table,
                    format!(
                        "column {prefix}{} holds {x} in the rows already stored and {y} in the new rows; store the new ones under another name",
                        f.name()
                    ),
                ))
            }
        };
        out.push(
            f.as_ref()
                .clone()
                .with_data_type(dt)
                .with_nullable(nullable),
        );
    }
    for f in b {
        if a.find(f.name()).is_none() {
            out.push(f.as_ref().clone().with_nullable(true));
        }
    }
    Ok(out)
}

/// Encodes `batches` as one Parquet segment, stores it, and describes it.
pub fn write_segment(
    table: &str,
    chunks: &mut ChunkWriter<'_>,
    nodes: &mut NodeWriter,
    kv: &dyn MetaKv,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<SegmentMeta> {
    write_segment_blobs(table, chunks, nodes, kv, schema, batches, &[])
}

/// `write_segment` for batches whose columns at `blobs` hold tagged values
/// (`version::blob`). A path none of whose values is a reference is written plain, so
/// the segment lists only the blob columns that refer to stored files.
pub fn write_segment_blobs(
    table: &str,
    chunks: &mut ChunkWriter<'_>,
    nodes: &mut NodeWriter,
    kv: &dyn MetaKv,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    blobs: &[BlobPath],
) -> Result<SegmentMeta> {
    let mut kept: Vec<BlobPath> = Vec::new();
    let mut plain: Vec<BlobPath> = Vec::new();
    let mut refs: BTreeSet<Id> = BTreeSet::new();
    for p in blobs {
        let mut files = BTreeSet::new();
        for b in batches {
            let Some(a) = b
                .column_by_name(&p[0])
                .and_then(|c| blob::at_path(c, &p[1..]))
            else {
                continue;
            };
            let a = a.as_binary_opt::<i32>().ok_or_else(|| {
                table_err(table, format!("blob column {} is not binary", p.join(".")))
            })?;
            blob::referenced_files(a, &mut files)?;
        }
        if files.is_empty() {
            plain.push(p.clone());
        } else {
            kept.push(p.clone());
            refs.extend(files);
        }
    }
    let untagged: Vec<RecordBatch>;
    let batches = if plain.is_empty() {
        batches
    } else {
        untagged = batches
            .iter()
            .map(|b| blob::map_batch(b, &plain, &mut blob::untag))
            .collect::<Result<_>>()?;
        &untagged[..]
    };
    let mut props = WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_dictionary_page_size_limit(DICTIONARY_BYTES)
        .set_created_by("bagbase".into());
    // Parquet statistics leave NaN out, but NaN sorts above every number in SQL
    // (`x > 1e9` matches it): a float column holding NaN gets none, or page pruning
    // would drop its NaN rows.
    for f in schema.fields() {
        if matches!(f.data_type(), DataType::Float32 | DataType::Float64)
            && batches
                .iter()
                .any(|b| b.column_by_name(f.name()).is_some_and(has_nan))
        {
            props = props.set_column_statistics_enabled(
                ColumnPath::new(vec![f.name().clone()]),
                EnabledStatistics::None,
            );
        }
    }
    for p in &kept {
        // Tagged bytes order nothing a query could use, and references all differ.
        let c = ColumnPath::new(p.clone());
        props = props
            .set_column_statistics_enabled(c.clone(), EnabledStatistics::None)
            .set_column_dictionary_enabled(c, false);
    }
    let props = props.build();
    let mut w = ArrowWriter::try_new(Vec::new(), Arc::clone(schema), Some(props))
        .map_err(|e| table_err(table, e))?;
    let mut stats: BTreeMap<String, ColumnStats> = BTreeMap::new();
    let mut rows = 0u64;
    for b in batches {
        w.write(b).map_err(|e| table_err(table, e))?;
        rows += b.num_rows() as u64;
        for (f, col) in schema.fields().iter().zip(b.columns()) {
            if let Some(s) = column_stats(col) {
                merge(stats.entry(f.name().clone()), s);
            }
        }
    }
    let bytes = w.into_inner().map_err(|e| table_err(table, e))?;
    let blob = chunks.put_bytes(&bytes)?;
    let list = nodes.put_chunks(kv, &blob.chunks)?;
    // Every column keeps an entry (a null count of 0 and no min/max says "present, no
    // NULLs"): a column missing from `stats` is one the segment does not have.
    Ok(SegmentMeta {
        id: blob.sha256,
        chunks: list,
        rows,
        bytes: blob.size,
        stats,
        blobs: kept,
        refs: refs.into_iter().collect(),
    })
}

fn merge(e: std::collections::btree_map::Entry<'_, String, ColumnStats>, s: ColumnStats) {
    use std::collections::btree_map::Entry;
    match e {
        Entry::Vacant(v) => {
            v.insert(s);
        }
        Entry::Occupied(mut o) => {
            let cur = o.get_mut();
            cur.nulls += s.nulls;
            cur.min = pick(cur.min.take(), s.min, |a, b| a < b);
            cur.max = pick(cur.max.take(), s.max, |a, b| a > b);
        }
    }
}

fn pick(
    a: Option<StatValue>,
    b: Option<StatValue>,
    better: fn(&StatValue, &StatValue) -> bool,
) -> Option<StatValue> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if better(&b, &a) { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// Min, max and null count of a column, for the types pruning understands.
pub fn column_stats(col: &ArrayRef) -> Option<ColumnStats> {
    let nulls = col.null_count() as u64;
    let (min, max) = match col.data_type() {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::Timestamp(_, _)
        | DataType::Date32
        | DataType::Date64
        | DataType::Duration(_) => {
            let c = compute::cast(col, &DataType::Int64).ok()?;
            let c = c.as_primitive::<Int64Type>();
            (
                agg::min(c).map(StatValue::Int),
                agg::max(c).map(StatValue::Int),
            )
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            let c = compute::cast(col, &DataType::UInt64).ok()?;
            let c = c.as_primitive::<UInt64Type>();
            (
                agg::min(c).map(StatValue::UInt),
                agg::max(c).map(StatValue::UInt),
            )
        }
        DataType::Float32 | DataType::Float64 => {
            if has_nan(col) {
                return Some(ColumnStats {
                    min: None,
                    max: None,
                    nulls,
                });
            }
            let c = compute::cast(col, &DataType::Float64).ok()?;
            let c = c.as_primitive::<Float64Type>();
            (
                agg::min(c).map(StatValue::Float),
                agg::max(c).map(StatValue::Float),
            )
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let c = compute::cast(col, &DataType::Utf8).ok()?;
            let c = c.as_string::<i32>();
            let keep = |s: Option<&str>| {
                s.filter(|s| s.len() <= MAX_STAT_STR)
                    .map(|s| StatValue::Str(s.to_string()))
            };
            let (lo, hi) = (keep(agg::min_string(c)), keep(agg::max_string(c)));
            if lo.is_none() || hi.is_none() {
                (None, None)
            } else {
                (lo, hi)
            }
        }
        DataType::Boolean => {
            let c = col.as_boolean();
            (
                agg::min_boolean(c).map(StatValue::Bool),
                agg::max_boolean(c).map(StatValue::Bool),
            )
        }
        _ => (None, None),
    };
    Some(ColumnStats { min, max, nulls })
}

/// Whether a float column holds a NaN.
fn has_nan(c: &ArrayRef) -> bool {
    match c.data_type() {
        DataType::Float32 => c
            .as_primitive::<datafusion::arrow::datatypes::Float32Type>()
            .iter()
            .flatten()
            .any(|v| v.is_nan()),
        DataType::Float64 => c
            .as_primitive::<Float64Type>()
            .iter()
            .flatten()
            .any(|v| v.is_nan()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};

    /// Fuzz finds (`manifest_node`): four bytes declaring a 2 GiB first message.
    #[test]
    fn a_schema_declaring_more_than_it_holds_is_refused_at_once() {
        for bad in ["32b72f7a", "0ad32f2f", "ffffffff00000080", "ff", ""] {
            let e = decode_schema("t", bad).unwrap_err().to_string();
            assert!(e.contains("schema"), "{bad}: {e}");
        }
        let good = encode_schema(&Schema::new(vec![
            datafusion::arrow::datatypes::Field::new("x", DataType::Int64, true),
        ]));
        assert_eq!(decode_schema("t", &good).unwrap().fields().len(), 1);
    }

    #[test]
    fn stats_and_schema() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(5), None, Some(-2)]));
        let s = column_stats(&a).unwrap();
        assert_eq!(
            (s.min, s.max, s.nulls),
            (Some(StatValue::Int(-2)), Some(StatValue::Int(5)), 1)
        );
        let b: ArrayRef = Arc::new(StringArray::from(vec!["b", "a"]));
        assert_eq!(
            column_stats(&b).unwrap().min,
            Some(StatValue::Str("a".into()))
        );
        let schema = Schema::new(vec![datafusion::arrow::datatypes::Field::new(
            "x",
            DataType::Int64,
            true,
        )]);
        assert_eq!(
            *decode_schema("t", &encode_schema(&schema)).unwrap(),
            schema
        );
    }
}
