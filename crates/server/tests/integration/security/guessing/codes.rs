//! The paths that check a code: how their answers read, and how a victim of each is
//! prepared (an account of its own, the attacker's browser at the code).

use super::{Answer, Ask, Right, Target, Verdict, GUESS};
use crate::kit::{code_in, csrf_of, sign_in_through_pages, Client, TestApp, PASSWORD};
use crate::security::threat_kit::{
    authorize_url, follow, fresh_client, fresh_phone, mail_after, mail_count, person_with_app,
    person_with_phone, sms_code_after, sms_count, Nodes,
};
use reqwest::Method;
use serde_json::{json, Value};

/// The answers of the API's code checks.
pub fn api_code(a: &Answer) -> Verdict {
    match (a.status, a.error().as_str()) {
        (200, _) => Verdict::Accepted,
        (400 | 401, "invalid_code") => Verdict::Wrong,
        // The last try of a mailed code, or none left: it is dead either way.
        (400, "code_expired") => Verdict::Unclear,
        (429, "too_many_attempts") => Verdict::Refused,
        _ => panic!("an unexpected answer: {} {}", a.status, a.body),
    }
}

/// The answers of the code page: the code that locks the step says so at once.
pub fn page_code(a: &Answer) -> Verdict {
    match a.status {
        302 | 303 if !a.location.starts_with("/login") => Verdict::Accepted,
        401 => Verdict::Wrong,
        429 => Verdict::Unclear,
        _ => panic!(
            "an unexpected answer: {} {} {}",
            a.status,
            a.location,
            a.body.chars().take(500).collect::<String>()
        ),
    }
}

/// Six digits (the app's codes are kept clear of the right ones elsewhere).
pub fn six_digits(i: usize) -> String {
    format!("{:06}", (i * 7_919 + 123_457) % 1_000_000)
}

fn recovery_like(i: usize) -> String {
    format!("aaaaa-{:05}", 10_000 + i)
}

fn post(path: &str, body: Value) -> Ask {
    Ask::Json(Method::POST, path.to_owned(), body)
}

/// A browser at the code step of `email`, from an address of its own.
async fn at_code_step(app: &TestApp, email: &str) -> Client {
    let c = fresh_client(app);
    let r = c.login(email, PASSWORD).await;
    assert_eq!(r.body["state"], "second_factor", "{:?}", r.body);
    c
}

/// A signed-in browser of a new account without a second factor.
async fn signed_in_without_factor(app: &TestApp, email: &str) -> Client {
    app.add_user(email).await;
    let c = fresh_client(app);
    let r = c.login(email, PASSWORD).await;
    assert_eq!(r.body["state"], "authenticated", "{:?}", r.body);
    c
}

pub async fn app_code_at_sign_in(n: &Nodes, email: String) -> Target {
    let secret = person_with_app(&n.a, &email).await;
    let c = at_code_step(&n.a, &email).await;
    Target {
        http: c.http,
        ask: post(
            "/api/v1/login/second-factor",
            json!({"method": "totp", "code": GUESS}),
        ),
        right: Right::Totp(secret),
        wrong: six_digits,
        email,
    }
}

