//! Agent replies as GitHub-flavoured markdown: paragraphs, headings, lists, task
//! lists, tables, block quotes, emphasis, strikethrough, inline code, links, bare-URL
//! autolinks, and code blocks coloured by language.
//!
//! `pulldown-cmark` parses; this module writes the HTML itself instead of using the
//! crate's writer, because reply text is attacker-controlled and every output rule
//! must be ours: raw HTML in the markdown comes out as escaped text, never markup;
//! links keep only `http:`, `https:` and `mailto:` targets ([`links`]) and open in a
//! new tab with `rel="noopener noreferrer"`; images are not loaded (that would let
//! reply text make the viewer's browser fetch any URL) but become links to the image.
//! The result is only ever produced here, so it is safe to set as `innerHTML`.
//!
//! Replies arrive in pieces while the LLM streams them, so any prefix of a reply must
//! render: CommonMark closes whatever is open at the end of the text, so an
//! unterminated fence renders as code so far. Single newlines become line breaks, as
//! in chat, since agents rarely hard-wrap their prose.

mod escape;
pub mod highlight;
pub(crate) mod links;

use pulldown_cmark::{Alignment, CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use escape::escape_text;
use highlight::{Language, highlight};
use links::{Piece, autolink, safe_href};

/// The extensions that make CommonMark GitHub-flavoured.
fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES
}

/// Renders reply text (complete or a streamed prefix) to HTML.
pub fn render(text: &str) -> String {
    let mut writer = Writer::default();
    for event in Parser::new_ext(text, options()) {
        writer.event(event);
    }
    writer.finish()
}

#[derive(Default)]
struct Writer {
    html: String,
    /// Plain text not yet written: text arrives in several events, and a bare URL
    /// may span them, so autolinking waits for the whole run.
    text: String,
    /// For each link or image open: whether it opened an `<a>` (or an inert `<span>`).
    links: Vec<bool>,
    /// The code block open: its fence's first word and its text so far.
    code: Option<(String, String)>,
    table_alignments: Vec<Alignment>,
    table_cell: usize,
    in_table_head: bool,
}

