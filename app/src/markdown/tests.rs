//! The renderer's rules, as the HTML it writes for reply text.

use super::render;

#[test]
fn inline_markup_headings_and_lists_render_as_elements() {
    let html = render(
        "# Plan\n\nThis is **bold**, *soft*, ~~gone~~ and `code`.\n\n- one\n- two\n\n3. three\n4. four\n",
    );
    assert!(html.contains("<h1>Plan</h1>"), "{html}");
    assert!(html.contains("<strong>bold</strong>"), "{html}");
    assert!(html.contains("<em>soft</em>"), "{html}");
    assert!(html.contains("<del>gone</del>"), "{html}");
    assert!(html.contains("<code>code</code>"), "{html}");
    assert!(
        html.contains("<ul>\n<li>one</li>\n<li>two</li>\n</ul>"),
        "{html}"
    );
    assert!(html.contains("<ol start=\"3\">\n<li>three</li>"), "{html}");
}

#[test]
fn tables_render_with_their_alignment_inside_a_scrolling_wrapper() {
    let html = render("| file | lines |\n| :--- | ---: |\n| a.rs | 10 |\n| b.rs | 2 |\n");
    assert_eq!(
        html,
        "<div class=\"md-table\"><table><thead><tr><th class=\"md-left\">file</th>\
         <th class=\"md-right\">lines</th></tr></thead><tbody>\
         <tr><td class=\"md-left\">a.rs</td><td class=\"md-right\">10</td></tr>\
         <tr><td class=\"md-left\">b.rs</td><td class=\"md-right\">2</td></tr>\
         </tbody></table></div>\n"
    );
}

#[test]
fn task_lists_render_disabled_checkboxes() {
    let html = render("- [x] done\n- [ ] to do\n");
    assert!(
        html.contains("<li><input type=\"checkbox\" class=\"md-task\" disabled checked> done</li>"),
        "{html}"
    );
    assert!(
        html.contains("<li><input type=\"checkbox\" class=\"md-task\" disabled> to do</li>"),
        "{html}"
    );
}

#[test]
fn raw_html_is_escaped_never_injected() {
    for (markdown, must_not_contain) in [
        ("<script>alert(1)</script>", "<script"),
        ("hi <img src=x onerror=alert(1)> there", "<img"),
        ("<div onclick=\"x()\">\n\nblock\n\n</div>", "<div onclick"),
        ("<iframe src=\"https://evil.example\"></iframe>", "<iframe"),
        ("**<b>bold</b>**", "<b>"),
        ("| a |\n| - |\n| <svg onload=alert(1)> |", "<svg"),
        ("```html\n<script>alert(1)</script>\n```", "<script"),
        ("`<script>`", "<script"),
        (
            "[x](https://e.com \"a\\\" onmouseover=\\\"alert(1)\")",
            "\" onmouseover",
        ),
    ] {
        let html = render(markdown);
        assert!(!html.contains(must_not_contain), "{markdown:?} -> {html}");
    }
    let html = render("<script>alert(1)</script>");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
}

#[test]
fn links_open_in_a_new_tab_without_referrer_or_opener() {
    let html = render("See [the docs](https://docs.rs/x \"Docs\") or <https://example.com>.");
    assert!(
        html.contains("<a href=\"https://docs.rs/x\" rel=\"noopener noreferrer\" target=\"_blank\" title=\"Docs\">the docs</a>"),
        "{html}"
    );
    assert!(
        html.contains("<a href=\"https://example.com\" rel=\"noopener noreferrer\" target=\"_blank\">https://example.com</a>"),
        "{html}"
    );
    let mail = render("[mail](mailto:dev@example.com)");
    assert!(mail.contains("href=\"mailto:dev@example.com\""), "{mail}");
}

#[test]
fn links_with_other_schemes_render_inert() {
    for markdown in [
        "[click](javascript:alert(1))",
        "[click](JAVASCRIPT:alert(1))",
        "[click](&#106;avascript:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD4=)",
        "[click](/api/sessions)",
        "[click][ref]\n\n[ref]: javascript:alert(1)",
        "<javascript:alert(1)>",
    ] {
        let html = render(markdown);
        assert!(!html.contains("href"), "{markdown:?} -> {html}");
        assert!(!html.contains("<a"), "{markdown:?} -> {html}");
    }
    let html = render("[click](javascript:alert(1))");
    assert!(
        html.contains("<span class=\"md-link-inert\" title=\"javascript:alert(1)\">click</span>"),
        "{html}"
    );
}

