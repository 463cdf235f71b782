//! Blob columns: a binary column of a segment whose values are tagged, so a large value
//! (a camera image, a point cloud, a whole message) can be stored as a reference to the
//! byte range of the recording it was read from instead of as a second copy
//! (docs/format.md §4 "Blob columns"). Owns the value encoding and turning tagged
//! columns back into plain binary; never decides which columns are blob columns (the
//! writers in `ingest/` do) and never sees DataFusion plans.

use super::error::{Result, VersionError};
use super::node;
use crate::store::cache::Lru;
use crate::store::{ChunkStore, Id};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryBuilder, RecordBatch, StructArray,
};
use datafusion::arrow::datatypes::{DataType, Field};
use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, LazyLock};

/// First byte of a value held in the segment: the value's bytes follow.
pub const TAG_INLINE: u8 = 0;
/// First byte of a reference: file chunk-list id (32), offset u64, length u32 (LE).
pub const TAG_REF: u8 = 1;
/// Length of an encoded reference.
pub const REF_LEN: usize = 1 + 32 + 8 + 4;
/// Values at least this long are written as references when their bytes lie in a
/// stored file (a writer's choice; readers take either form at any length).
pub const MIN_REF: usize = 4096;
/// Resolved bytes a reader hands out per batch (a batch of camera images is cut into
/// batches of about this size, whatever the segment's row groups hold).
pub const BATCH_BYTES: u64 = 16 << 20;

/// A column (top-level name), then the struct fields below it down to the blob column.
pub type BlobPath = Vec<String>;

/// One decoded value of a blob column.
#[derive(Debug, PartialEq)]
pub enum Value<'a> {
    Inline(&'a [u8]),
    /// `len` bytes at `offset` of the file whose chunk list is `file`.
    Ref {
        file: Id,
        offset: u64,
        len: u32,
    },
}

fn corrupt(detail: impl Into<String>) -> VersionError {
    VersionError::Table {
        table: "<blob column>".into(),
        detail: detail.into(),
    }
}

/// Decodes one stored value.
pub fn parse(v: &[u8]) -> Result<Value<'_>> {
    match v.split_first() {
        Some((&TAG_INLINE, rest)) => Ok(Value::Inline(rest)),
        Some((&TAG_REF, rest)) if rest.len() == REF_LEN - 1 => Ok(Value::Ref {
            file: Id(rest[..32].try_into().expect("32 bytes")),
            offset: u64::from_le_bytes(rest[32..40].try_into().expect("8 bytes")),
            len: u32::from_le_bytes(rest[40..44].try_into().expect("4 bytes")),
        }),
        Some((&TAG_REF, rest)) => Err(corrupt(format!(
            "a blob reference of {} bytes, found {}",
            REF_LEN,
            rest.len() + 1
        ))),
        Some((t, _)) => Err(corrupt(format!("a blob value tag 0 or 1, found {t}"))),
        None => Err(corrupt("a blob value tag, found an empty value")),
    }
}

/// Appends `bytes` as an inline value.
pub fn append_inline(b: &mut BinaryBuilder, bytes: &[u8]) {
    b.write_all(&[TAG_INLINE]).expect("writing into memory");
    b.write_all(bytes).expect("writing into memory");
    b.append_value(b"");
}

/// Appends a reference to `len` bytes at `offset` of the file whose chunk list is `file`.
pub fn append_ref(b: &mut BinaryBuilder, file: &Id, offset: u64, len: u32) {
    let mut v = [0u8; REF_LEN];
    v[0] = TAG_REF;
    v[1..33].copy_from_slice(&file.0);
    v[33..41].copy_from_slice(&offset.to_le_bytes());
    v[41..45].copy_from_slice(&len.to_le_bytes());
    b.append_value(v);
}

