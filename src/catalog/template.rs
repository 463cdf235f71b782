//! Generic plans: statements that differ only in the literals of their WHERE clauses
//! (`... WHERE episode_id = 17 AND step_index = 4`, then `= 912 AND = 33`) share one
//! physical plan, as PostgreSQL's generic plans serve prepared statements. A point
//! lookup planned from scratch costs DataFusion ≈ 1.5 ms; binding new values into a
//! kept plan costs tens of microseconds.
//!
//! - [`normalize`] turns each literal compared with a column (`col op literal`,
//!   `col BETWEEN literal AND literal`, `col IN (literal, ...)`) in the WHERE clause of
//!   any SELECT of a statement into a placeholder `$n`: the text with placeholders is
//!   the key, the literals are the values.
//! - The plan cache plans the key once (`plans.rs`): placeholders typed by DataFusion
//!   from the columns they meet, the logical plan optimized with them, then each
//!   replaced by a *sentinel* (an unusual value of its type, [`sentinel`]) for physical
//!   planning, with segment tables told not to prune (`Generic`): they keep every
//!   segment and its statistics on the scan instead.
//! - [`bind`] makes a run's plan: sentinels replaced by the values in predicates of
//!   Parquet scans and filters (`BoundFilterExec`, under the generic filter's
//!   properties), in the filters and projections of a fused walk
//!   (`WalkExec`) and in the key of a user-table scan read through its index
//!   (`IndexedScanExec`), and each segment scan pruned again with the bound predicate
//!   (segment statistics, as `SegmentTable::scan` does).
//! - [`check`] accepts a generic plan only if every sentinel is found in it and only in
//!   nodes `bind` rewrites, and binding other values leaves none behind; else the
//!   statement is planned per run as before.
//!
//! A value is bound only when its type converts to the placeholder's without loss
//! (`int_col = 5.5` is planned as usual); what the optimizer did with a literal's
//! value (folding, unwrapping casts) it cannot do with a placeholder, so a generic
//! plan is right for every value by construction.

use super::bound_filter::BoundFilterExec;
use super::index_join::IndexLookupJoinExec;
use super::indexed::IndexedScanExec;
use super::lookup::{parquet_scan, LookupExec};
use super::reader::SegmentChunks;
use super::segments::prune_mask;
use super::walk::WalkExec;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::ScalarValue;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{
    FileGroup, FileScanConfig, FileScanConfigBuilder, FileSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::{displayable, ExecutionPlan};
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Query, SetExpr, Statement, TableFactor, UnaryOperator, Value,
};
use std::sync::Arc;

/// Marks the session a generic plan is made in: segment tables keep every segment.
#[derive(Debug, Default)]
pub struct Generic;

/// A statement with its WHERE literals taken out.
#[derive(Debug, PartialEq)]
pub struct Normalized {
    /// The statement's text with `$1`, `$2`, ... where the literals were.
    pub key: String,
    /// The literals, in placeholder order.
    pub values: Vec<ScalarValue>,
}

/// The statement with its WHERE literals as placeholders, if it is a query that has
/// any (and no placeholders of its own).
pub fn normalize(statement: &Statement) -> Option<Normalized> {
    let Statement::Query(q) = statement else {
        return None;
    };
    if statement.to_string().contains('$') {
        return None;
    }
    let mut q = q.clone();
    let mut values = Vec::new();
    query(&mut q, &mut values);
    if values.is_empty() {
        return None;
    }
    Some(Normalized {
        key: Statement::Query(q).to_string(),
        values,
    })
}

fn query(q: &mut Query, values: &mut Vec<ScalarValue>) {
    if let Some(with) = &mut q.with {
        for cte in &mut with.cte_tables {
            query(&mut cte.query, values);
        }
    }
    set_expr(&mut q.body, values);
}

fn set_expr(s: &mut SetExpr, values: &mut Vec<ScalarValue>) {
    match s {
        SetExpr::Select(select) => {
            for t in &mut select.from {
                table_factor(&mut t.relation, values);
                for j in &mut t.joins {
                    table_factor(&mut j.relation, values);
                }
            }
            if let Some(w) = &mut select.selection {
                condition(w, values);
            }
        }
        SetExpr::Query(q) => query(q, values),
        SetExpr::SetOperation { left, right, .. } => {
            set_expr(left, values);
            set_expr(right, values);
        }
        _ => {}
    }
}

fn table_factor(t: &mut TableFactor, values: &mut Vec<ScalarValue>) {
    if let TableFactor::Derived { subquery, .. } = t {
        query(subquery, values);
    }
}

