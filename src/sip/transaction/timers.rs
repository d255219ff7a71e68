//! Timer values (RFC 3261 §17.1.1.1 and Table 4 of its Appendix A; Timers L
//! and M from RFC 6026 §8.11) and the one retransmission schedule they all
//! share.

use std::time::{Duration, Instant};

/// Whether the transport delivers for us.
///
/// The transaction layer exists largely to make SIP reliable over UDP: on
/// [`Transport::Unreliable`] the client retransmits its request (Timers A and
/// E) and the INVITE server its non-2xx final response (Timer G), and the
/// "linger" timers D, I, J and K keep a finished transaction around to absorb
/// late duplicates. On [`Transport::Reliable`] (TCP, TLS, SCTP) none of those
/// run (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2); only the 64·T1
/// give-up timers remain, plus the 2xx retransmission of the INVITE server,
/// which is end-to-end and so runs on every transport (§13.3.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP: messages may be lost or duplicated.
    Unreliable,
    /// TCP, TLS or SCTP: the transport retransmits for us.
    Reliable,
}

impl Transport {
    pub fn is_reliable(self) -> bool {
        self == Transport::Reliable
    }
}

/// The three base timer values every other timer derives from (RFC 3261
/// §17.1.1.1). Configurable because a LAN-only deployment may want a smaller
/// T1 (faster recovery from loss) and a long-haul one a larger T1; the
/// defaults are the RFC's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Round-trip time estimate; first retransmission interval. RFC default 500 ms.
    pub t1: Duration,
    /// Cap on the retransmission interval of non-INVITE requests and of
    /// INVITE responses. RFC default 4 s.
    pub t2: Duration,
    /// How long a message may linger in the network. RFC default 5 s.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// Timer D on unreliable transports: "at least 32 seconds" (RFC 3261
/// §17.1.1.2), long enough to outlast the server's retransmissions of its
/// final response (its Timer H, 64·T1 at the default T1). Fixed, because it
/// covers the *peer's* timers, not ours.
const TIMER_D_UNRELIABLE: Duration = Duration::from_secs(32);

impl Timers {
    /// 64·T1, the give-up interval shared by Timers B, F, H, J (unreliable),
    /// L and M: long enough for a request or response to have been
    /// retransmitted about seven (INVITE) or eleven (non-INVITE) times.
    pub fn timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// Timer B: INVITE client gives up waiting for any response (§17.1.1.2).
    pub fn b(&self) -> Duration {
        self.timeout()
    }

    /// Timer D: INVITE client absorbs retransmitted non-2xx finals (§17.1.1.2).
    pub fn d(&self, transport: Transport) -> Duration {
        match transport {
            Transport::Unreliable => TIMER_D_UNRELIABLE,
            Transport::Reliable => Duration::ZERO,
        }
    }

    /// Timer F: non-INVITE client gives up waiting for a final response (§17.1.2.2).
    pub fn f(&self) -> Duration {
        self.timeout()
    }

    /// Timer H: INVITE server gives up waiting for the ACK to its non-2xx
    /// final response, on every transport (§17.2.1).
    pub fn h(&self) -> Duration {
        self.timeout()
    }

    /// Timer I: INVITE server absorbs retransmitted ACKs (§17.2.1).
    pub fn i(&self, transport: Transport) -> Duration {
        self.linger(transport)
    }

    /// Timer J: non-INVITE server absorbs retransmitted requests (§17.2.2):
    /// 64·T1 on unreliable transports, zero on reliable ones (Table 4).
    pub fn j(&self, transport: Transport) -> Duration {
        match transport {
            Transport::Unreliable => self.timeout(),
            Transport::Reliable => Duration::ZERO,
        }
    }

    /// Timer K: non-INVITE client absorbs retransmitted finals (§17.1.2.2).
    pub fn k(&self, transport: Transport) -> Duration {
        self.linger(transport)
    }

    /// Timer L: INVITE server stays in Accepted to absorb retransmitted
    /// INVITEs after its 2xx (RFC 6026 §7.1).
    pub fn l(&self) -> Duration {
        self.timeout()
    }

    /// Timer M: INVITE client stays in Accepted to pass up retransmitted or
    /// forked 2xx responses (RFC 6026 §7.2).
    pub fn m(&self) -> Duration {
        self.timeout()
    }

    /// T4 on unreliable transports, zero on reliable ones (Timers I and K).
    fn linger(&self, transport: Transport) -> Duration {
        match transport {
            Transport::Unreliable => self.t4,
            Transport::Reliable => Duration::ZERO,
        }
    }
}

