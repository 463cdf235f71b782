//! Decodes serialized messages into Arrow columns, following a parsed definition:
//! nested messages → structs, arrays → lists, `uint8[]`/`char[]` → binary, `time` →
//! timestamp(ns), `duration` → duration(ns). Two wire forms: ROS1 (packed little-endian)
//! and CDR as ROS 2 writes it (XCDR1: each primitive aligned to its size from the end of
//! the 4-byte encapsulation header, strings NUL-terminated, either byte order). Short or
//! lying input is an error naming the field and byte, never a panic.

use super::msgdef::{Prim, Type};
use crate::store::Id;
use crate::version::blob;
use datafusion::arrow::array::*;
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, TimeUnit};
use std::sync::Arc;

/// Column builders shaped like the message.
pub enum Col {
    Bool(BooleanBuilder),
    I8(Int8Builder),
    U8(UInt8Builder),
    I16(Int16Builder),
    U16(UInt16Builder),
    I32(Int32Builder),
    U32(UInt32Builder),
    I64(Int64Builder),
    U64(UInt64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Str(StringBuilder),
    Time(TimestampNanosecondBuilder),
    Dur(DurationNanosecondBuilder),
    /// Bytes of a fixed or variable length; `true`: a blob column (`version::blob`),
    /// whose long values lying in a stored file become references.
    Bin(BinaryBuilder, Option<usize>, bool),
    List {
        item: FieldRef,
        offsets: Vec<i32>,
        child: Box<Col>,
        fixed: Option<usize>,
    },
    Struct {
        fields: Fields,
        cols: Vec<(Type, Col)>,
        len: usize,
    },
}

pub fn data_type(t: &Type) -> DataType {
    match t {
        Type::Prim(p) => match p {
            Prim::Bool => DataType::Boolean,
            Prim::I8 => DataType::Int8,
            Prim::U8 => DataType::UInt8,
            Prim::I16 => DataType::Int16,
            Prim::U16 => DataType::UInt16,
            Prim::I32 => DataType::Int32,
            Prim::U32 => DataType::UInt32,
            Prim::I64 => DataType::Int64,
            Prim::U64 => DataType::UInt64,
            Prim::F32 => DataType::Float32,
            Prim::F64 => DataType::Float64,
            Prim::Str => DataType::Utf8,
            Prim::Time => DataType::Timestamp(TimeUnit::Nanosecond, None),
            Prim::Duration => DataType::Duration(TimeUnit::Nanosecond),
        },
        Type::Bytes(_) => DataType::Binary,
        Type::List(inner, _) => {
            DataType::List(Arc::new(Field::new("item", data_type(inner), true)))
        }
        Type::Msg(_, fields) => DataType::Struct(struct_fields(fields)),
    }
}

pub fn struct_fields(fields: &[(String, Type)]) -> Fields {
    fields
        .iter()
        .map(|(n, t)| Field::new(n, data_type(t), true))
        .collect()
}

impl Col {
    pub fn new(t: &Type) -> Col {
        match t {
            Type::Prim(p) => match p {
                Prim::Bool => Col::Bool(BooleanBuilder::new()),
                Prim::I8 => Col::I8(Int8Builder::new()),
                Prim::U8 => Col::U8(UInt8Builder::new()),
                Prim::I16 => Col::I16(Int16Builder::new()),
                Prim::U16 => Col::U16(UInt16Builder::new()),
                Prim::I32 => Col::I32(Int32Builder::new()),
                Prim::U32 => Col::U32(UInt32Builder::new()),
                Prim::I64 => Col::I64(Int64Builder::new()),
                Prim::U64 => Col::U64(UInt64Builder::new()),
                Prim::F32 => Col::F32(Float32Builder::new()),
                Prim::F64 => Col::F64(Float64Builder::new()),
                Prim::Str => Col::Str(StringBuilder::new()),
                Prim::Time => Col::Time(TimestampNanosecondBuilder::new()),
                Prim::Duration => Col::Dur(DurationNanosecondBuilder::new()),
            },
            Type::Bytes(n) => Col::Bin(BinaryBuilder::new(), *n, false),
            Type::List(inner, n) => Col::List {
                item: Arc::new(Field::new("item", data_type(inner), true)),
                offsets: vec![0],
                child: Box::new(Col::new(inner)),
                fixed: *n,
            },
            Type::Msg(_, fields) => Col::Struct {
                fields: struct_fields(fields),
                cols: fields
                    .iter()
                    .map(|(_, t)| (t.clone(), Col::new(t)))
                    .collect(),
                len: 0,
            },
        }
    }

    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Col::Bool(b) => Arc::new(b.finish()),
            Col::I8(b) => Arc::new(b.finish()),
            Col::U8(b) => Arc::new(b.finish()),
            Col::I16(b) => Arc::new(b.finish()),
            Col::U16(b) => Arc::new(b.finish()),
            Col::I32(b) => Arc::new(b.finish()),
            Col::U32(b) => Arc::new(b.finish()),
            Col::I64(b) => Arc::new(b.finish()),
            Col::U64(b) => Arc::new(b.finish()),
            Col::F32(b) => Arc::new(b.finish()),
            Col::F64(b) => Arc::new(b.finish()),
            Col::Str(b) => Arc::new(b.finish()),
            Col::Time(b) => Arc::new(b.finish()),
            Col::Dur(b) => Arc::new(b.finish()),
            Col::Bin(b, _, _) => Arc::new(b.finish()),
            Col::List {
                item,
                offsets,
                child,
                ..
            } => {
                let values = child.finish();
                let offs = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                Arc::new(ListArray::new(Arc::clone(item), offs, values, None))
            }
            Col::Struct { fields, cols, len } => {
                let arrays: Vec<ArrayRef> = cols.iter_mut().map(|(_, c)| c.finish()).collect();
                let n = std::mem::take(len);
                if arrays.is_empty() {
                    Arc::new(StructArray::new_empty_fields(n, None))
                } else {
                    Arc::new(StructArray::new(fields.clone(), arrays, None))
                }
            }
        }
    }
}

