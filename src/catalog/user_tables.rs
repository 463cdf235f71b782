//! The tables users write with `INSERT`: `lineage_edges`, `experiments`, `models`.
//! Their rows are segments in the branch's working set (and so part of the next
//! version); constraints (NOT NULL, unique keys, references, JSON) are checked under
//! the store's write lock before anything is written. `lineage_edges` also shows the
//! edges the system knows without being told: version → parent (`child_of`),
//! experiment → version (`trained_on`), model → experiment (`produced_by`), episode →
//! the file it was cut from (`derived_from`).

use super::indexed::{cached, digest, CacheKey, IndexedRows, IndexedScanExec, Key};
use crate::store::{ChunkStore, Id, MetaKv};
use crate::version::{self, manifest, refs, rows, Root, VersionError, WorkingEdit};
use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, StringArray, TimestampNanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::Session;
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::Arc;

pub const USER_TABLES: &[&str] = &["lineage_edges", "experiments", "models"];

pub fn is_user_table(name: &str) -> bool {
    USER_TABLES.contains(&name)
}

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, None)
}

fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

/// Arrow's canonical extension name for JSON text. `params` and `metrics` carry it, so
/// the wire server describes them as PostgreSQL `json` (OID 114) and drivers decode them.
pub const JSON_EXTENSION: &str = "arrow.json";

/// A JSON text column: Utf8 marked with [`JSON_EXTENSION`].
fn json(name: &str) -> Field {
    text(name).with_metadata(
        [
            (
                "ARROW:extension:name".to_string(),
                JSON_EXTENSION.to_string(),
            ),
            ("ARROW:extension:metadata".to_string(), String::new()),
        ]
        .into(),
    )
}

/// Every column is nullable so an INSERT may leave some out; NOT NULL is checked here.
pub fn schema_of(name: &str) -> Option<SchemaRef> {
    let fields = match name {
        "lineage_edges" => vec![
            text("source_type"),
            text("source_id"),
            text("target_type"),
            text("target_id"),
            text("relation"),
            Field::new("created_at", ts(), true),
        ],
        "experiments" => vec![
            text("experiment_id"),
            text("name"),
            text("version_id"),
            json("params"),
            json("metrics"),
            text("status"),
            Field::new("started_at", ts(), true),
            Field::new("completed_at", ts(), true),
        ],
        "models" => vec![
            text("model_id"),
            text("name"),
            text("experiment_id"),
            text("uri"),
            json("metrics"),
            Field::new("created_at", ts(), true),
        ],
        _ => return None,
    };
    Some(Arc::new(Schema::new(fields)))
}

pub fn key_of(name: &str) -> Option<Vec<String>> {
    let k: &[&str] = match name {
        "lineage_edges" => &[
            "source_type",
            "source_id",
            "target_type",
            "target_id",
            "relation",
        ],
        "experiments" => &["experiment_id"],
        "models" => &["model_id"],
        _ => return None,
    };
    Some(k.iter().map(|s| s.to_string()).collect())
}

/// Columns that must not be NULL after defaults are filled in.
fn not_null(name: &str) -> Vec<String> {
    let mut cols = key_of(name).unwrap_or_default();
    cols.extend(
        match name {
            "experiments" => &["name", "version_id"][..],
            "models" => &["name"][..],
            _ => &[][..],
        }
        .iter()
        .map(|s| s.to_string()),
    );
    cols
}

/// The id a row gets when the INSERT leaves it out.
fn id_column(table: &str) -> Option<&'static str> {
    match table {
        "experiments" => Some("experiment_id"),
        "models" => Some("model_id"),
        _ => None,
    }
}

const JSON_COLUMNS: &[&str] = &["params", "metrics"];

fn violation(code: &'static str, message: String, detail: Option<String>) -> VersionError {
    VersionError::Constraint {
        code,
        message,
        detail,
    }
}

