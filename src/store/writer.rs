//! The chunk writer: turns byte streams into content-addressed chunks in new packs.
//! FastCDC cutting and hashing (each chunk's SHA-256 and the whole stream's, in one
//! pass) run on one thread (`cut.rs`, chunks are ranges of shared read blocks, not
//! copies) while two workers look chunks up and compress new ones; the calling thread
//! appends new chunks to the pack in order. Every queue is bounded, so memory does not
//! grow with the stream's size. In-memory byte strings (`put_bytes`: segments, large
//! nodes) take the same steps on the calling thread.
//!
//! Publication is staged: when a pack is sealed (write → fsync file → fsync dir) its
//! chunk-index entries go to the metadata store in small batches, so neither this
//! writer nor the KV holds an entry per chunk of a long stream. The stream's chunk list
//! goes to a `ChunkSink` as chunks are placed, and a `Stager` writes entries that only
//! this writer's data refers to (full chunk-list nodes) ahead of the caller's batch.
//! Nothing refers to any of it until the caller publishes its own batch and calls
//! `keep`; a writer dropped before that deletes the staged entries, the index entries
//! (read back from its packs' entry headers) and the packs again. What this writer keeps
//! for that is one id per pack, not one per chunk.

use super::cut::{self, Piece};
use super::error::{Result, StoreError};
use super::gear::Gear;
use super::id::Id;
use super::pack::{ChunkLoc, Codec, PackWriter};
use super::pool::{self, Budget, Pool};
use super::sha2x::{self, Sha256};
use super::ChunkStore;
use crate::store::meta::Batch;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::{Scope, ScopedJoinHandle};

/// Chunks waiting between stages (about 2 MiB at the default average size): enough
/// that neither worker runs dry while the cutter reads and hashes.
const QUEUE: usize = 32;
/// Bytes of chunks in flight between the cutter and the pack at most (one chunk more
/// may pass alone). The queues count chunks, and `chunk_max` may be set to many MiB at
/// `init`: this bounds their bytes whatever the chunk sizes.
const IN_FLIGHT: usize = 8 << 20;
const WORKERS: usize = 2;
/// Compressed-chunk buffers kept for reuse, each for a chunk of up to twice the
/// average size (larger ones are allocated and freed as before).
const KEEP_BUFFERS: usize = 16;
/// Nice value of the chunk workers. The cutter (read, cut, both hashes) is the one
/// stage that cannot be split, and with four threads on two cores the scheduler gave
/// it only its fair two thirds of a core: the stream went at the cutter's pace while
/// the workers waited for chunks. Below the cutter's priority, the workers take what
/// it leaves; 1 GiB of mixed data went 2.12 → 1.97 s (docs/BENCHMARKS.md, session 27).
const WORKER_NICE: i32 = 5;
/// Chunk-index entries per metadata batch when a pack is published.
const INDEX_BATCH: usize = 1024;

/// A stored byte stream: its chunks in order, total size and SHA-256.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Blob {
    pub chunks: Vec<(Id, u32)>,
    pub size: u64,
    pub sha256: Id,
}

/// A stored byte stream whose chunk list went to a `ChunkSink`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Streamed {
    pub size: u64,
    pub sha256: Id,
    pub chunks: u64,
}

/// Receives a stream's chunks in order as they are placed (`put_stream_to`).
pub trait ChunkSink {
    fn chunk(&mut self, id: Id, len: u32) -> Result<()>;
}

impl ChunkSink for Vec<(Id, u32)> {
    fn chunk(&mut self, id: Id, len: u32) -> Result<()> {
        self.push((id, len));
        Ok(())
    }
}

/// Writes metadata entries ahead of the caller's batch: entries that only the writer's
/// unpublished data refers to, so they need not wait in memory. Entries already present
/// are left as they are; the writer deletes the ones it added unless it is kept.
#[derive(Clone)]
pub struct Stager<'a> {
    kv: &'a dyn crate::store::MetaKv,
    added: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Stager<'_> {
    pub fn put(&self, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        if self.kv.contains(&key)? {
            return Ok(());
        }
        let mut b = Batch::default();
        b.put(key.clone(), value);
        self.kv.apply(b)?;
        self.added.lock().expect("stager lock").push(key);
        Ok(())
    }
}

