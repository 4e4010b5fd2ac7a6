//! A real git server for tests: smart HTTP served by git's own `git http-backend`
//! (CGI, one process per request) behind a small axum server, serving bare
//! repositories from a temporary directory at `http://127.0.0.1:<port>/<owner>/<repo>.git`.
//!
//! It authenticates the way GitHub does git over HTTPS: HTTP Basic, any username
//! (`x-access-token` by convention), a token as the password. Who may do what is
//! decided by a [`GitAuthorizer`] (the fake GitHub, which issued the tokens): no or
//! bad credentials get 401 with a `WWW-Authenticate: Basic` challenge, so git's
//! credential helpers run for real; a token without access to the repository gets
//! 404 (GitHub hides what one cannot see); a read-only one pushing gets 403. Only
//! the smart protocol's three paths exist: there is no dumb HTTP.
//!
//! Repositories are made with real `git` commands ([`RepoSeed`]); the large one for
//! speed figures ([`large_repo`]) is built once with `git fast-import` and cached
//! under `target/`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// What a request wants to do to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitAccess {
    /// Clone or fetch (`git-upload-pack`).
    Read,
    /// Push (`git-receive-pack`).
    Write,
}

/// The answer of a [`GitAuthorizer`], mapped to GitHub's statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitDecision {
    /// Go ahead; the string is the user git records as `REMOTE_USER`.
    Allow(String),
    /// 401 with the Basic challenge: no, unknown, expired or revoked credentials.
    Unauthenticated,
    /// 404: the token cannot see this repository.
    NotFound,
    /// 403: the token can see the repository but not do this (a push with read access).
    Forbidden,
}

/// Decides whether a token may read or write a repository.
pub trait GitAuthorizer: Send + Sync + 'static {
    fn decide(
        &self,
        token: Option<&str>,
        owner: &str,
        repo: &str,
        access: GitAccess,
    ) -> GitDecision;
}

pub mod tls;

/// A running git server. Dropping it stops the server and removes its repositories.
pub struct GitServer {
    addr: SocketAddr,
    /// The test CA's certificate when the server speaks HTTPS ([`GitServer::start_tls`]).
    ca_pem: Option<String>,
    root: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Served {
    root: PathBuf,
    authorizer: Arc<dyn GitAuthorizer>,
}

/// The test CA's certificate in the server's directory (no repository is named so:
/// owners are directories).
const CA_FILE: &str = "test-ca.pem";
/// How long one git request may take before it is cut off.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// The largest push body accepted.
const MAX_BODY: usize = 1 << 30;

impl GitServer {
    pub async fn start(authorizer: Arc<dyn GitAuthorizer>) -> anyhow::Result<GitServer> {
        let root = tempfile::tempdir()?;
        let served = Arc::new(Served {
            root: root.path().to_path_buf(),
            authorizer,
        });
        let app = Router::new().fallback(serve).with_state(served);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(GitServer {
            addr,
            ca_pem: None,
            root,
            task,
        })
    }

    /// The same server over HTTPS only, with a certificate for `127.0.0.1` from a
    /// test CA of its own ([`GitServer::ca_pem`]).
    pub async fn start_tls(authorizer: Arc<dyn GitAuthorizer>) -> anyhow::Result<GitServer> {
        let root = tempfile::tempdir()?;
        let served = Arc::new(Served {
            root: root.path().to_path_buf(),
            authorizer,
        });
        let app = Router::new().fallback(serve).with_state(served);
        let tls = tls::TestTls::new()?;
        std::fs::write(root.path().join(CA_FILE), &tls.ca_pem)?;
        let listener = tls.listener(tokio::net::TcpListener::bind("127.0.0.1:0").await?);
        let addr = axum::serve::Listener::local_addr(&listener)?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(GitServer {
            addr,
            ca_pem: Some(tls.ca_pem),
            root,
            task,
        })
    }

    /// The test CA's certificate (PEM) of a server started with [`GitServer::start_tls`].
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// A file holding [`GitServer::ca_pem`] (for `SANDBOX_EGRESS_UPSTREAM_CA`), while
    /// the server lives.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.ca_pem.as_ref().map(|_| self.root.path().join(CA_FILE))
    }

    /// The port it listens on (of 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port>`, or `https://` for [`GitServer::start_tls`].
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The clone URL of a repository.
    pub fn repo_url(&self, owner: &str, repo: &str) -> String {
        format!("{}/{owner}/{repo}.git", self.url())
    }

    /// The bare repository on disk.
    pub fn bare_path(&self, owner: &str, repo: &str) -> PathBuf {
        self.root.path().join(owner).join(format!("{repo}.git"))
    }

