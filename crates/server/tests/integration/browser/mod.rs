//! The set-up journeys in a real headless Chromium: an authenticator app from My
//! Profile, "Beveilig nu je account" (password, mailed code, QR), the mailed link to
//! the QR page, and a support reset followed by a new app; each time signing in
//! again (or being signed in) afterwards.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Locally it skips (loudly) when
//! they are missing; with TWEESTAP_REQUIRE_ALL=1 (CI) a missing browser fails.

use chrono::{Duration, TimeZone, Utc};
use fantoccini::{Client, ClientBuilder, Locator};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
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
        // The whole process group: a test that panics before closing its session
        // would otherwise leave its chromium running.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
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
        // Its own process group, with the chromium it starts (see `Driver`'s drop).
        .process_group(0)
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
    // "Toon de QR-code hier" (the other button mails the link instead).
    click(&c, "form.card button[value=here]").await;
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
    // The first factor comes with ten recovery codes, shown once.
    wait_text(&c, "Je herstelcodes").await;
    let codes = c
        .find_all(fantoccini::Locator::Css("ol.recovery-codes code"))
        .await
        .expect("codes");
    assert_eq!(codes.len(), 10);
    click(&c, "a[href='/account?done=enabled']").await;
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

// ---- shared by the set-up journeys below ----------------------------------------

/// A running tweestap (outbox mail, manual clock) and a browser on it.
struct Journey {
    dir: tempfile::TempDir,
    _driver: Driver,
    c: Client,
    clock: ManualClock,
    server: tweestap::Server,
    url: String,
}