/// A running retransmission timer (A, E, G, or the INVITE server's 2xx
/// timer): when it next fires and the interval it was last armed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Retransmit {
    pub(super) at: Instant,
    interval: Duration,
}

impl Retransmit {
    /// Armed with T1 when the message is first sent.
    pub(super) fn start(now: Instant, t1: Duration) -> Self {
        Retransmit {
            at: now + t1,
            interval: t1,
        }
    }

    pub(super) fn is_due(&self, now: Instant) -> bool {
        now >= self.at
    }

    /// Twice the last interval, capped at `cap` when there is one (T2 for
    /// everything except Timer A).
    pub(super) fn doubled(&self, cap: Option<Duration>) -> Duration {
        let next = self.interval.saturating_mul(2);
        match cap {
            Some(cap) => next.min(cap),
            None => next,
        }
    }

    /// Re-arms after firing. The next instant is counted from the instant the
    /// timer was *due*, not from `now`, so a driver that wakes a little late
    /// does not stretch the whole schedule; if it woke so late that this
    /// instant has passed too, counting starts from `now` instead, so a
    /// stalled driver gets one retransmission, not a burst.
    pub(super) fn rearm(&mut self, now: Instant, interval: Duration) {
        self.interval = interval;
        let next = self.at + interval;
        self.at = if next > now { next } else { now + interval };
    }
}

/// The earlier of a retransmission timer (if running) and a give-up timer.
pub(super) fn earliest(retransmit: Option<Retransmit>, deadline: Instant) -> Instant {
    match retransmit {
        Some(r) => r.at.min(deadline),
        None => deadline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_rfc_3261_values() {
        let t = Timers::default();
        assert_eq!(t.t1, Duration::from_millis(500));
        assert_eq!(t.t2, Duration::from_secs(4));
        assert_eq!(t.t4, Duration::from_secs(5));
        for d in [
            t.b(),
            t.f(),
            t.h(),
            t.l(),
            t.m(),
            t.j(Transport::Unreliable),
        ] {
            assert_eq!(d, Duration::from_secs(32));
        }
        assert_eq!(t.d(Transport::Unreliable), Duration::from_secs(32));
        assert_eq!(t.i(Transport::Unreliable), Duration::from_secs(5));
        assert_eq!(t.k(Transport::Unreliable), Duration::from_secs(5));
    }

    #[test]
    fn linger_timers_are_zero_on_reliable_transport() {
        let t = Timers::default();
        assert_eq!(t.d(Transport::Reliable), Duration::ZERO);
        assert_eq!(t.i(Transport::Reliable), Duration::ZERO);
        assert_eq!(t.j(Transport::Reliable), Duration::ZERO);
        assert_eq!(t.k(Transport::Reliable), Duration::ZERO);
        // The give-up timers do not depend on the transport.
        assert_eq!(t.h(), Duration::from_secs(32));
    }

    #[test]
    fn derived_values_follow_custom_base_values() {
        let t = Timers {
            t1: Duration::from_millis(100),
            t2: Duration::from_secs(1),
            t4: Duration::from_secs(2),
        };
        assert_eq!(t.timeout(), Duration::from_millis(6400));
        assert_eq!(t.b(), Duration::from_millis(6400));
        assert_eq!(t.j(Transport::Unreliable), Duration::from_millis(6400));
        assert_eq!(t.i(Transport::Unreliable), Duration::from_secs(2));
        assert_eq!(t.k(Transport::Unreliable), Duration::from_secs(2));
        // D covers the peer's retransmissions, so it stays at 32 s.
        assert_eq!(t.d(Transport::Unreliable), Duration::from_secs(32));
    }

    #[test]
    fn rearm_counts_from_the_due_instant_unless_that_has_passed() {
        let base = Instant::now();
        let t1 = Duration::from_millis(500);
        let mut r = Retransmit::start(base, t1);
        assert_eq!(r.at, base + t1);
        // Woken 100 ms late: the next firing is still at 3·T1.
        r.rearm(base + t1 + Duration::from_millis(100), r.doubled(None));
        assert_eq!(r.at, base + t1 * 3);
        // Woken at 10·T1 instead of 3·T1: 7·T1 has passed, so 10·T1 + 4·T1.
        r.rearm(base + t1 * 10, r.doubled(None));
        assert_eq!(r.at, base + t1 * 14);
        assert_eq!(
            r.doubled(Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(r.doubled(None), t1 * 8);
    }
}
