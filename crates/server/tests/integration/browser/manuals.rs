//! The journeys of the two manuals, screen by screen: none takes more screens than
//! its manual (the first: "in vier korte stappen", at most 5 screens after the link on
//! the sign-in page; the second: at most 7 from My Profile), and every page of a
//! journey shows the same step bar with its own step marked. Also the person without
//! a smartphone after a support reset: SMS on the link's page.

use super::driver::{body_text, click, fill, path, wait_path, wait_text};
use super::journey::Journey;
use crate::kit::sms::{nth_sms_in, sms_code_in};
use crate::kit::{code_in, enroll_path_in, Backend, PASSWORD};
use fantoccini::{Client, Locator};
use tweestap_domain::account::Role;
use tweestap_domain::service::Actor;

crate::on_both_backends!(
    first_manual_in_four_steps_in_both_languages,
    second_manual_in_seven_screens_in_both_languages,
    after_a_reset_someone_without_a_smartphone_chooses_sms,
);

/// The screens of one journey, as the person sees them.
struct Screens {
    what: &'static str,
    seen: Vec<String>,
    bar: Option<Vec<String>>,
}

impl Screens {
    fn new(what: &'static str) -> Self {
        Self {
            what,
            seen: Vec::new(),
            bar: None,
        }
    }

    /// One more screen: its heading, and (`Some(n)`) its step bar at step `n`, the
    /// same bar as on the journey's other pages. Each screen must fit a 390 px phone
    /// and a 1280 px desktop; both are kept as screenshots under
    /// `target/screenshots/journeys/` for a person to look at.
    async fn see(&mut self, c: &Client, step: Option<usize>) {
        let h1 = c
            .find(Locator::Css("main h1"))
            .await
            .expect("a heading")
            .text()
            .await
            .expect("text");
        self.seen.push(format!("{} {h1}", path(c).await));
        let name = super::seen::slug(self.what);
        let dir = "../../target/screenshots/journeys";
        let _ = std::fs::create_dir_all(dir);
        for w in super::seen::WIDTHS {
            super::looks::width(c, w).await;
            if let Ok(png) = c.screenshot().await {
                let n = self.seen.len();
                let _ = std::fs::write(format!("{dir}/{name}-{n}-{w}.png"), png);
            }
        }
        // Fits both widths, and axe-core finds nothing (once per page and test).
        super::seen::look(c).await;
        let Some(n) = step else { return };
        let mut labels = Vec::new();
        let mut current = Vec::new();
        let items = c
            .find_all(Locator::Css("ol.step-bar > li"))
            .await
            .expect("the step bar");
        for (i, li) in items.iter().enumerate() {
            let text = li.text().await.expect("text");
            // The first line: a step done also says so to screen readers.
            let text = text.lines().next().unwrap_or_default();
            let text = text.trim_start_matches(['✓', ' ']);
            labels.push(text.to_owned());
            if li.attr("aria-current").await.expect("attr").as_deref() == Some("step") {
                current.push(i + 1);
            }
        }
        assert_eq!(current, [n], "{}: {h1}: {labels:?}", self.what);
        match &self.bar {
            None => self.bar = Some(labels),
            Some(bar) => assert_eq!(bar, &labels, "{}: the same steps on {h1}", self.what),
        }
    }

    fn at_most(&self, n: usize) {
        assert!(
            self.seen.len() <= n,
            "{}: {} screens, at most {n}: {:#?}",
            self.what,
            self.seen.len(),
            self.seen
        );
    }
}

/// The QR page: the QR code, its PNG, "open in the app" with the otpauth:// URI and
/// the key in fours, selectable at once; returns the key.
async fn qr_page(j: &Journey, open_app: &str) -> String {
    let c = &j.c;
    let link = c
        .find(Locator::Css("a#open-app"))
        .await
        .expect("the open-in-app link");
    assert_eq!(link.text().await.expect("text"), open_app);
    let href = link.attr("href").await.expect("href").expect("href");
    let key = j.key_on_qr_page().await;
    assert!(
        href.starts_with("otpauth://totp/") && href.contains(&format!("secret={key}&")),
        "{href}"
    );
    let code = c.find(Locator::Css("code#secret-key")).await.expect("key");
    assert_eq!(code.css_value("user-select").await.expect("css"), "all");
    assert!(c
        .find(Locator::Css("a[download][href$='/qr.png']"))
        .await
        .is_ok());
    key
}

/// The recovery codes page: ten codes, no keyboard shortcut; on to My Profile.
async fn recovery_codes(c: &Client, done: &str) {
    let text = body_text(c).await;
    assert!(
        !text.contains("Ctrl+P") && !text.contains("Cmd+P"),
        "{text}"
    );
    let codes = c
        .find_all(Locator::Css("ol.recovery-codes code"))
        .await
        .expect("codes");
    assert_eq!(codes.len(), 10);
    click(c, "a[href='/account?done=enabled']").await;
    wait_path(c, |p| p == "/account", "/account").await;
    wait_text(c, done).await;
}

