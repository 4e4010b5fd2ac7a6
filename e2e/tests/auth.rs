//! Sign-in on the real Worker under `wrangler dev`: the development sign-in and its
//! refusal on a deployed Worker, the session cookie (attributes, hashed storage,
//! sign-out), CSRF, the first user becoming admin, invites (use limit, expiry,
//! revocation), the sign-in policy, and API tokens with enforced scopes. The GitHub
//! and Google flows run against the fake providers of `e2e/src/fake_oauth.rs`.

use nightshift_e2e::client::{Credentials, session_cookie_of};
use nightshift_e2e::oauth_browser::Browser;
use nightshift_e2e::stack::{Stack, StackOptions, files_containing, with_logs};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[tokio::test]
async fn dev_sign_in_cookie_csrf_invites_and_sign_out() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    with_logs(&stack, async {
        let anonymous = stack.api();
        // Nothing under /api answers without sign-in, except health.
        for (method, path) in [
            (Method::GET, "/api/me"),
            (Method::GET, "/api/sessions"),
            (Method::POST, "/api/sessions"),
        ] {
            let answer = anonymous.raw(method, path, Some("{}")).await?;
            assert_eq!(answer.status, 401, "{path}");
            assert_eq!(answer.error_code(), Some("unauthenticated"), "{path}");
        }
        assert_eq!(
            anonymous
                .raw(Method::GET, "/api/health", None)
                .await?
                .status,
            200
        );
        let providers = anonymous.raw(Method::GET, "/auth/providers", None).await?;
        assert_eq!(
            providers.body,
            json!({"github": false, "google": false, "dev": true})
        );

        // The dev sign-in answers with the user and an HttpOnly, SameSite=Lax cookie
        // (not Secure on localhost), whose hash alone is stored.
        let response = reqwest::Client::new()
            .post(anonymous.url("/auth/dev/login"))
            .json(&json!({"email": "Alice@Example.com", "name": "Alice"}))
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 200);
        let set_cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
        assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
        assert!(set_cookie.contains("Path=/"), "{set_cookie}");
        assert!(!set_cookie.contains("Secure"), "{set_cookie}");
        let cookie = session_cookie_of(response.headers()).expect("ns_session");
        let body: Value = response.json().await?;
        assert_eq!(body["user"]["role"], "admin", "the first user is admin");
        assert_eq!(body["user"]["email"], "alice@example.com");
        let stored = stack.d1("SELECT token_hash FROM auth_sessions").await?;
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0]["token_hash"], sha256_hex(&cookie));
        assert_ne!(stored[0]["token_hash"], cookie);

        let alice = stack
            .api()
            .dev_sign_in("alice@example.com", "Alice", None)
            .await?;
        let me: Value = alice.expect(Method::GET, "/api/me", None, 200).await?;
        assert_eq!(me["user"]["name"], "Alice");
        assert_eq!(me["team"]["id"], "default");
        let Credentials::Cookie { session, csrf } = alice.credentials().clone() else {
            panic!("a cookie client");
        };
        assert!(!csrf.is_empty());

        // A state change with the cookie but without the right CSRF token is refused
        // and changes nothing.
        for token in ["", "wrong"] {
            let forged = alice.with_credentials(Credentials::Cookie {
                session: session.clone(),
                csrf: token.to_string(),
            });
            let answer = forged
                .raw(Method::POST, "/api/sessions", Some("{}"))
                .await?;
            assert_eq!(answer.status, 403, "csrf {token:?}");
            assert_eq!(answer.error_code(), Some("csrf_failed"));
            // Reads need no token.
            assert_eq!(
                forged.raw(Method::GET, "/api/sessions", None).await?.status,
                200
            );
        }
        assert!(alice.sessions().await?.is_empty());
        alice.create_session().await?;

        // Invite-only by default: a stranger is refused, an invitee gets in once.
        let refused = stack
            .api()
            .dev_sign_in("bob@example.com", "Bob", None)
            .await;
        assert!(
            format!("{:?}", refused.err()).contains("signin_not_allowed"),
            "strangers are refused"
        );
        let invite: Value = alice
            .expect(
                Method::POST,
                "/api/admin/invites",
                Some(&json!({"role": "member", "expires_in_hours": 24, "max_uses": 1}).to_string()),
                201,
            )
            .await?;
        let token = invite["token"].as_str().unwrap().to_string();
        assert!(
            invite["url"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/invite/{token}"))
        );
        let bob = stack
            .api()
            .dev_sign_in("bob@example.com", "Bob", Some(&token))
            .await?;
        let bob_me: Value = bob.expect(Method::GET, "/api/me", None, 200).await?;
        assert_eq!(bob_me["user"]["role"], "member");
        // Used up.
        let again = stack
            .api()
            .dev_sign_in("carol@example.com", "Carol", Some(&token))
            .await;
        assert!(format!("{:?}", again.err()).contains("invite_invalid"));
        // A member is no admin.
        let answer = bob.raw(Method::GET, "/api/admin/members", None).await?;
        assert_eq!(
            (answer.status, answer.error_code()),
            (403, Some("forbidden"))
        );

        // An expired invite and a revoked one are refused.
        let create = json!({"role": "member", "expires_in_hours": 1, "max_uses": 5}).to_string();
        let expiring: Value = alice
            .expect(Method::POST, "/api/admin/invites", Some(&create), 201)
            .await?;
        stack
            .d1(&format!(
                "UPDATE invites SET expires_at = 1 WHERE id = '{}'",
                expiring["id"].as_str().unwrap()
            ))
            .await?;
        let expired = stack
            .api()
            .dev_sign_in("carol@example.com", "Carol", expiring["token"].as_str())
            .await;
        assert!(format!("{:?}", expired.err()).contains("invite_invalid"));
        let revoked: Value = alice
            .expect(Method::POST, "/api/admin/invites", Some(&create), 201)
            .await?;
        let answer = alice
            .raw(
                Method::DELETE,
                &format!("/api/admin/invites/{}", revoked["id"].as_str().unwrap()),
                None,
            )
            .await?;
        assert_eq!(answer.status, 204);
        let refused = stack
            .api()
            .dev_sign_in("carol@example.com", "Carol", revoked["token"].as_str())
            .await;
        assert!(format!("{:?}", refused.err()).contains("invite_invalid"));

        // The domain policy lets that domain in.
        let policy = json!({"signin_policy": "domain", "allowed_domain": "corp.example"});
        alice
            .expect::<Value>(
                Method::PUT,
                "/api/admin/settings",
                Some(&policy.to_string()),
                200,
            )
            .await?;
        stack
            .api()
            .dev_sign_in("dan@corp.example", "Dan", None)
            .await?;
        assert!(
            stack
                .api()
                .dev_sign_in("eve@else.example", "Eve", None)
                .await
                .is_err()
        );

        // Sign-out deletes the server-side session: the old cookie stops working.
        let response = reqwest::Client::new()
            .post(alice.url("/auth/logout"))
            .header("cookie", format!("ns_session={session}"))
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 204);
        let cleared = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
        let answer = alice.raw(Method::GET, "/api/me", None).await?;
        assert_eq!(
            (answer.status, answer.error_code()),
            (401, Some("unauthenticated"))
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn api_tokens_are_shown_once_stored_hashed_scoped_and_revocable() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    with_logs(&stack, async {
        let alice = stack.signed_in_api("alice@example.com").await?;
        let session = alice.create_session().await?;
        let create = |scopes: Value| json!({"name": "ci", "scopes": scopes}).to_string();
        let read: Value = alice
            .expect(
                Method::POST,
                "/api/tokens",
                Some(&create(json!(["read"]))),
                201,
            )
            .await?;
        let read_token = read["token"].as_str().unwrap().to_string();
        assert!(read_token.starts_with("ns_"));
        let listed: Value = alice.expect(Method::GET, "/api/tokens", None, 200).await?;
        assert_eq!(listed[0]["scopes"], json!(["read"]));
        assert!(!listed.to_string().contains(&read_token), "shown only once");
        let stored = stack.d1("SELECT token_hash FROM api_tokens").await?;
        assert_eq!(stored[0]["token_hash"], sha256_hex(&read_token));

        // A read-only token reads, but cannot prompt (and needs no CSRF token).
        let reader = stack
            .api()
            .with_credentials(Credentials::Bearer(read_token.clone()));
        assert_eq!(reader.session(&session.id).await?.id, session.id);
        let body = json!({"content": "hi"}).to_string();
        let path = format!("/api/sessions/{}/messages", session.id);
        let answer = reader.raw(Method::POST, &path, Some(&body)).await?;
        assert_eq!(
            (answer.status, answer.error_code()),
            (403, Some("insufficient_scope"))
        );
        assert!(
            alice.messages(&session.id).await?.is_empty(),
            "nothing was queued"
        );

        let write: Value = alice
            .expect(
                Method::POST,
                "/api/tokens",
                Some(&create(json!(["read", "write"]))),
                201,
            )
            .await?;
        let writer = stack
            .api()
            .with_credentials(Credentials::Bearer(write["token"].as_str().unwrap().into()));
        assert_eq!(
            writer.raw(Method::POST, &path, Some(&body)).await?.status,
            202
        );

        // Revoked: refused from then on.
        let answer = alice
            .raw(
                Method::DELETE,
                &format!("/api/tokens/{}", read["id"].as_str().unwrap()),
                None,
            )
            .await?;
        assert_eq!(answer.status, 204);
        let answer = reader.raw(Method::GET, "/api/sessions", None).await?;
        assert_eq!(
            (answer.status, answer.error_code()),
            (401, Some("unauthenticated"))
        );
        let garbage = stack
            .api()
            .with_credentials(Credentials::Bearer("ns_nope".into()));
        assert_eq!(garbage.raw(Method::GET, "/api/me", None).await?.status, 401);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_deployed_worker_refuses_the_dev_sign_in() {
    let stack = Stack::start(StackOptions {
        worker_vars: vec![("DEV_AUTH".into(), "false".into())],
        ..StackOptions::default()
    })
    .await
    .unwrap();
    with_logs(&stack, async {
        let api = stack.api();
        let answer = api
            .raw(
                Method::POST,
                "/auth/dev/login",
                Some(&json!({"email": "alice@example.com", "name": "Alice"}).to_string()),
            )
            .await?;
        assert_eq!(
            (answer.status, answer.error_code()),
            (404, Some("dev_auth_disabled"))
        );
        let providers = api.raw(Method::GET, "/auth/providers", None).await?;
        assert_eq!(providers.body["dev"], false);
        assert!(
            stack
                .d1("SELECT user_id FROM memberships")
                .await?
                .is_empty()
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn llm_keys_are_encrypted_never_answered_and_used_by_turns() {
    use nightshift_e2e::scripted_llm::ScriptedLlm;
    // The environment's LLM and a second endpoint only a stored key points at.
    let environment_llm = ScriptedLlm::start().await.unwrap();
    let keyed_llm = ScriptedLlm::start().await.unwrap();
    let stack = Stack::start(StackOptions {
        llm_base_url: Some(environment_llm.base_url()),
        ..StackOptions::default()
    })
    .await
    .unwrap();
    with_logs(&stack, async {
        let alice = stack.signed_in_api("alice@example.com").await?;
        let bob = stack.signed_in_member(&alice, "bob@example.com").await?;
        let secret = "sk-user-secret-value-7788";
        let create = json!({
            "scope": "user", "provider": "openai_compatible", "api_key": secret,
            "base_url": keyed_llm.base_url(), "models": ["keyed-model"], "name": "mine"
        });
        let answer = alice
            .raw(Method::POST, "/api/keys", Some(&create.to_string()))
            .await?;
        assert_eq!(answer.status, 201, "{}", answer.body);
        assert_eq!(answer.body["last4"], "7788");
        assert!(
            !answer.body.to_string().contains(secret),
            "never answered back"
        );
        let listed = alice.raw(Method::GET, "/api/keys", None).await?;
        assert_eq!(listed.body.as_array().map(Vec::len), Some(1));
        assert!(!listed.body.to_string().contains(secret));
        // Another member does not see it; a member cannot store a team key.
        let theirs = bob.raw(Method::GET, "/api/keys", None).await?;
        assert_eq!(theirs.body, json!([]));
        let mut team = create.clone();
        team["scope"] = json!("team");
        let answer = bob
            .raw(Method::POST, "/api/keys", Some(&team.to_string()))
            .await?;
        assert_eq!(
            (answer.status, answer.error_code()),
            (403, Some("forbidden"))
        );
        let bad =
            json!({"scope": "user", "provider": "openai_compatible", "api_key": "sk-123456789"});
        let answer = alice
            .raw(Method::POST, "/api/keys", Some(&bad.to_string()))
            .await?;
        assert_eq!(
            answer.status, 400,
            "an OpenAI-compatible key needs a URL and models"
        );

        // The key's model is offered, and a turn with it uses the key, decrypted,
        // against the key's endpoint; the session says whose key it was.
        let models: Value = alice.expect(Method::GET, "/api/models", None, 200).await?;
        let keyed = models
            .as_array()
            .and_then(|all| all.iter().find(|m| m["id"] == "keyed-model"))
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("the key's model is not listed: {models}"))?;
        assert_eq!(keyed["source"], "user");
        let session = alice
            .create_session_with(json!({"model": "keyed-model"}))
            .await?;
        alice.wait_status(&session.id, "idle").await?;
        alice.send(&session.id, "hello keyed").await?;
        alice.wait_settled(&session.id).await?;
        assert_eq!(keyed_llm.authorizations(), vec![format!("Bearer {secret}")]);
        assert_eq!(keyed_llm.requests()[0]["model"], "keyed-model");
        let session = alice.session(&session.id).await?;
        assert_eq!(session.llm_source.map(|s| s.as_str()), Some("user"));
        // Bob's session with the default model uses the environment.
        let other = bob.create_session().await?;
        bob.wait_status(&other.id, "idle").await?;
        bob.send(&other.id, "hello environment").await?;
        bob.wait_settled(&other.id).await?;
        assert_eq!(
            bob.session(&other.id).await?.llm_source.map(|s| s.as_str()),
            Some("environment")
        );
        assert_eq!(keyed_llm.authorizations().len(), 1);

        // Nowhere in the Worker's state (D1, Durable Objects) is the key in plaintext.
        let leaks = files_containing(stack.dir.path(), secret.as_bytes());
        let leaks: Vec<_> = leaks
            .into_iter()
            .filter(|path| {
                // The runner of the keyed session holds it in its config: that is
                // where it must go, and only there.
                !path.to_string_lossy().contains("backend-data")
            })
            .collect();
        assert!(leaks.is_empty(), "plaintext key in {leaks:?}");

        let id = listed.body[0]["id"].as_str().unwrap().to_string();
        let answer = bob
            .raw(Method::DELETE, &format!("/api/keys/{id}"), None)
            .await?;
        assert_eq!(answer.status, 404, "someone else's key is invisible");
        let answer = alice
            .raw(Method::DELETE, &format!("/api/keys/{id}"), None)
            .await?;
        assert_eq!(answer.status, 204);
        assert_eq!(
            alice.raw(Method::GET, "/api/keys", None).await?.body,
            json!([])
        );

        // A turn uses the key of the user who prompted it: a collaborator with a key
        // of their own prompting Alice's session uses theirs, one without uses the
        // team's key.
        let bob_secret = "sk-bob-secret-value-3344";
        let team_secret = "sk-team-secret-value-5566";
        let mut bobs = create.clone();
        bobs["api_key"] = json!(bob_secret);
        let answer = bob
            .raw(Method::POST, "/api/keys", Some(&bobs.to_string()))
            .await?;
        assert_eq!(answer.status, 201, "{}", answer.body);
        let carol = stack.signed_in_member(&alice, "carol@example.com").await?;
        let mut ids = Vec::new();
        for api in [&alice, &bob, &carol] {
            let me: Value = api.expect(Method::GET, "/api/me", None, 200).await?;
            ids.push(me["user"]["id"].as_str().unwrap_or_default().to_string());
        }
        for user_id in &ids[1..] {
            alice
                .expect::<Value>(
                    Method::PUT,
                    &format!("/api/sessions/{}/shares/{user_id}", session.id),
                    Some(&json!({"role": "collaborator"}).to_string()),
                    200,
                )
                .await?;
        }
        bob.send(&session.id, "hello from bob").await?;
        alice.wait_settled(&session.id).await?;
        assert_eq!(
            keyed_llm.authorizations().last(),
            Some(&format!("Bearer {bob_secret}")),
            "the collaborator's own key"
        );
        let session_now = alice.session(&session.id).await?;
        assert_eq!(session_now.llm_source.map(|s| s.as_str()), Some("user"));

        team["api_key"] = json!(team_secret);
        let answer = alice
            .raw(Method::POST, "/api/keys", Some(&team.to_string()))
            .await?;
        assert_eq!(answer.status, 201, "{}", answer.body);
        carol.send(&session.id, "hello from carol").await?;
        let messages = alice.wait_settled(&session.id).await?;
        assert_eq!(
            keyed_llm.authorizations().last(),
            Some(&format!("Bearer {team_secret}")),
            "a collaborator without a key falls back to the team's"
        );
        let session_now = alice.session(&session.id).await?;
        assert_eq!(session_now.llm_source.map(|s| s.as_str()), Some("team"));
        assert_eq!(keyed_llm.authorizations().len(), 3);
        // Each message says who sent it.
        let senders: Vec<_> = messages.iter().map(|m| m.sent_by.clone()).collect();
        assert_eq!(
            senders,
            ids.iter().cloned().map(Some).collect::<Vec<_>>(),
            "{messages:#?}"
        );
        for secret in [bob_secret, team_secret] {
            let leaks: Vec<_> = files_containing(stack.dir.path(), secret.as_bytes())
                .into_iter()
                .filter(|path| !path.to_string_lossy().contains("backend-data"))
                .collect();
            assert!(leaks.is_empty(), "plaintext key in {leaks:?}");
        }
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn github_and_google_sign_in_run_the_whole_flow_and_refuse_what_they_must() {
    use nightshift_e2e::fake_oauth::{FakeOauth, FakeUser};
    let fake = FakeOauth::start().await.unwrap();
    let setup_code = "setup-7b1f0c9e2d4a";
    let mut worker_vars = fake.worker_vars();
    worker_vars.push(("SETUP_CODE".into(), setup_code.into()));
    let stack = Stack::start(StackOptions {
        worker_vars,
        ..StackOptions::default()
    })
    .await
    .unwrap();
    with_logs(&stack, async {
        let worker = stack.worker_url();
        let providers = stack
            .api()
            .raw(Method::GET, "/auth/providers", None)
            .await?;
        assert_eq!(
            providers.body,
            json!({"github": true, "google": true, "dev": true})
        );

        // Whoever arrives first is not admin by that alone: without the operator's
        // setup code (or ADMIN_EMAILS) the empty team admits nobody, and a wrong code
        // is no better.
        for login in [
            "/auth/github/login".to_string(),
            "/auth/github/login?invite=setup-wrong".to_string(),
        ] {
            fake.sign_in_as(FakeUser::verified("100", "mallory@example.com", "Mallory"));
            let mut mallory = Browser::new();
            let callback = mallory.start_flow(&worker, &login).await?;
            let landed = mallory.finish(&callback).await?;
            assert_eq!(landed, "/signin?error=setup_required", "{login}");
            assert!(!mallory.cookies.contains_key("ns_session"), "{login}");
        }
        // The first person through GitHub with the setup code becomes admin and lands
        // where they started.
        fake.sign_in_as(FakeUser::verified("101", "alice@example.com", "Alice A."));
        let mut alice = Browser::new();
        let callback = alice
            .start_flow(
                &worker,
                &format!("/auth/github/login?redirect=/sessions/abc&invite={setup_code}"),
            )
            .await?;
        let asked = fake.authorize_requests().pop().unwrap();
        assert_eq!(asked["code_challenge_method"], "S256");
        assert_eq!(asked["scope"], "read:user user:email");
        assert_eq!(
            asked["redirect_uri"],
            format!("{worker}/auth/github/callback")
        );
        assert!(asked["state"].len() >= 16);
        assert_eq!(alice.finish(&callback).await?, "/sessions/abc");
        let session = alice.cookies.get("ns_session").cloned().expect("signed in");
        assert!(
            !alice.cookies.contains_key("ns_oauth"),
            "the flow cookie is cleared"
        );
        let api = stack.api().with_credentials(Credentials::Cookie {
            session,
            csrf: String::new(),
        });
        let me: Value = api.expect(Method::GET, "/api/me", None, 200).await?;
        assert_eq!(me["user"]["role"], "admin");
        assert_eq!(me["user"]["email"], "alice@example.com");
        assert_eq!(me["user"]["name"], "Alice A.");
        let csrf = me["csrf_token"].as_str().unwrap().to_string();
        let admin = api.with_credentials(Credentials::Cookie {
            session: alice.cookies["ns_session"].clone(),
            csrf,
        });

        // A replayed callback (same state, same browser) is refused.
        assert_eq!(
            alice.finish(&callback).await?,
            "/signin?error=oauth_state_mismatch"
        );
        // A wrong state is refused.
        let mut eve = Browser::new();
        let callback = eve.start_flow(&worker, "/auth/github/login").await?;
        let mut forged = url::Url::parse(&callback)?;
        let code = forged
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        forged
            .query_pairs_mut()
            .clear()
            .append_pair("code", &code)
            .append_pair("state", "not-the-state");
        assert_eq!(
            eve.finish(forged.as_str()).await?,
            "/signin?error=oauth_state_mismatch"
        );
        // A state is bound to the browser that started the flow.
        let callback = eve.start_flow(&worker, "/auth/github/login").await?;
        let mut other_browser = Browser::new();
        assert_eq!(
            other_browser.finish(&callback).await?,
            "/signin?error=oauth_state_mismatch"
        );
        // An error returned by the provider.
        fake.deny_next();
        let mut denied = Browser::new();
        assert_eq!(
            denied.sign_in(&worker, "/auth/github/login").await?,
            "/signin?error=oauth_denied"
        );
        // An unverified primary email.
        fake.sign_in_as(FakeUser {
            email_verified: false,
            ..FakeUser::verified("102", "bob@example.com", "Bob")
        });
        assert_eq!(
            Browser::new()
                .sign_in(&worker, "/auth/github/login")
                .await?,
            "/signin?error=email_unverified"
        );
        // Verified, but the team is invite-only.
        fake.sign_in_as(FakeUser::verified("102", "bob@example.com", "Bob"));
        assert_eq!(
            Browser::new()
                .sign_in(&worker, "/auth/github/login")
                .await?,
            "/signin?error=signin_not_allowed"
        );
        // An expired invite.
        let create = json!({"role": "member", "expires_in_hours": 1, "max_uses": 1}).to_string();
        let expired: Value = admin
            .expect(Method::POST, "/api/admin/invites", Some(&create), 201)
            .await?;
        stack
            .d1(&format!(
                "UPDATE invites SET expires_at = 1 WHERE id = '{}'",
                expired["id"].as_str().unwrap()
            ))
            .await?;
        let start = format!(
            "/auth/github/login?invite={}",
            expired["token"].as_str().unwrap()
        );
        assert_eq!(
            Browser::new().sign_in(&worker, &start).await?,
            "/signin?error=invite_invalid"
        );
        // A good invite lets Bob in as a member.
        let invite: Value = admin
            .expect(Method::POST, "/api/admin/invites", Some(&create), 201)
            .await?;
        let start = format!(
            "/auth/github/login?invite={}",
            invite["token"].as_str().unwrap()
        );
        let mut bob = Browser::new();
        assert_eq!(bob.sign_in(&worker, &start).await?, "/");
        let members: Value = admin
            .expect(Method::GET, "/api/admin/members", None, 200)
            .await?;
        let roles: Vec<(String, String)> = members
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["email"].as_str().unwrap().into(),
                    m["role"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(
            roles,
            vec![
                ("alice@example.com".into(), "admin".into()),
                ("bob@example.com".into(), "member".into())
            ]
        );

        // Google: OpenID userinfo; an unverified email is refused, a verified invitee
        // gets in; Alice signing in with Google is the same account (same email).
        fake.sign_in_as(FakeUser {
            email_verified: false,
            ..FakeUser::verified("g-7", "carol@example.com", "Carol")
        });
        assert_eq!(
            Browser::new()
                .sign_in(&worker, "/auth/google/login")
                .await?,
            "/signin?error=email_unverified"
        );
        fake.sign_in_as(FakeUser::verified("g-7", "carol@example.com", "Carol"));
        let invite: Value = admin
            .expect(Method::POST, "/api/admin/invites", Some(&create), 201)
            .await?;
        let start = format!(
            "/auth/google/login?invite={}",
            invite["token"].as_str().unwrap()
        );
        assert_eq!(Browser::new().sign_in(&worker, &start).await?, "/");
        assert_eq!(
            fake.authorize_requests().pop().unwrap()["scope"],
            "openid email profile"
        );
        fake.sign_in_as(FakeUser::verified("g-8", "alice@example.com", "Alice G."));
        let mut alice_google = Browser::new();
        assert_eq!(
            alice_google.sign_in(&worker, "/auth/google/login").await?,
            "/"
        );
        let members: Value = admin
            .expect(Method::GET, "/api/admin/members", None, 200)
            .await?;
        assert_eq!(members.as_array().map(Vec::len), Some(3));
        Ok(())
    })
    .await;
}
