//! Points → rows of one table per measurement, written into a working-set edit.
//! Columns: `time`, one text column per tag key, one typed column per field key; new
//! keys add nullable columns. A line whose field type differs from the table's (or an
//! earlier line's) is refused, naming line and field, and the other lines are kept.
//! A point with the measurement, tag set and time of one already stored or written
//! earlier replaces it, its fields merged over the old ones (InfluxDB's rule).

use super::parse::{parse_line, FieldValue, Point};
use super::points::Rows;
use crate::store::ChunkWriter;
use crate::version::manifest::{SegmentMeta, StatValue, TableNode};
use crate::version::{rows, segment, VersionError, WorkingEdit};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampNanosecondArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Tables that are not measurements.
pub const RESERVED: &[&str] = &[
    "files",
    "topics",
    "messages",
    "episodes",
    "steps",
    "versions",
    "refs",
    "lineage_edges",
    "experiments",
    "models",
    "storage",
];

/// Lines per request or file we accept errors for before giving up listing them.
const MAX_ERRORS: usize = 1000;

/// The unit of the timestamps written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
    Minutes,
    Hours,
}

impl Precision {
    /// v2 names (`ns us ms s`) and v1's (`n u ms s m h`).
    pub fn parse(s: &str) -> Option<Precision> {
        Some(match s {
            "" | "ns" | "n" => Precision::Nanoseconds,
            "us" | "u" | "µ" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            "m" => Precision::Minutes,
            "h" => Precision::Hours,
            _ => return None,
        })
    }

    fn nanos(self) -> i64 {
        match self {
            Precision::Nanoseconds => 1,
            Precision::Microseconds => 1_000,
            Precision::Milliseconds => 1_000_000,
            Precision::Seconds => 1_000_000_000,
            Precision::Minutes => 60_000_000_000,
            Precision::Hours => 3_600_000_000_000,
        }
    }
}

/// A refused line: its number (1-based) and why.
#[derive(Clone, Debug, PartialEq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// What a write did.
#[derive(Debug, Default)]
pub struct Written {
    /// Points stored (after duplicates within the write were merged).
    pub points: u64,
    /// Lines refused, in order (at most `MAX_ERRORS`), and how many in all.
    pub errors: Vec<LineError>,
    pub refused: usize,
    pub tables: Vec<String>,
}

/// The column type of a field type.
fn column_type(v: &FieldValue) -> DataType {
    match v {
        FieldValue::Float(_) => DataType::Float64,
        FieldValue::Int(_) => DataType::Int64,
        FieldValue::UInt(_) => DataType::UInt64,
        FieldValue::Bool(_) => DataType::Boolean,
        FieldValue::Str(_) => DataType::Utf8,
    }
}

fn type_name(t: &DataType) -> &'static str {
    match t {
        DataType::Float64 => "float",
        DataType::Int64 => "integer",
        DataType::UInt64 => "unsigned",
        DataType::Boolean => "boolean",
        _ => "string",
    }
}

/// What is known of one measurement's table: column types and which columns are tags.
#[derive(Default)]
struct Shape {
    types: HashMap<String, DataType>,
    tags: Vec<String>,
    fields: Vec<String>,
}

/// A tag set: (key, value) sorted by key.
pub type TagSet = Vec<(String, String)>;

fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, None)
}

/// Whether `table` is a measurement table (its key starts with `time`).
pub fn is_measurement(node: &TableNode) -> bool {
    node.key.first().is_some_and(|k| k == "time")
}

fn shape_of(edit: &mut WorkingEdit<'_>, table: &str) -> Result<Option<Shape>, String> {
    let node = match edit.root.table(table) {
        Ok(Some(n)) => n.clone(),
        Ok(None) => return Ok(Some(Shape::default())),
        Err(e) => return Err(e.to_string()),
    };
    if !is_measurement(&node) {
        return Ok(None);
    }
    let schema = segment::decode_schema(table, &node.schema).map_err(|e| e.to_string())?;
    let mut shape = Shape::default();
    for f in schema.fields() {
        shape.types.insert(f.name().clone(), f.data_type().clone());
        if node.key.contains(f.name()) {
            if f.name() != "time" {
                shape.tags.push(f.name().clone());
            }
        } else {
            shape.fields.push(f.name().clone());
        }
    }
    Ok(Some(shape))
}

