//! The repository task against a real git server (`git http-backend`, from the e2e
//! harness) with real git, and a stand-in for the Worker's credential route. The
//! commands run without a sandbox here (no wrapper); the sandbox is the e2e tests'.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use nightshift_e2e::git_server::{GitAccess, GitAuthorizer, GitDecision, GitServer, RepoSeed};
use nightshift_e2e::stack::files_containing;
use nightshift_protocol::repo::{CredentialRequest, GitAuthor, RepoPhase, RepoState, SessionRepo};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::*;

const SECRET: &str = "ghs_repo_test_secret_0123456789";
const RUNNER_TOKEN: &str = "runner-token-for-s1";

struct OnlyHello;

impl GitAuthorizer for OnlyHello {
    fn decide(&self, token: Option<&str>, owner: &str, repo: &str, _: GitAccess) -> GitDecision {
        match token {
            Some(SECRET) if owner == "octo" && repo == "hello" => GitDecision::Allow("octo".into()),
            Some(SECRET) => GitDecision::NotFound,
            _ => GitDecision::Unauthenticated,
        }
    }
}

/// The Worker's `git/credential` route as the runner sees it.
#[derive(Default)]
struct FakeWorker {
    asked: Mutex<Vec<CredentialRequest>>,
    revoked: Mutex<bool>,
    pull_requests: Mutex<Vec<serde_json::Value>>,
}

/// The Worker's `git/pull-request` route: records the request, answers a draft.
async fn pull_request_route(
    State(worker): State<Arc<FakeWorker>>,
    headers: HeaderMap,
    Json(request): Json<serde_json::Value>,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {RUNNER_TOKEN}"))
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let title = request["title"].as_str().unwrap_or_default().to_string();
    worker.pull_requests.lock().unwrap().push(request);
    Json(serde_json::json!({
        "number": 7,
        "url": "https://github.com/octo/hello/pull/7",
        "title": title,
        "state": "draft",
    }))
    .into_response()
}

async fn credential_route(
    State(worker): State<Arc<FakeWorker>>,
    headers: HeaderMap,
    Json(request): Json<CredentialRequest>,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {RUNNER_TOKEN}"))
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    worker.asked.lock().unwrap().push(request);
    if *worker.revoked.lock().unwrap() {
        let body = serde_json::json!({"error": {"code": "github_not_connected", "message": "reconnect GitHub"}});
        return (StatusCode::CONFLICT, Json(body)).into_response();
    }
    Json(serde_json::json!({
        "username": "x-access-token",
        "password": SECRET,
        "expires_at": 4_102_444_800_000i64,
    }))
    .into_response()
}

