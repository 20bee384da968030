//! Setting up an authenticator app: the method, the password, the QR code and its first code.

use super::sms::choice_problem_text;
use super::{factor_id, recovery_codes_page, CodeForm};
use crate::error::{OnPage, PageError};
use crate::extract::{session_token, set_session, Ctx};
use crate::gate::{Enrolling, Page};
use crate::i18n::Lang;
use crate::pages::step::{checked, Leave};
use crate::pages::steps::{self, At, Journey, Via};
use crate::qr;
use crate::view::page;
use crate::AppState;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tweestap_domain::account::Account;
use tweestap_domain::service::TotpEnrollment;
use tweestap_domain::session::SessionStage;
use tweestap_domain::totp;
use tweestap_domain::Error;

pub async fn enable_form(
    State(state): State<AppState>,
    ctx: Ctx,
    Enrolling(info, _): Enrolling<Page>,
    jar: CookieJar,
    Query(via): Query<Via>,
) -> Response {
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    if info.session.stage != SessionStage::Enrollment {
        let first = first_factor(&state, &info.account).await;
        return (jar, enable_page(&ctx, &csrf, None, first)).into_response();
    }
    // The password (and, from "secure your account now", the address) was proven
    // moments ago: only the method is left to choose.
    let intro = if state.app.requirement(&info.account).is_required() {
        ctx.lang.t("enrollment_required_intro")
    } else {
        ctx.lang.t("choose_intro")
    };
    let journey = via.journey().unwrap_or(Journey::SignIn);
    let extra = minijinja::context! {
        intro => intro, sms_offered => state.app.sms_offered(), passkey_offered => state.app.passkeys_available(), via => journey.as_str(),
        steps => journey.bar(ctx.lang, At::Choose),
    };
    (jar, page(&ctx, "choose_method.html", &csrf, false, extra)).into_response()
}

/// Whether the account has no second factor yet (then setting one up is the
/// journey of the step bar, recovery codes included).
async fn first_factor(state: &AppState, account: &Account) -> bool {
    state
        .app
        .active_factors(account.id)
        .await
        .is_ok_and(|f| f.is_empty())
}

/// The method page again after the SMS could not be started: the choice and the
/// number kept, the problem said.
pub(crate) fn choose_again(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    e: &Error,
    phone: &str,
    journey: Journey,
) -> Response {
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let extra = minijinja::context! {
        intro => ctx.lang.t("choose_intro"), error => choice_problem_text(state, ctx.lang, e, phone), phone => phone.trim(),
        method => "sms", method_error => true, sms_offered => state.app.sms_offered(), passkey_offered => state.app.passkeys_available(),
        via => journey.as_str(), steps => journey.bar(ctx.lang, At::Choose),
    };
    let page = page(ctx, "choose_method.html", &csrf, false, extra);
    (StatusCode::BAD_REQUEST, jar, page).into_response()
}

/// My Profile's "enable": the password, then the QR link by mail (as in the manual)
/// or the QR code right here.
fn enable_page(ctx: &Ctx, csrf: &str, error: Option<&str>, first: bool) -> Response {
    let t = |k| ctx.lang.t(k);
    let journey = first.then_some(Journey::Profile);
    let extra = minijinja::context! {
        title => t("confirm_password_title"), intro => t("enable_intro"),
        action => format!("/account/2fa/enable{}", steps::query(journey)),
        error => error, mail_option => true, steps => steps::bar(journey, ctx.lang, At::Start),
    };
    let status = if error.is_some() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    (
        status,
        page(ctx, "confirm_password.html", csrf, true, extra),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct EnableForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: zeroize::Zeroizing<String>,
    /// `mail`: send the link to the QR page; anything else: show it here.
    delivery: Option<String>,
    /// The method chosen in an enrolment-only session: `totp` (default), `sms` or
    /// `passkey`.
    method: Option<String>,
    #[serde(default)]
    phone: String,
    /// The journey, from the method page's form.
    via: Option<String>,
}

pub async fn enable_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Enrolling(info, _): Enrolling<Page>,
    jar: CookieJar,
    Query(query): Query<Via>,
    Form(f): Form<EnableForm>,
) -> Result<Response, Leave> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    let via = Via {
        via: f.via.clone().or(query.via),
    };
    let journey = via.journey();
    if info.session.stage == SessionStage::Enrollment && f.method.as_deref() == Some("passkey") {
        let to = format!("/account/2fa/passkey{}", steps::query(journey));
        return Ok(Redirect::to(&to).into_response());
    }
    if info.session.stage == SessionStage::Enrollment && f.method.as_deref() == Some("sms") {
        let token = session_token(&jar).ok_or_else(|| Leave::To(Redirect::to("/login")))?;
        let r = match state.app.begin_sms(&token, &f.phone, None, &ctx.req).await {
            Ok(s) => {
                let to = format!("/account/2fa/sms/{}{}", s.factor_id, steps::query(journey));
                Redirect::to(&to).into_response()
            }
            Err(e @ (Error::InvalidPhone(_) | Error::SmsRefused(_) | Error::SmsUnavailable)) => {
                let journey = journey.unwrap_or(Journey::SignIn);
                choose_again(&state, &ctx, jar, &e, &f.phone, journey)
            }
            Err(e) => return Err(PageError::from_domain(e, ctx.lang).into()),
        };
        return Ok(r);
    }
    if info.session.stage == SessionStage::Enrollment {
        let e = state
            .app
            .begin_totp_in_enrollment(&info)
            .await
            .on_page(ctx.lang)?;
        let to = format!(
            "/account/2fa/setup/{}{}",
            e.factor_id,
            steps::query(journey)
        );
        return Ok(Redirect::to(&to).into_response());
    }
    let result = if f.delivery.as_deref() == Some("mail") {
        let base = state.base_url();
        match state
            .app
            .request_enrollment_link(&info.account, &f.password, &base, &ctx.req)
            .await
        {
            Ok(_) => {
                let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
                let extra = minijinja::context! {
                    email => info.account.email.as_str(),
                    days => state.app.link_days().to_string(),
                    steps => steps::bar(journey, ctx.lang, At::Mail),
                };
                let page = page(&ctx, "link_sent.html", &csrf, true, extra);
                return Ok((jar, page).into_response());
            }
            Err(e) => Err(e),
        }
    } else {
        state
            .app
            .begin_totp(&info.account, &f.password, &ctx.req)
            .await
            .map(|e| {
                let to = format!(
                    "/account/2fa/setup/{}{}",
                    e.factor_id,
                    steps::query(journey)
                );
                Redirect::to(&to).into_response()
            })
    };
    match result {
        Ok(r) => Ok(r),
        Err(Error::WrongPassword) => {
            let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
            let first = journey.is_some();
            let page = enable_page(&ctx, &csrf, Some(ctx.lang.t("wrong_password")), first);
            Ok((jar, page).into_response())
        }
        Err(e) => Err(PageError::from_domain(e, ctx.lang).into()),
    }
}

