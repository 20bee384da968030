//! A running tweestap (outbox mail, manual clock) and a browser on it: what the
//! journeys share.

use super::driver::{browser, click, fill, path, wait_path, wait_text, Driver};
use crate::kit::sms::{nth_sms_in, sms_code_in, sms_files_in};
use crate::kit::{mails_in, nth_mail_in, totp, Backend, PASSWORD};
use fantoccini::{Client, Locator};
use std::sync::Arc;
use tweestap::config::Config;
use tweestap_domain::account::Role;
use tweestap_domain::clock::ManualClock;

pub struct Journey {
    pub dir: tempfile::TempDir,
    _driver: Driver,
    pub c: Client,
    pub clock: ManualClock,
    pub server: tweestap::Server,
    pub url: String,
}

impl Journey {
    /// None when chromium is missing (and that is allowed).
    pub async fn start(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (driver, c) = browser(&dir.path().join("profile")).await?;
        let clock = totp::test_clock();
        let config = Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir.path().join("data"),
            database_url: backend.database_url(),
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

    pub async fn add(&self, email: &str, name: &str, role: Role) {
        self.server
            .app
            .add_account(email, name, role, PASSWORD)
            .await
            .expect("account");
    }

    pub async fn goto(&self, path: &str) {
        self.c
            .goto(&format!("{}{path}", self.url))
            .await
            .unwrap_or_else(|e| panic!("goto {path}: {e}"));
    }

    /// The current TOTP code of a base32 key.
    pub fn code(&self, key_b32: &str) -> String {
        totp::code_now(key_b32, &self.clock)
    }

    /// On the QR page: the key shown under the QR code, without its spaces.
    pub async fn key_on_qr_page(&self) -> String {
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
    pub async fn confirm_qr_page(&self) -> String {
        self.confirm_qr_page_with_codes().await.0
    }

    /// [`Self::confirm_qr_page`], also keeping the ten recovery codes shown on the way.
    pub async fn confirm_qr_page_with_codes(&self) -> (String, Vec<String>) {
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
    pub async fn set_up_app(&self, email: &str) -> (String, Vec<String>) {
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
    pub async fn enter_code(&self, key: &str, remember: bool) {
        wait_path(&self.c, |p| p == "/login/code", "/login/code").await;
        totp::next_step(&self.clock);
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
    pub async fn sign_in_lands_on(&self, email: &str, want: &str) {
        self.sign_in(email).await;
        wait_path(
            &self.c,
            |p| p == "/" || p == "/login/code",
            "/ or /login/code",
        )
        .await;
        assert_eq!(path(&self.c).await, want);
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// How many mails of `kind` the outbox holds now.
    pub fn mails(&self, kind: &str) -> usize {
        mails_in(&self.data_dir(), kind)
    }

    pub async fn sign_in(&self, email: &str) {
        self.goto("/login").await;
        fill(&self.c, "#email", email).await;
        fill(&self.c, "#password", PASSWORD).await;
        click(&self.c, "form.card button[type=submit]").await;
    }

    /// The sign-out button in the header.
    pub async fn sign_out(&self) {
        click(&self.c, "header form button").await;
        wait_path(&self.c, |p| p == "/login", "/login").await;
    }

    /// The plain text of the `n`-th (1-based) mail of `kind` (`email-code`,
    /// `enrollment-link`, `two-factor-reset`...) in the outbox, once it is there.
    pub async fn nth_mail(&self, kind: &str, n: usize) -> String {
        nth_mail_in(&self.data_dir(), kind, n).await
    }

    /// The SMS in the sms-outbox, oldest first.
    pub fn sms_files(&self) -> Vec<std::path::PathBuf> {
        sms_files_in(&self.data_dir())
    }

    /// The code in the `n`-th (1-based) SMS of the outbox, once it is there; checks it
    /// went to +32 470 12 34 56 and is in Dutch.
    pub async fn nth_sms_code(&self, n: usize) -> String {
        let text = nth_sms_in(&self.data_dir(), n).await;
        assert!(
            text.lines().next() == Some("To: +32470123456"),
            "to the number set up:\n{text}"
        );
        assert!(text.contains("is je code voor tweestap"), "{text}");
        sms_code_in(&text)
    }

    /// On the code step after an SMS was sent: `code`, "remember" ticked or not.
    pub async fn enter_sms_code(&self, code: &str, remember: bool) {
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

    pub async fn finish(self) {
        self.c.close().await.expect("close");
        self.server.stop();
    }
}
