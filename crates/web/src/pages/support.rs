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
use tweestap_domain::factor::FactorKind;
use tweestap_domain::service::{AccountOverview, Actor, MethodSummary};
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
        admin => info.account.role == Role::Admin,
        q => q.trim(),
        searched => !q.trim().is_empty(),
        rows => rows,
        found => found_text(&ctx, found.len()),
    };
    Ok((jar, page(&ctx, "support.html", &csrf, true, extra)).into_response())
}

/// "1 account gevonden." / "14 accounts gevonden.": one and many read differently.
fn found_text(ctx: &Ctx, n: usize) -> String {
    let key = if n == 1 {
        "support_found_one"
    } else {
        "support_found"
    };
    ctx.lang.t(key).replace("{count}", &n.to_string())
}

/// One method of the account, in words: "Sms naar +32 4•• •• •• 56", when it was
/// added and last used.
#[derive(Serialize)]
struct MethodRow {
    name: String,
    added: String,
    last_used: Option<String>,
}

fn method_rows(state: &AppState, ctx: &Ctx, methods: &[MethodSummary]) -> Vec<MethodRow> {
    methods
        .iter()
        .map(|m| MethodRow {
            name: match m.kind {
                FactorKind::Totp => ctx.lang.t("factor_app").to_owned(),
                FactorKind::Sms => ctx.lang.t("factor_sms").replace("{to}", &m.label),
                FactorKind::Passkey => ctx.lang.t("factor_passkey").replace("{name}", &m.label),
            },
            added: state.day(ctx.lang, m.created_at),
            last_used: m.last_used_at.map(|t| state.day_time(ctx.lang, t)),
        })
        .collect()
}

/// "2 onthouden browsers" with the right plural; `None` when not counted.
fn devices_text(ctx: &Ctx, n: Option<usize>) -> Option<String> {
    let key = match n? {
        0 => "support_devices_none",
        1 => "support_devices_one",
        _ => "support_devices",
    };
    Some(ctx.lang.t(key).replace("{count}", &n?.to_string()))
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
        admin => viewer.role == Role::Admin,
        id => a.id.to_string(),
        email => a.email.as_str(),
        name => &a.name,
        role => ctx.lang.t(&format!("role_{}", a.role.as_str())),
        two_factor => o.two_factor,
        shared_mailbox => o.shared_mailbox,
        manageable => o.manageable,
        methods => method_rows(state, ctx, &o.methods),
        devices => devices_text(ctx, o.remembered_devices),
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
    /// Set by the confirmation page; without it the reset is only shown, not done.
    #[serde(default)]
    confirm: String,
}

/// The second step: what stops working, the reason, and a destructive button.
/// `None` when the viewer may not reset this account (the reset itself refuses it
/// and audits the attempt).
async fn confirm_page(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    viewer: &Account,
    id: AccountId,
    reason: &str,
) -> Result<Option<Response>, PageError> {
    let o = state
        .app
        .account_overview(Actor::Staff(viewer), id, &ctx.req)
        .await
        .on_page(ctx.lang)?;
    if !o.manageable {
        return Ok(None);
    }
    let (jar, csrf) = state.csrf.token(jar, state.settings.secure_cookies);
    let email = o.account.email.as_str();
    let extra = minijinja::context! {
        staff => true,
        admin => viewer.role == Role::Admin,
        id => o.account.id.to_string(),
        email => email,
        heading => ctx.lang.t("support_confirm_title").replace("{email}", email),
        methods => method_rows(state, ctx, &o.methods),
        devices => devices_text(ctx, o.remembered_devices),
        reason => reason.trim(),
    };
    let html = page(ctx, "support_reset_confirm.html", &csrf, true, extra);
    Ok(Some((jar, html).into_response()))
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
    if f.confirm != "yes" && !f.reason.trim().is_empty() {
        let viewer = &info.account;
        if let Some(r) = confirm_page(&state, &ctx, jar.clone(), viewer, id, &f.reason).await? {
            return Ok(r);
        }
    }
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
