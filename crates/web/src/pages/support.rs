//! Support pages: find an account, reset its two-step verification, and (admins)
//! give a shared mailbox a personal address. The domain decides who may do what;
//! these handlers only show its answers.

use super::step::checked;
use crate::error::{OnPage, PageError};
use crate::extract::Ctx;
use crate::gate::{Page, SignedIn};
use crate::view::page;
use crate::AppState;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};
use tweestap_domain::account::{Account, AccountId, Role};
use tweestap_domain::service::{AccountOverview, Actor};
use tweestap_domain::Error;
use uuid::Uuid;

/// Whether the header shows the "Support" link.
pub(crate) fn is_staff(account: &Account) -> bool {
    matches!(account.role, Role::Support | Role::Admin)
}

/// The account a support page is about, from its path; a malformed id is not found.
fn account_id(raw: &str, ctx: &Ctx) -> Result<AccountId, PageError> {
    Uuid::parse_str(raw)
        .map(AccountId)
        .map_err(|_| PageError::from_domain(Error::NotFound, ctx.lang))
}

#[derive(Serialize)]
struct Row {
    id: String,
    email: String,
    name: String,
    role: &'static str,
    two_factor: bool,
    shared_mailbox: bool,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

pub async fn search(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(info, _): SignedIn<Page>,
    jar: CookieJar,
    Query(query): Query<SearchQuery>,
) -> Result<Response, PageError> {
    let q = query.q.unwrap_or_default();
    let found = state
        .app
        .find_accounts(Actor::Staff(&info.account), &q, &ctx.req)
        .await
        .on_page(ctx.lang)?;
    let rows: Vec<Row> = found
        .iter()
        .map(|o| Row {
            id: o.account.id.to_string(),
            email: o.account.email.to_string(),
            name: o.account.name.clone(),
            role: ctx.lang.t(&format!("role_{}", o.account.role.as_str())),
            two_factor: o.two_factor,
            shared_mailbox: o.shared_mailbox,
        })
        .collect();
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let extra = minijinja::context! {
        staff => true,
        q => q.trim(),
        searched => !q.trim().is_empty(),
        rows => rows,
        found => ctx.lang.t("support_found").replace("{count}", &found.len().to_string()),
    };
    Ok((jar, page(&ctx, "support.html", &csrf, true, extra)).into_response())
}

#[derive(Deserialize)]
pub struct AccountQuery {
    done: Option<String>,
}

/// What the account page shows besides the account: a notice, or a form's error
/// together with what was typed.
#[derive(Default)]
struct Feedback<'a> {
    notice: Option<&'static str>,
    reset_error: Option<&'static str>,
    reason: &'a str,
    email_error: Option<&'static str>,
    new_email: &'a str,
}

fn account_page(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    viewer: &Account,
    o: &AccountOverview,
    status: StatusCode,
    fb: Feedback<'_>,
) -> Response {
    let a = &o.account;
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let extra = minijinja::context! {
        staff => true,
        id => a.id.to_string(),
        email => a.email.as_str(),
        name => &a.name,
        role => ctx.lang.t(&format!("role_{}", a.role.as_str())),
        two_factor => o.two_factor,
        shared_mailbox => o.shared_mailbox,
        manageable => o.manageable,
        may_change_email => viewer.role == Role::Admin,
        notice => fb.notice,
        reset_error => fb.reset_error,
        reason => fb.reason,
        email_error => fb.email_error,
        new_email => fb.new_email,
    };
    (
        status,
        jar,
        page(ctx, "support_account.html", &csrf, true, extra),
    )
        .into_response()
}

/// The account page as it is now, for `viewer`, with `fb` on it.
async fn current_page(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    viewer: &Account,
    id: AccountId,
    status: StatusCode,
    fb: Feedback<'_>,
) -> Result<Response, PageError> {
    let o = state
        .app
        .account_overview(Actor::Staff(viewer), id, &ctx.req)
        .await
        .on_page(ctx.lang)?;
    Ok(account_page(state, ctx, jar, viewer, &o, status, fb))
}

pub async fn account(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(info, _): SignedIn<Page>,
    jar: CookieJar,
    Path(id): Path<String>,
    Query(q): Query<AccountQuery>,
) -> Result<Response, PageError> {
    let id = account_id(&id, &ctx)?;
    let notice = match q.done.as_deref() {
        Some("reset") => Some(ctx.lang.t("support_reset_done")),
        Some("email") => Some(ctx.lang.t("support_email_done")),
        _ => None,
    };
    let fb = Feedback {
        notice,
        ..Feedback::default()
    };
    let status = StatusCode::OK;
    current_page(&state, &ctx, jar, &info.account, id, status, fb).await
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

pub async fn reset_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(info, _): SignedIn<Page>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(f): Form<ResetForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    let id = account_id(&id, &ctx)?;
    let actor = Actor::Staff(&info.account);
    let base = state.base_url();
    match state
        .app
        .reset_two_factor(actor, id, &f.reason, &base, &ctx.req)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/support/accounts/{id}?done=reset")).into_response()),
        Err(Error::ReasonRequired) => {
            let fb = Feedback {
                reset_error: Some(ctx.lang.t("support_reason_required")),
                reason: &f.reason,
                ..Feedback::default()
            };
            let status = StatusCode::BAD_REQUEST;
            current_page(&state, &ctx, jar, &info.account, id, status, fb).await
        }
        Err(e) => Err(PageError::from_domain(e, ctx.lang)),
    }
}

#[derive(Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

pub async fn email_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(info, _): SignedIn<Page>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(f): Form<EmailForm>,
) -> Result<Response, PageError> {
    checked(&state, &jar, &f.csrf, ctx.lang)?;
    let id = account_id(&id, &ctx)?;
    let actor = Actor::Staff(&info.account);
    let (status, key) = match state.app.change_email(actor, id, &f.email, &ctx.req).await {
        Ok(_) => {
            return Ok(Redirect::to(&format!("/support/accounts/{id}?done=email")).into_response())
        }
        Err(Error::InvalidEmail) => (StatusCode::BAD_REQUEST, "support_email_invalid"),
        Err(Error::EmailTaken) => (StatusCode::CONFLICT, "support_email_taken"),
        Err(e) => return Err(PageError::from_domain(e, ctx.lang)),
    };
    let fb = Feedback {
        email_error: Some(ctx.lang.t(key)),
        new_email: &f.email,
        ..Feedback::default()
    };
    current_page(&state, &ctx, jar, &info.account, id, status, fb).await
}
