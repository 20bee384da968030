//! Holding connections open (issue 18, finding 4): clients that send half a header,
//! a body a byte at a time, or simply more connections than the server serves, over
//! raw sockets. The timeouts are set short here (`[http]`); the defaults are 30 s.

use crate::kit::{Backend, TestApp};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

crate::on_both_backends!(
    half_a_header_on_many_sockets_is_closed_after_the_header_timeout,
    a_body_sent_a_byte_at_a_time_is_answered_408_within_the_body_timeout,
    a_body_that_never_comes_is_answered_408_within_the_body_timeout,
    an_idle_kept_alive_connection_is_closed_after_the_header_timeout,
    connections_beyond_the_cap_wait_until_one_closes,
);

const HEADER_TIMEOUT: u64 = 2;
const BODY_TIMEOUT: u64 = 2;

async fn app_with(backend: Backend, max_connections: usize, header_timeout: u64) -> TestApp {
    TestApp::start_configured(backend, move |c| {
        c.http.header_read_timeout_seconds = header_timeout;
        c.http.body_read_timeout_seconds = BODY_TIMEOUT;
        c.http.max_connections = max_connections;
    })
    .await
}

async fn connect(app: &TestApp) -> TcpStream {
    let addr = app.url.trim_start_matches("http://");
    TcpStream::connect(addr).await.expect("connect")
}

/// Everything the server sends until it closes the connection, and how long that
/// took from `since`; panics when it is still open after `limit`.
async fn until_closed(s: &mut TcpStream, since: Instant, limit: Duration) -> (String, Duration) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(since.elapsed());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => panic!(
                "still open after {limit:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), since.elapsed())
}

/// Slowloris: 300 sockets each send the start of a request and stop. Every one is
/// closed once the header timeout has passed (not before), without an answer other
/// than a 408.
async fn half_a_header_on_many_sockets_is_closed_after_the_header_timeout(backend: Backend) {
    let app = app_with(backend, 1000, HEADER_TIMEOUT).await;
    let mut sockets = Vec::new();
    for _ in 0..300 {
        let mut s = connect(&app).await;
        s.write_all(b"POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl")
            .await
            .expect("half a header");
        sockets.push((s, Instant::now()));
    }
    let mut closing = tokio::task::JoinSet::new();
    for (mut s, since) in sockets {
        closing.spawn(async move { until_closed(&mut s, since, Duration::from_secs(15)).await });
    }
    let mut slowest = Duration::ZERO;
    while let Some(closed) = closing.join_next().await {
        let (said, after) = closed.expect("reader");
        assert!(
            said.is_empty() || said.starts_with("HTTP/1.1 408"),
            "answered {said:?}"
        );
        assert!(
            after >= Duration::from_millis(HEADER_TIMEOUT * 1000 - 300),
            "closed after {after:?}, before the timeout"
        );
        slowest = slowest.max(after);
    }
    assert!(
        slowest < Duration::from_secs(HEADER_TIMEOUT + 6),
        "the last socket closed after {slowest:?}"
    );
    // The server still answers.
    let r = reqwest::get(format!("{}/healthz", app.url))
        .await
        .expect("healthz");
    assert_eq!(r.status(), 200);
}

/// A body trickling in a byte every 300 ms: answered 408 (and closed) when the body
/// timeout has passed since the headers, however busy the trickle keeps it.
async fn a_body_sent_a_byte_at_a_time_is_answered_408_within_the_body_timeout(backend: Backend) {
    let app = app_with(backend, 100, 30).await;
    for (path, content_type) in [
        ("/api/v1/login", "application/json"),
        ("/login", "application/x-www-form-urlencoded"),
    ] {
        let mut s = connect(&app).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: 500\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.expect("headers");
        let since = Instant::now();
        let (mut rd, mut wr) = s.into_split();
        let trickle = tokio::spawn(async move {
            for _ in 0..100 {
                if wr.write_all(b"x").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout(Duration::from_secs(15), rd.read(&mut buf)).await {
                Err(_) => panic!("{path}: no answer and no close within 15 s"),
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            }
        }
        trickle.abort();
        let after = since.elapsed();
        let said = String::from_utf8_lossy(&got);
        assert!(said.starts_with("HTTP/1.1 408"), "{path}: {said:?}");
        assert!(
            after >= Duration::from_millis(BODY_TIMEOUT * 1000 - 300)
                && after < Duration::from_secs(BODY_TIMEOUT + 5),
            "{path}: answered after {after:?}"
        );
    }
}

/// Headers promising a body, then nothing: 408 when the body timeout has passed.
async fn a_body_that_never_comes_is_answered_408_within_the_body_timeout(backend: Backend) {
    let app = app_with(backend, 100, 30).await;
    let mut s = connect(&app).await;
    s.write_all(
        b"POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n{\"email\":",
    )
    .await
    .expect("headers");
    let (said, after) = until_closed(&mut s, Instant::now(), Duration::from_secs(15)).await;
    assert!(said.starts_with("HTTP/1.1 408"), "{said:?}");
    assert!(
        said.to_ascii_lowercase().contains("connection: close"),
        "{said:?}"
    );
    assert!(
        after < Duration::from_secs(BODY_TIMEOUT + 5),
        "answered after {after:?}"
    );
}

/// A kept-alive connection with nothing more to ask is closed after the header
/// timeout too: idle sockets do not pile up.
async fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout(backend: Backend) {
    let app = app_with(backend, 100, HEADER_TIMEOUT).await;
    let mut s = connect(&app).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("request");
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("an answer")
        .expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let (said, after) = until_closed(&mut s, Instant::now(), Duration::from_secs(15)).await;
    assert!(
        said.is_empty() || said.starts_with("HTTP/1.1 408"),
        "{said:?}"
    );
    assert!(
        after >= Duration::from_millis(HEADER_TIMEOUT * 1000 - 300)
            && after < Duration::from_secs(HEADER_TIMEOUT + 5),
        "closed after {after:?}"
    );
}

/// With `max_connections = 3` and three sockets held open, a fourth connection is
/// not served until one of them closes; then it is, and requests go on as usual.
async fn connections_beyond_the_cap_wait_until_one_closes(backend: Backend) {
    let app = app_with(backend, 3, 30).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = connect(&app).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .expect("request");
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("the first three are served at once")
            .expect("read");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        // Kept alive and idle: it holds its place.
        held.push(s);
    }
    let mut fourth = connect(&app).await;
    fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut buf = [0u8; 1024];
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), fourth.read(&mut buf))
            .await
            .is_err(),
        "a fourth connection was served while three were open"
    );
    drop(held.pop());
    let (said, _) = until_closed(&mut fourth, Instant::now(), Duration::from_secs(10)).await;
    assert!(said.starts_with("HTTP/1.1 200"), "{said:?}");
    drop(held);
    // Normal use afterwards: a sign-in and a few more requests, one at a time.
    app.add_user("an@example.be").await;
    let c = app.client();
    let r = c.login("an@example.be", crate::kit::PASSWORD).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    for _ in 0..10 {
        assert_eq!(c.get("/healthz").await.status, 200);
    }
}
