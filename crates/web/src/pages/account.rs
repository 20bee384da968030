//! My Profile: the factors, recovery codes and remembered devices; setting up an
//! authenticator app or a phone, and removing a factor, have rooms of their own.

pub(super) mod app;
pub(super) mod passkey;
pub(super) mod remove;
pub(super) mod sms;

pub(crate) use app::choose_again;
pub use app::{enable_form, enable_submit, setup_page, setup_png, setup_submit};
pub use passkey::passkey_form;
pub use remove::{remove_form, remove_submit};
pub use sms::{
    add_phone_form, add_phone_submit, sms_setup_page, sms_setup_resend, sms_setup_submit,
};
pub(crate) use sms::{choice_problem_text, sms_problem_text, SmsWhere};

use super::step::checked;
use crate::error::{OnPage, PageError};
use crate::extract::Ctx;
use crate::gate::{Page, SignedIn, SignedInWithSteps};
use crate::i18n::Lang;
use crate::view::page;
use crate::AppState;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};
use tweestap_domain::factor::{FactorId, FactorKind};
use tweestap_domain::passkey::KeyKind;
use tweestap_domain::Error;
use uuid::Uuid;

#[derive(Serialize)]
struct FactorRow {
    id: String,
    /// "Authenticator-app", or "Sms naar +32 4•• •• •• 56".
    name: String,
    /// A passkey: synced between devices, or bound to one.
    detail: Option<&'static str>,
    created: String,
    last_used: Option<String>,
}

#[derive(Deserialize)]
pub struct ProfileQuery {
    done: Option<String>,
}

pub async fn profile(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedInWithSteps(info, steps, _): SignedInWithSteps<Page>,
    jar: CookieJar,
    Query(q): Query<ProfileQuery>,
) -> Result<Response, PageError> {
    let factors = &steps.factors;
    let synced: Vec<_> = state
        .app
        .passkeys_among(factors)
        .on_page(ctx.lang)?
        .into_iter()
        .map(|p| (p.id, p.synced, p.kind))
        .collect();
    let rows: Vec<FactorRow> = factors
        .iter()
        .map(|f| FactorRow {
            detail: synced.iter().find(|(id, ..)| *id == f.id).map(|(_, s, _)| {
                ctx.lang.t(if *s {
                    "passkey_synced"
                } else {
                    "passkey_device_bound"
                })
            }),
            id: f.id.to_string(),
            name: match f.kind {
                FactorKind::Totp => ctx.lang.t("factor_app").to_owned(),
                FactorKind::Sms => ctx.lang.t("factor_sms").replace("{to}", &f.label),
                FactorKind::Passkey => {
                    let security_key = synced
                        .iter()
                        .any(|(id, _, k)| *id == f.id && *k == KeyKind::SecurityKey);
                    let key = if security_key {
                        "factor_security_key"
                    } else {
                        "factor_passkey"
                    };
                    ctx.lang.t(key).replace("{name}", &f.label)
                }
            },
            created: state.day(ctx.lang, f.created_at),
            last_used: f.last_used_at.map(|t| state.day_time(ctx.lang, t)),
        })
        .collect();
    let notice = match q.done.as_deref() {
        Some("enabled") => Some(ctx.lang.t("twofa_enabled_now")),
        Some("removed") => Some(ctx.lang.t("factor_removed")),
        Some("removed_sms") => Some(ctx.lang.t("factor_removed_sms")),
        Some("removed_passkey") => Some(ctx.lang.t("factor_removed_passkey")),
        Some("passkey") => Some(ctx.lang.t("passkey_added")),
        Some("devices") => Some(ctx.lang.t("devices_forgotten")),
        Some("consent") => Some(ctx.lang.t("consents_revoked")),
        _ => None,
    };
    let (devices, recovery_left) = (&steps.devices, steps.recovery_codes_left);
    let day = |t: chrono::DateTime<chrono::Utc>| state.day(ctx.lang, t);
    let devices: Vec<minijinja::Value> = devices
        .iter()
        .map(|d| {
            minijinja::context! {
                id => d.id.to_string(), label => &d.label, created => day(d.created_at),
                last_used => day(d.last_used_at), until => day(d.expires_at),
            }
        })
        .collect();
    let consents = match steps.consents {
        0 => Vec::new(),
        _ => state
            .app
            .consents(info.account.id)
            .await
            .on_page(ctx.lang)?,
    };
    let consents: Vec<minijinja::Value> = consents
        .into_iter()
        .map(|(c, name)| {
            minijinja::context! {
                id => &c.client_id, name => name.unwrap_or_else(|| c.client_id.clone()),
                scopes => c.scope.replace(' ', ", "), since => day(c.granted_at),
            }
        })
        .collect();
    let banner = super::deadline_banner(&state, &info, &jar, Some(factors)).await;
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let a = &info.account;
    let extra = minijinja::context! {
        banner => banner,
        email => a.email.as_str(), name => &a.name, role => ctx.lang.t(&format!("role_{}", a.role.as_str())), factors => rows, notice => notice,
        devices => devices, recovery_left => recovery_left.to_string(), consents => consents,
        passkeys => state.app.passkeys_available()
            && state.app.method_allowed(a.role, tweestap_domain::policy::document::Method::Passkey),
    };
    Ok((jar, page(&ctx, "account.html", &csrf, true, extra)).into_response())
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) password: zeroize::Zeroizing<String>,
}

