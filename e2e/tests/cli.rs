//! The `nightshift` command-line client against the real stack: a real API token
//! made through the API by a signed-in user, the CLI binary cargo built, run as a
//! person or a script would (its own config directory, standard streams, exit codes,
//! signals), and the scripted LLM behind the agent.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use nightshift_e2e::WAIT;
use nightshift_e2e::client::Api;
use nightshift_e2e::scripted_llm::{Script, Step};
use nightshift_e2e::stack::{Stack, StackOptions, binary, stack_with_llm, with_logs};
use nightshift_protocol::api::{MessageState, QueueMode};
use nightshift_protocol::events::EventBody;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// What a finished CLI run left.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_str(&self.stdout)
            .with_context(|| format!("stdout is not one JSON document: {self:?}"))
    }
}

/// The CLI as one user on this machine: its own config directory, nothing inherited
/// that would change what it does (a developer's NIGHTSHIFT_* or BROWSER).
struct Cli {
    home: tempfile::TempDir,
}

impl Cli {
    fn new() -> anyhow::Result<Cli> {
        let bin = binary("nightshift");
        if !bin.exists() {
            bail!("{} is missing: run `make build` first", bin.display());
        }
        Ok(Cli {
            home: tempfile::Builder::new()
                .prefix("nightshift-cli-")
                .tempdir()?,
        })
    }

    fn config_file(&self) -> PathBuf {
        self.home.path().join("config/nightshift/config.toml")
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(binary("nightshift"));
        command
            .args(args)
            .env_remove("NIGHTSHIFT_SERVER")
            .env_remove("NIGHTSHIFT_TOKEN")
            .env_remove("BROWSER")
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .kill_on_drop(true);
        command
    }

