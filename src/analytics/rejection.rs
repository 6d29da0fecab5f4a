//! Why an event was not accepted. Its own module, below both the event parser and the
//! property schemas, so that neither imports the other for it.

/// A reason an event was not accepted: a stable code (for metrics) and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EventError {
    pub code: &'static str,
    pub message: String,
}

impl EventError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        EventError {
            code,
            message: message.into(),
        }
    }
}
