//! Queue outcomes over the last 15 and 60 minutes and since local midnight,
//! for the control API and the wallboard. Pure: every input takes `now`
//! (and the local date), so the windows are tested with time as an input.
//!
//! **Service level** here is the share of callers answered within the
//! queue's target among those who were answered or abandoned (short
//! abandons, below the queue's `short_abandon_seconds`, are counted apart
//! and left out, as Asterisk's `servicelevel` and most ACDs do). A window
//! with neither answered nor abandoned callers has no service level.

use chrono::NaiveDate;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How a caller left a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Answered {
        within_target: bool,
    },
    Abandoned,
    ShortAbandoned,
    /// Timeout, full, empty, exit key: sent on elsewhere.
    Exited,
}

/// Callers of one queue in one window, by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Counts {
    pub answered: u64,
    pub answered_within_target: u64,
    pub abandoned: u64,
    pub short_abandoned: u64,
    pub exited: u64,
}

impl Counts {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Answered { within_target } => {
                self.answered += 1;
                self.answered_within_target += u64::from(within_target);
            }
            Outcome::Abandoned => self.abandoned += 1,
            Outcome::ShortAbandoned => self.short_abandoned += 1,
            Outcome::Exited => self.exited += 1,
        }
    }

    /// See the module documentation; `None` when nobody counts.
    pub fn service_level(&self) -> Option<f64> {
        let n = self.answered + self.abandoned;
        (n > 0).then(|| self.answered_within_target as f64 / n as f64)
    }
}

/// The longest window kept.
pub const LONGEST: Duration = Duration::from_secs(3600);

/// Outcomes of every queue, kept for [`LONGEST`], and today's totals.
#[derive(Debug, Default)]
pub struct Recent {
    entries: VecDeque<(Instant, String, Outcome)>,
    day: Option<NaiveDate>,
    today: HashMap<String, Counts>,
}

impl Recent {
    /// A caller of `queue` left it so at `now`, on local date `date`.
    pub fn record(&mut self, queue: &str, outcome: Outcome, now: Instant, date: NaiveDate) {
        self.roll(date);
        self.prune(now);
        self.entries.push_back((now, queue.to_string(), outcome));
        self.today
            .entry(queue.to_string())
            .or_default()
            .add(outcome);
    }

    /// `queue`'s outcomes within `window` before `now` (at most
    /// [`LONGEST`]).
    pub fn within(&self, queue: &str, window: Duration, now: Instant) -> Counts {
        let mut c = Counts::default();
        for (at, q, o) in self.entries.iter().rev() {
            if now.saturating_duration_since(*at) >= window.min(LONGEST) {
                break;
            }
            if q == queue {
                c.add(*o);
            }
        }
        c
    }

    /// `queue`'s outcomes since local midnight of `date` (none if `date`
    /// is a later day than the last outcome's).
    pub fn today(&self, queue: &str, date: NaiveDate) -> Counts {
        if self.day != Some(date) {
            return Counts::default();
        }
        self.today.get(queue).copied().unwrap_or_default()
    }

    fn roll(&mut self, date: NaiveDate) {
        if self.day != Some(date) {
            self.day = Some(date);
            self.today.clear();
        }
    }

    fn prune(&mut self, now: Instant) {
        while let Some((at, _, _)) = self.entries.front() {
            if now.saturating_duration_since(*at) >= LONGEST {
                self.entries.pop_front();
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).unwrap()
    }

    #[test]
    fn windows_count_only_what_is_inside_them() {
        let t0 = Instant::now();
        let mut r = Recent::default();
        let ok = Outcome::Answered {
            within_target: true,
        };
        let late = Outcome::Answered {
            within_target: false,
        };
        r.record("main", ok, t0, day(1));
        r.record("main", Outcome::Abandoned, t0 + 20 * MIN, day(1));
        r.record("other", ok, t0 + 30 * MIN, day(1));
        r.record("main", late, t0 + 50 * MIN, day(1));
        r.record("main", Outcome::ShortAbandoned, t0 + 55 * MIN, day(1));
        let now = t0 + 58 * MIN;
        let last15 = r.within("main", 15 * MIN, now);
        assert_eq!(
            (
                last15.answered,
                last15.answered_within_target,
                last15.short_abandoned
            ),
            (1, 0, 1)
        );
        assert_eq!(last15.service_level(), Some(0.0));
        let last60 = r.within("main", 60 * MIN, now);
        assert_eq!((last60.answered, last60.abandoned), (2, 1));
        // 1 within target of 2 answered + 1 abandoned; short ones left out.
        assert!((last60.service_level().unwrap() - 1.0 / 3.0).abs() < 1e-9);
        // An hour after the first, it has left the 60-minute window.
        let later = t0 + 61 * MIN;
        assert_eq!(r.within("main", 60 * MIN, later).answered, 1);
        assert_eq!(r.within("nobody", 60 * MIN, later), Counts::default());
        assert_eq!(Counts::default().service_level(), None);
    }

    #[test]
    fn today_runs_from_local_midnight_and_outlives_the_window() {
        let t0 = Instant::now();
        let mut r = Recent::default();
        r.record("main", Outcome::Abandoned, t0, day(1));
        r.record("main", Outcome::Exited, t0 + 2 * LONGEST, day(1));
        // Pruned from the windows, still in today's totals.
        assert_eq!(r.within("main", LONGEST, t0 + 2 * LONGEST).abandoned, 0);
        let today = r.today("main", day(1));
        assert_eq!((today.abandoned, today.exited), (1, 1));
        // A new day: nothing yet, and the old day is gone once it records.
        assert_eq!(r.today("main", day(2)), Counts::default());
        r.record("main", Outcome::Abandoned, t0 + 3 * LONGEST, day(2));
        assert_eq!(r.today("main", day(2)).abandoned, 1);
        assert_eq!(r.today("main", day(1)), Counts::default());
    }

    #[test]
    fn entries_older_than_the_longest_window_are_let_go() {
        let t0 = Instant::now();
        let mut r = Recent::default();
        for i in 0..100u64 {
            r.record(
                "q",
                Outcome::Exited,
                t0 + Duration::from_secs(i * 60),
                day(1),
            );
        }
        assert!(r.entries.len() <= 61);
    }
}
