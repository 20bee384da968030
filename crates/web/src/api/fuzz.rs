//! The API's request bodies and queries, read as their handlers read them, for the
//! fuzz targets (through the crate's `fuzzing` module).

use super::json::ApiJson;
use axum::extract::{FromRequest, Query, Request};
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use serde::de::DeserializeOwned;

/// The JSON bodies, by the name [`json_body`] takes.
pub const JSON_BODIES: [&str; 17] = [
    "login",
    "second_factor",
    "code",
    "password",
    "empty",
    "forgot",
    "reset",
    "secure",
    "open",
    "begin_totp",
    "begin_sms",
    "reason",
    "email",
    "step_up",
    "new_account",
    "change_account",
    "policy_patch",
];

async fn json<T: DeserializeOwned>(req: Request) -> Result<(), StatusCode> {
    match ApiJson::<T>::from_request(req, &()).await {
        Ok(_) => Ok(()),
        Err(e) => Err(e.into_response().status()),
    }
}

/// Reads `req`'s body as the JSON body `name` (one of [`JSON_BODIES`]); the status
/// of the answer when it is refused.
pub async fn json_body(name: &str, req: Request) -> Result<(), StatusCode> {
    match name {
        "login" => json::<super::auth::LoginBody>(req).await,
        "second_factor" => json::<super::auth::SecondFactorBody>(req).await,
        "code" => json::<super::bodies::CodeBody>(req).await,
        "password" => json::<super::bodies::PasswordBody>(req).await,
        "empty" => json::<super::json::Empty>(req).await,
        "forgot" => json::<super::password::ForgotBody>(req).await,
        "reset" => json::<super::password::ResetBody>(req).await,
        "secure" => json::<super::enroll::SecureBody>(req).await,
        "open" => json::<super::enroll::OpenBody>(req).await,
        "begin_totp" => json::<super::me::app::BeginTotpBody>(req).await,
        "begin_sms" => json::<super::me::sms::BeginSmsBody>(req).await,
        "reason" => json::<super::support::ReasonBody>(req).await,
        "email" => json::<super::support::EmailBody>(req).await,
        "step_up" => json::<super::admin::settings::StepUpBody>(req).await,
        "new_account" => json::<super::admin::accounts::NewAccountBody>(req).await,
        "change_account" => json::<super::admin::accounts::ChangeBody>(req).await,
        _ => json::<serde_json::Value>(req).await,
    }
}

fn query<T: DeserializeOwned>(uri: &Uri) -> Result<(), StatusCode> {
    match Query::<T>::try_from_uri(uri) {
        Ok(_) => Ok(()),
        Err(e) => Err(e.into_response().status()),
    }
}

/// The query strings, by the name [`query_string`] takes.
pub const QUERIES: [&str; 5] = ["search", "accounts", "delete_account", "without", "audit"];

/// Reads `uri`'s query as the query `name` (one of [`QUERIES`]).
pub fn query_string(name: &str, uri: &Uri) -> Result<(), StatusCode> {
    match name {
        "search" => query::<super::support::SearchQuery>(uri),
        "accounts" => query::<super::admin::accounts::ListQuery>(uri),
        "delete_account" => query::<super::admin::accounts::DeleteQuery>(uri),
        "without" => query::<super::admin::overview::WithoutQuery>(uri),
        _ => query::<super::admin::overview::AuditQuery>(uri),
    }
}
