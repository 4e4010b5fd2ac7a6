//! Ending sessions on the real stack (wrangler dev, the sandbox backend with
//! bubblewrap sandboxes, the scripted LLM): archiving keeps the history readable,
//! refuses a prompt with `session_archived` and leaves no sandbox; deleting leaves
//! no sandbox, no D1 row, no R2 object and nothing of the session in the local state
//! on disk; bulk requests answer per id; the list filters, searches and pages; and
//! only the owner or an admin ends a session.

use std::collections::BTreeSet;
use std::time::Duration;

use nightshift_e2e::WAIT;
use nightshift_e2e::artifacts::{png_header, upload};
use nightshift_e2e::client::{Api, agent_text};
use nightshift_e2e::local_state::places_holding;
use nightshift_e2e::stack::{Stack, stack_with_llm, with_logs};
use nightshift_protocol::api::{Session, SessionList, SessionStatus};
use nightshift_protocol::events::EventBody;
use nightshift_protocol::sandbox::SandboxList;
use reqwest::Method;
use serde_json::{Value, json};

/// The ids of the sandboxes the backend has now.
async fn backend_sandboxes(stack: &Stack) -> anyhow::Result<BTreeSet<String>> {
    let list: SandboxList = reqwest::Client::new()
        .get(format!("{}/v1/sandboxes", stack.backend_url()))
        .bearer_auth(&stack.backend_token)
        .timeout(WAIT)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(list
        .sandboxes
        .into_iter()
        .map(|sandbox| sandbox.id)
        .collect())
}

/// A session of `api`'s, titled `title`, whose runner is connected.
async fn ready_session(api: &Api, title: &str) -> anyhow::Result<Session> {
    let session = api.create_session_with(json!({ "title": title })).await?;
    api.wait_status(&session.id, "idle").await
}

/// `GET /api/sessions` with `query`, the whole answer.
async fn list(api: &Api, query: &str) -> anyhow::Result<SessionList> {
    api.expect(Method::GET, &format!("/api/sessions?{query}"), None, 200)
        .await
}

/// Every page of `GET /api/sessions?{query}&limit=2`, as titles in list order.
async fn all_pages(api: &Api, query: &str) -> anyhow::Result<Vec<String>> {
    let mut titles = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let page_query = match &cursor {
            Some(cursor) => format!("{query}&limit=2&cursor={}", urlencoding(cursor)),
            None => format!("{query}&limit=2"),
        };
        let page = list(api, &page_query).await?;
        anyhow::ensure!(page.sessions.len() <= 2, "a page holds at most its limit");
        titles.extend(page.sessions.into_iter().map(|session| session.title));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(titles),
        }
    }
    anyhow::bail!("the list never ended")
}

/// Query-string escaping for the few characters the tests' values hold.
fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

async fn archive(api: &Api, id: &str) -> anyhow::Result<nightshift_e2e::client::Answer> {
    api.raw(Method::POST, &format!("/api/sessions/{id}/archive"), None)
        .await
}

