//! What bounds the chunk pipeline's memory: a few byte buffers its threads hand back
//! and forth instead of allocating one per read block or compressed chunk (one thread
//! allocated them and another freed them, and the allocator kept such freed memory for
//! a while, so an ingest's RSS grew with the stream; docs/BENCHMARKS.md, ingest session
//! 24), the budget of chunk bytes in flight between the cutter and the pack, and how
//! freed buffers leave glibc's heap (`MMAP_THRESHOLD`, `release_freed_memory`).

use std::sync::{Arc, Condvar, Mutex};

/// glibc's mmap threshold as the `bagbase` process sets it (src/cli/alloc.rs): a buffer
/// of at least this capacity is mapped on its own and unmapped when freed. Read blocks
/// are allocated so (`cut.rs`): from the heap, a stream's blocks left holes that later
/// allocations spread into, and the heap kept their size (a 2 GiB bag left an 18 MiB
/// heap holding 3 MiB for its decode pass, a 200 MiB bag one of 9 MiB, and the decode
/// pass faulted the holes back in: 2–3 MiB more resident for the larger file;
/// docs/BENCHMARKS.md, ROS1 session 28).
pub const MMAP_THRESHOLD: usize = 4 << 20;

/// Hands the free pages of glibc's heap back to the system (the `bagbase` binary's
/// one-shot commands allocate there): freed buffers otherwise stay resident below
/// whatever was allocated after them. Called when a stream's pipeline ends (its
/// compressed-chunk buffers; read blocks are mapped apart, `MMAP_THRESHOLD`) and
/// after a decode pass writes a segment: a 2 GiB bag peaked 3–7 MiB above a 200 MiB
/// one without (docs/BENCHMARKS.md, ROS1 sessions 27 and 28).
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of glibc's heaps to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

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
        if v.capacity() < capacity {
            // Growing would copy the old (unused) bytes over.
            v = Vec::with_capacity(capacity);
        }
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

/// Bytes of chunks between the cutter and the pack, bounded: the cutter takes a chunk's
/// length before handing it out and the collector gives it back once the chunk is
/// placed, so the queues and the reorder map never hold more than `cap` bytes of
/// chunks (one chunk more than `cap` may pass when nothing else is in flight).
pub struct Budget {
    state: Mutex<Taken>,
    freed: Condvar,
    cap: usize,
}

#[derive(Default)]
struct Taken {
    bytes: usize,
    closed: bool,
}

impl Budget {
    pub fn new(cap: usize) -> Budget {
        Budget {
            state: Mutex::default(),
            freed: Condvar::new(),
            cap,
        }
    }

    /// Waits until `n` bytes fit; false once the budget is closed (nobody will give
    /// bytes back: the consumer has stopped).
    pub fn take(&self, n: usize) -> bool {
        let mut s = self.state.lock().expect("budget lock");
        while !s.closed && s.bytes > 0 && s.bytes + n > self.cap {
            s = self.freed.wait(s).expect("budget lock");
        }
        if s.closed {
            return false;
        }
        s.bytes += n;
        true
    }

    pub fn give(&self, n: usize) {
        let mut s = self.state.lock().expect("budget lock");
        s.bytes = s.bytes.saturating_sub(n);
        self.freed.notify_all();
    }

    /// Wakes every waiter for good: `take` returns false from now on.
    pub fn close(&self) {
        self.state.lock().expect("budget lock").closed = true;
        self.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_waits_for_room_and_close_releases() {
        let b = Budget::new(10);
        assert!(b.take(6));
        assert!(b.take(4));
        std::thread::scope(|s| {
            let waiter = s.spawn(|| b.take(5));
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(!waiter.is_finished(), "10 of 10 bytes taken: must wait");
            b.give(6);
            assert!(waiter.join().expect("waiter"));
        });
        // 9 of 10 taken; a chunk larger than the whole budget passes only alone.
        b.give(4);
        b.give(5);
        assert!(b.take(25));
        std::thread::scope(|s| {
            let waiter = s.spawn(|| b.take(1));
            std::thread::sleep(std::time::Duration::from_millis(20));
            b.close();
            assert!(!waiter.join().expect("waiter"), "closed: take gives up");
        });
        assert!(!b.take(1));
    }
}
