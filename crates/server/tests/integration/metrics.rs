//! `/metrics` (issue 19, item 3): off by default; when on, a sign-in with a wrong and
//! a right code moves the counters and the route histograms, the exposition parses
//! as OpenMetrics text, and paths no route knows add no label value.

use crate::kit::{Backend, TestApp, PASSWORD};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

crate::on_both_backends!(
    metrics_are_404_when_off,
    a_sign_in_moves_the_counters_and_histograms,
    unknown_paths_add_no_route_label,
    metrics_on_their_own_address,
);

/// One sample: its name, labels and value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the exposition strictly: every line a HELP, TYPE or UNIT of a family
/// declared once, a sample of a declared family (`name{k="v",...} value`), or the
/// closing `# EOF`; histograms' buckets cumulative, ending in `+Inf` = `_count`.
fn parse(text: &str) -> Vec<Sample> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "ends with # EOF");
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(valid_name(name), "{line}");
            match kind {
                "TYPE" => {
                    let t = parts.next().unwrap().to_owned();
                    assert!(
                        ["counter", "gauge", "histogram", "info"].contains(&t.as_str()),
                        "{line}"
                    );
                    assert!(types.insert(name.to_owned(), t).is_none(), "twice: {line}");
                }
                "HELP" | "UNIT" => {}
                _ => panic!("unknown comment line {line}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value of {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((n, l)) => (n, labels_of(l.strip_suffix('}').expect("closed labels"))),
        };
        assert!(valid_name(name), "{line}");
        let family = ["_total", "_bucket", "_sum", "_count", "_info"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
            .unwrap_or(name);
        assert!(types.contains_key(family), "no TYPE for {line}");
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    check_histograms(&samples);
    samples
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with(|c: char| c.is_ascii_digit())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `k="v",k2="v2"` with `\\`, `\"` and `\n` escapes.
fn labels_of(mut s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    while !s.is_empty() {
        let (k, rest) = s
            .split_once("=\"")
            .unwrap_or_else(|| panic!("label in {s}"));
        assert!(valid_name(k), "label name {k}");
        let mut v = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().expect("closed label value") {
                (_, '\\') => match chars.next().expect("escape").1 {
                    'n' => v.push('\n'),
                    c @ ('\\' | '"') => v.push(c),
                    c => panic!("bad escape \\{c}"),
                },
                (i, '"') => break i,
                (_, c) => v.push(c),
            }
        };
        assert!(out.insert(k.to_owned(), v).is_none(), "label {k} twice");
        s = &rest[end + 1..];
        s = s.strip_prefix(',').unwrap_or(s);
    }
    out
}

fn check_histograms(samples: &[Sample]) {
    let mut buckets: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.name.ends_with("_bucket")) {
        let mut l = s.labels.clone();
        let le = l.remove("le").expect("le");
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap()
        };
        let key = format!("{}{l:?}", s.name.trim_end_matches("_bucket"));
        buckets.entry(key).or_default().push((le, s.value));
    }
    for (key, b) in &buckets {
        assert!(
            b.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{key}: {b:?}"
        );
        assert_eq!(b.last().unwrap().0, f64::INFINITY, "{key}");
    }
    for s in samples.iter().filter(|s| s.name.ends_with("_count")) {
        let key = format!("{}{:?}", s.name.trim_end_matches("_count"), s.labels);
        if let Some(b) = buckets.get(&key) {
            assert_eq!(b.last().unwrap().1, s.value, "{key}");
        }
    }
}

/// The value of `name` with (at least) `labels`, summed.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

async fn scrape_at(base: &str) -> Vec<Sample> {
    let r = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("scrape");
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    parse(&r.text().await.unwrap())
}

async fn with_metrics(backend: Backend) -> TestApp {
    TestApp::start_configured(backend, |c| c.metrics.enabled = true).await
}

async fn metrics_are_404_when_off(backend: Backend) {
    let app = TestApp::start(backend).await;
    let r = app.client().get("/metrics").await;
    assert_eq!(r.status, 404);
}

