//! The chunk store: a directory of write-once pack files plus the metadata KV that
//! indexes them. Knows chunks, packs and raw keys — nothing about versions or tables.
//! Layout (normative in docs/format.md):
//!   BAGBASE       marker with the format version
//!   LOCK          flock'd by the one process that has the store open; holds its pid
//!   meta/         the metadata KV (redb: bagbase.redb; format-1 stores: sled)
//!   packs/xx/<16 hex>.pack

pub mod cache;
pub mod config;
pub mod cut;
mod direct;
pub mod error;
pub mod gear;
pub mod id;
pub mod meta;
pub mod pack;
pub mod pool;
pub mod sha2x;
pub mod writer;

pub use config::StoreConfig;
pub use error::{Result, StoreError};
pub use id::Id;
pub use meta::{Batch, MetaKv};
pub use writer::{Blob, ChunkSink, ChunkWriter, Stager, Streamed, WriteStats};

use error::IoContext;
use pack::ChunkLoc;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub const MARKER: &str = "BAGBASE";
const CONFIG_KEY: &[u8] = b"m/config";
const CHUNK_PREFIX: &[u8] = b"c/";
const PACK_PREFIX: &[u8] = b"p/";

pub fn chunk_key(id: &Id) -> Vec<u8> {
    [CHUNK_PREFIX, &id.0].concat()
}

pub fn pack_key(pack: u64) -> Vec<u8> {
    [PACK_PREFIX, &pack.to_be_bytes()[..]].concat()
}

impl std::fmt::Debug for ChunkStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkStore")
            .field("root", &self.root)
            .finish()
    }
}

pub struct ChunkStore {
    root: PathBuf,
    packs: PathBuf,
    kv: Arc<dyn MetaKv>,
    config: StoreConfig,
    open_packs: Mutex<HashMap<u64, Arc<File>>>,
    pack_counter: AtomicU64,
    /// Serializes the writers of this process (the file lock keeps other processes out).
    writer_lock: Mutex<()>,
    /// Decoded chunks that queries read again (footers, page indexes, hot pages).
    chunk_cache: cache::Lru<Id, bytes::Bytes>,
    /// Counts the metadata batches published by this process: what a query plan read
    /// (refs, versions, tables) is unchanged while this is (the file lock keeps other
    /// writers out). Cached plans are keyed by it.
    generation: AtomicU64,
    /// Counts the chunk-index publications of this process (`index_epoch`).
    index_epoch: AtomicU64,
    _lock: File,
}

/// Bytes of decoded chunks kept for queries, per open store, unless
/// `BAGBASE_CHUNK_CACHE_MB` says otherwise (a server's `shared_buffers`).
const CHUNK_CACHE_BYTES: usize = 64 << 20;

/// The chunk cache of a store `bagbase serve` opens, unless `BAGBASE_CHUNK_CACHE_MB`
/// says otherwise: random point lookups over a table larger than 64 MiB decompressed
/// chunks on most lookups (docs/BENCHMARKS.md, wire server, session 23).
pub const SERVER_CHUNK_CACHE_BYTES: usize = 256 << 20;

/// `BAGBASE_CHUNK_CACHE_MB` in bytes (at least 1 MiB), if it is set.
fn chunk_cache_env() -> Option<usize> {
    std::env::var("BAGBASE_CHUNK_CACHE_MB")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map(|mb| mb.clamp(1, 1 << 20) << 20)
}

/// The chunk cache's capacity: `BAGBASE_CHUNK_CACHE_MB` MiB, else `CHUNK_CACHE_BYTES`.
fn chunk_cache_bytes() -> usize {
    chunk_cache_env().unwrap_or(CHUNK_CACHE_BYTES)
}

