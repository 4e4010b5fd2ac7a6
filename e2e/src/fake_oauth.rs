//! Fake GitHub and Google OAuth providers: one real HTTP server speaking both
//! providers' wire formats, so the Worker's whole redirect-and-callback flow runs for
//! real in tests. It stands in for github.com / api.github.com and accounts.google.com
//! / oauth2.googleapis.com / openidconnect.googleapis.com, which tests cannot reach.
//!
//! - GitHub: `GET /login/oauth/authorize`, `POST /login/oauth/access_token`,
//!   `GET /user`, `GET /user/emails`.
//! - Google: `GET /o/oauth2/v2/auth`, `POST /token`, `GET /v1/userinfo`.
//!
//! The authorize endpoints play the user's consent at once (no page): they redirect
//! back with a code, or with `error=access_denied` when told to deny. The token
//! endpoints check what real providers check: the client id and secret (HTTP Basic
//! or form fields), that the code exists, is unused and was issued for that redirect
//! URI, and the PKCE S256 verifier.
//!
//! Its GitHub REST answers (`/user`, `/user/emails`) are GitHub's own objects
//! ([`crate::fake_github::objects`]) and pass through the same OpenAPI validation
//! layer as the fake GitHub ([`crate::github_openapi::layer`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::fake_github::objects::{self, Account};
use crate::github_openapi::layer::{self, Checker};

pub const CLIENT_ID: &str = "fake-client-id";
pub const CLIENT_SECRET: &str = "fake-client-secret";

/// The person who "signs in" at the fake provider next.
#[derive(Clone, Debug)]
pub struct FakeUser {
    pub id: String,
    pub login: String,
    pub name: String,
    pub email: String,
    pub email_verified: bool,
}

impl FakeUser {
    pub fn verified(id: &str, email: &str, name: &str) -> FakeUser {
        FakeUser {
            id: id.to_string(),
            login: email.split('@').next().unwrap_or(email).to_string(),
            name: name.to_string(),
            email: email.to_string(),
            email_verified: true,
        }
    }
}

#[derive(Default)]
struct Book {
    next_user: Option<FakeUser>,
    deny: bool,
    /// code -> (user, redirect_uri, code_challenge)
    codes: HashMap<String, (FakeUser, String, String)>,
    /// access token -> user
    tokens: HashMap<String, FakeUser>,
    counter: u64,
    /// What the authorize endpoint was asked for (the query), in order.
    authorize_requests: Vec<HashMap<String, String>>,
}

