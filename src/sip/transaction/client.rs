//! Client transactions: INVITE (RFC 3261 §17.1.1, with RFC 6026 §7.2's
//! Accepted state) and non-INVITE (RFC 3261 §17.1.2).
//!
//! Both are created right after the TU's request has been encoded; the
//! *creator* sends the request the first time (it holds the bytes already,
//! and a send error is then reported with `on_transport_error`), and the
//! machine only ever asks for retransmissions.

use super::timers::{Retransmit, Timers, Transport, earliest};
use super::{Action, Class, Linger, State};
use bytes::Bytes;
use std::time::Instant;

/// The client side of an INVITE transaction (RFC 3261 §17.1.1 Figure 5, as
/// amended by RFC 6026 §7.2 Figure 5).
///
/// The creator sends the INVITE itself immediately after [`ClientInvite::new`].
#[derive(Debug, Clone)]
pub struct ClientInvite {
    request: Bytes,
    transport: Transport,
    timers: Timers,
    state: ClientInviteState,
}

#[derive(Debug, Clone)]
enum ClientInviteState {
    /// Timer A (unreliable transports only) and Timer B (§17.1.1.2).
    Calling {
        a: Option<Retransmit>,
        b: Instant,
    },
    /// No timers: once the server has answered, giving up is the TU's call
    /// (it may CANCEL, §9.1).
    Proceeding,
    /// Timer D absorbs retransmitted non-2xx finals, each re-ACKed.
    Completed {
        d: Instant,
    },
    /// Timer M passes up retransmitted and forked 2xx (RFC 6026 §7.2).
    Accepted {
        m: Instant,
    },
    Terminated,
}

impl ClientInvite {
    /// Starts the transaction in Calling at `now`, when the creator sends
    /// `request` (the encoded INVITE, kept for retransmissions).
    pub fn new(request: Bytes, transport: Transport, timers: Timers, now: Instant) -> Self {
        // §17.1.1.2: Timer A only on unreliable transports; Timer B always.
        let a = (!transport.is_reliable()).then(|| Retransmit::start(now, timers.t1));
        ClientInvite {
            request,
            transport,
            timers,
            state: ClientInviteState::Calling {
                a,
                b: now + timers.b(),
            },
        }
    }

    /// A response matching this transaction arrived (§17.1.3); `code` is
    /// its status code.
    #[must_use]
    pub fn on_response(&mut self, code: u16, now: Instant) -> Option<Action> {
        use ClientInviteState as S;
        let class = Class::of(code)?;
        match (&self.state, class) {
            // §17.1.1.2: a 1xx stops Timer A (and B); every 1xx goes up.
            (S::Calling { .. } | S::Proceeding, Class::Provisional) => {
                self.state = S::Proceeding;
                Some(Action::Deliver)
            }
            // RFC 6026 §7.2: a 2xx goes up and the transaction waits in
            // Accepted; the TU, not the transaction, ACKs a 2xx (§13.2.2.4).
            (S::Calling { .. } | S::Proceeding, Class::Success) => {
                self.state = S::Accepted {
                    m: now + self.timers.m(),
                };
                Some(Action::Deliver)
            }
            // §17.1.1.2: 300-699 goes up once and is ACKed; Timer D (zero
            // on reliable transports) absorbs its retransmissions.
            (S::Calling { .. } | S::Proceeding, Class::Failure) => {
                let d = self.timers.d(self.transport);
                self.state = if d.is_zero() {
                    S::Terminated
                } else {
                    S::Completed { d: now + d }
                };
                Some(Action::DeliverAndAck)
            }
            // §17.1.1.2: a retransmitted final is ACKed again, not passed up.
            (S::Completed { .. }, Class::Failure) => Some(Action::SendAck),
            // A 2xx after a non-2xx final can only come from another fork;
            // RFC 3261 leaves it undefined. It goes up so the TU can ACK it
            // and hang up (§13.2.2.4) instead of leaving the far end resending
            // its 2xx for 64·T1.
            (S::Completed { .. }, Class::Success) => Some(Action::Deliver),
            (S::Completed { .. }, Class::Provisional) => None,
            // RFC 6026 §7.2: every 2xx in Accepted goes up; nothing else does.
            (S::Accepted { .. }, Class::Success) => Some(Action::Deliver),
            (S::Accepted { .. }, _) => None,
            (S::Terminated, _) => None,
        }
    }

