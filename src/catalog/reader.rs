//! Reads Parquet segments straight out of the chunk store for DataFusion's Parquet scan:
//! byte ranges map onto chunks through their prefix sums, so a projection reads only the
//! chunks holding the wanted column chunks and the footer. Chunks come through the
//! store's chunk cache, and parsed footers are kept per segment (`FOOTERS`): a point
//! lookup otherwise spends most of its time decoding the footer of the segment it reads.
//! The same bytes are offered synchronously (`SegmentBytes`, a `ChunkReader`) to the
//! small-scan reader of `catalog::lookup`.

use crate::store::cache::Lru;
use crate::store::{ChunkStore, Id};
use crate::version::manifest::SegmentMeta;
use bytes::Bytes;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::ParquetFileReaderFactory;
use datafusion::parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::{
    PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader,
};
use datafusion::parquet::file::reader::{ChunkReader, Length};
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::future::BoxFuture;
use futures::FutureExt;
use std::io::Read;
use std::ops::Range;
use std::sync::{Arc, LazyLock, Mutex};

/// The chunk list of one segment, carried on its `PartitionedFile`.
pub struct SegmentChunks {
    pub store: Arc<ChunkStore>,
    /// The segment's id (the SHA-256 of its Parquet bytes).
    pub segment: Id,
    pub chunks: Vec<(Id, u32)>,
    /// The segment's entry (statistics), on the scans of generic plans, which prune
    /// segments when values are bound (`catalog::template`).
    pub meta: Option<Arc<SegmentMeta>>,
}

impl std::fmt::Debug for SegmentChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentChunks")
            .field("segment", &self.segment)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

/// Parsed segment footers, page index included, by segment id, shared by every store
/// and query of the process (a segment id names its bytes, so an entry never goes
/// stale). Weighed by `ParquetMetaData::memory_size`.
static FOOTERS: LazyLock<Lru<Id, Arc<ParquetMetaData>>> = LazyLock::new(|| Lru::new(64 << 20));

/// Arrow readings of cached footers (`ArrowReaderMetadata`: the footer's Arrow schema
/// parsed), for `catalog::lookup`; they share the footer with `FOOTERS`.
static ARROW: LazyLock<Lru<Id, ArrowReaderMetadata>> = LazyLock::new(|| Lru::new(8 << 20));

#[derive(Debug)]
pub struct SegmentReaderFactory {
    pub store: Arc<ChunkStore>,
}

impl ParquetFileReaderFactory for SegmentReaderFactory {
    fn create_reader(
        &self,
        _partition_index: usize,
        file: PartitionedFile,
        _metadata_size_hint: Option<usize>,
        _metrics: &ExecutionPlanMetricsSet,
    ) -> datafusion::error::Result<Box<dyn AsyncFileReader + Send>> {
        let chunks = file.extensions.get::<SegmentChunks>().ok_or_else(|| {
            datafusion::error::DataFusionError::Internal("segment without chunk list".into())
        })?;
        Ok(Box::new(SegmentReader {
            map: Arc::new(ChunkMap::new(&self.store, chunks)),
            last: None,
        }))
    }
}

/// Where each chunk of a segment starts: byte ranges of the segment → chunks.
struct ChunkMap {
    store: Arc<ChunkStore>,
    segment: Id,
    chunks: Vec<(Id, u32)>,
    /// Byte offset where each chunk starts, plus the total size at the end.
    starts: Vec<u64>,
}

/// The last chunk a reader decoded (footer and adjacent reads hit it again).
type Last = Option<(usize, Bytes)>;

impl ChunkMap {
    fn new(store: &Arc<ChunkStore>, c: &SegmentChunks) -> Self {
        let mut starts = Vec::with_capacity(c.chunks.len() + 1);
        let mut at = 0u64;
        for (_, len) in &c.chunks {
            starts.push(at);
            at += *len as u64;
        }
        starts.push(at);
        ChunkMap {
            store: Arc::clone(store),
            segment: c.segment,
            chunks: c.chunks.clone(),
            starts,
        }
    }

    fn size(&self) -> u64 {
        *self.starts.last().unwrap_or(&0)
    }

    /// The index of the chunk holding byte `at`.
    fn chunk_at(&self, at: u64) -> usize {
        self.starts.partition_point(|s| *s <= at).saturating_sub(1)
    }

    fn chunk(&self, i: usize, last: &mut Last) -> Result<Bytes, ParquetError> {
        if let Some((ci, b)) = last {
            if *ci == i {
                return Ok(b.clone());
            }
        }
        let b = self
            .store
            .read_chunk_cached(&self.chunks[i].0)
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        *last = Some((i, b.clone()));
        Ok(b)
    }

