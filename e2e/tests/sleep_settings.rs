//! Sleep times on the real stack (wrangler dev, the sandbox backend with bubblewrap
//! sandboxes, the scripted LLM): the deployment's default is long
//! (`SESSION_SLEEP_AFTER_MS`, 10 minutes) and the shortest choice short
//! (`SESSION_SLEEP_MIN_MS`), so a session that sleeps within the test does so by
//! its owner's own time or the team's maximum. A user's short time puts their idle
//! sessions to sleep, an existing one included; an admin's maximum below a member's
//! time wins; only admins set the maximum; bad times are refused with the code and
//! nothing stored.

use nightshift_e2e::client::Api;
use nightshift_e2e::scripted_llm::ScriptedLlm;
use nightshift_e2e::stack::{Stack, StackOptions, with_logs};
use nightshift_protocol::api::SessionStatus;
use nightshift_protocol::sleep::MySettings;
use reqwest::Method;
use serde_json::{Value, json};

/// The deployment's default: far beyond the test's waits.
const DEFAULT_MS: u64 = 600_000;

async fn stack() -> anyhow::Result<(Stack, ScriptedLlm)> {
    let llm = ScriptedLlm::start().await?;
    let stack = Stack::start(StackOptions {
        llm_base_url: Some(llm.base_url()),
        worker_vars: vec![
            ("SESSION_SLEEP_AFTER_MS".into(), DEFAULT_MS.to_string()),
            ("SESSION_SLEEP_MIN_MS".into(), "1000".into()),
        ],
    })
    .await?;
    Ok((stack, llm))
}

async fn my_settings(api: &Api) -> anyhow::Result<MySettings> {
    api.expect(Method::GET, "/api/me/settings", None, 200).await
}

async fn put_my_settings(api: &Api, body: &str) -> anyhow::Result<(u16, Value)> {
    let answer = api.raw(Method::PUT, "/api/me/settings", Some(body)).await?;
    Ok((answer.status, answer.body))
}

/// A session that ran one turn and is idle now.
async fn idle_session(api: &Api, title: &str) -> anyhow::Result<String> {
    let session = api.create_session_with(json!({ "title": title })).await?;
    api.send(&session.id, "hello").await?;
    api.wait_settled(&session.id).await?;
    api.wait_status(&session.id, "idle").await?;
    Ok(session.id)
}

fn error_code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

