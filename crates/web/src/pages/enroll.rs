//! The set-up journeys of the manuals: "secure your account now" from the sign-in
//! page (password, then a code mailed to the address), and the mailed link to the
//! personal QR page.

use super::step::{checked, form_page, fresh_start, onward, posted_step, restart, Leave, Visit};
use crate::error::{OnPage, PageError};
use crate::extract::{current_session, set_session, Ctx};
use crate::view::page;
use crate::AppState;
use axum::extract::{Form, Path};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tweestap_domain::service::SecureStart;
use tweestap_domain::session::SessionStage;
use tweestap_domain::Error;

/// Where the journey starts, and where it goes back to once its session has ended.
const START: &str = "/secure";

#[derive(Deserialize)]
pub struct SecureForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

fn secure_page(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    email: &str,
    error: Option<&str>,
) -> Response {
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let extra = minijinja::context! { email => email, error => error };
    form_page(state, ctx, jar, status, "secure.html", extra)
}

pub async fn secure_form(Visit { state, ctx, jar }: Visit) -> Response {
    secure_page(&state, &ctx, jar, "", None)
}

pub async fn secure_submit(
    Visit { state, ctx, jar }: Visit,
    Form(f): Form<SecureForm>,
) -> Result<Response, PageError> {
    fresh_start(&state, &jar, &f.csrf, ctx.lang).await?;
    let started = state
        .app
        .secure_account_start(&f.email, &f.password, &ctx.req)
        .await;
    let (token, to) = match started {
        Ok(SecureStart::CodeSent(token)) => (token, "/secure/code"),
        Ok(SecureStart::SecondFactor { token, .. }) => (token, "/login/code?from=secure"),
        Err(Error::InvalidCredentials) => {
            let error = ctx.lang.t("login_failed");
            return Ok(secure_page(&state, &ctx, jar, f.email.trim(), Some(error)));
        }
        Err(e) => return Err(PageError::from_domain(e, ctx.lang)),
    };
    Ok(onward(&state, jar, &token, to))
}

async fn waiting_for_code(state: &AppState, jar: &CookieJar) -> Result<bool, Error> {
    Ok(
        matches!(current_session(state, jar).await?, Some(s) if s.session.stage == SessionStage::EmailCode),
    )
}

fn code_page(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let extra = minijinja::context! { notice => notice, error => error };
    form_page(state, ctx, jar, status, "secure_code.html", extra)
}

