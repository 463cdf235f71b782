//! One entry point that runs the whole MCAP path (records, chunks, schemas, message
//! decoding) on arbitrary bytes, for the fuzz target and the mutation test.

use super::scan::{self, McapError as FileError};
use crate::ingest::message::tables::BagTables;
use crate::ingest::message::Stop;

/// Scans and decodes `bytes` as MCAP; returns whether it was accepted. Never panics.
pub fn scan_and_decode(bytes: &[u8]) -> bool {
    let mut tables = BagTables::new("fuzz", Some(crate::store::Id::of(b"fuzz")));
    let mut out = Vec::new();
    let res = scan::scan(bytes, &mut |ev, at| -> Result<(), Stop<FileError>> {
        out.clear();
        tables.event(ev, &mut out).map_err(|e| Stop::Decode(e, at))
    });
    res.is_ok() && {
        let _ = tables.finish();
        true
    }
}
