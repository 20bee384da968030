//! Token introspection (RFC 7662) and revocation (RFC 7009).

use super::client_auth::{authenticated_client, oauth_error};
use super::{issuer, no_store};
use crate::extract::Ctx;
use crate::AppState;
use axum::extract::{Form, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::collections::HashMap;
use tweestap_domain::oidc::flow::OidcError;

fn token_param(f: &HashMap<String, String>) -> Result<&str, OidcError> {
    f.get("token")
        .map(String::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OidcError::new("invalid_request", "the token parameter is missing"))
}

/// `POST /oidc/introspect`.
pub(super) async fn introspect(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let client = match authenticated_client(&state, &ctx, &headers, &f).await {
        Ok(c) => c,
        Err(e) => return oauth_error(&e),
    };
    let token = match token_param(&f) {
        Ok(t) => t,
        Err(e) => return oauth_error(&e),
    };
    // token_type_hint is only a hint (2.1): every kind is looked up alike.
    match state.app.introspect(&issuer(&state), &client, token).await {
        Ok(v) => no_store(Json(v).into_response()),
        Err(e) => oauth_error(&e),
    }
}

/// `POST /oidc/revoke`.
pub(super) async fn revoke(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let client = match authenticated_client(&state, &ctx, &headers, &f).await {
        Ok(c) => c,
        Err(e) => return oauth_error(&e),
    };
    let token = match token_param(&f) {
        Ok(t) => t,
        Err(e) => return oauth_error(&e),
    };
    match state.app.revoke_token(&client, token, &ctx.req).await {
        Ok(()) => no_store(axum::http::StatusCode::OK.into_response()),
        Err(e) => oauth_error(&e),
    }
}
