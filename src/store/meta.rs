//! The metadata key-value store: a small trait (`MetaKv`) and its sled implementation.
//! Everything above talks to the trait so sled can be swapped (redb, fjall) without
//! touching versions or the catalog. A `Batch` is applied atomically; `flush` makes it
//! durable. Key prefixes are listed in docs/format.md.

use super::error::{Result, StoreError};
use std::path::Path;

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

pub struct SledKv {
    db: sled::Db,
}

fn meta_err(e: sled::Error) -> StoreError {
    StoreError::Meta(e.to_string())
}

impl SledKv {
    /// Opens (or creates) the sled database at `dir`. A lock held by another process is
    /// reported as `WouldBlock` so the caller can name that process.
    pub fn open(dir: &Path) -> std::result::Result<SledKv, sled::Error> {
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::LowSpace)
            .cache_capacity(64 * 1024 * 1024)
            .open()?;
        Ok(SledKv { db })
    }
}

impl MetaKv for SledKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(key).map_err(meta_err)?.map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.db
            .scan_prefix(prefix)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(meta_err))
            .collect()
    }

    fn for_each_key(&self, prefix: &[u8], f: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        for r in self.db.scan_prefix(prefix).keys() {
            f(&r.map_err(meta_err)?)?;
        }
        Ok(())
    }

    fn apply(&self, batch: Batch) -> Result<()> {
        let mut b = sled::Batch::default();
        for (k, v) in batch.ops {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        self.db.apply_batch(b).map_err(meta_err)
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().map_err(meta_err).map(|_| ())
    }
}
