//! The LLM clients against a real HTTP server speaking both streaming formats.

use std::time::{Duration, Instant};

use nightshift_protocol::events::TokenUsage;
use nightshift_protocol::runner_link::LlmApi;
use serde_json::json;

use super::*;
use crate::test_llm::{Reply, TestLlm, anthropic_tool_call, openai_text};

fn client(llm: &TestLlm, api: LlmApi, timeouts: LlmTimeouts) -> LlmClient {
    LlmClient::new(
        LlmClient::http_client(&timeouts).unwrap(),
        llm.config(api),
        timeouts,
    )
}

fn tools() -> Vec<ToolDefinition> {
    vec![ToolDefinition {
        name: "bash".into(),
        description: "run".into(),
        parameters: json!({"type": "object"}),
    }]
}

async fn collect(stream: &mut LlmStream) -> Result<Vec<String>, LlmError> {
    let mut texts = Vec::new();
    while let Some(text) = stream.next_text().await? {
        texts.push(text);
    }
    Ok(texts)
}

#[tokio::test]
async fn openai_streams_text_and_sends_the_documented_request() {
    let llm = TestLlm::start(vec![Reply::stream(openai_text(
        &["Hel", "lo ", "wörld"],
        11,
        3,
    ))])
    .await;
    let client = client(&llm, LlmApi::OpenAiCompatible, LlmTimeouts::default());
    let conversation = vec![ConversationItem::User { text: "hi".into() }];
    let tools = tools();
    let request = LlmRequest {
        system: "sys",
        conversation: &conversation,
        tools: &tools,
        max_tokens: 100,
    };

    let mut stream = client.start(&request).await.unwrap();
    assert_eq!(
        collect(&mut stream).await.unwrap(),
        vec!["Hel", "lo ", "wörld"]
    );
    let reply = stream.finish().unwrap();
    assert_eq!(reply.text, "Hello wörld");
    assert_eq!(
        reply.usage,
        TokenUsage {
            input_tokens: 11,
            output_tokens: 3,
            ..TokenUsage::default()
        }
    );

    let requests = llm.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(requests[0].headers["authorization"], "Bearer test-key");
    assert_eq!(requests[0].body["stream"], true);
    assert_eq!(
        requests[0].body["stream_options"],
        json!({"include_usage": true})
    );
    assert_eq!(
        requests[0].body["messages"][1],
        json!({"role": "user", "content": "hi"})
    );
    assert_eq!(requests[0].body["tools"][0]["type"], "function");
}

#[tokio::test]
async fn anthropic_streams_a_tool_call_and_sends_the_documented_request() {
    let args = json!({"command": "ls -la"});
    let llm = TestLlm::start(vec![Reply::stream(anthropic_tool_call(
        "toolu_1", "bash", &args, 50, 7,
    ))])
    .await;
    let client = client(&llm, LlmApi::Anthropic, LlmTimeouts::default());
    let conversation = vec![ConversationItem::User {
        text: "list".into(),
    }];
    let tools = tools();
    let request = LlmRequest {
        system: "sys",
        conversation: &conversation,
        tools: &tools,
        max_tokens: 1234,
    };

    let mut stream = client.start(&request).await.unwrap();
    assert_eq!(collect(&mut stream).await.unwrap(), Vec::<String>::new());
    let reply = stream.finish().unwrap();
    assert_eq!(
        reply.tool_calls,
        vec![ToolCall {
            id: "toolu_1".into(),
            name: "bash".into(),
            arguments: args.to_string()
        }]
    );
    assert_eq!(
        reply.usage,
        TokenUsage {
            input_tokens: 50,
            output_tokens: 7,
            ..TokenUsage::default()
        }
    );
    assert_eq!(reply.stop_reason.as_deref(), Some("tool_use"));

    let request = &llm.requests()[0];
    assert_eq!(request.path, "/v1/messages");
    assert_eq!(request.headers["x-api-key"], "test-key");
    assert_eq!(request.headers["anthropic-version"], "2023-06-01");
    assert!(request.headers.get("authorization").is_none());
    assert_eq!(request.body["max_tokens"], 1234);
    assert_eq!(request.body["stream"], true);
    assert_eq!(
        request.body["tools"][0]["input_schema"],
        json!({"type": "object"})
    );
}

#[tokio::test]
async fn error_statuses_carry_the_message_and_say_whether_to_retry() {
    let llm = TestLlm::start(vec![
        Reply::status(
            401,
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#,
        ),
        Reply::Status {
            status: 429,
            body: r#"{"error":{"message":"slow down"}}"#.into(),
            retry_after: Some(7),
        },
        Reply::status(503, "upstream unavailable"),
    ])
    .await;
    let client = client(&llm, LlmApi::OpenAiCompatible, LlmTimeouts::default());
    let conversation = vec![ConversationItem::User { text: "hi".into() }];
    let request = LlmRequest {
        system: "s",
        conversation: &conversation,
        tools: &[],
        max_tokens: 10,
    };

    let Err(unauthorized) = client.start(&request).await else {
        panic!("401 must fail")
    };
    assert!(
        matches!(&unauthorized, LlmError::Status { status: 401, message, .. } if message == "Incorrect API key provided")
    );
    assert!(!unauthorized.is_retryable());
    assert!(!unauthorized.to_string().contains("test-key"));

    let Err(limited) = client.start(&request).await else {
        panic!("429 must fail")
    };
    assert!(limited.is_retryable());
    assert_eq!(limited.retry_after(), Some(Duration::from_secs(7)));

    let Err(unavailable) = client.start(&request).await else {
        panic!("503 must fail")
    };
    assert!(
        matches!(&unavailable, LlmError::Status { status: 503, message, .. } if message == "upstream unavailable")
    );
    assert!(unavailable.is_retryable());
}

#[tokio::test]
async fn a_stalled_stream_times_out() {
    let mut chunks = openai_text(&["partial"], 1, 1);
    chunks.truncate(2);
    let llm = TestLlm::start(vec![Reply::Stream {
        chunks,
        pause: Duration::ZERO,
        hang: true,
    }])
    .await;
    let timeouts = LlmTimeouts {
        chunk_gap: Duration::from_millis(300),
        ..LlmTimeouts::default()
    };
    let client = client(&llm, LlmApi::OpenAiCompatible, timeouts);
    let conversation = vec![ConversationItem::User { text: "hi".into() }];
    let request = LlmRequest {
        system: "s",
        conversation: &conversation,
        tools: &[],
        max_tokens: 10,
    };

    let started = Instant::now();
    let mut stream = client.start(&request).await.unwrap();
    assert_eq!(
        stream.next_text().await.unwrap().as_deref(),
        Some("partial")
    );
    let error = stream.next_text().await.unwrap_err();
    assert!(matches!(error, LlmError::Stalled(_)), "{error:?}");
    assert!(error.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_retryable_connect_error() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = LlmConfig {
        api: LlmApi::OpenAiCompatible,
        base_url: format!("http://127.0.0.1:{port}/v1"),
        api_key: "k".into(),
        model: "m".into(),
        source: "test".into(),
    };
    let timeouts = LlmTimeouts::default();
    let client = LlmClient::new(LlmClient::http_client(&timeouts).unwrap(), config, timeouts);
    let conversation = vec![ConversationItem::User { text: "hi".into() }];
    let request = LlmRequest {
        system: "s",
        conversation: &conversation,
        tools: &[],
        max_tokens: 10,
    };
    let Err(error) = client.start(&request).await else {
        panic!("must fail")
    };
    assert!(matches!(error, LlmError::Connect { .. }), "{error:?}");
    assert!(error.is_retryable());
}
