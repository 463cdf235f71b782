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
//!
//! Commands other than `serve` also use one arena for every thread: the chunk
//! pipeline's threads allocate buffers that another thread frees, and with an arena
//! per thread the freed space stayed spread over them. A 2 GiB camera bag's ingest
//! peaked at 63–66 MiB with glibc's default arenas and 57 MiB with one, and was no
//! slower (docs/BENCHMARKS.md, ROS1 session 19). The server keeps several arenas for
//! its many concurrent tasks.

/// Applies the tuning; a no-op on other C libraries. Call before any thread starts.
pub fn tune(serving: bool) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called once, before any thread
    // is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        if !serving {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = serving;
}
