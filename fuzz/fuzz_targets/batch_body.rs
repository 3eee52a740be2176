//! Batch bodies, plain and zlib-compressed (the first byte picks which).
//! Never a panic; an inflated body stays within its limit.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let flag = if first & 1 == 1 { 0x1 } else { 0 };
    if let Ok((body, _)) = rocketcore::broker::batch_body(Bytes::copy_from_slice(rest), flag, LIMIT)
    {
        assert!(body.len() <= LIMIT);
        if let Ok(entries) = rocketcore::broker::parse_batch(&body) {
            for e in entries {
                assert!(e.body.len() <= body.len());
            }
        }
    }
});
