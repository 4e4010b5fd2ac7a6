//! What the API client needs from the browser's sign-in: the CSRF token to send
//! with every change, and whom to tell when an answer says the session ended.
//! [`crate::auth`] fills both in; [`crate::api`] reads them, so the two do not import
//! each other.

use std::cell::RefCell;

thread_local! {
    static CSRF_TOKEN: RefCell<Option<String>> = const { RefCell::new(None) };
    static ON_SIGNED_OUT: RefCell<Option<fn()>> = const { RefCell::new(None) };
}

/// The CSRF token of the signed-in browser session, once `GET /api/me` answered.
pub fn csrf_token() -> Option<String> {
    CSRF_TOKEN.with(|token| token.borrow().clone())
}

/// Keeps (or with `None` forgets) the CSRF token.
pub fn set_csrf_token(token: Option<String>) {
    CSRF_TOKEN.with(|csrf| *csrf.borrow_mut() = token);
}

/// Names what to call when the server says the browser is no longer signed in.
pub fn on_signed_out(hook: fn()) {
    ON_SIGNED_OUT.with(|current| *current.borrow_mut() = Some(hook));
}

/// Called by [`crate::api`] on any 401.
pub fn signed_out() {
    if let Some(hook) = ON_SIGNED_OUT.with(|current| *current.borrow()) {
        hook();
    }
}
