//! version_diff / diff_summary on a steps-shaped table written through the public API
//! (`Store::edit_table`, one segment per episode): episodes added, removed and
//! re-processed between two tags; counts checked against a brute-force EXCEPT, and the
//! shared segments never read.

use bagbase::datafusion::arrow::array::{Array, AsArray, Float64Array, Int64Array, RecordBatch};
use bagbase::datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
use bagbase::version::manifest::StatValue;
use bagbase::Store;
use std::sync::Arc;

const KEY: [&str; 2] = ["episode_id", "step_index"];

fn episode(e: i64, steps: i64, bump: f64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("episode_id", DataType::Int64, false),
        Field::new("step_index", DataType::Int64, false),
        Field::new("action", DataType::Float64, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![e; steps as usize])),
            Arc::new(Int64Array::from_iter_values(0..steps)),
            Arc::new(Float64Array::from_iter_values(
                (0..steps).map(|s| (e * 10 + s) as f64 + bump),
            )),
        ],
    )
    .unwrap()
}

fn ints(store: &Store, sql: &str) -> Vec<i64> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let batches = rt.block_on(store.sql(sql, None)).unwrap();
    let mut out = Vec::new();
    for b in batches {
        for c in b.columns() {
            let c = bagbase::datafusion::arrow::compute::cast(c, &DataType::Int64).unwrap();
            let c = c.as_primitive::<Int64Type>();
            out.extend((0..c.len()).map(|i| if c.is_null(i) { -1 } else { c.value(i) }));
        }
    }
    out
}

#[test]
fn steps_diff_matches_brute_force() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path(), Default::default()).unwrap();
    let mut t = store.edit_table("main", "steps", &KEY).unwrap();
    for e in 0..20 {
        t.append(&[episode(e, 50, 0.0)]).unwrap();
    }
    t.publish().unwrap();
    store.commit("main", "A").unwrap();
    store.tag("A", "main").unwrap();

    // B: episodes 3 and 4 removed, 5 re-processed (every step modified), 20 and 21 added.
    let mut t = store.edit_table("main", "steps", &KEY).unwrap();
    for e in [3, 4, 5] {
        assert_eq!(t.remove_partition("episode_id", &StatValue::Int(e)), 50);
    }
    t.append(&[episode(5, 50, 0.5)]).unwrap();
    t.append(&[episode(20, 50, 0.0)]).unwrap();
    t.append(&[episode(21, 50, 0.0)]).unwrap();
    t.publish().unwrap();
    store.commit("main", "B").unwrap();

    assert_eq!(
        ints(
            &store,
            "SELECT count(*) FILTER (WHERE diff_type = 'added'), count(*) FILTER (WHERE diff_type = 'removed'), count(*) FILTER (WHERE diff_type = 'modified') FROM version_diff('steps', 'A', 'main')"
        ),
        vec![100, 100, 50]
    );
    // The modified rows carry old and new values.
    assert_eq!(
        ints(
            &store,
            "SELECT count(*) FROM version_diff('steps', 'A', 'main') WHERE diff_type = 'modified' AND action - from_action = 0.5 AND episode_id = 5"
        ),
        vec![50]
    );
    // diff_summary agrees with brute force over both versions.
    let summary = ints(
        &store,
        "SELECT rows_added, rows_removed, rows_modified FROM diff_summary('A', 'main') WHERE table_name = 'steps'",
    );
    let brute = ints(
        &store,
        "SELECT
           (SELECT count(*) FROM (SELECT episode_id, step_index FROM steps EXCEPT SELECT episode_id, step_index FROM \"A\".steps)) AS added,
           (SELECT count(*) FROM (SELECT episode_id, step_index FROM \"A\".steps EXCEPT SELECT episode_id, step_index FROM steps)) AS removed,
           (SELECT count(*) FROM (SELECT * FROM steps EXCEPT SELECT * FROM \"A\".steps)) -
           (SELECT count(*) FROM (SELECT episode_id, step_index FROM steps EXCEPT SELECT episode_id, step_index FROM \"A\".steps)) AS modified",
    );
    assert_eq!(summary, brute);
    // A key filter prunes both sides to one episode's segments.
    assert_eq!(
        ints(
            &store,
            "SELECT count(*) FROM version_diff('steps', 'A', 'main') WHERE episode_id = 20"
        ),
        vec![50]
    );
    // Equal versions: nothing.
    assert_eq!(
        ints(
            &store,
            "SELECT count(*) FROM version_diff('steps', 'A', 'A')"
        ),
        vec![0]
    );
}

#[test]
fn a_dropped_edit_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path(), Default::default()).unwrap();
    store
        .append_rows("main", "steps", &KEY, &[episode(1, 10, 0.0)])
        .unwrap();
    {
        let mut t = store.edit_table("main", "steps", &KEY).unwrap();
        t.remove_partition("episode_id", &StatValue::Int(1));
        t.append(&[episode(2, 10, 0.0)]).unwrap();
    }
    assert_eq!(
        ints(&store, "SELECT min(episode_id), count(*) FROM steps"),
        vec![1, 10]
    );
    let report = store.fsck().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.orphan_packs.is_empty());
}
