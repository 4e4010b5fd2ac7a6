//! Repo-aware sessions in real headless Chromium against the real stack and the fake
//! GitHub (`e2e/src/fake_github.rs`, every exchange validated against GitHub's
//! OpenAPI description): a signed-in user connects GitHub from the new-session form
//! through the fake's OAuth web flow and comes back to the form, searches the picker,
//! picks a repository and a base branch, starts a session on it, and sees the
//! repository in the session list and beside the chat; an admin narrows the team's
//! repositories on the admin page and the picker follows.

use anyhow::Context;
use fantoccini::{Client, Locator};
use nightshift_e2e::browser::{Chromedriver, sign_in, text_of, wait_for};
use nightshift_e2e::client::Api;
use nightshift_e2e::fake_github::FakeGithub;
use nightshift_e2e::git_server::RepoSeed;
use nightshift_e2e::stack::{Stack, StackOptions, repo_root};
use reqwest::Method;
use serde_json::Value;

/// The fake GitHub with alice, owner of `alice/app` (with a `dev` branch) and
/// `alice/tools`.
async fn github() -> FakeGithub {
    let gh = FakeGithub::start().await.unwrap();
    gh.add_user("alice", "Alice Doe", "alice@example.com");
    let mut seed = RepoSeed::small();
    seed.branches = vec!["dev".to_string()];
    gh.add_repo("alice", "app", true, &seed).unwrap();
    gh.add_repo("alice", "tools", false, &RepoSeed::small())
        .unwrap();
    gh
}

#[tokio::test]
async fn a_user_connects_github_picks_a_repository_and_starts_a_session_on_it() {
    let gh = github().await;
    let stack = Stack::start(StackOptions {
        worker_vars: gh.worker_vars(),
        ..StackOptions::default()
    })
    .await
    .unwrap();
    let driver = Chromedriver::start().await.unwrap();
    let profile = tempfile::tempdir().unwrap();
    let client = driver.client(profile.path(), 1280).await.unwrap();
    let result = journey(&stack, &gh, &client).await;
    let shot = repo_root().join("target/browser-github.png");
    if let Ok(png) = client.screenshot().await {
        let _ = std::fs::write(&shot, png);
    }
    let at = client.current_url().await.map(|u| u.to_string());
    let _ = client.close().await;
    if let Err(error) = result {
        stack.dump_logs();
        panic!("{error:?} (at {at:?}; screenshot: {})", shot.display());
    }
    assert_eq!(gh.take_violations(), Vec::<String>::new());
}

