//! Authentication, error envelopes and the sandbox resource's lifecycle.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use nightshift_protocol::sandbox::{BackendHealth, Sandbox, SandboxList, SandboxStatus};
use serde_json::json;

use super::support::{Backend, TOKEN, error_code};

const SOME_ID: &str = "sbx_00000000000000000000000000000000";

fn protected_routes() -> Vec<(&'static str, String)> {
    vec![
        ("GET", "/v1/sandboxes".into()),
        ("POST", "/v1/sandboxes".into()),
        ("GET", format!("/v1/sandboxes/{SOME_ID}")),
        ("DELETE", format!("/v1/sandboxes/{SOME_ID}")),
        ("POST", format!("/v1/sandboxes/{SOME_ID}/stop")),
        ("POST", format!("/v1/sandboxes/{SOME_ID}/exec")),
        ("GET", format!("/v1/sandboxes/{SOME_ID}/files?path=a")),
        ("PUT", format!("/v1/sandboxes/{SOME_ID}/files?path=a")),
    ]
}

#[tokio::test]
async fn health_needs_no_token() {
    let backend = Backend::start().await;
    let response = backend
        .send(Request::get("/v1/health").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let health: BackendHealth = serde_json::from_slice(&bytes).unwrap();
    assert!(health.ok);
    assert_eq!(health.providers, ["local"]);
}

#[tokio::test]
async fn every_protected_route_refuses_a_missing_or_wrong_token_and_does_nothing() {
    let backend = Backend::start().await;
    for authorization in [
        None,
        Some("Bearer wrong-token".to_string()),
        Some(format!("Basic {TOKEN}")),
    ] {
        for (method, uri) in protected_routes() {
            let mut request = Request::builder().method(method).uri(&uri);
            if let Some(value) = &authorization {
                request = request.header("authorization", value);
            }
            let body = if method == "POST" || method == "PUT" {
                Body::from("{}")
            } else {
                Body::empty()
            };
            let response = backend.send(request.body(body).unwrap()).await;
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {uri} with {authorization:?}"
            );
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(error_code(&bytes), "unauthorized");
        }
    }
    // The unauthenticated `POST /v1/sandboxes` created nothing.
    assert!(backend.state.sandboxes().list().is_empty());
    let on_disk = std::fs::read_dir(backend.data_dir.join("sandboxes"))
        .unwrap()
        .count();
    assert_eq!(on_disk, 0);
}

