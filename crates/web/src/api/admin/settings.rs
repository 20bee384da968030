//! The step-up that opens the console for a while, and the policy it edits.

use crate::api::json::CallerJson;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Ctx;
use crate::gate::{Admin, SignedIn};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tweestap_domain::account::Role;
use tweestap_domain::policy::document::PolicyDocument;
use tweestap_domain::Error;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct StepUpBody {
    /// The current 6-digit code of the administrator's authenticator app.
    #[schema(examples("123456"))]
    #[schema(value_type = String)]
    code: zeroize::Zeroizing<String>,
}

/// The console is open until `valid_until`.
#[derive(Serialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SteppedUp {
    SteppedUp {
        /// RFC 3339.
        #[schema(format = DateTime)]
        valid_until: String,
    },
}

/// Step up: a current code from the app
///
/// Administrator actions need a second factor from the last minutes (`[console]
/// step_up_minutes`, 15 by default): a sign-in with a code counts, or this call. A
/// wrong code counts towards the code lock-out (400 `invalid_code`; locked: 429).
/// An administrator who has only SMS signs in again instead.
#[utoipa::path(
    post, path = "/admin/step-up", tag = "admin", operation_id = "adminStepUp",
    request_body = StepUpBody,
    security(("sessionCookie" = [])),
    responses(
        (status = 200, description = "The console is open.", body = SteppedUp),
        (status = 400, description = "`invalid_code`.", body = ErrorBody),
        (status = 401, description = "`unauthenticated`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an administrator.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`.", body = ErrorBody),
    ),
)]
pub async fn step_up(
    State(state): State<AppState>,
    ctx: Ctx,
    CallerJson(SignedIn(info, _), b): CallerJson<SignedIn, StepUpBody>,
) -> Result<Json<SteppedUp>, ApiError> {
    if info.account.role != Role::Admin {
        return Err(Error::Forbidden.into());
    }
    match state.app.step_up(&info, &b.code, &ctx.req).await {
        Ok(()) => {}
        Err(Error::InvalidCode) => return Err(crate::api::enroll::wrong_code()),
        Err(e) => return Err(e.into()),
    }
    let until = state.app.now() + state.app.settings().console.step_up;
    Ok(Json(SteppedUp::SteppedUp {
        valid_until: until.to_rfc3339(),
    }))
}

/// The policy
///
/// `{"roles": {"user": {"two_factor": "required", "required_from": "2027-01-01",
/// "methods": ["app", "sms"]}, "support": {...}, "admin": {...}},
/// "remember_device_days": 7, "enrollment_link_days": 5, "invite_days": 5,
/// "reminder_days": [30, 14, 7, 1], "sms": {"calling_codes": [32, 31],
/// "per_account_per_hour": 5, ...}}`. Every node applies the same (within seconds
/// of a change).
#[utoipa::path(
    get, path = "/admin/policy", tag = "admin", operation_id = "adminGetPolicy",
    security(("sessionCookie" = [])),
    responses((status = 200, description = "The policy.", body = Object)),
)]
pub async fn get_policy(State(state): State<AppState>, Admin(_, _): Admin) -> Json<PolicyDocument> {
    Json(state.app.policy())
}

/// Change the policy
///
/// Send only what changes (a JSON merge patch, RFC 7396: `null` clears
/// `required_from`). The result is checked as a whole; a refused value answers 400
/// `invalid_policy` with `field` naming it. Audited with the policy before and after.
#[utoipa::path(
    put, path = "/admin/policy", tag = "admin", operation_id = "adminPutPolicy",
    request_body = Object,
    security(("sessionCookie" = [])),
    responses(
        (status = 200, description = "The policy now.", body = Object),
        (status = 400, description = "`invalid_policy` (with `field`).", body = ErrorBody),
    ),
)]
pub async fn put_policy(
    State(state): State<AppState>,
    ctx: Ctx,
    CallerJson(Admin(info, _), patch): CallerJson<Admin, serde_json::Value>,
) -> Result<Json<PolicyDocument>, ApiError> {
    Ok(Json(
        state
            .app
            .update_policy(&info.account, &patch, &ctx.req)
            .await?,
    ))
}
