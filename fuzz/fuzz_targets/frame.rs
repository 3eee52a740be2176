//! A connection's read buffer: frames cut and commands decoded until the
//! bytes run out or the connection would be closed. Never a panic.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rocketcore::remoting::{FrameDecoder, RemotingCommand};

fuzz_target!(|data: &[u8]| {
    let decoder = FrameDecoder::new();
    let mut buf = BytesMut::from(data);
    while let Ok(Some(cmd)) = RemotingCommand::decode(&mut buf, &decoder) {
        // What the broker does with a decoded command next: read its fields.
        let _ = cmd.ext_str_opt("topic");
        let _ = cmd.ext_i64("queueOffset");
        let mut out = BytesMut::new();
        let _ = cmd.encode(&mut out);
    }
});
