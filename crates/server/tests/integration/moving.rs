//! Moving an organisation from SQLite to PostgreSQL with `tweestap export` and
//! `tweestap import`: afterwards everyone signs in with the same password and the
//! same app. Needs PostgreSQL (skips loudly without; fails under
//! TWEESTAP_REQUIRE_ALL=1).

use crate::kit::commands::{self, Output};
use crate::kit::{totp, PASSWORD};
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use tweestap::config::Config;
use tweestap_domain::account::Role;
use tweestap_domain::clock::ManualClock;
use tweestap_domain::oidc::SigningAlg;
use tweestap_testkit::TestDatabase;

/// `tweestap <args>` with `env`, logging warnings only, run to completion.
fn tweestap(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = commands::tweestap();
    c.env("TWEESTAP_LOG", "warn")
        .args(args)
        .envs(env.iter().copied());
    commands::run(c, None)
}

/// A browser with its own cookies, talking to one server.
struct Browser {
    url: String,
    http: reqwest::Client,
}

impl Browser {
    fn new(url: String) -> Self {
        Self {
            url,
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .expect("client"),
        }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .expect("request");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }
}

async fn site(
    data_dir: &Path,
    database_url: &str,
    secret_key: &str,
    clock: &ManualClock,
) -> tweestap::Server {
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: data_dir.to_owned(),
        database_url: database_url.to_owned(),
        secret_key: secret_key.to_owned(),
        ..Config::default()
    };
    tweestap::spawn(&config, Arc::new(clock.clone()))
        .await
        .expect("server")
}

