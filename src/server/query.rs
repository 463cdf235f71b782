//! Queries on a connection: routed to the DataFusion session of the connection's ref
//! (one cached session per ref, shared by its connections), checked against the
//! user's role first (`42501` when denied), errors given their SQLSTATE on the way
//! out. The query protocol itself (parse/bind/describe/execute, type encoding,
//! SET/SHOW, transactions) is datafusion-postgres's `DfSessionService`.

use super::sqlstate;
use super::startup::{META_REF, META_ROLE};
use super::Shared;
use crate::users::Role;
use async_trait::async_trait;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::{DfSessionService, Parser, QueryHook};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, Response};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::response::TransactionStatus;
use pgwire::messages::PgWireBackendMessage;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Sessions kept per ref; beyond this many, the cache starts over.
const MAX_SESSIONS: usize = 64;

type Stmt = (String, Option<(Statement, LogicalPlan)>);

/// One ref's session: datafusion-postgres's service over its DataFusion context, and
/// the hook that runs its SELECTs (and keeps their plans).
pub struct Session {
    service: DfSessionService,
    ctx: Arc<SessionContext>,
    select: Arc<super::select::SelectHook>,
}

#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Arc<Session>>>);

impl Sessions {
    fn get(&self, shared: &Shared, reference: &str) -> PgWireResult<Arc<Session>> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get(reference) {
            return Ok(Arc::clone(s));
        }
        let ctx = crate::catalog::session_context_with(
            Arc::clone(shared.store.chunk_store()),
            reference,
            shared.opts.memory_limit,
        );
        setup_pg_catalog(&ctx, crate::catalog::CATALOG, EmptyContextProvider)
            .map_err(|e| PgWireError::ApiError(e))?;
        ctx.register_udf(version_udf());
        ctx.register_udf(to_regtype_udf());
        // setup_pg_catalog rebuilds the session state, which registers DataFusion's
        // `character_length` (alias `length`) over bagbase's `length(bytea)` again.
        for f in crate::catalog::functions::all() {
            ctx.register_udf(f);
        }
        ctx.add_analyzer_rule(Arc::new(super::types::WidenTinyInts));
        let select = Arc::new(super::select::SelectHook::new(
            Arc::clone(shared.store.chunk_store()),
            reference,
        ));
        let hooks: Vec<Arc<dyn QueryHook>> = vec![
            Arc::new(super::hooks::SavepointHook),
            Arc::new(CursorStatementHook),
            Arc::new(SetShowHook),
            Arc::new(TransactionStatementHook),
            Arc::clone(&select) as Arc<dyn QueryHook>,
        ];
        let ctx = Arc::new(ctx);
        let session = Arc::new(Session {
            service: DfSessionService::new_with_hooks(Arc::clone(&ctx), hooks),
            ctx,
            select,
        });
        if map.len() >= MAX_SESSIONS {
            map.clear();
        }
        map.insert(reference.to_string(), Arc::clone(&session));
        Ok(session)
    }
}

/// `version()` as PostgreSQL words it: drivers (SQLAlchemy, JDBC) parse the number.
fn version_udf() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
    use datafusion::scalar::ScalarValue;
    let text = format!(
        "PostgreSQL 15.0 (bagbase {}) on x86_64-pc-linux-gnu",
        env!("CARGO_PKG_VERSION")
    );
    create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |_: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(text.clone()))))
        }),
    )
}

/// `to_regtype(name)`: NULL, "no such type". SQLAlchemy probes for hstore with it;
/// bagbase has no user-defined types.
fn to_regtype_udf() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
    use datafusion::scalar::ScalarValue;
    create_udf(
        "to_regtype",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Immutable,
        Arc::new(|_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(ScalarValue::Int32(None)))),
    )
}

pub struct QueryService {
    shared: Arc<Shared>,
    parser: Arc<RoutingParser>,
    /// Parses simple queries for the role check. Built once: building one tokenizes
    /// every blacklisted client query it knows.
    statements: PostgresCompatibilityParser,
}

impl QueryService {
    pub fn new(shared: Arc<Shared>) -> QueryService {
        let template = DfSessionService::new(Arc::new(SessionContext::new())).query_parser();
        QueryService {
            parser: Arc::new(RoutingParser {
                shared: Arc::clone(&shared),
                template,
                parsed: Mutex::default(),
            }),
            shared,
            statements: PostgresCompatibilityParser::new(),
        }
    }
}

/// The ref the client's database name selected.
fn ref_of<C: ClientInfo + ?Sized>(client: &C) -> String {
    client
        .metadata()
        .get(META_REF)
        .cloned()
        .unwrap_or_else(|| crate::version::DEFAULT_BRANCH.into())
}

