//! The threat: secrets leaking into what many people read or keep for long — the
//! server's log (collected, shipped, kept) and the audit log (in the database, and
//! exported as CSV for auditors). A whole journey runs with the log at debug level:
//! "secure your account now" with a mailed code, the app set up with its first
//! code, wrong passwords (one typed into the address field), sign-ins with the app,
//! by SMS and with a recovery code, a forgotten password and its link, a portal
//! signing in by OpenID Connect with its tokens, an administrator's step-up and the
//! audit export, and every other secret tweestap issues ([`issued`]: passkeys, a
//! remembered browser, the mailed QR link, an invitation, CSRF). Then neither log
//! may hold any password, key, code, link token, session token, cookie, passkey
//! challenge or answer, portal secret or token that was used.

mod issued;

use super::admin_console::admin;
use crate::kit::sms::{nth_sms_in, sms_code_in};
use crate::kit::{code_in, get, location, nth_mail, query_param, stored_texts, Backend, Client};
use crate::kit::{TestApp, PASSWORD};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use tweestap_domain::oidc::client::secret_hash;
use tweestap_domain::oidc::flow::s256;

const NEW_PASSWORD: &str = "a brand new sentence to remember";
const WRONG_PASSWORD: &str = "wrong horse battery staple";
/// A password typed into the address field.
const PASSWORD_AS_ADDRESS: &str = "Zomer2026!Tweestad";
const CLIENT_SECRET: &str = "geheim-van-het-loket-7f3a9c";
const VERIFIER: &str = "verifier-of-the-portal-dBjftJeZ4CVP-mB92K27uhbUJU1p1r";
const CB: &str = "https://loket.example/cb";
const PHONE: &str = "0470 12 34 56";

/// Everything the process logs, at debug level, from every thread.
fn captured() -> &'static Mutex<Vec<u8>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            // The test's own HTTP client is not the server.
            .with_env_filter("debug,reqwest=warn")
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        buf
    })
}

#[derive(Clone)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the journey used, to look for afterwards.
#[derive(Default)]
struct Used {
    /// Found anywhere they appear.
    secrets: Vec<(String, String)>,
    /// 6-digit codes: found as a word of their own (digits inside a hash or an id
    /// are not a code).
    codes: Vec<(String, String)>,
}

impl Used {
    fn secret(&mut self, what: &str, value: &str) {
        assert!(
            value.len() >= 8,
            "{what} is too short to look for: {value:?}"
        );
        self.secrets.push((what.to_owned(), value.to_owned()));
    }

    fn code(&mut self, what: &str, value: &str) {
        self.codes.push((what.to_owned(), value.to_owned()));
    }

    /// Every secret and code found in `text`, named.
    fn found_in(&self, text: &str) -> Vec<String> {
        let mut found: Vec<String> = self
            .secrets
            .iter()
            .filter(|(_, v)| text.contains(v.as_str()))
            .map(|(what, v)| format!("{what} ({v})"))
            .collect();
        found.extend(
            self.codes
                .iter()
                .filter(|(_, v)| as_word(text, v))
                .map(|(what, v)| format!("{what} ({v})")),
        );
        found
    }
}

/// Whether `word` occurs in `text` with no letter or digit right before or after.
fn as_word(text: &str, word: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    text.match_indices(word).any(|(at, _)| {
        !alnum(text[..at].chars().next_back()) && !alnum(text[at + word.len()..].chars().next())
    })
}

async fn app_with_portal(backend: Backend) -> TestApp {
    let hash = secret_hash(CLIENT_SECRET);
    TestApp::start_configured(backend, move |c| {
        c.oidc.clients = vec![tweestap::config::oidc::ClientConfig {
            id: "loket".into(),
            name: "Loket".into(),
            redirect_uris: vec![CB.into()],
            secret_hash: Some(hash.clone()),
            ..Default::default()
        }];
    })
    .await
}

/// The second step of a sign-in, which succeeds.
async fn second_factor(c: &Client, method: &str, code: &str) {
    let body = json!({ "method": method, "code": code });
    let r = c.post("/api/v1/login/second-factor", body).await;
    assert_eq!(r.status, 200, "{method}: {:?}", r.body);
}

/// Signs in with the app (in a new time step); the client.
async fn with_app(app: &TestApp, used: &mut Used, password: &str, secret: &str) -> Client {
    app.next_step();
    let c = app.client();
    assert_eq!(
        c.login("an@example.be", password).await.body["state"],
        "second_factor"
    );
    let code = app.code(secret);
    used.code("an app code", &code);
    second_factor(&c, "totp", &code).await;
    c
}

