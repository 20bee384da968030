//! Locking people out, and guessing past the throttles (issue 18, findings 2, 5 and
//! 6): the password throttle is kept per account and client address, a remembered
//! device or a session of the account has its own, one address has a budget over
//! every account, and every password or recovery code is checked only after an
//! attempt was taken, so parallel requests check no more than allowed. Each client
//! here connects from its own loopback address (127.0.0.x), as people at other
//! addresses would.

use crate::kit::{Backend, Client, TestApp, PASSWORD};
use chrono::Duration;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};

crate::on_both_backends!(
    locking_a_person_out_knowing_only_their_address,
    throttling_tells_nothing_about_which_addresses_have_an_account,
    a_strangers_guesses_do_not_stop_the_person_signed_in_at_the_same_address,
    guessing_many_accounts_from_one_address,
    guessing_one_password_from_many_addresses,
    fifty_wrong_passwords_in_parallel_at_sign_in,
    fifty_wrong_passwords_in_parallel_inside_a_session,
    fifty_wrong_recovery_codes_in_parallel_on_one_sign_in,
    guessing_recovery_codes_on_the_page_says_when_to_try_again,
);

const AN: &str = "an@example.be";
/// The attacker's address; also a café where An's laptop is.
const STRANGER: u8 = 2;
/// An's own address.
const HOME: u8 = 3;

/// A client connecting from 127.0.0.`n`.
fn client_at(app: &TestApp, n: u8) -> Client {
    Client {
        base: app.url.clone(),
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
            .build()
            .expect("client"),
    }
}

/// An with an authenticator app; returns its secret.
async fn an_with_an_app(app: &TestApp) -> String {
    app.add_user(AN).await;
    app.client().enroll(app, AN).await.1
}

/// An with an authenticator app; returns her recovery codes.
async fn an_with_recovery_codes(app: &TestApp) -> Vec<String> {
    app.add_user(AN).await;
    let c = app.client();
    assert_eq!(c.login(AN, PASSWORD).await.body["state"], "authenticated");
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
    serde_json::from_value(r.body["recovery_codes"].clone()).expect("codes")
}

