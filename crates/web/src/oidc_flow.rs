//! The OpenID Connect code flow's endpoints: authorize (and its resumption after
//! the sign-in pages), token, userinfo and RP-initiated logout.
//!
//! The authorization request survives the sign-in through the pending return URL
//! of forward-auth: `/oidc/authorize` keeps the validated request server-side and
//! sends the browser to `/login?rd=<public_url>/oidc/authorize/resume?request=<id>`;
//! after any sign-in path, `/` follows that URL back here.

use crate::error::PageError;
use crate::extract::{clear_session, current_session, session_token, Ctx};
use crate::i18n::LANG_COOKIE;
use crate::AppState;
use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine as _;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tweestap_domain::oidc::discovery;
use tweestap_domain::oidc::flow::{AuthRequest, OidcError};
use tweestap_domain::service::SessionInfo;
use tweestap_domain::session::SessionStage;
use tweestap_domain::Tweestap;

pub fn routes(app: &Arc<Tweestap>) -> Router<AppState> {
    // Browser apps (public clients) call these two from their own origin.
    let for_browser_apps = Router::new()
        .route(discovery::TOKEN_PATH, axum::routing::post(token))
        .route(discovery::USERINFO_PATH, get(userinfo).post(userinfo))
        .layer(client_origins(app.clone()));
    Router::new()
        .route(discovery::AUTHORIZE_PATH, get(authorize))
        .route("/oidc/authorize/resume", get(resume))
        .route(discovery::LOGOUT_PATH, get(logout).post(logout_confirmed))
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
fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
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

fn error_page(ctx: &Ctx) -> Response {
    PageError::new(StatusCode::BAD_REQUEST, "error_oidc_request", ctx.lang).into_response()
}

/// An error sent back to the (validated) redirect URI (RFC 6749 4.1.2.1, RFC 9207).
fn error_redirect(
    state: &AppState,
    redirect_uri: &str,
    rp_state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let iss = issuer(state);
    let mut p = vec![("error", error), ("error_description", description)];
    if let Some(s) = rp_state {
        p.push(("state", s));
    }
    p.push(("iss", &iss));
    found(&with_params(redirect_uri, &p))
}

async fn signed_in(state: &AppState, jar: &CookieJar) -> Option<SessionInfo> {
    current_session(state, jar)
        .await
        .ok()
        .flatten()
        .filter(|s| s.session.stage == SessionStage::Authenticated)
}

/// Issues the code and sends the browser back to the client.
async fn complete(state: &AppState, ctx: &Ctx, r: &AuthRequest, info: &SessionInfo) -> Response {
    match state.app.issue_code(r, info, &ctx.req).await {
        Ok(code) => {
            let iss = issuer(state);
            let mut p = vec![("code", code.as_str())];
            if let Some(s) = &r.state {
                p.push(("state", s));
            }
            p.push(("iss", &iss));
            found(&with_params(&r.redirect_uri, &p))
        }
        Err(e) => PageError::from_domain(e, ctx.lang).into_response(),
    }
}

/// Sends the browser to sign in and come back to `resume`.
fn to_sign_in(state: &AppState, id: &str, r: &AuthRequest, fresh: bool) -> Response {
    let base = issuer(state);
    let resume = format!("{base}/oidc/authorize/resume?request={id}");
    let mut p: Vec<(&str, &str)> = vec![("rd", &resume)];
    if let Some(h) = &r.login_hint {
        p.push(("login_hint", h));
    }
    if fresh {
        p.push(("prompt", "login"));
    }
    found(&with_params(&format!("{base}/login"), &p))
}

fn valid_challenge(c: &str) -> bool {
    (43..=128).contains(&c.len())
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `GET /oidc/authorize`.
async fn authorize(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let p = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    // Until the client and its redirect URI are known, errors are a page: never a
    // redirect to an address nobody registered.
    let client = match p("client_id") {
        Some(id) => match state.app.client(id).await {
            Ok(Some(c)) => c,
            Ok(None) => return error_page(&ctx),
            Err(e) => return PageError::from_domain(e, ctx.lang).into_response(),
        },
        None => return error_page(&ctx),
    };
    let Some(redirect_uri) = p("redirect_uri").filter(|u| client.allows_redirect(u)) else {
        return error_page(&ctx);
    };
    let rp_state = p("state");
    let fail = |error: &str, why: &str| error_redirect(&state, redirect_uri, rp_state, error, why);
    if p("request").is_some() || p("request_uri").is_some() {
        return fail("request_not_supported", "request objects are not supported");
    }
    if p("response_type") != Some("code") {
        return fail(
            "unsupported_response_type",
            "only response_type=code is supported",
        );
    }
    if p("response_mode").is_some_and(|m| m != "query") {
        return fail("invalid_request", "only response_mode=query is supported");
    }
    let scope = p("scope").unwrap_or_default();
    if !scope.split(' ').any(|s| s == "openid") {
        return fail("invalid_scope", "the scope must include openid");
    }
    let challenge = p("code_challenge");
    match (challenge, p("code_challenge_method")) {
        (Some(c), Some("S256")) if valid_challenge(c) => {}
        (Some(_), Some("S256")) => {
            return fail("invalid_request", "the code_challenge is malformed")
        }
        (Some(_), _) | (None, Some(_)) => {
            return fail(
                "invalid_request",
                "PKCE needs code_challenge with code_challenge_method=S256",
            )
        }
        (None, None) if client.is_public() => {
            return fail(
                "invalid_request",
                "a public client must use PKCE (code_challenge with S256)",
            )
        }
        (None, None) => {}
    }
    let max_age = match p("max_age").map(str::parse::<i64>) {
        None => None,
        Some(Ok(n)) if n >= 0 => Some(n),
        Some(_) => return fail("invalid_request", "max_age must be a number of seconds"),
    };
    let prompts: Vec<&str> = p("prompt").unwrap_or_default().split(' ').collect();
    let prompt_none = prompts.contains(&"none");
    let prompt_login = prompts.contains(&"login");
    if prompt_none && prompts.len() > 1 {
        return fail("invalid_request", "prompt=none cannot be combined");
    }
    let now = state.app.now().timestamp();
    let request = AuthRequest {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scope: scope.to_owned(),
        state: rp_state.map(str::to_owned),
        nonce: p("nonce").map(str::to_owned),
        code_challenge: challenge.map(str::to_owned),
        max_age,
        login_hint: p("login_hint").map(str::to_owned),
        not_before: prompt_login.then_some(now),
    };
    // ui_locales: the first language we speak becomes this browser's.
    let jar = match p("ui_locales")
        .unwrap_or_default()
        .split(' ')
        .find_map(|l| {
            let l = l.split('-').next().unwrap_or_default().to_ascii_lowercase();
            matches!(l.as_str(), "nl" | "en").then_some(l)
        }) {
        Some(l) => jar.add(
            Cookie::build((LANG_COOKIE, l))
                .path("/")
                .permanent()
                .same_site(SameSite::Lax)
                .secure(state.settings.secure_cookies)
                .build(),
        ),
        None => jar,
    };
    let session = signed_in(&state, &jar).await;
    if let Some(info) = &session {
        // prompt=login always asks again, however recent the sign-in.
        if !prompt_login && state.app.sign_in_satisfies(&request, info) {
            return (jar, complete(&state, &ctx, &request, info).await).into_response();
        }
    }
    if prompt_none {
        return (
            jar,
            fail("login_required", "the person is not signed in here"),
        )
            .into_response();
    }
    let id = match state.app.store_auth_request(&request).await {
        Ok(id) => id,
        Err(e) => return PageError::from_domain(e, ctx.lang).into_response(),
    };
    // Signed in, but not freshly enough (prompt=login, max_age): sign in again.
    let fresh = prompt_login || session.is_some();
    (jar, to_sign_in(&state, id.as_str(), &request, fresh)).into_response()
}

#[derive(Deserialize)]
struct ResumeQuery {
    #[serde(default)]
    request: String,
}

/// `GET /oidc/authorize/resume?request=<id>`: back from the sign-in pages.
async fn resume(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Query(q): Query<ResumeQuery>,
) -> Response {
    let request = match state.app.auth_request(&q.request).await {
        Ok(Some(r)) => r,
        Ok(None) => return error_page(&ctx),
        Err(e) => return PageError::from_domain(e, ctx.lang).into_response(),
    };
    // The client may have been removed meanwhile.
    match state.app.client(&request.client_id).await {
        Ok(Some(c)) if c.allows_redirect(&request.redirect_uri) => {}
        _ => return error_page(&ctx),
    }
    match signed_in(&state, &jar).await {
        Some(info) if state.app.sign_in_satisfies(&request, &info) => {
            complete(&state, &ctx, &request, &info).await
        }
        Some(_) => to_sign_in(&state, &q.request, &request, true),
        None => to_sign_in(&state, &q.request, &request, false),
    }
}

// ---- token ----------------------------------------------------------------------

fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

fn oauth_error(e: &OidcError, basic: bool) -> Response {
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
        let _ = basic;
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"tweestap\""),
        );
    }
    no_store(r)
}

