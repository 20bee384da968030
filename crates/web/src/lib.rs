//! The web layer: pages and the JSON API. Handlers translate HTTP into calls on
//! the domain's [`Tweestap`] engine and back; nothing here touches storage.

mod api;
mod csrf;
mod csv;
pub mod dates;
mod error;
mod extract;
mod forward_auth;
#[doc(hidden)]
pub mod fuzzing;
mod gate;
pub mod i18n;
pub mod local_return;
pub mod mail;
mod oidc;
mod oidc_flow;
mod pages;
mod qr;
mod render;
mod view;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use tower_http::set_header::SetResponseHeaderLayer;
use tweestap_domain::secret_box::MasterKey;
use tweestap_domain::Tweestap;

pub use csrf::Csrf;
pub use error::ErrorCode;

/// Settings of the web layer only.
#[derive(Debug, Clone, Default)]
pub struct WebSettings {
    /// Mark cookies `Secure`; on when the public URL is https.
    pub secure_cookies: bool,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// The mail outbox folder, shown at `/dev/outbox` to loopback clients; `None`
    /// (whenever SMTP is configured) answers 404 there.
    pub outbox: Option<std::path::PathBuf>,
    /// The SMS outbox folder, shown at `/dev/sms-outbox` to loopback clients when the
    /// default (outbox) SMS gateway is in use.
    pub sms_outbox: Option<std::path::PathBuf>,
    /// Serve `/dev/outbox` and `/dev/sms-outbox` at all (`[dev] outbox_page`: only
    /// while the server runs on this machine alone); off, both answer 404.
    pub outbox_page: bool,
    /// The start of links in mail: `public_url`, or the node's own address when
    /// that is not configured (see `links_base` in the binary).
    pub public_url: String,
    /// Hosts (besides `public_url`'s) a sign-in may return to: the portals behind
    /// forward-auth.
    pub return_hosts: Vec<String>,
    /// `Domain` of the session and device cookies (e.g. `example.org`), so portals on
    /// sibling hosts share the sign-in through forward-auth; `None`: this host only.
    pub cookie_domain: Option<String>,
    /// The zone pages and mails show dates in (`[ui] time_zone`).
    pub time_zone: dates::Zone,
    /// The Dutch of a browser that asks for plain `nl` (`[ui] dutch`).
    pub dutch: i18n::Dutch,
}

pub struct Inner {
    pub(crate) app: Arc<Tweestap>,
    pub(crate) csrf: Csrf,
    pub(crate) settings: WebSettings,
}

impl Inner {
    /// The start of links in mail, fixed at start-up from `public_url` or the node's
    /// own address (never from the request's Host header, which a client can forge).
    pub(crate) fn base_url(&self) -> String {
        self.settings.public_url.clone()
    }
}

#[derive(Clone)]
pub(crate) struct AppState(Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// JSON and form bodies larger than this are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Gives the session and device cookies the configured parent `Domain`, in one
/// place for every handler that sets or clears them.
fn scope_cookies(mut r: axum::response::Response, domain: &str) -> axum::response::Response {
    let values: Vec<HeaderValue> = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| {
            let s = v.to_str().unwrap_or_default();
            let ours = [extract::SESSION_COOKIE, extract::DEVICE_COOKIE]
                .iter()
                .any(|name| s.starts_with(&format!("{name}=")));
            if ours && !s.to_ascii_lowercase().contains("domain=") {
                HeaderValue::from_str(&format!("{s}; Domain={domain}"))
                    .unwrap_or_else(|_| v.clone())
            } else {
                v.clone()
            }
        })
        .collect();
    let headers = r.headers_mut();
    headers.remove(header::SET_COOKIE);
    for v in values {
        headers.append(header::SET_COOKIE, v);
    }
    r
}

pub fn router(app: Arc<Tweestap>, master: &MasterKey, settings: WebSettings) -> Router {
    let cookie_domain = settings.cookie_domain.clone();
    let state = AppState(Arc::new(Inner {
        app: app.clone(),
        csrf: Csrf::new(master).over_https(settings.secure_cookies),
        settings,
    }));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(pages::ready))
        .route("/auth/request", get(forward_auth::request))
        .route("/auth/forward", get(forward_auth::forward))
        .route("/static/style.css", get(pages::stylesheet))
        .route("/static/passkey.js", get(pages::passkey::script))
        .merge(pages::routes())
        .merge(oidc::routes())
        .merge(oidc_flow::routes(&app))
        .nest("/api/v1", api::routes())
        .fallback(pages::not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(move |r: axum::response::Response| {
            let domain = cookie_domain.clone();
            async move {
                match domain {
                    Some(d) => scope_cookies(r, &d),
                    None => r,
                }
            }
        }))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        // Scripts only from our own files (the passkey buttons), never inline; they
        // call our own API only.
        // No `form-action 'self'`: browsers apply it to the redirects after a form
        // post too, and the code form's redirect chain ends at a portal's
        // redirect_uri (OIDC) or a forward-auth origin, which it would block.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .with_state(state)
}
