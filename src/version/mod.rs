//! Versions, refs, working sets and manifests on top of the chunk store.
//! Every operation here returns a `Batch` of metadata writes; the caller publishes it
//! once, after the chunks it refers to are durable, so each command is all-or-nothing.

pub mod blob;
pub mod chunk_list;
pub mod error;
pub mod manifest;
pub mod node;
pub mod record;
pub mod refs;
pub mod rows;
pub mod segment;
pub mod storage;
pub mod table_tree;

pub use error::{Result, VersionError};
pub use manifest::{FileEntry, Root, RootEdit, SegmentMeta, TableNode};
pub use record::Version;
pub use refs::{RefKind, Resolved};

use crate::store::{Batch, Id, MetaKv};
use node::NodeWriter;
use std::collections::{HashMap, HashSet};

pub const DEFAULT_BRANCH: &str = "main";

/// The first version of a new store: an empty root on `main`.
pub fn init_batch(kv: &dyn MetaKv, author: &str) -> Result<Batch> {
    let mut nodes = NodeWriter::default();
    let root = nodes.put_json(kv, node::Kind::Root, &Root::default())?;
    let v = Version {
        root,
        parents: vec![],
        author: author.to_string(),
        message: "Initialize store".into(),
        created_at: record::now_ns(),
        branch: DEFAULT_BRANCH.into(),
    };
    let mut b = nodes.batch;
    let id = v.id();
    b.put(record::version_key(&id), v.encode());
    b.put(
        refs::ref_key(RefKind::Branch, DEFAULT_BRANCH),
        id.0.to_vec(),
    );
    b.put(refs::ws_key(DEFAULT_BRANCH), root.0.to_vec());
    Ok(b)
}

/// A pending change to one branch's working set.
pub struct WorkingEdit<'a> {
    pub branch: String,
    pub base_root: Id,
    pub root: RootEdit<'a>,
    pub nodes: NodeWriter,
}

