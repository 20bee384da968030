//! `/dev/outbox`: the mail written to `<data_dir>/outbox/` when no SMTP server is
//! configured, for developers and first try-outs. Served only then, and only to
//! clients on this machine (the TCP peer, never X-Forwarded-For); 404 otherwise.

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

/// The TCP peer of the connection when it is this machine and no proxy stands in
/// between (a reverse proxy on the same host would make every visitor look local,
/// so a request carrying forwarding headers never counts as local).
pub(crate) struct Peer(Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let proxied = ["forwarded", "x-forwarded-for", "x-real-ip"]
            .iter()
            .any(|h| parts.headers.contains_key(*h));
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0)
                .filter(|p| !proxied && p.ip().to_canonical().is_loopback()),
        ))
    }
}

/// The outbox folder, when this request may see it.
fn outbox_for(state: &AppState, peer: &Peer) -> Option<PathBuf> {
    let dir = state.settings.outbox.clone()?;
    peer.0.map(|_| dir)
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
        .filter(|_| peer.0.is_some_and(|p| p.ip().to_canonical().is_loopback()))
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