    /// The driver's timer reached [`ClientInvite::deadline`] (earlier or
    /// repeated calls do nothing).
    #[must_use]
    pub fn on_timer(&mut self, now: Instant) -> Option<Action> {
        use ClientInviteState as S;
        match &mut self.state {
            S::Calling { a, b } => {
                // §17.1.1.2: Timer B (64·T1) ends Calling; TU synthesises 408.
                if now >= *b {
                    self.state = S::Terminated;
                    return Some(Action::Timeout);
                }
                // §17.1.1.2: Timer A doubles each time, with no T2 cap.
                match a {
                    Some(a) if a.is_due(now) => {
                        a.rearm(now, a.doubled(None));
                        Some(Action::Transmit(self.request.clone()))
                    }
                    _ => None,
                }
            }
            S::Completed { d: end } | S::Accepted { m: end } if now >= *end => {
                self.state = S::Terminated;
                Some(Action::Terminated)
            }
            S::Proceeding | S::Completed { .. } | S::Accepted { .. } | S::Terminated => None,
        }
    }

    /// The transport failed to send the request or an ACK (§17.1.4): the
    /// TU is told and the transaction ends.
    #[must_use]
    pub fn on_transport_error(&mut self, _now: Instant) -> Option<Action> {
        if self.is_terminated() {
            return None;
        }
        self.state = ClientInviteState::Terminated;
        Some(Action::TransportError)
    }

    /// When `on_timer` must next be called, if any timer is running.
    pub fn deadline(&self) -> Option<Instant> {
        use ClientInviteState as S;
        match &self.state {
            S::Calling { a, b } => Some(earliest(*a, *b)),
            S::Completed { d } => Some(*d),
            S::Accepted { m } => Some(*m),
            S::Proceeding | S::Terminated => None,
        }
    }

    pub fn state(&self) -> State {
        use ClientInviteState as S;
        match self.state {
            S::Calling { .. } => State::Calling,
            S::Proceeding => State::Proceeding,
            S::Completed { .. } => State::Completed,
            S::Accepted { .. } => State::Accepted,
            S::Terminated => State::Terminated,
        }
    }

    pub fn is_terminated(&self) -> bool {
        matches!(self.state, ClientInviteState::Terminated)
    }

    /// Whether it still acts on its own: Completed (Timer D) and Accepted
    /// (Timer M) only wait, re-ACKing what is retransmitted.
    pub fn linger(&self) -> Linger {
        use ClientInviteState as S;
        match &self.state {
            S::Completed { d } => Linger::Absorbing(*d),
            S::Accepted { m } => Linger::Absorbing(*m),
            S::Terminated => Linger::Over,
            S::Calling { .. } | S::Proceeding => Linger::Active,
        }
    }

    /// The encoded INVITE, for building the ACK (§17.1.1.3) or a CANCEL (§9.1).
    pub fn request(&self) -> &Bytes {
        &self.request
    }
}

/// The client side of a non-INVITE transaction (RFC 3261 §17.1.2, Figure 6).
///
/// The creator sends the request itself immediately after
/// [`ClientNonInvite::new`].
#[derive(Debug, Clone)]
pub struct ClientNonInvite {
    request: Bytes,
    transport: Transport,
    timers: Timers,
    state: ClientNonInviteState,
}

#[derive(Debug, Clone)]
enum ClientNonInviteState {
    /// Timer E (unreliable only; doubling, capped at T2) and Timer F.
    Trying {
        e: Option<Retransmit>,
        f: Instant,
    },
    /// The same timers, but Timer E re-arms with T2 when it fires.
    Proceeding {
        e: Option<Retransmit>,
        f: Instant,
    },
    /// Timer K absorbs retransmitted finals.
    Completed {
        k: Instant,
    },
    Terminated,
}

