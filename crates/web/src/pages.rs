//! Pages for browsers: work without JavaScript, Dutch first.

mod account;
mod admin;
mod enroll;
#[doc(hidden)]
pub(crate) mod fuzz;
mod login;
mod outbox;
pub(crate) mod passkey;
mod password;
mod step;
mod steps;
mod support;

use crate::error::PageError;
use crate::extract::Ctx;
use crate::gate::{Page, SignedIn};
use crate::i18n::{Lang, LANG_COOKIE};
use crate::view::page;
use crate::AppState;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use minijinja::Value;
use serde::Deserialize;
use tweestap_domain::factor::Factor;
use tweestap_domain::policy::Requirement;
use tweestap_domain::service::SessionInfo;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/lang/{code}", get(switch_language))
        .route("/login", get(login::form).post(login::submit))
        .route(
            "/login/code",
            get(login::code_form).post(login::code_submit),
        )
        .route(
            "/login/recovery",
            get(login::recovery_form).post(login::recovery_submit),
        )
        .route("/login/sms", post(login::send_sms))
        .route("/login/passkey", post(passkey::sign_in))
        .route("/logout", post(login::logout))
        .route(
            "/password/forgot",
            get(password::forgot_form).post(password::forgot_submit),
        )
        .route(
            "/password/reset/{token}",
            get(password::reset_form).post(password::reset_submit),
        )
        .route(
            "/secure",
            get(enroll::secure_form).post(enroll::secure_submit),
        )
        .route(
            "/secure/code",
            get(enroll::code_form).post(enroll::code_submit),
        )
        .route("/secure/code/resend", post(enroll::code_resend))
        .route(
            "/enroll/{token}",
            get(enroll::link_form).post(enroll::link_submit),
        )
        .route("/account", get(account::profile))
        .route("/account/2fa/later", post(postpone_two_factor))
        .route(
            "/account/recovery-codes",
            get(account::recovery_codes_form).post(account::recovery_codes_submit),
        )
        .route(
            "/account/recovery-codes/download",
            post(account::recovery_codes_download),
        )
        .route("/account/devices/{id}/forget", post(account::forget_device))
        .route("/account/devices/forget", post(account::forget_devices))
        .route(
            "/account/consents/{client}/revoke",
            post(account::revoke_consent),
        )
        .route(
            "/account/2fa/enable",
            get(account::enable_form).post(account::enable_submit),
        )
        .route("/account/2fa/passkey", get(account::passkey_form))
        .route(
            "/account/2fa/setup/{id}",
            get(account::setup_page).post(account::setup_submit),
        )
        .route("/account/2fa/setup/{id}/qr.png", get(account::setup_png))
        .route(
            "/account/2fa/sms",
            get(account::add_phone_form).post(account::add_phone_submit),
        )
        .route(
            "/account/2fa/sms/{id}",
            get(account::sms_setup_page).post(account::sms_setup_submit),
        )
        .route(
            "/account/2fa/sms/{id}/resend",
            post(account::sms_setup_resend),
        )
        .route(
            "/account/factors/{id}/remove",
            get(account::remove_form).post(account::remove_submit),
        )
        .route("/support", get(support::search))
        .route("/support/accounts/{id}", get(support::account))
        .route(
            "/support/accounts/{id}/reset-2fa",
            post(support::reset_submit),
        )
        .route("/support/accounts/{id}/email", post(support::email_submit))
        .route("/dev/outbox", get(outbox::list))
        .route("/dev/sms-outbox", get(outbox::sms_list))
        .route("/dev/outbox/{name}", get(outbox::show))
        .route("/dev/outbox/{name}/html", get(outbox::show_html))
        .merge(admin::routes())
}

pub(crate) fn csrf_failed(lang: Lang) -> Response {
    PageError::new(StatusCode::FORBIDDEN, "error_csrf", lang).into_response()
}

/// Set by "Later": hides the "2FA becomes mandatory" banner until the browser closes.
pub(crate) const LATER_COOKIE: &str = "tweestap_2fa_later";

/// The banner "two-step verification becomes mandatory on DATE: N days left" for a
/// signed-in user without a factor while the policy is still optional, unless
/// postponed in this browser session.
/// `factors`: the active factors when the caller has them already.
pub(crate) async fn deadline_banner(
    state: &AppState,
    info: &SessionInfo,
    jar: &CookieJar,
    factors: Option<&[Factor]>,
) -> Option<Value> {
    if jar.get(LATER_COOKIE).is_some() {
        return None;
    }
    let Requirement::Optional {
        required_from: Some(date),
        days_left: Some(days),
    } = state.app.requirement(&info.account)
    else {
        return None;
    };
    let has_factor = match factors {
        Some(f) => !f.is_empty(),
        None => !state
            .app
            .active_factors(info.account.id)
            .await
            .ok()?
            .is_empty(),
    };
    (!has_factor).then(|| {
        minijinja::context! {
            // The banner is shared by pages of either language: both, the template picks.
            date_nl => crate::dates::calendar_day(Lang::Nl, date),
            date_en => crate::dates::calendar_day(Lang::En, date),
            days => days.to_string(),
        }
    })
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

async fn postpone_two_factor(
    State(state): State<AppState>,
    ctx: Ctx,
    _: SignedIn<Page>,
    jar: CookieJar,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if !state.csrf.verify(&jar, &f.csrf) {
        return csrf_failed(ctx.lang);
    }
    // No Max-Age: a browser-session cookie, so the reminder returns next time.
    let cookie = Cookie::build((LATER_COOKIE, "1"))
        .path("/")
        .http_only(true)
        .secure(state.settings.secure_cookies)
        .same_site(SameSite::Lax)
        .build();
    (jar.add(cookie), Redirect::to("/")).into_response()
}

async fn home(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(info, _): SignedIn<Page>,
    jar: CookieJar,
) -> Response {
    // Signed in on the way to a portal behind forward-auth: back there now.
    let (jar, back) = crate::forward_auth::take_return(&state, jar);
    if let Some(url) = back {
        return (jar, Redirect::to(&url)).into_response();
    }
    let banner = deadline_banner(&state, &info, &jar, None).await;
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let name = if info.account.name.is_empty() {
        info.account.email.to_string()
    } else {
        info.account.name.clone()
    };
    (
        jar,
        page(
            &ctx,
            "home.html",
            &csrf,
            true,
            minijinja::context! {
                name => name, banner => banner, staff => support::is_staff(&info.account),
                admin => info.account.role == tweestap_domain::account::Role::Admin,
            },
        ),
    )
        .into_response()
}

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

/// Only local paths: never an open redirect.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    next.and_then(crate::local_return::local_path)
        .unwrap_or_else(|| "/".to_owned())
}

async fn switch_language(
    State(state): State<AppState>,
    Path(code): Path<String>,
    Query(q): Query<Next>,
    jar: CookieJar,
) -> Response {
    let dutch = state.settings.dutch;
    let lang = Lang::from_tag(&code, dutch).unwrap_or(dutch.lang());
    let cookie = Cookie::build((LANG_COOKIE, lang.cookie_value()))
        .path("/")
        .permanent()
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.settings.secure_cookies)
        .build();
    (jar.add(cookie), Redirect::to(&safe_next(q.next.as_deref()))).into_response()
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/style.css"),
    )
        .into_response()
}

/// Readiness: the database answers.
pub async fn ready(State(state): State<AppState>) -> Response {
    match state.app.store().ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

pub async fn not_found(ctx: Ctx) -> Response {
    PageError::new(StatusCode::NOT_FOUND, "error_not_found", ctx.lang).into_response()
}
