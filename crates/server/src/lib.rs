//! Wiring: configuration to a running server. The binary and the integration tests
//! both start tweestap through [`spawn`].

pub mod adapters;
pub mod allocator;
pub mod at_rest;
pub mod config;
mod http_server;
mod keys;
pub mod metrics;
pub mod private_files;

use crate::adapters::mail::{self, MailSetupError};
use crate::adapters::sms::{sms_outbox_dir, SmsGateway};
use crate::config::oidc::OidcConfigError;
use crate::config::sms::{GatewayKind, SmsConfigError};
use crate::config::{redact, Config};
use base64::Engine as _;
use chrono::Duration;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tweestap_domain::clock::Clock;
use tweestap_domain::lockout::throttle::PasswordThrottle;
use tweestap_domain::lockout::LockoutPolicy;
use tweestap_domain::password::{Argon2Settings, PasswordHasher, PasswordRules};
use tweestap_domain::secret_box::MasterKey;
use tweestap_domain::session::SessionPolicy;
use tweestap_domain::settings::Settings;
use tweestap_domain::store::Store;
use tweestap_domain::totp::TotpParams;
use tweestap_domain::Tweestap;
use tweestap_store::{PoolSettings, PostgresStore, SqliteStore};
use tweestap_web::WebSettings;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot prepare the data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("secret key: {0}")]
    Key(String),
    #[error("database: {0}")]
    Store(#[from] tweestap_domain::store::StoreError),
    #[error("unsupported database_url {0:?} (use sqlite:... or postgres://...)")]
    DatabaseUrl(String),
    #[error("password hashing: {0}")]
    Hash(#[from] tweestap_domain::password::HashError),
    #[error("mail: {0}")]
    Mail(#[from] MailSetupError),
    #[error("sms: {0}")]
    Sms(#[from] SmsConfigError),
    #[error(transparent)]
    Oidc(#[from] OidcConfigError),
    #[error("signing keys: {0}")]
    SigningKeys(tweestap_domain::Error),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
}

/// Which database a `database_url` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded default: `tweestap.db` in the data directory.
    DefaultSqlite,
    Sqlite(String),
    Postgres(String),
}

impl Database {
    pub fn from_url(url: &str) -> Result<Self, StartError> {
        let url = url.trim();
        if url.is_empty() {
            Ok(Self::DefaultSqlite)
        } else if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(url.to_owned()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else {
            Err(StartError::DatabaseUrl(redact(url)))
        }
    }
}

/// The database in words, password removed, for messages.
pub fn describe_database(config: &Config) -> String {
    match Database::from_url(&config.database_url) {
        Ok(Database::DefaultSqlite) => {
            format!("sqlite {}", config.data_dir.join("tweestap.db").display())
        }
        Ok(Database::Sqlite(u)) | Ok(Database::Postgres(u)) => redact(&u),
        Err(_) => redact(&config.database_url),
    }
}

pub fn pool_settings(config: &Config) -> PoolSettings {
    let d = &config.database;
    PoolSettings {
        max_connections: d.max_connections,
        min_connections: d.min_connections,
        acquire_timeout: std::time::Duration::from_secs(d.acquire_timeout_seconds),
        idle_timeout: (d.idle_timeout_seconds > 0)
            .then(|| std::time::Duration::from_secs(d.idle_timeout_seconds)),
        session_cache: (d.session_cache_seconds > 0)
            .then(|| std::time::Duration::from_secs(d.session_cache_seconds)),
    }
}

/// SQLite's pool: its own sizes (one writer anyway), the configured session
/// cache.
pub fn sqlite_pool_settings(config: &Config) -> PoolSettings {
    PoolSettings {
        session_cache: pool_settings(config).session_cache,
        ..SqliteStore::default_pool_settings()
    }
}

/// Opens the database named by the configuration (SQLite in the data dir by default).
pub async fn open_store(config: &Config, migrate: bool) -> Result<Arc<dyn Store>, StartError> {
    private_files::private_dir(&config.data_dir)
        .map_err(|e| StartError::DataDir(config.data_dir.display().to_string(), e))?;
    Ok(match Database::from_url(&config.database_url)? {
        Database::DefaultSqlite => {
            let file = config.data_dir.join("tweestap.db");
            let store =
                SqliteStore::open_with(&file, &sqlite_pool_settings(config), migrate).await?;
            // SQLite gives its -wal and -shm files the database file's mode.
            for f in [
                file.clone(),
                file.with_extension("db-wal"),
                file.with_extension("db-shm"),
            ] {
                private_files::make_private(&f)
                    .map_err(|e| StartError::DataDir(f.display().to_string(), e))?;
            }
            Arc::new(store)
        }
        Database::Sqlite(url) => Arc::new(
            SqliteStore::open_url_with(&url, &sqlite_pool_settings(config), migrate).await?,
        ),
        Database::Postgres(url) => {
            Arc::new(PostgresStore::connect(&url, &pool_settings(config), migrate).await?)
        }
    })
}

pub fn master_key(config: &Config) -> Result<MasterKey, StartError> {
    if !config.secret_key.is_empty() {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(config.secret_key.trim())
            .map_err(|e| StartError::Key(format!("secret_key is not base64: {e}")))?;
        return MasterKey::from_bytes(&raw).map_err(|e| StartError::Key(e.to_string()));
    }
    keys::load_or_create(&config.data_dir.join("secret.key")).map_err(StartError::Key)
}

/// The engine's settings; refuses a configuration with a value outside its range.
pub fn settings(config: &Config) -> Result<Settings, StartError> {
    config.validate()?;
    Ok(Settings {
        issuer: config.issuer.clone(),
        totp: TotpParams::default(),
        lockout: LockoutPolicy {
            max_failures: config.lockout.max_failures,
            base: Duration::seconds(config.lockout.base_seconds),
            max: Duration::seconds(config.lockout.max_seconds),
        },
        password_lockout: LockoutPolicy {
            max_failures: config.lockout.password_max_failures,
            base: Duration::seconds(config.lockout.password_base_seconds),
            max: Duration::seconds(config.lockout.password_max_seconds),
        },
        password_throttle: PasswordThrottle {
            account: LockoutPolicy {
                max_failures: config.lockout.password_account_max_failures,
                base: Duration::seconds(config.lockout.password_base_seconds),
                max: Duration::seconds(config.lockout.password_max_seconds),
            },
            address_budget: config.lockout.password_address_max_failures,
            address_window: Duration::hours(1),
        },
        sessions: SessionPolicy {
            idle: Duration::minutes(config.session.idle_timeout_minutes),
            absolute: Duration::hours(config.session.absolute_timeout_hours),
            second_factor: Duration::minutes(config.session.second_factor_timeout_minutes),
        },
        passwords: PasswordRules {
            min_length: config.password.min_length,
            max_length: config.password.max_length,
        },
        mail_retry: Default::default(),
        shared_mailboxes: tweestap_domain::shared_mailbox::SharedMailboxes::new(
            &config.policy.shared_mailboxes,
        ),
        two_factor: config.policy.two_factor_policy(),
        refuse_shared_mailboxes: config.policy.refuse_shared_mailboxes,
        remember_device: Duration::days(config.session.remember_device_days),
        sms: config.sms.policy(),
        enrollment_link_validity: chrono::Duration::days(i64::from(
            config.policy.enrollment_link_days,
        )),
        oidc: config.oidc.settings()?,
        console: config.console.settings(),
    })
}

/// Hashes computed at once: `max_concurrent_hashes`, or the number of cores.
pub fn hash_workers(config: &Config) -> usize {
    match config.password.max_concurrent_hashes {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
        n => n,
    }
}

/// The engine, ready for any front-end.
pub async fn engine(
    config: &Config,
    clock: Arc<dyn Clock>,
    migrate: bool,
) -> Result<(Arc<Tweestap>, MasterKey), StartError> {
    engine_observed(config, clock, migrate, None).await
}

/// [`engine`] counting into `metrics` (sign-in outcomes, SMS sends) when given.
pub async fn engine_observed(
    config: &Config,
    clock: Arc<dyn Clock>,
    migrate: bool,
    metrics: Option<Arc<metrics::Metrics>>,
) -> Result<(Arc<Tweestap>, MasterKey), StartError> {
    let settings = settings(config)?;
    let store = open_store(config, migrate).await?;
    let key = master_key(config)?;
    let p = &config.password;
    let workers = hash_workers(config);
    let hasher = PasswordHasher::new(
        Argon2Settings {
            memory_kib: p.argon2_memory_kib,
            iterations: p.argon2_iterations,
            parallelism: p.argon2_parallelism,
        },
        workers,
    )?
    .with_max_waiting(p.max_waiting_hashes);
    let gateway = SmsGateway::from_config(&config.sms, &config.data_dir)?;
    tracing::info!(gateway = %gateway.describe(), "SMS codes go out through this gateway");
    let secrets = at_rest::secret_box(&config.data_dir, &key).map_err(StartError::Key)?;
    let mut sms: Arc<dyn tweestap_domain::sms::SmsSender> = Arc::new(gateway);
    let mut app = Tweestap::new(store, clock, hasher, secrets, settings);
    if let Some(m) = metrics {
        sms = Arc::new(metrics::CountedSms {
            inner: sms,
            metrics: m.clone(),
        });
        app = app.with_observer(m);
    }
    let app = app.with_sms_sender(sms);
    // The policy the console stored wins over the configured one, for the server
    // and every command alike.
    if let Err(e) = app.load_policy().await {
        tracing::warn!(error = %e, "reading the stored policy failed; the configured one applies");
    }
    Ok((Arc::new(app), key))
}

/// A server running in the background.
pub struct Server {
    pub addr: SocketAddr,
    /// Where `/metrics` is served when `[metrics] listen` gives it an address.
    pub metrics_addr: Option<SocketAddr>,
    pub app: Arc<Tweestap>,
    task: tokio::task::JoinHandle<()>,
    /// The mail delivery worker and the session sweeper.
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and the background work at once (as a crash would).
    pub fn stop(self) {
        self.task.abort();
        for t in &self.background {
            t.abort();
        }
    }
}

/// Where links in mail point: `public_url`, or else this node's own address. Never
/// the request's Host header: anyone can send a reset request with a forged Host and
/// make the victim's mail link to their site. Also used by the command line.
pub fn links_base(config: &Config, addr: SocketAddr) -> String {
    let configured = config.public_url.trim().trim_end_matches('/');
    if !configured.is_empty() {
        return configured.to_owned();
    }
    if !addr.ip().is_loopback() {
        tracing::warn!(
            "public_url is not set: links in mail point to http://{addr}; set public_url to the address people use"
        );
    }
    if addr.ip().is_unspecified() {
        format!("http://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

/// The console's work on every node: the stored policy read every few seconds (so
/// a change made on another node applies here too), and every hour today's
/// roll-out counts, the reminder mails due (each stage claimed once in the
/// database, whichever node runs first) and the audit retention.
async fn run_console_tasks(app: Arc<tweestap_domain::Tweestap>) {
    let mut policy = tokio::time::interval(std::time::Duration::from_secs(5));
    let mut hourly = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = policy.tick() => {
                if let Err(e) = app.load_policy().await {
                    tracing::warn!(error = %e, "reading the stored policy failed");
                }
            }
            _ = hourly.tick() => {
                if let Err(e) = app.record_rollout_day().await {
                    tracing::warn!(error = %e, "recording the roll-out counts failed");
                }
                match app.send_reminders().await {
                    Ok(sent) if !sent.is_empty() => tracing::info!(sent = sent.len(), "reminder mails queued"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "sending reminders failed"),
                }
                if let Err(e) = app.prune_audit().await {
                    tracing::warn!(error = %e, "pruning the audit log failed");
                }
                crate::allocator::give_back_free_memory();
            }
        }
    }
}

/// Reads the at-rest key files every few seconds, so that this node seals under
/// the new key soon after `tweestap keys rotate-secret` starts (it opens with it at
/// once anyway: a value naming a key it lacks makes it read them).
async fn watch_at_rest_keys(secrets: tweestap_domain::secret_box::SecretBox) {
    let mut tick = tokio::time::interval(at_rest::POLL);
    loop {
        tick.tick().await;
        if let Err(e) = secrets.reload() {
            tracing::warn!(error = %e, "reading the at-rest keys failed");
        }
    }
}

/// Binds `config.listen` (port 0 picks a free one) and serves until dropped or stopped.
pub async fn spawn(config: &Config, clock: Arc<dyn Clock>) -> Result<Server, StartError> {
    let metrics = config.metrics.enabled.then(|| {
        Arc::new(metrics::Metrics::new(
            hash_workers(config),
            config.password.max_waiting_hashes,
        ))
    });
    let migrate = config.database.migrate_at_start;
    let (app, key) = engine_observed(config, clock, migrate, metrics.clone()).await?;
    app.ensure_signing_keys()
        .await
        .map_err(StartError::SigningKeys)?;
    let mailer = Arc::new(mail::Mailer::from_config(config, app.secrets().clone())?);
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError::Listen(config.listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Listen(config.listen, e))?;
    let issuer = links_base(config, addr);
    if let Err(e) = app.serve_passkeys_at(&issuer) {
        tracing::warn!(public_url = %issuer, error = %e, "passkeys are off: a relying party needs a host name (not an IP address) in public_url");
    }
    let web = WebSettings {
        secure_cookies: config.secure_cookies(),
        trust_forwarded_for: config.trust_forwarded_for,
        outbox: mailer.outbox(),
        sms_outbox: (config.sms.gateway == GatewayKind::Outbox)
            .then(|| sms_outbox_dir(&config.data_dir)),
        public_url: issuer.clone(),
        return_hosts: config.forward_auth.return_hosts.clone(),
        cookie_domain: Some(config.session.cookie_domain.trim().trim_start_matches('.'))
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
        time_zone: config.ui.zone()?,
        dutch: config.ui.dutch()?,
        outbox_page: config.dev_outbox_page()?,
    };
    let mut router = tweestap_web::router(app.clone(), &key, web);
    let limits = http_server::Limits {
        header_read_timeout: config.http.header_read_timeout(),
        body_read_timeout: config.http.body_read_timeout(),
        max_connections: config.http.max_connections,
    };
    let mut metrics_addr = None;
    let mut metrics_server = None;
    if let Some(m) = &metrics {
        router = router.layer(axum::middleware::from_fn_with_state(
            m.latency(),
            metrics::track,
        ));
        let scrape = metrics::router(m.clone(), app.clone());
        match config.metrics.listen {
            Some(at) => {
                let l = TcpListener::bind(at)
                    .await
                    .map_err(|e| StartError::Listen(at, e))?;
                metrics_addr = Some(l.local_addr().map_err(|e| StartError::Listen(at, e))?);
                tracing::info!(address = %at, "metrics at /metrics on their own address");
                metrics_server = Some(tokio::spawn(http_server::serve(
                    l,
                    scrape,
                    limits,
                    std::future::pending(),
                )));
            }
            None => {
                if !addr.ip().is_loopback() {
                    tracing::warn!(%addr, "metrics at /metrics on the main listener: keep them from the internet at the proxy, or give them [metrics] listen");
                }
                router = router.merge(scrape);
            }
        }
    }
    match mailer.outbox() {
        Some(dir) => tracing::info!(
            outbox = %dir.display(),
            "no smtp_url: mail is written to the outbox (see /dev/outbox from this machine)"
        ),
        None => tracing::info!(smtp = %redact(&config.mail.smtp_url), "mail goes out by SMTP"),
    }
    let purger = app.clone();
    let sweep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            tick.tick().await;
            if let Err(e) = purger.purge_expired_sessions().await {
                tracing::warn!(error = %e, "purging expired sessions failed");
            }
            if let Err(e) = purger.purge_spent().await {
                tracing::warn!(error = %e, "purging spent links and sent mail failed");
            }
            if let Err(e) = purger.purge_retired_signing_keys().await {
                tracing::warn!(error = %e, "purging retired signing keys failed");
            }
        }
    });
    let console = tokio::spawn(run_console_tasks(app.clone()));
    let key_watch = tokio::spawn(watch_at_rest_keys(app.secrets().clone()));
    let poll = std::time::Duration::from_secs(config.mail.poll_interval_seconds);
    let worker = tokio::spawn(mail::run_worker(app.clone(), mailer, poll));
    let issuer = issuer.trim_end_matches('/').to_owned();
    let logouts = tokio::spawn(crate::adapters::backchannel::run_worker(
        app.clone(),
        issuer,
        poll,
    ));
    let mut background = vec![
        console.abort_handle(),
        key_watch.abort_handle(),
        sweep.abort_handle(),
        worker.abort_handle(),
        logouts.abort_handle(),
    ];
    background.extend(metrics_server.as_ref().map(|t| t.abort_handle()));
    let task = tokio::spawn(async move {
        http_server::serve(listener, router, limits, shutdown_signal()).await;
        for t in &background {
            t.abort();
        }
    });
    let mut kept = vec![sweep, worker, key_watch];
    kept.extend(metrics_server);
    Ok(Server {
        addr,
        metrics_addr,
        app,
        task,
        background: kept,
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

impl Server {
    /// Waits until the server stops (SIGINT or SIGTERM).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_takes_the_configured_session_cache() {
        let mut config = Config::default();
        assert_eq!(
            sqlite_pool_settings(&config).session_cache,
            Some(std::time::Duration::from_secs(2))
        );
        config.database.session_cache_seconds = 0;
        assert_eq!(sqlite_pool_settings(&config).session_cache, None);
        assert_eq!(
            sqlite_pool_settings(&config).max_connections,
            SqliteStore::default_pool_settings().max_connections
        );
    }
}
