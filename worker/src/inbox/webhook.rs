//! The team's webhook (`teams.webhook_*`, migration 0010): the URL an admin sets,
//! the rule a URL must pass, and the posts it receives.
//!
//! Each notice is posted once, as Slack's incoming-webhook message
//! (`nightshift_session::notices::webhook_payload`), after the event that made it
//! was answered (`waitUntil`), under [`POST_TIMEOUT`], without following redirects
//! (a redirect could lead anywhere the URL rule refuses). A failure is logged and
//! counted with its reason, never retried. The URL is read by admins only.
//!
//! The URL rule ([`check_url`]) is plain: `https` to a host that is not internal
//! (loopback, private, link-local, local-only names) nor the platform's own; plain
//! `http` only to `localhost` or `127.0.0.1`, and only on a development deployment
//! (`DEV_AUTH=true`, which the deploy scripts refuse).

use std::time::Duration;

use nightshift_protocol::ErrorCode;
use nightshift_protocol::inbox::{
    MAX_WEBHOOK_URL_BYTES, WebhookPayload, WebhookSettings, WebhookTestResult,
};
use nightshift_session::notices::{Notice, webhook_payload, webhook_test_payload};
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{AbortController, Env, Fetch, Headers, Method, Request, RequestInit, RequestRedirect};

use super::SessionFacts;
use crate::api_error::{ApiError, ApiResult};
use crate::auth::TEAM_ID;
use crate::auth::d1::{self, Arg};
use crate::timeout::with_timeout;
use crate::{clock, config, hosts};

/// How long a receiver has to answer a post.
pub const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of a failure's reason is kept for the admin page.
const MAX_ERROR_CHARS: usize = 300;

/// Why a webhook URL is refused (`webhook_url_not_allowed`).
pub fn check_url(raw: &str, dev: bool, own_hosts: &[String]) -> Result<worker::Url, &'static str> {
    if raw.len() > MAX_WEBHOOK_URL_BYTES {
        return Err("the webhook URL is longer than 2048 bytes");
    }
    let url = worker::Url::parse(raw).map_err(|_| "the webhook URL is not a URL")?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the webhook URL may not carry a user name or password");
    }
    let Some(host) = url.host_str() else {
        return Err("the webhook URL has no host");
    };
    match url.scheme() {
        "https" => {
            if hosts::llm_host_allowed(host, own_hosts, &[]) {
                Ok(url)
            } else {
                Err("the webhook URL points at an internal or platform address")
            }
        }
        "http" if dev && matches!(host, "localhost" | "127.0.0.1") => Ok(url),
        "http" => Err(
            "the webhook URL must be https (plain http only to localhost or 127.0.0.1 on a development deployment)",
        ),
        _ => Err("the webhook URL must be https"),
    }
}

/// Whether this deployment is a development one (plain-http loopback webhooks).
fn is_dev(env: &Env) -> bool {
    config::var(env, "DEV_AUTH").as_deref() == Some("true")
}

#[derive(Deserialize)]
struct Row {
    webhook_url: Option<String>,
    webhook_deliveries: Option<i64>,
    webhook_failures: Option<i64>,
    webhook_last_error: Option<String>,
    webhook_last_failure_at: Option<i64>,
}

/// The team's webhook and its counters (admins only).
pub async fn settings(env: &Env) -> ApiResult<WebhookSettings> {
    let row: Option<Row> = d1::first(
        env,
        "SELECT webhook_url, webhook_deliveries, webhook_failures, webhook_last_error, \
         webhook_last_failure_at FROM teams WHERE id = ?",
        &[Arg::Text(TEAM_ID)],
    )
    .await?;
    let Some(row) = row else {
        return Ok(WebhookSettings::default());
    };
    let count = |value: Option<i64>| value.and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
    Ok(WebhookSettings {
        url: row.webhook_url,
        deliveries: count(row.webhook_deliveries),
        failures: count(row.webhook_failures),
        last_error: row.webhook_last_error,
        last_failure_at: row.webhook_last_failure_at,
    })
}

/// Sets (or with `None`/empty, clears) the team's webhook; a new URL starts its
/// counters afresh. 400 `webhook_url_not_allowed` for a URL [`check_url`] refuses.
pub async fn put(env: &Env, url: Option<&str>) -> ApiResult<WebhookSettings> {
    let url = url.map(str::trim).filter(|url| !url.is_empty());
    let checked = match url {
        Some(raw) => Some(
            check_url(raw, is_dev(env), &crate::routes::keys::own_hosts(env))
                .map_err(|reason| ApiError::new(ErrorCode::WebhookUrlNotAllowed, reason))?
                .to_string(),
        ),
        None => None,
    };
    d1::run(
        env,
        "UPDATE teams SET webhook_url = ?, webhook_deliveries = 0, webhook_failures = 0, \
         webhook_last_error = NULL, webhook_last_failure_at = NULL WHERE id = ?",
        &[Arg::OptText(checked.as_deref()), Arg::Text(TEAM_ID)],
    )
    .await?;
    settings(env).await
}