impl ClientNonInvite {
    /// Starts the transaction in Trying at `now`, when the creator sends
    /// `request` (kept for retransmissions).
    pub fn new(request: Bytes, transport: Transport, timers: Timers, now: Instant) -> Self {
        // §17.1.2.2: Timer E only on unreliable transports; Timer F always.
        let e = (!transport.is_reliable()).then(|| Retransmit::start(now, timers.t1));
        ClientNonInvite {
            request,
            transport,
            timers,
            state: ClientNonInviteState::Trying {
                e,
                f: now + timers.f(),
            },
        }
    }

    /// A response matching this transaction arrived (§17.1.3).
    #[must_use]
    pub fn on_response(&mut self, code: u16, now: Instant) -> Option<Action> {
        use ClientNonInviteState as S;
        let class = Class::of(code)?;
        match (&self.state, class) {
            // §17.1.2.2: a 1xx moves Trying to Proceeding; timers keep running.
            (S::Trying { e, f } | S::Proceeding { e, f }, Class::Provisional) => {
                self.state = S::Proceeding { e: *e, f: *f };
                Some(Action::Deliver)
            }
            // §17.1.2.2: a final goes up once; Timer K (zero on reliable
            // transports) absorbs its retransmissions.
            (S::Trying { .. } | S::Proceeding { .. }, _) => {
                let k = self.timers.k(self.transport);
                self.state = if k.is_zero() {
                    S::Terminated
                } else {
                    S::Completed { k: now + k }
                };
                Some(Action::Deliver)
            }
            (S::Completed { .. } | S::Terminated, _) => None,
        }
    }

    /// The driver's timer reached [`ClientNonInvite::deadline`] (earlier or
    /// repeated calls do nothing).
    #[must_use]
    pub fn on_timer(&mut self, now: Instant) -> Option<Action> {
        use ClientNonInviteState as S;
        let t2 = self.timers.t2;
        match &mut self.state {
            // §17.1.2.2: Timer F (64·T1); the TU treats it as a 408.
            S::Trying { f, .. } | S::Proceeding { f, .. } if now >= *f => {
                self.state = S::Terminated;
                Some(Action::Timeout)
            }
            // §17.1.2.2: in Trying, E doubles up to T2 ...
            S::Trying { e: Some(e), .. } if e.is_due(now) => {
                e.rearm(now, e.doubled(Some(t2)));
                Some(Action::Transmit(self.request.clone()))
            }
            // ... and in Proceeding it is reset to T2.
            S::Proceeding { e: Some(e), .. } if e.is_due(now) => {
                e.rearm(now, t2);
                Some(Action::Transmit(self.request.clone()))
            }
            S::Completed { k } if now >= *k => {
                self.state = S::Terminated;
                Some(Action::Terminated)
            }
            S::Trying { .. } | S::Proceeding { .. } | S::Completed { .. } | S::Terminated => None,
        }
    }

    /// The transport failed to send the request (§17.1.4).
    #[must_use]
    pub fn on_transport_error(&mut self, _now: Instant) -> Option<Action> {
        if self.is_terminated() {
            return None;
        }
        self.state = ClientNonInviteState::Terminated;
        Some(Action::TransportError)
    }

    /// When `on_timer` must next be called, if any timer is running.
    pub fn deadline(&self) -> Option<Instant> {
        use ClientNonInviteState as S;
        match &self.state {
            S::Trying { e, f } | S::Proceeding { e, f } => Some(earliest(*e, *f)),
            S::Completed { k } => Some(*k),
            S::Terminated => None,
        }
    }

    pub fn state(&self) -> State {
        use ClientNonInviteState as S;
        match self.state {
            S::Trying { .. } => State::Trying,
            S::Proceeding { .. } => State::Proceeding,
            S::Completed { .. } => State::Completed,
            S::Terminated => State::Terminated,
        }
    }

    pub fn is_terminated(&self) -> bool {
        matches!(self.state, ClientNonInviteState::Terminated)
    }

    /// Whether it still acts on its own: in Completed (Timer K) it only
    /// absorbs retransmitted finals.
    pub fn linger(&self) -> Linger {
        use ClientNonInviteState as S;
        match &self.state {
            S::Completed { k } => Linger::Absorbing(*k),
            S::Terminated => Linger::Over,
            S::Trying { .. } | S::Proceeding { .. } => Linger::Active,
        }
    }

