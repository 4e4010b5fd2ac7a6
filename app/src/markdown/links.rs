//! Which link targets survive in rendered agent text, and bare URLs turned into links.
//!
//! Agent text is attacker-controlled (a prompt-injected agent writes whatever it is
//! told), so a link target is kept only when it is an absolute `http:`, `https:` or
//! `mailto:` URL. Everything else (`javascript:`, `data:`, relative paths that would
//! act on the app's own origin) renders inert. The check is an allowlist on the
//! decoded target's prefix, so tricks that browsers forgive (upper case, entities,
//! embedded tabs or newlines) cannot smuggle another scheme through.

/// The schemes a rendered link may use, lower case, with what must follow them.
const ALLOWED_PREFIXES: [&str; 3] = ["https://", "http://", "mailto:"];

/// `destination` when a link to it may be rendered, `None` when it must stay inert.
pub fn safe_href(destination: &str) -> Option<&str> {
    let destination = destination.trim_matches(|c: char| c == ' ');
    // Browsers drop tabs and newlines inside URLs and stop at none of the other
    // control characters we could see here: refuse them all outright.
    if destination.chars().any(|c| c.is_control()) {
        return None;
    }
    let allowed = ALLOWED_PREFIXES.iter().any(|prefix| {
        destination
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    });
    // A scheme with nothing after it is no place to go.
    let has_rest = ALLOWED_PREFIXES
        .iter()
        .all(|prefix| !destination.eq_ignore_ascii_case(prefix));
    (allowed && has_rest).then_some(destination)
}

/// A piece of plain text: either text to print or a bare URL to link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Link { text: &'a str, href: String },
}

/// Splits `text` at bare `http://`, `https://` and `www.` URLs, the way GitHub's
/// extended autolinks do: a URL ends at whitespace or `<`, loses trailing
/// punctuation (`?!.,:*_~'"`), and loses a trailing `)` that has no `(` to close.
pub fn autolink(text: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut plain_from = 0;
    let mut search_from = 0;
    while let Some((start, www)) = next_url_start(text, search_from) {
        let rest = &text[start..];
        let mut end = rest
            .find(|c: char| c.is_whitespace() || c == '<')
            .unwrap_or(rest.len());
        end = trim_url_end(&rest[..end]);
        let url = &rest[..end];
        let long_enough = if www {
            url.len() > "www.".len() + 1
        } else {
            url.split_once("://")
                .is_some_and(|(_, host)| !host.is_empty())
        };
        if !long_enough {
            search_from = start + 1;
            continue;
        }
        if plain_from < start {
            pieces.push(Piece::Text(&text[plain_from..start]));
        }
        let href = if www {
            format!("https://{url}")
        } else {
            url.to_owned()
        };
        pieces.push(Piece::Link { text: url, href });
        plain_from = start + end;
        search_from = plain_from;
    }
    if plain_from < text.len() {
        pieces.push(Piece::Text(&text[plain_from..]));
    }
    pieces
}

/// Where the next bare URL starts at or after `from`, and whether it is a `www.` one.
/// A URL starts only at the beginning of the text or after a space or an opening
/// bracket, so `xhttp://` or `foo.www.bar` are not links.
fn next_url_start(text: &str, from: usize) -> Option<(usize, bool)> {
    let lower = text.to_ascii_lowercase();
    let mut at = from;
    while at < text.len() {
        let found = ["https://", "http://", "www."]
            .iter()
            .filter_map(|prefix| lower[at..].find(prefix).map(|index| (at + index, *prefix)))
            .min_by_key(|(index, _)| *index)?;
        let (index, prefix) = found;
        let boundary = text[..index]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || matches!(c, '(' | '[' | '{' | '*' | '_' | '~'));
        if boundary {
            return Some((index, prefix == "www."));
        }
        at = index + prefix.len();
    }
    None
}

/// The length of `url` without trailing punctuation and unbalanced closing brackets.
fn trim_url_end(url: &str) -> usize {
    let mut end = url.len();
    loop {
        let Some(last) = url[..end].chars().next_back() else {
            return end;
        };
        let trailing_punctuation = matches!(
            last,
            '?' | '!' | '.' | ',' | ':' | '*' | '_' | '~' | '\'' | '"'
        );
        let unbalanced_paren =
            last == ')' && url[..end].matches(')').count() > url[..end].matches('(').count();
        if trailing_punctuation || unbalanced_paren {
            end -= last.len_utf8();
        } else {
            return end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_and_mail_links_survive() {
        assert_eq!(
            safe_href("https://example.com/a?b=1"),
            Some("https://example.com/a?b=1")
        );
        assert_eq!(safe_href("HTTP://example.com"), Some("HTTP://example.com"));
        assert_eq!(
            safe_href("mailto:a@example.com"),
            Some("mailto:a@example.com")
        );
        for refused in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            " javascript:alert(1)",
            "java\tscript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:x",
            "/api/sessions",
            "//evil.example.com",
            "#top",
            "https:",
            "https://",
            "https://exa\nmple.com",
            "",
        ] {
            assert_eq!(safe_href(refused), None, "{refused:?}");
        }
    }

    fn link(text: &str, href: &str) -> Piece<'static> {
        Piece::Link {
            text: Box::leak(text.to_owned().into_boxed_str()),
            href: href.to_owned(),
        }
    }

    #[test]
    fn bare_urls_become_links_without_their_trailing_punctuation() {
        assert_eq!(
            autolink("See https://example.com/a_b. Then www.rust-lang.org, done"),
            [
                Piece::Text("See "),
                link("https://example.com/a_b", "https://example.com/a_b"),
                Piece::Text(". Then "),
                link("www.rust-lang.org", "https://www.rust-lang.org"),
                Piece::Text(", done"),
            ]
        );
        assert_eq!(
            autolink("(docs at https://en.wikipedia.org/wiki/Rust_(language))"),
            [
                Piece::Text("(docs at "),
                link(
                    "https://en.wikipedia.org/wiki/Rust_(language)",
                    "https://en.wikipedia.org/wiki/Rust_(language)"
                ),
                Piece::Text(")"),
            ]
        );
    }

    #[test]
    fn text_without_urls_or_with_url_like_words_stays_text() {
        assert_eq!(autolink("plain words"), [Piece::Text("plain words")]);
        assert_eq!(
            autolink("xhttp://a.b and foo.www.bar and http://"),
            [Piece::Text("xhttp://a.b and foo.www.bar and http://")]
        );
        assert!(autolink("").is_empty());
    }
}
