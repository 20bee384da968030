//! Support: finding accounts (shared mailboxes flagged), resetting two-step
//! verification for someone who lost their phone, and admins giving a shared
//! mailbox a personal address — over the API, the pages and the command line.

use crate::kit::commands::{output, tweestap_on, Output};
use crate::kit::{csrf_of, nth_raw_mail_in, text_part, Backend, Client, TestApp, PASSWORD};
use serde_json::{json, Value};
use tweestap_domain::account::Role;

mod confirm;
mod roles;

const REASON: &str = "New phone; identity checked by calling back";

async fn add(app: &TestApp, email: &str, name: &str, role: Role) {
    app.engine()
        .add_account(email, name, role, PASSWORD)
        .await
        .expect("account");
}

/// A client signed in with a password (the account has no factor).
async fn signed_in(app: &TestApp, email: &str) -> Client {
    let c = app.client();
    let r = c.login(email, PASSWORD).await;
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (200, Some("authenticated")),
        "{email}: {:?}",
        r.body
    );
    c
}

async fn account_id(c: &Client, email: &str) -> String {
    let r = c.get(&format!("/api/v1/support/accounts?q={email}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["email"] == email)
        .unwrap_or_else(|| panic!("{email} not in {:?}", r.body))["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

fn emails(body: &Value) -> Vec<&str> {
    body["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| a["email"].as_str().expect("email"))
        .collect()
}

/// GET a page: status, `Location` and body.
async fn page(c: &Client, path: &str) -> (u16, String, String) {
    let r = c
        .http
        .get(format!("{}{path}", c.base))
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, location, r.text().await.expect("body"))
}

/// POSTs a form with the CSRF token of the page at `from`: status, `Location`, body.
async fn submit(
    c: &Client,
    from: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> (u16, String, String) {
    let (_, _, html) = page(c, from).await;
    let csrf = csrf_of(&html);
    let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
    form.extend_from_slice(fields);
    let r = c
        .http
        .post(format!("{}{action}", c.base))
        .form(&form)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, location, r.text().await.expect("body"))
}

async fn nth_mail(app: &TestApp, kind: &str, n: usize) -> (String, String) {
    use mailparse::MailHeaderMap;
    let raw = nth_raw_mail_in(app.dir.path(), kind, n).await;
    let m = mailparse::parse_mail(&raw).expect("RFC 5322");
    let to = m.headers.get_first_value("To").unwrap_or_default();
    (to, text_part(&m))
}

/// `(event, e-mail, detail)` of the audit log, oldest first.
async fn audit(app: &TestApp) -> Vec<(String, String, String)> {
    app.engine()
        .audit_log(500, None)
        .await
        .expect("audit")
        .into_iter()
        .rev()
        .map(|r| {
            (
                r.event,
                r.email.unwrap_or_default(),
                r.detail.unwrap_or_default(),
            )
        })
        .collect()
}

async fn support_resets_a_lost_phone(backend: Backend) {
    let app = TestApp::start(backend).await;
    add(&app, "an.peeters@example.be", "An Peeters", Role::User).await;
    add(&app, "info@example.be", "Onthaal", Role::User).await;
    add(&app, "sam@example.be", "Sam Helpdesk", Role::Support).await;
    // An's app is set up and signed in (session A).
    let session_a = app.client();
    let (_, secret) = session_a.enroll(&app, "an.peeters@example.be").await;
    assert_eq!(session_a.get("/api/v1/me").await.status, 200);

    let sam = signed_in(&app, "sam@example.be").await;
    // By part of the name, and by part of the address in another case.
    for q in ["peet", "AN.PEETERS@EXAM"] {
        let r = sam.get(&format!("/api/v1/support/accounts?q={q}")).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(emails(&r.body), ["an.peeters@example.be"], "{q}");
        let a = &r.body["accounts"][0];
        assert_eq!(a["name"], "An Peeters");
        assert_eq!(a["role"], "user");
        assert_eq!(a["two_factor"], true);
        assert_eq!(a["shared_mailbox"], false);
        assert_eq!(a["manageable"], true);
    }
    let shared = sam.get("/api/v1/support/accounts?q=onthaal").await;
    assert_eq!(emails(&shared.body), ["info@example.be"]);
    assert_eq!(shared.body["accounts"][0]["shared_mailbox"], true);
    assert_eq!(shared.body["accounts"][0]["two_factor"], false);
    let all = sam.get("/api/v1/support/accounts").await;
    assert_eq!(emails(&all.body).len(), 3, "no query lists everyone");

    // The same on the pages, without JavaScript.
    let (s, _, html) = page(&sam, "/support?q=Peeters").await;
    assert_eq!(s, 200);
    assert!(html.contains("<label for=\"q\">Zoek op e-mailadres of naam</label>"));
    assert!(html.contains("an.peeters@example.be") && !html.contains("info@example.be"));
    assert!(
        html.contains("href=\"/support\""),
        "the header links to support"
    );
    let id = account_id(&sam, "an.peeters@example.be").await;
    assert!(html.contains(&format!("href=\"/support/accounts/{id}\"")));
    let (_, _, html) = page(&sam, "/support?q=info").await;
    assert!(html.contains("gedeeld adres"), "shared mailbox flagged");
    let en = app.client_in(Some("en"));
    assert_eq!(en.login("sam@example.be", PASSWORD).await.status, 200);
    let (_, _, html) = page(&en, "/support?q=info").await;
    assert!(html.contains("shared address") && html.contains("lang=\"en\""));

    let account_path = format!("/support/accounts/{id}");
    let (s, _, html) = page(&sam, &account_path).await;
    assert_eq!(s, 200);
    assert!(html.contains("Tweestapsverificatie opnieuw instellen"));
    assert!(html.contains(&format!("action=\"/support/accounts/{id}/reset-2fa\"")));
    assert!(
        !html.contains("/email\""),
        "support cannot change addresses"
    );

    // The reset, with a reason, on the confirmation step (see `confirm`).
    let (s, _, html) = submit(
        &sam,
        &account_path,
        &format!("{account_path}/reset-2fa"),
        &[("reason", REASON)],
    )
    .await;
    assert_eq!(s, 200, "first the confirmation");
    assert!(html.contains("name=\"confirm\" value=\"yes\""));
    let (s, location, _) = submit(
        &sam,
        &account_path,
        &format!("{account_path}/reset-2fa"),
        &[("reason", REASON), ("confirm", "yes")],
    )
    .await;
    assert_eq!(
        (s, location.as_str()),
        (303, format!("{account_path}?done=reset").as_str())
    );
    let (_, _, html) = page(&sam, &format!("{account_path}?done=reset")).await;
    assert!(html.contains("role=\"status\""), "{html}");
    assert!(html.contains("Tweestapsverificatie is opnieuw ingesteld"));
    let after = sam.get(&format!("/api/v1/support/accounts/{id}")).await;
    assert_eq!(after.body["two_factor"], false);

    // Session A is over, and the old app no longer gets anyone in.
    assert_eq!(session_a.get("/api/v1/me").await.status, 401);
    let fresh = app.client();
    let r = fresh.login("an.peeters@example.be", PASSWORD).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_ne!(r.body["state"], "second_factor", "no code step any more");
    let code = fresh
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": app.code(&secret) }),
        )
        .await;
    assert_ne!(code.status, 200, "the old code is void: {:?}", code.body);

    // An got a mail with a new link, in An's own language.
    let (to, text) = nth_mail(&app, "two-factor-reset", 1).await;
    assert!(to.contains("an.peeters@example.be"), "{to}");
    assert!(text.contains(&format!("{}/enroll/", app.url)), "{text}");
    assert!(text.contains("opnieuw ingesteld"), "{text}");

    // The audit log says who and why.
    let log = audit(&app).await;
    let (_, email, detail) = log
        .iter()
        .find(|(e, _, _)| e == "two_factor_reset")
        .expect("two_factor_reset in the audit log");
    assert_eq!(email, "an.peeters@example.be");
    assert!(
        detail.contains("sam@example.be") && detail.contains(REASON),
        "{detail}"
    );
}

crate::on_both_backends!(support_resets_a_lost_phone,);
