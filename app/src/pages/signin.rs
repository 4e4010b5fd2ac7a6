//! `/signin`: a button per OAuth provider the Worker offers, and on a local stack the
//! development sign-in form. Callback failures arrive as `?error=<code>`.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_query_map;

use crate::account::signin::{
    OAUTH_PROVIDERS, check_dev_signin, error_message, login_url, refusal_message, safe_redirect,
};
use crate::api;
use crate::auth::{Auth, AuthPhase, go_to};
use crate::pages::TextInput;
use nightshift_protocol::auth::Providers;

#[component]
pub fn SignInPage() -> impl IntoView {
    let query = use_query_map();
    let redirect =
        Memo::new(move |_| safe_redirect(query.with(|query| query.get("redirect")).as_deref()));
    let error = move || {
        query
            .with(|query| query.get("error"))
            .map(|code| error_message(&code))
    };
    // Someone already signed in (a bookmark, the back button) goes straight on.
    let auth = expect_context::<Auth>();
    Effect::new(move |_| {
        if auth.phase() == AuthPhase::SignedIn {
            go_to(&redirect.get_untracked());
        }
    });
    view! {
        <SignInCard
            title="Sign in to Nightshift"
            intro="Background coding agents for your team."
            redirect=redirect
            invite=None
            error=Signal::derive(error)
        />
    }
}

/// The sign-in choices, shared by `/signin` and `/invite/{token}`.
#[component]
pub fn SignInCard(
    title: &'static str,
    #[prop(into)] intro: Signal<String>,
    #[prop(into)] redirect: Signal<String>,
    invite: Option<String>,
    #[prop(into)] error: Signal<Option<String>>,
) -> impl IntoView {
    let providers = LocalResource::new(api::account::providers);
    let invite = StoredValue::new(invite);

    let buttons = move || {
        providers.get().map(|answer| match answer {
            Ok(providers) => provider_buttons(&providers, redirect, invite).into_any(),
            Err(failure) => view! {
                <p class="inline-error" data-testid="signin-providers-error">
                    "Could not load the sign-in options: " {failure.to_string()}
                </p>
            }
            .into_any(),
        })
    };

    view! {
        <section class="auth-page" data-testid="signin-page">
            <div class="auth-card">
                <div class="auth-card__brand">
                    <span class="brand-mark" aria-hidden="true"></span>
                    <span class="brand-name">"Nightshift"</span>
                </div>
                <h1>{title}</h1>
                <p class="auth-card__intro">{move || intro.get()}</p>
                {move || error.get().map(|error| view! {
                    <div class="banner banner--error" role="alert" data-testid="signin-error">{error}</div>
                })}
                <Suspense fallback=|| view! { <p class="form-note">"Loading…"</p> }>{buttons}</Suspense>
            </div>
        </section>
    }
}

fn provider_buttons(
    providers: &Providers,
    redirect: Signal<String>,
    invite: StoredValue<Option<String>>,
) -> impl IntoView + use<> {
    let offered = OAUTH_PROVIDERS
        .into_iter()
        .filter(|(id, _)| match *id {
            "github" => providers.github,
            "google" => providers.google,
            _ => false,
        })
        .map(|(id, label)| {
            let href = move || login_url(id, &redirect.get(), invite.get_value().as_deref());
            view! {
                <a class="button button--large auth-card__provider" rel="external" href=href
                    data-testid=format!("signin-{id}")>
                    "Continue with " {label}
                </a>
            }
        })
        .collect_view();
    let none = !providers.github && !providers.google && !providers.dev;
    view! {
        <div class="auth-card__providers">{offered}</div>
        {providers.dev.then(|| view! { <DevSignIn redirect=redirect invite=invite/> })}
        {none.then(|| view! {
            <p class="inline-error">"No sign-in method is configured on this server."</p>
        })}
    }
}

/// Development sign-in: a name and an email, no password. The Worker offers it only
/// on a local stack (`DEV_AUTH=true`).
#[component]
fn DevSignIn(redirect: Signal<String>, invite: StoredValue<Option<String>>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let (name, email) = match check_dev_signin(&name.get_untracked(), &email.get_untracked()) {
            Ok(values) => values,
            Err(problem) => return error.set(Some(problem)),
        };
        busy.set(true);
        error.set(None);
        let target = redirect.get_untracked();
        spawn_local(async move {
            let invite = invite.get_value();
            match api::account::dev_login(&name, &email, invite.as_deref()).await {
                Ok(()) => go_to(&target),
                Err(failure) => {
                    error.set(Some(refusal_message(
                        failure.code.as_deref(),
                        &failure.message,
                    )));
                    busy.set(false);
                }
            }
        });
    };
    view! {
        <form class="auth-card__dev" on:submit=submit data-testid="signin-dev">
            <div class="auth-card__divider"><span>"Local development sign-in"</span></div>
            <label class="field">
                <span class="field__label">"Name"</span>
                <TextInput value=name test_id="signin-dev-name"/>
            </label>
            <label class="field">
                <span class="field__label">"Email"</span>
                <TextInput value=email test_id="signin-dev-email" kind="email"/>
            </label>
            <button class="button button--primary" type="submit" data-testid="signin-dev-submit"
                disabled=move || busy.get()>
                {move || if busy.get() { "Signing in…" } else { "Sign in" }}
            </button>
            {move || error.get().map(|error| view! {
                <p class="inline-error" role="alert" data-testid="signin-dev-error">{error}</p>
            })}
            <p class="form-note">"Only on a local stack: anyone who can reach it can sign in as anyone."</p>
        </form>
    }
}