/// How a message's bytes are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    Ros1,
    Cdr { big_endian: bool },
}

/// A cursor over one message's bytes; errors say what was expected where.
pub struct Bytes<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
    pub wire: Wire,
    /// The stored file (chunk-list id) and offset where `buf` starts, when the message
    /// lies in the file as is: blob columns then refer to it instead of copying.
    pub base: Option<(Id, u64)>,
    /// Values stored as references so far, and their bytes.
    pub referenced: (usize, usize),
}

impl<'a> Bytes<'a> {
    pub fn ros1(buf: &'a [u8]) -> Bytes<'a> {
        Bytes {
            buf,
            pos: 0,
            wire: Wire::Ros1,
            base: None,
            referenced: (0, 0),
        }
    }

    /// A CDR message: reads the encapsulation header (`00 00` big-endian CDR, `00 01`
    /// little-endian CDR, plus two option bytes); offsets count from after it.
    pub fn cdr(msg: &'a [u8]) -> Result<Bytes<'a>, String> {
        let big_endian = match msg.get(..4) {
            Some([0, 0, _, _]) => true,
            Some([0, 1, _, _]) => false,
            Some(h) => {
                return Err(format!(
                    "a CDR encapsulation header 00 00 or 00 01, found {:02x} {:02x}",
                    h[0], h[1]
                ))
            }
            None => {
                return Err(format!(
                    "a 4-byte CDR encapsulation header, but the message has {} bytes",
                    msg.len()
                ))
            }
        };
        Ok(Bytes {
            buf: &msg[4..],
            pos: 0,
            wire: Wire::Cdr { big_endian },
            base: None,
            referenced: (0, 0),
        })
    }

    /// Says where the whole message (`msg`, of which `buf` is the tail) starts in the
    /// stored file `file`.
    pub fn locate(&mut self, msg: &[u8], file: Id, offset: u64) {
        self.base = Some((file, offset + (msg.len() - self.buf.len()) as u64));
    }

    /// Bytes left after decoding that the wire form allows (CDR pads to 4 bytes).
    pub fn trailing_ok(&self) -> bool {
        let left = self.buf.len() - self.pos;
        match self.wire {
            Wire::Ros1 => left == 0,
            Wire::Cdr { .. } => left < 4,
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| {
                format!(
                    "{n} bytes for {what} at message byte {}, but the message has {} bytes",
                    self.pos,
                    self.buf.len()
                )
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// A primitive of N bytes, returned little-endian (CDR: aligned first, and
    /// byte-swapped when the message is big-endian).
    fn num<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        if let Wire::Cdr { .. } = self.wire {
            let pad = (N - self.pos % N) % N;
            self.take(pad, what)?;
        }
        let mut a: [u8; N] = self.take(N, what)?.try_into().expect("exact length");
        if self.wire == (Wire::Cdr { big_endian: true }) {
            a.reverse();
        }
        Ok(a)
    }

    fn len(&mut self, what: &str) -> Result<usize, String> {
        let n = u32::from_le_bytes(self.num::<4>(what)?) as usize;
        // Every element takes at least one byte, so a count beyond the rest is a lie.
        if n > self.buf.len() - self.pos {
            return Err(format!(
                "a length of at most {} for {what} at message byte {}, found {n}",
                self.buf.len() - self.pos,
                self.pos - 4
            ));
        }
        Ok(n)
    }
}

/// Appends one value of type `t` read from `b` to `col`.
pub fn decode(t: &Type, col: &mut Col, b: &mut Bytes<'_>, name: &str) -> Result<(), String> {
    match col {
        Col::Bool(c) => c.append_value(b.num::<1>(name)?[0] != 0),
        Col::I8(c) => c.append_value(i8::from_le_bytes(b.num(name)?)),
        Col::U8(c) => c.append_value(b.num::<1>(name)?[0]),
        Col::I16(c) => c.append_value(i16::from_le_bytes(b.num(name)?)),
        Col::U16(c) => c.append_value(u16::from_le_bytes(b.num(name)?)),
        Col::I32(c) => c.append_value(i32::from_le_bytes(b.num(name)?)),
        Col::U32(c) => c.append_value(u32::from_le_bytes(b.num(name)?)),
        Col::I64(c) => c.append_value(i64::from_le_bytes(b.num(name)?)),
        Col::U64(c) => c.append_value(u64::from_le_bytes(b.num(name)?)),
        Col::F32(c) => c.append_value(f32::from_le_bytes(b.num(name)?)),
        Col::F64(c) => c.append_value(f64::from_le_bytes(b.num(name)?)),
        Col::Str(c) => {
            let n = b.len(name)?;
            let mut s = b.take(n, name)?;
            if let (Wire::Cdr { .. }, Some((0, head))) = (b.wire, s.split_last()) {
                s = head; // CDR counts the terminating NUL
            }
            c.append_value(String::from_utf8_lossy(s));
        }
        Col::Time(c) => {
            let s = u32::from_le_bytes(b.num(name)?) as i64;
            let ns = u32::from_le_bytes(b.num(name)?) as i64;
            c.append_value(s * 1_000_000_000 + ns);
        }
        Col::Dur(c) => {
            let s = i32::from_le_bytes(b.num(name)?) as i64;
            let ns = i32::from_le_bytes(b.num(name)?) as i64;
            c.append_value(s * 1_000_000_000 + ns);
        }
        Col::Bin(c, fixed, is_blob) => {
            let n = match fixed {
                Some(n) => *n,
                None => b.len(name)?,
            };
            let at = b.pos as u64;
            let bytes = b.take(n, name)?;
            if *is_blob {
                let base = b.base.as_ref().map(|(f, o)| (f, o + at));
                if blob::append(c, bytes, base) {
                    b.referenced.0 += 1;
                    b.referenced.1 += n;
                }
            } else {
                c.append_value(bytes);
            }
        }
        Col::List {
            offsets,
            child,
            fixed,
            ..
        } => {
            let Type::List(inner, _) = t else {
                return Err(format!(
                    "internal: list column for {name} without a list type"
                ));
            };
            let n = match fixed {
                Some(n) => *n,
                None => b.len(name)?,
            };
            for _ in 0..n {
                decode(inner, child, b, name)?;
            }
            let last = *offsets.last().expect("offsets start with 0");
            offsets.push(last + n as i32);
        }
        Col::Struct { cols, len, .. } => {
            let Type::Msg(_, fields) = t else {
                return Err(format!(
                    "internal: struct column for {name} without a message type"
                ));
            };
            for ((fname, _), (ft, c)) in fields.iter().zip(cols.iter_mut()) {
                decode(ft, c, b, fname)?;
            }
            *len += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::message::msgdef::{self, Dialect};

    #[test]
    fn decodes_nested_message() {
        let fields = msgdef::parse(
            "a/M",
            "time t\nstring s\nfloat32[2] xy\nuint8[] raw\nP[] ps\n===\nMSG: a/P\nint16 v",
            Dialect::Ros1,
        )
        .unwrap();
        let t = Type::Msg("a/M".into(), fields);
        let mut col = Col::new(&t);
        let mut m = Vec::new();
        m.extend_from_slice(&5u32.to_le_bytes());
        m.extend_from_slice(&7u32.to_le_bytes());
        m.extend_from_slice(&2u32.to_le_bytes());
        m.extend_from_slice(b"hi");
        m.extend_from_slice(&1.5f32.to_le_bytes());
        m.extend_from_slice(&2.5f32.to_le_bytes());
        m.extend_from_slice(&3u32.to_le_bytes());
        m.extend_from_slice(b"abc");
        m.extend_from_slice(&2u32.to_le_bytes());
        m.extend_from_slice(&(-1i16).to_le_bytes());
        m.extend_from_slice(&9i16.to_le_bytes());
        let mut b = Bytes::ros1(&m);
        decode(&t, &mut col, &mut b, "msg").unwrap();
        assert_eq!(b.pos, m.len());
        let arr = col.finish();
        let s = arr.as_any().downcast_ref::<StructArray>().unwrap();
        assert_eq!(s.len(), 1);
        let t0 = s
            .column(0)
            .as_any()
            .downcast_ref::<TimestampNanosecondArray>()
            .unwrap();
        assert_eq!(t0.value(0), 5_000_000_007);
        // Short input: a clear error, no panic.
        for cut in 0..m.len() {
            let mut col = Col::new(&t);
            let mut b = Bytes::ros1(&m[..cut]);
            assert!(decode(&t, &mut col, &mut b, "msg").is_err(), "cut {cut}");
        }
    }
}
