//! Frontend messages arrive from any client on the network: random bytes decoded in each
//! state of a connection (before SSL negotiation, before startup, ready for queries)
//! must give messages or errors, never a panic.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pgwire::messages::{DecodeContext, PgWireFrontendMessage, ProtocolVersion};

fuzz_target!(|data: &[u8]| {
    for state in 0..3 {
        let mut ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
        ctx.awaiting_frontend_ssl = state == 0;
        ctx.awaiting_frontend_startup = state <= 1;
        let mut buf = BytesMut::from(data);
        // Decode until the buffer holds no whole message or a message is refused.
        for _ in 0..1024 {
            match PgWireFrontendMessage::decode(&mut buf, &ctx) {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
    }
});
