//! Repo-aware sessions, the Worker's GitHub side, on the real stack with the fake
//! GitHub (`e2e/src/fake_github.rs`, every exchange validated against GitHub's
//! OpenAPI description): connecting GitHub for repository access after a sign-in
//! that asked for none, the repository picker's lists, the team's allow-list, a
//! session created on a repository (its branch, base and list columns), and what an
//! attacker tries: a repository they cannot push to or cannot see, a token expiring
//! or revoked, tokens leaking into the stack's files or answers; git credentials for
//! the runner (an App installation token narrowed to the repository, refused for
//! other repositories and hosts and while a user who cannot push prompts); pull
//! requests opened and updated as the user, with their checks.

use nightshift_e2e::client::Api;
use nightshift_e2e::fake_github::FakeGithub;
use nightshift_e2e::git_server::RepoSeed;
use nightshift_e2e::stack::{Stack, StackOptions, files_containing, with_logs};
use reqwest::Method;
use serde_json::{Value, json};

/// The fake GitHub with alice (owner of the private `alice/app` and `alice/tools`),
/// bob (who may read `alice/app` but not push) and carol (who sees nothing of
/// alice's).
async fn github() -> FakeGithub {
    let gh = FakeGithub::start().await.unwrap();
    gh.add_user("alice", "Alice Doe", "alice@example.com");
    gh.add_user("bob", "Bob Roe", "bob@example.com");
    gh.add_user("carol", "Carol Poe", "carol@example.com");
    let mut seed = RepoSeed::small();
    seed.branches = vec!["feature/old".to_string()];
    gh.add_repo("alice", "app", true, &seed).unwrap();
    gh.add_repo("alice", "tools", true, &RepoSeed::small())
        .unwrap();
    gh.add_collaborator("alice/app", "bob", false);
    gh
}

async fn stack(gh: &FakeGithub) -> Stack {
    Stack::start(StackOptions {
        worker_vars: gh.worker_vars(),
        ..StackOptions::default()
    })
    .await
    .unwrap()
}

/// Runs `/auth/github/connect` for `api`'s user, consenting as `login` on the fake;
/// answers where the browser lands.
async fn connect(stack: &Stack, gh: &FakeGithub, api: &Api, login: &str) -> anyhow::Result<String> {
    gh.connect(&stack.worker_url(), api, login, "/sessions/new")
        .await
}

fn repo_session(full_name: &str, extra: Value) -> String {
    let mut repo = json!({ "full_name": full_name });
    if let (Some(repo), Some(extra)) = (repo.as_object_mut(), extra.as_object()) {
        repo.extend(extra.clone());
    }
    json!({ "title": "Fix the login page", "repo": repo }).to_string()
}