#[tokio::test]
async fn a_users_own_time_puts_their_idle_sessions_to_sleep_and_bad_times_are_refused() {
    let (stack, _llm) = stack().await.unwrap();
    with_logs(&stack, async {
        let owner = stack.signed_in_api("owner@example.com").await?;
        let fresh = my_settings(&owner).await?;
        anyhow::ensure!(fresh.sleep_after_ms.is_none(), "{fresh:?}");
        anyhow::ensure!(fresh.default_sleep_after_ms == DEFAULT_MS, "{fresh:?}");
        anyhow::ensure!(fresh.effective_sleep_after_ms == DEFAULT_MS, "{fresh:?}");
        anyhow::ensure!(fresh.max_sleep_after_ms.is_none(), "{fresh:?}");
        anyhow::ensure!(
            (fresh.bounds.min_ms, fresh.bounds.max_ms) == (1_000, 86_400_000),
            "{fresh:?}"
        );

        // A session already idle (its alarm set for the long default) sleeps by the
        // new, short time.
        let existing = idle_session(&owner, "existing").await?;
        let (status, body) = put_my_settings(&owner, r#"{"sleep_after_ms":3000}"#).await?;
        anyhow::ensure!(status == 200, "{status} {body}");
        let saved: MySettings = serde_json::from_value(body)?;
        anyhow::ensure!(saved.sleep_after_ms == Some(3_000), "{saved:?}");
        anyhow::ensure!(saved.effective_sleep_after_ms == 3_000, "{saved:?}");
        owner.wait_status(&existing, "asleep").await?;

        // A session created afterwards starts with it.
        let created = idle_session(&owner, "created after").await?;
        owner.wait_status(&created, "asleep").await?;

        // Bad times are refused and leave the stored one as it was.
        for (body, code) in [
            (r#"{"sleep_after_ms":999}"#, "invalid_request"),
            (r#"{"sleep_after_ms":86400001}"#, "invalid_request"),
            (r#"{"sleep_after_ms":-5}"#, "invalid_json"),
            (r#"{"sleep_after_ms":"soon"}"#, "invalid_json"),
            (r#"{"sleep_after_ms":5000,"extra":1}"#, "invalid_json"),
        ] {
            let (status, answer) = put_my_settings(&owner, body).await?;
            anyhow::ensure!(
                status == 400 && error_code(&answer) == Some(code),
                "{body}: {status} {answer}"
            );
            let kept = my_settings(&owner).await?;
            anyhow::ensure!(kept.sleep_after_ms == Some(3_000), "{body}: {kept:?}");
        }

        // `null` is the deployment's default again; `0` is never.
        let (status, body) = put_my_settings(&owner, r#"{"sleep_after_ms":null}"#).await?;
        anyhow::ensure!(status == 200, "{status} {body}");
        anyhow::ensure!(my_settings(&owner).await?.effective_sleep_after_ms == DEFAULT_MS);
        let (status, body) = put_my_settings(&owner, r#"{"sleep_after_ms":0}"#).await?;
        anyhow::ensure!(status == 200, "{status} {body}");
        anyhow::ensure!(my_settings(&owner).await?.effective_sleep_after_ms == 0);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn the_teams_maximum_below_a_members_time_wins_and_only_admins_set_it() {
    let (stack, _llm) = stack().await.unwrap();
    with_logs(&stack, async {
        let admin = stack.signed_in_api("admin@example.com").await?;
        let member = stack.signed_in_member(&admin, "member@example.com").await?;
        let (status, body) = put_my_settings(&member, r#"{"sleep_after_ms":3600000}"#).await?;
        anyhow::ensure!(status == 200, "{status} {body}");
        let session = idle_session(&member, "long sleeper").await?;

        // Only admins read or set the maximum.
        for (method, body) in [
            (Method::GET, None),
            (
                Method::PUT,
                Some(r#"{"signin_policy":"invite_only","sleep":{"max_sleep_after_ms":2000}}"#),
            ),
        ] {
            let answer = member.raw(method, "/api/admin/settings", body).await?;
            anyhow::ensure!(
                answer.status == 403 && error_code(&answer.body) == Some("forbidden"),
                "{answer:?}"
            );
        }
        let settings: Value = admin
            .expect(Method::GET, "/api/admin/settings", None, 200)
            .await?;
        anyhow::ensure!(
            settings["sleep"]["max_sleep_after_ms"].is_null(),
            "{settings}"
        );

        // A bad maximum is refused, and the policy sent with it is not stored either.
        for max in ["0", "500", "86400001"] {
            let body =
                format!(r#"{{"signin_policy":"open","sleep":{{"max_sleep_after_ms":{max}}}}}"#);
            let answer = admin
                .raw(Method::PUT, "/api/admin/settings", Some(&body))
                .await?;
            anyhow::ensure!(
                answer.status == 400 && error_code(&answer.body) == Some("invalid_request"),
                "{max}: {answer:?}"
            );
            let kept: Value = admin
                .expect(Method::GET, "/api/admin/settings", None, 200)
                .await?;
            anyhow::ensure!(kept["signin_policy"] == "invite_only", "{kept}");
            anyhow::ensure!(kept["sleep"]["max_sleep_after_ms"].is_null(), "{kept}");
        }
        anyhow::ensure!(
            member.session(&session).await?.status == SessionStatus::Idle,
            "the member's session slept before any maximum"
        );

        // A maximum below the member's hour wins, for the session already idle.
        let saved: Value = admin
            .expect(
                Method::PUT,
                "/api/admin/settings",
                Some(r#"{"signin_policy":"invite_only","sleep":{"max_sleep_after_ms":2000}}"#),
                200,
            )
            .await?;
        anyhow::ensure!(saved["sleep"]["max_sleep_after_ms"] == 2000, "{saved}");
        member.wait_status(&session, "asleep").await?;
        let capped = my_settings(&member).await?;
        anyhow::ensure!(capped.sleep_after_ms == Some(3_600_000), "{capped:?}");
        anyhow::ensure!(capped.max_sleep_after_ms == Some(2_000), "{capped:?}");
        anyhow::ensure!(capped.effective_sleep_after_ms == 2_000, "{capped:?}");

        // Settings sent without `sleep` keep the maximum; "never" is capped by it.
        let kept: Value = admin
            .expect(
                Method::PUT,
                "/api/admin/settings",
                Some(r#"{"signin_policy":"invite_only"}"#),
                200,
            )
            .await?;
        anyhow::ensure!(kept["sleep"]["max_sleep_after_ms"] == 2000, "{kept}");
        let (status, body) = put_my_settings(&member, r#"{"sleep_after_ms":0}"#).await?;
        anyhow::ensure!(status == 200, "{status} {body}");
        let never: MySettings = serde_json::from_value(body)?;
        anyhow::ensure!(never.effective_sleep_after_ms == 2_000, "{never:?}");
        Ok(())
    })
    .await;
}
