//! Pack files are read back by fsck, gc and every chunk read: any bytes must give an
//! error or entries, never a panic or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.pack");
    let _ = bagbase::store::pack::scan_from(data, data.len() as u64, path, &mut |_| Ok(()));
});
