//! Peak resident set of a server process, sampled from /proc every 100 ms while a
//! workload runs (a server is not our child to wait4 on, and its peak while under load is
//! what the benches report).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Samples a process's resident set every 100 ms until dropped; `peak()` in MiB.
pub struct RssSampler {
    peak_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

impl RssSampler {
    pub fn start(pid: Option<u32>) -> RssSampler {
        let peak_kib = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = pid.map(|pid| {
            let (peak, stop) = (Arc::clone(&peak_kib), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        });
        RssSampler {
            peak_kib,
            stop,
            thread,
        }
    }

    pub fn peak(mut self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        let t = self.thread.take()?;
        t.join().unwrap();
        Some(self.peak_kib.load(Ordering::Relaxed) / 1024)
    }
}
