//! Callbacks (回访): once a unit has replied to a ticket (办结), the
//! hotline calls the citizen back and asks whether they are satisfied.
//!
//! This module is the pure part: a callback job as the store keeps it,
//! what one attempt came to, and when the next attempt may be made
//! (backoff, within calling hours). The call itself is
//! `call::callback`; the store writes the job in the same transaction as
//! the reply that makes it due (`Store::apply`), so a crash never loses a
//! callback owed.

use chrono::{DateTime, Duration as TimeDelta, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::time::Duration;

/// One callback owed to a citizen: a ticket's round (a ticket reopened and
/// done again is called back again, in a new round).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub ticket_id: String,
    pub round: i64,
    /// The number the citizen asked to be called back on.
    pub number: String,
    /// Attempts made (answered or not).
    pub attempts: i64,
    pub next_at: DateTime<Utc>,
    /// `pending`, `calling` (a gateway holds it until `lease_until`),
    /// `finished`, `given_up`.
    pub state: String,
    pub lease_until: Option<DateTime<Utc>>,
    /// The last attempt's result.
    pub result: Option<String>,
    /// `visit` (回访, with the survey) or `queue` (called back in its
    /// turn instead of waiting).
    pub kind: String,
}

/// What one callback attempt came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The citizen pressed 1: the ticket is visited and closed.
    Satisfied,
    /// The citizen pressed 2: the ticket is reopened, back to the unit.
    Unsatisfied,
    /// The citizen talked to the seat but gave no answer to the survey
    /// (hung up first, pressed nothing): the callback is made, the ticket
    /// stays done for an operator to visit by hand.
    Unrated,
    /// The citizen's phone rang out, or the carrier said so (480, 408).
    NoAnswer,
    /// Busy (486, 600).
    Busy,
    /// Anything else: the trunk refused or failed, the seat hung up before
    /// the citizen answered.
    Failed,
    /// No seat took the callback after all (the one reserved went away):
    /// not an attempt on the citizen, tried again soon.
    NoSeat,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Satisfied,
        Outcome::Unsatisfied,
        Outcome::Unrated,
        Outcome::NoAnswer,
        Outcome::Busy,
        Outcome::Failed,
        Outcome::NoSeat,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Satisfied => "satisfied",
            Outcome::Unsatisfied => "unsatisfied",
            Outcome::Unrated => "unrated",
            Outcome::NoAnswer => "no_answer",
            Outcome::Busy => "busy",
            Outcome::Failed => "failed",
            Outcome::NoSeat => "no_seat",
        }
    }

    /// The callback is over: the citizen was reached.
    pub fn reached(self) -> bool {
        matches!(
            self,
            Outcome::Satisfied | Outcome::Unsatisfied | Outcome::Unrated
        )
    }

    /// An attempt on the citizen (counted against `max_attempts`).
    pub fn counts(self) -> bool {
        self != Outcome::NoSeat
    }
}

/// One attempt as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub ticket_id: String,
    pub round: i64,
    pub attempt: i64,
    pub at: DateTime<Utc>,
    pub result: String,
    pub seat: Option<String>,
}

/// When callbacks may be made, and how often they are tried.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub tz: Tz,
    /// Local calling hours, `start` inclusive, `end` exclusive.
    pub start: NaiveTime,
    pub end: NaiveTime,
    /// The wait after the first failed attempt; each next one twice as long.
    pub retry: Duration,
    pub max_attempts: u32,
}

/// The longest wait between two attempts, however many failed.
const RETRY_CAP: Duration = Duration::from_secs(24 * 3600);

/// A seat that vanished between reservation and ringing: tried again after
/// this long (not an attempt on the citizen).
pub const NO_SEAT_RETRY: Duration = Duration::from_secs(60);

