//! Recursive walks in one operator. DataFusion runs `WITH RECURSIVE ... UNION ALL` by
//! re-executing the recursive term's plan on every iteration (resetting its state,
//! starting its tasks and channels again); for a lineage walk that fixed cost per
//! iteration is most of the time. When the recursive term is a row-wise pipeline over
//! the work table — filters, projections, index lookups (`index_join`), and the
//! partitioning operators around them — `WalkRule` replaces the `RecursiveQueryExec`
//! by a `WalkExec` that applies that pipeline to each iteration's batches directly.
//! Anything else in the recursive term (aggregates, sorts, limits, other joins,
//! `UNION` without ALL) keeps DataFusion's operator. Same rows, same order of
//! iterations.

use super::index_join::{IndexLookupJoinExec, Lookup};
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::{concat_batches, filter_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{
    Boundedness, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::recursive_query::RecursiveQueryExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::work_table::WorkTableExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;
use std::sync::Arc;

/// One row-wise step of the recursive term, in order from the work table up.
#[derive(Debug, Clone)]
enum Step {
    Filter(Arc<dyn PhysicalExpr>, Option<Vec<usize>>),
    Project(Vec<Arc<dyn PhysicalExpr>>, SchemaRef),
    Lookup(Arc<Lookup>),
}

/// The steps from the work table to `plan`, when every operator is row-wise.
fn compile(plan: &Arc<dyn ExecutionPlan>, schema: &SchemaRef) -> Option<Vec<Step>> {
    if let Some(w) = plan.downcast_ref::<WorkTableExec>() {
        // A work table read with a projection would need it: only the whole row.
        return (w.schema().fields() == schema.fields()).then(Vec::new);
    }
    if plan.downcast_ref::<CoalescePartitionsExec>().is_some()
        || plan.downcast_ref::<RepartitionExec>().is_some()
    {
        let children = plan.children();
        return compile(children.first()?, schema);
    }
    if let Some(f) = plan.downcast_ref::<FilterExec>() {
        if f.fetch().is_some() {
            return None;
        }
        let mut steps = compile(f.input(), schema)?;
        let p = f.projection().as_ref().map(|p| p.to_vec());
        steps.push(Step::Filter(Arc::clone(f.predicate()), p));
        return Some(steps);
    }
    if let Some(p) = plan.downcast_ref::<ProjectionExec>() {
        let mut steps = compile(p.input(), schema)?;
        let exprs = p.expr().iter().map(|e| Arc::clone(&e.expr)).collect();
        steps.push(Step::Project(exprs, p.schema()));
        return Some(steps);
    }
    if let Some(j) = plan.downcast_ref::<IndexLookupJoinExec>() {
        let mut steps = compile(j.probe(), schema)?;
        steps.push(Step::Lookup(j.lookup()));
        return Some(steps);
    }
    None
}

fn apply(steps: &[Step], mut b: RecordBatch) -> Result<RecordBatch> {
    for s in steps {
        b = match s {
            Step::Filter(pred, projection) => {
                let mask = pred.evaluate(&b)?.into_array(b.num_rows())?;
                let mask = mask.as_boolean_opt().ok_or_else(|| {
                    DataFusionError::Internal("filter predicate is not boolean".into())
                })?;
                // Walks mostly keep every row (`depth < N`): no copy then.
                let kept = if mask.true_count() == b.num_rows() {
                    b
                } else {
                    filter_record_batch(&b, mask)?
                };
                match projection {
                    Some(p) => kept.project(p)?,
                    None => kept,
                }
            }
            Step::Project(exprs, schema) => {
                let n = b.num_rows();
                let cols = exprs
                    .iter()
                    .map(|e| e.evaluate(&b).and_then(|v| v.into_array(n)))
                    .collect::<Result<Vec<_>>>()?;
                let options =
                    datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(n));
                RecordBatch::try_new_with_options(Arc::clone(schema), cols, &options)?
            }
            Step::Lookup(l) => l.join(&b)?,
        };
    }
    Ok(b)
}

/// Replaces `RecursiveQueryExec` (UNION ALL) over a row-wise recursive term.
#[derive(Debug, Default)]
pub struct WalkRule;

impl PhysicalOptimizerRule for WalkRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = plan.transform_up(|p| {
            let Some(r) = p.downcast_ref::<RecursiveQueryExec>() else {
                return Ok(Transformed::no(p));
            };
            let schema = r.schema();
            let lookups = r
                .recursive_term()
                .exists(|n| Ok(n.downcast_ref::<IndexLookupJoinExec>().is_some()))?;
            if r.is_distinct() || !lookups {
                return Ok(Transformed::no(p));
            }
            let Some(steps) = compile(r.recursive_term(), &schema) else {
                return Ok(Transformed::no(p));
            };
            let walk = WalkExec::new(
                r.name().to_string(),
                Arc::clone(r.static_term()),
                steps,
                schema,
            );
            Ok(Transformed::yes(Arc::new(walk) as Arc<dyn ExecutionPlan>))
        })?;
        // A walk is one partition; the round-robin split DataFusion puts above it (for
        // the operators above to run on every core) costs two tasks and a channel per
        // query — more than a small walk's whole run. The operators above take one
        // partition as well.
        super::point_scan::drop_round_robin(plan.data, |input| {
            let mut below = input;
            while let Some(pr) = below.downcast_ref::<ProjectionExec>() {
                below = pr.input();
            }
            below.downcast_ref::<WalkExec>().is_some()
        })
    }

    fn name(&self) -> &str {
        "bagbase_walk"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The static term's rows, then each iteration's: the steps applied to the rows the
/// previous iteration produced, until one produces none.
#[derive(Debug)]
pub struct WalkExec {
    name: String,
    static_term: Arc<dyn ExecutionPlan>,
    steps: Arc<Vec<Step>>,
    schema: SchemaRef,
    props: Arc<PlanProperties>,
}

impl WalkExec {
    fn new(
        name: String,
        static_term: Arc<dyn ExecutionPlan>,
        steps: Vec<Step>,
        schema: SchemaRef,
    ) -> WalkExec {
        let props = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        WalkExec {
            name,
            static_term,
            steps: Arc::new(steps),
            schema,
            props: Arc::new(props),
        }
    }

    pub fn static_term(&self) -> &Arc<dyn ExecutionPlan> {
        &self.static_term
    }

    /// The walk over `static_term` with `f` applied to the expressions of its filters
    /// and projections (binding a generic plan, src/catalog/template.rs); lookups stay.
    pub fn map_expressions(
        &self,
        static_term: Arc<dyn ExecutionPlan>,
        f: impl Fn(&Arc<dyn PhysicalExpr>) -> Result<Arc<dyn PhysicalExpr>>,
    ) -> Result<WalkExec> {
        let steps = self
            .steps
            .iter()
            .map(|s| {
                Ok(match s {
                    Step::Filter(p, projection) => Step::Filter(f(p)?, projection.clone()),
                    Step::Project(e, schema) => {
                        Step::Project(e.iter().map(&f).collect::<Result<_>>()?, Arc::clone(schema))
                    }
                    Step::Lookup(l) => Step::Lookup(Arc::clone(l)),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(WalkExec {
            name: self.name.clone(),
            static_term,
            steps: Arc::new(steps),
            schema: Arc::clone(&self.schema),
            props: Arc::clone(&self.props),
        })
    }
}

impl DisplayAs for WalkExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "WalkExec: name={}, each iteration: work table",
            self.name
        )?;
        for s in self.steps.iter() {
            match s {
                Step::Filter(p, _) => write!(f, " → filter {p}")?,
                Step::Project(e, _) => {
                    let e: Vec<String> = e.iter().map(|e| e.to_string()).collect();
                    write!(f, " → project [{}]", e.join(", "))?
                }
                Step::Lookup(l) => write!(f, " → index lookup {}", l.describe())?,
            }
        }
        Ok(())
    }
}

impl ExecutionPlan for WalkExec {
    fn name(&self) -> &'static str {
        "WalkExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.static_term]
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::SinglePartition]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        for s in self.steps.iter() {
            let exprs: Vec<&Arc<dyn PhysicalExpr>> = match s {
                Step::Filter(p, _) => vec![p],
                Step::Project(e, _) => e.iter().collect(),
                Step::Lookup(_) => vec![],
            };
            for e in exprs {
                if f(e)? == TreeNodeRecursion::Stop {
                    return Ok(TreeNodeRecursion::Stop);
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [static_term]: [Arc<dyn ExecutionPlan>; 1] = children
            .try_into()
            .map_err(|_| DataFusionError::Internal("WalkExec has one child".into()))?;
        Ok(Arc::new(WalkExec {
            name: self.name.clone(),
            static_term,
            steps: Arc::clone(&self.steps),
            schema: Arc::clone(&self.schema),
            props: Arc::clone(&self.props),
        }))
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
        let batch_size = context.session_config().batch_size().max(1);
        let input = self.static_term.execute(partition, context)?;
        let steps = Arc::clone(&self.steps);
        let schema = Arc::clone(&self.schema);
        // State: the static stream while it lasts, then the rows of the last iteration,
        // which feed the next one. Output is gathered into batches of about
        // `batch_size` rows: a narrow walk makes one tiny batch per iteration, and every
        // operator above pays a fixed cost per batch.
        struct State {
            input: Option<SendableRecordBatchStream>,
            current: Vec<RecordBatch>,
            out: Gather,
        }
        let state = State {
            input: Some(input),
            current: Vec::new(),
            out: Gather::new(schema, batch_size),
        };
        let out = futures::stream::unfold(Some(state), move |st| {
            let steps = Arc::clone(&steps);
            async move {
                let mut st = st?;
                loop {
                    if let Some(b) = st.out.ready.pop_front() {
                        return Some((Ok(b), Some(st)));
                    }
                    if let Some(input) = st.input.as_mut() {
                        match input.next().await {
                            Some(Ok(b)) => {
                                if b.num_rows() > 0 {
                                    st.current.push(b.clone());
                                    if let Err(e) = st.out.push(b) {
                                        return Some((Err(e), None));
                                    }
                                }
                                continue;
                            }
                            Some(Err(e)) => return Some((Err(e), None)),
                            None => st.input = None,
                        }
                    }
                    if st.current.is_empty() {
                        // The walk is over: what is still gathered, then the end.
                        return match st.out.flush() {
                            Ok(Some(b)) => Some((Ok(b), Some(st))),
                            Ok(None) => None,
                            Err(e) => Some((Err(e), None)),
                        };
                    }
                    for b in std::mem::take(&mut st.current) {
                        let o = match apply(&steps, b) {
                            Ok(o) => o,
                            Err(e) => return Some((Err(e), None)),
                        };
                        if o.num_rows() > 0 {
                            st.current.push(o.clone());
                            if let Err(e) = st.out.push(o) {
                                return Some((Err(e), None));
                            }
                        }
                    }
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            out,
        )))
    }
}

/// Output batches in order, small ones concatenated until they reach `batch_size` rows;
/// a batch of a sixteenth of that or more goes out as it is, after what was gathered
/// before it (for it the fixed cost per batch is already small, and copying is not).
struct Gather {
    schema: SchemaRef,
    batch_size: usize,
    small: Vec<RecordBatch>,
    rows: usize,
    ready: std::collections::VecDeque<RecordBatch>,
}

impl Gather {
    fn new(schema: SchemaRef, batch_size: usize) -> Gather {
        Gather {
            schema,
            batch_size,
            small: Vec::new(),
            rows: 0,
            ready: Default::default(),
        }
    }

    fn push(&mut self, b: RecordBatch) -> Result<()> {
        if b.num_rows() * 16 >= self.batch_size {
            if let Some(g) = self.flush()? {
                self.ready.push_back(g);
            }
            self.ready.push_back(b);
            return Ok(());
        }
        self.rows += b.num_rows();
        self.small.push(b);
        if self.rows >= self.batch_size {
            if let Some(g) = self.flush()? {
                self.ready.push_back(g);
            }
        }
        Ok(())
    }

    /// What is gathered, as one batch.
    fn flush(&mut self) -> Result<Option<RecordBatch>> {
        self.rows = 0;
        Ok(match self.small.len() {
            0 => None,
            1 => self.small.pop(),
            _ => Some(concat_batches(
                &self.schema,
                std::mem::take(&mut self.small).iter(),
            )?),
        })
    }
}
