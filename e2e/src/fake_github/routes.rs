//! The fake GitHub's HTTP routes: parse, decide access from the book, answer with
//! GitHub's objects and errors. The validation layer wraps them all.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::objects::{self, Account, PullView, RepoView};
use super::{
    Area, Book, CLIENT_ID, CLIENT_SECRET, Grant, INSTALLATION_TOKEN_SECS, IssuedToken, Level,
    PullRecord, RepoRecord, Shared, UserTokens, now,
};
use crate::git_server::BareRepo;
use crate::github_openapi::layer;

type Shareds = State<Arc<Shared>>;

/// Paths served here that GitHub's REST description does not cover: the OAuth web
/// flow's token endpoint lives on github.com.
pub(super) const OUTSIDE_REST: &[&str] = &["/login/oauth/access_token", "/login/oauth/authorize"];

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/user", get(user))
        .route("/user/emails", get(emails))
        .route("/user/repos", get(user_repos))
        .route("/repos/{owner}/{repo}", get(repo))
        .route("/repos/{owner}/{repo}/branches", get(branches))
        .route("/repos/{owner}/{repo}/branches/{branch}", get(branch))
        .route(
            "/repos/{owner}/{repo}/pulls",
            get(list_pulls).post(create_pull),
        )
        .route(
            "/repos/{owner}/{repo}/pulls/{number}",
            get(get_pull).patch(update_pull),
        )
        .route(
            "/repos/{owner}/{repo}/commits/{reference}/check-runs",
            get(check_runs),
        )
        .route(
            "/app/installations/{id}/access_tokens",
            post(installation_token),
        )
        .route("/repos/{owner}/{repo}/installation", get(repo_installation))
        .route("/login/oauth/access_token", post(oauth_token))
        .route("/login/oauth/authorize", get(super::web_flow::authorize))
        .route(
            "/applications/{client_id}/token",
            axum::routing::delete(revoke_token),
        )
        .layer(axum::middleware::from_fn_with_state(
            shared.checker.clone(),
            layer::layer,
        ))
        .with_state(shared)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(objects::error(message))).into_response()
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found")
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        .then(|| token.trim().to_string())
}

/// A GitHub error answer, kept small until it becomes a response.
struct Refusal(StatusCode, &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

/// The caller's grant, or GitHub's 401.
fn caller(book: &Book, headers: &HeaderMap) -> Result<IssuedToken, Refusal> {
    let Some(token) = bearer(headers) else {
        return Err(Refusal(StatusCode::UNAUTHORIZED, "Requires authentication"));
    };
    book.live(&token)
        .cloned()
        .ok_or(Refusal(StatusCode::UNAUTHORIZED, "Bad credentials"))
}

/// GitHub's scope headers on an answer to a user token.
fn with_scopes(mut response: Response, grant: &Grant, accepted: &str) -> Response {
    if let Grant::User { scopes, .. } = grant {
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&scopes.join(", ")) {
            headers.insert("x-oauth-scopes", v);
        }
        if let Ok(v) = HeaderValue::from_str(accepted) {
            headers.insert("x-accepted-oauth-scopes", v);
        }
    }
    response
}

fn user_login(grant: &Grant) -> Option<&str> {
    match grant {
        Grant::User { login, .. } => Some(login),
        Grant::Installation { .. } => None,
    }
}

fn not_for_integrations() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "Resource not accessible by integration",
    )
}

fn api(shared: &Shared) -> String {
    shared.api_url.get().cloned().unwrap_or_default()
}

fn bare(shared: &Shared, repo: &RepoRecord) -> BareRepo {
    let root = shared
        .git_root
        .get()
        .map(|(_, root)| root.clone())
        .unwrap_or_default();
    BareRepo(root.join(&repo.owner).join(format!("{}.git", repo.name)))
}

fn clone_url(shared: &Shared, repo: &RepoRecord) -> String {
    let base = shared
        .git_root
        .get()
        .map(|(url, _)| url.clone())
        .unwrap_or_default();
    format!("{base}/{}/{}.git", repo.owner, repo.name)
}

