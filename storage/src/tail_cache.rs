//! The newest bytes of a shard's commit log, in memory. O_DIRECT bypasses
//! the page cache, so this is what lets caught-up consumers read without
//! touching the disk, and what the flusher copies into aligned buffers.
//!
//! The cache is a run of contiguous immutable pieces. Each append batch is
//! one piece, so a record never straddles two pieces and every cached read is
//! a zero-copy `Bytes` slice.

use std::collections::VecDeque;

use bytes::Bytes;

#[derive(Default)]
pub(crate) struct TailCache {
    /// (log offset of the first byte, bytes); contiguous and ascending.
    pieces: VecDeque<(u64, Bytes)>,
    /// Where the cache ends when it holds nothing.
    empty_at: u64,
}

impl TailCache {
    pub(crate) fn new(at: u64) -> Self {
        TailCache {
            empty_at: at,
            ..Default::default()
        }
    }

    pub(crate) fn start(&self) -> u64 {
        self.pieces.front().map_or(self.empty_at, |(at, _)| *at)
    }

    pub(crate) fn end(&self) -> u64 {
        self.pieces
            .back()
            .map_or(self.empty_at, |(at, b)| at + b.len() as u64)
    }

    /// Bytes held: the pieces are contiguous.
    pub(crate) fn bytes(&self) -> u64 {
        self.end() - self.start()
    }

    pub(crate) fn push(&mut self, at: u64, piece: Bytes) {
        assert_eq!(at, self.end(), "tail cache pieces must be contiguous");
        if piece.is_empty() {
            return;
        }
        self.pieces.push_back((at, piece));
    }

    fn piece_index(&self, at: u64) -> Option<usize> {
        if at < self.start() || at >= self.end() {
            return None;
        }
        // First piece starting after `at`, minus one.
        Some(self.pieces.partition_point(|(s, _)| *s <= at) - 1)
    }

    /// The piece holding `at`, with its start.
    pub(crate) fn piece_at(&self, at: u64) -> Option<(u64, Bytes)> {
        let i = self.piece_index(at)?;
        let (s, b) = &self.pieces[i];
        Some((*s, b.clone()))
    }

    /// `len` bytes at `at` when they lie in one piece: a zero-copy slice.
    pub(crate) fn get(&self, at: u64, len: usize) -> Option<Bytes> {
        let i = self.piece_index(at)?;
        let (s, b) = &self.pieces[i];
        let from = (at - s) as usize;
        (from + len <= b.len()).then(|| b.slice(from..from + len))
    }

    /// Copies `dst.len()` bytes starting at `at` (may span pieces). Returns
    /// how many bytes were available.
    pub(crate) fn copy_out(&self, at: u64, dst: &mut [u8]) -> usize {
        let Some(mut i) = self.piece_index(at) else {
            return 0;
        };
        let mut done = 0;
        let mut pos = at;
        while done < dst.len() && i < self.pieces.len() {
            let (s, b) = &self.pieces[i];
            let from = (pos - s) as usize;
            let n = (b.len() - from).min(dst.len() - done);
            dst[done..done + n].copy_from_slice(&b[from..from + n]);
            done += n;
            pos += n as u64;
            i += 1;
        }
        done
    }

    /// Drops the oldest pieces while over `cap_bytes`, never one that ends
    /// after `keep_from` (the flusher still needs those bytes).
    pub(crate) fn evict(&mut self, keep_from: u64, cap_bytes: u64) {
        while self.bytes() > cap_bytes {
            match self.pieces.front() {
                Some((s, b)) if s + b.len() as u64 <= keep_from => {
                    self.empty_at = s + b.len() as u64;
                    self.pieces.pop_front();
                }
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_copies_and_evicts() {
        let mut c = TailCache::new(100);
        c.push(100, Bytes::from_static(b"abcd"));
        c.push(104, Bytes::from_static(b"efgh"));
        c.push(108, Bytes::from_static(b"ij"));
        assert_eq!((c.start(), c.end(), c.bytes()), (100, 110, 10));
        assert_eq!(c.get(105, 3).unwrap(), &b"fgh"[..]);
        assert!(c.get(103, 2).is_none(), "spans two pieces");
        assert!(c.get(99, 1).is_none());
        assert!(c.get(110, 1).is_none());
        let mut dst = [0u8; 8];
        assert_eq!(c.copy_out(102, &mut dst), 8);
        assert_eq!(&dst, b"cdefghij");
        let mut dst = [0u8; 8];
        assert_eq!(c.copy_out(106, &mut dst), 4);
        c.evict(104, 0);
        assert_eq!(c.start(), 104, "a piece the flusher needs stays");
        c.evict(110, 2);
        assert_eq!((c.start(), c.bytes()), (108, 2));
        c.evict(110, 0);
        assert_eq!((c.start(), c.end(), c.bytes()), (110, 110, 0));
    }
}