fn df(e: VersionError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// One of the user tables at one ref.
#[derive(Debug)]
pub struct UserTable {
    store: Arc<ChunkStore>,
    name: &'static str,
    schema: SchemaRef,
    root: Root,
    scope: Option<Id>,
    /// Stored rows, then (lineage_edges) the edges the system derives, read on the first
    /// scan. User tables are hand-written metadata, read whole once per query and
    /// indexed by key on demand: a recursive walk then looks its next rows up
    /// (`index_join`) instead of decoding Parquet and hashing every edge again on each
    /// iteration; listing columns or planning an INSERT reads nothing.
    rows: std::sync::Mutex<Option<Arc<IndexedRows>>>,
    /// The branch an INSERT writes to; None for a tag or version.
    branch: Option<String>,
    ref_name: String,
}

impl UserTable {
    pub fn open(
        store: Arc<ChunkStore>,
        name: &str,
        root: &Root,
        scope: Option<&Id>,
        resolved: &refs::Resolved,
        ref_name: &str,
    ) -> version::Result<Option<UserTable>> {
        let Some(&name) = USER_TABLES.iter().find(|n| **n == name) else {
            return Ok(None);
        };
        let schema = schema_of(name).expect("user table schema");
        Ok(Some(UserTable {
            name,
            schema,
            root: root.clone(),
            scope: scope.copied(),
            rows: Default::default(),
            branch: resolved.branch.clone(),
            ref_name: ref_name.to_string(),
            store,
        }))
    }

    fn rows(&self) -> version::Result<Arc<IndexedRows>> {
        let mut held = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = held.as_ref() {
            return Ok(Arc::clone(m));
        }
        let node_id = self.root.tables.get(self.name).copied();
        let derived = match self.name {
            "lineage_edges" => Some(derived_edges(&self.store, &self.root, self.scope.as_ref())?),
            _ => None,
        };
        let key = CacheKey {
            table: self.name,
            node: node_id,
            derived: derived.as_ref().map_or(Id::of(b""), digest),
        };
        let m = cached(key, || -> version::Result<IndexedRows> {
            let mut batches = match &node_id {
                Some(id) => {
                    let node = manifest::load_table(self.store.kv(), id)?;
                    let cols: Vec<&str> = self
                        .schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect();
                    rows::read_columns(&self.store, self.name, &node, &cols)?
                }
                None => vec![],
            };
            batches.extend(derived);
            IndexedRows::new(self.name, Arc::clone(&self.schema), &batches).map_err(|e| {
                VersionError::Table {
                    table: self.name.into(),
                    detail: e.to_string(),
                }
            })
        })?;
        *held = Some(Arc::clone(&m));
        Ok(m)
    }
}

/// version → parent, experiment → version, model → experiment.
fn derived_edges(
    store: &ChunkStore,
    root: &Root,
    scope: Option<&Id>,
) -> version::Result<RecordBatch> {
    let kv = store.kv();
    let mut e: [Vec<String>; 5] = Default::default();
    let mut at: Vec<Option<i64>> = Vec::new();
    let mut push = |row: [&str; 5], t: Option<i64>| {
        for (c, v) in e.iter_mut().zip(row) {
            c.push(v.to_string());
        }
        at.push(t);
    };
    let versions = match scope {
        Some(v) => version::log(kv, v)?,
        None => version::record::all(kv)?,
    };
    for (id, v) in &versions {
        for p in &v.parents {
            let (c, p) = (id.hex(), p.hex());
            push(
                ["version", &c, "version", &p, "child_of"],
                Some(v.created_at),
            );
        }
    }
    // (table, id column, its node type, target type, target column, relation, time).
    for (table, from, from_type, to_type, to_col, rel, time) in [
        (
            "experiments",
            "experiment_id",
            "experiment",
            "version",
            "version_id",
            "trained_on",
            Some("started_at"),
        ),
        (
            "models",
            "model_id",
            "model",
            "experiment",
            "experiment_id",
            "produced_by",
            Some("created_at"),
        ),
        (
            "episodes",
            "episode_id",
            "episode",
            "file",
            "file_id",
            "derived_from",
            None,
        ),
    ] {
        let Some(id) = root.tables.get(table) else {
            continue;
        };
        let node = manifest::load_table(kv, id)?;
        let mut cols = vec![from, to_col];
        cols.extend(time);
        for b in rows::read_columns(store, table, &node, &cols)? {
            let (Some(f), Some(t)) = (b.column_by_name(from), b.column_by_name(to_col)) else {
                continue;
            };
            let (f, t) = (f.as_string::<i32>(), t.as_string::<i32>());
            let when = time
                .and_then(|c| b.column_by_name(c))
                .map(|w| w.as_primitive::<datafusion::arrow::datatypes::TimestampNanosecondType>());
            for i in 0..b.num_rows() {
                if f.is_valid(i) && t.is_valid(i) {
                    let w = when.and_then(|w| w.is_valid(i).then(|| w.value(i)));
                    push([from_type, f.value(i), to_type, t.value(i), rel], w);
                }
            }
        }
    }
    let mut cols: Vec<ArrayRef> = e
        .iter()
        .map(|c| Arc::new(StringArray::from_iter_values(c)) as ArrayRef)
        .collect();
    cols.push(Arc::new(TimestampNanosecondArray::from(at)));
    RecordBatch::try_new(schema_of("lineage_edges").expect("schema"), cols).map_err(|e| {
        VersionError::Table {
            table: "lineage_edges".into(),
            detail: e.to_string(),
        }
    })
}

#[async_trait]
impl TableProvider for UserTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let rows = self.rows().map_err(df)?;
        // An equality on a text column reads that key's rows from its index (the
        // filter stays above: pushdown is inexact).
        let key = filters.iter().find_map(|f| Key::of(&rows, f));
        let scan = IndexedScanExec::try_new(Arc::clone(&rows), projection, limit)?;
        Ok(Arc::new(scan.with_key(key)))
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(branch) = &self.branch else {
            return Err(df(violation(
                "25006",
                format!(
                    "cannot insert into {}: ref '{}' is a tag or version, which never changes",
                    self.name, self.ref_name
                ),
                Some("insert on a branch: connect to (or qualify with) a branch name".into()),
            )));
        };
        if op != InsertOp::Append {
            return Err(DataFusionError::NotImplemented(format!(
                "{op} into {}: only INSERT appends rows",
                self.name
            )));
        }
        let sink = UserSink {
            store: Arc::clone(&self.store),
            table: self.name,
            branch: branch.clone(),
            schema: Arc::clone(&self.schema),
        };
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}

