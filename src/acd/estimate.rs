//! Average handle time and the estimated wait a caller is told.
//!
//! A seat is busy with a call for its talk time and then its wrap-up, so the
//! handle time of one call is talk (connect → `call_ended`) plus the queue's
//! wrap-up: that is what frees seats for the callers behind.
//!
//! The average handle time (AHT) is seeded with the queue's
//! `default_handle`, which counts as one observation. Until ten calls have
//! been seen it is the plain mean of the seed and the calls (so a wrong seed
//! fades fast); from then on it is an exponential average with weight
//! [`ALPHA`], following the day's changes without being thrown by one long
//! call.
//!
//! The estimated wait (EWT) is position-aware, unlike Asterisk's queue-wide
//! hold time: with `n` callers ahead and `N` seats serving the queue that are
//! logged in and not paused, the caller is served once `n + 1` calls have
//! been handled by `N` seats, about `(n + 1) · AHT / N`. With no such seat
//! there is no estimate (and the caller is told none).

use std::time::Duration;

/// Weight of the newest call in the exponential average.
pub const ALPHA: f64 = 0.1;

/// A queue's average handle time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aht {
    seconds: f64,
    /// Observations, the seed included.
    seen: u64,
}

impl Aht {
    /// Seeded with `default_handle`, before any call has been seen.
    pub fn seeded(default_handle: Duration) -> Aht {
        Aht {
            seconds: default_handle.as_secs_f64(),
            seen: 1,
        }
    }

    /// Whether only the seed has been seen.
    pub fn is_seed(&self) -> bool {
        self.seen == 1
    }

    /// One call's handle time (talk plus wrap-up).
    pub fn record(&mut self, handle: Duration) {
        self.seen += 1;
        // The running mean's weight 1/seen until it falls to ALPHA.
        let weight = (1.0 / self.seen as f64).max(ALPHA);
        self.seconds += weight * (handle.as_secs_f64() - self.seconds);
    }

    pub fn get(&self) -> Duration {
        Duration::from_secs_f64(self.seconds)
    }
}

/// `(ahead + 1) · aht / staffed`, or `None` with no seat staffed.
pub fn ewt(ahead: usize, aht: Duration, staffed: usize) -> Option<Duration> {
    if staffed == 0 {
        return None;
    }
    Some(aht.mul_f64((ahead + 1) as f64 / staffed as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Equal to the millisecond: float rounding is not the point.
    fn about(d: Duration, want: f64) {
        assert!(
            (d.as_secs_f64() - want).abs() < 0.001,
            "{d:?} is not about {want} s"
        );
    }

    #[test]
    fn before_any_call_the_seed_is_the_average() {
        let a = Aht::seeded(secs(180));
        assert!(a.is_seed());
        assert_eq!(a.get(), secs(180));
    }

    #[test]
    fn the_first_calls_are_averaged_plainly_with_the_seed() {
        let mut a = Aht::seeded(secs(180));
        a.record(secs(120));
        about(a.get(), 150.0); // (180 + 120) / 2
        a.record(secs(60));
        about(a.get(), 120.0); // (180 + 120 + 60) / 3
        assert!(!a.is_seed());
    }

    #[test]
    fn from_the_tenth_observation_the_average_is_exponential_with_alpha() {
        let mut a = Aht::seeded(secs(100));
        // Nine calls of 100 s: the plain mean stays 100.
        for _ in 0..9 {
            a.record(secs(100));
        }
        about(a.get(), 100.0);
        // The tenth observation has weight 1/10 = ALPHA, and so on.
        a.record(secs(200));
        about(a.get(), 110.0);
        a.record(secs(200));
        about(a.get(), 119.0); // 110 + 0.1 · 90
        a.record(secs(0));
        about(a.get(), 107.1); // 119 − 0.1 · 119
    }

    #[test]
    fn a_long_average_is_not_thrown_by_one_long_call() {
        let mut a = Aht::seeded(secs(180));
        for _ in 0..100 {
            a.record(secs(120));
        }
        about(a.get(), 120.0); // the seed has faded
        a.record(secs(3600));
        about(a.get(), 468.0); // 120 + 0.1 · 3480: moved, not swamped
    }

    #[test]
    fn ewt_is_position_aware() {
        let aht = secs(120);
        // The head caller with one seat waits about one handle time.
        assert_eq!(ewt(0, aht, 1), Some(secs(120)));
        // Four ahead, two seats: five calls shared by two seats.
        assert_eq!(ewt(4, aht, 2), Some(secs(300)));
        // Ten seats: the head caller waits a tenth of a handle time.
        assert_eq!(ewt(0, aht, 10), Some(secs(12)));
        assert_eq!(ewt(29, aht, 10), Some(secs(360)));
    }

    #[test]
    fn no_staffed_seat_gives_no_estimate() {
        assert_eq!(ewt(0, secs(120), 0), None);
        assert_eq!(ewt(100, secs(120), 0), None);
    }
}
