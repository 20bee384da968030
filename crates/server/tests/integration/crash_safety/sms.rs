//! The accounts with a phone: SMS set up as their first factor (the code read from
//! the SMS outbox in the data directory) and sign-ins with a code by SMS.

use super::model::{Account, Factor, Shared};
use crate::kit::sms::{sms_code_in, sms_files_in};
use serde_json::json;
use std::time::{Duration, Instant};

/// Begins setting up SMS to `phone`: where to confirm it and with which code
/// (`Some(None)`: refused or no SMS came; `None`: no answer).
pub async fn begin(
    shared: &Shared,
    acc: &mut Account,
    phone: &str,
) -> Option<Option<(String, String, Option<i64>)>> {
    let body = json!({ "phone": phone, "password": acc.passwords[0] });
    let a = shared
        .post(&acc.http, "/api/v1/me/factors/sms", body)
        .await?;
    if a.status != 200 {
        shared.surprise(format!("{}: begin SMS {} {}", acc.email, a.status, a.body));
        return Some(None);
    }
    let id = a.body["id"].as_str().expect("id").to_owned();
    acc.factor = Factor::Pending {
        id: id.clone(),
        secret: String::new(),
    };
    let Some(code) = newest_code(shared, acc, phone).await else {
        shared.surprise(format!("{}: no set-up SMS in the outbox", acc.email));
        return Some(None);
    };
    let path = format!("/api/v1/me/factors/sms/{id}/confirm");
    Some(Some((path, code, None)))
}

/// Signs in with a code sent by SMS.
pub async fn sign_in(shared: &Shared, acc: &mut Account) -> Option<bool> {
    let phone = acc.phone.clone().expect("a phone");
    if !acc.code_step(shared).await? {
        return Some(false);
    }
    let a = shared
        .post(&acc.http, "/api/v1/login/sms", json!({}))
        .await?;
    if a.status != 200 {
        shared.surprise(format!("{}: send SMS {} {}", acc.email, a.status, a.body));
        return Some(true);
    }
    let Some(code) = newest_code(shared, acc, &phone).await else {
        shared.surprise(format!("{}: no sign-in SMS in the outbox", acc.email));
        return Some(true);
    };
    let body = json!({ "method": "sms", "code": code });
    let a = shared
        .post(&acc.http, "/api/v1/login/second-factor", body)
        .await?;
    if a.status == 200 {
        acc.sign_ins += 1;
        shared.count("SMS sign-ins confirmed");
    } else {
        shared.surprise(format!("{}: SMS code {} {}", acc.email, a.status, a.body));
    }
    Some(true)
}

/// The code of the newest SMS to `phone` the client has not taken yet (all older
/// ones are taken with it), once there.
async fn newest_code(shared: &Shared, acc: &mut Account, phone: &str) -> Option<String> {
    let to = format!("To: {phone}\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut newest = None;
        for path in sms_files_in(&shared.data) {
            if acc.sms_taken.contains(&path) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            if text.starts_with(&to) {
                acc.sms_taken.insert(path);
                newest = Some(text);
            }
        }
        if let Some(text) = newest {
            return Some(sms_code_in(&text));
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