async fn a_sign_in_moves_the_counters_and_histograms(backend: Backend) {
    let app = with_metrics(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    let (_, secret) = c.enroll(&app, "an@example.be").await;
    c.post("/api/v1/logout", json!({})).await;
    let before = scrape_at(&app.url).await;
    let login = "tweestap_http_request_duration_seconds_count";
    let route = [
        ("route", "/api/v1/login"),
        ("method", "POST"),
        ("status", "2xx"),
    ];
    assert_eq!(
        value(&before, "tweestap_second_factor_checks_total", &[]),
        0.0
    );
    app.next_step();
    let r = c.login("an@example.be", PASSWORD).await;
    assert_eq!(r.body["state"], "second_factor", "{:?}", r.body);
    let wrong = c
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": "000000" }),
        )
        .await;
    assert_eq!(wrong.status, 401, "{:?}", wrong.body);
    let right = c
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(right.status, 200, "{:?}", right.body);
    let after = scrape_at(&app.url).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let sf = "tweestap_second_factor_checks_total";
    assert_eq!(moved(sf, &[("method", "app"), ("outcome", "ok")]), 1.0);
    assert_eq!(moved(sf, &[("method", "code"), ("outcome", "wrong")]), 1.0);
    assert_eq!(
        moved("tweestap_code_failures_total", &[("stage", "sign_in")]),
        1.0
    );
    let pw = "tweestap_password_checks_total";
    assert_eq!(moved(pw, &[("outcome", "ok")]), 1.0);
    assert_eq!(moved(login, &route), 1.0);
    let code_route = [("route", "/api/v1/login/second-factor"), ("method", "POST")];
    assert_eq!(
        moved(login, &[code_route[0], code_route[1], ("status", "2xx")]),
        1.0
    );
    assert_eq!(
        moved(login, &[code_route[0], code_route[1], ("status", "4xx")]),
        1.0
    );
    assert!(moved("tweestap_http_request_duration_seconds_sum", &route) > 0.0);
    // The hashing places: the configured bound, none running now.
    assert!(value(&after, "tweestap_password_hashes_max_running", &[]) >= 1.0);
    assert_eq!(value(&after, "tweestap_password_hashes_running", &[]), 0.0);
    assert!(value(&after, "tweestap_password_hashes_peak_running", &[]) >= 1.0);
    // The enrolment's notice mail, at least, went through the queue.
    assert!(after.iter().any(|s| s.name == "tweestap_mail_queue_depth"));
    // Five more wrong codes lock the code step.
    for _ in 0..5 {
        c.post("/api/v1/logout", json!({})).await;
        c.login("an@example.be", PASSWORD).await;
        c.post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": "000000" }),
        )
        .await;
    }
    let locked = scrape_at(&app.url).await;
    assert_eq!(
        value(&locked, "tweestap_lockouts_total", &[("guard", "code")]),
        1.0
    );
}

async fn unknown_paths_add_no_route_label(backend: Backend) {
    let app = with_metrics(backend).await;
    let c = app.client();
    let routes = |s: &[Sample]| -> BTreeSet<String> {
        s.iter()
            .filter_map(|s| s.labels.get("route").cloned())
            .collect()
    };
    // One of each kind first: the fallback, the API's, a route's parameter.
    for p in [
        "/nothing-here",
        "/api/v1/nothing-here",
        "/api/v1/me/factors/x",
    ] {
        c.get(p).await;
    }
    let brew = reqwest::Method::from_bytes(b"BREW").unwrap();
    c.send(brew, "/login", None).await;
    let before = routes(&scrape_at(&app.url).await);
    for i in 0..20 {
        let r = c.get(&format!("/probe-{i}")).await;
        assert_eq!(r.status, 404);
        c.get(&format!("/api/v1/probe-{i}")).await;
        c.get(&format!("/api/v1/me/factors/probe-{i}")).await;
        c.send(
            reqwest::Method::from_bytes(format!("X{i}").as_bytes()).unwrap(),
            "/login",
            None,
        )
        .await;
    }
    let samples = scrape_at(&app.url).await;
    let after = routes(&samples);
    assert_eq!(before, after);
    assert!(after.iter().all(|r| !r.contains("probe")), "{after:?}");
    assert!(after.contains("unmatched"), "{after:?}");
    let methods: BTreeSet<&str> = samples
        .iter()
        .filter_map(|s| s.labels.get("method").map(String::as_str))
        .collect();
    assert!(methods.iter().all(|m| !m.starts_with('X')), "{methods:?}");
}

async fn metrics_on_their_own_address(backend: Backend) {
    let app = TestApp::start_configured(backend, |c| {
        c.metrics.enabled = true;
        c.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    // Not on the main listener, then.
    assert_eq!(app.client().get("/metrics").await.status, 404);
    app.client().get("/login").await;
    let own = app
        .server
        .as_ref()
        .unwrap()
        .metrics_addr
        .expect("its address");
    let s = scrape_at(&format!("http://{own}")).await;
    let page = [("route", "/login"), ("method", "GET"), ("status", "2xx")];
    assert_eq!(
        value(&s, "tweestap_http_request_duration_seconds_count", &page),
        1.0
    );
}
