//! InfluxDB line protocol arrives in HTTP bodies and files: any bytes must parse into a
//! point or a `ParseError` with a column inside the line, never panic.
#![no_main]

use bagbase::ingest::lineproto::parse::parse_line;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for line in text.split('\n') {
        if let Err(e) = parse_line(line) {
            assert!(e.column >= 1 && e.column <= line.len() + 1, "{e:?} in {line:?}");
        }
    }
});
