//! The link against a real WebSocket server standing in for the `SessionAgent`.

use std::sync::{Arc, Mutex};

use nightshift_protocol::events::EventBody;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

use super::*;

type ServerSocket = WebSocketStream<TcpStream>;

struct Session {
    listener: TcpListener,
    url: String,
}

impl Session {
    async fn start() -> Session {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        Session { listener, url }
    }

    /// Accepts the next connection; returns it and its `Authorization` header. With
    /// `refuse`, answers the upgrade with that status instead.
    // The callback's signature is tungstenite's, large error type included.
    #[allow(clippy::result_large_err)]
    async fn accept(&self, refuse: Option<u16>) -> Option<(ServerSocket, String, String)> {
        let (tcp, _) = tokio::time::timeout(Duration::from_secs(10), self.listener.accept())
            .await
            .unwrap()
            .unwrap();
        let seen = Arc::new(Mutex::new((String::new(), String::new())));
        let record = seen.clone();
        let callback = move |request: &Request,
                             response: Response|
              -> Result<Response, ErrorResponse> {
            let authorization = request
                .headers()
                .get("authorization")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_string();
            *record.lock().unwrap() = (request.uri().path().to_string(), authorization);
            match refuse {
                Some(status) => {
                    let mut refusal = ErrorResponse::new(Some("invalid_runner_token".to_string()));
                    *refusal.status_mut() =
                        tokio_tungstenite::tungstenite::http::StatusCode::from_u16(status).unwrap();
                    Err(refusal)
                }
                None => Ok(response),
            }
        };
        let socket = tokio_tungstenite::accept_hdr_async(tcp, callback)
            .await
            .ok()?;
        let (path, authorization) = seen.lock().unwrap().clone();
        Some((socket, path, authorization))
    }
}