#[test]
fn images_become_links_and_are_never_loaded() {
    let html = render("![diagram](https://example.com/d.png)");
    assert!(!html.contains("<img"), "{html}");
    assert!(
        html.contains("<a class=\"md-image\" href=\"https://example.com/d.png\""),
        "{html}"
    );
    let inert = render("![x](javascript:alert(1))");
    assert!(!inert.contains("<a") && !inert.contains("<img"), "{inert}");
}

#[test]
fn bare_urls_are_linked_outside_code_and_links() {
    let html = render(
        "Open https://example.com/a_b_c now. `https://in.code`\n\n[x](https://a.com) www.rust-lang.org",
    );
    assert!(html.contains("<a href=\"https://example.com/a_b_c\" rel=\"noopener noreferrer\" target=\"_blank\">https://example.com/a_b_c</a> now."), "{html}");
    assert!(html.contains("<code>https://in.code</code>"), "{html}");
    assert!(
        html.contains("<a href=\"https://www.rust-lang.org\""),
        "{html}"
    );
    assert_eq!(html.matches("<a ").count(), 3, "{html}");
}

#[test]
fn code_blocks_are_coloured_by_language_and_labelled() {
    let html = render("Run:\n\n```rust\nfn main() { let x = \"<hi>\"; }\n```\n");
    assert!(html.contains("<pre class=\"code-block\" data-language=\"rust\"><span class=\"code-block__language\">rust</span><code class=\"hl\">"), "{html}");
    assert!(html.contains("<span class=\"hl-kw\">fn</span>"), "{html}");
    assert!(
        html.contains("<span class=\"hl-str\">&quot;&lt;hi&gt;&quot;</span>"),
        "{html}"
    );
    assert!(html.ends_with("}</code></pre>\n"), "{html}");

    let unknown = render("```cobol\nDISPLAY 'HI'.\n```");
    assert!(
        unknown.contains("<code>DISPLAY &#39;HI&#39;.</code>"),
        "{unknown}"
    );
    let plain = render("    indented code\n");
    assert!(
        plain.contains("<pre class=\"code-block\"><code>indented code</code></pre>"),
        "{plain}"
    );
}

#[test]
fn a_fence_language_word_cannot_break_out_of_its_attribute() {
    let html = render("```\"><script>alert(1)</script>\nx\n```");
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains("data-language=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\""),
        "{html}"
    );
}

#[test]
fn an_unterminated_fence_while_streaming_renders_as_code_so_far() {
    let html = render("See:\n```python\ndef f():\n    return 1");
    assert!(html.contains("<p>See:</p>"), "{html}");
    assert!(html.contains("data-language=\"python\""), "{html}");
    assert!(html.contains("<span class=\"hl-kw\">def</span>"), "{html}");
    assert!(
        html.ends_with("<span class=\"hl-num\">1</span></code></pre>\n"),
        "{html}"
    );
}

#[test]
fn every_prefix_of_a_reply_renders_with_balanced_markup() {
    let reply = "# Title\n\nSome **bold _nested_ text** and a [link](https://e.com).\n\n\
                 | a | b |\n|---|---|\n| 1 | 2 |\n\n- [ ] task\n> quote\n\n```js\nconst x = `t`;\n```\n\
                 done <b>raw</b> https://example.com 🦀 é";
    let tags = [
        "p",
        "h1",
        "strong",
        "em",
        "a",
        "table",
        "tr",
        "td",
        "th",
        "ul",
        "li",
        "pre",
        "code",
        "blockquote",
        "span",
        "div",
    ];
    for end in (0..=reply.len()).filter(|end| reply.is_char_boundary(*end)) {
        let html = render(&reply[..end]);
        for tag in tags {
            let opened = html.matches(&format!("<{tag}>")).count()
                + html.matches(&format!("<{tag} ")).count();
            let closed = html.matches(&format!("</{tag}>")).count();
            assert_eq!(opened, closed, "<{tag}> in {:?} -> {html}", &reply[..end]);
        }
        assert!(!html.contains("<b>"), "{html}");
    }
}

#[test]
fn single_newlines_are_line_breaks_as_in_chat() {
    assert_eq!(render("one\ntwo"), "<p>one<br>\ntwo</p>\n");
    assert_eq!(render(""), "");
}
