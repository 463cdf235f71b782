//! Result rows on the wire: DataFusion's record batches → `DataRow` messages.
//!
//! A query's rows are encoded here a block at a time: the rows of a batch, up to
//! [`BLOCK_BYTES`] of encoded data, go into one buffer (each `DataRow` a slice of it),
//! and the row stream hands them out one by one. A column writer is chosen once per
//! block and column: text-format integers, floats, booleans, text, bytea, timestamps
//! and dates are written here, in PostgreSQL's own text forms ([`super::text`]); every
//! other column (lists, structs, decimals, intervals, time zones, binary format,
//! catalog columns with wire-type metadata) goes through arrow-pg's encoder value by
//! value, as datafusion-postgres would send it.
//!
//! Memory: one block per query (a batch's rows, cut at 1 MiB of encoded data unless a
//! single row is larger), whatever the result size.

use super::text;
use bytes::{BufMut, BytesMut};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{self as dt, DataType, Field, TimeUnit};
use datafusion::execution::SendableRecordBatchStream;
use datafusion_postgres::arrow_pg::encoder::{encode_value, Encoder};
use futures::{ready, Stream, StreamExt};
use pgwire::api::results::{FieldFormat, FieldInfo, QueryResponse};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::types::ToSqlText;
use postgres_types::{IsNull, ToSql};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Encoded bytes per block; a block ends after the row that reaches this.
const BLOCK_BYTES: usize = 1 << 20;
/// Buffer space reserved at a time (rows are slices of it).
const CHUNK_BYTES: usize = 64 << 10;

/// The response for `batches`, described by `fields` (one per column, as
/// `arrow_schema_to_pg_fields` made them).
pub fn response(fields: Arc<Vec<FieldInfo>>, batches: SendableRecordBatchStream) -> QueryResponse {
    let rows = Rows {
        batches,
        fields: Arc::clone(&fields),
        current: None,
        rows: Vec::new().into_iter(),
        done: false,
    };
    QueryResponse::new(fields, rows)
}

/// The row stream: rows of the current block are ready at once; the batches stream is
/// polled only when the block is used up.
struct Rows {
    batches: SendableRecordBatchStream,
    fields: Arc<Vec<FieldInfo>>,
    /// The batch being encoded and its first row not yet encoded.
    current: Option<(RecordBatch, usize)>,
    /// Encoded rows not yet handed out.
    rows: std::vec::IntoIter<DataRow>,
    /// After an error: nothing more.
    done: bool,
}

impl Stream for Rows {
    type Item = PgWireResult<DataRow>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(row) = this.rows.next() {
                return Poll::Ready(Some(Ok(row)));
            }
            if let Some((batch, from)) = this.current.take() {
                match encode_block(&batch, from, &this.fields) {
                    Ok((rows, next)) => {
                        if next < batch.num_rows() {
                            this.current = Some((batch, next));
                        }
                        this.rows = rows.into_iter();
                    }
                    Err(e) => {
                        this.done = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                continue;
            }
            match ready!(this.batches.poll_next_unpin(cx)) {
                Some(Ok(batch)) => this.current = Some((batch, 0)),
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(PgWireError::ApiError(Box::new(e)))));
                }
                None => this.done = true,
            }
        }
    }
}

/// Encodes the rows of `batch` from row `from` until the block is full: the rows, and
/// the first row left for the next block.
fn encode_block(
    batch: &RecordBatch,
    from: usize,
    fields: &[FieldInfo],
) -> PgWireResult<(Vec<DataRow>, usize)> {
    let schema = batch.schema();
    if fields.len() != batch.num_columns() {
        return Err(PgWireError::ApiError(
            format!(
                "result has {} columns, its description {}",
                batch.num_columns(),
                fields.len()
            )
            .into(),
        ));
    }
    let mut writers: Vec<Writer> = batch
        .columns()
        .iter()
        .zip(schema.fields().iter())
        .zip(fields)
        .map(|((array, field), info)| writer(array, field, info))
        .collect();
    let count = i16::try_from(writers.len())
        .map_err(|_| PgWireError::ApiError("more than 32767 result columns".into()))?;
    let mut buf = BytesMut::with_capacity(CHUNK_BYTES);
    let mut rows = Vec::new();
    let mut bytes = 0;
    let mut row = from;
    while row < batch.num_rows() && bytes < BLOCK_BYTES {
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(CHUNK_BYTES);
        }
        for w in writers.iter_mut() {
            w.write(row, &mut buf)?;
        }
        bytes += buf.len();
        rows.push(DataRow::new(buf.split(), count));
        row += 1;
    }
    Ok((rows, row))
}

