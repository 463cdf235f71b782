//! `Store::sql` keeps the plans of read-only statements (src/catalog/plans.rs): a kept
//! plan gives the same answer when run again, and any change to the store — an INSERT,
//! a commit, a tag — is seen by the very next statement.

use bagbase::datafusion::arrow::array::{Array, AsArray, RecordBatch};
use bagbase::datafusion::arrow::datatypes::{DataType, Int64Type};
use bagbase::Store;

fn ints(batches: &[RecordBatch]) -> Vec<i64> {
    let mut out = Vec::new();
    for b in batches {
        let c = bagbase::datafusion::arrow::compute::cast(b.column(0), &DataType::Int64).unwrap();
        let c = c.as_primitive::<Int64Type>();
        out.extend((0..c.len()).map(|i| if c.is_null(i) { -1 } else { c.value(i) }));
    }
    out
}

fn edge(rt: &tokio::runtime::Runtime, store: &Store, from: &str, to: &str) {
    let sql = format!(
        "INSERT INTO lineage_edges (source_type, source_id, target_type, target_id, relation) VALUES ('run', '{from}', 'run', '{to}', 'next')"
    );
    rt.block_on(store.sql(&sql, None)).unwrap();
}

/// The depths reached walking from run `a` (one row per node reached).
const WALK: &str = "WITH RECURSIVE walk(id, depth) AS (
    SELECT 'a', 0
    UNION ALL
    SELECT e.target_id, w.depth + 1 FROM lineage_edges e JOIN walk w
      ON e.source_type = 'run' AND e.source_id = w.id WHERE w.depth < 50
  ) SELECT depth FROM walk ORDER BY depth";

#[test]
fn kept_plans_rerun_and_see_every_change() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path(), Default::default()).unwrap();
    edge(&rt, &store, "a", "b");
    assert_eq!(store.cached_plans(), 0, "an INSERT is not kept");

    let sql = |q: &str, r: Option<&str>| ints(&rt.block_on(store.sql(q, r)).unwrap());
    assert_eq!(sql(WALK, None), vec![0, 1]);
    assert_eq!(store.cached_plans(), 0, "a statement seen once is not kept");
    assert_eq!(sql(WALK, None), vec![0, 1]);
    assert_eq!(store.cached_plans(), 1);
    assert_eq!(sql(WALK, None), vec![0, 1], "the kept plan, run again");
    assert_eq!(store.cached_plans(), 1);

    // A hash join, a TopK (its dynamic filter is made anew per run) and a min/max
    // aggregate, each run three times.
    let top = "SELECT length(e.target_id) FROM lineage_edges e JOIN lineage_edges f ON e.target_id = f.source_id ORDER BY e.target_id DESC LIMIT 1";
    let minmax = "SELECT max(length(target_id)) - min(length(target_id)) FROM lineage_edges";
    for _ in 0..3 {
        assert_eq!(sql(top, None), Vec::<i64>::new());
        assert_eq!(sql(minmax, None), vec![0]);
    }

    // Each write is seen by the next query.
    edge(&rt, &store, "b", "c");
    assert_eq!(store.cached_plans(), 0, "a publish drops every kept plan");
    assert_eq!(sql(WALK, None), vec![0, 1, 2]);
    assert_eq!(sql(top, None), vec![1]);
    edge(&rt, &store, "c", "dd");
    assert_eq!(sql(WALK, None), vec![0, 1, 2, 3]);
    assert_eq!(sql(minmax, None), vec![1]);

    // The working set committed and tagged; the tag then reads as it was. Expected
    // counts come from a new session each (no kept plan); lineage_edges also holds the
    // system's child_of edge of each commit.
    let fresh = |q: &str, r: &str| {
        let ctx = store.session_context_at(r).unwrap();
        ints(
            &rt.block_on(async { ctx.sql(q).await?.collect().await })
                .unwrap(),
        )
    };
    let count = "SELECT count(*) FROM lineage_edges WHERE relation = 'next'";
    store.commit("main", "three edges").unwrap();
    store.tag("three", "main").unwrap();
    assert_eq!(sql(count, Some("three")), vec![3]);
    edge(&rt, &store, "dd", "e");
    assert_eq!(sql(count, Some("three")), vec![3]);
    assert_eq!(sql(count, None), vec![4]);
    assert_eq!(sql(WALK, None), vec![0, 1, 2, 3, 4]);
    let all = "SELECT count(*) FROM lineage_edges";
    let versions = "SELECT count(*) FROM versions";
    let before = sql(versions, None);
    assert_eq!(sql(all, None), fresh(all, "main"));
    store.commit("main", "four edges").unwrap();
    assert_eq!(sql(versions, None), vec![before[0] + 1]);
    assert_eq!(sql(all, None), fresh(all, "main"));
    assert_eq!(sql(all, Some("three")), fresh(all, "three"));

    // A statement reading the clock is planned every time.
    let kept = store.cached_plans();
    let clock = "SELECT CAST(date_part('year', now()) AS BIGINT)";
    assert!(sql(clock, None)[0] >= 2024);
    assert_eq!(store.cached_plans(), kept);
}
