//! Open redirects on every parameter and header that takes a URL, with the corpus of
//! known bypasses in `redirect_corpus.txt`:
//!
//! - `next` of the language switch and of the console's step-up (its form and its
//!   "sign in again" link);
//! - `rd` of the sign-in page (followed by `/` once signed in), of forward-auth,
//!   and the pending return cookie a sibling host could plant;
//! - forward-auth's `X-Forwarded-Proto`, `X-Forwarded-Host`, `X-Forwarded-Uri` and
//!   the `Host` header;
//! - OIDC `redirect_uri` (at the authorization endpoint and pushed) and
//!   `post_logout_redirect_uri`.
//!
//! Every `Location` is read as a browser reads it (resolved against the request,
//! tabs and newlines being impossible there: it has no control character or white
//! space at all) and must stay on tweestap or the origins that parameter allows,
//! also the `rd` a `Location` on tweestap carries on; nothing answers 500.

use super::cast::{self, CALLBACK, CLIENT, CLIENT_SECRET, RETURN_HOST};
use super::routes::{bare_client, csrf_pair, csrf_token_in, send, Answer, Body};
use crate::kit::{Backend, TestApp};
use url::Url;

crate::on_both_backends!(open_redirects_on_every_url_parameter);

const CORPUS: &str = include_str!("redirect_corpus.txt");
const EVIL: &str = "evil.example";

/// The corpus, unescaped, with `{host}` standing for `host`.
fn corpus(host: &str) -> Vec<String> {
    let list: Vec<String> = CORPUS
        .lines()
        .filter(|l| !l.is_empty() && *l != "#" && !l.starts_with("# "))
        .map(|l| unescape(l).replace("{evil}", EVIL).replace("{host}", host))
        .collect();
    assert!(list.len() > 100, "{} values", list.len());
    list
}

fn unescape(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('\\') => out.push('\\'),
            Some('u') => {
                let rest: String = chars.by_ref().take_while(|c| *c != '}').collect();
                let hex = rest.strip_prefix('{').expect("\\u{hex}");
                let n = u32::from_str_radix(hex, 16).expect("hex");
                out.push(char::from_u32(n).expect("a character"));
            }
            other => panic!("unknown escape \\{other:?} in {line:?}"),
        }
    }
    out
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Where an answer may send the browser.
struct Allowed {
    /// Origins (`https://host:port`).
    origins: Vec<String>,
    /// A redirect URI a `Location` may start with (followed by `?`).
    redirect_uri: Option<&'static str>,
}

/// Checks an answer to `request` (an absolute URL): never a 5xx, and its
/// `Location` (if any) stays where `allowed` says; a `Location` on tweestap with
/// an `rd` is checked against `rd_allowed` too.
fn judge(
    a: &Answer,
    request: &str,
    allowed: &Allowed,
    rd_allowed: &Allowed,
    what: &str,
    failures: &mut Vec<String>,
) {
    if a.status >= 500 {
        failures.push(format!("{what}: {} {:.200}", a.status, a.body));
    }
    let Some(raw) = a.headers.get("location") else {
        return;
    };
    if let Err(e) = lands_within(raw.as_bytes(), request, allowed, rd_allowed) {
        failures.push(format!("{what}: Location {raw:?} {e}"));
    }
}

fn lands_within(
    raw: &[u8],
    base: &str,
    allowed: &Allowed,
    rd_allowed: &Allowed,
) -> Result<(), String> {
    if raw.iter().any(|b| *b <= b' ' || *b == 0x7f) {
        return Err("has a control character or white space".into());
    }
    let text = String::from_utf8_lossy(raw);
    let url = Url::parse(base)
        .and_then(|b| b.join(&text))
        .map_err(|e| format!("is no URL ({e})"))?;
    let origin = url.origin().ascii_serialization();
    let exact = allowed
        .redirect_uri
        .is_some_and(|r| url.as_str().starts_with(&format!("{r}?")));
    if !exact && !allowed.origins.contains(&origin) {
        return Err(format!("leaves for {origin}"));
    }
    let home = Url::parse(base).map(|b| b.origin().ascii_serialization());
    if home.as_deref() == Ok(origin.as_str()) {
        if let Some(rd) = url.query_pairs().find(|(k, _)| k == "rd").map(|(_, v)| v) {
            let no_rd = Allowed {
                origins: rd_allowed.origins.clone(),
                redirect_uri: None,
            };
            lands_within(rd.as_bytes(), base, &no_rd, &no_rd)
                .map_err(|e| format!("rd {rd:?} {e}"))?;
        }
    }
    Ok(())
}

