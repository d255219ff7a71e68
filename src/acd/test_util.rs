//! Shared by the ACD's tests: a fake clock driving an [`Acd`] the way the
//! daemon would, checking after every input that the derived indexes match
//! a rebuild from scratch, that the deadline lies after the input's `now`,
//! that offers and seat states agree, and that no waiting caller has a free
//! eligible seat.

use super::strategy::Choice;
pub(super) use super::*;
pub(super) use std::time::{Duration, Instant};

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(super) fn queue(id: &str, skill: &str) -> QueueConfig {
    QueueConfig::new(id, skill)
}

pub(super) fn seat(id: &str, skills: &[&str]) -> SeatConfig {
    SeatConfig::new(id, skills)
}

/// The first queue is the main queue.
pub(super) fn config(queues: Vec<QueueConfig>, seats: Vec<SeatConfig>) -> Config {
    Config {
        main_queue: queues[0].id.clone(),
        queues,
        seats,
    }
}

/// Queue `main` (skill `general`) and seats `s1`..=`sn` serving it, logged
/// out.
pub(super) fn seats(n: usize) -> Run {
    let seats = (1..=n)
        .map(|i| seat(&format!("s{i}"), &["general"]))
        .collect();
    Run::new(config(vec![queue("main", "general")], seats))
}

pub(super) fn one_seat() -> Run {
    seats(1)
}

pub(super) struct Run {
    pub acd: Acd,
    pub config: Config,
    pub base: Instant,
    pub now: Instant,
}

impl Run {
    pub fn new(config: Config) -> Run {
        let base = Instant::now();
        Run {
            acd: Acd::new(config.clone(), base),
            config,
            base,
            now: base,
        }
    }

    /// Moves the clock to `base + s` (no input).
    pub fn at(&mut self, s: u64) {
        self.at_ms(s * 1000);
    }

    pub fn at_ms(&mut self, ms: u64) {
        let t = self.base + Duration::from_millis(ms);
        assert!(t >= self.now, "the clock runs forward");
        self.now = t;
    }

    /// Calls `on_timer` at every deadline up to `base + s`, as a driver
    /// would (checking that 1 ms early does nothing), then moves there.
    pub fn at_run(&mut self, s: u64) -> Vec<Action> {
        let until = self.base + secs(s);
        let mut out = Vec::new();
        while let Some(at) = self.acd.deadline() {
            if at > until {
                break;
            }
            let early = at - Duration::from_millis(1);
            if early > self.now {
                self.now = early;
                assert_eq!(self.tick(), [], "nothing is due before the deadline");
                assert_eq!(
                    self.acd.deadline(),
                    Some(at),
                    "an early call moved the deadline"
                );
            }
            self.now = at;
            out.extend(self.tick());
            assert!(out.len() < 100_000, "timer loop does not end");
        }
        self.at_ms((until - self.base).as_millis() as u64);
        out
    }

    fn done(&self, out: Vec<Action>) -> Vec<Action> {
        self.acd.check(self.now);
        out
    }

    pub fn tick(&mut self) -> Vec<Action> {
        let out = self.acd.on_timer(self.now);
        self.done(out)
    }

    pub fn join(&mut self, call: u64, queue: &str) -> Vec<Action> {
        self.join_line(call, queue, "12345", None)
    }

    pub fn join_line(
        &mut self,
        call: u64,
        queue: &str,
        line: &str,
        skill: Option<&str>,
    ) -> Vec<Action> {
        let join = Join {
            queue: queue.into(),
            line: line.into(),
            skill: skill.map(str::to_string),
            expert_seats: Vec::new(),
            arrival: self.now,
        };
        let out = self.acd.join(CallId(call), join, self.now);
        self.done(out)
    }

    pub fn rejoin(&mut self, call: u64, queue: &str, arrival: Instant) -> Vec<Action> {
        let join = Join {
            queue: queue.into(),
            line: "12345".into(),
            skill: None,
            expert_seats: Vec::new(),
            arrival,
        };
        let out = self.acd.join(CallId(call), join, self.now);
        self.done(out)
    }

    pub fn leave(&mut self, call: u64, how: Leave) -> Vec<Action> {
        let out = self.acd.leave(CallId(call), how, self.now);
        self.done(out)
    }

    pub fn key(&mut self, call: u64, digit: char) -> Vec<Action> {
        let out = self.acd.key(CallId(call), digit, self.now);
        self.done(out)
    }

    pub fn answer(&mut self, call: u64, seat: &str) -> Vec<Action> {
        let out = self.acd.offer_answered(CallId(call), seat, self.now);
        self.done(out)
    }

    pub fn fail(&mut self, call: u64, seat: &str, how: OfferFailure) -> Vec<Action> {
        let out = self.acd.offer_failed(CallId(call), seat, how, self.now);
        self.done(out)
    }

    /// The caller hangs up a connected call.
    pub fn end(&mut self, call: u64) -> Vec<Action> {
        self.end_by(call, Party::Caller)
    }

    pub fn end_by(&mut self, call: u64, by: Party) -> Vec<Action> {
        let out = self.acd.call_ended(CallId(call), by, self.now);
        self.done(out)
    }

    pub fn login(&mut self, seat: &str) -> Vec<Action> {
        let out = self.acd.seat_login(seat, self.now);
        self.done(out)
    }

