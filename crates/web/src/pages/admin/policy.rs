//! The policy in the console: per role the two-step rule, its date and the methods
//! allowed; the lifetimes, reminder days and SMS limits. The whole form is sent as
//! one change; a refused value is named and the form keeps what was typed.

use super::admin_page;
use crate::error::PageError;
use crate::extract::Ctx;
use crate::gate::{Admin, Page};
use crate::pages::step::checked;
use crate::AppState;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use tweestap_domain::policy::document::{Method, PolicyDocument};
use tweestap_domain::Error;

const ROLES: [&str; 3] = ["user", "support", "admin"];

/// The form's values, as typed (the stored policy on first view).
pub(crate) fn values_of(p: &PolicyDocument) -> HashMap<String, String> {
    let mut v = HashMap::new();
    for name in ROLES {
        let r = p.role(name.parse().unwrap_or(tweestap_domain::account::Role::User));
        let mode = serde_json::to_value(r.two_factor).ok();
        v.insert(
            format!("{name}_two_factor"),
            mode.and_then(|m| m.as_str().map(str::to_owned))
                .unwrap_or_default(),
        );
        v.insert(
            format!("{name}_required_from"),
            r.required_from.map(|d| d.to_string()).unwrap_or_default(),
        );
        if r.methods.contains(&Method::App) {
            v.insert(format!("{name}_app"), "on".into());
        }
        if r.methods.contains(&Method::Sms) {
            v.insert(format!("{name}_sms"), "on".into());
        }
        if r.methods.contains(&Method::Passkey) {
            v.insert(format!("{name}_passkey"), "on".into());
        }
        if r.passwordless {
            v.insert(format!("{name}_passwordless"), "on".into());
        }
    }
    let list = |l: &[u32]| l.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    v.insert(
        "remember_device_days".into(),
        p.remember_device_days.to_string(),
    );
    v.insert(
        "enrollment_link_days".into(),
        p.enrollment_link_days.to_string(),
    );
    v.insert("invite_days".into(), p.invite_days.to_string());
    v.insert("reminder_days".into(), list(&p.reminder_days));
    let codes: Vec<u32> = p.sms.calling_codes.iter().map(|&c| u32::from(c)).collect();
    v.insert("calling_codes".into(), list(&codes));
    v.insert(
        "per_account_per_hour".into(),
        p.sms.per_account_per_hour.to_string(),
    );
    v.insert(
        "per_number_per_hour".into(),
        p.sms.per_number_per_hour.to_string(),
    );
    v.insert("per_ip_per_hour".into(), p.sms.per_ip_per_hour.to_string());
    v.insert("global_per_hour".into(), p.sms.global_per_hour.to_string());
    v
}

/// A number when it is one; otherwise the text, so the check names the field.
fn number(s: &str) -> Value {
    s.trim()
        .parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(s.trim()))
}

fn list(s: &str) -> Value {
    Value::Array(
        s.split([',', ' ', ';'])
            .filter(|p| !p.is_empty())
            .map(number)
            .collect(),
    )
}

/// The whole document the form describes (missing boxes are unticked).
pub(crate) fn patch_of(v: &HashMap<String, String>) -> Value {
    let get = |k: &str| v.get(k).map(String::as_str).unwrap_or_default();
    let mut roles = serde_json::Map::new();
    for name in ROLES {
        let mut methods = Vec::new();
        if v.contains_key(&format!("{name}_app")) {
            methods.push("app");
        }
        if v.contains_key(&format!("{name}_sms")) {
            methods.push("sms");
        }
        if v.contains_key(&format!("{name}_passkey")) {
            methods.push("passkey");
        }
        let date = get(&format!("{name}_required_from")).trim().to_owned();
        roles.insert(
            name.to_owned(),
            json!({
                "two_factor": get(&format!("{name}_two_factor")),
                "required_from": if date.is_empty() { Value::Null } else { Value::from(date) },
                "methods": methods,
                "passwordless": v.contains_key(&format!("{name}_passwordless")),
            }),
        );
    }
    json!({
        "roles": roles,
        "remember_device_days": number(get("remember_device_days")),
        "enrollment_link_days": number(get("enrollment_link_days")),
        "invite_days": number(get("invite_days")),
        "reminder_days": list(get("reminder_days")),
        "sms": {
            "calling_codes": list(get("calling_codes")),
            "per_account_per_hour": number(get("per_account_per_hour")),
            "per_number_per_hour": number(get("per_number_per_hour")),
            "per_ip_per_hour": number(get("per_ip_per_hour")),
            "global_per_hour": number(get("global_per_hour")),
        },
    })
}

fn policy_page(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    v: HashMap<String, String>,
    error: Option<String>,
    saved: bool,
) -> Response {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let extra = minijinja::context! { v => v, roles => ROLES, error => error, saved => saved };
    admin_page(state, ctx, jar, status, "admin_policy.html", extra)
}

#[derive(Deserialize)]
pub struct Saved {
    saved: Option<String>,
}

pub async fn form(
    State(state): State<AppState>,
    ctx: Ctx,
    Admin(_, _): Admin<Page>,
    jar: CookieJar,
    Query(q): Query<Saved>,
) -> Response {
    let v = values_of(&state.app.policy());
    policy_page(&state, &ctx, jar, v, None, q.saved.is_some())
}

pub async fn submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Admin(info, _): Admin<Page>,
    jar: CookieJar,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let v: HashMap<String, String> = pairs.into_iter().collect();
    checked(
        &state,
        &jar,
        v.get("csrf").map(String::as_str).unwrap_or_default(),
        ctx.lang,
    )?;
    match state
        .app
        .update_policy(&info.account, &patch_of(&v), &ctx.req)
        .await
    {
        Ok(_) => Ok(Redirect::to("/admin/policy?saved=1").into_response()),
        Err(Error::InvalidPolicy(p)) => {
            let text = ctx
                .lang
                .t("admin_policy_refused")
                .replace("{field}", &p.field)
                .replace("{problem}", &p.problem);
            Ok(policy_page(&state, &ctx, jar, v, Some(text), false))
        }
        Err(e) => Err(PageError::from_domain(e, ctx.lang)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The form of the stored policy, sent back unchanged, is the same policy.
    #[test]
    fn the_form_round_trips() {
        let p = PolicyDocument::from_settings(
            &Default::default(),
            &Default::default(),
            chrono::Duration::days(7),
            chrono::Duration::days(5),
        );
        let back = p.patched(&patch_of(&values_of(&p))).expect("valid");
        assert_eq!(back, p);
    }
}
