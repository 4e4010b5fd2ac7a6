//! Repo-aware sessions in real headless Chromium against the real stack and the fake
//! GitHub (`e2e/src/fake_github.rs`, every exchange validated against GitHub's
//! OpenAPI description): a signed-in user connects GitHub from the new-session form
//! through the fake's OAuth web flow and comes back to the form, searches the picker,
//! picks a repository and a base branch, starts a session on it, and sees the
//! repository in the session list and beside the chat; sends a prompt whose scripted
//! turn edits and commits in the real sandbox, watches the repository panel follow
//! (commits ahead, the changed file with its counts), opens the diff, pushes and
//! opens the pull request from the panel (as the user, on the fake's git server and
//! REST API); an admin narrows the team's repositories on the admin page and the
//! picker follows.

use anyhow::Context;
use fantoccini::{Client, Locator};
use nightshift_e2e::browser::{Chromedriver, send_prompt, sign_in, text_of, wait_for};
use nightshift_e2e::client::Api;
use nightshift_e2e::fake_github::FakeGithub;
use nightshift_e2e::git_server::RepoSeed;
use nightshift_e2e::github_turn::{
    EDIT_MARKER, EDITED_LINE, edit_and_commit, is_noreply_author, pushed_author, stack_reaching_git,
};
use nightshift_e2e::scripted_llm::ScriptedLlm;
use nightshift_e2e::stack::{Stack, repo_root};
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
    let llm = ScriptedLlm::start().await.unwrap();
    llm.on(EDIT_MARKER, edit_and_commit());
    let stack = stack_reaching_git(&gh, &llm).await.unwrap();
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

    the_turn_to_a_pull_request(gh, client, &session_id, branch).await?;
    narrowing(stack, client, &api).await
}

/// In the session's page: the scripted turn edits the readme and commits; the panel
/// shows the commit and the file, the diff shows the line; Push puts the branch on
/// the server as alice, and "Open pull request" opens it with her token, shown in
/// the card and as the session list's badge.
async fn the_turn_to_a_pull_request(
    gh: &FakeGithub,
    client: &Client,
    session_id: &str,
    branch: &str,
) -> anyhow::Result<()> {
    send_prompt(client, &format!("{EDIT_MARKER} edit the readme")).await?;
    wait_for("the repository panel to count the commit", || async {
        Ok(text_of(client, "[data-testid=repo-status]")
            .await?
            .filter(|t| t.contains("1 commit ahead of dev")))
    })
    .await?;
    let file = wait_for("README.md among the changed files", || async {
        text_of(client, "[data-testid=repo-file][data-path='README.md']").await
    })
    .await?;
    anyhow::ensure!(file.contains("+1") && file.contains("-0"), "{file}");
    let files = text_of(client, "[data-testid=repo-file]").await?;
    anyhow::ensure!(files.as_deref() == Some(file.as_str()), "{files:?}");

    // The diff, as the user reads it: the added line, as text.
    client
        .find(Locator::Css("[data-testid=diff-toggle]"))
        .await?
        .click()
        .await?;
    let added = wait_for("the added line in the diff", || async {
        text_of(
            client,
            "[data-testid=diff-file][data-path='README.md'] [data-testid=diff-line][data-kind=added]",
        )
        .await
    })
    .await?;
    anyhow::ensure!(added.contains(EDITED_LINE), "{added}");
    let context = text_of(client, "[data-testid=diff-line][data-kind=context]").await?;
    anyhow::ensure!(
        context.is_some_and(|c| c.contains("# demo")),
        "the unchanged line around it"
    );

    // Push: the branch reaches the server, authored by alice.
    client
        .find(Locator::Css("[data-testid=repo-push]"))
        .await?
        .click()
        .await?;
    let author = wait_for("the branch on the git server", || async {
        Ok(pushed_author(gh, "alice", "app", branch).ok())
    })
    .await?;
    anyhow::ensure!(is_noreply_author(&author, "Alice Doe", "alice"), "{author}");
    wait_for("Push to be done with", || async {
        let push = client.find(Locator::Css("[data-testid=repo-push]")).await?;
        Ok((push.attr("disabled").await?.is_some()).then_some(()))
    })
    .await?;

    // Open pull request: the card, and the badge in the list.
    client
        .find(Locator::Css("[data-testid=repo-open-pr]"))
        .await?
        .click()
        .await?;
    let link = wait_for("the pull request's link in the card", || async {
        Ok(client
            .find(Locator::Css("[data-testid=pr-card] [data-testid=pr-link]"))
            .await
            .ok())
    })
    .await?;
    anyhow::ensure!(link.text().await? == "#1");
    let href = link.attr("href").await?.unwrap_or_default();
    anyhow::ensure!(href.ends_with("/alice/app/pull/1"), "{href}");
    let state = text_of(client, "[data-testid=pr-state]").await?;
    anyhow::ensure!(state.as_deref() == Some("draft"), "{state:?}");
    let button = text_of(client, "[data-testid=repo-open-pr]").await?;
    anyhow::ensure!(
        button.as_deref() == Some("Update pull request"),
        "{button:?}"
    );
    let badge = format!("[data-session-id='{session_id}'] [data-testid=session-pr]");
    wait_for("the pull request badge in the session list", || async {
        Ok(text_of(client, &badge)
            .await?
            .filter(|t| t.contains("#1") && t.contains("draft")))
    })
    .await?;
    let pulls = gh.pulls();
    anyhow::ensure!(pulls.len() == 1, "one pull request: {}", pulls.len());
    let pull = &pulls[0];
    anyhow::ensure!(
        (
            pull.author.as_str(),
            pull.head.as_str(),
            pull.base.as_str(),
            pull.draft
        ) == ("alice", branch, "dev", true),
        "{} {} {} {}",
        pull.author,
        pull.head,
        pull.base,
        pull.draft
    );
    Ok(())
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
