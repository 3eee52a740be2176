//! Length-prefixed framing of the Remoting protocol (spec §1.2, §1.3).
//!
//! A frame is `length (i32) · headerWord (i32) · header · body`. `length` counts
//! every byte after itself. The top byte of `headerWord` is the serialize type and
//! its low 24 bits are the header length. This layer knows nothing about what is
//! inside the header: it cuts frames out of a connection's read buffer and checks
//! the few numbers that say how big they are.
//!
//! The decoder is the first code to see a peer's bytes. It rejects a frame
//! by its length prefix alone, before that many bytes are buffered, so a 2 GiB
//! prefix costs four bytes of memory, not 2 GiB. It never reserves buffer space
//! and allocates nothing sized by a number the peer sent; its only allocation is
//! the small fixed bookkeeping `Bytes` needs to share the buffer. The frames it
//! returns are slices of the read buffer (no copy), so a body can be moved to
//! another shard as a [`Bytes`] handle.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Largest frame accepted, counting the 4-byte length prefix. This is Java's
/// default `com.rocketmq.remoting.frameMaxLength`, so any frame a stock client
/// accepts we accept too, and the reverse.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Size of the big-endian `length` field that opens every frame.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// Size of the `headerWord` (serialize type + header length) after the prefix.
pub const HEADER_WORD_BYTES: usize = 4;

/// Bytes every frame has before its header: length prefix plus header word.
pub const FRAME_HEAD_BYTES: usize = LENGTH_PREFIX_BYTES + HEADER_WORD_BYTES;

/// Width of the header-length part of `headerWord`.
const HEADER_LENGTH_BITS: u32 = 24;

/// Mask that keeps the header length out of `headerWord`.
const HEADER_LENGTH_MASK: u32 = (1 << HEADER_LENGTH_BITS) - 1;

/// Largest header the 24-bit header-length field can describe.
pub const MAX_HEADER_BYTES: usize = HEADER_LENGTH_MASK as usize;

/// How the header of a frame is encoded (top byte of `headerWord`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SerializeType {
    /// `0`: UTF-8 JSON object. Every response this server sends uses JSON,
    /// because the C++ 1.x client does not mask the type byte out of the header
    /// length and so cannot read anything else.
    Json,
    /// `1`: the compact binary ("ROCKETMQ") header.
    RocketMq,
}

impl SerializeType {
    /// The serialize type with wire value `byte`, if there is one.
    pub fn from_byte(byte: u8) -> Option<SerializeType> {
        match byte {
            0 => Some(SerializeType::Json),
            1 => Some(SerializeType::RocketMq),
            _ => None,
        }
    }

    /// The wire value of this serialize type.
    pub fn byte(self) -> u8 {
        match self {
            SerializeType::Json => 0,
            SerializeType::RocketMq => 1,
        }
    }
}

/// One frame cut out of a byte stream. The header is not parsed yet.
///
/// `header` and `body` share the read buffer's allocation: holding a body keeps
/// that whole read chunk alive, which is the price of not copying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Encoding of `header`.
    pub serialize_type: SerializeType,
    /// Header bytes, encoded as `serialize_type` says.
    pub header: Bytes,
    /// Everything after the header. Empty when the frame has no body.
    pub body: Bytes,
}

impl Frame {
    /// Writes this frame to `out`. Leaves `out` unchanged on error.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), FrameError> {
        let head = encode_frame_head(self.serialize_type, self.header.len(), self.body.len())?;
        out.reserve(head.len() + self.header.len() + self.body.len());
        out.put_slice(&head);
        out.put_slice(&self.header);
        out.put_slice(&self.body);
        Ok(())
    }
}

