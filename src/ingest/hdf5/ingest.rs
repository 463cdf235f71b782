//! Turns one HDF5 episode file into `episodes` rows and `steps` segments: one episode per
//! demo group, one step per row of its datasets, read in slices of bounded size (never a
//! whole dataset). A dataset of shape (N,) is a scalar column, (N, d…) a list column of
//! its flattened row, uint8 (N, h, w) or (N, h, w, 1|3|4) an image column (a struct of
//! height, width, encoding `mono8`/`rgb8`/`rgba8` and the pixel bytes, the fields a
//! `sensor_msgs/Image` has), other uint8 (N, a, b, …) a bytea column. Steps are timed at
//! `fps` (the config's, else 20 Hz, robosuite's default control rate).

use super::layout::{self, EpisodeLayout};
use crate::ingest::message::write::bad;
use crate::ingest::steps::build::{EpisodeRows, STEP_COLUMNS};
use crate::ingest::steps::key_of;
use crate::ingest::ReadOptions;
use crate::store::ChunkWriter;
use crate::version::{segment, WorkingEdit};
use datafusion::arrow::array::*;
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::*;
use hdf5::types::{FloatSize, IntSize, TypeDescriptor};
use hdf5::{Dataset, H5Type, Hyperslab, Selection, SliceOrIndex};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

/// The step rate when the config gives none.
pub const DEFAULT_FPS: f64 = 20.0;
/// Bytes of dataset rows read at once, and the bytes that close a steps segment.
const BLOCK_BYTES: usize = 8 << 20;
const SEGMENT_BYTES: usize = 32 << 20;

/// One step column: where it comes from and how its rows look.
struct Column {
    name: String,
    path: String,
    ds: Dataset,
    desc: TypeDescriptor,
    shape: Vec<usize>,
    /// Values per row (the product of every dimension but the first).
    width: usize,
    data_type: DataType,
}

/// Reads the HDF5 file at `path` (stored as `name`) and adds its episodes and steps.
pub fn decode_into(
    edit: &mut WorkingEdit<'_>,
    chunks: &mut ChunkWriter<'_>,
    name: &str,
    file_id: &str,
    path: &Path,
    opts: &ReadOptions,
) -> Result<Vec<String>, crate::Error> {
    let fail = |what: String| bad(name, what);
    let file = hdf5::File::open(path).map_err(|e| fail(format!("expected an HDF5 file: {e}")))?;
    let layout = layout::detect(&file).map_err(|w| fail(format!("expected {w}")))?;
    let fps = opts.align.fps.unwrap_or(DEFAULT_FPS);
    let mut episodes = EpisodeRows::default();
    for (k, ep) in layout.episodes.iter().enumerate() {
        let cols = columns(&file, ep).map_err(fail)?;
        let n = rows(ep, &cols).map_err(fail)?;
        if n == 0 {
            continue;
        }
        let terminal = match &ep.dones {
            Some(d) => last_is_set(&file, d, n).map_err(fail)?,
            None => false,
        };
        let episode_id = format!("{file_id}-{k}");
        let times: Vec<i64> = (0..n)
            .map(|i| (i as f64 * 1e9 / fps).round() as i64)
            .collect();
        let schema = steps_schema(&cols);
        let row_bytes: usize = cols
            .iter()
            .map(|c| c.width * c.desc.size())
            .sum::<usize>()
            .max(1);
        let block = (BLOCK_BYTES / row_bytes).clamp(1, 16 * 1024);
        let mut segs = Vec::new();
        let mut batches: Vec<RecordBatch> = Vec::new();
        let mut bytes = 0usize;
        let mut start = 0;
        while start < n {
            let r = start..(start + block).min(n);
            let batch = step_batch(
                &schema,
                &cols,
                &episode_id,
                file_id,
                &times,
                r.clone(),
                terminal,
            )
            .map_err(fail)?;
            bytes += r.len() * row_bytes;
            batches.push(batch);
            start = r.end;
            if bytes >= SEGMENT_BYTES || start == n {
                let kv = chunks.kv();
                segs.push(segment::write_segment(
                    "steps",
                    chunks,
                    &mut edit.nodes,
                    kv,
                    &schema,
                    &batches,
                )?);
                batches.clear();
                bytes = 0;
            }
        }
        edit.root.add_segments(
            "steps",
            segment::encode_schema(&schema),
            key_of("steps").unwrap_or_default(),
            segs,
        )?;
        episodes.push(&episode_id, file_id, &times, k, None);
    }
    if episodes.is_empty() {
        return Ok(vec![format!(
            "{name}: the {} file has no steps",
            layout.name
        )]);
    }
    let batch = episodes.finish();
    let schema = batch.schema();
    let kv = chunks.kv();
    let seg = segment::write_segment(
        "episodes",
        chunks,
        &mut edit.nodes,
        kv,
        &schema,
        std::slice::from_ref(&batch),
    )?;
    edit.root.add_segments(
        "episodes",
        segment::encode_schema(&schema),
        key_of("episodes").unwrap_or_default(),
        vec![seg],
    )?;
    Ok(vec![])
}

