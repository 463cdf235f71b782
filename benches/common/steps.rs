//! The steps table of the SQL benches: `episodes` × 1,000 steps with the SPEC's step
//! columns (episode_id, step_index, timestamp, flags, two observations, action,
//! reward), as Arrow batches for `Store::edit_table` and as the SQL that makes the
//! same rows in PostgreSQL.

use bagbase::datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, TimestampNanosecondArray,
};
use bagbase::datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bagbase::Store;
use std::sync::Arc;

pub const STEPS: i64 = 1000;
/// The table's key, as `Store::edit_table` takes it.
pub const KEY: [&str; 2] = ["episode_id", "step_index"];
/// The action of step `s` of episode `e` in its original form, in PostgreSQL.
pub const BASE_ACTION: &str = "((e * 31 + s * 17) % 1000) / 1000.0::float8";
/// The columns, as a PostgreSQL table definition.
pub const COLUMNS: &str = "episode_id bigint, step_index bigint, \"timestamp\" timestamp, is_first bool, is_last bool, is_terminal bool, obs_x float8, obs_y float8, action float8, reward float8";

pub fn schema() -> SchemaRef {
    let f = |n: &str, t: DataType| Field::new(n, t, false);
    Arc::new(Schema::new(vec![
        f("episode_id", DataType::Int64),
        f("step_index", DataType::Int64),
        f("timestamp", DataType::Timestamp(TimeUnit::Nanosecond, None)),
        f("is_first", DataType::Boolean),
        f("is_last", DataType::Boolean),
        f("is_terminal", DataType::Boolean),
        f("obs_x", DataType::Float64),
        f("obs_y", DataType::Float64),
        f("action", DataType::Float64),
        f("reward", DataType::Float64),
    ]))
}

/// The rows of episode `e`, with `action(e, s)` as its action column.
pub fn episode(e: i64, action: impl Fn(i64, i64) -> f64) -> RecordBatch {
    let s: Vec<i64> = (0..STEPS).collect();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![e; STEPS as usize])),
        Arc::new(Int64Array::from(s.clone())),
        Arc::new(TimestampNanosecondArray::from_iter_values(
            s.iter().map(|s| e * 1_000_000_000_000 + s * 33_000_000),
        )),
        Arc::new(BooleanArray::from_iter(s.iter().map(|s| Some(*s == 0)))),
        Arc::new(BooleanArray::from_iter(
            s.iter().map(|s| Some(*s == STEPS - 1)),
        )),
        Arc::new(BooleanArray::from_iter(
            s.iter().map(|s| Some(*s == STEPS - 1)),
        )),
        Arc::new(Float64Array::from_iter_values(
            s.iter().map(|s| ((e * 7 + s * 3) % 1000) as f64 / 10.0),
        )),
        Arc::new(Float64Array::from_iter_values(
            s.iter().map(|s| ((e * 11 + s * 5) % 1000) as f64 / 10.0),
        )),
        Arc::new(Float64Array::from_iter_values(
            s.iter().map(|s| action(e, *s)),
        )),
        Arc::new(Float64Array::from_iter_values(s.iter().map(|s| {
            if *s == STEPS - 1 {
                1.0
            } else {
                0.0
            }
        }))),
    ];
    RecordBatch::try_new(schema(), cols).unwrap()
}

/// The rows of `episodes` (a SQL expression giving ids `e`) as PostgreSQL computes them.
pub fn pg_rows(episodes: &str, action_sql: &str) -> String {
    format!(
        "SELECT e, s, to_timestamp(0) AT TIME ZONE 'UTC' + make_interval(secs => (e * 1000000000000 + s * 33000000) / 1e9),
           s = 0, s = {last}, s = {last}, ((e * 7 + s * 3) % 1000) / 10.0::float8,
           ((e * 11 + s * 5) % 1000) / 10.0::float8, {action_sql},
           CASE WHEN s = {last} THEN 1.0::float8 ELSE 0.0::float8 END
         FROM (SELECT x::bigint FROM ({episodes}) q(x)) ep(e), generate_series(0::bigint, {last}) s",
        last = STEPS - 1
    )
}

/// The action of an original step (the SQL in `BASE_ACTION` computes the same).
pub fn base_action(e: i64, s: i64) -> f64 {
    ((e * 31 + s * 17) % 1000) as f64 / 1000.0
}

/// Writes `episodes` original episodes to `table` on `branch`, one segment each.
pub fn build(store: &Store, branch: &str, table: &str, episodes: i64) {
    let mut t = store.edit_table(branch, table, &KEY).unwrap();
    for e in 0..episodes {
        t.append(&[episode(e, base_action)]).unwrap();
    }
    t.publish().unwrap();
}

/// Writes `episodes` original episodes to `table` on `branch` as an ingest lays rows
/// out: 256 episodes (256,000 rows, under bagbase's segment size) per segment.
pub fn build_packed(store: &Store, branch: &str, table: &str, episodes: i64) {
    let mut t = store.edit_table(branch, table, &KEY).unwrap();
    for first in (0..episodes).step_by(256) {
        let batches: Vec<RecordBatch> = (first..episodes.min(first + 256))
            .map(|e| episode(e, base_action))
            .collect();
        t.append(&batches).unwrap();
    }
    t.publish().unwrap();
}
