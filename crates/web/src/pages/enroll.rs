//! The set-up journeys of the manuals: "secure your account now" from the sign-in
//! page (password, then a code mailed to the address), and the mailed link to the
//! personal QR page.

use super::csrf_failed;
use crate::error::{OnPage, PageError};
use crate::extract::{
    clear_session, current_session, discard_current_session, session_token, set_session, Ctx,
};
use crate::view::page;
use crate::AppState;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tweestap_domain::service::SecureStart;
use tweestap_domain::session::SessionStage;
use tweestap_domain::Error;

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
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let extra = minijinja::context! { email => email, error => error };
    (status, jar, page(ctx, "secure.html", &csrf, false, extra)).into_response()
}

pub async fn secure_form(State(state): State<AppState>, ctx: Ctx, jar: CookieJar) -> Response {
    secure_page(&state, &ctx, jar, "", None)
}

pub async fn secure_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Form(f): Form<SecureForm>,
) -> Result<Response, PageError> {
    if !state.csrf.verify(&jar, &f.csrf) {
        return Ok(csrf_failed(ctx.lang));
    }
    discard_current_session(&state, &jar)
        .await
        .on_page(ctx.lang)?;
    let secure = state.settings.secure_cookies;
    Ok(
        match state
            .app
            .secure_account_start(&f.email, &f.password, &ctx.req)
            .await
        {
            Ok(SecureStart::CodeSent(token)) => (
                set_session(jar, &token, secure),
                Redirect::to("/secure/code"),
            )
                .into_response(),
            Ok(SecureStart::SecondFactor { token, .. }) => (
                set_session(jar, &token, secure),
                Redirect::to("/login/code?from=secure"),
            )
                .into_response(),
            Err(Error::InvalidCredentials) => secure_page(
                &state,
                &ctx,
                jar,
                f.email.trim(),
                Some(ctx.lang.t("login_failed")),
            ),
            Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
        },
    )
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
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let extra = minijinja::context! { notice => notice, error => error };
    (
        status,
        jar,
        page(ctx, "secure_code.html", &csrf, false, extra),
    )
        .into_response()
}

pub async fn code_form(State(state): State<AppState>, ctx: Ctx, jar: CookieJar) -> Response {
    match waiting_for_code(&state, &jar).await {
        Ok(true) => code_page(&state, &ctx, jar, StatusCode::OK, None, None),
        Ok(false) => Redirect::to("/secure").into_response(),
        Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

pub async fn code_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Form(f): Form<CodeForm>,
) -> Response {
    if !state.csrf.verify(&jar, &f.csrf) {
        return csrf_failed(ctx.lang);
    }
    let Some(token) = session_token(&jar) else {
        return Redirect::to("/secure").into_response();
    };
    let error = match state.app.verify_email_code(&token, &f.code, &ctx.req).await {
        Ok(new) => {
            let jar = set_session(jar, &new, state.settings.secure_cookies);
            return (jar, Redirect::to("/account/2fa/enable")).into_response();
        }
        Err(Error::Unauthenticated) => {
            return (clear_session(jar), Redirect::to("/secure")).into_response()
        }
        Err(Error::InvalidCode) => "secure_code_wrong",
        Err(Error::CodeExpired) => "secure_code_expired",
        Err(e) => return PageError::from_domain(e, ctx.lang).into_response(),
    };
    let status = StatusCode::UNAUTHORIZED;
    code_page(&state, &ctx, jar, status, None, Some(ctx.lang.t(error)))
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub async fn code_resend(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if !state.csrf.verify(&jar, &f.csrf) {
        return csrf_failed(ctx.lang);
    }
    let Some(token) = session_token(&jar) else {
        return Redirect::to("/secure").into_response();
    };
    match state.app.resend_email_code(&token, &ctx.req).await {
        Ok(()) => {
            let notice = ctx.lang.t("secure_code_resent");
            code_page(&state, &ctx, jar, StatusCode::OK, Some(notice), None)
        }
        Err(Error::Unauthenticated) => {
            (clear_session(jar), Redirect::to("/secure")).into_response()
        }
        Err(Error::TooManyRequests) => {
            let error = ctx.lang.t("secure_code_limit");
            let status = StatusCode::TOO_MANY_REQUESTS;
            code_page(&state, &ctx, jar, status, None, Some(error))
        }
        Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
    }
}

// ---- the mailed link to the personal QR page ------------------------------------------

/// The page for a link that cannot be used: what happened, and how to get a new one.
fn link_problem(ctx: &Ctx, e: Error) -> Response {
    let (status, key) = match e {
        Error::LinkExpired => (StatusCode::GONE, "link_expired"),
        Error::LinkUsed => (StatusCode::GONE, "link_used"),
        Error::InvalidLink => (StatusCode::NOT_FOUND, "link_invalid"),
        e => return PageError::from_domain(e, ctx.lang).into_response(),
    };
    let extra = minijinja::context! { message => ctx.lang.t(key), hint => true };
    (status, page(ctx, "link_problem.html", "", false, extra)).into_response()
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
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let status = if error.is_some() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    let extra = minijinja::context! {
        action => format!("/enroll/{token}"), email => email, need_password => need_password, error => error,
    };
    (status, jar, page(ctx, "enroll.html", &csrf, false, extra)).into_response()
}

pub async fn link_form(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let account = match state.app.enrollment_link_account(&token, &ctx.req).await {
        Ok(a) => a,
        Err(e) => return Ok(link_problem(&ctx, e)),
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
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(token): Path<String>,
    Form(f): Form<LinkForm>,
) -> Result<Response, PageError> {
    if !state.csrf.verify(&jar, &f.csrf) {
        return Ok(csrf_failed(ctx.lang));
    }
    let current = current_session(&state, &jar).await.on_page(ctx.lang)?;
    let opened = state
        .app
        .open_enrollment_link(&token, f.password.as_deref(), current.as_ref(), &ctx.req)
        .await;
    Ok(match opened {
        Ok(o) => {
            let jar = match &o.session {
                Some(t) => set_session(jar, t, state.settings.secure_cookies),
                None => jar,
            };
            let to = format!("/account/2fa/setup/{}", o.enrollment.factor_id);
            (jar, Redirect::to(&to)).into_response()
        }
        Err(Error::WrongPassword) => {
            let email = match state.app.enrollment_link_account(&token, &ctx.req).await {
                Ok(a) => a.email.to_string(),
                Err(e) => return Ok(link_problem(&ctx, e)),
            };
            let error = ctx.lang.t("wrong_password");
            enroll_page(&state, &ctx, jar, &token, &email, true, Some(error))
        }
        Err(Error::Unauthenticated) => {
            let extra = minijinja::context! { message => ctx.lang.t("enroll_sign_in_first") };
            let page = page(&ctx, "link_problem.html", "", false, extra);
            (StatusCode::FORBIDDEN, page).into_response()
        }
        Err(e) => link_problem(&ctx, e),
    })
}
