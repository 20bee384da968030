//! Rendering pages with the real templates and locales (issue 19, item 4): the
//! sign-in page (anonymous, Dutch and English) and the profile page (signed in),
//! each answered whole by the real router: handler, template, translations,
//! headers. The profile page also looks its session and factors up, in a SQLite
//! file on this machine's disk.
//!
//! `cargo bench -p tweestap-web --bench pages`; results in docs/benchmarks.md.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "benchmark code: a broken expectation stops the run"
)]

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use criterion::{criterion_group, criterion_main, Criterion};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::runtime::Runtime;
use tower::ServiceExt;
use tweestap_domain::account::Role;
use tweestap_domain::audit::RequestContext;
use tweestap_domain::clock::SystemClock;
use tweestap_domain::password::{Argon2Settings, PasswordHasher};
use tweestap_domain::secret_box::{MasterKey, SecretBox};
use tweestap_domain::service::LoginOutcome;
use tweestap_domain::settings::Settings;
use tweestap_domain::Tweestap;
use tweestap_store::SqliteStore;
use tweestap_web::WebSettings;

const PASSWORD: &str = "correct horse battery";

/// One GET through the router; the body read to its end.
async fn get(router: &axum::Router, path: &str, lang: &str, cookie: Option<&str>) -> usize {
    let mut req = Request::get(path).header(header::ACCEPT_LANGUAGE, lang);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let mut req = req.body(Body::empty()).unwrap();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    let r = router.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap()
        .len()
}

fn pages(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::generate();
    let (router, session) = rt.block_on(async {
        let store = SqliteStore::open(&dir.path().join("bench.db"), true)
            .await
            .unwrap();
        // Cheap Argon2: only the one sign-in below hashes.
        let hasher = PasswordHasher::new(
            Argon2Settings {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            1,
        )
        .unwrap();
        let app = Arc::new(Tweestap::new(
            Arc::new(store),
            Arc::new(SystemClock),
            hasher,
            SecretBox::new(&master),
            Settings::default(),
        ));
        app.add_account("an@example.be", "An Peeters", Role::User, PASSWORD)
            .await
            .unwrap();
        let outcome = app
            .login("an@example.be", PASSWORD, &RequestContext::default())
            .await
            .unwrap();
        let LoginOutcome::Authenticated(token) = outcome else {
            panic!("no factor: signed in at once");
        };
        let web = WebSettings {
            public_url: "http://127.0.0.1:8080".into(),
            ..WebSettings::default()
        };
        let router = tweestap_web::router(app, &master, web);
        (router, format!("tweestap_session={}", token.as_str()))
    });
    let mut g = c.benchmark_group("pages");
    g.bench_function("sign_in_nl", |b| {
        b.iter(|| rt.block_on(get(&router, "/login", "nl", None)))
    });
    g.bench_function("sign_in_en", |b| {
        b.iter(|| rt.block_on(get(&router, "/login", "en", None)))
    });
    g.bench_function("profile_nl", |b| {
        b.iter(|| rt.block_on(get(&router, "/account", "nl", Some(&session))))
    });
    g.finish();
}

criterion_group!(benches, pages);
criterion_main!(benches);
