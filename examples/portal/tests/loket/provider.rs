//! A stand-in OpenID provider for Loket's own tests: discovery, JWKS (ES256 keys
//! made with ring), an authorization endpoint that answers at once with what the
//! test set (`acr`, `auth_time`, `sid`, `sub`), a token endpoint, and logout tokens
//! signed like tweestap's. It obeys nothing on purpose, so that the tests can show
//! what Loket refuses; the real tweestap is in the server's integration tests.

use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

pub const CLIENT_ID: &str = "loket";
pub const SECRET: &str = "geheim-van-het-loket";
pub const MFA: &str = "urn:tweestap:acr:mfa";
pub const PWD: &str = "urn:tweestap:acr:pwd";
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A signing key: its id, the key pair, and its public JWK.
pub struct Key {
    pub kid: String,
    pair: EcdsaKeyPair,
    pub jwk: Value,
}

impl Key {
    pub fn new(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        Self {
            kid: kid.into(),
            pair,
            jwk,
        }
    }

    /// A compact JWS of `claims` with this `header` (alg ES256 added).
    pub fn sign(&self, mut header: Value, claims: &Value) -> String {
        header["alg"] = json!("ES256");
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

/// What the next sign-in says about the person: the test sets it.
#[derive(Clone, Debug)]
pub struct Person {
    pub sub: String,
    pub sid: String,
    pub acr: String,
    /// `auth_time` this long before the (test) clock's now.
    pub signed_in_ago: TimeDelta,
}

impl Person {
    pub fn new(sub: &str, sid: &str) -> Self {
        Self {
            sub: sub.into(),
            sid: sid.into(),
            acr: MFA.into(),
            signed_in_ago: TimeDelta::zero(),
        }
    }
}

/// The test's clock, shared by the provider and Loket.
#[derive(Clone)]
pub struct Clock(Arc<Mutex<DateTime<Utc>>>);

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }

    pub fn advance(&self, by: TimeDelta) {
        *self.0.lock().unwrap() += by;
    }
}

struct Shared {
    url: String,
    clock: Clock,
    keys: Mutex<Vec<Key>>,
    person: Mutex<Person>,
    /// code → (nonce, who)
    codes: Mutex<HashMap<String, (String, Person)>>,
    /// Every authorization request's query.
    requests: Mutex<Vec<HashMap<String, String>>>,
}

pub struct Provider {
    pub url: String,
    pub clock: Clock,
    shared: Arc<Shared>,
    handle: JoinHandle<()>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl Provider {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let clock = Clock(Arc::new(Mutex::new(
            DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap(),
        )));
        let shared = Arc::new(Shared {
            url: url.clone(),
            clock: clock.clone(),
            keys: Mutex::new(vec![Key::new("k1")]),
            person: Mutex::new(Person::new("an", "sessie-1")),
            codes: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(shared.clone());
        let handle = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            url,
            clock,
            shared,
            handle,
        }
    }

    /// Who the next sign-in is, and how.
    pub fn next_person(&self, person: Person) {
        *self.shared.person.lock().unwrap() = person;
    }

    /// The last authorization request's query.
    pub fn last_request(&self) -> HashMap<String, String> {
        self.shared.requests.lock().unwrap().last().unwrap().clone()
    }

    /// A new signing key, published first in the JWKS (a rotation).
    pub fn rotate(&self, kid: &str) {
        self.shared.keys.lock().unwrap().insert(0, Key::new(kid));
    }

    /// Signs with the current key.
    pub fn sign(&self, header: Value, claims: &Value) -> String {
        self.shared.keys.lock().unwrap()[0].sign(header, claims)
    }

    /// The claims of a logout token as tweestap makes them, issued now.
    pub fn logout_claims(&self, sub: &str, sid: &str) -> Value {
        let iat = self.clock.now().timestamp();
        json!({
            "iss": self.url, "aud": CLIENT_ID, "iat": iat, "exp": iat + 120,
            "jti": format!("jti-{}", rand_id()), "sub": sub, "sid": sid,
            "events": { EVENT: {} },
        })
    }

    /// A logout token as tweestap signs it.
    pub fn logout_token(&self, sub: &str, sid: &str) -> String {
        self.sign(
            json!({ "typ": "logout+jwt", "kid": self.kid() }),
            &self.logout_claims(sub, sid),
        )
    }

    pub fn kid(&self) -> String {
        self.shared.keys.lock().unwrap()[0].kid.clone()
    }
}

fn rand_id() -> String {
    let mut b = [0u8; 12];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut b).unwrap();
    URL_SAFE_NO_PAD.encode(b)
}

async fn discovery(State(s): State<Arc<Shared>>) -> Json<Value> {
    let u = &s.url;
    Json(json!({
        "issuer": u,
        "authorization_endpoint": format!("{u}/authorize"),
        "token_endpoint": format!("{u}/token"),
        "jwks_uri": format!("{u}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    }))
}

async fn jwks(State(s): State<Arc<Shared>>) -> Json<Value> {
    let keys: Vec<Value> = s
        .keys
        .lock()
        .unwrap()
        .iter()
        .map(|k| k.jwk.clone())
        .collect();
    Json(json!({ "keys": keys }))
}

async fn authorize(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    s.requests.lock().unwrap().push(q.clone());
    let code = rand_id();
    let person = s.person.lock().unwrap().clone();
    s.codes
        .lock()
        .unwrap()
        .insert(code.clone(), (q["nonce"].clone(), person));
    let mut back = openidconnect::url::Url::parse(&q["redirect_uri"]).unwrap();
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &q["state"])
        .append_pair("iss", &s.url);
    Redirect::to(back.as_str()).into_response()
}

async fn token(State(s): State<Arc<Shared>>, Form(f): Form<HashMap<String, String>>) -> Response {
    let Some((nonce, p)) = s.codes.lock().unwrap().remove(&f["code"]) else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({ "error": "invalid_grant" })),
        )
            .into_response();
    };
    let now = s.clock.now();
    let claims = json!({
        "iss": s.url, "sub": p.sub, "aud": CLIENT_ID, "nonce": nonce,
        "iat": now.timestamp(), "exp": now.timestamp() + 300,
        "auth_time": (now - p.signed_in_ago).timestamp(),
        "acr": p.acr,
        "amr": if p.acr == MFA { json!(["pwd", "otp", "mfa"]) } else { json!(["pwd"]) },
        "sid": p.sid, "name": "An Peeters", "email": "an@example.be",
    });
    let kid = s.keys.lock().unwrap()[0].kid.clone();
    let id_token = s.keys.lock().unwrap()[0].sign(json!({ "typ": "JWT", "kid": kid }), &claims);
    Json(json!({
        "access_token": rand_id(), "token_type": "Bearer", "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}

/// Starts Loket against `provider`, on the test clock.
pub async fn loket(provider: &Provider, step_up_max_age: u64) -> (String, JoinHandle<()>) {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let clock = provider.clock.clone();
    let (addr, handle) = tweestap_example_portal::serve_with(
        tweestap_example_portal::Config {
            issuer: provider.url.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: SECRET.into(),
            listen: addr,
            redirect_url: format!("http://{addr}/callback"),
            require_mfa: false,
        },
        tweestap_example_portal::Options {
            step_up_max_age: std::time::Duration::from_secs(step_up_max_age),
            now: Arc::new(move || clock.now()),
        },
    )
    .await
    .unwrap();
    (format!("http://{addr}"), handle)
}
