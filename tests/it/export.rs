//! `export --format parquet`: one directory per table, steps files named by episode, a
//! tag's export stays the tag's, and an export into a non-empty directory fails without
//! touching it. Read-back by DuckDB, pyarrow and pandas is tests/check_parquet_export.py.
//! `export --format lerobot`: the v3.0 file set, what is left out and why, errors that
//! leave nothing behind. Loading with LeRobotDataset is tests/check_lerobot_export.py.

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

fn export_lerobot(
    store: &std::path::Path,
    out: &std::path::Path,
    more: &[&str],
) -> std::process::Output {
    let mut args = vec!["export", "--format", "lerobot", out.to_str().unwrap()];
    args.extend_from_slice(more);
    crate::common::bagbase(store, &args)
}

#[test]
fn lerobot_export_layout_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    ok(&store, &["init"]);
    // A version without steps: an error, no directory.
    ok(&store, &["ingest", "tests/data/metrics/metrics.lp"]);
    let out = dir.path().join("lr");
    let res = export_lerobot(&store, &out, &[]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(err.contains("has no steps"), "{err}");
    assert!(!out.exists() && !dir.path().join(".lr.partial").exists());

    ok(
        &store,
        &[
            "ingest",
            "tests/data/gen/steps.bag",
            "tests/data/gen/robomimic.hdf5",
        ],
    );
    // Nothing selected.
    let res = export_lerobot(&store, &out, &["--where", "false"]);
    assert!(String::from_utf8_lossy(&res.stderr).contains("no episode to export"));
    assert!(!out.exists());
    // The bag: columns with gaps and empty lists are named in warnings.
    let res = export_lerobot(
        &store,
        &out,
        &[
            "--where",
            "file_id IN (SELECT file_id FROM files WHERE path LIKE '%.bag')",
        ],
    );
    let said = String::from_utf8_lossy(&res.stdout);
    let warned = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{warned}");
    assert!(
        said.contains("exported 1 episodes (15 frames at 10 fps, 1 data files; features observation.images.camera_image, observation.joint_states.position)"),
        "{said}"
    );
    assert!(
        warned.contains("column reward: NULL in 8 steps"),
        "{warned}"
    );
    assert!(
        warned.contains("observation.joint_states.velocity): an empty list in every step"),
        "{warned}"
    );
    assert!(
        !warned.contains("obs_eef_pos"),
        "another recording's columns are not warned about: {warned}"
    );
    for f in [
        "data/chunk-000/file-000.parquet",
        "meta/info.json",
        "meta/stats.json",
        "meta/tasks.parquet",
        "meta/episodes/chunk-000/file-000.parquet",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("meta/info.json")).unwrap())
            .unwrap();
    assert_eq!(info["codebase_version"], "v3.0");
    assert_eq!(info["total_frames"], 15);
    assert_eq!(
        info["features"]["observation.images.camera_image"]["shape"],
        serde_json::json!([2, 2, 3])
    );
    // Both recordings at once: their columns differ, so only what both have is kept.
    let both = dir.path().join("both");
    let res = export_lerobot(&store, &both, &[]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("not in 3 of the 4 episodes exported"), "{err}");
}
