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

/// A table of five segments (four episodes × 50 steps each): episode_id Int64,
/// step_index Int32, obs Float64, name Utf8.
fn segments(store: &Store) {
    use bagbase::datafusion::arrow::array::{Float64Array, Int32Array, Int64Array, StringArray};
    use bagbase::datafusion::arrow::datatypes::{Field, Schema};
    use std::sync::Arc;
    let schema = Arc::new(Schema::new(vec![
        Field::new("episode_id", DataType::Int64, false),
        Field::new("step_index", DataType::Int32, false),
        Field::new("obs", DataType::Float64, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    let mut t = store
        .edit_table("main", "t", &["episode_id", "step_index"])
        .unwrap();
    for first in (0..20i64).step_by(4) {
        let (mut e, mut s, mut o, mut n) = (vec![], vec![], vec![], vec![]);
        for ep in first..first + 4 {
            for st in 0..50i32 {
                e.push(ep);
                s.push(st);
                o.push((st % 7 == 3).then_some(ep as f64 * 0.5 + st as f64 / 8.0));
                n.push(Some(
                    ["alpha", "beta", "gamma"][(ep as usize + st as usize) % 3],
                ));
            }
        }
        let b = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(e)),
                Arc::new(Int32Array::from(s)),
                Arc::new(Float64Array::from(o)),
                Arc::new(StringArray::from(n)),
            ],
        )
        .unwrap();
        t.append(&[b]).unwrap();
    }
    t.publish().unwrap();
}

/// A result's lines, sorted (row order is not part of a SELECT's answer).
fn text(b: &[RecordBatch]) -> Vec<String> {
    use bagbase::datafusion::arrow::util::pretty::pretty_format_batches;
    let mut lines: Vec<String> = pretty_format_batches(b)
        .unwrap()
        .to_string()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// `q`'s answer from a new session on `main` (planned from scratch, no cache).
fn fresh_answer(rt: &tokio::runtime::Runtime, store: &Store, q: &str) -> Vec<String> {
    let ctx = store.session_context_at("main").unwrap();
    text(
        &rt.block_on(async { ctx.sql(q).await?.collect().await })
            .unwrap(),
    )
}

/// Statements that differ only in their WHERE literals share a generic plan
/// (src/catalog/template.rs): each answer equals the one a new session plans from
/// scratch, for values inside, between and outside the segments, and values that do
/// not convert to the column's type are planned as usual.
#[test]
fn generic_plans_bind_new_values() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path(), Default::default()).unwrap();
    segments(&store);
    let fresh = |q: &str| fresh_answer(&rt, &store, q);
    let shapes: Vec<Box<dyn Fn(i64, i64) -> String>> = vec![
        Box::new(|a, b| {
            format!("SELECT episode_id, step_index, obs FROM t WHERE episode_id = {a} AND step_index = {b}")
        }),
        Box::new(|a, b| {
            format!(
                "SELECT count(*), sum(obs) FROM t WHERE episode_id BETWEEN {a} AND {}",
                a + b % 9
            )
        }),
        Box::new(|a, b| {
            format!("SELECT name, count(*) FROM t WHERE name IN ('{}', 'gamma') AND step_index >= {b} GROUP BY name", ["alpha", "beta", "zeta"][a.unsigned_abs() as usize % 3])
        }),
        Box::new(|a, b| {
            format!("SELECT episode_id, step_index FROM t WHERE obs > {}.25 AND episode_id < {a} ORDER BY episode_id DESC, step_index LIMIT 3", b % 6)
        }),
        Box::new(|a, b| {
            format!("SELECT count(*) FROM t x JOIN t y ON x.episode_id = y.episode_id WHERE x.step_index = {b} AND y.step_index <> {a}")
        }),
        Box::new(|a, _| {
            format!("SELECT count(*) FROM t WHERE episode_id > {a} AND (name = 'beta' OR NOT step_index < 40)")
        }),
    ];
    let values = [
        (3, 7),
        (17, 49),
        (0, 0),
        (19, 12),
        (-1, 3),
        (999, 60),
        (8, 25),
        (12, 33),
    ];
    for (i, shape) in shapes.iter().enumerate() {
        for (a, b) in values {
            let q = shape(a, b);
            let got = text(&rt.block_on(store.sql(&q, None)).unwrap());
            assert_eq!(got, fresh(&q), "shape {i}: {q}");
        }
    }
    assert_eq!(
        store.generic_plans(),
        shapes.len(),
        "every shape has its generic plan"
    );

    // Values a generic plan cannot take (a fraction or a number beyond the Int32
    // column, a string against a number) are planned with their literal.
    for q in [
        "SELECT count(*) FROM t WHERE episode_id = 3 AND step_index = 5.5",
        "SELECT count(*) FROM t WHERE episode_id = 3 AND step_index < 3000000000",
        "SELECT count(*) FROM t WHERE episode_id = 3 AND step_index > -3000000000",
    ] {
        assert_eq!(
            text(&rt.block_on(store.sql(q, None)).unwrap()),
            fresh(q),
            "{q}"
        );
    }

    // A write drops the generic plans with the others; the next answers see it.
    let q = |e: i64| format!("SELECT count(*), max(step_index) FROM t WHERE episode_id = {e}");
    for e in [1, 2] {
        rt.block_on(store.sql(&q(e), None)).unwrap();
    }
    let more = rt
        .block_on(store.sql("SELECT * FROM t WHERE episode_id = 4", None))
        .unwrap();
    let mut t = store
        .edit_table("main", "t", &["episode_id", "step_index"])
        .unwrap();
    let moved: Vec<RecordBatch> = more
        .iter()
        .map(|b| {
            let mut cols = b.columns().to_vec();
            cols[0] = std::sync::Arc::new(bagbase::datafusion::arrow::array::Int64Array::from(
                vec![40; b.num_rows()],
            ));
            RecordBatch::try_new(b.schema(), cols).unwrap()
        })
        .collect();
    t.append(&moved).unwrap();
    t.publish().unwrap();
    assert_eq!(
        store.generic_plans(),
        0,
        "a publish drops the generic plans"
    );
    for e in [40, 4, 40] {
        assert_eq!(
            text(&rt.block_on(store.sql(&q(e), None)).unwrap()),
            fresh(&q(e))
        );
    }
    assert_eq!(
        text(&rt.block_on(store.sql(&q(40), None)).unwrap())[1..2],
        fresh(&q(40))[1..2]
    );
}