/// A running fake provider. Dropping it stops the server.
pub struct FakeOauth {
    addr: SocketAddr,
    book: Arc<Mutex<Book>>,
    checker: Arc<Checker>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeOauth {
    fn drop(&mut self) {
        self.task.abort();
        self.checker.fail_on_violations("fake OAuth provider");
    }
}

/// The paths of GitHub's REST API this fake serves (the rest is the OAuth web
/// flow and Google, outside GitHub's description).
fn is_github_rest(path: &str) -> bool {
    matches!(path, "/user" | "/user/emails")
}

fn lock(book: &Mutex<Book>) -> std::sync::MutexGuard<'_, Book> {
    book.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FakeOauth {
    pub async fn start() -> anyhow::Result<FakeOauth> {
        let book = Arc::new(Mutex::new(Book::default()));
        let checker = Checker::new(is_github_rest);
        let app = Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(token))
            .route("/user", get(github_user))
            .route("/user/emails", get(github_emails))
            .route("/o/oauth2/v2/auth", get(authorize))
            .route("/token", post(token))
            .route("/v1/userinfo", get(google_userinfo))
            .layer(axum::middleware::from_fn_with_state(
                checker.clone(),
                layer::layer,
            ))
            .with_state(book.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeOauth {
            addr,
            book,
            checker,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The Worker variables that point both providers here.
    pub fn worker_vars(&self) -> Vec<(String, String)> {
        let base = self.url();
        [
            ("GITHUB_CLIENT_ID", CLIENT_ID.to_string()),
            ("GITHUB_CLIENT_SECRET", CLIENT_SECRET.to_string()),
            (
                "GITHUB_AUTHORIZE_URL",
                format!("{base}/login/oauth/authorize"),
            ),
            (
                "GITHUB_TOKEN_URL",
                format!("{base}/login/oauth/access_token"),
            ),
            ("GITHUB_API_URL", base.clone()),
            ("GOOGLE_CLIENT_ID", CLIENT_ID.to_string()),
            ("GOOGLE_CLIENT_SECRET", CLIENT_SECRET.to_string()),
            ("GOOGLE_AUTHORIZE_URL", format!("{base}/o/oauth2/v2/auth")),
            ("GOOGLE_TOKEN_URL", format!("{base}/token")),
            ("GOOGLE_USERINFO_URL", format!("{base}/v1/userinfo")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Who signs in next.
    pub fn sign_in_as(&self, user: FakeUser) {
        let mut book = lock(&self.book);
        book.next_user = Some(user);
        book.deny = false;
    }

    /// The next consent is refused (`error=access_denied`).
    pub fn deny_next(&self) {
        lock(&self.book).deny = true;
    }

    /// The next GitHub REST answer's JSON body is altered before it is validated.
    pub fn corrupt_next_response(&self, change: impl FnOnce(&mut Value) + Send + 'static) {
        self.checker.corrupt_next_response(change);
    }

    /// Takes the GitHub OpenAPI violations recorded so far.
    pub fn take_violations(&self) -> Vec<String> {
        self.checker.take_violations()
    }

    /// The queries the authorize endpoint received.
    pub fn authorize_requests(&self) -> Vec<HashMap<String, String>> {
        lock(&self.book).authorize_requests.clone()
    }
}

fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(url) => url,
        Err(_) => return (StatusCode::BAD_REQUEST, "bad redirect_uri").into_response(),
    };
    for (k, v) in params {
        url.query_pairs_mut().append_pair(k, v);
    }
    Redirect::to(url.as_str()).into_response()
}

async fn authorize(
    State(book): State<Arc<Mutex<Book>>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut book = lock(&book);
    book.authorize_requests.push(query.clone());
    let get = |k: &str| query.get(k).cloned().unwrap_or_default();
    if get("client_id") != CLIENT_ID || get("response_type") != "code" {
        return (StatusCode::BAD_REQUEST, "unknown client").into_response();
    }
    let redirect_uri = get("redirect_uri");
    let state = get("state");
    if book.deny {
        book.deny = false;
        return redirect_with(
            &redirect_uri,
            &[("error", "access_denied"), ("state", &state)],
        );
    }
    if get("code_challenge_method") != "S256" || get("code_challenge").is_empty() {
        return redirect_with(
            &redirect_uri,
            &[("error", "invalid_request"), ("state", &state)],
        );
    }
    let Some(user) = book.next_user.clone() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "no user to sign in").into_response();
    };
    book.counter += 1;
    let code = format!("code-{}-{}", book.counter, uuid::Uuid::new_v4().simple());
    book.codes.insert(
        code.clone(),
        (user, redirect_uri.clone(), get("code_challenge")),
    );
    redirect_with(&redirect_uri, &[("code", &code), ("state", &state)])
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn client_ok(headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    use base64::Engine;
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok());
    let (id, secret) = match basic {
        Some(pair) => {
            let (id, secret) = pair.split_once(':').unwrap_or_default();
            (id.to_string(), secret.to_string())
        }
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    id == CLIENT_ID && secret == CLIENT_SECRET
}

async fn token(
    State(book): State<Arc<Mutex<Book>>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let invalid =
        |error: &str| (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response();
    if !client_ok(&headers, &form) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    if get("grant_type") != "authorization_code" {
        return invalid("unsupported_grant_type");
    }
    let mut book = lock(&book);
    // A code is good once.
    let Some((user, redirect_uri, challenge)) = book.codes.remove(&get("code")) else {
        return invalid("invalid_grant");
    };
    if redirect_uri != get("redirect_uri") {
        return invalid("invalid_grant");
    }
    if base64url(&Sha256::digest(get("code_verifier").as_bytes())) != challenge {
        return invalid("invalid_grant");
    }
    let access_token = format!("fake-token-{}", uuid::Uuid::new_v4().simple());
    book.tokens.insert(access_token.clone(), user);
    Json(json!({
        "access_token": access_token,
        "token_type": "bearer",
        "scope": "repo,read:user,user:email",
        "expires_in": 3600
    }))
    .into_response()
}

fn user_of(book: &Mutex<Book>, headers: &HeaderMap) -> Option<FakeUser> {
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?
        .to_string();
    lock(book).tokens.get(&token).cloned()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(objects::error("Bad credentials")),
    )
        .into_response()
}

fn github_account(user: &FakeUser) -> Account {
    Account {
        id: user.id.parse::<u64>().unwrap_or(1),
        login: user.login.clone(),
        name: user.name.clone(),
        email: user.email.clone(),
        kind: "User",
    }
}

async fn github_user(State(book): State<Arc<Mutex<Book>>>, headers: HeaderMap) -> Response {
    let Some(user) = user_of(&book, &headers) else {
        return unauthorized();
    };
    // The OAuth fake does not know its own URL here; the objects only need absolute URLs.
    Json(objects::private_user(
        "https://api.github.example",
        &github_account(&user),
    ))
    .into_response()
}

async fn github_emails(State(book): State<Arc<Mutex<Book>>>, headers: HeaderMap) -> Response {
    let Some(user) = user_of(&book, &headers) else {
        return unauthorized();
    };
    let list: Vec<Value> = vec![
        json!({"email": format!("{}@users.noreply.example", user.login), "primary": false, "verified": true, "visibility": null}),
        json!({"email": user.email, "primary": true, "verified": user.email_verified, "visibility": "private"}),
    ];
    Json(list).into_response()
}

async fn google_userinfo(State(book): State<Arc<Mutex<Book>>>, headers: HeaderMap) -> Response {
    let Some(user) = user_of(&book, &headers) else {
        return unauthorized();
    };
    Json(json!({
        "sub": user.id,
        "email": user.email,
        "email_verified": user.email_verified,
        "name": user.name,
        "picture": format!("https://avatars.example/{}", user.login),
    }))
    .into_response()
}
