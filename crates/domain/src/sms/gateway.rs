//! What a gateway is given and what it answers: one message, its outcome, and the
//! sender trait the binary implements (outbox, HTTP, Twilio).

use super::phone::PhoneNumber;
use std::fmt;
use uuid::Uuid;

/// One SMS for a gateway. `id` is ours: the outbox file name, the reference given
/// to providers that take one, and the key in logs and the audit log.
///
/// Its `Debug` leaves the text out (it holds a code).
#[derive(Clone, PartialEq, Eq)]
pub struct SmsMessage {
    pub to: PhoneNumber,
    pub text: String,
    pub id: Uuid,
}

impl SmsMessage {
    pub fn new(to: PhoneNumber, text: impl Into<String>) -> Self {
        Self {
            to,
            text: text.into(),
            id: Uuid::new_v4(),
        }
    }
}

impl fmt::Debug for SmsMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsMessage")
            .field("to", &self.to)
            .field(
                "text",
                &format_args!("<{} chars>", self.text.chars().count()),
            )
            .field("id", &self.id)
            .finish()
    }
}

/// What became of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsOutcome {
    /// The gateway took it; `provider_id` is its reference when it gave one.
    Sent { provider_id: Option<String> },
    /// Not sent, as far as we know.
    ///
    /// - `retryable`: trying again later may work and cannot send twice (the
    ///   gateway was unreachable, busy, or answered 5xx/429).
    /// - `ambiguous`: the request reached the gateway but no answer came back; the
    ///   SMS may or may not have gone out, so an automatic retry could send twice.
    /// - `error`: for logs; never contains the text.
    Failed {
        retryable: bool,
        ambiguous: bool,
        error: String,
    },
}

impl SmsOutcome {
    pub fn is_sent(&self) -> bool {
        matches!(self, Self::Sent { .. })
    }
}

/// Sends SMS; the binary supplies the gateway (outbox, HTTP, Twilio).
#[async_trait::async_trait]
pub trait SmsSender: Send + Sync + 'static {
    async fn send(&self, msg: &SmsMessage) -> SmsOutcome;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_never_shows_its_text_in_debug() {
        let m = SmsMessage::new(
            PhoneNumber::parse("0470 12 34 56", "BE").unwrap(),
            "Je code is 123456",
        );
        let debug = format!("{m:?}");
        assert!(!debug.contains("123456"), "{debug}");
        assert!(!debug.contains("470123456"), "{debug}");
        assert!(debug.contains(&m.id.to_string()));
        assert!(SmsOutcome::Sent { provider_id: None }.is_sent());
        assert!(!SmsOutcome::Failed {
            retryable: true,
            ambiguous: false,
            error: "x".into()
        }
        .is_sent());
    }
}
