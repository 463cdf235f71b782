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
use datafusion::arrow::datatypes::{DataType, SchemaRef};
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
use datafusion::physical_expr::expressions::Column as PhysicalColumn;
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
    if let Some(keep) = simple_mask(schema, segments, predicate) {
        return Some(keep);
    }
    predicate_mask(schema, segments, predicate)
}

/// `prune_mask` through DataFusion's pruning predicate.
fn predicate_mask(
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

/// A value of a segment statistic or a literal, compared exactly: integers of any
/// width, strings.
#[derive(PartialEq, PartialOrd)]
enum Exact<'a> {
    Int(i128),
    Str(&'a str),
}

/// `prune_mask` without building a pruning predicate, when every conjunct of the
/// predicate is `integer_or_string_column op literal` (`=`, `<`, `<=`, `>`, `>=`): a
/// point lookup bound into a generic plan spent ≈ 8 % of its time building one.
fn simple_mask(
    schema: &SchemaRef,
    segments: &[&SegmentMeta],
    predicate: &Arc<dyn PhysicalExpr>,
) -> Option<Vec<bool>> {
    use datafusion::logical_expr::Operator;
    let mut tests = Vec::new();
    for c in datafusion::physical_expr::split_conjunction(predicate) {
        let (col, lit, op) = column_op_literal(c)?;
        let t = schema.field_with_name(col.name()).ok()?.data_type();
        let v = match lit {
            ScalarValue::Utf8(Some(v)) if *t == DataType::Utf8 => Exact::Str(v),
            v if t.is_integer() && v.data_type() == *t => Exact::Int(int_of(v)?),
            _ => return None,
        };
        tests.push((col.name(), op, v));
    }
    Some(
        segments
            .iter()
            .map(|s| {
                tests.iter().all(|(name, op, v)| {
                    let Some(c) = s.stats.get(*name) else {
                        return true;
                    };
                    let (min, max) = (exact(&c.min), exact(&c.max));
                    // A missing or differently typed statistic rules nothing out.
                    let holds = |m: &Option<Exact>, f: fn(&Exact, &Exact) -> bool| {
                        m.as_ref()
                            .filter(|m| std::mem::discriminant(*m) == std::mem::discriminant(v))
                            .is_none_or(|m| f(m, v))
                    };
                    match op {
                        Operator::Eq => holds(&min, |m, v| m <= v) && holds(&max, |m, v| m >= v),
                        Operator::Lt => holds(&min, |m, v| m < v),
                        Operator::LtEq => holds(&min, |m, v| m <= v),
                        Operator::Gt => holds(&max, |m, v| m > v),
                        _ => holds(&max, |m, v| m >= v),
                    }
                })
            })
            .collect(),
    )
}

/// `e` as `column op literal` with `op` one of `=`, `<`, `<=`, `>`, `>=` (a literal
/// on the left is moved right, its operator swapped).
pub fn column_op_literal(
    e: &Arc<dyn PhysicalExpr>,
) -> Option<(
    &PhysicalColumn,
    &ScalarValue,
    datafusion::logical_expr::Operator,
)> {
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::expressions::{BinaryExpr, Literal};
    let b = e.downcast_ref::<BinaryExpr>()?;
    let (col, lit, op) = match (
        b.left().downcast_ref::<PhysicalColumn>(),
        b.right().downcast_ref::<Literal>(),
    ) {
        (Some(c), Some(l)) => (c, l, *b.op()),
        _ => (
            b.right().downcast_ref::<PhysicalColumn>()?,
            b.left().downcast_ref::<Literal>()?,
            b.op().swap()?,
        ),
    };
    matches!(
        op,
        Operator::Eq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
    )
    .then_some((col, lit.value(), op))
}

fn exact(v: &Option<StatValue>) -> Option<Exact<'_>> {
    match v.as_ref()? {
        StatValue::Int(i) => Some(Exact::Int(*i as i128)),
        StatValue::UInt(u) => Some(Exact::Int(*u as i128)),
        StatValue::Str(s) => Some(Exact::Str(s)),
        _ => None,
    }
}

