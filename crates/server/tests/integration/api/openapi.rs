//! The API contract: the OpenAPI document served at `/api/v1/openapi.json` is
//! generated from the handlers, names every error code the API can answer under the
//! operations that answer it, and every operation it documents reaches a handler.

use crate::kit::{session_cookie, Backend, TestApp, PASSWORD};
use reqwest::header::{CONTENT_TYPE, COOKIE};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use tweestap::config::Config;
use tweestap_domain::policy::TwoFactorMode;
use tweestap_web::ErrorCode;

/// Codes no `/api/v1` operation answers: the router's own 405, and the errors of
/// OIDC client administration, which only the command line reaches.
const NOT_FROM_OPERATIONS: [ErrorCode; 3] = [
    ErrorCode::MethodNotAllowed,
    ErrorCode::InvalidClientMetadata,
    ErrorCode::ClientInConfig,
];

async fn document(app: &TestApp) -> Value {
    let r = app.client().get("/api/v1/openapi.json").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["openapi"], "3.1.0");
    r.body
}

/// `(method, path, operation)` for every documented operation.
fn operations(doc: &Value) -> Vec<(Method, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let Ok(m) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            ops.push((m, path.clone(), op.clone()));
        }
    }
    ops
}

/// Whether `op` documents `code` under `status`.
fn documents(op: &Value, status: u16, code: &str) -> bool {
    op["responses"][status.to_string()]["description"]
        .as_str()
        .is_some_and(|d| d.contains(&format!("`{code}`")))
}

async fn the_document_names_every_error_code(backend: Backend) {
    let app = TestApp::start(backend).await;
    let doc = document(&app).await;
    let schema: BTreeSet<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let all: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        schema, all,
        "the ErrorCode schema lists exactly the API's codes"
    );

    let ops = operations(&doc);
    for code in ErrorCode::ALL {
        if NOT_FROM_OPERATIONS.contains(&code) {
            continue;
        }
        let answered_by: Vec<String> = ops
            .iter()
            .filter(|(_, _, op)| {
                op["responses"].as_object().is_some_and(|r| {
                    r.keys()
                        .any(|s| s.parse().is_ok_and(|s| documents(op, s, code.as_str())))
                })
            })
            .map(|(m, p, _)| format!("{m} {p}"))
            .collect();
        assert!(!answered_by.is_empty(), "no operation documents `{code}`");
    }

    // The drift of the hand-written document, now impossible.
    let op = |m: &str, p: &str| doc["paths"][p][m].clone();
    assert!(documents(
        &op("delete", "/me/factors/{id}"),
        409,
        "last_factor_required"
    ));
    assert!(documents(
        &op("get", "/me/devices"),
        403,
        "enrollment_required"
    ));
    let second = op("post", "/login/second-factor");
    assert!(documents(&second, 400, "unsupported_method"));
    assert_eq!(
        doc["components"]["schemas"]["SecondFactorMethod"]["enum"],
        json!(["totp", "sms", "recovery_code", "passkey"])
    );
    // Errors every operation of a kind answers are on each of them.
    for (m, p, op) in &ops {
        if op["operationId"] == "getOpenApi" {
            continue;
        }
        assert!(documents(op, 503, "unavailable"), "{m} {p}");
        assert!(documents(op, 500, "internal"), "{m} {p}");
        if op.get("requestBody").is_some() {
            for (s, c) in [
                (400, "malformed_json"),
                (400, "invalid_request"),
                (413, "payload_too_large"),
                (415, "unsupported_media_type"),
            ] {
                assert!(documents(op, s, c), "{m} {p} lacks {s} `{c}`");
            }
        }
    }
}

fn required_for_everyone(c: &mut Config) {
    c.policy.two_factor = TwoFactorMode::Required;
}

