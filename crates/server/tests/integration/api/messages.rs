//! The messages of the sign-in pages over plain HTTP: each says what happened and
//! what to do next, in Dutch and English (the tries left before the lock, the lock
//! with its ways forward and its end, signing out, the SMS limits and countries,
//! the SMS-only code step).

use crate::kit::sms::{sms_code_in, sms_files_in};
use crate::kit::{nth_mail, page, submit, Backend, Client, TestApp, PASSWORD};
use serde_json::json;

/// Sets up an authenticator app for `email` through the API: its secret and its
/// recovery codes. The client ends signed out.
async fn app_with_recovery_codes(app: &TestApp, email: &str) -> (String, Vec<String>) {
    let c = app.client();
    assert_eq!(
        c.login(email, PASSWORD).await.body["state"],
        "authenticated"
    );
    let r = c
        .post("/api/v1/me/factors/totp", json!({ "password": PASSWORD }))
        .await;
    let secret = r.body["secret"].as_str().expect("secret").to_owned();
    let id = r.body["id"].as_str().expect("id").to_owned();
    let r = c
        .post(
            &format!("/api/v1/me/factors/totp/{id}/confirm"),
            json!({ "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let codes = r.body["recovery_codes"]
        .as_array()
        .expect("recovery codes")
        .iter()
        .map(|c| c.as_str().expect("a code").to_owned())
        .collect();
    c.post("/api/v1/logout", json!({})).await;
    (secret, codes)
}

/// Sets up only a phone (+32 470 12 34 56, the SMS outbox) for `email`: its
/// recovery codes.
async fn sms_only(app: &TestApp, email: &str) -> Vec<String> {
    let c = app.client();
    assert_eq!(
        c.login(email, PASSWORD).await.body["state"],
        "authenticated"
    );
    let r = c
        .post(
            "/api/v1/me/factors/sms",
            json!({ "phone": "0470 12 34 56", "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let r = c
        .post(
            &format!("/api/v1/me/factors/sms/{id}/confirm"),
            json!({ "code": newest_sms_code(app) }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    c.post("/api/v1/logout", json!({})).await;
    r.body["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("a code").to_owned())
        .collect()
}

fn newest_sms_code(app: &TestApp) -> String {
    let files = sms_files_in(app.dir.path());
    let text = std::fs::read_to_string(files.last().expect("an SMS")).expect("read");
    sms_code_in(&text)
}

/// The password step through the pages; the browser lands on the code step. Its
/// HTML.
async fn to_code_step(c: &Client, email: &str) -> String {
    let (_, login) = page(c, "/login").await;
    let r = submit(
        c,
        &login,
        "/login",
        &[("email", email), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(r.2.as_deref(), Some("/login/code"), "{}", r.1);
    let (status, html) = page(c, "/login/code").await;
    assert_eq!(status, 200, "{html}");
    html
}

/// "16:45": the time of day (Brussels) `secs` after the app's clock, rounded up to
/// the minute, as the pages say when a wait ends.
fn clock_plus(app: &TestApp, secs: i64) -> String {
    let t = app.clock_now() + secs;
    let t = t + (60 - t.rem_euclid(60)) % 60;
    let t = chrono::DateTime::from_timestamp(t, 0).expect("a time");
    tweestap_web::dates::time(tweestap_web::dates::DEFAULT_TIME_ZONE, t)
}

/// A wrong code for the app (never the right one).
fn wrong(app: &TestApp, secret: &str) -> &'static str {
    if app.code(secret) == "000000" {
        "111111"
    } else {
        "000000"
    }
}

async fn wrong_codes_count_down_then_the_lock_says_when_and_what_else_works(backend: Backend) {
    let app = TestApp::start(backend).await;
    for (email, lang) in [("an@example.be", "nl"), ("bo@example.be", "en")] {
        app.add_user(email).await;
        let (secret, codes) = app_with_recovery_codes(&app, email).await;
        let c = app.client_in(Some(lang));
        let mut html = to_code_step(&c, email).await;
        let texts = |nl: &'static str, en: &'static str| if lang == "nl" { nl } else { en };
        for (i, left) in [None, None, Some(2), Some(1)].into_iter().enumerate() {
            let r = submit(&c, &html, "/login/code", &[("code", wrong(&app, &secret))]).await;
            assert_eq!(r.0, 401, "try {i}: {}", r.1);
            let warned = match left {
                None => !r.1.contains(texts("Nog ", "left:")),
                Some(2) => r.1.contains(texts("Nog 2 pogingen", "2 tries left")),
                Some(_) => r.1.contains(texts("Nog 1 poging:", "1 try left")),
            };
            assert!(warned, "try {i}, {left:?} left: {}", r.1);
            assert!(!r.1.contains("lock-ways"), "not locked yet: {}", r.1);
            html = r.1;
        }
        // The fifth wrong code locks: when it ends, and the way forward.
        let r = submit(&c, &html, "/login/code", &[("code", wrong(&app, &secret))]).await;
        assert_eq!(r.0, 429, "{}", r.1);
        let at = clock_plus(&app, 60);
        let said = if lang == "nl" {
            format!("Te veel foute codes. De code van je app werkt weer om {at} (over 1 minuut).")
        } else {
            format!(
                "Too many wrong codes. The code from your app works again at {at} (in 1 minute)."
            )
        };
        assert!(r.1.contains(&said), "{said}: {}", r.1);
        assert!(r.1.contains("href=\"/login/recovery\""), "{}", r.1);
        assert!(
            r.1.contains(texts(
                "Meld je aan met een herstelcode",
                "Sign in with a recovery code"
            )),
            "{}",
            r.1
        );
        // Coming back to the page says the same.
        let (status, again) = page(&c, "/login/code").await;
        assert_eq!(status, 200);
        assert!(again.contains("id=\"lock-ways\""), "{again}");
        // Even the right code from the app waits; a recovery code does not.
        app.next_step();
        let r = submit(&c, &again, "/login/code", &[("code", &app.code(&secret))]).await;
        assert_eq!(r.0, 429, "{}", r.1);
        let (_, recovery) = page(&c, "/login/recovery").await;
        let r = submit(&c, &recovery, "/login/recovery", &[("code", &codes[0])]).await;
        assert_eq!(r.2.as_deref(), Some("/"), "{}", r.1);
    }
}

async fn the_api_says_how_many_tries_are_left(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let (secret, codes) = app_with_recovery_codes(&app, "an@example.be").await;
    let c = app.client();
    c.login("an@example.be", PASSWORD).await;
    for left in [4, 3, 2, 1, 0] {
        let r = c
            .post(
                "/api/v1/login/second-factor",
                json!({ "method": "totp", "code": wrong(&app, &secret) }),
            )
            .await;
        assert_eq!(
            (
                r.status,
                r.body["error"].as_str(),
                r.body["tries_left"].as_u64()
            ),
            (401, Some("invalid_code"), Some(left)),
            "{:?}",
            r.body
        );
    }
    let r = c
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(r.body["error"], "too_many_attempts", "{:?}", r.body);
    assert!(r.body.get("tries_left").is_none(), "{:?}", r.body);
    // A recovery code works while the app's code is locked.
    let r = c
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "recovery_code", "code": codes[1] }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

async fn signing_out_says_so_and_cancelling_does_not(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let (secret, _) = app_with_recovery_codes(&app, "an@example.be").await;
    for (lang, text) in [("nl", "Je bent afgemeld."), ("en", "You are signed out.")] {
        let c = app.client_in(Some(lang));
        let html = to_code_step(&c, "an@example.be").await;
        // Cancelling at the code step is no signing out.
        let r = submit(&c, &html, "/logout", &[]).await;
        assert_eq!(r.2.as_deref(), Some("/login"));
        let html = to_code_step(&c, "an@example.be").await;
        app.next_step();
        let r = submit(&c, &html, "/login/code", &[("code", &app.code(&secret))]).await;
        assert_eq!(r.2.as_deref(), Some("/"), "{}", r.1);
        let (_, home) = page(&c, "/").await;
        let r = submit(&c, &home, "/logout", &[]).await;
        assert_eq!(r.2.as_deref(), Some("/login?signed_out=1"));
        let (status, login) = page(&c, "/login?signed_out=1").await;
        assert_eq!(status, 200);
        assert!(login.contains(text), "{login}");
        let (_, plain) = page(&c, "/login").await;
        assert!(!plain.contains(text), "only right after signing out");
    }
}

async fn the_sms_only_code_step_sends_by_itself_once_and_offers_another(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    sms_only(&app, "an@example.be").await;
    let before = sms_files_in(app.dir.path()).len();
    let c = app.client();
    let html = to_code_step(&c, "an@example.be").await;
    assert_eq!(
        sms_files_in(app.dir.path()).len(),
        before + 1,
        "sent by itself"
    );
    assert!(
        html.contains(
            "We sturen je code van 6 cijfers per sms naar je gsm. Vul die code hieronder in."
        ),
        "a whole sentence: {html}"
    );
    assert!(
        html.contains("We stuurden een code van 6 cijfers naar +32 4•• •• •• 56"),
        "{html}"
    );
    assert!(html.contains(">Stuur opnieuw</button>"), "{html}");
    // Coming back does not send another.
    let (_, again) = page(&c, "/login/code").await;
    assert_eq!(sms_files_in(app.dir.path()).len(), before + 1, "once");
    assert!(again.contains(">Stuur opnieuw</button>"), "{again}");
    let r = submit(
        &c,
        &again,
        "/login/code",
        &[("code", &newest_sms_code(&app))],
    )
    .await;
    assert_eq!(r.2.as_deref(), Some("/"), "{}", r.1);

    // In English, the same sentence.
    let e = app.client_in(Some("en"));
    let html = to_code_step(&e, "an@example.be").await;
    assert!(
        html.contains("We send your 6-digit code by SMS to your mobile phone."),
        "{html}"
    );
}

async fn the_sms_limit_says_when_offers_no_app_to_sms_only_people_and_disables_the_button(
    backend: Backend,
) {
    let app = TestApp::start_configured(backend, |c| {
        c.sms.per_account_per_hour = 2;
    })
    .await;
    app.add_user("an@example.be").await;
    // The set-up's SMS is the first of the hour, the first sign-in's the second.
    sms_only(&app, "an@example.be").await;
    let c = app.client();
    to_code_step(&c, "an@example.be").await;
    for (lang, texts) in [
        (
            "nl",
            [
                "We stuurden het voorbije uur al te veel sms&#x27;en. Je kunt om {at} (over 60 minuten) een nieuwe sms vragen. Wil je niet wachten? Meld je aan met een herstelcode.",
                "Gebruik intussen de code van je app",
            ],
        ),
        (
            "en",
            [
                "We have sent too many SMS in the last hour. You can ask for a new SMS at {at} (in 60 minutes). Don&#x27;t want to wait? Sign in with a recovery code.",
                "Meanwhile, use the code from your app",
            ],
        ),
    ] {
        let d = app.client_in(Some(lang));
        let (_, login) = page(&d, "/login").await;
        let r = submit(
            &d,
            &login,
            "/login",
            &[("email", "an@example.be"), ("password", PASSWORD)],
        )
        .await;
        assert_eq!(r.2.as_deref(), Some("/login/code"));
        let (status, html) = page(&d, "/login/code").await;
        assert_eq!(status, 429, "{html}");
        let said = texts[0].replace("{at}", &clock_plus(&app, 3600));
        assert!(html.contains(&said), "{said}: {html}");
        assert!(!html.contains(texts[1]), "no app to use: {html}");
        assert!(
            html.contains("id=\"send-sms\" disabled"),
            "the button waits too: {html}"
        );
    }
}

async fn setting_up_a_phone_past_the_limit_says_when_and_waits_to_send_again(backend: Backend) {
    let app = TestApp::start_configured(backend, |c| {
        c.sms.per_account_per_hour = 1;
    })
    .await;
    app.add_user("an@example.be").await;
    let c = app.client();
    assert_eq!(c.login("an@example.be", PASSWORD).await.status, 200);
    let r = c
        .post(
            "/api/v1/me/factors/sms",
            json!({ "phone": "0470 12 34 56", "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let setup = format!("/account/2fa/sms/{}", r.body["id"].as_str().expect("id"));
    let (_, html) = page(&c, &setup).await;
    assert!(!html.contains("id=\"resend-sms\" disabled"), "{html}");
    let r = submit(&c, &html, &format!("{setup}/resend"), &[]).await;
    assert_eq!(r.0, 429, "{}", r.1);
    let said = format!(
        "We stuurden het voorbije uur al te veel sms&#x27;en. Je kunt om {} (over 60 minuten) een nieuwe sms vragen. Of stel intussen een authenticator-app in.",
        clock_plus(&app, 3600)
    );
    assert!(r.1.contains(&said), "{said}: {}", r.1);
    assert!(r.1.contains("id=\"resend-sms\" disabled"), "{}", r.1);
    assert_eq!(sms_files_in(app.dir.path()).len(), 1, "no second SMS");
}

async fn numbers_from_other_countries_are_told_where_sms_goes(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    c.login("an@example.be", PASSWORD).await;
    for (lang, text) in [
        (
            "nl",
            "Sms&#x27;en gaan alleen naar Belgische en Nederlandse gsm-nummers.",
        ),
        ("en", "SMS only goes to Belgian and Dutch mobile numbers."),
    ] {
        let c = app.client_in(Some(lang));
        c.login("an@example.be", PASSWORD).await;
        let (_, form) = page(&c, "/account/2fa/sms").await;
        let r = submit(
            &c,
            &form,
            "/account/2fa/sms",
            &[("password", PASSWORD), ("phone", "+44 7911 123456")],
        )
        .await;
        assert_eq!(r.0, 400);
        assert!(r.1.contains(text), "{}", r.1);
        let r = submit(
            &c,
            &form,
            "/account/2fa/sms",
            &[("password", PASSWORD), ("phone", " ")],
        )
        .await;
        assert_eq!(r.0, 400);
        assert!(
            r.1.contains(if lang == "nl" {
                "Vul je gsm-nummer in"
            } else {
                "Enter your mobile number"
            }),
            "{}",
            r.1
        );
    }
}

/// The path of the QR link in the `n`-th link mail.
async fn mailed_link(app: &TestApp, n: usize) -> String {
    let text = nth_mail(app, "enrollment-link", n).await;
    let prefix = format!("{}/enroll/", app.url);
    let at = text.find(&prefix).expect("the link") + prefix.len();
    format!("/enroll/{}", &text[at..at + 43])
}

/// Asks for the QR link by mail on My profile (the client is signed in).
async fn ask_link(c: &Client) {
    let (_, enable) = page(c, "/account/2fa/enable").await;
    let r = submit(
        c,
        &enable,
        "/account/2fa/enable",
        &[("password", PASSWORD), ("delivery", "mail")],
    )
    .await;
    assert_eq!(r.0, 200, "{}", r.1);
}

async fn the_link_page_asks_no_hidden_password_and_knows_when_two_step_is_on(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    for (n, lang) in [(1, "nl"), (2, "en")] {
        let c = app.client_in(Some(lang));
        assert_eq!(c.login("an@example.be", PASSWORD).await.status, 200);
        ask_link(&c).await;
        let link = mailed_link(&app, n).await;
        // Signed in as the owner: no password field, and the text asks for none.
        let (status, html) = page(&c, &link).await;
        assert_eq!(status, 200);
        assert!(!html.contains("id=\"password\""), "{html}");
        let (said, not_said) = if lang == "nl" {
            (
                "Je bent al aangemeld",
                "Vul ter bevestiging je wachtwoord in",
            )
        } else {
            (
                "You are already signed in",
                "Enter your password to confirm",
            )
        };
        assert!(html.contains(said) && !html.contains(not_said), "{html}");
    }
    // Two-step verification switched on since: the link says so, not "does not work".
    let link = mailed_link(&app, 2).await;
    app_with_recovery_codes(&app, "an@example.be").await;
    for (lang, title, wrong) in [
        (
            "nl",
            "Tweestapsverificatie staat al aan",
            "Deze link werkt niet (meer)",
        ),
        (
            "en",
            "Two-step verification is already on",
            "This link does not work (any more)",
        ),
    ] {
        let other = app.client_in(Some(lang));
        let (_, html) = page(&other, &link).await;
        assert!(html.contains(title) && !html.contains(wrong), "{html}");
        assert!(!html.contains("id=\"password\""), "{html}");
        assert!(html.contains("href=\"/login\""), "a way on: {html}");
    }
}

async fn the_method_page_keeps_sms_chosen_and_says_what_is_wrong_with_the_number(backend: Backend) {
    let app = TestApp::start_configured(backend, |c| {
        c.policy.two_factor = tweestap_domain::policy::TwoFactorMode::Required;
    })
    .await;
    app.add_user("an@example.be").await;
    for (lang, missing, country) in [
        (
            "nl",
            "Vul je gsm-nummer in",
            "Sms&#x27;en gaan alleen naar Belgische en Nederlandse gsm-nummers.",
        ),
        (
            "en",
            "Enter your mobile number",
            "SMS only goes to Belgian and Dutch mobile numbers.",
        ),
    ] {
        let c = app.client_in(Some(lang));
        assert_eq!(
            c.login("an@example.be", PASSWORD).await.body["state"],
            "enrollment_required"
        );
        let (_, choose) = page(&c, "/account/2fa/enable").await;
        for (phone, text) in [("", missing), ("+44 7911 123456", country)] {
            let r = submit(
                &c,
                &choose,
                "/account/2fa/enable",
                &[("method", "sms"), ("phone", phone)],
            )
            .await;
            assert_eq!(r.0, 400, "{}", r.1);
            assert!(r.1.contains(text), "{phone:?}: {}", r.1);
            assert!(
                r.1.contains("value=\"sms\" aria-describedby=\"method-sms-hint\" checked"),
                "SMS stays chosen for {phone:?}: {}",
                r.1
            );
        }
    }
    assert!(sms_files_in(app.dir.path()).is_empty(), "nothing sent");
}

async fn asking_too_many_mailed_codes_says_how_to_go_on(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    app.add_user("bo@example.be").await;
    // One person each: at most five code mails an hour per account.
    for (email, lang, text, vague) in [
        (
            "an@example.be",
            "nl",
            "Gebruik de code uit de nieuwste mail, of begin opnieuw met ‘Beveilig nu al je account’",
            "over een tijdje",
        ),
        (
            "bo@example.be",
            "en",
            "Use the code from the newest mail, or start again with ‘Secure your account now’",
            "in a while",
        ),
    ] {
        let c = app.client_in(Some(lang));
        let (_, secure) = page(&c, "/secure").await;
        let r = submit(
            &c,
            &secure,
            "/secure",
            &[("email", email), ("password", PASSWORD)],
        )
        .await;
        assert_eq!(r.2.as_deref(), Some("/secure/code"), "{}", r.1);
        let (_, mut html) = page(&c, "/secure/code").await;
        for _ in 0..2 {
            let r = submit(&c, &html, "/secure/code/resend", &[]).await;
            assert_eq!(r.0, 200, "{}", r.1);
            html = r.1;
        }
        let r = submit(&c, &html, "/secure/code/resend", &[]).await;
        assert_eq!(r.0, 429, "{}", r.1);
        assert!(r.1.contains(text) && !r.1.contains(vague), "{}", r.1);
    }
}

crate::on_both_backends!(
    setting_up_a_phone_past_the_limit_says_when_and_waits_to_send_again,
    asking_too_many_mailed_codes_says_how_to_go_on,
    the_method_page_keeps_sms_chosen_and_says_what_is_wrong_with_the_number,
    the_link_page_asks_no_hidden_password_and_knows_when_two_step_is_on,
    wrong_codes_count_down_then_the_lock_says_when_and_what_else_works,
    the_api_says_how_many_tries_are_left,
    signing_out_says_so_and_cancelling_does_not,
    the_sms_only_code_step_sends_by_itself_once_and_offers_another,
    the_sms_limit_says_when_offers_no_app_to_sms_only_people_and_disables_the_button,
    numbers_from_other_countries_are_told_where_sms_goes,
);
