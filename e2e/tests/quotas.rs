//! Quotas and paging on the real stack: no member takes more than the caps an admin
//! sets (live sessions with their sandboxes, keys), each refusal is 429
//! `quota_exceeded` and changes nothing, deleting a session frees its slot (and
//! destroys its sandbox), and the session list pages with a cursor.

use std::collections::BTreeSet;

use nightshift_e2e::stack::{Stack, StackOptions, with_logs};
use nightshift_protocol::api::SessionList;
use reqwest::Method;
use serde_json::{Value, json};

/// Sets the team's caps as an admin and answers the settings as stored.
async fn set_limits(
    admin: &nightshift_e2e::client::Api,
    limits: Value,
) -> anyhow::Result<nightshift_e2e::client::Answer> {
    let body = json!({"signin_policy": "invite_only", "limits": limits}).to_string();
    admin
        .raw(Method::PUT, "/api/admin/settings", Some(&body))
        .await
}

#[tokio::test]
async fn live_sessions_are_capped_per_member_and_deleting_one_frees_its_slot() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    with_logs(&stack, async {
        let admin = stack.signed_in_api("admin@example.com").await?;
        let member = stack.signed_in_member(&admin, "member@example.com").await?;
        let caps =
            json!({"live_sessions": 2, "queued_prompts": 100, "open_streams": 20, "keys": 20});
        let answer = set_limits(&admin, caps.clone()).await?;
        anyhow::ensure!(answer.status == 200, "{answer:?}");
        anyhow::ensure!(answer.body["limits"] == caps, "{answer:?}");

        let first = member.create_session().await?;
        let second = member.create_session().await?;
        let over = member
            .raw(Method::POST, "/api/sessions", Some("{}"))
            .await?;
        anyhow::ensure!(
            (over.status, over.error_code()) == (429, Some("quota_exceeded")),
            "{over:?}"
        );
        anyhow::ensure!(
            over.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("MAX_LIVE_SESSIONS")),
            "the refusal names the cap: {over:?}"
        );
        anyhow::ensure!(
            member.sessions().await?.len() == 2,
            "the refusal stored nothing"
        );
        // The cap is per member: the admin's own sessions do not count against it.
        admin.create_session().await?;

        // Only the owner or an admin deletes; a co-owner may not.
        let sandbox = member
            .wait_status(&first.id, "idle")
            .await?
            .sandbox_id
            .unwrap_or_default();
        let member_id = member
            .expect::<Value>(Method::GET, "/api/me", None, 200)
            .await?["user"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let helper = stack
            .signed_in_member(&admin, "coowner@example.com")
            .await?;
        let helper_id = helper
            .expect::<Value>(Method::GET, "/api/me", None, 200)
            .await?["user"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let share = member
            .raw(
                Method::PUT,
                &format!("/api/sessions/{}/shares/{helper_id}", first.id),
                Some(r#"{"role": "co_owner"}"#),
            )
            .await?;
        anyhow::ensure!(share.status < 300, "{share:?}");
        let refused = helper
            .raw(Method::DELETE, &format!("/api/sessions/{}", first.id), None)
            .await?;
        anyhow::ensure!(
            (refused.status, refused.error_code()) == (403, Some("forbidden")),
            "{refused:?}"
        );
        anyhow::ensure!(!member_id.is_empty());

        let mut list_stream = member.list_events().await?;
        let deleted = member
            .raw(Method::DELETE, &format!("/api/sessions/{}", first.id), None)
            .await?;
        anyhow::ensure!(deleted.status == 204, "{deleted:?}");
        let gone = member
            .raw(Method::GET, &format!("/api/sessions/{}", first.id), None)
            .await?;
        anyhow::ensure!(gone.status == 404, "{gone:?}");
        let event =
            tokio::time::timeout(std::time::Duration::from_secs(20), async {
                loop {
                    let event = list_stream.next_list_event().await?;
                    if let nightshift_protocol::events::SessionListEvent::SessionDeleted {
                        session_id,
                    } = &event
                        && *session_id == first.id
                    {
                        return anyhow::Ok(event);
                    }
                }
            })
            .await??;
        drop(event);
        // Its sandbox is destroyed with it.
        let http = reqwest::Client::new();
        let sandbox_answer = http
            .get(format!("{}/v1/sandboxes/{sandbox}", stack.backend_url()))
            .bearer_auth(&stack.backend_token)
            .send()
            .await?;
        let status = sandbox_answer.status().as_u16();
        let body: Value = sandbox_answer.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(
            status == 404 || body["status"] == "destroyed",
            "the sandbox outlived its session: {status} {body}"
        );
        // The slot is free again.
        member.create_session().await?;
        let ids: BTreeSet<String> = member.sessions().await?.into_iter().map(|s| s.id).collect();
        anyhow::ensure!(ids.len() == 2 && ids.contains(&second.id), "{ids:?}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn keys_are_capped_per_member_and_bad_caps_change_nothing() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    with_logs(&stack, async {
        let admin = stack.signed_in_api("admin@example.com").await?;
        let member = stack.signed_in_member(&admin, "member@example.com").await?;
        let before: Value = admin
            .expect(Method::GET, "/api/admin/settings", None, 200)
            .await?;
        for bad in [
            json!({"live_sessions": 0, "queued_prompts": 1, "open_streams": 1, "keys": 1}),
            json!({"live_sessions": 1, "queued_prompts": 1, "open_streams": 1, "keys": 100001}),
            json!({"live_sessions": 1}),
        ] {
            let answer = set_limits(&admin, bad.clone()).await?;
            anyhow::ensure!(answer.status == 400, "{bad}: {answer:?}");
        }
        let after: Value = admin
            .expect(Method::GET, "/api/admin/settings", None, 200)
            .await?;
        anyhow::ensure!(before == after, "a refused change wrote something: {after}");
        // Members may not set caps.
        let answer = set_limits(
            &member,
            json!({"live_sessions": 9, "queued_prompts": 9, "open_streams": 9, "keys": 9}),
        )
        .await?;
        anyhow::ensure!(answer.status == 403, "{answer:?}");

        let caps = json!({"live_sessions": 20, "queued_prompts": 100, "open_streams": 20, "keys": 2});
        anyhow::ensure!(set_limits(&admin, caps).await?.status == 200);
        let key = |n: usize| {
            json!({"scope": "user", "provider": "openai_compatible", "api_key": format!("sk-test-{n}-123456"),
                   "base_url": "https://api.example.org/v1", "models": ["m"], "name": format!("k{n}")})
            .to_string()
        };
        for n in 0..2 {
            let answer = member.raw(Method::POST, "/api/keys", Some(&key(n))).await?;
            anyhow::ensure!(answer.status == 201, "{answer:?}");
        }
        let over = member.raw(Method::POST, "/api/keys", Some(&key(2))).await?;
        anyhow::ensure!(
            (over.status, over.error_code()) == (429, Some("quota_exceeded")),
            "{over:?}"
        );
        anyhow::ensure!(
            over.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("MAX_KEYS")),
            "the refusal names the cap: {over:?}"
        );
        let keys: Vec<Value> = member.expect(Method::GET, "/api/keys", None, 200).await?;
        anyhow::ensure!(keys.len() == 2, "the refusal stored nothing: {keys:?}");
        // Another member's keys do not count against this one's.
        let other = stack.signed_in_member(&admin, "other@example.com").await?;
        let answer = other.raw(Method::POST, "/api/keys", Some(&key(3))).await?;
        anyhow::ensure!(answer.status == 201, "{answer:?}");
        let theirs: Vec<Value> = other.expect(Method::GET, "/api/keys", None, 200).await?;
        anyhow::ensure!(theirs.len() == 1, "a member sees only their keys: {theirs:?}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_member_pages_through_600_sessions_each_once_newest_first() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    with_logs(&stack, async {
        let admin = stack.signed_in_api("admin@example.com").await?;
        let member = stack.signed_in_member(&admin, "member@example.com").await?;
        let other = stack.signed_in_member(&admin, "other@example.com").await?;
        let member_id = member.user_id().await?;
        let other_id = other.user_id().await?;
        // 550 of the member's own (some sharing a creation time, so the cursor's tie
        // break counts), 50 of another member's shared with them, and 30 of the other
        // member's they may not see. Rows only: listing needs no sandbox.
        let insert = |owner: &str, prefix: &str, count: usize| {
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) \
                 INSERT INTO sessions (id, owner_id, title, status, agent, created_at, updated_at) \
                 SELECT printf('{prefix}-%04d', i), '{owner}', 'session ' || i, 'error', 'builtin', \
                 1700000000000 + (i / 3), 1700000000000 FROM n"
            )
        };
        stack.d1(&insert(&member_id, "mine", 550)).await?;
        stack.d1(&insert(&other_id, "shared", 50)).await?;
        stack.d1(&insert(&other_id, "private", 30)).await?;
        stack
            .d1(&format!(
                "INSERT INTO session_shares (session_id, user_id, role, created_by, created_at) \
                 SELECT id, '{member_id}', 'viewer', '{other_id}', 1700000000000 FROM sessions \
                 WHERE id LIKE 'shared-%'"
            ))
            .await?;

        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                Some(cursor) => format!("/api/sessions?limit=100&cursor={cursor}"),
                None => "/api/sessions?limit=100".to_string(),
            };
            let page: SessionList = member.expect(Method::GET, &path, None, 200).await?;
            pages += 1;
            anyhow::ensure!(page.sessions.len() <= 100);
            seen.extend(page.sessions.into_iter().map(|s| (s.created_at, s.id)));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
            anyhow::ensure!(pages <= 10, "the cursor never ends");
        }
        anyhow::ensure!(seen.len() == 600, "listed {} sessions", seen.len());
        let unique: BTreeSet<&String> = seen.iter().map(|(_, id)| id).collect();
        anyhow::ensure!(unique.len() == 600, "a session was listed twice");
        anyhow::ensure!(
            !unique.iter().any(|id| id.starts_with("private-")),
            "a session not shared with them was listed"
        );
        let mut sorted = seen.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        anyhow::ensure!(seen == sorted, "not newest first");
        anyhow::ensure!(pages == 6, "{pages} pages of 100");

        // The default page, and bad paging parameters.
        let first: SessionList = member.expect(Method::GET, "/api/sessions", None, 200).await?;
        anyhow::ensure!(first.sessions.len() == 50 && first.next_cursor.is_some());
        for bad in ["limit=0", "limit=201", "limit=x", "cursor=nonsense", "cursor=1.a'b"] {
            let answer = member
                .raw(Method::GET, &format!("/api/sessions?{bad}"), None)
                .await?;
            anyhow::ensure!(
                (answer.status, answer.error_code()) == (400, Some("invalid_request")),
                "{bad}: {answer:?}"
            );
        }
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_long_history_is_listed_by_its_newest_part_and_still_counted_whole() {
    let llm = nightshift_e2e::scripted_llm::ScriptedLlm::start()
        .await
        .unwrap();
    let stack = Stack::start(StackOptions {
        llm_base_url: Some(llm.base_url()),
        worker_vars: vec![("MAX_QUEUED_PROMPTS".into(), "1000".into())],
    })
    .await
    .unwrap();
    with_logs(&stack, async {
        let api = stack.signed_in_api("alice@example.com").await?;
        let session = api.create_session().await?;
        let total = 260;
        for n in 0..total {
            api.send(&session.id, &format!("prompt {n}")).await?;
        }
        let messages = api.wait_settled(&session.id).await?;
        // Queue operations and the listing read the open queue and the newest 200
        // prompts, not every prompt ever stored...
        anyhow::ensure!(messages.len() == 200, "listed {}", messages.len());
        anyhow::ensure!(
            messages.first().map(|m| m.content.as_str()) == Some("prompt 60")
                && messages.last().map(|m| m.content.as_str()) == Some("prompt 259"),
            "not the newest 200, oldest first"
        );
        // ...while the usage totals still count every turn.
        let usage = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            loop {
                let usage = api.session(&session.id).await?.usage;
                if usage.turns == total {
                    return anyhow::Ok(usage);
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        })
        .await??;
        anyhow::ensure!(usage.turns == total, "{usage:?}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn an_archived_session_frees_its_live_slot() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    with_logs(&stack, async {
        let admin = stack.signed_in_api("admin@example.com").await?;
        let member = stack.signed_in_member(&admin, "member@example.com").await?;
        let caps =
            json!({"live_sessions": 1, "queued_prompts": 100, "open_streams": 20, "keys": 20});
        let answer = set_limits(&admin, caps).await?;
        anyhow::ensure!(answer.status == 200, "{answer:?}");
        let first = member.create_session().await?;
        let over = member
            .raw(Method::POST, "/api/sessions", Some("{}"))
            .await?;
        anyhow::ensure!(
            (over.status, over.error_code()) == (429, Some("quota_exceeded")),
            "{over:?}"
        );
        let archived = member
            .raw(
                Method::POST,
                &format!("/api/sessions/{}/archive", first.id),
                None,
            )
            .await?;
        anyhow::ensure!(archived.status == 200, "{archived:?}");
        member.create_session().await?;
        Ok(())
    })
    .await;
}