/// Counts of what one writer did.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteStats {
    pub logical_bytes: u64,
    pub new_chunks: u64,
    pub new_raw_bytes: u64,
    pub new_stored_bytes: u64,
    pub reused_chunks: u64,
}

pub struct ChunkWriter<'a> {
    store: &'a ChunkStore,
    pack: Option<PackWriter>,
    /// Sealed packs whose index entries are published (ids, for a rollback).
    finished: Vec<u64>,
    /// Keys written ahead by `Stager`s of this writer.
    staged: Arc<Mutex<Vec<Vec<u8>>>>,
    /// New chunks in the open pack, not yet in the chunk index.
    written: Arc<RwLock<HashMap<Id, ChunkLoc>>>,
    kept: bool,
    /// `put_bytes`'s compression context, made on first use.
    compressor: Option<zstd::bulk::Compressor<'static>>,
    pub stats: WriteStats,
}

struct Done {
    seq: u64,
    id: Id,
    len: u32,
    /// `ChunkStore::index_epoch` read before the worker looked the chunk up.
    epoch: u64,
    /// `None`: the chunk is already stored.
    stored: Option<Stored>,
}

/// A new chunk's bytes as they go into the pack.
enum Stored {
    Zstd(Vec<u8>),
    /// Compression did not make it smaller: the chunk's own bytes.
    Raw(Piece),
}

impl Stored {
    fn codec(&self) -> Codec {
        match self {
            Stored::Zstd(_) => Codec::Zstd,
            Stored::Raw(_) => Codec::Raw,
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Stored::Zstd(b) => b,
            Stored::Raw(p) => p.bytes(),
        }
    }
}

impl<'a> ChunkWriter<'a> {
    pub(super) fn new(store: &'a ChunkStore) -> Self {
        ChunkWriter {
            store,
            pack: None,
            finished: Vec::new(),
            staged: Arc::default(),
            written: Arc::default(),
            kept: false,
            compressor: None,
            stats: WriteStats::default(),
        }
    }

