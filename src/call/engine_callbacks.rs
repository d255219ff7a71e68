//! The engine's callbacks (回访): a task that, within calling hours and
//! while a seat of the callback queue is free with nobody waiting, takes
//! the next callback the store owes, claims it, and places it
//! ([`super::super::call::callback`]); what it came to goes back to the
//! store at once (the survey's answer moves the ticket), with the next
//! attempt scheduled.

use super::{CallGuard, Engine, OutputSinks, media_event, sleep_until, trunk_chain};
use crate::call::call::callback::{Callback, CallbackPlan, WAIT_CAP};
use crate::call::calls::{CallHandle, Event};
use crate::media::session::Event as MediaEvent;
use crate::routing::{Kind, Table, TrunkRole};
use crate::sip::transaction::Timers;
use crate::sip::transport::Peer;
use crate::tickets::TicketId;
use crate::tickets::callback::{Job, Outcome, Schedule};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// How often the store is asked for callbacks due.
const ROUND: Duration = Duration::from_secs(2);
/// A gateway holds a callback it claimed this long; one that stopped
/// mid-call leaves it to be taken again after that.
const LEASE: Duration = Duration::from_secs(2 * 3600);

/// What one callback is: where its seat comes from, where the citizen is
/// dialled, and whether it asks the survey.
struct Spec {
    queue: String,
    line: String,
    skill: Option<String>,
    expert_seats: Vec<String>,
    citizen: Vec<crate::call::call::Target>,
    ring: Duration,
    survey: bool,
    wait_cap: Option<Duration>,
    arrival: Instant,
}

/// Callbacks in flight on this gateway.
#[derive(Default)]
struct Running {
    tickets: Mutex<HashSet<String>>,
    /// Placed and not yet taken by a seat: no second one is placed while
    /// one still waits (a callback never holds a seat from a caller).
    seeking: AtomicUsize,
    /// "No carrier trunk" was said.
    warned: std::sync::atomic::AtomicBool,
}

/// One callback's claim on `seeking`, given back once a seat took it or
/// its task ends however it ends (a panic included).
struct Seeking<'r>(Option<&'r Running>);

