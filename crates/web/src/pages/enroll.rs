//! The set-up journeys of the manuals: "secure your account now" from the sign-in
//! page (password, then a code mailed to the address), and the mailed link to the
//! personal QR page.

use super::account::{choice_problem_text, choose_again};
use super::step::{checked, form_page, fresh_start, onward, posted_step, restart, Leave, Visit};
use super::steps::{self, At, Journey};
use crate::error::{OnPage, PageError};
use crate::extract::{current_session, session_token, set_session, Ctx};
use crate::view::page;
use crate::AppState;
use axum::extract::{Form, Path};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tweestap_domain::service::SecureStart;
use tweestap_domain::session::SessionStage;
use tweestap_domain::token::Token;
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
    password: zeroize::Zeroizing<String>,
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
    let extra = minijinja::context! {
        email => email, error => error, steps => Journey::Secure.bar(ctx.lang, At::Start),
    };
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

/// The method chosen on a form (the mailed code's, the link's): `sms` or the app.
#[derive(Deserialize, Default)]
pub struct MethodChoice {
    #[serde(default)]
    method: String,
    #[serde(default)]
    phone: String,
}

impl MethodChoice {
    fn sms(&self, state: &AppState) -> bool {
        self.method == "sms" && state.app.sms_offered()
    }

    /// The form's values again, for a page shown once more.
    fn kept(&self) -> (&str, &str) {
        (
            if self.method == "sms" { "sms" } else { "totp" },
            self.phone.trim(),
        )
    }
}

fn code_page(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    status: StatusCode,
    (notice, error): (Option<&str>, Option<&str>),
    choice: &MethodChoice,
) -> Response {
    let (method, phone) = choice.kept();
    let extra = minijinja::context! {
        notice => notice, error => error, steps => Journey::Secure.bar(ctx.lang, At::Mail),
        sms_offered => state.app.sms_offered(), passkey_offered => state.app.passkeys_available(), method => method, phone => phone,
    };
    form_page(state, ctx, jar, status, "secure_code.html", extra)
}

/// The address is proven (or the link opened) in the enrolment-only session
/// `token`: on to the QR code, or to the SMS code; a number that does not work
/// leads back to the method page, with the reason.
async fn start_method(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    token: &Token,
    choice: &MethodChoice,
    journey: Journey,
) -> Result<Response, PageError> {
    let jar = set_session(jar, token, state.settings.secure_cookies);
    let via = steps::query(Some(journey));
    if choice.method == "passkey" {
        let to = format!("/account/2fa/passkey{via}");
        return Ok((jar, Redirect::to(&to)).into_response());
    }
    if choice.sms(state) {
        return Ok(
            match state
                .app
                .begin_sms(token, &choice.phone, None, &ctx.req)
                .await
            {
                Ok(s) => {
                    let to = format!("/account/2fa/sms/{}{via}", s.factor_id);
                    (jar, Redirect::to(&to)).into_response()
                }
                Err(
                    e @ (Error::InvalidPhone(_) | Error::SmsRefused(_) | Error::SmsUnavailable),
                ) => choose_again(state, ctx, jar, &e, &choice.phone, journey),
                Err(e) => return Err(PageError::from_domain(e, ctx.lang)),
            },
        );
    }
    let info = state
        .app
        .session(token)
        .await
        .on_page(ctx.lang)?
        .ok_or_else(|| PageError::from_domain(Error::Unauthenticated, ctx.lang))?;
    let e = state
        .app
        .begin_totp_in_enrollment(&info)
        .await
        .on_page(ctx.lang)?;
    let to = format!("/account/2fa/setup/{}{via}", e.factor_id);
    Ok((jar, Redirect::to(&to)).into_response())
}

pub async fn code_form(Visit { state, ctx, jar }: Visit) -> Result<Response, PageError> {
    if !waiting_for_code(&state, &jar).await.on_page(ctx.lang)? {
        return Ok(Redirect::to(START).into_response());
    }
    let none = MethodChoice::default();
    Ok(code_page(
        &state,
        &ctx,
        jar,
        StatusCode::OK,
        (None, None),
        &none,
    ))
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: zeroize::Zeroizing<String>,
    #[serde(flatten)]
    choice: MethodChoice,
}

pub async fn code_submit(
    Visit { state, ctx, jar }: Visit,
    Form(f): Form<CodeForm>,
) -> Result<Response, Leave> {
    let token = posted_step(&state, &jar, &f.csrf, ctx.lang, START)?;
    let error = match state.app.verify_email_code(&token, &f.code, &ctx.req).await {
        Ok(new) => {
            let page = start_method(&state, &ctx, jar, &new, &f.choice, Journey::Secure).await;
            return page.map_err(Leave::from);
        }
        Err(Error::Unauthenticated) => return Ok(restart(jar, START)),
        Err(Error::InvalidCode) => "secure_code_wrong",
        Err(Error::CodeExpired) => "secure_code_expired",
        Err(e) => return Err(PageError::from_domain(e, ctx.lang).into()),
    };
    let status = StatusCode::UNAUTHORIZED;
    let texts = (None, Some(ctx.lang.t(error)));
    Ok(code_page(&state, &ctx, jar, status, texts, &f.choice))
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
    let texts = (notice.map(|k| ctx.lang.t(k)), error.map(|k| ctx.lang.t(k)));
    let none = MethodChoice::default();
    Ok(code_page(&state, &ctx, jar, status, texts, &none))
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

struct LinkPage<'a> {
    token: &'a str,
    email: &'a str,
    need_password: bool,
    journey: Journey,
    error: Option<&'a str>,
    /// The error is about the phone number (not the password).
    method_error: bool,
    choice: &'a MethodChoice,
}

