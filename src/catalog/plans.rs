//! Physical plans kept for repeated statements (`Store::sql`). Planning a query —
//! parse, logical plan, ~30 optimizer rules, physical plan and ~20 physical rules —
//! costs DataFusion 1–2 ms, more than a small query's execution; the same statement
//! asked again (a dashboard, a lineage walk, a loop in a script) reuses its plan.
//!
//! A plan is kept from the second time a statement comes (same ref, same text) at
//! the same store generation; the first time it is planned as usual.
//!
//! A plan is bound to what it read while planning: the ref's version, table nodes,
//! user-table rows, system-table contents. So an entry is valid only while the store's
//! publish generation (`ChunkStore::generation`) is the one it was planned at; any
//! publish in this process drops every entry. Only read-only queries whose functions
//! are all immutable are kept: `now()`, `random()` and the like are folded into
//! constants by the optimizer, so their plans must not be reused.
//!
//! What is kept is the plan as the physical optimizer leaves it just before
//! `FilterPushdown(Post)`: that rule wires dynamic filters (TopK thresholds, hash-join
//! bounds) from the operator that updates them into the scans below, and a filter
//! updated by one run must not prune the next. Each run resets the kept plan's
//! execution state (`reset_plan_states`: new TopK filters, empty join build sides) and
//! then applies the last rules to that fresh copy: `FilterPushdown(Post)`, and the
//! sanity check on the first run only — tens of microseconds, against the whole
//! planning; when they change nothing on the first run (no dynamic filter to wire),
//! later runs skip them.
//! An aggregate's min/max dynamic filter is made with the aggregate and survives the
//! reset, so a kept plan is made without pushing it down (the one thing it gives up).
//!
//! Statements that differ only in their WHERE literals share a generic plan, made the
//! second time their shape comes and bound per run (`template`, `PlanCache::generic`).
//! A statement seen before word for word takes that generic plan too once it is made,
//! and keeps a plan of its own only when its shape has none: with more repeated values
//! than the cache keeps (a lineage walk from each of thousands of nodes), plans of
//! their own would be made again and again as the cache turns over.

