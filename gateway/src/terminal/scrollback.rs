//! A terminal tab's scroll-back: the last bytes the shell wrote, bounded, replayed to
//! every client that opens the tab so it sees the same screen as the others.

use std::collections::VecDeque;

/// The scroll-back kept per tab.
pub const SCROLLBACK_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct Scrollback {
    bytes: VecDeque<u8>,
    capacity: usize,
}

impl Scrollback {
    pub fn new(capacity: usize) -> Self {
        Self {
            bytes: VecDeque::with_capacity(capacity.min(64 * 1024)),
            capacity,
        }
    }

    /// Appends output, dropping the oldest bytes beyond the capacity.
    pub fn push(&mut self, chunk: &[u8]) {
        let chunk = &chunk[chunk.len().saturating_sub(self.capacity)..];
        let overflow = (self.bytes.len() + chunk.len()).saturating_sub(self.capacity);
        self.bytes.drain(..overflow);
        self.bytes.extend(chunk);
    }

    /// The kept bytes, starting at a character: when the oldest bytes were cut in
    /// the middle of a UTF-8 character, its leftover continuation bytes are skipped.
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes
            .iter()
            .copied()
            .skip_while(|byte| byte & 0b1100_0000 == 0b1000_0000)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_bytes_within_its_capacity() {
        let mut scrollback = Scrollback::new(8);
        scrollback.push(b"hello ");
        assert_eq!(scrollback.to_vec(), b"hello ");
        scrollback.push(b"world");
        assert_eq!(scrollback.to_vec(), b"lo world");
        scrollback.push(b"0123456789abc");
        assert_eq!(scrollback.to_vec(), b"56789abc");
        assert_eq!(scrollback.len(), 8);
    }

    #[test]
    fn a_replay_never_starts_inside_a_character() {
        let mut scrollback = Scrollback::new(4);
        scrollback.push("aé€".as_bytes()); // 1 + 2 + 3 bytes: 'a' and half of 'é' are cut
        assert_eq!(scrollback.to_vec(), "€".as_bytes());
    }

    #[test]
    fn never_grows_past_the_default_cap() {
        let mut scrollback = Scrollback::new(SCROLLBACK_BYTES);
        for _ in 0..100 {
            scrollback.push(&[b'x'; 16 * 1024]);
        }
        assert_eq!(scrollback.len(), SCROLLBACK_BYTES);
    }
}
