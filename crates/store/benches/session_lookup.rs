//! The session lookup every signed-in request makes (issue 19, item 4): the session
//! and its account by the token's hash, one of 10,000 live sessions, a hit and a
//! miss, on SQLite and (when it can be reached) PostgreSQL.
//!
//! `cargo bench -p tweestap-store --bench session_lookup` (N=... for another size).

#![allow(clippy::expect_used, clippy::unwrap_used)] // A benchmark: a failed set-up should stop it loudly.

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use tokio::runtime::Runtime;
use tweestap_domain::account::{AccountId, Email, Role};
use tweestap_domain::session::{new_sid, Session, SessionStage};
use tweestap_domain::store::{NewAccount, Store};
use tweestap_domain::token::{Token, TokenHash};
use tweestap_store::{PostgresStore, SqliteStore};

fn size() -> usize {
    std::env::var("N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}

/// `n` accounts with one signed-in session each; the hashes of their tokens.
async fn fill(store: &dyn Store, n: usize) -> Vec<TokenHash> {
    let now = Utc::now();
    let accounts: Vec<NewAccount> = (0..n)
        .map(|i| NewAccount {
            id: AccountId::random(),
            email: Email::parse(&format!("persoon{i:06}@example.org")).expect("email"),
            name: format!("Persoon {i}"),
            role: Role::User,
            password_hash: "!no-password".into(),
            created_at: now,
        })
        .collect();
    for chunk in accounts.chunks(10_000) {
        store.import_accounts(chunk, &[]).await.expect("accounts");
    }
    let mut hashes = Vec::with_capacity(n);
    for a in &accounts {
        let hash = Token::generate().hash();
        let s = Session {
            id_hash: hash.clone(),
            account_id: a.id,
            stage: SessionStage::Authenticated,
            created_at: now,
            last_seen_at: now,
            auth_time: now,
            amr: "pwd otp".into(),
            ip: Some("127.0.0.1".into()),
            user_agent: Some("bench".into()),
            sid: new_sid(),
        };
        store.insert_session(&s).await.expect("session");
        hashes.push(hash);
    }
    hashes
}

fn lookups(c: &mut Criterion, name: &str, rt: &Runtime, store: &dyn Store, hashes: &[TokenHash]) {
    let mut g = c.benchmark_group(format!("session_lookup_{name}"));
    let mut i = 0usize;
    g.bench_function("with account, hit", |b| {
        b.iter(|| {
            i = (i + 7919) % hashes.len();
            let found = rt
                .block_on(store.session_with_account(black_box(&hashes[i])))
                .expect("lookup");
            assert!(found.is_some());
        })
    });
    let unknown = Token::generate().hash();
    g.bench_function("with account, miss", |b| {
        b.iter(|| {
            rt.block_on(store.session_with_account(black_box(&unknown)))
                .expect("lookup")
        })
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = rt
        .block_on(SqliteStore::open(&dir.path().join("bench.db"), true))
        .expect("sqlite");
    let hashes = rt.block_on(fill(&sqlite, size()));
    lookups(c, "sqlite", &rt, &sqlite, &hashes);

    let Some(url) = rt.block_on(tweestap_testkit::fresh_postgres_database()) else {
        eprintln!("\n!!!! PostgreSQL not reachable: its session lookup is not measured !!!!\n");
        return;
    };
    let pg = rt
        .block_on(PostgresStore::connect(&url, &Default::default(), true))
        .expect("postgres");
    let hashes = rt.block_on(fill(&pg, size()));
    lookups(c, "postgres", &rt, &pg, &hashes);
    drop(pg);
    rt.block_on(tweestap_testkit::drop_database(&url));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = bench
}
criterion_main!(benches);
