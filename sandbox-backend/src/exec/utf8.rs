//! Turns the byte chunks read from a pipe into UTF-8 text without breaking a
//! multi-byte character that straddles two reads.

/// Decodes a byte stream chunk by chunk. Bytes that are not UTF-8 become U+FFFD; a
/// character cut in half by a read boundary is held back until the next chunk.
#[derive(Debug, Default)]
pub struct Utf8Chunker {
    pending: Vec<u8>,
}

impl Utf8Chunker {
    /// Decodes `bytes` (after anything held back), holding back an incomplete
    /// character at the end.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut text = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    text.push_str(valid);
                    rest = &[];
                    break;
                }
                Err(error) => {
                    let (valid, after) = rest.split_at(error.valid_up_to());
                    // `valid` is UTF-8 by the definition of `valid_up_to`.
                    text.push_str(&String::from_utf8_lossy(valid));
                    match error.error_len() {
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        // An incomplete character at the very end: wait for more.
                        None => {
                            rest = after;
                            break;
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        text
    }

    /// Whatever is still held back, decoded lossily (the stream ended mid-character).
    pub fn finish(self) -> String {
        String::from_utf8_lossy(&self.pending).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_character_split_across_chunks_whole() {
        let bytes = "héllo €".as_bytes();
        let mut chunker = Utf8Chunker::default();
        let mut text = String::new();
        for byte in bytes {
            text.push_str(&chunker.push(std::slice::from_ref(byte)));
        }
        text.push_str(&chunker.finish());
        assert_eq!(text, "héllo €");
    }

    #[test]
    fn replaces_invalid_bytes_and_keeps_going() {
        let mut chunker = Utf8Chunker::default();
        assert_eq!(chunker.push(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(chunker.push(b"\xe2\x82"), "");
        assert_eq!(chunker.finish(), "\u{fffd}");
    }
}
