//! Per-version storage figures for the `storage` table: how big each snapshot is and
//! what keeping history up to it costs after deduplication and compression.
//! Versions form a tree (one parent each), walked depth-first with a chunk refcount
//! so each version's history totals cost O(its own chunks), not O(history).

use super::error::Result;
use super::manifest::{self, Root};
use super::node;
use super::record::{self, Version};
use crate::store::pack::ChunkLoc;
use crate::store::{chunk_key, Id, MetaKv};
use std::collections::HashMap;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct StorageRow {
    pub version_id: Id,
    /// Bytes of every file and table segment in this snapshot.
    pub logical_bytes: u64,
    /// `logical_bytes` summed over this version and all its ancestors.
    pub history_logical_bytes: u64,
    /// Distinct chunks in this version and its ancestors.
    pub chunks: u64,
    /// Uncompressed bytes of those distinct chunks.
    pub unique_bytes: u64,
    /// Compressed (stored) bytes of those distinct chunks.
    pub stored_bytes: u64,
}

impl StorageRow {
    /// History bytes per unique byte kept: how much deduplication saves.
    pub fn dedup_ratio(&self) -> f64 {
        if self.unique_bytes == 0 {
            1.0
        } else {
            self.history_logical_bytes as f64 / self.unique_bytes as f64
        }
    }
}

/// The chunks one root references (each once) with raw length, and its logical size.
fn root_chunks(
    kv: &dyn MetaKv,
    root_id: &Id,
    lists: &mut HashMap<Id, Vec<(Id, u32)>>,
) -> Result<(Vec<(Id, u32)>, u64)> {
    let root: Root = manifest::load_root(kv, root_id)?;
    let mut logical = 0u64;
    let mut list_ids = Vec::new();
    for f in manifest::list_files(kv, &root)? {
        logical += f.size_bytes;
        list_ids.push(f.chunks);
    }
    for t in root.tables.values() {
        for s in manifest::load_table(kv, t)?.segments {
            logical += s.bytes;
            list_ids.push(s.chunks);
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for l in list_ids {
        if let std::collections::hash_map::Entry::Vacant(e) = lists.entry(l) {
            e.insert(node::get_chunks(kv, &l)?);
        }
        for c in &lists[&l] {
            if seen.insert(c.0) {
                out.push(*c);
            }
        }
    }
    Ok((out, logical))
}

/// One row per version in the store.
pub fn storage_rows(kv: &dyn MetaKv) -> Result<Vec<StorageRow>> {
    let versions: HashMap<Id, Version> = record::all(kv)?.into_iter().collect();
    let mut children: HashMap<Option<Id>, Vec<Id>> = HashMap::new();
    for (id, v) in &versions {
        let parent = v
            .parents
            .first()
            .copied()
            .filter(|p| versions.contains_key(p));
        children.entry(parent).or_default().push(*id);
    }
    for kids in children.values_mut() {
        kids.sort_by_key(|k| versions[k].created_at);
    }
    let mut stored_len: HashMap<Id, u64> = HashMap::new();
    let mut lists = HashMap::new();
    let mut refcount: HashMap<Id, u32> = HashMap::new();
    let mut out = Vec::new();
    // Explicit DFS: (version, entering?) with the running totals restored on exit.
    enum Step {
        Enter(Id, StorageRow),
        Leave(Vec<(Id, u32)>),
    }
    let mut stack: Vec<Step> = children
        .get(&None)
        .map(|r| {
            r.iter()
                .rev()
                .map(|id| Step::Enter(*id, StorageRow::default()))
                .collect()
        })
        .unwrap_or_default();
    while let Some(step) = stack.pop() {
        match step {
            Step::Enter(id, parent) => {
                let (chunks, logical) = root_chunks(kv, &versions[&id].root, &mut lists)?;
                let mut row = StorageRow {
                    version_id: id,
                    logical_bytes: logical,
                    history_logical_bytes: parent.history_logical_bytes + logical,
                    ..parent
                };
                for (c, raw) in &chunks {
                    let n = refcount.entry(*c).or_default();
                    *n += 1;
                    if *n == 1 {
                        row.chunks += 1;
                        row.unique_bytes += *raw as u64;
                        row.stored_bytes += stored(kv, &mut stored_len, c)?;
                    }
                }
                out.push(row.clone());
                stack.push(Step::Leave(chunks));
                for kid in children.get(&Some(id)).into_iter().flatten().rev() {
                    stack.push(Step::Enter(*kid, row.clone()));
                }
            }
            Step::Leave(chunks) => {
                for (c, _) in chunks {
                    if let Some(n) = refcount.get_mut(&c) {
                        *n -= 1;
                    }
                }
            }
        }
    }
    Ok(out)
}

fn stored(kv: &dyn MetaKv, cache: &mut HashMap<Id, u64>, id: &Id) -> Result<u64> {
    if let Some(v) = cache.get(id) {
        return Ok(*v);
    }
    let v = kv
        .get(&chunk_key(id))?
        .and_then(|raw| ChunkLoc::decode(&raw))
        .map(|l| l.stored_len as u64)
        .unwrap_or(0);
    cache.insert(*id, v);
    Ok(v)
}
