//! Upgrades: data written by older schemas survives the later migrations.

use super::*;

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
        same(&t.account_id, &Some(account));
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
