//! A question the agent asked mid-turn (or a permission it requested): its text, a
//! button per offered answer, a free-text answer for open questions, and a countdown
//! to when the runner stops waiting. Everyone watching the session sees the card; the
//! first answer wins (`POST .../questions/{id}/answer`), and the card then shows it.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use nightshift_protocol::events::QuestionKind;

use super::SessionContext;
use crate::api;
use crate::state::{Question, QuestionState, Timeline, TurnItem};

/// How often the countdown redraws.
const TICK: Duration = Duration::from_secs(1);

/// "4:05" for 245 s; "0:00" once it has passed.
pub fn countdown(remaining_ms: i64) -> String {
    let seconds = remaining_ms.max(0) / 1000;
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

#[component]
pub fn QuestionCard(
    timeline: RwSignal<Timeline>,
    revision: Memo<u64>,
    turn: usize,
    item: usize,
) -> impl IntoView {
    let context = expect_context::<SessionContext>();
    let question = Memo::new(move |_| {
        super::depend_on(revision);
        timeline.with_untracked(|timeline| {
            match timeline.turn(turn).and_then(|turn| turn.items.get(item)) {
                Some(TurnItem::Question(question)) => Some(question.clone()),
                _ => None,
            }
        })
    });
    let now = RwSignal::new(js_sys::Date::now() as i64);
    if let Ok(handle) = set_interval_with_handle(move || now.set(js_sys::Date::now() as i64), TICK)
    {
        on_cleanup(move || handle.clear());
    }
    let draft = RwSignal::new(String::new());
    let sending = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let answer = move |text: String| {
        let Some(question) = question.get_untracked() else {
            return;
        };
        if text.trim().is_empty() || sending.get_untracked() {
            return;
        }
        sending.set(true);
        error.set(None);
        let session_id = context.session_id.get_value();
        spawn_local(async move {
            match api::answer_question(&session_id, &question.question_id, text).await {
                Ok(event) => {
                    context.timeline.update(|timeline| {
                        timeline.apply(event);
                    });
                    draft.set(String::new());
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
            sending.set(false);
        });
    };

    move || {
        let Some(Question {
            kind,
            text,
            options,
            expires_at,
            state,
            question_id,
        }) = question.get()
        else {
            return ().into_any();
        };
        let (label, class) = match kind {
            QuestionKind::Question => ("The agent asks", "question"),
            QuestionKind::Permission => ("Permission requested", "question question--permission"),
        };
        let body = match state {
            QuestionState::Answered { answer } => view! {
                <p class="question__closed" data-testid="question-answered">"Answered: " <strong>{answer}</strong></p>
            }
            .into_any(),
            QuestionState::Expired => view! {
                <p class="question__closed" data-testid="question-expired">"No answer in time; the agent went on without one."</p>
            }
            .into_any(),
            QuestionState::Open => {
                let read_only = context.access.read_only();
                let buttons = options
                    .iter()
                    .map(|option| {
                        let value = option.clone();
                        view! {
                            <button
                                class="button button--small"
                                data-testid="question-option"
                                disabled=move || sending.get() || read_only
                                on:click=move |_| answer(value.clone())
                            >
                                {option.clone()}
                            </button>
                        }
                    })
                    .collect_view();
                let free_text = (kind == QuestionKind::Question).then(|| view! {
                    <form class="question__free" on:submit=move |event: leptos::ev::SubmitEvent| {
                        event.prevent_default();
                        answer(draft.get_untracked());
                    }>
                        <input
                            class="question__input"
                            data-testid="question-input"
                            placeholder="Type an answer…"
                            disabled=read_only
                            prop:value=move || draft.get()
                            on:input=move |event| draft.set(event_target_value(&event))
                        />
                        <button
                            class="button button--primary button--small"
                            data-testid="question-submit"
                            type="submit"
                            disabled=move || sending.get() || read_only || draft.with(|d| d.trim().is_empty())
                        >
                            "Answer"
                        </button>
                    </form>
                });
                view! {
                    <div class="question__options">{buttons}</div>
                    {free_text}
                    <p class="question__countdown" data-testid="question-countdown">
                        {move || {
                            let left = expires_at - now.get();
                            if left > 0 {
                                format!("Waiting for an answer · {} left", countdown(left))
                            } else {
                                "Time is up; waiting for the agent to go on".to_owned()
                            }
                        }}
                    </p>
                    {move || error.get().map(|error| view! { <p class="inline-error" role="alert">{error}</p> })}
                }
                .into_any()
            }
        };
        view! {
            <div class=class data-testid="question" data-question-id=question_id>
                <div class="question__label">{label}</div>
                <p class="question__text">{text}</p>
                {body}
            </div>
        }
        .into_any()
    }
}

/// A retry of an LLM call, as the runner announced it.
#[component]
pub fn RetryNotice(
    attempt: u32,
    max_attempts: u32,
    delay_ms: u64,
    reason: String,
) -> impl IntoView {
    let seconds = delay_ms as f64 / 1000.0;
    view! {
        <div class="retry-notice" data-testid="retry-notice" role="status">
            {format!("The LLM call failed ({reason}); retrying in {seconds:.1} s (attempt {} of {max_attempts})", attempt + 1)}
        </div>
    }
}
