//! `export --format lerobot`: a version's `steps` as a LeRobot v3.0 dataset
//! (docs/export.md). Episodes in time order (first step's time, then id) become
//! episode_index 0…; their steps, one segment at a time, become frames of
//! `data/chunk-NNN/file-NNN.parquet` (a file closes at an episode end once it passed
//! 100 MB, as LeRobot's writer does); `meta/` is written last from what was counted on
//! the way. Memory: one segment, one converted batch and a row group below 64 MiB.

pub mod features;
pub mod image;
mod meta;
pub mod stats;

use crate::export::{io, read_segment, ExportError};
use crate::ingest::Progress;
use crate::store::ChunkStore;
use crate::version::blob;
use crate::version::manifest::{self, Root, SegmentMeta, StatValue};
use crate::version::segment;
use datafusion::arrow::array::*;
use datafusion::arrow::datatypes::*;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use features::{At, Feature, Gap};
use meta::EpisodeMeta;
use stats::Stats;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A row group is written out once it holds this much.
const ROW_GROUP_BYTES: usize = 32 << 20;

#[derive(Clone, Debug)]
pub struct Options {
    /// The one task every episode gets (LeRobot needs one per episode).
    pub task: String,
    /// Frames per second for `info.json`; default: the steps' mean rate, rounded.
    pub fps: Option<u32>,
    /// Only these episodes (by `episode_id`); `None`: all.
    pub episodes: Option<std::collections::HashSet<String>>,
}

#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub episodes: usize,
    pub frames: u64,
    pub features: Vec<String>,
    pub data_files: usize,
    pub fps: u32,
    /// Columns left out and why.
    pub warnings: Vec<String>,
}

fn bad(detail: impl Into<String>) -> crate::Error {
    ExportError::Table {
        table: "steps".into(),
        detail: detail.into(),
    }
    .into()
}

/// One episode: its id, first step time and its steps segments in step order.
struct Episode<'a> {
    id: String,
    start: i64,
    segments: Vec<&'a SegmentMeta>,
}

fn str_stat(s: &SegmentMeta, col: &str) -> Option<String> {
    match s.stats.get(col).map(|c| (&c.min, &c.max)) {
        Some((Some(StatValue::Str(a)), Some(StatValue::Str(b)))) if a == b => Some(a.clone()),
        _ => None,
    }
}

fn int_stat(s: &SegmentMeta, col: &str, max: bool) -> i64 {
    let c = s.stats.get(col);
    match c.and_then(|c| if max { c.max.as_ref() } else { c.min.as_ref() }) {
        Some(StatValue::Int(v)) => *v,
        _ => 0,
    }
}

fn episodes(segments: &[SegmentMeta]) -> Result<Vec<Episode<'_>>, crate::Error> {
    let mut by_id: BTreeMap<String, Episode> = BTreeMap::new();
    for s in segments.iter().filter(|s| s.rows > 0) {
        let id = str_stat(s, "episode_id").ok_or_else(|| {
            bad(format!(
                "segment {} holds more than one episode; steps segments never should (run 'bagbase fsck')",
                s.id.hex()
            ))
        })?;
        let e = by_id.entry(id.clone()).or_insert(Episode {
            id,
            start: i64::MAX,
            segments: Vec::new(),
        });
        e.start = e.start.min(int_stat(s, "timestamp", false));
        e.segments.push(s);
    }
    let mut out: Vec<Episode> = by_id.into_values().collect();
    for e in &mut out {
        e.segments.sort_by_key(|s| int_stat(s, "step_index", false));
    }
    out.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
    Ok(out)
}

/// Intervals between steps kept to find the rate (the first ones of the export).
const RATE_SAMPLES: usize = 1 << 16;

/// The step rate: one over the median interval between steps, rounded (1 if unknown).
fn median_fps(intervals: &mut [i64]) -> u32 {
    if intervals.is_empty() {
        return 1;
    }
    let mid = intervals.len() / 2;
    let (_, m, _) = intervals.select_nth_unstable(mid);
    if *m <= 0 {
        return 1;
    }
    ((1e9 / *m as f64).round() as u32).max(1)
}

/// The data file being written.
struct DataFile {
    writer: ArrowWriter<std::fs::File>,
    chunk: usize,
    file: usize,
}

struct Writer {
    root: PathBuf,
    schema: SchemaRef,
    current: Option<DataFile>,
    next: (usize, usize),
    files: usize,
}

impl Writer {
    fn err(e: impl std::fmt::Display) -> crate::Error {
        bad(format!("writing a data file: {e}"))
    }

