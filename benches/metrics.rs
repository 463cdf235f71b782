//! Metrics over HTTP (issue "Training and fleet metrics", acceptance 4): InfluxDB line
//! protocol written by 4 concurrent writers in 5,000-line batches to `bagbase serve
//! --http` and to InfluxDB 1.6 (Debian's `influxdb` package, `influxd`) in the same run,
//! then one windowed aggregate over every point on both.
//!
//! Data: measurement `train`, 400 series (tags `run`, `host`; each writer owns 100),
//! fields `loss` (float), `reward` (float), `step` (integer), one point per series every
//! 10 s from 2026-01-01. Each batch is 50 timestamps × 100 series. Bodies are made by the
//! writer threads as they go (the same work for both servers, on the same two cores).
//! bagbase runs with a `write` user (Basic auth on every request); InfluxDB with auth off
//! and its default WAL (fsync on every write, `wal-fsync-delay = 0s`); both answer a
//! write only once it is durable.
//!
//! cargo bench --bench metrics     (BENCH_METRICS_POINTS, default 100,000,000)

mod common;

use common::rss::RssSampler;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WRITERS: u64 = 4;
const SERIES_PER_WRITER: u64 = 100;
const BATCH_LINES: u64 = 5_000;
const STEP_NS: i64 = 10_000_000_000;
/// 2026-01-01T00:00:00Z.
const T0_NS: i64 = 1_767_225_600_000_000_000;
const USER: &str = "bench";
const PASSWORD: &str = "bench-password";

/// One server under test, reached over HTTP on loopback.
struct Target {
    name: &'static str,
    http: u16,
    /// The write path with its query string.
    write_path: &'static str,
    auth: Option<String>,
    child: Child,
}

/// A minimal HTTP/1.1 client on one keep-alive connection.
struct Conn {
    r: BufReader<TcpStream>,
}

impl Conn {
    fn open(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_nodelay(true).unwrap();
        Conn {
            r: BufReader::with_capacity(64 << 10, s),
        }
    }

    /// Sends one request and returns (status, body).
    fn call(&mut self, method: &str, path: &str, auth: Option<&str>, body: &[u8]) -> (u16, String) {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(a) = auth {
            let _ = write!(head, "Authorization: {a}\r\n");
        }
        head.push_str("\r\n");
        let s = self.r.get_mut();
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let (mut length, mut chunked) = (0usize, false);
        loop {
            line.clear();
            self.r.read_line(&mut line).unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap_or((l, ""));
            match k.to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap(),
                "transfer-encoding" => chunked = v.trim().eq_ignore_ascii_case("chunked"),
                _ => {}
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.r.read_line(&mut line).unwrap();
                let n = usize::from_str_radix(line.trim(), 16).unwrap();
                let mut part = vec![0; n + 2];
                self.r.read_exact(&mut part).unwrap();
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&part[..n]);
            }
        } else {
            body.resize(length, 0);
            self.r.read_exact(&mut body).unwrap();
        }
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Percent-encodes a query-string value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Batch `b` of writer `w`: 50 timestamps × the writer's 100 series.
fn batch(w: u64, b: u64, out: &mut String) {
    out.clear();
    let per_batch = BATCH_LINES / SERIES_PER_WRITER;
    for j in 0..per_batch {
        let step = b * per_batch + j;
        let t = T0_NS + step as i64 * STEP_NS;
        for s in 0..SERIES_PER_WRITER {
            let mut rng = common::Rng::seeded((w * SERIES_PER_WRITER + s) << 32 ^ step);
            let noise = (rng.next() % 10_000) as f64 * 1e-6;
            let loss = 1.0 / (1.0 + step as f64 * 1e-5) + noise;
            let reward = (rng.next() % 1_000_000) as f64 * 1e-6;
            let _ = writeln!(
                out,
                "train,run=r{w}-{s:03},host=h{w} loss={loss:.6},reward={reward:.6},step={step}i {t}"
            );
        }
    }
}

/// What one load reported.
struct Load {
    secs: f64,
    points: u64,
    failed: u64,
    peak_rss_mib: Option<u64>,
    /// CPU seconds (user + system) of the server and of our writer threads.
    server_cpu: f64,
    client_cpu: f64,
}

/// CPU seconds a process has used, from /proc/PID/stat (utime + stime).
fn process_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / ticks
}

/// CPU seconds this bench process has used (the writer threads).
fn own_cpu() -> f64 {
    // SAFETY: zeroed rusage is a valid value for getrusage to fill.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    s(u.ru_utime) + s(u.ru_stime)
}