fn view<'a>(
    shared: &Shared,
    book: &'a Book,
    repo: &'a RepoRecord,
    grant: Option<&Grant>,
) -> Option<RepoView<'a>> {
    let permissions = grant.filter(|g| matches!(g, Grant::User { .. })).map(|g| {
        let level = book.level(g, repo, Area::Contents);
        let admin = user_login(g) == Some(repo.owner.as_str());
        (admin, level == Level::Write, level >= Level::Read)
    });
    Some(RepoView {
        id: repo.id,
        owner: book.accounts.get(&repo.owner)?,
        name: &repo.name,
        private: repo.private,
        default_branch: &repo.default_branch,
        clone_url: clone_url(shared, repo),
        permissions,
    })
}

/// The repository and the caller's grant when it has at least `need` on `area`.
fn access(
    book: &Book,
    headers: &HeaderMap,
    owner: &str,
    name: &str,
    area: Area,
    need: Level,
) -> Result<(IssuedToken, RepoRecord), Refusal> {
    let issued = caller(book, headers)?;
    let not_found = Refusal(StatusCode::NOT_FOUND, "Not Found");
    let Some(repo) = book.repos.get(&format!("{owner}/{name}")) else {
        return Err(not_found);
    };
    let level = book.level(&issued.grant, repo, area);
    // What the caller cannot see at all does not exist, as on GitHub.
    if book.level(&issued.grant, repo, Area::Metadata) == Level::None {
        return Err(not_found);
    }
    if level < need {
        let message = match issued.grant {
            Grant::Installation { .. } => "Resource not accessible by integration",
            Grant::User { .. } => "Must have push access to repository",
        };
        return Err(Refusal(StatusCode::FORBIDDEN, message));
    }
    Ok((issued, repo.clone()))
}