impl Journey {
    /// None when chromium is missing (and that is allowed).
    async fn start(database_url: String) -> Option<Self> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (driver, c) = browser(&dir.path().join("profile")).await?;
        // Mid-step, so the "current code" is not about to roll over.
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
        let url = server.url();
        Some(Self {
            dir,
            _driver: driver,
            c,
            clock,
            server,
            url,
        })
    }

    async fn add(&self, email: &str, name: &str, role: Role) {
        self.server
            .app
            .add_account(email, name, role, PASSWORD)
            .await
            .expect("account");
    }

    async fn goto(&self, path: &str) {
        self.c
            .goto(&format!("{}{path}", self.url))
            .await
            .unwrap_or_else(|e| panic!("goto {path}: {e}"));
    }

    /// The current TOTP code of a base32 key.
    fn code(&self, key_b32: &str) -> String {
        let secret = data_encoding::BASE32_NOPAD
            .decode(key_b32.as_bytes())
            .expect("key is base32");
        TotpParams::default().code_at(&secret, self.clock.now().timestamp())
    }

    /// On the QR page: the key shown under the QR code, without its spaces.
    async fn key_on_qr_page(&self) -> String {
        assert!(
            self.c.find(Locator::Css("figure.qr svg")).await.is_ok(),
            "inline QR code"
        );
        let grouped = self
            .c
            .find(Locator::Css("code#secret-key"))
            .await
            .expect("key")
            .text()
            .await
            .expect("text");
        let groups: Vec<&str> = grouped.split(' ').collect();
        assert!(
            groups.len() > 1
                && groups[..groups.len() - 1].iter().all(|g| g.len() == 4)
                && (1..=4).contains(&groups[groups.len() - 1].len()),
            "the key is shown in groups of four: {grouped:?}"
        );
        grouped.replace(' ', "")
    }

    /// On the QR page: computes the code, confirms it, lands on My Profile with "Klaar!".
    async fn confirm_qr_page(&self) -> String {
        self.confirm_qr_page_with_codes().await.0
    }

    /// [`Self::confirm_qr_page`], also keeping the ten recovery codes shown on the way.
    async fn confirm_qr_page_with_codes(&self) -> (String, Vec<String>) {
        wait_path(
            &self.c,
            |p| p.starts_with("/account/2fa/setup/"),
            "the QR page",
        )
        .await;
        let key = self.key_on_qr_page().await;
        fill(&self.c, "#code", &self.code(&key)).await;
        click(&self.c, "form.card button[type=submit]").await;
        wait_text(&self.c, "Je herstelcodes").await;
        let mut codes = Vec::new();
        for code in self
            .c
            .find_all(Locator::Css("ol.recovery-codes code"))
            .await
            .expect("codes")
        {
            codes.push(code.text().await.expect("text"));
        }
        assert_eq!(codes.len(), 10, "ten recovery codes: {codes:?}");
        assert!(
            codes.iter().all(|c| c.len() == 11
                && c.as_bytes()[5] == b'-'
                && c.bytes()
                    .all(|b| b == b'-' || b.is_ascii_lowercase() || b.is_ascii_digit())),
            "codes like abcde-fghjk: {codes:?}"
        );
        let mut distinct = codes.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 10, "all different: {codes:?}");
        click(&self.c, "a[href='/account?done=enabled']").await;
        wait_path(&self.c, |p| p == "/account", "/account").await;
        let url = self.c.current_url().await.expect("url");
        assert_eq!(url.query(), Some("done=enabled"));
        wait_text(&self.c, "Klaar! Tweestapsverificatie is ingeschakeld.").await;
        (key, codes)
    }

    /// Signed in with the password alone (no factor yet): My Profile → "Inschakelen"
    /// → password → "Toon de QR-code hier" → the code; the key and the recovery codes.
    async fn set_up_app(&self, email: &str) -> (String, Vec<String>) {
        self.sign_in(email).await;
        wait_path(&self.c, |p| p == "/", "/").await;
        self.goto("/account").await;
        wait_text(&self.c, "nog niet ingeschakeld").await;
        click(&self.c, "#twofa a[href='/account/2fa/enable']").await;
        wait_path(
            &self.c,
            |p| p == "/account/2fa/enable",
            "/account/2fa/enable",
        )
        .await;
        fill(&self.c, "#password", PASSWORD).await;
        click(&self.c, "form.card button[value=here]").await;
        self.confirm_qr_page_with_codes().await
    }

    /// On the code step: a fresh code from the app (the clock moves on a step first,
    /// so a code is never used twice), with "remember this device" ticked or not.
    async fn enter_code(&self, key: &str, remember: bool) {
        wait_path(&self.c, |p| p == "/login/code", "/login/code").await;
        self.clock.advance(Duration::seconds(30));
        fill(&self.c, "#code", &self.code(key)).await;
        let tick = self
            .c
            .find(Locator::Css("form.card input#remember[type=checkbox]"))
            .await
            .expect("the remember checkbox in the code form");
        assert!(
            !tick.is_selected().await.expect("checked?"),
            "off by default"
        );
        if remember {
            tick.click().await.expect("tick");
            assert!(tick.is_selected().await.expect("checked?"));
        }
        click(&self.c, "form.card button[type=submit]").await;
        wait_path(&self.c, |p| p == "/", "/").await;
    }

    /// Password only, and then: straight in (a remembered device) or the code step.
    async fn sign_in_lands_on(&self, email: &str, want: &str) {
        self.sign_in(email).await;
        wait_path(
            &self.c,
            |p| p == "/" || p == "/login/code",
            "/ or /login/code",
        )
        .await;
        assert_eq!(path(&self.c).await, want);
    }

    /// How many mails of `kind` the outbox holds now.
    fn mails(&self, kind: &str) -> usize {
        let marker = format!("-{kind}-");
        std::fs::read_dir(self.dir.path().join("data").join("outbox"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        name.ends_with(".eml") && name.contains(&marker)
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    async fn sign_in(&self, email: &str) {
        self.goto("/login").await;
        fill(&self.c, "#email", email).await;
        fill(&self.c, "#password", PASSWORD).await;
        click(&self.c, "form.card button[type=submit]").await;
    }

    /// The sign-out button in the header.
    async fn sign_out(&self) {
        click(&self.c, "header form button").await;
        wait_path(&self.c, |p| p == "/login", "/login").await;
    }

    /// The plain text of the `n`-th (1-based) mail of `kind` (`email-code`,
    /// `enrollment-link`, `two-factor-reset`...) in the outbox, once it is there.
    async fn nth_mail(&self, kind: &str, n: usize) -> String {
        let dir = self.dir.path().join("data").join("outbox");
        let marker = format!("-{kind}-");
        let list = || {
            let mut v: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
                .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
                .unwrap_or_default();
            v.retain(|p| {
                p.extension().is_some_and(|e| e == "eml")
                    && p.file_name()
                        .is_some_and(|f| f.to_string_lossy().contains(&marker))
            });
            v.sort();
            v
        };
        for _ in 0..400 {
            let files = list();
            if files.len() >= n {
                let raw = std::fs::read(&files[n - 1]).expect("eml");
                let mail = mailparse::parse_mail(&raw).expect("RFC 5322");
                return mail
                    .subparts
                    .iter()
                    .find(|p| p.ctype.mimetype == "text/plain")
                    .expect("text part")
                    .get_body()
                    .expect("body");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no {n} {kind} mail(s) in {}", dir.display());
    }

    /// The SMS in the sms-outbox (`<stamp>-<id>.txt`), oldest first.
    fn sms_files(&self) -> Vec<std::path::PathBuf> {
        let dir = self.dir.path().join("data").join("sms-outbox");
        let mut v: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        // Not the temporary `.<name>.tmp` of a file being written.
        v.retain(|p| {
            p.extension().is_some_and(|e| e == "txt")
                && p.file_name()
                    .is_some_and(|f| !f.to_string_lossy().starts_with('.'))
        });
        v.sort();
        v
    }

    /// The code in the `n`-th (1-based) SMS of the outbox, once it is there; checks it
    /// went to +32 470 12 34 56.
    async fn nth_sms_code(&self, n: usize) -> String {
        for _ in 0..400 {
            let files = self.sms_files();
            if files.len() >= n {
                let text = std::fs::read_to_string(&files[n - 1]).expect("sms");
                assert!(
                    text.lines().next() == Some("To: +32470123456"),
                    "to the number set up:\n{text}"
                );
                return sms_code_in(&text);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no {n} SMS in the sms-outbox");
    }

    /// On the code step after an SMS was sent: `code`, "remember" ticked or not.
    async fn enter_sms_code(&self, code: &str, remember: bool) {
        fill(&self.c, "#code", code).await;
        if remember {
            let tick = self
                .c
                .find(Locator::Css("form.card input#remember[type=checkbox]"))
                .await
                .expect("the remember checkbox in the code form");
            tick.click().await.expect("tick");
            assert!(tick.is_selected().await.expect("checked?"));
        }
        click(&self.c, "form.card button[type=submit]").await;
    }

    async fn finish(self) {
        self.c.close().await.expect("close");
        self.server.stop();
    }
}

/// The 6-digit code in a mail (possibly written as "123 456").
fn code_in(mail: &str) -> String {
    mail.lines()
        .map(|l| l.replace(' ', ""))
        .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in the mail:\n{mail}"))
}

/// The code in an outbox SMS: the first word of the text after the headers.
fn sms_code_in(file: &str) -> String {
    let (headers, text) = file
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("headers, a blank line, the text:\n{file}"));
    assert!(
        headers.contains("\nId: ") && headers.contains("\nDate: "),
        "{file}"
    );
    let code = text.split_whitespace().next().unwrap_or_default();
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "a 6-digit code first:\n{file}"
    );
    assert!(text.contains("is je code voor tweestap"), "{file}");
    code.to_owned()
}

/// Clicks a button whose form shows the same page again, and waits for the new one.
async fn click_and_wait_reload(c: &Client, css: &str) {
    let old = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    old.click().await.expect("click");
    for _ in 0..200 {
        // The element of the old page is gone once the new one is there.
        if old.text().await.is_err() && c.find(Locator::Css("main")).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{css}: the page was never shown again");
}

/// The `/enroll/<token>` path of the link in a mail.
fn enroll_path_in(mail: &str) -> String {
    let at = mail
        .find("/enroll/")
        .unwrap_or_else(|| panic!("no /enroll/ link in the mail:\n{mail}"));
    let token: String = mail[at + "/enroll/".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert_eq!(token.len(), 43, "a 256-bit token: {token:?}");
    format!("/enroll/{token}")
}

macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(String::new()).await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(url) = tweestap_store::testing::fresh_postgres_database().await else {
                    return;
                };
                super::$name(url.clone()).await;
                tweestap_store::testing::drop_database(&url).await;
            }
        }
    )+};
}

on_both_backends!(
    secure_now_with_a_mailed_code,
    enable_from_profile_with_the_mailed_link,
    support_reset_then_a_new_app,
    remember_this_device,
    sign_in_with_a_recovery_code,
    sms_as_a_fallback_for_the_app,
    sms_only_for_someone_without_a_smartphone,
);

/// "Beveilig nu je account": password, the code from the mail, the method, the QR
/// page; afterwards signing in asks for a code.
async fn secure_now_with_a_mailed_code(database_url: String) {
    let Some(j) = Journey::start(database_url).await else {
        return;
    };
    let c = &j.c;
    j.add("an@example.be", "An Peeters", Role::User).await;

    j.goto("/login").await;
    let link = c
        .find(Locator::Css("a[href='/secure']"))
        .await
        .expect("the link to /secure");
    let text = link.text().await.expect("text");
    assert!(text.starts_with("Beveilig nu"), "{text}");
    link.click().await.expect("click");
    wait_path(c, |p| p == "/secure", "/secure").await;
    fill(c, "#email", "an@example.be").await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/secure/code", "/secure/code").await;
    wait_text(c, "Bevestig je e-mailadres").await;

    let code = code_in(&j.nth_mail("email-code", 1).await);
    fill(c, "#code", &code).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/account/2fa/enable", "the method choice").await;
    let app = c
        .find(Locator::Css("input[type=radio][name=method][value=totp]"))
        .await
        .expect("the authenticator app as a method");
    assert!(app.is_selected().await.expect("checked?"), "preselected");
    click(c, "form.card button[type=submit]").await;
    let key = j.confirm_qr_page().await;
    let twofa = c
        .find(Locator::Css("#twofa"))
        .await
        .expect("2FA box")
        .text()
        .await
        .expect("text");
    assert!(
        twofa.contains("Tweestapsverificatie is ingeschakeld"),
        "{twofa}"
    );

    // Signed in by the wizard; sign out and in again: now the code is asked.
    j.sign_out().await;
    j.sign_in("an@example.be").await;
    wait_path(c, |p| p == "/login/code", "/login/code").await;
    assert!(body_text(c).await.contains("authenticator-app"));
    j.clock.advance(Duration::seconds(30));
    fill(c, "#code", &j.code(&key)).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/", "/").await;
    wait_text(c, "Welkom, An Peeters.").await;
    j.finish().await;
}

/// My Profile → "Inschakelen" → "Stuur mij de link per e-mail"; the link, opened in
/// a browser without a session, asks the password and shows the QR page; it works once.
async fn enable_from_profile_with_the_mailed_link(database_url: String) {
    let Some(j) = Journey::start(database_url).await else {
        return;
    };
    let c = &j.c;
    j.add("bert@example.be", "Bert Claes", Role::User).await;

    j.sign_in("bert@example.be").await;
    wait_path(c, |p| p == "/", "/").await;
    j.goto("/account").await;
    wait_text(c, "nog niet ingeschakeld").await;
    click(c, "#twofa a[href='/account/2fa/enable']").await;
    wait_path(c, |p| p == "/account/2fa/enable", "/account/2fa/enable").await;
    fill(c, "#password", PASSWORD).await;
    let by_mail = c
        .find(Locator::Css("form.card button[value=mail]"))
        .await
        .expect("the mail button");
    assert_eq!(
        by_mail.text().await.expect("text"),
        "Stuur mij de link per e-mail"
    );
    by_mail.click().await.expect("click");
    wait_text(c, "Kijk in je mailbox").await;
    let link = enroll_path_in(&j.nth_mail("enrollment-link", 1).await);

    // A browser without a session: sign out, and forget every cookie too.
    j.sign_out().await;
    c.delete_all_cookies().await.expect("delete cookies");
    j.goto(&link).await;
    wait_path(c, |p| p == link, "the link").await;
    wait_text(c, "bert@example.be").await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form.card button[type=submit]").await;
    j.confirm_qr_page().await;
    wait_text(c, "Bert Claes").await;

    // The link works once.
    j.goto(&link).await;
    wait_path(c, |p| p == link, "the link again").await;
    wait_text(c, "al gebruikt").await;
    assert!(
        c.find(Locator::Css("#password")).await.is_err(),
        "a used link asks nothing"
    );
    j.finish().await;
}

/// A user with an app is signed in (API client); a support person resets the
/// two-step verification from the support pages; the user's session is gone, and the
/// mailed link sets up a new app in the browser.
async fn support_reset_then_a_new_app(database_url: String) {
    let Some(j) = Journey::start(database_url).await else {
        return;
    };
    let c = &j.c;
    j.add("carla@example.be", "Carla Janssens", Role::User)
        .await;
    j.add("sofie@example.be", "Sofie Support", Role::Support)
        .await;

    // The user sets up an app through the JSON API and stays signed in there.
    let user = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let api = |p: &str| format!("{}/api/v1{p}", j.url);
    let post = |p: &str, body: serde_json::Value| user.post(api(p)).json(&body).send();
    let r = post(
        "/login",
        serde_json::json!({ "email": "carla@example.be", "password": PASSWORD }),
    )
    .await
    .expect("login");
    assert_eq!(r.status(), 200);
    let begun: serde_json::Value = post(
        "/me/factors/totp",
        serde_json::json!({ "password": PASSWORD }),
    )
    .await
    .expect("begin")
    .json()
    .await
    .expect("json");
    let old_key = begun["secret"].as_str().expect("secret").to_owned();
    let id = begun["id"].as_str().expect("id");
    let r = post(
        &format!("/me/factors/totp/{id}/confirm"),
        serde_json::json!({ "code": j.code(&old_key) }),
    )
    .await
    .expect("confirm");
    assert_eq!(r.status(), 200);
    let me = user.get(api("/me")).send().await.expect("me");
    assert_eq!(me.status(), 200, "signed in with an app");

    // Support, without a factor: signs in with the password alone.
    j.sign_in("sofie@example.be").await;
    wait_path(c, |p| p == "/", "/").await;
    click(c, "header nav.user a[href='/support']").await;
    wait_path(c, |p| p == "/support", "/support").await;
    fill(c, "#q", "janss").await;
    click(c, "form[role=search] button[type=submit]").await;
    wait_text(c, "1 account(s) gevonden.").await;
    c.find(Locator::LinkText("carla@example.be"))
        .await
        .expect("the account in the results")
        .click()
        .await
        .expect("click");
    wait_path(c, |p| p.starts_with("/support/accounts/"), "the account").await;
    wait_text(c, "Carla Janssens").await;
    fill(
        c,
        "#reason",
        "Nieuwe telefoon, oude kwijt; gebeld en identiteit gecontroleerd.",
    )
    .await;
    click(c, "form[action$='/reset-2fa'] button[type=submit]").await;
    wait_text(c, "Tweestapsverificatie is opnieuw ingesteld.").await;
    let notice = c
        .find(Locator::Css("#support-notice"))
        .await
        .expect("the confirmation")
        .text()
        .await
        .expect("text");
    assert!(notice.contains("overal afgemeld"), "{notice}");
    let url = c.current_url().await.expect("url");
    assert_eq!(url.query(), Some("done=reset"));

    // The user's session is gone; the mail holds a link to a new QR page.
    let me = user.get(api("/me")).send().await.expect("me");
    assert_eq!(me.status(), 401, "signed out everywhere");
    let link = enroll_path_in(&j.nth_mail("two-factor-reset", 1).await);

    // The user, in the browser: password, new QR code, code → signed in.
    j.sign_out().await;
    j.clock.advance(Duration::seconds(30));
    j.goto(&link).await;
    wait_text(c, "carla@example.be").await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form.card button[type=submit]").await;
    let new_key = j.confirm_qr_page().await;
    assert_ne!(new_key, old_key, "a new key");
    wait_text(c, "Carla Janssens").await;
    let factors = c
        .find_all(Locator::Css("#twofa ul.factors li"))
        .await
        .expect("factors");
    assert_eq!(factors.len(), 1, "only the new app");
    j.finish().await;
}

/// "Dit toestel 7 dagen onthouden" at the code step: the next sign-in in this browser
/// skips the code; My Profile lists the device and can forget it; after 7 days the
/// code is asked again.
async fn remember_this_device(database_url: String) {
    let Some(j) = Journey::start(database_url).await else {
        return;
    };
    let c = &j.c;
    let email = "dirk@example.be";
    j.add(email, "Dirk Wouters", Role::User).await;
    let (key, _) = j.set_up_app(email).await;
    let devices = c
        .find(Locator::Css("#devices"))
        .await
        .expect("the devices section")
        .text()
        .await
        .expect("text");
    assert!(
        devices.contains("Onthouden toestellen") && devices.contains("Geen toestellen onthouden."),
        "{devices}"
    );

    // The code step offers to remember this browser, and the recovery codes.
    j.sign_out().await;
    j.sign_in_lands_on(email, "/login/code").await;
    let label = c
        .find(Locator::Css("label[for=remember]"))
        .await
        .expect("the label of the checkbox")
        .text()
        .await
        .expect("text");
    assert_eq!(label, "Dit toestel 7 dagen onthouden");
    let recovery = c
        .find(Locator::Css("a[href='/login/recovery']"))
        .await
        .expect("the link to a recovery code")
        .text()
        .await
        .expect("text");
    assert_eq!(
        recovery,
        "Geen toegang tot je app of gsm? Gebruik een herstelcode."
    );
    j.enter_code(&key, true).await;
    wait_text(c, "Welkom, Dirk Wouters.").await;

    // Signing in again in this browser: the password is enough.
    j.sign_out().await;
    j.sign_in_lands_on(email, "/").await;
    wait_text(c, "Welkom, Dirk Wouters.").await;

    // My Profile lists the device; "Vergeten" forgets it.
    j.goto("/account").await;
    let items = c
        .find_all(Locator::Css("#devices ul.devices li"))
        .await
        .expect("devices");
    assert_eq!(items.len(), 1, "one remembered device");
    let item = items[0].text().await.expect("text");
    assert!(
        (item.contains("Chrome") || item.contains("Chromium")) && item.contains("Linux"),
        "the browser and system: {item}"
    );
    assert!(item.contains("onthouden tot"), "{item}");
    let forget = c
        .find(Locator::Css("#devices ul.devices li form button"))
        .await
        .expect("the forget button");
    assert!(forget.text().await.expect("text").starts_with("Vergeten"));
    forget.click().await.expect("click");
    wait_text(
        c,
        "De toestellen zijn vergeten: daar vragen we voortaan weer een code.",
    )
    .await;
    assert_eq!(path(c).await, "/account");
    wait_text(c, "Geen toestellen onthouden.").await;
    assert!(c
        .find(Locator::Css("#devices ul.devices li"))
        .await
        .is_err());

    // Forgotten: the code is asked again. Remember it once more, then "Alle
    // toestellen vergeten" forgets it as well.
    j.sign_out().await;
    j.sign_in_lands_on(email, "/login/code").await;
    j.enter_code(&key, true).await;
    j.goto("/account").await;
    let items = c
        .find_all(Locator::Css("#devices ul.devices li"))
        .await
        .expect("devices");
    assert_eq!(items.len(), 1, "remembered again");
    let all = c
        .find(Locator::Css(
            "#devices form[action='/account/devices/forget'] button",
        ))
        .await
        .expect("the forget-all button");
    assert_eq!(all.text().await.expect("text"), "Alle toestellen vergeten");
    all.click().await.expect("click");
    wait_text(c, "Geen toestellen onthouden.").await;
    j.sign_out().await;
    j.sign_in_lands_on(email, "/login/code").await;

    // Remembered for 7 days on the server's clock: still so a minute before, no
    // longer when they are up.
    j.enter_code(&key, true).await;
    j.sign_out().await;
    j.clock.advance(Duration::days(7) - Duration::minutes(1));
    j.sign_in_lands_on(email, "/").await;
    j.sign_out().await;
    j.clock.advance(Duration::minutes(1));
    j.sign_in_lands_on(email, "/login/code").await;
    j.enter_code(&key, false).await;
    j.goto("/account").await;
    wait_text(c, "Geen toestellen onthouden.").await;
    j.finish().await;
}

/// The ten recovery codes from the set-up: one gets in at the code step (typed in
/// upper case), once; a notice is mailed; My Profile counts what is left.
async fn sign_in_with_a_recovery_code(database_url: String) {
    let Some(j) = Journey::start(database_url).await else {
        return;
    };
    let c = &j.c;
    let email = "eva@example.be";
    j.add(email, "Eva Maes", Role::User).await;
    let (_key, codes) = j.set_up_app(email).await;
    wait_text(c, "Nog 10 herstelcodes over.").await;

    // No app at hand: the code step → "Gebruik een herstelcode".
    j.sign_out().await;
    j.sign_in_lands_on(email, "/login/code").await;
    click(c, "a[href='/login/recovery']").await;
    wait_path(c, |p| p == "/login/recovery", "/login/recovery").await;
    wait_text(c, "Aanmelden met een herstelcode").await;
    fill(c, "#code", &codes[0].to_uppercase()).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/", "/").await;
    wait_text(c, "Welkom, Eva Maes.").await;

    j.goto("/account").await;
    let left = c
        .find(Locator::Css("#recovery-left"))
        .await
        .expect("the count")
        .text()
        .await
        .expect("text");
    assert!(left.contains("Nog 9 herstelcodes over."), "{left}");

    // The notice in the mail.
    let mail = j.nth_mail("recovery-code-used", 1).await;
    assert!(mail.contains("met een herstelcode"), "{mail}");
    assert!(mail.contains("nog 9 herstelcodes"), "{mail}");

    // The same code again: refused, and no second notice.
    j.sign_out().await;
    j.sign_in_lands_on(email, "/login/code").await;
    j.goto("/login/recovery").await;
    fill(c, "#code", &codes[0]).await;
    click(c, "form.card button[type=submit]").await;
    wait_text(c, "Deze herstelcode klopt niet of werd al gebruikt.").await;
    assert_eq!(path(c).await, "/login/recovery");
    assert_eq!(j.mails("recovery-code-used"), 1);

    // Another code still works.
    fill(c, "#code", &codes[1]).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/", "/").await;
    j.nth_mail("recovery-code-used", 2).await;
    j.goto("/account").await;
    wait_text(c, "Nog 8 herstelcodes over.").await;
    j.finish().await;
}

/// An app first; then My Profile → "Gsm-nummer toevoegen voor sms-codes" (password,
/// number, the code from the SMS). At the code step an SMS instead of the app's code;
/// "Stuur opnieuw" sends another, and only the newest code works.
async fn sms_as_a_fallback_for_the_app(database_url: String) {
    let Some(j) = Journey::start(database_url).await else {
        return;
    };
    let c = &j.c;
    let email = "fien@example.be";
    j.add(email, "Fien Wuyts", Role::User).await;
    j.set_up_app(email).await;

    // My Profile → add a phone: password and number, then the code from the SMS.
    let link = c
        .find(Locator::Css("a[href='/account/2fa/sms']"))
        .await
        .expect("the link to add a phone");
    assert_eq!(
        link.text().await.expect("text"),
        "Gsm-nummer toevoegen voor sms-codes"
    );
    link.click().await.expect("click");
    wait_path(c, |p| p == "/account/2fa/sms", "/account/2fa/sms").await;
    fill(c, "#password", PASSWORD).await;
    fill(c, "#phone", "0470 12 34 56").await;
    click(c, "form.card button[type=submit]").await;
    wait_path(
        c,
        |p| p.starts_with("/account/2fa/sms/"),
        "the SMS code page",
    )
    .await;
    wait_text(
        c,
        "We stuurden een code van 6 cijfers naar +32 4•• •• •• 56",
    )
    .await;
    let setup_page = path(c).await;
    assert!(
        c.find(Locator::Css(&format!(
            "form[action='{setup_page}/resend'] button[type=submit]"
        )))
        .await
        .is_ok(),
        "a button to send the code again"
    );
    let code = j.nth_sms_code(1).await;
    fill(c, "#code", &code).await;
    click(c, "form.card button[type=submit]").await;
    // Not the first factor: no recovery codes, straight back to My Profile.
    wait_path(c, |p| p == "/account", "/account").await;
    let url = c.current_url().await.expect("url");
    assert_eq!(url.query(), Some("done=enabled"));
    let factors = c
        .find_all(Locator::Css("#twofa ul.factors li"))
        .await
        .expect("factors");
    assert_eq!(factors.len(), 2, "the app and the phone");
    let mut listed = Vec::new();
    for f in &factors {
        listed.push(f.text().await.expect("text"));
    }
    assert!(
        listed
            .iter()
            .any(|t| t.starts_with("Sms naar +32 4•• •• •• 56")),
        "{listed:?}"
    );

    // Signing in: an SMS instead of the app's code.
    j.sign_out().await;
    j.sign_in_lands_on(email, "/login/code").await;
    let send = c
        .find(Locator::Css("#send-sms"))
        .await
        .expect("the button to send an SMS");
    assert_eq!(
        send.text().await.expect("text"),
        "Stuur mij een code per sms"
    );
    click_and_wait_reload(c, "#send-sms").await;
    wait_text(
        c,
        "We stuurden een code van 6 cijfers naar +32 4•• •• •• 56",
    )
    .await;
    let again = c
        .find(Locator::Css("#send-sms"))
        .await
        .expect("the button")
        .text()
        .await
        .expect("text");
    assert_eq!(again, "Stuur opnieuw");
    let code = j.nth_sms_code(2).await;
    j.enter_sms_code(&code, false).await;
    wait_path(c, |p| p == "/", "/").await;
    wait_text(c, "Welkom, Fien Wuyts.").await;

    // "Stuur opnieuw": a second SMS, and only its code works.
    j.sign_out().await;
    j.sign_in_lands_on(email, "/login/code").await;
    click_and_wait_reload(c, "#send-sms").await;
    let older = j.nth_sms_code(3).await;
    click_and_wait_reload(c, "#send-sms").await;
    let newest = j.nth_sms_code(4).await;
    assert_eq!(j.sms_files().len(), 4, "one SMS per press");
    wait_text(
        c,
        "We stuurden een code van 6 cijfers naar +32 4•• •• •• 56",
    )
    .await;
    if older != newest {
        // (One in a million they are the same.)
        j.enter_sms_code(&older, false).await;
        wait_text(c, "Deze code klopt niet").await;
        assert_eq!(path(c).await, "/login/code");
    }
    j.enter_sms_code(&newest, false).await;
    wait_path(c, |p| p == "/", "/").await;
    wait_text(c, "Welkom, Fien Wuyts.").await;
    j.finish().await;
}

/// "Beveilig nu je account" with SMS as the only method: a landline is refused, a
/// mobile number gets the code; the recovery codes (the first factor); then signing in
/// with an SMS code, remembering the device.
async fn sms_only_for_someone_without_a_smartphone(database_url: String) {
    let Some(j) = Journey::start(database_url).await else {
        return;
    };
    let c = &j.c;
    let email = "gust@example.be";
    j.add(email, "Gust Peeters", Role::User).await;

    j.goto("/login").await;
    click(c, "a[href='/secure']").await;
    wait_path(c, |p| p == "/secure", "/secure").await;
    fill(c, "#email", email).await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/secure/code", "/secure/code").await;
    let code = code_in(&j.nth_mail("email-code", 1).await);
    fill(c, "#code", &code).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/account/2fa/enable", "the method choice").await;

    // SMS, with a landline first: refused, the choice kept.
    click(c, "#method-sms").await;
    fill(c, "#phone", "02 511 11 11").await;
    click_and_wait_reload(c, "form.card button[type=submit]").await;
    wait_text(c, "Dit is geen gsm-nummer").await;
    assert_eq!(path(c).await, "/account/2fa/enable");
    assert!(j.sms_files().is_empty(), "no SMS to a landline");
    let sms = c
        .find(Locator::Css("#method-sms"))
        .await
        .expect("the SMS method");
    assert!(sms.is_selected().await.expect("checked?"), "still chosen");
    let phone = c.find(Locator::Css("#phone")).await.expect("the number");
    phone.clear().await.expect("clear");
    phone.send_keys("0470 12 34 56").await.expect("typing");
    click(c, "form.card button[type=submit]").await;
    wait_path(
        c,
        |p| p.starts_with("/account/2fa/sms/"),
        "the SMS code page",
    )
    .await;
    wait_text(
        c,
        "We stuurden een code van 6 cijfers naar +32 4•• •• •• 56",
    )
    .await;
    let code = j.nth_sms_code(1).await;
    fill(c, "#code", &code).await;
    click(c, "form.card button[type=submit]").await;

    // The first factor: the recovery codes, then My Profile.
    wait_text(c, "Je herstelcodes").await;
    let codes = c
        .find_all(Locator::Css("ol.recovery-codes code"))
        .await
        .expect("codes");
    assert_eq!(codes.len(), 10);
    click(c, "a[href='/account?done=enabled']").await;
    wait_path(c, |p| p == "/account", "/account").await;
    let twofa = c
        .find(Locator::Css("#twofa"))
        .await
        .expect("2FA box")
        .text()
        .await
        .expect("text");
    assert!(
        twofa.contains("Tweestapsverificatie is ingeschakeld")
            && twofa.contains("Sms naar +32 4•• •• •• 56"),
        "{twofa}"
    );

    // Signing in: password, an SMS code, "remember this device".
    j.sign_out().await;
    j.sign_in_lands_on(email, "/login/code").await;
    let intro = c
        .find(Locator::Css("#code-intro"))
        .await
        .expect("the intro")
        .text()
        .await
        .expect("text");
    assert!(
        intro.contains("per sms") && !intro.contains("authenticator-app"),
        "only SMS: {intro}"
    );
    click_and_wait_reload(c, "#send-sms").await;
    wait_text(
        c,
        "We stuurden een code van 6 cijfers naar +32 4•• •• •• 56",
    )
    .await;
    let code = j.nth_sms_code(2).await;
    j.enter_sms_code(&code, true).await;
    wait_path(c, |p| p == "/", "/").await;
    wait_text(c, "Welkom, Gust Peeters.").await;

    // Remembered: the password is enough, and no SMS is sent.
    j.sign_out().await;
    j.sign_in_lands_on(email, "/").await;
    wait_text(c, "Welkom, Gust Peeters.").await;
    assert_eq!(j.sms_files().len(), 2);
    j.finish().await;
}

// ---- the example portal (examples/portal) -------------------------------------

on_both_backends!(sign_in_at_the_example_portal);

/// Loket, the example portal, signs its users in through tweestap with the
/// `openidconnect` crate: open Loket → tweestap's sign-in (e-mail, password, the
/// app's code) → back at Loket, which verified the ID token and shows who signed
/// in and how. Loket demands a second factor (`PORTAL_REQUIRE_MFA`).
async fn sign_in_at_the_example_portal(database_url: String) {
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
    let loket_addr = TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr");
    let loket_url = format!("http://{loket_addr}");
    let callback = format!("{loket_url}/callback");
    let hash = tweestap_domain::oidc::client::secret_hash(LOKET_SECRET);
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().join("data"),
        database_url,
        ..Config::default()
    };
    config.oidc.clients = vec![tweestap::oidc::ClientConfig {
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
    let key = data_encoding::BASE32_NOPAD
        .decode(r["secret"].as_str().expect("secret").as_bytes())
        .expect("base32");
    let code_now = || TotpParams::default().code_at(&key, clock.now().timestamp());
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
    clock.advance(Duration::seconds(30));

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
