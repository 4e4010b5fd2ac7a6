//! GitHub's OAuth web flow on the fake GitHub, so the tokens a user connects with
//! are the fake's own (and work on its API and git server): `GET
//! /login/oauth/authorize` plays the consent of the account a test named
//! ([`super::FakeGithub::consent_as`]) and redirects back with a code;
//! `POST /login/oauth/access_token` with `grant_type=authorization_code` exchanges
//! it the way GitHub does: the client's id and secret (form fields or HTTP Basic),
//! a code used once, for the same redirect URI, with the PKCE S256 verifier. The
//! user-to-server token it issues carries the scopes asked for, expires, and comes
//! with a refresh token. Once a GitHub App is registered on the fake, the client is
//! taken to be the App's: its user flow ignores scopes (as GitHub's does).
//!
//! Both endpoints live on github.com, outside the REST description, so their
//! handlers check them.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{CLIENT_ID, CLIENT_SECRET, Shared};

/// A code waiting to be exchanged.
#[derive(Debug, Clone)]
pub(crate) struct PendingCode {
    login: String,
    scopes: Vec<String>,
    redirect_uri: String,
    challenge: String,
}

/// `GET /login/oauth/authorize`.
pub(super) async fn authorize(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| query.get(k).cloned().unwrap_or_default();
    let mut book = shared.book();
    book.authorize_requests.push(query.clone());
    if get("client_id") != CLIENT_ID {
        return (StatusCode::NOT_FOUND, "unknown client").into_response();
    }
    let redirect_uri = get("redirect_uri");
    let Ok(mut back) = url::Url::parse(&redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "bad redirect_uri").into_response();
    };
    let Some(login) = book.consenting.clone() else {
        back.query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("state", &get("state"));
        return Redirect::to(back.as_str()).into_response();
    };
    let code = book.token_id("code");
    let scopes = get("scope")
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    book.codes.insert(
        code.clone(),
        PendingCode {
            login,
            scopes,
            redirect_uri,
            challenge: get("code_challenge"),
        },
    );
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &get("state"));
    Redirect::to(back.as_str()).into_response()
}

/// The client id and secret, from HTTP Basic or the form.
fn client(headers: &HeaderMap, form: &HashMap<String, String>) -> (String, String) {
    use base64::Engine;
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok());
    match basic.as_deref().and_then(|pair| pair.split_once(':')) {
        Some((id, secret)) => (url_decode(id), url_decode(secret)),
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
    }
}

fn url_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Whether the client presented the fake's id and secret.
pub(super) fn client_ok(headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    let (id, secret) = client(headers, form);
    id == CLIENT_ID && secret == CLIENT_SECRET
}

/// `POST /login/oauth/access_token` with `grant_type=authorization_code`. Like
/// GitHub, errors are answered with 200 and an `error` field.
pub(super) fn exchange(shared: &Shared, form: &HashMap<String, String>) -> Response {
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let oauth_error = |code: &str| Json(json!({"error": code})).into_response();
    let mut book = shared.book();
    let Some(pending) = book.codes.remove(&get("code")) else {
        return oauth_error("bad_verification_code");
    };
    if pending.redirect_uri != get("redirect_uri") {
        return oauth_error("redirect_uri_mismatch");
    }
    use base64::Engine;
    let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(get("code_verifier").as_bytes()));
    if pending.challenge.is_empty() || verifier != pending.challenge {
        return oauth_error("bad_verification_code");
    }
    let ttl = book.user_token_secs;
    // Once an App is registered the client is the App's: its user flow ignores
    // scopes, and the token reaches what the user and the App both reach.
    let via_app = book.app.is_some();
    let scopes = if via_app {
        Vec::new()
    } else {
        pending.scopes.clone()
    };
    let tokens =
        super::routes::issue_user_tokens(&mut book, &pending.login, scopes.clone(), ttl, via_app);
    Json(json!({
        "access_token": tokens.access_token,
        "expires_in": ttl,
        "refresh_token": tokens.refresh_token,
        "refresh_token_expires_in": book.refresh_token_secs,
        "scope": scopes.join(","),
        "token_type": "bearer",
    }))
    .into_response()
}
