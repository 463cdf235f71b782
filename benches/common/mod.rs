//! Shared pieces of the bench binaries: deterministic data generators, running a
//! command with its wall time and peak RSS (from wait4's rusage, so no /usr/bin/time is
//! needed), and Markdown table output for docs/BENCHMARKS.md.

#![allow(dead_code)]

pub mod bagwriter;
pub mod pg;
pub mod robot;
pub mod rss;
pub mod server;
pub mod steps;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Rng(pub u64);

impl Rng {
    /// A distinct, non-zero xorshift state for every seed.
    pub fn seeded(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

/// Writes `bytes` of "mixed" robot data in 1 MiB blocks: one third incompressible
/// (camera frames / compressed payloads), one third float sensor streams (noisy
/// but structured), one third text logs.
pub fn write_mixed(path: &Path, bytes: u64, seed: u64) {
    let mut f = std::io::BufWriter::with_capacity(4 << 20, std::fs::File::create(path).unwrap());
    let mut rng = Rng::seeded(seed);
    let mut block = vec![0u8; 1 << 20];
    let mut written = 0u64;
    let mut i = 0u64;
    let mut t = 0f64;
    while written < bytes {
        match i % 3 {
            0 => rng.fill(&mut block),
            1 => {
                for c in block.chunks_mut(8) {
                    t += 0.001;
                    let v = (t.sin() * 9.81 + (rng.next() % 1000) as f64 * 1e-4) as f32;
                    c[..4].copy_from_slice(&v.to_le_bytes());
                    c[4..].copy_from_slice(&((t * 1e3) as u32).to_le_bytes());
                }
            }
            _ => {
                let mut s = Vec::with_capacity(block.len());
                while s.len() < block.len() {
                    let n = rng.next();
                    let _ = writeln!(
                        s,
                        "[{:>12}] joint_{} pos={:.4} vel={:.4} status={}",
                        n % 1_000_000_000,
                        n % 7,
                        (n % 10_000) as f64 / 1e3,
                        (n % 777) as f64 / 1e2,
                        ["OK", "WARN", "OK", "OK"][(n % 4) as usize]
                    );
                }
                let n = block.len();
                block.copy_from_slice(&s[..n]);
            }
        }
        let n = (bytes - written).min(block.len() as u64) as usize;
        f.write_all(&block[..n]).unwrap();
        written += n as u64;
        i += 1;
    }
    f.flush().unwrap();
}

pub fn write_random(path: &Path, bytes: u64, seed: u64) {
    let mut f = std::io::BufWriter::with_capacity(4 << 20, std::fs::File::create(path).unwrap());
    let mut rng = Rng::seeded(seed);
    let mut block = vec![0u8; 1 << 20];
    let mut written = 0u64;
    while written < bytes {
        rng.fill(&mut block);
        let n = (bytes - written).min(block.len() as u64) as usize;
        f.write_all(&block[..n]).unwrap();
        written += n as u64;
    }
    f.flush().unwrap();
}

/// What one run of a command cost.
pub struct Run {
    pub wall: Duration,
    pub max_rss_kib: i64,
}

/// Runs `cmd` (stdout discarded unless redirected by the caller) and measures it.
pub fn measure(cmd: &mut Command) -> Run {
    let (run, ok) = try_measure(cmd);
    assert!(ok, "{cmd:?} failed");
    run
}

/// `measure` for a command that may fail: the run and whether it exited 0.
pub fn try_measure(cmd: &mut Command) -> (Run, bool) {
    let started = Instant::now();
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(rc, pid, "wait4");
    std::mem::forget(child);
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    (
        Run {
            wall,
            max_rss_kib: usage.ru_maxrss,
        },
        ok,
    )
}

/// Reads the whole file once so every contender starts from a warm page cache.
/// Reads `path` into the page cache, after writing back every dirty page: a contender
/// timed right after its input (or the last contender's output) was written competed
/// with that writeback (the first 1 GiB ingest of a run took 3.2 s instead of 2.4).
pub fn warm(path: &Path) {
    let _ = Command::new("sync").status();
    let mut f = std::fs::File::open(path).unwrap();
    std::io::copy(&mut f, &mut std::io::sink()).unwrap();
}

/// Drops `path` from the page cache and reads it back whole. For the `bagbase` binary
/// before a peak-RSS measurement: the run's RSS counts the code pages it maps, and how
/// many the kernel maps around each one it touches depends on which pages are cached
/// (a freshly built binary measured 4–5 MiB above an older one on the same input;
/// docs/BENCHMARKS.md, ROS1 session 28). Read back whole, every run starts alike.
pub fn recache(path: &Path) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).unwrap();
    // SAFETY: advice on a file descriptor this function owns; clean pages only.
    unsafe {
        libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
    warm(path);
}

pub fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

/// Times `zstd -3 -T2` on `file`, then `bagbase ingest` of it into a fresh store at
/// `store` (warm cache for both). Returns (zstd, ingest).
pub fn zstd_and_ingest(file: &Path, store: &Path) -> (Run, Run) {
    use std::process::Stdio;
    warm(file);
    let zstd = measure(
        Command::new("zstd")
            .args(["-3", "-T2", "-q", "-c"])
            .arg(file)
            .stdout(Stdio::null()),
    );
    let _ = std::fs::remove_dir_all(store);
    let mut init = Command::new(bagbase_bin());
    init.arg("--store").arg(store).arg("init");
    // BENCH_ZSTD_LEVEL=N stores chunks at level N instead of the store's default.
    if let Ok(level) = std::env::var("BENCH_ZSTD_LEVEL") {
        init.arg("--zstd-level").arg(level);
    }
    measure(init.stdout(Stdio::null()));
    recache(Path::new(bagbase_bin()));
    warm(file);
    let ingest = measure(
        Command::new(bagbase_bin())
            .arg("--store")
            .arg(store)
            .arg("ingest")
            .arg(file)
            .stdout(Stdio::null()),
    );
    (zstd, ingest)
}

/// The number in environment variable `name`, else `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn bagbase_bin() -> &'static str {
    env!("CARGO_BIN_EXE_bagbase")
}

pub fn scratch() -> std::path::PathBuf {
    let dir = std::env::var("BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join("bagbase-bench"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Times `Store::sql` on each statement in turn (plans kept as `Store::sql` keeps
/// them); the last one's rows, printed.
pub fn time_sql<'a>(
    rt: &tokio::runtime::Runtime,
    store: &bagbase::Store,
    sqls: impl IntoIterator<Item = &'a str>,
) -> (Vec<Duration>, String) {
    let mut times = Vec::new();
    let mut out = String::new();
    for q in sqls {
        let t = Instant::now();
        let b = rt.block_on(store.sql(q, None)).unwrap();
        times.push(t.elapsed());
        out = bagbase::datafusion::arrow::util::pretty::pretty_format_batches(&b)
            .unwrap()
            .to_string();
    }
    (times, out)
}