use super::segments::SegmentTable;
use super::shape::{Shape, Slots};
use super::template;
use super::user_tables::UserTable;
use crate::store::ChunkStore;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::default_table_source::source_as_provider;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::execution::session_state::SessionState;
use datafusion::execution::{SendableRecordBatchStream, SessionStateBuilder, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::physical_optimizer::optimizer::ConfigOnlyContext;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::physical_plan::{execute_stream, ExecutionPlan};
use datafusion::prelude::SessionConfig;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use futures::TryStreamExt;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Statements run through their shape (`PlanCache::shaped`) in this process.
static SHAPED: AtomicU64 = AtomicU64::new(0);

/// How many statements this process ran without parsing them (tests check it).
pub fn shaped_runs() -> u64 {
    SHAPED.load(Ordering::Relaxed)
}

/// Plans kept at once; past this the cache starts over.
const MAX_PLANS: usize = 64;
/// Statements remembered as seen once; past this the memory starts over.
const MAX_SEEN: usize = 4096;
/// Longer statements are planned every time (the key holds the text).
const MAX_SQL_BYTES: usize = 16 << 10;

type Rules = Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>;

/// The physical rule from which on a plan is finished per run (see the module doc).
const FINISH_FROM: &str = "FilterPushdown(Post)";

#[derive(Clone)]
struct Entry {
    /// The plan before its last rules.
    plan: Arc<dyn ExecutionPlan>,
    /// The rules from `FINISH_FROM` on, applied to each run's copy.
    finish: Arc<Rules>,
    /// The session's config and runtime the plan was made with.
    task: Arc<TaskContext>,
    /// The result's schema, as the logical plan gives it.
    schema: SchemaRef,
    /// Set when the finishing rules changed nothing on the first run (no dynamic
    /// filter to wire): later runs skip them.
    finished: Arc<AtomicBool>,
    /// Runs so far: a plan is made again after `MAX_RUNS` (see there).
    runs: Arc<AtomicU32>,
}

/// Runs of one kept or generic plan before it is planned again. DataFusion 55 keeps a
/// Parquet scan's metrics in its `ParquetSource`, shared by every copy and not renewed
/// by `reset_plan_states`, and each file a run opens registers ≈ 30 more: a plan run
/// forever grew by ≈ 20 KiB a run (a server doing point lookups: 41 MiB → 800 MiB in
/// 20 s). Planning again every 256 runs bounds that at a few MiB a plan, for ≈ 6 µs a
/// run.
const MAX_RUNS: u32 = 256;

impl Entry {
    /// Whether this plan has run `MAX_RUNS` times and is to be made again.
    fn worn(&self) -> bool {
        self.runs.load(Ordering::Relaxed) >= MAX_RUNS
    }

    /// Runs a reset copy; the sanity check runs on the first copy only (the others
    /// have the same shape).
    fn run(&self, first: bool) -> Result<SendableRecordBatchStream> {
        self.runs.fetch_add(1, Ordering::Relaxed);
        let mut plan = reset_plan_states(Arc::clone(&self.plan))?;
        if !self.finished.load(Ordering::Relaxed) {
            let config = ConfigOnlyContext::new(self.task.session_config().options());
            let mut unchanged = true;
            for rule in self.finish.iter() {
                if !first && rule.name() == "SanityCheckPlan" {
                    continue;
                }
                let next = rule.optimize_with_context(Arc::clone(&plan), &config)?;
                unchanged &= Arc::ptr_eq(&next, &plan);
                plan = next;
            }
            if first && unchanged {
                self.finished.store(true, Ordering::Relaxed);
            }
        }
        // A `LookupExec` at the root (a bound point lookup) has every row in partition
        // 0 and the others empty: read it without `execute_stream`'s coalescing (a
        // task and a channel per partition).
        if plan.downcast_ref::<super::lookup::LookupExec>().is_some() {
            return plan.execute(0, Arc::clone(&self.task));
        }
        execute_stream(plan, Arc::clone(&self.task))
    }

    /// A run's answer: the schema and a reset copy's batches (see `run`).
    fn answer(&self, first: bool) -> Result<Answer> {
        Ok(Answer {
            schema: Arc::clone(&self.schema),
            batches: self.run(first)?,
        })
    }

    /// This plan with `bound` (its generic plan bound to a statement's values) to run.
    fn bound(&self, bound: Arc<dyn ExecutionPlan>) -> Entry {
        Entry {
            plan: bound,
            ..self.clone()
        }
    }
}

/// A statement's result: its schema (as the logical plan gives it, field metadata
/// included) and its batches.
pub struct Answer {
    pub schema: SchemaRef,
    pub batches: SendableRecordBatchStream,
}

#[derive(Default)]
struct Inner {
    generation: u64,
    /// (ref, SQL) → plan.
    plans: HashMap<(String, String), Entry>,
    /// Hashes of the (ref, SQL) keys seen once at this generation: a plan is kept from
    /// a statement's second run on, so one-off statements (a point lookup with its
    /// own literals) neither pay for keeping nor push out the plans of repeated ones.
    seen: HashSet<u64>,
    /// (ref, statement with its WHERE literals as placeholders) → generic plan
    /// (`template`), made the second time a statement of that shape comes.
    generic: HashMap<(String, String), Generic>,
    /// (ref, statement shape) → the key of its generic plan and where its values are
    /// (`shape`): texts of a known shape skip parsing.
    shapes: HashMap<(String, String), Arc<(String, Slots)>>,
}

/// What the cache knows of a statement shape.
#[derive(Clone)]
enum Generic {
    /// Seen once at this generation.
    Seen,
    Ready(Arc<GenericPlan>),
    /// No generic plan serves it (see `template::check`): planned per run.
    Refused,
}

/// A plan made with sentinels where the placeholders were.
struct GenericPlan {
    entry: Entry,
    sentinels: Vec<ScalarValue>,
    types: Vec<DataType>,
}

/// What the cache has for a statement.
enum Lookup {
    Kept(Entry),
    /// Not seen before at this generation: planned as usual, not kept.
    First,
    /// Seen once: planned to be kept.
    Again,
}

/// One per open store (`Store::sql`), and one per ref the wire server serves (its
/// simple-protocol SELECTs).
#[derive(Default)]
pub struct PlanCache {
    inner: Mutex<Inner>,
}

impl PlanCache {
    /// Runs `sql` with unqualified names reading `reference` (already checked to
    /// resolve), reusing a kept plan when the store has not changed since it was made.
    pub async fn run(
        &self,
        store: &Arc<ChunkStore>,
        reference: &str,
        sql: &str,
    ) -> Result<Vec<RecordBatch>> {
        let generation = store.generation();
        let answer = match self.shaped(generation, reference, sql) {
            Some(answer) => answer?,
            None => {
                self.execute(generation, reference, sql, sql, None, || {
                    super::session_context(Arc::clone(store), reference)
                })
                .await?
            }
        };
        answer.batches.try_collect().await
    }

    /// Starts `sql` in the session `ctx` makes (called only when no plan is kept),
    /// where unqualified names read `reference`; the plan is kept under `key` (the
    /// statement's text as the caller will look it up again). `generation` is the
    /// store's publish generation, read before this call: a publish during planning
    /// makes the new entry stale, never a stale plan current.
    pub async fn execute(
        &self,
        generation: u64,
        reference: &str,
        key: &str,
        sql: &str,
        statement: Option<&Statement>,
        ctx: impl Fn() -> SessionContext,
    ) -> Result<Answer> {
        let key = (reference.to_string(), key.to_string());
        let lookup = self.get(generation, &key);
        if let Lookup::Kept(entry) = lookup {
            return entry.answer(false);
        }
        // A statement of a known shape takes the generic plan; seen before word for
        // word, only one already made (else it is planned to be kept, below).
        if sql.len() <= MAX_SQL_BYTES {
            let make = matches!(lookup, Lookup::First);
            if let Some(answer) = self
                .generic(generation, reference, &key.1, sql, statement, make, &ctx)
                .await?
            {
                return Ok(answer);
            }
        }
        let ctx = ctx();
        let state = ctx.state();
        let logical = state.create_logical_plan(sql).await?;
        let schema: SchemaRef = Arc::new(logical.schema().as_arrow().clone());
        if matches!(lookup, Lookup::First) || sql.len() > MAX_SQL_BYTES || !cacheable(&logical)? {
            let batches = ctx
                .execute_logical_plan(logical)
                .await?
                .execute_stream()
                .await?;
            return Ok(Answer { schema, batches });
        }
        let (prefix, finish) = split_rules(&state);
        let planning = SessionStateBuilder::new_from_existing(state.clone())
            .with_config(keeping_config(&state))
            .with_physical_optimizer_rules(prefix)
            .build();
        let plan = planning.create_physical_plan(&logical).await?;
        let plan = super::lookup::small_scans(plan)?;
        let entry = Entry {
            plan,
            finish,
            task: planning.task_ctx(),
            schema: Arc::clone(&schema),
            finished: Arc::new(AtomicBool::new(false)),
            runs: Arc::default(),
        };
        self.put(generation, key, entry.clone());
        entry.answer(true)
    }

    /// Runs `sql` through the generic plan of its shape when there is one (and, if
    /// `make`, makes it the second time the shape comes); `None`: plan it as usual.
    #[allow(clippy::too_many_arguments)]
    async fn generic(
        &self,
        generation: u64,
        reference: &str,
        text: &str,
        sql: &str,
        statement: Option<&Statement>,
        make: bool,
        ctx: &impl Fn() -> SessionContext,
    ) -> Result<Option<Answer>> {
        let parsed;
        let statement = match statement {
            Some(s) => s,
            None => {
                let Ok(mut all) = Parser::parse_sql(&GenericDialect {}, sql) else {
                    return Ok(None);
                };
                if all.len() != 1 {
                    return Ok(None);
                }
                parsed = all.remove(0);
                &parsed
            }
        };
        let Some(normalized) = template::normalize(statement) else {
            return Ok(None);
        };
        let key = (reference.to_string(), normalized.key.clone());
        let known = {
            let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if g.generation != generation {
                return Ok(None);
            }
            if g.generic.len() >= MAX_SEEN {
                g.generic.clear();
            }
            let known = g.generic.get(&key).cloned();
            if known.is_none() && make {
                g.generic.insert(key.clone(), Generic::Seen);
            }
            known
        };
        let (plan, first) = match known {
            None | Some(Generic::Refused) => return Ok(None),
            Some(Generic::Ready(plan)) if !plan.entry.worn() => (plan, false),
            // A worn generic plan is made again whoever comes: were it left to the
            // next text seen for the first time, every repeated text in between
            // (most of them, once a workload's values recur) would be planned whole.
            Some(Generic::Seen) if !make => return Ok(None),
            Some(Generic::Seen | Generic::Ready(_)) => {
                let made = make_generic(&key.1, &ctx()).await.unwrap_or(None);
                let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                let Some(plan) = made else {
                    if g.generation == generation {
                        g.generic.insert(key, Generic::Refused);
                    }
                    return Ok(None);
                };
                let plan = Arc::new(plan);
                if g.generation == generation {
                    // At most MAX_PLANS generic plans; past that they start over.
                    let ready = |v: &Generic| matches!(v, Generic::Ready(_));
                    if g.generic.values().filter(|v| ready(v)).count() >= MAX_PLANS {
                        g.generic.retain(|_, v| !ready(v));
                    }
                    g.generic.insert(key, Generic::Ready(Arc::clone(&plan)));
                }
                (plan, true)
            }
        };
        let values: Option<Vec<ScalarValue>> = normalized
            .values
            .iter()
            .zip(&plan.types)
            .map(|(v, t)| template::convert(v, t))
            .collect();
        let Some(values) = values else {
            return Ok(None);
        };
        // A plan that cannot be bound (not seen in tests) is planned as usual.
        let Ok(bound) = template::bind(&plan.entry.plan, &plan.sentinels, &values) else {
            return Ok(None);
        };
        self.learn(generation, reference, text, statement, &normalized);
        plan.entry.bound(bound).answer(first).map(Some)
    }

    /// Learns where the values of `text` (parsed as `statement`, normalized as
    /// `normalized`) are among its literals, if its shape is not known yet.
    fn learn(
        &self,
        generation: u64,
        reference: &str,
        text: &str,
        statement: &Statement,
        normalized: &template::Normalized,
    ) {
        let Some(shape) = Shape::of(text) else {
            return;
        };
        let key = (reference.to_string(), shape.key.clone());
        {
            let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if g.generation != generation || g.shapes.contains_key(&key) {
                return;
            }
        }
        let Some(printed) = Shape::of(&statement.to_string()) else {
            return;
        };
        let Some(slots) = Slots::learn(&shape, &printed, &normalized.values) else {
            return;
        };
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.generation == generation {
            if g.shapes.len() >= MAX_SEEN {
                g.shapes.clear();
            }
            g.shapes
                .insert(key, Arc::new((normalized.key.clone(), slots)));
        }
    }

    /// Runs `sql` without parsing it, if its shape is known and its generic plan is
    /// ready (a plan kept for this very text runs instead). `None`: take the usual
    /// path.
    pub fn shaped(&self, generation: u64, reference: &str, sql: &str) -> Option<Result<Answer>> {
        // No shape learned: not even tokenized (INSERTs, one-off statements).
        if self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .shapes
            .is_empty()
        {
            return None;
        }
        let shape = Shape::of(sql)?;
        let (plan, values) = {
            let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if g.generation != generation {
                return None;
            }
            let learned = g.shapes.get(&(reference.to_string(), shape.key.clone()))?;
            let (generic, slots) = learned.as_ref();
            let Some(Generic::Ready(plan)) =
                g.generic.get(&(reference.to_string(), generic.clone()))
            else {
                return None;
            };
            let values = slots.values(&shape)?;
            let values: Vec<ScalarValue> = values
                .iter()
                .zip(&plan.types)
                .map(|(v, t)| template::convert(v, t))
                .collect::<Option<_>>()?;
            (Arc::clone(plan), values)
        };
        if plan.entry.worn() {
            return None;
        }
        match self.get(generation, &(reference.to_string(), sql.to_string())) {
            Lookup::Kept(entry) => return Some(entry.answer(false)),
            Lookup::Again | Lookup::First => {}
        }
        // As in `generic`: a plan that cannot be bound is planned as usual.
        let bound = template::bind(&plan.entry.plan, &plan.sentinels, &values).ok()?;
        SHAPED.fetch_add(1, Ordering::Relaxed);
        Some(plan.entry.bound(bound).answer(false))
    }

    /// Runs the plan kept under `key` for `reference` at `generation`, if there is one
    /// (a lookup only: the statement does not count as seen).
    pub fn kept(&self, generation: u64, reference: &str, key: &str) -> Option<Result<Answer>> {
        let entry = {
            let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if g.generation != generation {
                return None;
            }
            g.plans
                .get(&(reference.to_string(), key.to_string()))?
                .clone()
        };
        if entry.worn() {
            return None;
        }
        Some(entry.answer(false))
    }

    fn get(&self, generation: u64, key: &(String, String)) -> Lookup {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.generation != generation {
            g.plans.clear();
            g.seen.clear();
            g.generic.clear();
            g.shapes.clear();
            g.generation = generation;
        }
        if let Some(entry) = g.plans.get(key) {
            if !entry.worn() {
                return Lookup::Kept(entry.clone());
            }
            g.plans.remove(key);
            return Lookup::Again;
        }
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        if g.seen.len() >= MAX_SEEN {
            g.seen.clear();
        }
        if g.seen.insert(h.finish()) {
            Lookup::First
        } else {
            Lookup::Again
        }
    }

    fn put(&self, generation: u64, key: (String, String), entry: Entry) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.generation != generation {
            return;
        }
        if g.plans.len() >= MAX_PLANS {
            g.plans.clear();
        }
        g.plans.insert(key, entry);
    }

    /// Generic plans made that are still valid at the store's `generation` (tests).
    pub fn valid_generic(&self, generation: u64) -> usize {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.generation != generation {
            return 0;
        }
        g.generic
            .values()
            .filter(|v| matches!(v, Generic::Ready(_)))
            .count()
    }

    /// Plans kept that are still valid at the store's `generation` (tests).
    pub fn valid(&self, generation: u64) -> usize {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.generation == generation {
            g.plans.len()
        } else {
            0
        }
    }
}

