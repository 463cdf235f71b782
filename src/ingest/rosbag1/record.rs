//! ROS1 bag v2.0 records: `header_len u32 | header | data_len u32 | data`, where the
//! header is a list of `field_len u32 | name=value` fields (see docs/format.md §8 for
//! what bagbase reads). Owns bounds and byte offsets; never interprets message bytes.

use std::io::{ErrorKind, Read};

pub const MAGIC: &[u8] = b"#ROSBAG V2.0\n";

pub const OP_MSG_DATA: u8 = 0x02;
pub const OP_BAG_HEADER: u8 = 0x03;
pub const OP_INDEX_DATA: u8 = 0x04;
pub const OP_CHUNK: u8 = 0x05;
pub const OP_CHUNK_INFO: u8 = 0x06;
pub const OP_CONNECTION: u8 = 0x07;

/// Largest record header accepted (connection headers carry message definitions).
pub const MAX_HEADER: u32 = 16 << 20;
/// Largest record data accepted (a chunk's compressed bytes, or a message).
pub const MAX_DATA: u32 = 512 << 20;

/// Why a record could not be read.
#[derive(Debug)]
pub enum RecordError {
    /// The input ended inside the record starting at `offset` (a recording cut short).
    /// `partial` holds the record when its header was whole and only data is missing.
    Truncated {
        offset: u64,
        partial: Option<Box<Record>>,
    },
    /// The bytes at `offset` are not a valid record: `what` was expected.
    Bad {
        offset: u64,
        what: String,
    },
    Io {
        offset: u64,
        source: std::io::Error,
    },
}

/// One header field list, in file order.
#[derive(Debug, Default, Clone)]
pub struct Fields(pub Vec<(String, Vec<u8>)>);

impl Fields {
    pub fn parse(buf: &[u8], offset: u64) -> Result<Fields, RecordError> {
        let mut out = Vec::new();
        let mut at = 0usize;
        while at < buf.len() {
            let bad = |what: &str| RecordError::Bad {
                offset: offset + at as u64,
                what: what.to_string(),
            };
            let len = buf
                .get(at..at + 4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
                .ok_or_else(|| bad("a 4-byte header field length"))?;
            let field = buf
                .get(at + 4..at + 4 + len)
                .ok_or_else(|| bad("a header field within the header"))?;
            let eq = field
                .iter()
                .position(|b| *b == b'=')
                .ok_or_else(|| bad("a header field of the form name=value"))?;
            out.push((
                String::from_utf8_lossy(&field[..eq]).into_owned(),
                field[eq + 1..].to_vec(),
            ));
            at += 4 + len;
        }
        Ok(Fields(out))
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    pub fn op(&self) -> Option<u8> {
        self.get("op").and_then(|v| v.first().copied())
    }

    pub fn u32(&self, name: &str) -> Option<u32> {
        self.get(name)?.try_into().ok().map(u32::from_le_bytes)
    }

    pub fn u64(&self, name: &str) -> Option<u64> {
        self.get(name)?.try_into().ok().map(u64::from_le_bytes)
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// A ROS time (sec u32, nsec u32) as nanoseconds.
    pub fn time(&self, name: &str) -> Option<i64> {
        let v = self.get(name)?;
        if v.len() != 8 {
            return None;
        }
        let sec = u32::from_le_bytes(v[..4].try_into().ok()?) as i64;
        let nsec = u32::from_le_bytes(v[4..].try_into().ok()?) as i64;
        Some(sec * 1_000_000_000 + nsec)
    }
}

#[derive(Debug)]
pub struct Record {
    /// Offset of the record's first byte in its stream (file or decompressed chunk).
    pub offset: u64,
    pub header: Fields,
    /// Offset of the first byte of `data` in the same stream.
    pub data_at: u64,
    pub data: Vec<u8>,
}

/// Reads records one at a time from a stream; memory is one record.
pub struct RecordReader<R> {
    inner: R,
    offset: u64,
}

impl<R: Read> RecordReader<R> {
    pub fn new(inner: R, offset: u64) -> Self {
        RecordReader { inner, offset }
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Fills `buf`; `Ok(false)` on a clean end of input before the first byte.
    fn fill(&mut self, buf: &mut [u8], start: u64, allow_eof: bool) -> Result<bool, RecordError> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) if got == 0 && allow_eof => return Ok(false),
                Ok(0) => {
                    return Err(RecordError::Truncated {
                        offset: start,
                        partial: None,
                    })
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    return Err(RecordError::Truncated {
                        offset: start,
                        partial: None,
                    })
                }
                Err(source) => {
                    return Err(RecordError::Io {
                        offset: self.offset + got as u64,
                        source,
                    })
                }
            }
        }
        self.offset += buf.len() as u64;
        Ok(true)
    }

