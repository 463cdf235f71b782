//! Ingest throughput and peak memory (issue "Engine foundation", acceptance 4):
//! `bagbase ingest` of 1 GiB and 4 GiB of mixed data against `zstd -3 -T2` and
//! `sha256sum` on the same file in the same run, warm page cache, release build.
//!
//! cargo bench --bench ingest            (BENCH_SIZES_GIB=1,4 by default)
//! BENCH_ZSTD_LEVEL=N inits the store with `--zstd-level N` (the peer stays `zstd -3`).

mod common;

use common::*;
use std::process::{Command, Stdio};

fn main() {
    let sizes: Vec<u64> = std::env::var("BENCH_SIZES_GIB")
        .unwrap_or_else(|_| "1,4".into())
        .split(',')
        .map(|s| s.trim().parse().expect("sizes in GiB"))
        .collect();
    let dir = scratch();
    println!("| input | contender | time (s) | MiB/s | peak RSS (MiB) | vs zstd -3 -T2 |");
    println!("|---|---|---|---|---|---|");
    for gib in sizes {
        let file = dir.join(format!("mixed-{gib}g.bin"));
        let bytes = gib << 30;
        if std::fs::metadata(&file).map(|m| m.len()).ok() != Some(bytes) {
            write_mixed(&file, bytes, 42);
        }
        let sha = measure(Command::new("sha256sum").arg(&file).stdout(Stdio::null()));
        let store = dir.join(format!("store-{gib}g"));
        let (zstd, ingest) = zstd_and_ingest(&file, &store);
        let z = mib_s(bytes, zstd.wall);
        for (name, r) in [
            ("zstd -3 -T2", &zstd),
            ("sha256sum", &sha),
            ("bagbase ingest", &ingest),
        ] {
            println!(
                "| {gib} GiB mixed | {name} | {:.2} | {:.0} | {:.1} | {:.2} |",
                r.wall.as_secs_f64(),
                mib_s(bytes, r.wall),
                r.max_rss_kib as f64 / 1024.0,
                mib_s(bytes, r.wall) / z
            );
        }
        let stored: u64 = walk_size(&store.join("packs"));
        println!(
            "|  | (bagbase stored {:.0} MiB of {} MiB) | | | | |",
            stored as f64 / (1 << 20) as f64,
            bytes >> 20
        );
        let _ = std::fs::remove_dir_all(&store);
    }
}

fn walk_size(p: &std::path::Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let m = e.metadata().unwrap();
            n += if m.is_dir() {
                walk_size(&e.path())
            } else {
                m.len()
            };
        }
    }
    n
}