async fn user(State(shared): Shareds, headers: HeaderMap) -> Response {
    let book = shared.book();
    let issued = match caller(&book, &headers) {
        Ok(issued) => issued,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(account) = user_login(&issued.grant).and_then(|l| book.accounts.get(l)) else {
        return not_for_integrations();
    };
    let body = Json(objects::private_user(&api(&shared), account)).into_response();
    with_scopes(body, &issued.grant, "")
}

async fn emails(State(shared): Shareds, headers: HeaderMap) -> Response {
    let book = shared.book();
    let issued = match caller(&book, &headers) {
        Ok(issued) => issued,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(account) = user_login(&issued.grant).and_then(|l| book.accounts.get(l)) else {
        return not_for_integrations();
    };
    let Grant::User { scopes, .. } = &issued.grant else {
        return not_for_integrations();
    };
    if !scopes.iter().any(|s| s == "user" || s == "user:email") {
        return with_scopes(not_found(), &issued.grant, "user, user:email");
    }
    let list = json!([
        {"email": account.email, "primary": true, "verified": true, "visibility": "private"},
        {"email": format!("{}+{}@users.noreply.github.com", account.id, account.login),
         "primary": false, "verified": true, "visibility": null},
    ]);
    with_scopes(
        Json(list).into_response(),
        &issued.grant,
        "user, user:email",
    )
}

/// `per_page` (1..=100, default 30) and `page` (from 1).
fn page_of(query: &HashMap<String, String>) -> (usize, usize) {
    let per_page = query
        .get("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30usize)
        .clamp(1, 100);
    let page = query
        .get("page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize)
        .max(1);
    (per_page, page)
}

/// GitHub's `Link` header for page `page` of `total` items.
pub(super) fn link_header(url: &str, per_page: usize, page: usize, total: usize) -> Option<String> {
    let last = total.div_ceil(per_page).max(1);
    let link = |p: usize, rel: &str| format!("<{url}?per_page={per_page}&page={p}>; rel=\"{rel}\"");
    let mut links = Vec::new();
    if page > 1 {
        links.push(link(page - 1, "prev"));
    }
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
    }
    (!links.is_empty()).then(|| links.join(", "))
}

fn paged(items: Vec<Value>, url: &str, query: &HashMap<String, String>) -> Response {
    let (per_page, page) = page_of(query);
    let total = items.len();
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let mut response = Json(slice).into_response();
    if let Some(link) = link_header(url, per_page, page, total)
        && let Ok(value) = HeaderValue::from_str(&link)
    {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}

async fn user_repos(
    State(shared): Shareds,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let book = shared.book();
    let issued = match caller(&book, &headers) {
        Ok(issued) => issued,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(login) = user_login(&issued.grant) else {
        return not_for_integrations();
    };
    let api = api(&shared);
    // Repositories the user owns or collaborates on, by full name (GitHub's default sort).
    let items: Vec<Value> = book
        .repos
        .values()
        .filter(|r| r.owner == login || r.writers.iter().chain(&r.readers).any(|l| l == login))
        .filter(|r| book.level(&issued.grant, r, Area::Metadata) > Level::None)
        .filter_map(|r| view(&shared, &book, r, Some(&issued.grant)))
        .map(|v| objects::repository(&api, &v, false))
        .collect();
    let response = paged(items, &format!("{api}/user/repos"), &query);
    with_scopes(response, &issued.grant, "")
}

async fn repo(
    State(shared): Shareds,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
) -> Response {
    let book = shared.book();
    let (issued, record) = match access(&book, &headers, &owner, &name, Area::Metadata, Level::Read)
    {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(v) = view(&shared, &book, &record, Some(&issued.grant)) else {
        return not_found();
    };
    let body = Json(objects::repository(&api(&shared), &v, true)).into_response();
    with_scopes(body, &issued.grant, "repo")
}

async fn branches(
    State(shared): Shareds,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (issued, record) = {
        let book = shared.book();
        match access(&book, &headers, &owner, &name, Area::Metadata, Level::Read) {
            Ok(found) => found,
            Err(refusal) => return refusal.into_response(),
        }
    };
    let repo_url = format!("{}/repos/{owner}/{name}", api(&shared));
    let Ok(list) = bare(&shared, &record).branches() else {
        return not_found();
    };
    let items = list
        .iter()
        .map(|(branch, sha)| objects::short_branch(&repo_url, branch, sha))
        .collect();
    let response = paged(items, &format!("{repo_url}/branches"), &query);
    with_scopes(response, &issued.grant, "repo")
}

async fn branch(
    State(shared): Shareds,
    headers: HeaderMap,
    Path((owner, name, branch)): Path<(String, String, String)>,
) -> Response {
    let (issued, record) = {
        let book = shared.book();
        match access(&book, &headers, &owner, &name, Area::Metadata, Level::Read) {
            Ok(found) => found,
            Err(refusal) => return refusal.into_response(),
        }
    };
    let repo = bare(&shared, &record);
    let Some(sha) = repo.branch_head(&branch) else {
        return error(StatusCode::NOT_FOUND, "Branch not found");
    };
    let fields = repo.log(&sha, "%H%x00%T%x00%P%x00%an%x00%ae%x00%aI%x00%s");
    let Some(line) = fields.first() else {
        return not_found();
    };
    let f: Vec<&str> = line.split('\0').collect();
    let facts = objects::CommitFacts {
        sha: f.first().unwrap_or(&"").to_string(),
        tree: f.get(1).unwrap_or(&"").to_string(),
        parents: f
            .get(2)
            .unwrap_or(&"")
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        author_name: f.get(3).unwrap_or(&"").to_string(),
        author_email: f.get(4).unwrap_or(&"").to_string(),
        date: f.get(5).unwrap_or(&"").to_string(),
        message: f.get(6).unwrap_or(&"").to_string(),
    };
    let full_name = format!("{owner}/{name}");
    let repo_url = format!("{}/repos/{full_name}", api(&shared));
    let html = format!("https://github.example/{full_name}");
    let body = objects::branch_with_protection(&repo_url, &html, &branch, &facts);
    with_scopes(Json(body).into_response(), &issued.grant, "repo")
}

/// Who a grant acts as: the user, or the App's bot for an installation.
fn actor(book: &Book, grant: &Grant) -> Account {
    match grant {
        Grant::User { login, .. } => book.accounts.get(login).cloned(),
        Grant::Installation { .. } => None,
    }
    .unwrap_or_else(|| Account {
        id: 41_898_282,
        login: "nightshift[bot]".to_string(),
        name: "nightshift[bot]".to_string(),
        email: String::new(),
        kind: "Bot",
    })
}

fn pull_json(
    shared: &Shared,
    book: &Book,
    record: &RepoRecord,
    pr: &PullRecord,
    full: bool,
) -> Option<Value> {
    let api = api(shared);
    let v = view(shared, book, record, None)?;
    let repo = bare(shared, record);
    let head_sha = repo.branch_head(&pr.head).unwrap_or_default();
    let base_sha = repo.branch_head(&pr.base).unwrap_or_default();
    let author = book.accounts.get(&pr.author).cloned().unwrap_or_else(|| {
        actor(
            book,
            &Grant::Installation {
                installation: 0,
                repositories: None,
                permissions: BTreeMap::new(),
            },
        )
    });
    let view = PullView {
        id: pr.id,
        number: pr.number,
        title: &pr.title,
        body: pr.body.as_deref(),
        state: &pr.state,
        draft: pr.draft,
        author: &author,
        created_at: pr.created_at,
        updated_at: pr.updated_at,
        closed_at: pr.closed_at,
        head: objects::pull_end(&api, &v, &pr.head, &head_sha),
        base: objects::pull_end(&api, &v, &pr.base, &base_sha),
    };
    Some(objects::pull_request(
        &api,
        &record.full_name(),
        &view,
        full,
    ))
}

fn validation_failed(field: &str, code: &str, message: Option<&str>) -> Response {
    let mut detail = json!({"resource": "PullRequest", "field": field, "code": code});
    if let Some(message) = message {
        detail = json!({"resource": "PullRequest", "code": "custom", "message": message});
    }
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({
            "message": "Validation Failed",
            "errors": [detail],
            "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
        })),
    )
        .into_response()
}

/// `owner:branch` or `branch` to the branch, for this repository only.
fn head_branch<'a>(head: &'a str, owner: &str) -> Option<&'a str> {
    match head.split_once(':') {
        Some((who, branch)) if who == owner => Some(branch),
        Some(_) => None,
        None => Some(head),
    }
}

async fn create_pull(
    State(shared): Shareds,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let (issued, record) = {
        let book = shared.book();
        match access(
            &book,
            &headers,
            &owner,
            &name,
            Area::PullRequests,
            Level::Write,
        ) {
            Ok(found) => found,
            Err(refusal) => return refusal.into_response(),
        }
    };
    let repo = bare(&shared, &record);
    let title = body["title"].as_str().unwrap_or_default().to_string();
    let base = body["base"].as_str().unwrap_or_default().to_string();
    let Some(head) = body["head"].as_str().and_then(|h| head_branch(h, &owner)) else {
        return validation_failed("head", "invalid", None);
    };
    if title.is_empty() {
        return validation_failed("title", "missing_field", None);
    }
    if repo.branch_head(head).is_none() {
        return validation_failed("head", "invalid", None);
    }
    if repo.branch_head(&base).is_none() {
        return validation_failed("base", "invalid", None);
    }
    let mut book = shared.book();
    let full_name = record.full_name();
    let exists = book
        .pulls
        .iter()
        .any(|p| p.repo == full_name && p.head == head && p.base == base && p.state == "open");
    if exists {
        let message = format!("A pull request already exists for {owner}:{head}.");
        return validation_failed("", "", Some(&message));
    }
    let number = 1 + book.pulls.iter().filter(|p| p.repo == full_name).count() as u64;
    let id = 800_000 + book.next_id();
    let pr = PullRecord {
        id,
        repo: full_name,
        number,
        title,
        body: body["body"].as_str().map(str::to_string),
        head: head.to_string(),
        base,
        draft: body["draft"].as_bool().unwrap_or(false),
        state: "open".to_string(),
        author: actor(&book, &issued.grant).login,
        created_at: now(),
        updated_at: now(),
        closed_at: None,
    };
    book.pulls.push(pr.clone());
    let Some(json) = pull_json(&shared, &book, &record, &pr, true) else {
        return not_found();
    };
    let mut response = (StatusCode::CREATED, Json(json)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{}/repos/{owner}/{name}/pulls/{number}",
        api(&shared)
    )) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    with_scopes(response, &issued.grant, "")
}

async fn get_pull(
    State(shared): Shareds,
    headers: HeaderMap,
    Path((owner, name, number)): Path<(String, String, u64)>,
) -> Response {
    let book = shared.book();
    let (issued, record) = match access(
        &book,
        &headers,
        &owner,
        &name,
        Area::PullRequests,
        Level::Read,
    ) {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let full_name = record.full_name();
    let Some(pr) = book
        .pulls
        .iter()
        .find(|p| p.repo == full_name && p.number == number)
    else {
        return not_found();
    };
    match pull_json(&shared, &book, &record, pr, true) {
        Some(json) => with_scopes(Json(json).into_response(), &issued.grant, ""),
        None => not_found(),
    }
}

async fn update_pull(
    State(shared): Shareds,
    headers: HeaderMap,
    Path((owner, name, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let mut book = shared.book();
    let (issued, record) = match access(
        &book,
        &headers,
        &owner,
        &name,
        Area::PullRequests,
        Level::Write,
    ) {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let full_name = record.full_name();
    let Some(pr) = book
        .pulls
        .iter_mut()
        .find(|p| p.repo == full_name && p.number == number)
    else {
        return not_found();
    };
    if let Some(title) = body["title"].as_str() {
        pr.title = title.to_string();
    }
    if let Some(text) = body["body"].as_str() {
        pr.body = Some(text.to_string());
    }
    if let Some(base) = body["base"].as_str() {
        pr.base = base.to_string();
    }
    match body["state"].as_str() {
        Some("closed") if pr.state == "open" => {
            pr.state = "closed".to_string();
            pr.closed_at = Some(now());
        }
        Some("open") => {
            pr.state = "open".to_string();
            pr.closed_at = None;
        }
        _ => {}
    }
    pr.updated_at = now();
    let pr = pr.clone();
    match pull_json(&shared, &book, &record, &pr, true) {
        Some(json) => with_scopes(Json(json).into_response(), &issued.grant, ""),
        None => not_found(),
    }
}

async fn list_pulls(
    State(shared): Shareds,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let book = shared.book();
    let (issued, record) = match access(
        &book,
        &headers,
        &owner,
        &name,
        Area::PullRequests,
        Level::Read,
    ) {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let full_name = record.full_name();
    let state = query.get("state").map_or("open", String::as_str);
    // `head` is `owner:branch`; GitHub ignores a head of another owner's fork here
    // by matching nothing.
    let head = query.get("head").map(|h| head_branch(h, &owner));
    let items: Vec<Value> = book
        .pulls
        .iter()
        .filter(|p| p.repo == full_name)
        .filter(|p| state == "all" || p.state == state)
        .filter(|p| head.is_none_or(|h| h == Some(p.head.as_str())))
        .filter(|p| query.get("base").is_none_or(|b| b == &p.base))
        .filter_map(|p| pull_json(&shared, &book, &record, p, false))
        .collect();
    let url = format!("{}/repos/{full_name}/pulls", api(&shared));
    with_scopes(paged(items, &url, &query), &issued.grant, "")
}

async fn check_runs(
    State(shared): Shareds,
    headers: HeaderMap,
    Path((owner, name, reference)): Path<(String, String, String)>,
) -> Response {
    let (issued, record) = {
        let book = shared.book();
        match access(&book, &headers, &owner, &name, Area::Checks, Level::Read) {
            Ok(found) => found,
            Err(refusal) => return refusal.into_response(),
        }
    };
    let Some(sha) = bare(&shared, &record).resolve(&reference) else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("No commit found for SHA: {reference}"),
        );
    };
    let book = shared.book();
    let full_name = record.full_name();
    let runs: Vec<Value> = book
        .checks
        .iter()
        .filter(|(repo, run)| repo == &full_name && run.head_sha == sha)
        .map(|(_, run)| objects::check_run(&api(&shared), &full_name, run))
        .collect();
    let body = json!({"total_count": runs.len(), "check_runs": runs});
    with_scopes(Json(body).into_response(), &issued.grant, "repo")
}

async fn installation_token(
    State(shared): Shareds,
    headers: HeaderMap,
    Path(id): Path<u64>,
    body: Option<Json<Value>>,
) -> Response {
    let mut book = shared.book();
    let Some((app_id, key)) = book.app.clone() else {
        return error(StatusCode::UNAUTHORIZED, "Integration not found");
    };
    let Some(jwt) = bearer(&headers) else {
        return error(StatusCode::UNAUTHORIZED, "Requires authentication");
    };
    if let Err(message) = super::app_jwt::verify(&jwt, &key, app_id, now()) {
        return error(StatusCode::UNAUTHORIZED, message);
    }
    let Some(installation) = book.installations.get(&id).cloned() else {
        return not_found();
    };
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let repositories = match body["repositories"].as_array() {
        Some(names) => {
            let mut full = Vec::new();
            for name in names.iter().filter_map(Value::as_str) {
                let full_name = format!("{}/{name}", installation.account);
                if !installation.repositories.contains(&full_name) {
                    return error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "There is at least one repository that does not exist or is not accessible to the parent installation.",
                    );
                }
                full.push(full_name);
            }
            Some(full)
        }
        None => None,
    };
    let mut permissions = installation.permissions.clone();
    if let Some(asked) = body["permissions"].as_object() {
        let rank = |level: Option<&str>| match level {
            Some("write") => 2,
            Some("read") => 1,
            _ => 0,
        };
        permissions = BTreeMap::new();
        for (area, level) in asked {
            let granted = installation.permissions.get(area).map(String::as_str);
            if rank(level.as_str()) > rank(granted) {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "The permissions requested are not granted to this installation.",
                );
            }
            permissions.insert(area.clone(), level.as_str().unwrap_or("read").to_string());
        }
    }
    let token = book.token_id("ghs");
    let expires_at = now() + INSTALLATION_TOKEN_SECS;
    let selection = if repositories.is_some() {
        "selected"
    } else {
        "all"
    };
    book.tokens.insert(
        token.clone(),
        IssuedToken {
            token: token.clone(),
            grant: Grant::Installation {
                installation: id,
                repositories,
                permissions: permissions.clone(),
            },
            expires_at,
            revoked: false,
        },
    );
    (
        StatusCode::CREATED,
        Json(json!({
            "token": token,
            "expires_at": objects::timestamp(expires_at),
            "permissions": permissions,
            "repository_selection": selection,
        })),
    )
        .into_response()
}

/// `GET /repos/{owner}/{repo}/installation` (App JWT): the App's installation that
/// holds the repository, or 404.
async fn repo_installation(
    State(shared): Shareds,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
) -> Response {
    let book = shared.book();
    let Some((app_id, key)) = book.app.clone() else {
        return error(StatusCode::UNAUTHORIZED, "Integration not found");
    };
    let Some(jwt) = bearer(&headers) else {
        return error(StatusCode::UNAUTHORIZED, "Requires authentication");
    };
    if let Err(message) = super::app_jwt::verify(&jwt, &key, app_id, now()) {
        return error(StatusCode::UNAUTHORIZED, message);
    }
    let full_name = format!("{owner}/{name}");
    let Some(installation) = book
        .installations
        .values()
        .find(|i| i.repositories.contains(&full_name))
    else {
        return not_found();
    };
    let Some(account) = book.accounts.get(&installation.account) else {
        return not_found();
    };
    let api = api(&shared);
    let id = installation.id;
    Json(json!({
        "id": id,
        "app_id": app_id,
        "app_slug": "nightshift",
        "target_id": account.id,
        "target_type": account.kind,
        "single_file_name": null,
        "repository_selection": "selected",
        "access_tokens_url": format!("{api}/app/installations/{id}/access_tokens"),
        "html_url": format!("https://github.example/settings/installations/{id}"),
        "repositories_url": format!("{api}/installation/repositories"),
        "events": [],
        "account": objects::simple_user(&api, account),
        "permissions": installation.permissions,
        "created_at": objects::timestamp(0),
        "updated_at": objects::timestamp(0),
        "suspended_by": null,
        "suspended_at": null,
    }))
    .into_response()
}

/// Issues a user-to-server token pair (`ghu_` / `ghr_`).
pub(super) fn issue_user_tokens(
    book: &mut Book,
    login: &str,
    scopes: Vec<String>,
    ttl: u64,
    via_app: bool,
) -> UserTokens {
    let access_token = book.token_id("ghu");
    let refresh_token = book.token_id("ghr");
    let expires_at = now() + ttl;
    book.tokens.insert(
        access_token.clone(),
        IssuedToken {
            token: access_token.clone(),
            grant: Grant::User {
                login: login.to_string(),
                scopes: scopes.clone(),
                via_app,
            },
            expires_at,
            revoked: false,
        },
    );
    book.refresh.insert(
        refresh_token.clone(),
        (
            login.to_string(),
            scopes,
            now() + book.refresh_token_secs,
            via_app,
        ),
    );
    UserTokens {
        access_token,
        refresh_token,
        expires_at,
    }
}

/// GitHub's token endpoint for refreshes. Like GitHub, it answers errors with 200
/// and an `error` field; the refresh token is good once.
async fn oauth_token(
    State(shared): Shareds,
    headers: HeaderMap,
    axum::extract::Form(form): axum::extract::Form<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let oauth_error = |code: &str, description: &str| {
        Json(json!({"error": code, "error_description": description})).into_response()
    };
    if !super::web_flow::client_ok(&headers, &form) {
        return oauth_error(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    }
    if get("grant_type") == "authorization_code" {
        return super::web_flow::exchange(&shared, &form);
    }
    if get("grant_type") != "refresh_token" {
        return oauth_error(
            "unsupported_grant_type",
            "Only authorization_code and refresh_token are served here.",
        );
    }
    let mut book = shared.book();
    book.refresh_requests += 1;
    let Some((login, scopes, expiry, via_app)) = book.refresh.remove(get("refresh_token")) else {
        return oauth_error(
            "bad_refresh_token",
            "The refresh token passed is incorrect or expired.",
        );
    };
    if expiry <= now() {
        return oauth_error(
            "bad_refresh_token",
            "The refresh token passed is incorrect or expired.",
        );
    }
    let ttl = book.user_token_secs;
    let tokens = issue_user_tokens(&mut book, &login, scopes.clone(), ttl, via_app);
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

/// `DELETE /applications/{client_id}/token`: the app revokes a user's token,
/// authenticated with its client id and secret (HTTP Basic).
async fn revoke_token(
    State(shared): Shareds,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    use base64::Engine;
    let expected =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "));
    if client_id != CLIENT_ID || basic != Some(expected.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let mut book = shared.book();
    let token = body["access_token"].as_str().unwrap_or_default();
    match book.tokens.get_mut(token) {
        Some(issued) if matches!(issued.grant, Grant::User { .. }) => {
            issued.revoked = true;
            StatusCode::NO_CONTENT.into_response()
        }
        _ => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "Validation Failed", "errors": [], "documentation_url": "https://docs.github.com/rest"})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_name_the_neighbouring_pages() {
        assert_eq!(link_header("u", 30, 1, 10), None);
        assert_eq!(
            link_header("u", 2, 1, 5).unwrap(),
            "<u?per_page=2&page=2>; rel=\"next\", <u?per_page=2&page=3>; rel=\"last\""
        );
        assert_eq!(
            link_header("u", 2, 3, 5).unwrap(),
            "<u?per_page=2&page=2>; rel=\"prev\", <u?per_page=2&page=1>; rel=\"first\""
        );
    }
}