/// Points of one or more texts, checked and merged but not stored yet. `add` parses a
/// text and checks its lines against the tables and the texts added before it; `store`
/// writes every measurement once (one segment each), refreshes rollups and compacts.
/// The HTTP committer adds every request of a group, so a group makes one segment per
/// measurement however many requests it holds.
#[derive(Default)]
pub struct Pending {
    shapes: BTreeMap<String, Option<Shape>>,
    data: BTreeMap<String, Rows>,
    texts: u32,
}

impl Pending {
    /// Parses `text` and adds its points (`parse_text`, then `add_parsed`).
    pub fn add(
        &mut self,
        edit: &mut WorkingEdit<'_>,
        text: &str,
        first_line: usize,
        precision: Precision,
        now: i64,
    ) -> Result<Written, crate::Error> {
        self.add_parsed(edit, parse_text(text, first_line, precision, now))
    }

    /// Checks the points of a parsed text against the tables and the texts added
    /// before it, and adds those that fit. An error of the store stops the write.
    pub fn add_parsed(
        &mut self,
        edit: &mut WorkingEdit<'_>,
        parsed: Parsed,
    ) -> Result<Written, crate::Error> {
        let job = self.texts;
        self.texts += 1;
        let mut out = Written {
            errors: parsed.errors,
            refused: parsed.refused,
            ..Written::default()
        };
        let mut unsorted = false;
        for (line_no, p, time) in parsed.points {
            if !self.shapes.contains_key(&p.measurement) {
                let s = shape_of(edit, &p.measurement).map_err(|detail| VersionError::Table {
                    table: p.measurement.clone(),
                    detail,
                })?;
                self.shapes.insert(p.measurement.clone(), s);
            }
            let refusal = match self.shapes.get_mut(&p.measurement) {
                Some(Some(shape)) => check(shape, &p).inspect(|_| admit(shape, &p)).err(),
                _ => Some(format!(
                    "measurement \"{}\" is the name of a table that is not a measurement",
                    p.measurement
                )),
            };
            if let Some(message) = refusal {
                out.refused += 1;
                unsorted = true;
                out.errors.push(LineError {
                    line: line_no,
                    message,
                });
                continue;
            }
            if !out.tables.contains(&p.measurement) {
                out.tables.push(p.measurement.clone());
            }
            let rows = self.data.entry(p.measurement).or_default();
            if rows.merge(p.tags, time, p.fields, job) {
                out.points += 1;
            }
        }
        if unsorted {
            out.errors.sort_by_key(|e| e.line);
            out.errors.truncate(MAX_ERRORS);
        }
        Ok(out)
    }

    /// Stores every point added: one segment per measurement, replacing stored points
    /// of the same series and time; then refreshes rollups and compacts what grew.
    /// Returns the points stored.
    pub fn store(
        self,
        edit: &mut WorkingEdit<'_>,
        chunks: &mut ChunkWriter<'_>,
    ) -> Result<u64, crate::Error> {
        let rules = super::downsample::list(chunks.kv())?;
        let mut stored = 0;
        for (table, rows) in self.data {
            let Some(Some(shape)) = self.shapes.get(&table) else {
                continue;
            };
            let (lo, hi) = rows.time_range();
            stored += store_rows(edit, chunks, &table, shape, rows)?;
            super::compact::compact(edit, chunks, &table)?;
            for rule in rules.iter().filter(|r| r.source == table) {
                super::downsample::refresh(edit, chunks, rule, lo, hi)?;
                super::compact::compact(edit, chunks, &rule.target)?;
            }
        }
        Ok(stored)
    }
}

/// A text parsed line by line, before any table is looked at (the HTTP server does
/// this in the request's own task, off the committer): each point with its line number
/// and its time in ns, and the lines refused.
#[derive(Debug, Default)]
pub struct Parsed {
    pub points: Vec<(usize, Point, i64)>,
    pub errors: Vec<LineError>,
    pub refused: usize,
}

