//! The load engine: an HTTP/1.1 client with kept-alive connections (hyper), and
//! workers that send requests for a while, closed-loop or paced, timing each.

use crate::stats::Sample;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after: bool,
    pub set_cookie: Vec<String>,
    pub location: Option<String>,
    pub body: Bytes,
}

impl Reply {
    /// The value of the cookie `name` the answer sets, if any.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        self.set_cookie.iter().find_map(|c| {
            c.strip_prefix(&prefix)
                .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
        })
    }
}

/// A client for one server, shared by every worker (one kept-alive connection per
/// worker in flight).
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: Arc<str>,
}

impl Http {
    /// `base` like `http://127.0.0.1:8080`.
    pub fn new(base: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1024)
            .build(connector);
        Self {
            client,
            base: base.trim_end_matches('/').into(),
        }
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Reply, String> {
        self.send(Method::GET, path, headers, Bytes::new()).await
    }

    pub async fn post_json(
        &self,
        path: &str,
        cookie: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<Reply, String> {
        let cookie = cookie.map(|c| format!("tweestap_session={c}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(c) = &cookie {
            headers.push(("cookie", c));
        }
        self.send(Method::POST, path, &headers, Bytes::from(body.to_string()))
            .await
    }

    pub async fn post_form(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        fields: &[(&str, &str)],
    ) -> Result<Reply, String> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        self.send(Method::POST, path, &all, Bytes::from(body)).await
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Reply, String> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(
                HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?,
                HeaderValue::from_str(v).map_err(|e| e.to_string())?,
            );
        }
        let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
        let res = self.client.request(req).await.map_err(|e| {
            let mut s = e.to_string();
            if let Some(src) = std::error::Error::source(&e) {
                s = format!("{s}: {src}");
            }
            s
        })?;
        let status = res.status().as_u16();
        let h = res.headers();
        let retry_after = h.contains_key(hyper::header::RETRY_AFTER);
        let set_cookie = h
            .get_all(hyper::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        let location = h
            .get(hyper::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Reply {
            status,
            retry_after,
            set_cookie,
            location,
            body,
        })
    }
}

/// What one request or journey came to: fine (counted under a label) or an error.
pub enum Verdict {
    Ok(String),
    /// Nothing was sent (e.g. a pool of prepared sessions ran out): not counted.
    Skip,
    Err(String),
}

/// How a measurement drives the server.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub connections: usize,
    pub duration: Duration,
    /// Requests per second over all workers; `None`: each worker sends its next
    /// request as soon as the previous one is answered.
    pub rate: Option<f64>,
    /// A request taking longer is counted as an error (`timeout`).
    pub timeout: Duration,
}

/// Runs `job(worker, iteration)` on `plan.connections` workers for
/// `plan.duration`, timing each call.
pub async fn drive<F, Fut>(plan: Plan, job: F) -> Sample
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Verdict> + Send + 'static,
{
    let job = Arc::new(job);
    let start = Instant::now();
    let deadline = start + plan.duration;
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..plan.connections.max(1) {
        let job = job.clone();
        workers.spawn(async move {
            let mut s = Sample::default();
            let mut i = 0u64;
            loop {
                let mut due = None;
                if let Some(rate) = plan.rate {
                    // Worker w takes every connections-th slot of the schedule.
                    let slot = (i as f64 * plan.connections as f64 + w as f64) / rate;
                    let at = start + Duration::from_secs_f64(slot);
                    if at >= deadline {
                        break;
                    }
                    tokio::time::sleep_until(at.into()).await;
                    due = Some(at);
                }
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                let verdict = tokio::time::timeout(plan.timeout, job(w, i)).await;
                // Paced, a request is timed from when it was due: one sent late
                // because the worker's previous answer was slow waited that long
                // too (no coordinated omission).
                let took = due.unwrap_or(now).elapsed().as_micros() as u64;
                i += 1;
                match verdict {
                    Ok(Verdict::Skip) => {
                        if plan.rate.is_none() {
                            // Nothing left to send for this worker.
                            break;
                        }
                        continue;
                    }
                    Ok(Verdict::Ok(label)) => *s.counts.entry(label).or_default() += 1,
                    Ok(Verdict::Err(e)) => {
                        s.errors += 1;
                        if s.error_examples.len() < 5 {
                            s.error_examples.push(e);
                        }
                    }
                    Err(_) => {
                        s.errors += 1;
                        *s.counts.entry("timeout".into()).or_default() += 1;
                    }
                }
                s.latencies_us.push(took);
            }
            (s, Instant::now())
        });
    }
    let mut total = Sample::default();
    let mut last = start;
    while let Some(r) = workers.join_next().await {
        if let Ok((s, ended)) = r {
            last = last.max(ended);
            total.merge(s);
        }
    }
    // A pool that ran out early ends the measurement early.
    total.elapsed = last.duration_since(start);
    total
}

/// The verdict for an answer expected with `want` status.
pub fn expect(r: Result<Reply, String>, want: u16, label: &str) -> Verdict {
    match r {
        Ok(r) if r.status == want => Verdict::Ok(label.to_owned()),
        Ok(r) => Verdict::Err(format!(
            "status {} (wanted {want}): {}",
            r.status,
            String::from_utf8_lossy(&r.body[..r.body.len().min(200)])
        )),
        Err(e) => Verdict::Err(e),
    }
}
