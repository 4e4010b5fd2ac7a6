//! Above and below the sidebar's list: which sessions it shows (a scope switch, a
//! search box and a "show archived" toggle, which become the list's filter), and the
//! bulk bar that archives or deletes the sessions ticked in it.
//!
//! The search waits for a pause in typing ([`SEARCH_DEBOUNCE_MS`]) before it asks the
//! server again. Deleting asks first, naming how many sessions go.

use std::collections::BTreeSet;
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use nightshift_protocol::session_list::{BulkAction, ListFilter, MAX_SEARCH_CHARS};

use crate::state::bulk_actions::{bulk_message, delete_question};
use crate::store::SessionsStore;

/// How long the search box waits after the last key before it filters.
const SEARCH_DEBOUNCE_MS: u64 = 250;

/// The sessions ticked in the list (by id), shared by its rows and the bulk bar.
#[derive(Debug, Clone, Copy)]
pub struct Selection(pub RwSignal<BTreeSet<String>>);

impl Selection {
    pub fn new() -> Selection {
        Selection(RwSignal::new(BTreeSet::new()))
    }

    pub fn toggle(self, id: &str, on: bool) {
        self.0.update(|ids| {
            if on {
                ids.insert(id.to_owned());
            } else {
                ids.remove(id);
            }
        });
    }
}

/// The scopes the switch offers: its value, its label.
const SCOPES: [(&str, &str); 4] = [
    ("", "All"),
    ("mine", "Mine"),
    ("shared", "Shared with me"),
    ("team", "Team"),
];

#[component]
pub fn ListFilters() -> impl IntoView {
    let store = expect_context::<SessionsStore>();
    let scope = RwSignal::new(String::new());
    let search = RwSignal::new(String::new());
    let archived = RwSignal::new(false);
    let apply = move || {
        let scope = scope.get_untracked();
        let archived = if archived.get_untracked() {
            "any"
        } else {
            "false"
        };
        let parsed = ListFilter::parse(
            (!scope.is_empty()).then_some(scope.as_str()),
            Some(&search.get_untracked()),
            Some(archived),
        );
        // The box's length is bounded, so only pathological input is refused here;
        // the list then stays as it was.
        if let Ok(filter) = parsed {
            store.set_filter(filter);
        }
    };
    let pending = StoredValue::new(None::<TimeoutHandle>);
    let on_search = move |event: leptos::ev::Event| {
        search.set(event_target_value(&event));
        if let Some(handle) = pending.get_value() {
            handle.clear();
        }
        let handle = set_timeout_with_handle(apply, Duration::from_millis(SEARCH_DEBOUNCE_MS)).ok();
        pending.set_value(handle);
    };

    view! {
        <div class="list-filters" data-testid="list-filters">
            <div class="list-filters__scopes" role="group" aria-label="Whose sessions">
                {SCOPES.into_iter().map(|(value, label)| view! {
                    <button
                        class="list-filters__scope"
                        class:list-filters__scope--on=move || scope.get() == value
                        data-testid=format!("scope-{}", if value.is_empty() { "all" } else { value })
                        aria-pressed=move || (scope.get() == value).to_string()
                        on:click=move |_| {
                            scope.set(value.to_owned());
                            apply();
                        }
                    >
                        {label}
                    </button>
                }).collect_view()}
            </div>
            <input
                class="input list-filters__search"
                type="search"
                placeholder="Search titles"
                aria-label="Search session titles"
                data-testid="session-search"
                maxlength=MAX_SEARCH_CHARS.to_string()
                prop:value=move || search.get()
                on:input=on_search
            />
            <label class="list-filters__archived">
                <input
                    type="checkbox"
                    data-testid="show-archived"
                    prop:checked=move || archived.get()
                    on:change=move |event| {
                        archived.set(event_target_checked(&event));
                        apply();
                    }
                />
                "Show archived"
            </label>
        </div>
    }
}

#[component]
pub fn BulkBar(selection: Selection) -> impl IntoView {
    let store = expect_context::<SessionsStore>();
    let busy = RwSignal::new(false);
    let message = RwSignal::new(None::<String>);
    let count = move || selection.0.with(BTreeSet::len);
    let any_ticked = move || count() != 0;
    let run = move |action: BulkAction| {
        let ids: Vec<String> = selection.0.get_untracked().into_iter().collect();
        if ids.is_empty() || busy.get_untracked() {
            return;
        }
        if action == BulkAction::Delete {
            let confirmed = web_sys::window()
                .and_then(|window| {
                    window
                        .confirm_with_message(&delete_question(ids.len()))
                        .ok()
                })
                .unwrap_or(false);
            if !confirmed {
                return;
            }
        }
        busy.set(true);
        spawn_local(async move {
            let total = ids.len();
            match store.bulk(action, ids).await {
                Ok(refused) => {
                    message.set(Some(bulk_message(action, total - refused, refused)));
                    selection.0.set(BTreeSet::new());
                }
                Err(error) => message.set(Some(format!("Could not do that: {error}"))),
            }
            busy.set(false);
        });
    };

    view! {
        <Show when=any_ticked>
            <div class="bulk-bar" data-testid="bulk-bar">
                <span class="bulk-bar__count" data-testid="bulk-count">
                    {move || format!("{} selected", count())}
                </span>
                <button class="button button--ghost" data-testid="bulk-archive"
                    disabled=move || busy.get()
                    on:click=move |_| run(BulkAction::Archive)>
                    "Archive"
                </button>
                <button class="button button--danger" data-testid="bulk-delete"
                    disabled=move || busy.get()
                    on:click=move |_| run(BulkAction::Delete)>
                    "Delete"
                </button>
                <button class="button button--ghost" data-testid="bulk-clear"
                    on:click=move |_| selection.0.set(BTreeSet::new())>
                    "Clear"
                </button>
            </div>
        </Show>
        {move || message.get().map(|text| view! {
            <p class="bulk-bar__message" data-testid="bulk-message">{text}</p>
        })}
    }
}
