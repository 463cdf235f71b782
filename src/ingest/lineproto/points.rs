//! The points of one measurement that a write gathers before storing them. Tag sets
//! (series) and field keys are interned, points are merged by (series, time) — a later
//! point's fields over an earlier one's, InfluxDB's rule — and values are kept column
//! by column, so a point costs no allocation of its own once its series is known.

use super::parse::FieldValue;
use super::write::TagSet;
use std::collections::hash_map::Entry;
use std::collections::HashMap;

type Map<K, V> = HashMap<K, V, ahash::RandomState>;

#[derive(Default)]
pub(super) struct Rows {
    series: Map<TagSet, u32>,
    /// Every series, by id.
    pub(super) tagsets: Vec<TagSet>,
    field_ids: Map<String, u32>,
    /// Every field key, by id.
    pub(super) field_names: Vec<String>,
    at: Map<(u32, i64), u32>,
    /// Per row: its series, its time, the text that last wrote it.
    pub(super) series_of: Vec<u32>,
    pub(super) times: Vec<i64>,
    owner: Vec<u32>,
    /// `values[field][row]`.
    pub(super) values: Vec<Vec<Option<FieldValue>>>,
}

impl Rows {
    pub(super) fn len(&self) -> usize {
        self.times.len()
    }

    /// Adds a point, its fields merged over an earlier one of the same series and time.
    /// True when it is a new point for text `job`.
    pub(super) fn merge(
        &mut self,
        tags: TagSet,
        time: i64,
        fields: Vec<(String, FieldValue)>,
        job: u32,
    ) -> bool {
        let s = match self.series.get(&tags) {
            Some(&s) => s,
            None => {
                let s = self.tagsets.len() as u32;
                self.tagsets.push(tags.clone());
                self.series.insert(tags, s);
                s
            }
        };
        let (r, new) = match self.at.entry((s, time)) {
            Entry::Occupied(e) => (*e.get() as usize, false),
            Entry::Vacant(e) => {
                let r = self.times.len();
                e.insert(r as u32);
                self.times.push(time);
                self.series_of.push(s);
                self.owner.push(job);
                for col in &mut self.values {
                    col.push(None);
                }
                (r, true)
            }
        };
        for (k, v) in fields {
            let f = self.field(k);
            self.values[f][r] = Some(v);
        }
        new || std::mem::replace(&mut self.owner[r], job) != job
    }

    fn field(&mut self, name: String) -> usize {
        if let Some(&f) = self.field_ids.get(&name) {
            return f as usize;
        }
        let f = self.field_names.len();
        self.field_names.push(name.clone());
        self.field_ids.insert(name, f as u32);
        self.values.push(vec![None; self.times.len()]);
        f
    }

    /// The row of the point of series `tags` at `time`.
    pub(super) fn find(&self, tags: &TagSet, time: i64) -> Option<usize> {
        let s = *self.series.get(tags)?;
        self.at.get(&(s, time)).map(|&r| r as usize)
    }

    /// The value of field `name` in row `r`.
    pub(super) fn get(&self, r: usize, name: &str) -> Option<&FieldValue> {
        let f = *self.field_ids.get(name)?;
        self.values[f as usize][r].as_ref()
    }

    /// Gives row `r` field `name` when it has none (a stored point's value kept under
    /// a new point that did not set it).
    pub(super) fn fill(&mut self, r: usize, name: &str, v: FieldValue) {
        if self.get(r, name).is_none() {
            let f = self.field(name.to_string());
            self.values[f][r] = Some(v);
        }
    }

    /// Field `name`'s column (`None`: no row has it).
    pub(super) fn column(&self, name: &str) -> Option<&[Option<FieldValue>]> {
        let col = &self.values[*self.field_ids.get(name)? as usize];
        col.iter().any(Option::is_some).then_some(col.as_slice())
    }

    /// (earliest, latest) time.
    pub(super) fn time_range(&self) -> (i64, i64) {
        self.times
            .iter()
            .fold((i64::MAX, i64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)))
    }

    /// The rows sorted by time, then tag set.
    pub(super) fn order(&self) -> Vec<usize> {
        let mut by_tags: Vec<usize> = (0..self.tagsets.len()).collect();
        by_tags.sort_unstable_by(|&a, &b| self.tagsets[a].cmp(&self.tagsets[b]));
        let mut rank = vec![0u32; by_tags.len()];
        for (i, s) in by_tags.into_iter().enumerate() {
            rank[s] = i as u32;
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_unstable_by_key(|&r| (self.times[r], rank[self.series_of[r] as usize]));
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(v: &str) -> TagSet {
        vec![("w".into(), v.into())]
    }

    #[test]
    fn merges_by_series_and_time() {
        let mut r = Rows::default();
        assert!(r.merge(tags("b"), 10, vec![("v".into(), FieldValue::Int(1))], 0));
        assert!(r.merge(tags("a"), 10, vec![("v".into(), FieldValue::Int(2))], 0));
        // Same point again in the same text: merged, not a new point of that text.
        assert!(!r.merge(tags("b"), 10, vec![("x".into(), FieldValue::Bool(true))], 0));
        // Same point in a later text: a point of that text too.
        assert!(r.merge(tags("b"), 10, vec![("v".into(), FieldValue::Int(3))], 1));
        assert_eq!(r.len(), 2);
        let b = r.find(&tags("b"), 10).unwrap();
        assert_eq!(r.get(b, "v"), Some(&FieldValue::Int(3)));
        assert_eq!(r.get(b, "x"), Some(&FieldValue::Bool(true)));
        r.fill(b, "v", FieldValue::Int(9));
        r.fill(b, "y", FieldValue::Float(0.5));
        assert_eq!(r.get(b, "v"), Some(&FieldValue::Int(3)));
        assert_eq!(r.get(b, "y"), Some(&FieldValue::Float(0.5)));
        assert_eq!(r.order(), vec![1, 0]);
        assert_eq!(r.time_range(), (10, 10));
        assert!(r.column("y").is_some() && r.column("z").is_none());
    }
}
