//! The two questions the provider may ask between the sign-in and the code: may
//! this portal have what it asks (consent, for third-party portals and on
//! `prompt=consent`), and which account to go on with (`prompt=select_account`).

use super::authorize::{
    complete, consent_due, error_page, error_redirect, follow, pending, signed_in,
};
use super::found;
use crate::error::{OnPage, PageError};
use crate::extract::Ctx;
use crate::AppState;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tweestap_domain::oidc::authorize::{AuthRequest, Next};
use tweestap_domain::oidc::flow::OidcError;
use tweestap_domain::oidc::OidcClient;
use tweestap_domain::service::SessionInfo;

#[derive(Deserialize)]
pub(super) struct RequestQuery {
    #[serde(default)]
    request: String,
}

#[derive(Deserialize)]
pub(super) struct ChoiceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    request: String,
    /// `allow` or `deny` (consent); `continue` (account).
    #[serde(default)]
    choice: String,
}

/// The pending request `id`, its client and who is signed in: what every page
/// here needs (`None`: the error page).
async fn asked(
    state: &AppState,
    jar: &CookieJar,
    id: &str,
) -> Option<(AuthRequest, OidcClient, SessionInfo)> {
    let (r, client) = pending(state, id).await?;
    let info = signed_in(state, jar).await?;
    Some((r, client, info))
}

/// The CSRF check of a posted choice.
fn checked(state: &AppState, jar: &CookieJar, csrf: &str, ctx: &Ctx) -> Result<(), PageError> {
    if state.csrf.verify(jar, csrf) {
        Ok(())
    } else {
        Err(PageError::new(
            StatusCode::FORBIDDEN,
            "error_csrf",
            ctx.lang,
        ))
    }
}

/// The translation key describing what a scope gives the portal.
fn scope_text(scope: &str) -> Option<&'static str> {
    match scope {
        "openid" => Some("consent_scope_openid"),
        "email" => Some("consent_scope_email"),
        "profile" => Some("consent_scope_profile"),
        "offline_access" => Some("consent_scope_offline"),
        _ => None,
    }
}

/// `GET /oidc/consent?request=<id>`.
pub(super) async fn consent_form(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Query(q): Query<RequestQuery>,
) -> Response {
    let Some((r, client, info)) = asked(&state, &jar, &q.request).await else {
        return error_page(&ctx);
    };
    let scopes: Vec<String> = r
        .scopes()
        .map(|s| match scope_text(s) {
            Some(k) => ctx.lang.t(k).to_owned(),
            None => s.to_owned(),
        })
        .collect();
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let extra = minijinja::context! {
        client => client.name, scopes => scopes, request => q.request,
        email => info.account.email.as_str(), third_party => client.options.third_party,
    };
    (
        jar,
        crate::view::page(&ctx, "oidc_consent.html", &csrf, true, extra),
    )
        .into_response()
}

/// `POST /oidc/consent`: allow (the code follows) or deny (`access_denied`).
pub(super) async fn consent_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Form(f): Form<ChoiceForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, &ctx)?;
    let Some((r, _, info)) = asked(&state, &jar, &f.request).await else {
        return Ok(error_page(&ctx));
    };
    if f.choice != "allow" {
        state
            .app
            .audit_consent_denied(&info.account, &r.client_id, &ctx.req)
            .await
            .on_page(ctx.lang)?;
        let e = OidcError::new("access_denied", "the person did not allow it");
        return Ok(error_redirect(
            &state,
            &r.redirect_uri,
            r.state.as_deref(),
            &e,
        ));
    }
    // The sign-in must still be what the request needed.
    match r.resume(Some(&info.session), false, state.app.now()) {
        Next::Issue => {}
        next => return Ok(follow(&state, &ctx, &r, Some(&info), next, Some(&f.request)).await),
    }
    state
        .app
        .give_consent(&info.account, &r.client_id, &r.scope, &ctx.req)
        .await
        .on_page(ctx.lang)?;
    Ok(complete(&state, &ctx, &r, &info).await)
}

/// `GET /oidc/select-account?request=<id>`.
pub(super) async fn select_account_form(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Query(q): Query<RequestQuery>,
) -> Response {
    let Some((_, client, info)) = asked(&state, &jar, &q.request).await else {
        return error_page(&ctx);
    };
    let other = format!(
        "/login?rd={}&prompt=select_account",
        super::enc(&format!(
            "{}/oidc/authorize/resume?request={}",
            super::issuer(&state),
            q.request
        ))
    );
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let extra = minijinja::context! {
        client => client.name, request => q.request, email => info.account.email.as_str(),
        name => info.account.name, other => other,
    };
    (
        jar,
        crate::view::page(&ctx, "oidc_select_account.html", &csrf, true, extra),
    )
        .into_response()
}

/// `POST /oidc/select-account`: go on with the account signed in.
pub(super) async fn select_account_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Form(f): Form<ChoiceForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, &ctx)?;
    let Some((r, client, info)) = asked(&state, &jar, &f.request).await else {
        return Ok(error_page(&ctx));
    };
    if f.choice != "continue" {
        return Ok(found("/"));
    }
    let consent = consent_due(&state, &r, &client, Some(&info)).await;
    let next = r.account_chosen(&info.session, consent, state.app.now());
    Ok(follow(&state, &ctx, &r, Some(&info), next, Some(&f.request)).await)
}
