//! The HDF5 path — the C library opening arbitrary bytes, layout detection and every
//! step column read in slices — through bagbase: errors, never panics in our code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("f.hdf5");
    if std::fs::write(&path, data).is_ok() {
        let _ = bagbase::ingest::hdf5::ingest::read_all(&path);
    }
});
