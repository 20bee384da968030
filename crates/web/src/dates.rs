//! Dates as people read them: in their language and their time zone
//! ("4 december 2026 om 16:39", "4 December 2026 at 16:39"), never "2026-12-04 15:39 UTC".
//! Every page and mail that shows a moment formats it here.

use crate::i18n::Lang;
use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;

/// The zone when none is configured: the organisations are Flemish and Dutch.
pub const DEFAULT_TIME_ZONE: Tz = chrono_tz::Europe::Brussels;

/// The zone dates are shown in (`[ui] time_zone`); Europe/Brussels unless configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(pub Tz);

impl Default for Zone {
    fn default() -> Self {
        Zone(DEFAULT_TIME_ZONE)
    }
}

impl crate::Inner {
    /// A moment for a page in `lang`: "4 december 2026 om 16:39".
    pub(crate) fn day_time(&self, lang: Lang, t: DateTime<Utc>) -> String {
        day_time(lang, self.settings.time_zone.0, t)
    }

    /// A day for a page in `lang`: "4 december 2026".
    pub(crate) fn day(&self, lang: Lang, t: DateTime<Utc>) -> String {
        day(lang, self.settings.time_zone.0, t)
    }
}

/// An IANA zone name such as `Europe/Amsterdam`; `None` when it is not one.
pub fn parse_zone(name: &str) -> Option<Tz> {
    name.trim().parse().ok()
}

const MONTHS_NL: [&str; 12] = [
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The day: "4 december 2026" / "4 December 2026".
pub fn day(lang: Lang, tz: Tz, t: DateTime<Utc>) -> String {
    let local = t.with_timezone(&tz);
    let months = match lang {
        Lang::Nl | Lang::NlNl => &MONTHS_NL,
        Lang::En => &MONTHS_EN,
    };
    let month = months[local.month0() as usize % 12];
    format!("{} {month} {}", local.day(), local.year())
}

/// A calendar day (no time, so no zone): "11 maart 2026" / "11 March 2026".
pub fn calendar_day(lang: Lang, d: chrono::NaiveDate) -> String {
    let months = match lang {
        Lang::Nl | Lang::NlNl => &MONTHS_NL,
        Lang::En => &MONTHS_EN,
    };
    let month = months[d.month0() as usize % 12];
    format!("{} {month} {}", d.day(), d.year())
}

/// The time of day: "16:39".
pub fn time(tz: Tz, t: DateTime<Utc>) -> String {
    let local = t.with_timezone(&tz);
    format!("{:02}:{:02}", local.hour(), local.minute())
}

/// Day and time: "4 december 2026 om 16:39" / "4 December 2026 at 16:39".
pub fn day_time(lang: Lang, tz: Tz, t: DateTime<Utc>) -> String {
    let at = match lang {
        Lang::Nl | Lang::NlNl => "om",
        Lang::En => "at",
    };
    format!("{} {at} {}", day(lang, tz, t), time(tz, t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_winter_moment_reads_in_brussels_time_in_both_languages() {
        let t = Utc.with_ymd_and_hms(2026, 12, 4, 15, 39, 0).unwrap();
        let tz = DEFAULT_TIME_ZONE;
        assert_eq!(day_time(Lang::Nl, tz, t), "4 december 2026 om 16:39");
        assert_eq!(day_time(Lang::En, tz, t), "4 December 2026 at 16:39");
        assert_eq!(day(Lang::Nl, tz, t), "4 december 2026");
    }

    #[test]
    fn summer_time_and_other_zones_and_the_day_boundary() {
        let t = Utc.with_ymd_and_hms(2026, 7, 31, 22, 30, 0).unwrap();
        // CEST is UTC+2: already the first of August in Brussels.
        assert_eq!(
            day_time(Lang::Nl, DEFAULT_TIME_ZONE, t),
            "1 augustus 2026 om 00:30"
        );
        let utc = parse_zone("UTC").unwrap();
        assert_eq!(day_time(Lang::En, utc, t), "31 July 2026 at 22:30");
        let amsterdam = parse_zone(" Europe/Amsterdam ").unwrap();
        assert_eq!(time(amsterdam, t), "00:30");
        assert!(parse_zone("Europe/Tweestad").is_none());
        assert!(parse_zone("").is_none());
    }
}
