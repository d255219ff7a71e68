//! The ACD (automatic call distribution, 话务分配): queues of waiting
//! callers, seats with states, and the matching of the two, as a pure state
//! machine.
//!
//! # Shape
//! Sans-I/O, like the SIP transactions and quinn-proto: [`Acd`] owns no
//! socket, no timer and no clock. Every input is a method taking `now`
//! (the daemon passes `Instant::now()`, the simulator base + offsets) and
//! returning [`Action`]s for the caller to carry out, in order: ring this
//! seat, stop ringing that one, bridge, announce, give up. The only timing
//! contract is [`Acd::deadline`]: call [`Acd::on_timer`] then. Every input
//! first runs the timers due by its `now`, so after any input the deadline
//! is strictly later than that `now`, and it is never stale (a timer leaves
//! the set the moment its reason goes). Nothing is random: ties fall to
//! seat order in the configuration, then to join order.
//!
//! # Pieces
//! This file holds the interface: the types, and the inputs as methods.
//! The machinery behind them sits with its concept, as `impl Acd` blocks:
//! - [`config`]: queues, seats, strategies, overflow targets;
//! - `queue.rs`: callers in order of original arrival, the tiers of seats
//!   (expert → skill → widened), the indexes that find a caller for a free
//!   seat; callers entering, overflowing, abandoning;
//! - `seat.rs`: seat states carrying their timers; the one place a seat
//!   changes state, missed offers and autopause, the end of calls;
//! - `strategy.rs`: longest idle, round robin, fewest calls, ring all over
//!   the free-seat index; making offers;
//! - [`estimate`]: average handle time and the estimated wait;
//! - [`announce`]: position and wait as prompts, Mandarin numerals.
//!
//! Derived state (indexes, seat counts, the timer set) is kept in step by
//! each transition and can be rebuilt from the seats and callers alone
//! (`rebuild`, which a reload uses and the tests compare against after
//! every input).
//!
//! # Dispatch
//! Two decisions, both O(log) in the callers waiting: a seat becoming free
//! takes the caller it is an expert seat for, else the earliest-arrived
//! caller it may take (one ordered map per skill); a caller becoming
//! eligible (joining, reaching a tier, its offer failing) takes a free seat
//! of its best tier chosen by its queue's strategy (one ordered set per
//! skill and strategy). After every input no waiting caller has an eligible
//! free seat.
//!
//! # Choices the spec left open
//! - **Position** is 1-based (1 = next), as in Asterisk; announcements say
//!   the callers *ahead* (position − 1).
//! - **A caller offered a seat at once** hears no position: `Queued` comes,
//!   the `Announce` does not. Callers being offered stay in their queue
//!   (they count in positions and `max_callers`) until connected.
//! - **Missed offers**: a ring timeout ([`Action::Retract`]) and a failure
//!   the call reports ([`Acd::offer_failed`], rejected or not answered) both
//!   log `RINGNOANSWER` (with reason `no_answer` or `rejected`) and count
//!   toward autopause: a seat that rejects every offer is as absent as one
//!   that never answers. The seat goes to the back of the longest-idle
//!   order, the caller to another free seat if there is one, else back to
//!   the same seat (there is no retry delay). Losers of ring all and offers
//!   withdrawn because the caller left are not misses.
//! - **Pause** of a seat that is ringing or on a call takes effect when the
//!   offer or call ends (with no wrap-up after that call); of a seat in
//!   wrap-up, at once. Logout likewise. `PAUSE`/`UNPAUSE` are logged when
//!   asked. A seat's pause is forgotten at logout.
//! - **Longest idle** counts from when the seat last became available:
//!   wrap-up end, login, resume, its own call's end, a missed offer.
//! - **Fewest calls** counts ACD calls answered since the ACD started,
//!   kept across reloads.
//! - **Handle time** is talk plus the queue's wrap-up (see [`estimate`]).
//! - **Ring all** rings every free seat of the caller's best tier (the
//!   expert seats when one is free), not every tier at once.
//! - **`max_wait`** counts from entering the current queue; order and tiers
//!   from the original arrival.
//! - **Overflow** into another queue applies that queue's `join_empty` and
//!   `max_callers`; each hop is an [`Action::Overflowed`] with `to:
//!   Queue(..)` followed by `Queued` there; after as many hops as there are
//!   queues, the next is `Busy`. Callers moved by a reload ignore the main
//!   queue's limits.
//! - **A join for a queue that does not exist** (removed by a reload
//!   meanwhile) goes to the main queue. A join for a call already waiting
//!   replaces its entry silently.
//! - **Zero durations**: `ring` zero rings until answered or failed;
//!   `announce_every` zero announces at joining only.
//!
//! # Events
//! [`Event`] is one `queue_log` line with Asterisk's event names
//! ([`EventKind::as_str`]). It serialises (serde) to one JSON object
//! without its time: an `Instant` has no wall-clock meaning, so the daemon
//! adds the time it wrote the line, e.g. `#[derive(Serialize)] struct Line<'a>
//! { time: DateTime<Utc>, #[serde(flatten)] event: &'a Event }`.

pub mod announce;
pub mod config;
pub mod estimate;
mod queue;
mod seat;
mod strategy;
#[cfg(test)]
mod test_util;

pub use config::{Config, Overflow, QueueConfig, SeatConfig, Strategy};
pub use seat::{SeatCounts, SeatState};

use crate::media::prompt::Item;
use estimate::Aht;
use queue::{Caller, Timing, Waiting};
use rustc_hash::FxHashMap;
use seat::{After, Kind, Placed, Seat, State};
use serde::{Serialize, Serializer};
use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, Instant};
use strategy::FreeSeats;

/// A call as the ACD knows it: the call task's number, not its SIP
/// Call-ID (a number is cheap to copy into indexes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct CallId(pub u64);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A caller asking for a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    pub queue: String,
    /// The number dialled (its line), e.g. `12348`.
    pub line: String,
    /// The line's skill (dual-number lines).
    pub skill: Option<String>,
    /// The line's expert seats; seats whose `expert_for` lists the line are
    /// added, so the two sources agree however the glue fills them.
    pub expert_seats: Vec<String>,
    /// The original arrival: a caller coming back keeps its place.
    pub arrival: Instant,
}

/// Why a waiting caller leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    /// The caller hung up.
    Abandoned,
    /// The caller pressed the exit key (the call decided it).
    ExitKey,
    /// The call took its caller elsewhere itself (a ticket, a callback in
    /// its turn): out of the queue, no exit action; logged as
    /// `EXITWITHKEY`.
    Detached,
    /// A supervisor ended the call (the control API): out of the queue,
    /// no exit action; logged as `EXITWITHKEY` with reason `operator`.
    Operator,
}

/// How an offer failed, as the call saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferFailure {
    /// The seat declined (486, 603…).
    Rejected,
    /// The seat did not answer (480, 408…).
    NoAnswer,
}

/// Why a caller left a queue other than by being answered or hanging up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    Full,
    Empty,
    Timeout,
    ExitKey,
}

/// Who ended a connected call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Caller,
    Seat,
}

