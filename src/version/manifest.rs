//! The manifest tree of a version or working set:
//!   Root ─┬─ files:  bucket (first byte of file_id) → FileBucket ── FileEntry → ChunkList
//!         └─ tables: name → TableNode ── leaves ── SegmentMeta → ChunkList (a Parquet segment)
//! Owns the shapes and the copy-on-write edit of a root; never reads chunk contents.

use super::error::Result;
use super::node::{self, Kind, NodeWriter};
use crate::store::{Id, MetaKv};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Root {
    /// Bucket number (first byte of the file_id's hash) → FileBucket node.
    pub files: BTreeMap<u8, Id>,
    /// Table name → TableNode.
    pub tables: BTreeMap<String, Id>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FileBucket {
    /// file_id → entry.
    pub files: BTreeMap<String, FileEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    pub file_id: String,
    pub path: String,
    pub format: String,
    pub size_bytes: u64,
    pub sha256: Id,
    pub chunk_count: u64,
    /// Nanoseconds since the Unix epoch, UTC.
    pub ingested_at: i64,
    /// ChunkList node of the file's bytes.
    pub chunks: Id,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TableNode {
    /// Arrow schema, IPC-encoded, hex.
    pub schema: String,
    pub segments: Vec<SegmentMeta>,
    /// The columns that identify a row, for `version_diff`; empty = every column.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SegmentMeta {
    /// SHA-256 of the segment's Parquet bytes.
    pub id: Id,
    /// ChunkList node holding those bytes.
    pub chunks: Id,
    pub rows: u64,
    pub bytes: u64,
    /// Column name → min/max/null count, for pruning without reading the segment.
    pub stats: BTreeMap<String, ColumnStats>,
    /// Blob columns (`version::blob`): column, then struct fields, down to a binary
    /// column whose values are tagged. Empty in most segments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blobs: Vec<super::blob::BlobPath>,
    /// The chunk lists (stored files) those values refer to, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refs: Vec<Id>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ColumnStats {
    pub min: Option<StatValue>,
    pub max: Option<StatValue>,
    pub nulls: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, PartialOrd)]
#[serde(tag = "t", content = "v")]
pub enum StatValue {
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Bool(bool),
}

/// Whether a segment holds rows of `file_id` only.
fn segment_of(s: &SegmentMeta, file_id: &str) -> bool {
    s.stats
        .get("file_id")
        .is_some_and(|c| c.min == Some(StatValue::Str(file_id.to_string())) && c.max == c.min)
}

/// A stable file_id for a path: the first 16 hex digits of SHA-256(path).
pub fn file_id_for(path: &str) -> String {
    Id::of(path.as_bytes()).hex()[..16].to_string()
}

fn bucket_of(file_id: &str) -> u8 {
    u8::from_str_radix(file_id.get(..2).unwrap_or("00"), 16).unwrap_or(0)
}

pub fn load_root(kv: &dyn MetaKv, id: &Id) -> Result<Root> {
    node::get_json(kv, id, Kind::Root)
}

/// Every file entry of a root, in file_id order.
pub fn list_files(kv: &dyn MetaKv, root: &Root) -> Result<Vec<FileEntry>> {
    let mut out = Vec::new();
    for id in root.files.values() {
        let b: FileBucket = node::get_json(kv, id, Kind::FileBucket)?;
        out.extend(b.files.into_values());
    }
    Ok(out)
}

/// One file of a root, by id (reads one bucket).
pub fn find_file(kv: &dyn MetaKv, root: &Root, file_id: &str) -> Result<Option<FileEntry>> {
    let Some(id) = root.files.get(&bucket_of(file_id)) else {
        return Ok(None);
    };
    let mut b: FileBucket = node::get_json(kv, id, Kind::FileBucket)?;
    Ok(b.files.remove(file_id))
}

/// The file a segment's rows come from, when its statistics say it holds one file's rows.
pub fn segment_file(s: &SegmentMeta) -> Option<&str> {
    match s.stats.get("file_id") {
        Some(ColumnStats {
            min: Some(StatValue::Str(a)),
            max: Some(StatValue::Str(b)),
            ..
        }) if a == b => Some(a),
        _ => None,
    }
}

/// A table with all its segments (leaves are read through a cache: `table_tree`).
pub fn load_table(kv: &dyn MetaKv, id: &Id) -> Result<TableNode> {
    super::table_tree::load(kv, id)
}

/// A copy-on-write edit of a root: only touched buckets and tables are rewritten, so
/// the cost is O(entries changed), not O(store size).
pub struct RootEdit<'a> {
    kv: &'a dyn MetaKv,
    root: Root,
    buckets: BTreeMap<u8, FileBucket>,
    tables: BTreeMap<String, TableNode>,
}