    fn read(&self, range: Range<u64>, last: &mut Last) -> Result<Bytes, ParquetError> {
        if range.end > self.size() || range.start > range.end {
            return Err(ParquetError::EOF(format!(
                "range {range:?} outside a segment of {} bytes",
                self.size()
            )));
        }
        let mut out = Vec::new();
        let mut i = self.chunk_at(range.start);
        while (out.len() as u64) < range.end - range.start {
            let c = self.chunk(i, last)?;
            let cs = self.starts[i];
            let from = range.start.max(cs) - cs;
            let to = range.end.min(cs + c.len() as u64) - cs;
            // A range inside one chunk (a page, mostly) is a view of the cached chunk.
            if range.start >= cs && range.end == cs + to {
                return Ok(c.slice(from as usize..to as usize));
            }
            out.reserve_exact((range.end - range.start) as usize);
            out.extend_from_slice(&c[from as usize..to as usize]);
            i += 1;
        }
        Ok(Bytes::from(out))
    }
}

struct SegmentReader {
    map: Arc<ChunkMap>,
    last: Last,
}

impl AsyncFileReader for SegmentReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes, ParquetError>> {
        let r = self.map.read(range, &mut self.last);
        async move { r }.boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, Result<Arc<ParquetMetaData>, ParquetError>> {
        // Read synchronously like every range of a segment (chunks come from the
        // store's cache or packs), with its page index whatever was asked: DataFusion's
        // opener asks without and then loads the index itself when a predicate can use
        // it — a deep copy of the footer and a read of the index on every open. A
        // reader may give the index unasked (the opener checks before loading it).
        let md = SegmentBytes::over(Arc::clone(&self.map)).parquet();
        async move { md }.boxed()
    }
}

/// A segment's bytes for the synchronous Parquet reader.
pub struct SegmentBytes {
    map: Arc<ChunkMap>,
    last: Mutex<Last>,
}

impl SegmentBytes {
    pub fn new(c: &SegmentChunks) -> Self {
        Self::over(Arc::new(ChunkMap::new(&c.store, c)))
    }

    fn over(map: Arc<ChunkMap>) -> Self {
        SegmentBytes {
            map,
            last: Mutex::new(None),
        }
    }

    /// The segment's parsed footer, page index included, from `FOOTERS` or read now.
    fn parquet(&self) -> Result<Arc<ParquetMetaData>, ParquetError> {
        let segment = self.map.segment;
        if let Some(md) = FOOTERS.get(&segment) {
            return Ok(md);
        }
        let md = Arc::new(
            ParquetMetaDataReader::new()
                .with_page_index_policy(PageIndexPolicy::Optional)
                .parse_and_finish(self)?,
        );
        FOOTERS.insert(segment, Arc::clone(&md), md.memory_size());
        Ok(md)
    }
}

/// Segment `c`'s footer (page index included) with its Arrow schema, from the caches
/// or read now.
pub fn footer(c: &SegmentChunks) -> Result<ArrowReaderMetadata, ParquetError> {
    if let Some(a) = ARROW.get(&c.segment) {
        return Ok(a);
    }
    let md = SegmentBytes::new(c).parquet()?;
    let a = ArrowReaderMetadata::try_new(md, ArrowReaderOptions::new())?;
    ARROW.insert(c.segment, a.clone(), 1024 + 256 * a.schema().fields().len());
    Ok(a)
}

impl Length for SegmentBytes {
    fn len(&self) -> u64 {
        self.map.size()
    }
}

impl ChunkReader for SegmentBytes {
    type T = ChunkRead;

    fn get_read(&self, start: u64) -> Result<ChunkRead, ParquetError> {
        Ok(ChunkRead {
            map: Arc::clone(&self.map),
            at: start,
            last: None,
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes, ParquetError> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        self.map.read(start..start + length as u64, &mut last)
    }
}

/// A segment's bytes from `at` on, read chunk by chunk.
pub struct ChunkRead {
    map: Arc<ChunkMap>,
    at: u64,
    last: Last,
}

impl Read for ChunkRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at >= self.map.size() || buf.is_empty() {
            return Ok(0);
        }
        let i = self.map.chunk_at(self.at);
        let c = self
            .map
            .chunk(i, &mut self.last)
            .map_err(std::io::Error::other)?;
        let from = (self.at - self.map.starts[i]) as usize;
        let n = buf.len().min(c.len().saturating_sub(from));
        buf[..n].copy_from_slice(&c[from..from + n]);
        self.at += n as u64;
        Ok(n)
    }
}
