//! "RCHA v1", the replication wire format between rocketcore brokers
//! (`shared/spec/replication.md` §6.2): an identification handshake, then
//! RocketMQ 5's AutoSwitch framing — a 36-byte transfer header before raw
//! commit-log bytes, and a 20-byte ack back. Big-endian throughout, as
//! Java's ByteBuffer. Decoding never panics and never trusts a length.

pub const MAGIC: [u8; 4] = *b"RCHA";
pub const VERSION: u16 = 1;
/// The (topic, queueId) → shard function both sides must share.
pub const PLACEMENT_ID: u32 = 1;
pub const HELLO_FIXED_BYTES: usize = 46;
pub const MAX_BROKER_NAME: usize = 255;
pub const HELLO_ACK_FIXED_BYTES: usize = 32;
pub const MAX_EPOCH_ENTRIES: usize = 1024;
pub const TRANSFER_HEADER_BYTES: usize = 36;
pub const ACK_BYTES: usize = 20;
/// AutoSwitch's TRANSFER state ordinal.
pub const STATE_TRANSFER: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub shard: u16,
    pub shards: u16,
    pub placement: u32,
    pub segment_bytes: u64,
    pub slave_id: i64,
    /// In-shard end of the slave's log: where the stream starts.
    pub slave_max: u64,
    pub last_epoch: i32,
    pub broker_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Status {
    Ok = 0,
    NotMaster = 1,
    ShardMismatch = 2,
    SegmentMismatch = 3,
    NameMismatch = 4,
    PlacementMismatch = 5,
    DuplicateSlave = 6,
    BadVersion = 7,
    Fenced = 8,
    /// The slave's log is longer than the master's: it holds bytes the
    /// master never had (or lost); nothing is streamed.
    SlaveAhead = 9,
    /// The slave's log ends below the master's start: retention deleted
    /// what it would need next.
    SlaveBehind = 10,
}

impl Status {
    pub fn from_u16(v: u16) -> Option<Status> {
        use Status::*;
        Some(match v {
            0 => Ok,
            1 => NotMaster,
            2 => ShardMismatch,
            3 => SegmentMismatch,
            4 => NameMismatch,
            5 => PlacementMismatch,
            6 => DuplicateSlave,
            7 => BadVersion,
            8 => Fenced,
            9 => SlaveAhead,
            10 => SlaveBehind,
            _ => return None,
        })
    }

