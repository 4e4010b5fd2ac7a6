//! The cases. Each creates what it needs, checks one part of the contract, and
//! destroys its sandboxes.

use std::time::{Duration, Instant};

use futures::FutureExt;
use nightshift_protocol::sandbox::{ExecOutput, SandboxStatus};
use serde_json::json;

use super::client::{check, stdout_and_code};
use super::{Case, Ctx, Need};

macro_rules! case {
    ($name:ident, $needs:expr) => {
        Case {
            name: stringify!($name),
            needs: $needs,
            run: |ctx| $name(ctx).boxed(),
        }
    };
}

pub fn all() -> Vec<Case> {
    vec![
        case!(unauthorized_requests_do_nothing, Need::Nothing),
        case!(lifecycle, Need::Nothing),
        case!(
            concurrent_lifecycle_calls_share_one_operation,
            Need::Nothing
        ),
        case!(exec_streams_in_order, Need::Nothing),
        case!(exec_timeout_kills_the_group, Need::Nothing),
        case!(exec_env_and_cwd, Need::Nothing),
        case!(exec_stdin, Need::Stdin),
        case!(files_are_confined, Need::Nothing),
        case!(symlink_escape_is_refused, Need::RealCommands),
        case!(fork_is_isolated, Need::Fork),
        case!(processes_with_stdin_and_kill, Need::Processes),
        case!(process_output_is_bounded_with_offsets, Need::Processes),
        case!(templates_are_built_once, Need::Templates),
        case!(idle_sandboxes_stop, Need::IdleMinute),
        case!(reattach_after_backend_restart, Need::Reattach),
        case!(network_none_reaches_nothing, Need::NoNetwork),
        case!(
            network_private_needs_the_operators_consent,
            Need::HostLoopback
        ),
        case!(
            sandboxes_default_to_isolated_and_see_nothing_of_the_host,
            Need::IsolatedNetwork
        ),
        case!(
            network_isolated_refuses_host_and_private,
            Need::IsolatedNetwork
        ),
        case!(fork_bomb_is_contained, Need::RealCommands),
        case!(sigterm_ignoring_process_is_killed, Need::RealCommands),
        case!(gigabytes_of_output_stay_bounded, Need::RealCommands),
        case!(other_sandboxes_files_are_invisible, Need::RealCommands),
        case!(sleep_keeps_the_files_or_is_refused, Need::Nothing),
    ]
}

type Outcome = Result<(), String>;

/// After every case: a fresh sandbox runs a command.
pub async fn still_serving(ctx: &Ctx<'_>) -> Outcome {
    let sandbox = ctx.client.create(json!({})).await?;
    let result = ctx.client.sh(&sandbox.id, "echo alive").await;
    ctx.client.destroy(&sandbox.id).await?;
    let result = result?;
    check(result.stdout == "alive\n", || {
        format!("the backend no longer runs commands: {result:?}")
    })
}

async fn unauthorized_requests_do_nothing(ctx: &Ctx<'_>) -> Outcome {
    let sandbox = ctx.client.create(json!({})).await?;
    let id = &sandbox.id;
    let before = ctx.client.call("GET", "/v1/sandboxes", None).await.json();
    for client in [ctx.client.with_token("wrong"), ctx.client.with_token("")] {
        let routes = [
            ("GET", "/v1/sandboxes".to_string()),
            ("POST", "/v1/sandboxes".to_string()),
            ("GET", format!("/v1/sandboxes/{id}")),
            ("DELETE", format!("/v1/sandboxes/{id}")),
            ("POST", format!("/v1/sandboxes/{id}/stop")),
            ("POST", format!("/v1/sandboxes/{id}/exec")),
            ("POST", format!("/v1/sandboxes/{id}/fork")),
            ("GET", format!("/v1/sandboxes/{id}/files?path=a")),
            ("PUT", format!("/v1/sandboxes/{id}/files?path=a")),
            ("POST", format!("/v1/sandboxes/{id}/processes")),
            ("GET", "/v1/providers".to_string()),
            ("POST", "/v1/templates".to_string()),
            ("GET", "/v1/openapi.json".to_string()),
        ];
        for (method, path) in routes {
            let answer = client
                .call(
                    method,
                    &path,
                    Some(json!({"command": "touch", "args": ["x"]})),
                )
                .await;
            check(
                answer.status == 401 && answer.code() == "unauthorized",
                || {
                    format!(
                        "{method} {path} without a valid token: {} {}",
                        answer.status,
                        answer.text()
                    )
                },
            )?;
        }
    }
    let after = ctx.client.call("GET", "/v1/sandboxes", None).await.json();
    check(before == after, || {
        "an unauthorized call changed the sandboxes".into()
    })?;
    let still = ctx.client.get(id).await?;
    check(still.status == SandboxStatus::Ready, || {
        format!("{still:?}")
    })?;
    ctx.client.destroy(id).await?;
    Ok(())
}

