//! [`Redacted`]: a secret that is sent and stored as its value but never printed.

use serde::{Deserialize, Serialize};

/// A secret (a key, a token, a password): serialized as its plain value, but its
/// `Debug` is `<redacted>`, so a struct holding one can derive `Debug` and still
/// never leak it into a log. Read it with [`Redacted::expose`], on purpose.
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Redacted<T>(T);

impl<T> Redacted<T> {
    pub const fn new(secret: T) -> Redacted<T> {
        Redacted(secret)
    }

    /// The secret itself.
    pub fn expose(&self) -> &T {
        &self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Redacted<T> {
    fn from(secret: T) -> Redacted<T> {
        Redacted(secret)
    }
}

impl From<&str> for Redacted<String> {
    fn from(secret: &str) -> Redacted<String> {
        Redacted(secret.to_owned())
    }
}

impl<T> std::fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct Holder {
        name: String,
        key: Redacted<String>,
    }

    #[test]
    fn a_secret_is_sent_as_itself_and_never_printed() {
        let holder = Holder {
            name: "k".into(),
            key: Redacted::new("sk-live-123".into()),
        };
        let json = serde_json::to_string(&holder).unwrap();
        assert_eq!(json, r#"{"name":"k","key":"sk-live-123"}"#);
        let back: Holder = serde_json::from_str(&json).unwrap();
        assert_eq!(back.key.expose(), "sk-live-123");
        let printed = format!("{holder:?} {holder:#?}");
        assert!(!printed.contains("sk-live"), "{printed}");
        assert!(printed.contains("<redacted>"));
    }
}
