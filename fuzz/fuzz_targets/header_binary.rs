//! ROCKETMQ binary headers. Never a panic; a header that decodes encodes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cmd) = rocketcore::remoting::header::decode_binary(data) {
        let mut out = bytes::BytesMut::new();
        let _ = cmd.encode(&mut out);
    }
});
