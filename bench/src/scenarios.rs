//! The closed-loop scenarios: pages and API reads, the code step, the full sign-in.

use crate::load::{drive, expect, Http, Plan, Verdict};
use crate::seed::{Seeded, PASSWORD};
use crate::server::RssProbe;
use crate::stats::Summary;
use crate::BoxError;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tweestap_domain::session::SessionStage;

/// What every scenario needs.
#[derive(Clone)]
pub struct Ctx {
    pub http: Http,
    pub seeded: Arc<Seeded>,
    pub pid: u32,
    pub connections: usize,
    /// Connections that find the code step's maximum rate.
    pub saturating: usize,
    pub duration: Duration,
    /// The confidential OIDC client: id and secret.
    pub client: (String, String),
}

pub const CODE_PATH: &str = "/api/v1/login/second-factor";

impl Ctx {
    pub fn plan(&self) -> Plan {
        Plan {
            connections: self.connections,
            duration: self.duration,
            rate: None,
            timeout: Duration::from_secs(10),
        }
    }

    /// Half-signed-in sessions on the accounts that carry the wrong codes.
    pub async fn wrong_code_sessions(&self) -> Result<Arc<Vec<(usize, String)>>, BoxError> {
        let idx: Vec<usize> = (0..self.seeded.wrong).collect();
        let tokens = self
            .seeded
            .sessions(&idx, SessionStage::SecondFactor)
            .await?;
        Ok(Arc::new(idx.into_iter().zip(tokens).collect()))
    }
}

/// Runs `f` while sampling the server's memory; the summary carries the peak.
pub async fn measured<F>(pid: u32, f: F) -> Summary
where
    F: std::future::Future<Output = crate::stats::Sample>,
{
    let probe = RssProbe::start(pid);
    let sample = f.await;
    let peak = probe.peak_kb().await;
    sample.summary(peak)
}

/// A wrong code on one of the half-signed-in sessions, in turn: 401.
pub async fn wrong_code(
    http: &Http,
    seeded: &Seeded,
    sessions: &[(usize, String)],
    n: usize,
) -> Verdict {
    let (a, token) = &sessions[n % sessions.len()];
    let code = seeded.accounts[*a].wrong_code_now(n as u64 * 7919);
    let r = http
        .post_json(
            CODE_PATH,
            Some(token),
            &json!({"method": "totp", "code": code}),
        )
        .await;
    expect(r, 401, "refused")
}

/// The code step's measurements.
pub struct CodeStep {
    /// Wrong codes over the usual connections.
    pub wrong: Summary,
    /// Wrong codes over enough connections to find the maximum rate.
    pub saturated: Summary,
    /// Wrong codes sent at 70% of that maximum, whatever the answers' pace (an
    /// open loop): the latency a server running near capacity shows.
    pub paced: Summary,
    pub right: Summary,
    /// Right codes over the saturating connections.
    pub right_saturated: Summary,
}

/// The share of the maximum rate the paced run sends at.
pub const PACED_SHARE: f64 = 0.7;

/// The code step: wrong codes (at the usual connections, at the maximum, at 70% of
/// it), then right ones.
pub async fn code_step(ctx: &Ctx) -> Result<CodeStep, BoxError> {
    let sessions = ctx.wrong_code_sessions().await?;
    let wrong_codes = |plan: Plan| {
        let (http, seeded, sessions) = (ctx.http.clone(), ctx.seeded.clone(), sessions.clone());
        let conns = plan.connections;
        measured(
            ctx.pid,
            drive(plan, move |w, i| {
                let (http, seeded, sessions) = (http.clone(), seeded.clone(), sessions.clone());
                async move {
                    let n = i as usize * conns + w;
                    wrong_code(&http, &seeded, &sessions, n).await
                }
            }),
        )
    };
    let wrong = wrong_codes(ctx.plan()).await;
    let saturated = wrong_codes(Plan {
        connections: ctx.saturating,
        ..ctx.plan()
    })
    .await;
    let paced = wrong_codes(Plan {
        // Room for the answers that come late, so the pace holds.
        connections: ctx.saturating * 4,
        rate: Some((saturated.per_second * PACED_SHARE).max(1.0)),
        ..ctx.plan()
    })
    .await;
    let right = right_codes(ctx, ctx.plan()).await?;
    let right_saturated = right_codes(
        ctx,
        Plan {
            connections: ctx.saturating,
            ..ctx.plan()
        },
    )
    .await?;
    Ok(CodeStep {
        wrong,
        saturated,
        paced,
        right,
        right_saturated,
    })
}

/// Right codes, each on its own half-signed-in session of an account whose code
/// of this step is unused: 200, and the session becomes a signed-in one.
async fn right_codes(ctx: &Ctx, plan: Plan) -> Result<Summary, BoxError> {
    let want = ctx.seeded.accounts.len() - ctx.seeded.wrong;
    let mut idx = Vec::new();
    while idx.len() < want.min(ctx.seeded.right_per_run) {
        match ctx.seeded.take_fresh() {
            Some(i) => idx.push(i),
            None => break,
        }
    }
    if idx.is_empty() {
        return Err(
            "no account has an unused code in this time step: seed more (--accounts)".into(),
        );
    }
    let tokens = ctx
        .seeded
        .sessions(&idx, SessionStage::SecondFactor)
        .await?;
    let prepared: Arc<Vec<(usize, String)>> = Arc::new(idx.into_iter().zip(tokens).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let (http, seeded) = (ctx.http.clone(), ctx.seeded.clone());
    Ok(measured(
        ctx.pid,
        drive(plan, move |_, _| {
            let (http, seeded, prepared, next) =
                (http.clone(), seeded.clone(), prepared.clone(), next.clone());
            async move {
                let Some((a, token)) = prepared.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    return Verdict::Skip;
                };
                let code = seeded.accounts[*a].code_now();
                let r = http
                    .post_json(
                        CODE_PATH,
                        Some(token),
                        &json!({"method": "totp", "code": code}),
                    )
                    .await;
                expect(r, 200, "accepted")
            }
        }),
    )
    .await)
}

