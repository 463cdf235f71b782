//! Content-defined chunking keeps an insertion local: a 64 MiB random file and the same
//! file with 1 MiB inserted in the middle share all but the chunks around the insert.

use crate::common::random;
use bagbase::datafusion::arrow::array::AsArray;
use bagbase::datafusion::arrow::datatypes::{Float64Type, Int64Type};
use bagbase::{IngestOptions, Store};

/// Stored-bytes growth of one trial: `seed` picks the data and where 1 MiB goes in.
fn trial(seed: u64) -> (f64, f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(&dir.path().join("s"), Default::default()).unwrap();
    let base = random(64 << 20, seed);
    let at = (16 << 20) + (seed as usize * 7_654_321) % (32 << 20);
    let mut edited = base[..at].to_vec();
    edited.extend_from_slice(&random(1 << 20, seed + 1000));
    edited.extend_from_slice(&base[at..]);
    let opts = IngestOptions::default();
    store.ingest_reader("data.bin", &base[..], &opts).unwrap();
    store.ingest_reader("data.bin", &edited[..], &opts).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let b = rt
        .block_on(store.sql(
            "SELECT stored_bytes, dedup_ratio FROM storage ORDER BY history_logical_bytes",
            None,
        ))
        .unwrap();
    let stored = b[0].column(0).as_primitive::<Int64Type>();
    let ratio = b[0].column(1).as_primitive::<Float64Type>();
    let grew = (stored.value(2) - stored.value(1)) as f64;
    (grew, ratio.value(2), store.config().chunk_max as f64)
}

/// The chunks cut around an edit are size-biased (a point falls more often in a long
/// chunk), so one trial can cost a few average chunks; the bound holds for the mean
/// of several trials, and every trial stays within two maximum-size chunks.
#[test]
fn insert_in_the_middle_stores_little_more() {
    let avg = bagbase::store::StoreConfig::default().chunk_avg as f64;
    let mib = (1 << 20) as f64;
    let trials: Vec<(f64, f64, f64)> = (1..=8).map(trial).collect();
    for (grew, ratio, max) in &trials {
        assert!(*grew <= mib + 2.0 * max, "one trial grew by {grew}");
        // (64 + 65) MiB of history kept in about 65 MiB.
        assert!(*ratio > 1.95, "dedup ratio {ratio}");
    }
    let mean = trials.iter().map(|t| t.0).sum::<f64>() / trials.len() as f64;
    let bound = 1.05 * (mib + 2.0 * avg);
    assert!(mean <= bound, "mean growth {mean}, bound {bound}");
    eprintln!(
        "growth per trial (KiB over 1 MiB): {:?}; mean {:.0}",
        trials
            .iter()
            .map(|t| ((t.0 - mib) / 1024.0) as i64)
            .collect::<Vec<_>>(),
        (mean - mib) / 1024.0
    );
}

/// A stream that repeats its first MiB after many packs were sealed (64 KiB packs, 1 KiB
/// chunks): the repeat is found in the chunk index, not stored again — the collector
/// looks at the index a second time only when a seal published entries in between.
#[test]
fn a_repeat_across_sealed_packs_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = bagbase::store::StoreConfig {
        chunk_min: 256,
        chunk_avg: 1024,
        chunk_max: 4096,
        pack_target_bytes: 64 << 10,
        ..Default::default()
    };
    let store = Store::init(&dir.path().join("s"), config).unwrap();
    let a = random(1 << 20, 11);
    let mut data = a.clone();
    data.extend_from_slice(&random(512 << 10, 12));
    data.extend_from_slice(&a);
    store
        .ingest_reader("x.bin", &data[..], &IngestOptions::default())
        .unwrap();
    let packs = walk_packs(&dir.path().join("s/packs"));
    let unique = (1.5 * (1 << 20) as f64) as u64;
    assert!(packs.0 > 20, "{} packs: the test needs many seals", packs.0);
    // Random bytes stay raw: the packs hold the unique 1.5 MiB plus entry headers.
    assert!(
        packs.1 < unique + unique / 10,
        "{} bytes in packs for {unique} unique bytes",
        packs.1
    );
    let out = dir.path().join("out");
    store.export_files("main", None, &out).unwrap();
    assert!(std::fs::read(out.join("x.bin")).unwrap() == data);
    let report = store.fsck().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// Number and total size of the pack files under `dir`.
fn walk_packs(dir: &std::path::Path) -> (usize, u64) {
    crate::common::walk(dir)
        .iter()
        .filter(|p| p.is_file())
        .fold((0, 0), |(n, b), p| (n + 1, b + p.metadata().unwrap().len()))
}
