//! "Wachtwoord vergeten?": request a link, then choose a new password with it.

use super::step::checked;
use crate::error::{OnPage, PageError};
use crate::extract::{clear_session, Ctx};
use crate::view::page;
use crate::AppState;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tweestap_domain::Error;

pub async fn forgot_form(State(state): State<AppState>, ctx: Ctx, jar: CookieJar) -> Response {
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let page = page(
        &ctx,
        "password_forgot.html",
        &csrf,
        false,
        minijinja::context! {},
    );
    (jar, page).into_response()
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

pub async fn forgot_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Form(f): Form<ForgotForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    let base = state.base_url();
    // The page comes at once, whether or not the address has an account: the
    // request runs after the answer, so its time tells nothing either.
    state
        .app
        .request_password_reset_later(&f.email, &base, &ctx.req);
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let page = page(
        &ctx,
        "password_forgot.html",
        &csrf,
        false,
        minijinja::context! { sent => true },
    );
    Ok((jar, page).into_response())
}

fn invalid_page(state: &AppState, ctx: &Ctx, jar: CookieJar) -> Response {
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let page = page(
        ctx,
        "password_reset.html",
        &csrf,
        false,
        minijinja::context! { state => "invalid" },
    );
    (StatusCode::BAD_REQUEST, jar, page).into_response()
}

fn form_page(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    token: &str,
    status: StatusCode,
    error: Option<&str>,
    invite: bool,
) -> Response {
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let page = page(
        ctx,
        "password_reset.html",
        &csrf,
        false,
        minijinja::context! { state => "form", token => token, error => error, invite => invite },
    );
    (status, jar, page).into_response()
}

pub async fn reset_form(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    match state.app.check_reset_link(&token, &ctx.req).await {
        Ok(()) => {
            let invite = state
                .app
                .reset_link_is_invite(&token)
                .await
                .on_page(ctx.lang)?;
            Ok(form_page(
                &state,
                &ctx,
                jar,
                &token,
                StatusCode::OK,
                None,
                invite,
            ))
        }
        Err(Error::InvalidResetLink) => Ok(invalid_page(&state, &ctx, jar)),
        Err(e) => Err(PageError::from_domain(e, ctx.lang)),
    }
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: zeroize::Zeroizing<String>,
    #[serde(default)]
    password2: zeroize::Zeroizing<String>,
}

pub async fn reset_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(token): Path<String>,
    Form(f): Form<ResetForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    // Asked before the link is used: afterwards it is no longer open.
    let invite = state
        .app
        .reset_link_is_invite(&token)
        .await
        .on_page(ctx.lang)?;
    if f.password != f.password2 {
        let msg = ctx.lang.t("reset_mismatch");
        return Ok(form_page(
            &state,
            &ctx,
            jar,
            &token,
            StatusCode::BAD_REQUEST,
            Some(msg),
            invite,
        ));
    }
    let page = match state
        .app
        .complete_password_reset(&token, &f.password, &ctx.req)
        .await
    {
        Ok(()) => {
            // Every session of the account has ended; this browser's cookie too.
            let (jar, csrf) = state
                .csrf
                .token(clear_session(jar), state.settings.secure_cookies);
            let page = page(
                &ctx,
                "password_reset.html",
                &csrf,
                false,
                minijinja::context! { state => "done", invite => invite },
            );
            (jar, page).into_response()
        }
        Err(Error::WeakPassword(p)) => {
            let msg = ctx.lang.t(p.code());
            form_page(
                &state,
                &ctx,
                jar,
                &token,
                StatusCode::BAD_REQUEST,
                Some(msg),
                invite,
            )
        }
        Err(Error::InvalidResetLink) => invalid_page(&state, &ctx, jar),
        Err(e) => return Err(PageError::from_domain(e, ctx.lang)),
    };
    Ok(page)
}
