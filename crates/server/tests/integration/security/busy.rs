//! A busy server is no lock-out: when the hashing queue is full the server answers
//! 503 "busy, retry later" without checking the password, and such a refusal must
//! not count as a wrong guess — else a flood that keeps the server busy (or a
//! person retrying through it) would fill the throttle of the person's own
//! account and address, and the account's backstop, with guesses never made.

use super::cast::account_id;
use super::threat_kit::{client_at, fresh_address};
use crate::kit::{stored_texts, Backend, TestApp, PASSWORD};

crate::on_both_backends!(busy_refusals_count_as_no_wrong_guess);

const EMAIL: &str = "druk@tweestad.example";

/// One hashing place, one waiting, slow hashes: most of a flood is refused busy.
async fn busy_app(backend: Backend) -> TestApp {
    TestApp::start_configured(backend, |c| {
        c.password.max_concurrent_hashes = 1;
        c.password.max_waiting_hashes = 1;
        c.password.argon2_iterations = 12;
    })
    .await
}

/// The failures a throttle holds (0 when it has no row).
async fn failures(app: &TestApp, key: &str) -> u32 {
    let sql = format!("SELECT CAST(failures AS TEXT) FROM throttles WHERE key = '{key}'");
    stored_texts(app, &sql)
        .await
        .first()
        .map_or(0, |v| v.parse().expect("a count"))
}

/// A sign-in from 127.0.0.`n` on a connection of its own: the status.
async fn sign_in(app: &TestApp, n: u8, password: &str) -> u16 {
    let c = client_at(app, n);
    let r = c.login(EMAIL, password).await;
    r.status
}

async fn busy_refusals_count_as_no_wrong_guess(backend: Backend) {
    let app = busy_app(backend).await;
    app.add_user(EMAIL).await;
    let id = account_id(&app, EMAIL).await;
    // The person's own address, and three others (the backstop counts them all).
    let addresses: Vec<u8> = (0..4).map(|_| fresh_address()).collect();
    let mut wrong = [0u32; 4];
    let mut busy = 0;
    for wave in 0..2 {
        let mut flood = tokio::task::JoinSet::new();
        for i in 0..24 {
            let n = i % addresses.len();
            let address = addresses[n];
            let c = client_at(&app, address);
            let guess = format!("geraden {wave} {i}");
            flood.spawn(async move {
                let r = c.login(EMAIL, &guess).await;
                (n, r.status, r.body)
            });
        }
        while let Some(a) = flood.join_next().await {
            let (n, status, body) = a.expect("client");
            match status {
                401 => wrong[n] += 1,
                503 => {
                    assert_eq!(body["error"], "unavailable", "{body}");
                    busy += 1;
                }
                other => panic!("{other}: {body}"),
            }
        }
    }
    let checked: u32 = wrong.iter().sum();
    assert!(busy >= 12, "{busy} busy, {checked} checked: no flood");
    assert!(checked >= 2, "{busy} busy, {checked} checked");
    // Only the guesses checked count: per account and address, and towards the
    // backstop.
    for (n, address) in addresses.iter().enumerate() {
        let key = format!("password:account:{id}:127.0.0.{address}");
        assert_eq!(
            failures(&app, &key).await,
            wrong[n],
            "{key}: {busy} busy refusals counted"
        );
    }
    let backstop = format!("password:backstop:{id}");
    assert_eq!(failures(&app, &backstop).await, checked, "{backstop}");
    // So the person, from their own address, still signs in with the right
    // password (fewer wrong ones were checked there than the throttle allows).
    assert!(wrong[0] < 10, "{wrong:?}");
    assert_eq!(sign_in(&app, addresses[0], PASSWORD).await, 200);
    assert_eq!(
        failures(&app, &backstop).await,
        0,
        "a right password clears it"
    );
}
