//! Forward-auth for portals behind a reverse proxy that cannot speak OpenID Connect:
//! the proxy asks tweestap about every request and passes who signed in on as
//! headers.
//!
//! - `GET /auth/request` for nginx `auth_request`: 200 with `Remote-*` headers for a
//!   fully signed-in session, 401 otherwise (nginx then redirects with `error_page`
//!   to `/login?rd=<original URL>`).
//! - `GET /auth/forward` for Traefik ForwardAuth and Caddy `forward_auth`: the same
//!   200, or a 302 to the sign-in page that comes back to the original URL (taken
//!   from `X-Forwarded-Proto/Host/Uri`).
//!
//! Return URLs are only followed to hosts named in the settings (never an open
//! redirect); the browser keeps the pending one in a short-lived cookie.

use crate::extract::current_session;
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use tweestap_domain::session::SessionStage;

/// Holds the URL to return to after signing in (validated when set and when used).
pub const RETURN_COOKIE: &str = "tweestap_return";

/// `url` when it is an absolute http(s) URL on an allowed host, or on the host of
/// this server's public URL.
pub(crate) fn allowed_return(state: &AppState, url: &str) -> Option<String> {
    allowed_return_to(
        &state.settings.public_url,
        &state.settings.return_hosts,
        url,
    )
}

/// [`allowed_return`] for a `public_url` and `[forward_auth] return_hosts`.
pub fn allowed_return_to(public_url: &str, return_hosts: &[String], url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "https" | "http")
        || !parsed.username().is_empty()
        || parsed.password().is_some()
    {
        return None;
    }
    let public = url::Url::parse(public_url).ok();
    let origin = parsed.origin();
    let allowed = public.as_ref().is_some_and(|p| p.origin() == origin)
        || return_hosts
            .iter()
            .flat_map(|h| return_origins(h, public.as_ref()))
            .any(|o| o == origin);
    allowed.then(|| parsed.to_string())
}

/// The origins a `return_hosts` entry stands for, compared whole (scheme, host and
/// port), so another port or plain `http://` of an allowed host is not allowed: a
/// full origin (`https://app.example.org:8443`) as written; a host
/// (`app.example.org`) or `host:port` over https (its default port when none is
/// given), and over http as well only when tweestap itself runs on http (a test or
/// development set-up).
fn return_origins(entry: &str, public: Option<&url::Url>) -> Vec<url::Origin> {
    let entry = entry.trim();
    let schemes: &[&str] = if entry.contains("://") {
        &[""]
    } else if public.is_some_and(|p| p.scheme() == "http") {
        &["https://", "http://"]
    } else {
        &["https://"]
    };
    schemes
        .iter()
        .filter_map(|s| url::Url::parse(&format!("{s}{entry}")).ok())
        .filter(|u| matches!(u.scheme(), "https" | "http"))
        .map(|u| u.origin())
        .collect()
}

/// Remembers a valid `rd` for after the sign-in.
pub(crate) fn remember_return(state: &AppState, jar: CookieJar, rd: Option<&str>) -> CookieJar {
    match rd.and_then(|rd| allowed_return(state, rd)) {
        Some(url) => jar.add(return_cookie(url, state.settings.secure_cookies)),
        None => jar,
    }
}

/// The cookie that keeps an allowed return URL for after the sign-in.
pub fn return_cookie(url: String, secure: bool) -> Cookie<'static> {
    Cookie::build((RETURN_COOKIE, url))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::minutes(15))
        .build()
}

/// Whether a return URL (still allowed) is pending.
pub(crate) fn has_return(state: &AppState, jar: &CookieJar) -> bool {
    jar.get(RETURN_COOKIE)
        .and_then(|c| allowed_return(state, c.value()))
        .is_some()
}

/// The pending return URL (still allowed), and the jar without it.
pub(crate) fn take_return(state: &AppState, jar: CookieJar) -> (CookieJar, Option<String>) {
    let url = jar
        .get(RETURN_COOKIE)
        .and_then(|c| allowed_return(state, c.value()));
    let jar = if jar.get(RETURN_COOKIE).is_some() {
        jar.remove(Cookie::build(RETURN_COOKIE).path("/").build())
    } else {
        jar
    };
    (jar, url)
}

fn header_value(s: &str) -> HeaderValue {
    // Names and addresses are ours, but a stray control character must not break
    // the response: drop what a header cannot carry.
    let clean: String = s.chars().filter(|c| !c.is_control()).collect();
    HeaderValue::from_str(&clean).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// 200 with the signed-in person, or `None` without a full session.
async fn identity(state: &AppState, jar: &CookieJar) -> Result<Option<Response>, Response> {
    let info = match current_session(state, jar).await {
        Ok(i) => i,
        Err(e) => {
            return Err(crate::error::ApiError::from(e).into_response());
        }
    };
    let Some(info) = info.filter(|i| i.session.stage == SessionStage::Authenticated) else {
        return Ok(None);
    };
    let a = &info.account;
    let mut r = StatusCode::OK.into_response();
    let h = r.headers_mut();
    for (name, value) in [
        ("remote-user", a.email.as_str().to_owned()),
        ("remote-email", a.email.as_str().to_owned()),
        ("remote-name", a.name.clone()),
        ("remote-groups", a.role.as_str().to_owned()),
        ("remote-amr", info.session.amr.clone()),
    ] {
        h.insert(HeaderName::from_static(name), header_value(&value));
    }
    Ok(Some(r))
}

/// `GET /auth/request` (nginx `auth_request`).
pub async fn request(State(state): State<AppState>, jar: CookieJar) -> Response {
    match identity(&state, &jar).await {
        Ok(Some(r)) => r,
        Ok(None) => StatusCode::UNAUTHORIZED.into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct ForwardQuery {
    /// Where to come back to; else taken from the `X-Forwarded-*` headers.
    rd: Option<String>,
}

/// `GET /auth/forward` (Traefik ForwardAuth, Caddy `forward_auth`).
pub async fn forward(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<ForwardQuery>,
) -> Response {
    match identity(&state, &jar).await {
        Ok(Some(r)) => return r,
        Ok(None) => {}
        Err(r) => return r,
    }
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let original = q.rd.clone().or_else(|| {
        let host = h("x-forwarded-host")?;
        let proto = h("x-forwarded-proto").unwrap_or("https");
        let uri = h("x-forwarded-uri").unwrap_or("/");
        Some(format!("{proto}://{host}{uri}"))
    });
    let base = state.settings.public_url.trim_end_matches('/');
    let login = match original.and_then(|o| allowed_return(&state, &o)) {
        Some(rd) => {
            let rd: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
            format!("{base}/login?rd={rd}")
        }
        None => format!("{base}/login"),
    };
    let mut r = Redirect::to(&login).into_response();
    *r.status_mut() = StatusCode::FOUND;
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
