//! The runner link: one WebSocket to the session's `SessionAgent`, kept up for the
//! life of the process, carrying events out and prompts, aborts and acks in.
//!
//! On every connection the runner says `hello` (with its epoch and the turn it is
//! still working on), waits for `welcome { acked }`, and resends every buffered event
//! numbered above `acked`, in order; then it sends new events as turns produce them.
//! The agent keeps working while the link is down: events wait in the bounded outbox
//! ([`EventQueue`]). Reconnects back off exponentially with jitter. A token refused
//! on the upgrade (401/403) several times in a row ends the link for good (the
//! process then exits with code 3). A renewed token from `welcome` or `pong` is used
//! for later reconnects and written back to the config file.
//!
//! The `welcome`'s repository is handed on (a watch the repository task reads), and
//! the repository's latest state goes out as a `repo` frame whenever it changes and
//! again on every new connection (latest wins; these frames are not numbered).
//!
//! Knows tokio and tokio-tungstenite; knows nothing about agents or tools: prompts and
//! aborts are handed to the turn controller over a channel.

mod address;
mod backoff;
mod outbox;
mod queue;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use nightshift_protocol::repo::{RepoState, SessionRepo};
use nightshift_protocol::runner_link::{RunnerFrame, SessionFrame};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

pub use address::{BadWorkerUrl, artifacts_url, runner_url, session_url};
pub use backoff::Backoff;
pub use outbox::{OutboundEvent, Outbox, OutboxFull};
pub use queue::EventQueue;

use crate::config::ConfigFile;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How many events go out in one write before the link looks at incoming frames.
const SEND_BATCH: usize = 64;

/// Where and how the link connects. The defaults are the protocol's timings.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    pub url: String,
    pub session_id: String,
    /// Random per process; the `SessionAgent` tells runner restarts apart by it.
    pub epoch: String,
    /// Limit for the TCP/TLS/WebSocket handshake and, again, for the `welcome`.
    pub connect_timeout: Duration,
    pub ping_interval: Duration,
    /// A link on which nothing arrived for this long is dead, even if TCP says not.
    pub dead_after: Duration,
    pub first_retry: Duration,
    pub max_retry: Duration,
    /// Refusals of the token in a row before the runner gives up.
    pub max_refusals: u32,
    /// How long a shutdown waits for buffered events to be acknowledged.
    pub flush_timeout: Duration,
    /// Limit for writing one batch of frames into the socket.
    pub write_timeout: Duration,
}

impl LinkSettings {
    pub fn new(worker_url: &str, session_id: &str) -> Result<LinkSettings, BadWorkerUrl> {
        Ok(LinkSettings {
            url: runner_url(worker_url, session_id)?,
            session_id: session_id.to_string(),
            epoch: uuid::Uuid::new_v4().to_string(),
            connect_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(15),
            dead_after: Duration::from_secs(45),
            first_retry: Duration::from_millis(100),
            max_retry: Duration::from_secs(5),
            max_refusals: 5,
            // With the 2 s grace a stopped command gets, shutdown stays within the 5 s the
            // sandbox backend waits before SIGKILL.
            flush_timeout: Duration::from_secs(2),
            write_timeout: Duration::from_secs(10),
        })
    }
}

/// Why the link stopped for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkEnd {
    Shutdown,
    /// The token was refused `max_refusals` times in a row.
    Unauthorized,
}

enum OpenError {
    /// The upgrade was answered with this status (401 or 403).
    Refused(u16),
    Failed(String),
}

enum ServeEnd {
    Shutdown,
    Lost(String),
}

pub struct RunnerLink {
    settings: LinkSettings,
    token: String,
    config_file: Option<ConfigFile>,
    events: EventQueue,
    active_turn: watch::Receiver<Option<String>>,
    commands: mpsc::Sender<SessionFrame>,
    /// Where a renewed token is announced to the runner's other callers of the
    /// Worker (the artifact uploads).
    token_watch: Option<watch::Sender<String>>,
    /// The highest number ever sent on any connection. The session cannot have
    /// stored more, so acknowledgements beyond it are not trusted (they would drop
    /// events that were never delivered).
    highest_sent: u64,
    /// Where the `welcome`'s repository goes.
    repo: Option<watch::Sender<Option<SessionRepo>>>,
    /// The repository's state to send as `repo` frames.
    repo_states: Option<watch::Receiver<Option<RepoState>>>,
}

