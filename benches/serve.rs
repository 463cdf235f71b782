//! The PostgreSQL wire server under load (issue "PostgreSQL wire server", acceptance 4).
//! A steps table of BENCH_SERVE_EPISODES × 1,000 rows (10 M by default) is written
//! through the public API in segments of 256,000 rows (as ingest cuts them) and
//! committed; PostgreSQL 15 gets the same rows with a primary
//! key on (episode_id, step_index). Both are reached over TCP on 127.0.0.1 — bagbase
//! with SCRAM, PostgreSQL with trust — by the same clients in the same run:
//! - `pgbench`, 32 clients, 2 threads, custom scripts: point lookups alone, range
//!   aggregates alone, and 60 s of both mixed (9 : 1). Reported: transactions per
//!   second, failed transactions, and bagbase's peak server RSS (sampled from /proc).
//! - `psql` streaming every row of the table to /dev/null (median of 3).
//!
//! cargo bench --bench serve        (BENCH_SERVE_SECS shortens the 20 s cases)

mod common;

use bagbase::Store;
use common::pg::Pg;
use common::rss::RssSampler;
use common::steps::{pg_rows, BASE_ACTION, COLUMNS, STEPS};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CLIENTS: &str = "32";
const USER: &str = "bench";
const PASSWORD: &str = "bench-password";

/// Where a client connects.
struct Target {
    name: &'static str,
    port: u16,
    user: &'static str,
    db: &'static str,
    /// The server process whose RSS is sampled (bagbase only: PostgreSQL is many
    /// processes sharing a buffer pool, so a sum would mislead).
    pid: Option<u32>,
}