/// What `fsck` found in the chunk layer.
#[derive(Debug, Default)]
pub struct ChunkCheck {
    pub packs: u64,
    pub chunks: u64,
    pub bytes: u64,
    /// Chunks that cannot be read back intact, with why.
    pub bad_chunks: Vec<(Id, String)>,
    /// Whole-pack problems (missing file, broken header or trailer).
    pub bad_packs: Vec<String>,
    /// Pack files on disk that no metadata refers to (left by a crash; `gc` removes them).
    pub orphan_packs: Vec<PathBuf>,
}

/// What `gc` did in the chunk layer.
#[derive(Debug, Default)]
pub struct ChunkGc {
    pub chunks_removed: u64,
    pub packs_deleted: u64,
    pub packs_rewritten: u64,
    pub bytes_freed: u64,
}

impl ChunkStore {
    /// Creates a new, empty store at `root`.
    pub fn init(root: &Path, config: StoreConfig) -> Result<ChunkStore> {
        config.validate()?;
        if root.join(MARKER).exists() {
            return Err(StoreError::AlreadyExists(root.to_path_buf()));
        }
        std::fs::create_dir_all(root.join("packs")).at(root)?;
        let version = config.format_version;
        let store = Self::open_unchecked(root, Some(config))?;
        let mut marker = File::create(root.join(MARKER)).at(root.join(MARKER))?;
        writeln!(marker, "bagbase store\nformat {version}").at(root)?;
        marker.sync_all().at(root)?;
        pack::sync_dir(root)?;
        Ok(store)
    }

    pub fn open(root: &Path) -> Result<ChunkStore> {
        if !root.join(MARKER).is_file() {
            return Err(StoreError::NoStore(root.to_path_buf()));
        }
        Self::open_unchecked(root, None)
    }

