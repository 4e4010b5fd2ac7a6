//! A small client for the Worker's `/api`, as a browser or script would use it.

use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use nightshift_protocol::api::{
    Message, MessageList, ModelInfo, PostMessageResponse, QueueMode, Session, SessionList,
};
use nightshift_protocol::events::{EventBody, SessionEvent, SessionListEvent};
use serde_json::Value;

use crate::WAIT;

#[derive(Clone)]
pub struct Api {
    pub base: String,
    http: reqwest::Client,
    auth: Credentials,
}

/// What an [`Api`] signs its requests with.
#[derive(Clone, Debug, Default)]
pub enum Credentials {
    /// Nothing: an anonymous visitor.
    #[default]
    None,
    /// A signed-in browser's `ns_session` cookie, and the CSRF token `/api/me` gave
    /// for it (sent as `X-CSRF-Token` on every request; harmless on reads).
    Cookie { session: String, csrf: String },
    /// A personal API token (`Authorization: Bearer`).
    Bearer(String),
}

/// An HTTP answer, kept whole for assertions on status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The stable error code of an error answer.
    pub fn error_code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }
}

/// How long a pooled connection to the stack may sit idle before it is dropped rather
/// than reused. `wrangler dev` closes a keep-alive connection after 5 s idle, and a
/// request written on one as it closes fails ("connection closed before message
/// completed"); a connection idle for less than this is never near that close.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// A client builder for requests to the stack, with [`POOL_IDLE_TIMEOUT`].
pub fn http_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().pool_idle_timeout(POOL_IDLE_TIMEOUT)
}

impl Api {
    pub fn new(base: &str) -> Api {
        let http = http_builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("a reqwest client with default TLS settings always builds");
        Api {
            base: base.trim_end_matches('/').to_string(),
            http,
            auth: Credentials::None,
        }
    }

    /// The same client, signing its requests with `auth`.
    pub fn with_credentials(&self, auth: Credentials) -> Api {
        Api {
            auth,
            ..self.clone()
        }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.auth
    }

    /// The `ns_session` cookie value, when signed in with one.
    pub fn session_cookie(&self) -> Option<&str> {
        match &self.auth {
            Credentials::Cookie { session, .. } => Some(session),
            _ => None,
        }
    }

