//! The call's own timers, one table keyed by purpose. The legs keep their
//! transactions' timers (RFC 3261 §17) themselves; these are the call's
//! decisions in time: a target's turn, the caller's patience, a waiting
//! caller's ringing refresh, the goodbye before we hang up, a third
//! party's turn, and the cap on lingering after the end.
//!
//! A timer is armed with [`Timers::set`] and stays until set again or
//! cleared; whether it counts now is the call's to say (a target's turn
//! means nothing once the call is bridged), so [`Timers::next`] and
//! [`Timers::due`] take that as a predicate. Pure: time is an input.

use std::time::Instant;

/// What a timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// The current target's turn to ring (a seat's `seat_ring_seconds`).
    Turn,
    /// The caller's patience while it rings (`max_ring_seconds`).
    Patience,
    /// A waiting caller answered with 180 only is told again that it
    /// rings (§13.3.1.1).
    Ringing,
    /// Hang up a caller we are letting go, should its goodbye not end.
    Leave,
    /// A third party's turn to ring (三方).
    PartyTurn,
    /// The longest a finished call lingers for its transactions.
    Linger,
    /// The leader session's dialogue: a key awaited, a request's end.
    Dialogue,
    /// The leader session ends: its waiting callers take a ticket or move
    /// to the main queue.
    SessionEnd,
}

impl Purpose {
    pub const ALL: [Purpose; 8] = [
        Purpose::Turn,
        Purpose::Patience,
        Purpose::Ringing,
        Purpose::Leave,
        Purpose::PartyTurn,
        Purpose::Linger,
        Purpose::Dialogue,
        Purpose::SessionEnd,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Clone, Debug, Default)]
pub struct Timers {
    at: [Option<Instant>; Purpose::ALL.len()],
}

impl Timers {
    pub fn set(&mut self, purpose: Purpose, at: Instant) {
        self.at[purpose.index()] = Some(at);
    }

    pub fn clear(&mut self, purpose: Purpose) {
        self.at[purpose.index()] = None;
    }

    pub fn get(&self, purpose: Purpose) -> Option<Instant> {
        self.at[purpose.index()]
    }

    pub fn is_set(&self, purpose: Purpose) -> bool {
        self.get(purpose).is_some()
    }

    /// The earliest timer that counts now.
    pub fn next(&self, counts: impl Fn(Purpose) -> bool) -> Option<Instant> {
        Purpose::ALL
            .into_iter()
            .filter(|&p| counts(p))
            .filter_map(|p| self.get(p))
            .min()
    }

    /// Whether `purpose` is armed, counts, and is due at `now`.
    pub fn due(&self, purpose: Purpose, now: Instant, counts: impl Fn(Purpose) -> bool) -> bool {
        counts(purpose) && self.get(purpose).is_some_and(|t| now >= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_next_timer_is_the_earliest_of_those_that_count() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut t = Timers::default();
        assert_eq!(t.next(|_| true), None);
        t.set(Purpose::Patience, t0 + s(60));
        t.set(Purpose::Turn, t0 + s(20));
        t.set(Purpose::Linger, t0 + s(5));
        assert_eq!(t.next(|_| true), Some(t0 + s(5)));
        assert_eq!(t.next(|p| p != Purpose::Linger), Some(t0 + s(20)));
        assert_eq!(t.next(|p| p == Purpose::Patience), Some(t0 + s(60)));
        assert_eq!(t.next(|p| p == Purpose::Leave), None, "not armed");
        // Set again: moved, not added.
        t.set(Purpose::Turn, t0 + s(40));
        assert_eq!(t.next(|p| p == Purpose::Turn), Some(t0 + s(40)));
        t.clear(Purpose::Turn);
        assert!(!t.is_set(Purpose::Turn));
        assert_eq!(t.next(|p| p != Purpose::Linger), Some(t0 + s(60)));
    }

    #[test]
    fn a_timer_is_due_from_its_instant_on_and_only_while_it_counts() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.set(Purpose::Ringing, t0 + Duration::from_secs(60));
        let at = |secs| t0 + Duration::from_secs(secs);
        assert!(!t.due(Purpose::Ringing, at(59), |_| true));
        assert!(t.due(Purpose::Ringing, at(60), |_| true));
        assert!(t.due(Purpose::Ringing, at(61), |_| true));
        assert!(!t.due(Purpose::Ringing, at(61), |_| false));
        assert!(!t.due(Purpose::Leave, at(61), |_| true));
    }
}