/// Posts `notice` to the team's webhook, if one is set.
pub async fn post_notice(env: &Env, session: &SessionFacts, notice: &Notice) {
    let url = match settings(env).await {
        Ok(WebhookSettings { url: Some(url), .. }) => url,
        Ok(_) => return,
        Err(error) => {
            worker::console_warn!("reading the team's webhook failed: {}", error.message);
            return;
        }
    };
    let session_url = session.session_url.clone().unwrap_or_default();
    let payload = webhook_payload(
        notice.kind,
        &notice.text,
        &session.session_id,
        &session.title,
        &session_url,
    );
    let _ = deliver(env, &url, &payload).await;
}

/// Posts a test message to the team's webhook ("send test" on the admin page).
pub async fn send_test(env: &Env, app_url: &str) -> ApiResult<WebhookTestResult> {
    let Some(url) = settings(env).await?.url else {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "no webhook is set; save a URL first",
        ));
    };
    Ok(deliver(env, &url, &webhook_test_payload(app_url)).await)
}

/// One post, counted as a delivery or a failure against `url` (a counter of a URL
/// replaced meanwhile is left alone).
async fn deliver(env: &Env, url: &str, payload: &WebhookPayload) -> WebhookTestResult {
    let result = match post(url, payload).await {
        Ok(status) if (200..300).contains(&status) => WebhookTestResult {
            delivered: true,
            status: Some(status),
            error: None,
        },
        Ok(status) => WebhookTestResult {
            delivered: false,
            status: Some(status),
            error: Some(format!("the receiver answered HTTP {status}")),
        },
        Err(error) => WebhookTestResult {
            delivered: false,
            status: None,
            error: Some(error.chars().take(MAX_ERROR_CHARS).collect()),
        },
    };
    let counted = match &result.error {
        None => {
            d1::run(
                env,
                "UPDATE teams SET webhook_deliveries = webhook_deliveries + 1 \
                 WHERE id = ? AND webhook_url = ?",
                &[Arg::Text(TEAM_ID), Arg::Text(url)],
            )
            .await
        }
        Some(error) => {
            worker::console_warn!("the team's webhook failed: {error}");
            d1::run(
                env,
                "UPDATE teams SET webhook_failures = webhook_failures + 1, \
                 webhook_last_error = ?, webhook_last_failure_at = ? \
                 WHERE id = ? AND webhook_url = ?",
                &[
                    Arg::Text(error),
                    Arg::Int(clock::now_ms()),
                    Arg::Text(TEAM_ID),
                    Arg::Text(url),
                ],
            )
            .await
        }
    };
    if let Err(error) = counted {
        worker::console_warn!("counting a webhook post failed: {}", error.message);
    }
    result
}

/// POSTs `payload` as JSON; answers the receiver's status.
async fn post(url: &str, payload: &WebhookPayload) -> Result<u16, String> {
    let body = serde_json::to_string(payload).map_err(|error| error.to_string())?;
    let headers = Headers::new();
    headers
        .set("content-type", "application/json")
        .map_err(|error| error.to_string())?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual)
        .with_body(Some(JsValue::from_str(&body)));
    let request = Request::new_with_init(url, &init).map_err(|error| error.to_string())?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let exchange = async {
        let response = Fetch::Request(request)
            .send_with_signal(&signal)
            .await
            .map_err(|error| format!("the receiver could not be reached: {error}"))?;
        Ok::<_, String>(response.status_code())
    };
    match with_timeout(POST_TIMEOUT, exchange).await {
        Ok(result) => result,
        Err(timed_out) => {
            controller.abort();
            Err(format!("the receiver did not answer: {timed_out}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> Vec<String> {
        vec!["ns.example.com".to_owned()]
    }

    #[test]
    fn https_to_a_public_host_passes() {
        let url = check_url("https://hooks.slack.com/services/T0/B0/XYZ", false, &own()).unwrap();
        assert_eq!(url.host_str(), Some("hooks.slack.com"));
    }

    #[test]
    fn internal_platform_and_credentialed_urls_are_refused() {
        for bad in [
            "https://127.0.0.1/hook",
            "https://10.0.0.5/hook",
            "https://169.254.169.254/latest",
            "https://ns.example.com/api",
            "https://user:pass@hooks.example.com/x",
            "ftp://hooks.example.com/x",
            "not a url",
            "javascript:alert(1)",
        ] {
            assert!(check_url(bad, true, &own()).is_err(), "{bad}");
        }
        let long = format!("https://hooks.example.com/{}", "a".repeat(2100));
        assert!(check_url(&long, false, &own()).is_err());
    }

    #[test]
    fn plain_http_only_to_loopback_names_on_a_development_deployment() {
        assert!(check_url("http://127.0.0.1:9999/hook", true, &own()).is_ok());
        assert!(check_url("http://localhost:9999/hook", true, &own()).is_ok());
        assert!(check_url("http://127.0.0.1:9999/hook", false, &own()).is_err());
        assert!(check_url("http://hooks.example.com/hook", true, &own()).is_err());
        assert!(check_url("http://10.0.0.1/hook", true, &own()).is_err());
    }
}
