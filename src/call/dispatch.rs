//! The ACD's task: the one owner of the pure [`crate::acd::Acd`] in a
//! running daemon. Calls tell it what happens to them ([`ToAcd`]), the
//! registrar's seats log in and out, a reload reconfigures it; what the
//! ACD decides goes back to the calls' tasks as [`FromAcd`], and to the
//! queue log and the metrics.
//!
//! One task, fed by a channel, so the ACD's state needs no lock and never
//! holds up the routing loop: an emergency or sub-centre call never waits
//! on it, and a call waiting for a seat only ever waits for a message.

use super::calls::{CallHandle, Event as CallEvent};
use super::queue::{FromAcd, ToAcd};
use super::registrar::Registrar;
use crate::acd::{self, Acd, Action, CallId, EventKind, Join, Leave, OfferFailure, Overflow};
use crate::config::SharedTable;
use crate::media::prompt::Item;
use crate::metrics::Metrics;
use crate::routing::{QueueOverflow, QueueStrategy, Table};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;

/// What the ACD's task is told.
pub enum Input {
    /// A call's message for the ACD; a `Join` also brings the call's
    /// handle, so the ACD can answer it.
    Call {
        call: u64,
        msg: ToAcd,
        handle: Option<CallHandle>,
    },
    /// The call's task ended: whatever it held is released.
    Released {
        call: u64,
    },
    /// A seat's registration changed (REGISTER); expiries are found by the
    /// task's own look every second.
    Registration {
        seat: String,
    },
    /// A seat paused or resumed from its phone (feature codes) or, later,
    /// the API.
    Pause {
        seat: String,
        reason: String,
    },
    Resume {
        seat: String,
    },
    /// A seat on a call the ACD did not place (seat to seat, its own).
    SeatBusy {
        seat: String,
        call: u64,
    },
    SeatFree {
        seat: String,
        call: u64,
    },
    /// How many of the queue's seats are free with nobody waiting: room
    /// for a callback the gateway places itself (回访), which never
    /// keeps a caller waiting.
    Idle {
        queue: String,
        reply: tokio::sync::oneshot::Sender<usize>,
    },
    /// The queues and seats now (the control API).
    Snapshot {
        reply: tokio::sync::oneshot::Sender<Snapshot>,
    },
    /// A supervisor's word for a seat (the control API): done at once, the
    /// seat's state after it answered.
    Seat {
        seat: String,
        command: SeatCommand,
        reply: tokio::sync::oneshot::Sender<Result<SeatSnapshot, SeatRefused>>,
    },
}

/// What a supervisor does to a seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatCommand {
    Pause {
        reason: String,
    },
    Resume,
    /// Out of the ACD until a supervisor logs it in again or its phone
    /// registers anew after its registration ended.
    Logout,
    /// Back in, if its phone is registered.
    Login,
}

/// Why a seat command was not carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatRefused {
    Unknown,
    /// Pause or resume of a seat that is logged out; login of a seat whose
    /// phone is not registered.
    NotLoggedIn,
}

/// A seat as the control API shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SeatSnapshot {
    pub id: String,
    /// `logged_out`, `available`, `ringing`, `on_call`, `wrap_up`, `paused`.
    pub state: &'static str,
    pub call: Option<u64>,
    /// While paused: why.
    pub reason: Option<String>,
    /// Logged out by a supervisor (it stays out while registered).
    pub held_out: bool,
    pub skills: Vec<String>,
}

/// One window's figures of a queue.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WindowSnapshot {
    #[serde(flatten)]
    pub counts: crate::ops::recent::Counts,
    pub service_level: Option<f64>,
}

impl From<crate::ops::recent::Counts> for WindowSnapshot {
    fn from(counts: crate::ops::recent::Counts) -> Self {
        WindowSnapshot {
            service_level: counts.service_level(),
            counts,
        }
    }
}

/// A caller in a queue, in order.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WaiterSnapshot {
    pub call: u64,
    pub position: usize,
    /// Seconds since its original arrival.
    pub wait: f64,
}

