//! `/dev/outbox`: the mail written to `<data_dir>/outbox/` when no SMTP server is
//! configured, for developers and first try-outs. The mails hold reset links and
//! codes, so the page (and `/dev/sms-outbox`) is served only when all of these hold,
//! and answers 404 otherwise:
//! - `[dev] outbox_page` is on: by default only while the server listens on a
//!   loopback address with `public_url` empty or plain http to this machine;
//! - the TCP peer is this machine (never an address from a header);
//! - the request carries no proxy header at all (a reverse proxy on this machine
//!   would make every visitor look local);
//! - its `Host` is a loopback name or address (a web page whose DNS name was
//!   rebound to 127.0.0.1 cannot read it from the developer's browser).

use crate::extract::Ctx;
use crate::render::templates;
use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use minijinja::context;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Headers that proxies, load balancers and CDNs add: any of them means the request
/// did not come from a browser on this machine directly.
const PROXY_HEADERS: [&str; 11] = [
    "forwarded",
    "via",
    "x-real-ip",
    "x-client-ip",
    "client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-cluster-client-ip",
    "x-original-forwarded-for",
    "x-proxyuser-ip",
];

fn proxied(headers: &axum::http::HeaderMap) -> bool {
    headers.keys().any(|k| {
        let k = k.as_str();
        PROXY_HEADERS.contains(&k) || k.starts_with("x-forwarded-")
    })
}

/// Whether the `Host` header names this machine: `localhost`, 127.0.0.0/8 or `[::1]`,
/// with any port.
fn loopback_host(headers: &axum::http::HeaderMap) -> bool {
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| url::Url::parse(&format!("http://{h}/")).ok())
    else {
        return false;
    };
    match host.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The TCP peer of the connection when the request came straight from a browser
/// on this machine: a loopback peer, no proxy header, a loopback `Host`.
pub(crate) struct Peer(Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let direct = !proxied(&parts.headers) && loopback_host(&parts.headers);
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0)
                .filter(|p| direct && p.ip().to_canonical().is_loopback()),
        ))
    }
}

/// The outbox folder, when this request may see it.
fn outbox_for(state: &AppState, peer: &Peer) -> Option<PathBuf> {
    let dir = state.settings.outbox.clone()?;
    (state.settings.outbox_page && peer.0.is_some()).then_some(dir)
}

