//! The on-disk shape of a table: a `T` node (schema, key, list of leaves) over `S`
//! leaf nodes, each holding the metadata of a run of consecutive segments. A publish
//! that appends or drops a few segments rewrites the leaves they fall in and the `T`
//! node, not every segment's metadata (issue 8: a 10,000-segment table rewrote ~10 MB
//! per publish). Leaf boundaries are content-defined — a leaf ends after a segment whose
//! id's last two bytes are 63 mod 64, or at 256 segments — so an insert or delete moves
//! only the boundaries next to it, and equal runs of segments give equal leaves (and
//! equal ids) in every version. Decoded leaves are cached by id (immutable), so loading
//! a large table again costs one `T` node read. `T` nodes written before leaves existed
//! (segments inline) still read. Format: docs/format.md §4.

use super::error::Result;
use super::manifest::{SegmentMeta, TableNode};
use super::node::{self, Kind, NodeWriter};
use crate::store::cache::Lru;
use crate::store::{Id, MetaKv};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

/// Expected segments per leaf (a boundary follows a segment with probability 1/64).
const LEAF_AVG: u16 = 64;
/// Segments per leaf at most.
const LEAF_MAX: usize = 256;
/// Decoded leaves kept, by the size of their encoding.
const CACHE_BYTES: usize = 32 << 20;

#[derive(Serialize, Deserialize)]
struct DiskTable {
    schema: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    leaves: Vec<LeafRef>,
    /// Segments inline: `T` nodes written before leaves existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    segments: Vec<SegmentMeta>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    key: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct LeafRef {
    id: Id,
    segments: u64,
    rows: u64,
}

#[derive(Serialize, Deserialize)]
struct Leaf {
    segments: Vec<SegmentMeta>,
}

type Segments = Arc<Vec<SegmentMeta>>;

/// Leaf id → its segments.
static LEAVES: LazyLock<Lru<Id, Segments>> = LazyLock::new(|| Lru::new(CACHE_BYTES));
/// Digest of a run's segment ids → the leaf holding that run (checked against LEAVES).
static BY_IDS: LazyLock<Lru<Id, Id>> = LazyLock::new(|| Lru::new(CACHE_BYTES / 64));

fn ids_digest(run: &[SegmentMeta]) -> Id {
    let mut ids = Vec::with_capacity(run.len() * 32);
    for s in run {
        ids.extend_from_slice(&s.id.0);
    }
    Id::of(&ids)
}

fn remember(leaf: Id, digest: Id, segments: Segments, weight: usize) {
    BY_IDS.insert(digest, leaf, 64);
    LEAVES.insert(leaf, segments, weight);
}

/// Splits a table's segments into leaves at content-defined boundaries.
fn runs(segments: &[SegmentMeta]) -> Vec<&[SegmentMeta]> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, s) in segments.iter().enumerate() {
        let tail = u16::from_le_bytes([s.id.0[30], s.id.0[31]]);
        if tail % LEAF_AVG == LEAF_AVG - 1 || i + 1 - start == LEAF_MAX {
            out.push(&segments[start..=i]);
            start = i + 1;
        }
    }
    if start < segments.len() {
        out.push(&segments[start..]);
    }
    out
}

fn load_leaf(kv: &dyn MetaKv, id: &Id) -> Result<Segments> {
    if let Some(s) = LEAVES.get(id) {
        return Ok(s);
    }
    let raw = node::get_raw(kv, id)?;
    let leaf: Leaf = node::decode_json(id, Kind::SegmentLeaf, &raw)?;
    let segments = Arc::new(leaf.segments);
    remember(*id, ids_digest(&segments), Arc::clone(&segments), raw.len());
    Ok(segments)
}

/// How often each leaf id occurs in a table (none for an absent table).
fn leaf_counts(t: Option<&DiskTable>) -> HashMap<Id, usize> {
    let mut counts: HashMap<Id, usize> = HashMap::new();
    for l in t.iter().flat_map(|t| &t.leaves) {
        *counts.entry(l.id).or_default() += 1;
    }
    counts
}

