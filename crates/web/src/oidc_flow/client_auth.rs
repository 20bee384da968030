//! How clients authenticate at the token, introspection, revocation and PAR
//! endpoints (`client_secret_basic`, `client_secret_post`, or a public client by its
//! id), and the OAuth error answer those endpoints share.

use super::no_store;
use crate::extract::Ctx;
use crate::AppState;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use std::collections::HashMap;
use tweestap_domain::oidc::flow::OidcError;
use tweestap_domain::oidc::OidcClient;

/// The JSON error of RFC 6749 5.2, never cached; 401 with a challenge for a
/// client that failed to authenticate.
pub(super) fn oauth_error(e: &OidcError) -> Response {
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
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"tweestap\""),
        );
    }
    no_store(r)
}

/// `client_secret_basic` credentials: base64 of `urlencoded(id):urlencoded(secret)`.
/// `None`: no Basic header; `Some(None)`: a malformed one.
pub fn basic_credentials(headers: &HeaderMap) -> Option<Option<(String, String)>> {
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

/// The client the request authenticates as, or why not.
pub(super) async fn authenticated_client(
    state: &AppState,
    ctx: &Ctx,
    headers: &HeaderMap,
    f: &HashMap<String, String>,
) -> Result<OidcClient, OidcError> {
    let (client_id, secret) = presented_credentials(headers, f)?;
    state
        .app
        .authenticate_client(&client_id, secret.as_deref(), &ctx.req)
        .await
}

/// The client id and secret a request presents (Basic or in the form), or why
/// they cannot be taken.
pub fn presented_credentials(
    headers: &HeaderMap,
    f: &HashMap<String, String>,
) -> Result<(String, Option<String>), OidcError> {
    let p = |k: &str| f.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let refuse = |error: &'static str, why: &str| Err(OidcError::new(error, why));
    let (client_id, secret) = match (basic_credentials(headers), p("client_secret")) {
        (Some(_), Some(_)) => {
            return refuse("invalid_request", "use one client authentication method")
        }
        (Some(None), None) => return refuse("invalid_client", "malformed Basic credentials"),
        (Some(Some((id, s))), None) => {
            if p("client_id").is_some_and(|c| c != id) {
                return refuse("invalid_request", "client_id does not match");
            }
            (id, Some(s))
        }
        (None, s) => match p("client_id") {
            Some(id) => (id.to_owned(), s.map(str::to_owned)),
            None => return refuse("invalid_client", "client authentication failed"),
        },
    };
    Ok((client_id, secret))
}