    /// Runs to the end, with `stdin` as standard input.
    async fn run_with(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        stdin: &str,
    ) -> anyhow::Result<Run> {
        let mut child = self
            .command(args, env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting nightshift")?;
        let mut input = child.stdin.take().context("stdin")?;
        input.write_all(stdin.as_bytes()).await?;
        drop(input);
        let output = tokio::time::timeout(WAIT, child.wait_with_output())
            .await
            .with_context(|| format!("nightshift {args:?} did not finish"))??;
        Ok(Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    async fn run(&self, args: &[&str]) -> anyhow::Result<Run> {
        self.run_with(args, &[], "").await
    }

    /// Runs and expects exit code 0.
    async fn ok(&self, args: &[&str]) -> anyhow::Result<Run> {
        let run = self.run(args).await?;
        if run.code != Some(0) {
            bail!("nightshift {args:?} failed: {run:?}");
        }
        Ok(run)
    }
}

/// A personal API token with `scopes`, made through the API by a signed-in user.
async fn token(api: &Api, scopes: &[&str]) -> anyhow::Result<String> {
    let body = json!({"name": "cli", "scopes": scopes}).to_string();
    let created: Value = api
        .expect(Method::POST, "/api/tokens", Some(&body), 201)
        .await?;
    created["token"]
        .as_str()
        .map(str::to_string)
        .context("the created token is in the answer")
}

/// Reads JSON lines from a running `watch --json` until one matches.
async fn lines_until(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    matches: impl Fn(&Value) -> bool,
) -> anyhow::Result<Vec<Value>> {
    let mut seen = Vec::new();
    loop {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .with_context(|| format!("watch printed nothing more; so far {seen:#?}"))??
            .with_context(|| format!("watch ended early; so far {seen:#?}"))?;
        let value: Value =
            serde_json::from_str(&line).with_context(|| format!("not a JSON line: {line:?}"))?;
        let hit = matches(&value);
        seen.push(value);
        if hit {
            return Ok(seen);
        }
    }
}

fn interrupt(child: &Child) {
    let pid = child.id().expect("the child is running") as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("signalling the CLI");
}

async fn exit_code(child: &mut Child) -> anyhow::Result<Option<i32>> {
    Ok(tokio::time::timeout(WAIT, child.wait())
        .await
        .context("the CLI did not exit")??
        .code())
}

#[tokio::test]
async fn the_cli_logs_in_starts_watches_prompts_lists_and_aborts_a_session() {
    let (stack, llm) = stack_with_llm().await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, journey(&stack, &api, &llm)).await;
}

async fn journey(
    stack: &Stack,
    api: &Api,
    llm: &nightshift_e2e::scripted_llm::ScriptedLlm,
) -> anyhow::Result<()> {
    llm.on(
        "MARK-CLI-HELLO",
        Script::new(vec![
            Step::tool("bash", json!({"command": "echo made by the agent"})),
            Step::text("Hello from the scripted agent."),
        ]),
    );
    llm.on(
        "MARK-CLI-SLOW",
        Script::new(vec![Step::slow_text(
            "tick",
            200,
            Duration::from_millis(100),
        )]),
    );
    let cli = Cli::new()?;
    let server = stack.worker_url();
    let write_token = token(api, &["read", "write"]).await?;

    // Nothing works before logging in, and says so.
    let run = cli.run(&["sessions"]).await?;
    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(run.stderr.contains("not logged in"), "{run:?}");

    // A bad token is refused by the server, and nothing is stored.
    let run = cli
        .run(&[
            "login",
            "--server",
            &server,
            "--token",
            "ns_not-a-real-token",
        ])
        .await?;
    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(run.stderr.contains("unauthenticated"), "{run:?}");
    assert!(run.stderr.contains("nightshift login"), "{run:?}");
    assert!(!cli.config_file().exists());

    // The real token, typed on standard input: checked, then stored privately.
    let run = cli
        .run_with(
            &["login", "--server", &format!("{server}/")],
            &[],
            &format!("{write_token}\n"),
        )
        .await?;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("alice@example.com"), "{run:?}");
    let stored = std::fs::read_to_string(cli.config_file())?;
    assert!(
        stored.contains(&write_token) && stored.contains(&server),
        "{stored}"
    );
    let mode = std::fs::metadata(cli.config_file())?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // A session with its first prompt.
    let run = cli
        .ok(&[
            "--json",
            "new",
            "--title",
            "From the CLI",
            "MARK-CLI-HELLO say hello",
        ])
        .await?;
    let created = run.json()?;
    let id = created["session"]["id"]
        .as_str()
        .context("the new session's id")?
        .to_string();
    assert_eq!(created["session"]["title"], "From the CLI");
    assert_eq!(created["message"]["position"], 0);
    assert_eq!(created["url"], format!("{server}/sessions/{id}"));
    let prefix = &id[..8];

    // watch --json, by prefix, until the turn ends: the agent's text and tool call
    // arrive as JSON lines.
    let mut watch = cli
        .command(&["--json", "watch", prefix], &[])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(watch.stdout.take().context("stdout")?).lines();
    let seen = lines_until(&mut lines, |v| v["type"] == "turn_finished").await?;
    let text: String = seen
        .iter()
        .filter(|v| v["type"] == "text_delta" || v["type"] == "text")
        .filter_map(|v| v["text"].as_str())
        .collect();
    assert_eq!(text, "Hello from the scripted agent.");
    assert!(
        seen.iter()
            .any(|v| v["type"] == "tool_call_started" && v["tool"] == "bash")
    );
    assert_eq!(seen.last().unwrap()["outcome"], "done");
    let seqs: Vec<u64> = seen.iter().filter_map(|v| v["seq"].as_u64()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "every event once, in order"
    );

    // Ctrl-C stops watching, successfully, and leaves the session alone.
    interrupt(&watch);
    assert_eq!(exit_code(&mut watch).await?, Some(0));
    let messages = api.wait_settled(&id).await?;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].state, MessageState::Done);

    // The human transcript of the same session.
    let mut watch = cli
        .command(&["watch", &id], &[])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdout = watch.stdout.take().context("stdout")?;
    let mut transcript = String::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !transcript.contains("= done") {
        let mut buffer = [0u8; 4096];
        let read = tokio::time::timeout_at(deadline, stdout.read(&mut buffer))
            .await
            .with_context(|| {
                format!("the transcript never showed the turn's end: {transcript}")
            })??;
        if read == 0 {
            bail!("watch ended early: {transcript}");
        }
        transcript.push_str(&String::from_utf8_lossy(&buffer[..read]));
    }
    interrupt(&watch);
    assert_eq!(exit_code(&mut watch).await?, Some(0));
    for expected in [
        "> MARK-CLI-HELLO say hello",
        "$ bash echo made by the agent",
        "-> made by the agent",
        "Hello from the scripted agent.",
        "= done in",
    ] {
        assert!(
            transcript.contains(expected),
            "{expected:?} missing from:\n{transcript}"
        );
    }

    // The list shows it, for scripts and for people.
    let listed = cli.ok(&["--json", "sessions"]).await?.json()?;
    let row = listed["sessions"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["id"] == id.as_str()))
        .context("the session is listed")?;
    assert_eq!(row["status"], "idle");
    let table = cli.ok(&["sessions"]).await?.stdout;
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains(prefix) && table.contains("From the CLI"),
        "{table}"
    );

    // send, then abort the turn it started.
    let run = cli
        .ok(&["--json", "send", prefix, "MARK-CLI-SLOW count slowly"])
        .await?;
    let sent = run.json()?;
    assert_eq!(sent["message"]["mode"], "followup");
    api.wait_status(&id, "running").await?;
    let run = cli.ok(&["--json", "abort", prefix]).await?;
    assert!(run.json()?["aborted_turn_id"].is_string(), "{run:?}");
    let messages = api.wait_settled(&id).await?;
    assert_eq!(
        messages.last().map(|m| m.state),
        Some(MessageState::Aborted)
    );

    // --collect and --steer are the API's queue modes.
    let run = cli
        .ok(&[
            "--json",
            "send",
            "--collect",
            prefix,
            "MARK-CLI-HELLO once more",
        ])
        .await?;
    assert_eq!(run.json()?["message"]["mode"], "collect");
    let messages = api.wait_settled(&id).await?;
    assert_eq!(messages.last().map(|m| m.mode), Some(QueueMode::Collect));
    let run = cli
        .ok(&["send", "--steer", prefix, "MARK-CLI-HELLO steer"])
        .await?;
    assert!(run.stdout.contains("steer"), "{run:?}");

    // send --wait shows only that prompt's turn and exits with how it ended.
    let run = cli
        .ok(&[
            "--json",
            "send",
            "--wait",
            prefix,
            "MARK-CLI-HELLO wait for it",
        ])
        .await?;
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .with_context(|| format!("not JSON lines: {run:?}"))?;
    let message_id = lines[0]["message_id"]
        .as_str()
        .context("the send's answer first")?;
    assert_eq!(lines[1]["type"], "prompt_queued", "{lines:#?}");
    assert_eq!(lines[1]["message_id"], message_id);
    let text: String = lines
        .iter()
        .filter(|v| v["type"] == "text_delta" || v["type"] == "text")
        .filter_map(|v| v["text"].as_str())
        .collect();
    assert_eq!(text, "Hello from the scripted agent.");
    assert_eq!(lines.last().unwrap()["type"], "turn_finished");
    assert_eq!(lines.last().unwrap()["outcome"], "done");

    let waiting = cli
        .command(&["send", "--wait", prefix, "MARK-CLI-SLOW and wait"], &[])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    api.wait_status(&id, "running").await?;
    api.abort(&id).await?;
    let output = tokio::time::timeout(WAIT, waiting.wait_with_output())
        .await
        .context("send --wait did not exit after the abort")??;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("aborted"), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("= aborted"));

    // open prints the page and hands it to $BROWSER as one argument.
    let run = cli.ok(&["open", prefix]).await?;
    assert_eq!(run.stdout.trim(), format!("{server}/sessions/{id}"));
    let opened = cli.home.path().join("opened");
    let browser = cli.home.path().join("browser.sh");
    std::fs::write(
        &browser,
        format!("#!/bin/sh\nprintf '%s' \"$1\" > {}\n", opened.display()),
    )?;
    std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755))?;
    let run = cli
        .run_with(
            &["open", prefix],
            &[("BROWSER", browser.to_str().unwrap())],
            "",
        )
        .await?;
    assert_eq!(run.code, Some(0), "{run:?}");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !opened.exists() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        std::fs::read_to_string(&opened)?,
        format!("{server}/sessions/{id}")
    );

    // Unknown sessions: exit 4, by whole id and by prefix.
    let run = cli
        .run(&["abort", "00000000-0000-0000-0000-000000000000"])
        .await?;
    assert_eq!(run.code, Some(4), "{run:?}");
    assert!(run.stderr.contains("not_found"), "{run:?}");
    let run = cli.run(&["--json", "watch", "zzzz"]).await?;
    assert_eq!(run.code, Some(4), "{run:?}");
    assert_eq!(run.json()?["error"]["code"], "not_found");

    // A read-only token (from the environment, over the stored one) lists but
    // cannot prompt: exit 5, with the missing scope named.
    let read_token = token(api, &["read"]).await?;
    let env = [("NIGHTSHIFT_TOKEN", read_token.as_str())];
    let run = cli.run_with(&["--json", "sessions"], &env, "").await?;
    assert_eq!(run.code, Some(0), "{run:?}");
    let run = cli
        .run_with(&["send", prefix, "MARK-CLI-HELLO no"], &env, "")
        .await?;
    assert_eq!(run.code, Some(5), "{run:?}");
    assert!(run.stderr.contains("insufficient_scope"), "{run:?}");
    assert!(run.stderr.contains("can write"), "{run:?}");

    // A bad token from the environment: exit 3.
    let run = cli
        .run_with(
            &["sessions"],
            &[("NIGHTSHIFT_TOKEN", "ns_revoked-or-wrong")],
            "",
        )
        .await?;
    assert_eq!(run.code, Some(3), "{run:?}");

    // Usage errors: exit 2, nothing sent.
    let run = cli
        .run(&["send", prefix, "x", "--steer", "--collect"])
        .await?;
    assert_eq!(run.code, Some(2), "{run:?}");
    let before = api.messages(&id).await?.len();
    let run = cli.run(&["send", prefix, "   "]).await?;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert_eq!(api.messages(&id).await?.len(), before);
    Ok(())
}

