//! `GET /oidc/authorize` and its resumption after the sign-in pages.

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
use tweestap_domain::oidc::flow::AuthRequest;
use tweestap_domain::service::SessionInfo;
use tweestap_domain::session::SessionStage;

pub(super) fn error_page(ctx: &Ctx) -> Response {
    PageError::new(StatusCode::BAD_REQUEST, "error_oidc_request", ctx.lang).into_response()
}

/// An error sent back to the (validated) redirect URI (RFC 6749 4.1.2.1, RFC 9207).
fn error_redirect(
    state: &AppState,
    redirect_uri: &str,
    rp_state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let iss = issuer(state);
    let mut p = vec![("error", error), ("error_description", description)];
    if let Some(s) = rp_state {
        p.push(("state", s));
    }
    p.push(("iss", &iss));
    found(&with_params(redirect_uri, &p))
}

async fn signed_in(state: &AppState, jar: &CookieJar) -> Option<SessionInfo> {
    current_session(state, jar)
        .await
        .ok()
        .flatten()
        .filter(|s| s.session.stage == SessionStage::Authenticated)
}

/// Issues the code and sends the browser back to the client.
async fn complete(state: &AppState, ctx: &Ctx, r: &AuthRequest, info: &SessionInfo) -> Response {
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

/// Sends the browser to sign in and come back to `resume`.
fn to_sign_in(state: &AppState, id: &str, r: &AuthRequest, fresh: bool) -> Response {
    let base = issuer(state);
    let resume = format!("{base}/oidc/authorize/resume?request={id}");
    let mut p: Vec<(&str, &str)> = vec![("rd", &resume)];
    if let Some(h) = &r.login_hint {
        p.push(("login_hint", h));
    }
    if fresh {
        p.push(("prompt", "login"));
    }
    found(&with_params(&format!("{base}/login"), &p))
}

fn valid_challenge(c: &str) -> bool {
    (43..=128).contains(&c.len())
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `GET /oidc/authorize`.
pub(super) async fn authorize(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let p = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    // Until the client and its redirect URI are known, errors are a page: never a
    // redirect to an address nobody registered.
    let client = match p("client_id") {
        Some(id) => match state.app.client(id).await {
            Ok(Some(c)) => c,
            Ok(None) => return error_page(&ctx),
            Err(e) => return PageError::from_domain(e, ctx.lang).into_response(),
        },
        None => return error_page(&ctx),
    };
    let Some(redirect_uri) = p("redirect_uri").filter(|u| client.allows_redirect(u)) else {
        return error_page(&ctx);
    };
    let rp_state = p("state");
    let fail = |error: &str, why: &str| error_redirect(&state, redirect_uri, rp_state, error, why);
    if p("request").is_some() || p("request_uri").is_some() {
        return fail("request_not_supported", "request objects are not supported");
    }
    if p("response_type") != Some("code") {
        return fail(
            "unsupported_response_type",
            "only response_type=code is supported",
        );
    }
    if p("response_mode").is_some_and(|m| m != "query") {
        return fail("invalid_request", "only response_mode=query is supported");
    }
    let scope = p("scope").unwrap_or_default();
    if !scope.split(' ').any(|s| s == "openid") {
        return fail("invalid_scope", "the scope must include openid");
    }
    let challenge = p("code_challenge");
    match (challenge, p("code_challenge_method")) {
        (Some(c), Some("S256")) if valid_challenge(c) => {}
        (Some(_), Some("S256")) => {
            return fail("invalid_request", "the code_challenge is malformed")
        }
        (Some(_), _) | (None, Some(_)) => {
            return fail(
                "invalid_request",
                "PKCE needs code_challenge with code_challenge_method=S256",
            )
        }
        (None, None) if client.is_public() => {
            return fail(
                "invalid_request",
                "a public client must use PKCE (code_challenge with S256)",
            )
        }
        (None, None) => {}
    }
    let max_age = match p("max_age").map(str::parse::<i64>) {
        None => None,
        Some(Ok(n)) if n >= 0 => Some(n),
        Some(_) => return fail("invalid_request", "max_age must be a number of seconds"),
    };
    let prompts: Vec<&str> = p("prompt").unwrap_or_default().split(' ').collect();
    let prompt_none = prompts.contains(&"none");
    let prompt_login = prompts.contains(&"login");
    if prompt_none && prompts.len() > 1 {
        return fail("invalid_request", "prompt=none cannot be combined");
    }
    let now = state.app.now().timestamp();
    let request = AuthRequest {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scope: scope.to_owned(),
        state: rp_state.map(str::to_owned),
        nonce: p("nonce").map(str::to_owned),
        code_challenge: challenge.map(str::to_owned),
        max_age,
        login_hint: p("login_hint").map(str::to_owned),
        not_before: prompt_login.then_some(now),
    };
    // ui_locales: the first language we speak becomes this browser's.
    let jar = match p("ui_locales")
        .unwrap_or_default()
        .split(' ')
        .find_map(|l| {
            let l = l.split('-').next().unwrap_or_default().to_ascii_lowercase();
            matches!(l.as_str(), "nl" | "en").then_some(l)
        }) {
        Some(l) => jar.add(
            Cookie::build((LANG_COOKIE, l))
                .path("/")
                .permanent()
                .same_site(SameSite::Lax)
                .secure(state.settings.secure_cookies)
                .build(),
        ),
        None => jar,
    };
    let session = signed_in(&state, &jar).await;
    if let Some(info) = &session {
        // prompt=login always asks again, however recent the sign-in.
        if !prompt_login && state.app.sign_in_satisfies(&request, info) {
            return (jar, complete(&state, &ctx, &request, info).await).into_response();
        }
    }
    if prompt_none {
        return (
            jar,
            fail("login_required", "the person is not signed in here"),
        )
            .into_response();
    }
    let id = match state.app.store_auth_request(&request).await {
        Ok(id) => id,
        Err(e) => return PageError::from_domain(e, ctx.lang).into_response(),
    };
    // Signed in, but not freshly enough (prompt=login, max_age): sign in again.
    let fresh = prompt_login || session.is_some();
    (jar, to_sign_in(&state, id.as_str(), &request, fresh)).into_response()
}

#[derive(Deserialize)]
pub(super) struct ResumeQuery {
    #[serde(default)]
    request: String,
}

/// `GET /oidc/authorize/resume?request=<id>`: back from the sign-in pages.
pub(super) async fn resume(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Query(q): Query<ResumeQuery>,
) -> Response {
    let request = match state.app.auth_request(&q.request).await {
        Ok(Some(r)) => r,
        Ok(None) => return error_page(&ctx),
        Err(e) => return PageError::from_domain(e, ctx.lang).into_response(),
    };
    // The client may have been removed meanwhile.
    match state.app.client(&request.client_id).await {
        Ok(Some(c)) if c.allows_redirect(&request.redirect_uri) => {}
        _ => return error_page(&ctx),
    }
    match signed_in(&state, &jar).await {
        Some(info) if state.app.sign_in_satisfies(&request, &info) => {
            complete(&state, &ctx, &request, &info).await
        }
        Some(_) => to_sign_in(&state, &q.request, &request, true),
        None => to_sign_in(&state, &q.request, &request, false),
    }
}
