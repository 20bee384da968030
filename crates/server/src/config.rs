//! Configuration: embedded defaults, an optional TOML file, then environment
//! variables and flags. Every key is documented in `docs/configuration.md`.

pub mod console;
pub mod dev;
pub mod http;
pub mod metrics;
pub mod oidc;
pub mod sms;
pub mod ui;
mod validate;

use chrono::NaiveDate;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tweestap_domain::policy::{RoleOverride, TwoFactorMode, TwoFactorPolicy, TwoFactorRule};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Empty: SQLite file `tweestap.db` in the data directory.
    pub database_url: String,
    /// The address people use, e.g. `https://login.example.org`; https turns on Secure cookies.
    pub public_url: String,
    /// The name authenticator apps show next to the code.
    pub issuer: String,
    /// Base64 of 32 random bytes. Empty: generated into `<data_dir>/secret.key` on first run.
    pub secret_key: String,
    /// Take client addresses from X-Forwarded-For (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    pub password: PasswordConfig,
    pub session: SessionConfig,
    pub lockout: LockoutConfig,
    pub database: DatabaseConfig,
    pub mail: MailConfig,
    pub policy: PolicyConfig,
    /// SMS codes: the gateway and the pumping protection (`[sms]`).
    pub sms: sms::SmsConfig,
    /// Forward-auth for portals behind a reverse proxy (`[forward_auth]`).
    pub forward_auth: ForwardAuthConfig,
    /// The OpenID Connect provider: key retention and clients (`[oidc]`).
    pub oidc: oidc::OidcConfig,
    /// How pages and mails read: the time zone of dates, which Dutch (`[ui]`).
    pub ui: ui::UiConfig,
    /// The roll-out console (`[console]`).
    pub console: console::ConsoleConfig,
    /// Header and body read timeouts and the connection cap (`[http]`).
    pub http: http::HttpConfig,
    /// The developer pages (`[dev]`).
    pub dev: dev::DevConfig,
    /// The Prometheus endpoint (`[metrics]`), off by default.
    pub metrics: metrics::MetricsConfig,
}

/// Connection pool and migrations; `database_url` itself stays at the top level.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Connections each node keeps open at most (PostgreSQL: a quarter more for
    /// the throttles' lazy writes, and one to listen; mind `max_connections` of
    /// the server divided by the number of nodes).
    pub max_connections: u32,
    pub min_connections: u32,
    /// How long a request waits for a connection before it is answered 503.
    pub acquire_timeout_seconds: u64,
    /// Close connections idle this long (0: never).
    pub idle_timeout_seconds: u64,
    /// Serve a session looked up in the last this many seconds again while no
    /// write anywhere could have changed it (0: read it every time).
    pub session_cache_seconds: u64,
    /// Apply pending migrations when the server starts. Turn off on nodes when
    /// `tweestap migrate` is run once per release instead.
    pub migrate_at_start: bool,
}

/// Outgoing mail: security notices (and later set-up codes and resets).
/// Who must use two-step verification, and how shared mailboxes are treated.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Local parts (before the `@`) that name a shared mailbox such as info@.
    pub shared_mailboxes: Vec<String>,
    /// Refuse setting up two-step verification on a shared mailbox until an admin
    /// has turned it into a personal address.
    pub refuse_shared_mailboxes: bool,
    /// `off` (never asked, set-up still allowed), `optional` or `required`.
    pub two_factor: TwoFactorMode,
    /// `YYYY-MM-DD`: from midnight UTC of this day on two-step verification is
    /// required (also with `optional`).
    pub required_from: Option<NaiveDate>,
    /// Per-role overrides: `[policy.roles.admin]`, `[policy.roles.support]`, `[policy.roles.user]`.
    pub roles: RolePolicies,
    /// Days a mailed link to the personal QR page works (My Profile, support reset).
    pub enrollment_link_days: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolePolicies {
    pub user: RolePolicyConfig,
    pub support: RolePolicyConfig,
    pub admin: RolePolicyConfig,
}

/// Unset keys fall back to the general `[policy]` ones.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolePolicyConfig {
    pub two_factor: Option<TwoFactorMode>,
    pub required_from: Option<NaiveDate>,
}