    /// The store written to. Chunks of this writer are readable through it once
    /// `finish` has sealed their pack (before `keep`, only this command sees them).
    pub fn store(&self) -> &'a ChunkStore {
        self.store
    }

    /// The metadata store, borrowed for as long as the store (not this writer).
    pub fn kv(&self) -> &'a dyn crate::store::MetaKv {
        self.store.kv()
    }

    /// Writes metadata entries ahead of the caller's batch (see `Stager`).
    pub fn stager(&self) -> Stager<'a> {
        Stager {
            kv: self.store.kv(),
            added: Arc::clone(&self.staged),
        }
    }

    /// Chunks, hashes and stores everything `reader` yields. `progress` gets byte counts.
    /// A read error is returned as is (`Err(io)`), with the offset reached.
    pub fn put_stream<R: Read + Send>(
        &mut self,
        reader: R,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<std::result::Result<Blob, (u64, std::io::Error)>> {
        let mut chunks = Vec::new();
        Ok(self
            .put_stream_to(reader, progress, &mut chunks)?
            .map(|s| Blob {
                chunks,
                size: s.size,
                sha256: s.sha256,
            }))
    }

    /// `put_stream`, handing the chunk list to `sink` as it grows instead of keeping it.
    pub fn put_stream_to<R: Read + Send>(
        &mut self,
        reader: R,
        progress: &(dyn Fn(u64) + Sync),
        sink: &mut dyn ChunkSink,
    ) -> Result<std::result::Result<Streamed, (u64, std::io::Error)>> {
        let cfg = self.store.config().clone();
        let (tx_raw, rx_raw) = sync_channel::<(u64, Piece)>(QUEUE);
        let rx_raw = Arc::new(Mutex::new(rx_raw));
        let (tx_done, rx_done) = sync_channel::<Done>(QUEUE);
        let budget = Budget::new(IN_FLIGHT);
        let blocks = Arc::new(Budget::new(cut::MAX_BLOCKS * cut::block_len(cfg.chunk_max)));
        let known = Arc::clone(&self.written);
        let store = self.store;
        let buffers = Pool::new(
            KEEP_BUFFERS,
            zstd::zstd_safe::compress_bound(2 * cfg.chunk_avg as usize),
        );
        let streamed = std::thread::scope(|s| {
            let cut_cfg = cfg.clone();
            let budget = &budget;
            let blocks = &blocks;
            let cutter = s.spawn(move || cut::cut(reader, &cut_cfg, tx_raw, budget, blocks));
            let workers: Vec<_> = (0..WORKERS)
                .map(|_| {
                    let rx = Arc::clone(&rx_raw);
                    let tx = tx_done.clone();
                    let known = Arc::clone(&known);
                    let buffers = buffers.clone();
                    let level = cfg.zstd_level;
                    s.spawn(move || {
                        let done = work(store, level, &rx, &tx, &known, &buffers);
                        if done.is_err() {
                            // The collector would wait for this worker's chunk forever,
                            // and the cutter for the budget that chunk holds.
                            budget.close();
                            blocks.close();
                        }
                        done
                    })
                })
                .collect();
            drop(tx_done);
            let out = self.collect(s, rx_done, progress, sink, &buffers, budget);
            budget.close();
            blocks.close();
            drop(rx_raw);
            let cut = cutter.join().expect("chunker thread");
            for w in workers {
                w.join().expect("chunk worker")?;
            }
            let chunks = out?;
            Ok(match cut {
                Ok((size, sha256)) => Ok(Streamed {
                    size,
                    sha256,
                    chunks,
                }),
                Err(e) => Err(e),
            })
        });
        // Only a stream that went through more than one read block freed any.
        if matches!(&streamed, Ok(Ok(s)) if s.size > cut::block_len(cfg.chunk_max) as u64) {
            pool::release_freed_memory();
        }
        streamed
    }

    /// Stores an in-memory byte string (a segment, a node too large for the KV) on the
    /// calling thread: the same cuts, hashes and placement as `put_stream`, without
    /// its threads, read blocks or copies. A decode pass stores hundreds of segments;
    /// spawning a pipeline for each left the allocator one heap per dead thread.
    pub fn put_bytes(&mut self, bytes: &[u8]) -> Result<Blob> {
        let cfg = self.store.config().clone();
        let mut chunks = Vec::new();
        let mut whole = Sha256::default();
        std::thread::scope(|s| {
            let mut sealing = None;
            let mut placed = || -> Result<()> {
                let gear = Gear::new(cfg.chunk_min, cfg.chunk_avg, cfg.chunk_max);
                let mut out = Vec::new();
                let mut pos = 0;
                while pos < bytes.len() {
                    let piece = &bytes[pos..pos + gear.cut(&bytes[pos..])];
                    pos += piece.len();
                    let id = Id(sha2x::take_piece(&mut whole, piece));
                    let epoch = self.store.index_epoch();
                    let len = piece.len() as u32;
                    let stored = if is_stored(self.store, &self.written, &id)? {
                        None
                    } else {
                        let z = match &mut self.compressor {
                            Some(z) => z,
                            empty => empty.insert(compressor(cfg.zstd_level)?),
                        };
                        Some(if shrinks(z, piece, &mut out) {
                            (Codec::Zstd, &out[..])
                        } else {
                            (Codec::Raw, piece)
                        })
                    };
                    self.accept(id, len, epoch, stored, s, &mut sealing)?;
                    chunks.push((id, len));
                }
                Ok(())
            };
            let placed = placed();
            placed.and(join_sealer(sealing.take()))
        })?;
        Ok(Blob {
            chunks,
            size: bytes.len() as u64,
            sha256: Id(whole.finalize()),
        })
    }

    fn collect<'scope>(
        &mut self,
        scope: &'scope Scope<'scope, '_>,
        rx: Receiver<Done>,
        progress: &(dyn Fn(u64) + Sync),
        sink: &mut dyn ChunkSink,
        buffers: &Pool,
        budget: &Budget,
    ) -> Result<u64>
    where
        'a: 'scope,
    {
        let mut pending = BTreeMap::new();
        let mut next = 0u64;
        let mut sealing = None;
        let placed = || -> Result<()> {
            for d in rx {
                pending.insert(d.seq, d);
                while let Some(d) = pending.remove(&next) {
                    next += 1;
                    progress(d.len as u64);
                    let stored = d.stored.as_ref().map(|st| (st.codec(), st.bytes()));
                    self.accept(d.id, d.len, d.epoch, stored, scope, &mut sealing)?;
                    sink.chunk(d.id, d.len)?;
                    budget.give(d.len as usize);
                    if let Some(Stored::Zstd(b)) = d.stored {
                        buffers.give(b);
                    }
                }
            }
            Ok(())
        };
        let placed = placed();
        let sealed = join_sealer(sealing.take());
        placed.and(sealed).map(|()| next)
    }

    /// Takes the stream's next chunk (`len` bytes before compression): counts it, and
    /// appends a new one (`stored`: its codec and bytes as stored; `None` when it was
    /// found stored) to the open pack, unless it turns out to be stored after all.
    /// `epoch`: `index_epoch` read before the chunk was looked up.
    fn accept<'scope>(
        &mut self,
        id: Id,
        len: u32,
        epoch: u64,
        stored: Option<(Codec, &[u8])>,
        scope: &'scope Scope<'scope, '_>,
        sealing: &mut Option<Sealer<'scope>>,
    ) -> Result<()>
    where
        'a: 'scope,
    {
        self.stats.logical_bytes += len as u64;
        let Some((codec, bytes)) = stored else {
            self.stats.reused_chunks += 1;
            return Ok(());
        };
        // A worker may have missed a chunk this thread placed or published meanwhile:
        // the collector is the one place that decides, against the map and — only if
        // entries were added to it since the worker looked — the index. (A sealer adds
        // its entries to the index, then moves the epoch, then drops them from the map.
        // Looking every new chunk up twice took ≈ 8 % of an ingest's CPU.)
        if self.written.read().expect("map lock").contains_key(&id)
            || (self.store.index_epoch() != epoch && self.store.has_chunk(&id)?)
        {
            self.stats.reused_chunks += 1;
            return Ok(());
        }
        if self
            .pack
            .as_ref()
            .is_some_and(|p| p.written() >= self.store.config().pack_target_bytes)
        {
            self.seal_in_background(scope, sealing)?;
        }
        if self.pack.is_none() {
            self.pack = Some(PackWriter::create(
                self.store.packs_dir(),
                self.store.new_pack_id(),
            )?);
        }
        let pack = self.pack.as_mut().expect("pack just opened");
        let loc = pack.append(id, len, codec, bytes)?;
        self.written.write().expect("map lock").insert(id, loc);
        self.stats.new_chunks += 1;
        self.stats.new_raw_bytes += len as u64;
        self.stats.new_stored_bytes += bytes.len() as u64;
        Ok(())
    }

    /// Seals the full pack on a thread of its own while the stream goes on into a new
    /// one (fsync and index batches took ≈0.2 s per 512 MiB pack, with every stage of
    /// the pipeline stopped behind them). Its entries stay in the map until they are in
    /// the index, so no check ever misses them. One seal at a time.
    fn seal_in_background<'scope>(
        &mut self,
        scope: &'scope Scope<'scope, '_>,
        sealing: &mut Option<Sealer<'scope>>,
    ) -> Result<()>
    where
        'a: 'scope,
    {
        join_sealer(sealing.take())?;
        let Some(pack) = self.pack.take() else {
            return Ok(());
        };
        // Only the open pack's entries are in the map once the last seal has ended.
        let mut entries: Vec<(Id, ChunkLoc)> = self
            .written
            .read()
            .expect("map lock")
            .iter()
            .map(|(id, loc)| (*id, *loc))
            .collect();
        self.finished.push(pack.id());
        let store = self.store;
        let written = Arc::clone(&self.written);
        *sealing = Some(scope.spawn(move || {
            publish_pack(store, pack, &mut entries)?;
            let mut map = written.write().expect("map lock");
            for (id, _) in &entries {
                map.remove(id);
            }
            // A pack's worth of entries left their room behind: give it back, or the
            // map would stay at a full pack's size through the rest of the command.
            map.shrink_to_fit();
            Ok(())
        }));
        Ok(())
    }

    /// Seals the open pack, then publishes its index entries in small batches (the
    /// pack key first, so no entry ever points into an unregistered pack).
    fn close_pack(&mut self) -> Result<()> {
        let Some(pack) = self.pack.take() else {
            return Ok(());
        };
        // The collector (this thread) checks the index after the map, so emptying the
        // map before the entries land cannot make it store a chunk twice.
        let mut entries: Vec<(Id, ChunkLoc)> =
            std::mem::take(&mut *self.written.write().expect("map lock"))
                .into_iter()
                .collect();
        self.finished.push(pack.id());
        publish_pack(self.store, pack, &mut entries)
    }

    /// Seals and indexes the open pack. The chunks are not referenced yet: publish
    /// what refers to them, then call `keep`.
    pub fn finish(&mut self) -> Result<()> {
        self.close_pack()
    }

    /// The caller published what refers to this writer's chunks: keep them.
    pub fn keep(mut self) {
        self.kept = true;
    }

    /// Deletes what this writer added: staged entries, then every chunk of its packs
    /// from the index (a pack is recorded before its entries are applied, so one whose
    /// entries were only partly applied is covered), then the packs.
    fn roll_back(&mut self) -> Result<()> {
        let kv = self.store.kv();
        let mut batch = Batch::default();
        for key in std::mem::take(&mut *self.staged.lock().expect("stager lock")) {
            batch.delete(key);
        }
        for id in &self.finished {
            let path = super::pack::pack_path(self.store.packs_dir(), *id);
            if !path.exists() {
                continue; // never finished: none of its entries were applied
            }
            super::pack::entry_ids(&path, &mut |cid| {
                batch.delete(super::chunk_key(&cid));
                if batch.ops.len() >= INDEX_BATCH {
                    kv.apply(std::mem::take(&mut batch))?;
                }
                Ok(())
            })?;
            batch.delete(super::pack_key(*id));
        }
        kv.apply(batch)?;
        kv.flush()?;
        for id in self.finished.drain(..) {
            let _ = std::fs::remove_file(super::pack::pack_path(self.store.packs_dir(), id));
        }
        Ok(())
    }
}

