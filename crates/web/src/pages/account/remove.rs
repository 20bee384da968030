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
use tweestap_domain::factor::FactorId;
use tweestap_domain::Error;

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
    let last = is_last_factor(&state, &info.account, id)
        .await
        .on_page(ctx.lang)?;
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    Ok((jar, remove_page(&ctx, &csrf, id, last, None)).into_response())
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
    SignedIn(info, _): SignedIn<Page>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(f): Form<RemoveForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    let id = factor_id(&id, ctx.lang)?;
    let last = is_last_factor(&state, &info.account, id)
        .await
        .on_page(ctx.lang)?;
    if last && f.confirm_last.is_none() && !state.app.requirement(&info.account).is_required() {
        let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
        let page = remove_page(
            &ctx,
            &csrf,
            id,
            true,
            Some(ctx.lang.t("remove_last_warning")),
        );
        return Ok((jar, page).into_response());
    }
    match state
        .app
        .remove_factor(&info.account, id, &f.password, &ctx.req)
        .await
    {
        Ok(()) => Ok(Redirect::to("/account?done=removed").into_response()),
        Err(Error::WrongPassword) => {
            let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
            let page = remove_page(&ctx, &csrf, id, last, Some(ctx.lang.t("wrong_password")));
            Ok((jar, page).into_response())
        }
        Err(e) => Err(PageError::from_domain(e, ctx.lang)),
    }
}

// ---- recovery codes and remembered devices ----------------------------------------------
