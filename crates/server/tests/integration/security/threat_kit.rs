//! What the tests of guessing, enumeration, resets, remembered devices and replays
//! share: two nodes on one database, people with an app or a phone, clients from
//! their own loopback address, the audit trail, mails and SMS of the shared outbox,
//! and forms as a browser sends them.

use crate::kit::sms::{nth_sms_in, sms_code_in, sms_files_in};
use crate::kit::{mails_in, nth_mail, Client, TestApp, PASSWORD};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use tweestap::config::oidc::ClientConfig;
use tweestap::config::Config;

/// Two nodes on one database, one secret key, one data directory (so one outbox)
/// and one clock. `b` is dropped first.
pub struct Nodes {
    pub b: TestApp,
    pub a: TestApp,
}

impl Nodes {
    /// Node `a` as `tweak` configures it, and node `b` beside it.
    pub async fn start(
        backend: crate::kit::Backend,
        tweak: impl Fn(&mut Config) + Send + Sync + 'static,
    ) -> Self {
        let tweak = Arc::new(tweak);
        let first = Arc::clone(&tweak);
        let a = TestApp::start_configured(backend, move |c| first(c)).await;
        let shared = match &a.backend {
            crate::kit::Backend::Sqlite => {
                format!("sqlite://{}", a.dir.path().join("tweestap.db").display())
            }
            crate::kit::Backend::Postgres(url) => url.clone(),
        };
        let data_dir = a.dir.path().to_owned();
        let mut b = TestApp {
            dir: tempfile::tempdir().expect("tempdir"),
            backend: a.backend.clone(),
            clock: a.clock.clone(),
            server: None,
            url: String::new(),
            smtp_url: String::new(),
            shared_database: Some(shared),
            tweak: Some(Arc::new(move |c: &mut Config| {
                tweak(c);
                c.data_dir = data_dir.clone();
            })),
        };
        b.boot().await;
        Self { b, a }
    }

    /// The `i`-th node of a round that alternates: `a`, `b`, `a`, ...
    pub fn node(&self, i: usize) -> &TestApp {
        if i.is_multiple_of(2) {
            &self.a
        } else {
            &self.b
        }
    }
}

/// A loopback address no other client of this test run has used (127.0.0.20 on),
/// so each attacker or person has throttles of their own.
pub fn fresh_address() -> u8 {
    static NEXT: AtomicU8 = AtomicU8::new(20);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    assert!(n < 250, "out of loopback addresses");
    n
}

/// A browser-like client (cookies, no redirects followed) of `app` from 127.0.0.`n`.
pub fn client_at(app: &TestApp, n: u8) -> Client {
    Client {
        base: app.url.clone(),
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
            .user_agent("tweestap-security/1.0")
            .build()
            .expect("client"),
    }
}

/// A client of `app` from an address of its own.
pub fn fresh_client(app: &TestApp) -> Client {
    client_at(app, fresh_address())
}

/// An account with an authenticator app (set up in a browser of its own); the
/// app's secret. The clock is on the next step, so its current code is unused.
pub async fn person_with_app(app: &TestApp, email: &str) -> String {
    app.add_user(email).await;
    let (_, secret) = fresh_client(app).enroll(app, email).await;
    app.next_step();
    secret
}