impl Drop for ChunkWriter<'_> {
    /// A writer dropped without `keep` (a failed command) removes its index entries,
    /// then the packs it made. If that fails too, what is left is unreferenced and
    /// `gc` removes it.
    fn drop(&mut self) {
        if let Some(p) = self.pack.take() {
            p.abandon();
        }
        if !self.kept {
            let _ = self.roll_back();
        }
    }
}

/// A pack being sealed on its own thread.
type Sealer<'scope> = ScopedJoinHandle<'scope, Result<()>>;

fn join_sealer(sealer: Option<Sealer<'_>>) -> Result<()> {
    sealer.map_or(Ok(()), |h| h.join().expect("pack sealing thread"))
}

/// Finishes `pack` (trailer, fsync of file and directory), then registers it and its
/// chunks in the index in small batches. A pack that could not be finished is removed.
fn publish_pack(
    store: &ChunkStore,
    pack: PackWriter,
    entries: &mut [(Id, ChunkLoc)],
) -> Result<()> {
    let id = pack.id();
    let size = match pack.finish(store.packs_dir()) {
        Ok(size) => size,
        Err(e) => {
            let _ = std::fs::remove_file(super::pack::pack_path(store.packs_dir(), id));
            return Err(e);
        }
    };
    let published = index_pack(store, id, size, entries);
    // Whatever part of the entries landed, lookups made before may be out of date.
    store.index_grew();
    published
}

