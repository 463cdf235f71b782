//! The `bagbase` process's allocator and its tuning (a library user keeps its own).
//!
//! `serve` allocates with mimalloc: a served point lookup spent ≈ 15 % of its CPU in
//! glibc's allocator (docs/BENCHMARKS.md, serve). Every other command switches to
//! glibc's malloc before its first allocation (`ProcessAlloc`): for a one-shot ingest,
//! mimalloc kept freed memory of the chunk pipeline resident (each block and buffer is
//! allocated on one thread and freed on another) and purged it with many `madvise`
//! calls — a 2 GiB bag ingested in 7.4–7.5 s at 64–66 MiB with mimalloc and 6.2–6.6 s
//! at 61–62 MiB with glibc, 1 GiB of mixed data at 69–70 MiB against 53–54, in the
//! same time (docs/BENCHMARKS.md, ingest session 27). A block mimalloc made before
//! the switch, if any, is recognised by mimalloc's page map and freed by it.
//!
//! C libraries (zstd's contexts, HDF5) always use glibc's malloc. glibc raises its mmap
//! threshold each time a large mmapped block is freed, up to 32 MiB. After the first
//! few multi-MiB buffers are freed, later ones come from the heap arenas instead, and
//! the freed space stays in the process. Fixing the threshold at 4 MiB (which also
//! turns off that adjustment) returns big buffers to the system when they are freed
//! (docs/BENCHMARKS.md, "Bag → LeRobot"). Commands other than `serve` also use one
//! glibc arena for every thread (ROS1 session 19).
//!
//! Commands other than `serve` turn transparent huge pages off for the process
//! (`PR_SET_THP_DISABLE`): with huge pages, memory an allocator had freed but not yet
//! returned stayed resident in 2 MiB units (docs/BENCHMARKS.md, ingest session 24).

use bagbase::store::pool::MMAP_THRESHOLD;
use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::c_void;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
use std::ffi::{c_char, c_int, CStr};
use std::sync::atomic::{AtomicBool, Ordering};

extern "C" {
    /// Whether mimalloc's page map covers `p` (linked through the `mimalloc` crate).
    fn mi_is_in_heap_region(p: *const c_void) -> bool;
}

/// Allocations go to glibc once set (before `main`, or by `tune` before any thread
/// starts); until then, and for good in `serve`, to mimalloc.
static SYSTEM: AtomicBool = AtomicBool::new(false);

/// mimalloc, or glibc's malloc for commands other than `serve` (see the module text).
pub struct ProcessAlloc;

/// Chooses the allocator before the first allocation, as glibc runs `.init_array`
/// functions (with the process's arguments) before `main`: once mimalloc has made its
/// first arena it keeps a huge page of it resident (≈ 3 MiB more for `--help`). Any
/// argument `serve` keeps mimalloc — a store directory named so only costs the choice
/// of allocator. `tune` switches too, for other platforms.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[used]
#[link_section = ".init_array"]
static CHOOSE_BEFORE_MAIN: extern "C" fn(c_int, *const *const c_char, *const *const c_char) =
    choose_before_main;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" fn choose_before_main(argc: c_int, argv: *const *const c_char, _: *const *const c_char) {
    if argv.is_null() {
        return;
    }
    let serving = (1..argc.max(0) as usize).any(|i| {
        // SAFETY: glibc passes `main`'s argc and argv: argc valid C strings (or null).
        let arg = unsafe { *argv.add(i) };
        !arg.is_null() && unsafe { CStr::from_ptr(arg) }.to_bytes() == b"serve"
    });
    if !serving {
        SYSTEM.store(true, Ordering::Relaxed);
    }
}

// SAFETY: see `Mode`; the switch happens once, before any other thread exists.
unsafe impl GlobalAlloc for ProcessAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Mode::now().alloc(layout, false)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Mode::now().alloc(layout, true)
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        Mode::now().dealloc(p, layout)
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Mode::now().realloc(p, layout, new_size)
    }
}

/// Which allocator new blocks come from: glibc (`true`) or mimalloc. Every block is
/// freed (or grown) by the allocator that made it: before the switch everything
/// comes from mimalloc; after it, a block mimalloc's page map does not cover came
/// from glibc.
#[derive(Clone, Copy)]
struct Mode(bool);

impl Mode {
    fn now() -> Mode {
        Mode(SYSTEM.load(Ordering::Relaxed))
    }

    /// Whether `p` (a block of this allocator) was allocated by glibc.
    unsafe fn made_by_glibc(self, p: *mut u8) -> bool {
        self.0 && !mi_is_in_heap_region(p as *const c_void)
    }

    unsafe fn alloc(self, layout: Layout, zeroed: bool) -> *mut u8 {
        match (self.0, zeroed) {
            (true, false) => System.alloc(layout),
            (true, true) => System.alloc_zeroed(layout),
            (false, false) => mimalloc::MiMalloc.alloc(layout),
            (false, true) => mimalloc::MiMalloc.alloc_zeroed(layout),
        }
    }

    unsafe fn dealloc(self, p: *mut u8, layout: Layout) {
        if self.made_by_glibc(p) {
            System.dealloc(p, layout)
        } else {
            mimalloc::MiMalloc.dealloc(p, layout)
        }
    }

    unsafe fn realloc(self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.0 {
            return mimalloc::MiMalloc.realloc(p, layout, new_size);
        }
        if self.made_by_glibc(p) {
            return System.realloc(p, layout, new_size);
        }
        // A mimalloc block from before the switch: move it to glibc.
        let new = Layout::from_size_align_unchecked(new_size, layout.align());
        let q = System.alloc(new);
        if !q.is_null() {
            std::ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
            mimalloc::MiMalloc.dealloc(p, layout);
        }
        q
    }
}

/// Picks the allocator and tunes glibc's malloc. Call before any thread starts.
pub fn tune(serving: bool) {
    if !serving {
        SYSTEM.store(true, Ordering::Relaxed);
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters and prctl a flag of this process;
    // called once, before any thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as c_int);
        if !serving {
            libc::mallopt(libc::M_ARENA_MAX, 1);
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks from before the switch are freed and grown by mimalloc, later ones by
    /// glibc. (On `Mode` directly: the test binary's own allocator is this one, and
    /// flipping the process-wide switch under other tests' threads would be unsound.)
    #[test]
    fn blocks_go_back_to_their_allocator() {
        let (before, after) = (Mode(false), Mode(true));
        let l = Layout::from_size_align(100, 8).unwrap();
        // SAFETY: each block is used within its layout and freed once, by its mode.
        unsafe {
            let early = before.alloc(l, false);
            let also_early = before.alloc(l, true);
            early.write_bytes(7, 100);
            assert!(mi_is_in_heap_region(early as *const c_void));
            let late = after.alloc(l, false);
            assert!(!mi_is_in_heap_region(late as *const c_void));
            let grown = after.realloc(early, l, 5000);
            assert!(!mi_is_in_heap_region(grown as *const c_void));
            assert_eq!(std::slice::from_raw_parts(grown, 100), &[7u8; 100][..]);
            let grown = after.realloc(grown, Layout::from_size_align(5000, 8).unwrap(), 9000);
            assert_eq!(std::slice::from_raw_parts(grown, 100), &[7u8; 100][..]);
            after.dealloc(grown, Layout::from_size_align(9000, 8).unwrap());
            after.dealloc(also_early, l);
            after.dealloc(late, l);
        }
    }
}
