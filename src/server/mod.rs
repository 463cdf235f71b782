//! `bagbase serve`: the PostgreSQL v3 wire protocol over pgwire, with SQL answered by
//! the store's DataFusion catalog (datafusion-postgres does the query protocol and
//! type encoding, datafusion-pg-catalog the `pg_catalog` tables). Protocol only: this
//! module holds no storage logic; it calls `Store` and `catalog`.
//!
//! Layers, as in pgwire: `startup` (auth, database → ref), `query` (routing, roles),
//! `sqlstate` (the one place errors get their SQLSTATE), this file (transport).

mod cancel;
mod hooks;
pub mod http;
mod query;
mod rewrite;
mod rows;
mod select;
mod sqlstate;
mod startup;
mod text;
mod types;

use crate::Store;
use pgwire::api::PgWireServerHandlers;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;

/// How password auth runs once users exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    ScramSha256,
    Md5,
    /// Cleartext password; only offered over TLS.
    Password,
}

impl std::str::FromStr for AuthMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "scram-sha-256" | "scram" => Ok(AuthMethod::ScramSha256),
            "md5" => Ok(AuthMethod::Md5),
            "password" | "cleartext" => Ok(AuthMethod::Password),
            _ => Err(format!(
                "unknown auth method '{s}' (expected scram-sha-256, md5 or password)"
            )),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub auth: AuthMethod,
    /// Bytes one ref's queries may hold at once; a query needing more fails (53200).
    pub memory_limit: Option<usize>,
    /// Also serve InfluxDB-compatible writes over HTTP here.
    pub http: Option<SocketAddr>,
    /// Largest HTTP request body (compressed or not); larger gets 413.
    pub max_body: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] crate::Error),
}

/// What every connection shares.
pub(crate) struct Shared {
    pub store: Arc<Store>,
    pub opts: ServeOptions,
    pub connections: Arc<pgwire::api::ConnectionManager>,
    pub sessions: query::Sessions,
    pub cancels: Arc<cancel::Cancels>,
}

/// Built once per server; only the startup handler is per connection (SASL state).
struct Handlers {
    shared: Arc<Shared>,
    queries: Arc<query::QueryService>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        Arc::clone(&self.queries)
    }
    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        Arc::clone(&self.queries)
    }
    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        Arc::new(startup::Startup::new(Arc::clone(&self.shared)))
    }
    fn error_handler(&self) -> Arc<impl pgwire::api::ErrorHandler> {
        Arc::new(sqlstate::ErrorMapper)
    }
    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::new(cancel::CancelHandler {
            cancels: Arc::clone(&self.shared.cancels),
            connections: Arc::clone(&self.shared.connections),
        })
    }
}

/// Checks the options against the store before binding: without users, only a
/// loopback listener may run (trust); cleartext passwords need TLS.
pub fn check_options(store: &Store, opts: &ServeOptions) -> Result<(), ServerError> {
    let has_users = store.has_users()?;
    if !has_users && !opts.listen.ip().is_loopback() {
        return Err(ServerError::Refused(format!(
            "refusing to listen on {} without users: connections would not authenticate. \
             Add one with 'bagbase user add NAME --role admin', or listen on 127.0.0.1",
            opts.listen
        )));
    }
    if let Some(http) = opts.http.filter(|a| !has_users && !a.ip().is_loopback()) {
        return Err(ServerError::Refused(format!(
            "refusing to serve HTTP on {http} without users: writes would not authenticate. \
             Add one with 'bagbase user add NAME --role write', or listen on 127.0.0.1"
        )));
    }
    if opts.auth == AuthMethod::Password && opts.tls_cert.is_none() {
        return Err(ServerError::Refused(
            "--auth password sends passwords in clear text: it needs --tls-cert and --tls-key"
                .into(),
        ));
    }
    if opts.tls_cert.is_some() != opts.tls_key.is_some() {
        return Err(ServerError::Refused(
            "--tls-cert and --tls-key go together".into(),
        ));
    }
    Ok(())
}

/// Serves until `shutdown` resolves (SIGTERM / Ctrl-C in the CLI), then stops
/// accepting and waits for running connections to finish their current query.
/// `ready` gets the bound addresses, PostgreSQL then HTTP (port 0 picks a free one).
pub async fn serve(
    store: Arc<Store>,
    opts: ServeOptions,
    ready: impl FnOnce(SocketAddr, Option<SocketAddr>),
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServerError> {
    check_options(&store, &opts)?;
    store.chunk_store().use_server_chunk_cache();
    let tls = match (&opts.tls_cert, &opts.tls_key) {
        (Some(c), Some(k)) => Some(load_tls(c, k)?),
        _ => None,
    };
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: opts.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: opts.listen,
        source,
    })?;
    let http = match opts.http {
        Some(at) => {
            let l = TcpListener::bind(at)
                .await
                .map_err(|source| ServerError::Bind { addr: at, source })?;
            let bound = l
                .local_addr()
                .map_err(|source| ServerError::Bind { addr: at, source })?;
            Some((l, bound))
        }
        None => None,
    };
    let stop_http = Arc::new(tokio::sync::Notify::new());
    let http_addr = http.as_ref().map(|(_, a)| *a);
    let http_task = http.map(|(l, _)| {
        let stop = Arc::clone(&stop_http);
        let store = Arc::clone(&store);
        let max_body = opts.max_body;
        tokio::spawn(async move {
            http::serve(store, l, max_body, async move { stop.notified().await }).await
        })
    });
    let shared = Arc::new(Shared {
        store,
        sessions: query::Sessions::default(),
        connections: Arc::new(pgwire::api::ConnectionManager::new()),
        cancels: Arc::default(),
        opts,
    });
    let handlers = Arc::new(Handlers {
        queries: Arc::new(query::QueryService::new(Arc::clone(&shared))),
        shared,
    });
    ready(addr, http_addr);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((socket, _peer)) = accepted else { continue };
                let h = Arc::clone(&handlers);
                let tls = tls.clone();
                tasks.spawn(async move {
                    let _ = pgwire::tokio::process_socket(socket, tls, h).await;
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    stop_http.notify_one();
    if let Some(t) = http_task {
        let _ = t.await;
    }
    drain(tasks).await;
    Ok(())
}

/// Gives open connections a grace period (10 s) to finish what they are running, then
/// aborts the rest.
pub(crate) async fn drain(mut tasks: tokio::task::JoinSet<()>) {
    let grace = tokio::time::sleep(std::time::Duration::from_secs(10));
    tokio::pin!(grace);
    loop {
        tokio::select! {
            _ = &mut grace => { tasks.abort_all(); break; }
            next = tasks.join_next() => if next.is_none() { break },
        }
    }
}

fn load_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<pgwire::tokio::TlsAcceptor, ServerError> {
    use tokio_rustls::rustls;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| ServerError::Tls(format!("{}: {e}", p.display())))
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServerError::Tls(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!(
            "{}: no PEM certificate found",
            cert.display()
        )));
    }
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| ServerError::Tls(format!("{}: {e}", key.display())))?
        .ok_or_else(|| ServerError::Tls(format!("{}: no PEM private key found", key.display())))?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
