//! The audit log in the console: filters (address, event, IP, from, until), pages
//! of 100 newest first, and the same selection as CSV.

use super::admin_page;
use crate::error::{OnPage, PageError};
use crate::extract::Ctx;
use crate::gate::{Admin, Page};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use tweestap_domain::account::Email;
use tweestap_domain::store::AuditFilter;

const PAGE: u32 = 100;

#[derive(Deserialize, Default, Clone)]
pub struct AuditQuery {
    #[serde(default)]
    email: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    ip: String,
    /// `YYYY-MM-DD` (from the start of that day, UTC).
    #[serde(default)]
    from: String,
    /// `YYYY-MM-DD` (up to the end of that day, UTC).
    #[serde(default)]
    until: String,
    before: Option<i64>,
}

fn day(s: &str, end: bool) -> Option<DateTime<Utc>> {
    let d: NaiveDate = s.trim().parse().ok()?;
    let d = if end { d.succ_opt()? } else { d };
    Some(d.and_hms_opt(0, 0, 0)?.and_utc())
}

/// The filter the query describes; an address without an account matches nothing.
async fn filter_of(
    state: &AppState,
    q: &AuditQuery,
) -> Result<(AuditFilter, bool), tweestap_domain::Error> {
    let mut nothing = false;
    let account = match Email::parse(q.email.trim()) {
        Ok(e) if !q.email.trim().is_empty() => match state.app.account_by_email(e.as_str()).await {
            Ok(a) => Some(a.id),
            Err(_) => {
                nothing = true;
                None
            }
        },
        _ => None,
    };
    Ok((
        AuditFilter {
            account,
            event: Some(q.event.trim().to_owned()).filter(|s| !s.is_empty()),
            ip: Some(q.ip.trim().to_owned()).filter(|s| !s.is_empty()),
            from: day(&q.from, false),
            until: day(&q.until, true),
            before_id: q.before,
        },
        nothing,
    ))
}

pub async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Admin(_, _): Admin<Page>,
    jar: CookieJar,
    Query(q): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let (filter, nothing) = filter_of(&state, &q).await.on_page(ctx.lang)?;
    let rows = if nothing {
        Vec::new()
    } else {
        state
            .app
            .audit_page(&filter, PAGE)
            .await
            .on_page(ctx.lang)?
    };
    let query = |before: Option<i64>| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.append_pair("email", &q.email)
            .append_pair("event", &q.event)
            .append_pair("ip", &q.ip)
            .append_pair("from", &q.from)
            .append_pair("until", &q.until);
        if let Some(b) = before {
            s.append_pair("before", &b.to_string());
        }
        s.finish()
    };
    let next = (rows.len() == PAGE as usize)
        .then(|| {
            rows.last()
                .map(|(id, _)| format!("/admin/audit?{}", query(Some(*id))))
        })
        .flatten();
    let events: Vec<_> = rows
        .iter()
        .map(|(id, r)| {
            minijinja::context! {
                id => id, at => state.day_time(ctx.lang, r.at), event => r.event.clone(),
                email => r.email.clone().unwrap_or_default(), ip => r.ip.clone().unwrap_or_default(),
                detail => r.detail.clone().unwrap_or_default(),
            }
        })
        .collect();
    let extra = minijinja::context! {
        events => events, next => next, csv => format!("/admin/audit.csv?{}", query(None)),
        email => q.email, event => q.event, ip => q.ip, from => q.from, until => q.until,
    };
    Ok(admin_page(
        &state,
        &ctx,
        jar,
        StatusCode::OK,
        "admin_audit.html",
        extra,
    ))
}

pub async fn csv(
    State(state): State<AppState>,
    ctx: Ctx,
    Admin(_, _): Admin<Page>,
    Query(q): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let (filter, nothing) = filter_of(&state, &q).await.on_page(ctx.lang)?;
    let rows = if nothing {
        Vec::new()
    } else {
        state
            .app
            .audit_page(&filter, 100_000)
            .await
            .on_page(ctx.lang)?
    };
    let lines = crate::csv::audit_lines(&rows);
    Ok(crate::csv::response("audit.csv", &lines))
}
