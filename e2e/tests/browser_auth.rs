//! Sign-in, invites and sharing in real headless Chromium against the real stack: the
//! first user signs in through GitHub (the fake provider of `e2e/src/fake_oauth.rs`,
//! the whole redirect-and-callback flow) and is admin, creates an invite link, a
//! second user is refused without it and signs in with it in another browser, the
//! admin shares a session with them as viewer, and the viewer watches a turn live but
//! cannot prompt (the composer is locked, and a direct API call with their own cookie
//! and CSRF token is refused with 403).

use std::time::Duration;

use anyhow::{Context, ensure};
use fantoccini::{Client, Locator};
use nightshift_e2e::browser::{Chromedriver, text_of, wait_for};
use nightshift_e2e::fake_oauth::{FakeOauth, FakeUser};
use nightshift_e2e::scripted_llm::{Script, ScriptedLlm, Step};
use nightshift_e2e::stack::{Stack, StackOptions, repo_root};
use serde_json::{Value, json};

async fn element(client: &Client, css: &str) -> anyhow::Result<fantoccini::elements::Element> {
    client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await
        .with_context(|| format!("waiting for {css}"))
}

async fn click(client: &Client, css: &str) -> anyhow::Result<()> {
    element(client, css).await?.click().await?;
    Ok(())
}

/// Runs `fetch` in the page, with the page's own cookie; answers status and body.
async fn fetch_in_page(
    client: &Client,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let script = r#"
        const [method, path, body, done] = arguments;
        (async () => {
            const me = await (await fetch('/api/me')).json();
            const init = { method, headers: { 'x-csrf-token': me.csrf_token || '' } };
            if (body !== null) {
                init.headers['content-type'] = 'application/json';
                init.body = JSON.stringify(body);
            }
            const answer = await fetch(path, init);
            done([answer.status, await answer.text()]);
        })().catch((error) => done([0, String(error)]));
    "#;
    let answer = client
        .execute_async(
            script,
            vec![json!(method), json!(path), body.unwrap_or(Value::Null)],
        )
        .await?;
    let status = answer[0].as_u64().context("a status")? as u16;
    let text = answer[1].as_str().unwrap_or_default();
    Ok((
        status,
        serde_json::from_str(text).unwrap_or_else(|_| json!(text)),
    ))
}

/// Keeps a picture of the page in `target/` for whoever reads a failure.
async fn shot(client: &Client, name: &str) {
    if let Ok(png) = client.screenshot().await {
        let _ = std::fs::write(
            repo_root().join(format!("target/browser-auth-{name}.png")),
            png,
        );
    }
}

/// The signed-in user of a browser, from `GET /api/me`.
async fn me(client: &Client) -> anyhow::Result<Value> {
    let (status, body) = fetch_in_page(client, "GET", "/api/me", None).await?;
    ensure!(status == 200, "GET /api/me: {status} {body}");
    Ok(body)
}

/// Signs in as `user` with the GitHub button of the page the browser is on (the
/// sign-in or the invite page): authorize, callback and back into the app.
async fn github_sign_in(client: &Client, fake: &FakeOauth, user: FakeUser) -> anyhow::Result<()> {
    fake.sign_in_as(user);
    click(client, "[data-testid=signin-github]").await?;
    Ok(())
}

#[tokio::test]
async fn an_admin_invites_a_teammate_and_shares_a_session_they_can_only_watch() {
    let llm = ScriptedLlm::start().await.unwrap();
    llm.on(
        "MARK-SHARE",
        Script::new(vec![Step::slow_text(
            "watched-",
            8,
            Duration::from_millis(150),
        )]),
    );
    let fake = FakeOauth::start().await.unwrap();
    // The operator names the first admin.
    let mut worker_vars = fake.worker_vars();
    worker_vars.push(("ADMIN_EMAILS".into(), "ada@example.com".into()));
    let stack = Stack::start(StackOptions {
        llm_base_url: Some(llm.base_url()),
        worker_vars,
    })
    .await
    .unwrap();
    let driver = Chromedriver::start().await.unwrap();
    let admin_profile = tempfile::tempdir().unwrap();
    let viewer_profile = tempfile::tempdir().unwrap();
    let admin = driver.client(admin_profile.path(), 1280).await.unwrap();
    let viewer = driver.client(viewer_profile.path(), 1280).await.unwrap();
    let result = journey(&stack, &fake, &admin, &viewer).await;
    for (client, name) in [(&admin, "admin"), (&viewer, "viewer")] {
        if let Ok(png) = client.screenshot().await {
            let _ = std::fs::write(
                repo_root().join(format!("target/browser-auth-{name}.png")),
                png,
            );
        }
    }
    let _ = admin.close().await;
    let _ = viewer.close().await;
    if let Err(error) = result {
        stack.dump_logs();
        panic!("{error:?} (screenshots: target/browser-auth-*.png)");
    }
}

