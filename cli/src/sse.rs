//! A server-sent events parser over bytes as they arrive: lines are cut only at
//! `\n` (a chunk may end inside a UTF-8 character or a line), `\r\n` is accepted, a
//! blank line ends a message, and comments (the server's keep-alives) are reported
//! too, since they prove the stream is alive.

/// What a stream carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    /// A message with data; `id` is its `id:` field, when it had one.
    Message { id: Option<String>, data: String },
    /// A comment line (`: keep-alive`).
    Comment,
}

/// The parser's state between chunks.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes after the last complete line.
    partial: Vec<u8>,
    id: Option<String>,
    data: Vec<String>,
}

impl SseParser {
    /// Takes the next chunk; answers the items it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseItem> {
        self.partial.extend_from_slice(chunk);
        let mut items = Vec::new();
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]);
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if let Some(item) = self.line(line) {
                items.push(item);
            }
        }
        items
    }

    fn line(&mut self, line: &str) -> Option<SseItem> {
        if line.is_empty() {
            let id = self.id.take();
            if self.data.is_empty() {
                return None;
            }
            let data = std::mem::take(&mut self.data).join("\n");
            return Some(SseItem::Message { id, data });
        }
        if line.starts_with(':') {
            return Some(SseItem::Comment);
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "id" => self.id = Some(value.to_string()),
            "data" => self.data.push(value.to_string()),
            // `event:` and `retry:` carry nothing the CLI uses.
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: Option<&str>, data: &str) -> SseItem {
        SseItem::Message {
            id: id.map(str::to_string),
            data: data.to_string(),
        }
    }

    #[test]
    fn messages_comments_and_crlf() {
        let mut parser = SseParser::default();
        let items =
            parser.push(b": keep-alive\n\nid: 3\ndata: {\"a\":1}\n\ndata:x\r\ndata: y\r\n\r\n");
        assert_eq!(
            items,
            [
                SseItem::Comment,
                message(Some("3"), "{\"a\":1}"),
                message(None, "x\ny")
            ]
        );
    }

    #[test]
    fn chunks_may_split_lines_and_characters() {
        let bytes = "id: 9\ndata: héllo\n\n".as_bytes();
        let mut parser = SseParser::default();
        let mut items = Vec::new();
        for byte in bytes {
            items.extend(parser.push(std::slice::from_ref(byte)));
        }
        assert_eq!(items, [message(Some("9"), "héllo")]);
    }

    #[test]
    fn an_id_without_data_does_not_leak_into_the_next_message() {
        let mut parser = SseParser::default();
        assert!(parser.push(b"id: 1\n\n").is_empty());
        assert_eq!(parser.push(b"data: p\n\n"), [message(None, "p")]);
    }
}
