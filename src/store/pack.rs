//! Pack files: write-once containers of compressed chunks (format in docs/format.md).
//! Owns the byte layout of a pack — header, entries, trailer — and its checksums.
//! A pack is never modified after `finish`; space is reclaimed only by `gc` writing a
//! new pack and deleting the old file after the metadata no longer points into it.

use super::direct::AppendFile;
use super::error::{IoContext, Result, StoreError};
use super::id::Id;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const PACK_MAGIC: &[u8; 8] = b"BAGBPACK";
pub const TAIL_MAGIC: &[u8; 8] = b"BAGBTAIL";
pub const PACK_VERSION: u32 = 1;
pub const HEADER_LEN: u64 = 16;
pub const ENTRY_HEADER_LEN: usize = 48;
pub const TRAILER_LEN: u64 = 24;
/// Largest chunk a pack entry may hold; bounds what a reader allocates for one entry.
pub const MAX_ENTRY_LEN: u32 = 64 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Codec {
    Raw = 0,
    Zstd = 1,
}

impl Codec {
    fn from_u8(b: u8) -> Option<Codec> {
        match b {
            0 => Some(Codec::Raw),
            1 => Some(Codec::Zstd),
            _ => None,
        }
    }
}

/// Where a chunk lives: the value of a chunk-index entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkLoc {
    pub pack: u64,
    /// Offset of the entry header inside the pack.
    pub offset: u64,
    pub stored_len: u32,
    pub raw_len: u32,
    pub codec: Codec,
}

impl ChunkLoc {
    pub const ENCODED_LEN: usize = 25;

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::ENCODED_LEN);
        v.extend_from_slice(&self.pack.to_le_bytes());
        v.extend_from_slice(&self.offset.to_le_bytes());
        v.extend_from_slice(&self.stored_len.to_le_bytes());
        v.extend_from_slice(&self.raw_len.to_le_bytes());
        v.push(self.codec as u8);
        v
    }

    pub fn decode(b: &[u8]) -> Option<ChunkLoc> {
        if b.len() != Self::ENCODED_LEN {
            return None;
        }
        Some(ChunkLoc {
            pack: u64::from_le_bytes(b[0..8].try_into().ok()?),
            offset: u64::from_le_bytes(b[8..16].try_into().ok()?),
            stored_len: u32::from_le_bytes(b[16..20].try_into().ok()?),
            raw_len: u32::from_le_bytes(b[20..24].try_into().ok()?),
            codec: Codec::from_u8(b[24])?,
        })
    }
}

/// The fixed 48-byte header in front of each entry's stored bytes.
#[derive(Clone, Copy, Debug)]
pub struct EntryHeader {
    pub id: Id,
    pub raw_len: u32,
    pub stored_len: u32,
    pub codec: Codec,
    pub crc: u32,
}

impl EntryHeader {
    fn encode(&self) -> [u8; ENTRY_HEADER_LEN] {
        let mut h = [0u8; ENTRY_HEADER_LEN];
        h[0..32].copy_from_slice(&self.id.0);
        h[32..36].copy_from_slice(&self.raw_len.to_le_bytes());
        h[36..40].copy_from_slice(&self.stored_len.to_le_bytes());
        h[40] = self.codec as u8;
        h[44..48].copy_from_slice(&self.crc.to_le_bytes());
        h
    }

    fn decode(h: &[u8; ENTRY_HEADER_LEN]) -> std::result::Result<EntryHeader, String> {
        let raw_len = u32::from_le_bytes(h[32..36].try_into().expect("4 bytes"));
        let stored_len = u32::from_le_bytes(h[36..40].try_into().expect("4 bytes"));
        let codec = Codec::from_u8(h[40]).ok_or_else(|| format!("unknown codec {}", h[40]))?;
        if raw_len > MAX_ENTRY_LEN || stored_len > MAX_ENTRY_LEN {
            return Err(format!(
                "entry length {raw_len}/{stored_len} exceeds the {MAX_ENTRY_LEN}-byte limit"
            ));
        }
        Ok(EntryHeader {
            id: Id(h[0..32].try_into().expect("32 bytes")),
            raw_len,
            stored_len,
            codec,
            crc: u32::from_le_bytes(h[44..48].try_into().expect("4 bytes")),
        })
    }
}

pub fn pack_path(root: &Path, pack: u64) -> PathBuf {
    let name = format!("{pack:016x}");
    root.join(&name[..2]).join(format!("{name}.pack"))
}

