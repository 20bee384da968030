//! The other secrets tweestap issues, used in the same run: a passkey (its
//! challenges and what the authenticator answers), a remembered browser's cookie,
//! an invitation's link and the QR link mailed to set up a factor (valid five
//! days), both opened as a browser does (the token in the address), a CSRF cookie
//! and its token, and a sign-in waiting for its code.

use super::{Used, NEW_PASSWORD};
use crate::kit::passkey::SoftKey;
use crate::kit::{csrf_of, nth_mail, Client, TestApp};
use serde_json::{json, Value};

const INVITED_PASSWORD: &str = "zeilboot over het stille meer 2027";

/// The value of cookie `name` an answer sets.
fn cookie(r: &reqwest::Response, name: &str) -> String {
    let prefix = format!("{name}=");
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(prefix.as_str()))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_owned()
}

/// A POST with JSON and the given cookies, without a cookie store.
async fn post(app: &TestApp, path: &str, cookies: &str, body: Value) -> reqwest::Response {
    let mut r = reqwest::Client::new()
        .post(format!("{}{path}", app.url))
        .json(&body);
    if !cookies.is_empty() {
        r = r.header("cookie", cookies);
    }
    r.send().await.expect("request")
}

/// The token of the link after `prefix` in a mail.
fn link(mail: &str, prefix: &str) -> String {
    let at = mail.find(prefix).expect("a link") + prefix.len();
    mail[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// A page opened as a browser opens a mailed link.
async fn open(app: &TestApp, path: &str) -> u16 {
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{}{path}", app.url))
        .send()
        .await
        .expect("page");
    r.status().as_u16()
}

/// A passkey set up in the signed-in browser `c`, then a sign-in with it alone.
pub async fn passkey(app: &TestApp, used: &mut Used, c: &Client) {
    let body = json!({"password": NEW_PASSWORD, "name": "laptop"});
    let r = c.post("/api/v1/me/factors/passkey", body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let options = &r.body["options"];
    used.secret(
        "the passkey's registration challenge",
        options["publicKey"]["challenge"]
            .as_str()
            .expect("challenge"),
    );
    let mut key = SoftKey::for_app(&app.url);
    let credential = key.register(options);
    used.secret(
        "the passkey's credential id",
        credential["id"].as_str().expect("id"),
    );
    for part in ["clientDataJSON", "attestationObject"] {
        let v = credential["response"][part].as_str().expect(part);
        used.secret(&format!("the passkey's {part} at set-up"), v);
    }
    let id = r.body["id"].as_str().expect("id");
    let path = format!("/api/v1/me/factors/passkey/{id}/confirm");
    let r = c.post(&path, json!({"credential": credential})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let d = app.client();
    let r = d.post("/api/v1/login/passkey/options", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let options = &r.body["options"];
    used.secret(
        "the passkey's sign-in challenge",
        options["publicKey"]["challenge"]
            .as_str()
            .expect("challenge"),
    );
    let answer = key.assert(options);
    for part in ["clientDataJSON", "authenticatorData", "signature"] {
        let v = answer["response"][part].as_str().expect(part);
        used.secret(&format!("the passkey's {part} at sign-in"), v);
    }
    let r = d
        .post("/api/v1/login/passkey", json!({"credential": answer}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// A browser remembered at the code step, then signing in with its cookie alone
/// (and the password); the sessions of both sign-ins.
pub async fn remembered_browser(app: &TestApp, used: &mut Used, secret: &str) {
    let login = json!({"email": "an@example.be", "password": NEW_PASSWORD});
    let r = post(app, "/api/v1/login", "", login.clone()).await;
    assert_eq!(r.status(), 200);
    let pending = cookie(&r, "tweestap_session");
    used.secret("a session waiting for its code", &pending);
    app.next_step();
    let code = app.code(secret);
    used.code("an app code", &code);
    let body = json!({"method": "totp", "code": code, "remember_device": true});
    let cookies = format!("tweestap_session={pending}");
    let r = post(app, "/api/v1/login/second-factor", &cookies, body).await;
    assert_eq!(r.status(), 200);
    let device = cookie(&r, "tweestap_device");
    used.secret("a remembered browser's cookie", &device);
    used.secret("a session token", &cookie(&r, "tweestap_session"));
    let cookies = format!("tweestap_device={device}");
    let r = post(app, "/api/v1/login", &cookies, login).await;
    let session = cookie(&r, "tweestap_session");
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body["state"], "authenticated",
        "the code is skipped: {body}"
    );
    used.secret("a session token", &session);
}

/// The QR link mailed to set up a factor elsewhere, asked for in the signed-in
/// browser `c` of someone without a second factor, and opened as a browser does.
async fn qr_link(app: &TestApp, used: &mut Used, c: &Client, password: &str) {
    let r = c
        .post("/api/v1/me/enrollment-link", json!({"password": password}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let mail = nth_mail(app, "enrollment-link", 1).await;
    let token = link(&mail, "/enroll/");
    used.secret("the QR link's token", &token);
    let status = open(app, &format!("/enroll/{token}")).await;
    assert_eq!(status, 200, "the QR page");
}

/// A CSRF cookie and its token, posted with a form.
pub async fn csrf(app: &TestApp, used: &mut Used) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = http
        .get(format!("{}/password/forgot", app.url))
        .send()
        .await
        .expect("form");
    let value = cookie(&r, "tweestap_csrf");
    let token = csrf_of(&r.text().await.expect("page"));
    used.secret("a CSRF cookie", &value);
    used.secret("a CSRF token", &token);
    let r = http
        .post(format!("{}/password/forgot", app.url))
        .header("cookie", format!("tweestap_csrf={value}"))
        .form(&[("csrf", token.as_str()), ("email", "niemand@example.be")])
        .send()
        .await
        .expect("post");
    assert!(r.status().as_u16() < 400, "{}", r.status());
}

/// An administrator invites a new person; the link is opened and a password
/// chosen with it.
pub async fn invitation(app: &TestApp, used: &mut Used, admin: &Client) {
    used.secret("the invited person's password", INVITED_PASSWORD);
    let r = admin
        .post(
            "/api/v1/admin/accounts",
            json!({"email": "uitgenodigd@example.be", "name": "Ines", "invite": true}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let mail = nth_mail(app, "invite", 1).await;
    let token = link(&mail, "/password/reset/");
    used.secret("the invitation's token", &token);
    assert!(open(app, &format!("/password/reset/{token}")).await < 400);
    let body = json!({"token": token, "password": INVITED_PASSWORD});
    let r = app.client().post("/api/v1/password/reset", body).await;
    assert!(r.status < 300, "{:?}", r.body);
    // Signed in with it (no second factor yet), the QR link to set one up.
    let c = app.client();
    let r = c.login("uitgenodigd@example.be", INVITED_PASSWORD).await;
    assert_eq!(r.body["state"], "authenticated", "{:?}", r.body);
    qr_link(app, used, &c, INVITED_PASSWORD).await;
}
