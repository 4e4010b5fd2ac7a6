//! The left sidebar: the "New session" button and the live list of sessions, each
//! with its repository and pull request when it has one, filtered and ticked for
//! bulk actions (`components::session_list_controls`). On a
//! phone-sized screen it is the drawer (`components::drawer`), with a close button.

use leptos::prelude::*;
use leptos_router::hooks::use_location;
use nightshift_protocol::session_list::ListFilter;

use crate::auth::Auth;
use crate::components::StatusBadge;
use crate::components::drawer::Drawer;
use crate::components::new_session::{NewSessionButton, NewSessionOptions};
use crate::components::session_list_controls::{BulkBar, ListFilters, Selection};
use crate::components::user_menu::UserMenu;
use crate::sse::StreamState;
use crate::state::repo_panel::{pull_request_badge, pull_request_state};
use crate::state::session_list::shows;
use crate::store::{SessionsStore, session_href};

/// A title for sessions that have none yet (they are titled after their first prompt).
pub const UNTITLED: &str = "Untitled session";

#[component]
pub fn Sidebar() -> impl IntoView {
    let store = expect_context::<SessionsStore>();
    let auth = use_context::<Auth>();
    let session_ids = Memo::new(move |_| {
        let admin = auth.is_some_and(|auth| auth.is_admin());
        store.filter.with(|filter| {
            store.list.with(|list| {
                list.sessions()
                    .iter()
                    .filter(|session| shows(filter, admin, session))
                    .map(|session| session.id.clone())
                    .collect::<Vec<_>>()
            })
        })
    });
    let selection = Selection::new();
    // A session that leaves the list (filtered out, deleted) leaves the selection.
    Effect::new(move |_| {
        let shown = session_ids.get();
        selection
            .0
            .update(|ids| ids.retain(|id| shown.contains(id)));
    });
    let offline = move || matches!(store.stream.get(), StreamState::Reconnecting);
    let drawer = expect_context::<Drawer>();
    let on_keydown = move |event: leptos::ev::KeyboardEvent| {
        if event.key() == "Escape" {
            drawer.close();
        }
    };

    view! {
        <aside class="sidebar" data-testid="sidebar" on:keydown=on_keydown>
            <div class="sidebar__brand">
                <span class="brand-mark" aria-hidden="true"></span>
                <span class="brand-name">"Nightshift"</span>
                <span class="live-dot" class:live-dot--offline=offline title=move || {
                    if offline() { "Reconnecting to the server" } else { "Live" }
                }></span>
                <button
                    class="button button--ghost sidebar__close"
                    data-testid="close-drawer"
                    aria-label="Close the sessions menu"
                    on:click=move |_| drawer.close()
                >
                    "✕"
                </button>
            </div>
            <NewSessionButton class="button button--primary sidebar__new" test_id="new-session"/>
            <NewSessionOptions/>
            <div class="sidebar__label">"Sessions"</div>
            <ListFilters/>
            <BulkBar selection=selection/>
            <nav class="session-list" data-testid="session-list">
                <For
                    each=move || session_ids.get()
                    key=|id| id.clone()
                    children=move |id| view! { <SessionRow session_id=id selection=selection/> }
                />
                <Show when=move || store.next_cursor.with(Option::is_some)>
                    <button class="button button--ghost session-list__more" data-testid="more-sessions"
                        on:click=move |_| store.load_more()>
                        "Show older sessions"
                    </button>
                </Show>
                <Show when=move || store.loaded.get() && session_ids.with(Vec::is_empty)>
                    <p class="session-list__empty">{move || {
                        if store.filter.with(|filter| *filter == ListFilter::default()) {
                            "No sessions yet."
                        } else {
                            "No sessions match."
                        }
                    }}</p>
                </Show>
                {move || store.load_error.get().map(|error| view! {
                    <p class="session-list__error">"Could not load sessions: " {error}</p>
                })}
            </nav>
            <UserMenu/>
        </aside>
    }
}

/// One row of the list; reads its session by id so a status or title change redraws
/// only this row.
#[component]
fn SessionRow(session_id: String, selection: Selection) -> impl IntoView {
    let store = expect_context::<SessionsStore>();
    let location = use_location();
    let href = session_href(&session_id);
    let is_active = {
        let href = href.clone();
        move || location.pathname.with(|path| *path == href)
    };
    let row = {
        let session_id = session_id.clone();
        Memo::new(move |_| {
            store.list.with(|list| {
                list.get(&session_id)
                    .map(|session| (session.title.clone(), session.status, session.repo.clone()))
            })
        })
    };
    let title = move || {
        row.with(|row| match row {
            Some((title, _, _)) if !title.trim().is_empty() => title.clone(),
            _ => UNTITLED.to_owned(),
        })
    };
    let status = Signal::derive(move || row.with(|row| row.as_ref().map(|(_, status, _)| *status)));
    // The repository and pull request, when the session has one; GitHub's names,
    // written as text.
    let repo = move || row.with(|row| row.as_ref().and_then(|(_, _, repo)| repo.clone()));
    // Choosing the session already shown changes no page, so it closes the drawer here.
    let drawer = expect_context::<Drawer>();
    let ticked = {
        let session_id = session_id.clone();
        move || selection.0.with(|ids| ids.contains(&session_id))
    };
    let tick = {
        let session_id = session_id.clone();
        move |event: leptos::ev::Event| selection.toggle(&session_id, event_target_checked(&event))
    };

    view! {
        <div class="session-row" data-testid="session-row">
        <input
            type="checkbox"
            class="session-row__select"
            data-testid="session-select"
            aria-label=move || format!("Select {}", title())
            prop:checked=ticked
            on:change=tick
        />
        <a
            class="session-item"
            class:session-item--active=is_active
            href=href
            data-testid="session-item"
            data-session-id=session_id
            on:click=move |_| drawer.close()
        >
            <span class="session-item__text">
                <span class="session-item__title" title=title>{title}</span>
                {move || repo().map(|repo| view! {
                    <span class="session-item__repo" data-testid="session-repo">
                        <span class="session-item__repo-name">{repo.full_name.clone()}</span>
                        {repo.pull_request.as_ref().map(|pr| {
                            let state = pull_request_state(pr.state);
                            view! {
                                <span class=format!("pr-state pr-state--{state}") data-testid="session-pr">
                                    {pull_request_badge(pr)}
                                </span>
                            }
                        })}
                    </span>
                })}
            </span>
            <StatusBadge status=status/>
        </a>
        </div>
    }
}