    pub fn explain(self) -> &'static str {
        match self {
            Status::Ok => "accepted",
            Status::NotMaster => "the broker is not a master",
            Status::ShardMismatch => "master and slave run different shard counts",
            Status::SegmentMismatch => {
                "master and slave use different segment sizes (mappedFileSizeCommitLog)"
            }
            Status::NameMismatch => "the slave belongs to another brokerName",
            Status::PlacementMismatch => "master and slave place queues on shards differently",
            Status::DuplicateSlave => "a slave with this brokerId is already streaming this shard",
            Status::BadVersion => "unknown replication protocol version",
            Status::Fenced => "the slave has seen a newer master epoch",
            Status::SlaveAhead => "the slave's log is longer than the master's",
            Status::SlaveBehind => {
                "the master no longer has the log where the slave's ends (retention)"
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloAck {
    pub status: Status,
    pub master_min: u64,
    pub master_max: u64,
    pub master_epoch: i32,
    /// (epoch, start offset) per epoch; empty in classic mode.
    pub epochs: Vec<(i32, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferHeader {
    pub body_len: u32,
    /// In-shard offset of the body's first byte.
    pub offset: u64,
    pub epoch: i32,
    pub epoch_start: u64,
    /// Classic mode: the master's log end when the frame was cut.
    pub confirm: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// In-shard end of the records the slave has appended.
    pub written: u64,
    /// In-shard end of what the slave has synced.
    pub flushed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("bad magic {0:02x?}: not a rocketcore replication peer")]
    Magic([u8; 4]),
    #[error("{what}: {detail}")]
    Bad { what: &'static str, detail: String },
}

fn bad(what: &'static str, detail: impl Into<String>) -> WireError {
    WireError::Bad {
        what,
        detail: detail.into(),
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl Hello {
    pub fn encode(&self) -> Vec<u8> {
        let name = self.broker_name.as_bytes();
        let name = &name[..name.len().min(MAX_BROKER_NAME)];
        let mut b = Vec::with_capacity(HELLO_FIXED_BYTES + name.len());
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&VERSION.to_be_bytes());
        b.extend_from_slice(&0u16.to_be_bytes());
        b.extend_from_slice(&self.shard.to_be_bytes());
        b.extend_from_slice(&self.shards.to_be_bytes());
        b.extend_from_slice(&self.placement.to_be_bytes());
        b.extend_from_slice(&self.segment_bytes.to_be_bytes());
        b.extend_from_slice(&self.slave_id.to_be_bytes());
        b.extend_from_slice(&self.slave_max.to_be_bytes());
        b.extend_from_slice(&self.last_epoch.to_be_bytes());
        b.extend_from_slice(&(name.len() as u16).to_be_bytes());
        b.extend_from_slice(name);
        b
    }

    /// Checks the fixed part; returns the broker-name length still to read.
    /// The version is returned too, so the master can answer BAD_VERSION
    /// instead of just closing.
    pub fn check_fixed(b: &[u8; HELLO_FIXED_BYTES]) -> Result<(u16, usize), WireError> {
        let magic: [u8; 4] = b[0..4].try_into().expect("4 bytes");
        if magic != MAGIC {
            return Err(WireError::Magic(magic));
        }
        let name_len = u16_at(b, 44) as usize;
        if name_len == 0 || name_len > MAX_BROKER_NAME {
            return Err(bad("hello", format!("broker name of {name_len} bytes")));
        }
        Ok((u16_at(b, 4), name_len))
    }

    pub fn decode(fixed: &[u8; HELLO_FIXED_BYTES], name: &[u8]) -> Result<Hello, WireError> {
        let (_, name_len) = Self::check_fixed(fixed)?;
        if name.len() != name_len {
            return Err(bad("hello", "broker name length does not match"));
        }
        let broker_name = std::str::from_utf8(name)
            .map_err(|_| bad("hello", "broker name is not UTF-8"))?
            .to_string();
        let shards = u16_at(fixed, 10);
        let shard = u16_at(fixed, 8);
        if shards == 0 || shard >= shards {
            return Err(bad("hello", format!("shard {shard} of {shards}")));
        }
        Ok(Hello {
            shard,
            shards,
            placement: u32_at(fixed, 12),
            segment_bytes: u64_at(fixed, 16),
            slave_id: u64_at(fixed, 24) as i64,
            slave_max: u64_at(fixed, 32),
            last_epoch: u32_at(fixed, 40) as i32,
            broker_name,
        })
    }
}

impl HelloAck {
    pub fn refusal(status: Status) -> HelloAck {
        HelloAck {
            status,
            master_min: 0,
            master_max: 0,
            master_epoch: 0,
            epochs: Vec::new(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HELLO_ACK_FIXED_BYTES + 12 * self.epochs.len());
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&VERSION.to_be_bytes());
        b.extend_from_slice(&(self.status as u16).to_be_bytes());
        b.extend_from_slice(&self.master_min.to_be_bytes());
        b.extend_from_slice(&self.master_max.to_be_bytes());
        b.extend_from_slice(&self.master_epoch.to_be_bytes());
        b.extend_from_slice(&(self.epochs.len() as u32).to_be_bytes());
        for (e, start) in &self.epochs {
            b.extend_from_slice(&e.to_be_bytes());
            b.extend_from_slice(&start.to_be_bytes());
        }
        b
    }

    /// Decodes the fixed part; returns it with the epoch count to read.
    pub fn decode_fixed(b: &[u8; HELLO_ACK_FIXED_BYTES]) -> Result<(HelloAck, usize), WireError> {
        let magic: [u8; 4] = b[0..4].try_into().expect("4 bytes");
        if magic != MAGIC {
            return Err(WireError::Magic(magic));
        }
        if u16_at(b, 4) != VERSION {
            return Err(bad("hello ack", format!("version {}", u16_at(b, 4))));
        }
        let raw = u16_at(b, 6);
        let status =
            Status::from_u16(raw).ok_or_else(|| bad("hello ack", format!("status {raw}")))?;
        let n = u32_at(b, 28) as usize;
        if n > MAX_EPOCH_ENTRIES {
            return Err(bad("hello ack", format!("{n} epoch entries")));
        }
        Ok((
            HelloAck {
                status,
                master_min: u64_at(b, 8),
                master_max: u64_at(b, 16),
                master_epoch: u32_at(b, 24) as i32,
                epochs: Vec::new(),
            },
            n,
        ))
    }

    pub fn decode_epochs(&mut self, b: &[u8]) -> Result<(), WireError> {
        if !b.len().is_multiple_of(12) {
            return Err(bad("hello ack", "torn epoch entry"));
        }
        self.epochs = b
            .chunks_exact(12)
            .map(|c| (u32_at(c, 0) as i32, u64_at(c, 4)))
            .collect();
        Ok(())
    }
}

impl TransferHeader {
    pub fn encode(&self, out: &mut [u8; TRANSFER_HEADER_BYTES]) {
        out[0..4].copy_from_slice(&STATE_TRANSFER.to_be_bytes());
        out[4..8].copy_from_slice(&self.body_len.to_be_bytes());
        out[8..16].copy_from_slice(&self.offset.to_be_bytes());
        out[16..20].copy_from_slice(&self.epoch.to_be_bytes());
        out[20..28].copy_from_slice(&self.epoch_start.to_be_bytes());
        out[28..36].copy_from_slice(&self.confirm.to_be_bytes());
    }

    /// `max_body` bounds what a peer may make us buffer.
    pub fn decode(b: &[u8; TRANSFER_HEADER_BYTES], max_body: usize) -> Result<Self, WireError> {
        let state = u32_at(b, 0);
        if state != STATE_TRANSFER {
            return Err(bad("transfer header", format!("state {state}")));
        }
        let body_len = u32_at(b, 4);
        if body_len as usize > max_body {
            return Err(bad(
                "transfer header",
                format!("body of {body_len} bytes exceeds {max_body}"),
            ));
        }
        Ok(TransferHeader {
            body_len,
            offset: u64_at(b, 8),
            epoch: u32_at(b, 16) as i32,
            epoch_start: u64_at(b, 20),
            confirm: u64_at(b, 28),
        })
    }
}

impl Ack {
    pub fn encode(&self) -> [u8; ACK_BYTES] {
        let mut b = [0u8; ACK_BYTES];
        b[0..4].copy_from_slice(&STATE_TRANSFER.to_be_bytes());
        b[4..12].copy_from_slice(&self.written.to_be_bytes());
        b[12..20].copy_from_slice(&self.flushed.to_be_bytes());
        b
    }

    pub fn decode(b: &[u8; ACK_BYTES]) -> Result<Ack, WireError> {
        let state = u32_at(b, 0);
        if state != STATE_TRANSFER {
            return Err(bad("ack", format!("state {state}")));
        }
        let a = Ack {
            written: u64_at(b, 4),
            flushed: u64_at(b, 12),
        };
        if a.flushed > a.written {
            return Err(bad(
                "ack",
                format!("flushed {} past written {}", a.flushed, a.written),
            ));
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hello() -> Hello {
        Hello {
            shard: 1,
            shards: 2,
            placement: PLACEMENT_ID,
            segment_bytes: 1 << 30,
            slave_id: 1,
            slave_max: 123_456,
            last_epoch: -1,
            broker_name: "broker-a".into(),
        }
    }

    fn split_hello(b: &[u8]) -> ([u8; HELLO_FIXED_BYTES], &[u8]) {
        (
            b[..HELLO_FIXED_BYTES].try_into().unwrap(),
            &b[HELLO_FIXED_BYTES..],
        )
    }

    #[test]
    fn hello_round_trips_and_names_what_is_wrong() {
        let h = hello();
        let b = h.encode();
        assert_eq!(b.len(), HELLO_FIXED_BYTES + 8);
        let (fixed, name) = split_hello(&b);
        assert_eq!(Hello::check_fixed(&fixed).unwrap(), (VERSION, 8));
        assert_eq!(Hello::decode(&fixed, name).unwrap(), h);
        let mut wrong = fixed;
        wrong[0] = b'X';
        assert!(matches!(
            Hello::check_fixed(&wrong),
            Err(WireError::Magic(_))
        ));
        let bad_shard = Hello {
            shard: 2,
            ..hello()
        }
        .encode();
        let (fixed, name) = split_hello(&bad_shard);
        assert!(Hello::decode(&fixed, name).is_err());
    }

    #[test]
    fn hello_ack_transfer_and_ack_round_trip() {
        let a = HelloAck {
            status: Status::Ok,
            master_min: 5,
            master_max: 99,
            master_epoch: 3,
            epochs: vec![(1, 0), (3, 50)],
        };
        let b = a.encode();
        let (mut back, n) = HelloAck::decode_fixed(&b[..32].try_into().unwrap()).unwrap();
        assert_eq!(n, 2);
        back.decode_epochs(&b[32..]).unwrap();
        assert_eq!(back, a);
        let t = TransferHeader {
            body_len: 4096,
            offset: 1 << 40,
            epoch: 0,
            epoch_start: 0,
            confirm: 77,
        };
        let mut hb = [0u8; TRANSFER_HEADER_BYTES];
        t.encode(&mut hb);
        assert_eq!(TransferHeader::decode(&hb, 1 << 20).unwrap(), t);
        assert!(TransferHeader::decode(&hb, 100).is_err());
        let k = Ack {
            written: 10,
            flushed: 4,
        };
        assert_eq!(Ack::decode(&k.encode()).unwrap(), k);
        let bogus = Ack {
            written: 1,
            flushed: 4,
        };
        assert!(Ack::decode(&bogus.encode()).is_err());
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let mut b = bytes.clone();
            b.resize(128, 0);
            let fixed: [u8; HELLO_FIXED_BYTES] = b[..HELLO_FIXED_BYTES].try_into().unwrap();
            let _ = Hello::check_fixed(&fixed);
            let _ = Hello::decode(&fixed, &bytes);
            let ha: [u8; HELLO_ACK_FIXED_BYTES] = b[..HELLO_ACK_FIXED_BYTES].try_into().unwrap();
            if let Ok((mut a, _)) = HelloAck::decode_fixed(&ha) {
                let _ = a.decode_epochs(&bytes);
            }
            let th: [u8; TRANSFER_HEADER_BYTES] = b[..TRANSFER_HEADER_BYTES].try_into().unwrap();
            let _ = TransferHeader::decode(&th, 1 << 20);
            let ack: [u8; ACK_BYTES] = b[..ACK_BYTES].try_into().unwrap();
            let _ = Ack::decode(&ack);
        }
    }
}
