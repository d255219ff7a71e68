//! `hotline simulate`: a day of traffic through the real routing decision
//! and the real ACD, in simulated time.
//!
//! # Shape
//! A discrete-event driver over the same pure cores `serve` runs: each
//! arrival is routed by [`crate::routing::route`] at its simulated instant
//! and joins the queue [`QueuePlan::for_decision`] names (the daemon's own
//! choice); the [`Acd`] is fed joins, answers, hang-ups, logins and
//! logouts with `now` = a base instant plus the simulated offset, and what
//! it returns ([`Action`]s) is carried out here the way the call tasks
//! carry it out there: an offer is answered, a connected call talks its
//! drawn handle time and ends, a caller out of patience abandons. No
//! socket, no sleep, no clock: a day of 2,000 calls takes milliseconds,
//! and a seed gives the same run byte for byte.
//!
//! The next step is always the earliest of: the next arrival, the next
//! scheduled event (an answer, a hang-up, an abandon, a shift's start or
//! end, a leader session's end), and the ACD's own deadline (ring
//! timeouts, wrap-up ends, tiers, `max_wait`); ties go to the ACD, then
//! to events in the order they were scheduled, then to arrivals.
//!
//! # Choices
//! - Seats answer an offer after `answer_delay` (default at once; the
//!   command refuses one not shorter than every queue's ring time) and are
//!   always there: nobody rejects, so autopause never happens.
//! - The seat talks the call's drawn handle time, then wraps up for its
//!   queue's `wrap_up` (the ACD times that, as in `serve`); the drawn party
//!   ends it (`COMPLETEAGENT` or `COMPLETECALLER`).
//! - A leader session's caller (media anchored, as the shipped table)
//!   takes a ticket with the drawn share, else waits for the leader; at the
//!   session's end a caller still waiting takes a ticket (`at_session_end =
//!   "ticket"`) or moves to the main queue with its place.
//! - Emergency and sub-centre calls go to their trunks, which are up:
//!   counted, never queued. Rejected numbers are counted.
//! - The virtual-hold callback (`callback_offer_after_seconds`) is never
//!   taken; the overflow action `callback` ends the wait (counted).
//! - Callers waiting when the run ends are counted as such.

pub mod erlang;
pub mod plan;
pub mod report;
pub mod stats;
pub mod traffic;

use crate::acd::{self, Acd, Action, CallId, Join, Leave, Overflow, Party};
use crate::call::queue::QueuePlan;
use crate::routing::{self, Kind, Table};
use rustc_hash::{FxHashMap, FxHashSet};
use stats::Tally;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;
use std::time::{Duration, Instant};
pub use traffic::{Arrival, Day};

/// Half an hour: the unit of staffing and of the figures.
pub const INTERVAL: Duration = Duration::from_secs(1800);

/// What drives the run.
pub enum Model<'t> {
    /// The table's routing, queues and seats.
    Table { table: &'t Table, day: Day },
    /// One queue served by identical seats (`s1`, `s2`, …): the synthetic
    /// check against queueing theory, and the plan.
    Pool {
        wrap_up: Duration,
        /// Seats on duty per half hour; the last figure holds to the end.
        seats: Vec<usize>,
    },
}

/// The run's knobs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The run ends here; callers still waiting are counted as waiting.
    pub length: Duration,
    /// Answered within this counts toward the service level.
    pub service_level: Duration,
    /// How long a seat rings before it answers.
    pub answer_delay: Duration,
    /// How much longer a seat stays on a call it hands to a sub-centre.
    pub transfer_extra: Duration,
    /// Callers waiting and seats busy are sampled this often (the report).
    pub sample_every: Duration,
    /// Shifts (seat, from, until); `None`: every seat all run.
    pub roster: Option<Vec<(String, Duration, Duration)>>,
}

/// Callers waiting and seats busy at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at: Duration,
    pub waiting: u32,
    pub busy: u32,
    pub staffed: u32,
}

/// A call's end as the run saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still waiting (or not yet routed) when the run ended.
    Open,
    Answered,
    Abandoned,
    /// Left the queue for a busy tone (`full`, `empty`, `timeout`,
    /// `exit_key`), a callback, or a ticket at a session's end.
    Overflowed,
    /// A leader session's caller who chose a ticket at once.
    Ticket,
    Emergency,
    SubCentre,
    Rejected,
}

