//! The root component: the signed-in user, the router and the two-column layout
//! (sidebar on the left, the routed page on the right; on a phone-sized screen the
//! sidebar is a drawer, see `components::drawer`).
//!
//! `/signin` and `/invite/{token}` stand alone; every other page needs a signed-in
//! user, and a visitor without one is sent to `/signin?redirect=<the page>`.

use leptos::prelude::*;
use leptos_router::components::{Outlet, ParentRoute, Route, Router, Routes};
use leptos_router::hooks::{use_location, use_navigate};
use leptos_router::{NavigateOptions, path};

use crate::account::signin::signin_url;
use crate::auth::{Auth, AuthPhase, AuthState};
use crate::components::drawer::{Drawer, DrawerBackdrop, MobileBar};
use crate::components::empty_state::{EmptyState, NotFound};
use crate::components::new_session::NewSessionChoice;
use crate::components::session::SessionPage;
use crate::components::sidebar::Sidebar;
use crate::inbox::InboxStore;
use crate::pages::admin::AdminPage;
use crate::pages::admin::usage::AdminUsagePage;
use crate::pages::inbox::{InboxPage, NotificationOffer};
use crate::pages::invite::InvitePage;
use crate::pages::settings::SettingsPage;
use crate::pages::share_accept::ShareAcceptPage;
use crate::pages::signin::SignInPage;
use crate::store::SessionsStore;

#[component]
pub fn App() -> impl IntoView {
    Auth::start();
    view! {
        <Router>
            <Routes fallback=|| view! { <NotFound/> }>
                <Route path=path!("/signin") view=SignInPage/>
                <Route path=path!("/invite/:token") view=InvitePage/>
                <ParentRoute path=path!("") view=SignedIn>
                    <Route path=path!("/") view=EmptyState/>
                    <Route path=path!("/sessions/:id") view=SessionPage/>
                    <Route path=path!("/share/:token") view=ShareAcceptPage/>
                    <Route path=path!("/settings") view=SettingsPage/>
                    <Route path=path!("/admin") view=AdminPage/>
                    <Route path=path!("/admin/usage") view=AdminUsagePage/>
                    <Route path=path!("/inbox") view=InboxPage/>
                    <Route path=path!("/*any") view=NotFound/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// The pages that need a signed-in user: waits for `GET /api/me`, sends a visitor to
/// the sign-in page, and otherwise draws the sidebar and the page.
#[component]
fn SignedIn() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let phase = Memo::new(move |_| auth.phase());
    let location = use_location();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if phase.get() == AuthPhase::SignedOut {
            let here = format!(
                "{}{}",
                location.pathname.get_untracked(),
                location.search.get_untracked()
            );
            let options = NavigateOptions {
                replace: true,
                ..Default::default()
            };
            navigate(&signin_url(&here), options);
        }
    });
    move || match phase.get() {
        AuthPhase::SignedIn => view! { <SignedInLayout/> }.into_any(),
        AuthPhase::Failed => {
            let error = auth.state.with_untracked(|state| match state {
                AuthState::Failed(error) => error.clone(),
                _ => String::new(),
            });
            view! {
                <section class="empty-state" data-testid="auth-failed">
                    <div class="empty-state__card">
                        <h1>"Cannot reach Nightshift"</h1>
                        <p>{error}</p>
                        <button class="button button--primary" on:click=move |_| auth.reload()>
                            "Try again"
                        </button>
                    </div>
                </section>
            }
            .into_any()
        }
        AuthPhase::Loading | AuthPhase::SignedOut => {
            view! { <div class="splash" data-testid="auth-loading">"Loading…"</div> }.into_any()
        }
    }
}

#[component]
fn SignedInLayout() -> impl IntoView {
    // Before the sessions store: it hands the inbox its events.
    InboxStore::provide();
    provide_context(SessionsStore::start());
    NewSessionChoice::provide();
    let drawer = Drawer::provide();
    view! {
        <div class="shell" class:shell--drawer-open=move || drawer.is_open()>
            <Sidebar/>
            <DrawerBackdrop/>
            <main class="main">
                <MobileBar/>
                <NotificationOffer/>
                <Outlet/>
            </main>
        </div>
    }
}
