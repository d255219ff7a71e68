//! Seats (坐席) and their states.
//!
//! A seat is `LoggedOut` until its phone registers, then `Available`,
//! `Ringing` (one offer at a time), `OnCall`, `WrapUp` after each ACD call,
//! or `Paused` with a reason (a feature code from the phone, the API later,
//! or the ACD itself after `max_missed_offers` in a row: Asterisk's
//! autopause). A seat on a call is never offered another: only `Available`
//! seats are in the free-seat index.
//!
//! States carry their timers (`Ringing` its ring timeout, `WrapUp` its end),
//! like the SIP transactions, so a seat's deadline is read off its state and
//! cannot be left behind by a transition.
//!
//! What a seat asks for while busy (a pause or a logout during a call or an
//! offer) is kept in [`After`] and applied when the call or offer ends; a
//! seat removed by a reload is `retired`: it finishes its call and is gone.

use super::CallId;
use super::{Acd, Action, Event, EventKind, OfferFailure, Party, Timer, reschedule};
use std::time::{Duration, Instant};

/// A seat's state as the API and the wallboard see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatState {
    LoggedOut,
    Available,
    Ringing { call: CallId },
    OnCall { call: CallId },
    WrapUp,
    Paused { reason: String },
}

/// Seats of a queue by state; each seat counts once in each queue it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeatCounts {
    pub logged_out: usize,
    pub available: usize,
    pub ringing: usize,
    pub on_call: usize,
    pub wrap_up: usize,
    pub paused: usize,
}

impl SeatCounts {
    /// Seats logged in and not paused: those that will take calls, the `N`
    /// of the estimated wait.
    pub fn staffed(&self) -> usize {
        self.available + self.ringing + self.on_call + self.wrap_up
    }

    /// Seats logged in, paused or not.
    pub fn logged_in(&self) -> usize {
        self.staffed() + self.paused
    }

    pub(super) fn add(&mut self, kind: Kind, delta: isize) {
        let n = match kind {
            Kind::LoggedOut => &mut self.logged_out,
            Kind::Available => &mut self.available,
            Kind::Ringing => &mut self.ringing,
            Kind::OnCall => &mut self.on_call,
            Kind::WrapUp => &mut self.wrap_up,
            Kind::Paused => &mut self.paused,
        };
        *n = n.checked_add_signed(delta).expect("seat count underflow");
    }
}

/// A state without its data, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    LoggedOut,
    Available,
    Ringing,
    OnCall,
    WrapUp,
    Paused,
}

/// A call the ACD placed on a seat: what its end needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Placed {
    /// The queue's id (an index would not survive a reload).
    pub queue: String,
    pub connected: Instant,
    /// The caller's wait before it was connected.
    pub wait: Duration,
    /// The caller's place (1 = head) when it was connected.
    pub position: usize,
    /// The queue's wrap-up when connected, used if the queue is removed.
    pub wrap_up: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
    LoggedOut,
    Available,
    /// `until` is the ring timeout; `None` when the queue's `ring` is zero.
    Ringing {
        call: CallId,
        until: Option<Instant>,
    },
    /// `placed` is `None` for a call the ACD did not place (`seat_busy`).
    OnCall {
        call: CallId,
        placed: Option<Placed>,
    },
    WrapUp {
        until: Instant,
    },
    Paused {
        reason: String,
    },
}

/// What a busy seat does when its call or offer ends, instead of becoming
/// available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum After {
    Pause(String),
    Logout,
}

#[derive(Debug, Clone)]
pub(super) struct Seat {
    pub id: String,
    /// Interned, sorted; empty for a retired seat.
    pub skills: Vec<usize>,
    pub state: State,
    /// When it last became available: the longest-idle order.
    pub idle_since: Instant,
    /// Offers missed in a row (reset by an answer or a resume).
    pub missed: u32,
    /// ACD calls answered: the fewest-calls order.
    pub calls: u64,
    pub after: Option<After>,
    /// Removed by a reload while busy: gone when the call ends.
    pub retired: bool,
    /// The deadline this seat has in the ACD's timer set.
    pub scheduled: Option<Instant>,
}

