//! The session cache (issue 19): kept lookups are served again, and no node
//! serves one after a write anywhere changed it. On SQLite there is no window
//! at all: every lookup sees every commit made before it.

use super::*;
use sqlx::PgPool;
use std::time::Duration as StdDuration;

/// A node whose cache keeps entries for a minute (or none: `None`): whatever it
/// serves fresh within a test was decided by the cache's invalidation, not by the
/// clock.
async fn node(url: &str, ttl: Option<u64>) -> Dyn {
    let settings = PoolSettings {
        session_cache: ttl.map(StdDuration::from_secs),
        ..PoolSettings::default()
    };
    Arc::new(PostgresStore::connect(url, &settings, true).await.unwrap())
}

/// A signed-in session of a new account, stored through `s`.
async fn signed_in(s: &Dyn, email: &str) -> Session {
    let a = account(s, email).await;
    let mut session = session(a.id, Utc::now());
    session.stage = SessionStage::Authenticated;
    session.created_at = Utc::now();
    s.insert_session(&session).await.unwrap();
    session
}

/// The session's `amr` as `s` answers the lookup.
async fn amr(s: &Dyn, session: &Session) -> Option<String> {
    let found = s.session_with_account(&session.id_hash).await.unwrap();
    found.map(|(s, _)| s.amr)
}

