//! What the clients share (the server's address, how often it was killed, the
//! mail the SMTP sink received, what went wrong) and what each keeps per account:
//! what the server confirmed to it and what it sent without an answer.

use crate::kit::Received;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Shared {
    pub url: String,
    /// The data directory (its SMS outbox).
    pub data: PathBuf,
    /// Kills so far: a credential used in generation `g` was used before a restart
    /// once this is past `g`.
    pub generation: AtomicU64,
    pub stop: AtomicBool,
    /// What the SMTP sink received, in order.
    pub sink: Arc<Mutex<Vec<Received>>>,
    /// Broken promises: the test fails on any.
    violations: Mutex<Vec<String>>,
    /// Unexpected answers that break no promise (a refusal is the safe side).
    surprises: Mutex<Vec<String>>,
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl Shared {
    pub fn new(url: String, data: PathBuf, sink: Arc<Mutex<Vec<Received>>>) -> Self {
        Self {
            url,
            data,
            generation: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            sink,
            violations: Mutex::default(),
            surprises: Mutex::default(),
            counts: Mutex::default(),
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub fn violation(&self, what: String) {
        eprintln!("VIOLATION: {what}");
        self.violations.lock().expect("lock").push(what);
    }

    pub fn surprise(&self, what: String) {
        self.surprises.lock().expect("lock").push(what);
    }

    pub fn count(&self, what: &'static str) {
        *self.counts.lock().expect("lock").entry(what).or_default() += 1;
    }

    pub fn count_n(&self, what: &'static str, n: u64) {
        *self.counts.lock().expect("lock").entry(what).or_default() += n;
    }

    pub fn counted(&self, what: &str) -> u64 {
        self.counts
            .lock()
            .expect("lock")
            .get(what)
            .copied()
            .unwrap_or(0)
    }

    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().expect("lock").clone()
    }

    pub fn surprises(&self) -> Vec<String> {
        self.surprises.lock().expect("lock").clone()
    }

    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.counts.lock().expect("lock").clone()
    }

    /// `POST path` with a JSON body: the status and body, or `None` when no answer
    /// came (the server was killed before or while answering) or it was a 5xx.
    pub async fn post(&self, http: &reqwest::Client, path: &str, body: Value) -> Option<Answer> {
        self.send(http, path, body).await.ok()
    }

    /// [`Self::post`], telling a request that never reached the server (no
    /// connection) from one that got no answer.
    pub async fn send(
        &self,
        http: &reqwest::Client,
        path: &str,
        body: Value,
    ) -> Result<Answer, NoAnswer> {
        let sent = http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await;
        let r = match sent {
            Ok(r) => r,
            Err(e) if e.is_connect() => {
                self.count("requests refused (no server)");
                return Err(NoAnswer::NotConnected);
            }
            Err(_) => {
                self.count("requests sent without an answer");
                return Err(NoAnswer::Lost);
            }
        };
        let status = r.status().as_u16();
        let Ok(text) = r.text().await else {
            self.count("requests sent without an answer");
            return Err(NoAnswer::Lost);
        };
        if status >= 500 {
            self.surprise(format!("POST {path}: {status} {text}"));
            return Err(NoAnswer::Lost);
        }
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer { status, body })
    }
}

