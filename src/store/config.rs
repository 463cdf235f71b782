//! Store-wide settings chosen at `init` and fixed for the life of the store.

use super::error::{Result, StoreError};
use serde::{Deserialize, Serialize};

/// The on-disk format version this build writes (docs/format.md).
pub const FORMAT_VERSION: u32 = 3;
/// The oldest format version this build still reads and writes: a format-1 store keeps
/// format 1 (its segments never hold blob columns, §4).
pub const OLDEST_FORMAT: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StoreConfig {
    pub format_version: u32,
    /// FastCDC bounds in bytes.
    pub chunk_min: u32,
    pub chunk_avg: u32,
    pub chunk_max: u32,
    pub zstd_level: i32,
    /// A pack is closed once it grows past this many bytes.
    pub pack_target_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            format_version: FORMAT_VERSION,
            chunk_min: 16 * 1024,
            chunk_avg: 64 * 1024,
            chunk_max: 256 * 1024,
            zstd_level: 3,
            pack_target_bytes: 512 * 1024 * 1024,
        }
    }
}

impl StoreConfig {
    /// Whether segments may hold blob columns (format 2 on).
    pub fn blobs(&self) -> bool {
        self.format_version >= 2
    }

    /// Whether long chunk lists are split into `C` parts under `L` nodes (format 3 on).
    pub fn chunk_trees(&self) -> bool {
        self.format_version >= 3
    }

    /// Checks the format version, and the bounds FastCDC and the pack format accept.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(StoreError::Config(m));
        if !(OLDEST_FORMAT..=FORMAT_VERSION).contains(&self.format_version) {
            return bad(format!(
                "format version {} must be {OLDEST_FORMAT}..{FORMAT_VERSION}",
                self.format_version
            ));
        }
        // FastCDC 2020's ranges (its masks and tables stop there; a store made with a
        // larger size used to be accepted here and panic at its first ingest).
        use fastcdc::v2020 as f;
        for (what, v, lo, hi) in [
            ("min", self.chunk_min, f::MINIMUM_MIN, f::MINIMUM_MAX),
            ("avg", self.chunk_avg, f::AVERAGE_MIN, f::AVERAGE_MAX),
            ("max", self.chunk_max, f::MAXIMUM_MIN, f::MAXIMUM_MAX),
        ] {
            if !(lo..=hi).contains(&v) {
                return bad(format!("chunk {what} {v} must be {lo}..{hi} bytes"));
            }
        }
        if !(self.chunk_min <= self.chunk_avg && self.chunk_avg <= self.chunk_max) {
            return bad("chunk sizes must satisfy min <= avg <= max".into());
        }
        if !(1..=22).contains(&self.zstd_level) {
            return bad(format!("zstd level {} must be 1..22", self.zstd_level));
        }
        Ok(())
    }
}
