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
    /// Works until cancelled, then takes a while to stop (kills a slow command).
    SlowAbort,
    Panic,
    /// Asks a question and answers with what the user said, or "expired".
    Ask,
    /// Answers with the model it was given.
    EchoModel,
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
                    ..TokenUsage::default()
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
                    ..TokenUsage::default()
                })
            }
            Behaviour::SlowAbort => {
                events
                    .emit(EventBody::TextDelta {
                        text: "working".into(),
                    })
                    .await;
                cancel.cancelled().await;
                tokio::time::sleep(Duration::from_millis(300)).await;
                TurnEnd::aborted(TokenUsage::default())
            }
            Behaviour::Panic => panic!("the stand-in agent panics on purpose"),
            Behaviour::Ask => {
                let question = crate::agent::Question {
                    id: "q1".into(),
                    kind: nightshift_protocol::events::QuestionKind::Question,
                    text: "Really?".into(),
                    options: Vec::new(),
                };
                let text = match events.ask(question, cancel).await {
                    crate::agent::QuestionOutcome::Answered(answer) => answer,
                    other => format!("{other:?}"),
                };
                events.emit(EventBody::TextDelta { text }).await;
                TurnEnd::done(TokenUsage::default())
            }
            Behaviour::EchoModel => {
                events
                    .emit(EventBody::TextDelta {
                        text: format!("{} {}", input.llm.model, input.agent.as_str()),
                    })
                    .await;
                TurnEnd::done(TokenUsage::default())
            }
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
        author: None,
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

/// Waits until `turn_id` has a `turn_finished` event, and returns its events with
/// the measured duration set to 0 (see `durations_are_measured`).
async fn finished(queue: &EventQueue, turn_id: &str) -> Vec<EventBody> {
    finished_raw(queue, turn_id)
        .await
        .into_iter()
        .map(|event| match event {
            EventBody::TurnFinished {
                outcome,
                usage,
                error,
                ..
            } => EventBody::TurnFinished {
                outcome,
                usage,
                error,
                duration_ms: 0,
            },
            other => other,
        })
        .collect()
}

async fn finished_raw(queue: &EventQueue, turn_id: &str) -> Vec<EventBody> {
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
                    output_tokens: 4,
                    ..TokenUsage::default()
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
                    output_tokens: 0,
                    ..TokenUsage::default()
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
async fn a_prompt_right_behind_an_abort_waits_for_the_aborted_turn_to_wind_down() {
    let mut harness = start(Behaviour::SlowAbort);
    harness.frames.send(prompt("t1", llm())).await.unwrap();
    wait_for_active(&mut harness.active_turn, Some("t1")).await;
    // The SessionAgent gave up on the abort (or read both frames at once): the next
    // prompt comes while t1 is still stopping.
    harness
        .frames
        .send(SessionFrame::Abort {
            turn_id: "t1".into(),
        })
        .await
        .unwrap();
    harness.frames.send(prompt("t2", llm())).await.unwrap();
    let first = finished(&harness.queue, "t1").await;
    assert!(matches!(
        first.last(),
        Some(EventBody::TurnFinished {
            outcome: TurnOutcome::Aborted,
            ..
        })
    ));
    wait_for_active(&mut harness.active_turn, Some("t2")).await;
    assert_eq!(
        events_of(&harness.queue, "t2"),
        vec![EventBody::TextDelta {
            text: "working".into()
        }],
        "t2 runs instead of failing as a prompt while busy"
    );
    harness
        .frames
        .send(SessionFrame::Abort {
            turn_id: "t2".into(),
        })
        .await
        .unwrap();
    finished(&harness.queue, "t2").await;
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

#[tokio::test]
async fn durations_are_measured() {
    let mut harness = start(Behaviour::WaitForAbort);
    harness.frames.send(prompt("t1", llm())).await.unwrap();
    wait_for_active(&mut harness.active_turn, Some("t1")).await;
    tokio::time::sleep(Duration::from_millis(120)).await;
    harness
        .frames
        .send(SessionFrame::Abort {
            turn_id: "t1".into(),
        })
        .await
        .unwrap();
    let events = finished_raw(&harness.queue, "t1").await;
    assert!(
        matches!(events.last(), Some(EventBody::TurnFinished { duration_ms, .. }) if *duration_ms >= 120),
        "{events:?}"
    );
}

#[tokio::test]
async fn an_answer_frame_reaches_the_waiting_question() {
    let mut harness = start(Behaviour::Ask);
    harness.frames.send(prompt("t1", llm())).await.unwrap();
    wait_for_active(&mut harness.active_turn, Some("t1")).await;
    for _ in 0..200 {
        if events_of(&harness.queue, "t1")
            .iter()
            .any(|e| matches!(e, EventBody::QuestionAsked { .. }))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // An answer to an unknown question changes nothing; the right one resumes.
    for (question_id, answer) in [("nope", "x"), ("q1", "yes, really")] {
        harness
            .frames
            .send(SessionFrame::Answer {
                turn_id: "t1".into(),
                question_id: question_id.into(),
                answer: answer.into(),
            })
            .await
            .unwrap();
    }
    let events = finished(&harness.queue, "t1").await;
    assert!(
        matches!(&events[0], EventBody::QuestionAsked { question_id, .. } if question_id == "q1")
    );
    assert_eq!(
        events[1],
        EventBody::TextDelta {
            text: "yes, really".into()
        }
    );
}

#[tokio::test]
async fn the_sessions_model_and_agent_reach_the_agent() {
    let harness = start(Behaviour::EchoModel);
    let frame = SessionFrame::Prompt {
        turn_id: "t1".into(),
        message_id: "m1".into(),
        content: "hi".into(),
        llm: llm(),
        agent: nightshift_protocol::api::AgentKind::Opencode,
        model: Some("chosen-model".into()),
        permission_mode: Default::default(),
        author: None,
    };
    harness.frames.send(frame).await.unwrap();
    let events = finished(&harness.queue, "t1").await;
    assert_eq!(
        events[0],
        EventBody::TextDelta {
            text: "chosen-model opencode".into()
        }
    );
}
