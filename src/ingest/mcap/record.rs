//! MCAP records (https://mcap.dev/spec): `opcode u8 | length u64 | body`, and the body
//! fields bagbase reads (Header, Schema, Channel, Message, Chunk, DataEnd). Owns bounds
//! and byte offsets; every short or oversized field is an error naming the record's
//! offset and the field, never a panic. Message payloads are not interpreted here.

pub const MAGIC: &[u8] = b"\x89MCAP0\r\n";

pub const OP_HEADER: u8 = 0x01;
pub const OP_FOOTER: u8 = 0x02;
pub const OP_SCHEMA: u8 = 0x03;
pub const OP_CHANNEL: u8 = 0x04;
pub const OP_MESSAGE: u8 = 0x05;
pub const OP_CHUNK: u8 = 0x06;
pub const OP_DATA_END: u8 = 0x0F;

/// Largest record body read into memory (a chunk's compressed bytes, a schema, an
/// unchunked message). Attachments and other skipped records may be larger: they are
/// streamed past, never held.
pub const MAX_RECORD: u64 = 512 << 20;
/// Largest decompressed chunk accepted.
pub const MAX_CHUNK: u64 = 512 << 20;

/// A field-by-field reader over one record body; `at` is the body's offset in the file
/// (or in the decompressed chunk) for error messages.
pub struct Body<'a> {
    buf: &'a [u8],
    pos: usize,
    at: u64,
    record: &'static str,
}

impl<'a> Body<'a> {
    pub fn new(buf: &'a [u8], at: u64, record: &'static str) -> Body<'a> {
        Body {
            buf,
            pos: 0,
            at,
            record,
        }
    }

    fn take(&mut self, n: u64, field: &str) -> Result<&'a [u8], String> {
        let left = (self.buf.len() - self.pos) as u64;
        if n > left {
            return Err(format!(
                "{n} bytes for the {} field '{field}' at byte {}, but the record has {left} left",
                self.record,
                self.at + self.pos as u64
            ));
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    pub fn u16(&mut self, field: &str) -> Result<u16, String> {
        Ok(u16::from_le_bytes(
            self.take(2, field)?.try_into().expect("2"),
        ))
    }

    pub fn u32(&mut self, field: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4, field)?.try_into().expect("4"),
        ))
    }

    pub fn u64(&mut self, field: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8, field)?.try_into().expect("8"),
        ))
    }

    /// A timestamp in nanoseconds that fits the tables' signed 64-bit time.
    pub fn time(&mut self, field: &str) -> Result<i64, String> {
        let at = self.at + self.pos as u64;
        let t = self.u64(field)?;
        i64::try_from(t).map_err(|_| {
            format!(
                "a {} '{field}' below 2^63 ns at byte {at}, found {t}",
                self.record
            )
        })
    }

    /// `u32 length | bytes`.
    pub fn bytes(&mut self, field: &str) -> Result<&'a [u8], String> {
        let n = self.u32(field)?;
        self.take(n as u64, field)
    }

    /// `u64 length | bytes` (a chunk's records).
    pub fn long_bytes(&mut self, field: &str) -> Result<&'a [u8], String> {
        let n = self.u64(field)?;
        self.take(n, field)
    }

    pub fn string(&mut self, field: &str) -> Result<String, String> {
        let at = self.at + self.pos as u64;
        let b = self.bytes(field)?;
        String::from_utf8(b.to_vec()).map_err(|_| {
            format!(
                "UTF-8 text in the {} field '{field}' at byte {at}",
                self.record
            )
        })
    }

    /// The bytes after the fields read so far (a message's payload).
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }
}

/// A schema record: how a channel's messages are described.
#[derive(Clone, Debug)]
pub struct Schema {
    pub id: u16,
    pub name: String,
    pub encoding: String,
    pub data: Vec<u8>,
}

pub fn schema(b: &mut Body<'_>) -> Result<Schema, String> {
    Ok(Schema {
        id: b.u16("id")?,
        name: b.string("name")?,
        encoding: b.string("encoding")?,
        data: b.bytes("data")?.to_vec(),
    })
}