/// What the ACD asks the daemon (or the simulator) to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The caller is in `queue` at `position` (1 = next), told `ewt`.
    Queued {
        call: CallId,
        queue: String,
        position: usize,
        ewt: Option<Duration>,
    },
    /// Ring this seat for this call, for `ring` (the ACD times it out).
    Offer {
        call: CallId,
        seat: String,
        ring: Duration,
    },
    /// Stop ringing (ring timeout, ring-all loser, caller gone), or drop a
    /// leg that answered an offer no longer standing.
    Retract { call: CallId, seat: String },
    /// The offer was answered and won: bridge the caller and the seat.
    Connected { call: CallId, seat: String },
    /// Play these to the waiting caller (hold music resumes after).
    Announce { call: CallId, items: Vec<Item> },
    /// The caller left the queue for `to`. `Busy`: announce
    /// ([`announce::QUEUE_BUSY`] for full and timeout,
    /// [`announce::QUEUE_UNAVAILABLE`] for empty) and hang up. `Queue`: the
    /// ACD has moved it there (a `Queued` follows).
    Overflowed {
        call: CallId,
        reason: ExitReason,
        to: Overflow,
    },
    /// A reload removed `from`; the caller now waits in `to` (the ACD
    /// announces [`announce::QUEUE_MOVED`] with its new position).
    Moved {
        call: CallId,
        from: String,
        to: String,
    },
    /// A queue_log line, for the event log and the metrics.
    Log(Event),
}

/// The queue_log event names Asterisk users know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    EnterQueue,
    Connect,
    Abandon,
    ExitWithKey,
    ExitWithTimeout,
    ExitEmpty,
    RingNoAnswer,
    CompleteCaller,
    CompleteAgent,
    Pause,
    Unpause,
    /// A caller turned away by `max_callers`.
    Full,
}

impl EventKind {
    /// Every kind, e.g. to register a metric's labels up front.
    pub const ALL: [EventKind; 12] = [
        EventKind::EnterQueue,
        EventKind::Connect,
        EventKind::Abandon,
        EventKind::ExitWithKey,
        EventKind::ExitWithTimeout,
        EventKind::ExitEmpty,
        EventKind::RingNoAnswer,
        EventKind::CompleteCaller,
        EventKind::CompleteAgent,
        EventKind::Pause,
        EventKind::Unpause,
        EventKind::Full,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::EnterQueue => "ENTERQUEUE",
            EventKind::Connect => "CONNECT",
            EventKind::Abandon => "ABANDON",
            EventKind::ExitWithKey => "EXITWITHKEY",
            EventKind::ExitWithTimeout => "EXITWITHTIMEOUT",
            EventKind::ExitEmpty => "EXITEMPTY",
            EventKind::RingNoAnswer => "RINGNOANSWER",
            EventKind::CompleteCaller => "COMPLETECALLER",
            EventKind::CompleteAgent => "COMPLETEAGENT",
            EventKind::Pause => "PAUSE",
            EventKind::Unpause => "UNPAUSE",
            EventKind::Full => "FULL",
        }
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One queue_log line. Durations serialise as seconds (millisecond
/// precision); `time` does not serialise (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    #[serde(skip)]
    pub time: Instant,
    #[serde(rename = "event")]
    pub kind: EventKind,
    /// `None` for seat events (`PAUSE`, `UNPAUSE`: a seat pauses in all
    /// its queues at once).
    pub queue: Option<String>,
    pub call: Option<CallId>,
    pub seat: Option<String>,
    /// The caller's wait since its original arrival (for `COMPLETE*` the
    /// wait before it was connected); zero for seat events.
    #[serde(serialize_with = "seconds")]
    pub wait: Duration,
    /// The caller's place (1 = next), when it was in the queue.
    pub position: Option<usize>,
    /// `COMPLETE*`: the talk time.
    #[serde(serialize_with = "opt_seconds")]
    pub talk: Option<Duration>,
    /// `PAUSE`: its reason; `RINGNOANSWER`: `no_answer` or `rejected`.
    pub reason: Option<String>,
    /// `ABANDON`: shorter than the queue's `short_abandon`.
    pub short: bool,
}

impl Event {
    fn new(kind: EventKind, time: Instant) -> Event {
        Event {
            time,
            kind,
            queue: None,
            call: None,
            seat: None,
            wait: Duration::ZERO,
            position: None,
            talk: None,
            reason: None,
            short: false,
        }
    }
}

impl Event {
    /// The event as one line of the queue log (JSON, with its wall-clock
    /// `time` in milliseconds, and a newline): what `serve` writes and
    /// `simulate --log` writes, so one reader takes both.
    pub fn log_line(&self, time: chrono::DateTime<chrono::Utc>) -> String {
        let mut obj = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(obj)) => obj,
            _ => serde_json::Map::new(),
        };
        let time = time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        obj.insert("time".into(), serde_json::Value::String(time));
        let mut line = serde_json::Value::Object(obj).to_string();
        line.push('\n');
        line
    }
}

fn seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_millis() as f64 / 1000.0)
}

fn opt_seconds<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => seconds(d, s),
        None => s.serialize_none(),
    }
}

/// Calls that left a queue, by outcome, since the ACD started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallCounts {
    pub answered: u64,
    /// Answered within the queue's `service_level`.
    pub answered_within_target: u64,
    /// Abandons not shorter than `short_abandon`.
    pub abandoned: u64,
    pub short_abandoned: u64,
    pub timeout: u64,
    pub full: u64,
    pub empty: u64,
    pub exit_key: u64,
}

/// A queue now, for the metrics and the API.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueStats {
    /// Callers in the queue, waiting or being offered.
    pub waiting: usize,
    /// The head caller's wait.
    pub longest_wait: Option<Duration>,
    /// What a caller joining now is told.
    pub ewt: Option<Duration>,
    pub aht: Duration,
    pub seats_by_state: SeatCounts,
    pub calls: CallCounts,
}

/// A timer in the ACD's set: each seat and caller has at most one, its
/// earliest deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Timer {
    Seat(usize),
    Caller(CallId),
}

#[derive(Debug, Clone)]
struct Queue {
    config: QueueConfig,
    skill: usize,
    aht: Aht,
    /// The seat offered last (round robin).
    cursor: Option<usize>,
    calls: CallCounts,
}

impl Queue {
    fn timing(&self) -> Timing {
        Timing {
            expert_wait: self.config.expert_wait,
            widen_after: self.config.widen_after,
            max_wait: self.config.max_wait,
        }
    }

    fn next_announce(&self, now: Instant) -> Option<Instant> {
        let every = self.config.announce_every;
        (!every.is_zero()).then(|| now + every)
    }
}

/// How a caller enters a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Join,
    Overflow,
    /// Moved by a reload: the queue's limits do not apply.
    Moved,
}

