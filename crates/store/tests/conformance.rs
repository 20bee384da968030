//! The behaviour every `Store` must have, written once and run against each backend:
//! SQLite in a temporary directory and PostgreSQL in a fresh database (skipped loudly
//! when no PostgreSQL is reachable, unless `TWEESTAP_REQUIRE_ALL=1`).

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
use tweestap_domain::store::{NewAccount, Store, StoreError};
use tweestap_domain::token::TokenHash;
use tweestap_domain::Tweestap;
use tweestap_store::{testing, PoolSettings, PostgresStore, SqliteStore};
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
                    let b = super::Backend::sqlite().await;
                    b.run(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(b) = super::Backend::postgres().await else {
                        return;
                    };
                    b.run(super::$name).await;
                }
            )*
        }
    };
}

conformance!(
    ping_answers,
    accounts_round_trip,
    accounts_found_by_email_whatever_its_case,
    accounts_listed_in_byte_order_of_email,
    duplicate_email_or_id_conflicts,
    failures_count_lock_and_reset_per_guard,
    failures_of_unknown_account_are_an_error,
    factors_insert_confirm_delete,
    totp_step_claimed_once,
    concurrent_claims_of_one_step_accept_exactly_one,
    concurrent_claims_of_rising_steps_end_at_the_highest,
    concurrent_failures_all_count,
    sessions_lifecycle,
    expired_sessions_strictly_before,
    audit_newest_first_with_limit_and_email_filter,
    times_round_trip_at_microseconds,
    mail_claimed_when_due_leased_and_marked_once,
    concurrent_mail_claims_never_share_a_message,
    language_remembered_per_account,
    mails_counted_per_account_kind_and_hour,
    accounts_searched_by_part_of_email_or_name,
    email_codes_replace_count_tries_and_die_with_their_session,
    sms_codes_replace_count_tries_and_die_with_their_session,
    email_and_sms_codes_of_one_session_do_not_clash,
    sms_codes_die_with_their_factor,
    codes_die_when_their_session_is_purged,
    only_sms_codes_name_a_factor,
    enrollment_links_claimed_once_and_superseded,
    support_reset_voids_factors_sessions_and_links,
    spent_links_and_sent_mail_purged,
    signing_keys_one_active_per_alg_rotated_and_purged,
    concurrent_ensure_signing_keys_leave_one_active_key_per_alg,
    clients_round_trip_and_delete,
    oidc_requests_expire,
    oidc_codes_claimed_once_then_reported_reused,
    concurrent_oidc_code_claims_accept_exactly_one,
    oidc_refresh_tokens_rotate_once_and_families_revoke,
    password_change_and_support_reset_end_portal_grants,
    changes_and_their_notices_are_stored_together,
);

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

// ---------------------------------------------------------------------------------
// Behaviours

async fn ping_answers(s: Dyn) {
    s.ping().await.unwrap();
}

async fn accounts_round_trip(s: Dyn) {
    for (email, role) in [
        ("user@x.be", Role::User),
        ("support@x.be", Role::Support),
        ("admin@x.be", Role::Admin),
    ] {
        let mut a = new_account(email);
        a.role = role;
        a.name = "Zoë d'Hondt 🙂".into();
        s.insert_account(&a).await.unwrap();
        let got = s.account_by_id(a.id).await.unwrap().unwrap();
        assert_eq!(got.id, a.id);
        assert_eq!(got.email, a.email);
        assert_eq!(got.name, a.name);
        assert_eq!(got.role, role);
        assert_eq!(got.password_hash, a.password_hash);
        assert_eq!(got.created_at, us(a.created_at));
        assert_eq!(got.code_failures, 0);
        assert_eq!(got.password_failures, 0);
        assert_eq!(got.code_locked_until, None);
        assert_eq!(got.password_locked_until, None);
    }
    assert!(s
        .account_by_id(AccountId::random())
        .await
        .unwrap()
        .is_none());
}

async fn accounts_found_by_email_whatever_its_case(s: Dyn) {
    let a = account(&s, "An.Peeters@Example.BE").await;
    let found = s
        .account_by_email(&Email::parse("  AN.PEETERS@example.be ").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, a.id);
    assert_eq!(found.email.as_str(), "an.peeters@example.be");
    assert!(s
        .account_by_email(&Email::parse("someone.else@example.be").unwrap())
        .await
        .unwrap()
        .is_none());
}

async fn accounts_listed_in_byte_order_of_email(s: Dyn) {
    // A locale-aware collation would ignore the punctuation and order these otherwise.
    for e in [
        "b.c@x.be", "ab@x.be", "a@x.be", "a.b@x.be", "a-z@x.be", "a_b@x.be",
    ] {
        account(&s, e).await;
    }
    let listed: Vec<String> = s
        .list_accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.email.as_str().to_owned())
        .collect();
    assert_eq!(
        listed,
        ["a-z@x.be", "a.b@x.be", "a@x.be", "a_b@x.be", "ab@x.be", "b.c@x.be"]
    );
}

async fn duplicate_email_or_id_conflicts(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    assert!(matches!(
        s.insert_account(&new_account("AN@X.be")).await,
        Err(StoreError::Conflict)
    ));
    let mut same_id = new_account("other@x.be");
    same_id.id = a.id;
    assert!(matches!(
        s.insert_account(&same_id).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.list_accounts().await.unwrap().len(), 1);
}

async fn failures_count_lock_and_reset_per_guard(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let other = account(&s, "other@x.be").await;
    let lock = t0() + Duration::seconds(60);
    for (guard, other_guard) in [
        (Guard::Code, Guard::Password),
        (Guard::Password, Guard::Code),
    ] {
        let failures = |acc: &tweestap_domain::account::Account, g: Guard| match g {
            Guard::Code => (acc.code_failures, acc.code_locked_until),
            Guard::Password => (acc.password_failures, acc.password_locked_until),
        };
        s.increment_failures(a.id, other_guard).await.unwrap();
        s.set_lock(a.id, other_guard, Some(lock)).await.unwrap();
        for n in 1..=3 {
            assert_eq!(s.increment_failures(a.id, guard).await.unwrap(), n);
        }
        s.set_lock(a.id, guard, Some(lock)).await.unwrap();
        let got = s.account_by_id(a.id).await.unwrap().unwrap();
        assert_eq!(failures(&got, guard), (3, Some(us(lock))));

        s.set_lock(a.id, guard, None).await.unwrap();
        let got = s.account_by_id(a.id).await.unwrap().unwrap();
        assert_eq!(
            failures(&got, guard),
            (3, None),
            "set_lock(None) keeps the count"
        );

        s.set_lock(a.id, guard, Some(lock)).await.unwrap();
        s.reset_failures(a.id, guard).await.unwrap();
        let got = s.account_by_id(a.id).await.unwrap().unwrap();
        assert_eq!(failures(&got, guard), (0, None));
        assert_eq!(
            failures(&got, other_guard),
            (1, Some(us(lock))),
            "the other guard is untouched"
        );
        assert_eq!(s.increment_failures(a.id, guard).await.unwrap(), 1);

        let untouched = s.account_by_id(other.id).await.unwrap().unwrap();
        assert_eq!(failures(&untouched, guard), (0, None));

        s.reset_failures(a.id, guard).await.unwrap();
        s.reset_failures(a.id, other_guard).await.unwrap();
    }
}

async fn failures_of_unknown_account_are_an_error(s: Dyn) {
    let r = s.increment_failures(AccountId::random(), Guard::Code).await;
    assert!(matches!(r, Err(StoreError::Other(_))), "{r:?}");
    // Locking or resetting nobody is not an error.
    s.set_lock(AccountId::random(), Guard::Code, Some(t0()))
        .await
        .unwrap();
    s.reset_failures(AccountId::random(), Guard::Password)
        .await
        .unwrap();
}

async fn factors_insert_confirm_delete(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let b = account(&s, "bert@x.be").await;

    // Inserted out of order; listed by creation time.
    let mut used = factor(a.id, t0() + Duration::seconds(10));
    used.confirmed_at = Some(t0() + Duration::nanoseconds(20_001));
    used.last_used_at = Some(t0() + Duration::seconds(11));
    used.last_step = Some(58_333_334);
    let fresh = factor(a.id, t0());
    let of_b = factor(b.id, t0());
    for f in [&used, &fresh, &of_b] {
        s.insert_factor(f).await.unwrap();
    }
    assert!(matches!(
        s.insert_factor(&fresh).await,
        Err(StoreError::Conflict)
    ));

    let listed = s.factors_of(a.id).await.unwrap();
    let mut want_fresh = fresh.clone();
    want_fresh.created_at = us(fresh.created_at);
    let mut want_used = used.clone();
    want_used.created_at = us(used.created_at);
    want_used.confirmed_at = used.confirmed_at.map(us);
    want_used.last_used_at = used.last_used_at.map(us);
    same(&listed, &vec![want_fresh, want_used]);
    assert!(s.factors_of(AccountId::random()).await.unwrap().is_empty());

    // Confirming happens once; a confirmed factor keeps its first confirmation.
    let at = t0() + Duration::seconds(30) + Duration::nanoseconds(1_999);
    assert!(s.confirm_factor(fresh.id, at, None).await.unwrap());
    assert!(!s
        .confirm_factor(fresh.id, at + Duration::seconds(1), None)
        .await
        .unwrap());
    assert!(!s.confirm_factor(used.id, at, None).await.unwrap());
    assert!(!s
        .confirm_factor(FactorId(Uuid::new_v4()), at, None)
        .await
        .unwrap());
    let listed = s.factors_of(a.id).await.unwrap();
    assert_eq!(listed[0].confirmed_at, Some(us(at)));
    assert_eq!(listed[1].confirmed_at, used.confirmed_at.map(us));

    // Only unconfirmed factors of that account go.
    let pending = factor(a.id, t0() + Duration::seconds(20));
    s.insert_factor(&pending).await.unwrap();
    s.delete_unconfirmed_factors(a.id).await.unwrap();
    let ids: Vec<FactorId> = s
        .factors_of(a.id)
        .await
        .unwrap()
        .iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(ids, [fresh.id, used.id]);
    assert_eq!(s.factors_of(b.id).await.unwrap().len(), 1);

    assert!(s.remove_factor(fresh.id, None, None).await.unwrap());
    assert!(!s.remove_factor(fresh.id, None, None).await.unwrap());
    let ids: Vec<FactorId> = s
        .factors_of(a.id)
        .await
        .unwrap()
        .iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(ids, [used.id]);
}

async fn totp_step_claimed_once(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let f = factor(a.id, t0());
    s.insert_factor(&f).await.unwrap();
    let at = |n: i64| t0() + Duration::seconds(n) + Duration::nanoseconds(777);
    let state = || async {
        let f = s.factors_of(a.id).await.unwrap().remove(0);
        (f.last_step, f.last_used_at)
    };

    assert!(s.claim_totp_step(f.id, 10, at(1)).await.unwrap());
    assert_eq!(state().await, (Some(10), Some(us(at(1)))));
    assert!(
        !s.claim_totp_step(f.id, 10, at(2)).await.unwrap(),
        "same step"
    );
    assert!(
        !s.claim_totp_step(f.id, 9, at(3)).await.unwrap(),
        "earlier step"
    );
    assert_eq!(
        state().await,
        (Some(10), Some(us(at(1)))),
        "a replay changes nothing"
    );
    assert!(
        s.claim_totp_step(f.id, 11, at(4)).await.unwrap(),
        "later step"
    );
    assert_eq!(state().await, (Some(11), Some(us(at(4)))));
    assert!(!s
        .claim_totp_step(FactorId(Uuid::new_v4()), 12, at(5))
        .await
        .unwrap());
    assert_eq!(
        s.factors_of(a.id).await.unwrap()[0].secret_sealed,
        f.secret_sealed
    );
}

async fn concurrent_claims_of_one_step_accept_exactly_one(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let f = factor(a.id, t0());
    s.insert_factor(&f).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.claim_totp_step(f.id, 58_333_334, Utc::now()).await })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 1);
    assert_eq!(
        s.factors_of(a.id).await.unwrap()[0].last_step,
        Some(58_333_334)
    );
}

