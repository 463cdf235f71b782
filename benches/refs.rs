//! Cost of refs and commits against store size (issue "Engine foundation", acceptance 3):
//! creating a tag or a branch on a 10 MiB store and on a 2 GiB store (ratio ≤ 1.5), and
//! the time to change k files and commit, k = 1, 10, 100, on both stores.
//!
//! cargo bench --bench refs              (BENCH_LARGE_MIB=2048 by default)

mod common;

use bagbase::{IngestOptions, Store};
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn build(path: &std::path::Path, files: u64, file_bytes: usize) -> Store {
    let _ = std::fs::remove_dir_all(path);
    let store = Store::init(path, Default::default()).unwrap();
    let mut rng = Rng(7);
    let mut buf = vec![0u8; file_bytes];
    let opts = IngestOptions {
        commit: false,
        ..Default::default()
    };
    for i in 0..files {
        rng.fill(&mut buf);
        store
            .ingest_reader(&format!("data/file-{i:05}.bin"), &buf[..], &opts)
            .unwrap();
    }
    store.commit("main", "dataset").unwrap();
    store
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time_refs(store: &Store, tag: &str) -> (Duration, Duration) {
    let mut tags = Vec::new();
    let mut branches = Vec::new();
    for i in 0..200 {
        let t = Instant::now();
        store.tag(&format!("{tag}-t{i}"), "main").unwrap();
        tags.push(t.elapsed());
        let t = Instant::now();
        store.branch(&format!("{tag}-b{i}"), "main").unwrap();
        branches.push(t.elapsed());
    }
    (median(tags), median(branches))
}

fn time_commit(store: &Store, k: usize, round: usize) -> Duration {
    let mut rng = Rng(1000 + round as u64);
    let mut buf = vec![0u8; 4096];
    let t = Instant::now();
    let opts = IngestOptions {
        commit: false,
        ..Default::default()
    };
    for i in 0..k {
        rng.fill(&mut buf);
        store
            .ingest_reader(
                &format!("data/file-{:05}.bin", i * 7 + round),
                &buf[..],
                &opts,
            )
            .unwrap();
    }
    store.commit("main", &format!("change {k}")).unwrap();
    t.elapsed()
}

fn cli_tag(path: &std::path::Path, name: &str) -> Duration {
    measure(
        Command::new(bagbase_bin())
            .arg("--store")
            .arg(path)
            .args(["tag", name])
            .stdout(Stdio::null()),
    )
    .wall
}

fn main() {
    let large_mib: u64 = std::env::var("BENCH_LARGE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048);
    let dir = scratch();
    let small_path = dir.join("refs-small");
    let large_path = dir.join("refs-large");
    let small = build(&small_path, 10, 1 << 20);
    let large = build(&large_path, large_mib, 1 << 20);
    let (st, sb) = time_refs(&small, "s");
    let (lt, lb) = time_refs(&large, "l");
    println!("| operation | 10 MiB store (10 files) | {large_mib} MiB store ({large_mib} files) | ratio |");
    println!("|---|---|---|---|");
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "| tag (library, median of 200) | {:.0} µs | {:.0} µs | {:.2} |",
        us(st),
        us(lt),
        us(lt) / us(st)
    );
    println!(
        "| branch (library, median of 200) | {:.0} µs | {:.0} µs | {:.2} |",
        us(sb),
        us(lb),
        us(lb) / us(sb)
    );
    for k in [1usize, 10, 100] {
        let s = median((0..5).map(|r| time_commit(&small, k, r)).collect());
        let l = median((0..5).map(|r| time_commit(&large, k, r)).collect());
        println!(
            "| change {k} files + commit (median of 5) | {:.2} ms | {:.2} ms | {:.2} |",
            us(s) / 1e3,
            us(l) / 1e3,
            us(l) / us(s)
        );
    }
    drop(small);
    drop(large);
    let s = median(
        (0..5)
            .map(|i| cli_tag(&small_path, &format!("cli-{i}")))
            .collect(),
    );
    let l = median(
        (0..5)
            .map(|i| cli_tag(&large_path, &format!("cli-{i}")))
            .collect(),
    );
    println!(
        "| `bagbase tag` whole process (median of 5) | {:.1} ms | {:.1} ms | {:.2} |",
        us(s) / 1e3,
        us(l) / 1e3,
        us(l) / us(s)
    );
    let _ = std::fs::remove_dir_all(&small_path);
    let _ = std::fs::remove_dir_all(&large_path);
}
