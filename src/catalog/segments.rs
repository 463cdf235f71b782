//! A table whose rows live in Parquet segments: prunes whole segments by the statistics
//! kept in the manifest, then hands the survivors to DataFusion's Parquet scan (which
//! prunes row groups and pages and applies projection and filters). Decoded table
//! nodes are kept per node id (`TABLES`): the node of a big table holds thousands of
//! segment entries, and every query of it would otherwise parse them again.

use super::blobs;
use super::reader::{SegmentChunks, SegmentReaderFactory};
use super::template::Generic;
use crate::store::cache::Lru;
use crate::store::{ChunkStore, Id};
use crate::version::blob::BlobPath;
use crate::version::manifest::{self, SegmentMeta, StatValue, TableNode};
use crate::version::node;
use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, BooleanArray, UInt64Array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::{create_physical_expr, PhysicalExpr};
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::ExecutionPlan;
use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, LazyLock};

/// Decoded table nodes by node id, shared by every store and query of the process
/// (a node id names its content, so an entry never goes stale).
static TABLES: LazyLock<Lru<Id, Decoded>> = LazyLock::new(|| Lru::new(64 << 20));

/// A table node as `SegmentTable` holds it: schema and segment list.
type Decoded = (SchemaRef, Arc<Vec<SegmentMeta>>);

pub const SEGMENT_URL: &str = "bagbase://segments/";

#[derive(Debug)]
pub struct SegmentTable {
    pub store: Arc<ChunkStore>,
    pub schema: SchemaRef,
    pub segments: Arc<Vec<SegmentMeta>>,
}

impl SegmentTable {
    pub fn new(store: Arc<ChunkStore>, name: &str, t: TableNode) -> crate::version::Result<Self> {
        Ok(SegmentTable {
            store,
            schema: crate::version::segment::decode_schema(name, &t.schema)?,
            segments: Arc::new(t.segments),
        })
    }

    /// The table whose node is `id`, decoded once per process.
    pub fn open(store: Arc<ChunkStore>, name: &str, id: &Id) -> crate::version::Result<Self> {
        if let Some((schema, segments)) = TABLES.get(id) {
            return Ok(SegmentTable {
                store,
                schema,
                segments,
            });
        }
        let node = manifest::load_table(store.kv(), id)?;
        // About the decoded size: the schema, then each segment with its statistics.
        let weight = node.schema.len()
            + node
                .segments
                .iter()
                .map(|s| 256 + 128 * s.stats.len())
                .sum::<usize>();
        let t = SegmentTable::new(store, name, node)?;
        TABLES.insert(
            *id,
            (Arc::clone(&t.schema), Arc::clone(&t.segments)),
            weight,
        );
        Ok(t)
    }
}

struct SegmentStats<'a> {
    schema: &'a SchemaRef,
    segments: &'a [&'a SegmentMeta],
}

impl SegmentStats<'_> {
    fn values(
        &self,
        column: &Column,
        pick: fn(&crate::version::manifest::ColumnStats) -> &Option<StatValue>,
    ) -> Option<ArrayRef> {
        let field = self.schema.field_with_name(&column.name).ok()?;
        let values: Vec<ScalarValue> = self
            .segments
            .iter()
            .map(|s| {
                let v = s.stats.get(&column.name).and_then(|c| pick(c).clone());
                to_scalar(v, field.data_type())
            })
            .collect();
        ScalarValue::iter_to_array(values).ok()
    }
}

fn to_scalar(v: Option<StatValue>, dt: &datafusion::arrow::datatypes::DataType) -> ScalarValue {
    let raw = match v {
        Some(StatValue::Int(i)) => ScalarValue::Int64(Some(i)),
        Some(StatValue::UInt(u)) => ScalarValue::UInt64(Some(u)),
        Some(StatValue::Float(f)) => ScalarValue::Float64(Some(f)),
        Some(StatValue::Str(s)) => ScalarValue::Utf8(Some(s)),
        Some(StatValue::Bool(b)) => ScalarValue::Boolean(Some(b)),
        None => return ScalarValue::try_from(dt).unwrap_or(ScalarValue::Null),
    };
    raw.cast_to(dt)
        .unwrap_or_else(|_| ScalarValue::try_from(dt).unwrap_or(ScalarValue::Null))
}

impl PruningStatistics for SegmentStats<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.values(column, |c| &c.min)
    }
    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.values(column, |c| &c.max)
    }
    fn num_containers(&self) -> usize {
        self.segments.len()
    }
    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        self.schema.field_with_name(&column.name).ok()?;
        let v: Vec<Option<u64>> = self
            .segments
            .iter()
            .map(|s| s.stats.get(&column.name).map(|c| c.nulls))
            .collect();
        Some(Arc::new(UInt64Array::from(v)))
    }
    fn row_counts(&self) -> Option<ArrayRef> {
        Some(Arc::new(UInt64Array::from(
            self.segments.iter().map(|s| s.rows).collect::<Vec<_>>(),
        )))
    }
    fn contained(&self, _c: &Column, _v: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}

