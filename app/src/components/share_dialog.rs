//! The share dialog: who the session is shared with and as what, adding a teammate
//! with a role, and share links (role, expiry, use limit). The lists are
//! `LocalResource`s that read the versions of the `Action`s that change them, so each
//! change reloads them and shows its pending state.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use nightshift_protocol::auth::{CreateShareLinkRequest, SessionRole};

use crate::account::access::{role_description, role_label};
use crate::account::forms::new_share_link;
use crate::api;
use crate::pages::{Choice, CopyField, FormError, TextInput, expiry, removal};

#[component]
pub fn ShareDialog(
    session_id: String,
    on_close: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let session_id = StoredValue::new(session_id);
    let error = RwSignal::new(None::<String>);
    let new_link = RwSignal::new(None::<String>);

    let share = Action::new_local(move |(user_id, role): &(String, SessionRole)| {
        let (user_id, role) = (user_id.clone(), *role);
        async move {
            if let Err(failure) =
                api::account::share_with(&session_id.get_value(), &user_id, role).await
            {
                error.set(Some(failure.to_string()));
            }
        }
    });
    let unshare = removal(error, move |user_id| async move {
        api::account::unshare(&session_id.get_value(), &user_id).await
    });
    let create_link = Action::new_local(move |body: &CreateShareLinkRequest| {
        let body = body.clone();
        async move {
            match api::account::create_share_link(&session_id.get_value(), &body).await {
                Ok(link) => new_link.set(Some(link.url)),
                Err(failure) => error.set(Some(failure.to_string())),
            }
        }
    });
    let revoke_link = removal(error, move |link_id| async move {
        api::account::revoke_share_link(&session_id.get_value(), &link_id).await
    });
    // Read again whenever a share or a link changed.
    let shares = LocalResource::new(move || {
        share.version().track();
        unshare.version().track();
        create_link.version().track();
        revoke_link.version().track();
        let session_id = session_id.get_value();
        async move { api::account::shares(&session_id).await }
    });
    let members = LocalResource::new(api::account::team_members);
    let current = move || shares.get().and_then(Result::ok).unwrap_or_default();
    // A change's own error, else why a list did not load.
    let shown_error = Signal::derive(move || {
        error
            .get()
            .or_else(|| shares.get().and_then(Result::err).map(|f| f.to_string()))
            .or_else(|| members.get().and_then(Result::err).map(|f| f.to_string()))
    });

    let pick = RwSignal::new(String::new());
    let pick_role = RwSignal::new("viewer".to_owned());
    let submit_share = move |event: SubmitEvent| {
        event.prevent_default();
        let user_id = pick.get_untracked();
        let Some(role) = SessionRole::parse(&pick_role.get_untracked()) else {
            return;
        };
        if user_id.is_empty() {
            return error.set(Some("Pick a teammate.".to_owned()));
        }
        error.set(None);
        share.dispatch_local((user_id, role));
    };

    let link_role = RwSignal::new("viewer".to_owned());
    let link_hours = RwSignal::new("24".to_owned());
    let link_uses = RwSignal::new("5".to_owned());
    let submit_link = move |event: SubmitEvent| {
        event.prevent_default();
        match new_share_link(
            &link_role.get_untracked(),
            &link_hours.get_untracked(),
            &link_uses.get_untracked(),
        ) {
            Ok(body) => {
                error.set(None);
                create_link.dispatch_local(body);
            }
            Err(problem) => error.set(Some(problem)),
        }
    };

    let role_options = || {
        SessionRole::SHAREABLE
            .iter()
            .map(|role| {
                let label = format!("{} ({})", role_label(*role), role_description(*role));
                (role.as_str().to_owned(), label)
            })
            .collect::<Vec<_>>()
    };
    // Redrawn when the teammates arrive; the picked one is kept in `pick`.
    let member_options = move || {
        let mut options = vec![(String::new(), "Pick a teammate…".to_owned())];
        options.extend(
            members
                .get()
                .and_then(Result::ok)
                .unwrap_or_default()
                .into_iter()
                .map(|member| (member.id.clone(), member.label())),
        );
        view! { <Choice value=pick options=options test_id="share-member"/> }
    };

    view! {
        <div class="dialog-backdrop" on:click=move |_| on_close()></div>
        <div class="dialog" role="dialog" aria-label="Share session" data-testid="share-dialog">
            <header class="dialog__header">
                <h2>"Share this session"</h2>
                <button class="button button--ghost button--small" data-testid="share-close"
                    on:click=move |_| on_close()>"Close"</button>
            </header>
            <form class="form form--inline" on:submit=submit_share>
                {member_options}
                <Choice value=pick_role options=role_options() test_id="share-role" class="input--short"/>
                <button class="button button--primary" type="submit" data-testid="share-submit"
                    disabled=move || share.pending().get()>"Share"</button>
            </form>
            <ul class="share-list" data-testid="share-list">
                <For each=move || current().shares key=|share| (share.user_id.clone(), share.role) let:share>
                    <li class="share-list__item" data-testid="share-row" data-user-id=share.user_id.clone()>
                        <span>{if share.name.is_empty() { share.email.clone().unwrap_or_default() } else { share.name.clone() }}</span>
                        <span class="role-pill">{role_label(share.role)}</span>
                        <button class="button button--small button--ghost" data-testid="share-remove" on:click={
                            let user_id = share.user_id.clone();
                            move |_| { unshare.dispatch_local(user_id.clone()); }
                        }>"Remove"</button>
                    </li>
                </For>
            </ul>
            <h3 class="panel__subtitle">"Share links"</h3>
            <form class="form form--inline" on:submit=submit_link>
                <Choice value=link_role options=role_options() test_id="link-role" class="input--short"/>
                <label class="field field--inline">
                    <span class="field__label">"Hours"</span>
                    <TextInput value=link_hours test_id="link-hours" class="input--tiny"/>
                </label>
                <label class="field field--inline">
                    <span class="field__label">"Uses"</span>
                    <TextInput value=link_uses test_id="link-uses" class="input--tiny"/>
                </label>
                <button class="button" type="submit" data-testid="link-create"
                    disabled=move || create_link.pending().get()>"Create link"</button>
            </form>
            {move || new_link.get().map(|url| view! { <CopyField value=url test_id="share-link"/> })}
            <ul class="share-list">
                <For each=move || current().links key=|link| (link.id.clone(), link.uses) let:link>
                    <li class="share-list__item" data-testid="link-row">
                        <span class="role-pill">{link.role.as_str()}</span>
                        <span class="form-note">{link.uses} " / " {link.max_uses} " uses · expires " {expiry(Some(link.expires_at))}</span>
                        <button class="button button--small button--ghost" data-testid="link-revoke" on:click={
                            let id = link.id.clone();
                            move |_| { revoke_link.dispatch_local(id.clone()); }
                        }>"Revoke"</button>
                    </li>
                </For>
            </ul>
            <FormError error=shown_error/>
        </div>
    }
}
