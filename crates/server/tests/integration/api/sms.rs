//! SMS codes end to end: a phone set up and used at sign-in through real HTTP
//! gateways (a stub on loopback), the pumping limits, and gateway failures.

use crate::kit::sms::{sms_code_in, sms_files_in};
use crate::kit::{page, submit, Backend, Client, Reply, TestApp, PASSWORD};
use serde_json::{json, Value};
use tweestap::config::sms::{GatewayKind, Secret};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The codes the stub gateway received, oldest first, with the number they went to.
async fn sent(gateway: &MockServer) -> Vec<(String, String)> {
    gateway
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .map(|b| {
            let text = b["text"].as_str().unwrap_or_default().to_owned();
            let code = text
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            (b["to"].as_str().unwrap_or_default().to_owned(), code)
        })
        .collect()
}

async fn app_with_gateway(backend: Backend, gateway: &MockServer) -> TestApp {
    let url = format!("{}/send", gateway.uri());
    TestApp::start_configured(backend, move |c| {
        c.sms.gateway = GatewayKind::Http;
        c.sms.http.url = url.clone();
        c.sms.http.header_name = "Authorization".into();
        c.sms.http.header_value = Secret::new("Bearer test-key");
        c.sms.timeout_seconds = 0.5;
        c.sms.retry_backoff_ms = 10;
    })
    .await
}

/// Starts setting up `phone` as a factor of the signed-in session `c`.
async fn begin_phone(c: &Client, phone: &str) -> Reply {
    let body = json!({ "phone": phone, "password": PASSWORD });
    c.post("/api/v1/me/factors/sms", body).await
}

/// Confirms the phone factor `id` with `code`.
async fn confirm_phone(c: &Client, id: &str, code: &str) -> Reply {
    let confirm = format!("/api/v1/me/factors/sms/{id}/confirm");
    c.post(&confirm, json!({ "code": code })).await
}

/// The code step of a sign-in, with `method`.
async fn second_factor(c: &Client, method: &str, code: &str) -> Reply {
    let body = json!({ "method": method, "code": code });
    c.post("/api/v1/login/second-factor", body).await
}

/// A refusal: the status and the API's error code.
fn assert_refused(r: &Reply, status: u16, error: &str) {
    let got = (r.status, r.body["error"].as_str());
    assert_eq!(got, (status, Some(error)), "{:?}", r.body);
}

/// The audit trail of an@example.be, as (event, detail).
async fn audit(app: &TestApp) -> Vec<(String, Option<String>)> {
    let log = app.engine().audit_log(500, Some("an@example.be")).await;
    let log = log.expect("audit");
    log.into_iter().map(|r| (r.event, r.detail)).collect()
}

/// Sets up a phone from a signed-in session; returns the factor id.
async fn set_up_phone(c: &Client, gateway: &MockServer, phone: &str) -> String {
    let r = begin_phone(c, phone).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["state"], "code_sent");
    let id = r.body["id"].as_str().expect("id").to_owned();
    let code = sent(gateway).await.last().expect("an SMS").1.clone();
    let r = confirm_phone(c, &id, &code).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    id
}

