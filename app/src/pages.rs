//! Whole pages outside the session view: sign-in, invites, share links, settings,
//! the inbox and the admin page, and the small pieces they share.

pub mod admin;
pub mod inbox;
pub mod invite;
pub mod settings;
pub mod share_accept;
pub mod signin;

use leptos::prelude::*;

use crate::api::ApiError;
use crate::format::relative_time;

/// "in 3 hours" / "5 minutes ago" for a timestamp in ms, or "never".
pub fn when(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => relative_time(ms, js_sys::Date::now() as i64),
        None => "never".to_owned(),
    }
}

/// "in 3d" / "expired 5m ago" / "never" for an expiry in ms.
pub fn expiry(ms: Option<i64>) -> String {
    crate::account::expires(ms, js_sys::Date::now() as i64)
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

/// A text box bound to `value`. Every form uses this one component, so the browser
/// bundle holds its code once instead of once per field.
#[component]
pub fn TextInput(
    value: RwSignal<String>,
    test_id: &'static str,
    #[prop(optional)] placeholder: &'static str,
    /// Extra classes besides `input` (`input--short`).
    #[prop(optional)]
    class: &'static str,
    /// The input's `type`; `text` when empty.
    #[prop(optional)]
    kind: &'static str,
) -> impl IntoView {
    let kind = if kind.is_empty() { "text" } else { kind };
    view! {
        <input
            class=format!("input {class}")
            type=kind
            autocomplete="off"
            placeholder=placeholder
            data-testid=test_id
            prop:value=move || value.get()
            on:input=move |event| value.set(event_target_value(&event))
        />
    }
}

/// A drop-down bound to `value`; `options` are (value, label) pairs. The option
/// matching `value` when it is drawn starts selected.
#[component]
pub fn Choice(
    value: RwSignal<String>,
    options: Vec<(String, String)>,
    test_id: &'static str,
    #[prop(optional)] class: &'static str,
) -> impl IntoView {
    let current = value.get_untracked();
    let options = options
        .into_iter()
        .map(|(id, label)| {
            let selected = id == current;
            view! { <option value=id selected=selected>{label}</option> }
        })
        .collect_view();
    view! {
        <select
            class=format!("input {class}")
            data-testid=test_id
            on:change=move |event| value.set(event_target_value(&event))
        >
            {options}
        </select>
    }
}

/// (value, label) pairs for [`Choice`] from a constant table.
pub fn choices(table: &[(&str, &str)]) -> Vec<(String, String)> {
    table
        .iter()
        .map(|(id, label)| ((*id).to_owned(), (*label).to_owned()))
        .collect()
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

/// A list the page loads with `GET` and loads again after each change (a resource
/// that reads the version of the actions that change it).
pub type Listed<T> = LocalResource<Result<Vec<T>, ApiError>>;

/// An action that removes (deletes, revokes) what the id it is given names, with
/// `call`; a refusal goes to `error`. A [`Listed`] that reads its version loads again
/// once it has run.
pub fn removal<F, Fu>(error: RwSignal<Option<String>>, call: F) -> Action<String, ()>
where
    F: Fn(String) -> Fu + 'static,
    Fu: Future<Output = Result<(), ApiError>> + 'static,
{
    Action::new_local(move |id: &String| {
        let removed = call(id.clone());
        async move {
            if let Err(failure) = removed.await {
                error.set(Some(failure.to_string()));
            }
        }
    })
}

/// The rows of `list`: the last ones loaded, kept while it loads again; none until
/// it first loads or when it could not.
pub fn rows<T: Clone + 'static>(list: Listed<T>) -> Vec<T> {
    list.get().and_then(Result::ok).unwrap_or_default()
}

/// A form's own error (a check or a failed change), else why its list did not load.
pub fn form_or_list_error<T: Clone + 'static>(
    error: RwSignal<Option<String>>,
    list: Listed<T>,
) -> Signal<Option<String>> {
    Signal::derive(move || {
        error.get().or_else(|| {
            list.get()
                .and_then(|answer| answer.err())
                .map(|failure| failure.to_string())
        })
    })
}

/// The last error of a form or list, when there is one.
#[component]
pub fn FormError(#[prop(into)] error: Signal<Option<String>>) -> impl IntoView {
    move || {
        error
            .get()
            .map(|error| view! { <p class="inline-error" role="alert" data-testid="form-error">{error}</p> })
    }
}
