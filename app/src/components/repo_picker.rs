//! The new-session form's repository picker: "Connect GitHub" until the user has
//! connected it, then a searchable list of their repositories
//! (`GET /api/github/repos?q=`), the base branch, and whether the session starts a
//! new branch or continues an existing branch or pull request.
//!
//! The picker's state is a [`RepoPicker`] in the layout's [`NewSessionChoice`]; the
//! "New session" button sends its [`RepoPicker::choice`]. Repository names and
//! descriptions come from GitHub and are written as text.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_location;

use crate::api;
use crate::components::new_session::NewSessionChoice;
use crate::state::repo_panel::connect_href;
use crate::state::repo_picker::{RepoPicker, RepoQuery, StartFrom};

/// Loads one page for the picker; a stale answer is dropped by the picker itself.
fn load(picker: RwSignal<RepoPicker>, request: RepoQuery, error: RwSignal<Option<String>>) {
    spawn_local(async move {
        match api::github::repos(&request.q, request.page).await {
            Ok(list) => {
                picker.try_update(|p| p.on_page(&request, list));
            }
            Err(failure) => {
                picker.try_update(|p| p.on_failed(&request));
                error.try_set(Some(failure.to_string()));
            }
        }
    });
}

#[component]
pub fn RepoPickerView() -> impl IntoView {
    let NewSessionChoice { picker, .. } = expect_context::<NewSessionChoice>();
    let connection = LocalResource::new(api::github::connection);
    let open = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let location = use_location();

    let toggle = move |_| {
        let opening = !open.get_untracked();
        open.set(opening);
        if opening
            && picker.with_untracked(|p| p.results().is_empty() && !p.is_loading())
            && let Some(request) = picker.try_update(|p| p.search(""))
        {
            load(picker, request, error);
        }
    };
    let on_search = move |event| {
        let query = event_target_value(&event);
        error.set(None);
        if let Some(request) = picker.try_update(|p| p.search(&query)) {
            load(picker, request, error);
        }
    };
    let more = move |_| {
        if let Some(request) = picker.try_update(RepoPicker::load_more).flatten() {
            load(picker, request, error);
        }
    };
    let choose = move |full_name: String| {
        if !picker.try_update(|p| p.select(&full_name)).unwrap_or(false) {
            return;
        }
        open.set(false);
        spawn_local(async move {
            if let Ok(list) = api::github::branches(&full_name).await {
                picker.try_update(|p| p.on_branches(&full_name, list));
            }
        });
    };

    let connected = move || {
        connection
            .get()
            .and_then(Result::ok)
            .filter(|c| c.connected)
            .is_some()
    };
    // Without GitHub configured the server answers with an error: no picker at all.
    // "Connect GitHub" is `rel="external"`: a full page load to the Worker's route,
    // which the app's router would otherwise take for one of its own pages.
    let not_connected = move || {
        connection
            .get()
            .and_then(Result::ok)
            .filter(|c| !c.connected)
    };

    view! {
        <div class="repo-picker" data-testid="repo-picker">
            {move || not_connected().and_then(|c| connect_href(&c.connect_url, &location.pathname.get())).map(|href| {
                view! {
                    <a class="button repo-picker__connect" rel="external" href=href data-testid="connect-github">
                        "Connect GitHub"
                    </a>
                }
            })}
            <Show when=connected>
                <button
                    class="button repo-picker__toggle"
                    data-testid="repo-picker-toggle"
                    title="The GitHub repository the new session works on"
                    on:click=toggle
                >
                    {move || picker.with(|p| p.selected().map_or_else(
                        || "No repository".to_owned(),
                        |r| r.full_name.clone(),
                    ))}
                </button>
                <Show when=move || open.get()>
                    <div class="repo-picker__menu" data-testid="repo-picker-menu">
                        <input
                            class="repo-picker__search"
                            type="search"
                            placeholder="Search repositories"
                            data-testid="repo-search"
                            prop:value=move || picker.with(|p| p.query().to_owned())
                            on:input=on_search
                        />
                        <ul class="repo-picker__results">
                            <li>
                                <button class="repo-picker__result" data-testid="repo-none"
                                    on:click=move |_| { picker.update(RepoPicker::clear); open.set(false); }>
                                    "No repository"
                                </button>
                            </li>
                            {move || picker.with(|p| p.results().to_vec()).into_iter().map(|repo| {
                                let name = repo.full_name.clone();
                                view! {
                                    <li>
                                        <button
                                            class="repo-picker__result"
                                            data-testid="repo-result"
                                            data-repo=repo.full_name.clone()
                                            on:click=move |_| choose(name.clone())
                                        >
                                            <span class="repo-picker__name">{repo.full_name.clone()}</span>
                                            {repo.private.then(|| view! { <span class="repo-picker__tag">"private"</span> })}
                                            {(!repo.can_push).then(|| view! { <span class="repo-picker__tag">"read-only"</span> })}
                                        </button>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                        <Show when=move || picker.with(RepoPicker::is_loading)>
                            <p class="repo-picker__note">"Loading…"</p>
                        </Show>
                        <Show when=move || picker.with(|p| p.has_more() && !p.is_loading())>
                            <button class="button button--ghost button--small" data-testid="repo-more" on:click=more>
                                "More repositories"
                            </button>
                        </Show>
                        <Show when=move || picker.with(|p| !p.is_loading() && p.results().is_empty())>
                            <p class="repo-picker__note">"No repositories match."</p>
                        </Show>
                    </div>
                </Show>
                <Show when=move || picker.with(|p| p.selected().is_some())>
                    <RepoStartOptions picker=picker/>
                </Show>
            </Show>
            {move || error.get().map(|error| view! {
                <p class="inline-error" data-testid="repo-picker-error">{error}</p>
            })}
        </div>
    }
}

/// The chosen repository's base branch and where the session's branch comes from.
#[component]
fn RepoStartOptions(picker: RwSignal<RepoPicker>) -> impl IntoView {
    let mode = move || match picker.with(|p| p.start_from().clone()) {
        StartFrom::NewBranch => "new",
        StartFrom::Branch(_) => "branch",
        StartFrom::PullRequest(_) => "pr",
    };
    let typed = move || match picker.with(|p| p.start_from().clone()) {
        StartFrom::NewBranch => String::new(),
        StartFrom::Branch(text) | StartFrom::PullRequest(text) => text,
    };
    let set_mode = move |event| {
        let start = match event_target_value(&event).as_str() {
            "branch" => StartFrom::Branch(String::new()),
            "pr" => StartFrom::PullRequest(String::new()),
            _ => StartFrom::NewBranch,
        };
        picker.update(|p| p.set_start_from(start));
    };
    let set_typed = move |event| {
        let text = event_target_value(&event);
        picker.update(|p| {
            let start = match p.start_from() {
                StartFrom::Branch(_) => StartFrom::Branch(text),
                StartFrom::PullRequest(_) => StartFrom::PullRequest(text),
                StartFrom::NewBranch => StartFrom::NewBranch,
            };
            p.set_start_from(start);
        });
    };
    view! {
        <div class="repo-picker__options">
            <label class="repo-picker__option">
                <span>"Base"</span>
                <select
                    class="agent-picker__select"
                    data-testid="repo-base"
                    prop:value=move || picker.with(|p| p.base_branch().to_owned())
                    on:change=move |event| {
                        let branch = event_target_value(&event);
                        picker.update(|p| p.set_base_branch(&branch));
                    }
                >
                    {move || picker.with(|p| p.branches().to_vec()).into_iter().map(|branch| view! {
                        <option value=branch.clone()>{branch.clone()}</option>
                    }).collect_view()}
                </select>
            </label>
            <select class="agent-picker__select" data-testid="repo-start" prop:value=mode on:change=set_mode>
                <option value="new">"New branch"</option>
                <option value="branch">"Continue a branch"</option>
                <option value="pr">"Continue a pull request"</option>
            </select>
            <Show when=move || mode() != "new">
                <input
                    class="repo-picker__search"
                    data-testid="repo-continue"
                    placeholder=move || if mode() == "pr" { "Pull request number" } else { "Branch name" }
                    prop:value=typed
                    on:input=set_typed
                />
            </Show>
        </div>
    }
}