fn columns(file: &hdf5::File, ep: &EpisodeLayout) -> Result<Vec<Column>, String> {
    let mut out = Vec::new();
    for (name, path) in &ep.columns {
        let ds = file
            .dataset(path)
            .map_err(|e| format!("dataset {path}: {e}"))?;
        let desc = ds
            .dtype()
            .and_then(|t| t.to_descriptor())
            .map_err(|e| format!("dataset {path}: its type: {e}"))?;
        let shape = ds.shape();
        if shape.is_empty() {
            return Err(format!(
                "dataset {path}: expected one row per step, found a scalar"
            ));
        }
        let width = shape[1..]
            .iter()
            .try_fold(1usize, |a, d| a.checked_mul(*d))
            .ok_or_else(|| format!("dataset {path}: a row of {shape:?} is too large"))?;
        if width > 1 << 28 {
            return Err(format!(
                "dataset {path}: rows of at most 2^28 values, found {width}"
            ));
        }
        let data_type = column_type(&desc, &shape)
            .ok_or_else(|| format!("dataset {path}: expected numbers, found type {desc}"))?;
        let name = if STEP_COLUMNS.contains(&name.as_str()) {
            format!("{name}_")
        } else {
            name.clone()
        };
        out.push(Column {
            name,
            path: path.clone(),
            ds,
            desc,
            shape,
            width,
            data_type,
        });
    }
    Ok(out)
}

/// The episode's step count: every dataset must have as many rows.
fn rows(ep: &EpisodeLayout, cols: &[Column]) -> Result<usize, String> {
    let Some(first) = cols.first() else {
        return Err(format!("{} has no datasets", ep.group));
    };
    let n = first.shape[0];
    if let Some(c) = cols.iter().find(|c| c.shape[0] != n) {
        return Err(format!(
            "datasets of one length in {}: {} has {n} rows, {} has {}",
            ep.group, first.path, c.path, c.shape[0]
        ));
    }
    Ok(n)
}

fn last_is_set(file: &hdf5::File, path: &str, n: usize) -> Result<bool, String> {
    let ds = file.dataset(path).map_err(|e| format!("{path}: {e}"))?;
    let v: Vec<f64> = read_rows(&ds, &ds.shape(), n - 1..n).map_err(|e| format!("{path}: {e}"))?;
    Ok(v.iter().any(|x| *x != 0.0))
}

fn item(dt: DataType) -> FieldRef {
    Arc::new(Field::new("item", dt, true))
}

/// The pixel encoding of a uint8 dataset of `shape` (rows first), if it holds images.
fn image_encoding(shape: &[usize]) -> Option<&'static str> {
    match shape {
        [_, _, _] | [_, _, _, 1] => Some("mono8"),
        [_, _, _, 3] => Some("rgb8"),
        [_, _, _, 4] => Some("rgba8"),
        _ => None,
    }
}

