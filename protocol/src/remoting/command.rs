//! `RemotingCommand`: one request or response with its header and body, and its
//! conversion to and from whole frames (spec §1.2–§1.6).
//!
//! A command is plain data. It is built on the shard that owns the connection,
//! and because the body is a [`Bytes`] handle it can be sent to another shard
//! without copying the body.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use super::codes::response_code;
use super::ext_fields::ExtFields;
use super::frame::{
    encode_frame_head, Frame, FrameDecoder, FrameError, SerializeType, FRAME_HEAD_BYTES,
};
use super::header::{self, HeaderCodecError};
use super::language::LanguageCode;
use super::version::SERVER_VERSION;

/// `flag` bit 0: set on responses, clear on requests. The requester matches a
/// response to its request by `opaque` only among frames with this bit set, so
/// ids chosen by the two sides never collide.
pub const RESPONSE_FLAG: i32 = 1 << 0;

/// `flag` bit 1: a oneway request. The receiver must not answer it, not even
/// with an error.
pub const ONEWAY_FLAG: i32 = 1 << 1;

/// One Remoting command: a request or a response.
///
/// Fields mirror Java's `RemotingCommand` so the spec reads straight onto them.
/// Other `flag` bits are kept as received but carry no meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotingCommand {
    /// Request code (`codes::request_code`) or response code (`codes::response_code`).
    pub code: i32,
    /// Sender language. Commands built by this server say `JAVA` (spec §1.4).
    pub language: LanguageCode,
    /// Sender version ordinal (`version` module).
    pub version: i32,
    /// Request id, chosen by the requester and copied into the response.
    pub opaque: i32,
    /// Bit set: [`RESPONSE_FLAG`], [`ONEWAY_FLAG`].
    pub flag: i32,
    /// Free text, mostly error messages. `None` is left out of the JSON header.
    pub remark: Option<String>,
    /// The custom header. `None` is left out of the JSON header; `Some` of an empty
    /// map is sent as `{}` (see [`ext_fields_mut`](Self::ext_fields_mut)).
    pub ext_fields: Option<ExtFields>,
    /// The body. A decoded body shares the read buffer (no copy); an empty body is
    /// `None`, as in Java.
    pub body: Option<Bytes>,
    /// More body, written after `body` piece by piece without ever being
    /// joined: a pull answer's records, straight from the store's tail
    /// cache. Always empty on decoded commands.
    pub body_parts: Vec<Bytes>,
}

/// Why a frame could not be turned into a command, or a command into a frame.
/// When decoding, either kind means: close the connection without answering.
#[derive(Debug, Error)]
pub enum CodecError {
    /// Framing: length prefix, header word or frame size.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// Header content: malformed JSON or binary header, or (when encoding) a value
    /// the binary header cannot carry.
    #[error(transparent)]
    Header(#[from] HeaderCodecError),
}

impl RemotingCommand {
    /// A request from this server (e.g. a broker-to-client notification).
    /// `opaque` is 0. The connection that sends the request assigns it, because
    /// ids are only unique per connection.
    pub fn new_request(code: i32) -> RemotingCommand {
        RemotingCommand {
            code,
            language: LanguageCode::Java,
            version: SERVER_VERSION,
            opaque: 0,
            flag: 0,
            remark: None,
            ext_fields: None,
            body: None,
            body_parts: Vec::new(),
        }
    }

    /// A response from this server. Pair it with [`reply_to`](Self::reply_to) to
    /// address it.
    pub fn new_response(code: i32, remark: Option<String>) -> RemotingCommand {
        RemotingCommand {
            flag: RESPONSE_FLAG,
            remark,
            ..RemotingCommand::new_request(code)
        }
    }

    /// Makes this command the response to `request`: copies its `opaque`, sets
    /// the response bit, clears the oneway bit. The caller must not send a reply
    /// to a oneway request; see [`is_oneway`](Self::is_oneway).
    pub fn reply_to(mut self, request: &RemotingCommand) -> RemotingCommand {
        self.opaque = request.opaque;
        self.flag = (self.flag | RESPONSE_FLAG) & !ONEWAY_FLAG;
        self
    }

