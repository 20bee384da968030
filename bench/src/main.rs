//! `tweestap-bench`: the load generator of issue 19. It builds and starts the
//! tweestap binary itself on SQLite and PostgreSQL, seeds accounts with app factors
//! through the server's own store, drives real journeys over HTTP on loopback and
//! reports throughput, latency percentiles, errors and the server's memory.
//!
//! `cargo run --release -p tweestap-bench -- all --write docs/benchmarks.md`

mod argon;
mod backend;
mod cli;
mod load;
mod machine;
mod overload;
mod privacyidea;
mod report;
mod results;
mod run;
mod scenarios;
mod seed;
mod server;
mod stats;

use clap::Parser;
use std::process::ExitCode;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run::main(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