impl Writer {
    fn event(&mut self, event: Event<'_>) {
        if let (Some((_, body)), Event::Text(text)) = (&mut self.code, &event) {
            body.push_str(text);
            return;
        }
        if let Event::Text(text) = &event {
            self.text.push_str(text);
            return;
        }
        self.flush_text();
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Code(code) => {
                self.html.push_str("<code>");
                escape_text(&mut self.html, &code);
                self.html.push_str("</code>");
            }
            // Raw HTML is shown as the text it is.
            Event::Html(text) | Event::InlineHtml(text) => escape_text(&mut self.html, &text),
            Event::InlineMath(text) | Event::DisplayMath(text) => {
                escape_text(&mut self.html, &text)
            }
            Event::FootnoteReference(label) => {
                self.html.push_str("<sup class=\"md-footnote-ref\">[");
                escape_text(&mut self.html, &label);
                self.html.push_str("]</sup>");
            }
            Event::SoftBreak | Event::HardBreak => self.html.push_str("<br>\n"),
            Event::Rule => self.html.push_str("<hr>\n"),
            Event::TaskListMarker(checked) => self.html.push_str(if checked {
                "<input type=\"checkbox\" class=\"md-task\" disabled checked> "
            } else {
                "<input type=\"checkbox\" class=\"md-task\" disabled> "
            }),
            Event::Text(_) => {}
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        let html = &mut self.html;
        match tag {
            Tag::Paragraph => html.push_str("<p>"),
            Tag::Heading { level, .. } => {
                html.push_str("<h");
                html.push_str(heading_number(level));
                html.push('>');
            }
            Tag::BlockQuote(_) => html.push_str("<blockquote>\n"),
            Tag::CodeBlock(kind) => {
                let word = match kind {
                    CodeBlockKind::Fenced(info) => {
                        info.split_whitespace().next().unwrap_or("").to_owned()
                    }
                    CodeBlockKind::Indented => String::new(),
                };
                self.code = Some((word, String::new()));
            }
            Tag::HtmlBlock => html.push_str("<div class=\"md-html\">"),
            Tag::List(None) => html.push_str("<ul>\n"),
            Tag::List(Some(1)) => html.push_str("<ol>\n"),
            Tag::List(Some(start)) => html.push_str(&format!("<ol start=\"{start}\">\n")),
            Tag::Item => html.push_str("<li>"),
            Tag::FootnoteDefinition(label) => {
                html.push_str("<div class=\"md-footnote\"><sup>[");
                escape_text(html, &label);
                html.push_str("]</sup> ");
            }
            Tag::DefinitionList => html.push_str("<dl>"),
            Tag::DefinitionListTitle => html.push_str("<dt>"),
            Tag::DefinitionListDefinition => html.push_str("<dd>"),
            Tag::Table(alignments) => {
                // The wrapper scrolls sideways, so a wide table never widens the page.
                html.push_str("<div class=\"md-table\"><table>");
                self.table_alignments = alignments;
            }
            Tag::TableHead => {
                html.push_str("<thead><tr>");
                self.in_table_head = true;
                self.table_cell = 0;
            }
            Tag::TableRow => {
                html.push_str("<tr>");
                self.table_cell = 0;
            }
            Tag::TableCell => {
                html.push_str(if self.in_table_head { "<th" } else { "<td" });
                match self.table_alignments.get(self.table_cell) {
                    Some(Alignment::Left) => html.push_str(" class=\"md-left\""),
                    Some(Alignment::Center) => html.push_str(" class=\"md-center\""),
                    Some(Alignment::Right) => html.push_str(" class=\"md-right\""),
                    Some(Alignment::None) | None => {}
                }
                html.push('>');
            }
            Tag::Emphasis => html.push_str("<em>"),
            Tag::Strong => html.push_str("<strong>"),
            Tag::Strikethrough => html.push_str("<del>"),
            Tag::Superscript => html.push_str("<sup>"),
            Tag::Subscript => html.push_str("<sub>"),
            Tag::Link {
                dest_url, title, ..
            } => self.open_link(&dest_url, &title, None),
            Tag::Image {
                dest_url, title, ..
            } => self.open_link(&dest_url, &title, Some("md-image")),
            Tag::MetadataBlock(_) => html.push_str("<pre class=\"md-metadata\">"),
        }
    }

    fn end(&mut self, tag: TagEnd) {
        let html = &mut self.html;
        match tag {
            TagEnd::Paragraph => html.push_str("</p>\n"),
            TagEnd::Heading(level) => {
                html.push_str("</h");
                html.push_str(heading_number(level));
                html.push_str(">\n");
            }
            TagEnd::BlockQuote(_) => html.push_str("</blockquote>\n"),
            TagEnd::CodeBlock => {
                if let Some((word, body)) = self.code.take() {
                    code_block(html, &word, &body);
                }
            }
            TagEnd::HtmlBlock => html.push_str("</div>\n"),
            TagEnd::List(true) => html.push_str("</ol>\n"),
            TagEnd::List(false) => html.push_str("</ul>\n"),
            TagEnd::Item => html.push_str("</li>\n"),
            TagEnd::FootnoteDefinition => html.push_str("</div>\n"),
            TagEnd::DefinitionList => html.push_str("</dl>\n"),
            TagEnd::DefinitionListTitle => html.push_str("</dt>\n"),
            TagEnd::DefinitionListDefinition => html.push_str("</dd>\n"),
            TagEnd::Table => html.push_str("</tbody></table></div>\n"),
            TagEnd::TableHead => {
                html.push_str("</tr></thead><tbody>");
                self.in_table_head = false;
            }
            TagEnd::TableRow => html.push_str("</tr>"),
            TagEnd::TableCell => {
                html.push_str(if self.in_table_head { "</th>" } else { "</td>" });
                self.table_cell += 1;
            }
            TagEnd::Emphasis => html.push_str("</em>"),
            TagEnd::Strong => html.push_str("</strong>"),
            TagEnd::Strikethrough => html.push_str("</del>"),
            TagEnd::Superscript => html.push_str("</sup>"),
            TagEnd::Subscript => html.push_str("</sub>"),
            TagEnd::Link | TagEnd::Image => {
                html.push_str(if self.links.pop().unwrap_or(false) {
                    "</a>"
                } else {
                    "</span>"
                });
            }
            TagEnd::MetadataBlock(_) => html.push_str("</pre>\n"),
        }
    }