/// On a terminal, `watch` asks the agent's question inline and posts the reply.
#[tokio::test]
async fn watch_on_a_terminal_answers_the_agents_question_inline() {
    let (stack, llm) = stack_with_llm().await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        llm.on(
            "MARK-CLI-ASK",
            Script::new(vec![
                Step::tool(
                    "ask_user",
                    json!({"question": "Which colour?", "options": ["red", "blue"]}),
                ),
                Step::text("Blue it is."),
            ]),
        );
        let cli = Cli::new()?;
        let session = api.create_session().await?;
        let token = token(&api, &["read", "write"]).await?;
        let env = [
            ("NIGHTSHIFT_SERVER", stack.worker_url()),
            ("NIGHTSHIFT_TOKEN", token),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        api.send(&session.id, "MARK-CLI-ASK pick a colour").await?;

        // `script` gives the CLI a pseudo-terminal for standard input and output, as
        // a person's terminal would; what is written to its input is typed.
        let inner = format!("{} watch {}", binary("nightshift").display(), session.id);
        let mut watch = Command::new("script")
            .args(["-q", "-e", "-c", &inner, "/dev/null"])
            .env_remove("NIGHTSHIFT_SERVER")
            .env_remove("NIGHTSHIFT_TOKEN")
            .env("XDG_CONFIG_HOME", cli.home.path())
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut input = watch.stdin.take().context("stdin")?;
        let mut output = watch.stdout.take().context("stdout")?;
        let mut screen = String::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut typed = false;
        while !screen.contains("= done") {
            let mut buffer = [0u8; 4096];
            let read = tokio::time::timeout_at(deadline, output.read(&mut buffer))
                .await
                .with_context(|| format!("the turn never ended on screen:\n{screen}"))??;
            if read == 0 {
                bail!("watch ended early:\n{screen}");
            }
            screen.push_str(&String::from_utf8_lossy(&buffer[..read]));
            if !typed && screen.contains("type a number or an answer") {
                input.write_all(b"2\n").await?;
                input.flush().await?;
                typed = true;
            }
        }
        assert!(
            screen.contains("? question: Which colour?  [1) red  2) blue]"),
            "{screen}"
        );
        assert!(screen.contains("answered: blue"), "{screen}");
        assert!(screen.contains("Blue it is."), "{screen}");
        let events = api
            .history_until(&session.id, |events| {
                events
                    .iter()
                    .any(|e| matches!(e.body, EventBody::TurnFinished { .. }))
            })
            .await?;
        assert!(events.iter().any(|e| matches!(&e.body,
            EventBody::QuestionAnswered { answer, .. } if answer == "blue")));
        drop(input);
        let _ = watch.kill().await;
        Ok(())
    })
    .await;
}