async fn concurrent_claims_of_rising_steps_end_at_the_highest(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let f = factor(a.id, t0());
    s.insert_factor(&f).await.unwrap();
    let tasks: Vec<_> = (1..=20)
        .map(|step| {
            let s = s.clone();
            tokio::spawn(async move { s.claim_totp_step(f.id, step, Utc::now()).await })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            accepted += 1;
        }
    }
    assert!(accepted >= 1);
    assert_eq!(s.factors_of(a.id).await.unwrap()[0].last_step, Some(20));
}

async fn concurrent_failures_all_count(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    for guard in [Guard::Code, Guard::Password] {
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.increment_failures(a.id, guard).await })
            })
            .collect();
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap().unwrap());
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            (1..=20).collect::<Vec<u32>>(),
            "each caller sees its own count"
        );
    }
    let got = s.account_by_id(a.id).await.unwrap().unwrap();
    assert_eq!((got.code_failures, got.password_failures), (20, 20));
}

async fn sessions_lifecycle(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let b = account(&s, "bert@x.be").await;
    let mut s1 = session(a.id, t0());
    s1.stage = SessionStage::Authenticated;
    s1.amr = "pwd otp".into();
    s1.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64)".into());
    let s2 = session(a.id, t0());
    let s3 = session(b.id, t0());
    for x in [&s1, &s2, &s3] {
        s.insert_session(x).await.unwrap();
    }
    assert!(matches!(
        s.insert_session(&s1).await,
        Err(StoreError::Conflict)
    ));

    let mut want = s1.clone();
    want.created_at = us(s1.created_at);
    want.last_seen_at = us(s1.last_seen_at);
    want.auth_time = us(s1.auth_time);
    same(&s.session(&s1.id_hash).await.unwrap().unwrap(), &want);
    assert!(s
        .session(&TokenHash("0".repeat(64)))
        .await
        .unwrap()
        .is_none());

    let later = t0() + Duration::minutes(5) + Duration::nanoseconds(4_321);
    s.touch_session(&s1.id_hash, later).await.unwrap();
    want.last_seen_at = us(later);
    same(&s.session(&s1.id_hash).await.unwrap().unwrap(), &want);
    s.touch_session(&TokenHash("nobody".into()), later)
        .await
        .unwrap();

    s.delete_session(&s2.id_hash).await.unwrap();
    assert!(s.session(&s2.id_hash).await.unwrap().is_none());
    s.delete_session(&s2.id_hash).await.unwrap();

    s.delete_sessions_of(a.id).await.unwrap();
    assert!(s.session(&s1.id_hash).await.unwrap().is_none());
    assert!(
        s.session(&s3.id_hash).await.unwrap().is_some(),
        "another account's"
    );
}

async fn expired_sessions_strictly_before(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let old = session(a.id, t0() - Duration::hours(1));
    let edge = session(a.id, t0());
    let new = session(a.id, t0() + Duration::seconds(1));
    for x in [&old, &edge, &new] {
        s.insert_session(x).await.unwrap();
    }
    // `before` differs from `edge` only below the microsecond: the same stored time.
    let before = us(t0()) + Duration::nanoseconds(999);
    assert_eq!(s.delete_expired_sessions(before).await.unwrap(), 1);
    assert!(s.session(&old.id_hash).await.unwrap().is_none());
    assert!(s.session(&edge.id_hash).await.unwrap().is_some());
    assert_eq!(
        s.delete_expired_sessions(t0() + Duration::seconds(1))
            .await
            .unwrap(),
        1
    );
    assert!(s.session(&new.id_hash).await.unwrap().is_some());
    assert_eq!(s.delete_expired_sessions(t0()).await.unwrap(), 0);
}

async fn audit_newest_first_with_limit_and_email_filter(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    // Appended in this order; `at` deliberately not monotonic: order is by appending.
    let mut records = vec![
        audit(t0(), "account_created", Some("an@x.be")),
        audit(
            t0() + Duration::seconds(5),
            "login_failed",
            Some("bert@x.be"),
        ),
        audit(t0() - Duration::seconds(5), "login_ok", Some("an@x.be")),
        audit(t0() + Duration::seconds(1), "startup", None),
        audit(t0() + Duration::nanoseconds(1), "code_ok", Some("an@x.be")),
    ];
    records[0].account_id = Some(a.id);
    records[2].ip = Some("2001:db8::1".into());
    records[2].user_agent = Some("curl/8".into());
    records[2].detail = Some("{\"via\":\"api\"}".into());
    for r in &records {
        s.append_audit(r).await.unwrap();
    }
    let stored: Vec<AuditRecord> = records
        .iter()
        .map(|r| AuditRecord {
            at: us(r.at),
            ..r.clone()
        })
        .collect();
    let newest_first =
        |idx: &[usize]| -> Vec<AuditRecord> { idx.iter().map(|&i| stored[i].clone()).collect() };

    same(
        &s.list_audit(100, None).await.unwrap(),
        &newest_first(&[4, 3, 2, 1, 0]),
    );
    same(
        &s.list_audit(2, None).await.unwrap(),
        &newest_first(&[4, 3]),
    );
    assert!(s.list_audit(0, None).await.unwrap().is_empty());
    same(
        &s.list_audit(100, Some("an@x.be")).await.unwrap(),
        &newest_first(&[4, 2, 0]),
    );
    same(
        &s.list_audit(2, Some("AN@X.BE")).await.unwrap(),
        &newest_first(&[4, 2]),
    );
    assert!(s
        .list_audit(100, Some("nobody@x.be"))
        .await
        .unwrap()
        .is_empty());
}

