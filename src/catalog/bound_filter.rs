//! A filter of a generic plan with a run's values bound in (`template::bind`). Binding
//! used to build a new `FilterExec`, which computes its properties again (statistics of
//! the whole subtree, interval analysis of the predicate) and so makes every node
//! above it compute theirs again too — for a walk from a new start node, binding cost
//! more than walking. Values change, the plan's shape does not: `BoundFilterExec`
//! filters with the bound predicate under the generic filter's very properties, so the
//! nodes above keep theirs. Given other children (a plan rewritten after binding), it
//! turns back into a `FilterExec` with properties of its own.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::common::cast::as_boolean_array;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::{
    has_same_children_properties, ChildrenPropertiesMode, ReplaceChildrenOptions,
};
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::StreamExt;
use std::sync::Arc;

#[derive(Debug)]
pub struct BoundFilterExec {
    /// The generic plan's filter (its projection, selectivity and properties).
    generic: Arc<dyn ExecutionPlan>,
    predicate: Arc<dyn PhysicalExpr>,
    input: Arc<dyn ExecutionPlan>,
}

impl BoundFilterExec {
    /// `filter` (the node `generic`) with `predicate` over `input`, whose properties
    /// must be those of the filter's input; `None` when the filter has a row limit
    /// (kept as DataFusion's operator) or the input's properties differ.
    pub fn new(
        generic: &Arc<dyn ExecutionPlan>,
        predicate: Arc<dyn PhysicalExpr>,
        input: Arc<dyn ExecutionPlan>,
    ) -> Option<BoundFilterExec> {
        let filter = generic.downcast_ref::<FilterExec>()?;
        let same = Arc::ptr_eq(filter.input().properties(), input.properties());
        (filter.fetch().is_none() && same).then(|| BoundFilterExec {
            generic: Arc::clone(generic),
            predicate,
            input,
        })
    }

    fn filter(&self) -> &FilterExec {
        self.generic
            .downcast_ref::<FilterExec>()
            .expect("made from a FilterExec")
    }
}

impl DisplayAs for BoundFilterExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "BoundFilterExec: {}", self.predicate)
    }
}

impl ExecutionPlan for BoundFilterExec {
    fn name(&self) -> &'static str {
        "BoundFilterExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.generic.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        f(&self.predicate)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.swap_remove(0);
        if has_same_children_properties(self.as_ref(), std::slice::from_ref(&input))? {
            return Ok(Arc::new(BoundFilterExec {
                generic: Arc::clone(&self.generic),
                predicate: Arc::clone(&self.predicate),
                input,
            }));
        }
        let filter = FilterExecBuilder::from(self.filter())
            .with_predicate(Arc::clone(&self.predicate))
            .with_input(input)
            .build()?;
        Ok(Arc::new(filter))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let options = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
        self.replace_children(children, options)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let predicate = Arc::clone(&self.predicate);
        let projection = self.filter().projection().clone();
        let rows = self
            .input
            .execute(partition, context)?
            .map(move |b| filter(&b?, &predicate, projection.as_deref()));
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), rows)))
    }
}

/// The rows of `batch` where `predicate` holds, with the columns of `projection`.
fn filter(
    batch: &RecordBatch,
    predicate: &Arc<dyn PhysicalExpr>,
    projection: Option<&[usize]>,
) -> Result<RecordBatch> {
    let mask = predicate.evaluate(batch)?.into_array(batch.num_rows())?;
    let mask = as_boolean_array(&mask)?;
    let batch = match projection {
        Some(p) => batch.project(p)?,
        None => batch.clone(),
    };
    Ok(filter_record_batch(&batch, mask)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{AsArray, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use datafusion::catalog::memory::MemorySourceConfig;
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::expressions::{binary, col, lit};
    use datafusion::physical_plan::collect;

    fn rows(a: Vec<i64>) -> Arc<dyn ExecutionPlan> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Int64, false),
        ]));
        let b: Vec<i64> = a.iter().map(|v| v * 10).collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from(a)), Arc::new(Int64Array::from(b))],
        )
        .unwrap();
        MemorySourceConfig::try_new_exec(&[vec![batch]], schema, None).unwrap()
    }

    fn a_gt(value: i64, input: &Arc<dyn ExecutionPlan>) -> Arc<dyn PhysicalExpr> {
        let schema = input.schema();
        binary(
            col("a", &schema).unwrap(),
            Operator::Gt,
            lit(value),
            &schema,
        )
        .unwrap()
    }

    async fn column(plan: Arc<dyn ExecutionPlan>) -> Vec<i64> {
        let out = collect(plan, Arc::new(TaskContext::default()))
            .await
            .unwrap();
        out.iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect()
    }

    #[tokio::test]
    async fn keeps_the_generic_properties_and_turns_back_into_a_filter() {
        let input = rows(vec![1, 2, 3, 4]);
        let generic: Arc<dyn ExecutionPlan> = Arc::new(
            FilterExecBuilder::new(a_gt(0, &input), Arc::clone(&input))
                .apply_projection(Some(vec![1]))
                .unwrap()
                .build()
                .unwrap(),
        );
        let bound = BoundFilterExec::new(&generic, a_gt(2, &input), Arc::clone(&input)).unwrap();
        assert!(Arc::ptr_eq(bound.properties(), generic.properties()));
        let bound: Arc<dyn ExecutionPlan> = Arc::new(bound);
        assert_eq!(bound.schema(), generic.schema());
        assert_eq!(column(Arc::clone(&bound)).await, vec![30, 40], "b of a > 2");
        // Another input, with properties of its own: a FilterExec again, same filter.
        let other = rows(vec![5, 1]);
        assert!(BoundFilterExec::new(&generic, a_gt(2, &other), Arc::clone(&other)).is_none());
        let recompute = || ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
        let replanned = Arc::clone(&bound)
            .replace_children(vec![other], recompute())
            .unwrap();
        assert!(replanned.downcast_ref::<FilterExec>().is_some());
        assert_eq!(column(replanned).await, vec![50]);
        // The same input: still bound.
        let same = bound.replace_children(vec![input], recompute()).unwrap();
        assert!(same.downcast_ref::<BoundFilterExec>().is_some());
    }
}