impl Seat {
    pub fn new(id: String, skills: Vec<usize>, now: Instant) -> Seat {
        Seat {
            id,
            skills,
            state: State::LoggedOut,
            idle_since: now,
            missed: 0,
            calls: 0,
            after: None,
            retired: false,
            scheduled: None,
        }
    }

    pub fn kind(&self) -> Kind {
        match self.state {
            State::LoggedOut => Kind::LoggedOut,
            State::Available => Kind::Available,
            State::Ringing { .. } => Kind::Ringing,
            State::OnCall { .. } => Kind::OnCall,
            State::WrapUp { .. } => Kind::WrapUp,
            State::Paused { .. } => Kind::Paused,
        }
    }

    pub fn is_available(&self) -> bool {
        self.state == State::Available
    }

    /// The call ringing this seat, if any.
    pub fn ringing(&self) -> Option<CallId> {
        match self.state {
            State::Ringing { call, .. } => Some(call),
            _ => None,
        }
    }

    /// When the seat's state times out: the ring timeout or the wrap-up end.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Ringing { until, .. } => until,
            State::WrapUp { until } => Some(until),
            _ => None,
        }
    }

    pub fn view(&self) -> SeatState {
        match &self.state {
            State::LoggedOut => SeatState::LoggedOut,
            State::Available => SeatState::Available,
            State::Ringing { call, .. } => SeatState::Ringing { call: *call },
            State::OnCall { call, .. } => SeatState::OnCall { call: *call },
            State::WrapUp { .. } => SeatState::WrapUp,
            State::Paused { reason } => SeatState::Paused {
                reason: reason.clone(),
            },
        }
    }

    /// The longest-idle order: earliest available first, then seat order.
    pub fn idle_key(&self, ix: usize) -> (Instant, usize) {
        (self.idle_since, ix)
    }

    /// The fewest-calls order: fewest answered first, then seat order.
    pub fn calls_key(&self, ix: usize) -> (u64, usize) {
        (self.calls, ix)
    }
}

/// How long a seat that missed an offer rests before it is offered
/// another call (shown as `wrap_up`).
pub const MISSED_OFFER_REST: std::time::Duration = std::time::Duration::from_secs(5);

/// Seats changing state.
impl Acd {
    pub(super) fn seat_timer(&mut self, s: usize, now: Instant, out: &mut Vec<Action>) {
        match self.seats[s].state {
            State::Ringing {
                call,
                until: Some(until),
            } if until <= now => self.missed(s, call, OfferFailure::NoAnswer, true, now, out),
            State::WrapUp { until } if until <= now => {
                self.release_seat(s, now, true);
                self.dispatch_seat(s, now, out);
            }
            _ => {}
        }
    }

    /// Seat `s` missed `call`'s offer: logged, counted toward autopause,
    /// the seat back to the pool (at the back of the longest-idle order),
    /// the caller to another seat.
    pub(super) fn missed(
        &mut self,
        s: usize,
        call: CallId,
        failure: OfferFailure,
        timed_out: bool,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let seat = &mut self.seats[s];
        if timed_out {
            out.push(Action::Retract {
                call,
                seat: seat.id.clone(),
            });
        }
        let c = &self.callers[&call];
        let queue = &self.queues[c.queue];
        out.push(Action::Log(Event {
            queue: Some(queue.config.id.clone()),
            call: Some(call),
            seat: Some(seat.id.clone()),
            wait: now.saturating_duration_since(c.arrival),
            position: Some(self.waiting.ahead(c.queue, &c.key()) + 1),
            reason: Some(
                match failure {
                    OfferFailure::NoAnswer => "no_answer",
                    OfferFailure::Rejected => "rejected",
                }
                .into(),
            ),
            ..Event::new(EventKind::RingNoAnswer, now)
        }));
        seat.missed += 1;
        let max = queue.config.max_missed_offers;
        if max > 0 && seat.missed >= max && !seat.retired && seat.after != Some(After::Logout) {
            seat.after = Some(After::Pause("no_answer".into()));
            self.log_seat(EventKind::Pause, s, Some("no_answer"), now, out);
        }
        self.release_seat(s, now, true);
        // A seat that did not take an offer rests a moment before the
        // next (Asterisk's `retry`): its phone may be busy with a call of
        // its own, and ringing it again at once would hammer it while the
        // caller could be offered elsewhere.
        if self.seats[s].is_available() {
            self.set_seat(
                s,
                State::WrapUp {
                    until: now + MISSED_OFFER_REST,
                },
            );
        }
        self.offer_gone(s, call, now, out);
    }