#[derive(Debug)]
struct UserSink {
    store: Arc<ChunkStore>,
    table: &'static str,
    branch: String,
    schema: SchemaRef,
}

impl DisplayAs for UserSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "UserSink: table={} branch={}", self.table, self.branch)
    }
}

/// Rows held per INSERT (user tables are hand-written metadata, not bulk data).
const MAX_INSERT_ROWS: usize = 1_000_000;

#[async_trait]
impl DataSink for UserSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        mut data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let mut batches = Vec::new();
        let mut n = 0usize;
        while let Some(b) = data.next().await {
            let b = b?;
            n += b.num_rows();
            if n > MAX_INSERT_ROWS {
                return Err(DataFusionError::ResourcesExhausted(format!(
                    "INSERT into {} of more than {MAX_INSERT_ROWS} rows",
                    self.table
                )));
            }
            batches.push(b);
        }
        let store = Arc::clone(&self.store);
        let (table, branch, schema) = (self.table, self.branch.clone(), Arc::clone(&self.schema));
        tokio::task::spawn_blocking(move || -> version::Result<u64> {
            let rows = prepare(store.kv(), table, &schema, batches)?;
            let key = key_of(table).expect("user table key");
            let mut t = rows::TableEdit::begin(&store, &branch, table, &key)?;
            check_unique(t.working(), &store, table, &rows)?;
            if table == "models" {
                check_experiments(t.working(), &store, &rows)?;
            }
            let n = t.append(&rows)?;
            t.publish()?;
            Ok(n)
        })
        .await
        .map_err(|e| DataFusionError::Execution(format!("insert task: {e}")))?
        .map_err(df)
    }
}

fn strings(b: &RecordBatch, col: &str) -> Option<StringArray> {
    b.column_by_name(col).map(|c| c.as_string::<i32>().clone())
}