async fn times_round_trip_at_microseconds(s: Dyn) {
    let times = [
        Utc.with_ymd_and_hms(1969, 12, 31, 23, 59, 59).unwrap()
            + Duration::nanoseconds(999_999_999),
        Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap()
            + Duration::nanoseconds(500_000_500),
        Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap() + Duration::nanoseconds(1),
        t0(),
        Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap()
            + Duration::nanoseconds(999_999_999),
    ];
    for (i, t) in times.into_iter().enumerate() {
        let mut a = new_account(&format!("t{i}@x.be"));
        a.created_at = t;
        s.insert_account(&a).await.unwrap();
        s.set_lock(a.id, Guard::Code, Some(t)).await.unwrap();
        let got = s.account_by_id(a.id).await.unwrap().unwrap();
        assert_eq!(got.created_at, us(t), "{t}");
        assert_eq!(got.code_locked_until, Some(us(t)), "{t}");
        assert_eq!(got.created_at.nanosecond() % 1_000, 0);

        let x = session(a.id, t);
        s.insert_session(&x).await.unwrap();
        assert_eq!(
            s.session(&x.id_hash).await.unwrap().unwrap().last_seen_at,
            us(t)
        );

        s.append_audit(&audit(t, "t", None)).await.unwrap();
        assert_eq!(s.list_audit(1, None).await.unwrap()[0].at, us(t));
    }
}

fn mail(to: &str, at: DateTime<Utc>) -> NewMail {
    NewMail {
        id: Uuid::new_v4(),
        account_id: None,
        to: to.into(),
        to_name: "An".into(),
        language: Language::En,
        notice: Notice::FactorRemoved {
            factor_kind: "totp".into(),
        },
        created_at: at,
    }
}

async fn mail_claimed_when_due_leased_and_marked_once(s: Dyn) {
    let t = us(t0());
    let m = mail("an@x.be", t);
    s.enqueue_mail(&m).await.unwrap();
    // Not due before it was queued.
    let early = t - Duration::seconds(1);
    assert!(s
        .claim_mail(early, early + Duration::minutes(5), Uuid::new_v4(), 5)
        .await
        .unwrap()
        .is_empty());
    let first = s
        .claim_mail(t, t + Duration::minutes(5), Uuid::new_v4(), 5)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let c = &first[0];
    assert_eq!((c.id, c.attempts, c.language), (m.id, 1, Language::En));
    assert_eq!(
        (c.to.as_str(), c.kind.as_str()),
        ("an@x.be", "factor_removed")
    );
    assert_eq!(Notice::from_json(&c.payload).unwrap(), m.notice);
    assert_eq!(c.created_at, t);
    // Held while the lease lasts...
    let later = t + Duration::minutes(4);
    assert!(s
        .claim_mail(later, later + Duration::minutes(5), Uuid::new_v4(), 5)
        .await
        .unwrap()
        .is_empty());
    // ...and taken over when it ran out (its node died).
    let after = t + Duration::minutes(5);
    let second = s
        .claim_mail(after, after + Duration::minutes(5), Uuid::new_v4(), 5)
        .await
        .unwrap();
    assert_eq!((second.len(), second[0].attempts), (1, 2));
    // The first claim is lost: its marks do nothing.
    assert!(!s.mark_mail_sent(c, after).await.unwrap());
    assert!(!s.retry_mail(c, after, "x").await.unwrap());
    // A retry is due only at its time.
    let retry_at = after + Duration::seconds(30);
    assert!(s.retry_mail(&second[0], retry_at, "refused").await.unwrap());
    assert!(s
        .claim_mail(after, after + Duration::minutes(5), Uuid::new_v4(), 5)
        .await
        .unwrap()
        .is_empty());
    let third = s
        .claim_mail(retry_at, retry_at + Duration::minutes(5), Uuid::new_v4(), 5)
        .await
        .unwrap();
    assert_eq!(third.len(), 1);
    assert!(s.mark_mail_sent(&third[0], retry_at).await.unwrap());
    assert!(!s.mark_mail_sent(&third[0], retry_at).await.unwrap());
    let much_later = t + Duration::days(9);
    assert!(s
        .claim_mail(much_later, much_later, Uuid::new_v4(), 5)
        .await
        .unwrap()
        .is_empty());

    let given_up = mail("bo@x.be", t);
    s.enqueue_mail(&given_up).await.unwrap();
    let g = s
        .claim_mail(t, t + Duration::minutes(5), Uuid::new_v4(), 5)
        .await
        .unwrap();
    assert!(s.fail_mail(&g[0], t, "550 no such user").await.unwrap());
    assert_eq!(
        s.mail_counts().await.unwrap(),
        vec![("failed".to_owned(), 1), ("sent".to_owned(), 1)]
    );
}

async fn mails_counted_per_account_kind_and_hour(s: Dyn) {
    let an = account(&s, "an@example.be").await;
    let bo = account(&s, "bo@example.be").await;
    let code_mail = |account: AccountId, at: DateTime<Utc>| NewMail {
        account_id: Some(account),
        notice: Notice::EmailCode {
            code_sealed: "sealed".into(),
        },
        ..mail("an@example.be", at)
    };
    let since = t0() - Duration::hours(1);
    s.enqueue_mail(&code_mail(an.id, since - Duration::seconds(1)))
        .await
        .unwrap();
    s.enqueue_mail(&code_mail(an.id, since)).await.unwrap();
    s.enqueue_mail(&code_mail(an.id, t0())).await.unwrap();
    s.enqueue_mail(&code_mail(bo.id, t0())).await.unwrap();
    let mut other_kind = mail("an@example.be", t0());
    other_kind.account_id = Some(an.id);
    s.enqueue_mail(&other_kind).await.unwrap();
    // Sent mail counts as much as queued mail.
    let claimed = s
        .claim_mail(t0(), t0() + Duration::minutes(5), Uuid::new_v4(), 10)
        .await
        .unwrap();
    assert!(s.mark_mail_sent(&claimed[0], t0()).await.unwrap());
    same(
        &s.mails_since(an.id, Notice::EMAIL_CODE, since)
            .await
            .unwrap(),
        &2,
    );
    same(
        &s.mails_since(bo.id, Notice::EMAIL_CODE, since)
            .await
            .unwrap(),
        &1,
    );
    same(
        &s.mails_since(an.id, "factor_removed", since).await.unwrap(),
        &1,
    );
}

async fn concurrent_mail_claims_never_share_a_message(s: Dyn) {
    let t = us(t0());
    for i in 0..40 {
        s.enqueue_mail(&mail(&format!("u{i}@x.be"), t))
            .await
            .unwrap();
    }
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let c = s
                        .claim_mail(t, t + Duration::minutes(5), Uuid::new_v4(), 3)
                        .await
                        .unwrap();
                    if c.is_empty() {
                        return got;
                    }
                    got.extend(c.into_iter().map(|m| m.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!((all.len(), distinct.len()), (40, 40));
}

async fn language_remembered_per_account(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    assert_eq!(
        s.account_by_id(a.id).await.unwrap().unwrap().language,
        Language::Nl
    );
    s.set_language(a.id, Language::En).await.unwrap();
    assert_eq!(
        s.account_by_id(a.id).await.unwrap().unwrap().language,
        Language::En
    );
}

// ---------------------------------------------------------------------------------
// Backend-specific

#[tokio::test]
async fn unreachable_postgres_is_unavailable_quickly() {
    let started = Instant::now();
    let r = PostgresStore::connect(
        "postgres://postgres@127.0.0.1:1/x",
        &PoolSettings::default(),
        true,
    )
    .await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn malformed_postgres_url_is_an_error_not_a_panic() {
    let r = PostgresStore::connect("postgres://[nope", &PoolSettings::default(), false).await;
    assert!(matches!(r, Err(StoreError::Other(_))), "{r:?}");
}

/// Several nodes starting at once against one new database all migrate fine, and
/// migrating again is a no-op.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_nodes_migrate_together() {
    let Some(url) = testing::fresh_postgres_database().await else {
        return;
    };
    let nodes: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                PostgresStore::connect(&url, &PoolSettings::default(), true).await
            })
        })
        .collect();
    let mut stores = Vec::new();
    for n in nodes {
        stores.push(n.await.unwrap().unwrap());
    }
    stores[0].migrate().await.unwrap();
    let a = new_account("an@x.be");
    stores[1].insert_account(&a).await.unwrap();
    assert!(stores[2].account_by_id(a.id).await.unwrap().is_some());
    drop(stores);
    testing::drop_database(&url).await;
}

// ---------------------------------------------------------------------------------
// Upgrades

/// Applies this backend's migrations up to and including `last`, the way sqlx
/// records them, so that opening a store afterwards applies the rest.
async fn migrate_up_to(conn: &mut impl sqlx::migrate::Migrate, backend: &str, last: i64) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let migrator = sqlx::migrate::Migrator::new(dir).await.unwrap();
    conn.ensure_migrations_table().await.unwrap();
    for m in migrator.iter().filter(|m| m.version <= last) {
        conn.apply(m).await.unwrap();
    }
}