async fn journey(
    stack: &Stack,
    fake: &FakeOauth,
    admin: &Client,
    viewer: &Client,
) -> anyhow::Result<()> {
    let base = stack.worker_url();

    // A visitor is sent to the sign-in page; the admin the operator named signs in.
    admin.goto(&format!("{base}/settings")).await?;
    element(admin, "[data-testid=signin-page]").await?;
    ensure!(
        admin.current_url().await?.path() == "/signin",
        "not redirected"
    );
    let ada = FakeUser::verified("7001", "ada@example.com", "Ada Admin");
    github_sign_in(admin, fake, ada).await?;
    // Back where the visit started.
    element(admin, "[data-testid=settings-page]").await?;
    ensure!(admin.current_url().await?.path() == "/settings");
    let admin_me = me(admin).await?;
    ensure!(admin_me["user"]["role"] == "admin", "{admin_me}");
    settings(admin).await?;

    // The admin creates an invite link on the team page.
    click(admin, "[data-testid=nav-admin]").await?;
    element(admin, "[data-testid=admin-page]").await?;
    click(admin, "[data-testid=invite-create]").await?;
    let invite_url = wait_for("the invite link", || async {
        let link = admin
            .find(Locator::Css("[data-testid=invite-link]"))
            .await?;
        Ok(link
            .prop("value")
            .await?
            .filter(|url| url.contains("/invite/")))
    })
    .await?;
    let invite_path = &invite_url[invite_url.find("/invite/").context("invite path")?..];

    shot(admin, "team").await;

    // The admin lowers a member's cap on live sessions on the same page.
    let field = element(admin, "[data-testid=limit-live-sessions]").await?;
    wait_for("the caps loaded", || async {
        Ok(field.prop("value").await?.filter(|value| !value.is_empty()))
    })
    .await?;
    field.clear().await?;
    field.send_keys("7").await?;
    click(admin, "[data-testid=limits-save]").await?;
    wait_for("the caps saved", || async {
        let (status, body) = fetch_in_page(admin, "GET", "/api/admin/settings", None).await?;
        Ok((status == 200 && body["limits"]["live_sessions"] == 7).then_some(()))
    })
    .await?;

    // A failed OAuth callback lands on the sign-in page with a readable reason.
    viewer
        .goto(&format!("{base}/signin?error=oauth_state_mismatch"))
        .await?;
    let reason = wait_for("the callback's error", || async {
        text_of(viewer, "[data-testid=signin-error]").await
    })
    .await?;
    ensure!(reason.contains("try again"), "{reason}");

    // Invite-only by default: without the invite the second user is refused, through
    // the development sign-in form and through GitHub alike.
    element(viewer, "[data-testid=signin-dev-email]")
        .await?
        .send_keys("vic@example.com")
        .await?;
    click(viewer, "[data-testid=signin-dev-submit]").await?;
    let refused = wait_for("the refusal", || async {
        text_of(viewer, "[data-testid=signin-dev-error]").await
    })
    .await?;
    ensure!(refused.contains("invite"), "{refused}");
    let vic = FakeUser::verified("7002", "vic@example.com", "Vic Viewer");
    viewer.goto(&format!("{base}/signin")).await?;
    github_sign_in(viewer, fake, vic.clone()).await?;
    let refused = wait_for("the callback's refusal", || async {
        text_of(viewer, "[data-testid=signin-error]").await
    })
    .await?;
    ensure!(refused.contains("invite"), "{refused}");
    ensure!(
        viewer.current_url().await?.query() == Some("error=signin_not_allowed"),
        "refused at the callback"
    );

    // With the invite link, they get in.
    viewer.goto(&format!("{base}{invite_path}")).await?;
    element(viewer, "[data-testid=invite-page]").await?;
    github_sign_in(viewer, fake, vic).await?;
    element(viewer, "[data-testid=user-menu]").await?;
    let viewer_me = me(viewer).await?;
    ensure!(viewer_me["user"]["role"] == "member", "{viewer_me}");
    // The team page lists the new member and counts the invite as used.
    admin.refresh().await?;
    wait_for("the new member on the team page", || async {
        text_of(
            admin,
            "[data-testid=member-row][data-email='vic@example.com']",
        )
        .await
    })
    .await?;
    let invites = text_of(admin, "[data-testid=invite-row]")
        .await?
        .unwrap_or_default();
    ensure!(invites.contains("1 / 1"), "{invites}");
    let viewer_id = viewer_me["user"]["id"]
        .as_str()
        .context("viewer id")?
        .to_owned();
    ensure!(
        admin
            .find_all(Locator::Css("[data-testid=nav-admin]"))
            .await?
            .len()
            == 1
            && viewer
                .find_all(Locator::Css("[data-testid=nav-admin]"))
                .await?
                .is_empty(),
        "only the admin sees the team page link"
    );

    // The admin starts a session and shares it with the new member as viewer.
    admin.goto(&format!("{base}/")).await?;
    click(admin, "[data-testid=new-session]").await?;
    let session_id = wait_for("the new session", || async {
        let url = admin.current_url().await?;
        Ok(url.path().strip_prefix("/sessions/").map(str::to_string))
    })
    .await?;
    click(admin, "[data-testid=share-open]").await?;
    let picker = element(admin, "[data-testid=share-member]").await?;
    wait_for("the teammate in the picker", || async {
        Ok(admin
            .find_all(Locator::Css(&format!(
                "[data-testid=share-member] option[value='{viewer_id}']"
            )))
            .await?
            .first()
            .map(drop))
    })
    .await?;
    picker.select_by_value(&viewer_id).await?;
    element(admin, "[data-testid=share-role]")
        .await?
        .select_by_value("viewer")
        .await?;
    click(admin, "[data-testid=share-submit]").await?;
    wait_for("the share in the list", || async {
        Ok(text_of(
            admin,
            &format!("[data-testid=share-row][data-user-id='{viewer_id}']"),
        )
        .await?
        .filter(|row| row.contains("Viewer")))
    })
    .await?;
    // And a share link, which opens the session for whoever follows it.
    click(admin, "[data-testid=link-create]").await?;
    let link = wait_for("the share link", || async {
        let field = admin.find(Locator::Css("[data-testid=share-link]")).await?;
        Ok(field
            .prop("value")
            .await?
            .filter(|url| url.contains("/share/")))
    })
    .await?;
    let link_path = &link[link.find("/share/").context("share path")?..];
    click(admin, "[data-testid=share-close]").await?;

    // The viewer follows the link to the session: it is read-only for them.
    viewer.goto(&format!("{base}{link_path}")).await?;
    wait_for("the shared session to open", || async {
        let url = viewer.current_url().await?;
        Ok((url.path() == format!("/sessions/{session_id}")).then_some(()))
    })
    .await?;
    element(viewer, "[data-testid=my-role][data-role=viewer]").await?;
    let textarea = element(viewer, "[data-testid=composer] textarea").await?;
    ensure!(
        !textarea.is_enabled().await?,
        "the viewer's composer is locked"
    );
    ensure!(
        viewer
            .find_all(Locator::Css("[data-testid=abort]"))
            .await?
            .is_empty(),
        "a viewer gets no abort button"
    );
    let hint = text_of(viewer, "[data-testid=composer-hint]")
        .await?
        .unwrap_or_default();
    ensure!(hint.contains("Read-only"), "{hint}");

    // The admin prompts; the viewer watches the reply stream in live.
    element(admin, "[data-testid=composer] textarea")
        .await?
        .send_keys("MARK-SHARE stream something")
        .await?;
    click(admin, "[data-testid=send]").await?;
    let early = wait_for("the first streamed words at the viewer", || async {
        Ok(text_of(viewer, "[data-testid=assistant-text]")
            .await?
            .filter(|text| text.contains("watched-0")))
    })
    .await?;
    ensure!(
        !early.contains("watched-7"),
        "the viewer saw the reply only once it was whole: {early}"
    );
    wait_for("the whole reply at the viewer", || async {
        Ok(text_of(viewer, "[data-testid=assistant-text]")
            .await?
            .filter(|text| text.contains("watched-7")))
    })
    .await?;

    // Going around the UI does not help: the API refuses the viewer's prompt.
    let (status, body) = fetch_in_page(
        viewer,
        "POST",
        &format!("/api/sessions/{session_id}/messages"),
        Some(json!({"content": "MARK-SHARE sneaky"})),
    )
    .await?;
    ensure!(status == 403, "a viewer's prompt: {status} {body}");
    let (status, body) = fetch_in_page(
        viewer,
        "POST",
        &format!("/api/sessions/{session_id}/abort"),
        Some(json!({})),
    )
    .await?;
    ensure!(status == 403, "a viewer's abort: {status} {body}");
    // While the admin's own prompt is accepted by the same route.
    let (status, body) = fetch_in_page(
        admin,
        "POST",
        &format!("/api/sessions/{session_id}/messages"),
        Some(json!({"content": "a follow-up"})),
    )
    .await?;
    ensure!(status == 202, "the owner's prompt: {status} {body}");

    // The admin sees who is watching.
    wait_for("the viewer's avatar for the admin", || async {
        Ok(admin
            .find_all(Locator::Css(&format!(
                "[data-testid=presence-avatar][data-user-id='{viewer_id}']"
            )))
            .await?
            .first()
            .map(drop))
    })
    .await?;
    // Leaving the page gives the viewer's presence back at once (its keepalive
    // DELETE), long before the 35 s lease would run out.
    let left = tokio::time::Instant::now();
    viewer.goto(&format!("{base}/")).await?;
    wait_for("the viewer's avatar to go for the admin", || async {
        let avatars = admin
            .find_all(Locator::Css(&format!(
                "[data-testid=presence-avatar][data-user-id='{viewer_id}']"
            )))
            .await?;
        Ok(avatars.is_empty().then_some(()))
    })
    .await?;
    ensure!(
        left.elapsed() < Duration::from_secs(30),
        "the viewer left only when the lease ran out"
    );
    Ok(())
}