/// One call's facts.
#[derive(Debug, Clone)]
pub struct CallFacts {
    pub arrival: Duration,
    pub outcome: Outcome,
    /// Asked for a queue: its first queue (index into [`Run::queues`]).
    pub queue: Option<u16>,
    /// Offered a seat the moment it asked.
    pub at_once: bool,
    /// Answered, abandoned or overflowed: its wait from arrival.
    pub wait: Option<Duration>,
    /// The seat that answered.
    pub seat: Option<u32>,
    pub ticket: bool,
    pub callback: bool,
    pub transferred: bool,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Run {
    pub calls: Vec<CallFacts>,
    pub queues: Vec<String>,
    pub seats: Vec<String>,
    pub intervals: Vec<Tally>,
    pub total: Tally,
    pub per_queue: Vec<Tally>,
    pub waiting_at_end: u64,
    pub samples: Vec<Sample>,
    pub length: Duration,
    pub service_level: Duration,
    /// Writing the queue log failed: the first error.
    pub log_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Login(u32),
    Logout(u32),
    /// The seat answers the offer numbered so (a later offer of the same
    /// seat to the same caller is another).
    Answer(u64, u32, u64),
    /// The call's talk is over; `true`: the seat ends it.
    HangUp(u64, bool),
    Abandon(u64),
    SessionEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Waiting,
    Talking,
    Done,
}

struct Sim<'a, 't, 'l> {
    model: &'a Model<'t>,
    settings: &'a Settings,
    arrivals: &'a [Arrival],
    acd: Acd,
    base: Instant,
    now: Duration,
    heap: BinaryHeap<Reverse<(Duration, u64, Ev)>>,
    seq: u64,
    status: Vec<Status>,
    joined: Vec<Option<Duration>>,
    session_end: Vec<Option<Duration>>,
    facts: Vec<CallFacts>,
    queue_ix: FxHashMap<String, u16>,
    seat_ix: FxHashMap<String, u32>,
    seat_names: Vec<String>,
    /// Offers standing, each with its number.
    offers: FxHashMap<(u64, u32), u64>,
    sessions_seen: FxHashSet<Duration>,
    /// A leader session's callers: the line they were routed as (the
    /// main queue takes them with it at the session's end).
    session_line: FxHashMap<u64, String>,
    log_error: Option<String>,
    waiting: u32,
    // Integration of seat time, per half hour.
    busy: Vec<f64>,
    staffed: Vec<f64>,
    samples: Vec<Sample>,
    next_sample: Duration,
    log: Option<&'l mut dyn Write>,
}

/// Runs `arrivals` (in time order) through `model`. `log` gets the queue
/// log lines (as `serve` writes them, with simulated times).
pub fn run<'a>(
    model: &'a Model<'_>,
    arrivals: &'a [Arrival],
    settings: &'a Settings,
    log: Option<&mut dyn Write>,
) -> Run {
    let config = match model {
        Model::Table { table, .. } => crate::call::dispatch::config(table),
        Model::Pool { wrap_up, seats } => pool_config(*wrap_up, settings.service_level, seats),
    };
    let base = Instant::now();
    let acd = Acd::new(config.clone(), base);
    let queue_ix = acd
        .queues()
        .enumerate()
        .map(|(i, q)| (q.to_string(), i as u16))
        .collect();
    let seat_names: Vec<String> = config.seats.iter().map(|s| s.id.clone()).collect();
    let seat_ix = seat_names
        .iter()
        .enumerate()
        .map(|(i, s)| (s.clone(), i as u32))
        .collect();
    let n = intervals(settings.length);
    let mut sim = Sim {
        model,
        settings,
        arrivals,
        acd,
        base,
        now: Duration::ZERO,
        heap: BinaryHeap::new(),
        seq: 0,
        status: vec![Status::Pending; arrivals.len()],
        joined: vec![None; arrivals.len()],
        session_end: vec![None; arrivals.len()],
        facts: arrivals
            .iter()
            .map(|a| CallFacts {
                arrival: a.at,
                outcome: Outcome::Open,
                queue: None,
                at_once: false,
                wait: None,
                seat: None,
                ticket: false,
                callback: false,
                transferred: false,
            })
            .collect(),
        queue_ix,
        seat_ix,
        seat_names,
        offers: FxHashMap::default(),
        sessions_seen: FxHashSet::default(),
        session_line: FxHashMap::default(),
        log_error: None,
        waiting: 0,
        busy: vec![0.0; n],
        staffed: vec![0.0; n],
        samples: Vec::new(),
        next_sample: Duration::ZERO,
        log,
    };
    sim.shifts();
    sim.drive();
    sim.finish()
}

