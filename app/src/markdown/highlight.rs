//! Colours code blocks by language: a compact lexer per family of languages that
//! wraps keywords, strings, comments, numbers and the like in `<span class="hl-…">`.
//!
//! A full grammar-based highlighter (syntect, tree-sitter) would add megabytes of
//! grammars to the app's wasm; these lexers cover the languages agents write most
//! (Rust, JavaScript/TypeScript, Python, shell, JSON, TOML, YAML, Go, HTML/XML, CSS,
//! diffs) in a few kilobytes. They only ever colour: every byte of the code comes out
//! escaped and in order, whatever the input, so a wrong guess is a wrong colour and
//! never lost or injected text. Unknown languages render plain.

mod code;
mod languages;
mod markup;

use super::escape::escape_text;

/// What a span of code is; each maps to one CSS class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    Plain,
    Keyword,
    String,
    Comment,
    Number,
    /// `true`, `None`, `nil`: constants spelled as words.
    Literal,
    /// A capitalised name in languages where that means a type.
    Type,
    /// A name right before `(`.
    Function,
    /// A key (JSON, YAML, TOML), an attribute (HTML) or a property (CSS).
    Attribute,
    /// A tag name (HTML) or a selector (CSS).
    Tag,
    /// `$NAME` in shell.
    Variable,
    /// A section header, a diff hunk header, a shebang.
    Meta,
    Inserted,
    Deleted,
}

impl Token {
    fn class(self) -> Option<&'static str> {
        Some(match self {
            Token::Plain => return None,
            Token::Keyword => "hl-kw",
            Token::String => "hl-str",
            Token::Comment => "hl-com",
            Token::Number => "hl-num",
            Token::Literal => "hl-lit",
            Token::Type => "hl-type",
            Token::Function => "hl-fn",
            Token::Attribute => "hl-attr",
            Token::Tag => "hl-tag",
            Token::Variable => "hl-var",
            Token::Meta => "hl-meta",
            Token::Inserted => "hl-add",
            Token::Deleted => "hl-del",
        })
    }
}

/// The languages there is a lexer for, named after the fence's info word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Rust,
    JavaScript,
    TypeScript,
    Python,
    Shell,
    Json,
    Toml,
    Yaml,
    Go,
    Html,
    Css,
    Diff,
}

impl Language {
    /// The language a fence's info word names (`rs`, `tsx`, `bash`, …), if known.
    pub fn from_fence(word: &str) -> Option<Language> {
        Some(match word.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Language::Rust,
            "js" | "javascript" | "jsx" | "mjs" | "cjs" | "node" => Language::JavaScript,
            "ts" | "typescript" | "tsx" | "mts" => Language::TypeScript,
            "py" | "python" | "python3" => Language::Python,
            "sh" | "bash" | "shell" | "zsh" | "console" | "shellsession" => Language::Shell,
            "json" | "jsonc" | "json5" => Language::Json,
            "toml" => Language::Toml,
            "yaml" | "yml" => Language::Yaml,
            "go" | "golang" => Language::Go,
            "html" | "htm" | "xml" | "svg" | "xhtml" | "vue" => Language::Html,
            "css" | "scss" | "less" => Language::Css,
            "diff" | "patch" => Language::Diff,
            _ => return None,
        })
    }
}

impl Language {
    /// The language of a file, by its extension (`src/main.rs` -> Rust), or by
    /// its whole name for the few files known without one; `None` renders plain.
    pub fn from_path(path: &str) -> Option<Language> {
        let name = path.rsplit('/').next().unwrap_or(path);
        match name {
            "Cargo.lock" => return Some(Language::Toml),
            "Dockerfile" | "Makefile" => return None,
            _ => {}
        }
        let (stem, extension) = name.rsplit_once('.')?;
        if stem.is_empty() {
            // A dotfile (`.bashrc`) has a name, not an extension.
            return None;
        }
        match extension.to_ascii_lowercase().as_str() {
            "lock" | "md" | "txt" => None,
            other => Language::from_fence(other),
        }
    }
}

/// `code` as escaped HTML with its tokens wrapped in spans; plain escaped text when
/// the language is unknown.
pub fn highlight(language: Option<Language>, code: &str) -> String {
    let mut out = Output::default();
    match language {
        None => out.push(Token::Plain, code),
        Some(Language::Html) => markup::html(code, &mut out),
        Some(Language::Css) => markup::css(code, &mut out),
        Some(Language::Diff) => markup::diff(code, &mut out),
        Some(language) => code::lex(languages::syntax(language), code, &mut out),
    }
    out.finish()
}

/// Escaped HTML being built, with runs of one token kind merged into one span.
#[derive(Default)]
pub(crate) struct Output {
    html: String,
    run: String,
    run_token: Option<Token>,
}

impl Output {
    pub(crate) fn push(&mut self, token: Token, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.run_token != Some(token) {
            self.flush();
            self.run_token = Some(token);
        }
        self.run.push_str(text);
    }

    fn flush(&mut self) {
        let Some(token) = self.run_token.take() else {
            return;
        };
        match token.class() {
            Some(class) => {
                self.html.push_str("<span class=\"");
                self.html.push_str(class);
                self.html.push_str("\">");
                escape_text(&mut self.html, &self.run);
                self.html.push_str("</span>");
            }
            None => escape_text(&mut self.html, &self.run),
        }
        self.run.clear();
    }

    fn finish(mut self) -> String {
        self.flush();
        self.html
    }
}

#[cfg(test)]
mod tests;