async fn phone_set_up_and_used_to_sign_in(backend: Backend) {
    let gateway = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/send"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": "prov-1" })))
        .mount(&gateway)
        .await;
    let app = app_with_gateway(backend, &gateway).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    assert_eq!(c.login("an@example.be", PASSWORD).await.status, 200);

    // Validation: not a number, a fixed line, a country outside the allow-list.
    for (phone, code, status) in [
        ("hello", "phone_not_a_number", 400),
        ("02 511 11 11", "phone_not_mobile", 400),
        ("+33 6 12 34 56 78", "sms_country_not_allowed", 400),
    ] {
        let r = begin_phone(&c, phone).await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (status, Some(code)),
            "{phone}"
        );
    }
    assert!(
        sent(&gateway).await.is_empty(),
        "nothing sent for bad numbers"
    );

    // Set up: the number normalised to E.164 from the default region BE.
    let r = begin_phone(&c, "0470 12 34 56").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["to"], "+32 4•• •• •• 56");
    let id = r.body["id"].as_str().expect("id").to_owned();
    let got = sent(&gateway).await;
    assert_eq!(got[0].0, "+32470123456");
    let req = &gateway.received_requests().await.expect("requests")[0];
    assert_eq!(
        req.headers
            .get("authorization")
            .map(|v| v.to_str().unwrap_or_default()),
        Some("Bearer test-key")
    );
    let wrong = if got[0].1 == "000000" {
        "111111"
    } else {
        "000000"
    };
    let r = confirm_phone(&c, &id, wrong).await;
    assert_eq!(r.body["error"], "invalid_code");
    let r = confirm_phone(&c, &id, &got[0].1).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["kind"], "sms");
    assert_eq!(r.body["recovery_codes"].as_array().map(Vec::len), Some(10));

    // Sign in: the code page offers SMS; the code arrives and works once.
    let d = app.client();
    let r = d.login("an@example.be", PASSWORD).await;
    assert_eq!(
        (r.body["state"].as_str(), &r.body["methods"]),
        (Some("second_factor"), &json!(["sms", "recovery_code"]))
    );
    let r = d.post("/api/v1/login/sms", json!({})).await;
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (200, Some("code_sent")),
        "{:?}",
        r.body
    );
    let code = sent(&gateway).await.last().expect("sms").1.clone();
    let r = second_factor(&d, "sms", &code).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Only the live code of that sign-in counts: the same code in a new one fails.
    let e = app.client();
    assert_eq!(
        e.login("an@example.be", PASSWORD).await.body["state"],
        "second_factor"
    );
    let r = second_factor(&e, "sms", &code).await;
    assert_eq!(r.status, 401);

    // "Send again": a new code replaces the old one; three per sign-in.
    assert_eq!(e.post("/api/v1/login/sms", json!({})).await.status, 200);
    let first = sent(&gateway).await.last().expect("sms").1.clone();
    assert_eq!(e.post("/api/v1/login/sms", json!({})).await.status, 200);
    let second = sent(&gateway).await.last().expect("sms").1.clone();
    assert_eq!(e.post("/api/v1/login/sms", json!({})).await.status, 200);
    let r = e.post("/api/v1/login/sms", json!({})).await;
    assert_refused(&r, 429, "too_many_requests");
    let third = sent(&gateway).await.last().expect("sms").1.clone();
    if first != third && second != third {
        let r = second_factor(&e, "sms", &first).await;
        assert_eq!(r.status, 401, "an older code no longer works");
    }
    let r = second_factor(&e, "sms", &third).await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let events = audit(&app).await;
    let sms_sent: Vec<&(String, Option<String>)> =
        events.iter().filter(|e| e.0 == "sms_sent").collect();
    assert_eq!(sms_sent.len(), 5, "{events:?}");
    assert!(sms_sent.iter().all(|e| {
        let d = e.1.as_deref().unwrap_or_default();
        d.contains("+32 4•• •• •• 56")
            && d.contains("provider_id=prov-1")
            && !d.contains("+32470123456")
    }));
    assert!(
        events.iter().any(|e| e.0 == "sms_refused"),
        "the country refusal is audited"
    );
}

async fn pumping_limits_refuse_with_clear_codes(backend: Backend) {
    let gateway = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&gateway)
        .await;
    let url = format!("{}/send", gateway.uri());
    let app = TestApp::start_configured(backend, move |c| {
        c.sms.gateway = GatewayKind::Http;
        c.sms.http.url = url.clone();
        c.sms.per_account_per_hour = 4;
    })
    .await;
    app.add_user("an@example.be").await;
    let c = app.client();
    assert_eq!(c.login("an@example.be", PASSWORD).await.status, 200);
    set_up_phone(&c, &gateway, "+31 6 12345678").await;
    // One sent for the set-up; three more sign-in SMS reach the hourly limit of 4.
    for _ in 0..3 {
        let d = app.client();
        assert_eq!(
            d.login("an@example.be", PASSWORD).await.body["state"],
            "second_factor"
        );
        assert_eq!(d.post("/api/v1/login/sms", json!({})).await.status, 200);
    }
    let d = app.client();
    d.login("an@example.be", PASSWORD).await;
    let r = d.post("/api/v1/login/sms", json!({})).await;
    assert_refused(&r, 429, "sms_rate_limited");
    assert_eq!(sent(&gateway).await.len(), 4, "a refused SMS is not sent");
    // An hour later it is allowed again.
    app.clock.advance(chrono::Duration::minutes(61));
    let d = app.client();
    d.login("an@example.be", PASSWORD).await;
    assert_eq!(d.post("/api/v1/login/sms", json!({})).await.status, 200);
    let events = audit(&app).await;
    let refused = events.iter().filter(|e| e.0 == "sms_refused").count();
    assert_eq!(refused, 1);
}

