//! GitHub and Google sign-in: the authorization-code flow with PKCE (S256), driven by
//! the `oauth2` crate, its HTTP requests sent with `worker::Fetch`.
//!
//! `/auth/{provider}/login` creates a random `state` and PKCE verifier, stores them
//! (hashed state) in D1 together with the hash of a fresh browser secret, sets that
//! secret as the short-lived HttpOnly `ns_oauth` cookie, and redirects to the
//! provider. `/auth/{provider}/callback` accepts the answer only with the same
//! `state` and the same browser (cookie), once (the row is deleted), within ten
//! minutes; exchanges the code server-side with the verifier; reads the user's
//! verified email and profile (GitHub: `/user` and `/user/emails`, primary and
//! verified; Google: OpenID userinfo with `email_verified`); and signs them in.
//! Every failure sends the browser to `/signin?error=<code>`.
//!
//! Sign-in asks GitHub only for who the user is (`read:user user:email`).
//! `/auth/github/connect` runs the same flow for a signed-in user to grant repository
//! access (incremental authorization); its callback stores the token
//! ([`super::github_connect`]) instead of signing anyone in.
//!
//! Provider URLs default to the real ones and can be pointed elsewhere
//! (`GITHUB_AUTHORIZE_URL`, `GITHUB_TOKEN_URL`, `GITHUB_API_URL`,
//! `GOOGLE_AUTHORIZE_URL`, `GOOGLE_TOKEN_URL`, `GOOGLE_USERINFO_URL`); the tests point
//! them at fake providers in the harness.

use std::time::Duration;

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use worker::{Env, Fetch, Headers, Method, Request, RequestInit, Response};

use super::d1::{self, Arg};
use super::signin::{self, Identity, Provider};
use crate::access;
use crate::api_error::{ApiError, ApiResult};
use crate::timeout::with_timeout;
use crate::{clock, config};

/// The cookie that binds an authorization in flight to the browser that started it.
pub const OAUTH_COOKIE: &str = "ns_oauth";
/// How long a sign-in may take at the provider.
const FLOW_TTL_SECS: u64 = 600;
/// Each call to a provider answers within this.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Github,
    Google,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Github => "github",
            Kind::Google => "google",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Kind::Github => "GITHUB",
            Kind::Google => "GOOGLE",
        }
    }

    fn var(self, env: &Env, suffix: &str, default: &str) -> String {
        config::var(env, &format!("{}_{suffix}", self.prefix()))
            .unwrap_or_else(|| default.to_owned())
            .trim_end_matches('/')
            .to_owned()
    }

    fn authorize_url(self, env: &Env) -> String {
        match self {
            Kind::Github => self.var(
                env,
                "AUTHORIZE_URL",
                "https://github.com/login/oauth/authorize",
            ),
            Kind::Google => self.var(
                env,
                "AUTHORIZE_URL",
                "https://accounts.google.com/o/oauth2/v2/auth",
            ),
        }
    }

    fn token_url(self, env: &Env) -> String {
        match self {
            Kind::Github => self.var(
                env,
                "TOKEN_URL",
                "https://github.com/login/oauth/access_token",
            ),
            Kind::Google => self.var(env, "TOKEN_URL", "https://oauth2.googleapis.com/token"),
        }
    }

    fn scopes(self) -> &'static [&'static str] {
        match self {
            // Sign-in needs only who the user is; repository access is asked for
            // separately, when they first pick a repository (`connect`).
            Kind::Github => &["read:user", "user:email"],
            Kind::Google => &["openid", "email", "profile"],
        }
    }
}

/// Whether the provider's OAuth app is configured.
pub fn configured(env: &Env, kind: Kind) -> bool {
    credentials(env, kind).is_some()
}

fn credentials(env: &Env, kind: Kind) -> Option<(String, String)> {
    Some((
        config::var(env, &format!("{}_CLIENT_ID", kind.prefix()))?,
        config::var(env, &format!("{}_CLIENT_SECRET", kind.prefix()))?,
    ))
}

/// What a token answer carries beyond the standard fields: GitHub's expiring user
/// tokens say how long their refresh token lives (`refresh_token_expires_in`,
/// seconds), which is stored so a dead refresh token is not tried.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProviderTokenFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_expires_in: Option<i64>,
}

impl ExtraTokenFields for ProviderTokenFields {}

/// A token answer of either provider.
pub type ProviderToken = StandardTokenResponse<ProviderTokenFields, BasicTokenType>;

/// The client before its endpoints are set.
type NewClient = oauth2::Client<
    BasicErrorResponse,
    ProviderToken,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
>;

type Client = oauth2::Client<
    BasicErrorResponse,
    ProviderToken,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