/// A queue as the control API shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueueSnapshot {
    pub id: String,
    pub name: String,
    pub callers: Vec<WaiterSnapshot>,
    pub waiting: usize,
    pub longest_wait: Option<f64>,
    /// What a caller joining now would be told, seconds.
    pub ewt: Option<f64>,
    pub service_level_target: f64,
    pub seats: std::collections::BTreeMap<&'static str, usize>,
    pub last_15m: WindowSnapshot,
    pub last_60m: WindowSnapshot,
    pub today: WindowSnapshot,
}

/// Everything the ACD knows now.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Snapshot {
    pub queues: Vec<QueueSnapshot>,
    pub seats: Vec<SeatSnapshot>,
}

/// The sending side, for the engine and the call tasks.
#[derive(Clone)]
pub struct Dispatch {
    tx: mpsc::UnboundedSender<Input>,
}

impl Dispatch {
    pub fn send(&self, input: Input) {
        let _ = self.tx.send(input);
    }

    /// See [`Input::Idle`]; 0 when the ACD's task is gone.
    pub async fn idle(&self, queue: &str) -> usize {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Input::Idle {
            queue: queue.to_string(),
            reply,
        });
        answer.await.unwrap_or(0)
    }

    /// See [`Input::Snapshot`]; None when the ACD's task is gone.
    pub async fn snapshot(&self) -> Option<Snapshot> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Input::Snapshot { reply });
        answer.await.ok()
    }

    /// See [`Input::Seat`].
    pub async fn seat(
        &self,
        seat: &str,
        command: SeatCommand,
    ) -> Result<SeatSnapshot, SeatRefused> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Input::Seat {
            seat: seat.to_string(),
            command,
            reply,
        });
        answer.await.unwrap_or(Err(SeatRefused::Unknown))
    }
}

/// Starts the ACD's task over the running table.
pub fn spawn(
    table: SharedTable,
    registrar: Arc<Registrar>,
    metrics: Arc<Metrics>,
    ops: Arc<crate::ops::Hub>,
) -> Dispatch {
    let (tx, rx) = mpsc::unbounded_channel();
    let now = Instant::now();
    let guard = table.guard();
    let driver = Driver {
        acd: Acd::new(config(&guard), now),
        calls: HashMap::new(),
        loaded: Arc::as_ptr(&guard) as usize,
        log: QueueLog::open(guard.acd.queue_log.as_deref()),
        service_level: service_levels(&guard),
        metrics,
        epoch: (now, SystemTime::now()),
        ops,
        recent: crate::ops::recent::Recent::default(),
        tz: guard.calendar.timezone(),
        skills: seat_skills(&guard),
        names: queue_names(&guard),
        shown: HashMap::new(),
        held_out: std::collections::HashSet::new(),
    };
    drop(guard);
    tokio::spawn(driver.run(rx, table, registrar));
    Dispatch { tx }
}

/// The ACD's configuration from the table (queues, seats, the main queue).
pub fn config(table: &Table) -> acd::Config {
    let overflow = |o: &QueueOverflow| match o {
        QueueOverflow::Busy => Overflow::Busy,
        QueueOverflow::Callback => Overflow::Callback,
        QueueOverflow::Queue(i) => Overflow::Queue(table.queues[*i as usize].id.clone()),
    };
    let queues = table
        .queues
        .iter()
        .map(|q| acd::QueueConfig {
            id: q.id.clone(),
            skill: q.skill.clone(),
            strategy: match q.strategy {
                QueueStrategy::LongestIdle => acd::Strategy::LongestIdle,
                QueueStrategy::RoundRobin => acd::Strategy::RoundRobin,
                QueueStrategy::FewestCalls => acd::Strategy::FewestCalls,
                QueueStrategy::RingAll => acd::Strategy::RingAll,
            },
            ring: q.ring,
            wrap_up: q.wrap_up,
            // `announce_seconds = 0`: told once, on joining.
            announce_every: q.announce_every.unwrap_or(Duration::ZERO),
            service_level: q.service_level,
            max_callers: q.max_callers,
            max_wait: q.max_wait,
            callback_after: q.callback_offer_after,
            join_empty: overflow(&q.join_empty),
            overflow: overflow(&q.overflow),
            exit_key: q.exit_key,
            exit_action: overflow(&q.exit_action),
            expert_wait: q.expert_wait,
            widen_after: q.widen_after,
            default_handle: q.default_handle,
            max_missed_offers: q.max_missed_offers,
            short_abandon: q.short_abandon,
        })
        .collect();
    let seats = table
        .seats
        .iter()
        .map(|s| acd::SeatConfig {
            id: s.id.clone(),
            skills: s.skills.clone(),
            expert_for: s.expert_for.clone(),
        })
        .collect();
    let main_queue = table
        .main_line()
        .queue
        .map(|q| table.queues[q as usize].id.clone())
        .unwrap_or_default();
    acd::Config {
        queues,
        seats,
        main_queue,
    }
}