    /// The answer to a request code this server does not handle, with the
    /// remark Java sends (leading space included).
    pub fn not_supported_reply(request: &RemotingCommand) -> RemotingCommand {
        RemotingCommand::new_response(
            response_code::REQUEST_CODE_NOT_SUPPORTED,
            Some(format!(" request type {} not supported", request.code)),
        )
        .reply_to(request)
    }

    /// Builder: sets the remark.
    pub fn with_remark(mut self, remark: impl Into<String>) -> RemotingCommand {
        self.remark = Some(remark.into());
        self
    }

    /// Builder: sets the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> RemotingCommand {
        self.body = Some(body.into());
        self
    }

    /// Bytes of body in all: `body` and every one of `body_parts`.
    pub fn body_len(&self) -> usize {
        self.body.as_ref().map_or(0, Bytes::len)
            + self.body_parts.iter().map(Bytes::len).sum::<usize>()
    }

    /// The body's pieces in wire order.
    pub fn body_pieces(&self) -> impl Iterator<Item = &Bytes> {
        self.body.iter().chain(&self.body_parts)
    }

    /// Whether this is a response (flag bit 0).
    pub fn is_response(&self) -> bool {
        self.flag & RESPONSE_FLAG != 0
    }

    /// Whether this is a oneway request (flag bit 1), which must get no answer.
    pub fn is_oneway(&self) -> bool {
        self.flag & ONEWAY_FLAG != 0
    }

    /// Sets the response bit.
    pub fn mark_response(&mut self) {
        self.flag |= RESPONSE_FLAG;
    }

    /// Sets the oneway bit.
    pub fn mark_oneway(&mut self) {
        self.flag |= ONEWAY_FLAG;
    }

    /// Parses the header of `frame` and takes its body without copying it.
    pub fn from_frame(frame: Frame) -> Result<RemotingCommand, HeaderCodecError> {
        let mut command = header::decode(frame.serialize_type, &frame.header)?;
        command.body = (!frame.body.is_empty()).then_some(frame.body);
        Ok(command)
    }

    /// Removes the first complete command from a connection's read buffer.
    /// `Ok(None)` means more bytes are needed. Any error means: close the connection.
    pub fn decode(
        buf: &mut BytesMut,
        decoder: &FrameDecoder,
    ) -> Result<Option<RemotingCommand>, CodecError> {
        Ok(RemotingCommand::decode_typed(buf, decoder)?.map(|(command, _)| command))
    }

    /// [`decode`](Self::decode), also telling the header's encoding, so
    /// that the answer can use the one the requester chose.
    pub fn decode_typed(
        buf: &mut BytesMut,
        decoder: &FrameDecoder,
    ) -> Result<Option<(RemotingCommand, SerializeType)>, CodecError> {
        match decoder.decode(buf)? {
            Some(frame) => {
                let serialize_type = frame.serialize_type;
                Ok(Some((RemotingCommand::from_frame(frame)?, serialize_type)))
            }
            None => Ok(None),
        }
    }