#[tokio::test]
async fn connecting_github_lists_repositories_and_starts_a_session_on_one() {
    let gh = github().await;
    let stack = stack(&gh).await;
    with_logs(&stack, async {
        let alice = stack.signed_in_api("alice@example.com").await?;
        let bob = stack.signed_in_member(&alice, "bob@example.com").await?;

        // Not connected yet: the app is told where to connect, and a session on a
        // repository is refused without a write.
        let status: Value = alice.expect(Method::GET, "/api/github", None, 200).await?;
        assert_eq!(status["connected"], false);
        assert_eq!(status["connect_url"], "/auth/github/connect");
        let refused = alice
            .raw(
                Method::POST,
                "/api/sessions",
                Some(&repo_session("alice/app", json!({}))),
            )
            .await?;
        assert_eq!(refused.status, 409, "{:?}", refused.body);
        assert_eq!(refused.error_code(), Some("github_not_connected"));
        assert!(alice.sessions().await?.is_empty(), "nothing was written");

        // Connecting asks GitHub for repository access (an OAuth App's `repo`), and
        // lands where it started.
        assert_eq!(
            connect(&stack, &gh, &alice, "alice").await?,
            "/sessions/new"
        );
        let asked = gh.authorize_requests().pop().unwrap();
        assert_eq!(asked["scope"], "repo");
        assert_eq!(asked["code_challenge_method"], "S256");
        let status: Value = alice.expect(Method::GET, "/api/github", None, 200).await?;
        assert_eq!(status["connected"], true);
        assert_eq!(status["login"], "alice");

        // The picker's lists come from GitHub with alice's own token.
        let repos: Value = alice
            .expect(Method::GET, "/api/github/repos", None, 200)
            .await?;
        let names: Vec<&str> = repos["repos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["full_name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["alice/app", "alice/tools"]);
        assert_eq!(repos["repos"][0]["can_push"], true);
        assert_eq!(repos["repos"][0]["private"], true);
        let filtered: Value = alice
            .expect(Method::GET, "/api/github/repos?q=TOO", None, 200)
            .await?;
        assert_eq!(filtered["repos"].as_array().unwrap().len(), 1);
        let branches: Value = alice
            .expect(
                Method::GET,
                "/api/github/repos/alice/app/branches",
                None,
                200,
            )
            .await?;
        assert_eq!(branches["default_branch"], "main");
        assert_eq!(branches["branches"], json!(["feature/old", "main"]));

        // The team's allow-list narrows what members may pick; entries are checked.
        let bad = alice
            .raw(
                Method::PUT,
                "/api/admin/github",
                Some(r#"{"allowed_repos":["alice/../x"],"draft_pull_requests":true}"#),
            )
            .await?;
        assert_eq!(bad.status, 400);
        assert_eq!(bad.error_code(), Some("invalid_request"));
        let forbidden = bob
            .raw(
                Method::PUT,
                "/api/admin/github",
                Some(r#"{"allowed_repos":[]}"#),
            )
            .await?;
        assert_eq!(forbidden.status, 403);
        let settings: Value = alice
            .expect(
                Method::PUT,
                "/api/admin/github",
                Some(r#"{"allowed_repos":["alice/tools"],"draft_pull_requests":false}"#),
                200,
            )
            .await?;
        assert_eq!(settings["draft_pull_requests"], false);
        let repos: Value = alice
            .expect(Method::GET, "/api/github/repos", None, 200)
            .await?;
        assert_eq!(repos["repos"].as_array().unwrap().len(), 1);
        let refused = alice
            .raw(
                Method::POST,
                "/api/sessions",
                Some(&repo_session("alice/app", json!({}))),
            )
            .await?;
        assert_eq!(refused.status, 403);
        assert_eq!(refused.error_code(), Some("repo_not_allowed"));
        alice
            .expect::<Value>(
                Method::PUT,
                "/api/admin/github",
                Some(r#"{"allowed_repos":["alice/*"]}"#),
                200,
            )
            .await?;
        let settings: Value = alice
            .expect(Method::GET, "/api/admin/github", None, 200)
            .await?;
        assert_eq!(
            settings,
            json!({"allowed_repos": ["alice/*"], "draft_pull_requests": true})
        );

        // Bad choices are refused before anything is written.
        for (extra, code) in [
            (json!({"base_branch": "nope"}), "invalid_request"),
            (json!({"base_branch": "-x"}), "invalid_request"),
            (json!({"branch": "feature/none"}), "invalid_request"),
            (
                json!({"branch": "feature/old", "pull_request": 1}),
                "invalid_request",
            ),
            (json!({"unknown": 1}), "invalid_json"),
        ] {
            let answer = alice
                .raw(
                    Method::POST,
                    "/api/sessions",
                    Some(&repo_session("alice/app", extra.clone())),
                )
                .await?;
            assert_eq!(
                answer.error_code(),
                Some(code),
                "{extra}: {:?}",
                answer.body
            );
        }
        assert!(alice.sessions().await?.is_empty(), "nothing was written");

        // A session on alice/app: its own branch named from its id and title, the
        // default branch as base, in the list.
        let created: Value = alice
            .expect(
                Method::POST,
                "/api/sessions",
                Some(&repo_session("alice/app", json!({}))),
                201,
            )
            .await?;
        let id = created["id"].as_str().unwrap().to_string();
        let short: String = id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect::<String>()
            .to_ascii_lowercase();
        assert_eq!(
            created["repo"],
            json!({
                "full_name": "alice/app",
                "branch": format!("nightshift/{short}-fix-the-login-page"),
                "base_branch": "main",
            })
        );
        let listed = alice.sessions().await?;
        assert_eq!(
            listed[0].repo.as_ref().map(|r| r.full_name.as_str()),
            Some("alice/app")
        );
        // Continuing an existing branch works on that branch.
        let continued: Value = alice
            .expect(
                Method::POST,
                "/api/sessions",
                Some(&repo_session("alice/app", json!({"branch": "feature/old"}))),
                201,
            )
            .await?;
        assert_eq!(continued["repo"]["branch"], "feature/old");

        // Bob, connected, may read alice/app but not push: no session on it; carol
        // sees nothing of it, and gets the same answer as for one that does not exist.
        connect(&stack, &gh, &bob, "bob").await?;
        let carol = stack.signed_in_member(&alice, "carol@example.com").await?;
        connect(&stack, &gh, &carol, "carol").await?;
        for (who, name) in [
            (&bob, "alice/app"),
            (&carol, "alice/app"),
            (&carol, "alice/ghost"),
        ] {
            let answer = who
                .raw(
                    Method::POST,
                    "/api/sessions",
                    Some(&repo_session(name, json!({}))),
                )
                .await?;
            assert_eq!(answer.status, 403, "{name}: {:?}", answer.body);
            assert_eq!(answer.error_code(), Some("repo_not_allowed"));
        }
        // Bob cannot connect alice's GitHub account to himself.
        let landed = connect(&stack, &gh, &bob, "alice").await?;
        assert_eq!(landed, "/signin?error=github_account_mismatch");

        // No token the fake issued is stored in plain text anywhere in the stack.
        for issued in gh.tokens() {
            let leaks = files_containing(stack.dir.path(), issued.token.as_bytes());
            assert!(leaks.is_empty(), "a GitHub token in {leaks:?}");
        }
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn an_expired_token_is_refreshed_and_a_revoked_one_asks_to_reconnect() {
    let gh = github().await;
    let stack = stack(&gh).await;
    with_logs(&stack, async {
        let alice = stack.signed_in_api("alice@example.com").await?;
        connect(&stack, &gh, &alice, "alice").await?;
        let first: Vec<String> = gh.tokens().into_iter().map(|t| t.token).collect();

        // GitHub says the token expired before its time: the Worker renews it with
        // the refresh token and the caller notices nothing.
        for token in &first {
            gh.expire(token);
        }
        let repos = alice.raw(Method::GET, "/api/github/repos", None).await?;
        assert_eq!(repos.status, 200, "{:?}", repos.body);
        assert!(gh.tokens().len() > first.len(), "a new token was issued");

        // A token about to expire is renewed before it is used.
        gh.set_user_token_secs(60);
        for token in gh.tokens() {
            gh.expire(&token.token);
        }
        alice
            .expect::<Value>(Method::GET, "/api/github/repos", None, 200)
            .await?;
        let before = gh.tokens().len();
        alice
            .expect::<Value>(Method::GET, "/api/github/repos", None, 200)
            .await?;
        assert!(
            gh.tokens().len() > before,
            "the short-lived token was renewed early"
        );

        // Revoked on github.com: a clear 409 asking to reconnect, never a token.
        gh.revoke_authorization("alice");
        let answer = alice.raw(Method::GET, "/api/github/repos", None).await?;
        assert_eq!(answer.status, 409, "{:?}", answer.body);
        assert_eq!(answer.error_code(), Some("github_not_connected"));
        let text = answer.body.to_string();
        for issued in gh.tokens() {
            assert!(!text.contains(&issued.token), "a token in {text}");
        }
        let status: Value = alice.expect(Method::GET, "/api/github", None, 200).await?;
        assert_eq!(status["connected"], false);
        // Reconnecting brings it back.
        connect(&stack, &gh, &alice, "alice").await?;
        alice
            .expect::<Value>(Method::GET, "/api/github/repos", None, 200)
            .await?;

        // A refresh token past its own lifetime (GitHub says it in
        // `refresh_token_expires_in`) is not even tried: a refused token asks to
        // reconnect at once.
        gh.set_refresh_token_secs(1);
        connect(&stack, &gh, &alice, "alice").await?;
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        for token in gh.tokens() {
            gh.expire(&token.token);
        }
        let refreshes = gh.refresh_requests();
        let answer = alice.raw(Method::GET, "/api/github/repos", None).await?;
        assert_eq!(answer.status, 409, "{:?}", answer.body);
        assert_eq!(answer.error_code(), Some("github_not_connected"));
        assert_eq!(
            gh.refresh_requests(),
            refreshes,
            "a dead refresh token was tried"
        );
        Ok(())
    })
    .await;
}

/// Asks for a git credential as the session's runner would.
async fn credential(
    stack: &Stack,
    session_id: &str,
    token: &str,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/api/sessions/{session_id}/git/credential",
            stack.worker_url()
        ))
        .bearer_auth(token)
        .json(&body)
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Waits until the session's runner wrote its config (its token is in it).
async fn runner_token(stack: &Stack, session_id: &str) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + nightshift_e2e::WAIT;
    loop {
        if let Ok(token) = stack.runner_token(session_id) {
            return Ok(token);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no runner token for {session_id}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn git_credentials_are_narrow_per_prompter_and_only_for_the_sessions_repository() {
    use nightshift_e2e::scripted_llm::{Script, ScriptedLlm, Step};
    let gh = github().await;
    // Carol may read alice/app, not push to it.
    gh.add_collaborator("alice/app", "carol", false);
    let app = gh.register_app(4242).unwrap();
    gh.install_app(
        "alice",
        &["alice/app", "alice/tools"],
        &[
            ("contents", "write"),
            ("pull_requests", "write"),
            ("metadata", "read"),
            ("checks", "read"),
        ],
    );
    let llm = ScriptedLlm::start().await.unwrap();
    let mut worker_vars = gh.worker_vars();
    worker_vars.push(("GITHUB_APP_ID".into(), "4242".into()));
    // One line, as secrets set through an env file or a dashboard arrive.
    worker_vars.push((
        "GITHUB_APP_PRIVATE_KEY".into(),
        app.private_key_pem.trim().replace('\n', "\\n"),
    ));
    let stack = Stack::start(StackOptions {
        llm_base_url: Some(llm.base_url()),
        worker_vars,
    })
    .await
    .unwrap();
    with_logs(&stack, async {
        let alice = stack.signed_in_api("alice@example.com").await?;
        let carol = stack.signed_in_member(&alice, "carol@example.com").await?;
        // With a GitHub App, connecting asks for no scope.
        connect(&stack, &gh, &alice, "alice").await?;
        let asked = gh.authorize_requests().pop().unwrap();
        assert_eq!(asked.get("scope").map_or("", String::as_str), "");
        connect(&stack, &gh, &carol, "carol").await?;
        let session: Value = alice
            .expect(
                Method::POST,
                "/api/sessions",
                Some(&repo_session("alice/app", json!({}))),
                201,
            )
            .await?;
        let id = session["id"].as_str().unwrap().to_string();
        let token = runner_token(&stack, &id).await?;
        let git_url = url::Url::parse(&gh.git().url())?;
        let host = format!(
            "{}:{}",
            git_url.host_str().unwrap(),
            git_url.port().unwrap()
        );
        let asked = json!({"protocol": "http", "host": host, "path": "alice/app.git"});

        // The session's repository: an installation token for that repository only,
        // with contents and pull requests write.
        let (status, answer) = credential(&stack, &id, &token, asked.clone()).await?;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["username"], "x-access-token");
        let password = answer["password"].as_str().unwrap().to_string();
        let issued = gh
            .tokens()
            .into_iter()
            .find(|t| t.token == password)
            .expect("a token the fake issued");
        match issued.grant {
            nightshift_e2e::fake_github::Grant::Installation {
                repositories,
                permissions,
                ..
            } => {
                assert_eq!(repositories, Some(vec!["alice/app".to_string()]));
                assert_eq!(
                    permissions.get("contents").map(String::as_str),
                    Some("write")
                );
                assert_eq!(permissions.get("checks"), None, "nothing more than asked");
            }
            other => panic!("not an installation token: {other:?}"),
        }
        assert!(answer["expires_at"].as_i64().unwrap() > 0);

        // Another repository, another host, another scheme, a path with more in it,
        // and a body git would not send: refused.
        for body in [
            json!({"protocol": "http", "host": host, "path": "alice/tools.git"}),
            json!({"protocol": "http", "host": "github.com", "path": "alice/app.git"}),
            json!({"protocol": "https", "host": host, "path": "alice/app.git"}),
            json!({"protocol": "http", "host": host, "path": "alice/app.git/../tools"}),
        ] {
            let (status, answer) = credential(&stack, &id, &token, body.clone()).await?;
            assert_eq!(status, 403, "{body}: {answer}");
            assert!(answer["error"]["message"].is_string());
        }
        let (status, _) = credential(
            &stack,
            &id,
            &token,
            json!({"protocol": "http", "host": host, "path": "alice/app.git", "password": "x"}),
        )
        .await?;
        assert_eq!(status, 400);
        // A user's own credentials are no runner token.
        let as_user = alice
            .raw(
                Method::POST,
                &format!("/api/sessions/{id}/git/credential"),
                Some(&asked.to_string()),
            )
            .await?;
        assert!(matches!(as_user.status, 401 | 403), "{:?}", as_user.body);

        // Carol may read alice/app but not push. While her prompt's turn runs, the
        // session's git gets nothing: she cannot push through alice's session.
        alice
            .share(&id, &carol.user_id().await?, "collaborator")
            .await?;
        llm.on(
            "carol-slow",
            Script::new(vec![Step::slow_text(
                "w",
                60,
                std::time::Duration::from_millis(100),
            )]),
        );
        carol.send(&id, "carol-slow").await?;
        alice.wait_status(&id, "running").await?;
        let (status, answer) = credential(&stack, &id, &token, asked.clone()).await?;
        assert_eq!(status, 403, "{answer}");
        assert_eq!(answer["error"]["code"], "repo_not_allowed");
        alice.wait_settled(&id).await?;
        let (status, _) = credential(&stack, &id, &token, asked.clone()).await?;
        assert_eq!(status, 200, "alice's access again once carol's turn ended");

        // Alice's GitHub token expires mid-session (GitHub says so before its
        // time): the next credential request renews it and git notices nothing.
        let before = gh.tokens().len();
        for issued in gh.tokens() {
            if matches!(&issued.grant, nightshift_e2e::fake_github::Grant::User { login, .. } if login == "alice")
            {
                gh.expire(&issued.token);
            }
        }
        let (status, answer) = credential(&stack, &id, &token, asked.clone()).await?;
        assert_eq!(status, 200, "{answer}");
        assert!(gh.tokens().len() > before + 1, "a renewed user token and a new credential");

        // Pull requests. The session's own branch is not on the server yet: GitHub
        // cannot open one, and says why.
        let early = alice
            .raw(
                Method::POST,
                &format!("/api/sessions/{id}/pull-request"),
                Some(r#"{"title":"Too early"}"#),
            )
            .await?;
        assert_eq!(early.status, 409, "{:?}", early.body);
        assert_eq!(early.error_code(), Some("conflict"));
        // A session continuing feature/old (on the server): carol, a collaborator
        // without push access, cannot open its pull request; alice can, and GitHub
        // shows her as its author, a draft by the team's default.
        let cont: Value = alice
            .expect(
                Method::POST,
                "/api/sessions",
                Some(&repo_session("alice/app", json!({"branch": "feature/old"}))),
                201,
            )
            .await?;
        let cont_id = cont["id"].as_str().unwrap().to_string();
        alice
            .share(&cont_id, &carol.user_id().await?, "collaborator")
            .await?;
        let path = format!("/api/sessions/{cont_id}/pull-request");
        let refused = carol
            .raw(Method::POST, &path, Some(r#"{"title":"Carol's"}"#))
            .await?;
        assert_eq!(refused.status, 403, "{:?}", refused.body);
        assert_eq!(refused.error_code(), Some("repo_not_allowed"));
        let untitled = alice.raw(Method::POST, &path, Some("{}")).await?;
        assert_eq!(untitled.error_code(), Some("invalid_request"));
        let opened: Value = alice
            .expect(
                Method::POST,
                &path,
                Some(r#"{"title":"Fix the login page","body":"What changed"}"#),
                200,
            )
            .await?;
        assert_eq!(opened["number"], 1);
        assert_eq!(opened["state"], "draft");
        assert_eq!(opened["author"], "alice");
        let pulls = gh.pulls();
        assert_eq!(pulls.len(), 1);
        assert_eq!(
            (
                pulls[0].author.as_str(),
                pulls[0].head.as_str(),
                pulls[0].base.as_str()
            ),
            ("alice", "feature/old", "main")
        );
        assert!(pulls[0].draft);
        // The agent's tool (runner token) updates the same pull request; its checks
        // come along.
        let sha = gh
            .git()
            .repo("alice", "app")
            .branch_head("feature/old")
            .unwrap();
        gh.add_check_run("alice/app", &sha, "ci", "completed", Some("success"));
        gh.add_check_run("alice/app", &sha, "lint", "in_progress", None);
        let cont_token = runner_token(&stack, &cont_id).await?;
        let response = reqwest::Client::new()
            .post(format!(
                "{}/api/sessions/{cont_id}/git/pull-request",
                stack.worker_url()
            ))
            .bearer_auth(&cont_token)
            .json(&json!({"title": "Fix the login page, take two"}))
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 200);
        let updated: Value = response.json().await?;
        assert_eq!(updated["number"], 1);
        assert_eq!(updated["title"], "Fix the login page, take two");
        assert_eq!(
            updated["checks"],
            json!({"total": 2, "pending": 1, "success": 1, "failure": 0})
        );
        assert_eq!(gh.pulls().len(), 1, "updated, not opened again");
        // The repository view, the list and the event stream show it.
        let view: Value = carol
            .expect(
                Method::GET,
                &format!("/api/sessions/{cont_id}/repo"),
                None,
                200,
            )
            .await?;
        assert_eq!(view["repo"]["branch"], "feature/old");
        assert_eq!(view["pull_request"]["number"], 1);
        let listed = alice.session(&cont_id).await?;
        let summary = listed.repo.unwrap().pull_request.unwrap();
        assert_eq!(summary.number, 1);
        alice
            .history_until(&cont_id, |events| {
                events.iter().any(|e| {
                    matches!(
                        e.body,
                        nightshift_protocol::events::EventBody::PullRequestUpdated { .. }
                    )
                })
            })
            .await?;

        // Alice revokes Nightshift on GitHub: a clear 409 and an event asking her
        // to reconnect, with no token anywhere in it.
        gh.revoke_authorization("alice");
        let (status, answer) = credential(&stack, &id, &token, asked.clone()).await?;
        assert_eq!(status, 409, "{answer}");
        assert_eq!(answer["error"]["code"], "github_not_connected");
        let alice_id = alice.user_id().await?;
        let events = alice
            .history_until(&id, |events| {
                events.iter().any(|e| {
                    matches!(
                        e.body,
                        nightshift_protocol::events::EventBody::GithubReconnectRequired { .. }
                    )
                })
            })
            .await?;
        let reconnect = events.last().unwrap();
        let text = serde_json::to_string(&events)?;
        match &reconnect.body {
            nightshift_protocol::events::EventBody::GithubReconnectRequired {
                user_id,
                connect_url,
                ..
            } => {
                assert_eq!(user_id, &alice_id);
                assert_eq!(connect_url, "/auth/github/connect");
            }
            other => panic!("{other:?}"),
        }
        // Opening a pull request as her says the same, from the app and from the
        // agent's tool, and each session is told.
        let reconnects = |events: &[nightshift_protocol::events::SessionEvent]| {
            events
                .iter()
                .filter(|e| {
                    matches!(
                        e.body,
                        nightshift_protocol::events::EventBody::GithubReconnectRequired { .. }
                    )
                })
                .count()
        };
        let refused = alice
            .raw(
                Method::POST,
                &format!("/api/sessions/{id}/pull-request"),
                Some(r#"{"title":"Fix the login page"}"#),
            )
            .await?;
        assert_eq!(refused.status, 409, "{:?}", refused.body);
        assert_eq!(refused.error_code(), Some("github_not_connected"));
        alice
            .history_until(&id, |events| reconnects(events) >= 2)
            .await?;
        let response = reqwest::Client::new()
            .post(format!(
                "{}/api/sessions/{cont_id}/git/pull-request",
                stack.worker_url()
            ))
            .bearer_auth(&cont_token)
            .json(&json!({"title": "Fix the login page, take three"}))
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 409);
        let events = alice
            .history_until(&cont_id, |events| reconnects(events) >= 1)
            .await?;
        let text = format!("{text}{}", serde_json::to_string(&events)?);
        for issued in gh.tokens() {
            assert!(!text.contains(&issued.token), "a token in the events");
            let leaks = files_containing(stack.dir.path(), issued.token.as_bytes());
            assert!(leaks.is_empty(), "a GitHub token in {leaks:?}");
        }
        Ok(())
    })
    .await;
}