/// A channel record: one topic's stream of messages of one schema.
#[derive(Clone, Debug)]
pub struct Channel {
    pub id: u16,
    pub schema_id: u16,
    pub topic: String,
    pub message_encoding: String,
}

pub fn channel(b: &mut Body<'_>) -> Result<Channel, String> {
    let c = Channel {
        id: b.u16("id")?,
        schema_id: b.u16("schema_id")?,
        topic: b.string("topic")?,
        message_encoding: b.string("message_encoding")?,
    };
    b.bytes("metadata")?; // a map<string, string> bagbase does not use
    Ok(c)
}

/// A message record's fixed fields and payload.
pub struct Message<'a> {
    pub channel_id: u16,
    pub log_time: i64,
    pub data: &'a [u8],
}

pub fn message<'a>(b: &mut Body<'a>) -> Result<Message<'a>, String> {
    let channel_id = b.u16("channel_id")?;
    b.u32("sequence")?;
    let log_time = b.time("log_time")?;
    b.u64("publish_time")?;
    Ok(Message {
        channel_id,
        log_time,
        data: b.rest(),
    })
}

/// A chunk record: compressed records, with the CRC of their uncompressed form.
pub struct Chunk<'a> {
    pub uncompressed_size: u64,
    pub uncompressed_crc: u32,
    pub compression: String,
    pub records: &'a [u8],
}

pub fn chunk<'a>(b: &mut Body<'a>) -> Result<Chunk<'a>, String> {
    b.u64("message_start_time")?;
    b.u64("message_end_time")?;
    Ok(Chunk {
        uncompressed_size: b.u64("uncompressed_size")?,
        uncompressed_crc: b.u32("uncompressed_crc")?,
        compression: b.string("compression")?,
        records: b.long_bytes("records")?,
    })
}

/// Splits a decompressed chunk into `(opcode, offset in chunk, body)` records.
pub fn chunk_records(buf: &[u8]) -> impl Iterator<Item = Result<(u8, u64, &[u8]), String>> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        if pos >= buf.len() {
            return None;
        }
        let at = pos as u64;
        let Some(head) = buf.get(pos..pos + 9) else {
            pos = buf.len();
            return Some(Err(format!(
                "a 9-byte record header at chunk byte {at}, but the chunk has {} bytes left",
                buf.len() as u64 - at
            )));
        };
        let op = head[0];
        let len = u64::from_le_bytes(head[1..9].try_into().expect("8"));
        let start = pos + 9;
        let left = (buf.len() - start) as u64;
        if len > left {
            pos = buf.len();
            return Some(Err(format!(
                "a record of {len} bytes at chunk byte {at} (opcode 0x{op:02x}), but the chunk has {left} bytes left"
            )));
        }
        pos = start + len as usize;
        Some(Ok((op, at, &buf[start..pos])))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_fields_are_errors_naming_the_field() {
        let mut b = Body::new(&[1, 0, 3, 0, 0, 0, b'a'], 100, "Schema");
        assert_eq!(b.u16("id").unwrap(), 1);
        let e = b.string("name").unwrap_err();
        assert!(e.contains("'name'") && e.contains("byte 106"), "{e}");
        let big = [0xffu8; 8];
        let e = Body::new(&big, 0, "Message").time("log_time").unwrap_err();
        assert!(e.contains("2^63"), "{e}");
    }

    #[test]
    fn chunk_records_stop_at_a_lying_length() {
        let mut buf = vec![OP_MESSAGE];
        buf.extend_from_slice(&2u64.to_le_bytes());
        buf.extend_from_slice(&[7, 7]);
        buf.push(OP_CHANNEL);
        buf.extend_from_slice(&100u64.to_le_bytes());
        let got: Vec<_> = chunk_records(&buf).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_ref().unwrap().2, &[7, 7]);
        assert!(got[1].as_ref().unwrap_err().contains("chunk byte 11"));
    }
}
