//! The OpenID Connect code flow's endpoints: authorize (and its resumption after
//! the sign-in pages), token, userinfo and RP-initiated logout.
//!
//! The authorization request survives the sign-in through the pending return URL
//! of forward-auth: `/oidc/authorize` keeps the validated request server-side and
//! sends the browser to `/login?rd=<public_url>/oidc/authorize/resume?request=<id>`;
//! after any sign-in path, `/` follows that URL back here.

mod authorize;
mod choices;
pub(crate) mod client_auth;
mod introspection;
mod logout;
mod par;
mod token;

use crate::AppState;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tweestap_domain::oidc::discovery;
use tweestap_domain::Tweestap;

pub fn routes(app: &Arc<Tweestap>) -> Router<AppState> {
    // Browser apps (public clients) call these from their own origin.
    let for_browser_apps = Router::new()
        .route(discovery::TOKEN_PATH, axum::routing::post(token::token))
        .route(
            discovery::REVOCATION_PATH,
            axum::routing::post(introspection::revoke),
        )
        .route(
            discovery::USERINFO_PATH,
            get(token::userinfo).post(token::userinfo),
        )
        .layer(client_origins(app.clone()));
    Router::new()
        .route(discovery::AUTHORIZE_PATH, get(authorize::authorize))
        .route("/oidc/authorize/resume", get(authorize::resume))
        .route(
            "/oidc/consent",
            get(choices::consent_form).post(choices::consent_submit),
        )
        .route(
            "/oidc/select-account",
            get(choices::select_account_form).post(choices::select_account_submit),
        )
        .route(
            discovery::INTROSPECTION_PATH,
            axum::routing::post(introspection::introspect),
        )
        .route(discovery::PAR_PATH, axum::routing::post(par::push))
        .route(
            discovery::LOGOUT_PATH,
            get(logout::logout).post(logout::logout_confirmed),
        )
        .merge(for_browser_apps)
}

/// CORS for the token and userinfo endpoints: only origins of registered redirect
/// URIs, and never with cookies (both endpoints authenticate by what is sent, not
/// by the browser's session), so no other site can use a visitor's sign-in here.
fn client_origins(app: Arc<Tweestap>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::async_predicate(
            move |origin: HeaderValue, _: &axum::http::request::Parts| {
                let app = app.clone();
                async move {
                    match origin.to_str() {
                        Ok(o) => app.is_client_origin(o).await.unwrap_or(false),
                        Err(_) => false,
                    }
                }
            },
        ))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(std::time::Duration::from_secs(600))
}

fn issuer(state: &AppState) -> String {
    state.settings.public_url.trim_end_matches('/').to_owned()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `uri` with the query parameters added (it may have a query already).
pub(crate) fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    let mut u = uri.to_owned();
    let mut sep = if uri.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        u.push(sep);
        u.push_str(k);
        u.push('=');
        u.push_str(&enc(v));
        sep = '&';
    }
    u
}

fn found(url: &str) -> Response {
    let mut r = Redirect::to(url).into_response();
    *r.status_mut() = StatusCode::FOUND;
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}
