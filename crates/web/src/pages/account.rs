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
use tweestap_domain::factor::{FactorId, FactorKind};
use tweestap_domain::session::SessionStage;
use tweestap_domain::totp;
use tweestap_domain::Error;
use uuid::Uuid;

#[derive(Serialize)]
struct FactorRow {
    id: String,
    /// "Authenticator-app", or "Sms naar +32 4•• •• •• 56".
    name: String,
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
            name: match f.kind {
                FactorKind::Totp => ctx.lang.t("factor_app").to_owned(),
                FactorKind::Sms => ctx.lang.t("factor_sms").replace("{to}", &f.label),
            },
            created: f.created_at.format("%Y-%m-%d").to_string(),
            last_used: f
                .last_used_at
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
        })
        .collect();
    let notice = match q.done.as_deref() {
        Some("enabled") => Some(ctx.lang.t("twofa_enabled_now")),
        Some("removed") => Some(ctx.lang.t("factor_removed")),
        Some("devices") => Some(ctx.lang.t("devices_forgotten")),
        _ => None,
    };
    let (devices, recovery_left) = match (
        state.app.devices(info.account.id).await,
        state.app.recovery_codes_left(info.account.id).await,
    ) {
        (Ok(d), Ok(n)) => (d, n),
        (Err(e), _) | (_, Err(e)) => return PageError::from_domain(e, ctx.lang).into_response(),
    };
    let day = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d").to_string();
    let devices: Vec<minijinja::Value> = devices
        .iter()
        .map(|d| {
            minijinja::context! {
                id => d.id.to_string(), label => &d.label, created => day(d.created_at),
                last_used => day(d.last_used_at), until => day(d.expires_at),
            }
        })
        .collect();
    let banner = super::deadline_banner(&state, &info, &jar, Some(&factors)).await;
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let a = &info.account;
    let extra = minijinja::context! {
        banner => banner,
        email => a.email.as_str(), name => &a.name, role => ctx.lang.t(&format!("role_{}", a.role.as_str())), factors => rows, notice => notice,
        devices => devices, recovery_left => recovery_left.to_string(),
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
    /// The method chosen in an enrolment-only session: `totp` (default) or `sms`.
    method: Option<String>,
    #[serde(default)]
    phone: String,
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
    if info.session.stage == SessionStage::Enrollment && f.method.as_deref() == Some("sms") {
        let Some(token) = session_token(&jar) else {
            return Redirect::to("/login").into_response();
        };
        return match state.app.begin_sms(&token, &f.phone, None, &ctx.req).await {
            Ok(s) => Redirect::to(&format!("/account/2fa/sms/{}", s.factor_id)).into_response(),
            Err(e @ (Error::InvalidPhone(_) | Error::SmsRefused(_) | Error::SmsUnavailable)) => {
                let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
                let extra = minijinja::context! {
                    intro => ctx.lang.t("choose_intro"), error => ctx.lang.t(sms_error_key(&e)), phone => f.phone.trim(),
                };
                let page = render(&ctx, "choose_method.html", &csrf, false, extra);
                (StatusCode::BAD_REQUEST, jar, page).into_response()
            }
            Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
        };
    }
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
                    days => state.app.link_days().to_string(),
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
        Ok(codes) => {
            // An enrolment-only session becomes a full one, under a new id.
            let finished = match session_token(&jar) {
                Some(t) => state.app.finish_enrollment(&t, &ctx.req).await,
                None => Ok(None),
            };
            let jar = match finished {
                Ok(Some(new)) => set_session(jar, &new, state.settings.secure_cookies),
                Ok(None) => jar,
                Err(e) => return PageError::from_domain(e, ctx.lang).into_response(),
            };
            match codes {
                // The first factor: its recovery codes, shown this once.
                Some(codes) => recovery_codes_page(&state, &ctx, jar, &codes, true),
                None => (jar, Redirect::to("/account?done=enabled")).into_response(),
            }
        }
        Err(Error::InvalidCode) => match state.app.pending_totp(&info.account, id).await {
            Ok(e) => setup_response(&state, &ctx, jar, &e, Some(ctx.lang.t("setup_failed"))),
            Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
        },
        Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
    }
}

/// Whether `id` is the account's only active factor (removing it needs a "yes, I
/// understand", as only the password would be left).
async fn is_last_factor(
    state: &AppState,
    account: &tweestap_domain::account::Account,
    id: FactorId,
) -> Result<bool, Error> {
    let active = state.app.active_factors(account.id).await?;
    Ok(active.len() == 1 && active[0].id == id)
}