impl Seeking<'_> {
    fn done(&mut self) {
        if let Some(r) = self.0.take() {
            r.seeking.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Seeking<'_> {
    fn drop(&mut self) {
        self.done();
    }
}

impl Engine {
    /// Starts the callback task (a no-op round while callbacks are off).
    pub fn spawn_callbacks(self: &Arc<Self>) {
        let engine = Arc::downgrade(self);
        let running = Arc::new(Running::default());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(ROUND).await;
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                engine.callback_round(&running).await;
            }
        });
    }

    async fn callback_round(self: &Arc<Self>, running: &Arc<Running>) {
        let table = self.table.guard().clone();
        let cfg = &table.callbacks;
        let Some(q) = cfg.queue.filter(|_| cfg.enabled && self.ports.is_some()) else {
            return;
        };
        let schedule = schedule(&table);
        let now = chrono::Utc::now();
        if self.stopping.load(Ordering::Relaxed)
            || !schedule.in_hours(now)
            || running.seeking.load(Ordering::Relaxed) > 0
        {
            return;
        }
        // Where citizens are dialled; without a carrier trunk nothing is
        // claimed (said once).
        if !table
            .trunks
            .iter()
            .any(|t| t.role == TrunkRole::Carrier && t.target.is_some())
        {
            if !running.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "callbacks are on but no carrier trunk has an address: none is made"
                );
            }
            return;
        }
        let queue = table.queues[q as usize].id.clone();
        if self.dispatch.idle(&queue).await == 0 {
            return;
        }
        let store = self.tickets.clone();
        let due = tokio::task::spawn_blocking(move || store.due_callbacks(now, 20)).await;
        let jobs = match due {
            Ok(Ok(jobs)) => jobs,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "callbacks due not read");
                return;
            }
            Err(_) => return,
        };
        let job = {
            let held = running.tickets.lock().unwrap_or_else(|e| e.into_inner());
            jobs.into_iter().find(|j| !held.contains(&j.ticket_id))
        };
        let Some(job) = job else { return };
        let store = self.tickets.clone();
        let claimed = job.clone();
        let lease = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
        let claim =
            tokio::task::spawn_blocking(move || store.claim_callback(&claimed, lease, now)).await;
        // The job as this gateway holds it (its lease): what it writes
        // back counts only while it still does.
        let Ok(Ok(Some(job))) = claim else {
            return;
        };
        let citizen = {
            let trunks = self.trunks.lock().unwrap_or_else(|e| e.into_inner());
            carrier_targets(&table, &job.number, &|id| trunks.is_up(id))
        };
        running
            .tickets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(job.ticket_id.clone());
        running.seeking.fetch_add(1, Ordering::Relaxed);
        // A queue callback taken up here (retried, or left by a gateway
        // that stopped) has lost its place: it waits as briefly as a 回访.
        let spec = Spec {
            queue,
            line: table.main_line().number.clone(),
            skill: None,
            expert_seats: Vec::new(),
            citizen,
            ring: cfg.ring,
            survey: job.kind == "visit",
            wait_cap: Some(WAIT_CAP),
            arrival: Instant::now(),
        };
        self.place(job, spec, running.clone(), schedule);
    }

    /// A caller who took a callback in its turn (its ticket told): called
    /// back from its queue at its own arrival, so it keeps its place.
    pub(super) fn queue_callback(
        self: &Arc<Self>,
        ticket: String,
        queue: crate::call::queue::QueuePlan,
        arrival: Instant,
    ) {
        let engine = self.clone();
        tokio::spawn(async move {
            let Some(id) = TicketId::parse(&ticket) else {
                return;
            };
            let store = engine.tickets.clone();
            let read = tokio::task::spawn_blocking(move || store.callbacks(&id)).await;
            let job = match read {
                Ok(Ok((jobs, _))) => jobs.into_iter().find(|j| j.kind == "queue"),
                _ => None,
            };
            let Some(job) = job else {
                tracing::warn!(%ticket, "queue callback not found in the store");
                return;
            };
            let table = engine.table.guard().clone();
            let citizen = {
                let trunks = engine.trunks.lock().unwrap_or_else(|e| e.into_inner());
                carrier_targets(&table, &job.number, &|id| trunks.is_up(id))
            };
            let spec = Spec {
                queue: queue.queue,
                line: queue.line,
                skill: queue.skill,
                expert_seats: queue.expert_seats,
                citizen,
                ring: table.callbacks.ring,
                survey: false,
                wait_cap: None,
                arrival,
            };
            // Its own count: a queue callback waiting its turn does not
            // hold back the callbacks of done tickets.
            let running = Arc::new(Running::default());
            running.seeking.fetch_add(1, Ordering::Relaxed);
            engine.place(job, spec, running, schedule(&table));
        });
    }

    /// Places a callback held by this gateway, and records what it came
    /// to once known.
    fn place(self: &Arc<Self>, job: Job, spec: Spec, running: Arc<Running>, schedule: Schedule) {
        let engine = self.clone();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!("callback", id, ticket = %job.ticket_id, kind = %job.kind);
        tokio::spawn(
            async move {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let run = engine.clone();
                let seeking = running.clone();
                let ticket = job.ticket_id.clone();
                let call = tokio::spawn(
                    async move {
                        run.run_callback(id, &ticket, spec, &seeking, tx).await;
                    }
                    .in_current_span(),
                );
                let (outcome, seat) = rx.await.unwrap_or((Outcome::Failed, None));
                engine.callback_done(&job, outcome, seat, &schedule).await;
                let _ = call.await;
                running
                    .tickets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&job.ticket_id);
            }
            .instrument(span),
        );
    }

    /// Records what an attempt came to, with the next one scheduled.
    async fn callback_done(
        &self,
        job: &Job,
        outcome: Outcome,
        seat: Option<String>,
        schedule: &Schedule,
    ) {
        let now = chrono::Utc::now();
        let made = (job.attempts + i64::from(outcome.counts())) as u32;
        let next = schedule.next_attempt(outcome, made, now);
        self.metrics
            .callbacks
            .with_label_values(&[job.kind.as_str(), outcome.as_str()])
            .inc();
        tracing::info!(
            outcome = outcome.as_str(),
            attempt = made,
            seat = seat.as_deref().unwrap_or("-"),
            next = next.map(|t| t.to_rfc3339()).unwrap_or_default(),
            "callback attempt over"
        );
        let store = self.tickets.clone();
        let job = job.clone();
        let written = tokio::task::spawn_blocking(move || {
            store.callback_attempted(&job, outcome, seat.as_deref(), next, now)
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            // The claim's lease runs out and the callback is made again.
            tracing::warn!("callback attempt not recorded; it is tried again after its lease");
        }
    }

    /// One callback's task: its legs, its media, its place in the queue.
    /// `report` gets the outcome as soon as it is known.
    async fn run_callback(
        self: Arc<Self>,
        id: u64,
        ticket: &str,
        spec: Spec,
        running: &Running,
        report: tokio::sync::oneshot::Sender<(Outcome, Option<String>)>,
    ) {
        let mut report = Some(report);
        let mut seeking = Seeking(Some(running));
        let media = self.open_media().await;
        let (session, plan) = match media {
            Ok(Some(m)) => m,
            _ => {
                tracing::warn!("no RTP ports for a callback; tried again soon");
                seeking.done();
                if let Some(r) = report.take() {
                    let _ = r.send((Outcome::NoSeat, None));
                }
                return;
            }
        };
        let mut session = Some(session);
        let settings = {
            let table = self.table.guard();
            crate::call::call::Settings {
                timers: Timers {
                    t1: table.sip.t1,
                    t2: table.sip.t2,
                    t4: table.sip.t4,
                },
                local: self.local.clone(),
                seat_ring: table.sip.seat_ring,
                max_ring: table.sip.max_ring,
                response_timeout: table.sip.response_timeout,
                retry_after: None,
                media: None,
                own_names: Vec::new(),
                queue: None,
                announce: None,
                leader: None,
                queue_callback: None,
            }
        };
        let cb_plan = CallbackPlan {
            ticket: ticket.to_string(),
            queue: spec.queue,
            line: spec.line,
            skill: spec.skill,
            expert_seats: spec.expert_seats,
            arrival: spec.arrival,
            citizen: spec.citizen,
            ring: spec.ring,
            survey: spec.survey,
            rtp: [plan.a_local, plan.b_local],
            wait_cap: spec.wait_cap,
        };
        let (handle, mut rx) = CallHandle::new(id, Peer::udp(([127, 0, 0, 1], 0).into()));
        let mut guard = CallGuard {
            engine: &self,
            call: id,
            busy_seats: Vec::new(),
            // A callback waits in a queue for its seat.
            in_acd: true,
            bound: Vec::new(),
            // Not one of `hotline_active_calls`: the callbacks count.
            counted: true,
            // Nor listed by the control API (see the README).
            unlisted: true,
        };
        // Listed as a call of its own, so shutdown and ICMP errors reach
        // it (its legs' Call-IDs are bound as they are placed).
        let own = format!("callback-{id}@hotline");
        self.calls.bind(own.clone(), handle.clone());
        guard.bound.push(own);
        let (mut cb, mut out) = Callback::start(id, settings, cb_plan, Instant::now());
        let mut recording = false;
        let mut error_rounds = 0;
        loop {
            let mut unreachable: Vec<Peer> = Vec::new();
            for o in out.drain(..) {
                let to = OutputSinks {
                    call: id,
                    handle: &handle,
                    session: &session,
                };
                // A callback has no three-way, leader choice, ticket, seat
                // marks or third party of its own: the rest is dropped.
                let _ = self.carry_out(o, &to, &mut guard.bound, &mut unreachable);
            }
            if !unreachable.is_empty() && error_rounds < 4 {
                error_rounds += 1;
                for peer in unreachable {
                    out.extend(cb.on_transport_error(peer, &self.registrar, Instant::now()));
                }
                continue;
            }
            error_rounds = 0;
            if !out.is_empty() {
                continue;
            }
            handle.sources.store(Arc::new(cb.far_ends()));
            if cb.seat().is_some() {
                seeking.done();
            }
            if !recording && cb.bridged() {
                recording = true;
                if let Some(s) = &session {
                    let name = format!("callback-{ticket}-{id}");
                    self.start_recording(s, Kind::Queue, &name, &[(0, "seat"), (1, "citizen")]);
                }
            }
            if let Some(outcome) = cb.outcome()
                && let Some(r) = report.take()
            {
                let _ = r.send((outcome, cb.seat().map(str::to_string)));
            }
            if cb.is_finished() {
                break;
            }
            let deadline = cb.deadline();
            let now = || Instant::now();
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(Event::Message(event)) => {
                        let (msg, peer) = *event;
                        out = cb.on_message(msg, peer, &self.registrar, now());
                    }
                    Some(Event::Unreachable(addr)) => {
                        out = cb.on_unreachable(*addr, &self.registrar, now());
                    }
                    Some(Event::Terminate | Event::Hangup) => {
                        out = cb.terminate(&self.registrar, now())
                    }
                    Some(Event::Acd(cmd)) => out = cb.on_acd(*cmd, &self.registrar, now()),
                    Some(Event::Ticket(_)) => {}
                    Some(Event::Command(c)) => {
                        let (_, reply) = *c;
                        let _ = reply.send(Err("a callback takes no hand-off".into()));
                    }
                    Some(Event::Consult(c)) => {
                        let (msg, peer, _) = *c;
                        self.reply(&msg, peer, 486, "Busy Here (no consultation during a callback)");
                    }
                    None => break,
                },
                _ = sleep_until(deadline) => out = cb.on_timer(&self.registrar, now()),
                ev = media_event(&mut session) => match ev {
                    Some(MediaEvent::Digit { leg, digit }) => {
                        self.digit(leg, digit, "rtp");
                        out = cb.on_digit(leg, digit, &self.registrar, now());
                    }
                    Some(MediaEvent::MediaTimeout { leg }) => {
                        self.metrics.media_timeouts.inc();
                        out = cb.on_media_timeout(leg, &self.registrar, now());
                    }
                    Some(MediaEvent::PromptDone { leg }) => {
                        out = cb.on_prompt_done(leg, &self.registrar, now());
                    }
                    // A callback listens for no spoken request.
                    Some(MediaEvent::Quiet { .. }) => {}
                    None => session = None,
                },
            }
        }
        seeking.done();
        if let Some(r) = report.take() {
            let _ = r.send((
                cb.outcome().unwrap_or(Outcome::Failed),
                cb.seat().map(str::to_string),
            ));
        }
    }
}

/// When callbacks are made, from the table.
pub(super) fn schedule(table: &Table) -> Schedule {
    let cfg = &table.callbacks;
    Schedule {
        tz: table.calendar.timezone(),
        start: cfg.start,
        end: cfg.end,
        retry: cfg.retry,
        max_attempts: cfg.max_attempts,
    }
}

/// Where a citizen is dialled: the first carrier trunk and its alternates.
fn carrier_targets(
    table: &Table,
    number: &str,
    trunk_up: &impl Fn(&str) -> bool,
) -> Vec<crate::call::call::Target> {
    table
        .trunks
        .iter()
        .find(|t| t.role == TrunkRole::Carrier)
        .map(|t| trunk_chain(table, t, number, trunk_up))
        .unwrap_or_default()
}