/// Sets up an authenticator app from the session that may only do that; returns
/// the factor's id and secret, and the client, now fully signed in.
async fn enroll_when_required(app: &TestApp, email: &str) -> (String, String, crate::kit::Client) {
    let c = app.client();
    assert_eq!(
        c.login(email, PASSWORD).await.body["state"],
        "enrollment_required"
    );
    let r = c.post("/api/v1/me/factors/totp", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let secret = r.body["secret"].as_str().expect("secret").to_owned();
    let id = r.body["id"].as_str().expect("id").to_owned();
    let r = c
        .post(
            &format!("/api/v1/me/factors/totp/{id}/confirm"),
            json!({ "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    (id, secret, c)
}

/// One caller: no session, or the cookie of a session at some stage.
struct Caller {
    name: &'static str,
    cookie: Option<String>,
}

async fn sign_in(
    app: &TestApp,
    http: &reqwest::Client,
    email: &str,
    secret: Option<&str>,
) -> String {
    let r = http
        .post(format!("{}/api/v1/login", app.url))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 200);
    let cookie = session_cookie(&r);
    let Some(secret) = secret else {
        return cookie;
    };
    app.next_step();
    let r = http
        .post(format!("{}/api/v1/login/second-factor", app.url))
        .header(COOKIE, &cookie)
        .json(&json!({ "method": "totp", "code": app.code(secret) }))
        .send()
        .await
        .expect("second factor");
    assert_eq!(r.status(), 200);
    session_cookie(&r)
}

async fn every_documented_operation_reaches_its_handler_and_answers_as_documented(
    backend: Backend,
) {
    let app = TestApp::start_configured(backend, required_for_everyone).await;
    let doc = document(&app).await;
    app.add_user("an@example.be").await;
    app.add_user("bo@example.be").await;
    app.add_admin("admin@example.be").await;
    let (_, an, _) = enroll_when_required(&app, "an@example.be").await;
    let (_, admin, _) = enroll_when_required(&app, "admin@example.be").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let callers = [
        Caller {
            name: "no session",
            cookie: None,
        },
        Caller {
            name: "code due",
            cookie: Some(sign_in(&app, &http, "an@example.be", None).await),
        },
        Caller {
            name: "enrolling",
            cookie: Some(sign_in(&app, &http, "bo@example.be", None).await),
        },
        Caller {
            name: "user",
            cookie: Some(sign_in(&app, &http, "an@example.be", Some(&an)).await),
        },
        Caller {
            name: "admin",
            cookie: Some(sign_in(&app, &http, "admin@example.be", Some(&admin)).await),
        },
    ];
    // Unknown fields are ignored, so one body with every field fits every operation.
    let full = json!({
        "email": "nobody@example.be", "password": PASSWORD, "code": "000000",
        "method": "totp", "reason": "checked by phone", "phone": "0470 12 34 56",
        "token": "not-a-token",
    });
    let bodies: [(&str, Option<Vec<u8>>); 4] = [
        ("no body", None),
        ("not JSON", Some(b"email=x".to_vec())),
        ("{}", Some(b"{}".to_vec())),
        ("full", Some(full.to_string().into_bytes())),
    ];
    let mut ops = operations(&doc);
    // Those that end the caller's session go last.
    ops.sort_by_key(|(_, p, _)| ["/login", "/secure", "/logout"].contains(&p.as_str()));
    let mut seen = 0;
    for caller in &callers {
        for (method, path, op) in &ops {
            let url = format!(
                "{}/api/v1{}",
                app.url,
                path.replace("{id}", "5f0c6d1e-8a7b-4c2d-9e3f-1a2b3c4d5e6f")
                    .replace("{token}", "not-a-token")
            );
            for (what, body) in &bodies {
                let mut rq = http.request(method.clone(), &url);
                if let Some(c) = &caller.cookie {
                    rq = rq.header(COOKIE, c);
                }
                if let Some(b) = body {
                    let ct = if *what == "not JSON" {
                        "application/x-www-form-urlencoded"
                    } else {
                        "application/json"
                    };
                    rq = rq.header(CONTENT_TYPE, ct).body(b.clone());
                }
                let r = rq.send().await.expect("request");
                let status = r.status().as_u16();
                let text = r.text().await.expect("body");
                let context = format!(
                    "{method} {path} as {}, body {what}: {status} {text}",
                    caller.name
                );
                let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                assert!(
                    status != 405 && !(status == 404 && answer["message"] == "no such endpoint"),
                    "the router, not a handler, answered {context}"
                );
                if status >= 400 {
                    let code = answer["error"]
                        .as_str()
                        .unwrap_or_else(|| panic!("no code: {context}"));
                    assert!(
                        documents(op, status, code),
                        "undocumented answer: {context}"
                    );
                } else {
                    assert!(
                        op["responses"].get(status.to_string()).is_some(),
                        "undocumented status: {context}"
                    );
                }
                seen += 1;
            }
        }
    }
    assert!(seen >= 5 * 4 * 28, "{seen} requests");
}

/// Removing the last factor while two-step verification is required: the 409 the
/// hand-written document forgot.
async fn the_last_factor_refusal_is_the_documented_one(backend: Backend) {
    let app = TestApp::start_configured(backend, required_for_everyone).await;
    let doc = document(&app).await;
    app.add_user("an@example.be").await;
    let (id, _, c) = enroll_when_required(&app, "an@example.be").await;
    let r = c
        .delete(
            &format!("/api/v1/me/factors/{id}"),
            json!({ "password": PASSWORD }),
        )
        .await;
    let code = r.body["error"].as_str().expect("code");
    assert_eq!((r.status, code), (409, "last_factor_required"));
    assert!(documents(
        &doc["paths"]["/me/factors/{id}"]["delete"],
        r.status,
        code
    ));
}

/// `methods` lists what `POST /login/second-factor` accepts: `recovery_code` while
/// the account has unused recovery codes, and not after the last one is used.
async fn methods_offer_recovery_codes_while_some_are_left(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    let (_, _) = c.enroll(&app, "an@example.be").await;
    let codes = c
        .post("/api/v1/me/recovery-codes", json!({ "password": PASSWORD }))
        .await;
    let codes: Vec<String> =
        serde_json::from_value(codes.body["recovery_codes"].clone()).expect("codes");
    c.post("/api/v1/logout", json!({})).await;
    for code in &codes {
        let r = c.login("an@example.be", PASSWORD).await;
        assert_eq!(r.body["methods"], json!(["totp", "recovery_code"]));
        let r = c
            .post(
                "/api/v1/login/second-factor",
                json!({ "method": "recovery_code", "code": code }),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        c.post("/api/v1/logout", json!({})).await;
    }
    let r = c.login("an@example.be", PASSWORD).await;
    assert_eq!(
        r.body,
        json!({ "state": "second_factor", "methods": ["totp"] })
    );
    // "Secure your account" reports the same state the same way.
    let r = app
        .client()
        .post(
            "/api/v1/secure",
            json!({ "email": "an@example.be", "password": PASSWORD }),
        )
        .await;
    assert_eq!(
        r.body,
        json!({ "state": "second_factor", "methods": ["totp"] })
    );
}

crate::on_both_backends!(
    the_document_names_every_error_code,
    every_documented_operation_reaches_its_handler_and_answers_as_documented,
    the_last_factor_refusal_is_the_documented_one,
    methods_offer_recovery_codes_while_some_are_left,
);
