//! Streaming scan of an MCAP file's data section, records in file order, one record (or
//! one decompressed chunk) in memory at a time. Needs no summary or index, so a file
//! whose writer crashed is read up to its last complete record, and says where that is.
//! Checks the chunk CRCs and the data-section CRC when the writer set them.

use super::record::{self, Body, Schema, MAGIC, MAX_CHUNK, MAX_RECORD};
pub use crate::ingest::message::Event;
use crate::ingest::message::{Codec, Connection};
use std::collections::HashMap;
use std::io::Read;

/// A problem with the file's bytes: where, and what was expected there.
#[derive(Debug, Clone, PartialEq)]
pub struct McapError {
    pub offset: u64,
    pub what: String,
}

#[derive(Debug, Default)]
pub struct Scan {
    pub chunks: u64,
    pub messages: u64,
    /// Set when the file ends before its DataEnd record: where usable data ends.
    pub truncated_at: Option<u64>,
    /// Channels whose encoding bagbase keeps raw: (topic, message encoding, schema encoding).
    pub raw_channels: Vec<(String, String, String)>,
}

fn bad(offset: u64, what: impl Into<String>) -> McapError {
    McapError {
        offset,
        what: what.into(),
    }
}

/// Schemas can be repeated in every chunk; their total is bounded all the same.
const MAX_SCHEMA_BYTES: usize = 64 << 20;

/// Schemas and channels seen so far.
#[derive(Default)]
struct Registry {
    schemas: HashMap<u16, Schema>,
    schema_bytes: usize,
    channels: HashMap<u16, ()>,
}

/// Reads the whole input, hashing what it reads into the data-section CRC.
struct Input<R> {
    inner: R,
    offset: u64,
    crc: crc32fast::Hasher,
}

impl<R: Read> Input<R> {
    /// Fills `buf`; returns how many bytes the input had (fewer at its end).
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, McapError> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(bad(
                        self.offset + got as u64,
                        format!("readable bytes (read failed: {e})"),
                    ))
                }
            }
        }
        self.crc.update(&buf[..got]);
        self.offset += got as u64;
        Ok(got)
    }

    /// Reads and drops `n` bytes; returns how many there were.
    fn skip(&mut self, mut n: u64) -> Result<u64, McapError> {
        let mut buf = vec![0u8; 64 << 10];
        let mut done = 0;
        while n > 0 {
            let want = n.min(buf.len() as u64) as usize;
            let got = self.fill(&mut buf[..want])?;
            done += got as u64;
            if got < want {
                break;
            }
            n -= got as u64;
        }
        Ok(done)
    }
}

