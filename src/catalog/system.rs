//! The system tables every schema holds: `files`, `versions`, `refs`, `storage`.
//! Each is built from the manifest and version records when a query names it.

use crate::store::{Id, MetaKv};
use crate::version::{self, manifest, refs, storage, Root, Version};
use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int64Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampNanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::datasource::MemTable;
use std::sync::Arc;

pub const SYSTEM_TABLES: &[&str] = &["files", "versions", "refs", "storage"];

type VResult<T> = crate::version::Result<T>;

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, None)
}

pub fn table(schema: SchemaRef, cols: Vec<ArrayRef>) -> datafusion::error::Result<MemTable> {
    let batch = RecordBatch::try_new(Arc::clone(&schema), cols)?;
    MemTable::try_new(schema, vec![vec![batch]])
}

fn strings<'a>(it: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(it))
}

pub fn files(kv: &dyn MetaKv, root: &Root) -> VResult<(SchemaRef, Vec<ArrayRef>)> {
    let mut f = manifest::list_files(kv, root)?;
    f.sort_by(|a, b| a.path.cmp(&b.path));
    let schema = Arc::new(Schema::new(vec![
        Field::new("file_id", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("format", DataType::Utf8, false),
        Field::new("size_bytes", DataType::Int64, false),
        Field::new("sha256", DataType::Utf8, false),
        Field::new("chunk_count", DataType::Int64, false),
        Field::new("ingested_at", ts(), false),
    ]));
    let sha: Vec<String> = f.iter().map(|e| e.sha256.hex()).collect();
    let cols: Vec<ArrayRef> = vec![
        strings(f.iter().map(|e| e.file_id.as_str())),
        strings(f.iter().map(|e| e.path.as_str())),
        strings(f.iter().map(|e| e.format.as_str())),
        Arc::new(Int64Array::from_iter_values(
            f.iter().map(|e| e.size_bytes as i64),
        )),
        strings(sha.iter().map(|s| s.as_str())),
        Arc::new(Int64Array::from_iter_values(
            f.iter().map(|e| e.chunk_count as i64),
        )),
        Arc::new(TimestampNanosecondArray::from_iter_values(
            f.iter().map(|e| e.ingested_at),
        )),
    ];
    Ok((schema, cols))
}

/// `scope`: `None` lists every version in the store; `Some(v)` the history of `v`.
pub fn versions(kv: &dyn MetaKv, scope: Option<&Id>) -> VResult<(SchemaRef, Vec<ArrayRef>)> {
    let mut all: Vec<(Id, Version)> = match scope {
        Some(v) => version::log(kv, v)?,
        None => version::record::all(kv)?,
    };
    all.sort_by(|a, b| b.1.created_at.cmp(&a.1.created_at).then(a.0.cmp(&b.0)));
    let schema = Arc::new(Schema::new(vec![
        Field::new("version_id", DataType::Utf8, false),
        Field::new(
            "parents",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        ),
        Field::new("branch", DataType::Utf8, false),
        Field::new("author", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
        Field::new("created_at", ts(), false),
        Field::new("root_id", DataType::Utf8, false),
    ]));
    let ids: Vec<String> = all.iter().map(|(id, _)| id.hex()).collect();
    let roots: Vec<String> = all.iter().map(|(_, v)| v.root.hex()).collect();
    let mut parents = ListBuilder::new(StringBuilder::new());
    for (_, v) in &all {
        for p in &v.parents {
            parents.values().append_value(p.hex());
        }
        parents.append(true);
    }
    let cols: Vec<ArrayRef> = vec![
        strings(ids.iter().map(|s| s.as_str())),
        Arc::new(parents.finish()),
        strings(all.iter().map(|(_, v)| v.branch.as_str())),
        strings(all.iter().map(|(_, v)| v.author.as_str())),
        strings(all.iter().map(|(_, v)| v.message.as_str())),
        Arc::new(TimestampNanosecondArray::from_iter_values(
            all.iter().map(|(_, v)| v.created_at),
        )),
        strings(roots.iter().map(|s| s.as_str())),
    ];
    Ok((schema, cols))
}

pub fn refs_table(kv: &dyn MetaKv) -> VResult<(SchemaRef, Vec<ArrayRef>)> {
    let mut r = refs::list(kv)?;
    r.sort_by(|a, b| a.0.cmp(&b.0));
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("version_id", DataType::Utf8, false),
    ]));
    let ids: Vec<String> = r.iter().map(|(_, _, id)| id.hex()).collect();
    let cols: Vec<ArrayRef> = vec![
        strings(r.iter().map(|(n, _, _)| n.as_str())),
        strings(r.iter().map(|(_, k, _)| k.as_str())),
        strings(ids.iter().map(|s| s.as_str())),
    ];
    Ok((schema, cols))
}

pub fn storage_table(kv: &dyn MetaKv, scope: Option<&Id>) -> VResult<(SchemaRef, Vec<ArrayRef>)> {
    let mut rows = storage::storage_rows(kv)?;
    if let Some(v) = scope {
        let keep: std::collections::HashSet<Id> =
            version::log(kv, v)?.into_iter().map(|(id, _)| id).collect();
        rows.retain(|r| keep.contains(&r.version_id));
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("version_id", DataType::Utf8, false),
        Field::new("logical_bytes", DataType::Int64, false),
        Field::new("stored_bytes", DataType::Int64, false),
        Field::new("chunks", DataType::Int64, false),
        Field::new("dedup_ratio", DataType::Float64, false),
        Field::new("history_logical_bytes", DataType::Int64, false),
        Field::new("unique_bytes", DataType::Int64, false),
        Field::new("compression_ratio", DataType::Float64, false),
    ]));
    let ids: Vec<String> = rows.iter().map(|r| r.version_id.hex()).collect();
    let i64s = |f: fn(&storage::StorageRow) -> u64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| f(r) as i64),
        ))
    };
    let cols: Vec<ArrayRef> = vec![
        strings(ids.iter().map(|s| s.as_str())),
        i64s(|r| r.logical_bytes),
        i64s(|r| r.stored_bytes),
        i64s(|r| r.chunks),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.dedup_ratio()),
        )),
        i64s(|r| r.history_logical_bytes),
        i64s(|r| r.unique_bytes),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| {
            if r.stored_bytes == 0 {
                1.0
            } else {
                r.unique_bytes as f64 / r.stored_bytes as f64
            }
        }))),
    ];
    Ok((schema, cols))
}

/// Builds one system table as a `MemTable`.
pub fn build(
    kv: &dyn MetaKv,
    name: &str,
    root: &Root,
    scope: Option<&Id>,
) -> datafusion::error::Result<Option<MemTable>> {
    let ext =
        |e: crate::version::VersionError| datafusion::error::DataFusionError::External(Box::new(e));
    let parts = match name {
        "files" => files(kv, root),
        "versions" => versions(kv, scope),
        "refs" => refs_table(kv),
        "storage" => storage_table(kv, scope),
        _ => return Ok(None),
    }
    .map_err(ext)?;
    Ok(Some(table(parts.0, parts.1)?))
}
