//! Waiting callers, ordered by original arrival, and the tiers of seats each
//! may be offered.
//!
//! A caller keeps its arrival for life: one who comes back (an offer not
//! answered, a transfer that failed, an overflow or a reload moving it to
//! another queue) takes its old place, never the tail. Ties between equal
//! arrivals go to the earlier join (`seq`), so the order is total.
//!
//! Tiers, for a caller of queue `q` from a line with expert seats and/or a
//! skill (a dual-number line such as 12348):
//! - from arrival, its **expert seats**;
//! - from arrival + `expert_wait` (at once if it has no expert seat), seats
//!   with **its skill**;
//! - from arrival + `widen_after`, **every seat serving `q`** (with
//!   `q.skill`).
//!
//! A caller with neither is eligible for every seat serving its queue at
//! once. Tiers start by the clock alone (not by which seats are logged in),
//! so that when a caller is offered is predictable and testable; an expert
//! who is away costs its callers `expert_wait`, which is why it is short.
//!
//! Indexes: each queue's line (every caller in it, waiting or being
//! offered: positions and the longest wait), and, for callers waiting for a
//! seat (not being offered one), one ordered map per skill and one per
//! expert seat. A caller is in the map of skill `k` when a seat with `k` may
//! take it now, whichever tier put it there. A seat becoming free looks at
//! the front of its expert map and of its skills' maps: O(skills · log
//! callers), however many wait.

use super::CallId;
use super::seat::Kind;
use super::{Acd, Action, Entry, Event, EventKind, ExitReason, Overflow, Timer, announce};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The order of callers: original arrival, then join order.
pub(super) type Key = (Instant, u64);

/// Which tiers beyond the expert seats a caller has reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Tiers {
    pub skill: bool,
    pub general: bool,
}

/// One caller in a queue.
#[derive(Debug, Clone)]
pub(super) struct Caller {
    pub call: CallId,
    pub queue: usize,
    pub line: String,
    pub skill_name: Option<String>,
    /// The interned skill, when some seat or queue has it.
    pub skill: Option<usize>,
    /// Expert seats named by the join (the routing table's line).
    pub expert_names: Vec<String>,
    /// Those and the seats whose `expert_for` lists the line, sorted.
    pub experts: Vec<usize>,
    pub arrival: Instant,
    pub seq: u64,
    /// Entered its current queue (its `max_wait` counts from here).
    pub entered: Instant,
    /// When the skill and general tiers start (fixed by queue and arrival).
    pub skill_from: Option<Instant>,
    pub general_from: Instant,
    /// When `max_wait` runs out.
    pub give_up: Option<Instant>,
    pub tiers: Tiers,
    /// Seats ringing for this caller; empty while it waits for one.
    pub offers: Vec<usize>,
    /// Callers ahead when last told (for "position changed").
    pub told: Option<usize>,
    pub next_announce: Option<Instant>,
    /// Overflows followed since joining (the cycle guard).
    pub hops: usize,
    /// The deadline this caller has in the ACD's timer set.
    pub scheduled: Option<Instant>,
}

/// What fixes a caller's timers in a queue.
pub(super) struct Timing {
    pub expert_wait: Duration,
    pub widen_after: Duration,
    pub max_wait: Option<Duration>,
}

impl Caller {
    pub fn key(&self) -> Key {
        (self.arrival, self.seq)
    }

    pub fn is_waiting(&self) -> bool {
        self.offers.is_empty()
    }

    /// Fixes the tier starts and the timeout for the caller's queue, and
    /// the tiers reached at `now`.
    pub fn time(&mut self, t: &Timing, now: Instant) {
        let special = self.skill_name.is_some() || !self.experts.is_empty();
        self.skill_from = self.skill_name.as_ref().map(|_| {
            let wait = if self.experts.is_empty() {
                Duration::ZERO
            } else {
                t.expert_wait
            };
            self.arrival + wait
        });
        self.general_from = if special {
            self.arrival + t.widen_after
        } else {
            self.arrival
        };
        self.give_up = t.max_wait.map(|w| self.entered + w);
        self.tiers = self.tiers_at(now);
    }