/// Writes row `i`'s (non-null) value with its length.
type WriteFn<'a> = Box<dyn Fn(usize, &mut BytesMut) + 'a>;

/// How one column of a block is written.
enum Writer<'a> {
    /// Written here; the array says which rows are NULL.
    Here(WriteFn<'a>, &'a dyn Array),
    /// arrow-pg's encoder, value by value.
    Other(&'a ArrayRef, &'a Field, &'a FieldInfo),
}

/// Appends a field: its length, then its bytes.
fn put(buf: &mut BytesMut, value: &[u8]) {
    buf.put_i32(value.len() as i32);
    buf.put_slice(value);
}

impl Writer<'_> {
    fn write(&mut self, i: usize, buf: &mut BytesMut) -> PgWireResult<()> {
        match self {
            Writer::Other(a, field, info) => encode_value(&mut Raw(buf), a, i, field, info),
            Writer::Here(_, a) if a.is_null(i) => {
                buf.put_i32(-1);
                Ok(())
            }
            Writer::Here(f, _) => {
                f(i, buf);
                Ok(())
            }
        }
    }
}

/// A writer of the bytes `value(i)` gives, as they are.
fn raw<'a>(a: &'a dyn Array, value: impl Fn(usize) -> &'a [u8] + 'a) -> Writer<'a> {
    Writer::Here(Box::new(move |i, buf| put(buf, value(i))), a)
}

/// A writer of the bytes `value(i)` gives, as `bytea` hex.
fn bytea<'a>(a: &'a dyn Array, value: impl Fn(usize) -> &'a [u8] + 'a) -> Writer<'a> {
    Writer::Here(
        Box::new(move |i, buf| {
            let v = value(i);
            buf.put_i32((2 + 2 * v.len()) as i32);
            buf.put_slice(b"\\x");
            for &b in v {
                buf.put_slice(&text::hex_pair(b));
            }
        }),
        a,
    )
}

/// A writer of the timestamps `micros(i)` gives (microseconds since the epoch).
fn timestamps<'a>(a: &'a dyn Array, micros: impl Fn(usize) -> i64 + 'a) -> Writer<'a> {
    Writer::Here(
        Box::new(move |i, buf| put(buf, text::timestamp(micros(i)).as_bytes())),
        a,
    )
}

/// The writer for a column, by its Arrow type, wire type and format.
fn writer<'a>(array: &'a ArrayRef, field: &'a Field, info: &'a FieldInfo) -> Writer<'a> {
    let other = Writer::Other(array, field, info);
    let options = info.format_options();
    // Columns carrying wire-type metadata (pg_catalog's `"char"` and `oid` columns)
    // are arrow-pg's to encode.
    if info.format() != FieldFormat::Text || !field.metadata().is_empty() {
        return other;
    }
    let a: &dyn Array = array.as_ref();
    let here = |f: WriteFn<'a>| Writer::Here(f, a);
    match array.data_type() {
        DataType::Boolean => {
            let b = array.as_boolean();
            here(Box::new(move |i, buf| {
                put(buf, if b.value(i) { b"t" } else { b"f" })
            }))
        }
        DataType::Int8 => ints::<dt::Int8Type>(a),
        DataType::Int16 => ints::<dt::Int16Type>(a),
        DataType::Int32 => ints::<dt::Int32Type>(a),
        DataType::Int64 => ints::<dt::Int64Type>(a),
        DataType::UInt8 => ints::<dt::UInt8Type>(a),
        DataType::UInt16 => ints::<dt::UInt16Type>(a),
        DataType::UInt32 => ints::<dt::UInt32Type>(a),
        DataType::UInt64 => ints::<dt::UInt64Type>(a),
        DataType::Float64 if options.extra_float_digits >= 1 => {
            let f = array.as_primitive::<dt::Float64Type>();
            here(Box::new(move |i, buf| {
                put(buf, text::float8(f.value(i)).as_bytes())
            }))
        }
        DataType::Float32 if options.extra_float_digits >= 1 => {
            let f = array.as_primitive::<dt::Float32Type>();
            here(Box::new(move |i, buf| {
                put(buf, text::float4(f.value(i)).as_bytes())
            }))
        }
        DataType::Utf8 => {
            let s = array.as_string::<i32>();
            raw(a, move |i| s.value(i).as_bytes())
        }
        DataType::LargeUtf8 => {
            let s = array.as_string::<i64>();
            raw(a, move |i| s.value(i).as_bytes())
        }
        DataType::Utf8View => {
            let s = array.as_string_view();
            raw(a, move |i| s.value(i).as_bytes())
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
            if options.bytea_output.eq_ignore_ascii_case("hex") =>
        {
            match array.data_type() {
                DataType::Binary => {
                    let b = array.as_binary::<i32>();
                    bytea(a, move |i| b.value(i))
                }
                DataType::LargeBinary => {
                    let b = array.as_binary::<i64>();
                    bytea(a, move |i| b.value(i))
                }
                _ => {
                    let b = array.as_binary_view();
                    bytea(a, move |i| b.value(i))
                }
            }
        }
        DataType::Timestamp(unit, None) if iso(&options.date_style) => match unit {
            TimeUnit::Second => {
                let t = array.as_primitive::<dt::TimestampSecondType>();
                timestamps(a, move |i| t.value(i).saturating_mul(1_000_000))
            }
            TimeUnit::Millisecond => {
                let t = array.as_primitive::<dt::TimestampMillisecondType>();
                timestamps(a, move |i| t.value(i).saturating_mul(1_000))
            }
            TimeUnit::Microsecond => {
                let t = array.as_primitive::<dt::TimestampMicrosecondType>();
                timestamps(a, move |i| t.value(i))
            }
            TimeUnit::Nanosecond => {
                let t = array.as_primitive::<dt::TimestampNanosecondType>();
                timestamps(a, move |i| t.value(i).div_euclid(1_000))
            }
        },
        DataType::Date32 if iso(&options.date_style) => {
            let d = array.as_primitive::<dt::Date32Type>();
            here(Box::new(move |i, buf| {
                put(buf, text::date(d.value(i)).as_bytes())
            }))
        }
        _ => other,
    }
}