impl<'a> WorkingEdit<'a> {
    pub fn begin(kv: &'a dyn MetaKv, branch: &str) -> Result<WorkingEdit<'a>> {
        let base_root = refs::working_root(kv, branch)?;
        let root = manifest::load_root(kv, &base_root)?;
        Ok(WorkingEdit {
            branch: branch.to_string(),
            base_root,
            root: RootEdit::new(kv, root),
            nodes: NodeWriter::default(),
        })
    }

    /// Writes the new root and moves the working set to it; returns the batch and root.
    pub fn finish(self) -> Result<(Batch, Id)> {
        let mut nodes = self.nodes;
        let root = self.root.finish(&mut nodes)?;
        let mut b = nodes.batch;
        b.put(refs::ws_key(&self.branch), root.0.to_vec());
        Ok((b, root))
    }
}

/// Makes a version of `root` on `branch` (whose head becomes its parent). Adds the
/// version record and the moved branch to `batch`. Errors when nothing changed.
pub fn commit_into(
    kv: &dyn MetaKv,
    batch: &mut Batch,
    branch: &str,
    root: Id,
    message: &str,
    author: &str,
) -> Result<Id> {
    let head = refs::get(kv, RefKind::Branch, branch)?
        .ok_or_else(|| VersionError::NotABranch(branch.into()))?;
    let head_v = record::load(kv, &head)?;
    if head_v.root == root {
        return Err(VersionError::NothingToCommit(branch.into()));
    }
    let v = Version {
        root,
        parents: vec![head],
        author: author.to_string(),
        message: message.to_string(),
        created_at: record::now_ns().max(head_v.created_at + 1),
        branch: branch.to_string(),
    };
    let id = v.id();
    batch.put(record::version_key(&id), v.encode());
    batch.put(refs::ref_key(RefKind::Branch, branch), id.0.to_vec());
    batch.put(refs::ws_key(branch), root.0.to_vec());
    Ok(id)
}

/// Commits the working set of `branch` as it stands.
pub fn commit(kv: &dyn MetaKv, branch: &str, message: &str, author: &str) -> Result<(Batch, Id)> {
    let root = refs::working_root(kv, branch)?;
    let mut b = Batch::default();
    let id = commit_into(kv, &mut b, branch, root, message, author)?;
    Ok((b, id))
}

/// A new tag (never moves) or branch (with its own working set) at `target`: O(1).
pub fn create_ref(kv: &dyn MetaKv, kind: RefKind, name: &str, target: &str) -> Result<(Batch, Id)> {
    refs::validate_name(name)?;
    if refs::get(kv, RefKind::Branch, name)?.is_some()
        || refs::get(kv, RefKind::Tag, name)?.is_some()
    {
        return Err(VersionError::RefExists {
            kind: kind.as_str(),
            name: name.into(),
        });
    }
    let r = refs::resolve(kv, target)?;
    let mut b = Batch::default();
    b.put(refs::ref_key(kind, name), r.version.0.to_vec());
    if kind == RefKind::Branch {
        b.put(
            refs::ws_key(name),
            record::load(kv, &r.version)?.root.0.to_vec(),
        );
    }
    Ok((b, r.version))
}

/// History from `start` following first parents, newest first.
pub fn log(kv: &dyn MetaKv, start: &Id) -> Result<Vec<(Id, Version)>> {
    let mut out = Vec::new();
    let mut next = Some(*start);
    while let Some(id) = next {
        let v = record::load(kv, &id)?;
        next = v.parents.first().copied();
        out.push((id, v));
    }
    Ok(out)
}

/// Every root a reader or gc must keep: each version's and each working set's.
pub fn live_roots(kv: &dyn MetaKv) -> Result<Vec<(String, Id)>> {
    let mut out: Vec<(String, Id)> = record::all(kv)?
        .into_iter()
        .map(|(id, v)| (format!("version {}", id.hex()), v.root))
        .collect();
    for (k, v) in kv.scan_prefix(refs::WS_PREFIX.as_bytes())? {
        let name = String::from_utf8_lossy(&k[refs::WS_PREFIX.len()..]).to_string();
        let id = Id::from_slice(&v).ok_or_else(|| VersionError::BadNode {
            id: name.clone(),
            detail: "working-set pointer is not a 32-byte id".into(),
        })?;
        out.push((format!("working set of {name}"), id));
    }
    Ok(out)
}

/// Walks the manifest trees from `roots`, reporting each node once and each chunk once.
pub fn walk(
    kv: &dyn MetaKv,
    roots: &[Id],
    on_node: &mut dyn FnMut(&Id, &Result<Vec<u8>>),
    on_chunk: &mut dyn FnMut(&Id),
) -> HashSet<Id> {
    let mut seen: HashSet<Id> = HashSet::new();
    let mut chunks: HashSet<Id> = HashSet::new();
    let mut stack: Vec<Id> = roots.to_vec();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let raw = node::get_raw(kv, &id);
        on_node(&id, &raw);
        if let Ok(bytes) = &raw {
            if let Ok((kids, cs)) = node::children(&id, bytes) {
                stack.extend(kids);
                for c in cs {
                    if chunks.insert(c) {
                        on_chunk(&c);
                    }
                }
            }
        }
    }
    seen
}

/// The file paths (or tables) and the versions/working sets that use one chunk.
pub type ChunkUsers = (Vec<String>, Vec<String>);

/// For each chunk in `bad`, which file paths and roots (versions/working sets) use it.
pub fn chunk_users(kv: &dyn MetaKv, bad: &HashSet<Id>) -> Result<HashMap<Id, ChunkUsers>> {
    let mut out: HashMap<Id, ChunkUsers> = HashMap::new();
    if bad.is_empty() {
        return Ok(out);
    }
    for (label, root_id) in live_roots(kv)? {
        let root = manifest::load_root(kv, &root_id)?;
        for f in manifest::list_files(kv, &root)? {
            let chunks = node::get_chunks(kv, &f.chunks)?;
            for (c, _) in chunks.iter().filter(|(c, _)| bad.contains(c)) {
                let e = out.entry(*c).or_default();
                if !e.0.contains(&f.path) {
                    e.0.push(f.path.clone());
                }
                if !e.1.contains(&label) {
                    e.1.push(label.clone());
                }
            }
        }
        for (name, t) in &root.tables {
            let t = manifest::load_table(kv, t)?;
            for s in &t.segments {
                for (c, _) in node::get_chunks(kv, &s.chunks)?
                    .iter()
                    .filter(|(c, _)| bad.contains(c))
                {
                    let e = out.entry(*c).or_default();
                    let what = format!("table {name}");
                    if !e.0.contains(&what) {
                        e.0.push(what);
                    }
                    if !e.1.contains(&label) {
                        e.1.push(label.clone());
                    }
                }
            }
        }
    }
    Ok(out)
}
