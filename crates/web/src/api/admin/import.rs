//! `POST /admin/accounts/import`: an existing user base from a CSV file, as the
//! command line's `tweestap user import` does.

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::Ctx;
use crate::gate::Admin;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tweestap_domain::service::{Actor, ImportOptions, ImportReport};
use utoipa::{IntoParams, ToSchema};

/// Import files may be this large (100,000 rows of bcrypt hashes are about 10 MB);
/// every other body keeps [`crate::BODY_LIMIT`].
pub const IMPORT_BODY_LIMIT: usize = 64 * 1024 * 1024;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Only report what the import would change; write nothing.
    #[serde(default)]
    dry_run: bool,
    /// `true` (the default): when any line has an error nothing is written (422).
    /// `false`: the good lines are written and the bad ones reported (200).
    #[serde(default = "all_or_nothing_by_default")]
    all_or_nothing: bool,
}

fn all_or_nothing_by_default() -> bool {
    true
}

/// A line of the file that was not imported, and why.
#[derive(Serialize, ToSchema)]
pub struct ImportLineError {
    /// The line of the file, as an editor numbers it: the header is line 1, and a row
    /// is reported by the line it starts on (a quoted field may span lines).
    #[schema(minimum = 1)]
    line: u64,
    /// English text naming what is wrong.
    message: String,
}

/// What the import did: in a dry run or a refused all-or-nothing import, what it
/// would have done.
#[derive(Serialize, ToSchema)]
pub struct ImportResult {
    /// New accounts.
    created: usize,
    /// Known addresses whose name, role or password hash changed.
    updated: usize,
    /// Rows that changed nothing (a second run of the same file: all of them).
    unchanged: usize,
    /// New accounts with `invite` set, each sent an invitation.
    invited: usize,
    /// The bad lines, in file order.
    errors: Vec<ImportLineError>,
    /// Whether anything was written.
    written: bool,
}

impl From<ImportReport> for ImportResult {
    fn from(r: ImportReport) -> Self {
        Self {
            created: r.created,
            updated: r.updated,
            unchanged: r.unchanged,
            invited: r.invited,
            errors: r
                .errors
                .into_iter()
                .map(|e| ImportLineError {
                    line: e.line,
                    message: e.message,
                })
                .collect(),
            written: r.written,
        }
    }
}

/// Import accounts from a CSV file
///
/// Admins only. The body is CSV (`Content-Type: text/csv`, UTF-8) whose header names
/// the columns, in any order: `email` (required), `name`, `role` (`user`,
/// `support`, `admin`), `password_hash` and `invite` (`true`, `false`, `1`, `0` or
/// empty); an empty cell means "not given". A new address becomes an account (role
/// `user` unless given; without `password_hash` it has no password until
/// "forgot password" or an invitation sets one). A known address gets the name,
/// role and password hash given where they differ. `password_hash` takes PHC
/// strings (`$argon2id$`, `$argon2i$`, `$argon2d$`, `$pbkdf2-sha256$`, `$scrypt$`)
/// and bcrypt (`$2a$`, `$2b$`, `$2y$`), copied as they are: the person signs in
/// with their old password, and that first sign-in replaces the hash by the
/// configured Argon2id. Any other value is an error for its line. A repeated
/// address is an error for the later line. New accounts with `invite` set get an
/// invitation. Running the same file twice changes nothing the second time.
#[utoipa::path(
    post, path = "/admin/accounts/import", tag = "admin", operation_id = "importAccounts",
    params(ImportQuery),
    request_body(
        content = String, content_type = "text/csv",
        description = "The accounts, one per line after the header, e.g. `email,name,role,password_hash,invite`.",
    ),
    security(("sessionCookie" = [])),
    responses(
        (status = 200, description = "Imported (or, with `dry_run`, checked): the counts, and with `all_or_nothing=false` the lines left out.", body = ImportResult),
        (status = 400, description = "`invalid_request`: the body is not UTF-8 text, or `dry_run` / `all_or_nothing` is not `true` or `false` (never `malformed_json`: the body is CSV).", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an admin; `enrollment_required`: the session may only set up two-step verification.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the file is larger than 64 MiB.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the request lacks `Content-Type: text/csv`.", body = ErrorBody),
        (status = 422, description = "All or nothing, and some line has an error (or the header does, as line 1): nothing was written. The body is the report, with what would have been done.", body = ImportResult),
    ),
)]
pub async fn import_accounts(
    State(state): State<AppState>,
    ctx: Ctx,
    caller: Result<Admin, ApiError>,
    query: Result<Query<ImportQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // The body is judged before the caller, as everywhere in the API.
    let is_csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/csv"));
    if !is_csv {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "the body must be CSV with Content-Type: text/csv",
        ));
    }
    let body = body.map_err(|rej| match rej.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("the file may be at most {IMPORT_BODY_LIMIT} bytes"),
        ),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            rej.body_text(),
        ),
    })?;
    if std::str::from_utf8(&body).is_err() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            "the file must be UTF-8 text",
        ));
    }
    let Query(query) = query.map_err(|rej| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            rej.body_text(),
        )
    })?;
    let Admin(info, _) = caller?;
    let options = ImportOptions {
        dry_run: query.dry_run,
        all_or_nothing: query.all_or_nothing,
    };
    let report = state
        .app
        .import_accounts(
            Actor::Staff(&info.account),
            &body,
            options,
            &state.base_url(),
            &ctx.req,
        )
        .await?;
    // A dry run answers as the import itself would.
    let status = if options.all_or_nothing && !report.errors.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, Json(ImportResult::from(report))).into_response())
}