/// Appends a value of a recording: a reference when it is long enough and its bytes
/// lie at `offset` of the stored file `file`, else inline. Returns whether it is a
/// reference.
pub fn append(b: &mut BinaryBuilder, bytes: &[u8], at: Option<(&Id, u64)>) -> bool {
    match at {
        Some((file, offset)) if bytes.len() >= MIN_REF && bytes.len() <= u32::MAX as usize => {
            append_ref(b, file, offset, bytes.len() as u32);
            true
        }
        _ => {
            append_inline(b, bytes);
            false
        }
    }
}

/// Adds the files the values of a tagged array refer to to `files`.
pub fn referenced_files(a: &BinaryArray, files: &mut BTreeSet<Id>) -> Result<()> {
    for v in a.iter().flatten() {
        if let Value::Ref { file, .. } = parse(v)? {
            files.insert(file);
        }
    }
    Ok(())
}

/// A plain array from a tagged one whose values are all inline.
pub fn untag(a: &BinaryArray) -> Result<BinaryArray> {
    let mut b = BinaryBuilder::with_capacity(a.len(), a.value_data().len());
    for v in a.iter() {
        match v.map(parse).transpose()? {
            None => b.append_null(),
            Some(Value::Inline(x)) => b.append_value(x),
            Some(Value::Ref { .. }) => return Err(corrupt("a reference where none was expected")),
        }
    }
    Ok(b.finish())
}

/// A tagged array from a plain one: every value inline.
pub fn tag(a: &BinaryArray) -> BinaryArray {
    let mut b = BinaryBuilder::with_capacity(a.len(), a.value_data().len() + a.len());
    for v in a.iter() {
        match v {
            None => b.append_null(),
            Some(x) => append_inline(&mut b, x),
        }
    }
    b.finish()
}

/// The array at `path` below `col` (through struct columns), if it is there.
pub fn at_path(col: &ArrayRef, path: &[String]) -> Option<ArrayRef> {
    let mut a = Arc::clone(col);
    for p in path {
        a = Arc::clone(a.as_struct_opt()?.column_by_name(p)?);
    }
    Some(a)
}

/// `col` with the binary array at `path` replaced by `f` of it (struct columns above it
/// are rebuilt around the new child, keeping their nulls).
pub fn map_path(
    col: &ArrayRef,
    path: &[String],
    f: &mut dyn FnMut(&BinaryArray) -> Result<BinaryArray>,
) -> Result<ArrayRef> {
    let Some((first, rest)) = path.split_first() else {
        let b = col
            .as_binary_opt::<i32>()
            .ok_or_else(|| corrupt(format!("a binary blob column, found {}", col.data_type())))?;
        return Ok(Arc::new(f(b)?));
    };
    let s = col
        .as_struct_opt()
        .ok_or_else(|| corrupt(format!("a struct above blob field {first}")))?;
    let DataType::Struct(fields) = s.data_type() else {
        unreachable!("a struct array has a struct type")
    };
    let mut cols: Vec<ArrayRef> = s.columns().to_vec();
    let i = fields
        .iter()
        .position(|fl| fl.name() == first)
        .ok_or_else(|| corrupt(format!("blob field {first} missing from its struct")))?;
    cols[i] = map_path(&cols[i], rest, f)?;
    let new_fields: Vec<Field> = fields
        .iter()
        .zip(&cols)
        .map(|(fl, c)| fl.as_ref().clone().with_data_type(c.data_type().clone()))
        .collect();
    let out = StructArray::try_new(new_fields.into(), cols, s.nulls().cloned())
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(Arc::new(out))
}

/// The top-level column a path starts at, in `batch`.
fn column_of<'b>(batch: &'b RecordBatch, path: &[String]) -> Option<&'b ArrayRef> {
    batch.column_by_name(path.first()?)
}

/// `batch` with the column at every path of `paths` replaced by `f` of it (binary stays
/// binary, so the batch keeps its schema).
pub fn map_batch(
    batch: &RecordBatch,
    paths: &[BlobPath],
    f: &mut dyn FnMut(&BinaryArray) -> Result<BinaryArray>,
) -> Result<RecordBatch> {
    let schema = batch.schema();
    let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
    for p in paths {
        let Ok(i) = schema.index_of(&p[0]) else {
            continue;
        };
        cols[i] = map_path(&cols[i], &p[1..], f)?;
    }
    RecordBatch::try_new(schema, cols).map_err(|e| corrupt(e.to_string()))
}

