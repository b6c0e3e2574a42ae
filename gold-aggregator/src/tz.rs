//! Named time zones (`Europe/Berlin`) from the system's tz database
//! (`/usr/share/zoneinfo`, Debian's `tzdata`; `TZDIR` overrides): the TZif
//! file's transitions (RFC 8536), and its footer's POSIX rule for instants
//! after the last transition (slim files carry few transitions and rely on it).

use std::path::PathBuf;

/// UTC offsets of one zone over time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub name: String,
    /// Offset (seconds east of UTC) before the first transition.
    initial: i32,
    /// (UTC second of the transition, offset from then on), ascending.
    transitions: Vec<(i64, i32)>,
    /// The footer rule, for instants after the last transition.
    posix: Option<Posix>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Posix {
    std: i32,
    /// DST offset and the local wall-clock times it starts and ends at.
    dst: Option<(i32, Rule, Rule)>,
}

/// `Mm.w.d/time`: day `d` (0 = Sunday) of week `w` (5 = last) of month `m`, at `time` seconds local.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    month: u32,
    week: u32,
    weekday: u32,
    time: i32,
}

impl Rules {
    /// Loads zone `name` from the tz database.
    pub fn load(name: &str) -> Result<Rules, String> {
        if name.is_empty() || name.starts_with('/') || name.split('/').any(|p| p == ".." || p.is_empty()) {
            return Err(format!("time zone {name:?} is not a zone name such as Europe/Berlin"));
        }
        let dir = std::env::var_os("TZDIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/share/zoneinfo"));
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| {
            format!(
                "time zone {name:?}: cannot read {} ({e}); use a zone of the tz database (Debian package tzdata), UTC, or a fixed offset such as +05:30",
                path.display()
            )
        })?;
        parse(name, &bytes).map_err(|e| format!("time zone {name:?}: {}: {e}", path.display()))
    }

    /// The offset (seconds east of UTC) in force at UTC second `t`.
    pub fn offset_at(&self, t: i64) -> i32 {
        let i = self.transitions.partition_point(|(at, _)| *at <= t);
        if i == 0 {
            return self.initial;
        }
        let (_, offset) = self.transitions[i - 1];
        match &self.posix {
            Some(p) if i == self.transitions.len() => p.offset_at(t),
            _ => offset,
        }
    }
}

fn be32(b: &[u8], at: usize) -> Result<i64, String> {
    b.get(at..at + 4).map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]) as i64).ok_or_else(|| "truncated".into())
}

fn be64(b: &[u8], at: usize) -> Result<i64, String> {
    let s = b.get(at..at + 8).ok_or("truncated")?;
    Ok(i64::from_be_bytes(s.try_into().map_err(|_| "truncated")?))
}

struct Header {
    version: u8,
    isutcnt: usize,
    isstdcnt: usize,
    leapcnt: usize,
    timecnt: usize,
    typecnt: usize,
    charcnt: usize,
}

fn header(b: &[u8], at: usize) -> Result<Header, String> {
    if b.get(at..at + 4) != Some(b"TZif") {
        return Err("not a TZif file".into());
    }
    let n = |i: usize| be32(b, at + 20 + 4 * i).map(|v| v as usize);
    Ok(Header {
        version: *b.get(at + 4).ok_or("truncated")?,
        isutcnt: n(0)?,
        isstdcnt: n(1)?,
        leapcnt: n(2)?,
        timecnt: n(3)?,
        typecnt: n(4)?,
        charcnt: n(5)?,
    })
}

impl Header {
    fn data_len(&self, time_size: usize) -> usize {
        self.timecnt * time_size
            + self.timecnt
            + self.typecnt * 6
            + self.charcnt
            + self.leapcnt * (time_size + 4)
            + self.isstdcnt
            + self.isutcnt
    }
}

