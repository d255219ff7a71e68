//! Server transactions: INVITE (RFC 3261 §17.2.1, with RFC 6026 §7.1's
//! Accepted state) and non-INVITE (RFC 3261 §17.2.2).
//!
//! Both are created when a new request arrives (the driver passes it to the
//! TU). Every response the TU produces goes through `send_response`, which
//! records it and returns [`Action::Transmit`] for the driver to send, so the
//! machine can answer retransmitted requests and retransmit on its timers.

use super::timers::{Retransmit, Timers, Transport, earliest};
use super::{Action, Class, Linger, State};
use bytes::Bytes;
use std::time::Instant;

/// The server side of an INVITE transaction (RFC 3261 §17.2.1 Figure 7, as
/// amended by RFC 6026 §7.1 Figure 7).
///
/// Besides the transaction's own duties, this machine retransmits the TU's
/// 2xx until the ACK arrives — strictly the UAS core's job (§13.3.1.4),
/// merged here so the driver has one place that retransmits. Because the 2xx
/// is retransmitted end to end, that happens on reliable transports too,
/// while Timer G (non-2xx) runs only on unreliable ones.
///
/// The driver should send `100 Trying` through [`ServerInvite::send_response`]
/// straight away (§17.2.1: unless the TU answers within 200 ms), so that
/// retransmitted INVITEs are answered with it.
#[derive(Debug, Clone)]
pub struct ServerInvite {
    transport: Transport,
    timers: Timers,
    state: ServerInviteState,
}

#[derive(Debug, Clone)]
enum ServerInviteState {
    /// Retransmitted INVITEs are answered with the last provisional, if any.
    Proceeding {
        provisional: Option<Bytes>,
    },
    /// Timer G (unreliable only; doubling, capped at T2) retransmits the
    /// non-2xx final; Timer H gives up waiting for the ACK.
    Completed {
        response: Bytes,
        g: Option<Retransmit>,
        h: Instant,
    },
    /// Timer I absorbs retransmitted ACKs.
    Confirmed {
        i: Instant,
    },
    /// The 2xx timer (T1 doubling, capped at T2; `None` once the ACK has
    /// arrived) and Timer L, which absorbs retransmitted INVITEs.
    Accepted {
        response: Bytes,
        retransmit: Option<Retransmit>,
        l: Instant,
    },
    Terminated,
}

impl ServerInvite {
    /// Starts the transaction in Proceeding for an INVITE that arrived at `now`.
    pub fn new(transport: Transport, timers: Timers, _now: Instant) -> Self {
        ServerInvite {
            transport,
            timers,
            state: ServerInviteState::Proceeding { provisional: None },
        }
    }

    /// The TU (or the driver, for `100 Trying`) responds with status `code`,
    /// encoded as `response`. Returns `Transmit(response)` for the driver to
    /// send, or `None` when the transaction can no longer take this response
    /// (a second final response; anything but a 2xx in Accepted).
    #[must_use]
    pub fn send_response(&mut self, code: u16, response: Bytes, now: Instant) -> Option<Action> {
        use ServerInviteState as S;
        let class = Class::of(code)?;
        match (&mut self.state, class) {
            // §17.2.1: provisionals are sent and remembered for retransmitted INVITEs.
            (S::Proceeding { provisional }, Class::Provisional) => {
                *provisional = Some(response.clone());
            }
            // RFC 6026 §7.1: a 2xx moves to Accepted (Timer L); §13.3.1.4:
            // it is retransmitted from T1 until the ACK, on every transport.
            (S::Proceeding { .. }, Class::Success) => {
                self.state = S::Accepted {
                    response: response.clone(),
                    retransmit: Some(Retransmit::start(now, self.timers.t1)),
                    l: now + self.timers.l(),
                };
            }
            // §17.2.1: 300-699 moves to Completed: Timer G on unreliable
            // transports, Timer H always.
            (S::Proceeding { .. }, Class::Failure) => {
                let g =
                    (!self.transport.is_reliable()).then(|| Retransmit::start(now, self.timers.t1));
                self.state = S::Completed {
                    response: response.clone(),
                    g,
                    h: now + self.timers.h(),
                };
            }
            // RFC 6026 §7.1: further 2xx from the TU in Accepted are sent;
            // the newest is the one retransmitted from then on.
            (S::Accepted { response: last, .. }, Class::Success) => {
                *last = response.clone();
            }
            _ => return None,
        }
        Some(Action::Transmit(response))
    }

