//! How a queue chooses among the free seats eligible for its caller:
//! longest idle (the default), round robin, fewest calls, ring all.
//!
//! Free seats are indexed per skill in one ordered set per strategy, so a
//! choice is a look at the front of a set (O(log seats)), not a scan; ring
//! all alone walks its tier's free seats, which it must offer anyway. A
//! caller's expert seats are a short list, chosen among directly by the same
//! keys. Ties fall to seat order in the configuration: the choice is a pure
//! function of the state.
//!
//! Within a tier the strategy decides; between tiers the better match wins:
//! a free expert seat before a seat with the caller's skill, before any seat
//! serving the queue (see `queue.rs`).

use super::config::Strategy;
use super::seat::Seat;
use super::seat::State;
use super::{Acd, Action, CallId};
use std::collections::BTreeSet;
use std::time::Instant;

/// What a strategy chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Choice {
    None,
    One(usize),
    /// Ring all: every eligible free seat of the tier, in seat order.
    All(Vec<usize>),
}

impl Choice {
    pub fn is_none(&self) -> bool {
        matches!(self, Choice::None)
    }

    pub fn seats(self) -> Vec<usize> {
        match self {
            Choice::None => Vec::new(),
            Choice::One(s) => vec![s],
            Choice::All(v) => v,
        }
    }
}

/// The available seats of one skill, in each strategy's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Free {
    idle: BTreeSet<(Instant, usize)>,
    order: BTreeSet<usize>,
    calls: BTreeSet<(u64, usize)>,
}

/// Available seats by skill: the seat-side index of dispatch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct FreeSeats {
    by_skill: Vec<Free>,
}

impl FreeSeats {
    pub fn new(skills: usize) -> FreeSeats {
        FreeSeats {
            by_skill: vec![Free::default(); skills],
        }
    }

    /// `seat` became available. Its idle and call keys must not change until
    /// it is removed again.
    pub fn insert(&mut self, ix: usize, seat: &Seat) {
        for &k in &seat.skills {
            let f = &mut self.by_skill[k];
            f.idle.insert(seat.idle_key(ix));
            f.order.insert(ix);
            f.calls.insert(seat.calls_key(ix));
        }
    }

    pub fn remove(&mut self, ix: usize, seat: &Seat) {
        for &k in &seat.skills {
            let f = &mut self.by_skill[k];
            f.idle.remove(&seat.idle_key(ix));
            f.order.remove(&ix);
            f.calls.remove(&seat.calls_key(ix));
        }
    }

    /// The free seats with `skill` chosen by `strategy`; `cursor` is the
    /// seat this queue offered last (round robin), `exclude` a seat that
    /// just failed this caller.
    pub fn choose(
        &self,
        strategy: Strategy,
        skill: usize,
        cursor: Option<usize>,
        exclude: Option<usize>,
    ) -> Choice {
        let f = &self.by_skill[skill];
        let ok = |s: &usize| Some(*s) != exclude;
        let one = |s: Option<usize>| s.map_or(Choice::None, Choice::One);
        match strategy {
            Strategy::LongestIdle => one(f.idle.iter().map(|k| k.1).find(ok)),
            Strategy::FewestCalls => one(f.calls.iter().map(|k| k.1).find(ok)),
            Strategy::RoundRobin => {
                let after = cursor.map_or(0, |c| c + 1);
                one(f
                    .order
                    .range(after..)
                    .chain(f.order.range(..after))
                    .copied()
                    .find(ok))
            }
            Strategy::RingAll => all(f.order.iter().copied().filter(ok).collect()),
        }
    }
}

fn all(seats: Vec<usize>) -> Choice {
    if seats.is_empty() {
        Choice::None
    } else {
        Choice::All(seats)
    }
}

/// The same choice among a short list of candidates (a caller's expert
/// seats, sorted by seat order), skipping those not available.
pub(super) fn choose_among(
    strategy: Strategy,
    candidates: &[usize],
    seats: &[Seat],
    cursor: Option<usize>,
    exclude: Option<usize>,
) -> Choice {
    let free = candidates
        .iter()
        .copied()
        .filter(|&s| Some(s) != exclude && seats[s].is_available());
    let one = |s: Option<usize>| s.map_or(Choice::None, Choice::One);
    match strategy {
        Strategy::LongestIdle => one(free.min_by_key(|&s| seats[s].idle_key(s))),
        Strategy::FewestCalls => one(free.min_by_key(|&s| seats[s].calls_key(s))),
        Strategy::RoundRobin => {
            let free: Vec<usize> = free.collect();
            let after = cursor.map_or(0, |c| c + 1);
            one(free
                .iter()
                .copied()
                .find(|&s| s >= after)
                .or(free.first().copied()))
        }
        Strategy::RingAll => all(free.collect()),
    }
}