    /// The encoded request.
    pub fn request(&self) -> &Bytes {
        &self.request
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{ms, run, times};
    use super::*;
    use std::time::Duration;

    const INVITE: &[u8] = b"INVITE sip:12345@hotline SIP/2.0\r\n\r\n";
    const OPTIONS: &[u8] = b"OPTIONS sip:hotline SIP/2.0\r\n\r\n";

    fn invite(transport: Transport, timers: Timers, base: Instant) -> ClientInvite {
        ClientInvite::new(Bytes::from_static(INVITE), transport, timers, base)
    }

    fn non_invite(transport: Transport, timers: Timers, base: Instant) -> ClientNonInvite {
        ClientNonInvite::new(Bytes::from_static(OPTIONS), transport, timers, base)
    }

    fn transmit_request(req: &'static [u8]) -> Option<Action> {
        Some(Action::Transmit(Bytes::from_static(req)))
    }

    /// Checks `fired` is a retransmission at each of `at`, then `last`.
    fn assert_schedule(
        fired: &[(Duration, Option<Action>)],
        req: &'static [u8],
        at: &[Duration],
        last: (Duration, Action),
    ) {
        let mut want: Vec<_> = at.iter().map(|&t| (t, transmit_request(req))).collect();
        want.push((last.0, Some(last.1)));
        assert_eq!(fired, want);
    }

    // ---- INVITE client ----

    #[test]
    fn invite_timer_a_doubles_without_t2_cap_until_timer_b() {
        let base = Instant::now();
        let t1 = ms(500);
        let mut tx = invite(Transport::Unreliable, Timers::default(), base);
        assert_eq!(tx.state(), State::Calling);
        assert_eq!(tx.deadline(), Some(base + t1));
        let fired = run(&mut tx, base, Duration::from_secs(3600));
        // Intervals T1, 2T1, 4T1, 8T1, 16T1, 32T1 (the last 16 s, far past
        // T2): cumulative 1, 3, 7, 15, 31, 63 T1; the next (127 T1) is after B.
        assert_schedule(
            &fired,
            INVITE,
            &times(t1, &[1, 3, 7, 15, 31, 63]),
            (Duration::from_secs(32), Action::Timeout),
        );
        assert!(tx.is_terminated());
        assert_eq!(tx.deadline(), None);
        assert_eq!(tx.on_timer(base + Duration::from_secs(100)), None);
    }

    #[test]
    fn invite_custom_t1_scales_a_and_b() {
        let base = Instant::now();
        let timers = Timers {
            t1: ms(100),
            t2: ms(150),
            t4: ms(1000),
        };
        let mut tx = invite(Transport::Unreliable, timers, base);
        let fired = run(&mut tx, base, Duration::from_secs(3600));
        assert_schedule(
            &fired,
            INVITE,
            &times(ms(100), &[1, 3, 7, 15, 31, 63]),
            (ms(6400), Action::Timeout),
        );
    }

    #[test]
    fn invite_on_reliable_transport_only_timer_b_runs() {
        let base = Instant::now();
        let mut tx = invite(Transport::Reliable, Timers::default(), base);
        assert_eq!(tx.deadline(), Some(base + Duration::from_secs(32)));
        let fired = run(&mut tx, base, Duration::from_secs(3600));
        assert_eq!(
            fired,
            vec![(Duration::from_secs(32), Some(Action::Timeout))]
        );
    }

    #[test]
    fn invite_late_driver_keeps_the_schedule_anchored() {
        let base = Instant::now();
        let t1 = ms(500);
        let mut tx = invite(Transport::Unreliable, Timers::default(), base);
        assert_eq!(tx.on_timer(base + t1 + ms(120)), transmit_request(INVITE));
        assert_eq!(tx.deadline(), Some(base + t1 * 3));
        // Asleep until 10 T1: one retransmission, then 4 T1 from now.
        assert_eq!(tx.on_timer(base + t1 * 10), transmit_request(INVITE));
        assert_eq!(tx.deadline(), Some(base + t1 * 14));
        // Asleep past B: the timeout wins over the due retransmission.
        assert_eq!(tx.on_timer(base + t1 * 70), Some(Action::Timeout));
    }

    #[test]
    fn invite_provisional_stops_timer_a_and_b() {
        let base = Instant::now();
        let t1 = ms(500);
        let mut tx = invite(Transport::Unreliable, Timers::default(), base);
        assert_eq!(tx.on_timer(base + t1), transmit_request(INVITE));
        assert_eq!(tx.on_response(100, base + ms(600)), Some(Action::Deliver));
        assert_eq!(tx.state(), State::Proceeding);
        assert_eq!(tx.deadline(), None);
        assert_eq!(tx.on_timer(base + t1 * 3), None);
        assert_eq!(tx.on_timer(base + Duration::from_secs(40)), None);
        assert_eq!(tx.state(), State::Proceeding);
        // Every 1xx goes up.
        assert_eq!(tx.on_response(180, base + ms(900)), Some(Action::Deliver));
        assert_eq!(tx.on_response(183, base + ms(950)), Some(Action::Deliver));
    }

    #[test]
    fn invite_non_2xx_is_delivered_once_and_acked_per_copy_until_timer_d() {
        let base = Instant::now();
        let mut tx = invite(Transport::Unreliable, Timers::default(), base);
        assert_eq!(tx.on_response(180, base + ms(100)), Some(Action::Deliver));
        let t = base + ms(2000);
        assert_eq!(tx.on_response(486, t), Some(Action::DeliverAndAck));
        assert_eq!(tx.state(), State::Completed);
        assert_eq!(tx.deadline(), Some(t + Duration::from_secs(32)));
        // Each retransmitted final is ACKed again but not passed up.
        assert_eq!(tx.on_response(486, t + ms(500)), Some(Action::SendAck));
        assert_eq!(tx.on_response(486, t + ms(1500)), Some(Action::SendAck));
        assert_eq!(tx.on_response(180, t + ms(1600)), None);
        let fired = run(&mut tx, t, Duration::from_secs(3600));
        assert_eq!(
            fired,
            vec![(Duration::from_secs(32), Some(Action::Terminated))]
        );
        assert!(tx.is_terminated());
        assert_eq!(tx.on_response(486, t + Duration::from_secs(33)), None);
    }

    #[test]
    fn invite_non_2xx_straight_from_calling_stops_timer_a() {
        let base = Instant::now();
        let mut tx = invite(Transport::Unreliable, Timers::default(), base);
        assert_eq!(
            tx.on_response(503, base + ms(200)),
            Some(Action::DeliverAndAck)
        );
        assert_eq!(
            tx.deadline(),
            Some(base + ms(200) + Duration::from_secs(32))
        );
        assert_eq!(tx.on_timer(base + ms(500)), None);
    }

    #[test]
    fn invite_timer_d_is_zero_on_reliable_transport() {
        let base = Instant::now();
        let mut tx = invite(Transport::Reliable, Timers::default(), base);
        assert_eq!(
            tx.on_response(404, base + ms(50)),
            Some(Action::DeliverAndAck)
        );
        assert!(tx.is_terminated());
        assert_eq!(tx.deadline(), None);
    }

    #[test]
    fn invite_timer_d_does_not_follow_t1() {
        let base = Instant::now();
        let timers = Timers {
            t1: ms(100),
            ..Timers::default()
        };
        let mut tx = invite(Transport::Unreliable, timers, base);
        assert_eq!(tx.on_response(486, base), Some(Action::DeliverAndAck));
        assert_eq!(tx.deadline(), Some(base + Duration::from_secs(32)));
    }

    #[test]
    fn invite_2xx_goes_to_accepted_and_retransmissions_go_up_until_timer_m() {
        for transport in [Transport::Unreliable, Transport::Reliable] {
            let base = Instant::now();
            let mut tx = invite(transport, Timers::default(), base);
            assert_eq!(tx.on_response(180, base + ms(100)), Some(Action::Deliver));
            let t = base + ms(3000);
            assert_eq!(tx.on_response(200, t), Some(Action::Deliver));
            assert_eq!(tx.state(), State::Accepted);
            assert_eq!(tx.deadline(), Some(t + Duration::from_secs(32)));
            // RFC 6026 §7.2: the TU ACKs each 2xx, so each one goes up.
            assert_eq!(tx.on_response(200, t + ms(500)), Some(Action::Deliver));
            assert_eq!(tx.on_response(200, t + ms(1500)), Some(Action::Deliver));
            assert_eq!(tx.on_response(180, t + ms(1600)), None);
            assert_eq!(tx.on_response(486, t + ms(1700)), None);
            let fired = run(&mut tx, t, Duration::from_secs(3600));
            assert_eq!(
                fired,
                vec![(Duration::from_secs(32), Some(Action::Terminated))]
            );
            assert!(tx.is_terminated());
        }
    }

    #[test]
    fn invite_timer_m_follows_t1() {
        let base = Instant::now();
        let timers = Timers {
            t1: ms(200),
            ..Timers::default()
        };
        let mut tx = invite(Transport::Unreliable, timers, base);
        assert_eq!(tx.on_response(200, base), Some(Action::Deliver));
        assert_eq!(tx.deadline(), Some(base + ms(12_800)));
    }

    #[test]
    fn invite_2xx_in_completed_goes_up_for_the_tu_to_ack_and_bye() {
        let base = Instant::now();
        let mut tx = invite(Transport::Unreliable, Timers::default(), base);
        assert_eq!(tx.on_response(486, base), Some(Action::DeliverAndAck));
        assert_eq!(tx.on_response(200, base + ms(10)), Some(Action::Deliver));
        assert_eq!(tx.state(), State::Completed);
    }

    #[test]
    fn invite_transport_error_terminates() {
        let base = Instant::now();
        let mut tx = invite(Transport::Unreliable, Timers::default(), base);
        assert_eq!(tx.on_transport_error(base), Some(Action::TransportError));
        assert!(tx.is_terminated());
        assert_eq!(tx.deadline(), None);
        assert_eq!(tx.on_transport_error(base), None);
        assert_eq!(tx.on_response(200, base), None);
        assert_eq!(tx.on_timer(base + Duration::from_secs(60)), None);
    }

    #[test]
    fn invite_ignores_codes_that_are_not_sip_responses() {
        let base = Instant::now();
        let mut tx = invite(Transport::Unreliable, Timers::default(), base);
        assert_eq!(tx.on_response(99, base), None);
        assert_eq!(tx.on_response(700, base), None);
        assert_eq!(tx.state(), State::Calling);
    }

    // ---- non-INVITE client ----

    #[test]
    fn non_invite_timer_e_doubles_to_t2_until_timer_f() {
        let base = Instant::now();
        let mut tx = non_invite(Transport::Unreliable, Timers::default(), base);
        assert_eq!(tx.state(), State::Trying);
        let fired = run(&mut tx, base, Duration::from_secs(3600));
        // Intervals 0.5, 1, 2, then 4 (T2) s: 0.5, 1.5, 3.5, 7.5 ... 31.5 s.
        assert_schedule(
            &fired,
            OPTIONS,
            &times(ms(500), &[1, 3, 7, 15, 23, 31, 39, 47, 55, 63]),
            (Duration::from_secs(32), Action::Timeout),
        );
        assert!(tx.is_terminated());
    }

    #[test]
    fn non_invite_timer_e_is_t2_in_proceeding() {
        // T1 100 ms, T2 1 s: in Trying E would fire at 0.1, 0.3, 0.7, 1.5,
        // 2.5 ...; a 1xx at 0.35 s makes the firing at 0.7 re-arm with T2.
        let base = Instant::now();
        let timers = Timers {
            t1: ms(100),
            t2: ms(1000),
            t4: ms(5000),
        };
        let mut tx = non_invite(Transport::Unreliable, timers, base);
        assert_eq!(tx.on_timer(base + ms(100)), transmit_request(OPTIONS));
        assert_eq!(tx.on_timer(base + ms(300)), transmit_request(OPTIONS));
        assert_eq!(tx.on_response(100, base + ms(350)), Some(Action::Deliver));
        assert_eq!(tx.state(), State::Proceeding);
        // The running E keeps its deadline across the transition.
        assert_eq!(tx.deadline(), Some(base + ms(700)));
        let fired = run(&mut tx, base, Duration::from_secs(3600));
        let mut at = vec![ms(700)];
        at.extend((1..=5).map(|n| ms(700) + ms(1000) * n));
        assert_schedule(&fired, OPTIONS, &at, (ms(6400), Action::Timeout));
    }

    #[test]
    fn non_invite_timer_e_in_proceeding_default_timers() {
        let base = Instant::now();
        let mut tx = non_invite(Transport::Unreliable, Timers::default(), base);
        assert_eq!(tx.on_response(100, base + ms(200)), Some(Action::Deliver));
        assert_eq!(tx.on_response(100, base + ms(250)), Some(Action::Deliver));
        let fired = run(&mut tx, base, Duration::from_secs(3600));
        // 0.5 s, then every T2: 4.5, 8.5, ... 28.5 s; F at 32 s.
        let at: Vec<_> = (0..8).map(|n| ms(500) + ms(4000) * n).collect();
        assert_schedule(
            &fired,
            OPTIONS,
            &at,
            (Duration::from_secs(32), Action::Timeout),
        );
    }

    #[test]
    fn non_invite_on_reliable_transport_only_timer_f_runs() {
        let base = Instant::now();
        let timers = Timers {
            t1: ms(250),
            ..Timers::default()
        };
        let mut tx = non_invite(Transport::Reliable, timers, base);
        assert_eq!(tx.on_response(100, base + ms(10)), Some(Action::Deliver));
        let fired = run(&mut tx, base, Duration::from_secs(3600));
        assert_eq!(
            fired,
            vec![(Duration::from_secs(16), Some(Action::Timeout))]
        );
    }

    #[test]
    fn non_invite_final_goes_up_once_then_timer_k() {
        let base = Instant::now();
        let mut tx = non_invite(Transport::Unreliable, Timers::default(), base);
        assert_eq!(tx.on_response(100, base + ms(100)), Some(Action::Deliver));
        let t = base + ms(700);
        assert_eq!(tx.on_response(200, t), Some(Action::Deliver));
        assert_eq!(tx.state(), State::Completed);
        assert_eq!(tx.deadline(), Some(t + Duration::from_secs(5)));
        // Retransmissions of anything are absorbed.
        assert_eq!(tx.on_response(200, t + ms(500)), None);
        assert_eq!(tx.on_response(100, t + ms(600)), None);
        assert_eq!(tx.on_response(500, t + ms(700)), None);
        let fired = run(&mut tx, t, Duration::from_secs(3600));
        assert_eq!(
            fired,
            vec![(Duration::from_secs(5), Some(Action::Terminated))]
        );
        assert!(tx.is_terminated());
    }

    #[test]
    fn non_invite_failure_final_straight_from_trying() {
        let base = Instant::now();
        let mut tx = non_invite(Transport::Unreliable, Timers::default(), base);
        assert_eq!(tx.on_response(481, base + ms(100)), Some(Action::Deliver));
        assert_eq!(tx.state(), State::Completed);
        // Timers E and F are gone.
        assert_eq!(tx.on_timer(base + ms(500)), None);
        assert_eq!(tx.deadline(), Some(base + ms(5100)));
    }

    #[test]
    fn non_invite_timer_k_honours_t4_and_is_zero_on_reliable() {
        let base = Instant::now();
        let timers = Timers {
            t4: ms(1234),
            ..Timers::default()
        };
        let mut tx = non_invite(Transport::Unreliable, timers, base);
        assert_eq!(tx.on_response(200, base), Some(Action::Deliver));
        assert_eq!(tx.deadline(), Some(base + ms(1234)));

        let mut tx = non_invite(Transport::Reliable, timers, base);
        assert_eq!(tx.on_response(200, base), Some(Action::Deliver));
        assert!(tx.is_terminated());
        assert_eq!(tx.deadline(), None);
    }

    #[test]
    fn non_invite_transport_error_terminates() {
        let base = Instant::now();
        let mut tx = non_invite(Transport::Unreliable, Timers::default(), base);
        assert_eq!(tx.on_response(100, base), Some(Action::Deliver));
        assert_eq!(
            tx.on_transport_error(base + ms(500)),
            Some(Action::TransportError)
        );
        assert!(tx.is_terminated());
        assert_eq!(tx.on_transport_error(base + ms(500)), None);
        assert_eq!(tx.deadline(), None);
    }
}
