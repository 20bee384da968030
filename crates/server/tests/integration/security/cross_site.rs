//! Cross-site requests on every state-changing route (POST, PUT, PATCH, DELETE of
//! the enumerated router), sent with a fully signed-in administrator's cookies as a
//! browser would send them for another site's form:
//!
//! - page forms without a CSRF token, with an empty or made-up one, with a token
//!   that belongs to another browser's CSRF cookie (the attacker's own), with a
//!   token of the same browser from before it signed in or from another session
//!   (tokens are bound to the session), or with the attacker's pair planted in the
//!   browser as a sibling host can (a `tweestap_csrf` cookie for the parent
//!   domain; its token minted without a session or in the attacker's own), in each
//!   encoding a form can have: refused (403 where the form is read). All of it over
//!   https (`__Host-` cookie) and over plain http (development, or TLS ended at a
//!   proxy without an https public URL: a plain cookie a sibling can overwrite);
//! - API calls with the content types a form can send (`text/plain`,
//!   `application/x-www-form-urlencoded`, `multipart/form-data`): 415; methods a
//!   form cannot send are refused a CORS preflight from another origin;
//! - the OIDC endpoints that authenticate by what is sent (client credentials,
//!   bearer tokens) answer the same with or without the browser's cookies.
//!
//! Afterwards nothing in the database (accounts, factors, sessions, devices, codes,
//! consents, the audit log, the mail) has changed; the same check sees a change
//! made with a valid token.

use super::cast::{self, CLIENT};
use super::routes::{all_routes, bare_client, csrf_pair, csrf_token_in, send, Answer, Body, Route};
use crate::kit::{stored_texts, Backend, TestApp};

crate::on_both_backends!(cross_site_requests_change_nothing);
crate::on_both_backends!(a_planted_csrf_cookie_does_not_pass);

/// Endpoints for portals and their apps, not for browsers' cookies.
const WITHOUT_COOKIES: &[&str] = &[
    "POST /oidc/token",
    "POST /oidc/revoke",
    "POST /oidc/introspect",
    "POST /oidc/par",
    "POST /oidc/userinfo",
];

const EVIL: &str = "https://evil.example";

/// Every table of the app's database.
async fn tables(app: &TestApp) -> Vec<String> {
    let sql = match app.backend {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name"
        }
        Backend::Postgres(_) => {
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name NOT LIKE '_sqlx%' ORDER BY table_name"
        }
    };
    let t = stored_texts(app, sql).await;
    assert!(t.len() > 20, "{t:?}");
    t
}