async fn lifecycle(ctx: &Ctx<'_>) -> Outcome {
    let created = ctx
        .client
        .create(json!({"labels": {"suite": "conformance"}}))
        .await?;
    check(created.status == SandboxStatus::Ready, || {
        format!("{created:?}")
    })?;
    check(created.provider == ctx.harness.provider(), || {
        format!("{created:?}")
    })?;
    let id = created.id.clone();
    let listed = ctx.client.call("GET", "/v1/sandboxes", None).await.json();
    check(listed.to_string().contains(&id), || "not listed".into())?;
    let stopped = ctx.client.stop(&id).await?;
    check(stopped.status == SandboxStatus::Stopped, || {
        format!("{stopped:?}")
    })?;
    let refused = ctx
        .client
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/exec"),
            Some(json!({"command": "true"})),
        )
        .await;
    check(refused.status == 409, || {
        format!("exec on a stopped sandbox: {}", refused.text())
    })?;
    let destroyed = ctx.client.destroy(&id).await?;
    check(destroyed.status == SandboxStatus::Destroyed, || {
        format!("{destroyed:?}")
    })?;
    let gone = ctx
        .client
        .call("GET", &format!("/v1/sandboxes/{id}"), None)
        .await;
    check(gone.status == 404, || {
        format!("get after destroy: {}", gone.status)
    })?;
    let again = ctx.client.destroy(&id).await?;
    check(again.status == SandboxStatus::Destroyed, || {
        format!("{again:?}")
    })?;
    let start = ctx
        .client
        .call("POST", &format!("/v1/sandboxes/{id}/start"), None)
        .await;
    check(start.status == 404, || {
        format!("start after destroy: {}", start.text())
    })?;
    let unknown = ctx.client.call("GET", "/v1/sandboxes/sbx_nope", None).await;
    check(
        unknown.status == 404 && unknown.code() == "sandbox_not_found",
        || unknown.text(),
    )
}

async fn concurrent_lifecycle_calls_share_one_operation(ctx: &Ctx<'_>) -> Outcome {
    let sandbox = ctx.client.create(json!({})).await?;
    let id = sandbox.id.as_str();
    let stop_path = format!("/v1/sandboxes/{id}/stop");
    let one_path = format!("/v1/sandboxes/{id}");
    let calls = (0..6).map(|i| {
        let client = ctx.client.clone();
        let (method, path) = if i % 2 == 0 {
            ("POST", stop_path.clone())
        } else {
            ("DELETE", one_path.clone())
        };
        async move { client.call(method, &path, None).await }
    });
    let answers = futures::future::join_all(calls).await;
    for answer in &answers {
        // A stop that comes after the destroy finds the sandbox gone (404); nothing
        // may fail on our side.
        check(
            answer.status == 200 || answer.status == 404 || answer.status == 409,
            || {
                format!(
                    "a concurrent lifecycle call failed: {} {}",
                    answer.status,
                    answer.text()
                )
            },
        )?;
    }
    let end = ctx.client.call("GET", &one_path, None).await;
    check(end.status == 404, || {
        format!("not destroyed in the end: {}", end.text())
    })
}

async fn exec_streams_in_order(ctx: &Ctx<'_>) -> Outcome {
    let sandbox = ctx.client.create(json!({})).await?;
    let lines = ctx
        .client
        .exec(
            &sandbox.id,
            json!({"command": "sh", "args": ["-c", "echo one; sleep 0.3; echo two >&2; sleep 0.3; echo three; exit 4"]}),
        )
        .await?;
    ctx.client.destroy(&sandbox.id).await?;
    let mut order = Vec::new();
    for line in &lines {
        match line {
            ExecOutput::Stdout(text) | ExecOutput::Stderr(text) => {
                order.extend(text.lines().map(String::from))
            }
            ExecOutput::Exit(_) => order.push("exit".into()),
        }
    }
    check(order == ["one", "two", "three", "exit"], || {
        format!("{lines:?}")
    })?;
    let (_, code) = stdout_and_code(&lines)?;
    check(code == 4, || format!("exit code {code}"))
}

async fn exec_timeout_kills_the_group(ctx: &Ctx<'_>) -> Outcome {
    let sandbox = ctx
        .client
        .create(json!({"default_timeout_ms": 60_000}))
        .await?;
    let started = Instant::now();
    let result = ctx
        .client
        .exec_result(
            &sandbox.id,
            json!({"command": "sh", "args": ["-c", "sleep 60 & sleep 60; echo never"], "timeout_ms": 500}),
        )
        .await?;
    let elapsed = started.elapsed();
    ctx.client.destroy(&sandbox.id).await?;
    check(
        result.exit.timed_out && result.exit.killed && result.exit.code != 0,
        || format!("{result:?}"),
    )?;
    check(elapsed < Duration::from_secs(10), || {
        format!("took {elapsed:?}")
    })
}