/// A table with its inline segments and those of every leaf not in `skip` (each id
/// in `skip` passes over as many occurrences as it counts).
fn expand(kv: &dyn MetaKv, t: DiskTable, mut skip: HashMap<Id, usize>) -> Result<TableNode> {
    let mut segments = t.segments;
    for l in &t.leaves {
        match skip.get_mut(&l.id) {
            Some(n) if *n > 0 => *n -= 1,
            _ => segments.extend(load_leaf(kv, &l.id)?.iter().cloned()),
        }
    }
    Ok(TableNode {
        schema: t.schema,
        segments,
        key: t.key,
    })
}

/// Reads a table node and every leaf under it.
pub fn load(kv: &dyn MetaKv, id: &Id) -> Result<TableNode> {
    expand(kv, node::get_json(kv, id, Kind::Table)?, HashMap::new())
}

/// Tables `a` and `b` (either may be absent) holding only the segments outside the
/// leaves they share. A leaf both hold has the same segments on both sides, so a diff
/// skips it unread and compares what is left.
pub fn load_pair(
    kv: &dyn MetaKv,
    a: Option<&Id>,
    b: Option<&Id>,
) -> Result<(Option<TableNode>, Option<TableNode>)> {
    let read = |id: Option<&Id>| -> Result<Option<DiskTable>> {
        id.map(|id| node::get_json(kv, id, Kind::Table)).transpose()
    };
    let (da, db) = (read(a)?, read(b)?);
    // Each side skips the leaves the other's full list holds.
    let (ca, cb) = (leaf_counts(da.as_ref()), leaf_counts(db.as_ref()));
    let ta = da.map(|t| expand(kv, t, cb)).transpose()?;
    let tb = db.map(|t| expand(kv, t, ca)).transpose()?;
    Ok((ta, tb))
}

/// Writes a table: leaves not stored yet, then its `T` node. A run of segments equal
/// to a leaf this process has read or written reuses that leaf without encoding it.
pub fn write(kv: &dyn MetaKv, w: &mut NodeWriter, t: &TableNode) -> Result<Id> {
    let mut leaves = Vec::new();
    for run in runs(&t.segments) {
        let digest = ids_digest(run);
        let known = BY_IDS
            .get(&digest)
            .filter(|leaf| LEAVES.get(leaf).is_some_and(|s| s.as_slice() == run));
        let id = match known {
            Some(leaf) if w.has(kv, &leaf)? => leaf,
            _ => {
                let leaf = Leaf {
                    segments: run.to_vec(),
                };
                let (id, weight) = w.put_json_sized(kv, Kind::SegmentLeaf, &leaf)?;
                remember(id, digest, Arc::new(leaf.segments), weight);
                id
            }
        };
        leaves.push(LeafRef {
            id,
            segments: run.len() as u64,
            rows: run.iter().map(|s| s.rows).sum(),
        });
    }
    let disk = DiskTable {
        schema: t.schema.clone(),
        leaves,
        segments: Vec::new(),
        key: t.key.clone(),
    };
    w.put_json(kv, Kind::Table, &disk)
}