/// "Secure your account now": password, mailed code, the app and its first code.
/// The app's secret, with the recovery codes.
async fn secure_your_account(app: &TestApp, used: &mut Used) -> (String, Vec<String>) {
    let c = app.client();
    let start = json!({ "email": "an@example.be", "password": PASSWORD });
    assert_eq!(c.post("/api/v1/secure", start).await.status, 200);
    let code = code_in(&nth_mail(app, "email-code", 1).await);
    used.code("the mailed code", &code);
    let r = c.post("/api/v1/secure/code", json!({ "code": code })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = c.post("/api/v1/me/factors/totp", json!({})).await;
    let secret = r.body["secret"].as_str().expect("secret").to_owned();
    used.secret("the app's key", &secret.replace(' ', ""));
    used.secret("the app's key in groups", &secret);
    used.secret(
        "the otpauth URI",
        r.body["otpauth_uri"].as_str().expect("uri"),
    );
    let id = r.body["id"].as_str().expect("id");
    let first = app.code(&secret);
    used.code("the first code", &first);
    let confirm = format!("/api/v1/me/factors/totp/{id}/confirm");
    let r = c.post(&confirm, json!({ "code": first })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let recovery: Vec<String> =
        serde_json::from_value(r.body["recovery_codes"].clone()).expect("recovery codes");
    for code in &recovery {
        used.secret("a recovery code", code);
        used.secret("a recovery code without its dash", &code.replace('-', ""));
    }
    (secret, recovery)
}

/// A phone set up and used to sign in.
async fn sms(app: &TestApp, used: &mut Used, secret: &str) {
    let c = with_app(app, used, PASSWORD, secret).await;
    used.secret("the phone number", "+32470123456");
    used.secret("the phone number as typed", PHONE);
    let r = c
        .post(
            "/api/v1/me/factors/sms",
            json!({ "phone": PHONE, "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let code = sms_code_in(&nth_sms_in(app.dir.path(), 1).await);
    used.code("an SMS code", &code);
    let confirm = format!("/api/v1/me/factors/sms/{id}/confirm");
    assert_eq!(c.post(&confirm, json!({ "code": code })).await.status, 200);
    let d = app.client();
    d.login("an@example.be", PASSWORD).await;
    assert_eq!(d.post("/api/v1/login/sms", json!({})).await.status, 200);
    let code = sms_code_in(&nth_sms_in(app.dir.path(), 2).await);
    used.code("an SMS code", &code);
    second_factor(&d, "sms", &code).await;
}

/// The session token a sign-in sets, read from its cookie.
async fn session_token(app: &TestApp) -> String {
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/login", app.url))
        .json(&json!({ "email": "an@example.be", "password": NEW_PASSWORD }))
        .send()
        .await
        .expect("login");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("tweestap_session="))
        .expect("a session cookie");
    cookie.split(';').next().unwrap_or_default().to_owned()
}

/// A portal signs an in with the code flow and PKCE, and uses its tokens.
async fn portal(app: &TestApp, used: &mut Used, c: &Client) {
    used.secret("the portal's secret", CLIENT_SECRET);
    used.secret("the PKCE verifier", VERIFIER);
    let r: String = url::form_urlencoded::byte_serialize(CB.as_bytes()).collect();
    let authorize = format!(
        "/oidc/authorize?response_type=code&client_id=loket&redirect_uri={r}&scope=openid%20email%20offline_access&state=st-1&nonce=n-1&code_challenge={}&code_challenge_method=S256",
        s256(VERIFIER)
    );
    let back = location(&get(c, &authorize).await);
    let code = query_param(&back, "code").unwrap_or_else(|| panic!("a code: {back}"));
    used.secret("the authorization code", &code);
    let token = |form: Vec<(&'static str, String)>| async move {
        let r = reqwest::Client::new()
            .post(format!("{}/oidc/token", app.url))
            .basic_auth("loket", Some(CLIENT_SECRET))
            .form(&form)
            .send()
            .await
            .expect("token");
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.expect("json")
    };
    let t = token(vec![
        ("grant_type", "authorization_code".into()),
        ("code", code),
        ("redirect_uri", CB.into()),
        ("code_verifier", VERIFIER.into()),
    ])
    .await;
    let refresh = t["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    for name in ["access_token", "refresh_token", "id_token"] {
        used.secret(name, t[name].as_str().expect(name));
    }
    let id_token = t["id_token"].as_str().unwrap_or_default();
    used.secret(
        "the ID token's signature",
        id_token.rsplit('.').next().unwrap_or_default(),
    );
    let info = reqwest::Client::new()
        .get(format!("{}/oidc/userinfo", app.url))
        .bearer_auth(t["access_token"].as_str().unwrap_or_default())
        .send()
        .await
        .expect("userinfo");
    assert_eq!(info.status(), 200);
    let t = token(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", refresh),
    ])
    .await;
    for name in ["access_token", "refresh_token"] {
        used.secret(name, t[name].as_str().expect(name));
    }
}

async fn secrets_in_logs_and_the_audit_log(backend: Backend) {
    let log = captured();
    let app = app_with_portal(backend).await;
    let mut used = Used::default();
    used.secret("the password", PASSWORD);
    used.secret("the new password", NEW_PASSWORD);
    used.secret("a wrong password", WRONG_PASSWORD);
    used.secret("a password in the address field", PASSWORD_AS_ADDRESS);
    let key = std::fs::read_to_string(app.dir.path().join("secret.key")).expect("secret.key");
    used.secret("the master key", key.trim());

    app.add_user("an@example.be").await;
    let (secret, recovery) = secure_your_account(&app, &mut used).await;

    // Wrong passwords, one typed where the address goes.
    let c = app.client();
    assert_eq!(c.login("an@example.be", WRONG_PASSWORD).await.status, 401);
    assert_eq!(c.login(PASSWORD_AS_ADDRESS, PASSWORD).await.status, 401);
    let r = c
        .post(
            "/api/v1/secure",
            json!({ "email": PASSWORD_AS_ADDRESS, "password": WRONG_PASSWORD }),
        )
        .await;
    assert_eq!(r.status, 401);

    sms(&app, &mut used, &secret).await;
    let c = app.client();
    c.login("an@example.be", PASSWORD).await;
    second_factor(&c, "recovery_code", &recovery[0]).await;

    // A forgotten password: the link, a new password, the app still asked.
    let r = app
        .client()
        .post(
            "/api/v1/password/forgot",
            json!({ "email": "an@example.be" }),
        )
        .await;
    assert_eq!(r.status, 202);
    let mail = nth_mail(&app, "password-reset", 1).await;
    let prefix = format!("{}/password/reset/", app.url);
    let at = mail.find(&prefix).expect("a link") + prefix.len();
    let token = &mail[at..at + 43];
    used.secret("the reset link's token", token);
    let body = json!({ "token": token, "password": NEW_PASSWORD });
    let r = app.client().post("/api/v1/password/reset", body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let c = with_app(&app, &mut used, NEW_PASSWORD, &secret).await;
    used.secret("a session token", &session_token(&app).await);

    portal(&app, &mut used, &c).await;
    issued::passkey(&app, &mut used, &c).await;
    issued::remembered_browser(&app, &mut used, &secret).await;
    issued::csrf(&app, &mut used).await;

    // An administrator exports the audit log as CSV.
    let (admin, admin_secret) = admin(&app).await;
    used.secret("the administrator's app key", &admin_secret);
    issued::invitation(&app, &mut used, &admin).await;
    let (status, _, csv) = admin.get_csv("/api/v1/admin/audit").await;
    assert_eq!(status, 200);
    let (status, _, csv_all) = admin
        .get_csv("/api/v1/admin/audit?email=an%40example.be")
        .await;
    assert_eq!(status, 200);
    assert!(csv_all.contains("login_failed"), "{csv_all}");

    let stored = stored_texts(
        &app,
        "SELECT event || ' ' || COALESCE(email, '') || ' ' || COALESCE(ip, '') || ' ' || \
         COALESCE(user_agent, '') || ' ' || COALESCE(detail, '') FROM audit_log",
    )
    .await
    .join("\n");
    assert!(
        stored.contains("(not an address, 18 characters)"),
        "what is kept of the password in the address field:\n{stored}"
    );
    // Give the mail and SMS workers a moment to log what they did.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let logged = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    assert!(
        logged.contains("DEBUG") && logged.contains("mail sent"),
        "the log was captured at debug level:\n{logged}"
    );
    // The search finds what it looks for where it belongs: in the mail and the SMS.
    let named = |found: Vec<String>, what: &str| found.iter().any(|f| f.starts_with(what));
    assert!(
        named(used.found_in(&mail), "the reset link's token"),
        "{mail}"
    );
    let text = nth_sms_in(app.dir.path(), 2).await;
    assert!(named(used.found_in(&text), "an SMS code"), "{text}");
    for (place, text) in [
        ("the log", &logged),
        ("the audit log in the database", &stored),
        ("the audit log exported as CSV", &csv),
        ("an account's audit log exported as CSV", &csv_all),
    ] {
        let found = used.found_in(text);
        assert!(found.is_empty(), "{place} holds {found:?}:\n{text}");
    }
}

crate::on_both_backends!(secrets_in_logs_and_the_audit_log);

#[test]
fn codes_are_found_as_words_only() {
    assert!(as_word("code=123456 ok", "123456"));
    assert!(as_word("123456", "123456"));
    assert!(!as_word("ab123456cd", "123456"));
    assert!(!as_word("91234567", "123456"));
}
