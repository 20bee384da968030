//! Sign-in pages: password, then code.

use super::csrf_failed;
use crate::error::{OnPage, PageError};
use crate::extract::{
    clear_session, current_session, device_token, discard_current_session, session_token,
    set_device, set_session, Ctx,
};
use crate::view::page;
use crate::AppState;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tweestap_domain::factor::FactorKind;
use tweestap_domain::service::LoginOutcome;
use tweestap_domain::session::SessionStage;
use tweestap_domain::Error;

#[derive(Deserialize)]
pub struct LoginQuery {
    /// Where to go after signing in (forward-auth); followed only to allowed hosts.
    rd: Option<String>,
    /// From an OIDC authorization request: prefills the address.
    login_hint: Option<String>,
    /// `login`: an OIDC client wants a fresh sign-in, even when signed in.
    prompt: Option<String>,
}

pub async fn form(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Query(q): Query<LoginQuery>,
) -> Response {
    let jar = crate::forward_auth::remember_return(&state, jar, q.rd.as_deref());
    let fresh = q.prompt.as_deref() == Some("login");
    if let (false, Ok(Some(s))) = (fresh, current_session(&state, &jar).await) {
        if s.session.stage == SessionStage::Authenticated {
            // "/" follows a pending return URL.
            return (jar, Redirect::to("/")).into_response();
        }
    }
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    (
        jar,
        page(
            &ctx,
            "login.html",
            &csrf,
            false,
            minijinja::context! { email => q.login_hint.as_deref().unwrap_or_default() },
        ),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn submit(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Form(f): Form<LoginForm>,
) -> Result<Response, PageError> {
    if !state.csrf.verify(&jar, &f.csrf) {
        return Ok(csrf_failed(ctx.lang));
    }
    discard_current_session(&state, &jar)
        .await
        .on_page(ctx.lang)?;
    let secure = state.settings.secure_cookies;
    let device = device_token(&jar);
    Ok(
        match state
            .app
            .login_from(&f.email, &f.password, device.as_deref(), &ctx.req)
            .await
        {
            Ok(LoginOutcome::Authenticated(token)) => {
                (set_session(jar, &token, secure), Redirect::to("/")).into_response()
            }
            Ok(LoginOutcome::EnrollmentRequired(token)) => (
                set_session(jar, &token, secure),
                Redirect::to("/account/2fa/enable"),
            )
                .into_response(),
            Ok(LoginOutcome::SecondFactor { token, .. }) => (
                set_session(jar, &token, secure),
                Redirect::to("/login/code"),
            )
                .into_response(),
            Err(Error::InvalidCredentials) => {
                let (jar, csrf) = state.csrf.token(jar, secure);
                let extra = minijinja::context! { email => f.email.trim(), error => ctx.lang.t("login_failed") };
                (
                    StatusCode::UNAUTHORIZED,
                    jar,
                    page(&ctx, "login.html", &csrf, false, extra),
                )
                    .into_response()
            }
            Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
        },
    )
}

/// The half-finished sign-in (password right, code still due) of this browser.
async fn pending(
    state: &AppState,
    jar: &CookieJar,
) -> Option<tweestap_domain::service::SessionInfo> {
    current_session(state, jar)
        .await
        .ok()
        .flatten()
        .filter(|s| s.session.stage == SessionStage::SecondFactor)
}

#[derive(Deserialize)]
pub struct CodeQuery {
    from: Option<String>,
}

pub async fn code_form(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Query(q): Query<CodeQuery>,
) -> Result<Response, PageError> {
    let Some(info) = pending(&state, &jar).await else {
        return Ok(Redirect::to("/login").into_response());
    };
    // Came through "secure your account now" with two-step verification already on.
    let notice =
        (q.from.as_deref() == Some("secure")).then(|| ctx.lang.t("secure_has_factor").to_owned());
    let methods = state
        .app
        .active_methods(info.account.id)
        .await
        .on_page(ctx.lang)?;
    Ok(code_page(
        &state,
        &ctx,
        jar,
        &methods,
        StatusCode::OK,
        notice,
        None,
    ))
}

/// The methods of the account whose code is due (none when the sign-in has ended).
async fn methods_of(state: &AppState, jar: &CookieJar) -> Vec<FactorKind> {
    match pending(state, jar).await {
        Some(info) => state
            .app
            .active_methods(info.account.id)
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    }
}

/// The code step, offering the methods the account has (the app's code, an SMS).
fn code_page(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    methods: &[FactorKind],
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let has = |k| methods.contains(&k);
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let extra = minijinja::context! {
        notice => notice, error => error, remember_days => remember_days(state),
        app => has(FactorKind::Totp), sms => has(FactorKind::Sms),
    };
    (status, jar, page(ctx, "code.html", &csrf, false, extra)).into_response()
}

pub async fn send_sms(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Form(f): Form<CodeForm>,
) -> Response {
    if !state.csrf.verify(&jar, &f.csrf) {
        return csrf_failed(ctx.lang);
    }
    let Some(token) = session_token(&jar) else {
        return Redirect::to("/login").into_response();
    };
    match state.app.send_sign_in_sms(&token, &ctx.req).await {
        Ok(to) => {
            let notice = ctx.lang.t("sms_sent_to").replace("{to}", &to);
            let methods = methods_of(&state, &jar).await;
            code_page(
                &state,
                &ctx,
                jar,
                &methods,
                StatusCode::OK,
                Some(notice),
                None,
            )
        }
        Err(Error::Unauthenticated) => (clear_session(jar), Redirect::to("/login")).into_response(),
        Err(e @ (Error::SmsRefused(_) | Error::SmsUnavailable | Error::TooManyRequests)) => {
            let status = if matches!(e, Error::SmsUnavailable) {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::TOO_MANY_REQUESTS
            };
            let error = ctx.lang.t(super::account::sms_error_key(&e)).to_owned();
            let methods = methods_of(&state, &jar).await;
            code_page(&state, &ctx, jar, &methods, status, None, Some(error))
        }
        Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    /// "Remember this device" checked.
    remember: Option<String>,
}

fn remember_days(state: &AppState) -> i64 {
    state.app.settings().remember_device.num_days().max(1)
}

/// After a passed code step: the session cookie, and the device cookie when asked.
async fn signed_in_response(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    new: &tweestap_domain::token::Token,
    remember: bool,
) -> Response {
    let secure = state.settings.secure_cookies;
    let mut jar = set_session(jar, new, secure);
    if remember {
        match state.app.remember_device(new, &ctx.req).await {
            Ok(device) => jar = set_device(jar, &device, secure, remember_days(state)),
            Err(e) => return PageError::from_domain(e, ctx.lang).into_response(),
        }
    }
    (jar, Redirect::to("/")).into_response()
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
        return Redirect::to("/login").into_response();
    };
    let (status, error) = match state
        .app
        .verify_second_factor(&token, &f.code, &ctx.req)
        .await
    {
        Ok(new) => {
            let remember = f.remember.is_some();
            return signed_in_response(&state, &ctx, jar, &new, remember).await;
        }
        Err(Error::Unauthenticated) => {
            return (clear_session(jar), Redirect::to("/login")).into_response()
        }
        Err(Error::InvalidCode) => (
            StatusCode::UNAUTHORIZED,
            ctx.lang.t("code_failed").to_owned(),
        ),
        Err(Error::TooManyAttempts { retry_after }) => (
            StatusCode::TOO_MANY_REQUESTS,
            ctx.lang
                .t("code_locked")
                .replace("{seconds}", &retry_after.to_string()),
        ),
        Err(e) => return PageError::from_domain(e, ctx.lang).into_response(),
    };
    let methods = methods_of(&state, &jar).await;
    code_page(&state, &ctx, jar, &methods, status, None, Some(error))
}

pub async fn recovery_form(State(state): State<AppState>, ctx: Ctx, jar: CookieJar) -> Response {
    if pending(&state, &jar).await.is_none() {
        return Redirect::to("/login").into_response();
    }
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let page = page(&ctx, "recovery.html", &csrf, false, minijinja::context! {});
    (jar, page).into_response()
}

pub async fn recovery_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Form(f): Form<CodeForm>,
) -> Response {
    if !state.csrf.verify(&jar, &f.csrf) {
        return csrf_failed(ctx.lang);
    }
    let Some(token) = session_token(&jar) else {
        return Redirect::to("/login").into_response();
    };
    let (status, error) = match state
        .app
        .verify_recovery_code(&token, &f.code, &ctx.req)
        .await
    {
        Ok(new) => return signed_in_response(&state, &ctx, jar, &new, false).await,
        Err(Error::Unauthenticated) => {
            return (clear_session(jar), Redirect::to("/login")).into_response()
        }
        Err(Error::InvalidCode) => (
            StatusCode::UNAUTHORIZED,
            ctx.lang.t("recovery_failed").to_owned(),
        ),
        Err(Error::TooManyAttempts { retry_after }) => (
            StatusCode::TOO_MANY_REQUESTS,
            ctx.lang
                .t("code_locked")
                .replace("{seconds}", &retry_after.to_string()),
        ),
        Err(e) => return PageError::from_domain(e, ctx.lang).into_response(),
    };
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let page = page(
        &ctx,
        "recovery.html",
        &csrf,
        false,
        minijinja::context! { error => error },
    );
    (status, jar, page).into_response()
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Form(f): Form<LogoutForm>,
) -> Result<Response, PageError> {
    if !state.csrf.verify(&jar, &f.csrf) {
        return Ok(csrf_failed(ctx.lang));
    }
    if let Some(token) = session_token(&jar) {
        state.app.logout(&token, &ctx.req).await.on_page(ctx.lang)?;
    }
    Ok((clear_session(jar), Redirect::to("/login")).into_response())
}
