//! What a provider answers when an operation fails. A leaf: every provider and the
//! layers above share it, and it depends on nothing of theirs ([`crate::error`] maps
//! each kind to the API's error codes).

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("invalid path: {0}")]
    InvalidPath(String),
    #[error("no such file in the workspace: {0}")]
    FileNotFound(String),
    #[error("not a regular file: {0}")]
    NotAFile(String),
    #[error("{0}")]
    Unavailable(String),
    /// The provider does not implement this operation (answered as a 400).
    #[error("{0}")]
    Unsupported(String),
    /// The request cannot be honoured by this provider (answered as a 400).
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl ProviderError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> ProviderError {
        ProviderError::Io {
            context: context.into(),
            source,
        }
    }

    /// The default answer of an operation a provider does not implement.
    pub fn unsupported(provider: &str, operation: &str) -> ProviderError {
        ProviderError::Unsupported(format!(
            "the {provider} provider does not support {operation}"
        ))
    }
}
