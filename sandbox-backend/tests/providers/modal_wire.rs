//! The Modal provider's wire behaviour against the fake speaking Modal's official
//! `api.proto` (`fakes/modal/official.rs`): the checks refuse what the definitions
//! refuse (a wrong field number, wire type or method path, shown with deliberately
//! wrong messages sent through the provider's own client), every call carries the
//! metadata the official clients send (the auth token included), creation keeps asking for the task id, and a
//! command silent for longer than an output poll's whole deadline keeps its output.

use std::sync::atomic::Ordering;
use std::time::Duration;

use sandbox_backend::providers::ProviderError;
use sandbox_backend::providers::modal::client::{
    CLIENT_TYPE, CLIENT_VERSION, LIBMODAL_VERSION, ModalClient,
};
use sandbox_backend::providers::modal::proto;

use crate::conformance::Client;
use crate::fakes::backend::{Backend, TOKEN};
use crate::fakes::modal::{FakeModal, TOKEN_ID, TOKEN_SECRET};

fn client(fake: &FakeModal) -> ModalClient {
    ModalClient::new(&fake.url, TOKEN_ID, TOKEN_SECRET).unwrap()
}

fn env(fake: &FakeModal, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    [
        ("MODAL_SERVER_URL", fake.url.as_str()),
        ("MODAL_TOKEN_ID", TOKEN_ID),
        ("MODAL_TOKEN_SECRET", TOKEN_SECRET),
    ]
    .iter()
    .chain(extra)
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect()
}

/// `ContainerExecRequest` with `workdir` on field 11 (api.proto: 9; 11 is no field).
#[derive(Clone, PartialEq, prost::Message)]
struct ExecWithWrongTag {
    #[prost(string, tag = "1")]
    task_id: String,
    #[prost(string, repeated, tag = "2")]
    command: Vec<String>,
    #[prost(string, optional, tag = "11")]
    workdir: Option<String>,
}

/// `SandboxGetTaskIdRequest` with `timeout` as a double (api.proto: float).
#[derive(Clone, PartialEq, prost::Message)]
struct TaskIdWithWrongType {
    #[prost(string, tag = "1")]
    sandbox_id: String,
    #[prost(double, tag = "2")]
    timeout: f64,
}

