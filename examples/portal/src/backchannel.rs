//! OpenID Connect Back-Channel Logout 1.0, the receiving end: when a person's
//! tweestap session ends (sign-out, password change, support reset, account
//! disabled), tweestap POSTs `logout_token=<JWS>` to `/backchannel-logout`. Loket
//! checks it as section 2.6 asks and ends every session of that `sid` (or, without
//! a `sid`, of that `sub`); 200 when done, 400 for a token it does not accept.
//!
//! The signature is checked with the `openidconnect` crate's JWK type against the
//! provider's keys ([`crate::keys`]: fetched again when the `kid` is unknown).

use crate::keys::Keys;
use crate::Portal;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use openidconnect::core::{CoreJwsSigningAlgorithm, CoreProviderMetadata};
use openidconnect::{JsonWebKey, JsonWebKeyId};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Where tweestap sends logout tokens (register it with `--backchannel-logout-uri`).
pub const PATH: &str = "/backchannel-logout";
/// The `events` member that makes a JWT a logout token.
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How old a logout token (`iat`) may be. tweestap signs each delivery attempt
/// afresh, valid for two minutes.
const MAX_TOKEN_AGE: TimeDelta = TimeDelta::seconds(300);
/// How far tweestap's clock and ours may differ.
const CLOCK_SKEW: TimeDelta = TimeDelta::seconds(30);

/// What the receiver keeps: the issuer, audience and algorithms to expect, and the
/// `jti`s seen recently (a replayed token is refused).
pub(crate) struct Receiver {
    issuer: String,
    client_id: String,
    algs: Vec<CoreJwsSigningAlgorithm>,
    seen: Mutex<HashMap<String, DateTime<Utc>>>,
}

/// Whose sessions a valid logout token ends.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Logout {
    pub(crate) sub: Option<String>,
    pub(crate) sid: Option<String>,
}

impl Receiver {
    pub(crate) fn new(metadata: &CoreProviderMetadata, client_id: &str) -> Self {
        // The algorithms tweestap signs ID tokens with, asymmetric ones only.
        let algs = metadata
            .id_token_signing_alg_values_supported()
            .iter()
            .filter(|a| {
                !matches!(
                    a,
                    CoreJwsSigningAlgorithm::None
                        | CoreJwsSigningAlgorithm::HmacSha256
                        | CoreJwsSigningAlgorithm::HmacSha384
                        | CoreJwsSigningAlgorithm::HmacSha512
                )
            })
            .cloned()
            .collect();
        Self {
            issuer: metadata.issuer().as_str().to_owned(),
            client_id: client_id.to_owned(),
            algs,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Section 2.6: the JWS signature, then `iss`, `aud`, `iat`, the `events`
    /// member, no `nonce`, a `sid` and/or `sub`; and not seen before (`jti`).
    pub(crate) async fn verify(
        &self,
        keys: &Keys,
        http: &openidconnect::reqwest::Client,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Logout, String> {
        let parts: Vec<&str> = token.split('.').collect();
        let [head, body, sig] = parts[..] else {
            return Err("not a signed JWT (JWS compact serialisation)".into());
        };
        let header: Value = decode_json(head).map_err(|e| format!("header: {e}"))?;
        let alg: CoreJwsSigningAlgorithm = serde_json::from_value(header["alg"].clone())
            .map_err(|_| format!("unknown alg {}", header["alg"]))?;
        if !self.algs.contains(&alg) {
            return Err(format!("alg {} is not accepted", header["alg"]));
        }
        if let Some(typ) = header.get("typ") {
            let typ = typ.as_str().unwrap_or_default().to_ascii_lowercase();
            if typ != "logout+jwt" && typ != "application/logout+jwt" {
                return Err(format!("typ {typ} is not a logout token"));
            }
        }
        let kid = match header.get("kid") {
            Some(Value::String(k)) => Some(JsonWebKeyId::new(k.clone())),
            Some(_) => return Err("kid is not a string".into()),
            None => None,
        };
        let signature = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| "the signature is not base64url")?;
        let message = format!("{head}.{body}");
        let mut candidates = keys.with_id(kid.as_ref());
        if candidates.is_empty() {
            keys.refetch(http).await;
            candidates = keys.with_id(kid.as_ref());
        }
        if candidates.is_empty() {
            return Err("no key of the provider matches the token's kid".into());
        }
        if !candidates.iter().any(|k| {
            k.verify_signature(&alg, message.as_bytes(), &signature)
                .is_ok()
        }) {
            return Err("the signature does not verify".into());
        }
        let claims: Value = decode_json(body).map_err(|e| format!("claims: {e}"))?;
        let logout = self.check_claims(&claims, now)?;
        self.not_replayed(&claims, now)?;
        Ok(logout)
    }

    fn check_claims(&self, c: &Value, now: DateTime<Utc>) -> Result<Logout, String> {
        if c["iss"].as_str() != Some(self.issuer.as_str()) {
            return Err(format!("iss {} is not {}", c["iss"], self.issuer));
        }
        let ours = match &c["aud"] {
            Value::String(a) => *a == self.client_id,
            Value::Array(a) => a
                .iter()
                .any(|a| a.as_str() == Some(self.client_id.as_str())),
            _ => false,
        };
        if !ours {
            return Err(format!("aud {} is not {}", c["aud"], self.client_id));
        }
        let iat = time(&c["iat"]).ok_or("iat missing")?;
        if iat < now - MAX_TOKEN_AGE || iat > now + CLOCK_SKEW {
            return Err(format!("iat {iat} is not recent"));
        }
        if !c["exp"].is_null() {
            let exp = time(&c["exp"]).ok_or("exp is not a time")?;
            if exp + CLOCK_SKEW < now {
                return Err(format!("expired at {exp}"));
            }
        }
        if !c["events"][LOGOUT_EVENT].is_object() {
            return Err(format!("events has no {LOGOUT_EVENT}"));
        }
        if c.get("nonce").is_some() {
            return Err("a logout token carries no nonce".into());
        }
        let text = |name: &str| -> Result<Option<String>, String> {
            match &c[name] {
                Value::Null => Ok(None),
                Value::String(s) if !s.is_empty() => Ok(Some(s.clone())),
                other => Err(format!("{name} {other} is not a string")),
            }
        };
        let logout = Logout {
            sub: text("sub")?,
            sid: text("sid")?,
        };
        if logout.sub.is_none() && logout.sid.is_none() {
            return Err("neither sid nor sub".into());
        }
        Ok(logout)
    }

    /// Remembers the `jti` until the token is too old anyway; a second token with
    /// the same `jti` is refused.
    fn not_replayed(&self, c: &Value, now: DateTime<Utc>) -> Result<(), String> {
        let Some(jti) = c["jti"].as_str() else {
            return Ok(());
        };
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.retain(|_, at| *at > now - MAX_TOKEN_AGE - CLOCK_SKEW * 2);
        if seen.insert(jti.to_owned(), now).is_some() {
            return Err(format!("jti {jti} was used before"));
        }
        Ok(())
    }
}

fn decode_json(part: &str) -> Result<Value, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| "not base64url".to_owned())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if v.is_object() {
        Ok(v)
    } else {
        Err("not a JSON object".into())
    }
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(v.as_i64()?, 0)
}