/// Every signing key of a site as (kid, retired), in kid order.
async fn key_states(site: &tweestap::Server) -> Vec<(String, bool)> {
    let mut v: Vec<(String, bool)> = site
        .app
        .signing_keys()
        .await
        .expect("keys")
        .into_iter()
        .map(|k| (k.kid, k.retired_at.is_some()))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn export_from_sqlite_import_into_postgres_and_sign_in_with_the_same_apps() {
    let Some(pg_database) = TestDatabase::create().await else {
        return;
    };
    let Some(other_pg_database) = TestDatabase::create().await else {
        return;
    };
    let (pg, other_pg) = (pg_database.url(), other_pg_database.url());
    let clock = ManualClock::new(
        Utc.with_ymd_and_hms(2026, 5, 4, 8, 0, 5)
            .single()
            .expect("t"),
    );
    let dir = tempfile::tempdir().expect("dir");
    let sqlite_dir = dir.path().join("sqlite");

    // An organisation on SQLite: three people, two with an app.
    let emails = ["an@example.be", "bo@example.be", "info@example.be"];
    let mut secrets = Vec::new();
    let mut recovery: Vec<String> = Vec::new();
    let portal;
    let kids: Vec<(String, bool)>;
    {
        let old = site(&sqlite_dir, "", "", &clock).await;
        for (i, e) in emails.iter().enumerate() {
            let role = if i == 0 { Role::Admin } else { Role::User };
            old.app
                .add_account(e, &format!("Person {i}"), role, PASSWORD)
                .await
                .expect("account");
        }
        for e in &emails[..2] {
            let s = Browser::new(old.url());
            let (st, _) = s
                .post("/api/v1/login", json!({"email": e, "password": PASSWORD}))
                .await;
            assert_eq!(st, 200);
            let (st, r) = s
                .post("/api/v1/me/factors/totp", json!({"password": PASSWORD}))
                .await;
            assert_eq!(st, 200, "{r}");
            let secret = r["secret"].as_str().expect("secret").to_owned();
            let id = r["id"].as_str().expect("id").to_owned();
            let (st, r) = s
                .post(
                    &format!("/api/v1/me/factors/totp/{id}/confirm"),
                    json!({"code": totp::code_now(&secret, &clock)}),
                )
                .await;
            assert_eq!(st, 200, "{r}");
            recovery.push(
                r["recovery_codes"][0]
                    .as_str()
                    .expect("recovery codes")
                    .to_owned(),
            );
            secrets.push(secret);
        }
        // A portal registered with `client add`, and the signing keys (one retired
        // by a rotation, still published).
        old.app.ensure_signing_keys().await.expect("keys");
        old.app.rotate_signing_keys().await.expect("rotate");
        let new_client = old
            .app
            .add_client(
                "Loket",
                &["https://loket.example/cb".into()],
                false,
                SigningAlg::Es256,
                tweestap_domain::oidc::ClientOptions {
                    third_party: true,
                    backchannel_logout_uri: Some("https://loket.example/bcl".into()),
                    ..Default::default()
                },
            )
            .await
            .expect("client");
        // an allowed the third-party portal her e-mail address; cy is disabled.
        let an = old.app.account_by_email(emails[0]).await.expect("an");
        old.app
            .give_consent(
                &an,
                &new_client.client.id,
                "openid email",
                &Default::default(),
            )
            .await
            .expect("consent");
        old.app
            .add_account("cy@example.be", "Cy", Role::User, PASSWORD)
            .await
            .expect("account");
        old.app
            .set_account_disabled("cy@example.be", true)
            .await
            .expect("disabled");
        portal = Some((new_client.client.id, new_client.secret.expect("secret")));
        kids = key_states(&old).await;
        old.stop();
    }
    let (portal_id, portal_secret): (String, String) = portal.expect("portal");
    assert_eq!(kids.len(), 4, "two active keys, two retired");
    let key = std::fs::read_to_string(sqlite_dir.join("secret.key")).expect("key");
    let key = key.trim();

    // Export (mode 0600: it holds password hashes).
    let file = dir.path().join("export.json");
    let sqlite_arg = sqlite_dir.to_str().expect("utf-8");
    let file_arg = file.to_str().expect("utf-8");
    let out = tweestap(
        &["--data-dir", sqlite_arg, "export", "--output", file_arg],
        &[],
    );
    assert!(out.status.success(), "{}", out.describe());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let doc: Value = serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("json");
    assert_eq!(doc["format"], "tweestap-export");
    assert_eq!(doc["accounts"].as_array().map(Vec::len), Some(4));
    assert_eq!(doc["factors"].as_array().map(Vec::len), Some(2));

    // Importing with another key is refused before anything is written.
    let pg_dir = dir.path().join("pg");
    let pg_arg = pg_dir.to_str().expect("utf-8");
    let wrong_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let out = tweestap(
        &["--data-dir", pg_arg, "import", file_arg],
        &[
            ("TWEESTAP_DATABASE_URL", other_pg),
            ("TWEESTAP_SECRET_KEY", wrong_key),
        ],
    );
    assert!(!out.status.success(), "{}", out.describe());
    assert!(out.describe().contains("secret key"), "{}", out.describe());
    let out = tweestap(
        &["--data-dir", pg_arg, "user", "list"],
        &[
            ("TWEESTAP_DATABASE_URL", other_pg),
            ("TWEESTAP_SECRET_KEY", wrong_key),
        ],
    );
    assert!(out.status.success(), "{}", out.describe());
    assert!(
        !out.describe().contains("@example.be"),
        "nothing was written"
    );

    // Import into PostgreSQL with the same key. The new database generated its own
    // signing keys on first use (`keys list`); the imported ones replace them.
    let env = [("TWEESTAP_DATABASE_URL", pg), ("TWEESTAP_SECRET_KEY", key)];
    let out = tweestap(&["--data-dir", pg_arg, "keys", "list"], &env);
    assert!(out.status.success(), "{}", out.describe());
    let out = tweestap(&["--data-dir", pg_arg, "import", file_arg], &env);
    assert!(out.status.success(), "{}", out.describe());
    assert!(
        out.describe().contains("imported 4 accounts, 2 factors"),
        "{}",
        out.describe()
    );
    assert!(
        out.describe().contains("4 signing keys, 1 clients"),
        "{}",
        out.describe()
    );
    // Twice is refused: imports never merge.
    let out = tweestap(&["--data-dir", pg_arg, "import", file_arg], &env);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.describe().contains("empty database"),
        "{}",
        out.describe()
    );
    let out = tweestap(&["--data-dir", pg_arg, "user", "list"], &env);
    assert!(
        out.describe().contains("info@example.be"),
        "{}",
        out.describe()
    );

    // Everyone signs in on PostgreSQL: the app users with their app.
    clock.advance(chrono::Duration::seconds(30));
    let new = site(&pg_dir, pg, key, &clock).await;
    for (i, e) in emails.iter().enumerate() {
        let s = Browser::new(new.url());
        let (st, r) = s
            .post("/api/v1/login", json!({"email": e, "password": PASSWORD}))
            .await;
        assert_eq!(st, 200, "{e}: {r}");
        if let Some(secret) = secrets.get(i) {
            assert_eq!(r["state"], "second_factor", "{e}");
            let (st, r) = s
                .post(
                    "/api/v1/login/second-factor",
                    json!({"method": "totp", "code": totp::code_now(secret, &clock)}),
                )
                .await;
            assert_eq!(
                (st, r["state"].as_str()),
                (200, Some("authenticated")),
                "{e}: {r}"
            );
        } else {
            assert_eq!(r["state"], "authenticated", "{e}");
        }
    }
    // Recovery codes came along too: bo signs in with one.
    let s = Browser::new(new.url());
    s.post(
        "/api/v1/login",
        json!({"email": emails[1], "password": PASSWORD}),
    )
    .await;
    let (st, r) = s
        .post(
            "/api/v1/login/second-factor",
            json!({"method": "recovery_code", "code": recovery[1]}),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    // The audit log came along.
    let log = new
        .app
        .audit_log(1000, Some("an@example.be"))
        .await
        .expect("audit");
    assert!(log.iter().any(|r| r.event == "factor_added"), "{log:?}");
    // The portal's registration and the signing keys came along: the same kids,
    // the retired ones still retired; the client's secret and algorithm intact.
    assert_eq!(key_states(&new).await, kids);
    let jwks = new.app.jwks().await.expect("jwks");
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(4), "{jwks}");
    let c = new
        .app
        .client(&portal_id)
        .await
        .expect("client")
        .expect("the portal");
    assert!(new.app.verify_client_secret(&c, &portal_secret));
    assert_eq!(c.id_token_alg, SigningAlg::Es256);
    assert!(c.options.third_party);
    assert_eq!(
        c.options.backchannel_logout_uri.as_deref(),
        Some("https://loket.example/bcl")
    );
    // an's consent came along; cy is still disabled.
    let an = new.app.account_by_email(emails[0]).await.expect("an");
    let consents = new.app.consents(an.id).await.expect("consents");
    assert_eq!(consents.len(), 1);
    assert_eq!(consents[0].0.scope, "openid email");
    let cy = new.app.account_by_email("cy@example.be").await.expect("cy");
    assert!(cy.disabled_at.is_some());
    let (st, _) = Browser::new(new.url())
        .post(
            "/api/v1/login",
            json!({"email": "cy@example.be", "password": PASSWORD}),
        )
        .await;
    assert_eq!(st, 401);
    let signed = new
        .app
        .sign_id_token(&json!({"sub": "x"}), SigningAlg::Es256)
        .await
        .expect("the imported key signs");
    let kid = jsonwebtoken::decode_header(&signed)
        .expect("a JWS")
        .kid
        .expect("kid");
    assert!(
        kids.iter().any(|(k, retired)| !retired && *k == kid),
        "signed with the moved active key {kid}"
    );
    new.stop();
}