fn queue_names(table: &Table) -> HashMap<String, String> {
    table
        .queues
        .iter()
        .map(|q| (q.id.clone(), q.name.clone()))
        .collect()
}

fn seat_skills(table: &Table) -> HashMap<String, Vec<String>> {
    table
        .seats
        .iter()
        .map(|s| (s.id.clone(), s.skills.clone()))
        .collect()
}

fn state_name(s: &acd::SeatState) -> (&'static str, Option<u64>, Option<String>) {
    match s {
        acd::SeatState::LoggedOut => ("logged_out", None, None),
        acd::SeatState::Available => ("available", None, None),
        acd::SeatState::Ringing { call } => ("ringing", Some(call.0), None),
        acd::SeatState::OnCall { call } => ("on_call", Some(call.0), None),
        acd::SeatState::WrapUp => ("wrap_up", None, None),
        acd::SeatState::Paused { reason } => ("paused", None, Some(reason.clone())),
    }
}

fn service_levels(table: &Table) -> HashMap<String, Duration> {
    table
        .queues
        .iter()
        .map(|q| (q.id.clone(), q.service_level))
        .collect()
}

struct Driver {
    acd: Acd,
    /// The calls that joined, to answer them.
    calls: HashMap<u64, CallHandle>,
    /// The table the ACD was configured from (its address, compared only).
    loaded: usize,
    log: QueueLog,
    service_level: HashMap<String, Duration>,
    metrics: Arc<Metrics>,
    /// An instant and the wall clock at it, to date the queue log.
    epoch: (Instant, SystemTime),
    /// The event stream.
    ops: Arc<crate::ops::Hub>,
    /// Outcomes over the last hour and today.
    recent: crate::ops::recent::Recent,
    /// The table's time zone: where "today" starts.
    tz: chrono_tz::Tz,
    skills: HashMap<String, Vec<String>>,
    /// Queue id → its name, as the wallboard shows it.
    names: HashMap<String, String>,
    /// Each seat's state as last told to the event stream.
    shown: HashMap<String, acd::SeatState>,
    /// Seats a supervisor logged out: kept out while their phones stay
    /// registered.
    held_out: std::collections::HashSet<String>,
}

/// How often registrations and reloads are looked at.
const TICK: Duration = Duration::from_secs(1);

