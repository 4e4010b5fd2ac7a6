//! Shell words: how the providers that drive a sandbox through `sh -c` (the remote
//! ones, and the local provider's template builds) put a value into a command line.

/// Quotes `text` for a POSIX shell: as it is when every byte is safe unquoted, else
/// single-quoted.
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@+%".contains(&b))
    {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_a_shell() {
        for text in ["plain", "with space", "it's", "$HOME", "a\"b", "", "*"] {
            let output = std::process::Command::new("sh")
                .args(["-c", &format!("printf %s {}", shell_quote(text))])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(output.stdout).unwrap(), text);
        }
    }
}