#[tokio::test]
async fn archiving_keeps_the_history_refuses_prompts_and_destroys_the_sandbox() {
    let (stack, _llm) = stack_with_llm().await.unwrap();
    with_logs(&stack, async {
        let owner = stack.signed_in_api("owner@example.com").await?;
        let viewer = stack.signed_in_member(&owner, "viewer@example.com").await?;
        let collaborator = stack
            .signed_in_member(&owner, "collaborator@example.com")
            .await?;
        let session = ready_session(&owner, "to archive").await?;
        let sandbox_id = session.sandbox_id.clone().unwrap_or_default();
        anyhow::ensure!(backend_sandboxes(&stack).await?.contains(&sandbox_id));
        owner.send(&session.id, "remember the archive").await?;
        owner.wait_settled(&session.id).await?;
        owner
            .share(&session.id, &viewer.user_id().await?, "viewer")
            .await?;
        owner
            .share(&session.id, &collaborator.user_id().await?, "collaborator")
            .await?;

        // Neither a viewer nor a collaborator may archive.
        for (who, api) in [("viewer", &viewer), ("collaborator", &collaborator)] {
            let refused = archive(api, &session.id).await?;
            anyhow::ensure!(
                (refused.status, refused.error_code()) == (403, Some("forbidden")),
                "{who}: {refused:?}"
            );
        }
        anyhow::ensure!(owner.session(&session.id).await?.archived_at.is_none());

        let archived = archive(&owner, &session.id).await?;
        anyhow::ensure!(archived.status == 200, "{archived:?}");
        let archived: Session = serde_json::from_value(archived.body)?;
        anyhow::ensure!(archived.status == SessionStatus::Archived, "{archived:?}");
        let archived_at = archived.archived_at.expect("an archived session says when");
        // Archiving again changes nothing.
        let again = archive(&owner, &session.id).await?;
        anyhow::ensure!(again.status == 200, "{again:?}");
        anyhow::ensure!(again.body["archived_at"] == json!(archived_at), "{again:?}");

        // The sandbox is gone from the backend and from disk.
        anyhow::ensure!(!backend_sandboxes(&stack).await?.contains(&sandbox_id));
        anyhow::ensure!(!stack.workspace(&sandbox_id).exists());

        // The history stays readable, for the viewer too.
        for api in [&owner, &viewer] {
            let messages = api.messages(&session.id).await?;
            anyhow::ensure!(
                messages
                    .iter()
                    .any(|message| message.content == "remember the archive"
                        && message.reply.as_deref() == Some("echo: remember the archive")),
                "{messages:?}"
            );
        }
        let mut stream = viewer.events(&session.id, None).await?;
        let replayed = stream
            .until(|body| {
                matches!(
                    body,
                    EventBody::StatusChanged {
                        status: SessionStatus::Archived
                    }
                )
            })
            .await?;
        anyhow::ensure!(replayed.iter().any(|event| {
            agent_text(&event.body).is_some_and(|text| text.contains("remember the archive"))
        }));

        // What would run the agent or reach the sandbox is refused, saying why.
        let refusals = [
            (
                Method::POST,
                format!("/api/sessions/{}/messages", session.id),
                Some(r#"{"content": "wake up"}"#),
            ),
            (
                Method::POST,
                format!("/api/sessions/{}/questions/q1/answer", session.id),
                Some(r#"{"answer": "yes"}"#),
            ),
            (
                Method::GET,
                format!("/api/sessions/{}/workspace", session.id),
                None,
            ),
        ];
        for (method, path, body) in refusals {
            let refused = collaborator.raw(method, &path, body).await?;
            anyhow::ensure!(
                (refused.status, refused.error_code()) == (409, Some("session_archived")),
                "{path}: {refused:?}"
            );
            let message = refused.body["error"]["message"]
                .as_str()
                .unwrap_or_default();
            anyhow::ensure!(
                message.contains("archived") && message.contains("checkpoint"),
                "{message}"
            );
        }

        // Nothing is provisioned again.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let still = owner.session(&session.id).await?;
        anyhow::ensure!(
            still.status == SessionStatus::Archived && still.sandbox_id.is_none(),
            "{still:?}"
        );
        anyhow::ensure!(!backend_sandboxes(&stack).await?.contains(&sandbox_id));
        anyhow::ensure!(
            owner.messages(&session.id).await?.len() == 1,
            "the refused prompt was not stored"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn deleting_a_session_leaves_nothing_of_it_behind() {
    let (mut stack, _llm) = stack_with_llm().await.unwrap();
    let mut session_id = String::new();
    let secret = "zq-delete-marker-7f3a";
    with_logs(&stack, async {
        let owner = stack.signed_in_api("owner@example.com").await?;
        let viewer = stack.signed_in_member(&owner, "viewer@example.com").await?;
        let session = ready_session(&owner, "to delete").await?;
        session_id = session.id.clone();
        let sandbox_id = session.sandbox_id.clone().unwrap_or_default();
        owner.send(&session.id, secret).await?;
        owner.wait_settled(&session.id).await?;
        let token = stack.runner_token(&session.id)?;
        let (status, created) =
            upload(&stack, &session.id, &token, "image/png", png_header(8, 8)).await?;
        anyhow::ensure!(status == 201, "{created}");
        owner
            .share(&session.id, &viewer.user_id().await?, "viewer")
            .await?;
        owner
            .expect::<Value>(
                Method::POST,
                &format!("/api/sessions/{}/share-links", session.id),
                Some(r#"{"role": "viewer", "expires_in_hours": 1, "max_uses": 1}"#),
                201,
            )
            .await?;

        // A viewer cannot delete.
        let refused = viewer
            .raw(
                Method::DELETE,
                &format!("/api/sessions/{}", session.id),
                None,
            )
            .await?;
        anyhow::ensure!(
            (refused.status, refused.error_code()) == (403, Some("forbidden")),
            "{refused:?}"
        );

        let deleted = owner
            .raw(
                Method::DELETE,
                &format!("/api/sessions/{}", session.id),
                None,
            )
            .await?;
        anyhow::ensure!(deleted.status == 204, "{deleted:?}");

        for path in ["", "/messages", "/events"] {
            let gone = owner
                .raw(
                    Method::GET,
                    &format!("/api/sessions/{}{path}", session.id),
                    None,
                )
                .await?;
            anyhow::ensure!(gone.status == 404, "{path}: {gone:?}");
        }
        let artifact = created["artifact"].as_str().unwrap_or_default();
        anyhow::ensure!(!artifact.is_empty(), "{created}");
        let gone = owner
            .raw(
                Method::GET,
                &format!("/api/sessions/{}/artifacts/{artifact}", session.id),
                None,
            )
            .await?;
        anyhow::ensure!(gone.status == 404, "{gone:?}");
        anyhow::ensure!(!backend_sandboxes(&stack).await?.contains(&sandbox_id));
        anyhow::ensure!(!stack.workspace(&sandbox_id).exists());

        for table in [
            "sessions",
            "session_shares",
            "share_links",
            "share_removals",
        ] {
            let column = if table == "sessions" {
                "id"
            } else {
                "session_id"
            };
            let rows = stack
                .d1(&format!(
                    "SELECT COUNT(*) AS n FROM {table} WHERE {column} = '{}'",
                    session.id
                ))
                .await?;
            anyhow::ensure!(rows[0]["n"] == json!(0), "{table}: {rows:?}");
        }
        Ok(())
    })
    .await;
    // Nothing of the session stays in the Worker's local state (D1, R2, the
    // object's storage): no row and no file holds its id or what was said in it.
    // Read once the Worker has stopped, as the databases' own readers would.
    stack.stop_worker().await;
    let state = stack.persist_dir();
    assert!(!session_id.is_empty(), "the test ran");
    for needle in [session_id.as_str(), secret] {
        let holding = places_holding(&state, needle).unwrap();
        assert!(holding.is_empty(), "{needle} is still in {holding:?}");
    }
}

#[tokio::test]
async fn bulk_requests_answer_per_session_and_refuse_bad_bodies_whole() {
    let (stack, _llm) = stack_with_llm().await.unwrap();
    with_logs(&stack, async {
        // The first to sign in is the team's admin; the owner here is a member.
        let admin = stack.signed_in_api("admin@example.com").await?;
        let owner = stack.signed_in_member(&admin, "owner@example.com").await?;
        let other = stack.signed_in_member(&admin, "other@example.com").await?;
        let first = ready_session(&owner, "bulk one").await?;
        let second = ready_session(&owner, "bulk two").await?;
        let theirs = ready_session(&other, "not mine").await?;
        other
            .share(&theirs.id, &owner.user_id().await?, "collaborator")
            .await?;

        // Bad bodies are refused whole: nothing is archived.
        let too_many: Vec<String> = (0..101).map(|n| format!("s{n}")).collect();
        let bad_bodies = [
            (
                json!({"action": "archive", "ids": too_many}),
                "invalid_request",
            ),
            (json!({"action": "archive", "ids": []}), "invalid_request"),
            (
                json!({"action": "archive", "ids": [first.id, first.id]}),
                "invalid_request",
            ),
            (json!({"action": "burn", "ids": [first.id]}), "invalid_json"),
            (json!({"ids": [first.id]}), "invalid_json"),
        ];
        for (body, code) in bad_bodies {
            let refused = owner
                .raw(Method::POST, "/api/sessions/bulk", Some(&body.to_string()))
                .await?;
            anyhow::ensure!(
                (refused.status, refused.error_code()) == (400, Some(code)),
                "{body}: {refused:?}"
            );
        }
        anyhow::ensure!(owner.session(&first.id).await?.status == SessionStatus::Idle);

        let body = json!({
            "action": "archive",
            "ids": [first.id, theirs.id, "missing-session", second.id],
        });
        let answer: Value = owner
            .expect(
                Method::POST,
                "/api/sessions/bulk",
                Some(&body.to_string()),
                200,
            )
            .await?;
        let outcomes: Vec<(String, bool, Value)> = answer["results"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|outcome| {
                (
                    outcome["id"].as_str().unwrap_or_default().to_owned(),
                    outcome["ok"].as_bool().unwrap_or_default(),
                    outcome["error"].clone(),
                )
            })
            .collect();
        anyhow::ensure!(
            outcomes
                == vec![
                    (first.id.clone(), true, Value::Null),
                    (theirs.id.clone(), false, json!("forbidden")),
                    ("missing-session".to_owned(), false, json!("not_found")),
                    (second.id.clone(), true, Value::Null),
                ],
            "{answer}"
        );
        for id in [&first.id, &second.id] {
            anyhow::ensure!(owner.session(id).await?.status == SessionStatus::Archived);
        }
        anyhow::ensure!(other.session(&theirs.id).await?.status == SessionStatus::Idle);

        let body = json!({"action": "delete", "ids": [first.id, theirs.id]});
        let answer: Value = owner
            .expect(
                Method::POST,
                "/api/sessions/bulk",
                Some(&body.to_string()),
                200,
            )
            .await?;
        anyhow::ensure!(
            answer["results"][0]["ok"] == json!(true)
                && answer["results"][1]["error"] == json!("forbidden"),
            "{answer}"
        );
        let gone = owner
            .raw(Method::GET, &format!("/api/sessions/{}", first.id), None)
            .await?;
        anyhow::ensure!(gone.status == 404, "{gone:?}");
        anyhow::ensure!(other.session(&theirs.id).await?.status == SessionStatus::Idle);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn the_list_filters_by_scope_searches_titles_and_pages() {
    let (stack, _llm) = stack_with_llm().await.unwrap();
    with_logs(&stack, async {
        let admin = stack.signed_in_api("admin@example.com").await?;
        let member = stack.signed_in_member(&admin, "member@example.com").await?;
        let stranger = stack
            .signed_in_member(&admin, "stranger@example.com")
            .await?;
        for title in [
            "Alpha fix one",
            "alpha FIX two",
            "alpha three",
            "beta",
            "100% done",
        ] {
            member
                .create_session_with(json!({ "title": title }))
                .await?;
        }
        let archived = member
            .create_session_with(json!({"title": "alpha fix archived"}))
            .await?;
        let shared = stranger
            .create_session_with(json!({"title": "alpha shared fix"}))
            .await?;
        stranger
            .share(&shared.id, &member.user_id().await?, "viewer")
            .await?;
        let stray = stranger
            .create_session_with(json!({"title": "stranger's own"}))
            .await?;
        let answer = archive(&member, &archived.id).await?;
        anyhow::ensure!(answer.status == 200, "{answer:?}");

        let sorted = |mut titles: Vec<String>| {
            titles.sort();
            titles
        };
        let owned = |titles: &[&str]| sorted(titles.iter().map(|t| (*t).to_owned()).collect());

        // Default: every scope, not archived, paged.
        anyhow::ensure!(
            sorted(all_pages(&member, "").await?)
                == owned(&[
                    "Alpha fix one",
                    "alpha FIX two",
                    "alpha three",
                    "beta",
                    "100% done",
                    "alpha shared fix",
                ])
        );
        // Search: every word, any case, across pages.
        let fixes = all_pages(&member, "q=FIX%20alpha").await?;
        anyhow::ensure!(
            sorted(fixes.clone()) == owned(&["Alpha fix one", "alpha FIX two", "alpha shared fix"]),
            "{fixes:?}"
        );
        anyhow::ensure!(
            all_pages(&member, "scope=mine&q=fix").await?.len() == 2,
            "the shared one is not mine"
        );
        anyhow::ensure!(all_pages(&member, "scope=shared").await? == vec!["alpha shared fix"],);
        anyhow::ensure!(
            all_pages(&member, "scope=team").await? == vec!["alpha shared fix"],
            "for a member the team's are those shared with them"
        );
        // A wildcard is a character like any other.
        anyhow::ensure!(all_pages(&member, "q=%25").await? == vec!["100% done"]);
        anyhow::ensure!(all_pages(&member, "q=_").await?.is_empty());
        // Archived ones only when asked.
        anyhow::ensure!(all_pages(&member, "archived=true").await? == vec!["alpha fix archived"]);
        anyhow::ensure!(all_pages(&member, "archived=any&q=fix").await?.len() == 4);
        // An admin's team scope is the whole team's.
        let team = all_pages(&admin, "scope=team&archived=any").await?;
        anyhow::ensure!(team.len() == 8, "{team:?}");
        anyhow::ensure!(team.contains(&"stranger's own".to_owned()));
        anyhow::ensure!(all_pages(&admin, "scope=mine").await?.is_empty());
        let _ = stray;

        // A cursor continues only the list of its own filter.
        let page = list(&member, "q=alpha&limit=1").await?;
        let cursor = page.next_cursor.expect("more than one alpha");
        let refused = member
            .raw(
                Method::GET,
                &format!(
                    "/api/sessions?q=beta&limit=1&cursor={}",
                    urlencoding(&cursor)
                ),
                None,
            )
            .await?;
        anyhow::ensure!(
            (refused.status, refused.error_code()) == (400, Some("invalid_request")),
            "{refused:?}"
        );
        // Bad values are refused with a stable code.
        for query in [
            "scope=everyone",
            "archived=maybe",
            "limit=0",
            "cursor=junk",
            "q=a%20b%20c%20d%20e%20f%20g%20h%20i",
        ] {
            let refused = member
                .raw(Method::GET, &format!("/api/sessions?{query}"), None)
                .await?;
            anyhow::ensure!(
                (refused.status, refused.error_code()) == (400, Some("invalid_request")),
                "{query}: {refused:?}"
            );
        }
        Ok(())
    })
    .await;
}
