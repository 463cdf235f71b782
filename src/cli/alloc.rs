//! Allocator tuning for the `bagbase` process (a library user keeps its own).
//!
//! glibc raises its mmap threshold each time a large mmapped block is freed, up to
//! 32 MiB. After the first few multi-MiB buffers (camera frames, table batches,
//! encoded segments) are freed, later ones come from the heap arenas instead, and the
//! freed space stays in the process: a 700 MiB camera bag's ingest peaked at 264 MiB
//! RSS, ≈46 MiB of it such retained free memory. Fixing the threshold at 4 MiB (which
//! also turns off that adjustment) returns big buffers to the system when they are
//! freed: 218 MiB, at ≈8 % more time for the page faults (docs/BENCHMARKS.md,
//! "Bag → LeRobot"). A lower threshold saved more memory but cost 25–40 % in time.

/// Applies the tuning; a no-op on other C libraries.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called once, before any thread
    // is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}