#[tokio::test]
async fn malformed_bodies_and_unknown_things_get_stable_codes() {
    let backend = Backend::start().await;
    let request = Request::post("/v1/sandboxes")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::from("{not json"))
        .unwrap();
    let response = backend.send(request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        error_code(&response.into_body().collect().await.unwrap().to_bytes()),
        "invalid_json"
    );

    let (status, bytes) = backend
        .call("POST", "/v1/sandboxes", Some(json!({"bogus": true})))
        .await;
    assert_eq!(
        (status, error_code(&bytes).as_str()),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );

    let (status, bytes) = backend
        .call("POST", "/v1/sandboxes", Some(json!({"provider": "modal"})))
        .await;
    assert_eq!(
        (status, error_code(&bytes).as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    assert!(
        String::from_utf8_lossy(&bytes).contains("local"),
        "the message names the configured providers"
    );

    let (status, bytes) = backend
        .call("POST", "/v1/sandboxes", Some(json!({"env": {"A-B": "x"}})))
        .await;
    assert_eq!(
        (status, error_code(&bytes).as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );

    for (method, uri) in protected_routes()
        .into_iter()
        .filter(|(_, uri)| uri.contains(SOME_ID))
    {
        let body = (method == "POST").then(|| json!({"command": "true"}));
        let (status, bytes) = backend.call(method, &uri, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}");
        assert_eq!(error_code(&bytes), "sandbox_not_found", "{method} {uri}");
    }

    let (status, bytes) = backend.call("GET", "/v1/nothing-here", None).await;
    assert_eq!(
        (status, error_code(&bytes).as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
}

#[tokio::test]
async fn create_get_list_delete_and_destroyed_is_final() {
    let backend = Backend::start().await;
    let sandbox = backend
        .create(json!({"labels": {"session": "s1"}, "env": {"FOO": "bar"}}))
        .await;
    assert_eq!(sandbox.status, SandboxStatus::Ready);
    assert_eq!(sandbox.provider, "local");
    assert_eq!(sandbox.labels["session"], "s1");
    assert!(backend.workspace(&sandbox.id).is_dir());
    let record_path = backend
        .data_dir
        .join("sandboxes")
        .join(&sandbox.id)
        .join("sandbox.json");
    assert!(record_path.is_file());

    let (status, bytes) = backend
        .call("GET", &format!("/v1/sandboxes/{}", sandbox.id), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_slice::<Sandbox>(&bytes).unwrap(), sandbox);

    let other = backend.create(json!({})).await;
    let (_, bytes) = backend.call("GET", "/v1/sandboxes", None).await;
    let list: SandboxList = serde_json::from_slice(&bytes).unwrap();
    let ids: Vec<_> = list.sandboxes.iter().map(|s| s.id.clone()).collect();
    assert_eq!(ids, [sandbox.id.clone(), other.id.clone()]);

    let (status, bytes) = backend
        .call("DELETE", &format!("/v1/sandboxes/{}", sandbox.id), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Sandbox>(&bytes).unwrap().status,
        SandboxStatus::Destroyed
    );
    assert!(
        !backend
            .data_dir
            .join("sandboxes")
            .join(&sandbox.id)
            .exists()
    );

    // Destroyed is final: the id answers 404 everywhere, a repeated delete is harmless.
    let uris = [
        ("GET", format!("/v1/sandboxes/{}", sandbox.id), None),
        ("POST", format!("/v1/sandboxes/{}/stop", sandbox.id), None),
        (
            "POST",
            format!("/v1/sandboxes/{}/exec", sandbox.id),
            Some(json!({"command": "true"})),
        ),
        (
            "GET",
            format!("/v1/sandboxes/{}/files?path=a", sandbox.id),
            None,
        ),
    ];
    for (method, uri, body) in uris {
        let (status, bytes) = backend.call(method, &uri, body).await;
        assert_eq!(
            (status, error_code(&bytes).as_str()),
            (StatusCode::NOT_FOUND, "sandbox_not_found"),
            "{uri}"
        );
    }
    let (status, bytes) = backend
        .call("DELETE", &format!("/v1/sandboxes/{}", sandbox.id), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Sandbox>(&bytes).unwrap().status,
        SandboxStatus::Destroyed
    );
    let (_, bytes) = backend.call("GET", "/v1/sandboxes", None).await;
    let list: SandboxList = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(list.sandboxes.len(), 1);
}

#[tokio::test]
async fn a_stopped_sandbox_refuses_commands_but_keeps_its_files() {
    let backend = Backend::start().await;
    let sandbox = backend.create(json!({})).await;
    let files = format!("/v1/sandboxes/{}/files?path=kept.txt", sandbox.id);
    let put = Request::put(&files)
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::from("kept"))
        .unwrap();
    assert_eq!(backend.send(put).await.status(), StatusCode::NO_CONTENT);

    let (status, bytes) = backend
        .call("POST", &format!("/v1/sandboxes/{}/stop", sandbox.id), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Sandbox>(&bytes).unwrap().status,
        SandboxStatus::Stopped
    );
    let (status, _) = backend
        .call("POST", &format!("/v1/sandboxes/{}/stop", sandbox.id), None)
        .await;
    assert_eq!(status, StatusCode::OK, "a repeated stop is harmless");

    let (status, bytes) = backend
        .call(
            "POST",
            &format!("/v1/sandboxes/{}/exec", sandbox.id),
            Some(json!({"command": "true"})),
        )
        .await;
    assert_eq!(
        (status, error_code(&bytes).as_str()),
        (StatusCode::CONFLICT, "conflict")
    );
    let (status, bytes) = backend.call("GET", &files, None).await;
    assert_eq!((status, &bytes[..]), (StatusCode::OK, &b"kept"[..]));
}

#[tokio::test]
async fn concurrent_lifecycle_calls_do_not_race() {
    let backend = Backend::start().await;
    let sandbox = backend.create(json!({})).await;
    let stop = format!("/v1/sandboxes/{}/stop", sandbox.id);
    let delete = format!("/v1/sandboxes/{}", sandbox.id);
    let calls = [
        ("POST", &stop),
        ("DELETE", &delete),
        ("POST", &stop),
        ("DELETE", &delete),
        ("POST", &stop),
    ];
    let results = futures::future::join_all(
        calls
            .iter()
            .map(|(method, uri)| backend.call(method, uri, None)),
    )
    .await;
    for (status, bytes) in &results {
        // Each call either ran, found its work already done, or found the sandbox gone.
        let ok = *status == StatusCode::OK
            || (*status == StatusCode::NOT_FOUND && error_code(bytes) == "sandbox_not_found");
        assert!(ok, "{status}: {}", String::from_utf8_lossy(bytes));
    }
    assert!(results.iter().any(|(status, _)| *status == StatusCode::OK));
    let (status, _) = backend.call("GET", &delete, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        !backend
            .data_dir
            .join("sandboxes")
            .join(&sandbox.id)
            .exists()
    );
}

#[tokio::test]
async fn sandboxes_survive_a_backend_restart() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let config = super::support::config(&data_dir, std::path::Path::new("/nonexistent/runner"));
    let first = sandbox_backend::AppState::start(&config).await.unwrap();
    let created = first.sandboxes().create(Default::default()).await.unwrap();
    // Two backends never share a data directory.
    let second = sandbox_backend::AppState::start(&config).await;
    assert!(matches!(
        second,
        Err(sandbox_backend::StartError::DataDirInUse(_))
    ));
    first.shutdown().await;
    drop(first);

    let restarted = sandbox_backend::AppState::start(&config).await.unwrap();
    let again = restarted.sandboxes().get(&created.id).unwrap();
    assert_eq!(again, created);
}