/// Parses a pack file name back into its id (`None` for anything else).
pub fn pack_id_from_path(path: &Path) -> Option<u64> {
    let stem = path.file_name()?.to_str()?.strip_suffix(".pack")?;
    if stem.len() != 16 {
        return None;
    }
    u64::from_str_radix(stem, 16).ok()
}

/// Fsyncs a directory so that a new name in it survives power loss.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

pub struct PackWriter {
    id: u64,
    path: PathBuf,
    file: AppendFile,
    entries: u64,
    crc: crc32fast::Hasher,
    created_dir: bool,
}

impl PackWriter {
    pub fn create(root: &Path, id: u64) -> Result<PackWriter> {
        let path = pack_path(root, id);
        let dir = path.parent().expect("pack path has a parent");
        let created_dir = !dir.exists();
        std::fs::create_dir_all(dir).at(dir)?;
        let file = AppendFile::create_new(&path).at(&path)?;
        let mut w = PackWriter {
            id,
            path,
            file,
            entries: 0,
            crc: crc32fast::Hasher::new(),
            created_dir,
        };
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(PACK_MAGIC);
        header.extend_from_slice(&PACK_VERSION.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        w.write(&header)?;
        Ok(w)
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.file.len()
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.file.write_all(b).at(&self.path)?;
        self.crc.update(b);
        Ok(())
    }

    pub fn append(
        &mut self,
        id: Id,
        raw_len: u32,
        codec: Codec,
        stored: &[u8],
    ) -> Result<ChunkLoc> {
        let offset = self.written();
        let mut crc = crc32fast::Hasher::new();
        crc.update(stored);
        let header = EntryHeader {
            id,
            raw_len,
            stored_len: stored.len() as u32,
            codec,
            crc: crc.clone().finalize(),
        };
        self.write(&header.encode())?;
        // The pack's CRC takes the entry's in (no second pass over the bytes).
        self.file.write_all(stored).at(&self.path)?;
        self.crc.combine(&crc);
        self.entries += 1;
        Ok(ChunkLoc {
            pack: self.id,
            offset,
            stored_len: stored.len() as u32,
            raw_len,
            codec,
        })
    }

    /// Writes the trailer, fsyncs the file and its directories. Only after this may the
    /// metadata point into the pack. Returns the final size.
    pub fn finish(mut self, root: &Path) -> Result<u64> {
        let crc = self.crc.clone().finalize();
        let mut t = Vec::with_capacity(TRAILER_LEN as usize);
        t.extend_from_slice(TAIL_MAGIC);
        t.extend_from_slice(&self.entries.to_le_bytes());
        t.extend_from_slice(&crc.to_le_bytes());
        t.extend_from_slice(&0u32.to_le_bytes());
        self.file.write_all(&t).at(&self.path)?;
        let size = self.file.len();
        let file = self.file.finish().at(&self.path)?;
        file.sync_all().at(&self.path)?;
        sync_dir(self.path.parent().expect("pack path has a parent"))?;
        if self.created_dir {
            sync_dir(root)?;
        }
        Ok(size)
    }

    /// Drops an unfinished pack (a failed command leaves no file behind).
    pub fn abandon(self) {
        let path = self.path.clone();
        drop(self.file);
        let _ = std::fs::remove_file(path);
    }
}

fn corrupt(path: &Path, offset: u64, what: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what: format!("pack {}", path.display()),
        detail: format!("at byte {offset}: {}", what.into()),
    }
}

/// Reads one entry at `loc`, checks its header and CRC, and returns the uncompressed bytes.
pub fn read_entry(file: &File, path: &Path, id: &Id, loc: &ChunkLoc) -> Result<Vec<u8>> {
    let mut h = [0u8; ENTRY_HEADER_LEN];
    file.read_exact_at(&mut h, loc.offset).at(path)?;
    let header = EntryHeader::decode(&h).map_err(|e| corrupt(path, loc.offset, e))?;
    if header.id != *id || header.stored_len != loc.stored_len {
        return Err(corrupt(
            path,
            loc.offset,
            format!("expected chunk {id}, found {}", header.id),
        ));
    }
    let mut stored = vec![0u8; header.stored_len as usize];
    file.read_exact_at(&mut stored, loc.offset + ENTRY_HEADER_LEN as u64)
        .at(path)?;
    if crc32fast::hash(&stored) != header.crc {
        return Err(corrupt(
            path,
            loc.offset,
            format!("CRC mismatch in chunk {id}"),
        ));
    }
    decode_stored(header.codec, stored, header.raw_len).map_err(|e| corrupt(path, loc.offset, e))
}