impl<'a> RootEdit<'a> {
    pub fn new(kv: &'a dyn MetaKv, root: Root) -> Self {
        RootEdit {
            kv,
            root,
            buckets: BTreeMap::new(),
            tables: BTreeMap::new(),
        }
    }

    fn bucket(&mut self, n: u8) -> Result<&mut FileBucket> {
        if !self.buckets.contains_key(&n) {
            let b = match self.root.files.get(&n) {
                Some(id) => node::get_json(self.kv, id, Kind::FileBucket)?,
                None => FileBucket::default(),
            };
            self.buckets.insert(n, b);
        }
        Ok(self.buckets.get_mut(&n).expect("bucket just loaded"))
    }

    /// Adds or replaces a file (keyed by file_id).
    pub fn put_file(&mut self, entry: FileEntry) -> Result<()> {
        let b = self.bucket(bucket_of(&entry.file_id))?;
        b.files.insert(entry.file_id.clone(), entry);
        Ok(())
    }

    pub fn file(&mut self, file_id: &str) -> Result<Option<FileEntry>> {
        Ok(self.bucket(bucket_of(file_id))?.files.get(file_id).cloned())
    }

    pub fn table(&mut self, name: &str) -> Result<Option<&mut TableNode>> {
        if !self.tables.contains_key(name) {
            match self.root.tables.get(name) {
                Some(id) => {
                    let t = load_table(self.kv, id)?;
                    self.tables.insert(name.to_string(), t);
                }
                None => return Ok(None),
            }
        }
        Ok(self.tables.get_mut(name))
    }

    pub fn put_table(&mut self, name: &str, table: TableNode) {
        self.tables.insert(name.to_string(), table);
    }

    /// Removes a table (a no-op when there is none).
    pub fn drop_table(&mut self, name: &str) {
        self.tables.remove(name);
        self.root.tables.remove(name);
    }

    /// Removes the rows of `file_id` from every table (segments never mix files, and
    /// their `file_id` statistics say whose they are). Tables left empty are dropped.
    pub fn drop_file_rows(&mut self, file_id: &str) -> Result<()> {
        let names: Vec<String> = self.root.tables.keys().cloned().collect();
        for n in names {
            let Some(t) = self.table(&n)? else { continue };
            t.segments.retain(|s| !segment_of(s, file_id));
            if t.segments.is_empty() {
                self.tables.remove(&n);
                self.root.tables.remove(&n);
            }
        }
        Ok(())
    }

    /// Adds segments to a table, creating it. An existing table's schema becomes the
    /// union of both (its columns first; a column only one side has is nullable; on a
    /// type conflict the new segments' type wins).
    pub fn add_segments(
        &mut self,
        name: &str,
        schema: String,
        key: Vec<String>,
        segments: Vec<SegmentMeta>,
    ) -> Result<()> {
        match self.table(name)? {
            Some(t) => {
                if t.schema != schema && !t.segments.is_empty() {
                    t.schema = super::segment::merge_schemas(name, &t.schema, &schema)?;
                } else {
                    t.schema = schema;
                }
                t.key = key;
                t.segments.extend(segments);
            }
            None => self.put_table(
                name,
                TableNode {
                    schema,
                    segments,
                    key,
                },
            ),
        }
        Ok(())
    }

    /// Writes the changed nodes into `w` and returns the new root's id.
    pub fn finish(mut self, w: &mut NodeWriter) -> Result<Id> {
        for (n, b) in std::mem::take(&mut self.buckets) {
            if b.files.is_empty() {
                self.root.files.remove(&n);
            } else {
                let id = w.put_json(self.kv, Kind::FileBucket, &b)?;
                self.root.files.insert(n, id);
            }
        }
        for (name, t) in std::mem::take(&mut self.tables) {
            let id = super::table_tree::write(self.kv, w, &t)?;
            self.root.tables.insert(name, id);
        }
        w.put_json(self.kv, Kind::Root, &self.root)
    }
}