/// Matching callers and seats.
impl Acd {
    /// What a caller's best tier and its queue's strategy choose now.
    pub(super) fn choose_for(&self, call: CallId, exclude: Option<usize>) -> Choice {
        let Some(c) = self.callers.get(&call).filter(|c| c.is_waiting()) else {
            return Choice::None;
        };
        let q = &self.queues[c.queue];
        let strategy = q.config.strategy;
        // A ring-all round rings everyone again, the seat that failed too.
        let exclude = exclude.filter(|_| strategy != Strategy::RingAll);
        let mut choice = choose_among(strategy, &c.experts, &self.seats, q.cursor, exclude);
        if let (true, true, Some(k)) = (choice.is_none(), c.tiers.skill, c.skill) {
            choice = self.free.choose(strategy, k, q.cursor, exclude);
        }
        if choice.is_none() && c.tiers.general {
            choice = self.free.choose(strategy, q.skill, q.cursor, exclude);
        }
        choice
    }

    /// Offers a waiting caller to its best free seat(s), if any.
    pub(super) fn dispatch_caller(
        &mut self,
        call: CallId,
        exclude: Option<usize>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let seats = self.choose_for(call, exclude).seats();
        if !seats.is_empty() {
            self.offer(call, seats, now, out);
        }
    }

    /// Offers a free seat the caller it should take, if any.
    pub(super) fn dispatch_seat(&mut self, s: usize, now: Instant, out: &mut Vec<Action>) {
        let seat = &self.seats[s];
        if !seat.is_available() {
            return;
        }
        if let Some(call) = self.waiting.first_for_seat(s, &seat.skills) {
            self.offer(call, vec![s], now, out);
        }
    }

    pub(super) fn dispatch_seats(&mut self, seats: &[usize], now: Instant, out: &mut Vec<Action>) {
        for &s in seats {
            self.dispatch_seat(s, now, out);
        }
    }