/// An account whose only second factor is a phone (`phone`, E.164), set up in a
/// browser of its own.
pub async fn person_with_phone(app: &TestApp, email: &str, phone: &str) {
    app.add_user(email).await;
    let c = fresh_client(app);
    assert_eq!(
        c.login(email, PASSWORD).await.body["state"],
        "authenticated"
    );
    let sent = sms_count(app);
    let r = c
        .post(
            "/api/v1/me/factors/sms",
            json!({ "phone": phone, "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let code = sms_code_after(app, sent).await;
    let r = c
        .post(
            &format!("/api/v1/me/factors/sms/{id}/confirm"),
            json!({ "code": code }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// A Belgian mobile number no other test of this run has used (SMS are limited
/// per number).
pub fn fresh_phone() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "+3247012{:04}",
        NEXT.fetch_add(1, Ordering::Relaxed) % 10_000
    )
}

/// SMS in the outbox so far.
pub fn sms_count(app: &TestApp) -> usize {
    sms_files_in(app.dir.path()).len()
}

/// The code of the first SMS after the `before` already in the outbox.
pub async fn sms_code_after(app: &TestApp, before: usize) -> String {
    sms_code_in(&nth_sms_in(app.dir.path(), before + 1).await)
}

/// The text of the first mail of `kind` after the `before` already in the outbox.
pub async fn mail_after(app: &TestApp, kind: &str, before: usize) -> String {
    nth_mail(app, kind, before + 1).await
}

/// Mails of `kind` in the outbox so far.
pub fn mail_count(app: &TestApp, kind: &str) -> usize {
    mails_in(app.dir.path(), kind)
}

/// The token of the link to `<base>/<prefix>/<token>` in a mail.
pub fn link_token(mail: &str, prefix: &str) -> String {
    let at = mail
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} link in the mail:\n{mail}"));
    mail[at + prefix.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// The details of `event` in `email`'s audit trail, newest first.
pub async fn audited(app: &TestApp, event: &str, email: &str) -> Vec<String> {
    app.engine()
        .audit_log(5_000, Some(email))
        .await
        .expect("audit")
        .into_iter()
        .filter(|r| r.event == event)
        .map(|r| r.detail.unwrap_or_default())
        .collect()
}

/// Six digits that are not a code of `secret` within the drift window now.
pub fn wrong_code(app: &TestApp, secret: Option<&str>, i: usize) -> String {
    let now = app.clock_now();
    let valid: Vec<String> = match secret {
        Some(s) => [-30, 0, 30]
            .iter()
            .map(|d| crate::kit::totp::code_at(s, now + d))
            .collect(),
        None => Vec::new(),
    };
    (0..)
        .map(|k| format!("{:06}", (i * 7_919 + k * 104_729 + 123_457) % 1_000_000))
        .find(|c| !valid.contains(c))
        .expect("a wrong code")
}

/// The fields a browser sends with the form of `html` that has an input named
/// `field` (hidden inputs and prefilled values, as they stand).
pub fn form_fields(html: &str, field: &str) -> Vec<(String, String)> {
    let needle = format!("name=\"{field}\"");
    let form = html
        .split("<form")
        .skip(1)
        .map(|f| f.split("</form>").next().unwrap_or_default())
        .find(|f| f.contains(&needle))
        .unwrap_or_else(|| panic!("no form with {field}:\n{html}"));
    let attr = |tag: &str, name: &str| {
        let pat = format!(" {name}=\"");
        tag.find(&pat).map(|at| {
            let rest = &tag[at + pat.len()..];
            rest[..rest.find('"').unwrap_or(rest.len())]
                .replace("&amp;", "&")
                .replace("&#x2f;", "/")
                .replace("&#x2F;", "/")
                .replace("&quot;", "\"")
        })
    };
    form.split("<input")
        .skip(1)
        .filter_map(|i| {
            let tag = format!(" {}", i.split('>').next().unwrap_or_default());
            let kind = attr(&tag, "type").unwrap_or_default();
            if kind == "checkbox" || kind == "submit" {
                return None;
            }
            Some((attr(&tag, "name")?, attr(&tag, "value").unwrap_or_default()))
        })
        .collect()
}

/// A portal that signs people in through tweestap (public, PKCE).
pub const PORTAL: &str = "portaal";
pub const CALLBACK: &str = "https://portaal.example/cb";
pub const VERIFIER: &str = "een-pkce-verifier-van-minstens-drieenveertig-tekens";

/// [`PORTAL`] for `[[oidc.clients]]`.
pub fn portal_client() -> ClientConfig {
    ClientConfig {
        id: PORTAL.into(),
        name: "Portaal".into(),
        redirect_uris: vec![CALLBACK.into()],
        public: true,
        ..Default::default()
    }
}

/// An authorization request of [`PORTAL`] on `app` for `scope` (PKCE with
/// [`VERIFIER`]), with `extra` (`&prompt=login`, ...) as it stands.
pub fn authorize_url(app: &TestApp, scope: &str, extra: &str) -> String {
    let enc = |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    format!(
        "{}/oidc/authorize?response_type=code&client_id={PORTAL}&redirect_uri={}&scope={}&state=s&nonce=n&code_challenge={}&code_challenge_method=S256{extra}",
        app.url,
        enc(CALLBACK),
        enc(scope),
        tweestap_domain::oidc::flow::s256(VERIFIER)
    )
}

/// Follows redirects from `url` in browser `c` until a page of `app` (its body) or
/// the portal (the URL it was sent to).
pub async fn follow(app: &TestApp, c: &Client, url: &str) -> Result<String, String> {
    let mut url = url.to_owned();
    for _ in 0..10 {
        if url.starts_with(CALLBACK) {
            return Err(url);
        }
        let r = c.http.get(&url).send().await.expect("get");
        let to = crate::kit::location(&r);
        if to.is_empty() {
            return Ok(r.text().await.expect("page"));
        }
        url = if to.starts_with('/') {
            format!("{}{to}", app.url)
        } else {
            to
        };
    }
    panic!("more than ten redirects, last {url}");
}

/// The QR link mailed to a new account without a second factor: its token.
pub async fn mailed_qr_link(app: &TestApp, email: &str) -> String {
    app.add_user(email).await;
    let c = fresh_client(app);
    assert_eq!(
        c.login(email, PASSWORD).await.body["state"],
        "authenticated"
    );
    let before = mail_count(app, "enrollment-link");
    let r = c
        .post(
            "/api/v1/me/enrollment-link",
            json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let mail = mail_after(app, "enrollment-link", before).await;
    link_token(&mail, "/enroll/")
}
