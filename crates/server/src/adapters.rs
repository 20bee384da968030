//! What tweestap talks to outside itself: mail (SMTP or the outbox), SMS (the
//! outbox or an HTTP gateway) and the portals' back-channel logout URIs. They read their settings from `config`; nothing in
//! `config` knows them.

pub mod backchannel;
pub mod mail;
pub mod sms;
