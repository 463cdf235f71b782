//! Index lookup join: an inner equi-join whose build side is an `IndexedScanExec` (a user
//! table, maybe filtered or projected) looks each probe row up in the table's hash index
//! instead of hashing the whole table. This is what makes `WITH RECURSIVE` walks over
//! `lineage_edges` cost the rows they visit: DataFusion re-executes the recursive term
//! on every iteration, and a hash join would rebuild its table from every edge each time.
//!
//! `IndexJoinRule` runs right after DataFusion's join selection (so the build side is
//! settled and no repartitioning or dynamic filter has been attached yet) and replaces a
//! `HashJoinExec` when: the join is inner, without a join filter, NULLs equal nothing,
//! and the build side is a chain of filters and column projections over an
//! `IndexedScanExec` with at least one text key column. Anything else keeps the hash
//! join.

use super::indexed::{IndexedRows, IndexedScanExec};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions, UInt32Array,
};
use datafusion::arrow::compute::kernels::cmp::eq;
use datafusion::arrow::compute::{cast, filter, filter_record_batch, take, take_record_batch};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{JoinType, NullEquality};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::execution_plan::{
    Boundedness, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::HashJoinExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use futures::StreamExt;
use std::sync::{Arc, OnceLock};

/// What happens to looked-up rows of the table before they are joined, in order.
#[derive(Debug, Clone)]
enum BuildOp {
    /// Keep these columns, in this order.
    Project(Vec<usize>),
    /// Keep the rows where this predicate is true.
    Filter(Arc<dyn PhysicalExpr>),
}

/// Walks the build side down to the indexed scan: the ops that turn table rows into
/// build-side rows, in order.
fn build_chain(plan: &Arc<dyn ExecutionPlan>) -> Option<(Arc<IndexedRows>, Vec<BuildOp>)> {
    if let Some(scan) = plan.downcast_ref::<IndexedScanExec>() {
        let ops = vec![BuildOp::Project(scan.projection.clone())];
        return Some((Arc::clone(&scan.rows), ops));
    }
    if let Some(f) = plan.downcast_ref::<FilterExec>() {
        if f.fetch().is_some() {
            return None;
        }
        let (rows, mut ops) = build_chain(f.input())?;
        ops.push(BuildOp::Filter(Arc::clone(f.predicate())));
        if let Some(p) = f.projection() {
            ops.push(BuildOp::Project(p.to_vec()));
        }
        return Some((rows, ops));
    }
    if let Some(p) = plan.downcast_ref::<ProjectionExec>() {
        let mut cols = Vec::with_capacity(p.expr().len());
        for e in p.expr() {
            cols.push(e.expr.downcast_ref::<Column>()?.index());
        }
        let (rows, mut ops) = build_chain(p.input())?;
        ops.push(BuildOp::Project(cols));
        return Some((rows, ops));
    }
    None
}

/// The table column that build-side output column `column` comes from.
fn table_column(ops: &[BuildOp], mut column: usize) -> Option<usize> {
    for op in ops.iter().rev() {
        if let BuildOp::Project(cols) = op {
            column = *cols.get(column)?;
        }
    }
    Some(column)
}

/// One equi-join key: a build-side output column and the probe expression it must equal.
#[derive(Debug, Clone)]
struct KeyPair {
    build: usize,
    /// The table column behind `build`, when it can be indexed.
    indexed: Option<usize>,
    probe: Arc<dyn PhysicalExpr>,
}

/// Replaces hash joins against an indexed user table by index lookups.
#[derive(Debug, Default)]
pub struct IndexJoinRule;

impl IndexJoinRule {
    fn rewrite(hj: &HashJoinExec) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        if hj.join_type != JoinType::Inner
            || hj.filter.is_some()
            || hj.null_equality != NullEquality::NullEqualsNothing
            || hj.null_aware
            || hj.fetch().is_some()
        {
            return Ok(None);
        }
        let Some((rows, ops)) = build_chain(&hj.left) else {
            return Ok(None);
        };
        let mut keys = Vec::with_capacity(hj.on.len());
        for (build, probe) in &hj.on {
            let Some(build) = build.downcast_ref::<Column>().map(|c| c.index()) else {
                return Ok(None);
            };
            let indexed = table_column(&ops, build).filter(|&c| rows.indexable(c));
            keys.push(KeyPair {
                build,
                indexed,
                probe: Arc::clone(probe),
            });
        }
        if keys.iter().all(|k| k.indexed.is_none()) {
            return Ok(None);
        }
        let exec = IndexLookupJoinExec::try_new(
            rows,
            keys,
            ops,
            Arc::clone(&hj.left),
            Arc::clone(&hj.right),
            hj.projection.as_ref().map(|p| p.to_vec()),
            hj.schema(),
        )?;
        Ok(Some(Arc::new(exec)))
    }
}

