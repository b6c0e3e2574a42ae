//! Self-healing group membership.
//!
//! A member restarted inside the dead member's session can end up holding
//! nothing for good: tansu 0.6 answers its join with the old generation, the
//! dead member as leader and an empty assignment, and never rebalances after
//! the session expires. Whatever the broker's part, the worker must not idle
//! while data waits. So: when this member has held no partition for longer
//! than the session timeout (plus a margin), it asks the coordinator who owns
//! what (DescribeGroups); if some subscribed partition is owned by nobody — or
//! the broker cannot say — it leaves the group and joins again as a new member
//! (a fresh librdkafka consumer, so a fresh member id), counted in
//! `lakehouse_kafka_rejoins_total` and logged. A member that holds nothing
//! because the others own every partition (more replicas than partitions)
//! stays put. Rejoins back off (doubling, capped) so a broker that never
//! assigns cannot cause a rebalance storm.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How long past the session timeout an empty-handed member waits before looking.
const MARGIN: Duration = Duration::from_secs(2);
/// The longest wait between two rejoins.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Decides when to look at the group and when to rejoin.
#[derive(Debug)]
pub struct Watchdog {
    session: Duration,
    /// Since when this member holds no partition (`None` while it holds some).
    empty_since: Option<Instant>,
    /// No look at the group before this.
    next_check: Instant,
    /// Rejoins since the member last held a partition (sets the backoff).
    rejoins: u32,
}

impl Watchdog {
    pub fn new(session: Duration, now: Instant) -> Self {
        Self { session, empty_since: Some(now), next_check: now, rejoins: 0 }
    }

    /// Records whether the member holds partitions now.
    pub fn observe(&mut self, holding: bool, now: Instant) {
        if holding {
            self.empty_since = None;
            self.rejoins = 0;
        } else if self.empty_since.is_none() {
            self.empty_since = Some(now);
        }
    }

    /// Whether it is time to ask the coordinator about the group: empty-handed
    /// past the session timeout (a dead member's partitions are free by then).
    pub fn should_check(&self, now: Instant) -> bool {
        self.empty_since.is_some_and(|since| now.duration_since(since) >= self.session + MARGIN)
            && now >= self.next_check
    }

    /// The group was looked at: `rejoin` says whether the member rejoined.
    /// The next look waits a session timeout, doubled per rejoin without result.
    pub fn checked(&mut self, rejoin: bool, now: Instant) {
        if rejoin {
            self.rejoins = self.rejoins.saturating_add(1);
            self.empty_since = Some(now);
        }
        let factor = 1u32 << self.rejoins.saturating_sub(1).min(8);
        let wait = (self.session + MARGIN).saturating_mul(factor).min(MAX_BACKOFF);
        self.next_check = now + if rejoin { Duration::ZERO } else { wait.min(self.session) };
        if rejoin {
            // After a rejoin, give the new member a full session (and more on
            // repeated rejoins) before judging again.
            self.empty_since = Some(now + wait.saturating_sub(self.session + MARGIN));
        }
    }

    pub fn rejoins(&self) -> u32 {
        self.rejoins
    }
}

/// The partitions of a consumer-protocol assignment (`MemberState` of
/// SyncGroup / `member_assignment` of DescribeGroups): version, then
/// `[topic, [partition]]`, then user data (ignored).
pub fn parse_assignment(bytes: &[u8]) -> Result<Vec<(String, i32)>, String> {
    let mut pos = 0usize;
    let mut take = |n: usize| -> Result<&[u8], String> {
        let s = bytes.get(pos..pos + n).ok_or_else(|| format!("assignment truncated at byte {pos}"))?;
        pos += n;
        Ok(s)
    };
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let _version = i16::from_be_bytes(take(2)?.try_into().expect("2 bytes"));
    let topics = i32::from_be_bytes(take(4)?.try_into().expect("4 bytes"));
    let mut out = Vec::new();
    for _ in 0..topics.max(0) {
        let len = i16::from_be_bytes(take(2)?.try_into().expect("2 bytes"));
        let topic = String::from_utf8_lossy(take(len.max(0) as usize)?).into_owned();
        let n = i32::from_be_bytes(take(4)?.try_into().expect("4 bytes"));
        for _ in 0..n.max(0) {
            out.push((topic.clone(), i32::from_be_bytes(take(4)?.try_into().expect("4 bytes"))));
        }
    }
    Ok(out)
}

