//! The edges of access, as an attacker inside the team would probe them, on the real
//! Worker: a removed co-owner and share links, grant tokens and read-only API tokens,
//! tokens minting tokens, whose key a prompt runs on, LLM base URLs that point
//! inside the platform, the development sign-in off loopback, and display names
//! outside ASCII.

use std::time::Duration;

use anyhow::Context;
use nightshift_e2e::client::{Api, Credentials};
use nightshift_e2e::stack::{Stack, StackOptions, with_logs};
use nightshift_protocol::api::QueueMode;
use reqwest::Method;
use serde_json::{Value, json};

async fn stack_with(vars: &[(&str, &str)]) -> Stack {
    Stack::start(StackOptions {
        llm_base_url: None,
        worker_vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
    .await
    .unwrap()
}

/// The token at the end of a share link's URL.
fn link_token(link: &Value) -> anyhow::Result<String> {
    let url = link["url"].as_str().context("a url")?;
    url.rsplit('/').next().map(str::to_owned).context("a token")
}

async fn create_link(api: &Api, session_id: &str, role: &str) -> anyhow::Result<Value> {
    let body = json!({"role": role, "expires_in_hours": 24, "max_uses": 10}).to_string();
    api.expect(
        Method::POST,
        &format!("/api/sessions/{session_id}/share-links"),
        Some(&body),
        201,
    )
    .await
}

#[tokio::test]
async fn a_removed_co_owner_cannot_come_back_through_a_share_link_they_created_or_saw() {
    let stack = stack_with(&[]).await;
    with_logs(&stack, async {
        let alice = stack.signed_in_api("alice@example.com").await?;
        let bob = stack.signed_in_member(&alice, "bob@example.com").await?;
        let carol = stack.signed_in_member(&alice, "carol@example.com").await?;
        let bob_id = bob.user_id().await?;
        let session = alice.create_session().await?;
        alice.share(&session.id, &bob_id, "co_owner").await?;

        // Bob, as co-owner, makes a link and sees the owner's.
        let bobs_link = create_link(&bob, &session.id, "co_owner").await?;
        let alices_link = create_link(&alice, &session.id, "viewer").await?;
        let seen: Value = bob
            .expect(
                Method::GET,
                &format!("/api/sessions/{}/shares", session.id),
                None,
                200,
            )
            .await?;
        assert_eq!(seen["links"].as_array().map(Vec::len), Some(2));

        // Alice removes him.
        let removed = alice
            .raw(
                Method::DELETE,
                &format!("/api/sessions/{}/shares/{bob_id}", session.id),
                None,
            )
            .await?;
        assert_eq!(removed.status, 204);
        for link in [&bobs_link, &alices_link] {
            let token = link_token(link)?;
            let answer = bob
                .raw(
                    Method::POST,
                    &format!("/api/share-links/{token}/accept"),
                    None,
                )
                .await?;
            assert_eq!(
                (answer.status, answer.error_code()),
                (404, Some("not_found")),
                "bob came back through {link}: {}",
                answer.body
            );
        }
        let answer = bob
            .raw(Method::GET, &format!("/api/sessions/{}", session.id), None)
            .await?;
        assert_eq!(answer.status, 404, "bob still sees the session");
        // His link died with his access; the owner's still works for others.
        let answer = carol
            .raw(
                Method::POST,
                &format!("/api/share-links/{}/accept", link_token(&bobs_link)?),
                None,
            )
            .await?;
        assert_eq!(
            answer.status, 404,
            "a removed co-owner's link still grants: {}",
            answer.body
        );
        let answer = carol
            .raw(
                Method::POST,
                &format!("/api/share-links/{}/accept", link_token(&alices_link)?),
                None,
            )
            .await?;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["role"], "viewer");
        // Re-shared on purpose, he is back.
        alice.share(&session.id, &bob_id, "viewer").await?;
        assert_eq!(bob.session(&session.id).await?.id, session.id);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_read_token_cannot_read_invite_or_share_link_tokens() {
    let stack = stack_with(&[]).await;
    with_logs(&stack, async {
        let alice = stack.signed_in_api("alice@example.com").await?;
        let session = alice.create_session().await?;
        let link = create_link(&alice, &session.id, "viewer").await?;
        let invite: Value = alice
            .expect(
                Method::POST,
                "/api/admin/invites",
                Some(&json!({"role": "member", "expires_in_hours": 1, "max_uses": 1}).to_string()),
                201,
            )
            .await?;
        let invite_token = invite["token"].as_str().context("a token")?.to_owned();
        let link_token = link_token(&link)?;
        let read: Value = alice
            .expect(
                Method::POST,
                "/api/tokens",
                Some(&json!({"name": "ro", "scopes": ["read"]}).to_string()),
                201,
            )
            .await?;
        let reader = stack.api().with_credentials(Credentials::Bearer(
            read["token"].as_str().context("t")?.into(),
        ));
        for path in [
            "/api/admin/invites".to_owned(),
            format!("/api/sessions/{}/shares", session.id),
        ] {
            let answer = reader.raw(Method::GET, &path, None).await?;
            let text = answer.body.to_string();
            assert!(
                !text.contains(&invite_token) && !text.contains(&link_token),
                "{path} showed a grant token to a read token: {text}"
            );
            assert_eq!(
                (answer.status, answer.error_code()),
                (403, Some("insufficient_scope")),
                "{path}"
            );
        }
        // The reader still reads what is not a grant.
        assert_eq!(reader.session(&session.id).await?.id, session.id);
        // Those who manage them (with a cookie or a write token) still see them.
        let listed: Value = alice
            .expect(Method::GET, "/api/admin/invites", None, 200)
            .await?;
        assert!(listed.to_string().contains(&invite_token));
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_token_cannot_mint_a_child_token_that_outlives_or_out_scopes_it() {
    let stack = stack_with(&[]).await;
    with_logs(&stack, async {
        let alice = stack.signed_in_api("alice@example.com").await?;
        let parent: Value = alice
            .expect(
                Method::POST,
                "/api/tokens",
                Some(
                    &json!({"name": "parent", "scopes": ["read", "write"], "expires_in_days": 1})
                        .to_string(),
                ),
                201,
            )
            .await?;
        let parent_expiry = parent["expires_at"].as_i64().context("an expiry")?;
        let minter = stack.api().with_credentials(Credentials::Bearer(
            parent["token"].as_str().context("t")?.into(),
        ));
        for body in [
            json!({"name": "forever", "scopes": ["read", "write"]}),
            json!({"name": "longer", "scopes": ["read"], "expires_in_days": 30}),
        ] {
            let answer = minter
                .raw(Method::POST, "/api/tokens", Some(&body.to_string()))
                .await?;
            assert_eq!(answer.status, 201, "{}", answer.body);
            let expiry = answer.body["expires_at"].as_i64();
            assert!(
                expiry.is_some_and(|expiry| expiry <= parent_expiry),
                "a child token outlives its parent: {} (parent {parent_expiry})",
                answer.body
            );
        }
        // A read-only token mints nothing at all.
        let child: Value = minter
            .expect(
                Method::POST,
                "/api/tokens",
                Some(&json!({"name": "ro", "scopes": ["read"]}).to_string()),
                201,
            )
            .await?;
        let reader = stack.api().with_credentials(Credentials::Bearer(
            child["token"].as_str().context("t")?.into(),
        ));
        let answer = reader
            .raw(
                Method::POST,
                "/api/tokens",
                Some(&json!({"name": "w", "scopes": ["read", "write"]}).to_string()),
            )
            .await?;
        assert_eq!(
            (answer.status, answer.error_code()),
            (403, Some("insufficient_scope"))
        );
        let tokens: Value = alice.expect(Method::GET, "/api/tokens", None, 200).await?;
        assert_eq!(
            tokens.as_array().map(Vec::len),
            Some(4),
            "the refusal stored nothing"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_prompt_runs_on_the_key_of_whoever_wrote_its_text() {
    // A long collect window keeps prompts queued while they are edited and merged.
    let stack = stack_with(&[("COLLECT_WINDOW_MS", "20000")]).await;
    with_logs(&stack, async {
        let alice = stack.signed_in_api("alice@example.com").await?;
        let bob = stack.signed_in_member(&alice, "bob@example.com").await?;
        let alice_id = alice.user_id().await?;
        let bob_id = bob.user_id().await?;
        let session = alice.create_session().await?;
        alice.share(&session.id, &bob_id, "collaborator").await?;

        let first = alice
            .send_mode(&session.id, "alice writes this", QueueMode::Collect)
            .await?;
        // Bob's collect prompt is not merged into Alice's: it is his own prompt.
        let second = bob
            .send_mode(&session.id, "bob writes this", QueueMode::Collect)
            .await?;
        assert_ne!(second.message_id, first.message_id);
        let messages = alice.messages(&session.id).await?;
        let senders: Vec<Option<&str>> = messages.iter().map(|m| m.sent_by.as_deref()).collect();
        assert_eq!(
            senders,
            vec![Some(alice_id.as_str()), Some(bob_id.as_str())],
            "{messages:?}"
        );
        assert!(
            !messages[0].content.contains("bob writes"),
            "merged across senders"
        );
        // Alice's own second collect prompt still merges into hers.
        let third = alice
            .send_mode(&session.id, "alice adds this", QueueMode::Collect)
            .await?;
        assert_eq!(
            third.message.id,
            first.message_id,
            "{:?}",
            alice.messages(&session.id).await?
        );

        // Bob rewrites Alice's queued prompt: it is his now, and runs on his key.
        let edited = bob
            .edit_message(&session.id, &first.message_id, "bob rewrote this")
            .await?;
        assert_eq!(edited.status, 200, "{}", edited.body);
        assert_eq!(edited.body["sent_by"], bob_id.as_str());
        let messages = alice.messages(&session.id).await?;
        assert_eq!(messages[0].sent_by.as_deref(), Some(bob_id.as_str()));
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn an_llm_key_aimed_inside_the_platform_is_refused_unless_allowlisted() {
    let stack = stack_with(&[
        ("LLM_BASE_URL_ALLOW", ""),
        ("WORKER_URL", "http://nightshift.example.com"),
    ])
    .await;
    with_logs(&stack, async {
        let alice = stack.signed_in_api("alice@example.com").await?;
        let key = |base_url: &str| {
            json!({"scope": "user", "provider": "openai_compatible", "api_key": "sk-test-123456",
                   "base_url": base_url, "models": ["m"], "name": "k"})
            .to_string()
        };
        for base_url in [
            "http://127.0.0.1:9/v1",
            "http://localhost:8080/v1",
            "http://169.254.169.254/latest",
            "http://10.0.0.5/v1",
            "http://192.168.1.10/v1",
            "http://[::1]:8080/v1",
            "http://[fd00::1]/v1",
            "http://0.0.0.0:8787/v1",
            "http://2130706433/v1",
            "http://nightshift.example.com/v1",
            &stack.backend_url(),
        ] {
            let answer = alice
                .raw(Method::POST, "/api/keys", Some(&key(base_url)))
                .await?;
            assert_eq!(
                (answer.status, answer.error_code()),
                (400, Some("base_url_not_allowed")),
                "{base_url}: {}",
                answer.body
            );
        }
        let keys: Value = alice.expect(Method::GET, "/api/keys", None, 200).await?;
        assert_eq!(keys, json!([]), "the refusals stored nothing");
        let answer = alice
            .raw(
                Method::POST,
                "/api/keys",
                Some(&key("https://api.example.org/v1")),
            )
            .await?;
        assert_eq!(answer.status, 201, "{}", answer.body);
        Ok(())
    })
    .await;
    drop(stack);

    // An operator's allowlist lets a local endpoint in.
    let stack = stack_with(&[("LLM_BASE_URL_ALLOW", "127.0.0.1, 10.0.0.0/8")]).await;
    with_logs(&stack, async {
        let alice = stack.signed_in_api("alice@example.com").await?;
        for base_url in ["http://127.0.0.1:9/v1", "http://10.1.2.3/v1"] {
            let body = json!({"scope": "user", "provider": "openai_compatible", "api_key": "sk-test-123456",
                              "base_url": base_url, "models": ["m"], "name": "k"});
            let answer = alice.raw(Method::POST, "/api/keys", Some(&body.to_string())).await?;
            assert_eq!(answer.status, 201, "{base_url}: {}", answer.body);
        }
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn the_development_sign_in_answers_only_on_a_loopback_host() {
    let stack = stack_with(&[]).await;
    with_logs(&stack, async {
        let http = reqwest::Client::new();
        let body = json!({"email": "mallory@example.com", "name": "mallory"});
        for host in ["nightshift.example.com", "10.0.0.8:8787"] {
            let answer = http
                .post(format!("{}/auth/dev/login", stack.worker_url()))
                .header("host", host)
                .json(&body)
                .send()
                .await?;
            let status = answer.status().as_u16();
            let cookie = answer.headers().get("set-cookie").is_some();
            let body: Value = answer.json().await.unwrap_or_default();
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (404, Some("dev_auth_disabled")),
                "{host}: {body}"
            );
            assert!(!cookie, "a session cookie was set for {host}");
            let providers: Value = http
                .get(format!("{}/auth/providers", stack.worker_url()))
                .header("host", host)
                .send()
                .await?
                .json()
                .await?;
            assert_eq!(providers["dev"], false, "{host}: {providers}");
        }
        assert!(
            stack
                .d1("SELECT id FROM users WHERE email = 'mallory@example.com'")
                .await?
                .is_empty(),
            "nobody was signed up"
        );
        // On loopback it works.
        stack.signed_in_api("alice@example.com").await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_display_name_in_any_script_is_shown_and_streamed() {
    let stack = stack_with(&[]).await;
    with_logs(&stack, async {
        let name = "Zoë 🚀 李";
        let alice = stack.signed_in_api("alice@example.com").await?;
        let body = json!({"role": "member", "expires_in_hours": 1, "max_uses": 1}).to_string();
        let invite: Value = alice
            .expect(Method::POST, "/api/admin/invites", Some(&body), 201)
            .await?;
        let zoe = stack
            .api()
            .dev_sign_in("zoe@example.com", name, invite["token"].as_str())
            .await?;
        let me: Value = zoe.expect(Method::GET, "/api/me", None, 200).await?;
        assert_eq!(me["user"]["name"], name);
        let session = zoe.create_session().await?;
        assert_eq!(zoe.session(&session.id).await?.id, session.id);

        // Watching streams her presence with her name intact.
        let mut stream = zoe.events(&session.id, None).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "no presence frame");
            let message = stream.next_message().await?;
            if message.data.contains("presence_changed") {
                let frame: Value = serde_json::from_str(&message.data)?;
                assert_eq!(frame["viewers"][0]["name"], name, "{frame}");
                break;
            }
        }
        let presence = zoe
            .raw(
                Method::POST,
                &format!("/api/sessions/{}/presence", session.id),
                Some("{}"),
            )
            .await?;
        assert!(presence.status < 300, "{}", presence.body);
        let viewers: Value = zoe
            .expect(
                Method::GET,
                &format!("/api/sessions/{}/presence", session.id),
                None,
                200,
            )
            .await?;
        assert_eq!(viewers[0]["name"], name, "{viewers}");
        // Renamed, still intact.
        let renamed = "Ünïcødé ✓ 名前";
        let answer = zoe
            .raw(
                Method::PATCH,
                "/api/me",
                Some(&json!({"name": renamed}).to_string()),
            )
            .await?;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let presence = zoe
            .raw(
                Method::POST,
                &format!("/api/sessions/{}/presence", session.id),
                Some("{}"),
            )
            .await?;
        assert!(presence.status < 300, "{}", presence.body);
        let viewers: Value = zoe
            .expect(
                Method::GET,
                &format!("/api/sessions/{}/presence", session.id),
                None,
                200,
            )
            .await?;
        assert!(viewers.to_string().contains(renamed), "{viewers}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_the_team_an_admin() {
    let stack = stack_with(&[]).await;
    with_logs(&stack, async {
        let alice = stack.signed_in_api("alice@example.com").await?;
        let bob = stack.signed_in_member(&alice, "bob@example.com").await?;
        let alice_path = format!("/api/admin/members/{}", alice.user_id().await?);
        let bob_path = format!("/api/admin/members/{}", bob.user_id().await?);
        let admin = json!({"role": "admin"}).to_string();
        let member = json!({"role": "member"}).to_string();
        for round in 0..5 {
            // Both admins again, then each demotes the other at the same moment.
            let answer = alice.raw(Method::PATCH, &bob_path, Some(&admin)).await?;
            assert_eq!(answer.status, 200, "round {round}: {}", answer.body);
            let (a, b) = tokio::join!(
                alice.raw(Method::PATCH, &bob_path, Some(&member)),
                bob.raw(Method::PATCH, &alice_path, Some(&member)),
            );
            let (a, b) = (a?, b?);
            let admins = stack
                .d1("SELECT user_id FROM memberships WHERE role = 'admin'")
                .await?;
            assert_eq!(
                admins.len(),
                1,
                "round {round}: {admins:?} ({} / {})",
                a.body,
                b.body
            );
            // One demotion lands; the other is refused: as the last admin's (409), or
            // because its sender was no longer admin when it was checked (403).
            let mut statuses = [a.status, b.status];
            statuses.sort_unstable();
            assert!(
                statuses == [200, 409] || statuses == [200, 403],
                "round {round}: {statuses:?}: {} / {}",
                a.body,
                b.body
            );
            if a.status != 200 {
                // Bob demoted Alice: he makes her admin again for the next round.
                let answer = bob.raw(Method::PATCH, &alice_path, Some(&admin)).await?;
                assert_eq!(answer.status, 200, "{}", answer.body);
            }
        }
        Ok(())
    })
    .await;
}

/// The status of `method path` for `api`, after a change that must hold at once.
async fn status(api: &Api, method: Method, path: &str, body: Option<&str>) -> u16 {
    api.raw(method, path, body)
        .await
        .map(|answer| answer.status)
        .unwrap_or(0)
}

/// The hot path (prompts, the queue, the event stream) is admitted by the session's
/// `SessionAgent` from the owner and shares it keeps, and by a sign-in the Worker
/// remembers for a few seconds; each revocation still holds the moment it returns.
#[tokio::test]
async fn revocations_hold_on_the_hot_path_the_moment_they_return() {
    let stack = stack_with(&[]).await;
    with_logs(&stack, async {
        let alice = stack.signed_in_api("alice@example.com").await?;
        let bob = stack.signed_in_member(&alice, "bob@example.com").await?;
        let carol = stack.signed_in_member(&alice, "carol@example.com").await?;
        let bob_id = bob.user_id().await?;
        let carol_id = carol.user_id().await?;
        let session = alice.create_session().await?;
        let messages = format!("/api/sessions/{}/messages", session.id);
        let events = format!("/api/sessions/{}/events?after=0", session.id);
        let prompt = json!({"content": "hello"}).to_string();

        // A stranger to the session learns nothing; an unknown id neither.
        assert_eq!(status(&bob, Method::GET, &messages, None).await, 404);
        assert_eq!(
            status(&bob, Method::POST, &messages, Some(&prompt)).await,
            404
        );
        let unknown = "/api/sessions/00000000000000000000000000000000/messages";
        assert_eq!(status(&alice, Method::GET, unknown, None).await, 404);

        // Shared as collaborator: he prompts; his sign-in is now remembered.
        alice.share(&session.id, &bob_id, "collaborator").await?;
        assert_eq!(
            status(&bob, Method::POST, &messages, Some(&prompt)).await,
            202
        );
        // Down to viewer: reading still works, prompting is refused at once.
        alice.share(&session.id, &bob_id, "viewer").await?;
        assert_eq!(status(&bob, Method::GET, &messages, None).await, 200);
        let refused = bob.raw(Method::POST, &messages, Some(&prompt)).await?;
        assert_eq!(
            (refused.status, refused.error_code()),
            (403, Some("forbidden")),
            "{}",
            refused.body
        );
        // Share removed: the session is gone for him at once, stream included.
        let removed = alice
            .raw(
                Method::DELETE,
                &format!("/api/sessions/{}/shares/{bob_id}", session.id),
                None,
            )
            .await?;
        assert_eq!(removed.status, 204);
        assert_eq!(status(&bob, Method::GET, &messages, None).await, 404);
        assert_eq!(status(&bob, Method::GET, &events, None).await, 404);
        assert_eq!(
            status(&bob, Method::POST, &messages, Some(&prompt)).await,
            404
        );

        // Carol made admin sees every session; demoted, she does not, at once.
        let member = |role: &str| json!({ "role": role }).to_string();
        let carol_admin = format!("/api/admin/members/{carol_id}");
        alice
            .expect::<Value>(Method::PATCH, &carol_admin, Some(&member("admin")), 200)
            .await?;
        assert_eq!(status(&carol, Method::GET, &messages, None).await, 200);
        alice
            .expect::<Value>(Method::PATCH, &carol_admin, Some(&member("member")), 200)
            .await?;
        assert_eq!(status(&carol, Method::GET, &messages, None).await, 404);

        // Bob removed from the team: signed out everywhere, at once.
        assert_eq!(status(&bob, Method::GET, "/api/sessions", None).await, 200);
        let gone = alice
            .raw(
                Method::DELETE,
                &format!("/api/admin/members/{bob_id}"),
                None,
            )
            .await?;
        assert_eq!(gone.status, 204, "{}", gone.body);
        assert_eq!(status(&bob, Method::GET, "/api/sessions", None).await, 401);
        Ok(())
    })
    .await;
}
