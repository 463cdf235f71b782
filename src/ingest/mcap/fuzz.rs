//! One entry point that runs the whole MCAP path (records, chunks, schemas, message
//! decoding) on arbitrary bytes, for the fuzz target and the mutation test.

use super::scan::{self, Event, McapError};
use crate::ingest::message::tables::{BagTables, DecodeError};

/// Why the scan stopped; the fuzz entry only needs to know that it did.
struct Stop;

impl From<McapError> for Stop {
    fn from(_: McapError) -> Self {
        Stop
    }
}

impl From<DecodeError> for Stop {
    fn from(_: DecodeError) -> Self {
        Stop
    }
}

/// Scans and decodes `bytes` as MCAP; returns whether it was accepted. Never panics.
pub fn scan_and_decode(bytes: &[u8]) -> bool {
    let mut tables = BagTables::new("fuzz");
    let mut out = Vec::new();
    let res = scan::scan(bytes, &mut |ev, _| -> Result<(), Stop> {
        match ev {
            Event::Connection(c) => Ok(tables.connection(c)?),
            Event::Message { conn, time, data } => {
                out.clear();
                Ok(tables.message(conn, time, data, &mut out)?)
            }
        }
    });
    let ok = res.is_ok();
    if ok {
        let _ = tables.finish();
    }
    ok
}
