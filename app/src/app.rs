//! The root component: the sessions store, the router and the two-column layout
//! (sidebar on the left, the routed page on the right).

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::components::empty_state::{EmptyState, NotFound};
use crate::components::session::SessionPage;
use crate::components::sidebar::Sidebar;
use crate::store::SessionsStore;

#[component]
pub fn App() -> impl IntoView {
    provide_context(SessionsStore::start());
    view! {
        <Router>
            <div class="shell">
                <Sidebar/>
                <main class="main">
                    <Routes fallback=|| view! { <NotFound/> }>
                        <Route path=path!("/") view=EmptyState/>
                        <Route path=path!("/sessions/:id") view=SessionPage/>
                    </Routes>
                </main>
            </div>
        </Router>
    }
}