/// Why a request has no answer.
#[derive(Debug, PartialEq, Eq)]
pub enum NoAnswer {
    /// No connection: the request never reached a server.
    NotConnected,
    /// Sent (at least in part); the server may have acted on it.
    Lost,
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// The authenticator app of an account, as far as the client knows.
#[derive(Clone)]
pub enum Factor {
    None,
    /// Begun (the server answered with its secret); its confirmation got no answer.
    Pending {
        id: String,
        secret: String,
    },
    /// Active: `confirmed` when the server said so, else found active at sign-in
    /// after a confirmation that got no answer.
    Active {
        id: String,
        secret: String,
        confirmed: bool,
    },
}

/// Something the server confirmed as used, to be tried again after a restart.
#[derive(Clone, Debug)]
pub enum Used {
    /// An app code (also the one that confirmed the set-up) and its time step.
    AppCode {
        step: i64,
        code: String,
    },
    RecoveryCode(String),
    ResetLink(String),
}

pub struct Account {
    pub email: String,
    /// Set up SMS to this number instead of the app.
    pub phone: Option<String>,
    /// Its cookies.
    pub http: reqwest::Client,
    /// The passwords it may have: the one the server last confirmed, and ahead of
    /// it a new one whose reset got no answer.
    pub passwords: Vec<String>,
    pub factor: Factor,
    /// Recovery codes the server gave with the confirmed set-up, not yet tried.
    pub recovery_codes: Vec<String>,
    /// The latest time step an app code was sent for (answered or not): a later
    /// sign-in needs a later step.
    pub last_step_sent: i64,
    /// Time steps whose app code the server accepted (confirmation and sign-ins).
    pub steps_confirmed: Vec<i64>,
    /// Used credentials and the generation they were used in, not yet tried again
    /// after a restart.
    pub to_replay: Vec<(u64, Used)>,
    /// Sign-ins with the factor (app or SMS code) the server confirmed.
    pub sign_ins: u32,
    pub resets_requested: u32,
    /// A reset link was asked for; its mail not taken yet.
    pub awaiting_link: bool,
    pub resets_confirmed: u32,
    pub recoveries_confirmed: u32,
    /// Message-IDs of the reset mails already taken from the sink.
    pub mails_taken: HashSet<String>,
    /// The SMS outbox files already read.
    pub sms_taken: HashSet<PathBuf>,
}

impl Account {
    pub fn new(email: String, password: &str, phone: Option<String>) -> Self {
        Self {
            email,
            phone,
            http: http_client(),
            passwords: vec![password.to_owned()],
            factor: Factor::None,
            recovery_codes: Vec::new(),
            last_step_sent: 0,
            steps_confirmed: Vec::new(),
            to_replay: Vec::new(),
            sign_ins: 0,
            resets_requested: 0,
            awaiting_link: false,
            resets_confirmed: 0,
            recoveries_confirmed: 0,
            mails_taken: HashSet::new(),
            sms_taken: HashSet::new(),
        }
    }

    /// The factor's id and secret when it is active.
    pub fn active(&self) -> Option<(String, String, bool)> {
        match &self.factor {
            Factor::Active {
                id,
                secret,
                confirmed,
            } => Some((id.clone(), secret.clone(), *confirmed)),
            _ => None,
        }
    }

    /// Signs in with e-mail address and password (trying each it may have): the
    /// answer's body, or `None` without an answer. A password the server confirmed
    /// that no longer works is a violation.
    pub async fn password_step(&mut self, shared: &Shared) -> Option<Value> {
        if self.passwords.is_empty() {
            return None;
        }
        let mut i = 0;
        while i < self.passwords.len() {
            let password = self.passwords[i].clone();
            let body = json!({ "email": self.email, "password": password });
            let a = shared.post(&self.http, "/api/v1/login", body).await?;
            match a.status {
                200 => {
                    self.passwords = vec![password];
                    return Some(a.body);
                }
                401 => i += 1,
                _ => {
                    shared.surprise(format!("{}: sign-in {} {}", self.email, a.status, a.body));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    return None;
                }
            }
        }
        shared.violation(format!(
            "{}: none of its passwords {:?} signs in",
            self.email, self.passwords
        ));
        // Nothing to go on with for this account.
        self.passwords.clear();
        None
    }
}

impl Account {
    /// The password step of an account with an active factor: it must ask for a
    /// code (`Some(false)`, a violation, when it does not).
    pub async fn code_step(&mut self, shared: &Shared) -> Option<bool> {
        let body = self.password_step(shared).await?;
        if body["state"] == "second_factor" {
            return Some(true);
        }
        let (id, _, confirmed) = self.active().expect("an active factor");
        shared.violation(format!(
            "{}: its factor {id} is active (confirmed to the client: {confirmed}), yet the \
             password alone answers {body}",
            self.email
        ));
        self.passwords.clear();
        Some(false)
    }
}

/// A client that keeps cookies, opens a new connection per request (none left
/// over from a killed process) and follows no redirects.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .user_agent("tweestap-crash-safety/1.0")
        .build()
        .expect("client")
}

/// The current TOTP time step (30 s).
pub fn step_now() -> i64 {
    chrono::Utc::now().timestamp() / 30
}

/// The app's code for `step`.
pub fn code_for(secret: &str, step: i64) -> String {
    crate::kit::totp::code_at(secret, step * 30)
}
