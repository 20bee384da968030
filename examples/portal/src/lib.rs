//! Loket: a small portal that never sees a password or a code. It sends its users
//! to tweestap (OpenID Connect, authorization code flow with PKCE S256) and gets
//! back who signed in and how, through the independent `openidconnect` crate:
//! discovery from the issuer URL, the ID token's signature checked against the
//! provider's JWKS, its nonce, audience, issuer and expiry.
//!
//! Its state (the pending request's state, nonce and PKCE verifier, then the
//! signed-in user) is kept server-side, under a random, HttpOnly cookie.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// tweestap's `acr` for a sign-in with a second factor.
pub const ACR_MFA: &str = "urn:tweestap:acr:mfa";
/// The portal's session cookie.
pub const COOKIE: &str = "loket_sessie";
/// How long a started sign-in may take.
const PENDING_TTL: Duration = Duration::from_secs(600);

/// How Loket runs; every option also comes from the environment.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "tweestap-example-portal",
    about = "Loket: signs its users in through tweestap"
)]
pub struct Config {
    /// tweestap's issuer URL (its public URL), e.g. https://login.example.
    #[arg(long, env = "PORTAL_ISSUER")]
    pub issuer: String,
    /// The client id tweestap gave this portal.
    #[arg(long, env = "PORTAL_CLIENT_ID")]
    pub client_id: String,
    /// The client secret `tweestap client add` printed.
    #[arg(long, env = "PORTAL_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: String,
    /// Where Loket listens.
    #[arg(long, env = "PORTAL_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// The redirect URI registered for this portal (ends in /callback).
    #[arg(
        long,
        env = "PORTAL_REDIRECT_URL",
        default_value = "http://127.0.0.1:3000/callback"
    )]
    pub redirect_url: String,
    /// Refuse sign-ins without a second factor (acr urn:tweestap:acr:mfa).
    #[arg(
        long,
        env = "PORTAL_REQUIRE_MFA",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub require_mfa: bool,
}

/// Why Loket could not start.
#[derive(Debug)]
pub enum StartError {
    Config(String),
    Discovery(String),
    Listen(std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(e) => write!(f, "configuration: {e}"),
            Self::Discovery(e) => write!(f, "OpenID Connect discovery failed: {e}"),
            Self::Listen(e) => write!(f, "cannot listen: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// The client as discovery makes it: authorization endpoint known, token and
/// userinfo endpoints maybe.
type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A sign-in under way: what the callback must match.
struct Pending {
    state: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
    started: Instant,
}

/// Who signed in, and how.
#[derive(Clone)]
struct User {
    name: String,
    email: String,
    amr: Vec<String>,
    acr: Option<String>,
}

impl User {
    fn second_factor(&self) -> bool {
        self.acr.as_deref() == Some(ACR_MFA)
    }
}

#[derive(Default)]
struct Sessions {
    pending: HashMap<String, Pending>,
    users: HashMap<String, User>,
}

struct Portal {
    client: OidcClient,
    http: openidconnect::reqwest::Client,
    require_mfa: bool,
    sessions: Mutex<Sessions>,
}

impl Portal {
    /// The signed-in people and pending sign-ins. A panic while the lock was held
    /// cannot leave the map half-written (each change is one insert or remove), so
    /// a poisoned lock is simply taken over.
    fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The HTTP client for the provider; no redirects followed (SSRF).
fn http_client() -> Result<openidconnect::reqwest::Client, StartError> {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| StartError::Config(e.to_string()))
}

/// Discovers the provider and starts Loket; returns where it listens.
pub async fn serve(config: Config) -> Result<(SocketAddr, JoinHandle<()>), StartError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(StartError::Listen)?;
    let addr = listener.local_addr().map_err(StartError::Listen)?;
    let router = router(config).await?;
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            eprintln!("loket: {e}");
        }
    });
    Ok((addr, handle))
}

/// Loket's routes, after discovery.
pub async fn router(config: Config) -> Result<Router, StartError> {
    let http = http_client()?;
    let issuer =
        IssuerUrl::new(config.issuer.clone()).map_err(|e| StartError::Config(e.to_string()))?;
    let metadata = CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .map_err(|e| StartError::Discovery(error_chain(&e)))?;
    let redirect = RedirectUrl::new(config.redirect_url.clone())
        .map_err(|e| StartError::Config(e.to_string()))?;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(config.client_id.clone()),
        Some(ClientSecret::new(config.client_secret.clone())),
    )
    .set_redirect_uri(redirect);
    let portal = Arc::new(Portal {
        client,
        http,
        require_mfa: config.require_mfa,
        sessions: Mutex::new(Sessions::default()),
    });
    Ok(Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/logout", post(logout))
        .with_state(portal))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

#[allow(
    clippy::expect_used,
    reason = "the value is one of our own URL-safe session ids, never a control character"
)]
fn set_cookie(value: &str, max_age: u32) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}"
    ))
    .expect("cookie header")
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html>\n<html lang=\"nl\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Loket</title></head>\
         <body><header><strong>Loket</strong></header><main>{body}</main></body></html>",
        escape(title)
    ))
}

fn refusal(status: StatusCode, message: &str) -> Response {
    (
        status,
        page(
            "Aanmelden mislukt",
            &format!(
                "<h1>Aanmelden mislukt</h1><p id=\"error\">{}</p>\
                 <p><a href=\"/login\">Opnieuw aanmelden</a></p>",
                escape(message)
            ),
        ),
    )
        .into_response()
}

