//! `version_diff(table, from_ref, to_ref)`: the rows of a table that differ between two
//! refs. Segments (and file buckets) that both sides hold are skipped by their hash;
//! only the rest is read and joined on the table's key. Filters on key columns are
//! pushed into both sides, where segment statistics prune them further.
//!
//! Shape (documented in docs/sql.md): the table's columns (the `to` values, or the
//! `from` values for a removed row), `diff_type`, then `from_<col>` for every non-key
//! column (the old values; NULL for an added row).

use super::segments::SegmentTable;
use super::system;
use crate::store::{ChunkStore, Id};
use crate::version::manifest::{self, Root, SegmentMeta, TableNode};
use crate::version::{refs, segment};
use async_trait::async_trait;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, NullEquality, ScalarValue};
use datafusion::datasource::{provider_as_source, TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{
    case, lit, or, Expr, JoinType, LogicalPlan, LogicalPlanBuilder, TableProviderFilterPushDown,
};
use datafusion::physical_plan::ExecutionPlan;
use std::collections::HashMap;
use std::sync::Arc;

pub const DIFF_TYPE: &str = "diff_type";
/// Marks which side a joined row came from (never NULL on its own side).
const SIDE: &str = "side";

pub fn ext(e: crate::version::VersionError) -> DataFusionError {
    DataFusionError::Plan(e.to_string())
}

/// The root a ref names (a branch reads its working set, like its schema does).
pub fn ref_root(store: &ChunkStore, name: &str) -> Result<Root> {
    let kv = store.kv();
    let r = refs::resolve(kv, name).map_err(ext)?;
    manifest::load_root(kv, &refs::read_root(kv, &r).map_err(ext)?).map_err(ext)
}

/// The string literal arguments of a table function.
pub fn string_args(func: &str, args: &[Expr], names: &[&str]) -> Result<Vec<String>> {
    let usage = format!("{func}({})", names.join(", "));
    if args.len() != names.len() {
        return Err(DataFusionError::Plan(format!(
            "{usage} takes {} arguments, {} given",
            names.len(),
            args.len()
        )));
    }
    args.iter()
        .zip(names)
        .map(|(a, n)| match a {
            Expr::Literal(ScalarValue::Utf8(Some(s)), _)
            | Expr::Literal(ScalarValue::LargeUtf8(Some(s)), _)
            | Expr::Literal(ScalarValue::Utf8View(Some(s)), _) => Ok(s.clone()),
            other => Err(DataFusionError::Plan(format!(
                "{usage}: {n} must be a string literal, found {other}"
            ))),
        })
        .collect()
}

#[derive(Debug)]
pub struct VersionDiffFunc {
    pub store: Arc<ChunkStore>,
}

impl TableFunctionImpl for VersionDiffFunc {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let a = string_args(
            "version_diff",
            args.exprs(),
            &["table", "from_ref", "to_ref"],
        )?;
        let from = ref_root(&self.store, &a[1])?;
        let to = ref_root(&self.store, &a[2])?;
        Ok(Arc::new(diff_table(&self.store, &a[0], &from, &to)?))
    }
}

/// The two sides of a table's diff: only the rows that are not shared by hash.
pub struct Sides {
    pub from: Arc<dyn TableProvider>,
    pub to: Arc<dyn TableProvider>,
    pub schema: SchemaRef,
    pub key: Vec<String>,
    /// Segments only on each side (empty for `files`).
    pub from_segments: Vec<SegmentMeta>,
    pub to_segments: Vec<SegmentMeta>,
}

