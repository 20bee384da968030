//! Guessing codes and passwords: every path that checks a code or a password, in
//! one table ([`PATHS`]). Each path is tried four times, each time on a fresh
//! account: one wrong guess short of its documented bound and then the right
//! answer (accepted); its bound of wrong guesses on two nodes in turn and then the
//! right answer (refused, and after the lock either accepted or, for a code that
//! dies, still refused); fifty wrong guesses at once on one node; and fifty at
//! once spread over two nodes on one database. In parallel no more are checked than
//! the bound, and the right answer is refused afterwards. A password reset (by
//! whoever reads the mailbox) gives no new tries ([`resets`]).

mod codes;
mod passwords;
mod resets;

use super::threat_kit::{wrong_code, Nodes};
use crate::kit::{Backend, TestApp};
use reqwest::Method;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;

crate::on_both_backends!(guessing_codes_and_passwords_on_every_path);

/// What an answer says about a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Checked and wrong.
    Wrong,
    /// Not checked: locked or throttled.
    Refused,
    Accepted,
    /// Wrong or refused: the answer does not tell (on purpose), [`Checked`] counts.
    Unclear,
}

/// An answer: status, `Location` and body.
pub struct Answer {
    pub status: u16,
    pub location: String,
    pub body: String,
}

impl Answer {
    pub fn error(&self) -> String {
        serde_json::from_str::<Value>(&self.body).unwrap_or_default()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// How a guess goes out; the value [`GUESS`] stands for the guess.
pub enum Ask {
    Json(Method, String, Value),
    Form(String, Vec<(String, String)>),
}

/// Stands for the guess in an [`Ask`].
pub const GUESS: &str = "\u{1}guess\u{1}";

/// The right answer of a target.
pub enum Right {
    Fixed(String),
    /// The current code of an app's key.
    Totp(String),
}

/// One prepared victim of a path: the attacker's browser and what it sends.
pub struct Target {
    pub http: reqwest::Client,
    pub ask: Ask,
    pub right: Right,
    /// The `i`-th wrong guess (codes are also kept clear of the right one).
    pub wrong: fn(usize) -> String,
    /// Whose audit trail and counters tell what was checked.
    pub email: String,
}

/// How the wrong guesses that were checked are counted.
pub enum Checked {
    /// The answers say it ([`Verdict::Wrong`]).
    Answers,
    /// Audit events of the account: the event, and a text its detail contains.
    Audit(&'static str, &'static str),
    /// The code step's failure count of the account.
    CodeFailures,
    /// Nothing outside tells (each try of a code sent by SMS answers alike); only
    /// that the right answer is refused afterwards shows the bound held.
    Hidden,
}

/// What the right answer gets once the lock that followed the bound has ended.
pub enum After {
    /// Accepted after this many seconds.
    Waits(i64),
    /// Still refused: the code is dead (a new one must be sent).
    Dies,
}

type Prepare = for<'a> fn(&'a Nodes, String) -> Pin<Box<dyn Future<Output = Target> + 'a>>;

/// A path that checks a code or a password, with its documented bound.
pub struct GuessPath {
    pub name: &'static str,
    pub bound: usize,
    pub read: fn(&Answer) -> Verdict,
    pub checked: Checked,
    pub after: After,
    pub prepare: Prepare,
}

macro_rules! path {
    ($name:literal, $bound:literal, $read:path, $checked:expr, $after:expr, $prepare:path) => {
        GuessPath {
            name: $name,
            bound: $bound,
            read: $read,
            checked: $checked,
            after: $after,
            prepare: |n, e| Box::pin($prepare(n, e)),
        }
    };
}

use self::codes as c;
use self::passwords as p;
use After::{Dies, Waits};
use Checked::{Answers, Audit, CodeFailures, Hidden};

/// Every path that checks a code or a password: name, documented bound of wrong
/// tries, how its answers read, how checks are counted, what follows the lock, and
/// how a victim is prepared. A new path is one line here.
#[rustfmt::skip]
pub const PATHS: &[GuessPath] = &[
    path!("app code at sign-in", 5, c::api_code, Answers, Waits(61), c::app_code_at_sign_in),
    path!("SMS code at sign-in", 5, c::api_code, Answers, Dies, c::sms_code_at_sign_in),
    path!("recovery code", 5, c::api_code, Answers, Waits(61), c::recovery_code),
    path!("set-up confirmation of an app", 5, c::api_code, Answers, Waits(61), c::app_set_up),
    path!("set-up confirmation of a phone", 5, c::api_code, Hidden, Dies, c::phone_set_up),
    path!("mailed code of 'secure your account now'", 5, c::api_code, Audit("email_code_failed", "wrong code"), Dies, c::secure_mail_code),
    path!("console step-up", 5, c::api_code, Answers, Waits(61), c::console_step_up),
    path!("OIDC re-authentication: the code (max_age=0)", 5, c::page_code, CodeFailures, Waits(61), c::oidc_reauth_code),
    path!("OIDC re-authentication: the password (prompt=login)", 10, p::page_password, Audit("login_failed", "wrong password"), Waits(31), p::oidc_reauth_password),
    path!("password at sign-in", 10, p::sign_in, Audit("login_failed", "wrong password"), Waits(31), p::sign_in_password),
    path!("password of 'secure your account now'", 10, p::sign_in, Audit("login_failed", "wrong password"), Waits(31), p::secure_password),
    path!("password confirmation: remove a factor", 10, p::api_password, Answers, Waits(31), p::remove_factor),
    path!("password confirmation: new recovery codes", 10, p::api_password, Answers, Waits(31), p::new_recovery_codes),
    path!("password confirmation: begin setting up an app", 10, p::api_password, Answers, Waits(31), p::begin_app),
    path!("password confirmation: begin setting up a phone", 10, p::api_password, Answers, Waits(31), p::begin_phone),
    path!("password confirmation: a QR link by mail", 10, p::api_password, Answers, Waits(31), p::request_qr_link),
    path!("the QR link's password", 10, p::link_password, Audit("login_failed", "QR link"), Waits(31), p::qr_link_password),
];

/// The request that sends `guess` to `node` as `t` says.
fn request(node: &TestApp, t: &Target, guess: &str) -> reqwest::RequestBuilder {
    match &t.ask {
        Ask::Json(method, path, body) => t
            .http
            .request(method.clone(), format!("{}{path}", node.url))
            .json(&with_guess(body, guess)),
        Ask::Form(path, fields) => {
            let form: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), if v == GUESS { guess } else { v }))
                .collect();
            t.http.post(format!("{}{path}", node.url)).form(&form)
        }
    }
}

