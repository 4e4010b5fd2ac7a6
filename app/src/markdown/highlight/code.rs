//! One lexer for the C-like, scripting and data languages, driven by a [`Syntax`]
//! that names their keywords, comments, quotes and a few special rules.

use super::{Output, Token};

/// The lexical rules of one language.
pub struct Syntax {
    /// Words separated by single spaces (a string keeps the lists compact).
    pub keywords: &'static str,
    pub literals: &'static str,
    pub line_comments: &'static [&'static str],
    pub block_comment: Option<(&'static str, &'static str)>,
    pub quotes: &'static [char],
    /// `"""…"""` and `'''…'''` strings (Python, TOML).
    pub triple_quotes: bool,
    /// `'` opens a string only when it closes right away (`'x'`, `'\n'`); otherwise
    /// it is a Rust lifetime.
    pub char_literals: bool,
    /// A name that starts with a capital letter is a type.
    pub capitalised_types: bool,
    /// A comment starts only at the start of a word (`$#` and `a#b` are not comments).
    pub comment_after_space: bool,
    /// `$NAME`, `${…}` and `$1` are variables.
    pub variables: bool,
    /// `#!…` on the first line is a shebang.
    pub shebang: bool,
    /// A string followed by `:` is a key (JSON).
    pub string_keys: bool,
    /// A name at the start of a line followed by this character is a key.
    pub keys: Option<char>,
    /// `[…]` at the start of a line is a section header (TOML).
    pub sections: bool,
}

impl Syntax {
    pub const EMPTY: Syntax = Syntax {
        keywords: "",
        literals: "",
        line_comments: &[],
        block_comment: None,
        quotes: &[],
        triple_quotes: false,
        char_literals: false,
        capitalised_types: false,
        comment_after_space: false,
        variables: false,
        shebang: false,
        string_keys: false,
        keys: None,
        sections: false,
    };
}

/// Writes `code` to `out` as tokens of `syntax`.
pub fn lex(syntax: &Syntax, code: &str, out: &mut Output) {
    let mut at = 0;
    // Only blanks (and, in YAML, a list dash) since the last newline.
    let mut line_start = true;
    while let Some(c) = code[at..].chars().next() {
        let rest = &code[at..];
        let previous = code[..at].chars().next_back();
        let (token, length) = if let Some(found) = special(syntax, rest, at, previous, line_start) {
            found
        } else if c.is_ascii_digit() && !previous.is_some_and(is_name_char) {
            (Token::Number, number_length(rest))
        } else if c.is_alphabetic() || c == '_' {
            let length = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
            (word_token(syntax, &rest[..length], &rest[length..]), length)
        } else {
            (Token::Plain, c.len_utf8())
        };
        out.push(token, &rest[..length]);
        at += length;
        let lexeme = &rest[..length];
        line_start = if lexeme.ends_with('\n') {
            true
        } else {
            line_start && (lexeme.trim().is_empty() || (syntax.keys == Some(':') && lexeme == "-"))
        };
    }
}

/// Comments, strings, variables, keys and sections: the tokens that start with a
/// particular character and decide their own length.
fn special(
    syntax: &Syntax,
    rest: &str,
    at: usize,
    previous: Option<char>,
    line_start: bool,
) -> Option<(Token, usize)> {
    if syntax.shebang && at == 0 && rest.starts_with("#!") {
        return Some((Token::Meta, line_length(rest)));
    }
    if let Some((open, close)) = syntax.block_comment
        && rest.starts_with(open)
    {
        let length = rest[open.len()..]
            .find(close)
            .map_or(rest.len(), |end| open.len() + end + close.len());
        return Some((Token::Comment, length));
    }
    let word_start = previous.is_none_or(char::is_whitespace);
    if syntax
        .line_comments
        .iter()
        .any(|prefix| rest.starts_with(prefix))
        && (!syntax.comment_after_space || word_start)
    {
        return Some((Token::Comment, line_length(rest)));
    }
    if line_start {
        if syntax.sections && rest.starts_with('[') {
            let line = &rest[..line_length(rest)];
            if let Some(close) = line.rfind(']') {
                return Some((Token::Meta, close + 1));
            }
        }
        if let Some(separator) = syntax.keys
            && let Some(length) = key_length(rest, separator)
        {
            return Some((Token::Attribute, length));
        }
    }
    let c = rest.chars().next()?;
    if syntax.quotes.contains(&c) {
        let length = string_length(syntax, rest, c)?;
        let after = rest[length..].trim_start_matches([' ', '\t']);
        let token = if syntax.string_keys && after.starts_with(':') {
            Token::Attribute
        } else {
            Token::String
        };
        return Some((token, length));
    }
    if syntax.variables && c == '$' {
        return variable_length(rest).map(|length| (Token::Variable, length));
    }
    None
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Up to, not including, the end of the line.
fn line_length(rest: &str) -> usize {
    rest.find('\n').unwrap_or(rest.len())
}

/// `0x1F`, `1_000`, `2.5e-3`, `10px`: digits and what may follow them in a literal.
fn number_length(rest: &str) -> usize {
    let mut length = 0;
    let mut previous = ' ';
    for c in rest.chars() {
        let exponent_sign = matches!(c, '-' | '+') && matches!(previous, 'e' | 'E');
        if !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || exponent_sign) {
            break;
        }
        length += c.len_utf8();
        previous = c;
    }
    length
}

