//! A session that is not fully signed in — after the password but before the code,
//! one that may only set up two-step verification, and one waiting for the code
//! mailed by "secure your account now" — tried on every route of the router.
//!
//! Each route is sent twice, with that session and without any, with the same
//! plausible path parameters, bodies and a valid CSRF token (so a refusal is the
//! session's, not the form's). A route answers the half-signed-in session as it
//! answers a stranger, or sends it to its own step (pages) or answers 401/403
//! (API); never with the account's data, and the session's stage never moves on.
//! Only the routes of each session's own step may do more (the allow-lists).

use super::cast::{self, People, ADMIN, SUPPORT, USER};
use super::routes::{
    all_routes, bare_client, csrf_pair, csrf_token_in, send, Answer, Body, Fill, Route,
};
use crate::kit::{Backend, TestApp, PASSWORD};
use serde_json::{json, Value};
use tweestap_domain::session::SessionStage;

crate::on_both_backends!(half_signed_in_sessions_reach_nothing_but_their_step);

/// A kind of half-signed-in session.
struct Kind {
    name: &'static str,
    stage: SessionStage,
    email: &'static str,
    /// Where pages send it (besides the sign-in page).
    step: &'static [&'static str],
    /// The API's refusal: `unauthenticated`, or `enrollment_required`.
    api_refusal: (u16, &'static str),
    /// The routes meant for it (`METHOD path`), which may answer it more than a
    /// stranger.
    allowed: &'static [&'static str],
}

/// Signing out and starting again are open to every session.
const ANY_STEP: &[&str] = &[
    "POST /logout",
    "POST /api/v1/logout",
    // RP-initiated logout asks any browser with a session first.
    "GET /oidc/logout",
    "POST /oidc/logout",
];

const KINDS: &[Kind] = &[
    Kind {
        name: "after the password, before the code",
        stage: SessionStage::SecondFactor,
        email: ADMIN,
        step: &["/login/code"],
        api_refusal: (401, "unauthenticated"),
        allowed: &[
            "GET /login/code",
            "POST /login/code",
            "GET /login/recovery",
            "POST /login/recovery",
            "POST /login/sms",
            "POST /login/passkey",
            "POST /api/v1/login/second-factor",
            "POST /api/v1/login/sms",
            "POST /api/v1/login/passkey/options",
            "POST /api/v1/login/passkey",
        ],
    },
    Kind {
        name: "may only set up two-step verification",
        stage: SessionStage::Enrollment,
        email: USER,
        step: &["/account/2fa/enable"],
        api_refusal: (403, "enrollment_required"),
        allowed: &[
            "GET /account/2fa/enable",
            "POST /account/2fa/enable",
            "GET /account/2fa/passkey",
            "GET /account/2fa/setup/{id}",
            "POST /account/2fa/setup/{id}",
            "GET /account/2fa/setup/{id}/qr.png",
            "GET /account/2fa/sms",
            "POST /account/2fa/sms",
            "GET /account/2fa/sms/{id}",
            "POST /account/2fa/sms/{id}",
            "POST /account/2fa/sms/{id}/resend",
            "GET /api/v1/me",
            "POST /api/v1/me/factors/totp",
            "POST /api/v1/me/factors/totp/{id}/confirm",
            "POST /api/v1/me/factors/passkey",
            "POST /api/v1/me/factors/passkey/{id}/confirm",
            "POST /api/v1/me/factors/sms",
            "POST /api/v1/me/factors/sms/{id}/confirm",
            "POST /api/v1/me/factors/sms/{id}/resend",
        ],
    },
    Kind {
        name: "waiting for the mailed code of \"secure your account\"",
        stage: SessionStage::EmailCode,
        email: SUPPORT,
        step: &["/secure/code"],
        api_refusal: (401, "unauthenticated"),
        allowed: &[
            "GET /secure/code",
            "POST /secure/code",
            "POST /secure/code/resend",
            "POST /api/v1/secure/code",
            "POST /api/v1/secure/code/resend",
        ],
    },
];

/// A new session of `kind` (its cookie), or what the account's sign-in gives now
/// instead (a route let an earlier session change the account).
async fn open(app: &TestApp, kind: &Kind) -> Result<String, String> {
    let cookie = match kind.stage {
        SessionStage::EmailCode => {
            let a = send(
                &bare_client(),
                &app.url,
                "POST",
                "/api/v1/secure",
                "",
                Body::Json(json!({"email": kind.email, "password": PASSWORD})),
            )
            .await;
            assert_eq!(a.status, 200, "{}", a.body);
            super::routes::session_cookie(&a)
        }
        _ => cast::login(app, kind.email).await,
    };
    match cast::stage_of(app, &cookie).await {
        Some(s) if s == kind.stage => Ok(cookie),
        other => Err(format!(
            "{}: signing in again gives {other:?}: an earlier request changed the account",
            kind.name
        )),
    }
}

