//! Result types as drivers expect them.
//! - PostgreSQL has no 1-byte integer: arrow-pg describes an `Int8` column as `int2`
//!   but sends one byte in binary format, which binary-format drivers (asyncpg, JDBC)
//!   reject. An analyzer rule widens top-level `Int8` result columns to `Int16` before
//!   execution; names stay as they were.
//! - JSON text columns (Utf8 marked `arrow.json`: `experiments.params`, `metrics`) are
//!   described as `json` (OID 114), which arrow-pg 0.16 does not know. Only the row
//!   description changes: json's text and binary forms are both the UTF-8 text that
//!   arrow-pg already sends for a `text` column. Simple queries get it from
//!   [`JsonResultHook`] (which runs them as datafusion-postgres would, keeping the
//!   arrow schema), prepared ones from their plan ([`json_fields`]).

use crate::catalog::user_tables::JSON_EXTENSION;
use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{Column, ParamValues, Result};
use datafusion::logical_expr::{cast, Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::optimizer::AnalyzerRule;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::arrow_pg::datatypes::df::encode_dataframe;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::QueryHook;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldInfo, Response};
use pgwire::api::{ClientInfo, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::types::format::FormatOptions;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Default)]
pub struct WidenTinyInts;

impl AnalyzerRule for WidenTinyInts {
    fn name(&self) -> &str {
        "bagbase_widen_tiny_ints"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        let returns_rows = !matches!(
            plan,
            LogicalPlan::Dml(_)
                | LogicalPlan::Ddl(_)
                | LogicalPlan::Explain(_)
                | LogicalPlan::Analyze(_)
                | LogicalPlan::Statement(_)
                | LogicalPlan::DescribeTable(_)
                | LogicalPlan::Copy(_)
        );
        let schema = plan.schema();
        if !returns_rows
            || !schema
                .fields()
                .iter()
                .any(|f| f.data_type() == &DataType::Int8)
        {
            return Ok(plan);
        }
        let exprs: Vec<Expr> = schema
            .iter()
            .map(|(q, f)| {
                let c = Expr::Column(Column::new(q.cloned(), f.name()));
                if f.data_type() == &DataType::Int8 {
                    cast(c, DataType::Int16).alias(f.name())
                } else {
                    c
                }
            })
            .collect();
        LogicalPlanBuilder::from(plan).project(exprs)?.build()
    }
}

fn is_json(f: &datafusion::arrow::datatypes::Field) -> bool {
    f.extension_type_name() == Some(JSON_EXTENSION)
}

/// `fields` (arrow-pg's description of a result with arrow schema `schema`) with the
/// JSON text columns typed `json`; `None` when there are none.
pub fn json_fields(fields: &[FieldInfo], schema: &Schema) -> Option<Vec<FieldInfo>> {
    let marked = schema.fields();
    if fields.len() != marked.len() || !marked.iter().any(|f| is_json(f)) {
        return None;
    }
    let retyped = fields.iter().zip(marked.iter()).map(|(info, f)| {
        if !is_json(f) || info.datatype() != &Type::TEXT {
            return info.clone();
        }
        FieldInfo::new(
            info.name().to_string(),
            info.table_id(),
            info.column_id(),
            Type::JSON,
            info.format(),
        )
        .with_format_options(Arc::clone(info.format_options()))
        .with_type_size(info.type_size())
        .with_type_modifier(info.type_modifier())
    });
    Some(retyped.collect())
}

/// `resp` with its row description's JSON text columns typed `json`.
pub fn with_json_fields(resp: Response, schema: &Schema) -> Response {
    match resp {
        Response::Query(mut q) => {
            if let Some(fields) = json_fields(&q.row_schema, schema) {
                q.row_schema = Arc::new(fields);
            }
            Response::Query(q)
        }
        other => other,
    }
}

/// datafusion-postgres keeps a client's `SET statement_timeout` here (milliseconds).
const STATEMENT_TIMEOUT_KEY: &str = "statement_timeout_ms";

fn timed_out() -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "57014".into(),
        "canceling statement due to statement timeout".into(),
    )))
}

/// Runs simple-protocol queries (`Statement::Query`) as datafusion-postgres's default
/// path does — same statement timeout, same text encoding — then types JSON columns.
/// The last hook, so `SET`/`SHOW`, cursors and transactions are answered first.
pub struct JsonResultHook;

impl JsonResultHook {
    async fn run(
        statement: &Statement,
        ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> PgWireResult<Response> {
        let sql = statement.to_string();
        let timeout = client
            .metadata()
            .get(STATEMENT_TIMEOUT_KEY)
            .and_then(|ms| ms.parse().ok())
            .map(Duration::from_millis);
        let planned = match timeout {
            Some(t) => tokio::time::timeout(t, ctx.sql(&sql))
                .await
                .map_err(|_| timed_out())?,
            None => ctx.sql(&sql).await,
        };
        let df = planned.map_err(|e| PgWireError::ApiError(Box::new(e)))?;
        let schema = df.schema().as_arrow().clone();
        let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
        let resp = encode_dataframe(df, &Format::UnifiedText, Some(options)).await?;
        Ok(with_json_fields(Response::Query(resp), &schema))
    }
}

#[async_trait]
impl QueryHook for JsonResultHook {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        match statement {
            Statement::Query(_) => Some(Self::run(statement, ctx, client).await),
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
