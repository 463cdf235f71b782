//! A small ROS1 bag v2.0 writer for benchmarks: chunked (none, lz4 or bz2), with
//! connection records, per-chunk index data, chunk infos and a bag header pointing at
//! the index — a bag `rosbag` and the Python `rosbags` library open as any other.

use std::io::{Seek, SeekFrom, Write};

fn field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(&((name.len() + 1 + value.len()) as u32).to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
}

fn record(out: &mut Vec<u8>, fields: &[(&str, &[u8])], data: &[u8]) {
    let mut h = Vec::new();
    for (n, v) in fields {
        field(&mut h, n, v);
    }
    out.extend_from_slice(&(h.len() as u32).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
}

fn time(ns: i64) -> [u8; 8] {
    let mut t = [0u8; 8];
    t[..4].copy_from_slice(&((ns / 1_000_000_000) as u32).to_le_bytes());
    t[4..].copy_from_slice(&((ns % 1_000_000_000) as u32).to_le_bytes());
    t
}

pub struct Conn {
    pub topic: String,
    pub msg_type: String,
    pub md5sum: String,
    pub definition: String,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Compression {
    None,
    Lz4,
    Bz2,
}

/// Where a chunk starts, its first and last message time, and (connection, count) pairs.
type ChunkInfo = (u64, i64, i64, Vec<(u32, u32)>);

pub struct BagWriter<W: Write + Seek> {
    out: W,
    pos: u64,
    conns: Vec<Conn>,
    compression: Compression,
    chunk: Vec<u8>,
    chunk_index: Vec<Vec<(i64, u32)>>,
    chunk_times: Option<(i64, i64)>,
    written_conns: Vec<bool>,
    chunk_infos: Vec<ChunkInfo>,
    pub threshold: usize,
}

impl<W: Write + Seek> BagWriter<W> {
    pub fn new(mut out: W, conns: Vec<Conn>, compression: Compression) -> std::io::Result<Self> {
        out.write_all(b"#ROSBAG V2.0\n")?;
        let n = conns.len();
        let mut w = BagWriter {
            out,
            pos: 13,
            conns,
            compression,
            chunk: Vec::new(),
            chunk_index: vec![Vec::new(); n],
            chunk_times: None,
            written_conns: vec![false; n],
            chunk_infos: Vec::new(),
            threshold: 768 * 1024,
        };
        w.write_header(0)?;
        Ok(w)
    }

    /// The bag header record, padded to 4096 bytes as rosbag does.
    fn write_header(&mut self, index_pos: u64) -> std::io::Result<()> {
        let mut h = Vec::new();
        field(&mut h, "op", &[0x03]);
        field(&mut h, "index_pos", &index_pos.to_le_bytes());
        field(
            &mut h,
            "conn_count",
            &(self.conns.len() as u32).to_le_bytes(),
        );
        field(
            &mut h,
            "chunk_count",
            &(self.chunk_infos.len() as u32).to_le_bytes(),
        );
        let pad = 4096 - 4 - h.len() - 4;
        let mut r = Vec::new();
        r.extend_from_slice(&(h.len() as u32).to_le_bytes());
        r.extend_from_slice(&h);
        r.extend_from_slice(&(pad as u32).to_le_bytes());
        r.extend(std::iter::repeat_n(b' ', pad));
        self.out.write_all(&r)?;
        self.pos = 13 + r.len() as u64;
        Ok(())
    }

    fn conn_record(&self, out: &mut Vec<u8>, id: usize) {
        let c = &self.conns[id];
        let mut data = Vec::new();
        field(&mut data, "topic", c.topic.as_bytes());
        field(&mut data, "type", c.msg_type.as_bytes());
        field(&mut data, "md5sum", c.md5sum.as_bytes());
        field(&mut data, "message_definition", c.definition.as_bytes());
        record(
            out,
            &[
                ("op", &[0x07]),
                ("conn", &(id as u32).to_le_bytes()),
                ("topic", c.topic.as_bytes()),
            ],
            &data,
        );
    }

    pub fn write(&mut self, conn: usize, t: i64, msg: &[u8]) -> std::io::Result<()> {
        if !self.written_conns[conn] {
            self.written_conns[conn] = true;
            let mut buf = std::mem::take(&mut self.chunk);
            self.conn_record(&mut buf, conn);
            self.chunk = buf;
        }
        let offset = self.chunk.len() as u32;
        record(
            &mut self.chunk,
            &[
                ("op", &[0x02]),
                ("conn", &(conn as u32).to_le_bytes()),
                ("time", &time(t)),
            ],
            msg,
        );
        self.chunk_index[conn].push((t, offset));
        self.chunk_times = Some(match self.chunk_times {
            None => (t, t),
            Some((a, b)) => (a.min(t), b.max(t)),
        });
        if self.chunk.len() >= self.threshold {
            self.flush_chunk()?;
        }
        Ok(())
    }

    fn flush_chunk(&mut self) -> std::io::Result<()> {
        let Some((start, end)) = self.chunk_times.take() else {
            return Ok(());
        };
        let raw = std::mem::take(&mut self.chunk);
        let (name, data): (&str, Vec<u8>) = match self.compression {
            Compression::None => ("none", raw.clone()),
            Compression::Lz4 => {
                let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
                e.write_all(&raw)?;
                ("lz4", e.finish().map_err(std::io::Error::other)?)
            }
            Compression::Bz2 => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(9));
                e.write_all(&raw)?;
                ("bz2", e.finish()?)
            }
        };
        let chunk_pos = self.pos;
        let mut out = Vec::new();
        record(
            &mut out,
            &[
                ("op", &[0x05]),
                ("compression", name.as_bytes()),
                ("size", &(raw.len() as u32).to_le_bytes()),
            ],
            &data,
        );
        let mut counts = Vec::new();
        for (conn, entries) in self.chunk_index.iter_mut().enumerate() {
            if entries.is_empty() {
                continue;
            }
            let mut d = Vec::with_capacity(entries.len() * 12);
            for (t, off) in entries.iter() {
                d.extend_from_slice(&time(*t));
                d.extend_from_slice(&off.to_le_bytes());
            }
            record(
                &mut out,
                &[
                    ("op", &[0x04]),
                    ("ver", &1u32.to_le_bytes()),
                    ("conn", &(conn as u32).to_le_bytes()),
                    ("count", &(entries.len() as u32).to_le_bytes()),
                ],
                &d,
            );
            counts.push((conn as u32, entries.len() as u32));
            entries.clear();
        }
        self.out.write_all(&out)?;
        self.pos += out.len() as u64;
        self.chunk_infos.push((chunk_pos, start, end, counts));
        Ok(())
    }

    /// Writes the last chunk, the connection and chunk-info index, and the header.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.flush_chunk()?;
        let index_pos = self.pos;
        let mut out = Vec::new();
        for id in 0..self.conns.len() {
            self.conn_record(&mut out, id);
        }
        for (pos, start, end, counts) in &self.chunk_infos {
            let mut d = Vec::new();
            for (c, n) in counts {
                d.extend_from_slice(&c.to_le_bytes());
                d.extend_from_slice(&n.to_le_bytes());
            }
            record(
                &mut out,
                &[
                    ("op", &[0x06]),
                    ("ver", &1u32.to_le_bytes()),
                    ("chunk_pos", &pos.to_le_bytes()),
                    ("start_time", &time(*start)),
                    ("end_time", &time(*end)),
                    ("count", &(counts.len() as u32).to_le_bytes()),
                ],
                &d,
            );
        }
        self.out.write_all(&out)?;
        self.out.seek(SeekFrom::Start(13))?;
        self.write_header(index_pos)?;
        self.out.flush()?;
        Ok(self.out)
    }
}
