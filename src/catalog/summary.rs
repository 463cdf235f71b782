//! `diff_summary(from_ref, to_ref)`: per table and per file, rows added / removed /
//! modified, bytes and chunks added / removed / shared. Works from the manifests:
//! equal buckets and segments are skipped by hash; rows are counted by reading only
//! segments that differ (and not even those when one side has none).
//!
//! Rows: `files` gets one row per changed file (bytes and chunks from its chunk lists);
//! every other table one row per file its changed segments belong to (file_id NULL for
//! tables without a `file_id` column). Documented in docs/sql.md.

use super::diff::{self, ext, ref_root, sides, string_args};
use crate::store::{ChunkStore, Id, MetaKv};
use crate::version::manifest::{self, FileEntry, Root, SegmentMeta};
use crate::version::node;
use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl};
use datafusion::common::Column;
use datafusion::datasource::{MemTable, TableProvider, TableType};
use datafusion::error::Result;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{lit, Expr, LogicalPlanBuilder};
use datafusion::physical_plan::{collect, ExecutionPlan};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

#[derive(Debug)]
pub struct DiffSummaryFunc {
    pub store: Arc<ChunkStore>,
}

impl TableFunctionImpl for DiffSummaryFunc {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let a = string_args("diff_summary", args.exprs(), &["from_ref", "to_ref"])?;
        Ok(Arc::new(DiffSummary {
            store: Arc::clone(&self.store),
            from: ref_root(&self.store, &a[0])?,
            to: ref_root(&self.store, &a[1])?,
        }))
    }
}

#[derive(Debug)]
pub struct DiffSummary {
    store: Arc<ChunkStore>,
    from: Root,
    to: Root,
}

pub fn schema() -> SchemaRef {
    let n = |name: &str| Field::new(name, DataType::Int64, false);
    Arc::new(Schema::new(vec![
        Field::new("table_name", DataType::Utf8, false),
        Field::new("file_id", DataType::Utf8, true),
        Field::new("path", DataType::Utf8, true),
        n("rows_added"),
        n("rows_removed"),
        n("rows_modified"),
        n("bytes_added"),
        n("bytes_removed"),
        n("chunks_added"),
        n("chunks_removed"),
        n("chunks_shared"),
    ]))
}

/// One output row's numbers.
#[derive(Default, Clone, Copy)]
struct Counts {
    rows: [i64; 3],
    bytes_added: i64,
    bytes_removed: i64,
    chunks: [i64; 3],
}

type Key = (String, Option<String>);

/// Chunks added, removed and shared between two chunk lists, with the bytes of the
/// added and removed ones.
fn chunk_delta(a: &[(Id, u32)], b: &[(Id, u32)], c: &mut Counts) {
    let sa: HashSet<&Id> = a.iter().map(|(id, _)| id).collect();
    let sb: HashSet<&Id> = b.iter().map(|(id, _)| id).collect();
    let mut seen = HashSet::new();
    for (id, size) in b {
        if seen.insert(id) {
            if sa.contains(id) {
                c.chunks[2] += 1;
            } else {
                c.chunks[0] += 1;
                c.bytes_added += i64::from(*size);
            }
        }
    }
    seen.clear();
    for (id, size) in a {
        if seen.insert(id) && !sb.contains(id) {
            c.chunks[1] += 1;
            c.bytes_removed += i64::from(*size);
        }
    }
}

fn files_of(kv: &dyn MetaKv, root: &Root) -> Result<BTreeMap<String, FileEntry>> {
    Ok(manifest::list_files(kv, root)
        .map_err(ext)?
        .into_iter()
        .map(|f| (f.file_id.clone(), f))
        .collect())
}

fn chunk_list(kv: &dyn MetaKv, f: Option<&FileEntry>) -> Result<Vec<(Id, u32)>> {
    match f {
        Some(f) => node::get_chunks(kv, &f.chunks).map_err(ext),
        None => Ok(vec![]),
    }
}

fn segment_chunks(kv: &dyn MetaKv, segs: &[&SegmentMeta]) -> Result<Vec<(Id, u32)>> {
    let mut out = Vec::new();
    for s in segs {
        out.extend(node::get_chunks(kv, &s.chunks).map_err(ext)?);
    }
    Ok(out)
}

impl DiffSummary {
    /// Adds the `files` rows; returns the paths of the files in changed buckets.
    fn files(&self, out: &mut BTreeMap<Key, Counts>) -> Result<HashMap<String, String>> {
        let kv = self.store.kv();
        let a = files_of(kv, &diff::changed_files(&self.from, &self.to))?;
        let b = files_of(kv, &diff::changed_files(&self.to, &self.from))?;
        let ids: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for id in ids {
            let (fa, fb) = (a.get(id), b.get(id));
            if fa == fb {
                continue;
            }
            let mut c = Counts::default();
            let kind = match (fa, fb) {
                (None, _) => 0,
                (_, None) => 1,
                _ => 2,
            };
            c.rows[kind] = 1;
            chunk_delta(&chunk_list(kv, fa)?, &chunk_list(kv, fb)?, &mut c);
            out.insert(("files".into(), Some(id.clone())), c);
        }
        Ok(a.into_values()
            .chain(b.into_values())
            .map(|f| (f.file_id, f.path))
            .collect())
    }