    pub fn tiers_at(&self, now: Instant) -> Tiers {
        Tiers {
            skill: self.skill_from.is_some_and(|t| t <= now),
            general: self.general_from <= now,
        }
    }

    /// The caller's next timer: a tier starting, its timeout, or an
    /// announcement due.
    pub fn deadline(&self) -> Option<Instant> {
        let promote = [
            self.skill_from.filter(|_| !self.tiers.skill),
            Some(self.general_from).filter(|_| !self.tiers.general),
        ];
        promote
            .into_iter()
            .chain([self.give_up, self.next_announce])
            .flatten()
            .min()
    }
}

/// The callers of every queue, and those waiting indexed by who may take
/// them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Waiting {
    /// Per queue: every caller in it.
    lines: Vec<BTreeMap<Key, CallId>>,
    /// Per skill: waiting callers a seat with that skill may take now.
    by_skill: Vec<BTreeMap<Key, CallId>>,
    /// Per seat: waiting callers it is an expert seat for.
    by_expert: Vec<BTreeMap<Key, CallId>>,
}

impl Waiting {
    pub fn new(queues: usize, skills: usize, seats: usize) -> Waiting {
        Waiting {
            lines: vec![BTreeMap::new(); queues],
            by_skill: vec![BTreeMap::new(); skills],
            by_expert: vec![BTreeMap::new(); seats],
        }
    }

    pub fn enter(&mut self, c: &Caller) {
        self.lines[c.queue].insert(c.key(), c.call);
    }

    pub fn leave(&mut self, c: &Caller) {
        self.lines[c.queue].remove(&c.key());
    }

    /// Makes `c` (waiting, not being offered) findable by the seats its
    /// tiers allow; `queue_skill` is its queue's skill.
    pub fn index(&mut self, c: &Caller, queue_skill: usize) {
        for &e in &c.experts {
            self.by_expert[e].insert(c.key(), c.call);
        }
        if let (true, Some(k)) = (c.tiers.skill, c.skill) {
            self.by_skill[k].insert(c.key(), c.call);
        }
        if c.tiers.general {
            self.by_skill[queue_skill].insert(c.key(), c.call);
        }
    }

    pub fn unindex(&mut self, c: &Caller, queue_skill: usize) {
        for &e in &c.experts {
            self.by_expert[e].remove(&c.key());
        }
        if let Some(k) = c.skill {
            self.by_skill[k].remove(&c.key());
        }
        self.by_skill[queue_skill].remove(&c.key());
    }

    /// The caller a free seat takes: its expert callers first (that is what
    /// an expert seat is for), else the earliest arrival among the callers
    /// its skills may take.
    pub fn first_for_seat(&self, seat: usize, skills: &[usize]) -> Option<CallId> {
        if let Some((_, &call)) = self.by_expert[seat].first_key_value() {
            return Some(call);
        }
        skills
            .iter()
            .filter_map(|&k| self.by_skill[k].first_key_value())
            .min()
            .map(|(_, &call)| call)
    }

    /// Callers ahead of `key` in queue `q`: O(log n) at the tail (a caller
    /// joining), O(ahead) elsewhere, which is small near the head where
    /// callers are connected. Announcements and abandons deep in a long
    /// queue pay for the callers ahead; dispatch never asks.
    pub fn ahead(&self, q: usize, key: &Key) -> usize {
        let line = &self.lines[q];
        match (line.first_key_value(), line.last_key_value()) {
            (Some((first, _)), _) if first == key => 0,
            (_, Some((last, _))) if last == key => line.len() - 1,
            _ => line.range(..key).count(),
        }
    }

    /// Callers in queue `q`, waiting or being offered.
    pub fn len(&self, q: usize) -> usize {
        self.lines[q].len()
    }

