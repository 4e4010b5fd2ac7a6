//! Invite links: create (role, expiry, use limit, optionally for one email), list
//! with their use counts, revoke.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use nightshift_protocol::auth::{CreateInviteRequest, InviteInfo};

use crate::account::forms::new_invite;
use crate::api;
use crate::pages::{
    Choice, CopyField, FormError, Panel, TextInput, choices, expiry, form_or_list_error, removal,
    rows,
};

#[component]
pub fn InvitesPanel() -> impl IntoView {
    let error = RwSignal::new(None::<String>);
    let role = RwSignal::new("member".to_owned());
    let hours = RwSignal::new("72".to_owned());
    let uses = RwSignal::new("1".to_owned());
    let email = RwSignal::new(String::new());
    let created = RwSignal::new(None::<String>);
    let create = Action::new_local(move |body: &CreateInviteRequest| {
        let body = body.clone();
        async move {
            match api::account::create_invite(&body).await {
                Ok(invite) => created.set(invite_url(&invite)),
                Err(failure) => error.set(Some(failure.to_string())),
            }
        }
    });
    let revoke = removal(
        error,
        |id| async move { api::account::revoke_invite(&id).await },
    );
    // Listed again whenever an invite was created or revoked.
    let invites = LocalResource::new(move || {
        create.version().track();
        revoke.version().track();
        api::account::invites()
    });

    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        match new_invite(
            &role.get_untracked(),
            &hours.get_untracked(),
            &uses.get_untracked(),
            &email.get_untracked(),
        ) {
            Ok(body) => {
                error.set(None);
                create.dispatch_local(body);
            }
            Err(problem) => error.set(Some(problem)),
        }
    };

    view! {
        <Panel title="Invites" test_id="admin-invites">
            <form class="form form--inline" on:submit=submit>
                <Choice value=role options=choices(&[("member", "Member"), ("admin", "Admin")])
                    test_id="invite-role" class="input--short"/>
                <label class="field field--inline">
                    <span class="field__label">"Expires in (hours)"</span>
                    <TextInput value=hours test_id="invite-hours" class="input--short"/>
                </label>
                <label class="field field--inline">
                    <span class="field__label">"Uses"</span>
                    <TextInput value=uses test_id="invite-uses" class="input--short"/>
                </label>
                <TextInput value=email test_id="invite-email" placeholder="For email (optional)"/>
                <button class="button button--primary" type="submit" data-testid="invite-create"
                    disabled=move || create.pending().get()>"Create invite link"</button>
            </form>
            {move || created.get().map(|url| view! {
                <CopyField value=url test_id="invite-link" note="Send this link to the person you invite."/>
            })}
            <FormError error=form_or_list_error(error, invites)/>
            <table class="table" data-testid="invite-list">
                <thead><tr><th>"Role"</th><th>"For"</th><th>"Uses"</th><th>"Expires"</th><th></th></tr></thead>
                <tbody>
                    <For each=move || rows(invites) key=|invite| (invite.id.clone(), invite.uses) let:invite>
                        <tr data-testid="invite-row">
                            <td>{invite.role.as_str()}</td>
                            <td>{invite.email.clone().unwrap_or_else(|| "anyone with the link".to_owned())}</td>
                            <td>{invite.uses} " / " {invite.max_uses}</td>
                            <td>{expiry(Some(invite.expires_at))}</td>
                            <td class="table__actions">
                                <button class="button button--small button--danger" data-testid="invite-revoke"
                                    on:click={
                                        let id = invite.id.clone();
                                        move |_| {
                                            revoke.dispatch_local(id.clone());
                                        }
                                    }>"Revoke"</button>
                            </td>
                        </tr>
                    </For>
                </tbody>
            </table>
        </Panel>
    }
}

/// The invite's link: the server's `url`, else one made from its token.
fn invite_url(invite: &InviteInfo) -> Option<String> {
    if !invite.url.is_empty() {
        return Some(invite.url.clone());
    }
    let origin = web_sys::window()?.location().origin().ok()?;
    (!invite.token.is_empty()).then(|| format!("{origin}/invite/{}", invite.token))
}
