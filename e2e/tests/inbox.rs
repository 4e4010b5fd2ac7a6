//! Telling people, on the real stack (wrangler dev, the sandbox backend with
//! bubblewrap sandboxes, the scripted LLM): a finished turn, a failed turn and a
//! question each make one inbox entry for the user they concern and nobody else
//! (another member and a viewer of the shared session get nothing), live on the
//! user's own list stream; read marks; paging; the entries go with their session.
//! The team's webhook receives Slack-shaped posts on a real HTTP server, each held
//! to Slack's own definition (`nightshift_e2e::slack_webhook`); bad URLs are 400
//! `webhook_url_not_allowed`; a member can neither set nor read it; a failing
//! receiver is counted, not retried.

use std::time::Duration;

use nightshift_e2e::WAIT;
use nightshift_e2e::client::{Api, SseStream};
use nightshift_e2e::scripted_llm::{Script, Step};
use nightshift_e2e::slack_webhook::{SlackDefinition, SlackReceiver};
use nightshift_e2e::stack::{stack_with_llm, with_logs};
use nightshift_protocol::events::{EventBody, SessionListEvent};
use nightshift_protocol::inbox::{
    InboxEntry, InboxKind, InboxPage, MarkedRead, WebhookSettings, WebhookTestResult,
};
use reqwest::Method;
use serde_json::json;

async fn inbox(api: &Api, query: &str) -> anyhow::Result<InboxPage> {
    api.expect(Method::GET, &format!("/api/inbox{query}"), None, 200)
        .await
}

