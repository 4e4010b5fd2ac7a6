//! The timeline: every turn with its prompt, streamed reply text, tool calls, errors
//! and outcome, plus session-level notices.
//!
//! Turns and their items are only appended or changed in place (see
//! `state::timeline`), so they are keyed by index, and each turn re-reads its data only
//! when its `revision` moves. A streaming reply therefore redraws one text block per
//! batch of deltas, not the whole timeline.

use leptos::prelude::*;
use leptos::task::spawn_local;
use nightshift_protocol::events::TurnOutcome;
use nightshift_protocol::roles::Access;

use super::depend_on;
use super::question::{QuestionCard, RetryNotice};
use super::tool_call::ToolCallCard;
use crate::api;
use crate::components::session::SessionContext;
use crate::format;
use crate::markdown;
use crate::state::{Entry, Timeline, Turn, TurnEnd, TurnItem};

/// What an interruption notice says; end-to-end tests look for it.
const INTERRUPTED_TEXT: &str =
    "Runner stopped mid-turn; this prompt will run again when a runner is back";

#[component]
pub(crate) fn TimelineView(context: SessionContext) -> impl IntoView {
    let timeline = context.timeline;
    let entry_count = Memo::new(move |_| timeline.with(|timeline| timeline.entries().len()));
    view! {
        <div class="timeline" data-testid="timeline">
            <Show when=move || entry_count.get() == 0>
                <div class="timeline__empty">
                    <p class="timeline__empty-title">"Nothing has happened here yet."</p>
                    <p>"Send a prompt below. The agent's replies and commands stream in here as they happen."</p>
                </div>
            </Show>
            <For
                each=move || 0..entry_count.get()
                key=|index| *index
                children=move |index| {
                    match timeline.with_untracked(|timeline| timeline.entries().get(index).copied()) {
                        Some(Entry::Turn(turn)) => view! { <TurnView context=context index=turn/> }.into_any(),
                        Some(Entry::Notice(notice)) => {
                            let message = timeline
                                .with_untracked(|timeline| timeline.notice(notice).map(|notice| notice.message.clone()))
                                .unwrap_or_default();
                            view! { <div class="turn-error turn-error--session" data-testid="turn-error">{message}</div> }
                                .into_any()
                        }
                        None => ().into_any(),
                    }
                }
            />
        </div>
    }
}

/// Reads one value of turn `index`, re-reading whenever the turn's revision moves.
fn turn_memo<T>(
    timeline: RwSignal<Timeline>,
    revision: Memo<u64>,
    index: usize,
    read: impl Fn(&Turn) -> T + Send + Sync + 'static,
) -> Memo<Option<T>>
where
    T: PartialEq + Send + Sync + 'static,
{
    Memo::new(move |_| {
        depend_on(revision);
        timeline.with_untracked(|timeline| timeline.turn(index).map(&read))
    })
}

#[component]
fn TurnView(context: SessionContext, index: usize) -> impl IntoView {
    let timeline = context.timeline;
    let revision = Memo::new(move |_| {
        timeline.with(|timeline| timeline.turn(index).map_or(0, |turn| turn.revision))
    });
    let prompt = turn_memo(timeline, revision, index, |turn| turn.prompt.clone());
    let attempt = turn_memo(timeline, revision, index, |turn| turn.attempt);
    let item_count = turn_memo(timeline, revision, index, |turn| turn.items.len());
    let end = turn_memo(timeline, revision, index, |turn| turn.end.clone());
    let turn_id = timeline
        .with_untracked(|timeline| timeline.turn(index).and_then(|turn| turn.turn_id.clone()));
    let running = move || matches!(end.get(), Some(TurnEnd::Running));
    let rewound =
        move || turn_memo(timeline, revision, index, |turn| turn.rewound).get() == Some(true);
    let checkpoint = turn_memo(timeline, revision, index, |turn| turn.checkpoint.is_some());
    let turn_for_rewind = turn_id.clone();

    view! {
        <article class="turn" class:turn--running=running class:turn--rewound=rewound data-testid="turn" data-turn-id=turn_id>
            <Show when=rewound>
                <div class="turn__rewound" data-testid="turn-rewound">"Rewound: the agent no longer sees this turn"</div>
            </Show>
            {move || prompt.get().flatten().map(|prompt| view! {
                <div class="user-prompt" data-testid="user-prompt">{prompt}</div>
            })}
            {move || attempt.get().filter(|attempt| *attempt > 1).map(|attempt| view! {
                <div class="turn__attempt">"Attempt " {attempt} " — running the prompt again"</div>
            })}
            <div class="turn__body">
                <For
                    each=move || 0..item_count.get().unwrap_or(0)
                    key=|item| *item
                    children=move |item| view! { <TurnItemView timeline=timeline revision=revision turn=index item=item/> }
                />
                <Show when=running>
                    <div class="turn__working" data-testid="turn-running">
                        <span class="spinner" aria-hidden="true"></span>"Working…"
                    </div>
                </Show>
            </div>
            {move || end.get().map(turn_end_view)}
            {move || {
                let turn_id = turn_for_rewind.clone()?;
                (checkpoint.get() == Some(true) && !rewound()).then(|| view! { <TurnActions context=context turn_id=turn_id/> })
            }}
        </article>
    }
}

