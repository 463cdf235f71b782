//! The chunk writer: turns byte streams into content-addressed chunks in new packs.
//! FastCDC cutting and the whole-stream SHA-256 run on one thread while two workers
//! hash and compress chunks; the calling thread appends new chunks to the pack in
//! order. Every queue is bounded, so memory does not grow with the stream's size.
//! Nothing is visible until the caller applies the batch from `finish`.

use super::error::{Result, StoreError};
use super::id::Id;
use super::pack::{ChunkLoc, Codec, PackWriter};
use super::ChunkStore;
use crate::store::meta::Batch;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex, RwLock};

const QUEUE: usize = 8;
const WORKERS: usize = 2;

/// A stored byte stream: its chunks in order, total size and SHA-256.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Blob {
    pub chunks: Vec<(Id, u32)>,
    pub size: u64,
    pub sha256: Id,
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
    finished: Vec<(u64, u64)>,
    written: Arc<RwLock<HashMap<Id, ChunkLoc>>>,
    pub stats: WriteStats,
}

struct Done {
    seq: u64,
    id: Id,
    len: u32,
    stored: Option<(Codec, Vec<u8>)>,
}

impl<'a> ChunkWriter<'a> {
    pub(super) fn new(store: &'a ChunkStore) -> Self {
        ChunkWriter {
            store,
            pack: None,
            finished: Vec::new(),
            written: Arc::default(),
            stats: WriteStats::default(),
        }
    }

