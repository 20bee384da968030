//! What tweestap talks to outside itself: mail (SMTP or the outbox) and SMS (the
//! outbox or an HTTP gateway). They read their settings from `config`; nothing in
//! `config` knows them.

pub mod mail;
pub mod sms;
