//! `GET /oidc/authorize` and its resumption after the sign-in pages: the request is
//! read (or taken from a pushed one), decided by the domain's rules
//! ([`AuthRequest::decide`]) against the browser's session, and the browser is
//! sent where the decision says.

use super::{found, issuer, with_params};
use crate::error::PageError;
use crate::extract::{current_session, Ctx};
use crate::i18n::LANG_COOKIE;
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use std::collections::HashMap;
use tweestap_domain::oidc::authorize::{AuthRequest, Next, SignInDemand};
use tweestap_domain::oidc::flow::OidcError;
use tweestap_domain::oidc::OidcClient;
use tweestap_domain::service::SessionInfo;
use tweestap_domain::session::SessionStage;

/// How a pushed request is named at the authorization endpoint (RFC 9126, 2.2).
pub(super) const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

pub(super) fn error_page(ctx: &Ctx) -> Response {
    PageError::new(StatusCode::BAD_REQUEST, "error_oidc_request", ctx.lang).into_response()
}

/// An error sent back to the (validated) redirect URI (RFC 6749 4.1.2.1, RFC 9207).
pub(super) fn error_redirect(
    state: &AppState,
    redirect_uri: &str,
    rp_state: Option<&str>,
    e: &OidcError,
) -> Response {
    let iss = issuer(state);
    let mut p = vec![
        ("error", e.error),
        ("error_description", e.description.as_str()),
    ];
    if let Some(s) = rp_state {
        p.push(("state", s));
    }
    p.push(("iss", &iss));
    found(&with_params(redirect_uri, &p))
}

pub(super) async fn signed_in(state: &AppState, jar: &CookieJar) -> Option<SessionInfo> {
    current_session(state, jar)
        .await
        .ok()
        .flatten()
        .filter(|s| s.session.stage == SessionStage::Authenticated)
}

/// Issues the code and sends the browser back to the client.
pub(super) async fn complete(
    state: &AppState,
    ctx: &Ctx,
    r: &AuthRequest,
    info: &SessionInfo,
) -> Response {
    match state.app.issue_code(r, info, &ctx.req).await {
        Ok(code) => {
            let iss = issuer(state);
            let mut p = vec![("code", code.as_str())];
            if let Some(s) = &r.state {
                p.push(("state", s));
            }
            p.push(("iss", &iss));
            found(&with_params(&r.redirect_uri, &p))
        }
        Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
    }
}

/// Sends the browser to sign in and come back to `resume`. A browser that is
/// signed in already is shown the form all the same (`prompt=login`: the
/// password and the second factor; `prompt=select_account`: anyone may sign in).
fn to_sign_in(
    state: &AppState,
    id: &str,
    r: &AuthRequest,
    signed_in: Option<&SessionInfo>,
    d: SignInDemand,
) -> Response {
    let base = issuer(state);
    let resume = format!("{base}/oidc/authorize/resume?request={id}");
    let mut p: Vec<(&str, &str)> = vec![("rd", &resume)];
    // Signing in again: the address of who is signed in, unless the portal named one.
    let known = signed_in.map(|i| i.account.email.as_str());
    if let Some(h) = r.login_hint.as_deref().or(known) {
        p.push(("login_hint", h));
    }
    if d.skip_remembered_device {
        p.push(("prompt", "login"));
    } else if signed_in.is_some() {
        p.push(("prompt", "select_account"));
    }
    if d.require_second_factor {
        p.push(("mfa", "1"));
    }
    found(&with_params(&format!("{base}/login"), &p))
}

/// Does what the decision says; `id` names the request once it has been kept.
pub(super) async fn follow(
    state: &AppState,
    ctx: &Ctx,
    r: &AuthRequest,
    info: Option<&SessionInfo>,
    next: Next,
    id: Option<&str>,
) -> Response {
    let keep = |r: &AuthRequest| {
        let r = r.clone();
        async move {
            match id {
                Some(id) => Ok(id.to_owned()),
                None => state
                    .app
                    .store_auth_request(&r)
                    .await
                    .map(|t| t.as_str().to_owned()),
            }
        }
    };
    let page = |path: &str, id: &str| found(&format!("{path}?request={id}"));
    match (next, info) {
        (Next::Issue, Some(info)) => complete(state, ctx, r, info).await,
        (Next::Refuse(e), _) => error_redirect(state, &r.redirect_uri, r.state.as_deref(), &e),
        (next, info) => {
            let id = match keep(r).await {
                Ok(id) => id,
                Err(e) => return PageError::from_domain(e, ctx.lang).into_response(),
            };
            match next {
                Next::Consent if info.is_some() => page("/oidc/consent", &id),
                Next::SelectAccount if info.is_some() => page("/oidc/select-account", &id),
                Next::SignIn(d) => to_sign_in(state, &id, r, info, d),
                // Nothing to show without a session: sign in first.
                _ => to_sign_in(state, &id, r, None, r.sign_in),
            }
        }
    }
}

