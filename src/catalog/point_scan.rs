//! Point scans stay on one partition. DataFusion splits the input of a filter or a
//! projection round-robin over the cores when the input may be large; a user-table scan
//! by one key (`IndexedScanExec` with a `Key`: `WHERE source_id = 'c7-0'`, the start of
//! a lineage walk) returns a handful of rows, and the split costs two tasks and a
//! channel per run — more than the lookup. `PointScanRule` removes a round-robin
//! repartition whose input is such a scan, when one value has at most a batch of rows.

use super::indexed::IndexedScanExec;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, Partitioning};
use std::sync::Arc;

/// `plan` without the round-robin repartitions whose input `one_partition_is_enough`
/// (also used for the split above a fused walk, `walk::WalkRule`).
pub fn drop_round_robin(
    plan: Arc<dyn ExecutionPlan>,
    one_partition_is_enough: impl Fn(&Arc<dyn ExecutionPlan>) -> bool,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|p| {
        let drop = p.downcast_ref::<RepartitionExec>().and_then(|r| {
            let round_robin = matches!(r.partitioning(), Partitioning::RoundRobinBatch(_));
            (round_robin && one_partition_is_enough(r.input())).then(|| Arc::clone(r.input()))
        });
        Ok(match drop {
            Some(input) => Transformed::yes(input),
            None => Transformed::no(p),
        })
    })
    .map(|t| t.data)
}

#[derive(Debug, Default)]
pub struct PointScanRule;

impl PhysicalOptimizerRule for PointScanRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = usize::from(config.execution.batch_size);
        drop_round_robin(plan, |input| {
            input
                .downcast_ref::<IndexedScanExec>()
                .and_then(|s| s.rows_per_key())
                .is_some_and(|n| n <= batch)
        })
    }

    fn name(&self) -> &str {
        "bagbase_point_scan"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
