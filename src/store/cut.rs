//! Cuts a byte stream into FastCDC (2020) chunks without copying them: the stream is
//! read in large blocks that the chunk pipeline shares by reference, each chunk is a
//! range of one block, and only a block's unfinished tail is copied to the start of the
//! next. Each chunk's SHA-256 (its id) and the whole stream's are taken here, in one
//! pass over the chunk's bytes (`sha2x`). A block goes back to the cutter's pool when
//! its last chunk is dropped.
//!
//! Boundaries are exactly those of `fastcdc::v2020::StreamCDC` (the cutter it
//! replaces): a cut is only looked for with `chunk_max` bytes in view or at the end of
//! the stream, so stores written before keep deduplicating against new data.

use super::config::StoreConfig;
use super::gear::Gear;
use super::id::Id;
use super::pool::{Budget, Pool, MMAP_THRESHOLD};
use super::sha2x::{self, Sha256};
use std::io::Read;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

/// Smallest block read from the stream (a block is at least two largest chunks).
const MIN_BLOCK: usize = 2 << 20;
/// Blocks in existence at most: a block lives while any chunk cut from it waits in the
/// pipeline, and the cutter waits for one to be freed. All are kept for reuse (each is
/// mapped on its own: one unmapped and mapped again costs its page faults anew).
pub const MAX_BLOCKS: usize = 5;
const KEEP_BLOCKS: usize = MAX_BLOCKS;

/// Bytes of a read block for chunks of at most `chunk_max` bytes.
pub fn block_len(chunk_max: u32) -> usize {
    (2 * chunk_max as usize).max(MIN_BLOCK)
}

/// A read block; its bytes go back to the pool when the last chunk of it is dropped.
struct Block {
    bytes: Vec<u8>,
    pool: Pool,
    live: Arc<Budget>,
    len: usize,
}

impl Drop for Block {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.bytes));
        self.live.give(self.len);
    }
}

/// One chunk: a range of a shared block, and its id.
pub struct Piece {
    pub id: Id,
    block: Arc<Block>,
    start: usize,
    len: usize,
}

impl Piece {
    pub fn bytes(&self) -> &[u8] {
        &self.block.bytes[self.start..self.start + self.len]
    }
}

/// Size and SHA-256 of the whole stream, or the offset where reading failed.
pub type CutResult = std::result::Result<(u64, Id), (u64, std::io::Error)>;

/// Reads `reader` to its end and sends its chunks, numbered in order, to `tx`, each
/// once `budget` has room for it; reads into a new block once `blocks` has room for
/// one (`blocks` must allow at least two). Stops early (with what it has read) when the
/// receiving side hangs up or closes either budget.
pub fn cut<R: Read>(
    mut reader: R,
    cfg: &StoreConfig,
    tx: SyncSender<(u64, Piece)>,
    budget: &Budget,
    blocks: &Arc<Budget>,
) -> CutResult {
    let max = cfg.chunk_max;
    let gear = Gear::new(cfg.chunk_min, cfg.chunk_avg, max);
    let block_len = block_len(max);
    let mut hasher = Sha256::default();
    let mut size = 0u64;
    let mut seq = 0u64;
    // Mapped on their own, not from the heap (see `MMAP_THRESHOLD`); only the bytes a
    // block is filled with become resident.
    let alloc_len = block_len.max(MMAP_THRESHOLD);
    let pool = Pool::new(KEEP_BLOCKS, alloc_len);
    // The next block, already holding the unfinished tail of the last one.
    if !blocks.take(block_len) {
        return Ok((0, Id(hasher.finalize())));
    }
    let mut block = pool.take(alloc_len);
    loop {
        let fresh = block.len();
        let eof = fill(&mut reader, &mut block, block_len).map_err(|e| (size, e))?;
        size += (block.len() - fresh) as u64;
        let n = block.len();
        let shared = Arc::new(Block {
            bytes: std::mem::take(&mut block),
            pool: pool.clone(),
            live: Arc::clone(blocks),
            len: block_len,
        });
        let bytes = &shared.bytes;
        let mut pos = 0;
        // The stream hash follows the cuts: bytes carried over to the next block are
        // hashed with the chunk they end up in.
        while pos < n && (eof || n - pos >= max as usize) {
            let end = pos + gear.cut(&bytes[pos..n]);
            let piece = Piece {
                id: Id(sha2x::take_piece(&mut hasher, &bytes[pos..end])),
                block: Arc::clone(&shared),
                start: pos,
                len: end - pos,
            };
            if !budget.take(piece.len) || tx.send((seq, piece)).is_err() {
                return Ok((size, Id(hasher.finalize())));
            }
            seq += 1;
            pos = end;
        }
        if eof || !blocks.take(block_len) {
            return Ok((size, Id(hasher.finalize())));
        }
        block = pool.take(alloc_len);
        block.extend_from_slice(&bytes[pos..]);
    }
}

/// Reads into `buf` until it holds `len` bytes or the stream ends (returns true then).
/// `read_to_end` fills the spare capacity without zeroing it first.
fn fill<R: Read>(reader: &mut R, buf: &mut Vec<u8>, len: usize) -> std::io::Result<bool> {
    let want = len.saturating_sub(buf.len());
    let got = reader.take(want as u64).read_to_end(buf)?;
    Ok(got < want)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per call, like a pipe or socket.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn pieces(data: &[u8], cfg: &StoreConfig, step: usize) -> (Vec<Vec<u8>>, CutResult) {
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let budget = Budget::new(1 << 20);
        let blocks = Arc::new(Budget::new(2 * MIN_BLOCK));
        std::thread::scope(|s| {
            let h = s.spawn(|| cut(Trickle(data, step), cfg, tx, &budget, &blocks));
            let got: Vec<Vec<u8>> = rx
                .iter()
                .map(|(_, p)| {
                    budget.give(p.len);
                    p.bytes().to_vec()
                })
                .collect();
            (got, h.join().expect("cutter"))
        })
    }

    #[test]
    fn same_boundaries_as_stream_cdc() {
        let cfg = StoreConfig::default();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        // Random bytes with long runs of zeros, so cuts at chunk_max happen too.
        let data: Vec<u8> = (0..11_000_000usize)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if (i / 1_000_000) % 3 == 1 {
                    0
                } else {
                    x as u8
                }
            })
            .collect();
        let want: Vec<Vec<u8>> =
            fastcdc::v2020::StreamCDC::new(&data[..], cfg.chunk_min, cfg.chunk_avg, cfg.chunk_max)
                .map(|c| c.expect("in memory").data)
                .collect();
        for step in [usize::MAX, 100_003] {
            let (got, res) = pieces(&data, &cfg, step);
            assert_eq!(got.len(), want.len());
            assert!(got == want, "boundaries differ (read step {step})");
            let (size, sha) = res.expect("no read error");
            assert_eq!(size, data.len() as u64);
            assert_eq!(sha, Id::of(&data));
        }
    }

    #[test]
    fn empty_and_tiny_streams() {
        let cfg = StoreConfig::default();
        let (got, res) = pieces(&[], &cfg, usize::MAX);
        assert!(got.is_empty());
        assert_eq!(res.expect("ok").0, 0);
        let (got, _) = pieces(b"abc", &cfg, 1);
        assert_eq!(got, vec![b"abc".to_vec()]);
    }
}