fn client(env: &Env, req: &Request, kind: Kind) -> Result<Client, &'static str> {
    let (id, secret) = credentials(env, kind).ok_or("oauth_failed")?;
    let origin = match config::var(env, "PUBLIC_URL") {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => req
            .url()
            .map_err(|_| "oauth_failed")?
            .origin()
            .ascii_serialization(),
    };
    let redirect = format!("{origin}/auth/{}/callback", kind.name());
    Ok(NewClient::new(ClientId::new(id))
        .set_client_secret(ClientSecret::new(secret))
        .set_auth_uri(AuthUrl::new(kind.authorize_url(env)).map_err(|_| "oauth_failed")?)
        .set_token_uri(TokenUrl::new(kind.token_url(env)).map_err(|_| "oauth_failed")?)
        .set_redirect_uri(RedirectUrl::new(redirect).map_err(|_| "oauth_failed")?))
}

fn query(req: &Request, name: &str) -> Option<String> {
    req.url()
        .ok()?
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

fn redirect_to(location: &str, cookies: &[String]) -> ApiResult<Response> {
    let headers = Headers::new();
    headers.set("location", location)?;
    headers.set("cache-control", "no-store")?;
    for cookie in cookies {
        headers.append("set-cookie", cookie)?;
    }
    Ok(Response::empty()?.with_status(302).with_headers(headers))
}

/// The `provider` of a flow that connects a signed-in user's GitHub account for
/// repository access (rather than signing someone in).
const CONNECT_FLOW: &str = "github_connect";

/// What a flow is for.
enum Flow {
    SignIn {
        invite: Option<String>,
    },
    /// Connecting `user_id`'s GitHub account for repository access.
    Connect {
        user_id: String,
    },
}

/// `GET /auth/{provider}/login?redirect=/path&invite=TOKEN`.
pub async fn login(req: &Request, env: &Env, kind: Kind) -> ApiResult<Response> {
    let invite = query(req, "invite").filter(|invite| !invite.trim().is_empty());
    let redirect = access::safe_redirect(query(req, "redirect").as_deref());
    start(req, env, kind, Flow::SignIn { invite }, &redirect).await
}

/// `GET /auth/github/connect?return_to=/path` (signed in): asks GitHub for
/// repository access. With an OAuth App that is the `repo` scope; a GitHub App's
/// user authorization carries no scopes (the App's permissions and the user's own
/// access decide), so nothing is asked.
pub async fn connect(req: &Request, env: &Env) -> ApiResult<Response> {
    let principal = super::authenticate(req, env).await?;
    let user = principal.user()?;
    let redirect = access::safe_redirect(query(req, "return_to").as_deref());
    let flow = Flow::Connect {
        user_id: user.id.clone(),
    };
    start(req, env, Kind::Github, flow, &redirect).await
}

/// The scopes a connection asks for.
fn connect_scopes(env: &Env) -> &'static [&'static str] {
    if config::var(env, "GITHUB_APP_ID").is_some() {
        &[]
    } else {
        &["repo"]
    }
}

async fn start(
    req: &Request,
    env: &Env,
    kind: Kind,
    flow: Flow,
    redirect: &str,
) -> ApiResult<Response> {
    let client = client(env, req, kind)
        .map_err(|_| ApiError::not_found(format!("{} sign-in is not configured", kind.name())))?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge);
    let (scopes, provider, invite, user_id) = match &flow {
        Flow::SignIn { invite } => (kind.scopes(), kind.name(), invite.as_deref(), None),
        Flow::Connect { user_id } => (
            connect_scopes(env),
            CONNECT_FLOW,
            None,
            Some(user_id.as_str()),
        ),
    };
    for scope in scopes {
        request = request.add_scope(Scope::new((*scope).to_owned()));
    }
    let (url, state) = request.url();
    let browser = super::random_token("", 32)?;
    let now = clock::now_ms();
    // Old, abandoned flows go away as new ones start.
    d1::run(
        env,
        "DELETE FROM oauth_states WHERE expires_at < ?",
        &[Arg::Int(now)],
    )
    .await?;
    d1::run(
        env,
        "INSERT INTO oauth_states (state_hash, browser_hash, provider, pkce_verifier, redirect, \
         invite, user_id, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            Arg::Text(&access::sha256_hex(state.secret())),
            Arg::Text(&access::sha256_hex(&browser)),
            Arg::Text(provider),
            Arg::Text(verifier.secret()),
            Arg::Text(redirect),
            Arg::OptText(invite),
            Arg::OptText(user_id),
            Arg::Int(now + (FLOW_TTL_SECS * 1000) as i64),
        ],
    )
    .await?;
    let cookie = access::set_cookie(
        OAUTH_COOKIE,
        &browser,
        FLOW_TTL_SECS,
        signin::secure_cookies(req),
    );
    redirect_to(url.as_str(), &[cookie])
}

