//! Dates, times and timestamps: epoch integers in a unit, and text in declared
//! chrono formats or ISO 8601.
//!
//! Everything ends in microseconds (Iceberg's resolution). Nanoseconds are
//! truncated towards the past to whole microseconds; milliseconds and seconds
//! are exact.

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

use crate::contract::{ColumnType, TimeUnit};
use crate::reject::{Failure, Rule};
use crate::value::Value;

pub(crate) const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A point in time before the column decides what to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moment {
    /// Wall-clock time without a zone (Debezium `Timestamp`, `MicroTimestamp`,
    /// `NanoTimestamp`, text without an offset), as epoch microseconds.
    Naive(i64),
    /// An instant (text with an offset, `ZonedTimestamp`), as UTC epoch microseconds.
    Zoned(i64),
}

/// Whether a chrono format string is well formed.
pub(crate) fn check_format(format: &str) -> Result<(), String> {
    if StrftimeItems::new(format).any(|i| matches!(i, Item::Error)) {
        return Err(format!("`{format}` is not a valid chrono format"));
    }
    Ok(())
}

/// The unit of a bare epoch integer with no declared unit: by magnitude.
/// `|v| < 10^14` is milliseconds (up to the year 5138), `< 10^17`
/// microseconds, above that nanoseconds. Values within about three years of
/// 1970 are ambiguous between units: declare `unit` to be exact.
pub(crate) fn unit_by_magnitude(v: i64) -> TimeUnit {
    match v.unsigned_abs() {
        m if m < 100_000_000_000_000 => TimeUnit::Millis,
        m if m < 100_000_000_000_000_000 => TimeUnit::Micros,
        _ => TimeUnit::Nanos,
    }
}

/// Epoch (or since-midnight) `v` in `unit` as microseconds.
pub(crate) fn to_micros(v: i64, unit: TimeUnit) -> Result<i64, Failure> {
    let out = match unit {
        TimeUnit::Days => v.checked_mul(MICROS_PER_DAY),
        TimeUnit::Seconds => v.checked_mul(1_000_000),
        TimeUnit::Millis => v.checked_mul(1_000),
        TimeUnit::Micros => Some(v),
        TimeUnit::Nanos => Some(v.div_euclid(1_000)),
    };
    out.ok_or_else(|| Failure::new(Rule::Range, format!("{v} {} is out of range", unit.as_str())))
}

/// Days since the epoch of an epoch integer in `unit` (the UTC day it falls in).
pub(crate) fn date_from_int(v: i64, unit: TimeUnit) -> Result<Value, Failure> {
    let days = match unit {
        TimeUnit::Days => v,
        other => to_micros(v, other)?.div_euclid(MICROS_PER_DAY),
    };
    days_value(days)
}

fn days_value(days: i64) -> Result<Value, Failure> {
    i32::try_from(days)
        .ok()
        .filter(|d| NaiveDate::from_epoch_days(*d).is_some())
        .map(Value::Date)
        .ok_or_else(|| Failure::new(Rule::Range, format!("{days} days from 1970-01-01 is not a date")))
}

/// A time of day in microseconds; refuses anything outside `[00:00, 24:00)`.
pub(crate) fn time_value(micros: i64) -> Result<Value, Failure> {
    if (0..MICROS_PER_DAY).contains(&micros) {
        Ok(Value::Time(micros))
    } else {
        Err(Failure::new(Rule::Range, format!("{micros} µs is not a time of day (0 ≤ t < 24h)")))
    }
}

/// Keeps what the column holds: `timestamp` keeps wall-clock time and turns an
/// instant into its UTC wall-clock time; `timestamptz` keeps instants and reads
/// wall-clock time in `assume_offset` (UTC when absent).
pub(crate) fn timestamp_value(
    moment: Moment,
    ty: ColumnType,
    assume_offset: Option<FixedOffset>,
) -> Result<Value, Failure> {
    match (ty, moment) {
        (ColumnType::Timestamp, Moment::Naive(m) | Moment::Zoned(m)) => Ok(Value::Timestamp(m)),
        (_, Moment::Zoned(m)) => Ok(Value::TimestampTz(m)),
        (_, Moment::Naive(m)) => {
            let shift = i64::from(assume_offset.map_or(0, |o| o.local_minus_utc())) * 1_000_000;
            m.checked_sub(shift)
                .map(Value::TimestampTz)
                .ok_or_else(|| Failure::new(Rule::Range, format!("{m} µs is out of range")))
        }
    }
}

fn parse_failure(text: &str, what: &str, formats: &[String]) -> Failure {
    let expected = if formats.is_empty() {
        "ISO 8601".to_string()
    } else {
        formats.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(" or ")
    };
    Failure::new(Rule::Parse, format!("{text:?} is not a {what} in {expected}"))
}

