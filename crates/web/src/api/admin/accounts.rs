//! Accounts in the console: the list (search, filters, keyset paging), creating one
//! (with an invitation), changing its role, disabling, enabling and deleting it.

use crate::api::bodies::Role;
use crate::api::json::{CallerJson, Empty};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::Ctx;
use crate::gate::Admin;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tweestap_domain::account::{Account, AccountId};
use tweestap_domain::console::{AccountFilter, AccountListing, Cursor, TwoFactorState};
use tweestap_domain::Error;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// An account as the console shows it.
#[derive(Serialize, ToSchema)]
pub struct AdminAccount {
    #[schema(format = Uuid)]
    id: String,
    email: String,
    name: String,
    role: Role,
    /// `none`, `app`, `sms`, `both` or `passkey` (a passkey and no app or SMS).
    #[schema(examples("app"))]
    two_factor: String,
    shared_mailbox: bool,
    disabled: bool,
    /// RFC 3339.
    #[schema(format = DateTime)]
    created_at: String,
    /// RFC 3339; null if never signed in.
    #[schema(format = DateTime)]
    last_sign_in_at: Option<String>,
}

fn view(
    state: &AppState,
    a: &Account,
    two_factor: TwoFactorState,
    last: Option<DateTime<Utc>>,
) -> AdminAccount {
    AdminAccount {
        id: a.id.to_string(),
        email: a.email.as_str().to_owned(),
        name: a.name.clone(),
        role: a.role.into(),
        two_factor: two_factor.as_str().to_owned(),
        shared_mailbox: state.app.is_shared_mailbox(&a.email),
        disabled: a.disabled_at.is_some(),
        created_at: a.created_at.to_rfc3339(),
        last_sign_in_at: last.map(|t| t.to_rfc3339()),
    }
}

fn listed(state: &AppState, l: &AccountListing) -> AdminAccount {
    view(state, &l.account, l.two_factor, l.last_sign_in_at)
}

/// One account with its second factors and last sign-in, as the list shows it.
async fn one(state: &AppState, id: AccountId) -> Result<AdminAccount, ApiError> {
    Ok(listed(state, &state.app.console_listing(id).await?))
}

fn parse_id(raw: &str) -> Result<AccountId, ApiError> {
    Uuid::parse_str(raw)
        .map(AccountId)
        .map_err(|_| Error::NotFound.into())
}

fn bad(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, message)
}

