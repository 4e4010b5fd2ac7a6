//! GitHub and Google sign-in (authorization code with PKCE).

use worker::{Env, Request, Response};

use crate::api_error::{ApiError, ApiResult};
use crate::config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Github,
    Google,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Github => "GITHUB",
            Kind::Google => "GOOGLE",
        }
    }
}

/// Whether the provider's OAuth app is configured.
pub fn configured(env: &Env, kind: Kind) -> bool {
    config::var(env, &format!("{}_CLIENT_ID", kind.prefix())).is_some()
        && config::var(env, &format!("{}_CLIENT_SECRET", kind.prefix())).is_some()
}

pub async fn login(req: &Request, env: &Env, kind: Kind) -> ApiResult<Response> {
    let _ = (req, env, kind);
    Err(ApiError::not_found(
        "this sign-in provider is not configured",
    ))
}

pub async fn callback(req: &Request, env: &Env, kind: Kind) -> Response {
    let _ = (req, env, kind);
    Response::redirect_with_status(
        worker::Url::parse("http://localhost/signin?error=oauth_failed").expect("a valid URL"),
        302,
    )
    .unwrap_or_else(|_| Response::empty().expect("an empty response"))
}
