//! Pushed Authorization Requests (RFC 9126): the client sends the authorization
//! request straight to the provider, authenticated, and the browser carries only
//! a short-lived reference to it.

use super::authorize::REQUEST_URI_PREFIX;
use super::client_auth::{authenticated_client, oauth_error};
use super::no_store;
use crate::extract::Ctx;
use crate::AppState;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::collections::HashMap;
use tweestap_domain::oidc::authorize::AuthRequest;
use tweestap_domain::oidc::flow::OidcError;

/// `POST /oidc/par`.
pub(super) async fn push(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let client = match authenticated_client(&state, &ctx, &headers, &f).await {
        Ok(c) => c,
        Err(e) => return oauth_error(&e),
    };
    let p = |k: &str| f.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if client.options.service {
        return oauth_error(&OidcError::new(
            "unauthorized_client",
            "a service client signs no people in",
        ));
    }
    // 2.1: a request_uri inside a pushed request is refused.
    if p("request_uri").is_some() {
        return oauth_error(&OidcError::new(
            "invalid_request",
            "request_uri is not allowed here",
        ));
    }
    let Some(redirect_uri) = p("redirect_uri") else {
        return oauth_error(&OidcError::new(
            "invalid_request",
            "redirect_uri is missing",
        ));
    };
    if !client.allows_redirect(redirect_uri) {
        return oauth_error(&OidcError::new(
            "invalid_request",
            "redirect_uri is not registered for this client",
        ));
    }
    let request = match AuthRequest::from_params(&client, redirect_uri, p) {
        Ok(r) => r,
        Err(e) => return oauth_error(&e),
    };
    match state.app.push_auth_request(&request).await {
        Ok((id, expires_in)) => {
            let body = serde_json::json!({
                "request_uri": format!("{REQUEST_URI_PREFIX}{}", id.as_str()),
                "expires_in": expires_in,
            });
            no_store((StatusCode::CREATED, Json(body)).into_response())
        }
        Err(e) => oauth_error(&e.into()),
    }
}
