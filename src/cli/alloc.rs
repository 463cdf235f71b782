//! Allocator tuning for the `bagbase` process (a library user keeps its own).
//!
//! Rust allocations go to mimalloc (main.rs); C libraries (zstd's contexts, HDF5)
//! still use glibc's malloc, tuned here as before mimalloc came in:
//!
//! glibc raises its mmap threshold each time a large mmapped block is freed, up to
//! 32 MiB. After the first few multi-MiB buffers are freed, later ones come from the
//! heap arenas instead, and the freed space stays in the process. Fixing the
//! threshold at 4 MiB (which also turns off that adjustment) returns big buffers to the
//! system when they are freed (docs/BENCHMARKS.md, "Bag → LeRobot"). Commands other
//! than `serve` also use one glibc arena for every thread (ROS1 session 19).
//!
//! Commands other than `serve` turn transparent huge pages off for the process
//! (`PR_SET_THP_DISABLE`, what mimalloc's `allow_thp=0` does): mimalloc asks for huge
//! pages on its arenas, so memory it had freed but not yet purged stayed resident in
//! 2 MiB units, and an ingest's peak RSS grew with the stream — 1 / 4 GiB of mixed data
//! peaked at 86 / 91 MiB with huge pages and 65 / 66 MiB without (docs/BENCHMARKS.md,
//! ingest session 24). They also have mimalloc return freed pages at once instead of
//! 10 ms later (`purge_delay` 0): 74–79 → 70–71 MiB for 4 GiB, no slower. The server
//! keeps both defaults for its long-lived caches.

/// mimalloc's `mi_option_purge_delay` (the same value in its v2 and v3 `mimalloc.h`).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

extern "C" {
    /// mimalloc's option setter (linked through the `mimalloc` crate).
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// Applies the tuning (glibc's part is a no-op on other C libraries). Call before any
/// thread starts.
pub fn tune(serving: bool) {
    if !serving {
        // SAFETY: sets a mimalloc option, which mimalloc reads when it next purges.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters and prctl a flag of this process;
    // called once, before any thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        if !serving {
            libc::mallopt(libc::M_ARENA_MAX, 1);
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = serving;
}