impl RunnerLink {
    pub fn new(
        settings: LinkSettings,
        token: String,
        config_file: Option<ConfigFile>,
        events: EventQueue,
        active_turn: watch::Receiver<Option<String>>,
        commands: mpsc::Sender<SessionFrame>,
    ) -> RunnerLink {
        RunnerLink {
            settings,
            token,
            config_file,
            events,
            active_turn,
            commands,
            token_watch: None,
            highest_sent: 0,
            repo: None,
            repo_states: None,
        }
    }

    /// Hands each `welcome`'s repository to `repo`, and sends `states` as `repo`
    /// frames.
    pub fn with_repo(
        mut self,
        repo: watch::Sender<Option<SessionRepo>>,
        states: watch::Receiver<Option<RepoState>>,
    ) -> RunnerLink {
        self.repo = Some(repo);
        self.repo_states = Some(states);
        self
    }

    /// Announces every renewed token on `sender`.
    pub fn with_token_watch(mut self, sender: watch::Sender<String>) -> RunnerLink {
        self.token_watch = Some(sender);
        self
    }

    /// Connects, serves and reconnects until `shutdown` or a refused token.
    pub async fn run(mut self, shutdown: CancellationToken) -> LinkEnd {
        let mut backoff = Backoff::new(self.settings.first_retry, self.settings.max_retry);
        let mut refusals = 0;
        loop {
            let opened = tokio::select! {
                opened = self.open() => opened,
                _ = shutdown.cancelled() => return LinkEnd::Shutdown,
            };
            match opened {
                Ok((socket, acked)) => {
                    refusals = 0;
                    backoff.reset();
                    tracing::info!(url = %self.settings.url, acked, "link up");
                    match self.serve(socket, acked, &shutdown).await {
                        ServeEnd::Shutdown => return LinkEnd::Shutdown,
                        ServeEnd::Lost(reason) => {
                            tracing::warn!(%reason, "link lost; reconnecting")
                        }
                    }
                }
                Err(OpenError::Refused(status)) => {
                    refusals += 1;
                    tracing::warn!(status, refusals, "the session refused the runner's token");
                    if refusals >= self.settings.max_refusals {
                        return LinkEnd::Unauthorized;
                    }
                }
                Err(OpenError::Failed(reason)) => {
                    tracing::warn!(url = %self.settings.url, %reason, "cannot connect")
                }
            }
            let delay = backoff.next_delay();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.cancelled() => return LinkEnd::Shutdown,
            }
        }
    }

    /// One connection attempt: upgrade, `hello`, `welcome`. Returns the socket and
    /// the `acked` of the welcome.
    async fn open(&mut self) -> Result<(Socket, u64), OpenError> {
        let mut request = self
            .settings
            .url
            .as_str()
            .into_client_request()
            .map_err(|error| OpenError::Failed(format!("bad runner URL: {error}")))?;
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", self.token))
            .map_err(|_| OpenError::Failed("the token cannot be sent in a header".to_string()))?;
        authorization.set_sensitive(true);
        request.headers_mut().insert(AUTHORIZATION, authorization);

        let limit = self.settings.connect_timeout;
        let connected =
            tokio::time::timeout(limit, crate::outbound::connect_websocket(request)).await;
        let mut socket = match connected {
            Err(_) => return Err(OpenError::Failed(format!("no connection within {limit:?}"))),
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response)))
                if matches!(response.status().as_u16(), 401 | 403) =>
            {
                return Err(OpenError::Refused(response.status().as_u16()));
            }
            Ok(Err(error)) => return Err(OpenError::Failed(error.to_string())),
            Ok(Ok((socket, _response))) => socket,
        };

        let hello = RunnerFrame::Hello {
            session_id: self.settings.session_id.clone(),
            runner_version: nightshift_protocol::VERSION.to_string(),
            epoch: self.settings.epoch.clone(),
            active_turn: self.active_turn.borrow().clone(),
        };
        let deadline = Instant::now() + limit;
        tokio::time::timeout_at(deadline, send_frame(&mut socket, &hello))
            .await
            .map_err(|_| OpenError::Failed("cannot send hello in time".to_string()))?
            .map_err(OpenError::Failed)?;

        loop {
            let message = tokio::time::timeout_at(deadline, socket.next())
                .await
                .map_err(|_| OpenError::Failed(format!("no welcome within {limit:?}")))?;
            match message {
                None => return Err(OpenError::Failed("closed before welcome".to_string())),
                Some(Err(error)) => return Err(OpenError::Failed(error.to_string())),
                Some(Ok(Message::Close(frame))) => {
                    return Err(OpenError::Failed(format!(
                        "closed before welcome: {}",
                        describe_close(frame)
                    )));
                }
                Some(Ok(Message::Text(text))) => {
                    match serde_json::from_str::<SessionFrame>(&text) {
                        Ok(SessionFrame::Welcome { acked, token, repo }) => {
                            if let Some(token) = token {
                                self.renew_token(token);
                            }
                            self.take_repo(repo);
                            return Ok((socket, acked));
                        }
                        Ok(other) => self.dispatch(other).await,
                        Err(error) => {
                            tracing::warn!(%error, "ignoring a frame that is not a session frame")
                        }
                    }
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// Serves one established connection until it is lost or the runner shuts down.
    async fn serve(
        &mut self,
        mut socket: Socket,
        acked: u64,
        shutdown: &CancellationToken,
    ) -> ServeEnd {
        if acked > self.highest_sent {
            tracing::warn!(
                acked,
                sent = self.highest_sent,
                "the session acknowledged events it was never sent"
            );
        }
        let acked = acked.min(self.highest_sent);
        self.events.ack(acked);
        let mut sent_up_to = acked;
        let mut newest = self.events.subscribe();
        let mut ping = tokio::time::interval_at(
            Instant::now() + self.settings.ping_interval,
            self.settings.ping_interval,
        );
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        // Whatever state there is goes out on every new connection.
        let mut repo_states = self.repo_states.clone();
        if let Some(states) = repo_states.as_mut() {
            states.mark_changed();
        }

        loop {
            newest.borrow_and_update();
            let unsent = self.events.last_seq() > sent_up_to;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    self.close(socket, sent_up_to).await;
                    return ServeEnd::Shutdown;
                }
                message = socket.next() => {
                    last_heard = Instant::now();
                    match message {
                        None => return ServeEnd::Lost("closed by the session".to_string()),
                        Some(Err(error)) => return ServeEnd::Lost(error.to_string()),
                        Some(Ok(Message::Close(frame))) => return ServeEnd::Lost(describe_close(frame)),
                        Some(Ok(Message::Text(text))) => self.receive(&text).await,
                        Some(Ok(_)) => {}
                    }
                }
                _ = std::future::ready(()), if unsent => {
                    if let Err(reason) = self.send_batch(&mut socket, &mut sent_up_to).await {
                        return ServeEnd::Lost(reason);
                    }
                }
                _ = newest.changed(), if !unsent => {}
                changed = repo_changed(&mut repo_states) => {
                    if !changed {
                        repo_states = None;
                        continue;
                    }
                    let state = repo_states.as_mut().and_then(|states| states.borrow_and_update().clone());
                    if let Some(state) = state {
                        let frame = RunnerFrame::Repo { state };
                        let sent = tokio::time::timeout(self.settings.write_timeout, send_frame(&mut socket, &frame)).await;
                        match sent {
                            Ok(Ok(())) => {}
                            Ok(Err(reason)) => return ServeEnd::Lost(reason),
                            Err(_) => return ServeEnd::Lost("cannot send the repository's state in time".to_string()),
                        }
                    }
                }
                _ = ping.tick() => {
                    let sent = tokio::time::timeout(self.settings.write_timeout, send_frame(&mut socket, &RunnerFrame::Ping)).await;
                    match sent {
                        Ok(Ok(())) => {}
                        Ok(Err(reason)) => return ServeEnd::Lost(reason),
                        Err(_) => return ServeEnd::Lost("cannot send ping in time".to_string()),
                    }
                }
                _ = tokio::time::sleep_until(last_heard + self.settings.dead_after) => {
                    return ServeEnd::Lost(format!("nothing heard for {:?}", self.settings.dead_after));
                }
            }
        }
    }

    /// Sends the next batch of unsent events and advances `sent_up_to`.
    async fn send_batch(
        &mut self,
        socket: &mut Socket,
        sent_up_to: &mut u64,
    ) -> Result<(), String> {
        let batch = self.events.after(*sent_up_to, SEND_BATCH);
        let write = async {
            for event in &batch {
                let frame = RunnerFrame::Event {
                    local_seq: event.local_seq,
                    turn_id: event.turn_id.clone(),
                    event: event.event.clone(),
                };
                let text = serde_json::to_string(&frame).map_err(|error| error.to_string())?;
                socket
                    .feed(Message::text(text))
                    .await
                    .map_err(|error| error.to_string())?;
            }
            socket.flush().await.map_err(|error| error.to_string())
        };
        tokio::time::timeout(self.settings.write_timeout, write)
            .await
            .map_err(|_| "cannot send events in time".to_string())??;
        if let Some(last) = batch.last() {
            *sent_up_to = last.local_seq;
            self.highest_sent = self.highest_sent.max(last.local_seq);
        }
        Ok(())
    }

    async fn receive(&mut self, text: &str) {
        match serde_json::from_str::<SessionFrame>(text) {
            Ok(frame) => self.dispatch(frame).await,
            Err(error) => tracing::warn!(%error, "ignoring a frame that is not a session frame"),
        }
    }

    async fn dispatch(&mut self, frame: SessionFrame) {
        match frame {
            SessionFrame::Ack { up_to } => self.events.ack(up_to.min(self.highest_sent)),
            SessionFrame::Pong { token } => {
                if let Some(token) = token {
                    self.renew_token(token);
                }
            }
            SessionFrame::Welcome { token, repo, .. } => {
                if let Some(token) = token {
                    self.renew_token(token);
                }
                self.take_repo(repo);
            }
            SessionFrame::Prompt { .. }
            | SessionFrame::Abort { .. }
            | SessionFrame::Answer { .. }
            | SessionFrame::Push => {
                if self.commands.send(frame).await.is_err() {
                    tracing::warn!(
                        "the turn controller is gone; dropping a prompt, abort or answer"
                    );
                }
            }
        }
    }

    /// The first repository a `welcome` names is the session's; a session does not
    /// change repositories, so a later different one is logged and ignored.
    fn take_repo(&mut self, repo: Option<SessionRepo>) {
        let (Some(sender), Some(repo)) = (&self.repo, repo) else {
            return;
        };
        sender.send_if_modified(|current| match current {
            None => {
                *current = Some(repo);
                true
            }
            Some(current) => {
                if *current != repo {
                    tracing::warn!("a welcome named another repository; keeping the first");
                }
                false
            }
        });
    }

    fn renew_token(&mut self, token: String) {
        if token == self.token {
            return;
        }
        self.token = token;
        tracing::info!("runner token renewed");
        if let Some(sender) = &self.token_watch {
            sender.send_replace(self.token.clone());
        }
        if let Some(file) = &self.config_file
            && let Err(error) = file.store_token(&self.token)
        {
            tracing::warn!(%error, "cannot save the renewed token; a restarted runner may be refused");
        }
    }

    /// Shutdown: give the session a moment to store what is buffered, then close.
    async fn close(&mut self, mut socket: Socket, mut sent_up_to: u64) {
        let deadline = Instant::now() + self.settings.flush_timeout;
        while self.events.unacknowledged() > 0 && Instant::now() < deadline {
            if self.events.last_seq() > sent_up_to {
                if self.send_batch(&mut socket, &mut sent_up_to).await.is_err() {
                    return;
                }
                continue;
            }
            match tokio::time::timeout_at(deadline, socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    if let Ok(SessionFrame::Ack { up_to }) = serde_json::from_str(&text) {
                        self.events.ack(up_to.min(self.highest_sent));
                    }
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) | Err(_) => break,
            }
        }
        let left = self.events.unacknowledged();
        if left > 0 {
            tracing::warn!(left, "closing the link with unacknowledged events");
        }
        let frame = CloseFrame {
            code: CloseCode::Away,
            reason: "runner shutting down".into(),
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(Some(frame))).await;
    }
}

/// Resolves when the repository's state changed (`true`) or its task is gone
/// (`false`); never without a repository.
async fn repo_changed(states: &mut Option<watch::Receiver<Option<RepoState>>>) -> bool {
    match states {
        Some(states) => states.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

async fn send_frame(socket: &mut Socket, frame: &RunnerFrame) -> Result<(), String> {
    let text = serde_json::to_string(frame).map_err(|error| error.to_string())?;
    socket
        .send(Message::text(text))
        .await
        .map_err(|error| error.to_string())
}

fn describe_close(frame: Option<CloseFrame>) -> String {
    match frame {
        Some(frame) => format!(
            "closed by the session ({}: {})",
            u16::from(frame.code),
            frame.reason
        ),
        None => "closed by the session".to_string(),
    }
}

#[cfg(test)]
mod tests;
