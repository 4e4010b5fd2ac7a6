//! The panel proxy on the real stack (wrangler dev, the sandbox backend, the
//! session's gateway under bubblewrap): `GET /api/sessions/{id}/workspace` per role,
//! a collaborator's terminal through the Worker's panel host, and every way a
//! capability is refused (a viewer on the terminal and VS Code, forged, expired,
//! another session's, after the user lost access), and renewal keeping one origin
//! alive past several grant lifetimes.
//!
//! Panel hosts are reached with `nightshift_e2e::panels` (on loopback, naming the
//! panel host as a browser would).

use std::time::Duration;

use anyhow::{Context, bail};
use nightshift_e2e::client::Api;
use nightshift_e2e::panels::{panel_get, panel_socket, run_in_terminal};
use nightshift_e2e::scripted_llm::ScriptedLlm;
use nightshift_e2e::stack::{Stack, StackOptions, with_logs};
use reqwest::Method;
use serde_json::Value;

/// Grants live this long in the renewal test, so expiry and renewal are quick to see.
const GRANT_SECS: u64 = 3;

async fn stack(grant_secs: u64) -> (Stack, ScriptedLlm) {
    let llm = ScriptedLlm::start().await.unwrap();
    let stack = Stack::start(StackOptions {
        llm_base_url: Some(llm.base_url()),
        worker_vars: vec![
            (
                "PANEL_CAPABILITY_TTL_SECS".to_string(),
                grant_secs.to_string(),
            ),
            ("WORKSPACE_PANELS".to_string(), "true".to_string()),
        ],
    })
    .await
    .unwrap();
    (stack, llm)
}

async fn workspace(api: &Api, session_id: &str) -> anyhow::Result<Value> {
    api.expect(
        Method::GET,
        &format!("/api/sessions/{session_id}/workspace"),
        None,
        200,
    )
    .await
}

fn panel<'a>(workspace: &'a Value, kind: &str) -> &'a Value {
    workspace["panels"]
        .as_array()
        .and_then(|panels| panels.iter().find(|p| p["kind"] == kind))
        .unwrap_or_else(|| panic!("no {kind} panel in {workspace}"))
}

/// A label with one hex digit changed (a forgery).
fn forged(origin: &str) -> String {
    let (scheme, rest) = origin.split_once("://").unwrap();
    let (label, domain) = rest.split_once('.').unwrap();
    let mut bytes = label.as_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] = if bytes[last] == b'0' { b'1' } else { b'0' };
    format!("{scheme}://{}.{domain}", String::from_utf8(bytes).unwrap())
}

/// `origin` with the session part (32 hex digits) of `other`'s label.
fn moved_to(origin: &str, other: &str) -> String {
    let (scheme, rest) = origin.split_once("://").unwrap();
    let other_label = other.split("://").nth(1).unwrap();
    format!("{scheme}://{}{}", &other_label[..32], &rest[32..])
}

