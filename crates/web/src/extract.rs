//! What every handler wants to know about a request: who sent it, in which language,
//! and under which session.

use crate::i18n::{Lang, LANG_COOKIE};
use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use std::convert::Infallible;
use std::net::SocketAddr;
use tweestap_domain::audit::RequestContext;
use tweestap_domain::service::SessionInfo;
use tweestap_domain::token::Token;

pub const SESSION_COOKIE: &str = "tweestap_session";

pub struct Ctx {
    pub req: RequestContext,
    pub lang: Lang,
    /// Path and query, for "switch language and come back here" links.
    pub path: String,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header_str =
            |name: header::HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let forwarded = state
            .settings
            .trust_forwarded_for
            .then(|| {
                parts
                    .headers
                    .get("x-forwarded-for")
                    .and_then(|v| v.to_str().ok())
            })
            .flatten()
            // The last entry is the one our proxy added (nginx's
            // `$proxy_add_x_forwarded_for` appends); earlier ones are whatever the
            // client sent, so a client cannot pick its own address (and escape the
            // per-address throttles). Not an address: the TCP peer counts.
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|s| s.parse::<std::net::IpAddr>().is_ok())
            .map(str::to_owned);
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        let jar = CookieJar::from_headers(&parts.headers);
        let cookie_lang = jar
            .get(LANG_COOKIE)
            .and_then(|c| Lang::from_tag(c.value(), state.settings.dutch));
        let lang = cookie_lang.unwrap_or_else(|| {
            Lang::negotiate_with(header_str(header::ACCEPT_LANGUAGE), state.settings.dutch)
        });
        Ok(Ctx {
            req: RequestContext {
                ip: forwarded.or(peer),
                user_agent: header_str(header::USER_AGENT).map(|s| s.chars().take(512).collect()),
                language: Some(lang.into()),
                session: session_token(&jar).map(|t| t.hash()),
            },
            lang,
            path: parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into()),
        })
    }
}

pub fn session_token(jar: &CookieJar) -> Option<Token> {
    jar.get(SESSION_COOKIE)
        .and_then(|c| Token::from_client(c.value()))
}

pub async fn current_session(
    state: &AppState,
    jar: &CookieJar,
) -> Result<Option<SessionInfo>, tweestap_domain::Error> {
    match session_token(jar) {
        Some(t) => state.app.session(&t).await,
        None => Ok(None),
    }
}

/// A new sign-in (or "secure your account") replaces whatever session this browser
/// had: the old one is deleted, not left to expire.
pub async fn discard_current_session(
    state: &AppState,
    jar: &CookieJar,
) -> Result<(), tweestap_domain::Error> {
    match session_token(jar) {
        Some(old) => state.app.discard_session(&old).await,
        None => Ok(()),
    }
}

pub fn set_session(jar: CookieJar, token: &Token, secure: bool) -> CookieJar {
    jar.add(
        Cookie::build((SESSION_COOKIE, token.as_str().to_owned()))
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Lax)
            .build(),
    )
}

/// The remembered-device cookie: lets this browser skip the code step for a while.
pub const DEVICE_COOKIE: &str = "tweestap_device";

pub fn device_token(jar: &CookieJar) -> Option<String> {
    jar.get(DEVICE_COOKIE).map(|c| c.value().to_owned())
}

pub fn set_device(jar: CookieJar, token: &Token, secure: bool, days: i64) -> CookieJar {
    jar.add(
        Cookie::build((DEVICE_COOKIE, token.as_str().to_owned()))
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Lax)
            .max_age(time::Duration::days(days))
            .build(),
    )
}

pub fn clear_session(jar: CookieJar) -> CookieJar {
    jar.remove(Cookie::build(SESSION_COOKIE).path("/").build())
}