fn setup_response(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    e: &TotpEnrollment,
    error: Option<&str>,
    via: &Via,
) -> Result<Response, PageError> {
    let svg = qr::svg(&e.otpauth_uri).map_err(|err| {
        tracing::error!(error = %err, "QR rendering failed");
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "error_internal",
            ctx.lang,
        )
    })?;
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let extra = minijinja::context! {
        qr_svg => svg,
        png_url => format!("/account/2fa/setup/{}/qr.png", e.factor_id),
        key_grouped => totp::grouped(&e.secret_base32),
        otpauth_uri => &e.otpauth_uri,
        action => format!("/account/2fa/setup/{}{}", e.factor_id, via.query()),
        steps => steps::bar(via.journey(), ctx.lang, At::Connect),
        error => error,
        shared_mailbox => e.shared_mailbox,
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, jar, page(ctx, "setup.html", &csrf, true, extra)).into_response())
}

/// The app being set up at `raw` (the path's factor id).
async fn pending(
    state: &AppState,
    account: &Account,
    raw: &str,
    lang: Lang,
) -> Result<TotpEnrollment, PageError> {
    let id = factor_id(raw, lang)?;
    state.app.pending_totp(account, id).await.on_page(lang)
}

pub async fn setup_page(
    State(state): State<AppState>,
    ctx: Ctx,
    Enrolling(info, _): Enrolling<Page>,
    jar: CookieJar,
    Path(id): Path<String>,
    Query(via): Query<Via>,
) -> Result<Response, PageError> {
    let e = pending(&state, &info.account, &id, ctx.lang).await?;
    setup_response(&state, &ctx, jar, &e, None, &via)
}

pub async fn setup_png(
    State(state): State<AppState>,
    ctx: Ctx,
    Enrolling(info, _): Enrolling<Page>,
    _jar: CookieJar,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let e = pending(&state, &info.account, &id, ctx.lang).await?;
    Ok(match qr::png(&e.otpauth_uri) {
        Ok(png) => (
            [
                (header::CONTENT_TYPE, "image/png"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"tweestap-qr.png\"",
                ),
            ],
            png,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "QR rendering failed");
            PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "error_internal",
                ctx.lang,
            )
            .into_response()
        }
    })
}

pub async fn setup_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Enrolling(info, _): Enrolling<Page>,
    jar: CookieJar,
    Path(id): Path<String>,
    Query(via): Query<Via>,
    Form(f): Form<CodeForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    let id = factor_id(&id, ctx.lang)?;
    match state
        .app
        .confirm_totp(&info.account, id, &f.code, &ctx.req)
        .await
    {
        Ok(codes) => {
            // An enrolment-only session becomes a full one, under a new id.
            let finished = match session_token(&jar) {
                Some(t) => state.app.finish_enrollment(&t, &ctx.req).await,
                None => Ok(None),
            };
            let jar = match finished.on_page(ctx.lang)? {
                Some(new) => set_session(jar, &new, state.settings.secure_cookies),
                None => jar,
            };
            Ok(match codes {
                // The first factor: its recovery codes, shown this once.
                Some(codes) => {
                    let steps = steps::bar(via.journey(), ctx.lang, At::Codes);
                    recovery_codes_page(&state, &ctx, jar, &codes, true, steps)
                }
                None => {
                    let to = super::after_enabling(&state, &jar);
                    (jar, Redirect::to(to)).into_response()
                }
            })
        }
        Err(Error::InvalidCode) => {
            let e = state
                .app
                .pending_totp(&info.account, id)
                .await
                .on_page(ctx.lang)?;
            setup_response(
                &state,
                &ctx,
                jar,
                &e,
                Some(ctx.lang.t("setup_failed")),
                &via,
            )
        }
        // Too many wrong codes for this set-up: the page says when the next may go.
        Err(Error::TooManyAttempts { retry_after }) => {
            let pending = state.app.pending_totp(&info.account, id).await;
            let e = pending.on_page(ctx.lang)?;
            let when = crate::pages::login::when(&state, ctx.lang, retry_after);
            let text = ctx.lang.t("code_locked").replace("{when}", &when);
            setup_response(&state, &ctx, jar, &e, Some(&text), &via)
        }
        Err(e) => Err(PageError::from_domain(e, ctx.lang)),
    }
}