async fn open_redirects_on_every_url_parameter(backend: Backend) {
    let app = cast::suite_app(backend, false).await;
    let people = cast::cast(&app).await;
    let http = bare_client();
    let home = Url::parse(&app.url).expect("url");
    let here = home.origin().ascii_serialization();
    let authority = format!(
        "{}:{}",
        home.host_str().unwrap_or_default(),
        home.port().unwrap_or(80)
    );
    let only_here = Allowed {
        origins: vec![here.clone()],
        redirect_uri: None,
    };
    // tweestap runs on http here, so the portal's host is allowed over both.
    let returns = Allowed {
        origins: vec![
            here.clone(),
            format!("https://{RETURN_HOST}"),
            format!("http://{RETURN_HOST}"),
        ],
        redirect_uri: None,
    };
    let portal = Allowed {
        origins: vec![here.clone()],
        redirect_uri: Some(CALLBACK),
    };
    let callback_host = Url::parse(CALLBACK)
        .expect("callback")
        .host_str()
        .unwrap_or_default()
        .to_owned();
    let mut failures = Vec::new();
    let f = &mut failures;

    // `next` of the language switch.
    for p in corpus(&authority) {
        let path = format!("/lang/en?next={}", enc(&p));
        let a = send(&http, &app.url, "GET", &path, "", Body::None).await;
        judge(
            &a,
            &format!("{}{path}", app.url),
            &only_here,
            &only_here,
            &format!("lang next={p:?}"),
            f,
        );
    }

    // `next` of the console's step-up: its "sign in again" link and its form.
    let admin = cast::signed_in_admin(&app, &people).await;
    let (csrf_cookie, _) = csrf_pair(&http, &app.url).await;
    let cookies = format!("{admin}; {csrf_cookie}");
    let csrf = csrf_token_in(&http, &app.url, &cookies).await;
    for p in corpus(&authority) {
        let path = format!("/admin/step-up?next={}", enc(&p));
        let a = send(&http, &app.url, "GET", &path, &cookies, Body::None).await;
        let what = format!("step-up next={p:?}");
        judge(
            &a,
            &format!("{}{path}", app.url),
            &only_here,
            &only_here,
            &what,
            f,
        );
        match again_link(&a.body) {
            Some(link) => {
                if let Err(e) = lands_within(link.as_bytes(), &app.url, &only_here, &only_here) {
                    f.push(format!("{what}: the sign-in-again link {link:?} {e}"));
                }
            }
            None => f.push(format!("{what}: no sign-in-again link ({})", a.status)),
        }
        app.next_step();
        let form = vec![
            ("csrf".to_owned(), csrf.clone()),
            ("code".to_owned(), app.code(&people.secret)),
            ("next".to_owned(), p.clone()),
        ];
        let a = send(
            &http,
            &app.url,
            "POST",
            "/admin/step-up",
            &cookies,
            Body::Form(form),
        )
        .await;
        if a.status != 303 {
            f.push(format!(
                "{what}: the step-up with a right code answered {}",
                a.status
            ));
        }
        judge(
            &a,
            &format!("{}/admin/step-up", app.url),
            &only_here,
            &only_here,
            &what,
            f,
        );
    }

    for p in corpus(RETURN_HOST) {
        returns_after_sign_in(&app, &admin, &p, &returns, f).await;
        // Forward-auth's `rd`, and the address it puts together from the headers.
        let path = format!("/auth/forward?rd={}", enc(&p));
        let a = send(&http, &app.url, "GET", &path, "", Body::None).await;
        judge(
            &a,
            &format!("{}{path}", app.url),
            &only_here,
            &returns,
            &format!("forward rd={p:?}"),
            f,
        );
        for (proto, host, uri) in [
            ("https", p.as_str(), "/"),
            ("https", RETURN_HOST, p.as_str()),
            (p.as_str(), RETURN_HOST, "/"),
        ] {
            let headers = [
                ("x-forwarded-proto", proto),
                ("x-forwarded-host", host),
                ("x-forwarded-uri", uri),
            ];
            let what = format!("forward headers {headers:?}");
            if let Some(a) = get_with(&http, &app.url, "/auth/forward", &headers).await {
                judge(
                    &a,
                    &format!("{}/auth/forward", app.url),
                    &only_here,
                    &returns,
                    &what,
                    f,
                );
            }
        }
        let what = format!("forward Host: {p:?}");
        if let Some(a) = get_with(&http, &app.url, "/auth/forward", &[("host", p.as_str())]).await {
            judge(
                &a,
                &format!("{}/auth/forward", app.url),
                &only_here,
                &returns,
                &what,
                f,
            );
        }
    }

    for p in corpus(&callback_host) {
        oidc_redirects(&app, &http, &admin, &p, &portal, &returns, f).await;
    }
    // Each parameter works at all: an allowed value is followed.
    let a = send(
        &http,
        &app.url,
        "GET",
        "/lang/en?next=%2Faccount",
        "",
        Body::None,
    )
    .await;
    assert_eq!(a.location().as_deref(), Some("/account"));
    let rd = format!("https://{RETURN_HOST}/rapporten?x=1");
    let path = format!("/login?rd={}", enc(&rd));
    let a = send(&http, &app.url, "GET", &path, &admin, Body::None).await;
    let kept = a
        .cookie("tweestap_return")
        .expect("the return address is kept");
    let c = format!("{admin}; tweestap_return={kept}");
    let a = send(&http, &app.url, "GET", "/", &c, Body::None).await;
    assert_eq!(a.location(), Some(rd.clone()), "rd is followed");
    let a = send(
        &http,
        &app.url,
        "GET",
        &format!("/auth/forward?rd={}", enc(&rd)),
        "",
        Body::None,
    )
    .await;
    let to = a.location().expect("to the sign-in");
    assert_eq!(crate::kit::query_param(&to, "rd"), Some(rd.clone()));
    let path = format!(
        "/oidc/logout?client_id={CLIENT}&post_logout_redirect_uri={}&state=s",
        enc(CALLBACK)
    );
    let a = send(&http, &app.url, "GET", &path, "", Body::None).await;
    assert_eq!(a.location(), Some(format!("{CALLBACK}?state=s")));
    let path = format!("/oidc/authorize{}", cast::authorize_query(CALLBACK));
    let a = send(&http, &app.url, "GET", &path, &admin, Body::None).await;
    let to = a.location().expect("back to the portal");
    assert!(to.starts_with(&format!("{CALLBACK}?code=")), "{to}");
    app.next_step();
    let form = vec![
        ("csrf".to_owned(), csrf.clone()),
        ("code".to_owned(), app.code(&people.secret)),
        ("next".to_owned(), "/admin/audit".to_owned()),
    ];
    let a = send(
        &http,
        &app.url,
        "POST",
        "/admin/step-up",
        &cookies,
        Body::Form(form),
    )
    .await;
    assert_eq!(a.location().as_deref(), Some("/admin/audit"));
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The "sign in again" link of the step-up page.
fn again_link(html: &str) -> Option<String> {
    let html = html_text(html);
    let at = html.find("href=\"/login?prompt=login")? + "href=\"".len();
    let end = at + html[at..].find('"')?;
    Some(html[at..end].to_owned())
}

/// HTML with its character references read (`&amp;`, `&#x2f;`, `&#61;`, ...).
fn html_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|e| *e < 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let name = &rest[1..end];
        let c = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            n if n.starts_with("#x") || n.starts_with("#X") => u32::from_str_radix(&n[2..], 16)
                .ok()
                .and_then(char::from_u32),
            n if n.starts_with('#') => n[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A GET with extra headers; `None` when a value cannot be a header at all.
async fn get_with(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<Answer> {
    let mut r = http.get(format!("{base}{path}"));
    for (k, v) in headers {
        r = r.header(*k, reqwest::header::HeaderValue::from_str(v).ok()?);
    }
    let resp = r.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.unwrap_or_default();
    Some(Answer {
        status,
        headers,
        body,
    })
}

/// `rd` on the sign-in page of a signed-in browser: to `/`, which follows the
/// pending return address; also one a sibling host planted as the cookie.
async fn returns_after_sign_in(
    app: &TestApp,
    session: &str,
    p: &str,
    returns: &Allowed,
    f: &mut Vec<String>,
) {
    let http = bare_client();
    let path = format!("/login?rd={}", enc(p));
    let what = format!("login rd={p:?}");
    let a = send(&http, &app.url, "GET", &path, session, Body::None).await;
    judge(
        &a,
        &format!("{}{path}", app.url),
        returns,
        returns,
        &what,
        f,
    );
    let kept = a.cookie("tweestap_return").filter(|v| !v.is_empty());
    let mut cookies = vec![kept.map(|v| format!("{session}; tweestap_return={v}"))];
    if reqwest::header::HeaderValue::from_str(p).is_ok() && !p.contains(';') {
        cookies.push(Some(format!("{session}; tweestap_return={p}")));
    }
    for c in cookies.into_iter().flatten() {
        let home = send(&http, &app.url, "GET", "/", &c, Body::None).await;
        judge(
            &home,
            &format!("{}/", app.url),
            returns,
            returns,
            &format!("{what} then / ({c:.80})"),
            f,
        );
    }
}

/// `redirect_uri` at the authorization endpoint and pushed, and
/// `post_logout_redirect_uri`.
async fn oidc_redirects(
    app: &TestApp,
    http: &reqwest::Client,
    session: &str,
    p: &str,
    portal: &Allowed,
    returns: &Allowed,
    f: &mut Vec<String>,
) {
    // By a stranger (to the sign-in first) and by a signed-in browser (a code at
    // once, the portal being the organisation's own).
    let path = format!("/oidc/authorize{}", cast::authorize_query(p));
    for (who, cookies) in [("a stranger", ""), ("signed in", session)] {
        let a = send(http, &app.url, "GET", &path, cookies, Body::None).await;
        let what = format!("authorize redirect_uri={p:?} ({who})");
        judge(&a, &format!("{}{path}", app.url), portal, returns, &what, f);
    }
    let path = format!(
        "/oidc/logout?client_id={CLIENT}&post_logout_redirect_uri={}&state=s",
        enc(p)
    );
    let a = send(http, &app.url, "GET", &path, "", Body::None).await;
    judge(
        &a,
        &format!("{}{path}", app.url),
        portal,
        returns,
        &format!("logout post_logout_redirect_uri={p:?}"),
        f,
    );
    let form = vec![
        ("response_type".to_owned(), "code".to_owned()),
        ("redirect_uri".to_owned(), p.to_owned()),
        ("scope".to_owned(), "openid".to_owned()),
        ("client_id".to_owned(), CLIENT.to_owned()),
        ("client_secret".to_owned(), CLIENT_SECRET.to_owned()),
    ];
    let a = send(http, &app.url, "POST", "/oidc/par", "", Body::Form(form)).await;
    if a.status != 400 {
        f.push(format!(
            "PAR redirect_uri={p:?}: {} {:.200}",
            a.status, a.body
        ));
    }
}
