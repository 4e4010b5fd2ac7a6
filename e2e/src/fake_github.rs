//! A fake GitHub: a real HTTP server speaking GitHub's REST wire format for the
//! endpoints Nightshift uses (the user, their repositories and branches, App
//! installation tokens, pull requests, check runs, the refresh of user-to-server
//! tokens and their revocation, and the OAuth web flow that issues them), with a real git server ([`crate::git_server`])
//! whose repositories are the ones the API describes and whose credentials are
//! the tokens the API issued.
//!
//! It decides access the way GitHub does: a missing token is 401 `Requires
//! authentication`, an unknown, expired or revoked one 401 `Bad credentials`; a
//! repository the token cannot see is 404; a permission it lacks is 403. User tokens
//! carry OAuth scopes (`X-OAuth-Scopes` and `X-Accepted-OAuth-Scopes` on every
//! answer; a private repository needs `repo`); installation tokens carry the App's
//! permissions, narrowed per token to some repositories and lower permissions.
//!
//! Every REST exchange is validated against GitHub's OpenAPI description by a
//! layer of the server itself ([`crate::github_openapi::layer`]); tests read the state (tokens issued,
//! pull requests and their authors) through [`FakeGithub`]'s methods.

mod app_jwt;
pub mod objects;
mod routes;
mod web_flow;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

pub use app_jwt::GithubApp;
use objects::{Account, CheckRun};

use crate::git_server::{GitAccess, GitAuthorizer, GitDecision, GitServer};
use crate::github_openapi::layer::Checker;

/// The OAuth App (or GitHub App) client the fake accepts at its token endpoints.
pub const CLIENT_ID: &str = crate::fake_oauth::CLIENT_ID;
pub const CLIENT_SECRET: &str = crate::fake_oauth::CLIENT_SECRET;
/// How long tokens live unless a test says otherwise (GitHub's figures).
pub const USER_TOKEN_SECS: u64 = 8 * 3600;
pub const REFRESH_TOKEN_SECS: u64 = 184 * 86_400;
pub const INSTALLATION_TOKEN_SECS: u64 = 3600;

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// A user's token (user-to-server or OAuth), with its OAuth scopes. `via_app`:
    /// issued by the GitHub App's user flow, which carries no scopes; such a token
    /// reaches what both the user and the App's installations reach, as on GitHub.
    User {
        login: String,
        scopes: Vec<String>,
        via_app: bool,
    },
    /// An App installation's token, narrowed to some repositories (full names; all
    /// of the installation's when `None`) and permissions (`contents` -> `write`...).
    Installation {
        installation: u64,
        repositories: Option<Vec<String>>,
        permissions: BTreeMap<String, String>,
    },
}

/// A token the fake issued.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub grant: Grant,
    pub expires_at: u64,
    pub revoked: bool,
}

/// A user token and the refresh token that renews it.
#[derive(Debug, Clone)]
pub struct UserTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_at: u64,
}

/// A repository the fake knows.
#[derive(Debug, Clone)]
pub struct RepoRecord {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub private: bool,
    pub default_branch: String,
    /// Logins with push access besides the owner.
    pub writers: Vec<String>,
    /// Logins with read access.
    pub readers: Vec<String>,
}

impl RepoRecord {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

/// An App installation: the repositories it was given and its permissions.
#[derive(Debug, Clone)]
pub struct Installation {
    pub id: u64,
    pub account: String,
    pub repositories: Vec<String>,
    pub permissions: BTreeMap<String, String>,
}

/// A pull request as the fake stores it.
#[derive(Debug, Clone)]
pub struct PullRecord {
    pub id: u64,
    pub repo: String,
    pub number: u64,
    pub title: String,
    pub body: Option<String>,
    pub head: String,
    pub base: String,
    pub draft: bool,
    pub state: String,
    /// The login of the token's owner that created it.
    pub author: String,
    pub created_at: u64,
    pub updated_at: u64,
    pub closed_at: Option<u64>,
}

#[derive(Default)]
struct Book {
    accounts: HashMap<String, Account>,
    repos: BTreeMap<String, RepoRecord>,
    tokens: HashMap<String, IssuedToken>,
    /// refresh token -> (login, scopes, expiry, via the App's user flow)
    refresh: HashMap<String, (String, Vec<String>, u64, bool)>,
    installations: HashMap<u64, Installation>,
    app: Option<(u64, Vec<u8>)>,
    pulls: Vec<PullRecord>,
    checks: Vec<(String, CheckRun)>,
    counter: u64,
    /// The account that consents at the OAuth web flow's authorize endpoint next
    /// (`None`: the user denies).
    consenting: Option<String>,
    /// Codes of the web flow waiting to be exchanged.
    codes: HashMap<String, web_flow::PendingCode>,
    /// What the authorize endpoint was asked, in order.
    authorize_requests: Vec<HashMap<String, String>>,
    /// How long user tokens issued by the web flow and refreshes live.
    user_token_secs: u64,
    /// How long their refresh tokens live.
    refresh_token_secs: u64,
    /// Refresh-token grants asked for, valid or not.
    refresh_requests: usize,
}

/// What the API routes and the git server share.
pub(crate) struct Shared {
    book: Mutex<Book>,
    api_url: OnceLock<String>,
    git_root: OnceLock<(String, PathBuf)>,
    checker: Arc<Checker>,
}

impl Shared {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// How much access a token has to one area of a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    None,
    Read,
    Write,
}

/// The permission areas GitHub Apps have (users' access is one level for all).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Area {
    Metadata,
    Contents,
    PullRequests,
    Checks,
}