async fn answer(r: reqwest::RequestBuilder) -> Answer {
    let r = r.send().await.expect("request");
    Answer {
        status: r.status().as_u16(),
        location: crate::kit::location(&r),
        body: r.text().await.expect("body"),
    }
}

/// Sends `guess` to `node` as `t` says.
async fn send(node: &TestApp, t: &Target, guess: &str) -> Answer {
    answer(request(node, t, guess)).await
}

fn with_guess(v: &Value, guess: &str) -> Value {
    match v {
        Value::String(s) if s == GUESS => Value::String(guess.to_owned()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), with_guess(v, guess)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The `i`-th wrong guess for `t` now (a code is kept clear of the right ones).
fn wrong(node: &TestApp, t: &Target, i: usize) -> String {
    let g = (t.wrong)(i);
    match &t.right {
        Right::Totp(secret) if g.len() == 6 => wrong_code(node, Some(secret), i),
        Right::Fixed(right) if &g == right => format!("{g}0"),
        _ => g,
    }
}

fn right(node: &TestApp, t: &Target) -> String {
    match &t.right {
        Right::Fixed(r) => r.clone(),
        Right::Totp(secret) => node.code(secret),
    }
}

/// Wrong guesses that were checked, as `p` counts them (`answers`: the verdicts).
async fn checked(nodes: &Nodes, p: &GuessPath, t: &Target, answers: &[Verdict]) -> Option<usize> {
    let n = match p.checked {
        Answers => answers.iter().filter(|v| **v == Verdict::Wrong).count(),
        Audit(event, detail) => super::threat_kit::audited(&nodes.a, event, &t.email)
            .await
            .iter()
            .filter(|d| d.contains(detail))
            .count(),
        CodeFailures => {
            let sql = format!(
                "SELECT CAST(code_failures AS TEXT) FROM accounts WHERE email = '{}'",
                t.email
            );
            let v = crate::kit::stored_texts(&nodes.a, &sql).await;
            v[0].parse().expect("a count")
        }
        Hidden => return None,
    };
    Some(n)
}

/// `count` wrong guesses one after another, the `i`-th on `node(i)`; each must be
/// wrong (or say nothing), none refused or accepted.
async fn wrong_in_turn<'n>(
    p: &GuessPath,
    t: &Target,
    count: usize,
    node: impl Fn(usize) -> &'n TestApp,
) -> Vec<Verdict> {
    let mut seen = Vec::new();
    for i in 0..count {
        let n = node(i);
        let a = send(n, t, &wrong(n, t, i)).await;
        let v = (p.read)(&a);
        assert!(
            matches!(v, Verdict::Wrong | Verdict::Unclear),
            "{}: wrong guess {} of {count} got {v:?} ({} {})",
            p.name,
            i + 1,
            a.status,
            a.body.chars().take(300).collect::<String>()
        );
        seen.push(v);
    }
    seen
}

/// Fifty wrong guesses at once, the `i`-th to `node(i)`.
async fn fifty_at_once<'n>(t: &Target, node: impl Fn(usize) -> &'n TestApp) -> Vec<Answer> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let n = node(i);
        tasks.spawn(answer(request(n, t, &wrong(n, t, i))));
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.push(done.expect("task"));
    }
    all
}