/// `client_secret_basic` credentials: base64 of `urlencoded(id):urlencoded(secret)`.
fn basic_credentials(headers: &HeaderMap) -> Option<Option<(String, String)>> {
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

/// `POST /oidc/token`.
async fn token(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let p = |k: &str| f.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let basic = basic_credentials(&headers);
    let (client_id, secret) = match (&basic, p("client_secret")) {
        (Some(_), Some(_)) => {
            return oauth_error(
                &OidcError::new("invalid_request", "use one client authentication method"),
                true,
            )
        }
        (Some(None), None) => {
            return oauth_error(
                &OidcError::new("invalid_client", "malformed Basic credentials"),
                true,
            )
        }
        (Some(Some((id, s))), None) => {
            if p("client_id").is_some_and(|c| c != id) {
                return oauth_error(
                    &OidcError::new("invalid_request", "client_id does not match"),
                    true,
                );
            }
            (id.clone(), Some(s.clone()))
        }
        (None, s) => match p("client_id") {
            Some(id) => (id.to_owned(), s.map(str::to_owned)),
            None => {
                return oauth_error(
                    &OidcError::new("invalid_client", "client authentication failed"),
                    false,
                )
            }
        },
    };
    let is_basic = basic.is_some();
    let client = match state
        .app
        .authenticate_client(&client_id, secret.as_deref(), &ctx.req)
        .await
    {
        Ok(c) => c,
        Err(e) => return oauth_error(&e, is_basic),
    };
    let iss = issuer(&state);
    let result = match p("grant_type") {
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
        _ => Err(OidcError::new(
            "unsupported_grant_type",
            "use authorization_code or refresh_token",
        )),
    };
    match result {
        Ok(t) => {
            let mut body = serde_json::json!({
                "access_token": t.access_token,
                "token_type": "Bearer",
                "expires_in": t.expires_in,
                "id_token": t.id_token,
                "scope": t.scope,
            });
            if let Some(r) = t.refresh_token {
                body["refresh_token"] = serde_json::json!(r);
            }
            no_store(Json(body).into_response())
        }
        Err(e) => oauth_error(&e, is_basic),
    }
}

// ---- userinfo -------------------------------------------------------------------

async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
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

// ---- logout ---------------------------------------------------------------------

/// The `aud` of an ID token we signed (checked against the published keys).
async fn hint_audience(state: &AppState, hint: &str) -> Option<String> {
    let keys = state.app.published_keys().await.ok()?;
    let claims = tweestap_domain::oidc::keys::verify_jws(hint, &keys)?;
    if claims["iss"].as_str() != Some(issuer(state).as_str()) {
        return None;
    }
    match &claims["aud"] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(a) => a.first()?.as_str().map(str::to_owned),
        _ => None,
    }
}

