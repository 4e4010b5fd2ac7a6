//! The browser's Notification API, as the inbox uses it: whether the user allowed
//! notifications, asking them (only from a click, never on page load), and showing
//! one whose click brings the tab forward and runs `on_click`.

use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{Notification, NotificationOptions, NotificationPermission};

/// Whether this browser has the Notification API at all (a page in an insecure
/// context, or an old browser, has not).
pub fn supported() -> bool {
    web_sys::window()
        .and_then(|window| js_sys::Reflect::get(&window, &"Notification".into()).ok())
        .is_some_and(|api| !api.is_undefined())
}

/// What the user decided; `Default` when they were never asked.
pub fn permission() -> Option<NotificationPermission> {
    supported().then(Notification::permission)
}

/// Asks for permission; `then` gets whether it was granted. Call from a click.
pub fn request(then: impl FnOnce(bool) + 'static) {
    if !supported() {
        return then(false);
    }
    match Notification::request_permission() {
        Ok(promise) => leptos::task::spawn_local(async move {
            let answer = wasm_bindgen_futures::JsFuture::from(promise).await;
            then(answer.ok().and_then(|answer| answer.as_string()).as_deref() == Some("granted"));
        }),
        Err(_) => then(false),
    }
}

/// Shows a notification when allowed; a click focuses the tab and runs `on_click`.
pub fn show(title: &str, body: &str, tag: &str, on_click: impl Fn() + 'static) {
    if permission() != Some(NotificationPermission::Granted) {
        return;
    }
    let options = NotificationOptions::new();
    options.set_body(body);
    options.set_tag(tag);
    let Ok(notification) = Notification::new_with_options(title, &options) else {
        return;
    };
    let shown = notification.clone();
    let click = Closure::<dyn FnMut()>::new(move || {
        if let Some(window) = web_sys::window() {
            let _ = window.focus();
        }
        on_click();
        shown.close();
    });
    notification.set_onclick(Some(click.as_ref().unchecked_ref()));
    // The notification owns its handler for as long as the page lives; one closure
    // per shown notification is a few bytes.
    click.forget();
}

/// Whether the tab is hidden (another tab in front, the window minimized).
pub fn tab_hidden() -> bool {
    web_sys::window()
        .and_then(|window| window.document())
        .is_some_and(|document| document.visibility_state() == web_sys::VisibilityState::Hidden)
}

/// Sets the tab's title.
pub fn set_tab_title(title: &str) {
    if let Some(document) = web_sys::window().and_then(|window| window.document()) {
        document.set_title(title);
    }
}
