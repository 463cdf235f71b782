//! Streaming scan of a ROS1 bag v2.0: records in file order, one decompressed chunk in
//! memory at a time. Works without the index (like `rosbag reindex`), so a bag whose
//! recorder crashed is read up to the last complete message, and says where it ends.

use super::record::{self, Fields, Record, RecordError, RecordReader};
use crate::ingest::message::Codec;
pub use crate::ingest::message::{Connection, Event};
use std::io::Read;

/// Largest uncompressed chunk accepted.
pub const MAX_CHUNK: u32 = 512 << 20;

/// A problem with the bag's bytes: where, and what was expected there.
#[derive(Debug, Clone, PartialEq)]
pub struct BagError {
    pub offset: u64,
    pub what: String,
}

impl std::fmt::Display for BagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "byte {}: {}", self.offset, self.what)
    }
}

#[derive(Debug, Default)]
pub struct Scan {
    pub chunks: u64,
    pub messages: u64,
    /// Set when the file ends inside a record: the offset where usable data ends.
    pub truncated_at: Option<u64>,
    /// Whether the bag header points at an index (a cleanly closed recording).
    pub indexed: bool,
}

fn bad(offset: u64, what: impl Into<String>) -> BagError {
    BagError {
        offset,
        what: what.into(),
    }
}

fn record_err(e: RecordError) -> BagError {
    match e {
        RecordError::Truncated { offset, .. } => bad(offset, "a complete record"),
        RecordError::Bad { offset, what } => bad(offset, what),
        RecordError::Io { offset, source } => bad(offset, format!("read failed: {source}")),
    }
}

/// Checks the magic line; the error says what the file looks like instead.
pub fn check_magic(head: &[u8]) -> Result<(), BagError> {
    if head.is_empty() {
        return Err(bad(0, "a ROS bag (#ROSBAG V2.0), found an empty file"));
    }
    if head.starts_with(record::MAGIC) {
        return Ok(());
    }
    if head.starts_with(b"#ROSBAG V") {
        let v: String = head[9..]
            .iter()
            .take_while(|b| **b != b'\n')
            .map(|b| *b as char)
            .collect();
        return Err(bad(
            0,
            format!("bag format version 2.0, found version {v} (only ROS1 bag v2.0 is supported)"),
        ));
    }
    Err(bad(0, "the magic line '#ROSBAG V2.0'"))
}

/// Scans a whole bag, calling `on` for every connection and message in file order.
/// Errors from `on` abort the scan and are returned as is.
pub fn scan<R: Read, E: From<BagError>>(
    mut input: R,
    on: &mut dyn FnMut(Event<'_>, u64) -> Result<(), E>,
) -> Result<Scan, E> {
    let mut head = vec![0u8; record::MAGIC.len()];
    let n = read_up_to(&mut input, &mut head).map_err(|e| bad(0, format!("read failed: {e}")))?;
    check_magic(&head[..n])?;
    let mut out = Scan::default();
    let mut rr = RecordReader::new(input, record::MAGIC.len() as u64);
    loop {
        let rec = match rr.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(RecordError::Truncated { offset, partial }) => {
                // The complete messages of a chunk cut short still count.
                if let Some(rec) = partial.filter(|r| r.header.op() == Some(record::OP_CHUNK)) {
                    chunk(&rec, true, &mut out, on)?;
                }
                out.truncated_at = Some(offset);
                break;
            }
            Err(e) => return Err(record_err(e).into()),
        };
        match rec.header.op() {
            Some(record::OP_BAG_HEADER) => {
                out.indexed = rec.header.u64("index_pos").is_some_and(|p| p > 0);
            }
            Some(record::OP_CHUNK) => chunk(&rec, false, &mut out, on)?,
            Some(record::OP_CONNECTION) => on(Event::Connection(connection(&rec)?), rec.offset)?,
            Some(record::OP_MSG_DATA) => {
                message(&rec, &mut out, on, rec.offset, Some(rec.data_at))?;
            }
            Some(record::OP_INDEX_DATA | record::OP_CHUNK_INFO) => {}
            Some(op) => {
                return Err(bad(
                    rec.offset,
                    format!("a record op of 0x02..0x07, found 0x{op:02x}"),
                )
                .into())
            }
            None => return Err(bad(rec.offset, "an 'op' field in the record header").into()),
        }
    }
    Ok(out)
}

fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

fn connection(rec: &Record) -> Result<Connection, BagError> {
    let id = rec
        .header
        .u32("conn")
        .ok_or_else(|| bad(rec.offset, "a 4-byte 'conn' field in the connection header"))?;
    let topic = rec
        .header
        .string("topic")
        .ok_or_else(|| bad(rec.offset, "a 'topic' field in the connection header"))?;
    let inner = Fields::parse(&rec.data, rec.offset)?;
    Ok(Connection {
        id,
        topic,
        msg_type: inner.string("type").unwrap_or_default(),
        md5sum: inner.string("md5sum").unwrap_or_default(),
        definition: inner.string("message_definition").unwrap_or_default(),
        codec: Some(Codec::Ros1),
    })
}

