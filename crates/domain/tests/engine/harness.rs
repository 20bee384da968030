//! One engine on a fresh SQLite file, with a clock the test moves and the mail queue
//! read back as the delivery worker would.

use chrono::{Duration, TimeZone, Utc};
use std::sync::{Arc, Mutex};
use tweestap_domain::account::{Account, Role};
use tweestap_domain::audit::RequestContext;
use tweestap_domain::clock::{Clock, ManualClock};
use tweestap_domain::mail::{open_link, Delivery, Notice};
use tweestap_domain::password::{Argon2Settings, PasswordHasher};
use tweestap_domain::secret_box::{MasterKey, SecretBox};
use tweestap_domain::service::{LoginOutcome, TotpEnrollment};
use tweestap_domain::settings::Settings;
use tweestap_domain::token::Token;
use tweestap_domain::totp::TotpParams;
use tweestap_domain::Tweestap;
use tweestap_store::SqliteStore;

pub const PASSWORD: &str = "correct horse battery";

/// A mail as the worker took it from the queue, with its sealed secret (a link or a
/// code) opened.
#[derive(Debug, Clone)]
pub struct Mail {
    pub kind: String,
    pub to: String,
    pub notice: Notice,
    pub secret: Option<String>,
}

pub struct Engine {
    pub app: Tweestap,
    pub clock: ManualClock,
    /// The engine's own secret box, to open sealed links as the mail worker does.
    secrets: SecretBox,
    /// Every mail delivered so far, oldest first.
    delivered: Mutex<Vec<Mail>>,
    _dir: tempfile::TempDir,
}

impl Engine {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// An engine whose settings `tweak` adjusts (policy, shared mailboxes, ...).
    pub async fn start_with(tweak: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("tweestap.db"), true)
            .await
            .expect("a fresh SQLite store");
        // Mid-step, so a test's "current code" is not about to roll over.
        let start = Utc
            .with_ymd_and_hms(2026, 3, 1, 9, 0, 10)
            .single()
            .expect("a valid start time");
        let clock = ManualClock::new(start);
        // Cheap Argon2: the tests are about the journeys, not the hash's cost.
        let hasher = PasswordHasher::new(
            Argon2Settings {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            2,
        )
        .expect("Argon2 parameters");
        let secrets = SecretBox::new(&MasterKey::generate());
        let mut settings = Settings::default();
        tweak(&mut settings);
        let app = Tweestap::new(
            Arc::new(store),
            Arc::new(clock.clone()),
            hasher,
            secrets.clone(),
            settings,
        );
        Self {
            app,
            clock,
            secrets,
            delivered: Mutex::new(Vec::new()),
            _dir: dir,
        }
    }

    pub async fn add(&self, email: &str, role: Role) -> Account {
        self.app
            .add_account(email, "Test Gebruiker", role, PASSWORD)
            .await
            .expect("account")
    }

    pub async fn add_user(&self, email: &str) -> Account {
        self.add(email, Role::User).await
    }

    /// The account as stored now (lock-outs, language, ...).
    pub async fn reload(&self, account: &Account) -> Account {
        self.app
            .account_by_email(account.email.as_str())
            .await
            .expect("account")
    }

    /// The current code of an authenticator app with this secret.
    pub fn code(&self, secret_b32: &str) -> String {
        let key = data_encoding::BASE32_NOPAD
            .decode(secret_b32.as_bytes())
            .expect("base32");
        TotpParams::default().code_at(&key, self.clock.now().timestamp())
    }

