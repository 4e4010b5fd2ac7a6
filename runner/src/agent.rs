//! Agents: what runs a turn. [`BuiltinAgent`] is Nightshift's own loop (LLM + tools);
//! other agents (an OpenCode adapter, for one) implement the same [`Agent`] trait and
//! emit the same events.
//!
//! An agent streams what it does through [`TurnEvents`] and returns how the turn
//! ended; it does not emit `turn_finished` itself: the turn controller
//! ([`crate::turns`]) does, exactly once per turn, whatever the agent did.

mod builtin;
pub mod memory;
pub mod opencode;
mod prompt;
pub mod questions;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nightshift_protocol::api::{AgentKind, PermissionMode};
use nightshift_protocol::events::{EventBody, TokenUsage, TurnOutcome};
use nightshift_protocol::runner_link::LlmConfig;
use tokio_util::sync::CancellationToken;

pub use builtin::{BuiltinAgent, MAX_STEPS};
pub use memory::ConversationMemory;
pub use opencode::OpencodeAgent;
pub use questions::{DEFAULT_QUESTION_TIMEOUT, Question, QuestionBroker, QuestionOutcome};

use crate::link::EventQueue;

/// One prompt to work on.
#[derive(Debug, Clone)]
pub struct TurnInput {
    pub turn_id: String,
    pub message_id: String,
    pub content: String,
    /// The LLM, with the session's chosen model already applied.
    pub llm: LlmConfig,
    /// Which agent runs the turn.
    pub agent: AgentKind,
    /// Whether permission requests are asked of the user or allowed.
    pub permission_mode: PermissionMode,
}

/// How a turn ended, reported by the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnEnd {
    pub outcome: TurnOutcome,
    /// Tokens of every LLM call of the turn.
    pub usage: TokenUsage,
    /// Why it failed, for people (shown in the session).
    pub error: Option<String>,
}

impl TurnEnd {
    pub fn done(usage: TokenUsage) -> TurnEnd {
        TurnEnd {
            outcome: TurnOutcome::Done,
            usage,
            error: None,
        }
    }

    pub fn aborted(usage: TokenUsage) -> TurnEnd {
        TurnEnd {
            outcome: TurnOutcome::Aborted,
            usage,
            error: None,
        }
    }

    pub fn failed(usage: TokenUsage, error: impl Into<String>) -> TurnEnd {
        TurnEnd {
            outcome: TurnOutcome::Failed,
            usage,
            error: Some(error.into()),
        }
    }
}

#[async_trait]
pub trait Agent: Send {
    /// Works on one prompt until the answer is complete, it fails, or `cancel` fires
    /// (then it stops promptly, killing any running command, and returns an aborted
    /// end). The agent may keep state, such as the conversation, across turns.
    async fn run_turn(
        &mut self,
        input: TurnInput,
        events: &TurnEvents,
        cancel: &CancellationToken,
    ) -> TurnEnd;

    /// Another agent ran turns of this session since this one's last turn: a
    /// conversation kept across turns is stale and is read again from the session.
    fn other_agent_ran(&mut self) {}
}

/// Where an agent sends the events of one turn, and asks the user questions.
#[derive(Clone)]
pub struct TurnEvents {
    queue: EventQueue,
    turn_id: String,
    questions: Arc<QuestionBroker>,
    question_timeout: Duration,
}

impl TurnEvents {
    /// Events of one turn, with a broker of its own (nobody can answer its
    /// questions: they expire after the default timeout).
    pub fn new(queue: EventQueue, turn_id: impl Into<String>) -> TurnEvents {
        TurnEvents::with_questions(
            queue,
            turn_id,
            Arc::new(QuestionBroker::new()),
            DEFAULT_QUESTION_TIMEOUT,
        )
    }