pub fn decode_stored(
    codec: Codec,
    stored: Vec<u8>,
    raw_len: u32,
) -> std::result::Result<Vec<u8>, String> {
    let raw = match codec {
        Codec::Raw => stored,
        Codec::Zstd => {
            // One decompression context per thread: creating one per chunk showed up in
            // query profiles.
            thread_local! {
                static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
                    const { std::cell::RefCell::new(None) };
            }
            DCTX.with(|d| {
                let mut d = d.borrow_mut();
                if d.is_none() {
                    *d = Some(zstd::bulk::Decompressor::new().map_err(|e| format!("zstd: {e}"))?);
                }
                match d.as_mut() {
                    Some(d) => d
                        .decompress(&stored, raw_len as usize)
                        .map_err(|e| format!("zstd: {e}")),
                    None => Err("zstd: no decompression context".to_string()),
                }
            })?
        }
    };
    if raw.len() != raw_len as usize {
        return Err(format!("expected {raw_len} bytes, decoded {}", raw.len()));
    }
    Ok(raw)
}

/// One entry met while scanning a pack from start to end.
pub struct ScannedEntry {
    pub offset: u64,
    pub header: EntryHeader,
    /// The decoded bytes, or why they could not be decoded.
    pub raw: std::result::Result<Vec<u8>, String>,
}

/// Walks every entry of a pack in order (for `fsck` and `gc`), checking the header,
/// each entry's CRC, the trailer's entry count and its whole-file CRC.
pub fn scan(path: &Path, f: &mut dyn FnMut(ScannedEntry) -> Result<()>) -> Result<()> {
    let file = File::open(path).at(path)?;
    let size = file.metadata().at(path)?.len();
    scan_from(
        std::io::BufReader::with_capacity(1 << 20, file),
        size,
        path,
        f,
    )
}

/// Calls `f` with the chunk id of every entry of a finished pack, reading only the entry
/// headers (a writer's rollback; `scan` checks the data too).
pub fn entry_ids(path: &Path, f: &mut dyn FnMut(Id) -> Result<()>) -> Result<()> {
    let file = File::open(path).at(path)?;
    let end = file.metadata().at(path)?.len().saturating_sub(TRAILER_LEN);
    let mut offset = HEADER_LEN;
    while end.saturating_sub(offset) >= ENTRY_HEADER_LEN as u64 {
        let mut h = [0u8; ENTRY_HEADER_LEN];
        file.read_exact_at(&mut h, offset).at(path)?;
        let eh = EntryHeader::decode(&h).map_err(|e| corrupt(path, offset, e))?;
        f(eh.id)?;
        offset += ENTRY_HEADER_LEN as u64 + eh.stored_len as u64;
    }
    Ok(())
}