/// Runs `sql` with `$1` = `value`, `$2` = `key` in a transaction with the
/// triggers of migration 0018 off: a write no node is told of.
async fn unnoticed(raw: &PgPool, sql: &str, value: &str, key: &str) {
    let mut tx = raw.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(sql)
        .bind(value)
        .bind(key)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Sets the session's `amr` behind the triggers.
async fn behind_the_triggers(raw: &PgPool, session: &Session, amr: &str) {
    let sql = "UPDATE sessions SET amr = $1 WHERE id_hash = $2";
    unnoticed(raw, sql, amr, &session.id_hash.0).await;
}

/// Waits until `s` serves a lookup from its cache (it keeps nothing until its
/// listener listens, milliseconds after connecting); then voids what it keeps
/// with a write of its own. Fails after two seconds.
async fn until_caching(s: &Dyn, raw: &PgPool, session: &Session) {
    let deadline = Instant::now() + StdDuration::from_secs(2);
    let stored = amr(s, session).await.unwrap();
    while Instant::now() < deadline {
        let before = amr(s, session).await;
        behind_the_triggers(raw, session, "probe").await;
        let after = amr(s, session).await;
        behind_the_triggers(raw, session, &stored).await;
        if after == before {
            // Any write of the node's own voids what it keeps.
            s.delete_session(&TokenHash("no such session".into()))
                .await
                .unwrap();
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    panic!("the node never served a lookup from its cache");
}

/// Polls `s` until the session's `amr` is `want` (`None`: the session is gone);
/// how long that took, or a failure after `within`.
async fn until_seen(
    s: &Dyn,
    session: &Session,
    want: Option<&str>,
    within: StdDuration,
) -> StdDuration {
    let start = Instant::now();
    loop {
        if amr(s, session).await.as_deref() == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "still not {want:?} after {within:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn postgres_serves_kept_lookups_until_its_own_write() {
    let Some(db) = testing::TestDatabase::create().await else {
        return;
    };
    let b = node(db.url(), Some(60)).await;
    let raw = PgPool::connect(db.url()).await.unwrap();
    let s = signed_in(&b, "an@x.be").await;
    // Kept: a write behind the triggers is not seen (`until_caching`), with the
    // second steps too...
    until_caching(&b, &raw, &s).await;
    let deadline = Instant::now() + StdDuration::from_secs(2);
    loop {
        let steps = b.session_with_second_steps(&s.id_hash).await.unwrap();
        behind_the_triggers(&raw, &s, "hidden").await;
        let again = b.session_with_second_steps(&s.id_hash).await.unwrap();
        behind_the_triggers(&raw, &s, "pwd").await;
        if again.unwrap().0.amr == steps.unwrap().0.amr {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second steps were never kept"
        );
    }
    // ...but never past a write of the node's own: every time, at once.
    for n in 0..20 {
        assert!(amr(&b, &s).await.is_some());
        let now = format!("v{n}");
        behind_the_triggers(&raw, &s, &now).await;
        b.touch_session(&s.id_hash, Utc::now()).await.unwrap();
        assert_eq!(amr(&b, &s).await.as_deref(), Some(now.as_str()));
    }
    // Its sign-out is never followed by a kept "signed in".
    assert!(amr(&b, &s).await.is_some());
    b.delete_session(&s.id_hash).await.unwrap();
    assert_eq!(amr(&b, &s).await, None);
}

#[tokio::test]
async fn postgres_writes_anywhere_reach_every_nodes_cache() {
    let Some(db) = testing::TestDatabase::create().await else {
        return;
    };
    let (a, b) = (
        node(db.url(), Some(60)).await,
        node(db.url(), Some(60)).await,
    );
    let raw = PgPool::connect(db.url()).await.unwrap();
    let s = signed_in(&a, "an@x.be").await;
    until_caching(&a, &raw, &s).await;
    until_caching(&b, &raw, &s).await;

    // A sign-out on one node: gone there at once, and on the other as soon as
    // its listener hears of the commit.
    assert!(amr(&b, &s).await.is_some());
    a.delete_session(&s.id_hash).await.unwrap();
    assert_eq!(amr(&a, &s).await, None);
    let took = until_seen(&b, &s, None, StdDuration::from_secs(1)).await;
    eprintln!("the other node saw the sign-out after {took:?}");

    // A disabled account's sessions, deleted by a transaction on one node.
    let s = signed_in(&a, "bo@x.be").await;
    assert!(amr(&b, &s).await.is_some());
    a.delete_sessions_of(s.account_id).await.unwrap();
    until_seen(&b, &s, None, StdDuration::from_secs(1)).await;

    // A write from outside any node (a `tweestap` command, an operator's SQL).
    let s = signed_in(&a, "cis@x.be").await;
    assert_eq!(amr(&b, &s).await.as_deref(), Some("pwd"));
    sqlx::query("UPDATE sessions SET amr = 'outside' WHERE id_hash = $1")
        .bind(&s.id_hash.0)
        .execute(&raw)
        .await
        .unwrap();
    until_seen(&b, &s, Some("outside"), StdDuration::from_secs(1)).await;
}

#[tokio::test]
async fn postgres_node_that_lost_its_listener_serves_nothing_it_kept() {
    let Some(db) = testing::TestDatabase::create().await else {
        return;
    };
    let b = node(db.url(), Some(60)).await;
    let raw = PgPool::connect(db.url()).await.unwrap();
    let s = signed_in(&b, "an@x.be").await;
    until_caching(&b, &raw, &s).await;
    assert_eq!(amr(&b, &s).await.as_deref(), Some("pwd"));

    // The listener's connection (its last statement: LISTEN, or a heartbeat).
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND (query ILIKE 'LISTEN%' OR query ILIKE '%pg_notify%')",
    )
    .fetch_all(&raw)
    .await
    .unwrap();
    assert_eq!(killed, [true], "one listener");
    // A write nobody hears of while it is gone: not served stale.
    behind_the_triggers(&raw, &s, "unheard").await;
    until_seen(&b, &s, Some("unheard"), StdDuration::from_millis(500)).await;
    // It listens again, and keeps lookups again.
    until_caching(&b, &raw, &s).await;
}

#[tokio::test]
async fn postgres_without_a_cache_reads_every_time() {
    let Some(db) = testing::TestDatabase::create().await else {
        return;
    };
    let b = node(db.url(), None).await;
    let raw = PgPool::connect(db.url()).await.unwrap();
    let s = signed_in(&b, "an@x.be").await;
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    for n in 0..20 {
        assert!(amr(&b, &s).await.is_some());
        let now = format!("v{n}");
        behind_the_triggers(&raw, &s, &now).await;
        assert_eq!(amr(&b, &s).await.as_deref(), Some(now.as_str()));
    }
}

/// Sets a portal token's grant behind the triggers.
async fn grant_behind_the_triggers(raw: &PgPool, token: &StoredToken, grant: &str) {
    let sql = "UPDATE oidc_tokens SET grant_json = $1 WHERE token_hash = $2";
    unnoticed(raw, sql, grant, &token.token_hash.0).await;
}

/// The token's grant as `s` answers `userinfo`'s lookup, with an hour's idle
/// timeout and a day's absolute one.
async fn grant(s: &Dyn, token: &StoredToken) -> Option<(String, bool, bool)> {
    let now = Utc::now();
    let facts = s
        .oidc_token_facts(
            &token.token_hash,
            now - Duration::hours(1),
            now - Duration::days(1),
        )
        .await
        .unwrap();
    facts.map(|f| (f.token.grant, f.sid_live, f.token.revoked_at.is_some()))
}

#[tokio::test]
async fn postgres_keeps_portal_tokens_but_not_past_their_sign_ins_end() {
    let Some(db) = testing::TestDatabase::create().await else {
        return;
    };
    let (a, b) = (
        node(db.url(), Some(60)).await,
        node(db.url(), Some(60)).await,
    );
    let raw = PgPool::connect(db.url()).await.unwrap();
    let s = signed_in(&a, "an@x.be").await;
    until_caching(&b, &raw, &s).await;
    let mut token = super::oidc::stored_token("at-1", TokenKind::Access, "fam-1", s.account_id);
    token.sid = Some(s.sid.clone());
    a.insert_oidc_token(&token).await.unwrap();

    // Kept: a write behind the triggers is not seen, until a write anywhere.
    let deadline = Instant::now() + StdDuration::from_secs(2);
    for n in 0.. {
        let before = grant(&b, &token).await;
        assert!(before.as_ref().is_some_and(|(_, live, _)| *live));
        grant_behind_the_triggers(&raw, &token, &format!(r#"{{"n":{n}}}"#)).await;
        if grant(&b, &token).await == before {
            break;
        }
        assert!(Instant::now() < deadline, "the token was never kept");
    }
    a.revoke_oidc_token(&token.token_hash, Utc::now())
        .await
        .unwrap();
    let start = Instant::now();
    while grant(&b, &token)
        .await
        .is_some_and(|(_, _, revoked)| !revoked)
    {
        assert!(
            start.elapsed() < StdDuration::from_secs(1),
            "revocation unseen"
        );
        tokio::time::sleep(StdDuration::from_millis(2)).await;
    }

    // A sign-in whose idle hour ends within the entry's minute: read each time.
    let s = signed_in(&a, "bo@x.be").await;
    let near = Utc::now() - Duration::minutes(60) + Duration::seconds(30);
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
        .bind(near)
        .bind(&s.id_hash.0)
        .execute(&raw)
        .await
        .unwrap();
    let mut token = super::oidc::stored_token("at-2", TokenKind::Access, "fam-2", s.account_id);
    token.sid = Some(s.sid.clone());
    a.insert_oidc_token(&token).await.unwrap();
    for n in 0..20 {
        assert!(grant(&b, &token).await.is_some_and(|(_, live, _)| live));
        let now = format!(r#"{{"fresh":{n}}}"#);
        grant_behind_the_triggers(&raw, &token, &now).await;
        assert_eq!(
            grant(&b, &token).await,
            Some((now, true, false)),
            "not kept: its sign-in may end before the entry would"
        );
    }
}

#[tokio::test]
async fn postgres_keeps_signed_in_sessions_only_and_the_code_step_notifies_none() {
    let Some(db) = testing::TestDatabase::create().await else {
        return;
    };
    let b = node(db.url(), Some(60)).await;
    let raw = PgPool::connect(db.url()).await.unwrap();
    let signed = signed_in(&b, "an@x.be").await;
    until_caching(&b, &raw, &signed).await;

    // Half-way through a sign-in: read every time.
    let a = account(&b, "bo@x.be").await;
    let half = session(a.id, Utc::now());
    b.insert_session(&half).await.unwrap();
    for n in 0..20 {
        assert!(amr(&b, &half).await.is_some());
        let now = format!("v{n}");
        behind_the_triggers(&raw, &half, &now).await;
        assert_eq!(amr(&b, &half).await.as_deref(), Some(now.as_str()));
    }

    // The code step's counters do not notify: a kept session outlives them.
    let failures = |s: &Dyn, session: &Session| {
        let (s, hash) = (s.clone(), session.id_hash.clone());
        async move {
            let found = s.session_with_account(&hash).await.unwrap();
            found.map(|(_, a)| a.code_failures)
        }
    };
    let deadline = Instant::now() + StdDuration::from_secs(2);
    for n in 1.. {
        let before = failures(&b, &signed).await;
        sqlx::query("UPDATE accounts SET code_failures = $1 WHERE id = $2")
            .bind(n as i64)
            .bind(signed.account_id.0)
            .execute(&raw)
            .await
            .unwrap();
        tokio::time::sleep(StdDuration::from_millis(20)).await;
        if failures(&b, &signed).await == before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "every code_failures write voided the cache"
        );
    }
    // What a kept lookup is read for does notify.
    sqlx::query("UPDATE accounts SET disabled_at = now() WHERE id = $1")
        .bind(signed.account_id.0)
        .execute(&raw)
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let found = b.session_with_account(&signed.id_hash).await.unwrap();
        if found.is_some_and(|(_, a)| a.disabled_at.is_some()) {
            break;
        }
        assert!(
            start.elapsed() < StdDuration::from_secs(1),
            "disabling unseen"
        );
        tokio::time::sleep(StdDuration::from_millis(2)).await;
    }
}

/// Every table a kept lookup reads tells the nodes of a write that can change
/// it: after each statement below, by plain SQL (as from another node or psql),
/// a node that kept a session drops it within a second. (An `UPDATE … WHERE
/// false` or `DELETE … WHERE false` still fires a statement's trigger.)
#[tokio::test]
async fn postgres_every_table_a_lookup_reads_notifies() {
    let Some(db) = testing::TestDatabase::create().await else {
        return;
    };
    let b = node(db.url(), Some(60)).await;
    let raw = PgPool::connect(db.url()).await.unwrap();
    let s = signed_in(&b, "an@x.be").await;
    let other = signed_in(&b, "bo@x.be").await;
    b.insert_factor(&factor(other.account_id, t0()))
        .await
        .unwrap();
    let writes = [
        "UPDATE sessions SET amr = amr || '.' WHERE id_hash = $1",
        "UPDATE accounts SET name = name || '.' WHERE id = (SELECT account_id FROM sessions WHERE id_hash = $1)",
        "UPDATE accounts SET password_hash = password_hash || '.' WHERE id = (SELECT account_id FROM sessions WHERE id_hash = $1)",
        "UPDATE accounts SET role = 'support' WHERE id = (SELECT account_id FROM sessions WHERE id_hash = $1)",
        "DELETE FROM accounts WHERE false AND $1 <> ''",
        "UPDATE factors SET label = label || '.' WHERE account_id = (SELECT account_id FROM sessions WHERE id_hash = $1)",
        "DELETE FROM factors WHERE false AND $1 <> ''",
        "UPDATE remembered_devices SET label = label WHERE false AND $1 <> ''",
        "UPDATE recovery_codes SET used_at = used_at WHERE false AND $1 <> ''",
        "DELETE FROM oidc_consents WHERE false AND $1 <> ''",
        "UPDATE oidc_tokens SET revoked_at = revoked_at WHERE false AND $1 <> ''",
        "DELETE FROM oidc_clients WHERE false AND $1 <> ''",
    ];
    for (n, write) in writes.iter().enumerate() {
        // Kept: a write behind the triggers is not seen...
        let deadline = Instant::now() + StdDuration::from_secs(2);
        let hidden = format!("hidden {n}");
        loop {
            let before = amr(&b, &s).await;
            behind_the_triggers(&raw, &s, &hidden).await;
            if amr(&b, &s).await == before {
                break;
            }
            assert!(Instant::now() < deadline, "{write}: never kept");
        }
        // ...until this write, on another session or no row at all.
        sqlx::query(write)
            .bind(&other.id_hash.0)
            .execute(&raw)
            .await
            .unwrap();
        let start = Instant::now();
        while amr(&b, &s).await.as_deref() != Some(hidden.as_str()) {
            assert!(
                start.elapsed() < StdDuration::from_secs(1),
                "{write}: no node was told"
            );
            tokio::time::sleep(StdDuration::from_millis(2)).await;
        }
    }
}

/// A SQLite store on `path` keeping lookups for a minute (`migrate`: the
/// server's, which makes the file; a `tweestap` command's opens it as is).
async fn sqlite_node(path: &std::path::Path, migrate: bool) -> Dyn {
    let settings = PoolSettings {
        session_cache: Some(StdDuration::from_secs(60)),
        ..SqliteStore::default_pool_settings()
    };
    Arc::new(
        SqliteStore::open_with(path, &settings, migrate)
            .await
            .unwrap(),
    )
}

/// Every write, by the store itself, by another store on the same file (a
/// `tweestap` command: another process), or by plain SQL, is seen by the very
/// next lookup: sessions, their second steps and portal tokens alike.
#[tokio::test]
async fn sqlite_lookups_see_every_write_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let b = sqlite_node(&path, true).await;
    let command = sqlite_node(&path, false).await;
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let s = signed_in(&b, "an@x.be").await;
    for n in 0..20 {
        assert!(amr(&b, &s).await.is_some());
        assert!(b
            .session_with_second_steps(&s.id_hash)
            .await
            .unwrap()
            .is_some());
        let now = format!("v{n}");
        sqlx::query("UPDATE sessions SET amr = $1 WHERE id_hash = $2")
            .bind(&now)
            .bind(&s.id_hash.0)
            .execute(&raw)
            .await
            .unwrap();
        assert_eq!(amr(&b, &s).await.as_deref(), Some(now.as_str()));
        let steps = b.session_with_second_steps(&s.id_hash).await.unwrap();
        assert_eq!(steps.map(|f| f.0.amr), Some(now));
    }
    // A sign-out here, and a disabled account's sessions ended by a command.
    assert!(amr(&b, &s).await.is_some());
    b.delete_session(&s.id_hash).await.unwrap();
    assert_eq!(amr(&b, &s).await, None);
    let s = signed_in(&b, "bo@x.be").await;
    assert!(amr(&b, &s).await.is_some());
    assert!(amr(&b, &s).await.is_some());
    command.delete_sessions_of(s.account_id).await.unwrap();
    assert_eq!(amr(&b, &s).await, None);

    // A portal token revoked by a command.
    let s = signed_in(&b, "cis@x.be").await;
    let mut token = super::oidc::stored_token("at-1", TokenKind::Access, "fam-1", s.account_id);
    token.sid = Some(s.sid.clone());
    b.insert_oidc_token(&token).await.unwrap();
    assert!(grant(&b, &token).await.is_some_and(|(_, live, _)| live));
    assert!(grant(&b, &token)
        .await
        .is_some_and(|(_, _, revoked)| !revoked));
    command
        .revoke_oidc_token(&token.token_hash, Utc::now())
        .await
        .unwrap();
    assert!(grant(&b, &token)
        .await
        .is_some_and(|(_, _, revoked)| revoked));
}
