//! `bagbase serve` with real clients: psql (catalog commands, SQLSTATEs, roles, auth),
//! the startup queries of DBeaver, Grafana and Metabase (tests/wire/tool_startup.py),
//! the Python drivers in tests/wire/clients.py (psycopg 3, psycopg2, asyncpg,
//! SQLAlchemy + pandas), node-postgres (tests/wire/node), PgJDBC (tests/wire/jdbc),
//! malformed frontend messages, and SIGTERM.
//! Needs `psql`, `openssl`, `node`, `java`, PgJDBC and the Python packages that
//! ./scripts/test installs.

use crate::common::{add_user, ok};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const BAG: &str = "tests/data/ros1/rosbag.js/example.bag";

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(store: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bagbase"))
            .arg("--store")
            .arg(store)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start bagbase serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Server { child, port }
    }

    fn psql(&self, user: &str, password: &str, db: &str, sql: &str) -> Output {
        Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", user, "-d", db, "-X", "-A", "-t"])
            .args(["-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose"])
            .args(["-c", sql])
            .env("PGPASSWORD", password)
            .env("PGSSLMODE", "require")
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .expect("psql is installed (./scripts/test installs postgresql-client)")
    }

    fn psql_ok(&self, user: &str, password: &str, sql: &str) -> String {
        let out = self.psql(user, password, "main", sql);
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn psql_err(&self, user: &str, password: &str, db: &str, sql: &str) -> String {
        let out = self.psql(user, password, db, sql);
        assert!(!out.status.success(), "psql {sql:?} should fail");
        String::from_utf8(out.stderr).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A store with one bag, an admin and a read-only user, and a self-signed cert.
fn fixture(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let store = dir.join("store");
    ok(&store, &["init"]);
    ok(&store, &["ingest", BAG]);
    ok(&store, &["tag", "v1"]);
    // The experiment tests/wire/clients.py, node and JDBC read json from.
    ok(
        &store,
        &[
            "sql",
            "INSERT INTO experiments (experiment_id, name, version_id, params, metrics) \
             VALUES ('e1', 'first', 'v1', '{\"lr\": 0.001, \"layers\": [64, 64]}', '{\"loss\": 0.5}')",
        ],
    );
    add_user(&store, "admin", "admin", "admin-secret");
    add_user(&store, "reader", "read", "reader-secret");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let st = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed");
    assert!(st.success());
    (store, cert, key)
}

fn tls_args<'a>(cert: &'a Path, key: &'a Path) -> Vec<&'a str> {
    vec![
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]
}

#[test]
fn psql_over_scram_and_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cert, key) = fixture(dir.path());
    let s = Server::start(&store, &tls_args(&cert, &key));

    let tables = s.psql_ok("reader", "reader-secret", "\\dt");
    for t in ["files", "topics", "messages", "/rosout", "versions"] {
        assert!(tables.contains(&format!("|{t}|")), "{t} in {tables}");
    }
    let cols = s.psql_ok("reader", "reader-secret", "\\d \"/rosout\"");
    assert!(
        cols.contains("log_time") && cols.contains("header"),
        "{cols}"
    );
    let dbs = s.psql_ok("reader", "reader-secret", "\\l");
    assert!(!dbs.is_empty());
    let schemas = s.psql_ok("reader", "reader-secret", "\\dn");
    assert!(schemas.contains("v1"), "{schemas}");

    let ssl = s.psql_ok("reader", "reader-secret", "\\conninfo");
    assert!(ssl.contains("SSL connection"), "{ssl}");
    let n = s.psql_ok(
        "reader",
        "reader-secret",
        "SELECT count(*) FROM messages WHERE topic = '/rosout'",
    );
    assert_eq!(n.trim(), "10");
    let row = s.psql_ok(
        "reader",
        "reader-secret",
        "SELECT log_time, encode(data, 'hex') FROM messages ORDER BY log_time LIMIT 1",
    );
    assert!(row.starts_with("20"), "timestamp first: {row}");
    // Values in PostgreSQL's own text forms (src/server/text.rs).
    let forms = s.psql_ok(
        "reader",
        "reader-secret",
        "SELECT CAST(1 AS DOUBLE), CAST(1e20 AS DOUBLE), CAST(0.5 AS REAL), \
         arrow_cast(33000000, 'Timestamp(Nanosecond, None)'), \
         arrow_cast(0, 'Timestamp(Nanosecond, None)'), CAST('2024-02-29' AS DATE), \
         true, CAST('ab' AS BYTEA)",
    );
    assert_eq!(
        forms.trim(),
        "1|1e+20|0.5|1970-01-01 00:00:00.033|1970-01-01 00:00:00|2024-02-29|t|\\x6162"
    );
    // length(bytea) counts bytes, as in PostgreSQL, over the wire too.
    let lengths = s.psql_ok(
        "reader",
        "reader-secret",
        "SELECT length(decode('80ff00', 'hex')), octet_length(decode('80ff00', 'hex')), \
         length('héllo'), sum(length(data)) = sum(size_bytes) FROM messages",
    );
    assert_eq!(lengths.trim(), "3|3|5|t");

    // The database name is the ref.
    let out = s.psql(
        "reader",
        "reader-secret",
        "v1",
        "SELECT count(*) FROM files",
    );
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
}

