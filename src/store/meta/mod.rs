//! The metadata key-value store: a small trait (`MetaKv`) and its two implementations,
//! redb (stores of format 2 on, `redb_kv.rs`) and sled (format 1, `sled_kv.rs`).
//! Everything above talks to the trait, so versions and the catalog do not know which.
//! A `Batch` is applied atomically; `flush` makes it durable. Key prefixes are listed
//! in docs/format.md.

mod redb_kv;
mod sled_kv;

pub use redb_kv::{set_cache_bytes, RedbKv};
pub use sled_kv::SledKv;

use super::error::Result;

/// One atomic group of writes.
#[derive(Default)]
pub struct Batch {
    pub(crate) ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Batch {
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push((key.into(), Some(value.into())));
    }
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) {
        self.ops.push((key.into(), None));
    }
    /// Appends another batch's writes after this one's.
    pub fn extend(&mut self, other: Batch) {
        self.ops.extend(other.ops);
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
    /// The value this batch will leave at `key`, if the batch touches it.
    pub fn pending(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.ops
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_deref())
    }
}

pub trait MetaKv: Send + Sync {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    fn contains(&self, key: &[u8]) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }
    /// All pairs whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Calls `f` for each key with `prefix`, without loading all of them at once.
    fn for_each_key(&self, prefix: &[u8], f: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()>;
    /// Applies every write of the batch, or none.
    fn apply(&self, batch: Batch) -> Result<()>;
    /// Returns once everything applied so far is on disk.
    fn flush(&self) -> Result<()>;
}
