//! The stored-message record: RocketMQ's commit-log layout byte for byte
//! (spec §6.1), so pull responses are slices of stored bytes. Owns encoding a
//! message into the log, validating a record read back, and the blank
//! end-of-segment marker.

use std::net::{IpAddr, SocketAddr};

use bytes::{BufMut, BytesMut};

use super::properties;

pub const MAGIC_V1: i32 = 0xDAA320A7u32 as i32;
pub const MAGIC_V2: i32 = 0xDAA320ABu32 as i32;
pub const MAGIC_BLANK: i32 = 0xCBD43194u32 as i32;
/// A blank marker is TOTALSIZE + MAGIC; the rest of the segment is zeros.
pub const BLANK_HEADER_BYTES: usize = 8;

/// Record size less body, topic and properties, IPv4 born and store hosts, V1.
pub const RECORD_FIXED_BYTES: usize = 91;
pub const RECORD_FIXED_BYTES_V6: usize = RECORD_FIXED_BYTES + 24 + 1;
/// V1 stores the topic length in one signed byte.
pub const MAX_TOPIC_BYTES: usize = 127;
pub const MAX_PROPERTIES_BYTES: usize = i16::MAX as usize;

pub const SYSFLAG_COMPRESSED: i32 = 0x1;
pub const SYSFLAG_BORNHOST_V6: i32 = 0x10;
pub const SYSFLAG_STOREHOST_V6: i32 = 0x20;
/// Bits a client may set in the send header; the broker owns the rest.
pub const SYSFLAG_CLIENT_MASK: i32 = 0x1 | 0xC | 0x700;

// Field offsets that do not move with the host sizes.
const OFF_TOTAL: usize = 0;
const OFF_MAGIC: usize = 4;
const OFF_BODYCRC: usize = 8;
const OFF_QUEUEID: usize = 12;
const OFF_FLAG: usize = 16;
const OFF_QUEUEOFFSET: usize = 20;
const OFF_PHYSOFFSET: usize = 28;
const OFF_SYSFLAG: usize = 36;
const OFF_BORNTS: usize = 40;
const OFF_BORNHOST: usize = 48;

/// Name of the whole-record checksum property (RocketMQ 5.x
/// `enabledAppendPropCRC`): always the last property, its value 10 ASCII
/// digits of the masked CRC-32 of every record byte before the property,
/// least-significant digit first.
pub const CRC_PROPERTY: &[u8] = b"__CRC32#";
/// The whole `__CRC32#\x01dddddddddd\x02` suffix.
pub const CRC_PROPERTY_BYTES: usize = 20;

/// How this store writes records.
#[derive(Debug, Clone, Copy)]
pub struct RecordFormat {
    /// STOREHOST of every record (brokerIP1:listenPort).
    pub store_host: SocketAddr,
    /// Append the whole-record checksum property. BODYCRC alone leaves the
    /// header and properties unprotected, so recovery could keep a torn
    /// record whose damage misses the body.
    pub append_crc: bool,
}

impl RecordFormat {
    fn crc_bytes(&self) -> usize {
        if self.append_crc {
            CRC_PROPERTY_BYTES
        } else {
            0
        }
    }
}

/// What the producer sent, borrowed from the request: the store copies it
/// once, into the log.
#[derive(Debug, Clone, Copy)]
pub struct MessageDraft<'a> {
    pub flag: i32,
    pub body: &'a [u8],
    /// Encoded properties string (§6.3).
    pub properties: &'a [u8],
    /// Client bits only; host bits are set by the store.
    pub sys_flag: i32,
    pub born_timestamp_ms: i64,
    pub born_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
}

fn host_bytes(addr: &SocketAddr) -> usize {
    match addr.ip() {
        IpAddr::V4(_) => 8,
        IpAddr::V6(_) => 20,
    }
}

/// Exact size of the record `draft` becomes under `topic`.
pub fn encoded_len(topic: &str, draft: &MessageDraft<'_>, fmt: &RecordFormat) -> usize {
    RECORD_FIXED_BYTES - 16
        + host_bytes(&draft.born_host)
        + host_bytes(&fmt.store_host)
        + draft.body.len()
        + topic.len()
        + draft.properties.len()
        + fmt.crc_bytes()
}