/// A dropped stream is reopened with `Last-Event-ID`: after the Worker restarts, the
/// next turn's events arrive, and none is missed or shown twice.
#[tokio::test]
async fn watch_resumes_where_it_left_off_after_the_worker_restarts() {
    let (mut stack, llm) = stack_with_llm().await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    llm.on(
        "MARK-CLI-ONE",
        Script::new(vec![Step::text("first answer")]),
    );
    llm.on(
        "MARK-CLI-TWO",
        Script::new(vec![Step::text("second answer")]),
    );
    let result = async {
        let cli = Cli::new()?;
        let session = api.create_session().await?;
        let token = token(&api, &["read", "write"]).await?;
        let server = stack.worker_url();
        let env = [
            ("NIGHTSHIFT_SERVER", server.as_str()),
            ("NIGHTSHIFT_TOKEN", token.as_str()),
        ];
        api.send(&session.id, "MARK-CLI-ONE go").await?;
        let mut watch = cli
            .command(&["--json", "watch", &session.id], &env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut lines = BufReader::new(watch.stdout.take().context("stdout")?).lines();
        let mut seen = lines_until(&mut lines, |v| v["type"] == "turn_finished").await?;

        stack.restart_worker().await?;
        api.send(&session.id, "MARK-CLI-TWO again").await?;
        seen.extend(lines_until(&mut lines, |v| v["type"] == "turn_finished").await?);

        let seqs: Vec<u64> = seen.iter().filter_map(|v| v["seq"].as_u64()).collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "no gap, no repeat"
        );
        let text: String = seen
            .iter()
            .filter(|v| v["type"] == "text_delta" || v["type"] == "text")
            .filter_map(|v| v["text"].as_str())
            .collect();
        assert_eq!(text, "first answersecond answer");
        interrupt(&watch);
        assert_eq!(exit_code(&mut watch).await?, Some(0));
        let mut stderr = String::new();
        watch
            .stderr
            .take()
            .context("stderr")?
            .read_to_string(&mut stderr)
            .await?;
        assert!(stderr.contains("reconnecting"), "{stderr}");
        anyhow::Ok(())
    }
    .await;
    if let Err(error) = result {
        stack.dump_logs();
        panic!("{error:?}");
    }
}

