//! Pass 2 of step building: reads each source's rows back from the topic segments this
//! ingest just wrote (one segment per source in memory, plus one bounded batch of
//! steps), gathers the matched message of every step, and writes `steps` segments that
//! never mix episodes, and the `episodes` rows.

use super::align::{self, Sorted};
use super::config::{default_name, AlignConfig, SourceConfig};
use super::TopicData;
use crate::store::ChunkWriter;
use crate::version::blob::{self, BlobPath};
use crate::version::node::NodeWriter;
use crate::version::{rows, segment, SegmentMeta};
use datafusion::arrow::array::*;
use datafusion::arrow::compute::interleave;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

/// Steps gathered at once, and the bytes a batch of steps aims at.
const GATHER_ROWS: usize = 16 * 1024;
const GATHER_BYTES: u64 = 1 << 20;
/// A steps segment is written when it holds this many bytes or rows (or its episode ends).
/// As small as the decoders' budget of unwritten rows (`message::tables`): at 16 MiB a
/// recording's steps stayed in memory until there were 16 MiB of them, so an ingest's
/// peak grew with the recording (2 GiB bag 49.5, 4 GiB 55 MiB; docs/BENCHMARKS.md,
/// ROS1 session 31).
const SEGMENT_BYTES: u64 = 2 << 20;
const SEGMENT_ROWS: usize = 64 * 1024;

/// Columns of the topic tables that are not message fields.
const TOPIC_META: [&str; 3] = ["file_id", "log_time", "ordinal"];
/// The first columns of `steps`; a source named like one gets a trailing `_`.
pub const STEP_COLUMNS: [&str; 7] = [
    "episode_id",
    "step_index",
    "timestamp",
    "is_first",
    "is_last",
    "is_terminal",
    "file_id",
];

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, None)
}

pub fn episodes_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("episode_id", DataType::Utf8, false),
        Field::new("file_id", DataType::Utf8, false),
        Field::new("start_time", ts(), false),
        Field::new("end_time", ts(), false),
        Field::new("duration_s", DataType::Float64, false),
        Field::new("num_steps", DataType::Int64, false),
        Field::new("episode_index", DataType::Int64, false),
        Field::new("main_topic", DataType::Utf8, true),
    ]))
}

/// One step column being built.
struct Source {
    name: String,
    topic: String,
    /// Top-level columns of the topic table read, and the path below the first.
    columns: Vec<String>,
    path: Vec<String>,
    data_type: DataType,
    /// The whole message (a struct of the topic's columns), not one field.
    whole: bool,
    /// The topic's blob columns this source reads (tagged in every batch it gathers),
    /// and where they are in the step column.
    blobs: Vec<BlobPath>,
    step_blobs: Vec<BlobPath>,
    matched: Vec<Option<u32>>,
    reader: SegmentCursor,
}

/// Reads a topic's segments on demand, keeping the last one read.
struct SegmentCursor {
    table: String,
    segments: Vec<SegmentMeta>,
    /// First row of each segment.
    starts: Vec<u64>,
    cache: Option<(usize, ArrayRef)>,
    row_bytes: u64,
}

impl SegmentCursor {
    fn new(table: &str, segments: &[SegmentMeta]) -> SegmentCursor {
        let mut starts = Vec::with_capacity(segments.len());
        let (mut rows, mut bytes) = (0u64, 0u64);
        for s in segments {
            starts.push(rows);
            rows += s.rows;
            bytes += s.bytes;
        }
        SegmentCursor {
            table: table.to_string(),
            segments: segments.to_vec(),
            starts,
            cache: None,
            row_bytes: bytes / rows.max(1),
        }
    }

    fn locate(&self, row: u32) -> (usize, usize) {
        let s = self.starts.partition_point(|st| *st <= row as u64) - 1;
        (s, (row as u64 - self.starts[s]) as usize)
    }
}

/// Sorted step times and the main topic they follow (None with a fixed fps).
type Clock = (Vec<i64>, Option<String>);

/// What went wrong, before it is given the file's name.
type Fail = String;

/// Builds the steps and episodes of one file from its decoded topics.
pub struct StepBuilder<'c> {
    cfg: &'c AlignConfig,
    file_id: String,
    topics: &'c BTreeMap<String, TopicData>,
    /// The stored `steps` table's schema: a default-named column whose type differs
    /// from a stored one of that name gets another name instead of failing the ingest.
    stored: Option<Schema>,
}

