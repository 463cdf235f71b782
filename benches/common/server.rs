//! A `bagbase serve` child for the benches, and pgbench runs against any server.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Starts `bagbase serve` on a free loopback port: the child and its port.
pub fn start(store: &Path) -> (Child, u16) {
    let mut child = Command::new(super::bagbase_bin())
        .arg("--store")
        .arg(store)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
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
    (child, port)
}

/// How a pgbench client connects.
#[derive(Clone, Copy, PartialEq)]
pub enum Connect {
    /// One connection for the whole run.
    Kept,
    /// A new connection for each statement (`pgbench -C`), as a script running `psql
    /// -c` per query does.
    Each,
}

/// Milliseconds per statement of `script` run by one pgbench client (simple protocol)
/// for `secs` seconds against the server on `port`, connecting as `connect` says (the
/// time includes the connections).
pub fn pgbench_ms(
    port: u16,
    user: &str,
    db: &str,
    script: &Path,
    secs: u64,
    connect: Connect,
) -> f64 {
    let mut cmd = Command::new("pgbench");
    if connect == Connect::Each {
        cmd.arg("-C");
    }
    let out = cmd
        .args(["-n", "-c", "1", "-j", "1", "-T", &secs.to_string()])
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", user])
        .arg("-f")
        .arg(script)
        .arg(db)
        .env("PGSSLMODE", "disable")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tps: f64 = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("tps ="))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no tps in {stdout}"));
    1e3 / tps
}
