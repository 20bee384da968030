//! Accounts, factors and sessions written straight through the server's own store,
//! sealed with the data directory's at-rest key as the server seals them: seeding
//! 20,000 accounts takes seconds, with one password hash shared by all.

use crate::BoxError;
use chrono::Utc;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use tweestap::config::Config;
use tweestap_domain::account::{Account, AccountId, Email, Role};
use tweestap_domain::factor::{Factor, FactorId, FactorKind};
use tweestap_domain::password::{Argon2Settings, PasswordHasher};
use tweestap_domain::session::{new_sid, Session, SessionStage};
use tweestap_domain::snapshot::Contents;
use tweestap_domain::store::Store;
use tweestap_domain::token::Token;
use tweestap_domain::totp::TotpParams;

/// The password of every seeded account.
pub const PASSWORD: &str = "violet harbour lantern 42";

pub struct BenchAccount {
    pub id: AccountId,
    pub email: String,
    secret: zeroize::Zeroizing<Vec<u8>>,
    /// The last time step a right code of this account was sent for.
    used_step: AtomicI64,
}

impl BenchAccount {
    /// The code of now: RFC 6238 with the server's parameters.
    pub fn code_now(&self) -> String {
        TotpParams::default().code_at(&self.secret, Utc::now().timestamp())
    }

    /// A code that is wrong now, and in the steps either side that the server
    /// also accepts.
    pub fn wrong_code_now(&self, salt: u64) -> String {
        let p = TotpParams::default();
        let now = Utc::now().timestamp();
        let taken: Vec<String> = [-30, 0, 30]
            .iter()
            .map(|d| p.code_at(&self.secret, now + d))
            .collect();
        let mut n = salt % 1_000_000;
        loop {
            let c = format!("{n:06}");
            if !taken.contains(&c) {
                return c;
            }
            n = (n + 1) % 1_000_000;
        }
    }
}

/// The seeded accounts, and which may still give a right code in this step.
pub struct Seeded {
    pub accounts: Vec<BenchAccount>,
    /// Accounts `..wrong` carry the wrong codes; the rest give right ones.
    pub wrong: usize,
    /// Right codes prepared per run of the code step.
    pub right_per_run: usize,
    /// The one password hash every account shares.
    pub hash: String,
    cursor: AtomicUsize,
    pub store: Arc<dyn Store>,
}

fn step_now() -> i64 {
    TotpParams::default().step_at(Utc::now().timestamp()) as i64
}

impl Seeded {
    /// The next account whose right code of this time step is unused, marked used.
    /// `None` when every one has been used in this step.
    pub fn take_fresh(&self) -> Option<usize> {
        let n = self.accounts.len() - self.wrong;
        for _ in 0..n {
            let i = self.wrong + self.cursor.fetch_add(1, Ordering::Relaxed) % n;
            let a = &self.accounts[i];
            let step = step_now();
            // Replay protection: one right code per account and step (and the step
            // after a boundary is a new one).
            if a.used_step.fetch_max(step, Ordering::AcqRel) < step {
                return Some(i);
            }
        }
        None
    }

    /// Half-signed-in (or signed-in) sessions for these accounts, written in
    /// parallel; their cookie values, in the order of `accounts`.
    pub async fn sessions(
        &self,
        accounts: &[usize],
        stage: SessionStage,
    ) -> Result<Vec<String>, BoxError> {
        let mut tasks = tokio::task::JoinSet::new();
        let chunk = accounts.len().div_ceil(16).max(1);
        for (part_no, part) in accounts.chunks(chunk).enumerate() {
            let store = self.store.clone();
            let ids: Vec<AccountId> = part.iter().map(|&i| self.accounts[i].id).collect();
            tasks.spawn(async move {
                let mut tokens = Vec::with_capacity(ids.len());
                for id in ids {
                    tokens.push(insert_session(&*store, id, stage).await?);
                }
                Ok::<_, String>((part_no, tokens))
            });
        }
        let mut parts = Vec::new();
        while let Some(r) = tasks.join_next().await {
            parts.push(r??);
        }
        // The tasks finish in any order; the cookies must match their accounts.
        parts.sort_by_key(|(n, _)| *n);
        Ok(parts.into_iter().flat_map(|(_, t)| t).collect())
    }
}

