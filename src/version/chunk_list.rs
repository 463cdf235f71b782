//! Builds a stored stream's chunk list while the stream is written (format 3 on): up to
//! `FANOUT` chunks per `C` node, and above them `L` nodes of up to `FANOUT` parts each
//! (docs/format.md §4). Each full node is staged in the metadata store as it fills, so
//! an ingest holds at most one unfinished node per level, whatever the file's size; the
//! last, partial nodes go into the caller's batch. The shape depends on the list alone,
//! so equal lists get equal ids, and a list of at most `FANOUT` chunks is the single
//! `C` node earlier formats write.

use super::error::Result;
use super::node::{self, NodeWriter};
use crate::store::{ChunkSink, Id, MetaKv, Stager};

/// Chunks per `C` node and parts per `L` node: ≈ 147 KiB / 164 KiB nodes, and one level
/// of `L` nodes covers 16 M chunks (1 TiB at the default 64 KiB chunks).
pub const FANOUT: usize = 4096;

pub struct ChunkListBuilder<'a> {
    /// `None`: the store predates format 3, so the list stays one `C` node in memory.
    stage: Option<Stager<'a>>,
    /// `FANOUT`, smaller in tests.
    fanout: usize,
    leaf: Vec<(Id, u32)>,
    leaf_bytes: u64,
    /// Finished parts per level (level 0: `C` nodes), each with the raw bytes below it.
    levels: Vec<Vec<(Id, u64)>>,
}

impl<'a> ChunkListBuilder<'a> {
    pub fn new(stage: Option<Stager<'a>>) -> Self {
        ChunkListBuilder {
            stage,
            fanout: FANOUT,
            leaf: Vec::new(),
            leaf_bytes: 0,
            levels: Vec::new(),
        }
    }

    /// Puts what is left into `nodes` and returns the id of the list's top node.
    pub fn finish(mut self, nodes: &mut NodeWriter, kv: &dyn MetaKv) -> Result<Id> {
        if self.levels.is_empty() {
            return nodes.put_chunks(kv, &self.leaf);
        }
        if !self.leaf.is_empty() {
            let id = nodes.put_chunks(kv, &self.leaf)?;
            self.levels[0].push((id, self.leaf_bytes));
        }
        let mut level = 0;
        loop {
            let parts = std::mem::take(&mut self.levels[level]);
            let top = level + 1 == self.levels.len();
            match parts.as_slice() {
                [] => {}
                [(only, _)] if top => return Ok(*only),
                _ => {
                    let id = nodes.put_chunk_index(kv, &parts)?;
                    if top {
                        self.levels.push(Vec::new());
                    }
                    self.levels[level + 1].push((id, parts.iter().map(|p| p.1).sum()));
                }
            }
            level += 1;
        }
    }

    /// Stages a full node and adds it to the level above (staging that one when full).
    fn stage_part(&mut self, level: usize, bytes: Vec<u8>, raw: u64) -> crate::store::Result<()> {
        let id = Id::of(&bytes);
        if let Some(stage) = &self.stage {
            stage.put(node::node_key(&id), bytes)?;
        }
        if self.levels.len() == level {
            self.levels.push(Vec::new());
        }
        self.levels[level].push((id, raw));
        if self.levels[level].len() == self.fanout {
            let parts = std::mem::take(&mut self.levels[level]);
            let raw = parts.iter().map(|p| p.1).sum();
            self.stage_part(level + 1, node::encode_index(&parts), raw)?;
        }
        Ok(())
    }
}

impl ChunkSink for ChunkListBuilder<'_> {
    fn chunk(&mut self, id: Id, len: u32) -> crate::store::Result<()> {
        self.leaf.push((id, len));
        self.leaf_bytes += len as u64;
        if self.stage.is_some() && self.leaf.len() == self.fanout {
            let bytes = node::encode_chunks(&self.leaf);
            self.leaf.clear();
            let raw = std::mem::take(&mut self.leaf_bytes);
            self.stage_part(0, bytes, raw)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ChunkStore, StoreConfig};

    fn nodes(store: &ChunkStore) -> Vec<Vec<u8>> {
        let all = store.kv().scan_prefix(node::NODE_PREFIX).unwrap();
        all.into_iter().map(|(k, _)| k).collect()
    }

    fn list(n: u32) -> Vec<(Id, u32)> {
        (0..n)
            .map(|i| (Id::of(&i.to_le_bytes()), 100 + i))
            .collect()
    }

    /// Builds `chunks` with fan-out 3 (levels fill at 3, 9, 27 … chunks), staging through
    /// a writer that is dropped or kept; returns the top id.
    fn build(store: &ChunkStore, chunks: &[(Id, u32)], keep: bool) -> (Id, usize) {
        let before = nodes(store).len();
        let w = store.writer();
        let mut b = ChunkListBuilder::new(Some(w.stager()));
        b.fanout = 3;
        for (id, len) in chunks {
            b.chunk(*id, *len).unwrap();
        }
        let staged = nodes(store).len() - before;
        let mut nodes = NodeWriter::default();
        let top = b.finish(&mut nodes, store.kv()).unwrap();
        store.publish(nodes.batch).unwrap();
        if keep {
            w.keep();
        }
        (top, staged)
    }

    #[test]
    fn long_lists_read_back_in_order_and_equal_lists_share_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChunkStore::init(dir.path(), StoreConfig::default()).unwrap();
        for n in [0u32, 1, 2, 3, 4, 8, 9, 10, 26, 27, 28, 40, 81, 82, 100] {
            let chunks = list(n);
            let (top, staged) = build(&store, &chunks, true);
            assert_eq!(node::get_chunks(store.kv(), &top).unwrap(), chunks, "{n}");
            assert_eq!(build(&store, &chunks, true).0, top, "deterministic, {n}");
            let mut flat = NodeWriter::default();
            let flat = flat.put_chunks(store.kv(), &chunks).unwrap();
            assert_eq!(top == flat, n <= 3, "one C node up to the fan-out, {n}");
            let kind = node::get_raw(store.kv(), &top).unwrap()[0];
            assert_eq!(kind == node::Kind::ChunkIndex as u8, n > 3, "{n}");
            // Full nodes were staged while the list grew: C parts, then L nodes.
            let full = (n / 3) + (n / 9) + (n / 27) + (n / 81);
            assert!(staged <= full as usize, "{n}: {staged} > {full}");
            let (kids, _) =
                node::children(&top, &node::get_raw(store.kv(), &top).unwrap()).unwrap();
            assert!(kids.len() <= 3);
        }
    }

    #[test]
    fn a_writer_dropped_unkept_deletes_the_nodes_it_staged() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChunkStore::init(dir.path(), StoreConfig::default()).unwrap();
        let kept = list(9);
        let (kept_top, _) = build(&store, &kept, true);
        let before = nodes(&store);
        let w = store.writer();
        let mut b = ChunkListBuilder::new(Some(w.stager()));
        b.fanout = 3;
        // The first 9 chunks repeat the kept list's parts: staging leaves those alone.
        for (id, len) in list(20) {
            b.chunk(id, len).unwrap();
        }
        assert!(
            nodes(&store).len() > before.len(),
            "staged as the list grew"
        );
        drop(b);
        drop(w);
        assert_eq!(
            nodes(&store),
            before,
            "rolled back, the kept list's nodes left"
        );
        assert_eq!(node::get_chunks(store.kv(), &kept_top).unwrap(), kept);
    }
}