pub async fn sms_code_at_sign_in(n: &Nodes, email: String) -> Target {
    person_with_phone(&n.a, &email, &fresh_phone()).await;
    let c = at_code_step(&n.a, &email).await;
    let before = sms_count(&n.a);
    let r = c.post("/api/v1/login/sms", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let code = sms_code_after(&n.a, before).await;
    Target {
        http: c.http,
        ask: post(
            "/api/v1/login/second-factor",
            json!({"method": "sms", "code": GUESS}),
        ),
        right: Right::Fixed(code),
        wrong: six_digits,
        email,
    }
}

pub async fn recovery_code(n: &Nodes, email: String) -> Target {
    let c = signed_in_without_factor(&n.a, &email).await;
    let r = c
        .post("/api/v1/me/factors/totp", json!({ "password": PASSWORD }))
        .await;
    let secret = r.body["secret"].as_str().expect("secret").to_owned();
    let id = r.body["id"].as_str().expect("id").to_owned();
    let r = c
        .post(
            &format!("/api/v1/me/factors/totp/{id}/confirm"),
            json!({ "code": n.a.code(&secret) }),
        )
        .await;
    let codes: Vec<String> =
        serde_json::from_value(r.body["recovery_codes"].clone()).expect("recovery codes");
    let c = at_code_step(&n.a, &email).await;
    Target {
        http: c.http,
        ask: post(
            "/api/v1/login/second-factor",
            json!({"method": "recovery_code", "code": GUESS}),
        ),
        right: Right::Fixed(codes[0].clone()),
        wrong: recovery_like,
        email,
    }
}

pub async fn app_set_up(n: &Nodes, email: String) -> Target {
    let c = signed_in_without_factor(&n.a, &email).await;
    let r = c
        .post("/api/v1/me/factors/totp", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let secret = r.body["secret"].as_str().expect("secret").to_owned();
    let id = r.body["id"].as_str().expect("id").to_owned();
    Target {
        http: c.http,
        ask: post(
            &format!("/api/v1/me/factors/totp/{id}/confirm"),
            json!({ "code": GUESS }),
        ),
        right: Right::Totp(secret),
        wrong: six_digits,
        email,
    }
}

pub async fn phone_set_up(n: &Nodes, email: String) -> Target {
    let c = signed_in_without_factor(&n.a, &email).await;
    let before = sms_count(&n.a);
    let body = json!({ "phone": fresh_phone(), "password": PASSWORD });
    let r = c.post("/api/v1/me/factors/sms", body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let code = sms_code_after(&n.a, before).await;
    Target {
        http: c.http,
        ask: post(
            &format!("/api/v1/me/factors/sms/{id}/confirm"),
            json!({ "code": GUESS }),
        ),
        right: Right::Fixed(code),
        wrong: six_digits,
        email,
    }
}

pub async fn secure_mail_code(n: &Nodes, email: String) -> Target {
    n.a.add_user(&email).await;
    let c = fresh_client(&n.a);
    let before = mail_count(&n.a, "email-code");
    let r = c
        .post(
            "/api/v1/secure",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.body["state"], "email_code_sent", "{:?}", r.body);
    let code = code_in(&mail_after(&n.a, "email-code", before).await);
    Target {
        http: c.http,
        ask: post("/api/v1/secure/code", json!({ "code": GUESS })),
        right: Right::Fixed(code),
        wrong: six_digits,
        email,
    }
}

pub async fn console_step_up(n: &Nodes, email: String) -> Target {
    n.a.add_admin(&email).await;
    let c = fresh_client(&n.a);
    let (_, secret) = c.enroll(&n.a, &email).await;
    n.a.next_step();
    Target {
        http: c.http,
        ask: post("/api/v1/admin/step-up", json!({ "code": GUESS })),
        right: Right::Totp(secret),
        wrong: six_digits,
        email,
    }
}

/// A browser signed in with password and code, sent back to sign in by the portal
/// (`extra`: `&prompt=login`, `&max_age=0`): the sign-in page it lands on.
pub async fn asked_to_sign_in_again(
    app: &TestApp,
    email: &str,
    extra: &str,
) -> (Client, String, String) {
    let secret = person_with_app(app, email).await;
    let c = fresh_client(app);
    sign_in_through_pages(&c, app, "/login", (email, PASSWORD), &secret).await;
    app.next_step();
    let url = authorize_url(app, "openid", extra);
    match follow(app, &c, &url).await {
        Ok(page) => {
            assert!(page.contains("name=\"password\""), "{page}");
            (c, secret, page)
        }
        Err(to) => panic!("not asked to sign in again: {to}"),
    }
}

pub async fn oidc_reauth_code(n: &Nodes, email: String) -> Target {
    let (c, secret, page) = asked_to_sign_in_again(&n.a, &email, "&max_age=0").await;
    let mut fields = crate::security::threat_kit::form_fields(&page, "password");
    set(&mut fields, "password", PASSWORD);
    let r = c
        .http
        .post(format!("{}/login", n.a.url))
        .form(&fields)
        .send()
        .await
        .expect("post");
    assert_eq!(crate::kit::location(&r), "/login/code", "the code is asked");
    let (_, page) = crate::kit::page(&c, "/login/code").await;
    assert!(!csrf_of(&page).is_empty());
    let mut fields = crate::security::threat_kit::form_fields(&page, "code");
    set(&mut fields, "code", GUESS);
    Target {
        http: c.http,
        ask: Ask::Form("/login/code".into(), fields),
        right: Right::Totp(secret),
        wrong: six_digits,
        email,
    }
}

/// Sets the field `name` (adding it when the form has none).
pub fn set(fields: &mut Vec<(String, String)>, name: &str, value: &str) {
    fields.retain(|(k, _)| k != name);
    fields.push((name.to_owned(), value.to_owned()));
}
