//! SHA-256 of two streams over the same bytes in one pass: the cutter's whole-stream
//! hash and the hash of the chunk it is cutting. Owns the hashing only; the cuts are
//! `gear.rs`'s and what an id means is `id.rs`'s.
//!
//! With the x86 SHA extensions one block's 32 `sha256rnds2` steps depend on each other,
//! so a single stream waits on the instruction's latency; two independent streams in
//! the same loop fill those gaps (Linux's `sha256_ni_finup2x` does the same for
//! dm-verity). The chunk's own hash used to be a second full pass on a worker thread:
//! together they were 30 % of an ingest's CPU (docs/design.md "Chunk pipeline").
//! Elsewhere both lanes go through `sha2`'s block function one after the other.

use sha2::digest::generic_array::GenericArray;

/// A running SHA-256: chaining value, unfinished block, bytes taken.
#[derive(Clone)]
pub struct Sha256 {
    h: [u32; 8],
    buf: [u8; 64],
    buf_len: usize,
    len: u64,
}

const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

impl Default for Sha256 {
    fn default() -> Self {
        Sha256 {
            h: IV,
            buf: [0; 64],
            buf_len: 0,
            len: 0,
        }
    }
}

impl Sha256 {
    pub fn update(&mut self, data: &[u8]) {
        let rest = self.absorb_head(data);
        let (blocks, tail) = rest.as_chunks::<64>();
        compress(&mut self.h, blocks);
        self.keep_tail(tail);
    }

    pub fn finalize(mut self) -> [u8; 32] {
        let bits = self.len.wrapping_mul(8);
        let mut pad = [0u8; 72];
        pad[0] = 0x80;
        let zeros = (55usize.wrapping_sub(self.buf_len)) % 64;
        pad[1 + zeros..9 + zeros].copy_from_slice(&bits.to_be_bytes());
        self.update(&pad[..9 + zeros]);
        debug_assert_eq!(self.buf_len, 0);
        let mut out = [0u8; 32];
        for (o, h) in out.chunks_exact_mut(4).zip(self.h) {
            o.copy_from_slice(&h.to_be_bytes());
        }
        out
    }

    /// Counts `data` and completes the unfinished block from its start (compressing
    /// the block once full); returns the bytes after those.
    fn absorb_head<'d>(&mut self, data: &'d [u8]) -> &'d [u8] {
        self.len += data.len() as u64;
        if self.buf_len == 0 {
            return data;
        }
        let n = (64 - self.buf_len).min(data.len());
        self.buf[self.buf_len..self.buf_len + n].copy_from_slice(&data[..n]);
        self.buf_len += n;
        if self.buf_len == 64 {
            let block = self.buf;
            compress(&mut self.h, &[block]);
            self.buf_len = 0;
        }
        &data[n..]
    }

    fn keep_tail(&mut self, tail: &[u8]) {
        if !tail.is_empty() {
            self.buf[..tail.len()].copy_from_slice(tail);
            self.buf_len = tail.len();
        }
    }
}

/// Feeds `data` to both `a` and `b` (same result as `a.update(data); b.update(data)`).
pub fn update2(a: &mut Sha256, b: &mut Sha256, data: &[u8]) {
    let rest_a = a.absorb_head(data);
    let rest_b = b.absorb_head(data);
    let (blocks_a, tail_a) = rest_a.as_chunks::<64>();
    let (blocks_b, tail_b) = rest_b.as_chunks::<64>();
    let both = blocks_a.len().min(blocks_b.len());
    compress2(&mut a.h, &blocks_a[..both], &mut b.h, &blocks_b[..both]);
    compress(&mut a.h, &blocks_a[both..]);
    compress(&mut b.h, &blocks_b[both..]);
    a.keep_tail(tail_a);
    b.keep_tail(tail_b);
}

/// Feeds `piece` to `stream` and returns the SHA-256 of `piece` alone: a chunk's id
/// while the stream's hash goes on.
pub fn take_piece(stream: &mut Sha256, piece: &[u8]) -> [u8; 32] {
    let mut own = Sha256::default();
    update2(stream, &mut own, piece);
    own.finalize()
}

fn compress(h: &mut [u32; 8], blocks: &[[u8; 64]]) {
    for b in blocks {
        sha2::compress256(h, std::slice::from_ref(GenericArray::from_slice(b)));
    }
}

/// Compresses `a` into `ha` and `b` into `hb` (the same number of blocks).
fn compress2(ha: &mut [u32; 8], a: &[[u8; 64]], hb: &mut [u32; 8], b: &[[u8; 64]]) {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if shani::available() {
        // SAFETY: the CPU has the instructions `digest2` is compiled for.
        unsafe { shani::digest2(ha, a, hb, b) };
        return;
    }
    compress(ha, a);
    compress(hb, b);
}

#[cfg(target_arch = "x86_64")]
mod shani {
    //! Two-lane version of the SHA-NI block function of the `sha2` crate (x86.rs).
    use std::arch::x86_64::*;

