//! After the last restart: what the server confirmed is there and works, nothing is
//! half there, nothing used works again, and every queued mail reached the SMTP
//! sink — once, or again only with the same Message-ID after a kill.

use super::journeys::{set_up_app, sign_in_with_app, sign_in_with_recovery_code, try_again};
use super::model::{Account, Factor, Shared};
use super::server::{until, Db};
use std::collections::BTreeMap;
use std::time::Duration;

/// Every account once more, on the server as the crashes left it: each used
/// credential tried again, then a sign-in with the app (a new code) and with one
/// recovery code left from its confirmed set-up.
pub async fn journeys(shared: &Shared, acc: &mut Account) {
    for (_, used) in std::mem::take(&mut acc.to_replay) {
        let outcome = try_again(shared, acc, &used).await;
        answered(shared, &acc.email, outcome);
    }
    if matches!(acc.factor, Factor::Pending { .. }) {
        // Whether the confirmation without an answer was stored: the sign-in says.
        let outcome = set_up_app(shared, acc).await;
        answered(shared, &acc.email, outcome);
    }
    let Some((id, _, confirmed)) = acc.active() else {
        return;
    };
    // The app's code of a step after any this account sent (the next one at most).
    let before = acc.steps_confirmed.len();
    let outcome = sign_in_with_app(shared, acc, 1).await;
    answered(shared, &acc.email, outcome);
    if acc.steps_confirmed.len() == before && !acc.passwords.is_empty() {
        shared.violation(format!(
            "{}: its app {id} (confirmed to the client: {confirmed}) does not sign in after \
             the crashes",
            acc.email
        ));
    }
    shared.count("apps signed in with after the last restart");
    if !acc.recovery_codes.is_empty() {
        let before = acc.recoveries_confirmed;
        let outcome = sign_in_with_recovery_code(shared, acc).await;
        answered(shared, &acc.email, outcome);
        if acc.recoveries_confirmed > before {
            shared.count("recovery codes signed in with after the last restart");
        }
    }
}

/// No answer from a server that is not being killed any more is a failure.
fn answered<T>(shared: &Shared, email: &str, outcome: Option<T>) {
    if outcome.is_none() {
        shared.violation(format!("{email}: no answer after the last restart"));
    }
}

/// Waits until the queue holds no message still to send, then compares it with
/// what the sink received, by Message-ID (`<queue id@domain>`). The design is
/// at least once: a message the SMTP server accepted just before the process died
/// is sent again, with the same Message-ID, after the claim's lease runs out. So
/// none may be missing or unknown, and a message may come twice only when it was
/// claimed twice, at most once per kill.
pub async fn mail(shared: &Shared, db: &Db, kills: u32) {
    until(
        Duration::from_secs(30),
        "every queued mail sent",
        || async {
            db.count("SELECT COUNT(*) FROM mail_queue WHERE status = 'queued'")
                .await
                == 0
        },
    )
    .await;
    let failed = db
        .texts("SELECT CAST(id AS TEXT) || ' ' || COALESCE(last_error, '') FROM mail_queue WHERE status <> 'sent'")
        .await;
    for f in failed {
        shared.violation(format!("mail not sent: {f}"));
    }
    let queued: BTreeMap<String, i64> = db
        .texts("SELECT CAST(id AS TEXT) || ' ' || CAST(attempts AS TEXT) FROM mail_queue")
        .await
        .into_iter()
        .map(|row| {
            let (id, attempts) = row.split_once(' ').expect("id and attempts");
            (id.to_lowercase(), attempts.parse().expect("attempts"))
        })
        .collect();
    let mut received: BTreeMap<String, i64> = BTreeMap::new();
    for m in shared.sink.lock().expect("lock").iter() {
        let id = m.header("Message-ID");
        let local = id
            .trim()
            .trim_start_matches('<')
            .split('@')
            .next()
            .unwrap_or_default()
            .to_lowercase();
        *received.entry(local).or_default() += 1;
    }
    for id in queued.keys().filter(|id| !received.contains_key(*id)) {
        shared.violation(format!("mail {id} was queued and never received"));
    }
    for id in received.keys().filter(|id| !queued.contains_key(*id)) {
        shared.violation(format!("mail {id} was received and never queued"));
    }
    let mut again = 0;
    for (id, n) in received.iter().filter(|(_, n)| **n > 1) {
        again += n - 1;
        let attempts = queued.get(id).copied().unwrap_or(0);
        if attempts < *n {
            shared.violation(format!(
                "mail {id} was received {n} times from {attempts} claim(s)"
            ));
        }
    }
    if again > i64::from(kills) {
        shared.violation(format!(
            "{again} messages received again, more than the {kills} kills explain"
        ));
    }
    eprintln!(
        "mail: {} queued, {} received, {again} received again after a kill (same Message-ID)",
        queued.len(),
        received.values().sum::<i64>()
    );
    shared.count_n("mails queued", queued.len() as u64);
    shared.count_n("mails received again after a kill", again as u64);
}