    /// The earliest arrival in queue `q`.
    pub fn head(&self, q: usize) -> Option<Instant> {
        self.lines[q]
            .first_key_value()
            .map(|((arrival, _), _)| *arrival)
    }

    /// Queue `q`'s callers in order.
    pub fn line(&self, q: usize) -> impl Iterator<Item = (CallId, Instant)> + '_ {
        self.lines[q]
            .iter()
            .map(|((arrival, _), &call)| (call, *arrival))
    }
}

/// Callers entering and leaving queues.
impl Acd {
    pub(super) fn caller_timer(&mut self, call: CallId, now: Instant, out: &mut Vec<Action>) {
        let Some(c) = self.callers.get_mut(&call) else {
            return;
        };
        if c.give_up.is_some_and(|t| t <= now) {
            self.exit(call, ExitReason::Timeout, now, out);
            return;
        }
        let tiers = c.tiers_at(now);
        if tiers != c.tiers {
            let skill = self.queues[c.queue].skill;
            c.tiers = tiers;
            if c.is_waiting() {
                self.waiting.index(c, skill);
                self.dispatch_caller(call, None, now, out);
            }
        }
        let c = &self.callers[&call];
        if c.next_announce.is_some_and(|t| t <= now) {
            let q = &self.queues[c.queue];
            let ahead = self.waiting.ahead(c.queue, &c.key());
            let ewt = self.ewt(c.queue, ahead);
            let mut items = announce::periodic(ahead, c.told, ewt);
            items.extend(announce::callback_offer(q.config.callback_after, ewt));
            let next = q.next_announce(now);
            let c = self.callers.get_mut(&call).expect("looked up above");
            c.told = Some(ahead);
            c.next_announce = next;
            if !items.is_empty() {
                out.push(Action::Announce { call, items });
            }
        }
    }

    /// Puts `caller` in queue `q`, or overflows it from there.
    pub(super) fn enter(
        &mut self,
        mut caller: Caller,
        q: usize,
        how: Entry,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let queue = &self.queues[q];
        caller.queue = q;
        if how != Entry::Moved {
            if !self.could_serve(&caller) {
                let to = queue.config.join_empty.clone();
                return self.overflow(caller, ExitReason::Empty, to, None, now, out);
            }
            if queue
                .config
                .max_callers
                .is_some_and(|max| self.waiting.len(q) >= max)
            {
                let to = queue.config.overflow.clone();
                return self.overflow(caller, ExitReason::Full, to, None, now, out);
            }
        }
        caller.entered = now;
        caller.time(&queue.timing(), now);
        caller.next_announce = queue.next_announce(now);
        caller.scheduled = None;
        self.waiting.enter(&caller);
        if caller.is_waiting() {
            self.waiting.index(&caller, queue.skill);
        }
        let ahead = self.waiting.ahead(q, &caller.key());
        let ewt = self.ewt(q, ahead);
        let call = caller.call;
        out.push(Action::Log(Event {
            queue: Some(queue.config.id.clone()),
            call: Some(call),
            wait: now.saturating_duration_since(caller.arrival),
            position: Some(ahead + 1),
            ..Event::new(EventKind::EnterQueue, now)
        }));
        out.push(Action::Queued {
            call,
            queue: queue.config.id.clone(),
            position: ahead + 1,
            ewt,
        });
        self.callers.insert(call, caller);
        self.dispatch_caller(call, None, now, out);
        let caller = self.callers.get_mut(&call).expect("just inserted");
        if caller.is_waiting() {
            caller.told = Some(ahead);
            let mut items = announce::on_entry(ahead, ewt, how != Entry::Join);
            items.extend(announce::callback_offer(
                self.queues[q].config.callback_after,
                ewt,
            ));
            out.push(Action::Announce { call, items });
        }
        self.schedule_caller(call);
    }

