//! One client's work on its own accounts while the server is killed: setting up the
//! app (begin and confirm), signing in with its codes and with recovery codes,
//! resetting the password through the mailed link, and trying what the server
//! confirmed as used once more after a restart. Each step records what the server
//! confirmed (a 2xx answer received) and what was sent without an answer.

use super::model::{code_for, step_now, Account, Factor, NoAnswer, Shared, Used};
use crate::kit::text_part;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Works until told to stop; gives its accounts back with what it recorded.
pub async fn run(shared: Arc<Shared>, mut accounts: Vec<Account>, seed: u64) -> Vec<Account> {
    let mut rng = StdRng::seed_from_u64(seed);
    while !shared.stopping() {
        let i = rng.gen_range(0..accounts.len());
        match step(&shared, &mut accounts[i], &mut rng).await {
            Some(true) => {}
            // Nothing to do for this account now (its app code of this step is used).
            Some(false) => tokio::time::sleep(Duration::from_millis(2)).await,
            // No answer: the server is down; it is back in a moment.
            None => tokio::time::sleep(Duration::from_millis(rng.gen_range(10..40))).await,
        }
    }
    accounts
}

/// One step for `acc`: `Some(true)` when something was done, `Some(false)` when
/// there was nothing to do, `None` when a request got no answer.
async fn step(shared: &Shared, acc: &mut Account, rng: &mut StdRng) -> Option<bool> {
    if acc.passwords.is_empty() {
        return Some(false);
    }
    if acc.active().is_none() {
        return set_up(shared, acc).await;
    }
    let generation = shared.generation();
    let restarted = acc.to_replay.iter().position(|(g, _)| *g < generation);
    if let Some(k) = restarted.filter(|_| rng.gen_bool(0.5)) {
        let (g, used) = acc.to_replay.remove(k);
        if try_again(shared, acc, &used).await.is_none() {
            acc.to_replay.push((g, used));
            return None;
        }
        return Some(true);
    }
    if acc.awaiting_link && use_mailed_link(shared, acc).await? {
        return Some(true);
    }
    let roll = rng.gen_range(0..100);
    if roll < 12 && acc.resets_requested < 3 && !acc.awaiting_link {
        return ask_for_link(shared, acc).await;
    }
    if roll < 30 && !acc.recovery_codes.is_empty() && acc.recoveries_confirmed < 2 {
        return sign_in_with_recovery_code(shared, acc).await;
    }
    if acc.phone.is_some() {
        return super::sms::sign_in(shared, acc).await;
    }
    sign_in_with_app(shared, acc, 0).await
}

