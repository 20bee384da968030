//! Prometheus metrics (`[metrics]`, off by default): per-route latency, sign-in
//! outcomes (told by the engine through its audit seam, [`Observer`]), lock-outs,
//! SMS sends, and, read at each scrape, the mail queue and the password-hashing
//! places. Counting costs an atomic add; nothing is locked or allocated per request.

mod routes;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use tweestap_domain::audit::AuditEvent;
use tweestap_domain::observe::{
    CodeMethod, CodeOutcome, LockKind, Observer, PasswordOutcome, Signal,
};
use tweestap_domain::sms::{SmsMessage, SmsOutcome, SmsSender};
use tweestap_domain::Tweestap;

pub use routes::{track, RouteLatency, UNMATCHED};

/// The exposition's media type (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];

const METHODS: [&str; 5] = ["app", "sms", "passkey", "recovery", "code"];
const OUTCOMES: [&str; 4] = ["ok", "wrong", "replayed", "locked"];

/// Every metric of a node.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    latency: Arc<RouteLatency>,
    password: [Counter; 3],
    /// By method, then outcome ([`METHODS`], [`OUTCOMES`]).
    second_factor: [[Counter; 4]; 5],
    /// At sign-in, while setting a factor up.
    code_failures: [Counter; 2],
    lockouts: [Counter; 2],
    sms_sent: [Counter; 2],
    sms_in_flight: Gauge,
    mail_queued: Gauge,
    mail_failed: Gauge,
    logouts_pending: Gauge,
    hashes_running: Gauge,
    hashes_peak: Gauge,
    hashes_waiting: Gauge,
    hashes_refused: Counter,
    /// Scrapes one at a time: each brings the refused count up to the engine's.
    scrape: tokio::sync::Mutex<()>,
}

