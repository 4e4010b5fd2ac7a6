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
mod tests {
    use super::*;

    /// Strips the spans back off, so tests can check nothing was lost or reordered.
    fn text_of(html: &str) -> String {
        let mut text = String::new();
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    }

    fn rust(code: &str) -> String {
        highlight(Some(Language::Rust), code)
    }

    #[test]
    fn fence_words_name_languages_case_insensitively() {
        assert_eq!(Language::from_fence("RS"), Some(Language::Rust));
        assert_eq!(Language::from_fence("tsx"), Some(Language::TypeScript));
        assert_eq!(Language::from_fence("bash"), Some(Language::Shell));
        assert_eq!(Language::from_fence("yml"), Some(Language::Yaml));
        assert_eq!(Language::from_fence("brainfuck"), None);
    }

    #[test]
    fn rust_keywords_strings_comments_numbers_and_types_are_coloured() {
        let html = rust(
            "fn main() {\n    // say hi\n    let n: u32 = 42;\n    println!(\"hi {n}\");\n    let s = String::new();\n}",
        );
        assert!(html.contains("<span class=\"hl-kw\">fn</span>"), "{html}");
        assert!(html.contains("<span class=\"hl-fn\">main</span>"), "{html}");
        assert!(
            html.contains("<span class=\"hl-com\">// say hi</span>"),
            "{html}"
        );
        assert!(html.contains("<span class=\"hl-num\">42</span>"), "{html}");
        assert!(
            html.contains("<span class=\"hl-str\">&quot;hi {n}&quot;</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"hl-type\">String</span>"),
            "{html}"
        );
    }

    #[test]
    fn rust_lifetimes_are_not_strings_but_char_literals_are() {
        let html = rust("fn f<'a>(x: &'a str) -> char { 'x' }");
        assert!(
            html.contains("<span class=\"hl-str\">&#39;x&#39;</span>"),
            "{html}"
        );
        assert!(!html.contains("hl-str\">&#39;a"), "{html}");
    }

    #[test]
    fn other_languages_colour_their_own_keywords_and_comments() {
        let python = highlight(
            Some(Language::Python),
            "def f():\n    return None  # done\n\"\"\"doc\nstring\"\"\"",
        );
        assert!(
            python.contains("<span class=\"hl-kw\">def</span>"),
            "{python}"
        );
        assert!(
            python.contains("<span class=\"hl-lit\">None</span>"),
            "{python}"
        );
        assert!(
            python.contains("<span class=\"hl-com\"># done</span>"),
            "{python}"
        );
        assert!(
            python.contains(
                "<span class=\"hl-str\">&quot;&quot;&quot;doc\nstring&quot;&quot;&quot;</span>"
            ),
            "{python}"
        );

        let shell = highlight(
            Some(Language::Shell),
            "#!/bin/sh\nif [ -n \"$HOME\" ]; then echo $USER; fi # end",
        );
        assert!(
            shell.contains("<span class=\"hl-meta\">#!/bin/sh</span>"),
            "{shell}"
        );
        assert!(shell.contains("<span class=\"hl-kw\">if</span>"), "{shell}");
        assert!(
            shell.contains("<span class=\"hl-var\">$USER</span>"),
            "{shell}"
        );
        assert!(
            shell.contains("<span class=\"hl-com\"># end</span>"),
            "{shell}"
        );

        let ts = highlight(
            Some(Language::TypeScript),
            "const x: number = 1; /* note */ `t ${x}`",
        );
        assert!(ts.contains("<span class=\"hl-kw\">const</span>"), "{ts}");
        assert!(
            ts.contains("<span class=\"hl-com\">/* note */</span>"),
            "{ts}"
        );
        assert!(
            ts.contains("<span class=\"hl-str\">`t ${x}`</span>"),
            "{ts}"
        );

        let go = highlight(Some(Language::Go), "func main() { x := nil }");
        assert!(go.contains("<span class=\"hl-kw\">func</span>"), "{go}");
        assert!(go.contains("<span class=\"hl-lit\">nil</span>"), "{go}");
    }

