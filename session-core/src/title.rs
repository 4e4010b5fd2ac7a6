//! Session titles: derived from the first prompt when the user gave none, and
//! checked when the user did.
//!
//! This module must not depend on anything but the protocol's limits.

use nightshift_protocol::limits::MAX_TITLE_CHARS;

/// How many characters of the first prompt a derived title keeps.
pub const DERIVED_TITLE_CHARS: usize = 60;

/// The title for a session whose first prompt is `prompt`: its first non-blank line,
/// trimmed, cut to [`DERIVED_TITLE_CHARS`] characters (on a character boundary, with
/// an ellipsis when cut). `None` when the prompt has no visible text.
pub fn title_from_prompt(prompt: &str) -> Option<String> {
    let line = prompt
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())?;
    if line.chars().count() <= DERIVED_TITLE_CHARS {
        return Some(line.to_owned());
    }
    let cut: String = line.chars().take(DERIVED_TITLE_CHARS - 1).collect();
    Some(format!("{}…", cut.trim_end()))
}

/// Why a title given by the user was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TitleError {
    #[error("a title may have at most {MAX_TITLE_CHARS} characters")]
    TooLong,
    #[error("a title must be a single line")]
    MultipleLines,
}

/// Normalizes a title the user gave: trimmed, one line, at most
/// [`MAX_TITLE_CHARS`] characters. An empty result means "untitled".
pub fn normalize_title(title: &str) -> Result<String, TitleError> {
    let title = title.trim();
    if title.contains(['\n', '\r']) {
        return Err(TitleError::MultipleLines);
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(TitleError::TooLong);
    }
    Ok(title.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_visible_line_becomes_the_title() {
        assert_eq!(
            title_from_prompt("\n  \n  Fix the login bug  \nDetails...").as_deref(),
            Some("Fix the login bug")
        );
    }

    #[test]
    fn blank_prompts_give_no_title() {
        assert_eq!(title_from_prompt(""), None);
        assert_eq!(title_from_prompt(" \n\t\n"), None);
    }

    #[test]
    fn long_lines_are_cut_on_a_char_boundary() {
        let prompt = "é".repeat(100);
        let title = title_from_prompt(&prompt).unwrap();
        assert_eq!(title.chars().count(), DERIVED_TITLE_CHARS);
        assert!(title.ends_with('…'));
        assert!(title.starts_with("éé"));
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_kept_whole() {
        let prompt = "a".repeat(DERIVED_TITLE_CHARS);
        assert_eq!(title_from_prompt(&prompt), Some(prompt));
    }

    #[test]
    fn user_titles_are_trimmed_and_checked() {
        assert_eq!(normalize_title("  My work ").as_deref(), Ok("My work"));
        assert_eq!(normalize_title("   ").as_deref(), Ok(""));
        assert_eq!(normalize_title("a\nb"), Err(TitleError::MultipleLines));
        assert_eq!(
            normalize_title(&"x".repeat(MAX_TITLE_CHARS + 1)),
            Err(TitleError::TooLong)
        );
        assert!(normalize_title(&"x".repeat(MAX_TITLE_CHARS)).is_ok());
    }
}
