//! The files API: confined to the workspace whatever the path or the symlinks say.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;

use super::support::{Backend, TOKEN, error_code, stdout_and_code};

async fn put(
    backend: &Backend,
    id: &str,
    path: &str,
    contents: &'static [u8],
) -> (StatusCode, axum::body::Bytes) {
    let request = Request::put(format!("/v1/sandboxes/{id}/files?path={path}"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::from(contents))
        .unwrap();
    let response = backend.send(request).await;
    let status = response.status();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

#[tokio::test]
async fn files_round_trip_and_are_visible_to_commands() {
    let backend = Backend::start().await;
    let sandbox = backend.create(json!({})).await;
    let (status, _) = put(&backend, &sandbox.id, "deep/dir/hello.txt", b"hello\xff").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, bytes) = backend
        .call(
            "GET",
            &format!("/v1/sandboxes/{}/files?path=deep/dir/hello.txt", sandbox.id),
            None,
        )
        .await;
    assert_eq!((status, &bytes[..]), (StatusCode::OK, &b"hello\xff"[..]));
    let lines = backend
        .exec(
            &sandbox.id,
            json!({"command": "head", "args": ["-c", "5", "deep/dir/hello.txt"]}),
        )
        .await;
    assert_eq!(stdout_and_code(&lines), ("hello".to_string(), 0));

    let (status, bytes) = backend
        .call(
            "GET",
            &format!("/v1/sandboxes/{}/files?path=missing.txt", sandbox.id),
            None,
        )
        .await;
    assert_eq!(
        (status, error_code(&bytes).as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, bytes) = backend
        .call("GET", &format!("/v1/sandboxes/{}/files", sandbox.id), None)
        .await;
    assert_eq!(
        (status, error_code(&bytes).as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
}

#[tokio::test]
async fn escapes_are_refused() {
    let backend = Backend::start().await;
    let sandbox = backend.create(json!({})).await;
    // Symlinks planted from inside the sandbox, pointing at the host's root and /etc
    // (which is what they resolve to outside the sandbox).
    let lines = backend
        .exec(&sandbox.id, json!({"command": "sh", "args": ["-c", "ln -s / root && ln -s /etc/passwd passwd && ln -s ../.. up"]}))
        .await;
    assert_eq!(stdout_and_code(&lines).1, 0);
    let outside = backend.data_dir.join("outside-canary");
    for path in [
        "../sandbox.json",
        "..%2Fsandbox.json",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "root/etc/passwd",
        "passwd",
        "up/sandbox.json",
    ] {
        let uri = format!("/v1/sandboxes/{}/files?path={path}", sandbox.id);
        let (status, bytes) = backend.call("GET", &uri, None).await;
        assert_eq!(
            (status, error_code(&bytes).as_str()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "GET {path}"
        );
        let (status, bytes) = put(&backend, &sandbox.id, path, b"pwned").await;
        assert_eq!(
            (status, error_code(&bytes).as_str()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "PUT {path}"
        );
    }
    let (status, _) = put(
        &backend,
        &sandbox.id,
        &format!("root{}", outside.display()),
        b"pwned",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!outside.exists());
    let record = std::fs::read_to_string(
        backend
            .data_dir
            .join("sandboxes")
            .join(&sandbox.id)
            .join("sandbox.json"),
    )
    .unwrap();
    assert!(!record.contains("pwned"));
}