async fn insert_session(
    store: &dyn Store,
    id: AccountId,
    stage: SessionStage,
) -> Result<String, String> {
    let token = Token::generate();
    let now = Utc::now();
    let amr = match stage {
        SessionStage::Authenticated => "pwd otp",
        _ => "pwd",
    };
    store
        .insert_session(&Session {
            id_hash: token.hash(),
            account_id: id,
            stage,
            created_at: now,
            last_seen_at: now,
            auth_time: now,
            amr: amr.into(),
            ip: Some("127.0.0.1".into()),
            user_agent: Some("tweestap-bench".into()),
            sid: new_sid(),
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(token.as_str().to_owned())
}

/// The server's configuration as the server reads it.
pub fn config(path: &Path) -> Result<Config, BoxError> {
    let mut c = Config::from_file(path)?;
    c.validate()?;
    // The seeding must not take more connections than the server will want.
    c.database.max_connections = c.database.max_connections.min(16);
    Ok(c)
}

/// Creates the schema and `n` accounts with a confirmed app factor each, in one
/// import transaction.
pub async fn seed(
    config: &Config,
    n: usize,
    wrong: usize,
    right_per_run: usize,
) -> Result<Seeded, BoxError> {
    let started = std::time::Instant::now();
    let store = tweestap::open_store(config, true).await?;
    let master = tweestap::master_key(config)?;
    let secrets = tweestap::at_rest::secret_box(&config.data_dir, &master)?;
    let p = &config.password;
    let hasher = PasswordHasher::new(
        Argon2Settings {
            memory_kib: p.argon2_memory_kib,
            iterations: p.argon2_iterations,
            parallelism: p.argon2_parallelism,
        },
        1,
    )?;
    let hash = hasher.hash(PASSWORD).await?;
    let now = Utc::now();
    let mut contents = Contents {
        accounts: Vec::with_capacity(n),
        factors: Vec::with_capacity(n),
        audit: vec![],
        recovery_codes: vec![],
        signing_keys: vec![],
        clients: vec![],
        consents: vec![],
    };
    let mut accounts = Vec::with_capacity(n);
    for i in 0..n {
        let id = AccountId::random();
        let email = format!("bench{i:06}@example.org");
        let secret = tweestap_domain::totp::new_secret();
        let factor = FactorId(uuid::Uuid::new_v4());
        contents.accounts.push(Account {
            id,
            email: Email::parse(&email).map_err(|_| "bad e-mail address")?,
            name: format!("Bench {i}"),
            role: Role::User,
            password_hash: hash.clone(),
            created_at: now,
            code_failures: 0,
            code_locked_until: None,
            password_failures: 0,
            password_locked_until: None,
            language: Default::default(),
            disabled_at: None,
        });
        contents.factors.push(Factor {
            id: factor,
            account_id: id,
            kind: FactorKind::Totp,
            label: "bench".into(),
            secret_sealed: secrets.seal(&secret, factor.0.as_bytes()),
            created_at: now,
            confirmed_at: Some(now),
            last_used_at: None,
            last_step: None,
        });
        accounts.push(BenchAccount {
            id,
            email,
            secret,
            used_step: AtomicI64::new(-1),
        });
    }
    store.import_contents(&contents).await?;
    eprintln!(
        "seeded {n} accounts with app factors in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(Seeded {
        accounts,
        wrong: wrong.min(n / 2),
        right_per_run,
        hash,
        cursor: AtomicUsize::new(0),
        store,
    })
}

/// A confidential OIDC client, added as `tweestap client add` adds one: its id
/// and secret.
pub async fn oidc_client(config: &Config) -> Result<(String, String), BoxError> {
    let clock = Arc::new(tweestap_domain::clock::SystemClock);
    let (app, _) = tweestap::engine(config, clock, false).await?;
    let new = app
        .add_client(
            "Bench",
            &["http://127.0.0.1:9/cb".to_owned()],
            false,
            tweestap_domain::oidc::SigningAlg::Rs256,
            Default::default(),
        )
        .await?;
    Ok((new.client.id, new.secret.ok_or("the client has no secret")?))
}