/// Polls `api`'s inbox until it holds `count` entries (entries are written after
/// the event's answer, in the background).
async fn inbox_with(api: &Api, count: usize) -> anyhow::Result<InboxPage> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = inbox(api, "").await?;
        if page.entries.len() >= count {
            anyhow::ensure!(page.entries.len() == count, "too many: {page:#?}");
            return Ok(page);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the inbox never held {count} entries: {page:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The next inbox change on a list stream, skipping the list's own events.
async fn next_inbox_change(stream: &mut SseStream) -> anyhow::Result<(Option<InboxEntry>, u32)> {
    loop {
        let event = tokio::time::timeout(WAIT, stream.next_list_event()).await??;
        if let SessionListEvent::InboxChanged { entry, unread } = event {
            return Ok((entry, unread));
        }
    }
}

async fn mark_read(api: &Api, body: &str) -> anyhow::Result<nightshift_e2e::client::Answer> {
    api.raw(Method::POST, "/api/inbox/read", Some(body)).await
}

#[tokio::test]
async fn turns_and_questions_tell_the_user_they_concern_and_nobody_else() {
    let (stack, llm) = stack_with_llm().await.unwrap();
    with_logs(&stack, async {
        let owner = stack.signed_in_api("owner@example.com").await?;
        let other = stack.signed_in_member(&owner, "other@example.com").await?;
        let viewer = stack.signed_in_member(&owner, "viewer@example.com").await?;
        let session = owner
            .create_session_with(json!({ "title": "Inbox journey" }))
            .await?;
        owner.wait_status(&session.id, "idle").await?;
        owner
            .share(&session.id, &viewer.user_id().await?, "viewer")
            .await?;
        let mut owner_list = owner.list_events().await?;
        let mut viewer_list = viewer.list_events().await?;

        // A finished turn: one entry, the reply's excerpt, live on the owner's stream.
        owner.send(&session.id, "MARK-INBOX-DONE hello").await?;
        let stored = inbox_with(&owner, 1).await?;
        let (entry, unread) = next_inbox_change(&mut owner_list).await?;
        anyhow::ensure!(Some(&stored.entries[0]) == entry.as_ref(), "{stored:?}");
        let entry = entry.expect("a new entry");
        anyhow::ensure!(unread == 1, "{unread}");
        anyhow::ensure!(entry.kind == InboxKind::TurnFinished, "{entry:?}");
        anyhow::ensure!(entry.session_id == session.id);
        anyhow::ensure!(entry.title == "Inbox journey", "{entry:?}");
        anyhow::ensure!(
            entry.text == "echo: MARK-INBOX-DONE hello",
            "the reply's excerpt: {entry:?}"
        );
        anyhow::ensure!(entry.read_at.is_none());
        owner.wait_settled(&session.id).await?;

        // A failed turn (the LLM refuses every attempt): one entry with the error.
        llm.refuse_next("MARK-INBOX-FAIL", 10);
        owner.send(&session.id, "MARK-INBOX-FAIL please").await?;
        owner.wait_settled(&session.id).await?;
        let page = inbox_with(&owner, 2).await?;
        let failed = &page.entries[0];
        anyhow::ensure!(failed.kind == InboxKind::TurnFailed, "{page:#?}");
        anyhow::ensure!(!failed.text.is_empty());

        // A question: one entry while the turn waits, then the turn's end.
        llm.on(
            "MARK-INBOX-ASK",
            Script::new(vec![
                Step::tool(
                    "ask_user",
                    json!({"question": "Which colour, red or blue?", "options": ["red", "blue"]}),
                ),
                Step::text("blue it is"),
            ]),
        );
        let mut events = owner.events(&session.id, None).await?;
        owner.send(&session.id, "MARK-INBOX-ASK pick").await?;
        let seen = events
            .until(|body| matches!(body, EventBody::QuestionAsked { .. }))
            .await?;
        let Some(EventBody::QuestionAsked { question_id, .. }) =
            seen.last().map(|event| event.body.clone())
        else {
            anyhow::bail!("no question");
        };
        let page = inbox_with(&owner, 3).await?;
        let asked = &page.entries[0];
        anyhow::ensure!(asked.kind == InboxKind::Question, "{page:#?}");
        anyhow::ensure!(asked.text.contains("Which colour"), "{asked:?}");
        let answered = owner
            .answer_question(&session.id, &question_id, "blue")
            .await?;
        anyhow::ensure!(answered.status == 200, "{answered:?}");
        owner.wait_settled(&session.id).await?;
        let page = inbox_with(&owner, 4).await?;
        anyhow::ensure!(page.unread == 4, "{page:#?}");
        let kinds: Vec<InboxKind> = page.entries.iter().map(|entry| entry.kind).collect();
        anyhow::ensure!(
            kinds
                == [
                    InboxKind::TurnFinished,
                    InboxKind::Question,
                    InboxKind::TurnFailed,
                    InboxKind::TurnFinished
                ],
            "newest first: {kinds:?}"
        );

        // Nobody else was told: not another member, not the viewer, live or stored.
        for api in [&other, &viewer] {
            let page = inbox(api, "").await?;
            anyhow::ensure!(page.entries.is_empty() && page.unread == 0, "{page:#?}");
        }
        let heard = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                if let SessionListEvent::InboxChanged { .. } = viewer_list.next_list_event().await?
                {
                    return anyhow::Ok(());
                }
            }
        })
        .await;
        anyhow::ensure!(heard.is_err(), "the viewer's stream heard an inbox change");

        // Pages: newest first, strictly after the cursor, no entry twice.
        let first = inbox(&owner, "?limit=3").await?;
        let cursor = first.next_cursor.clone().expect("a next page");
        let second = inbox(&owner, &format!("?limit=3&cursor={cursor}")).await?;
        anyhow::ensure!(second.entries.len() == 1 && second.next_cursor.is_none());
        anyhow::ensure!(
            !first
                .entries
                .iter()
                .any(|entry| entry.id == second.entries[0].id)
        );
        for bad in ["?cursor=zz", "?limit=0", "?limit=101"] {
            let refused = owner
                .raw(Method::GET, &format!("/api/inbox{bad}"), None)
                .await?;
            anyhow::ensure!(
                (refused.status, refused.error_code()) == (400, Some("invalid_request")),
                "{bad}: {refused:?}"
            );
        }

        // Read marks: bad bodies change nothing; another user's ids mark nothing.
        for bad in [
            "{}",
            r#"{"ids": ["x"], "all": true}"#,
            r#"{"all": false}"#,
            r#"{"every": true}"#,
            "not json",
        ] {
            let refused = mark_read(&owner, bad).await?;
            anyhow::ensure!(refused.status == 400, "{bad}: {refused:?}");
        }
        let newest = page.entries[0].id.clone();
        let stolen = mark_read(&other, &json!({ "ids": [newest] }).to_string()).await?;
        anyhow::ensure!(stolen.status == 200, "{stolen:?}");
        anyhow::ensure!(stolen.body["marked"] == 0, "{stolen:?}");
        anyhow::ensure!(inbox(&owner, "").await?.unread == 4);

        let marked: MarkedRead = owner
            .expect(
                Method::POST,
                "/api/inbox/read",
                Some(&json!({ "ids": [newest] }).to_string()),
                200,
            )
            .await?;
        anyhow::ensure!(
            marked
                == MarkedRead {
                    marked: 1,
                    unread: 3
                },
            "{marked:?}"
        );
        let (entry, unread) = next_inbox_change(&mut owner_list).await?;
        // The stream may still hold the entries' own announcements; skip to the mark.
        let (mut entry, mut unread) = (entry, unread);
        while entry.is_some() {
            (entry, unread) = next_inbox_change(&mut owner_list).await?;
        }
        anyhow::ensure!(unread == 3, "{unread}");
        let page = inbox(&owner, "").await?;
        anyhow::ensure!(page.entries[0].read_at.is_some());
        let all: MarkedRead = owner
            .expect(
                Method::POST,
                "/api/inbox/read",
                Some(r#"{"all": true}"#),
                200,
            )
            .await?;
        anyhow::ensure!(
            all == MarkedRead {
                marked: 3,
                unread: 0
            },
            "{all:?}"
        );

        // Deleting the session takes its entries with it.
        let deleted = owner
            .raw(
                Method::DELETE,
                &format!("/api/sessions/{}", session.id),
                None,
            )
            .await?;
        anyhow::ensure!(deleted.status == 204, "{deleted:?}");
        let page = inbox(&owner, "").await?;
        anyhow::ensure!(page.entries.is_empty(), "{page:#?}");
        let rows = stack
            .d1(&format!(
                "SELECT COUNT(*) AS n FROM inbox WHERE session_id = '{}'",
                session.id
            ))
            .await?;
        anyhow::ensure!(
            rows.first().map(|row| row["n"].clone()) == Some(json!(0)),
            "{rows:?}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn the_team_webhook_gets_slack_shaped_posts_and_only_admins_set_it() {
    let definition = SlackDefinition::load().unwrap();
    let (stack, _llm) = stack_with_llm().await.unwrap();
    let receiver = SlackReceiver::start().await.unwrap();
    with_logs(&stack, async {
        let admin = stack.signed_in_api("admin@example.com").await?;
        let member = stack.signed_in_member(&admin, "member@example.com").await?;

        // Only https to public hosts (plain http to loopback on this dev stack).
        for bad in [
            "http://hooks.example.com/services/x",
            "https://127.0.0.1/services/x",
            "https://10.1.2.3/services/x",
            "ftp://hooks.example.com/x",
            "https://user:secret@hooks.example.com/x",
            "not a url",
        ] {
            let refused = admin
                .raw(
                    Method::PUT,
                    "/api/admin/webhook",
                    Some(&json!({ "url": bad }).to_string()),
                )
                .await?;
            anyhow::ensure!(
                (refused.status, refused.error_code()) == (400, Some("webhook_url_not_allowed")),
                "{bad}: {refused:?}"
            );
        }
        let none: WebhookSettings = admin
            .expect(Method::GET, "/api/admin/webhook", None, 200)
            .await?;
        anyhow::ensure!(none.url.is_none(), "refusals changed nothing: {none:?}");

        // A member can neither set nor read it.
        let body = json!({ "url": receiver.url() }).to_string();
        for (method, body) in [
            (Method::PUT, Some(body.as_str())),
            (Method::GET, None),
            (Method::POST, None),
        ] {
            let path = if method == Method::POST {
                "/api/admin/webhook/test"
            } else {
                "/api/admin/webhook"
            };
            let refused = member.raw(method, path, body).await?;
            anyhow::ensure!(
                (refused.status, refused.error_code()) == (403, Some("forbidden")),
                "{path}: {refused:?}"
            );
        }

        let set: WebhookSettings = admin
            .expect(Method::PUT, "/api/admin/webhook", Some(&body), 200)
            .await?;
        anyhow::ensure!(
            set.url.as_deref() == Some(receiver.url().as_str()),
            "{set:?}"
        );
        // Nothing of it reaches a member's answers.
        let me = member.raw(Method::GET, "/api/me", None).await?;
        anyhow::ensure!(!me.body.to_string().contains(&receiver.url()));

        // "Send test".
        let tested: WebhookTestResult = admin
            .expect(Method::POST, "/api/admin/webhook/test", None, 200)
            .await?;
        anyhow::ensure!(tested.delivered && tested.status == Some(200), "{tested:?}");
        let test_post = receiver.wait_for(|post| post["kind"] == "test").await?;
        definition
            .check(&test_post)
            .map_err(|why| anyhow::anyhow!("{why}: {test_post}"))?;

        // A finished turn is posted once, Slack-shaped, linking the session.
        let session = member
            .create_session_with(json!({ "title": "Webhook journey" }))
            .await?;
        member.wait_status(&session.id, "idle").await?;
        member.send(&session.id, "MARK-HOOK hello").await?;
        member.wait_settled(&session.id).await?;
        let post = receiver
            .wait_for(|post| post["kind"] == "turn_finished")
            .await?;
        let ignored = definition
            .check(&post)
            .map_err(|why| anyhow::anyhow!("{why}: {post}"))?;
        let mut ignored = ignored;
        ignored.sort();
        anyhow::ensure!(
            ignored == ["kind", "session_id", "session_title", "session_url"],
            "extra fields: {ignored:?}"
        );
        anyhow::ensure!(post["session_id"] == json!(session.id), "{post}");
        let url = format!("{}/sessions/{}", stack.worker_url(), session.id);
        anyhow::ensure!(post["session_url"] == json!(url), "{post}");
        let text = post["text"].as_str().unwrap_or_default();
        anyhow::ensure!(
            text.starts_with(&format!("Finished: <{url}|Webhook journey>"))
                && text.contains("echo: MARK-HOOK hello"),
            "{text}"
        );

        // A receiver that refuses is counted with its reason and not retried.
        receiver.answer_with(500);
        let before = receiver.posts().len();
        member.send(&session.id, "MARK-HOOK again").await?;
        member.wait_settled(&session.id).await?;
        let deadline = tokio::time::Instant::now() + WAIT;
        let settings = loop {
            let settings: WebhookSettings = admin
                .expect(Method::GET, "/api/admin/webhook", None, 200)
                .await?;
            if settings.failures > 0 || tokio::time::Instant::now() > deadline {
                break settings;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        anyhow::ensure!(settings.failures == 1, "{settings:?}");
        anyhow::ensure!(settings.deliveries == 2, "{settings:?}");
        anyhow::ensure!(
            settings
                .last_error
                .as_deref()
                .unwrap_or_default()
                .contains("500"),
            "{settings:?}"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        anyhow::ensure!(
            receiver.posts().len() == before + 1,
            "one post, no retries: {:?}",
            receiver.posts()
        );

        // Turning it off stops the posts.
        let off: WebhookSettings = admin
            .expect(
                Method::PUT,
                "/api/admin/webhook",
                Some(r#"{"url": null}"#),
                200,
            )
            .await?;
        anyhow::ensure!(off.url.is_none());
        let untested = admin
            .raw(Method::POST, "/api/admin/webhook/test", None)
            .await?;
        anyhow::ensure!(untested.status == 409, "{untested:?}");
        Ok(())
    })
    .await;
}