const CODE_ACCOUNT: &str = "7d0f5e3c-58b4-4f0a-9a43-2b1f1f0d3a01";
const CODE_FACTOR: &str = "7d0f5e3c-58b4-4f0a-9a43-2b1f1f0d3a02";

/// Rows of a database at 0008: one session with a mailed code, one with an SMS code,
/// and one with both. `{blob}` is the backend's literal for some bytes.
fn rows_at_0008(blob: &str) -> String {
    let t = "'2025-06-15T12:00:00.000000Z'";
    let later = "'2025-06-15T12:10:00.000000Z'";
    format!(
        "INSERT INTO accounts (id, email, name, role, password_hash, created_at)
             VALUES ('{CODE_ACCOUNT}', 'an@example.be', 'An', 'user', 'x', {t});
         INSERT INTO factors (id, account_id, kind, label, secret_sealed, created_at)
             VALUES ('{CODE_FACTOR}', '{CODE_ACCOUNT}', 'sms', '+32 ••• •• 12', {blob}, {t});
         INSERT INTO sessions (id_hash, account_id, stage, created_at, last_seen_at, auth_time, amr)
             VALUES ('mailed', '{CODE_ACCOUNT}', 'email_code', {t}, {t}, {t}, 'pwd'),
                    ('texted', '{CODE_ACCOUNT}', 'second_factor', {t}, {t}, {t}, 'pwd'),
                    ('both', '{CODE_ACCOUNT}', 'email_code', {t}, {t}, {t}, 'pwd');
         INSERT INTO email_codes (session_hash, account_id, code_mac, attempts, sends, created_at, expires_at)
             VALUES ('mailed', '{CODE_ACCOUNT}', 'mac-m', 2, 3, {t}, {later}),
                    ('both', '{CODE_ACCOUNT}', 'mac-b1', 0, 1, {t}, {later});
         INSERT INTO sms_codes (session_hash, account_id, factor_id, code_mac, attempts, sends, created_at, expires_at)
             VALUES ('texted', '{CODE_ACCOUNT}', '{CODE_FACTOR}', 'mac-t', 4, 2, {t}, {later}),
                    ('both', '{CODE_ACCOUNT}', '{CODE_FACTOR}', 'mac-b2', 1, 1, {t}, {later});"
    )
}

/// After the merge (0010) every code of the old tables is in `session_codes`, as it
/// was, under its purpose; the old tables are gone; the codes still work.
async fn codes_kept_across_the_merge(s: Dyn) {
    let t = Utc.with_ymd_and_hms(2025, 6, 15, 12, 0, 0).unwrap();
    let account = AccountId(CODE_ACCOUNT.parse().unwrap());
    let factor = FactorId(CODE_FACTOR.parse().unwrap());
    let code = |session: &str, purpose, mac: &str, attempts, sends| SessionCode {
        session_hash: TokenHash(session.into()),
        purpose,
        account_id: account,
        factor_id: (purpose == CodePurpose::Sms).then_some(factor),
        code_mac: mac.into(),
        attempts,
        sends,
        created_at: t,
        expires_at: t + Duration::minutes(10),
    };
    let want = [
        (
            "mailed",
            CodePurpose::Email,
            Some(code("mailed", CodePurpose::Email, "mac-m", 2, 3)),
        ),
        ("mailed", CodePurpose::Sms, None),
        ("texted", CodePurpose::Email, None),
        (
            "texted",
            CodePurpose::Sms,
            Some(code("texted", CodePurpose::Sms, "mac-t", 4, 2)),
        ),
        (
            "both",
            CodePurpose::Email,
            Some(code("both", CodePurpose::Email, "mac-b1", 0, 1)),
        ),
        (
            "both",
            CodePurpose::Sms,
            Some(code("both", CodePurpose::Sms, "mac-b2", 1, 1)),
        ),
    ];
    for (session, purpose, want) in want {
        let got = s
            .session_code(&TokenHash(session.into()), purpose)
            .await
            .unwrap();
        same(&got, &want);
    }
    let texted = TokenHash("texted".into());
    same(
        &s.count_session_code_try(&texted, CodePurpose::Sms)
            .await
            .unwrap(),
        &Some(5),
    );
    // The cascades hold on the new table.
    assert!(s.remove_factor(factor, None, None).await.unwrap());
    let both = TokenHash("both".into());
    assert!(s
        .session_code(&both, CodePurpose::Sms)
        .await
        .unwrap()
        .is_none());
    assert!(s
        .session_code(&both, CodePurpose::Email)
        .await
        .unwrap()
        .is_some());
}

/// A SQLite database at migration `version` holding `rows`; a store opened on it
/// applies the rest.
async fn sqlite_at(path: &std::path::Path, version: i64, rows: &str) {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
    use sqlx::{ConnectOptions, Connection};
    let mut conn: SqliteConnection = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .foreign_keys(true)
        .connect()
        .await
        .unwrap();
    migrate_up_to(&mut conn, "sqlite", version).await;
    sqlx::raw_sql(rows).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

/// The same on a fresh PostgreSQL database: its URL, or `None` without PostgreSQL.
async fn postgres_at(version: i64, rows: &str) -> Option<String> {
    use sqlx::Connection;
    let url = testing::fresh_postgres_database().await?;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    migrate_up_to(&mut conn, "postgres", version).await;
    sqlx::raw_sql(rows).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    Some(url)
}

#[tokio::test]
async fn sqlite_codes_kept_across_the_merge_into_session_codes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    sqlite_at(&path, 8, &rows_at_0008("X'00FF'")).await;
    let store = SqliteStore::open(&path, true).await.unwrap();
    codes_kept_across_the_merge(Arc::new(store)).await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    for old in ["email_codes", "sms_codes"] {
        let gone = sqlx::query(&format!("SELECT 1 FROM {old}"))
            .fetch_optional(&pool)
            .await;
        assert!(gone.is_err(), "{old} still exists");
    }
}

#[tokio::test]
async fn postgres_codes_kept_across_the_merge_into_session_codes() {
    let Some(url) = postgres_at(8, &rows_at_0008("'\\x00ff'::bytea")).await else {
        return;
    };
    let store = PostgresStore::connect(&url, &PoolSettings::default(), true)
        .await
        .unwrap();
    codes_kept_across_the_merge(Arc::new(store)).await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    for old in ["email_codes", "sms_codes"] {
        let gone = sqlx::query(&format!("SELECT 1 FROM {old}"))
            .fetch_optional(&pool)
            .await;
        assert!(gone.is_err(), "{old} still exists");
    }
    pool.close().await;
    testing::drop_database(&url).await;
}

/// Portal codes and tokens of a database at 0010: one code and two tokens of an
/// account, and a token whose account is gone (its grant names nobody here).
fn oidc_rows_at_0010() -> String {
    let t = "'2025-06-15T12:00:00.000000Z'";
    let later = "'2025-07-15T12:00:00.000000Z'";
    let grant = format!(
        r#"{{"client_id":"portaal","account_id":"{CODE_ACCOUNT}","redirect_uri":"https://p.example/cb","scope":"openid","nonce":null,"code_challenge":null,"auth_time":1750000000,"amr":["pwd"]}}"#
    );
    let orphan = grant.replace(CODE_ACCOUNT, "00000000-0000-4000-8000-000000000000");
    format!(
        "INSERT INTO accounts (id, email, name, role, password_hash, created_at)
             VALUES ('{CODE_ACCOUNT}', 'an@example.be', 'An', 'user', 'x', {t});
         INSERT INTO oidc_codes (code_hash, grant_json, created_at, expires_at, used_at)
             VALUES ('code-1', '{grant}', {t}, {later}, NULL);
         INSERT INTO oidc_tokens (token_hash, kind, family, grant_json, created_at, expires_at)
             VALUES ('at-1', 'access', 'code-1', '{grant}', {t}, {later}),
                    ('rt-1', 'refresh', 'code-1', '{grant}', {t}, {later}),
                    ('rt-orphan', 'refresh', 'code-0', '{orphan}', {t}, {later});"
    )
}

/// After 0011 the old rows name their account (read from the grant), so a password
/// change ends them; a token of an account that no longer exists is gone.
async fn portal_grants_name_their_account_after_0011(s: Dyn) {
    let account = AccountId(CODE_ACCOUNT.parse().unwrap());
    for h in ["at-1", "rt-1"] {
        let t = s.oidc_token(&TokenHash(h.into())).await.unwrap().expect(h);
        same(&t.account_id, &account);
        same(&t.revoked_at, &None);
    }
    assert!(s
        .oidc_token(&TokenHash("rt-orphan".into()))
        .await
        .unwrap()
        .is_none());
    let at = Utc.with_ymd_and_hms(2025, 6, 15, 13, 0, 0).unwrap();
    s.change_password(account, "$argon2id$new", at, None)
        .await
        .unwrap();
    for h in ["at-1", "rt-1"] {
        let t = s.oidc_token(&TokenHash(h.into())).await.unwrap().expect(h);
        same(&t.revoked_at, &Some(at));
    }
    same(
        &s.claim_oidc_code(&TokenHash("code-1".into()), at)
            .await
            .unwrap(),
        &CodeClaim::Unknown,
    );
}

