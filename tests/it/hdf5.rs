//! HDF5 episode files end to end: every file of ../shared/testdata/hdf5 (robosuite raw
//! demos, copied to tests/data) ingests with MANIFEST.json's episodes, steps, array
//! shapes and action sums. The other layouts and the bad-input errors are pinned in
//! sql/hdf5.slt; values against h5py in tests/compare_rosbags.py.

use crate::common::{csv_rows, manifest, ok};

#[test]
fn every_hdf5_file_matches_the_manifest() {
    let m = manifest();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    ok(&store, &["init"]);
    ok(&store, &["ingest", "tests/data/hdf5"]);
    let mut files = 0;
    for (key, facts) in m
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("hdf5/"))
    {
        files += 1;
        let path = format!("tests/data/{key}");
        let q = format!(
            "SELECT count(*), sum(e.num_steps) FROM episodes e JOIN files f USING (file_id) WHERE f.path = '{path}'"
        );
        let r = &csv_rows(&ok(&store, &["sql", "--format", "csv", &q]))[0];
        assert_eq!(r[0], facts["episodes"].to_string(), "{path}");
        assert_eq!(r[1], facts["steps_total"].to_string(), "{path}");
        for (k, (demo, d)) in facts["demos"].as_object().unwrap().iter().enumerate() {
            let mut cols = vec!["count(*)".to_string()];
            let mut want = vec![d["num_steps"].to_string()];
            for (name, v) in d.as_object().unwrap() {
                if let Some(shape) = v.get("shape") {
                    cols.push(format!("min(array_length({name}))"));
                    cols.push(format!("max(array_length({name}))"));
                    want.push(shape[1].to_string());
                    want.push(shape[1].to_string());
                }
            }
            cols.push("sum(list_sum(actions))".into());
            let q = format!(
                "SELECT {} FROM steps s JOIN episodes e USING (episode_id) JOIN files f ON f.file_id = e.file_id \
                 WHERE f.path = '{path}' AND e.episode_index = {k}",
                cols.join(", ")
            );
            let r = csv_rows(&ok(&store, &["sql", "--format", "csv", &q])).remove(0);
            let sum: f64 = r.last().unwrap().parse().unwrap();
            let want_sum = d["actions_sum"].as_f64().unwrap();
            assert!(
                (sum - want_sum).abs() < 1e-6,
                "{path} {demo}: {sum} != {want_sum}"
            );
            assert_eq!(r[..r.len() - 1], want[..], "{path} {demo}: {cols:?}");
        }
    }
    assert_eq!(files, 4);
}

/// Bit flips and cuts of a real file: the HDF5 path answers Ok or Err, never panics.
#[test]
fn mutated_hdf5_files_never_panic() {
    let orig = std::fs::read("tests/data/hdf5/robosuite-v1.0/wipe_panda_demo.hdf5").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.hdf5");
    std::fs::write(&path, &orig).unwrap();
    assert_eq!(bagbase::ingest::hdf5::ingest::read_all(&path), Ok(174));
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..150 {
        let mut b = orig.clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() % b.len() as u64) as usize;
            b[i] ^= 1 << (next() % 8);
        }
        if next() % 3 == 0 {
            b.truncate((next() % b.len() as u64) as usize);
        }
        std::fs::write(&path, &b).unwrap();
        let _ = bagbase::ingest::hdf5::ingest::read_all(&path);
    }
}
