//! The `tweestap` binary under test: started on one data directory, database and
//! port, killed with SIGKILL and started again; and the database it leaves, read
//! straight from the SQLite file or PostgreSQL.

use crate::kit::commands::{output, tweestap_in};
use crate::kit::Backend;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Small Argon2 parameters (the sign-ins are the load, not the hashing), mail to the
/// SMTP sink, its worker polling every second, and SMS limits and password
/// throttles no test client reaches (they all come from one address; a password
/// step killed before it answered keeps the attempts it took, by design, so over a
/// couple of hundred kills the address's default budget of 100 an hour fills up,
/// and an account's 10 in a row could).
fn config_toml(smtp_url: &str) -> String {
    format!(
        "[password]\nargon2_memory_kib = 1024\nargon2_iterations = 1\n\
         [lockout]\npassword_address_max_failures = 100000\npassword_max_failures = 1000\n\
         [mail]\nsmtp_url = \"{smtp_url}\"\npoll_interval_seconds = 1\n\
         from = \"Gemeente Tweestad <noreply@tweestad.example>\"\n\
         [sms]\nper_account_per_hour = 1000\nper_number_per_hour = 1000\n\
         per_ip_per_hour = 100000\nglobal_per_hour = 100000\n"
    )
}

/// The password hash the accounts are imported with: Argon2id at the configured
/// parameters, so the first sign-in has nothing to upgrade.
pub fn password_hash(password: &str) -> String {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher as _, SaltString};
    let params = argon2::Params::new(1024, 1, 1, None).expect("params");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .expect("argon2")
        .to_string()
}

/// One installation: its data directory, database, configuration and port, and
/// the process serving it now (if any).
pub struct Installation {
    pub data: PathBuf,
    config: PathBuf,
    backend: Backend,
    pub port: u16,
    child: Option<Child>,
    /// Everything every process wrote to stderr, for a failure's message.
    log: PathBuf,
    pub starts: u32,
}

impl Installation {
    pub fn new(dir: &Path, backend: Backend, smtp_url: &str) -> Self {
        let data = dir.join("data");
        let config = dir.join("tweestap.toml");
        std::fs::write(&config, config_toml(smtp_url)).expect("write the configuration");
        Self {
            data,
            config,
            backend,
            port: crate::kit::free_port(),
            child: None,
            log: dir.join("stderr.log"),
            starts: 0,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn command(&self) -> std::process::Command {
        let mut c = tweestap_in(&self.data);
        c.arg("--config").arg(&self.config);
        c.env("TWEESTAP_PUBLIC_URL", self.url())
            .env("TWEESTAP_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("TWEESTAP_LOG", "warn");
        if let Backend::Postgres(url) = &self.backend {
            c.env("TWEESTAP_DATABASE_URL", url);
        }
        c
    }

    /// `tweestap user import` of `csv` (run to completion).
    pub async fn import(&self, csv: &str) {
        let file = self.data.with_file_name("accounts.csv");
        std::fs::write(&file, csv).expect("write the CSV");
        let mut cmd = self.command();
        cmd.args(["user", "import"]).arg(&file);
        let out = output(cmd).await;
        assert!(out.status.success(), "{}", out.describe());
    }

    /// Starts `tweestap serve`; returns once it says it listens (or, with
    /// `wait: false`, at once: to be killed while it starts).
    pub async fn start(&mut self, wait: bool) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("stderr log");
        let mut cmd = Command::from(self.command());
        cmd.arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("start tweestap serve");
        self.starts += 1;
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut tx = Some(tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("listening on") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
            }
        });
        self.child = Some(child);
        if wait {
            let up = tokio::time::timeout(Duration::from_secs(30), rx).await;
            assert!(
                matches!(up, Ok(Ok(()))),
                "tweestap did not start (start {}); stderr:\n{}",
                self.starts,
                self.stderr()
            );
        }
    }

    /// SIGKILL, and reaped.
    pub async fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.start_kill().expect("SIGKILL");
        child.wait().await.expect("reaped");
    }

    /// SIGTERM, and waits until it exits.
    pub async fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        let pid = child.id().expect("pid").to_string();
        let sent = tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("kill -TERM");
        assert!(sent.success());
        let ended = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
        assert!(
            ended.is_ok(),
            "still running 20 s after SIGTERM; stderr:\n{}",
            self.stderr()
        );
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The database, for the test's own reads and writes.
    pub async fn database(&self) -> Db {
        match &self.backend {
            Backend::Sqlite => {
                let opts = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(self.data.join("tweestap.db"))
                    .busy_timeout(Duration::from_secs(10));
                let pool = sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(opts)
                    .await
                    .expect("sqlite");
                Db::Sqlite(pool)
            }
            Backend::Postgres(url) => Db::Postgres(sqlx::PgPool::connect(url).await.expect("pg")),
        }
    }
}

/// The installation's database as the test reads it.
pub enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Db {
    /// One text column (cast in the SQL: `CAST(x AS TEXT)`, `a || ' ' || b`).
    pub async fn texts(&self, sql: &str) -> Vec<String> {
        match self {
            Db::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await,
            Db::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn count(&self, sql: &str) -> i64 {
        match self {
            Db::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await,
            Db::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs a statement; the rows it changed.
    pub async fn run(&self, sql: &str) -> u64 {
        match self {
            Db::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|r| r.rows_affected()),
            Db::Postgres(p) => sqlx::query(sql).execute(p).await.map(|r| r.rows_affected()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn close(self) {
        match self {
            Db::Sqlite(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }
}

/// The claims a killed process held on queued mail, ended as if their lease (five
/// minutes) had run out — only while no process runs, so no live claim is touched.
/// Answers how many there were.
pub async fn expire_dead_claims(db: &Db) -> u64 {
    db.run(
        "UPDATE mail_queue SET locked_until = NULL \
         WHERE status = 'queued' AND locked_until IS NOT NULL",
    )
    .await
}

/// Waits until `check` holds, polling every 100 ms, or panics after `limit`.
pub async fn until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
