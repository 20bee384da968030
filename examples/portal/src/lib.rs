//! Loket: a small portal that never sees a password or a code. It sends its users
//! to tweestap (OpenID Connect, authorization code flow with PKCE S256) and gets
//! back who signed in and how, through the independent `openidconnect` crate:
//! discovery from the issuer URL, the ID token's signature checked against the
//! provider's JWKS, its nonce, audience, issuer and expiry.
//!
//! Its state (the pending request's state, nonce and PKCE verifier, then the
//! signed-in user) is kept server-side, under a random, HttpOnly cookie.
//!
//! Two things a real portal needs besides signing in:
//! - step-up ([`step_up`]): changing the bank account asks for a sign-in with a
//!   second factor at most `step_up_max_age` old, else tweestap is asked again with
//!   `max_age` and `acr_values`, and the answer is checked;
//! - back-channel logout ([`backchannel`]): tweestap POSTs a signed logout token
//!   when a person's tweestap session ends, and Loket ends its sessions of it.

pub mod backchannel;
mod keys;
mod sign_in;
pub mod step_up;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreIdTokenVerifier,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, ClientId, ClientSecret, EmptyExtraTokenFields, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IdTokenVerifier, IssuerUrl, RedirectUrl, StandardErrorResponse,
    StandardTokenResponse,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// tweestap's `acr` for a sign-in with a second factor.
pub const ACR_MFA: &str = "urn:tweestap:acr:mfa";
/// The portal's session cookie.
pub const COOKIE: &str = "loket_sessie";
/// The default for [`Options::step_up_max_age`]: five minutes.
pub const STEP_UP_MAX_AGE: Duration = Duration::from_secs(300);

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

/// The time as Loket sees it (tests pass the provider's test clock).
pub type Now = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What [`Config`] does not hold: the sensitive action's limit and the clock.
#[derive(Clone)]
pub struct Options {
    /// How old a sign-in (with a second factor) may be for changing the bank
    /// account; sent to tweestap as `max_age` when it is older.
    pub step_up_max_age: Duration,
    /// The clock for the ID token's and the logout token's times.
    pub now: Now,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            step_up_max_age: STEP_UP_MAX_AGE,
            now: Arc::new(Utc::now),
        }
    }
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

/// The ID token's claims beyond the standard ones: tweestap's session id, which a
/// logout token names again when that session ends.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct SessionClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
}

impl AdditionalClaims for SessionClaims {}

type IdTokenFields = openidconnect::IdTokenFields<
    SessionClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

type Tokens = StandardTokenResponse<IdTokenFields, CoreTokenType>;

/// The client as discovery makes it (authorization endpoint known, token and
/// userinfo endpoints maybe), reading `sid` from the ID token.
type OidcClient = openidconnect::Client<
    SessionClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Who signed in, and how.
#[derive(Clone)]
struct User {
    sub: String,
    /// tweestap's session (`sid`), for back-channel logout.
    sid: Option<String>,
    name: String,
    email: String,
    amr: Vec<String>,
    acr: Option<String>,
    auth_time: Option<DateTime<Utc>>,
    /// The bank account set on the sensitive page (kept in memory only).
    iban: Option<String>,
}

impl User {
    fn second_factor(&self) -> bool {
        self.acr.as_deref() == Some(ACR_MFA)
    }
}

#[derive(Default)]
struct Sessions {
    pending: HashMap<String, sign_in::Pending>,
    users: HashMap<String, User>,
}

struct Portal {
    client: OidcClient,
    issuer: IssuerUrl,
    client_secret: ClientSecret,
    /// What tweestap signs ID tokens with (discovery).
    id_token_algs: Vec<CoreJwsSigningAlgorithm>,
    keys: keys::Keys,
    http: openidconnect::reqwest::Client,
    require_mfa: bool,
    step_up_max_age: Duration,
    now: Now,
    sessions: Mutex<Sessions>,
    logout: backchannel::Receiver,
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

    fn now(&self) -> DateTime<Utc> {
        (self.now)()
    }

