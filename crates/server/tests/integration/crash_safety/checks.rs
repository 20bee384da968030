//! After the last restart: what the server confirmed is there and works, nothing is
//! half there, nothing used works again, and every queued mail reached the SMTP
//! sink — once, or again only with the same Message-ID after a kill.

use super::journeys::{
    set_up, sign_in_with_app, sign_in_with_recovery_code, try_again, use_mailed_link,
};
use super::model::{Account, Shared};
use super::server::{until, Db};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Every account once more, on the server as the crashes left it: each used
/// credential tried again, then a sign-in with the app (a new code) and with one
/// recovery code left from its confirmed set-up.
/// Forgotten-password requests answered 202 whose mail never came: each lost to a
/// kill right after its answer (the request runs after the answer).
pub const LOST_RESET_REQUESTS: &str =
    "forgotten-password requests answered, then lost to a kill before they ran";

pub async fn journeys(shared: &Shared, acc: &mut Account) {
    for (_, used) in std::mem::take(&mut acc.to_replay) {
        let outcome = try_again(shared, acc, &used).await;
        answered(shared, &acc.email, outcome);
    }
    // A link asked for before the crashes works after them (every queued mail has
    // been sent by now: [`all_sent`]).
    if acc.awaiting_link {
        shared.count("reset links asked for before the last restart");
        let deadline = Instant::now() + Duration::from_secs(2);
        while acc.awaiting_link && Instant::now() < deadline {
            let outcome = use_mailed_link(shared, acc).await;
            answered(shared, &acc.email, outcome);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if acc.awaiting_link {
            // A forgotten-password request is answered before it runs (so the time
            // taken tells nothing about the address): a kill in that moment loses
            // it, as documented. Bounded by the kills in the test's end.
            shared.count(LOST_RESET_REQUESTS);
        }
    }
    if acc.active().is_none() {
        // Whether a confirmation without an answer was stored: the sign-in says;
        // if not, a set-up after the crashes works.
        let outcome = set_up(shared, acc).await;
        answered(shared, &acc.email, outcome);
        if acc.active().is_none() {
            let outcome = set_up(shared, acc).await;
            answered(shared, &acc.email, outcome);
        }
    }
    let Some((id, _, confirmed)) = acc.active() else {
        return;
    };
    // The app's code of a step after any this account sent (the next one at most),
    // or a code by SMS.
    let before = acc.sign_ins;
    let outcome = match acc.phone {
        None => sign_in_with_app(shared, acc, 1).await,
        Some(_) => super::sms::sign_in(shared, acc).await,
    };
    answered(shared, &acc.email, outcome);
    if acc.sign_ins == before && !acc.passwords.is_empty() {
        shared.violation(format!(
            "{}: its factor {id} (confirmed to the client: {confirmed}) does not sign in \
             after the crashes",
            acc.email
        ));
    }
    shared.count("factors signed in with after the last restart");
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

/// Waits until the queue holds no message still to send (so the sink has them).
pub async fn all_sent(db: &Db) {
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
}

/// Waits until the queue holds no message still to send, then compares it with
/// what the sink received, by Message-ID (`<queue id@domain>`). The design is
/// at least once: a message the SMTP server accepted just before the process died
/// is sent again, with the same Message-ID, by a later process (after the claim's
/// lease). So none may be missing or unknown, and each copy after the first must
/// come after a kill that followed the one before (`marks`: where the sink's record
/// stood after each kill), from a claim of its own.
pub async fn mail(shared: &Shared, db: &Db, marks: &[usize]) {
    all_sent(db).await;
    let failed = db
        .texts(
            "SELECT CAST(id AS TEXT) || ' ' || COALESCE(last_error, '') FROM mail_queue \
             WHERE status <> 'sent'",
        )
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
    // Where in the sink's record each copy of each message is.
    let mut received: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (at, m) in shared.sink.lock().expect("lock").iter().enumerate() {
        let id = m.header("Message-ID");
        let local = id
            .trim()
            .trim_start_matches('<')
            .split('@')
            .next()
            .unwrap_or_default()
            .to_lowercase();
        received.entry(local).or_default().push(at);
    }
    for id in queued.keys().filter(|id| !received.contains_key(*id)) {
        shared.violation(format!("mail {id} was queued and never received"));
    }
    for id in received.keys().filter(|id| !queued.contains_key(*id)) {
        shared.violation(format!("mail {id} was received and never queued"));
    }
    let mut again = 0;
    for (id, copies) in received.iter().filter(|(_, c)| c.len() > 1) {
        again += copies.len() - 1;
        let attempts = queued.get(id).copied().unwrap_or(0);
        if attempts < copies.len() as i64 {
            shared.violation(format!(
                "mail {id} was received {} times from {attempts} claim(s)",
                copies.len()
            ));
        }
        for pair in copies.windows(2) {
            if !marks.iter().any(|m| pair[0] < *m && *m <= pair[1]) {
                shared.violation(format!(
                    "mail {id} was received twice (#{} and #{}) with no kill between",
                    pair[0], pair[1]
                ));
            }
        }
    }
    if again > marks.len() {
        shared.violation(format!(
            "{again} messages received again, more than the {} kills explain",
            marks.len()
        ));
    }
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
