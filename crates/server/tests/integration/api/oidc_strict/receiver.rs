//! A back-channel logout receiver on loopback, as a portal runs one: it records
//! every POST (path, content type, body) and answers 200, or 500 while told to fail;
//! paths under /redirect answer 307 to /followed.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One request that reached the receiver.
#[derive(Debug, Clone)]
pub struct Post {
    pub method: String,
    pub path: String,
    pub content_type: String,
    pub body: String,
    /// What the receiver answered.
    pub answered: u16,
}

impl Post {
    /// The `logout_token` form field.
    pub fn logout_token(&self) -> Option<String> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .find(|(k, _)| k == "logout_token")
            .map(|(_, v)| v.into_owned())
    }
}

#[derive(Clone, Default)]
struct Shared {
    seen: Arc<Mutex<Vec<Post>>>,
    failures: Arc<AtomicUsize>,
}

pub struct Receiver {
    pub base: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

async fn record(
    State(s): State<Shared>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let fail = s
        .failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if uri.path().starts_with("/redirect") {
        // Somewhere else, please: a logout token must not follow it.
        StatusCode::TEMPORARY_REDIRECT
    } else if fail {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    s.seen.lock().expect("lock").push(Post {
        method: method.to_string(),
        path: uri.path().to_owned(),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body: String::from_utf8_lossy(&body).into_owned(),
        answered: status.as_u16(),
    });
    if status == StatusCode::TEMPORARY_REDIRECT {
        return axum::response::Response::builder()
            .status(status)
            .header("location", "/followed")
            .body(axum::body::Body::empty())
            .expect("a redirect");
    }
    axum::response::Response::builder()
        .status(status)
        .body(axum::body::Body::empty())
        .expect("an answer")
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Shared::default();
        let router = axum::Router::new()
            .fallback(record)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { base, shared, task }
    }

    /// The next `n` requests are answered 500.
    pub fn fail_next(&self, n: usize) {
        self.shared.failures.store(n, Ordering::SeqCst);
    }

    /// Every request to `path` so far.
    pub fn posts(&self, path: &str) -> Vec<Post> {
        self.shared
            .seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|p| p.path == path)
            .cloned()
            .collect()
    }

    /// The logout tokens `path` accepted (answered 200).
    pub fn accepted(&self, path: &str) -> Vec<String> {
        self.posts(path)
            .into_iter()
            .filter(|p| p.answered == 200)
            .map(|p| {
                assert_eq!(p.method, "POST", "{p:?}");
                assert!(
                    p.content_type
                        .starts_with("application/x-www-form-urlencoded"),
                    "{p:?}"
                );
                p.logout_token()
                    .unwrap_or_else(|| panic!("no logout_token: {p:?}"))
            })
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
