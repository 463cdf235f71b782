//! Embedding bagbase in an application: open (or create) a store, ingest a file, append
//! rows to a table, commit, tag, and query with DataFusion — no server involved.
//!
//! cargo run --example embed -- /tmp/embed-store

use bagbase::datafusion::arrow::array::{Float64Array, RecordBatch, StringArray};
use bagbase::datafusion::arrow::datatypes::{DataType, Field, Schema};
use bagbase::datafusion::arrow::util::pretty::print_batches;
use bagbase::{IngestOptions, Store};
use std::path::PathBuf;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "embed-store".into()),
    );
    let store = if path.join(bagbase::store::MARKER).exists() {
        Store::open(&path)?
    } else {
        Store::init(&path, Default::default())?
    };

    // Files: stored as content-addressed chunks, committed as a version.
    let report = store.ingest_reader(
        "notes/run-1.txt",
        &b"lane 3, sunny"[..],
        &IngestOptions::default(),
    )?;
    println!("ingested, version {:?}", report.version.map(|v| v.hex()));

    // Rows: appended to a table in main's working set, visible at once.
    let schema = Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("reward", DataType::Float64, false),
    ]));
    let rows = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["run-1", "run-1", "run-2"])),
            Arc::new(Float64Array::from(vec![0.5, 0.75, 0.25])),
        ],
    )?;
    store.append_rows("main", "rewards", &[], &[rows])?;
    let v = store.commit("main", "rewards of two runs")?;
    if store.resolve("example").is_err() {
        store.tag("example", &v.hex())?;
    }

    let ctx = store.session_context();
    let batches = ctx
        .sql("SELECT run_id, avg(reward) AS mean_reward FROM rewards GROUP BY run_id ORDER BY run_id")
        .await?
        .collect()
        .await?;
    print_batches(&batches)?;
    let batches = ctx
        .sql("SELECT path, size_bytes FROM example.files")
        .await?
        .collect()
        .await?;
    print_batches(&batches)?;
    Ok(())
}
