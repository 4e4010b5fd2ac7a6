//! Lexers for the languages that are not C-like: HTML/XML, CSS and unified diffs.

use super::{Output, Token};

/// Tags, attribute names, attribute values and comments; text between tags is plain.
pub fn html(code: &str, out: &mut Output) {
    let mut at = 0;
    while at < code.len() {
        let rest = &code[at..];
        if rest.starts_with("<!--") {
            let length = rest.find("-->").map_or(rest.len(), |end| end + 3);
            out.push(Token::Comment, &rest[..length]);
            at += length;
        } else if rest.starts_with('<')
            && rest[1..]
                .starts_with(|c: char| c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?'))
        {
            at += tag(rest, out);
        } else {
            // Text up to the next `<`, at least one character (a `<` that opens no tag).
            let first = rest.chars().next().map_or(1, char::len_utf8);
            let length = rest[first..]
                .find('<')
                .map_or(rest.len(), |end| first + end);
            out.push(Token::Plain, &rest[..length]);
            at += length;
        }
    }
}

/// One tag from its `<` through its `>` (or to the end of the text); its length.
fn tag(rest: &str, out: &mut Output) -> usize {
    // `<name`, `</name`, `<!DOCTYPE`, `<?xml`: the name ends at a blank, `/` or `>`.
    let name_start = if rest[1..].starts_with('/') { 2 } else { 1 };
    let name_end = name_start
        + rest[name_start..]
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(rest.len() - name_start);
    out.push(Token::Tag, &rest[..name_end]);
    let mut at = name_end;
    while let Some(c) = rest[at..].chars().next() {
        let here = &rest[at..];
        if c == '>' || here.starts_with("/>") {
            let length = if c == '>' { 1 } else { 2 };
            out.push(Token::Tag, &here[..length]);
            return at + length;
        }
        let length = if c == '"' || c == '\'' {
            let length = here[1..].find(c).map_or(here.len(), |end| end + 2);
            out.push(Token::String, &here[..length]);
            length
        } else if c.is_alphabetic() || c == '_' || c == ':' || c == '@' {
            let length = here
                .find(|c: char| c.is_whitespace() || matches!(c, '=' | '>' | '/' | '"' | '\''))
                .unwrap_or(here.len());
            out.push(Token::Attribute, &here[..length]);
            length
        } else {
            out.push(Token::Plain, &here[..c.len_utf8()]);
            c.len_utf8()
        };
        at += length;
    }
    rest.len()
}

/// Selectors, at-rules, properties, strings, numbers with units and colours, comments.
pub fn css(code: &str, out: &mut Output) {
    let mut at = 0;
    let mut depth = 0usize;
    while let Some(c) = code[at..].chars().next() {
        let rest = &code[at..];
        let (token, length) = if let Some(comment) = rest.strip_prefix("/*") {
            (
                Token::Comment,
                comment.find("*/").map_or(rest.len(), |end| end + 4),
            )
        } else if c == '"' || c == '\'' {
            (
                Token::String,
                rest[1..].find(c).map_or(rest.len(), |end| end + 2),
            )
        } else if c == '@' {
            (Token::Keyword, 1 + name_length(&rest[1..]))
        } else if c == '#' && depth > 0 {
            (Token::Number, 1 + name_length(&rest[1..]))
        } else if c.is_ascii_digit() {
            (
                Token::Number,
                rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '%'))
                    .unwrap_or(rest.len()),
            )
        } else if depth == 0 && (c.is_alphabetic() || matches!(c, '.' | '#' | ':' | '*' | '[')) {
            // A selector runs up to the block it opens.
            let length = rest.find(['{', ',', '/']).unwrap_or(rest.len());
            let length = rest[..length].trim_end().len().max(c.len_utf8());
            (Token::Tag, length)
        } else if depth > 0 && (c.is_alphabetic() || c == '-') {
            let length = name_length(rest).max(1);
            let is_property = rest[length..].trim_start().starts_with(':');
            (
                if is_property {
                    Token::Attribute
                } else {
                    Token::Plain
                },
                length,
            )
        } else {
            match c {
                '{' => depth += 1,
                '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            (Token::Plain, c.len_utf8())
        };
        out.push(token, &rest[..length]);
        at += length;
    }
}

fn name_length(rest: &str) -> usize {
    rest.find(|c: char| !(c.is_alphanumeric() || matches!(c, '-' | '_')))
        .unwrap_or(rest.len())
}

/// Whole lines: added, removed, hunk and file headers; context lines plain.
pub fn diff(code: &str, out: &mut Output) {
    for line in code.split_inclusive('\n') {
        let header = ["+++", "---", "@@", "diff ", "index "];
        let token = if header.iter().any(|prefix| line.starts_with(prefix)) {
            Token::Meta
        } else if line.starts_with('+') {
            Token::Inserted
        } else if line.starts_with('-') {
            Token::Deleted
        } else {
            Token::Plain
        };
        out.push(token, line);
    }
}