    /// Adds this client's credentials to a request.
    pub fn sign(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Credentials::None => request,
            Credentials::Cookie { session, csrf } => request
                .header("cookie", format!("ns_session={session}"))
                .header("x-csrf-token", csrf),
            Credentials::Bearer(token) => request.bearer_auth(token),
        }
    }

    /// Signs in through the development sign-in (`POST /auth/dev/login`, which the
    /// test stack enables) and answers a client holding the session cookie and its
    /// CSRF token. `invite` is an invite token, for teams that are invite-only.
    pub async fn dev_sign_in(
        &self,
        email: &str,
        name: &str,
        invite: Option<&str>,
    ) -> anyhow::Result<Api> {
        let body = serde_json::json!({ "email": email, "name": name, "invite": invite });
        let response = self
            .http
            .post(self.url("/auth/dev/login"))
            .json(&body)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .context("POST /auth/dev/login")?;
        let status = response.status();
        let session = session_cookie_of(response.headers());
        if !status.is_success() {
            bail!(
                "dev sign-in of {email} answered {status}: {}",
                response.text().await.unwrap_or_default()
            );
        }
        let session = session.context("dev sign-in set no ns_session cookie")?;
        let signed_in = self.with_credentials(Credentials::Cookie {
            session: session.clone(),
            csrf: String::new(),
        });
        let me = signed_in
            .expect::<Value>(reqwest::Method::GET, "/api/me", None, 200)
            .await?;
        let csrf = me["csrf_token"]
            .as_str()
            .context("/api/me has no csrf_token")?
            .to_string();
        Ok(self.with_credentials(Credentials::Cookie { session, csrf }))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Any request with a raw body; never fails on a non-2xx status.
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<Answer> {
        let mut request = self.sign(
            self.http
                .request(method, self.url(path))
                .timeout(Duration::from_secs(30)),
        );
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("request to {path}"))?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer { status, body })
    }

    pub async fn expect<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
        status: u16,
    ) -> anyhow::Result<T> {
        let answer = self.raw(method, path, body).await?;
        if answer.status != status {
            bail!(
                "{path}: expected {status}, got {} {}",
                answer.status,
                answer.body
            );
        }
        serde_json::from_value(answer.body).with_context(|| format!("decoding {path}"))
    }

    /// Shares session `session_id` with `user_id` as `role` (`PUT .../shares/{user_id}`).
    pub async fn share(&self, session_id: &str, user_id: &str, role: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({ "role": role }).to_string();
        self.expect::<Value>(
            reqwest::Method::PUT,
            &format!("/api/sessions/{session_id}/shares/{user_id}"),
            Some(&body),
            200,
        )
        .await?;
        Ok(())
    }

    /// The signed-in user's id, from `GET /api/me`.
    pub async fn user_id(&self) -> anyhow::Result<String> {
        let me: Value = self
            .expect(reqwest::Method::GET, "/api/me", None, 200)
            .await?;
        me["user"]["id"]
            .as_str()
            .map(str::to_owned)
            .context("/api/me names no user id")
    }

    pub async fn create_session(&self) -> anyhow::Result<Session> {
        self.expect(reqwest::Method::POST, "/api/sessions", Some("{}"), 201)
            .await
    }

    pub async fn session(&self, id: &str) -> anyhow::Result<Session> {
        self.expect(
            reqwest::Method::GET,
            &format!("/api/sessions/{id}"),
            None,
            200,
        )
        .await
    }

    pub async fn sessions(&self) -> anyhow::Result<Vec<Session>> {
        let list: SessionList = self
            .expect(reqwest::Method::GET, "/api/sessions", None, 200)
            .await?;
        Ok(list.sessions)
    }

    pub async fn send(&self, id: &str, content: &str) -> anyhow::Result<PostMessageResponse> {
        let body = serde_json::json!({ "content": content }).to_string();
        self.expect(
            reqwest::Method::POST,
            &format!("/api/sessions/{id}/messages"),
            Some(&body),
            202,
        )
        .await
    }

    /// `POST /api/sessions` with a JSON body (agent, model, title, ...).
    pub async fn create_session_with(&self, body: Value) -> anyhow::Result<Session> {
        self.expect(
            reqwest::Method::POST,
            "/api/sessions",
            Some(&body.to_string()),
            201,
        )
        .await
    }

    /// `PATCH /api/sessions/{id}`.
    pub async fn update_session(&self, id: &str, body: Value) -> anyhow::Result<Session> {
        self.expect(
            reqwest::Method::PATCH,
            &format!("/api/sessions/{id}"),
            Some(&body.to_string()),
            200,
        )
        .await
    }

    /// `GET /api/models`.
    pub async fn models(&self) -> anyhow::Result<Vec<ModelInfo>> {
        self.expect(reqwest::Method::GET, "/api/models", None, 200)
            .await
    }

    /// `POST /api/sessions/{id}/messages` in a queue mode.
    pub async fn send_mode(
        &self,
        id: &str,
        content: &str,
        mode: QueueMode,
    ) -> anyhow::Result<PostMessageResponse> {
        let body = serde_json::json!({ "content": content, "mode": mode }).to_string();
        self.expect(
            reqwest::Method::POST,
            &format!("/api/sessions/{id}/messages"),
            Some(&body),
            202,
        )
        .await
    }

    /// `PATCH /api/sessions/{id}/messages/{message_id}`, answered as is.
    pub async fn edit_message(
        &self,
        id: &str,
        message_id: &str,
        content: &str,
    ) -> anyhow::Result<Answer> {
        let body = serde_json::json!({ "content": content }).to_string();
        self.raw(
            reqwest::Method::PATCH,
            &format!("/api/sessions/{id}/messages/{message_id}"),
            Some(&body),
        )
        .await
    }

    /// `POST /api/sessions/{id}/questions/{question_id}/answer`, answered as is.
    pub async fn answer_question(
        &self,
        id: &str,
        question_id: &str,
        answer: &str,
    ) -> anyhow::Result<Answer> {
        let body = serde_json::json!({ "answer": answer }).to_string();
        self.raw(
            reqwest::Method::POST,
            &format!("/api/sessions/{id}/questions/{question_id}/answer"),
            Some(&body),
        )
        .await
    }

    pub async fn messages(&self, id: &str) -> anyhow::Result<Vec<Message>> {
        let list: MessageList = self
            .expect(
                reqwest::Method::GET,
                &format!("/api/sessions/{id}/messages"),
                None,
                200,
            )
            .await?;
        Ok(list.messages)
    }

    pub async fn abort(&self, id: &str) -> anyhow::Result<Value> {
        self.expect(
            reqwest::Method::POST,
            &format!("/api/sessions/{id}/abort"),
            Some("{}"),
            200,
        )
        .await
    }

    /// Waits until the session's status is `status`.
    pub async fn wait_status(&self, id: &str, status: &str) -> anyhow::Result<Session> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let session = self.session(id).await?;
            if session.status.as_str() == status {
                return Ok(session);
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "session {id} never reached {status}; it is {:?}",
                    session.status
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every message of the session has reached a final state.
    pub async fn wait_settled(&self, id: &str) -> anyhow::Result<Vec<Message>> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let messages = self.messages(id).await?;
            if !messages.is_empty() && messages.iter().all(|m| m.state.is_final()) {
                return Ok(messages);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("messages of {id} never settled: {messages:#?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens the session's event stream, replaying after `last_event_id`.
    pub async fn events(&self, id: &str, last_event_id: Option<u64>) -> anyhow::Result<SseStream> {
        let mut request = self.sign(
            self.http
                .get(self.url(&format!("/api/sessions/{id}/events"))),
        );
        if let Some(last) = last_event_id {
            request = request.header("last-event-id", last.to_string());
        }
        SseStream::open(request).await
    }

    /// Opens the sessions-list stream.
    pub async fn list_events(&self) -> anyhow::Result<SseStream> {
        SseStream::open(self.sign(self.http.get(self.url("/api/events")))).await
    }

    /// Every stored event of a session, read through a fresh SSE connection until
    /// `done` says the history is complete.
    pub async fn history_until(
        &self,
        id: &str,
        done: impl Fn(&[SessionEvent]) -> bool,
    ) -> anyhow::Result<Vec<SessionEvent>> {
        let mut stream = self.events(id, None).await?;
        let mut events = Vec::new();
        while !done(&events) {
            events.push(stream.next_event().await?);
        }
        Ok(events)
    }
}

/// The value of the `ns_session` cookie a response sets, if any.
pub fn session_cookie_of(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|cookie| {
            let first = cookie.split(';').next()?.trim();
            let value = first.strip_prefix("ns_session=")?;
            (!value.is_empty()).then(|| value.to_string())
        })
}

/// One SSE message as received.
#[derive(Debug, Clone)]
pub struct SseMessage {
    pub id: Option<String>,
    pub data: String,
}

/// A text/event-stream response, parsed message by message.
pub struct SseStream {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
    /// Body bytes received so far.
    bytes_read: u64,
}

impl SseStream {
    async fn open(request: reqwest::RequestBuilder) -> anyhow::Result<SseStream> {
        let response = request.header("accept", "text/event-stream").send().await?;
        let status = response.status();
        if !status.is_success() {
            bail!(
                "SSE open failed: {status} {}",
                response.text().await.unwrap_or_default()
            );
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !content_type.starts_with("text/event-stream") {
            bail!("SSE answered with content-type {content_type:?}");
        }
        Ok(SseStream {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
            bytes_read: 0,
        })
    }

    /// How many bytes of the stream's body have arrived (whole chunks, so possibly
    /// some beyond the last message read).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next message with data (comments and keep-alives are skipped).
    pub async fn next_message(&mut self) -> anyhow::Result<SseMessage> {
        tokio::time::timeout(WAIT, self.next_message_inner())
            .await
            .context("no SSE message within the wait")?
    }

    async fn next_message_inner(&mut self) -> anyhow::Result<SseMessage> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut id = None;
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(rest) = line.strip_prefix("id:") {
                        id = Some(rest.trim().to_string());
                    } else if let Some(rest) = line.strip_prefix("data:") {
                        data.push(rest.strip_prefix(' ').unwrap_or(rest).to_string());
                    }
                }
                if !data.is_empty() {
                    return Ok(SseMessage {
                        id,
                        data: data.join("\n"),
                    });
                }
                continue;
            }
            match self.body.next().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    self.bytes_read += chunk.len() as u64;
                    self.buffer
                        .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
                }
                None => bail!("SSE stream ended"),
            }
        }
    }

    /// The next session event; checks that SSE `id` equals the event's `seq`.
    pub async fn next_event(&mut self) -> anyhow::Result<SessionEvent> {
        let mut message = self.next_message().await?;
        // Presence frames (who is watching) carry no id: they are not events.
        while message.id.is_none() && message.data.contains("\"presence_changed\"") {
            message = self.next_message().await?;
        }
        let event: SessionEvent = serde_json::from_str(&message.data)
            .with_context(|| format!("decoding event {}", message.data))?;
        if message.id.as_deref() != Some(event.seq.to_string().as_str()) {
            bail!("SSE id {:?} differs from seq {}", message.id, event.seq);
        }
        Ok(event)
    }

    /// Reads events until one matches, returning everything read (including it).
    pub async fn until(
        &mut self,
        matches: impl Fn(&EventBody) -> bool,
    ) -> anyhow::Result<Vec<SessionEvent>> {
        let mut read = Vec::new();
        loop {
            let event = self.next_event().await?;
            let hit = matches(&event.body);
            read.push(event);
            if hit {
                return Ok(read);
            }
        }
    }

    pub async fn next_list_event(&mut self) -> anyhow::Result<SessionListEvent> {
        let message = self.next_message().await?;
        serde_json::from_str(&message.data).with_context(|| format!("decoding {}", message.data))
    }
}