/// The link of someone whose two-step verification is already on (set up since the
/// mail was sent): nothing to set up here; sign in with the code, add more methods
/// on My profile.
fn already_on(ctx: &Ctx) -> Response {
    let extra = minijinja::context! {
        title => ctx.lang.t("enroll_already_on_title"),
        message => ctx.lang.t("enroll_sign_in_first"), notice => true,
    };
    let page = page(ctx, "link_problem.html", "", false, extra);
    (StatusCode::FORBIDDEN, page).into_response()
}

fn enroll_page(state: &AppState, ctx: &Ctx, jar: CookieJar, p: LinkPage<'_>) -> Response {
    let status = match (p.error, p.method_error) {
        (None, _) => StatusCode::OK,
        (Some(_), true) => StatusCode::BAD_REQUEST,
        (Some(_), false) => StatusCode::FORBIDDEN,
    };
    let (method, phone) = p.choice.kept();
    let extra = minijinja::context! {
        action => format!("/enroll/{}", p.token), email => p.email, need_password => p.need_password,
        error => p.error, method_error => p.method_error, sms_offered => state.app.sms_offered(), passkey_offered => state.app.passkeys_available(),
        method => method, phone => phone, steps => p.journey.bar(ctx.lang, At::Choose),
    };
    form_page(state, ctx, jar, status, "enroll.html", extra)
}

/// The journey of a link (a support reset's unless it came from My Profile).
async fn link_journey(state: &AppState, token: &str) -> Journey {
    match state.app.enrollment_link_purpose(token).await {
        Ok(Some(p)) => Journey::of_link(p),
        _ => Journey::Link,
    }
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
    // Two-step verification is already on, and this browser is not signed in as its
    // owner: the link has nothing left to set up. Say so, and how to go on.
    if !same
        && !state
            .app
            .active_methods(account.id)
            .await
            .on_page(ctx.lang)?
            .is_empty()
    {
        return Ok(already_on(&ctx));
    }
    let email = account.email.to_string();
    let journey = link_journey(&state, &token).await;
    let page = LinkPage {
        token: &token,
        email: &email,
        need_password: !same,
        journey,
        error: None,
        method_error: false,
        choice: &MethodChoice::default(),
    };
    Ok(enroll_page(&state, &ctx, jar, page))
}

#[derive(Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    csrf: String,
    password: Option<zeroize::Zeroizing<String>>,
    #[serde(flatten)]
    choice: MethodChoice,
}

pub async fn link_submit(
    Visit { state, ctx, jar }: Visit,
    Path(token): Path<String>,
    Form(f): Form<LinkForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    let current = current_session(&state, &jar).await.on_page(ctx.lang)?;
    // Asked before the link is used: afterwards it has no journey any more.
    let journey = link_journey(&state, &token).await;
    let via = steps::query(Some(journey));
    let password = f.password.as_deref().map(String::as_str);
    let error = if f.choice.sms(&state) {
        let current_token = session_token(&jar);
        let opened = state
            .app
            .open_enrollment_link_sms(
                &token,
                password,
                current.as_ref(),
                current_token.as_ref(),
                &f.choice.phone,
                &ctx.req,
            )
            .await;
        match opened {
            Ok((session, setup)) => {
                let jar = match &session {
                    Some(t) => set_session(jar, t, state.settings.secure_cookies),
                    None => jar,
                };
                return match setup {
                    Ok(s) => {
                        let to = format!("/account/2fa/sms/{}{via}", s.factor_id);
                        Ok((jar, Redirect::to(&to)).into_response())
                    }
                    Err(
                        e @ (Error::InvalidPhone(_) | Error::SmsRefused(_) | Error::SmsUnavailable),
                    ) => Ok(choose_again(
                        &state,
                        &ctx,
                        jar,
                        &e,
                        &f.choice.phone,
                        journey,
                    )),
                    Err(e) => Err(PageError::from_domain(e, ctx.lang)),
                };
            }
            Err(e) => e,
        }
    } else {
        match state
            .app
            .open_enrollment_link(&token, password, current.as_ref(), &ctx.req)
            .await
        {
            Ok(o) => {
                let jar = match &o.session {
                    Some(t) => set_session(jar, t, state.settings.secure_cookies),
                    None => jar,
                };
                let to = format!("/account/2fa/setup/{}{via}", o.enrollment.factor_id);
                return Ok((jar, Redirect::to(&to)).into_response());
            }
            Err(e) => e,
        }
    };
    let (message, method_error) = match &error {
        Error::WrongPassword => (ctx.lang.t("wrong_password").to_owned(), false),
        // Named as on the first set-up's method page: which countries SMS goes to.
        e @ (Error::InvalidPhone(_) | Error::SmsRefused(_) | Error::SmsUnavailable) => (
            choice_problem_text(&state, ctx.lang, e, &f.choice.phone),
            true,
        ),
        Error::Unauthenticated => {
            return Ok(already_on(&ctx));
        }
        _ => return link_problem(&ctx, error),
    };
    let email = match state.app.enrollment_link_account(&token, &ctx.req).await {
        Ok(a) => a.email.to_string(),
        Err(e) => return link_problem(&ctx, e),
    };
    let same = current.is_some_and(|s| {
        s.account.email.as_str() == email
            && matches!(
                s.session.stage,
                SessionStage::Authenticated | SessionStage::Enrollment
            )
    });
    let page = LinkPage {
        token: &token,
        email: &email,
        need_password: !same,
        journey,
        error: Some(&message),
        method_error,
        choice: &f.choice,
    };
    Ok(enroll_page(&state, &ctx, jar, page))
}