/// The fields of an image column (a subset of `sensor_msgs/Image`'s, same names).
pub fn image_fields() -> Fields {
    Fields::from(vec![
        Field::new("height", DataType::UInt32, false),
        Field::new("width", DataType::UInt32, false),
        Field::new("encoding", DataType::Utf8, false),
        Field::new("data", DataType::Binary, false),
    ])
}

fn column_type(desc: &TypeDescriptor, shape: &[usize]) -> Option<DataType> {
    let ndim = shape.len();
    let scalar = match desc {
        TypeDescriptor::Integer(IntSize::U1) => DataType::Int8,
        TypeDescriptor::Integer(IntSize::U2) => DataType::Int16,
        TypeDescriptor::Integer(IntSize::U4) => DataType::Int32,
        TypeDescriptor::Integer(IntSize::U8) => DataType::Int64,
        TypeDescriptor::Unsigned(IntSize::U1) => DataType::UInt8,
        TypeDescriptor::Unsigned(IntSize::U2) => DataType::UInt16,
        TypeDescriptor::Unsigned(IntSize::U4) => DataType::UInt32,
        TypeDescriptor::Unsigned(IntSize::U8) => DataType::UInt64,
        TypeDescriptor::Float(FloatSize::U4) => DataType::Float32,
        TypeDescriptor::Float(FloatSize::U8) => DataType::Float64,
        _ => return None,
    };
    Some(match (ndim, &scalar) {
        (1, _) => scalar,
        (3.., DataType::UInt8) if image_encoding(shape).is_some() => {
            DataType::Struct(image_fields())
        }
        (3.., DataType::UInt8) => DataType::Binary,
        _ => DataType::List(item(scalar)),
    })
}

fn steps_schema(cols: &[Column]) -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Nanosecond, None);
    let mut fields = vec![
        Field::new("episode_id", DataType::Utf8, false),
        Field::new("step_index", DataType::Int64, false),
        Field::new("timestamp", ts, false),
        Field::new("is_first", DataType::Boolean, false),
        Field::new("is_last", DataType::Boolean, false),
        Field::new("is_terminal", DataType::Boolean, false),
        Field::new("file_id", DataType::Utf8, false),
    ];
    for c in cols {
        fields.push(Field::new(&c.name, c.data_type.clone(), true));
    }
    Arc::new(Schema::new(fields))
}

#[allow(clippy::too_many_arguments)]
fn step_batch(
    schema: &SchemaRef,
    cols: &[Column],
    episode_id: &str,
    file_id: &str,
    times: &[i64],
    r: Range<usize>,
    terminal: bool,
) -> Result<RecordBatch, String> {
    let n = times.len();
    let mut arrays: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            episode_id,
            r.len(),
        ))),
        Arc::new(Int64Array::from_iter_values(r.clone().map(|i| i as i64))),
        Arc::new(TimestampNanosecondArray::from_iter_values(
            times[r.clone()].iter().copied(),
        )),
        Arc::new(BooleanArray::from_iter(r.clone().map(|i| Some(i == 0)))),
        Arc::new(BooleanArray::from_iter(r.clone().map(|i| Some(i + 1 == n)))),
        Arc::new(BooleanArray::from_iter(
            r.clone().map(|i| Some(terminal && i + 1 == n)),
        )),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            file_id,
            r.len(),
        ))),
    ];
    for c in cols {
        arrays.push(read_column(c, r.clone()).map_err(|e| format!("dataset {}: {e}", c.path))?);
    }
    RecordBatch::try_new(Arc::clone(schema), arrays).map_err(|e| format!("steps batch: {e}"))
}

