//! Delivers back-channel logout tokens (OIDC Back-Channel Logout 1.0, 2.5): a form
//! POST of `logout_token` to each portal's registered URI, from the durable queue,
//! by a worker on every node (claims keep them apart).

use reqwest::redirect::Policy;
use std::sync::Arc;
use std::time::Duration;
use tweestap_domain::oidc::backchannel::LogoutDelivery;
use tweestap_domain::Tweestap;

/// How long a portal may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client: no redirects followed (2.5: a logout token goes where it was
/// registered to go, nowhere else), no cookies, rustls.
pub fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("tweestap/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// POSTs one logout token; 200 (or 204) is delivered, anything else a failure to
/// retry.
pub async fn post(http: &reqwest::Client, uri: &str, logout_token: &str) -> LogoutDelivery {
    let sent = http
        .post(uri)
        .header(reqwest::header::CACHE_CONTROL, "no-store")
        .form(&[("logout_token", logout_token)])
        .send()
        .await;
    match sent {
        Ok(r) if r.status().as_u16() == 200 || r.status().as_u16() == 204 => {
            LogoutDelivery::Delivered
        }
        Ok(r) => LogoutDelivery::Failed(format!("the portal answered {}", r.status())),
        Err(e) if e.is_timeout() => {
            LogoutDelivery::Failed("the portal did not answer in time".into())
        }
        Err(e) => LogoutDelivery::Failed(format!("cannot reach the portal: {e}")),
    }
}

/// Delivers due logout tokens until aborted: at once when this node queues one,
/// otherwise every `poll` (for those queued on other nodes, by the command line,
/// and for retries).
pub async fn run_worker(app: Arc<Tweestap>, issuer: String, poll: Duration) {
    // Made for the first logout to deliver: most servers never send one, and the
    // client (TLS set-up, root certificates) is code and memory kept for nothing
    // otherwise (issue 19, the idle footprint).
    let mut http: Option<reqwest::Client> = None;
    let wake = app.logout_wakeup().clone();
    loop {
        let claimed = match app.claim_logouts(10).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the logout queue");
                Vec::new()
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
            continue;
        }
        let http = match &http {
            Some(c) => c.clone(),
            None => match client() {
                Ok(c) => http.insert(c).clone(),
                Err(e) => {
                    tracing::error!(error = %e, "cannot build the back-channel logout client; logout tokens stay queued");
                    return;
                }
            },
        };
        // All at once: a portal that hangs holds up nobody else, and the batch ends
        // within one timeout, well inside the claim's lease.
        let mut sending = tokio::task::JoinSet::new();
        for q in claimed {
            let (app, http, issuer) = (app.clone(), http.clone(), issuer.clone());
            sending.spawn(async move {
                let outcome = match app.logout_post(&issuer, &q).await {
                    Ok(Some(p)) => post(&http, &p.uri, &p.logout_token).await,
                    Ok(None) => return,
                    Err(e) => LogoutDelivery::Failed(format!("cannot sign the logout token: {e}")),
                };
                if let Err(e) = app.record_logout(&q, &outcome).await {
                    tracing::error!(client = %q.client_id, error = %e, "cannot record a back-channel logout");
                }
            });
        }
        while sending.join_next().await.is_some() {}
    }
}