impl Area {
    fn permission(self) -> &'static str {
        match self {
            Area::Metadata => "metadata",
            Area::Contents => "contents",
            Area::PullRequests => "pull_requests",
            Area::Checks => "checks",
        }
    }
}

impl Book {
    fn next_id(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn token_id(&mut self, prefix: &str) -> String {
        let n = self.next_id();
        format!("{prefix}_{n:04}{}", uuid::Uuid::new_v4().simple())
    }

    /// A live token (issued, not revoked, not expired).
    fn live(&self, token: &str) -> Option<&IssuedToken> {
        self.tokens
            .get(token)
            .filter(|t| !t.revoked && t.expires_at > now())
    }

    fn level(&self, grant: &Grant, repo: &RepoRecord, area: Area) -> Level {
        match grant {
            Grant::User {
                login,
                scopes,
                via_app,
            } => {
                let has = |s: &str| scopes.iter().any(|x| x == s);
                let base = if &repo.owner == login || repo.writers.contains(login) {
                    Level::Write
                } else if repo.readers.contains(login) || !repo.private {
                    Level::Read
                } else {
                    Level::None
                };
                if *via_app {
                    let app = self
                        .installations
                        .values()
                        .map(|inst| {
                            let grant = Grant::Installation {
                                installation: inst.id,
                                repositories: None,
                                permissions: inst.permissions.clone(),
                            };
                            self.level(&grant, repo, area)
                        })
                        .max()
                        .unwrap_or(Level::None);
                    return base.min(app);
                }
                if repo.private && !has("repo") {
                    Level::None
                } else if !repo.private && !has("repo") && !has("public_repo") {
                    base.min(Level::Read)
                } else {
                    base
                }
            }
            Grant::Installation {
                installation,
                repositories,
                permissions,
            } => {
                let full = repo.full_name();
                let Some(inst) = self.installations.get(installation) else {
                    return Level::None;
                };
                let narrowed = repositories.as_ref().is_none_or(|r| r.contains(&full));
                if !inst.repositories.contains(&full) || !narrowed {
                    return Level::None;
                }
                match permissions.get(area.permission()).map(String::as_str) {
                    Some("write") => Level::Write,
                    Some("read") => Level::Read,
                    _ if matches!(area, Area::Metadata) => Level::Read,
                    _ => Level::None,
                }
            }
        }
    }
}

impl GitAuthorizer for Shared {
    fn decide(
        &self,
        token: Option<&str>,
        owner: &str,
        repo: &str,
        access: GitAccess,
    ) -> GitDecision {
        let book = self.book();
        let Some(issued) = token.and_then(|t| book.live(t)) else {
            return GitDecision::Unauthenticated;
        };
        let Some(record) = book.repos.get(&format!("{owner}/{repo}")) else {
            return GitDecision::NotFound;
        };
        let level = book.level(&issued.grant, record, Area::Contents);
        let user = match &issued.grant {
            Grant::User { login, .. } => login.clone(),
            Grant::Installation { .. } => "x-access-token".to_string(),
        };
        match (level, access) {
            (Level::None, _) => GitDecision::NotFound,
            (Level::Read, GitAccess::Write) => GitDecision::Forbidden,
            _ => GitDecision::Allow(user),
        }
    }
}

/// A running fake GitHub with its git server. Dropping it stops both; it fails
/// the test if an exchange broke GitHub's description and the test did not take
/// the violation.
pub struct FakeGithub {
    addr: SocketAddr,
    shared: Arc<Shared>,
    git: GitServer,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.task.abort();
        self.shared.checker.fail_on_violations("fake GitHub");
    }
}

impl FakeGithub {
    pub async fn start() -> anyhow::Result<FakeGithub> {
        FakeGithub::start_with(false).await
    }

