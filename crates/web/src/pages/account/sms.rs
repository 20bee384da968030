//! Setting up a phone for SMS codes.

use super::{factor_id, recovery_codes_page, CodeForm};
use crate::error::{OnPage, PageError};
use crate::extract::{session_token, set_session, Ctx};
use crate::gate::{Enrolling, Page, SignedIn};
use crate::i18n::Lang;
use crate::pages::step::{checked, Leave};
use crate::pages::steps::{self, At, Via};
use crate::view::page;
use crate::AppState;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tweestap_domain::factor::FactorId;
use tweestap_domain::token::Token;
use tweestap_domain::Error;

/// The text for an SMS problem, as shown on the pages.
pub(crate) fn sms_error_key(e: &Error) -> &'static str {
    match e {
        Error::InvalidPhone("phone_not_mobile") => "sms_phone_not_mobile",
        Error::InvalidPhone(_) => "sms_phone_invalid",
        Error::SmsRefused(tweestap_domain::sms::SmsRefusal::CountryNotAllowed(_)) => {
            "sms_country_refused"
        }
        Error::SmsRefused(_) | Error::TooManyRequests => "sms_rate_limited",
        _ => "sms_unavailable",
    }
}

/// Where an SMS problem is shown, for what the text offers instead.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SmsWhere {
    /// The code step: the app (if the person has one) or a recovery code.
    SignIn { has_app: bool },
    /// Setting up a phone: an authenticator app instead.
    SetUp,
}

/// The text for an SMS that was not sent: what happened, when a new one can be
/// asked for (`free_in` seconds, while an hourly limit refuses), and what else
/// works for this person.
pub(crate) fn sms_problem_text(
    state: &AppState,
    lang: Lang,
    e: &Error,
    at: SmsWhere,
    free_in: Option<i64>,
) -> String {
    use tweestap_domain::sms::{SmsRefusal, SMS_SENDS_PER_SESSION};
    let meanwhile = match at {
        SmsWhere::SignIn { has_app: true } => "sms_meanwhile_app",
        SmsWhere::SignIn { has_app: false } => "sms_meanwhile_recovery",
        SmsWhere::SetUp => "sms_meanwhile_setup",
    };
    let when = |seconds: Option<i64>| match seconds {
        Some(s) => crate::pages::login::when(state, lang, s),
        None => lang.t("within_the_hour").to_owned(),
    };
    match e {
        Error::SmsRefused(SmsRefusal::CountryNotAllowed(_)) => {
            let codes = &state.app.sms_policy().allowed_calling_codes;
            lang.t("sms_country_only")
                .replace("{countries}", &countries(lang, codes))
        }
        Error::SmsRefused(SmsRefusal::GlobalLimit) | Error::SmsUnavailable => {
            format!("{} {}", lang.t("sms_unavailable"), lang.t(meanwhile))
        }
        Error::SmsRefused(_) => format!(
            "{} {} {}",
            lang.t("sms_rate_limited"),
            lang.t("sms_try_again_when")
                .replace("{when}", &when(free_in)),
            lang.t(meanwhile)
        ),
        Error::TooManyRequests => lang
            .t("sms_session_limit")
            .replace("{count}", &SMS_SENDS_PER_SESSION.to_string()),
        e => lang.t(sms_error_key(e)).to_owned(),
    }
}

/// "Belgian and Dutch": the countries SMS may go to, by calling code.
fn countries(lang: Lang, codes: &[u16]) -> String {
    let names: Vec<String> = codes
        .iter()
        .map(|c| match *c {
            31 | 32 => lang.t(&format!("sms_country_{c}")).to_owned(),
            c => format!("+{c}"),
        })
        .collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} {} {last}", rest.join(", "), lang.t("sms_countries_and")),
    }
}

/// The text for a number that cannot be used on the method page (`typed` is the
/// number as typed): no number, a number that is no mobile one, a country SMS does
/// not go to, a gateway that failed.
pub(crate) fn choice_problem_text(state: &AppState, lang: Lang, e: &Error, typed: &str) -> String {
    if typed.trim().is_empty() && matches!(e, Error::InvalidPhone(_)) {
        return lang.t("sms_phone_missing").to_owned();
    }
    sms_problem_text(state, lang, e, SmsWhere::SetUp, None)
}

/// The text for a phone number or an SMS that cannot be used while setting up a
/// phone (`typed` is the number as typed).
pub(crate) async fn setup_problem_text(
    state: &AppState,
    ctx: &Ctx,
    token: &Token,
    typed: &str,
    e: &Error,
) -> String {
    if typed.trim().is_empty() && matches!(e, Error::InvalidPhone(_)) {
        return ctx.lang.t("sms_phone_missing").to_owned();
    }
    let free_in = match e {
        Error::SmsRefused(_) => state
            .app
            .phone_sms_free_again_in(token, typed, &ctx.req)
            .await
            .ok()
            .flatten(),
        _ => None,
    };
    sms_problem_text(state, ctx.lang, e, SmsWhere::SetUp, free_in)
}

fn add_phone_page(
    ctx: &Ctx,
    csrf: &str,
    phone: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let extra = minijinja::context! { phone => phone, error => error };
    (status, page(ctx, "sms_add.html", csrf, true, extra)).into_response()
}

pub async fn add_phone_form(
    State(state): State<AppState>,
    ctx: Ctx,
    _: SignedIn<Page>,
    jar: CookieJar,
) -> Response {
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    (jar, add_phone_page(&ctx, &csrf, "", None, StatusCode::OK)).into_response()
}

#[derive(Deserialize)]
pub struct AddPhoneForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: zeroize::Zeroizing<String>,
    #[serde(default)]
    phone: String,
}

