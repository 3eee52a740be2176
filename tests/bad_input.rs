//! Bad input from one client closes or errors that client's connection
//! only: garbage, truncated frames, a 2 GiB length prefix, invalid JSON,
//! fields of the wrong type, unknown codes. Everyone else keeps being served.

mod common;

use common::*;
use rocketcore::remoting::codes::response_code as rs;
use rocketcore::remoting::RemotingCommand;

fn get_max_offset(topic: &str) -> RemotingCommand {
    let mut cmd = RemotingCommand::new_request(30);
    cmd.set_ext("topic", topic);
    cmd.set_ext("queueId", 0);
    cmd
}

#[test]
fn bad_clients_are_cut_off_and_good_ones_keep_working() {
    let dir = store_dir("bad-input");
    let server = Server::start_dev(&dir.path().join("store"), &["--shards", "2"]);
    let mut good = Client::connect(server.broker);
    let r = good
        .call(send_request("BadInputTopic", 0, b"hello", ""))
        .unwrap();
    assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);

    // Garbage: not a frame at all (the length says 0x4142... bytes).
    let mut c = Client::connect(server.broker);
    c.send_raw(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789").unwrap();
    assert!(c.closed_by_peer(), "garbage did not close the connection");

    // A 2 GiB length prefix is refused before anything is allocated.
    let mut c = Client::connect(server.broker);
    c.send_raw(&[0x7F, 0xFF, 0xFF, 0xFF, 0, 0, 0, 10]).unwrap();
    assert!(
        c.closed_by_peer(),
        "2 GiB frame did not close the connection"
    );

    // A negative length.
    let mut c = Client::connect(server.broker);
    c.send_raw(&[0xFF, 0xFF, 0xFF, 0xF0, 0, 0, 0, 10]).unwrap();
    assert!(
        c.closed_by_peer(),
        "negative length did not close the connection"
    );

    // Invalid JSON in the header.
    let mut c = Client::connect(server.broker);
    let header = b"{\"code\":30,,,}";
    let mut frame = Vec::new();
    frame.extend_from_slice(&((4 + header.len()) as u32).to_be_bytes());
    frame.extend_from_slice(&(header.len() as u32).to_be_bytes());
    frame.extend_from_slice(header);
    c.send_raw(&frame).unwrap();
    assert!(
        c.closed_by_peer(),
        "invalid JSON did not close the connection"
    );

    // A truncated frame, then the client goes away.
    let mut c = Client::connect(server.broker);
    c.send_raw(&frame[..frame.len() - 3]).unwrap();
    drop(c);

    // Wrong types in a well-formed header: an error answer, connection kept.
    let mut c = Client::connect(server.broker);
    let mut bad = get_max_offset("BadInputTopic");
    bad.set_ext("queueId", "not-a-number");
    let r = c.call(bad).unwrap();
    assert_eq!(r.code, rs::SYSTEM_ERROR);
    assert!(r.remark.unwrap_or_default().contains("queueId"));
    let mut bad_send = send_request("BadInputTopic", 0, b"x", "");
    bad_send.set_ext("e", "zero");
    assert_ne!(c.call(bad_send).unwrap().code, rs::SUCCESS);
    // Unknown request code: REQUEST_CODE_NOT_SUPPORTED, connection kept.
    let r = c.call(RemotingCommand::new_request(31337)).unwrap();
    assert_eq!(r.code, rs::REQUEST_CODE_NOT_SUPPORTED);
    // A bad topic name and an oversized message get clean refusals.
    assert_eq!(
        c.call(send_request("bad/topic", 0, b"x", "")).unwrap().code,
        rs::INVALID_PARAMETER
    );
    let huge = vec![7u8; 4 * 1024 * 1024 + 1];
    assert_eq!(
        c.call(send_request("BadInputTopic", 0, &huge, ""))
            .unwrap()
            .code,
        rs::MESSAGE_ILLEGAL
    );
    let r = c.call(get_max_offset("BadInputTopic")).unwrap();
    assert_eq!(r.code, rs::SUCCESS);

    // The first client never noticed any of it.
    let r = good
        .call(send_request("BadInputTopic", 0, b"still here", ""))
        .unwrap();
    assert_eq!(r.code, rs::SUCCESS, "{:?}", r.remark);
    let r = good.call(get_max_offset("BadInputTopic")).unwrap();
    assert_eq!(
        r.ext_i64("offset").unwrap(),
        2,
        "oversized and malformed sends stored nothing"
    );
}

#[test]
fn a_client_that_never_reads_is_throttled_not_buffered() {
    use bytes::BytesMut;
    use std::io::Write;
    let dir = store_dir("never-reads");
    let server = Server::start_dev(&dir.path().join("store"), &["--shards", "1"]);
    let mut setup = Client::connect(server.broker);
    for i in 0..200 {
        let r = setup
            .call(send_request("ThrottleTopic", 0, &[b'x'; 1024], ""))
            .unwrap();
        assert_eq!(r.code, rs::SUCCESS, "send {i}");
    }
    // Pipeline pulls (each answered with ~33 KB) and never read a byte.
    let mut frame = BytesMut::new();
    let mut pull = pull_request("throttle", "ThrottleTopic", 0, 0);
    pull.opaque = 1;
    pull.encode(&mut frame).unwrap();
    let mut raw = std::net::TcpStream::connect(server.broker).unwrap();
    raw.set_write_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let mut accepted = 0usize;
    const ATTEMPTS: usize = 200_000;
    for _ in 0..ATTEMPTS {
        if raw.write_all(&frame).is_err() {
            break;
        }
        accepted += 1;
    }
    // Without backpressure the broker would read all of them and queue
    // ~6 GB of replies; with it, the socket fills and writes stall.
    assert!(
        accepted < ATTEMPTS,
        "the broker kept reading requests whose replies nobody read"
    );
    // Everyone else is still served.
    let r = setup.call(get_max_offset("ThrottleTopic")).unwrap();
    assert_eq!(r.ext_i64("offset").unwrap(), 200);
    drop(raw);
}