/// Rejects what cannot be stored faithfully, before anything is written.
pub fn check(
    topic: &str,
    draft: &MessageDraft<'_>,
    max_body_bytes: usize,
    fmt: &RecordFormat,
) -> Result<(), String> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_BYTES {
        return Err(format!(
            "topic length {} is outside 1..={MAX_TOPIC_BYTES}",
            topic.len()
        ));
    }
    if draft.body.len() > max_body_bytes {
        return Err(format!(
            "body of {} bytes exceeds maxMessageSize {max_body_bytes}",
            draft.body.len()
        ));
    }
    if draft.properties.len() + fmt.crc_bytes() > MAX_PROPERTIES_BYTES {
        return Err(format!(
            "properties of {} bytes exceed {}",
            draft.properties.len(),
            MAX_PROPERTIES_BYTES - fmt.crc_bytes()
        ));
    }
    Ok(())
}

/// Masked CRC-32 of a body, as Java's `UtilAll.crc32` stores it.
pub fn body_crc(body: &[u8]) -> i32 {
    (crc32fast::hash(body) & 0x7FFF_FFFF) as i32
}

fn put_host(out: &mut BytesMut, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => out.put_slice(&ip.octets()),
        IpAddr::V6(ip) => out.put_slice(&ip.octets()),
    }
    out.put_i32(addr.port() as i32);
}

/// Where a record lands, filled by the store at append time.
#[derive(Debug, Clone, Copy)]
pub struct Placement {
    pub queue_id: i32,
    pub queue_offset: i64,
    /// Global physical offset (shard in the top byte).
    pub physical_offset: i64,
    pub store_timestamp_ms: i64,
}

/// Appends the record to `out`; the caller has run `check`. Returns its size.
pub fn encode(
    out: &mut BytesMut,
    topic: &str,
    draft: &MessageDraft<'_>,
    fmt: &RecordFormat,
    at: &Placement,
) -> usize {
    let store_host = &fmt.store_host;
    let size = encoded_len(topic, draft, fmt);
    let mut sys_flag = draft.sys_flag & SYSFLAG_CLIENT_MASK;
    if draft.born_host.is_ipv6() {
        sys_flag |= SYSFLAG_BORNHOST_V6;
    }
    if store_host.is_ipv6() {
        sys_flag |= SYSFLAG_STOREHOST_V6;
    }
    out.reserve(size);
    let start = out.len();
    // The body is hashed once: its CRC is BODYCRC, and is combined into the
    // whole-record CRC rather than hashing the body a second time.
    let mut body_hasher = crc32fast::Hasher::new();
    body_hasher.update(draft.body);
    let body_crc = body_hasher.clone().finalize();
    out.put_i32(size as i32);
    out.put_i32(MAGIC_V1);
    out.put_i32((body_crc & 0x7FFF_FFFF) as i32);
    out.put_i32(at.queue_id);
    out.put_i32(draft.flag);
    out.put_i64(at.queue_offset);
    out.put_i64(at.physical_offset);
    out.put_i32(sys_flag);
    out.put_i64(draft.born_timestamp_ms);
    put_host(out, &draft.born_host);
    out.put_i64(at.store_timestamp_ms);
    put_host(out, store_host);
    out.put_i32(draft.reconsume_times);
    out.put_i64(draft.prepared_transaction_offset);
    out.put_i32(draft.body.len() as i32);
    let body_at = out.len();
    out.put_slice(draft.body);
    out.put_i8(topic.len() as i8);
    out.put_slice(topic.as_bytes());
    out.put_i16((draft.properties.len() + fmt.crc_bytes()) as i16);
    out.put_slice(draft.properties);
    if fmt.append_crc {
        let mut record = crc32fast::Hasher::new();
        record.update(&out[start..body_at]);
        record.combine(&body_hasher);
        record.update(&out[body_at + draft.body.len()..]);
        let crc = (record.finalize() & 0x7FFF_FFFF) as u64;
        out.put_slice(CRC_PROPERTY);
        out.put_u8(properties::NAME_VALUE_SEPARATOR);
        put_crc_digits(out, crc);
        out.put_u8(properties::PROPERTY_SEPARATOR);
    }
    debug_assert_eq!(out.len() - start, size);
    size
}

