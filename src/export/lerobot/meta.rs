//! The `meta/` files of a LeRobot v3.0 dataset: `info.json` (schema, fps, path
//! templates), `stats.json`, `tasks.parquet` (a pandas frame indexed by the task text)
//! and `episodes/chunk-000/file-000.parquet` (one row per episode: length, where its
//! frames are, its stats, and bagbase's `episode_id`).

use super::features::Feature;
use super::stats::Stats;
use crate::export::{io, ExportError};
use datafusion::arrow::array::*;
use datafusion::arrow::datatypes::*;
use datafusion::parquet::arrow::ArrowWriter;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

pub const DATA_PATH: &str = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet";
/// Files of a chunk directory, and the size that closes a data file (as LeRobot).
pub const CHUNKS_SIZE: usize = 1000;
pub const DATA_FILE_MB: u64 = 100;

/// The columns LeRobot adds to every frame, after the features.
pub const DEFAULT_FEATURES: [(&str, &str); 5] = [
    ("timestamp", "float32"),
    ("frame_index", "int64"),
    ("episode_index", "int64"),
    ("index", "int64"),
    ("task_index", "int64"),
];

/// One exported episode.
pub struct EpisodeMeta {
    pub episode_id: String,
    pub length: i64,
    pub chunk: usize,
    pub file: usize,
    pub from: i64,
    /// Stats by feature name (the default features included).
    pub stats: HashMap<String, Stats>,
}

fn bad(what: &str, e: impl std::fmt::Display) -> crate::Error {
    ExportError::Table {
        table: "steps".into(),
        detail: format!("{what}: {e}"),
    }
    .into()
}

fn write_json(path: &Path, v: &Value) -> Result<(), crate::Error> {
    let text = serde_json::to_string_pretty(v).map_err(|e| bad("json", e))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::write(path, text).map_err(|e| io(path)(e).into())
}

fn write_parquet(path: &Path, batch: RecordBatch) -> Result<(), crate::Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let f = std::fs::File::create(path).map_err(io(path))?;
    let mut w = ArrowWriter::try_new(f, batch.schema(), None).map_err(|e| bad("parquet", e))?;
    w.write(&batch).map_err(|e| bad("parquet", e))?;
    w.close().map_err(|e| bad("parquet", e))?;
    Ok(())
}

/// `meta/info.json`.
pub fn info(
    root: &Path,
    features: &[Feature],
    episodes: usize,
    frames: u64,
    fps: u32,
) -> Result<(), crate::Error> {
    let mut feats = serde_json::Map::new();
    for f in features {
        let shape = f.shape.clone().unwrap_or_else(|| vec![1]);
        let names = if f.is_image() {
            json!(["height", "width", "channels"])
        } else {
            Value::Null
        };
        feats.insert(
            f.name.clone(),
            json!({"dtype": f.dtype(), "shape": shape, "names": names}),
        );
    }
    for (name, dtype) in DEFAULT_FEATURES {
        feats.insert(
            name.into(),
            json!({"dtype": dtype, "shape": [1], "names": null}),
        );
    }
    let v = json!({
        "codebase_version": "v3.0",
        "robot_type": null,
        "total_episodes": episodes,
        "total_frames": frames,
        "total_tasks": 1,
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILE_MB,
        "video_files_size_in_mb": 200,
        "fps": fps,
        "splits": {"train": format!("0:{episodes}")},
        "data_path": DATA_PATH,
        "video_path": null,
        "features": feats,
    });
    write_json(&root.join("meta/info.json"), &v)
}

/// `meta/stats.json`: every episode's stats merged.
pub fn stats(root: &Path, names: &[String], eps: &[EpisodeMeta]) -> Result<(), crate::Error> {
    let mut out = serde_json::Map::new();
    for n in names {
        let mut all: Option<Stats> = None;
        for s in eps.iter().filter_map(|e| e.stats.get(n)) {
            match &mut all {
                Some(a) => a.merge(s),
                None => all = Some(s.clone()),
            }
        }
        if let Some(a) = all {
            out.insert(n.clone(), a.to_json());
        }
    }
    write_json(&root.join("meta/stats.json"), &Value::Object(out))
}

