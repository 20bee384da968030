//! Passkeys through the JSON API, with a software authenticator: registration, the
//! second factor, a sign-in without a password, and the attacks on them (another
//! origin, a replayed answer, a cloned key), on both backends.

use crate::kit::passkey::SoftKey;
use crate::kit::{stored_texts, Backend, Client, TestApp, PASSWORD};
use serde_json::{json, Value};

crate::on_both_backends!(
    registering_a_passkey_and_using_it_as_the_second_factor,
    signing_in_with_a_passkey_without_a_password,
    a_passkey_answer_from_another_origin_is_refused,
    a_replayed_passkey_answer_is_refused,
    a_passkey_whose_counter_goes_backwards_is_refused_as_a_possible_clone,
    a_removed_passkey_no_longer_signs_in,
    the_policy_decides_who_may_sign_in_without_a_password,
    a_support_reset_voids_passkeys,
    a_passkey_only_account_counts_in_the_roll_out,
);

/// Signs `email` in with the password and registers a passkey named `name`.
async fn with_passkey(app: &TestApp, email: &str, name: &str) -> (Client, SoftKey, String) {
    app.add_user(email).await;
    let c = app.client();
    let r = c.login(email, PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut key = SoftKey::for_app(&app.url);
    let id = register(&c, &mut key, name).await;
    (c, key, id)
}

async fn register(c: &Client, key: &mut SoftKey, name: &str) -> String {
    let r = c
        .post(
            "/api/v1/me/factors/passkey",
            json!({"password": PASSWORD, "name": name}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let credential = key.register(&r.body["options"]);
    let r = c
        .post(
            &format!("/api/v1/me/factors/passkey/{id}/confirm"),
            json!({ "credential": credential }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["kind"], "passkey");
    assert_eq!(r.body["label"], name);
    id
}

async fn sign_in_with(c: &Client, key: &mut SoftKey) -> (u16, Value) {
    let r = c.post("/api/v1/login/passkey/options", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = key.assert(&r.body["options"]);
    let r = c
        .post("/api/v1/login/passkey", json!({ "credential": answer }))
        .await;
    (r.status, r.body)
}

async fn registering_a_passkey_and_using_it_as_the_second_factor(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@tweestad.example").await;
    let c = app.client();
    assert_eq!(c.login("an@tweestad.example", PASSWORD).await.status, 200);
    // The password is asked, and the name must be a name.
    let r = c
        .post(
            "/api/v1/me/factors/passkey",
            json!({"password": "wrong", "name": "laptop"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (403, Some("invalid_password"))
    );
    let r = c
        .post(
            "/api/v1/me/factors/passkey",
            json!({"password": PASSWORD, "name": " "}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (400, Some("invalid_name"))
    );
    let r = c
        .post(
            "/api/v1/me/factors/passkey",
            json!({"password": PASSWORD, "name": "laptop"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let pk = &r.body["options"]["publicKey"];
    assert_eq!(
        pk["rp"]["id"], "localhost",
        "the loopback address stands for localhost"
    );
    assert_eq!(pk["attestation"], "none");
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "preferred");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    let id = r.body["id"].as_str().expect("id").to_owned();
    let mut key = SoftKey::for_app(&app.url);
    let credential = key.register(&r.body["options"]);
    let r = c
        .post(
            &format!("/api/v1/me/factors/passkey/{id}/confirm"),
            json!({ "credential": credential }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["recovery_codes"].as_array().map(Vec::len),
        Some(10),
        "the first factor brings recovery codes"
    );
    let me = c.get("/api/v1/me").await;
    assert_eq!(me.body["factors"][0]["kind"], "passkey");
    // The same authenticator is excluded from a second registration.
    let r = c
        .post(
            "/api/v1/me/factors/passkey",
            json!({"password": PASSWORD, "name": "again"}),
        )
        .await;
    let excluded = r.body["options"]["publicKey"]["excludeCredentials"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(excluded.len(), 1, "{}", r.body);

    // Signing in: the password, then the passkey.
    let c = app.client();
    let r = c.login("an@tweestad.example", PASSWORD).await;
    assert_eq!(r.body["state"], "second_factor");
    let methods = r.body["methods"].as_array().expect("methods").clone();
    assert!(methods.contains(&json!("passkey")), "{methods:?}");
    assert_eq!(c.get("/api/v1/me").await.status, 401, "half signed in");
    let r = c.post("/api/v1/login/passkey/options", json!({})).await;
    let allowed = r.body["options"]["publicKey"]["allowCredentials"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(allowed.len(), 1, "the account's key is named: {}", r.body);
    let answer = key.assert(&r.body["options"]);
    let r = c
        .post("/api/v1/login/passkey", json!({ "credential": answer }))
        .await;
    assert_eq!((r.status, &r.body["state"]), (200, &json!("authenticated")));
    assert_eq!(c.get("/api/v1/me").await.status, 200);
    let amr = stored_texts(&app, "SELECT amr FROM sessions").await;
    assert!(amr.contains(&"pwd hwk user pin pk".to_owned()), "{amr:?}");
    let events = stored_texts(&app, "SELECT event FROM audit_log").await;
    assert!(events.contains(&"factor_added".to_owned()));
    assert!(events.contains(&"code_succeeded".to_owned()));
}

async fn signing_in_with_a_passkey_without_a_password(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("bo@tweestad.example").await;
    let c = app.client();
    assert_eq!(c.login("bo@tweestad.example", PASSWORD).await.status, 200);
    // A synced passkey, as a phone's password manager keeps it: no counter.
    let mut key = SoftKey::for_app(&app.url);
    key.synced = true;
    key.counter = 0;
    register(&c, &mut key, "telefoon").await;
    let c = app.client();
    let r = c.post("/api/v1/login/passkey/options", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let pk = &r.body["options"]["publicKey"];
    assert!(
        pk["allowCredentials"].as_array().is_none_or(Vec::is_empty),
        "a sign-in without a password names no keys: {pk}"
    );
    let answer = key.assert(&r.body["options"]);
    let r = c
        .post("/api/v1/login/passkey", json!({ "credential": answer }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let me = c.get("/api/v1/me").await;
    assert_eq!(me.body["email"], "bo@tweestad.example");
    let amr = stored_texts(&app, "SELECT amr FROM sessions").await;
    assert!(amr.contains(&"swk user pin pk".to_owned()), "{amr:?}");
}

async fn a_passkey_answer_from_another_origin_is_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, mut key, _) = with_passkey(&app, "cas@tweestad.example", "laptop").await;
    // A look-alike site relays our options to the person's browser: the browser
    // signs for its own origin, which we refuse.
    key.origin = "https://tweestad-login.example".into();
    let c = app.client();
    let (status, body) = sign_in_with(&c, &mut key).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("passkey_invalid"))
    );
    assert_eq!(c.get("/api/v1/me").await.status, 401);
    let events = stored_texts(&app, "SELECT event FROM audit_log").await;
    assert!(events.contains(&"passkey_failed".to_owned()), "{events:?}");
}

async fn a_replayed_passkey_answer_is_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, mut key, _) = with_passkey(&app, "dirk@tweestad.example", "laptop").await;
    let c = app.client();
    let r = c.post("/api/v1/login/passkey/options", json!({})).await;
    let answer = key.assert(&r.body["options"]);
    let first = c
        .post("/api/v1/login/passkey", json!({ "credential": answer }))
        .await;
    assert_eq!(first.status, 200);
    // The same answer again, from another browser: its challenge was used.
    let other = app.client();
    let again = other
        .post("/api/v1/login/passkey", json!({ "credential": answer }))
        .await;
    assert_eq!(
        (again.status, again.body["error"].as_str()),
        (400, Some("passkey_expired"))
    );
    assert_eq!(other.get("/api/v1/me").await.status, 401);
}

async fn a_passkey_whose_counter_goes_backwards_is_refused_as_a_possible_clone(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, mut key, _) = with_passkey(&app, "els@tweestad.example", "YubiKey").await;
    key.counter = 10;
    let c = app.client();
    assert_eq!(sign_in_with(&c, &mut key).await.0, 200);
    // A copy of the key, still at an older count.
    let c = app.client();
    let r = c.post("/api/v1/login/passkey/options", json!({})).await;
    let answer = key.assert_with_counter(&r.body["options"], 5);
    let r = c
        .post("/api/v1/login/passkey", json!({ "credential": answer }))
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("passkey_possible_clone"))
    );
    let events = stored_texts(&app, "SELECT event FROM audit_log").await;
    assert!(
        events.contains(&"passkey_clone_suspected".to_owned()),
        "{events:?}"
    );
    // The real key, counting on, still works.
    assert_eq!(sign_in_with(&app.client(), &mut key).await.0, 200);
}

async fn a_removed_passkey_no_longer_signs_in(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (c, mut key, id) = with_passkey(&app, "fien@tweestad.example", "laptop").await;
    let r = c
        .delete(
            &format!("/api/v1/me/factors/{id}"),
            json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let (status, body) = sign_in_with(&app.client(), &mut key).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("passkey_unknown"))
    );
    let events = stored_texts(&app, "SELECT event FROM audit_log").await;
    assert!(events.contains(&"factor_removed".to_owned()));
}

async fn the_policy_decides_who_may_sign_in_without_a_password(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, mut key, _) = with_passkey(&app, "gert@tweestad.example", "laptop").await;
    app.add_admin("beheer@tweestad.example").await;
    let admin = app
        .engine()
        .account_by_email("beheer@tweestad.example")
        .await
        .expect("admin");
    app.engine()
        .update_policy(
            &admin,
            &json!({"roles": {"user": {"passwordless": false}}}),
            &Default::default(),
        )
        .await
        .expect("policy");
    let (status, body) = sign_in_with(&app.client(), &mut key).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("passkey_unknown"))
    );
    // As the second factor it still works.
    let c = app.client();
    assert_eq!(c.login("gert@tweestad.example", PASSWORD).await.status, 200);
    assert_eq!(sign_in_with(&c, &mut key).await.0, 200);
}

async fn a_support_reset_voids_passkeys(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, mut key, _) = with_passkey(&app, "hanne@tweestad.example", "laptop").await;
    let account = app
        .engine()
        .account_by_email("hanne@tweestad.example")
        .await
        .expect("account");
    app.engine()
        .reset_two_factor(
            tweestap_domain::service::Actor::Console,
            account.id,
            "lost the laptop",
            &app.url,
            &Default::default(),
        )
        .await
        .expect("reset");
    let (status, body) = sign_in_with(&app.client(), &mut key).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("passkey_unknown"))
    );
    let kinds = stored_texts(&app, "SELECT kind FROM factors").await;
    assert!(kinds.is_empty(), "the reset voided every factor: {kinds:?}");
}