/// First manual: the link on the sign-in page, then four steps: password, the mailed
/// code with the method, the QR code (or the SMS), the recovery codes; and My
/// Profile. In Dutch with the app, in English with SMS.
async fn first_manual_in_four_steps_in_both_languages(backend: Backend) {
    let Some(j) = Journey::start(backend).await else {
        return;
    };
    let c = &j.c;
    j.add("an@example.be", "An Peeters", Role::User).await;
    j.add("bo@example.be", "Bo Smets", Role::User).await;

    let mut s = Screens::new("first manual, Dutch");
    j.goto("/login").await;
    let link = c
        .find(Locator::Css("a[href='/secure']"))
        .await
        .expect("the link");
    assert!(body_text(c).await.contains("in vier korte stappen"));
    link.click().await.expect("click");
    wait_path(c, |p| p == "/secure", "/secure").await;
    s.see(c, Some(1)).await;
    fill(c, "#email", "an@example.be").await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/secure/code", "/secure/code").await;
    s.see(c, Some(2)).await;
    assert_eq!(
        s.bar.as_deref().expect("bar"),
        [
            "1. Meld je aan",
            "2. Bevestig je e-mailadres en kies je methode",
            "3. Koppel je app of gsm",
            "4. Bewaar je herstelcodes"
        ]
    );
    fill(c, "#code", &code_in(&j.nth_mail("email-code", 1).await)).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p.starts_with("/account/2fa/setup/"), "the QR page").await;
    s.see(c, Some(3)).await;
    let key = qr_page(&j, "Open in je authenticator-app").await;
    fill(c, "#code", &j.code(&key)).await;
    click(c, "form.card button[type=submit]").await;
    wait_text(c, "Je herstelcodes").await;
    s.see(c, Some(4)).await;
    recovery_codes(c, "Klaar! Tweestapsverificatie is ingeschakeld.").await;
    s.see(c, None).await;
    s.at_most(5);

    // English, SMS: the same four steps.
    j.sign_out().await;
    click(c, "a[hreflang=en]").await;
    wait_text(c, "Secure your account now").await;
    let mut s = Screens::new("first manual, English");
    click(c, "a[href='/secure']").await;
    wait_path(c, |p| p == "/secure", "/secure").await;
    s.see(c, Some(1)).await;
    fill(c, "#email", "bo@example.be").await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p == "/secure/code", "/secure/code").await;
    s.see(c, Some(2)).await;
    fill(c, "#code", &code_in(&j.nth_mail("email-code", 2).await)).await;
    click(c, "#method-sms").await;
    fill(c, "#phone", "0470 12 34 56").await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p.starts_with("/account/2fa/sms/"), "the SMS code").await;
    s.see(c, Some(3)).await;
    let sms = nth_sms_in(&j.data_dir(), 1).await;
    fill(c, "#code", &sms_code_in(&sms)).await;
    click(c, "form.card button[type=submit]").await;
    wait_text(c, "Your recovery codes").await;
    s.see(c, Some(4)).await;
    assert_eq!(
        s.bar.as_deref().expect("bar"),
        [
            "1. Sign in",
            "2. Confirm your e-mail address and choose your method",
            "3. Link your app or phone",
            "4. Keep your recovery codes"
        ]
    );
    recovery_codes(c, "Done! Two-step verification is on.").await;
    s.see(c, None).await;
    s.at_most(5);
    j.finish().await;
}

