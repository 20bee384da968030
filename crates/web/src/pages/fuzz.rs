//! The pages' forms and queries, read as their handlers read them, and the policy
//! form's translation to a patch, for the fuzz targets (through the crate's `fuzzing` module).

use axum::extract::{Form, FromRequest, Query, Request};
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use tweestap_domain::policy::document::PolicyDocument;

/// The forms, by the name [`form`] takes.
pub const FORMS: [&str; 25] = [
    "csrf_only",
    "login",
    "login_code",
    "logout",
    "forgot",
    "reset",
    "secure",
    "method_choice",
    "enroll_code",
    "enroll_csrf",
    "link",
    "support_reset",
    "support_email",
    "account_password",
    "account_code",
    "download",
    "enable_app",
    "remove_factor",
    "add_phone",
    "admin_csrf",
    "step_up",
    "create_account",
    "account_action",
    "policy",
    "oidc",
];

async fn read<T: DeserializeOwned>(req: Request) -> Result<(), StatusCode> {
    match Form::<T>::from_request(req, &()).await {
        Ok(_) => Ok(()),
        Err(e) => Err(e.into_response().status()),
    }
}

/// Reads `req` as the form `name` (one of [`FORMS`]); the status of the answer when
/// it is refused.
pub async fn form(name: &str, req: Request) -> Result<(), StatusCode> {
    match name {
        "csrf_only" => read::<super::CsrfOnly>(req).await,
        "login" => read::<super::login::LoginForm>(req).await,
        "login_code" => read::<super::login::CodeForm>(req).await,
        "logout" => read::<super::login::LogoutForm>(req).await,
        "forgot" => read::<super::password::ForgotForm>(req).await,
        "reset" => read::<super::password::ResetForm>(req).await,
        "secure" => read::<super::enroll::SecureForm>(req).await,
        "method_choice" => read::<super::enroll::MethodChoice>(req).await,
        "enroll_code" => read::<super::enroll::CodeForm>(req).await,
        "enroll_csrf" => read::<super::enroll::CsrfOnly>(req).await,
        "link" => read::<super::enroll::LinkForm>(req).await,
        "support_reset" => read::<super::support::ResetForm>(req).await,
        "support_email" => read::<super::support::EmailForm>(req).await,
        "account_password" => read::<super::account::PasswordForm>(req).await,
        "account_code" => read::<super::account::CodeForm>(req).await,
        "download" => {
            match axum_extra::extract::Form::<super::account::DownloadForm>::from_request(req, &())
                .await
            {
                Ok(_) => Ok(()),
                Err(e) => Err(e.into_response().status()),
            }
        }
        "enable_app" => read::<super::account::app::EnableForm>(req).await,
        "remove_factor" => read::<super::account::remove::RemoveForm>(req).await,
        "add_phone" => read::<super::account::sms::AddPhoneForm>(req).await,
        "admin_csrf" => read::<super::admin::CsrfForm>(req).await,
        "step_up" => read::<super::admin::StepUpForm>(req).await,
        "create_account" => read::<super::admin::accounts::CreateForm>(req).await,
        "account_action" => read::<super::admin::accounts::ActionForm>(req).await,
        "policy" => read::<Vec<(String, String)>>(req).await,
        // The OpenID Connect endpoints' forms (token, PAR, introspection, logout).
        _ => read::<HashMap<String, String>>(req).await,
    }
}

fn query<T: DeserializeOwned>(uri: &Uri) -> Result<(), StatusCode> {
    match Query::<T>::try_from_uri(uri) {
        Ok(_) => Ok(()),
        Err(e) => Err(e.into_response().status()),
    }
}

/// The query strings, by the name [`query_string`] takes.
pub const QUERIES: [&str; 15] = [
    "next",
    "login",
    "login_code",
    "via",
    "profile",
    "support_search",
    "support_account",
    "dashboard",
    "role",
    "admin_next",
    "accounts",
    "account",
    "audit",
    "policy_saved",
    "oidc",
];

/// Reads `uri`'s query as the query `name` (one of [`QUERIES`]).
pub fn query_string(name: &str, uri: &Uri) -> Result<(), StatusCode> {
    match name {
        "next" => query::<super::Next>(uri),
        "login" => query::<super::login::LoginQuery>(uri),
        "login_code" => query::<super::login::CodeQuery>(uri),
        "via" => query::<super::steps::Via>(uri),
        "profile" => query::<super::account::ProfileQuery>(uri),
        "support_search" => query::<super::support::SearchQuery>(uri),
        "support_account" => query::<super::support::AccountQuery>(uri),
        "dashboard" => query::<super::admin::DashboardQuery>(uri),
        "role" => query::<super::admin::RoleQuery>(uri),
        "admin_next" => query::<super::admin::NextQuery>(uri),
        "accounts" => query::<super::admin::accounts::ListQuery>(uri),
        "account" => query::<super::admin::accounts::ShowQuery>(uri),
        "audit" => query::<super::admin::audit::AuditQuery>(uri),
        "policy_saved" => query::<super::admin::policy::Saved>(uri),
        // The OpenID Connect endpoints' queries (authorize, logout).
        _ => query::<HashMap<String, String>>(uri),
    }
}

/// The policy form's fields for a document, as its page fills them.
pub fn policy_form(p: &PolicyDocument) -> HashMap<String, String> {
    super::admin::policy::values_of(p)
}

/// The merge patch the policy form's fields make.
pub fn policy_patch(fields: &HashMap<String, String>) -> serde_json::Value {
    super::admin::policy::patch_of(fields)
}