fn session_of<C: ClientInfo + ?Sized>(shared: &Shared, client: &C) -> PgWireResult<Arc<Session>> {
    shared.sessions.get(shared, &ref_of(client))
}

/// The key a CancelRequest names this connection by.
fn cancel_key<C: ClientInfo + ?Sized>(client: &C) -> (i32, Vec<u8>) {
    let (pid, secret) = client.pid_and_secret_key();
    (pid, secret.to_bytes().to_vec())
}

fn role_of<C: ClientInfo + ?Sized>(client: &C) -> Role {
    client
        .metadata()
        .get(META_ROLE)
        .and_then(|r| r.parse().ok())
        .unwrap_or(Role::Read)
}

/// The least role that may run `stmt`.
fn required_role(stmt: &Statement) -> Role {
    match stmt {
        Statement::Query(_) => Role::Read,
        Statement::Explain {
            statement, analyze, ..
        } => {
            if *analyze {
                required_role(statement)
            } else {
                Role::Read
            }
        }
        other => {
            let text = other.to_string().to_ascii_uppercase();
            let mut words = text.split_whitespace();
            let first = words.next().unwrap_or_default();
            let second = words.next().unwrap_or_default();
            match first {
                "SELECT" | "WITH" | "VALUES" | "TABLE" | "SHOW" | "SET" | "RESET" | "BEGIN"
                | "START" | "COMMIT" | "ROLLBACK" | "END" | "ABORT" | "DECLARE" | "FETCH"
                | "CLOSE" | "DISCARD" | "DEALLOCATE" | "DESCRIBE" | "EXPLAIN" | "SAVEPOINT"
                | "RELEASE" => Role::Read,
                "GRANT" | "REVOKE" => Role::Admin,
                "CREATE" | "ALTER" | "DROP" if matches!(second, "USER" | "ROLE") => Role::Admin,
                _ => Role::Write,
            }
        }
    }
}

fn check_role(have: Role, stmt: &Statement) -> PgWireResult<()> {
    let need = required_role(stmt);
    if have >= need {
        return Ok(());
    }
    let verb = stmt
        .to_string()
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let mut info = ErrorInfo::new(
        "ERROR".into(),
        "42501".into(),
        format!("permission denied: {verb} needs role {need}, this user has role {have}"),
    );
    info.hint = Some(format!(
        "an admin can run 'bagbase user add NAME --role {need}' for a user with that role"
    ));
    Err(PgWireError::UserError(Box::new(info)))
}

#[async_trait]
impl SimpleQueryHandler for QueryService {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo
            + ClientPortalStore
            + futures::Sink<PgWireBackendMessage>
            + Unpin
            + Send
            + Sync,
        C::PortalStore: PortalStore,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as futures::Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session_of(&self.shared, client)?;
        let watch = self.shared.cancels.subscribe(cancel_key(client));
        let guard = |r| super::cancel::guard(r, watch.clone());
        // In a failed transaction block datafusion-postgres's transaction hook refuses
        // every query: only outside one may a SELECT skip its path.
        let direct = client.transaction_status() != TransactionStatus::Error;
        if direct {
            if let Some(kept) = session.select.kept(query, &*client) {
                return Ok(vec![guard(
                    kept.map_err(|e| sqlstate::map(e, Some(query)))?,
                )]);
            }
        }
        let raw = query;
        let rewritten = super::rewrite::rewrite(query);
        let query = rewritten.as_deref().unwrap_or(query);
        let role = role_of(client);
        let stmts = self.statements.parse(query).ok();
        for s in stmts.iter().flatten() {
            check_role(role, s)?;
        }
        // One SELECT: run here, its plan kept under the text as it came.
        if let Some([stmt @ Statement::Query(_)]) = stmts.as_deref() {
            if direct {
                let resp = session
                    .select
                    .run(stmt, raw, &session.ctx, &*client, &Format::UnifiedText)
                    .await
                    .map_err(|e| sqlstate::map(e, Some(query)))?;
                return Ok(vec![guard(resp)]);
            }
        }
        let out = SimpleQueryHandler::do_query(&session.service, client, query)
            .await
            .map_err(|e| sqlstate::map(e, Some(query)))?;
        Ok(out.into_iter().map(guard).collect())
    }
}

