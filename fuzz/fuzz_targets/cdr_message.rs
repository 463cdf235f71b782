//! One ROS 2 `ros2msg` schema (input up to the first NUL) and a CDR message (the rest,
//! encapsulation header included), decoded: errors, never panics.
#![no_main]

use bagbase::ingest::message::msgdef::{self, Dialect};
use bagbase::ingest::message::decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let def = String::from_utf8_lossy(&data[..split]);
    let msg = data.get(split + 1..).unwrap_or(&[]);
    if let Ok(fields) = msgdef::parse("fuzz/msg/Msg", &def, Dialect::Ros2) {
        let t = msgdef::Type::Msg("fuzz/msg/Msg".into(), fields);
        let mut col = decode::Col::new(&t);
        if let Ok(mut b) = decode::Bytes::cdr(msg) {
            if decode::decode(&t, &mut col, &mut b, "msg").is_ok() {
                let _ = col.finish();
            }
        }
    }
});