fn remove_page(ctx: &Ctx, csrf: &str, id: FactorId, last: bool, error: Option<&str>) -> Response {
    let t = |k| ctx.lang.t(k);
    let extra = minijinja::context! {
        title => t("factor_remove"), intro => t("remove_intro"), button => t("factor_remove"),
        action => format!("/account/factors/{id}/remove"), error => error,
        last_warning => last.then(|| t("remove_last_warning")), last_confirm => t("remove_last_confirm"),
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

pub async fn remove_form(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
) -> Response {
    let info = signed_in!(state, jar, ctx);
    let Some(id) = factor_id(&id) else {
        return PageError::from_domain(Error::NotFound, ctx.lang).into_response();
    };
    let last = match is_last_factor(&state, &info.account, id).await {
        Ok(l) => l,
        Err(e) => return PageError::from_domain(e, ctx.lang).into_response(),
    };
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    (jar, remove_page(&ctx, &csrf, id, last, None)).into_response()
}

#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    /// "I understand" when removing the last factor.
    confirm_last: Option<String>,
}

pub async fn remove_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(f): Form<RemoveForm>,
) -> Response {
    if !state.csrf.verify(&jar, &f.csrf) {
        return csrf_failed(ctx.lang);
    }
    let info = signed_in!(state, jar, ctx);
    let Some(id) = factor_id(&id) else {
        return PageError::from_domain(Error::NotFound, ctx.lang).into_response();
    };
    let last = match is_last_factor(&state, &info.account, id).await {
        Ok(l) => l,
        Err(e) => return PageError::from_domain(e, ctx.lang).into_response(),
    };
    if last && f.confirm_last.is_none() && !state.app.requirement(&info.account).is_required() {
        let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
        let page = remove_page(
            &ctx,
            &csrf,
            id,
            true,
            Some(ctx.lang.t("remove_last_warning")),
        );
        return (jar, page).into_response();
    }
    match state
        .app
        .remove_factor(&info.account, id, &f.password, &ctx.req)
        .await
    {
        Ok(()) => Redirect::to("/account?done=removed").into_response(),
        Err(Error::WrongPassword) => {
            let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
            let page = remove_page(&ctx, &csrf, id, last, Some(ctx.lang.t("wrong_password")));
            (jar, page).into_response()
        }
        Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
    }
}

// ---- recovery codes and remembered devices ----------------------------------------------

fn recovery_codes_page(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    codes: &[String],
    enabled: bool,
) -> Response {
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let next = if enabled {
        "/account?done=enabled"
    } else {
        "/account"
    };
    let extra = minijinja::context! { codes => codes, enabled => enabled, next => next };
    (jar, render(ctx, "recovery_codes.html", &csrf, true, extra)).into_response()
}

pub async fn recovery_codes_form(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
) -> Response {
    signed_in!(state, jar, ctx);
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let t = |k| ctx.lang.t(k);
    let extra = minijinja::context! {
        title => t("recovery_new"), intro => t("recovery_new_intro"), button => t("recovery_new"),
        action => "/account/recovery-codes",
    };
    (
        jar,
        render(&ctx, "confirm_password.html", &csrf, true, extra),
    )
        .into_response()
}

pub async fn recovery_codes_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Form(f): Form<PasswordForm>,
) -> Response {
    if !state.csrf.verify(&jar, &f.csrf) {
        return csrf_failed(ctx.lang);
    }
    let info = signed_in!(state, jar, ctx);
    match state
        .app
        .new_recovery_codes(&info.account, &f.password, &ctx.req)
        .await
    {
        Ok(codes) => recovery_codes_page(&state, &ctx, jar, &codes, false),
        Err(Error::WrongPassword) => {
            let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
            let t = |k| ctx.lang.t(k);
            let extra = minijinja::context! {
                title => t("recovery_new"), intro => t("recovery_new_intro"), button => t("recovery_new"),
                action => "/account/recovery-codes", error => t("wrong_password"),
            };
            let page = render(&ctx, "confirm_password.html", &csrf, true, extra);
            (StatusCode::FORBIDDEN, jar, page).into_response()
        }
        Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
    }
}

/// The codes just shown, back as a text file: the page has them, the server keeps
/// none, so it only formats what the form sends (codes-shaped values only).
pub async fn recovery_codes_download(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    axum_extra::extract::Form(f): axum_extra::extract::Form<DownloadForm>,
) -> Response {
    if !state.csrf.verify(&jar, &f.csrf) {
        return csrf_failed(ctx.lang);
    }
    signed_in!(state, jar, ctx);
    let codes: Vec<&str> = f
        .code
        .iter()
        .map(String::as_str)
        .filter(|c| c.len() == 11 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .take(tweestap_domain::recovery::RECOVERY_CODES)
        .collect();
    let mut text = format!("{}\r\n\r\n", ctx.lang.t("recovery_file_header"));
    for c in codes {
        text.push_str(c);
        text.push_str("\r\n");
    }
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"tweestap-recovery-codes.txt\"",
            ),
        ],
        text,
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct DownloadForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: Vec<String>,
}

pub async fn forget_device(
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
    let result = match Uuid::parse_str(&id) {
        Ok(id) => state.app.forget_device(&info.account, id, &ctx.req).await,
        Err(_) => Err(Error::NotFound),
    };
    match result {
        Ok(()) => Redirect::to("/account?done=devices").into_response(),
        Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
    }
}

pub async fn forget_devices(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Form(f): Form<PasswordForm>,
) -> Response {
    if !state.csrf.verify(&jar, &f.csrf) {
        return csrf_failed(ctx.lang);
    }
    let info = signed_in!(state, jar, ctx);
    match state.app.forget_devices(&info.account, &ctx.req).await {
        Ok(_) => Redirect::to("/account?done=devices").into_response(),
        Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
    }
}