    pub fn available() -> bool {
        is_x86_feature_detected!("sha")
            && is_x86_feature_detected!("sse2")
            && is_x86_feature_detected!("ssse3")
            && is_x86_feature_detected!("sse4.1")
    }

    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    /// One lane's state: the two halves SHA-NI works on.
    struct Lane {
        abef: __m128i,
        cdgh: __m128i,
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn load(h: &[u32; 8]) -> Lane {
        let p = h.as_ptr() as *const __m128i;
        let dcba = _mm_loadu_si128(p);
        let efgh = _mm_loadu_si128(p.add(1));
        let cdab = _mm_shuffle_epi32(dcba, 0xB1);
        let efgh = _mm_shuffle_epi32(efgh, 0x1B);
        Lane {
            abef: _mm_alignr_epi8(cdab, efgh, 8),
            cdgh: _mm_blend_epi16(efgh, cdab, 0xF0),
        }
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn store(l: &Lane, h: &mut [u32; 8]) {
        let feba = _mm_shuffle_epi32(l.abef, 0x1B);
        let dchg = _mm_shuffle_epi32(l.cdgh, 0xB1);
        let p = h.as_mut_ptr() as *mut __m128i;
        _mm_storeu_si128(p, _mm_blend_epi16(feba, dchg, 0xF0));
        _mm_storeu_si128(p.add(1), _mm_alignr_epi8(dchg, feba, 8));
    }

    /// Message words 4i..4i+4 of `block`, big-endian.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn words(block: &[u8; 64], i: usize) -> __m128i {
        let mask = _mm_set_epi64x(0x0C0D_0E0F_0809_0A0B, 0x0405_0607_0001_0203);
        _mm_shuffle_epi8(
            _mm_loadu_si128((block.as_ptr() as *const __m128i).add(i)),
            mask,
        )
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn schedule(v0: __m128i, v1: __m128i, v2: __m128i, v3: __m128i) -> __m128i {
        let t1 = _mm_sha256msg1_epu32(v0, v1);
        let t2 = _mm_alignr_epi8(v3, v2, 4);
        _mm_sha256msg2_epu32(_mm_add_epi32(t1, t2), v3)
    }

    /// Rounds 4i..4i+4 with message words `w`.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn rounds4(l: &mut Lane, w: __m128i, i: usize) {
        let k = _mm_loadu_si128(K.as_ptr().add(4 * i) as *const __m128i);
        let t1 = _mm_add_epi32(w, k);
        l.cdgh = _mm_sha256rnds2_epu32(l.cdgh, l.abef, t1);
        l.abef = _mm_sha256rnds2_epu32(l.abef, l.cdgh, _mm_shuffle_epi32(t1, 0x0E));
    }

    /// Both lanes' 64 rounds for one block each, written side by side so the two
    /// dependency chains overlap.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn block2(a: &mut Lane, ba: &[u8; 64], b: &mut Lane, bb: &[u8; 64]) {
        let (sa, sb) = ((a.abef, a.cdgh), (b.abef, b.cdgh));
        let mut wa = [words(ba, 0), words(ba, 1), words(ba, 2), words(ba, 3)];
        let mut wb = [words(bb, 0), words(bb, 1), words(bb, 2), words(bb, 3)];
        for i in 0..16 {
            if i >= 4 {
                // w[i % 4] becomes words 4i..4i+4 from the four before it.
                let j = |d: usize| (i + d) % 4;
                wa[j(0)] = schedule(wa[j(0)], wa[j(1)], wa[j(2)], wa[j(3)]);
                wb[j(0)] = schedule(wb[j(0)], wb[j(1)], wb[j(2)], wb[j(3)]);
            }
            rounds4(a, wa[i % 4], i);
            rounds4(b, wb[i % 4], i);
        }
        a.abef = _mm_add_epi32(a.abef, sa.0);
        a.cdgh = _mm_add_epi32(a.cdgh, sa.1);
        b.abef = _mm_add_epi32(b.abef, sb.0);
        b.cdgh = _mm_add_epi32(b.cdgh, sb.1);
    }

    /// # Safety
    /// The CPU must have SHA, SSE2, SSSE3 and SSE4.1 (`available`).
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub unsafe fn digest2(ha: &mut [u32; 8], a: &[[u8; 64]], hb: &mut [u32; 8], b: &[[u8; 64]]) {
        let (mut la, mut lb) = (load(ha), load(hb));
        for (ba, bb) in a.iter().zip(b) {
            block2(&mut la, ba, &mut lb, bb);
        }
        store(&la, ha);
        store(&lb, hb);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    fn reference(data: &[u8]) -> [u8; 32] {
        sha2::Sha256::digest(data).into()
    }

    fn digest(data: &[u8]) -> [u8; 32] {
        let mut s = Sha256::default();
        s.update(data);
        s.finalize()
    }

    #[test]
    fn one_lane_matches_sha2() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for len in [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 5000] {
            assert_eq!(
                digest(&data[..len]),
                reference(&data[..len]),
                "length {len}"
            );
            // In uneven pieces.
            let mut s = Sha256::default();
            for piece in data[..len].chunks(37) {
                s.update(piece);
            }
            assert_eq!(s.finalize(), reference(&data[..len]), "pieces of {len}");
        }
    }

    /// The cutter's use: a stream hash across chunks, each chunk hashed from its start.
    #[test]
    fn two_lanes_match_sha2() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut stream = Sha256::default();
        let mut pos = 0;
        let mut n = 0;
        while pos < data.len() {
            // Chunk lengths on and off block boundaries, long and short.
            let len = [1, 63, 64, 65, 129, 4096, 10_007, 65_536, 3][n % 9].min(data.len() - pos);
            let chunk = &data[pos..pos + len];
            assert_eq!(
                take_piece(&mut stream, chunk),
                reference(chunk),
                "chunk {n}"
            );
            pos += len;
            n += 1;
        }
        assert_eq!(stream.finalize(), reference(&data));
        // Both lanes mid-block at different offsets.
        let (mut a, mut b) = (Sha256::default(), Sha256::default());
        a.update(&data[..17]);
        b.update(&data[..40]);
        update2(&mut a, &mut b, &data[1000..200_000]);
        let mut want_a = data[..17].to_vec();
        want_a.extend_from_slice(&data[1000..200_000]);
        let mut want_b = data[..40].to_vec();
        want_b.extend_from_slice(&data[1000..200_000]);
        assert_eq!(a.finalize(), reference(&want_a));
        assert_eq!(b.finalize(), reference(&want_b));
    }
}