async fn receive(socket: &mut ServerSocket) -> RunnerFrame {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// The next frame that is not a ping.
async fn receive_event(socket: &mut ServerSocket) -> (u64, EventBody) {
    loop {
        match receive(socket).await {
            RunnerFrame::Event {
                local_seq, event, ..
            } => return (local_seq, event),
            RunnerFrame::Ping => continue,
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

async fn send(socket: &mut ServerSocket, frame: SessionFrame) {
    socket
        .send(Message::text(serde_json::to_string(&frame).unwrap()))
        .await
        .unwrap();
}

fn text(s: &str) -> EventBody {
    EventBody::TextDelta {
        text: s.to_string(),
    }
}

struct Runner {
    events: EventQueue,
    commands: mpsc::Receiver<SessionFrame>,
    active_turn: watch::Sender<Option<String>>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<LinkEnd>,
}

fn fast_settings(url: &str) -> LinkSettings {
    let mut settings = LinkSettings::new(url, "s1").unwrap();
    settings.first_retry = Duration::from_millis(10);
    settings.max_retry = Duration::from_millis(50);
    settings.max_refusals = 3;
    settings
}

fn start_link(
    settings: LinkSettings,
    config_file: Option<ConfigFile>,
    events: EventQueue,
) -> Runner {
    let (active_turn, active_receiver) = watch::channel(None);
    let (command_sender, commands) = mpsc::channel(8);
    let shutdown = CancellationToken::new();
    let link = RunnerLink::new(
        settings,
        "token-1".into(),
        config_file,
        events.clone(),
        active_receiver,
        command_sender,
    );
    let task = tokio::spawn(link.run(shutdown.clone()));
    Runner {
        events,
        commands,
        active_turn,
        shutdown,
        task,
    }
}

#[tokio::test]
async fn hello_welcome_and_resend_of_unacknowledged_events_after_a_reconnect() {
    let session = Session::start().await;
    let events = EventQueue::new(100);
    for s in ["a", "b", "c"] {
        events.push("t1", text(s)).await;
    }
    let runner = start_link(fast_settings(&session.url), None, events);
    runner.active_turn.send_replace(Some("t1".into()));

    let (mut socket, path, authorization) = session.accept(None).await.unwrap();
    assert_eq!(path, "/api/sessions/s1/runner");
    assert_eq!(authorization, "Bearer token-1");
    let RunnerFrame::Hello {
        session_id,
        runner_version,
        epoch,
        active_turn,
    } = receive(&mut socket).await
    else {
        panic!("the first frame must be hello");
    };
    assert_eq!(session_id, "s1");
    assert_eq!(runner_version, nightshift_protocol::VERSION);
    assert_eq!(active_turn.as_deref(), Some("t1"));
    send(
        &mut socket,
        SessionFrame::Welcome {
            acked: 0,
            token: None,
            repo: None,
        },
    )
    .await;
    for (seq, s) in [(1, "a"), (2, "b"), (3, "c")] {
        assert_eq!(receive_event(&mut socket).await, (seq, text(s)));
    }
    send(&mut socket, SessionFrame::Ack { up_to: 2 }).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(runner.events.unacknowledged(), 1);
    drop(socket);

    // The agent keeps producing while the link is down.
    runner.events.push("t1", text("d")).await;

    let (mut socket, _, _) = session.accept(None).await.unwrap();
    let RunnerFrame::Hello {
        epoch: second_epoch,
        ..
    } = receive(&mut socket).await
    else {
        panic!("expected hello")
    };
    assert_eq!(
        second_epoch, epoch,
        "the epoch is per process, not per connection"
    );
    send(
        &mut socket,
        SessionFrame::Welcome {
            acked: 2,
            token: None,
            repo: None,
        },
    )
    .await;
    assert_eq!(receive_event(&mut socket).await, (3, text("c")));
    assert_eq!(receive_event(&mut socket).await, (4, text("d")));
    runner.events.push("t1", text("e")).await;
    assert_eq!(receive_event(&mut socket).await, (5, text("e")));
    send(&mut socket, SessionFrame::Ack { up_to: 5 }).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(runner.events.unacknowledged(), 0);

    runner.shutdown.cancel();
    assert_eq!(runner.task.await.unwrap(), LinkEnd::Shutdown);
}

#[tokio::test]
async fn a_token_refused_again_and_again_ends_the_link() {
    let session = Session::start().await;
    let runner = start_link(fast_settings(&session.url), None, EventQueue::new(10));
    for _ in 0..3 {
        assert!(session.accept(Some(401)).await.is_none());
    }
    let end = tokio::time::timeout(Duration::from_secs(5), runner.task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end, LinkEnd::Unauthorized);
}

#[tokio::test]
async fn a_renewed_token_is_used_for_reconnects_and_saved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runner.json");
    let config = serde_json::json!({
        "worker_url": "http://unused", "session_id": "s1", "token": "token-1",
        "workspace_dir": "/tmp", "command_wrapper": [], "sandbox_workspace_dir": "/workspace"
    });
    std::fs::write(&path, config.to_string()).unwrap();
    let (file, _) = ConfigFile::load(&path).unwrap();

    let session = Session::start().await;
    let runner = start_link(fast_settings(&session.url), Some(file), EventQueue::new(10));

    let (mut socket, _, authorization) = session.accept(None).await.unwrap();
    assert_eq!(authorization, "Bearer token-1");
    receive(&mut socket).await;
    send(
        &mut socket,
        SessionFrame::Welcome {
            acked: 0,
            token: Some("token-2".into()),
            repo: None,
        },
    )
    .await;
    send(
        &mut socket,
        SessionFrame::Pong {
            token: Some("token-3".into()),
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(ConfigFile::load(&path).unwrap().1.token.expose(), "token-3");
    drop(socket);

    let (_socket, _, authorization) = session.accept(None).await.unwrap();
    assert_eq!(authorization, "Bearer token-3");
    runner.shutdown.cancel();
}

#[tokio::test]
async fn prompts_and_aborts_go_to_the_turn_controller() {
    let session = Session::start().await;
    let mut runner = start_link(fast_settings(&session.url), None, EventQueue::new(10));
    let (mut socket, _, _) = session.accept(None).await.unwrap();
    receive(&mut socket).await;
    send(
        &mut socket,
        SessionFrame::Welcome {
            acked: 0,
            token: None,
            repo: None,
        },
    )
    .await;
    let prompt = SessionFrame::Prompt {
        turn_id: "t1".into(),
        message_id: "m1".into(),
        content: "hi".into(),
        llm: None,
        agent: Default::default(),
        model: None,
        permission_mode: Default::default(),
        author: None,
    };
    send(&mut socket, prompt.clone()).await;
    send(
        &mut socket,
        SessionFrame::Abort {
            turn_id: "t1".into(),
        },
    )
    .await;
    let received = tokio::time::timeout(Duration::from_secs(5), runner.commands.recv())
        .await
        .unwrap();
    assert_eq!(received, Some(prompt));
    let received = tokio::time::timeout(Duration::from_secs(5), runner.commands.recv())
        .await
        .unwrap();
    assert_eq!(
        received,
        Some(SessionFrame::Abort {
            turn_id: "t1".into()
        })
    );
    runner.shutdown.cancel();
}

#[tokio::test]
async fn pings_flow_and_a_silent_session_counts_as_dead() {
    let session = Session::start().await;
    let mut settings = fast_settings(&session.url);
    settings.ping_interval = Duration::from_millis(100);
    settings.dead_after = Duration::from_millis(400);
    let runner = start_link(settings, None, EventQueue::new(10));

    let (mut socket, _, _) = session.accept(None).await.unwrap();
    receive(&mut socket).await;
    send(
        &mut socket,
        SessionFrame::Welcome {
            acked: 0,
            token: None,
            repo: None,
        },
    )
    .await;
    assert_eq!(receive(&mut socket).await, RunnerFrame::Ping);
    // The session says nothing more; the runner must give up on this connection and
    // dial again, although TCP is still up.
    let (mut second, _, _) = session.accept(None).await.unwrap();
    assert!(matches!(
        receive(&mut second).await,
        RunnerFrame::Hello { .. }
    ));
    drop(socket);
    runner.shutdown.cancel();
}

#[tokio::test]
async fn shutdown_flushes_buffered_events_then_closes() {
    let session = Session::start().await;
    let runner = start_link(fast_settings(&session.url), None, EventQueue::new(10));
    let (mut socket, _, _) = session.accept(None).await.unwrap();
    receive(&mut socket).await;
    send(
        &mut socket,
        SessionFrame::Welcome {
            acked: 0,
            token: None,
            repo: None,
        },
    )
    .await;

    // Once an event arrives the link is serving (a shutdown during the handshake
    // just drops the half-open connection).
    runner.events.push("t1", text("first")).await;
    assert_eq!(receive_event(&mut socket).await, (1, text("first")));

    runner.events.push("t1", text("last words")).await;
    runner.shutdown.cancel();
    assert_eq!(receive_event(&mut socket).await, (2, text("last words")));
    send(&mut socket, SessionFrame::Ack { up_to: 2 }).await;
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(closed.map(|frame| frame.code), Some(CloseCode::Away));
    assert_eq!(runner.task.await.unwrap(), LinkEnd::Shutdown);
    assert_eq!(runner.events.unacknowledged(), 0);
}

#[tokio::test]
async fn an_ack_for_events_never_sent_is_not_trusted() {
    let session = Session::start().await;
    let events = EventQueue::new(10);
    events.push("t1", text("a")).await;
    events.push("t1", text("b")).await;
    let runner = start_link(fast_settings(&session.url), None, events);
    let (mut socket, _, _) = session.accept(None).await.unwrap();
    receive(&mut socket).await;
    // A confused session claims to have stored events it never received; they are
    // sent regardless, rather than silently dropped.
    send(
        &mut socket,
        SessionFrame::Welcome {
            acked: 10,
            token: None,
            repo: None,
        },
    )
    .await;
    assert_eq!(receive_event(&mut socket).await, (1, text("a")));
    assert_eq!(receive_event(&mut socket).await, (2, text("b")));
    runner.shutdown.cancel();
}

#[tokio::test]
async fn the_welcomes_repository_is_handed_on_and_repo_states_go_out_on_change_and_reconnect() {
    use nightshift_protocol::repo::{GitAuthor, RepoPhase, RepoState, SessionRepo};
    let session = Session::start().await;
    let (active_turn, active_receiver) = watch::channel(None);
    let (command_sender, _commands) = mpsc::channel(8);
    let (repo_sender, mut repo) = watch::channel(None);
    let (state_sender, states) = watch::channel(None);
    let shutdown = CancellationToken::new();
    let link = RunnerLink::new(
        fast_settings(&session.url),
        "token-1".into(),
        None,
        EventQueue::new(10),
        active_receiver,
        command_sender,
    )
    .with_repo(repo_sender, states);
    let task = tokio::spawn(link.run(shutdown.clone()));
    let session_repo = SessionRepo {
        full_name: "octo/hello".into(),
        clone_url: "https://github.com/octo/hello.git".into(),
        base_branch: "main".into(),
        branch: "nightshift/abcd1234-x".into(),
        existing_branch: false,
        author: GitAuthor {
            name: "A".into(),
            email: "a@example.com".into(),
        },
    };

    let (mut socket, _, _) = session.accept(None).await.unwrap();
    receive(&mut socket).await;
    let welcome = SessionFrame::Welcome {
        acked: 0,
        token: None,
        repo: Some(session_repo.clone()),
    };
    send(&mut socket, welcome).await;
    tokio::time::timeout(Duration::from_secs(5), repo.wait_for(Option::is_some))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(repo.borrow().clone(), Some(session_repo.clone()));

    let state = RepoState {
        phase: RepoPhase::Ready,
        branch: "nightshift/abcd1234-x".into(),
        ahead: 1,
        ..Default::default()
    };
    state_sender.send_replace(Some(state.clone()));
    assert_eq!(receive_repo(&mut socket).await, state);
    drop(socket);

    // A new connection gets the latest state again, without a change.
    let (mut socket, _, _) = session.accept(None).await.unwrap();
    receive(&mut socket).await;
    let welcome = SessionFrame::Welcome {
        acked: 0,
        token: None,
        repo: Some(session_repo),
    };
    send(&mut socket, welcome).await;
    assert_eq!(receive_repo(&mut socket).await, state);
    drop(active_turn);
    shutdown.cancel();
    let _ = task.await;
}

/// The next `repo` frame (pings skipped).
async fn receive_repo(socket: &mut ServerSocket) -> nightshift_protocol::repo::RepoState {
    loop {
        match receive(socket).await {
            RunnerFrame::Repo { state } => return state,
            RunnerFrame::Ping => continue,
            other => panic!("expected a repo frame, got {other:?}"),
        }
    }
}