/// Whether a `DateStyle` setting prints ISO dates (`ISO, MDY`, `iso`).
fn iso(style: &str) -> bool {
    style
        .split(',')
        .any(|part| part.trim().eq_ignore_ascii_case("iso"))
}

fn ints<'a, T>(array: &'a dyn Array) -> Writer<'a>
where
    T: dt::ArrowPrimitiveType,
    T::Native: itoa::Integer,
{
    let p = array.as_primitive::<T>();
    Writer::Here(
        Box::new(move |i, buf| put(buf, itoa::Buffer::new().format(p.value(i)).as_bytes())),
        array,
    )
}

/// arrow-pg's [`Encoder`] writing fields straight into a block's buffer, as pgwire's
/// `DataRowEncoder` does.
struct Raw<'b>(&'b mut BytesMut);

impl Encoder for Raw<'_> {
    type Item = ();

    fn encode_field<T>(&mut self, value: &T, info: &FieldInfo) -> PgWireResult<()>
    where
        T: ToSql + ToSqlText + Sized,
    {
        let buf = &mut *self.0;
        let start = buf.len();
        buf.put_i32(-1);
        let is_null = if info.format() == FieldFormat::Text {
            value.to_sql_text(info.datatype(), buf, info.format_options())?
        } else {
            value.to_sql(info.datatype(), buf)?
        };
        if let IsNull::No = is_null {
            let len = (buf.len() - start - 4) as i32;
            buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
        }
        Ok(())
    }

    fn take_row(&mut self) -> Self::Item {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        BinaryArray, BooleanArray, Date32Array, Float32Array, Float64Array, Int32Array, Int64Array,
        ListArray, StringArray, StringViewArray, TimestampNanosecondArray, UInt64Array,
    };
    use datafusion::arrow::datatypes::Int32Type;
    use datafusion_postgres::arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
    use pgwire::api::portal::Format;

    fn fields(batch: &RecordBatch) -> Vec<FieldInfo> {
        arrow_schema_to_pg_fields(&batch.schema(), &Format::UnifiedText, None).unwrap()
    }

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    /// The fields of one encoded row, as text (`None` for NULL).
    fn values(row: &DataRow) -> Vec<Option<String>> {
        let mut d = &row.data[..];
        (0..row.field_count)
            .map(|_| {
                let len = i32::from_be_bytes(d[..4].try_into().unwrap());
                d = &d[4..];
                (len >= 0).then(|| {
                    let (v, rest) = d.split_at(len as usize);
                    d = rest;
                    String::from_utf8(v.to_vec()).unwrap()
                })
            })
            .collect()
    }

    /// Where arrow-pg's text forms are PostgreSQL's (integers, booleans, text, bytea,
    /// and the value-by-value columns), the rows are byte for byte arrow-pg's.
    #[test]
    fn same_bytes_as_arrow_pg() {
        let b = batch(vec![
            (
                "i64",
                Arc::new(Int64Array::from(vec![
                    Some(-9_223_372_036_854_775_808),
                    None,
                    Some(42),
                ])) as ArrayRef,
            ),
            (
                "i32",
                Arc::new(Int32Array::from(vec![Some(7), Some(-1), None])),
            ),
            (
                "u64",
                Arc::new(UInt64Array::from(vec![Some(u64::MAX), Some(0), None])),
            ),
            (
                "b",
                Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            ),
            (
                "s",
                Arc::new(StringArray::from(vec![Some("a \"q\" {x}"), Some(""), None])),
            ),
            (
                "v",
                Arc::new(StringViewArray::from(vec![
                    None,
                    Some("a longer string than twelve"),
                    Some("é"),
                ])),
            ),
            (
                "bytes",
                Arc::new(BinaryArray::from(vec![
                    Some(&b"\x00\xff"[..]),
                    None,
                    Some(&b""[..]),
                ])),
            ),
            (
                "list",
                Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
                    Some(vec![Some(1), None]),
                    None,
                    Some(vec![]),
                ])),
            ),
        ]);
        let f = Arc::new(fields(&b));
        let (ours, next) = encode_block(&b, 0, &f).unwrap();
        assert_eq!(next, 3);
        let theirs: Vec<DataRow> = encode_recordbatch(Arc::clone(&f), b.clone())
            .collect::<PgWireResult<_>>()
            .unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(values(&ours[0])[6].as_deref(), Some("\\x00ff"));
    }

    /// Floats and timestamps in PostgreSQL's forms (arrow-pg prints `1.0`, `inf` and
    /// six fraction digits always).
    #[test]
    fn floats_and_timestamps_as_postgresql() {
        let b = batch(vec![
            (
                "f",
                Arc::new(Float64Array::from(vec![
                    Some(1.0),
                    Some(f64::INFINITY),
                    None,
                    Some(1e20),
                ])) as ArrayRef,
            ),
            (
                "g",
                Arc::new(Float32Array::from(vec![
                    Some(0.5),
                    Some(1234567.0),
                    Some(f32::NAN),
                    None,
                ])),
            ),
            (
                "t",
                Arc::new(TimestampNanosecondArray::from(vec![
                    Some(0),
                    Some(33_000_999),
                    Some(-1),
                    None,
                ])),
            ),
            (
                "d",
                Arc::new(Date32Array::from(vec![
                    Some(19_782),
                    None,
                    Some(-719_528),
                    Some(0),
                ])),
            ),
        ]);
        let (rows, _) = encode_block(&b, 0, &fields(&b)).unwrap();
        let got: Vec<_> = rows.iter().map(values).collect();
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            got[0],
            vec![s("1"), s("0.5"), s("1970-01-01 00:00:00"), s("2024-02-29")]
        );
        assert_eq!(
            got[1],
            vec![
                s("Infinity"),
                s("1.234567e+06"),
                s("1970-01-01 00:00:00.033"),
                None
            ]
        );
        assert_eq!(
            got[2],
            vec![
                None,
                s("NaN"),
                s("1969-12-31 23:59:59.999999"),
                s("0001-01-01 BC")
            ]
        );
        assert_eq!(got[3], vec![s("1e+20"), None, None, s("1970-01-01")]);
    }

    /// Rows of big values are cut into blocks of about `BLOCK_BYTES`; none is lost.
    #[test]
    fn big_rows_make_several_blocks() {
        let value = vec![7u8; 300 << 10];
        let b = batch(vec![(
            "payload",
            Arc::new(BinaryArray::from(vec![Some(&value[..]); 10])) as ArrayRef,
        )]);
        let f = fields(&b);
        let (mut from, mut blocks, mut rows) = (0, 0, 0);
        while from < b.num_rows() {
            let (block, next) = encode_block(&b, from, &f).unwrap();
            assert!(block.iter().map(|r| r.data.len()).sum::<usize>() < 2 * BLOCK_BYTES);
            rows += block.len();
            blocks += 1;
            from = next;
        }
        assert_eq!(rows, 10);
        assert!(blocks >= 5, "{blocks} blocks");
    }
}
