//! How far the roll-out has come, who still has no second factor (also as CSV),
//! the reminder campaign, and the audit log (also as CSV).

use crate::api::json::{CallerJson, Empty};
use crate::error::{ApiError, ErrorCode};
use crate::gate::Admin;
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tweestap_domain::account::{AccountId, Role};
use tweestap_domain::console::RolloutCounts;
use tweestap_domain::store::{AuditFilter, SentReminder};
use utoipa::{IntoParams, ToSchema};

fn bad(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, message)
}

fn role_name(r: Role) -> &'static str {
    r.as_str()
}

/// Whether the client asked for CSV (`Accept: text/csv`).
fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"))
}

fn csv_response(name: &str, lines: Vec<Vec<String>>) -> Response {
    crate::csv::response(name, &lines)
}

#[derive(Serialize, ToSchema)]
pub struct Counts {
    none: u64,
    app: u64,
    sms: u64,
    both: u64,
    /// A passkey, and no app or SMS.
    passkey: u64,
    total: u64,
}

impl From<RolloutCounts> for Counts {
    fn from(c: RolloutCounts) -> Self {
        Self {
            none: c.none,
            app: c.app,
            sms: c.sms,
            both: c.both,
            passkey: c.passkey,
            total: c.total(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct NextReminder {
    /// Days before the deadline.
    stage: u32,
    #[schema(format = Date)]
    date: String,
}

#[derive(Serialize, ToSchema)]
pub struct RoleRollout {
    #[serde(flatten)]
    counts: Counts,
    /// `YYYY-MM-DD`, or null without a deadline.
    #[schema(format = Date)]
    required_from: Option<String>,
    /// Days until `required_from` (negative once passed).
    days_left: Option<i64>,
    next_reminder: Option<NextReminder>,
}

#[derive(Serialize, ToSchema)]
pub struct SeriesDay {
    #[schema(format = Date)]
    day: String,
    role: String,
    #[serde(flatten)]
    counts: Counts,
    /// Accounts with any second factor that day.
    with_two_factor: u64,
}

#[derive(Serialize, ToSchema)]
pub struct RolloutView {
    /// Per role (`user`, `support`, `admin`), accounts that are not disabled.
    roles: BTreeMap<String, RoleRollout>,
    /// Day by day (oldest first, up to 180 days), per role.
    series: Vec<SeriesDay>,
}

/// The roll-out dashboard
#[utoipa::path(
    get, path = "/admin/rollout", tag = "admin", operation_id = "adminRollout",
    security(("sessionCookie" = [])),
    responses((status = 200, description = "Counts per role and the daily series.", body = RolloutView)),
)]
pub async fn rollout(
    State(state): State<AppState>,
    Admin(_, _): Admin,
) -> Result<Json<RolloutView>, ApiError> {
    let r = state.app.rollout().await?;
    let roles = r
        .roles
        .into_iter()
        .map(|x| {
            (
                role_name(x.role).to_owned(),
                RoleRollout {
                    counts: x.counts.into(),
                    required_from: x.required_from.map(|d| d.to_string()),
                    days_left: x.days_left,
                    next_reminder: x.next_reminder.map(|(stage, d)| NextReminder {
                        stage,
                        date: d.to_string(),
                    }),
                },
            )
        })
        .collect();
    let series = r
        .series
        .into_iter()
        .map(|d| SeriesDay {
            day: d.day.to_string(),
            role: role_name(d.role).to_owned(),
            with_two_factor: d.counts.with_two_factor(),
            counts: d.counts.into(),
        })
        .collect();
    Ok(Json(RolloutView { roles, series }))
}

#[derive(Deserialize, IntoParams)]
pub struct WithoutQuery {
    /// `user` (default), `support` or `admin`.
    role: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Person {
    email: String,
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct People {
    accounts: Vec<Person>,
}

/// Who has no second factor yet
///
/// Accounts of a role (not disabled) without two-step verification, by address
/// (at most 100,000); as CSV (`email,name`) with `Accept: text/csv`.
#[utoipa::path(
    get, path = "/admin/rollout/without-two-factor", tag = "admin", operation_id = "adminWithoutTwoFactor",
    params(WithoutQuery),
    security(("sessionCookie" = [])),
    responses((status = 200, description = "The accounts (JSON or CSV).", body = People)),
)]
pub async fn without_two_factor(
    State(state): State<AppState>,
    Admin(_, _): Admin,
    headers: HeaderMap,
    Query(q): Query<WithoutQuery>,
) -> Result<Response, ApiError> {
    let role: Role = match q.role.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => s.parse().map_err(|_| bad("role: user, support or admin"))?,
        None => Role::User,
    };
    let accounts = state.app.without_two_factor(role, 100_000).await?;
    if wants_csv(&headers) {
        let mut lines = vec![vec!["email".to_owned(), "name".to_owned()]];
        lines.extend(
            accounts
                .iter()
                .map(|a| vec![a.email.to_string(), a.name.clone()]),
        );
        return Ok(csv_response(
            &format!("without-2fa-{}.csv", role.as_str()),
            lines,
        ));
    }
    Ok(Json(People {
        accounts: accounts
            .iter()
            .map(|a| Person {
                email: a.email.to_string(),
                name: a.name.clone(),
            })
            .collect(),
    })
    .into_response())
}

#[derive(Serialize, ToSchema)]
pub struct Sent {
    #[schema(format = Uuid)]
    account_id: String,
    email: String,
    #[schema(format = Date)]
    deadline: String,
    /// Days before the deadline.
    stage: u32,
    #[schema(format = DateTime)]
    sent_at: String,
}

impl From<&SentReminder> for Sent {
    fn from(s: &SentReminder) -> Self {
        Self {
            account_id: s.account_id.to_string(),
            email: s.email.clone(),
            deadline: s.deadline.to_string(),
            stage: s.stage,
            sent_at: s.sent_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DueStage {
    role: String,
    #[schema(format = Date)]
    deadline: String,
    stage: u32,
    /// Accounts of the role without two-step verification (those that had this
    /// stage already are skipped when it runs).
    candidates: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Reminders {
    /// Per role with a deadline: the stage due today, if any.
    due: Vec<DueStage>,
    /// The latest reminders sent, newest first (at most 200).
    sent: Vec<Sent>,
}

/// The reminder campaign
#[utoipa::path(
    get, path = "/admin/reminders", tag = "admin", operation_id = "adminReminders",
    security(("sessionCookie" = [])),
    responses((status = 200, description = "What is due and what was sent.", body = Reminders)),
)]
pub async fn reminders(
    State(state): State<AppState>,
    Admin(_, _): Admin,
) -> Result<Json<Reminders>, ApiError> {
    let counts = state.app.two_factor_counts().await?;
    let mut due = Vec::new();
    for role in [Role::User, Role::Support, Role::Admin] {
        if let Some((deadline, stage)) = state.app.due_reminder(role) {
            let candidates = counts
                .iter()
                .find(|(r, _)| *r == role)
                .map_or(0, |(_, c)| c.none);
            due.push(DueStage {
                role: role.as_str().to_owned(),
                deadline: deadline.to_string(),
                stage,
                candidates,
            });
        }
    }
    let sent = state.app.sent_reminders(200).await?;
    Ok(Json(Reminders {
        due,
        sent: sent.iter().map(Sent::from).collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct RunResult {
    sent: Vec<Sent>,
}

/// Send the reminders due now
///
/// What the hourly task does: each stage at most once per account.
#[utoipa::path(
    post, path = "/admin/reminders/run", tag = "admin", operation_id = "adminRunReminders",
    request_body = Empty,
    security(("sessionCookie" = [])),
    responses((status = 200, description = "What this run sent.", body = RunResult)),
)]
pub async fn run_reminders(
    State(state): State<AppState>,
    CallerJson(Admin(_, _), _): CallerJson<Admin, Empty>,
) -> Result<Json<RunResult>, ApiError> {
    let sent = state.app.send_reminders().await?;
    Ok(Json(RunResult {
        sent: sent.iter().map(Sent::from).collect(),
    }))
}

#[derive(Deserialize, IntoParams)]
pub struct AuditQuery {
    /// An account's id.
    account: Option<String>,
    /// An event type, e.g. `login_failed`.
    event: Option<String>,
    ip: Option<String>,
    /// RFC 3339: from this moment on.
    from: Option<String>,
    /// RFC 3339: before this moment.
    until: Option<String>,
    /// `next_before` of the previous page.
    before: Option<i64>,
    /// 1 to 1000; 100 when left out (CSV: up to 100,000).
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    id: i64,
    #[schema(format = DateTime)]
    at: String,
    event: String,
    account_id: Option<String>,
    email: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    detail: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    events: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page; null on the last.
    next_before: Option<i64>,
}

fn time(s: Option<&str>, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    match s.filter(|s| !s.is_empty()) {
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| bad(&format!("{name}: an RFC 3339 time"))),
        None => Ok(None),
    }
}

/// The audit log
///
/// Newest first, filtered and paged; as CSV with `Accept: text/csv`.
#[utoipa::path(
    get, path = "/admin/audit", tag = "admin", operation_id = "adminAudit",
    params(AuditQuery),
    security(("sessionCookie" = [])),
    responses((status = 200, description = "One page (JSON), or the events as CSV.", body = AuditPage)),
)]
pub async fn audit(
    State(state): State<AppState>,
    Admin(_, _): Admin,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let account = match q.account.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(AccountId(
            uuid::Uuid::parse_str(s).map_err(|_| bad("account: an account id"))?,
        )),
        None => None,
    };
    let filter = AuditFilter {
        account,
        event: q.event.filter(|s| !s.is_empty()),
        ip: q.ip.filter(|s| !s.is_empty()),
        from: time(q.from.as_deref(), "from")?,
        until: time(q.until.as_deref(), "until")?,
        before_id: q.before,
    };
    let csv = wants_csv(&headers);
    let limit = q.limit.unwrap_or(if csv { 100_000 } else { 100 });
    let max = if csv { 100_000 } else { 1000 };
    if !(1..=max).contains(&limit) {
        return Err(bad("limit: out of range"));
    }
    let rows = state.app.audit_page(&filter, limit).await?;
    if csv {
        let lines = crate::csv::audit_lines(&rows);
        return Ok(csv_response("audit.csv", lines));
    }
    let next_before = (rows.len() == limit as usize)
        .then(|| rows.last().map(|(id, _)| *id))
        .flatten();
    Ok(Json(AuditPage {
        events: rows
            .into_iter()
            .map(|(id, r)| AuditEntry {
                id,
                at: r.at.to_rfc3339(),
                event: r.event,
                account_id: r.account_id.map(|a| a.to_string()),
                email: r.email,
                ip: r.ip,
                user_agent: r.user_agent,
                detail: r.detail,
            })
            .collect(),
        next_before,
    })
    .into_response())
}
