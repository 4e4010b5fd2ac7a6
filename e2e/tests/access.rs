//! The role walk: every `/api` route, called by every kind of caller, on the real
//! Worker. The table below says who may call each route; the test first checks it
//! against the router's own table (`GET /api/admin/routes`), so a route added to the
//! Worker without a row here fails this test.
//!
//! Callers: anonymous, a non-member (a removed member still holding their cookie), a
//! member the session is not shared with, a viewer, a collaborator, the session's
//! owner, and a team admin. Expected: 401 without valid sign-in; 404 for a session
//! the caller cannot see (its existence must not leak); 403 when they can see it but
//! may not do this, or for admin routes; otherwise the handler runs. Requests that
//! change state send a body the handler refuses (400) or name a missing resource
//! (a handler's own 404), so the walk changes nothing while proving the gate let the
//! request through.

use std::collections::BTreeSet;
use std::time::Duration;

use nightshift_e2e::client::Api;
use nightshift_e2e::stack::{Stack, StackOptions};
use reqwest::Method;
use serde_json::{Value, json};

/// (method, path template, who may call it), mirroring the Worker's access levels.
const TABLE: &[(&str, &str, &str)] = &[
    ("GET", "/api/health", "public"),
    ("GET", "/api/events", "member"),
    ("GET", "/api/sessions", "member"),
    ("POST", "/api/sessions", "member"),
    ("GET", "/api/models", "member"),
    ("GET", "/api/sessions/{id}", "session_viewer"),
    ("PATCH", "/api/sessions/{id}", "session_collaborator"),
    // The walk's body is refused (400) before anything is deleted.
    ("DELETE", "/api/sessions/{id}", "session_manager"),
    // The same: the walk's body is refused before anything is archived.
    ("POST", "/api/sessions/{id}/archive", "session_manager"),
    ("POST", "/api/sessions/bulk", "member"),
    ("GET", "/api/sessions/{id}/messages", "session_viewer"),
    (
        "POST",
        "/api/sessions/{id}/messages",
        "session_collaborator",
    ),
    (
        "DELETE",
        "/api/sessions/{id}/messages/{message_id}",
        "session_collaborator",
    ),
    (
        "PATCH",
        "/api/sessions/{id}/messages/{message_id}",
        "session_collaborator",
    ),
    (
        "POST",
        "/api/sessions/{id}/questions/{question_id}/answer",
        "session_collaborator",
    ),
    ("POST", "/api/sessions/{id}/abort", "session_collaborator"),
    ("POST", "/api/sessions/{id}/wake", "session_collaborator"),
    // The walk's body is refused (400) before anything is restored.
    ("POST", "/api/sessions/{id}/rewind", "session_manager"),
    // Likewise before anything is created.
    ("POST", "/api/sessions/{id}/fork", "session_collaborator"),
    ("POST", "/api/sessions/{id}/push", "session_collaborator"),
    ("GET", "/api/sessions/{id}/repo", "session_viewer"),
    ("GET", "/api/sessions/{id}/diff", "session_viewer"),
    ("GET", "/api/sessions/{id}/events", "session_viewer"),
    ("GET", "/api/sessions/{id}/runner", "runner"),
    ("POST", "/api/sessions/{id}/artifacts", "runner"),
    ("POST", "/api/sessions/{id}/git/credential", "runner"),
    ("POST", "/api/sessions/{id}/git/pull-request", "runner"),
    ("GET", "/api/sessions/{id}/conversation", "runner"),
    ("POST", "/api/sessions/{id}/conversation", "runner"),
    (
        "POST",
        "/api/sessions/{id}/pull-request",
        "session_collaborator",
    ),
    (
        "GET",
        "/api/sessions/{id}/artifacts/{artifact}",
        "session_viewer",
    ),
    ("GET", "/api/sessions/{id}/presence", "session_viewer"),
    ("POST", "/api/sessions/{id}/presence", "session_viewer"),
    ("DELETE", "/api/sessions/{id}/presence", "session_viewer"),
    ("GET", "/api/sessions/{id}/workspace", "session_viewer"),
    ("GET", "/api/sessions/{id}/streams", "session_manager"),
    ("GET", "/api/sessions/{id}/shares", "session_manager"),
    (
        "PUT",
        "/api/sessions/{id}/shares/{user_id}",
        "session_manager",
    ),
    (
        "DELETE",
        "/api/sessions/{id}/shares/{user_id}",
        "session_manager",
    ),
    ("POST", "/api/sessions/{id}/share-links", "session_manager"),
    (
        "DELETE",
        "/api/sessions/{id}/share-links/{link_id}",
        "session_manager",
    ),
    ("POST", "/api/share-links/{token}/accept", "member"),
    ("GET", "/api/me", "member"),
    ("PATCH", "/api/me", "member"),
    ("GET", "/api/me/settings", "member"),
    // The walk's body has an unknown field: refused (400) before anything is written.
    ("PUT", "/api/me/settings", "member"),
    ("GET", "/api/tokens", "member"),
    ("POST", "/api/tokens", "member"),
    ("DELETE", "/api/tokens/{id}", "member"),
    ("GET", "/api/team/members", "member"),
    ("GET", "/api/admin/members", "admin"),
    ("PATCH", "/api/admin/members/{user_id}", "admin"),
    ("DELETE", "/api/admin/members/{user_id}", "admin"),
    ("GET", "/api/admin/invites", "admin"),
    ("POST", "/api/admin/invites", "admin"),
    ("DELETE", "/api/admin/invites/{id}", "admin"),
    ("GET", "/api/admin/settings", "admin"),
    ("PUT", "/api/admin/settings", "admin"),
    ("GET", "/api/admin/routes", "admin"),
    ("GET", "/api/keys", "member"),
    ("POST", "/api/keys", "member"),
    ("DELETE", "/api/keys/{id}", "member"),
    ("GET", "/api/github", "member"),
    ("GET", "/api/github/repos", "member"),
    ("GET", "/api/github/repos/{owner}/{repo}/branches", "member"),
    ("GET", "/api/admin/github", "admin"),
    ("PUT", "/api/admin/github", "admin"),
    ("GET", "/api/usage", "member"),
    ("GET", "/api/sessions/{id}/usage", "session_viewer"),
    ("GET", "/api/admin/spend", "admin"),
    // The walk's body has an unknown field: refused (400) before anything is written.
    ("PUT", "/api/admin/spend", "admin"),
    ("GET", "/api/inbox", "member"),
    ("POST", "/api/inbox/read", "member"),
    ("GET", "/api/admin/webhook", "admin"),
    // The walk's body is refused (400) before the URL changes.
    ("PUT", "/api/admin/webhook", "admin"),
    // No webhook is set during the walk, so nothing is posted (409).
    ("POST", "/api/admin/webhook/test", "admin"),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    Anonymous,
    NonMember,
    Member,
    Viewer,
    Collaborator,
    Owner,
    Admin,
}

