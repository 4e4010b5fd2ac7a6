//! A tool call as a card: the tool's name and arguments (for `bash`, the command) the
//! moment it starts, then its output, with an error style when it failed. Long output
//! is collapsed behind a toggle; output the runner cut off is reported in bytes.

use leptos::prelude::*;
use serde_json::Value;

use super::depend_on;
use crate::format;
use crate::state::{Timeline, ToolResult, TurnItem};

/// Output longer than this many lines (or bytes) starts collapsed.
const COLLAPSE_AFTER_LINES: usize = 20;
const COLLAPSE_AFTER_BYTES: usize = 4_000;

#[component]
pub fn ToolCallCard(
    timeline: RwSignal<Timeline>,
    revision: Memo<u64>,
    turn: usize,
    item: usize,
) -> impl IntoView {
    let read_call = move |timeline: &Timeline| match timeline
        .turn(turn)
        .and_then(|turn| turn.items.get(item))
    {
        Some(TurnItem::ToolCall(call)) => Some(call.clone()),
        _ => None,
    };
    // The name and arguments are fixed when the call starts; only the result arrives
    // later, once, so it is copied only when `finished` flips.
    let (tool, args, call_id) = timeline
        .with_untracked(|timeline| {
            read_call(timeline).map(|call| (call.tool, call.args, call.call_id))
        })
        .unwrap_or_else(|| ("tool".to_owned(), Value::Null, String::new()));
    let finished = Memo::new(move |_| {
        depend_on(revision);
        timeline.with_untracked(|timeline| {
            read_call(timeline).is_some_and(|call| call.result.is_some())
        })
    });
    let result = Memo::new(move |_| {
        depend_on(finished);
        timeline.with_untracked(|timeline| read_call(timeline).and_then(|call| call.result))
    });
    let is_error =
        move || result.with(|result| result.as_ref().is_some_and(|result| result.is_error));
    let state = move || match (finished.get(), is_error()) {
        (false, _) => "running",
        (true, false) => "ok",
        (true, true) => "error",
    };

    let summary = format::tool_call_summary(&tool, &args);
    let details = format::tool_call_details(&tool, &args);
    let is_shell = tool == "bash";
    let tool_attribute = tool.clone();

    view! {
        <div
            class="tool-call"
            class:tool-call--error=is_error
            class:tool-call--running=move || !finished.get()
            data-testid="tool-call"
            data-tool=tool_attribute
            data-call-id=call_id
            data-state=state
        >
            <div class="tool-call__head">
                <span class="tool-call__icon" aria-hidden="true">{if is_shell { "$" } else { "◆" }}</span>
                <span class="tool-call__name">{tool}</span>
                <span class="tool-call__state">
                    {move || match state() {
                        "running" => view! { <span class="spinner spinner--small"></span>"running" }.into_any(),
                        "error" => "failed".into_any(),
                        _ => "done".into_any(),
                    }}
                </span>
            </div>
            <pre class="tool-call__args" data-testid="tool-args">{summary}</pre>
            {details.map(|details| view! {
                <details class="tool-call__details">
                    <summary>"Arguments"</summary>
                    <pre>{details}</pre>
                </details>
            })}
            {move || result.get().map(|result| view! { <ToolOutput result=result/> })}
        </div>
    }
}

#[component]
fn ToolOutput(result: ToolResult) -> impl IntoView {
    let lines = format::line_count(&result.output);
    let long = lines > COLLAPSE_AFTER_LINES || result.output.len() > COLLAPSE_AFTER_BYTES;
    let expanded = RwSignal::new(false);
    let empty = result.output.is_empty();
    let truncated = result.truncated_bytes;
    view! {
        <div class="tool-output-wrap">
            <pre
                class="tool-output"
                class:tool-output--collapsed=move || long && !expanded.get()
                class:tool-output--empty=empty
                data-testid="tool-output"
            >
                {result.output}
            </pre>
            {long.then(|| view! {
                <button
                    class="link-button"
                    data-testid="tool-output-toggle"
                    on:click=move |_| expanded.update(|expanded| *expanded = !*expanded)
                >
                    {move || if expanded.get() { "Show less".to_owned() } else { format!("Show all {lines} lines") }}
                </button>
            })}
            {(truncated > 0).then(|| view! {
                <div class="tool-output__truncated" data-testid="tool-truncated">
                    {format!("{truncated} bytes truncated ({})", format::byte_size(truncated))}
                </div>
            })}
        </div>
    }
}
