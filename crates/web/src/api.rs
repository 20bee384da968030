//! The JSON API under `/api/v1`: the same journeys as the pages, for scripts and apps.
//! It shares the session cookie with the pages; requiring `application/json` bodies is
//! its CSRF defence (a cross-site form cannot send that content type).
//!
//! Routes are listed once with their OpenAPI description (utoipa-axum), so a route
//! and its documentation cannot part; `GET /api/v1/openapi.json` serves the result,
//! composed on its first request (`routing`).

mod admin;
mod auth;
mod bodies;
mod contract;
mod enroll;
#[doc(hidden)]
pub(crate) mod fuzz;
mod json;
mod me;
mod passkey_login;
mod password;
mod routing;
mod support;

use crate::error::{ApiError, ErrorCode};
use crate::AppState;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::sync::LazyLock;
use utoipa_axum::router::OpenApiRouter;

routing::handlers! {
    fn documented_here / bare_here (contract::base()) {
        [openapi_json]
        [auth::login]
        [auth::second_factor]
        [auth::send_sms]
        [auth::logout]
        [passkey_login::options]
        [passkey_login::sign_in]
        [password::forgot]
        [password::reset]
        [enroll::secure]
        [enroll::secure_code]
        [enroll::secure_resend]
        [enroll::request_link]
        [enroll::link_state, enroll::open_link]
        [me::me]
        [me::app::begin_totp]
        [me::app::confirm_totp]
        [me::passkey::begin_passkey]
        [me::passkey::confirm_passkey]
        [me::sms::begin_sms]
        [me::sms::resend_sms]
        [me::sms::confirm_sms]
        [me::remove_factor]
        [me::new_recovery_codes]
        [me::devices::devices, me::devices::forget_devices]
        [me::devices::forget_device]
        [support::search]
        [support::account]
        [support::reset_two_factor]
        [support::change_email]
    }
}

/// Every route of the API with its description.
fn documented() -> OpenApiRouter<AppState> {
    documented_here().merge(admin::documented())
}

/// The OpenAPI document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = documented().into_openapi();
    contract::add_common_responses(&mut doc);
    doc
}

/// The routes the server runs: the same handlers, without composing their
/// description.
pub fn routes() -> Router<AppState> {
    bare_here()
        .merge(admin::routes())
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                "no such endpoint",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::MethodNotAllowed,
                "this endpoint does not take that method",
            )
        })
}

/// The document as served, made once.
static DOCUMENT: LazyLock<Result<String, String>> =
    LazyLock::new(|| openapi().to_pretty_json().map_err(|e| e.to_string()));

/// This OpenAPI document
#[utoipa::path(
    get, path = "/openapi.json", tag = "meta", operation_id = "getOpenApi",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", content_type = "application/json")),
)]
async fn openapi_json() -> Response {
    match &*DOCUMENT {
        Ok(doc) => ([(header::CONTENT_TYPE, "application/json")], doc.clone()).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI document did not serialise");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "the server could not complete the request",
            )
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_serialises_with_every_route() {
        let doc: serde_json::Value =
            serde_json::from_str(&super::openapi().to_pretty_json().expect("json")).expect("json");
        if let Ok(path) = std::env::var("TWEESTAP_DUMP_OPENAPI") {
            std::fs::write(path, serde_json::to_string_pretty(&doc).expect("json")).expect("write");
        }
        let ops: usize = doc["paths"]
            .as_object()
            .expect("paths")
            .values()
            .map(|item| item.as_object().map_or(0, |o| o.len()))
            .sum();
        assert_eq!(ops, 49, "every route is documented");
    }
}