impl Driver {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Input>,
        table: SharedTable,
        registrar: Arc<Registrar>,
    ) {
        let mut next_tick = Instant::now();
        loop {
            let deadline = self.acd.deadline().map_or(next_tick, |d| d.min(next_tick));
            tokio::select! {
                input = rx.recv() => match input {
                    Some(Input::Registration { seat }) => {
                        self.sync_seat(&registrar, seat, Instant::now());
                    }
                    Some(Input::Seat { seat, command, reply }) => {
                        let now = Instant::now();
                        let (actions, result) = self.seat_command(&registrar, &seat, command, now);
                        self.apply(actions);
                        let _ = reply.send(result.and_then(|()| {
                            self.seat_snapshot(&seat).ok_or(SeatRefused::Unknown)
                        }));
                    }
                    Some(input) => {
                        let actions = self.input(input, Instant::now());
                        self.apply(actions);
                    }
                    None => return,
                },
                _ = tokio::time::sleep_until(deadline.into()) => {
                    let now = Instant::now();
                    let actions = self.acd.on_timer(now);
                    self.apply(actions);
                    if now >= next_tick {
                        next_tick = now + TICK;
                        self.reload_if_changed(&table, now);
                        self.sync_seats(&registrar, now);
                    }
                }
            }
            let now = Instant::now();
            self.publish(now);
            self.tell_seats();
        }
    }

    /// Seat states that changed since last told, to the event stream.
    fn tell_seats(&mut self) {
        if !self.ops.watched() {
            // Told afresh when someone listens: the stream's readers read
            // the state first.
            self.shown.clear();
            return;
        }
        if self.shown.is_empty() {
            // A reader just came: it reads the state itself (GET
            // /api/seats); from here on it is told what changes.
            for (id, state) in self.acd.seats() {
                self.shown.insert(id.to_string(), state);
            }
            return;
        }
        let mut changed = Vec::new();
        for (id, state) in self.acd.seats() {
            if self.shown.get(id) != Some(&state) {
                changed.push((id.to_string(), state));
            }
        }
        for (id, state) in changed {
            let (name, call, reason) = state_name(&state);
            self.ops.publish(
                "seat",
                serde_json::json!({"seat": id, "state": name, "call": call, "reason": reason}),
            );
            self.shown.insert(id, state);
        }
    }

    fn local_date(&self, at: SystemTime) -> chrono::NaiveDate {
        chrono::DateTime::<chrono::Utc>::from(at)
            .with_timezone(&self.tz)
            .date_naive()
    }

    fn seat_snapshot(&self, id: &str) -> Option<SeatSnapshot> {
        let state = self.acd.seat_state(id)?;
        let (name, call, reason) = state_name(&state);
        Some(SeatSnapshot {
            id: id.to_string(),
            state: name,
            call,
            reason,
            held_out: self.held_out.contains(id),
            skills: self.skills.get(id).cloned().unwrap_or_default(),
        })
    }

    fn snapshot(&self, now: Instant) -> Snapshot {
        let date = self.local_date(self.wall(now));
        let queues = self
            .acd
            .queues()
            .filter_map(|q| {
                let s = self.acd.queue_stats(q, now)?;
                let callers = self
                    .acd
                    .waiting(q)
                    .enumerate()
                    .map(|(i, (call, arrival))| WaiterSnapshot {
                        call: call.0,
                        position: i + 1,
                        wait: secs(now.saturating_duration_since(arrival)),
                    })
                    .collect();
                let c = s.seats_by_state;
                let seats = [
                    ("logged_out", c.logged_out),
                    ("available", c.available),
                    ("ringing", c.ringing),
                    ("on_call", c.on_call),
                    ("wrap_up", c.wrap_up),
                    ("paused", c.paused),
                ]
                .into_iter()
                .collect();
                let ewt = if s.waiting == 0 && c.available > 0 {
                    Some(0.0)
                } else {
                    s.ewt.map(secs)
                };
                Some(QueueSnapshot {
                    id: q.to_string(),
                    name: self.names.get(q).cloned().unwrap_or_default(),
                    callers,
                    waiting: s.waiting,
                    longest_wait: s.longest_wait.map(secs),
                    ewt,
                    service_level_target: self.service_level.get(q).map_or(0.0, |d| secs(*d)),
                    seats,
                    last_15m: self.recent.within(q, Duration::from_secs(900), now).into(),
                    last_60m: self.recent.within(q, Duration::from_secs(3600), now).into(),
                    today: self.recent.today(q, date).into(),
                })
            })
            .collect();
        let seats = self
            .acd
            .seats()
            .filter_map(|(id, _)| self.seat_snapshot(id))
            .collect();
        Snapshot { queues, seats }
    }

    /// A supervisor's seat command.
    fn seat_command(
        &mut self,
        registrar: &Registrar,
        seat: &str,
        command: SeatCommand,
        now: Instant,
    ) -> (Vec<Action>, Result<(), SeatRefused>) {
        let Some(state) = self.acd.seat_state(seat) else {
            return (Vec::new(), Err(SeatRefused::Unknown));
        };
        let logged_in = state != acd::SeatState::LoggedOut;
        match command {
            SeatCommand::Pause { .. } | SeatCommand::Resume if !logged_in => {
                (Vec::new(), Err(SeatRefused::NotLoggedIn))
            }
            SeatCommand::Pause { reason } => (self.acd.pause(seat, &reason, now), Ok(())),
            SeatCommand::Resume => (self.acd.resume(seat, now), Ok(())),
            SeatCommand::Logout => {
                self.held_out.insert(seat.to_string());
                tracing::info!(seat, "seat logged out by a supervisor");
                (self.acd.seat_logout(seat, now), Ok(()))
            }
            SeatCommand::Login => {
                if !registrar.is_registered(seat, now) {
                    return (Vec::new(), Err(SeatRefused::NotLoggedIn));
                }
                self.held_out.remove(seat);
                tracing::info!(seat, "seat logged in by a supervisor");
                // Also clears a logout waiting for the seat's call to end.
                (self.acd.seat_login(seat, now), Ok(()))
            }
        }
    }

    fn input(&mut self, input: Input, now: Instant) -> Vec<Action> {
        let id = |call: u64| CallId(call);
        match input {
            Input::Call { call, msg, handle } => match msg {
                ToAcd::Join {
                    queue,
                    line,
                    skill,
                    expert_seats,
                    arrival,
                } => {
                    if let Some(h) = handle {
                        self.calls.insert(call, h);
                    }
                    let join = Join {
                        queue,
                        line,
                        skill,
                        expert_seats,
                        arrival,
                    };
                    self.acd.join(id(call), join, now)
                }
                ToAcd::Abandoned => {
                    self.calls.remove(&call);
                    self.acd.leave(id(call), Leave::Abandoned, now)
                }
                ToAcd::Left => {
                    // Removed first: the exit's overflow action (a goodbye)
                    // is not for a call that went on to a ticket.
                    self.calls.remove(&call);
                    self.acd.leave(id(call), Leave::Detached, now)
                }
                ToAcd::Hungup => {
                    self.calls.remove(&call);
                    self.acd.leave(id(call), Leave::Operator, now)
                }
                ToAcd::Key(digit) => self.acd.key(id(call), digit, now),
                ToAcd::Answered { seat } => self.acd.offer_answered(id(call), &seat, now),
                ToAcd::OfferFailed { seat, no_answer } => {
                    let how = if no_answer {
                        OfferFailure::NoAnswer
                    } else {
                        OfferFailure::Rejected
                    };
                    self.acd.offer_failed(id(call), &seat, how, now)
                }
                ToAcd::Ended { by_seat } => {
                    self.calls.remove(&call);
                    let by = if by_seat {
                        acd::Party::Seat
                    } else {
                        acd::Party::Caller
                    };
                    self.acd.call_ended(id(call), by, now)
                }
            },
            Input::Released { call } => {
                self.calls.remove(&call);
                self.acd.release_call(id(call), now)
            }
            Input::Pause { seat, reason } => self.acd.pause(&seat, &reason, now),
            Input::Resume { seat } => self.acd.resume(&seat, now),
            Input::SeatBusy { seat, call } => self.acd.seat_busy(&seat, id(call), now),
            Input::SeatFree { seat, call } => self.acd.seat_free(&seat, id(call), now),
            Input::Registration { .. } | Input::Seat { .. } => Vec::new(),
            Input::Snapshot { reply } => {
                let _ = reply.send(self.snapshot(now));
                Vec::new()
            }
            Input::Idle { queue, reply } => {
                let idle = self
                    .acd
                    .queue_stats(&queue, now)
                    .filter(|s| s.waiting == 0)
                    .map_or(0, |s| s.seats_by_state.available);
                let _ = reply.send(idle);
                Vec::new()
            }
        }
    }

    /// Carries the ACD's decisions out.
    fn apply(&mut self, actions: Vec<Action>) {
        for action in actions {
            let (call, msg) = match action {
                Action::Offer { call, seat, ring } => (call, FromAcd::Offer { seat, ring }),
                Action::Retract { call, seat } => (call, FromAcd::Retract { seat }),
                Action::Announce { call, items } => (call, FromAcd::Announce { items }),
                Action::Overflowed {
                    call,
                    reason,
                    to: to @ (Overflow::Busy | Overflow::Callback),
                } => {
                    let (prompt, code, why) = match reason {
                        acd::ExitReason::Empty => (
                            acd::announce::QUEUE_UNAVAILABLE,
                            480,
                            "Temporarily Unavailable (no seat is logged in)",
                        ),
                        acd::ExitReason::Full => (
                            acd::announce::QUEUE_BUSY,
                            486,
                            "Busy Here (the queue is full)",
                        ),
                        acd::ExitReason::Timeout => (
                            acd::announce::QUEUE_BUSY,
                            480,
                            "Temporarily Unavailable (waited too long)",
                        ),
                        acd::ExitReason::ExitKey => (
                            acd::announce::QUEUE_BUSY,
                            480,
                            "Temporarily Unavailable (left the queue)",
                        ),
                    };
                    let items = vec![Item::prompt(prompt), Item::prompt("goodbye")];
                    let reason = why.to_string();
                    let msg = if to == Overflow::Callback {
                        FromAcd::CallBackLater {
                            items,
                            code,
                            reason,
                        }
                    } else {
                        FromAcd::Leave {
                            items,
                            code,
                            reason,
                        }
                    };
                    (call, msg)
                }
                Action::Log(event) => {
                    self.observe(&event);
                    let at = self.wall(event.time);
                    self.log.write(&event, at);
                    if self.ops.watched()
                        && let Ok(v) = serde_json::to_value(&event)
                    {
                        self.ops.publish_at("queue", v, at.into());
                    }
                    continue;
                }
                Action::Queued { .. }
                | Action::Connected { .. }
                | Action::Overflowed { .. }
                | Action::Moved { .. } => continue,
            };
            let leaving = matches!(msg, FromAcd::Leave { .. } | FromAcd::CallBackLater { .. });
            if let Some(h) = self.calls.get(&call.0) {
                h.notify(CallEvent::Acd(Box::new(msg)));
            }
            if leaving {
                self.calls.remove(&call.0);
            }
        }
    }

    fn wall(&self, t: Instant) -> SystemTime {
        let (i, w) = self.epoch;
        match t.checked_duration_since(i) {
            Some(d) => w + d,
            None => w - i.duration_since(t),
        }
    }

    /// Counters from the queue log's events, and the recent windows.
    fn observe(&mut self, e: &acd::Event) {
        use crate::ops::recent::Outcome as Recent;
        let m = &self.metrics.queue;
        let queue = e.queue.as_deref().unwrap_or("");
        let within = self
            .service_level
            .get(queue)
            .is_some_and(|sl| e.wait <= *sl);
        let recent = match e.kind {
            EventKind::Connect => Some(Recent::Answered {
                within_target: within,
            }),
            EventKind::Abandon if e.short => Some(Recent::ShortAbandoned),
            EventKind::Abandon => Some(Recent::Abandoned),
            EventKind::ExitWithTimeout
            | EventKind::Full
            | EventKind::ExitEmpty
            | EventKind::ExitWithKey => Some(Recent::Exited),
            _ => None,
        };
        if let Some(o) = recent {
            let date = self.local_date(self.wall(e.time));
            self.recent.record(queue, o, e.time, date);
        }
        let outcome = match e.kind {
            EventKind::Connect => {
                m.offers.with_label_values(&["answered"]).inc();
                if within {
                    m.within_target.with_label_values(&[queue]).inc();
                }
                m.wait
                    .with_label_values(&[queue, "answered"])
                    .observe(e.wait.as_secs_f64());
                "answered"
            }
            EventKind::Abandon => {
                m.wait
                    .with_label_values(&[queue, "abandoned"])
                    .observe(e.wait.as_secs_f64());
                if e.short {
                    "short_abandoned"
                } else {
                    "abandoned"
                }
            }
            EventKind::ExitWithTimeout => "timeout",
            EventKind::Full => "full",
            EventKind::ExitEmpty => "empty",
            EventKind::ExitWithKey if e.reason.as_deref() == Some("operator") => "operator",
            EventKind::ExitWithKey => "exit_key",
            EventKind::RingNoAnswer => {
                let result = match e.reason.as_deref() {
                    Some("rejected") => "rejected",
                    _ => "no_answer",
                };
                m.offers.with_label_values(&[result]).inc();
                return;
            }
            _ => return,
        };
        m.calls.with_label_values(&[queue, outcome]).inc();
    }

    /// Gauges from the ACD's state now.
    fn publish(&self, now: Instant) {
        let m = &self.metrics.queue;
        for q in self.acd.queues() {
            let Some(s) = self.acd.queue_stats(q, now) else {
                continue;
            };
            m.callers.with_label_values(&[q]).set(s.waiting as i64);
            m.longest_wait
                .with_label_values(&[q])
                .set(s.longest_wait.map_or(0.0, |d| d.as_secs_f64()));
            // A caller joining while a seat is free is put through at
            // once: it waits (and is told) nothing.
            let ewt = if s.waiting == 0 && s.seats_by_state.available > 0 {
                0.0
            } else {
                s.ewt.map_or(0.0, |d| d.as_secs_f64())
            };
            m.estimated_wait.with_label_values(&[q]).set(ewt);
            let c = s.seats_by_state;
            for (state, n) in [
                ("logged_out", c.logged_out),
                ("available", c.available),
                ("ringing", c.ringing),
                ("on_call", c.on_call),
                ("wrap_up", c.wrap_up),
                ("paused", c.paused),
            ] {
                m.seats.with_label_values(&[q, state]).set(n as i64);
            }
        }
    }

    /// A reload reaches the ACD at once: callers waiting keep their place.
    fn reload_if_changed(&mut self, table: &SharedTable, now: Instant) {
        let guard = table.guard();
        if Arc::as_ptr(&guard) as usize == self.loaded {
            return;
        }
        self.loaded = Arc::as_ptr(&guard) as usize;
        self.service_level = service_levels(&guard);
        self.skills = seat_skills(&guard);
        self.names = queue_names(&guard);
        self.tz = guard.calendar.timezone();
        self.log = QueueLog::open(guard.acd.queue_log.as_deref());
        let actions = self.acd.reconfigure(config(&guard), now);
        drop(guard);
        self.apply(actions);
        // Gauges of queues a reload removed go; the next publish fills in
        // those that stay.
        let m = &self.metrics.queue;
        m.callers.reset();
        m.longest_wait.reset();
        m.estimated_wait.reset();
        m.seats.reset();
    }

    /// Seats that registered or whose registration ended since the last
    /// look.
    fn sync_seats(&mut self, registrar: &Registrar, now: Instant) {
        let seats: Vec<String> = self.acd.seats().map(|(id, _)| id.to_string()).collect();
        for seat in seats {
            self.sync_seat(registrar, seat, now);
        }
    }

    /// Logs a seat in or out of the ACD as its registration says.
    fn sync_seat(&mut self, registrar: &Registrar, seat: String, now: Instant) {
        let registered = registrar.is_registered(&seat, now);
        if self.held_out.contains(&seat) {
            // Out by a supervisor's word while its phone stays registered;
            // once the registration ends, the next one logs it in.
            if !registered {
                self.held_out.remove(&seat);
            }
            return;
        }
        let known = self
            .acd
            .seat_state(&seat)
            .is_some_and(|s| s != acd::SeatState::LoggedOut);
        let actions = match (registered, known) {
            (true, false) => self.acd.seat_login(&seat, now),
            (false, true) => self.acd.seat_logout(&seat, now),
            _ => return,
        };
        self.apply(actions);
    }
}

/// The queue event log: one JSON object a line, the ACD's event with the
/// wall-clock time added. A log that cannot be written never affects a
/// call; the failure is logged once.
struct QueueLog {
    file: Option<std::fs::File>,
    failed: bool,
}

impl QueueLog {
    fn open(path: Option<&std::path::Path>) -> QueueLog {
        let file = path.and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(
                    |e| tracing::warn!(path = %p.display(), error = %e, "queue log not opened"),
                )
                .ok()
        });
        QueueLog {
            file,
            failed: false,
        }
    }

    fn write(&mut self, e: &acd::Event, at: SystemTime) {
        let Some(f) = &mut self.file else { return };
        let line = e.log_line(chrono::DateTime::<chrono::Utc>::from(at));
        if let Err(e) = f.write_all(line.as_bytes())
            && !self.failed
        {
            self.failed = true;
            tracing::warn!(error = %e, "queue log write failed");
        }
    }
}

/// Seconds, to the millisecond, as the API writes durations.
fn secs(d: Duration) -> f64 {
    d.as_millis() as f64 / 1000.0
}
