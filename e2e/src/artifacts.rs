//! A session's artifacts as its runner sends them: the smallest PNG the Worker's
//! check accepts, and the runner's upload (`POST /api/sessions/{id}/artifacts` with
//! its runner token).

use crate::stack::Stack;

/// A minimal PNG header of `width` x `height` (what the Worker's check reads).
pub fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend(13u32.to_be_bytes());
    bytes.extend(b"IHDR");
    bytes.extend(width.to_be_bytes());
    bytes.extend(height.to_be_bytes());
    bytes.extend([8, 6, 0, 0, 0, 0, 0, 0, 0]);
    bytes
}

/// Uploads `body` as the runner holding `token` would; answers the status and the
/// JSON body (`Null` when there is none).
pub async fn upload(
    stack: &Stack,
    session_id: &str,
    token: &str,
    content_type: &str,
    body: Vec<u8>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/api/sessions/{session_id}/artifacts",
            stack.worker_url()
        ))
        .bearer_auth(token)
        .header("content-type", content_type)
        .timeout(crate::WAIT)
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    Ok((status, body))
}
