//! Blob columns in queries (docs/format.md §4 "Blob columns"): when a scan reads
//! segments whose projected columns hold tagged blob values, `SegmentTable` adds a
//! constant column per segment (`BLOB_COLUMN`: which of the scan's blob paths that
//! segment holds tagged) and puts `BlobResolveExec` on top, which turns those values
//! into the bytes they stand for and drops the constant column. Filters on a blob
//! column stay above it (they must see the bytes); every other filter passes through
//! to the Parquet scan, so pruning and pushdown are as for any other table.

use crate::store::ChunkStore;
use crate::version::blob::{self, BlobPath, Resolver};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::Statistics;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::projection::ProjectionMapping;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::ReplaceChildrenOptions;
use datafusion::physical_plan::filter_pushdown::{
    ChildFilterDescription, FilterDescription, FilterPushdownPhase,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildStats, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, StatisticsArgs,
};
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::Arc;

/// The per-segment constant column: indices into the scan's blob paths, comma-separated.
pub const BLOB_COLUMN: &str = "__bagbase_blobs";

pub fn blob_field() -> Field {
    Field::new(BLOB_COLUMN, DataType::Utf8, false)
}

/// The value of `BLOB_COLUMN` for a segment holding `held` of the scan's `paths`.
pub fn held_value(paths: &[BlobPath], held: &[BlobPath]) -> String {
    paths
        .iter()
        .enumerate()
        .filter(|(_, p)| held.contains(p))
        .map(|(i, _)| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(Debug)]
pub struct BlobResolveExec {
    input: Arc<dyn ExecutionPlan>,
    store: Arc<ChunkStore>,
    /// The blob paths the scan may meet, indexed by `BLOB_COLUMN`'s values.
    paths: Arc<Vec<BlobPath>>,
    /// The input's schema without its last column (`BLOB_COLUMN`).
    schema: SchemaRef,
    props: Arc<PlanProperties>,
}

impl BlobResolveExec {
    /// `input` ends with `BLOB_COLUMN`.
    pub fn new(
        input: Arc<dyn ExecutionPlan>,
        store: Arc<ChunkStore>,
        paths: Vec<BlobPath>,
    ) -> Result<Self> {
        let in_schema = input.schema();
        let n = in_schema.fields().len();
        if n == 0 || in_schema.field(n - 1).name() != BLOB_COLUMN {
            return Err(DataFusionError::Internal(format!(
                "BlobResolveExec needs {BLOB_COLUMN} as its input's last column"
            )));
        }
        let keep: Vec<usize> = (0..n - 1).collect();
        let schema = Arc::new(in_schema.project(&keep)?);
        // Orderings and equalities of the scan hold for the resolved rows too.
        let mapping = ProjectionMapping::from_indices(&keep, &in_schema)?;
        let props = Arc::new(PlanProperties::new(
            input
                .properties()
                .eq_properties
                .project(&mapping, Arc::clone(&schema)),
            input.properties().partitioning.clone(),
            input.properties().emission_type,
            input.properties().boundedness,
        ));
        Ok(BlobResolveExec {
            input,
            store,
            paths: Arc::new(paths),
            schema,
            props,
        })
    }

    /// Output columns a filter may use and still run below this node: all but the
    /// columns that hold blob paths.
    fn plain_columns(&self) -> HashSet<usize> {
        (0..self.schema.fields().len())
            .filter(|i| {
                let name = self.schema.field(*i).name();
                !self.paths.iter().any(|p| &p[0] == name)
            })
            .collect()
    }
}

impl DisplayAs for BlobResolveExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let cols: Vec<String> = self.paths.iter().map(|p| p.join(".")).collect();
        write!(f, "BlobResolveExec: blobs=[{}]", cols.join(", "))
    }
}

impl ExecutionPlan for BlobResolveExec {
    fn name(&self) -> &'static str {
        "BlobResolveExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    // `maintains_input_order` stays false although rows keep their order: the sort
    // pushdown would otherwise move an ORDER BY on a blob column below this node, where
    // it would order the tagged values instead of the bytes.

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [input]: [Arc<dyn ExecutionPlan>; 1] = children
            .try_into()
            .map_err(|_| DataFusionError::Internal("BlobResolveExec has one child".into()))?;
        Ok(Arc::new(BlobResolveExec::new(
            input,
            Arc::clone(&self.store),
            self.paths.as_ref().clone(),
        )?))
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

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    /// The scan's figures without the constant column (rows are unchanged).
    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        let mut s = input_stats[0].as_ref().clone();
        s.column_statistics.truncate(self.schema.fields().len());
        Ok(Arc::new(s))
    }

    fn gather_filters_for_pushdown(
        &self,
        _phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn PhysicalExpr>>,
        _config: &ConfigOptions,
    ) -> Result<FilterDescription> {
        Ok(FilterDescription::new().with_child(
            ChildFilterDescription::from_child_with_allowed_indices(
                &parent_filters,
                self.plain_columns(),
                &self.input,
            )?,
        ))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let store = Arc::clone(&self.store);
        let paths = Arc::clone(&self.paths);
        let schema = Arc::clone(&self.schema);
        // Each input batch becomes pieces of bounded size, resolved one at a time as
        // the consumer asks (a batch of references can stand for gigabytes).
        let out = input.flat_map(move |b| {
            let pieces = b.and_then(|b| pieces(&paths, &schema, &b));
            let store = Arc::clone(&store);
            let items: Box<dyn Iterator<Item = Result<RecordBatch>> + Send> = match pieces {
                Ok(v) => Box::new(v.into_iter().map(move |(batch, these)| {
                    Resolver::new(&store)
                        .resolve_rows(&batch, &these)
                        .map_err(|e| DataFusionError::External(Box::new(e)))
                })),
                Err(e) => Box::new(std::iter::once(Err(e))),
            };
            futures::stream::iter(items)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            out,
        )))
    }
}

/// One input batch (its last column says which paths each row's segment holds
/// tagged) cut into pieces of bounded resolved size, without that column, each with the
/// paths it holds tagged. A batch is one segment's rows unless an operator below merged
/// batches, so runs of rows with the same value are cut one after another.
fn pieces(
    paths: &[BlobPath],
    schema: &SchemaRef,
    b: &RecordBatch,
) -> Result<Vec<(RecordBatch, Vec<BlobPath>)>> {
    let n = b.num_columns();
    let held = b
        .column(n - 1)
        .as_string_opt::<i32>()
        .ok_or_else(|| DataFusionError::Internal(format!("{BLOB_COLUMN} is not text")))?;
    let plain = RecordBatch::try_new(Arc::clone(schema), b.columns()[..n - 1].to_vec())?;
    let mut out = Vec::new();
    let mut start = 0;
    while start < plain.num_rows() {
        let value = held.is_valid(start).then(|| held.value(start));
        let mut end = start + 1;
        while end < plain.num_rows() && held.is_valid(end).then(|| held.value(end)) == value {
            end += 1;
        }
        let mut these: Vec<BlobPath> = Vec::new();
        for i in value
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
        {
            let p = i
                .parse::<usize>()
                .ok()
                .and_then(|i| paths.get(i))
                .ok_or_else(|| DataFusionError::Internal(format!("{BLOB_COLUMN} = {i}")))?;
            these.push(p.clone());
        }
        let run = plain.slice(start, end - start);
        let ranges = blob::pieces(&run, &these, blob::BATCH_BYTES)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        for r in ranges {
            out.push((run.slice(r.start, r.len()), these.clone()));
        }
        start = end;
    }
    Ok(out)
}