// ---- SMS -----------------------------------------------------------------------------

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

fn add_phone_page(
    ctx: &Ctx,
    csrf: &str,
    phone: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let extra = minijinja::context! { phone => phone, error => error };
    (status, render(ctx, "sms_add.html", csrf, true, extra)).into_response()
}

pub async fn add_phone_form(State(state): State<AppState>, ctx: Ctx, jar: CookieJar) -> Response {
    signed_in!(state, jar, ctx);
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    (jar, add_phone_page(&ctx, &csrf, "", None, StatusCode::OK)).into_response()
}

#[derive(Deserialize)]
pub struct AddPhoneForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    phone: String,
}

pub async fn add_phone_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Form(f): Form<AddPhoneForm>,
) -> Response {
    if !state.csrf.verify(&jar, &f.csrf) {
        return csrf_failed(ctx.lang);
    }
    signed_in!(state, jar, ctx);
    let Some(token) = session_token(&jar) else {
        return Redirect::to("/login").into_response();
    };
    let error = match state
        .app
        .begin_sms(&token, &f.phone, Some(&f.password), &ctx.req)
        .await
    {
        Ok(s) => return Redirect::to(&format!("/account/2fa/sms/{}", s.factor_id)).into_response(),
        Err(Error::WrongPassword) => (StatusCode::FORBIDDEN, "wrong_password"),
        Err(e @ (Error::InvalidPhone(_) | Error::SmsRefused(_) | Error::SmsUnavailable)) => {
            (StatusCode::BAD_REQUEST, sms_error_key(&e))
        }
        Err(e) => return PageError::from_domain(e, ctx.lang).into_response(),
    };
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let page = add_phone_page(
        &ctx,
        &csrf,
        f.phone.trim(),
        Some(ctx.lang.t(error.1)),
        error.0,
    );
    (jar, page).into_response()
}

async fn sms_code_page(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    id: FactorId,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let Some(token) = session_token(&jar) else {
        return Redirect::to("/login").into_response();
    };
    let to = match state.app.pending_sms_to(&token, id).await {
        Ok(to) => to,
        Err(e) => return PageError::from_domain(e, ctx.lang).into_response(),
    };
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let extra = minijinja::context! {
        to => to, action => format!("/account/2fa/sms/{id}"), resend => format!("/account/2fa/sms/{id}/resend"),
        notice => notice, error => error,
    };
    (
        status,
        jar,
        render(ctx, "sms_setup.html", &csrf, false, extra),
    )
        .into_response()
}

pub async fn sms_setup_page(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
) -> Response {
    enrolling!(state, jar, ctx);
    let Some(id) = factor_id(&id) else {
        return PageError::from_domain(Error::NotFound, ctx.lang).into_response();
    };
    sms_code_page(&state, &ctx, jar, id, None, None, StatusCode::OK).await
}

pub async fn sms_setup_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(f): Form<CodeForm>,
) -> Response {
    if !state.csrf.verify(&jar, &f.csrf) {
        return csrf_failed(ctx.lang);
    }
    enrolling!(state, jar, ctx);
    let (Some(id), Some(token)) = (factor_id(&id), session_token(&jar)) else {
        return PageError::from_domain(Error::NotFound, ctx.lang).into_response();
    };
    match state.app.confirm_sms(&token, id, &f.code, &ctx.req).await {
        Ok(codes) => {
            let jar = match state.app.finish_enrollment(&token, &ctx.req).await {
                Ok(Some(new)) => set_session(jar, &new, state.settings.secure_cookies),
                Ok(None) => jar,
                Err(e) => return PageError::from_domain(e, ctx.lang).into_response(),
            };
            match codes {
                Some(codes) => recovery_codes_page(&state, &ctx, jar, &codes, true),
                None => (jar, Redirect::to("/account?done=enabled")).into_response(),
            }
        }
        Err(Error::InvalidCode) => {
            let error = ctx.lang.t("sms_code_failed");
            sms_code_page(
                &state,
                &ctx,
                jar,
                id,
                None,
                Some(error),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
    }
}

pub async fn sms_setup_resend(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(f): Form<CodeForm>,
) -> Response {
    if !state.csrf.verify(&jar, &f.csrf) {
        return csrf_failed(ctx.lang);
    }
    enrolling!(state, jar, ctx);
    let (Some(id), Some(token)) = (factor_id(&id), session_token(&jar)) else {
        return PageError::from_domain(Error::NotFound, ctx.lang).into_response();
    };
    match state.app.resend_setup_sms(&token, id, &ctx.req).await {
        Ok(_) => {
            let notice = ctx.lang.t("sms_sent_again");
            sms_code_page(&state, &ctx, jar, id, Some(notice), None, StatusCode::OK).await
        }
        Err(e @ (Error::SmsRefused(_) | Error::SmsUnavailable | Error::TooManyRequests)) => {
            let error = ctx.lang.t(sms_error_key(&e));
            sms_code_page(
                &state,
                &ctx,
                jar,
                id,
                None,
                Some(error),
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await
        }
        Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
    }
}