    /// Whether a seat that could ever serve `caller` (in its queue) is
    /// logged in: `join_empty`.
    pub(super) fn could_serve(&self, caller: &Caller) -> bool {
        caller
            .experts
            .iter()
            .any(|&e| self.seats[e].kind() != Kind::LoggedOut)
            || caller.skill.is_some_and(|k| self.counts[k].logged_in() > 0)
            || self.counts[self.queues[caller.queue].skill].logged_in() > 0
    }

    /// `caller` (out of every index, its offers retracted) leaves its queue
    /// for `to`.
    pub(super) fn overflow(
        &mut self,
        mut caller: Caller,
        reason: ExitReason,
        to: Overflow,
        position: Option<usize>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let queue = &mut self.queues[caller.queue];
        let kind = match reason {
            ExitReason::Full => {
                queue.calls.full += 1;
                EventKind::Full
            }
            ExitReason::Empty => {
                queue.calls.empty += 1;
                EventKind::ExitEmpty
            }
            ExitReason::Timeout => {
                queue.calls.timeout += 1;
                EventKind::ExitWithTimeout
            }
            ExitReason::ExitKey => {
                queue.calls.exit_key += 1;
                EventKind::ExitWithKey
            }
        };
        let call = caller.call;
        out.push(Action::Log(Event {
            queue: Some(queue.config.id.clone()),
            call: Some(call),
            wait: now.saturating_duration_since(caller.arrival),
            position,
            ..Event::new(kind, now)
        }));
        let target = match &to {
            Overflow::Queue(id) => self.queue_ix.get(id).copied(),
            Overflow::Busy | Overflow::Callback => None,
        };
        match target {
            // The cycle guard: at most as many hops as there are queues.
            Some(t) if caller.hops < self.queues.len() => {
                caller.hops += 1;
                out.push(Action::Overflowed { call, reason, to });
                self.enter(caller, t, Entry::Overflow, now, out);
            }
            _ => out.push(Action::Overflowed {
                call,
                reason,
                to: if to == Overflow::Callback {
                    Overflow::Callback
                } else {
                    Overflow::Busy
                },
            }),
        }
    }

    pub(super) fn abandon(&mut self, call: CallId, now: Instant, out: &mut Vec<Action>) {
        let Some((caller, ahead)) = self.detach(call) else {
            return;
        };
        let queue = &mut self.queues[caller.queue];
        let wait = now.saturating_duration_since(caller.arrival);
        let short = wait < queue.config.short_abandon;
        if short {
            queue.calls.short_abandoned += 1;
        } else {
            queue.calls.abandoned += 1;
        }
        out.push(Action::Log(Event {
            queue: Some(queue.config.id.clone()),
            call: Some(call),
            wait,
            position: Some(ahead + 1),
            short,
            ..Event::new(EventKind::Abandon, now)
        }));
        let freed = self.retract(&caller, now, out);
        self.dispatch_seats(&freed, now, out);
    }

    /// The call took its caller out of the queue itself: no exit action
    /// (the caller is not the queue's to send anywhere any more).
    pub(super) fn step_out(
        &mut self,
        call: CallId,
        reason: Option<&str>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some((caller, ahead)) = self.detach(call) else {
            return;
        };
        let queue = &self.queues[caller.queue];
        out.push(Action::Log(Event {
            queue: Some(queue.config.id.clone()),
            call: Some(call),
            wait: now.saturating_duration_since(caller.arrival),
            position: Some(ahead + 1),
            reason: reason.map(str::to_string),
            ..Event::new(EventKind::ExitWithKey, now)
        }));
        let freed = self.retract(&caller, now, out);
        self.dispatch_seats(&freed, now, out);
    }

    /// The caller leaves its queue for the queue's exit action (exit key)
    /// or overflow (timeout).
    pub(super) fn exit(
        &mut self,
        call: CallId,
        reason: ExitReason,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some((caller, ahead)) = self.detach(call) else {
            return;
        };
        let freed = self.retract(&caller, now, out);
        let config = &self.queues[caller.queue].config;
        let to = match reason {
            ExitReason::ExitKey => config.exit_action.clone(),
            _ => config.overflow.clone(),
        };
        self.overflow(caller, reason, to, Some(ahead + 1), now, out);
        self.dispatch_seats(&freed, now, out);
    }

