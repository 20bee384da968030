//! `POST /oidc/token` and the userinfo endpoint.

use super::client_auth::{authenticated_client, oauth_error};
use super::{issuer, no_store};
use crate::extract::Ctx;
use crate::AppState;
use axum::extract::{Form, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::collections::HashMap;
use tweestap_domain::oidc::flow::OidcError;

/// `POST /oidc/token`.
pub(super) async fn token(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let p = |k: &str| f.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let client = match authenticated_client(&state, &ctx, &headers, &f).await {
        Ok(c) => c,
        Err(e) => return oauth_error(&e),
    };
    let iss = issuer(&state);
    let grant_type = p("grant_type");
    // A service has no people to sign in: client_credentials is all it may use.
    if client.options.service && grant_type != Some("client_credentials") {
        return oauth_error(&OidcError::new(
            "unauthorized_client",
            "a service client may only use client_credentials",
        ));
    }
    let result = match grant_type {
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
        Some("client_credentials") => state.app.service_token(&client, p("scope"), &ctx.req).await,
        _ => Err(OidcError::new(
            "unsupported_grant_type",
            "use authorization_code, refresh_token or client_credentials",
        )),
    };
    match result {
        Ok(t) => {
            let mut body = serde_json::json!({
                "access_token": t.access_token,
                "token_type": "Bearer",
                "expires_in": t.expires_in,
                "scope": t.scope,
            });
            if let Some(id) = t.id_token {
                body["id_token"] = serde_json::json!(id);
            }
            if let Some(r) = t.refresh_token {
                body["refresh_token"] = serde_json::json!(r);
            }
            no_store(Json(body).into_response())
        }
        Err(e) => oauth_error(&e),
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
