//! The test kit every test of this binary uses: the app builder ([`TestApp`]), the
//! [`on_both_backends!`](crate::on_both_backends) macro, an HTTP client for the API
//! and the pages, an SMTP sink, the mail and SMS outboxes, TOTP codes and commands
//! for the `tweestap` binary.

mod app;
mod client;
pub mod commands;
mod mail;
mod pages;
pub mod passkey;
pub mod sms;
mod smtp_sink;
pub mod totp;

pub use app::{stored_texts, Backend, TestApp};
pub use client::{Client, Reply};
pub use mail::{
    code_in, enroll_path_in, mails_in, nth_mail, nth_mail_in, nth_raw_mail_in, outbox, text_part,
};
pub use pages::{
    csrf_of, get, location, page, post_form, query_param, sign_in_through_pages, submit,
};
pub use smtp_sink::{Received, SinkTls, SmtpSink, SINK_CA_FILE};

/// The password of every account the tests make.
pub const PASSWORD: &str = "correct horse battery";

/// Writes `#[tokio::test]`s named `<test>::sqlite` and `<test>::postgres` for each
/// `async fn <test>(backend: Backend)`. The PostgreSQL one gets its own new database,
/// dropped when the test ends, also when it panics; without PostgreSQL it skips
/// loudly (fails under TWEESTAP_REQUIRE_ALL=1).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::kit::Backend::Sqlite).await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(database) = tweestap_testkit::TestDatabase::create().await else {
                    return;
                };
                super::$name($crate::kit::Backend::Postgres(database.url().to_owned())).await;
            }
        }
    )+};
}

/// The session cookie a response sets, as `tweestap_session=…` for a `Cookie`
/// header.
pub fn session_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tweestap_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

/// Polls `check` every 50 ms until it holds or `secs` seconds (real time) passed.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if check().await {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Says loudly that a test skips because `tool` is not installed (`hint`: how to
/// install it); under `TWEESTAP_REQUIRE_ALL=1` (CI) it fails the test instead.
pub fn skip_for_want_of(tool: &str, hint: &str) {
    if tweestap_testkit::require_all() {
        panic!("TWEESTAP_REQUIRE_ALL=1 but {tool} is not installed ({hint})");
    }
    eprintln!("\n!!!! SKIPPING: {tool} is not installed ({hint}) !!!!\n");
}

/// A port nothing listens on right now (for a child process to bind).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
