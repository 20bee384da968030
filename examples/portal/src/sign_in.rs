//! Signing in through tweestap: the authorization request (state, nonce and PKCE
//! kept here), and the callback that exchanges the code and checks the ID token;
//! for a step-up also its `auth_time` and `acr`.

use crate::{error_chain, refusal, session_id, set_cookie, Portal, User, ACR_MFA};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, TimeDelta, Utc};
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AccessTokenHash, AuthenticationContextClass, AuthorizationCode, ClaimsVerificationError,
    CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, Scope,
    SignatureVerificationError, TokenResponse,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a started sign-in may take.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// How far tweestap's clock and ours may differ when `auth_time` is checked.
pub(crate) const CLOCK_SKEW: TimeDelta = TimeDelta::seconds(30);

/// A sign-in under way: what the callback must match, and what it is for.
pub(crate) struct Pending {
    state: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
    started: Instant,
    /// A step-up: the `max_age` that was asked (and `acr_values` mfa).
    step_up: Option<Duration>,
    /// Where the browser goes once signed in.
    then: &'static str,
}

/// What a sign-in is for.
pub(crate) enum Purpose {
    /// Signing in at Loket.
    SignIn,
    /// A second factor at most `max_age` ago, then back to `then`.
    StepUp {
        max_age: Duration,
        then: &'static str,
    },
}

/// `GET /login`: a new session, off to tweestap.
pub(crate) async fn login(State(portal): State<Arc<Portal>>) -> Response {
    start(&portal, None, Purpose::SignIn)
}

/// Sends the browser to tweestap's authorization endpoint, keeping state, nonce
/// and PKCE verifier under the session `id` (a new one when `None`).
pub(crate) fn start(portal: &Portal, id: Option<String>, purpose: Purpose) -> Response {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = portal
        .client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge);
    let (step_up, then) = match purpose {
        Purpose::SignIn => (None, "/"),
        Purpose::StepUp { max_age, then } => {
            // max_age=300&acr_values=urn:tweestap:acr:mfa: tweestap asks the
            // password and the second factor again if its sign-in is older, or
            // had no second factor; a remembered browser does not skip it then.
            request = request
                .set_max_age(max_age)
                .add_auth_context_value(AuthenticationContextClass::new(ACR_MFA.into()));
            (Some(max_age), then)
        }
    };
    let (url, state, nonce) = request.url();
    let new = id.is_none();
    let id = id.unwrap_or_else(|| CsrfToken::new_random().secret().clone());
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
                step_up,
                then,
            },
        );
    }
    let mut r = Redirect::to(url.as_str()).into_response();
    if new {
        r.headers_mut()
            .insert(header::SET_COOKIE, set_cookie(&id, 3600));
    }
    r
}

#[derive(serde::Deserialize)]
pub(crate) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Back from tweestap: the code for tokens, the ID token checked, the user kept.
pub(crate) async fn callback(
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
    let (step_up, then) = (pending.step_up, pending.then);
    let mut user = match sign_in(&portal, code, pending).await {
        Ok(user) => user,
        Err(e) => return refusal(StatusCode::FORBIDDEN, &e),
    };
    if let Some(max_age) = step_up {
        if let Err(e) = check_step_up(&user, max_age, portal.now()) {
            return refusal(StatusCode::FORBIDDEN, &e);
        }
    }
    if portal.require_mfa && !user.second_factor() {
        return refusal(
            StatusCode::FORBIDDEN,
            "Dit loket vraagt een aanmelding met een tweede stap (acr urn:tweestap:acr:mfa).",
        );
    }
    let mut sessions = portal.sessions();
    if let Some(before) = sessions.users.get(&id) {
        // A step-up in a signed-in session must be the same person again.
        if before.sub != user.sub {
            sessions.users.remove(&id);
            return refusal(
                StatusCode::FORBIDDEN,
                "Je meldde je opnieuw aan met een ander account; meld je opnieuw aan.",
            );
        }
        user.iban = before.iban.clone();
    }
    sessions.users.insert(id, user);
    Redirect::to(then).into_response()
}

/// After a step-up: the second factor used (`acr`), and the sign-in (`auth_time`)
/// no older than the `max_age` asked, so a provider that ignored either is caught.
pub(crate) fn check_step_up(
    user: &User,
    max_age: Duration,
    now: DateTime<Utc>,
) -> Result<(), String> {
    if !user.second_factor() {
        return Err(format!(
            "Voor deze handeling is een aanmelding met een tweede stap nodig \
             (acr {ACR_MFA}); tweestap gaf {}.",
            user.acr.as_deref().unwrap_or("geen acr")
        ));
    }
    let Some(auth_time) = user.auth_time else {
        return Err("Het ID-token zegt niet wanneer je je aanmeldde (auth_time).".into());
    };
    let max_age = TimeDelta::from_std(max_age).unwrap_or(TimeDelta::MAX);
    if now - auth_time > max_age + CLOCK_SKEW || auth_time > now + CLOCK_SKEW {
        return Err(format!(
            "Je aanmelding is niet recent genoeg voor deze handeling (auth_time {auth_time}, \
             max_age {} s).",
            max_age.num_seconds()
        ));
    }
    Ok(())
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
    let mut verifier = portal.id_token_verifier();
    let mut checked = id_token.claims(&verifier, &pending.nonce);
    if let Err(ClaimsVerificationError::SignatureVerification(
        SignatureVerificationError::NoMatchingKey,
    )) = checked
    {
        // Signed with a key we do not know yet: tweestap rotated its keys.
        portal.keys.refetch(&portal.http).await;
        verifier = portal.id_token_verifier();
        checked = id_token.claims(&verifier, &pending.nonce);
    }
    let claims = checked.map_err(|e| format!("ongeldig ID-token: {}", error_chain(&e)))?;
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
        sub: claims.subject().as_str().to_owned(),
        sid: claims.additional_claims().sid.clone(),
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
        auth_time: claims.auth_time(),
        iban: None,
    })
}