/// Why a frame could not be cut out of the stream or written to it. A peer that
/// sends any of these is out of sync or hostile. Its connection cannot be
/// resynchronised and must be closed, without a response (Java does the same).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The length prefix is negative. A "2 GiB" prefix (`0x80000000`) lands here.
    #[error("frame length prefix {length} is negative")]
    NegativeLength {
        /// The length prefix as read.
        length: i32,
    },
    /// The length prefix leaves no room for the header word.
    #[error("frame length prefix {length} is shorter than the {min}-byte header word every frame holds", min = HEADER_WORD_BYTES)]
    TooShort {
        /// The length prefix as read.
        length: i32,
    },
    /// The frame, counting its length prefix, is larger than allowed.
    #[error("frame of {frame_bytes} bytes exceeds the limit of {max_frame_bytes} bytes")]
    TooLarge {
        /// Size of the whole frame, length prefix included.
        frame_bytes: u64,
        /// The limit in force.
        max_frame_bytes: usize,
    },
    /// The top byte of the header word is neither JSON (0) nor ROCKETMQ (1).
    #[error("unknown serialize type {serialize_type} in the frame's header word")]
    UnknownSerializeType {
        /// The top byte of the header word.
        serialize_type: u8,
    },
    /// The header length is larger than what the frame holds after the header word.
    #[error("header length {header_bytes} exceeds the {available_bytes} bytes the frame holds after its header word")]
    HeaderLongerThanFrame {
        /// Header length from the header word.
        header_bytes: usize,
        /// Bytes in the frame after the header word.
        available_bytes: usize,
    },
    /// Encoding: the header does not fit the 24-bit header-length field.
    #[error("header of {header_bytes} bytes does not fit the 24-bit header length (max {max})", max = MAX_HEADER_BYTES)]
    HeaderTooLarge {
        /// Size of the encoded header.
        header_bytes: usize,
    },
}

/// Builds the 8 bytes that open a frame with a header of `header_bytes` and a body of
/// `body_bytes`. Fails if the peer would refuse the frame: bigger than
/// [`MAX_FRAME_BYTES`] (Java's default limit), or a header too long for 24 bits.
pub fn encode_frame_head(
    serialize_type: SerializeType,
    header_bytes: usize,
    body_bytes: usize,
) -> Result<[u8; FRAME_HEAD_BYTES], FrameError> {
    if header_bytes > MAX_HEADER_BYTES {
        return Err(FrameError::HeaderTooLarge { header_bytes });
    }
    let frame_bytes = (FRAME_HEAD_BYTES as u64)
        .saturating_add(header_bytes as u64)
        .saturating_add(body_bytes as u64);
    let too_large = FrameError::TooLarge {
        frame_bytes,
        max_frame_bytes: MAX_FRAME_BYTES,
    };
    if frame_bytes > MAX_FRAME_BYTES as u64 {
        return Err(too_large);
    }
    let length = i32::try_from(frame_bytes - LENGTH_PREFIX_BYTES as u64).map_err(|_| too_large)?;
    // header_bytes ≤ MAX_HEADER_BYTES was checked above, so it fits the low 24 bits.
    let header_word =
        (u32::from(serialize_type.byte()) << HEADER_LENGTH_BITS) | header_bytes as u32;

    let mut head = [0u8; FRAME_HEAD_BYTES];
    let (length_field, word_field) = head.split_at_mut(LENGTH_PREFIX_BYTES);
    length_field.copy_from_slice(&length.to_be_bytes());
    word_field.copy_from_slice(&header_word.to_be_bytes());
    Ok(head)
}

/// Cuts frames out of a connection's read buffer.
///
/// Holds only the size limit, so one decoder can serve every connection of a
/// shard. It keeps no per-connection state: a partial frame simply stays in the
/// caller's buffer until more bytes arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    max_frame_bytes: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new()
    }
}

/// What the first bytes of a buffer say about the frame that starts there.
struct FrameHead {
    /// Size of the whole frame, length prefix included.
    frame_bytes: usize,
    /// Serialize type and header length, once the header word has arrived.
    layout: Option<(SerializeType, usize)>,
}

impl FrameDecoder {
    /// A decoder with the default limit, [`MAX_FRAME_BYTES`].
    pub const fn new() -> FrameDecoder {
        FrameDecoder {
            max_frame_bytes: MAX_FRAME_BYTES,
        }
    }

