//! The session's repository in the sandbox: cloned when a `welcome` names one
//! ([`setup`]), git's credentials served over a unix socket in the sandbox's sockets
//! directory ([`credential`]), its state reported in `repo` frames when it changed
//! ([`state`]), and pushed when asked.
//!
//! One task owns all of it ([`RepoTask`]), so git commands of the runner's never run
//! at the same time as each other; the turn controller and the link talk to it
//! through a [`RepoHandle`]. Git always runs inside the sandbox ([`git`]).
//!
//! The state is computed again after the clone, after each tool call of a turn (the
//! event queue says when), after a push and at the end of each turn, and announced
//! only when it differs from the last.

pub mod credential;
pub mod git;
pub mod pull_request_tool;
pub mod setup;
pub mod state;
pub mod worker_api;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nightshift_protocol::events::EventBody;
use nightshift_protocol::repo::{GitAuthor, RepoPhase, RepoState, SessionRepo};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::link::EventQueue;
use credential::CredentialServer;
use git::SandboxGit;
use worker_api::WorkerApi;

/// How long a turn waits for the clone before it starts without it.
const CLONE_WAIT: Duration = Duration::from_secs(900);
/// Tool calls are counted for this long before the state is computed once for all.
const SETTLE: Duration = Duration::from_millis(300);

/// What the repository task needs.
pub struct RepoSettings {
    pub git: SandboxGit,
    /// The credential socket: where the runner binds it, and where git inside the
    /// sandbox finds it. `None`: git gets no credential from the runner.
    pub credential_socket: Option<(PathBuf, String)>,
    /// Where the runner serves the credential to the backend's egress instead, when
    /// the egress adds it to an `https` repository's git requests (a host path in no
    /// sandbox): git in the sandbox then gets no helper at all.
    pub egress_socket: Option<PathBuf>,
    pub api: WorkerApi,
}

enum Request {
    Refresh,
    Push(oneshot::Sender<Result<(), String>>),
    Author(GitAuthor, oneshot::Sender<Result<(), String>>),
}

/// How the rest of the runner reaches the repository task.
#[derive(Clone)]
pub struct RepoHandle {
    repo: watch::Receiver<Option<SessionRepo>>,
    state: watch::Receiver<Option<RepoState>>,
    requests: mpsc::Sender<Request>,
    api: WorkerApi,
}

impl RepoHandle {
    /// The state last announced.
    pub fn state(&self) -> Option<RepoState> {
        self.state.borrow().clone()
    }

    /// The Worker's routes for the session's repository.
    pub fn api(&self) -> &WorkerApi {
        &self.api
    }

    /// The session's repository, once a `welcome` named it.
    pub fn repo(&self) -> Option<SessionRepo> {
        self.repo.borrow().clone()
    }

    /// Before a turn: waits for the clone (when the session has a repository) and
    /// makes `author` the author of the turn's commits. A clone that failed is tried
    /// again here.
    pub async fn prepare_turn(
        &self,
        author: Option<GitAuthor>,
        cancel: &CancellationToken,
    ) -> Result<(), String> {
        if self.repo.borrow().is_none() {
            return Ok(());
        }
        let mut state = self.state.clone();
        let settled = state.wait_for(|state| {
            state
                .as_ref()
                .is_some_and(|state| state.phase != RepoPhase::Cloning)
        });
        tokio::select! {
            settled = tokio::time::timeout(CLONE_WAIT, settled) => match settled {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return Err("the repository task stopped".into()),
                Err(_) => return Err("the repository is still being cloned".into()),
            },
            _ = cancel.cancelled() => return Ok(()),
        }
        let (reply, answer) = oneshot::channel();
        let Some(author) = author else {
            return Ok(());
        };
        self.requests
            .send(Request::Author(author, reply))
            .await
            .map_err(|_| "the repository task stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the repository task stopped".to_string())?
    }