impl PolicyConfig {
    pub fn two_factor_policy(&self) -> TwoFactorPolicy {
        let o = |r: &RolePolicyConfig| RoleOverride {
            mode: r.two_factor,
            required_from: r.required_from,
        };
        TwoFactorPolicy {
            general: TwoFactorRule {
                mode: self.two_factor,
                required_from: self.required_from,
            },
            user: o(&self.roles.user),
            support: o(&self.roles.support),
            admin: o(&self.roles.admin),
        }
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            two_factor: TwoFactorMode::Optional,
            required_from: None,
            roles: RolePolicies::default(),
            refuse_shared_mailboxes: false,
            enrollment_link_days: 5,
            shared_mailboxes: tweestap_domain::shared_mailbox::DEFAULT_SHARED_LOCAL_PARTS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// Where to send, as `smtp://user:pass@host:587?tls=required` (STARTTLS),
    /// `smtps://host:465` (implicit TLS) or `smtp://127.0.0.1:2525` (plain). Empty:
    /// every message is written to `<data_dir>/outbox/` instead.
    pub smtp_url: String,
    /// Extra PEM root certificate(s) trusted for the SMTP server's TLS, next to the
    /// Mozilla roots (an internal relay with a private CA). Checked at start.
    pub smtp_ca_file: Option<PathBuf>,
    /// The sender, e.g. `Gemeente Tweestad <noreply@tweestad.be>`.
    pub from: String,
    /// The organisation named in every mail.
    pub organisation: String,
    /// How often a node looks for due mail queued by other nodes or due for a retry
    /// (mail queued on the node itself goes out at once).
    pub poll_interval_seconds: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_url: String::new(),
            smtp_ca_file: None,
            from: "tweestap <noreply@localhost>".into(),
            organisation: "tweestap".into(),
            poll_interval_seconds: 5,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordConfig {
    pub min_length: usize,
    pub max_length: usize,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Hashes computed at once; 0 means the number of CPU cores.
    pub max_concurrent_hashes: usize,
    /// Password checks that may wait for a place to hash; further ones are
    /// answered 503 with `Retry-After` at once.
    pub max_waiting_hashes: usize,
}

/// `[forward_auth]`: which portals a sign-in may send the browser back to.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardAuthConfig {
    /// Host names (no scheme, no port) of the portals behind forward-auth; a
    /// return URL to any other host is ignored.
    pub return_hosts: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    pub idle_timeout_minutes: i64,
    pub absolute_timeout_hours: i64,
    pub second_factor_timeout_minutes: i64,
    /// Days a browser with "remember this device" skips the code step (1–90).
    pub remember_device_days: i64,
    /// `Domain` of the session cookie (e.g. `example.org`) so that portals on sibling
    /// hosts share the sign-in through forward-auth; empty: this host only.
    pub cookie_domain: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockoutConfig {
    pub max_failures: u32,
    pub base_seconds: i64,
    pub max_seconds: i64,
    /// Consecutive wrong passwords for one account from one client address (or one
    /// remembered browser, one session) before that is throttled.
    pub password_max_failures: u32,
    pub password_base_seconds: i64,
    pub password_max_seconds: i64,
    /// Consecutive wrong passwords for one account from many addresses (each
    /// counting until its own throttle starts) before the account is throttled for
    /// every browser without a remembered device or session of it.
    pub password_account_max_failures: u32,
    /// Wrong passwords one client address may give per hour, over every account.
    pub password_address_max_failures: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: String::new(),
            public_url: String::new(),
            issuer: "tweestap".into(),
            secret_key: String::new(),
            trust_forwarded_for: false,
            password: PasswordConfig::default(),
            session: SessionConfig::default(),
            lockout: LockoutConfig::default(),
            database: DatabaseConfig::default(),
            mail: MailConfig::default(),
            policy: PolicyConfig::default(),
            sms: sms::SmsConfig::default(),
            forward_auth: ForwardAuthConfig::default(),
            oidc: oidc::OidcConfig::default(),
            ui: ui::UiConfig::default(),
            console: console::ConsoleConfig::default(),
            http: http::HttpConfig::default(),
            dev: dev::DevConfig::default(),
            metrics: metrics::MetricsConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 0,
            acquire_timeout_seconds: 5,
            idle_timeout_seconds: 600,
            session_cache_seconds: 2,
            migrate_at_start: true,
        }
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 256,
            argon2_memory_kib: 19456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            max_concurrent_hashes: 0,
            max_waiting_hashes: 32,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout_minutes: 30,
            absolute_timeout_hours: 12,
            second_factor_timeout_minutes: 10,
            remember_device_days: 7,
            cookie_domain: String::new(),
        }
    }
}

