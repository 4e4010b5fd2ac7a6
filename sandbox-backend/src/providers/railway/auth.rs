//! Railway's two kinds of token and how each is sent, as Railway's CLI and TypeScript
//! SDK send them: `RAILWAY_TOKEN` is a project token, sent in a
//! `project-access-token` header; `RAILWAY_API_TOKEN` is an account or workspace
//! token, sent as `Authorization: Bearer`. When both are set the project token wins
//! (the CLI's order). Railway refuses a token sent the other kind's way.

use nightshift_protocol::redacted::Redacted;

/// Which kind a token is, by the variable it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `RAILWAY_TOKEN`: one project's (and environment's) token.
    Project,
    /// `RAILWAY_API_TOKEN`: an account or workspace token.
    Account,
}

#[derive(Debug, Clone)]
pub struct RailwayToken {
    pub kind: TokenKind,
    pub value: Redacted<String>,
}

impl RailwayToken {
    /// The token from the settings, `None` when neither variable is set.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Option<RailwayToken> {
        let (kind, value) = match (get("RAILWAY_TOKEN"), get("RAILWAY_API_TOKEN")) {
            (Some(project), _) => (TokenKind::Project, project),
            (None, Some(account)) => (TokenKind::Account, account),
            (None, None) => return None,
        };
        Some(RailwayToken {
            kind,
            value: value.into(),
        })
    }

    /// The variable the token came from, for error messages.
    pub fn variable(&self) -> &'static str {
        match self.kind {
            TokenKind::Project => "RAILWAY_TOKEN",
            TokenKind::Account => "RAILWAY_API_TOKEN",
        }
    }

    /// The header that carries it: `(name, value)`.
    pub fn header(&self) -> (&'static str, String) {
        match self.kind {
            TokenKind::Project => ("project-access-token", self.value.expose().clone()),
            TokenKind::Account => ("authorization", format!("Bearer {}", self.value.expose())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(pairs: &[(&str, &str)]) -> Option<RailwayToken> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        RailwayToken::from_lookup(|name| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        })
    }

    #[test]
    fn a_project_token_goes_in_its_own_header() {
        let project = token(&[("RAILWAY_TOKEN", "p-1")]).unwrap();
        assert_eq!(project.header(), ("project-access-token", "p-1".into()));
        assert_eq!(project.variable(), "RAILWAY_TOKEN");
    }

    #[test]
    fn an_account_token_is_a_bearer_token() {
        let account = token(&[("RAILWAY_API_TOKEN", "a-1")]).unwrap();
        assert_eq!(account.header(), ("authorization", "Bearer a-1".into()));
        assert_eq!(account.variable(), "RAILWAY_API_TOKEN");
    }

    #[test]
    fn the_project_token_wins_when_both_are_set_as_in_the_cli() {
        let both = token(&[("RAILWAY_TOKEN", "p-1"), ("RAILWAY_API_TOKEN", "a-1")]).unwrap();
        assert_eq!(both.kind, TokenKind::Project);
        assert!(token(&[]).is_none());
        assert!(!format!("{both:?}").contains("p-1"));
    }
}
