//! The console's accounts: search and filters with pages, a new account with an
//! invitation, and one account's role, disabling, enabling, invitation and deletion.

use super::admin_page;
use crate::error::{OnPage, PageError};
use crate::extract::Ctx;
use crate::gate::{Admin, Page};
use crate::pages::step::checked;
use crate::AppState;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};
use tweestap_domain::account::{AccountId, Role};
use tweestap_domain::console::{AccountFilter, AccountListing, Cursor, TwoFactorState};
use tweestap_domain::service::NewConsoleAccount;
use tweestap_domain::Error;
use uuid::Uuid;

const PAGE: u32 = 50;

#[derive(Serialize)]
struct Row {
    id: String,
    email: String,
    name: String,
    role: String,
    two_factor: String,
    shared: bool,
    disabled: bool,
    last_sign_in: Option<String>,
}

fn row(state: &AppState, ctx: &Ctx, l: &AccountListing) -> Row {
    let lang = ctx.lang;
    Row {
        id: l.account.id.to_string(),
        email: l.account.email.to_string(),
        name: l.account.name.clone(),
        role: lang
            .t(&format!("role_{}", l.account.role.as_str()))
            .to_owned(),
        two_factor: lang
            .t(&format!("admin_2fa_{}", l.two_factor.as_str()))
            .to_owned(),
        shared: state.app.is_shared_mailbox(&l.account.email),
        disabled: l.account.disabled_at.is_some(),
        last_sign_in: l.last_sign_in_at.map(|t| state.day_time(lang, t)),
    }
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    two_factor: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    shared: String,
    #[serde(default)]
    disabled: String,
    cursor: Option<String>,
    done: Option<String>,
}