/// The lease of the stack that tests a watcher's presence: shorter than the time the
/// test watches, longer than the CLI's heartbeat.
const PRESENCE_LEASE_MS: u64 = 15_000;

/// The names of the people `api` sees watching `session`.
async fn watchers(api: &Api, session: &str) -> anyhow::Result<Vec<String>> {
    let viewers: Value = api
        .expect(
            Method::GET,
            &format!("/api/sessions/{session}/presence"),
            None,
            200,
        )
        .await?;
    Ok(viewers
        .as_array()
        .context("a presence list")?
        .iter()
        .filter_map(|viewer| viewer["name"].as_str().map(str::to_string))
        .collect())
}

/// A CLI watcher is among a session's watchers for as long as it watches, past the
/// lease its stream opened with (it renews it), and leaves the list at once when it
/// stops.
#[tokio::test]
async fn a_cli_watcher_stays_present_while_it_watches_and_leaves_when_it_stops() {
    let stack = Stack::start(StackOptions {
        worker_vars: vec![("PRESENCE_LEASE_MS".into(), PRESENCE_LEASE_MS.to_string())],
        ..StackOptions::default()
    })
    .await
    .unwrap();
    let result = async {
        let alice = stack.signed_in_api("alice@example.com").await?;
        let name = alice
            .expect::<Value>(Method::GET, "/api/me", None, 200)
            .await?["user"]["name"]
            .as_str()
            .context("a name")?
            .to_string();
        let session = alice.create_session().await?;
        let token = token(&alice, &["read", "write"]).await?;
        let server = stack.worker_url();
        let cli = Cli::new()?;
        let mut watch = cli
            .command(
                &["--json", "watch", &session.id],
                &[
                    ("NIGHTSHIFT_SERVER", server.as_str()),
                    ("NIGHTSHIFT_TOKEN", token.as_str()),
                ],
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let deadline = tokio::time::Instant::now() + WAIT;
        while !watchers(&alice, &session.id).await?.contains(&name) {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the watcher never showed up"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Past the lease the stream's opening granted: only heartbeats keep it.
        tokio::time::sleep(Duration::from_millis(PRESENCE_LEASE_MS + 5_000)).await;
        let present = watchers(&alice, &session.id).await?;
        anyhow::ensure!(
            present.contains(&name),
            "a watcher still watching dropped from the list: {present:?}"
        );
        interrupt(&watch);
        assert_eq!(exit_code(&mut watch).await?, Some(0));
        // Gone at once, not when the lease runs out.
        let present = watchers(&alice, &session.id).await?;
        anyhow::ensure!(
            !present.contains(&name),
            "a watcher that stopped is still listed: {present:?}"
        );
        anyhow::Ok(())
    }
    .await;
    if let Err(error) = result {
        stack.dump_logs();
        panic!("{error:?}");
    }
}

/// `new --repo` against the fake GitHub: arguments git or GitHub would refuse are
/// refused before anything is sent; a user who has not connected GitHub is told so
/// and gets no session; once connected, the session starts on its own branch from
/// the chosen base, and `sessions` shows the repository (in its table and its JSON).
#[tokio::test]
async fn new_with_a_repository_needs_github_connected_and_starts_on_its_branch() {
    let gh = nightshift_e2e::fake_github::FakeGithub::start()
        .await
        .unwrap();
    gh.add_user("alice", "Alice Doe", "alice@example.com");
    let mut seed = nightshift_e2e::git_server::RepoSeed::small();
    seed.branches = vec!["dev".to_string()];
    gh.add_repo("alice", "app", true, &seed).unwrap();
    let stack = Stack::start(StackOptions {
        worker_vars: gh.worker_vars(),
        ..StackOptions::default()
    })
    .await
    .unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        let cli = Cli::new()?;
        let write_token = token(&api, &["read", "write"]).await?;
        cli.ok(&[
            "login",
            "--server",
            &stack.worker_url(),
            "--token",
            &write_token,
        ])
        .await?;

        for bad in [
            &["new", "--repo", "alice"][..],
            &["new", "--repo", "alice/app", "--base", "a..b"],
            &["new", "--repo", "alice/app", "--branch", "x", "--pr", "1"],
            &["new", "--pr", "1"],
        ] {
            let run = cli.run(bad).await?;
            assert_eq!(run.code, Some(2), "{bad:?}: {run:?}");
        }
        let run = cli.run(&["new", "--repo", "alice/app"]).await?;
        assert_eq!(run.code, Some(1), "{run:?}");
        assert!(run.stderr.contains("github_not_connected"), "{run:?}");
        assert!(api.sessions().await?.is_empty(), "nothing was created");

        gh.connect(&stack.worker_url(), &api, "alice", "/").await?;
        let run = cli
            .ok(&[
                "--json",
                "new",
                "--repo",
                "alice/app",
                "--base",
                "dev",
                "--title",
                "Fix it",
            ])
            .await?;
        let created = run.json()?;
        let repo = &created["session"]["repo"];
        assert_eq!(repo["full_name"], "alice/app", "{created}");
        assert_eq!(repo["base_branch"], "dev", "{created}");
        let branch = repo["branch"].as_str().unwrap_or_default().to_string();
        assert!(branch.starts_with("nightshift/"), "{created}");

        let table = cli.ok(&["sessions"]).await?;
        let header = table.stdout.lines().next().unwrap_or_default();
        assert!(
            header.contains("REPO") && header.contains("PR"),
            "{table:?}"
        );
        assert!(table.stdout.contains("alice/app"), "{table:?}");
        let listed = cli.ok(&["--json", "sessions"]).await?.json()?;
        assert_eq!(listed["sessions"][0]["repo"]["branch"], branch.as_str());
        assert_eq!(gh.take_violations(), Vec::<String>::new());
        anyhow::Ok(())
    })
    .await;
}

