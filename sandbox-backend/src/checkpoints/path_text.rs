//! A workspace path as manifest text: file names are bytes, JSON strings are UTF-8,
//! so every byte that is not part of valid UTF-8, and `%` itself, is written `%XX`.
//! Lossless both ways, and plain for the usual names.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

pub fn encode(path: &OsStr) -> String {
    let mut text = String::new();
    for chunk in path.as_bytes().utf8_chunks() {
        for character in chunk.valid().chars() {
            if character == '%' {
                text.push_str("%25");
            } else {
                text.push(character);
            }
        }
        for byte in chunk.invalid() {
            text.push_str(&format!("%{byte:02X}"));
        }
    }
    text
}

/// `None` for text that [`encode`] cannot have written.
pub fn decode(text: &str) -> Option<OsString> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    Some(OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_whatever_their_bytes() {
        for name in [
            &b"plain.txt"[..],
            b"100%.txt",
            b"%41",
            b"caf\xc3\xa9",
            b"bad\xff\xfe",
            b"",
        ] {
            let encoded = encode(OsStr::from_bytes(name));
            assert_eq!(decode(&encoded).unwrap().as_bytes(), name, "{encoded}");
        }
        assert_eq!(encode(OsStr::new("a/b c.rs")), "a/b c.rs");
    }

    #[test]
    fn a_cut_escape_is_refused() {
        assert!(decode("abc%4").is_none());
        assert!(decode("abc%zz").is_none());
    }
}