/// The nodes and chunk lists a `T` or `S` node refers to (for gc and fsck).
pub fn children(id: &Id, bytes: &[u8]) -> Result<Vec<Id>> {
    if bytes.first() == Some(&(Kind::SegmentLeaf as u8)) {
        let l: Leaf = node::decode_json(id, Kind::SegmentLeaf, bytes)?;
        return Ok(l
            .segments
            .iter()
            .flat_map(|s| std::iter::once(s.chunks).chain(s.refs.iter().copied()))
            .collect());
    }
    let t: DiskTable = node::decode_json(id, Kind::Table, bytes)?;
    Ok(t.leaves
        .iter()
        .map(|l| l.id)
        .chain(
            t.segments
                .iter()
                .flat_map(|s| std::iter::once(s.chunks).chain(s.refs.iter().copied())),
        )
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MetaKv;

    fn seg(i: u32) -> SegmentMeta {
        SegmentMeta {
            id: Id::of(&i.to_le_bytes()),
            chunks: Id::of(b"c"),
            rows: 1,
            bytes: 1,
            stats: Default::default(),
            blobs: vec![],
            refs: vec![],
        }
    }

    #[test]
    fn boundaries_survive_an_insert() {
        let a: Vec<SegmentMeta> = (0..2000).map(seg).collect();
        let mut b = a.clone();
        b.insert(1000, seg(99_999));
        let (ra, rb) = (runs(&a), runs(&b));
        assert!(ra.len() > 10 && ra.iter().all(|r| r.len() <= LEAF_MAX));
        let same = rb.iter().filter(|r| ra.contains(r)).count();
        assert!(same + 2 >= ra.len(), "{same} of {} leaves kept", ra.len());
        assert_eq!(ra.concat(), a);
    }

    #[test]
    fn a_publish_writes_only_the_changed_leaf() {
        let dir = tempfile::tempdir().unwrap();
        let kv = crate::store::meta::SledKv::open(dir.path()).unwrap();
        let mut t = TableNode {
            schema: "00".into(),
            segments: (0..3000).map(seg).collect(),
            key: vec![],
        };
        let mut w = NodeWriter::default();
        let first = write(&kv, &mut w, &t).unwrap();
        assert!(w.batch.ops.len() > 20, "{} nodes", w.batch.ops.len());
        kv.apply(w.batch).unwrap();
        t.segments.push(seg(77_777));
        let mut w = NodeWriter::default();
        let second = write(&kv, &mut w, &t).unwrap();
        assert!(
            w.batch.ops.len() <= 3,
            "{} nodes written",
            w.batch.ops.len()
        );
        kv.apply(w.batch).unwrap();
        assert_ne!(first, second);
        assert_eq!(load(&kv, &second).unwrap(), t);
        let kids = children(&second, &node::get_raw(&kv, &second).unwrap()).unwrap();
        assert_eq!(kids.len(), runs(&t.segments).len());
    }

    #[test]
    fn a_pair_skips_shared_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let kv = crate::store::meta::SledKv::open(dir.path()).unwrap();
        let a = TableNode {
            schema: "00".into(),
            segments: (0..3000).map(seg).collect(),
            key: vec!["k".into()],
        };
        let mut b = a.clone();
        b.segments.remove(1500);
        b.segments.push(seg(88_888));
        let mut w = NodeWriter::default();
        let (ia, ib) = (
            write(&kv, &mut w, &a).unwrap(),
            write(&kv, &mut w, &b).unwrap(),
        );
        kv.apply(w.batch).unwrap();
        let (pa, pb) = load_pair(&kv, Some(&ia), Some(&ib)).unwrap();
        let (pa, pb) = (pa.unwrap(), pb.unwrap());
        assert!(pa.segments.contains(&seg(1500)) && !pb.segments.contains(&seg(1500)));
        assert!(pb.segments.contains(&seg(88_888)));
        assert!(
            pa.segments.len() < 3 * LEAF_MAX,
            "{} read",
            pa.segments.len()
        );
        assert_eq!(pb.key, vec!["k".to_string()]);
        let (none, all) = load_pair(&kv, None, Some(&ia)).unwrap();
        assert!(none.is_none() && all.unwrap().segments == a.segments);
    }

    #[test]
    fn inline_segments_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let kv = crate::store::meta::SledKv::open(dir.path()).unwrap();
        let old = serde_json::json!({"schema": "00", "segments": [seg(1), seg(2)]});
        let mut w = NodeWriter::default();
        let id = w.put_json(&kv, Kind::Table, &old).unwrap();
        kv.apply(w.batch).unwrap();
        let t = load(&kv, &id).unwrap();
        assert_eq!(t.segments, vec![seg(1), seg(2)]);
        let kids = children(&id, &node::get_raw(&kv, &id).unwrap()).unwrap();
        assert_eq!(kids, vec![Id::of(b"c"), Id::of(b"c")]);
    }

    #[test]
    fn files_blob_values_refer_to_are_children() {
        let dir = tempfile::tempdir().unwrap();
        let kv = crate::store::meta::SledKv::open(dir.path()).unwrap();
        let mut s = seg(3);
        s.blobs = vec![vec!["data".into()]];
        s.refs = vec![Id::of(b"bag")];
        let t = TableNode {
            schema: "00".into(),
            segments: vec![seg(1), s],
            key: vec![],
        };
        let mut w = NodeWriter::default();
        let id = write(&kv, &mut w, &t).unwrap();
        kv.apply(w.batch).unwrap();
        assert_eq!(load(&kv, &id).unwrap(), t);
        let leaf = children(&id, &node::get_raw(&kv, &id).unwrap()).unwrap()[0];
        let kids = children(&leaf, &node::get_raw(&kv, &leaf).unwrap()).unwrap();
        assert_eq!(kids, vec![Id::of(b"c"), Id::of(b"c"), Id::of(b"bag")]);
    }
}