/// What the database holds against what the clients were told, and the invariants
/// the code promises: a confirmed factor comes with its "factor added" notice (one
/// transaction) and its recovery codes; a used code's time step is stored.
pub async fn database(shared: &Shared, db: &Db, accounts: &[Account]) {
    for acc in accounts {
        let Some((id, _, confirmed)) = acc.active() else {
            continue;
        };
        let rows = db
            .texts(&format!(
                "SELECT COALESCE(CAST(last_step AS TEXT), '-1') FROM factors \
                 WHERE CAST(id AS TEXT) = '{id}' AND confirmed_at IS NOT NULL"
            ))
            .await;
        let Some(last) = rows.first() else {
            shared.violation(format!(
                "{}: app {id} (confirmed to the client: {confirmed}) is not stored as active",
                acc.email
            ));
            continue;
        };
        let last: i64 = last.parse().expect("a step");
        if let Some(max) = acc.steps_confirmed.iter().max().filter(|m| **m > last) {
            shared.violation(format!(
                "{}: app {id} accepted the code of step {max}, yet its last used step is {last}",
                acc.email
            ));
        }
    }
    let per_account = |sql: &str| {
        format!(
            "SELECT CAST(a.email AS TEXT) || ' ' || CAST(({sql}) AS TEXT) FROM accounts a ORDER BY a.email"
        )
    };
    let counts = |rows: Vec<String>| -> BTreeMap<String, i64> {
        rows.into_iter()
            .map(|r| {
                let (email, n) = r.split_once(' ').expect("email and count");
                (email.to_owned(), n.parse().expect("a count"))
            })
            .collect()
    };
    let factors = counts(db.texts(&per_account(
        "SELECT COUNT(*) FROM factors f WHERE f.account_id = a.id AND f.confirmed_at IS NOT NULL",
    )).await);
    let recovery = counts(
        db.texts(&per_account(
            "SELECT COUNT(*) FROM recovery_codes r WHERE r.account_id = a.id",
        ))
        .await,
    );
    let notices = |kind: &str| {
        per_account(&format!(
            "SELECT COUNT(*) FROM mail_queue m WHERE m.account_id = a.id AND m.kind = '{kind}'"
        ))
    };
    let added = counts(db.texts(&notices("factor_added")).await);
    let changed = counts(db.texts(&notices("password_changed")).await);
    let recovered = counts(db.texts(&notices("recovery_code_used")).await);
    for (email, n) in &factors {
        if *n > 0 && recovery[email] == 0 {
            shared.violation(format!(
                "{email}: {n} active factor(s) and no recovery codes (half there)"
            ));
        }
        if added[email] != *n {
            shared.violation(format!(
                "{email}: {n} active factor(s) and {} 'factor added' notice(s)",
                added[email]
            ));
        }
    }
    for acc in accounts {
        let (c, r) = (changed[&acc.email], recovered[&acc.email]);
        if c < i64::from(acc.resets_confirmed) || c > i64::from(acc.resets_requested) {
            shared.violation(format!(
                "{}: {c} 'password changed' notice(s) for {} confirmed reset(s) of {} asked for",
                acc.email, acc.resets_confirmed, acc.resets_requested
            ));
        }
        if r < i64::from(acc.recoveries_confirmed) {
            shared.violation(format!(
                "{}: {r} 'recovery code used' notice(s) for {} confirmed use(s)",
                acc.email, acc.recoveries_confirmed
            ));
        }
    }
}