impl PhysicalOptimizerRule for IndexJoinRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|p| {
            let Some(hj) = p.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(p));
            };
            Ok(match Self::rewrite(hj)? {
                Some(new) => Transformed::yes(new),
                None => Transformed::no(p),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "bagbase_index_join"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Inner join of each probe row with the table rows whose key columns equal the probe
/// keys: one key is looked up in the table's index (the indexed key with the most
/// distinct values), the others are compared on the rows found. Output: build columns
/// then probe columns (as the hash join it replaces), then that join's projection. One
/// output partition per probe partition; nothing about order or partitioning claimed.
#[derive(Debug)]
pub struct IndexLookupJoinExec {
    lookup: Arc<Lookup>,
    /// The build side as planned: shown by EXPLAIN, never executed.
    build: Arc<dyn ExecutionPlan>,
    probe: Arc<dyn ExecutionPlan>,
    props: Arc<PlanProperties>,
}

impl IndexLookupJoinExec {
    pub fn probe(&self) -> &Arc<dyn ExecutionPlan> {
        &self.probe
    }

    /// What one probe batch goes through (shared, so a walk can run it directly).
    pub fn lookup(&self) -> Arc<Lookup> {
        Arc::clone(&self.lookup)
    }

    fn try_new(
        rows: Arc<IndexedRows>,
        keys: Vec<KeyPair>,
        ops: Vec<BuildOp>,
        build: Arc<dyn ExecutionPlan>,
        probe: Arc<dyn ExecutionPlan>,
        projection: Option<Vec<usize>>,
        schema: SchemaRef,
    ) -> Result<IndexLookupJoinExec> {
        let lookup = Lookup {
            rows,
            keys,
            ops,
            projection,
            schema,
            chosen: OnceLock::new(),
            folded: OnceLock::new(),
        };
        Ok(IndexLookupJoinExec::with_lookup(
            Arc::new(lookup),
            build,
            probe,
        ))
    }

    fn with_lookup(
        lookup: Arc<Lookup>,
        build: Arc<dyn ExecutionPlan>,
        probe: Arc<dyn ExecutionPlan>,
    ) -> IndexLookupJoinExec {
        let props = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&lookup.schema)),
            Partitioning::UnknownPartitioning(probe.output_partitioning().partition_count()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        IndexLookupJoinExec {
            lookup,
            build,
            probe,
            props: Arc::new(props),
        }
    }
}

/// Everything a probe batch needs, shared by the partitions' streams and by the plan's
/// copies across the iterations of a recursive query.
#[derive(Debug)]
pub struct Lookup {
    rows: Arc<IndexedRows>,
    keys: Vec<KeyPair>,
    ops: Vec<BuildOp>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    /// Which of `keys` is looked up, chosen on first use.
    chosen: OnceLock<usize>,
    /// `ops` folded over the whole table, made on first use (`None`: run them per
    /// probe batch).
    folded: OnceLock<Option<Folded>>,
}

/// The build ops applied once to every table row instead of to each probe batch's
/// matches (a walk probes once per iteration): which rows pass every filter, and the
/// table with the columns the projections leave, in order. Filters see only build columns, so
/// the result is the same; volatile filters are not folded.
#[derive(Debug)]
struct Folded {
    /// Row passes every filter (NULL fails); `None` when there is no filter.
    pass: Option<Vec<bool>>,
    /// The table's rows, projected (column `Arc`s shared with the table).
    batch: RecordBatch,
}

impl Lookup {
    /// The indexed key with the most distinct values.
    fn chosen(&self) -> usize {
        *self.chosen.get_or_init(|| {
            let distinct = |k: &KeyPair| k.indexed.map_or(0, |c| self.rows.index(c).len() + 1);
            (0..self.keys.len())
                .max_by_key(|&i| distinct(&self.keys[i]))
                .unwrap_or(0)
        })
    }

    fn folded(&self) -> Option<&Folded> {
        self.folded
            .get_or_init(|| {
                let mut batch = self.rows.batch.clone();
                let mut pass: Option<Vec<bool>> = None;
                for op in &self.ops {
                    match op {
                        BuildOp::Project(cols) => batch = batch.project(cols).ok()?,
                        BuildOp::Filter(pred) => {
                            if volatile(pred) {
                                return None;
                            }
                            let mask = pred.evaluate(&batch).ok()?;
                            let mask = mask.into_array(batch.num_rows()).ok()?;
                            let mask = mask.as_boolean_opt()?;
                            let p = pass.get_or_insert_with(|| vec![true; batch.num_rows()]);
                            for (i, keep) in p.iter_mut().enumerate() {
                                *keep &= mask.is_valid(i) && mask.value(i);
                            }
                        }
                    }
                }
                Some(Folded { pass, batch })
            })
            .as_ref()
    }

    /// `table ON (key = probe expr, ...)`, for EXPLAIN.
    pub fn describe(&self) -> String {
        let names = self.rows.schema();
        let on: Vec<String> = self
            .keys
            .iter()
            .map(|k| match k.indexed {
                Some(c) => format!("{} = {}", names.field(c).name(), k.probe),
                None => format!("#{} = {}", k.build, k.probe),
            })
            .collect();
        let mut out = format!("{} on {}", self.rows.name, on.join(" and "));
        for op in &self.ops {
            if let BuildOp::Filter(p) = op {
                out.push_str(&format!(" where {p}"));
            }
        }
        out
    }

    /// The joined rows of one probe batch.
    pub fn join(&self, probe: &RecordBatch) -> Result<RecordBatch> {
        let n = probe.num_rows();
        let chosen = self.chosen();
        let key = &self.keys[chosen];
        let column = key.indexed.ok_or_else(|| {
            DataFusionError::Internal("index lookup join without an indexed key".into())
        })?;
        let values = key.probe.evaluate(probe)?.into_array(n)?;
        let values = match values.data_type() {
            DataType::Utf8 => values,
            _ => cast(&values, &DataType::Utf8)?,
        };
        let values = values.as_string::<i32>();
        let index = self.rows.index(column);
        let folded = self.folded();
        let pass = folded.and_then(|f| f.pass.as_deref());
        let (mut built, mut probed) = (Vec::new(), Vec::new());
        for i in 0..n {
            if !values.is_valid(i) {
                continue;
            }
            if let Some(found) = index.get(values.value(i)) {
                for &row in found {
                    if pass.is_none_or(|p| p.get(row as usize).copied().unwrap_or(false)) {
                        built.push(row);
                        probed.push(i as u32);
                    }
                }
            }
        }
        let mut probed = UInt32Array::from(probed);
        let built = UInt32Array::from(built);
        if probed.is_empty() {
            return Ok(RecordBatch::new_empty(Arc::clone(&self.schema)));
        }
        if let (Some(f), 1) = (folded, self.keys.len()) {
            // One key, build ops folded: gather only the columns the output keeps (a
            // walk's iteration is a few rows, where each `take` is mostly fixed cost).
            let width = f.batch.num_columns();
            let gather = |i: usize| -> Result<ArrayRef> {
                Ok(match i.checked_sub(width) {
                    None => take(f.batch.column(i), &built, None)?,
                    Some(p) => take(probe.column(p), &probed, None)?,
                })
            };
            let columns = match &self.projection {
                Some(p) => p.iter().map(|&i| gather(i)).collect::<Result<Vec<_>>>()?,
                None => (0..width + probe.num_columns())
                    .map(gather)
                    .collect::<Result<Vec<_>>>()?,
            };
            return self.output(columns, probed.len());
        }
        let mut build = match folded {
            Some(f) => take_record_batch(&f.batch, &built)?,
            None => {
                let mut build = take_record_batch(&self.rows.batch, &built)?;
                for op in &self.ops {
                    match op {
                        BuildOp::Project(cols) => build = build.project(cols)?,
                        BuildOp::Filter(pred) => {
                            let mask = pred.evaluate(&build)?.into_array(build.num_rows())?;
                            (build, probed) = keep(&build, &probed, &mask)?;
                        }
                    }
                }
                build
            }
        };
        for (i, k) in self.keys.iter().enumerate() {
            if i == chosen {
                continue;
            }
            let want = take(&k.probe.evaluate(probe)?.into_array(n)?, &probed, None)?;
            let have = build.column(k.build);
            let want = cast(&want, have.data_type())?;
            let mask: ArrayRef = Arc::new(eq(have, &want)?);
            (build, probed) = keep(&build, &probed, &mask)?;
        }
        let mut columns: Vec<ArrayRef> = build.columns().to_vec();
        for c in probe.columns() {
            columns.push(take(c, &probed, None)?);
        }
        if let Some(p) = &self.projection {
            columns = p.iter().map(|&i| Arc::clone(&columns[i])).collect();
        }
        self.output(columns, probed.len())
    }

    fn output(&self, columns: Vec<ArrayRef>, rows: usize) -> Result<RecordBatch> {
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            columns,
            &options,
        )?)
    }
}