fn word_token(syntax: &Syntax, word: &str, after: &str) -> Token {
    if has_word(syntax.keywords, word) {
        Token::Keyword
    } else if has_word(syntax.literals, word) {
        Token::Literal
    } else if after.starts_with('(') || after.starts_with("!(") {
        Token::Function
    } else if syntax.capitalised_types && word.starts_with(|c: char| c.is_ascii_uppercase()) {
        Token::Type
    } else {
        Token::Plain
    }
}

fn has_word(list: &str, word: &str) -> bool {
    list.split(' ').any(|listed| listed == word)
}

/// The length of the string opening `rest` with `quote`, through its closing quote or
/// to the end of the text when it has none yet (it may still be streaming in).
/// `None` when the quote opens no string here (a Rust lifetime).
fn string_length(syntax: &Syntax, rest: &str, quote: char) -> Option<usize> {
    let triple: String = [quote; 3].iter().collect();
    if syntax.triple_quotes && rest.starts_with(&triple) {
        let length = rest[3..]
            .find(&triple)
            .map_or(rest.len(), |end| 3 + end + 3);
        return Some(length);
    }
    if syntax.char_literals && quote == '\'' {
        return char_literal_length(rest);
    }
    let mut escaped = false;
    for (index, c) in rest.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == quote {
            return Some(index + c.len_utf8());
        }
    }
    Some(rest.len())
}

/// `'x'`, `'\n'` or `'\u{1F980}'`; `None` for a lifetime such as `'a`.
fn char_literal_length(rest: &str) -> Option<usize> {
    let mut chars = rest.char_indices().skip(1);
    let (_, first) = chars.next()?;
    if first == '\\' {
        // An escape: the literal closes within a few characters.
        return rest
            .char_indices()
            .skip(2)
            .take(10)
            .find(|(_, c)| *c == '\'')
            .map(|(index, _)| index + 1);
    }
    match chars.next() {
        Some((index, '\'')) if first != '\'' => Some(index + 1),
        _ => None,
    }
}

/// `$NAME`, `$1`, `$@`, `${…}`; `None` for a lone `$`.
fn variable_length(rest: &str) -> Option<usize> {
    let after = &rest[1..];
    if after.starts_with('{') {
        return Some(after.find('}').map_or(rest.len(), |end| 1 + end + 1));
    }
    let first = after.chars().next()?;
    if matches!(first, '@' | '*' | '#' | '?' | '$' | '!') || first.is_ascii_digit() {
        return Some(2);
    }
    let length = after
        .find(|c: char| !is_name_char(c))
        .unwrap_or(after.len());
    (length > 0).then_some(1 + length)
}

/// A key at the start of a line: a bare or quoted name followed (after blanks) by
/// `separator`; for `:` the separator must end the line or be followed by a blank,
/// so a URL's `https:` is no key.
fn key_length(rest: &str, separator: char) -> Option<usize> {
    let length = match rest.chars().next()? {
        quote @ ('"' | '\'') => rest[1..].find(quote).map(|end| end + 2)?,
        _ => rest
            .find(|c: char| !(is_name_char(c) || matches!(c, '-' | '.')))
            .unwrap_or(rest.len()),
    };
    if length == 0 {
        return None;
    }
    let after = rest[length..].trim_start_matches([' ', '\t']);
    let mut after_chars = after.chars();
    if after_chars.next() != Some(separator) {
        return None;
    }
    let ends_key = separator != ':' || after_chars.next().is_none_or(char::is_whitespace);
    ends_key.then_some(length)
}
