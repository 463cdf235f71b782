//! Reads Parquet segments straight out of the chunk store for DataFusion's Parquet scan:
//! byte ranges map onto chunks through their prefix sums, so a projection reads only the
//! chunks holding the wanted column chunks and the footer. Chunks come through the
//! store's chunk cache, and parsed footers are kept per segment (`FOOTERS`): a point
//! lookup otherwise spends most of its time decoding the footer of the segment it reads.

use crate::store::cache::Lru;
use crate::store::{ChunkStore, Id};
use crate::version::manifest::SegmentMeta;
use bytes::Bytes;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::ParquetFileReaderFactory;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::{
    PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader,
};
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::future::BoxFuture;
use futures::FutureExt;
use std::ops::Range;
use std::sync::{Arc, LazyLock};

/// The chunk list of one segment, carried on its `PartitionedFile`.
#[derive(Debug)]
pub struct SegmentChunks {
    /// The segment's id (the SHA-256 of its Parquet bytes).
    pub segment: Id,
    pub chunks: Vec<(Id, u32)>,
    /// The segment's entry (statistics), on the scans of generic plans, which prune
    /// segments when values are bound (`catalog::template`).
    pub meta: Option<Arc<SegmentMeta>>,
}

/// Parsed segment footers, page index included, by segment id, shared by every store
/// and query of the process (a segment id names its bytes, so an entry never goes
/// stale). Weighed by `ParquetMetaData::memory_size`.
static FOOTERS: LazyLock<Lru<Id, Arc<ParquetMetaData>>> = LazyLock::new(|| Lru::new(64 << 20));

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
        let mut starts = Vec::with_capacity(chunks.chunks.len() + 1);
        let mut at = 0u64;
        for (_, len) in &chunks.chunks {
            starts.push(at);
            at += *len as u64;
        }
        starts.push(at);
        Ok(Box::new(SegmentReader {
            store: Arc::clone(&self.store),
            segment: chunks.segment,
            chunks: chunks.chunks.clone(),
            starts,
            cache: None,
        }))
    }
}

struct SegmentReader {
    store: Arc<ChunkStore>,
    segment: Id,
    chunks: Vec<(Id, u32)>,
    /// Byte offset where each chunk starts, plus the total size at the end.
    starts: Vec<u64>,
    /// The last chunk decoded (footer and adjacent reads hit it again).
    cache: Option<(usize, Bytes)>,
}

impl SegmentReader {
    fn size(&self) -> u64 {
        *self.starts.last().unwrap_or(&0)
    }

    fn chunk(&mut self, i: usize) -> Result<Bytes, ParquetError> {
        if let Some((ci, b)) = &self.cache {
            if *ci == i {
                return Ok(b.clone());
            }
        }
        let b = self
            .store
            .read_chunk_cached(&self.chunks[i].0)
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        self.cache = Some((i, b.clone()));
        Ok(b)
    }

    fn read(&mut self, range: Range<u64>) -> Result<Bytes, ParquetError> {
        if range.end > self.size() || range.start > range.end {
            return Err(ParquetError::EOF(format!(
                "range {range:?} outside a segment of {} bytes",
                self.size()
            )));
        }
        let first = self
            .starts
            .partition_point(|s| *s <= range.start)
            .saturating_sub(1);
        let mut out = Vec::with_capacity((range.end - range.start) as usize);
        let mut i = first;
        while (out.len() as u64) < range.end - range.start {
            let c = self.chunk(i)?;
            let cs = self.starts[i];
            let from = range.start.max(cs) - cs;
            let to = range.end.min(cs + c.len() as u64) - cs;
            if from == 0 && to as usize == c.len() && range.start == cs && range.end == cs + to {
                return Ok(c);
            }
            out.extend_from_slice(&c[from as usize..to as usize]);
            i += 1;
        }
        Ok(Bytes::from(out))
    }
}

impl AsyncFileReader for SegmentReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes, ParquetError>> {
        let r = self.read(range);
        async move { r }.boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, Result<Arc<ParquetMetaData>, ParquetError>> {
        let size = self.size();
        let segment = self.segment;
        async move {
            if let Some(md) = FOOTERS.get(&segment) {
                return Ok(md);
            }
            // With its page index whatever was asked: DataFusion's opener asks without
            // and then loads the index itself when a predicate can use it — a deep copy
            // of the footer and a read of the index on every open. A reader may give
            // the index unasked (the opener checks before loading it).
            let md = Arc::new(
                ParquetMetaDataReader::new()
                    .with_page_index_policy(PageIndexPolicy::Optional)
                    .load_and_finish(self, size)
                    .await?,
            );
            FOOTERS.insert(segment, Arc::clone(&md), md.memory_size());
            Ok(md)
        }
        .boxed()
    }
}
