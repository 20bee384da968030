//! The whole command: build, set up each backend, run the rounds, report.

use crate::backend::{Backend, Kind};
use crate::cli::{Args, BackendChoice, Scenario};
use crate::privacyidea::PrivacyIdea;
use crate::results::{
    right_saturated, sign_in_saturated, wrong_saturated, BackendResults, Footprint, Results, ARGON,
    BENCH_CPU, DB_CPU, PRIVACYIDEA, RATIO_PI, RATIO_SIGN_IN, RATIO_SIGN_IN_CPU, RATIO_SIGN_IN_MAX,
    RATIO_SIGN_IN_MAX_CPU, RIGHT, SIGN_IN, WRONG, WRONG_PACED,
};
use crate::scenarios::Ctx;
use crate::seed::Seeded;
use crate::stats::Summary;
use crate::BoxError;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

struct Live {
    backend: Backend,
    seeded: Arc<Seeded>,
    client: (String, String),
}

pub async fn main(args: Args) -> Result<(), BoxError> {
    let bin = match &args.server_bin {
        Some(b) => b.clone(),
        None => crate::server::build_release()?,
    };
    let binary_mb = std::fs::metadata(&bin)
        .map_err(|e| format!("{}: {e}", bin.display()))?
        .len() as f64
        / 1e6;
    let kinds = match args.backend {
        BackendChoice::Sqlite => vec![Kind::Sqlite],
        BackendChoice::Postgres => vec![Kind::Postgres],
        BackendChoice::Both => vec![Kind::Sqlite, Kind::Postgres],
    };
    let mut results = Vec::new();
    let mut live = Vec::new();
    let mut pg_version = String::new();
    for kind in kinds {
        let mut r = BackendResults::new(kind);
        match Backend::create(kind).await? {
            None => r.skipped = Some("PostgreSQL cannot be used (see the message above)".into()),
            Some(backend) => {
                if kind == Kind::Postgres {
                    pg_version = crate::machine::postgres_version(&backend.database_url).await;
                }
                let started = std::time::Instant::now();
                let config = crate::seed::config(&backend.config_path)?;
                let seeded = crate::seed::seed(
                    &config,
                    args.accounts,
                    args.wrong_sessions,
                    args.right_codes,
                )
                .await?;
                let client = crate::seed::oidc_client(&config).await?;
                r.seed_seconds = started.elapsed().as_secs_f64();
                // A first start makes the ID-token signing keys (an RSA key takes
                // 0.1 to 0.5 s to generate): the start and the idle figures are for
                // an existing database, as a server restarts on one.
                crate::server::start(&bin, &backend.config_path, backend.port)
                    .await?
                    .stop()
                    .await;
                live.push(Live {
                    backend,
                    seeded: Arc::new(seeded),
                    client,
                });
            }
        }
        results.push(r);
    }
    let (mut pi, mut pi_skipped) = (None, None);
    if args.wants(Scenario::Privacyidea) {
        match crate::privacyidea::start(&args.privacyidea_setup, args.privacyidea_tokens).await {
            Ok(p) => pi = Some(p),
            Err(e) => {
                let why = format!("privacyIDEA scenario skipped: {e}");
                eprintln!("\n=== {why} ===\n");
                pi_skipped = Some(why);
            }
        }
    }
    let outcome = rounds(&args, &bin, &live, &mut results, pi.as_ref()).await;
    let pi_version = pi.as_ref().map(|p| p.version.clone());
    if let Some(p) = pi {
        p.stop().await;
    }
    for l in live {
        l.backend.remove().await;
    }
    outcome?;
    let report = Results {
        command: Args::shown(),
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        machine: crate::machine::Machine::read(pg_version),
        duration_seconds: args.duration,
        connections: args.connections,
        runs: args.runs,
        accounts: args.accounts,
        binary: bin.display().to_string(),
        binary_mb,
        privacyidea: pi_version,
        privacyidea_skipped: pi_skipped,
        backends: results,
    };
    let markdown = crate::report::render(&report, &args);
    println!("{markdown}");
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    if let Some(path) = &args.write {
        crate::report::write_block(path, &markdown)?;
        eprintln!("rewrote the generated block of {}", path.display());
    }
    Ok(())
}

async fn rounds(
    args: &Args,
    bin: &Path,
    live: &[Live],
    results: &mut [BackendResults],
    pi: Option<&PrivacyIdea>,
) -> Result<(), BoxError> {
    for round in 1..=args.runs.max(1) {
        for l in live {
            let Some(r) = results.iter_mut().find(|r| r.kind == l.backend.kind) else {
                continue;
            };
            eprintln!("round {round}/{}: {}", args.runs, l.backend.kind.name());
            one_round(args, bin, l, r, pi).await?;
        }
    }
    Ok(())
}

async fn one_round(
    args: &Args,
    bin: &Path,
    l: &Live,
    r: &mut BackendResults,
    pi: Option<&PrivacyIdea>,
) -> Result<(), BoxError> {
    let server = crate::server::start(bin, &l.backend.config_path, l.backend.port).await?;
    let outcome = scenarios(args, &server, l, r, pi).await;
    server.stop().await;
    outcome
}

