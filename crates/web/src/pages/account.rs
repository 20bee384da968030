//! My Profile and setting up or removing an authenticator app.

use super::{csrf_failed, render, require_signed_in, require_signed_in_or_enrolling};
use crate::error::PageError;
use crate::extract::{session_token, set_session, Ctx};
use crate::qr;
use crate::AppState;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};
use tweestap_domain::factor::FactorId;
use tweestap_domain::session::SessionStage;
use tweestap_domain::totp;
use tweestap_domain::Error;
use uuid::Uuid;

#[derive(Serialize)]
struct FactorRow {
    id: String,
    created: String,
    last_used: Option<String>,
}

#[derive(Deserialize)]
pub struct ProfileQuery {
    done: Option<String>,
}

/// The set-up pages also serve a session that may only set up two-step verification.
macro_rules! enrolling {
    ($state:expr, $jar:expr, $ctx:expr) => {
        match require_signed_in_or_enrolling(&$state, &$jar, $ctx.lang).await {
            Ok(i) => i,
            Err(r) => return r,
        }
    };
}

macro_rules! signed_in {
    ($state:expr, $jar:expr, $ctx:expr) => {
        match require_signed_in(&$state, &$jar, $ctx.lang).await {
            Ok(i) => i,
            Err(r) => return r,
        }
    };
}