/// The whole sign-in of one person: password, then the app's code.
pub async fn sign_in_journey(http: &Http, seeded: &Seeded) -> Verdict {
    let Some(a) = seeded.take_fresh() else {
        return Verdict::Skip;
    };
    let account = &seeded.accounts[a];
    let r = http
        .post_json(
            "/api/v1/login",
            None,
            &json!({"email": account.email, "password": PASSWORD}),
        )
        .await;
    let cookie = match r {
        Ok(r) if r.status == 200 => match r.cookie("tweestap_session") {
            Some(c) => c,
            None => return Verdict::Err("the password step set no session cookie".into()),
        },
        other => return expect(other, 200, ""),
    };
    let code = account.code_now();
    let r = http
        .post_json(
            CODE_PATH,
            Some(&cookie),
            &json!({"method": "totp", "code": code}),
        )
        .await;
    expect(r, 200, "signed_in")
}

/// Password and code, a different person each time.
pub async fn sign_in(ctx: &Ctx, plan: Plan) -> Summary {
    let (http, seeded) = (ctx.http.clone(), ctx.seeded.clone());
    measured(
        ctx.pid,
        drive(plan, move |_, _| {
            let (http, seeded) = (http.clone(), seeded.clone());
            async move { sign_in_journey(&http, &seeded).await }
        }),
    )
    .await
}

/// The reads: (row name, path, how it authenticates).
pub const PAGES: [(&str, &str, Auth); 5] = [
    ("Sign-in page (`GET /login`)", "/login", Auth::None),
    ("Profile page (`GET /account`)", "/account", Auth::Cookie),
    ("`GET /api/v1/me`", "/api/v1/me", Auth::Cookie),
    (
        "Forward-auth (`GET /auth/request`)",
        "/auth/request",
        Auth::Cookie,
    ),
    (
        "OIDC userinfo (`GET /oidc/userinfo`)",
        "/oidc/userinfo",
        Auth::Bearer,
    ),
];

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    Cookie,
    Bearer,
}

/// Each read on its own, signed in with one session per connection (and an access
/// token from the code flow for userinfo).
pub async fn pages(ctx: &Ctx) -> Result<Vec<(String, Summary)>, BoxError> {
    let idx: Vec<usize> = (0..ctx.connections.max(1)).collect();
    let cookies = Arc::new(
        ctx.seeded
            .sessions(&idx, SessionStage::Authenticated)
            .await?,
    );
    let bearer = Arc::new(access_token(ctx, &cookies[0]).await?);
    let mut out = Vec::new();
    for (name, path, auth) in PAGES {
        let (http, cookies, bearer) = (ctx.http.clone(), cookies.clone(), bearer.clone());
        let s = measured(
            ctx.pid,
            drive(ctx.plan(), move |w, _| {
                let (http, cookies, bearer) = (http.clone(), cookies.clone(), bearer.clone());
                async move { read(&http, path, auth, &cookies[w % cookies.len()], &bearer).await }
            }),
        )
        .await;
        out.push((name.to_owned(), s));
    }
    Ok(out)
}

pub async fn read(http: &Http, path: &str, auth: Auth, cookie: &str, bearer: &str) -> Verdict {
    let header = match auth {
        Auth::None => None,
        Auth::Cookie => Some(("cookie", format!("tweestap_session={cookie}"))),
        Auth::Bearer => Some(("authorization", format!("Bearer {bearer}"))),
    };
    let headers: Vec<(&str, &str)> = header.iter().map(|(k, v)| (*k, v.as_str())).collect();
    expect(http.get(path, &headers).await, 200, "ok")
}

/// An access token through the authorization code flow, signed in with `cookie`.
pub async fn access_token(ctx: &Ctx, cookie: &str) -> Result<String, BoxError> {
    let (id, secret) = &ctx.client;
    let redirect = "http://127.0.0.1:9/cb";
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", id),
            ("redirect_uri", redirect),
            ("scope", "openid email profile"),
            ("state", "bench"),
            ("nonce", "bench"),
        ])
        .finish();
    let c = format!("tweestap_session={cookie}");
    let r = ctx
        .http
        .get(&format!("/oidc/authorize?{q}"), &[("cookie", &c)])
        .await?;
    let location = r
        .location
        .ok_or_else(|| format!("authorize answered {} without a redirect", r.status))?;
    let code = url::Url::parse(&location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| format!("no code in {location}"))?;
    let basic = data_encoding::BASE64.encode(format!("{id}:{secret}").as_bytes());
    let r = ctx
        .http
        .post_form(
            "/oidc/token",
            &[("authorization", &format!("Basic {basic}"))],
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
            ],
        )
        .await?;
    let v: serde_json::Value = serde_json::from_slice(&r.body)?;
    Ok(v["access_token"]
        .as_str()
        .ok_or_else(|| format!("token answered {}: {v}", r.status))?
        .to_owned())
}