/// What the database and the outbox hold, minus what a request touches by being
/// made (a session's last activity).
async fn fingerprint(app: &TestApp) -> Vec<String> {
    let mut out = Vec::new();
    for t in tables(app).await {
        let n = stored_texts(app, &format!("SELECT CAST(COUNT(*) AS TEXT) FROM {t}")).await;
        out.push(format!("{t}: {}", n.join("")));
    }
    for sql in [
        "SELECT id_hash || ' ' || stage || ' ' || amr FROM sessions ORDER BY id_hash",
        "SELECT event FROM audit_log ORDER BY id",
        "SELECT CAST(id AS TEXT) FROM remembered_devices ORDER BY 1",
    ] {
        out.extend(stored_texts(app, sql).await);
    }
    let mut snapshot =
        serde_json::to_value(app.engine().export().await.expect("export")).expect("json");
    snapshot["exported_at"] = serde_json::Value::Null;
    out.push(snapshot.to_string());
    let mut mail: Vec<String> = std::fs::read_dir(app.dir.path().join("outbox"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    mail.sort();
    out.extend(mail);
    out
}

/// A form's fields.
type Fields = Vec<(String, String)>;

/// A multipart body of `fields`.
fn multipart(fields: &[(String, String)]) -> Body {
    let mut b = String::new();
    for (k, v) in fields {
        b.push_str(&format!(
            "--suiteboundary\r\ncontent-disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    b.push_str("--suiteboundary--\r\n");
    Body::Raw(
        "multipart/form-data; boundary=suiteboundary",
        b.into_bytes(),
    )
}

fn urlencoded(fields: &[(String, String)]) -> Body {
    let text = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    Body::Raw("application/x-www-form-urlencoded", text.into_bytes())
}

/// The answer to a form whose token is not right (the Dutch page: the suite's
/// browser asks for no language).
fn is_csrf_refusal(a: &Answer) -> bool {
    a.status == 403 && a.body.contains("Je formulier is verlopen")
}

/// Over https, as in production (the cookies are `Secure`, the CSRF cookie has the
/// `__Host-` prefix).
async fn cross_site_requests_change_nothing(backend: Backend) {
    forged_requests_change_nothing(backend, true).await;
}

/// Over plain http a sibling host can set `tweestap_csrf` for the parent domain
/// (no `__Host-` prefix, no `Secure`): the token bound to the session is what
/// keeps its pair out.
async fn a_planted_csrf_cookie_does_not_pass(backend: Backend) {
    forged_requests_change_nothing(backend, false).await;
}

async fn forged_requests_change_nothing(backend: Backend, https: bool) {
    let app = cast::suite_app(backend, https).await;
    let people = cast::cast(&app).await;
    let (routes, doc) = all_routes(&app.url).await;
    let http = bare_client();
    let session = cast::signed_in_admin(&app, &people).await;
    app.next_step();
    let fill = cast::admin_fill(&app, &people);
    // The victim's browser has a CSRF cookie of its own, got before it signed in
    // (with a token for no session), and its token in this session and in another
    // session of the same person; the attacker has a pair of theirs (a valid
    // token, but for another cookie), minted without a session and in its own.
    let (victim_csrf, before_sign_in) = csrf_pair(&http, &app.url).await;
    let with_csrf = format!("{session}; {victim_csrf}");
    let victim_token = csrf_token_in(&http, &app.url, &with_csrf).await;
    app.next_step();
    let other = cast::signed_in_admin(&app, &people).await;
    let other_session = csrf_token_in(&http, &app.url, &format!("{other}; {victim_csrf}")).await;
    let (attacker_csrf, attacker_token) = csrf_pair(&http, &app.url).await;
    let own = cast::login(&app, cast::USER).await;
    let attacker_own = csrf_token_in(&http, &app.url, &format!("{own}; {attacker_csrf}")).await;
    for t in [
        &before_sign_in,
        &other_session,
        &attacker_token,
        &attacker_own,
    ] {
        assert_ne!(t, &victim_token, "tokens are bound to the session");
    }
    // A portal on a sibling host (same site, so the session cookie goes along)
    // sets its own CSRF cookie for the parent domain: a cookie without the
    // `__Host-` prefix (over http the very name tweestap reads), whose tokens it
    // knows.
    let attacker_value = attacker_csrf.split_once('=').map_or("", |(_, v)| v);
    let planted = format!("{session}; tweestap_csrf={attacker_value}");
    let request = cast::pending_request(&app).await;
    let before = fingerprint(&app).await;
    let mut failures = Vec::new();
    let changing: Vec<&Route> = routes.iter().filter(|r| r.changes_state()).collect();
    assert!(
        changing.len() > 50,
        "{} state-changing routes",
        changing.len()
    );
    let mut forms = 0;

    for route in &changing {
        let name = route.name();
        let path = format!(
            "{}{}",
            fill.path(&route.path),
            cast::query_for(&route.path, &request)
        );
        let what = format!("{name} ({path})");
        if WITHOUT_COOKIES.contains(&name.as_str()) {
            let fields = fill.form(Some(&victim_token));
            let with = send(
                &http,
                &app.url,
                &route.method,
                &path,
                &with_csrf,
                urlencoded(&fields),
            )
            .await;
            let without = send(
                &http,
                &app.url,
                &route.method,
                &path,
                "",
                urlencoded(&fields),
            )
            .await;
            if (with.status, with.error()) != (without.status, without.error()) {
                failures.push(format!(
                    "{what}: cookies changed the answer: {} {:?} (without: {} {:?})",
                    with.status,
                    with.error(),
                    without.status,
                    without.error()
                ));
            }
            continue;
        }
        if let Some(op) = &route.operation {
            let json = fill.json_body(&doc, op);
            let has_body = op["requestBody"]["content"].is_object();
            let fields: Vec<(String, String)> = match &json {
                Some(serde_json::Value::Object(m)) => m
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().map_or(v.to_string(), str::to_owned)))
                    .collect(),
                _ => vec![("x".into(), "1".into())],
            };
            // JSON (and any method but GET and POST) makes a browser ask first;
            // another site is never let.
            if let Some(allowed) = preflight(&http, &app.url, &path, &route.method).await {
                failures.push(format!("{what}: another site may send it ({allowed})"));
            }
            if !has_body {
                // Only a script could send this method, after the preflight above.
                assert_ne!(route.method, "POST", "{what}: a POST without a body");
                continue;
            }
            let text = json.map_or_else(|| "{}".to_owned(), |v| v.to_string());
            for body in [
                Body::Raw("text/plain", text.into_bytes()),
                urlencoded(&fields),
                multipart(&fields),
            ] {
                let a = send(&http, &app.url, &route.method, &path, &with_csrf, body).await;
                if (a.status, a.error().as_deref()) != (415, Some("unsupported_media_type")) {
                    failures.push(format!(
                        "{what}: a form's content type got {} {:.200}",
                        a.status, a.body
                    ));
                }
            }
            continue;
        }
        forms += 1;
        let form = |token: Option<&str>| fill.form(token);
        let attempts: [(&str, String, Fields); 9] = [
            ("no token", with_csrf.clone(), form(None)),
            ("an empty token", with_csrf.clone(), form(Some(""))),
            (
                "a made-up token",
                with_csrf.clone(),
                form(Some(&"0".repeat(64))),
            ),
            (
                "the attacker's token",
                with_csrf.clone(),
                form(Some(&attacker_token)),
            ),
            (
                "a token without its cookie",
                session.clone(),
                form(Some(&victim_token)),
            ),
            (
                "this browser's token from before it signed in",
                with_csrf.clone(),
                form(Some(&before_sign_in)),
            ),
            (
                "this browser's token from another session",
                with_csrf.clone(),
                form(Some(&other_session)),
            ),
            (
                "a CSRF cookie planted by a sibling host",
                planted.clone(),
                form(Some(&attacker_token)),
            ),
            (
                "a planted CSRF cookie, its token from the attacker's own session",
                planted.clone(),
                form(Some(&attacker_own)),
            ),
        ];
        for (how, cookies, fields) in attempts {
            let url = send(
                &http,
                &app.url,
                &route.method,
                &path,
                &cookies,
                urlencoded(&fields),
            )
            .await;
            let multi = send(
                &http,
                &app.url,
                &route.method,
                &path,
                &cookies,
                multipart(&fields),
            )
            .await;
            let refused = |a: &Answer| (400..500).contains(&a.status);
            if !(refused(&url)
                && refused(&multi)
                && (is_csrf_refusal(&url) || is_csrf_refusal(&multi)))
            {
                failures.push(format!(
                    "{what} with {how}: answered {} {:?} / multipart {} {:?}",
                    url.status,
                    url.location(),
                    multi.status,
                    multi.location()
                ));
            }
        }
    }
    assert!(forms > 30, "{forms} forms");
    let after = fingerprint(&app).await;
    for gone in before.iter().filter(|b| !after.contains(b)) {
        failures.push(format!("changed, was: {gone:.400}"));
    }
    for new in after.iter().filter(|a| !before.contains(a)) {
        failures.push(format!("changed, now: {new:.400}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The check sees a change: the same kind of form with the right token.
    let fields = fill.form(Some(&victim_token));
    let a = send(
        &http,
        &app.url,
        "POST",
        "/account/devices/forget",
        &with_csrf,
        urlencoded(&fields),
    )
    .await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_ne!(fingerprint(&app).await, before, "a real change is seen");
    let _ = CLIENT;
}

/// What a CORS preflight from another site for `method` is allowed, if anything.
async fn preflight(http: &reqwest::Client, base: &str, path: &str, method: &str) -> Option<String> {
    let r = http
        .request(reqwest::Method::OPTIONS, format!("{base}{path}"))
        .header("origin", EVIL)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("preflight");
    let h = r.headers();
    let origin = h
        .get("access-control-allow-origin")?
        .to_str()
        .unwrap_or("?")
        .to_owned();
    Some(format!(
        "allow-origin {origin}, credentials {:?}",
        h.get("access-control-allow-credentials")
    ))
}