/// "Rewind to here" (for those who may manage the session) and "Fork from here"
/// (for collaborators and above, opening the new session) under a finished turn
/// whose files were kept; the server checks again.
#[component]
fn TurnActions(context: SessionContext, turn_id: String) -> impl IntoView {
    let busy = RwSignal::new(false);
    let may_fork = move || {
        context
            .access
            .role()
            .is_some_and(|role| role.allows(Access::SessionCollaborator))
    };
    let navigate = leptos_router::hooks::use_navigate();
    let fork_turn = turn_id.clone();
    let fork = move |_| {
        busy.set(true);
        let session_id = context.session_id.get_value();
        let turn_id = fork_turn.clone();
        let navigate = navigate.clone();
        spawn_local(async move {
            match api::fork(&session_id, &turn_id).await {
                Ok(session) => navigate(&format!("/sessions/{}", session.id), Default::default()),
                Err(error) => context
                    .action_error
                    .set(Some(format!("Could not fork: {error}"))),
            }
            busy.set(false);
        });
    };
    let may_rewind = move || {
        context
            .access
            .role()
            .is_some_and(|role| role.allows(Access::SessionManager))
    };
    let rewind = move |_| {
        let confirmed = web_sys::window()
            .and_then(|window| {
                window
                    .confirm_with_message(
                        "Rewind to this turn? The files and the conversation go back to how this turn left them; later turns stay in the history, greyed.",
                    )
                    .ok()
            })
            .unwrap_or(false);
        if !confirmed {
            return;
        }
        busy.set(true);
        let session_id = context.session_id.get_value();
        let turn_id = turn_id.clone();
        spawn_local(async move {
            if let Err(error) = api::rewind(&session_id, &turn_id).await {
                context
                    .action_error
                    .set(Some(format!("Could not rewind: {error}")));
            }
            busy.set(false);
        });
    };
    view! {
        <div class="turn-actions">
            <Show when=may_fork>
                <button
                    class="button button--ghost button--small"
                    data-testid="fork-turn"
                    disabled=move || busy.get()
                    on:click=fork.clone()
                    title="Start a new session with this turn's files and conversation"
                >
                    "Fork from here"
                </button>
            </Show>
            <Show when=may_rewind>
                <button
                    class="button button--ghost button--small"
                    data-testid="rewind-turn"
                    disabled=move || busy.get() || context.timeline.with(Timeline::has_running_turn)
                    on:click=rewind.clone()
                    title="Put the files and the conversation back to how this turn left them"
                >
                    {move || if busy.get() { "Rewinding…" } else { "Rewind to here" }}
                </button>
            </Show>
        </div>
    }
}

fn turn_end_view(end: TurnEnd) -> AnyView {
    match end {
        TurnEnd::Running => ().into_any(),
        // The notice's own text is exactly the sentence; the reason sits beside it.
        TurnEnd::Interrupted { reason } => view! {
            <div class="turn-interrupted-wrap">
                <div class="turn-interrupted" data-testid="turn-interrupted">{INTERRUPTED_TEXT}</div>
                <div class="turn-interrupted__reason">{reason}</div>
            </div>
        }
        .into_any(),
        TurnEnd::Finished {
            outcome,
            usage,
            duration_ms,
        } => {
            let (name, label) = match outcome {
                TurnOutcome::Done => ("done", "Done"),
                TurnOutcome::Failed => ("failed", "Failed"),
                TurnOutcome::Aborted => ("aborted", "Aborted"),
            };
            view! {
                <footer class=format!("turn-footer turn-footer--{name}") data-testid="turn-footer" data-outcome=name>
                    <span class="turn-footer__outcome">{label}</span>
                    <span class="turn-footer__usage" data-testid="turn-usage">
                        {format::token_count(usage.input_tokens)} " in · "
                        {format::token_count(usage.output_tokens)} " out"
                    </span>
                    <span class="turn-footer__duration" data-testid="turn-duration">
                        {(duration_ms > 0).then(|| format!(" · {}", format_duration(duration_ms)))}
                    </span>
                </footer>
            }
            .into_any()
        }
    }
}