#[tokio::test]
async fn each_role_gets_its_panels_and_a_collaborator_runs_a_command_through_the_panel_host() {
    let (stack, _llm) = stack(120).await;
    with_logs(&stack, async {
        let owner = stack.signed_in_api("owner@example.com").await?;
        let collaborator = stack.signed_in_member(&owner, "collab@example.com").await?;
        let viewer = stack.signed_in_member(&owner, "viewer@example.com").await?;
        let stranger = stack
            .signed_in_member(&owner, "stranger@example.com")
            .await?;
        let session = owner.create_session().await?;
        owner
            .share(&session.id, &collaborator.user_id().await?, "collaborator")
            .await?;
        owner
            .share(&session.id, &viewer.user_id().await?, "viewer")
            .await?;
        owner.wait_status(&session.id, "idle").await?;

        // Who gets which panel.
        let mine = workspace(&owner, &session.id).await?;
        assert_eq!(mine["role"], "owner");
        for kind in ["vscode", "desktop", "terminal"] {
            assert!(panel(&mine, kind)["url"].is_string(), "{mine}");
        }
        let theirs = workspace(&viewer, &session.id).await?;
        assert_eq!(theirs["role"], "viewer");
        assert!(panel(&theirs, "vscode")["url"].is_null(), "{theirs}");
        assert!(panel(&theirs, "terminal")["url"].is_null(), "{theirs}");
        assert_eq!(panel(&theirs, "desktop")["view_only"], true);
        let answer = stranger
            .raw(
                Method::GET,
                &format!("/api/sessions/{}/workspace", session.id),
                None,
            )
            .await?;
        assert_eq!(answer.status, 404, "{:?}", answer.body);
        assert_eq!(
            stack
                .api()
                .raw(
                    Method::GET,
                    &format!("/api/sessions/{}/workspace", session.id),
                    None
                )
                .await?
                .status,
            401
        );

        // A collaborator's terminal, through Worker, relay, gateway and PTY.
        let ours = workspace(&collaborator, &session.id).await?;
        assert_eq!(ours["role"], "collaborator");
        let terminal = panel(&ours, "terminal")["url"]
            .as_str()
            .context("a terminal")?;
        assert!(!terminal.contains("127.0.0.1"), "{terminal}");
        let mut socket = panel_socket(&format!("{terminal}t1"))
            .await
            .map_err(|status| anyhow::anyhow!("the terminal was refused: {status}"))?;
        run_in_terminal(&mut socket, "echo hello-$((6*7))", "hello-42").await?;
        // The gateway's status through the panel host; the app's own API is not there.
        let origin = ours["origin"].as_str().context("an origin")?;
        let (status, body) = panel_get(origin, "/status").await?;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(&session.id), "{body}");
        let (status, body) = panel_get(origin, "/api/sessions").await?;
        assert_ne!(status, 200, "{body}");

        // A viewer's capability opens neither the terminal nor VS Code.
        let theirs = workspace(&viewer, &session.id).await?;
        let viewer_origin = theirs["origin"].as_str().context("an origin")?;
        let viewer_ws = viewer_origin.replacen("http://", "ws://", 1);
        assert_eq!(
            panel_socket(&format!("{viewer_ws}/terminal/t1"))
                .await
                .err(),
            Some(403)
        );
        let (status, body) = panel_get(viewer_origin, "/vscode/").await?;
        assert_eq!(status, 403, "{body}");
        let (status, body) = panel_get(viewer_origin, "/status").await?;
        assert_eq!(status, 200, "{body}");

        // A forged capability, and one moved to another session.
        let ours = workspace(&collaborator, &session.id).await?;
        let origin = ours["origin"].as_str().context("an origin")?;
        let (status, body) = panel_get(&forged(origin), "/status").await?;
        assert_eq!(status, 401, "{body}");
        let other = owner.create_session().await?;
        let other_origin = workspace(&owner, &other.id).await?["origin"]
            .as_str()
            .context("an origin")?
            .to_owned();
        let (status, body) = panel_get(&moved_to(origin, &other_origin), "/status").await?;
        assert_eq!(status, 401, "{body}");
        let ws = moved_to(origin, &other_origin).replacen("http://", "ws://", 1);
        assert_eq!(
            panel_socket(&format!("{ws}/terminal/t1")).await.err(),
            Some(401)
        );

        // A team admin's panel dies the moment they are demoted: the grant was
        // decided with the team role of its minting.
        let stranger_id = stranger.user_id().await?;
        let member_path = format!("/api/admin/members/{stranger_id}");
        let role = |role: &str| serde_json::json!({ "role": role }).to_string();
        owner
            .expect::<Value>(Method::PATCH, &member_path, Some(&role("admin")), 200)
            .await?;
        let as_admin = workspace(&stranger, &session.id).await?;
        let admin_origin = as_admin["origin"].as_str().unwrap_or_default().to_owned();
        let (status, body) = panel_get(&admin_origin, "/status").await?;
        assert_eq!(status, 200, "{body}");
        owner
            .expect::<Value>(Method::PATCH, &member_path, Some(&role("member")), 200)
            .await?;
        let (status, body) = panel_get(&admin_origin, "/status").await?;
        assert_eq!(status, 401, "a demoted admin's panel still answers: {body}");

        // Once the collaborator's share is gone, their fresh capability is refused.
        let (status, _) = panel_get(origin, "/status").await?;
        assert_eq!(status, 200);
        owner
            .raw(
                Method::DELETE,
                &format!(
                    "/api/sessions/{}/shares/{}",
                    session.id,
                    collaborator.user_id().await?
                ),
                None,
            )
            .await?;
        let (status, body) = panel_get(origin, "/status").await?;
        assert_eq!(status, 401, "{body}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_grant_expires_unless_renewed_and_renewal_keeps_the_same_origin() {
    let (stack, _llm) = stack(GRANT_SECS).await;
    with_logs(&stack, async {
        let owner = stack.signed_in_api("owner@example.com").await?;
        let session = owner.create_session().await?;
        owner.wait_status(&session.id, "idle").await?;
        let first = workspace(&owner, &session.id).await?;
        let origin = first["origin"].as_str().context("an origin")?.to_owned();
        let grant = first["grant"].as_str().context("a grant")?.to_owned();

        // Renewed every second, the same origin works past several lifetimes.
        for _ in 0..(GRANT_SECS * 3) {
            let renewed = owner
                .expect::<Value>(
                    Method::GET,
                    &format!("/api/sessions/{}/workspace?renew={grant}", session.id),
                    None,
                    200,
                )
                .await?;
            assert_eq!(renewed["origin"], origin.as_str());
            let (status, body) = panel_get(&origin, "/status").await?;
            assert_eq!(status, 200, "{body}");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }

        // Left alone, it expires.
        tokio::time::sleep(Duration::from_secs(GRANT_SECS + 1)).await;
        let (status, body) = panel_get(&origin, "/status").await?;
        if status != 401 {
            bail!("an expired grant answered {status}: {body}");
        }
        // And cannot be renewed: a new grant (a new origin) is made instead.
        let fresh = owner
            .expect::<Value>(
                Method::GET,
                &format!("/api/sessions/{}/workspace?renew={grant}", session.id),
                None,
                200,
            )
            .await?;
        assert_ne!(fresh["origin"], origin.as_str());
        Ok(())
    })
    .await;
}
