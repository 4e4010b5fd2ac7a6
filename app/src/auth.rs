//! The signed-in user, shared through Leptos context: loaded from `GET /api/me` when
//! the app starts, and dropped when any API call answers 401 (the cookie expired or
//! was revoked), which sends the user to `/signin`.
//!
//! It also keeps the CSRF token from that answer in [`crate::browser_session`],
//! where [`crate::api`] reads it to send as `X-CSRF-Token` with every change.

use std::cell::Cell;

use leptos::prelude::*;
use leptos::task::spawn_local;

use nightshift_protocol::auth::{Me, TeamRole};

use crate::{api, browser_session};

thread_local! {
    static CURRENT: Cell<Option<Auth>> = const { Cell::new(None) };
}

/// Called (through [`crate::browser_session`]) on any 401: the browser is no longer
/// signed in.
fn signed_out() {
    if let Some(auth) = CURRENT.with(Cell::get) {
        auth.state.try_update(|state| {
            if !matches!(state, AuthState::SignedOut) {
                *state = AuthState::SignedOut;
            }
        });
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthState {
    Loading,
    SignedIn(Box<Me>),
    SignedOut,
    /// `GET /api/me` failed for another reason than 401 (the server is down, say).
    Failed(String),
}

/// Which of the [`AuthState`]s the app is in, without the data: what the layout
/// switches on, so a profile edit does not rebuild the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthPhase {
    Loading,
    SignedIn,
    SignedOut,
    Failed,
}

#[derive(Debug, Clone, Copy)]
pub struct Auth {
    pub state: RwSignal<AuthState>,
}

impl Auth {
    /// Creates the store, provides it as context and loads `GET /api/me`.
    pub fn start() -> Auth {
        let auth = Auth {
            state: RwSignal::new(AuthState::Loading),
        };
        CURRENT.with(|current| current.set(Some(auth)));
        browser_session::on_signed_out(signed_out);
        provide_context(auth);
        auth.reload();
        auth
    }

    pub fn reload(self) {
        spawn_local(async move {
            match api::account::me().await {
                Ok(me) => self.set_me(me),
                Err(error) if error.status == 401 => self.state.set(AuthState::SignedOut),
                Err(error) => self.state.set(AuthState::Failed(error.to_string())),
            }
        });
    }

    /// Stores a fresh `/api/me` answer (also what `PATCH /api/me` answers).
    pub fn set_me(self, me: Me) {
        // Empty when the answer carries none (a bearer-token request); keep ours then.
        if !me.csrf_token.is_empty() {
            browser_session::set_csrf_token(Some(me.csrf_token.clone()));
        }
        self.state.set(AuthState::SignedIn(Box::new(me)));
    }

    pub fn phase(self) -> AuthPhase {
        self.state.with(|state| match state {
            AuthState::Loading => AuthPhase::Loading,
            AuthState::SignedIn(_) => AuthPhase::SignedIn,
            AuthState::SignedOut => AuthPhase::SignedOut,
            AuthState::Failed(_) => AuthPhase::Failed,
        })
    }

    /// The signed-in user (tracked).
    pub fn me(self) -> Option<Me> {
        self.state.with(|state| match state {
            AuthState::SignedIn(me) => Some((**me).clone()),
            _ => None,
        })
    }

    /// Whether the signed-in user is a team admin (tracked).
    pub fn is_admin(self) -> bool {
        self.state.with(
            |state| matches!(state, AuthState::SignedIn(me) if me.user.role == TeamRole::Admin),
        )
    }

    /// Signs out on the server, then opens the sign-in page afresh.
    pub fn sign_out(self) {
        spawn_local(async move {
            if let Err(error) = api::account::logout().await {
                leptos::logging::warn!("sign-out failed: {error}");
            }
            browser_session::set_csrf_token(None);
            go_to("/signin");
        });
    }
}

/// A full page load of `path`: used after the session cookie changed, so every store
/// starts again from the server's view.
pub fn go_to(path: &str) {
    if let Some(window) = web_sys::window()
        && let Err(error) = window.location().assign(path)
    {
        leptos::logging::warn!("could not open {path}: {error:?}");
    }
}