fn email(path: usize, round: usize) -> String {
    format!("path{path}-round{round}@example.be")
}

async fn guessing_codes_and_passwords_on_every_path(backend: Backend) {
    let nodes = Nodes::start(backend, |c| {
        c.sms.per_ip_per_hour = 10_000;
        c.sms.global_per_hour = 10_000;
        c.oidc.clients = vec![super::threat_kit::portal_client()];
    })
    .await;
    let (a, b) = (&nodes.a, &nodes.b);
    let mut report = Vec::new();
    for (i, p) in PATHS.iter().enumerate() {
        let bound = p.bound;
        // One short of the bound: the right answer still works.
        let t = (p.prepare)(&nodes, email(i, 1)).await;
        let seen = wrong_in_turn(p, &t, bound - 1, |_| a).await;
        if let Some(n) = checked(&nodes, p, &t, &seen).await {
            assert_eq!(n, bound - 1, "{}: checked", p.name);
        }
        let r = send(a, &t, &right(a, &t)).await;
        assert_eq!(
            (p.read)(&r),
            Verdict::Accepted,
            "{}: the right answer after {} wrong: {} {}",
            p.name,
            bound - 1,
            r.status,
            r.body
        );

        // The bound, on two nodes in turn: then even the right answer is refused.
        let t = (p.prepare)(&nodes, email(i, 2)).await;
        let seen = wrong_in_turn(p, &t, bound, |k| nodes.node(k)).await;
        if let Some(n) = checked(&nodes, p, &t, &seen).await {
            assert_eq!(n, bound, "{}: checked on two nodes", p.name);
        }
        let last = nodes.node(bound);
        let r = send(last, &t, &right(last, &t)).await;
        let v = (p.read)(&r);
        assert_ne!(
            v,
            Verdict::Accepted,
            "{}: the right answer after {bound} wrong ones was accepted",
            p.name
        );
        match p.after {
            Waits(secs) => {
                a.clock.advance(chrono::Duration::seconds(secs));
                let r = send(a, &t, &right(a, &t)).await;
                assert_eq!(
                    (p.read)(&r),
                    Verdict::Accepted,
                    "{}: the right answer after the lock: {} {}",
                    p.name,
                    r.status,
                    r.body
                );
            }
            Dies => {
                a.clock.advance(chrono::Duration::seconds(61));
                let r = send(b, &t, &right(b, &t)).await;
                assert_ne!(
                    (p.read)(&r),
                    Verdict::Accepted,
                    "{}: the code lives",
                    p.name
                );
            }
        }

        // Fifty at once, on one node and then over two.
        let mut counts = Vec::new();
        for (round, two) in [(3, false), (4, true)] {
            let t = (p.prepare)(&nodes, email(i, round)).await;
            let answers = fifty_at_once(&t, |k| if two { nodes.node(k) } else { a }).await;
            let seen: Vec<Verdict> = answers.iter().map(|x| (p.read)(x)).collect();
            for (x, v) in answers.iter().zip(&seen) {
                assert_ne!(*v, Verdict::Accepted, "{}: {} {}", p.name, x.status, x.body);
            }
            let n = checked(&nodes, p, &t, &seen).await;
            if let Some(n) = n {
                assert_eq!(n, bound, "{}: {n} of fifty at once were checked", p.name);
            }
            let r = send(b, &t, &right(b, &t)).await;
            assert_ne!(
                (p.read)(&r),
                Verdict::Accepted,
                "{}: the right answer after fifty wrong ones at once",
                p.name
            );
            counts.push(n.map_or("not visible".to_owned(), |n| n.to_string()));
        }
        report.push(format!(
            "{:<55} bound {bound:>2}; fifty at once checked: one node {}, two nodes {}",
            p.name, counts[0], counts[1]
        ));
    }
    report.push(resets::a_reset_gives_no_new_tries(&nodes).await);
    eprintln!("guessing, every path:\n  {}", report.join("\n  "));
}
