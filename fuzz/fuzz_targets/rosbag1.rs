//! The ROS1 bag path — record reader, chunk decompression, message definitions and
//! message decoding — on arbitrary bytes: errors, never panics or unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bagbase::ingest::rosbag1::fuzz::scan_and_decode(data);
});