#[test]
fn errors_carry_sqlstates() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cert, key) = fixture(dir.path());
    let s = Server::start(&store, &tls_args(&cert, &key));

    let e = s.psql_err("reader", "reader-secret", "main", "SELEC 1");
    assert!(e.contains("42601"), "{e}");
    let e = s.psql_err("reader", "reader-secret", "main", "SELECT * FROM nope");
    assert!(
        e.contains("42P01") && e.contains("relation \"nope\" does not exist"),
        "{e}"
    );
    let e = s.psql_err("reader", "wrong", "main", "SELECT 1");
    assert!(
        e.to_lowercase().contains("password authentication failed"),
        "{e}"
    );
    let e = s.psql_err("nobody", "x", "main", "SELECT 1");
    assert!(
        e.to_lowercase().contains("password authentication failed"),
        "{e}"
    );
    let e = s.psql_err("reader", "reader-secret", "nosuchref", "SELECT 1");
    assert!(e.contains("database \"nosuchref\" does not exist"), "{e}");
    let e = s.psql_err(
        "reader",
        "reader-secret",
        "main",
        "INSERT INTO lineage_edges VALUES ('a', 'b', 'c', 'd', 'e', now())",
    );
    assert!(e.contains("42501"), "{e}");
    // The admin gets past the role check (the table itself may refuse).
    let e = s.psql_err(
        "admin",
        "admin-secret",
        "main",
        "INSERT INTO nope VALUES (1)",
    );
    assert!(!e.contains("42501"), "{e}");
}

/// Simple queries keep their plans per ref (src/server/select.rs); a write over the
/// wire is seen by the next run of the same statement, and other refs keep theirs.
#[test]
fn kept_plans_see_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cert, key) = fixture(dir.path());
    let s = Server::start(&store, &tls_args(&cert, &key));
    let count = "SELECT count(*) FROM lineage_edges WHERE source_type = 'model'";
    let at = |db: &str| {
        let out = s.psql("admin", "admin-secret", db, count);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    // Planned (seen once), planned and kept, then the kept plan.
    for _ in 0..3 {
        assert_eq!(at("main"), "0");
    }
    assert_eq!(at("v1"), "0");
    s.psql_ok(
        "admin",
        "admin-secret",
        "INSERT INTO lineage_edges (source_type, source_id, target_type, target_id, relation) \
         VALUES ('model', 'm1', 'experiment', 'e1', 'derived_from')",
    );
    for _ in 0..3 {
        assert_eq!(at("main"), "1");
    }
    assert_eq!(at("v1"), "0", "a tag reads as it was");
}

