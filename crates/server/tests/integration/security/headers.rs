//! Security headers on every page: every GET route of the enumerated router (and
//! the answers for no route at all), asked by a stranger and by a fully signed-in
//! administrator of a tweestap whose `public_url` is https:
//!
//! - `Content-Security-Policy` without inline or evaluated scripts, nor scripts
//!   from anywhere but tweestap, with `frame-ancestors 'none'`, `base-uri` and a
//!   `default-src`;
//! - `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff` and a
//!   `Referrer-Policy` that sends no path elsewhere;
//! - `Cache-Control: no-store` on every answer with personal data (the person's
//!   address, name or id) and on every answer that sets a cookie;
//! - every cookie `Secure`, `HttpOnly` and `SameSite` (a cookie being removed only
//!   needs to be expired).

use super::cast::{self, ADMIN};
use super::routes::{all_routes, bare_client, csrf_pair, send, Answer, Body};
use crate::kit::Backend;

crate::on_both_backends!(security_headers_on_every_page);

/// Referrer policies that send no path to another origin.
const REFERRER_POLICIES: &[&str] = &[
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
];

/// The answer's faults.
fn faults(a: &Answer, personal: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let header = |n: &str| {
        a.headers
            .get(n)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    match header("content-security-policy") {
        None => out.push("no Content-Security-Policy".into()),
        Some(csp) => out.extend(csp_faults(&csp)),
    }
    if header("x-frame-options").as_deref() != Some("DENY") {
        out.push(format!("X-Frame-Options {:?}", header("x-frame-options")));
    }
    if header("x-content-type-options").as_deref() != Some("nosniff") {
        out.push(format!(
            "X-Content-Type-Options {:?}",
            header("x-content-type-options")
        ));
    }
    let referrer = header("referrer-policy").unwrap_or_default();
    if !REFERRER_POLICIES.contains(&referrer.as_str()) {
        out.push(format!("Referrer-Policy {referrer:?}"));
    }
    let cache = header("cache-control").unwrap_or_default();
    let no_store = cache.split(',').any(|d| d.trim() == "no-store");
    let shows = personal.iter().find(|p| a.body.contains(**p));
    if let (Some(p), false) = (shows, no_store) {
        out.push(format!("shows {p:?} with Cache-Control {cache:?}"));
    }
    let cookies = a.set_cookies();
    if !cookies.is_empty() && !no_store {
        out.push(format!("sets a cookie with Cache-Control {cache:?}"));
    }
    for c in cookies {
        out.extend(cookie_faults(&c));
    }
    out
}

fn csp_faults(csp: &str) -> Vec<String> {
    let mut out = Vec::new();
    let directive = |name: &str| {
        csp.split(';').map(str::trim).find_map(|d| {
            let mut words = d.split_ascii_whitespace();
            (words.next()? == name).then(|| words.map(str::to_owned).collect::<Vec<_>>())
        })
    };
    let Some(default) = directive("default-src") else {
        return vec![format!("CSP without default-src: {csp}")];
    };
    let scripts = directive("script-src").unwrap_or(default);
    for source in &scripts {
        let s = source.to_ascii_lowercase();
        let bad = s == "'unsafe-inline'"
            || s == "'unsafe-eval'"
            || s == "'unsafe-hashes'"
            || s == "'wasm-unsafe-eval'"
            || s.contains('*')
            || s.ends_with(':')
            || s.starts_with("http");
        if bad {
            out.push(format!("CSP lets scripts come from {source}: {csp}"));
        }
    }
    if directive("frame-ancestors").as_deref() != Some(&["'none'".to_owned()][..]) {
        out.push(format!("CSP frame-ancestors is not 'none': {csp}"));
    }
    match directive("base-uri").as_deref() {
        Some([one]) if one == "'none'" || one == "'self'" => {}
        _ => out.push(format!("CSP base-uri is not 'none' or 'self': {csp}")),
    }
    out
}

fn cookie_faults(set_cookie: &str) -> Vec<String> {
    let mut parts = set_cookie.split(';').map(str::trim);
    let (name, value) = parts
        .next()
        .and_then(|nv| nv.split_once('='))
        .unwrap_or(("?", ""));
    let attrs: Vec<String> = parts.map(str::to_ascii_lowercase).collect();
    let has = |a: &str| {
        attrs
            .iter()
            .any(|x| x == a || x.starts_with(&format!("{a}=")))
    };
    let removed = value.is_empty() && attrs.iter().any(|a| a == "max-age=0");
    if removed {
        return Vec::new();
    }
    let mut out = Vec::new();
    for needed in ["secure", "httponly"] {
        if !has(needed) {
            out.push(format!("cookie {name} without {needed}: {set_cookie}"));
        }
    }
    let same_site = attrs.iter().find_map(|a| a.strip_prefix("samesite="));
    if !matches!(same_site, Some("lax" | "strict")) {
        out.push(format!(
            "cookie {name} with SameSite {same_site:?}: {set_cookie}"
        ));
    }
    out
}

async fn security_headers_on_every_page(backend: Backend) {
    let app = cast::suite_app(backend, true).await;
    let people = cast::cast(&app).await;
    let (routes, _) = all_routes(&app.url).await;
    let http = bare_client();
    let session = cast::signed_in_admin(&app, &people).await;
    let (csrf_cookie, _) = csrf_pair(&http, &app.url).await;
    let fill = cast::admin_fill(&app, &people);
    let request = cast::pending_request(&app).await;
    let personal = [ADMIN, "Test Beheerder", people.admin_id.as_str()];
    let mut paths: Vec<String> = routes
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| {
            format!(
                "{}{}",
                fill.path(&r.path),
                cast::query_for(&r.path, &request)
            )
        })
        .collect();
    assert!(paths.len() > 40, "{} GET routes", paths.len());
    // No route, a wrong method, a bad parameter, a return address being kept.
    paths.extend(
        [
            "/niets-hier",
            "/api/v1/niets-hier",
            "/api/v1/login",
            "/admin/accounts/geen-id",
            "/login?rd=https%3A%2F%2Fintranet.tweestad.example%2F",
            "/lang/en?next=%2Faccount",
        ]
        .map(str::to_owned),
    );
    // The authorization request also remembers the language a portal asks for.
    paths.push(format!(
        "/oidc/authorize{}&ui_locales=en",
        cast::authorize_query(cast::CALLBACK)
    ));
    let mut failures = Vec::new();
    let mut with_personal = 0;
    for path in &paths {
        for (who, cookies) in [
            ("a stranger", String::new()),
            ("the administrator", format!("{session}; {csrf_cookie}")),
        ] {
            let a = send(&http, &app.url, "GET", path, &cookies, Body::None).await;
            if personal.iter().any(|p| a.body.contains(*p)) {
                with_personal += 1;
            }
            for fault in faults(&a, &personal) {
                failures.push(format!("GET {path} by {who} ({}): {fault}", a.status));
            }
        }
    }
    assert!(
        with_personal >= 10,
        "only {with_personal} answers showed personal data: the no-store check lost its teeth"
    );
    // The cookies of signing in, remembering the browser and the sign-in's steps.
    let pending = cast::login(&app, ADMIN).await;
    app.next_step();
    let a = send(
        &http,
        &app.url,
        "POST",
        "/api/v1/login/second-factor",
        &pending,
        Body::Json(serde_json::json!({
            "method": "totp", "code": app.code(&people.secret), "remember_device": true
        })),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.cookie("tweestap_device").is_some() && a.cookie("tweestap_session").is_some());
    for fault in faults(&a, &personal) {
        failures.push(format!("POST /api/v1/login/second-factor: {fault}"));
    }
    assert!(
        failures.is_empty(),
        "{} faults:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
