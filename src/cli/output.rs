//! How the CLI prints: query results (table, CSV, JSON), logs, summaries, fsck reports.

use bagbase::datafusion::arrow;
use bagbase::datafusion::arrow::array::{Array, RecordBatch};
use bagbase::store::Id;
use bagbase::version::Version;
use bagbase::{FsckReport, IngestReport};
use std::fmt::Write as _;
use std::time::Duration;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

pub fn write_batches(batches: &[RecordBatch], format: Format) -> bagbase::Result<()> {
    let out = std::io::stdout();
    let mut out = out.lock();
    let arrow_err = |e: arrow::error::ArrowError| bagbase::Error::Sql(e.into());
    match format {
        Format::Table => {
            use std::io::Write;
            let t = arrow::util::pretty::pretty_format_batches(batches).map_err(arrow_err)?;
            writeln!(out, "{t}")?;
        }
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            for b in batches {
                w.write(&flatten_nested(b).map_err(arrow_err)?)
                    .map_err(arrow_err)?;
            }
        }
        Format::Json => {
            let mut w = arrow::json::ArrayWriter::new(out);
            for b in batches {
                w.write(b).map_err(arrow_err)?;
            }
            w.finish().map_err(arrow_err)?;
            use std::io::Write;
            writeln!(std::io::stdout())?;
        }
    }
    Ok(())
}

/// CSV has no lists or structs: such columns are written as their display text
/// (`[a, b]`, `{x: 1}`), as `--format table` shows them.
fn flatten_nested(b: &RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
    use arrow::array::{ArrayRef, StringBuilder};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    use std::sync::Arc;
    let mut fields = Vec::with_capacity(b.num_columns());
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(b.num_columns());
    for (f, c) in b.schema().fields().iter().zip(b.columns()) {
        if f.data_type().is_nested() {
            let fmt = ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default())?;
            let mut s = StringBuilder::new();
            for i in 0..c.len() {
                if c.is_null(i) {
                    s.append_null();
                } else {
                    s.append_value(fmt.value(i).to_string());
                }
            }
            fields.push(Field::new(f.name(), DataType::Utf8, true));
            cols.push(Arc::new(s.finish()));
        } else {
            fields.push(f.as_ref().clone());
            cols.push(Arc::clone(c));
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn time(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

pub fn ingest_summary(r: &IngestReport, branch: &str, took: Duration) -> String {
    let changed = r.files.iter().filter(|f| f.changed).count();
    let logical: u64 = r.files.iter().map(|f| f.entry.size_bytes).sum();
    let secs = took.as_secs_f64().max(1e-9);
    let target = match &r.version {
        Some(v) => format!("committed {} on {branch}", &v.hex()[..12]),
        None if changed == 0 => format!("no changes on {branch}"),
        None => format!("in the working set of {branch} (not committed)"),
    };
    format!(
        "ingested {} files ({changed} changed), {} in {:.2}s ({}/s); {} new chunks, {} stored; {target}",
        r.files.len(),
        bytes(logical),
        took.as_secs_f64(),
        bytes((logical as f64 / secs) as u64),
        r.stats.new_chunks,
        bytes(r.stats.new_stored_bytes),
    )
}

pub fn log(entries: &[(Id, Version)]) -> String {
    let mut s = String::new();
    for (id, v) in entries {
        let _ = writeln!(s, "version {}", id.hex());
        let _ = writeln!(s, "Branch: {}", v.branch);
        let _ = writeln!(s, "Author: {}", v.author);
        let _ = writeln!(s, "Date:   {}", time(v.created_at));
        let _ = writeln!(s, "\n    {}\n", v.message);
    }
    s
}

pub fn fsck(r: &FsckReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "checked {} packs, {} chunks ({}), {} manifest nodes, {} versions",
        r.packs,
        r.chunks,
        bytes(r.bytes),
        r.nodes,
        r.versions
    );
    for p in &r.orphan_packs {
        let _ = writeln!(
            s,
            "note: unreferenced pack {} (left by an interrupted command; 'bagbase gc' removes it)",
            p.display()
        );
    }
    for p in &r.problems {
        let _ = writeln!(s, "damaged: {p}");
    }
    let _ = writeln!(
        s,
        "{}",
        if r.problems.is_empty() {
            "no damage found".to_string()
        } else {
            format!("{} problems found", r.problems.len())
        }
    );
    s
}
