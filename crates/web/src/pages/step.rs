//! What the sign-in and set-up journeys share: the checked form post, the form page
//! with a fresh CSRF token, and sending the browser on (or back) between steps.

use crate::error::{OnPage, PageError};
use crate::extract::{clear_session, discard_current_session, session_token, set_session, Ctx};
use crate::i18n::Lang;
use crate::view::page;
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use minijinja::Value;
use std::convert::Infallible;
use tweestap_domain::token::Token;

/// What a journey's page works with: the app, the visitor's context and cookies
/// (one extractor, so the handlers do not each spell out the three).
pub(super) struct Visit {
    pub state: AppState,
    pub ctx: Ctx,
    pub jar: CookieJar,
}

impl FromRequestParts<AppState> for Visit {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ctx = Ctx::from_request_parts(parts, state).await?;
        let jar = CookieJar::from_request_parts(parts, state).await?;
        Ok(Self {
            state: state.clone(),
            ctx,
            jar,
        })
    }
}

/// The CSRF check of a posted form, as the error page, so handlers can use `?`.
pub(super) fn checked(
    state: &AppState,
    jar: &CookieJar,
    csrf: &str,
    lang: Lang,
) -> Result<(), PageError> {
    if state.csrf.verify(jar, csrf) {
        Ok(())
    } else {
        Err(PageError::new(StatusCode::FORBIDDEN, "error_csrf", lang))
    }
}

/// A posted password step starts afresh: after the CSRF check, any session this
/// browser still had ends.
pub(super) async fn fresh_start(
    state: &AppState,
    jar: &CookieJar,
    csrf: &str,
    lang: Lang,
) -> Result<(), PageError> {
    checked(state, jar, csrf, lang)?;
    discard_current_session(state, jar).await.on_page(lang)
}

/// The password step of a sign-in: after the CSRF check, a half-finished session
/// of this browser ends; a signed-in one is handed on (the same person signing in
/// again keeps it until the new sign-in is complete; anyone else ends it).
pub(super) async fn sign_in_start(
    state: &AppState,
    jar: &CookieJar,
    csrf: &str,
    lang: Lang,
) -> Result<Option<Token>, PageError> {
    checked(state, jar, csrf, lang)?;
    match crate::extract::current_session(state, jar)
        .await
        .on_page(lang)?
    {
        Some(s) if s.session.stage == tweestap_domain::session::SessionStage::Authenticated => {
            Ok(session_token(jar))
        }
        _ => {
            discard_current_session(state, jar).await.on_page(lang)?;
            Ok(None)
        }
    }
}

/// How a step of a journey stops early: with the error page, or by sending the
/// browser elsewhere (back to the start when its session is gone).
#[derive(Debug)]
pub(super) enum Leave {
    Page(PageError),
    To(Redirect),
}

impl From<PageError> for Leave {
    fn from(e: PageError) -> Self {
        Self::Page(e)
    }
}

impl IntoResponse for Leave {
    fn into_response(self) -> Response {
        match self {
            Self::Page(e) => e.into_response(),
            Self::To(r) => r.into_response(),
        }
    }
}

/// The session token a later step was posted under, after the CSRF check; a browser
/// without one goes back to `start`.
pub(super) fn posted_step(
    state: &AppState,
    jar: &CookieJar,
    csrf: &str,
    lang: Lang,
    start: &str,
) -> Result<Token, Leave> {
    checked(state, jar, csrf, lang)?;
    session_token(jar).ok_or_else(|| Leave::To(Redirect::to(start)))
}

/// A page with a form on it, under a fresh CSRF token.
pub(super) fn form_page(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    status: StatusCode,
    name: &str,
    extra: Value,
) -> Response {
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    (status, jar, page(ctx, name, &csrf, false, extra)).into_response()
}

/// On to the next step, `to`, under the session `token`.
pub(super) fn onward(state: &AppState, jar: CookieJar, token: &Token, to: &str) -> Response {
    let jar = set_session(jar, token, state.settings.secure_cookies);
    (jar, Redirect::to(to)).into_response()
}

/// The journey's session has ended (expired, or used up): back to its `start`.
pub(super) fn restart(jar: CookieJar, start: &str) -> Response {
    (clear_session(jar), Redirect::to(start)).into_response()
}
