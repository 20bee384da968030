//! Telling accounts apart: wherever a stranger types an e-mail address (sign-in,
//! forgotten password, "secure your account now", over the API and the pages) an
//! unknown address and a known one (with a wrong password) answer alike — status,
//! body, headers, cookies — and as fast: the medians of 30 requests each stay
//! within 1.5× of each other (Argon2 runs for unknown addresses too; the ratio
//! does not depend on the build). So do the throttles after eleven wrong
//! passwords, the passkey options a browser gets after either, and QR links (which
//! take no address: a link that never existed answers as a malformed one).

use super::threat_kit::{client_at, fresh_address, fresh_client};
use crate::kit::{csrf_of, Backend, Client, TestApp, PASSWORD};
use serde_json::{json, Value};
use std::time::Instant;

crate::on_both_backends!(telling_accounts_apart);

/// Every request times this many times per kind of address.
const SAMPLES: usize = 30;
/// The most the medians of known and unknown addresses may differ by.
const MAX_RATIO: f64 = 1.5;

/// What an answer shows a stranger, with the typed address and the random parts
/// (CSRF tokens, cookie values, dates) masked.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: u16,
    headers: Vec<(String, String)>,
    cookies: Vec<String>,
    body: String,
}

async fn seen(r: reqwest::Response, typed: &str) -> Seen {
    let status = r.status().as_u16();
    let mut headers = Vec::new();
    let mut cookies = Vec::new();
    for (k, v) in r.headers() {
        let v = v.to_str().unwrap_or("(binary)").to_owned();
        match k.as_str() {
            "date" => {}
            // The cookie's name and attributes, not its random value.
            "set-cookie" => {
                let (name, rest) = v.split_once('=').unwrap_or((&v, ""));
                let attrs = rest.split_once(';').map_or("", |(_, a)| a);
                cookies.push(format!("{name}; {attrs}"));
            }
            k => headers.push((k.to_owned(), v.replace(typed, "ADDRESS"))),
        }
    }
    headers.sort();
    cookies.sort();
    let mut body = r.text().await.expect("body").replace(typed, "ADDRESS");
    while let Some(at) = body.find("name=\"csrf\" value=\"") {
        let start = at + 19;
        body.replace_range(start..start + 64, "");
        body.replace_range(at..at + 5, "NAME=");
    }
    Seen {
        status,
        headers,
        cookies,
        body,
    }
}

/// One way a stranger can ask about an address.
#[derive(Clone, Copy, Debug)]
enum Probe {
    ApiSignIn,
    ApiForgot,
    ApiSecure,
    PageSignIn,
    PageForgot,
    PageSecure,
}

impl Probe {
    const ALL: [Probe; 6] = [
        Probe::ApiSignIn,
        Probe::ApiForgot,
        Probe::ApiSecure,
        Probe::PageSignIn,
        Probe::PageForgot,
        Probe::PageSecure,
    ];