/// The ACD: see the module documentation.
#[derive(Debug, Clone)]
pub struct Acd {
    queues: Vec<Queue>,
    queue_ix: FxHashMap<String, usize>,
    main: Option<usize>,
    /// Skill names interned: indexes into the per-skill structures.
    skills: FxHashMap<String, usize>,
    /// Configured seats in order, then seats retired by reloads.
    seats: Vec<Seat>,
    seat_ix: FxHashMap<String, usize>,
    /// Line → seats whose `expert_for` lists it.
    line_experts: FxHashMap<String, Vec<usize>>,
    callers: FxHashMap<CallId, Caller>,
    // Derived from the above, kept in step (see `rebuild`).
    waiting: Waiting,
    free: FreeSeats,
    /// Per skill: its seats by state.
    counts: Vec<SeatCounts>,
    /// Every seat by state (a seat of many skills counted once).
    totals: SeatCounts,
    /// Calls on seats, with their seats (sorted).
    on_call: FxHashMap<CallId, Vec<usize>>,
    timers: BTreeSet<(Instant, Timer)>,
    seq: u64,
    now: Instant,
}

impl Acd {
    /// An ACD with every seat logged out and no caller.
    pub fn new(config: Config, now: Instant) -> Acd {
        let mut skills = FxHashMap::default();
        let mut intern = |name: &str| {
            let next = skills.len();
            *skills.entry(name.to_string()).or_insert(next)
        };
        let mut queues = Vec::new();
        let mut queue_ix = FxHashMap::default();
        for qc in config.queues {
            if queue_ix.contains_key(&qc.id) {
                continue;
            }
            queue_ix.insert(qc.id.clone(), queues.len());
            queues.push(Queue {
                skill: intern(&qc.skill),
                aht: Aht::seeded(qc.default_handle),
                cursor: None,
                calls: CallCounts::default(),
                config: qc,
            });
        }
        let mut seats = Vec::new();
        let mut seat_ix = FxHashMap::default();
        let mut line_experts: FxHashMap<String, Vec<usize>> = FxHashMap::default();
        for sc in config.seats {
            if seat_ix.contains_key(&sc.id) {
                continue;
            }
            let ix = seats.len();
            let mut own: Vec<usize> = sc.skills.iter().map(|k| intern(k)).collect();
            own.sort_unstable();
            own.dedup();
            for line in sc.expert_for {
                line_experts.entry(line).or_default().push(ix);
            }
            seat_ix.insert(sc.id.clone(), ix);
            seats.push(Seat::new(sc.id, own, now));
        }
        let main = queue_ix.get(&config.main_queue).copied();
        let mut acd = Acd {
            queues,
            queue_ix,
            main,
            skills,
            seats,
            seat_ix,
            line_experts,
            callers: FxHashMap::default(),
            waiting: Waiting::default(),
            free: FreeSeats::default(),
            counts: Vec::new(),
            totals: SeatCounts::default(),
            on_call: FxHashMap::default(),
            timers: BTreeSet::new(),
            seq: 0,
            now,
        };
        acd.rebuild();
        acd
    }

    // ---- inputs ----

    /// A caller asks for a queue: `Queued` (and offers, or an announcement),
    /// or `Overflowed` when the queue is empty or full.
    #[must_use]
    pub fn join(&mut self, call: CallId, join: Join, now: Instant) -> Vec<Action> {
        self.input(now, |acd, now, out| {
            let freed = match acd.detach(call) {
                Some((old, _)) => acd.retract(&old, now, out),
                None => Vec::new(),
            };
            acd.seq += 1;
            let experts = acd.experts_for(&join.line, &join.expert_seats);
            let caller = Caller {
                call,
                queue: 0,
                skill: join.skill.as_ref().and_then(|k| acd.skills.get(k).copied()),
                skill_name: join.skill,
                line: join.line,
                expert_names: join.expert_seats,
                experts,
                arrival: join.arrival,
                seq: acd.seq,
                entered: now,
                skill_from: None,
                general_from: join.arrival,
                give_up: None,
                tiers: Default::default(),
                offers: Vec::new(),
                told: None,
                next_announce: None,
                hops: 0,
                scheduled: None,
            };
            match acd.queue_ix.get(&join.queue).copied().or(acd.main) {
                Some(q) => acd.enter(caller, q, Entry::Join, now, out),
                None => out.push(Action::Overflowed {
                    call,
                    reason: ExitReason::Empty,
                    to: Overflow::Busy,
                }),
            }
            acd.dispatch_seats(&freed, now, out);
        })
    }

    /// A waiting caller hung up or chose to leave.
    #[must_use]
    pub fn leave(&mut self, call: CallId, how: Leave, now: Instant) -> Vec<Action> {
        self.input(now, |acd, now, out| match how {
            Leave::Abandoned => acd.abandon(call, now, out),
            Leave::ExitKey => acd.exit(call, ExitReason::ExitKey, now, out),
            Leave::Detached => acd.step_out(call, None, now, out),
            Leave::Operator => acd.step_out(call, Some("operator"), now, out),
        })
    }

    /// A digit from a waiting caller: its queue's exit key leaves the queue
    /// for its `exit_action`; other digits do nothing.
    #[must_use]
    pub fn key(&mut self, call: CallId, digit: char, now: Instant) -> Vec<Action> {
        self.input(now, |acd, now, out| {
            let Some(c) = acd.callers.get(&call) else {
                return;
            };
            if acd.queues[c.queue].config.exit_key == Some(digit) {
                acd.exit(call, ExitReason::ExitKey, now, out);
            }
        })
    }

    /// The seat answered the offer: `Connected` if the offer still stands
    /// (other ring-all seats are retracted), else `Retract` (drop the leg).
    #[must_use]
    pub fn offer_answered(&mut self, call: CallId, seat: &str, now: Instant) -> Vec<Action> {
        self.input(now, |acd, now, out| {
            let Some(&s) = acd.seat_ix.get(seat) else {
                return;
            };
            // A late answer: the offer was withdrawn (it rang out, the seat
            // logged out) as the phone picked up. The call has bridged it
            // already, so while the caller still waits, the answer stands:
            // a seat ringing for another caller gives that offer up, and a
            // seat busy with a call of its own cannot take it.
            let late = acd.seats[s].ringing() != Some(call);
            let other = acd.seats[s].ringing().filter(|c| *c != call);
            if late
                && (!acd.callers.contains_key(&call)
                    || matches!(acd.seats[s].state, State::OnCall { .. }))
            {
                out.push(Action::Retract {
                    call,
                    seat: seat.to_string(),
                });
                return;
            }
            if late && acd.seats[s].after == Some(After::Pause("no_answer".into())) {
                // The agent is there after all: no autopause.
                acd.seats[s].after = None;
            }
            let Some((caller, ahead)) = acd.detach(call) else {
                return;
            };
            let q = &mut acd.queues[caller.queue];
            let wait = now.saturating_duration_since(caller.arrival);
            q.calls.answered += 1;
            if wait <= q.config.service_level {
                q.calls.answered_within_target += 1;
            }
            let placed = Placed {
                queue: q.config.id.clone(),
                connected: now,
                wait,
                position: ahead + 1,
                wrap_up: q.config.wrap_up,
            };
            out.push(Action::Log(Event {
                queue: Some(placed.queue.clone()),
                call: Some(call),
                seat: Some(seat.to_string()),
                wait,
                position: Some(placed.position),
                ..Event::new(EventKind::Connect, now)
            }));
            out.push(Action::Connected {
                call,
                seat: seat.to_string(),
            });
            let seat = &mut acd.seats[s];
            seat.missed = 0;
            seat.calls += 1;
            acd.set_seat(
                s,
                State::OnCall {
                    call,
                    placed: Some(placed),
                },
            );
            acd.hold(call, s);
            if let Some(other) = other {
                out.push(Action::Retract {
                    call: other,
                    seat: acd.seats[s].id.clone(),
                });
                acd.offer_gone(s, other, now, out);
            }
            let losers: Vec<usize> = caller.offers.iter().copied().filter(|&o| o != s).collect();
            for &o in &losers {
                out.push(Action::Retract {
                    call,
                    seat: acd.seats[o].id.clone(),
                });
                acd.release_seat(o, now, false);
            }
            acd.dispatch_seats(&losers, now, out);
        })
    }

