//! The team's members: change a role, remove a member (their sessions stay, owned by
//! the team).

use leptos::prelude::*;
use nightshift_protocol::auth::TeamRole;

use crate::api;
use crate::auth::Auth;
use crate::pages::{FormError, Panel, form_or_list_error, removal, rows, when};

#[component]
pub fn MembersPanel() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let my_id = auth.me().map(|me| me.user.id).unwrap_or_default();
    let error = RwSignal::new(None::<String>);
    let set_role = Action::new_local(move |(id, role): &(String, TeamRole)| {
        let (id, role) = (id.clone(), *role);
        async move {
            if let Err(failure) = api::account::set_member_role(&id, role).await {
                error.set(Some(failure.to_string()));
            }
        }
    });
    let remove = removal(
        error,
        |id| async move { api::account::remove_member(&id).await },
    );
    // Listed again after every change, refused ones included (the list shows what holds).
    let members = LocalResource::new(move || {
        set_role.version().track();
        remove.version().track();
        api::account::members()
    });
    let change_role = move |id: String, role: String| {
        let Some(role) = TeamRole::parse(&role) else {
            return;
        };
        error.set(None);
        set_role.dispatch_local((id, role));
    };
    let remove_member = move |id: String| {
        error.set(None);
        remove.dispatch_local(id);
    };
    let my_id = StoredValue::new(my_id);

    view! {
        <Panel title="Members" test_id="admin-members">
            <FormError error=form_or_list_error(error, members)/>
            <table class="table" data-testid="member-list">
                <thead><tr><th>"Name"</th><th>"Email"</th><th>"Role"</th><th>"Joined"</th><th></th></tr></thead>
                <tbody>
                    <For each=move || rows(members) key=|member| (member.id.clone(), member.role) let:member>
                        {
                            let is_me = my_id.with_value(|me| *me == member.id);
                            let id = member.id.clone();
                            let remove_id = member.id.clone();
                            let role = member.role;
                            view! {
                                <tr data-testid="member-row" data-email=member.email.clone().unwrap_or_default()>
                                    <td>{member.name.clone()} {is_me.then_some(" (you)")}</td>
                                    <td>{member.email.clone().unwrap_or_default()}</td>
                                    <td>
                                        <select class="input input--short" data-testid="member-role" disabled=is_me
                                            on:change=move |event| change_role(id.clone(), event_target_value(&event))>
                                            <option value="member" selected=role == TeamRole::Member>"Member"</option>
                                            <option value="admin" selected=role == TeamRole::Admin>"Admin"</option>
                                        </select>
                                    </td>
                                    <td>{when(Some(member.joined_at))}</td>
                                    <td class="table__actions">
                                        <button class="button button--small button--danger" data-testid="member-remove"
                                            disabled=is_me on:click=move |_| remove_member(remove_id.clone())>"Remove"</button>
                                    </td>
                                </tr>
                            }
                        }
                    </For>
                </tbody>
            </table>
            <p class="form-note">"A removed member's sessions stay with the team."</p>
        </Panel>
    }
}
