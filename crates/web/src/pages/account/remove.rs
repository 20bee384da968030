//! Removing a factor, after the password.

use super::factor_id;
use crate::error::{OnPage, PageError};
use crate::extract::Ctx;
use crate::gate::{Page, SignedIn};
use crate::pages::step::checked;
use crate::view::page;
use crate::AppState;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tweestap_domain::factor::{FactorId, FactorKind};
use tweestap_domain::Error;

/// The factor being removed: what it is (an app, a phone) and whether it is the
/// account's only active one (removing it needs a "yes, I understand", as only the
/// password would be left). An unknown id is not found.
struct Removing {
    kind: FactorKind,
    /// The masked number of a phone.
    label: String,
    last: bool,
}

async fn removing(
    state: &AppState,
    account: &tweestap_domain::account::Account,
    id: FactorId,
) -> Result<Removing, Error> {
    let active = state.app.active_factors(account.id).await?;
    let f = active.iter().find(|f| f.id == id).ok_or(Error::NotFound)?;
    Ok(Removing {
        kind: f.kind,
        label: f.label.clone(),
        last: active.len() == 1,
    })
}

/// The page names what goes: "the authenticator app" or "the mobile number +32 4•• …".
fn remove_page(ctx: &Ctx, csrf: &str, id: FactorId, r: &Removing, error: Option<&str>) -> Response {
    let t = |k| ctx.lang.t(k);
    let (title, intro) = match r.kind {
        FactorKind::Totp => (t("remove_title_totp"), t("remove_intro").to_owned()),
        FactorKind::Sms => (
            t("remove_title_sms"),
            t("remove_intro_sms").replace("{to}", &r.label),
        ),
        FactorKind::Passkey => (
            t("remove_title_passkey"),
            t("remove_intro_passkey").replace("{name}", &r.label),
        ),
    };
    let extra = minijinja::context! {
        title => title, intro => intro, button => t("factor_remove"), button_class => "danger",
        action => format!("/account/factors/{id}/remove"), error => error,
        last_warning => r.last.then(|| t("remove_last_warning")), last_confirm => t("remove_last_confirm"),
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

pub async fn remove_form(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(info, _): SignedIn<Page>,
    jar: CookieJar,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = factor_id(&id, ctx.lang)?;
    let r = removing(&state, &info.account, id)
        .await
        .on_page(ctx.lang)?;
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    Ok((jar, remove_page(&ctx, &csrf, id, &r, None)).into_response())
}

#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: zeroize::Zeroizing<String>,
    /// "I understand" when removing the last factor.
    confirm_last: Option<String>,
}

pub async fn remove_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(info, _): SignedIn<Page>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(f): Form<RemoveForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    let id = factor_id(&id, ctx.lang)?;
    let r = removing(&state, &info.account, id)
        .await
        .on_page(ctx.lang)?;
    if r.last && f.confirm_last.is_none() && !state.app.requirement(&info.account).is_required() {
        let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
        let page = remove_page(&ctx, &csrf, id, &r, Some(ctx.lang.t("remove_last_warning")));
        return Ok((jar, page).into_response());
    }
    match state
        .app
        .remove_factor(&info.account, id, &f.password, &ctx.req)
        .await
    {
        Ok(()) => {
            let done = match r.kind {
                FactorKind::Totp => "/account?done=removed",
                FactorKind::Sms => "/account?done=removed_sms",
                FactorKind::Passkey => "/account?done=removed_passkey",
            };
            Ok(Redirect::to(done).into_response())
        }
        Err(Error::WrongPassword) => {
            let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
            let page = remove_page(&ctx, &csrf, id, &r, Some(ctx.lang.t("wrong_password")));
            Ok((jar, page).into_response())
        }
        Err(e) => Err(PageError::from_domain(e, ctx.lang)),
    }
}

// ---- recovery codes and remembered devices ----------------------------------------------
