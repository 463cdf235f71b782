//! All whole-program and library integration tests in one test binary (`cargo test
//! --test it`), so CI links one large executable instead of ten; each module is one
//! former `tests/*.rs` file. `tests/sqllogictest.rs` stays separate because it sets
//! process-wide environment variables (PATH, BAGBASE_STORE, BAGBASE_TIME).
//! Run one area with a filter, e.g. `cargo test --test it server::`.

/// The benchmarks' data generators (a realistic robot bag of any size).
#[path = "../../benches/common/mod.rs"]
mod benchgen;
mod common;

mod cli;
mod crash;
mod dedup;
mod diff;
mod export;
mod formats;
mod hdf5;
mod http;
mod lineproto;
mod mcap;
mod plans;
mod rosbag1;
mod segments;
mod server;
