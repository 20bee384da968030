//! RP-initiated logout (`/oidc/logout`).

use super::authorize::error_page;
use super::{found, issuer, with_params};
use crate::error::{OnPage, PageError};
use crate::extract::{clear_session, current_session, session_token, Ctx};
use crate::AppState;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use std::collections::HashMap;

/// What an `id_token_hint` we signed says: for whom (`aud`), and whose sign-in
/// (`sid`, `sub`).
struct Hint {
    aud: String,
    sid: Option<String>,
    sub: Option<String>,
}

/// The hint, when it is an ID token we signed (checked against the published keys).
async fn read_hint(state: &AppState, hint: &str) -> Option<Hint> {
    let keys = state.app.published_keys().await.ok()?;
    let claims = tweestap_domain::oidc::keys::verify_jws(hint, &keys)?;
    if claims["iss"].as_str() != Some(issuer(state).as_str()) {
        return None;
    }
    let aud = match &claims["aud"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a.first()?.as_str()?.to_owned(),
        _ => return None,
    };
    let text = |k: &str| claims[k].as_str().map(str::to_owned);
    Some(Hint {
        aud,
        sid: text("sid"),
        sub: text("sub"),
    })
}

/// `GET /oidc/logout` (RP-initiated logout 1.0). `post_logout_redirect_uri` is
/// followed only when it is one of the client's registered redirect URIs, exactly.
pub(super) async fn logout(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    end_session(state, ctx, jar, q, false).await
}

/// The "yes, sign me out" of the confirmation page.
pub(super) async fn logout_confirmed(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Form(q): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let csrf = q.get("csrf").map(String::as_str).unwrap_or_default();
    if !state.csrf.verify(&jar, csrf) {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "error_csrf",
            ctx.lang,
        ));
    }
    end_session(state, ctx, jar, q, true).await
}

/// Without a valid `id_token_hint` any page could sign people out with a link, so a
/// signed-in browser is asked first (RP-Initiated Logout 1.0, section 2).
fn logout_confirmation(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    q: &HashMap<String, String>,
) -> Response {
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let fields: Vec<(String, String)> = [
        "client_id",
        "id_token_hint",
        "post_logout_redirect_uri",
        "state",
    ]
    .iter()
    .filter_map(|k| q.get(*k).map(|v| ((*k).to_owned(), v.clone())))
    .collect();
    let extra = minijinja::context! { fields => fields };
    (
        jar,
        crate::view::page(ctx, "logout_confirm.html", &csrf, true, extra),
    )
        .into_response()
}

async fn end_session(
    state: AppState,
    ctx: Ctx,
    jar: CookieJar,
    q: HashMap<String, String>,
    confirmed: bool,
) -> Result<Response, PageError> {
    let p = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let hint = match p("id_token_hint") {
        Some(h) => match read_hint(&state, h).await {
            Some(hint) => Some(hint),
            None => return Ok(error_page(&ctx)),
        },
        None => None,
    };
    let hinted = hint.as_ref().map(|h| h.aud.clone());
    let client_id = match (p("client_id"), hinted.as_deref()) {
        (Some(c), Some(h)) if c != h => return Ok(error_page(&ctx)),
        (Some(c), _) => Some(c.to_owned()),
        (None, h) => h.map(str::to_owned),
    };
    let client = match &client_id {
        Some(id) => state.app.client(id).await.ok().flatten(),
        None => None,
    };
    let target = match p("post_logout_redirect_uri") {
        Some(u) => match &client {
            Some(c) if c.allows_redirect(u) => Some(u.to_owned()),
            _ => return Ok(error_page(&ctx)),
        },
        None => None,
    };
    let info = current_session(&state, &jar).await.ok().flatten();
    // Without asking only when the hint is of this very sign-in: anybody can hold
    // an ID token of their own to send someone else's browser here with.
    let hint_is_this_sign_in = match (&hint, &info) {
        (Some(h), Some(i)) => match &h.sid {
            Some(sid) => *sid == i.session.sid,
            None => h.sub.as_deref() == Some(i.account.id.0.to_string().as_str()),
        },
        _ => false,
    };
    if info.is_some() && !hint_is_this_sign_in && !confirmed {
        return Ok(logout_confirmation(&state, &ctx, jar, &q));
    }
    if let Some(token) = session_token(&jar) {
        state.app.logout(&token, &ctx.req).await.on_page(ctx.lang)?;
    }
    state
        .app
        .audit_oidc_logout(
            info.as_ref().map(|i| &i.account),
            client_id.as_deref(),
            &ctx.req,
        )
        .await
        .on_page(ctx.lang)?;
    let jar = clear_session(jar);
    Ok(match target {
        Some(u) => {
            let mut params = Vec::new();
            if let Some(s) = p("state") {
                params.push(("state", s));
            }
            (jar, found(&with_params(&u, &params))).into_response()
        }
        None => (jar, found("/login")).into_response(),
    })
}
