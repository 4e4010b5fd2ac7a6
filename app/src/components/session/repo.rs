//! The session's repository panel beside the chat: the repository and branch, how
//! far ahead of the base it is, the files changed with their +/-, the diff
//! (`diff`), the pull request card, and the "Push" and "Open pull request" buttons
//! (off for viewers); and the page's "Reconnect GitHub" banner when a credential
//! the session needs was revoked.
//!
//! The panel reads `GET /api/sessions/{id}/repo` once for the repository and again
//! whenever the timeline reports a new state or pull request (the server refreshes
//! the pull request's checks on that read); the timeline's own `repo_updated` and
//! `pull_request_updated` are applied on top ([`RepoPanel::new`]). Paths, branch
//! names and errors come out of the sandbox and are written as text only.

mod diff;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_location;
use nightshift_protocol::repo::RepoView;

use super::SessionContext;
use crate::api;
use crate::markdown::links::safe_href;
use crate::state::repo_panel::{
    RepoPanel, change_letter, checks_summary, connect_href, pull_request_state,
};
use crate::store::SessionsStore;

use diff::DiffPanel;

#[component]
pub fn RepoAside(context: SessionContext) -> impl IntoView {
    let store = expect_context::<SessionsStore>();
    let session_id = context.session_id.get_value();
    // Whether the session has a repository at all: the list says so, and so does
    // any repository event.
    let has_repo = Memo::new({
        let session_id = session_id.clone();
        move |_| {
            store.list.with(|list| {
                list.get(&session_id)
                    .is_some_and(|session| session.repo.is_some())
            }) || context.timeline.with(|t| t.repo().is_some())
        }
    });
    // Re-read when the branch moves or the pull request changes.
    let revision = Memo::new(move |_| {
        context.timeline.with(|t| {
            (
                t.repo().and_then(|s| s.head.clone()),
                t.repo().map(|s| s.pushed),
                t.pull_request().map(|p| (p.number, p.state)),
            )
        })
    });
    let view_resource = LocalResource::new({
        let session_id = session_id.clone();
        move || {
            let wanted = has_repo.get();
            revision.track();
            let session_id = session_id.clone();
            async move {
                if wanted {
                    api::github::session_repo(&session_id).await.ok()
                } else {
                    None
                }
            }
        }
    });
    // The list's badge follows the pull request this page sees.
    Effect::new({
        let session_id = session_id.clone();
        move |_| {
            if let Some(pr) = context.timeline.with(|t| t.pull_request().cloned()) {
                store
                    .list
                    .update(|list| list.set_pull_request(&session_id, &pr));
            }
        }
    });
    let panel = Memo::new(move |_| {
        let view: Option<RepoView> = view_resource.get().flatten();
        context
            .timeline
            .with(|t| RepoPanel::new(view.as_ref(), t.repo(), t.pull_request()))
    });

    view! {
        <Show when=move || has_repo.get()>
            <aside class="repo-panel" data-testid="repo-panel">
                <RepoSummaryView panel=panel/>
                <PullRequestCard panel=panel context=context/>
                <ChangedFiles panel=panel/>
                <DiffPanel session_id=session_id.clone() panel=panel/>
            </aside>
        </Show>
    }
}

#[component]
fn RepoSummaryView(panel: Memo<RepoPanel>) -> impl IntoView {
    view! {
        <header class="repo-panel__header">
            <div class="repo-panel__name" data-testid="repo-name">
                {move || panel.with(|p| p.repo.as_ref().map(|r| r.full_name.clone()))}
            </div>
            <code class="repo-panel__branch" data-testid="repo-branch">
                {move || panel.with(|p| p.branch().map(str::to_owned))}
            </code>
            <div class="repo-panel__status" data-testid="repo-status"
                data-phase=move || panel.with(|p| format!("{:?}", p.phase()).to_lowercase())>
                {move || panel.with(RepoPanel::status_line)}
            </div>
        </header>
    }
}

