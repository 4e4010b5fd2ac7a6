//! The agent's tools, all confined to the sandbox: `bash` (a command in the
//! sandbox), `read_file`, `write_file`, `edit_file`, `list` and `grep` (in its
//! workspace), and the `browser_*` tools (its desktop's Chromium, [`browser`]).
//!
//! A tool never fails a turn: bad arguments, refused paths and failing commands come
//! back as an error result ([`ToolOutput::is_error`]) for the model to act on. Tool
//! output is cut to `limits::MAX_TOOL_OUTPUT_BYTES` by [`truncate_output`], keeping
//! its beginning and its end (where a command's exit code is).
//!
//! Knows the OS and the workspace; knows nothing about the link, events or LLMs
//! beyond the [`ToolDefinition`] it hands out.

pub mod bash;
pub mod browser;
pub mod files;
pub mod paths;
pub mod search;

#[cfg(test)]
mod confinement_tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nightshift_protocol::sandbox::RunnerBootConfig;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::llm::ToolDefinition;
use crate::sandbox_bridge::Bridge;
use bash::CommandSettings;
use browser::BrowserTools;
use browser::devtools::{DEVTOOLS_PORT, Devtools};
use paths::Workspace;

/// What a tool call produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    pub text: String,
    pub is_error: bool,
    /// An image for the people watching (a browser screenshot); the model gets
    /// `text` only.
    pub image: Option<browser::Png>,
}

impl ToolOutput {
    pub fn ok(text: impl Into<String>) -> ToolOutput {
        ToolOutput {
            text: text.into(),
            is_error: false,
            image: None,
        }
    }

    pub fn error(text: impl Into<String>) -> ToolOutput {
        ToolOutput {
            text: text.into(),
            is_error: true,
            image: None,
        }
    }

    pub fn with_image(mut self, image: browser::Png) -> ToolOutput {
        self.image = Some(image);
        self
    }
}

#[derive(Debug, Clone)]
pub struct ToolSet {
    workspace: Arc<Workspace>,
    commands: CommandSettings,
    browser: BrowserTools,
}

impl ToolSet {
    pub fn new(
        workspace_dir: &Path,
        sandbox_workspace_dir: &str,
        command_wrapper: Vec<String>,
    ) -> std::io::Result<ToolSet> {
        let workspace = Workspace::new(workspace_dir, Path::new(sandbox_workspace_dir))?;
        let home = if command_wrapper.is_empty() {
            workspace.root().to_string_lossy().into_owned()
        } else {
            sandbox_workspace_dir.to_string()
        };
        let commands = CommandSettings {
            wrapper: command_wrapper,
            workspace_dir: workspace.root().to_path_buf(),
            home,
        };
        Ok(ToolSet {
            workspace: Arc::new(workspace),
            commands,
            browser: BrowserTools::new(Devtools::Direct(DEVTOOLS_PORT)),
        })
    }

    /// Drives the browser at `devtools` instead of the DevTools port on the runner's
    /// own loopback.
    pub fn with_browser(mut self, devtools: Devtools) -> ToolSet {
        self.browser = BrowserTools::new(devtools);
        self
    }

    pub fn from_config(config: &RunnerBootConfig) -> std::io::Result<ToolSet> {
        let tools = ToolSet::new(
            &PathBuf::from(&config.workspace_dir),
            &config.sandbox_workspace_dir,
            config.command_wrapper.clone(),
        )?;
        // With a bridge, Chromium is on the sandbox's loopback, not the runner's.
        Ok(match Bridge::new(&config.bridge) {
            Some(bridge) => tools.with_browser(Devtools::Bridged(bridge, DEVTOOLS_PORT)),
            None => tools,
        })
    }

    pub fn definitions(&self) -> Vec<ToolDefinition> {
        let mut all = definitions();
        all.extend(browser::definitions());
        all
    }