/// Whether `expr` calls a function that is not immutable (`random()`, `now()`).
fn volatile(expr: &Arc<dyn PhysicalExpr>) -> bool {
    use datafusion::logical_expr::Volatility;
    use datafusion::physical_expr::ScalarFunctionExpr;
    expr.exists(|e| {
        Ok(e.downcast_ref::<ScalarFunctionExpr>()
            .is_some_and(|f| f.fun().signature().volatility != Volatility::Immutable))
    })
    .unwrap_or(true)
}

/// The build rows and their probe row numbers where `mask` is true (NULL is false).
fn keep(
    build: &RecordBatch,
    probed: &UInt32Array,
    mask: &ArrayRef,
) -> Result<(RecordBatch, UInt32Array)> {
    let mask = mask
        .as_boolean_opt()
        .ok_or_else(|| DataFusionError::Internal("join predicate is not boolean".into()))?;
    let build = filter_record_batch(build, mask)?;
    let probed = filter(probed, mask)?.as_primitive().clone();
    Ok((build, probed))
}

impl DisplayAs for IndexLookupJoinExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let l = &self.lookup;
        let build = self.build.schema();
        let on: Vec<String> = l
            .keys
            .iter()
            .map(|k| format!("({}@{}, {})", build.field(k.build).name(), k.build, k.probe))
            .collect();
        write!(
            f,
            "IndexLookupJoinExec: table={}, on=[{}]",
            l.rows.name,
            on.join(", ")
        )?;
        if l.projection.is_some() {
            let names: Vec<&str> = l
                .schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            write!(f, ", projection=[{}]", names.join(", "))?;
        }
        Ok(())
    }
}

impl ExecutionPlan for IndexLookupJoinExec {
    fn name(&self) -> &'static str {
        "IndexLookupJoinExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    /// The build side is listed so EXPLAIN shows it; only the probe side runs.
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.build, &self.probe]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false, false]
    }

    /// Lookups are cheap: splitting the probe side over threads costs more (tasks and
    /// channels on every iteration of a recursive walk) than it saves.
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false, false]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        for k in &self.lookup.keys {
            if f(&k.probe)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [build, probe]: [Arc<dyn ExecutionPlan>; 2] = children
            .try_into()
            .map_err(|_| DataFusionError::Internal("IndexLookupJoinExec has 2 children".into()))?;
        let lookup = Arc::clone(&self.lookup);
        Ok(Arc::new(IndexLookupJoinExec::with_lookup(
            lookup, build, probe,
        )))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(
                datafusion::physical_plan::execution_plan::ChildrenPropertiesMode::Recompute,
            ),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.probe.execute(partition, context)?;
        let lookup = Arc::clone(&self.lookup);
        let out = input.map(move |b| b.and_then(|b| lookup.join(&b)));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.lookup.schema),
            out,
        )))
    }
}
