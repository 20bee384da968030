//! The command line.

use clap::{Parser, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "tweestap-bench",
    about = "Load generator for tweestap: real journeys over HTTP on loopback, on SQLite and PostgreSQL"
)]
pub struct Args {
    /// What to run: `all`, or one or more of the scenarios.
    #[arg(value_enum, default_value = "all")]
    pub scenarios: Vec<Scenario>,
    /// The database backend(s) to run on.
    #[arg(long, value_enum, default_value = "both")]
    pub backend: BackendChoice,
    /// Seconds of load per measurement.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Concurrent connections of the closed-loop scenarios.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Connections of the code step's run at its maximum rate (whose 70% the
    /// paced run then sends).
    #[arg(long, default_value_t = 16)]
    pub saturating_connections: usize,
    /// Runs per scenario; the report shows their medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Accounts seeded (each with an app factor). A right code uses an account once
    /// per 30 s time step, so this bounds the right codes per step.
    #[arg(long, default_value_t = 20_000)]
    pub accounts: usize,
    /// Half-signed-in sessions the wrong codes rotate over.
    #[arg(long, default_value_t = 1_000)]
    pub wrong_sessions: usize,
    /// Right codes prepared per run of the code step.
    #[arg(long, default_value_t = 4_000)]
    pub right_codes: usize,
    /// The overload scenario's password flood, as a multiple of the raw Argon2id
    /// rate measured in the same run.
    #[arg(long, default_value_t = 4.0)]
    pub flood_factor: f64,
    /// Connections of the password flood.
    #[arg(long, default_value_t = 64)]
    pub flood_connections: usize,
    /// Seconds to wait after the flood before reading the server's memory.
    #[arg(long, default_value_t = 10.0)]
    pub settle: f64,
    /// The tweestap binary to start. Without it the command builds
    /// target/release/tweestap with `cargo build --release -p tweestap`.
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// Rewrite the generated block (between `<!-- bench:begin -->` and
    /// `<!-- bench:end -->`) of this Markdown file with the results.
    #[arg(long)]
    pub write: Option<PathBuf>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// privacyIDEA's set-up script (see bench/privacyidea/README.md).
    #[arg(long, default_value = "bench/privacyidea/setup.sh")]
    pub privacyidea_setup: PathBuf,
    /// TOTP tokens privacyIDEA is set up with.
    #[arg(long, default_value_t = 200)]
    pub privacyidea_tokens: usize,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// Every scenario below.
    All,
    /// Idle memory, start-to-ready time with an existing database, binary size.
    Footprint,
    /// Sign-in page, profile, /api/v1/me, forward-auth, OIDC userinfo.
    Pages,
    /// The code step on half-signed-in sessions: wrong codes, then right ones.
    Code,
    /// Password and code, distinct users, against the raw Argon2id rate.
    Signin,
    /// A password flood beyond the hashing capacity while others take code steps
    /// and load pages.
    Overload,
    /// privacyIDEA's /validate/check with the same load, next to the code step.
    Privacyidea,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    Sqlite,
    Postgres,
    Both,
}

impl Args {
    pub fn wants(&self, s: Scenario) -> bool {
        self.scenarios.contains(&Scenario::All) || self.scenarios.contains(&s)
    }

    /// The command line as run, for the report.
    pub fn shown() -> String {
        let mut args: Vec<String> = std::env::args().skip(1).collect();
        args.insert(0, "cargo run --release -p tweestap-bench --".into());
        args.join(" ")
    }
}