/// The body a route gets: a form with the CSRF token for pages, the schema's JSON
/// for the API (or its other content type), nothing for reads.
pub fn body_for(route: &Route, doc: &Value, fill: &Fill, csrf: &str) -> Body {
    match &route.operation {
        Some(op) => {
            if let Some(v) = fill.json_body(doc, op) {
                return Body::Json(v);
            }
            match op["requestBody"]["content"].as_object() {
                Some(c) if c.contains_key("text/csv") => Body::Raw(
                    "text/csv",
                    b"email,name,role\nvreemd@tweestad.example,Vreemd,admin\n".to_vec(),
                ),
                _ => Body::None,
            }
        }
        None if route.method == "GET" => Body::None,
        None => Body::Form(fill.form(Some(csrf))),
    }
}

/// The path of a `Location` (without its query): where the browser is sent.
fn place(a: &Answer) -> Option<String> {
    let l = a.location()?;
    let u = url::Url::parse("http://tweestap.invalid/")
        .ok()?
        .join(&l)
        .ok()?;
    Some(format!("{}{}", u.origin().ascii_serialization(), u.path()))
}

async fn half_signed_in_sessions_reach_nothing_but_their_step(backend: Backend) {
    let app = cast::suite_app(backend, false).await;
    let people = cast::cast(&app).await;
    let (routes, doc) = all_routes(&app.url).await;
    let http = bare_client();
    let (csrf_cookie, csrf) = csrf_pair(&http, &app.url).await;
    let request = cast::pending_request(&app).await;
    let names: Vec<String> = routes.iter().map(Route::name).collect();
    for kind in KINDS {
        for a in kind.allowed.iter().chain(ANY_STEP) {
            assert!(names.iter().any(|n| n == a), "allowed {a} is no route");
        }
    }
    // Sanity: a full session gets the protected pages (else "as a stranger" proves
    // nothing).
    let full = cast::signed_in_admin(&app, &people).await;
    for path in ["/account", "/api/v1/me", "/admin"] {
        let cookies = format!("{full}; {csrf_cookie}");
        let a = send(&http, &app.url, "GET", path, &cookies, Body::None).await;
        assert_eq!(a.status, 200, "{path} for a full session");
    }
    app.next_step();

    let mut failures = Vec::new();
    for kind in KINDS {
        let mut session = open(&app, kind).await.expect("a session");
        let mut refused = 0;
        for route in &routes {
            let name = route.name();
            if kind.allowed.contains(&name.as_str()) || ANY_STEP.contains(&name.as_str()) {
                continue;
            }
            let fill = fill_for(&app, &people, kind);
            let path = format!(
                "{}{}",
                fill.path(&route.path),
                cast::query_for(&route.path, &request)
            );
            let stranger = send(
                &http,
                &app.url,
                &route.method,
                &path,
                &csrf_cookie,
                body_for(route, &doc, &fill, &csrf),
            )
            .await;
            let cookies = format!("{session}; {csrf_cookie}");
            // The token the session's own pages give (tokens are bound to it).
            let own = csrf_token_in(&http, &app.url, &cookies).await;
            let body = body_for(route, &doc, &fill, &own);
            let got = send(&http, &app.url, &route.method, &path, &cookies, body).await;
            let what = format!("{} — {name} ({path})", kind.name);
            assert!(got.status < 500, "{what}: {} {}", got.status, got.body);
            let as_stranger = got.status == stranger.status
                && place(&got) == place(&stranger)
                && got.error() == stranger.error();
            let to_step = if route.is_api() {
                (got.status, got.error().as_deref())
                    == (kind.api_refusal.0, Some(kind.api_refusal.1))
                    || (got.status, got.error().as_deref()) == (401, Some("unauthenticated"))
            } else {
                (300..400).contains(&got.status)
                    && got
                        .location()
                        .is_some_and(|l| kind.step.contains(&l.as_str()) || l == "/login")
            };
            check(
                &mut failures,
                as_stranger || to_step,
                format!(
                    "{what}: answered {} {:?} {:?} (a stranger: {} {:?} {:?}) {:.300}",
                    got.status,
                    got.location(),
                    got.error(),
                    stranger.status,
                    stranger.location(),
                    stranger.error(),
                    got.body
                ),
            );
            if to_step && !as_stranger {
                refused += 1;
            }
            check(
                &mut failures,
                !got.body.contains(kind.email) || stranger.body.contains(kind.email),
                format!(
                    "{what}: the answer shows the account's address: {:.300}",
                    got.body
                ),
            );
            match cast::stage_of(&app, &session).await {
                Some(s) if s == kind.stage => {}
                Some(s) => failures.push(format!("{what} moved the session on to {s:?}")),
                // Starting a sign-in or journey anew ends it: a new one.
                None => match open(&app, kind).await {
                    Ok(s) => session = s,
                    Err(e) => {
                        failures.push(format!("after {what}: {e}"));
                        break;
                    }
                },
            }
        }
        if refused < 30 {
            failures.push(format!(
                "{}: only {refused} routes refused it; the test lost its teeth",
                kind.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn check(failures: &mut Vec<String>, ok: bool, what: String) {
    if !ok {
        failures.push(what);
    }
}

/// The values a session of `kind` fills in: its own factor and device where it has
/// them, another account for support and the console, a current code.
fn fill_for(app: &TestApp, people: &People, kind: &Kind) -> Fill {
    let mut fill = cast::admin_fill(app, people);
    fill.email = kind.email.into();
    if kind.email != ADMIN {
        fill.factor = String::new();
        fill.device = String::new();
        fill.account = people.admin_id.clone();
    }
    fill
}
