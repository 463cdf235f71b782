//! The two-lane cut search (`store::gear`) against `fastcdc`'s own loop: for any bytes
//! and any sizes `init` accepts, the same cut point (a different one would split files
//! differently from stores written before, and deduplicate nothing against them).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((head, bytes)) = data.split_first_chunk::<3>() else {
        return;
    };
    // Sizes from the first three bytes: powers of two from FastCDC's smallest up, small
    // enough that a short input crosses both masks and the two-lane stretches.
    let min = 64u32 << (head[0] % 8);
    let avg = (256u32 << (head[1] % 8)).max(min);
    let max = (1024u32 << (head[2] % 8)).max(avg);
    let gear = bagbase::store::gear::Gear::new(min, avg, max);
    let want = fastcdc::v2020::FastCDC::new(bytes, min, avg, max)
        .cut(0, bytes.len())
        .1;
    assert_eq!(gear.cut(bytes), want, "sizes {min}/{avg}/{max}");
});
