//! Runs every `sql/*.slt` file (the SQL contract) against a fresh store per file.
//! `system ok` records run the real `bagbase` binary with BAGBASE_STORE pointing at that
//! store; queries open the store through the library between commands. A query whose
//! plan `Store::sql` would keep is checked to give the same rows when that plan runs again.
//! Regenerate expected output with `BAGBASE_SLT_COMPLETE=1 cargo test --test sqllogictest`
//! (`BAGBASE_SLT_ONLY=NAME` limits a run to the files whose name contains NAME).
//! and review the diff.

use bagbase::datafusion::arrow::array::{Array, RecordBatch};
use bagbase::datafusion::arrow::datatypes::DataType;
use bagbase::datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use sqllogictest::{DBOutput, DefaultColumnType};
use std::path::{Path, PathBuf};

struct Db {
    store: PathBuf,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SltError(String);

fn column_type(dt: &DataType) -> DefaultColumnType {
    match dt {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => DefaultColumnType::Integer,
        DataType::Float16 | DataType::Float32 | DataType::Float64 | DataType::Decimal128(_, _) => {
            DefaultColumnType::FloatingPoint
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => DefaultColumnType::Text,
        _ => DefaultColumnType::Any,
    }
}

fn rows(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, SltError> {
    let opts = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let fmts: Vec<ArrayFormatter<'_>> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
            .collect::<Result<_, _>>()
            .map_err(|e| SltError(e.to_string()))?;
        for r in 0..b.num_rows() {
            let cells: Vec<String> = fmts
                .iter()
                .zip(b.columns())
                .map(|(f, c)| {
                    let s = f.value(r).to_string();
                    if s.is_empty() && !c.is_null(r) {
                        "(empty)".to_string()
                    } else {
                        s
                    }
                })
                .collect();
            // A multi-line cell (an EXPLAIN plan) becomes one row per line, so the
            // expected output reads line by line in the .slt file.
            let split: Vec<Vec<&str>> = cells.iter().map(|c| c.lines().collect()).collect();
            let height = split.iter().map(|l| l.len()).max().unwrap_or(1).max(1);
            for i in 0..height {
                let row: Vec<String> = split
                    .iter()
                    .filter_map(|l| l.get(i).map(|s| s.to_string()))
                    .collect();
                out.push(row);
            }
        }
    }
    Ok(out)
}

fn sorted(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.sort();
    rows
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for Db {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let store = bagbase::Store::open(&self.store).map_err(|e| SltError(e.to_string()))?;
        let ctx = store.session_context();
        let df = ctx.sql(sql).await.map_err(|e| SltError(e.to_string()))?;
        let types: Vec<DefaultColumnType> = df
            .schema()
            .fields()
            .iter()
            .map(|f| column_type(f.data_type()))
            .collect();
        let reuse = bagbase::catalog::plans::cacheable(df.logical_plan())
            .map_err(|e| SltError(e.to_string()))?;
        let batches = df.collect().await.map_err(|e| SltError(e.to_string()))?;
        if reuse {
            // Every query a plan may be kept for also runs four times through
            // `Store::sql`: planned (seen once); with a space added (another text of
            // the same shape: a query with WHERE literals runs its generic plan,
            // src/catalog/template.rs, others are planned again); planned to be
            // kept (or its generic plan again); the kept plan run again. All five answers agree.
            let err = |e: bagbase::Error| SltError(e.to_string());
            let first = store.sql(sql, None).await.map_err(err)?;
            assert_eq!(store.cached_plans(), 0, "kept at first sight: {sql}");
            let spaced = store.sql(&format!("{sql} "), None).await.map_err(err)?;
            let planned = store.sql(sql, None).await.map_err(err)?;
            // Kept as its own plan, or served by its shape's generic plan.
            assert_eq!(
                store.cached_plans() + store.generic_plans(),
                1,
                "plan not kept: {sql}"
            );
            let reused = store.sql(sql, None).await.map_err(err)?;
            let expected = sorted(rows(&batches)?);
            assert_eq!(sorted(rows(&first)?), expected, "first run: {sql}");
            assert_eq!(
                sorted(rows(&spaced)?),
                expected,
                "same shape, generic plan: {sql}"
            );
            assert_eq!(
                sorted(rows(&planned)?),
                expected,
                "planned by Store::sql: {sql}"
            );
            assert_eq!(
                sorted(rows(&reused)?),
                expected,
                "kept plan run again: {sql}"
            );
        }
        if types.is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        Ok(DBOutput::Rows {
            types,
            rows: rows(&batches)?,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "bagbase"
    }
}

fn slt_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("sql")
        .expect("sql/ directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .filter(|p| {
            // BAGBASE_SLT_ONLY=steps runs only the files whose name contains it.
            std::env::var("BAGBASE_SLT_ONLY").map_or(true, |o| p.to_string_lossy().contains(&o))
        })
        .collect();
    files.sort();
    files
}

fn run_file(path: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // SAFETY: this test binary runs the .slt files one after another on one thread.
    unsafe {
        std::env::set_var("BAGBASE_STORE", &store);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut runner = sqllogictest::Runner::new(|| {
        let store = store.clone();
        async move { Ok(Db { store }) }
    });
    runner.with_column_validator(sqllogictest::strict_column_validator);
    if std::env::var_os("BAGBASE_SLT_COMPLETE").is_some() {
        rt.block_on(runner.update_test_file(
            path,
            " ",
            sqllogictest::default_validator,
            sqllogictest::default_normalizer,
            sqllogictest::strict_column_validator,
        ))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    } else if let Err(e) = rt.block_on(runner.run_file_async(path)) {
        panic!("{}: {}", path.display(), e.display(true));
    }
}

#[test]
fn sql_contract() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_bagbase"));
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin.parent().unwrap().to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    // SAFETY: set before any thread of this test starts.
    unsafe {
        std::env::set_var("PATH", std::env::join_paths(dirs).unwrap());
        std::env::set_var("BAGBASE_AUTHOR", "slt");
        std::env::set_var("BAGBASE_TIME", "1700000000000000000");
    }
    let files = slt_files();
    assert!(!files.is_empty(), "no sql/*.slt files");
    for f in files {
        run_file(&f);
    }
}
