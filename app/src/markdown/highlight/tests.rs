//! The highlighter's rules, as the HTML it writes for snippets of each language.

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

/// Every language, and no language (plain text).
const EVERY_LANGUAGE: [Option<Language>; 13] = [
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

/// Checks that `code` in `language` comes out with each `(class, html)` as one span
/// `<span class="hl-{class}">{html}</span>` (`html` as escaped in the output).
fn assert_coloured(language: Language, code: &str, spans: &[(&str, &str)]) {
    let html = highlight(Some(language), code);
    for (class, inner) in spans {
        let span = format!("<span class=\"hl-{class}\">{inner}</span>");
        assert!(html.contains(&span), "{language:?}: no {span} in {html}");
    }
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
    assert_coloured(
        Language::Rust,
        "fn main() {\n    // say hi\n    let n: u32 = 42;\n    println!(\"hi {n}\");\n    let s = String::new();\n}",
        &[
            ("kw", "fn"),
            ("fn", "main"),
            ("com", "// say hi"),
            ("num", "42"),
            ("str", "&quot;hi {n}&quot;"),
            ("type", "String"),
        ],
    );
}

#[test]
fn rust_lifetimes_are_not_strings_but_char_literals_are() {
    let html = highlight(Some(Language::Rust), "fn f<'a>(x: &'a str) -> char { 'x' }");
    assert!(
        html.contains("<span class=\"hl-str\">&#39;x&#39;</span>"),
        "{html}"
    );
    assert!(!html.contains("hl-str\">&#39;a"), "{html}");
}

#[test]
fn each_language_colours_its_own_keywords_comments_strings_and_literals() {
    let cases: [(Language, &str, &[(&str, &str)]); 11] = [
        (
            Language::Python,
            "def f():\n    return None  # done\n\"\"\"doc\nstring\"\"\"",
            &[
                ("kw", "def"),
                ("lit", "None"),
                ("com", "# done"),
                ("str", "&quot;&quot;&quot;doc\nstring&quot;&quot;&quot;"),
            ],
        ),
        (
            Language::Shell,
            "#!/bin/sh\nif [ -n \"$HOME\" ]; then echo $USER; fi # end",
            &[
                ("meta", "#!/bin/sh"),
                ("kw", "if"),
                ("var", "$USER"),
                ("com", "# end"),
            ],
        ),
        (
            Language::TypeScript,
            "const x: number = 1; /* note */ `t ${x}`",
            &[("kw", "const"), ("com", "/* note */"), ("str", "`t ${x}`")],
        ),
        (
            Language::Go,
            "func main() { x := nil }",
            &[("kw", "func"), ("lit", "nil")],
        ),
        (
            Language::Json,
            "{\"name\": \"x\", \"n\": 1.5, \"ok\": true}",
            &[
                ("attr", "&quot;name&quot;"),
                ("str", "&quot;x&quot;"),
                ("num", "1.5"),
                ("lit", "true"),
            ],
        ),
        (
            Language::Toml,
            "[package]\nname = \"app\" # the name\n",
            &[
                ("meta", "[package]"),
                ("attr", "name"),
                ("com", "# the name"),
            ],
        ),
        (
            Language::Yaml,
            "jobs:\n  - run-tests: yes\n",
            &[("attr", "jobs"), ("attr", "run-tests")],
        ),
        (
            Language::Html,
            "<!-- c --><a href=\"/x\">hi</a>",
            &[
                ("com", "&lt;!-- c --&gt;"),
                ("tag", "&lt;a"),
                ("attr", "href"),
                ("str", "&quot;/x&quot;"),
            ],
        ),
        (
            Language::Css,
            ".a { color: #fff; /* c */ }",
            &[("tag", ".a"), ("attr", "color"), ("num", "#fff")],
        ),
        (
            Language::Diff,
            "@@ -1 +1 @@\n-old\n+new\n same",
            &[
                ("meta", "@@ -1 +1 @@\n"),
                ("del", "-old\n"),
                ("add", "+new\n"),
            ],
        ),
        (
            Language::JavaScript,
            "let y = 'q'; // js",
            &[("kw", "let"), ("str", "&#39;q&#39;"), ("com", "// js")],
        ),
    ];
    for (language, code, spans) in cases {
        assert_coloured(language, code, spans);
    }
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
    for language in EVERY_LANGUAGE {
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

#[test]
fn every_prefix_of_a_mixed_sample_keeps_its_text_in_every_language() {
    // Streaming cuts code anywhere: inside strings, comments, tags, escapes and
    // multi-byte characters.
    let sample = "#!/bin/sh\n[sec]\nkey = \"v\\\"é\" # c\n- k: 'x'\n<a href='q'>t</a><!-- c -->\n\
                  .s { color: #0f0; } @media x {}\nfn f<'a>(x: &'a str) -> char { '\\u{1F980}' } \
                  /* 日本 */ `t ${x}` $HOME ${P} 0x1F 2.5e-3 \"\"\"doc\"\"\"\n+add\n-del\n@@ h @@ 🦀";
    for language in EVERY_LANGUAGE {
        for end in (0..=sample.len()).filter(|end| sample.is_char_boundary(*end)) {
            let prefix = &sample[..end];
            assert_eq!(
                text_of(&highlight(language, prefix)),
                prefix,
                "{language:?}"
            );
        }
    }
}

#[test]
fn a_files_language_comes_from_its_extension() {
    let cases = [
        ("src/main.rs", Some(Language::Rust)),
        ("web/App.TSX", Some(Language::TypeScript)),
        ("scripts/setup.sh", Some(Language::Shell)),
        ("Cargo.lock", Some(Language::Toml)),
        (".bashrc", None),
        ("README.md", None),
        ("Makefile", None),
        ("no-extension", None),
        ("dir.rs/file", None),
    ];
    for (path, language) in cases {
        assert_eq!(Language::from_path(path), language, "{path}");
    }
}
