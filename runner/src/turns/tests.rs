//! The controller's guarantees, with a stand-in agent (the real one is tested
//! against an LLM server in `agent::builtin`).

use async_trait::async_trait;
use nightshift_protocol::runner_link::{LlmApi, LlmConfig};

use super::*;

#[derive(Clone, Copy)]
enum Behaviour {
    /// Emits one text delta and finishes.
    Answer,
    /// Works until cancelled.
    WaitForAbort,
    Panic,
}

struct StandInAgent(Behaviour);

#[async_trait]
impl Agent for StandInAgent {
    async fn run_turn(
        &mut self,
        input: TurnInput,
        events: &TurnEvents,
        cancel: &CancellationToken,
    ) -> TurnEnd {
        match self.0 {
            Behaviour::Answer => {
                events
                    .emit(EventBody::TextDelta {
                        text: format!("answer to {}", input.content),
                    })
                    .await;
                TurnEnd::done(TokenUsage {
                    input_tokens: 3,
                    output_tokens: 4,
                })
            }
            Behaviour::WaitForAbort => {
                events
                    .emit(EventBody::TextDelta {
                        text: "working".into(),
                    })
                    .await;
                cancel.cancelled().await;
                TurnEnd::aborted(TokenUsage {
                    input_tokens: 1,
                    output_tokens: 0,
                })
            }
            Behaviour::Panic => panic!("the stand-in agent panics on purpose"),
        }
    }
}