/// Fills defaults (generated ids, `now()` times), checks NOT NULL and JSON, and
/// resolves `experiments.version_id` to a full version id.
fn prepare(
    kv: &dyn MetaKv,
    table: &str,
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
) -> version::Result<Vec<RecordBatch>> {
    let now = version::record::now_ns();
    let mut out = Vec::new();
    for b in batches {
        let n = b.num_rows();
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        for f in schema.fields() {
            let c = b.column_by_name(f.name()).cloned().ok_or_else(|| {
                violation("42703", format!("column {} is missing", f.name()), None)
            })?;
            let c = datafusion::arrow::compute::cast(&c, f.data_type())
                .map_err(|e| violation("42804", format!("column {}: {e}", f.name()), None))?;
            let filled: ArrayRef = match (f.name().as_str(), f.data_type()) {
                (name, _) if Some(name) == id_column(table) => {
                    let s = c.as_string::<i32>();
                    Arc::new(StringArray::from_iter((0..n).map(|i| {
                        Some(if s.is_valid(i) {
                            s.value(i).to_string()
                        } else {
                            hex::encode(crate::users::random_bytes::<8>())
                        })
                    })))
                }
                ("created_at" | "started_at", DataType::Timestamp(_, _)) => {
                    let t =
                        c.as_primitive::<datafusion::arrow::datatypes::TimestampNanosecondType>();
                    Arc::new(TimestampNanosecondArray::from_iter(
                        (0..n).map(|i| Some(if t.is_valid(i) { t.value(i) } else { now })),
                    ))
                }
                ("version_id", _) => {
                    let s = c.as_string::<i32>();
                    let mut v = Vec::with_capacity(n);
                    for i in 0..n {
                        v.push(if s.is_valid(i) {
                            Some(resolve_version(kv, s.value(i))?)
                        } else {
                            None
                        });
                    }
                    Arc::new(StringArray::from(v))
                }
                _ => c,
            };
            cols.push(filled);
        }
        let b =
            RecordBatch::try_new(Arc::clone(schema), cols).map_err(|e| VersionError::Table {
                table: table.into(),
                detail: e.to_string(),
            })?;
        for c in not_null(table) {
            let col = b.column_by_name(&c).expect("schema column");
            if col.null_count() > 0 {
                return Err(violation(
                    "23502",
                    format!("null value in column \"{c}\" of relation \"{table}\" violates not-null constraint"),
                    None,
                ));
            }
        }
        for c in JSON_COLUMNS {
            let Some(s) = strings(&b, c) else { continue };
            for v in s.iter().flatten() {
                if let Err(e) = serde_json::from_str::<serde_json::Value>(v) {
                    return Err(violation(
                        "22P02",
                        format!("invalid input syntax for type json in column \"{c}\" of relation \"{table}\""),
                        Some(format!("{e}: {v}")),
                    ));
                }
            }
        }
        out.push(b);
    }
    Ok(out)
}

fn resolve_version(kv: &dyn MetaKv, name: &str) -> version::Result<String> {
    match refs::resolve(kv, name) {
        Ok(r) => Ok(r.version.hex()),
        Err(e @ (VersionError::UnknownRef { .. } | VersionError::AmbiguousRef { .. })) => Err(violation(
            "23503",
            format!("insert into experiments violates the reference to versions: version_id '{name}' is not a version"),
            Some(e.to_string()),
        )),
        Err(e) => Err(e),
    }
}

/// The key values already in `table` in the working set being edited.
fn existing_keys(
    edit: &mut WorkingEdit<'_>,
    chunks: &ChunkStore,
    table: &str,
    key: &[String],
) -> version::Result<HashSet<Vec<String>>> {
    let mut out = HashSet::new();
    let Some(node) = edit.root.table(table)?.cloned() else {
        return Ok(out);
    };
    let cols: Vec<&str> = key.iter().map(|s| s.as_str()).collect();
    for b in rows::read_columns(chunks, table, &node, &cols)? {
        out.extend(key_rows(&b, key));
    }
    Ok(out)
}

fn key_rows(b: &RecordBatch, key: &[String]) -> Vec<Vec<String>> {
    let cols: Vec<Option<StringArray>> = key.iter().map(|k| strings(b, k)).collect();
    (0..b.num_rows())
        .map(|i| {
            cols.iter()
                .map(|c| {
                    c.as_ref()
                        .filter(|c| c.is_valid(i))
                        .map_or(String::new(), |c| c.value(i).to_string())
                })
                .collect()
        })
        .collect()
}

fn check_unique(
    edit: &mut WorkingEdit<'_>,
    chunks: &ChunkStore,
    table: &str,
    new: &[RecordBatch],
) -> version::Result<()> {
    let key = key_of(table).expect("user table key");
    let mut seen = existing_keys(edit, chunks, table, &key)?;
    for b in new {
        for k in key_rows(b, &key) {
            if !seen.insert(k.clone()) {
                return Err(violation(
                    "23505",
                    format!("duplicate key value violates unique constraint \"{table}_pkey\""),
                    Some(format!(
                        "Key ({})=({}) already exists.",
                        key.join(", "),
                        k.join(", ")
                    )),
                ));
            }
        }
    }
    Ok(())
}

fn check_experiments(
    edit: &mut WorkingEdit<'_>,
    chunks: &ChunkStore,
    new: &[RecordBatch],
) -> version::Result<()> {
    let known = existing_keys(edit, chunks, "experiments", &["experiment_id".to_string()])?;
    for b in new {
        let Some(s) = strings(b, "experiment_id") else {
            continue;
        };
        for v in s.iter().flatten() {
            if !known.contains(&vec![v.to_string()]) {
                return Err(violation(
                    "23503",
                    "insert or update on table \"models\" violates foreign key constraint \"models_experiment_id_fkey\"".into(),
                    Some(format!("Key (experiment_id)=({v}) is not present in table \"experiments\".")),
                ));
            }
        }
    }
    Ok(())
}
