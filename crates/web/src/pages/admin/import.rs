//! Importing a user base from the console: a CSV file upload (multipart), a dry run
//! or the real thing, all-or-nothing unless asked otherwise; the report shows the
//! counts and each bad line by its number in the file.

use super::admin_page;
use crate::error::PageError;
use crate::extract::Ctx;
use crate::gate::{Admin, Page};
use crate::pages::step::checked;
use crate::AppState;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use tweestap_domain::service::{Actor, ImportOptions};

pub async fn form(
    State(state): State<AppState>,
    ctx: Ctx,
    Admin(_, _): Admin<Page>,
    jar: CookieJar,
) -> Response {
    let extra = minijinja::context! { report => None::<()>, error => None::<String> };
    admin_page(
        &state,
        &ctx,
        jar,
        StatusCode::OK,
        "admin_import.html",
        extra,
    )
}

pub async fn submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Admin(info, _): Admin<Page>,
    jar: CookieJar,
    mut form: Multipart,
) -> Result<Response, PageError> {
    let (mut csrf, mut file, mut dry_run, mut keep_going) =
        (String::new(), Vec::new(), false, false);
    let unreadable =
        || PageError::new(StatusCode::BAD_REQUEST, "admin_import_unreadable", ctx.lang);
    while let Some(field) = form.next_field().await.map_err(|_| unreadable())? {
        match field.name().unwrap_or_default() {
            "csrf" => csrf = field.text().await.map_err(|_| unreadable())?,
            "file" => file = field.bytes().await.map_err(|_| unreadable())?.to_vec(),
            "dry_run" => dry_run = true,
            "keep_going" => keep_going = true,
            _ => {}
        }
    }
    checked(&state, &jar, &csrf, ctx.lang)?;
    if file.is_empty() {
        let extra = minijinja::context! { report => None::<()>, error => ctx.lang.t("admin_import_no_file") };
        return Ok(admin_page(
            &state,
            &ctx,
            jar,
            StatusCode::BAD_REQUEST,
            "admin_import.html",
            extra,
        ));
    }
    let options = ImportOptions {
        dry_run,
        all_or_nothing: !keep_going,
    };
    let report = match state
        .app
        .import_accounts(
            Actor::Staff(&info.account),
            &file,
            options,
            &state.base_url(),
            &ctx.req,
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return Err(PageError::from_domain(e, ctx.lang)),
    };
    let errors: Vec<_> = report
        .errors
        .iter()
        .map(|e| minijinja::context! { line => e.line, message => e.message.clone() })
        .collect();
    let status = if report.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let extra = minijinja::context! {
        report => minijinja::context! {
            created => report.created, updated => report.updated, unchanged => report.unchanged,
            invited => report.invited, written => report.written, dry_run => dry_run,
        },
        errors => errors, error => None::<String>,
    };
    Ok(admin_page(
        &state,
        &ctx,
        jar,
        status,
        "admin_import.html",
        extra,
    ))
}