fn put_crc_digits(out: &mut BytesMut, mut crc: u64) {
    for _ in 0..10 {
        out.put_u8(b'0' + (crc % 10) as u8);
        crc /= 10;
    }
}

/// Appends a blank marker that declares the next `remaining` bytes unused.
pub fn encode_blank_header(out: &mut BytesMut, remaining: usize) {
    out.put_i32(remaining as i32);
    out.put_i32(MAGIC_BLANK);
}

/// Why bytes are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("need {needed} bytes, have {have}")]
    Truncated { needed: usize, have: usize },
    #[error("bad magic {0:#x}")]
    BadMagic(u32),
    #[error("total size {0} is impossible")]
    BadSize(i64),
    #[error("field lengths disagree with total size {total}: {detail}")]
    Inconsistent { total: usize, detail: &'static str },
    #[error("body crc {stored} does not match computed {computed}")]
    BadCrc { stored: i32, computed: i32 },
    #[error("record checksum property is missing or malformed")]
    MissingRecordCrc,
    #[error("record crc {stored} does not match computed {computed}")]
    BadRecordCrc { stored: u64, computed: u64 },
}

/// What the first bytes at a log position announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    Record(usize),
    Blank(usize),
    /// All zeros: never-written space past the end of the log.
    Empty,
}

/// Whether `rec`, read for a consume-queue unit, is the record that unit
/// names: its size, queue, queue offset and physical offset, from the fixed
/// header fields (no parse, no CRC). A mismatch means a queue points at the
/// wrong bytes, which must be refused, never served.
pub fn matches_unit(rec: &[u8], size: u32, queue_id: i32, queue_offset: i64, phys: i64) -> bool {
    rec.len() > OFF_PHYSOFFSET + 8
        && rec.len() == size as usize
        && be_i32(rec, OFF_TOTAL) == size as i32
        && be_i32(rec, OFF_QUEUEID) == queue_id
        && be_i64(rec, OFF_QUEUEOFFSET) == queue_offset
        && be_i64(rec, OFF_PHYSOFFSET) == phys
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads the size and magic at the start of `b` (at least 8 bytes).
pub fn head(b: &[u8]) -> Result<Head, RecordError> {
    if b.len() < 8 {
        return Err(RecordError::Truncated {
            needed: 8,
            have: b.len(),
        });
    }
    let total = be_i32(b, OFF_TOTAL);
    let magic = be_i32(b, OFF_MAGIC);
    match magic {
        MAGIC_V1 | MAGIC_V2 if total as usize >= RECORD_FIXED_BYTES && total > 0 => {
            Ok(Head::Record(total as usize))
        }
        MAGIC_V1 | MAGIC_V2 => Err(RecordError::BadSize(total as i64)),
        MAGIC_BLANK if total >= BLANK_HEADER_BYTES as i32 => Ok(Head::Blank(total as usize)),
        MAGIC_BLANK => Err(RecordError::BadSize(total as i64)),
        0 if total == 0 => Ok(Head::Empty),
        other => Err(RecordError::BadMagic(other as u32)),
    }
}

/// A validated record borrowed from a buffer. Field positions are computed
/// once from the sysflag host bits.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    bytes: &'a [u8],
    store_ts_at: usize,
    reconsume_at: usize,
    body: (usize, usize),
    topic: (usize, usize),
    props: (usize, usize),
}

/// The records of a pull or query reply: records back to back, each
/// TOTALSIZE-prefixed.
pub fn split(mut body: &[u8]) -> Result<Vec<RecordView<'_>>, RecordError> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let rec = RecordView::parse(body)?;
        body = &body[rec.total_size()..];
        out.push(rec);
    }
    Ok(out)
}