/// Writes a sealed pack's `p/` key, then its chunk-index entries in batches, in key
/// order: ids are random, so entries in stream order dirtied most of the index's leaf
/// pages in every batch, and with redb's small write buffer each was written out again
/// and again (≈ 20 k page writes of 4 KiB per GiB ingested); sorted, a batch covers one
/// key range and a leaf is written about once per pack.
fn index_pack(
    store: &ChunkStore,
    id: u64,
    size: u64,
    entries: &mut [(Id, ChunkLoc)],
) -> Result<()> {
    entries.sort_unstable_by_key(|e| e.0);
    let mut batch = Batch::default();
    batch.put(super::pack_key(id), size.to_le_bytes().to_vec());
    for (i, (cid, loc)) in entries.iter().enumerate() {
        batch.put(super::chunk_key(cid), loc.encode());
        if (i + 1) % INDEX_BATCH == 0 {
            store.kv().apply(std::mem::take(&mut batch))?;
        }
    }
    store.kv().apply(batch)
}

/// A chunk worker: hashes each chunk it receives, checks whether the store (or this
/// writer) has it, and compresses it if not. Returns when either queue closes.
fn work(
    store: &ChunkStore,
    level: i32,
    rx: &Mutex<Receiver<(u64, Piece)>>,
    tx: &SyncSender<Done>,
    known: &RwLock<HashMap<Id, ChunkLoc>>,
    buffers: &Pool,
) -> Result<()> {
    let mut z = compressor(level)?;
    yield_to_cutter();
    loop {
        let next = rx.lock().expect("queue lock").recv();
        let Ok((seq, piece)) = next else {
            return Ok(());
        };
        let id = piece.id;
        let epoch = store.index_epoch();
        let have = is_stored(store, known, &id)?;
        let len = piece.bytes().len() as u32;
        let stored = if have {
            None
        } else {
            Some(compress(&mut z, piece, buffers))
        };
        if tx
            .send(Done {
                seq,
                id,
                len,
                epoch,
                stored,
            })
            .is_err()
        {
            return Ok(());
        }
    }
}