/// Generic plans bound to a segment or two read them with `LookupExec`
/// (src/catalog/lookup.rs), pruning pages by the page index: segments of several row
/// groups and pages, floats with NaN and NULLs, strings, timestamps, ranges, LIMIT —
/// each answer equal to DataFusion's Parquet scan in a fresh session.
#[test]
fn small_scans_read_what_the_parquet_scan_reads() {
    use bagbase::catalog::lookup;
    use bagbase::datafusion::arrow::array::{
        Float64Array, Int32Array, Int64Array, StringArray, TimestampNanosecondArray,
    };
    use bagbase::datafusion::arrow::datatypes::{Field, Schema, TimeUnit};
    use std::sync::Arc;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path(), Default::default()).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("episode_id", DataType::Int64, false),
        Field::new("step_index", DataType::Int32, false),
        Field::new("obs", DataType::Float64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false),
    ]));
    let mut t = store
        .edit_table("main", "big", &["episode_id", "step_index"])
        .unwrap();
    // Three segments of 150 episodes × 1,000 steps: three row groups each (65,536
    // rows), pages of 1,024 rows, so episodes straddle pages and row groups.
    for first in [0i64, 150, 300] {
        let (mut e, mut s, mut o, mut n, mut ts) = (vec![], vec![], vec![], vec![], vec![]);
        for ep in first..first + 150 {
            for st in 0..1000i32 {
                e.push(ep);
                s.push(st);
                o.push(match st % 11 {
                    0 => None,
                    5 => Some(f64::NAN),
                    k => Some(ep as f64 + k as f64 / 16.0),
                });
                n.push((st % 13 != 0).then(|| format!("n{}", (ep * 7 + st as i64) % 50)));
                ts.push(ep * 1_000_000_000 + st as i64 * 1_000_000);
            }
        }
        let b = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(e)),
                Arc::new(Int32Array::from(s)),
                Arc::new(Float64Array::from(o)),
                Arc::new(StringArray::from(n)),
                Arc::new(TimestampNanosecondArray::from(ts)),
            ],
        )
        .unwrap();
        t.append(&[b]).unwrap();
    }
    t.publish().unwrap();
    let fresh = |q: &str| fresh_answer(&rt, &store, q);
    let shapes: Vec<Box<dyn Fn(i64, i64) -> String>> = vec![
        Box::new(|a, b| format!("SELECT * FROM big WHERE episode_id = {a} AND step_index = {b}")),
        Box::new(|a, b| {
            format!(
                "SELECT step_index, name, ts FROM big WHERE episode_id = {a} AND step_index BETWEEN {b} AND {}",
                b + 40
            )
        }),
        Box::new(|a, b| {
            format!(
                "SELECT count(*), sum(obs), min(obs), max(name) FROM big WHERE episode_id = {a} AND obs > {}.5",
                a + b % 3 - 1
            )
        }),
        Box::new(|a, b| {
            format!(
                "SELECT episode_id, step_index FROM big WHERE name = 'n{}' AND episode_id >= {a} AND episode_id < {}",
                b % 50,
                a + 2
            )
        }),
        Box::new(|a, b| {
            format!("SELECT obs FROM big WHERE episode_id = {a} AND step_index > {b} ORDER BY step_index LIMIT 7")
        }),
        Box::new(|a, _| format!("SELECT count(*) FROM big WHERE episode_id = {a}")),
    ];
    let values = [
        (0, 0),
        (149, 999),
        (150, 0),
        (20, 19_999),
        (65, 535),
        (65, 536),
        (299, 998),
        (449, 1),
        (450, 3),
        (-1, 7),
        (131, 72),
    ];
    // NaN sorts above every number: Parquet statistics leave it out, so float
    // columns holding NaN are written without them (no page pruning drops its rows).
    assert_eq!(
        fresh("SELECT count(*) FROM big WHERE obs > 1000"),
        fresh("SELECT 40950 AS \"count(*)\"")
    );
    let before = lookup::started();
    for (i, shape) in shapes.iter().enumerate() {
        for (a, b) in values {
            let q = shape(a, b);
            let got = text(&rt.block_on(store.sql(&q, None)).unwrap());
            assert_eq!(got, fresh(&q), "shape {i}: {q}");
        }
    }
    assert_eq!(store.generic_plans(), shapes.len());
    assert!(
        lookup::started() - before >= (shapes.len() * (values.len() - 2)) as u64,
        "bound scans were read by LookupExec: {}",
        lookup::started() - before
    );
}