    /// Takes `call` out of its queue, its indexes and the timers; returns
    /// it with the callers that were ahead of it.
    pub(super) fn detach(&mut self, call: CallId) -> Option<(Caller, usize)> {
        let caller = self.callers.remove(&call)?;
        let ahead = self.waiting.ahead(caller.queue, &caller.key());
        self.waiting.leave(&caller);
        self.waiting
            .unindex(&caller, self.queues[caller.queue].skill);
        if let Some(t) = caller.scheduled {
            self.timers.remove(&(t, Timer::Caller(call)));
        }
        Some((caller, ahead))
    }

    /// Retracts a detached caller's offers; the seats are released (not a
    /// miss) but not yet dispatched: returns them.
    pub(super) fn retract(
        &mut self,
        caller: &Caller,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Vec<usize> {
        for &s in &caller.offers {
            out.push(Action::Retract {
                call: caller.call,
                seat: self.seats[s].id.clone(),
            });
            self.release_seat(s, now, false);
        }
        caller.offers.clone()
    }

    /// A caller's expert seats: those named and those whose `expert_for`
    /// lists the line, in seat order.
    pub(super) fn experts_for(&self, line: &str, named: &[String]) -> Vec<usize> {
        let mut experts: Vec<usize> = named
            .iter()
            .filter_map(|n| self.seat_ix.get(n).copied())
            .chain(self.line_experts.get(line).into_iter().flatten().copied())
            .filter(|&s| !self.seats[s].retired)
            .collect();
        experts.sort_unstable();
        experts.dedup();
        experts
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;

    /// 12348 legal aid, a dual-number line: expert seat `e`, seats with the
    /// `law` skill, and general seats serving the main queue.
    fn legal() -> Run {
        let mut e = seat("e", &[]);
        e.expert_for = vec!["12348".into()];
        Run::new(config(
            vec![queue("main", "general")],
            vec![e, seat("law", &["law"]), seat("g", &["general"])],
        ))
    }

    #[test]
    fn callers_are_served_in_order_of_arrival() {
        let mut r = one_seat();
        r.occupy(&["s1"]);
        r.join(1, "main");
        r.at(1);
        r.join(2, "main");
        r.at(2);
        r.join(3, "main");
        r.at(3);
        assert_eq!(offers(&r.free("s1", 900)), [(1, "s1".to_string())]);
        let line: Vec<u64> = r.acd.waiting("main").map(|(c, _)| c.0).collect();
        assert_eq!(line, [1, 2, 3]);
    }

    #[test]
    fn the_expert_seat_is_offered_first_when_free() {
        let mut r = legal();
        r.login("g");
        r.login("law");
        r.login("e");
        let out = r.join_line(1, "main", "12348", Some("law"));
        assert_eq!(offers(&out), [(1, "e".to_string())]);
    }

    #[test]
    fn the_expert_takes_its_callers_before_earlier_general_ones() {
        let mut e = seat("e", &["general"]);
        e.expert_for = vec!["12348".into()];
        let mut r = Run::new(config(
            vec![queue("main", "general")],
            vec![e, seat("g", &["general"])],
        ));
        r.occupy(&["g"]);
        r.join(1, "main");
        r.at(1);
        r.join_line(2, "main", "12348", Some("law"));
        r.at(2);
        assert_eq!(offers(&r.login("e")), [(2, "e".to_string())]);
    }

    #[test]
    fn skill_widening_goes_expert_then_skill_then_general() {
        let mut r = legal();
        r.login("g");
        r.login("law");
        r.occupy(&["e"]);
        r.busy("law", 901);
        // At 0 s only the expert may take the caller: it is busy.
        assert!(offers(&r.join_line(1, "main", "12348", Some("law"))).is_empty());
        // From 10 s (expert_wait) seats with the skill: free them now.
        r.at(5);
        assert!(offers(&r.free("law", 901)).is_empty(), "too early for law");
        assert_eq!(r.acd.deadline(), Some(r.base + secs(10)));
        let out = r.at_run(10);
        assert_eq!(offers(&out), [(1, "law".to_string())]);
    }

    #[test]
    fn after_widen_after_any_seat_of_the_queue_and_the_caller_keeps_its_place() {
        let mut r = legal();
        r.occupy(&["g"]);
        r.join_line(1, "main", "12348", Some("law"));
        r.at(1);
        r.join(2, "main");
        // The general seat frees at 20: caller 2 may take it, caller 1 not yet.
        r.at(20);
        assert_eq!(offers(&r.free("g", 900)), [(2, "g".to_string())]);
        r.answer(2, "g");
        r.at(25);
        r.join(3, "main");
        r.at(28);
        r.end(2); // wrap-up until 38
        // At 30 caller 1 widens; at 38 the seat takes it, ahead of caller 3
        // who joined later but could be served since joining.
        r.at_run(37);
        let out = r.at_run(38);
        assert_eq!(offers(&out), [(1, "g".to_string())]);
    }

    #[test]
    fn a_caller_with_a_skill_and_no_expert_starts_at_its_skill_tier() {
        let mut r = legal();
        r.login("law");
        let out = r.join_line(1, "main", "12333", Some("law"));
        assert_eq!(offers(&out), [(1, "law".to_string())]);
    }

    #[test]
    fn a_returning_caller_keeps_its_original_arrival() {
        let mut r = one_seat();
        r.occupy(&["s1"]);
        r.join(1, "main");
        r.at(10);
        r.join(2, "main");
        r.at(20);
        // Caller 3 comes back (its transfer failed) having arrived at 5 s.
        let out = r.rejoin(3, "main", r.base + secs(5));
        assert_eq!(queued(&out), [(3, 2)], "second, between 1 and 2");
        let line: Vec<u64> = r.acd.waiting("main").map(|(c, _)| c.0).collect();
        assert_eq!(line, [1, 3, 2]);
    }

    #[test]
    fn a_caller_not_answered_keeps_its_place_ahead_of_later_ones() {
        let mut r = seats(2);
        r.login("s1");
        r.join(1, "main");
        r.at(1);
        r.join(2, "main");
        r.at(2);
        // s1 refuses caller 1 and rests; s2 logs in meanwhile and takes
        // caller 1, who came first; s1, rested, takes caller 2.
        let out = r.fail(1, "s1", OfferFailure::Rejected);
        assert!(offers(&out).is_empty(), "s1 rests");
        let out = r.login("s2");
        assert_eq!(offers(&out), [(1, "s2".to_string())]);
        let out = r.at_run(7);
        assert_eq!(
            offers(&out),
            [(2, "s1".to_string())],
            "s1 back after its rest"
        );
    }

    #[test]
    fn abandon_is_logged_with_its_wait_and_position() {
        let mut r = one_seat();
        r.occupy(&["s1"]);
        r.join(1, "main");
        r.join(2, "main");
        r.at(40);
        let out = r.leave(2, Leave::Abandoned);
        let [e] = events(&out).try_into().unwrap();
        assert_eq!(e.kind, EventKind::Abandon);
        assert_eq!((e.wait, e.position, e.short), (secs(40), Some(2), false));
        assert_eq!(e.queue.as_deref(), Some("main"));
        let stats = r.acd.queue_stats("main", r.now).unwrap();
        assert_eq!(
            (
                stats.waiting,
                stats.calls.abandoned,
                stats.calls.short_abandoned
            ),
            (1, 1, 0)
        );
    }

    #[test]
    fn a_short_abandon_is_counted_apart() {
        let mut r = one_seat();
        r.occupy(&["s1"]);
        r.join(1, "main");
        r.at_ms(4_999);
        let out = r.leave(1, Leave::Abandoned);
        assert!(events(&out)[0].short);
        r.join(2, "main");
        r.at_ms(4_999 + 5_000);
        assert!(
            !events(&r.leave(2, Leave::Abandoned))[0].short,
            "5 s is not short"
        );
        let stats = r.acd.queue_stats("main", r.now).unwrap();
        assert_eq!((stats.calls.abandoned, stats.calls.short_abandoned), (1, 1));
    }

    #[test]
    fn abandoning_while_offered_retracts_the_offer_and_frees_the_seat() {
        let mut r = one_seat();
        r.login("s1");
        r.join(1, "main");
        r.join(2, "main");
        r.at(3);
        let out = r.leave(1, Leave::Abandoned);
        assert_eq!(retracts(&out), [(1, "s1".to_string())]);
        assert_eq!(offers(&out), [(2, "s1".to_string())]);
        assert_eq!(r.acd.seats[0].missed, 0, "not the seat's miss");
    }

    #[test]
    fn max_wait_overflows_with_a_timeout() {
        let mut q = queue("main", "general");
        q.max_wait = Some(secs(300));
        let mut r = Run::new(config(vec![q], vec![seat("s1", &["general"])]));
        r.occupy(&["s1"]);
        r.join(1, "main");
        let out = r.at_run(300);
        assert_eq!(overflowed(&out), [(1, ExitReason::Timeout, Overflow::Busy)]);
        assert_eq!(kinds(&out), ["EXITWITHTIMEOUT"]);
        assert_eq!(events(&out)[0].wait, secs(300));
        assert_eq!(r.acd.queue_stats("main", r.now).unwrap().waiting, 0);
    }

    #[test]
    fn max_wait_while_ringing_retracts_first() {
        let mut q = queue("main", "general");
        q.max_wait = Some(secs(15));
        let mut r = Run::new(config(vec![q], vec![seat("s1", &["general"])]));
        r.login("s1");
        r.join(1, "main");
        let out = r.at_run(15);
        assert_eq!(retracts(&out), [(1, "s1".to_string())]);
        assert_eq!(overflowed(&out), [(1, ExitReason::Timeout, Overflow::Busy)]);
        assert_eq!(r.acd.seat_state("s1"), Some(SeatState::Available));
    }

    #[test]
    fn a_full_queue_overflows() {
        let mut q = queue("main", "general");
        q.max_callers = Some(2);
        let mut r = Run::new(config(vec![q], vec![seat("s1", &["general"])]));
        r.login("s1");
        r.join(1, "main"); // offered, still in the queue
        r.join(2, "main");
        let out = r.join(3, "main");
        assert_eq!(overflowed(&out), [(3, ExitReason::Full, Overflow::Busy)]);
        assert_eq!(kinds(&out), ["FULL"]);
        assert!(queued(&out).is_empty());
        assert_eq!(r.acd.queue_stats("main", r.now).unwrap().calls.full, 1);
    }

    #[test]
    fn join_empty_when_no_seat_that_could_serve_is_logged_in() {
        let mut r = legal();
        // A paused seat is logged in: not empty.
        r.login("g");
        r.pause("g", "lunch");
        assert!(overflowed(&r.join(1, "main")).is_empty());
        // The law line has the expert and law seats too; all logged out.
        r.logout("g");
        let out = r.join_line(2, "main", "12348", Some("law"));
        assert_eq!(overflowed(&out), [(2, ExitReason::Empty, Overflow::Busy)]);
        assert_eq!(kinds(&out), ["EXITEMPTY"]);
        // The expert alone logged in is enough for a 12348 caller, not for
        // a general one.
        r.occupy(&["e"]);
        assert!(overflowed(&r.join_line(3, "main", "12348", Some("law"))).is_empty());
        assert_eq!(overflowed(&r.join(4, "main")).len(), 1);
    }

    #[test]
    fn the_exit_key_takes_the_caller_to_the_exit_action() {
        let mut q = queue("main", "general");
        q.exit_key = Some('0');
        q.exit_action = Overflow::Queue("callback".into());
        let mut r = Run::new(config(
            vec![q, queue("callback", "general")],
            vec![seat("s1", &["general"])],
        ));
        r.occupy(&["s1"]);
        r.join(1, "main");
        r.at(7);
        assert!(r.key(1, '5').is_empty(), "other digits do nothing");
        let out = r.key(1, '0');
        assert_eq!(
            overflowed(&out),
            [(1, ExitReason::ExitKey, Overflow::Queue("callback".into()))]
        );
        assert_eq!(kinds(&out), ["EXITWITHKEY", "ENTERQUEUE"]);
        assert_eq!(queued(&out), [(1, 1)]);
        assert_eq!(r.acd.queue_stats("main", r.now).unwrap().calls.exit_key, 1);
        // leave(ExitKey) is the same thing, decided by the call.
        r.join(2, "main");
        let out = r.leave(2, Leave::ExitKey);
        assert_eq!(kinds(&out), ["EXITWITHKEY", "ENTERQUEUE"]);
    }

    #[test]
    fn a_full_queue_that_overflows_to_a_callback_says_so() {
        let mut a = queue("a", "general");
        a.max_callers = Some(1);
        a.overflow = Overflow::Callback;
        let mut r = Run::new(config(vec![a], vec![seat("s1", &["general"])]));
        r.occupy(&["s1"]);
        r.join(1, "a");
        let out = r.join(2, "a");
        assert!(out.iter().any(|a| matches!(
            a,
            Action::Overflowed {
                reason: ExitReason::Full,
                to: Overflow::Callback,
                ..
            }
        )));
    }

    #[test]
    fn overflow_to_another_queue_keeps_the_arrival() {
        let mut a = queue("a", "general");
        a.max_wait = Some(secs(60));
        a.overflow = Overflow::Queue("b".into());
        let mut r = Run::new(config(
            vec![a, queue("b", "backup")],
            vec![seat("s1", &["general"]), seat("s2", &["backup"])],
        ));
        r.occupy(&["s1", "s2"]);
        r.join(1, "a");
        r.at(30);
        r.join(2, "b");
        let out = r.at_run(60);
        assert_eq!(
            overflowed(&out),
            [(1, ExitReason::Timeout, Overflow::Queue("b".into()))]
        );
        // Caller 1 arrived before caller 2: it is first in b.
        assert_eq!(queued(&out), [(1, 1)]);
        let an = announces(&out);
        let (call, items) = an.last().unwrap();
        assert_eq!((*call, items[0].as_str()), (1, "queue_moved"));
        assert_eq!(
            r.acd.waiting("b").map(|c| c.0.0).collect::<Vec<_>>(),
            [1, 2]
        );
        r.at(61);
        assert_eq!(offers(&r.free("s2", 901)), [(1, "s2".to_string())]);
    }

    #[test]
    fn an_overflow_cycle_ends_busy() {
        let mut a = queue("a", "general");
        a.max_callers = Some(0);
        a.overflow = Overflow::Queue("b".into());
        let mut b = queue("b", "general");
        b.max_callers = Some(0);
        b.overflow = Overflow::Queue("a".into());
        let mut r = Run::new(config(vec![a, b], vec![seat("s1", &["general"])]));
        r.login("s1");
        let out = r.join(1, "a");
        let over = overflowed(&out);
        assert_eq!(over.last(), Some(&(1, ExitReason::Full, Overflow::Busy)));
        assert_eq!(over.len(), 3, "a → b → a, then busy: {over:?}");
        assert!(queued(&out).is_empty());
    }

    #[test]
    fn a_join_to_an_unknown_queue_goes_to_the_main_queue() {
        let mut r = one_seat();
        r.login("s1");
        let out = r.join(1, "gone");
        assert_eq!(offers(&out), [(1, "s1".to_string())]);
        assert_eq!(r.acd.queue_stats("main", r.now).unwrap().waiting, 1);
    }
}