/// Scans an MCAP stream, calling `on` for every channel (as a connection) and message in
/// file order. Errors from `on` abort the scan and are returned as is.
pub fn scan<R: Read, E: From<McapError>>(
    input: R,
    on: &mut dyn FnMut(Event<'_>, u64) -> Result<(), E>,
) -> Result<Scan, E> {
    let mut inp = Input {
        inner: input,
        offset: 0,
        crc: crc32fast::Hasher::new(),
    };
    let mut magic = [0u8; 8];
    let n = inp.fill(&mut magic)?;
    if n == 0 {
        return Err(bad(
            0,
            "an MCAP file (magic 89 4D 43 41 50 30 0D 0A), found an empty file",
        )
        .into());
    }
    if magic[..n] != MAGIC[..n] || n < MAGIC.len() {
        return Err(bad(0, "the MCAP magic bytes 89 4D 43 41 50 30 0D 0A").into());
    }
    let mut out = Scan::default();
    let mut reg = Registry::default();
    let mut body = Vec::new();
    loop {
        let at = inp.offset;
        let crc_before = inp.crc.clone().finalize();
        let mut head = [0u8; 9];
        let got = inp.fill(&mut head)?;
        if got < head.len() {
            out.truncated_at = Some(at);
            break;
        }
        let op = head[0];
        let len = u64::from_le_bytes(head[1..9].try_into().expect("8"));
        let wanted = matches!(
            op,
            record::OP_HEADER
                | record::OP_SCHEMA
                | record::OP_CHANNEL
                | record::OP_MESSAGE
                | record::OP_CHUNK
                | record::OP_DATA_END
        );
        if !wanted {
            if op == record::OP_FOOTER {
                // A footer right after the data: no DataEnd was written; nothing is lost.
                break;
            }
            if inp.skip(len)? < len {
                out.truncated_at = Some(at);
                break;
            }
            continue;
        }
        if len > MAX_RECORD {
            return Err(bad(
                at,
                format!("a record of at most {MAX_RECORD} bytes (opcode 0x{op:02x}), found a length of {len}"),
            )
            .into());
        }
        body.resize(len as usize, 0);
        if inp.fill(&mut body)? < body.len() {
            out.truncated_at = Some(at);
            break;
        }
        let body_at = at + 9;
        match op {
            record::OP_DATA_END => {
                let mut b = Body::new(&body, body_at, "DataEnd");
                let want = b.u32("data_section_crc").map_err(|w| bad(at, w))?;
                if want != 0 && want != crc_before {
                    return Err(bad(
                        at,
                        format!("the data section CRC {want:08x} the DataEnd record gives, computed {crc_before:08x}"),
                    )
                    .into());
                }
                break;
            }
            record::OP_CHUNK => {
                out.chunks += 1;
                chunk(&body, at, &mut reg, &mut out, on)?
            }
            _ => {
                let place = Place {
                    at,
                    chunk_off: None,
                    in_file: Some(body_at),
                };
                one(op, &body, body_at, place, &mut reg, &mut out, on)?
            }
        }
    }
    Ok(out)
}

fn chunk<E: From<McapError>>(
    body: &[u8],
    at: u64,
    reg: &mut Registry,
    out: &mut Scan,
    on: &mut dyn FnMut(Event<'_>, u64) -> Result<(), E>,
) -> Result<(), E> {
    let mut b = Body::new(body, at + 9, "Chunk");
    let c = record::chunk(&mut b).map_err(|w| bad(at, w))?;
    if c.uncompressed_size > MAX_CHUNK {
        return Err(bad(
            at,
            format!(
                "a chunk of at most {MAX_CHUNK} bytes uncompressed, found {}",
                c.uncompressed_size
            ),
        )
        .into());
    }
    let size = c.uncompressed_size as usize;
    let data: std::borrow::Cow<'_, [u8]> = match c.compression.as_str() {
        "" => c.records.into(),
        "zstd" => zstd::bulk::decompress(c.records, size)
            .map_err(|e| bad(at, format!("a zstd-compressed chunk ({e})")))?
            .into(),
        "lz4" => {
            let mut v = Vec::with_capacity(size);
            lz4_flex::frame::FrameDecoder::new(c.records)
                .take(size as u64 + 1)
                .read_to_end(&mut v)
                .map_err(|e| bad(at, format!("an lz4-compressed chunk ({e})")))?;
            v.into()
        }
        other => {
            return Err(bad(
                at,
                format!("chunk compression '', 'zstd' or 'lz4', found '{other}'"),
            )
            .into())
        }
    };
    if data.len() != size {
        return Err(bad(
            at,
            format!(
                "a chunk of {size} bytes uncompressed as its header says, found {}",
                data.len()
            ),
        )
        .into());
    }
    if c.uncompressed_crc != 0 {
        let crc = crc32fast::hash(&data);
        if crc != c.uncompressed_crc {
            return Err(bad(
                at,
                format!(
                    "the chunk CRC {:08x} its header gives, computed {crc:08x}",
                    c.uncompressed_crc
                ),
            )
            .into());
        }
    }
    // An uncompressed chunk's records lie in the file as they are.
    let records_at = match c.compression.as_str() {
        "" => offset_in(body, c.records).map(|o| at + 9 + o),
        _ => None,
    };
    for r in record::chunk_records(&data) {
        let (op, off, rec) = r.map_err(|w| bad(at, w))?;
        let place = Place {
            at,
            chunk_off: Some(off),
            in_file: records_at.map(|r| r + off + 9),
        };
        one(op, rec, off + 9, place, reg, out, on)?;
    }
    Ok(())
}

/// Where `inner` starts in `outer`, when it is a part of it.
fn offset_in(outer: &[u8], inner: &[u8]) -> Option<u64> {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    (i >= o && i + inner.len() <= o + outer.len()).then(|| (i - o) as u64)
}

/// Where a record is: the record (or its chunk) at file byte `at`, its offset inside
/// that chunk, and the file offset of its body when the body lies in the file as is.
struct Place {
    at: u64,
    chunk_off: Option<u64>,
    in_file: Option<u64>,
}

/// Handles one Header, Schema, Channel or Message record.
fn one<E: From<McapError>>(
    op: u8,
    body: &[u8],
    body_at: u64,
    where_: Place,
    reg: &mut Registry,
    out: &mut Scan,
    on: &mut dyn FnMut(Event<'_>, u64) -> Result<(), E>,
) -> Result<(), E> {
    let Place {
        at,
        chunk_off,
        in_file,
    } = where_;
    let place = |w: String| match chunk_off {
        Some(o) => bad(at, format!("{w} (record at chunk byte {o})")),
        None => bad(at, w),
    };
    match op {
        record::OP_SCHEMA => {
            let s = record::schema(&mut Body::new(body, body_at, "Schema")).map_err(place)?;
            if s.id == 0 {
                return Err(place("a schema id other than 0".into()).into());
            }
            if !reg.schemas.contains_key(&s.id) {
                reg.schema_bytes += s.data.len();
                if reg.schema_bytes > MAX_SCHEMA_BYTES {
                    return Err(place(format!(
                        "schemas of at most {MAX_SCHEMA_BYTES} bytes in all"
                    ))
                    .into());
                }
                reg.schemas.insert(s.id, s);
            }
        }
        record::OP_CHANNEL => {
            let c = record::channel(&mut Body::new(body, body_at, "Channel")).map_err(place)?;
            if reg.channels.contains_key(&c.id) {
                return Ok(());
            }
            let schema = match c.schema_id {
                0 => None,
                id => Some(reg.schemas.get(&id).ok_or_else(|| {
                    place(format!(
                        "the schema {id} of channel {} ('{}') before the channel",
                        c.id, c.topic
                    ))
                })?),
            };
            let codec = match (
                c.message_encoding.as_str(),
                schema.map(|s| s.encoding.as_str()),
            ) {
                ("cdr", Some("ros2msg")) => Some(Codec::Cdr),
                ("ros1", Some("ros1msg")) => Some(Codec::Ros1),
                _ => None,
            };
            if codec.is_none() {
                out.raw_channels.push((
                    c.topic.clone(),
                    c.message_encoding.clone(),
                    schema.map(|s| s.encoding.clone()).unwrap_or_default(),
                ));
            }
            reg.channels.insert(c.id, ());
            let conn = Connection {
                id: c.id as u32,
                topic: c.topic,
                msg_type: schema.map(|s| s.name.clone()).unwrap_or_default(),
                md5sum: String::new(),
                definition: schema
                    .map(|s| String::from_utf8_lossy(&s.data).into_owned())
                    .unwrap_or_default(),
                codec,
            };
            on(Event::Connection(conn), at)?;
        }
        record::OP_MESSAGE => {
            let m = record::message(&mut Body::new(body, body_at, "Message")).map_err(place)?;
            if !reg.channels.contains_key(&m.channel_id) {
                return Err(place(format!(
                    "a channel record for channel {} before its messages",
                    m.channel_id
                ))
                .into());
            }
            out.messages += 1;
            on(
                Event::Message {
                    conn: m.channel_id as u32,
                    time: m.log_time,
                    data: m.data,
                    offset: in_file.and_then(|f| offset_in(body, m.data).map(|o| f + o)),
                },
                at,
            )?;
        }
        _ => {} // Header, and records a chunk may carry that bagbase does not use
    }
    Ok(())
}