fn intervals(length: Duration) -> usize {
    (length.as_secs().div_ceil(INTERVAL.as_secs()) as usize).max(1)
}

/// One queue `pool` (skill `pool`) and as many seats as the busiest half
/// hour needs: rings until answered, no announcements, no tiers, no
/// autopause, every caller taken first come first served.
pub fn pool_config(wrap_up: Duration, service_level: Duration, seats: &[usize]) -> acd::Config {
    let mut q = acd::QueueConfig::new("pool", "pool");
    q.ring = Duration::ZERO;
    q.wrap_up = wrap_up;
    q.announce_every = Duration::ZERO;
    q.service_level = service_level;
    q.expert_wait = Duration::ZERO;
    q.widen_after = Duration::ZERO;
    q.max_missed_offers = 0;
    q.short_abandon = Duration::ZERO;
    let most = seats.iter().copied().max().unwrap_or(0);
    acd::Config {
        queues: vec![q],
        seats: (1..=most)
            .map(|i| acd::SeatConfig::new(format!("s{i}"), &["pool"]))
            .collect(),
        main_queue: "pool".into(),
    }
}

impl Sim<'_, '_, '_> {
    fn at(&self, t: Duration) -> Instant {
        self.base + t
    }

    fn push(&mut self, t: Duration, ev: Ev) {
        self.seq += 1;
        self.heap.push(Reverse((t, self.seq, ev)));
    }

    /// Logins and logouts: the roster's, the pool's per half hour, or
    /// every seat all run.
    fn shifts(&mut self) {
        let len = self.settings.length;
        let mut shifts: Vec<(u32, Duration, Duration)> = Vec::new();
        match (self.model, &self.settings.roster) {
            (_, Some(roster)) => {
                for (seat, from, until) in roster {
                    if let Some(&s) = self.seat_ix.get(seat) {
                        shifts.push((s, *from, *until));
                    }
                }
            }
            (Model::Pool { seats, .. }, None) => {
                // Seat k is on duty in the half hours needing k or more.
                let most = seats.iter().copied().max().unwrap_or(0);
                let n = intervals(len);
                let on = |k: usize, i: usize| *seats.get(i).or(seats.last()).unwrap_or(&0) > k;
                for k in 0..most {
                    let mut i = 0;
                    while i < n {
                        if !on(k, i) {
                            i += 1;
                            continue;
                        }
                        let from = INTERVAL * i as u32;
                        while i < n && on(k, i) {
                            i += 1;
                        }
                        shifts.push((k as u32, from, (INTERVAL * i as u32).min(len)));
                    }
                }
            }
            (Model::Table { .. }, None) => {
                for s in 0..self.seat_names.len() {
                    shifts.push((s as u32, Duration::ZERO, len));
                }
            }
        }
        // Logins in seat order at a same instant: longest-idle ties fall
        // to the table's order, as when the phones register in that order.
        shifts.sort_by_key(|&(s, from, _)| (from, s));
        for (s, from, until) in shifts {
            self.push(from, Ev::Login(s));
            if until < len {
                self.push(until, Ev::Logout(s));
            }
        }
    }

    fn drive(&mut self) {
        let mut next_arrival = 0;
        loop {
            let timer = self
                .acd
                .deadline()
                .map(|d| d.saturating_duration_since(self.base));
            let event = self.heap.peek().map(|r| r.0.0);
            let arrival = self.arrivals.get(next_arrival).map(|a| a.at);
            let Some(t) = [timer, event, arrival].into_iter().flatten().min() else {
                break;
            };
            if t >= self.settings.length {
                break;
            }
            self.advance(t);
            let actions = if timer == Some(t) {
                self.acd.on_timer(self.at(t))
            } else if event == Some(t) {
                let Some(Reverse((_, _, ev))) = self.heap.pop() else {
                    break;
                };
                self.event(ev, t)
            } else {
                next_arrival += 1;
                self.arrive(next_arrival - 1, t)
            };
            self.carry_out(actions, t);
        }
        self.advance(self.settings.length);
    }

    /// Accounts for seat time and samples up to `t`, the state being what
    /// it was since the last step.
    fn advance(&mut self, t: Duration) {
        let totals = self.acd.seat_totals();
        let busy = (totals.ringing + totals.on_call + totals.wrap_up) as f64;
        let staffed = totals.staffed() as f64;
        while self.next_sample <= t && self.next_sample < self.settings.length {
            self.samples.push(Sample {
                at: self.next_sample,
                waiting: self.waiting,
                busy: busy as u32,
                staffed: staffed as u32,
            });
            self.next_sample += self.settings.sample_every;
        }
        let mut from = self.now;
        while from < t {
            let i = (from.as_secs() / INTERVAL.as_secs()) as usize;
            let end = (INTERVAL * (i as u32 + 1)).min(t);
            let span = (end - from).as_secs_f64();
            if let (Some(b), Some(s)) = (self.busy.get_mut(i), self.staffed.get_mut(i)) {
                *b += busy * span;
                *s += staffed * span;
            }
            from = end;
        }
        self.now = t;
    }

    fn event(&mut self, ev: Ev, t: Duration) -> Vec<Action> {
        let now = self.at(t);
        match ev {
            Ev::Login(s) => self.acd.seat_login(&self.seat_names[s as usize], now),
            Ev::Logout(s) => self.acd.seat_logout(&self.seat_names[s as usize], now),
            Ev::Answer(call, s, offer) => {
                if self.offers.get(&(call, s)) == Some(&offer) {
                    self.offers.remove(&(call, s));
                    self.acd
                        .offer_answered(CallId(call), &self.seat_names[s as usize], now)
                } else {
                    Vec::new()
                }
            }
            Ev::HangUp(call, by_seat) => {
                self.status[call as usize] = Status::Done;
                let by = if by_seat { Party::Seat } else { Party::Caller };
                self.acd.call_ended(CallId(call), by, now)
            }
            Ev::Abandon(call) => {
                if self.status[call as usize] != Status::Waiting {
                    return Vec::new();
                }
                self.settle(call, Outcome::Abandoned, t);
                self.acd.leave(CallId(call), Leave::Abandoned, now)
            }
            Ev::SessionEnd => self.session_over(t),
        }
    }

    fn settle(&mut self, call: u64, outcome: Outcome, t: Duration) {
        let c = call as usize;
        if self.status[c] == Status::Waiting {
            self.waiting -= 1;
        }
        self.status[c] = if outcome == Outcome::Answered {
            Status::Talking
        } else {
            Status::Done
        };
        let f = &mut self.facts[c];
        f.outcome = outcome;
        if f.queue.is_some() {
            f.wait = Some(t.saturating_sub(f.arrival));
        }
    }

    fn arrive(&mut self, i: usize, t: Duration) -> Vec<Action> {
        let a = &self.arrivals[i];
        let plan = match self.model {
            Model::Pool { .. } => QueuePlan {
                queue: "pool".into(),
                line: a.dialed.clone(),
                skill: None,
                expert_seats: Vec::new(),
                intro: Vec::new(),
            },
            Model::Table { table, day } => {
                let at = day.start + chrono::Duration::milliseconds(t.as_millis() as i64);
                let d = routing::route(table, &a.dialed, a.caller.as_deref(), at);
                let line = d.line.unwrap_or(&a.dialed).to_string();
                match d.kind {
                    Kind::Emergency => return self.route_away(i, Outcome::Emergency, t),
                    Kind::SubCentre => return self.route_away(i, Outcome::SubCentre, t),
                    Kind::Reject => return self.route_away(i, Outcome::Rejected, t),
                    Kind::LeaderSession if table.media.anchor && a.wants_ticket => {
                        self.facts[i].ticket = true;
                        return self.route_away(i, Outcome::Ticket, t);
                    }
                    _ => {}
                }
                if let Some(s) = d.session {
                    let end = (s.ends_at - day.start).to_std().unwrap_or_default();
                    self.session_end[i] = Some(end);
                    self.session_line.insert(i as u64, line.clone());
                    if self.sessions_seen.insert(end) {
                        self.push(end, Ev::SessionEnd);
                    }
                }
                match QueuePlan::for_decision(table, &d, &line) {
                    Some(p) => p,
                    None => return self.route_away(i, Outcome::Rejected, t),
                }
            }
        };
        if let Some(p) = a.patience {
            self.push(t + p, Ev::Abandon(i as u64));
        }
        self.facts[i].queue = self.queue_ix.get(&plan.queue).copied().or(Some(0));
        self.joined[i] = Some(t);
        self.status[i] = Status::Waiting;
        self.waiting += 1;
        self.join(i as u64, plan, t)
    }

    fn join(&mut self, call: u64, plan: QueuePlan, t: Duration) -> Vec<Action> {
        let join = Join {
            queue: plan.queue,
            line: plan.line,
            skill: plan.skill,
            expert_seats: plan.expert_seats,
            arrival: self.at(self.arrivals[call as usize].at),
        };
        self.acd.join(CallId(call), join, self.at(t))
    }

    fn route_away(&mut self, i: usize, outcome: Outcome, t: Duration) -> Vec<Action> {
        self.settle(i as u64, outcome, t);
        Vec::new()
    }

    /// A leader session ended: its callers still waiting take a ticket or
    /// move to the main queue, as a call does in `serve`.
    fn session_over(&mut self, t: Duration) -> Vec<Action> {
        let Model::Table { table, .. } = self.model else {
            return Vec::new();
        };
        let now = self.at(t);
        let mut out = Vec::new();
        let ending: Vec<usize> = (0..self.arrivals.len())
            .filter(|&i| self.session_end[i] == Some(t) && self.status[i] == Status::Waiting)
            .collect();
        for i in ending {
            self.session_end[i] = None;
            let ticket = table.leader.end_ticket && table.media.anchor;
            let line = self
                .session_line
                .get(&(i as u64))
                .cloned()
                .unwrap_or_else(|| self.arrivals[i].dialed.clone());
            let main = QueuePlan::main_queue(table, &line);
            if !ticket && main.is_none() {
                continue;
            }
            self.drop_offers(i as u64);
            out.extend(self.acd.leave(CallId(i as u64), Leave::Detached, now));
            if ticket {
                self.facts[i].ticket = true;
                self.settle(i as u64, Outcome::Overflowed, t);
            } else if let Some(plan) = main {
                out.extend(self.join(i as u64, plan, t));
            }
        }
        out
    }

    fn drop_offers(&mut self, call: u64) {
        self.offers.retain(|&(c, _), _| c != call);
    }

    fn carry_out(&mut self, actions: Vec<Action>, t: Duration) {
        for action in actions {
            match action {
                Action::Offer { call, seat, ring } => {
                    let c = call.0 as usize;
                    let Some(&s) = self.seat_ix.get(&seat) else {
                        continue;
                    };
                    if self.joined[c] == Some(t) && !self.facts[c].at_once {
                        self.facts[c].at_once = true;
                    }
                    self.seq += 1;
                    let offer = self.seq;
                    self.offers.insert((call.0, s), offer);
                    let delay = self.settings.answer_delay;
                    if ring.is_zero() || delay < ring {
                        self.push(t + delay, Ev::Answer(call.0, s, offer));
                    }
                }
                Action::Retract { call, seat } => {
                    if let Some(&s) = self.seat_ix.get(&seat) {
                        self.offers.remove(&(call.0, s));
                    }
                }
                Action::Connected { call, seat } => {
                    let c = call.0 as usize;
                    let s = self.seat_ix.get(&seat).copied();
                    if let Some(s) = s {
                        self.offers.remove(&(call.0, s));
                    }
                    self.settle(call.0, Outcome::Answered, t);
                    let a = &self.arrivals[c];
                    let mut talk = a.handle;
                    if a.transfer {
                        talk += self.settings.transfer_extra;
                        self.facts[c].transferred = true;
                    }
                    self.facts[c].seat = s;
                    let by_seat = a.seat_hangs_up;
                    self.push(t + talk, Ev::HangUp(call.0, by_seat));
                }
                Action::Overflowed { call, to, .. } => match to {
                    Overflow::Queue(_) => {}
                    Overflow::Busy => self.settle(call.0, Outcome::Overflowed, t),
                    Overflow::Callback => {
                        self.facts[call.0 as usize].callback = true;
                        self.settle(call.0, Outcome::Overflowed, t);
                    }
                },
                Action::Log(e) => {
                    let Some(log) = &mut self.log else {
                        continue;
                    };
                    // The synthetic queue's day starts at the Unix epoch.
                    let start = match self.model {
                        Model::Table { day, .. } => day.start,
                        Model::Pool { .. } => chrono::DateTime::UNIX_EPOCH,
                    };
                    let at = start + chrono::Duration::milliseconds(t.as_millis() as i64);
                    if let Err(e) = log.write_all(e.log_line(at).as_bytes())
                        && self.log_error.is_none()
                    {
                        self.log_error = Some(e.to_string());
                    }
                }
                Action::Queued { .. } | Action::Announce { .. } | Action::Moved { .. } => {}
            }
        }
    }

    fn finish(mut self) -> Run {
        let n = intervals(self.settings.length);
        let mut intervals = vec![Tally::default(); n];
        let mut per_queue = vec![Tally::default(); self.queue_ix.len()];
        let target = self.settings.service_level;
        let end = self.settings.length;
        let mut waiting_at_end = 0;
        for (i, f) in self.facts.iter_mut().enumerate() {
            let iv = ((f.arrival.as_secs() / INTERVAL.as_secs()) as usize).min(n - 1);
            let mut one = Tally {
                calls: 1,
                ..Tally::default()
            };
            if self.joined[i].is_some() {
                one.offered = 1;
                one.waited = u64::from(!f.at_once);
            }
            match f.outcome {
                Outcome::Answered => {
                    one.answered_wait(f.wait.unwrap_or_default(), target);
                    one.transfers = u64::from(f.transferred);
                }
                Outcome::Abandoned => {
                    one.abandoned = 1;
                    one.longest_wait = f.wait.unwrap_or_default();
                }
                Outcome::Overflowed => {
                    one.overflowed = 1;
                    one.longest_wait = f.wait.unwrap_or_default();
                }
                Outcome::Open => {
                    if self.joined[i].is_some() {
                        waiting_at_end += 1;
                        one.longest_wait = end.saturating_sub(f.arrival);
                    }
                }
                Outcome::Ticket => {}
                Outcome::Emergency => one.emergency = 1,
                Outcome::SubCentre => one.sub_centre = 1,
                Outcome::Rejected => one.rejected = 1,
            }
            one.tickets = u64::from(f.ticket);
            one.callbacks = u64::from(f.callback);
            intervals[iv].add(&one);
            if let Some(q) = f.queue.and_then(|q| per_queue.get_mut(q as usize)) {
                q.add(&one);
            }
        }
        for (i, t) in intervals.iter_mut().enumerate() {
            t.busy = self.busy[i];
            t.staffed = self.staffed[i];
        }
        let mut total = Tally::default();
        for t in &intervals {
            total.add(t);
        }
        let queues = {
            let mut q: Vec<(String, u16)> = self.queue_ix.drain().collect();
            q.sort_by_key(|x| x.1);
            q.into_iter().map(|x| x.0).collect()
        };
        Run {
            calls: self.facts,
            queues,
            seats: self.seat_names,
            intervals,
            total,
            per_queue,
            waiting_at_end,
            samples: self.samples,
            length: self.settings.length,
            service_level: target,
            log_error: self.log_error,
        }
    }
}

#[cfg(test)]
mod tests;
