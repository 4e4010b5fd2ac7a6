//! Just enough Markdown for agent replies: fenced code blocks.
//!
//! Reply text arrives in pieces while the LLM streams it, so the splitter must accept
//! any prefix of a reply; a fence that is still open renders as code up to the end of
//! the text received so far. Everything outside fences renders as preformatted prose
//! (newlines and spaces kept), which is how the rest of a reply reads best anyway.

/// A run of reply text, ready to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Prose(String),
    Code {
        language: Option<String>,
        code: String,
    },
}

/// Splits reply text at ``` fences. A fence line opens or closes a code block; the
/// word after an opening fence names the language.
pub fn split_code_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut prose = String::new();
    let mut code: Option<(Option<String>, String)> = None;

    for line in text.split_inclusive('\n') {
        let fence = fence_info(line);
        match (&mut code, fence) {
            (None, Some(info)) => {
                if !prose.is_empty() {
                    blocks.push(Block::Prose(std::mem::take(&mut prose)));
                }
                let language = info.split_whitespace().next().map(str::to_owned);
                code = Some((language, String::new()));
            }
            (Some(_), Some(_)) => {
                if let Some((language, body)) = code.take() {
                    blocks.push(Block::Code {
                        language,
                        code: strip_last_newline(body),
                    });
                }
            }
            (Some((_, body)), None) => body.push_str(line),
            (None, None) => prose.push_str(line),
        }
    }
    if let Some((language, body)) = code {
        blocks.push(Block::Code {
            language,
            code: strip_last_newline(body),
        });
    }
    if !prose.is_empty() {
        blocks.push(Block::Prose(prose));
    }
    blocks
}

/// The text after ``` when `line` is a fence line (up to three spaces of indent).
fn fence_info(line: &str) -> Option<&str> {
    let trimmed = line.trim_end_matches(['\n', '\r']);
    let indent = trimmed.len() - trimmed.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    trimmed
        .trim_start_matches(' ')
        .strip_prefix("```")
        .map(str::trim)
}

fn strip_last_newline(mut body: String) -> String {
    if body.ends_with('\n') {
        body.pop();
        if body.ends_with('\r') {
            body.pop();
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(language: Option<&str>, code: &str) -> Block {
        Block::Code {
            language: language.map(str::to_owned),
            code: code.to_owned(),
        }
    }

    #[test]
    fn plain_text_is_one_prose_block() {
        assert_eq!(
            split_code_blocks("Hello\n  world"),
            [Block::Prose("Hello\n  world".into())]
        );
        assert!(split_code_blocks("").is_empty());
    }

    #[test]
    fn fences_become_code_blocks_with_their_language() {
        let text = "Run this:\n```bash\nls -la\ncat x\n```\nDone.";
        assert_eq!(
            split_code_blocks(text),
            [
                Block::Prose("Run this:\n".into()),
                code(Some("bash"), "ls -la\ncat x"),
                Block::Prose("Done.".into()),
            ]
        );
    }

    #[test]
    fn an_open_fence_while_streaming_renders_as_code() {
        assert_eq!(
            split_code_blocks("See:\n```\nfn main() {"),
            [Block::Prose("See:\n".into()), code(None, "fn main() {")]
        );
    }

    #[test]
    fn inline_backticks_and_deep_indents_are_not_fences() {
        let text = "use `x` here\n    ```not a fence\n";
        assert_eq!(split_code_blocks(text), [Block::Prose(text.into())]);
    }
}
