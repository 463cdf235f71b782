//! Small tables held whole in memory for one query, with a hash index per text column
//! built on first use: the user tables (`lineage_edges`, `experiments`, `models`).
//! `IndexedScanExec` scans them like a memory table; `index_join` looks rows up by key
//! through the same `IndexedRows` instead of hashing the whole table for every join
//! (every iteration of a recursive walk). Loaded tables are kept in a small
//! process-wide cache keyed by the content they were built from, so the next query on
//! unchanged data reuses the rows and their indexes, as PostgreSQL reuses an index.

use datafusion::arrow::array::{AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat_batches, take_record_batch};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, Operator};
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, Statistics,
    StatisticsArgs,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Row numbers (into `IndexedRows::batch`) by the text value of one column. DataFusion's
/// map (hashbrown with foldhash): a walk probes it once per row it visits, and SipHash
/// was a visible part of a probe.
pub type KeyIndex = datafusion::common::HashMap<String, Vec<u32>>;

/// Every row of one table, as one batch, and the indexes built so far.
#[derive(Debug)]
pub struct IndexedRows {
    pub name: &'static str,
    pub batch: RecordBatch,
    /// Per column: the index, and the most rows any one value has.
    indexes: Mutex<HashMap<usize, (Arc<KeyIndex>, usize)>>,
}

impl IndexedRows {
    pub fn new(
        name: &'static str,
        schema: SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<IndexedRows> {
        Ok(IndexedRows {
            name,
            batch: concat_batches(&schema, batches)?,
            indexes: Mutex::default(),
        })
    }

    pub fn schema(&self) -> SchemaRef {
        self.batch.schema()
    }

    /// Whether `column` can be indexed (text columns only).
    pub fn indexable(&self, column: usize) -> bool {
        self.batch
            .schema()
            .fields()
            .get(column)
            .is_some_and(|f| f.data_type() == &DataType::Utf8)
    }

    /// The index on `column` (which must be `indexable`), built on first use. NULLs are
    /// left out: they equal nothing.
    pub fn index(&self, column: usize) -> Arc<KeyIndex> {
        Arc::clone(&self.indexed(column).0)
    }

    /// The most rows one value of `column` (which must be `indexable`) has: what a scan
    /// by one key returns at most.
    pub fn widest(&self, column: usize) -> usize {
        self.indexed(column).1
    }

    fn indexed(&self, column: usize) -> (Arc<KeyIndex>, usize) {
        let mut all = self.indexes.lock().unwrap_or_else(|e| e.into_inner());
        let (index, widest) = all.entry(column).or_insert_with(|| {
            let values = self.batch.column(column).as_string::<i32>();
            let mut index = KeyIndex::default();
            for (row, v) in values.iter().enumerate() {
                if let Some(v) = v {
                    index.entry(v.to_string()).or_default().push(row as u32);
                }
            }
            let widest = index.values().map(Vec::len).max().unwrap_or(0);
            (Arc::new(index), widest)
        });
        (Arc::clone(index), *widest)
    }
}

/// What an `IndexedRows` was built from: the table, the id of its stored node (content
/// hash) and a digest of any rows derived for it. Equal keys mean equal rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    pub table: &'static str,
    pub node: Option<crate::store::Id>,
    pub derived: crate::store::Id,
}

/// Tables kept (most recent last) and the rows they may hold together.
const CACHE_TABLES: usize = 16;
const CACHE_ROWS: usize = 4_000_000;

static CACHE: Mutex<Vec<(CacheKey, Arc<IndexedRows>)>> = Mutex::new(Vec::new());

/// The cached rows for `key`, or `load()`ed and cached.
pub fn cached<E>(
    key: CacheKey,
    load: impl FnOnce() -> std::result::Result<IndexedRows, E>,
) -> std::result::Result<Arc<IndexedRows>, E> {
    {
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = cache.iter().position(|(k, _)| *k == key) {
            let hit = cache.remove(at);
            let rows = Arc::clone(&hit.1);
            cache.push(hit);
            return Ok(rows);
        }
    }
    let rows = Arc::new(load()?);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.retain(|(k, _)| *k != key);
    cache.push((key, Arc::clone(&rows)));
    let total = |c: &Vec<(CacheKey, Arc<IndexedRows>)>| -> usize {
        c.iter().map(|(_, r)| r.batch.num_rows()).sum()
    };
    while cache.len() > CACHE_TABLES || (cache.len() > 1 && total(&cache) > CACHE_ROWS) {
        cache.remove(0);
    }
    Ok(rows)
}

/// A digest of a batch's values (for `CacheKey::derived`).
pub fn digest(batch: &RecordBatch) -> crate::store::Id {
    use datafusion::arrow::array::Array;
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update((batch.num_rows() as u64).to_le_bytes());
    for c in batch.columns() {
        let data = c.to_data();
        h.update(format!("{:?}", data.data_type()).as_bytes());
        h.update((data.offset() as u64).to_le_bytes());
        h.update((data.len() as u64).to_le_bytes());
        for b in data.buffers() {
            h.update((b.len() as u64).to_le_bytes());
            h.update(b.as_slice());
        }
        match c.nulls() {
            Some(n) => h.update(n.inner().sliced().as_slice()),
            None => h.update([0xff]),
        }
    }
    crate::store::Id::from_slice(&h.finalize()).expect("32-byte digest")
}

/// Scan of an `IndexedRows`: one partition, the projected columns, at most `limit` rows;
/// with a `key`, only the rows the index gives for it.
#[derive(Debug)]
pub struct IndexedScanExec {
    pub rows: Arc<IndexedRows>,
    /// Columns of `rows` this scan returns, in order.
    pub projection: Vec<usize>,
    limit: Option<usize>,
    key: Option<Key>,
    props: Arc<PlanProperties>,
}