fn parse(name: &str, b: &[u8]) -> Result<Rules, String> {
    let v1 = header(b, 0)?;
    let (h, at, size) = if v1.version >= b'2' {
        let second = 44 + v1.data_len(4);
        (header(b, second)?, second + 44, 8)
    } else {
        (v1, 44, 4)
    };
    if h.typecnt == 0 {
        return Err("no local time types".into());
    }
    let types_at = at + h.timecnt * size + h.timecnt;
    let offset_of = |t: usize| -> Result<i32, String> {
        if t >= h.typecnt {
            return Err(format!("local time type {t} out of range"));
        }
        be32(b, types_at + 6 * t).map(|v| v as i32)
    };
    let mut transitions = Vec::with_capacity(h.timecnt);
    for i in 0..h.timecnt {
        let t = if size == 8 { be64(b, at + 8 * i)? } else { be32(b, at + 4 * i)? };
        let ty = *b.get(at + h.timecnt * size + i).ok_or("truncated")? as usize;
        transitions.push((t, offset_of(ty)?));
    }
    let posix = if size == 8 {
        let footer = &b[(at + h.data_len(8)).min(b.len())..];
        let text = std::str::from_utf8(footer).map_err(|_| "footer is not text")?.trim_matches('\n');
        if text.is_empty() { None } else { Some(Posix::parse(text)?) }
    } else {
        None
    };
    Ok(Rules { name: name.to_string(), initial: offset_of(0)?, transitions, posix })
}

impl Posix {
    /// `STDoffset[DST[offset][,start[/time],end[/time]]]`, e.g. `CET-1CEST,M3.5.0,M10.5.0/3`.
    fn parse(s: &str) -> Result<Posix, String> {
        let bad = || format!("unsupported TZ rule {s:?}");
        let mut rest = s;
        let name = |rest: &mut &str| -> Result<(), String> {
            if let Some(r) = rest.strip_prefix('<') {
                let end = r.find('>').ok_or_else(bad)?;
                *rest = &r[end + 1..];
            } else {
                let end = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
                if end < 3 {
                    return Err(bad());
                }
                *rest = &rest[end..];
            }
            Ok(())
        };
        // POSIX offsets are west of UTC: negate.
        let offset = |rest: &mut &str| -> Result<i32, String> {
            let end =
                rest.find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '+' || c == '-')).unwrap_or(rest.len());
            let v = clock(&rest[..end]).ok_or_else(bad)?;
            *rest = &rest[end..];
            Ok(-v)
        };
        name(&mut rest)?;
        let std = offset(&mut rest)?;
        if rest.is_empty() {
            return Ok(Posix { std, dst: None });
        }
        name(&mut rest)?;
        let dst = if rest.starts_with(',') { std + 3600 } else { offset(&mut rest)? };
        let rules = rest.strip_prefix(',').ok_or_else(bad)?;
        let (a, b) = rules.split_once(',').ok_or_else(bad)?;
        Ok(Posix { std, dst: Some((dst, Rule::parse(a).ok_or_else(bad)?, Rule::parse(b).ok_or_else(bad)?)) })
    }

    fn offset_at(&self, t: i64) -> i32 {
        let Some((dst, start, end)) = self.dst else { return self.std };
        let year = crate::window::date((t + self.std as i64).div_euclid(86_400) as i32).year();
        // Transitions happen at local wall-clock times: start in standard time, end in DST.
        let starts = start.utc_second(year, self.std);
        let ends = end.utc_second(year, dst);
        let in_dst = if starts < ends { t >= starts && t < ends } else { t >= starts || t < ends };
        if in_dst { dst } else { self.std }
    }
}

use chrono::Datelike;

impl Rule {
    fn parse(s: &str) -> Option<Rule> {
        let (date, time) = s.split_once('/').map_or((s, None), |(d, t)| (d, Some(t)));
        let mut parts = date.strip_prefix('M')?.split('.');
        let month: u32 = parts.next()?.parse().ok()?;
        let week: u32 = parts.next()?.parse().ok()?;
        let weekday: u32 = parts.next()?.parse().ok()?;
        if !(1..=12).contains(&month) || !(1..=5).contains(&week) || weekday > 6 || parts.next().is_some() {
            return None;
        }
        let time = match time {
            Some(t) => clock(t)?,
            None => 7200,
        };
        Some(Rule { month, week, weekday, time })
    }

