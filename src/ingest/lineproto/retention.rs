//! Retention rules for measurement tables: `retention/<measurement>` → the duration
//! (ns, decimal text) points are kept, in the metadata store, for every branch. Trimming
//! edits a branch's working set only: versions already made keep their rows until they
//! are no longer referenced and `gc` runs.
//!
//! Two strengths: `exact` (on `retention set` / `retention apply`) removes every row
//! older than the cutoff, rewriting segments that straddle it; the cheap trim after each
//! write drops only segments that are wholly older (no segment is read), as InfluxDB
//! drops whole shard groups.

use super::write::{is_measurement, read_stored, segment_times, write_batch};
use crate::store::{Batch, ChunkWriter, MetaKv};
use crate::version::{VersionError, WorkingEdit};
use datafusion::arrow::array::{AsArray, BooleanArray};
use datafusion::arrow::datatypes::TimestampNanosecondType;

const PREFIX: &str = "retention/";

/// `30d`, `12h`, `90m`, `45s`, `2w` → nanoseconds; `inf` / `0` → None (keep forever).
pub fn parse_duration(s: &str) -> Result<Option<i64>, String> {
    let s = s.trim();
    if s == "inf" || s == "0" {
        return Ok(None);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("duration {s:?}: expected a number and a unit, like 30d"))?;
    let unit_ns: i64 = match unit {
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        "w" => 604_800_000_000_000,
        _ => return Err(format!("duration {s:?}: unit must be s, m, h, d or w")),
    };
    n.checked_mul(unit_ns)
        .filter(|d| *d > 0)
        .map(Some)
        .ok_or_else(|| format!("duration {s:?} is out of range"))
}

/// The batch that sets (or, with None, removes) the rule of `measurement`.
pub fn set(measurement: &str, keep: Option<i64>) -> Batch {
    let mut b = Batch::default();
    let key = format!("{PREFIX}{measurement}");
    match keep {
        Some(ns) => b.put(key, ns.to_string()),
        None => b.delete(key),
    }
    b
}

/// Every rule: (measurement, nanoseconds kept), by name.
pub fn list(kv: &dyn MetaKv) -> crate::store::Result<Vec<(String, i64)>> {
    let mut out = Vec::new();
    for (k, v) in kv.scan_prefix(PREFIX.as_bytes())? {
        let name = String::from_utf8_lossy(&k[PREFIX.len()..]).to_string();
        if let Some(ns) = std::str::from_utf8(&v).ok().and_then(|v| v.parse().ok()) {
            out.push((name, ns));
        }
    }
    Ok(out)
}

/// Removes rows of `table` older than `cutoff` (ns) from the working set; returns the
/// rows removed. Without `exact`, only segments wholly older go.
pub fn trim(
    edit: &mut WorkingEdit<'_>,
    chunks: &mut ChunkWriter<'_>,
    table: &str,
    cutoff: i64,
    exact: bool,
) -> Result<u64, crate::Error> {
    let Some(node) = edit.root.table(table)?.cloned() else {
        return Ok(0);
    };
    if !is_measurement(&node) {
        return Ok(0);
    }
    let mut removed = 0u64;
    let mut segments = Vec::with_capacity(node.segments.len());
    for seg in &node.segments {
        match segment_times(seg) {
            Some((_, hi)) if hi < cutoff => removed += seg.rows,
            Some((lo, _)) if lo >= cutoff || !exact => segments.push(seg.clone()),
            _ if !exact => segments.push(seg.clone()),
            _ => {
                let b = read_stored(edit, chunks, table, &node, seg)?;
                let Some(time) = b
                    .column_by_name("time")
                    .and_then(|t| t.as_primitive_opt::<TimestampNanosecondType>())
                else {
                    segments.push(seg.clone());
                    continue;
                };
                let keep = BooleanArray::from_iter(time.iter().map(|t| Some(t >= Some(cutoff))));
                let kept =
                    datafusion::arrow::compute::filter_record_batch(&b, &keep).map_err(|e| {
                        VersionError::Table {
                            table: table.into(),
                            detail: e.to_string(),
                        }
                    })?;
                removed += (b.num_rows() - kept.num_rows()) as u64;
                if kept.num_rows() == b.num_rows() {
                    segments.push(seg.clone());
                } else if kept.num_rows() > 0 {
                    segments.push(write_batch(edit, chunks, table, kept)?);
                }
            }
        }
    }
    if removed > 0 {
        let mut node = node;
        node.segments = segments;
        if node.segments.is_empty() {
            edit.root.drop_table(table);
        } else {
            edit.root.put_table(table, node);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d"), Ok(Some(30 * 86_400_000_000_000)));
        assert_eq!(parse_duration("90m"), Ok(Some(90 * 60_000_000_000)));
        assert_eq!(parse_duration("inf"), Ok(None));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("30y").is_err());
        assert!(parse_duration("999999999999w").is_err());
    }
}