fn refusal<T: std::fmt::Debug>(result: Result<T, ProviderError>) -> String {
    match result {
        Ok(answer) => panic!("the fake accepted a message api.proto refuses: {answer:?}"),
        Err(error) => error.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_that_do_not_match_the_official_definitions_are_refused() {
    let Some(fake) =
        FakeModal::start("messages_that_do_not_match_the_official_definitions_are_refused").await
    else {
        return;
    };
    let client = client(&fake);
    let wrong_tag = ExecWithWrongTag {
        task_id: "ta-1".into(),
        command: vec!["true".into()],
        workdir: Some("/workspace".into()),
    };
    let why = refusal(
        client
            .unary::<_, proto::ContainerExecResponse>(
                "ContainerExec",
                wrong_tag,
                Duration::from_secs(5),
            )
            .await,
    );
    assert!(
        why.contains("ContainerExecRequest has no field number 11"),
        "{why}"
    );

    let wrong_type = TaskIdWithWrongType {
        sandbox_id: "sb-1".into(),
        timeout: 1.0,
    };
    let why = refusal(
        client
            .unary::<_, proto::SandboxGetTaskIdResponse>(
                "SandboxGetTaskId",
                wrong_type,
                Duration::from_secs(5),
            )
            .await,
    );
    assert!(
        why.contains("does not decode as modal.client.SandboxGetTaskIdRequest"),
        "{why}"
    );

    let why = refusal(
        client
            .unary::<_, proto::Empty>("ContainerExecute", proto::Empty {}, Duration::from_secs(5))
            .await,
    );
    assert!(why.contains("api.proto has no method"), "{why}");

    // The provider's own message for the same call passes the same checks.
    let right = proto::SandboxGetTaskIdRequest {
        sandbox_id: "sb-none".into(),
        timeout: Some(1.0),
        wait_until_ready: true,
    };
    let why = refusal(
        client
            .unary::<_, proto::SandboxGetTaskIdResponse>(
                "SandboxGetTaskId",
                right,
                Duration::from_secs(5),
            )
            .await,
    );
    assert!(why.contains("sandbox not found"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_carries_libmodal_go_metadata_and_creation_waits_for_the_task() {
    let Some(fake) =
        FakeModal::start("every_call_carries_libmodal_go_metadata_and_creation_waits_for_the_task")
            .await
    else {
        return;
    };
    // Modal's long poll ends three times before the sandbox is scheduled.
    fake.state.task_id_delays.store(3, Ordering::SeqCst);
    let backend = Backend::start("modal", env(&fake, &[])).await;
    let client = Client::new(backend.base_url(), TOKEN.into());
    let sandbox = client
        .create(serde_json::json!({"env": {"GREETING": "hello"}}))
        .await
        .unwrap();
    let result = client.sh(&sandbox.id, "echo $GREETING").await.unwrap();
    assert_eq!(result.stdout, "hello\n");

    let calls = fake.state.calls.lock().await.clone();
    let task_calls = calls
        .iter()
        .filter(|call| *call == "SandboxGetTaskId")
        .count();
    assert!(
        task_calls >= 4,
        "SandboxGetTaskId was called {task_calls} times: {calls:?}"
    );
    assert!(
        calls.iter().any(|call| call == "SecretGetOrCreate"),
        "{calls:?}"
    );
    for (call, headers) in calls.iter().zip(fake.state.headers.lock().await.iter()) {
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        assert_eq!(header("x-modal-client-type"), Some(CLIENT_TYPE));
        assert_eq!(header("x-modal-client-version"), Some(CLIENT_VERSION));
        assert_eq!(header("x-modal-libmodal-version"), Some(LIBMODAL_VERSION));
        // The short-lived token on every call but the one that gives it (the fake
        // refuses a call without one it issued).
        assert_eq!(
            header("x-modal-auth-token").is_some(),
            call != "AuthTokenGet",
            "{call}"
        );
    }
    // One token serves every call until it nears its expiry.
    let fetched = calls.iter().filter(|call| *call == "AuthTokenGet").count();
    assert_eq!(fetched, 1, "{calls:?}");
    assert_eq!(CLIENT_TYPE, "9", "CLIENT_TYPE_LIBMODAL_GO in api.proto");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_silent_for_longer_than_an_output_poll_keeps_its_output() {
    let Some(fake) =
        FakeModal::start("a_command_silent_for_longer_than_an_output_poll_keeps_its_output").await
    else {
        return;
    };
    // Polls of 2 s: one output call may take 12 s (poll and margin) before it is
    // given up; the command is silent for 14 s, past that whole deadline.
    let backend = Backend::start("modal", env(&fake, &[("MODAL_POLL_SECS", "2")])).await;
    let client = Client::new(backend.base_url(), TOKEN.into());
    let sandbox = client.create(serde_json::json!({})).await.unwrap();
    let started = std::time::Instant::now();
    let result = client
        .exec_result(
            &sandbox.id,
            serde_json::json!({"command": "sh", "args": ["-c", "sleep 14; echo done"], "timeout_ms": 60000}),
        )
        .await
        .unwrap();
    assert_eq!(result.stdout, "done\n", "{result:?}");
    assert_eq!(result.exit.code, 0, "{result:?}");
    assert!(started.elapsed() >= Duration::from_secs(14));
    let polls = fake
        .state
        .calls
        .lock()
        .await
        .iter()
        .filter(|call| *call == "ContainerExecGetOutput")
        .count();
    assert!(polls >= 4, "the output was polled {polls} times");
}
