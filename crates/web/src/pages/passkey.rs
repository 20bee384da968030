//! The passkey buttons of the pages: the script that runs the browser's ceremony
//! (a progressive enhancement: without it the pages work as before), and the form
//! post that finishes a sign-in with the browser's answer, so the sign-in goes on
//! exactly as after a code (to the portal that asked, or home).

use super::step::{checked, onward, Leave, Visit};
use crate::i18n::Lang;
use axum::extract::Form;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tweestap_domain::passkey::{PasskeyProblem, MAX_CREDENTIAL_JSON};
use tweestap_domain::Error;

pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/passkey.js"),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct PasskeyForm {
    #[serde(default)]
    csrf: String,
    /// The page the button was on: `code` (the second step) or the sign-in page.
    #[serde(default)]
    from: String,
    /// The browser's answer, `PublicKeyCredential.toJSON()` as JSON text.
    #[serde(default)]
    credential: String,
}

/// `POST /login/passkey`: the browser's answer, from the sign-in page (without a
/// password) or the code page (the second factor).
pub(super) async fn sign_in(
    Visit { state, ctx, jar }: Visit,
    Form(f): Form<PasskeyForm>,
) -> Result<Response, Leave> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    let back = if f.from == "code" {
        "/login/code"
    } else {
        "/login"
    };
    let credential = match serde_json::from_str::<serde_json::Value>(&f.credential) {
        Ok(v) if f.credential.len() <= MAX_CREDENTIAL_JSON => v,
        _ => return Ok(back_with(back, PasskeyProblem::Invalid)),
    };
    let token = crate::extract::session_token(&jar);
    match state
        .app
        .passkey_sign_in(token.as_ref(), &credential, &ctx.req)
        .await
    {
        Ok(new) => Ok(onward(&state, jar, &new, "/")),
        Err(Error::Passkey(p)) => Ok(back_with(back, p)),
        Err(e) => Err(crate::error::PageError::from_domain(e, ctx.lang).into()),
    }
}

/// Back to the page of the button, which says what went wrong.
fn back_with(page: &str, p: PasskeyProblem) -> Response {
    Redirect::to(&format!("{page}?passkey={}", problem_name(p))).into_response()
}

fn problem_name(p: PasskeyProblem) -> &'static str {
    match p {
        PasskeyProblem::Unavailable => "unavailable",
        PasskeyProblem::Expired => "expired",
        PasskeyProblem::UnknownKey => "unknown",
        PasskeyProblem::Invalid => "invalid",
        PasskeyProblem::PossibleClone => "clone",
        PasskeyProblem::AlreadyRegistered => "registered",
    }
}

/// The message for `?passkey=<problem>` on the sign-in and code pages.
pub(super) fn problem_text(lang: Lang, name: Option<&str>) -> Option<&'static str> {
    let key = match name? {
        "unavailable" => "passkey_error_unavailable",
        "expired" => "passkey_error_expired",
        "unknown" => "passkey_error_unknown",
        "clone" => "passkey_error_clone",
        _ => "passkey_error_invalid",
    };
    Some(lang.t(key))
}
