//! Tests of the GitHub harness itself (no Worker): real `git` clones, fetches and
//! pushes against the harness's git server with the tokens the fake GitHub issues
//! (installation tokens narrowed to one repository, user tokens, expired ones, none),
//! the refresh and revocation of user tokens, pull requests with checks, the
//! pagination of a user's repositories, and the OpenAPI layer catching a malformed
//! request and a malformed answer.

use std::path::Path;
use std::time::Duration;

use nightshift_e2e::fake_github::{self, FakeGithub, GithubApp, now};
use nightshift_e2e::git_server::{self, RepoSeed};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// What a `git` command did.
struct GitRun {
    ok: bool,
    stderr: String,
}

/// Runs real `git` with no configuration but ours; with a token, git gets it from a
/// credential helper only after the server's 401 challenge, as it would in a sandbox.
async fn run_git(dir: &Path, token: Option<&str>, args: &[&str]) -> GitRun {
    let mut command = tokio::process::Command::new("git");
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Alice Example")
        .env("GIT_AUTHOR_EMAIL", "alice@example.com")
        .env("GIT_COMMITTER_NAME", "Alice Example")
        .env("GIT_COMMITTER_EMAIL", "alice@example.com")
        .kill_on_drop(true);
    if let Some(token) = token {
        command.env("HARNESS_TOKEN", token).args([
            "-c",
            "credential.helper=!f() { echo username=x-access-token; echo \"password=$HARNESS_TOKEN\"; }; f",
        ]);
    }
    command.args(args);
    let out = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("git finished within two minutes")
        .expect("git ran");
    GitRun {
        ok: out.status.success(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Alice owns three private repositories (`app` with a `feature` branch, `other`,
/// `tool`) and two public ones; Bob owns nothing and collaborates on nothing.
async fn world() -> FakeGithub {
    let gh = FakeGithub::start().await.expect("fake GitHub starts");
    gh.add_user("alice", "Alice Example", "alice@example.com");
    gh.add_user("bob", "Bob Example", "bob@example.com");
    let mut seed = RepoSeed::small();
    seed.branches.push("feature".to_string());
    gh.add_repo("alice", "app", true, &seed).unwrap();
    for (name, private) in [
        ("other", true),
        ("tool", true),
        ("site", false),
        ("zeta", false),
    ] {
        gh.add_repo("alice", name, private, &RepoSeed::small())
            .unwrap();
    }
    gh
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// An installation token for `alice/app` only, with these permissions.
async fn installation_token(
    gh: &FakeGithub,
    app: &GithubApp,
    id: u64,
    permissions: Value,
) -> String {
    let response = http()
        .post(format!(
            "{}/app/installations/{id}/access_tokens",
            gh.api_url()
        ))
        .bearer_auth(app.jwt(now()).unwrap())
        .header("accept", "application/vnd.github+json")
        .json(&json!({"repositories": ["app"], "permissions": permissions}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["token"].as_str().unwrap().to_string()
}

async fn installed_app(gh: &FakeGithub) -> (GithubApp, u64) {
    let app = gh.register_app(4242).unwrap();
    let id = gh.install_app(
        "alice",
        &["alice/app", "alice/other"],
        &[
            ("contents", "write"),
            ("pull_requests", "write"),
            ("metadata", "read"),
            ("checks", "read"),
        ],
    );
    (app, id)
}

/// Clones, commits one file on `branch` and pushes it.
async fn clone_commit_push(
    gh: &FakeGithub,
    token: &str,
    branch: &str,
) -> (tempfile::TempDir, GitRun) {
    let dir = tempfile::tempdir().unwrap();
    let url = gh.git().repo_url("alice", "app");
    let clone = run_git(dir.path(), Some(token), &["clone", "--quiet", &url, "work"]).await;
    assert!(clone.ok, "clone failed: {}", clone.stderr);
    let work = dir.path().join("work");
    std::fs::write(work.join("CHANGE.md"), format!("change on {branch}\n")).unwrap();
    assert!(
        run_git(&work, None, &["checkout", "--quiet", "-b", branch])
            .await
            .ok
    );
    assert!(run_git(&work, None, &["add", "CHANGE.md"]).await.ok);
    assert!(
        run_git(&work, None, &["commit", "--quiet", "-m", "Change it"])
            .await
            .ok
    );
    let push = run_git(&work, Some(token), &["push", "--quiet", "origin", branch]).await;
    (dir, push)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installation_token_reaches_its_one_repository_and_no_other() {
    let gh = world().await;
    let (app, id) = installed_app(&gh).await;
    let token = installation_token(&gh, &app, id, json!({"contents": "write"})).await;

    let (dir, push) = clone_commit_push(&gh, &token, "nightshift/one").await;
    assert!(push.ok, "push failed: {}", push.stderr);
    let head = gh.git().repo("alice", "app").branch_head("nightshift/one");
    assert!(head.is_some(), "the pushed branch is on the server");
    let authors = gh
        .git()
        .repo("alice", "app")
        .log("nightshift/one", "%an <%ae>");
    assert_eq!(authors[0], "Alice Example <alice@example.com>");

    // A fetch sees what another clone pushed.
    let (_other, push) = clone_commit_push(&gh, &token, "nightshift/two").await;
    assert!(push.ok, "second push failed: {}", push.stderr);
    let work = dir.path().join("work");
    let fetch = run_git(&work, Some(&token), &["fetch", "--quiet", "origin"]).await;
    assert!(fetch.ok, "fetch failed: {}", fetch.stderr);
    assert!(
        run_git(
            &work,
            None,
            &["rev-parse", "--verify", "origin/nightshift/two"]
        )
        .await
        .ok
    );

    // The installation has `alice/other`, but this token was narrowed to `app`.
    let url = gh.git().repo_url("alice", "other");
    let refused = run_git(
        dir.path(),
        Some(&token),
        &["clone", "--quiet", &url, "other"],
    )
    .await;
    assert!(!refused.ok);
    assert!(refused.stderr.contains("not found"), "{}", refused.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_installation_token_cannot_push() {
    let gh = world().await;
    let (app, id) = installed_app(&gh).await;
    let token = installation_token(&gh, &app, id, json!({"contents": "read"})).await;
    let (_dir, push) = clone_commit_push(&gh, &token, "nightshift/ro").await;
    assert!(!push.ok);
    assert!(push.stderr.contains("403"), "{}", push.stderr);
    assert_eq!(
        gh.git().repo("alice", "app").branch_head("nightshift/ro"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_is_refused_a_bad_jwt_or_more_than_it_was_granted() {
    let gh = world().await;
    let (app, id) = installed_app(&gh).await;
    let impostor = GithubApp::generate(4242).unwrap();
    let url = format!("{}/app/installations/{id}/access_tokens", gh.api_url());
    let forged = http()
        .post(&url)
        .bearer_auth(impostor.jwt(now()).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let greedy = http()
        .post(&url)
        .bearer_auth(app.jwt(now()).unwrap())
        .json(&json!({"permissions": {"administration": "write"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(greedy.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let elsewhere = http()
        .post(&url)
        .bearer_auth(app.jwt(now()).unwrap())
        .json(&json!({"repositories": ["tool"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(gh.tokens().is_empty(), "no token was issued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_tokens_follow_the_users_access() {
    let gh = world().await;
    let alice = gh.issue_user_token("alice", &["repo", "read:user"], 3600);
    let (_dir, push) = clone_commit_push(&gh, &alice.access_token, "alice/work").await;
    assert!(push.ok, "push failed: {}", push.stderr);

    // Bob sees nothing of a private repository he has no part in...
    let bob = gh.issue_user_token("bob", &["repo"], 3600);
    let dir = tempfile::tempdir().unwrap();
    let url = gh.git().repo_url("alice", "app");
    let refused = run_git(
        dir.path(),
        Some(&bob.access_token),
        &["clone", "--quiet", &url, "x"],
    )
    .await;
    assert!(!refused.ok);
    assert!(refused.stderr.contains("not found"), "{}", refused.stderr);

    // ...and as a reader he clones but cannot push.
    gh.add_collaborator("alice/app", "bob", false);
    let (_dir, push) = clone_commit_push(&gh, &bob.access_token, "bob/work").await;
    assert!(!push.ok);
    assert!(push.stderr.contains("403"), "{}", push.stderr);

    // Without the `repo` scope a private repository is out of reach.
    let narrow = gh.issue_user_token("alice", &["read:user"], 3600);
    let refused = run_git(
        dir.path(),
        Some(&narrow.access_token),
        &["clone", "--quiet", &url, "y"],
    )
    .await;
    assert!(
        !refused.ok,
        "a token without `repo` cloned a private repository"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_revoked_and_missing_credentials_get_the_basic_challenge() {
    let gh = world().await;
    let alice = gh.issue_user_token("alice", &["repo"], 3600);
    gh.expire(&alice.access_token);
    let dir = tempfile::tempdir().unwrap();
    let url = gh.git().repo_url("alice", "app");
    let refused = run_git(
        dir.path(),
        Some(&alice.access_token),
        &["clone", "--quiet", &url, "a"],
    )
    .await;
    assert!(!refused.ok);
    assert!(
        refused.stderr.contains("Authentication failed"),
        "{}",
        refused.stderr
    );

    let revoked = gh.issue_user_token("alice", &["repo"], 3600);
    gh.revoke(&revoked.access_token);
    let refused = run_git(
        dir.path(),
        Some(&revoked.access_token),
        &["clone", "--quiet", &url, "b"],
    )
    .await;
    assert!(!refused.ok);

    // No credentials and no helper: git cannot prompt, and fails.
    let refused = run_git(dir.path(), None, &["clone", "--quiet", &url, "c"]).await;
    assert!(!refused.ok);
    assert!(
        refused.stderr.contains("could not read Username"),
        "{}",
        refused.stderr
    );

    // What the server said: 401 with the Basic challenge, to a bare request and to
    // an expired token alike.
    let refs = format!("{url}/info/refs?service=git-upload-pack");
    for request in [
        http().get(&refs),
        http()
            .get(&refs)
            .basic_auth("x-access-token", Some(&alice.access_token)),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Basic"), "{challenge}");
    }
    // The same on the API: 401 `Bad credentials`.
    let response = http()
        .get(format!("{}/user", gh.api_url()))
        .bearer_auth(&alice.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "Bad credentials");
}

async fn refresh(gh: &FakeGithub, refresh_token: &str) -> Value {
    let response = http()
        .post(format!("{}/login/oauth/access_token", gh.api_url()))
        .header("accept", "application/json")
        .form(&[
            ("client_id", fake_github::CLIENT_ID),
            ("client_secret", fake_github::CLIENT_SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_user_token_is_refreshed_once_and_can_be_revoked() {
    let gh = world().await;
    let old = gh.issue_user_token("alice", &["repo", "user:email"], 30);
    let renewed = refresh(&gh, &old.refresh_token).await;
    let token = renewed["access_token"].as_str().unwrap().to_string();
    assert!(token.starts_with("ghu_"));
    assert!(
        renewed["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("ghr_")
    );
    assert_eq!(renewed["expires_in"], fake_github::USER_TOKEN_SECS);

    let me = http()
        .get(format!("{}/user", gh.api_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.headers()["x-oauth-scopes"], "repo, user:email");
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["login"], "alice");
    let emails: Value = http()
        .get(format!("{}/user/emails", gh.api_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(emails[0]["email"], "alice@example.com");

    // A refresh token is good once.
    let again = refresh(&gh, &old.refresh_token).await;
    assert_eq!(again["error"], "bad_refresh_token");

    // The app revokes the token; GitHub then calls it bad.
    let revoked = http()
        .delete(format!(
            "{}/applications/{}/token",
            gh.api_url(),
            fake_github::CLIENT_ID
        ))
        .basic_auth(fake_github::CLIENT_ID, Some(fake_github::CLIENT_SECRET))
        .json(&json!({"access_token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let me = http()
        .get(format!("{}/user", gh.api_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_is_created_updated_listed_by_head_and_has_checks() {
    let gh = world().await;
    let alice = gh.issue_user_token("alice", &["repo"], 3600);
    let (_dir, push) = clone_commit_push(&gh, &alice.access_token, "nightshift/pr").await;
    assert!(push.ok, "{}", push.stderr);
    let api = format!("{}/repos/alice/app", gh.api_url());

    let created = http()
        .post(format!("{api}/pulls"))
        .bearer_auth(&alice.access_token)
        .json(&json!({"title": "Change it", "head": "nightshift/pr", "base": "main", "body": "Why", "draft": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["number"], 1);
    assert_eq!(created["draft"], true);
    assert_eq!(created["user"]["login"], "alice");
    let pulls = gh.pulls();
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].author, "alice");

    // A second PR for the same head is refused, as on GitHub.
    let duplicate = http()
        .post(format!("{api}/pulls"))
        .bearer_auth(&alice.access_token)
        .json(&json!({"title": "Again", "head": "alice:nightshift/pr", "base": "main"}))
        .send()
        .await
        .unwrap();
    assert_eq!(duplicate.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let updated: Value = http()
        .patch(format!("{api}/pulls/1"))
        .bearer_auth(&alice.access_token)
        .json(&json!({"title": "Change it, better"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(updated["title"], "Change it, better");
    let fetched: Value = http()
        .get(format!("{api}/pulls/1"))
        .bearer_auth(&alice.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["title"], "Change it, better");

    let listed: Value = http()
        .get(format!("{api}/pulls?head=alice:nightshift/pr&state=open"))
        .bearer_auth(&alice.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let none: Value = http()
        .get(format!("{api}/pulls?head=alice:feature"))
        .bearer_auth(&alice.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(none, json!([]));

    let sha = created["head"]["sha"].as_str().unwrap();
    gh.add_check_run("alice/app", sha, "ci", "completed", Some("success"));
    let checks: Value = http()
        .get(format!("{api}/commits/nightshift%2Fpr/check-runs"))
        .bearer_auth(&alice.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(checks["total_count"], 1);
    assert_eq!(checks["check_runs"][0]["conclusion"], "success");

    // Bob, a reader, cannot open one.
    gh.add_collaborator("alice/app", "bob", false);
    let bob = gh.issue_user_token("bob", &["repo"], 3600);
    let refused = http()
        .post(format!("{api}/pulls"))
        .bearer_auth(&bob.access_token)
        .json(&json!({"title": "Mine", "head": "feature", "base": "main"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(gh.pulls().len(), 1);
}

/// The `rel="next"` target of a `Link` header.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(", ").find_map(|part| {
        let (url, rel) = part.split_once("; ")?;
        (rel == "rel=\"next\"").then(|| url.trim_matches(['<', '>']).to_string())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_repositories_come_in_pages_linked_by_the_link_header() {
    let gh = world().await;
    gh.add_user("carol", "Carol", "carol@example.com");
    gh.add_repo("carol", "shared", true, &RepoSeed::small())
        .unwrap();
    gh.add_collaborator("carol/shared", "alice", true);
    let alice = gh.issue_user_token("alice", &["repo"], 3600);
    let mut url = Some(format!("{}/user/repos?per_page=2", gh.api_url()));
    let mut names = Vec::new();
    let mut pages = 0;
    while let Some(next) = url {
        let response = http()
            .get(&next)
            .bearer_auth(&alice.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        url = next_link(response.headers());
        let page: Vec<Value> = response.json().await.unwrap();
        assert!(page.len() <= 2);
        names.extend(
            page.iter()
                .map(|r| r["full_name"].as_str().unwrap().to_string()),
        );
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(
        names,
        [
            "alice/app",
            "alice/other",
            "alice/site",
            "alice/tool",
            "alice/zeta",
            "carol/shared"
        ]
    );

    // Without `repo`, only public repositories are listed.
    let public = gh.issue_user_token("alice", &["read:user"], 3600);
    let listed: Vec<Value> = http()
        .get(format!("{}/user/repos", gh.api_url()))
        .bearer_auth(&public.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = listed
        .iter()
        .map(|r| r["full_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice/site", "alice/zeta"]);

    let branches: Vec<Value> = http()
        .get(format!("{}/repos/alice/app/branches", gh.api_url()))
        .bearer_auth(&alice.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = branches
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["feature", "main"]);
    let main: Value = http()
        .get(format!("{}/repos/alice/app/branches/main", gh.api_url()))
        .bearer_auth(&alice.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(main["commit"]["commit"]["message"], "Add the main program");
    let repo: Value = http()
        .get(format!("{}/repos/alice/app", gh.api_url()))
        .bearer_auth(&alice.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(repo["default_branch"], "main");
    assert_eq!(repo["clone_url"], gh.git().repo_url("alice", "app"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_of_the_wrong_shape_is_caught_and_changes_nothing() {
    let gh = world().await;
    let alice = gh.issue_user_token("alice", &["repo"], 3600);
    let response = http()
        .post(format!("{}/repos/alice/app/pulls", gh.api_url()))
        .bearer_auth(&alice.access_token)
        .json(&json!({"title": 5, "head": "feature", "base": "main"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let violations = gh.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].contains("the request violates"),
        "{}",
        violations[0]
    );
    assert!(violations[0].contains("/title"), "{}", violations[0]);
    assert!(gh.pulls().is_empty(), "the handler never ran");

    // So is a query parameter of the wrong type...
    let response = http()
        .get(format!("{}/user/repos?per_page=many", gh.api_url()))
        .bearer_auth(&alice.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let violations = gh.take_violations();
    assert!(
        violations[0].contains("`per_page` is not an integer"),
        "{violations:?}"
    );
    // ...or out of GitHub's enumeration.
    let response = http()
        .get(format!(
            "{}/repos/alice/app/pulls?state=merged",
            gh.api_url()
        ))
        .bearer_auth(&alice.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let violations = gh.take_violations();
    assert!(violations[0].contains("`state`"), "{violations:?}");

    // An operation GitHub does not have is caught too.
    let response = http()
        .get(format!("{}/repos/alice/app/pullz", gh.api_url()))
        .bearer_auth(&alice.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(gh.take_violations()[0].contains("no such operation"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_answer_of_the_fake_is_caught() {
    let gh = world().await;
    let alice = gh.issue_user_token("alice", &["repo"], 3600);
    gh.corrupt_next_response(|body| body["id"] = json!("not a number"));
    let response = http()
        .get(format!("{}/repos/alice/app", gh.api_url()))
        .bearer_auth(&alice.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let violations = gh.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].contains("the response violates"),
        "{}",
        violations[0]
    );
    assert!(violations[0].contains("/id"), "{}", violations[0]);

    gh.corrupt_next_response(|body| {
        body.as_object_mut().unwrap().remove("login");
    });
    let response = http()
        .get(format!("{}/user", gh.api_url()))
        .bearer_auth(&alice.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(gh.take_violations().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_large_repository_is_cached_and_clones() {
    let source = tokio::task::spawn_blocking(git_server::large_repo)
        .await
        .unwrap()
        .expect("the large repository is made");
    let gh = world().await;
    gh.add_repo_from("alice", "large", &source).unwrap();
    let alice = gh.issue_user_token("alice", &["repo"], 3600);
    let dir = tempfile::tempdir().unwrap();
    let url = gh.git().repo_url("alice", "large");
    let started = std::time::Instant::now();
    let clone = run_git(
        dir.path(),
        Some(&alice.access_token),
        &["clone", "--quiet", &url, "large"],
    )
    .await;
    assert!(clone.ok, "{}", clone.stderr);
    eprintln!("clone of the large repository: {:?}", started.elapsed());
    let files = git_server::git(Some(&dir.path().join("large")), &["ls-files"], &[]).unwrap();
    assert_eq!(files.lines().count(), git_server::LARGE_FILES);
    let commits = git_server::git(
        Some(&dir.path().join("large")),
        &["rev-list", "--count", "HEAD"],
        &[],
    )
    .unwrap();
    assert_eq!(commits.trim(), git_server::LARGE_COMMITS.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_fakes_github_answers_are_held_to_the_description_too() {
    use base64::Engine;
    use nightshift_e2e::fake_oauth::{self, FakeOauth, FakeUser};
    use sha2::Digest;

    let oauth = FakeOauth::start().await.unwrap();
    oauth.sign_in_as(FakeUser::verified("77", "dana@example.com", "Dana"));
    let verifier = "a-verifier-long-enough-for-pkce-0123456789abcdef";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let redirect = "http://127.0.0.1:1/callback";
    let authorized = no_redirects
        .get(format!("{}/login/oauth/authorize", oauth.url()))
        .query(&[
            ("client_id", fake_oauth::CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", redirect),
            ("state", "s"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(authorized.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    let token: Value = http()
        .post(format!("{}/login/oauth/access_token", oauth.url()))
        .form(&[
            ("client_id", fake_oauth::CLIENT_ID),
            ("client_secret", fake_oauth::CLIENT_SECRET),
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap();
    for path in ["/user", "/user/emails"] {
        let response = http()
            .get(format!("{}{path}", oauth.url()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let me: Value = http()
        .get(format!("{}/user", oauth.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (me["id"].as_u64(), me["login"].as_str()),
        (Some(77), Some("dana"))
    );

    // A refusal is GitHub's `basic-error`, and passes.
    let bad = http()
        .get(format!("{}/user", oauth.url()))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert!(oauth.take_violations().is_empty());

    // Its layer catches a malformed answer, like the fake GitHub's.
    oauth.corrupt_next_response(|emails| emails[0]["verified"] = json!("yes"));
    let spoiled = http()
        .get(format!("{}/user/emails", oauth.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(spoiled.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let violations = oauth.take_violations();
    assert!(violations[0].contains("/0/verified"), "{violations:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_git_server_serves_only_the_smart_protocol_to_a_token_in_the_password() {
    let gh = world().await;
    let alice = gh.issue_user_token("alice", &["repo"], 3600);
    let base = gh.git().repo_url("alice", "app");
    let get = |path: String, user: &str, password: &str| {
        http()
            .get(format!("{base}{path}"))
            .basic_auth(user, Some(password))
            .send()
    };
    // The smart protocol's advertisement works with the token...
    let ok = get(
        "/info/refs?service=git-upload-pack".into(),
        "x-access-token",
        &alice.access_token,
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    // ...but no file of the repository is served as it lies (no dumb HTTP).
    for path in [
        "/HEAD",
        "/config",
        "/info/refs",
        "/objects/info/packs",
        "/hooks/pre-receive",
    ] {
        let response = get(path.into(), "x-access-token", &alice.access_token)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // The token counts only as the password: in the username, or as a bearer, it is
    // no credential at all.
    let as_user = get(
        "/info/refs?service=git-upload-pack".into(),
        &alice.access_token,
        "",
    )
    .await
    .unwrap();
    assert_eq!(as_user.status(), StatusCode::UNAUTHORIZED);
    let bearer = http()
        .get(format!("{base}/info/refs?service=git-upload-pack"))
        .bearer_auth(&alice.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::UNAUTHORIZED);
    // A path that climbs out of the repository (sent as is, not normalized) is not a
    // repository.
    let climb = format!(
        "{}/alice/..%2Falice/app.git/info/refs?service=git-upload-pack",
        gh.git().url()
    );
    let response = http()
        .get(climb)
        .basic_auth("x-access-token", Some(&alice.access_token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