/// Second manual: My Profile → "Inschakelen" → the password → "Kijk in je mailbox" →
/// the link (same browser: no password again) with the method → the QR code → the
/// recovery codes → My Profile: seven screens. In English with SMS.
async fn second_manual_in_seven_screens_in_both_languages(backend: Backend) {
    let Some(j) = Journey::start(backend).await else {
        return;
    };
    let c = &j.c;
    j.add("an@example.be", "An Peeters", Role::User).await;
    j.add("bo@example.be", "Bo Smets", Role::User).await;

    j.sign_in("an@example.be").await;
    wait_path(c, |p| p == "/", "/").await;
    let mut s = Screens::new("second manual, Dutch");
    j.goto("/account").await;
    wait_text(c, "nog niet ingeschakeld").await;
    s.see(c, None).await;
    click(c, "#twofa a[href='/account/2fa/enable']").await;
    wait_path(c, |p| p == "/account/2fa/enable", "the password").await;
    s.see(c, Some(1)).await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form.card button[value=mail]").await;
    wait_text(c, "Kijk in je mailbox").await;
    s.see(c, Some(2)).await;
    let link = enroll_path_in(&j.nth_mail("enrollment-link", 1).await);
    j.goto(&link).await;
    wait_path(c, |p| p == link, "the link").await;
    s.see(c, Some(2)).await;
    assert!(
        c.find(Locator::Css("#password")).await.is_err(),
        "signed in here: no password again"
    );
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p.starts_with("/account/2fa/setup/"), "the QR page").await;
    s.see(c, Some(3)).await;
    let key = qr_page(&j, "Open in je authenticator-app").await;
    fill(c, "#code", &j.code(&key)).await;
    click(c, "form.card button[type=submit]").await;
    wait_text(c, "Je herstelcodes").await;
    s.see(c, Some(4)).await;
    recovery_codes(c, "Klaar! Tweestapsverificatie is ingeschakeld.").await;
    s.see(c, None).await;
    s.at_most(7);

    // English, SMS on the link's page.
    j.sign_out().await;
    click(c, "a[hreflang=en]").await;
    wait_text(c, "Secure your account now").await;
    j.sign_in("bo@example.be").await;
    wait_path(c, |p| p == "/", "/").await;
    let mut s = Screens::new("second manual, English");
    j.goto("/account").await;
    s.see(c, None).await;
    click(c, "#twofa a[href='/account/2fa/enable']").await;
    wait_path(c, |p| p == "/account/2fa/enable", "the password").await;
    s.see(c, Some(1)).await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form.card button[value=mail]").await;
    wait_text(c, "Check your mailbox").await;
    s.see(c, Some(2)).await;
    let link = enroll_path_in(&j.nth_mail("enrollment-link", 2).await);
    j.goto(&link).await;
    wait_path(c, |p| p == link, "the link").await;
    s.see(c, Some(2)).await;
    click(c, "#method-sms").await;
    fill(c, "#phone", "0470 12 34 56").await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p.starts_with("/account/2fa/sms/"), "the SMS code").await;
    s.see(c, Some(3)).await;
    let sms = nth_sms_in(&j.data_dir(), 1).await;
    fill(c, "#code", &sms_code_in(&sms)).await;
    click(c, "form.card button[type=submit]").await;
    wait_text(c, "Your recovery codes").await;
    s.see(c, Some(4)).await;
    assert_eq!(
        s.bar.as_deref().expect("bar"),
        [
            "1. Confirm your password",
            "2. Open the link from your mail (or show the QR code here)",
            "3. Link your app or phone",
            "4. Keep your recovery codes"
        ]
    );
    recovery_codes(c, "Done! Two-step verification is on.").await;
    s.see(c, None).await;
    s.at_most(7);
    // Still signed in, with the phone.
    wait_text(c, "+32 4").await;
    j.finish().await;
}

/// An app, a support reset (app and number gone, as the mail says), and the link
/// opened in a browser without a session: password and SMS on its page, the code, the
/// recovery codes, My Profile: four screens with a three-step bar.
async fn after_a_reset_someone_without_a_smartphone_chooses_sms(backend: Backend) {
    let Some(j) = Journey::start(backend).await else {
        return;
    };
    let c = &j.c;
    j.add("gust@example.be", "Gust Peeters", Role::User).await;
    j.set_up_app("gust@example.be").await;
    let account = j
        .server
        .app
        .account_by_email("gust@example.be")
        .await
        .expect("account");
    j.server
        .app
        .reset_two_factor(
            Actor::Console,
            account.id,
            "no smartphone any more",
            &j.url,
            &Default::default(),
        )
        .await
        .expect("reset");
    let mail = j.nth_mail("two-factor-reset", 1).await;
    assert!(
        mail.contains("gsm-nummer voor sms-codes werken niet meer"),
        "{mail}"
    );
    let link = enroll_path_in(&mail);

    c.delete_all_cookies().await.expect("cookies");
    let mut s = Screens::new("after a reset");
    j.goto(&link).await;
    wait_path(c, |p| p == link, "the link").await;
    s.see(c, Some(1)).await;
    fill(c, "#password", PASSWORD).await;
    click(c, "#method-sms").await;
    fill(c, "#phone", "0470 12 34 56").await;
    click(c, "form.card button[type=submit]").await;
    wait_path(c, |p| p.starts_with("/account/2fa/sms/"), "the SMS code").await;
    s.see(c, Some(2)).await;
    let code = j.nth_sms_code(1).await;
    fill(c, "#code", &code).await;
    click(c, "form.card button[type=submit]").await;
    wait_text(c, "Je herstelcodes").await;
    s.see(c, Some(3)).await;
    assert_eq!(
        s.bar.as_deref().expect("bar"),
        [
            "1. Open de link en kies je methode",
            "2. Koppel je app of gsm",
            "3. Bewaar je herstelcodes"
        ]
    );
    recovery_codes(c, "Klaar! Tweestapsverificatie is ingeschakeld.").await;
    s.see(c, None).await;
    s.at_most(4);
    let twofa = c
        .find(Locator::Css("#twofa"))
        .await
        .expect("2FA box")
        .text()
        .await
        .expect("text");
    assert!(
        twofa.contains("Sms naar +32 4•• •• •• 56") && !twofa.contains("Authenticator-app"),
        "only the phone now: {twofa}"
    );
    j.finish().await;
}