    /// The same with its git server over HTTPS, as github.com serves git
    /// ([`GitServer::start_tls`]).
    pub async fn start_with_tls_git() -> anyhow::Result<FakeGithub> {
        FakeGithub::start_with(true).await
    }

    async fn start_with(tls_git: bool) -> anyhow::Result<FakeGithub> {
        // Load the description now, so a missing `npm ci` fails here, clearly.
        crate::github_openapi::description()?;
        let shared = Arc::new(Shared {
            book: Mutex::new(Book {
                user_token_secs: USER_TOKEN_SECS,
                refresh_token_secs: REFRESH_TOKEN_SECS,
                ..Book::default()
            }),
            api_url: OnceLock::new(),
            git_root: OnceLock::new(),
            checker: Checker::new(|path| !routes::OUTSIDE_REST.contains(&path)),
        });
        let git = if tls_git {
            GitServer::start_tls(shared.clone()).await?
        } else {
            GitServer::start(shared.clone()).await?
        };
        let _ = shared.git_root.set((git.url(), git.root().to_path_buf()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let _ = shared.api_url.set(format!("http://{addr}"));
        let app = routes::router(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeGithub {
            addr,
            shared,
            git,
            task,
        })
    }

    /// The API's base URL (`GITHUB_API_URL`).
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The Worker variables that make it GitHub for the Worker: the OAuth client,
    /// the web flow's endpoints and the REST API.
    pub fn worker_vars(&self) -> Vec<(String, String)> {
        let base = self.api_url();
        vec![
            ("GITHUB_CLIENT_ID".into(), CLIENT_ID.into()),
            ("GITHUB_CLIENT_SECRET".into(), CLIENT_SECRET.into()),
            (
                "GITHUB_AUTHORIZE_URL".into(),
                format!("{base}/login/oauth/authorize"),
            ),
            (
                "GITHUB_TOKEN_URL".into(),
                format!("{base}/login/oauth/access_token"),
            ),
            ("GITHUB_API_URL".into(), base),
        ]
    }

    /// Who consents at the web flow's authorize endpoint from now on (`None`: the
    /// user denies).
    pub fn consent_as(&self, login: Option<&str>) {
        self.shared.book().consenting = login.map(str::to_string);
    }

    /// Connects GitHub for `api`'s user the way a browser does, without one: the
    /// Worker's `/auth/github/connect?return_to=`, this fake's consent as `login`,
    /// the Worker's callback. Answers where the Worker sends the browser at the end.
    pub async fn connect(
        &self,
        worker_url: &str,
        api: &crate::client::Api,
        login: &str,
        return_to: &str,
    ) -> anyhow::Result<String> {
        let mut browser = crate::oauth_browser::Browser::new();
        browser.cookies.insert(
            "ns_session".to_string(),
            api.session_cookie().unwrap_or_default().to_string(),
        );
        self.consent_as(Some(login));
        let start = format!("/auth/github/connect?return_to={return_to}");
        let callback = browser.start_flow(worker_url, &start).await?;
        browser.finish(&callback).await
    }

    /// How long user tokens the web flow and refreshes issue from now on live.
    pub fn set_user_token_secs(&self, secs: u64) {
        self.shared.book().user_token_secs = secs;
    }

    /// How long the refresh tokens issued from now on live (GitHub: six months).
    pub fn set_refresh_token_secs(&self, secs: u64) {
        self.shared.book().refresh_token_secs = secs;
    }

    /// How many refresh-token grants the token endpoint was asked for.
    pub fn refresh_requests(&self) -> usize {
        self.shared.book().refresh_requests
    }

    /// The queries the web flow's authorize endpoint received, in order.
    pub fn authorize_requests(&self) -> Vec<HashMap<String, String>> {
        self.shared.book().authorize_requests.clone()
    }

    /// The git server that holds the repositories.
    pub fn git(&self) -> &GitServer {
        &self.git
    }

    /// Adds an account.
    pub fn add_user(&self, login: &str, name: &str, email: &str) -> u64 {
        let mut book = self.shared.book();
        let id = 1000 + book.next_id();
        let account = Account {
            id,
            login: login.to_string(),
            name: name.to_string(),
            email: email.to_string(),
            kind: "User",
        };
        book.accounts.insert(login.to_string(), account);
        id
    }

    /// Adds a repository owned by an existing account, with its git history.
    pub fn add_repo(
        &self,
        owner: &str,
        name: &str,
        private: bool,
        seed: &crate::git_server::RepoSeed,
    ) -> anyhow::Result<()> {
        self.git.create_repo(owner, name, seed)?;
        self.record_repo(owner, name, private, &seed.default_branch)
    }

    /// Adds a repository served from an existing bare repository (the large one).
    pub fn add_repo_from(
        &self,
        owner: &str,
        name: &str,
        source: &std::path::Path,
    ) -> anyhow::Result<()> {
        self.git.install_repo(owner, name, source)?;
        self.record_repo(owner, name, true, "main")
    }

    fn record_repo(
        &self,
        owner: &str,
        name: &str,
        private: bool,
        default_branch: &str,
    ) -> anyhow::Result<()> {
        let mut book = self.shared.book();
        anyhow::ensure!(book.accounts.contains_key(owner), "no account {owner}");
        let id = 5000 + book.next_id();
        let record = RepoRecord {
            id,
            owner: owner.to_string(),
            name: name.to_string(),
            private,
            default_branch: default_branch.to_string(),
            writers: Vec::new(),
            readers: Vec::new(),
        };
        book.repos.insert(record.full_name(), record);
        Ok(())
    }

    /// Gives a user push (`write`) or read access to a repository.
    pub fn add_collaborator(&self, full_name: &str, login: &str, write: bool) {
        if let Some(repo) = self.shared.book().repos.get_mut(full_name) {
            if write {
                repo.writers.push(login.to_string());
            } else {
                repo.readers.push(login.to_string());
            }
        }
    }

    /// Issues a user token with scopes, as the OAuth flow would, living `ttl` seconds.
    pub fn issue_user_token(&self, login: &str, scopes: &[&str], ttl: u64) -> UserTokens {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        routes::issue_user_tokens(&mut self.shared.book(), login, scopes, ttl, false)
    }

    /// Registers the GitHub App (its id and public key) and makes it a key.
    pub fn register_app(&self, app_id: u64) -> anyhow::Result<GithubApp> {
        let app = GithubApp::generate(app_id)?;
        self.shared.book().app = Some((app_id, app.public_key()));
        Ok(app)
    }

    /// Installs the App on an account for some repositories with permissions.
    pub fn install_app(
        &self,
        account: &str,
        repositories: &[&str],
        permissions: &[(&str, &str)],
    ) -> u64 {
        let mut book = self.shared.book();
        let id = 70_000 + book.next_id();
        let installation = Installation {
            id,
            account: account.to_string(),
            repositories: repositories.iter().map(|r| r.to_string()).collect(),
            permissions: permissions
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        book.installations.insert(id, installation);
        id
    }

    /// Makes a token expired, as if its time had passed.
    pub fn expire(&self, token: &str) {
        if let Some(t) = self.shared.book().tokens.get_mut(token) {
            t.expires_at = now().saturating_sub(1);
        }
    }

    /// Revokes a token, as the user would on github.com.
    pub fn revoke(&self, token: &str) {
        if let Some(t) = self.shared.book().tokens.get_mut(token) {
            t.revoked = true;
        }
    }

    /// Revokes everything `login` authorized (their tokens and refresh tokens), as
    /// revoking the app's authorization on github.com does.
    pub fn revoke_authorization(&self, login: &str) {
        let mut book = self.shared.book();
        for token in book.tokens.values_mut() {
            if matches!(&token.grant, Grant::User { login: l, .. } if l == login) {
                token.revoked = true;
            }
        }
        book.refresh.retain(|_, (l, _, _, _)| l != login);
    }

    /// Every token issued so far.
    pub fn tokens(&self) -> Vec<IssuedToken> {
        self.shared.book().tokens.values().cloned().collect()
    }

    /// Every pull request, in creation order.
    pub fn pulls(&self) -> Vec<PullRecord> {
        self.shared.book().pulls.clone()
    }

    /// Sets a check run on a commit of a repository.
    pub fn add_check_run(
        &self,
        full_name: &str,
        sha: &str,
        name: &str,
        status: &str,
        conclusion: Option<&str>,
    ) {
        let mut book = self.shared.book();
        let id = 90_000 + book.next_id();
        let run = CheckRun {
            id,
            head_sha: sha.to_string(),
            name: name.to_string(),
            status: status.to_string(),
            conclusion: conclusion.map(str::to_string),
        };
        book.checks.push((full_name.to_string(), run));
    }

    /// The next REST response's JSON body is altered before it is validated (to
    /// show the validation catches a malformed answer).
    pub fn corrupt_next_response(
        &self,
        change: impl FnOnce(&mut serde_json::Value) + Send + 'static,
    ) {
        self.shared.checker.corrupt_next_response(change);
    }

    /// Takes the violations recorded so far (so the fake does not fail the test).
    pub fn take_violations(&self) -> Vec<String> {
        self.shared.checker.take_violations()
    }
}