/// A statement of a known shape (src/catalog/shape.rs) runs its generic plan without
/// being parsed: values are taken from the literals they were learned from, a shape
/// is learned only when each value's literal is certain, a different fixed literal
/// (`LIMIT 4`) takes the usual path, and a statement seen word for word before takes
/// the generic plan too (no plan of its own). Every answer equals a fresh session's.
#[test]
fn known_shapes_skip_parsing() {
    use bagbase::catalog::plans::shaped_runs;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path(), Default::default()).unwrap();
    segments(&store);
    let q = |e: i64, s: i64, limit: i64| {
        format!("SELECT episode_id, step_index, name FROM t WHERE episode_id = {e} AND step_index >= {s} ORDER BY step_index LIMIT {limit};")
    };
    // (e, s, limit, whether it runs through its shape).
    let runs = [
        (1, 2, 3, false),  // seen once
        (3, 3, 3, false),  // the generic plan is made; which 3 is which: not learned
        (5, 7, 3, false),  // learned
        (7, 7, 3, true),   // the same value twice, each from its own literal
        (2, -1, 3, false), // `- 1` is another shape (learned now)
        (11, -9, 3, true), // ... and runs through it
        (9, 48, 4, false), // LIMIT 4 is fixed, not a value
        (9, 48, 3, true),  // the shape again
        (9, 48, 3, true),  // seen word for word: the generic plan all the same
        (9, 48, 3, true),  // ... and again
        (19, 0, 3, true),  // the shape again
    ];
    for (e, s, limit, shaped) in runs {
        let q = q(e, s, limit);
        let before = shaped_runs();
        let got = text(&rt.block_on(store.sql(&q, None)).unwrap());
        assert_eq!(got, fresh_answer(&rt, &store, &q), "{q}");
        // Tests running beside this one may count too: only "at least" is certain.
        if shaped {
            assert!(shaped_runs() > before, "{q} ran through its shape");
        }
    }
    assert_eq!(
        store.cached_plans(),
        0,
        "a repeated statement whose shape has a generic plan keeps no plan of its own"
    );
}

