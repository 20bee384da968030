//! The remembered browsers: `GET`/`DELETE /me/devices` and `DELETE /me/devices/{id}`.

use crate::error::{ApiError, ErrorBody};
use crate::extract::Ctx;
use crate::gate::SignedIn;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use tweestap_domain::device::RememberedDevice;
use tweestap_domain::Error;
use utoipa::ToSchema;
use uuid::Uuid;

/// A browser that skips the code step.
#[derive(Serialize, ToSchema)]
pub struct DeviceView {
    #[schema(format = Uuid)]
    id: String,
    /// Browser and system, from the User-Agent.
    label: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    last_used_at: String,
    #[schema(format = DateTime)]
    expires_at: String,
}

impl From<&RememberedDevice> for DeviceView {
    fn from(d: &RememberedDevice) -> Self {
        Self {
            id: d.id.to_string(),
            label: d.label.clone(),
            created_at: d.created_at.to_rfc3339(),
            last_used_at: d.last_used_at.to_rfc3339(),
            expires_at: d.expires_at.to_rfc3339(),
        }
    }
}

/// The remembered devices.
#[derive(Serialize, ToSchema)]
pub struct DeviceList {
    devices: Vec<DeviceView>,
}

/// Remembered devices
#[utoipa::path(
    get, path = "/me/devices", tag = "account", operation_id = "devices",
    security(("sessionCookie" = [])),
    responses(
        (status = 200, description = "Browsers that skip the code step.", body = DeviceList),
        (status = 403, description = "`enrollment_required`: the session may only set up two-step verification.", body = ErrorBody),
    ),
)]
pub async fn devices(
    State(state): State<AppState>,
    SignedIn(info, _): SignedIn,
) -> Result<Json<DeviceList>, ApiError> {
    let devices = state.app.devices(info.account.id).await?;
    Ok(Json(DeviceList {
        devices: devices.iter().map(DeviceView::from).collect(),
    }))
}

/// Forget one remembered device
#[utoipa::path(
    delete, path = "/me/devices/{id}", tag = "account", operation_id = "forgetDevice",
    params(("id" = String, Path, description = "The device's id (a UUID).")),
    security(("sessionCookie" = [])),
    responses(
        (status = 204, description = "Forgotten."),
        (status = 403, description = "`enrollment_required`: the session may only set up two-step verification.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such device of this account.", body = ErrorBody),
    ),
)]
pub async fn forget_device(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(info, _): SignedIn,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::from(Error::NotFound))?;
    state.app.forget_device(&info.account, id, &ctx.req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Forget every remembered device
#[utoipa::path(
    delete, path = "/me/devices", tag = "account", operation_id = "forgetDevices",
    security(("sessionCookie" = [])),
    responses(
        (status = 204, description = "Forgotten."),
        (status = 403, description = "`enrollment_required`: the session may only set up two-step verification.", body = ErrorBody),
    ),
)]
pub async fn forget_devices(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(info, _): SignedIn,
) -> Result<StatusCode, ApiError> {
    state.app.forget_devices(&info.account, &ctx.req).await?;
    Ok(StatusCode::NO_CONTENT)
}
