//! A bounded, shared cache for immutable values named by content: decoded chunks,
//! decoded manifest nodes, parsed Parquet footers. Keys are content hashes, so an entry
//! never goes stale and no invalidation exists; the cache only saves repeated reads,
//! CRC checks, zstd decodes and parses of what queries touch again. Each entry has a
//! weight (about its bytes in memory); past the capacity the least recently used
//! entries go until a quarter of the capacity is free.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

pub struct Lru<K, V> {
    capacity: AtomicUsize,
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    /// Key → (value, weight, last use).
    map: HashMap<K, (V, usize, u64)>,
    weight: usize,
    tick: u64,
}

impl<K: Hash + Eq + Clone, V: Clone> Lru<K, V> {
    /// A cache holding at most `capacity` weight.
    pub fn new(capacity: usize) -> Self {
        Lru {
            capacity: AtomicUsize::new(capacity),
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                weight: 0,
                tick: 0,
            }),
        }
    }

    /// Holds at most `capacity` weight from the next insert on.
    pub fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity, Ordering::Relaxed);
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.tick += 1;
        let tick = g.tick;
        let (v, _, used) = g.map.get_mut(key)?;
        *used = tick;
        Some(v.clone())
    }

    /// Keeps `value` unless it alone would take more than an eighth of the capacity.
    pub fn insert(&self, key: K, value: V, weight: usize) {
        let capacity = self.capacity.load(Ordering::Relaxed);
        if weight > capacity / 8 {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.tick += 1;
        let tick = g.tick;
        if let Some(old) = g.map.insert(key, (value, weight, tick)) {
            g.weight -= old.1;
        }
        g.weight += weight;
        if g.weight > capacity {
            let mut by_age: Vec<(u64, K)> =
                g.map.iter().map(|(k, (_, _, u))| (*u, k.clone())).collect();
            by_age.sort_unstable_by_key(|(u, _)| *u);
            let target = capacity - capacity / 4;
            for (_, k) in by_age {
                if g.weight <= target {
                    break;
                }
                if let Some((_, w, _)) = g.map.remove(&k) {
                    g.weight -= w;
                }
            }
        }
    }

    /// The weight held now.
    pub fn weight(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).weight
    }
}

#[cfg(test)]
mod tests {
    use super::Lru;

    #[test]
    fn keeps_recent_entries_within_capacity() {
        let c: Lru<u32, u32> = Lru::new(100);
        for k in 0..10 {
            c.insert(k, k * 10, 10);
        }
        assert_eq!(c.weight(), 100);
        assert_eq!(c.get(&0), Some(0)); // 0 is now the most recent
        c.insert(10, 100, 10); // over: evict the oldest down to 75
        assert!(c.weight() <= 75);
        assert_eq!(c.get(&0), Some(0));
        assert_eq!(c.get(&10), Some(100));
        assert_eq!(c.get(&1), None);
        c.insert(11, 0, 13); // heavier than capacity / 8: not kept
        assert_eq!(c.get(&11), None);
        c.insert(10, 5, 10); // replacing keeps the weight exact
        assert_eq!(c.get(&10), Some(5));
    }
}