/// The console counts an account whose only factor is a passkey as protected, today
/// and in the daily series it keeps.
async fn a_passkey_only_account_counts_in_the_roll_out(backend: Backend) {
    let app = TestApp::start(backend).await;
    with_passkey(&app, "ines@tweestad.example", "laptop").await;
    app.add_user("jan@tweestad.example").await;
    let counts = app.engine().two_factor_counts().await.expect("counts");
    let users = counts
        .iter()
        .find(|(r, _)| *r == tweestap_domain::account::Role::User)
        .map(|(_, c)| *c)
        .expect("users");
    assert_eq!((users.passkey, users.none, users.total()), (1, 1, 2));
    assert_eq!(users.with_two_factor(), 1);
    app.engine().record_rollout_day().await.expect("day");
    let today = app.engine().now().date_naive();
    let days = app
        .engine()
        .store()
        .rollout_days(today)
        .await
        .expect("series");
    let kept = days
        .iter()
        .find(|d| d.role == tweestap_domain::account::Role::User)
        .expect("today's row");
    assert_eq!(kept.counts, users, "the day keeps the passkey-only account");
    let listed = app
        .engine()
        .store()
        .list_accounts_page(
            &tweestap_domain::console::AccountFilter {
                two_factor: Some(tweestap_domain::console::TwoFactorState::Passkey),
                ..Default::default()
            },
            &[],
            None,
            10,
        )
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].account.email.as_str(), "ines@tweestad.example");
}
