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

#[test]
fn every_prefix_of_a_mixed_sample_keeps_its_text_in_every_language() {
    // Streaming cuts code anywhere: inside strings, comments, tags, escapes and
    // multi-byte characters.
    let sample = "#!/bin/sh\n[sec]\nkey = \"v\\\"é\" # c\n- k: 'x'\n<a href='q'>t</a><!-- c -->\n\
                  .s { color: #0f0; } @media x {}\nfn f<'a>(x: &'a str) -> char { '\\u{1F980}' } \
                  /* 日本 */ `t ${x}` $HOME ${P} 0x1F 2.5e-3 \"\"\"doc\"\"\"\n+add\n-del\n@@ h @@ 🦀";
    let languages = [
        None,
        Some(Language::Rust),
        Some(Language::JavaScript),
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
