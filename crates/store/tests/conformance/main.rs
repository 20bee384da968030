//! The behaviour every `Store` must have, written once and run against each backend:
//! SQLite in a temporary directory and PostgreSQL in a fresh database (skipped loudly
//! when no PostgreSQL is reachable, unless `TWEESTAP_REQUIRE_ALL=1`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test with its location"
)]

use chrono::{DateTime, Duration, TimeZone, Timelike, Utc};
use std::sync::Arc;
use std::time::Instant;
use tweestap_domain::account::{AccountId, Email, Role};
use tweestap_domain::audit::AuditRecord;
use tweestap_domain::clock::SystemClock;
use tweestap_domain::device::RememberedDevice;
use tweestap_domain::enrollment::{EnrollmentLink, LinkPurpose, LinkState};
use tweestap_domain::factor::{Factor, FactorId, FactorKind};
use tweestap_domain::lockout::Guard;
use tweestap_domain::mail::{Language, NewMail, Notice};
use tweestap_domain::oidc::flow::{CodeClaim, StoredCode, StoredRequest, StoredToken, TokenKind};
use tweestap_domain::oidc::{ClientSource, OidcClient, SigningAlg, SigningKey};
use tweestap_domain::password::{Argon2Settings, PasswordHasher};
use tweestap_domain::secret_box::{MasterKey, SecretBox};
use tweestap_domain::session::{Session, SessionStage};
use tweestap_domain::session_code::{CodePurpose, SessionCode};
use tweestap_domain::settings::Settings;
use tweestap_domain::store::prelude::*;
use tweestap_domain::store::{NewAccount, StoreError};
use tweestap_domain::token::TokenHash;
use tweestap_domain::Tweestap;
use tweestap_store::{PoolSettings, PostgresStore, SqliteStore};
use tweestap_testkit as testing;
use uuid::Uuid;

type Dyn = Arc<dyn Store>;

/// A store under test and what to clean up after it.
struct Backend {
    store: Dyn,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(String),
}

impl Backend {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db"), true)
            .await
            .unwrap();
        Self {
            store: Arc::new(store),
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    async fn postgres() -> Option<Self> {
        let url = testing::fresh_postgres_database().await?;
        let store = PostgresStore::connect(&url, &PoolSettings::default(), true)
            .await
            .unwrap();
        Some(Self {
            store: Arc::new(store),
            cleanup: Cleanup::Postgres(url),
        })
    }

    /// Runs one behaviour, then cleans up, also when the behaviour panicked (the
    /// panic is caught by running it as a task, and raised again afterwards).
    async fn run<F, Fut>(self, behaviour: F)
    where
        F: FnOnce(Dyn) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let outcome = tokio::spawn(behaviour(self.store.clone())).await;
        drop(self.store);
        if let Cleanup::Postgres(url) = self.cleanup {
            testing::drop_database(&url).await;
        }
        if let Err(e) = outcome {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
            panic!("{e}");
        }
    }
}

/// Runs each behaviour once per backend: `sqlite::<name>` and `postgres::<name>`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let b = crate::Backend::sqlite().await;
                    b.run(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(b) = crate::Backend::postgres().await else {
                        return;
                    };
                    b.run(super::$name).await;
                }
            )*
        }
    };
}

// ---------------------------------------------------------------------------------
// Helpers

/// `t` cut to whole microseconds (rounding down), which is what every backend keeps.
fn us(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(t.nanosecond() / 1_000 * 1_000).unwrap()
}

/// A time with nanoseconds that a backend must drop.
fn t0() -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000, 123_456_789).unwrap()
}

fn new_account(email: &str) -> NewAccount {
    NewAccount {
        id: AccountId::random(),
        email: Email::parse(email).unwrap(),
        name: "An Peeters".into(),
        role: Role::User,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_at: t0(),
    }
}

async fn account(s: &Dyn, email: &str) -> NewAccount {
    let a = new_account(email);
    s.insert_account(&a).await.unwrap();
    a
}

fn factor(account: AccountId, created_at: DateTime<Utc>) -> Factor {
    Factor {
        id: FactorId(Uuid::new_v4()),
        account_id: account,
        kind: FactorKind::Totp,
        label: "Telefoon van An".into(),
        secret_sealed: vec![0, 1, 2, 254, 255],
        created_at,
        confirmed_at: None,
        last_used_at: None,
        last_step: None,
    }
}

fn session(account: AccountId, last_seen_at: DateTime<Utc>) -> Session {
    Session {
        id_hash: TokenHash(format!("{:x}", Uuid::new_v4().as_u128())),
        account_id: account,
        stage: SessionStage::SecondFactor,
        created_at: t0(),
        last_seen_at,
        auth_time: t0() + Duration::nanoseconds(999),
        amr: "pwd".into(),
        ip: Some("192.0.2.1".into()),
        user_agent: None,
        sid: format!("{:x}", Uuid::new_v4().as_u128()),
    }
}

fn audit(at: DateTime<Utc>, event: &str, email: Option<&str>) -> AuditRecord {
    AuditRecord {
        at,
        event: event.into(),
        account_id: None,
        email: email.map(str::to_owned),
        ip: None,
        user_agent: None,
        detail: None,
    }
}

/// The domain types have no `PartialEq`; their `Debug` shows every field.
fn same<T: std::fmt::Debug>(got: &T, want: &T) {
    assert_eq!(format!("{got:#?}"), format!("{want:#?}"));
}

mod accounts;
mod backends;
mod code_step;
mod codes;
mod factors;
mod links;
mod mail_queue;
mod oidc;
mod portals;
mod sealed;
mod session_cache;
mod sessions;
mod throttles;
mod together;
mod upgrades;
