//! The InfluxDB-compatible endpoints: `POST /write` (v1), `POST /api/v2/write` (v2),
//! `GET /health`, `GET|HEAD /ping`. Auth with the store's users (v2 `Authorization:
//! Token NAME:PASSWORD` as InfluxDB 1.8 takes it, HTTP Basic, v1 `u`/`p` parameters);
//! the read role gets 403. `db` / `bucket` name the branch (default `main`).
//!
//! Writes go through one committer task: requests that arrive while a publish runs are
//! written and published together (group commit), and each is answered only after its
//! points are durable, so a 204 survives `kill -9`.

use super::request::{Request, Response};
use crate::ingest::lineproto::write::{parse_text, Parsed};
use crate::ingest::lineproto::{Precision, Written};
use crate::users::Role;
use crate::Store;
use base64::Engine;
use serde_json::json;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// One write waiting for the committer, parsed already (in the request's task, so
/// parsing runs on every core while the committer stores).
struct Job {
    branch: String,
    parsed: Parsed,
    bytes: usize,
    reply: oneshot::Sender<Result<Written, String>>,
}

/// Writes queued at most, and bytes of line protocol published in one group.
const QUEUE: usize = 256;
const GROUP_BYTES: usize = 64 << 20;

/// Passwords already checked, per user: SHA-256 of (salt, password) and the verifier
/// it matched. PBKDF2 at the SCRAM iteration count costs milliseconds, and InfluxDB
/// clients send credentials with every write; InfluxDB caches checked passwords too.
/// A changed password changes the verifier, so a cached entry never outlives it.
type Checked = std::collections::HashMap<String, ([u8; 32], String)>;
const CHECKED_MAX: usize = 1024;

#[derive(Clone)]
pub struct Influx {
    store: Arc<Store>,
    jobs: mpsc::Sender<Job>,
    checked: Arc<std::sync::Mutex<Checked>>,
}

impl Influx {
    pub fn start(store: Arc<Store>) -> Influx {
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(committer(Arc::clone(&store), rx));
        Influx {
            store,
            jobs,
            checked: Default::default(),
        }
    }

    pub async fn handle(&self, req: &Request) -> Response {
        let v2 = req.path.starts_with("/api/v2/");
        match (req.method.as_str(), req.path.as_str()) {
            ("GET" | "HEAD", "/ping") => ping(),
            ("GET" | "HEAD", "/health") => Response::json(
                200,
                json!({"name": "bagbase", "message": "ready for queries and writes",
                       "status": "pass", "checks": [], "version": env!("CARGO_PKG_VERSION")}),
            ),
            ("POST", "/write" | "/api/v2/write") => match self.write(req, v2).await {
                Ok(r) | Err(r) => r,
            },
            (_, "/write" | "/api/v2/write" | "/ping" | "/health") => {
                error(v2, 405, "method not allowed", "method not allowed")
            }
            _ => error(true, 404, "not found", "path not found"),
        }
    }