async fn exec_env_and_cwd(ctx: &Ctx<'_>) -> Outcome {
    let sandbox = ctx
        .client
        .create(json!({"env": {"A": "from-sandbox", "B": "from-sandbox"}}))
        .await?;
    let id = &sandbox.id;
    ctx.client.sh(id, "mkdir -p sub/dir").await?;
    let result = ctx
        .client
        .exec_result(
            id,
            json!({"command": "sh", "args": ["-c", "echo $A $B; pwd"], "env": {"B": "from-exec"}, "cwd": "sub/dir"}),
        )
        .await?;
    ctx.client.destroy(id).await?;
    let mut lines = result.stdout.lines();
    check(lines.next() == Some("from-sandbox from-exec"), || {
        format!("{result:?}")
    })?;
    check(
        lines.next().is_some_and(|cwd| cwd.ends_with("/sub/dir")),
        || format!("{result:?}"),
    )
}

async fn exec_stdin(ctx: &Ctx<'_>) -> Outcome {
    let sandbox = ctx.client.create(json!({})).await?;
    let result = ctx
        .client
        .exec_result(
            &sandbox.id,
            json!({"command": "cat", "stdin": "fed through stdin"}),
        )
        .await?;
    ctx.client.destroy(&sandbox.id).await?;
    check(result.stdout == "fed through stdin", || {
        format!("{result:?}")
    })
}

async fn files_are_confined(ctx: &Ctx<'_>) -> Outcome {
    let sandbox = ctx.client.create(json!({})).await?;
    let id = &sandbox.id;
    ctx.client
        .call_raw(
            "PUT",
            &format!("/v1/sandboxes/{id}/files?path=dir/a.txt"),
            Some(b"content".to_vec()),
        )
        .await
        .expect(204, "put")?;
    let read = ctx
        .client
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/files?path=dir/a.txt"),
            None,
        )
        .await
        .expect(200, "get")?;
    check(read.body == b"content", || read.text())?;
    let seen = ctx.client.sh(id, "cat dir/a.txt").await?;
    check(seen.stdout == "content", || format!("{seen:?}"))?;
    for path in ["../escape", "/etc/passwd", "dir/../../x", ""] {
        for method in ["GET", "PUT"] {
            let answer = ctx
                .client
                .call_raw(
                    method,
                    &format!("/v1/sandboxes/{id}/files?path={path}"),
                    Some(b"x".to_vec()),
                )
                .await;
            check(answer.status == 400, || {
                format!(
                    "{method} {path:?} was not refused: {} {}",
                    answer.status,
                    answer.text()
                )
            })?;
        }
    }
    ctx.client.destroy(id).await?;
    Ok(())
}

async fn symlink_escape_is_refused(ctx: &Ctx<'_>) -> Outcome {
    let sandbox = ctx.client.create(json!({})).await?;
    let id = &sandbox.id;
    ctx.client
        .sh(id, "ln -s / root; ln -s /etc/hostname host; ln -s .. up")
        .await?;
    for path in ["root/etc/passwd", "host", "up/x"] {
        for method in ["GET", "PUT"] {
            let answer = ctx
                .client
                .call_raw(
                    method,
                    &format!("/v1/sandboxes/{id}/files?path={path}"),
                    Some(b"x".to_vec()),
                )
                .await;
            check(answer.status == 400, || {
                format!(
                    "{method} through symlink {path:?}: {} {}",
                    answer.status,
                    answer.text()
                )
            })?;
        }
    }
    ctx.client.destroy(id).await?;
    Ok(())
}

async fn fork_is_isolated(ctx: &Ctx<'_>) -> Outcome {
    let source = ctx.client.create(json!({"env": {"WHO": "source"}})).await?;
    ctx.client
        .sh(&source.id, "echo original > shared.txt")
        .await?;
    let answer = ctx
        .client
        .call(
            "POST",
            &format!("/v1/sandboxes/{}/fork", source.id),
            Some(json!({"env": {"WHO": "fork"}, "idle_timeout_minutes": 30})),
        )
        .await
        .expect(201, "fork")?;
    let fork: nightshift_protocol::sandbox::Sandbox =
        serde_json::from_slice(&answer.body).map_err(|e| e.to_string())?;
    check(
        fork.status == SandboxStatus::Ready && fork.id != source.id,
        || format!("{fork:?}"),
    )?;
    let seen = ctx.client.sh(&fork.id, "cat shared.txt; echo $WHO").await?;
    check(seen.stdout == "original\nfork\n", || format!("{seen:?}"))?;
    ctx.client
        .sh(&fork.id, "echo fork-change > shared.txt; touch only-fork")
        .await?;
    ctx.client.sh(&source.id, "touch only-source").await?;
    let in_source = ctx.client.sh(&source.id, "cat shared.txt; ls").await?;
    let in_fork = ctx.client.sh(&fork.id, "ls").await?;
    ctx.client.destroy(&source.id).await?;
    let after_destroy = ctx.client.sh(&fork.id, "cat shared.txt").await?;
    ctx.client.destroy(&fork.id).await?;
    check(
        in_source.stdout.starts_with("original\n") && !in_source.stdout.contains("only-fork"),
        || format!("the fork's changes leaked into the source: {in_source:?}"),
    )?;
    check(!in_fork.stdout.contains("only-source"), || {
        format!("the source's changes leaked into the fork: {in_fork:?}")
    })?;
    check(after_destroy.stdout == "fork-change\n", || {
        format!("{after_destroy:?}")
    })
}

