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
}

/// Starts the ACD's task over the running table.
pub fn spawn(table: SharedTable, registrar: Arc<Registrar>, metrics: Arc<Metrics>) -> Dispatch {
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
            self.publish(Instant::now());
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
            Input::Registration { .. } => Vec::new(),
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
                    self.log.write(&event, self.wall(event.time));
                    continue;
                }
                Action::Queued { .. }
                | Action::Connected { .. }
                | Action::Overflowed { .. }
                | Action::Moved { .. } => continue,
            };
            let leaving = matches!(msg, FromAcd::Leave { .. } | FromAcd::CallBackLater { .. });
            if let Some(h) = self.calls.get(&call.0) {
                h.notify(CallEvent::Acd(msg));
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

    /// Counters from the queue log's events.
    fn observe(&self, e: &acd::Event) {
        let m = &self.metrics.queue;
        let queue = e.queue.as_deref().unwrap_or("");
        let outcome = match e.kind {
            EventKind::Connect => {
                m.offers.with_label_values(&["answered"]).inc();
                if self
                    .service_level
                    .get(queue)
                    .is_some_and(|sl| e.wait <= *sl)
                {
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
        let Ok(serde_json::Value::Object(mut obj)) = serde_json::to_value(e) else {
            return;
        };
        let time = chrono::DateTime::<chrono::Utc>::from(at)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        obj.insert("time".into(), serde_json::Value::String(time));
        let mut line = serde_json::Value::Object(obj).to_string();
        line.push('\n');
        if let Err(e) = f.write_all(line.as_bytes())
            && !self.failed
        {
            self.failed = true;
            tracing::warn!(error = %e, "queue log write failed");
        }
    }
}