/// A family with one labelled counter made now for each value (so each shows 0
/// from the start, and counting never looks the label up).
fn counters<const N: usize>(
    r: &mut Registry,
    name: &str,
    help: &str,
    label: &'static str,
    values: [&'static str; N],
) -> [Counter; N] {
    let family = Family::<Labels, Counter>::default();
    r.register(name, help, family.clone());
    values.map(|v| family.get_or_create(&[(label, v)]).clone())
}

fn gauge(r: &mut Registry, name: &str, help: &str) -> Gauge {
    let g = Gauge::default();
    r.register(name, help, g.clone());
    g
}

impl Metrics {
    /// `max_running`, `max_waiting`: the configured hashing places and queue.
    pub fn new(max_running: usize, max_waiting: usize) -> Self {
        let mut r = Registry::default();
        let latency = Arc::new(RouteLatency::default());
        r.register_collector(Box::new(latency.clone()));
        let password = counters(
            &mut r,
            "tweestap_password_checks",
            "Password checks (sign-ins, confirmations) by outcome; throttled: refused before the password was checked",
            "outcome",
            ["ok", "wrong", "throttled"],
        );
        let family = Family::<Labels2, Counter>::default();
        r.register(
            "tweestap_second_factor_checks",
            "Second factors given at sign-in, by method and outcome (method code: a wrong code, checked against the app and SMS alike)",
            family.clone(),
        );
        let second_factor = METHODS.map(|m| {
            OUTCOMES.map(|o| {
                family
                    .get_or_create(&[("method", m), ("outcome", o)])
                    .clone()
            })
        });
        let code_failures = counters(
            &mut r,
            "tweestap_code_failures",
            "Codes refused (wrong, replayed or locked), at sign-in or while setting a factor up",
            "stage",
            ["sign_in", "set_up"],
        );
        let lockouts = counters(
            &mut r,
            "tweestap_lockouts",
            "Lock-outs started, by guard (the code step, the password)",
            "guard",
            ["code", "password"],
        );
        let sms_sent = counters(
            &mut r,
            "tweestap_sms_sends",
            "SMS handed to the gateway, by outcome",
            "outcome",
            ["sent", "failed"],
        );
        let fixed = |r: &mut Registry, name: &str, help: &str, value: usize| {
            let g = gauge(r, name, help);
            g.set(i64::try_from(value).unwrap_or(i64::MAX));
        };
        fixed(
            &mut r,
            "tweestap_password_hashes_max_running",
            "Password hashes allowed at once ([password] max_concurrent_hashes)",
            max_running,
        );
        fixed(
            &mut r,
            "tweestap_password_hashes_max_waiting",
            "Password checks allowed to wait for a hashing place ([password] max_waiting_hashes)",
            max_waiting,
        );
        let hashes_refused = Counter::default();
        r.register(
            "tweestap_password_hashes_refused",
            "Password checks answered busy at once: every hashing place and the queue were taken",
            hashes_refused.clone(),
        );
        Self {
            sms_in_flight: gauge(
                &mut r,
                "tweestap_sms_in_flight",
                "SMS being handed to the gateway now",
            ),
            mail_queued: gauge(
                &mut r,
                "tweestap_mail_queue_depth",
                "Mail queued, not sent yet (every node's)",
            ),
            mail_failed: gauge(
                &mut r,
                "tweestap_mail_failed",
                "Mail given up on, still kept",
            ),
            logouts_pending: gauge(
                &mut r,
                "tweestap_backchannel_logouts_pending",
                "Back-channel logouts waiting to be delivered to portals",
            ),
            hashes_running: gauge(
                &mut r,
                "tweestap_password_hashes_running",
                "Password hashes running now",
            ),
            hashes_peak: gauge(
                &mut r,
                "tweestap_password_hashes_peak_running",
                "Most password hashes that ran at once since start",
            ),
            hashes_waiting: gauge(
                &mut r,
                "tweestap_password_hashes_waiting",
                "Password checks waiting for a hashing place now",
            ),
            hashes_refused,
            registry: r,
            latency,
            password,
            second_factor,
            code_failures,
            lockouts,
            sms_sent,
            scrape: tokio::sync::Mutex::new(()),
        }
    }

    /// The route latency table, for [`track`].
    pub fn latency(&self) -> Arc<RouteLatency> {
        self.latency.clone()
    }

    /// Reads what is not counted as it happens, then writes the exposition.
    pub async fn render(&self, app: &Tweestap) -> Result<String, std::fmt::Error> {
        let _one = self.scrape.lock().await;
        let load = app.password_hashing();
        let set = |g: &Gauge, v: usize| {
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        set(&self.hashes_running, load.running);
        set(&self.hashes_peak, load.peak_running);
        set(&self.hashes_waiting, load.waiting);
        self.hashes_refused
            .inc_by(load.refused.saturating_sub(self.hashes_refused.get()));
        match app.store().mail_counts().await {
            Ok(counts) => {
                let of = |s: &str| counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
                self.mail_queued
                    .set(i64::try_from(of("queued")).unwrap_or(i64::MAX));
                self.mail_failed
                    .set(i64::try_from(of("failed")).unwrap_or(i64::MAX));
            }
            Err(e) => tracing::warn!(error = %e, "metrics: counting the mail queue failed"),
        }
        match app.store().pending_logouts().await {
            Ok(n) => set(
                &self.logouts_pending,
                usize::try_from(n).unwrap_or(usize::MAX),
            ),
            Err(e) => tracing::warn!(error = %e, "metrics: counting pending logouts failed"),
        }
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl Observer for Metrics {
    fn audited(&self, event: AuditEvent, detail: Option<&str>) {
        let Some(signal) = Signal::of(event, detail) else {
            return;
        };
        match signal {
            Signal::Password(o) => {
                let i = match o {
                    PasswordOutcome::Ok => 0,
                    PasswordOutcome::Wrong => 1,
                    PasswordOutcome::Throttled => 2,
                };
                self.password[i].inc();
            }
            Signal::SecondFactor(m, o) => {
                let m = match m {
                    CodeMethod::App => 0,
                    CodeMethod::Sms => 1,
                    CodeMethod::Passkey => 2,
                    CodeMethod::Recovery => 3,
                    CodeMethod::Code => 4,
                };
                let o = match o {
                    CodeOutcome::Ok => 0,
                    CodeOutcome::Wrong => 1,
                    CodeOutcome::Replayed => 2,
                    CodeOutcome::Locked => 3,
                };
                self.second_factor[m][o].inc();
                if o != 0 {
                    self.code_failures[0].inc();
                }
            }
            Signal::SetUpCodeWrong => {
                self.code_failures[1].inc();
            }
            Signal::LockedOut(k) => {
                self.lockouts[usize::from(k == LockKind::Password)].inc();
            }
        }
    }
}

/// An SMS gateway whose sends are counted.
pub struct CountedSms {
    pub inner: Arc<dyn SmsSender>,
    pub metrics: Arc<Metrics>,
}

/// Counts a send in flight until dropped (also when the request goes away).
struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[async_trait]
impl SmsSender for CountedSms {
    async fn send(&self, msg: &SmsMessage) -> SmsOutcome {
        self.metrics.sms_in_flight.inc();
        let _flight = InFlight(&self.metrics.sms_in_flight);
        let outcome = self.inner.send(msg).await;
        let i = usize::from(!matches!(outcome, SmsOutcome::Sent { .. }));
        self.metrics.sms_sent[i].inc();
        outcome
    }
}

#[derive(Clone)]
struct Scrape {
    metrics: Arc<Metrics>,
    app: Arc<Tweestap>,
}

async fn scrape(State(s): State<Scrape>) -> Response {
    match s.metrics.render(&s.app).await {
        Ok(body) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `GET /metrics`.
pub fn router(metrics: Arc<Metrics>, app: Arc<Tweestap>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(Scrape { metrics, app })
}
