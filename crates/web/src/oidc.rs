//! The OpenID Connect provider's public documents: discovery and the JWKS. Both
//! are the same for everyone, so browsers may fetch them from any origin and
//! caches may keep them for five minutes (key rotation keeps retired keys published
//! far longer than that).

use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tweestap_domain::oidc::discovery;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(configuration))
        // RFC 8414: the same metadata for OAuth 2.0 clients.
        .route(
            "/.well-known/oauth-authorization-server",
            get(configuration),
        )
        .route(discovery::JWKS_PATH, get(jwks))
}

/// JSON that anyone may read and cache briefly.
fn public_document(body: serde_json::Value) -> Response {
    let mut r = Json(body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

async fn configuration(State(state): State<AppState>) -> Response {
    let issuer = state.settings.public_url.trim_end_matches('/');
    public_document(discovery::document(issuer))
}

async fn jwks(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(public_document(state.app.jwks().await?))
}