#[async_trait]
impl ExtendedQueryHandler for QueryService {
    type Statement = Stmt;
    type QueryParser = RoutingParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::clone(&self.parser)
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo
            + ClientPortalStore
            + futures::Sink<PgWireBackendMessage>
            + Unpin
            + Send
            + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as futures::Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session_of(&self.shared, client)?;
        let query = portal.statement.statement.0.clone();
        let watch = self.shared.cancels.subscribe(cancel_key(client));
        // A prepared SELECT without parameters (JDBC, psycopg 3 and node-postgres
        // prepare plain statements too) runs like a simple one: plan kept, rows
        // encoded by `rows`, in the portal's formats.
        if let Some((stmt @ Statement::Query(_), _)) = &portal.statement.statement.1 {
            if portal.parameters.is_empty()
                && portal.statement.parameter_types.is_empty()
                && client.transaction_status() != TransactionStatus::Error
            {
                let resp = session
                    .select
                    .run(
                        stmt,
                        &query,
                        &session.ctx,
                        &*client,
                        &portal.result_column_format,
                    )
                    .await
                    .map_err(|e| sqlstate::map(e, Some(&query)))?;
                return Ok(super::cancel::guard(resp, watch));
            }
        }
        let mut out = ExtendedQueryHandler::do_query(&session.service, client, portal, max_rows)
            .await
            .map_err(|e| sqlstate::map(e, Some(&query)))?;
        if let Some((_, plan)) = &portal.statement.statement.1 {
            out = super::types::with_json_fields(out, plan.schema().as_arrow());
        }
        Ok(super::cancel::guard(out, watch))
    }
}

/// Parses (and plans) a prepared statement in the session of the client's ref.
pub struct RoutingParser {
    shared: Arc<Shared>,
    /// Describing a parsed statement needs only its plan: any session's parser does.
    template: Arc<Parser>,
    /// SELECTs parsed and planned (logically) before, by (ref, SQL, parameter types),
    /// with the store generation they were planned at: drivers that send Parse for
    /// every execution (pgbench -M extended, unnamed statements) skip the planning.
    parsed: Mutex<HashMap<ParsedKey, (u64, Stmt)>>,
}

/// (ref, SQL, the parameter types the client gave).
type ParsedKey = (String, String, String);

/// Parsed statements kept at once; past this the map starts over.
const MAX_PARSED: usize = 256;

#[async_trait]
impl QueryParser for RoutingParser {
    type Statement = Stmt;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let generation = self.shared.store.chunk_store().generation();
        let key = (ref_of(client), sql.to_string(), format!("{types:?}"));
        let known = {
            let map = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
            map.get(&key)
                .filter(|(g, _)| *g == generation)
                .map(|(_, stmt)| stmt.clone())
        };
        if let Some(stmt) = known {
            if let Some((stmt, _)) = &stmt.1 {
                check_role(role_of(client), stmt)?;
            }
            return Ok(Some(stmt));
        }
        let session = session_of(&self.shared, client)?;
        let rewritten = super::rewrite::rewrite(sql);
        let sql = rewritten.as_deref().unwrap_or(sql);
        let parsed = session
            .service
            .query_parser()
            .parse_sql(client, sql, types)
            .await
            .map_err(|e| sqlstate::map(e, Some(sql)))?;
        if let Some((_, Some((stmt, _)))) = &parsed {
            check_role(role_of(client), stmt)?;
        }
        if let Some(p @ (_, Some((Statement::Query(_), _)))) = &parsed {
            let mut map = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() >= MAX_PARSED {
                map.clear();
            }
            map.insert(key, (generation, p.clone()));
        }
        Ok(parsed)
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        self.template.get_parameter_types(stmt)
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let fields = self.template.get_result_schema(stmt, column_format)?;
        Ok(match &stmt.1 {
            Some((_, plan)) => {
                super::types::json_fields(&fields, plan.schema().as_arrow()).unwrap_or(fields)
            }
            None => fields,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(sql: &str) -> Role {
        let stmts = PostgresCompatibilityParser::new().parse(sql).unwrap();
        required_role(&stmts[0])
    }

    #[test]
    fn roles_per_statement() {
        assert_eq!(need("SELECT 1"), Role::Read);
        assert_eq!(need("EXPLAIN SELECT 1"), Role::Read);
        assert_eq!(need("SET datestyle = 'ISO'"), Role::Read);
        assert_eq!(need("INSERT INTO t VALUES (1)"), Role::Write);
        assert_eq!(
            need("EXPLAIN ANALYZE INSERT INTO t VALUES (1)"),
            Role::Write
        );
        assert_eq!(need("CREATE TABLE t (a int)"), Role::Write);
        assert_eq!(need("DELETE FROM t"), Role::Write);
        assert_eq!(need("CREATE ROLE x"), Role::Admin);
    }
}