    /// Seat `s` no longer rings for `call` (its state has moved on): the
    /// caller waits again, and is offered elsewhere, when no other seat
    /// rings for it.
    pub(super) fn offer_gone(
        &mut self,
        s: usize,
        call: CallId,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(c) = self.callers.get_mut(&call) else {
            return;
        };
        c.offers.retain(|&o| o != s);
        if c.is_waiting() {
            self.waiting.index(c, self.queues[c.queue].skill);
            self.dispatch_caller(call, Some(s), now, out);
        }
    }

    /// Seat `s`'s offer, call, wrap-up or pause is over: it becomes what it
    /// asked to be meanwhile, or available (`rested`: idle from now).
    pub(super) fn release_seat(&mut self, s: usize, now: Instant, rested: bool) {
        let seat = &mut self.seats[s];
        let next = match (seat.retired, seat.after.take()) {
            (true, _) | (false, Some(After::Logout)) => State::LoggedOut,
            (false, Some(After::Pause(reason))) => State::Paused { reason },
            (false, None) => {
                if rested {
                    seat.idle_since = now;
                }
                State::Available
            }
        };
        self.set_seat(s, next);
    }

    /// The one place a seat changes state: the free-seat index, the counts
    /// and the seat's timer follow.
    pub(super) fn set_seat(&mut self, s: usize, state: State) {
        let seat = &mut self.seats[s];
        let old = seat.kind();
        if old == Kind::Available {
            self.free.remove(s, seat);
        }
        seat.state = state;
        let new = seat.kind();
        if old != new {
            for &k in &seat.skills {
                self.counts[k].add(old, -1);
                self.counts[k].add(new, 1);
            }
            self.totals.add(old, -1);
            self.totals.add(new, 1);
        }
        if new == Kind::Available {
            self.free.insert(s, seat);
        }
        let next = seat.deadline();
        reschedule(&mut self.timers, &mut seat.scheduled, Timer::Seat(s), next);
    }

    /// Records that `call` occupies seat `s`.
    pub(super) fn hold(&mut self, call: CallId, s: usize) {
        let seats = self.on_call.entry(call).or_default();
        if let Err(i) = seats.binary_search(&s) {
            seats.insert(i, s);
        }
    }

    pub(super) fn unhold(&mut self, call: CallId, s: usize) {
        if let Some(seats) = self.on_call.get_mut(&call) {
            seats.retain(|&x| x != s);
            if seats.is_empty() {
                self.on_call.remove(&call);
            }
        }
    }

    /// The end of an ACD call on seat `s`.
    pub(super) fn end_placed(
        &mut self,
        s: usize,
        call: CallId,
        by: Party,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let State::OnCall {
            placed: Some(placed),
            ..
        } = &self.seats[s].state
        else {
            return;
        };
        let placed = placed.clone();
        self.unhold(call, s);
        let talk = now.saturating_duration_since(placed.connected);
        let wrap_up = match self.queue_ix.get(&placed.queue) {
            Some(&q) => {
                let queue = &mut self.queues[q];
                queue.aht.record(talk + queue.config.wrap_up);
                queue.config.wrap_up
            }
            None => placed.wrap_up,
        };
        let seat = &self.seats[s];
        out.push(Action::Log(Event {
            queue: Some(placed.queue),
            call: Some(call),
            seat: Some(seat.id.clone()),
            wait: placed.wait,
            position: Some(placed.position),
            talk: Some(talk),
            ..Event::new(
                match by {
                    Party::Caller => EventKind::CompleteCaller,
                    Party::Seat => EventKind::CompleteAgent,
                },
                now,
            )
        }));
        if wrap_up.is_zero() || seat.retired || seat.after.is_some() {
            self.release_seat(s, now, true);
            self.dispatch_seat(s, now, out);
        } else {
            self.set_seat(
                s,
                State::WrapUp {
                    until: now + wrap_up,
                },
            );
        }
    }