/// The factor a page is about, from its path; a malformed id is not found.
pub(super) fn factor_id(raw: &str, lang: Lang) -> Result<FactorId, PageError> {
    Uuid::parse_str(raw)
        .map(FactorId)
        .map_err(|_| PageError::from_domain(Error::NotFound, lang))
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) code: zeroize::Zeroizing<String>,
}

/// Where to go once two-step verification is on: back to the portal that asked for
/// it (through "/", which follows the pending return URL), or to My Profile.
pub(super) fn after_enabling(state: &AppState, jar: &CookieJar) -> &'static str {
    if crate::forward_auth::has_return(state, jar) {
        "/"
    } else {
        "/account?done=enabled"
    }
}

pub(super) fn recovery_codes_page(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    codes: &[String],
    enabled: bool,
    steps: minijinja::Value,
) -> Response {
    let next = if enabled {
        after_enabling(state, &jar)
    } else {
        "/account"
    };
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let extra =
        minijinja::context! { codes => codes, enabled => enabled, next => next, steps => steps };
    (jar, page(ctx, "recovery_codes.html", &csrf, true, extra)).into_response()
}

pub async fn recovery_codes_form(
    State(state): State<AppState>,
    ctx: Ctx,
    _: SignedIn<Page>,
    jar: CookieJar,
) -> Response {
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let t = |k| ctx.lang.t(k);
    let extra = minijinja::context! {
        title => t("recovery_new"), intro => t("recovery_new_intro"), button => t("recovery_new"),
        action => "/account/recovery-codes",
    };
    (jar, page(&ctx, "confirm_password.html", &csrf, true, extra)).into_response()
}

pub async fn recovery_codes_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(info, _): SignedIn<Page>,
    jar: CookieJar,
    Form(f): Form<PasswordForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    match state
        .app
        .new_recovery_codes(&info.account, &f.password, &ctx.req)
        .await
    {
        Ok(codes) => Ok(recovery_codes_page(
            &state,
            &ctx,
            jar,
            &codes,
            false,
            ().into(),
        )),
        Err(Error::WrongPassword) => {
            let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
            let t = |k| ctx.lang.t(k);
            let extra = minijinja::context! {
                title => t("recovery_new"), intro => t("recovery_new_intro"), button => t("recovery_new"),
                action => "/account/recovery-codes", error => t("wrong_password"),
            };
            let page = page(&ctx, "confirm_password.html", &csrf, true, extra);
            Ok((StatusCode::FORBIDDEN, jar, page).into_response())
        }
        Err(e) => Err(PageError::from_domain(e, ctx.lang)),
    }
}

/// The codes just shown, back as a text file: the page has them, the server keeps
/// none, so it only formats what the form sends (codes-shaped values only).
pub async fn recovery_codes_download(
    State(state): State<AppState>,
    ctx: Ctx,
    _: SignedIn<Page>,
    jar: CookieJar,
    axum_extra::extract::Form(f): axum_extra::extract::Form<DownloadForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
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
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"tweestap-recovery-codes.txt\"",
            ),
        ],
        text,
    )
        .into_response())
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
    SignedIn(info, _): SignedIn<Page>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(f): Form<PasswordForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    let result = match Uuid::parse_str(&id) {
        Ok(id) => state.app.forget_device(&info.account, id, &ctx.req).await,
        Err(_) => Err(Error::NotFound),
    };
    result.on_page(ctx.lang)?;
    Ok(Redirect::to("/account?done=devices").into_response())
}

pub async fn forget_devices(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(info, _): SignedIn<Page>,
    jar: CookieJar,
    Form(f): Form<PasswordForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    state
        .app
        .forget_devices(&info.account, &ctx.req)
        .await
        .on_page(ctx.lang)?;
    Ok(Redirect::to("/account?done=devices").into_response())
}

// ---- SMS -----------------------------------------------------------------------------

/// `POST /account/consents/{client}/revoke`: the portal's access ends now.
pub async fn revoke_consent(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(info, _): SignedIn<Page>,
    jar: CookieJar,
    Path(client): Path<String>,
    Form(f): Form<PasswordForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    state
        .app
        .revoke_consent(&info.account, &client, &ctx.req)
        .await
        .on_page(ctx.lang)?;
    Ok(Redirect::to("/account?done=consent").into_response())
}
