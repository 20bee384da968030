//! `POST /oidc/token` and the userinfo endpoint.

use super::{issuer, no_store};
use crate::extract::Ctx;
use crate::AppState;
use axum::extract::{Form, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use std::collections::HashMap;
use tweestap_domain::oidc::flow::OidcError;

fn oauth_error(e: &OidcError, basic: bool) -> Response {
    let status = match e.error {
        "invalid_client" => StatusCode::UNAUTHORIZED,
        "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut r = (
        status,
        Json(serde_json::json!({ "error": e.error, "error_description": e.description })),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        let _ = basic;
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"tweestap\""),
        );
    }
    no_store(r)
}

/// `client_secret_basic` credentials: base64 of `urlencoded(id):urlencoded(secret)`.
fn basic_credentials(headers: &HeaderMap) -> Option<Option<(String, String)>> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decode = || {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (id, secret) = raw.split_once(':')?;
        let un = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        Some((un(id)?, un(secret)?))
    };
    Some(decode())
}

/// `POST /oidc/token`.
pub(super) async fn token(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let p = |k: &str| f.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let basic = basic_credentials(&headers);
    let (client_id, secret) = match (&basic, p("client_secret")) {
        (Some(_), Some(_)) => {
            return oauth_error(
                &OidcError::new("invalid_request", "use one client authentication method"),
                true,
            )
        }
        (Some(None), None) => {
            return oauth_error(
                &OidcError::new("invalid_client", "malformed Basic credentials"),
                true,
            )
        }
        (Some(Some((id, s))), None) => {
            if p("client_id").is_some_and(|c| c != id) {
                return oauth_error(
                    &OidcError::new("invalid_request", "client_id does not match"),
                    true,
                );
            }
            (id.clone(), Some(s.clone()))
        }
        (None, s) => match p("client_id") {
            Some(id) => (id.to_owned(), s.map(str::to_owned)),
            None => {
                return oauth_error(
                    &OidcError::new("invalid_client", "client authentication failed"),
                    false,
                )
            }
        },
    };
    let is_basic = basic.is_some();
    let client = match state
        .app
        .authenticate_client(&client_id, secret.as_deref(), &ctx.req)
        .await
    {
        Ok(c) => c,
        Err(e) => return oauth_error(&e, is_basic),
    };
    let iss = issuer(&state);
    let result = match p("grant_type") {
        Some("authorization_code") => {
            state
                .app
                .exchange_code(
                    &iss,
                    &client,
                    p("code").unwrap_or_default(),
                    p("redirect_uri"),
                    p("code_verifier"),
                    &ctx.req,
                )
                .await
        }
        Some("refresh_token") => {
            state
                .app
                .refresh_tokens(
                    &iss,
                    &client,
                    p("refresh_token").unwrap_or_default(),
                    &ctx.req,
                )
                .await
        }
        _ => Err(OidcError::new(
            "unsupported_grant_type",
            "use authorization_code or refresh_token",
        )),
    };
    match result {
        Ok(t) => {
            let mut body = serde_json::json!({
                "access_token": t.access_token,
                "token_type": "Bearer",
                "expires_in": t.expires_in,
                "id_token": t.id_token,
                "scope": t.scope,
            });
            if let Some(r) = t.refresh_token {
                body["refresh_token"] = serde_json::json!(r);
            }
            no_store(Json(body).into_response())
        }
        Err(e) => oauth_error(&e, is_basic),
    }
}

// ---- userinfo -------------------------------------------------------------------

pub(super) async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    let unauthorized = |error: &'static str| {
        let mut r = StatusCode::UNAUTHORIZED.into_response();
        let v = format!("Bearer error=\"{error}\"");
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        no_store(r)
    };
    let Some(token) = bearer else {
        return unauthorized("invalid_request");
    };
    match state.app.userinfo(&token).await {
        Ok(Some(v)) => no_store(Json(v).into_response()),
        Ok(None) => unauthorized("invalid_token"),
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
}