#[derive(Deserialize, IntoParams)]
pub struct ListQuery {
    /// Part of the address or the name.
    q: Option<String>,
    /// `none`, `app`, `sms`, `both` or `passkey` (a passkey and no app or SMS).
    two_factor: Option<String>,
    /// `user`, `support` or `admin`.
    role: Option<String>,
    /// `true`: only shared mailboxes (info@...); `false`: only personal addresses.
    shared_mailbox: Option<bool>,
    disabled: Option<bool>,
    /// RFC 3339: not signed in since then (never signed in counts too).
    inactive_since: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 500; 50 when left out.
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct AccountPage {
    accounts: Vec<AdminAccount>,
    /// Where the next page starts (pass as `cursor`); null on the last page.
    next_cursor: Option<String>,
}

/// List accounts
///
/// By address, in pages that stay fast however many accounts there are (keyset
/// paging: a page never repeats or skips an account when others change between
/// calls).
#[utoipa::path(
    get, path = "/admin/accounts", tag = "admin", operation_id = "adminListAccounts",
    params(ListQuery),
    security(("sessionCookie" = [])),
    responses(
        (status = 200, description = "One page of accounts.", body = AccountPage),
        (status = 400, description = "`invalid_request`: a filter or the cursor is not valid.", body = ErrorBody),
        (status = 401, description = "`unauthenticated`.", body = ErrorBody),
        (status = 403, description = "`forbidden` (not an administrator) or `step_up_required`.", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Admin(_, _): Admin,
    Query(q): Query<ListQuery>,
) -> Result<Json<AccountPage>, ApiError> {
    let filter = AccountFilter {
        q: q.q,
        two_factor: match q.two_factor.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => Some(
                TwoFactorState::parse(s)
                    .ok_or_else(|| bad("two_factor: none, app, sms, both or passkey"))?,
            ),
            None => None,
        },
        role: match q.role.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => Some(s.parse().map_err(|_| bad("role: user, support or admin"))?),
            None => None,
        },
        shared_mailbox: q.shared_mailbox,
        disabled: q.disabled,
        inactive_since: match q.inactive_since.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => Some(
                DateTime::parse_from_rfc3339(s)
                    .map_err(|_| bad("inactive_since: an RFC 3339 time"))?
                    .with_timezone(&Utc),
            ),
            None => None,
        },
    };
    let cursor = match q.cursor.as_deref().filter(|s| !s.is_empty()) {
        Some(c) => Some(Cursor::decode(c).ok_or_else(|| bad("cursor: not one this API gave"))?),
        None => None,
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=tweestap_domain::service::MAX_PAGE).contains(&limit) {
        return Err(bad("limit: 1 to 500"));
    }
    let page = state
        .app
        .console_accounts(&filter, cursor.as_ref(), limit)
        .await?;
    Ok(Json(AccountPage {
        accounts: page.accounts.iter().map(|l| listed(&state, l)).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccountBody {
    email: String,
    #[serde(default)]
    name: String,
    /// `user` when left out.
    role: Option<Role>,
    /// Mail a single-use link (valid `invite_days` of the policy, 5 by default) to
    /// choose a password and then set up two-step verification.
    #[serde(default)]
    invite: bool,
}

/// Create an account
///
/// Without a password: the person chooses one through the invitation (or "forgot
/// password").
#[utoipa::path(
    post, path = "/admin/accounts", tag = "admin", operation_id = "adminCreateAccount",
    request_body = NewAccountBody,
    security(("sessionCookie" = [])),
    responses(
        (status = 201, description = "Created (and invited).", body = AdminAccount),
        (status = 400, description = "`invalid_email`.", body = ErrorBody),
        (status = 409, description = "`email_taken`.", body = ErrorBody),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    CallerJson(Admin(info, _), b): CallerJson<Admin, NewAccountBody>,
) -> Result<(StatusCode, Json<AdminAccount>), ApiError> {
    let role = b
        .role
        .map(Into::into)
        .unwrap_or(tweestap_domain::account::Role::User);
    let new = tweestap_domain::service::NewConsoleAccount {
        email: &b.email,
        name: &b.name,
        role,
        invite: b.invite,
    };
    let a = state
        .app
        .create_account_by(&info.account, &new, &state.base_url(), &ctx.req)
        .await?;
    Ok((StatusCode::CREATED, Json(one(&state, a.id).await?)))
}

/// One account
#[utoipa::path(
    get, path = "/admin/accounts/{id}", tag = "admin", operation_id = "adminGetAccount",
    params(("id" = String, Path, description = "The account's id (a UUID).")),
    security(("sessionCookie" = [])),
    responses((status = 200, description = "The account.", body = AdminAccount), (status = 404, description = "`not_found`.", body = ErrorBody)),
)]
pub async fn get(
    State(state): State<AppState>,
    Admin(_, _): Admin,
    Path(id): Path<String>,
) -> Result<Json<AdminAccount>, ApiError> {
    Ok(Json(one(&state, parse_id(&id)?).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    role: Role,
}

/// Change an account's role
///
/// Audited with the value before and after. An administrator cannot take their own
/// role away (403 `forbidden`).
#[utoipa::path(
    patch, path = "/admin/accounts/{id}", tag = "admin", operation_id = "adminChangeAccount",
    params(("id" = String, Path, description = "The account's id (a UUID).")),
    request_body = ChangeBody,
    security(("sessionCookie" = [])),
    responses((status = 200, description = "The account.", body = AdminAccount), (status = 404, description = "`not_found`.", body = ErrorBody)),
)]
pub async fn change(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    CallerJson(Admin(info, _), b): CallerJson<Admin, ChangeBody>,
) -> Result<Json<AdminAccount>, ApiError> {
    let id = parse_id(&id)?;
    state
        .app
        .change_role_by(&info.account, id, b.role.into(), &ctx.req)
        .await?;
    Ok(Json(one(&state, id).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct DeleteQuery {
    /// Why; kept in the audit log.
    reason: Option<String>,
}

/// Delete an account
///
/// Its sessions, factors, remembered browsers and portal tokens go with it; its
/// audit records stay. A reason is required.
#[utoipa::path(
    delete, path = "/admin/accounts/{id}", tag = "admin", operation_id = "adminDeleteAccount",
    params(("id" = String, Path, description = "The account's id (a UUID)."), DeleteQuery),
    security(("sessionCookie" = [])),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "`reason_required`.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Admin(info, _): Admin,
    Path(id): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .delete_account_by(
            &info.account,
            parse_id(&id)?,
            q.reason.as_deref().unwrap_or_default(),
            &ctx.req,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_disabled(
    state: &AppState,
    ctx: &Ctx,
    info: &tweestap_domain::service::SessionInfo,
    id: &str,
    disabled: bool,
) -> Result<Json<AdminAccount>, ApiError> {
    let id = parse_id(id)?;
    state
        .app
        .set_disabled_by(&info.account, id, disabled, &ctx.req)
        .await?;
    Ok(Json(one(state, id).await?))
}

/// Disable an account
///
/// It cannot sign in; its sessions, remembered browsers and portal tokens end at
/// once (portals with back-channel logout are told).
#[utoipa::path(
    post, path = "/admin/accounts/{id}/disable", tag = "admin", operation_id = "adminDisableAccount",
    params(("id" = String, Path, description = "The account's id (a UUID).")),
    request_body = Empty,
    security(("sessionCookie" = [])),
    responses((status = 200, description = "The account.", body = AdminAccount), (status = 404, description = "`not_found`.", body = ErrorBody)),
)]
pub async fn disable(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    CallerJson(Admin(info, _), _): CallerJson<Admin, Empty>,
) -> Result<Json<AdminAccount>, ApiError> {
    set_disabled(&state, &ctx, &info, &id, true).await
}

/// Enable an account
#[utoipa::path(
    post, path = "/admin/accounts/{id}/enable", tag = "admin", operation_id = "adminEnableAccount",
    params(("id" = String, Path, description = "The account's id (a UUID).")),
    request_body = Empty,
    security(("sessionCookie" = [])),
    responses((status = 200, description = "The account.", body = AdminAccount), (status = 404, description = "`not_found`.", body = ErrorBody)),
)]
pub async fn enable(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    CallerJson(Admin(info, _), _): CallerJson<Admin, Empty>,
) -> Result<Json<AdminAccount>, ApiError> {
    set_disabled(&state, &ctx, &info, &id, false).await
}

/// Mail an invitation again
#[utoipa::path(
    post, path = "/admin/accounts/{id}/invite", tag = "admin", operation_id = "adminInviteAccount",
    params(("id" = String, Path, description = "The account's id (a UUID).")),
    request_body = Empty,
    security(("sessionCookie" = [])),
    responses((status = 202, description = "Mailed; older links stop working."), (status = 404, description = "`not_found`.", body = ErrorBody)),
)]
pub async fn invite(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    CallerJson(Admin(_, _), _): CallerJson<Admin, Empty>,
) -> Result<StatusCode, ApiError> {
    let a = state.app.console_account(parse_id(&id)?).await?;
    state
        .app
        .invite_account(&a, &state.base_url(), &ctx.req)
        .await?;
    Ok(StatusCode::ACCEPTED)
}