/// Length of the value a stored value stands for.
fn resolved_len(v: &[u8]) -> Result<u64> {
    Ok(match parse(v)? {
        Value::Inline(x) => x.len() as u64,
        Value::Ref { len, .. } => len as u64,
    })
}

/// A stored file's chunks and where each starts (the last entry is the file's size).
struct FileMap {
    chunks: Vec<Id>,
    starts: Vec<u64>,
}

/// File chunk maps by chunk-list id, shared by every store of the process (the id names
/// its content, so an entry never goes stale). 40 bytes a chunk.
static FILES: LazyLock<Lru<Id, Arc<FileMap>>> = LazyLock::new(|| Lru::new(64 << 20));

/// Turns tagged columns into plain binary, reading referenced bytes from the store.
pub struct Resolver<'s> {
    store: &'s ChunkStore,
    /// Whether chunks go through the store's chunk cache (queries come back to the
    /// same frames; an export reads every one once and would only push out the rest).
    cached: bool,
    /// The file map and chunk used last (a batch's references are usually in order).
    map: Option<(Id, Arc<FileMap>)>,
    chunk: Option<(Id, bytes::Bytes)>,
}

impl<'s> Resolver<'s> {
    /// A resolver for queries: chunks through the store's chunk cache.
    pub fn new(store: &'s ChunkStore) -> Self {
        Resolver {
            store,
            cached: true,
            map: None,
            chunk: None,
        }
    }

    fn file_map(&mut self, file: &Id) -> Result<Arc<FileMap>> {
        if let Some((id, m)) = &self.map {
            if id == file {
                return Ok(Arc::clone(m));
            }
        }
        let m = match FILES.get(file) {
            Some(m) => m,
            None => {
                let list = node::get_chunks(self.store.kv(), file)?;
                let mut starts = Vec::with_capacity(list.len() + 1);
                let mut at = 0u64;
                for (_, len) in &list {
                    starts.push(at);
                    at += *len as u64;
                }
                starts.push(at);
                let m = Arc::new(FileMap {
                    chunks: list.into_iter().map(|c| c.0).collect(),
                    starts,
                });
                FILES.insert(*file, Arc::clone(&m), 40 * m.chunks.len() + 64);
                m
            }
        };
        self.map = Some((*file, Arc::clone(&m)));
        Ok(m)
    }

    fn chunk(&mut self, id: &Id) -> Result<bytes::Bytes> {
        if let Some((c, b)) = &self.chunk {
            if c == id {
                return Ok(b.clone());
            }
        }
        let b = match self.cached {
            true => self.store.read_chunk_cached(id)?,
            false => bytes::Bytes::from(self.store.read_chunk(id)?),
        };
        self.chunk = Some((*id, b.clone()));
        Ok(b)
    }

    /// Copies `len` bytes at `offset` of `file` to `out`.
    fn read(&mut self, file: &Id, offset: u64, len: u32, out: &mut BinaryBuilder) -> Result<()> {
        let m = self.file_map(file)?;
        let size = *m.starts.last().unwrap_or(&0);
        let end = offset
            .checked_add(len as u64)
            .filter(|e| *e <= size)
            .ok_or_else(|| {
                corrupt(format!(
                    "a reference to bytes {offset}..+{len} of a file of {size} bytes"
                ))
            })?;
        let mut i = m.starts.partition_point(|s| *s <= offset).saturating_sub(1);
        let mut at = offset;
        while at < end {
            let (start, next) = (m.starts[i], m.starts[i + 1]);
            let c = self.chunk(&m.chunks[i])?;
            if c.len() as u64 != next - start {
                return Err(corrupt(format!(
                    "chunk {} of {} bytes where its file's chunk list says {}",
                    m.chunks[i],
                    c.len(),
                    next - start
                )));
            }
            let from = (at - start) as usize;
            let to = (end.min(next) - start) as usize;
            out.write_all(&c[from..to]).expect("writing into memory");
            at = next;
            i += 1;
        }
        Ok(())
    }