    /// The call reports that an offer failed (the seat declined or did not
    /// answer before the ACD's ring timeout).
    #[must_use]
    pub fn offer_failed(
        &mut self,
        call: CallId,
        seat: &str,
        failure: OfferFailure,
        now: Instant,
    ) -> Vec<Action> {
        self.input(now, |acd, now, out| {
            if let Some(&s) = acd.seat_ix.get(seat)
                && acd.seats[s].ringing() == Some(call)
            {
                acd.missed(s, call, failure, false, now, out);
            }
        })
    }

    /// A connected call is over: the seat wraps up (the queue's `wrap_up`)
    /// and the queue's handle time learns from it.
    #[must_use]
    pub fn call_ended(&mut self, call: CallId, by: Party, now: Instant) -> Vec<Action> {
        self.input(now, |acd, now, out| {
            for s in acd.on_call.get(&call).cloned().unwrap_or_default() {
                if matches!(
                    acd.seats[s].state,
                    State::OnCall {
                        placed: Some(_),
                        ..
                    }
                ) {
                    acd.end_placed(s, call, by, now, out);
                }
            }
        })
    }

    /// The seat's phone registered.
    #[must_use]
    pub fn seat_login(&mut self, seat: &str, now: Instant) -> Vec<Action> {
        self.seat_input(seat, now, |acd, s, now, out| {
            let seat = &mut acd.seats[s];
            match seat.state {
                State::LoggedOut if !seat.retired => {
                    seat.missed = 0;
                    acd.release_seat(s, now, true);
                    acd.dispatch_seat(s, now, out);
                }
                // Registered again before the call that was to end in a
                // logout ended.
                State::Ringing { .. } | State::OnCall { .. }
                    if seat.after == Some(After::Logout) =>
                {
                    seat.after = None;
                }
                _ => {}
            }
        })
    }

    /// The seat's registration ended (expired or removed).
    #[must_use]
    pub fn seat_logout(&mut self, seat: &str, now: Instant) -> Vec<Action> {
        self.seat_input(seat, now, |acd, s, now, out| {
            let seat = &mut acd.seats[s];
            match seat.state {
                State::LoggedOut => {}
                State::Available | State::WrapUp { .. } | State::Paused { .. } => {
                    seat.after = None;
                    acd.set_seat(s, State::LoggedOut);
                }
                State::Ringing { call, .. } => {
                    seat.after = Some(After::Logout);
                    out.push(Action::Retract {
                        call,
                        seat: seat.id.clone(),
                    });
                    acd.release_seat(s, now, false);
                    acd.offer_gone(s, call, now, out);
                }
                State::OnCall { .. } => seat.after = Some(After::Logout),
            }
        })
    }

    /// The seat pauses (no offers) for `reason`: at once when idle or in
    /// wrap-up, when its call or offer ends otherwise.
    #[must_use]
    pub fn pause(&mut self, seat: &str, reason: &str, now: Instant) -> Vec<Action> {
        self.seat_input(seat, now, |acd, s, now, out| {
            let seat = &mut acd.seats[s];
            match seat.state {
                State::LoggedOut => return,
                State::Available | State::WrapUp { .. } | State::Paused { .. } => acd.set_seat(
                    s,
                    State::Paused {
                        reason: reason.to_string(),
                    },
                ),
                State::Ringing { .. } | State::OnCall { .. } => {
                    seat.after = Some(After::Pause(reason.to_string()));
                }
            }
            acd.log_seat(EventKind::Pause, s, Some(reason), now, out);
        })
    }

    /// The seat takes calls again (or will not pause after its call).
    #[must_use]
    pub fn resume(&mut self, seat: &str, now: Instant) -> Vec<Action> {
        self.seat_input(seat, now, |acd, s, now, out| {
            let seat = &mut acd.seats[s];
            match (&seat.state, &seat.after) {
                (State::Paused { .. }, _) => {
                    seat.missed = 0;
                    acd.log_seat(EventKind::Unpause, s, None, now, out);
                    acd.release_seat(s, now, true);
                    acd.dispatch_seat(s, now, out);
                }
                (State::Ringing { .. } | State::OnCall { .. }, Some(After::Pause(_))) => {
                    seat.after = None;
                    acd.log_seat(EventKind::Unpause, s, None, now, out);
                }
                _ => {}
            }
        })
    }

    /// The seat is on a call the ACD did not place (seat to seat, its own
    /// outgoing call): no offers until [`Acd::seat_free`], and no wrap-up.
    #[must_use]
    pub fn seat_busy(&mut self, seat: &str, call: CallId, now: Instant) -> Vec<Action> {
        self.seat_input(seat, now, |acd, s, now, out| {
            let seat = &mut acd.seats[s];
            let own = State::OnCall { call, placed: None };
            match &seat.state {
                State::LoggedOut | State::OnCall { .. } => return,
                State::Available | State::WrapUp { .. } => acd.set_seat(s, own),
                State::Paused { reason } => {
                    seat.after = Some(After::Pause(reason.clone()));
                    acd.set_seat(s, own);
                }
                &State::Ringing { call: offered, .. } => {
                    out.push(Action::Retract {
                        call: offered,
                        seat: seat.id.clone(),
                    });
                    acd.set_seat(s, own);
                    acd.offer_gone(s, offered, now, out);
                }
            }
            acd.hold(call, s);
        })
    }

    /// The seat's own call (see [`Acd::seat_busy`]) is over.
    #[must_use]
    pub fn seat_free(&mut self, seat: &str, call: CallId, now: Instant) -> Vec<Action> {
        self.seat_input(seat, now, |acd, s, now, out| {
            if acd.seats[s].state == (State::OnCall { call, placed: None }) {
                acd.end_own(s, call, now, out);
            }
        })
    }

    /// Releases everything `call` holds, for the call task's drop guard:
    /// its place (as an abandon), its offers, its seats (as calls ended by
    /// the caller). Does nothing for a call that holds nothing.
    #[must_use]
    pub fn release_call(&mut self, call: CallId, now: Instant) -> Vec<Action> {
        self.input(now, |acd, now, out| {
            acd.abandon(call, now, out);
            for s in acd.on_call.get(&call).cloned().unwrap_or_default() {
                match acd.seats[s].state {
                    State::OnCall {
                        placed: Some(_), ..
                    } => acd.end_placed(s, call, Party::Caller, now, out),
                    _ => acd.end_own(s, call, now, out),
                }
            }
        })
    }