/// What `build` produced, to add to the working set.
pub struct Built {
    pub steps: Vec<SegmentMeta>,
    pub steps_schema: SchemaRef,
    pub episodes: RecordBatch,
    pub num_steps: usize,
}

impl<'c> StepBuilder<'c> {
    pub fn new(
        cfg: &'c AlignConfig,
        file_id: &str,
        topics: &'c BTreeMap<String, TopicData>,
    ) -> Self {
        StepBuilder {
            cfg,
            file_id: file_id.to_string(),
            topics,
            stored: None,
        }
    }

    pub fn with_stored(mut self, stored: Option<Schema>) -> Self {
        self.stored = stored;
        self
    }

    /// Whether a column `name` of type `dt` cannot join the stored steps rows.
    fn clashes(&self, name: &str, dt: &DataType) -> bool {
        let Some(f) = self
            .stored
            .as_ref()
            .and_then(|s| s.field_with_name(name).ok())
        else {
            return false;
        };
        let old = segment::encode_schema(&Arc::new(Schema::new(vec![f.clone()])));
        let new = segment::encode_schema(&Arc::new(Schema::new(vec![Field::new(
            name,
            dt.clone(),
            true,
        )])));
        segment::merge_schemas("steps", &old, &new).is_err()
    }

    fn topic(&self, what: &str, name: &str) -> Result<&'c TopicData, Fail> {
        match self.topics.get(name) {
            Some(t) if !t.times.is_empty() => Ok(t),
            Some(_) => Err(format!("{what} {name} has no decoded messages")),
            None => Err(format!(
                "{what} {name} is not in the file; its topics are: {}",
                self.topics.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// The main topic: configured, else the image topic with most messages, else the
    /// topic with most messages (ties: first by name).
    fn main_topic(&self) -> Result<Option<String>, Fail> {
        if self.cfg.fps.is_some() {
            return Ok(None);
        }
        if let Some(m) = &self.cfg.main_topic {
            self.topic("main topic", m)?;
            return Ok(Some(m.clone()));
        }
        let image = |t: &TopicData| {
            t.msg_type.ends_with("/Image") || t.msg_type.ends_with("/CompressedImage")
        };
        let best = |only_images: bool| {
            self.topics
                .iter()
                .filter(|(_, t)| !t.times.is_empty() && (!only_images || image(t)))
                .max_by(|a, b| a.1.times.len().cmp(&b.1.times.len()).then(b.0.cmp(a.0)))
                .map(|(n, _)| n.clone())
        };
        Ok(best(true).or_else(|| best(false)))
    }

    /// The step clock (sorted step times) and the main topic it follows.
    fn clock(&self) -> Result<Option<Clock>, Fail> {
        if let Some(fps) = self.cfg.fps {
            let all = self.topics.values().flat_map(|t| t.times.iter().copied());
            let (lo, hi) = all.fold((i64::MAX, i64::MIN), |(l, h), t| (l.min(t), h.max(t)));
            if lo > hi {
                return Ok(None);
            }
            return Ok(Some((align::clock_from_fps(lo, hi, fps)?, None)));
        }
        let Some(main) = self.main_topic()? else {
            return Ok(None);
        };
        let mut steps = self.topics[&main].times.clone();
        steps.sort_unstable();
        Ok(Some((steps, Some(main))))
    }

    /// Resolves the sources: listed in the config, else every topic whole.
    fn sources(&self, steps: &[i64]) -> Result<Vec<Source>, Fail> {
        let listed = self.cfg.listed_sources();
        let defaults = listed.is_empty();
        let wanted: Vec<SourceConfig> = if defaults {
            self.topics
                .iter()
                .filter(|(_, t)| !t.times.is_empty() && t.schema.fields().len() > TOPIC_META.len())
                .map(|(n, _)| SourceConfig {
                    topic: n.clone(),
                    ..Default::default()
                })
                .collect()
        } else {
            listed
        };
        let default_tol = align::period(steps);
        let mut out: Vec<Source> = Vec::new();
        for s in wanted {
            let t = self.topic("source topic", &s.topic)?;
            let mut name = s
                .name
                .clone()
                .unwrap_or_else(|| default_name(&s.topic, s.field.as_deref()));
            if STEP_COLUMNS.contains(&name.as_str()) {
                name.push('_');
            }
            if out.iter().any(|o| o.name == name) {
                if !defaults {
                    return Err(format!("two sources are named {name}"));
                }
                let mut k = 2;
                while out.iter().any(|o| o.name == format!("{name}_{k}")) {
                    k += 1;
                }
                name = format!("{name}_{k}");
            }
            let (columns, path, data_type) = resolve(&s.topic, &t.schema, s.field.as_deref())?;
            if defaults && self.clashes(&name, &data_type) {
                // Another recording's topic of the same name and another type.
                let base = name.clone();
                let mut k = 2;
                while self.clashes(&name, &data_type) || out.iter().any(|o| o.name == name) {
                    name = format!("{base}_{k}");
                    k += 1;
                }
            }
            if t.times.len() > u32::MAX as usize {
                return Err(format!("topic {} has more than 2^32 messages", s.topic));
            }
            let method = s.method.or(self.cfg.method).unwrap_or_default();
            let tol = s
                .tolerance_ms
                .or(self.cfg.tolerance_ms)
                .map(|ms| (ms * 1e6).round() as i64)
                .or(default_tol);
            let sorted = Sorted::new(&t.times);
            let matched = align::matches(steps, &sorted, method, tol);
            let blobs: Vec<BlobPath> = t
                .blobs
                .iter()
                .filter(|b| b.len() == 1 && columns.contains(&b[0]) && path.is_empty())
                .cloned()
                .collect();
            let step_blobs = blobs
                .iter()
                .map(|b| match s.field {
                    None => vec![name.clone(), b[0].clone()],
                    Some(_) => vec![name.clone()],
                })
                .collect();
            out.push(Source {
                blobs,
                step_blobs,
                reader: SegmentCursor::new(&s.topic, &t.segments),
                name,
                topic: s.topic.clone(),
                columns,
                path,
                data_type,
                whole: s.field.is_none(),
                matched,
            });
        }
        Ok(out)
    }

    /// Checks that every listed source has a message in every episode (a recording
    /// that lost a sensor should not silently train on NULLs).
    fn check_coverage(
        &self,
        sources: &[Source],
        steps: &[i64],
        eps: &[Range<usize>],
    ) -> Result<(), Fail> {
        if self.cfg.listed_sources().is_empty() {
            return Ok(());
        }
        for s in sources {
            for (k, r) in eps.iter().enumerate() {
                if s.matched[r.clone()].iter().all(Option::is_none) {
                    return Err(format!(
                        "source {} (topic {}) has no message matching any step of episode {k} ({} to {} ns); widen tolerance_ms or drop the source",
                        s.name, s.topic, steps[r.start], steps[r.end - 1]
                    ));
                }
            }
        }
        Ok(())
    }

    /// Episode index → whether its last step is terminal.
    fn terminal(
        &self,
        chunks: &ChunkWriter<'_>,
        nodes: &NodeWriter,
        steps: &[i64],
        eps: &[Range<usize>],
    ) -> Result<Vec<bool>, Fail> {
        let Some(tc) = &self.cfg.terminal else {
            return Ok(vec![false; eps.len()]);
        };
        let t = self.topic("terminal topic", &tc.topic)?;
        let truthy: Vec<bool> = match &tc.field {
            None => vec![true; t.times.len()],
            Some(f) => {
                let (columns, path, _) = resolve(&tc.topic, &t.schema, Some(f))?;
                let mut out = Vec::with_capacity(t.times.len());
                for seg in &t.segments {
                    let cols: Vec<&str> = columns.iter().map(String::as_str).collect();
                    let b = rows::read_segment(chunks.store(), Some(nodes), &tc.topic, seg, &cols)
                        .map_err(|e| e.to_string())?;
                    let a = project(&b, &columns, &path, false)?;
                    let a =
                        datafusion::arrow::compute::cast(&a, &DataType::Boolean).map_err(|_| {
                            format!(
                                "terminal field {f} of {} is not a boolean or number",
                                tc.topic
                            )
                        })?;
                    let a = a.as_boolean();
                    out.extend((0..a.len()).map(|i| a.is_valid(i) && a.value(i)));
                }
                out
            }
        };
        Ok(eps
            .iter()
            .map(|r| {
                // From the episode's first step to the next episode's first step.
                let lo = steps[r.start];
                let hi = steps.get(r.end).map_or(i64::MAX, |t| t - 1);
                t.times
                    .iter()
                    .zip(&truthy)
                    .any(|(t, b)| *b && *t >= lo && *t <= hi)
            })
            .collect())
    }

    pub fn build(
        &self,
        chunks: &mut ChunkWriter<'_>,
        nodes: &mut NodeWriter,
    ) -> Result<Option<Built>, Fail> {
        let Some((steps, main)) = self.clock()? else {
            return Ok(None);
        };
        let gap = self.cfg.episodes.gap_s.map(|g| (g * 1e9) as i64);
        let events = match &self.cfg.episodes.event_topic {
            Some(e) => self.topic("episode event topic", e)?.times.clone(),
            None => vec![],
        };
        let eps = align::split(&steps, gap, &events);
        let mut sources = self.sources(&steps)?;
        self.check_coverage(&sources, &steps, &eps)?;
        // Seal what this ingest wrote so far: the topic segments are read back below.
        chunks.finish().map_err(|e| e.to_string())?;
        let terminal = self.terminal(chunks, nodes, &steps, &eps)?;
        let mut fields: Vec<Field> = vec![
            Field::new("episode_id", DataType::Utf8, false),
            Field::new("step_index", DataType::Int64, false),
            Field::new("timestamp", ts(), false),
            Field::new("is_first", DataType::Boolean, false),
            Field::new("is_last", DataType::Boolean, false),
            Field::new("is_terminal", DataType::Boolean, false),
            Field::new("file_id", DataType::Utf8, false),
        ];
        fields.extend(
            sources
                .iter()
                .map(|s| Field::new(&s.name, s.data_type.clone(), true)),
        );
        let schema = Arc::new(Schema::new(fields));
        let blobs: Vec<BlobPath> = sources.iter().flat_map(|s| s.step_blobs.clone()).collect();
        let row_bytes: u64 = 16 + sources.iter().map(|s| s.reader.row_bytes).sum::<u64>();
        let gather = ((GATHER_BYTES / row_bytes.max(1)) as usize).clamp(1, GATHER_ROWS);
        let mut segs = Vec::new();
        let mut ep_rows = EpisodeRows::default();
        for (k, r) in eps.iter().enumerate() {
            let episode_id = format!("{}-{k}", self.file_id);
            let mut pending: Vec<RecordBatch> = Vec::new();
            let (mut p_rows, mut p_bytes) = (0usize, 0u64);
            let mut at = r.start;
            while at < r.end {
                let end = run_end(&sources, at, (at + gather).min(r.end));
                let b = self.gather(
                    &schema,
                    &mut sources,
                    &steps,
                    &episode_id,
                    r,
                    at..end,
                    terminal[k],
                    (chunks, nodes),
                )?;
                p_rows += b.num_rows();
                p_bytes += b.get_array_memory_size() as u64;
                pending.push(b);
                at = end;
                if at == r.end || p_rows >= SEGMENT_ROWS || p_bytes >= SEGMENT_BYTES {
                    segs.push(write(chunks, nodes, &schema, &pending, &blobs)?);
                    pending.clear();
                    (p_rows, p_bytes) = (0, 0);
                }
            }
            ep_rows.push(
                &episode_id,
                &self.file_id,
                &steps[r.clone()],
                k,
                main.as_deref(),
            );
        }
        Ok(Some(Built {
            steps: segs,
            steps_schema: schema,
            episodes: ep_rows.finish(),
            num_steps: steps.len(),
        }))
    }

    #[allow(clippy::too_many_arguments)]
    fn gather(
        &self,
        schema: &SchemaRef,
        sources: &mut [Source],
        steps: &[i64],
        episode_id: &str,
        ep: &Range<usize>,
        rows: Range<usize>,
        terminal: bool,
        read: (&ChunkWriter<'_>, &NodeWriter),
    ) -> Result<RecordBatch, Fail> {
        let n = rows.len();
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                episode_id, n,
            ))),
            Arc::new(Int64Array::from_iter_values(
                rows.clone().map(|i| (i - ep.start) as i64),
            )),
            Arc::new(TimestampNanosecondArray::from_iter_values(
                steps[rows.clone()].iter().copied(),
            )),
            Arc::new(BooleanArray::from_iter(
                rows.clone().map(|i| Some(i == ep.start)),
            )),
            Arc::new(BooleanArray::from_iter(
                rows.clone().map(|i| Some(i + 1 == ep.end)),
            )),
            Arc::new(BooleanArray::from_iter(
                rows.clone().map(|i| Some(terminal && i + 1 == ep.end)),
            )),
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                self.file_id.as_str(),
                n,
            ))),
        ];
        for s in sources.iter_mut() {
            cols.push(gather_source(s, &rows, read.0, read.1)?);
        }
        RecordBatch::try_new(Arc::clone(schema), cols).map_err(|e| format!("steps batch: {e}"))
    }
}