/// The agent's text in `body`: a live delta, or a run of them joined once its turn
/// ended (the compacted log's `text`).
pub fn agent_text(body: &EventBody) -> Option<&str> {
    match body {
        EventBody::TextDelta { text } | EventBody::Text { text, .. } => Some(text.as_str()),
        _ => None,
    }
}

/// The concatenated agent text of `events` for `turn_id` (live deltas or joined
/// runs, not both for one run).
pub fn turn_text(events: &[SessionEvent], turn_id: &str) -> String {
    events
        .iter()
        .filter(|e| e.turn_id.as_deref() == Some(turn_id))
        .filter_map(|e| agent_text(&e.body))
        .collect()
}

/// Checks a stored log read from its start: seqs increase from 1, and every seq
/// missing is one a joined `text` event accounts for (a delta of its run, between
/// its `from_seq` and its own seq). Nothing else may be missing.
pub fn assert_complete_log(events: &[SessionEvent]) {
    let joined: Vec<(u64, u64)> = events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Text { from_seq, .. } => Some((*from_seq, e.seq)),
            _ => None,
        })
        .collect();
    let mut expected = 1;
    for event in events {
        assert!(
            event.seq >= expected,
            "seq {} repeats or goes back",
            event.seq
        );
        for missing in expected..event.seq {
            assert!(
                joined
                    .iter()
                    .any(|(from, to)| (*from..*to).contains(&missing)),
                "seq {missing} is missing and no joined text accounts for it: {events:#?}"
            );
        }
        expected = event.seq + 1;
    }
}

/// Checks that seqs run 1, 2, 3, ... with no gap or repeat.
pub fn assert_contiguous(events: &[SessionEvent]) {
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            event.seq,
            i as u64 + 1,
            "event #{i} has seq {}: {:?}",
            event.seq,
            event.body
        );
    }
}
