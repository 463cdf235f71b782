//! Downsampling rules: `downsample/<target>` → JSON `{"source", "every_ns"}` in the
//! metadata store, for every branch. The target is an ordinary measurement table with
//! one point per source tag set and time bucket (`date_bin(every, time)`, buckets from
//! the Unix epoch): `count` (points in the bucket) and `mean_<f>`, `min_<f>`, `max_<f>`
//! (float) for every numeric field `f` — the names InfluxQL's `mean(*)` gives.
//!
//! Maintained incrementally: a write into the source recomputes only the buckets its
//! points fall in (reading the source segments overlapping them) and overwrites those
//! rollup points. Adding a rule backfills every bucket the source has.

use super::parse::FieldValue;
use super::write::{
    is_measurement, read_stored, segment_times, write_points, TagColumns, TagSet, RESERVED,
};
use crate::store::{Batch, ChunkWriter, MetaKv};
use crate::version::{segment, WorkingEdit};
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, TimestampNanosecondType};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

const PREFIX: &str = "downsample/";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Rule {
    #[serde(skip)]
    pub target: String,
    pub source: String,
    pub every_ns: i64,
}

/// The batch that records `rule`; refused when it would feed itself or a reserved name.
pub fn add(kv: &dyn MetaKv, rule: &Rule) -> Result<Batch, String> {
    if rule.source == rule.target {
        return Err(format!(
            "a rollup of {} cannot be written into itself",
            rule.source
        ));
    }
    if RESERVED.contains(&rule.target.as_str()) {
        return Err(format!("{} is the name of a bagbase table", rule.target));
    }
    if list(kv)
        .map_err(|e| e.to_string())?
        .iter()
        .any(|r| r.source == rule.target)
    {
        return Err(format!("{} is the source of another rule", rule.target));
    }
    if rule.every_ns <= 0 {
        return Err("the bucket width must be positive".into());
    }
    let mut b = Batch::default();
    b.put(
        format!("{PREFIX}{}", rule.target),
        serde_json::to_vec(rule).expect("rule serializes"),
    );
    Ok(b)
}

pub fn remove(target: &str) -> Batch {
    let mut b = Batch::default();
    b.delete(format!("{PREFIX}{target}"));
    b
}

/// Every rule, by target name.
pub fn list(kv: &dyn MetaKv) -> crate::store::Result<Vec<Rule>> {
    let mut out = Vec::new();
    for (k, v) in kv.scan_prefix(PREFIX.as_bytes())? {
        if let Ok(mut r) = serde_json::from_slice::<Rule>(&v) {
            r.target = String::from_utf8_lossy(&k[PREFIX.len()..]).to_string();
            out.push(r);
        }
    }
    Ok(out)
}

/// Per numeric field: count, sum, min, max.
#[derive(Default)]
struct Acc {
    points: i64,
    fields: BTreeMap<String, (i64, f64, f64, f64)>,
}

/// Recomputes the buckets of `rule` that hold times `lo..=hi` from the source rows in
/// the working set and writes them into the target. Returns the rollup points written.
pub fn refresh(
    edit: &mut WorkingEdit<'_>,
    chunks: &mut ChunkWriter<'_>,
    rule: &Rule,
    lo: i64,
    hi: i64,
) -> Result<u64, crate::Error> {
    if lo > hi {
        return Ok(0);
    }
    let every = rule.every_ns;
    let start = lo.div_euclid(every).saturating_mul(every);
    let end = hi
        .div_euclid(every)
        .saturating_mul(every)
        .saturating_add(every);
    let Some(node) = edit.root.table(&rule.source)?.cloned() else {
        return Ok(0);
    };
    if !is_measurement(&node) {
        return Ok(0);
    }
    let schema = segment::decode_schema(&rule.source, &node.schema)?;
    let tags: Vec<String> = node.key.iter().filter(|k| *k != "time").cloned().collect();
    let mut buckets: HashMap<(TagSet, i64), Acc> = HashMap::new();
    for seg in &node.segments {
        if segment_times(seg).is_some_and(|(a, b)| b < start || a >= end) {
            continue;
        }
        let b = read_stored(edit, chunks, &rule.source, &node, seg)?;
        let Some(time) = b
            .column_by_name("time")
            .and_then(|t| t.as_primitive_opt::<TimestampNanosecondType>())
        else {
            continue;
        };
        let tag_cols = TagColumns::new(&b, &tags);
        let mut numeric: Vec<(String, ArrayRef)> = Vec::new();
        for f in schema.fields() {
            if tags.contains(f.name()) || f.name() == "time" {
                continue;
            }
            let Some(col) = b.column_by_name(f.name()) else {
                continue;
            };
            if matches!(
                col.data_type(),
                DataType::Float64 | DataType::Int64 | DataType::UInt64
            ) {
                let as_f = cast(col, &DataType::Float64).map_err(|e| {
                    crate::version::VersionError::Table {
                        table: rule.source.clone(),
                        detail: e.to_string(),
                    }
                })?;
                numeric.push((f.name().clone(), as_f));
            }
        }
        for i in 0..b.num_rows() {
            let t = time.value(i);
            if t < start || t >= end {
                continue;
            }
            let set = tag_cols.set(i);
            let acc = buckets
                .entry((set, t.div_euclid(every) * every))
                .or_default();
            acc.points += 1;
            for (name, c) in &numeric {
                if c.is_null(i) {
                    continue;
                }
                let v = c.as_primitive::<Float64Type>().value(i);
                let e = acc.fields.entry(name.clone()).or_insert((
                    0,
                    0.0,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                ));
                e.0 += 1;
                e.1 += v;
                e.2 = e.2.min(v);
                e.3 = e.3.max(v);
            }
        }
    }
    let points: Vec<(TagSet, i64, BTreeMap<String, FieldValue>)> = buckets
        .into_iter()
        .map(|((tags, t), acc)| {
            let mut fields = BTreeMap::new();
            fields.insert("count".to_string(), FieldValue::Int(acc.points));
            for (f, (n, sum, min, max)) in acc.fields {
                fields.insert(format!("mean_{f}"), FieldValue::Float(sum / n as f64));
                fields.insert(format!("min_{f}"), FieldValue::Float(min));
                fields.insert(format!("max_{f}"), FieldValue::Float(max));
            }
            (tags, t, fields)
        })
        .collect();
    write_points(edit, chunks, &rule.target, points)
}

/// The time range of the source's rows in the working set (for a backfill).
pub fn source_range(
    edit: &mut WorkingEdit<'_>,
    source: &str,
) -> crate::version::Result<Option<(i64, i64)>> {
    let Some(node) = edit.root.table(source)? else {
        return Ok(None);
    };
    let mut range: Option<(i64, i64)> = None;
    for (a, b) in node.segments.iter().filter_map(segment_times) {
        range = Some(match range {
            Some((lo, hi)) => (lo.min(a), hi.max(b)),
            None => (a, b),
        });
    }
    Ok(range)
}
