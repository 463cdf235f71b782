//! The sled 0.34 implementation of `MetaKv`, for stores of format 1 (`meta/` is a sled
//! database). New stores use redb (`redb_kv.rs`); see docs/design.md "Metadata KV".

use super::{Batch, MetaKv};
use crate::store::error::{Result, StoreError};
use std::path::Path;

pub struct SledKv {
    db: sled::Db,
}

fn meta_err(e: sled::Error) -> StoreError {
    StoreError::Meta(e.to_string())
}

impl SledKv {
    /// Opens (or creates) the sled database at `dir`.
    ///
    /// The caller already holds the store's own `LOCK`, so no other bagbase process has
    /// this database open; a sled lock still held belongs to this process's previous
    /// `Db`, whose file lock a background thread of sled 0.34 can keep for a moment
    /// after the `Db` is dropped (seen once in CI as a failed re-open between two
    /// queries of sql/rosbag1.slt). So the open is retried for up to two seconds before sled's
    /// "could not acquire lock" is reported.
    pub fn open(dir: &Path) -> std::result::Result<SledKv, sled::Error> {
        drop_unfinished_snapshots(dir)?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            match Self::open_once(dir) {
                // sled reports a held lock as `Other` with this text (config.rs).
                Err(sled::Error::Io(e))
                    if e.to_string().starts_with("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                other => return other,
            }
        }
    }

    fn open_once(dir: &Path) -> std::result::Result<SledKv, sled::Error> {
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::LowSpace)
            // 2, 8 or 64 MiB made no difference to an ingest's peak RSS (sled pages
            // nodes out only on reads; docs/BENCHMARKS.md, session 14).
            .cache_capacity(64 * 1024 * 1024)
            // No background flusher: every write path ends in an explicit `flush`
            // (Store::publish, a writer's rollback), and sled's timer flushed its log
            // every 500 ms, with an fsync that stalled every chunk-index lookup of a
            // running ingest behind it (≈0.1 s in each 0.5 s).
            .flush_every_ms(None)
            .open()?;
        Ok(SledKv { db })
    }
}

/// Removes `snap.*.generating` files: snapshots a killed process had not finished.
///
/// sled 0.34 writes a snapshot each time it opens a database that has new log entries
/// (and every so many writes) to `snap.<lsn>.generating`, fsyncs it, then renames it to
/// `snap.<lsn>`. But its list of snapshot candidates only skips the old
/// `.in___motion` suffix, so a half-written `.generating` file left by a `kill -9`
/// sorts after the real snapshot, is chosen, fails its CRC, and the database no longer
/// opens (sled issues #1527, #1533). An unfinished snapshot is never the state of
/// record — the previous snapshot plus the log replayed from it is — so deleting it
/// loses nothing.
fn drop_unfinished_snapshots(dir: &Path) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut removed = false;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            std::fs::remove_file(entry.path())?;
            removed = true;
        }
    }
    if removed {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
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
