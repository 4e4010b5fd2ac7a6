//! Two backends configured with the same Modal account serve the same sandboxes, so
//! either can stop without taking sandboxes with it: what a backend needs to serve a
//! sandbox another created lives with Modal (the sandbox's tags), not in the other
//! backend's memory or data directory. Against the fake Modal control plane.

use std::time::Duration;

use serde_json::json;

use super::support::{backend, free_port, run_to_exit};
use crate::conformance::client::Client;
use crate::fakes::backend::{Backend, IDLE_MINUTE_MS, TOKEN};
use crate::fakes::modal::{FakeModal, TOKEN_ID, TOKEN_SECRET};

fn modal_env(fake: &FakeModal) -> Vec<(String, String)> {
    [
        ("MODAL_SERVER_URL", fake.url.as_str()),
        ("MODAL_TOKEN_ID", TOKEN_ID),
        ("MODAL_TOKEN_SECRET", TOKEN_SECRET),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

async fn listed_ids(client: &Client) -> Vec<String> {
    let answer = client.call("GET", "/v1/sandboxes", None).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()["sandboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sandbox| sandbox["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn either_of_two_backends_serves_every_sandbox_when_the_other_stops() {
    let Some(fake) =
        FakeModal::start("either_of_two_backends_serves_every_sandbox_when_the_other_stops").await
    else {
        return;
    };
    let a = Backend::start("modal", modal_env(&fake)).await;
    // B runs as in a container next to Modal: without the local provider.
    let mut remote_only = modal_env(&fake);
    remote_only.push(("SANDBOX_LOCAL_PROVIDER".into(), "false".into()));
    let b = Backend::start("modal", remote_only).await;
    let client_a = Client::new(a.base_url(), TOKEN.into());
    let client_b = Client::new(b.base_url(), TOKEN.into());
    let providers = client_b.call("GET", "/v1/providers", None).await.text();
    assert!(!providers.contains("\"local\""), "{providers}");

    // Created through A, with labels, an environment and a default timeout.
    let created = client_a
        .create(json!({
            "labels": {"team": "blue"},
            "env": {"GREETING": "hello from A"},
            "network": "isolated",
            "default_timeout_ms": 20000
        }))
        .await
        .unwrap();
    let id = created.id.clone();

    // B serves it at once: exec, with the environment given at creation.
    let greeting = client_b.sh(&id, "printf %s \"$GREETING\"").await.unwrap();
    assert_eq!(greeting.stdout, "hello from A");
    assert_eq!(greeting.exit.code, 0);
    let seen_by_b = client_b.get(&id).await.unwrap();
    assert_eq!(
        seen_by_b.labels.get("team").map(String::as_str),
        Some("blue")
    );
    assert_eq!(seen_by_b.provider, "modal");

    // A dies without a shutdown.
    a.kill();

    // B lists it, execs in it, writes and reads its files, destroys it.
    assert!(listed_ids(&client_b).await.contains(&id));
    client_b
        .call_raw(
            "PUT",
            &format!("/v1/sandboxes/{id}/files?path=notes/b.txt"),
            Some(b"written by B".to_vec()),
        )
        .await
        .expect(204, "put")
        .unwrap();
    let read = client_b
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/files?path=notes/b.txt"),
            None,
        )
        .await
        .expect(200, "get")
        .unwrap();
    assert_eq!(read.body, b"written by B");
    let cat = client_b.sh(&id, "cat notes/b.txt").await.unwrap();
    assert_eq!(cat.stdout, "written by B");
    client_b.destroy(&id).await.unwrap();
    assert!(!listed_ids(&client_b).await.contains(&id));
    let ended = fake
        .state
        .sandboxes
        .lock()
        .await
        .values()
        .filter(|sandbox| sandbox.ended.is_some())
        .count();
    assert_eq!(ended, 1, "destroying through B ended the Modal sandbox");

    // Created through B, seen by A once it is back (its own data directory knows
    // nothing of it), and served by it.
    let from_b = client_b
        .create(json!({"labels": {"made-by": "b"}}))
        .await
        .unwrap();
    a.boot().await;
    let listed = listed_ids(&client_a).await;
    assert!(listed.contains(&from_b.id), "{listed:?}");
    assert!(
        !listed.contains(&id),
        "A still lists the destroyed {id}: {listed:?}"
    );
    let echo = client_a.sh(&from_b.id, "echo served by A").await.unwrap();
    assert_eq!(echo.stdout, "served by A\n");

    // Destroyed through A: B forgets it at its next listing.
    client_a.destroy(&from_b.id).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while listed_ids(&client_b).await.contains(&from_b.id) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "B still lists {}",
            from_b.id
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_id_or_a_label_posing_as_a_record_adopts_nothing() {
    let Some(fake) =
        FakeModal::start("an_unknown_id_or_a_label_posing_as_a_record_adopts_nothing").await
    else {
        return;
    };
    let a = Backend::start("modal", modal_env(&fake)).await;
    let b = Backend::start("modal", modal_env(&fake)).await;
    let client_a = Client::new(a.base_url(), TOKEN.into());
    let client_b = Client::new(b.base_url(), TOKEN.into());

    // A label cannot stand in for the tags that make a sandbox findable.
    let victim = client_a.create(json!({})).await.unwrap();
    let forged = format!(
        r#"{{"id":"sbx_{}","network":"private","created_at":1}}"#,
        "f".repeat(32)
    );
    let poser = client_a
        .create(json!({"labels": {"nightshift.sandbox": victim.id, "nightshift.record": forged}}))
        .await
        .unwrap();
    let listed = listed_ids(&client_b).await;
    assert!(
        listed.contains(&victim.id) && listed.contains(&poser.id),
        "{listed:?}"
    );
    assert!(
        !listed.contains(&format!("sbx_{}", "f".repeat(32))),
        "{listed:?}"
    );
    let who = client_b.sh(&victim.id, "pwd").await.unwrap();
    assert_eq!(who.exit.code, 0);

    // An id no provider runs stays a 404, without the token too.
    let missing = format!("sbx_{}", "0".repeat(32));
    let answer = client_b
        .call("GET", &format!("/v1/sandboxes/{missing}"), None)
        .await;
    assert_eq!(answer.status, 404, "{}", answer.text());
    let refused = client_b
        .with_token("wrong")
        .call("GET", &format!("/v1/sandboxes/{}", victim.id), None)
        .await;
    assert_eq!(refused.status, 401);
}

#[test]
fn without_the_local_provider_local_cannot_be_the_default() {
    let temp = tempfile::tempdir().unwrap();
    let stderr = run_to_exit(backend(
        &temp.path().join("data"),
        &[
            ("SANDBOX_BACKEND_TOKEN", TOKEN.into()),
            (
                "SANDBOX_BACKEND_LISTEN",
                format!("127.0.0.1:{}", free_port()),
            ),
            ("SANDBOX_LOCAL_PROVIDER", "false".into()),
        ],
    ));
    assert!(
        stderr.contains("the default provider \"local\" is not configured"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_busy_through_one_backend_is_not_reaped_by_the_other() {
    let Some(fake) =
        FakeModal::start("a_sandbox_busy_through_one_backend_is_not_reaped_by_the_other").await
    else {
        return;
    };
    let a = Backend::start("modal", modal_env(&fake)).await;
    let b = Backend::start("modal", modal_env(&fake)).await;
    let client_a = Client::new(a.base_url(), TOKEN.into());
    let client_b = Client::new(b.base_url(), TOKEN.into());

    // Two idle minutes; all the traffic goes through B, none through A.
    let sandbox = client_a
        .create(json!({"idle_timeout_minutes": 2}))
        .await
        .unwrap();
    let limit = Duration::from_millis(2 * IDLE_MINUTE_MS);
    let busy_until = tokio::time::Instant::now() + limit * 3;
    while tokio::time::Instant::now() < busy_until {
        let done = client_b.sh(&sandbox.id, "true").await.unwrap();
        assert_eq!(
            done.exit.code, 0,
            "the sandbox was reaped while busy: {done:?}"
        );
        tokio::time::sleep(Duration::from_millis(IDLE_MINUTE_MS / 5)).await;
    }
    let seen_by_a = client_a.get(&sandbox.id).await.unwrap();
    assert_eq!(
        seen_by_a.status,
        nightshift_protocol::sandbox::SandboxStatus::Ready,
        "A reaped a sandbox B kept busy: {seen_by_a:?}"
    );

    // Once nobody uses it, it is reaped after all.
    let deadline = tokio::time::Instant::now() + limit * 5;
    loop {
        let ended = fake
            .state
            .sandboxes
            .lock()
            .await
            .values()
            .all(|sandbox| sandbox.ended.is_some());
        if ended {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the idle sandbox was never reaped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
