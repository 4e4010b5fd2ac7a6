//! The local provider's sandboxes are processes of one host, so a second backend on
//! the same data directory would manage them twice: it refuses to start (the first
//! holds `backend.lock`) and leaves the first one's sandboxes alone.

use serde_json::json;

use super::support::{backend, free_port, run_to_exit};
use crate::conformance::client::Client;
use crate::fakes::backend::{Backend, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_local_backend_on_the_same_data_directory_refuses_to_start() {
    let first = Backend::start("local", vec![("SANDBOX_WARM_POOL".into(), "0".into())]).await;
    let client = Client::new(first.base_url(), TOKEN.into());
    let sandbox = client.create(json!({})).await.unwrap();

    let stderr = run_to_exit(backend(
        first.data_dir(),
        &[
            ("SANDBOX_BACKEND_TOKEN", TOKEN.into()),
            (
                "SANDBOX_BACKEND_LISTEN",
                format!("127.0.0.1:{}", free_port()),
            ),
        ],
    ));
    assert!(stderr.contains("backend.lock"), "{stderr}");
    assert!(stderr.contains("NIGHTSHIFT_DATA_DIR"), "{stderr}");

    // The first backend and its sandbox are untouched.
    let echo = client.sh(&sandbox.id, "echo still here").await.unwrap();
    assert_eq!(echo.stdout, "still here\n");
    client.destroy(&sandbox.id).await.unwrap();
}