/// A date from text: the declared formats in order, else ISO `YYYY-MM-DD`.
pub(crate) fn parse_date(text: &str, formats: &[String]) -> Result<Value, Failure> {
    let parsed = if formats.is_empty() {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
    } else {
        formats.iter().find_map(|f| NaiveDate::parse_from_str(text, f).ok())
    };
    match parsed {
        Some(d) => days_value(i64::from(d.to_epoch_days())),
        None => Err(parse_failure(text, "date", formats)),
    }
}

fn micros_of_day(t: NaiveTime) -> i64 {
    // A leap second (nanosecond ≥ 10^9) is read as the last microsecond of its second.
    let sub = i64::from(t.nanosecond().min(999_999_999) / 1_000);
    i64::from(t.num_seconds_from_midnight()) * 1_000_000 + sub
}

/// Splits a trailing `Z` or `±hh:mm` offset off a time of day.
fn split_offset(text: &str) -> (&str, Option<FixedOffset>) {
    if let Some(t) = text.strip_suffix('Z').or_else(|| text.strip_suffix('z')) {
        return (t, FixedOffset::east_opt(0));
    }
    if let Some(at) = text.rfind(['+', '-'])
        && let Ok(offset) = text[at..].parse::<FixedOffset>()
    {
        return (&text[..at], Some(offset));
    }
    (text, None)
}

/// A time of day from text: the declared formats, else ISO `HH:MM[:SS[.f]]`
/// with an optional offset (Debezium `ZonedTime`), normalised to UTC.
pub(crate) fn parse_time(text: &str, formats: &[String]) -> Result<Value, Failure> {
    if !formats.is_empty() {
        return match formats.iter().find_map(|f| NaiveTime::parse_from_str(text, f).ok()) {
            Some(t) => time_value(micros_of_day(t)),
            None => Err(parse_failure(text, "time", formats)),
        };
    }
    let (clock, offset) = split_offset(text);
    let t = ["%H:%M:%S%.f", "%H:%M"]
        .iter()
        .find_map(|f| NaiveTime::parse_from_str(clock, f).ok())
        .ok_or_else(|| parse_failure(text, "time", formats))?;
    let local = micros_of_day(t);
    let shift = i64::from(offset.map_or(0, |o| o.local_minus_utc())) * 1_000_000;
    time_value((local - shift).rem_euclid(MICROS_PER_DAY))
}