/// Parses `text`, whose first line is line `first_line`; `now` (ns) stamps points
/// without a timestamp. Refuses lines that do not parse, whose timestamp overflows at
/// `precision`, or whose measurement is a bagbase table.
pub fn parse_text(text: &str, first_line: usize, precision: Precision, now: i64) -> Parsed {
    let mut out = Parsed::default();
    let refuse = |out: &mut Parsed, line: usize, message: String| {
        out.refused += 1;
        if out.errors.len() < MAX_ERRORS {
            out.errors.push(LineError { line, message });
        }
    };
    for (i, raw) in text.split('\n').enumerate() {
        let line_no = first_line + i;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let p = match parse_line(trimmed) {
            Ok(p) => p,
            Err(e) => {
                let col = e.column + (line.len() - trimmed.len());
                refuse(&mut out, line_no, format!("column {col}: {}", e.message));
                continue;
            }
        };
        let time = match p.timestamp {
            None => now,
            Some(t) => match t.checked_mul(precision.nanos()) {
                Some(t) => t,
                None => {
                    refuse(
                        &mut out,
                        line_no,
                        format!("timestamp {t} is out of range for this precision"),
                    );
                    continue;
                }
            },
        };
        if RESERVED.contains(&p.measurement.as_str()) {
            let m = &p.measurement;
            refuse(
                &mut out,
                line_no,
                format!("measurement \"{m}\" is the name of a bagbase table"),
            );
            continue;
        }
        out.points.push((line_no, p, time));
    }
    out
}

/// Parses `text` and writes its points into `edit` (`Pending` for one text).
pub fn write_text(
    edit: &mut WorkingEdit<'_>,
    chunks: &mut ChunkWriter<'_>,
    text: &str,
    first_line: usize,
    precision: Precision,
    now: i64,
) -> Result<Written, crate::Error> {
    let mut p = Pending::default();
    let w = p.add(edit, text, first_line, precision, now)?;
    p.store(edit, chunks)?;
    Ok(w)
}

/// Writes computed points (a rollup) into `table`, replacing points of the same tag set
/// and time; fields whose type clashes with the table are left out.
pub fn write_points(
    edit: &mut WorkingEdit<'_>,
    chunks: &mut ChunkWriter<'_>,
    table: &str,
    points: Vec<(TagSet, i64, BTreeMap<String, FieldValue>)>,
) -> Result<u64, crate::Error> {
    if points.is_empty() {
        return Ok(0);
    }
    let Some(mut shape) = shape_of(edit, table).map_err(|detail| VersionError::Table {
        table: table.into(),
        detail,
    })?
    else {
        return Err(VersionError::Table {
            table: table.into(),
            detail: "is not a measurement table".into(),
        }
        .into());
    };
    let mut rows = Rows::default();
    for (tags, time, mut fields) in points {
        fields.retain(|k, v| shape.types.get(k).is_none_or(|t| *t == column_type(v)));
        let p = Point {
            measurement: table.to_string(),
            tags,
            fields: fields.into_iter().collect(),
            timestamp: Some(time),
        };
        admit(&mut shape, &p);
        rows.merge(p.tags, time, p.fields, 0);
    }
    store_rows(edit, chunks, table, &shape, rows)
}

/// Refuses a line whose keys or types clash with the table (or earlier lines).
fn check(shape: &Shape, p: &Point) -> Result<(), String> {
    let m = &p.measurement;
    for (k, _) in &p.tags {
        if k == "time" {
            return Err("tag key \"time\" is reserved for the timestamp".into());
        }
        if shape.fields.contains(k) {
            return Err(format!(
                "tag key \"{k}\" on measurement \"{m}\" is already a field key"
            ));
        }
    }
    for (k, v) in &p.fields {
        if k == "time" {
            return Err("field key \"time\" is reserved for the timestamp".into());
        }
        if shape.tags.contains(k) {
            return Err(format!(
                "field key \"{k}\" on measurement \"{m}\" is already a tag key"
            ));
        }
        if let Some(have) = shape.types.get(k) {
            if *have != column_type(v) {
                return Err(format!(
                    "field type conflict: input field \"{k}\" on measurement \"{m}\" is type {}, already exists as type {}",
                    v.type_name(),
                    type_name(have)
                ));
            }
        }
    }
    Ok(())
}

