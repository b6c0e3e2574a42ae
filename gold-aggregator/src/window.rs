//! Windows of event time: `day`, ISO `week` (starting Monday) and `month`,
//! in a declared zone.

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    Day,
    Week,
    Month,
}

impl Window {
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Day => "day",
            Window::Week => "week",
            Window::Month => "month",
        }
    }

    pub fn parse(s: &str) -> Option<Window> {
        Some(match s {
            "day" => Window::Day,
            "week" => Window::Week,
            "month" => Window::Month,
            _ => return None,
        })
    }

    /// First day (days since 1970-01-01) of the window holding local day `day`.
    pub fn start(self, day: i32) -> i32 {
        match self {
            Window::Day => day,
            // 1970-01-01 was a Thursday: Monday-based weekday is (day + 3) mod 7.
            Window::Week => day - (day + 3).rem_euclid(7),
            Window::Month => {
                let d = date(day);
                days(NaiveDate::from_ymd_opt(d.year(), d.month(), 1).expect("first of a month exists"))
            }
        }
    }
}

/// A time zone: UTC, a fixed offset, or a named zone of the tz database
/// with its daylight-saving rules ([`crate::tz`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Zone {
    Fixed(i32),
    Named(std::sync::Arc<crate::tz::Rules>),
}

impl Zone {
    pub const UTC: Zone = Zone::Fixed(0);

    /// `UTC`, `Z`, `±HH:MM`, or a tz database name such as `Europe/Berlin`.
    pub fn parse(s: &str) -> Result<Zone, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("utc") || s == "Z" || s == "Etc/UTC" {
            return Ok(Zone::UTC);
        }
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'+') => (1, &s[1..]),
            Some(b'-') => (-1, &s[1..]),
            _ => return crate::tz::Rules::load(s).map(|r| Zone::Named(std::sync::Arc::new(r))),
        };
        let bad = || format!("time zone {s:?}: a fixed offset is written +05:30 or -08:00");
        let (h, m) = rest.split_once(':').ok_or_else(bad)?;
        let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if !(0..=18).contains(&h) || !(0..60).contains(&m) {
            return Err(bad());
        }
        Ok(Zone::Fixed(sign * (h * 3600 + m * 60)))
    }

    /// The local day (days since 1970-01-01) of an instant in microseconds.
    pub fn local_day(&self, micros: i64) -> i32 {
        let secs = micros.div_euclid(1_000_000);
        let offset = match self {
            Zone::Fixed(o) => *o,
            Zone::Named(r) => r.offset_at(secs),
        };
        (secs + offset as i64).div_euclid(86_400) as i32
    }
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")
}

pub fn date(day: i32) -> NaiveDate {
    epoch() + chrono::Duration::days(day as i64)
}

pub fn days(d: NaiveDate) -> i32 {
    (d - epoch()).num_days() as i32
}

/// Iceberg's `month` transform of a date: months since 1970-01.
pub fn month_ordinal(day: i32) -> i32 {
    let d = date(day);
    (d.year() - 1970) * 12 + d.month0() as i32
}

/// Iceberg's `year` transform of a date: years since 1970.
pub fn year_ordinal(day: i32) -> i32 {
    date(day).year() - 1970
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, dd: u32) -> i32 {
        days(NaiveDate::from_ymd_opt(y, m, dd).expect("valid"))
    }

    #[test]
    fn windows_start_where_iso_says() {
        // 2026-01-01 is a Thursday; its ISO week starts Monday 2025-12-29.
        assert_eq!(Window::Week.start(d(2026, 1, 1)), d(2025, 12, 29));
        assert_eq!(Window::Week.start(d(2025, 12, 29)), d(2025, 12, 29));
        assert_eq!(Window::Week.start(d(2026, 1, 4)), d(2025, 12, 29), "Sunday closes the week");
        assert_eq!(Window::Month.start(d(2026, 2, 28)), d(2026, 2, 1));
        assert_eq!(Window::Day.start(d(1969, 12, 31)), -1);
        assert_eq!(Window::Week.start(-1), d(1969, 12, 29));
        assert_eq!(month_ordinal(d(1970, 1, 31)), 0);
        assert_eq!(month_ordinal(d(2026, 3, 1)), 56 * 12 + 2);
        assert_eq!(year_ordinal(d(2026, 3, 1)), 56);
    }

    #[test]
    fn zones_move_the_local_day() {
        let midnight_utc = d(2026, 1, 1) as i64 * 86_400_000_000;
        assert_eq!(Zone::UTC.local_day(midnight_utc), d(2026, 1, 1));
        assert_eq!(Zone::parse("-05:00").expect("valid").local_day(midnight_utc), d(2025, 12, 31));
        assert_eq!(Zone::parse("+05:30").expect("valid").local_day(midnight_utc - 1), d(2026, 1, 1));
        assert!(Zone::parse("Europe/Nowhere").is_err());
        assert!(Zone::parse("+25:00").is_err());
        if let Ok(paris) = Zone::parse("Europe/Paris") {
            // 22:30 UTC is the next local day in summer (UTC+2) and in winter (UTC+1).
            let late = |day: i32| day as i64 * 86_400_000_000 + (22 * 3600 + 30 * 60) * 1_000_000;
            assert_eq!(paris.local_day(late(d(2026, 7, 1))), d(2026, 7, 2));
            assert_eq!(paris.local_day(late(d(2026, 1, 1))), d(2026, 1, 1) + 0, "23:30 local, same day");
            let just_after_midnight_summer = d(2026, 7, 1) as i64 * 86_400_000_000 - 3600 * 1_000_000;
            assert_eq!(paris.local_day(just_after_midnight_summer), d(2026, 7, 1), "01:00 local on 1 July");
        }
    }
}