/// Rows `r` of a dataset, flattened in row-major order.
fn read_rows<T: H5Type>(ds: &Dataset, shape: &[usize], r: Range<usize>) -> hdf5::Result<Vec<T>> {
    let mut dims: Vec<SliceOrIndex> = vec![r.into()];
    dims.extend(shape[1..].iter().map(|d| SliceOrIndex::from(0..*d)));
    let a: ndarray::ArrayD<T> = ds.read_slice(Selection::from(Hyperslab::from(dims)))?;
    Ok(a.into_iter().collect())
}

fn read_column(c: &Column, r: Range<usize>) -> hdf5::Result<ArrayRef> {
    macro_rules! typed {
        ($t:ty) => {{
            let v: Vec<<$t as ArrowPrimitiveType>::Native> = read_rows(&c.ds, &c.shape, r.clone())?;
            shape_rows(PrimitiveArray::<$t>::from_iter_values(v), c, r.len())
        }};
    }
    Ok(match &c.desc {
        TypeDescriptor::Unsigned(IntSize::U1)
            if matches!(c.data_type, DataType::Binary | DataType::Struct(_)) =>
        {
            let v: Vec<u8> = read_rows(&c.ds, &c.shape, r.clone())?;
            let offsets = OffsetBuffer::<i32>::from_lengths(std::iter::repeat_n(c.width, r.len()));
            let data = Arc::new(BinaryArray::new(offsets, v.into(), None));
            match image_encoding(&c.shape) {
                Some(enc) if matches!(c.data_type, DataType::Struct(_)) => {
                    let n = r.len();
                    let dim = |i: usize| {
                        Arc::new(UInt32Array::from_value(
                            u32::try_from(c.shape[i]).unwrap_or(u32::MAX),
                            n,
                        )) as ArrayRef
                    };
                    Arc::new(StructArray::new(
                        image_fields(),
                        vec![
                            dim(1),
                            dim(2),
                            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(enc, n))),
                            data,
                        ],
                        None,
                    ))
                }
                _ => data,
            }
        }
        TypeDescriptor::Integer(IntSize::U1) => typed!(Int8Type),
        TypeDescriptor::Integer(IntSize::U2) => typed!(Int16Type),
        TypeDescriptor::Integer(IntSize::U4) => typed!(Int32Type),
        TypeDescriptor::Integer(IntSize::U8) => typed!(Int64Type),
        TypeDescriptor::Unsigned(IntSize::U1) => typed!(UInt8Type),
        TypeDescriptor::Unsigned(IntSize::U2) => typed!(UInt16Type),
        TypeDescriptor::Unsigned(IntSize::U4) => typed!(UInt32Type),
        TypeDescriptor::Unsigned(IntSize::U8) => typed!(UInt64Type),
        TypeDescriptor::Float(FloatSize::U4) => typed!(Float32Type),
        _ => typed!(Float64Type),
    })
}

/// A flat array of `rows × width` values as the column's type: itself (one value a
/// row) or a list per row.
fn shape_rows(values: impl Array + 'static, c: &Column, rows: usize) -> ArrayRef {
    match &c.data_type {
        DataType::List(f) => {
            let offsets = OffsetBuffer::<i32>::from_lengths(std::iter::repeat_n(c.width, rows));
            Arc::new(ListArray::new(
                Arc::clone(f),
                offsets,
                Arc::new(values),
                None,
            ))
        }
        _ => Arc::new(values),
    }
}

/// Reads every step column of the HDF5 file at `path` without a store (for the fuzz
/// target): the layout, the lengths and every row. Returns the number of steps.
pub fn read_all(path: &Path) -> Result<usize, String> {
    let file = hdf5::File::open(path).map_err(|e| e.to_string())?;
    let layout = layout::detect(&file)?;
    let mut steps = 0;
    for ep in &layout.episodes {
        let cols = columns(&file, ep)?;
        let n = rows(ep, &cols)?;
        for c in &cols {
            let mut start = 0;
            while start < n {
                let r = start..(start + 1024).min(n);
                read_column(c, r.clone()).map_err(|e| format!("{}: {e}", c.path))?;
                start = r.end;
            }
        }
        steps += n;
    }
    Ok(steps)
}
