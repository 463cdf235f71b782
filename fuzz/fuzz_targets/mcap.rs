//! The MCAP path — records, chunk decompression and CRCs, schemas and CDR/ROS1 message
//! decoding — on arbitrary bytes: errors, never panics or unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bagbase::ingest::mcap::fuzz::scan_and_decode(data);
});