    /// A reload: the new configuration applies at once. Waiting callers
    /// keep their place; those of a removed queue move to the main queue
    /// (`Moved`); a removed seat finishes its call or offer, then is gone;
    /// a seat that lost a skill keeps its call but is no longer offered
    /// those callers. Seats added are logged out until they log in (the
    /// daemon logs in those registered: `seat_login` is idempotent).
    #[must_use]
    pub fn reconfigure(&mut self, config: Config, now: Instant) -> Vec<Action> {
        self.input(now, |acd, now, out| acd.reload(config, now, out))
    }

    /// Runs the timers due by `now`; call it at [`Acd::deadline`].
    #[must_use]
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        self.input(now, |_, _, _| {})
    }

    /// When [`Acd::on_timer`] must next be called: a ring timeout, a wrap-up
    /// end, a caller reaching a tier, a `max_wait`, an announcement.
    pub fn deadline(&self) -> Option<Instant> {
        self.timers.first().map(|&(t, _)| t)
    }

    // ---- read side ----

    pub fn queue_stats(&self, queue: &str, now: Instant) -> Option<QueueStats> {
        let &q = self.queue_ix.get(queue)?;
        let queue = &self.queues[q];
        let waiting = self.waiting.len(q);
        Some(QueueStats {
            waiting,
            longest_wait: self
                .waiting
                .head(q)
                .map(|arrival| now.saturating_duration_since(arrival)),
            ewt: self.ewt(q, waiting),
            aht: queue.aht.get(),
            seats_by_state: self.counts[queue.skill],
            calls: queue.calls,
        })
    }

    /// Every seat by state, each counted once whatever its skills (the
    /// simulator's occupancy).
    pub fn seat_totals(&self) -> SeatCounts {
        self.totals
    }

    /// A configured seat's state (or a removed one's while it finishes).
    pub fn seat_state(&self, seat: &str) -> Option<SeatState> {
        let seat = &self.seats[*self.seat_ix.get(seat)?];
        (!seat.retired || seat.kind() != Kind::LoggedOut).then(|| seat.view())
    }

    /// Every seat with its state, configured ones in order first.
    pub fn seats(&self) -> impl Iterator<Item = (&str, SeatState)> + '_ {
        self.seats
            .iter()
            .filter(|s| !s.retired || s.kind() != Kind::LoggedOut)
            .map(|s| (s.id.as_str(), s.view()))
    }

    /// The queues' ids, in configuration order.
    pub fn queues(&self) -> impl Iterator<Item = &str> + '_ {
        self.queues.iter().map(|q| q.config.id.as_str())
    }

    /// A queue's callers in order, with their original arrival.
    pub fn waiting(&self, queue: &str) -> impl Iterator<Item = (CallId, Instant)> + '_ {
        self.queue_ix
            .get(queue)
            .into_iter()
            .flat_map(|&q| self.waiting.line(q))
    }

    // ---- the machinery ----

    /// Every input: the timers due by `now` first, then the input, then
    /// the timers it made due at once (a zero `max_wait`).
    fn input(
        &mut self,
        now: Instant,
        f: impl FnOnce(&mut Acd, Instant, &mut Vec<Action>),
    ) -> Vec<Action> {
        // Time never runs backwards inside the ACD.
        let now = now.max(self.now);
        self.now = now;
        let mut out = Vec::new();
        self.fire_timers(now, &mut out);
        f(self, now, &mut out);
        self.fire_timers(now, &mut out);
        out
    }

    fn seat_input(
        &mut self,
        seat: &str,
        now: Instant,
        f: impl FnOnce(&mut Acd, usize, Instant, &mut Vec<Action>),
    ) -> Vec<Action> {
        self.input(now, |acd, now, out| {
            if let Some(&s) = acd.seat_ix.get(seat) {
                f(acd, s, now, out);
            }
        })
    }

    fn fire_timers(&mut self, now: Instant, out: &mut Vec<Action>) {
        while let Some(&(at, timer)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            match timer {
                Timer::Seat(s) => {
                    self.seats[s].scheduled = None;
                    self.seat_timer(s, now, out);
                    self.schedule_seat(s);
                }
                Timer::Caller(call) => {
                    if let Some(c) = self.callers.get_mut(&call) {
                        c.scheduled = None;
                    }
                    self.caller_timer(call, now, out);
                    self.schedule_caller(call);
                }
            }
        }
    }

    fn schedule_seat(&mut self, s: usize) {
        let seat = &mut self.seats[s];
        let next = seat.deadline();
        reschedule(&mut self.timers, &mut seat.scheduled, Timer::Seat(s), next);
    }

    fn schedule_caller(&mut self, call: CallId) {
        if let Some(c) = self.callers.get_mut(&call) {
            let next = c.deadline();
            reschedule(
                &mut self.timers,
                &mut c.scheduled,
                Timer::Caller(call),
                next,
            );
        }
    }

    fn ewt(&self, q: usize, ahead: usize) -> Option<Duration> {
        let queue = &self.queues[q];
        estimate::ewt(ahead, queue.aht.get(), self.counts[queue.skill].staffed())
    }

    fn reload(&mut self, config: Config, now: Instant, out: &mut Vec<Action>) {
        let old = std::mem::replace(self, Acd::new(config, now));
        self.seq = old.seq;
        self.now = old.now;
        // Seats carry their state by id; a removed seat busy with a call or
        // an offer stays, retired, until it ends.
        let mut seat_map = vec![None; old.seats.len()];
        for (o, seat) in old.seats.into_iter().enumerate() {
            if let Some(&n) = self.seat_ix.get(&seat.id) {
                let new = &mut self.seats[n];
                new.state = seat.state;
                new.idle_since = seat.idle_since;
                new.missed = seat.missed;
                new.calls = seat.calls;
                new.after = seat.after;
                seat_map[o] = Some(n);
            } else if matches!(seat.kind(), Kind::Ringing | Kind::OnCall) {
                let n = self.seats.len();
                self.seat_ix.insert(seat.id.clone(), n);
                self.seats.push(Seat {
                    skills: Vec::new(),
                    retired: true,
                    scheduled: None,
                    ..seat
                });
                seat_map[o] = Some(n);
            }
        }
        for queue in &mut self.queues {
            let Some(&o) = old.queue_ix.get(&queue.config.id) else {
                continue;
            };
            let was = &old.queues[o];
            if !was.aht.is_seed() {
                queue.aht = was.aht;
            }
            queue.calls = was.calls;
            queue.cursor = was.cursor.and_then(|c| seat_map[c]);
        }
        // Callers keep their place; those of removed queues move after the
        // others are in.
        let mut callers: Vec<Caller> = old.callers.into_values().collect();
        callers.sort_by_key(Caller::key);
        let mut moved = Vec::new();
        for mut c in callers {
            c.skill = c
                .skill_name
                .as_ref()
                .and_then(|k| self.skills.get(k).copied());
            c.experts = self.experts_for(&c.line, &c.expert_names);
            c.offers = c.offers.iter().filter_map(|&s| seat_map[s]).collect();
            c.scheduled = None;
            let from = &old.queues[c.queue].config.id;
            match self.queue_ix.get(from) {
                Some(&q) => {
                    let queue = &self.queues[q];
                    c.queue = q;
                    c.time(&queue.timing(), now);
                    c.next_announce = match (c.next_announce, queue.next_announce(now)) {
                        (_, None) => None,
                        (kept, Some(fresh)) => Some(kept.unwrap_or(fresh)),
                    };
                    self.callers.insert(c.call, c);
                }
                None => moved.push((c, from.clone())),
            }
        }
        self.rebuild();
        for (c, from) in moved {
            let call = c.call;
            match self.main {
                Some(m) => {
                    out.push(Action::Moved {
                        call,
                        from,
                        to: self.queues[m].config.id.clone(),
                    });
                    self.enter(c, m, Entry::Moved, now, out);
                }
                None => {
                    let freed = self.retract(&c, now, out);
                    out.push(Action::Overflowed {
                        call,
                        reason: ExitReason::Empty,
                        to: Overflow::Busy,
                    });
                    self.dispatch_seats(&freed, now, out);
                }
            }
        }
        // What the new table makes possible, earliest caller first.
        let mut order: Vec<_> = self.callers.values().map(|c| (c.key(), c.call)).collect();
        order.sort_unstable();
        for (_, call) in order {
            self.dispatch_caller(call, None, now, out);
        }
    }

    /// Recomputes every derived structure from the seats and callers.
    fn rebuild(&mut self) {
        let skills = self.skills.len();
        self.waiting = Waiting::new(self.queues.len(), skills, self.seats.len());
        self.free = FreeSeats::new(skills);
        self.counts = vec![SeatCounts::default(); skills];
        self.totals = SeatCounts::default();
        self.on_call.clear();
        self.timers.clear();
        for s in 0..self.seats.len() {
            let seat = &mut self.seats[s];
            seat.scheduled = None;
            for &k in &seat.skills {
                self.counts[k].add(seat.kind(), 1);
            }
            self.totals.add(seat.kind(), 1);
            if seat.is_available() {
                self.free.insert(s, seat);
            }
            if let State::OnCall { call, .. } = seat.state {
                self.on_call.entry(call).or_default().push(s);
            }
            self.schedule_seat(s);
        }
        for (&call, c) in &mut self.callers {
            let skill = self.queues[c.queue].skill;
            c.scheduled = None;
            self.waiting.enter(c);
            if c.is_waiting() {
                self.waiting.index(c, skill);
            }
            let next = c.deadline();
            reschedule(
                &mut self.timers,
                &mut c.scheduled,
                Timer::Caller(call),
                next,
            );
        }
    }
}