/// The settings page: an API token is shown once and listed; an LLM key is listed by
/// its last four characters only, never whole.
async fn settings(client: &Client) -> anyhow::Result<()> {
    element(client, "[data-testid=token-name]")
        .await?
        .send_keys("ci-script")
        .await?;
    click(client, "[data-testid=token-create]").await?;
    let secret = wait_for("the new token, shown once", || async {
        let field = client
            .find(Locator::Css("[data-testid=token-secret]"))
            .await?;
        Ok(field.prop("value").await?.filter(|token| !token.is_empty()))
    })
    .await?;
    let rows = wait_for("the token in the list", || async {
        Ok(text_of(client, "[data-testid=token-row]")
            .await?
            .filter(|rows| rows.contains("ci-script")))
    })
    .await?;
    ensure!(rows.contains("read") && !rows.contains("write"), "{rows}");
    ensure!(!rows.contains(&secret), "the list never shows the token");

    let key = "sk-ant-e2e-secret-9f3c";
    element(
        client,
        "[data-testid=key-form-user] [data-testid=key-secret]",
    )
    .await?
    .send_keys(key)
    .await?;
    click(client, "[data-testid=key-form-user] [data-testid=key-add]").await?;
    let listed = wait_for("the key in the list", || async {
        text_of(client, "[data-testid=key-list-user] [data-testid=key-row]").await
    })
    .await?;
    ensure!(listed.contains("9f3c"), "{listed}");
    let page = client.source().await?;
    ensure!(!page.contains(key), "the page never holds the whole key");
    shot(client, "settings").await;
    // Deleted again: the session below runs on the scripted LLM of the environment.
    click(
        client,
        "[data-testid=key-list-user] [data-testid=key-delete]",
    )
    .await?;
    wait_for("the key to go", || async {
        Ok(client
            .find_all(Locator::Css(
                "[data-testid=key-list-user] [data-testid=key-row]",
            ))
            .await?
            .is_empty()
            .then_some(()))
    })
    .await?;
    Ok(())
}