#[tokio::test]
async fn sqlite_portal_grants_name_their_account_after_0011() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    sqlite_at(&path, 10, &oidc_rows_at_0010()).await;
    let store = SqliteStore::open(&path, true).await.unwrap();
    portal_grants_name_their_account_after_0011(Arc::new(store)).await;
}

#[tokio::test]
async fn postgres_portal_grants_name_their_account_after_0011() {
    let Some(url) = postgres_at(10, &oidc_rows_at_0010()).await else {
        return;
    };
    let store = PostgresStore::connect(&url, &PoolSettings::default(), true)
        .await
        .unwrap();
    portal_grants_name_their_account_after_0011(Arc::new(store)).await;
    testing::drop_database(&url).await;
}

/// Accounts come in byte order of the e-mail address, as from SQLite, even when the
/// column has a locale-aware collation (a database created with, say, en_US.UTF-8).
#[tokio::test]
async fn postgres_lists_accounts_in_byte_order_under_any_collation() {
    let Some(url) = testing::fresh_postgres_database().await else {
        return;
    };
    let store: Dyn = Arc::new(
        PostgresStore::connect(&url, &PoolSettings::default(), true)
            .await
            .unwrap(),
    );
    let raw = sqlx::PgPool::connect(&url).await.unwrap();
    let icu: Option<String> = sqlx::query_scalar(
        "SELECT collname::text FROM pg_collation WHERE collname IN ('en-x-icu', 'en_US.utf8', 'en_US') \
         ORDER BY collname LIMIT 1",
    )
    .fetch_optional(&raw)
    .await
    .unwrap();
    let Some(collation) = icu else {
        eprintln!("no English collation on this server; byte order checked under its default only");
        accounts_listed_in_byte_order_of_email(store).await;
        testing::drop_database(&url).await;
        return;
    };
    sqlx::query(&format!(
        r#"ALTER TABLE accounts ALTER COLUMN email TYPE TEXT COLLATE "{collation}""#
    ))
    .execute(&raw)
    .await
    .unwrap();
    raw.close().await;
    accounts_listed_in_byte_order_of_email(store.clone()).await;
    drop(store);
    testing::drop_database(&url).await;
}

#[tokio::test]
async fn sqlite_takes_pool_settings() {
    let dir = tempfile::tempdir().unwrap();
    let settings = PoolSettings {
        max_connections: 2,
        min_connections: 1,
        acquire_timeout: std::time::Duration::from_secs(1),
        idle_timeout: None,
    };
    let s = SqliteStore::open_with(&dir.path().join("t.db"), &settings, true)
        .await
        .unwrap();
    s.ping().await.unwrap();
    let url = format!("sqlite://{}", dir.path().join("u.db").display());
    let s = SqliteStore::open_url_with(&url, &settings, true)
        .await
        .unwrap();
    s.ping().await.unwrap();
}

/// The two migration directories hold the same files, by number and name.
#[test]
fn migrations_in_step() {
    let list = |backend: &str| -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        names.sort();
        names
    };
    let sqlite = list("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite,
        list("postgres"),
        "migrations/sqlite and migrations/postgres differ"
    );
}

// ---------------------------------------------------------------------------------
// The set-up journeys

async fn accounts_searched_by_part_of_email_or_name(s: Dyn) {
    let mut an = new_account("an.peeters@example.be");
    an.name = "An Peeters".into();
    s.insert_account(&an).await.unwrap();
    let mut bo = new_account("bo@example.be");
    bo.name = "Bo Janssens".into();
    s.insert_account(&bo).await.unwrap();
    let mut desk = new_account("info_desk@example.be");
    desk.name = "Onthaal".into();
    s.insert_account(&desk).await.unwrap();
    let emails = |v: Vec<tweestap_domain::account::Account>| {
        v.into_iter()
            .map(|a| a.email.to_string())
            .collect::<Vec<_>>()
    };
    same(
        &emails(s.search_accounts("peet", 50).await.unwrap()),
        &vec!["an.peeters@example.be".to_owned()],
    );
    same(
        &emails(s.search_accounts("JANSSENS", 50).await.unwrap()),
        &vec!["bo@example.be".to_owned()],
    );
    same(
        &emails(s.search_accounts("example.be", 2).await.unwrap()).len(),
        &2,
    );
    // Wildcards typed by a person are plain characters.
    same(
        &emails(s.search_accounts("_", 50).await.unwrap()),
        &vec!["info_desk@example.be".to_owned()],
    );
    same(
        &emails(s.search_accounts("%", 50).await.unwrap()),
        &Vec::<String>::new(),
    );
    same(&emails(s.search_accounts("", 50).await.unwrap()).len(), &3);
    // A new address; another account's address conflicts.
    let to = Email::parse("an@example.be").unwrap();
    s.change_email(an.id, &to).await.unwrap();
    same(
        &s.account_by_email(&to).await.unwrap().map(|a| a.id),
        &Some(an.id),
    );
    let taken = Email::parse("bo@example.be").unwrap();
    assert!(matches!(
        s.change_email(an.id, &taken).await,
        Err(StoreError::Conflict)
    ));
}

fn email_code(session: &Session, account: AccountId, mac: &str, sends: u32) -> SessionCode {
    SessionCode {
        session_hash: session.id_hash.clone(),
        purpose: CodePurpose::Email,
        account_id: account,
        factor_id: None,
        code_mac: mac.into(),
        attempts: 0,
        sends,
        created_at: us(t0()),
        expires_at: us(t0() + Duration::minutes(10)),
    }
}

fn sms_code(session: &Session, factor: &Factor, mac: &str, sends: u32) -> SessionCode {
    SessionCode {
        purpose: CodePurpose::Sms,
        factor_id: Some(factor.id),
        ..email_code(session, factor.account_id, mac, sends)
    }
}

/// A session waiting for a code, with an SMS factor it may go to.
async fn session_with_phone(s: &Dyn) -> (Session, Factor) {
    let a = account(s, "an@example.be").await;
    let mut f = factor(a.id, t0());
    f.kind = FactorKind::Sms;
    s.insert_factor(&f).await.unwrap();
    let mut sess = session(a.id, t0());
    sess.stage = SessionStage::EmailCode;
    s.insert_session(&sess).await.unwrap();
    (sess, f)
}

/// The behaviour of one purpose's codes: a new code replaces the old one (tries
/// start again), tries are counted atomically, the code dies with its session.
async fn codes_replace_count_tries_and_die_with_their_session(s: Dyn, purpose: CodePurpose) {
    let (sess, f) = session_with_phone(&s).await;
    let code = |mac: &str, sends: u32| match purpose {
        CodePurpose::Email => email_code(&sess, f.account_id, mac, sends),
        CodePurpose::Sms => sms_code(&sess, &f, mac, sends),
    };
    let h = &sess.id_hash;
    same(&s.count_session_code_try(h, purpose).await.unwrap(), &None);
    s.put_session_code(&code("mac1", 1)).await.unwrap();
    same(
        &s.count_session_code_try(h, purpose).await.unwrap(),
        &Some(1),
    );
    same(
        &s.count_session_code_try(h, purpose).await.unwrap(),
        &Some(2),
    );
    // A new code replaces the old one and starts its tries again.
    s.put_session_code(&code("mac2", 2)).await.unwrap();
    let c = s.session_code(h, purpose).await.unwrap().expect("code");
    same(&c, &code("mac2", 2));
    // Concurrent tries all count.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (s, h) = (s.clone(), h.clone());
        tasks.push(tokio::spawn(async move {
            s.count_session_code_try(&h, purpose).await.unwrap()
        }));
    }
    let mut seen: Vec<u32> = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap().expect("counted"));
    }
    seen.sort_unstable();
    same(&seen, &(1..=10).collect::<Vec<u32>>());
    same(
        &s.session_code(h, purpose)
            .await
            .unwrap()
            .map(|c| c.attempts),
        &Some(10),
    );
    // Deleting a code (used up) leaves no code to try.
    s.delete_session_code(h, purpose).await.unwrap();
    assert!(s.session_code(h, purpose).await.unwrap().is_none());
    same(&s.count_session_code_try(h, purpose).await.unwrap(), &None);
    s.delete_session_code(h, purpose).await.unwrap();
    // A code dies with its session.
    s.put_session_code(&code("mac3", 1)).await.unwrap();
    s.delete_session(h).await.unwrap();
    assert!(s.session_code(h, purpose).await.unwrap().is_none());
    same(&s.count_session_code_try(h, purpose).await.unwrap(), &None);
}

async fn email_codes_replace_count_tries_and_die_with_their_session(s: Dyn) {
    codes_replace_count_tries_and_die_with_their_session(s, CodePurpose::Email).await;
}

async fn sms_codes_replace_count_tries_and_die_with_their_session(s: Dyn) {
    codes_replace_count_tries_and_die_with_their_session(s, CodePurpose::Sms).await;
}

