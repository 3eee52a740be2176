//! Topic and queue permission bits (spec §7.4), as carried in
//! `TopicConfig.perm` and `QueueData.perm`.
//!
//! Plain `u32` bit masks rather than a flags type: the value travels as a
//! decimal int in JSON and headers, and clients may send any combination.

/// Priority bit. Carried but unused by clients.
pub const PERM_PRIORITY: u32 = 8;
/// Consumers may read (pull) the topic's queues.
pub const PERM_READ: u32 = 4;
/// Producers may write to the topic's queues.
pub const PERM_WRITE: u32 = 2;
/// The topic may serve as an auto-create template (TBW102 has it).
pub const PERM_INHERIT: u32 = 1;

/// Perm of an ordinary topic: read and write.
pub const PERM_READ_WRITE: u32 = PERM_READ | PERM_WRITE;

/// Whether `perm` allows reading.
pub fn is_readable(perm: u32) -> bool {
    perm & PERM_READ != 0
}

/// Whether `perm` allows writing.
pub fn is_writeable(perm: u32) -> bool {
    perm & PERM_WRITE != 0
}

/// Whether `perm` allows inheriting (auto-create template).
pub fn is_inherited(perm: u32) -> bool {
    perm & PERM_INHERIT != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_match_the_spec() {
        assert_eq!(PERM_READ_WRITE, 6);
        assert_eq!(PERM_READ_WRITE | PERM_INHERIT, 7);
        assert!(is_readable(7) && is_writeable(7) && is_inherited(7));
        assert!(!is_writeable(4) && !is_readable(2) && !is_inherited(6));
        assert_eq!(PERM_PRIORITY, 8);
    }
}