/// `GET /oidc/logout` (RP-initiated logout 1.0). `post_logout_redirect_uri` is
/// followed only when it is one of the client's registered redirect URIs, exactly.
async fn logout(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    end_session(state, ctx, jar, q, false).await
}

/// The "yes, sign me out" of the confirmation page.
async fn logout_confirmed(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Form(q): Form<HashMap<String, String>>,
) -> Response {
    let csrf = q.get("csrf").map(String::as_str).unwrap_or_default();
    if !state.csrf.verify(&jar, csrf) {
        return PageError::new(StatusCode::FORBIDDEN, "error_csrf", ctx.lang).into_response();
    }
    end_session(state, ctx, jar, q, true).await
}

/// Without a valid `id_token_hint` any page could sign people out with a link, so a
/// signed-in browser is asked first (RP-Initiated Logout 1.0, section 2).
fn logout_confirmation(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    q: &HashMap<String, String>,
) -> Response {
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let fields: Vec<(String, String)> = ["client_id", "post_logout_redirect_uri", "state"]
        .iter()
        .filter_map(|k| q.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect();
    let extra = minijinja::context! { fields => fields };
    (
        jar,
        crate::pages::render(ctx, "logout_confirm.html", &csrf, true, extra),
    )
        .into_response()
}

async fn end_session(
    state: AppState,
    ctx: Ctx,
    jar: CookieJar,
    q: HashMap<String, String>,
    confirmed: bool,
) -> Response {
    let p = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let hinted = match p("id_token_hint") {
        Some(h) => match hint_audience(&state, h).await {
            Some(aud) => Some(aud),
            None => return error_page(&ctx),
        },
        None => None,
    };
    let client_id = match (p("client_id"), hinted.as_deref()) {
        (Some(c), Some(h)) if c != h => return error_page(&ctx),
        (Some(c), _) => Some(c.to_owned()),
        (None, h) => h.map(str::to_owned),
    };
    let client = match &client_id {
        Some(id) => state.app.client(id).await.ok().flatten(),
        None => None,
    };
    let target = match p("post_logout_redirect_uri") {
        Some(u) => match &client {
            Some(c) if c.allows_redirect(u) => Some(u.to_owned()),
            _ => return error_page(&ctx),
        },
        None => None,
    };
    let info = current_session(&state, &jar).await.ok().flatten();
    if info.is_some() && hinted.is_none() && !confirmed {
        return logout_confirmation(&state, &ctx, jar, &q);
    }
    if let Some(token) = session_token(&jar) {
        if let Err(e) = state.app.logout(&token, &ctx.req).await {
            return PageError::from_domain(e, ctx.lang).into_response();
        }
    }
    if let Err(e) = state
        .app
        .audit_oidc_logout(
            info.as_ref().map(|i| &i.account),
            client_id.as_deref(),
            &ctx.req,
        )
        .await
    {
        return PageError::from_domain(e, ctx.lang).into_response();
    }
    let jar = clear_session(jar);
    match target {
        Some(u) => {
            let mut params = Vec::new();
            if let Some(s) = p("state") {
                params.push(("state", s));
            }
            (jar, found(&with_params(&u, &params))).into_response()
        }
        None => (jar, found("/login")).into_response(),
    }
}
