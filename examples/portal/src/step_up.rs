//! Step-up before a sensitive action: changing the bank account ("rekeningnummer
//! wijzigen") needs a sign-in with a second factor (`acr` urn:tweestap:acr:mfa) at
//! most `step_up_max_age` ago. When the session's sign-in is older, or was without
//! a second factor, Loket sends the browser to tweestap again with
//! `max_age=<seconds>&acr_values=urn:tweestap:acr:mfa` (and a new state, nonce and
//! PKCE); the callback checks the answer's `acr` and `auth_time`.

use crate::sign_in::{self, Purpose};
use crate::{escape, page, session_id, Portal, User};
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, TimeDelta, Utc};
use std::sync::Arc;
use std::time::Duration;

/// The sensitive page.
pub const PATH: &str = "/gegevens-wijzigen";

/// Whether `user` may do the sensitive action now, without asking tweestap: a
/// second factor, at most `max_age` ago (no clock skew allowed here: when in
/// doubt, tweestap decides).
pub(crate) fn fresh(user: &User, max_age: Duration, now: DateTime<Utc>) -> bool {
    let max_age = TimeDelta::from_std(max_age).unwrap_or(TimeDelta::MAX);
    user.second_factor()
        && user
            .auth_time
            .is_some_and(|t| now - t <= max_age && t <= now + sign_in::CLOCK_SKEW)
}

/// Off to tweestap for a fresh sign-in with a second factor, back to this page.
fn step_up(portal: &Portal, headers: &HeaderMap) -> Response {
    sign_in::start(
        portal,
        session_id(headers),
        Purpose::StepUp {
            max_age: portal.step_up_max_age,
            then: PATH,
        },
    )
}

/// `GET /gegevens-wijzigen`: the form, or first a step-up.
pub(crate) async fn show(State(portal): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    match portal.user(&headers) {
        Some((_, user)) if fresh(&user, portal.step_up_max_age, portal.now()) => {
            let when = user
                .auth_time
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default();
            page(
                "Rekeningnummer wijzigen",
                &format!(
                    "<h1 id=\"sensitive\">Rekeningnummer wijzigen</h1>\
                     <p>Je meldde je aan met een tweede stap om <span id=\"auth-time\">{when}</span>.</p>\
                     <form method=\"post\" action=\"{PATH}\">\
                     <label for=\"iban\">Nieuw rekeningnummer (IBAN)</label>\
                     <input id=\"iban\" name=\"iban\" required value=\"{iban}\">\
                     <button type=\"submit\">Wijzigen</button></form>\
                     <p><a href=\"/\">Terug</a></p>",
                    iban = escape(user.iban.as_deref().unwrap_or("")),
                ),
            )
            .into_response()
        }
        _ => step_up(&portal, &headers),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct Change {
    iban: String,
}

/// `POST /gegevens-wijzigen`: checked again (the page may have stood open), then
/// done. The cookie is SameSite=Lax, so other sites cannot post this form.
pub(crate) async fn change_bank_account(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Form(change): Form<Change>,
) -> Response {
    let Some((id, user)) = portal.user(&headers) else {
        return Redirect::to("/login").into_response();
    };
    if !fresh(&user, portal.step_up_max_age, portal.now()) {
        return Redirect::to(PATH).into_response();
    }
    let iban: String = change
        .iban
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase();
    let plausible = (15..=34).contains(&iban.len())
        && iban.chars().all(|c| c.is_ascii_alphanumeric())
        && iban.chars().take(2).all(|c| c.is_ascii_alphabetic());
    if !plausible {
        return (
            StatusCode::BAD_REQUEST,
            page(
                "Rekeningnummer wijzigen",
                &format!(
                    "<h1>Rekeningnummer wijzigen</h1>\
                     <p id=\"error\">Dit is geen IBAN.</p><p><a href=\"{PATH}\">Opnieuw</a></p>"
                ),
            ),
        )
            .into_response();
    }
    if let Some(u) = portal.sessions().users.get_mut(&id) {
        u.iban = Some(iban.clone());
    }
    page(
        "Rekeningnummer gewijzigd",
        &format!(
            "<h1 id=\"changed\">Rekeningnummer gewijzigd</h1>\
             <p>Je nieuwe rekeningnummer is <span id=\"iban\">{}</span>.</p>\
             <p><a href=\"/\">Terug</a></p>",
            escape(&iban)
        ),
    )
    .into_response()
}
