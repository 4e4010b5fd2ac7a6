//! Spend on the real stack: every LLM call's tokens are counted and priced (the
//! admin's price for the scripted model), a session cap stops a scripted tool loop
//! at the step that reaches it with a `cap_reached` event in the chat and refuses
//! the next prompt with `spend_cap_reached` naming the cap, a per-user daily cap
//! holds across sessions, the usage sums per user and team match the scripted
//! tokens and the prices, a price change applies from the next turn, and members
//! read only their own usage and set no caps.

use std::time::Duration;

use nightshift_e2e::client::Api;
use nightshift_e2e::scripted_llm::{Script, ScriptedLlm, Step};
use nightshift_e2e::stack::{Stack, stack_with_llm, with_logs};
use nightshift_protocol::events::{EventBody, SessionEvent, TurnOutcome};
use nightshift_protocol::usage::{CapMeasure, CapScope, UsageReport, UsageSums};
use reqwest::Method;
use serde_json::{Value, json};

/// The scripted model's price the admin sets: $2 in and $10 out per million tokens,
/// i.e. 2 and 10 micro-USD per token.
const PRICE_IN: u64 = 2;
const PRICE_OUT: u64 = 10;
/// What every scripted LLM call reports.
const STEP_IN: u64 = 1000;
const STEP_OUT: u64 = 100;
/// So every call costs 3,000 micro-USD and counts 1,100 tokens.
const STEP_COST: u64 = STEP_IN * PRICE_IN + STEP_OUT * PRICE_OUT;

async fn set_spend(admin: &Api, body: Value) -> anyhow::Result<Value> {
    admin
        .expect(
            Method::PUT,
            "/api/admin/spend",
            Some(&body.to_string()),
            200,
        )
        .await
}

fn price(input: u64, output: u64) -> Value {
    json!([{"model": "scripted-model", "input_usd_per_mtok": input,
            "output_usd_per_mtok": output}])
}

/// A tool loop of `steps` calls, each running a command and reporting the same
/// usage, then a final answer.
fn tool_loop(steps: usize) -> Script {
    let mut script: Vec<Step> = (0..steps)
        .map(|n| {
            Step::tool("bash", json!({"command": format!("echo step {n}")}))
                .with_usage(STEP_IN, STEP_OUT)
        })
        .collect();
    script.push(Step::text("loop done").with_usage(STEP_IN, STEP_OUT));
    Script::new(script)
}