    /// Runs one tool call. `cancel` stops a running command (killing its process
    /// group); the file tools are quick and finish regardless.
    pub async fn run(&self, name: &str, args: &Value, cancel: &CancellationToken) -> ToolOutput {
        match name {
            "bash" => match parse(name, args) {
                Ok(args) => bash::run(&self.commands, args, cancel).await,
                Err(output) => output,
            },
            "read_file" => self.blocking(name, args, files::read_file).await,
            "write_file" => self.blocking(name, args, files::write_file).await,
            "edit_file" => self.blocking(name, args, files::edit_file).await,
            "list" => self.blocking(name, args, search::list).await,
            "grep" => self.blocking(name, args, search::grep).await,
            name if BrowserTools::owns(name) => self.browser.run(name, args).await,
            _ => ToolOutput::error(format!(
                "there is no tool named {name:?}; the tools are bash, read_file, write_file, edit_file, list, grep \
                 and {}",
                browser::NAMES.join(", ")
            )),
        }
    }

    /// Runs a filesystem tool on the blocking pool, so a large grep does not stall
    /// the link or the LLM stream.
    async fn blocking<A, F>(&self, name: &str, args: &Value, tool: F) -> ToolOutput
    where
        A: DeserializeOwned + Send + 'static,
        F: FnOnce(&Workspace, A) -> ToolOutput + Send + 'static,
    {
        let args = match parse::<A>(name, args) {
            Ok(args) => args,
            Err(output) => return output,
        };
        let workspace = self.workspace.clone();
        match tokio::task::spawn_blocking(move || tool(&workspace, args)).await {
            Ok(output) => output,
            Err(error) => ToolOutput::error(format!("the {name} tool failed: {error}")),
        }
    }
}

fn parse<A: DeserializeOwned>(name: &str, args: &Value) -> Result<A, ToolOutput> {
    serde_json::from_value(args.clone())
        .map_err(|error| ToolOutput::error(format!("invalid arguments for {name}: {error}")))
}

/// Cuts `text` to at most `max` bytes, keeping the first three quarters and the last
/// quarter (on character boundaries) around a note saying how much was cut. Returns
/// the text and the number of bytes of `text` left out.
pub fn truncate_output(text: &str, max: usize) -> (String, u64) {
    if text.len() <= max {
        return (text.to_string(), 0);
    }
    // The note itself takes room; it is at most this long.
    let note_room = 64;
    let budget = max.saturating_sub(note_room);
    let mut head_end = budget * 3 / 4;
    while !text.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let mut tail_start = text.len() - (budget - head_end);
    while !text.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    let cut = tail_start - head_end;
    let note = format!("\n[... {cut} bytes cut ...]\n");
    (
        format!("{}{note}{}", &text[..head_end], &text[tail_start..]),
        cut as u64,
    )
}