    /// Creates a bare repository from a seed (real commits, made with `git`).
    pub fn create_repo(&self, owner: &str, repo: &str, seed: &RepoSeed) -> anyhow::Result<()> {
        let bare = self.bare_path(owner, repo);
        std::fs::create_dir_all(bare.parent().unwrap_or(self.root.path()))?;
        let work = tempfile::tempdir()?;
        seed.write_history(work.path())?;
        git(None, &["clone", "--bare", "--quiet"], &[work.path(), &bare])?;
        Ok(())
    }

    /// Serves a copy of an existing bare repository (objects are hard-linked, so a
    /// cached large repository is served without copying it; pushes to the copy
    /// never change the original).
    pub fn install_repo(&self, owner: &str, repo: &str, source: &Path) -> anyhow::Result<()> {
        let bare = self.bare_path(owner, repo);
        std::fs::create_dir_all(bare.parent().unwrap_or(self.root.path()))?;
        git(None, &["clone", "--bare", "--quiet"], &[source, &bare])?;
        Ok(())
    }

    /// The directory holding `<owner>/<repo>.git`.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A repository's bare directory, to ask git about it.
    pub fn repo(&self, owner: &str, repo: &str) -> BareRepo {
        BareRepo(self.bare_path(owner, repo))
    }
}

/// A bare repository on disk, read with git.
pub struct BareRepo(pub PathBuf);

impl BareRepo {
    /// The branches with their head commits, by name.
    pub fn branches(&self) -> anyhow::Result<Vec<(String, String)>> {
        let out = git(
            Some(&self.0),
            &[
                "for-each-ref",
                "--format=%(refname:short) %(objectname)",
                "refs/heads",
            ],
            &[],
        )?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect())
    }

    /// Resolves a ref (branch, tag or sha) to a commit.
    pub fn resolve(&self, reference: &str) -> Option<String> {
        if reference.starts_with('-') {
            return None;
        }
        let spec = format!("{reference}^{{commit}}");
        git(
            Some(&self.0),
            &["rev-parse", "--verify", "--quiet", &spec],
            &[],
        )
        .ok()
        .map(|s| s.trim().to_string())
    }

    /// The commit a branch points at, if the branch exists.
    pub fn branch_head(&self, branch: &str) -> Option<String> {
        self.resolve(&format!("refs/heads/{branch}"))
    }

    /// `git log` of a ref with a format, newest first.
    pub fn log(&self, reference: &str, format: &str) -> Vec<String> {
        if reference.starts_with('-') {
            return Vec::new();
        }
        let format = format!("--format={format}");
        git(Some(&self.0), &["log", &format, reference, "--"], &[])
            .map(|s| s.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }
}

