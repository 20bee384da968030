//! Support endpoints: find accounts, reset two-step verification, change an address.
//! Only fully signed-in support staff and admins; the domain checks the role (403
//! `forbidden`) and writes every refusal to the audit log.

use super::bodies::Role;
use super::json::CallerJson;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Ctx;
use crate::gate::SignedIn;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use tweestap_domain::account::AccountId;
use tweestap_domain::service::{AccountOverview, Actor};
use tweestap_domain::Error;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// An account as support sees it.
#[derive(Serialize, ToSchema)]
pub struct SupportAccount {
    #[schema(format = Uuid)]
    id: String,
    email: String,
    name: String,
    role: Role,
    /// An active second factor is set up.
    two_factor: bool,
    /// The address is a shared mailbox (`[policy] shared_mailboxes`); advise turning
    /// it into a personal account.
    shared_mailbox: bool,
    /// The caller may reset this account's two-step verification (support cannot
    /// touch administrators).
    manageable: bool,
}

impl From<&AccountOverview> for SupportAccount {
    fn from(o: &AccountOverview) -> Self {
        let a = &o.account;
        Self {
            id: a.id.to_string(),
            email: a.email.as_str().to_owned(),
            name: a.name.clone(),
            role: a.role.into(),
            two_factor: o.two_factor,
            shared_mailbox: o.shared_mailbox,
            manageable: o.manageable,
        }
    }
}

fn parse_id(raw: &str) -> Result<AccountId, ApiError> {
    Uuid::parse_str(raw)
        .map(AccountId)
        .map_err(|_| Error::NotFound.into())
}

#[derive(Deserialize, IntoParams)]
pub struct SearchQuery {
    /// Part of the e-mail address or name; empty or missing lists all accounts.
    #[serde(default)]
    q: String,
}

/// The accounts found, at most 50.
#[derive(Serialize, ToSchema)]
pub struct SupportAccountList {
    accounts: Vec<SupportAccount>,
}

/// Find accounts by (part of) their e-mail address or name
///
/// Support and admins only. Case-insensitive; an empty or missing `q` lists all
/// accounts. At most 50, ordered by e-mail address.
#[utoipa::path(
    get, path = "/support/accounts", tag = "support", operation_id = "findAccounts",
    params(SearchQuery),
    security(("sessionCookie" = [])),
    responses(
        (status = 200, description = "The accounts found.", body = SupportAccountList),
        (status = 403, description = "`forbidden`: not support staff or an admin; `enrollment_required`: the session may only set up two-step verification.", body = ErrorBody),
    ),
)]
pub async fn search(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(info, _): SignedIn,
    Query(query): Query<SearchQuery>,
) -> Result<Json<SupportAccountList>, ApiError> {
    let found = state
        .app
        .find_accounts(Actor::Staff(&info.account), &query.q, &ctx.req)
        .await?;
    Ok(Json(SupportAccountList {
        accounts: found.iter().map(SupportAccount::from).collect(),
    }))
}

/// One account, as support sees it
///
/// Support and admins only.
#[utoipa::path(
    get, path = "/support/accounts/{id}", tag = "support", operation_id = "getSupportAccount",
    params(("id" = String, Path, description = "The account's id (a UUID, as `GET /support/accounts` lists it); one that is not gives 404 `not_found`.")),
    security(("sessionCookie" = [])),
    responses(
        (status = 200, description = "The account.", body = SupportAccount),
        (status = 403, description = "`forbidden`: not support staff or an admin; `enrollment_required`: the session may only set up two-step verification.", body = ErrorBody),
        (status = 404, description = "`not_found`: no account with this id.", body = ErrorBody),
    ),
)]
pub async fn account(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(info, _): SignedIn,
    Path(id): Path<String>,
) -> Result<Json<SupportAccount>, ApiError> {
    let id = parse_id(&id)?;
    let o = state
        .app
        .account_overview(Actor::Staff(&info.account), id, &ctx.req)
        .await?;
    Ok(Json((&o).into()))
}

#[derive(Deserialize, ToSchema)]
pub struct ReasonBody {
    /// Why, for the audit log (at most 500 characters are kept, on one line). Blank
    /// or missing gives 400 `reason_required`.
    #[serde(default)]
    #[schema(examples("New phone; identity checked by phone call"))]
    reason: String,
}

/// Two-step verification was reset.
#[derive(Serialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TwoFactorReset {
    Reset {
        /// When the mailed link to the new QR code stops working (RFC 3339).
        #[schema(format = DateTime)]
        link_expires_at: String,
    },
}

/// Reset an account's two-step verification
///
/// Support and admins; only admins may reset an administrator (403 `forbidden`
/// otherwise). In one step every second factor and every session of the account
/// ends, and the account holder is mailed a single-use link `<public_url>/enroll/<token>`
/// to set up an authenticator app again. The audit log records `two_factor_reset`
/// with who did it and the reason.
#[utoipa::path(
    post, path = "/support/accounts/{id}/reset-2fa", tag = "support", operation_id = "resetTwoFactor",
    params(("id" = String, Path, description = "The account's id (a UUID).")),
    request_body = ReasonBody,
    security(("sessionCookie" = [])),
    responses(
        (status = 200, description = "Reset; the mail is queued.", body = TwoFactorReset),
        (status = 400, description = "`reason_required`: no reason given.", body = ErrorBody),
        (status = 403, description = "`forbidden`: not allowed for this caller or this account; `enrollment_required`: the session may only set up two-step verification.", body = ErrorBody),
        (status = 404, description = "`not_found`: no account with this id.", body = ErrorBody),
    ),
)]
pub async fn reset_two_factor(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    CallerJson(SignedIn(info, _), b): CallerJson<SignedIn, ReasonBody>,
) -> Result<Json<TwoFactorReset>, ApiError> {
    let id = parse_id(&id)?;
    let expires_at = state
        .app
        .reset_two_factor(
            Actor::Staff(&info.account),
            id,
            &b.reason,
            &state.base_url(),
            &ctx.req,
        )
        .await?;
    Ok(Json(TwoFactorReset::Reset {
        link_expires_at: expires_at.to_rfc3339(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct EmailBody {
    /// The new address.
    #[schema(examples("an.peeters@example.com"))]
    email: String,
}

/// Give an account another e-mail address
///
/// Admins only (403 `forbidden` for support), e.g. to turn a shared mailbox into a
/// personal account. Factors and sessions stay; the audit log records
/// `email_changed` with the old and the new address.
#[utoipa::path(
    post, path = "/support/accounts/{id}/email", tag = "support", operation_id = "changeEmail",
    params(("id" = String, Path, description = "The account's id (a UUID).")),
    request_body = EmailBody,
    security(("sessionCookie" = [])),
    responses(
        (status = 200, description = "The account with its new address.", body = SupportAccount),
        (status = 400, description = "`invalid_email`: not a valid address.", body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only; `enrollment_required`: the session may only set up two-step verification.", body = ErrorBody),
        (status = 404, description = "`not_found`: no account with this id.", body = ErrorBody),
        (status = 409, description = "`email_taken`: another account has this address.", body = ErrorBody),
    ),
)]
pub async fn change_email(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    CallerJson(SignedIn(info, _), b): CallerJson<SignedIn, EmailBody>,
) -> Result<Json<SupportAccount>, ApiError> {
    let id = parse_id(&id)?;
    let actor = Actor::Staff(&info.account);
    state
        .app
        .change_email(actor, id, &b.email, &ctx.req)
        .await?;
    let o = state.app.account_overview(actor, id, &ctx.req).await?;
    Ok(Json((&o).into()))
}
