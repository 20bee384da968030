//! What a run measured, backend by backend and run by run, before the report
//! takes medians.

use crate::backend::Kind;
use crate::overload::Overload;
use crate::stats::{median, median_summary, Summary};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, Default)]
pub struct Footprint {
    pub start_to_ready_ms: f64,
    pub idle_rss_mb: f64,
    /// Of the idle RSS: the process's own memory (RssAnon) and the mapped pages
    /// of files, mostly the binary's code (RssFile, shared with the page cache),
    /// read at the same instant as the total.
    pub idle_anon_mb: f64,
    pub idle_file_mb: f64,
    /// Shared memory mapped (SQLite's `-shm` file where the temporary directory
    /// is a tmpfs).
    pub idle_shmem_mb: f64,
}

/// Everything measured on one backend, run by run.
#[derive(Debug, Serialize)]
pub struct BackendResults {
    pub kind: Kind,
    pub skipped: Option<String>,
    pub seed_seconds: f64,
    /// Row name, then one summary per run.
    pub rows: Vec<(String, Vec<Summary>)>,
    /// Ratio name, then one value per run.
    pub ratios: Vec<(String, Vec<f64>)>,
    pub overload: Vec<Overload>,
    pub footprint: Vec<Footprint>,
}

impl BackendResults {
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            skipped: None,
            seed_seconds: 0.0,
            rows: vec![],
            ratios: vec![],
            overload: vec![],
            footprint: vec![],
        }
    }

    pub fn push(&mut self, name: &str, s: Summary) {
        match self.rows.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => v.push(s),
            None => self.rows.push((name.to_owned(), vec![s])),
        }
    }

    pub fn ratio(&mut self, name: &str, x: f64) {
        match self.ratios.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => v.push(x),
            None => self.ratios.push((name.to_owned(), vec![x])),
        }
    }

    pub fn row(&self, name: &str) -> Option<Summary> {
        self.rows
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| median_summary(v))
    }

    pub fn median_ratio(&self, name: &str) -> Option<(f64, Vec<f64>)> {
        self.ratios
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| (median(v.clone()), v.clone()))
    }
}

#[derive(Debug, Serialize)]
pub struct Results {
    pub command: String,
    pub date: String,
    pub machine: crate::machine::Machine,
    pub duration_seconds: f64,
    pub connections: usize,
    pub runs: usize,
    pub accounts: usize,
    pub binary: String,
    pub binary_mb: f64,
    pub privacyidea: Option<String>,
    pub privacyidea_skipped: Option<String>,
    pub backends: Vec<BackendResults>,
}

pub const WRONG: &str = "Code step, wrong codes";
pub const WRONG_PACED: &str = "Code step, wrong codes, sent at 70% of that maximum (open loop)";
pub const RIGHT: &str = "Code step, right codes";

/// The row of right codes with the code step's saturating connections.
pub fn right_saturated(connections: usize) -> String {
    format!("Code step, right codes, {connections} connections")
}

/// The row of the code step at its maximum rate.
pub fn wrong_saturated(connections: usize) -> String {
    format!("Code step, wrong codes, {connections} connections (the maximum rate)")
}
pub const SIGN_IN: &str = "Full sign-in (password + code)";

/// The row of the full sign-in with the code step's saturating connections.
pub fn sign_in_saturated(connections: usize) -> String {
    format!("Full sign-in (password + code), {connections} connections")
}
pub const PRIVACYIDEA: &str = "privacyIDEA `/validate/check`, wrong codes";
pub const ARGON: &str = "Raw Argon2id verifications/s (same parameters, one thread per core)";
pub const RATIO_SIGN_IN: &str = "Full sign-in ÷ raw Argon2id";
pub const RATIO_SIGN_IN_CPU: &str =
    "CPU per raw verification ÷ server CPU per full sign-in (1 = nothing beyond the hash)";
pub const RATIO_SIGN_IN_MAX: &str =
    "Full sign-in with the code step's saturating connections ÷ raw Argon2id";
pub const RATIO_SIGN_IN_MAX_CPU: &str =
    "CPU per raw verification ÷ server CPU per full sign-in, with those connections";
/// Measured at the closed loop's connections, with the server's.
pub const DB_CPU: &str = "PostgreSQL's CPU per full sign-in, ms (SQLite's is in the server's)";
pub const BENCH_CPU: &str = "The load generator's CPU per full sign-in, ms (the same cores)";
pub const RATIO_PI: &str = "Code step (wrong codes) ÷ privacyIDEA";