/// `data_at`: where the message's bytes are in the file, when they are there as is
/// (not inside a compressed chunk).
fn message<E: From<BagError>>(
    rec: &Record,
    out: &mut Scan,
    on: &mut dyn FnMut(Event<'_>, u64) -> Result<(), E>,
    at: u64,
    data_at: Option<u64>,
) -> Result<(), E> {
    let conn = rec
        .header
        .u32("conn")
        .ok_or_else(|| bad(at, "a 4-byte 'conn' field in the message header"))?;
    let time = rec
        .header
        .time("time")
        .ok_or_else(|| bad(at, "an 8-byte 'time' field in the message header"))?;
    out.messages += 1;
    on(
        Event::Message {
            conn,
            time,
            data: &rec.data,
            offset: data_at,
        },
        at,
    )
}

/// Decompresses one chunk and walks its records. `cut`: the chunk's data is incomplete
/// (the file ends inside it), so the walk stops quietly at the first incomplete record.
fn chunk<E: From<BagError>>(
    rec: &Record,
    cut: bool,
    out: &mut Scan,
    on: &mut dyn FnMut(Event<'_>, u64) -> Result<(), E>,
) -> Result<(), E> {
    let compression = rec.header.string("compression").unwrap_or_default();
    let size = rec
        .header
        .u32("size")
        .ok_or_else(|| bad(rec.offset, "a 4-byte 'size' field in the chunk header"))?;
    if size > MAX_CHUNK {
        return Err(bad(
            rec.offset,
            format!("a chunk of at most {MAX_CHUNK} bytes, found {size}"),
        )
        .into());
    }
    let data: std::borrow::Cow<'_, [u8]> = match compression.as_str() {
        "none" => std::borrow::Cow::Borrowed(&rec.data),
        "bz2" => std::borrow::Cow::Owned(inflate(
            bzip2::read::BzDecoder::new(&rec.data[..]),
            size,
            cut,
            rec.offset,
            "bz2",
        )?),
        "lz4" => std::borrow::Cow::Owned(inflate(
            lz4_flex::frame::FrameDecoder::new(&rec.data[..]),
            size,
            cut,
            rec.offset,
            "lz4",
        )?),
        other => {
            return Err(bad(
                rec.offset,
                format!("chunk compression none, bz2 or lz4, found '{other}'"),
            )
            .into())
        }
    };
    if !cut && data.len() != size as usize {
        return Err(bad(
            rec.offset,
            format!(
                "a chunk of {size} bytes after {compression} decompression, found {}",
                data.len()
            ),
        )
        .into());
    }
    out.chunks += 1;
    let data_start = rec.offset;
    let mut inner = RecordReader::new(&data[..], 0);
    loop {
        let r = match inner.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(RecordError::Truncated { .. }) if cut => break,
            Err(e) => {
                let e = record_err(e);
                return Err(bad(
                    data_start,
                    format!(
                        "a well-formed chunk: at byte {} of its {compression} data: {}",
                        e.offset, e.what
                    ),
                )
                .into());
            }
        };
        match r.header.op() {
            Some(record::OP_CONNECTION) => on(Event::Connection(connection(&r).map_err(|e| in_chunk(data_start, e))?), data_start)?,
            Some(record::OP_MSG_DATA) => {
                let in_file = (compression == "none").then_some(rec.data_at + r.data_at);
                message(&r, out, on, data_start, in_file)?
            }
            Some(op) => {
                return Err(bad(
                    data_start,
                    format!("connection or message records in the chunk, found op 0x{op:02x} at chunk byte {}", r.offset),
                )
                .into())
            }
            None => return Err(bad(data_start, format!("an 'op' field at chunk byte {}", r.offset)).into()),
        }
    }
    Ok(())
}

fn in_chunk(chunk_at: u64, e: BagError) -> BagError {
    bad(
        chunk_at,
        format!("in the chunk, at its byte {}: {}", e.offset, e.what),
    )
}

/// Decompresses at most `size` bytes; with `cut`, keeps what decoded before an error.
fn inflate<R: Read>(r: R, size: u32, cut: bool, at: u64, codec: &str) -> Result<Vec<u8>, BagError> {
    let mut out = Vec::new();
    let res = r.take(size as u64 + 1).read_to_end(&mut out);
    match res {
        Ok(_) => Ok(out),
        Err(_) if cut => Ok(out),
        Err(e) => Err(bad(
            at,
            format!("{codec} chunk data that decompresses: {e}"),
        )),
    }
}

impl From<RecordError> for BagError {
    fn from(e: RecordError) -> Self {
        record_err(e)
    }
}