/// Lowers this worker thread's priority below the cutter's (`WORKER_NICE`).
fn yield_to_cutter() {
    #[cfg(target_os = "linux")]
    // SAFETY: sets the nice value of the calling thread only (per thread on Linux).
    // Raising one's own nice value is always allowed; a failure changes nothing.
    unsafe {
        libc::setpriority(
            libc::PRIO_PROCESS,
            libc::gettid() as libc::id_t,
            WORKER_NICE,
        );
    }
}

fn compressor(level: i32) -> Result<zstd::bulk::Compressor<'static>> {
    zstd::bulk::Compressor::new(level)
        .map_err(|e| StoreError::Config(format!("zstd level {level}: {e}")))
}

/// Compresses into a buffer of the pool.
fn compress(z: &mut zstd::bulk::Compressor<'_>, piece: Piece, pool: &Pool) -> Stored {
    let mut out = pool.take(zstd::zstd_safe::compress_bound(piece.bytes().len()));
    if shrinks(z, piece.bytes(), &mut out) {
        Stored::Zstd(out)
    } else {
        pool.give(out);
        Stored::Raw(piece)
    }
}

/// Compresses `src` into `out` (replacing what it held); false when zstd failed or
/// did not make it smaller (the chunk is then stored raw).
fn shrinks(z: &mut zstd::bulk::Compressor<'_>, src: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    out.reserve(zstd::zstd_safe::compress_bound(src.len()));
    matches!(z.compress_to_buffer(src, out), Ok(n) if n < src.len())
}

/// Whether chunk `id` is stored already: among `known` (this writer's unpublished
/// chunks) or in the chunk index.
fn is_stored(store: &ChunkStore, known: &RwLock<HashMap<Id, ChunkLoc>>, id: &Id) -> Result<bool> {
    Ok(known.read().expect("map lock").contains_key(id) || store.has_chunk(id)?)
}
