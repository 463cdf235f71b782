//! Feature statistics as LeRobot keeps them (`meta/stats.json` for the dataset,
//! `stats/<feature>/<stat>` columns per episode): min, max, mean, std and count per
//! dimension — per channel for images, scaled to [0, 1], shaped (C, 1, 1). Running sums
//! in f64; an episode's stats merge into the dataset's exactly. Quantiles are not kept.

use serde_json::{json, Value};

#[derive(Clone, Debug)]
pub struct Stats {
    pub min: Vec<f64>,
    pub max: Vec<f64>,
    pub sum: Vec<f64>,
    pub sq: Vec<f64>,
    /// Values per dimension (frames, or frames × pixels for images).
    pub count: u64,
    /// Frames seen (LeRobot's `count`).
    pub frames: u64,
    /// Per-channel image stats, written as (C, 1, 1).
    pub image: bool,
}

impl Stats {
    pub fn new(dims: usize, image: bool) -> Stats {
        Stats {
            min: vec![f64::INFINITY; dims],
            max: vec![f64::NEG_INFINITY; dims],
            sum: vec![0.0; dims],
            sq: vec![0.0; dims],
            count: 0,
            frames: 0,
            image,
        }
    }

    /// Grows to `dims` dimensions (a feature's shape is known only at its first step).
    pub fn ensure(&mut self, dims: usize) {
        if self.min.len() < dims {
            self.min.resize(dims, f64::INFINITY);
            self.max.resize(dims, f64::NEG_INFINITY);
            self.sum.resize(dims, 0.0);
            self.sq.resize(dims, 0.0);
        }
    }

    /// An empty accumulator of the same dimensions.
    pub fn clone_empty(&self) -> Stats {
        Stats::new(self.min.len(), self.image)
    }

    /// One frame's values (one per dimension).
    pub fn add(&mut self, v: impl IntoIterator<Item = f64>) {
        for (k, x) in v.into_iter().enumerate().take(self.min.len()) {
            self.min[k] = self.min[k].min(x);
            self.max[k] = self.max[k].max(x);
            self.sum[k] += x;
            self.sq[k] += x * x;
        }
        self.count += 1;
        self.frames += 1;
    }

    pub fn merge(&mut self, o: &Stats) {
        self.ensure(o.min.len());
        for k in 0..o.min.len() {
            self.min[k] = self.min[k].min(o.min[k]);
            self.max[k] = self.max[k].max(o.max[k]);
            self.sum[k] += o.sum[k];
            self.sq[k] += o.sq[k];
        }
        self.count += o.count;
        self.frames += o.frames;
    }

    fn finite(v: f64) -> f64 {
        if v.is_finite() {
            v
        } else {
            0.0
        }
    }

    /// (name, values) for min, max, mean, std in that order.
    pub fn values(&self) -> Vec<(&'static str, Vec<f64>)> {
        let n = self.count.max(1) as f64;
        let mean: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        let std = self
            .sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| (q / n - m * m).max(0.0).sqrt())
            .collect();
        let fin = |v: &[f64]| v.iter().map(|x| Self::finite(*x)).collect();
        vec![
            ("min", fin(&self.min)),
            ("max", fin(&self.max)),
            ("mean", mean),
            ("std", std),
        ]
    }

    /// The stats as `stats.json` holds them for one feature.
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (name, v) in self.values() {
            let v: Value = if self.image {
                v.iter().map(|x| json!([[x]])).collect()
            } else {
                json!(v)
            };
            m.insert(name.into(), v);
        }
        m.insert("count".into(), json!([self.frames]));
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mean_std_and_merge() {
        let mut a = super::Stats::new(1, false);
        a.add([1.0]);
        a.add([3.0]);
        let mut b = super::Stats::new(1, false);
        b.add([5.0]);
        a.merge(&b);
        let v = a.values();
        assert_eq!(v[0].1, vec![1.0]);
        assert_eq!(v[1].1, vec![5.0]);
        assert_eq!(v[2].1, vec![3.0]);
        assert!((v[3].1[0] - (8.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(a.to_json()["count"], serde_json::json!([3]));
    }
}