/// What a caller must get: 401, 403, 404 (hidden) or through to the handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Unauthenticated,
    Forbidden,
    Hidden,
    Through,
    /// The runner route: only a runner token opens it.
    RunnerOnly,
}

fn expect(access: &str, caller: Caller) -> Expect {
    use Caller::*;
    use Expect::*;
    if access == "public" {
        return Through;
    }
    if access == "runner" {
        return RunnerOnly;
    }
    if matches!(caller, Anonymous | NonMember) {
        return Unauthenticated;
    }
    // The role each caller has on the walked session.
    let rank = match caller {
        Member => 0,
        Viewer => 1,
        Collaborator => 2,
        Owner | Admin => 3,
        Anonymous | NonMember => unreachable!(),
    };
    match access {
        "member" => Through,
        "admin" if caller == Admin => Through,
        "admin" => Forbidden,
        "session_viewer" | "session_collaborator" | "session_manager" => {
            let needed = match access {
                "session_viewer" => 1,
                "session_collaborator" => 2,
                _ => 3,
            };
            if rank == 0 {
                Hidden
            } else if rank >= needed {
                Through
            } else {
                Forbidden
            }
        }
        other => panic!("unknown access {other}"),
    }
}

/// The request the walk sends: a real path and a body no handler accepts.
fn request_for(template: &str, session_id: &str) -> (String, Option<String>) {
    let path = template
        .split('/')
        .map(|segment| match segment {
            "{id}" if template.starts_with("/api/sessions/") => session_id.to_string(),
            s if s.starts_with('{') => format!("missing-{}", s.trim_matches(['{', '}'])),
            s => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/");
    (path, Some(r#"{"not_a_field": true}"#.to_string()))
}

struct Outcome {
    status: u16,
    code: Option<String>,
    message: String,
}

/// Sends one request and reads the answer, except event streams, which are only
/// opened (their status is what counts) and dropped.
async fn call(
    api: &Api,
    method: &str,
    path: &str,
    body: Option<String>,
) -> anyhow::Result<Outcome> {
    let http = reqwest::Client::new();
    let method = Method::from_bytes(method.as_bytes())?;
    let mut request = api
        .sign(http.request(method.clone(), api.url(path)))
        .timeout(Duration::from_secs(30));
    if method != Method::GET
        && let Some(body) = body
    {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let streaming = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if streaming {
        return Ok(Outcome {
            status,
            code: None,
            message: String::new(),
        });
    }
    let text = response.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Outcome {
        status,
        code: body["error"]["code"].as_str().map(str::to_string),
        message: body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    })
}

fn check(expect: Expect, outcome: &Outcome, session_id: &str) -> Result<(), String> {
    let code = outcome.code.as_deref();
    let hidden = format!("no session {session_id}");
    let ok = match expect {
        Expect::Unauthenticated => outcome.status == 401 && code == Some("unauthenticated"),
        Expect::Forbidden => outcome.status == 403 && code == Some("forbidden"),
        Expect::Hidden => outcome.status == 404 && outcome.message == hidden,
        Expect::RunnerOnly => outcome.status == 401 && code == Some("invalid_runner_token"),
        Expect::Through => {
            let denied = matches!(outcome.status, 401 | 403 | 405 | 500..)
                || (outcome.status == 404 && outcome.message == hidden);
            !denied
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected {expect:?}, got {} {code:?} {:?}",
            outcome.status, outcome.message
        ))
    }
}

async fn invite(admin: &Api) -> anyhow::Result<String> {
    let body = json!({"role": "member", "expires_in_hours": 1, "max_uses": 1}).to_string();
    let invite: Value = admin
        .expect(Method::POST, "/api/admin/invites", Some(&body), 201)
        .await?;
    Ok(invite["token"].as_str().unwrap_or_default().to_string())
}

async fn member(stack: &Stack, admin: &Api, email: &str) -> anyhow::Result<Api> {
    let token = invite(admin).await?;
    let name = email.split('@').next().unwrap_or(email);
    stack.api().dev_sign_in(email, name, Some(&token)).await
}

#[tokio::test]
async fn every_route_answers_every_role_as_the_table_says() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    if let Err(error) = walk(&stack).await {
        stack.dump_logs();
        panic!("{error:?}");
    }
}

async fn walk(stack: &Stack) -> anyhow::Result<()> {
    // The table covers exactly the router's routes, with the same access.
    let admin = stack.signed_in_api("admin@example.com").await?;
    let routes: Vec<Value> = admin
        .expect(Method::GET, "/api/admin/routes", None, 200)
        .await?;
    let router: BTreeSet<(String, String, String)> = routes
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap_or_default().to_string(),
                r["path"].as_str().unwrap_or_default().to_string(),
                r["access"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let table: BTreeSet<(String, String, String)> = TABLE
        .iter()
        .map(|(m, p, a)| (m.to_string(), p.to_string(), a.to_string()))
        .collect();
    let missing: Vec<_> = router.difference(&table).collect();
    let extra: Vec<_> = table.difference(&router).collect();
    anyhow::ensure!(
        missing.is_empty() && extra.is_empty(),
        "the walk's table differs from the router's: routed but not walked {missing:?}, \
         walked but not routed {extra:?}"
    );

    let owner = member(stack, &admin, "owner@example.com").await?;
    let stranger = member(stack, &admin, "member@example.com").await?;
    let viewer = member(stack, &admin, "viewer@example.com").await?;
    let collaborator = member(stack, &admin, "collab@example.com").await?;
    let gone = member(stack, &admin, "gone@example.com").await?;
    let gone_me: Value = gone.expect(Method::GET, "/api/me", None, 200).await?;
    let gone_id = gone_me["user"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let left_behind = gone.create_session().await?;
    let answer = admin
        .raw(
            Method::DELETE,
            &format!("/api/admin/members/{gone_id}"),
            None,
        )
        .await?;
    anyhow::ensure!(answer.status == 204, "removing a member: {answer:?}");
    // Their session stays, owned by the team, in the admins' list.
    let kept = admin
        .sessions()
        .await?
        .into_iter()
        .find(|s| s.id == left_behind.id)
        .ok_or_else(|| anyhow::anyhow!("the removed member's session is gone"))?;
    anyhow::ensure!(
        kept.owner_id == "team" && kept.my_role.map(|r| r.as_str()) == Some("admin"),
        "{kept:?}"
    );

    let session = owner.create_session().await?;
    for (api, role) in [(&viewer, "viewer"), (&collaborator, "collaborator")] {
        let me: Value = api.expect(Method::GET, "/api/me", None, 200).await?;
        let user_id = me["user"]["id"].as_str().unwrap_or_default();
        let body = json!({ "role": role }).to_string();
        owner
            .expect::<Value>(
                Method::PUT,
                &format!("/api/sessions/{}/shares/{user_id}", session.id),
                Some(&body),
                200,
            )
            .await?;
    }
    // Each caller sees the session with its role (or not at all).
    for (api, role) in [
        (&owner, Some("owner")),
        (&viewer, Some("viewer")),
        (&collaborator, Some("collaborator")),
        (&admin, Some("admin")),
        (&stranger, None),
    ] {
        let listed = api.sessions().await?;
        let found = listed.iter().find(|s| s.id == session.id);
        match role {
            Some(role) if role != "admin" => {
                let found = found.ok_or_else(|| anyhow::anyhow!("{role} does not list it"))?;
                anyhow::ensure!(found.my_role.map(|r| r.as_str()) == Some(role));
            }
            _ => anyhow::ensure!(found.is_none(), "{role:?} lists a session not theirs"),
        }
        if let Some(role) = role {
            anyhow::ensure!(
                api.session(&session.id).await?.my_role.map(|r| r.as_str()) == Some(role)
            );
        }
    }

    let callers = [
        (Caller::Anonymous, stack.api()),
        (Caller::NonMember, gone),
        (Caller::Member, stranger),
        (Caller::Viewer, viewer),
        (Caller::Collaborator, collaborator),
        (Caller::Owner, owner),
        (Caller::Admin, admin.clone()),
    ];
    let mut failures = Vec::new();
    let mut calls = 0;
    for (method, template, access) in TABLE {
        for (caller, api) in &callers {
            let (path, body) = request_for(template, &session.id);
            let outcome = call(api, method, &path, body).await?;
            calls += 1;
            if let Err(why) = check(expect(access, *caller), &outcome, &session.id) {
                failures.push(format!("{method} {template} as {caller:?}: {why}"));
            }
        }
    }
    anyhow::ensure!(
        failures.is_empty(),
        "{} of {calls} calls answered wrongly:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The walk changed nothing: the session is as it was, with no prompt.
    anyhow::ensure!(admin.messages(&session.id).await?.is_empty());
    Ok(())
}

/// The presence lease of the stack that tests presence.
const PRESENCE_LEASE_MS: u64 = 4_000;

/// The names in a presence list (`GET`/`POST .../presence`).
fn viewer_names(viewers: &Value) -> BTreeSet<String> {
    viewers
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|v| v["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits on `stream` for a `presence_changed` frame whose names satisfy `wanted`;
/// answers those names (an error after `limit`).
async fn presence_until(
    stream: &mut nightshift_e2e::client::SseStream,
    limit: Duration,
    wanted: impl Fn(&BTreeSet<String>) -> bool,
) -> anyhow::Result<BTreeSet<String>> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(tokio::time::Instant::now()) {
        let Some(data) = next_data(stream, left).await else {
            break;
        };
        let frame: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
        if frame["type"] != "presence_changed" {
            continue;
        }
        let names = viewer_names(&frame["viewers"]);
        if wanted(&names) {
            return Ok(names);
        }
        seen.push(names);
    }
    anyhow::bail!("no presence_changed frame as wanted within {limit:?}; saw {seen:?}")
}

/// The next raw SSE data of a stream, within `limit` (None when nothing came).
async fn next_data(
    stream: &mut nightshift_e2e::client::SseStream,
    limit: Duration,
) -> Option<String> {
    tokio::time::timeout(limit, stream.next_message())
        .await
        .ok()
        .and_then(Result::ok)
        .map(|message| message.data)
}

#[tokio::test]
async fn streams_share_links_and_presence_show_only_what_the_caller_may_see() {
    // A short presence lease, so a viewer who stops heartbeating leaves quickly.
    let stack = Stack::start(StackOptions {
        worker_vars: vec![("PRESENCE_LEASE_MS".into(), PRESENCE_LEASE_MS.to_string())],
        ..StackOptions::default()
    })
    .await
    .unwrap();
    if let Err(error) = streams_and_links(&stack).await {
        stack.dump_logs();
        panic!("{error:?}");
    }
}

async fn streams_and_links(stack: &Stack) -> anyhow::Result<()> {
    let alice = stack.signed_in_api("alice@example.com").await?;
    let bob = member(stack, &alice, "bob@example.com").await?;
    let carol = member(stack, &alice, "carol@example.com").await?;

    // Bob's session-list stream carries his sessions, not Alice's.
    let mut bobs_list = bob.list_events().await?;
    let private = alice.create_session().await?;
    let his = bob.create_session().await?;
    let first = next_data(&mut bobs_list, Duration::from_secs(20))
        .await
        .ok_or_else(|| anyhow::anyhow!("no list event for Bob"))?;
    anyhow::ensure!(first.contains(&his.id), "Bob first sees {first}");
    anyhow::ensure!(!first.contains(&private.id));
    for _ in 0..3 {
        if let Some(data) = next_data(&mut bobs_list, Duration::from_secs(2)).await {
            anyhow::ensure!(
                !data.contains(&private.id),
                "Bob saw Alice's session: {data}"
            );
        }
    }

    // A share link as viewer: Carol accepts it, watches, and cannot prompt.
    let link: Value = bob
        .expect(
            Method::POST,
            &format!("/api/sessions/{}/share-links", his.id),
            Some(&json!({"role": "viewer", "expires_in_hours": 1, "max_uses": 1}).to_string()),
            201,
        )
        .await?;
    let token = link["url"]
        .as_str()
        .and_then(|url| url.rsplit('/').next())
        .unwrap_or_default()
        .to_string();
    let answer = carol
        .raw(Method::GET, &format!("/api/sessions/{}", his.id), None)
        .await?;
    anyhow::ensure!(answer.status == 404, "not shared yet: {answer:?}");
    let accepted: Value = carol
        .expect(
            Method::POST,
            &format!("/api/share-links/{token}/accept"),
            None,
            200,
        )
        .await?;
    anyhow::ensure!(accepted["role"] == "viewer" && accepted["session_id"] == his.id.as_str());
    anyhow::ensure!(carol.session(&his.id).await?.my_role.map(|r| r.as_str()) == Some("viewer"));
    let body = json!({"content": "hi"}).to_string();
    let answer = carol
        .raw(
            Method::POST,
            &format!("/api/sessions/{}/messages", his.id),
            Some(&body),
        )
        .await?;
    anyhow::ensure!(answer.status == 403, "a viewer cannot prompt: {answer:?}");
    // Used up: a second person gets nothing.
    let dave = member(stack, &alice, "dave@example.com").await?;
    let answer = dave
        .raw(
            Method::POST,
            &format!("/api/share-links/{token}/accept"),
            None,
        )
        .await?;
    anyhow::ensure!(answer.status == 404, "a used-up link: {answer:?}");
    let shares: Value = bob
        .expect(
            Method::GET,
            &format!("/api/sessions/{}/shares", his.id),
            None,
            200,
        )
        .await?;
    anyhow::ensure!(shares["shares"][0]["role"] == "viewer", "{shares}");
    anyhow::ensure!(shares["links"][0]["uses"] == 1, "{shares}");

    // Presence: Carol watching shows up for Bob, live and on request. Bob keeps his
    // lease with a heartbeat, as the app does while the page is open.
    let presence = format!("/api/sessions/{}/presence", his.id);
    let mut bobs_events = bob.events(&his.id, None).await?;
    let bobs_heartbeat = tokio::spawn({
        let (bob, presence) = (bob.clone(), presence.clone());
        async move {
            loop {
                let _ = bob.raw(Method::POST, &presence, None).await;
                tokio::time::sleep(Duration::from_millis(PRESENCE_LEASE_MS / 4)).await;
            }
        }
    });
    let outcome = presence_checks(&bob, &carol, &his.id, &presence, &mut bobs_events).await;
    bobs_heartbeat.abort();
    outcome
}

async fn presence_checks(
    bob: &Api,
    carol: &Api,
    session_id: &str,
    presence: &str,
    bobs_events: &mut nightshift_e2e::client::SseStream,
) -> anyhow::Result<()> {
    let watching = Duration::from_secs(20);
    // Opening the stream counts as Carol's heartbeat.
    let carols_events = carol.events(session_id, None).await?;
    presence_until(bobs_events, watching, |names| names.contains("carol")).await?;
    let viewers: Value = carol.expect(Method::POST, presence, None, 200).await?;
    anyhow::ensure!(viewer_names(&viewers).contains("carol"), "{viewers}");
    let viewers: Value = bob.expect(Method::GET, presence, None, 200).await?;
    let both = BTreeSet::from(["bob".to_string(), "carol".to_string()]);
    anyhow::ensure!(viewer_names(&viewers) == both, "{viewers}");

    // Carol stops heartbeating; her stream stays open, yet her lease runs out and
    // Bob's stream says she left.
    let stopped = tokio::time::Instant::now();
    let names = presence_until(bobs_events, watching, |names| !names.contains("carol")).await?;
    anyhow::ensure!(
        stopped.elapsed() >= Duration::from_millis(PRESENCE_LEASE_MS / 2),
        "Carol left before her lease could run out"
    );
    anyhow::ensure!(
        names.contains("bob"),
        "Bob's heartbeats keep him: {names:?}"
    );
    let viewers: Value = bob.expect(Method::GET, presence, None, 200).await?;
    anyhow::ensure!(!viewer_names(&viewers).contains("carol"), "{viewers}");

    // Back with a heartbeat, then gone at once with the page's leave.
    let viewers: Value = carol.expect(Method::POST, presence, None, 200).await?;
    anyhow::ensure!(viewer_names(&viewers) == both, "{viewers}");
    presence_until(bobs_events, watching, |names| names.contains("carol")).await?;
    let viewers: Value = carol.expect(Method::DELETE, presence, None, 200).await?;
    anyhow::ensure!(!viewer_names(&viewers).contains("carol"), "{viewers}");
    presence_until(bobs_events, watching, |names| !names.contains("carol")).await?;
    // A heartbeat with a field it does not know is refused.
    let answer = carol
        .raw(Method::POST, presence, Some(r#"{"lease_ms": 1}"#))
        .await?;
    anyhow::ensure!(answer.status == 400, "an unknown field: {answer:?}");
    drop(carols_events);
    Ok(())
}