impl Schedule {
    /// Whether `now` is within calling hours (`start == end`: at any
    /// time).
    pub fn in_hours(&self, now: DateTime<Utc>) -> bool {
        let t = now.with_timezone(&self.tz).time();
        if self.start == self.end {
            true
        } else if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            // Hours past midnight (e.g. 20:00–02:00).
            t >= self.start || t < self.end
        }
    }

    /// `t` if within calling hours, else when they next open.
    pub fn opening(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        if self.in_hours(t) {
            return t;
        }
        let local = t.with_timezone(&self.tz);
        let mut day = local.date_naive();
        if local.time() >= self.start {
            day = day.succ_opt().unwrap_or(day);
        }
        // A start time a DST change skipped: the first instant after it.
        for minutes in 0..180 {
            let at = day.and_time(self.start) + TimeDelta::minutes(minutes);
            if let Some(open) = self.tz.from_local_datetime(&at).earliest() {
                return open.with_timezone(&Utc);
            }
        }
        t
    }

    /// After an attempt that came to `outcome`, the `made`-th counted one
    /// (`made` counts it), when the next is due; `None`: no next one (the
    /// citizen was reached, or the attempts are used up).
    pub fn next_attempt(
        &self,
        outcome: Outcome,
        made: u32,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if outcome.reached() {
            return None;
        }
        if !outcome.counts() {
            return Some(self.opening(now + delta(NO_SEAT_RETRY)));
        }
        if made >= self.max_attempts {
            return None;
        }
        let factor = 1u32 << made.saturating_sub(1).min(16);
        let wait = self.retry.saturating_mul(factor).min(RETRY_CAP);
        Some(self.opening(now + delta(wait)))
    }
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            tz: chrono_tz::Asia::Shanghai,
            start: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
            retry: Duration::from_secs(1800),
            max_attempts: 3,
        }
    }

    /// 2026-12-01 at `h:m` Beijing time.
    fn bj(h: u32, m: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(2026, 12, 1, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn calling_hours_are_local_start_inclusive_end_exclusive() {
        let s = schedule();
        assert!(!s.in_hours(bj(7, 59)));
        assert!(s.in_hours(bj(8, 0)));
        assert!(s.in_hours(bj(20, 59)));
        assert!(!s.in_hours(bj(21, 0)));
        assert!(!s.in_hours(bj(23, 30)));
    }

    #[test]
    fn hours_may_run_past_midnight() {
        let s = Schedule {
            start: NaiveTime::from_hms_opt(20, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(2, 0, 0).unwrap(),
            ..schedule()
        };
        assert!(s.in_hours(bj(23, 0)));
        assert!(s.in_hours(bj(1, 59)));
        assert!(!s.in_hours(bj(2, 0)));
        assert!(!s.in_hours(bj(12, 0)));
        assert_eq!(s.opening(bj(12, 0)), bj(20, 0));
        let always = Schedule {
            start: NaiveTime::MIN,
            end: NaiveTime::MIN,
            ..schedule()
        };
        assert!(always.in_hours(bj(3, 0)) && always.in_hours(bj(0, 0)));
    }

    #[test]
    fn outside_hours_the_next_opening_is_this_morning_or_tomorrow_morning() {
        let s = schedule();
        assert_eq!(s.opening(bj(6, 30)), bj(8, 0));
        assert_eq!(s.opening(bj(10, 0)), bj(10, 0));
        let tomorrow = chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(2026, 12, 2, 8, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(s.opening(bj(21, 0)), tomorrow);
        assert_eq!(s.opening(bj(23, 59)), tomorrow);
    }

    #[test]
    fn retries_double_and_stop_after_max_attempts() {
        let s = schedule();
        let now = bj(9, 0);
        assert_eq!(s.next_attempt(Outcome::NoAnswer, 1, now), Some(bj(9, 30)));
        assert_eq!(s.next_attempt(Outcome::Busy, 2, now), Some(bj(10, 0)));
        assert_eq!(s.next_attempt(Outcome::Failed, 3, now), None);
    }

    #[test]
    fn a_retry_that_falls_after_hours_waits_for_the_morning() {
        let s = schedule();
        let next = s.next_attempt(Outcome::NoAnswer, 2, bj(20, 30)).unwrap();
        let tomorrow = chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(2026, 12, 2, 8, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(next, tomorrow);
    }

    #[test]
    fn a_reached_citizen_is_not_called_again_and_a_lost_seat_costs_no_attempt() {
        let s = schedule();
        for o in [Outcome::Satisfied, Outcome::Unsatisfied, Outcome::Unrated] {
            assert_eq!(s.next_attempt(o, 1, bj(9, 0)), None, "{o:?}");
        }
        // Even with the attempts used up: the seat's loss is not the
        // citizen's.
        assert_eq!(s.next_attempt(Outcome::NoSeat, 3, bj(9, 0)), Some(bj(9, 1)));
    }

    #[test]
    fn backoff_is_capped_at_a_day() {
        let s = Schedule {
            max_attempts: 40,
            ..schedule()
        };
        let next = s.next_attempt(Outcome::NoAnswer, 30, bj(9, 0)).unwrap();
        assert!(next - bj(9, 0) <= TimeDelta::hours(24) + TimeDelta::hours(13));
        assert!(next - bj(9, 0) >= TimeDelta::hours(24));
    }
}