/// The segments of `a` that `b` does not hold, as multisets of segment hashes (a
/// segment both hold has equal rows on both sides).
fn only_in(a: &[SegmentMeta], b: &[SegmentMeta]) -> Vec<SegmentMeta> {
    let mut count: HashMap<Id, usize> = HashMap::new();
    for s in b {
        *count.entry(s.id).or_default() += 1;
    }
    a.iter()
        .filter(|s| match count.get_mut(&s.id) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .cloned()
        .collect()
}

/// `to`'s fields, then any field only `from` has (nullable), so both sides read alike.
fn merged_schema(from: Option<&SchemaRef>, to: Option<&SchemaRef>) -> Option<SchemaRef> {
    match (from, to) {
        (Some(f), Some(t)) => {
            let mut fields: Vec<Field> = t.fields().iter().map(|x| x.as_ref().clone()).collect();
            for x in f.fields() {
                if t.field_with_name(x.name()).is_err() {
                    fields.push(x.as_ref().clone().with_nullable(true));
                }
            }
            Some(Arc::new(Schema::new(fields)))
        }
        (f, t) => t.or(f).cloned(),
    }
}

/// A root holding only the file buckets of `a` that `b` does not share.
pub fn changed_files(a: &Root, b: &Root) -> Root {
    let files = a
        .files
        .iter()
        .filter(|(n, id)| b.files.get(n) != Some(id))
        .map(|(n, id)| (*n, *id))
        .collect();
    Root {
        files,
        tables: Default::default(),
    }
}

/// The sides of `table`'s diff between two roots.
pub fn sides(store: &Arc<ChunkStore>, table: &str, from: &Root, to: &Root) -> Result<Sides> {
    let kv = store.kv();
    if table == "files" {
        let f = system::files(kv, &changed_files(from, to)).map_err(ext)?;
        let t = system::files(kv, &changed_files(to, from)).map_err(ext)?;
        let schema = Arc::clone(&f.0);
        return Ok(Sides {
            from: Arc::new(system::table(f.0, f.1)?),
            to: Arc::new(system::table(t.0, t.1)?),
            schema,
            key: vec!["path".into()],
            from_segments: vec![],
            to_segments: vec![],
        });
    }
    if system::SYSTEM_TABLES.contains(&table) {
        return Err(DataFusionError::Plan(format!(
            "version_diff compares `files` and data tables; `{table}` is computed from the version records, query it per ref instead"
        )));
    }
    // Only the segments outside the leaves both tables share are read.
    let (a, b) =
        crate::version::table_tree::load_pair(kv, from.tables.get(table), to.tables.get(table))
            .map_err(ext)?;
    let schema_of = |t: &Option<TableNode>| -> Result<Option<SchemaRef>> {
        match t {
            Some(t) => Ok(Some(segment::decode_schema(table, &t.schema).map_err(ext)?)),
            None => Ok(None),
        }
    };
    let (sa, sb) = (schema_of(&a)?, schema_of(&b)?);
    let schema = merged_schema(sa.as_ref(), sb.as_ref())
        .or_else(|| super::user_tables::schema_of(table))
        .ok_or_else(|| {
            DataFusionError::Plan(format!("table \"{table}\" does not exist at either ref"))
        })?;
    let key = b
        .as_ref()
        .or(a.as_ref())
        .map(|t| t.key.clone())
        .filter(|k| !k.is_empty())
        .or_else(|| super::user_tables::key_of(table))
        .unwrap_or_else(|| schema.fields().iter().map(|f| f.name().clone()).collect());
    let empty = Vec::new();
    let sa = a.as_ref().map_or(&empty, |t| &t.segments);
    let sb = b.as_ref().map_or(&empty, |t| &t.segments);
    let (only_a, only_b) = (only_in(sa, sb), only_in(sb, sa));
    let side = |segs: &[SegmentMeta]| -> Arc<dyn TableProvider> {
        Arc::new(SegmentTable {
            store: Arc::clone(store),
            schema: Arc::clone(&schema),
            segments: Arc::new(segs.to_vec()),
        })
    };
    Ok(Sides {
        from: side(&only_a),
        to: side(&only_b),
        schema: Arc::clone(&schema),
        key,
        from_segments: only_a,
        to_segments: only_b,
    })
}

/// The provider `version_diff` returns.
pub fn diff_table(
    store: &Arc<ChunkStore>,
    table: &str,
    from: &Root,
    to: &Root,
) -> Result<DiffTable> {
    let s = sides(store, table, from, to)?;
    for k in &s.key {
        if s.schema.field_with_name(k).is_err() {
            return Err(DataFusionError::Plan(format!(
                "table \"{table}\": key column {k} is not in its schema"
            )));
        }
    }
    let plan = diff_plan(&s, vec![])?;
    Ok(DiffTable {
        schema: Arc::new(plan.schema().as_arrow().clone()),
        sides: s,
    })
}

pub struct DiffTable {
    pub sides: Sides,
    schema: SchemaRef,
}

impl std::fmt::Debug for DiffTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiffTable")
            .field("key", &self.sides.key)
            .finish()
    }
}

