//! Loket, the example portal, signing in through tweestap.

use super::driver::{body_text, browser, click, fill, wait_path};
use crate::kit::{totp, Backend, PASSWORD};
use chrono::{TimeZone, Utc};
use fantoccini::Locator;
use std::sync::Arc;
use tweestap::config::Config;
use tweestap_domain::account::Role;
use tweestap_domain::clock::ManualClock;

crate::on_both_backends!(sign_in_at_the_example_portal);

/// Loket, the example portal, signs its users in through tweestap with the
/// `openidconnect` crate: open Loket → tweestap's sign-in (e-mail, password, the
/// app's code) → back at Loket, which verified the ID token and shows who signed
/// in and how. Loket demands a second factor (`PORTAL_REQUIRE_MFA`).
async fn sign_in_at_the_example_portal(backend: Backend) {
    const LOKET_SECRET: &str = "geheim-van-het-loket";
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((_driver, c)) = browser(&dir.path().join("profile")).await else {
        return;
    };
    // Loket checks the ID token's expiry on the wall clock, so tweestap's clock
    // starts at the wall clock's current step (plus ten seconds, mid-step).
    let now = Utc::now().timestamp();
    let clock = ManualClock::new(
        Utc.timestamp_opt(now - now % 30 + 10, 0)
            .single()
            .expect("time"),
    );
    // Loket's address first: tweestap registers its redirect URI.
    let loket_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr");
    let loket_url = format!("http://{loket_addr}");
    let callback = format!("{loket_url}/callback");
    let hash = tweestap_domain::oidc::client::secret_hash(LOKET_SECRET);
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().join("data"),
        database_url: backend.database_url(),
        ..Config::default()
    };
    config.oidc.clients = vec![tweestap::config::oidc::ClientConfig {
        id: "loket".into(),
        name: "Loket".into(),
        redirect_uris: vec![callback.clone()],
        secret_hash: Some(hash),
        ..Default::default()
    }];
    let server = tweestap::spawn(&config, Arc::new(clock.clone()))
        .await
        .expect("server");
    server
        .app
        .add_account("an@example.be", "An Peeters", Role::User, PASSWORD)
        .await
        .expect("account");
    let url = server.url();

    // An authenticator app, set up over the API.
    let api = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let r = api
        .post(format!("{url}/api/v1/login"))
        .json(&serde_json::json!({ "email": "an@example.be", "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status().as_u16(), 200);
    let r: serde_json::Value = api
        .post(format!("{url}/api/v1/me/factors/totp"))
        .json(&serde_json::json!({ "password": PASSWORD }))
        .send()
        .await
        .expect("factor")
        .json()
        .await
        .expect("json");
    let key = r["secret"].as_str().expect("secret").to_owned();
    let code_now = || totp::code_now(&key, &clock);
    let r = api
        .post(format!(
            "{url}/api/v1/me/factors/totp/{}/confirm",
            r["id"].as_str().expect("id")
        ))
        .json(&serde_json::json!({ "code": code_now() }))
        .send()
        .await
        .expect("confirm");
    assert_eq!(r.status().as_u16(), 200);
    totp::next_step(&clock);

    let (addr, loket) = tweestap_example_portal::serve(tweestap_example_portal::Config {
        issuer: url.clone(),
        client_id: "loket".into(),
        client_secret: LOKET_SECRET.into(),
        listen: loket_addr,
        redirect_url: callback,
        require_mfa: true,
    })
    .await
    .expect("Loket starts");
    assert_eq!(addr, loket_addr);

    // Loket sends the browser to tweestap's sign-in.
    c.goto(&format!("{loket_url}/")).await.expect("goto");
    wait_path(&c, |p| p == "/login", "tweestap's /login").await;
    assert!(c
        .current_url()
        .await
        .expect("url")
        .as_str()
        .starts_with(&format!("{url}/login?rd=")));
    fill(&c, "#email", "an@example.be").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "form.card button[type=submit]").await;
    wait_path(&c, |p| p == "/login/code", "/login/code").await;
    fill(&c, "#code", &code_now()).await;
    click(&c, "form.card button[type=submit]").await;
    // Back at Loket (tweestap's own home page says "Welkom" too: check where).
    let mut at = String::new();
    for _ in 0..600 {
        at = c.current_url().await.expect("url").to_string();
        if at == format!("{loket_url}/") && c.find(Locator::Css("#welcome")).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(at, format!("{loket_url}/"), "{}", body_text(&c).await);
    let text = body_text(&c).await;
    assert!(text.contains("Welkom, An Peeters"), "{text}");
    assert!(text.contains("an@example.be"), "{text}");
    let amr = c
        .find(Locator::Css("#amr"))
        .await
        .expect("amr")
        .text()
        .await
        .expect("text");
    assert!(amr.contains("pwd") && amr.contains("otp"), "{amr}");
    let acr = c.find(Locator::Css("#acr")).await.expect("acr");
    assert_eq!(
        acr.attr("data-acr").await.expect("attr").as_deref(),
        Some(tweestap_domain::oidc::discovery::ACR_TWO_FACTOR)
    );
    assert!(acr
        .text()
        .await
        .expect("text")
        .contains("met een tweede stap"));

    c.close().await.expect("close");
    loket.abort();
    server.stop();
}
