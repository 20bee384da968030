//! The foundation journey in a real headless Chromium: set up an authenticator app
//! through the pages, sign out, sign in again with a code.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Locally it skips (loudly) when
//! they are missing; with TWEESTAP_REQUIRE_ALL=1 (CI) a missing browser fails.

use chrono::{Duration, TimeZone, Utc};
use fantoccini::{Client, ClientBuilder, Locator};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use tweestap::config::Config;
use tweestap_domain::account::Role;
use tweestap_domain::clock::{Clock, ManualClock};
use tweestap_domain::totp::TotpParams;

const PASSWORD: &str = "correct horse battery";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find(cmds: &[&str]) -> Option<String> {
    cmds.iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|c| c.to_string())
}

/// Starts chromedriver and a browser session, or None when they are not installed.
async fn browser(profile: &std::path::Path) -> Option<(Driver, Client)> {
    let driver = find(&["chromedriver", "/usr/bin/chromedriver"]);
    let chromium = find(&["chromium", "/usr/bin/chromium"]);
    let (Some(driver), Some(chromium)) = (driver, chromium) else {
        if std::env::var("TWEESTAP_REQUIRE_ALL").as_deref() == Ok("1") {
            panic!("TWEESTAP_REQUIRE_ALL=1 but chromium/chromedriver are not installed");
        }
        eprintln!("\n!!!! SKIPPING browser test: install Debian's chromium and chromium-driver to run it !!!!\n");
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new(&driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let guard = Driver(child);
    let caps: serde_json::Map<String, serde_json::Value> = serde_json::from_value(serde_json::json!({
        "goog:chromeOptions": {
            "binary": chromium_path(&chromium),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1024,900", "--lang=nl-BE",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": { "intl.accept_languages": "nl-BE,nl" }
        }
    }))
    .expect("capabilities");
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let mut last_err = String::new();
    for _ in 0..100 {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => return Some((guard, c)),
            Err(e) => last_err = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("could not start a browser session: {last_err}");
}

fn chromium_path(cmd: &str) -> String {
    if cmd.starts_with('/') {
        return cmd.to_owned();
    }
    let out = Command::new("which").arg(cmd).output().expect("which");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

async fn fill(c: &Client, css: &str, value: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .send_keys(value)
        .await
        .expect("typing");
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .expect("click");
}

/// The page's text; retried because a navigation in flight briefly has no body.
async fn body_text(c: &Client) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        match c.find(Locator::Css("body")).await {
            Ok(body) => match body.text().await {
                Ok(t) => return t,
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the page has no body: {last}");
}

async fn path(c: &Client) -> String {
    c.current_url().await.expect("url").path().to_owned()
}

/// Waits (up to 10 s) for the navigation a click started to land on a path matching `want`.
async fn wait_path(c: &Client, want: impl Fn(&str) -> bool, what: &str) {
    for _ in 0..200 {
        if want(&path(c).await) && c.find(Locator::Css("main")).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("never reached {what}; at {}", path(c).await);
}

async fn wait_text(c: &Client, needle: &str) {
    for _ in 0..200 {
        if body_text(c).await.contains(needle) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the page never showed {needle:?}: {}", body_text(c).await);
}

#[tokio::test]
async fn set_up_app_sign_out_and_sign_in_with_a_code_on_sqlite() {
    set_up_app_sign_out_and_sign_in_with_a_code(String::new()).await;
}

#[tokio::test]
async fn set_up_app_sign_out_and_sign_in_with_a_code_on_postgres() {
    let Some(url) = tweestap_store::testing::fresh_postgres_database().await else {
        return;
    };
    set_up_app_sign_out_and_sign_in_with_a_code(url.clone()).await;
    tweestap_store::testing::drop_database(&url).await;
}

async fn set_up_app_sign_out_and_sign_in_with_a_code(database_url: String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((_driver, c)) = browser(&dir.path().join("profile")).await else {
        return;
    };

    let clock = ManualClock::new(
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 10)
            .single()
            .expect("time"),
    );
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().join("data"),
        database_url,
        ..Config::default()
    };
    let server = tweestap::spawn(&config, Arc::new(clock.clone()))
        .await
        .expect("server");
    server
        .app
        .add_account("an@example.be", "An Peeters", Role::User, PASSWORD)
        .await
        .expect("account");
    let url = server.url();

    // Sign in with the password only (no factor yet).
    c.goto(&format!("{url}/login")).await.expect("goto");
    let html = c.source().await.expect("source");
    assert!(html.contains("lang=\"nl\""));
    assert!(body_text(&c)
        .await
        .contains("Beveilig nu al je account met tweestapsverificatie"));
    fill(&c, "#email", "an@example.be").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "form.card button[type=submit]").await;
    wait_path(&c, |p| p == "/", "/").await;

    // My Profile → enable → confirm password → QR page.
    c.goto(&format!("{url}/account")).await.expect("goto");
    let text = body_text(&c).await;
    assert!(
        text.contains("Tweestapsverificatie") && text.contains("nog niet ingeschakeld"),
        "{text}"
    );
    click(&c, "#twofa a.button").await;
    wait_path(&c, |p| p == "/account/2fa/enable", "/account/2fa/enable").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "form.card button[type=submit]").await;
    wait_path(&c, |p| p.starts_with("/account/2fa/setup/"), "the QR page").await;
    assert!(
        c.find(Locator::Css("figure.qr svg")).await.is_ok(),
        "inline QR code"
    );
    let png = c
        .find(Locator::Css("a[download]"))
        .await
        .expect("PNG link")
        .attr("href")
        .await
        .expect("href");
    assert!(png.expect("href").ends_with("/qr.png"));
    let key: String = c
        .find(Locator::Css("#secret-key"))
        .await
        .expect("key")
        .text()
        .await
        .expect("text");
    let secret = data_encoding::BASE32_NOPAD
        .decode(key.replace(' ', "").as_bytes())
        .expect("key is base32");
    let code_now = || TotpParams::default().code_at(&secret, clock.now().timestamp());

    // A wrong code keeps the user on the page with a message; the right one finishes.
    fill(&c, "#code", "000000").await;
    click(&c, "form.card button[type=submit]").await;
    wait_text(&c, "Deze code klopt niet").await;
    fill(&c, "#code", &code_now()).await;
    click(&c, "form.card button[type=submit]").await;
    wait_path(&c, |p| p == "/account", "/account").await;
    let text = body_text(&c).await;
    assert!(
        text.contains("Tweestapsverificatie is ingeschakeld"),
        "{text}"
    );
    c.screenshot()
        .await
        .map(|png| std::fs::write(dir.path().join("profile.png"), png))
        .ok();

    // Sign out, sign in again: now the code is asked.
    click(&c, "header form button").await;
    wait_path(&c, |p| p == "/login", "/login").await;
    fill(&c, "#email", "an@example.be").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "form.card button[type=submit]").await;
    wait_path(&c, |p| p == "/login/code", "/login/code").await;
    assert!(body_text(&c).await.contains("authenticator-app"));
    clock.advance(Duration::seconds(30));
    fill(&c, "#code", &code_now()).await;
    click(&c, "form.card button[type=submit]").await;
    wait_path(&c, |p| p == "/", "/").await;
    wait_text(&c, "Welkom, An Peeters.").await;

    // English on request, through the visible switch.
    click(&c, "a[hreflang=en]").await;
    wait_text(&c, "You are signed in").await;

    if let Ok(dest) = std::env::var("TWEESTAP_SCREENSHOTS") {
        let _ = std::fs::copy(
            dir.path().join("profile.png"),
            format!("{dest}/profile.png"),
        );
    }
    c.close().await.expect("close");
    server.stop();
}