fn admit(shape: &mut Shape, p: &Point) {
    for (k, _) in &p.tags {
        if !shape.tags.contains(k) {
            shape.tags.push(k.clone());
            shape.types.insert(k.clone(), DataType::Utf8);
        }
    }
    for (k, v) in &p.fields {
        if !shape.fields.contains(k) {
            shape.fields.push(k.clone());
            shape.types.insert(k.clone(), column_type(v));
        }
    }
}

/// A stored segment's time range, from its statistics (None when it has none).
pub(super) fn segment_times(seg: &SegmentMeta) -> Option<(i64, i64)> {
    match seg.stats.get("time").map(|c| (&c.min, &c.max)) {
        Some((Some(StatValue::Int(lo)), Some(StatValue::Int(hi)))) => Some((*lo, *hi)),
        _ => None,
    }
}

/// Every column of `seg`, a segment of measurement `table` in the edited working set.
/// Seals the open pack first: the segment may have been written earlier in this edit.
pub(super) fn read_stored(
    edit: &WorkingEdit<'_>,
    chunks: &mut ChunkWriter<'_>,
    table: &str,
    node: &TableNode,
    seg: &SegmentMeta,
) -> Result<RecordBatch, crate::Error> {
    let schema = segment::decode_schema(table, &node.schema)?;
    let cols: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    read_stored_columns(edit, chunks, table, seg, &cols)
}

/// The `cols` of `seg` (those it has), as `read_stored`.
fn read_stored_columns(
    edit: &WorkingEdit<'_>,
    chunks: &mut ChunkWriter<'_>,
    table: &str,
    seg: &SegmentMeta,
    cols: &[&str],
) -> Result<RecordBatch, crate::Error> {
    chunks.finish()?;
    Ok(rows::read_segment(
        chunks.store(),
        Some(&edit.nodes),
        table,
        seg,
        cols,
    )?)
}

/// What the new points of a write are, to find the stored points they replace cheaply:
/// their times, and per stored tag key the range of their values when every new point
/// has that tag (a segment whose values lie outside, or that lacks the tag, holds none
/// of their series).
struct Probe {
    times: HashSet<i64>,
    ranges: Vec<(String, Option<(String, String)>)>,
}

impl Probe {
    fn new(rows: &Rows, tags: &[String]) -> Probe {
        let times = rows.times.iter().copied().collect();
        let ranges = tags
            .iter()
            .map(|k| {
                let mut range: Option<(&str, &str)> = None;
                for set in &rows.tagsets {
                    let Some((_, v)) = set.iter().find(|(t, _)| t == k) else {
                        return (k.clone(), None);
                    };
                    let v = v.as_str();
                    range = Some(match range {
                        None => (v, v),
                        Some((lo, hi)) => (lo.min(v), hi.max(v)),
                    });
                }
                (
                    k.clone(),
                    range.map(|(a, b)| (a.to_string(), b.to_string())),
                )
            })
            .collect();
        Probe { times, ranges }
    }

    /// True when no row of `seg` can be the series of a new point.
    fn excludes(&self, seg: &SegmentMeta) -> bool {
        self.ranges.iter().any(|(k, range)| {
            let Some((lo, hi)) = range else {
                return false;
            };
            match seg.stats.get(k) {
                // The segment lacks the tag; every new point has it.
                None => true,
                Some(c) => match (&c.min, &c.max) {
                    (Some(StatValue::Str(min)), Some(StatValue::Str(max))) => hi < min || lo > max,
                    (None, None) => c.nulls == seg.rows,
                    _ => false,
                },
            }
        })
    }

    /// (stored row, new row) for every stored point a new one replaces; `keys` holds
    /// the segment's time and tag columns.
    fn hits(&self, keys: &RecordBatch, tags: &[String], rows: &Rows) -> Vec<(usize, usize)> {
        let Some(time) = keys.column_by_name("time").and_then(|t| {
            t.as_primitive_opt::<datafusion::arrow::datatypes::TimestampNanosecondType>()
        }) else {
            return Vec::new();
        };
        let tag_cols = TagColumns::new(keys, tags);
        (0..keys.num_rows())
            .filter(|&i| self.times.contains(&time.value(i)))
            .filter_map(|i| Some((i, rows.find(&tag_cols.set(i), time.value(i))?)))
            .collect()
    }
}