/// `scan` over any reader of `size` bytes; `path` only names the pack in errors.
pub fn scan_from<R: Read>(
    mut r: R,
    size: u64,
    path: &Path,
    f: &mut dyn FnMut(ScannedEntry) -> Result<()>,
) -> Result<()> {
    if size < HEADER_LEN + TRAILER_LEN {
        return Err(corrupt(
            path,
            0,
            format!("file of {size} bytes is too short for a pack"),
        ));
    }
    let mut crc = crc32fast::Hasher::new();
    let mut header = [0u8; HEADER_LEN as usize];
    r.read_exact(&mut header).at(path)?;
    crc.update(&header);
    if &header[0..8] != PACK_MAGIC {
        return Err(corrupt(path, 0, "expected magic BAGBPACK"));
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if version != PACK_VERSION {
        return Err(corrupt(
            path,
            8,
            format!("pack format version {version}, expected {PACK_VERSION}"),
        ));
    }
    if header[12..16] != [0u8; 4] {
        return Err(corrupt(path, 12, "header reserved bytes are not zero"));
    }
    let end = size - TRAILER_LEN;
    let mut offset = HEADER_LEN;
    let mut entries = 0u64;
    while offset < end {
        if end - offset < ENTRY_HEADER_LEN as u64 {
            return Err(corrupt(path, offset, "truncated entry header"));
        }
        let mut h = [0u8; ENTRY_HEADER_LEN];
        r.read_exact(&mut h).at(path)?;
        crc.update(&h);
        let eh = EntryHeader::decode(&h).map_err(|e| corrupt(path, offset, e))?;
        if end - offset - (ENTRY_HEADER_LEN as u64) < eh.stored_len as u64 {
            return Err(corrupt(path, offset, "entry runs past the trailer"));
        }
        let mut stored = vec![0u8; eh.stored_len as usize];
        r.read_exact(&mut stored).at(path)?;
        crc.update(&stored);
        let raw = if crc32fast::hash(&stored) != eh.crc {
            Err(format!("CRC mismatch in chunk {}", eh.id))
        } else {
            decode_stored(eh.codec, stored, eh.raw_len)
        };
        f(ScannedEntry {
            offset,
            header: eh,
            raw,
        })?;
        offset += ENTRY_HEADER_LEN as u64 + eh.stored_len as u64;
        entries += 1;
    }
    let mut t = [0u8; TRAILER_LEN as usize];
    r.read_exact(&mut t).at(path)?;
    if &t[0..8] != TAIL_MAGIC {
        return Err(corrupt(path, end, "expected trailer magic BAGBTAIL"));
    }
    let count = u64::from_le_bytes(t[8..16].try_into().expect("8 bytes"));
    let want_crc = u32::from_le_bytes(t[16..20].try_into().expect("4 bytes"));
    if t[20..24] != [0u8; 4] {
        return Err(corrupt(
            path,
            end + 20,
            "trailer reserved bytes are not zero",
        ));
    }
    if count != entries {
        return Err(corrupt(
            path,
            end,
            format!("trailer counts {count} entries, found {entries}"),
        ));
    }
    if crc.finalize() != want_crc {
        return Err(corrupt(path, end, "whole-pack CRC mismatch"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every single-byte corruption and every truncation of a small pack is reported as
    /// an error or a bad entry, never a panic (the fuzz target does this at scale).
    #[test]
    fn corrupted_packs_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PackWriter::create(dir.path(), 1).unwrap();
        w.append(Id::of(b"abc"), 3, Codec::Raw, b"abc").unwrap();
        let z = zstd::bulk::compress(&[7u8; 300], 3).unwrap();
        w.append(Id::of(&[7u8; 300]), 300, Codec::Zstd, &z).unwrap();
        let path = w.path().to_path_buf();
        w.finish(dir.path()).unwrap();
        let good = std::fs::read(&path).unwrap();
        for i in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = good.clone();
                b[i] ^= flip;
                let mut bad_entries = 0;
                let r = scan_from(&b[..], b.len() as u64, &path, &mut |e| {
                    if e.raw.is_err() || Id::of(e.raw.as_ref().unwrap()) != e.header.id {
                        bad_entries += 1;
                    }
                    Ok(())
                });
                assert!(r.is_err() || bad_entries > 0, "flip at {i} went unnoticed");
            }
        }
        for n in 0..good.len() {
            assert!(scan_from(&good[..n], n as u64, &path, &mut |_| Ok(())).is_err());
        }
    }

    #[test]
    fn loc_round_trip() {
        let loc = ChunkLoc {
            pack: 7,
            offset: 99,
            stored_len: 3,
            raw_len: 5,
            codec: Codec::Zstd,
        };
        assert_eq!(ChunkLoc::decode(&loc.encode()), Some(loc));
        assert_eq!(ChunkLoc::decode(&[1, 2]), None);
    }

    #[test]
    fn write_scan_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PackWriter::create(dir.path(), 0xabc).unwrap();
        let a = b"hello hello hello hello".to_vec();
        let z = zstd::bulk::compress(&a, 3).unwrap();
        let la = w
            .append(Id::of(&a), a.len() as u32, Codec::Zstd, &z)
            .unwrap();
        let lb = w.append(Id::of(b"xy"), 2, Codec::Raw, b"xy").unwrap();
        let path = w.path().to_path_buf();
        w.finish(dir.path()).unwrap();
        assert_eq!(pack_id_from_path(&path), Some(0xabc));
        let f = File::open(&path).unwrap();
        assert_eq!(read_entry(&f, &path, &Id::of(&a), &la).unwrap(), a);
        assert_eq!(read_entry(&f, &path, &Id::of(b"xy"), &lb).unwrap(), b"xy");
        let mut n = 0;
        scan(&path, &mut |e| {
            assert!(e.raw.is_ok());
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 2);
        // A flipped byte in the stored data is caught by the entry CRC.
        let mut bytes = std::fs::read(&path).unwrap();
        let pos = (lb.offset as usize) + ENTRY_HEADER_LEN;
        bytes[pos] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let f = File::open(&path).unwrap();
        assert!(read_entry(&f, &path, &Id::of(b"xy"), &lb).is_err());
    }
}
