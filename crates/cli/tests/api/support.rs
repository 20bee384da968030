//! Test harness: a real tweestap on a loopback port, with its own data directory,
//! fresh database and a clock the test moves.

use chrono::{TimeZone, Utc};
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};
use std::sync::Arc;
use tweestap::config::Config;
use tweestap_domain::account::Role;
use tweestap_domain::clock::ManualClock;
use tweestap_domain::totp::TotpParams;

pub const PASSWORD: &str = "correct horse battery";

/// The database a test runs on; every test runs once on each.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A fresh SQLite file in the test's data directory.
    Sqlite,
    /// A fresh PostgreSQL database made for this test.
    Postgres(String),
}

/// Writes `#[tokio::test]`s named `<test>::sqlite` and `<test>::postgres` for each
/// `async fn <test>(backend: Backend)`. The PostgreSQL one gets its own new database,
/// dropped afterwards; without PostgreSQL it skips loudly (fails under
/// TWEESTAP_REQUIRE_ALL=1).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(url) = tweestap_store::testing::fresh_postgres_database().await else {
                    return;
                };
                super::$name($crate::support::Backend::Postgres(url.clone())).await;
                tweestap_store::testing::drop_database(&url).await;
            }
        }
    )+};
}

pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    pub clock: ManualClock,
    pub server: Option<tweestap::Server>,
    pub url: String,
}

impl TestApp {
    pub async fn start(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        // Mid-step, so a test's "current code" is not about to roll over.
        let clock = ManualClock::new(
            Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 10)
                .single()
                .expect("time"),
        );
        let mut app = Self {
            dir,
            backend,
            clock,
            server: None,
            url: String::new(),
        };
        app.boot().await;
        app
    }

    pub fn config(&self) -> Config {
        Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: self.dir.path().to_owned(),
            database_url: match &self.backend {
                Backend::Sqlite => String::new(),
                Backend::Postgres(url) => url.clone(),
            },
            ..Config::default()
        }
    }

    /// (Re)starts the server on the same data directory.
    pub async fn boot(&mut self) {
        let server = tweestap::spawn(&self.config(), Arc::new(self.clock.clone()))
            .await
            .expect("server starts");
        self.url = server.url();
        self.server = Some(server);
    }

    pub fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
    }

    pub async fn restart(&mut self) {
        self.stop();
        self.boot().await;
    }

    pub async fn add_user(&self, email: &str) {
        let app = &self.server.as_ref().expect("running").app;
        app.add_account(email, "Test Gebruiker", Role::User, PASSWORD)
            .await
            .expect("account");
    }

    pub fn client(&self) -> Client {
        Client {
            base: self.url.clone(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent("tweestap-tests/1.0")
                .build()
                .expect("client"),
        }
    }

    pub fn code(&self, secret_b32: &str) -> String {
        let key = data_encoding::BASE32_NOPAD
            .decode(secret_b32.as_bytes())
            .expect("base32");
        TotpParams::default().code_at(&key, self.clock_now())
    }

    pub fn clock_now(&self) -> i64 {
        use tweestap_domain::clock::Clock;
        self.clock.now().timestamp()
    }

    pub fn next_step(&self) {
        self.clock.advance(chrono::Duration::seconds(30));
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Client {
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("request");
        reply(r).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        reply(
            self.http
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    pub async fn delete(&self, path: &str, body: Value) -> Reply {
        reply(
            self.http
                .delete(format!("{}{path}", self.base))
                .json(&body)
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    pub async fn raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        reply(r).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/api/v1/login",
            json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Signs in (no factor yet) and sets up an authenticator app; returns its secret.
    pub async fn enroll(&self, app: &TestApp, email: &str) -> (String, String) {
        assert_eq!(
            self.login(email, PASSWORD).await.body["state"],
            "authenticated"
        );
        let r = self
            .post("/api/v1/me/factors/totp", json!({ "password": PASSWORD }))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let secret = r.body["secret"].as_str().expect("secret").to_owned();
        let id = r.body["id"].as_str().expect("id").to_owned();
        let c = self
            .post(
                &format!("/api/v1/me/factors/totp/{id}/confirm"),
                json!({ "code": app.code(&secret) }),
            )
            .await;
        assert_eq!(c.status, 200, "{:?}", c.body);
        (id, secret)
    }
}

async fn reply(r: reqwest::Response) -> Reply {
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply { status, body }
}
