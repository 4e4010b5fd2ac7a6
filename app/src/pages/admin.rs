//! `/admin`: team members (role, removal), invite links, the sign-in policy, the
//! caps every member is held to, the team's maximum sleep time, the spend caps and the team's GitHub settings. Only
//! admins get the page; the server refuses everyone else's calls anyway.

mod github;
mod invites;
mod limits;
mod members;
mod policy;
mod sleep;
mod spend;
pub mod usage;
mod webhook;

use leptos::prelude::*;

use crate::auth::Auth;
use github::GithubPanel;
use invites::InvitesPanel;
use limits::LimitsPanel;
use members::MembersPanel;
use policy::PolicyPanel;
use sleep::SleepMaxPanel;
use spend::SpendPanel;
use webhook::WebhookPanel;

/// What a member who is not an admin sees on an admin page, saying why.
#[component]
pub fn AdminsOnly(why: &'static str) -> impl IntoView {
    view! {
        <section class="empty-state" data-testid="admin-forbidden">
            <div class="empty-state__card">
                <h1>"Admins only"</h1>
                <p>{why}</p>
            </div>
        </section>
    }
}

#[component]
pub fn AdminPage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    view! {
        <Show
            when=move || auth.is_admin()
            fallback=|| view! {
                <AdminsOnly why="Only team admins can manage members, invites and sign-in. Ask an admin if you need a change."/>
            }
        >
            <section class="page" data-testid="admin-page">
                <header class="page__header"><h1>"Team"</h1></header>
                <div class="page__body">
                    <MembersPanel/>
                    <InvitesPanel/>
                    <PolicyPanel/>
                    <LimitsPanel/>
                    <SleepMaxPanel/>
                    <SpendPanel/>
                    <GithubPanel/>
                    <WebhookPanel/>
                </div>
            </section>
        </Show>
    }
}
