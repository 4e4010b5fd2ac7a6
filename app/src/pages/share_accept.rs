//! `/share/{token}`: accepts a session share link for the signed-in user, then opens
//! the session. (A visitor who is not signed in comes back here after signing in.)

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::api;
use crate::store::session_href;

#[component]
pub fn ShareAcceptPage() -> impl IntoView {
    let params = use_params_map();
    let token = params.with_untracked(|params| params.get("token").unwrap_or_default());
    let navigate = use_navigate();
    let error = RwSignal::new(None::<String>);
    spawn_local(async move {
        match api::account::accept_share(&token).await {
            Ok(accepted) => navigate(
                &session_href(&accepted.session_id),
                NavigateOptions {
                    replace: true,
                    ..Default::default()
                },
            ),
            Err(failure) => error.set(Some(match failure.status {
                404 | 410 => {
                    "This share link is no longer valid: it expired, was used up or was revoked."
                        .to_owned()
                }
                _ => failure.to_string(),
            })),
        }
    });
    view! {
        <section class="empty-state" data-testid="share-accept">
            <div class="empty-state__card">
                {move || match error.get() {
                    None => view! { <h1>"Opening the shared session…"</h1> }.into_any(),
                    Some(error) => view! {
                        <h1>"Cannot open this session"</h1>
                        <p data-testid="share-accept-error">{error}</p>
                    }
                    .into_any(),
                }}
            </div>
        </section>
    }
}