/// A file name the outbox writes: no path separators, no leading dot.
fn valid_name(name: &str) -> bool {
    name.ends_with(".eml")
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[derive(Serialize)]
struct Listed {
    name: String,
    date: String,
    to: String,
    subject: String,
}

struct Parsed {
    headers: Vec<(String, String)>,
    text: String,
    html: String,
}

fn header_of(headers: &[(String, String)], name: &str) -> String {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn parse(raw: &[u8]) -> Option<Parsed> {
    let mail = mailparse::parse_mail(raw).ok()?;
    let headers = mail
        .headers
        .iter()
        .map(|h| (h.get_key(), h.get_value()))
        .collect();
    let mut text = String::new();
    let mut html = String::new();
    let mut stack = vec![&mail];
    while let Some(part) = stack.pop() {
        match part.ctype.mimetype.as_str() {
            "text/plain" if text.is_empty() => text = part.get_body().unwrap_or_default(),
            "text/html" if html.is_empty() => html = part.get_body().unwrap_or_default(),
            _ => stack.extend(part.subparts.iter()),
        }
    }
    Some(Parsed {
        headers,
        text,
        html,
    })
}

fn not_found(ctx: Ctx) -> Response {
    crate::error::PageError::new(StatusCode::NOT_FOUND, "error_not_found", ctx.lang).into_response()
}

fn page(ctx: &Ctx, name: &str, values: minijinja::Value) -> Response {
    match templates().render(name, ctx.lang, values) {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, template = name, "render failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

pub(crate) async fn list(State(state): State<AppState>, peer: Peer, ctx: Ctx) -> Response {
    let Some(dir) = outbox_for(&state, &peer) else {
        return not_found(ctx);
    };
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| valid_name(n))
            .collect(),
        Err(_) => Vec::new(),
    };
    // Names start with the time written: newest first.
    names.sort_unstable_by(|a, b| b.cmp(a));
    let messages: Vec<Listed> = names
        .into_iter()
        .take(500)
        .map(|name| {
            let parsed = std::fs::read(dir.join(&name))
                .ok()
                .and_then(|raw| parse(&raw));
            let h = parsed.map(|p| p.headers).unwrap_or_default();
            Listed {
                date: header_of(&h, "Date"),
                to: header_of(&h, "To"),
                subject: header_of(&h, "Subject"),
                name,
            }
        })
        .collect();
    page(&ctx, "dev_outbox.html", context! { messages => messages })
}

async fn read(state: &AppState, peer: &Peer, name: &str) -> Option<Parsed> {
    let dir = outbox_for(state, peer)?;
    if !valid_name(name) {
        return None;
    }
    let raw = tokio::fs::read(dir.join(name)).await.ok()?;
    parse(&raw)
}

pub(crate) async fn show(
    State(state): State<AppState>,
    peer: Peer,
    Path(name): Path<String>,
    ctx: Ctx,
) -> Response {
    let Some(m) = read(&state, &peer, &name).await else {
        return not_found(ctx);
    };
    let subject = header_of(&m.headers, "Subject");
    page(
        &ctx,
        "dev_outbox_message.html",
        context! { name => name, subject => subject, headers => m.headers, text => m.text, html => m.html },
    )
}

/// The HTML part itself, sandboxed: no scripts, no requests, no forms.
pub(crate) async fn show_html(
    State(state): State<AppState>,
    peer: Peer,
    Path(name): Path<String>,
    ctx: Ctx,
) -> Response {
    let Some(m) = read(&state, &peer, &name).await else {
        return not_found(ctx);
    };
    let mut r = Html(m.html).into_response();
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:",
        ),
    );
    r
}

// ---- the SMS outbox -------------------------------------------------------------------

#[derive(Serialize)]
struct Sms {
    name: String,
    content: String,
}

/// `/dev/sms-outbox`: the SMS written to `<data_dir>/sms-outbox/` by the default
/// gateway, newest first, whole (they are short). Same rules as the mail outbox.
pub(crate) async fn sms_list(State(state): State<AppState>, peer: Peer, ctx: Ctx) -> Response {
    let Some(dir) = state
        .settings
        .sms_outbox
        .clone()
        .filter(|_| state.settings.outbox_page && peer.0.is_some())
    else {
        return not_found(ctx);
    };
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".txt") && !n.starts_with('.'))
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort_unstable_by(|a, b| b.cmp(a));
    let messages: Vec<Sms> = names
        .into_iter()
        .take(200)
        .map(|name| Sms {
            content: std::fs::read_to_string(dir.join(&name)).unwrap_or_default(),
            name,
        })
        .collect();
    page(
        &ctx,
        "dev_sms_outbox.html",
        context! { messages => messages },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> axum::http::HeaderMap {
        let mut h = axum::http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn only_loopback_hosts_without_proxy_headers_count_as_this_machine() {
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "127.1.2.3",
        ] {
            let h = headers(&[("host", host)]);
            assert!(loopback_host(&h) && !proxied(&h), "{host}");
        }
        for host in [
            "evil.example",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "10.0.0.1:8080",
            "",
            "a b",
        ] {
            assert!(!loopback_host(&headers(&[("host", host)])), "{host}");
        }
        assert!(!loopback_host(&headers(&[])));
        for proxy in [
            "forwarded",
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto",
            "via",
            "x-real-ip",
            "cf-connecting-ip",
            "true-client-ip",
        ] {
            assert!(
                proxied(&headers(&[("host", "127.0.0.1"), (proxy, "1")])),
                "{proxy}"
            );
        }
    }

    #[test]
    fn only_plain_eml_names() {
        assert!(valid_name("20260301T090010123-abc.eml"));
        for bad in [
            "../x.eml", ".x.eml", "a/b.eml", "x.txt", "x%2f.eml", "a\\b.eml",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