async fn gateway_failures_are_clear_and_other_methods_remain(backend: Backend) {
    let gateway = MockServer::start().await;
    let app = app_with_gateway(backend, &gateway).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    // The app first, then a phone as a fallback.
    let (_, secret) = c.enroll(&app, "an@example.be").await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .up_to_n_times(1)
        .mount(&gateway)
        .await;
    set_up_phone(&c, &gateway, "0470 12 34 56").await;
    // The gateway now answers 500 every time: retried, then a clear error.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&gateway)
        .await;
    let d = app.client();
    let r = d.login("an@example.be", PASSWORD).await;
    assert_eq!(r.body["methods"], json!(["totp", "sms", "recovery_code"]));
    let before = gateway.received_requests().await.expect("requests").len();
    let r = d.post("/api/v1/login/sms", json!({})).await;
    assert_refused(&r, 502, "sms_unavailable");
    let after = gateway.received_requests().await.expect("requests").len();
    assert_eq!(after - before, 3, "one try and two retries on 500");
    // The app still signs in.
    app.next_step();
    let r = second_factor(&d, "totp", &app.code(&secret)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(audit(&app).await.iter().any(|e| e.0 == "sms_failed"));
}

/// The newest code in the default SMS outbox, which holds `n` SMS.
fn outbox_code(app: &TestApp, n: usize) -> String {
    let files = sms_files_in(app.dir.path());
    assert_eq!(files.len(), n, "{n} SMS in the outbox");
    let text = std::fs::read_to_string(files.last().expect("an SMS")).expect("read");
    assert!(text.contains("To: +32470123456"), "{text}");
    sms_code_in(&text)
}

/// The pages with the embedded default gateway (the SMS outbox): the wizard's
/// choice of SMS, sign-in by SMS, and the dev page.
async fn pages_set_up_sms_in_the_wizard_and_sign_in_by_sms(backend: Backend) {
    let app = TestApp::start_configured(backend, |c| {
        c.policy.two_factor = tweestap_domain::policy::TwoFactorMode::Required;
    })
    .await;
    app.add_user("an@example.be").await;
    let c = app.client();
    assert_eq!(
        c.login("an@example.be", PASSWORD).await.body["state"],
        "enrollment_required"
    );
    let (_, choose) = page(&c, "/account/2fa/enable").await;
    assert!(
        choose.contains("value=\"sms\"") && choose.contains("id=\"phone\""),
        "{choose}"
    );
    let r = submit(
        &c,
        &choose,
        "/account/2fa/enable",
        &[("method", "sms"), ("phone", "02 511 11 11")],
    )
    .await;
    assert_eq!(r.0, 400);
    assert!(r.1.contains("geen gsm-nummer"), "{}", r.1);
    let r = submit(
        &c,
        &choose,
        "/account/2fa/enable",
        &[("method", "sms"), ("phone", "0470 12 34 56")],
    )
    .await;
    assert_eq!(r.0, 303, "{}", r.1);
    let setup = r.2.expect("to the code page");
    let (_, code_page) = page(&c, &setup).await;
    assert!(code_page.contains("+32 4•• •• •• 56"), "{code_page}");
    let code = outbox_code(&app, 1);
    let r = submit(&c, &code_page, &setup, &[("code", &code)]).await;
    assert_eq!(r.0, 200);
    assert!(r.1.contains("Je herstelcodes"), "{}", r.1);

    // Sign in by SMS through the pages.
    let d = app.client();
    let (_, login) = page(&d, "/login").await;
    let r = submit(
        &d,
        &login,
        "/login",
        &[("email", "an@example.be"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(r.2.as_deref(), Some("/login/code"));
    // SMS is the only method: the code step sends the first SMS by itself.
    let (_, code_step) = page(&d, "/login/code").await;
    assert!(
        code_step.contains("We stuurden een code") && code_step.contains("Stuur opnieuw"),
        "{code_step}"
    );
    outbox_code(&app, 2);
    let r = submit(&d, &code_step, "/login/sms", &[]).await;
    assert_eq!(r.0, 200);
    assert!(
        r.1.contains("We stuurden een code") && r.1.contains("Stuur opnieuw"),
        "{}",
        r.1
    );
    let code = outbox_code(&app, 3);
    let r = submit(&d, &r.1, "/login/code", &[("code", &code)]).await;
    assert_eq!(r.2.as_deref(), Some("/"), "{}", r.1);

    // The dev page shows the SMS to loopback clients.
    let (status, dev) = page(&d, "/dev/sms-outbox").await;
    assert_eq!(status, 200);
    assert!(dev.contains("+32470123456"), "{dev}");
}

/// The Twilio-compatible gateway, and the per-address limit across accounts.
async fn twilio_gateway_and_the_per_address_limit(backend: Backend) {
    let gateway = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/2010-04-01/Accounts/AC123/Messages.json"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "sid": "SM42" })))
        .mount(&gateway)
        .await;
    let base = gateway.uri();
    let app = TestApp::start_configured(backend, move |c| {
        c.sms.gateway = GatewayKind::Twilio;
        c.sms.twilio.base_url = base.clone();
        c.sms.twilio.account_sid = "AC123".into();
        c.sms.twilio.auth_token = Secret::new("tok");
        c.sms.twilio.from = "+3225550100".into();
        c.sms.per_ip_per_hour = 3;
    })
    .await;
    let twilio_code = |r: &wiremock::Request| -> (String, String) {
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(&r.body).into_owned().collect();
        let code = form["Body"]
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        (form["To"].clone(), code)
    };
    app.add_user("an@example.be").await;
    app.add_user("bo@example.be").await;
    let c = app.client();
    assert_eq!(c.login("an@example.be", PASSWORD).await.status, 200);
    let r = begin_phone(&c, "+31 6 12345678").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let reqs = gateway.received_requests().await.expect("requests");
    let auth = reqs[0]
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(auth.starts_with("Basic "), "{auth}");
    let (to, code) = twilio_code(&reqs[0]);
    assert_eq!(to, "+31612345678");
    let r = confirm_phone(&c, &id, &code).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(audit(&app).await.iter().any(|e| e.0 == "sms_sent"
        && e.1
            .as_deref()
            .unwrap_or_default()
            .contains("provider_id=SM42")));

    // A second account from the same address: the per-address limit (3) counts both.
    let b = app.client();
    assert_eq!(b.login("bo@example.be", PASSWORD).await.status, 200);
    let r = begin_phone(&b, "0470 12 34 56").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let bo_factor = r.body["id"].as_str().expect("id").to_owned();
    let r = b
        .post(
            &format!("/api/v1/me/factors/sms/{bo_factor}/resend"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = b
        .post(
            &format!("/api/v1/me/factors/sms/{bo_factor}/resend"),
            json!({}),
        )
        .await;
    assert_refused(&r, 429, "sms_rate_limited");
    assert_eq!(
        gateway.received_requests().await.expect("requests").len(),
        3
    );
}

crate::on_both_backends!(
    twilio_gateway_and_the_per_address_limit,
    pages_set_up_sms_in_the_wizard_and_sign_in_by_sms,
    phone_set_up_and_used_to_sign_in,
    pumping_limits_refuse_with_clear_codes,
    gateway_failures_are_clear_and_other_methods_remain,
);
