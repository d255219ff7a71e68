//! What a simulated run measured: per half hour and for the whole run.
//!
//! Calls count in the half hour they arrived in (as workforce tools and
//! the monthly report count them); occupancy in the half hour the seats
//! were busy in.
//!
//! - **offered**: calls that asked for a queue (turned away by a full
//!   queue included);
//! - **service level**: answered within `service_level_seconds` of
//!   arriving, over offered;
//! - **ASA**: the mean wait of answered calls;
//! - **p_wait**: the share of offered calls not offered a seat the moment
//!   they asked;
//! - **occupancy**: seat time busy (ringing, talking, wrapping up) over
//!   seat time staffed (logged in, not paused);
//! - **overflowed**: left their queue for anything but a seat or a hang-up
//!   (busy tone after a full queue or `max_wait`, a callback, a ticket at
//!   a leader session's end).
//!
//! So `offered = answered + abandoned + overflowed + waiting at the end`,
//! which the tests check.

use serde::Serialize;
use std::time::Duration;

/// Upper bounds of the wait distribution's buckets, seconds (the last
/// bucket is everything longer).
pub const WAIT_BUCKETS: [u64; 8] = [0, 10, 20, 30, 60, 120, 300, 600];

/// Counts and sums of one half hour (or of the whole run).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub calls: u64,
    pub offered: u64,
    pub answered: u64,
    pub answered_within: u64,
    pub abandoned: u64,
    pub overflowed: u64,
    /// Offered and not offered a seat at once.
    pub waited: u64,
    pub wait_answered: Duration,
    pub longest_wait: Duration,
    pub tickets: u64,
    pub callbacks: u64,
    pub transfers: u64,
    pub emergency: u64,
    pub sub_centre: u64,
    pub rejected: u64,
    /// Seat-seconds.
    pub busy: f64,
    pub staffed: f64,
    /// Waits of answered calls by [`WAIT_BUCKETS`] (one more for longer).
    pub waits: [u64; WAIT_BUCKETS.len() + 1],
}

impl Tally {
    pub fn add(&mut self, o: &Tally) {
        self.calls += o.calls;
        self.offered += o.offered;
        self.answered += o.answered;
        self.answered_within += o.answered_within;
        self.abandoned += o.abandoned;
        self.overflowed += o.overflowed;
        self.waited += o.waited;
        self.wait_answered += o.wait_answered;
        self.longest_wait = self.longest_wait.max(o.longest_wait);
        self.tickets += o.tickets;
        self.callbacks += o.callbacks;
        self.transfers += o.transfers;
        self.emergency += o.emergency;
        self.sub_centre += o.sub_centre;
        self.rejected += o.rejected;
        self.busy += o.busy;
        self.staffed += o.staffed;
        for (a, b) in self.waits.iter_mut().zip(o.waits) {
            *a += b;
        }
    }

    pub fn answered_wait(&mut self, wait: Duration, target: Duration) {
        self.answered += 1;
        self.answered_within += u64::from(wait <= target);
        self.wait_answered += wait;
        self.longest_wait = self.longest_wait.max(wait);
        let secs = wait.as_secs_f64();
        let b = WAIT_BUCKETS
            .iter()
            .position(|&u| secs <= u as f64)
            .unwrap_or(WAIT_BUCKETS.len());
        self.waits[b] += 1;
    }

    fn ratio(a: u64, b: u64) -> Option<f64> {
        (b > 0).then(|| a as f64 / b as f64)
    }

    pub fn service_level(&self) -> Option<f64> {
        Self::ratio(self.answered_within, self.offered)
    }

    pub fn asa(&self) -> Option<f64> {
        (self.answered > 0).then(|| self.wait_answered.as_secs_f64() / self.answered as f64)
    }

    pub fn p_wait(&self) -> Option<f64> {
        Self::ratio(self.waited, self.offered)
    }

    pub fn p_abandon(&self) -> Option<f64> {
        Self::ratio(self.abandoned, self.offered)
    }

    pub fn occupancy(&self) -> Option<f64> {
        (self.staffed > 0.0).then(|| self.busy / self.staffed)
    }

    /// The figures as `--json` prints them.
    pub fn figures(&self, service_level_seconds: f64) -> Figures {
        let r4 = |x: Option<f64>| x.map(|x| (x * 10_000.0).round() / 10_000.0);
        let r2 = |x: f64| (x * 100.0).round() / 100.0;
        Figures {
            offered: self.offered,
            answered: self.answered,
            abandoned: self.abandoned,
            overflowed: self.overflowed,
            service_level: r4(self.service_level()),
            service_level_seconds,
            asa_seconds: self.asa().map(r2),
            p_wait: r4(self.p_wait()),
            p_abandon: r4(self.p_abandon()),
            occupancy: r4(self.occupancy()),
            longest_wait_seconds: r2(self.longest_wait.as_secs_f64()),
            tickets: self.tickets,
            callbacks: self.callbacks,
            transfers: self.transfers,
            seats_staffed: None,
        }
    }
}

/// One half hour's figures, or the run's (ratios `null` when nothing
/// was offered).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub overflowed: u64,
    pub service_level: Option<f64>,
    pub service_level_seconds: f64,
    pub asa_seconds: Option<f64>,
    pub p_wait: Option<f64>,
    pub p_abandon: Option<f64>,
    pub occupancy: Option<f64>,
    pub longest_wait_seconds: f64,
    pub tickets: u64,
    pub callbacks: u64,
    pub transfers: u64,
    /// Seats staffed on average over the half hour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seats_staffed: Option<f64>,
}