/// The signed-in user's page, or off to sign in.
async fn home(State(portal): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    let user = session_id(&headers).and_then(|id| portal.sessions().users.get(&id).cloned());
    let Some(user) = user else {
        return Redirect::to("/login").into_response();
    };
    let amr = user
        .amr
        .iter()
        .map(|m| format!("<li><code>{}</code></li>", escape(m)))
        .collect::<String>();
    let second = if user.second_factor() {
        "ja, met een tweede stap"
    } else {
        "nee, alleen met een wachtwoord"
    };
    page(
        "Welkom",
        &format!(
            "<h1 id=\"welcome\">Welkom, {name}</h1>\
             <dl><dt>E-mailadres</dt><dd id=\"email\">{email}</dd>\
             <dt>Aangemeld met (amr)</dt><dd><ul id=\"amr\">{amr}</ul></dd>\
             <dt>Tweede stap (acr)</dt><dd id=\"acr\" data-acr=\"{acr}\">{second}</dd></dl>\
             <form method=\"post\" action=\"/logout\"><button type=\"submit\">Afmelden</button></form>",
            name = escape(&user.name),
            email = escape(&user.email),
            acr = escape(user.acr.as_deref().unwrap_or("")),
        ),
    )
    .into_response()
}

/// Starts a sign-in: state, nonce and PKCE kept here, the browser off to tweestap.
async fn login(State(portal): State<Arc<Portal>>) -> Response {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = portal
        .client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let id = CsrfToken::new_random().secret().clone();
    {
        let mut sessions = portal.sessions();
        sessions
            .pending
            .retain(|_, p| p.started.elapsed() < PENDING_TTL);
        sessions.pending.insert(
            id.clone(),
            Pending {
                state,
                nonce,
                verifier,
                started: Instant::now(),
            },
        );
    }
    let mut r = Redirect::to(url.as_str()).into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&id, 3600));
    r
}

#[derive(serde::Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Back from tweestap: the code for tokens, the ID token checked, the user kept.
async fn callback(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    let Some(id) = session_id(&headers) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "Geen aanmelding bezig in deze browser.",
        );
    };
    // Single use: whatever happens next, this pending sign-in is spent.
    let pending = portal.sessions().pending.remove(&id);
    let Some(pending) = pending.filter(|p| p.started.elapsed() < PENDING_TTL) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "Geen aanmelding bezig in deze browser.",
        );
    };
    if q.state.as_deref() != Some(pending.state.secret().as_str()) {
        return refusal(
            StatusCode::BAD_REQUEST,
            "De aanmelding hoort niet bij deze browser (state).",
        );
    }
    if let Some(error) = q.error {
        let detail = q.error_description.unwrap_or_default();
        return refusal(
            StatusCode::FORBIDDEN,
            &format!("tweestap weigerde: {error} {detail}"),
        );
    }
    let Some(code) = q.code else {
        return refusal(StatusCode::BAD_REQUEST, "Geen code ontvangen.");
    };
    let user = match sign_in(&portal, code, pending).await {
        Ok(user) => user,
        Err(e) => return refusal(StatusCode::FORBIDDEN, &e),
    };
    if portal.require_mfa && !user.second_factor() {
        return refusal(
            StatusCode::FORBIDDEN,
            "Dit loket vraagt een aanmelding met een tweede stap (acr urn:tweestap:acr:mfa).",
        );
    }
    portal.sessions().users.insert(id, user);
    Redirect::to("/").into_response()
}

async fn sign_in(portal: &Portal, code: String, pending: Pending) -> Result<User, String> {
    let token = portal
        .client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| e.to_string())?
        .set_pkce_verifier(pending.verifier)
        .request_async(&portal.http)
        .await
        .map_err(|e| format!("code inwisselen mislukt: {}", error_chain(&e)))?;
    let id_token = token.id_token().ok_or("geen ID-token ontvangen")?;
    let verifier = portal.client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &pending.nonce)
        .map_err(|e| format!("ongeldig ID-token: {}", error_chain(&e)))?;
    if let Some(expected) = claims.access_token_hash() {
        let alg = id_token.signing_alg().map_err(|e| e.to_string())?;
        let key = id_token.signing_key(&verifier).map_err(|e| e.to_string())?;
        let actual = AccessTokenHash::from_token(token.access_token(), alg, key)
            .map_err(|e| e.to_string())?;
        if actual != *expected {
            return Err("ongeldig ID-token: at_hash klopt niet".into());
        }
    }
    Ok(User {
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned())
            .unwrap_or_else(|| claims.subject().as_str().to_owned()),
        email: claims
            .email()
            .map(|e| e.as_str().to_owned())
            .unwrap_or_default(),
        amr: claims
            .auth_method_refs()
            .map(|v| v.iter().map(|m| m.as_str().to_owned()).collect())
            .unwrap_or_default(),
        acr: claims.auth_context_ref().map(|a| a.as_str().to_owned()),
    })
}

/// Forgets the user here (tweestap's own session stays; see the README).
async fn logout(State(portal): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers) {
        portal.sessions().users.remove(&id);
    }
    let mut r = page(
        "Afgemeld",
        "<h1>Je bent afgemeld bij Loket</h1><p><a href=\"/login\">Opnieuw aanmelden</a></p>",
    )
    .into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, set_cookie("", 0));
    r
}
