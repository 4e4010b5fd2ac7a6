//! Text of any script carried in an internal header (a display name, say): header
//! values must be ASCII bytes, so the text travels percent-encoded (UTF-8, every
//! byte outside `A-Z a-z 0-9 - . _ ~` as `%XX`) and is decoded on the other side.
//!
//! Must not depend on `worker`.

/// `text` percent-encoded for a header value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The text [`encode`] encoded; `None` for a value it could not have produced.
pub fn decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_script_round_trips_as_ascii() {
        for text in ["Zoë 🚀 李", "plain", "", "100% a/b?c=d", "Ünïcødé ✓ 名前"] {
            let encoded = encode(text);
            assert!(encoded.is_ascii(), "{encoded}");
            assert!(!encoded.contains(' '));
            assert_eq!(decode(&encoded).as_deref(), Some(text));
        }
        assert_eq!(encode("Zoë"), "Zo%C3%AB");
    }

    #[test]
    fn broken_values_decode_to_nothing() {
        assert_eq!(decode("%"), None);
        assert_eq!(decode("%G1"), None);
        assert_eq!(decode("%FF"), None);
        assert_eq!(decode("ab%2"), None);
    }
}