    fn len_field(
        &mut self,
        start: u64,
        max: u32,
        what: &str,
        allow_eof: bool,
    ) -> Result<Option<u32>, RecordError> {
        let at = self.offset;
        let mut b = [0u8; 4];
        if !self.fill(&mut b, start, allow_eof)? {
            return Ok(None);
        }
        let n = u32::from_le_bytes(b);
        if n > max {
            return Err(RecordError::Bad {
                offset: at,
                what: format!("a {what} length of at most {max} bytes, found {n}"),
            });
        }
        Ok(Some(n))
    }

    /// The next record, or `None` at a clean end of input.
    pub fn next_record(&mut self) -> Result<Option<Record>, RecordError> {
        let start = self.offset;
        let Some(hlen) = self.len_field(start, MAX_HEADER, "record header", true)? else {
            return Ok(None);
        };
        let mut h = vec![0u8; hlen as usize];
        self.fill(&mut h, start, false)?;
        let header = Fields::parse(&h, start + 4)?;
        let dlen = self
            .len_field(start, MAX_DATA, "record data", false)?
            .expect("eof not allowed here");
        let data_at = self.offset;
        let mut data = Vec::new();
        // Read through `take` so a lying length on a short file costs no allocation.
        let got = (&mut self.inner)
            .take(dlen as u64)
            .read_to_end(&mut data)
            .map_err(|source| RecordError::Io {
                offset: self.offset,
                source,
            })?;
        if got < dlen as usize {
            return Err(RecordError::Truncated {
                offset: start,
                partial: Some(Box::new(Record {
                    offset: start,
                    header,
                    data_at,
                    data,
                })),
            });
        }
        self.offset += dlen as u64;
        Ok(Some(Record {
            offset: start,
            header,
            data_at,
            data,
        }))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn field(name: &str, value: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&((name.len() + 1 + value.len()) as u32).to_le_bytes());
        f.extend_from_slice(name.as_bytes());
        f.push(b'=');
        f.extend_from_slice(value);
        f
    }

    pub fn record(fields: &[(&str, &[u8])], data: &[u8]) -> Vec<u8> {
        let h: Vec<u8> = fields.iter().flat_map(|(n, v)| field(n, v)).collect();
        let mut r = (h.len() as u32).to_le_bytes().to_vec();
        r.extend_from_slice(&h);
        r.extend_from_slice(&(data.len() as u32).to_le_bytes());
        r.extend_from_slice(data);
        r
    }

    #[test]
    fn reads_and_bounds() {
        let r = record(
            &[("op", &[OP_MSG_DATA]), ("conn", &7u32.to_le_bytes())],
            b"abc",
        );
        let mut rr = RecordReader::new(&r[..], 0);
        let rec = rr.next_record().unwrap().unwrap();
        assert_eq!(rec.header.op(), Some(OP_MSG_DATA));
        assert_eq!(rec.header.u32("conn"), Some(7));
        assert_eq!(rec.data, b"abc");
        assert!(rr.next_record().unwrap().is_none());
        for cut in 1..r.len() {
            let mut rr = RecordReader::new(&r[..cut], 100);
            assert!(
                matches!(
                    rr.next_record(),
                    Err(RecordError::Truncated { offset: 100, .. })
                ),
                "cut {cut}"
            );
        }
        let mut huge = r.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            RecordReader::new(&huge[..], 0).next_record(),
            Err(RecordError::Bad { offset: 0, .. })
        ));
    }
}