    /// `email` typed with a wrong password (where one is asked).
    async fn ask(self, c: &Client, email: &str) -> reqwest::Response {
        let api =
            |path: &str, body: Value| c.http.post(format!("{}{path}", c.base)).json(&body).send();
        let wrong = "niet het wachtwoord";
        let page = |path: &'static str, fields: Vec<(&'static str, String)>| async move {
            let form = c
                .http
                .get(format!("{}{path}", c.base))
                .send()
                .await
                .expect("form");
            let csrf = csrf_of(&form.text().await.expect("html"));
            let mut fields = fields;
            fields.push(("csrf", csrf));
            c.http
                .post(format!("{}{path}", c.base))
                .form(&fields)
                .send()
                .await
                .expect("post")
        };
        let with_password = vec![("email", email.to_owned()), ("password", wrong.into())];
        match self {
            Probe::ApiSignIn => api("/api/v1/login", json!({"email": email, "password": wrong}))
                .await
                .expect("request"),
            Probe::ApiForgot => api("/api/v1/password/forgot", json!({"email": email}))
                .await
                .expect("request"),
            Probe::ApiSecure => api("/api/v1/secure", json!({"email": email, "password": wrong}))
                .await
                .expect("request"),
            Probe::PageSignIn => page("/login", with_password).await,
            Probe::PageForgot => page("/password/forgot", vec![("email", email.to_owned())]).await,
            Probe::PageSecure => page("/secure", with_password).await,
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The medians (ms) of `probe` for the known and the unknown addresses (all but
/// the first of each), from a fresh address.
async fn medians(app: &TestApp, probe: Probe, known: &[String], unknown: &[String]) -> (f64, f64) {
    let c = fresh_client(app);
    let (mut k, mut u) = (Vec::new(), Vec::new());
    for i in 1..SAMPLES {
        let mut pair = [(&known[i], &mut k), (&unknown[i], &mut u)];
        if i % 2 == 1 {
            pair.reverse();
        }
        for (email, into) in pair {
            // Spaced, as a careful attacker would: what the last one left to do in
            // the background does not weigh on this one.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let t = Instant::now();
            let r = probe.ask(&c, email).await;
            assert!(r.status().as_u16() < 500, "{probe:?}: {}", r.status());
            r.bytes().await.expect("body");
            into.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    (median(k), median(u))
}

async fn telling_accounts_apart(backend: Backend) {
    let app = TestApp::start(backend).await;
    // Of the same length, so the pages that show the address typed are too.
    let known: Vec<String> = (0..SAMPLES)
        .map(|i| format!("lid{i:02}@example.be"))
        .collect();
    for e in &known {
        app.add_user(e).await;
    }
    let unknown: Vec<String> = (0..SAMPLES)
        .map(|i| format!("gst{i:02}@example.be"))
        .collect();

    // Alike, probe by probe: each pair from one fresh browser at a fresh address.
    for probe in Probe::ALL {
        let c = fresh_client(&app);
        let a = seen(probe.ask(&c, &known[0]).await, &known[0]).await;
        let b = seen(probe.ask(&c, &unknown[0]).await, &unknown[0]).await;
        assert_eq!(a, b, "{probe:?}: a known and an unknown address differ");
    }

    // As fast: medians of 30 each, known and unknown in turn (which goes first
    // alternates), each address once, from an address of its own per round (the
    // throttles stay out of it). The machine is shared, so a round that strays is
    // measured again, up to three times; a real difference strays every time.
    let mut report = Vec::new();
    for probe in [Probe::ApiSignIn, Probe::ApiSecure, Probe::ApiForgot] {
        let mut rounds = Vec::new();
        for _ in 0..3 {
            let (mk, mu) = medians(&app, probe, &known, &unknown).await;
            rounds.push((mk, mu, mk.max(mu) / mk.min(mu)));
            if rounds.last().is_some_and(|r| r.2 <= MAX_RATIO) {
                break;
            }
        }
        let said: Vec<String> = rounds
            .iter()
            .map(|(k, u, r)| format!("known {k:.2} ms, unknown {u:.2} ms, ratio {r:.2}"))
            .collect();
        report.push(format!("{probe:?}: {}", said.join("; again: ")));
        assert!(
            rounds.iter().any(|r| r.2 <= MAX_RATIO),
            "the medians tell accounts apart: {}",
            report.last().expect("a line")
        );
    }
    eprintln!(
        "telling accounts apart, medians of {} each:\n  {}",
        SAMPLES - 1,
        report.join("\n  ")
    );

    // Throttled alike: eleven wrong passwords, then the right one.
    let mut answers = Vec::new();
    let n = fresh_address();
    for email in [&known[0], &unknown[0]] {
        let c = client_at(&app, n);
        let mut steps = Vec::new();
        for _ in 0..11 {
            let r = c.login(email, "raden maar").await;
            steps.push((r.status, r.body));
        }
        let r = c.login(email, PASSWORD).await;
        steps.push((r.status, r.body));
        answers.push(steps);
    }
    assert_eq!(answers[0], answers[1], "the throttle tells");

    // The passkey options a browser gets after either failed sign-in.
    let mut options = Vec::new();
    for email in [&known[1], &unknown[1]] {
        let c = fresh_client(&app);
        assert_eq!(c.login(email, "raden maar").await.status, 401);
        let r = c.post("/api/v1/login/passkey/options", json!({})).await;
        let mut o = r.body;
        if let Some(x) = o.pointer_mut("/options/publicKey/challenge") {
            *x = Value::Null;
        }
        options.push((r.status, o));
    }
    assert_eq!(options[0], options[1], "the passkey options tell");

    // QR links take no address: one that never existed answers as a malformed one
    // (of the same length, as the pages show the path in their language links).
    let c = fresh_client(&app);
    let (never, malformed) = ("A".repeat(43), ".".repeat(43));
    for path in ["/api/v1/enrollment-links/", "/enroll/"] {
        let a = seen(get(&c, &format!("{path}{never}")).await, &never).await;
        let b = seen(get(&c, &format!("{path}{malformed}")).await, &malformed).await;
        assert_eq!(a, b, "{path}");
    }
}

async fn get(c: &Client, path: &str) -> reqwest::Response {
    c.http
        .get(format!("{}{path}", c.base))
        .send()
        .await
        .expect("get")
}
