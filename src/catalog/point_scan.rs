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

#[derive(Debug, Default)]
pub struct PointScanRule;

impl PhysicalOptimizerRule for PointScanRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = usize::from(config.execution.batch_size);
        plan.transform_up(|p| {
            let Some(r) = p.downcast_ref::<RepartitionExec>() else {
                return Ok(Transformed::no(p));
            };
            let point = matches!(r.partitioning(), Partitioning::RoundRobinBatch(_))
                && r.input()
                    .downcast_ref::<IndexedScanExec>()
                    .and_then(|s| s.rows_per_key())
                    .is_some_and(|n| n <= batch);
            Ok(if point {
                Transformed::yes(Arc::clone(r.input()))
            } else {
                Transformed::no(p)
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "bagbase_point_scan"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