    /// A plain array holding the bytes every value of `a` stands for.
    pub fn resolve(&mut self, a: &BinaryArray) -> Result<BinaryArray> {
        let mut total = 0u64;
        for v in a.iter().flatten() {
            total += resolved_len(v)?;
        }
        if total > i32::MAX as u64 {
            return Err(corrupt(format!(
                "{total} bytes of blob values in one batch (at most 2 GiB)"
            )));
        }
        let mut b = BinaryBuilder::with_capacity(a.len(), total as usize);
        for v in a.iter() {
            match v.map(parse).transpose()? {
                None => b.append_null(),
                Some(Value::Inline(x)) => b.append_value(x),
                Some(Value::Ref { file, offset, len }) => {
                    self.read(&file, offset, len, &mut b)?;
                    b.append_value(b"");
                }
            }
        }
        Ok(b.finish())
    }

    /// `batch` with every column at `paths` resolved (cut it with `pieces` first).
    pub fn resolve_rows(&mut self, batch: &RecordBatch, paths: &[BlobPath]) -> Result<RecordBatch> {
        map_batch(batch, paths, &mut |a| self.resolve(a))
    }
}

/// Row ranges of `batch` whose resolved blob values hold at most about `max_bytes` (at
/// least one row each): a row group of references can stand for gigabytes, so readers
/// resolve one piece at a time.
pub fn pieces(
    batch: &RecordBatch,
    paths: &[BlobPath],
    max_bytes: u64,
) -> Result<Vec<std::ops::Range<usize>>> {
    if paths.is_empty() {
        return Ok(std::iter::once(0..batch.num_rows()).collect());
    }
    let mut sizes = vec![0u64; batch.num_rows()];
    for p in paths {
        let Some(a) = column_of(batch, p).and_then(|c| at_path(c, &p[1..])) else {
            continue;
        };
        let a = a
            .as_binary_opt::<i32>()
            .ok_or_else(|| corrupt(format!("a binary blob column, found {}", a.data_type())))?;
        for (s, v) in sizes.iter_mut().zip(a.iter()) {
            if let Some(v) = v {
                *s += resolved_len(v)?;
            }
        }
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start < sizes.len() {
        let mut end = start;
        let mut bytes = 0u64;
        while end < sizes.len() && (end == start || bytes + sizes[end] <= max_bytes) {
            bytes += sizes[end];
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    Ok(out)
}

/// The resolved pieces of `batch`, each resolved when it is asked for; for readers of
/// every row (exports): chunks are read without the chunk cache.
pub fn resolved<'s>(
    store: &'s ChunkStore,
    batch: RecordBatch,
    paths: &'s [BlobPath],
    max_bytes: u64,
) -> Result<impl Iterator<Item = Result<RecordBatch>> + 's> {
    let ranges = pieces(&batch, paths, max_bytes)?;
    let mut resolver = Resolver {
        cached: false,
        ..Resolver::new(store)
    };
    Ok(ranges
        .into_iter()
        .map(move |r| resolver.resolve_rows(&batch.slice(r.start, r.len()), paths)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let file = Id::of(b"file");
        let mut b = BinaryBuilder::new();
        append_inline(&mut b, b"abc");
        append_ref(&mut b, &file, 7, 9000);
        b.append_null();
        append(&mut b, &[1u8; 10], Some((&file, 3)));
        append(&mut b, &[1u8; MIN_REF], Some((&file, 3)));
        let a = b.finish();
        assert_eq!(parse(a.value(0)).unwrap(), Value::Inline(b"abc"));
        assert_eq!(
            parse(a.value(1)).unwrap(),
            Value::Ref {
                file,
                offset: 7,
                len: 9000
            }
        );
        assert!(a.is_null(2));
        assert_eq!(parse(a.value(3)).unwrap(), Value::Inline(&[1u8; 10]));
        assert!(
            matches!(parse(a.value(4)).unwrap(), Value::Ref { len, .. } if len as usize == MIN_REF)
        );
        let mut files = BTreeSet::new();
        referenced_files(&a, &mut files).unwrap();
        assert_eq!(files.into_iter().collect::<Vec<_>>(), vec![file]);
    }

    #[test]
    fn references_resolve_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::store::StoreConfig {
            chunk_min: 1024,
            chunk_avg: 4096,
            chunk_max: 16384,
            ..Default::default()
        };
        let store = ChunkStore::init(dir.path(), cfg).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut w = store.writer();
        let stored = w.put_bytes(&data).unwrap();
        w.finish().unwrap();
        let mut nodes = node::NodeWriter::default();
        let file = nodes.put_chunks(store.kv(), &stored.chunks).unwrap();
        store.publish(nodes.batch).unwrap();
        w.keep();
        assert!(stored.chunks.len() > 10);
        let mut b = BinaryBuilder::new();
        let ranges = [(0u64, 5000u32), (4090, 70_000), (299_000, 1000), (17, 0)];
        for (o, l) in ranges {
            append_ref(&mut b, &file, o, l);
        }
        append_inline(&mut b, b"inline");
        b.append_null();
        let tagged = b.finish();
        let mut r = Resolver::new(&store);
        let plain = r.resolve(&tagged).unwrap();
        for (i, (o, l)) in ranges.iter().enumerate() {
            assert_eq!(
                plain.value(i),
                &data[*o as usize..(*o + *l as u64) as usize]
            );
        }
        assert_eq!(plain.value(4), b"inline");
        assert!(plain.is_null(5));
        // A batch of them is cut where its bytes pass the limit.
        let batch = RecordBatch::try_from_iter([("data", Arc::new(tagged) as ArrayRef)]).unwrap();
        let path = vec![vec!["data".to_string()]];
        let ranges = pieces(&batch, &path, 60_000).unwrap();
        assert_eq!(ranges, [0..1, 1..2, 2..6]);
        let got: Vec<RecordBatch> = resolved(&store, batch, &path, 60_000)
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        let rows: Vec<usize> = got.iter().map(|p| p.num_rows()).collect();
        assert_eq!(rows, [1, 1, 4]);
        assert_eq!(
            got[1].column(0).as_binary::<i32>().value(0),
            &data[4090..74_090]
        );
        // Past the end of the file, or to a file that is not stored: errors.
        let mut b = BinaryBuilder::new();
        append_ref(&mut b, &file, 299_999, 2);
        assert!(r.resolve(&b.finish()).is_err());
        let mut b = BinaryBuilder::new();
        append_ref(&mut b, &Id::of(b"nowhere"), 0, 1);
        assert!(r.resolve(&b.finish()).is_err());
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(parse(b"").is_err());
        assert!(parse(&[2, 0]).is_err());
        assert!(parse(&[TAG_REF, 0, 0]).is_err());
    }

    #[test]
    fn tag_and_untag() {
        let plain = BinaryArray::from(vec![Some(&b"x"[..]), None, Some(&b""[..])]);
        let t = tag(&plain);
        assert_eq!(t.value(0), &[TAG_INLINE, b'x']);
        assert_eq!(untag(&t).unwrap(), plain);
    }

    #[test]
    fn paths_through_structs() {
        let inner = Arc::new(BinaryArray::from(vec![Some(&b"ab"[..]), None])) as ArrayRef;
        let s = StructArray::try_new(
            vec![Field::new("data", DataType::Binary, true)].into(),
            vec![inner],
            None,
        )
        .unwrap();
        let col: ArrayRef = Arc::new(s);
        let path = vec!["data".to_string()];
        let out = map_path(&col, &path, &mut |a| Ok(tag(a))).unwrap();
        let got = at_path(&out, &path).unwrap();
        assert_eq!(got.as_binary::<i32>().value(0), &[TAG_INLINE, b'a', b'b']);
        assert!(got.is_null(1));
    }
}
