//! Security keys (a USB key without a PIN: a touch only) through the JSON API, with
//! the test kit's software authenticator in that mode: registered as `"kind":
//! "security_key"`, used as the second factor (alone or with the account's passkeys
//! in one ceremony), never a sign-in without a password, and what the ID token then
//! says (RFC 8176 `amr`), on both backends.

use crate::kit::passkey::SoftKey;
use crate::kit::{get, location, query_param, stored_texts, Backend, Client, TestApp, PASSWORD};
use base64::Engine as _;
use serde_json::{json, Value};
use tweestap_domain::oidc::flow::s256;

crate::on_both_backends!(
    registering_a_security_key_and_using_it_after_the_password,
    a_security_key_never_signs_in_without_a_password,
    passkeys_and_security_keys_of_one_account_in_one_ceremony,
    a_security_key_whose_counter_goes_backwards_is_refused_as_a_possible_clone,
);

const SPA_CB: &str = "http://127.0.0.1:9/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-sleutel";

async fn app_with_portal(backend: Backend) -> TestApp {
    TestApp::start_configured(backend, |c| {
        c.oidc.clients = vec![tweestap::config::oidc::ClientConfig {
            id: "spa".into(),
            name: "App".into(),
            redirect_uris: vec![SPA_CB.into()],
            public: true,
            ..Default::default()
        }];
    })
    .await
}