pub async fn add_phone_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    _: SignedIn<Page>,
    jar: CookieJar,
    Form(f): Form<AddPhoneForm>,
) -> Result<Response, Leave> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    let token = session_token(&jar).ok_or_else(|| Leave::To(Redirect::to("/login")))?;
    let error = match state
        .app
        .begin_sms(&token, &f.phone, Some(&f.password), &ctx.req)
        .await
    {
        Ok(s) => {
            let to = format!("/account/2fa/sms/{}", s.factor_id);
            return Ok(Redirect::to(&to).into_response());
        }
        Err(Error::WrongPassword) => (
            StatusCode::FORBIDDEN,
            ctx.lang.t("wrong_password").to_owned(),
        ),
        Err(e @ (Error::InvalidPhone(_) | Error::SmsRefused(_) | Error::SmsUnavailable)) => (
            StatusCode::BAD_REQUEST,
            setup_problem_text(&state, &ctx, &token, &f.phone, &e).await,
        ),
        Err(e) => return Err(PageError::from_domain(e, ctx.lang).into()),
    };
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let page = add_phone_page(&ctx, &csrf, f.phone.trim(), Some(&error.1), error.0);
    Ok((jar, page).into_response())
}

/// The phone being set up and the session it is set up under; without either, the
/// page is not found.
fn setup_of(raw: &str, jar: &CookieJar, ctx: &Ctx) -> Result<(FactorId, Token), PageError> {
    let id = factor_id(raw, ctx.lang)?;
    let token = session_token(jar)
        .ok_or(Error::NotFound)
        .on_page(ctx.lang)?;
    Ok((id, token))
}

async fn sms_code_page(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    id: FactorId,
    (notice, error): (Option<&str>, Option<&str>),
    status: StatusCode,
    via: &Via,
) -> Result<Response, PageError> {
    let Some(token) = session_token(&jar) else {
        return Ok(Redirect::to("/login").into_response());
    };
    let to = state
        .app
        .pending_sms_to(&token, id)
        .await
        .on_page(ctx.lang)?;
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let extra = minijinja::context! {
        to => to, action => format!("/account/2fa/sms/{id}{}", via.query()),
        resend => format!("/account/2fa/sms/{id}/resend{}", via.query()),
        notice => notice, error => error, steps => steps::bar(via.journey(), ctx.lang, At::Connect),
        // A limit refused the last SMS: "send again" waits too.
        resend_blocked => status == StatusCode::TOO_MANY_REQUESTS,
    };
    Ok((
        status,
        jar,
        page(ctx, "sms_setup.html", &csrf, false, extra),
    )
        .into_response())
}

pub async fn sms_setup_page(
    State(state): State<AppState>,
    ctx: Ctx,
    _: Enrolling<Page>,
    jar: CookieJar,
    Path(id): Path<String>,
    Query(via): Query<Via>,
) -> Result<Response, PageError> {
    let id = factor_id(&id, ctx.lang)?;
    sms_code_page(&state, &ctx, jar, id, (None, None), StatusCode::OK, &via).await
}

pub async fn sms_setup_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    _: Enrolling<Page>,
    jar: CookieJar,
    Path(id): Path<String>,
    Query(via): Query<Via>,
    Form(f): Form<CodeForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    let (id, token) = setup_of(&id, &jar, &ctx)?;
    match state.app.confirm_sms(&token, id, &f.code, &ctx.req).await {
        Ok(codes) => {
            let finished = state.app.finish_enrollment(&token, &ctx.req).await;
            let jar = match finished.on_page(ctx.lang)? {
                Some(new) => set_session(jar, &new, state.settings.secure_cookies),
                None => jar,
            };
            Ok(match codes {
                Some(codes) => recovery_codes_page(
                    &state,
                    &ctx,
                    jar,
                    &codes,
                    true,
                    steps::bar(via.journey(), ctx.lang, At::Codes),
                ),
                None => {
                    let to = super::after_enabling(&state, &jar);
                    (jar, Redirect::to(to)).into_response()
                }
            })
        }
        Err(Error::InvalidCode) => {
            let error = ctx.lang.t("sms_code_failed");
            sms_code_page(
                &state,
                &ctx,
                jar,
                id,
                (None, Some(error)),
                StatusCode::UNPROCESSABLE_ENTITY,
                &via,
            )
            .await
        }
        Err(e) => Err(PageError::from_domain(e, ctx.lang)),
    }
}

pub async fn sms_setup_resend(
    State(state): State<AppState>,
    ctx: Ctx,
    _: Enrolling<Page>,
    jar: CookieJar,
    Path(id): Path<String>,
    Query(via): Query<Via>,
    Form(f): Form<CodeForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    let (id, token) = setup_of(&id, &jar, &ctx)?;
    match state.app.resend_setup_sms(&token, id, &ctx.req).await {
        Ok(_) => {
            let notice = ctx.lang.t("sms_sent_again");
            let texts = (Some(notice), None);
            sms_code_page(&state, &ctx, jar, id, texts, StatusCode::OK, &via).await
        }
        Err(e @ (Error::SmsRefused(_) | Error::SmsUnavailable | Error::TooManyRequests)) => {
            let free_in = match e {
                Error::SmsRefused(_) => state
                    .app
                    .setup_sms_free_again_in(&token, id, &ctx.req)
                    .await
                    .ok()
                    .flatten(),
                _ => None,
            };
            let error = &sms_problem_text(&state, ctx.lang, &e, SmsWhere::SetUp, free_in);
            sms_code_page(
                &state,
                &ctx,
                jar,
                id,
                (None, Some(error)),
                StatusCode::TOO_MANY_REQUESTS,
                &via,
            )
            .await
        }
        Err(e) => Err(PageError::from_domain(e, ctx.lang)),
    }
}
