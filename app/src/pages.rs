//! Whole pages outside the session view: sign-in, invites, share links, settings and
//! the admin page, and the small pieces they share.

pub mod admin;
pub mod invite;
pub mod settings;
pub mod share_accept;
pub mod signin;

use leptos::prelude::*;

use crate::format::relative_time;

/// "in 3 hours" / "5 minutes ago" for a timestamp in ms, or "never".
pub fn when(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => relative_time(ms, js_sys::Date::now() as i64),
        None => "never".to_owned(),
    }
}

/// Copies `text` to the clipboard; answers whether the browser allowed it.
pub fn copy_to_clipboard(text: &str) -> bool {
    // `navigator.clipboard.writeText`, reached without extra web-sys features.
    let Some(window) = web_sys::window() else {
        return false;
    };
    let clipboard = js_sys::Reflect::get(&window, &"navigator".into())
        .and_then(|navigator| js_sys::Reflect::get(&navigator, &"clipboard".into()))
        .ok()
        .filter(|clipboard| !clipboard.is_undefined());
    let Some(clipboard) = clipboard else {
        return false;
    };
    let write = js_sys::Reflect::get(&clipboard, &"writeText".into())
        .ok()
        .and_then(|write| wasm_bindgen::JsCast::dyn_into::<js_sys::Function>(write).ok());
    match write {
        Some(write) => write.call1(&clipboard, &text.into()).is_ok(),
        None => false,
    }
}

/// A secret or link shown once, with a Copy button.
#[component]
pub fn CopyField(
    #[prop(into)] value: String,
    test_id: &'static str,
    #[prop(optional)] note: Option<&'static str>,
) -> impl IntoView {
    let copied = RwSignal::new(false);
    let text = value.clone();
    view! {
        <div class="copy-field">
            <input class="input copy-field__value" readonly data-testid=test_id prop:value=value/>
            <button class="button button--small" type="button" on:click=move |_| {
                copied.set(copy_to_clipboard(&text));
            }>{move || if copied.get() { "Copied" } else { "Copy" }}</button>
            {note.map(|note| view! { <p class="form-note">{note}</p> })}
        </div>
    }
}

/// A page's titled section.
#[component]
pub fn Panel(
    title: &'static str,
    #[prop(optional)] test_id: &'static str,
    children: Children,
) -> impl IntoView {
    view! {
        <section class="panel" data-testid=test_id>
            <h2 class="panel__title">{title}</h2>
            {children()}
        </section>
    }
}

/// The last error of a form or list, when there is one.
#[component]
pub fn FormError(error: RwSignal<Option<String>>) -> impl IntoView {
    move || {
        error
            .get()
            .map(|error| view! { <p class="inline-error" role="alert" data-testid="form-error">{error}</p> })
    }
}
