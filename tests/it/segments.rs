//! Table rows in Parquet segments: appended through the library, read through SQL,
//! whole segments pruned by manifest statistics (pinned with EXPLAIN), projections and
//! filters pushed into the Parquet scan, and old versions unchanged by new rows.

use bagbase::datafusion::arrow::array::{
    AsArray, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use bagbase::datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use bagbase::datafusion::arrow::util::pretty::pretty_format_batches;
use bagbase::Store;
use std::sync::Arc;

const SEC: i64 = 1_000_000_000;

fn batch(start_s: i64, n: i64, source: &str) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "log_time",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ),
        Field::new("source", DataType::Utf8, false),
        Field::new("value", DataType::Float64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(TimestampNanosecondArray::from_iter_values(
                (0..n).map(|i| (start_s + i) * SEC),
            )),
            Arc::new(StringArray::from_iter_values((0..n).map(|_| source))),
            Arc::new(Float64Array::from_iter_values((0..n).map(|i| i as f64))),
        ],
    )
    .unwrap()
}

fn sql(store: &Store, q: &str) -> Vec<RecordBatch> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(store.sql(q, None))
        .unwrap_or_else(|e| panic!("{q}: {e}"))
}

fn text(b: &[RecordBatch]) -> String {
    pretty_format_batches(b).unwrap().to_string()
}

fn count(store: &Store, q: &str) -> i64 {
    let b = sql(store, q);
    b[0].column(0)
        .as_primitive::<bagbase::datafusion::arrow::datatypes::Int64Type>()
        .value(0)
}

#[test]
fn segments_prune_and_project() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path(), Default::default()).unwrap();
    // Three appends → three segments with disjoint time ranges.
    store
        .append_rows("main", "metrics", &["log_time"], &[batch(0, 1000, "a")])
        .unwrap();
    store
        .append_rows(
            "main",
            "metrics",
            &["log_time"],
            &[batch(10_000, 1000, "b")],
        )
        .unwrap();
    store
        .append_rows(
            "main",
            "metrics",
            &["log_time"],
            &[batch(20_000, 1000, "c")],
        )
        .unwrap();

    assert_eq!(count(&store, "SELECT count(*) FROM metrics"), 3000);
    assert_eq!(
        count(&store, "SELECT count(*) FROM metrics WHERE log_time >= TIMESTAMP '1970-01-01T05:33:20' AND log_time < TIMESTAMP '1970-01-01T05:33:30'"),
        10
    );

    // Only the one segment whose log_time range overlaps the filter is scanned.
    let plan = text(&sql(
        &store,
        "EXPLAIN SELECT value FROM metrics WHERE log_time >= TIMESTAMP '1970-01-01T05:33:20' AND log_time < TIMESTAMP '1970-01-01T05:33:30'",
    ));
    let scan = plan
        .lines()
        .find(|l| l.contains("DataSourceExec"))
        .expect(&plan);
    assert_eq!(scan.matches(".parquet").count(), 1, "{plan}");
    assert!(
        scan.contains("predicate=log_time@0 >= 20000000000000"),
        "{plan}"
    );
    assert!(scan.contains("projection=[value]"), "{plan}");
    assert!(!plan.contains("FilterExec"), "{plan}");

    // A filter on a string column prunes by its min/max too.
    let plan = text(&sql(
        &store,
        "EXPLAIN SELECT count(*) FROM metrics WHERE source = 'b'",
    ));
    let scan = plan
        .lines()
        .find(|l| l.contains("DataSourceExec"))
        .expect(&plan);
    assert_eq!(scan.matches(".parquet").count(), 1, "{plan}");
    assert_eq!(
        count(&store, "SELECT count(*) FROM metrics WHERE source = 'b'"),
        1000
    );

    // Nothing matches: no segment is read at all.
    let plan = text(&sql(
        &store,
        "EXPLAIN SELECT * FROM metrics WHERE source = 'zzz'",
    ));
    assert!(plan.contains("EmptyExec"), "{plan}");

    // Aggregates read the right values.
    let b = sql(
        &store,
        "SELECT source, sum(value) AS s FROM metrics GROUP BY source ORDER BY source",
    );
    let s = b[0]
        .column(1)
        .as_primitive::<bagbase::datafusion::arrow::datatypes::Float64Type>();
    assert_eq!(s.len(), 3);
    assert_eq!(s.value(0), 499_500.0);
}

#[test]
fn versions_keep_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path(), Default::default()).unwrap();
    store
        .append_rows("main", "metrics", &["log_time"], &[batch(0, 10, "a")])
        .unwrap();
    // The working set is visible at once, before any commit.
    assert_eq!(count(&store, "SELECT count(*) FROM metrics"), 10);
    store.commit("main", "ten rows").unwrap();
    store.tag("ten", "main").unwrap();
    store
        .append_rows("main", "metrics", &["log_time"], &[batch(100, 5, "b")])
        .unwrap();
    assert_eq!(count(&store, "SELECT count(*) FROM metrics"), 15);
    assert_eq!(count(&store, "SELECT count(*) FROM ten.metrics"), 10);
    // A schema that does not match the table is refused and changes nothing.
    let other = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("x", DataType::Utf8, false)])),
        vec![Arc::new(StringArray::from(vec!["x"]))],
    )
    .unwrap();
    let err = store
        .append_rows("main", "metrics", &["log_time"], &[other])
        .unwrap_err()
        .to_string();
    assert!(err.contains("table 'metrics'"), "{err}");
    assert_eq!(count(&store, "SELECT count(*) FROM metrics"), 15);
    assert!(store.fsck().unwrap().problems.is_empty());
}