#[component]
fn PullRequestCard(panel: Memo<RepoPanel>, context: SessionContext) -> impl IntoView {
    let store = expect_context::<SessionsStore>();
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let session_id = context.session_id;
    let run = move |push: bool| {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let id = session_id.get_value();
        let title = store
            .list
            .with_untracked(|list| list.get(&id).map(|s| s.title.clone()))
            .unwrap_or_default();
        let request = panel.with_untracked(|p| p.pull_request_request(&title));
        spawn_local(async move {
            let result = if push {
                api::github::push(&id).await
            } else {
                api::github::pull_request(&id, &request).await.map(drop)
            };
            if let Err(failure) = result {
                error.try_set(Some(failure.to_string()));
            }
            busy.try_set(false);
        });
    };
    let role = move || context.access.role();
    view! {
        <section class="pr-card" data-testid="pr-card">
            {move || panel.with(|p| p.pull_request.clone()).map(|pr| {
                let (checks, checks_kind) = checks_summary(&pr.checks);
                let state = pull_request_state(pr.state);
                view! {
                    <div class="pr-card__head">
                        <span class=format!("pr-state pr-state--{state}") data-testid="pr-state">{state}</span>
                        {match safe_href(&pr.url) {
                            Some(href) => view! {
                                <a class="pr-card__link" href=href.to_owned() target="_blank"
                                    rel="noopener noreferrer" data-testid="pr-link">
                                    {format!("#{}", pr.number)}
                                </a>
                            }.into_any(),
                            None => view! { <span>{format!("#{}", pr.number)}</span> }.into_any(),
                        }}
                        <span class="pr-card__title">{pr.title.clone()}</span>
                    </div>
                    <div class=format!("pr-checks pr-checks--{checks_kind}") data-testid="pr-checks">{checks}</div>
                }
            })}
            <div class="pr-card__actions">
                <button class="button button--small" data-testid="repo-push"
                    disabled=move || busy.get() || !panel.with(|p| p.can_push(role()))
                    on:click=move |_| run(true)>
                    "Push"
                </button>
                <button class="button button--primary button--small" data-testid="repo-open-pr"
                    disabled=move || busy.get() || !panel.with(|p| p.can_open_pull_request(role()))
                    on:click=move |_| run(false)>
                    {move || panel.with(RepoPanel::pull_request_button)}
                </button>
            </div>
            {move || error.get().map(|error| view! {
                <p class="inline-error" data-testid="repo-action-error">{error}</p>
            })}
            {move || panel.with(RepoPanel::push_failure).map(|failure| view! {
                <p class="inline-error" data-testid="repo-push-error">{failure}</p>
            })}
        </section>
    }
}

#[component]
fn ChangedFiles(panel: Memo<RepoPanel>) -> impl IntoView {
    view! {
        <section class="repo-files" data-testid="repo-files">
            <div class="repo-files__head">
                <span>{move || panel.with(RepoPanel::files_line)}</span>
                <span class="diff-count">
                    <span class="diff-count__add">{move || format!("+{}", panel.with(|p| p.totals().0))}</span>
                    " "
                    <span class="diff-count__del">{move || format!("-{}", panel.with(|p| p.totals().1))}</span>
                </span>
            </div>
            <ul class="repo-files__list">
                {move || panel.with(|p| p.files().to_vec()).into_iter().map(|file| view! {
                    <li class="repo-file" data-testid="repo-file" data-path=file.path.clone()>
                        <span class="repo-file__change">{change_letter(file.change)}</span>
                        <span class="repo-file__path" title=file.path.clone()>{file.path.clone()}</span>
                        <span class="diff-count__add">{format!("+{}", file.additions)}</span>
                        <span class="diff-count__del">{format!("-{}", file.deletions)}</span>
                    </li>
                }).collect_view()}
            </ul>
        </section>
    }
}

/// "Reconnect GitHub": a credential the session needs was revoked or expired for
/// good. The button takes whoever presses it through the connect flow and back here
/// (`rel="external"`: a full page load to the Worker's route, which the app's router
/// would otherwise take for one of its own pages).
#[component]
pub fn ReconnectBanner(context: SessionContext) -> impl IntoView {
    let location = use_location();
    view! {
        {move || context.timeline.with(|t| t.github_reconnect().cloned()).map(|reconnect| {
            let href = connect_href(&reconnect.connect_url, &location.pathname.get());
            view! {
                <div class="banner banner--warning" data-testid="github-reconnect" role="alert">
                    <span>{reconnect.message.clone()}</span>
                    {href.map(|href| view! {
                        <a class="button button--small" rel="external" href=href data-testid="github-reconnect-button">
                            "Reconnect GitHub"
                        </a>
                    })}
                </div>
            }
        })}
    }
}