fn int_of(v: &ScalarValue) -> Option<i128> {
    Some(match v {
        ScalarValue::Int8(Some(x)) => *x as i128,
        ScalarValue::Int16(Some(x)) => *x as i128,
        ScalarValue::Int32(Some(x)) => *x as i128,
        ScalarValue::Int64(Some(x)) => *x as i128,
        ScalarValue::UInt8(Some(x)) => *x as i128,
        ScalarValue::UInt16(Some(x)) => *x as i128,
        ScalarValue::UInt32(Some(x)) => *x as i128,
        ScalarValue::UInt64(Some(x)) => *x as i128,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::manifest::ColumnStats;
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::expressions::{binary, col, lit};

    fn segment(stats: &[(&str, Option<StatValue>, Option<StatValue>)]) -> SegmentMeta {
        SegmentMeta {
            id: Id::of(b"x"),
            chunks: Id::of(b"y"),
            rows: 10,
            bytes: 100,
            stats: stats
                .iter()
                .map(|(n, min, max)| {
                    let c = ColumnStats {
                        min: min.clone(),
                        max: max.clone(),
                        nulls: 0,
                    };
                    (n.to_string(), c)
                })
                .collect(),
            blobs: vec![],
            refs: vec![],
        }
    }

    /// The shortcut keeps every segment DataFusion's pruning predicate keeps, and
    /// prunes as much.
    #[test]
    fn simple_mask_agrees_with_the_pruning_predicate() {
        use StatValue::*;
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("u", DataType::UInt32, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let segs = [
            segment(&[
                ("a", Some(Int(0)), Some(Int(9))),
                ("u", Some(UInt(5)), Some(UInt(5))),
                ("s", Some(Str("b".into())), Some(Str("d".into()))),
            ]),
            segment(&[
                ("a", Some(Int(10)), Some(Int(19))),
                ("u", Some(UInt(0)), Some(UInt(4_000_000_000))),
                ("s", None, None),
            ]),
            segment(&[("a", Some(Int(-5)), Some(Int(-5)))]),
            segment(&[
                ("a", None, Some(Int(3))),
                ("s", Some(Str("x".into())), None),
            ]),
        ];
        let refs: Vec<&SegmentMeta> = segs.iter().collect();
        let ops = [
            Operator::Eq,
            Operator::Lt,
            Operator::LtEq,
            Operator::Gt,
            Operator::GtEq,
        ];
        let values: Vec<(&str, ScalarValue)> = vec![
            ("a", ScalarValue::Int64(Some(-6))),
            ("a", ScalarValue::Int64(Some(-5))),
            ("a", ScalarValue::Int64(Some(0))),
            ("a", ScalarValue::Int64(Some(9))),
            ("a", ScalarValue::Int64(Some(10))),
            ("a", ScalarValue::Int64(Some(25))),
            ("u", ScalarValue::UInt32(Some(5))),
            ("u", ScalarValue::UInt32(Some(4_000_000_001))),
            ("s", ScalarValue::Utf8(Some("a".into()))),
            ("s", ScalarValue::Utf8(Some("c".into()))),
            ("s", ScalarValue::Utf8(Some("d".into()))),
            ("s", ScalarValue::Utf8(Some("y".into()))),
        ];
        let mut simple = 0;
        for (name, v) in &values {
            for op in ops {
                for flip in [false, true] {
                    let (l, r) = (col(name, &schema).unwrap(), lit(v.clone()));
                    let (l, r, op) = if flip {
                        (r, l, op.swap().unwrap())
                    } else {
                        (l, r, op)
                    };
                    let e = binary(l, op, r, &schema).unwrap();
                    let both = binary(
                        Arc::clone(&e),
                        Operator::And,
                        binary(
                            col("a", &schema).unwrap(),
                            Operator::GtEq,
                            lit(ScalarValue::Int64(Some(-5))),
                            &schema,
                        )
                        .unwrap(),
                        &schema,
                    )
                    .unwrap();
                    for p in [e, both] {
                        let want = predicate_mask(&schema, &refs, &p).unwrap();
                        let got = simple_mask(&schema, &refs, &p).expect("a simple predicate");
                        simple += 1;
                        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                            assert!(*g || !*w, "{p}: segment {i} pruned wrongly");
                            assert_eq!(g, w, "{p}: segment {i}");
                        }
                    }
                }
            }
        }
        assert_eq!(simple, values.len() * ops.len() * 4);
        // Anything else goes to the pruning predicate.
        let or = binary(
            col("a", &schema).unwrap(),
            Operator::Or,
            col("a", &schema).unwrap(),
            &schema,
        );
        assert!(or.is_err() || simple_mask(&schema, &refs, &or.unwrap()).is_none());
    }
}