async fn email_and_sms_codes_of_one_session_do_not_clash(s: Dyn) {
    let (sess, f) = session_with_phone(&s).await;
    let h = &sess.id_hash;
    s.put_session_code(&email_code(&sess, f.account_id, "mailed", 2))
        .await
        .unwrap();
    s.put_session_code(&sms_code(&sess, &f, "texted", 1))
        .await
        .unwrap();
    // Tries, replacing and deleting touch only their own purpose.
    same(
        &s.count_session_code_try(h, CodePurpose::Sms).await.unwrap(),
        &Some(1),
    );
    let mailed = s.session_code(h, CodePurpose::Email).await.unwrap();
    same(&mailed, &Some(email_code(&sess, f.account_id, "mailed", 2)));
    s.put_session_code(&email_code(&sess, f.account_id, "mailed again", 3))
        .await
        .unwrap();
    let texted = s.session_code(h, CodePurpose::Sms).await.unwrap();
    same(
        &texted.map(|c| (c.code_mac, c.attempts, c.sends, c.factor_id)),
        &Some(("texted".to_owned(), 1, 1, Some(f.id))),
    );
    s.delete_session_code(h, CodePurpose::Sms).await.unwrap();
    let mailed = s.session_code(h, CodePurpose::Email).await.unwrap();
    same(
        &mailed.map(|c| c.code_mac),
        &Some("mailed again".to_owned()),
    );
    assert!(s.session_code(h, CodePurpose::Sms).await.unwrap().is_none());
}

async fn sms_codes_die_with_their_factor(s: Dyn) {
    let (sess, f) = session_with_phone(&s).await;
    let h = &sess.id_hash;
    s.put_session_code(&email_code(&sess, f.account_id, "mailed", 1))
        .await
        .unwrap();
    s.put_session_code(&sms_code(&sess, &f, "texted", 1))
        .await
        .unwrap();
    assert!(s.remove_factor(f.id, None, None).await.unwrap());
    assert!(s.session_code(h, CodePurpose::Sms).await.unwrap().is_none());
    same(
        &s.count_session_code_try(h, CodePurpose::Sms).await.unwrap(),
        &None,
    );
    // The session, and its mailed code, stay.
    assert!(s.session(h).await.unwrap().is_some());
    assert!(s
        .session_code(h, CodePurpose::Email)
        .await
        .unwrap()
        .is_some());
    // Unconfirmed phones given up on take their codes along too.
    let mut g = factor(f.account_id, t0());
    g.kind = FactorKind::Sms;
    s.insert_factor(&g).await.unwrap();
    s.put_session_code(&sms_code(&sess, &g, "texted", 1))
        .await
        .unwrap();
    s.delete_unconfirmed_factors(f.account_id).await.unwrap();
    assert!(s.session_code(h, CodePurpose::Sms).await.unwrap().is_none());
}

/// Codes are never purged on their own: they go with their session, also when an
/// idle session is purged; retention (`delete_spent`) leaves live ones alone.
async fn codes_die_when_their_session_is_purged(s: Dyn) {
    let (sess, f) = session_with_phone(&s).await;
    let h = &sess.id_hash;
    s.put_session_code(&email_code(&sess, f.account_id, "mailed", 1))
        .await
        .unwrap();
    s.put_session_code(&sms_code(&sess, &f, "texted", 1))
        .await
        .unwrap();
    s.delete_spent(t0() + Duration::days(60)).await.unwrap();
    for p in [CodePurpose::Email, CodePurpose::Sms] {
        assert!(s.session_code(h, p).await.unwrap().is_some(), "{p:?}");
    }
    s.delete_expired_sessions(t0() + Duration::seconds(1))
        .await
        .unwrap();
    for p in [CodePurpose::Email, CodePurpose::Sms] {
        assert!(s.session_code(h, p).await.unwrap().is_none(), "{p:?}");
    }
}

/// The table refuses an SMS code without a phone, and a mailed code with one.
async fn only_sms_codes_name_a_factor(s: Dyn) {
    let (sess, f) = session_with_phone(&s).await;
    let mut no_phone = sms_code(&sess, &f, "texted", 1);
    no_phone.factor_id = None;
    assert!(s.put_session_code(&no_phone).await.is_err());
    let mut with_phone = email_code(&sess, f.account_id, "mailed", 1);
    with_phone.factor_id = Some(f.id);
    assert!(s.put_session_code(&with_phone).await.is_err());
    for p in [CodePurpose::Email, CodePurpose::Sms] {
        assert!(s.session_code(&sess.id_hash, p).await.unwrap().is_none());
    }
}

fn link(account: AccountId, hash: &str, created_at: DateTime<Utc>) -> EnrollmentLink {
    EnrollmentLink {
        token_hash: TokenHash(hash.into()),
        account_id: account,
        purpose: LinkPurpose::Profile,
        created_at: us(created_at),
        expires_at: us(created_at + Duration::days(5)),
        used_at: None,
    }
}

async fn enrollment_links_claimed_once_and_superseded(s: Dyn) {
    let a = account(&s, "an@example.be").await;
    let first = link(a.id, "h1", t0());
    s.insert_enrollment_link(&first).await.unwrap();
    let got = s
        .enrollment_link(&first.token_hash)
        .await
        .unwrap()
        .expect("link");
    same(
        &(got.account_id, got.purpose, got.state(t0())),
        &(a.id, LinkPurpose::Profile, LinkState::Open),
    );
    let second = link(a.id, "h2", t0() + Duration::minutes(1));
    s.insert_enrollment_link(&second).await.unwrap();
    let got = s
        .enrollment_link(&first.token_hash)
        .await
        .unwrap()
        .expect("link");
    same(&got.state(t0()), &LinkState::Used);
    same(
        &s.claim_enrollment_link(&first.token_hash, t0())
            .await
            .unwrap(),
        &None,
    );
    // Past its time it cannot be claimed.
    let late = t0() + Duration::days(6);
    same(
        &s.claim_enrollment_link(&second.token_hash, late)
            .await
            .unwrap(),
        &None,
    );
    // Of many concurrent claims exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (s, h) = (s.clone(), second.token_hash.clone());
        tasks.push(tokio::spawn(async move {
            s.claim_enrollment_link(&h, t0()).await.unwrap()
        }));
    }
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap() == Some(a.id) {
            won += 1;
        }
    }
    same(&won, &1);
    assert!(s
        .enrollment_link(&TokenHash("nope".into()))
        .await
        .unwrap()
        .is_none());
}

async fn support_reset_voids_factors_sessions_and_links(s: Dyn) {
    let a = account(&s, "an@example.be").await;
    let other = account(&s, "bo@example.be").await;
    let f = factor(a.id, t0());
    s.insert_factor(&f).await.unwrap();
    s.confirm_factor(f.id, t0(), None).await.unwrap();
    s.insert_factor(&factor(other.id, t0())).await.unwrap();
    let gone = session(a.id, t0());
    s.insert_session(&gone).await.unwrap();
    let kept = session(other.id, t0());
    s.insert_session(&kept).await.unwrap();
    s.increment_failures(a.id, Guard::Code).await.unwrap();
    s.set_lock(a.id, Guard::Code, Some(t0() + Duration::hours(1)))
        .await
        .unwrap();
    let old = link(a.id, "old", t0());
    s.insert_enrollment_link(&old).await.unwrap();
    let mut new = link(a.id, "new", t0() + Duration::minutes(1));
    new.purpose = LinkPurpose::SupportReset;
    s.reset_two_factor(a.id, &new, None).await.unwrap();
    assert!(s.factors_of(a.id).await.unwrap().is_empty());
    same(&s.factors_of(other.id).await.unwrap().len(), &1);
    assert!(s.session(&gone.id_hash).await.unwrap().is_none());
    assert!(s.session(&kept.id_hash).await.unwrap().is_some());
    let acc = s.account_by_id(a.id).await.unwrap().expect("account");
    same(&(acc.code_failures, acc.code_locked_until), &(0, None));
    same(
        &s.enrollment_link(&old.token_hash)
            .await
            .unwrap()
            .map(|l| l.state(t0())),
        &Some(LinkState::Used),
    );
    let got = s
        .enrollment_link(&new.token_hash)
        .await
        .unwrap()
        .expect("new link");
    same(
        &(got.purpose, got.state(t0())),
        &(LinkPurpose::SupportReset, LinkState::Open),
    );
}