    /// A retransmission of the INVITE arrived (§17.2.3 matched it here).
    #[must_use]
    pub fn on_request(&mut self, _now: Instant) -> Option<Action> {
        use ServerInviteState as S;
        match &self.state {
            // §17.2.1: answer with the most recent provisional, if any ...
            S::Proceeding { provisional } => provisional.clone().map(Action::Transmit),
            // ... or the final response in Completed.
            S::Completed { response, .. } => Some(Action::Transmit(response.clone())),
            // §17.2.1 (Confirmed) and RFC 6026 §7.1 (Accepted): absorbed.
            S::Confirmed { .. } | S::Accepted { .. } | S::Terminated => None,
        }
    }

    /// The ACK for a non-2xx final response arrived (it matches this
    /// transaction, §17.2.3). In Completed it stops Timers G and H and
    /// starts Timer I (zero, i.e. Terminated, on reliable transports);
    /// anywhere else it is absorbed.
    pub fn on_ack(&mut self, now: Instant) {
        if let ServerInviteState::Completed { .. } = self.state {
            let i = self.timers.i(self.transport);
            self.state = if i.is_zero() {
                ServerInviteState::Terminated
            } else {
                ServerInviteState::Confirmed { i: now + i }
            };
        }
    }

    /// The ACK for the 2xx arrived. It is a transaction of its own (§17;
    /// its branch differs), so the driver routes it here by dialog. It stops
    /// the 2xx retransmissions (§13.3.1.4); the transaction stays in
    /// Accepted until Timer L. Ignored in any other state.
    pub fn on_ack_2xx(&mut self, _now: Instant) {
        if let ServerInviteState::Accepted { retransmit, .. } = &mut self.state {
            *retransmit = None;
        }
    }

    /// The driver's timer reached [`ServerInvite::deadline`] (earlier or
    /// repeated calls do nothing).
    #[must_use]
    pub fn on_timer(&mut self, now: Instant) -> Option<Action> {
        use ServerInviteState as S;
        let t2 = self.timers.t2;
        match &mut self.state {
            // §17.2.1: Timer H: the ACK never came.
            S::Completed { h, .. } if now >= *h => {
                self.state = S::Terminated;
                Some(Action::AckTimeout)
            }
            // §17.2.1: Timer G doubles up to T2.
            S::Completed {
                g: Some(g),
                response,
                ..
            } if g.is_due(now) => {
                g.rearm(now, g.doubled(Some(t2)));
                Some(Action::Transmit(response.clone()))
            }
            // §17.2.1: Timer I.
            S::Confirmed { i } if now >= *i => {
                self.state = S::Terminated;
                Some(Action::Terminated)
            }
            // RFC 6026 §7.1: Timer L ends Accepted. It is also the 64·T1 of
            // §13.3.1.4, so if the 2xx was still unacknowledged the TU hears
            // of it and should send BYE.
            S::Accepted { l, retransmit, .. } if now >= *l => {
                let acked = retransmit.is_none();
                self.state = S::Terminated;
                Some(if acked {
                    Action::Terminated
                } else {
                    Action::AckTimeout
                })
            }
            // §13.3.1.4: the 2xx goes out at T1, 2·T1, ... capped at T2.
            S::Accepted {
                retransmit: Some(r),
                response,
                ..
            } if r.is_due(now) => {
                r.rearm(now, r.doubled(Some(t2)));
                Some(Action::Transmit(response.clone()))
            }
            S::Proceeding { .. }
            | S::Completed { .. }
            | S::Confirmed { .. }
            | S::Accepted { .. }
            | S::Terminated => None,
        }
    }

