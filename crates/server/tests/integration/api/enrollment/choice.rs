//! App or SMS on every way into two-step verification (the mailed code of "secure
//! your account now", the link after a support reset), as at the first set-up; the
//! step bar on every page of the journey; the QR page's "open in your app" link and
//! selectable key; the recovery codes without keyboard shortcuts; the reset saying
//! the phone goes too. Through the pages, without JavaScript.

use super::*;
use crate::kit::sms::{nth_sms_in, sms_code_in};
use tweestap_domain::service::Actor;

crate::on_both_backends!(
    secure_now_sets_up_sms_on_the_code_page,
    secure_now_with_the_app_in_english,
    reset_link_offers_sms_to_someone_without_a_smartphone,
    reset_link_with_the_app_in_english,
    without_sms_only_the_app_is_offered,
    required_at_sign_in_has_the_bar_too,
);

/// The labels of the step bar of a page, and which one is current (1-based).
fn step_bar(html: &str) -> (Vec<String>, usize) {
    let at = html
        .find("<ol class=\"step-bar\"")
        .unwrap_or_else(|| panic!("a step bar: {html}"));
    let bar = &html[at..at + html[at..].find("</ol>").expect("end of the bar")];
    let mut labels = Vec::new();
    let mut current = 0;
    for (i, li) in bar.split("<li").skip(1).enumerate() {
        if li.starts_with(" aria-current=\"step\"") {
            assert_eq!(current, 0, "one current step: {bar}");
            current = i + 1;
        }
        let text = li
            .split_once("</span>")
            .expect("the number")
            .1
            .split('<')
            .next()
            .expect("label");
        labels.push(text.trim().to_owned());
    }
    assert!(current > 0, "a current step: {bar}");
    (labels, current)
}

/// Asserts the page shows the bar `labels` at step `n`.
fn at_step(html: &str, labels: &[&str], n: usize) {
    let (got, current) = step_bar(html);
    assert_eq!(got, labels, "every step of the journey");
    assert_eq!(current, n, "{labels:?}");
}

const SECURE_NL: [&str; 4] = [
    "Meld je aan",
    "Bevestig je e-mailadres en kies je methode",
    "Koppel je app of gsm",
    "Bewaar je herstelcodes",
];
const SECURE_EN: [&str; 4] = [
    "Sign in",
    "Confirm your e-mail address and choose your method",
    "Link your app or phone",
    "Keep your recovery codes",
];
const LINK_NL: [&str; 3] = [
    "Open de link en kies je methode",
    "Koppel je app of gsm",
    "Bewaar je herstelcodes",
];
const LINK_EN: [&str; 3] = [
    "Open the link and choose your method",
    "Link your app or phone",
    "Keep your recovery codes",
];

/// The recovery codes page: no keyboard shortcut to print, the codes there.
fn recovery_page(html: &str, title: &str) {
    assert!(html.contains(title), "{html}");
    assert!(
        !html.contains("Ctrl+P") && !html.contains("Cmd+P"),
        "no keyboard shortcuts: {html}"
    );
    assert_eq!(html.matches("<li><code>").count(), 10, "{html}");
}

/// The QR page: the QR code, its PNG, an otpauth:// link and the key in fours in one
/// selectable element; returns the key.
fn qr_page(html: &str, open_app: &str) -> String {
    let html = &unescaped(html);
    assert!(html.contains("<svg"), "{html}");
    assert!(html.contains("/qr.png\" download="), "{html}");
    let at = html.find("id=\"open-app\"").expect("the open-in-app link");
    let tag = &html[html[..at].rfind('<').expect("tag")..];
    let tag = &tag[..tag.find('>').expect("end")];
    let href = tag
        .split("href=\"")
        .nth(1)
        .and_then(|h| h.split('"').next())
        .expect("href");
    assert!(href.starts_with("otpauth://totp/"), "{href}");
    let text = &html[at..];
    assert!(
        text[text.find('>').expect(">") + 1..].starts_with(open_app),
        "{text}"
    );
    let at = html.find("<code class=\"key\"").expect("the key");
    let inner = &html[at..];
    let inner = &inner[inner.find('>').expect(">") + 1..inner.find("</code>").expect("end")];
    let groups: Vec<&str> = inner.split(' ').collect();
    assert!(
        groups.len() > 1
            && groups[..groups.len() - 1].iter().all(|g| g.len() == 4)
            && (1..=4).contains(&groups[groups.len() - 1].len()),
        "in fours: {inner}"
    );
    let key: String = groups.concat();
    assert!(
        href.contains(&format!("secret={key}&")),
        "the link holds the key: {href}"
    );
    key
}