async fn processes_with_stdin_and_kill(ctx: &Ctx<'_>) -> Outcome {
    let sandbox = ctx.client.create(json!({})).await?;
    let id = &sandbox.id;
    let answer = ctx
        .client
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes"),
            Some(json!({"command": "sh", "args": ["-c", "while read line; do echo got $line; done; echo eof; sleep 300"]})),
        )
        .await
        .expect(201, "start process")?;
    let pid = answer.json()["id"].as_str().unwrap_or_default().to_string();
    let base = format!("/v1/sandboxes/{id}/processes/{pid}");
    ctx.client
        .call(
            "POST",
            &format!("{base}/stdin"),
            Some(json!({"data": "hello\n"})),
        )
        .await
        .expect(204, "stdin")?;
    ctx.client
        .call(
            "POST",
            &format!("{base}/stdin"),
            Some(json!({"data": "world\n", "eof": true})),
        )
        .await
        .expect(204, "stdin")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = ctx.client.process(id, &pid).await?;
        if info.stdout.tail.contains("eof") {
            check(
                info.stdout.tail == "got hello\ngot world\neof\n" && info.running,
                || format!("{info:?}"),
            )?;
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("no output from the process: {info:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed = ctx
        .client
        .call("GET", &format!("/v1/sandboxes/{id}/processes"), None)
        .await
        .expect(200, "list")?;
    check(listed.text().contains(&pid), || listed.text())?;
    // The output stream from offset 4 ("hello\n..." minus "got ").
    let streamed = ctx
        .client
        .call("GET", &format!("{base}/output?offset=4&follow=false"), None)
        .await
        .expect(200, "output")?;
    check(
        streamed
            .text()
            .contains(r#""offset":4,"data":"hello\ngot world\neof\n""#),
        || streamed.text(),
    )?;
    let killed = ctx
        .client
        .call("POST", &format!("{base}/kill"), None)
        .await
        .expect(200, "kill")?;
    let killed = killed.json();
    check(
        killed["running"] == false && killed["exit"]["killed"] == true,
        || killed.to_string(),
    )?;
    let rest = ctx
        .client
        .call("GET", &format!("{base}/output?offset=0"), None)
        .await
        .expect(200, "output after exit")?;
    check(
        rest.text().trim_end().ends_with("}}") && rest.text().contains("\"exit\""),
        || rest.text(),
    )?;
    let unknown = ctx
        .client
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/processes/proc_999"),
            None,
        )
        .await;
    check(unknown.status == 404, || unknown.text())?;
    ctx.client.destroy(id).await?;
    Ok(())
}

async fn process_output_is_bounded_with_offsets(ctx: &Ctx<'_>) -> Outcome {
    let sandbox = ctx.client.create(json!({})).await?;
    let id = &sandbox.id;
    let answer = ctx
        .client
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes"),
            Some(json!({"command": "sh", "args": ["-c", "head -c 5000000 /dev/zero | tr '\\0' x; echo; echo done >&2"]})),
        )
        .await
        .expect(201, "start")?;
    let pid = answer.json()["id"].as_str().unwrap_or_default().to_string();
    let info = loop {
        let info = ctx.client.process(id, &pid).await?;
        if !info.running {
            break info;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    check(info.stdout.total_bytes == 5_000_001, || {
        format!("{:?}", info.stdout.total_bytes)
    })?;
    check(
        info.stdout.dropped_bytes > 0
            && info.stdout.dropped_bytes + info.stdout.tail.len() as u64 == 5_000_001,
        || {
            format!(
                "dropped {} tail {}",
                info.stdout.dropped_bytes,
                info.stdout.tail.len()
            )
        },
    )?;
    check(info.stderr.tail == "done\n", || {
        format!("{:?}", info.stderr)
    })?;
    let streamed = ctx
        .client
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/processes/{pid}/output?offset=0"),
            None,
        )
        .await
        .expect(200, "output")?;
    let first = streamed
        .text()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    check(first.contains("\"dropped\""), || {
        format!("first line: {first}")
    })?;
    ctx.client.destroy(id).await?;
    Ok(())
}

async fn templates_are_built_once(ctx: &Ctx<'_>) -> Outcome {
    let marker = format!(
        "m{}",
        Instant::now().elapsed().as_nanos() ^ std::process::id() as u128
    );
    let spec = json!({
        "commands": [format!("echo {marker} > built.txt"), "date +%s%N > stamp"],
        "workdir": "app",
    });
    let built = ctx
        .client
        .call("POST", "/v1/templates", Some(spec.clone()))
        .await
        .expect(201, "build")?
        .json();
    let again = ctx
        .client
        .call("POST", "/v1/templates", Some(spec))
        .await
        .expect(200, "cached build")?
        .json();
    let template = built["id"].as_str().unwrap_or_default().to_string();
    check(!template.is_empty() && again["id"] == built["id"], || {
        format!("{built} vs {again}")
    })?;
    let sandbox = ctx.client.create(json!({"template": template})).await?;
    check(sandbox.status == SandboxStatus::Ready, || {
        format!("{sandbox:?}")
    })?;
    let seen = ctx.client.sh(&sandbox.id, "cat built.txt; pwd").await?;
    let second = ctx.client.create(json!({"template": template})).await?;
    let stamps = (
        ctx.client.sh(&sandbox.id, "cat stamp").await?.stdout,
        ctx.client.sh(&second.id, "cat stamp").await?.stdout,
    );
    ctx.client.destroy(&sandbox.id).await?;
    ctx.client.destroy(&second.id).await?;
    check(
        seen.stdout.starts_with(&format!("{marker}\n")) && seen.stdout.trim_end().ends_with("/app"),
        || format!("{seen:?}"),
    )?;
    check(stamps.0 == stamps.1, || {
        format!("the template was built twice: {stamps:?}")
    })?;
    let bad = ctx
        .client
        .call(
            "POST",
            "/v1/templates",
            Some(json!({"packages": ["nosuchmanager:x"]})),
        )
        .await;
    check(bad.status == 400, || bad.text())?;
    let unknown = ctx
        .client
        .call(
            "POST",
            "/v1/sandboxes",
            Some(json!({"template": "tpl_unknown"})),
        )
        .await;
    check(unknown.status == 404 || unknown.status == 400, || {
        unknown.text()
    })
}

async fn idle_sandboxes_stop(ctx: &Ctx<'_>) -> Outcome {
    let minute = ctx.harness.idle_minute();
    let idle = ctx
        .client
        .create(json!({"idle_timeout_minutes": 1}))
        .await?;
    let busy = ctx
        .client
        .create(json!({"idle_timeout_minutes": 1}))
        .await?;
    let started = Instant::now();
    // Keep `busy` active past the idle limit.
    while started.elapsed() < minute * 2 {
        ctx.client.sh(&busy.id, "true").await?;
        tokio::time::sleep(minute / 4).await;
    }
    let stopped = ctx
        .client
        .wait_status(&idle.id, SandboxStatus::Stopped, minute * 4)
        .await?;
    let busy_now = ctx.client.get(&busy.id).await?;
    ctx.client.destroy(&idle.id).await?;
    ctx.client.destroy(&busy.id).await?;
    check(
        stopped
            .status_reason
            .as_deref()
            .is_some_and(|reason| reason.contains("idle")),
        || format!("{stopped:?}"),
    )?;
    check(busy_now.status == SandboxStatus::Ready, || {
        format!("an active sandbox was stopped: {busy_now:?}")
    })
}

async fn reattach_after_backend_restart(ctx: &Ctx<'_>) -> Outcome {
    let sandbox = ctx.client.create(json!({"env": {"KEPT": "yes"}})).await?;
    let id = &sandbox.id;
    ctx.client.sh(id, "echo before > state.txt").await?;
    let doomed = ctx.client.create(json!({})).await?;
    if !ctx.harness.restart_backend().await {
        ctx.client.destroy(id).await?;
        ctx.client.destroy(&doomed.id).await?;
        return Ok(());
    }
    let after = ctx.client.get(id).await?;
    check(after.status == SandboxStatus::Ready, || {
        format!("after restart: {after:?}")
    })?;
    let seen = ctx.client.sh(id, "cat state.txt; echo $KEPT").await?;
    check(seen.stdout == "before\nyes\n", || format!("{seen:?}"))?;
    ctx.client.destroy(id).await?;
    ctx.client.destroy(&doomed.id).await?;
    Ok(())
}

/// A TCP listener on the host; returns its port and a flag set when anything connects.
async fn host_listener(address: &str) -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let listener = tokio::net::TcpListener::bind(format!("{address}:0"))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let hit = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = hit.clone();
    tokio::spawn(async move {
        while let Ok((_stream, _)) = listener.accept().await {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
    (port, hit)
}

/// A shell snippet that prints `connected` or `refused` for a TCP connect.
fn connect_script(host: &str, port: u16) -> String {
    format!(
        "if timeout 3 bash -c 'exec 3<>/dev/tcp/{host}/{port}' 2>/dev/null; then echo connected; else echo refused; fi"
    )
}

/// A non-loopback address of this host (a private one on this machine).
fn host_private_address() -> Option<String> {
    let output = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .find(|address| !address.contains(':'))
        .map(String::from)
}

async fn network_none_reaches_nothing(ctx: &Ctx<'_>) -> Outcome {
    let (port, hit) = host_listener("0.0.0.0").await;
    let sandbox = ctx.client.create(json!({"network": "none"})).await?;
    let mut script = connect_script("127.0.0.1", port);
    if let Some(address) = host_private_address() {
        script.push_str("; ");
        script.push_str(&connect_script(&address, port));
    }
    let result = ctx.client.sh(&sandbox.id, &script).await?;
    ctx.client.destroy(&sandbox.id).await?;
    check(
        !result.stdout.contains("connected") && !hit.load(std::sync::atomic::Ordering::SeqCst),
        || format!("network none reached the host: {result:?}"),
    )
}

async fn network_private_needs_the_operators_consent(ctx: &Ctx<'_>) -> Outcome {
    use nightshift_protocol::sandbox::NetworkMode;
    let before = ctx.client.call("GET", "/v1/sandboxes", None).await.json();
    let (port, hit) = host_listener("127.0.0.1").await;
    if !ctx
        .capabilities
        .network_modes
        .contains(&NetworkMode::Private)
    {
        // Off by default: asking for the host's network is refused, and nothing is made.
        let answer = ctx
            .client
            .call("POST", "/v1/sandboxes", Some(json!({"network": "private"})))
            .await;
        check(
            answer.status == 400 && answer.code() == "invalid_request",
            || {
                format!(
                    "private without consent: {} {}",
                    answer.status,
                    answer.text()
                )
            },
        )?;
        let after = ctx.client.call("GET", "/v1/sandboxes", None).await.json();
        return check(before == after, || {
            "a refused create left a sandbox behind".into()
        });
    }
    // The operator allowed it: the sandbox then shares the host's loopback.
    let sandbox = ctx.client.create(json!({"network": "private"})).await?;
    let result = ctx
        .client
        .sh(&sandbox.id, &connect_script("127.0.0.1", port))
        .await?;
    ctx.client.destroy(&sandbox.id).await?;
    check(
        result.stdout.contains("connected") && hit.load(std::sync::atomic::Ordering::SeqCst),
        || format!("private mode cannot reach the host's loopback: {result:?}"),
    )
}

async fn sandboxes_default_to_isolated_and_see_nothing_of_the_host(ctx: &Ctx<'_>) -> Outcome {
    use nightshift_protocol::sandbox::NetworkMode;
    let (port, hit) = host_listener("127.0.0.1").await;
    let backend_port = ctx
        .harness
        .base_url()
        .rsplit(':')
        .next()
        .and_then(|port| port.trim_end_matches('/').parse::<u16>().ok())
        .unwrap_or(0);
    let sandbox = ctx.client.create(json!({})).await?;
    let id = sandbox.id.clone();
    let outcome = async {
        check(sandbox.network == NetworkMode::Isolated, || {
            format!("a sandbox asked for no mode got {:?}", sandbox.network)
        })?;
        // Neither the host's listener nor the backend itself is reachable.
        for target_port in [port, backend_port] {
            let result = ctx
                .client
                .sh(&id, &connect_script("127.0.0.1", target_port))
                .await?;
            check(!result.stdout.contains("connected"), || {
                format!("the sandbox reached the host's 127.0.0.1:{target_port}")
            })?;
        }
        // The sandbox's socket tables are its own: the host's listeners are not in them.
        let tables = ctx
            .client
            .sh(&id, "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null")
            .await?;
        for listening in [port, backend_port] {
            let needle = format!(":{listening:04X} ");
            check(!tables.stdout.contains(&needle), || {
                format!("/proc/net/tcp in the sandbox shows the host's port {listening}: {}", tables.stdout)
            })?;
        }
        // Binding the host listener's port inside takes nothing from the host.
        let bound = ctx
            .client
            .sh(
                &id,
                &format!(
                    "python3 -c 'import socket,time; s=socket.socket(); s.bind((\"127.0.0.1\", {port})); s.listen(); print(\"bound\")'"
                ),
            )
            .await?;
        check(bound.stdout.contains("bound"), || {
            format!("the sandbox could not use a port of its own loopback: {bound:?}")
        })?;
        let reached = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        check(
            reached.is_ok() && hit.load(std::sync::atomic::Ordering::SeqCst),
            || "the host's listener lost its port to the sandbox".into(),
        )
    }
    .await;
    ctx.client.destroy(&id).await?;
    outcome
}

async fn network_isolated_refuses_host_and_private(ctx: &Ctx<'_>) -> Outcome {
    let (port, hit) = host_listener("0.0.0.0").await;
    let sandbox = ctx.client.create(json!({"network": "isolated"})).await?;
    let mut targets = vec![
        "127.0.0.1".to_string(),
        "10.0.0.1".to_string(),
        "192.168.0.1".to_string(),
        "169.254.169.254".to_string(),
        "localhost".to_string(),
    ];
    targets.extend(host_private_address());
    let mut outcomes = Vec::new();
    for target in &targets {
        let direct = ctx
            .client
            .sh(&sandbox.id, &connect_script(target, port))
            .await?;
        check(!direct.stdout.contains("connected"), || {
            format!("isolated reached {target}:{port} directly")
        })?;
        // Through the sandbox's egress proxy, when it has one: refused (403).
        let proxied = ctx
            .client
            .sh(
                &sandbox.id,
                &format!(
                    "if [ -n \"$HTTP_PROXY\" ]; then curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 --noproxy '' -x \"$HTTP_PROXY\" http://{target}:{port}/ ; else echo no-proxy; fi"
                ),
            )
            .await?;
        let code = proxied.stdout.trim().to_string();
        outcomes.push(format!(
            "{target}: direct={} proxied={code}",
            direct.stdout.trim()
        ));
        check(code == "403" || code == "no-proxy", || {
            format!("the proxy did not refuse {target}:{port}: {outcomes:?} {proxied:?}")
        })?;
    }
    // The way out works for an allowed destination (when the harness has one).
    let allowed = match ctx.harness.isolated_allowed_address() {
        None => None,
        Some(address) => {
            let (allowed_port, allowed_hit) = host_listener(&address).await;
            let reached = ctx
                .client
                .sh(
                    &sandbox.id,
                    &format!("curl -s -o /dev/null --max-time 5 --noproxy '' -p -x \"$HTTP_PROXY\" http://{address}:{allowed_port}/; true"),
                )
                .await?;
            Some((
                allowed_hit.load(std::sync::atomic::Ordering::SeqCst),
                reached,
            ))
        }
    };
    ctx.client.destroy(&sandbox.id).await?;
    check(!hit.load(std::sync::atomic::Ordering::SeqCst), || {
        format!("isolated mode reached the host listener: {outcomes:?}")
    })?;
    if let Some((reached, result)) = allowed {
        check(reached, || {
            format!("the egress proxy does not reach an allowed destination: {result:?}")
        })?;
    }
    Ok(())
}

async fn fork_bomb_is_contained(ctx: &Ctx<'_>) -> Outcome {
    let bomb = ctx.client.create(json!({})).await?;
    let neighbour = ctx.client.create(json!({})).await?;
    let started = Instant::now();
    let bombing = ctx.client.exec_result(
        &bomb.id,
        json!({"command": "bash", "args": ["-c", "b() { b | b & }; b; sleep 5"], "timeout_ms": 4000}),
    );
    let neighbour_check = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        ctx.client.sh(&neighbour.id, "echo fine").await
    };
    let (bombed, during) = tokio::join!(bombing, neighbour_check);
    let bombed = bombed?;
    let during = during?;
    let after = ctx.client.sh(&bomb.id, "echo recovered").await?;
    ctx.client.destroy(&bomb.id).await?;
    ctx.client.destroy(&neighbour.id).await?;
    check(started.elapsed() < Duration::from_secs(60), || {
        "the fork bomb took too long to end".into()
    })?;
    check(bombed.exit.code != 0, || format!("{:?}", bombed.exit))?;
    check(during.stdout == "fine\n", || {
        format!("a neighbour suffered: {during:?}")
    })?;
    check(after.stdout == "recovered\n", || {
        format!("the bombed sandbox did not recover: {after:?}")
    })
}

async fn sigterm_ignoring_process_is_killed(ctx: &Ctx<'_>) -> Outcome {
    let sandbox = ctx.client.create(json!({})).await?;
    let id = &sandbox.id;
    let started = Instant::now();
    let timed = ctx
        .client
        .exec_result(
            id,
            json!({"command": "sh", "args": ["-c", "trap '' TERM; while true; do sleep 1; done"], "timeout_ms": 700}),
        )
        .await?;
    check(
        timed.exit.timed_out && started.elapsed() < Duration::from_secs(10),
        || format!("{:?} after {:?}", timed.exit, started.elapsed()),
    )?;
    if ctx.capabilities.processes {
        let answer = ctx
            .client
            .call(
                "POST",
                &format!("/v1/sandboxes/{id}/processes"),
                Some(json!({"command": "sh", "args": ["-c", "trap '' TERM INT HUP; sleep 300 & wait; sleep 300"]})),
            )
            .await
            .expect(201, "process")?;
        let pid = answer.json()["id"].as_str().unwrap_or_default().to_string();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        let killed = ctx
            .client
            .call(
                "POST",
                &format!("/v1/sandboxes/{id}/processes/{pid}/kill"),
                None,
            )
            .await
            .expect(200, "kill")?;
        check(
            killed.json()["running"] == false && started.elapsed() < Duration::from_secs(15),
            || killed.text(),
        )?;
        // `sleep 300` only: a container's own main process may be a `sleep infinity`.
        let left = ctx
            .client
            .sh(id, "ps -eo args | grep -c '^sleep 300' || true")
            .await?;
        check(left.stdout.trim() == "0", || {
            format!("children survived the kill: {left:?}")
        })?;
    }
    ctx.client.destroy(id).await?;
    Ok(())
}

async fn gigabytes_of_output_stay_bounded(ctx: &Ctx<'_>) -> Outcome {
    let sandbox = ctx.client.create(json!({})).await?;
    let id = &sandbox.id;
    // 2 GiB, not streamed: the backend keeps at most its cap.
    let started = Instant::now();
    let result = ctx
        .client
        .exec_result(
            id,
            json!({"command": "sh", "args": ["-c", "head -c 2147483648 /dev/zero"], "timeout_ms": 60000}),
        )
        .await?;
    check(
        result.truncated && result.stdout.len() <= 8 * 1024 * 1024,
        || {
            format!(
                "kept {} bytes, truncated={}",
                result.stdout.len(),
                result.truncated
            )
        },
    )?;
    check(result.exit.code == 0 || result.exit.timed_out, || {
        format!("{:?}", result.exit)
    })?;
    let elapsed = started.elapsed();
    let after = ctx.client.sh(id, "echo ok").await?;
    ctx.client.destroy(id).await?;
    check(after.stdout == "ok\n", || {
        format!("{after:?} after {elapsed:?}")
    })
}

async fn other_sandboxes_files_are_invisible(ctx: &Ctx<'_>) -> Outcome {
    let victim = ctx
        .client
        .create(json!({"env": {"SECRET_VALUE": "victim-secret-42"}}))
        .await?;
    ctx.client
        .sh(&victim.id, "echo victim-file-secret > secret.txt")
        .await?;
    let attacker = ctx.client.create(json!({})).await?;
    let probe = format!(
        "grep -rs victim-file-secret / --exclude-dir=proc --exclude-dir=sys --exclude-dir=usr 2>/dev/null | head -3; \
         grep -s victim-secret-42 /proc/*/environ 2>/dev/null | head -3; \
         ls / ; cat /proc/1/cmdline | tr '\\0' ' '; echo; \
         find / -name '{}*' -not -path '/proc/*' 2>/dev/null | head -3; \
         env | grep -i -E 'token|SANDBOX_BACKEND' ; true",
        victim.id
    );
    let result = ctx.client.sh(&attacker.id, &probe).await?;
    ctx.client.destroy(&victim.id).await?;
    ctx.client.destroy(&attacker.id).await?;
    check(
        !result.stdout.contains("victim-file-secret")
            && !result.stdout.contains("victim-secret-42")
            && !result.stdout.contains(&victim.id)
            && !result.stdout.to_lowercase().contains("token"),
        || {
            format!(
                "another sandbox (or the backend) is visible: {}",
                result.stdout
            )
        },
    )
}

/// A provider that claims `sleep` keeps a sandbox's files through a sleep and a wake;
/// one that does not refuses the sleep with a 400 and leaves the sandbox running.
async fn sleep_keeps_the_files_or_is_refused(ctx: &Ctx<'_>) -> Outcome {
    let sandbox = ctx.client.create(json!({})).await?;
    let id = &sandbox.id;
    ctx.client.sh(id, "echo kept > slept.txt").await?;
    let slept = ctx
        .client
        .call("POST", &format!("/v1/sandboxes/{id}/sleep"), None)
        .await;
    if !ctx.capabilities.sleep {
        check(
            slept.status == 400 && slept.code() == "invalid_request",
            || format!("a sleep the provider does not claim: {}", slept.text()),
        )?;
        let still = ctx.client.get(id).await?;
        ctx.client.destroy(id).await?;
        return check(still.status == SandboxStatus::Ready, || {
            format!("a refused sleep changed the sandbox: {still:?}")
        });
    }
    let snapshot: nightshift_protocol::sandbox::SandboxSnapshot =
        serde_json::from_slice(&slept.expect(200, "sleep")?.body)
            .map_err(|error| error.to_string())?;
    check(
        &snapshot.sandbox_id == id && !snapshot.kind.is_empty(),
        || format!("{snapshot:?}"),
    )?;
    let asleep = ctx.client.get(id).await?;
    check(asleep.status == SandboxStatus::Stopped, || {
        format!("asleep: {asleep:?}")
    })?;
    ctx.client
        .call("POST", &format!("/v1/sandboxes/{id}/wake"), Some(json!({})))
        .await
        .expect(200, "wake")?;
    let read = ctx.client.sh(id, "cat slept.txt").await?;
    ctx.client.destroy(id).await?;
    check(read.stdout == "kept\n", || {
        format!("the file written before the sleep: {read:?}")
    })
}