    #[test]
    fn data_formats_colour_their_keys() {
        let json = highlight(
            Some(Language::Json),
            "{\"name\": \"x\", \"n\": 1.5, \"ok\": true}",
        );
        assert!(
            json.contains("<span class=\"hl-attr\">&quot;name&quot;</span>"),
            "{json}"
        );
        assert!(
            json.contains("<span class=\"hl-str\">&quot;x&quot;</span>"),
            "{json}"
        );
        assert!(json.contains("<span class=\"hl-num\">1.5</span>"), "{json}");
        assert!(
            json.contains("<span class=\"hl-lit\">true</span>"),
            "{json}"
        );

        let toml = highlight(
            Some(Language::Toml),
            "[package]\nname = \"app\" # the name\n",
        );
        assert!(
            toml.contains("<span class=\"hl-meta\">[package]</span>"),
            "{toml}"
        );
        assert!(
            toml.contains("<span class=\"hl-attr\">name</span>"),
            "{toml}"
        );
        assert!(
            toml.contains("<span class=\"hl-com\"># the name</span>"),
            "{toml}"
        );

        let yaml = highlight(Some(Language::Yaml), "jobs:\n  - run-tests: yes\n");
        assert!(
            yaml.contains("<span class=\"hl-attr\">jobs</span>"),
            "{yaml}"
        );
        assert!(
            yaml.contains("<span class=\"hl-attr\">run-tests</span>"),
            "{yaml}"
        );
    }

    #[test]
    fn markup_styles_and_diffs_are_coloured() {
        let html = highlight(Some(Language::Html), "<!-- c --><a href=\"/x\">hi</a>");
        assert!(
            html.contains("<span class=\"hl-com\">&lt;!-- c --&gt;</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"hl-tag\">&lt;a</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"hl-attr\">href</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"hl-str\">&quot;/x&quot;</span>"),
            "{html}"
        );

        let css = highlight(Some(Language::Css), ".a { color: #fff; /* c */ }");
        assert!(css.contains("<span class=\"hl-tag\">.a</span>"), "{css}");
        assert!(
            css.contains("<span class=\"hl-attr\">color</span>"),
            "{css}"
        );
        assert!(css.contains("<span class=\"hl-num\">#fff</span>"), "{css}");

        let diff = highlight(Some(Language::Diff), "@@ -1 +1 @@\n-old\n+new\n same");
        assert!(
            diff.contains("<span class=\"hl-meta\">@@ -1 +1 @@\n</span>"),
            "{diff}"
        );
        assert!(
            diff.contains("<span class=\"hl-del\">-old\n</span>"),
            "{diff}"
        );
        assert!(
            diff.contains("<span class=\"hl-add\">+new\n</span>"),
            "{diff}"
        );
    }

    #[test]
    fn every_byte_comes_out_escaped_and_in_order_whatever_the_input() {
        let samples = [
            "<script>alert('x')</script> & \"q\"",
            "\"unterminated string\n<b>",
            "/* open comment <i>",
            "'",
            "\"",
            "`${",
            "r#\"raw\"#",
            "0x1F 1e-3 .5",
            "é ü 日本 🦀 'é'",
            "<a b='c' d=e>",
            "@@",
            "[[x]]\n= 1",
            "a:\n - b: 'c",
        ];
        let languages = [
            None,
            Some(Language::Rust),
            Some(Language::JavaScript),
            Some(Language::TypeScript),
            Some(Language::Python),
            Some(Language::Shell),
            Some(Language::Json),
            Some(Language::Toml),
            Some(Language::Yaml),
            Some(Language::Go),
            Some(Language::Html),
            Some(Language::Css),
            Some(Language::Diff),
        ];
        for language in languages {
            for sample in samples {
                let html = highlight(language, sample);
                assert_eq!(text_of(&html), sample, "{language:?} {sample:?} -> {html}");
                assert!(
                    !html.contains("<script")
                        && !html.contains("<b>")
                        && !html.contains("<i>")
                        && !html.contains("<a "),
                    "{language:?} {sample:?} -> {html}"
                );
            }
        }
    }
}