async fn scenarios(
    args: &Args,
    server: &crate::server::Running,
    l: &Live,
    r: &mut BackendResults,
    pi: Option<&PrivacyIdea>,
) -> Result<(), BoxError> {
    let ctx = Ctx {
        http: crate::load::Http::new(&server.url),
        seeded: l.seeded.clone(),
        pid: server.pid,
        connections: args.connections,
        saturating: args.saturating_connections,
        duration: Duration::from_secs_f64(args.duration),
        client: l.client.clone(),
    };
    if args.wants(Scenario::Footprint) {
        // Idle: after the start, before any request.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let [rss, anon, file, shmem] =
            crate::server::rss_parts_kb(server.pid).map(|kb| kb as f64 / 1024.0);
        r.footprint.push(Footprint {
            start_to_ready_ms: server.start_to_ready.as_secs_f64() * 1000.0,
            idle_rss_mb: rss,
            idle_anon_mb: anon,
            idle_file_mb: file,
            idle_shmem_mb: shmem,
        });
    }
    if args.wants(Scenario::Pages) {
        for (name, s) in crate::scenarios::pages(&ctx).await? {
            r.push(&name, s);
        }
    }
    if args.wants(Scenario::Code) || (pi.is_some() && args.wants(Scenario::Privacyidea)) {
        let code = crate::scenarios::code_step(&ctx).await?;
        if let Some(pi) = pi {
            let p = pi.wrong_codes(ctx.plan()).await;
            if p.per_second > 0.0 {
                r.ratio(RATIO_PI, code.wrong.per_second / p.per_second);
            }
            r.push(PRIVACYIDEA, p);
        }
        r.push(WRONG, code.wrong);
        r.push(
            &wrong_saturated(args.saturating_connections),
            code.saturated,
        );
        r.push(WRONG_PACED, code.paced);
        r.push(RIGHT, code.right);
        r.push(
            &right_saturated(args.saturating_connections),
            code.right_saturated,
        );
    }
    let mut argon_rate = None;
    if args.wants(Scenario::Signin) {
        // The raw rate just before and just after, averaged: the machine is noisy.
        let before = argon(&l.seeded, args.duration).await?;
        // At the closed loop's connections, then at the code step's saturating
        // ones: with few clients the hashing places wait between two of them while
        // those take their code steps.
        let (s, cpu) = sign_ins(&ctx, ctx.plan(), server.pid).await;
        let saturated_plan = crate::load::Plan {
            connections: ctx.saturating,
            ..ctx.plan()
        };
        let (sat, sat_cpu) = sign_ins(&ctx, saturated_plan, server.pid).await;
        if let Some(c) = cpu {
            if let Some(db) = c.database.filter(|_| l.backend.kind == Kind::Postgres) {
                r.ratio(DB_CPU, db * 1e3);
            }
            r.ratio(BENCH_CPU, c.bench * 1e3);
        }
        let after = argon(&l.seeded, args.duration).await?;
        let a = (before.0 + after.0) / 2.0;
        let raw_cpu = (before.1 + after.1) / 2.0;
        if let Some(c) = cpu {
            r.ratio(RATIO_SIGN_IN_CPU, raw_cpu / c.server);
        }
        if let Some(c) = sat_cpu {
            r.ratio(RATIO_SIGN_IN_MAX_CPU, raw_cpu / c.server);
        }
        r.ratio(ARGON, a);
        r.ratio(RATIO_SIGN_IN, s.per_second / a);
        r.ratio(RATIO_SIGN_IN_MAX, sat.per_second / a);
        r.push(SIGN_IN, s);
        r.push(&sign_in_saturated(ctx.saturating), sat);
        argon_rate = Some(a);
    }
    if args.wants(Scenario::Overload) {
        let a = match argon_rate {
            Some(a) => a,
            None => argon(&l.seeded, args.duration).await?.0,
        };
        let o = crate::overload::run(
            &ctx,
            a,
            args.flood_factor,
            args.flood_connections,
            Duration::from_secs_f64(args.settle),
        )
        .await?;
        r.overload.push(o);
    }
    Ok(())
}

/// CPU seconds per full sign-in, of each part on this machine.
#[derive(Clone, Copy)]
struct JourneyCpu {
    server: f64,
    /// Every PostgreSQL process's, when it runs on this machine.
    database: Option<f64>,
    /// The load generator's own.
    bench: f64,
}

/// Full sign-ins with `plan`, and the CPU they cost (none when some failed: their
/// CPU would be charged to the others).
async fn sign_ins(ctx: &Ctx, plan: crate::load::Plan, pid: u32) -> (Summary, Option<JourneyCpu>) {
    use crate::server::{cpu_seconds, processes_cpu_seconds};
    let own = std::process::id();
    let before = (
        cpu_seconds(pid),
        processes_cpu_seconds("postgres"),
        cpu_seconds(own),
    );
    let s = crate::scenarios::sign_in(ctx, plan).await;
    let cpu = cpu_seconds(pid) - before.0;
    let database = processes_cpu_seconds("postgres")
        .zip(before.1)
        .map(|(a, b)| a - b);
    let bench = cpu_seconds(own) - before.2;
    let journeys = s.requests as f64;
    let per = (s.errors == 0 && journeys > 0.0 && cpu > 0.0).then(|| JourneyCpu {
        server: cpu / journeys,
        database: database.map(|d| d / journeys),
        bench: bench / journeys,
    });
    (s, per)
}

async fn argon(seeded: &Seeded, duration: f64) -> Result<(f64, f64), BoxError> {
    let secs = duration.clamp(1.0, 5.0);
    Ok(crate::argon::rate(seeded.hash.clone(), crate::seed::PASSWORD, secs).await?)
}
