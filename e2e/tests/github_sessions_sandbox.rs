//! The sandbox side of repo-aware sessions in a real local sandbox: bubblewrap, its
//! `isolated` network whose only way out is the egress proxy, the backend's
//! `SANDBOX_ISOLATED_ALLOW` opening the test git server's one port on the host's
//! loopback, and git inside the sandbox reaching the runner's credential socket in
//! `/run/nightshift`. The runner's repository task runs here in the test process
//! with the local provider's command wrapper; the Worker's credential route is a
//! stand-in answering the test server's token (the full journey with the Worker is
//! the GitHub sessions test).
//!
//! Needs `cargo build -p sandbox-backend` (or `make build`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use nightshift_e2e::git_server::{GitAccess, GitAuthorizer, GitDecision, GitServer, RepoSeed};
use nightshift_e2e::stack::{binary, free_port};
use nightshift_protocol::repo::{CredentialRequest, GitAuthor, RepoPhase, RepoState, SessionRepo};
use nightshift_runner::repo::git::SandboxGit;
use nightshift_runner::repo::worker_api::WorkerApi;
use nightshift_runner::repo::{RepoSettings, start};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "ghs_sandbox_test_secret_abcdef012345";
const RUNNER_TOKEN: &str = "runner-token-sandbox";
const BACKEND_TOKEN: &str = "backend-token-for-the-github-sandbox-test-0123456789";

struct OnlyHello;

impl GitAuthorizer for OnlyHello {
    fn decide(&self, token: Option<&str>, owner: &str, repo: &str, _: GitAccess) -> GitDecision {
        match token {
            Some(SECRET) if (owner, repo) == ("octo", "hello") => GitDecision::Allow("octo".into()),
            Some(SECRET) => GitDecision::NotFound,
            _ => GitDecision::Unauthenticated,
        }
    }
}

#[derive(Default)]
struct CredentialRoute {
    asked: Mutex<Vec<CredentialRequest>>,
}

async fn credential(
    State(route): State<Arc<CredentialRoute>>,
    headers: HeaderMap,
    Json(request): Json<CredentialRequest>,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {RUNNER_TOKEN}"))
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    route.asked.lock().unwrap().push(request);
    Json(json!({"username": "x-access-token", "password": SECRET, "expires_at": 4_102_444_800_000i64}))
        .into_response()
}

/// A sandbox backend of the test's own, killed on drop.
struct Backend {
    child: tokio::process::Child,
    url: String,
    data: PathBuf,
    http: reqwest::Client,
}