/// `GET /auth/{provider}/callback?code=..&state=..`: never an error page; the browser
/// always goes on, to the page it came from or to `/signin?error=<code>`.
pub async fn callback(req: &Request, env: &Env, kind: Kind) -> Response {
    let clear = access::set_cookie(OAUTH_COOKIE, "", 0, signin::secure_cookies(req));
    let outcome = match finish(req, env, kind).await {
        Ok(Ok((location, Some(session_cookie)))) => {
            redirect_to(&location, &[session_cookie, clear.clone()])
        }
        Ok(Ok((location, None))) => redirect_to(&location, std::slice::from_ref(&clear)),
        Ok(Err(code)) => redirect_to(
            &format!("/signin?error={code}"),
            std::slice::from_ref(&clear),
        ),
        Err(error) => {
            worker::console_error!("{} sign-in failed: {}", kind.name(), error.message);
            redirect_to("/signin?error=oauth_failed", std::slice::from_ref(&clear))
        }
    };
    outcome.unwrap_or_else(ApiError::into_response)
}

#[derive(Deserialize)]
struct StateRow {
    browser_hash: String,
    provider: String,
    pkce_verifier: String,
    redirect: String,
    invite: Option<String>,
    user_id: Option<String>,
    expires_at: i64,
}

/// Answers the redirect and the session cookie (none for a connection, whose user is
/// signed in already), or the refusal code.
async fn finish(
    req: &Request,
    env: &Env,
    kind: Kind,
) -> ApiResult<Result<(String, Option<String>), &'static str>> {
    if let Some(error) = query(req, "error") {
        return Ok(Err(if error == "access_denied" {
            "oauth_denied"
        } else {
            "oauth_failed"
        }));
    }
    let (Some(state), Some(code)) = (query(req, "state"), query(req, "code")) else {
        return Ok(Err("oauth_state_mismatch"));
    };
    let cookie = req
        .headers()
        .get("cookie")
        .ok()
        .flatten()
        .unwrap_or_default();
    let Some(browser) = access::cookie_value(&cookie, OAUTH_COOKIE) else {
        return Ok(Err("oauth_state_mismatch"));
    };
    let state_hash = access::sha256_hex(&state);
    let row: Option<StateRow> = d1::first(
        env,
        "SELECT browser_hash, provider, pkce_verifier, redirect, invite, user_id, expires_at \
         FROM oauth_states WHERE state_hash = ?",
        &[Arg::Text(&state_hash)],
    )
    .await?;
    let Some(row) = row else {
        return Ok(Err("oauth_state_mismatch"));
    };
    // Used once: whoever deletes the row owns the flow; a replay finds nothing.
    let deleted = d1::run(
        env,
        "DELETE FROM oauth_states WHERE state_hash = ?",
        &[Arg::Text(&state_hash)],
    )
    .await?;
    let connecting = kind == Kind::Github && row.provider == CONNECT_FLOW;
    if deleted != 1
        || (row.provider != kind.name() && !connecting)
        || row.expires_at <= clock::now_ms()
        || !access::constant_time_eq(&row.browser_hash, &access::sha256_hex(browser))
    {
        return Ok(Err("oauth_state_mismatch"));
    }
    let Ok(client) = client(env, req, kind) else {
        return Ok(Err("oauth_failed"));
    };
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(row.pkce_verifier))
        .request_async(&fetch_http)
        .await;
    let token = match token {
        Ok(token) => token,
        Err(error) => {
            worker::console_error!("{} token exchange failed: {error}", kind.name());
            return Ok(Err("oauth_failed"));
        }
    };
    if connecting {
        let Some(user_id) = row.user_id else {
            return Ok(Err("oauth_state_mismatch"));
        };
        let redirect = access::safe_redirect(Some(&row.redirect));
        return Ok(super::github_connect::finish(env, &user_id, &token)
            .await?
            .map(|()| (redirect, None)));
    }
    let access_token = token.access_token().secret().clone();
    let identity = match kind {
        Kind::Github => github_identity(env, &access_token).await?,
        Kind::Google => google_identity(env, &access_token).await?,
    };
    let identity = match identity {
        Ok(identity) => identity,
        Err(code) => return Ok(Err(code)),
    };
    let user_id = match signin::sign_in(env, &identity, row.invite.as_deref()).await? {
        Ok(user_id) => user_id,
        Err(code) => return Ok(Err(code)),
    };
    let session_cookie = signin::start_session(env, req, &user_id).await?;
    Ok(Ok((
        access::safe_redirect(Some(&row.redirect)),
        Some(session_cookie),
    )))
}

