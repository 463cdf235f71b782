//! The redb implementation of `MetaKv`, for stores of format 2 on: every key in one
//! redb table `meta` in the file `meta/bagbase.redb` (docs/format.md §3). Chosen over
//! sled 0.34 because sled keeps in memory what a process writes (an ingest's memory grew
//! with its new chunks) and is not power-loss durable; redb's memory is its cache
//! (`CACHE_BYTES`) and a durable commit is checksummed and fsynced.
//! `apply` commits without an fsync (`Durability::None`); `flush` makes every such
//! commit durable with one empty durable commit, and a crash before it leaves the state
//! of the last durable commit (docs/format.md §6).

use super::{Batch, MetaKv};
use crate::store::error::{Result, StoreError};
use redb::{Durability, ReadableDatabase, TableDefinition};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

const META: TableDefinition<&[u8], &[u8]> = TableDefinition::new("meta");
/// The file, under the store's `meta/` directory.
pub const FILE: &str = "bagbase.redb";
/// Memory redb may hold for pages it read or will write (its default is 1 GiB), unless
/// [`set_cache_bytes`] chose another size. Small: the chunk index of a 4 GiB ingest
/// (≈65 k entries) fits, and queries keep decoded nodes and chunks in their own caches.
pub const CACHE_BYTES: usize = 4 << 20;
/// What databases opened from now on get (`CACHE_BYTES` unless set).
static CACHE: AtomicUsize = AtomicUsize::new(CACHE_BYTES);

/// Sets the cache size of databases opened from now on. The `bagbase` binary gives
/// one-shot commands 256 KiB: an ingest's cache otherwise fills with chunk-index pages
/// as its stream goes on, so a 4 GiB ingest peaked about 4 MiB above a 1 GiB one
/// (docs/BENCHMARKS.md, ingest session 25); a long-lived server keeps the default.
pub fn set_cache_bytes(bytes: usize) {
    CACHE.store(bytes, Ordering::Relaxed);
}

/// Called with a key and its value; returns whether to go on.
type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<bool> + 'a;

pub struct RedbKv {
    db: redb::Database,
}

fn meta_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Meta(e.to_string())
}

impl RedbKv {
    /// Opens (or creates) the database in directory `dir`.
    pub fn open(dir: &Path) -> Result<RedbKv> {
        std::fs::create_dir_all(dir).map_err(meta_err)?;
        let db = redb::Builder::new()
            .set_cache_size(CACHE.load(Ordering::Relaxed))
            .create(dir.join(FILE))
            .map_err(meta_err)?;
        let kv = RedbKv { db };
        // The table exists from the first open on, so readers never meet its absence.
        let w = kv.db.begin_write().map_err(meta_err)?;
        w.open_table(META).map_err(meta_err)?;
        w.commit().map_err(meta_err)?;
        Ok(kv)
    }

    /// Whether `dir` holds a database of this kind.
    pub fn exists(dir: &Path) -> bool {
        dir.join(FILE).is_file()
    }

    /// Calls `f` with every pair whose key starts with `prefix`, in key order, until
    /// it returns false.
    fn range(&self, prefix: &[u8], f: &mut Visit<'_>) -> Result<()> {
        let r = self.db.begin_read().map_err(meta_err)?;
        let t = r.open_table(META).map_err(meta_err)?;
        for e in t.range::<&[u8]>(prefix..).map_err(meta_err)? {
            let (k, v) = e.map_err(meta_err)?;
            if !k.value().starts_with(prefix) || !f(k.value(), v.value())? {
                break;
            }
        }
        Ok(())
    }
}

impl MetaKv for RedbKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let r = self.db.begin_read().map_err(meta_err)?;
        let t = r.open_table(META).map_err(meta_err)?;
        Ok(t.get(key).map_err(meta_err)?.map(|v| v.value().to_vec()))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        self.range(prefix, &mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            Ok(true)
        })?;
        Ok(out)
    }

    fn for_each_key(&self, prefix: &[u8], f: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        self.range(prefix, &mut |k, _| f(k).map(|()| true))
    }

    fn apply(&self, batch: Batch) -> Result<()> {
        let mut w = self.db.begin_write().map_err(meta_err)?;
        w.set_durability(Durability::None).map_err(meta_err)?;
        {
            let mut t = w.open_table(META).map_err(meta_err)?;
            for (k, v) in &batch.ops {
                match v {
                    Some(v) => t.insert(k.as_slice(), v.as_slice()).map(|_| ()),
                    None => t.remove(k.as_slice()).map(|_| ()),
                }
                .map_err(meta_err)?;
            }
        }
        w.commit().map_err(meta_err)
    }

    fn flush(&self) -> Result<()> {
        let mut w = self.db.begin_write().map_err(meta_err)?;
        w.set_durability(Durability::Immediate).map_err(meta_err)?;
        w.commit().map_err(meta_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_prefixes_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let kv = RedbKv::open(dir.path()).unwrap();
        let mut b = Batch::default();
        b.put(b"c/2".to_vec(), b"two".to_vec());
        b.put(b"c/1".to_vec(), b"one".to_vec());
        b.put(b"d/1".to_vec(), b"other".to_vec());
        b.put(b"c/3".to_vec(), b"three".to_vec());
        b.delete(b"c/3".to_vec());
        kv.apply(b).unwrap();
        assert_eq!(kv.get(b"c/1").unwrap().as_deref(), Some(&b"one"[..]));
        assert!(!kv.contains(b"c/3").unwrap());
        let keys: Vec<Vec<u8>> = kv
            .scan_prefix(b"c/")
            .unwrap()
            .into_iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(keys, [b"c/1".to_vec(), b"c/2".to_vec()]);
        let mut n = 0;
        kv.for_each_key(b"d/", &mut |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 1);
        kv.flush().unwrap();
        drop(kv);
        let kv = RedbKv::open(dir.path()).unwrap();
        assert_eq!(kv.scan_prefix(b"").unwrap().len(), 3);
        assert!(RedbKv::exists(dir.path()));
    }
}