fn definitions() -> Vec<ToolDefinition> {
    let tool = |name: &str, description: &str, parameters: Value| ToolDefinition {
        name: name.to_string(),
        description: description.to_string(),
        parameters,
    };
    vec![
        tool(
            "bash",
            "Run a shell command (bash -lc) in the workspace and return its combined stdout and stderr followed by \
             its exit code. Stdin is closed; do not start interactive programs. The command is killed after \
             timeout_ms (default 120000, at most 600000). Background processes must redirect their output \
             (`cmd > log 2>&1 &`).",
            json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The command line to run."},
                    "timeout_ms": {"type": "integer", "description": "Time limit in milliseconds (default 120000, max 600000)."}
                },
                "required": ["command"]
            }),
        ),
        tool(
            "read_file",
            "Read a text file from the workspace. Lines are numbered (`line_numbers: false` to turn that off). \
             Use offset and limit to read a part of a long file.",
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Path relative to the workspace, or absolute inside it."},
                    "offset": {"type": "integer", "description": "First line to read, starting at 1."},
                    "limit": {"type": "integer", "description": "How many lines to read (default 2000)."},
                    "line_numbers": {"type": "boolean", "description": "Prefix each line with its number (default true)."}
                },
                "required": ["path"]
            }),
        ),
        tool(
            "write_file",
            "Create or overwrite a file in the workspace with the given content. Missing parent directories are created.",
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Path relative to the workspace, or absolute inside it."},
                    "content": {"type": "string", "description": "The whole new content of the file."}
                },
                "required": ["path", "content"]
            }),
        ),
        tool(
            "edit_file",
            "Replace an exact string in a file. old_string must match the file exactly (whitespace included) and \
             occur once, unless replace_all is true.",
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Path relative to the workspace, or absolute inside it."},
                    "old_string": {"type": "string", "description": "The exact text to replace."},
                    "new_string": {"type": "string", "description": "The text to put in its place."},
                    "replace_all": {"type": "boolean", "description": "Replace every occurrence (default false)."}
                },
                "required": ["path", "old_string", "new_string"]
            }),
        ),
        tool(
            "list",
            "List files and directories in the workspace matching a glob, honouring .gitignore. Directories end with `/`.",
            json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "Glob relative to path, e.g. `**/*.rs` or `src/*` (default `**/*`)."},
                    "path": {"type": "string", "description": "Directory to list (default: the workspace)."}
                }
            }),
        ),
        tool(
            "grep",
            "Search file contents in the workspace with a regular expression, honouring .gitignore. \
             Returns `file:line: text` for each matching line.",
            json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "Regular expression (Rust regex syntax)."},
                    "path": {"type": "string", "description": "Directory or file to search (default: the workspace)."},
                    "glob": {"type": "string", "description": "Only search files matching this glob, e.g. `*.rs`."}
                },
                "required": ["pattern"]
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_output_is_kept_whole() {
        assert_eq!(truncate_output("abc", 10), ("abc".to_string(), 0));
    }

    #[test]
    fn long_output_keeps_head_and_tail_within_the_limit() {
        let text = format!(
            "{}{}{}",
            "h".repeat(5000),
            "m".repeat(100_000),
            "[exit code: 0]"
        );
        let (cut, dropped) = truncate_output(&text, 4096);
        assert!(cut.len() <= 4096, "{}", cut.len());
        assert!(cut.starts_with("hhhh"));
        assert!(cut.ends_with("[exit code: 0]"));
        assert!(cut.contains(&format!("[... {dropped} bytes cut ...]")));
        // What was kept plus what was cut is the whole text.
        let note = format!("\n[... {dropped} bytes cut ...]\n");
        assert_eq!(cut.len() - note.len() + dropped as usize, text.len());
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        let text = "é".repeat(10_000);
        let (cut, dropped) = truncate_output(&text, 1001);
        assert!(cut.len() <= 1001);
        assert!(dropped > 0);
        // Slicing inside a character would have panicked; check content too.
        assert!(cut.starts_with('é') && cut.ends_with('é'));
    }

    #[tokio::test]
    async fn unknown_tools_and_bad_arguments_are_error_results() {
        let dir = tempfile::tempdir().unwrap();
        let tools = ToolSet::new(dir.path(), "/workspace", Vec::new()).unwrap();
        let cancel = CancellationToken::new();
        let unknown = tools.run("rm_rf", &json!({}), &cancel).await;
        assert!(unknown.is_error && unknown.text.contains("no tool named"));
        let bad = tools.run("write_file", &json!({"path": 3}), &cancel).await;
        assert!(
            bad.is_error && bad.text.starts_with("invalid arguments for write_file"),
            "{}",
            bad.text
        );
        let names: Vec<String> = tools.definitions().into_iter().map(|d| d.name).collect();
        assert_eq!(
            names,
            [
                "bash",
                "read_file",
                "write_file",
                "edit_file",
                "list",
                "grep",
                "browser_navigate",
                "browser_click",
                "browser_type",
                "browser_read",
                "browser_screenshot"
            ]
        );
    }
}
