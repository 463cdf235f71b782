//! A throwaway PostgreSQL 15 cluster for the peer side of benchmarks: `initdb` into a
//! scratch directory (as the `postgres` user when run as root), a private port and
//! socket (and 127.0.0.1), stopped on drop. Queries go through `psql`; times come from `\timing`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub struct Pg {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
}

fn pg_bin() -> PathBuf {
    for v in ["17", "16", "15"] {
        let p = PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"));
        if p.join("pg_ctl").exists() {
            return p;
        }
    }
    panic!("PostgreSQL server binaries not found: apt-get install postgresql");
}

fn as_postgres(cmd: &Path) -> Command {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(cmd);
        c
    } else {
        Command::new(cmd)
    }
}

impl Pg {
    /// Starts a fresh cluster in `dir` with settings that give PostgreSQL its best
    /// plans for analytical queries on this machine.
    pub fn start(dir: &Path, port: u16) -> Pg {
        let bin = pg_bin();
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        if unsafe { libc::geteuid() } == 0 {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir)
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let data = dir.join("data");
        let ok = as_postgres(&bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "initdb");
        let opts = format!(
            "-p {port} -k {} -c listen_addresses='127.0.0.1' -c shared_buffers=2GB -c work_mem=1GB -c maintenance_work_mem=1GB -c max_parallel_workers_per_gather=2 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            dir.display()
        );
        let ok = as_postgres(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &opts, "-l"])
            .arg(dir.join("log"))
            .args(["-w", "start"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "pg_ctl start");
        Pg {
            dir: dir.to_path_buf(),
            port,
            bin,
        }
    }

    /// The TCP port on 127.0.0.1 (the socket directory is the cluster's directory).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn psql(&self) -> Command {
        let mut c = Command::new("psql");
        c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-h"])
            .arg(&self.dir)
            .args(["-p", &self.port.to_string(), "-d", "postgres"]);
        c
    }

    /// Runs SQL, feeding `stdin` if given; panics with psql's message on failure.
    pub fn run(&self, sql: &str, stdin: Option<&mut dyn std::io::Read>) -> String {
        use std::io::Write;
        let mut c = self.psql();
        c.args(["-At", "-c", sql])
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        if let Some(r) = stdin {
            let mut w = child.stdin.take().unwrap();
            std::io::copy(r, &mut w).unwrap();
            w.flush().unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Server-side time of one query (psql's `\timing`), and its output rows.
    pub fn time(&self, sql: &str) -> (Duration, String) {
        let (mut times, rows) = self.time_repeated(sql, 1);
        (times.remove(0), rows)
    }

    /// The times of `n` runs of one query on one connection (psql's `\timing`, so the
    /// backend's caches are warm after the first), and the last run's output rows.
    #[allow(dead_code)] // not every bench uses it
    pub fn time_repeated(&self, sql: &str, n: usize) -> (Vec<Duration>, String) {
        self.time_each(&vec![sql; n])
    }

    /// The time of each query of `sqls`, run in order on one connection (psql's
    /// `\timing`), and the last query's output rows.
    #[allow(dead_code)] // not every bench uses it
    pub fn time_each(&self, sqls: &[&str]) -> (Vec<Duration>, String) {
        let mut c = self.psql();
        c.args(["-At", "-c", "\\timing on"]);
        for sql in sqls {
            c.args(["-c", sql]);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let mut rows = Vec::new();
        let mut times = Vec::new();
        let mut last = String::new();
        for line in text.lines() {
            if let Some(t) = line.strip_prefix("Time: ") {
                let v: f64 = t.split_whitespace().next().unwrap().parse().unwrap();
                times.push(Duration::from_secs_f64(v / 1e3));
                last = rows.join("\n");
                rows.clear();
            } else if line != "Timing is on." {
                rows.push(line);
            }
        }
        assert_eq!(times.len(), sqls.len(), "psql printed a time per query");
        (times, last)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "stop"])
            .stdout(Stdio::null())
            .status();
    }
}
