//! Content-addressed manifest nodes in the metadata KV (`n/<sha256>`).
//! A node's id is the SHA-256 of its encoding, so equal subtrees have equal ids and a
//! diff can skip them by comparing ids. Nodes are immutable; `gc` removes unreachable ones.
//! Encoding: one kind byte, then JSON (root, file bucket, table, segment leaf) or a packed binary
//! list (chunk list, chunk-list index). See docs/format.md.

use super::error::{Result, VersionError};
use crate::store::{Batch, Id, MetaKv};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub const NODE_PREFIX: &[u8] = b"n/";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Root = b'R',
    FileBucket = b'F',
    Table = b'T',
    /// A run of a table's segments (see `table_tree`).
    SegmentLeaf = b'S',
    ChunkList = b'C',
    /// The parts of a long chunk list, in order (format 3 on; see `chunk_list`).
    ChunkIndex = b'L',
}

/// Bytes per record of a `C` node (chunk id + raw length u32) and an `L` node (child
/// node id + the raw bytes below it, u64).
const CHUNK_RECORD: usize = 36;
const INDEX_RECORD: usize = 40;
/// How deep `L` nodes may nest: 4096⁶ chunks is far beyond any store.
const MAX_INDEX_DEPTH: usize = 6;

pub fn node_key(id: &Id) -> Vec<u8> {
    [NODE_PREFIX, &id.0].concat()
}

fn bad(id: &Id, detail: impl Into<String>) -> VersionError {
    VersionError::BadNode {
        id: id.hex(),
        detail: detail.into(),
    }
}

/// Collects new nodes for one atomic publish; a node already stored is not written again.
#[derive(Default)]
pub struct NodeWriter {
    pub batch: Batch,
}

impl NodeWriter {
    fn put(&mut self, kv: &dyn MetaKv, bytes: Vec<u8>) -> Result<Id> {
        let id = Id::of(&bytes);
        if !self.has(kv, &id)? {
            self.batch.put(node_key(&id), bytes);
        }
        Ok(id)
    }

    pub fn put_json<T: Serialize>(&mut self, kv: &dyn MetaKv, kind: Kind, value: &T) -> Result<Id> {
        self.put_json_sized(kv, kind, value).map(|(id, _)| id)
    }

    /// `put_json`, also returning the encoding's length.
    pub fn put_json_sized<T: Serialize>(
        &mut self,
        kv: &dyn MetaKv,
        kind: Kind,
        value: &T,
    ) -> Result<(Id, usize)> {
        let mut bytes = vec![kind as u8];
        serde_json::to_writer(&mut bytes, value).expect("manifest nodes serialize");
        let len = bytes.len();
        Ok((self.put(kv, bytes)?, len))
    }

    /// Whether the node is stored or pending in this writer.
    pub fn has(&self, kv: &dyn MetaKv, id: &Id) -> Result<bool> {
        let key = node_key(id);
        Ok(matches!(self.batch.pending(&key), Some(Some(_))) || kv.contains(&key)?)
    }

    pub fn put_chunks(&mut self, kv: &dyn MetaKv, chunks: &[(Id, u32)]) -> Result<Id> {
        self.put(kv, encode_chunks(chunks))
    }

    pub fn put_chunk_index(&mut self, kv: &dyn MetaKv, parts: &[(Id, u64)]) -> Result<Id> {
        self.put(kv, encode_index(parts))
    }

    /// Reads a node, seeing this writer's not-yet-published nodes too.
    pub fn get(&self, kv: &dyn MetaKv, id: &Id) -> Result<Vec<u8>> {
        let key = node_key(id);
        if let Some(Some(v)) = self.batch.pending(&key) {
            return Ok(v.to_vec());
        }
        get_raw(kv, id)
    }
}

pub fn get_raw(kv: &dyn MetaKv, id: &Id) -> Result<Vec<u8>> {
    kv.get(&node_key(id))?
        .ok_or_else(|| bad(id, "missing from the metadata store"))
}

pub fn decode_json<T: DeserializeOwned>(id: &Id, kind: Kind, bytes: &[u8]) -> Result<T> {
    match bytes.split_first() {
        Some((k, body)) if *k == kind as u8 => {
            serde_json::from_slice(body).map_err(|e| bad(id, format!("{kind:?}: {e}")))
        }
        _ => Err(bad(id, format!("expected a {kind:?} node"))),
    }
}

/// A `C` node: chunk ids and raw lengths.
pub fn encode_chunks(chunks: &[(Id, u32)]) -> Vec<u8> {
    encode(
        Kind::ChunkList,
        chunks.iter().map(|(id, len)| (id, len.to_le_bytes())),
    )
}

