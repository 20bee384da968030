//! What a measurement yields: counts, latency percentiles, and medians over runs.

use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The raw outcome of one measurement.
#[derive(Debug, Default)]
pub struct Sample {
    pub elapsed: Duration,
    /// Latency of every finished request or journey, in microseconds.
    pub latencies_us: Vec<u64>,
    pub errors: u64,
    /// What the answers were, by label (e.g. `accepted`, `refused`, `503`).
    pub counts: BTreeMap<String, u64>,
    /// The first few errors, to say what went wrong.
    pub error_examples: Vec<String>,
}

impl Sample {
    pub fn merge(&mut self, other: Sample) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        for (k, v) in other.counts {
            *self.counts.entry(k).or_default() += v;
        }
        for e in other.error_examples {
            if self.error_examples.len() < 5 {
                self.error_examples.push(e);
            }
        }
    }

    pub fn summary(mut self, peak_rss_kb: u64) -> Summary {
        self.latencies_us.sort_unstable();
        let n = self.latencies_us.len();
        let pct = |p: f64| -> f64 {
            if n == 0 {
                return 0.0;
            }
            let i = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
            self.latencies_us[i] as f64 / 1000.0
        };
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        Summary {
            requests: n as u64,
            per_second: (n as u64).saturating_sub(self.errors) as f64 / secs,
            p50_ms: pct(0.50),
            p90_ms: pct(0.90),
            p99_ms: pct(0.99),
            max_ms: pct(1.0),
            errors: self.errors,
            peak_rss_mb: peak_rss_kb as f64 / 1024.0,
            counts: self.counts,
            error_examples: self.error_examples,
        }
    }
}

/// One measurement, summarised. `per_second` counts the answers that were not
/// errors.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    pub requests: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
    pub peak_rss_mb: f64,
    pub counts: BTreeMap<String, u64>,
    pub error_examples: Vec<String>,
}

pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// The median of several runs, field by field; errors and counts are summed, so
/// none is hidden.
pub fn median_summary(runs: &[Summary]) -> Summary {
    let f = |get: fn(&Summary) -> f64| median(runs.iter().map(get).collect());
    let mut counts = BTreeMap::new();
    for r in runs {
        for (k, v) in &r.counts {
            *counts.entry(k.clone()).or_default() += v;
        }
    }
    Summary {
        requests: runs.iter().map(|r| r.requests).sum(),
        per_second: f(|r| r.per_second),
        p50_ms: f(|r| r.p50_ms),
        p90_ms: f(|r| r.p90_ms),
        p99_ms: f(|r| r.p99_ms),
        max_ms: f(|r| r.max_ms),
        errors: runs.iter().map(|r| r.errors).sum(),
        peak_rss_mb: f(|r| r.peak_rss_mb),
        counts,
        error_examples: runs
            .iter()
            .flat_map(|r| r.error_examples.iter().cloned())
            .take(5)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_medians() {
        let s = Sample {
            elapsed: Duration::from_secs(1),
            latencies_us: (1..=100).map(|i| i * 1000).collect(),
            ..Default::default()
        };
        let m = s.summary(2048);
        assert_eq!(m.p50_ms, 50.0);
        assert_eq!(m.p99_ms, 99.0);
        assert_eq!(m.max_ms, 100.0);
        assert_eq!(m.per_second, 100.0);
        assert_eq!(m.peak_rss_mb, 2.0);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