impl Default for LockoutConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            base_seconds: 60,
            max_seconds: 3600,
            password_max_failures: 10,
            password_base_seconds: 30,
            password_max_seconds: 900,
            password_account_max_failures: 100,
            password_address_max_failures: 100,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration in {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid value for {name}: {value:?}")]
    Env { name: &'static str, value: String },
    /// A value outside its range ([`Config::validate`]).
    #[error("{key} must be {rule}, got {got}")]
    Invalid {
        key: &'static str,
        rule: String,
        got: String,
    },
    #[error(transparent)]
    Sms(#[from] sms::SmsConfigError),
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

impl Config {
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// `TWEESTAP_*` environment variables override the file.
    pub fn apply_env(&mut self) -> Result<(), ConfigError> {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        if let Some(v) = var("TWEESTAP_LISTEN") {
            self.listen = v.parse().map_err(|_| ConfigError::Env {
                name: "TWEESTAP_LISTEN",
                value: v,
            })?;
        }
        if let Some(v) = var("TWEESTAP_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = var("TWEESTAP_DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = var("TWEESTAP_MIGRATE_AT_START") {
            self.database.migrate_at_start = match v.as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                _ => {
                    return Err(ConfigError::Env {
                        name: "TWEESTAP_MIGRATE_AT_START",
                        value: v,
                    })
                }
            };
        }
        if let Some(v) = var("TWEESTAP_SMTP_URL") {
            self.mail.smtp_url = v;
        }
        if let Some(v) = var("TWEESTAP_SMTP_CA_FILE") {
            self.mail.smtp_ca_file = Some(v.into());
        }
        if let Some(v) = var("TWEESTAP_PUBLIC_URL") {
            self.public_url = v;
        }
        if let Some(v) = var("TWEESTAP_SECRET_KEY") {
            self.secret_key = v;
        }
        self.sms.apply_env();
        self.metrics.apply_env_from(|n| std::env::var(n).ok())?;
        Ok(())
    }

    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_rejects_typos() {
        let c: Config =
            toml::from_str("listen = \"0.0.0.0:9000\"\n[lockout]\nmax_failures = 3\n").unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.lockout.max_failures, 3);
        assert_eq!(c.lockout.base_seconds, 60);
        assert!(toml::from_str::<Config>("lisen = \"x\"").is_err());
        assert!(!c.secure_cookies());
    }

    #[test]
    fn example_config_parses_to_the_defaults() {
        let example = include_str!("../../../tweestap.example.toml");
        let c: Config = toml::from_str(example).unwrap();
        let d = Config::default();
        assert_eq!(c.listen, d.listen);
        assert_eq!(c.password.argon2_memory_kib, d.password.argon2_memory_kib);
        assert_eq!(
            c.session.idle_timeout_minutes,
            d.session.idle_timeout_minutes
        );
        assert_eq!(c.lockout.max_seconds, d.lockout.max_seconds);
        assert_eq!(c.database.max_connections, d.database.max_connections);
        assert_eq!(c.policy.shared_mailboxes, d.policy.shared_mailboxes);
        assert_eq!(c.policy.two_factor, d.policy.two_factor);
        assert_eq!(c.policy.required_from, d.policy.required_from);
        assert!(c.policy.roles.admin.required_from.is_none());
        assert_eq!(c.database.migrate_at_start, d.database.migrate_at_start);
        assert_eq!(c.mail.smtp_url, d.mail.smtp_url);
        assert_eq!(c.mail.from, d.mail.from);
        assert_eq!(c.mail.organisation, d.mail.organisation);
        assert_eq!(c.mail.poll_interval_seconds, d.mail.poll_interval_seconds);
        assert_eq!(c.oidc.key_retention_hours, d.oidc.key_retention_hours);
        assert_eq!(c.password.max_waiting_hashes, d.password.max_waiting_hashes);
        assert_eq!(
            c.http.header_read_timeout_seconds,
            d.http.header_read_timeout_seconds
        );
        assert_eq!(
            c.http.body_read_timeout_seconds,
            d.http.body_read_timeout_seconds
        );
        assert_eq!(c.http.max_connections, d.http.max_connections);
        assert_eq!(c.dev.outbox_page, d.dev.outbox_page);
        assert_eq!(c.metrics.enabled, d.metrics.enabled);
        assert!(c.oidc.clients.is_empty());
    }

    #[test]
    fn two_factor_policy_parses_and_bad_dates_name_the_key() {
        let c: Config = toml::from_str(
            "[policy]\ntwo_factor = \"optional\"\nrequired_from = \"2026-06-01\"\n\
             [policy.roles.admin]\nrequired_from = \"2026-01-01\"\n",
        )
        .unwrap();
        let p = c.policy.two_factor_policy();
        assert_eq!(p.general.required_from, "2026-06-01".parse().ok());
        assert_eq!(p.admin.required_from, "2026-01-01".parse().ok());
        let err =
            toml::from_str::<Config>("[policy.roles.admin]\nrequired_from = \"2026-13-01\"\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("required_from"), "{err}");
        assert!(toml::from_str::<Config>("[policy]\ntwo_factor = \"sometimes\"\n").is_err());
        assert!(toml::from_str::<Config>("[policy.roles.root]\ntwo_factor = \"off\"\n").is_err());
    }
}
