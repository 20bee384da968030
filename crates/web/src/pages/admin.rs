//! The roll-out console's pages under `/admin` (administrators with a recent code;
//! see [`crate::gate::Admin`]): the dashboard, accounts, import, policy, audit log
//! and the step-up that opens them. Without JavaScript; the same look as the rest.

pub(super) mod accounts;
pub(super) mod audit;
mod chart;
mod import;
pub(super) mod policy;

use super::step::checked;
use crate::error::{OnPage, PageError};
use crate::extract::Ctx;
use crate::gate::{Admin, Page, SignedIn};
use crate::view::page;
use crate::AppState;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};
use tweestap_domain::account::Role;
use tweestap_domain::Error;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(dashboard))
        .route("/admin/step-up", get(step_up_form).post(step_up_submit))
        .route("/admin/reminders/run", post(run_reminders))
        .route("/admin/without-2fa.csv", get(without_csv))
        .route(
            "/admin/accounts",
            get(accounts::list).post(accounts::create),
        )
        .route("/admin/accounts/{id}", get(accounts::show))
        .route("/admin/accounts/{id}/role", post(accounts::role))
        .route("/admin/accounts/{id}/disable", post(accounts::disable))
        .route("/admin/accounts/{id}/enable", post(accounts::enable))
        .route("/admin/accounts/{id}/invite", post(accounts::invite))
        .route("/admin/accounts/{id}/delete", post(accounts::delete))
        .route(
            "/admin/import",
            get(import::form)
                .post(import::submit)
                .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024)),
        )
        .route("/admin/policy", get(policy::form).post(policy::submit))
        .route("/admin/audit", get(audit::list))
        .route("/admin/audit.csv", get(audit::csv))
}

/// Renders a console page: the header shows the console's links.
pub(super) fn admin_page(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    status: StatusCode,
    name: &str,
    extra: minijinja::Value,
) -> Response {
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let extra = minijinja::context! { staff => true, admin => true, ..extra };
    (status, jar, page(ctx, name, &csrf, true, extra)).into_response()
}

#[derive(Serialize)]
struct RoleRow {
    role: String,
    none: u64,
    app: u64,
    sms: u64,
    both: u64,
    passkey: u64,
    total: u64,
    percent: u64,
    required_from: Option<String>,
    /// Off, optional or required (without a date, that is what applies).
    mode: String,
    days_left: Option<i64>,
    next_reminder: Option<String>,
}

#[derive(Deserialize)]
pub struct DashboardQuery {
    sent: Option<usize>,
}