struct Harness {
    queue: EventQueue,
    frames: mpsc::Sender<SessionFrame>,
    active_turn: watch::Receiver<Option<String>>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start(behaviour: Behaviour) -> Harness {
    let queue = EventQueue::new(100);
    let (active_sender, active_turn) = watch::channel(None);
    let (frames, receiver) = mpsc::channel(8);
    let shutdown = CancellationToken::new();
    let controller = TurnController::new(
        Box::new(StandInAgent(behaviour)),
        queue.clone(),
        active_sender,
    );
    let task = tokio::spawn(controller.run(receiver, shutdown.clone()));
    Harness {
        queue,
        frames,
        active_turn,
        shutdown,
        task,
    }
}

fn llm() -> Option<LlmConfig> {
    Some(LlmConfig {
        api: LlmApi::OpenAiCompatible,
        base_url: "http://127.0.0.1:1/v1".into(),
        api_key: "k".into(),
        model: "m".into(),
        source: "test".into(),
    })
}

fn prompt(turn_id: &str, llm: Option<LlmConfig>) -> SessionFrame {
    SessionFrame::Prompt {
        turn_id: turn_id.into(),
        message_id: format!("m-{turn_id}"),
        content: "hi".into(),
        llm,
        agent: Default::default(),
        model: None,
        permission_mode: Default::default(),
    }
}

fn events_of(queue: &EventQueue, turn_id: &str) -> Vec<EventBody> {
    queue
        .after(0, 1000)
        .into_iter()
        .filter(|e| e.turn_id == turn_id)
        .map(|e| e.event)
        .collect()
}

/// Waits until `turn_id` has a `turn_finished` event, and returns its events.
async fn finished(queue: &EventQueue, turn_id: &str) -> Vec<EventBody> {
    for _ in 0..500 {
        let events = events_of(queue, turn_id);
        if events
            .iter()
            .any(|e| matches!(e, EventBody::TurnFinished { .. }))
        {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "turn {turn_id} never finished: {:?}",
        events_of(queue, turn_id)
    );
}

async fn wait_for_active(active: &mut watch::Receiver<Option<String>>, expected: Option<&str>) {
    tokio::time::timeout(
        Duration::from_secs(5),
        active.wait_for(|turn| turn.as_deref() == expected),
    )
    .await
    .expect("the active turn did not change in time")
    .unwrap();
}

#[tokio::test]
async fn a_turn_ends_with_exactly_one_turn_finished() {
    let mut harness = start(Behaviour::Answer);
    harness.frames.send(prompt("t1", llm())).await.unwrap();
    let events = finished(&harness.queue, "t1").await;
    assert_eq!(
        events,
        vec![
            EventBody::TextDelta {
                text: "answer to hi".into()
            },
            EventBody::TurnFinished {
                outcome: TurnOutcome::Done,
                usage: TokenUsage {
                    input_tokens: 3,
                    output_tokens: 4
                },
                error: None,
                duration_ms: 0
            },
        ]
    );
    wait_for_active(&mut harness.active_turn, None).await;
}

#[tokio::test]
async fn a_prompt_without_an_llm_fails_with_what_to_set() {
    let harness = start(Behaviour::Answer);
    harness.frames.send(prompt("t1", None)).await.unwrap();
    let events = finished(&harness.queue, "t1").await;
    assert_eq!(
        events,
        vec![
            EventBody::Error {
                message: NO_LLM_MESSAGE.into()
            },
            EventBody::TurnFinished {
                outcome: TurnOutcome::Failed,
                usage: TokenUsage::default(),
                error: Some(NO_LLM_MESSAGE.into()),
                duration_ms: 0
            },
        ]
    );
    assert!(
        NO_LLM_MESSAGE.contains("LLM_BASE_URL") && NO_LLM_MESSAGE.contains("ANTHROPIC_API_KEY")
    );
}

#[tokio::test]
async fn a_prompt_while_busy_fails_alone_and_abort_stops_the_running_turn() {
    let mut harness = start(Behaviour::WaitForAbort);
    harness.frames.send(prompt("t1", llm())).await.unwrap();
    wait_for_active(&mut harness.active_turn, Some("t1")).await;

    // A resend of the running turn's prompt changes nothing.
    harness.frames.send(prompt("t1", llm())).await.unwrap();
    harness.frames.send(prompt("t2", llm())).await.unwrap();
    let second = finished(&harness.queue, "t2").await;
    assert!(
        matches!(&second[0], EventBody::Error { message } if message.contains("one at a time"))
    );
    assert!(matches!(
        second[1],
        EventBody::TurnFinished {
            outcome: TurnOutcome::Failed,
            ..
        }
    ));
    assert_eq!(
        *harness.active_turn.borrow(),
        Some("t1".to_string()),
        "the running turn goes on"
    );

    // An abort for another turn changes nothing either.
    harness
        .frames
        .send(SessionFrame::Abort {
            turn_id: "t9".into(),
        })
        .await
        .unwrap();
    harness
        .frames
        .send(SessionFrame::Abort {
            turn_id: "t1".into(),
        })
        .await
        .unwrap();
    let first = finished(&harness.queue, "t1").await;
    assert_eq!(
        first,
        vec![
            EventBody::TextDelta {
                text: "working".into()
            },
            EventBody::TurnFinished {
                outcome: TurnOutcome::Aborted,
                usage: TokenUsage {
                    input_tokens: 1,
                    output_tokens: 0
                },
                error: None,
                duration_ms: 0
            },
        ]
    );
    wait_for_active(&mut harness.active_turn, None).await;
    // Nothing else arrived for t1 later.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(events_of(&harness.queue, "t1").len(), 2);
}

#[tokio::test]
async fn shutdown_stops_the_turn_without_finishing_it() {
    let mut harness = start(Behaviour::WaitForAbort);
    harness.frames.send(prompt("t1", llm())).await.unwrap();
    wait_for_active(&mut harness.active_turn, Some("t1")).await;
    harness.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), harness.task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        events_of(&harness.queue, "t1"),
        vec![EventBody::TextDelta {
            text: "working".into()
        }]
    );
}

#[tokio::test]
async fn a_panicking_agent_still_finishes_its_turn() {
    let harness = start(Behaviour::Panic);
    harness.frames.send(prompt("t1", llm())).await.unwrap();
    let events = finished(&harness.queue, "t1").await;
    assert!(matches!(&events[0], EventBody::Error { message } if message.contains("crashed")));
    assert!(matches!(
        events[1],
        EventBody::TurnFinished {
            outcome: TurnOutcome::Failed,
            ..
        }
    ));
}