/// Back-Channel Logout answers are never cached.
fn answer(status: StatusCode, body: Option<Value>) -> Response {
    let mut r = match body {
        Some(body) => (status, axum::Json(body)).into_response(),
        None => status.into_response(),
    };
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `POST /backchannel-logout` with `logout_token` in the form.
pub(crate) async fn receive(State(portal): State<Arc<Portal>>, body: Bytes) -> Response {
    let token = openidconnect::url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned());
    let Some(token) = token else {
        return answer(
            StatusCode::BAD_REQUEST,
            Some(serde_json::json!({
                "error": "invalid_request",
                "error_description": "logout_token missing",
            })),
        );
    };
    match portal
        .logout
        .verify(&portal.keys, &portal.http, &token, portal.now())
        .await
    {
        Ok(logout) => {
            let ended = end_sessions(&portal, &logout);
            eprintln!(
                "loket: back-channel logout (sid {:?}, sub {:?}): {ended} session(s) ended",
                logout.sid, logout.sub
            );
            answer(StatusCode::OK, None)
        }
        Err(why) => {
            eprintln!("loket: logout token refused: {why}");
            answer(
                StatusCode::BAD_REQUEST,
                Some(serde_json::json!({
                    "error": "invalid_request",
                    "error_description": why,
                })),
            )
        }
    }
}

/// Ends the sessions the token names: those of its `sid` (and `sub`, when both
/// are given), or all of the `sub` when there is no `sid`.
fn end_sessions(portal: &Portal, logout: &Logout) -> usize {
    let mut sessions = portal.sessions();
    let before = sessions.users.len();
    sessions.users.retain(|_, u| {
        let sid_matches = match &logout.sid {
            Some(sid) => u.sid.as_ref() == Some(sid),
            None => true,
        };
        let sub_matches = match &logout.sub {
            Some(sub) => &u.sub == sub,
            None => true,
        };
        !(sid_matches && sub_matches)
    });
    before - sessions.users.len()
}