/// Signs in (no factor yet), begins setting up the app (or, for an account with a
/// phone, SMS) and confirms it with its first code; with it come the recovery
/// codes.
pub async fn set_up(shared: &Shared, acc: &mut Account) -> Option<bool> {
    let body = acc.password_step(shared).await?;
    match body["state"].as_str() {
        Some("authenticated") => {}
        Some("second_factor") => {
            match acc.factor.clone() {
                // The confirmation that got no answer was stored after all.
                Factor::Pending { id, secret } => {
                    shared.count("set-ups found active after a confirmation without an answer");
                    acc.factor = Factor::Active {
                        id,
                        secret,
                        confirmed: false,
                    };
                }
                _ => {
                    shared.violation(format!(
                        "{}: a factor is active that the client never began",
                        acc.email
                    ));
                    acc.passwords.clear();
                }
            }
            return Some(true);
        }
        _ => {
            shared.surprise(format!("{}: sign-in said {body}", acc.email));
            return Some(true);
        }
    }
    let begun = match acc.phone.clone() {
        None => begin_app(shared, acc).await?,
        Some(phone) => super::sms::begin(shared, acc, &phone).await?,
    };
    let Some((path, code, step)) = begun else {
        return Some(true);
    };
    shared.count("set-ups begun");
    let a = shared
        .post(&acc.http, &path, json!({ "code": code }))
        .await?;
    if a.status != 200 {
        shared.surprise(format!("{}: confirm {} {}", acc.email, a.status, a.body));
        return Some(true);
    }
    let codes: Vec<String> = a.body["recovery_codes"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if codes.len() != 10 {
        shared.violation(format!(
            "{}: its first factor was confirmed with {} recovery codes",
            acc.email,
            codes.len()
        ));
    }
    let Factor::Pending { id, secret } = acc.factor.clone() else {
        unreachable!("begun")
    };
    acc.factor = Factor::Active {
        id,
        secret,
        confirmed: true,
    };
    acc.recovery_codes = codes;
    if let Some(step) = step {
        acc.steps_confirmed.push(step);
        acc.to_replay
            .push((shared.generation(), Used::AppCode { step, code }));
    }
    shared.count(match acc.phone {
        None => "app set-ups confirmed",
        Some(_) => "SMS set-ups confirmed",
    });
    Some(true)
}

/// Begins setting up the app: where to confirm it, with which code, of which time
/// step (`Some(None)`: refused; `None`: no answer).
async fn begin_app(
    shared: &Shared,
    acc: &mut Account,
) -> Option<Option<(String, String, Option<i64>)>> {
    let begin = json!({ "password": acc.passwords[0] });
    let a = shared
        .post(&acc.http, "/api/v1/me/factors/totp", begin)
        .await?;
    if a.status != 200 {
        shared.surprise(format!("{}: begin {} {}", acc.email, a.status, a.body));
        return Some(None);
    }
    let id = a.body["id"].as_str().expect("id").to_owned();
    let secret = a.body["secret"].as_str().expect("secret").to_owned();
    // A new begin replaces an unconfirmed one: its steps are its own.
    acc.factor = Factor::Pending {
        id: id.clone(),
        secret: secret.clone(),
    };
    let step = step_now();
    acc.last_step_sent = step;
    let path = format!("/api/v1/me/factors/totp/{id}/confirm");
    Some(Some((path, code_for(&secret, step), Some(step))))
}

/// Signs in with the app's code of a time step not used before: the current one,
/// or up to `lead` steps ahead (the server allows one step of clock drift).
pub async fn sign_in_with_app(shared: &Shared, acc: &mut Account, lead: i64) -> Option<bool> {
    let (_, secret, _) = acc.active().expect("an active factor");
    let next = |acc: &Account| {
        let step = step_now().max(acc.last_step_sent + 1);
        (step <= step_now() + lead).then_some(step)
    };
    if next(acc).is_none() || !acc.code_step(shared).await? {
        return Some(false);
    }
    let Some(step) = next(acc) else {
        return Some(false);
    };
    let code = code_for(&secret, step);
    acc.last_step_sent = step;
    let body = json!({ "method": "totp", "code": code });
    let a = shared
        .post(&acc.http, "/api/v1/login/second-factor", body)
        .await?;
    if a.status == 200 {
        acc.sign_ins += 1;
        acc.steps_confirmed.push(step);
        acc.to_replay
            .push((shared.generation(), Used::AppCode { step, code }));
        shared.count("app sign-ins confirmed");
    } else {
        shared.surprise(format!(
            "{}: a new app code: {} {}",
            acc.email, a.status, a.body
        ));
    }
    Some(true)
}

/// Signs in with one of the recovery codes the confirmed set-up gave.
pub async fn sign_in_with_recovery_code(shared: &Shared, acc: &mut Account) -> Option<bool> {
    if !acc.code_step(shared).await? {
        return Some(false);
    }
    let code = acc.recovery_codes.pop().expect("a recovery code");
    let body = json!({ "method": "recovery_code", "code": code });
    let a = match shared
        .send(&acc.http, "/api/v1/login/second-factor", body)
        .await
    {
        Ok(a) => a,
        Err(NoAnswer::NotConnected) => {
            acc.recovery_codes.push(code);
            return None;
        }
        Err(NoAnswer::Lost) => {
            // Maybe used, maybe not: not tried again.
            shared.count("recovery codes sent without an answer");
            return None;
        }
    };
    match a.status {
        200 => {
            acc.recoveries_confirmed += 1;
            acc.to_replay
                .push((shared.generation(), Used::RecoveryCode(code)));
            shared.count("recovery-code sign-ins confirmed");
        }
        401 => shared.violation(format!(
            "{}: a recovery code its confirmed set-up gave, never sent before, was refused: {}",
            acc.email, a.body
        )),
        _ => shared.surprise(format!(
            "{}: recovery code {} {}",
            acc.email, a.status, a.body
        )),
    }
    Some(true)
}

/// Tries a credential the server confirmed as used once more (after a restart):
/// it must be refused. `None` when a request got no answer.
pub async fn try_again(shared: &Shared, acc: &mut Account, used: &Used) -> Option<()> {
    let (method, code) = match used {
        Used::ResetLink(token) => {
            let password = new_password();
            let body = json!({ "token": token, "password": password });
            let a = shared
                .post(&acc.http, "/api/v1/password/reset", body)
                .await?;
            match a.status {
                400 => shared.count("used reset links refused after a restart"),
                200 => {
                    shared.violation(format!(
                        "{}: a reset link used with a confirmation worked again after a restart",
                        acc.email
                    ));
                    acc.passwords = vec![password];
                }
                _ => shared.surprise(format!("{}: used link {} {}", acc.email, a.status, a.body)),
            }
            return Some(());
        }
        Used::AppCode { step, .. } if step_now() > step + 1 => {
            // Out of the code's time window: refused by the clock alone. That its
            // step was stored is checked in the database at the end.
            shared.count("used app codes past their time window");
            return Some(());
        }
        Used::AppCode { code, .. } => ("totp", code),
        Used::RecoveryCode(code) => ("recovery_code", code),
    };
    if !acc.code_step(shared).await? {
        return Some(());
    }
    if let Used::AppCode { step, .. } = used {
        if step_now() > step + 1 {
            shared.count("used app codes past their time window");
            return Some(());
        }
    }
    let body = json!({ "method": method, "code": code });
    let a = shared
        .post(&acc.http, "/api/v1/login/second-factor", body)
        .await?;
    match (a.status, method) {
        (401 | 429, "totp") => shared.count("used app codes refused after a restart"),
        (401 | 429, _) => shared.count("used recovery codes refused after a restart"),
        (200, _) => shared.violation(format!(
            "{}: {used:?}, confirmed as used, worked again after a restart",
            acc.email
        )),
        _ => shared.surprise(format!(
            "{}: {used:?} again: {} {}",
            acc.email, a.status, a.body
        )),
    }
    Some(())
}

/// Asks for a reset link; the mail is taken from the sink when it has come
/// ([`use_mailed_link`]), the client going on meanwhile.
async fn ask_for_link(shared: &Shared, acc: &mut Account) -> Option<bool> {
    // Counted before it is sent: one without an answer may have queued a mail too,
    // and only three an hour are sent.
    acc.resets_requested += 1;
    let body = json!({ "email": acc.email });
    let a = shared
        .post(&acc.http, "/api/v1/password/forgot", body)
        .await?;
    if a.status != 202 {
        shared.surprise(format!("{}: forgot {} {}", acc.email, a.status, a.body));
        return Some(true);
    }
    acc.awaiting_link = true;
    shared.count("reset links asked for");
    Some(true)
}

/// When the mail with the link asked for has come: a new password set with it
/// (`Some(false)`: not there yet).
pub async fn use_mailed_link(shared: &Shared, acc: &mut Account) -> Option<bool> {
    let links = new_links(shared, acc);
    if links.is_empty() {
        return Some(false);
    }
    acc.awaiting_link = false;
    let password = new_password();
    // The newest first: a new link ends the older ones.
    for token in links.into_iter().rev() {
        if use_link(shared, acc, &token, &password).await {
            break;
        }
    }
    Some(true)
}

/// Sets `password` with the link `token`, again while no answer comes: whether the
/// server confirmed it.
async fn use_link(shared: &Shared, acc: &mut Account, token: &str, password: &str) -> bool {
    let mut unanswered = false;
    loop {
        let body = json!({ "token": token, "password": password });
        let a = match shared.send(&acc.http, "/api/v1/password/reset", body).await {
            Ok(a) => a,
            Err(why) => {
                if why == NoAnswer::Lost && !unanswered {
                    unanswered = true;
                    acc.passwords.insert(0, password.to_owned());
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
                continue;
            }
        };
        return match a.status {
            200 => {
                acc.passwords = vec![password.to_owned()];
                acc.resets_confirmed += 1;
                acc.to_replay
                    .push((shared.generation(), Used::ResetLink(token.to_owned())));
                shared.count("password resets confirmed");
                true
            }
            400 if unanswered => {
                // Used by the try that got no answer — or only claimed by it.
                shared.count("reset links used by a try without an answer");
                settle_password(shared, acc, password).await;
                false
            }
            // Ended by a newer link.
            400 => false,
            _ => {
                shared.surprise(format!("{}: reset {} {}", acc.email, a.status, a.body));
                false
            }
        };
    }
}

/// After a reset whose link was used without an answer: which password works. The
/// old one means the link was used up and the password left as it was.
async fn settle_password(shared: &Shared, acc: &mut Account, new: &str) {
    loop {
        if acc.password_step(shared).await.is_some() || acc.passwords.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    if acc.passwords.first().is_some_and(|p| p != new) {
        shared.violation(format!(
            "{}: a reset link was used up by a try without an answer, and the password \
             was not changed",
            acc.email
        ));
    }
}

/// The reset links in mail to `acc` the sink received and the client has not taken
/// yet, in the order they came in.
fn new_links(shared: &Shared, acc: &mut Account) -> Vec<String> {
    let to = format!("<{}>", acc.email);
    let mut links = Vec::new();
    let received = shared.sink.lock().expect("lock");
    for m in received.iter().filter(|m| m.rcpt_to.contains(&to)) {
        let id = m.header("Message-ID");
        if acc.mails_taken.contains(&id) {
            continue;
        }
        let text = text_part(&m.parsed());
        if let Some((_, rest)) = text.split_once("/password/reset/") {
            let token: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            acc.mails_taken.insert(id);
            links.push(token);
        }
    }
    links
}

/// A new password no other reset used.
fn new_password() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("paarse olifant {}", N.fetch_add(1, Ordering::SeqCst))
}