    /// A decoder that refuses frames larger than `max_frame_bytes`, length prefix
    /// included. This is for a configured `frameMaxLength`. A limit below
    /// [`FRAME_HEAD_BYTES`] refuses every frame.
    pub const fn with_max_frame_bytes(max_frame_bytes: usize) -> FrameDecoder {
        FrameDecoder { max_frame_bytes }
    }

    /// The limit in force, length prefix included.
    pub const fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// Size of the frame at the start of `buf`, length prefix included, once its
    /// length prefix has arrived. A connection can use it to reserve room for the
    /// rest of the frame in one step. The size is checked against the limit and,
    /// if the header word is there too, against the header length. A returned size
    /// is safe to allocate.
    pub fn frame_bytes(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        Ok(self.inspect(buf)?.map(|head| head.frame_bytes))
    }

    /// Removes the first complete frame from `buf` and returns it.
    ///
    /// `Ok(None)` means more bytes are needed; `buf` is unchanged. An error means
    /// the stream cannot be trusted any more: close the connection. Errors are
    /// reported as soon as the offending length prefix or header word is in `buf`,
    /// without waiting for the rest of the frame.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(head) = self.inspect(buf)? else {
            return Ok(None);
        };
        let Some((serialize_type, header_bytes)) = head.layout else {
            return Ok(None);
        };
        if buf.len() < head.frame_bytes {
            return Ok(None);
        }
        // inspect() has checked FRAME_HEAD_BYTES ≤ frame_bytes ≤ buf.len() and
        // header_bytes ≤ frame_bytes − FRAME_HEAD_BYTES, so none of these
        // splits can go out of bounds.
        let mut frame = buf.split_to(head.frame_bytes);
        frame.advance(FRAME_HEAD_BYTES);
        let header = frame.split_to(header_bytes).freeze();
        Ok(Some(Frame {
            serialize_type,
            header,
            body: frame.freeze(),
        }))
    }

    fn inspect(&self, buf: &[u8]) -> Result<Option<FrameHead>, FrameError> {
        let Some((length_field, rest)) = buf.split_first_chunk::<LENGTH_PREFIX_BYTES>() else {
            return Ok(None);
        };
        let length = i32::from_be_bytes(*length_field);
        let after_prefix =
            usize::try_from(length).map_err(|_| FrameError::NegativeLength { length })?;
        if after_prefix < HEADER_WORD_BYTES {
            return Err(FrameError::TooShort { length });
        }
        let frame_bytes = after_prefix.saturating_add(LENGTH_PREFIX_BYTES);
        if frame_bytes > self.max_frame_bytes {
            return Err(FrameError::TooLarge {
                frame_bytes: frame_bytes as u64,
                max_frame_bytes: self.max_frame_bytes,
            });
        }

        let Some((word_field, _)) = rest.split_first_chunk::<HEADER_WORD_BYTES>() else {
            return Ok(Some(FrameHead {
                frame_bytes,
                layout: None,
            }));
        };
        let word = u32::from_be_bytes(*word_field);
        let [type_byte, ..] = word.to_be_bytes();
        let serialize_type =
            SerializeType::from_byte(type_byte).ok_or(FrameError::UnknownSerializeType {
                serialize_type: type_byte,
            })?;
        let header_bytes = (word & HEADER_LENGTH_MASK) as usize;
        let available_bytes = after_prefix - HEADER_WORD_BYTES;
        if header_bytes > available_bytes {
            return Err(FrameError::HeaderLongerThanFrame {
                header_bytes,
                available_bytes,
            });
        }
        Ok(Some(FrameHead {
            frame_bytes,
            layout: Some((serialize_type, header_bytes)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remoting::alloc_probe::largest_allocation_during;
    use proptest::prelude::*;

    /// Cases per property test.
    const CASES: u32 = 1024;

    /// Allocations the decoder may make on its own: the shared-buffer bookkeeping
    /// that `BytesMut::split_to` sets up. Anything near a declared frame length
    /// would be far above this.
    const DECODER_OWN_ALLOCATION_BYTES: usize = 256;

    fn frame_bytes_of(prefix: &[u8]) -> BytesMut {
        BytesMut::from(prefix)
    }

    #[test]
    fn header_word_puts_the_serialize_type_in_the_top_byte() {
        // Spec §1.5 worked example: binary header of 33 bytes, no body.
        assert_eq!(
            encode_frame_head(SerializeType::RocketMq, 33, 0),
            Ok([0x00, 0x00, 0x00, 0x25, 0x01, 0x00, 0x00, 0x21])
        );
        // Spec Appendix A: JSON header of 123 bytes, no body.
        assert_eq!(
            encode_frame_head(SerializeType::Json, 123, 0),
            Ok([0x00, 0x00, 0x00, 0x7F, 0x00, 0x00, 0x00, 0x7B])
        );
        let mut stream = frame_bytes_of(&[0, 0, 0, 0x25, 1, 0, 0, 0x21]);
        stream.put_bytes(0, 33);
        let decoded = FrameDecoder::new()
            .decode(&mut stream)
            .expect("valid frame")
            .expect("complete frame");
        assert_eq!(decoded.serialize_type, SerializeType::RocketMq);
        assert_eq!(decoded.header.len(), 33);
        assert!(decoded.body.is_empty());
    }

    #[test]
    fn every_strict_prefix_of_a_frame_asks_for_more() {
        let frame = Frame {
            serialize_type: SerializeType::Json,
            header: Bytes::from_static(b"{}"),
            body: Bytes::from_static(b"body"),
        };
        let mut encoded = BytesMut::new();
        frame.encode(&mut encoded).expect("small frame");
        let decoder = FrameDecoder::new();
        for cut in 0..encoded.len() {
            let mut partial = BytesMut::from(&encoded[..cut]);
            assert_eq!(decoder.decode(&mut partial), Ok(None), "cut at {cut}");
            assert_eq!(partial.len(), cut, "a partial frame stays in the buffer");
        }
        assert_eq!(decoder.decode(&mut encoded), Ok(Some(frame)));
        assert!(encoded.is_empty());
    }

    #[test]
    fn back_to_back_frames_come_out_one_at_a_time() {
        let first = Frame {
            serialize_type: SerializeType::Json,
            header: Bytes::from_static(b"{\"code\":1}"),
            body: Bytes::new(),
        };
        let second = Frame {
            serialize_type: SerializeType::RocketMq,
            header: Bytes::from_static(&[0; 21]),
            body: Bytes::from_static(b"xyz"),
        };
        let mut stream = BytesMut::new();
        first.encode(&mut stream).expect("small frame");
        second.encode(&mut stream).expect("small frame");
        stream.put_slice(&[0, 0]); // the start of a third frame
        let decoder = FrameDecoder::new();
        assert_eq!(decoder.decode(&mut stream), Ok(Some(first)));
        assert_eq!(decoder.decode(&mut stream), Ok(Some(second)));
        assert_eq!(decoder.decode(&mut stream), Ok(None));
        assert_eq!(&stream[..], &[0, 0]);
    }

    #[test]
    fn body_is_a_slice_of_the_read_buffer() {
        let mut stream = BytesMut::new();
        Frame {
            serialize_type: SerializeType::Json,
            header: Bytes::from_static(b"{}"),
            body: Bytes::from(vec![7u8; 1000]),
        }
        .encode(&mut stream)
        .expect("small frame");
        let buffer_start = stream.as_ptr() as usize;
        let buffer_end = buffer_start + stream.len();
        let frame = FrameDecoder::new()
            .decode(&mut stream)
            .expect("valid")
            .expect("complete");
        let body_start = frame.body.as_ptr() as usize;
        assert!(body_start >= buffer_start && body_start + frame.body.len() <= buffer_end);
    }

    #[test]
    fn negative_and_2_gib_length_prefixes_are_rejected() {
        let decoder = FrameDecoder::new();
        assert_eq!(
            decoder.decode(&mut frame_bytes_of(&[0xFF, 0xFF, 0xFF, 0xFF])),
            Err(FrameError::NegativeLength { length: -1 })
        );
        // 2 GiB does not fit an i32: Java reads it as negative, and so do we.
        assert_eq!(
            decoder.decode(&mut frame_bytes_of(&[0x80, 0x00, 0x00, 0x00])),
            Err(FrameError::NegativeLength { length: i32::MIN })
        );
        assert_eq!(
            decoder.decode(&mut frame_bytes_of(&[0x7F, 0xFF, 0xFF, 0xFF])),
            Err(FrameError::TooLarge {
                frame_bytes: i32::MAX as u64 + LENGTH_PREFIX_BYTES as u64,
                max_frame_bytes: MAX_FRAME_BYTES
            })
        );
    }

    #[test]
    fn the_limit_counts_the_length_prefix() {
        let decoder = FrameDecoder::new();
        let largest = (MAX_FRAME_BYTES - LENGTH_PREFIX_BYTES) as u32;
        let mut at_limit = BytesMut::new();
        at_limit.put_u32(largest);
        at_limit.put_u32(0);
        assert_eq!(decoder.frame_bytes(&at_limit), Ok(Some(MAX_FRAME_BYTES)));
        assert_eq!(decoder.decode(&mut at_limit), Ok(None));

        let mut over_limit = BytesMut::new();
        over_limit.put_u32(largest + 1);
        assert_eq!(
            decoder.decode(&mut over_limit),
            Err(FrameError::TooLarge {
                frame_bytes: MAX_FRAME_BYTES as u64 + 1,
                max_frame_bytes: MAX_FRAME_BYTES
            })
        );
        assert_eq!(
            FrameDecoder::with_max_frame_bytes(64).decode(&mut frame_bytes_of(&[0, 0, 0, 61])),
            Err(FrameError::TooLarge {
                frame_bytes: 65,
                max_frame_bytes: 64
            })
        );
    }

    #[test]
    fn a_length_without_room_for_the_header_word_is_rejected() {
        for length in 0..HEADER_WORD_BYTES as u8 {
            assert_eq!(
                FrameDecoder::new().decode(&mut frame_bytes_of(&[0, 0, 0, length])),
                Err(FrameError::TooShort {
                    length: i32::from(length)
                })
            );
        }
    }

    #[test]
    fn header_word_errors_are_reported_before_the_frame_is_complete() {
        let decoder = FrameDecoder::new();
        assert_eq!(
            decoder.decode(&mut frame_bytes_of(&[0, 0, 1, 0, 2, 0, 0, 5])),
            Err(FrameError::UnknownSerializeType { serialize_type: 2 })
        );
        assert_eq!(
            decoder.decode(&mut frame_bytes_of(&[0, 0, 0, 10, 0, 0, 0, 7])),
            Err(FrameError::HeaderLongerThanFrame {
                header_bytes: 7,
                available_bytes: 6
            })
        );
    }

    #[test]
    fn encoding_refuses_frames_a_peer_would_refuse() {
        assert_eq!(
            encode_frame_head(SerializeType::Json, MAX_HEADER_BYTES + 1, 0),
            Err(FrameError::HeaderTooLarge {
                header_bytes: MAX_HEADER_BYTES + 1
            })
        );
        let body_bytes = MAX_FRAME_BYTES - FRAME_HEAD_BYTES - 10 + 1;
        assert_eq!(
            encode_frame_head(SerializeType::Json, 10, body_bytes),
            Err(FrameError::TooLarge {
                frame_bytes: MAX_FRAME_BYTES as u64 + 1,
                max_frame_bytes: MAX_FRAME_BYTES
            })
        );
        assert!(encode_frame_head(SerializeType::Json, 10, body_bytes - 1).is_ok());
    }

    /// Byte streams that look like frames often enough to reach every check:
    /// small lengths, serialize types around the valid ones, then random bytes,
    /// mixed with completely random input.
    fn stream_strategy() -> impl Strategy<Value = Vec<u8>> {
        let plausible = (
            0u32..80,
            0u8..3,
            0u32..80,
            proptest::collection::vec(any::<u8>(), 0..160),
        )
            .prop_map(|(length, serialize_type, header_bytes, tail)| {
                let mut bytes = length.to_be_bytes().to_vec();
                bytes.extend_from_slice(
                    &((u32::from(serialize_type) << 24) | header_bytes).to_be_bytes(),
                );
                bytes.extend_from_slice(&tail);
                bytes
            });
        prop_oneof![proptest::collection::vec(any::<u8>(), 0..200), plausible]
    }

    /// Decodes `stream` delivered in the given chunk sizes until it runs dry or
    /// fails, the way a connection would.
    fn decode_in_chunks(
        decoder: FrameDecoder,
        stream: &[u8],
        chunk_sizes: &[usize],
    ) -> (Vec<Frame>, Option<FrameError>) {
        let mut frames = Vec::new();
        let mut buf = BytesMut::new();
        let mut rest = stream;
        let mut sizes = chunk_sizes.iter().copied().cycle();
        loop {
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(frame)) => frames.push(frame),
                    Ok(None) => break,
                    Err(error) => return (frames, Some(error)),
                }
            }
            if rest.is_empty() {
                return (frames, None);
            }
            let take = sizes.next().unwrap_or(1).clamp(1, rest.len());
            let (chunk, remaining) = rest.split_at(take);
            buf.extend_from_slice(chunk);
            rest = remaining;
        }
    }

    proptest! {
        // Cheap cases; more of them make the never-panic properties worth more.
        #![proptest_config(ProptestConfig::with_cases(CASES))]
        #[test]
        fn arbitrary_bytes_never_panic_or_promise_an_oversized_frame(
            stream in stream_strategy(),
            max_frame_bytes in prop_oneof![Just(MAX_FRAME_BYTES), 0usize..100],
        ) {
            let decoder = FrameDecoder::with_max_frame_bytes(max_frame_bytes);
            let mut buf = BytesMut::from(&stream[..]);
            let capacity_before = buf.capacity();
            let (result, largest) = largest_allocation_during(|| decoder.decode(&mut buf));
            prop_assert!(largest <= DECODER_OWN_ALLOCATION_BYTES, "decoder allocated {largest} bytes");
            match result {
                Ok(None) => {
                    prop_assert_eq!(buf.len(), stream.len());
                    prop_assert!(buf.capacity() <= capacity_before);
                    if let Some(frame_bytes) = decoder.frame_bytes(&buf).expect("same answer as decode") {
                        prop_assert!(frame_bytes <= max_frame_bytes);
                        prop_assert!(frame_bytes > stream.len());
                    }
                }
                Ok(Some(frame)) => {
                    let consumed = stream.len() - buf.len();
                    prop_assert!(consumed <= max_frame_bytes);
                    prop_assert_eq!(consumed, FRAME_HEAD_BYTES + frame.header.len() + frame.body.len());
                }
                Err(_) => prop_assert_eq!(buf.len(), stream.len()),
            }
        }

        #[test]
        fn chunking_never_changes_what_is_decoded(
            stream in stream_strategy(),
            chunk_sizes in proptest::collection::vec(1usize..40, 1..10),
        ) {
            let decoder = FrameDecoder::new();
            let whole = decode_in_chunks(decoder, &stream, &[stream.len().max(1)]);
            let chunked = decode_in_chunks(decoder, &stream, &chunk_sizes);
            prop_assert_eq!(whole, chunked);
        }

        #[test]
        fn encoded_frames_survive_any_chunking(
            frames in proptest::collection::vec(
                (
                    prop_oneof![Just(SerializeType::Json), Just(SerializeType::RocketMq)],
                    proptest::collection::vec(any::<u8>(), 0..64),
                    proptest::collection::vec(any::<u8>(), 0..64),
                )
                    .prop_map(|(serialize_type, header, body)| Frame {
                        serialize_type,
                        header: Bytes::from(header),
                        body: Bytes::from(body),
                    }),
                0..6,
            ),
            chunk_sizes in proptest::collection::vec(1usize..50, 1..10),
        ) {
            let mut stream = BytesMut::new();
            for frame in &frames {
                frame.encode(&mut stream).expect("small frame");
            }
            let (decoded, error) = decode_in_chunks(FrameDecoder::new(), &stream, &chunk_sizes);
            prop_assert_eq!(error, None);
            prop_assert_eq!(decoded, frames);
        }
    }
}
