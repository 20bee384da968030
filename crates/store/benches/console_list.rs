//! The console's account list at 100,000 accounts (issue 16: "keyset paging that
//! stays fast"): one page of 50, the first and one deep in the list, unfiltered and
//! filtered by second-factor state, on SQLite and (when it can be reached)
//! PostgreSQL. A third of the accounts have an app, a tenth SMS, a few both.
//!
//! `cargo bench -p tweestap-store --bench console_list` (N=... for another size).

#![allow(clippy::expect_used, clippy::unwrap_used)] // A benchmark: a failed set-up should stop it loudly.

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use tokio::runtime::Runtime;
use tweestap_domain::account::{AccountId, Email, Role};
use tweestap_domain::console::{AccountFilter, Cursor, TwoFactorState};
use tweestap_domain::factor::{Factor, FactorId, FactorKind};
use tweestap_domain::store::{NewAccount, Store};
use tweestap_store::{PostgresStore, SqliteStore};

fn size() -> usize {
    std::env::var("N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000)
}

async fn fill(store: &dyn Store, n: usize) {
    let now = Utc::now();
    let accounts: Vec<NewAccount> = (0..n)
        .map(|i| NewAccount {
            id: AccountId::random(),
            email: Email::parse(&format!("persoon{i:06}@example.org")).expect("email"),
            name: format!("Persoon {i}"),
            role: if i % 20 == 0 {
                Role::Support
            } else {
                Role::User
            },
            password_hash: "!no-password".into(),
            created_at: now,
        })
        .collect();
    for chunk in accounts.chunks(10_000) {
        store.import_accounts(chunk, &[]).await.expect("accounts");
    }
    for (i, a) in accounts.iter().enumerate() {
        let kinds: &[FactorKind] = match i % 30 {
            0..=9 => &[FactorKind::Totp],
            10..=12 => &[FactorKind::Sms],
            13 => &[FactorKind::Totp, FactorKind::Sms],
            _ => &[],
        };
        for &kind in kinds {
            let f = Factor {
                id: FactorId(uuid::Uuid::new_v4()),
                account_id: a.id,
                kind,
                label: "bench".into(),
                secret_sealed: vec![0; 48],
                created_at: now,
                confirmed_at: Some(now),
                last_used_at: None,
                last_step: None,
            };
            store.insert_factor(&f).await.expect("factor");
        }
    }
}

fn pages(c: &mut Criterion, name: &str, rt: &Runtime, store: &dyn Store) {
    let mut g = c.benchmark_group(format!("console_list_{name}"));
    let deep = Cursor(format!("persoon{:06}@example.org", size() * 9 / 10));
    let cases: [(&str, AccountFilter, Option<&Cursor>); 5] = [
        ("first page", AccountFilter::default(), None),
        ("deep page", AccountFilter::default(), Some(&deep)),
        (
            "none, first page",
            AccountFilter {
                two_factor: Some(TwoFactorState::None),
                ..Default::default()
            },
            None,
        ),
        (
            "both (rare), first page",
            AccountFilter {
                two_factor: Some(TwoFactorState::Both),
                ..Default::default()
            },
            None,
        ),
        (
            "search 'persoon0999'",
            AccountFilter {
                q: Some("persoon0999".into()),
                ..Default::default()
            },
            None,
        ),
    ];
    for (label, filter, after) in cases {
        g.bench_function(label, |b| {
            b.iter(|| {
                rt.block_on(store.list_accounts_page(&filter, &[], after, 51))
                    .expect("page")
            })
        });
    }
    g.finish();
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = rt
        .block_on(SqliteStore::open(&dir.path().join("bench.db"), true))
        .expect("sqlite");
    rt.block_on(fill(&sqlite, size()));
    pages(c, "sqlite", &rt, &sqlite);

    let Some(url) = rt.block_on(tweestap_testkit::fresh_postgres_database()) else {
        return;
    };
    let pg = rt
        .block_on(PostgresStore::connect(&url, &Default::default(), true))
        .expect("postgres");
    rt.block_on(fill(&pg, size()));
    // Fresh planner statistics, as autovacuum gathers within a minute of a big import.
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(&url).await.expect("connect");
        sqlx::query("ANALYZE")
            .execute(&pool)
            .await
            .expect("analyze");
        pool.close().await;
    });
    pages(c, "postgres", &rt, &pg);
    drop(pg);
    rt.block_on(tweestap_testkit::drop_database(&url));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