/// The tag columns a stored batch has, to take each row's tag set.
pub(super) struct TagColumns<'a>(Vec<(&'a String, &'a StringArray)>);

impl<'a> TagColumns<'a> {
    pub(super) fn new(b: &'a RecordBatch, tags: &'a [String]) -> TagColumns<'a> {
        TagColumns(
            tags.iter()
                .filter_map(|t| Some((t, b.column_by_name(t)?.as_string_opt::<i32>()?)))
                .collect(),
        )
    }

    /// Row `i`'s non-null tags, by key.
    pub(super) fn set(&self, i: usize) -> TagSet {
        let mut set: TagSet = self
            .0
            .iter()
            .filter(|(_, c)| c.is_valid(i))
            .map(|(k, c)| ((*k).clone(), c.value(i).to_string()))
            .collect();
        set.sort();
        set
    }
}

/// The field value at row `i` of column `c`, as the field type it was written with.
fn stored_value(c: &ArrayRef, i: usize) -> Option<FieldValue> {
    if c.is_null(i) {
        return None;
    }
    Some(match c.data_type() {
        DataType::Float64 => FieldValue::Float(
            c.as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                .value(i),
        ),
        DataType::Int64 => FieldValue::Int(
            c.as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(i),
        ),
        DataType::UInt64 => FieldValue::UInt(
            c.as_primitive::<datafusion::arrow::datatypes::UInt64Type>()
                .value(i),
        ),
        DataType::Boolean => FieldValue::Bool(c.as_boolean().value(i)),
        DataType::Utf8 => FieldValue::Str(c.as_string::<i32>().value(i).to_string()),
        _ => return None,
    })
}

/// Merges stored points that the new ones overwrite into them and rewrites (or drops)
/// the stored segments that held them; then writes the new rows as one segment.
fn store_rows(
    edit: &mut WorkingEdit<'_>,
    chunks: &mut ChunkWriter<'_>,
    table: &str,
    shape: &Shape,
    mut rows: Rows,
) -> Result<u64, crate::Error> {
    let (lo, hi) = rows.time_range();
    let node = edit.root.table(table)?.cloned();
    let mut kept: Vec<SegmentMeta> = Vec::new();
    let mut rewritten: Vec<(SegmentMeta, Option<RecordBatch>)> = Vec::new();
    if let Some(node) = &node {
        let tags: Vec<String> = node.key.iter().filter(|k| *k != "time").cloned().collect();
        let probe = Probe::new(&rows, &tags);
        let mut key_cols: Vec<&str> = vec!["time"];
        key_cols.extend(tags.iter().map(String::as_str));
        for seg in &node.segments {
            let overlaps = segment_times(seg).is_none_or(|(min, max)| min <= hi && max >= lo);
            if !overlaps || probe.excludes(seg) {
                kept.push(seg.clone());
                continue;
            }
            // Which stored points do new ones replace? Time and tags tell; the other
            // columns are read only when some do.
            let keys = read_stored_columns(edit, chunks, table, seg, &key_cols)?;
            let hits = probe.hits(&keys, &tags, &rows);
            if hits.is_empty() {
                kept.push(seg.clone());
                continue;
            }
            let b = read_stored(edit, chunks, table, node, seg)?;
            let mut keep = vec![true; b.num_rows()];
            for (i, r) in hits {
                keep[i] = false;
                for f in &shape.fields {
                    if rows.get(r, f).is_some() {
                        continue;
                    }
                    if let Some(v) = b.column_by_name(f).and_then(|c| stored_value(c, i)) {
                        rows.fill(r, f, v);
                    }
                }
            }
            if keep.iter().all(|k| *k) {
                kept.push(seg.clone());
            } else if keep.iter().any(|k| *k) {
                let mask = BooleanArray::from(keep);
                let rest =
                    datafusion::arrow::compute::filter_record_batch(&b, &mask).map_err(|e| {
                        VersionError::Table {
                            table: table.into(),
                            detail: e.to_string(),
                        }
                    })?;
                rewritten.push((seg.clone(), Some(rest)));
            } else {
                rewritten.push((seg.clone(), None));
            }
        }
    }
    let batch = build_batch(table, shape, &rows)?;
    let n = batch.num_rows() as u64;
    let mut segments = kept;
    for (_, rest) in rewritten {
        if let Some(rest) = rest {
            segments.push(write_batch(edit, chunks, table, rest)?);
        }
    }
    let schema = batch.schema();
    let seg = write_batch(edit, chunks, table, batch)?;
    let mut key = vec!["time".to_string()];
    key.extend(shape.tags.iter().cloned());
    if let Some(mut node) = node {
        node.segments = segments;
        edit.root.put_table(table, node);
    }
    edit.root
        .add_segments(table, segment::encode_schema(&schema), key, vec![seg])?;
    Ok(n)
}

