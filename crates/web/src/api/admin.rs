//! The roll-out console over JSON (`/api/v1/admin/...`): accounts, the policy, the
//! roll-out dashboard, reminders and the audit log. Only administrators with a
//! recent code ([`crate::gate::Admin`]): 401 without a full session, 403 `forbidden`
//! for anyone else, 403 `step_up_required` when the last code is older than
//! `[console] step_up_minutes` (then `POST /admin/step-up`).

pub(super) mod accounts;
mod import;
pub(super) mod overview;
pub(super) mod settings;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// The console's routes with their descriptions.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(settings::step_up))
        .routes(routes!(accounts::list, accounts::create))
        .routes(routes!(accounts::get, accounts::change, accounts::delete))
        .routes(routes!(accounts::disable))
        .routes(routes!(accounts::enable))
        .routes(routes!(accounts::invite))
        .routes(routes!(settings::get_policy, settings::put_policy))
        .routes(routes!(overview::rollout))
        .routes(routes!(overview::without_two_factor))
        .routes(routes!(overview::reminders))
        .routes(routes!(overview::run_reminders))
        .routes(routes!(overview::audit))
        // Import files are large: this route alone takes bodies up to 64 MiB.
        .merge(
            OpenApiRouter::new()
                .routes(routes!(import::import_accounts))
                .layer(axum::extract::DefaultBodyLimit::max(
                    import::IMPORT_BODY_LIMIT,
                )),
        )
}