    /// Pushes the session's branch; `Err` says why it did not.
    pub async fn push(&self) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Push(reply))
            .await
            .map_err(|_| "the repository task stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the repository task stopped".to_string())?
    }

    /// Asks for the state to be computed again (it is announced if it changed).
    pub fn refresh(&self) {
        let _ = self.requests.try_send(Request::Refresh);
    }
}

/// The task that owns the session's repository.
pub struct RepoTask {
    settings: RepoSettings,
    repo: watch::Receiver<Option<SessionRepo>>,
    state: watch::Sender<Option<RepoState>>,
    requests: mpsc::Receiver<Request>,
    events: Option<EventQueue>,
    credential: Option<tokio::task::JoinHandle<()>>,
    /// Whether the egress adds git's credential (so no helper is configured).
    credential_by_egress: bool,
    cloned: bool,
    /// Why the last push failed, announced with the state until a push succeeds.
    push_error: Option<String>,
}

impl Drop for RepoTask {
    fn drop(&mut self) {
        if let Some(server) = self.credential.take() {
            server.abort();
        }
    }
}

/// Starts the repository task: `repo` is where the link puts the `welcome`'s
/// repository; the returned receiver is what the link sends as `repo` frames.
pub fn start(
    settings: RepoSettings,
    repo: watch::Receiver<Option<SessionRepo>>,
    events: Option<EventQueue>,
    shutdown: CancellationToken,
) -> (RepoHandle, watch::Receiver<Option<RepoState>>) {
    let (state, states) = watch::channel(None);
    let (requests_sender, requests) = mpsc::channel(16);
    let handle = RepoHandle {
        repo: repo.clone(),
        state: states.clone(),
        requests: requests_sender,
        api: settings.api.clone(),
    };
    let task = RepoTask {
        settings,
        repo,
        state,
        requests,
        events,
        credential: None,
        credential_by_egress: false,
        cloned: false,
        push_error: None,
    };
    tokio::spawn(task.run(shutdown));
    (handle, states)
}

impl RepoTask {
    async fn run(mut self, shutdown: CancellationToken) {
        // Until a welcome names a repository, requests are answered at once.
        let repo = loop {
            if let Some(repo) = self.repo.borrow_and_update().clone() {
                break repo;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = self.repo.changed() => if changed.is_err() { return },
                request = self.requests.recv() => match request {
                    None => return,
                    Some(Request::Refresh) => {}
                    Some(Request::Author(_, reply)) => { let _ = reply.send(Ok(())); }
                    Some(Request::Push(reply)) => {
                        let _ = reply.send(Err("this session has no repository".into()));
                    }
                },
            }
        };
        self.start_credential_server(&repo).await;
        self.clone_repo(&repo).await;

        let mut seen = self.events.as_ref().map(EventQueue::last_seq).unwrap_or(0);
        let mut newest = self.events.as_ref().map(EventQueue::subscribe);
        loop {
            let event_changed = async {
                match newest.as_mut() {
                    Some(newest) => newest.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                request = self.requests.recv() => match request {
                    None => return,
                    Some(Request::Refresh) => self.publish(&repo).await,
                    Some(Request::Author(author, reply)) => {
                        if !self.cloned {
                            self.clone_repo(&repo).await;
                        }
                        let result = if self.cloned {
                            setup::set_author(&self.settings.git, &author).await
                        } else {
                            Err(self.failure().unwrap_or_else(|| "the repository is not cloned".into()))
                        };
                        let _ = reply.send(result);
                    }
                    Some(Request::Push(reply)) => {
                        let result = self.push(&repo).await;
                        self.push_error = result.as_ref().err().map(|e| cut(e, 4096));
                        self.publish(&repo).await;
                        let _ = reply.send(result);
                    }
                },
                alive = event_changed => {
                    if !alive {
                        newest = None;
                        continue;
                    }
                    tokio::time::sleep(SETTLE).await;
                    if self.files_may_have_changed(&mut seen) {
                        self.publish(&repo).await;
                    }
                }
            }
        }
    }

    async fn start_credential_server(&mut self, repo: &SessionRepo) {
        let Some(server) = CredentialServer::new(repo, self.settings.api.clone()) else {
            tracing::warn!("the repository's clone URL cannot be parsed; no credentials");
            return;
        };
        let server = Arc::new(server);
        // The egress terminates TLS only: an `http` repository keeps the helper. So
        // does a runner that cannot serve the egress's socket.
        let egress = self
            .settings
            .egress_socket
            .clone()
            .filter(|_| repo.clone_url.starts_with("https://"));
        let helper = self
            .settings
            .credential_socket
            .as_ref()
            .map(|(path, _)| path.clone());
        for (path, by_egress) in [(egress, true), (helper, false)] {
            let Some(path) = path else {
                continue;
            };
            match server.clone().serve(path.clone()).await {
                Ok(task) => {
                    self.credential = Some(task);
                    self.credential_by_egress = by_egress;
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, path = %path.display(), "cannot serve git's credentials")
                }
            }
        }
    }

