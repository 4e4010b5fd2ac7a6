//! The session's agent settings in its header: which agent works (built-in or
//! OpenCode), which model it uses, whether permission requests are asked or allowed,
//! and what the session's turns have used so far (tokens and time from the stream,
//! cost and sandbox time from the ledger). A change applies from the next turn
//! (`PATCH /api/sessions/{id}`); the session's stream announces it to every watcher.

use leptos::prelude::*;
use leptos::task::spawn_local;
use nightshift_protocol::api::{AgentKind, PermissionMode, UpdateSessionRequest, UsageTotals};

use super::SessionContext;
use super::timeline::format_duration;
use crate::api;
use crate::format;
use crate::state::AgentSettings;
use crate::store::SessionsStore;

/// "1.2k in · 340 out · 3 turns · 12.0 s".
pub fn totals_text(totals: &UsageTotals) -> String {
    let turns = match totals.turns {
        1 => "1 turn".to_owned(),
        n => format!("{n} turns"),
    };
    format!(
        "{} in · {} out · {turns} · {}",
        format::token_count(totals.input_tokens),
        format::token_count(totals.output_tokens),
        format_duration(totals.duration_ms)
    )
}

#[component]
pub fn AgentPicker(context: SessionContext) -> impl IntoView {
    let store = expect_context::<SessionsStore>();
    let models = RwSignal::new(Vec::new());
    spawn_local(async move {
        if let Ok(list) = api::list_models().await {
            models.set(list);
        }
    });
    // The stream's latest `session_updated` wins; before one arrives, the session
    // record says.
    let settings = Memo::new(move |_| {
        context
            .timeline
            .with(|timeline| timeline.settings().cloned())
            .or_else(|| {
                context.session_id.with_value(|id| {
                    store.list.with(|list| {
                        list.get(id).map(|session| AgentSettings {
                            agent: session.agent,
                            model: session.model.clone(),
                            permission_mode: session.permission_mode,
                        })
                    })
                })
            })
    });
    let totals = Memo::new(move |_| context.timeline.with(|timeline| timeline.usage_totals()));
    let saving = RwSignal::new(false);
    let update = move |request: UpdateSessionRequest| {
        saving.set(true);
        let session_id = context.session_id.get_value();
        spawn_local(async move {
            match api::update_session(&session_id, &request).await {
                Ok(session) => store.remember(session),
                Err(error) => context
                    .action_error
                    .set(Some(format!("Could not change the settings: {error}"))),
            }
            saving.set(false);
        });
    };
    let read_only = move || context.access.read_only();

    view! {
        <div class="agent-picker" data-testid="agent-picker">
            <select
                class="agent-picker__select"
                data-testid="agent-select"
                title="The agent that runs the next turn"
                disabled=move || saving.get() || read_only()
                prop:value=move || settings.with(|s| s.as_ref().map_or("builtin", |s| s.agent.as_str()))
                on:change=move |event| {
                    if let Some(agent) = AgentKind::parse(&event_target_value(&event)) {
                        update(UpdateSessionRequest { agent: Some(agent), ..Default::default() });
                    }
                }
            >
                <option value="builtin">"Built-in agent"</option>
                <option value="opencode">"OpenCode"</option>
            </select>
            <select
                class="agent-picker__select"
                data-testid="model-select"
                title="The model the next turn uses"
                disabled=move || saving.get() || read_only() || models.with(Vec::is_empty)
                prop:value=move || settings.with(|s| s.as_ref().and_then(|s| s.model.clone()).unwrap_or_default())
                on:change=move |event| {
                    let model = event_target_value(&event);
                    if !model.is_empty() {
                        update(UpdateSessionRequest { model: Some(model), ..Default::default() });
                    }
                }
            >
                {move || {
                    let current = settings.with(|s| s.as_ref().and_then(|s| s.model.clone()));
                    let listed = models.with(|models| {
                        current.as_ref().is_none_or(|current| models.iter().any(|m| &m.id == current))
                    });
                    // A model that is not offered any more still shows as chosen.
                    let stale = (!listed).then(|| current.clone()).flatten().map(|model| {
                        view! { <option value=model.clone()>{format!("{model} (unavailable)")}</option> }
                    });
                    let empty = models.with(Vec::is_empty).then(|| view! { <option value="">"No models configured"</option> });
                    view! {
                        {empty}
                        {stale}
                        {models.get().into_iter().map(|model| view! {
                            <option value=model.id.clone()>{model.name.clone()}</option>
                        }).collect_view()}
                    }
                }}
            </select>
            <select
                class="agent-picker__select"
                data-testid="permission-select"
                title="Whether the agent asks before doing things that need permission"
                disabled=move || saving.get() || read_only()
                prop:value=move || settings.with(|s| s.as_ref().map_or("ask", |s| s.permission_mode.as_str()))
                on:change=move |event| {
                    if let Some(mode) = PermissionMode::parse(&event_target_value(&event)) {
                        update(UpdateSessionRequest { permission_mode: Some(mode), ..Default::default() });
                    }
                }
            >
                <option value="ask">"Ask before acting"</option>
                <option value="allow">"Allow everything"</option>
            </select>
            <span class="agent-picker__totals" data-testid="session-totals" title="Tokens and time of this session's finished turns">
                {move || totals.with(totals_text)}
            </span>
            <super::spend::SessionSpend
                session_id=context.session_id.get_value()
                finished_turns=Memo::new(move |_| totals.with(|totals| totals.turns))
            />
        </div>
    }
}