async fn journey(stack: &Stack, gh: &FakeGithub, client: &Client) -> anyhow::Result<()> {
    let app = stack.worker_url();
    sign_in(client, &app, "alice@example.com", "Alice").await?;

    // Not connected: the form offers "Connect GitHub", coming back to this page.
    let connect = wait_for("the Connect GitHub button", || async {
        Ok(client
            .find(Locator::Css("[data-testid=connect-github]"))
            .await
            .ok())
    })
    .await?;
    let href = connect.attr("href").await?.unwrap_or_default();
    anyhow::ensure!(
        href.contains("/auth/github/connect?return_to=%2F"),
        "{href}"
    );
    gh.consent_as(Some("alice"));
    connect.click().await?;
    // Through the fake's consent and the Worker's callback, back to the app, now
    // connected.
    let toggle = wait_for("the connected picker", || async {
        Ok(client
            .find(Locator::Css("[data-testid=repo-picker-toggle]"))
            .await
            .ok())
    })
    .await?;
    let here = client.current_url().await?;
    anyhow::ensure!(here.path() == "/", "landed on {here}");
    let asked = gh.authorize_requests();
    anyhow::ensure!(asked.len() == 1, "one consent asked: {asked:?}");

    // The picker lists alice's repositories, and the search narrows them.
    toggle.click().await?;
    wait_for_results(client, "alice/app\nalice/tools").await?;
    let search = client
        .find(Locator::Css("[data-testid=repo-search]"))
        .await?;
    search.send_keys("too").await?;
    wait_for_results(client, "alice/tools").await?;
    search.clear().await?;
    search.send_keys("app").await?;
    wait_for_results(client, "alice/app").await?;
    client
        .find(Locator::Css("[data-repo='alice/app']"))
        .await?
        .click()
        .await?;

    // Its branches arrive for the base; the session starts from `dev`.
    let base = wait_for("the dev branch in the base select", || async {
        let options = text_of(client, "[data-testid=repo-base] option").await?;
        Ok(options
            .filter(|o| o.lines().any(|l| l == "dev"))
            .map(|_| ()))
    })
    .await;
    base?;
    client
        .find(Locator::Css("[data-testid=repo-base]"))
        .await?
        .select_by_value("dev")
        .await?;
    let chosen = text_of(client, "[data-testid=repo-picker-toggle]").await?;
    anyhow::ensure!(chosen.as_deref() == Some("alice/app"), "{chosen:?}");
    client
        .find(Locator::Css("[data-testid=new-session]"))
        .await?
        .click()
        .await?;
    let session_id = wait_for("the new session's page", || async {
        let url = client.current_url().await?;
        Ok(url
            .path()
            .strip_prefix("/sessions/")
            .map(str::to_owned)
            .filter(|id| !id.is_empty()))
    })
    .await?;

    // The server took the choice: the repository, the base, a branch of its own.
    let api = stack.signed_in_api("alice@example.com").await?;
    let session: Value = api
        .expect(
            Method::GET,
            &format!("/api/sessions/{session_id}"),
            None,
            200,
        )
        .await?;
    let repo = &session["repo"];
    anyhow::ensure!(repo["full_name"] == "alice/app", "{session}");
    anyhow::ensure!(repo["base_branch"] == "dev", "{session}");
    let branch = repo["branch"].as_str().unwrap_or_default();
    anyhow::ensure!(branch.starts_with("nightshift/"), "{session}");

    // The list row names the repository, and the page shows its panel.
    let row = format!("[data-session-id='{session_id}'] [data-testid=session-repo]");
    let listed = wait_for("the repository in the session list", || async {
        text_of(client, &row).await
    })
    .await?;
    anyhow::ensure!(listed.contains("alice/app"), "{listed}");
    wait_for("the repository panel", || async {
        Ok(client
            .find(Locator::Css("[data-testid=repo-panel]"))
            .await
            .ok())
    })
    .await?;

    narrowing(stack, client, &api).await
}

/// An admin narrows the team to `alice/tools` on the admin page; the picker then
/// offers only that one.
async fn narrowing(stack: &Stack, client: &Client, api: &Api) -> anyhow::Result<()> {
    client
        .goto(&format!("{}/admin", stack.worker_url()))
        .await?;
    let allowed = wait_for("the GitHub settings", || async {
        Ok(client
            .find(Locator::Css("[data-testid=github-allowed]"))
            .await
            .ok())
    })
    .await?;
    allowed.clear().await?;
    allowed.send_keys("alice/tools").await?;
    client
        .find(Locator::Css("[data-testid=github-save]"))
        .await?
        .click()
        .await?;
    let saved = wait_for("the settings saved", || async {
        let settings: Value = api
            .expect(Method::GET, "/api/admin/github", None, 200)
            .await?;
        Ok((settings["allowed_repos"] == serde_json::json!(["alice/tools"])).then_some(settings))
    })
    .await
    .context("the admin page saved the allow-list")?;
    anyhow::ensure!(saved["draft_pull_requests"] == true, "{saved}");

    client
        .find(Locator::Css("[data-testid=repo-picker-toggle]"))
        .await?
        .click()
        .await?;
    wait_for_results(client, "alice/tools").await
}

/// Waits until the picker's results are exactly `names` (one a line).
async fn wait_for_results(client: &Client, names: &str) -> anyhow::Result<()> {
    let wanted = names.to_owned();
    wait_for(&format!("the picker to list {names:?}"), || {
        let wanted = wanted.clone();
        async move {
            let shown = text_of(client, "[data-testid=repo-result] .repo-picker__name").await?;
            Ok((shown.as_deref() == Some(wanted.as_str())).then_some(()))
        }
    })
    .await
}
