//! Serving HTTP/1.1 with the limits that keep slow clients from holding the server
//! (issue 18, finding 4): a deadline for a request's headers (also for the next
//! request on a kept-alive connection, so idle connections close), one for its body
//! (answered 408), and a cap on the connections served at once (further ones wait
//! in the system's accept queue). Shuts down gracefully: no new connections, the
//! requests in flight are answered, then every connection closes.
//!
//! HTTP/1.1 only: tweestap speaks plain HTTP (TLS ends at a proxy), and HTTP/2
//! without TLS is used by no browser; the header deadline exists only for HTTP/1.

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Extension, Router};
use http_body::{Frame, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tower::Layer as _;

/// The limits of [`serve`] (`[http]` in the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `shutdown` completes, then finishes the
/// requests in flight and returns when every connection has closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let router = router.layer(axum::middleware::from_fn_with_state(
        limits.body_read_timeout,
        body_deadline,
    ));
    // hyper's HTTP/1 server itself, not hyper-util's auto-detecting one: no HTTP/2
    // code in the binary (4% smaller; see docs/benchmarks.md).
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let places = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A place first, then the connection: beyond the cap, connections wait
        // unaccepted rather than each costing a task and buffers here.
        let place = tokio::select! {
            p = places.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = Extension(ConnectInfo(peer)).layer(router.clone());
        let conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(place);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Errors of one connection (it went away before we took it) pass; others, such as
/// too many open files, get a pause so the loop does not spin.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind as K;
    if matches!(
        e.kind(),
        K::ConnectionRefused | K::ConnectionAborted | K::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Gives a request's body until `limit` after its headers arrived; a body not in by
/// then fails to read, and the request is answered 408 with the connection closed.
async fn body_deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    if http_body::Body::is_end_stream(req.body()) {
        return next.run(req).await;
    }
    let late = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + limit;
    let flag = late.clone();
    let req = req.map(|inner| {
        Body::new(Deadline {
            inner,
            deadline,
            sleep: None,
            late: flag,
        })
    });
    let response = next.run(req).await;
    if late.load(Ordering::SeqCst) {
        return (
            StatusCode::REQUEST_TIMEOUT,
            [(header::CONNECTION, "close")],
            "the request body did not arrive in time\n",
        )
            .into_response();
    }
    response
}

/// A body that fails once its deadline passes.
struct Deadline {
    inner: Body,
    deadline: Instant,
    /// Made at the first wait, so a body read at once costs no timer.
    sleep: Option<Pin<Box<Sleep>>>,
    late: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct TooSlow;

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            this.late.store(true, Ordering::SeqCst);
            return Poll::Ready(Some(Err(TooSlow.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