    async fn write(&self, req: &Request, v2: bool) -> Result<Response, Response> {
        self.authorize(req, v2)?;
        let precision = req.param("precision").unwrap_or("ns");
        let Some(precision) = Precision::parse(precision) else {
            return Err(error(
                v2,
                400,
                "invalid",
                &format!("invalid precision \"{precision}\" (expected ns, us, ms, s, m or h)"),
            ));
        };
        let branch = req
            .param(if v2 { "bucket" } else { "db" })
            .filter(|b| !b.is_empty())
            .unwrap_or("main")
            .to_string();
        let is_branch = self
            .store
            .resolve(&branch)
            .map(|r| r.branch.as_deref() == Some(branch.as_str()))
            .unwrap_or(false);
        if !is_branch {
            let what = if v2 { "bucket" } else { "database" };
            return Err(error(
                v2,
                404,
                "not found",
                &format!("{what} not found: \"{branch}\" is not a branch of this store"),
            ));
        }
        let text = String::from_utf8(req.body.clone()).map_err(|e| {
            error(
                v2,
                400,
                "invalid",
                &format!("body is not UTF-8 (byte {})", e.utf8_error().valid_up_to()),
            )
        })?;
        let unavailable = || error(v2, 503, "unavailable", "the writer has stopped");
        let bytes = text.len();
        let now = crate::version::record::now_ns();
        let parsed = tokio::task::spawn_blocking(move || parse_text(&text, 1, precision, now))
            .await
            .map_err(|_| unavailable())?;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            branch,
            parsed,
            bytes,
            reply,
        };
        self.jobs.send(job).await.map_err(|_| unavailable())?;
        let written = answer
            .await
            .map_err(|_| unavailable())?
            .map_err(|e| error(v2, 500, "internal error", &e))?;
        if let Some(first) = written.errors.first() {
            return Err(error(
                v2,
                400,
                "invalid",
                &format!("partial write: {first} dropped={}", written.refused),
            ));
        }
        Ok(Response::empty(204))
    }

    /// The user's role allows writing, or the store has no users (loopback only).
    fn authorize(&self, req: &Request, v2: bool) -> Result<(), Response> {
        let unauthorized = |why: &str| error(v2, 401, "unauthorized", why);
        let has_users = self
            .store
            .has_users()
            .map_err(|e| error(v2, 500, "internal error", &e.to_string()))?;
        if !has_users {
            return Ok(());
        }
        let Some((name, password)) = credentials(req) else {
            return Err(unauthorized("unauthorized access: no credentials given"));
        };
        let user = self
            .store
            .user(&name)
            .map_err(|e| error(v2, 500, "internal error", &e.to_string()))?;
        let Some(user) = user.filter(|u| self.password_matches(u, &name, &password)) else {
            return Err(unauthorized("authorization failed"));
        };
        if user.role == Role::Read {
            return Err(error(
                v2,
                403,
                "forbidden",
                &format!("user \"{name}\" has the read role and may not write"),
            ));
        }
        Ok(())
    }

    /// `user.password_matches`, remembered for passwords that matched.
    fn password_matches(&self, user: &crate::users::User, name: &str, password: &str) -> bool {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(user.scram_salt.as_bytes());
        h.update([0]);
        h.update(password.as_bytes());
        let key: [u8; 32] = h.finalize().into();
        let verifier = &user.scram_salted_password;
        let checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        if checked
            .get(name)
            .is_some_and(|(k, v)| *k == key && v == verifier)
        {
            return true;
        }
        drop(checked);
        if !user.password_matches(password) {
            return false;
        }
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        if checked.len() >= CHECKED_MAX {
            checked.clear();
        }
        checked.insert(name.to_string(), (key, verifier.clone()));
        true
    }
}

/// (user, password) from `Authorization: Token user:password`, Basic, or `u`/`p`.
fn credentials(req: &Request) -> Option<(String, String)> {
    if let Some(auth) = req.header("authorization") {
        let (scheme, value) = auth.split_once(' ')?;
        let pair = match scheme.to_ascii_lowercase().as_str() {
            "token" => value.trim().to_string(),
            "basic" => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(value.trim())
                    .ok()?;
                String::from_utf8(raw).ok()?
            }
            _ => return None,
        };
        let (u, p) = pair.split_once(':')?;
        return Some((u.to_string(), p.to_string()));
    }
    Some((req.param("u")?.to_string(), req.param("p")?.to_string()))
}

fn ping() -> Response {
    let mut r = Response::empty(204);
    r.headers
        .push(("X-Influxdb-Version", "1.8.10-bagbase".into()));
    r.headers.push(("X-Influxdb-Build", "OSS".into()));
    r
}

/// InfluxDB's error bodies: v2 `{"code", "message"}`, v1 `{"error"}`.
pub fn error(v2: bool, status: u16, code: &str, message: &str) -> Response {
    if v2 {
        Response::json(status, json!({"code": code, "message": message}))
    } else {
        Response::json(status, json!({"error": message}))
    }
}

/// Takes queued writes, groups those of one branch, publishes each group once.
async fn committer(store: Arc<Store>, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        let mut bytes = group[0].bytes;
        while bytes < GROUP_BYTES {
            match rx.try_recv() {
                Ok(j) if j.branch == group[0].branch => {
                    bytes += j.bytes;
                    group.push(j);
                }
                Ok(j) => {
                    // Another branch: publish it on its own, after this group.
                    let store = Arc::clone(&store);
                    let g = std::mem::take(&mut group);
                    run(store, g).await;
                    group.push(j);
                    bytes = group[0].bytes;
                }
                Err(_) => break,
            }
        }
        run(Arc::clone(&store), group).await;
    }
}

async fn run(store: Arc<Store>, mut group: Vec<Job>) {
    if group.is_empty() {
        return;
    }
    let branch = group[0].branch.clone();
    let inputs: Vec<Parsed> = group
        .iter_mut()
        .map(|j| std::mem::take(&mut j.parsed))
        .collect();
    let done = tokio::task::spawn_blocking(move || store.write_parsed(&branch, inputs)).await;
    match done {
        Ok(Ok(results)) => {
            for (j, r) in group.into_iter().zip(results) {
                let _ = j.reply.send(Ok(r));
            }
        }
        Ok(Err(e)) => {
            for j in group {
                let _ = j.reply.send(Err(e.to_string()));
            }
        }
        Err(e) => {
            for j in group {
                let _ = j.reply.send(Err(format!("write task failed: {e}")));
            }
        }
    }
}