/// The request of `GET /oidc/authorize`: read from the parameters, or taken from
/// a pushed one. `Err` is the response already (a page, or an error redirect).
async fn read_request(
    state: &AppState,
    ctx: &Ctx,
    q: &HashMap<String, String>,
) -> Result<(AuthRequest, OidcClient), Response> {
    let p = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    // Until the client and its redirect URI are known, errors are a page: never a
    // redirect to an address nobody registered.
    let client = match p("client_id") {
        Some(id) => match state.app.client(id).await {
            Ok(Some(c)) if !c.options.service => c,
            Ok(_) => return Err(error_page(ctx)),
            Err(e) => return Err(PageError::from_domain(e, ctx.lang).into_response()),
        },
        None => return Err(error_page(ctx)),
    };
    if let Some(uri) = p("request_uri") {
        let pushed = match uri.strip_prefix(REQUEST_URI_PREFIX) {
            Some(id) => state.app.take_pushed_request(id, &client.id).await,
            None => Ok(None),
        };
        return match pushed {
            Ok(Some(r)) if r.client_id == client.id && client.allows_redirect(&r.redirect_uri) => {
                Ok((r, client))
            }
            Ok(_) => Err(error_page(ctx)),
            Err(e) => Err(PageError::from_domain(e, ctx.lang).into_response()),
        };
    }
    let Some(redirect_uri) = p("redirect_uri").filter(|u| client.allows_redirect(u)) else {
        return Err(error_page(ctx));
    };
    let rp_state = p("state");
    if client.options.require_par {
        let e = OidcError::new(
            "invalid_request",
            "this client must push its authorization requests (PAR, RFC 9126)",
        );
        return Err(error_redirect(state, redirect_uri, rp_state, &e));
    }
    match AuthRequest::from_params(&client, redirect_uri, p) {
        Ok(r) => Ok((r, client)),
        Err(e) => Err(error_redirect(state, redirect_uri, rp_state, &e)),
    }
}

/// `ui_locales`: the first language we speak becomes this browser's.
fn with_ui_locale(state: &AppState, jar: CookieJar, ui_locales: Option<&String>) -> CookieJar {
    let chosen = ui_locales
        .map(String::as_str)
        .unwrap_or_default()
        .split(' ')
        .find_map(|l| {
            let l = l.split('-').next().unwrap_or_default().to_ascii_lowercase();
            matches!(l.as_str(), "nl" | "en").then_some(l)
        });
    match chosen {
        Some(l) => jar.add(
            Cookie::build((LANG_COOKIE, l))
                .path("/")
                .permanent()
                .http_only(true)
                .same_site(SameSite::Lax)
                .secure(state.settings.secure_cookies)
                .build(),
        ),
        None => jar,
    }
}

/// Whether the person must allow the client first (an error counts as yes, so
/// a failing database never skips consent).
pub(super) async fn consent_due(
    state: &AppState,
    r: &AuthRequest,
    client: &OidcClient,
    info: Option<&SessionInfo>,
) -> bool {
    match info {
        Some(info) => state
            .app
            .needs_consent(r, client, info)
            .await
            .unwrap_or(true),
        None => false,
    }
}

/// `GET /oidc/authorize`.
pub(super) async fn authorize(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (mut request, client) = match read_request(&state, &ctx, &q).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let jar = with_ui_locale(&state, jar, q.get("ui_locales"));
    let session = signed_in(&state, &jar).await;
    let consent = consent_due(&state, &request, &client, session.as_ref()).await;
    let next = request.decide(
        session.as_ref().map(|i| &i.session),
        consent,
        state.app.now(),
    );
    let response = follow(&state, &ctx, &request, session.as_ref(), next, None).await;
    (jar, response).into_response()
}

#[derive(Deserialize)]
pub(super) struct ResumeQuery {
    #[serde(default)]
    request: String,
}

/// The pending request `id` and its client, when both are still there.
pub(super) async fn pending(state: &AppState, id: &str) -> Option<(AuthRequest, OidcClient)> {
    let request = state.app.auth_request(id).await.ok().flatten()?;
    // The client may have been removed meanwhile.
    match state.app.client(&request.client_id).await {
        Ok(Some(c)) if c.allows_redirect(&request.redirect_uri) => Some((request, c)),
        _ => None,
    }
}

/// `GET /oidc/authorize/resume?request=<id>`: back from the sign-in pages.
pub(super) async fn resume(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Query(q): Query<ResumeQuery>,
) -> Response {
    let Some((request, client)) = pending(&state, &q.request).await else {
        return error_page(&ctx);
    };
    let session = signed_in(&state, &jar).await;
    let consent = consent_due(&state, &request, &client, session.as_ref()).await;
    let next = request.resume(
        session.as_ref().map(|i| &i.session),
        consent,
        state.app.now(),
    );
    follow(
        &state,
        &ctx,
        &request,
        session.as_ref(),
        next,
        Some(&q.request),
    )
    .await
}
