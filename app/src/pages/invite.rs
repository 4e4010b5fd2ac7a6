//! `/invite/{token}`: what an invite is, then the usual sign-in choices, which carry
//! the invite token so the server admits the new member.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::signin::SignInCard;

#[component]
pub fn InvitePage() -> impl IntoView {
    let params = use_params_map();
    let token = params.with_untracked(|params| params.get("token").unwrap_or_default());
    view! {
        <div data-testid="invite-page">
            <SignInCard
                title="You are invited to Nightshift"
                intro="A team admin invited you. Sign in to join the team; the invite is used once you are in."
                redirect={"/".to_owned()}
                invite={Some(token)}
                error={None::<String>}
            />
        </div>
    }
}