async fn dashboard(
    State(state): State<AppState>,
    ctx: Ctx,
    Admin(_, _): Admin<Page>,
    jar: CookieJar,
    Query(q): Query<DashboardQuery>,
) -> Result<Response, PageError> {
    let lang = ctx.lang;
    let r = state.app.rollout().await.on_page(lang)?;
    let policy = state.app.policy();
    let day = |d: chrono::NaiveDate| {
        d.and_hms_opt(12, 0, 0)
            .map(|t| state.day(lang, t.and_utc()))
            .unwrap_or_else(|| d.to_string())
    };
    let rows: Vec<RoleRow> = r
        .roles
        .iter()
        .map(|x| RoleRow {
            role: lang.t(&format!("role_{}", x.role.as_str())).to_owned(),
            none: x.counts.none,
            app: x.counts.app,
            sms: x.counts.sms,
            both: x.counts.both,
            passkey: x.counts.passkey,
            total: x.counts.total(),
            percent: (x.counts.with_two_factor() * 100)
                .checked_div(x.counts.total())
                .unwrap_or(0),
            required_from: x.required_from.map(day),
            mode: {
                let mode = serde_json::to_value(policy.role(x.role).two_factor).ok();
                let mode = mode.as_ref().and_then(|m| m.as_str()).unwrap_or("optional");
                lang.t(&format!("admin_mode_{mode}")).to_owned()
            },
            days_left: x.days_left,
            next_reminder: x.next_reminder.map(|(stage, d)| {
                lang.t("admin_next_reminder")
                    .replace("{days}", &stage.to_string())
                    .replace("{date}", &day(d))
            }),
        })
        .collect();
    let chart = chart::Chart::of(&r.series, lang);
    let without = state
        .app
        .without_two_factor(Role::User, 25)
        .await
        .on_page(lang)?;
    let without: Vec<String> = without.iter().map(|a| a.email.to_string()).collect();
    let due: Vec<String> = [Role::User, Role::Support, Role::Admin]
        .into_iter()
        .filter_map(|role| {
            state.app.due_reminder(role).map(|(deadline, stage)| {
                lang.t("admin_due_reminder")
                    .replace("{role}", lang.t(&format!("role_{}", role.as_str())))
                    .replace("{days}", &stage.to_string())
                    .replace("{date}", &day(deadline))
            })
        })
        .collect();
    let sent = state.app.sent_reminders(20).await.on_page(lang)?;
    let sent: Vec<_> = sent
        .iter()
        .map(|s| {
            minijinja::context! {
                email => s.email.clone(), stage => s.stage, at => state.day_time(lang, s.sent_at),
            }
        })
        .collect();
    let notice = q.sent.map(|n| {
        lang.t("admin_reminders_sent")
            .replace("{count}", &n.to_string())
    });
    let extra = minijinja::context! {
        rows => rows, chart => chart, without => without, due => due, sent => sent, notice => notice,
    };
    Ok(admin_page(
        &state,
        &ctx,
        jar,
        StatusCode::OK,
        "admin_dashboard.html",
        extra,
    ))
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn run_reminders(
    State(state): State<AppState>,
    ctx: Ctx,
    Admin(_, _): Admin<Page>,
    jar: CookieJar,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    let sent = state.app.send_reminders().await.on_page(ctx.lang)?;
    Ok(Redirect::to(&format!("/admin?sent={}", sent.len())).into_response())
}

#[derive(Deserialize)]
pub struct RoleQuery {
    role: Option<String>,
}

/// The people of a role still without two-step verification, as CSV.
async fn without_csv(
    State(state): State<AppState>,
    ctx: Ctx,
    Admin(_, _): Admin<Page>,
    Query(q): Query<RoleQuery>,
) -> Result<Response, PageError> {
    let role: Role = q
        .role
        .as_deref()
        .and_then(|r| r.parse().ok())
        .unwrap_or(Role::User);
    let accounts = state
        .app
        .without_two_factor(role, 100_000)
        .await
        .on_page(ctx.lang)?;
    let mut lines = vec![vec!["email".to_owned(), "name".to_owned()]];
    lines.extend(
        accounts
            .iter()
            .map(|a| vec![a.email.to_string(), a.name.clone()]),
    );
    Ok(crate::csv::response(
        &format!("without-2fa-{}.csv", role.as_str()),
        &lines,
    ))
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// A full sign-in (password and code, whatever the browser remembers) that comes
/// back to `next`: for administrators whose code comes by SMS. The return address
/// is absolute, as the sign-in only follows those (to this origin).
fn sign_in_again(state: &AppState, next: &str) -> String {
    let rd = format!("{}{next}", state.base_url().trim_end_matches('/'));
    let rd: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
    format!("/login?prompt=login&mfa=1&rd={rd}")
}

/// Only a console page may be where a step-up returns to.
fn console_next(next: Option<&str>) -> String {
    match next.and_then(crate::local_return::local_path) {
        Some(n) if n.starts_with("/admin") && !n.starts_with("/admin/step-up") => n,
        _ => "/admin".to_owned(),
    }
}

async fn step_up_form(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(info, _): SignedIn<Page>,
    jar: CookieJar,
    Query(q): Query<NextQuery>,
) -> Result<Response, PageError> {
    if info.account.role != Role::Admin {
        return Err(PageError::from_domain(Error::Forbidden, ctx.lang));
    }
    let next = console_next(q.next.as_deref());
    let again = sign_in_again(&state, &next);
    let extra = minijinja::context! { again => again, next => next, error => None::<String> };
    Ok(admin_page(
        &state,
        &ctx,
        jar,
        StatusCode::OK,
        "admin_step_up.html",
        extra,
    ))
}

#[derive(Deserialize)]
pub struct StepUpForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: zeroize::Zeroizing<String>,
    next: Option<String>,
}

async fn step_up_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(info, _): SignedIn<Page>,
    jar: CookieJar,
    Form(f): Form<StepUpForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    if info.account.role != Role::Admin {
        return Err(PageError::from_domain(Error::Forbidden, ctx.lang));
    }
    let next = console_next(f.next.as_deref());
    let error = match state.app.step_up(&info, &f.code, &ctx.req).await {
        Ok(()) => return Ok(Redirect::to(&next).into_response()),
        Err(Error::InvalidCode) => ctx.lang.t("admin_step_up_wrong").to_owned(),
        Err(Error::TooManyAttempts { retry_after }) => ctx
            .lang
            .t("admin_step_up_locked")
            .replace("{minutes}", &((retry_after + 59) / 60).to_string()),
        Err(e) => return Err(PageError::from_domain(e, ctx.lang)),
    };
    let again = sign_in_again(&state, &next);
    let extra = minijinja::context! { again => again, next => next, error => error };
    Ok(admin_page(
        &state,
        &ctx,
        jar,
        StatusCode::BAD_REQUEST,
        "admin_step_up.html",
        extra,
    ))
}