    /// Events of one turn whose questions are answered through `questions`.
    pub fn with_questions(
        queue: EventQueue,
        turn_id: impl Into<String>,
        questions: Arc<QuestionBroker>,
        question_timeout: Duration,
    ) -> TurnEvents {
        TurnEvents {
            queue,
            turn_id: turn_id.into(),
            questions,
            question_timeout,
        }
    }

    /// Asks the user and waits for the answer, the timeout or `cancel`.
    pub async fn ask(&self, question: Question, cancel: &CancellationToken) -> QuestionOutcome {
        questions::ask(
            &self.questions,
            question,
            self.question_timeout,
            cancel,
            |event| self.emit(event),
        )
        .await
    }

    pub fn question_timeout(&self) -> Duration {
        self.question_timeout
    }

    pub fn turn_id(&self) -> &str {
        &self.turn_id
    }

    /// Queues an event for delivery; waits only while the outbox is full.
    pub async fn emit(&self, event: EventBody) {
        self.queue.push(&self.turn_id, event).await;
    }
}

/// The agents a runner offers; each turn goes to the one its prompt names.
pub struct AgentSet {
    builtin: Box<dyn Agent>,
    opencode: Box<dyn Agent>,
    /// The agent of the last turn this runner ran.
    last: Option<AgentKind>,
}

impl AgentSet {
    pub fn new(builtin: Box<dyn Agent>, opencode: Box<dyn Agent>) -> AgentSet {
        AgentSet {
            builtin,
            opencode,
            last: None,
        }
    }
}

#[async_trait]
impl Agent for AgentSet {
    async fn run_turn(
        &mut self,
        input: TurnInput,
        events: &TurnEvents,
        cancel: &CancellationToken,
    ) -> TurnEnd {
        let kind = input.agent;
        let agent = match kind {
            AgentKind::Builtin => &mut self.builtin,
            AgentKind::Opencode => &mut self.opencode,
        };
        // Both agents write the session's one conversation: the one whose turn this
        // is reads what the other added before it writes on.
        if self.last.is_some_and(|last| last != kind) {
            agent.other_agent_ran();
        }
        self.last = Some(kind);
        agent.run_turn(input, events, cancel).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Counts its turns and the times it was told another agent ran.
    struct Counting(Arc<Mutex<(u32, u32)>>);

    #[async_trait]
    impl Agent for Counting {
        async fn run_turn(
            &mut self,
            _input: TurnInput,
            _events: &TurnEvents,
            _cancel: &CancellationToken,
        ) -> TurnEnd {
            self.0.lock().unwrap().0 += 1;
            TurnEnd::done(TokenUsage::default())
        }

        fn other_agent_ran(&mut self) {
            self.0.lock().unwrap().1 += 1;
        }
    }

    #[tokio::test]
    async fn an_agent_hears_that_the_other_one_ran_before_its_next_turn() {
        let builtin = Arc::new(Mutex::new((0, 0)));
        let opencode = Arc::new(Mutex::new((0, 0)));
        let mut set = AgentSet::new(
            Box::new(Counting(builtin.clone())),
            Box::new(Counting(opencode.clone())),
        );
        let events = TurnEvents::new(EventQueue::new(16), "t");
        let llm = LlmConfig {
            api: nightshift_protocol::runner_link::LlmApi::OpenAiCompatible,
            base_url: String::new(),
            api_key: "key".to_string().into(),
            model: String::new(),
            source: String::new(),
        };
        for agent in [
            AgentKind::Builtin,
            AgentKind::Builtin,
            AgentKind::Opencode,
            AgentKind::Opencode,
            AgentKind::Builtin,
        ] {
            let input = TurnInput {
                turn_id: "t".into(),
                message_id: "m".into(),
                content: String::new(),
                llm: llm.clone(),
                agent,
                permission_mode: PermissionMode::Allow,
            };
            set.run_turn(input, &events, &CancellationToken::new())
                .await;
        }
        assert_eq!(*builtin.lock().unwrap(), (3, 1));
        assert_eq!(*opencode.lock().unwrap(), (2, 1));
    }
}