impl<'a> RecordView<'a> {
    /// Parses the record at the start of `b`, checking that every length is
    /// consistent with TOTALSIZE. Does not check the CRC (see `verify_crc`).
    pub fn parse(b: &'a [u8]) -> Result<Self, RecordError> {
        let total = match head(b)? {
            Head::Record(n) => n,
            Head::Blank(_) => return Err(RecordError::BadMagic(MAGIC_BLANK as u32)),
            Head::Empty => return Err(RecordError::BadSize(0)),
        };
        Self::parse_sized(b, total)
    }

    fn parse_sized(b: &'a [u8], total: usize) -> Result<Self, RecordError> {
        if b.len() < total {
            return Err(RecordError::Truncated {
                needed: total,
                have: b.len(),
            });
        }
        let b = &b[..total];
        let sys_flag = be_i32(b, OFF_SYSFLAG);
        let born = if sys_flag & SYSFLAG_BORNHOST_V6 != 0 {
            20
        } else {
            8
        };
        let store = if sys_flag & SYSFLAG_STOREHOST_V6 != 0 {
            20
        } else {
            8
        };
        let store_ts_at = OFF_BORNHOST + born;
        let reconsume_at = store_ts_at + 8 + store;
        let bodylen_at = reconsume_at + 4 + 8;
        let v2 = be_i32(b, OFF_MAGIC) == MAGIC_V2;
        let inconsistent = |detail| RecordError::Inconsistent { total, detail };
        if bodylen_at + 4 > total {
            return Err(inconsistent("hosts overrun the record"));
        }
        let body_len = be_i32(b, bodylen_at);
        if body_len < 0 {
            return Err(inconsistent("negative body length"));
        }
        let body_at = bodylen_at + 4;
        let topic_len_at = body_at + body_len as usize;
        let topic_len_bytes = if v2 { 2 } else { 1 };
        if topic_len_at + topic_len_bytes > total {
            return Err(inconsistent("body overruns the record"));
        }
        let topic_len = if v2 {
            be_i16(b, topic_len_at) as i64
        } else {
            b[topic_len_at] as i8 as i64
        };
        if topic_len < 0 {
            return Err(inconsistent("negative topic length"));
        }
        let topic_at = topic_len_at + topic_len_bytes;
        let props_len_at = topic_at + topic_len as usize;
        if props_len_at + 2 > total {
            return Err(inconsistent("topic overruns the record"));
        }
        let props_len = be_i16(b, props_len_at);
        if props_len < 0 {
            return Err(inconsistent("negative properties length"));
        }
        let props_at = props_len_at + 2;
        if props_at + props_len as usize != total {
            return Err(inconsistent("lengths do not add up to total size"));
        }
        Ok(RecordView {
            bytes: b,
            store_ts_at,
            reconsume_at,
            body: (body_at, body_len as usize),
            topic: (topic_at, topic_len as usize),
            props: (props_at, props_len as usize),
        })
    }

    pub fn verify_crc(&self) -> Result<(), RecordError> {
        let stored = be_i32(self.bytes, OFF_BODYCRC);
        let computed = body_crc(self.body());
        if stored == computed {
            Ok(())
        } else {
            Err(RecordError::BadCrc { stored, computed })
        }
    }

