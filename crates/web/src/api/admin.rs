//! The roll-out console over JSON (`/api/v1/admin/...`): accounts, the policy, the
//! roll-out dashboard, reminders and the audit log. Only administrators with a
//! recent code ([`crate::gate::Admin`]): 401 without a full session, 403 `forbidden`
//! for anyone else, 403 `step_up_required` when the last code is older than
//! `[console] step_up_minutes` (then `POST /admin/step-up`).

pub(super) mod accounts;
mod import;
pub(super) mod overview;
pub(super) mod settings;

use axum::Router;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

super::routing::handlers! {
    fn console_documented / console_routes {
        [settings::step_up]
        [accounts::list, accounts::create]
        [accounts::get, accounts::change, accounts::delete]
        [accounts::disable]
        [accounts::enable]
        [accounts::invite]
        [settings::get_policy, settings::put_policy]
        [overview::rollout]
        [overview::without_two_factor]
        [overview::reminders]
        [overview::run_reminders]
        [overview::audit]
    }
}

super::routing::handlers! {
    fn import_documented / import_routes {
        [import::import_accounts]
    }
}

/// Import files are large: this route alone takes bodies up to 64 MiB.
fn import_body_limit() -> axum::extract::DefaultBodyLimit {
    axum::extract::DefaultBodyLimit::max(import::IMPORT_BODY_LIMIT)
}

/// The console's routes with their descriptions.
pub(super) fn documented() -> OpenApiRouter<AppState> {
    console_documented().merge(import_documented().layer(import_body_limit()))
}

/// The console's routes as the server runs them.
pub(super) fn routes() -> Router<AppState> {
    console_routes().merge(import_routes().layer(import_body_limit()))
}
