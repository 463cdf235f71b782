//! A few byte buffers the chunk pipeline's threads hand back and forth instead of
//! allocating one per read block or compressed chunk. One thread allocated them and
//! another freed them, and the allocator kept such freed memory for a while, so an
//! ingest's RSS grew with the stream (docs/BENCHMARKS.md, ingest session 24).

use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct Pool {
    free: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Buffers kept at most; more are freed.
    keep: usize,
    /// Largest capacity kept: a buffer grown for a rare large chunk is freed, so the
    /// kept ones stay about the size most takes ask for.
    max_capacity: usize,
}

impl Pool {
    pub fn new(keep: usize, max_capacity: usize) -> Pool {
        Pool {
            free: Arc::default(),
            keep,
            max_capacity,
        }
    }

    /// An empty buffer of at least `capacity` bytes.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        let mut v = self
            .free
            .lock()
            .expect("pool lock")
            .pop()
            .unwrap_or_default();
        v.reserve_exact(capacity);
        v
    }

    /// Returns a buffer for reuse.
    pub fn give(&self, mut v: Vec<u8>) {
        v.clear();
        if v.capacity() > self.max_capacity {
            return;
        }
        let mut free = self.free.lock().expect("pool lock");
        if free.len() < self.keep {
            free.push(v);
        }
    }
}