/// The page with the entities of attribute values (`&#x2f;`, `&amp;`) read back.
fn unescaped(html: &str) -> String {
    html.replace("&#x2f;", "/").replace("&amp;", "&")
}

/// The SMS code of the `n`-th SMS in the outbox.
async fn sms_code(app: &TestApp, n: usize) -> String {
    sms_code_in(&nth_sms_in(app.dir.path(), n).await)
}

/// First manual, SMS: the link on the sign-in page, password, the mailed code with
/// the method (a landline first), the SMS code, the recovery codes, My Profile: five
/// screens after the link, each with the step bar.
async fn secure_now_sets_up_sms_on_the_code_page(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("gust@example.be").await;
    let c = app.client();
    let mut screens = 0;

    let (_, form) = page(&c, "/secure").await;
    screens += 1;
    at_step(&form, &SECURE_NL, 1);
    let r = submit(
        &c,
        &form,
        "/secure",
        &[("email", "gust@example.be"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(r.2.as_deref(), Some("/secure/code"));
    let (_, code_page) = page(&c, "/secure/code").await;
    screens += 1;
    at_step(&code_page, &SECURE_NL, 2);
    assert!(
        code_page.contains("value=\"sms\"") && code_page.contains("id=\"phone\""),
        "{code_page}"
    );
    let code = code_in(&nth_mail(&app, "email-code", 1).await);

    // A wrong code keeps the choice.
    let r = submit(
        &c,
        &code_page,
        "/secure/code",
        &[
            ("code", &other_than(&code)),
            ("method", "sms"),
            ("phone", "0470 12 34 56"),
        ],
    )
    .await;
    assert_eq!(r.0, 401);
    assert!(
        r.1.contains("id=\"method-sms\" name=\"method\" value=\"sms\" aria-describedby=\"method-sms-hint\" checked")
            && r.1.contains("value=\"0470 12 34 56\""),
        "{}",
        r.1
    );
    // A landline with the right code: the method page, the choice kept, the bar at 2.
    let r = submit(
        &c,
        &code_page,
        "/secure/code",
        &[
            ("code", &code),
            ("method", "sms"),
            ("phone", "02 511 11 11"),
        ],
    )
    .await;
    assert_eq!(r.0, 400);
    assert!(r.1.contains("geen gsm-nummer"), "{}", r.1);
    at_step(&r.1, &SECURE_NL, 2);
    assert!(r.1.contains("name=\"via\" value=\"secure\""), "{}", r.1);
    let choose = r.1;
    let r = submit(
        &c,
        &choose,
        "/account/2fa/enable",
        &[
            ("method", "sms"),
            ("phone", "0470 12 34 56"),
            ("via", "secure"),
        ],
    )
    .await;
    assert_eq!(r.0, 303, "{}", r.1);
    let sms_page = r.2.expect("to the SMS code");
    assert!(
        sms_page.starts_with("/account/2fa/sms/") && sms_page.ends_with("?via=secure"),
        "{sms_page}"
    );
    let (_, html) = page(&c, &sms_page).await;
    screens += 1;
    at_step(&html, &SECURE_NL, 3);
    assert!(unescaped(&html).contains("/resend?via=secure"), "{html}");
    let r = submit(&c, &html, &sms_page, &[("code", &sms_code(&app, 1).await)]).await;
    assert_eq!(r.0, 200);
    screens += 1;
    recovery_page(&r.1, "Je herstelcodes");
    at_step(&r.1, &SECURE_NL, 4);
    assert!(r.1.contains("afdrukknop van je browser"), "{}", r.1);
    let (status, profile) = page(&c, "/account?done=enabled").await;
    screens += 1;
    assert_eq!(status, 200);
    assert!(profile.contains("Klaar!"), "{profile}");
    assert!(
        screens <= 5,
        "the first manual promises four short steps: {screens} screens"
    );
}

/// First manual in English, the app: the code page's default is the app; the QR
/// page has the "open in your app" link and the key; four steps on every page.
async fn secure_now_with_the_app_in_english(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client_in(Some("en"));
    let (_, form) = page(&c, "/secure").await;
    at_step(&form, &SECURE_EN, 1);
    submit(
        &c,
        &form,
        "/secure",
        &[("email", "an@example.be"), ("password", PASSWORD)],
    )
    .await;
    let (_, code_page) = page(&c, "/secure/code").await;
    at_step(&code_page, &SECURE_EN, 2);
    assert!(
        code_page.contains("value=\"totp\" checked"),
        "the app by default: {code_page}"
    );
    let code = code_in(&nth_mail(&app, "email-code", 1).await);
    let r = submit(&c, &code_page, "/secure/code", &[("code", &code)]).await;
    let setup = r.2.expect("to the QR page");
    assert!(setup.ends_with("?via=secure"), "{setup}");
    let (_, qr) = page(&c, &setup).await;
    at_step(&qr, &SECURE_EN, 3);
    let key = qr_page(&qr, "Open in your authenticator app");
    // A wrong code keeps the bar and the journey.
    let r = submit(&c, &qr, &setup, &[("code", &other_than(&app.code(&key)))]).await;
    assert_eq!(r.0, 422);
    at_step(&r.1, &SECURE_EN, 3);
    let r = submit(&c, &qr, &setup, &[("code", &app.code(&key))]).await;
    recovery_page(&r.1, "Your recovery codes");
    at_step(&r.1, &SECURE_EN, 4);
    assert!(r.1.contains("print button"), "{}", r.1);
}

/// A support reset of someone with an app: the mail says the app and the number stop
/// working; the link offers SMS, refuses a landline without using the link, and sets
/// up the phone: three screens, each with the bar.
async fn reset_link_offers_sms_to_someone_without_a_smartphone(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("gust@example.be").await;
    let c = app.client();
    c.enroll(&app, "gust@example.be").await;
    let account = app
        .engine()
        .account_by_email("gust@example.be")
        .await
        .expect("account");
    app.engine()
        .reset_two_factor(
            Actor::Console,
            account.id,
            "new phone",
            &app.url,
            &Default::default(),
        )
        .await
        .expect("reset");
    let mail = nth_mail(&app, "two-factor-reset", 1).await;
    assert!(
        mail.contains("Je vorige app en je gsm-nummer voor sms-codes werken niet meer")
            && mail.contains("of per sms als je geen smartphone hebt"),
        "{mail}"
    );
    let link = format!("/enroll/{}", link_token(&mail, &app.url));

    let s = app.client();
    let (status, html) = page(&s, &link).await;
    assert_eq!(status, 200);
    at_step(&html, &LINK_NL, 1);
    assert!(
        html.contains("id=\"password\"")
            && html.contains("value=\"totp\" checked")
            && html.contains("value=\"sms\""),
        "app or SMS, as at the first set-up: {html}"
    );
    let r = submit(
        &s,
        &html,
        &link,
        &[
            ("password", PASSWORD),
            ("method", "sms"),
            ("phone", "02 511 11 11"),
        ],
    )
    .await;
    assert_eq!(r.0, 400);
    assert!(r.1.contains("geen gsm-nummer"), "{}", r.1);
    assert!(r.1.contains("value=\"02 511 11 11\""), "kept: {}", r.1);
    at_step(&r.1, &LINK_NL, 1);
    assert_eq!(page(&s, &link).await.0, 200, "the link still works");
    let r = submit(
        &s,
        &r.1,
        &link,
        &[
            ("password", PASSWORD),
            ("method", "sms"),
            ("phone", "+44 7911 123456"),
        ],
    )
    .await;
    assert!(
        r.0 == 400
            && r.1
                .contains("alleen naar Belgische en Nederlandse gsm-nummers"),
        "names the countries: {}",
        r.1
    );
    let r = submit(
        &s,
        &r.1,
        &link,
        &[
            ("password", PASSWORD),
            ("method", "sms"),
            ("phone", "0470 12 34 56"),
        ],
    )
    .await;
    assert_eq!(r.0, 303, "{}", r.1);
    let sms_page = r.2.expect("to the SMS code");
    assert!(
        sms_page.starts_with("/account/2fa/sms/") && sms_page.ends_with("?via=link"),
        "{sms_page}"
    );
    let (_, html) = page(&s, &sms_page).await;
    at_step(&html, &LINK_NL, 2);
    let r = submit(&s, &html, &sms_page, &[("code", &sms_code(&app, 1).await)]).await;
    assert_eq!(r.0, 200);
    recovery_page(&r.1, "Je herstelcodes");
    at_step(&r.1, &LINK_NL, 3);
    let (status, profile) = page(&s, "/account").await;
    assert_eq!(status, 200, "signed in");
    assert!(profile.contains("Sms naar +32 4"), "{profile}");
    assert_eq!(page(&s, &link).await.0, 410, "the link works once");
}

/// The same link in English with the app: the QR page's link and key, the bar.
async fn reset_link_with_the_app_in_english(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("bo@example.be").await;
    // Set up in English: the account's mail is in English from then on.
    let c = app.client_in(Some("en"));
    c.enroll(&app, "bo@example.be").await;
    let account = app
        .engine()
        .account_by_email("bo@example.be")
        .await
        .expect("account");
    app.engine()
        .reset_two_factor(
            Actor::Console,
            account.id,
            "lost phone",
            &app.url,
            &Default::default(),
        )
        .await
        .expect("reset");
    let mail = nth_mail(&app, "two-factor-reset", 1).await;
    assert!(
        mail.contains("Your previous app and your mobile number for SMS codes no longer work")
            && mail.contains("or by SMS if you have no smartphone"),
        "{mail}"
    );
    let link = format!("/enroll/{}", link_token(&mail, &app.url));
    let s = app.client_in(Some("en"));
    let (_, html) = page(&s, &link).await;
    at_step(&html, &LINK_EN, 1);
    assert!(html.contains("value=\"sms\""), "{html}");
    let r = submit(
        &s,
        &html,
        &link,
        &[("password", PASSWORD), ("method", "totp")],
    )
    .await;
    assert_eq!(r.0, 303, "{}", r.1);
    let setup = r.2.expect("to the QR page");
    assert!(setup.ends_with("?via=link"), "{setup}");
    let (_, qr) = page(&s, &setup).await;
    at_step(&qr, &LINK_EN, 2);
    let key = qr_page(&qr, "Open in your authenticator app");
    let r = submit(&s, &qr, &setup, &[("code", &app.code(&key))]).await;
    recovery_page(&r.1, "Your recovery codes");
    at_step(&r.1, &LINK_EN, 3);
}

/// Without an SMS budget the pages offer the app alone (and post it).
async fn without_sms_only_the_app_is_offered(backend: Backend) {
    let app = TestApp::start_configured(backend, |c| c.sms.global_per_hour = 0).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    let (_, form) = page(&c, "/secure").await;
    submit(
        &c,
        &form,
        "/secure",
        &[("email", "an@example.be"), ("password", PASSWORD)],
    )
    .await;
    let (_, code_page) = page(&c, "/secure/code").await;
    assert!(
        !code_page.contains("value=\"sms\"")
            && code_page.contains("name=\"method\" value=\"totp\""),
        "{code_page}"
    );
    // Even a posted SMS choice gets the app.
    let code = code_in(&nth_mail(&app, "email-code", 1).await);
    let r = submit(
        &c,
        &code_page,
        "/secure/code",
        &[
            ("code", &code),
            ("method", "sms"),
            ("phone", "0470 12 34 56"),
        ],
    )
    .await;
    let to = r.2.expect("onwards");
    assert!(to.starts_with("/account/2fa/setup/"), "{to}");
}

/// Two-step verification required at sign-in: the method page (the choice as
/// everywhere), the QR page and the recovery codes carry a four-step bar, in Dutch
/// and English.
async fn required_at_sign_in_has_the_bar_too(backend: Backend) {
    let app = TestApp::start_configured(backend, |c| {
        c.policy.two_factor = tweestap_domain::policy::TwoFactorMode::Required;
    })
    .await;
    for (lang, email, choose, connect, codes) in [
        (
            "nl",
            "an@example.be",
            "Kies je methode",
            "Koppel je app of gsm",
            "Je herstelcodes",
        ),
        (
            "en",
            "bo@example.be",
            "Choose your method",
            "Link your app or phone",
            "Your recovery codes",
        ),
    ] {
        app.add_user(email).await;
        let c = app.client_in(Some(lang));
        let (_, login) = page(&c, "/login").await;
        let r = submit(
            &c,
            &login,
            "/login",
            &[("email", email), ("password", PASSWORD)],
        )
        .await;
        assert_eq!(r.0, 303, "{}", r.1);
        let (_, choose_page) = page(&c, "/account/2fa/enable").await;
        let (labels, current) = step_bar(&choose_page);
        assert_eq!((labels.len(), current), (4, 2), "{labels:?}");
        assert_eq!(labels[1], choose);
        assert!(
            choose_page.contains("value=\"sms\"")
                && choose_page.contains("name=\"via\" value=\"sign-in\""),
            "{choose_page}"
        );
        let r = submit(
            &c,
            &choose_page,
            "/account/2fa/enable",
            &[("method", "totp"), ("via", "sign-in")],
        )
        .await;
        let setup = r.2.expect("to the QR page");
        assert!(setup.ends_with("?via=sign-in"), "{setup}");
        let (_, qr) = page(&c, &setup).await;
        let (labels, current) = step_bar(&qr);
        assert_eq!((labels[2].as_str(), current), (connect, 3));
        let key = qr_page(
            &qr,
            if lang == "nl" {
                "Open in je authenticator-app"
            } else {
                "Open in your authenticator app"
            },
        );
        let r = submit(&c, &qr, &setup, &[("code", &app.code(&key))]).await;
        recovery_page(&r.1, codes);
        assert_eq!(step_bar(&r.1).1, 4);
    }
}