/// The end (at most `limit`) of the steps from `at` whose messages lie in one segment
/// of each source, so that a batch loads one segment per source. Before, a batch of up
/// to 16 k steps loaded every segment its steps touched: a 200 Hz topic behind 30 Hz
/// steps meant the whole topic of a long recording (docs/BENCHMARKS.md, ROS1 session
/// 28).
fn run_end(sources: &[Source], at: usize, limit: usize) -> usize {
    let mut seg: Vec<Option<usize>> = vec![None; sources.len()];
    for i in at..limit {
        for (s, cur) in sources.iter().zip(seg.iter_mut()) {
            let Some(row) = s.matched[i] else { continue };
            let here = s.reader.locate(row).0;
            match cur {
                None => *cur = Some(here),
                Some(c) if *c != here => return i.max(at + 1),
                Some(_) => {}
            }
        }
    }
    limit
}

/// The values of one source for steps `rows`, NULL where no message matched.
fn gather_source(
    s: &mut Source,
    rows: &Range<usize>,
    chunks: &ChunkWriter<'_>,
    nodes: &NodeWriter,
) -> Result<ArrayRef, Fail> {
    let want = &s.matched[rows.clone()];
    // Load the segments this batch needs (one, as `run_end` cuts batches).
    let mut needed: Vec<usize> = want
        .iter()
        .flatten()
        .map(|r| s.reader.locate(*r).0)
        .collect();
    needed.sort_unstable();
    needed.dedup();
    let mut arrays: Vec<(usize, ArrayRef)> = Vec::new();
    for seg in needed {
        if let Some(hit) = s.reader.cache.as_ref().filter(|c| c.0 == seg) {
            arrays.push(hit.clone());
            continue;
        }
        let cols: Vec<&str> = s.columns.iter().map(String::as_str).collect();
        let meta = &s.reader.segments[seg];
        let b = rows::read_segment(chunks.store(), Some(nodes), &s.reader.table, meta, &cols)
            .map_err(|e| e.to_string())?;
        // Values are copied as stored; a segment that holds a blob column plain (no
        // value referred to the file) is tagged like the others.
        let plain: Vec<BlobPath> = s
            .blobs
            .iter()
            .filter(|p| !meta.blobs.contains(p))
            .cloned()
            .collect();
        let b =
            blob::map_batch(&b, &plain, &mut |a| Ok(blob::tag(a))).map_err(|e| e.to_string())?;
        let a = project(&b, &s.columns, &s.path, s.whole)?;
        s.reader.cache = Some((seg, Arc::clone(&a)));
        arrays.push((seg, a));
    }
    let null = new_null_array(&s.data_type, 1);
    let mut refs: Vec<&dyn Array> = arrays.iter().map(|a| a.1.as_ref()).collect();
    refs.push(null.as_ref());
    let idx: Vec<(usize, usize)> = want
        .iter()
        .map(|m| match m {
            Some(r) => {
                let (seg, row) = s.reader.locate(*r);
                (arrays.iter().position(|a| a.0 == seg).expect("loaded"), row)
            }
            None => (arrays.len(), 0),
        })
        .collect();
    interleave(&refs, &idx).map_err(|e| format!("source {}: {e}", s.name))
}

