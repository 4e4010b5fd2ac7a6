//! The validation layer of the GitHub fakes: every exchange through a fake's GitHub
//! REST routes is checked against GitHub's OpenAPI description ([`super`]) as it
//! happens (its path and query parameters, its body; the status and body of the
//! answer). A request that breaks the description never reaches the handler (so it
//! changes no state); a response that breaks it is not delivered. Either way the
//! client gets a 500 naming the violation, the violation is printed and recorded in
//! the fake's [`Checker`], and the fake fails the test when it is dropped unless the
//! test took the violations it expected ([`Checker::take_violations`]).
//!
//! Which paths are GitHub REST is the fake's to say ([`Checker::new`]): the OAuth
//! web flow lives on github.com, outside the REST description, and the OAuth fake
//! also speaks Google's endpoints; those are checked by their handlers alone.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

type Corruption = Box<dyn FnOnce(&mut Value) + Send>;

/// One fake's record of violations, and the test hook that spoils an answer.
pub struct Checker {
    /// Whether a path is one of GitHub's REST operations (checked) or not.
    is_rest: fn(&str) -> bool,
    violations: Mutex<Vec<String>>,
    corrupt_next: Mutex<Option<Corruption>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Checker {
    pub fn new(is_rest: fn(&str) -> bool) -> Arc<Checker> {
        Arc::new(Checker {
            is_rest,
            violations: Mutex::new(Vec::new()),
            corrupt_next: Mutex::new(None),
        })
    }

    /// Takes the violations recorded so far (so the fake does not fail the test).
    pub fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut lock(&self.violations))
    }

    /// The next checked response's JSON body is altered before it is validated.
    pub fn corrupt_next_response(&self, change: impl FnOnce(&mut Value) + Send + 'static) {
        *lock(&self.corrupt_next) = Some(Box::new(change));
    }

    /// For the fakes' `Drop`: fails the test if violations were left untaken.
    pub fn fail_on_violations(&self, fake: &str) {
        let violations = self.take_violations();
        if !violations.is_empty() && !std::thread::panicking() {
            panic!(
                "the {fake} saw exchanges that break GitHub's OpenAPI description:\n{}",
                violations.join("\n")
            );
        }
    }

    fn refuse(&self, what: String) -> Response {
        eprintln!("GitHub OpenAPI check: {what}");
        lock(&self.violations).push(what.clone());
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({ "message": what })),
        )
            .into_response()
    }
}

const MAX_BODY: usize = 16 << 20;

fn parse(bytes: &[u8]) -> Result<Option<Value>, String> {
    if bytes.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|e| format!("the body is not JSON: {e}"))
}

/// The middleware: see the module comment.
pub async fn layer(State(checker): State<Arc<Checker>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if !(checker.is_rest)(&path) {
        return next.run(request).await;
    }
    let method = request.method().as_str().to_string();
    let place = format!("{method} {path}");
    let description = match super::description() {
        Ok(description) => description,
        Err(e) => return checker.refuse(format!("{place}: {e:#}")),
    };
    let Some((template, operation)) = description.operation(&method, &path) else {
        return checker.refuse(format!(
            "{place}: no such operation in GitHub's OpenAPI description"
        ));
    };
    let place = format!(
        "{place} ({template}, @octokit/openapi {})",
        description.version()
    );
    let query = request.uri().query().unwrap_or("").to_string();
    if let Err(e) = description.check_parameters(template, operation, &path, &query) {
        return checker.refuse(format!(
            "{place}: the request violates the description: {e}"
        ));
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return checker.refuse(format!("{place}: request body unreadable"));
    };
    let checked = parse(&bytes)
        .and_then(|body| description.check_request(template, operation, body.as_ref()));
    if let Err(e) = checked {
        return checker.refuse(format!(
            "{place}: the request violates the description: {e}"
        ));
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return checker.refuse(format!("{place}: response body unreadable"));
    };
    let mut body = match parse(&bytes) {
        Ok(body) => body,
        Err(e) => return checker.refuse(format!("{place}: the response: {e}")),
    };
    let corrupt = lock(&checker.corrupt_next).take();
    let bytes = match (corrupt, body.as_mut()) {
        (Some(corrupt), Some(value)) => {
            corrupt(value);
            parts.headers.remove(header::CONTENT_LENGTH);
            bytes::Bytes::from(value.to_string())
        }
        _ => bytes,
    };
    let status = parts.status.as_u16();
    if let Err(e) = description.check_response(template, operation, status, body.as_ref()) {
        return checker.refuse(format!(
            "{place}: the response violates the description: {e}"
        ));
    }
    Response::from_parts(parts, Body::from(bytes))
}
