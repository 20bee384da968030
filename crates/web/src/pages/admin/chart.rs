//! The roll-out as a server-drawn SVG line chart (no script): day by day, how many
//! accounts had two-step verification, against how many there were. The page puts
//! a table of the same numbers beside it for screen readers.

use crate::i18n::Lang;
use serde::Serialize;
use std::collections::BTreeMap;
use tweestap_domain::console::RolloutDay;

const W: f64 = 640.0;
const H: f64 = 220.0;
const PAD_L: f64 = 48.0;
const PAD_B: f64 = 28.0;
const PAD_T: f64 = 12.0;
const PAD_R: f64 = 12.0;

#[derive(Serialize)]
pub struct Day {
    pub day: String,
    pub with: u64,
    pub total: u64,
}

#[derive(Serialize)]
pub struct Chart {
    /// `x,y x,y ...` of the accounts with two-step verification.
    pub with_points: String,
    /// The same for all accounts.
    pub total_points: String,
    pub max: u64,
    pub first: String,
    pub last: String,
    pub days: Vec<Day>,
    pub empty: bool,
}

impl Chart {
    /// The series summed over the roles, per day.
    pub fn of(series: &[RolloutDay], _lang: Lang) -> Self {
        let mut by_day: BTreeMap<chrono::NaiveDate, (u64, u64)> = BTreeMap::new();
        for d in series {
            let e = by_day.entry(d.day).or_default();
            e.0 += d.counts.with_two_factor();
            e.1 += d.counts.total();
        }
        let days: Vec<Day> = by_day
            .iter()
            .map(|(d, (w, t))| Day {
                day: d.to_string(),
                with: *w,
                total: *t,
            })
            .collect();
        let max = days.iter().map(|d| d.total).max().unwrap_or(0).max(1);
        let n = days.len();
        let x = |i: usize| {
            if n <= 1 {
                PAD_L + (W - PAD_L - PAD_R) / 2.0
            } else {
                PAD_L + (W - PAD_L - PAD_R) * i as f64 / (n - 1) as f64
            }
        };
        let y = |v: u64| H - PAD_B - (H - PAD_B - PAD_T) * v as f64 / max as f64;
        let points = |f: &dyn Fn(&Day) -> u64| {
            days.iter()
                .enumerate()
                .map(|(i, d)| format!("{:.1},{:.1}", x(i), y(f(d))))
                .collect::<Vec<_>>()
                .join(" ")
        };
        Self {
            with_points: points(&|d| d.with),
            total_points: points(&|d| d.total),
            max,
            first: days.first().map(|d| d.day.clone()).unwrap_or_default(),
            last: days.last().map(|d| d.day.clone()).unwrap_or_default(),
            empty: days.is_empty(),
            days,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tweestap_domain::account::Role;
    use tweestap_domain::console::RolloutCounts;

    #[test]
    fn sums_the_roles_per_day_and_scales_to_the_largest_total() {
        let day = |d: &str, role, app| RolloutDay {
            day: d.parse().expect("day"),
            role,
            counts: RolloutCounts {
                none: 10 - app,
                app,
                sms: 0,
                both: 0,
                passkey: 0,
            },
        };
        let c = Chart::of(
            &[
                day("2026-12-01", Role::User, 2),
                day("2026-12-01", Role::Admin, 1),
                day("2026-12-02", Role::User, 5),
            ],
            Lang::En,
        );
        assert_eq!(c.days.len(), 2);
        assert_eq!((c.days[0].with, c.days[0].total), (3, 20));
        assert_eq!(c.max, 20);
        assert!(
            c.total_points.starts_with("48.0,12.0"),
            "{}",
            c.total_points
        );
        assert_eq!(c.with_points.split(' ').count(), 2);
    }
}