#[test]
fn md5_auth_and_trust_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cert, key) = fixture(dir.path());
    let mut args = tls_args(&cert, &key);
    args.extend(["--auth", "md5"]);
    let s = Server::start(&store, &args);
    assert_eq!(s.psql_ok("admin", "admin-secret", "SELECT 1").trim(), "1");
    let e = s.psql_err("admin", "nope", "main", "SELECT 1");
    assert!(
        e.to_lowercase().contains("password authentication failed"),
        "{e}"
    );
    drop(s);

    // No users: trust, but only on loopback.
    let bare = dir.path().join("bare");
    ok(&bare, &["init"]);
    let out = crate::common::bagbase(&bare, &["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without users"));
    let s = Server::start(&bare, &[]);
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &s.port.to_string(), "-U", "anyone"])
        .args(["-d", "main", "-X", "-A", "-t", "-c", "SELECT 41 + 1"])
        .env("PGSSLMODE", "disable")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
}

/// Runs a Python client script against a TLS server as the reader; it must exit 0.
fn python_script_passes(script: &str) {
    client_passes(&["python3", script]);
}

/// Runs a client program (`cmd` then HOST PORT USER PASSWORD) against a TLS server as
/// the reader; it must exit 0.
fn client_passes(cmd: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (store, cert, key) = fixture(dir.path());
    let s = Server::start(&store, &tls_args(&cert, &key));
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .args(["127.0.0.1", &s.port.to_string()])
        .args(["reader", "reader-secret"])
        .output()
        .unwrap_or_else(|e| panic!("{} is installed (./scripts/test installs it): {e}", cmd[0]));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
}

/// A cancelled query ends with 57014 and the connection stays usable (psycopg 3 over the
/// extended protocol, psycopg2 over the simple one).
#[test]
fn cancel_gives_57014() {
    python_script_passes("tests/wire/cancel.py");
}

/// node-postgres (tests/wire/node; ./scripts/test runs `npm ci` there).
#[test]
fn node_postgres() {
    client_passes(&["node", "tests/wire/node/client.js"]);
}

/// PgJDBC from Debian's libpostgresql-jdbc-java, as a single-file Java program.
#[test]
fn pgjdbc() {
    client_passes(&[
        "java",
        "-cp",
        "/usr/share/java/postgresql.jar",
        "tests/wire/jdbc/JdbcClient.java",
    ]);
}

#[test]
fn python_drivers() {
    python_script_passes("tests/wire/clients.py");
}

#[test]
fn tool_startup_queries() {
    python_script_passes("tests/wire/tool_startup.py");
}

#[test]
fn bad_frontend_messages_close_only_their_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cert, key) = fixture(dir.path());
    let s = Server::start(&store, &tls_args(&cert, &key));
    let probes: Vec<Vec<u8>> = vec![
        vec![0, 0, 0],                                 // truncated length
        vec![0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0],      // oversized startup packet
        vec![0, 0, 0, 8, 0xde, 0xad, 0xbe, 0xef],      // unknown protocol version
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), // not PostgreSQL at all
    ];
    for p in probes {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let _ = c.write_all(&p);
        let _ = c.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = c.take(1 << 20).read_to_end(&mut sink);
    }
    assert_eq!(s.psql_ok("reader", "reader-secret", "SELECT 1").trim(), "1");
}

#[test]
fn sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    ok(&store, &["init"]);
    let mut s = Server::start(&store, &[]);
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(s.child.id() as i32, libc::SIGTERM) };
    let status = s.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// `--memory-limit`: a query needing more memory than the limit fails with 53200; the
/// server keeps serving the next one.
#[test]
fn memory_limit_fails_the_query_not_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cert, key) = fixture(dir.path());
    let mut args = tls_args(&cert, &key);
    args.extend(["--memory-limit", "16"]);
    let s = Server::start(&store, &args);
    let big_join = "SELECT count(*) FROM generate_series(1, 3000000) a(v) \
                    JOIN generate_series(1, 3000000) b(v) ON a.v = b.v";
    let err = s.psql_err("reader", "reader-secret", "main", big_join);
    assert!(err.contains("53200"), "{err}");
    assert_eq!(s.psql_ok("reader", "reader-secret", "SELECT 1").trim(), "1");
}