    /// Checks the whole-record checksum property; `required` says whether
    /// its absence is an error. Returns whether one was checked.
    pub fn verify_record_crc(&self, required: bool) -> Result<bool, RecordError> {
        let props = self.properties();
        let n = CRC_PROPERTY_BYTES;
        let suffix = match props.len().checked_sub(n) {
            Some(at) => &props[at..],
            None => &[][..],
        };
        // suffix = "__CRC32#" 0x01 d0..d9 0x02
        let well_formed = suffix.len() == n
            && &suffix[..8] == CRC_PROPERTY
            && suffix[8] == properties::NAME_VALUE_SEPARATOR
            && suffix[9..19].iter().all(u8::is_ascii_digit)
            && suffix[19] == properties::PROPERTY_SEPARATOR;
        if !well_formed {
            return if required {
                Err(RecordError::MissingRecordCrc)
            } else {
                Ok(false)
            };
        }
        let stored = suffix[9..19]
            .iter()
            .rev()
            .fold(0u64, |acc, d| acc * 10 + (d - b'0') as u64);
        let computed = (crc32fast::hash(&self.bytes[..self.bytes.len() - n]) & 0x7FFF_FFFF) as u64;
        if stored == computed {
            Ok(true)
        } else {
            Err(RecordError::BadRecordCrc { stored, computed })
        }
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    pub fn total_size(&self) -> usize {
        self.bytes.len()
    }
    pub fn queue_id(&self) -> i32 {
        be_i32(self.bytes, OFF_QUEUEID)
    }
    pub fn flag(&self) -> i32 {
        be_i32(self.bytes, OFF_FLAG)
    }
    pub fn queue_offset(&self) -> i64 {
        be_i64(self.bytes, OFF_QUEUEOFFSET)
    }
    pub fn physical_offset(&self) -> i64 {
        be_i64(self.bytes, OFF_PHYSOFFSET)
    }
    pub fn sys_flag(&self) -> i32 {
        be_i32(self.bytes, OFF_SYSFLAG)
    }
    pub fn born_timestamp_ms(&self) -> i64 {
        be_i64(self.bytes, OFF_BORNTS)
    }
    pub fn store_timestamp_ms(&self) -> i64 {
        be_i64(self.bytes, self.store_ts_at)
    }
    pub fn reconsume_times(&self) -> i32 {
        be_i32(self.bytes, self.reconsume_at)
    }
    pub fn prepared_transaction_offset(&self) -> i64 {
        be_i64(self.bytes, self.reconsume_at + 4)
    }
    pub fn body(&self) -> &'a [u8] {
        &self.bytes[self.body.0..self.body.0 + self.body.1]
    }
    pub fn topic(&self) -> &'a [u8] {
        &self.bytes[self.topic.0..self.topic.0 + self.topic.1]
    }
    pub fn properties(&self) -> &'a [u8] {
        &self.bytes[self.props.0..self.props.0 + self.props.1]
    }
    pub fn tags_code(&self) -> i64 {
        properties::cq_tags_code(self.topic(), self.properties())
    }
    pub fn born_host(&self) -> SocketAddr {
        read_host(self.bytes, OFF_BORNHOST, self.store_ts_at - OFF_BORNHOST)
    }
    /// The properties without the whole-record checksum the store appended:
    /// what to carry over when a record is re-stored under another topic.
    pub fn user_properties(&self) -> &'a [u8] {
        let props = self.properties();
        match props.len().checked_sub(CRC_PROPERTY_BYTES) {
            Some(at)
                if props[at..].starts_with(CRC_PROPERTY)
                    && props[at + CRC_PROPERTY.len()] == properties::NAME_VALUE_SEPARATOR =>
            {
                &props[..at]
            }
            _ => props,
        }
    }

    /// The record as a draft to store again (under another topic, say):
    /// its body, flag, sysflag, born time and host, reconsume times and
    /// prepared-transaction offset, with `properties` instead of its own.
    pub fn redraft<'b>(&self, properties: &'b [u8]) -> MessageDraft<'b>
    where
        'a: 'b,
    {
        MessageDraft {
            flag: self.flag(),
            body: self.body(),
            properties,
            sys_flag: self.sys_flag(),
            born_timestamp_ms: self.born_timestamp_ms(),
            born_host: self.born_host(),
            reconsume_times: self.reconsume_times(),
            prepared_transaction_offset: self.prepared_transaction_offset(),
        }
    }

    /// The record as a client would decode it under another topic and
    /// queue (a transaction check carries the half message as if it had
    /// been stored under its real topic). The whole-record checksum is
    /// dropped with the change; BODYCRC still holds.
    pub fn rewrite_for(&self, topic: &str, queue_id: i32) -> BytesMut {
        let b = self.bytes;
        let v2 = be_i32(b, OFF_MAGIC) == MAGIC_V2;
        let topic_len_at = self.topic.0 - if v2 { 2 } else { 1 };
        let topic = &topic[..topic.len().min(MAX_TOPIC_BYTES)];
        let props = self.user_properties();
        let size = topic_len_at + 1 + topic.len() + 2 + props.len();
        let mut out = BytesMut::with_capacity(size);
        out.put_i32(size as i32);
        out.put_i32(MAGIC_V1);
        out.put_slice(&b[OFF_BODYCRC..OFF_QUEUEID]);
        out.put_i32(queue_id);
        out.put_slice(&b[OFF_FLAG..topic_len_at]);
        out.put_i8(topic.len() as i8);
        out.put_slice(topic.as_bytes());
        out.put_i16(props.len() as i16);
        out.put_slice(props);
        out
    }
}