/// Moves a seat's or caller's entry in the timer set to `next`.
fn reschedule(
    timers: &mut BTreeSet<(Instant, Timer)>,
    scheduled: &mut Option<Instant>,
    timer: Timer,
    next: Option<Instant>,
) {
    if *scheduled == next {
        return;
    }
    if let Some(t) = scheduled.take() {
        timers.remove(&(t, timer));
    }
    if let Some(t) = next {
        timers.insert((t, timer));
    }
    *scheduled = next;
}

#[cfg(test)]
mod tests {
    use super::test_util::*;

    #[test]
    fn a_caller_joining_with_the_seats_busy_is_told_position_and_wait() {
        let mut r = one_seat();
        r.occupy(&["s1"]);
        r.join(1, "main");
        let out = r.join(2, "main");
        assert_eq!(kinds(&out), ["ENTERQUEUE"]);
        assert_eq!(
            out[1],
            Action::Queued {
                call: CallId(2),
                queue: "main".into(),
                position: 2,
                ewt: Some(secs(360)), // 2 · 180 s / 1 seat
            }
        );
        assert_eq!(
            announces(&out),
            [(
                2,
                vec![
                    "queue_position".into(),
                    "num_1".into(),
                    "queue_callers".into(),
                    "estimated_wait".into(),
                    "num_6".into(),
                    "minutes".into(),
                ]
            )]
        );
    }

    #[test]
    fn the_announcement_sequence_repeats_the_position_only_when_it_changed() {
        let mut r = one_seat();
        r.occupy(&["s1"]);
        for c in 1..=3 {
            r.join(c, "main");
        }
        // At 45 s: caller 3's position is unchanged, it hears the wait.
        let out = r.at_run(45);
        let heard: Vec<_> = announces(&out).into_iter().filter(|a| a.0 == 3).collect();
        assert_eq!(
            heard,
            [(
                3,
                vec!["estimated_wait".into(), "num_9".into(), "minutes".into()]
            )]
        );
        // Caller 1 is answered at 50 s: caller 3 moves up and is told so.
        r.at(50);
        r.free("s1", 900);
        r.answer(1, "s1");
        let out = r.at_run(90);
        let heard: Vec<_> = announces(&out).into_iter().filter(|a| a.0 == 3).collect();
        assert_eq!(
            heard[0].1[..3],
            ["queue_position", "num_1", "queue_callers"]
        );
        // Caller 2 abandons: caller 3 is next, and hears it once.
        r.at(100);
        r.leave(2, Leave::Abandoned);
        let out = r.at_run(135);
        assert_eq!(announces(&out)[0].1[0], "you_are_next");
        let out = r.at_run(180);
        assert_eq!(announces(&out)[0].1[0], "estimated_wait");
    }

    #[test]
    fn a_caller_offered_at_once_hears_no_position() {
        let mut r = one_seat();
        r.login("s1");
        let out = r.join(1, "main");
        assert_eq!(queued(&out), [(1, 1)]);
        assert!(announces(&out).is_empty());
        assert_eq!(offers(&out), [(1, "s1".to_string())]);
    }

    #[test]
    fn no_estimate_without_a_staffed_seat() {
        let mut r = one_seat();
        r.login("s1");
        r.pause("s1", "lunch");
        let out = r.join(1, "main");
        assert!(matches!(out[1], Action::Queued { ewt: None, .. }));
        assert_eq!(announces(&out), [(1, vec!["you_are_next".into()])]);
        assert!(announces(&r.at_run(45)).is_empty(), "nothing new to say");
    }

