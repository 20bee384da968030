//! Support endpoints: find accounts, reset two-step verification, change an address.
//! Only fully signed-in support staff and admins; the domain checks the role (403
//! `forbidden`) and writes every refusal to the audit log.

use super::{signed_in, ApiJson};
use crate::error::ApiError;
use crate::extract::Ctx;
use crate::pages::base_url;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::{json, Value};
use tweestap_domain::account::AccountId;
use tweestap_domain::service::{AccountOverview, Actor};
use tweestap_domain::Error;
use uuid::Uuid;

fn account_json(o: &AccountOverview) -> Value {
    let a = &o.account;
    json!({
        "id": a.id.to_string(),
        "email": a.email.as_str(),
        "name": a.name,
        "role": a.role.as_str(),
        "two_factor": o.two_factor,
        "shared_mailbox": o.shared_mailbox,
        "manageable": o.manageable,
    })
}

fn parse_id(raw: &str) -> Result<AccountId, ApiError> {
    Uuid::parse_str(raw)
        .map(AccountId)
        .map_err(|_| Error::NotFound.into())
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

pub async fn search(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Query(query): Query<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    let info = signed_in(&state, &jar).await?;
    let found = state
        .app
        .find_accounts(Actor::Staff(&info.account), &query.q, &ctx.req)
        .await?;
    Ok(Json(json!({
        "accounts": found.iter().map(account_json).collect::<Vec<_>>(),
    })))
}

pub async fn account(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let info = signed_in(&state, &jar).await?;
    let id = parse_id(&id)?;
    let o = state
        .app
        .account_overview(Actor::Staff(&info.account), id, &ctx.req)
        .await?;
    Ok(Json(account_json(&o)))
}

#[derive(Deserialize)]
pub struct ReasonBody {
    /// Missing counts as blank: 400 `reason_required`.
    #[serde(default)]
    reason: String,
}

pub async fn reset_two_factor(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> Result<Json<Value>, ApiError> {
    let info = signed_in(&state, &jar).await?;
    let id = parse_id(&id)?;
    let expires_at = state
        .app
        .reset_two_factor(
            Actor::Staff(&info.account),
            id,
            &b.reason,
            &base_url(&state),
            &ctx.req,
        )
        .await?;
    Ok(Json(json!({
        "state": "reset",
        "link_expires_at": expires_at.to_rfc3339(),
    })))
}

#[derive(Deserialize)]
pub struct EmailBody {
    email: String,
}

pub async fn change_email(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<EmailBody>,
) -> Result<Json<Value>, ApiError> {
    let info = signed_in(&state, &jar).await?;
    let id = parse_id(&id)?;
    let actor = Actor::Staff(&info.account);
    state
        .app
        .change_email(actor, id, &b.email, &ctx.req)
        .await?;
    let o = state.app.account_overview(actor, id, &ctx.req).await?;
    Ok(Json(account_json(&o)))
}
