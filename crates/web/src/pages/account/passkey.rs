//! Setting up a passkey from the set-up journeys (the method chosen next to the app
//! and SMS) and from My Profile: the page whose script runs the browser's ceremony
//! against the JSON API. Without JavaScript the page says to choose another method.

use super::super::steps::{At, Journey, Via};
use crate::extract::Ctx;
use crate::gate::{Enrolling, Page};
use crate::view::page;
use crate::AppState;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use tweestap_domain::session::SessionStage;

/// `GET /account/2fa/passkey`.
pub async fn passkey_form(
    State(state): State<AppState>,
    ctx: Ctx,
    Enrolling(info, _): Enrolling<Page>,
    jar: CookieJar,
    Query(via): Query<Via>,
) -> Response {
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let journey = via.journey();
    // In a journey the person goes on where it leads ("/" follows a portal that is
    // waiting); from My Profile back to it.
    let done = if journey.is_some() {
        "/"
    } else {
        "/account?done=passkey"
    };
    let enrolling = info.session.stage == SessionStage::Enrollment;
    let back = format!("/account/2fa/enable{}", via.query());
    let extra = minijinja::context! {
        steps => journey.map(|j: Journey| j.bar(ctx.lang, At::Connect)),
        ask_password => !enrolling, done => done, back => back,
        available => state.app.passkeys_available(),
    };
    (
        jar,
        page(&ctx, "passkey_setup.html", &csrf, !enrolling, extra),
    )
        .into_response()
}