    #[test]
    fn ewt_follows_known_handle_times() {
        let mut q = queue("main", "general");
        q.wrap_up = secs(10);
        q.default_handle = secs(100);
        let mut r = Run::new(config(
            vec![q],
            vec![seat("s1", &["general"]), seat("s2", &["general"])],
        ));
        r.login("s1");
        r.login("s2");
        // Two calls of 50 s and 110 s talk: handle times 60 s and 120 s.
        r.join(1, "main");
        r.join(2, "main");
        r.answer(1, "s1");
        r.answer(2, "s2");
        r.at(50);
        r.end(1);
        r.at(110);
        r.end_by(2, Party::Seat);
        // AHT = (100 + 60 + 120) / 3 ≈ 93.3 s.
        let stats = r.acd.queue_stats("main", r.now).unwrap();
        assert_eq!(stats.aht.as_millis(), 93_333);
        // A caller joining now, nobody ahead, two staffed seats: AHT / 2.
        assert_eq!(stats.ewt.unwrap().as_millis(), 46_666);
        // Three waiting ahead: 4 · AHT / 2.
        r.busy("s1", 900);
        r.busy("s2", 901);
        for c in 3..=5 {
            r.join(c, "main");
        }
        let out = r.join(6, "main");
        let Action::Queued {
            position: 4,
            ewt: Some(ewt),
            ..
        } = out[1]
        else {
            panic!("{out:?}");
        };
        assert_eq!(ewt.as_millis(), 186_666);
    }

    #[test]
    fn call_end_logs_who_hung_up_with_the_talk_time() {
        let mut r = one_seat();
        r.login("s1");
        r.join(1, "main");
        r.at(4);
        r.answer(1, "s1");
        r.at(64);
        let [e] = events(&r.end_by(1, Party::Seat)).try_into().unwrap();
        assert_eq!(e.kind, EventKind::CompleteAgent);
        assert_eq!(
            (e.wait, e.talk, e.position),
            (secs(4), Some(secs(60)), Some(1))
        );
        assert_eq!(e.seat.as_deref(), Some("s1"));
    }

    #[test]
    fn service_level_counts_answers_within_target() {
        let mut r = seats(2);
        r.login("s1");
        r.login("s2");
        r.join(1, "main");
        r.join(2, "main");
        r.at(19);
        r.answer(1, "s1");
        r.at_ms(19_500);
        r.fail(2, "s2", OfferFailure::Rejected);
        // s2 rests 5 s, is offered caller 2 again and answers past 20 s.
        r.at_run(25);
        r.answer(2, "s2");
        let calls = r.acd.queue_stats("main", r.now).unwrap().calls;
        assert_eq!((calls.answered, calls.answered_within_target), (2, 1));
    }

    #[test]
    fn stats_count_each_seat_once_per_queue_it_serves() {
        let mut r = Run::new(config(
            vec![queue("main", "general"), queue("tax", "tax")],
            vec![
                seat("s1", &["general", "tax"]),
                seat("s2", &["general"]),
                seat("s3", &["tax"]),
            ],
        ));
        r.login("s1");
        r.login("s2");
        r.pause("s2", "lunch");
        r.join(1, "tax");
        let main = r.acd.queue_stats("main", r.now).unwrap().seats_by_state;
        let tax = r.acd.queue_stats("tax", r.now).unwrap().seats_by_state;
        assert_eq!((main.ringing, main.paused, main.logged_out), (1, 1, 0));
        assert_eq!((tax.ringing, tax.logged_out, tax.available), (1, 1, 0));
        assert_eq!(main.staffed(), 1);
    }

    #[test]
    fn longest_wait_is_the_head_callers() {
        let mut r = one_seat();
        r.occupy(&["s1"]);
        r.at(3);
        r.join(1, "main");
        r.at(10);
        r.join(2, "main");
        let stats = r.acd.queue_stats("main", r.base + secs(33)).unwrap();
        assert_eq!((stats.waiting, stats.longest_wait), (2, Some(secs(30))));
        assert_eq!(r.acd.queue_stats("nowhere", r.now), None);
    }