    /// The transport failed to send a response (§17.2.4): the TU is told
    /// and the transaction ends.
    #[must_use]
    pub fn on_transport_error(&mut self, _now: Instant) -> Option<Action> {
        if self.is_terminated() {
            return None;
        }
        self.state = ServerInviteState::Terminated;
        Some(Action::TransportError)
    }

    /// When `on_timer` must next be called, if any timer is running.
    pub fn deadline(&self) -> Option<Instant> {
        use ServerInviteState as S;
        match &self.state {
            S::Completed { g, h, .. } => Some(earliest(*g, *h)),
            S::Confirmed { i } => Some(*i),
            S::Accepted { retransmit, l, .. } => Some(earliest(*retransmit, *l)),
            S::Proceeding { .. } | S::Terminated => None,
        }
    }

    pub fn state(&self) -> State {
        use ServerInviteState as S;
        match self.state {
            S::Proceeding { .. } => State::Proceeding,
            S::Completed { .. } => State::Completed,
            S::Confirmed { .. } => State::Confirmed,
            S::Accepted { .. } => State::Accepted,
            S::Terminated => State::Terminated,
        }
    }

    pub fn is_terminated(&self) -> bool {
        matches!(self.state, ServerInviteState::Terminated)
    }

    /// Whether it still acts on its own: only once the final response has
    /// been acknowledged (Confirmed; Accepted with its ACK in) does it
    /// merely absorb retransmitted INVITEs and ACKs.
    pub fn linger(&self) -> Linger {
        use ServerInviteState as S;
        match &self.state {
            S::Confirmed { i } => Linger::Absorbing(*i),
            S::Accepted {
                retransmit: None,
                l,
                ..
            } => Linger::Absorbing(*l),
            S::Terminated => Linger::Over,
            S::Proceeding { .. } | S::Completed { .. } | S::Accepted { .. } => Linger::Active,
        }
    }
}

/// The server side of a non-INVITE transaction (RFC 3261 §17.2.2, Figure 8).
#[derive(Debug, Clone)]
pub struct ServerNonInvite {
    transport: Transport,
    timers: Timers,
    state: ServerNonInviteState,
}

#[derive(Debug, Clone)]
enum ServerNonInviteState {
    /// Nothing sent yet: retransmitted requests are absorbed.
    Trying,
    /// Retransmitted requests are answered with the last provisional.
    Proceeding {
        provisional: Bytes,
    },
    /// Retransmitted requests are answered with the final until Timer J.
    Completed {
        response: Bytes,
        j: Instant,
    },
    Terminated,
}

impl ServerNonInvite {
    /// Starts the transaction in Trying for a request that arrived at `now`.
    pub fn new(transport: Transport, timers: Timers, _now: Instant) -> Self {
        ServerNonInvite {
            transport,
            timers,
            state: ServerNonInviteState::Trying,
        }
    }

    /// The TU responds with status `code`, encoded as `response`. Returns
    /// `Transmit(response)` for the driver to send, or `None` once a final
    /// response has been sent (§17.2.2: later finals are discarded).
    #[must_use]
    pub fn send_response(&mut self, code: u16, response: Bytes, now: Instant) -> Option<Action> {
        use ServerNonInviteState as S;
        let class = Class::of(code)?;
        match (&self.state, class) {
            (S::Trying | S::Proceeding { .. }, Class::Provisional) => {
                self.state = S::Proceeding {
                    provisional: response.clone(),
                };
            }
            // §17.2.2: a final moves to Completed with Timer J (zero, i.e.
            // Terminated, on reliable transports).
            (S::Trying | S::Proceeding { .. }, _) => {
                let j = self.timers.j(self.transport);
                self.state = if j.is_zero() {
                    S::Terminated
                } else {
                    S::Completed {
                        response: response.clone(),
                        j: now + j,
                    }
                };
            }
            (S::Completed { .. } | S::Terminated, _) => return None,
        }
        Some(Action::Transmit(response))
    }

