//! The sandbox boundary, attacked from inside a session's sandbox on the real stack
//! (wrangler dev, the sandbox backend, runners and OpenCode under bubblewrap): the
//! agent's commands try to reach the Worker, the sandbox backend, the LLM the runner
//! talks to, the host's other addresses and cloud metadata, look for the host's
//! sockets, and look for secrets, with each agent. Each probe prints `REACHED`,
//! `SEEN` or `LEAKED` when a defence failed, so the tests fail if one is removed
//! (with network `private`, every `REACHED` line appears).

use std::time::Duration;

use nightshift_e2e::client::Api;
use nightshift_e2e::scripted_llm::{Script, ScriptedLlm, Step};
use nightshift_e2e::stack::{Stack, StackOptions};
use nightshift_protocol::events::{EventBody, SessionEvent};
use serde_json::json;

async fn stack_with_llm() -> anyhow::Result<(Stack, ScriptedLlm)> {
    let llm = ScriptedLlm::start().await?;
    let stack = Stack::start(StackOptions {
        llm_base_url: Some(llm.base_url()),
        ..Default::default()
    })
    .await?;
    Ok((stack, llm))
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|port| port.trim_end_matches('/').split('/').next())
        .and_then(|port| port.parse().ok())
        .expect("the URL has a port")
}

/// A non-loopback IPv4 address of this host.
fn host_address() -> Option<String> {
    let output = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .find(|address| !address.contains(':'))
        .map(String::from)
}

/// The attacker's script: every platform service it tries to reach, the host's
/// socket tables, its own environment.
fn probe(stack: &Stack, llm: &ScriptedLlm) -> String {
    let worker = port_of(&stack.worker_url());
    let backend = port_of(&stack.backend_url());
    let model = port_of(&llm.base_url());
    let mut targets = vec![
        format!("127.0.0.1:{worker}"),
        format!("127.0.0.1:{backend}"),
        format!("127.0.0.1:{model}"),
        format!("localhost:{worker}"),
        "169.254.169.254:80".to_string(),
    ];
    if let Some(address) = host_address() {
        targets.push(format!("{address}:{worker}"));
        targets.push(format!("{address}:{backend}"));
    }
    let targets = targets.join(" ");
    format!(
        r#"for t in {targets}; do if timeout 3 bash -c "exec 3<>/dev/tcp/${{t%:*}}/${{t#*:}}" 2>/dev/null; then echo "REACHED $t"; else echo "blocked $t"; fi; done
for p in {worker} {backend} {model}; do if grep -qi ":$(printf %04X $p) " /proc/net/tcp /proc/net/tcp6 2>/dev/null; then echo "SEEN $p"; fi; done
echo "proxied $(curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 http://127.0.0.1:{worker}/api/health)"
if env | grep -qiE 'runner_token|api_key|LLM_|SANDBOX_BACKEND|RUNNER_TOKEN|ENCRYPTION_KEY'; then echo LEAKED-ENV; fi
if [ -S /run/nightshift/llm.sock ]; then echo "key-proxy $(curl -s -o /dev/null -w '%{{http_code}}' --unix-socket /run/nightshift/llm.sock http://proxy/models)"; fi
echo probe-done"#
    )
}

/// The output of every tool call the turn made.
fn tool_output(events: &[SessionEvent]) -> String {
    events
        .iter()
        .filter_map(|event| match &event.body {
            EventBody::ToolCallFinished { output, .. } => Some(output.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_contained(output: &str, targets: usize) {
    assert!(output.contains("probe-done"), "the probe did not run: {output}");
    for bad in ["REACHED", "SEEN", "LEAKED"] {
        assert!(!output.contains(bad), "{bad} in: {output}");
    }
    assert_eq!(
        output.matches("blocked ").count(),
        targets,
        "every target was tried: {output}"
    );
    // The egress proxy refuses the host's loopback too.
    assert!(output.contains("proxied 403"), "{output}");
}

async fn run_turn(api: &Api, session_id: &str, content: &str) -> anyhow::Result<Vec<SessionEvent>> {
    let mut stream = api.events(session_id, None).await?;
    api.send(session_id, content).await?;
    let events = tokio::time::timeout(
        Duration::from_secs(240),
        stream.until(|body| matches!(body, EventBody::TurnFinished { .. })),
    )
    .await??;
    Ok(events)
}

fn target_count() -> usize {
    5 + if host_address().is_some() { 2 } else { 0 }
}

#[tokio::test]
async fn the_builtin_agents_commands_reach_nothing_of_the_platform() {
    let (stack, llm) = stack_with_llm().await.unwrap();
    let api = stack.signed_in_api("mallory@example.com").await.unwrap();
    llm.on(
        "MARK-PROBE",
        Script::new(vec![
            Step::tool("bash", json!({"command": probe(&stack, &llm)})),
            Step::text("probed"),
        ]),
    );
    let session = api.create_session().await.unwrap();
    let events = match run_turn(&api, &session.id, "MARK-PROBE look around").await {
        Ok(events) => events,
        Err(error) => {
            stack.dump_logs();
            panic!("{error:?}");
        }
    };
    let output = tool_output(&events);
    assert_contained(&output, target_count());
}

#[tokio::test]
async fn opencodes_commands_reach_nothing_of_the_platform_and_its_turns_still_reach_the_llm() {
    let (stack, llm) = stack_with_llm().await.unwrap();
    let api = stack.signed_in_api("mallory@example.com").await.unwrap();
    llm.on(
        "MARK-PROBE",
        Script::new(vec![
            Step::tool(
                "bash",
                json!({"command": probe(&stack, &llm), "description": "probe"}),
            ),
            Step::text("probed"),
        ]),
    );
    let session = api
        .create_session_with(json!({"agent": "opencode", "permission_mode": "allow"}))
        .await
        .unwrap();
    let events = match run_turn(&api, &session.id, "MARK-PROBE look around").await {
        Ok(events) => events,
        Err(error) => {
            stack.dump_logs();
            panic!("{error:?}");
        }
    };
    let output = tool_output(&events);
    assert_contained(&output, target_count());
    // OpenCode reached its LLM through the key proxy's socket (the turn ran the
    // tool and answered), while a call it does not make was refused there.
    assert!(output.contains("key-proxy 401"), "{output}");
    assert!(
        events.iter().any(|event| matches!(
            &event.body,
            EventBody::TextDelta { text } if text.contains("probed")
        )),
        "the turn's answer came through"
    );
}
