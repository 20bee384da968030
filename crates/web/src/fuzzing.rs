//! Entry points for the fuzz targets (`fuzz/` at the repository root): the web
//! layer's parsers of outside input (bodies, queries, cookies, return URLs, client
//! credentials), exposed as they are, unchanged. Not an API: nothing in the product
//! calls these.

use axum::extract::Request;
use axum::http::{StatusCode, Uri};
use std::collections::HashMap;
use std::future::Future;
use tweestap_domain::policy::document::PolicyDocument;

pub use crate::csrf::CSRF_COOKIE;
pub use crate::extract::{
    device_token, session_token, set_device, set_session, DEVICE_COOKIE, SESSION_COOKIE,
};
pub use crate::forward_auth::{allowed_return_to, return_cookie, RETURN_COOKIE};
pub use crate::oidc_flow::client_auth::{basic_credentials, presented_credentials};

/// The JSON bodies [`json_body`] knows.
pub const JSON_BODIES: &[&str] = &crate::api::fuzz::JSON_BODIES;
/// The API's query strings [`api_query`] knows.
pub const API_QUERIES: &[&str] = &crate::api::fuzz::QUERIES;
/// The pages' forms [`form`] knows.
pub const FORMS: &[&str] = &crate::pages::fuzz::FORMS;
/// The pages' query strings [`page_query`] knows.
pub const PAGE_QUERIES: &[&str] = &crate::pages::fuzz::QUERIES;

/// Runs a future that never waits on anything outside (a request whose body is in
/// memory) to its end.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// `req`'s body read as the API's JSON body `name`; the answer's status when refused.
pub fn json_body(name: &str, req: Request) -> Result<(), StatusCode> {
    ready(crate::api::fuzz::json_body(name, req))
}

/// `uri`'s query read as the API's query `name`.
pub fn api_query(name: &str, uri: &Uri) -> Result<(), StatusCode> {
    crate::api::fuzz::query_string(name, uri)
}

/// `req` read as the page form `name`; the answer's status when refused.
pub fn form(name: &str, req: Request) -> Result<(), StatusCode> {
    ready(crate::pages::fuzz::form(name, req))
}

/// `uri`'s query read as the page query `name`.
pub fn page_query(name: &str, uri: &Uri) -> Result<(), StatusCode> {
    crate::pages::fuzz::query_string(name, uri)
}

/// The policy form's fields for a document.
pub fn policy_form(p: &PolicyDocument) -> HashMap<String, String> {
    crate::pages::fuzz::policy_form(p)
}

/// The merge patch the policy form's fields make.
pub fn policy_patch(fields: &HashMap<String, String>) -> serde_json::Value {
    crate::pages::fuzz::policy_patch(fields)
}

/// A redirect URI with the parameters of an authorization answer added (`state`
/// comes from the client).
pub fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    crate::oidc_flow::with_params(uri, params)
}

/// The QR code of an otpauth URI, as the set-up page shows it (SVG).
pub fn qr_svg(data: &str) -> Result<String, String> {
    crate::qr::svg(data).map_err(|e| e.to_string())
}
