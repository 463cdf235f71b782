//! The SQL catalog: one DataFusion catalog (`bagbase`) whose schemas are refs.
//! `public` is the head of the default branch with its working set; every branch, tag,
//! version id or unique prefix is a read-only schema of the same tables at that ref,
//! resolved lazily when a query names it. Reads `version/` and `store/` only.

pub mod blobs;
pub mod bound_filter;
pub mod diff;
pub mod functions;
pub mod index_join;
pub mod indexed;
pub mod lookup;
pub mod plans;
pub mod point_scan;
pub mod reader;
pub mod segments;
pub mod shape;
pub mod summary;
pub mod system;
pub mod template;
pub mod user_tables;
pub mod walk;

use crate::store::{ChunkStore, Id};
use crate::version::{self, manifest, refs, Root};
use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::datasource::TableProvider;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use std::sync::Arc;

pub const CATALOG: &str = "bagbase";
pub const DEFAULT_SCHEMA: &str = "public";

/// A session with every table of the store registered; `default_ref` is what
/// unqualified names (the `public` schema) read.
pub fn session_context(store: Arc<ChunkStore>, default_ref: &str) -> SessionContext {
    session_context_with(store, default_ref, None)
}

/// Like `session_context`; `memory_limit` caps what the queries of this session may
/// hold at once (sorts, joins, aggregates), failing a query that needs more.
pub fn session_context_with(
    store: Arc<ChunkStore>,
    default_ref: &str,
    memory_limit: Option<usize>,
) -> SessionContext {
    let mut config = SessionConfig::new()
        .with_information_schema(true)
        .with_default_catalog_and_schema(CATALOG, DEFAULT_SCHEMA)
        .with_create_default_catalog_and_schema(false);
    // Spans let planning errors say where in the query they are.
    config.options_mut().sql_parser.collect_spans = true;
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(bytes) = memory_limit {
        runtime = runtime.with_memory_limit(bytes, 1.0);
    }
    let runtime = runtime.build_arc().expect("default runtime builds");
    let url = url::Url::parse(segments::SEGMENT_URL).expect("static url");
    runtime.register_object_store(&url, Arc::new(object_store::memory::InMemory::new()));
    // Index lookups for joins against user tables go right after join selection, before
    // repartitioning and dynamic filters are planned around a hash join.
    let mut rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
    let at = rules
        .iter()
        .position(|r| r.name() == "join_selection")
        .map_or(rules.len(), |i| i + 1);
    rules.insert(at, Arc::new(index_join::IndexJoinRule));
    // Walks are fused once the plan around them is final, before dynamic filters are
    // wired (so a kept plan, src/catalog/plans.rs, holds the fused walk).
    let at = rules
        .iter()
        .position(|r| r.name() == "FilterPushdown(Post)")
        .unwrap_or(rules.len());
    rules.insert(at, Arc::new(walk::WalkRule));
    // Scans by one key are not split over the cores (before the walk is fused, so its
    // start is one partition too).
    rules.insert(at, Arc::new(point_scan::PointScanRule));
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_physical_optimizer_rules(rules)
        .build();
    let ctx = SessionContext::new_with_state(state);
    for f in functions::all() {
        ctx.register_udf(f);
    }
    ctx.register_udtf(
        "version_diff",
        Arc::new(diff::VersionDiffFunc {
            store: Arc::clone(&store),
        }),
    );
    ctx.register_udtf(
        "diff_summary",
        Arc::new(summary::DiffSummaryFunc {
            store: Arc::clone(&store),
        }),
    );
    ctx.register_catalog(
        CATALOG,
        Arc::new(RefCatalog {
            store,
            default_ref: default_ref.to_string(),
            extra: Default::default(),
        }),
    );
    ctx
}

#[derive(Debug)]
pub struct RefCatalog {
    store: Arc<ChunkStore>,
    default_ref: String,
    /// Schemas registered by the embedder (the server's `pg_catalog`), not refs.
    extra: std::sync::RwLock<std::collections::BTreeMap<String, Arc<dyn SchemaProvider>>>,
}

impl CatalogProvider for RefCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names = vec![DEFAULT_SCHEMA.to_string()];
        names.extend(self.extra.read().expect("schema lock").keys().cloned());
        if let Ok(r) = refs::list(self.store.kv()) {
            names.extend(r.into_iter().map(|(n, _, _)| n));
        }
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if let Some(s) = self.extra.read().expect("schema lock").get(name) {
            return Some(Arc::clone(s));
        }
        let ref_name = if name == DEFAULT_SCHEMA {
            &self.default_ref
        } else {
            name
        };
        Some(Arc::new(RefSchema::open(
            Arc::clone(&self.store),
            ref_name,
            name != DEFAULT_SCHEMA,
        )))
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        Ok(self
            .extra
            .write()
            .expect("schema lock")
            .insert(name.to_string(), schema))
    }
}

/// The tables of one ref, as of the moment the schema was resolved.
#[derive(Debug)]
pub struct RefSchema {
    store: Arc<ChunkStore>,
    name: String,
    state: std::result::Result<(Root, Option<Id>, refs::Resolved), String>,
}

impl RefSchema {
    /// `scoped`: versions/storage list only this ref's history (false for `public`).
    fn open(store: Arc<ChunkStore>, name: &str, scoped: bool) -> RefSchema {
        let kv = store.kv();
        let state = (|| -> version::Result<(Root, Option<Id>, refs::Resolved)> {
            let r = refs::resolve(kv, name)?;
            let root = manifest::load_root(kv, &refs::read_root(kv, &r)?)?;
            Ok((root, scoped.then_some(r.version), r))
        })()
        .map_err(|e| e.to_string());
        RefSchema {
            store,
            name: name.to_string(),
            state,
        }
    }
}

#[async_trait]
impl SchemaProvider for RefSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = system::SYSTEM_TABLES
            .iter()
            .chain(user_tables::USER_TABLES)
            .map(|s| s.to_string())
            .collect();
        if let Ok((root, _, _)) = &self.state {
            names.extend(
                root.tables
                    .keys()
                    .filter(|t| !user_tables::is_user_table(t))
                    .cloned(),
            );
        }
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let (root, scope, resolved) = self
            .state
            .as_ref()
            .map_err(|e| DataFusionError::Plan(e.clone()))?;
        let kv = self.store.kv();
        if let Some(t) = system::build(kv, name, root, scope.as_ref())? {
            return Ok(Some(Arc::new(t)));
        }
        let ext = |e: version::VersionError| DataFusionError::External(Box::new(e));
        let store = Arc::clone(&self.store);
        if let Some(t) =
            user_tables::UserTable::open(store, name, root, scope.as_ref(), resolved, &self.name)
                .map_err(ext)?
        {
            return Ok(Some(Arc::new(t)));
        }
        let Some(id) = root.tables.get(name) else {
            return Ok(None);
        };
        let t = segments::SegmentTable::open(Arc::clone(&self.store), name, id).map_err(ext)?;
        Ok(Some(Arc::new(t)))
    }

    fn table_exist(&self, name: &str) -> bool {
        system::SYSTEM_TABLES.contains(&name)
            || user_tables::is_user_table(name)
            || self
                .state
                .as_ref()
                .is_ok_and(|(root, _, _)| root.tables.contains_key(name))
    }
}
