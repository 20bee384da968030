//! SMS as a second factor, the pure parts: phone numbers ([`PhoneNumber`]), the
//! pumping protection ([`SmsPolicy`]), and the message a gateway sends
//! ([`SmsSender`]). Nothing here sends or counts anything.

mod gateway;
mod phone;
mod policy;

pub use gateway::{SmsMessage, SmsOutcome, SmsSender};
pub use phone::{is_known_region, PhoneError, PhoneNumber};
pub use policy::{SentLastHour, SmsPolicy, SmsRefusal, SmsSend};

/// How long an SMS code works.
pub fn sms_code_validity() -> chrono::Duration {
    chrono::Duration::minutes(5)
}

/// Wrong guesses an SMS code survives.
pub const SMS_CODE_TRIES: u32 = 5;

/// SMS per half-finished sign-in or set-up (the first one included).
pub const SMS_SENDS_PER_SESSION: u32 = 3;