/// A timestamp from text: the declared formats in order (with `%z`/`%:z` an
/// instant, without a wall-clock time, a date-only format midnight), else
/// RFC 3339 / ISO 8601 with `T` or a space, with or without an offset.
pub(crate) fn parse_timestamp(text: &str, formats: &[String]) -> Result<Moment, Failure> {
    let range = || Failure::new(Rule::Range, format!("{text:?} is out of the timestamp range"));
    let zoned = |dt: DateTime<FixedOffset>| Ok(Moment::Zoned(dt.timestamp_micros()));
    let naive = |dt: NaiveDateTime| Ok(Moment::Naive(dt.and_utc().timestamp_micros()));
    if !formats.is_empty() {
        for f in formats {
            if let Ok(dt) = DateTime::parse_from_str(text, f) {
                return zoned(dt);
            }
            if let Ok(dt) = NaiveDateTime::parse_from_str(text, f) {
                return naive(dt);
            }
            if let Ok(d) = NaiveDate::parse_from_str(text, f) {
                return d.and_hms_opt(0, 0, 0).map_or_else(|| Err(range()), naive);
            }
        }
        return Err(parse_failure(text, "timestamp", formats));
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return zoned(dt);
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%d %H:%M%z"] {
        if let Ok(dt) = DateTime::parse_from_str(text, f) {
            return zoned(dt);
        }
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(text, f) {
            return naive(dt);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map_or_else(|| Err(range()), naive);
    }
    Err(parse_failure(text, "timestamp", formats))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmts(f: &[&str]) -> Vec<String> {
        f.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn epoch_integers_in_units() {
        assert_eq!(unit_by_magnitude(1_410_198_664_780), TimeUnit::Millis);
        assert_eq!(unit_by_magnitude(1_410_198_664_780_123), TimeUnit::Micros);
        assert_eq!(unit_by_magnitude(1_410_198_664_780_123_456), TimeUnit::Nanos);
        assert_eq!(unit_by_magnitude(-1_000), TimeUnit::Millis);
        assert_eq!(to_micros(-1_001, TimeUnit::Nanos), Ok(-2), "nanoseconds truncate towards the past");
        assert_eq!(to_micros(3, TimeUnit::Seconds), Ok(3_000_000));
        assert_eq!(to_micros(i64::MAX, TimeUnit::Millis).map_err(|f| f.rule), Err(Rule::Range));
        assert_eq!(date_from_int(16816, TimeUnit::Days), Ok(Value::Date(16816)));
        assert_eq!(date_from_int(-1, TimeUnit::Millis), Ok(Value::Date(-1)));
        assert_eq!(date_from_int(1_452_902_400_000, TimeUnit::Millis), Ok(Value::Date(16816)));
        assert_eq!(date_from_int(i64::from(i32::MAX), TimeUnit::Days).map_err(|f| f.rule), Err(Rule::Range));
        assert_eq!(time_value(MICROS_PER_DAY).map_err(|f| f.rule), Err(Rule::Range));
        assert_eq!(time_value(-1).map_err(|f| f.rule), Err(Rule::Range));
    }

    #[test]
    fn dates_from_text() {
        assert_eq!(parse_date("2016-01-16", &[]), Ok(Value::Date(16816)));
        assert_eq!(parse_date("16.01.2016", &fmts(&["%Y-%m-%d", "%d.%m.%Y"])), Ok(Value::Date(16816)));
        let e = parse_date("16/01/2016", &fmts(&["%d.%m.%Y"])).expect_err("not the format");
        assert_eq!(e.rule, Rule::Parse);
        assert!(e.reason.contains("`%d.%m.%Y`"), "{}", e.reason);
        assert!(parse_date("2016-02-30", &[]).is_err());
    }

    #[test]
    fn times_from_text_normalised_to_utc() {
        assert_eq!(parse_time("17:51:04.78", &[]), Ok(Value::Time(64_264_780_000)));
        assert_eq!(parse_time("17:51", &[]), Ok(Value::Time(64_260_000_000)));
        // ZonedTime: 17:51:04.78-06:00 is 23:51:04.78 UTC; +02:00 at 01:00 wraps to 23:00.
        assert_eq!(parse_time("17:51:04.78-06:00", &[]), Ok(Value::Time(85_864_780_000)));
        assert_eq!(parse_time("01:00:00+02:00", &[]), Ok(Value::Time(82_800_000_000)));
        assert_eq!(parse_time("10:00:00Z", &[]), Ok(Value::Time(36_000_000_000)));
        assert_eq!(parse_time("5.30 pm", &fmts(&["%I.%M %P"])), Ok(Value::Time(63_000_000_000)));
        assert_eq!(parse_time("25:00:00", &[]).map_err(|f| f.rule), Err(Rule::Parse));
    }

    #[test]
    fn timestamps_from_text() {
        // The Debezium ZonedTimestamp of DBZ-85: 2014-09-08T17:51:04.78-06:00 = 23:51:04.78 UTC.
        assert_eq!(parse_timestamp("2014-09-08T17:51:04.78-06:00", &[]), Ok(Moment::Zoned(1_410_220_264_780_000)));
        assert_eq!(parse_timestamp("2014-09-08 17:51:04.78-06:00", &[]), Ok(Moment::Zoned(1_410_220_264_780_000)));
        assert_eq!(parse_timestamp("2014-09-08T17:51:04.780Z", &[]), Ok(Moment::Zoned(1_410_198_664_780_000)));
        assert_eq!(parse_timestamp("2014-09-08T17:51:04.78", &[]), Ok(Moment::Naive(1_410_198_664_780_000)));
        assert_eq!(parse_timestamp("2014-09-08 17:51", &[]), Ok(Moment::Naive(1_410_198_660_000_000)));
        assert_eq!(parse_timestamp("2014-09-08", &[]), Ok(Moment::Naive(1_410_134_400_000_000)));
        let f = fmts(&["%d/%m/%Y %H:%M %z", "%d/%m/%Y %H:%M", "%d/%m/%Y"]);
        assert_eq!(parse_timestamp("08/09/2014 17:51 +0200", &f), Ok(Moment::Zoned(1_410_191_460_000_000)));
        assert_eq!(parse_timestamp("08/09/2014 17:51", &f), Ok(Moment::Naive(1_410_198_660_000_000)));
        assert_eq!(parse_timestamp("08/09/2014", &f), Ok(Moment::Naive(1_410_134_400_000_000)));
        assert_eq!(parse_timestamp("2014-09-08", &f).map_err(|e| e.rule), Err(Rule::Parse));
        assert_eq!(parse_timestamp("yesterday", &[]).map_err(|e| e.rule), Err(Rule::Parse));
    }

    #[test]
    fn columns_keep_wall_time_or_instants() {
        let plus2 = FixedOffset::east_opt(7200);
        let tz = ColumnType::TimestampTz;
        assert_eq!(timestamp_value(Moment::Zoned(5), ColumnType::Timestamp, plus2), Ok(Value::Timestamp(5)));
        assert_eq!(timestamp_value(Moment::Naive(5), ColumnType::Timestamp, plus2), Ok(Value::Timestamp(5)));
        assert_eq!(timestamp_value(Moment::Zoned(5), tz, plus2), Ok(Value::TimestampTz(5)));
        assert_eq!(timestamp_value(Moment::Naive(7_200_000_000), tz, plus2), Ok(Value::TimestampTz(0)));
        assert_eq!(timestamp_value(Moment::Naive(5), tz, None), Ok(Value::TimestampTz(5)));
    }

    #[test]
    fn format_strings_are_checked() {
        assert!(check_format("%Y-%m-%d %H:%M:%S%.f").is_ok());
        assert!(check_format("%Y-%Q").is_err());
    }
}
