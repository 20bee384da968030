//! Floods of passwords (issue 18, finding 10; issue 19): at most the configured
//! number of Argon2 hashes run at any moment, also when clients hang up in the
//! middle of theirs, and beyond a short queue the server says "busy" at once.

use crate::kit::{eventually, Backend, TestApp, PASSWORD};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

crate::on_both_backends!(
    hanging_up_mid_hash_frees_no_hashing_place,
    a_flood_of_passwords_beyond_the_queue_is_refused_at_once_with_retry_after,
);

/// One hashing place, and hashes slow enough (about 0.2 s) to hang up during one.
async fn one_slow_hasher(backend: Backend, max_waiting: usize) -> TestApp {
    TestApp::start_configured(backend, move |c| {
        c.password.max_concurrent_hashes = 1;
        c.password.max_waiting_hashes = max_waiting;
        c.password.argon2_iterations = 12;
        // The password throttle is not what these tests are about.
        c.lockout.password_max_failures = 1000;
    })
    .await
}

/// A sign-in sent over a raw socket, which is closed `after` later: before the
/// answer, while the password is being hashed (or waits for its turn).
async fn sign_in_and_hang_up(addr: String, after: Duration) {
    let body = json!({"email": "an@example.be", "password": PASSWORD}).to_string();
    let request = format!(
        "POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("request");
    tokio::time::sleep(after).await;
    drop(s);
}

/// Twenty clients, in four waves, each hanging up 50 ms into its sign-in: with one
/// hashing place, never more than one hash runs. (Before, the place was given back
/// when the request went away while its hash went on, so the next one started
/// beside it.)
async fn hanging_up_mid_hash_frees_no_hashing_place(backend: Backend) {
    let app = one_slow_hasher(backend, 32).await;
    app.add_user("an@example.be").await;
    let addr = app.url.trim_start_matches("http://").to_owned();
    let engine = app.engine().clone();
    for _ in 0..4 {
        let mut wave = tokio::task::JoinSet::new();
        for _ in 0..5 {
            wave.spawn(sign_in_and_hang_up(addr.clone(), Duration::from_millis(50)));
        }
        while wave.join_next().await.is_some() {}
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    eventually(30, "the hashes of the clients that hung up end", || {
        let engine = engine.clone();
        async move {
            let load = engine.password_hashing();
            load.running == 0 && load.waiting == 0
        }
    })
    .await;
    let load = app.engine().password_hashing();
    assert_eq!(load.peak_running, 1, "{load:?}");
    // Nobody was refused: the clients that left gave their places in the queue back.
    assert_eq!(load.refused, 0, "{load:?}");
    // And the account still signs in.
    let r = app.client().login("an@example.be", PASSWORD).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// One hashing place and two waiting: of twelve sign-ins at once, those beyond the
/// queue get 503 with `Retry-After` straight away (no hash, no wait), and the
/// others sign in.
async fn a_flood_of_passwords_beyond_the_queue_is_refused_at_once_with_retry_after(
    backend: Backend,
) {
    let app = one_slow_hasher(backend, 2).await;
    app.add_user("an@example.be").await;
    let url = format!("{}/api/v1/login", app.url);
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let url = url.clone();
        flood.spawn(async move {
            // A client of its own: a connection of its own.
            let http = reqwest::Client::new();
            let started = Instant::now();
            let r = http
                .post(url)
                .json(&json!({"email": "an@example.be", "password": PASSWORD}))
                .send()
                .await
                .expect("request");
            let retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap_or_default().to_owned());
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            (status, retry_after, body, started.elapsed())
        });
    }
    let (mut signed_in, mut refused) = (0, 0);
    while let Some(answer) = flood.join_next().await {
        let (status, retry_after, body, took) = answer.expect("client");
        match status {
            200 => signed_in += 1,
            503 => {
                refused += 1;
                assert_eq!(retry_after.as_deref(), Some("1"), "{body}");
                assert_eq!(body["error"], "unavailable", "{body}");
                assert!(took < Duration::from_secs(2), "refused after {took:?}");
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert!(signed_in >= 3, "{signed_in} signed in, {refused} refused");
    assert!(refused >= 1, "{signed_in} signed in, {refused} refused");
    let load = app.engine().password_hashing();
    assert_eq!(load.refused, refused as u64, "{load:?}");
    assert_eq!(load.peak_running, 1, "{load:?}");
    let r = app.client().login("an@example.be", PASSWORD).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}
