//! The app builder: a real tweestap on a loopback port, with its own data directory,
//! fresh database and a clock the test moves.

use super::client::Client;
use super::{totp, PASSWORD};
use serde_json::json;
use std::sync::Arc;
use tweestap::config::Config;
use tweestap_domain::account::Role;
use tweestap_domain::clock::ManualClock;

/// The database a test runs on; every test runs once on each.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A fresh SQLite file in the test's data directory.
    Sqlite,
    /// A fresh PostgreSQL database made for this test.
    Postgres(String),
}

impl Backend {
    /// `database_url` for the configuration: empty (SQLite in the data directory)
    /// or the PostgreSQL database's URL.
    pub fn database_url(&self) -> String {
        match self {
            Backend::Sqlite => String::new(),
            Backend::Postgres(url) => url.clone(),
        }
    }
}

pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    pub clock: ManualClock,
    pub server: Option<tweestap::Server>,
    pub url: String,
    /// `[mail] smtp_url`; empty: the outbox.
    pub smtp_url: String,
    /// Another node's database instead of this app's own (two nodes, one database).
    pub shared_database: Option<String>,
    /// Adjusts the configuration before every boot.
    #[allow(clippy::type_complexity)]
    pub tweak: Option<Arc<dyn Fn(&mut Config) + Send + Sync>>,
}

impl TestApp {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, String::new(), None).await
    }

    /// A node sending mail to `smtp_url` (empty: the outbox).
    pub async fn start_smtp(backend: Backend, smtp_url: String) -> Self {
        Self::start_with(backend, smtp_url, None).await
    }

    /// A second node on `other`'s database, with its own data directory and clock.
    pub async fn second_node(other: &TestApp, smtp_url: String) -> Self {
        let shared = match &other.backend {
            Backend::Sqlite => format!(
                "sqlite://{}",
                other.dir.path().join("tweestap.db").display()
            ),
            Backend::Postgres(url) => url.clone(),
        };
        Self::start_with(other.backend.clone(), smtp_url, Some(shared)).await
    }

    /// A node whose configuration `tweak` adjusts (e.g. the `[policy]`).
    pub async fn start_configured(
        backend: Backend,
        tweak: impl Fn(&mut Config) + Send + Sync + 'static,
    ) -> Self {
        let mut app = Self::unbooted(backend, String::new(), None);
        app.tweak = Some(Arc::new(tweak));
        app.boot().await;
        app
    }

    pub async fn start_with(
        backend: Backend,
        smtp_url: String,
        shared_database: Option<String>,
    ) -> Self {
        let mut app = Self::unbooted(backend, smtp_url, shared_database);
        app.boot().await;
        app
    }

    fn unbooted(backend: Backend, smtp_url: String, shared_database: Option<String>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = totp::test_clock();
        Self {
            dir,
            backend,
            clock,
            server: None,
            url: String::new(),
            smtp_url,
            shared_database,
            tweak: None,
        }
    }

    pub fn config(&self) -> Config {
        let mut c = self.base_config();
        if let Some(t) = &self.tweak {
            t(&mut c);
        }
        c
    }

    fn base_config(&self) -> Config {
        Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: self.dir.path().to_owned(),
            database_url: match (&self.shared_database, &self.backend) {
                (Some(shared), _) => shared.clone(),
                (None, Backend::Sqlite) => String::new(),
                (None, Backend::Postgres(url)) => url.clone(),
            },
            mail: tweestap::config::MailConfig {
                smtp_url: self.smtp_url.clone(),
                from: "Gemeente Tweestad <noreply@tweestad.example>".into(),
                organisation: "Gemeente Tweestad".into(),
                poll_interval_seconds: 1,
                ..Default::default()
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

    pub async fn add_admin(&self, email: &str) {
        self.engine()
            .add_account(email, "Test Beheerder", Role::Admin, PASSWORD)
            .await
            .expect("account");
    }

    pub fn engine(&self) -> &std::sync::Arc<tweestap_domain::Tweestap> {
        &self.server.as_ref().expect("running").app
    }

    /// Wakes the mail worker now instead of at its next poll (after moving the clock).
    pub fn wake_mail(&self) {
        self.engine().mail_wakeup().notify_one();
    }

    /// Messages per queue status.
    pub async fn mail_counts(&self) -> std::collections::BTreeMap<String, u64> {
        self.engine()
            .store()
            .mail_counts()
            .await
            .expect("counts")
            .into_iter()
            .collect()
    }

    pub fn client(&self) -> Client {
        self.client_in(None)
    }

    /// A client whose requests say `Accept-Language: <lang>`.
    pub fn client_in(&self, lang: Option<&str>) -> Client {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(l) = lang {
            headers.insert(reqwest::header::ACCEPT_LANGUAGE, l.parse().expect("header"));
        }
        Client {
            base: self.url.clone(),
            http: reqwest::Client::builder()
                .default_headers(headers)
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent("tweestap-tests/1.0")
                .build()
                .expect("client"),
        }
    }

    pub fn code(&self, secret_b32: &str) -> String {
        totp::code_at(secret_b32, self.clock_now())
    }

    pub fn clock_now(&self) -> i64 {
        use tweestap_domain::clock::Clock;
        self.clock.now().timestamp()
    }

    pub fn next_step(&self) {
        totp::next_step(&self.clock);
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
    }
}

// Here rather than in `client`, which then needs nothing of the app.
impl Client {
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

/// One text column of a query, read straight from the app's database (SQLite file
/// or PostgreSQL), to check what is stored at rest.
pub async fn stored_texts(app: &TestApp, sql: &str) -> Vec<String> {
    match &app.backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", app.dir.path().join("tweestap.db").display());
            let pool = sqlx::SqlitePool::connect(&url).await.expect("sqlite");
            let v = sqlx::query_scalar(sql)
                .fetch_all(&pool)
                .await
                .expect("query");
            pool.close().await;
            v
        }
        Backend::Postgres(url) => {
            let pool = sqlx::PgPool::connect(url).await.expect("postgres");
            let v = sqlx::query_scalar(sql)
                .fetch_all(&pool)
                .await
                .expect("query");
            pool.close().await;
            v
        }
    }
}