    pub(super) fn offer(
        &mut self,
        call: CallId,
        seats: Vec<usize>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let c = self
            .callers
            .get_mut(&call)
            .expect("offered callers are queued");
        let queue = &mut self.queues[c.queue];
        self.waiting.unindex(c, queue.skill);
        let ring = queue.config.ring;
        let until = (!ring.is_zero()).then(|| now + ring);
        queue.cursor = seats.last().copied();
        c.offers.clone_from(&seats);
        for s in seats {
            self.set_seat(s, State::Ringing { call, until });
            out.push(Action::Offer {
                call,
                seat: self.seats[s].id.clone(),
                ring,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;

    /// Four seats of one queue, logged in at 0, 1, 2 and 3 s (so s1 has
    /// been idle longest).
    fn four(strategy: Strategy) -> Run {
        let mut q = queue("main", "general");
        q.strategy = strategy;
        let seats = (1..=4)
            .map(|i| seat(&format!("s{i}"), &["general"]))
            .collect();
        let mut r = Run::new(config(vec![q], seats));
        for i in 1..=4 {
            r.at(i - 1);
            r.login(&format!("s{i}"));
        }
        r
    }

    /// The seat each caller 1..=n is offered to, each answered at once.
    fn served(r: &mut Run, first: u64, n: u64) -> Vec<String> {
        (first..first + n)
            .map(|c| {
                let out = r.join(c, "main");
                let [(_, seat)] = offers(&out).try_into().expect("one offer");
                r.answer(c, &seat);
                seat
            })
            .collect()
    }

    #[test]
    fn longest_idle_offers_the_seat_available_longest() {
        let mut r = four(Strategy::LongestIdle);
        r.at(10);
        assert_eq!(served(&mut r, 1, 2), ["s1", "s2"]);
        // s2 ends first: its wrap-up ends at 30, s1's at 35.
        r.at(20);
        r.end(2);
        r.at(25);
        r.end(1);
        r.at_run(40);
        // Now s3 (idle since 2 s), s4 (3 s), s2 (30 s), s1 (35 s).
        assert_eq!(served(&mut r, 3, 4), ["s3", "s4", "s2", "s1"]);
    }

    #[test]
    fn longest_idle_ties_go_to_seat_order() {
        let mut q = queue("main", "general");
        q.strategy = Strategy::LongestIdle;
        let mut r = Run::new(config(
            vec![q],
            vec![seat("b", &["general"]), seat("a", &["general"])],
        ));
        r.login("a");
        r.login("b");
        assert_eq!(offers(&r.join(1, "main")), [(1, "b".to_string())]);
    }

    #[test]
    fn round_robin_goes_on_from_the_seat_offered_last() {
        let mut r = four(Strategy::RoundRobin);
        r.at(10);
        assert_eq!(served(&mut r, 1, 2), ["s1", "s2"]);
        // s1 comes back first; the queue goes on with s3, s4, then wraps.
        r.at(20);
        r.end(1);
        r.at_run(40);
        assert_eq!(served(&mut r, 3, 3), ["s3", "s4", "s1"]);
    }

    #[test]
    fn round_robin_skips_busy_seats() {
        let mut r = four(Strategy::RoundRobin);
        r.busy("s2", 900);
        r.at(10);
        assert_eq!(served(&mut r, 1, 3), ["s1", "s3", "s4"]);
    }

    #[test]
    fn fewest_calls_offers_the_seat_that_answered_least() {
        let mut r = four(Strategy::FewestCalls);
        r.at(10);
        // s1 and s2 each take a call and come back.
        assert_eq!(served(&mut r, 1, 2), ["s1", "s2"]);
        r.end(1);
        r.end(2);
        r.at_run(30);
        // s3 and s4 have answered none.
        assert_eq!(served(&mut r, 3, 2), ["s3", "s4"]);
        r.end(3);
        r.end(4);
        r.at_run(50);
        // All even again: seat order.
        assert_eq!(served(&mut r, 5, 1), ["s1"]);
    }

    #[test]
    fn ring_all_offers_every_free_seat_and_the_first_answer_wins() {
        let mut r = four(Strategy::RingAll);
        r.busy("s3", 900);
        r.at(10);
        let out = r.join(1, "main");
        assert_eq!(
            offers(&out),
            [(1, "s1".into()), (1, "s2".into()), (1, "s4".into())]
        );
        let out = r.answer(1, "s2");
        assert_eq!(connected(&out), [(1, "s2".to_string())]);
        assert_eq!(retracts(&out), [(1, "s1".into()), (1, "s4".into())]);
        assert_eq!(r.acd.seat_state("s1"), Some(SeatState::Available));
        // A loser answering late is told to drop its leg.
        let out = r.answer(1, "s4");
        assert_eq!(retracts(&out), [(1, "s4".to_string())]);
        assert!(connected(&out).is_empty());
        // Losers of ring all did not miss anything.
        assert_eq!(r.acd.seats[0].missed, 0);
    }

    #[test]
    fn ring_all_times_out_all_seats_then_rings_again_after_the_rest() {
        let mut r = four(Strategy::RingAll);
        r.at(10);
        r.join(1, "main");
        let out = r.at_run(30);
        assert_eq!(retracts(&out).len(), 4);
        assert_eq!(
            kinds(&out).iter().filter(|k| **k == "RINGNOANSWER").count(),
            4
        );
        assert!(offers(&out).is_empty(), "every seat rests after its miss");
        let out = r.at_run(30 + super::super::seat::MISSED_OFFER_REST.as_secs());
        // The caller rings again when its seats are back; seats freed
        // while it rings do not join that round (a known limit).
        assert!(!offers(&out).is_empty());
        assert!(offers(&out).iter().all(|(c, _)| *c == 1));
    }

    #[test]
    fn ring_all_keeps_ringing_the_others_when_one_rejects() {
        let mut r = four(Strategy::RingAll);
        r.at(10);
        r.join(1, "main");
        let out = r.fail(1, "s1", OfferFailure::Rejected);
        assert!(offers(&out).is_empty());
        assert_eq!(
            r.acd.seat_state("s2"),
            Some(SeatState::Ringing { call: CallId(1) })
        );
        assert_eq!(r.acd.seat_state("s1"), Some(SeatState::WrapUp), "resting");
    }

    #[test]
    fn every_strategy_offers_a_seat_only_one_call_at_a_time() {
        for strategy in [
            Strategy::LongestIdle,
            Strategy::RoundRobin,
            Strategy::FewestCalls,
            Strategy::RingAll,
        ] {
            let mut r = four(strategy);
            r.at(10);
            let mut rung = Vec::new();
            for c in 1..=6 {
                rung.extend(offers(&r.join(c, "main")).into_iter().map(|o| o.1));
            }
            rung.sort();
            rung.dedup();
            assert_eq!(rung.len(), offers_total(&r), "{strategy:?}");
        }
    }

    fn offers_total(r: &Run) -> usize {
        (1..=4)
            .filter(|i| {
                matches!(
                    r.acd.seat_state(&format!("s{i}")),
                    Some(SeatState::Ringing { .. })
                )
            })
            .count()
    }
}
