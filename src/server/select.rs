//! SELECTs (`Statement::Query`) of the simple protocol, and prepared ones without
//! parameters, run here rather than by datafusion-postgres's default path: this is
//! the last query hook, so `SET`/`SHOW`, cursors and transactions are answered first,
//! and `super::query` calls it directly for a query text that is one SELECT.
//! - Plans are kept: a statement asked again on the same ref while the store has not
//!   changed reuses its physical plan (`catalog::plans`, the cache `Store::sql` uses;
//!   one per served ref). Dashboards, BI tools and scripts repeat their statements.
//!   A query text that is one SELECT is kept under that text, and `super::query`
//!   looks it up before parsing it at all ([`SelectHook::kept`]).
//! - Rows are encoded by `super::rows`, in PostgreSQL's text forms, and JSON text
//!   columns are typed `json` (`super::types`).
//! - `SET statement_timeout` bounds planning, as datafusion-postgres does.

use super::types::json_fields;
use crate::catalog::plans::{Answer, PlanCache};
use crate::store::ChunkStore;
use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::arrow_pg::datatypes::arrow_schema_to_pg_fields;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::QueryHook;
use pgwire::api::portal::Format;
use pgwire::api::results::Response;
use pgwire::api::ClientInfo;
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::types::format::FormatOptions;
use std::sync::Arc;
use std::time::Duration;

/// datafusion-postgres keeps a client's `SET statement_timeout` here (milliseconds).
const STATEMENT_TIMEOUT_KEY: &str = "statement_timeout_ms";

fn timed_out() -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "57014".into(),
        "canceling statement due to statement timeout".into(),
    )))
}

/// Runs one served ref's SELECTs.
pub struct SelectHook {
    store: Arc<ChunkStore>,
    reference: String,
    plans: PlanCache,
}

impl SelectHook {
    pub fn new(store: Arc<ChunkStore>, reference: &str) -> SelectHook {
        SelectHook {
            store,
            reference: reference.to_string(),
            plans: PlanCache::default(),
        }
    }

    /// The response of the plan kept for the query text `sql`, or of the generic plan
    /// its shape is known to take (`catalog::shape`), if there is one: no parsing, no
    /// planning. Both are plans of SELECTs, so every role may run them.
    pub fn kept(
        &self,
        sql: &str,
        client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<Response>> {
        let generation = self.store.generation();
        let answer = self
            .plans
            .kept(generation, &self.reference, sql)
            .or_else(|| self.plans.shaped(generation, &self.reference, sql))?;
        Some(
            answer
                .map_err(|e| PgWireError::ApiError(Box::new(e)))
                .and_then(|a| respond(a, client, &Format::UnifiedText)),
        )
    }

    /// Runs `statement`, keeping its plan under `key` (the text it will come as), its
    /// columns sent in `format` (text for simple queries, the portal's for prepared).
    pub async fn run(
        &self,
        statement: &Statement,
        key: &str,
        ctx: &SessionContext,
        client: &(dyn ClientInfo + Send + Sync),
        format: &Format,
    ) -> PgWireResult<Response> {
        let sql = statement.to_string();
        let timeout = client
            .metadata()
            .get(STATEMENT_TIMEOUT_KEY)
            .and_then(|ms| ms.parse().ok())
            .map(Duration::from_millis);
        let generation = self.store.generation();
        let started = self.plans.execute(
            generation,
            &self.reference,
            key,
            &sql,
            Some(statement),
            || ctx.clone(),
        );
        let answer = match timeout {
            Some(t) => tokio::time::timeout(t, started)
                .await
                .map_err(|_| timed_out())?,
            None => started.await,
        }
        .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
        respond(answer, client, format)
    }
}

/// The rows of `answer`, described for `client` (its date style, float digits…).
fn respond(
    answer: Answer,
    client: &(dyn ClientInfo + Send + Sync),
    format: &Format,
) -> PgWireResult<Response> {
    let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
    let fields = arrow_schema_to_pg_fields(&answer.schema, format, Some(options))?;
    let fields = json_fields(&fields, &answer.schema).unwrap_or(fields);
    Ok(Response::Query(super::rows::response(
        Arc::new(fields),
        answer.batches,
    )))
}

#[async_trait]
impl QueryHook for SelectHook {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        match statement {
            Statement::Query(_) => {
                let key = statement.to_string();
                Some(
                    self.run(statement, &key, ctx, &*client, &Format::UnifiedText)
                        .await,
                )
            }
            _ => None,
        }
    }

    async fn handle_extended_parse_query(
        &self,
        _statement: &Statement,
        _ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        None
    }

    async fn handle_extended_query(
        &self,
        _statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        None
    }
}