fn yes_no(s: &str) -> Option<bool> {
    match s {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

pub async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Admin(_, _): Admin<Page>,
    jar: CookieJar,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let filter = AccountFilter {
        q: Some(q.q.clone()).filter(|s| !s.trim().is_empty()),
        two_factor: TwoFactorState::parse(&q.two_factor),
        role: q.role.parse().ok(),
        shared_mailbox: yes_no(&q.shared),
        disabled: yes_no(&q.disabled),
        inactive_since: None,
    };
    let cursor = q.cursor.as_deref().and_then(Cursor::decode);
    let page = state
        .app
        .console_accounts(&filter, cursor.as_ref(), PAGE)
        .await
        .on_page(ctx.lang)?;
    let rows: Vec<Row> = page.accounts.iter().map(|l| row(&state, &ctx, l)).collect();
    let next = page.next.map(|c| {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("q", &q.q)
            .append_pair("two_factor", &q.two_factor)
            .append_pair("role", &q.role)
            .append_pair("shared", &q.shared)
            .append_pair("disabled", &q.disabled)
            .append_pair("cursor", &c.encode())
            .finish();
        format!("/admin/accounts?{query}")
    });
    let notice = match q.done.as_deref() {
        Some("deleted") => Some(ctx.lang.t("admin_deleted")),
        _ => None,
    };
    let extra = minijinja::context! {
        rows => rows, next => next, q => q.q, two_factor => q.two_factor, role => q.role,
        shared => q.shared, disabled => q.disabled, notice => notice, error => None::<String>,
        new_email => "", new_name => "",
    };
    Ok(admin_page(
        &state,
        &ctx,
        jar,
        StatusCode::OK,
        "admin_accounts.html",
        extra,
    ))
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    invite: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    Admin(info, _): Admin<Page>,
    jar: CookieJar,
    Form(f): Form<CreateForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    let new = NewConsoleAccount {
        email: &f.email,
        name: &f.name,
        role: f.role.parse().unwrap_or(Role::User),
        invite: f.invite.is_some(),
    };
    let error = match state
        .app
        .create_account_by(&info.account, &new, &state.base_url(), &ctx.req)
        .await
    {
        Ok(a) => {
            let done = if new.invite { "invited" } else { "created" };
            return Ok(
                Redirect::to(&format!("/admin/accounts/{}?done={done}", a.id)).into_response(),
            );
        }
        Err(Error::InvalidEmail) => ctx.lang.t("admin_invalid_email"),
        Err(Error::EmailTaken) => ctx.lang.t("admin_email_taken"),
        Err(e) => return Err(PageError::from_domain(e, ctx.lang)),
    };
    let extra = minijinja::context! {
        rows => Vec::<Row>::new(), next => None::<String>, q => "", two_factor => "", role => "",
        shared => "", disabled => "", notice => None::<String>, error => error,
        new_email => f.email, new_name => f.name,
    };
    Ok(admin_page(
        &state,
        &ctx,
        jar,
        StatusCode::BAD_REQUEST,
        "admin_accounts.html",
        extra,
    ))
}

fn account_id(raw: &str, ctx: &Ctx) -> Result<AccountId, PageError> {
    Uuid::parse_str(raw)
        .map(AccountId)
        .map_err(|_| PageError::from_domain(Error::NotFound, ctx.lang))
}

#[derive(Deserialize)]
pub struct ShowQuery {
    done: Option<String>,
    error: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Admin(info, _): Admin<Page>,
    jar: CookieJar,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Response, PageError> {
    let id = account_id(&id, &ctx)?;
    let listed = state.app.console_listing(id).await.on_page(ctx.lang)?;
    let (l, a) = (&listed, &listed.account);
    let lang = ctx.lang;
    let notice = q.done.as_deref().and_then(|d| match d {
        "created" | "invited" | "role" | "disabled" | "enabled" => {
            Some(lang.t(&format!("admin_done_{d}")))
        }
        _ => None,
    });
    let error = q.error.as_deref().and_then(|e| match e {
        "reason" => Some(lang.t("admin_reason_required")),
        "self" => Some(lang.t("admin_not_yourself")),
        _ => None,
    });
    let extra = minijinja::context! {
        a => row(&state, &ctx, l), role_code => a.role.as_str(), created => state.day(lang, a.created_at),
        notice => notice, error => error, is_me => a.id == info.account.id,
    };
    Ok(admin_page(
        &state,
        &ctx,
        jar,
        StatusCode::OK,
        "admin_account.html",
        extra,
    ))
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    reason: String,
}

/// Runs one action on an account and goes back to its page, saying how it went.
async fn act<F, Fut>(
    state: &AppState,
    ctx: &Ctx,
    jar: &CookieJar,
    id: &str,
    f: &ActionForm,
    done: &str,
    run: F,
) -> Result<Response, PageError>
where
    F: FnOnce(AccountId) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    checked(state, jar, &f.csrf, ctx.lang)?;
    let id = account_id(id, ctx)?;
    let to = match run(id).await {
        Ok(()) => format!("/admin/accounts/{id}?done={done}"),
        Err(Error::Forbidden) => format!("/admin/accounts/{id}?error=self"),
        Err(Error::ReasonRequired) => format!("/admin/accounts/{id}?error=reason"),
        Err(e) => return Err(PageError::from_domain(e, ctx.lang)),
    };
    Ok(Redirect::to(&to).into_response())
}

pub async fn role(
    State(state): State<AppState>,
    ctx: Ctx,
    Admin(info, _): Admin<Page>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Result<Response, PageError> {
    let role: Role = f.role.parse().unwrap_or(Role::User);
    let (app, req) = (state.app.clone(), ctx.req.clone());
    act(&state, &ctx, &jar, &id, &f, "role", move |id| async move {
        app.change_role_by(&info.account, id, role, &req)
            .await
            .map(drop)
    })
    .await
}

pub async fn disable(
    State(state): State<AppState>,
    ctx: Ctx,
    Admin(info, _): Admin<Page>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Result<Response, PageError> {
    let (app, req) = (state.app.clone(), ctx.req.clone());
    act(
        &state,
        &ctx,
        &jar,
        &id,
        &f,
        "disabled",
        move |id| async move {
            app.set_disabled_by(&info.account, id, true, &req)
                .await
                .map(drop)
        },
    )
    .await
}

pub async fn enable(
    State(state): State<AppState>,
    ctx: Ctx,
    Admin(info, _): Admin<Page>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Result<Response, PageError> {
    let (app, req) = (state.app.clone(), ctx.req.clone());
    act(
        &state,
        &ctx,
        &jar,
        &id,
        &f,
        "enabled",
        move |id| async move {
            app.set_disabled_by(&info.account, id, false, &req)
                .await
                .map(drop)
        },
    )
    .await
}

pub async fn invite(
    State(state): State<AppState>,
    ctx: Ctx,
    Admin(_, _): Admin<Page>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Result<Response, PageError> {
    let (app, req, base) = (state.app.clone(), ctx.req.clone(), state.base_url());
    act(
        &state,
        &ctx,
        &jar,
        &id,
        &f,
        "invited",
        move |id| async move {
            let a = app.console_account(id).await?;
            app.invite_account(&a, &base, &req).await
        },
    )
    .await
}

pub async fn delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Admin(info, _): Admin<Page>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    let account = account_id(&id, &ctx)?;
    match state
        .app
        .delete_account_by(&info.account, account, &f.reason, &ctx.req)
        .await
    {
        Ok(()) => Ok(Redirect::to("/admin/accounts?done=deleted").into_response()),
        Err(Error::ReasonRequired) => {
            Ok(Redirect::to(&format!("/admin/accounts/{id}?error=reason")).into_response())
        }
        Err(Error::Forbidden) => {
            Ok(Redirect::to(&format!("/admin/accounts/{id}?error=self")).into_response())
        }
        Err(e) => Err(PageError::from_domain(e, ctx.lang)),
    }
}