/// Runs git with a clean, predictable configuration and returns its stdout.
pub fn git(dir: Option<&Path>, args: &[&str], paths: &[&Path]) -> anyhow::Result<String> {
    let mut command = std::process::Command::new("git");
    if let Some(dir) = dir {
        command.arg("-C").arg(dir);
    }
    command.args(args).args(paths);
    quiet_git_env(&mut command);
    let out = command.output()?;
    if !out.status.success() {
        anyhow::bail!(
            "git {args:?} {paths:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// No system or user configuration leaks into the harness's git commands.
fn quiet_git_env(command: &mut std::process::Command) {
    command
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0");
}

/// One commit of a seed: a message and the files it writes.
#[derive(Debug, Clone)]
pub struct SeedCommit {
    pub message: String,
    pub files: Vec<(String, String)>,
}

/// A small repository's history, written with real `git` commands.
#[derive(Debug, Clone)]
pub struct RepoSeed {
    pub default_branch: String,
    pub author_name: String,
    pub author_email: String,
    pub commits: Vec<SeedCommit>,
    /// Extra branches, each made at the last commit.
    pub branches: Vec<String>,
}

impl RepoSeed {
    /// A README and one source file on `main`, two commits.
    pub fn small() -> RepoSeed {
        RepoSeed {
            default_branch: "main".to_string(),
            author_name: "Seed Author".to_string(),
            author_email: "seed@example.com".to_string(),
            commits: vec![
                SeedCommit {
                    message: "Initial commit".to_string(),
                    files: vec![("README.md".to_string(), "# demo\n".to_string())],
                },
                SeedCommit {
                    message: "Add the main program".to_string(),
                    files: vec![(
                        "src/main.rs".to_string(),
                        "fn main() {\n    println!(\"hello\");\n}\n".to_string(),
                    )],
                },
            ],
            branches: Vec::new(),
        }
    }

    fn write_history(&self, work: &Path) -> anyhow::Result<()> {
        git(
            None,
            &["init", "--quiet", "-b", &self.default_branch],
            &[work],
        )?;
        for (n, commit) in self.commits.iter().enumerate() {
            for (path, contents) in &commit.files {
                let file = work.join(path);
                std::fs::create_dir_all(file.parent().unwrap_or(work))?;
                std::fs::write(file, contents)?;
            }
            git(Some(work), &["add", "--all"], &[])?;
            // Fixed dates keep the seeds' commit ids stable from run to run.
            let date = format!("{} +0000", 1_700_000_000 + n as u64 * 60);
            let mut command = std::process::Command::new("git");
            command
                .arg("-C")
                .arg(work)
                .args(["commit", "--quiet", "--allow-empty", "-m", &commit.message])
                .env("GIT_AUTHOR_NAME", &self.author_name)
                .env("GIT_AUTHOR_EMAIL", &self.author_email)
                .env("GIT_COMMITTER_NAME", &self.author_name)
                .env("GIT_COMMITTER_EMAIL", &self.author_email)
                .env("GIT_AUTHOR_DATE", &date)
                .env("GIT_COMMITTER_DATE", &date);
            quiet_git_env(&mut command);
            let out = command.output()?;
            anyhow::ensure!(
                out.status.success(),
                "git commit: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for branch in &self.branches {
            git(Some(work), &["branch", branch], &[])?;
        }
        Ok(())
    }
}

/// Files and commits in the large repository.
pub const LARGE_FILES: usize = 10_000;
pub const LARGE_COMMITS: usize = 2_000;

/// A bare repository of [`LARGE_FILES`] files and [`LARGE_COMMITS`] commits on
/// `main`, generated once with `git fast-import` and cached under
/// `target/github-harness/` (built under a temporary name and renamed, so a run cut
/// short never leaves a half-made cache).
pub fn large_repo() -> anyhow::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("github-harness");
    let cached = dir.join(format!("large-{LARGE_FILES}-{LARGE_COMMITS}-v1.git"));
    if cached.join("HEAD").exists() {
        return Ok(cached);
    }
    std::fs::create_dir_all(&dir)?;
    let building = tempfile::Builder::new().prefix("large-").tempdir_in(&dir)?;
    git(
        None,
        &["init", "--quiet", "--bare", "-b", "main"],
        &[building.path()],
    )?;
    let mut import = std::process::Command::new("git");
    import
        .arg("-C")
        .arg(building.path())
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped());
    quiet_git_env(&mut import);
    let mut child = import.spawn()?;
    {
        use std::io::Write;
        let mut stdin = std::io::BufWriter::new(child.stdin.take().expect("piped stdin"));
        write_large_stream(&mut stdin)?;
        stdin.flush()?;
    }
    anyhow::ensure!(child.wait()?.success(), "git fast-import failed");
    let made = building.keep();
    if std::fs::rename(&made, &cached).is_err() {
        // Another process finished first; its copy is as good as ours.
        let _ = std::fs::remove_dir_all(&made);
    }
    Ok(cached)
}

/// The fast-import stream: one commit with every file, then one small change per
/// commit, so the history is long and the tree is wide.
fn write_large_stream(out: &mut impl std::io::Write) -> std::io::Result<()> {
    let person = "Seed Author <seed@example.com>";
    for n in 0..LARGE_COMMITS {
        let when = 1_700_000_000 + n as u64 * 60;
        let message = format!("Change {n}");
        writeln!(out, "commit refs/heads/main")?;
        writeln!(out, "author {person} {when} +0000")?;
        writeln!(out, "committer {person} {when} +0000")?;
        writeln!(out, "data {}\n{message}", message.len())?;
        if n == 0 {
            for file in 0..LARGE_FILES {
                let body = format!("// file {file}\npub const VALUE: usize = {file};\n");
                let path = format!("src/m{:03}/f{file:05}.rs", file / 100);
                writeln!(out, "M 644 inline {path}\ndata {}\n{body}", body.len())?;
            }
        } else {
            let file = (n * 7919) % LARGE_FILES;
            let body = format!("// file {file}\npub const VALUE: usize = {n};\n");
            let path = format!("src/m{:03}/f{file:05}.rs", file / 100);
            writeln!(out, "M 644 inline {path}\ndata {}\n{body}", body.len())?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// The password of an HTTP Basic `Authorization` header (the username is ignored,
/// as GitHub ignores it for token authentication).
fn basic_password(headers: &HeaderMap) -> Option<String> {
    use base64::Engine;
    let encoded = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let pair = String::from_utf8(decoded).ok()?;
    pair.split_once(':')
        .map(|(_, password)| password.to_string())
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn plain(status: StatusCode, text: &str) -> Response {
    (status, text.to_string()).into_response()
}

/// Splits `/<owner>/<repo>.git/<service path>` and says what access it needs.
fn route(path: &str, query: &str) -> Option<(String, String, GitAccess)> {
    let mut parts = path.trim_start_matches('/').splitn(3, '/');
    let owner = parts.next()?;
    let repo = parts.next()?.strip_suffix(".git")?;
    let rest = parts.next()?;
    if !valid_name(owner) || !valid_name(repo) {
        return None;
    }
    let access = match rest {
        "info/refs" if query == "service=git-upload-pack" => GitAccess::Read,
        "info/refs" if query == "service=git-receive-pack" => GitAccess::Write,
        "git-upload-pack" => GitAccess::Read,
        "git-receive-pack" => GitAccess::Write,
        _ => return None,
    };
    Some((owner.to_string(), repo.to_string(), access))
}

async fn serve(State(served): State<Arc<Served>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let Some((owner, repo, access)) = route(&path, &query) else {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    };
    let password = basic_password(request.headers());
    let user = match served
        .authorizer
        .decide(password.as_deref(), &owner, &repo, access)
    {
        GitDecision::Allow(user) => user,
        GitDecision::Unauthenticated => {
            let mut response = plain(StatusCode::UNAUTHORIZED, "Invalid username or token.");
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"GitHub\""),
            );
            return response;
        }
        GitDecision::NotFound => return plain(StatusCode::NOT_FOUND, "Repository not found."),
        GitDecision::Forbidden => {
            return plain(
                StatusCode::FORBIDDEN,
                &format!("Permission to {owner}/{repo}.git denied."),
            );
        }
    };
    let bare = served.root.join(&owner).join(format!("{repo}.git"));
    if !bare.join("HEAD").exists() {
        return plain(StatusCode::NOT_FOUND, "Repository not found.");
    }
    match tokio::time::timeout(
        REQUEST_TIMEOUT,
        run_backend(&served.root, request, &path, &query, &user),
    )
    .await
    {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => plain(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}")),
        Err(_) => plain(StatusCode::GATEWAY_TIMEOUT, "git http-backend timed out"),
    }
}

/// Runs `git http-backend` for one request and turns its CGI output into a
/// response (headers parsed, the body streamed).
async fn run_backend(
    root: &Path,
    request: Request,
    path: &str,
    query: &str,
    user: &str,
) -> anyhow::Result<Response> {
    let (parts, body) = request.into_parts();
    let header = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let body = axum::body::to_bytes(body, MAX_BODY).await?;
    let mut command = tokio::process::Command::new("git");
    command
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("CONTENT_TYPE", header(header::CONTENT_TYPE))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header(header::CONTENT_ENCODING))
        .env("GIT_PROTOCOL", {
            let name = header::HeaderName::from_static("git-protocol");
            header(name)
        })
        // Set only for an authorized caller: it is what enables receive-pack.
        .env("REMOTE_USER", user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
    });
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let mut reader = BufReader::new(stdout);
    let mut builder = Response::builder();
    let mut status = StatusCode::OK;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            let mut message = String::new();
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut message).await;
            anyhow::bail!("git http-backend gave no headers: {message}");
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split(' ').next().unwrap_or("500");
            status = code.parse().unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else {
            builder = builder.header(name, value);
        }
    }
    // The child is owned by the stream, so it lives (and is reaped) until the
    // body has been sent, and is killed if the client goes away.
    let body = futures::stream::unfold((reader, child), |(mut reader, child)| async move {
        let mut chunk = vec![0u8; 64 * 1024];
        match tokio::io::AsyncReadExt::read(&mut reader, &mut chunk).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                chunk.truncate(n);
                Some((
                    Ok::<_, std::io::Error>(bytes::Bytes::from(chunk)),
                    (reader, child),
                ))
            }
        }
    });
    tokio::spawn(async move {
        // Drain stderr so a chatty backend never blocks on a full pipe.
        let mut sink = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut sink).await;
    });
    Ok(builder.status(status).body(Body::from_stream(body))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_smart_protocol_paths_route() {
        assert_eq!(
            route("/o/r.git/info/refs", "service=git-upload-pack"),
            Some(("o".into(), "r".into(), GitAccess::Read))
        );
        assert_eq!(
            route("/o/r.git/git-receive-pack", "").map(|r| r.2),
            Some(GitAccess::Write)
        );
        assert_eq!(route("/o/r.git/info/refs", ""), None);
        assert_eq!(route("/o/r.git/HEAD", ""), None);
        assert_eq!(
            route("/o/../r.git/info/refs", "service=git-upload-pack"),
            None
        );
        assert_eq!(route("/o/.r.git/git-upload-pack", ""), None);
    }
}