    /// Appends this command as a complete frame with a JSON header, the only
    /// encoding every client can read (spec §1.3). Leaves `out` unchanged on
    /// error.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), CodecError> {
        self.encode_as(SerializeType::Json, out)
    }

    /// Appends this command as a complete frame with a header in `serialize_type`.
    /// Leaves `out` unchanged on error.
    pub fn encode_as(
        &self,
        serialize_type: SerializeType,
        out: &mut BytesMut,
    ) -> Result<(), CodecError> {
        self.encode_head_in(serialize_type, out)?;
        for piece in self.body_pieces() {
            out.put_slice(piece);
        }
        Ok(())
    }

    /// Appends everything up to the body: length prefix, header word, JSON header.
    /// The length prefix counts the body, which the caller writes next. That
    /// lets a pull response go out as one vectored write of this head and the
    /// stored message bytes, with no copy of the body. Leaves `out` unchanged on
    /// error.
    pub fn encode_head(&self, out: &mut BytesMut) -> Result<(), CodecError> {
        self.encode_head_in(SerializeType::Json, out)
    }

    /// [`encode_head`](Self::encode_head) with a header in `serialize_type`.
    pub fn encode_head_in(
        &self,
        serialize_type: SerializeType,
        out: &mut BytesMut,
    ) -> Result<(), CodecError> {
        let start = out.len();
        let result = self.encode_head_as(serialize_type, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_head_as(
        &self,
        serialize_type: SerializeType,
        out: &mut BytesMut,
    ) -> Result<(), CodecError> {
        let start = out.len();
        // The header length is known only after the header is written, so
        // the 8 head bytes are written as zeros first and filled in afterwards.
        // The other option, encoding the header into a scratch buffer, costs a
        // copy on every command.
        out.put_bytes(0, FRAME_HEAD_BYTES);
        header::encode(serialize_type, self, out)?;
        let header_bytes = out.len() - start - FRAME_HEAD_BYTES;
        let head = encode_frame_head(serialize_type, header_bytes, self.body_len())?;
        out[start..start + FRAME_HEAD_BYTES].copy_from_slice(&head);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remoting::alloc_probe::largest_allocation_during;
    use crate::remoting::codes::request_code;
    use crate::remoting::frame::MAX_FRAME_BYTES;
    use crate::remoting::header::tests::{
        as_binary_reads_it, spec_route_request, SPEC_ROUTE_REQUEST_JSON,
    };
    use proptest::prelude::*;

    /// Cases per property test.
    const CASES: u32 = 1024;

    /// A body in pieces is framed exactly as the same bytes in one piece.
    #[test]
    fn body_parts_encode_as_one_body() {
        let whole = RemotingCommand::new_response(0, None).with_body(&b"abcdefgh"[..]);
        let mut parts = RemotingCommand::new_response(0, None).with_body(&b"ab"[..]);
        parts.body_parts = vec![
            Bytes::from_static(b"cde"),
            Bytes::new(),
            Bytes::from_static(b"fgh"),
        ];
        assert_eq!(parts.body_len(), 8);
        for serialize_type in [SerializeType::Json, SerializeType::RocketMq] {
            let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
            whole.encode_as(serialize_type, &mut a).unwrap();
            parts.encode_as(serialize_type, &mut b).unwrap();
            assert_eq!(a, b);
            let (mut head, mut whole_head) = (BytesMut::new(), BytesMut::new());
            parts.encode_head_in(serialize_type, &mut head).unwrap();
            whole
                .encode_head_in(serialize_type, &mut whole_head)
                .unwrap();
            assert_eq!(head, whole_head, "the head announces every piece");
        }
    }

    #[test]
    fn appendix_a_frame_byte_for_byte() {
        let mut expected = vec![0x00, 0x00, 0x00, 0x7F, 0x00, 0x00, 0x00, 0x7B];
        expected.extend_from_slice(SPEC_ROUTE_REQUEST_JSON.as_bytes());

        let mut out = BytesMut::new();
        spec_route_request()
            .encode(&mut out)
            .expect("small command");
        assert_eq!(&out[..], &expected[..]);

        let decoded = RemotingCommand::decode(&mut out, &FrameDecoder::new())
            .expect("valid frame")
            .expect("complete frame");
        assert_eq!(decoded, spec_route_request());
        assert!(out.is_empty());
    }

    #[test]
    fn flag_bits_are_read_independently_of_other_bits() {
        let mut command = RemotingCommand::new_request(request_code::UPDATE_CONSUMER_OFFSET);
        assert!(!command.is_response() && !command.is_oneway());
        command.mark_oneway();
        assert_eq!(command.flag, 2);
        assert!(command.is_oneway() && !command.is_response());
        command.flag = 0x7FFF_FFF0 | ONEWAY_FLAG;
        assert!(command.is_oneway() && !command.is_response());
        command.mark_response();
        assert!(command.is_response());
        assert_eq!(RemotingCommand::new_response(0, None).flag, 1);
    }

    #[test]
    fn reply_to_copies_opaque_and_sets_only_the_response_bit() {
        let mut request = RemotingCommand::new_request(request_code::GET_ROUTEINFO_BY_TOPIC);
        request.opaque = -42;
        request.mark_oneway();
        request.language = LanguageCode::Go;
        request.version = 317;
        let response = RemotingCommand::new_response(0, None).reply_to(&request);
        assert_eq!(response.opaque, -42);
        assert_eq!(response.flag, RESPONSE_FLAG);
        assert_eq!(response.language, LanguageCode::Java);
        assert_eq!(response.version, SERVER_VERSION);
    }

    #[test]
    fn unsupported_codes_get_javas_remark() {
        let mut request = RemotingCommand::new_request(9999);
        request.opaque = 12;
        let reply = RemotingCommand::not_supported_reply(&request);
        assert_eq!(reply.code, response_code::REQUEST_CODE_NOT_SUPPORTED);
        assert_eq!(
            reply.remark.as_deref(),
            Some(" request type 9999 not supported")
        );
        assert_eq!(reply.opaque, 12);
        assert!(reply.is_response());
    }

    #[test]
    fn body_follows_the_header_and_empty_bodies_read_as_none() {
        let command = RemotingCommand::new_request(request_code::SEND_MESSAGE_V2)
            .with_ext("b", "T")
            .with_body(Bytes::from_static(b"hello"));
        let mut out = BytesMut::new();
        command.encode(&mut out).expect("small command");
        assert_eq!(&out[out.len() - 5..], b"hello");
        let decoded = RemotingCommand::decode(&mut out, &FrameDecoder::new())
            .expect("valid")
            .expect("complete");
        assert_eq!(decoded, command);

        let mut out = BytesMut::new();
        command
            .clone()
            .with_body(Bytes::new())
            .encode(&mut out)
            .expect("small command");
        let decoded = RemotingCommand::decode(&mut out, &FrameDecoder::new())
            .expect("valid")
            .expect("complete");
        assert_eq!(decoded.body, None);
    }

    #[test]
    fn encode_head_announces_the_body_it_leaves_out() {
        let command = RemotingCommand::new_response(0, None).with_body(vec![9u8; 300]);
        let mut head = BytesMut::new();
        command.encode_head(&mut head).expect("small command");
        let mut whole = BytesMut::new();
        command.encode(&mut whole).expect("small command");
        assert_eq!(&whole[..head.len()], &head[..]);
        assert_eq!(whole.len(), head.len() + 300);
    }

    #[test]
    fn failed_encodes_leave_the_buffer_as_it_was() {
        let mut out = BytesMut::from(&b"earlier frame"[..]);
        let pop = RemotingCommand::new_request(request_code::POP_FAMILY_FIRST);
        assert!(matches!(
            pop.encode_as(SerializeType::RocketMq, &mut out),
            Err(CodecError::Header(
                HeaderCodecError::CodeNotRepresentable { .. }
            ))
        ));
        assert_eq!(&out[..], b"earlier frame");

        let oversized =
            RemotingCommand::new_response(0, None).with_body(vec![0u8; MAX_FRAME_BYTES]);
        assert!(matches!(
            oversized.encode(&mut out),
            Err(CodecError::Frame(FrameError::TooLarge { .. }))
        ));
        assert!(matches!(
            oversized.encode_head(&mut out),
            Err(CodecError::Frame(FrameError::TooLarge { .. }))
        ));
        assert_eq!(&out[..], b"earlier frame");
    }

    #[test]
    fn header_errors_surface_after_framing_succeeds() {
        let mut out = BytesMut::new();
        Frame {
            serialize_type: SerializeType::Json,
            header: Bytes::from_static(b"{\"flag\":0}"),
            body: Bytes::new(),
        }
        .encode(&mut out)
        .expect("small frame");
        assert!(matches!(
            RemotingCommand::decode(&mut out, &FrameDecoder::new()),
            Err(CodecError::Header(HeaderCodecError::Json(_)))
        ));
    }

    fn command_strategy() -> impl Strategy<Value = (SerializeType, RemotingCommand)> {
        let small_text = "[a-zA-Z0-9 \\u{1}\\u{2}é€]{0,12}";
        (
            prop_oneof![Just(SerializeType::Json), Just(SerializeType::RocketMq)],
            i32::from(i16::MIN)..=i32::from(i16::MAX),
            proptest::sample::select(LanguageCode::ALL.to_vec()),
            i32::from(i16::MIN)..=i32::from(i16::MAX),
            any::<i32>(),
            any::<i32>(),
            proptest::option::of(small_text),
            proptest::option::of(proptest::collection::btree_map(
                small_text,
                small_text,
                0..5,
            )),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..100)),
        )
            .prop_map(
                |(
                    serialize_type,
                    code,
                    language,
                    version,
                    opaque,
                    flag,
                    remark,
                    ext_fields,
                    body,
                )| {
                    let command = RemotingCommand {
                        code,
                        language,
                        version,
                        opaque,
                        flag,
                        remark,
                        ext_fields: ext_fields.map(|map| map.into_iter().collect()),
                        body: body.map(Bytes::from),
                        body_parts: Vec::new(),
                    };
                    (serialize_type, command)
                },
            )
    }

    /// What the receiver sees: no empty bodies, and no empty strings through the
    /// binary header.
    fn as_received(serialize_type: SerializeType, mut command: RemotingCommand) -> RemotingCommand {
        command.body = command.body.filter(|body| !body.is_empty());
        match serialize_type {
            SerializeType::Json => command,
            SerializeType::RocketMq => as_binary_reads_it(command),
        }
    }

    proptest! {
        // Cheap cases; more of them make the never-panic properties worth more.
        #![proptest_config(ProptestConfig::with_cases(CASES))]
        #[test]
        fn command_streams_round_trip_through_any_chunking(
            commands in proptest::collection::vec(command_strategy(), 0..8),
            chunk_sizes in proptest::collection::vec(1usize..64, 1..12),
        ) {
            let mut stream = BytesMut::new();
            for (serialize_type, command) in &commands {
                command.encode_as(*serialize_type, &mut stream).expect("representable command");
            }

            let decoder = FrameDecoder::new();
            let mut read_buffer = BytesMut::new();
            let mut decoded = Vec::new();
            let mut rest = &stream[..];
            for size in chunk_sizes.iter().cycle() {
                let (chunk, remaining) = rest.split_at((*size).min(rest.len()));
                read_buffer.extend_from_slice(chunk);
                rest = remaining;
                while let Some(command) = RemotingCommand::decode(&mut read_buffer, &decoder).expect("own output decodes") {
                    decoded.push(command);
                }
                if rest.is_empty() {
                    break;
                }
            }

            prop_assert!(read_buffer.is_empty());
            let expected: Vec<RemotingCommand> = commands
                .into_iter()
                .map(|(serialize_type, command)| as_received(serialize_type, command))
                .collect();
            prop_assert_eq!(decoded, expected);
        }

        #[test]
        fn arbitrary_streams_never_panic_or_over_allocate(
            stream in proptest::collection::vec(any::<u8>(), 0..300),
            damage in (0usize..300, any::<u8>()),
            chunk in 1usize..40,
        ) {
            // Start from a valid frame and damage one byte, so that both the frame
            // and header decoders are reached, not just the length checks.
            let mut valid = BytesMut::new();
            spec_route_request().with_body(stream.clone()).encode(&mut valid).expect("small command");
            let mut damaged = valid.to_vec();
            let at = damage.0 % damaged.len();
            damaged[at] = damage.1;

            for input in [&stream[..], &damaged[..]] {
                let decoder = FrameDecoder::new();
                let mut read_buffer = BytesMut::new();
                let ((), largest) = largest_allocation_during(|| {
                    for piece in input.chunks(chunk) {
                        read_buffer.extend_from_slice(piece);
                        while let Ok(Some(command)) = RemotingCommand::decode(&mut read_buffer, &decoder) {
                            drop(command);
                        }
                    }
                });
                // The read buffer itself grows to hold the input; nothing may be
                // sized from a length field.
                prop_assert!(largest <= 4 * input.len() + 4096, "allocated {} for {} input bytes", largest, input.len());
            }
        }
    }
}
