//! Small, pure text formatting for the views: tool-call summaries, token counts,
//! byte sizes and relative times.

use serde_json::Value;

/// What a tool call's header shows: the command for `bash`, the path for file tools,
/// and compact JSON for anything else.
pub fn tool_call_summary(tool: &str, args: &Value) -> String {
    let field = |name: &str| args.get(name).and_then(Value::as_str).map(str::to_owned);
    if tool == "bash"
        && let Some(command) = field("command")
    {
        return command;
    }
    if let Some(summary) = field("command")
        .or_else(|| field("path"))
        .or_else(|| field("pattern"))
    {
        return summary;
    }
    match args {
        Value::Null => String::new(),
        Value::Object(map) if map.is_empty() => String::new(),
        other => other.to_string(),
    }
}

/// The arguments in full, for tools whose summary leaves some out; `None` when the
/// summary already says everything.
pub fn tool_call_details(tool: &str, args: &Value) -> Option<String> {
    let Value::Object(map) = args else {
        return None;
    };
    let summarized_alone = map.len() == 1
        && (map.contains_key("command") || map.contains_key("path") || map.contains_key("pattern"));
    if map.is_empty() || summarized_alone || (tool == "bash" && map.len() == 1) {
        return None;
    }
    serde_json::to_string_pretty(args).ok()
}

/// Token counts the way a status line shows them: `950`, `12.3k`, `1.2M`.
pub fn token_count(count: u64) -> String {
    match count {
        0..1_000 => count.to_string(),
        1_000..1_000_000 => trim_decimal(count as f64 / 1_000.0, "k"),
        _ => trim_decimal(count as f64 / 1_000_000.0, "M"),
    }
}

/// Byte sizes: `512 B`, `3.2 KB`, `1.5 MB` (powers of 1024).
pub fn byte_size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => trim_decimal(bytes as f64 / 1024.0, " KB"),
        _ => trim_decimal(bytes as f64 / 1_048_576.0, " MB"),
    }
}

fn trim_decimal(value: f64, unit: &str) -> String {
    let text = format!("{value:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text}{unit}")
}

/// How long ago `then` was, relative to `now` (both ms since the epoch).
pub fn relative_time(then_ms: i64, now_ms: i64) -> String {
    let seconds = (now_ms - then_ms).max(0) / 1000;
    match seconds {
        0..60 => "just now".to_owned(),
        60..3_600 => format!("{}m ago", seconds / 60),
        3_600..86_400 => format!("{}h ago", seconds / 3_600),
        _ => format!("{}d ago", seconds / 86_400),
    }
}

/// The number of lines in a tool output, counting a last line without a newline.
pub fn line_count(text: &str) -> usize {
    if text.is_empty() {
        return 0;
    }
    text.lines().count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bash_calls_show_their_command() {
        assert_eq!(
            tool_call_summary("bash", &json!({"command": "cargo test"})),
            "cargo test"
        );
        assert_eq!(
            tool_call_details("bash", &json!({"command": "cargo test"})),
            None
        );
    }

    #[test]
    fn other_tools_show_a_path_or_their_json() {
        let write = json!({"path": "src/main.rs", "content": "fn main() {}"});
        assert_eq!(tool_call_summary("write_file", &write), "src/main.rs");
        assert!(
            tool_call_details("write_file", &write)
                .is_some_and(|details| details.contains("content"))
        );
        assert_eq!(
            tool_call_summary("think", &json!({"depth": 2})),
            r#"{"depth":2}"#
        );
        assert_eq!(tool_call_summary("noop", &Value::Null), "");
    }

    #[test]
    fn numbers_read_like_a_status_line() {
        assert_eq!(token_count(950), "950");
        assert_eq!(token_count(12_345), "12.3k");
        assert_eq!(token_count(2_000), "2k");
        assert_eq!(token_count(1_250_000), "1.2M");
        assert_eq!(byte_size(512), "512 B");
        assert_eq!(byte_size(3 * 1024 + 200), "3.2 KB");
        assert_eq!(byte_size(0), "0 B");
    }

    #[test]
    fn relative_times_round_down() {
        assert_eq!(relative_time(0, 59_000), "just now");
        assert_eq!(relative_time(0, 61_000), "1m ago");
        assert_eq!(relative_time(0, 2 * 3_600_000), "2h ago");
        assert_eq!(relative_time(0, 3 * 86_400_000), "3d ago");
        assert_eq!(relative_time(10, 0), "just now");
    }

    #[test]
    fn lines_are_counted_with_or_without_a_final_newline() {
        assert_eq!(line_count(""), 0);
        assert_eq!(line_count("a"), 1);
        assert_eq!(line_count("a\nb\n"), 2);
    }
}