/// Writes `batch` as one segment of `table` (with the batch's own schema).
pub(super) fn write_batch(
    edit: &mut WorkingEdit<'_>,
    chunks: &mut ChunkWriter<'_>,
    table: &str,
    batch: RecordBatch,
) -> Result<SegmentMeta, crate::Error> {
    let kv = chunks.kv();
    let schema = batch.schema();
    Ok(segment::write_segment(
        table,
        chunks,
        &mut edit.nodes,
        kv,
        &schema,
        &[batch],
    )?)
}

/// The rows as one batch sorted by time: `time`, tags (by key), fields (by key).
fn build_batch(table: &str, shape: &Shape, rows: &Rows) -> Result<RecordBatch, VersionError> {
    let order = rows.order();
    let mut tags: Vec<&String> = shape
        .tags
        .iter()
        .filter(|t| rows.tagsets.iter().any(|s| s.iter().any(|(k, _)| k == *t)))
        .collect();
    tags.sort();
    let mut fields: Vec<(&String, &[Option<FieldValue>])> = shape
        .fields
        .iter()
        .filter_map(|f| Some((f, rows.column(f)?)))
        .collect();
    fields.sort_by_key(|(f, _)| *f);
    let mut columns: Vec<Field> = vec![Field::new("time", time_type(), false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(TimestampNanosecondArray::from_iter_values(
        order.iter().map(|&r| rows.times[r]),
    ))];
    for t in &tags {
        let values: Vec<Option<&str>> = rows
            .tagsets
            .iter()
            .map(|s| s.iter().find(|(k, _)| k == *t).map(|(_, v)| v.as_str()))
            .collect();
        columns.push(Field::new(t.as_str(), DataType::Utf8, true));
        arrays.push(Arc::new(StringArray::from_iter(
            order.iter().map(|&r| values[rows.series_of[r] as usize]),
        )));
    }
    for (f, col) in &fields {
        let ty = shape.types.get(*f).cloned().unwrap_or(DataType::Utf8);
        let values = order.iter().map(|&r| col[r].as_ref());
        let a: ArrayRef = match ty {
            DataType::Float64 => Arc::new(Float64Array::from_iter(values.map(|v| match v {
                Some(FieldValue::Float(x)) => Some(*x),
                _ => None,
            }))),
            DataType::Int64 => Arc::new(Int64Array::from_iter(values.map(|v| match v {
                Some(FieldValue::Int(x)) => Some(*x),
                _ => None,
            }))),
            DataType::UInt64 => Arc::new(UInt64Array::from_iter(values.map(|v| match v {
                Some(FieldValue::UInt(x)) => Some(*x),
                _ => None,
            }))),
            DataType::Boolean => Arc::new(BooleanArray::from_iter(values.map(|v| match v {
                Some(FieldValue::Bool(x)) => Some(*x),
                _ => None,
            }))),
            _ => Arc::new(StringArray::from_iter(values.map(|v| match v {
                Some(FieldValue::Str(x)) => Some(x.as_str()),
                _ => None,
            }))),
        };
        columns.push(Field::new(f.as_str(), ty, true));
        arrays.push(a);
    }
    let schema: SchemaRef = Arc::new(Schema::new(columns));
    RecordBatch::try_new(schema, arrays).map_err(|e| VersionError::Table {
        table: table.into(),
        detail: e.to_string(),
    })
}