    /// On to the next 30-second step, so the app shows a new code.
    pub fn next_step(&self) {
        self.advance(Duration::seconds(30));
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// Sets up an authenticator app for `account` (password, then its first code);
    /// returns the app's secret and the recovery codes that came with it.
    pub async fn enroll(&self, account: &Account) -> (TotpEnrollment, Vec<String>) {
        let e = self
            .app
            .begin_totp(account, PASSWORD, &ctx())
            .await
            .expect("set-up begins");
        let codes = self.confirm(account, &e).await;
        (e, codes)
    }

    /// Sets up an authenticator app in the enrolment-only session `enrolling` (the
    /// password is not asked again) and finishes it: the app, its recovery codes and
    /// the full session that replaces `enrolling`.
    pub async fn enroll_in_session(
        &self,
        account: &Account,
        enrolling: &Token,
    ) -> (TotpEnrollment, Vec<String>, Token) {
        let info = self
            .app
            .session(enrolling)
            .await
            .expect("lookup")
            .expect("a session");
        let e = self
            .app
            .begin_totp_in_enrollment(&info)
            .await
            .expect("set-up begins");
        let codes = self.confirm(account, &e).await;
        let full = self
            .app
            .finish_enrollment(enrolling, &ctx())
            .await
            .expect("finished")
            .expect("a full session");
        (e, codes, full)
    }

    /// Confirms a set-up with the app's current code: the recovery codes, if it was
    /// the account's first factor.
    async fn confirm(&self, account: &Account, e: &TotpEnrollment) -> Vec<String> {
        self.app
            .confirm_totp(account, e.factor_id, &self.code(&e.secret_base32), &ctx())
            .await
            .expect("set-up confirmed")
            .unwrap_or_default()
    }

    /// The password step of an account with a second factor: the half-finished
    /// sign-in's token.
    pub async fn password_step(&self, email: &str) -> Token {
        match self.login(email, PASSWORD).await {
            LoginOutcome::SecondFactor { token, .. } => token,
            other => panic!("expected the code step, got {other:?}"),
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> LoginOutcome {
        self.app
            .login(email, password, &ctx())
            .await
            .expect("an answer to the password step")
    }

    /// Password, then the app's code of the next step: a signed-in session.
    pub async fn sign_in(&self, email: &str, secret_b32: &str) -> Token {
        let half = self.password_step(email).await;
        self.next_step();
        self.app
            .verify_second_factor(&half, &self.code(secret_b32), &ctx())
            .await
            .expect("the right code signs in")
    }

    /// The audit events of an address, oldest first.
    pub async fn events(&self, email: &str) -> Vec<String> {
        let mut log = self
            .app
            .audit_log(1000, Some(email))
            .await
            .expect("audit log");
        log.reverse();
        log.into_iter().map(|r| r.event).collect()
    }

    /// Delivers every due mail (as the worker would, always successfully) and
    /// answers every mail of `kind` delivered so far, oldest first.
    pub async fn mails(&self, kind: &str) -> Vec<Mail> {
        loop {
            let claimed = self.app.claim_mail(100).await.expect("claim mail");
            if claimed.is_empty() {
                break;
            }
            for m in claimed {
                let notice = Notice::from_json(&m.payload).expect("a readable notice");
                let secret = notice.sealed().map(|sealed| {
                    open_link(&self.secrets, m.id, sealed).expect("opens for its own mail")
                });
                self.app
                    .record_delivery(&m, &Delivery::Sent)
                    .await
                    .expect("recorded");
                let mail = Mail {
                    kind: m.kind.clone(),
                    to: m.to.clone(),
                    notice,
                    secret,
                };
                self.delivered.lock().expect("lock").push(mail);
            }
        }
        let delivered = self.delivered.lock().expect("lock");
        delivered
            .iter()
            .filter(|m| m.kind == kind)
            .cloned()
            .collect()
    }

    /// The secret (link or code) of the latest mail of `kind`.
    pub async fn last_secret(&self, kind: &str) -> String {
        let mails = self.mails(kind).await;
        let last = mails
            .last()
            .unwrap_or_else(|| panic!("no {kind} mail was queued"));
        last.secret.clone().expect("a mail with a secret")
    }
}

/// A request from nowhere in particular (no address, agent or language).
pub fn ctx() -> RequestContext {
    RequestContext::default()
}

/// The token at the end of a link (`…/password/reset/<token>`).
pub fn token_of(link: &str) -> String {
    link.rsplit('/').next().unwrap_or_default().to_owned()
}