/// What the coordinator says about the group.
#[derive(Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Every subscribed partition is assigned to some member.
    Complete,
    /// These subscribed partitions are assigned to nobody.
    Unowned(Vec<(String, i32)>),
    /// The coordinator gave no usable answer about the group (why).
    Unknown(String),
    /// The cluster does not answer at all: rejoining cannot help (why).
    Unreachable(String),
}

/// Compares the members' assignments with the subscribed partitions.
pub fn ownership(
    subscribed: &BTreeSet<(String, i32)>,
    assignments: impl IntoIterator<Item = Option<Vec<u8>>>,
) -> Ownership {
    let mut owned = BTreeSet::new();
    for a in assignments {
        match a.as_deref().map(parse_assignment) {
            Some(Ok(tps)) => owned.extend(tps),
            Some(Err(e)) => return Ownership::Unknown(e),
            None => {}
        }
    }
    let unowned: Vec<(String, i32)> = subscribed.difference(&owned).cloned().collect();
    if unowned.is_empty() { Ownership::Complete } else { Ownership::Unowned(unowned) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(tps: &[(&str, &[i32])]) -> Vec<u8> {
        let mut b = vec![0, 0];
        b.extend((tps.len() as i32).to_be_bytes());
        for (t, ps) in tps {
            b.extend((t.len() as i16).to_be_bytes());
            b.extend(t.as_bytes());
            b.extend((ps.len() as i32).to_be_bytes());
            for p in *ps {
                b.extend(p.to_be_bytes());
            }
        }
        b.extend((-1i32).to_be_bytes()); // no user data
        b
    }

    fn subscribed(n: i32) -> BTreeSet<(String, i32)> {
        (0..n).map(|p| ("t".to_string(), p)).collect()
    }

    #[test]
    fn assignments_are_parsed_and_compared() {
        let a = assignment(&[("t", &[0, 2]), ("u", &[1])]);
        assert_eq!(parse_assignment(&a).expect("valid"), vec![("t".into(), 0), ("t".into(), 2), ("u".into(), 1)]);
        assert!(parse_assignment(&a[..9]).is_err());
        let b = assignment(&[("t", &[1, 3])]);
        assert_eq!(ownership(&subscribed(4), [Some(a.clone()), Some(b)]), Ownership::Complete);
        assert_eq!(
            ownership(&subscribed(4), [Some(a), None, Some(Vec::new())]),
            Ownership::Unowned(vec![("t".into(), 1), ("t".into(), 3)])
        );
        assert!(matches!(ownership(&subscribed(1), [Some(vec![0, 0, 0, 0, 0, 9])]), Ownership::Unknown(_)));
    }

    #[test]
    fn watchdog_waits_out_the_session_and_backs_off() {
        let s = Duration::from_secs(10);
        let t0 = Instant::now();
        let mut w = Watchdog::new(s, t0);
        assert!(!w.should_check(t0 + Duration::from_secs(9)), "inside the session: a dead member may hold them");
        assert!(w.should_check(t0 + s + MARGIN));
        // Holding partitions resets everything.
        w.observe(true, t0 + Duration::from_secs(1));
        assert!(!w.should_check(t0 + Duration::from_secs(60)));
        // Empty again: another full session before looking.
        let t1 = t0 + Duration::from_secs(60);
        w.observe(false, t1);
        assert!(!w.should_check(t1 + s));
        assert!(w.should_check(t1 + s + MARGIN));
        // First rejoin: the new member gets a session before it is judged.
        let t2 = t1 + s + MARGIN;
        w.checked(true, t2);
        assert!(!w.should_check(t2 + s));
        assert!(w.should_check(t2 + s + MARGIN));
        // Repeated rejoins without partitions wait longer each time, never past the cap.
        let mut t = t2 + s + MARGIN;
        let mut last_gap = Duration::ZERO;
        for _ in 0..12 {
            w.checked(true, t);
            let mut gap = Duration::from_secs(1);
            while !w.should_check(t + gap) {
                gap += Duration::from_secs(1);
            }
            assert!(gap >= last_gap && gap <= MAX_BACKOFF + s + MARGIN, "{gap:?} after {last_gap:?}");
            last_gap = gap;
            t += gap;
        }
        assert!(last_gap >= MAX_BACKOFF, "{last_gap:?}");
        // A look that finds the group complete does not rejoin, and looks again a session later.
        w.checked(false, t);
        assert!(!w.should_check(t + s - Duration::from_secs(1)));
        assert!(w.should_check(t + s));
    }
}