fn load(t: &Target, points: u64) -> Load {
    let batches = points / (WRITERS * BATCH_LINES);
    let failed = Arc::new(AtomicU64::new(0));
    let rss = RssSampler::start(Some(t.child.id()));
    let (server0, client0) = (process_cpu(t.child.id()), own_cpu());
    let started = Instant::now();
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (port, path, auth) = (t.http, t.write_path, t.auth.clone());
            let failed = Arc::clone(&failed);
            std::thread::spawn(move || {
                let mut c = Conn::open(port);
                let mut body = String::with_capacity(512 << 10);
                for b in 0..batches {
                    batch(w, b, &mut body);
                    let (status, text) = c.call("POST", path, auth.as_deref(), body.as_bytes());
                    if status != 204 && failed.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("write refused: {status} {text}");
                    }
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    Load {
        secs,
        points: batches * WRITERS * BATCH_LINES,
        failed: failed.load(Ordering::Relaxed),
        peak_rss_mib: rss.peak(),
        server_cpu: process_cpu(t.child.id()) - server0,
        client_cpu: own_cpu() - client0,
    }
}

fn start_bagbase(dir: &Path) -> (Target, u16) {
    let store = dir.join("store");
    let bin = common::bagbase_bin();
    let ok = Command::new(bin)
        .arg("--store")
        .arg(&store)
        .arg("init")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let mut c = Command::new(bin)
        .arg("--store")
        .arg(&store)
        .args(["user", "add", USER, "--role", "write", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(c.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(c.wait().unwrap().success());
    let mut child = Command::new(bin)
        .arg("--store")
        .arg(&store)
        .args(["serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let port = |out: &mut BufReader<_>| {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        line.trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
    };
    let pg = port(&mut out);
    let http = port(&mut out);
    use base64::Engine;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    (
        Target {
            name: "bagbase",
            http,
            write_path: "/write?db=main&precision=ns",
            auth: Some(auth),
            child,
        },
        pg,
    )
}

fn start_influx(dir: &Path) -> Target {
    let root = dir.join("influxdb");
    std::fs::create_dir_all(&root).unwrap();
    let http = free_port();
    let rpc = free_port();
    let conf = root.join("influxdb.conf");
    let d = root.display();
    std::fs::write(
        &conf,
        format!(
            r#"reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[retention]
  enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{http}"
  auth-enabled = false
  log-enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
"#
        ),
    )
    .unwrap();
    let child = Command::new("influxd")
        .arg("-config")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(root.join("influxd.log")).unwrap())
        .spawn()
        .expect("influxd (apt-get install influxdb)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", http)).is_err() {
        assert!(Instant::now() < deadline, "influxd did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = Conn::open(http).call(
        "POST",
        &format!("/query?q={}", encode("CREATE DATABASE bench")),
        None,
        b"",
    );
    assert_eq!(status, 200, "{body}");
    Target {
        name: "InfluxDB 1.6",
        http,
        write_path: "/write?db=bench&precision=ns",
        auth: None,
        child,
    }
}

fn du(p: &Path) -> u64 {
    let out = Command::new("du").arg("-sb").arg(p).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// (windows with points, sum of the windows' mean loss, max reward overall).
type Answer = (u64, f64, f64);

fn influx_query(t: &Target, q: &str) -> (String, Answer) {
    let (status, body) = Conn::open(t.http).call(
        "GET",
        &format!("/query?db=bench&epoch=ns&q={}", encode(q)),
        None,
        b"",
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let series = &v["results"][0]["series"][0];
    let values = series["values"].as_array().cloned().unwrap_or_default();
    let mut a: Answer = (0, 0.0, f64::MIN);
    for row in values {
        if let (Some(mean), Some(max)) = (row[1].as_f64(), row[2].as_f64()) {
            a.0 += 1;
            a.1 += mean;
            a.2 = a.2.max(max);
        }
    }
    (body, a)
}

fn psql(pg: u16, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.to_string(),
            "-U",
            USER,
            "-d",
            "main",
        ])
        .args(["-X", "-At", "-F", ",", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGPASSWORD", PASSWORD)
        .env("PGSSLMODE", "disable")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn bagbase_answer(out: &str) -> Answer {
    let mut a: Answer = (0, 0.0, f64::MIN);
    for l in out.lines() {
        let f: Vec<&str> = l.split(',').collect();
        if let (Some(Ok(mean)), Some(Ok(max))) = (
            f.get(1).map(|v| v.parse::<f64>()),
            f.get(2).map(|v| v.parse::<f64>()),
        ) {
            a.0 += 1;
            a.1 += mean;
            a.2 = a.2.max(max);
        }
    }
    a
}

/// The median of three timed runs of `f`, and its last answer.
fn median3<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let s = Instant::now();
        last = Some(f());
        times.push(s.elapsed());
    }
    times.sort();
    (times[1], last.unwrap())
}

fn main() {
    let points = common::env_or("BENCH_METRICS_POINTS", 100_000_000);
    let dir: PathBuf = common::scratch().join("metrics");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let mut influx = start_influx(&dir);
    let (mut bb, pg) = start_bagbase(&dir);
    println!(
        "{points} points, {WRITERS} writers, {BATCH_LINES}-line batches, {} series\n",
        WRITERS * SERIES_PER_WRITER
    );
    let mut loads = Vec::new();
    for t in [&influx, &bb] {
        let l = load(t, points);
        println!(
            "{}: {} points in {:.1} s = {:.0} points/s, {} failed, peak RSS {:?} MiB, \
             CPU: server {:.1} s, writers {:.1} s",
            t.name,
            l.points,
            l.secs,
            l.points as f64 / l.secs,
            l.failed,
            l.peak_rss_mib,
            l.server_cpu,
            l.client_cpu
        );
        loads.push(l);
    }

    let steps = loads[1].points / (WRITERS * SERIES_PER_WRITER);
    let end = T0_NS + steps as i64 * STEP_NS;
    let influxql = format!(
        "SELECT mean(loss), max(reward) FROM train WHERE time >= {T0_NS} AND time < {end} GROUP BY time(1h)"
    );
    let sql = format!(
        "SELECT date_bin(INTERVAL '1 hour', time) AS w, avg(loss), max(reward) FROM train \
         WHERE time >= to_timestamp_nanos({T0_NS}) AND time < to_timestamp_nanos({end}) \
         GROUP BY w ORDER BY w"
    );
    let counted_influx = {
        let (_, body) = Conn::open(influx.http).call(
            "GET",
            &format!(
                "/query?db=bench&q={}",
                encode("SELECT count(loss) FROM train")
            ),
            None,
            b"",
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["results"][0]["series"][0]["values"][0][1]
            .as_u64()
            .unwrap_or(0)
    };
    let counted_bb: u64 = psql(pg, "SELECT count(*) FROM train")
        .trim()
        .parse()
        .unwrap();
    println!("stored points: InfluxDB {counted_influx}, bagbase {counted_bb}");

    let (t_influx, (_, a_influx)) = median3(|| influx_query(&influx, &influxql));
    let (t_bb, out) = median3(|| psql(pg, &sql));
    let a_bb = bagbase_answer(&out);
    println!("windowed aggregate (hourly mean/max over every point), median of 3:");
    println!("  InfluxDB: {:.3} s  {a_influx:?}", t_influx.as_secs_f64());
    println!("  bagbase:  {:.3} s  {a_bb:?}", t_bb.as_secs_f64());
    let agree = a_influx.0 == a_bb.0
        && (a_influx.1 - a_bb.1).abs() <= 1e-9 * a_influx.1.abs().max(1.0)
        && (a_influx.2 - a_bb.2).abs() <= 1e-12;
    println!("  answers agree: {agree}");

    let (s_influx, s_bb) = (du(&dir.join("influxdb")), du(&dir.join("store")));
    println!("\n| server | points | load (s) | points/s | failed | server CPU (s) | writers' CPU (s) | peak RSS (MiB) | on disk (MiB) | hourly aggregate (s) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (t, l, s, q) in [
        (&influx, &loads[0], s_influx, t_influx),
        (&bb, &loads[1], s_bb, t_bb),
    ] {
        println!(
            "| {} | {} | {:.1} | {:.0} | {} | {:.1} | {:.1} | {} | {} | {:.3} |",
            t.name,
            l.points,
            l.secs,
            l.points as f64 / l.secs,
            l.failed,
            l.server_cpu,
            l.client_cpu,
            l.peak_rss_mib.unwrap_or(0),
            s >> 20,
            q.as_secs_f64()
        );
    }
    println!(
        "\nbagbase / InfluxDB: write throughput {:.2}x, aggregate time {:.2}x",
        loads[0].secs / loads[1].secs,
        t_bb.as_secs_f64() / t_influx.as_secs_f64()
    );
    for t in [&mut influx, &mut bb] {
        let _ = t.child.kill();
        let _ = t.child.wait();
    }
    if std::env::var_os("BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
