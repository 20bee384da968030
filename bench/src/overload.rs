//! A flood of wrong passwords beyond what the machine can hash, while other people
//! take code steps and load pages: the cheap steps must not starve, the flood must
//! be refused fast, and memory must stay bounded and come back.

use crate::load::{drive, Plan, Verdict};
use crate::scenarios::{read, wrong_code, Auth, Ctx};
use crate::server::{memory_kb, RssProbe};
use crate::stats::Summary;
use crate::BoxError;
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tweestap_domain::session::SessionStage;

#[derive(Debug, Clone, Serialize, Default)]
pub struct Overload {
    /// Password attempts per second aimed at the server.
    pub flood_target_per_second: f64,
    pub flood: Summary,
    /// Code steps of other people during the flood.
    pub code: Summary,
    /// Page loads (`/api/v1/me`, `/login`) during the flood.
    pub pages: Summary,
    pub rss_before_mb: f64,
    pub rss_peak_mb: f64,
    pub rss_after_mb: f64,
    pub settle_seconds: f64,
}

impl Overload {
    /// Answers refused fast (429 or 503), and how many of them said `Retry-After`.
    pub fn refused(&self) -> (u64, u64, u64) {
        let c = |k: &str| self.flood.counts.get(k).copied().unwrap_or(0);
        (
            c("429") + c("429 without Retry-After"),
            c("503") + c("503 without Retry-After"),
            c("429") + c("503"),
        )
    }
}

pub async fn run(
    ctx: &Ctx,
    argon_rate: f64,
    factor: f64,
    flood_connections: usize,
    settle: Duration,
) -> Result<Overload, BoxError> {
    let sessions = ctx.wrong_code_sessions().await?;
    let cookies = Arc::new(
        ctx.seeded
            .sessions(&[0, 1], SessionStage::Authenticated)
            .await?,
    );
    let rss_before_mb = memory_kb(ctx.pid).0 as f64 / 1024.0;
    let rate = (argon_rate * factor).max(1.0);
    let flood_plan = Plan {
        connections: flood_connections,
        duration: ctx.duration,
        rate: Some(rate),
        timeout: Duration::from_secs(5),
    };
    let others = Plan {
        connections: 2,
        ..ctx.plan()
    };
    let probe = RssProbe::start(ctx.pid);
    let (http, seeded) = (ctx.http.clone(), ctx.seeded.clone());
    let flood = drive(flood_plan, move |w, i| {
        let (http, seeded) = (http.clone(), seeded.clone());
        async move {
            // Half for existing accounts, half for unknown addresses.
            let n = i as usize * 131 + w;
            let email = if n.is_multiple_of(2) {
                seeded.accounts[n % seeded.accounts.len()].email.clone()
            } else {
                format!("nobody{n}@example.org")
            };
            let r = http
                .post_json(
                    "/api/v1/login",
                    None,
                    &json!({"email": email, "password": "not the password at all"}),
                )
                .await;
            match r {
                Ok(r) if r.status == 401 => Verdict::Ok("401".into()),
                Ok(r) if r.status == 429 || r.status == 503 => Verdict::Ok(if r.retry_after {
                    r.status.to_string()
                } else {
                    format!("{} without Retry-After", r.status)
                }),
                Ok(r) => Verdict::Err(format!("flood answered {}", r.status)),
                Err(e) => Verdict::Err(e),
            }
        }
    });
    let (http, seeded) = (ctx.http.clone(), ctx.seeded.clone());
    let conns = others.connections;
    let code = drive(others, move |w, i| {
        let (http, seeded, sessions) = (http.clone(), seeded.clone(), sessions.clone());
        async move { wrong_code(&http, &seeded, &sessions, i as usize * conns + w).await }
    });
    let http = ctx.http.clone();
    let pages = drive(others, move |w, i| {
        let (http, cookies) = (http.clone(), cookies.clone());
        async move {
            let (path, auth) = if i % 2 == 0 {
                ("/api/v1/me", Auth::Cookie)
            } else {
                ("/login", Auth::None)
            };
            read(&http, path, auth, &cookies[w % cookies.len()], "").await
        }
    });
    let (flood, code, pages) = tokio::join!(flood, code, pages);
    let peak = probe.peak_kb().await;
    tokio::time::sleep(settle).await;
    let rss_after_mb = memory_kb(ctx.pid).0 as f64 / 1024.0;
    Ok(Overload {
        flood_target_per_second: rate,
        flood: flood.summary(peak),
        code: code.summary(peak),
        pages: pages.summary(peak),
        rss_before_mb,
        rss_peak_mb: peak as f64 / 1024.0,
        rss_after_mb,
        settle_seconds: settle.as_secs_f64(),
    })
}