    /// The file an episode starting now goes to: the open one until it passed the size.
    fn for_episode(&mut self) -> Result<(usize, usize), crate::Error> {
        if let Some(d) = &self.current {
            let size = d.writer.bytes_written() + d.writer.in_progress_size();
            if (size as u64) < meta::DATA_FILE_MB << 20 {
                return Ok((d.chunk, d.file));
            }
        }
        self.close()?;
        let (chunk, file) = self.next;
        self.next = if file + 1 == meta::CHUNKS_SIZE {
            (chunk + 1, 0)
        } else {
            (chunk, file + 1)
        };
        let dir = self.root.join(format!("data/chunk-{chunk:03}"));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(format!("file-{file:03}.parquet"));
        let f = std::fs::File::create(&path).map_err(io(&path))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let writer =
            ArrowWriter::try_new(f, self.schema.clone(), Some(props)).map_err(Self::err)?;
        self.current = Some(DataFile {
            writer,
            chunk,
            file,
        });
        self.files += 1;
        Ok((chunk, file))
    }

    fn write(&mut self, b: &RecordBatch) -> Result<(), crate::Error> {
        let Some(d) = &mut self.current else {
            return Err(bad("no data file open"));
        };
        d.writer.write(b).map_err(Self::err)?;
        if d.writer.in_progress_size() > ROW_GROUP_BYTES {
            d.writer.flush().map_err(Self::err)?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), crate::Error> {
        if let Some(d) = self.current.take() {
            d.writer.close().map_err(Self::err)?;
        }
        Ok(())
    }
}

/// Writes the steps of `root` as a LeRobot v3.0 dataset at `out`.
pub fn export(
    chunks: &ChunkStore,
    root: &Root,
    out: &Path,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Summary, crate::Error> {
    crate::export::into_new_dir(out, |tmp| write_all(chunks, root, tmp, opts, progress))
}

fn write_all(
    chunks: &ChunkStore,
    root: &Root,
    tmp: &Path,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Summary, crate::Error> {
    let Some(id) = root.tables.get("steps") else {
        return Err(bad(
            "this version has no steps: ingest a bag, MCAP or HDF5 recording first",
        ));
    };
    let t = manifest::load_table(chunks.kv(), id)?;
    let schema = segment::decode_schema("steps", &t.schema)?;
    let mut eps = episodes(&t.segments)?;
    if let Some(want) = &opts.episodes {
        eps.retain(|e| want.contains(&e.id));
    }
    if eps.is_empty() {
        return Err(bad(
            "no episode to export (none has steps, or none was selected)",
        ));
    }
    let gap = |col: &str| {
        let absent = eps
            .iter()
            .filter(|e| e.segments.iter().any(|s| !s.stats.contains_key(col)))
            .count();
        let nulls: u64 = eps
            .iter()
            .flat_map(|e| &e.segments)
            .filter_map(|s| s.stats.get(col))
            .map(|c| c.nulls)
            .sum();
        if absent == eps.len() {
            Some(Gap::Foreign)
        } else if absent > 0 {
            Some(Gap::Partial(format!(
                "not in {absent} of the {} episodes exported (they come from recordings without it; choose episodes with --where)",
                eps.len()
            )))
        } else if nulls > 0 {
            Some(Gap::Partial(format!(
                "NULL in {nulls} steps (no message within the tolerance; ingest with method = \"previous\" or a wider tolerance_ms)"
            )))
        } else {
            None
        }
    };
    let (mut feats, mut warnings) = features::plan(schema.fields(), gap);
    if feats.is_empty() {
        return Err(bad(format!(
            "no steps column can be a LeRobot feature (numbers, numeric vectors, images without NULLs): {}",
            warnings.join("; ")
        )));
    }
    let mut intervals = Vec::new();
    let total: u64 = eps.iter().flat_map(|e| &e.segments).map(|s| s.rows).sum();
    progress.file("steps → LeRobot", total);
    let mut w: Option<Writer> = None;
    let mut metas = Vec::new();
    let mut index = 0i64;
    for (k, e) in eps.iter().enumerate() {
        let mut st: HashMap<String, Stats> = HashMap::new();
        let mut location = w.as_mut().map(|w| w.for_episode()).transpose()?;
        let from = index;
        let mut frame = 0i64;
        let mut last_time = e.start;
        for s in &e.segments {
            let bytes = read_segment(chunks, "steps", s)?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(|b| b.with_batch_size(1024).build())
                .map_err(|e| bad(e.to_string()))?;
            // Blob columns (camera images) turn into their bytes, a bounded batch at a
            // time (a batch of 1,024 references can stand for gigabytes).
            let batches = reader.flat_map(|b| -> Box<dyn Iterator<Item = _>> {
                match b.map_err(|e| e.to_string()).and_then(|b| {
                    blob::resolved(chunks, b, &s.blobs, blob::BATCH_BYTES)
                        .map_err(|e| e.to_string())
                }) {
                    Ok(pieces) => Box::new(pieces.map(|p| p.map_err(|e| e.to_string()))),
                    Err(e) => Box::new(std::iter::once(Err(e))),
                }
            });
            for b in batches {
                let b = b.map_err(bad)?;
                let at = At {
                    episode: &e.id,
                    first_step: frame,
                };
                let mut cols = Vec::with_capacity(feats.len() + 5);
                for f in feats.iter_mut() {
                    let dims = f.dims();
                    let s = st
                        .entry(f.name.clone())
                        .or_insert_with(|| Stats::new(dims, f.is_image()));
                    cols.push(features::convert(f, &b, &at, s).map_err(bad)?);
                }
                if w.is_none() {
                    // The first batch fixed every shape: drop empty vectors, open the file.
                    let mut keep = Vec::new();
                    for (f, c) in feats.drain(..).zip(cols.drain(..)) {
                        if f.shape.as_deref() == Some(&[0]) {
                            warnings.push(format!(
                                "column {} ({}): an empty list in every step; not exported",
                                f.column, f.name
                            ));
                            st.remove(&f.name);
                        } else {
                            keep.push((f, c));
                        }
                    }
                    for (f, c) in keep {
                        feats.push(f);
                        cols.push(c);
                    }
                    let mut writer = Writer {
                        root: tmp.to_path_buf(),
                        schema: data_schema(&feats),
                        current: None,
                        next: (0, 0),
                        files: 0,
                    };
                    location = Some(writer.for_episode()?);
                    w = Some(writer);
                }
                let n = b.num_rows() as i64;
                let ts = b
                    .column_by_name("timestamp")
                    .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>())
                    .ok_or_else(|| bad("steps has no nanosecond timestamp column"))?;
                let mut prev = (frame > 0).then_some(last_time);
                for t in ts.values().iter() {
                    if let Some(p) = prev.filter(|_| intervals.len() < RATE_SAMPLES) {
                        intervals.push(t - p);
                    }
                    prev = Some(*t);
                }
                last_time = prev.unwrap_or(last_time);
                let secs: Vec<f32> = ts
                    .values()
                    .iter()
                    .map(|t| ((t - e.start) as f64 / 1e9) as f32)
                    .collect();
                let frames: Vec<i64> = (frame..frame + n).collect();
                let idx: Vec<i64> = (index..index + n).collect();
                let defaults: [(&str, Vec<f64>, ArrayRef); 5] = [
                    (
                        "timestamp",
                        secs.iter().map(|x| *x as f64).collect(),
                        Arc::new(Float32Array::from(secs)),
                    ),
                    (
                        "frame_index",
                        frames.iter().map(|x| *x as f64).collect(),
                        Arc::new(Int64Array::from(frames)),
                    ),
                    (
                        "episode_index",
                        vec![k as f64; n as usize],
                        Arc::new(Int64Array::from(vec![k as i64; n as usize])),
                    ),
                    (
                        "index",
                        idx.iter().map(|x| *x as f64).collect(),
                        Arc::new(Int64Array::from(idx)),
                    ),
                    (
                        "task_index",
                        vec![0.0; n as usize],
                        Arc::new(Int64Array::from(vec![0i64; n as usize])),
                    ),
                ];
                for (name, values, col) in defaults {
                    let s = st
                        .entry(name.into())
                        .or_insert_with(|| Stats::new(1, false));
                    for v in values {
                        s.add([v]);
                    }
                    cols.push(col);
                }
                let Some(writer) = w.as_mut() else {
                    return Err(bad("no data file open"));
                };
                let batch = RecordBatch::try_new(writer.schema.clone(), cols)
                    .map_err(|err| bad(format!("episode {}: {err}", e.id)))?;
                writer.write(&batch)?;
                frame += n;
                index += n;
                progress.advance(n as u64);
            }
        }
        let (chunk, file) = location.unwrap_or((0, 0));
        metas.push(EpisodeMeta {
            episode_id: e.id.clone(),
            length: frame,
            chunk,
            file,
            from,
            stats: st,
        });
    }
    let files = match w.as_mut() {
        Some(w) => {
            w.close()?;
            w.files
        }
        None => 0,
    };
    let fps = opts.fps.unwrap_or_else(|| median_fps(&mut intervals));
    let mut names: Vec<(String, bool)> = feats
        .iter()
        .map(|f| (f.name.clone(), f.is_image()))
        .collect();
    names.extend(
        meta::DEFAULT_FEATURES
            .iter()
            .map(|(n, _)| (n.to_string(), false)),
    );
    let plain: Vec<String> = names.iter().map(|n| n.0.clone()).collect();
    meta::info(tmp, &feats, metas.len(), index as u64, fps)?;
    meta::stats(tmp, &plain, &metas)?;
    meta::tasks(tmp, &opts.task)?;
    meta::episodes(tmp, &names, &metas, &opts.task)?;
    Ok(Summary {
        episodes: metas.len(),
        frames: index as u64,
        features: feats.iter().map(|f| f.name.clone()).collect(),
        data_files: files,
        fps,
        warnings,
    })
}

/// The schema of the data files: the features, then LeRobot's default columns.
fn data_schema(feats: &[Feature]) -> SchemaRef {
    let mut fields: Vec<Field> = feats
        .iter()
        .map(|f| Field::new(&f.name, f.arrow_type(), true))
        .collect();
    fields.push(Field::new("timestamp", DataType::Float32, true));
    for n in ["frame_index", "episode_index", "index", "task_index"] {
        fields.push(Field::new(n, DataType::Int64, true));
    }
    Arc::new(Schema::new(fields))
}