    /// The library's ID token checks (signature, `iss`, `aud`, `azp`, `exp`, and
    /// the nonce when called) on the provider's keys as they stand, on our clock.
    fn id_token_verifier(&self) -> CoreIdTokenVerifier<'static> {
        let now = self.now.clone();
        IdTokenVerifier::new_confidential_client(
            self.client.client_id().clone(),
            self.client_secret.clone(),
            self.issuer.clone(),
            self.keys.current(),
        )
        .set_allowed_algs(self.id_token_algs.clone())
        .set_time_fn(move || now())
    }

    /// The user of the browser's session, if signed in.
    fn user(&self, headers: &HeaderMap) -> Option<(String, User)> {
        let id = session_id(headers)?;
        let user = self.sessions().users.get(&id).cloned()?;
        Some((id, user))
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
    serve_with(config, Options::default()).await
}

/// [`serve`] with other [`Options`].
pub async fn serve_with(
    config: Config,
    options: Options,
) -> Result<(SocketAddr, JoinHandle<()>), StartError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(StartError::Listen)?;
    let addr = listener.local_addr().map_err(StartError::Listen)?;
    let router = router_with(config, options).await?;
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            eprintln!("loket: {e}");
        }
    });
    Ok((addr, handle))
}

/// Loket's routes, after discovery.
pub async fn router(config: Config) -> Result<Router, StartError> {
    router_with(config, Options::default()).await
}

/// [`router`] with other [`Options`].
pub async fn router_with(config: Config, options: Options) -> Result<Router, StartError> {
    let http = http_client()?;
    let issuer =
        IssuerUrl::new(config.issuer.clone()).map_err(|e| StartError::Config(e.to_string()))?;
    let metadata = CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .map_err(|e| StartError::Discovery(error_chain(&e)))?;
    let redirect = RedirectUrl::new(config.redirect_url.clone())
        .map_err(|e| StartError::Config(e.to_string()))?;
    let receiver = backchannel::Receiver::new(&metadata, &config.client_id);
    let keys = keys::Keys::new(&metadata);
    let issuer = metadata.issuer().clone();
    let id_token_algs = metadata.id_token_signing_alg_values_supported().clone();
    let client_secret = ClientSecret::new(config.client_secret.clone());
    let client = OidcClient::from_provider_metadata(
        metadata,
        ClientId::new(config.client_id.clone()),
        Some(client_secret.clone()),
    )
    .set_redirect_uri(redirect);
    let portal = Arc::new(Portal {
        client,
        issuer,
        client_secret,
        id_token_algs,
        keys,
        http,
        require_mfa: config.require_mfa,
        step_up_max_age: options.step_up_max_age,
        now: options.now,
        sessions: Mutex::new(Sessions::default()),
        logout: receiver,
    });
    Ok(Router::new()
        .route("/", get(home))
        .route("/login", get(sign_in::login))
        .route("/callback", get(sign_in::callback))
        .route("/logout", post(logout))
        .route(
            step_up::PATH,
            get(step_up::show).post(step_up::change_bank_account),
        )
        .route(backchannel::PATH, post(backchannel::receive))
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
        .filter(|v| !v.is_empty())
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
    let Some((_, user)) = portal.user(&headers) else {
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
    let iban = user.iban.as_deref().unwrap_or("(niet ingesteld)");
    page(
        "Welkom",
        &format!(
            "<h1 id=\"welcome\">Welkom, {name}</h1>\
             <dl><dt>E-mailadres</dt><dd id=\"email\">{email}</dd>\
             <dt>Aangemeld met (amr)</dt><dd><ul id=\"amr\">{amr}</ul></dd>\
             <dt>Tweede stap (acr)</dt><dd id=\"acr\" data-acr=\"{acr}\">{second}</dd>\
             <dt>Rekeningnummer</dt><dd id=\"iban\">{iban}</dd></dl>\
             <p><a href=\"{change}\">Rekeningnummer wijzigen</a></p>\
             <form method=\"post\" action=\"/logout\"><button type=\"submit\">Afmelden</button></form>",
            name = escape(&user.name),
            email = escape(&user.email),
            acr = escape(user.acr.as_deref().unwrap_or("")),
            iban = escape(iban),
            change = step_up::PATH,
        ),
    )
    .into_response()
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
