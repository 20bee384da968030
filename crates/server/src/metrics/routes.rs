//! Per-route latency: a histogram for each route template (axum's `MatchedPath`,
//! never the path asked for, so no client can add a label value), method and status
//! class. The hot path takes no lock and allocates nothing once a series exists:
//! a fixed table of slots, each set once, found by hashing the labels; counts are
//! atomics.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Upper bounds of the buckets, in seconds: a page or code step answers in about a
/// millisecond, a password sign-in in tens (Argon2), a queue of them in seconds.
const BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Room for every (route, method, class) ever seen; far more than the router has.
const SLOTS: usize = 1024;
/// Slots looked at before a series counts under [`OVERFLOW`] instead.
const PROBES: usize = 64;

/// The route label of requests no route matched (the fallback's 404s).
pub const UNMATCHED: &str = "unmatched";
/// The route label of series that found no free slot (never expected).
const OVERFLOW: &str = "other";

/// One histogram.
#[derive(Debug)]
struct Series {
    route: Box<str>,
    method: &'static str,
    class: &'static str,
    /// Not cumulative: each observation counts in its own bucket; the last is +Inf.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Series {
    fn new(route: &str, method: &'static str, class: &'static str) -> Self {
        Self {
            route: route.into(),
            method,
            class,
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn is(&self, route: &str, method: &str, class: &str) -> bool {
        self.method == method && self.class == class && &*self.route == route
    }

    fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = BOUNDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BOUNDS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// Every route's histograms.
#[derive(Debug)]
pub struct RouteLatency {
    slots: Box<[OnceLock<Box<Series>>]>,
    overflow: Series,
}

impl Default for RouteLatency {
    fn default() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| OnceLock::new()).collect(),
            overflow: Series::new(OVERFLOW, "other", "other"),
        }
    }
}

impl RouteLatency {
    fn series(&self, route: &str, method: &'static str, class: &'static str) -> &Series {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (route, method, class).hash(&mut h);
        let start = h.finish() as usize;
        for i in 0..PROBES {
            let slot = &self.slots[(start % SLOTS + i) % SLOTS];
            let s = slot.get_or_init(|| Box::new(Series::new(route, method, class)));
            if s.is(route, method, class) {
                return s;
            }
        }
        &self.overflow
    }

    pub fn observe(&self, route: &str, method: &Method, status: StatusCode, took: Duration) {
        self.series(route, method_label(method), class_label(status))
            .observe(took);
    }
}

/// The methods HTTP defines; anything else is "other" (a client can send any token).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn class_label(s: StatusCode) -> &'static str {
    match s.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

impl Collector for RouteLatency {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut metric = encoder.encode_descriptor(
            "tweestap_http_request_duration_seconds",
            "Time to answer a request (to its headers), by route template, method and status class",
            None,
            MetricType::Histogram,
        )?;
        let taken = self.slots.iter().filter_map(|s| s.get().map(|b| &**b));
        let overflow = Some(&self.overflow).filter(|s| s.count() > 0);
        for s in taken.chain(overflow) {
            let labels = [
                ("route", &*s.route),
                ("method", s.method),
                ("status", s.class),
            ];
            let buckets: Vec<(f64, u64)> = BOUNDS
                .iter()
                .copied()
                .chain(std::iter::once(f64::INFINITY))
                .zip(s.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
                .collect();
            let count = buckets.iter().map(|(_, n)| n).sum();
            let sum = s.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            metric
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        Ok(())
    }
}

impl Series {
    fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }
}

/// The middleware: times every request of the router it wraps.
pub async fn track(State(latency): State<Arc<RouteLatency>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    // An Arc of the router's own string: no allocation.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let response = next.run(req).await;
    let route = route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    latency.observe(route, &method, response.status(), start.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_series_per_labels_and_a_full_table_overflows() {
        let l = RouteLatency::default();
        let ok = StatusCode::OK;
        l.observe("/login", &Method::GET, ok, Duration::from_micros(300));
        l.observe("/login", &Method::GET, ok, Duration::from_millis(30));
        l.observe("/login", &Method::POST, ok, Duration::from_secs(30));
        let s = l.series("/login", "GET", "2xx");
        assert_eq!(s.count(), 2);
        assert_eq!(s.buckets[0].load(Ordering::Relaxed), 1);
        assert_eq!(s.buckets[6].load(Ordering::Relaxed), 1);
        assert_eq!(
            l.series("/login", "POST", "2xx").buckets[14].load(Ordering::Relaxed),
            1
        );
        for i in 0..SLOTS + 10 {
            l.observe(&format!("/r{i}"), &Method::GET, ok, Duration::ZERO);
        }
        assert!(l.overflow.count() >= 10);
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
