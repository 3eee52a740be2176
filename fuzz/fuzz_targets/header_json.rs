//! JSON headers with every client's quirks (lenient decoding). Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cmd) = rocketcore::remoting::header::decode_json(data) {
        let _ = cmd.ext_i32_opt("queueId");
    }
});