/// Walks a WHERE condition through AND/OR/NOT and parentheses.
fn condition(e: &mut Expr, values: &mut Vec<ScalarValue>) {
    match e {
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And | BinaryOperator::Or => {
                condition(left, values);
                condition(right, values);
            }
            BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq => {
                if is_column(left) {
                    take(right, values);
                } else if is_column(right) {
                    take(left, values);
                }
            }
            _ => {}
        },
        Expr::Nested(inner) => condition(inner, values),
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => condition(expr, values),
        Expr::Between {
            expr, low, high, ..
        } if is_column(expr) => {
            take(low, values);
            take(high, values);
        }
        Expr::InList { expr, list, .. } if is_column(expr) => {
            for item in list {
                take(item, values);
            }
        }
        Expr::InSubquery { subquery, .. } => query(subquery, values),
        Expr::Exists { subquery, .. } | Expr::Subquery(subquery) => query(subquery, values),
        _ => {}
    }
}

fn is_column(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
}

/// Replaces `e` by the next placeholder if it is a literal number or string.
fn take(e: &mut Expr, values: &mut Vec<ScalarValue>) {
    if let Some(v) = literal(e) {
        values.push(v);
        *e = Expr::value(Value::Placeholder(format!("${}", values.len())));
    }
}

/// A literal as DataFusion plans it: integers Int64, other numbers Float64, strings
/// Utf8. Integers beyond i64 (planned as decimals) are left in the text.
fn literal(e: &Expr) -> Option<ScalarValue> {
    let (negative, value) = match e {
        Expr::Value(v) => (false, &v.value),
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            Expr::Value(v) if matches!(v.value, Value::Number(..)) => (true, &v.value),
            _ => return None,
        },
        _ => return None,
    };
    match value {
        Value::Number(n, _) => number(n, negative),
        Value::SingleQuotedString(s) => Some(ScalarValue::Utf8(Some(s.clone()))),
        _ => None,
    }
}

/// A number literal's value as DataFusion plans it (negated if `negative`): Int64,
/// else Float64 if it has a point or exponent; `None` past i64 (a decimal).
pub fn number(digits: &str, negative: bool) -> Option<ScalarValue> {
    let text = if negative {
        format!("-{digits}")
    } else {
        digits.to_string()
    };
    if let Ok(i) = text.parse::<i64>() {
        Some(ScalarValue::Int64(Some(i)))
    } else if digits.contains(['.', 'e', 'E']) {
        text.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| ScalarValue::Float64(Some(f)))
    } else {
        None
    }
}

/// The `k`-th sentinel of a placeholder typed `t`, if bagbase binds that type: values
/// nobody writes, so finding their text in a plan shows where a value went.
pub fn sentinel(t: &DataType, k: usize) -> Option<ScalarValue> {
    let k = k as i64;
    Some(match t {
        DataType::Int32 => ScalarValue::Int32(Some(-2_123_456_700 - k as i32)),
        DataType::Int64 => ScalarValue::Int64(Some(-8_765_432_123_456_700 - k)),
        DataType::UInt32 => ScalarValue::UInt32(Some(4_123_456_700 + k as u32)),
        DataType::UInt64 => ScalarValue::UInt64(Some(18_123_456_789_012_345_600 + k as u64)),
        DataType::Float64 => ScalarValue::Float64(Some(-8_765_432.125 - k as f64)),
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => {
            ScalarValue::Utf8(Some(format!("bagbase-sentinel-{k}-zq")))
                .cast_to(t)
                .ok()?
        }
        _ => return None,
    })
}

/// `v` as a value of the placeholder's type `t`, if that loses nothing.
pub fn convert(v: &ScalarValue, t: &DataType) -> Option<ScalarValue> {
    let numeric = |d: &DataType| d.is_integer() || d.is_floating();
    let source = v.data_type();
    let same_family = (numeric(&source) && numeric(t))
        || (matches!(source, DataType::Utf8)
            && matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8));
    if !same_family {
        return None;
    }
    let c = v.cast_to(t).ok()?;
    // A number must come back as itself: 5.5 into an integer column, or an integer
    // too large for it, is planned with its literal instead.
    if numeric(t) && c.cast_to(&source).ok()? != *v {
        return None;
    }
    Some(c)
}