impl Backend {
    async fn start(
        data: &Path,
        isolated_allow: &str,
        extra_env: &[(&str, String)],
    ) -> anyhow::Result<Backend> {
        let bin = binary("sandbox-backend");
        anyhow::ensure!(
            bin.exists(),
            "{} is missing: run `make build`",
            bin.display()
        );
        let port = free_port();
        let child = tokio::process::Command::new(bin)
            .env("SANDBOX_BACKEND_TOKEN", BACKEND_TOKEN)
            .env("SANDBOX_BACKEND_LISTEN", format!("127.0.0.1:{port}"))
            .env("NIGHTSHIFT_DATA_DIR", data)
            .env("SANDBOX_ISOLATED_ALLOW", isolated_allow)
            .env("SANDBOX_WARM_POOL", "0")
            .env("SANDBOX_ORPHAN_GRACE_SECS", "10")
            .env("RUST_LOG", "warn")
            .envs(extra_env.iter().map(|(name, value)| (*name, value)))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let backend = Backend {
            child,
            url: format!("http://127.0.0.1:{port}"),
            data: data.to_path_buf(),
            http: reqwest::Client::new(),
        };
        for _ in 0..300 {
            if backend
                .http
                .get(format!("{}/v1/health", backend.url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(backend);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("the sandbox backend did not come up")
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(BACKEND_TOKEN)
            .json(&body)
            .timeout(Duration::from_secs(120))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {body}");
        Ok(body)
    }

    /// Runs `bash -c script` in the sandbox as the agent's commands run.
    async fn sh(&self, sandbox: &str, script: &str) -> anyhow::Result<(i64, String)> {
        let result = self
            .post(
                &format!("/v1/sandboxes/{sandbox}/exec?stream=false"),
                json!({"command": "bash", "args": ["-c", script], "timeout_ms": 60_000}),
            )
            .await?;
        let output = format!(
            "{}{}",
            result["stdout"].as_str().unwrap_or_default(),
            result["stderr"].as_str().unwrap_or_default()
        );
        Ok((result["exit"]["code"].as_i64().unwrap_or(-1), output))
    }

    fn sandbox_dir(&self, sandbox: &str) -> PathBuf {
        self.data.join("sandboxes").join(sandbox)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn until<T>(
    what: &str,
    states: &mut watch::Receiver<Option<RepoState>>,
    done: impl Fn(&RepoState) -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(state) = states.borrow_and_update().as_ref()
            && let Some(value) = done(state)
        {
            return Ok(value);
        }
        tokio::time::timeout_at(deadline, states.changed())
            .await
            .with_context(|| format!("waiting for {what}: {:?}", states.borrow()))??;
    }
}

/// The Worker's credential route, stood in for: `(what it was asked, the base URL
/// the runner's Worker client takes, its task)`.
async fn stand_in_worker()
-> anyhow::Result<(Arc<CredentialRoute>, String, tokio::task::JoinHandle<()>)> {
    let route = Arc::new(CredentialRoute::default());
    let app = axum::Router::new()
        .route(
            "/api/sessions/s1/git/credential",
            axum::routing::post(credential),
        )
        .with_state(route.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let worker_url = format!("http://{}/api/sessions/s1", listener.local_addr()?);
    let worker = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((route, worker_url, worker))
}

/// The repository task's settings as the runner makes them from the local
/// provider's boot config for an `isolated` sandbox in `dir` (`runner::repo_settings`):
/// git through the sandbox's agent, the helper socket in its sockets directory, and
/// the host-only socket the egress asks.
fn runner_settings(dir: &Path, worker_url: String) -> anyhow::Result<RepoSettings> {
    let wrapper = vec![
        binary("sandbox-backend").display().to_string(),
        "enter".into(),
        "--socket".into(),
        dir.join("agent.sock").display().to_string(),
        "--".into(),
    ];
    let (_, token) = watch::channel(RUNNER_TOKEN.to_string());
    Ok(RepoSettings {
        git: SandboxGit {
            wrapper,
            workspace_dir: dir.join("workspace"),
            home: "/workspace".into(),
        },
        credential_socket: Some((
            dir.join("sockets").join("git-credential.sock"),
            "/run/nightshift/git-credential.sock".into(),
        )),
        egress_socket: Some(dir.join("egress").join("credential.sock")),
        api: WorkerApi::new(worker_url, token)?,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_sandbox_clones_commits_and_pushes_through_the_runners_credential_socket()
-> anyhow::Result<()> {
    let server = GitServer::start(Arc::new(OnlyHello)).await?;
    server.create_repo("octo", "hello", &RepoSeed::small())?;
    let git_port = server.port();

    let (route, worker_url, worker) = stand_in_worker().await?;

    let data = tempfile::tempdir()?;
    let backend = Backend::start(data.path(), &format!("127.0.0.1:{git_port}"), &[]).await?;
    let sandbox = backend
        .post("/v1/sandboxes", json!({"network": "isolated"}))
        .await?;
    let id = sandbox["id"].as_str().context("a sandbox id")?.to_string();
    let dir = backend.sandbox_dir(&id);

    // The test server is reachable through the egress proxy on its one port only.
    let (_, reached) = backend
        .sh(&id, &format!("curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 --noproxy '' -x \"$HTTP_PROXY\" http://127.0.0.1:{git_port}/octo/hello.git/info/refs?service=git-upload-pack"))
        .await?;
    assert_eq!(reached.trim(), "401", "the allowed port: {reached}");
    let other = free_port();
    let (_, refused) = backend
        .sh(&id, &format!("curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 --noproxy '' -x \"$HTTP_PROXY\" http://127.0.0.1:{other}/"))
        .await?;
    assert_eq!(
        refused.trim(),
        "403",
        "another port of the same loopback: {refused}"
    );

    let settings = runner_settings(&dir, worker_url)?;
    let shutdown = CancellationToken::new();
    let (repo_sender, repo) = watch::channel(None);
    let (handle, mut states) = start(settings, repo, None, shutdown.clone());
    let branch = "nightshift/0badcafe-sandbox";
    repo_sender.send_replace(Some(SessionRepo {
        full_name: "octo/hello".into(),
        clone_url: server.repo_url("octo", "hello"),
        base_branch: "main".into(),
        branch: branch.into(),
        existing_branch: false,
        author: GitAuthor {
            name: "Owner Person".into(),
            email: "1+owner@users.noreply.github.com".into(),
        },
    }));
    let ready = until("the clone", &mut states, |s| {
        (s.phase != RepoPhase::Cloning).then(|| s.clone())
    })
    .await?;
    assert_eq!(ready.phase, RepoPhase::Ready, "{ready:?}");
    assert_eq!(ready.branch, branch);

    // The agent edits and commits inside the sandbox, as the prompting user.
    handle
        .prepare_turn(
            Some(GitAuthor {
                name: "Prompting Member".into(),
                email: "7+member@users.noreply.github.com".into(),
            }),
            &CancellationToken::new(),
        )
        .await
        .map_err(anyhow::Error::msg)?;
    let (code, output) = backend
        .sh(&id, "echo change >> README.md && git commit -qam 'Change the readme' && git log -1 --format=%an")
        .await?;
    assert_eq!((code, output.trim()), (0, "Prompting Member"), "{output}");
    handle.push().await.map_err(anyhow::Error::msg)?;
    let bare = server.repo("octo", "hello");
    let head = bare
        .branch_head(branch)
        .context("the branch is on the server")?;
    assert_eq!(
        bare.log(&head, "%an <%ae>")[0],
        "Prompting Member <7+member@users.noreply.github.com>"
    );
    handle.refresh();
    let pushed = until("the pushed state", &mut states, |s| {
        (s.pushed && s.ahead == 1).then(|| s.clone())
    })
    .await?;
    assert_eq!(pushed.files.len(), 1);

    // The helper refuses another repository and another host, from inside, at once.
    for (host, path) in [
        (format!("127.0.0.1:{git_port}"), "octo/other.git"),
        ("github.com".to_string(), "octo/hello.git"),
    ] {
        let (code, output) = backend
            .sh(
                &id,
                &format!("printf 'protocol=http\\nhost={host}\\npath={path}\\n\\n' | timeout 20 git credential fill"),
            )
            .await?;
        assert_ne!(code, 0, "{output}");
        assert!(output.contains("told us to quit"), "{output}");
        assert!(!output.contains(SECRET));
    }
    assert!(
        route
            .asked
            .lock()
            .unwrap()
            .iter()
            .all(|a| a.path == "octo/hello.git")
    );

    // No token in the sandbox's environment, its git config or its files.
    let (_, found) = backend
        .sh(
            &id,
            &format!(
                "env; git config --list --show-origin; grep -rl '{SECRET}' /workspace /home /tmp 2>/dev/null; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'"
            ),
        )
        .await?;
    assert!(
        !found.contains(SECRET),
        "the token is in the sandbox: {found}"
    );
    assert!(found.contains("credential.helper=cache --socket /run/nightshift/git-credential.sock"));

    shutdown.cancel();
    let _ = backend
        .http
        .delete(format!("{}/v1/sandboxes/{id}", backend.url))
        .bearer_auth(BACKEND_TOKEN)
        .send()
        .await;
    worker.abort();
    Ok(())
}

/// Sends one raw request head through a tunnel the sandbox opens to the repository's
/// host (trusting the egress CA as git does) and prints every byte answered.
const RAW_REQUEST: &str = r#"
import socket, ssl, sys
port, mode = int(sys.argv[1]), sys.argv[2]
host = b"127.0.0.1:%d" % port
heads = {
    "huge": b"GET /octo/hello.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: " + host + b"\r\nX-Pad: " + b"a" * 40000 + b"\r\n\r\n",
    "malformed": b"GET /octo/hello.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: " + host + b"\r\nBad Header: x\r\n\r\n",
    "smuggle": b"POST /octo/hello.git/git-receive-pack HTTP/1.1\r\nHost: " + host + b"\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\nGET /octo/hello.git/info/refs?service=git-receive-pack HTTP/1.1\r\nHost: " + host + b"\r\n\r\n",
}
raw = socket.create_connection(("127.0.0.1", 3128), timeout=20)
raw.sendall(b"CONNECT " + host + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
answer = b""
while b"\r\n\r\n" not in answer:
    answer += raw.recv(1)
context = ssl.create_default_context(cafile="/run/nightshift/egress-ca.pem")
tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
try:
    tls.sendall(heads[mode])
except OSError:
    pass
out = b""
try:
    while True:
        chunk = tls.recv(65536)
        if not chunk:
            break
        out += chunk
except OSError:
    pass
sys.stdout.write(out.decode("latin1"))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_egress_adds_the_credential_so_an_isolated_sandbox_pushes_holding_none()
-> anyhow::Result<()> {
    let server = GitServer::start_tls(Arc::new(OnlyHello)).await?;
    server.create_repo("octo", "hello", &RepoSeed::small())?;
    server.create_repo("octo", "other", &RepoSeed::small())?;
    // Another host the sandbox may reach, which the egress must not intercept.
    let elsewhere = GitServer::start_tls(Arc::new(OnlyHello)).await?;
    let (port, elsewhere_port) = (server.port(), elsewhere.port());
    let server_ca = server.ca_pem().context("a TLS server")?.to_string();
    let elsewhere_ca = elsewhere.ca_pem().context("a TLS server")?.to_string();

    let (route, worker_url, worker) = stand_in_worker().await?;
    let data = tempfile::tempdir()?;
    let upstream_ca = data.path().join("upstream-ca.pem");
    std::fs::write(&upstream_ca, &server_ca)?;
    let backend = Backend::start(
        data.path(),
        &format!("127.0.0.1:{port},127.0.0.1:{elsewhere_port}"),
        &[(
            "SANDBOX_EGRESS_UPSTREAM_CA",
            upstream_ca.display().to_string(),
        )],
    )
    .await?;
    let sandbox = backend
        .post("/v1/sandboxes", json!({"network": "isolated"}))
        .await?;
    let id = sandbox["id"].as_str().context("a sandbox id")?.to_string();
    let dir = backend.sandbox_dir(&id);

    let shutdown = CancellationToken::new();
    let (repo_sender, repo) = watch::channel(None);
    let (handle, mut states) = start(
        runner_settings(&dir, worker_url)?,
        repo,
        None,
        shutdown.clone(),
    );
    let branch = "nightshift/0badcafe-egress";
    repo_sender.send_replace(Some(SessionRepo {
        full_name: "octo/hello".into(),
        clone_url: server.repo_url("octo", "hello"),
        base_branch: "main".into(),
        branch: branch.into(),
        existing_branch: false,
        author: GitAuthor {
            name: "Owner Person".into(),
            email: "1+owner@users.noreply.github.com".into(),
        },
    }));
    let ready = until("the clone", &mut states, |s| {
        (s.phase != RepoPhase::Cloning).then(|| s.clone())
    })
    .await?;
    assert_eq!(ready.phase, RepoPhase::Ready, "{ready:?}");

    // The agent commits and pushes with plain git, as the prompting user; git holds
    // no credential (the repository is on this loopback in the test, so the agent's
    // git is told to use the proxy for it, as it does for any real host).
    handle
        .prepare_turn(
            Some(GitAuthor {
                name: "Prompting Member".into(),
                email: "7+member@users.noreply.github.com".into(),
            }),
            &CancellationToken::new(),
        )
        .await
        .map_err(anyhow::Error::msg)?;
    let (code, output) = backend
        .sh(&id, "echo change >> README.md && git commit -qam 'Change the readme' && NO_PROXY= no_proxy= GIT_TERMINAL_PROMPT=0 timeout 60 git push -q origin HEAD 2>&1 && git log -1 --format=%an")
        .await?;
    assert_eq!((code, output.trim()), (0, "Prompting Member"), "{output}");
    let bare = server.repo("octo", "hello");
    let head = bare
        .branch_head(branch)
        .context("the branch is on the server")?;
    assert_eq!(
        bare.log(&head, "%an <%ae>")[0],
        "Prompting Member <7+member@users.noreply.github.com>"
    );
    assert!(
        route
            .asked
            .lock()
            .unwrap()
            .iter()
            .all(|a| a.path == "octo/hello")
    );
    let asked = route.asked.lock().unwrap().len();
    assert!(asked >= 1, "the egress asked for the credential");

    // Nothing in the sandbox holds or hands out a credential: no token in its
    // environment, processes, git config or files; no helper and no helper socket;
    // `git credential fill` gets nothing.
    let (_, found) = backend
        .sh(
            &id,
            &format!(
                "env; git config --list --show-origin; grep -rl '{SECRET}' /workspace /home /tmp /run 2>/dev/null; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; ls -a /run/nightshift"
            ),
        )
        .await?;
    assert!(
        !found.contains(SECRET),
        "the token is in the sandbox: {found}"
    );
    assert!(!found.contains("git-credential.sock"), "{found}");
    assert!(!found.contains("credential.helper=cache"), "{found}");
    assert!(
        found.contains("GIT_SSL_CAINFO=/run/nightshift/egress-ca.pem"),
        "{found}"
    );
    let (code, output) = backend
        .sh(
            &id,
            &format!("printf 'protocol=https\\nhost=127.0.0.1:{port}\\npath=octo/hello.git\\n\\n' | GIT_TERMINAL_PROMPT=0 timeout 20 git credential fill 2>&1"),
        )
        .await?;
    assert_ne!(code, 0, "{output}");
    assert!(!output.contains(SECRET), "{output}");

    // The CA's key stays on the host: not in the sandbox's bundle, not reachable.
    let key = data.path().join("egress-ca").join("ca.key");
    assert!(key.exists());
    let (_, bundle) = backend
        .sh(
            &id,
            &format!(
                "cat /run/nightshift/egress-ca.pem; cat {} 2>&1",
                key.display()
            ),
        )
        .await?;
    assert!(bundle.contains("BEGIN CERTIFICATE"));
    assert!(!bundle.contains("PRIVATE KEY"), "{bundle}");
    let key_pem = std::fs::read_to_string(&key)?;
    assert!(!bundle.contains(key_pem.lines().nth(1).unwrap_or("?")));

    let curl = |ca: &str, url: String| {
        format!(
            "curl -s -o /dev/null -w '%{{http_code}}' --max-time 20 --noproxy '' -x \"$HTTPS_PROXY\" --cacert {ca} '{url}'; echo \" exit=$?\""
        )
    };
    backend
        .sh(
            &id,
            &format!("cat > /tmp/server-ca.pem <<'EOF'\n{server_ca}EOF\ncat > /tmp/elsewhere-ca.pem <<'EOF'\n{elsewhere_ca}EOF\ncat > /tmp/raw.py <<'EOF'\n{RAW_REQUEST}\nEOF\n"),
        )
        .await?;
    // The repository's host is intercepted: its real certificate never reaches the
    // sandbox, the egress's does; the repository's paths get the credential, another
    // repository's on the same host go without one and the server refuses them.
    let refs = |repo: &str| {
        format!("https://127.0.0.1:{port}/octo/{repo}.git/info/refs?service=git-upload-pack")
    };
    let (_, real) = backend
        .sh(&id, &curl("/tmp/server-ca.pem", refs("hello")))
        .await?;
    assert!(
        real.contains("exit=60"),
        "the real certificate came through: {real}"
    );
    let (_, own) = backend
        .sh(&id, &curl("/run/nightshift/egress-ca.pem", refs("hello")))
        .await?;
    assert!(own.starts_with("200"), "the session's repository: {own}");
    let (_, other) = backend
        .sh(&id, &curl("/run/nightshift/egress-ca.pem", refs("other")))
        .await?;
    assert!(other.starts_with("401"), "another repository: {other}");
    let (_, sneaky) = backend
        .sh(&id, &curl("/run/nightshift/egress-ca.pem", format!("https://127.0.0.1:{port}/octo/hello.git/../other.git/info/refs?service=git-upload-pack")))
        .await?;
    assert!(!sneaky.starts_with("200"), "a dot segment: {sneaky}");
    // Another host is tunnelled as before: its own certificate, no credential.
    let elsewhere_refs = format!(
        "https://127.0.0.1:{elsewhere_port}/octo/hello.git/info/refs?service=git-upload-pack"
    );
    let (_, tunnelled) = backend
        .sh(&id, &curl("/tmp/elsewhere-ca.pem", elsewhere_refs.clone()))
        .await?;
    assert!(tunnelled.starts_with("401"), "another host: {tunnelled}");
    let (_, not_ours) = backend
        .sh(&id, &curl("/run/nightshift/egress-ca.pem", elsewhere_refs))
        .await?;
    assert!(
        not_ours.contains("exit=60"),
        "another host was intercepted: {not_ours}"
    );

    // Hostile heads on the intercepted connection get a 4xx and go nowhere.
    for (mode, status, code) in [
        ("huge", "431", "request_head_too_large"),
        ("malformed", "400", "malformed_request"),
        ("smuggle", "400", "ambiguous_length"),
    ] {
        let (_, answer) = backend
            .sh(
                &id,
                &format!("timeout 30 python3 /tmp/raw.py {port} {mode}"),
            )
            .await?;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{mode}: {answer}"
        );
        assert!(answer.contains(code), "{mode}: {answer}");
        assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{mode}: {answer}");
        assert!(!answer.contains(SECRET));
    }

    shutdown.cancel();
    let _ = backend
        .http
        .delete(format!("{}/v1/sandboxes/{id}", backend.url))
        .bearer_auth(BACKEND_TOKEN)
        .send()
        .await;
    worker.abort();
    Ok(())
}

/// Signs `api`'s user in to the fake GitHub's OAuth web flow for repository access.
async fn connect_github(
    stack: &nightshift_e2e::stack::Stack,
    gh: &nightshift_e2e::fake_github::FakeGithub,
    api: &nightshift_e2e::client::Api,
    login: &str,
) -> anyhow::Result<()> {
    let mut browser = nightshift_e2e::oauth_browser::Browser::new();
    browser.cookies.insert(
        "ns_session".to_string(),
        api.session_cookie().unwrap_or_default().to_string(),
    );
    gh.consent_as(Some(login));
    let callback = browser
        .start_flow(&stack.worker_url(), "/auth/github/connect?return_to=/")
        .await?;
    browser.finish(&callback).await?;
    Ok(())
}

/// The `repo_updated` states among `events`.
fn repo_states(events: &[nightshift_protocol::events::SessionEvent]) -> Vec<RepoState> {
    events
        .iter()
        .filter_map(|event| match &event.body {
            nightshift_protocol::events::EventBody::RepoUpdated { state } => Some(state.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_session_clones_its_repository_commits_as_the_prompter_and_pushes_its_branch() {
    session_journey(false).await;
}

/// The same journey with the repository served over HTTPS, as github.com serves it:
/// the session's sandbox is local and `isolated`, so the backend's egress adds the
/// credential (the runner learns it from its boot config) and git in the sandbox has
/// no helper.
#[tokio::test]
async fn a_session_on_an_https_repository_pushes_through_the_egress_that_adds_the_credential() {
    session_journey(true).await;
}

/// A session on alice's repository: the scripted turn commits as her, the state and
/// diff arrive, her push puts the branch on the server as hers, and no token is in
/// the sandbox or the events. `tls_git`: the git server speaks HTTPS only.
async fn session_journey(tls_git: bool) {
    use nightshift_e2e::fake_github::FakeGithub;
    use nightshift_e2e::github_turn::{
        EDIT_MARKER, EDITED_LINE, edit_and_commit, is_noreply_author, pushed_author,
        stack_reaching_git,
    };
    use nightshift_e2e::scripted_llm::ScriptedLlm;
    use nightshift_e2e::stack::{files_containing, with_logs};
    use nightshift_protocol::events::EventBody;
    use reqwest::Method;

    let gh = if tls_git {
        FakeGithub::start_with_tls_git().await.unwrap()
    } else {
        FakeGithub::start().await.unwrap()
    };
    gh.add_user("alice", "Alice Doe", "alice@example.com");
    gh.add_repo("alice", "app", true, &RepoSeed::small())
        .unwrap();
    let llm = ScriptedLlm::start().await.unwrap();
    let stack = stack_reaching_git(&gh, &llm).await.unwrap();
    with_logs(&stack, async {
        let alice = stack.signed_in_api("alice@example.com").await?;
        connect_github(&stack, &gh, &alice, "alice").await?;
        llm.on(EDIT_MARKER, edit_and_commit());
        let session: Value = alice
            .expect(
                Method::POST,
                "/api/sessions",
                Some(&json!({"title": "Fix the readme", "repo": {"full_name": "alice/app"}}).to_string()),
                201,
            )
            .await?;
        let id = session["id"].as_str().context("a session id")?.to_string();
        let branch = session["repo"]["branch"].as_str().context("a branch")?.to_string();
        let mut events = alice.events(&id, None).await?;
        alice.send(&id, &format!("{EDIT_MARKER} edit the readme")).await?;
        let seen = events
            .until(|body| matches!(body, EventBody::TurnFinished { .. }))
            .await?;
        let output = seen
            .iter()
            .find_map(|event| match &event.body {
                EventBody::ToolCallFinished { output, .. } => Some(output.clone()),
                _ => None,
            })
            .context("the bash call finished")?;
        assert!(output.contains(&branch), "on the session's branch: {output}");
        assert!(output.contains("Alice Doe <"), "committed as alice: {output}");
        assert!(output.contains("@users.noreply.github.com>"), "{output}");

        // The state arrives as events, and GET /repo has the latest.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut all = seen.clone();
        let mut states = repo_states(&seen);
        while !states.iter().any(|s| s.ahead == 1 && !s.dirty) {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "no state with the commit: {states:?}");
            let event = tokio::time::timeout_at(deadline, events.next_event()).await??;
            states.extend(repo_states(std::slice::from_ref(&event)));
            all.push(event);
        }
        assert!(states.iter().any(|s| s.phase == RepoPhase::Ready));
        let view: Value = alice
            .expect(Method::GET, &format!("/api/sessions/{id}/repo"), None, 200)
            .await?;
        assert_eq!(view["repo"]["full_name"], "alice/app");
        assert_eq!(view["state"]["ahead"], 1);
        assert_eq!(view["state"]["files"][0]["path"], "README.md");

        // The diff, computed in the sandbox.
        let diff: Value = alice
            .expect(Method::GET, &format!("/api/sessions/{id}/diff"), None, 200)
            .await?;
        assert_eq!(diff["base_branch"], "main");
        assert_eq!(diff["files"][0]["path"], "README.md");
        assert!(
            diff["files"][0]["patch"]
                .as_str()
                .unwrap_or_default()
                .contains(&format!("+{EDITED_LINE}")),
            "{diff}"
        );

        // The user pushes; the branch appears on the server with alice as author.
        let pushed = alice
            .raw(Method::POST, &format!("/api/sessions/{id}/push"), None)
            .await?;
        assert_eq!(pushed.status, 202, "{:?}", pushed.body);
        loop {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "not pushed: {states:?}");
            let event = tokio::time::timeout_at(deadline, events.next_event()).await??;
            let done = repo_states(std::slice::from_ref(&event)).iter().any(|s| s.pushed);
            all.push(event);
            if done {
                break;
            }
        }
        let author = pushed_author(&gh, "alice", "app", &branch)?;
        assert!(is_noreply_author(&author, "Alice Doe", "alice"), "{author}");

        // No token anywhere the sandbox or the session's viewers can read.
        let tokens: Vec<String> = gh.tokens().into_iter().map(|t| t.token).collect();
        assert!(!tokens.is_empty());
        let sandbox_id = alice.session(&id).await?.sandbox_id.context("a sandbox")?;
        let http = reqwest::Client::new();
        let inside: Value = http
            .post(format!("{}/v1/sandboxes/{sandbox_id}/exec?stream=false", stack.backend_url()))
            .bearer_auth(&stack.backend_token)
            .json(&json!({"command": "bash", "args": ["-c", "env; git config --list --show-origin; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'"]}))
            .send()
            .await?
            .json()
            .await?;
        let inside = inside.to_string();
        let all_events = format!("{all:?}");
        for token in &tokens {
            assert!(!inside.contains(token.as_str()), "a token in the sandbox's processes or config");
            assert!(!all_events.contains(token.as_str()), "a token in the session's events");
            assert!(
                files_containing(&stack.workspace(&sandbox_id), token.as_bytes()).is_empty(),
                "a token in the workspace"
            );
        }
        let helper = "credential.helper=cache --socket /run/nightshift/git-credential.sock";
        if tls_git {
            assert!(!inside.contains(helper), "{inside}");
            assert!(inside.contains("GIT_SSL_CAINFO=/run/nightshift/egress-ca.pem"), "{inside}");
        } else {
            assert!(inside.contains(helper), "{inside}");
        }
        Ok(())
    })
    .await;
}