/// Polls `path` until `ready` holds for its answer (the ledger is written just
/// after a turn's events).
async fn wait_for<T: serde::de::DeserializeOwned + std::fmt::Debug>(
    api: &Api,
    path: &str,
    ready: impl Fn(&T) -> bool,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer: T = api.expect(Method::GET, path, None, 200).await?;
        if ready(&answer) {
            return Ok(answer);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{path} never got there: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn step_usages(events: &[SessionEvent]) -> u64 {
    events
        .iter()
        .filter(|event| matches!(event.body, EventBody::StepUsage { .. }))
        .count() as u64
}

/// The sums `steps` scripted calls make at the admin's price.
fn sums_of(steps: u64, turns: u64) -> (u64, u64, u64, u64) {
    (turns, steps * STEP_IN, steps * STEP_OUT, steps * STEP_COST)
}

fn key(sums: &UsageSums) -> (u64, u64, u64, u64) {
    (
        sums.turns,
        sums.input_tokens,
        sums.output_tokens,
        sums.cost_micro_usd,
    )
}

#[tokio::test]
async fn a_session_cap_stops_a_tool_loop_at_the_cap_and_refuses_the_next_prompt() {
    let (stack, llm) = stack_with_llm().await.unwrap();
    with_logs(&stack, session_cap(&stack, &llm)).await;
}

async fn session_cap(stack: &Stack, llm: &ScriptedLlm) -> anyhow::Result<()> {
    let admin = stack.signed_in_api("admin@example.com").await?;
    let member = stack.signed_in_member(&admin, "member@example.com").await?;
    // Four calls reach the cap: 12,000 micro-USD >= 10,000.
    let settings = set_spend(
        &admin,
        json!({"prices": price(PRICE_IN, PRICE_OUT),
               "caps": {"session": {"cost_micro_usd": 10_000}}}),
    )
    .await?;
    anyhow::ensure!(
        settings["caps"]["session"]["cost_micro_usd"] == 10_000
            && settings["builtin_prices"]
                .as_array()
                .is_some_and(|p| !p.is_empty())
            && !settings["builtin_prices_read_on"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
        "{settings}"
    );
    llm.on("LOOP", tool_loop(20));
    let session = member.create_session().await?;
    member.wait_status(&session.id, "idle").await?;
    member.send(&session.id, "LOOP until told to stop").await?;

    let events = tokio::time::timeout(
        Duration::from_secs(60),
        member.history_until(&session.id, |events| {
            events.iter().any(|event| {
                matches!(
                    event.body,
                    EventBody::TurnFinished { .. } | EventBody::TurnInterrupted { .. }
                )
            })
        }),
    )
    .await??;
    let hit = events
        .iter()
        .find_map(|event| match &event.body {
            EventBody::CapReached { cap, message } => Some((*cap, message.clone())),
            _ => None,
        })
        .ok_or_else(|| anyhow::anyhow!("no cap_reached event: {events:#?}"))?;
    anyhow::ensure!(
        (hit.0.scope, hit.0.measure, hit.0.limit) == (CapScope::Session, CapMeasure::Cost, 10_000),
        "{hit:?}"
    );
    anyhow::ensure!(hit.0.used >= 10_000, "{hit:?}");
    anyhow::ensure!(
        hit.1.contains("per-session cap") && hit.1.contains("$0.01") && hit.1.contains("admins"),
        "the event says which cap, its value and who raises it: {}",
        hit.1
    );
    let outcome = events.iter().find_map(|event| match &event.body {
        EventBody::TurnFinished { outcome, .. } => Some(*outcome),
        _ => None,
    });
    anyhow::ensure!(outcome == Some(TurnOutcome::Aborted), "{outcome:?}");
    // Stopped at the step that reached the cap (the fourth call), or the one the
    // runner had already begun when the abort came; never the whole loop.
    let calls = llm.calls_for("LOOP");
    anyhow::ensure!((4..=5).contains(&calls), "{calls} LLM calls");

    // The next prompt is refused before anything is stored.
    let before = member.messages(&session.id).await?.len();
    let refused = member
        .raw(
            Method::POST,
            &format!("/api/sessions/{}/messages", session.id),
            Some(r#"{"content": "one more"}"#),
        )
        .await?;
    anyhow::ensure!(
        (refused.status, refused.error_code()) == (429, Some("spend_cap_reached")),
        "{refused:?}"
    );
    let message = refused.body["error"]["message"]
        .as_str()
        .unwrap_or_default();
    anyhow::ensure!(
        message.contains("per-session cap")
            && message.contains("$0.01")
            && message.contains("admins"),
        "{message}"
    );
    anyhow::ensure!(member.messages(&session.id).await?.len() == before);

    // The session's usage is the calls the runner reported, at the admin's price.
    let steps = step_usages(&events);
    anyhow::ensure!(steps >= 4, "{steps} step_usage events");
    let path = format!("/api/sessions/{}/usage", session.id);
    let usage: UsageSums = wait_for(&member, &path, |sums: &UsageSums| {
        sums.turns == 1 && sums.input_tokens >= 4 * STEP_IN
    })
    .await?;
    anyhow::ensure!(
        usage.cost_micro_usd == usage.input_tokens * PRICE_IN + usage.output_tokens * PRICE_OUT,
        "priced by the table: {usage:?}"
    );
    anyhow::ensure!(usage.input_tokens >= steps * STEP_IN, "{usage:?}");
    anyhow::ensure!(usage.sandbox_ms > 0, "sandbox time is counted: {usage:?}");

    // Raising the cap lets the session go on.
    set_spend(
        &admin,
        json!({"caps": {"session": {"cost_micro_usd": 1_000_000}}}),
    )
    .await?;
    member.send(&session.id, "hello again").await?;
    member.wait_settled(&session.id).await?;
    Ok(())
}

#[tokio::test]
async fn a_daily_cap_holds_across_sessions_and_the_sums_match_the_prices() {
    let (stack, llm) = stack_with_llm().await.unwrap();
    with_logs(&stack, daily_cap(&stack, &llm)).await;
}

async fn daily_cap(stack: &Stack, llm: &ScriptedLlm) -> anyhow::Result<()> {
    let admin = stack.signed_in_api("admin@example.com").await?;
    let member = stack.signed_in_member(&admin, "member@example.com").await?;
    let other = stack.signed_in_member(&admin, "other@example.com").await?;
    let member_id = member.user_id().await?;
    let admin_id = admin.user_id().await?;

    // Members may not set caps or prices, nor read anyone else's usage.
    for (method, path, body) in [
        (Method::PUT, "/api/admin/spend", Some(r#"{"caps": {}}"#)),
        (Method::GET, "/api/admin/spend", None),
        (Method::GET, "/api/usage?scope=team", None),
    ] {
        let answer = member.raw(method, path, body).await?;
        anyhow::ensure!(answer.status == 403, "{path}: {answer:?}");
    }
    let theirs = member
        .raw(
            Method::GET,
            &format!("/api/usage?scope=user:{admin_id}"),
            None,
        )
        .await?;
    anyhow::ensure!(
        (theirs.status, theirs.error_code()) == (403, Some("forbidden")),
        "{theirs:?}"
    );
    for bad in ["scope=all", "bucket=hour", "from=x", "from=10&to=5"] {
        let answer = member
            .raw(Method::GET, &format!("/api/usage?{bad}"), None)
            .await?;
        anyhow::ensure!(
            (answer.status, answer.error_code()) == (400, Some("invalid_request")),
            "{bad}: {answer:?}"
        );
    }
    // Bad prices change nothing.
    let bad = admin
        .raw(
            Method::PUT,
            "/api/admin/spend",
            Some(&json!({"prices": [{"model": "m", "input_usd_per_mtok": -1, "output_usd_per_mtok": 1}]}).to_string()),
        )
        .await?;
    anyhow::ensure!(bad.status == 400, "{bad:?}");

    // 2,500 tokens a day: two turns of 1,100 leave room, the third reaches it.
    set_spend(
        &admin,
        json!({"prices": price(PRICE_IN, PRICE_OUT),
               "caps": {"user_day": {"tokens": 2500}}}),
    )
    .await?;
    llm.on(
        "ONE",
        Script::new(vec![Step::text("one step").with_usage(STEP_IN, STEP_OUT)]),
    );
    let first = member.create_session().await?;
    let second = member.create_session().await?;
    member.wait_status(&first.id, "idle").await?;
    member.wait_status(&second.id, "idle").await?;
    member.send(&first.id, "ONE a").await?;
    member.wait_settled(&first.id).await?;
    member.send(&first.id, "ONE b").await?;
    member.wait_settled(&first.id).await?;
    let me: UsageReport = wait_for(&member, "/api/usage?scope=me", |r: &UsageReport| {
        r.totals.turns == 2
    })
    .await?;
    anyhow::ensure!(key(&me.totals) == sums_of(2, 2), "{me:?}");

    // A new price applies from the next turn on; earlier turns keep theirs.
    set_spend(
        &admin,
        json!({"prices": price(2 * PRICE_IN, 2 * PRICE_OUT)}),
    )
    .await?;
    member.send(&second.id, "ONE c").await?;
    member.wait_settled(&second.id).await?;
    let me: UsageReport = wait_for(&member, "/api/usage?scope=me", |r: &UsageReport| {
        r.totals.turns == 3
    })
    .await?;
    anyhow::ensure!(
        me.totals.cost_micro_usd == 2 * STEP_COST + 2 * STEP_COST,
        "{me:?}"
    );
    anyhow::ensure!(
        me.buckets.len() == 1 && me.buckets[0].sums == me.totals,
        "one day's bar holds it all: {me:?}"
    );

    // Over the daily cap now, in either session; the message names the cap.
    for session in [&first, &second] {
        let refused = member
            .raw(
                Method::POST,
                &format!("/api/sessions/{}/messages", session.id),
                Some(r#"{"content": "ONE more"}"#),
            )
            .await?;
        anyhow::ensure!(
            (refused.status, refused.error_code()) == (429, Some("spend_cap_reached")),
            "{refused:?}"
        );
        let message = refused.body["error"]["message"]
            .as_str()
            .unwrap_or_default();
        anyhow::ensure!(
            message.contains("per-user daily cap") && message.contains("2500 tokens"),
            "{message}"
        );
    }
    // Another member's day is their own.
    let theirs = other.create_session().await?;
    other.wait_status(&theirs.id, "idle").await?;
    other.send(&theirs.id, "ONE d").await?;
    other.wait_settled(&theirs.id).await?;

    // The team's report: per user, and totals over both.
    let team: UsageReport = wait_for(&admin, "/api/usage?scope=team", |r: &UsageReport| {
        r.totals.turns == 4
    })
    .await?;
    let line = team
        .users
        .iter()
        .find(|line| line.id == member_id)
        .ok_or_else(|| anyhow::anyhow!("no line for the member: {team:?}"))?;
    anyhow::ensure!(line.sums.cost_micro_usd == 4 * STEP_COST, "{team:?}");
    anyhow::ensure!(line.name.contains("member"), "{team:?}");
    anyhow::ensure!(
        team.totals.input_tokens == 4 * STEP_IN
            && team.totals.cost_micro_usd == 6 * STEP_COST
            && team.users.len() == 2,
        "{team:?}"
    );
    anyhow::ensure!(
        team.users[0].id == member_id,
        "most expensive first: {team:?}"
    );
    // An admin reads one member's usage too.
    let one: UsageReport = admin
        .expect(
            Method::GET,
            &format!("/api/usage?scope=user:{member_id}&bucket=day"),
            None,
            200,
        )
        .await?;
    anyhow::ensure!(
        one.totals.turns == 3 && one.totals.cost_micro_usd == 4 * STEP_COST,
        "{one:?}"
    );
    Ok(())
}
