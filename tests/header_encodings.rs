//! The answer to a request comes back with its header in the encoding the
//! request used: ROCKETMQ binary for binary, JSON for JSON. A client that
//! writes binary headers reads them too (Java and Rust clients can be set
//! to), and C++ 1.x, which writes JSON, keeps getting JSON.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use bytes::BytesMut;
use common::*;
use rocketcore::remoting::codes::response_code as rs;
use rocketcore::remoting::{FrameDecoder, RemotingCommand, SerializeType};

/// Writes `cmd` with a header in `header_type` and reads one answer frame:
/// the encoding its header word names, and the command.
fn call_raw(
    stream: &mut std::net::TcpStream,
    cmd: &RemotingCommand,
    header_type: SerializeType,
) -> (u8, RemotingCommand) {
    let mut out = BytesMut::new();
    cmd.encode_as(header_type, &mut out).expect("encodable");
    stream.write_all(&out).expect("request written");
    let mut buf = BytesMut::new();
    let decoder = FrameDecoder::new();
    let mut chunk = [0u8; 4096];
    for _ in 0..1000 {
        if buf.len() >= 8 {
            let encoding = buf[4];
            if let Some((answer, _)) =
                RemotingCommand::decode_typed(&mut buf, &decoder).expect("a valid frame")
            {
                return (encoding, answer);
            }
        }
        let n = stream.read(&mut chunk).expect("answer read");
        assert!(n > 0, "the broker closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
    panic!("no complete answer");
}

#[test]
fn answers_use_the_header_encoding_of_their_request() {
    let dir = store_dir("header-encodings");
    let server = Server::start_dev(&dir.path().join("store"), &["--shards", "2"]);
    let mut stream = std::net::TcpStream::connect(server.broker).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    // Queues 0 and 1 live on different shards, so one of the two sends is
    // forwarded: the encoding survives the hop.
    for (opaque, queue) in [(1, 0), (2, 1)] {
        let mut send = send_request("EncodingTopic", queue, b"binary", "");
        send.opaque = opaque;
        let (encoding, answer) = call_raw(&mut stream, &send, SerializeType::RocketMq);
        assert_eq!(encoding, 1, "a binary request gets a binary answer");
        assert_eq!(answer.opaque, opaque);
        assert_eq!(answer.code, rs::SUCCESS, "{:?}", answer.remark);
        assert_eq!(answer.ext_i32("queueId"), Ok(queue));
        assert_eq!(answer.ext_i64("queueOffset"), Ok(0));
        assert_eq!(answer.ext_str("msgId").map(str::len), Ok(32));
    }

    let mut send = send_request("EncodingTopic", 0, b"json", "");
    send.opaque = 3;
    let (encoding, answer) = call_raw(&mut stream, &send, SerializeType::Json);
    assert_eq!(encoding, 0, "a JSON request gets a JSON answer");
    assert_eq!(answer.code, rs::SUCCESS, "{:?}", answer.remark);
    assert_eq!(answer.ext_i64("queueOffset"), Ok(1));

    // A pull in binary gets both messages of queue 0, body intact.
    let mut pull = pull_request("encoding-group", "EncodingTopic", 0, 0);
    pull.opaque = 4;
    let (encoding, answer) = call_raw(&mut stream, &pull, SerializeType::RocketMq);
    assert_eq!(encoding, 1);
    assert_eq!(answer.code, rs::SUCCESS, "{:?}", answer.remark);
    assert_eq!(answer.ext_i64("nextBeginOffset"), Ok(2));
    let body = answer.body.expect("messages");
    assert!(body.windows(6).any(|w| w == b"binary"));
    assert!(body.windows(4).any(|w| w == b"json"));
}
