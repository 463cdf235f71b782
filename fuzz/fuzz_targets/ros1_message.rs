//! One ROS1 message definition (first line of input up to a NUL) and message bytes (the
//! rest), decoded: errors, never panics.
#![no_main]

use bagbase::ingest::message::msgdef::{self, Dialect};
use bagbase::ingest::message::decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let def = String::from_utf8_lossy(&data[..split]);
    let msg = data.get(split + 1..).unwrap_or(&[]);
    if let Ok(fields) = msgdef::parse("fuzz/Msg", &def, Dialect::Ros1) {
        let t = msgdef::Type::Msg("fuzz/Msg".into(), fields);
        let mut col = decode::Col::new(&t);
        let mut b = decode::Bytes::ros1(msg);
        if decode::decode(&t, &mut col, &mut b, "msg").is_ok() {
            let _ = col.finish();
        }
    }
});
