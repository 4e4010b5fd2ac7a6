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

    /// Where the two quotings this replaced differed (one always quoted, the other
    /// left safe words bare): a safe word stays bare, the empty word is `''`, and
    /// whatever a shell would expand, split or glob is quoted.
    #[test]
    fn safe_words_stay_bare_and_everything_else_is_quoted() {
        assert_eq!(shell_quote("/workspace/app"), "/workspace/app");
        assert_eq!(shell_quote("A=1"), "A=1");
        assert_eq!(shell_quote(""), "''");
        for text in ["~", "a b", "$x", "`x`", "a*", "!", "a\nb", "it's", "-n x"] {
            assert!(shell_quote(text).starts_with('\''), "{text:?}");
        }
    }

    #[test]
    fn quoting_survives_a_shell() {
        for text in [
            "plain",
            "with space",
            "it's",
            "$HOME",
            "a\"b",
            "",
            "*",
            "~",
            "a\nb",
            "\\",
            "'",
        ] {
            let output = std::process::Command::new("sh")
                .args(["-c", &format!("printf %s {}", shell_quote(text))])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(output.stdout).unwrap(), text);
        }
    }
}