    /// An `<a>` to a safe target, or an inert `<span>` naming the refused one.
    fn open_link(&mut self, destination: &str, title: &str, class: Option<&str>) {
        let html = &mut self.html;
        match safe_href(destination) {
            Some(href) => {
                html.push_str("<a");
                if let Some(class) = class {
                    html.push_str(" class=\"");
                    html.push_str(class);
                    html.push('"');
                }
                push_anchor_attributes(html, href);
                if !title.is_empty() {
                    html.push_str(" title=\"");
                    escape_text(html, title);
                    html.push('"');
                }
                html.push('>');
                self.links.push(true);
            }
            None => {
                html.push_str("<span class=\"md-link-inert\" title=\"");
                escape_text(html, destination);
                html.push_str("\">");
                self.links.push(false);
            }
        }
    }

    /// Writes the pending text, linking bare URLs unless it is already inside a link.
    fn flush_text(&mut self) {
        if self.text.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.text);
        if !self.links.is_empty() {
            escape_text(&mut self.html, &text);
            return;
        }
        for piece in autolink(&text) {
            match piece {
                Piece::Text(text) => escape_text(&mut self.html, text),
                Piece::Link { text, href } => match safe_href(&href) {
                    Some(href) => {
                        self.html.push_str("<a");
                        push_anchor_attributes(&mut self.html, href);
                        self.html.push('>');
                        escape_text(&mut self.html, text);
                        self.html.push_str("</a>");
                    }
                    None => escape_text(&mut self.html, text),
                },
            }
        }
    }

    fn finish(mut self) -> String {
        self.flush_text();
        // The parser closes every block at the end of the text; this is only a guard.
        if let Some((word, body)) = self.code.take() {
            code_block(&mut self.html, &word, &body);
        }
        self.html
    }
}

/// ` href="…" rel="noopener noreferrer" target="_blank"`.
fn push_anchor_attributes(html: &mut String, href: &str) {
    html.push_str(" href=\"");
    escape_text(html, href);
    html.push_str("\" rel=\"noopener noreferrer\" target=\"_blank\"");
}

/// A `<pre>` with the fence's word as a label and the code coloured when the word
/// names a language the highlighter knows.
fn code_block(html: &mut String, word: &str, body: &str) {
    let body = body.strip_suffix('\n').unwrap_or(body);
    let language = Language::from_fence(word);
    html.push_str("<pre class=\"code-block\"");
    if !word.is_empty() {
        html.push_str(" data-language=\"");
        escape_text(html, word);
        html.push_str("\"><span class=\"code-block__language\">");
        escape_text(html, word);
        html.push_str("</span");
    }
    html.push_str("><code");
    if language.is_some() {
        html.push_str(" class=\"hl\"");
    }
    html.push('>');
    html.push_str(&highlight(language, body));
    html.push_str("</code></pre>\n");
}

fn heading_number(level: HeadingLevel) -> &'static str {
    match level {
        HeadingLevel::H1 => "1",
        HeadingLevel::H2 => "2",
        HeadingLevel::H3 => "3",
        HeadingLevel::H4 => "4",
        HeadingLevel::H5 => "5",
        HeadingLevel::H6 => "6",
    }
}

#[cfg(test)]
mod tests;