/// An `L` node: child node ids and the raw bytes each stands for.
pub fn encode_index(parts: &[(Id, u64)]) -> Vec<u8> {
    encode(
        Kind::ChunkIndex,
        parts.iter().map(|(id, raw)| (id, raw.to_le_bytes())),
    )
}

/// The kind byte, then each record: an id and its fixed-size little-endian number.
fn encode<'i, const N: usize>(
    kind: Kind,
    records: impl ExactSizeIterator<Item = (&'i Id, [u8; N])>,
) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(1 + records.len() * (32 + N));
    bytes.push(kind as u8);
    for (id, n) in records {
        bytes.extend_from_slice(&id.0);
        bytes.extend_from_slice(&n);
    }
    bytes
}

fn records<'b>(
    id: &Id,
    bytes: &'b [u8],
    kind: Kind,
    size: usize,
) -> Result<impl Iterator<Item = (Id, &'b [u8])>> {
    match bytes.split_first() {
        Some((k, body)) if *k == kind as u8 && body.len() % size == 0 => {
            Ok(body.chunks_exact(size).map(|c| {
                let (id, rest) = c.split_at(32);
                (Id(id.try_into().expect("32 bytes")), rest)
            }))
        }
        _ => Err(bad(id, format!("expected a {kind:?} node"))),
    }
}

pub fn decode_chunks(id: &Id, bytes: &[u8]) -> Result<Vec<(Id, u32)>> {
    Ok(records(id, bytes, Kind::ChunkList, CHUNK_RECORD)?
        .map(|(c, len)| (c, u32::from_le_bytes(len.try_into().expect("4 bytes"))))
        .collect())
}

pub fn decode_index(id: &Id, bytes: &[u8]) -> Result<Vec<(Id, u64)>> {
    Ok(records(id, bytes, Kind::ChunkIndex, INDEX_RECORD)?
        .map(|(c, raw)| (c, u64::from_le_bytes(raw.try_into().expect("8 bytes"))))
        .collect())
}

pub fn get_json<T: DeserializeOwned>(kv: &dyn MetaKv, id: &Id, kind: Kind) -> Result<T> {
    decode_json(id, kind, &get_raw(kv, id)?)
}

/// A stored stream's whole chunk list: a `C` node, or an `L` node's parts in order.
pub fn get_chunks(kv: &dyn MetaKv, id: &Id) -> Result<Vec<(Id, u32)>> {
    let mut out = Vec::new();
    append_chunks(kv, id, 0, &mut out)?;
    Ok(out)
}

fn append_chunks(kv: &dyn MetaKv, id: &Id, depth: usize, out: &mut Vec<(Id, u32)>) -> Result<()> {
    let bytes = get_raw(kv, id)?;
    if bytes.first() != Some(&(Kind::ChunkIndex as u8)) {
        out.extend(decode_chunks(id, &bytes)?);
        return Ok(());
    }
    if depth >= MAX_INDEX_DEPTH {
        return Err(bad(id, "chunk-list index nested too deep"));
    }
    for (part, _) in decode_index(id, &bytes)? {
        append_chunks(kv, &part, depth + 1, out)?;
    }
    Ok(())
}

/// The ids a node refers to: child nodes and chunks (for reachability in gc and fsck).
pub fn children(id: &Id, bytes: &[u8]) -> Result<(Vec<Id>, Vec<Id>)> {
    use super::manifest::{FileBucket, Root};
    let kind = *bytes.first().ok_or_else(|| bad(id, "empty node"))?;
    Ok(match kind {
        k if k == Kind::Root as u8 => {
            let r: Root = decode_json(id, Kind::Root, bytes)?;
            (
                r.files.values().chain(r.tables.values()).copied().collect(),
                vec![],
            )
        }
        k if k == Kind::FileBucket as u8 => {
            let b: FileBucket = decode_json(id, Kind::FileBucket, bytes)?;
            (b.files.values().map(|f| f.chunks).collect(), vec![])
        }
        k if k == Kind::Table as u8 || k == Kind::SegmentLeaf as u8 => {
            (super::table_tree::children(id, bytes)?, vec![])
        }
        k if k == Kind::ChunkList as u8 => (
            vec![],
            decode_chunks(id, bytes)?.into_iter().map(|c| c.0).collect(),
        ),
        k if k == Kind::ChunkIndex as u8 => (
            decode_index(id, bytes)?.into_iter().map(|c| c.0).collect(),
            vec![],
        ),
        other => return Err(bad(id, format!("unknown node kind {other}"))),
    })
}