    /// The metadata store, borrowed for as long as the store (not this writer).
    pub fn kv(&self) -> &'a dyn crate::store::MetaKv {
        self.store.kv()
    }

    /// Chunks, hashes and stores everything `reader` yields. `progress` gets byte counts.
    /// A read error is returned as is (`Err(io)`), with the offset reached.
    pub fn put_stream<R: Read + Send>(
        &mut self,
        reader: R,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<std::result::Result<Blob, (u64, std::io::Error)>> {
        let cfg = self.store.config().clone();
        let (tx_raw, rx_raw) = sync_channel::<(u64, Vec<u8>)>(QUEUE);
        let rx_raw = Arc::new(Mutex::new(rx_raw));
        let (tx_done, rx_done) = sync_channel::<Done>(QUEUE);
        let known = Arc::clone(&self.written);
        let store = self.store;
        std::thread::scope(|s| {
            let cut_cfg = cfg.clone();
            let cutter = s.spawn(move || cut(reader, &cut_cfg, tx_raw));
            for _ in 0..WORKERS {
                let rx = Arc::clone(&rx_raw);
                let tx = tx_done.clone();
                let known = Arc::clone(&known);
                let level = cfg.zstd_level;
                s.spawn(move || -> Result<()> {
                    let mut z = zstd::bulk::Compressor::new(level)
                        .map_err(|e| StoreError::Config(format!("zstd level {level}: {e}")))?;
                    loop {
                        let next = rx.lock().expect("queue lock").recv();
                        let Ok((seq, data)) = next else { return Ok(()) };
                        let id = Id::of(&data);
                        let have = known.read().expect("map lock").contains_key(&id)
                            || store.has_chunk(&id)?;
                        let len = data.len() as u32;
                        let stored = if have {
                            None
                        } else {
                            Some(compress(&mut z, data))
                        };
                        if tx
                            .send(Done {
                                seq,
                                id,
                                len,
                                stored,
                            })
                            .is_err()
                        {
                            return Ok(());
                        }
                    }
                });
            }
            drop(tx_done);
            let out = self.collect(rx_done, progress);
            drop(rx_raw);
            let cut = cutter.join().expect("chunker thread");
            let chunks = out?;
            Ok(match cut {
                Ok((size, sha256)) => Ok(Blob {
                    chunks,
                    size,
                    sha256,
                }),
                Err(e) => Err(e),
            })
        })
    }

    /// Stores an in-memory byte string (a segment, a node too large for the KV).
    pub fn put_bytes(&mut self, bytes: &[u8]) -> Result<Blob> {
        match self.put_stream(bytes, &|_| ())? {
            Ok(b) => Ok(b),
            Err((_, e)) => Err(StoreError::Io {
                path: "<memory>".into(),
                source: e,
            }),
        }
    }

    fn collect(
        &mut self,
        rx: Receiver<Done>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<(Id, u32)>> {
        let mut pending = BTreeMap::new();
        let mut next = 0u64;
        let mut chunks = Vec::new();
        for d in rx {
            pending.insert(d.seq, d);
            while let Some(d) = pending.remove(&next) {
                next += 1;
                self.stats.logical_bytes += d.len as u64;
                progress(d.len as u64);
                self.place(&d)?;
                chunks.push((d.id, d.len));
            }
        }
        Ok(chunks)
    }

    fn place(&mut self, d: &Done) -> Result<()> {
        let Some((codec, stored)) = &d.stored else {
            self.stats.reused_chunks += 1;
            return Ok(());
        };
        if self.written.read().expect("map lock").contains_key(&d.id) {
            self.stats.reused_chunks += 1;
            return Ok(());
        }
        if self
            .pack
            .as_ref()
            .is_some_and(|p| p.written() >= self.store.config().pack_target_bytes)
        {
            self.close_pack()?;
        }
        if self.pack.is_none() {
            self.pack = Some(PackWriter::create(
                self.store.packs_dir(),
                self.store.new_pack_id(),
            )?);
        }
        let pack = self.pack.as_mut().expect("pack just opened");
        let loc = pack.append(d.id, d.len, *codec, stored)?;
        self.written.write().expect("map lock").insert(d.id, loc);
        self.stats.new_chunks += 1;
        self.stats.new_raw_bytes += d.len as u64;
        self.stats.new_stored_bytes += stored.len() as u64;
        Ok(())
    }

    fn close_pack(&mut self) -> Result<()> {
        if let Some(p) = self.pack.take() {
            let id = p.id();
            let size = p.finish(self.store.packs_dir())?;
            self.finished.push((id, size));
        }
        Ok(())
    }

    /// Seals the open pack (write → fsync file → fsync dir) and returns the index
    /// entries to apply in the same metadata batch as whatever refers to the chunks.
    pub fn finish(mut self) -> Result<Batch> {
        self.close_pack()?;
        let mut batch = Batch::default();
        for (id, loc) in self.written.read().expect("map lock").iter() {
            batch.put(super::chunk_key(id), loc.encode());
        }
        for (pack, size) in self.finished.drain(..) {
            batch.put(super::pack_key(pack), size.to_le_bytes().to_vec());
        }
        Ok(batch)
    }
}

impl Drop for ChunkWriter<'_> {
    /// A writer dropped without `finish` (a failed command) removes the packs it made.
    fn drop(&mut self) {
        if let Some(p) = self.pack.take() {
            p.abandon();
        }
        for (id, _) in self.finished.drain(..) {
            let _ = std::fs::remove_file(super::pack::pack_path(self.store.packs_dir(), id));
        }
    }
}

fn compress(z: &mut zstd::bulk::Compressor<'_>, data: Vec<u8>) -> (Codec, Vec<u8>) {
    match z.compress(&data) {
        Ok(c) if c.len() < data.len() => (Codec::Zstd, c),
        _ => (Codec::Raw, data),
    }
}

/// Reader side: cuts content-defined chunks and hashes the whole stream.
type CutResult = std::result::Result<(u64, Id), (u64, std::io::Error)>;

fn cut<R: Read>(
    reader: R,
    cfg: &super::StoreConfig,
    tx: std::sync::mpsc::SyncSender<(u64, Vec<u8>)>,
) -> CutResult {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let cdc = fastcdc::v2020::StreamCDC::new(reader, cfg.chunk_min, cfg.chunk_avg, cfg.chunk_max);
    for (seq, c) in cdc.enumerate() {
        let c = match c {
            Ok(c) => c,
            Err(fastcdc::v2020::Error::IoError(e)) => return Err((size, e)),
            Err(e) => return Err((size, std::io::Error::other(e.to_string()))),
        };
        hasher.update(&c.data);
        size += c.data.len() as u64;
        if tx.send((seq as u64, c.data)).is_err() {
            break;
        }
    }
    Ok((size, Id(hasher.finalize().into())))
}