impl Target {
    fn client(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            self.user,
        ])
        .env("PGPASSWORD", PASSWORD)
        .env("PGSSLMODE", "disable");
        c
    }

    fn psql(&self, sql: &str) -> String {
        let out = self
            .client("psql")
            .args([
                "-X",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                self.db,
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {sql}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// A pgbench workload: name, weighted scripts, seconds.
type Case<'a> = (&'static str, Vec<(&'a Path, u32)>, u64);

/// What one pgbench run reported.
struct Bench {
    tps: f64,
    transactions: u64,
    failed: u64,
    aborted: bool,
    peak_rss_mib: Option<u64>,
}

fn field<T: std::str::FromStr>(out: &str, prefix: &str) -> Option<T> {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn pgbench(t: &Target, scripts: &[(&Path, u32)], secs: u64) -> Bench {
    let mut c = t.client("pgbench");
    c.args(["-n", "-c", CLIENTS, "-j", "2", "-T", &secs.to_string()]);
    for (script, weight) in scripts {
        c.arg("-f").arg(format!("{}@{weight}", script.display()));
    }
    c.arg(t.db);
    let rss = RssSampler::start(t.pid);
    let out = c.output().unwrap();
    let peak_rss_mib = rss.peak();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let aborted = !out.status.success();
    if aborted {
        eprintln!("{}: pgbench failed:\n{stdout}\n{stderr}", t.name);
    }
    Bench {
        tps: field(&stdout, "tps =").unwrap_or(0.0),
        transactions: field(&stdout, "number of transactions actually processed:").unwrap_or(0),
        failed: field(&stdout, "number of failed transactions:").unwrap_or(0),
        aborted,
        peak_rss_mib,
    }
}

/// Streams every row through psql to /dev/null: (median wall time, rows, psql's peak
/// RSS in MiB, the server's peak RSS in MiB).
fn stream(t: &Target, sql: &str) -> (Duration, u64, i64, Option<u64>) {
    let mut times = Vec::new();
    let mut psql_rss = 0;
    let rss = RssSampler::start(t.pid);
    for _ in 0..3 {
        let run = common::measure(
            t.client("psql")
                .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", t.db])
                .args(["-o", "/dev/null", "-c", sql])
                .stdout(Stdio::null()),
        );
        times.push(run.wall);
        psql_rss = psql_rss.max(run.max_rss_kib / 1024);
    }
    let server = rss.peak();
    times.sort();
    let rows: u64 = t
        .psql(&format!("SELECT count(*) FROM ({sql}) q"))
        .trim()
        .parse()
        .unwrap();
    (times[1], rows, psql_rss, server)
}

fn add_user(store: &Path) {
    let mut c = Command::new(common::bagbase_bin())
        .arg("--store")
        .arg(store)
        .args(["user", "add", USER, "--role", "read", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(c.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(c.wait().unwrap().success());
}

fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn main() {
    let episodes = common::env_or("BENCH_SERVE_EPISODES", 10_000) as i64;
    let secs = common::env_or("BENCH_SERVE_SECS", 20);
    let mixed_secs = common::env_or("BENCH_SERVE_MIXED_SECS", 60);
    let rows = episodes * STEPS;
    let dir = common::scratch().join("serve");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store_dir = dir.join("store");

    let t = Instant::now();
    {
        let store = Store::init(&store_dir, Default::default()).unwrap();
        common::steps::build_packed(&store, "main", "steps", episodes);
        store.commit("main", "steps").unwrap();
    }
    add_user(&store_dir);
    eprintln!("bagbase: {rows} rows in {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let pg = Pg::start(&dir.join("pg"), 55497);
    pg.run(
        &format!(
            "CREATE TABLE steps ({COLUMNS});
             INSERT INTO steps {};
             ALTER TABLE steps ADD PRIMARY KEY (episode_id, step_index);",
            pg_rows(
                &format!("SELECT generate_series(0, {})", episodes - 1),
                BASE_ACTION
            )
        ),
        None,
    );
    pg.run("VACUUM ANALYZE steps", None);
    eprintln!(
        "PostgreSQL: {rows} rows in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let (mut server, port) = common::server::start(&store_dir);
    let targets = [
        Target {
            name: "bagbase",
            port,
            user: USER,
            db: "main",
            pid: Some(server.id()),
        },
        Target {
            name: "PostgreSQL 15",
            port: pg.port(),
            user: "postgres",
            db: "postgres",
            pid: None,
        },
    ];

    // The same answers from both, before anything is timed.
    let check = format!(
        "SELECT episode_id, step_index, obs_x, obs_y, action FROM steps WHERE episode_id = {} AND step_index = 123;
         SELECT count(*), sum(action), max(reward) FROM steps WHERE episode_id BETWEEN 10 AND 19",
        episodes / 2
    );
    let answers: Vec<String> = targets.iter().map(|t| t.psql(&check)).collect();
    eprintln!("answers: {answers:?}");
    // Sums differ in their last bits (summation order) and PostgreSQL prints 1.0 as 1.
    let values = |a: &str| -> Vec<f64> {
        a.split(['|', '\n'])
            .filter(|v| !v.is_empty())
            .map(|v| v.parse().unwrap())
            .collect()
    };
    let (b, p) = (values(&answers[0]), values(&answers[1]));
    assert!(
        b.len() == p.len()
            && b.iter()
                .zip(&p)
                .all(|(x, y)| (x - y).abs() <= 1e-9 * y.abs().max(1.0)),
        "bagbase and PostgreSQL disagree"
    );

    let point = script(
        &dir,
        "point.sql",
        &format!(
            "\\set e random(0, {})\n\\set s random(0, {})\nSELECT obs_x, obs_y, action FROM steps WHERE episode_id = :e AND step_index = :s;\n",
            episodes - 1,
            STEPS - 1
        ),
    );
    let agg = script(
        &dir,
        "aggregate.sql",
        &format!(
            "\\set e random(0, {})\nSELECT count(*), avg(action), max(reward) FROM steps WHERE episode_id BETWEEN :e AND :e + 9;\n",
            episodes - 10
        ),
    );
    let cases: [Case; 3] = [
        ("point lookups (key = value)", vec![(&point, 1)], secs),
        ("aggregates over 10 episodes", vec![(&agg, 1)], secs),
        (
            "mixed 9 : 1 (point : aggregate)",
            vec![(&point, 9), (&agg, 1)],
            mixed_secs,
        ),
    ];
    println!("pgbench, {CLIENTS} clients, 2 threads, {rows} rows:\n");
    println!(
        "| workload | seconds | bagbase tps | bagbase failed | bagbase peak RSS (MiB) | PostgreSQL tps | PostgreSQL failed | bagbase / PostgreSQL |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, scripts, secs) in &cases {
        let b = pgbench(&targets[0], scripts, *secs);
        let p = pgbench(&targets[1], scripts, *secs);
        let failed = |x: &Bench| {
            format!(
                "{}{}",
                x.failed,
                if x.aborted { " (run aborted)" } else { "" }
            )
        };
        println!(
            "| {name} | {secs} | {:.0} ({} queries) | {} | {} | {:.0} | {} | {:.3} |",
            b.tps,
            b.transactions,
            failed(&b),
            b.peak_rss_mib.unwrap_or(0),
            p.tps,
            failed(&p),
            b.tps / p.tps
        );
    }

    let all = "SELECT * FROM steps";
    println!("\npsql streaming `{all}` to /dev/null (median of 3):\n");
    println!("| server | rows | seconds | rows/s | psql peak RSS (MiB) | server peak RSS (MiB) |");
    println!("|---|---|---|---|---|---|");
    let mut walls = Vec::new();
    for t in &targets {
        let (wall, n, psql_rss, server_rss) = stream(t, all);
        println!(
            "| {} | {n} | {:.2} | {:.0} | {psql_rss} | {} |",
            t.name,
            wall.as_secs_f64(),
            n as f64 / wall.as_secs_f64(),
            server_rss.map_or("-".into(), |r| r.to_string())
        );
        walls.push(wall);
    }
    println!(
        "\nbagbase / PostgreSQL stream time: {:.2}",
        walls[0].as_secs_f64() / walls[1].as_secs_f64()
    );
    let _ = server.kill();
    let _ = server.wait();
}
