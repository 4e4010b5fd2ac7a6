//! HTML escaping for everything the markdown renderer writes.
//!
//! One function for text and attribute values alike: escaping both quote kinds as
//! well as `<`, `>` and `&` makes a string safe in either place, so no caller has to
//! choose and none can choose wrong.

/// Appends `text` to `out` with `& < > " '` escaped.
pub fn escape_text(out: &mut String, text: &str) {
    let mut from = 0;
    for (index, c) in text.char_indices() {
        let entity = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&#39;",
            _ => continue,
        };
        out.push_str(&text[from..index]);
        out.push_str(entity);
        from = index + 1;
    }
    out.push_str(&text[from..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_are_escaped_and_the_rest_kept() {
        let mut out = String::new();
        escape_text(&mut out, "<a href=\"x\" title='y'>Tom & Jerry</a> é 🦀");
        assert_eq!(
            out,
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;Tom &amp; Jerry&lt;/a&gt; é 🦀"
        );
    }
}
