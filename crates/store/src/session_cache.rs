//! The signed-in sessions and portal tokens looked up in the last few seconds,
//! kept (issue 19).
//!
//! Every signed-in request looks its session up, every `userinfo` its access
//! token. On PostgreSQL that read is a round trip, and a third of the machine's
//! time went to the database server answering it; on SQLite it is a few µs
//! in-process (`sqlite_inline`), but the join, its rows and their decoding were
//! still a fifth of a page's time. So a store keeps what it read, for `ttl`,
//! and serves it again while nothing could have changed it.
//!
//! "Nothing changed" is decided by one generation number, never by the clock
//! alone. On PostgreSQL:
//! - every statement this node writes moves it on (after the statement, or the
//!   transaction's commit): a sign-out answered here is never followed by a
//!   cached "still signed in" here;
//! - every node's writes (and `tweestap` commands', psql's) reach it through
//!   PostgreSQL: triggers on the tables a lookup reads (migration 0018) `NOTIFY`
//!   at commit (all but the writes nothing kept depends on: see there), and
//!   this node's listener (`session_listener`) moves the generation on when it
//!   hears one (its own too: a write whose request was dropped half-way may
//!   commit after the statement's own move);
//! - while the listener cannot vouch for hearing them (not connected yet, lost,
//!   its heartbeat not heard back yet on a new connection, or not for
//!   [`DEAF_AFTER`], shorter than an entry's life), nothing is served or kept;
//!   on hearing again it moves the generation on, so nothing read before
//!   counts.
//!
//! On SQLite ([`SessionCache::local`]) there is no one to listen to, and no
//! need: before it serves an entry, the cache asks the database file itself
//! whether any connection (the store's writer, another process's) committed
//! since it last asked ([`Inline::changed`], SQLite's `data_version`), and
//! moves the generation on if so. That look is a read's start without the
//! read, and only a hit pays it: no window at all, where PostgreSQL's is a
//! notification's way.
//!
//! A read takes the generation before it asks the database and is kept only
//! under it, so a read that raced a write is never served after that write.
//! What is left on PostgreSQL is the time a notification takes from another
//! node's commit to this node's listener (well under a millisecond on one
//! network), during which a session revoked there can be accepted here, as it
//! could without a cache by a request already under way. Lookups that find
//! nothing are not kept.

use crate::sqlite_inline::Inline;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};
use tweestap_domain::account::Account;
use tweestap_domain::oidc::flow::TokenFacts;
use tweestap_domain::session::Session;
use tweestap_domain::store::SecondSteps;

/// Entries kept at most: beyond, the stale ones go, and if that is not enough,
/// all (a burst of new sessions costs their lookups, not memory).
const CAPACITY: usize = 20_000;

/// The listener is not trusted once nothing has come back on it for this long
/// (it sends a heartbeat every half second): less than any entry's life of a
/// second or more, so a stalled listener stops the cache before a kept entry
/// outlives what it could have missed.
pub(crate) const DEAF_AFTER: Duration = Duration::from_millis(1_500);

/// What a lookup read: the session and its account, and maybe the second steps.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub session: Session,
    pub account: Account,
    pub steps: Option<SecondSteps>,
}

/// The cache of one node's store; clones share it.
#[derive(Clone)]
pub(crate) struct SessionCache {
    shared: Arc<Shared>,
}

/// Counts only: the entries hold password hashes and sealed secrets.
impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.entries();
        f.debug_struct("SessionCache")
            .field("ttl", &self.shared.ttl)
            .field("generation", &entries.generation)
            .field("entries", &entries.map.len())
            .finish()
    }
}

struct Shared {
    ttl: Duration,
    born: Instant,
    /// SQLite's database file, asked before each hit; no listener then.
    file: Option<Inline>,
    /// Whether the listener is connected and listening.
    listening: AtomicBool,
    /// When something was last heard on the listener, in ms since `born`.
    heard_ms: AtomicU64,
    entries: Mutex<Entries>,
}

impl Shared {
    /// Milliseconds since `born` (what `heard_ms` counts in).
    fn now_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

#[derive(Default)]
struct Entries {
    generation: u64,
    map: HashMap<String, Entry>,
}

struct Entry {
    generation: u64,
    at: Instant,
    value: Arc<Value>,
}

/// What an entry keeps (their keys are token hashes, of different tokens).
enum Value {
    Session(Found),
    Token(TokenFacts),
}

/// What a lookup takes before it reads: the generation its read belongs to, and
/// when it began (an entry's life counts from there: a lookup read as of
/// "now + ttl" holds for `ttl` from the caller's now, not from its answer).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(u64, Instant);

impl SessionCache {
    /// An empty cache keeping entries for `ttl`; deaf until the listener says
    /// otherwise ([`Self::listening`]).
    pub(crate) fn new(ttl: Duration) -> Self {
        Self::made(ttl, None)
    }

    /// An empty cache keeping entries for `ttl` read from the SQLite database
    /// file `file` reads, which it asks for commits before each hit.
    pub(crate) fn local(ttl: Duration, file: Inline) -> Self {
        Self::made(ttl, Some(file))
    }