    /// The UTC second of this rule in `year`, for a zone at `offset` before it.
    fn utc_second(self, year: i32, offset: i32) -> i64 {
        let first = chrono::NaiveDate::from_ymd_opt(year, self.month, 1).expect("valid month");
        let first_weekday = first.weekday().num_days_from_sunday();
        let mut day = 1 + (self.weekday + 7 - first_weekday) % 7 + 7 * (self.week - 1);
        let days_in_month = (first + chrono::Months::new(1) - chrono::Days::new(1)).day();
        while day > days_in_month {
            day -= 7;
        }
        let date = chrono::NaiveDate::from_ymd_opt(year, self.month, day).expect("valid day");
        crate::window::days(date) as i64 * 86_400 + self.time as i64 - offset as i64
    }
}

/// `[+-]hh[:mm[:ss]]` as seconds.
fn clock(s: &str) -> Option<i32> {
    let (sign, s) = match s.as_bytes().first()? {
        b'-' => (-1, &s[1..]),
        b'+' => (1, &s[1..]),
        _ => (1, s),
    };
    let mut total = 0;
    for (i, part) in s.split(':').enumerate() {
        if i > 2 || part.is_empty() {
            return None;
        }
        let v: i32 = part.parse().ok()?;
        total += v * [3600, 60, 1][i];
    }
    Some(sign * total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: i64) -> i64 {
        crate::window::days(chrono::NaiveDate::from_ymd_opt(y, m, d).expect("valid")) as i64 * 86_400 + h * 3600
    }

    #[test]
    fn posix_rules_switch_at_local_wall_clock_times() {
        let p = Posix::parse("CET-1CEST,M3.5.0,M10.5.0/3").expect("parses");
        // 2026: DST from Sunday 29 March 01:00 UTC to Sunday 25 October 01:00 UTC.
        assert_eq!(p.offset_at(utc(2026, 3, 29, 1) - 1), 3600);
        assert_eq!(p.offset_at(utc(2026, 3, 29, 1)), 7200);
        assert_eq!(p.offset_at(utc(2026, 10, 25, 1) - 1), 7200);
        assert_eq!(p.offset_at(utc(2026, 10, 25, 1)), 3600);
        let south = Posix::parse("<-03>3").expect("parses");
        assert_eq!(south.offset_at(0), -3 * 3600);
        // Southern hemisphere: DST spans the new year.
        let sydney = Posix::parse("AEST-10AEDT,M10.1.0,M4.1.0/3").expect("parses");
        assert_eq!(sydney.offset_at(utc(2026, 1, 15, 0)), 11 * 3600);
        assert_eq!(sydney.offset_at(utc(2026, 7, 15, 0)), 10 * 3600);
        assert!(Posix::parse("CET-1CEST,J60,J300").is_err(), "Julian-day rules are refused, not misread");
    }

    #[test]
    fn system_zones_follow_daylight_saving() {
        let Ok(paris) = Rules::load("Europe/Paris") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "no tz database at /usr/share/zoneinfo (tests/run.sh installs tzdata)"
            );
            eprintln!("SKIPPED: no tz database at /usr/share/zoneinfo");
            return;
        };
        assert_eq!(paris.offset_at(utc(2026, 1, 15, 12)), 3600);
        assert_eq!(paris.offset_at(utc(2026, 7, 15, 12)), 7200);
        assert_eq!(paris.offset_at(utc(2026, 3, 29, 1)), 7200, "the spring transition");
        assert_eq!(paris.offset_at(utc(2050, 7, 1, 0)), 7200, "after the file's transitions: the footer rule");
        let ny = Rules::load("America/New_York").expect("loads");
        assert_eq!(ny.offset_at(utc(2026, 12, 1, 0)), -5 * 3600);
        assert!(Rules::load("Europe/Nowhere").is_err());
        assert!(Rules::load("../etc/passwd").is_err());
    }
}
