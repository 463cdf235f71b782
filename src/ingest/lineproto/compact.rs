//! Compaction of measurement tables: every write adds one segment per measurement it
//! touches, so a long-running writer leaves many small segments (slower queries, a
//! bigger table node to rewrite on every publish). Size-tiered, as LSM trees do:
//! segments under `TARGET_ROWS` fall in tiers by row count (one tier per factor of
//! `FANIN`); when a tier holds `FANIN` segments its smallest are merged into one,
//! sorted by time — all of them, or as many as reach `TARGET_ROWS` together (the
//! result split at `TARGET_ROWS`), so a merge's memory is bounded whatever the tier. A row is rewritten about log_FANIN(TARGET / write
//! size) times; a tier never holds more than `FANIN - 1` segments after a write.
//! Rows are only moved: no point is added, dropped or changed, so the table's rows
//! (and `version_diff` by key) are the same before and after.

use super::write::{is_measurement, read_stored, segment_times, write_batch};
use crate::store::ChunkWriter;
use crate::version::manifest::SegmentMeta;
use crate::version::{segment, VersionError, WorkingEdit};
use datafusion::arrow::array::{new_null_array, ArrayRef, RecordBatch};
use datafusion::arrow::compute;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use std::sync::Arc;

/// Segments of at least this many rows are left alone (as ingest cuts segments).
pub const TARGET_ROWS: u64 = 256 * 1024;
/// Segments merged at once, and the size factor between tiers.
pub const FANIN: usize = 8;
/// Rows of the smallest tier's upper bound.
const TIER0_ROWS: u64 = 4096;

/// The tier of a segment of `rows` rows (`None`: big enough to be left alone).
fn tier(rows: u64) -> Option<u32> {
    if rows >= TARGET_ROWS {
        return None;
    }
    let (mut t, mut bound) = (0u32, TIER0_ROWS);
    while rows >= bound {
        t += 1;
        bound = bound.saturating_mul(FANIN as u64);
    }
    Some(t)
}

/// The positions (in `segments`) to merge: in the smallest tier that is full, its
/// smallest segments until they reach `TARGET_ROWS` together (so a merge holds at most
/// about two segments' worth of rows in memory, whatever the tier).
fn full_tier(segments: &[SegmentMeta]) -> Option<Vec<usize>> {
    let mut tiers: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
    for (i, s) in segments.iter().enumerate() {
        if let Some(t) = tier(s.rows) {
            tiers.entry(t).or_default().push(i);
        }
    }
    let mut full = tiers.into_values().find(|v| v.len() >= FANIN)?;
    full.sort_by_key(|&i| segments[i].rows);
    let mut rows = 0u64;
    let take = full
        .iter()
        .take_while(|&&i| {
            let under = rows < TARGET_ROWS;
            rows += segments[i].rows;
            under
        })
        .count();
    full.truncate(take.max(2));
    full.sort_unstable();
    Some(full)
}

/// Merges full tiers of `table`'s segments until none is full; returns the number of
/// segments merged away (0 when nothing was due, or `table` is not a measurement).
pub fn compact(
    edit: &mut WorkingEdit<'_>,
    chunks: &mut ChunkWriter<'_>,
    table: &str,
) -> Result<usize, crate::Error> {
    let mut merged = 0;
    loop {
        let Some(node) = edit.root.table(table)?.cloned() else {
            return Ok(merged);
        };
        if !is_measurement(&node) {
            return Ok(merged);
        }
        let Some(picked) = full_tier(&node.segments) else {
            return Ok(merged);
        };
        let err = |e: &dyn std::fmt::Display| VersionError::Table {
            table: table.into(),
            detail: format!("compaction: {e}"),
        };
        // The merged segment has the columns any of its inputs has, typed as the table.
        let table_schema = segment::decode_schema(table, &node.schema)?;
        let fields: Vec<_> = table_schema
            .fields()
            .iter()
            .filter(|f| {
                picked
                    .iter()
                    .any(|&i| node.segments[i].stats.contains_key(f.name()))
            })
            .cloned()
            .collect();
        let schema: SchemaRef = Arc::new(Schema::new(fields));
        let mut batches = Vec::with_capacity(picked.len());
        for &i in &picked {
            let b = read_stored(edit, chunks, table, &node, &node.segments[i])?;
            let cols = schema
                .fields()
                .iter()
                .map(|f| match b.column_by_name(f.name()) {
                    Some(c) if c.data_type() == f.data_type() => Ok(Arc::clone(c)),
                    Some(c) => compute::cast(c, f.data_type()),
                    None => Ok(new_null_array(f.data_type(), b.num_rows())),
                })
                .collect::<Result<Vec<ArrayRef>, _>>()
                .map_err(|e| err(&e))?;
            batches.push(RecordBatch::try_new(Arc::clone(&schema), cols).map_err(|e| err(&e))?);
        }
        let all = compute::concat_batches(&schema, &batches).map_err(|e| err(&e))?;
        drop(batches);
        let time = all
            .column_by_name("time")
            .ok_or_else(|| err(&"no time column"))?;
        let order = compute::sort_to_indices(time, None, None).map_err(|e| err(&e))?;
        let all = compute::take_record_batch(&all, &order).map_err(|e| err(&e))?;
        let mut out: Vec<SegmentMeta> = Vec::new();
        let mut at = 0usize;
        while at < all.num_rows() {
            let n = (all.num_rows() - at).min(TARGET_ROWS as usize);
            out.push(write_batch(edit, chunks, table, all.slice(at, n))?);
            at += n;
        }
        let mut segments: Vec<SegmentMeta> = node
            .segments
            .iter()
            .enumerate()
            .filter(|(i, _)| !picked.contains(i))
            .map(|(_, s)| s.clone())
            .collect();
        // Keep the table's segments roughly in time order, as writes append them.
        let first = segments
            .iter()
            .position(|s| segment_times(s) > out.first().and_then(segment_times))
            .unwrap_or(segments.len());
        segments.splice(first..first, out);
        merged += picked.len();
        let mut node = node;
        node.segments = segments;
        edit.root.put_table(table, node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(rows: u64) -> SegmentMeta {
        SegmentMeta {
            id: crate::store::Id::of(&rows.to_le_bytes()),
            chunks: crate::store::Id::of(b"c"),
            rows,
            bytes: 0,
            stats: Default::default(),
            blobs: vec![],
            refs: vec![],
        }
    }

    #[test]
    fn picks_a_full_tier_up_to_the_target() {
        let small: Vec<SegmentMeta> = (0..FANIN as u64).map(|i| seg(100 + i)).collect();
        assert_eq!(full_tier(&small), Some((0..FANIN).collect()));
        assert_eq!(full_tier(&small[1..]), None);
        // Eight segments of 100,000 rows: the three smallest reach the target.
        let mut big: Vec<SegmentMeta> = (0..FANIN as u64).map(|i| seg(100_000 + i)).collect();
        big.insert(0, seg(TARGET_ROWS));
        assert_eq!(full_tier(&big), Some(vec![1, 2, 3]));
    }

    #[test]
    fn tiers() {
        assert_eq!(tier(0), Some(0));
        assert_eq!(tier(4095), Some(0));
        assert_eq!(tier(4096), Some(1));
        assert_eq!(tier(32767), Some(1));
        assert_eq!(tier(32768), Some(2));
        assert_eq!(tier(TARGET_ROWS - 1), Some(2));
        assert_eq!(tier(TARGET_ROWS), None);
        assert_eq!(tier(u64::MAX), None);
    }
}