    pub fn logout(&mut self, seat: &str) -> Vec<Action> {
        let out = self.acd.seat_logout(seat, self.now);
        self.done(out)
    }

    pub fn pause(&mut self, seat: &str, reason: &str) -> Vec<Action> {
        let out = self.acd.pause(seat, reason, self.now);
        self.done(out)
    }

    pub fn resume(&mut self, seat: &str) -> Vec<Action> {
        let out = self.acd.resume(seat, self.now);
        self.done(out)
    }

    pub fn busy(&mut self, seat: &str, call: u64) -> Vec<Action> {
        let out = self.acd.seat_busy(seat, CallId(call), self.now);
        self.done(out)
    }

    pub fn free(&mut self, seat: &str, call: u64) -> Vec<Action> {
        let out = self.acd.seat_free(seat, CallId(call), self.now);
        self.done(out)
    }

    pub fn release(&mut self, call: u64) -> Vec<Action> {
        let out = self.acd.release_call(CallId(call), self.now);
        self.done(out)
    }

    pub fn reconfigure(&mut self, config: Config) -> Vec<Action> {
        self.config = config.clone();
        let out = self.acd.reconfigure(config, self.now);
        self.done(out)
    }

    /// Logs these seats in and puts each on a call of its own (calls 900,
    /// 901, …): callers wait until [`Run::free`].
    pub fn occupy(&mut self, seats: &[&str]) {
        for (i, s) in seats.iter().enumerate() {
            self.login(s);
            self.busy(s, 900 + i as u64);
        }
    }

    /// The configuration last given, to change and reload.
    pub fn acd_config(&self) -> Config {
        self.config.clone()
    }
}

impl Acd {
    /// The invariants every input must leave standing.
    pub(super) fn check(&self, now: Instant) {
        if let Some(d) = self.deadline() {
            assert!(d > now, "deadline {d:?} not after the last input {now:?}");
        }
        let mut fresh = self.clone();
        fresh.rebuild();
        assert_eq!(fresh.waiting, self.waiting, "caller indexes drifted");
        assert_eq!(fresh.free, self.free, "free-seat index drifted");
        assert_eq!(fresh.counts, self.counts, "seat counts drifted");
        assert_eq!(fresh.totals, self.totals, "seat totals drifted");
        assert_eq!(fresh.on_call, self.on_call, "calls on seats drifted");
        assert_eq!(fresh.timers, self.timers, "timers drifted");
        for (s, seat) in self.seats.iter().enumerate() {
            if let Some(call) = seat.ringing() {
                assert!(
                    self.callers[&call].offers.contains(&s),
                    "{} rings for a caller not offered it",
                    seat.id
                );
            }
        }
        for (call, c) in &self.callers {
            for &s in &c.offers {
                assert_eq!(
                    self.seats[s].ringing(),
                    Some(*call),
                    "an offer without a ringing seat"
                );
            }
            assert_eq!(
                self.choose_for(*call, None),
                Choice::None,
                "caller {call} waits beside a free eligible seat"
            );
        }
    }
}

/// What `f` finds in each action, in order.
fn pick<T>(out: &[Action], f: impl FnMut(&Action) -> Option<T>) -> Vec<T> {
    out.iter().filter_map(f).collect()
}

pub(super) fn offers(out: &[Action]) -> Vec<(u64, String)> {
    pick(out, |a| match a {
        Action::Offer { call, seat, .. } => Some((call.0, seat.clone())),
        _ => None,
    })
}

pub(super) fn retracts(out: &[Action]) -> Vec<(u64, String)> {
    pick(out, |a| match a {
        Action::Retract { call, seat } => Some((call.0, seat.clone())),
        _ => None,
    })
}

pub(super) fn connected(out: &[Action]) -> Vec<(u64, String)> {
    pick(out, |a| match a {
        Action::Connected { call, seat } => Some((call.0, seat.clone())),
        _ => None,
    })
}

/// `(call, position)` of each `Queued`.
pub(super) fn queued(out: &[Action]) -> Vec<(u64, usize)> {
    pick(out, |a| match a {
        Action::Queued { call, position, .. } => Some((call.0, *position)),
        _ => None,
    })
}

pub(super) fn overflowed(out: &[Action]) -> Vec<(u64, ExitReason, Overflow)> {
    pick(out, |a| match a {
        Action::Overflowed { call, reason, to } => Some((call.0, *reason, to.clone())),
        _ => None,
    })
}

pub(super) fn moved(out: &[Action]) -> Vec<(u64, String, String)> {
    pick(out, |a| match a {
        Action::Moved { call, from, to } => Some((call.0, from.clone(), to.clone())),
        _ => None,
    })
}

/// Each `Announce` as its prompt names.
pub(super) fn announces(out: &[Action]) -> Vec<(u64, Vec<String>)> {
    pick(out, |a| match a {
        Action::Announce { call, items } => Some((
            call.0,
            items
                .iter()
                .map(|i| match i {
                    Item::Prompt(p) => p.clone(),
                    other => panic!("not a prompt: {other:?}"),
                })
                .collect(),
        )),
        _ => None,
    })
}

pub(super) fn events(out: &[Action]) -> Vec<Event> {
    pick(out, |a| match a {
        Action::Log(e) => Some(e.clone()),
        _ => None,
    })
}

pub(super) fn kinds(out: &[Action]) -> Vec<&'static str> {
    events(out).iter().map(|e| e.kind.as_str()).collect()
}