fn read_host(b: &[u8], at: usize, len: usize) -> SocketAddr {
    let port = be_i32(b, at + len - 4) as u16;
    if len == 20 {
        let mut ip = [0u8; 16];
        ip.copy_from_slice(&b[at..at + 16]);
        SocketAddr::new(IpAddr::from(ip), port)
    } else {
        let mut ip = [0u8; 4];
        ip.copy_from_slice(&b[at..at + 4]);
        SocketAddr::new(IpAddr::from(ip), port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>())
                .prop_map(|(ip, p)| SocketAddr::from((Ipv4Addr::from(ip), p))),
            (any::<[u8; 16]>(), any::<u16>())
                .prop_map(|(ip, p)| SocketAddr::from((Ipv6Addr::from(ip), p))),
        ]
    }

    #[test]
    fn layout_matches_spec_offsets() {
        let host: SocketAddr = "10.0.0.1:10911".parse().unwrap();
        let draft = MessageDraft {
            flag: 7,
            body: b"Hello",
            properties: b"TAGS\x01TagA\x02",
            sys_flag: 0,
            born_timestamp_ms: 1_700_000_000_000,
            born_host: "192.168.1.2:5555".parse().unwrap(),
            reconsume_times: 3,
            prepared_transaction_offset: 0,
        };
        let at = Placement {
            queue_id: 2,
            queue_offset: 9,
            physical_offset: 4096,
            store_timestamp_ms: 1_700_000_000_123,
        };
        let mut out = BytesMut::new();
        let fmt = RecordFormat {
            store_host: host,
            append_crc: false,
        };
        let n = encode(&mut out, "T", &draft, &fmt, &at);
        assert_eq!(n, 91 + 5 + 1 + 10);
        assert_eq!(be_i32(&out, 0) as usize, n);
        assert_eq!(be_i32(&out, 4), MAGIC_V1);
        // Spec §6.9: "Hello" → 0xF7D18982 masked.
        assert_eq!(be_i32(&out, 8), 2010220930);
        assert_eq!(be_i32(&out, 12), 2);
        assert_eq!(be_i64(&out, 20), 9);
        assert_eq!(be_i64(&out, 28), 4096);
        assert_eq!(&out[48..52], &[192, 168, 1, 2]);
        assert_eq!(be_i64(&out, 56), 1_700_000_000_123);
        assert_eq!(&out[64..68], &[10, 0, 0, 1]);
        assert_eq!(be_i32(&out, 68), 10911);
        assert_eq!(be_i32(&out, 72), 3);
        assert_eq!(be_i32(&out, 84), 5);
        assert_eq!(&out[88..93], b"Hello");
        assert_eq!(out[93], 1);
        assert_eq!(out[94], b'T');
        let v = RecordView::parse(&out).unwrap();
        v.verify_crc().unwrap();
        assert_eq!(v.tags_code(), 2598919);
        assert_eq!(v.verify_record_crc(false), Ok(false));
        assert_eq!(
            v.verify_record_crc(true),
            Err(RecordError::MissingRecordCrc)
        );
    }

    #[test]
    fn a_record_read_for_a_unit_must_be_that_units_record() {
        let draft = MessageDraft {
            flag: 0,
            body: b"unit",
            properties: b"",
            sys_flag: 0,
            born_timestamp_ms: 0,
            born_host: "10.0.0.2:1".parse().unwrap(),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
        };
        let at = Placement {
            queue_id: 3,
            queue_offset: 41,
            physical_offset: 8192,
            store_timestamp_ms: 0,
        };
        let fmt = RecordFormat {
            store_host: "10.0.0.1:10911".parse().unwrap(),
            append_crc: true,
        };
        let mut out = BytesMut::new();
        let n = encode(&mut out, "T", &draft, &fmt, &at) as u32;
        assert!(matches_unit(&out, n, 3, 41, 8192));
        assert!(!matches_unit(&out, n, 2, 41, 8192), "queue");
        assert!(!matches_unit(&out, n, 3, 40, 8192), "queue offset");
        assert!(!matches_unit(&out, n, 3, 41, 4096), "physical offset");
        assert!(
            !matches_unit(&out[..n as usize - 1], n, 3, 41, 8192),
            "size"
        );
        assert!(
            !matches_unit(&[0; 8], 8, 3, 41, 8192),
            "too short to hold the fields"
        );
    }

    #[test]
    fn record_crc_is_the_last_property_and_tags_still_parse() {
        let host: SocketAddr = "10.0.0.1:10911".parse().unwrap();
        let draft = MessageDraft {
            flag: 0,
            body: b"x",
            properties: b"TAGS\x01TagA\x02",
            sys_flag: 0,
            born_timestamp_ms: 0,
            born_host: host,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
        };
        let at = Placement {
            queue_id: 0,
            queue_offset: 0,
            physical_offset: 0,
            store_timestamp_ms: 0,
        };
        let fmt = RecordFormat {
            store_host: host,
            append_crc: true,
        };
        let mut out = BytesMut::new();
        let n = encode(&mut out, "T", &draft, &fmt, &at);
        assert_eq!(n, 91 + 1 + 1 + 10 + CRC_PROPERTY_BYTES);
        let v = RecordView::parse(&out).unwrap();
        assert_eq!(v.verify_record_crc(true), Ok(true));
        assert_eq!(properties::get(v.properties(), "TAGS"), Some(&b"TagA"[..]));
        assert_eq!(
            properties::get(v.properties(), "__CRC32#").map(|d| d.len()),
            Some(10)
        );
    }

    #[test]
    fn rewritten_records_carry_the_new_topic_and_queue_and_nothing_else_changes() {
        let born: SocketAddr = "[2001:db8::7]:4242".parse().unwrap();
        let draft = MessageDraft {
            flag: 5,
            body: b"payload",
            properties: b"REAL_TOPIC\x01Orders\x02PGROUP\x01pg\x02",
            sys_flag: 0x4,
            born_timestamp_ms: 77,
            born_host: born,
            reconsume_times: 2,
            prepared_transaction_offset: 0,
        };
        let at = Placement {
            queue_id: 0,
            queue_offset: 12,
            physical_offset: 8192,
            store_timestamp_ms: 99,
        };
        let fmt = RecordFormat {
            store_host: "10.0.0.1:10911".parse().unwrap(),
            append_crc: true,
        };
        let mut out = BytesMut::new();
        encode(&mut out, "RMQ_SYS_TRANS_HALF_TOPIC", &draft, &fmt, &at);
        let half = RecordView::parse(&out).unwrap();
        assert_eq!(half.born_host(), born);
        assert_eq!(half.user_properties(), draft.properties);
        let moved = half.rewrite_for("Orders", 3);
        let v = RecordView::parse(&moved).unwrap();
        v.verify_crc().unwrap();
        assert_eq!(v.topic(), b"Orders");
        assert_eq!(v.queue_id(), 3);
        assert_eq!(v.queue_offset(), 12);
        assert_eq!(v.physical_offset(), 8192);
        assert_eq!(v.sys_flag(), half.sys_flag());
        assert_eq!(v.born_host(), born);
        assert_eq!(v.store_timestamp_ms(), 99);
        assert_eq!(v.reconsume_times(), 2);
        assert_eq!(v.body(), b"payload");
        assert_eq!(v.properties(), draft.properties);
    }

    #[test]
    fn blank_and_empty_heads() {
        let mut out = BytesMut::new();
        encode_blank_header(&mut out, 100);
        assert_eq!(head(&out), Ok(Head::Blank(100)));
        assert_eq!(head(&[0u8; 8]), Ok(Head::Empty));
        assert!(RecordView::parse(&out).is_err());
        assert!(head(&[0, 0, 0, 5, 0xDA, 0xA3, 0x20, 0xA7]).is_err());
    }

    proptest! {
        #[test]
        fn encode_parse_round_trip(
            topic in "[A-Za-z0-9_%|-]{1,127}",
            body in proptest::collection::vec(any::<u8>(), 0..2048),
            props in proptest::collection::vec(any::<u8>(), 0..512),
            born in addr(), store in addr(),
            flag in any::<i32>(), sys in any::<i32>(), ts in any::<i64>(), rc in any::<i32>(),
            qid in any::<i32>(), qoff in any::<i64>(), phys in any::<i64>(), sts in any::<i64>(),
            crc in any::<bool>(),
        ) {
            let fmt = RecordFormat { store_host: store, append_crc: crc };
            let draft = MessageDraft { flag, body: &body, properties: &props, sys_flag: sys,
                born_timestamp_ms: ts, born_host: born, reconsume_times: rc, prepared_transaction_offset: phys ^ 1 };
            let at = Placement { queue_id: qid, queue_offset: qoff, physical_offset: phys, store_timestamp_ms: sts };
            let mut out = BytesMut::from(&b"prefix"[..]);
            let n = encode(&mut out, &topic, &draft, &fmt, &at);
            prop_assert_eq!(n, encoded_len(&topic, &draft, &fmt));
            let v = RecordView::parse(&out[6..]).unwrap();
            v.verify_crc().unwrap();
            prop_assert_eq!(v.verify_record_crc(crc), Ok(crc));
            prop_assert_eq!(v.total_size(), n);
            prop_assert_eq!(v.topic(), topic.as_bytes());
            prop_assert_eq!(v.body(), &body[..]);
            prop_assert_eq!(&v.properties()[..props.len()], &props[..]);
            prop_assert_eq!(v.properties().len(), props.len() + if crc { CRC_PROPERTY_BYTES } else { 0 });
            prop_assert_eq!(v.flag(), flag);
            prop_assert_eq!(v.queue_id(), qid);
            prop_assert_eq!(v.queue_offset(), qoff);
            prop_assert_eq!(v.physical_offset(), phys);
            prop_assert_eq!(v.born_timestamp_ms(), ts);
            prop_assert_eq!(v.store_timestamp_ms(), sts);
            prop_assert_eq!(v.reconsume_times(), rc);
            prop_assert_eq!(v.prepared_transaction_offset(), phys ^ 1);
            prop_assert_eq!(v.sys_flag() & SYSFLAG_CLIENT_MASK, sys & SYSFLAG_CLIENT_MASK);
            prop_assert_eq!(v.sys_flag() & SYSFLAG_BORNHOST_V6 != 0, born.is_ipv6());
            prop_assert_eq!(v.sys_flag() & SYSFLAG_STOREHOST_V6 != 0, store.is_ipv6());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = head(&bytes);
            if let Ok(v) = RecordView::parse(&bytes) {
                let _ = (v.verify_crc(), v.verify_record_crc(true), v.body(), v.topic(), v.properties(), v.tags_code());
            }
        }

        #[test]
        fn any_flipped_byte_is_caught(body in proptest::collection::vec(any::<u8>(), 1..256), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let host: SocketAddr = "127.0.0.1:1".parse().unwrap();
            let draft = MessageDraft { flag: 0, body: &body, properties: b"KEYS\x01k\x02", sys_flag: 0,
                born_timestamp_ms: 0, born_host: host, reconsume_times: 0, prepared_transaction_offset: 0 };
            let at = Placement { queue_id: 0, queue_offset: 0, physical_offset: 0, store_timestamp_ms: 0 };
            let fmt = RecordFormat { store_host: host, append_crc: true };
            let mut out = BytesMut::new();
            encode(&mut out, "T", &draft, &fmt, &at);
            let i = pos.index(out.len());
            out[i] ^= 1 << bit;
            let caught = match RecordView::parse(&out) {
                Err(_) => true,
                Ok(v) => v.verify_crc().is_err() || v.verify_record_crc(true).is_err(),
            };
            prop_assert!(caught, "flip at {} went unnoticed", i);
        }
    }
}
