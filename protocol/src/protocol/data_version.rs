//! `DataVersion` (spec §5.5): the version stamp of a broker's topic table.
//! The name server compares whole versions for equality to decide whether a
//! registration carries new topic data.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::lenient;

/// A topic-table version. `Default` is all zeros, which is what Java's name
/// server assumes for a registration without a body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DataVersion {
    /// Incremented on every change.
    #[serde(deserialize_with = "lenient::int")]
    pub counter: i64,
    /// 5.x: epoch of the broker's role (controller mode); 0 otherwise. A
    /// registration with a lower state version than the stored one is refused.
    #[serde(deserialize_with = "lenient::int")]
    pub state_version: i64,
    /// Wall-clock ms of the last change.
    #[serde(deserialize_with = "lenient::int")]
    pub timestamp: i64,
}

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is before it).
/// Wall-clock milliseconds since the epoch, as Java's currentTimeMillis.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

impl DataVersion {
    /// A fresh version stamped with the current time, as Java's constructor.
    pub fn now() -> DataVersion {
        DataVersion {
            timestamp: now_ms(),
            ..DataVersion::default()
        }
    }

    /// Marks a change: counter + 1, timestamp = now (Java `nextVersion()`).
    pub fn next_version(&mut self) {
        self.counter = self.counter.wrapping_add(1);
        self.timestamp = now_ms();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_json;

    #[test]
    fn spec_example_round_trips() {
        let json = r#"{"counter":3,"stateVersion":0,"timestamp":1715551234567}"#;
        let version: DataVersion = decode_json(json.as_bytes()).expect("spec example");
        assert_eq!(
            version,
            DataVersion {
                counter: 3,
                state_version: 0,
                timestamp: 1_715_551_234_567
            }
        );
        assert_eq!(serde_json::to_string(&version).expect("encodes"), json);
    }

    #[test]
    fn next_version_counts_and_restamps() {
        let mut version = DataVersion::now();
        let first = version;
        assert_eq!(first.counter, 0);
        assert!(first.timestamp > 1_700_000_000_000);
        version.next_version();
        assert_eq!(version.counter, 1);
        assert!(version.timestamp >= first.timestamp);
        assert_ne!(version, first);
    }
}
