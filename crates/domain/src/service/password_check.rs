//! Every check of a password (sign-in, confirmations in a session, QR links), each
//! throttled as `lockout::throttle` describes: an attempt is taken before the answer
//! is known, in one statement per throttle, so requests in parallel check no more
//! than the throttles allow. (Recovery codes take theirs in `devices`.)

use super::Tweestap;
use crate::account::{Account, AccountId, Email};
use crate::audit::{AuditEvent, RequestContext};
use crate::error::{Error, Result};
use crate::lockout::throttle::{ClientAddress, ThrottleKey};
use crate::lockout::LockoutPolicy;
use crate::session::Session;
use crate::store::{Attempt, Bucket, BucketTake, SignInAccount};
use crate::token::{Token, TokenHash};
use chrono::{DateTime, Utc};

/// Which throttle refused an attempt, or locked (for the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The client address, over every account.
    Address,
    /// The account (or typed address) from this client address.
    AccountAddress,
    /// The account from many addresses: the backstop.
    Account,
    /// A remembered device of the account.
    Device,
    /// A session of the account.
    Session,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Address => "address",
            Scope::AccountAddress => "account_address",
            Scope::Account => "account",
            Scope::Device => "device",
            Scope::Session => "session",
        }
    }
}

/// Whose throttles a password check counts against.
enum Channel {
    /// A browser that proves it is the person's (a valid remembered device or
    /// session of the account): exempt from the others, it has its own count, so a
    /// stolen cookie is no password oracle either.
    Exempt(ThrottleKey, Scope),
    /// Anyone else: the account (or the typed address) from this client address,
    /// the address's budget, and the account's (or the typed address's) backstop.
    Open {
        pair: ThrottleKey,
        address: ThrottleKey,
        backstop: ThrottleKey,
    },
}

/// The attempts a password check took, settled once its answer is known.
struct Taken {
    own: ThrottleKey,
    scope: Scope,
    count: u32,
    address: Option<(ThrottleKey, u32)>,
    /// The account's backstop (a right password starts it over), with its count
    /// when this attempt counted towards it.
    backstop: Option<(ThrottleKey, Option<u32>)>,
}

enum Gate {
    Open(Taken),
    Throttled { scope: Scope, retry_after: i64 },
}

/// An attempt of a throttle that locks as `policy` says (and never starts over).
pub(super) fn locking_attempt<'k>(
    key: &'k ThrottleKey,
    account: Option<AccountId>,
    now: DateTime<Utc>,
    policy: &LockoutPolicy,
) -> Attempt<'k> {
    Attempt {
        key: key.as_str(),
        account,
        now,
        lock_at: Some((policy.max_failures, now + policy.base)),
        cap: None,
        restart_before: None,
    }
}