pub async fn code_form(Visit { state, ctx, jar }: Visit) -> Result<Response, PageError> {
    if !waiting_for_code(&state, &jar).await.on_page(ctx.lang)? {
        return Ok(Redirect::to(START).into_response());
    }
    Ok(code_page(&state, &ctx, jar, StatusCode::OK, None, None))
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

pub async fn code_submit(
    Visit { state, ctx, jar }: Visit,
    Form(f): Form<CodeForm>,
) -> Result<Response, Leave> {
    let token = posted_step(&state, &jar, &f.csrf, ctx.lang, START)?;
    let error = match state.app.verify_email_code(&token, &f.code, &ctx.req).await {
        Ok(new) => return Ok(onward(&state, jar, &new, "/account/2fa/enable")),
        Err(Error::Unauthenticated) => return Ok(restart(jar, START)),
        Err(Error::InvalidCode) => "secure_code_wrong",
        Err(Error::CodeExpired) => "secure_code_expired",
        Err(e) => return Err(PageError::from_domain(e, ctx.lang).into()),
    };
    let status = StatusCode::UNAUTHORIZED;
    Ok(code_page(
        &state,
        &ctx,
        jar,
        status,
        None,
        Some(ctx.lang.t(error)),
    ))
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub async fn code_resend(
    Visit { state, ctx, jar }: Visit,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, Leave> {
    let token = posted_step(&state, &jar, &f.csrf, ctx.lang, START)?;
    let (status, notice, error) = match state.app.resend_email_code(&token, &ctx.req).await {
        Ok(()) => (StatusCode::OK, Some("secure_code_resent"), None),
        Err(Error::Unauthenticated) => return Ok(restart(jar, START)),
        Err(Error::TooManyRequests) => (
            StatusCode::TOO_MANY_REQUESTS,
            None,
            Some("secure_code_limit"),
        ),
        Err(e) => return Err(PageError::from_domain(e, ctx.lang).into()),
    };
    let (notice, error) = (notice.map(|k| ctx.lang.t(k)), error.map(|k| ctx.lang.t(k)));
    Ok(code_page(&state, &ctx, jar, status, notice, error))
}

// ---- the mailed link to the personal QR page ------------------------------------------

/// The page for a link that cannot be used: what happened, and how to get a new one.
/// Errors other than those of the link are the error page.
fn link_problem(ctx: &Ctx, e: Error) -> Result<Response, PageError> {
    let (status, key) = match e {
        Error::LinkExpired => (StatusCode::GONE, "link_expired"),
        Error::LinkUsed => (StatusCode::GONE, "link_used"),
        Error::InvalidLink => (StatusCode::NOT_FOUND, "link_invalid"),
        e => return Err(PageError::from_domain(e, ctx.lang)),
    };
    let extra = minijinja::context! { message => ctx.lang.t(key), hint => true };
    Ok((status, page(ctx, "link_problem.html", "", false, extra)).into_response())
}

fn enroll_page(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    token: &str,
    email: &str,
    need_password: bool,
    error: Option<&str>,
) -> Response {
    let status = if error.is_some() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    let extra = minijinja::context! {
        action => format!("/enroll/{token}"), email => email, need_password => need_password, error => error,
    };
    form_page(state, ctx, jar, status, "enroll.html", extra)
}

pub async fn link_form(
    Visit { state, ctx, jar }: Visit,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let account = match state.app.enrollment_link_account(&token, &ctx.req).await {
        Ok(a) => a,
        Err(e) => return link_problem(&ctx, e),
    };
    let current = current_session(&state, &jar).await.on_page(ctx.lang)?;
    let same = current.is_some_and(|s| {
        s.account.id == account.id
            && matches!(
                s.session.stage,
                SessionStage::Authenticated | SessionStage::Enrollment
            )
    });
    let email = account.email.to_string();
    Ok(enroll_page(&state, &ctx, jar, &token, &email, !same, None))
}

#[derive(Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    csrf: String,
    password: Option<String>,
}

pub async fn link_submit(
    Visit { state, ctx, jar }: Visit,
    Path(token): Path<String>,
    Form(f): Form<LinkForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    let current = current_session(&state, &jar).await.on_page(ctx.lang)?;
    let opened = state
        .app
        .open_enrollment_link(&token, f.password.as_deref(), current.as_ref(), &ctx.req)
        .await;
    match opened {
        Ok(o) => {
            let jar = match &o.session {
                Some(t) => set_session(jar, t, state.settings.secure_cookies),
                None => jar,
            };
            let to = format!("/account/2fa/setup/{}", o.enrollment.factor_id);
            Ok((jar, Redirect::to(&to)).into_response())
        }
        Err(Error::WrongPassword) => {
            let email = match state.app.enrollment_link_account(&token, &ctx.req).await {
                Ok(a) => a.email.to_string(),
                Err(e) => return link_problem(&ctx, e),
            };
            let error = ctx.lang.t("wrong_password");
            Ok(enroll_page(
                &state,
                &ctx,
                jar,
                &token,
                &email,
                true,
                Some(error),
            ))
        }
        Err(Error::Unauthenticated) => {
            let extra = minijinja::context! { message => ctx.lang.t("enroll_sign_in_first") };
            let page = page(&ctx, "link_problem.html", "", false, extra);
            Ok((StatusCode::FORBIDDEN, page).into_response())
        }
        Err(e) => link_problem(&ctx, e),
    }
}