    /// A retransmission of the request arrived (§17.2.3 matched it here).
    #[must_use]
    pub fn on_request(&mut self, _now: Instant) -> Option<Action> {
        use ServerNonInviteState as S;
        match &self.state {
            // §17.2.2: absorbed in Trying; answered with the last response
            // in Proceeding and Completed.
            S::Trying | S::Terminated => None,
            S::Proceeding {
                provisional: response,
            }
            | S::Completed { response, .. } => Some(Action::Transmit(response.clone())),
        }
    }

    /// The driver's timer reached [`ServerNonInvite::deadline`] (earlier or
    /// repeated calls do nothing).
    #[must_use]
    pub fn on_timer(&mut self, now: Instant) -> Option<Action> {
        match self.state {
            // §17.2.2: Timer J.
            ServerNonInviteState::Completed { j, .. } if now >= j => {
                self.state = ServerNonInviteState::Terminated;
                Some(Action::Terminated)
            }
            _ => None,
        }
    }

    /// The transport failed to send a response (§17.2.4).
    #[must_use]
    pub fn on_transport_error(&mut self, _now: Instant) -> Option<Action> {
        if self.is_terminated() {
            return None;
        }
        self.state = ServerNonInviteState::Terminated;
        Some(Action::TransportError)
    }

    /// When `on_timer` must next be called, if any timer is running.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            ServerNonInviteState::Completed { j, .. } => Some(j),
            _ => None,
        }
    }

    pub fn state(&self) -> State {
        use ServerNonInviteState as S;
        match self.state {
            S::Trying => State::Trying,
            S::Proceeding { .. } => State::Proceeding,
            S::Completed { .. } => State::Completed,
            S::Terminated => State::Terminated,
        }
    }

    pub fn is_terminated(&self) -> bool {
        matches!(self.state, ServerNonInviteState::Terminated)
    }

    /// Whether it still acts on its own; in Completed it only answers
    /// retransmissions with [`ServerNonInvite::final_response`].
    pub fn linger(&self) -> Linger {
        use ServerNonInviteState as S;
        match &self.state {
            S::Completed { j, .. } => Linger::Absorbing(*j),
            S::Terminated => Linger::Over,
            S::Trying | S::Proceeding { .. } => Linger::Active,
        }
    }

    /// The final response sent, while retransmitted requests get it again.
    pub fn final_response(&self) -> Option<&Bytes> {
        match &self.state {
            ServerNonInviteState::Completed { response, .. } => Some(response),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{ms, run, times};
    use super::*;
    use std::time::Duration;

    const TRYING: &[u8] = b"SIP/2.0 100 Trying\r\n\r\n";
    const RINGING: &[u8] = b"SIP/2.0 180 Ringing\r\n\r\n";
    const OK: &[u8] = b"SIP/2.0 200 OK\r\n\r\n";
    const OK_AGAIN: &[u8] = b"SIP/2.0 200 OK\r\nX: 2\r\n\r\n";
    const BUSY: &[u8] = b"SIP/2.0 486 Busy Here\r\n\r\n";
    const ERROR: &[u8] = b"SIP/2.0 500 Server Internal Error\r\n\r\n";

    fn tx(bytes: &'static [u8]) -> Option<Action> {
        Some(Action::Transmit(Bytes::from_static(bytes)))
    }

    fn respond(
        m: &mut ServerInvite,
        code: u16,
        bytes: &'static [u8],
        now: Instant,
    ) -> Option<Action> {
        m.send_response(code, Bytes::from_static(bytes), now)
    }

    fn respond_ni(
        m: &mut ServerNonInvite,
        code: u16,
        bytes: &'static [u8],
        now: Instant,
    ) -> Option<Action> {
        m.send_response(code, Bytes::from_static(bytes), now)
    }

    fn assert_schedule(
        fired: &[(Duration, Option<Action>)],
        bytes: &'static [u8],
        at: &[Duration],
        last: (Duration, Action),
    ) {
        let mut want: Vec<_> = at.iter().map(|&t| (t, tx(bytes))).collect();
        want.push((last.0, Some(last.1)));
        assert_eq!(fired, want);
    }

    /// 0.5, 1.5, 3.5, then every 4 s (T2) up to 31.5 s, in T1 units.
    const CAPPED_DEFAULT: &[u32] = &[1, 3, 7, 15, 23, 31, 39, 47, 55, 63];

    // ---- INVITE server ----

    #[test]
    fn invite_retransmitted_request_gets_the_last_provisional() {
        let base = Instant::now();
        let mut m = ServerInvite::new(Transport::Unreliable, Timers::default(), base);
        assert_eq!(m.state(), State::Proceeding);
        assert_eq!(m.deadline(), None);
        // Nothing sent yet: nothing to resend.
        assert_eq!(m.on_request(base), None);
        assert_eq!(respond(&mut m, 100, TRYING, base), tx(TRYING));
        assert_eq!(m.on_request(base + ms(500)), tx(TRYING));
        assert_eq!(respond(&mut m, 180, RINGING, base + ms(800)), tx(RINGING));
        assert_eq!(m.on_request(base + ms(1500)), tx(RINGING));
        assert_eq!(m.state(), State::Proceeding);
        // Provisionals are never retransmitted on a timer, nor is ACK meaningful yet.
        assert_eq!(m.deadline(), None);
        m.on_ack(base + ms(1600));
        assert_eq!(m.state(), State::Proceeding);
    }

    #[test]
    fn invite_non_2xx_timer_g_doubles_to_t2_until_timer_h() {
        let base = Instant::now();
        let mut m = ServerInvite::new(Transport::Unreliable, Timers::default(), base);
        assert_eq!(respond(&mut m, 100, TRYING, base), tx(TRYING));
        let t = base + ms(1000);
        assert_eq!(respond(&mut m, 486, BUSY, t), tx(BUSY));
        assert_eq!(m.state(), State::Completed);
        assert_eq!(m.deadline(), Some(t + ms(500)));
        let fired = run(&mut m, t, Duration::from_secs(3600));
        assert_schedule(
            &fired,
            BUSY,
            &times(ms(500), CAPPED_DEFAULT),
            (Duration::from_secs(32), Action::AckTimeout),
        );
        assert!(m.is_terminated());
    }

    #[test]
    fn invite_timer_g_honours_custom_t1_and_t2() {
        // T1 200 ms, T2 600 ms: 0.2, 0.6, 1.2, then every 0.6 s; H at 12.8 s.
        let base = Instant::now();
        let timers = Timers {
            t1: ms(200),
            t2: ms(600),
            t4: ms(5000),
        };
        let mut m = ServerInvite::new(Transport::Unreliable, timers, base);
        assert_eq!(respond(&mut m, 603, BUSY, base), tx(BUSY));
        let fired = run(&mut m, base, Duration::from_secs(3600));
        let mut at = vec![ms(200), ms(600)];
        at.extend((0..20).map(|n| ms(1200) + ms(600) * n));
        assert_eq!(*at.last().unwrap(), ms(12_600));
        assert_schedule(&fired, BUSY, &at, (ms(12_800), Action::AckTimeout));
    }

    #[test]
    fn invite_completed_answers_retransmitted_invites_with_the_final() {
        let base = Instant::now();
        let mut m = ServerInvite::new(Transport::Unreliable, Timers::default(), base);
        assert_eq!(respond(&mut m, 180, RINGING, base), tx(RINGING));
        assert_eq!(respond(&mut m, 486, BUSY, base + ms(100)), tx(BUSY));
        assert_eq!(m.on_request(base + ms(200)), tx(BUSY));
        // A second final from the TU is refused.
        assert_eq!(respond(&mut m, 500, ERROR, base + ms(300)), None);
        assert_eq!(respond(&mut m, 200, OK, base + ms(300)), None);
        assert_eq!(m.on_request(base + ms(400)), tx(BUSY));
    }

    #[test]
    fn invite_ack_confirms_then_timer_i_absorbs_acks() {
        let base = Instant::now();
        let mut m = ServerInvite::new(Transport::Unreliable, Timers::default(), base);
        assert_eq!(respond(&mut m, 486, BUSY, base), tx(BUSY));
        assert_eq!(m.on_timer(base + ms(500)), tx(BUSY));
        let t = base + ms(700);
        m.on_ack(t);
        assert_eq!(m.state(), State::Confirmed);
        // G and H are stopped; only I (T4) runs.
        assert_eq!(m.deadline(), Some(t + Duration::from_secs(5)));
        assert_eq!(m.on_timer(base + ms(1500)), None);
        // ACK and INVITE retransmissions are absorbed.
        m.on_ack(t + ms(100));
        assert_eq!(m.deadline(), Some(t + Duration::from_secs(5)));
        assert_eq!(m.on_request(t + ms(200)), None);
        let fired = run(&mut m, t, Duration::from_secs(3600));
        assert_eq!(
            fired,
            vec![(Duration::from_secs(5), Some(Action::Terminated))]
        );
        assert!(m.is_terminated());
    }

    #[test]
    fn invite_timer_i_honours_t4() {
        let base = Instant::now();
        let timers = Timers {
            t4: ms(2500),
            ..Timers::default()
        };
        let mut m = ServerInvite::new(Transport::Unreliable, timers, base);
        assert_eq!(respond(&mut m, 404, BUSY, base), tx(BUSY));
        m.on_ack(base + ms(10));
        assert_eq!(m.deadline(), Some(base + ms(2510)));
    }

    #[test]
    fn invite_non_2xx_on_reliable_transport_no_timer_g_and_i_is_zero() {
        let base = Instant::now();
        let mut m = ServerInvite::new(Transport::Reliable, Timers::default(), base);
        assert_eq!(respond(&mut m, 486, BUSY, base), tx(BUSY));
        // Only H runs.
        assert_eq!(m.deadline(), Some(base + Duration::from_secs(32)));
        assert_eq!(m.on_timer(base + ms(500)), None);
        m.on_ack(base + ms(600));
        assert!(m.is_terminated());
        assert_eq!(m.deadline(), None);

        // And without the ACK, H still fires at 64·T1.
        let mut m = ServerInvite::new(Transport::Reliable, Timers::default(), base);
        assert_eq!(respond(&mut m, 486, BUSY, base), tx(BUSY));
        let fired = run(&mut m, base, Duration::from_secs(3600));
        assert_eq!(
            fired,
            vec![(Duration::from_secs(32), Some(Action::AckTimeout))]
        );
    }

    #[test]
    fn invite_2xx_is_retransmitted_in_accepted_until_the_ack() {
        let base = Instant::now();
        let mut m = ServerInvite::new(Transport::Unreliable, Timers::default(), base);
        assert_eq!(respond(&mut m, 180, RINGING, base), tx(RINGING));
        let t = base + ms(5000);
        assert_eq!(respond(&mut m, 200, OK, t), tx(OK));
        assert_eq!(m.state(), State::Accepted);
        assert_eq!(m.on_timer(t + ms(500)), tx(OK));
        assert_eq!(m.on_timer(t + ms(1500)), tx(OK));
        assert_eq!(m.deadline(), Some(t + ms(3500)));
        // RFC 6026 §7.1: retransmitted INVITEs are absorbed in Accepted.
        assert_eq!(m.on_request(t + ms(1600)), None);
        m.on_ack_2xx(t + ms(2000));
        assert_eq!(m.state(), State::Accepted);
        // Only Timer L remains.
        assert_eq!(m.deadline(), Some(t + Duration::from_secs(32)));
        assert_eq!(m.on_timer(t + ms(3500)), None);
        assert_eq!(m.on_request(t + ms(4000)), None);
        let fired = run(&mut m, t, Duration::from_secs(3600));
        assert_eq!(
            fired,
            vec![(Duration::from_secs(32), Some(Action::Terminated))]
        );
        assert!(m.is_terminated());
    }

    #[test]
    fn invite_unacknowledged_2xx_gives_ack_timeout_at_64_t1() {
        for transport in [Transport::Unreliable, Transport::Reliable] {
            let base = Instant::now();
            let mut m = ServerInvite::new(transport, Timers::default(), base);
            assert_eq!(respond(&mut m, 200, OK, base), tx(OK));
            let fired = run(&mut m, base, Duration::from_secs(3600));
            // §13.3.1.4 on every transport: T1 doubling, capped at T2.
            assert_schedule(
                &fired,
                OK,
                &times(ms(500), CAPPED_DEFAULT),
                (Duration::from_secs(32), Action::AckTimeout),
            );
            assert!(m.is_terminated());
        }
    }

    #[test]
    fn invite_2xx_schedule_and_timer_l_honour_custom_timers() {
        // T1 300 ms, T2 1 s: 0.3, 0.9, then every 1 s to 18.9; L at 19.2 s.
        let base = Instant::now();
        let timers = Timers {
            t1: ms(300),
            t2: ms(1000),
            t4: ms(5000),
        };
        let mut m = ServerInvite::new(Transport::Unreliable, timers, base);
        assert_eq!(respond(&mut m, 200, OK, base), tx(OK));
        let fired = run(&mut m, base, Duration::from_secs(3600));
        let mut at = vec![ms(300)];
        at.extend((0..=18).map(|n| ms(900) + ms(1000) * n));
        assert_schedule(&fired, OK, &at, (ms(19_200), Action::AckTimeout));

        let mut m = ServerInvite::new(Transport::Unreliable, timers, base);
        assert_eq!(respond(&mut m, 200, OK, base), tx(OK));
        m.on_ack_2xx(base + ms(100));
        assert_eq!(m.deadline(), Some(base + ms(19_200)));
    }

    #[test]
    fn invite_newer_2xx_from_tu_replaces_the_retransmitted_one() {
        let base = Instant::now();
        let mut m = ServerInvite::new(Transport::Unreliable, Timers::default(), base);
        assert_eq!(respond(&mut m, 200, OK, base), tx(OK));
        assert_eq!(respond(&mut m, 200, OK_AGAIN, base + ms(100)), tx(OK_AGAIN));
        // Non-2xx after a 2xx is refused.
        assert_eq!(respond(&mut m, 486, BUSY, base + ms(200)), None);
        assert_eq!(m.on_timer(base + ms(500)), tx(OK_AGAIN));
        // The schedule was not restarted by the TU's copy.
        assert_eq!(m.deadline(), Some(base + ms(1500)));
    }

    #[test]
    fn invite_ack_for_non_2xx_does_not_stop_2xx_retransmission() {
        let base = Instant::now();
        let mut m = ServerInvite::new(Transport::Unreliable, Timers::default(), base);
        assert_eq!(respond(&mut m, 200, OK, base), tx(OK));
        m.on_ack(base + ms(100));
        assert_eq!(m.state(), State::Accepted);
        assert_eq!(m.on_timer(base + ms(500)), tx(OK));
    }

    #[test]
    fn invite_transport_error_terminates() {
        let base = Instant::now();
        let mut m = ServerInvite::new(Transport::Unreliable, Timers::default(), base);
        assert_eq!(respond(&mut m, 200, OK, base), tx(OK));
        assert_eq!(
            m.on_transport_error(base + ms(500)),
            Some(Action::TransportError)
        );
        assert!(m.is_terminated());
        assert_eq!(m.deadline(), None);
        assert_eq!(m.on_transport_error(base + ms(500)), None);
        assert_eq!(m.on_request(base + ms(600)), None);
    }

    #[test]
    fn invite_ignores_codes_that_are_not_sip_responses() {
        let base = Instant::now();
        let mut m = ServerInvite::new(Transport::Unreliable, Timers::default(), base);
        assert_eq!(respond(&mut m, 42, OK, base), None);
        assert_eq!(m.state(), State::Proceeding);
        assert_eq!(m.on_request(base), None);
    }

    // ---- non-INVITE server ----

    #[test]
    fn non_invite_trying_absorbs_retransmissions() {
        let base = Instant::now();
        let mut m = ServerNonInvite::new(Transport::Unreliable, Timers::default(), base);
        assert_eq!(m.state(), State::Trying);
        assert_eq!(m.on_request(base + ms(500)), None);
        assert_eq!(m.on_request(base + ms(1500)), None);
        assert_eq!(m.state(), State::Trying);
        assert_eq!(m.deadline(), None);
    }

    #[test]
    fn non_invite_proceeding_and_completed_answer_with_the_last_response() {
        let base = Instant::now();
        let mut m = ServerNonInvite::new(Transport::Unreliable, Timers::default(), base);
        assert_eq!(respond_ni(&mut m, 100, TRYING, base), tx(TRYING));
        assert_eq!(m.state(), State::Proceeding);
        assert_eq!(m.on_request(base + ms(500)), tx(TRYING));
        assert_eq!(
            respond_ni(&mut m, 180, RINGING, base + ms(600)),
            tx(RINGING)
        );
        assert_eq!(m.on_request(base + ms(700)), tx(RINGING));
        let t = base + ms(1000);
        assert_eq!(respond_ni(&mut m, 200, OK, t), tx(OK));
        assert_eq!(m.state(), State::Completed);
        assert_eq!(m.on_request(t + ms(500)), tx(OK));
        // Later finals from the TU are discarded (§17.2.2).
        assert_eq!(respond_ni(&mut m, 500, ERROR, t + ms(600)), None);
        assert_eq!(m.on_request(t + ms(700)), tx(OK));
        let fired = run(&mut m, t, Duration::from_secs(3600));
        assert_eq!(
            fired,
            vec![(Duration::from_secs(32), Some(Action::Terminated))]
        );
        assert!(m.is_terminated());
        assert_eq!(m.on_request(t + Duration::from_secs(40)), None);
    }

    #[test]
    fn non_invite_timer_j_follows_t1_and_is_zero_on_reliable() {
        let base = Instant::now();
        let timers = Timers {
            t1: ms(50),
            ..Timers::default()
        };
        let mut m = ServerNonInvite::new(Transport::Unreliable, timers, base);
        assert_eq!(respond_ni(&mut m, 481, ERROR, base), tx(ERROR));
        assert_eq!(m.deadline(), Some(base + ms(3200)));

        let mut m = ServerNonInvite::new(Transport::Reliable, timers, base);
        assert_eq!(respond_ni(&mut m, 200, OK, base), tx(OK));
        assert!(m.is_terminated());
        assert_eq!(m.deadline(), None);
    }

    #[test]
    fn non_invite_transport_error_terminates() {
        let base = Instant::now();
        let mut m = ServerNonInvite::new(Transport::Unreliable, Timers::default(), base);
        assert_eq!(respond_ni(&mut m, 200, OK, base), tx(OK));
        assert_eq!(m.on_transport_error(base), Some(Action::TransportError));
        assert!(m.is_terminated());
        assert_eq!(m.on_transport_error(base), None);
        assert_eq!(m.deadline(), None);
    }
}
