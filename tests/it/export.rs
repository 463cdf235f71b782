//! `export --format parquet`: one directory per table, steps files named by episode, a
//! tag's export stays the tag's, and an export into a non-empty directory fails without
//! touching it. Read-back by DuckDB, pyarrow and pandas is tests/check_parquet_export.py.

use crate::common::{fails, ok};

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn parquet_export_layout() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    ok(&store, &["init"]);
    ok(&store, &["ingest", "tests/data/gen/steps.bag", "-m", "one"]);
    ok(&store, &["tag", "v1"]);
    ok(
        &store,
        &[
            "ingest",
            "tests/data/ros1/rosbag.js/example.bag",
            "-m",
            "two",
        ],
    );
    let out = dir.path().join("out");
    let said = ok(
        &store,
        &[
            "export",
            "--ref",
            "v1",
            "--format",
            "parquet",
            out.to_str().unwrap(),
        ],
    );
    assert!(said.contains("exported 8 tables"), "{said}");
    let tables = names(&out);
    for t in [
        "_bagbase.json",
        "camera%2Fimage",
        "episodes",
        "joint_states",
        "messages",
        "steps",
        "topics",
    ] {
        assert!(tables.contains(&t.to_string()), "{tables:?}");
    }
    let steps = names(&out.join("steps"));
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert!(steps[0].starts_with("episode-") && steps[0].ends_with(".parquet"));
    let topic = names(&out.join("joint_states"));
    assert!(topic[0].starts_with("file-"), "{topic:?}");
    // Not into a directory that holds something; it is left as it was.
    let err = fails(
        &store,
        &[
            "export",
            "--ref",
            "main",
            "--format",
            "parquet",
            out.to_str().unwrap(),
        ],
    );
    assert!(err.contains("exists and is not empty"), "{err}");
    assert_eq!(names(&out), tables);
    assert!(!dir.path().join(".out.partial").exists());
}