async fn spent_links_and_sent_mail_purged(s: Dyn) {
    let a = account(&s, "an@example.be").await;
    let old_open = link(a.id, "old-open", t0() - Duration::days(40));
    s.insert_enrollment_link(&old_open).await.unwrap(); // ended by the next insert
    let fresh = link(a.id, "fresh", t0());
    s.insert_enrollment_link(&fresh).await.unwrap();
    let m = mail("an@example.be", t0() - Duration::days(40));
    s.enqueue_mail(&m).await.unwrap();
    let queued = mail("an@example.be", t0() - Duration::days(40));
    s.enqueue_mail(&queued).await.unwrap();
    let claimed = s
        .claim_mail(t0(), t0() + Duration::minutes(5), Uuid::new_v4(), 1)
        .await
        .unwrap();
    same(&claimed.len(), &1);
    assert!(s.mark_mail_sent(&claimed[0], t0()).await.unwrap());
    let n = s.delete_spent(t0() - Duration::days(30)).await.unwrap();
    same(&n, &2);
    assert!(s
        .enrollment_link(&old_open.token_hash)
        .await
        .unwrap()
        .is_none());
    assert!(s
        .enrollment_link(&fresh.token_hash)
        .await
        .unwrap()
        .is_some());
    // Mail still queued is never dropped, however old.
    let counts = s.mail_counts().await.unwrap();
    same(
        &counts.iter().find(|(k, _)| k == "queued").map(|(_, n)| *n),
        &Some(1),
    );
}

// ---------------------------------------------------------------------------------
// OpenID Connect

fn signing_key(alg: SigningAlg, kid: &str, created_at: DateTime<Utc>) -> SigningKey {
    SigningKey {
        kid: kid.into(),
        alg,
        private_sealed: vec![9, 8, 7, 0, 255],
        public_jwk: serde_json::json!({"kty": "EC", "kid": kid, "alg": alg.as_str(), "use": "sig"}),
        created_at,
        retired_at: None,
    }
}

async fn signing_keys_one_active_per_alg_rotated_and_purged(s: Dyn) {
    let rs1 = signing_key(SigningAlg::Rs256, "rs-1", t0());
    let es1 = signing_key(SigningAlg::Es256, "es-1", t0());
    s.insert_signing_key(&rs1).await.unwrap();
    s.insert_signing_key(&es1).await.unwrap();
    // A second active key of one algorithm is refused by the database.
    let rs_dup = signing_key(SigningAlg::Rs256, "rs-dup", t0());
    assert!(matches!(
        s.insert_signing_key(&rs_dup).await,
        Err(StoreError::Conflict)
    ));
    let mut want_rs1 = rs1.clone();
    want_rs1.created_at = us(t0());
    let keys = s.signing_keys().await.unwrap();
    same(&keys.len(), &2);
    assert!(keys.contains(&want_rs1));

    // Rotating RS256 retires rs-1 and leaves ES256 alone.
    let at = t0() + Duration::hours(1);
    let rs2 = signing_key(SigningAlg::Rs256, "rs-2", at);
    s.rotate_signing_key(&rs2, at).await.unwrap();
    let keys = s.signing_keys().await.unwrap();
    same(
        &keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        &vec!["rs-2", "es-1", "rs-1"],
    );
    let old = keys.iter().find(|k| k.kid == "rs-1").unwrap();
    same(&old.retired_at, &Some(us(at)));
    let active: Vec<_> = keys
        .iter()
        .filter(|k| k.is_active())
        .map(|k| k.kid.as_str())
        .collect();
    same(&active, &vec!["rs-2", "es-1"]);
    // Rotating without an active key just adds one.
    let es_only = signing_key(SigningAlg::Es256, "es-2", at);
    s.rotate_signing_key(&es_only, at).await.unwrap();

    // Deleted strictly before the cutoff; active keys never.
    same(&s.delete_retired_signing_keys(us(at)).await.unwrap(), &0);
    same(
        &s.delete_retired_signing_keys(at + Duration::microseconds(1))
            .await
            .unwrap(),
        &2,
    );
    let left: Vec<_> = s
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    same(&left, &vec!["es-2".to_owned(), "rs-2".to_owned()]);
}

