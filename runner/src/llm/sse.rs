//! A decoder for `text/event-stream` bodies (the server-sent events both LLM APIs
//! stream), fed with network chunks that may split lines, and even UTF-8 characters,
//! anywhere.
//!
//! Follows the WHATWG event-stream rules the LLM APIs use: lines end with `\n` or
//! `\r\n`; `data:` lines accumulate (joined with `\n`) until a blank line dispatches
//! the event; `event:` names it; lines starting with `:` are comments (some providers
//! send them as keep-alives); other fields are ignored. Plain type, no I/O.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name, when the server sent one.
    pub event: Option<String>,
    pub data: String,
}

/// The longest line the decoder buffers. An LLM event is far smaller; a longer line
/// means the body is not an event stream.
const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("an event-stream line is longer than {MAX_LINE_BYTES} bytes")]
pub struct LineTooLong;

#[derive(Debug, Default)]
pub struct SseDecoder {
    /// Bytes of the current, unfinished line. Kept as bytes so a UTF-8 character
    /// split between two chunks is decoded only once whole.
    partial: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
}

impl SseDecoder {
    pub fn new() -> SseDecoder {
        SseDecoder::default()
    }

    /// Feeds the next chunk of the body; returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, LineTooLong> {
        let mut events = Vec::new();
        let mut rest = chunk;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&rest[..newline]);
            rest = &rest[newline + 1..];
            let mut line = std::mem::take(&mut self.partial);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Some(event) = self.line(&String::from_utf8_lossy(&line)) {
                events.push(event);
            }
        }
        self.partial.extend_from_slice(rest);
        if self.partial.len() > MAX_LINE_BYTES {
            return Err(LineTooLong);
        }
        Ok(events)
    }

    /// The body ended. Servers should end with a blank line; an event left without
    /// one is still dispatched, because some OpenAI-compatible servers omit it.
    pub fn finish(&mut self) -> Option<SseEvent> {
        if !self.partial.is_empty() {
            let mut line = std::mem::take(&mut self.partial);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Some(event) = self.line(&String::from_utf8_lossy(&line)) {
                return Some(event);
            }
        }
        self.dispatch()
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => self.data.push(value.to_string()),
            "event" => self.event = Some(value.to_string()),
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        if self.data.is_empty() {
            return None;
        }
        let data = std::mem::take(&mut self.data).join("\n");
        Some(SseEvent { event, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(body: &[u8], piece: usize) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        for chunk in body.chunks(piece) {
            events.extend(decoder.feed(chunk).unwrap());
        }
        events.extend(decoder.finish());
        events
    }

    #[test]
    fn any_split_gives_the_same_events() {
        let body = "event: message_start\r\ndata: {\"a\":\"é€😀\"}\r\n\r\n: keep-alive\n\ndata: one\ndata: two\n\ndata:[DONE]\n\n";
        let whole = decode_in_pieces(body.as_bytes(), body.len());
        assert_eq!(
            whole,
            vec![
                SseEvent {
                    event: Some("message_start".into()),
                    data: "{\"a\":\"é€😀\"}".into()
                },
                SseEvent {
                    event: None,
                    data: "one\ntwo".into()
                },
                SseEvent {
                    event: None,
                    data: "[DONE]".into()
                },
            ]
        );
        // Every piece size splits lines, CRLF pairs and multi-byte characters
        // somewhere; none may change the result.
        for piece in 1..body.len() {
            assert_eq!(
                decode_in_pieces(body.as_bytes(), piece),
                whole,
                "piece size {piece}"
            );
        }
    }

    #[test]
    fn a_last_event_without_a_blank_line_is_kept() {
        assert_eq!(
            decode_in_pieces(b"data: x\n\ndata: y", 3),
            vec![
                SseEvent {
                    event: None,
                    data: "x".into()
                },
                SseEvent {
                    event: None,
                    data: "y".into()
                }
            ]
        );
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut decoder = SseDecoder::new();
        let chunk = vec![b'a'; 1024 * 1024];
        let mut result = Ok(Vec::new());
        for _ in 0..9 {
            result = decoder.feed(&chunk);
        }
        assert_eq!(result, Err(LineTooLong));
    }
}
