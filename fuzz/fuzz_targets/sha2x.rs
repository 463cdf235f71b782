//! The one-pass double hash (`store::sha2x`) against the `sha2` crate: a stream hash
//! and a chunk hash fed the same pieces, at any lengths and starting offsets, must give
//! exactly SHA-256 (a wrong chunk id would address the wrong bytes).
#![no_main]

use bagbase::store::sha2x::{update2, Sha256};
use libfuzzer_sys::fuzz_target;
use sha2::Digest;

fuzz_target!(|data: &[u8]| {
    let Some((head, bytes)) = data.split_first_chunk::<2>() else {
        return;
    };
    // The first byte sets how far the stream lane is into a block when the chunks
    // start; the second, the piece length pattern.
    let lead = (head[0] as usize).min(bytes.len());
    let step = 1 + head[1] as usize * 7;
    let mut stream = Sha256::default();
    stream.update(&bytes[..lead]);
    let mut pos = lead;
    while pos < bytes.len() {
        let end = (pos + step + pos % 61).min(bytes.len());
        let mut chunk = Sha256::default();
        update2(&mut stream, &mut chunk, &bytes[pos..end]);
        let want: [u8; 32] = sha2::Sha256::digest(&bytes[pos..end]).into();
        assert_eq!(chunk.finalize(), want, "chunk {pos}..{end}");
        pos = end;
    }
    let want: [u8; 32] = sha2::Sha256::digest(bytes).into();
    assert_eq!(stream.finalize(), want);
});