/// A column of one side after the join. Each side's columns get their own names
/// (`__f_x`, `__t_x`): pushing filters through a projection resolves columns by name,
/// and the same name on both sides of a join would mix them up.
fn side_name(side: &str, name: &str) -> String {
    format!("__{side}_{name}")
}

fn qcol(side: &str, name: &str) -> Expr {
    Expr::Column(Column::new_unqualified(side_name(side, name)))
}

/// Whether `e` reads only the key columns (then it can filter both sides).
fn on_key_only(e: &Expr, key: &[String]) -> bool {
    let cols = e.column_refs();
    !cols.is_empty() && cols.iter().all(|c| key.contains(&c.name))
}

fn unqualify(e: Expr) -> Result<Expr> {
    e.transform(|e| match e {
        Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(
            c.name,
        )))),
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

/// from ⟗ to on the key, keeping rows whose key is on one side only or whose other
/// columns differ; `side_filters` (on key columns) apply to both inputs.
pub fn diff_plan(s: &Sides, side_filters: Vec<Expr>) -> Result<LogicalPlan> {
    let names: Vec<String> = s.schema.fields().iter().map(|f| f.name().clone()).collect();
    let input = |alias: &str, p: &Arc<dyn TableProvider>| -> Result<LogicalPlan> {
        let mut exprs: Vec<Expr> = names
            .iter()
            .map(|n| Expr::Column(Column::new(Some(alias), n)).alias(side_name(alias, n)))
            .collect();
        exprs.push(lit(true).alias(side_name(alias, SIDE)));
        let mut b = LogicalPlanBuilder::scan(alias, provider_as_source(Arc::clone(p)), None)?;
        if let Some(f) = conjunction(side_filters.iter().cloned()) {
            b = b.filter(f)?;
        }
        b.project(exprs)?.build()
    };
    let from = input("f", &s.from)?;
    let to = input("t", &s.to)?;
    let keys: Vec<Column> = s
        .key
        .iter()
        .map(|k| Column::new_unqualified(side_name("f", k)))
        .collect();
    let tkeys: Vec<Column> = s
        .key
        .iter()
        .map(|k| Column::new_unqualified(side_name("t", k)))
        .collect();
    let values: Vec<&String> = names.iter().filter(|n| !s.key.contains(n)).collect();
    let mut changed = or(qcol("f", SIDE).is_null(), qcol("t", SIDE).is_null());
    for v in &values {
        changed = or(
            changed,
            Expr::BinaryExpr(datafusion::logical_expr::BinaryExpr::new(
                Box::new(qcol("f", v)),
                datafusion::logical_expr::Operator::IsDistinctFrom,
                Box::new(qcol("t", v)),
            )),
        );
    }
    let mut out: Vec<Expr> = Vec::new();
    for n in &names {
        out.push(
            case(qcol("t", SIDE).is_null())
                .when(lit(true), qcol("f", n))
                .otherwise(qcol("t", n))?
                .alias(n),
        );
    }
    out.push(
        case(lit(true))
            .when(qcol("f", SIDE).is_null(), lit("added"))
            .when(qcol("t", SIDE).is_null(), lit("removed"))
            .otherwise(lit("modified"))?
            .alias(DIFF_TYPE),
    );
    for v in &values {
        out.push(qcol("f", v).alias(format!("from_{v}")));
    }
    LogicalPlanBuilder::from(from)
        .join_detailed(
            to,
            JoinType::Full,
            (keys, tkeys),
            None,
            NullEquality::NullEqualsNull,
        )?
        .filter(changed)?
        .project(out)?
        .build()
}

#[async_trait]
impl TableProvider for DiffTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let side_filters = filters
            .iter()
            .filter(|f| on_key_only(f, &self.sides.key))
            .map(|f| unqualify(f.clone()))
            .collect::<Result<Vec<_>>>()?;
        let mut b = LogicalPlanBuilder::from(diff_plan(&self.sides, side_filters)?);
        if let Some(p) = projection {
            let cols: Vec<Expr> = p
                .iter()
                .map(|i| Expr::Column(Column::new_unqualified(self.schema.field(*i).name())))
                .collect();
            b = b.project(cols)?;
        }
        if let Some(n) = limit {
            b = b.limit(0, Some(n))?;
        }
        state.create_physical_plan(&b.build()?).await
    }
}