    async fn clone_repo(&mut self, repo: &SessionRepo) {
        self.announce(RepoState {
            phase: RepoPhase::Cloning,
            branch: repo.branch.clone(),
            ..RepoState::default()
        });
        let credentials = match &self.settings.credential_socket {
            _ if self.credential_by_egress => setup::GitCredentials::AddedByEgress,
            Some((_, inside)) if self.credential.is_some() => setup::GitCredentials::Helper(inside),
            _ => setup::GitCredentials::Unavailable,
        };
        let started = std::time::Instant::now();
        match setup::ensure_cloned(&self.settings.git, repo, credentials).await {
            Ok(()) => {
                tracing::info!(repo = %repo.full_name, branch = %repo.branch, elapsed = ?started.elapsed(), "repository ready");
                self.cloned = true;
                setup::set_author(&self.settings.git, &repo.author)
                    .await
                    .ok();
                self.publish(repo).await;
            }
            Err(error) => {
                tracing::warn!(repo = %repo.full_name, %error, "cannot clone the repository");
                self.announce(RepoState {
                    phase: RepoPhase::Failed,
                    error: Some(cut(&error, 4000)),
                    branch: repo.branch.clone(),
                    ..RepoState::default()
                });
            }
        }
    }

    async fn push(&mut self, repo: &SessionRepo) -> Result<(), String> {
        if !self.cloned {
            return Err(self
                .failure()
                .unwrap_or_else(|| "the repository is not cloned".into()));
        }
        let refspec = format!("refs/heads/{b}:refs/heads/{b}", b = repo.branch);
        self.settings
            .git
            .checked(
                &["push", "--quiet", "origin", &refspec],
                setup::FETCH_TIMEOUT,
            )
            .await
            .map(|_| ())
    }

    /// Whether the events since the last look include a finished tool call or turn.
    fn files_may_have_changed(&self, seen: &mut u64) -> bool {
        let Some(events) = &self.events else {
            return false;
        };
        let last = events.last_seq();
        if last <= *seen {
            return false;
        }
        let batch = events.after(*seen, 1024);
        *seen = last;
        // Events already acknowledged are gone from the queue: they might have been
        // tool calls.
        batch.is_empty()
            || batch.iter().any(|event| {
                matches!(
                    event.event,
                    EventBody::ToolCallFinished { .. } | EventBody::TurnFinished { .. }
                )
            })
    }

    fn failure(&self) -> Option<String> {
        self.state.borrow().as_ref().and_then(|s| s.error.clone())
    }

    async fn publish(&mut self, repo: &SessionRepo) {
        if !self.cloned {
            return;
        }
        match state::compute(&self.settings.git, repo).await {
            Ok(mut state) => {
                state.push_error = self.push_error.clone();
                self.announce(state)
            }
            Err(error) => tracing::warn!(%error, "cannot read the repository's state"),
        }
    }

    /// Announces `state` unless it is what was announced last.
    fn announce(&self, state: RepoState) {
        self.state.send_if_modified(|current| {
            if current.as_ref() == Some(&state) {
                false
            } else {
                *current = Some(state);
                true
            }
        });
    }
}

fn cut(text: &str, limit: usize) -> String {
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}
