//! The session cache's ear: PostgreSQL's notifications of writes made by other
//! nodes (and by `tweestap` commands), on a connection of its own.
//!
//! The triggers of migration 0018 notify [`CHANNEL`] at the commit of a write
//! that can change a kept lookup; each one heard voids the cache. Every half
//! second the listener sends a heartbeat on the same channel through its own
//! connection; something coming back proves the connection still delivers. A new
//! connection, one lost, or one on which nothing came back for
//! [`DEAF_AFTER`] makes the cache deaf (it serves nothing) until it hears again;
//! deaf for twice that, the listener connects afresh.

use crate::session_cache::{SessionCache, WeakCache, DEAF_AFTER};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use std::time::{Duration, Instant};

/// The channel the triggers notify.
pub(crate) const CHANNEL: &str = "tweestap_changed";

/// The payload of a heartbeat: not a change.
const HEARTBEAT: &str = "heartbeat";

/// How often a heartbeat is sent, whatever else comes in.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(500);

/// The wait before connecting again after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// Listens for `cache` on the server `opts` name for as long as the cache lives.
pub(crate) fn start(opts: PgConnectOptions, cache: &SessionCache) {
    let weak = cache.downgrade();
    tokio::spawn(async move {
        loop {
            match listen(&opts).await {
                Ok(listener) => {
                    let Some(cache) = weak.upgrade() else { return };
                    cache.listening(true);
                    drop(cache);
                    hear(listener, &weak).await;
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "the session cache cannot listen to PostgreSQL; sessions are read every time"
                ),
            }
            let Some(cache) = weak.upgrade() else { return };
            cache.listening(false);
            drop(cache);
            tokio::time::sleep(RETRY).await;
        }
    });
}

async fn listen(opts: &PgConnectOptions) -> Result<PgListener, sqlx::Error> {
    // As `PgListener::connect` does, from options rather than a URL (the store's
    // own, TLS included).
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_with(opts.clone())
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    // The pool is this listener's alone and never closed.
    listener.ignore_pool_close_event(true);
    // A lost connection ends `hear`, which connects afresh: nothing is missed
    // unknowingly in between.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Hears notifications until the connection is lost, stops delivering, or the
/// cache is gone.
async fn hear(mut listener: PgListener, weak: &WeakCache) {
    // The first heartbeat at once: the connection is trusted when it is back.
    let mut sent: Option<Instant> = None;
    let connected = Instant::now();
    loop {
        if sent.is_none_or(|at| at.elapsed() >= HEARTBEAT_EVERY) {
            let Some(cache) = weak.upgrade() else { return };
            if cache.deaf_for().min(connected.elapsed()) >= DEAF_AFTER * 2 {
                tracing::warn!(
                    "the session cache's heartbeats stopped coming back; listening afresh"
                );
                return;
            }
            drop(cache);
            if !heartbeat(&mut listener).await {
                return;
            }
            sent = Some(Instant::now());
        }
        let wait = sent.map_or(HEARTBEAT_EVERY, |at| {
            HEARTBEAT_EVERY.saturating_sub(at.elapsed())
        });
        // `try_recv` is cancel-safe while connected (a message is taken whole or
        // not at all); when the connection is lost it returns `None` at once.
        let heard = tokio::time::timeout(wait, listener.try_recv()).await;
        let Some(cache) = weak.upgrade() else { return };
        match heard {
            Ok(Ok(Some(n))) => {
                cache.heard();
                // The node's own writes too: one whose request was dropped
                // half-way (the client went) may commit after its own voiding.
                if n.payload() != HEARTBEAT {
                    cache.changed();
                }
            }
            Ok(Ok(None)) => {
                tracing::warn!("the session cache's PostgreSQL connection was lost");
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the session cache's PostgreSQL connection failed");
                return;
            }
            Err(_time_for_a_heartbeat) => {}
        }
    }
}

/// Sends a heartbeat on the listener's own connection; false if that failed.
async fn heartbeat(listener: &mut PgListener) -> bool {
    let sent = sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(HEARTBEAT)
        .execute(&mut *listener);
    match tokio::time::timeout(DEAF_AFTER, sent).await {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the session cache's heartbeat failed");
            false
        }
        Err(_) => {
            tracing::warn!("the session cache's heartbeat could not be sent in time");
            false
        }
    }
}