/// The config a kept plan is made with: the session's, without the aggregate's
/// dynamic filter (see the module doc).
fn keeping_config(state: &SessionState) -> SessionConfig {
    let mut config = state.config().clone();
    config
        .options_mut()
        .optimizer
        .enable_aggregate_dynamic_filter_pushdown = false;
    config
}

/// The physical rules a kept plan is made with, and those each run applies.
fn split_rules(state: &SessionState) -> (Rules, Arc<Rules>) {
    let rules = state.physical_optimizers();
    let split = rules
        .iter()
        .position(|r| r.name() == FINISH_FROM)
        .unwrap_or(rules.len());
    (rules[..split].to_vec(), Arc::new(rules[split..].to_vec()))
}

/// The generic plan of `key` (a statement with placeholders, `template`), if one can
/// serve it: a read-only immutable query whose placeholders DataFusion types as
/// bagbase binds them, whose placeholder filters reach only segment tables, and whose
/// plan passes `template::check`.
async fn make_generic(key: &str, ctx: &SessionContext) -> Result<Option<GenericPlan>> {
    let state = ctx.state();
    let logical = state.create_logical_plan(key).await?;
    if !is_read_only(&logical, true)? {
        return Ok(None);
    }
    let logical = state.optimize(&logical)?;
    let found = logical.get_parameter_types()?;
    let mut types = Vec::with_capacity(found.len());
    for k in 1..=found.len() {
        match found.get(&format!("${k}")) {
            Some(Some(t)) => types.push(t.clone()),
            _ => return Ok(None),
        }
    }
    let sentinels: Option<Vec<ScalarValue>> = types
        .iter()
        .enumerate()
        .map(|(k, t)| template::sentinel(t, k))
        .collect();
    let others: Option<Vec<ScalarValue>> = types
        .iter()
        .enumerate()
        .map(|(k, t)| template::sentinel(t, k + types.len()))
        .collect();
    let (Some(sentinels), Some(others)) = (sentinels, others) else {
        return Ok(None);
    };
    // A statement that writes a sentinel's value itself would have it replaced too.
    if sentinels
        .iter()
        .chain(&others)
        .any(|v| key.contains(template::shown(v).as_str()))
    {
        return Ok(None);
    }
    if !placeholder_filters_on_segments(&logical)? {
        return Ok(None);
    }
    let logical = logical.with_param_values(sentinels.clone())?;
    let (prefix, finish) = split_rules(&state);
    let planning = SessionStateBuilder::new_from_existing(state)
        .with_config(keeping_config(&ctx.state()).with_extension(Arc::new(template::Generic)))
        .with_physical_optimizer_rules(prefix)
        .build();
    let plan = planning
        .query_planner()
        .create_physical_plan(&logical, &planning)
        .await?;
    if !template::check(&plan, &sentinels, &others)? {
        return Ok(None);
    }
    Ok(Some(GenericPlan {
        entry: Entry {
            plan,
            finish,
            task: planning.task_ctx(),
            schema: Arc::new(logical.schema().as_arrow().clone()),
            finished: Arc::new(AtomicBool::new(false)),
            runs: Arc::default(),
        },
        sentinels,
        types,
    }))
}