    fn open_unchecked(root: &Path, init: Option<StoreConfig>) -> Result<ChunkStore> {
        let lock = take_lock(root)?;
        // Format 2 keeps metadata in redb, format 1 in sled (docs/format.md §3): a new
        // store is created with the KV of its format, an existing one opened with the
        // KV whose file is there.
        let dir = root.join("meta");
        let redb = match &init {
            Some(c) => c.format_version >= 2,
            None => meta::RedbKv::exists(&dir),
        };
        let kv: Arc<dyn MetaKv> = if redb {
            Arc::new(meta::RedbKv::open(&dir)?)
        } else {
            Arc::new(meta::SledKv::open(&dir).map_err(|e| StoreError::Meta(e.to_string()))?)
        };
        let config = match init {
            Some(c) => {
                let mut b = Batch::default();
                b.put(
                    CONFIG_KEY,
                    serde_json::to_vec(&c).expect("config serializes"),
                );
                kv.apply(b)?;
                kv.flush()?;
                c
            }
            None => {
                let raw = kv.get(CONFIG_KEY)?.ok_or_else(|| StoreError::Corrupt {
                    what: "metadata".into(),
                    detail: "the store configuration (m/config) is missing".into(),
                })?;
                let c: StoreConfig =
                    serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt {
                        what: "metadata".into(),
                        detail: format!("m/config: {e}"),
                    })?;
                if !(config::OLDEST_FORMAT..=config::FORMAT_VERSION).contains(&c.format_version) {
                    return Err(StoreError::UnsupportedFormat {
                        found: c.format_version,
                        supported: config::FORMAT_VERSION,
                    });
                }
                c
            }
        };
        Ok(ChunkStore {
            root: root.to_path_buf(),
            packs: root.join("packs"),
            kv,
            config,
            open_packs: Mutex::default(),
            pack_counter: AtomicU64::new(0),
            writer_lock: Mutex::new(()),
            chunk_cache: cache::Lru::new(chunk_cache_bytes()),
            generation: AtomicU64::new(0),
            index_epoch: AtomicU64::new(0),
            _lock: lock,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn packs_dir(&self) -> &Path {
        &self.packs
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    pub fn kv(&self) -> &dyn MetaKv {
        &*self.kv
    }

    /// Held by every command that changes metadata, from reading the working set it
    /// edits until its batch is published, so two writers never lose each other's work.
    pub fn write_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writer_lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn writer(&self) -> ChunkWriter<'_> {
        ChunkWriter::new(self)
    }

    /// A fresh pack id: unique across processes and crashes, never reused.
    fn new_pack_id(&self) -> u64 {
        let n = self.pack_counter.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let seed = format!("{t}/{}/{n}", std::process::id());
        let h = Id::of(seed.as_bytes());
        u64::from_be_bytes(h.0[..8].try_into().expect("8 bytes"))
    }

    /// Changes after chunk-index entries were added (by a writer of this process; the
    /// file lock keeps other processes out): a chunk not in the index when this was
    /// read is still not in it while this is unchanged.
    pub(crate) fn index_epoch(&self) -> u64 {
        self.index_epoch.load(Ordering::Acquire)
    }

    /// Called after adding chunk-index entries (or trying to).
    pub(crate) fn index_grew(&self) {
        self.index_epoch.fetch_add(1, Ordering::AcqRel);
    }

    pub fn has_chunk(&self, id: &Id) -> Result<bool> {
        self.kv.contains(&chunk_key(id))
    }

    pub fn locate(&self, id: &Id) -> Result<ChunkLoc> {
        let raw = self
            .kv
            .get(&chunk_key(id))?
            .ok_or_else(|| StoreError::MissingChunk(id.hex()))?;
        ChunkLoc::decode(&raw).ok_or_else(|| StoreError::Corrupt {
            what: "chunk index".into(),
            detail: format!("entry for {id} does not decode"),
        })
    }

    fn pack_file(&self, pack: u64) -> Result<Arc<File>> {
        let mut open = self.open_packs.lock().expect("pack cache lock");
        if let Some(f) = open.get(&pack) {
            return Ok(Arc::clone(f));
        }
        let path = pack::pack_path(&self.packs, pack);
        let f = Arc::new(File::open(&path).at(&path)?);
        if open.len() > 256 {
            open.clear();
        }
        open.insert(pack, Arc::clone(&f));
        Ok(f)
    }

    /// Reads one chunk back, checking its entry header and CRC.
    pub fn read_chunk(&self, id: &Id) -> Result<Vec<u8>> {
        let loc = self.locate(id)?;
        let f = self.pack_file(loc.pack)?;
        pack::read_entry(&f, &pack::pack_path(&self.packs, loc.pack), id, &loc)
    }

    /// A chunk's bytes through the store's chunk cache: for queries, which come back to
    /// the same footers and pages. Bulk readers (export, fsck) use `read_chunk`.
    /// Sizes the chunk cache for a server ([`SERVER_CHUNK_CACHE_BYTES`]) unless
    /// `BAGBASE_CHUNK_CACHE_MB` set it.
    pub fn use_server_chunk_cache(&self) {
        if chunk_cache_env().is_none() {
            self.chunk_cache.set_capacity(SERVER_CHUNK_CACHE_BYTES);
        }
    }

    pub fn read_chunk_cached(&self, id: &Id) -> Result<bytes::Bytes> {
        if let Some(b) = self.chunk_cache.get(id) {
            return Ok(b);
        }
        let b = bytes::Bytes::from(self.read_chunk(id)?);
        self.chunk_cache.insert(*id, b.clone(), b.len());
        Ok(b)
    }

    /// Reads a whole blob into memory (segments and large nodes are bounded in size).
    pub fn read_blob(&self, chunks: &[(Id, u32)]) -> Result<Vec<u8>> {
        let total: usize = chunks.iter().map(|(_, l)| *l as usize).sum();
        let mut out = Vec::with_capacity(total);
        for (id, _) in chunks {
            out.extend_from_slice(&self.read_chunk(id)?);
        }
        Ok(out)
    }

    /// Applies a batch and makes it durable before returning.
    pub fn publish(&self, batch: Batch) -> Result<()> {
        let applied = self.kv.apply(batch);
        // Bumped even when the batch failed: a partial apply must not keep old plans.
        self.generation.fetch_add(1, Ordering::SeqCst);
        applied?;
        self.kv.flush()
    }

    /// How many metadata batches this process has published (see `generation`).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn registered_packs(&self) -> Result<Vec<(u64, u64)>> {
        let mut out = Vec::new();
        for (k, v) in self.kv.scan_prefix(PACK_PREFIX)? {
            let id = u64::from_be_bytes(k[2..].try_into().map_err(|_| corrupt_meta("pack key"))?);
            let size = u64::from_le_bytes(v[..].try_into().map_err(|_| corrupt_meta("pack size"))?);
            out.push((id, size));
        }
        Ok(out)
    }

    fn pack_files_on_disk(&self) -> Result<Vec<(u64, PathBuf)>> {
        let mut out = Vec::new();
        let Ok(dirs) = std::fs::read_dir(&self.packs) else {
            return Ok(out);
        };
        for d in dirs {
            let d = d.at(&self.packs)?;
            if !d.path().is_dir() {
                continue;
            }
            for f in std::fs::read_dir(d.path()).at(d.path())? {
                let p = f.at(d.path())?.path();
                if let Some(id) = pack::pack_id_from_path(&p) {
                    out.push((id, p));
                }
            }
        }
        Ok(out)
    }

    /// Re-reads every registered pack, re-hashes every chunk and checks that the index
    /// points at real entries.
    pub fn check(&self) -> Result<ChunkCheck> {
        let mut report = ChunkCheck::default();
        let mut index: HashMap<Id, ChunkLoc> = HashMap::new();
        for (k, v) in self.kv.scan_prefix(CHUNK_PREFIX)? {
            let id = Id::from_slice(&k[2..]).ok_or_else(|| corrupt_meta("chunk key"))?;
            match ChunkLoc::decode(&v) {
                Some(loc) => {
                    index.insert(id, loc);
                }
                None => report
                    .bad_chunks
                    .push((id, "index entry does not decode".into())),
            }
        }
        let registered = self.registered_packs()?;
        let known: HashSet<u64> = registered.iter().map(|(id, _)| *id).collect();
        for (id, path) in self.pack_files_on_disk()? {
            if !known.contains(&id) {
                report.orphan_packs.push(path);
            }
        }
        let mut seen: HashSet<Id> = HashSet::new();
        for (pack_id, _) in registered {
            report.packs += 1;
            let path = pack::pack_path(&self.packs, pack_id);
            let res = pack::scan(&path, &mut |e| {
                report.bytes += e.header.raw_len as u64;
                let Some(loc) = index.get(&e.header.id) else {
                    return Ok(());
                };
                if loc.pack != pack_id || loc.offset != e.offset {
                    return Ok(());
                }
                seen.insert(e.header.id);
                report.chunks += 1;
                match e.raw {
                    Err(why) => report.bad_chunks.push((e.header.id, why)),
                    Ok(raw) if Id::of(&raw) != e.header.id => report
                        .bad_chunks
                        .push((e.header.id, "content does not hash to its id".into())),
                    Ok(_) => {}
                }
                Ok(())
            });
            if let Err(e) = res {
                report.bad_packs.push(e.to_string());
            }
        }
        for (id, loc) in &index {
            if !seen.contains(id) && !report.bad_chunks.iter().any(|(b, _)| b == id) {
                report.bad_chunks.push((
                    *id,
                    format!("not found at pack {:016x} offset {}", loc.pack, loc.offset),
                ));
            }
        }
        report.bad_chunks.sort_by_key(|(id, _)| *id);
        Ok(report)
    }

    /// Every chunk id in the index.
    pub fn all_chunks(&self) -> Result<Vec<Id>> {
        let mut out = Vec::new();
        self.kv.for_each_key(CHUNK_PREFIX, &mut |k| {
            out.push(Id::from_slice(&k[2..]).ok_or_else(|| corrupt_meta("chunk key"))?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Drops every chunk not in `live`: whole packs are deleted, partly live packs are
    /// copied into a new pack first. `extra` (node deletions of the layer above) rides
    /// in the same metadata batch. Old files go only after the batch is durable.
    pub fn collect_garbage(&self, live: &HashSet<Id>, extra: Batch) -> Result<ChunkGc> {
        let mut gc = ChunkGc::default();
        let mut by_pack: HashMap<u64, PackContents> = HashMap::new();
        for (k, v) in self.kv.scan_prefix(CHUNK_PREFIX)? {
            let id = Id::from_slice(&k[2..]).ok_or_else(|| corrupt_meta("chunk key"))?;
            let loc = ChunkLoc::decode(&v).ok_or_else(|| corrupt_meta("chunk location"))?;
            let e = by_pack.entry(loc.pack).or_default();
            if live.contains(&id) {
                e.0.push((id, loc));
            } else {
                e.1.push(id);
            }
        }
        let mut batch = extra;
        let mut to_delete: Vec<u64> = Vec::new();
        let mut new_pack: Option<pack::PackWriter> = None;
        let registered = self.registered_packs()?;
        for (pack_id, size) in &registered {
            let (keep, dead) = by_pack.remove(pack_id).unwrap_or_default();
            if dead.is_empty() && !keep.is_empty() {
                continue;
            }
            for id in &dead {
                batch.delete(chunk_key(id));
                gc.chunks_removed += 1;
            }
            if !keep.is_empty() {
                let w = match &mut new_pack {
                    Some(w) => w,
                    None => {
                        new_pack.insert(pack::PackWriter::create(&self.packs, self.new_pack_id())?)
                    }
                };
                let f = self.pack_file(*pack_id)?;
                let path = pack::pack_path(&self.packs, *pack_id);
                for (id, loc) in keep {
                    let raw = pack::read_entry(&f, &path, &id, &loc)?;
                    let (codec, stored) = match loc.codec {
                        pack::Codec::Raw => (pack::Codec::Raw, raw),
                        pack::Codec::Zstd => (
                            pack::Codec::Zstd,
                            zstd::bulk::compress(&raw, self.config.zstd_level)
                                .map_err(|e| StoreError::Config(e.to_string()))?,
                        ),
                    };
                    let nl = w.append(id, loc.raw_len, codec, &stored)?;
                    batch.put(chunk_key(&id), nl.encode());
                }
                gc.packs_rewritten += 1;
            } else {
                gc.packs_deleted += 1;
            }
            batch.delete(pack_key(*pack_id));
            gc.bytes_freed += size;
            to_delete.push(*pack_id);
        }
        if let Some(w) = new_pack {
            let id = w.id();
            let size = w.finish(&self.packs)?;
            batch.put(pack_key(id), size.to_le_bytes().to_vec());
            gc.bytes_freed = gc.bytes_freed.saturating_sub(size);
        }
        self.publish(batch)?;
        self.open_packs.lock().expect("pack cache lock").clear();
        for id in to_delete {
            let p = pack::pack_path(&self.packs, id);
            std::fs::remove_file(&p).at(&p)?;
        }
        let known: HashSet<u64> = registered.iter().map(|(id, _)| *id).collect();
        for (id, path) in self.pack_files_on_disk()? {
            if !known.contains(&id) && self.kv.get(&pack_key(id))?.is_none() {
                gc.bytes_freed += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                std::fs::remove_file(&path).at(&path)?;
            }
        }
        Ok(gc)
    }
}

/// The chunks of one pack split into (still referenced with their location, dead).
type PackContents = (Vec<(Id, ChunkLoc)>, Vec<Id>);

fn corrupt_meta(what: &str) -> StoreError {
    StoreError::Corrupt {
        what: "metadata".into(),
        detail: format!("malformed {what}"),
    }
}

/// Takes the store's one-process lock, or names the process that holds it.
fn take_lock(root: &Path) -> Result<File> {
    let path = root.join("LOCK");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .at(&path)?;
    // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let pid = std::fs::read_to_string(&path).unwrap_or_default();
        return Err(StoreError::Locked {
            dir: root.to_path_buf(),
            pid: pid.trim().to_string(),
        });
    }
    f.set_len(0).at(&path)?;
    write!(f, "{}", std::process::id()).at(&path)?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> StoreConfig {
        StoreConfig {
            chunk_min: 1024,
            chunk_avg: 4096,
            chunk_max: 16384,
            ..StoreConfig::default()
        }
    }

    #[test]
    fn dedup_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let s = ChunkStore::init(dir.path(), small()).unwrap();
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i.wrapping_mul(2654435761)).to_le_bytes())
            .collect();
        let mut w = s.writer();
        let b1 = w.put_bytes(&data).unwrap();
        let b2 = w.put_bytes(&data).unwrap();
        assert_eq!(b1, b2);
        assert_eq!(w.stats.reused_chunks as usize, b1.chunks.len());
        w.finish().unwrap();
        w.keep();
        assert_eq!(s.read_blob(&b1.chunks).unwrap(), data);
        assert_eq!(b1.sha256, Id::of(&data));
        let c = s.check().unwrap();
        assert!(c.bad_chunks.is_empty() && c.bad_packs.is_empty());
        assert_eq!(c.chunks as usize, b1.chunks.len());
    }

    /// `put_bytes` (inline) and `put_stream` (threads) cut, hash and store alike,
    /// through pack seals, compressible and incompressible chunks both.
    #[test]
    fn put_bytes_is_put_stream() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig {
            pack_target_bytes: 64 << 10,
            ..small()
        };
        let s = ChunkStore::init(dir.path(), cfg).unwrap();
        let mut x = 88172645463325252u64;
        let data: Vec<u8> = (0..600_000usize)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if (i / 50_000) % 2 == 0 {
                    x as u8
                } else {
                    (i % 7) as u8
                }
            })
            .collect();
        let mut w = s.writer();
        let inline = w.put_bytes(&data).unwrap();
        assert!(w.stats.new_chunks > 0 && w.stats.new_stored_bytes < data.len() as u64);
        let new = w.stats.new_chunks;
        let streamed = w.put_stream(&data[..], &|_| ()).unwrap().unwrap();
        assert_eq!(inline, streamed);
        assert_eq!(
            w.stats.new_chunks, new,
            "the stream found every chunk stored"
        );
        w.finish().unwrap();
        w.keep();
        assert_eq!(s.read_blob(&inline.chunks).unwrap(), data);
        let c = s.check().unwrap();
        assert!(c.bad_chunks.is_empty() && c.bad_packs.is_empty());
        let packs = std::fs::read_dir(s.packs_dir())
            .unwrap()
            .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
            .count();
        assert!(packs > 2, "packs were sealed on the way: {packs}");
    }

    #[test]
    fn second_process_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let _s = ChunkStore::init(dir.path(), small()).unwrap();
        let err = ChunkStore::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains(&std::process::id().to_string()), "{err}");
    }

    #[test]
    fn gc_drops_dead_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let s = ChunkStore::init(dir.path(), small()).unwrap();
        let mut w = s.writer();
        let a = w.put_bytes(&vec![1u8; 50_000]).unwrap();
        let b = w
            .put_bytes(&(0..60_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>())
            .unwrap();
        w.finish().unwrap();
        w.keep();
        let live: HashSet<Id> = a.chunks.iter().map(|c| c.0).collect();
        let gc = s.collect_garbage(&live, Batch::default()).unwrap();
        assert!(gc.chunks_removed > 0);
        assert_eq!(s.read_blob(&a.chunks).unwrap(), vec![1u8; 50_000]);
        assert!(s.read_chunk(&b.chunks[0].0).is_err() || live.contains(&b.chunks[0].0));
        assert!(s.check().unwrap().bad_chunks.is_empty());
    }
}