/// The text a sentinel has in a displayed plan.
pub fn shown(v: &ScalarValue) -> String {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether `plan` is a generic plan `bind` can serve: every sentinel appears, only in
/// nodes `bind` rewrites (filters, Parquet scans, walks, keyed user-table scans), and
/// binding `others` (another set of sentinels) leaves none of `sentinels` anywhere.
pub fn check(
    plan: &Arc<dyn ExecutionPlan>,
    sentinels: &[ScalarValue],
    others: &[ScalarValue],
) -> Result<bool> {
    let texts: Vec<String> = sentinels.iter().map(shown).collect();
    let whole = displayable(plan.as_ref()).indent(true).to_string();
    if !texts.iter().all(|t| whole.contains(t.as_str())) {
        return Ok(false);
    }
    if !only_in_bound_nodes(plan, &texts) {
        return Ok(false);
    }
    let rebound = bind(plan, sentinels, others)?;
    let whole = displayable(rebound.as_ref()).indent(true).to_string();
    Ok(!texts.iter().any(|t| whole.contains(t.as_str())))
}

fn only_in_bound_nodes(plan: &Arc<dyn ExecutionPlan>, texts: &[String]) -> bool {
    let own = displayable(plan.as_ref()).one_line().to_string();
    let holds = texts.iter().any(|t| own.contains(t.as_str()));
    // An index lookup's build filters are applied from its `Lookup`, which `bind`
    // does not rewrite: a value there keeps the plan from being generic.
    if plan.downcast_ref::<IndexLookupJoinExec>().is_some_and(|j| {
        texts
            .iter()
            .any(|t| j.lookup().describe().contains(t.as_str()))
    }) {
        return false;
    }
    let bound = plan.downcast_ref::<FilterExec>().is_some()
        || parquet_scan(plan).is_some()
        || plan.downcast_ref::<WalkExec>().is_some()
        || plan
            .downcast_ref::<IndexedScanExec>()
            .is_some_and(|s| s.key().is_some());
    (!holds || bound)
        && plan
            .children()
            .iter()
            .all(|c| only_in_bound_nodes(c, texts))
}

/// `plan` with each value of `from` replaced by the one at the same place in `to`,
/// and its segment scans pruned for the new predicates.
pub fn bind(
    plan: &Arc<dyn ExecutionPlan>,
    from: &[ScalarValue],
    to: &[ScalarValue],
) -> Result<Arc<dyn ExecutionPlan>> {
    let children = plan
        .children()
        .into_iter()
        .map(|c| bind(c, from, to))
        .collect::<Result<Vec<_>>>()?;
    if let Some(f) = plan.downcast_ref::<FilterExec>() {
        let child = children
            .into_iter()
            .next()
            .unwrap_or_else(|| Arc::clone(f.input()));
        let predicate = substitute(f.predicate(), from, to)?;
        // Under the generic filter's properties when its input kept its own (the
        // nodes above then keep theirs), else a filter planned anew.
        if let Some(bound) = BoundFilterExec::new(plan, Arc::clone(&predicate), Arc::clone(&child))
        {
            return Ok(Arc::new(bound));
        }
        let filter = FilterExecBuilder::from(f)
            .with_predicate(predicate)
            .with_input(child)
            .build()?;
        return Ok(Arc::new(filter));
    }
    if let Some(w) = plan.downcast_ref::<WalkExec>() {
        let child = children
            .into_iter()
            .next()
            .unwrap_or_else(|| Arc::clone(w.static_term()));
        let walk = w.map_expressions(child, |e| substitute(e, from, to))?;
        return Ok(Arc::new(walk));
    }
    if let Some(scan) = plan.downcast_ref::<IndexedScanExec>() {
        return Ok(match scan.key() {
            Some(k) => Arc::new(scan.with_key_value(substitute(&k.value, from, to)?)),
            None => Arc::clone(plan),
        });
    }
    if let Some((config, source)) = parquet_scan(plan) {
        let Some(predicate) = source.filter() else {
            return Ok(Arc::clone(plan));
        };
        let predicate = substitute(&predicate, from, to)?;
        let groups = prune_groups(config, &predicate);
        // A scan left with a segment or two is read without DataFusion's Parquet
        // scan. It keeps the generic scan's properties: binding changes values, not
        // the plan's shape, and the nodes above then keep theirs too (below).
        if let Some(l) = LookupExec::bound(config, Some(&predicate), &groups, plan.properties()) {
            return Ok(Arc::new(l));
        }
        let source = source.with_predicate(predicate);
        let config = FileScanConfigBuilder::from(config.clone())
            .with_source(Arc::new(source))
            .with_file_groups(groups)
            .build();
        return Ok(DataSourceExec::from_data_source(config));
    }
    // Children with the very properties they had (a `LookupExec`) leave a node's own
    // properties as they were: no recomputing equivalences per run.
    replace_children_if_necessary(Arc::clone(plan), children)
}

fn substitute(
    e: &Arc<dyn PhysicalExpr>,
    from: &[ScalarValue],
    to: &[ScalarValue],
) -> Result<Arc<dyn PhysicalExpr>> {
    Ok(Arc::clone(e)
        .transform_up(|e| {
            if let Some(l) = e.downcast_ref::<Literal>() {
                if let Some(i) = from.iter().position(|s| s == l.value()) {
                    let bound: Arc<dyn PhysicalExpr> = Arc::new(Literal::new(to[i].clone()));
                    return Ok(Transformed::yes(bound));
                }
            }
            Ok(Transformed::no(e))
        })?
        .data)
}

/// The scan's file groups without the segments the predicate rules out by their
/// statistics; every group stays (maybe empty), so the plan's partitioning holds.
fn prune_groups(config: &FileScanConfig, predicate: &Arc<dyn PhysicalExpr>) -> Vec<FileGroup> {
    let schema: SchemaRef = Arc::clone(config.file_schema());
    let files: Vec<&PartitionedFile> = config.file_groups.iter().flat_map(|g| g.iter()).collect();
    let metas: Option<Vec<_>> = files
        .iter()
        .map(|f| {
            f.extensions
                .get::<SegmentChunks>()
                .and_then(|c| c.meta.as_deref())
        })
        .collect();
    let keep = metas.and_then(|m| prune_mask(&schema, m.as_slice(), predicate));
    let Some(keep) = keep else {
        return config.file_groups.clone();
    };
    // The mask follows the files in group order.
    let mut keep = keep.into_iter();
    config
        .file_groups
        .iter()
        .map(|g| {
            let kept: Vec<PartitionedFile> = g
                .iter()
                .filter(|_| keep.next().unwrap_or(true))
                .cloned()
                .collect();
            FileGroup::new(kept)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn norm(sql: &str) -> Option<(String, Vec<ScalarValue>)> {
        let s = Parser::parse_sql(&GenericDialect {}, sql)
            .unwrap()
            .remove(0);
        normalize(&s).map(|n| (n.key, n.values))
    }

    #[test]
    fn where_literals_become_placeholders() {
        let (key, values) =
            norm("SELECT a, 7 FROM t WHERE a = 5 AND 'x' < b OR c BETWEEN -2 AND 2.5").unwrap();
        assert_eq!(
            key,
            "SELECT a, 7 FROM t WHERE a = $1 AND $2 < b OR c BETWEEN $3 AND $4"
        );
        assert_eq!(
            values,
            vec![
                ScalarValue::Int64(Some(5)),
                ScalarValue::Utf8(Some("x".into())),
                ScalarValue::Int64(Some(-2)),
                ScalarValue::Float64(Some(2.5)),
            ]
        );
        let (key, _) = norm(
            "WITH w AS (SELECT * FROM t WHERE k IN (1, 2)) SELECT * FROM w WHERE x IN (SELECT y FROM u WHERE z >= 3)",
        )
        .unwrap();
        assert!(
            key.contains("k IN ($1, $2)") && key.contains("z >= $3"),
            "{key}"
        );
    }

    #[test]
    fn other_literals_stay() {
        assert_eq!(norm("SELECT a FROM t WHERE a + 1 = 5 LIMIT 3"), None);
        assert_eq!(norm("SELECT a FROM t WHERE f(a, 2) AND a LIKE 'x%'"), None);
        assert_eq!(norm("SELECT a FROM t WHERE a = $1"), None);
        assert_eq!(norm("INSERT INTO t VALUES (1)"), None);
        // Past i64: a decimal to DataFusion, so not a placeholder.
        assert_eq!(norm("SELECT a FROM t WHERE a = 99999999999999999999"), None);
    }

    #[test]
    fn values_convert_only_without_loss() {
        let i = ScalarValue::Int64(Some(5));
        assert_eq!(
            convert(&i, &DataType::Int32),
            Some(ScalarValue::Int32(Some(5)))
        );
        assert_eq!(
            convert(&i, &DataType::Float64),
            Some(ScalarValue::Float64(Some(5.0)))
        );
        assert_eq!(
            convert(&ScalarValue::Float64(Some(5.5)), &DataType::Int64),
            None
        );
        assert_eq!(
            convert(&ScalarValue::Int64(Some(1 << 40)), &DataType::Int32),
            None
        );
        assert_eq!(
            convert(&ScalarValue::Int64(Some(-1)), &DataType::UInt64),
            None
        );
        assert_eq!(
            convert(&ScalarValue::Utf8(Some("5".into())), &DataType::Int64),
            None
        );
        assert_eq!(convert(&i, &DataType::Utf8), None);
    }
}