    /// The end of a seat's own call: no wrap-up.
    pub(super) fn end_own(&mut self, s: usize, call: CallId, now: Instant, out: &mut Vec<Action>) {
        self.unhold(call, s);
        self.release_seat(s, now, true);
        self.dispatch_seat(s, now, out);
    }

    pub(super) fn log_seat(
        &self,
        kind: EventKind,
        s: usize,
        reason: Option<&str>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        out.push(Action::Log(Event {
            seat: Some(self.seats[s].id.clone()),
            reason: reason.map(str::to_string),
            ..Event::new(kind, now)
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    #[test]
    fn a_seat_is_logged_out_until_it_registers_then_available() {
        let mut r = one_seat();
        assert_eq!(r.acd.seat_state("s1"), Some(SeatState::LoggedOut));
        assert!(r.login("s1").is_empty());
        assert_eq!(r.acd.seat_state("s1"), Some(SeatState::Available));
        // A registration refresh changes nothing.
        assert!(r.login("s1").is_empty());
        assert_eq!(r.acd.seat_state("s1"), Some(SeatState::Available));
        assert_eq!(r.acd.seat_state("nobody"), None);
    }

    #[test]
    fn wrap_up_follows_each_call_then_the_seat_takes_the_next_caller() {
        let mut r = one_seat();
        r.login("s1");
        r.join(1, "main");
        r.join(2, "main");
        r.answer(1, "s1");
        r.at(100);
        assert!(offers(&r.end(1)).is_empty(), "no offer during wrap-up");
        assert_eq!(r.acd.seat_state("s1"), Some(SeatState::WrapUp));
        assert_eq!(r.acd.deadline(), Some(r.base + secs(110)));
        // Not a moment before the 10 s wrap-up is over.
        r.at_ms(109_999);
        assert!(offers(&r.tick()).is_empty());
        r.at(110);
        assert_eq!(offers(&r.tick()), [(2, "s1".to_string())]);
    }

    #[test]
    fn a_zero_wrap_up_makes_the_seat_available_at_once() {
        let mut q = queue("main", "general");
        q.wrap_up = Duration::ZERO;
        let mut r = Run::new(config(vec![q], vec![seat("s1", &["general"])]));
        r.login("s1");
        r.join(1, "main");
        r.join(2, "main");
        r.answer(1, "s1");
        r.at(60);
        assert_eq!(offers(&r.end(1)), [(2, "s1".to_string())]);
    }

    #[test]
    fn pause_and_resume_with_a_reason() {
        let mut r = one_seat();
        r.login("s1");
        let out = r.pause("s1", "lunch");
        assert_eq!(kinds(&out), ["PAUSE"]);
        assert_eq!(events(&out)[0].reason.as_deref(), Some("lunch"));
        assert_eq!(
            r.acd.seat_state("s1"),
            Some(SeatState::Paused {
                reason: "lunch".into()
            })
        );
        // A paused seat is not offered callers.
        assert!(offers(&r.join(1, "main")).is_empty());
        r.at(30);
        let out = r.resume("s1");
        assert_eq!(kinds(&out), ["UNPAUSE"]);
        assert_eq!(offers(&out), [(1, "s1".to_string())]);
        // Resuming a seat that is not paused says nothing.
        assert!(r.resume("s1").is_empty());
    }

    #[test]
    fn a_pause_asked_during_a_call_takes_effect_when_it_ends() {
        let mut r = one_seat();
        r.login("s1");
        r.join(1, "main");
        r.answer(1, "s1");
        assert_eq!(kinds(&r.pause("s1", "meeting")), ["PAUSE"]);
        assert_eq!(
            r.acd.seat_state("s1"),
            Some(SeatState::OnCall { call: CallId(1) })
        );
        r.join(2, "main");
        r.at(60);
        r.end(1);
        r.at(70);
        assert!(offers(&r.tick()).is_empty());
        assert_eq!(
            r.acd.seat_state("s1"),
            Some(SeatState::Paused {
                reason: "meeting".into()
            })
        );
    }

    #[test]
    fn a_pause_during_wrap_up_is_immediate_and_resume_cancels_a_pending_pause() {
        let mut r = one_seat();
        r.login("s1");
        r.join(1, "main");
        r.answer(1, "s1");
        r.pause("s1", "meeting");
        assert_eq!(kinds(&r.resume("s1")), ["UNPAUSE"]);
        r.at(60);
        r.end(1);
        r.pause("s1", "break");
        assert_eq!(
            r.acd.seat_state("s1"),
            Some(SeatState::Paused {
                reason: "break".into()
            })
        );
        assert_eq!(r.acd.deadline(), None, "the wrap-up timer is gone with it");
    }

    #[test]
    fn autopause_after_max_missed_offers_in_a_row() {
        let mut r = one_seat();
        r.login("s1");
        r.join(1, "main");
        // Three ring timeouts of 20 s, each retracted and logged; after
        // each the seat rests 5 s and is offered the caller again.
        let rest = MISSED_OFFER_REST.as_secs();
        for miss in 1..=3u64 {
            let missed_at = 20 * miss + rest * (miss - 1);
            let out = r.at_run(missed_at);
            assert_eq!(retracts(&out), [(1, "s1".to_string())], "miss {miss}");
            assert!(kinds(&out).contains(&"RINGNOANSWER"));
            if miss < 3 {
                assert!(offers(&out).is_empty(), "resting");
                let out = r.at_run(missed_at + rest);
                assert_eq!(offers(&out), [(1, "s1".to_string())], "back in the pool");
            } else {
                assert!(offers(&out).is_empty());
                let pause = events(&out)
                    .into_iter()
                    .find(|e| e.kind == EventKind::Pause);
                assert_eq!(pause.unwrap().reason.as_deref(), Some("no_answer"));
            }
        }
        assert_eq!(
            r.acd.seat_state("s1"),
            Some(SeatState::Paused {
                reason: "no_answer".into()
            })
        );
        // Resuming resets the count: three more misses before the next pause.
        r.at(100);
        r.resume("s1");
        r.at_run(120);
        r.at_run(150);
        assert_eq!(
            r.acd.seat_state("s1"),
            Some(SeatState::Ringing { call: CallId(1) })
        );
    }

    #[test]
    fn an_answer_resets_the_missed_count() {
        let mut r = one_seat();
        r.login("s1");
        r.join(1, "main");
        r.at_run(40); // two misses
        r.answer(1, "s1");
        r.at(50);
        r.end(1);
        r.join(2, "main");
        r.at_run(60 + 40); // two more misses, not three in a row
        assert_eq!(
            r.acd.seat_state("s1"),
            Some(SeatState::Ringing { call: CallId(2) })
        );
    }

    #[test]
    fn zero_max_missed_offers_never_autopauses() {
        let mut q = queue("main", "general");
        q.max_missed_offers = 0;
        let mut r = Run::new(config(vec![q], vec![seat("s1", &["general"])]));
        r.login("s1");
        r.join(1, "main");
        r.at_run(200);
        assert_eq!(
            r.acd.seat_state("s1"),
            Some(SeatState::Ringing { call: CallId(1) })
        );
    }

    #[test]
    fn a_rejected_offer_goes_to_another_seat_and_counts_as_missed() {
        let mut r = seats(2);
        r.login("s1");
        r.at(1);
        r.login("s2");
        assert_eq!(offers(&r.join(1, "main")), [(1, "s1".to_string())]);
        let out = r.fail(1, "s1", OfferFailure::Rejected);
        assert!(retracts(&out).is_empty(), "the call already knows");
        assert_eq!(events(&out)[0].reason.as_deref(), Some("rejected"));
        assert_eq!(offers(&out), [(1, "s2".to_string())]);
        assert_eq!(r.acd.seats[0].missed, 1);
    }

    /// The ring timer withdraws the offer as the phone picks up: the call
    /// has bridged the seat already, so the answer stands and no ghost of
    /// the caller is left waiting.
    #[test]
    fn an_answer_just_after_the_offer_was_withdrawn_still_connects() {
        let mut r = one_seat();
        r.login("s1");
        r.join(1, "main");
        r.join(2, "main");
        let out = r.at_run(20);
        assert_eq!(retracts(&out), [(1, "s1".to_string())]);
        let out = r.answer(1, "s1");
        assert!(retracts(&out).is_empty(), "{out:?}");
        assert!(out.iter().any(|a| matches!(
            a,
            Action::Connected {
                call: CallId(1),
                ..
            }
        )));
        assert_eq!(
            r.acd.seat_state("s1"),
            Some(SeatState::OnCall { call: CallId(1) })
        );
        assert_eq!(
            r.acd.queue_stats("main", r.now).unwrap().waiting,
            1,
            "only caller 2 waits"
        );
        // A caller that is gone cannot be answered late.
        r.leave(2, Leave::Abandoned);
        let out = r.answer(2, "s1");
        assert_eq!(retracts(&out), [(2, "s1".to_string())]);
    }

    #[test]
    fn a_seat_that_fails_alone_is_offered_the_caller_again_after_a_rest() {
        let mut r = one_seat();
        r.login("s1");
        r.join(1, "main");
        let out = r.fail(1, "s1", OfferFailure::NoAnswer);
        assert!(offers(&out).is_empty(), "not rung again at once");
        assert_eq!(r.acd.seat_state("s1"), Some(SeatState::WrapUp));
        let out = r.at_run(MISSED_OFFER_REST.as_secs() - 1);
        assert!(offers(&out).is_empty());
        let out = r.at_run(MISSED_OFFER_REST.as_secs());
        assert_eq!(offers(&out), [(1, "s1".to_string())]);
    }

    #[test]
    fn logout_while_ringing_retracts_and_the_caller_keeps_waiting() {
        let mut r = one_seat();
        r.login("s1");
        r.join(1, "main");
        let out = r.logout("s1");
        assert_eq!(retracts(&out), [(1, "s1".to_string())]);
        assert_eq!(r.acd.seat_state("s1"), Some(SeatState::LoggedOut));
        assert_eq!(r.acd.queue_stats("main", r.now).unwrap().waiting, 1);
        r.at(5);
        assert_eq!(offers(&r.login("s1")), [(1, "s1".to_string())]);
    }

    #[test]
    fn logout_during_a_call_takes_effect_when_it_ends() {
        let mut r = one_seat();
        r.login("s1");
        r.join(1, "main");
        r.answer(1, "s1");
        r.logout("s1");
        assert_eq!(
            r.acd.seat_state("s1"),
            Some(SeatState::OnCall { call: CallId(1) })
        );
        r.at(30);
        r.end(1);
        r.at(40);
        r.tick();
        assert_eq!(r.acd.seat_state("s1"), Some(SeatState::LoggedOut));
    }

    #[test]
    fn a_call_the_acd_did_not_place_keeps_the_seat_from_offers() {
        let mut r = one_seat();
        r.login("s1");
        assert!(r.busy("s1", 900).is_empty());
        assert_eq!(
            r.acd.seat_state("s1"),
            Some(SeatState::OnCall { call: CallId(900) })
        );
        assert!(offers(&r.join(1, "main")).is_empty());
        r.at(30);
        // No wrap-up after the seat's own call.
        assert_eq!(offers(&r.free("s1", 900)), [(1, "s1".to_string())]);
    }

    #[test]
    fn seat_busy_while_ringing_retracts_the_offer() {
        let mut r = seats(2);
        r.login("s1");
        r.at(1);
        r.login("s2");
        r.join(1, "main");
        let out = r.busy("s1", 900);
        assert_eq!(retracts(&out), [(1, "s1".to_string())]);
        assert_eq!(offers(&out), [(1, "s2".to_string())]);
    }

    #[test]
    fn a_paused_seat_on_its_own_call_stays_paused_after_it() {
        let mut r = one_seat();
        r.login("s1");
        r.pause("s1", "admin");
        r.busy("s1", 900);
        assert_eq!(
            r.acd.seat_state("s1"),
            Some(SeatState::OnCall { call: CallId(900) })
        );
        r.free("s1", 900);
        assert_eq!(
            r.acd.seat_state("s1"),
            Some(SeatState::Paused {
                reason: "admin".into()
            })
        );
    }
}