#[component]
fn TurnItemView(
    timeline: RwSignal<Timeline>,
    revision: Memo<u64>,
    turn: usize,
    item: usize,
) -> impl IntoView {
    // An item never changes kind once it exists; only its contents grow.
    let kind = timeline.with_untracked(|timeline| {
        timeline
            .turn(turn)
            .and_then(|turn| turn.items.get(item))
            .map(|item| match item {
                TurnItem::Text(_) => ItemKind::Text,
                TurnItem::ToolCall(_) => ItemKind::ToolCall,
                TurnItem::Error(message) => ItemKind::Error(message.clone()),
                TurnItem::Retry(retry) => ItemKind::Retry(retry.clone()),
                TurnItem::Question(_) => ItemKind::Question,
                TurnItem::Image(image) => ItemKind::Image(image.clone()),
            })
    });
    match kind {
        Some(ItemKind::Text) => {
            view! { <AssistantText timeline=timeline revision=revision turn=turn item=item/> }
                .into_any()
        }
        Some(ItemKind::ToolCall) => {
            view! { <ToolCallCard timeline=timeline revision=revision turn=turn item=item/> }
                .into_any()
        }
        Some(ItemKind::Error(message)) => view! {
            <div class="turn-error" data-testid="turn-error" role="alert">{message}</div>
        }
        .into_any(),
        Some(ItemKind::Retry(retry)) => view! {
            <RetryNotice
                attempt=retry.attempt
                max_attempts=retry.max_attempts
                delay_ms=retry.delay_ms
                reason=retry.reason
            />
        }
        .into_any(),
        Some(ItemKind::Question) => {
            view! { <QuestionCard timeline=timeline revision=revision turn=turn item=item/> }
                .into_any()
        }
        Some(ItemKind::Image(image)) => view! { <ChatImage image=image/> }.into_any(),
        None => ().into_any(),
    }
}

/// A screenshot in the chat; a click opens it full size in a new tab. The URL is the
/// session's own artifacts route, so only people who may view the session load it.
#[component]
fn ChatImage(image: crate::state::Image) -> impl IntoView {
    let params = leptos_router::hooks::use_params_map();
    let session = params.with_untracked(|params| params.get("id").unwrap_or_default());
    let href = format!("/api/sessions/{session}/artifacts/{}", image.artifact);
    let src = href.clone();
    view! {
        <a class="chat-image" href=href target="_blank" rel="noopener noreferrer" data-testid="chat-image">
            <img
                src=src
                width=image.width
                height=image.height
                loading="lazy"
                alt=format!("Screenshot, {} by {} pixels", image.width, image.height)
            />
        </a>
    }
}

enum ItemKind {
    Text,
    ToolCall,
    Error(String),
    Retry(crate::state::Retry),
    Question,
    Image(crate::state::Image),
}

/// "850 ms", "12.3 s", "2 min 5 s".
pub fn format_duration(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// Reply text, re-rendered as it grows. Only text length is compared on each change
/// of the turn, so other items' updates do not copy this text.
#[component]
fn AssistantText(
    timeline: RwSignal<Timeline>,
    revision: Memo<u64>,
    turn: usize,
    item: usize,
) -> impl IntoView {
    let read = move || {
        timeline.with_untracked(|timeline| {
            match timeline.turn(turn).and_then(|turn| turn.items.get(item)) {
                Some(TurnItem::Text(text)) => text.clone(),
                _ => String::new(),
            }
        })
    };
    let length = Memo::new(move |_| {
        depend_on(revision);
        timeline.with_untracked(|timeline| {
            match timeline.turn(turn).and_then(|turn| turn.items.get(item)) {
                Some(TurnItem::Text(text)) => text.len(),
                _ => 0,
            }
        })
    });
    let text = Memo::new(move |_| {
        depend_on(length);
        read()
    });
    // `markdown::render` escapes everything it does not write itself (see its
    // module docs), which is what makes setting its output as inner HTML safe.
    view! {
        <div
            class="assistant-text markdown"
            data-testid="assistant-text"
            inner_html=move || text.with(|text| markdown::render(text))
        ></div>
    }
}