    async fn table(
        &self,
        state: &dyn Session,
        name: &str,
        out: &mut BTreeMap<Key, Counts>,
    ) -> Result<()> {
        let kv = self.store.kv();
        let s = sides(&self.store, name, &self.from, &self.to)?;
        if s.from_segments.is_empty() && s.to_segments.is_empty() {
            return Ok(());
        }
        let by_file = s.schema.field_with_name("file_id").is_ok();
        let group = |seg: &SegmentMeta| -> Option<String> {
            by_file
                .then(|| manifest::segment_file(seg).map(str::to_string))
                .flatten()
        };
        let mut groups: BTreeMap<Option<String>, (Vec<&SegmentMeta>, Vec<&SegmentMeta>)> =
            BTreeMap::new();
        for seg in &s.from_segments {
            groups.entry(group(seg)).or_default().0.push(seg);
        }
        for seg in &s.to_segments {
            groups.entry(group(seg)).or_default().1.push(seg);
        }
        for (file, (a, b)) in &groups {
            let c = out.entry((name.to_string(), file.clone())).or_default();
            chunk_delta(&segment_chunks(kv, a)?, &segment_chunks(kv, b)?, c);
            c.bytes_added = b.iter().map(|s| s.bytes as i64).sum();
            c.bytes_removed = a.iter().map(|s| s.bytes as i64).sum();
            // One side empty: every row of the other is added or removed, no read needed.
            if a.is_empty() || b.is_empty() {
                c.rows[0] += b.iter().map(|s| s.rows as i64).sum::<i64>();
                c.rows[1] += a.iter().map(|s| s.rows as i64).sum::<i64>();
            }
        }
        let mixed: Vec<&Option<String>> = groups
            .iter()
            .filter(|(_, (a, b))| !a.is_empty() && !b.is_empty())
            .map(|(f, _)| f)
            .collect();
        if mixed.is_empty() {
            return Ok(());
        }
        let col = |n: &str| Expr::Column(Column::new_unqualified(n));
        let mut keys = vec![col(diff::DIFF_TYPE)];
        if by_file {
            keys.push(col("file_id"));
        }
        let plan = LogicalPlanBuilder::from(diff::diff_plan(&s, vec![])?)
            .aggregate(keys, vec![count(lit(1)).alias("n")])?
            .build()?;
        let exec = state.create_physical_plan(&plan).await?;
        for b in collect(exec, state.task_ctx()).await? {
            let kinds = b.column(0).as_string::<i32>();
            let n = b.column_by_name("n").expect("count column");
            let n = datafusion::arrow::compute::cast(n, &DataType::Int64)?;
            let n = n.as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                let file = if by_file {
                    let f = b.column(1).as_string::<i32>();
                    f.is_valid(i).then(|| f.value(i).to_string())
                } else {
                    None
                };
                if !mixed.contains(&&file) {
                    continue;
                }
                let k = match kinds.value(i) {
                    "added" => 0,
                    "removed" => 1,
                    _ => 2,
                };
                out.entry((name.to_string(), file)).or_default().rows[k] += n.value(i);
            }
        }
        Ok(())
    }

    /// A file's path: from the changed files already read, else from either root.
    fn path_of(&self, known: &HashMap<String, String>, file_id: &str) -> Result<Option<String>> {
        if let Some(p) = known.get(file_id) {
            return Ok(Some(p.clone()));
        }
        let kv = self.store.kv();
        for root in [&self.to, &self.from] {
            if let Some(f) = manifest::find_file(kv, root, file_id).map_err(ext)? {
                return Ok(Some(f.path));
            }
        }
        Ok(None)
    }

    async fn compute(&self, state: &dyn Session) -> Result<RecordBatch> {
        let mut out: BTreeMap<Key, Counts> = BTreeMap::new();
        let known = self.files(&mut out)?;
        let names: std::collections::BTreeSet<&String> = self
            .from
            .tables
            .keys()
            .chain(self.to.tables.keys())
            .collect();
        for name in names {
            if self.from.tables.get(name) != self.to.tables.get(name) {
                self.table(state, name, &mut out).await?;
            }
        }
        let mut paths = Vec::with_capacity(out.len());
        for (_, f) in out.keys() {
            paths.push(match f {
                Some(id) => self.path_of(&known, id)?,
                None => None,
            });
        }
        let i64s = |f: &dyn Fn(&Counts) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(out.values().map(f)))
        };
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                out.keys().map(|k| k.0.as_str()),
            )),
            Arc::new(StringArray::from_iter(out.keys().map(|k| k.1.as_deref()))),
            Arc::new(StringArray::from_iter(paths.iter().map(|p| p.as_deref()))),
            i64s(&|c| c.rows[0]),
            i64s(&|c| c.rows[1]),
            i64s(&|c| c.rows[2]),
            i64s(&|c| c.bytes_added),
            i64s(&|c| c.bytes_removed),
            i64s(&|c| c.chunks[0]),
            i64s(&|c| c.chunks[1]),
            i64s(&|c| c.chunks[2]),
        ];
        Ok(RecordBatch::try_new(schema(), cols)?)
    }
}

#[async_trait]
impl TableProvider for DiffSummary {
    fn schema(&self) -> SchemaRef {
        schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = self.compute(state).await?;
        let m = MemTable::try_new(schema(), vec![vec![batch]])?;
        m.scan(state, projection, filters, limit).await
    }
}
