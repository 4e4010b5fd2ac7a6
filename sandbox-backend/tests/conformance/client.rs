//! A small HTTP client of the backend's API for the conformance cases.

use std::time::Duration;

use nightshift_protocol::sandbox::{
    ExecOutput, ExecResult, ProcessInfo, ProviderList, Sandbox, SandboxStatus,
};
use serde_json::Value;

#[derive(Clone)]
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// An answer: status and body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The error code of an error envelope.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn expect(self, status: u16, what: &str) -> Result<Answer, String> {
        if self.status == status {
            Ok(self)
        } else {
            Err(format!(
                "{what}: expected {status}, got {}: {}",
                self.status,
                self.text()
            ))
        }
    }
}

impl Client {
    pub fn new(base: String, token: String) -> Client {
        Client {
            base,
            token,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(90))
                .build()
                .unwrap(),
        }
    }

    pub fn with_token(&self, token: &str) -> Client {
        Client {
            token: token.to_string(),
            ..self.clone()
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        self.call_raw(method, path, body.map(|body| body.to_string().into_bytes()))
            .await
    }

    pub async fn call_raw(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response
                    .bytes()
                    .await
                    .map(|b| b.to_vec())
                    .unwrap_or_default();
                Answer { status, body }
            }
            Err(error) => Answer {
                status: 0,
                body: format!("request failed: {error}").into_bytes(),
            },
        }
    }

    pub async fn providers(&self) -> ProviderList {
        let answer = self.call("GET", "/v1/providers", None).await;
        assert_eq!(answer.status, 200, "GET /v1/providers: {}", answer.text());
        serde_json::from_slice(&answer.body).unwrap()
    }

    pub async fn create(&self, body: Value) -> Result<Sandbox, String> {
        let answer = self
            .call("POST", "/v1/sandboxes", Some(body))
            .await
            .expect(201, "create")?;
        serde_json::from_slice(&answer.body).map_err(|error| error.to_string())
    }

    pub async fn get(&self, id: &str) -> Result<Sandbox, String> {
        let answer = self
            .call("GET", &format!("/v1/sandboxes/{id}"), None)
            .await
            .expect(200, "get")?;
        serde_json::from_slice(&answer.body).map_err(|error| error.to_string())
    }

    /// Destroys every sandbox the backend still holds, whatever state it is in; what
    /// destroying could not end is named in the error.
    pub async fn destroy_all(&self) -> Result<(), String> {
        let answer = self
            .call("GET", "/v1/sandboxes", None)
            .await
            .expect(200, "list")?;
        let list: nightshift_protocol::sandbox::SandboxList =
            serde_json::from_slice(&answer.body).map_err(|error| error.to_string())?;
        let mut left = Vec::new();
        for sandbox in list.sandboxes {
            if sandbox.status == nightshift_protocol::sandbox::SandboxStatus::Destroyed {
                continue;
            }
            if let Err(error) = self.destroy(&sandbox.id).await {
                left.push(format!("{}: {error}", sandbox.id));
            }
        }
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("could not destroy {}", left.join(", ")))
        }
    }

    pub async fn destroy(&self, id: &str) -> Result<Sandbox, String> {
        let answer = self
            .call("DELETE", &format!("/v1/sandboxes/{id}"), None)
            .await
            .expect(200, "destroy")?;
        serde_json::from_slice(&answer.body).map_err(|error| error.to_string())
    }

    pub async fn stop(&self, id: &str) -> Result<Sandbox, String> {
        let answer = self
            .call("POST", &format!("/v1/sandboxes/{id}/stop"), None)
            .await
            .expect(200, "stop")?;
        serde_json::from_slice(&answer.body).map_err(|error| error.to_string())
    }

    /// A streamed exec: every NDJSON line.
    pub async fn exec(&self, id: &str, body: Value) -> Result<Vec<ExecOutput>, String> {
        let answer = self
            .call("POST", &format!("/v1/sandboxes/{id}/exec"), Some(body))
            .await
            .expect(200, "exec")?;
        answer
            .text()
            .lines()
            .map(|line| serde_json::from_str(line).map_err(|e| format!("{e}: {line}")))
            .collect()
    }

    /// `sh -c <script>` as one result.
    pub async fn sh(&self, id: &str, script: &str) -> Result<ExecResult, String> {
        self.exec_result(
            id,
            serde_json::json!({"command": "sh", "args": ["-c", script]}),
        )
        .await
    }

    pub async fn exec_result(&self, id: &str, body: Value) -> Result<ExecResult, String> {
        let answer = self
            .call(
                "POST",
                &format!("/v1/sandboxes/{id}/exec?stream=false"),
                Some(body),
            )
            .await
            .expect(200, "exec")?;
        serde_json::from_slice(&answer.body).map_err(|error| error.to_string())
    }

    pub async fn process(&self, id: &str, pid: &str) -> Result<ProcessInfo, String> {
        let answer = self
            .call("GET", &format!("/v1/sandboxes/{id}/processes/{pid}"), None)
            .await
            .expect(200, "get process")?;
        serde_json::from_slice(&answer.body).map_err(|error| error.to_string())
    }

    /// Polls the sandbox until `done` holds of it (or `limit` passes).
    pub async fn wait_for(
        &self,
        id: &str,
        limit: Duration,
        done: impl Fn(&Sandbox) -> bool,
    ) -> Result<Sandbox, String> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let sandbox = self.get(id).await?;
            if done(&sandbox) {
                return Ok(sandbox);
            }
            if std::time::Instant::now() > deadline {
                return Err(format!(
                    "sandbox {id} stayed {:?} for {limit:?}",
                    sandbox.status
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn wait_status(
        &self,
        id: &str,
        status: SandboxStatus,
        limit: Duration,
    ) -> Result<Sandbox, String> {
        self.wait_for(id, limit, |sandbox| sandbox.status == status)
            .await
    }
}

/// Standard output and the exit code of a streamed exec (the exit line must be last).
pub fn stdout_and_code(lines: &[ExecOutput]) -> Result<(String, i32), String> {
    let mut stdout = String::new();
    for line in lines {
        if let ExecOutput::Stdout(text) = line {
            stdout.push_str(text);
        }
    }
    match lines.last() {
        Some(ExecOutput::Exit(exit)) => Ok((stdout, exit.code)),
        _ => Err(format!("the exit line is not last: {lines:?}")),
    }
}

/// `Err` with `message` unless `condition` holds.
pub fn check(condition: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(message()) }
}
