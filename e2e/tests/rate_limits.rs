//! Rate limits on the real Worker: sign-in writes are limited per client (by
//! `CF-Connecting-IP`) with 429 and the error envelope, and an API token's use is not
//! written to D1 on every request.

use std::time::Duration;

use nightshift_e2e::client::Credentials;
use nightshift_e2e::stack::{Stack, StackOptions, with_logs};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn sign_in_starts_are_rate_limited_per_client() {
    let stack = Stack::start(StackOptions {
        worker_vars: vec![("AUTH_RATE_LIMIT_PER_MINUTE".into(), "5".into())],
        ..StackOptions::default()
    })
    .await
    .unwrap();
    with_logs(&stack, async {
        let http = reqwest::Client::new();
        let login = |ip: &'static str, n: usize| {
            http.post(format!("{}/auth/dev/login", stack.worker_url()))
                .header("cf-connecting-ip", ip)
                .json(&json!({"email": format!("user{n}@example.com"), "name": "u"}))
                .send()
        };
        // The limit counts per fixed minute: start early in one, so that all the
        // tries below fall in the same window.
        let into_minute = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
            % 60_000;
        if into_minute > 40_000 {
            let left = u64::try_from(60_000 - into_minute).unwrap_or(0) + 200;
            tokio::time::sleep(std::time::Duration::from_millis(left)).await;
        }
        // Five tries in the window are answered (the first signs up, the rest are
        // refused by the invite-only policy)...
        for n in 0..5 {
            let answer = login("203.0.113.7", n).await?;
            assert_ne!(answer.status().as_u16(), 429, "try {n}");
        }
        // ...the sixth is refused with the envelope, and writes nothing.
        let users_before = stack.d1("SELECT id FROM users").await?.len();
        let answer = login("203.0.113.7", 99).await?;
        assert_eq!(answer.status().as_u16(), 429);
        assert!(answer.headers().get("set-cookie").is_none());
        let body: Value = answer.json().await?;
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
        let oauth = http
            .get(format!("{}/auth/github/login", stack.worker_url()))
            .header("cf-connecting-ip", "203.0.113.7")
            .send()
            .await?;
        assert_eq!(
            oauth.status().as_u16(),
            429,
            "an OAuth start is a sign-in write too"
        );
        assert_eq!(stack.d1("SELECT id FROM users").await?.len(), users_before);
        // Another client is not held back; reading the providers is not limited.
        let other = login("198.51.100.9", 100).await?;
        assert_ne!(other.status().as_u16(), 429);
        let providers = http
            .get(format!("{}/auth/providers", stack.worker_url()))
            .header("cf-connecting-ip", "203.0.113.7")
            .send()
            .await?;
        assert_eq!(providers.status().as_u16(), 200);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn an_api_token_is_not_written_to_d1_on_every_request() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    with_logs(&stack, async {
        let alice = stack.signed_in_api("alice@example.com").await?;
        let created: Value = alice
            .expect(
                Method::POST,
                "/api/tokens",
                Some(&json!({"name": "ci", "scopes": ["read"]}).to_string()),
                201,
            )
            .await?;
        let reader = stack.api().with_credentials(Credentials::Bearer(
            created["token"].as_str().unwrap_or_default().into(),
        ));
        let last_used = || async {
            let rows = stack.d1("SELECT last_used_at FROM api_tokens").await?;
            anyhow::Ok(rows[0]["last_used_at"].as_i64())
        };
        reader
            .expect::<Value>(Method::GET, "/api/me", None, 200)
            .await?;
        let first = last_used().await?;
        assert!(first.is_some(), "the first use is recorded");
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(30)).await;
            reader
                .expect::<Value>(Method::GET, "/api/sessions", None, 200)
                .await?;
        }
        assert_eq!(last_used().await?, first, "each use was written to D1");
        Ok(())
    })
    .await;
}
