//! A failed API call as the app shows it, read from the API's error envelope
//! (`{"error": {"code", "message"}}`) or made up when no envelope arrived.

use std::fmt;

use nightshift_protocol::ErrorBody;

/// A failed API call, ready to show to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The envelope's stable `code` (`message_too_large`, ...), when the API sent one.
    pub code: Option<String>,
    pub message: String,
    /// The HTTP status, or 0 when no answer arrived.
    pub status: u16,
}

impl ApiError {
    /// Reads the error envelope; an answer without one (a proxy's HTML page, say) still
    /// becomes a readable error.
    pub fn from_answer(status: u16, status_text: &str, text: &str) -> ApiError {
        if let Ok(envelope) = serde_json::from_str::<ErrorBody>(text) {
            return ApiError {
                code: Some(envelope.error.code.as_str().to_owned()),
                message: envelope.error.message,
                status,
            };
        }
        // A code this build does not know yet is still shown as it was sent.
        let loose: Option<(String, String)> = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|value| {
                let error = value.get("error")?;
                Some((
                    error.get("code")?.as_str()?.to_owned(),
                    error.get("message")?.as_str()?.to_owned(),
                ))
            });
        match loose {
            Some((code, message)) => ApiError {
                code: Some(code),
                message,
                status,
            },
            None => ApiError {
                code: None,
                message: format!("HTTP {status} {status_text}").trim().to_owned(),
                status,
            },
        }
    }

    pub fn network(message: impl Into<String>) -> Self {
        ApiError {
            code: None,
            message: message.into(),
            status: 0,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status == 404
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} ({code})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_gives_code_and_message() {
        let text =
            r#"{"error":{"code":"message_too_large","message":"prompt is over 65536 bytes"}}"#;
        let error = ApiError::from_answer(413, "Payload Too Large", text);
        assert_eq!(error.code.as_deref(), Some("message_too_large"));
        assert_eq!(error.status, 413);
        assert_eq!(
            error.to_string(),
            "prompt is over 65536 bytes (message_too_large)"
        );
    }

    #[test]
    fn an_unknown_code_is_kept_as_sent() {
        let text = r#"{"error":{"code":"quota_exceeded","message":"slow down"}}"#;
        let error = ApiError::from_answer(429, "", text);
        assert_eq!(error.code.as_deref(), Some("quota_exceeded"));
        assert_eq!(error.message, "slow down");
    }

    #[test]
    fn an_answer_without_an_envelope_names_the_status() {
        let error = ApiError::from_answer(502, "Bad Gateway", "<html>oops</html>");
        assert_eq!(error.code, None);
        assert_eq!(error.to_string(), "HTTP 502 Bad Gateway");
        assert!(ApiError::from_answer(404, "", "").is_not_found());
    }
}