/// Four nodes start at once on one empty database: each finds no key and makes
/// one, and the database keeps exactly one active key per algorithm.
async fn concurrent_ensure_signing_keys_leave_one_active_key_per_alg(s: Dyn) {
    let master = MasterKey::generate();
    let engine = || {
        Arc::new(Tweestap::new(
            s.clone(),
            Arc::new(SystemClock),
            PasswordHasher::new(
                Argon2Settings {
                    memory_kib: 64,
                    iterations: 1,
                    parallelism: 1,
                },
                1,
            )
            .unwrap(),
            SecretBox::new(&master),
            Settings::default(),
        ))
    };
    let nodes: Vec<_> = (0..4).map(|_| engine()).collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(nodes.len()));
    let tasks: Vec<_> = nodes
        .iter()
        .map(|n| {
            let (n, b) = (n.clone(), barrier.clone());
            tokio::spawn(async move {
                b.wait().await;
                n.ensure_signing_keys().await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let keys = s.signing_keys().await.unwrap();
    for alg in SigningAlg::ALL {
        same(
            &keys
                .iter()
                .filter(|k| k.alg == alg && k.is_active())
                .count(),
            &1,
        );
    }
    // Every node signs with the one key and a second start adds nothing.
    let claims = serde_json::json!({"sub": "x"});
    let a = nodes[0]
        .sign_id_token(&claims, SigningAlg::Es256)
        .await
        .unwrap();
    let b = nodes[3]
        .sign_id_token(&claims, SigningAlg::Es256)
        .await
        .unwrap();
    same(&a.split('.').next(), &b.split('.').next());
    nodes[1].ensure_signing_keys().await.unwrap();
    same(&s.signing_keys().await.unwrap().len(), &keys.len());
}

fn oidc_client(id: &str, public: bool, created_at: DateTime<Utc>) -> OidcClient {
    OidcClient {
        id: id.into(),
        name: "Portaal van de Gemeente".into(),
        redirect_uris: vec![
            "https://portaal.example/cb".into(),
            "http://127.0.0.1:9000/cb?x=\"y\"".into(),
        ],
        secret_hash: (!public).then(|| "ab".repeat(32)),
        created_at: Some(created_at),
        // The public one asks for ES256, so both values make the round trip.
        id_token_alg: if public {
            SigningAlg::Es256
        } else {
            SigningAlg::Rs256
        },
        source: ClientSource::Database,
    }
}

async fn clients_round_trip_and_delete(s: Dyn) {
    let a = oidc_client("portaal", false, t0());
    let b = oidc_client("spa", true, t0() + Duration::seconds(1));
    s.insert_client(&b).await.unwrap();
    s.insert_client(&a).await.unwrap();
    assert!(matches!(
        s.insert_client(&a).await,
        Err(StoreError::Conflict)
    ));
    let mut want_a = a.clone();
    want_a.created_at = Some(us(t0()));
    same(&s.client("portaal").await.unwrap(), &Some(want_a.clone()));
    assert!(s.client("spa").await.unwrap().unwrap().is_public());
    assert!(s.client("PORTAAL").await.unwrap().is_none());
    same(
        &s.list_clients()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        &vec!["portaal".to_owned(), "spa".to_owned()],
    );
    assert!(s.delete_client("portaal").await.unwrap());
    assert!(!s.delete_client("portaal").await.unwrap());
    assert!(s.client("portaal").await.unwrap().is_none());
    same(&s.list_clients().await.unwrap().len(), &1);
}

// ---------------------------------------------------------------------------------
// OpenID Connect code flow

async fn oidc_requests_expire(s: Dyn) {
    let r = StoredRequest {
        id_hash: TokenHash("req-1".into()),
        request: "{\"client_id\":\"portal\"}".into(),
        created_at: t0(),
        expires_at: t0() + Duration::minutes(15),
    };
    s.insert_oidc_request(&r).await.unwrap();
    assert_eq!(
        s.oidc_request(&r.id_hash, t0()).await.unwrap().as_deref(),
        Some(r.request.as_str())
    );
    assert_eq!(
        s.oidc_request(&r.id_hash, r.expires_at).await.unwrap(),
        None
    );
    assert_eq!(
        s.oidc_request(&TokenHash("other".into()), t0())
            .await
            .unwrap(),
        None
    );
}

fn stored_code(hash: &str, account: AccountId) -> StoredCode {
    StoredCode {
        code_hash: TokenHash(hash.into()),
        account_id: account,
        grant: "{\"g\":1}".into(),
        created_at: t0(),
        expires_at: t0() + Duration::seconds(60),
        used_at: None,
    }
}

async fn oidc_codes_claimed_once_then_reported_reused(s: Dyn) {
    let a = account(&s, "an@example.be").await;
    let c = stored_code("code-1", a.id);
    s.insert_oidc_code(&c).await.unwrap();
    let at = t0() + Duration::seconds(5);
    match s.claim_oidc_code(&c.code_hash, at).await.unwrap() {
        CodeClaim::Fresh(got) => {
            assert_eq!(got.grant, c.grant);
            assert_eq!(got.account_id, a.id);
            assert_eq!(got.expires_at, us(c.expires_at));
            assert_eq!(got.used_at, Some(us(at)));
        }
        other => panic!("{other:?}"),
    }
    match s.claim_oidc_code(&c.code_hash, at).await.unwrap() {
        CodeClaim::Reused(got) => assert_eq!(got.code_hash, c.code_hash),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.claim_oidc_code(&TokenHash("nope".into()), at)
            .await
            .unwrap(),
        CodeClaim::Unknown
    );
}

async fn concurrent_oidc_code_claims_accept_exactly_one(s: Dyn) {
    let a = account(&s, "an@example.be").await;
    let c = stored_code("code-race", a.id);
    s.insert_oidc_code(&c).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        let h = c.code_hash.clone();
        tasks.push(tokio::spawn(async move {
            s.claim_oidc_code(&h, t0()).await.unwrap()
        }));
    }
    let mut fresh = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), CodeClaim::Fresh(_)) {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
}

fn stored_token(hash: &str, kind: TokenKind, family: &str, account: AccountId) -> StoredToken {
    StoredToken {
        token_hash: TokenHash(hash.into()),
        account_id: account,
        kind,
        family: family.into(),
        grant: "{}".into(),
        created_at: t0(),
        expires_at: t0() + Duration::days(30),
        used_at: None,
        revoked_at: None,
    }
}

async fn oidc_refresh_tokens_rotate_once_and_families_revoke(s: Dyn) {
    let a = account(&s, "an@example.be").await;
    let access = stored_token("at-1", TokenKind::Access, "fam-1", a.id);
    let refresh = stored_token("rt-1", TokenKind::Refresh, "fam-1", a.id);
    let other = stored_token("rt-2", TokenKind::Refresh, "fam-2", a.id);
    for t in [&access, &refresh, &other] {
        s.insert_oidc_token(t).await.unwrap();
    }
    let got = s.oidc_token(&refresh.token_hash).await.unwrap().unwrap();
    assert_eq!(got.kind, TokenKind::Refresh);
    assert_eq!(got.account_id, a.id);
    assert_eq!(got.family, "fam-1");
    assert_eq!(got.expires_at, us(refresh.expires_at));
    // An access token is never "used" as a refresh token.
    assert!(!s.use_refresh_token(&access.token_hash, t0()).await.unwrap());
    assert!(s
        .use_refresh_token(&refresh.token_hash, t0())
        .await
        .unwrap());
    assert!(!s
        .use_refresh_token(&refresh.token_hash, t0())
        .await
        .unwrap());
    let used = s.oidc_token(&refresh.token_hash).await.unwrap().unwrap();
    assert_eq!(used.used_at, Some(us(t0())));

    assert_eq!(s.revoke_oidc_family("fam-1", t0()).await.unwrap(), 2);
    assert_eq!(s.revoke_oidc_family("fam-1", t0()).await.unwrap(), 0);
    assert!(s
        .oidc_token(&access.token_hash)
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some());
    // Another family is untouched and a revoked token cannot rotate.
    assert!(s
        .oidc_token(&other.token_hash)
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_none());
    s.revoke_oidc_family("fam-2", t0()).await.unwrap();
    assert!(!s.use_refresh_token(&other.token_hash, t0()).await.unwrap());
    assert!(s
        .oidc_token(&TokenHash("nope".into()))
        .await
        .unwrap()
        .is_none());
}

/// A password change or a support reset ends what portals hold of that account:
/// tokens revoked, unexchanged codes gone (a used one stays, for replay detection);
/// another account's grants are untouched.
async fn password_change_and_support_reset_end_portal_grants(s: Dyn) {
    let an = account(&s, "an@example.be").await;
    let bo = account(&s, "bo@example.be").await;
    let grants = |who: AccountId, tag: &str| {
        (
            stored_code(&format!("code-{tag}"), who),
            stored_code(&format!("used-{tag}"), who),
            stored_token(&format!("at-{tag}"), TokenKind::Access, tag, who),
            stored_token(&format!("rt-{tag}"), TokenKind::Refresh, tag, who),
        )
    };
    for (who, tag) in [(an.id, "an1"), (bo.id, "bo1")] {
        let (code, used, at, rt) = grants(who, tag);
        s.insert_oidc_code(&code).await.unwrap();
        s.insert_oidc_code(&used).await.unwrap();
        assert!(matches!(
            s.claim_oidc_code(&used.code_hash, t0()).await.unwrap(),
            CodeClaim::Fresh(_)
        ));
        s.insert_oidc_token(&at).await.unwrap();
        s.insert_oidc_token(&rt).await.unwrap();
    }
    let at = t0() + Duration::minutes(1);
    s.change_password(an.id, "$argon2id$new", at, None)
        .await
        .unwrap();
    let revoked = |h: &str| {
        let s = s.clone();
        let h = TokenHash(h.into());
        async move { s.oidc_token(&h).await.unwrap().unwrap().revoked_at }
    };
    assert_eq!(revoked("at-an1").await, Some(us(at)));
    assert_eq!(revoked("rt-an1").await, Some(us(at)));
    assert!(!s
        .use_refresh_token(&TokenHash("rt-an1".into()), at)
        .await
        .unwrap());
    assert_eq!(
        s.claim_oidc_code(&TokenHash("code-an1".into()), at)
            .await
            .unwrap(),
        CodeClaim::Unknown
    );
    assert!(matches!(
        s.claim_oidc_code(&TokenHash("used-an1".into()), at)
            .await
            .unwrap(),
        CodeClaim::Reused(_)
    ));
    // Bo's are untouched.
    assert_eq!(revoked("at-bo1").await, None);
    assert_eq!(revoked("rt-bo1").await, None);

    // A support reset does the same for bo.
    let link = EnrollmentLink {
        token_hash: TokenHash("reset-link".into()),
        account_id: bo.id,
        purpose: LinkPurpose::SupportReset,
        created_at: at,
        expires_at: at + Duration::days(5),
        used_at: None,
    };
    s.reset_two_factor(bo.id, &link, None).await.unwrap();
    assert_eq!(revoked("at-bo1").await, Some(us(at)));
    assert_eq!(revoked("rt-bo1").await, Some(us(at)));
    assert_eq!(
        s.claim_oidc_code(&TokenHash("code-bo1".into()), at)
            .await
            .unwrap(),
        CodeClaim::Unknown
    );
}

/// A change and its notice are written together: the notice is queued exactly when
/// the change happens (a factor confirmed or removed, a password changed, a support
/// reset), never for a change that did not happen.
async fn changes_and_their_notices_are_stored_together(s: Dyn) {
    let a = account(&s, "an@example.be").await;
    let notice = |kind: Notice| NewMail {
        account_id: Some(a.id),
        notice: kind,
        ..mail("an@example.be", t0())
    };
    let queued = |kind: &'static str| {
        let s = s.clone();
        async move { s.mails_since(a.id, kind, t0()).await.unwrap() }
    };
    let added = || Notice::FactorAdded {
        factor_kind: "totp".into(),
    };
    let removed = || Notice::FactorRemoved {
        factor_kind: "totp".into(),
    };

    let f = factor(a.id, t0());
    s.insert_factor(&f).await.unwrap();
    assert!(s
        .confirm_factor(f.id, t0(), Some(&notice(added())))
        .await
        .unwrap());
    same(&queued("factor_added").await, &1);
    // Confirming again changes nothing, and queues nothing.
    assert!(!s
        .confirm_factor(f.id, t0(), Some(&notice(added())))
        .await
        .unwrap());
    same(&queued("factor_added").await, &1);

    let device = RememberedDevice {
        id: Uuid::new_v4(),
        token_hash: TokenHash("device".into()),
        account_id: a.id,
        label: "Firefox · Linux".into(),
        created_at: t0(),
        last_used_at: t0(),
        expires_at: t0() + Duration::days(7),
    };
    s.insert_device(&device).await.unwrap();
    assert!(s
        .remove_factor(f.id, Some(a.id), Some(&notice(removed())))
        .await
        .unwrap());
    same(&queued("factor_removed").await, &1);
    assert!(s.devices_of(a.id).await.unwrap().is_empty());
    assert!(!s
        .remove_factor(f.id, Some(a.id), Some(&notice(removed())))
        .await
        .unwrap());
    same(&queued("factor_removed").await, &1);
    // Without devices to forget, the others stay.
    let g = factor(a.id, t0());
    s.insert_factor(&g).await.unwrap();
    s.insert_device(&device).await.unwrap();
    assert!(s.remove_factor(g.id, None, None).await.unwrap());
    same(&s.devices_of(a.id).await.unwrap().len(), &1);

    s.change_password(
        a.id,
        "$argon2id$new",
        t0(),
        Some(&notice(Notice::PasswordChanged)),
    )
    .await
    .unwrap();
    same(&queued("password_changed").await, &1);

    let link = EnrollmentLink {
        token_hash: TokenHash("reset-with-mail".into()),
        account_id: a.id,
        purpose: LinkPurpose::SupportReset,
        created_at: t0(),
        expires_at: t0() + Duration::days(5),
        used_at: None,
    };
    let reset = Notice::TwoFactorReset {
        link_sealed: "sealed".into(),
        valid_days: 5,
    };
    s.reset_two_factor(a.id, &link, Some(&notice(reset)))
        .await
        .unwrap();
    same(&queued("two_factor_reset").await, &1);
}