/// `column = value` that every row the scan's consumer keeps satisfies (a conjunct of
/// the filter DataFusion keeps above the scan, as pushdown is inexact): rows are taken
/// from the column's index instead of scanned. `value` is a text literal, kept as an
/// expression so a generic plan can bind another (src/catalog/template.rs).
#[derive(Debug, Clone)]
pub struct Key {
    /// Column of `rows` (indexable).
    pub column: usize,
    pub value: Arc<dyn PhysicalExpr>,
}

impl Key {
    /// `col = 'text'` or `'text' = col` on an indexable column of `rows`.
    pub fn of(rows: &IndexedRows, filter: &Expr) -> Option<Key> {
        let Expr::BinaryExpr(b) = filter else {
            return None;
        };
        if b.op != Operator::Eq {
            return None;
        }
        let (column, value) = match (b.left.as_ref(), b.right.as_ref()) {
            (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c)) => {
                (c, v)
            }
            _ => return None,
        };
        let ScalarValue::Utf8(Some(_)) = value else {
            return None;
        };
        let column = rows.schema().index_of(&column.name).ok()?;
        rows.indexable(column).then(|| Key {
            column,
            value: Arc::new(Literal::new(value.clone())),
        })
    }

    /// The rows whose column equals the value (`None`: the value is not a text literal,
    /// so every row).
    fn rows(&self, rows: &IndexedRows) -> Option<Vec<u32>> {
        let ScalarValue::Utf8(Some(v)) = self.value.downcast_ref::<Literal>()?.value() else {
            return None;
        };
        Some(
            rows.index(self.column)
                .get(v.as_str())
                .cloned()
                .unwrap_or_default(),
        )
    }
}

impl IndexedScanExec {
    pub fn try_new(
        rows: Arc<IndexedRows>,
        projection: Option<&Vec<usize>>,
        limit: Option<usize>,
    ) -> Result<IndexedScanExec> {
        let projection = match projection {
            Some(p) => p.clone(),
            None => (0..rows.schema().fields().len()).collect(),
        };
        let schema = Arc::new(rows.schema().project(&projection)?);
        let props = PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(IndexedScanExec {
            rows,
            projection,
            limit,
            key: None,
            props: Arc::new(props),
        })
    }

    /// The scan reading only the rows of `key`.
    pub fn with_key(self, key: Option<Key>) -> IndexedScanExec {
        IndexedScanExec { key, ..self }
    }

    pub fn key(&self) -> Option<&Key> {
        self.key.as_ref()
    }

    /// The same scan with its key's value replaced (binding a generic plan).
    pub fn with_key_value(&self, value: Arc<dyn PhysicalExpr>) -> IndexedScanExec {
        IndexedScanExec {
            rows: Arc::clone(&self.rows),
            projection: self.projection.clone(),
            limit: self.limit,
            key: self.key.as_ref().map(|k| Key {
                column: k.column,
                value,
            }),
            props: Arc::clone(&self.props),
        }
    }

    fn num_rows(&self) -> usize {
        let n = self.rows.batch.num_rows();
        self.limit.map_or(n, |l| l.min(n))
    }

    /// With a key, the most rows a run returns (the value may be bound anew per run:
    /// the most rows one value has); `None` without a key.
    pub fn rows_per_key(&self) -> Option<usize> {
        let k = self.key.as_ref()?;
        Some(self.rows.widest(k.column).min(self.num_rows()))
    }
}

impl DisplayAs for IndexedScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let names: Vec<String> = self
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        write!(
            f,
            "IndexedScanExec: table={}, rows={}, projection=[{}]",
            self.rows.name,
            self.num_rows(),
            names.join(", ")
        )?;
        if let Some(k) = &self.key {
            let name = self.rows.schema().field(k.column).name().clone();
            write!(f, ", key={name} = {}", k.value)?;
        }
        Ok(())
    }
}

impl ExecutionPlan for IndexedScanExec {
    fn name(&self) -> &'static str {
        "IndexedScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        match &self.key {
            Some(k) => f(&k.value),
            None => Ok(TreeNodeRecursion::Continue),
        }
    }

    fn replace_children(
        self: Arc<Self>,
        _: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        _: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        _partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let all = self.rows.batch.project(&self.projection)?;
        let all = match self.key.as_ref().and_then(|k| k.rows(&self.rows)) {
            Some(found) => {
                let found = UInt32Array::from(found);
                let n = self.limit.map_or(found.len(), |l| l.min(found.len()));
                take_record_batch(&all, &found.slice(0, n))?
            }
            None => all.slice(0, self.num_rows()),
        };
        let size = context.session_config().batch_size().max(1);
        let batches = (0..all.num_rows())
            .step_by(size)
            .map(|at| all.slice(at, size.min(all.num_rows() - at)))
            .collect();
        Ok(Box::pin(MemoryStream::try_new(
            batches,
            self.schema(),
            None,
        )?))
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        let mut s = Statistics::new_unknown(&self.schema());
        s.num_rows = Precision::Exact(self.num_rows());
        Ok(Arc::new(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringArray;
    use datafusion::arrow::datatypes::{Field, Schema};

    #[test]
    fn index_skips_nulls_and_keeps_every_row_of_a_key() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true)]));
        let b = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(StringArray::from(vec![
                Some("a"),
                None,
                Some("b"),
                Some("a"),
            ]))],
        )
        .unwrap();
        let rows = IndexedRows::new("t", schema, &[b]).unwrap();
        assert!(rows.indexable(0));
        let index = rows.index(0);
        assert_eq!(index.get("a"), Some(&vec![0, 3]));
        assert_eq!(index.get("b"), Some(&vec![2]));
        assert_eq!(index.len(), 2);
        assert_eq!(rows.widest(0), 2);
    }
}
