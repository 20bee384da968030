//! Setting up an authenticator app: the method, the password, the QR code and its first code.

use super::sms::sms_error_key;
use super::{factor_id, recovery_codes_page, CodeForm};
use crate::error::{OnPage, PageError};
use crate::extract::{session_token, set_session, Ctx};
use crate::gate::{Enrolling, Page};
use crate::i18n::Lang;
use crate::pages::step::{checked, Leave};
use crate::qr;
use crate::view::page;
use crate::AppState;
use axum::extract::{Form, Path, State};
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
) -> Response {
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    if info.session.stage != SessionStage::Enrollment {
        return (jar, enable_page(&ctx, &csrf, None)).into_response();
    }
    // The password (and, from "secure your account now", the address) was proven
    // moments ago: only the method is left to choose.
    let intro = if state.app.requirement(&info.account).is_required() {
        ctx.lang.t("enrollment_required_intro")
    } else {
        ctx.lang.t("choose_intro")
    };
    let extra = minijinja::context! { intro => intro };
    (jar, page(&ctx, "choose_method.html", &csrf, false, extra)).into_response()
}

/// My Profile's "enable": the password, then the QR link by mail (as in the manual)
/// or the QR code right here.
fn enable_page(ctx: &Ctx, csrf: &str, error: Option<&str>) -> Response {
    let t = |k| ctx.lang.t(k);
    let extra = minijinja::context! {
        title => t("confirm_password_title"), intro => t("enable_intro"), action => "/account/2fa/enable",
        error => error, mail_option => true,
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
    password: String,
    /// `mail`: send the link to the QR page; anything else: show it here.
    delivery: Option<String>,
    /// The method chosen in an enrolment-only session: `totp` (default) or `sms`.
    method: Option<String>,
    #[serde(default)]
    phone: String,
}

pub async fn enable_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Enrolling(info, _): Enrolling<Page>,
    jar: CookieJar,
    Form(f): Form<EnableForm>,
) -> Result<Response, Leave> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    if info.session.stage == SessionStage::Enrollment && f.method.as_deref() == Some("sms") {
        let token = session_token(&jar).ok_or_else(|| Leave::To(Redirect::to("/login")))?;
        let r = match state.app.begin_sms(&token, &f.phone, None, &ctx.req).await {
            Ok(s) => Redirect::to(&format!("/account/2fa/sms/{}", s.factor_id)).into_response(),
            Err(e @ (Error::InvalidPhone(_) | Error::SmsRefused(_) | Error::SmsUnavailable)) => {
                let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
                let extra = minijinja::context! {
                    intro => ctx.lang.t("choose_intro"), error => ctx.lang.t(sms_error_key(&e)), phone => f.phone.trim(),
                };
                let page = page(&ctx, "choose_method.html", &csrf, false, extra);
                (StatusCode::BAD_REQUEST, jar, page).into_response()
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
        return Ok(Redirect::to(&format!("/account/2fa/setup/{}", e.factor_id)).into_response());
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
            .map(|e| Redirect::to(&format!("/account/2fa/setup/{}", e.factor_id)).into_response())
    };
    match result {
        Ok(r) => Ok(r),
        Err(Error::WrongPassword) => {
            let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
            let page = enable_page(&ctx, &csrf, Some(ctx.lang.t("wrong_password")));
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
        action => format!("/account/2fa/setup/{}", e.factor_id),
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
) -> Result<Response, PageError> {
    let e = pending(&state, &info.account, &id, ctx.lang).await?;
    setup_response(&state, &ctx, jar, &e, None)
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
                Some(codes) => recovery_codes_page(&state, &ctx, jar, &codes, true),
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
            setup_response(&state, &ctx, jar, &e, Some(ctx.lang.t("setup_failed")))
        }
        Err(e) => Err(PageError::from_domain(e, ctx.lang)),
    }
}
