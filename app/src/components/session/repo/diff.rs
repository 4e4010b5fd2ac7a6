//! The diff view of the repository panel: "Show diff" loads
//! `GET /api/sessions/{id}/diff` into a [`DiffModel`] and draws it per file,
//! collapsible, line by line with old and new line numbers.
//!
//! A line's code is the only `inner_html` here, and it is the highlighter's output,
//! which escapes every byte of the sandbox's text; paths and hunk headers are text
//! nodes.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;
use crate::state::diff_view::{DiffFile, DiffModel};
use crate::state::repo_panel::{RepoPanel, change_letter};

#[component]
pub fn DiffPanel(session_id: String, panel: Memo<RepoPanel>) -> impl IntoView {
    let model = RwSignal::new(None::<DiffModel>);
    let loading = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let session_id = StoredValue::new(session_id);
    let load = move || {
        if loading.get_untracked() {
            return;
        }
        loading.set(true);
        error.set(None);
        let id = session_id.get_value();
        spawn_local(async move {
            match api::github::session_diff(&id).await {
                Ok(view) => {
                    model.try_set(Some(DiffModel::new(view)));
                }
                Err(failure) => {
                    error.try_set(Some(failure.to_string()));
                }
            }
            loading.try_set(false);
        });
    };
    // An open diff follows the branch: a new state reloads it.
    Effect::new(move |previous: Option<Option<String>>| {
        let head = panel.with(|p| {
            p.state
                .as_ref()
                .map(|s| format!("{:?}{}{}", s.head, s.dirty, s.files.len()))
        });
        if previous.is_some_and(|previous| previous != head)
            && model.with_untracked(Option::is_some)
        {
            load();
        }
        head
    });
    let toggle = move |_| {
        if model.with_untracked(Option::is_some) {
            model.set(None);
        } else {
            load();
        }
    };
    view! {
        <section class="diff" data-testid="diff">
            <button class="button button--small diff__toggle" data-testid="diff-toggle"
                disabled=move || panel.with(|p| p.files().is_empty()) on:click=toggle>
                {move || if model.with(Option::is_some) { "Hide diff" } else { "Show diff" }}
            </button>
            <Show when=move || loading.get()>
                <span class="diff__note">"Loading…"</span>
            </Show>
            {move || error.get().map(|error| view! {
                <p class="inline-error" data-testid="diff-error">{error}</p>
            })}
            {move || model.with(|m| m.as_ref().map(|m| (m.files.len(), m.files_omitted))).map(|(count, omitted)| view! {
                <div class="diff__files">
                    {(0..count).map(|index| view! { <FileDiffView model=model index=index/> }).collect_view()}
                    {(omitted > 0).then(|| view! {
                        <p class="diff__note">{format!("{omitted} more files not shown")}</p>
                    })}
                </div>
            })}
        </section>
    }
}

#[component]
fn FileDiffView(model: RwSignal<Option<DiffModel>>, index: usize) -> impl IntoView {
    let file =
        Memo::new(move |_| model.with(|m| m.as_ref().and_then(|m| m.files.get(index).cloned())));
    let toggle = move |_| {
        model.update(|m| {
            if let Some(m) = m {
                m.toggle(index);
            }
        })
    };
    move || {
        file.get().map(|file: DiffFile| {
        let expanded = file.expanded;
        let name = match &file.old_path {
            Some(old) => format!("{old} → {}", file.path),
            None => file.path.clone(),
        };
        view! {
            <div class="diff-file" data-testid="diff-file" data-path=file.path.clone()
                data-expanded=expanded.to_string()>
                <button class="diff-file__head" data-testid="diff-file-toggle" on:click=toggle
                    aria-expanded=expanded.to_string()>
                    <span class="diff-file__chevron" aria-hidden="true">{if expanded { "▾" } else { "▸" }}</span>
                    <span class="repo-file__change">{change_letter(file.change)}</span>
                    <span class="diff-file__path">{name}</span>
                    <span class="diff-count__add">{format!("+{}", file.additions)}</span>
                    <span class="diff-count__del">{format!("-{}", file.deletions)}</span>
                </button>
                {expanded.then(|| view! { <FileBody file=file.clone()/> })}
            </div>
        }
    })
    }
}

#[component]
fn FileBody(file: DiffFile) -> impl IntoView {
    if file.binary {
        return view! { <p class="diff__note">"Binary file"</p> }.into_any();
    }
    let truncated = file.truncated;
    view! {
        <table class="diff-table">
            {file.hunks.into_iter().map(|hunk| view! {
                <tbody>
                    <tr class="diff-line diff-line--hunk">
                        <td colspan="3" class="diff-line__hunk">{hunk.header}</td>
                    </tr>
                    {hunk.lines.into_iter().map(|line| view! {
                        <tr class=format!("diff-line diff-line--{}", line.kind.as_str())
                            data-testid="diff-line" data-kind=line.kind.as_str()>
                            <td class="diff-line__number">{line.old_number}</td>
                            <td class="diff-line__number">{line.new_number}</td>
                            <td class="diff-line__code">
                                <span class="diff-line__sign">{line.sign()}</span>
                                <span inner_html=line.html></span>
                            </td>
                        </tr>
                    }).collect_view()}
                </tbody>
            }).collect_view()}
        </table>
        {truncated.then(|| view! { <p class="diff__note">"The rest of this file's diff was cut at the size limit."</p> })}
    }
    .into_any()
}
