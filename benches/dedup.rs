//! Deduplication across history (issue "Engine foundation", acceptance 2): 100 versions
//! of a 256 MiB dataset (20 files), each version rewriting 10% of it with new data,
//! re-ingested whole each time as a user would. Reports `storage.dedup_ratio` (goal ≥ 9;
//! the ideal is 100·256 / (256 + 99·25.6) = 9.17) and what is on disk.
//!
//! cargo bench --bench dedup             (BENCH_VERSIONS=100 by default)

mod common;

use bagbase::datafusion::arrow::array::AsArray;
use bagbase::datafusion::arrow::datatypes::{Float64Type, Int64Type};
use bagbase::{IngestOptions, Store};
use common::*;
use std::time::Instant;

const FILES: u64 = 20;
const FILE_BYTES: u64 = 256 * (1 << 20) / FILES;

fn main() {
    let versions: u64 = std::env::var("BENCH_VERSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = scratch();
    let data = dir.join("dedup-data");
    let store_path = dir.join("dedup-store");
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&store_path);
    std::fs::create_dir_all(&data).unwrap();
    for f in 0..FILES {
        write_random(&data.join(format!("part-{f:02}.bin")), FILE_BYTES, f + 1);
    }
    let store = Store::init(&store_path, Default::default()).unwrap();
    let started = Instant::now();
    let mut seed = 1000;
    for v in 0..versions {
        if v > 0 {
            // 10% new data: two of the twenty files get new content.
            for k in 0..2 {
                let f = (v * 2 + k) % FILES;
                seed += 1;
                write_random(&data.join(format!("part-{f:02}.bin")), FILE_BYTES, seed);
            }
        }
        let opts = IngestOptions {
            message: Some(format!("dataset v{v}")),
            ..Default::default()
        };
        store
            .ingest(std::slice::from_ref(&data), &opts, &())
            .unwrap();
    }
    let took = started.elapsed();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let b = rt
        .block_on(store.sql(
            "SELECT history_logical_bytes, unique_bytes, stored_bytes, dedup_ratio FROM storage ORDER BY history_logical_bytes DESC LIMIT 1",
            None,
        ))
        .unwrap();
    let hist = b[0].column(0).as_primitive::<Int64Type>().value(0);
    let unique = b[0].column(1).as_primitive::<Int64Type>().value(0);
    let stored = b[0].column(2).as_primitive::<Int64Type>().value(0);
    let ratio = b[0].column(3).as_primitive::<Float64Type>().value(0);
    let ideal = (versions * 256) as f64 / (256.0 + (versions - 1) as f64 * 25.6);
    let mib = |n: i64| n as f64 / (1 << 20) as f64;
    println!("| versions | history (logical) | unique chunks | stored | dedup_ratio | ideal | ingest time | throughput |");
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {versions} | {:.0} MiB | {:.0} MiB | {:.0} MiB | {ratio:.2} | {ideal:.2} | {:.1} s | {:.0} MiB/s |",
        mib(hist),
        mib(unique),
        mib(stored),
        took.as_secs_f64(),
        mib(hist) / took.as_secs_f64()
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&store_path);
}