async fn fake_worker() -> (Arc<FakeWorker>, String, tokio::task::JoinHandle<()>) {
    let worker = Arc::new(FakeWorker::default());
    let app = axum::Router::new()
        .route(
            "/api/sessions/s1/git/credential",
            axum::routing::post(credential_route),
        )
        .route(
            "/api/sessions/s1/git/pull-request",
            axum::routing::post(pull_request_route),
        )
        .with_state(worker.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/sessions/s1", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (worker, url, task)
}

struct Fixture {
    dir: tempfile::TempDir,
    server: GitServer,
    worker: Arc<FakeWorker>,
    worker_url: String,
    _worker_task: tokio::task::JoinHandle<()>,
}

impl Fixture {
    async fn new() -> Fixture {
        let server = GitServer::start(Arc::new(OnlyHello)).await.unwrap();
        server
            .create_repo("octo", "hello", &RepoSeed::small())
            .unwrap();
        let (worker, worker_url, task) = fake_worker().await;
        let dir = tempfile::tempdir().unwrap();
        for sub in ["workspace", "sockets"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        Fixture {
            dir,
            server,
            worker,
            worker_url,
            _worker_task: task,
        }
    }

    fn workspace(&self) -> std::path::PathBuf {
        self.dir.path().join("workspace")
    }

    fn repo(&self) -> SessionRepo {
        SessionRepo {
            full_name: "octo/hello".into(),
            clone_url: self.server.repo_url("octo", "hello"),
            base_branch: "main".into(),
            branch: "nightshift/abcd1234-fix-it".into(),
            existing_branch: false,
            author: GitAuthor {
                name: "Owner Person".into(),
                email: "1+owner@users.noreply.github.com".into(),
            },
        }
    }

    fn git(&self) -> SandboxGit {
        SandboxGit {
            wrapper: Vec::new(),
            workspace_dir: self.workspace(),
            home: self.dir.path().display().to_string(),
        }
    }

    fn start(
        &self,
        shutdown: &CancellationToken,
    ) -> (
        watch::Sender<Option<SessionRepo>>,
        RepoHandle,
        watch::Receiver<Option<RepoState>>,
    ) {
        let socket = self.dir.path().join("sockets").join("git-credential.sock");
        let (_, token) = watch::channel(RUNNER_TOKEN.to_string());
        let settings = RepoSettings {
            git: self.git(),
            credential_socket: Some((socket.clone(), socket.display().to_string())),
            egress_socket: None,
            api: WorkerApi::new(self.worker_url.clone(), token).unwrap(),
        };
        let (repo_sender, repo) = watch::channel(None);
        let (handle, states) = start(settings, repo, None, shutdown.clone());
        (repo_sender, handle, states)
    }
}

/// Runs a git command in `dir` as the agent would (no runner settings), with the
/// output and whether it succeeded, bounded in time.
fn agent_git(dir: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut child = std::process::Command::new("timeout")
        .arg("20")
        .arg("git")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Adds `fix.txt` and commits it as the agent would, in the sandbox.
fn commit_a_fix(workspace: &Path) {
    std::fs::write(workspace.join("fix.txt"), "fixed\n").unwrap();
    assert!(agent_git(workspace, &["add", "fix.txt"], None).0);
    assert!(agent_git(workspace, &["commit", "-qm", "Fix"], None).0);
}

async fn ready_state(states: &mut watch::Receiver<Option<RepoState>>) -> RepoState {
    let state = tokio::time::timeout(
        Duration::from_secs(60),
        states.wait_for(|s| s.as_ref().is_some_and(|s| s.phase != RepoPhase::Cloning)),
    )
    .await
    .expect("the clone settled in time")
    .unwrap()
    .clone()
    .unwrap();
    assert_eq!(state.phase, RepoPhase::Ready, "{state:?}");
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_the_sessions_branch_commits_as_the_prompter_and_pushes_through_the_helper() {
    let fixture = Fixture::new().await;
    let shutdown = CancellationToken::new();
    let (repo_sender, handle, mut states) = fixture.start(&shutdown);
    assert_eq!(
        handle.push().await,
        Err("this session has no repository".into())
    );
    repo_sender.send_replace(Some(fixture.repo()));

    let state = ready_state(&mut states).await;
    assert_eq!(state.branch, "nightshift/abcd1234-fix-it");
    assert_eq!(
        (state.ahead, state.behind, state.dirty, state.pushed),
        (0, 0, false, false)
    );
    assert!(state.files.is_empty());
    let workspace = fixture.workspace();
    assert!(workspace.join("src/main.rs").is_file());
    // Cloning a repository needs no credential here until git is refused: the test
    // server refuses every anonymous read, so the helper was asked already.
    assert!(!fixture.worker.asked.lock().unwrap().is_empty());

    // The turn's prompter commits.
    let prompter = GitAuthor {
        name: "Prompting Member".into(),
        email: "7+member@users.noreply.github.com".into(),
    };
    handle
        .prepare_turn(Some(prompter), &CancellationToken::new())
        .await
        .unwrap();
    std::fs::write(workspace.join("NOTES.md"), "one\ntwo\n").unwrap();
    assert!(agent_git(&workspace, &["add", "NOTES.md"], None).0);
    let (committed, output) = agent_git(&workspace, &["commit", "-q", "-m", "Add notes"], None);
    assert!(committed, "{output}");
    handle.refresh();
    let state = tokio::time::timeout(
        Duration::from_secs(30),
        states.wait_for(|s| s.as_ref().is_some_and(|s| s.ahead == 1)),
    )
    .await
    .unwrap()
    .unwrap()
    .clone()
    .unwrap();
    assert_eq!(state.files.len(), 1, "{state:?}");
    assert_eq!(state.files[0].path, "NOTES.md");
    assert_eq!((state.files[0].additions, state.pushed), (2, false));

    // The push frame's path: the branch appears on the server, by the prompter.
    handle.push().await.unwrap();
    let bare = fixture.server.repo("octo", "hello");
    let pushed = bare.branch_head("nightshift/abcd1234-fix-it").unwrap();
    assert_eq!(
        bare.log(&pushed, "%an <%ae>|%cn")[0],
        "Prompting Member <7+member@users.noreply.github.com>|Prompting Member"
    );
    assert!(states.borrow().as_ref().unwrap().pushed);
    // The agent's own `git push` works the same way (the helper, no prompt).
    std::fs::write(workspace.join("NOTES.md"), "one\ntwo\nthree\n").unwrap();
    assert!(agent_git(&workspace, &["commit", "-qam", "More notes"], None).0);
    let (pushed_again, output) = agent_git(&workspace, &["push", "-q"], None);
    assert!(pushed_again, "{output}");

    // The helper answers for the session's repository only, at once.
    let asked_before = fixture.worker.asked.lock().unwrap().len();
    for (host, path) in [
        (
            fixture
                .server
                .url()
                .trim_start_matches("http://")
                .to_string(),
            "octo/other.git",
        ),
        ("github.com".to_string(), "octo/hello.git"),
    ] {
        let started = std::time::Instant::now();
        let request = format!("protocol=http\nhost={host}\npath={path}\n\n");
        let (given, output) = agent_git(&workspace, &["credential", "fill"], Some(&request));
        assert!(!given, "a credential for {host}/{path}: {output}");
        assert!(!output.contains(SECRET));
        assert!(output.contains("told us to quit"), "{output}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    assert_eq!(fixture.worker.asked.lock().unwrap().len(), asked_before);
    for asked in fixture.worker.asked.lock().unwrap().iter() {
        assert_eq!(asked.path, "octo/hello.git");
    }

    // Nothing of the credential was written into the workspace (nor its .git).
    assert_eq!(
        files_containing(fixture.dir.path(), SECRET.as_bytes()),
        Vec::<PathBuf>::new()
    );
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_runner_leaves_the_clone_and_its_work_alone() {
    let fixture = Fixture::new().await;
    let shutdown = CancellationToken::new();
    let (repo_sender, _handle, mut states) = fixture.start(&shutdown);
    repo_sender.send_replace(Some(fixture.repo()));
    ready_state(&mut states).await;
    let workspace = fixture.workspace();
    std::fs::write(workspace.join("work.txt"), "unsaved work\n").unwrap();
    shutdown.cancel();

    let again = CancellationToken::new();
    let (repo_sender, _handle, mut states) = fixture.start(&again);
    repo_sender.send_replace(Some(fixture.repo()));
    let state = ready_state(&mut states).await;
    assert!(state.dirty);
    assert_eq!(state.files[0].path, "work.txt");
    assert_eq!(
        std::fs::read_to_string(workspace.join("work.txt")).unwrap(),
        "unsaved work\n"
    );
    again.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_credential_fails_git_at_once_and_the_turn_says_why() {
    let fixture = Fixture::new().await;
    *fixture.worker.revoked.lock().unwrap() = true;
    let shutdown = CancellationToken::new();
    let (repo_sender, handle, mut states) = fixture.start(&shutdown);
    repo_sender.send_replace(Some(fixture.repo()));
    let started = std::time::Instant::now();
    let state = tokio::time::timeout(
        Duration::from_secs(30),
        states.wait_for(|s| s.as_ref().is_some_and(|s| s.phase == RepoPhase::Failed)),
    )
    .await
    .expect("the clone failed rather than waiting for a prompt")
    .unwrap()
    .clone()
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    let error = state.error.unwrap();
    assert!(error.contains("told us to quit"), "{error}");
    // The next turn tries again and says why it cannot start.
    let prepared = handle
        .prepare_turn(Some(fixture.repo().author), &CancellationToken::new())
        .await;
    assert!(prepared.is_err());
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pull_request_tool_pushes_the_branch_first_and_asks_the_worker() {
    let fixture = Fixture::new().await;
    let shutdown = CancellationToken::new();
    let (repo_sender, handle, mut states) = fixture.start(&shutdown);
    let arguments = serde_json::json!({"title": "Fix it", "body": "Because."});
    let without = pull_request_tool::run(&handle, &arguments).await;
    assert!(
        without.is_error && without.text.contains("no repository"),
        "{without:?}"
    );

    repo_sender.send_replace(Some(fixture.repo()));
    ready_state(&mut states).await;
    let workspace = fixture.workspace();
    commit_a_fix(&workspace);

    let output = pull_request_tool::run(&handle, &arguments).await;
    assert!(!output.is_error, "{output:?}");
    assert!(
        output.text.contains("#7") && output.text.contains("/pull/7"),
        "{output:?}"
    );
    let bare = fixture.server.repo("octo", "hello");
    let local = agent_git(&workspace, &["rev-parse", "HEAD"], None).1;
    assert_eq!(
        bare.branch_head("nightshift/abcd1234-fix-it").as_deref(),
        Some(local.trim())
    );
    assert_eq!(
        fixture.worker.pull_requests.lock().unwrap().clone(),
        vec![serde_json::json!({"title": "Fix it", "body": "Because.", "draft": null})]
    );
    let bad = pull_request_tool::run(&handle, &serde_json::json!({"title": " "})).await;
    assert!(bad.is_error);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_push_is_announced_until_one_succeeds() {
    let fixture = Fixture::new().await;
    let shutdown = CancellationToken::new();
    let (repo_sender, handle, mut states) = fixture.start(&shutdown);
    repo_sender.send_replace(Some(fixture.repo()));
    ready_state(&mut states).await;
    let workspace = fixture.workspace();
    commit_a_fix(&workspace);

    // The server declines the push (as a protected branch would).
    let hook = fixture
        .server
        .repo("octo", "hello")
        .0
        .join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'branch is protected' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let refused = handle.push().await.unwrap_err();
    assert!(refused.contains("branch is protected"), "{refused}");
    let state = states.borrow().clone().unwrap();
    assert!(!state.pushed);
    let said = state.push_error.expect("the failed push is in the state");
    assert!(said.contains("branch is protected"), "{said}");

    // A push that goes through clears it.
    std::fs::remove_file(&hook).unwrap();
    handle.push().await.unwrap();
    let state = states.borrow().clone().unwrap();
    assert!(state.pushed);
    assert_eq!(state.push_error, None);
    shutdown.cancel();
}