/// A failed request to a provider (never includes tokens).
#[derive(Debug)]
pub struct FetchError(String);

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FetchError {}

/// `oauth2`'s HTTP client: the request sent with `worker::Fetch`, within a time limit.
async fn fetch_http(request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, FetchError> {
    let failed = |what: &str| FetchError(format!("{what} failed"));
    let headers = Headers::new();
    for (name, value) in request.headers() {
        let value = value.to_str().map_err(|_| failed("a header"))?;
        headers
            .set(name.as_str(), value)
            .map_err(|_| failed("a header"))?;
    }
    headers
        .set("user-agent", "nightshift")
        .map_err(|_| failed("a header"))?;
    let mut init = RequestInit::new();
    init.with_method(Method::from(request.method().as_str().to_owned()))
        .with_headers(headers);
    if !request.body().is_empty() {
        let body = worker::js_sys::Uint8Array::from(request.body().as_slice());
        init.with_body(Some(body.into()));
    }
    let outgoing = Request::new_with_init(&request.uri().to_string(), &init)
        .map_err(|_| failed("building the request"))?;
    let mut response = with_timeout(PROVIDER_TIMEOUT, Fetch::Request(outgoing).send())
        .await
        .map_err(|_| FetchError("the provider did not answer in time".into()))?
        .map_err(|error| FetchError(format!("the provider could not be reached: {error}")))?;
    let mut builder = oauth2::http::Response::builder().status(response.status_code());
    for (name, value) in response.headers().entries() {
        builder = builder.header(name, value);
    }
    let body = response
        .bytes()
        .await
        .map_err(|_| failed("reading the answer"))?;
    builder.body(body).map_err(|_| failed("reading the answer"))
}

/// A JSON `GET` to a provider's API with the user's access token.
pub(super) async fn get_json<T: serde::de::DeserializeOwned>(
    url: &str,
    token: &str,
) -> ApiResult<Option<T>> {
    let headers = Headers::new();
    headers.set("authorization", &format!("Bearer {token}"))?;
    headers.set("accept", "application/json")?;
    headers.set("user-agent", "nightshift")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let request = Request::new_with_init(url, &init)?;
    let mut response = with_timeout(PROVIDER_TIMEOUT, Fetch::Request(request).send())
        .await
        .map_err(|timed_out| ApiError::internal(format!("{url}: {timed_out}")))??;
    if !(200..300).contains(&response.status_code()) {
        worker::console_error!("{url} answered {}", response.status_code());
        return Ok(None);
    }
    Ok(response.json().await.ok())
}

#[derive(Deserialize)]
pub(super) struct GithubUser {
    pub id: u64,
    pub login: String,
    pub name: Option<String>,
    pub avatar_url: Option<String>,
}

#[derive(Deserialize)]
struct GithubEmail {
    email: String,
    primary: bool,
    verified: bool,
}

async fn github_identity(env: &Env, token: &str) -> ApiResult<Result<Identity, &'static str>> {
    let api = Kind::Github.var(env, "API_URL", "https://api.github.com");
    let Some(user) = get_json::<GithubUser>(&format!("{api}/user"), token).await? else {
        return Ok(Err("oauth_failed"));
    };
    let Some(emails) = get_json::<Vec<GithubEmail>>(&format!("{api}/user/emails"), token).await?
    else {
        return Ok(Err("oauth_failed"));
    };
    let Some(email) = emails
        .into_iter()
        .find(|email| email.primary && email.verified && access::valid_email(&email.email))
    else {
        return Ok(Err("email_unverified"));
    };
    Ok(Ok(Identity {
        email: email.email,
        name: user
            .name
            .filter(|name| !name.trim().is_empty())
            .unwrap_or(user.login),
        avatar_url: user.avatar_url,
        provider: Provider::Github(user.id.to_string()),
    }))
}

#[derive(Deserialize)]
struct GoogleUser {
    sub: String,
    email: Option<String>,
    #[serde(default)]
    email_verified: bool,
    name: Option<String>,
    picture: Option<String>,
}

async fn google_identity(env: &Env, token: &str) -> ApiResult<Result<Identity, &'static str>> {
    let url = Kind::Google.var(
        env,
        "USERINFO_URL",
        "https://openidconnect.googleapis.com/v1/userinfo",
    );
    let Some(user) = get_json::<GoogleUser>(&url, token).await? else {
        return Ok(Err("oauth_failed"));
    };
    let Some(email) = user
        .email
        .filter(|email| user.email_verified && access::valid_email(email))
    else {
        return Ok(Err("email_unverified"));
    };
    Ok(Ok(Identity {
        name: user.name.unwrap_or_default(),
        email,
        avatar_url: user.picture,
        provider: Provider::Google(user.sub),
    }))
}