/// Whether every table scan given a filter with a placeholder reads a segment table
/// or a user table (other tables may use a filter's value while planning, and a
/// sentinel must not be looked up; a user table keeps it as its scan's key, looked up
/// when the bound plan runs).
fn placeholder_filters_on_segments(plan: &LogicalPlan) -> Result<bool> {
    let mut ok = true;
    plan.apply_with_subqueries(|p| {
        if let LogicalPlan::TableScan(scan) = p {
            let mut has = false;
            for f in &scan.filters {
                f.apply(|e| {
                    has |= matches!(e, Expr::Placeholder(_));
                    Ok(TreeNodeRecursion::Continue)
                })?;
            }
            if has {
                ok &= source_as_provider(&scan.source)
                    .map(|t| {
                        t.downcast_ref::<SegmentTable>().is_some()
                            || t.downcast_ref::<UserTable>().is_some()
                    })
                    .unwrap_or(false);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(ok)
}

/// Whether `Store::sql` keeps this statement's plan: a read-only query whose every
/// function (subqueries included) is immutable.
pub fn cacheable(plan: &LogicalPlan) -> Result<bool> {
    is_read_only(plan, false)
}

/// A read-only query whose every function is immutable; placeholders count as
/// volatile unless `placeholders` (a generic plan binds them).
fn is_read_only(plan: &LogicalPlan, placeholders: bool) -> Result<bool> {
    let mut ok = true;
    plan.apply_with_subqueries(|p| {
        let read_only = !matches!(
            p,
            LogicalPlan::Dml(_)
                | LogicalPlan::Ddl(_)
                | LogicalPlan::Copy(_)
                | LogicalPlan::Statement(_)
                | LogicalPlan::Explain(_)
                | LogicalPlan::Analyze(_)
                | LogicalPlan::DescribeTable(_)
                | LogicalPlan::Extension(_)
        );
        if !read_only {
            ok = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        for e in p.expressions() {
            e.apply(|e| {
                let volatility = match e {
                    Expr::ScalarFunction(f) => Some(f.func.signature().volatility),
                    Expr::AggregateFunction(f) => Some(f.func.signature().volatility),
                    Expr::Placeholder(_) if !placeholders => Some(Volatility::Volatile),
                    _ => None,
                };
                if volatility.is_some_and(|v| v != Volatility::Immutable) {
                    ok = false;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        Ok(if ok {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    })?;
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn is_cacheable(sql: &str) -> bool {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t (a int, b text)").await.unwrap();
        let plan = ctx.state().create_logical_plan(sql).await.unwrap();
        cacheable(&plan).unwrap()
    }

    #[tokio::test]
    async fn only_immutable_reads_are_kept() {
        assert!(is_cacheable("SELECT a, upper(b) FROM t WHERE a > 1 ORDER BY a LIMIT 3").await);
        assert!(is_cacheable("SELECT count(*) FROM t GROUP BY b").await);
        assert!(!is_cacheable("SELECT now()").await);
        assert!(!is_cacheable("SELECT a FROM t WHERE a < random()").await);
        assert!(
            !is_cacheable("SELECT a FROM t WHERE a IN (SELECT a FROM t WHERE now() > now())").await
        );
        assert!(!is_cacheable("INSERT INTO t VALUES (1, 'x')").await);
        assert!(!is_cacheable("EXPLAIN SELECT a FROM t").await);
        assert!(!is_cacheable("CREATE VIEW v AS SELECT a FROM t").await);
        assert!(!is_cacheable("SET datafusion.execution.batch_size = 100").await);
    }
}