/// Signs in with password and code at `c`, remembering that browser, then out.
async fn remembered_browser(app: &TestApp, c: &Client, secret: &str) {
    assert_eq!(c.login(AN, PASSWORD).await.body["state"], "second_factor");
    app.next_step();
    let code = app.code(secret);
    let body = json!({"method": "totp", "code": code, "remember_device": true});
    let r = c.post("/api/v1/login/second-factor", body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(c.post("/api/v1/logout", json!({})).await.status, 200);
}

/// The audit records of `event` for `email` (or every address), with their detail.
async fn audited(app: &TestApp, event: &str, email: Option<&str>) -> Vec<String> {
    app.engine()
        .audit_log(1000, email)
        .await
        .expect("audit")
        .into_iter()
        .filter(|r| r.event == event)
        .map(|r| r.detail.unwrap_or_default())
        .collect()
}

/// A stranger who knows only An's address guesses from one address for two hours
/// (past every lock, as "one request every 15 minutes" did): only that address
/// waits. An signs in from home as always, and on her laptop at the very same
/// address her remembered device lets her in. One address alone never reaches the
/// account's backstop (set low here, at 15, to show it).
async fn locking_a_person_out_knowing_only_their_address(backend: Backend) {
    let app = TestApp::start_configured(backend, |c| {
        c.lockout.password_account_max_failures = 15;
    })
    .await;
    let secret = an_with_an_app(&app).await;
    let laptop = client_at(&app, STRANGER);
    remembered_browser(&app, &laptop, &secret).await;

    let stranger = client_at(&app, STRANGER);
    let wrong = stranger.login(AN, "raden maar").await;
    assert_eq!(wrong.status, 401);
    for round in 0..8 {
        if round > 0 {
            // Past the longest lock (15 minutes).
            app.clock.advance(Duration::seconds(901));
        }
        for _ in 0..if round == 0 { 11 } else { 2 } {
            let r = stranger.login(AN, "raden maar").await;
            assert_eq!((r.status, &r.body), (401, &wrong.body));
        }
        // From there even the right password gets the same answer now.
        let r = stranger.login(AN, PASSWORD).await;
        assert_eq!((r.status, &r.body), (401, &wrong.body), "round {round}");

        let home = client_at(&app, HOME);
        let r = home.login(AN, PASSWORD).await;
        assert_eq!(
            r.body["state"], "second_factor",
            "round {round}: {:?}",
            r.body
        );
        let r = laptop.login(AN, PASSWORD).await;
        assert_eq!(
            r.body["state"], "authenticated",
            "round {round}: {:?}",
            r.body
        );
        assert_eq!(laptop.post("/api/v1/logout", json!({})).await.status, 200);
    }
    let locks = audited(&app, "password_locked_out", Some(AN)).await;
    assert!(
        locks.iter().all(|d| d.contains("scope=account_address")),
        "{locks:?}"
    );
    assert_eq!(locks.len(), 8, "a lock each round: {locks:?}");
    let throttled = audited(&app, "login_throttled", Some(AN)).await;
    assert!(throttled.len() >= 8, "{throttled:?}");
    assert!(throttled
        .iter()
        .all(|d| d.contains("sign-in; scope=account_address")));
}

/// A stranger guesses An's password at the address where An is signed in (an
/// office behind one address): when a portal asks An for her password again
/// (`prompt=login`), and when she confirms it to set up an app, her session counts
/// on its own, so the stranger's throttle does not stop her.
async fn a_strangers_guesses_do_not_stop_the_person_signed_in_at_the_same_address(
    backend: Backend,
) {
    use crate::kit::{page, submit};
    let app = TestApp::start(backend).await;
    app.add_user(AN).await;
    let an = client_at(&app, STRANGER);
    let (_, login) = page(&an, "/login").await;
    let r = submit(
        &an,
        &login,
        "/login",
        &[("email", AN), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(r.2.as_deref(), Some("/"), "{}", r.1);
    let stranger = client_at(&app, STRANGER);
    for _ in 0..11 {
        assert_eq!(stranger.login(AN, "raden maar").await.status, 401);
    }
    assert_eq!(stranger.login(AN, PASSWORD).await.status, 401, "throttled");

    let (_, again) = page(&an, "/login?prompt=login").await;
    let fields = [("email", AN), ("password", PASSWORD), ("prompt", "login")];
    let r = submit(&an, &again, "/login", &fields).await;
    assert_eq!(r.2.as_deref(), Some("/"), "{}", r.1);
    let r = an
        .post("/api/v1/me/factors/totp", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(stranger.login(AN, PASSWORD).await.status, 401, "still");
}

/// Eleven wrong passwords and then the right one, for an account and for an address
/// without one: the same answers, step by step.
async fn throttling_tells_nothing_about_which_addresses_have_an_account(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user(AN).await;
    let c = client_at(&app, STRANGER);
    let mut answers: Vec<Vec<(u16, Value)>> = Vec::new();
    for email in [AN, "nobody@example.be"] {
        let mut seen = Vec::new();
        for _ in 0..11 {
            let r = c.login(email, "raden maar").await;
            seen.push((r.status, r.body));
        }
        let r = c.login(email, PASSWORD).await;
        seen.push((r.status, r.body));
        answers.push(seen);
    }
    assert_eq!(answers[0], answers[1]);
    assert!(answers[0].iter().all(|(s, _)| *s == 401));
    // Both were throttled alike (the unknown one keyed by a MAC of the address).
    for email in [AN, "nobody@example.be"] {
        let t = audited(&app, "login_throttled", Some(email)).await;
        assert_eq!(t.len(), 2, "{email}: {t:?}");
    }
    let rows = crate::kit::stored_texts(&app, "SELECT key FROM throttles").await;
    assert!(rows.iter().all(|k| !k.contains("nobody")), "{rows:?}");
}

/// Password spraying: one address tries one password on many accounts. It has a
/// budget of wrong passwords an hour (set to 20 here) over every account, known or
/// not; right passwords from that address (an office behind one address) give their
/// attempt back. Others, and a remembered device even at that address, are not
/// held up; an hour later the address may try again.
async fn guessing_many_accounts_from_one_address(backend: Backend) {
    let app = TestApp::start_configured(backend, |c| {
        c.lockout.password_address_max_failures = 20;
    })
    .await;
    let secret = an_with_an_app(&app).await;
    let laptop = client_at(&app, STRANGER);
    remembered_browser(&app, &laptop, &secret).await;
    let users: Vec<String> = (0..24).map(|i| format!("user{i}@example.be")).collect();
    for u in &users {
        app.add_user(u).await;
    }
    let office = client_at(&app, STRANGER);
    for u in &users[..5] {
        assert_eq!(office.login(u, PASSWORD).await.status, 200, "{u}");
        office.post("/api/v1/logout", json!({})).await;
    }
    for (i, user) in users.iter().enumerate().take(20) {
        let email = if i % 2 == 0 {
            user.clone()
        } else {
            format!("nobody{i}@example.be")
        };
        assert_eq!(office.login(&email, "Welkom2025!").await.status, 401);
    }
    let checked = audited(&app, "login_failed", None).await;
    assert_eq!(checked.len(), 20, "every one was checked: {checked:?}");
    // The budget is spent: the next is refused unchecked, even a right password.
    assert_eq!(office.login(&users[21], PASSWORD).await.status, 401);
    let t = audited(&app, "login_throttled", Some(&users[21])).await;
    assert_eq!(t, vec!["sign-in; scope=address".to_owned()]);
    let locks = audited(&app, "password_locked_out", None).await;
    assert_eq!(locks.len(), 1, "{locks:?}");
    assert!(
        locks[0].starts_with("scope=address failures=20"),
        "{locks:?}"
    );

    let home = client_at(&app, HOME);
    assert_eq!(home.login(&users[22], PASSWORD).await.status, 200);
    let r = laptop.login(AN, PASSWORD).await;
    assert_eq!(r.body["state"], "authenticated", "{:?}", r.body);

    app.clock.advance(Duration::minutes(61));
    assert_eq!(office.login(&users[21], PASSWORD).await.status, 200);
}

/// Many addresses guessing one account's password (a botnet): each counts towards
/// the account's backstop until its own throttle starts; at the backstop (20 here)
/// the account waits for everyone who cannot show it is the person's, so no more
/// than that many guesses are checked in a row (NIST SP 800-63B allows 100). The
/// person's remembered device still gets in.
async fn guessing_one_password_from_many_addresses(backend: Backend) {
    let app = TestApp::start_configured(backend, |c| {
        c.lockout.password_account_max_failures = 20;
    })
    .await;
    let secret = an_with_an_app(&app).await;
    let laptop = client_at(&app, HOME);
    remembered_browser(&app, &laptop, &secret).await;
    for n in 10..13 {
        let bot = client_at(&app, n);
        for _ in 0..10 {
            assert_eq!(bot.login(AN, "raden maar").await.status, 401);
        }
    }
    let checked = audited(&app, "login_failed", Some(AN)).await;
    assert_eq!(checked.len(), 20, "{checked:?}");
    let locks = audited(&app, "password_locked_out", Some(AN)).await;
    assert!(locks
        .iter()
        .any(|d| d.starts_with("scope=account failures=20")));

    let elsewhere = client_at(&app, 20);
    assert_eq!(elsewhere.login(AN, PASSWORD).await.status, 401, "waits");
    let r = laptop.login(AN, PASSWORD).await;
    assert_eq!(r.body["state"], "authenticated", "{:?}", r.body);
    assert_eq!(laptop.post("/api/v1/logout", json!({})).await.status, 200);
    app.clock.advance(Duration::seconds(31));
    let r = elsewhere.login(AN, PASSWORD).await;
    assert_eq!(r.body["state"], "second_factor", "{:?}", r.body);
}

/// Fifty wrong passwords at once from one address: no more are checked than its
/// throttle allows (ten); the rest get the same answer unchecked.
async fn fifty_wrong_passwords_in_parallel_at_sign_in(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user(AN).await;
    let c = client_at(&app, STRANGER);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50u32 {
        let (http, url) = (c.http.clone(), format!("{}/api/v1/login", c.base));
        tasks.spawn(async move {
            let body = json!({"email": AN, "password": format!("gok nummer {i}")});
            http.post(url)
                .json(&body)
                .send()
                .await
                .expect("request")
                .status()
        });
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done.expect("task").as_u16(), 401);
    }
    let checked = audited(&app, "login_failed", Some(AN)).await;
    assert!(checked.len() <= 10, "{} were checked", checked.len());
    let throttled = audited(&app, "login_throttled", Some(AN)).await;
    assert_eq!(checked.len() + throttled.len(), 50);
    assert_eq!(
        audited(&app, "password_locked_out", Some(AN)).await.len(),
        1
    );
}

/// Fifty wrong password confirmations at once on one session (a stolen cookie):
/// no more are checked than the session's throttle allows (ten).
async fn fifty_wrong_passwords_in_parallel_inside_a_session(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user(AN).await;
    let c = client_at(&app, STRANGER);
    c.enroll(&app, AN).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50u32 {
        let (http, url) = (
            c.http.clone(),
            format!("{}/api/v1/me/recovery-codes", c.base),
        );
        tasks.spawn(async move {
            let body = json!({"password": format!("gok nummer {i}")});
            let r = http.post(url).json(&body).send().await.expect("request");
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or_default();
            (status, body)
        });
    }
    let (mut checked, mut refused) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        match done.expect("task") {
            (403, b) if b["error"] == "invalid_password" => checked += 1,
            (429, b) if b["error"] == "too_many_attempts" => {
                refused += 1;
                let wait = b["retry_after"].as_i64().expect("retry_after");
                assert!((1..=30).contains(&wait), "the first lock: {wait}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(checked + refused, 50);
    assert!(
        checked <= 10,
        "{checked} were checked; the throttle allows 10"
    );
    let locks = audited(&app, "password_locked_out", Some(AN)).await;
    assert_eq!(locks.len(), 1, "{locks:?}");
    assert!(
        locks[0].starts_with("scope=session failures=10"),
        "{locks:?}"
    );
    // The person elsewhere is not held up by it.
    let home = client_at(&app, HOME);
    assert_eq!(
        home.login(AN, PASSWORD).await.body["state"],
        "second_factor"
    );
}

/// Fifty wrong recovery codes at once on one sign-in: no more are checked than
/// the recovery codes' lock-out allows (five); a right one works once it ends.
async fn fifty_wrong_recovery_codes_in_parallel_on_one_sign_in(backend: Backend) {
    let app = TestApp::start(backend).await;
    let codes = an_with_recovery_codes(&app).await;
    let c = app.client();
    assert_eq!(c.login(AN, PASSWORD).await.body["state"], "second_factor");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50u32 {
        let (http, url) = (
            c.http.clone(),
            format!("{}/api/v1/login/second-factor", c.base),
        );
        tasks.spawn(async move {
            let code = format!("aaaaa-{:05}", 10_000 + i);
            let body = json!({"method": "recovery_code", "code": code});
            let r = http.post(url).json(&body).send().await.expect("request");
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or_default();
            (status, body)
        });
    }
    let (mut checked, mut refused) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        match done.expect("task") {
            (401, b) if b["error"] == "invalid_code" => checked += 1,
            (429, b) if b["error"] == "too_many_attempts" => {
                refused += 1;
                let wait = b["retry_after"].as_i64().expect("retry_after");
                assert!((1..=60).contains(&wait), "the first lock: {wait}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(checked + refused, 50);
    assert!(
        checked <= 5,
        "{checked} were checked; the lock-out allows 5"
    );
    let locks = audited(&app, "code_locked_out", Some(AN)).await;
    assert_eq!(locks.len(), 1, "{locks:?}");
    assert!(
        locks[0].starts_with("scope=recovery failures=5"),
        "{locks:?}"
    );
    let body = json!({"method": "recovery_code", "code": codes[0]});
    let r = c.post("/api/v1/login/second-factor", body.clone()).await;
    assert_eq!(r.status, 429, "locked: {:?}", r.body);
    app.clock.advance(Duration::seconds(61));
    let r = c.post("/api/v1/login/second-factor", body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// On the page, the sixth wrong recovery code says when the next may be tried (in
/// Dutch and English); a right one works once that time has come.
async fn guessing_recovery_codes_on_the_page_says_when_to_try_again(backend: Backend) {
    use crate::kit::{page, submit};
    let app = TestApp::start(backend).await;
    let codes = an_with_recovery_codes(&app).await;
    for lang in ["nl", "en"] {
        let c = app.client_in(Some(lang));
        let (_, login) = page(&c, "/login").await;
        let fields = [("email", AN), ("password", PASSWORD)];
        let r = submit(&c, &login, "/login", &fields).await;
        assert_eq!(r.2.as_deref(), Some("/login/code"), "{}", r.1);
        let (_, mut html) = page(&c, "/login/recovery").await;
        for i in 0..5 {
            let r = submit(&c, &html, "/login/recovery", &[("code", "aaaaa-bbbbb")]).await;
            assert_eq!(r.0, 401, "try {i}: {}", r.1);
            html = r.1;
        }
        let r = submit(&c, &html, "/login/recovery", &[("code", &codes[0])]).await;
        assert_eq!(r.0, 429, "{}", r.1);
        // "om 9:01 (over 1 minuut)": the time of day the lock ends, rounded up.
        let t = app.clock_now() + 60;
        let t = t + (60 - t.rem_euclid(60)) % 60;
        let t = chrono::DateTime::from_timestamp(t, 0).expect("a time");
        let at = tweestap_web::dates::time(tweestap_web::dates::DEFAULT_TIME_ZONE, t);
        let said = if lang == "nl" {
            format!(
                "Te veel foute herstelcodes. Je kunt het opnieuw proberen om {at} (over 1 minuut)."
            )
        } else {
            format!("Too many wrong recovery codes. You can try again at {at} (in 1 minute).")
        };
        assert!(r.1.contains(&said), "{said}: {}", r.1);
        app.clock.advance(Duration::seconds(61));
        let code = if lang == "nl" { &codes[0] } else { &codes[1] };
        let r = submit(&c, &r.1, "/login/recovery", &[("code", code)]).await;
        assert_eq!(r.2.as_deref(), Some("/"), "{}", r.1);
    }
}