/// `meta/tasks.parquet`: the one task, as pandas writes a frame indexed by task text.
pub fn tasks(root: &Path, task: &str) -> Result<(), crate::Error> {
    let pandas = json!({
        "index_columns": ["__index_level_0__"],
        "column_indexes": [{"name": null, "field_name": null, "pandas_type": "unicode",
                            "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
             "numpy_type": "int64", "metadata": null},
            {"name": null, "field_name": "__index_level_0__", "pandas_type": "unicode",
             "numpy_type": "object", "metadata": null}],
        "creator": {"library": "bagbase", "version": env!("CARGO_PKG_VERSION")},
        "pandas_version": "2.0.0"
    });
    let schema = Schema::new(vec![
        Field::new("task_index", DataType::Int64, true),
        Field::new("__index_level_0__", DataType::Utf8, true),
    ])
    .with_metadata(HashMap::from([("pandas".to_string(), pandas.to_string())]));
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int64Array::from(vec![0])),
            Arc::new(StringArray::from(vec![task])),
        ],
    )
    .map_err(|e| bad("tasks", e))?;
    write_parquet(&root.join("meta/tasks.parquet"), batch)
}

fn list_f64(rows: impl Iterator<Item = Vec<f64>>) -> ArrayRef {
    Arc::new(ListArray::from_iter_primitive::<Float64Type, _, _>(
        rows.map(|v| Some(v.into_iter().map(Some).collect::<Vec<_>>())),
    ))
}

/// Per-channel image stats as (C, 1, 1) lists.
fn list_chw(rows: impl Iterator<Item = Vec<f64>>) -> ArrayRef {
    let mut b = ListBuilder::new(ListBuilder::new(ListBuilder::new(Float64Builder::new())));
    for v in rows {
        for x in v {
            let c = b.values();
            c.values().values().append_value(x);
            c.values().append(true);
            c.append(true);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

fn ints(v: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(v))
}

/// `meta/episodes/chunk-000/file-000.parquet`.
pub fn episodes(
    root: &Path,
    names: &[(String, bool)],
    eps: &[EpisodeMeta],
    task: &str,
) -> Result<(), crate::Error> {
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    let mut push = |name: &str, a: ArrayRef| {
        fields.push(Field::new(name, a.data_type().clone(), true));
        cols.push(a);
    };
    push("episode_index", ints(0..eps.len() as i64));
    let mut tasks = ListBuilder::new(StringBuilder::new());
    for _ in eps {
        tasks.values().append_value(task);
        tasks.append(true);
    }
    push("tasks", Arc::new(tasks.finish()));
    push("length", ints(eps.iter().map(|e| e.length)));
    push("data/chunk_index", ints(eps.iter().map(|e| e.chunk as i64)));
    push("data/file_index", ints(eps.iter().map(|e| e.file as i64)));
    push("dataset_from_index", ints(eps.iter().map(|e| e.from)));
    push(
        "dataset_to_index",
        ints(eps.iter().map(|e| e.from + e.length)),
    );
    for (n, image) in names {
        let st = |e: &EpisodeMeta| {
            e.stats
                .get(n)
                .cloned()
                .unwrap_or_else(|| Stats::new(1, *image))
        };
        for (k, stat) in ["min", "max", "mean", "std"].iter().enumerate() {
            let rows = eps.iter().map(|e| st(e).values().swap_remove(k).1);
            let a = if *image {
                list_chw(rows)
            } else {
                list_f64(rows)
            };
            push(&format!("stats/{n}/{stat}"), a);
        }
        let counts = ListArray::from_iter_primitive::<Int64Type, _, _>(
            eps.iter().map(|e| Some(vec![Some(st(e).frames as i64)])),
        );
        push(&format!("stats/{n}/count"), Arc::new(counts));
    }
    push("meta/episodes/chunk_index", ints(eps.iter().map(|_| 0)));
    push("meta/episodes/file_index", ints(eps.iter().map(|_| 0)));
    push(
        "episode_id",
        Arc::new(StringArray::from_iter_values(
            eps.iter().map(|e| e.episode_id.as_str()),
        )),
    );
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
        .map_err(|e| bad("episodes", e))?;
    write_parquet(
        &root.join("meta/episodes/chunk-000/file-000.parquet"),
        batch,
    )
}