/// Lineage walks that differ only in where they start and how deep they go share one
/// generic plan: the start node is a key of the edges' scan read through their index
/// (`IndexedScanExec ... key=`), the depth bound a filter of the fused walk, both bound
/// per run (src/catalog/template.rs). Every answer equals a fresh session's, for nodes
/// that exist, that do not, and a walk with a literal on the looked-up edges (not
/// generic: planned as usual, same answers).
#[test]
fn walks_from_any_node_share_a_generic_plan() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path(), Default::default()).unwrap();
    // Three chains c0 → c1 → ... of 6, 9 and 12 nodes, a branch at b1-3 and a cycle.
    let mut values = Vec::new();
    for (chain, len) in [("a", 6), ("b", 9), ("c", 12)] {
        for i in 0..len - 1 {
            values.push(format!(
                "('run', '{chain}{i}', 'run', '{chain}{}', 'next')",
                i + 1
            ));
        }
    }
    values.push("('run', 'b3', 'model', 'm1', 'other')".into());
    values.push("('run', 'c11', 'run', 'c5', 'next')".into());
    let sql = format!(
        "INSERT INTO lineage_edges (source_type, source_id, target_type, target_id, relation) VALUES {}",
        values.join(", ")
    );
    rt.block_on(store.sql(&sql, None)).unwrap();
    let walk = |node: &str, depth: i64| {
        format!(
            "WITH RECURSIVE walk(id, depth) AS (
               SELECT target_id, 1 FROM lineage_edges WHERE source_id = '{node}'
               UNION ALL
               SELECT e.target_id, w.depth + 1 FROM lineage_edges e JOIN walk w ON e.source_id = w.id
               WHERE w.depth < {depth}
             ) SELECT id, depth FROM walk"
        )
    };
    let typed = |node: &str| {
        format!(
            "WITH RECURSIVE walk(id, depth) AS (
               SELECT target_id, 1 FROM lineage_edges WHERE source_id = '{node}'
               UNION ALL
               SELECT e.target_id, w.depth + 1 FROM lineage_edges e JOIN walk w ON e.source_id = w.id
               WHERE w.depth < 20 AND e.relation = 'next'
             ) SELECT count(*), max(depth) FROM walk"
        )
    };
    let runs = [
        ("a0", 50),
        ("b0", 50),
        ("b2", 3),
        ("c4", 30),
        ("nope", 50),
        ("a3", 1),
        ("c0", 50),
        ("b1", 0),
    ];
    for (node, depth) in runs {
        let q = walk(node, depth);
        let got = text(&rt.block_on(store.sql(&q, None)).unwrap());
        assert_eq!(got, fresh_answer(&rt, &store, &q), "{q}");
    }
    assert_eq!(store.generic_plans(), 1, "the walk has a generic plan");
    let q = walk("c4", 30);
    // 30 rows (the cycle) and the table's four border and header lines.
    assert_eq!(
        text(&rt.block_on(store.sql(&q, None)).unwrap()).len(),
        30 + 4
    );
    for (node, _) in runs {
        let q = typed(node);
        let got = text(&rt.block_on(store.sql(&q, None)).unwrap());
        assert_eq!(got, fresh_answer(&rt, &store, &q), "{q}");
    }
    assert_eq!(
        store.generic_plans(),
        1,
        "a literal on the looked-up edges keeps a walk from a generic plan"
    );
}