/// The source's value column out of a projected segment batch.
/// `whole`: the source is the message, a struct of every column read.
fn project(
    b: &RecordBatch,
    columns: &[String],
    path: &[String],
    whole: bool,
) -> Result<ArrayRef, Fail> {
    if whole {
        let fields: Vec<Field> = columns
            .iter()
            .map(|c| b.schema().field_with_name(c).cloned())
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let arrays: Vec<ArrayRef> = columns
            .iter()
            .map(|c| Arc::clone(b.column_by_name(c).expect("projected")))
            .collect();
        let s =
            StructArray::try_new(Fields::from(fields), arrays, None).map_err(|e| e.to_string())?;
        return Ok(Arc::new(s));
    }
    let mut a = Arc::clone(
        b.column_by_name(&columns[0])
            .ok_or_else(|| format!("column {} missing from a segment", columns[0]))?,
    );
    for p in path {
        let s = a
            .as_struct_opt()
            .ok_or_else(|| format!("{p} is below a field that is not a message"))?;
        a = Arc::clone(
            s.column_by_name(p)
                .ok_or_else(|| format!("field {p} missing from a segment"))?,
        );
    }
    Ok(a)
}

/// The topic columns, the path inside the first, and the type a source yields.
fn resolve(
    topic: &str,
    schema: &Schema,
    field: Option<&str>,
) -> Result<(Vec<String>, Vec<String>, DataType), Fail> {
    let msg_fields: Vec<&Field> = schema
        .fields()
        .iter()
        .filter(|f| !TOPIC_META.contains(&f.name().as_str()))
        .map(|f| f.as_ref())
        .collect();
    let names = |fs: &[&Field]| {
        fs.iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(field) = field else {
        let fields: Vec<Field> = msg_fields.iter().map(|f| (*f).clone()).collect();
        let columns = fields.iter().map(|f| f.name().clone()).collect();
        return Ok((columns, vec![], DataType::Struct(Fields::from(fields))));
    };
    let mut parts = field.split('.');
    let first = parts.next().unwrap_or_default();
    let top = msg_fields
        .iter()
        .find(|f| f.name() == first)
        .ok_or_else(|| {
            format!(
                "topic {topic} has no field {first}; its fields are: {}",
                names(&msg_fields)
            )
        })?;
    let mut dt = top.data_type().clone();
    let mut path = Vec::new();
    for p in parts {
        let DataType::Struct(children) = &dt else {
            return Err(format!(
                "field {field} of topic {topic}: {p} is below a field that is not a message"
            ));
        };
        let Some(c) = children.iter().find(|c| c.name() == p) else {
            let list: Vec<&Field> = children.iter().map(|c| c.as_ref()).collect();
            return Err(format!(
                "field {field} of topic {topic}: no {p}; there are: {}",
                names(&list)
            ));
        };
        dt = c.data_type().clone();
        path.push(p.to_string());
    }
    Ok((vec![first.to_string()], path, dt))
}

fn write(
    chunks: &mut ChunkWriter<'_>,
    nodes: &mut NodeWriter,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    blobs: &[BlobPath],
) -> Result<SegmentMeta, Fail> {
    let kv = chunks.kv();
    let meta = segment::write_segment_blobs("steps", chunks, nodes, kv, schema, batches, blobs)
        .map_err(|e| e.to_string());
    // The encoding buffers just freed, as after a topic segment (`message::write`).
    crate::store::pool::release_freed_memory();
    meta
}

/// `episodes` rows being built (shared with decoders that make episodes without topics).
#[derive(Default)]
pub struct EpisodeRows {
    id: Vec<String>,
    file: Vec<String>,
    start: Vec<i64>,
    end: Vec<i64>,
    steps: Vec<i64>,
    index: Vec<i64>,
    main: Vec<Option<String>>,
}

impl EpisodeRows {
    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    /// One episode whose steps are at `steps` (not empty).
    pub fn push(&mut self, id: &str, file: &str, steps: &[i64], k: usize, main: Option<&str>) {
        self.id.push(id.into());
        self.file.push(file.into());
        self.start.push(steps[0]);
        self.end.push(steps[steps.len() - 1]);
        self.steps.push(steps.len() as i64);
        self.index.push(k as i64);
        self.main.push(main.map(str::to_string));
    }

    pub fn finish(self) -> RecordBatch {
        let dur: Vec<f64> = self
            .start
            .iter()
            .zip(&self.end)
            .map(|(s, e)| (e - s) as f64 / 1e9)
            .collect();
        RecordBatch::try_new(
            episodes_schema(),
            vec![
                Arc::new(StringArray::from(self.id)),
                Arc::new(StringArray::from(self.file)),
                Arc::new(TimestampNanosecondArray::from(self.start)),
                Arc::new(TimestampNanosecondArray::from(self.end)),
                Arc::new(Float64Array::from(dur)),
                Arc::new(Int64Array::from(self.steps)),
                Arc::new(Int64Array::from(self.index)),
                Arc::new(StringArray::from(self.main)),
            ],
        )
        .expect("columns follow the schema")
    }
}