    fn made(ttl: Duration, file: Option<Inline>) -> Self {
        Self {
            shared: Arc::new(Shared {
                ttl,
                born: Instant::now(),
                file,
                listening: AtomicBool::new(false),
                heard_ms: AtomicU64::new(0),
                entries: Mutex::default(),
            }),
        }
    }

    /// A handle that does not keep the cache alive (the listener's).
    pub(crate) fn downgrade(&self) -> WeakCache {
        WeakCache(Arc::downgrade(&self.shared))
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.shared
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the listener can vouch for hearing other nodes' writes now (a
    /// local cache asks the file instead).
    fn hearing(&self) -> bool {
        self.shared.file.is_some()
            || (self.shared.listening.load(Ordering::Acquire) && self.deaf_for() < DEAF_AFTER)
    }

    /// How long entries are kept.
    pub(crate) fn ttl(&self) -> Duration {
        self.shared.ttl
    }

    /// The value with `key`, if kept, still fresh, and read under the current
    /// generation (on SQLite: with every commit so far accounted for).
    fn get(&self, key: &str) -> Option<Arc<Value>> {
        if !self.hearing() {
            return None;
        }
        if let Some(file) = &self.shared.file {
            // A miss needs no look: what a lookup then reads is as of now.
            self.fresh(key)?;
            // The look before the entry is taken, not after: a commit seen by
            // another lookup's look in between would go unnoticed by this one.
            match file.changed(|| self.changed()) {
                Ok(false) => {}
                Ok(true) | Err(_) => return None,
            }
        }
        self.fresh(key)
    }

    /// The value with `key`, if kept, still fresh, and read under the current
    /// generation, as far as this cache knows.
    fn fresh(&self, key: &str) -> Option<Arc<Value>> {
        let entries = self.entries();
        let e = entries.map.get(key)?;
        let fresh = e.generation == entries.generation && e.at.elapsed() < self.shared.ttl;
        fresh.then(|| e.value.clone())
    }

    /// The session with the hash `key`, if kept; with its second steps when
    /// `steps` asks for them.
    pub(crate) fn session(&self, key: &str, steps: bool) -> Option<Found> {
        match &*self.get(key)? {
            Value::Session(f) if !steps || f.steps.is_some() => Some(f.clone()),
            _ => None,
        }
    }

    /// The portal token with the hash `key`, if kept.
    pub(crate) fn token(&self, key: &str) -> Option<TokenFacts> {
        match &*self.get(key)? {
            Value::Token(t) => Some(t.clone()),
            Value::Session(_) => None,
        }
    }

    /// Taken before a lookup reads the database; `None` when nothing may be kept.
    pub(crate) fn ticket(&self) -> Option<Ticket> {
        self.hearing()
            .then(|| Ticket(self.entries().generation, Instant::now()))
    }

    /// Keeps the session a lookup read under `ticket`, unless something was
    /// written since.
    pub(crate) fn keep_session(&self, key: &str, ticket: Ticket, found: Found) {
        self.keep(key, ticket, Value::Session(found));
    }

    /// Keeps the portal token a lookup read under `ticket`, unless something was
    /// written since.
    pub(crate) fn keep_token(&self, key: &str, ticket: Ticket, facts: TokenFacts) {
        self.keep(key, ticket, Value::Token(facts));
    }

    fn keep(&self, key: &str, ticket: Ticket, value: Value) {
        if !self.hearing() {
            return;
        }
        let mut entries = self.entries();
        if entries.generation != ticket.0 {
            return;
        }
        if entries.map.len() >= CAPACITY {
            let ttl = self.shared.ttl;
            entries.map.retain(|_, e| e.at.elapsed() < ttl);
            if entries.map.len() >= CAPACITY {
                entries.map.clear();
            }
        }
        let generation = entries.generation;
        entries.map.insert(
            key.to_owned(),
            Entry {
                generation,
                at: ticket.1,
                value: Arc::new(value),
            },
        );
    }

    /// Something was written (here, or on another node): nothing read before
    /// counts.
    pub(crate) fn changed(&self) {
        let mut entries = self.entries();
        entries.generation = entries.generation.wrapping_add(1);
        entries.map.clear();
    }

    /// The listener's connection was lost (`false`) or is new (`true`). Either
    /// way what was read before counts no more: writes may have gone unheard.
    /// A new connection is trusted only once something comes back on it
    /// ([`Self::heard`]): the listener sends a heartbeat at once.
    pub(crate) fn listening(&self, on: bool) {
        if !on {
            self.shared.listening.store(false, Ordering::Release);
        }
        self.changed();
    }

    /// How long nothing has come back on the listener's connection.
    pub(crate) fn deaf_for(&self) -> Duration {
        let s = &self.shared;
        Duration::from_millis(
            s.now_ms()
                .saturating_sub(s.heard_ms.load(Ordering::Acquire)),
        )
    }

    /// Something came back on the listener's connection: it is alive.
    pub(crate) fn heard(&self) {
        let s = &self.shared;
        let deaf = !self.hearing();
        // Deaf for a while, the listener may have missed nothing (a slow
        // network delivers late, not never), but entries were not served
        // meanwhile either; starting afresh is the simple rule, and voided
        // before the listener counts as hearing again.
        if deaf {
            self.changed();
        }
        s.heard_ms.store(s.now_ms(), Ordering::Release);
        s.listening.store(true, Ordering::Release);
    }
}

/// The cache as the listener holds it: the listener stops when the store is gone.
#[derive(Clone)]
pub(crate) struct WeakCache(Weak<Shared>);

impl WeakCache {
    pub(crate) fn upgrade(&self) -> Option<SessionCache> {
        self.0.upgrade().map(|shared| SessionCache { shared })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::Utc;
    use tweestap_domain::account::{AccountId, Email, Role};
    use tweestap_domain::session::SessionStage;

    /// A signed-in session and its account.
    pub(crate) fn found() -> Found {
        let now = Utc::now();
        let account = Account {
            id: AccountId(uuid::Uuid::new_v4()),
            email: Email::parse("an@example.com").unwrap(),
            name: "An".into(),
            role: Role::User,
            password_hash: String::new(),
            created_at: now,
            code_failures: 0,
            code_locked_until: None,
            password_failures: 0,
            password_locked_until: None,
            language: Default::default(),
            disabled_at: None,
        };
        let session = Session {
            id_hash: tweestap_domain::token::TokenHash("h".into()),
            account_id: account.id,
            stage: SessionStage::Authenticated,
            created_at: now,
            last_seen_at: now,
            auth_time: now,
            amr: "pwd otp".into(),
            ip: None,
            user_agent: None,
            sid: "sid".into(),
        };
        Found {
            session,
            account,
            steps: None,
        }
    }

    fn hearing_cache(ttl: Duration) -> SessionCache {
        let c = SessionCache::new(ttl);
        c.listening(true);
        c.heard();
        c
    }

    /// A cache made a minute ago, so that "heard at 0 ms" is long past.
    fn old_hearing_cache() -> SessionCache {
        let c = hearing_cache(Duration::from_secs(600));
        let Ok(mut shared) = Arc::try_unwrap(c.shared) else {
            unreachable!("the only handle")
        };
        shared.born = Instant::now().checked_sub(Duration::from_secs(60)).unwrap();
        let c = SessionCache {
            shared: Arc::new(shared),
        };
        c.heard();
        c
    }

    #[test]
    fn kept_reads_are_served_until_a_write() {
        let c = hearing_cache(Duration::from_secs(60));
        let t = c.ticket().unwrap();
        c.keep_session("k", t, found());
        assert!(c.session("k", false).is_some());
        assert!(c.session("k", true).is_none(), "kept without steps");
        c.changed();
        assert!(c.session("k", false).is_none());
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_kept() {
        let c = hearing_cache(Duration::from_secs(60));
        let t = c.ticket().unwrap();
        c.changed();
        c.keep_session("k", t, found());
        assert!(c.session("k", false).is_none());
    }

    #[test]
    fn entries_expire() {
        let c = hearing_cache(Duration::from_millis(30));
        c.keep_session("k", c.ticket().unwrap(), found());
        std::thread::sleep(Duration::from_millis(40));
        assert!(c.session("k", false).is_none());
    }

    #[test]
    fn nothing_is_kept_or_served_without_a_listener() {
        let c = SessionCache::new(Duration::from_secs(60));
        assert!(c.ticket().is_none());
        c.listening(true);
        assert!(c.ticket().is_none(), "not before something came back");
        c.heard();
        let t = c.ticket().unwrap();
        c.keep_session("k", t, found());
        assert!(c.session("k", false).is_some());
        c.listening(false);
        assert!(c.session("k", false).is_none());
        c.listening(true);
        assert!(c.ticket().is_none(), "a new connection, not heard yet");
        c.heard();
        assert!(
            c.session("k", false).is_none(),
            "what was read before is void"
        );
        c.keep_session("k", t, found());
        assert!(
            c.session("k", false).is_none(),
            "an old ticket keeps nothing"
        );
    }

    #[test]
    fn a_listener_not_heard_from_is_not_trusted() {
        let c = old_hearing_cache();
        c.keep_session("k", c.ticket().unwrap(), found());
        assert!(c.session("k", false).is_some());
        // As if the last heartbeat came back a minute ago.
        c.shared.heard_ms.store(0, Ordering::Release);
        assert!(c.session("k", false).is_none());
        assert!(c.ticket().is_none());
        c.heard();
        assert!(
            c.session("k", false).is_none(),
            "what was read before is void"
        );
        assert!(c.ticket().is_some());
    }

    #[test]
    fn the_cache_is_bounded() {
        let c = hearing_cache(Duration::from_secs(60));
        for i in 0..CAPACITY + 10 {
            c.keep_session(&i.to_string(), c.ticket().unwrap(), found());
        }
        assert!(c.entries().map.len() <= CAPACITY);
    }
}