    #[test]
    fn events_serialise_to_one_json_object_without_time() {
        let mut r = one_seat();
        r.occupy(&["s1"]);
        r.join(7, "main");
        r.at_ms(12_345);
        let [e] = events(&r.leave(7, Leave::Abandoned)).try_into().unwrap();
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({
                "event": "ABANDON", "queue": "main", "call": 7, "seat": null,
                "wait": 12.345, "position": 1, "talk": null, "reason": null, "short": false
            })
        );
    }

    #[test]
    fn event_names_are_asterisks() {
        let names: Vec<_> = EventKind::ALL.map(EventKind::as_str).into();
        assert_eq!(
            names,
            [
                "ENTERQUEUE",
                "CONNECT",
                "ABANDON",
                "EXITWITHKEY",
                "EXITWITHTIMEOUT",
                "EXITEMPTY",
                "RINGNOANSWER",
                "COMPLETECALLER",
                "COMPLETEAGENT",
                "PAUSE",
                "UNPAUSE",
                "FULL"
            ]
        );
    }

    #[test]
    fn release_call_frees_whatever_the_call_holds() {
        let mut r = seats(2);
        r.login("s1");
        r.login("s2");
        // A connected call: its seat wraps up as after a hang-up.
        r.join(1, "main");
        r.answer(1, "s1");
        let out = r.release(1);
        assert_eq!(kinds(&out), ["COMPLETECALLER"]);
        assert_eq!(r.acd.seat_state("s1"), Some(SeatState::WrapUp));
        // A ringing caller: the offer is retracted, the place given up.
        r.join(2, "main");
        let out = r.release(2);
        assert_eq!(retracts(&out), [(2, "s2".to_string())]);
        assert_eq!(r.acd.seat_state("s2"), Some(SeatState::Available));
        assert_eq!(r.acd.queue_stats("main", r.now).unwrap().waiting, 0);
        // A seat's own call.
        r.busy("s2", 3);
        r.release(3);
        assert_eq!(r.acd.seat_state("s2"), Some(SeatState::Available));
        // Twice, or for an unknown call: nothing.
        assert!(r.release(1).is_empty());
        assert!(r.release(99).is_empty());
    }

    #[test]
    fn reconfigure_keeps_every_caller_in_its_place() {
        let mut r = one_seat();
        r.occupy(&["s1"]);
        for c in 1..=4 {
            r.at(c);
            r.join(c, "main");
        }
        let mut cfg = r.acd_config();
        cfg.queues[0].strategy = Strategy::RingAll;
        cfg.seats.push(seat("s2", &["general"]));
        for _ in 0..3 {
            assert!(r.reconfigure(cfg.clone()).is_empty());
        }
        let line: Vec<u64> = r.acd.waiting("main").map(|c| c.0.0).collect();
        assert_eq!(line, [1, 2, 3, 4]);
        // The new seat logs in and takes the head caller.
        assert_eq!(offers(&r.login("s2")), [(1, "s2".to_string())]);
    }

    #[test]
    fn reconfigure_applies_at_once_to_waiting_callers() {
        let mut e = seat("e", &[]);
        e.expert_for = vec!["12348".into()];
        let mut r = Run::new(config(
            vec![queue("main", "general")],
            vec![e, seat("g", &["general"])],
        ));
        r.login("e");
        r.login("g");
        r.busy("e", 900);
        r.join_line(1, "main", "12348", Some("law"));
        // A shorter widening reaches the caller at once: it is offered g.
        r.at(20);
        let mut cfg = r.acd_config();
        cfg.queues[0].widen_after = secs(15);
        assert_eq!(offers(&r.reconfigure(cfg)), [(1, "g".to_string())]);
    }

    #[test]
    fn a_removed_queue_hands_its_callers_to_the_main_queue() {
        let mut r = Run::new(config(
            vec![queue("main", "general"), queue("tax", "tax")],
            vec![seat("s1", &["general"]), seat("s2", &["tax"])],
        ));
        r.occupy(&["s1", "s2"]);
        r.join(1, "tax");
        r.at(5);
        r.join(2, "main");
        r.at(10);
        let mut cfg = r.acd_config();
        cfg.queues.remove(1);
        let out = r.reconfigure(cfg);
        assert_eq!(moved(&out), [(1, "tax".into(), "main".into())]);
        // Ahead of caller 2, who arrived later.
        assert_eq!(queued(&out), [(1, 1)]);
        assert_eq!(announces(&out)[0].1[..2], ["queue_moved", "you_are_next"]);
        assert_eq!(r.acd.queues().collect::<Vec<_>>(), ["main"]);
        let line: Vec<u64> = r.acd.waiting("main").map(|c| c.0.0).collect();
        assert_eq!(line, [1, 2]);
    }

    #[test]
    fn a_seat_losing_a_skill_mid_call_finishes_it_then_serves_only_its_skills() {
        let mut r = Run::new(config(
            vec![queue("main", "general"), queue("tax", "tax")],
            vec![seat("s1", &["general", "tax"])],
        ));
        r.login("s1");
        r.join(1, "tax");
        r.answer(1, "s1");
        let mut cfg = r.acd_config();
        cfg.seats[0].skills = vec!["general".into()];
        r.reconfigure(cfg);
        assert_eq!(
            r.acd.seat_state("s1"),
            Some(SeatState::OnCall { call: CallId(1) })
        );
        r.join(2, "tax");
        r.join(3, "main");
        r.at(60);
        // The call ends with tax's wrap-up, and its handle time counts for tax.
        assert_eq!(kinds(&r.end(1)), ["COMPLETECALLER"]);
        assert!(!r.acd.queue_stats("tax", r.now).unwrap().aht.is_zero());
        let out = r.at_run(70);
        assert_eq!(offers(&out), [(3, "s1".to_string())], "not the tax caller");
    }

    #[test]
    fn a_removed_seat_finishes_its_call_then_is_gone() {
        let mut r = seats(2);
        r.login("s1");
        r.join(1, "main");
        r.answer(1, "s1");
        let mut cfg = r.acd_config();
        cfg.seats.remove(0);
        r.reconfigure(cfg);
        assert_eq!(
            r.acd.seat_state("s1"),
            Some(SeatState::OnCall { call: CallId(1) })
        );
        assert_eq!(
            r.acd
                .queue_stats("main", r.now)
                .unwrap()
                .seats_by_state
                .on_call,
            0
        );
        r.login("s2");
        r.join(2, "main");
        r.answer(2, "s2");
        r.join(3, "main");
        r.at(30);
        let out = r.end(1);
        assert_eq!(kinds(&out), ["COMPLETECALLER"]);
        assert!(offers(&out).is_empty());
        assert_eq!(r.acd.seat_state("s1"), None);
        assert_eq!(r.acd.seats().map(|s| s.0).collect::<Vec<_>>(), ["s2"]);
    }

    #[test]
    fn a_removed_seat_ringing_keeps_ringing_and_may_answer() {
        let mut r = one_seat();
        let mut cfg = r.acd_config();
        cfg.seats.push(seat("s2", &["general"]));
        r.reconfigure(cfg.clone());
        r.login("s1");
        r.join(1, "main");
        cfg.seats.remove(0);
        r.reconfigure(cfg);
        let out = r.answer(1, "s1");
        assert_eq!(connected(&out), [(1, "s1".to_string())]);
    }

    #[test]
    fn a_zero_ring_rings_until_the_seat_answers_or_fails() {
        let mut q = queue("main", "general");
        q.ring = Duration::ZERO;
        let mut r = Run::new(config(vec![q], vec![seat("s1", &["general"])]));
        r.login("s1");
        r.join(1, "main");
        assert!(retracts(&r.at_run(3600)).is_empty());
        assert_eq!(
            r.acd.seat_state("s1"),
            Some(SeatState::Ringing { call: CallId(1) })
        );
    }

    #[test]
    fn a_zero_max_wait_overflows_at_once_and_zero_announce_every_announces_once() {
        let mut q = queue("main", "general");
        q.announce_every = Duration::ZERO;
        let mut r = Run::new(config(vec![q.clone()], vec![seat("s1", &["general"])]));
        r.occupy(&["s1"]);
        assert_eq!(announces(&r.join(1, "main")).len(), 1);
        assert!(announces(&r.at_run(3600)).is_empty());
        q.max_wait = Some(Duration::ZERO);
        r.reconfigure(config(vec![q], vec![seat("s1", &["general"])]));
        let out = r.join(2, "main");
        assert_eq!(overflowed(&out), [(2, ExitReason::Timeout, Overflow::Busy)]);
    }

    #[test]
    fn the_deadline_is_always_after_the_last_input_and_never_stale() {
        // A busy day in miniature; `Run` checks the deadline after every
        // input and every timer, and that nothing fires a moment early.
        let mut q = queue("main", "general");
        q.max_wait = Some(secs(400));
        q.ring = secs(15);
        let mut r = Run::new(config(
            vec![q, queue("law", "law")],
            (1..=4)
                .map(|i| {
                    seat(
                        &format!("s{i}"),
                        if i % 2 == 0 {
                            &["general", "law"]
                        } else {
                            &["general"]
                        },
                    )
                })
                .collect(),
        ));
        for i in 1..=4 {
            r.login(&format!("s{i}"));
        }
        let mut t = 0;
        for c in 1..=40u64 {
            t += 7;
            r.at_run(t);
            if c % 3 == 0 {
                r.join_line(c, "law", "12348", Some("law"));
            } else {
                r.join(c, "main");
            }
            for (call, seat) in r
                .acd
                .seats()
                .filter_map(|(id, s)| match s {
                    SeatState::Ringing { call } => Some((call.0, id.to_string())),
                    _ => None,
                })
                .collect::<Vec<_>>()
            {
                match call % 4 {
                    0 => drop(r.fail(call, &seat, OfferFailure::NoAnswer)),
                    1 | 2 => drop(r.answer(call, &seat)),
                    _ => {}
                }
            }
            if c % 5 == 0 {
                r.leave(c - 1, Leave::Abandoned);
            }
            if c % 4 == 0 {
                let ended: Vec<u64> = r.acd.on_call.keys().map(|c| c.0).collect();
                for call in ended.into_iter().take(1) {
                    r.end(call);
                }
            }
        }
        // Everyone hangs up: once the wrap-ups are over no timer is left.
        let mut calls: Vec<u64> = r.acd.on_call.keys().map(|c| c.0).collect();
        calls.sort();
        for call in calls {
            r.end(call);
        }
        let mut waiting: Vec<u64> = r.acd.callers.keys().map(|c| c.0).collect();
        waiting.sort();
        for call in waiting {
            r.leave(call, Leave::Abandoned);
        }
        r.at_run(t + 3600);
        assert_eq!(r.acd.deadline(), None);
    }
}