/// Registers `key` on the signed-in `c` as `kind` ("passkey" or "security_key");
/// returns the begin call's options and the factor's id.
async fn register(c: &Client, key: &mut SoftKey, name: &str, kind: &str) -> (Value, String) {
    let r = c
        .post(
            "/api/v1/me/factors/passkey",
            json!({"password": PASSWORD, "name": name, "kind": kind}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let options = r.body["options"].clone();
    let credential = key.register(&options);
    let r = c
        .post(
            &format!("/api/v1/me/factors/passkey/{id}/confirm"),
            json!({ "credential": credential }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["kind"], "passkey", "the same factor kind");
    (options, id)
}

/// The password, then the options of the second factor.
async fn half_signed_in(app: &TestApp, email: &str) -> (Client, Value) {
    let c = app.client();
    let r = c.login(email, PASSWORD).await;
    assert_eq!(r.body["state"], "second_factor", "{}", r.body);
    let methods = r.body["methods"].as_array().cloned().unwrap_or_default();
    assert!(methods.contains(&json!("passkey")), "{methods:?}");
    let r = c.post("/api/v1/login/passkey/options", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    (c, r.body["options"].clone())
}

async fn answer(c: &Client, credential: Value) -> (u16, Value) {
    let r = c
        .post("/api/v1/login/passkey", json!({ "credential": credential }))
        .await;
    (r.status, r.body)
}

/// The ID token a portal gets for the signed-in `c` (its claims; the signature is
/// checked by the OIDC tests).
async fn id_token_claims(app: &TestApp, c: &Client) -> Value {
    let redirect: String = url::form_urlencoded::byte_serialize(SPA_CB.as_bytes()).collect();
    let url = format!(
        "/oidc/authorize?response_type=code&client_id=spa&redirect_uri={redirect}&scope=openid&state=s&nonce=n&code_challenge={}&code_challenge_method=S256",
        s256(VERIFIER)
    );
    let r = get(c, &url).await;
    let to = location(&r);
    let code = query_param(&to, "code").unwrap_or_else(|| panic!("a code: {to}"));
    let r = reqwest::Client::new()
        .post(format!("{}/oidc/token", app.url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", SPA_CB),
            ("client_id", "spa"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(r.status().as_u16(), 200);
    let t: Value = r.json().await.expect("json");
    let jwt = t["id_token"].as_str().expect("id token");
    let payload = jwt.split('.').nth(1).expect("payload");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&raw).expect("claims")
}

async fn registering_a_security_key_and_using_it_after_the_password(backend: Backend) {
    let app = app_with_portal(backend).await;
    app.add_user("an@tweestad.example").await;
    let c = app.client();
    assert_eq!(c.login("an@tweestad.example", PASSWORD).await.status, 200);
    // An unknown kind is refused; the default stays a passkey (see the passkey tests).
    let r = c
        .post(
            "/api/v1/me/factors/passkey",
            json!({"password": PASSWORD, "name": "x", "kind": "magic"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let mut key = SoftKey::usb_key_for_app(&app.url);
    let (options, _) = register(&c, &mut key, "YubiKey", "security_key").await;
    let pk = &options["publicKey"];
    assert_eq!(pk["attestation"], "none");
    let sel = &pk["authenticatorSelection"];
    assert_eq!(sel["userVerification"], "discouraged", "{pk}");
    assert_ne!(sel["residentKey"], "required", "{pk}");
    assert_ne!(sel["requireResidentKey"], true, "{pk}");
    assert!(
        pk["extensions"].get("credentialProtectionPolicy").is_none(),
        "no credProtect, which would lock a PIN-less key out: {pk}"
    );
    let me = c.get("/api/v1/me").await;
    assert_eq!(me.body["factors"][0]["kind"], "passkey");
    assert_eq!(me.body["factors"][0]["label"], "YubiKey");
    let profile = get(&c, "/account").await.text().await.expect("page");
    assert!(
        profile.contains("Beveiligingssleutel “YubiKey”"),
        "My Profile names it a security key"
    );

    // The password, then a touch of the key (no PIN): signed in with two factors.
    let (c, options) = half_signed_in(&app, "an@tweestad.example").await;
    let allowed = options["publicKey"]["allowCredentials"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(allowed.len(), 1, "{options}");
    assert_eq!(options["publicKey"]["userVerification"], "discouraged");
    let (status, body) = answer(&c, key.assert(&options)).await;
    assert_eq!((status, &body["state"]), (200, &json!("authenticated")));
    assert_eq!(c.get("/api/v1/me").await.status, 200);
    let amr = stored_texts(&app, "SELECT amr FROM sessions").await;
    assert!(amr.contains(&"pwd hwk pk".to_owned()), "{amr:?}");
    let claims = id_token_claims(&app, &c).await;
    assert_eq!(claims["amr"], json!(["pwd", "hwk", "mfa"]), "{claims}");
    assert_eq!(claims["acr"], "urn:tweestap:acr:mfa");
    let events = stored_texts(&app, "SELECT event FROM audit_log").await;
    assert!(events.contains(&"factor_added".to_owned()));
    assert!(events.contains(&"code_succeeded".to_owned()));
    let sql = "SELECT detail FROM audit_log WHERE event = 'code_succeeded'";
    let details = stored_texts(&app, sql).await;
    assert!(
        details
            .iter()
            .any(|d| d.ends_with("kind=passkey key=security_key")),
        "{details:?}"
    );
}

async fn a_security_key_never_signs_in_without_a_password(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("bo@tweestad.example").await;
    let c = app.client();
    assert_eq!(c.login("bo@tweestad.example", PASSWORD).await.status, 200);
    let mut key = SoftKey::usb_key_for_app(&app.url);
    register(&c, &mut key, "sleutel", "security_key").await;
    // Without a session: a touch of the key is one factor, refused.
    for verifies in [false, true] {
        // Even answering as a key that keeps the user and verifies a PIN would: it
        // was registered as a security key.
        key.verifies = verifies;
        key.usb = !verifies;
        let c = app.client();
        let r = c.post("/api/v1/login/passkey/options", json!({})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let (status, body) = answer(&c, key.assert(&r.body["options"])).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("passkey_unknown")),
            "verifies={verifies}"
        );
        assert_eq!(c.get("/api/v1/me").await.status, 401);
    }
    let events = stored_texts(&app, "SELECT event FROM audit_log").await;
    assert!(events.contains(&"passkey_failed".to_owned()), "{events:?}");
    // After the password it works.
    key.verifies = false;
    key.usb = true;
    let (c, options) = half_signed_in(&app, "bo@tweestad.example").await;
    assert_eq!(answer(&c, key.assert(&options)).await.0, 200);
}

async fn passkeys_and_security_keys_of_one_account_in_one_ceremony(backend: Backend) {
    let app = app_with_portal(backend).await;
    app.add_user("cas@tweestad.example").await;
    let c = app.client();
    assert_eq!(c.login("cas@tweestad.example", PASSWORD).await.status, 200);
    let mut passkey = SoftKey::for_app(&app.url);
    register(&c, &mut passkey, "laptop", "passkey").await;
    let mut usb = SoftKey::usb_key_for_app(&app.url);
    let (options, _) = register(&c, &mut usb, "YubiKey", "security_key").await;
    let excluded = options["publicKey"]["excludeCredentials"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(excluded.len(), 1, "the passkey is excluded: {options}");

    // One options call names both keys and asks for verification where possible
    // (the passkey needs it), without steering the browser to USB keys only.
    let (c, options) = half_signed_in(&app, "cas@tweestad.example").await;
    let pk = &options["publicKey"];
    assert_eq!(pk["allowCredentials"].as_array().map(Vec::len), Some(2));
    assert_eq!(pk["userVerification"], "preferred");
    assert!(pk.get("hints").is_none_or(Value::is_null), "{pk}");
    // The touch-only key answers it.
    let (status, body) = answer(&c, usb.assert(&options)).await;
    assert_eq!(status, 200, "{body}");
    let claims = id_token_claims(&app, &c).await;
    assert_eq!(claims["amr"], json!(["pwd", "hwk", "mfa"]));

    // The same kind of call answered by the passkey, which verifies the person.
    let (c, options) = half_signed_in(&app, "cas@tweestad.example").await;
    let (status, body) = answer(&c, passkey.assert(&options)).await;
    assert_eq!(status, 200, "{body}");
    let claims = id_token_claims(&app, &c).await;
    assert_eq!(
        claims["amr"],
        json!(["pwd", "hwk", "user", "pin", "mfa"]),
        "{claims}"
    );
    assert_eq!(claims["acr"], "urn:tweestap:acr:mfa");

    // A passkey is still held to verifying the person, even in this ceremony.
    passkey.verifies = false;
    let (c, options) = half_signed_in(&app, "cas@tweestad.example").await;
    let (status, body) = answer(&c, passkey.assert(&options)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("passkey_invalid"))
    );
    assert_eq!(c.get("/api/v1/me").await.status, 401);
    // And the passkey alone still signs in without a password.
    passkey.verifies = true;
    let c = app.client();
    let r = c.post("/api/v1/login/passkey/options", json!({})).await;
    assert_eq!(answer(&c, passkey.assert(&r.body["options"])).await.0, 200);
}

async fn a_security_key_whose_counter_goes_backwards_is_refused_as_a_possible_clone(
    backend: Backend,
) {
    let app = TestApp::start(backend).await;
    app.add_user("dirk@tweestad.example").await;
    let c = app.client();
    assert_eq!(c.login("dirk@tweestad.example", PASSWORD).await.status, 200);
    let mut key = SoftKey::usb_key_for_app(&app.url);
    register(&c, &mut key, "YubiKey", "security_key").await;
    key.counter = 10;
    let (c, options) = half_signed_in(&app, "dirk@tweestad.example").await;
    assert_eq!(answer(&c, key.assert(&options)).await.0, 200);
    // A copy of the key, at an older count.
    let (c, options) = half_signed_in(&app, "dirk@tweestad.example").await;
    let (status, body) = answer(&c, key.assert_with_counter(&options, 5)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("passkey_possible_clone"))
    );
    let events = stored_texts(&app, "SELECT event FROM audit_log").await;
    assert!(
        events.contains(&"passkey_clone_suspected".to_owned()),
        "{events:?}"
    );
    // The real key, counting on, still works.
    let (c, options) = half_signed_in(&app, "dirk@tweestad.example").await;
    assert_eq!(answer(&c, key.assert(&options)).await.0, 200);
}