#[tokio::test]
async fn the_cli_lists_with_filters_and_archives_and_deletes_sessions() {
    let (stack, _llm) = stack_with_llm().await.unwrap();
    let api = stack.signed_in_api("alice@example.com").await.unwrap();
    with_logs(&stack, async {
        let cli = Cli::new()?;
        let write_token = token(&api, &["read", "write"]).await?;
        cli.ok(&[
            "login",
            "--server",
            &stack.worker_url(),
            "--token",
            &write_token,
        ])
        .await?;
        let mut ids = Vec::new();
        for title in ["Keep me", "Archive me", "Delete me"] {
            ids.push(api.create_session_with(json!({ "title": title })).await?.id);
        }
        let titles = |run: &Run| -> anyhow::Result<Vec<String>> {
            Ok(run.json()?["sessions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|session| session["title"].as_str().unwrap_or_default().to_owned())
                .collect())
        };
        let found = cli.ok(&["--json", "ls", "--search", "ARCHIVE"]).await?;
        assert_eq!(titles(&found)?, ["Archive me"]);

        // Archive by prefix; the list hides it unless asked.
        let run = cli.ok(&["archive", &ids[1][..8]]).await?;
        assert!(
            run.stdout.contains(&format!("{}  archived", ids[1])),
            "{run:?}"
        );
        let run = cli.ok(&["--json", "ls", "--archived", "true"]).await?;
        assert_eq!(titles(&run)?, ["Archive me"]);
        let run = cli.ok(&["--json", "ls", "--scope", "mine"]).await?;
        assert_eq!(titles(&run)?, ["Delete me", "Keep me"]);

        // Deleting asks; without a terminal it needs --yes, and nothing goes.
        let run = cli.run(&["delete", &ids[2]]).await?;
        assert_eq!(run.code, Some(2), "{run:?}");
        assert!(run.stderr.contains("--yes"), "{run:?}");
        assert!(api.session(&ids[2]).await.is_ok());
        let run = cli.ok(&["delete", "--yes", &ids[2], &ids[1]]).await?;
        assert!(
            run.stdout.contains(&format!("{}  deleted", ids[2])),
            "{run:?}"
        );
        for id in &ids[1..] {
            let gone = api
                .raw(Method::GET, &format!("/api/sessions/{id}"), None)
                .await?;
            assert_eq!(gone.status, 404, "{gone:?}");
        }
        let run = cli.run(&["ls", "--scope", "everyone"]).await?;
        assert_eq!(run.code, Some(2), "{run:?}");
        Ok(())
    })
    .await;
}