/// Seconds from `now` until `until`, at least 1.
pub(super) fn seconds_until(until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> i64 {
    until.map_or(1, |u| (u - now).num_seconds().max(1))
}

impl Tweestap {
    /// E-mail and password, with the throttles; every failure audited and answered
    /// alike. Shared by sign-in and "secure your account now".
    pub(super) async fn check_credentials(
        &self,
        email: &str,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<SignInAccount> {
        self.check_credentials_from(email, password, None, None, ctx)
            .await
    }

    /// [`Self::check_credentials`] from a browser that may carry a remembered device
    /// or a session of the account: then only its own count throttles it. The
    /// account comes with its factors and recovery codes, read with it before
    /// the hash (one statement, the same for every address: a factor set up or
    /// removed while the hash runs counts from the next sign-in).
    pub(super) async fn check_credentials_from(
        &self,
        email: &str,
        password: &str,
        device: Option<&str>,
        signed_in: Option<&Token>,
        ctx: &RequestContext,
    ) -> Result<SignInAccount> {
        let found = match Email::parse(email) {
            Ok(e) => self.store.account_for_sign_in(&e).await?,
            Err(_) => None,
        };
        let account = found.as_ref().map(|f| &f.account);
        let channel = self.proven_browser(account, device, signed_in).await?;
        let channel = channel.unwrap_or_else(|| self.open_channel(account, email, ctx));
        let what = "sign-in";
        let gate = self
            .take_password_attempt(account, email, channel, what, ctx)
            .await?;
        let taken = match gate {
            Gate::Open(t) => t,
            Gate::Throttled { scope, .. } => {
                // While throttled even the right password is refused, with the same
                // answer as a wrong one. The backstop's refusal comes after the
                // other throttles let the attempt by: it costs the hash's time too,
                // as a checked attempt does.
                if scope == Scope::Account {
                    let hash = account.map(|a| a.password_hash.as_str());
                    let _ = self.hasher.verify(password, hash).await;
                }
                return Err(Error::InvalidCredentials);
            }
        };
        let hash = account.map(|a| a.password_hash.as_str());
        let ok = self.verify_taken(password, hash, &taken).await?;
        let Some(found) = found else {
            let detail = Some("unknown account".to_owned());
            self.audit(
                AuditEvent::LoginFailed,
                None,
                Some(email.trim()),
                ctx,
                detail,
            )
            .await?;
            self.password_wrong(None, email, &taken, ctx).await?;
            return Err(Error::InvalidCredentials);
        };
        let account = &found.account;
        if !ok {
            let detail = Some("wrong password".to_owned());
            self.audit(AuditEvent::LoginFailed, Some(account), None, ctx, detail)
                .await?;
            self.password_wrong(Some(account), email, &taken, ctx)
                .await?;
            return Err(Error::InvalidCredentials);
        }
        self.password_right(&taken).await?;
        // A disabled account answers as a wrong password does: nothing to learn.
        if account.disabled_at.is_some() {
            let detail = Some("account disabled".to_owned());
            self.audit(AuditEvent::LoginFailed, Some(account), None, ctx, detail)
                .await?;
            return Err(Error::InvalidCredentials);
        }
        self.upgrade_password_hash(account, password, ctx).await?;
        Ok(found)
    }

    /// The password confirmed inside a session (a new factor, new recovery codes,
    /// removing a factor): throttled per session when the request carries one of the
    /// account, so a stolen session cookie is no password oracle and a stranger's
    /// guesses elsewhere do not stop the person; otherwise as at sign-in.
    pub(super) async fn confirm_password(
        &self,
        account: &Account,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<()> {
        let typed = account.email.as_str();
        let session = match &ctx.session {
            Some(hash) => self.session_channel(account, hash).await?,
            None => None,
        };
        let channel = session.unwrap_or_else(|| self.open_channel(Some(account), typed, ctx));
        let what = "password confirmation";
        let taken = match self
            .take_password_attempt(Some(account), typed, channel, what, ctx)
            .await?
        {
            Gate::Open(t) => t,
            Gate::Throttled { retry_after, .. } => {
                return Err(Error::TooManyAttempts { retry_after })
            }
        };
        let hash = Some(account.password_hash.as_str());
        if self.verify_taken(password, hash, &taken).await? {
            self.password_right(&taken).await?;
            return self.upgrade_password_hash(account, password, ctx).await;
        }
        let detail = Some("password confirmation failed".to_owned());
        self.audit(AuditEvent::LoginFailed, Some(account), None, ctx, detail)
            .await?;
        self.password_wrong(Some(account), typed, &taken, ctx)
            .await?;
        Err(Error::WrongPassword)
    }

    /// The password that opens a QR link without a session of its account: throttled
    /// as at sign-in; throttled, wrong or missing, the answer is the same.
    pub(super) async fn check_link_password(
        &self,
        account: &Account,
        password: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<()> {
        let wrong = Some("QR link: wrong password".to_owned());
        let Some(password) = password else {
            self.audit(AuditEvent::LoginFailed, Some(account), None, ctx, wrong)
                .await?;
            return Err(Error::WrongPassword);
        };
        let typed = account.email.as_str();
        let channel = self.open_channel(Some(account), typed, ctx);
        let taken = match self
            .take_password_attempt(Some(account), typed, channel, "QR link", ctx)
            .await?
        {
            Gate::Open(t) => t,
            Gate::Throttled { .. } => return Err(Error::WrongPassword),
        };
        let hash = Some(account.password_hash.as_str());
        if !self.verify_taken(password, hash, &taken).await? {
            self.audit(AuditEvent::LoginFailed, Some(account), None, ctx, wrong)
                .await?;
            self.password_wrong(Some(account), typed, &taken, ctx)
                .await?;
            return Err(Error::WrongPassword);
        }
        self.password_right(&taken).await?;
        self.upgrade_password_hash(account, password, ctx).await
    }

    /// The browser's own throttle when it proves it is the person's: a valid
    /// remembered device of `account`, or a valid session of it. What the browser
    /// carries is looked up whether or not the account exists, so the time taken
    /// tells nothing.
    async fn proven_browser(
        &self,
        account: Option<&Account>,
        device: Option<&str>,
        signed_in: Option<&Token>,
    ) -> Result<Option<Channel>> {
        let device = match device.and_then(Token::from_client) {
            Some(t) => self.store.device_by_token(&t.hash()).await?,
            None => None,
        };
        let session = match signed_in {
            Some(t) => self.store.session(&t.hash()).await?,
            None => None,
        };
        let Some(account) = account else {
            return Ok(None);
        };
        let now = self.clock.now();
        if let Some(d) = device.filter(|d| d.account_id == account.id && d.expires_at > now) {
            let key = ThrottleKey::device(d.id);
            return Ok(Some(Channel::Exempt(key, Scope::Device)));
        }
        Ok(self.own_session(account, session))
    }

    /// The session's own throttle, when `hash` names a valid session of `account`.
    async fn session_channel(
        &self,
        account: &Account,
        hash: &TokenHash,
    ) -> Result<Option<Channel>> {
        let session = self.store.session(hash).await?;
        Ok(self.own_session(account, session))
    }

    /// The throttle of `session` when it is a valid session of `account`.
    fn own_session(&self, account: &Account, session: Option<Session>) -> Option<Channel> {
        let now = self.clock.now();
        session
            .filter(|s| s.account_id == account.id && !self.settings.sessions.is_expired(s, now))
            .map(|s| Channel::Exempt(ThrottleKey::session(&s.sid), Scope::Session))
    }

    /// The throttles of anyone: the account from this client address, the
    /// address's budget and the account's backstop. An unknown account has them
    /// by a keyed MAC of the address typed, so it behaves alike and costs the same
    /// statements (on PostgreSQL the backstop's write alone took 4 to 10 ms).
    fn open_channel(
        &self,
        account: Option<&Account>,
        typed: &str,
        ctx: &RequestContext,
    ) -> Channel {
        let address = ClientAddress::of(ctx.ip.as_deref());
        let (pair, backstop) = match account {
            Some(a) => (
                ThrottleKey::account_address(a.id, &address),
                ThrottleKey::backstop(a.id),
            ),
            None => {
                let normal = match Email::parse(typed) {
                    Ok(e) => e.as_str().to_owned(),
                    Err(_) => typed.trim().to_lowercase(),
                };
                let mac = self
                    .secrets
                    .code_mac(b"tweestap password throttle v1", normal.as_bytes());
                (
                    ThrottleKey::typed_address(&mac, &address),
                    ThrottleKey::typed_backstop(&mac),
                )
            }
        };
        Channel::Open {
            pair,
            address: ThrottleKey::address(&address),
            backstop,
        }
    }

    /// Takes one attempt of each throttle of `channel`, or says which refused it
    /// (audited; the attempts already taken are given back).
    async fn take_password_attempt(
        &self,
        account: Option<&Account>,
        typed: &str,
        channel: Channel,
        what: &str,
        ctx: &RequestContext,
    ) -> Result<Gate> {
        let now = self.clock.now();
        let per = self.settings.password_lockout;
        let th = self.settings.password_throttle;
        let owner = account.map(|a| a.id);
        let locking = |key| locking_attempt(key, owner, now, &per);
        let (pair, address, key) = match channel {
            Channel::Exempt(key, scope) => {
                let Some(count) = self.store.take_attempt(&locking(&key)).await? else {
                    let until = self.locked_until(&key).await?;
                    return self
                        .throttled(account, typed, scope, until, what, ctx)
                        .await;
                };
                let address = None;
                let backstop = account.map(|a| (ThrottleKey::backstop(a.id), None));
                return Ok(Gate::Open(Taken {
                    own: key,
                    scope,
                    count,
                    address,
                    backstop,
                }));
            }
            Channel::Open {
                pair,
                address,
                backstop,
            } => (pair, address, backstop),
        };
        let budget = self.address_bucket(&address);
        let spent = match self.store.take_from_bucket(&budget).await? {
            BucketTake::Taken(n) => n,
            BucketTake::Full { until } => {
                let (scope, until) = (Scope::Address, Some(until));
                return self
                    .throttled(account, typed, scope, until, what, ctx)
                    .await;
            }
        };
        let Some(count) = self.store.take_attempt(&locking(&pair)).await? else {
            self.store.give_back_to_bucket(&budget).await?;
            let scope = Scope::AccountAddress;
            let until = self.locked_until(&pair).await?;
            return self
                .throttled(account, typed, scope, until, what, ctx)
                .await;
        };
        // One address counts towards the backstop only until its own throttle
        // starts, so that it alone never locks the person out; while the backstop is
        // locked every address waits.
        let (refused, counted) = if count <= per.max_failures {
            let attempt = locking_attempt(&key, owner, now, &th.account);
            let n = self.store.take_attempt(&attempt).await?;
            (n.is_none(), n)
        } else {
            let state = self.store.throttle_state(key.as_str()).await?;
            let locked = state.and_then(|s| s.locked_until).is_some_and(|u| u > now);
            (locked, None)
        };
        if refused {
            self.store.give_back_to_bucket(&budget).await?;
            let lock_at = Some(per.max_failures);
            self.store.give_back_attempt(pair.as_str(), lock_at).await?;
            let scope = Scope::Account;
            let until = self.locked_until(&key).await?;
            return self
                .throttled(account, typed, scope, until, what, ctx)
                .await;
        }
        let backstop = Some((key, counted));
        Ok(Gate::Open(Taken {
            own: pair,
            scope: Scope::AccountAddress,
            count,
            address: Some((address, spent)),
            backstop,
        }))
    }

    /// The address budget of `address` (a leaky bucket).
    fn address_bucket<'k>(&self, address: &'k ThrottleKey) -> Bucket<'k> {
        let th = self.settings.password_throttle;
        Bucket {
            key: address.as_str(),
            now: self.clock.now(),
            capacity: th.address_budget,
            interval: th.address_interval(),
        }
    }

    /// Until when `key`'s throttle is locked.
    async fn locked_until(&self, key: &ThrottleKey) -> Result<Option<DateTime<Utc>>> {
        let state = self.store.throttle_state(key.as_str()).await?;
        Ok(state.and_then(|s| s.locked_until))
    }

    /// A refused attempt: audited, with the seconds until the throttle that
    /// refused it lets one by (`until`).
    async fn throttled(
        &self,
        account: Option<&Account>,
        typed: &str,
        scope: Scope,
        until: Option<DateTime<Utc>>,
        what: &str,
        ctx: &RequestContext,
    ) -> Result<Gate> {
        let now = self.clock.now();
        let detail = Some(format!("{what}; scope={}", scope.as_str()));
        let email = account.is_none().then_some(typed);
        self.audit(AuditEvent::LoginThrottled, account, email, ctx, detail)
            .await?;
        Ok(Gate::Throttled {
            scope,
            retry_after: seconds_until(until, now),
        })
    }

    /// Verifies the password of a check that took its attempts. When the hasher is
    /// too busy nothing was checked, and every attempt is given back. (A request
    /// that ends before its answer, its client gone, keeps its attempts: hanging up
    /// is no way around a throttle.)
    async fn verify_taken(
        &self,
        password: &str,
        hash: Option<&str>,
        taken: &Taken,
    ) -> Result<bool> {
        let e = match self.hasher.verify(password, hash).await {
            Ok(ok) => return Ok(ok),
            Err(e) => e,
        };
        let per = self.settings.password_lockout.max_failures;
        let own = taken.own.as_str();
        self.store.give_back_attempt(own, Some(per)).await?;
        if let Some((address, _)) = &taken.address {
            let budget = self.address_bucket(address);
            self.store.give_back_to_bucket(&budget).await?;
        }
        if let Some((backstop, Some(_))) = &taken.backstop {
            let at = Some(self.settings.password_throttle.account.max_failures);
            self.store.give_back_attempt(backstop.as_str(), at).await?;
        }
        Err(e.into())
    }

    /// The right password: its own count starts again (NIST: earlier failures from
    /// the same address are disregarded), the address gets its attempt back, and
    /// the account's backstop starts again (the failures it counts are consecutive).
    /// The three rows are different ones: one write for all.
    async fn password_right(&self, taken: &Taken) -> Result<()> {
        let budget = taken.address.as_ref().map(|(a, _)| self.address_bucket(a));
        let mut keys = vec![taken.own.as_str()];
        if let Some((key, _)) = &taken.backstop {
            keys.push(key.as_str());
        }
        Ok(self
            .store
            .settle_right_answer(&keys, budget.as_ref())
            .await?)
    }

    /// A wrong password: each count that reached its policy's threshold locks for
    /// the policy's full length (the attempt held it for the shortest), audited.
    async fn password_wrong(
        &self,
        account: Option<&Account>,
        typed: &str,
        taken: &Taken,
        ctx: &RequestContext,
    ) -> Result<()> {
        let now = self.clock.now();
        let th = self.settings.password_throttle;
        let mut locked: Vec<(Scope, u32, DateTime<Utc>)> = Vec::new();
        if let Some(until) = self.settings.password_lockout.lock_until(taken.count, now) {
            self.store.lock_throttle(taken.own.as_str(), until).await?;
            locked.push((taken.scope, taken.count, until));
        }
        if let Some((_, spent)) = &taken.address {
            // The bucket is full: the next attempt waits for one to drain out.
            if *spent >= th.address_budget {
                let until = now + th.address_interval();
                locked.push((Scope::Address, *spent, until));
            }
        }
        if let Some((backstop, Some(n))) = &taken.backstop {
            if let Some(until) = th.account.lock_until(*n, now) {
                self.store.lock_throttle(backstop.as_str(), until).await?;
                locked.push((Scope::Account, *n, until));
            }
        }
        let email = account.is_none().then_some(typed);
        for (scope, failures, until) in locked {
            let detail = Some(format!(
                "scope={} failures={failures} until={}",
                scope.as_str(),
                until.to_rfc3339()
            ));
            self.audit(AuditEvent::PasswordLockedOut, account, email, ctx, detail)
                .await?;
        }
        Ok(())
    }
}
