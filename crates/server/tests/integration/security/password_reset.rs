//! A password reset that bypasses the second factor: after a new password chosen
//! through the mailed link, signing in still asks for the code (on the pages and
//! the API, also through "secure your account now", also on a browser that was
//! remembered before), and the sessions and remembered devices of before the reset
//! are dead — signed in, half signed in, and the browser that reset it.

use super::threat_kit::{
    form_fields, fresh_client, link_token, mail_after, mail_count, person_with_app,
};
use crate::kit::{page, post_form, Backend, Client, TestApp, PASSWORD};
use serde_json::json;

crate::on_both_backends!(password_reset_keeps_the_second_factor);

const AN: &str = "an@example.be";
const NEW: &str = "een heel nieuw wachtwoord";

/// Password and code, remembering the browser when asked; then signed in.
async fn signed_in(app: &TestApp, c: &Client, secret: &str, remember: bool) {
    assert_eq!(c.login(AN, PASSWORD).await.body["state"], "second_factor");
    app.next_step();
    let body = json!({"method": "totp", "code": app.code(secret), "remember_device": remember});
    let r = c.post("/api/v1/login/second-factor", body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// "Forgot your password?" on the pages, the mailed link, a new password: as a
/// person (or whoever reads the mailbox) does it, in browser `c`.
async fn reset_by_mail(app: &TestApp, c: &Client) {
    let before = mail_count(app, "password-reset");
    let (_, html) = page(c, "/password/forgot").await;
    let mut form = form_fields(&html, "email");
    form.retain(|(k, _)| k != "email");
    form.push(("email".into(), AN.into()));
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = post_form(c, "/password/forgot", &fields).await;
    assert!(r.status().as_u16() < 400, "{}", r.status());
    let token = link_token(
        &mail_after(app, "password-reset", before).await,
        "/password/reset/",
    );
    let path = format!("/password/reset/{token}");
    let (status, html) = page(c, &path).await;
    assert_eq!(status, 200, "{html}");
    let mut form = form_fields(&html, "password");
    form.retain(|(k, _)| k != "password" && k != "password2");
    form.extend([
        ("password".into(), NEW.into()),
        ("password2".into(), NEW.into()),
    ]);
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = post_form(c, &path, &fields).await;
    assert_eq!(r.status().as_u16(), 200, "the new password is taken");
}

async fn password_reset_keeps_the_second_factor(backend: Backend) {
    let app = TestApp::start(backend).await;
    let secret = person_with_app(&app, AN).await;
    // Before the reset: a browser signed in, one remembered (and signed out), one
    // half signed in (password given, code due), and the browser that will reset
    // the password, signed in too.
    let signed = fresh_client(&app);
    signed_in(&app, &signed, &secret, false).await;
    let remembered = fresh_client(&app);
    signed_in(&app, &remembered, &secret, true).await;
    assert_eq!(
        remembered.post("/api/v1/logout", json!({})).await.status,
        200
    );
    assert_eq!(
        remembered.login(AN, PASSWORD).await.body["state"],
        "authenticated",
        "remembered before the reset"
    );
    assert_eq!(
        remembered.post("/api/v1/logout", json!({})).await.status,
        200
    );
    let half = fresh_client(&app);
    let r = half.login(AN, PASSWORD).await;
    assert_eq!(r.body["state"], "second_factor");
    let methods = r.body["methods"].clone();
    let resetter = fresh_client(&app);
    signed_in(&app, &resetter, &secret, false).await;
    let factors = signed.get("/api/v1/me").await.body["factors"].clone();

    reset_by_mail(&app, &resetter).await;

    // Every session of before is dead, also the resetting browser's own.
    for (who, c) in [("signed in", &signed), ("resetter", &resetter)] {
        assert_eq!(c.get("/api/v1/me").await.status, 401, "{who}");
    }
    app.next_step();
    let code = json!({"method": "totp", "code": app.code(&secret)});
    let r = half.post("/api/v1/login/second-factor", code).await;
    assert_eq!(r.status, 401, "the half-finished sign-in: {:?}", r.body);
    assert_eq!(r.body["error"], "unauthenticated", "{:?}", r.body);

    // The old password is gone; the new one still needs the code, everywhere.
    assert_eq!(fresh_client(&app).login(AN, PASSWORD).await.status, 401);
    let r = remembered.login(AN, NEW).await;
    assert_eq!(
        r.body["state"], "second_factor",
        "the device lived: {:?}",
        r.body
    );
    assert_eq!(r.body["methods"], methods, "{:?}", r.body);
    let r = fresh_client(&app)
        .post("/api/v1/secure", json!({"email": AN, "password": NEW}))
        .await;
    assert_eq!(r.body["state"], "second_factor", "secure: {:?}", r.body);
    let c = fresh_client(&app);
    let (_, html) = page(&c, "/login").await;
    let mut form = form_fields(&html, "password");
    form.retain(|(k, _)| k != "email" && k != "password");
    form.extend([("email".into(), AN.into()), ("password".into(), NEW.into())]);
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = post_form(&c, "/login", &fields).await;
    assert_eq!(
        crate::kit::location(&r),
        "/login/code",
        "the pages ask the code"
    );
    assert_eq!(c.get("/api/v1/me").await.status, 401, "not signed in yet");
    let r = c.get("/").await;
    assert_ne!(
        r.status, 200,
        "half signed in reaches nothing: {:?}",
        r.body
    );

    // The same app, and its code, sign in; nothing of the factors changed.
    app.next_step();
    let body = json!({"method": "totp", "code": app.code(&secret)});
    let r = remembered.post("/api/v1/login/second-factor", body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let ids = |f: &serde_json::Value| -> Vec<String> {
        let all = f.as_array().cloned().unwrap_or_default();
        all.iter()
            .map(|x| format!("{} {}", x["id"], x["kind"]))
            .collect()
    };
    let now = remembered.get("/api/v1/me").await.body["factors"].clone();
    assert_eq!(ids(&now), ids(&factors), "the factors of before the reset");
    let devices = remembered.get("/api/v1/me/devices").await.body["devices"].clone();
    assert_eq!(devices, json!([]), "no device of before the reset is left");
}
