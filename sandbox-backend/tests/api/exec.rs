//! Commands under real bubblewrap: streaming, timeouts, isolation, and killing.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use nightshift_protocol::sandbox::{ExecOutput, ExecResult};
use serde_json::json;

use super::support::{Backend, TOKEN, eventually, process_running_with, stdout_and_code};

fn exec_request(id: &str, query: &str, body: serde_json::Value) -> Request<Body> {
    Request::post(format!("/v1/sandboxes/{id}/exec{query}"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn output_streams_in_order_while_the_command_runs() {
    let backend = Backend::start().await;
    let sandbox = backend.create(json!({})).await;
    let script =
        "for i in 1 2 3 4 5; do echo line-$i; done; sleep 1; echo late; echo oops >&2; exit 3";
    let started = Instant::now();
    let response = backend
        .send(exec_request(
            &sandbox.id,
            "",
            json!({"command": "sh", "args": ["-c", script]}),
        ))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let mut body = response.into_body();
    let mut text = String::new();
    let mut first_output_at = None;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            first_output_at.get_or_insert(started.elapsed());
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
    let total = started.elapsed();
    let lines: Vec<ExecOutput> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let (stdout, code) = stdout_and_code(&lines);
    assert_eq!(stdout, "line-1\nline-2\nline-3\nline-4\nline-5\nlate\n");
    assert_eq!(code, 3);
    assert!(lines.contains(&ExecOutput::Stderr("oops\n".into())));
    // The first lines arrived before the command finished sleeping.
    assert!(
        first_output_at.unwrap() + Duration::from_millis(700) < total,
        "{first_output_at:?} vs {total:?}"
    );
}

#[tokio::test]
async fn non_streamed_results_come_as_one_object() {
    let backend = Backend::start().await;
    let sandbox = backend.create(json!({"env": {"GREETING": "hello"}})).await;
    let body = json!({
        "command": "sh",
        "args": ["-c", "cat; echo \" $GREETING $EXTRA $HOME $(pwd)\""],
        "env": {"EXTRA": "there"},
        "cwd": "sub",
        "stdin": "from stdin",
    });
    std::fs::create_dir(backend.workspace(&sandbox.id).join("sub")).unwrap();
    let response = backend
        .send(exec_request(&sandbox.id, "?stream=false", body))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let result: ExecResult =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(
        result.stdout,
        "from stdin hello there /home/sandbox /workspace/sub\n"
    );
    assert_eq!(result.exit.code, 0);
    assert!(!result.exit.timed_out && !result.exit.killed);
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group() {
    let backend = Backend::start().await;
    let sandbox = backend.create(json!({})).await;
    let lines = backend
        .exec(&sandbox.id, json!({"command": "sh", "args": ["-c", "sleep 987651 & sleep 987652"], "timeout_ms": 500}))
        .await;
    let Some(ExecOutput::Exit(exit)) = lines.last() else {
        panic!("no exit line: {lines:?}")
    };
    assert!(exit.timed_out && exit.killed, "{exit:?}");
    assert_ne!(exit.code, 0);
    assert!(
        eventually(Duration::from_secs(3), || {
            !process_running_with("sleep 987651") && !process_running_with("sleep 987652")
        })
        .await,
        "a sleep outlived the timeout"
    );
}

#[tokio::test]
async fn commands_cannot_see_the_host_or_other_sandboxes() {
    let backend = Backend::start().await;
    let sandbox = backend.create(json!({})).await;
    let other = backend.create(json!({})).await;
    std::fs::write(backend.workspace(&other.id).join("other-secret"), "x").unwrap();
    std::fs::write(backend.workspace(&sandbox.id).join("mine"), "x").unwrap();
    let hidden = [
        "/work".to_string(),
        std::env::current_dir().unwrap().display().to_string(),
        backend.data_dir.display().to_string(),
        backend.workspace(&other.id).display().to_string(),
        backend.runner_dir(&sandbox.id).display().to_string(),
        "/root".to_string(),
    ];
    for path in &hidden {
        let lines = backend
            .exec(
                &sandbox.id,
                json!({"command": "test", "args": ["-e", path]}),
            )
            .await;
        assert_eq!(
            stdout_and_code(&lines).1,
            1,
            "{path} is visible inside the sandbox"
        );
    }
    // The command's own workspace is there, and writes land in it.
    let lines = backend
        .exec(
            &sandbox.id,
            json!({"command": "sh", "args": ["-c", "ls /workspace && touch made"]}),
        )
        .await;
    assert_eq!(stdout_and_code(&lines), ("mine\n".to_string(), 0));
    assert!(backend.workspace(&sandbox.id).join("made").is_file());
    // The host's /usr is read-only.
    let lines = backend
        .exec(
            &sandbox.id,
            json!({"command": "touch", "args": ["/usr/nightshift-probe"]}),
        )
        .await;
    assert_ne!(stdout_and_code(&lines).1, 0);
    assert!(!std::path::Path::new("/usr/nightshift-probe").exists());
}

#[tokio::test]
async fn network_none_leaves_only_loopback() {
    let backend = Backend::start().await;
    let sandbox = backend.create(json!({"network": "none"})).await;
    let lines = backend
        .exec(&sandbox.id, json!({"command": "sh", "args": ["-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"]}))
        .await;
    assert_eq!(stdout_and_code(&lines), ("lo\n".to_string(), 0));
}

#[tokio::test]
async fn stopping_the_sandbox_kills_running_commands() {
    let backend = Backend::start().await;
    let sandbox = backend.create(json!({})).await;
    let response = backend
        .send(exec_request(
            &sandbox.id,
            "",
            json!({"command": "sleep", "args": ["987653"]}),
        ))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        eventually(Duration::from_secs(5), || process_running_with(
            "sleep 987653"
        ))
        .await
    );

    let (status, _) = backend
        .call("POST", &format!("/v1/sandboxes/{}/stop", sandbox.id), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !process_running_with("sleep 987653"),
        "stop returned before the command died"
    );
    let text = response.into_body().collect().await.unwrap().to_bytes();
    let last = String::from_utf8_lossy(&text)
        .lines()
        .last()
        .map(str::to_string)
        .unwrap();
    let ExecOutput::Exit(exit) = serde_json::from_str(&last).unwrap() else {
        panic!("{last}")
    };
    assert!(exit.killed && !exit.timed_out);
}

#[tokio::test]
async fn a_client_that_goes_away_takes_its_command_with_it() {
    let backend = Backend::start().await;
    let sandbox = backend.create(json!({})).await;
    let response = backend
        .send(exec_request(
            &sandbox.id,
            "",
            json!({"command": "sleep", "args": ["987654"]}),
        ))
        .await;
    assert!(
        eventually(Duration::from_secs(5), || process_running_with(
            "sleep 987654"
        ))
        .await
    );
    drop(response);
    assert!(
        eventually(Duration::from_secs(5), || !process_running_with(
            "sleep 987654"
        ))
        .await,
        "the command outlived its client"
    );
}

#[tokio::test]
async fn bad_exec_requests_are_refused_before_anything_runs() {
    let backend = Backend::start().await;
    let sandbox = backend.create(json!({})).await;
    let uri = format!("/v1/sandboxes/{}/exec", sandbox.id);
    for body in [
        json!({}),
        json!({"command": ""}),
        json!({"command": "true", "timeout_ms": 0}),
        json!({"command": "true", "x": 1}),
    ] {
        let (status, bytes) = backend.call("POST", &uri, Some(body.clone())).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    // A command that does not exist is a result, not an HTTP error.
    let lines = backend
        .exec(&sandbox.id, json!({"command": "no-such-command-here"}))
        .await;
    assert_ne!(stdout_and_code(&lines).1, 0);
}