#[async_trait]
impl TableProvider for SegmentTable {
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
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let df_schema = datafusion::common::DFSchema::try_from(self.schema.as_ref().clone())?;
        let predicate = match conjunction(filters.iter().cloned()) {
            Some(e) => Some(create_physical_expr(
                &e,
                &df_schema,
                state.execution_props(),
                &Default::default(),
            )?),
            None => None,
        };
        // A generic plan (`template`) keeps every segment: it prunes when bound.
        let generic = state.config().get_extension::<Generic>().is_some();
        let mut keep: Vec<&SegmentMeta> = self.segments.iter().collect();
        if let (Some(p), false) = (&predicate, generic) {
            if let Some(mask) = prune_mask(&self.schema, &keep, p) {
                keep = keep
                    .into_iter()
                    .zip(mask)
                    .filter(|(_, k)| *k)
                    .map(|(s, _)| s)
                    .collect();
            }
        }
        if keep.is_empty() {
            let projected = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => Arc::clone(&self.schema),
            };
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        // Blob columns among the projected ones: each segment says which it holds.
        let projected: Vec<&str> = match projection {
            Some(p) => p
                .iter()
                .map(|i| self.schema.field(*i).name().as_str())
                .collect(),
            None => self
                .schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect(),
        };
        let blob_paths: Vec<BlobPath> = keep
            .iter()
            .flat_map(|s| &s.blobs)
            .filter(|p| projected.contains(&p[0].as_str()))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut files = Vec::with_capacity(keep.len());
        for s in keep {
            let chunks = node::get_chunks(self.store.kv(), &s.chunks)
                .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
            let mut f = PartitionedFile::new(format!("{}.parquet", s.id.hex()), s.bytes);
            f.extensions.insert(SegmentChunks {
                store: Arc::clone(&self.store),
                segment: s.id,
                chunks,
                meta: generic.then(|| Arc::new(s.clone())),
            });
            if !blob_paths.is_empty() {
                f = f.with_partition_values(vec![ScalarValue::Utf8(Some(blobs::held_value(
                    &blob_paths,
                    &s.blobs,
                )))]);
            }
            files.push(f);
        }
        let (table_schema, projection) = if blob_paths.is_empty() {
            (
                TableSchema::from(Arc::clone(&self.schema)),
                projection.cloned(),
            )
        } else {
            let n = self.schema.fields().len();
            let mut p = projection.cloned().unwrap_or_else(|| (0..n).collect());
            p.push(n);
            (
                TableSchema::builder(Arc::clone(&self.schema))
                    .with_table_partition_cols(vec![Arc::new(blobs::blob_field())])
                    .build(),
                Some(p),
            )
        };
        // The Parquet predicate itself arrives through DataFusion's physical filter
        // pushdown (pushdown_filters), which also removes the FilterExec above.
        let source = ParquetSource::new(table_schema)
            .with_parquet_file_reader_factory(Arc::new(SegmentReaderFactory {
                store: Arc::clone(&self.store),
            }))
            .with_pushdown_filters(true);
        let groups = split_groups(files, state.config().target_partitions());
        let config =
            FileScanConfigBuilder::new(ObjectStoreUrl::parse(SEGMENT_URL)?, Arc::new(source))
                .with_file_groups(groups)
                .with_projection_indices(projection)?
                .with_limit(limit)
                .build();
        let scan = DataSourceExec::from_data_source(config);
        if blob_paths.is_empty() {
            return Ok(scan);
        }
        Ok(Arc::new(blobs::BlobResolveExec::new(
            scan,
            Arc::clone(&self.store),
            blob_paths,
        )?))
    }
}

/// Which of `segments` the predicate may match, by their statistics (`None`: it
/// cannot tell).
pub fn prune_mask(
    schema: &SchemaRef,
    segments: &[&SegmentMeta],
    predicate: &Arc<dyn PhysicalExpr>,
) -> Option<Vec<bool>> {
    let pp = PruningPredicateBuilder::new()
        .with_file_schema(Arc::clone(schema))
        .build(Arc::clone(predicate))?;
    pp.prune(&SegmentStats { schema, segments }).ok()
}

fn split_groups(files: Vec<PartitionedFile>, n: usize) -> Vec<FileGroup> {
    let n = n.max(1).min(files.len());
    let mut groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); n];
    for (i, f) in files.into_iter().enumerate() {
        groups[i % n].push(f);
    }
    groups.into_iter().map(FileGroup::new).collect()
}