pub async fn profile(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Query(q): Query<ProfileQuery>,
) -> Response {
    let info = signed_in!(state, jar, ctx);
    let factors = match state.app.active_factors(info.account.id).await {
        Ok(f) => f,
        Err(e) => return PageError::from_domain(e, ctx.lang).into_response(),
    };
    let rows: Vec<FactorRow> = factors
        .iter()
        .map(|f| FactorRow {
            id: f.id.to_string(),
            created: f.created_at.format("%Y-%m-%d").to_string(),
            last_used: f
                .last_used_at
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
        })
        .collect();
    let notice = match q.done.as_deref() {
        Some("enabled") => Some(ctx.lang.t("twofa_enabled_now")),
        Some("removed") => Some(ctx.lang.t("factor_removed")),
        _ => None,
    };
    let banner = super::deadline_banner(&state, &info, &jar, Some(&factors)).await;
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let a = &info.account;
    let extra = minijinja::context! {
        banner => banner,
        email => a.email.as_str(), name => &a.name, role => ctx.lang.t(&format!("role_{}", a.role.as_str())), factors => rows, notice => notice,
    };
    (jar, render(&ctx, "account.html", &csrf, true, extra)).into_response()
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

fn password_page(
    ctx: &Ctx,
    csrf: &str,
    action: String,
    remove: bool,
    error: Option<&str>,
) -> Response {
    let t = |k| ctx.lang.t(k);
    let extra = if remove {
        minijinja::context! { title => t("factor_remove"), intro => t("remove_intro"), button => t("factor_remove"), action => action, error => error }
    } else {
        minijinja::context! { title => t("confirm_password_title"), intro => t("confirm_password_intro"), button => t("confirm_password_button"), action => action, error => error }
    };
    let status = if error.is_some() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    (
        status,
        render(ctx, "confirm_password.html", csrf, true, extra),
    )
        .into_response()
}

pub async fn enable_form(State(state): State<AppState>, ctx: Ctx, jar: CookieJar) -> Response {
    let info = enrolling!(state, jar, ctx);
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    if info.session.stage == SessionStage::Enrollment {
        // The password (and, from "secure your account now", the address) was proven
        // moments ago: only the method is left to choose.
        let intro = if state.app.requirement(&info.account).is_required() {
            ctx.lang.t("enrollment_required_intro")
        } else {
            ctx.lang.t("choose_intro")
        };
        let extra = minijinja::context! { intro => intro };
        return (jar, render(&ctx, "choose_method.html", &csrf, false, extra)).into_response();
    }
    (jar, enable_page(&ctx, &csrf, None)).into_response()
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
        render(ctx, "confirm_password.html", csrf, true, extra),
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
}

pub async fn enable_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Form(f): Form<EnableForm>,
) -> Response {
    if !state.csrf.verify(&jar, &f.csrf) {
        return csrf_failed(ctx.lang);
    }
    let info = enrolling!(state, jar, ctx);
    if info.session.stage == SessionStage::Enrollment {
        return match state.app.begin_totp_in_enrollment(&info).await {
            Ok(e) => Redirect::to(&format!("/account/2fa/setup/{}", e.factor_id)).into_response(),
            Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
        };
    }
    let result = if f.delivery.as_deref() == Some("mail") {
        let base = super::base_url(&state);
        match state
            .app
            .request_enrollment_link(&info.account, &f.password, &base, &ctx.req)
            .await
        {
            Ok(_) => {
                let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
                let extra = minijinja::context! {
                    email => info.account.email.as_str(),
                    days => state.app.settings().enrollment_link_validity.num_days().max(1).to_string(),
                };
                return (jar, render(&ctx, "link_sent.html", &csrf, true, extra)).into_response();
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
        Ok(r) => r,
        Err(Error::WrongPassword) => {
            let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
            let page = enable_page(&ctx, &csrf, Some(ctx.lang.t("wrong_password")));
            (jar, page).into_response()
        }
        Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
    }
}

fn factor_id(raw: &str) -> Option<FactorId> {
    Uuid::parse_str(raw).ok().map(FactorId)
}

fn setup_response(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    e: &tweestap_domain::service::TotpEnrollment,
    error: Option<&str>,
) -> Response {
    let svg = match qr::svg(&e.otpauth_uri) {
        Ok(s) => s,
        Err(err) => {
            tracing::error!(error = %err, "QR rendering failed");
            return PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "error_internal",
                ctx.lang,
            )
            .into_response();
        }
    };
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
    (status, jar, render(ctx, "setup.html", &csrf, true, extra)).into_response()
}

pub async fn setup_page(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
) -> Response {
    let info = enrolling!(state, jar, ctx);
    let Some(id) = factor_id(&id) else {
        return PageError::from_domain(Error::NotFound, ctx.lang).into_response();
    };
    match state.app.pending_totp(&info.account, id).await {
        Ok(e) => setup_response(&state, &ctx, jar, &e, None),
        Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
    }
}

pub async fn setup_png(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
) -> Response {
    let info = enrolling!(state, jar, ctx);
    let Some(id) = factor_id(&id) else {
        return PageError::from_domain(Error::NotFound, ctx.lang).into_response();
    };
    let e = match state.app.pending_totp(&info.account, id).await {
        Ok(e) => e,
        Err(e) => return PageError::from_domain(e, ctx.lang).into_response(),
    };
    match qr::png(&e.otpauth_uri) {
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
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

pub async fn setup_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(f): Form<CodeForm>,
) -> Response {
    if !state.csrf.verify(&jar, &f.csrf) {
        return csrf_failed(ctx.lang);
    }
    let info = enrolling!(state, jar, ctx);
    let Some(id) = factor_id(&id) else {
        return PageError::from_domain(Error::NotFound, ctx.lang).into_response();
    };
    match state
        .app
        .confirm_totp(&info.account, id, &f.code, &ctx.req)
        .await
    {
        Ok(()) => {
            // An enrolment-only session becomes a full one, under a new id.
            let finished = match session_token(&jar) {
                Some(t) => state.app.finish_enrollment(&t, &ctx.req).await,
                None => Ok(None),
            };
            match finished {
                Ok(Some(new)) => (
                    set_session(jar, &new, state.settings.secure_cookies),
                    Redirect::to("/account?done=enabled"),
                )
                    .into_response(),
                Ok(None) => Redirect::to("/account?done=enabled").into_response(),
                Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
            }
        }
        Err(Error::InvalidCode) => match state.app.pending_totp(&info.account, id).await {
            Ok(e) => setup_response(&state, &ctx, jar, &e, Some(ctx.lang.t("setup_failed"))),
            Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
        },
        Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
    }
}

pub async fn remove_form(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
) -> Response {
    signed_in!(state, jar, ctx);
    let Some(id) = factor_id(&id) else {
        return PageError::from_domain(Error::NotFound, ctx.lang).into_response();
    };
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    (
        jar,
        password_page(
            &ctx,
            &csrf,
            format!("/account/factors/{id}/remove"),
            true,
            None,
        ),
    )
        .into_response()
}

pub async fn remove_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(f): Form<PasswordForm>,
) -> Response {
    if !state.csrf.verify(&jar, &f.csrf) {
        return csrf_failed(ctx.lang);
    }
    let info = signed_in!(state, jar, ctx);
    let Some(id) = factor_id(&id) else {
        return PageError::from_domain(Error::NotFound, ctx.lang).into_response();
    };
    match state
        .app
        .remove_factor(&info.account, id, &f.password, &ctx.req)
        .await
    {
        Ok(()) => Redirect::to("/account?done=removed").into_response(),
        Err(Error::WrongPassword) => {
            let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
            let page = password_page(
                &ctx,
                &csrf,
                format!("/account/factors/{id}/remove"),
                true,
                Some(ctx.lang.t("wrong_password")),
            );
            (jar, page).into_response()
        }
        Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
    }
}
