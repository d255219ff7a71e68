//! The routing loop: every SIP message the sockets receive comes here.
//!
//! A message is parsed once, counted, and either answered on the spot
//! (OPTIONS, REGISTER, errors) or handed to its call's task by Call-ID
//! through a concurrent map — no lock is held across an `.await`, and no
//! global lock sits between a datagram and its routing decision: the table
//! is read through its atomic snapshot. Each call runs as its own task
//! owning a sans-I/O [`Call`], so one call's events are handled in order
//! and a slow or broken call never holds up another.

use super::call::FarEnds;
use super::call::{ALLOW, Call, MediaPlan, Outcome, Output, Rejection, Settings, Target};
use super::calls::{CallHandle, Calls, Event, Inbox, Undelivered};
use super::dispatch::{Dispatch, Input as AcdInput};
use super::queue::{QueuePlan, ToAcd};
use super::registrar::{RegisterError, Registrar, Update};
use super::remains::{Answer, Remains};
use super::trunks::{PROBE_CALL_ID_PREFIX, ProbePolicy, TrunkMonitor};
use crate::config::SharedTable;
use crate::media::dtmf::Digit;
use crate::media::prompt::{Item, Playlist, PromptLibrary};
use crate::media::rtp::PortPool;
use crate::media::session::{Event as MediaEvent, SessionHandle};
use crate::metrics::Metrics;
use crate::routing::{self, Kind, Table, TrunkRole};
use crate::sip::digest::{Algorithm, AuthError, Authenticator, FailureThrottle, ThrottlePolicy};
use crate::sip::message::{Message, Method, Name, NameAddr, uri_number};
use crate::sip::transaction::Timers;
use crate::sip::transport::{Peer, Sink, Transport};
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tracing::Instrument;

pub struct Engine {
    table: SharedTable,
    metrics: Arc<Metrics>,
    transport: Transport,
    pub registrar: Arc<Registrar>,
    /// The ACD's task: queues and seat states.
    dispatch: Dispatch,
    auth: Authenticator,
    throttle: Mutex<FailureThrottle>,
    recent_registers: Mutex<RecentReplies>,
    /// Call-ID → the call's task. A call is listed under each of its legs'
    /// Call-IDs; `primary` marks the caller's, so each call counts once.
    calls: Calls,
    next_id: AtomicU64,
    /// `host:port` we write in Via and Contact.
    local: String,
    /// RTP ports, when media is anchored.
    ports: Option<Arc<PortPool>>,
    /// Swapped whole on reload; a call holds the library it started with.
    prompts: arc_swap::ArcSwapOption<PromptLibrary>,
    media_timeout: Duration,
    /// Which trunks are up (OPTIONS probes, ICMP errors).
    trunks: Mutex<TrunkMonitor>,
    /// Lines a remote party can cause, at most one per kind and source
    /// every 10 s.
    log_limit: crate::log_limit::LogLimiter,
    /// Callback tickets (a leader session's caller who would not wait).
    tickets: Arc<dyn crate::tickets::Store>,
    /// Shutting down: no new callback is placed.
    stopping: std::sync::atomic::AtomicBool,
    /// The live picture for the control API: calls and the event stream.
    pub ops: Arc<crate::ops::Hub>,
    /// Call records, written in batches on a thread of their own.
    records: crate::records::Writer,
    this: Weak<Engine>,
}

impl Engine {
    pub fn new(
        table: SharedTable,
        metrics: Arc<Metrics>,
        transport: Transport,
        local: String,
        tickets: Arc<dyn crate::tickets::Store>,
    ) -> Arc<Engine> {
        let realm = table.guard().sip.realm.clone();
        let media = table.guard().media.clone();
        let ports = media.anchor.then(|| {
            let ip = media
                .rtp_address
                .or_else(|| local.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
                .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
            PortPool::with_gauge(
                ip,
                media.rtp_ports.0,
                media.rtp_ports.1,
                metrics.rtp_ports_free.clone(),
            )
        });
        let prompts_dir = table.guard().prompts_dir.clone();
        let prompts = match PromptLibrary::load(&prompts_dir) {
            Ok(lib) => Some(Arc::new(lib)),
            Err(e) => {
                tracing::error!(error = %e, "prompts not loaded; calls get no early media");
                None
            }
        };
        let monitor = {
            let t = table.guard();
            TrunkMonitor::new(&t.trunks, probe_policy(&t), random_salt(), Instant::now())
        };
        for trunk in &table.guard().trunks {
            metrics.trunk_up.with_label_values(&[&trunk.id]).set(1);
        }
        let registrar = Arc::new(Registrar::new());
        let ops = Arc::new(crate::ops::Hub::default());
        let records = {
            let table = table.clone();
            crate::records::Writer::spawn(
                tickets.clone(),
                move || table.guard().records_jsonl.clone(),
                metrics.records_failed.clone(),
            )
        };
        let dispatch = super::dispatch::spawn(
            table.clone(),
            registrar.clone(),
            metrics.clone(),
            ops.clone(),
        );
        Arc::new_cyclic(|this| Engine {
            trunks: Mutex::new(monitor),
            log_limit: crate::log_limit::LogLimiter::new(Duration::from_secs(10), 4096),
            ports,
            prompts: arc_swap::ArcSwapOption::new(prompts),
            media_timeout: media.media_timeout,
            table,
            metrics,
            transport,
            registrar,
            dispatch,
            auth: Authenticator::with_random_secret(realm, Duration::from_secs(300)),
            throttle: Mutex::new(FailureThrottle::new(ThrottlePolicy::default())),
            recent_registers: Mutex::new(RecentReplies::default()),
            calls: Calls::default(),
            next_id: AtomicU64::new(1),
            local,
            tickets,
            stopping: std::sync::atomic::AtomicBool::new(false),
            records,
            ops,
            this: this.clone(),
        })
    }

    /// The ACD's task, for the control API.
    pub fn dispatch(&self) -> Dispatch {
        self.dispatch.clone()
    }

    /// Reads the prompts again (on SIGHUP or a table reload). A library
    /// that does not load is refused with the file and the reason, and the
    /// running one stays.
    pub fn reload_prompts(&self) {
        let dir = self.table.guard().prompts_dir.clone();
        match PromptLibrary::load(&dir) {
            Ok(lib) => {
                tracing::info!(dir = %dir.display(), prompts = lib.len(), "prompts reloaded");
                self.prompts.store(Some(Arc::new(lib)));
            }
            Err(e) => tracing::error!(error = %e, "prompts not reloaded; the running prompts stay"),
        }
    }

    /// Whether to log an event a remote party caused: `Some(held back
    /// since the last such line)`, or `None` to stay quiet.
    fn quiet(&self, kind: &'static str, peer: Peer) -> Option<u64> {
        self.log_limit.check(kind, peer.addr.ip(), Instant::now())
    }

    /// Summary lines for what the log limiter held back.
    fn log_held_back(&self, now: Instant) {
        for held in self.log_limit.flush(now) {
            let from = held
                .source
                .map_or_else(|| "many sources".to_string(), |ip| ip.to_string());
            tracing::info!(kind = held.kind, from = %from, count = held.count, "similar log lines held back");
        }
    }

    fn lock_trunks(&self) -> std::sync::MutexGuard<'_, TrunkMonitor> {
        self.trunks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn trunk_changed(&self, change: &super::trunks::Change) {
        self.metrics
            .trunk_up
            .with_label_values(&[&change.trunk])
            .set(i64::from(change.up));
        if change.up {
            tracing::info!(trunk = %change.trunk, reason = change.reason, "trunk up");
        } else {
            tracing::warn!(trunk = %change.trunk, reason = change.reason, "trunk down; calls skip it");
        }
    }

    /// Probes the trunks with OPTIONS for as long as the daemon runs, and
    /// follows the table's trunks across reloads; logs the end of
    /// authentication blocks as they run out.
    pub fn spawn_trunk_probes(self: &Arc<Self>) {
        let engine = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut table_seen: Option<Arc<Table>> = None;
            loop {
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                let now = Instant::now();
                let table = engine.table.guard().clone();
                if table_seen.as_ref().is_none_or(|t| !Arc::ptr_eq(t, &table)) {
                    // A trunk gone from the table leaves no stale series.
                    for old in table_seen.iter().flat_map(|t| t.trunks.iter()) {
                        if table.trunk(&old.id).is_none() {
                            let _ = engine.metrics.trunk_up.remove_label_values(&[&old.id]);
                        }
                    }
                    engine
                        .lock_trunks()
                        .reconfigure(&table.trunks, probe_policy(&table), now);
                    engine.transport.set_trusted_sources(
                        table
                            .trunks
                            .iter()
                            .flat_map(|t| t.sources.clone())
                            .collect(),
                    );
                    for t in &table.trunks {
                        let up = engine.lock_trunks().is_up(&t.id);
                        engine
                            .metrics
                            .trunk_up
                            .with_label_values(&[&t.id])
                            .set(i64::from(up));
                    }
                    table_seen = Some(table);
                }
                engine.log_ended_blocks(now);
                engine.log_held_back(now);
                engine.sweep_finished(now);
                let (probes, changes) = engine.lock_trunks().poll(now);
                for change in &changes {
                    engine.trunk_changed(change);
                }
                for probe in probes {
                    engine.send_probe(&probe);
                }
                // Woken at the next probe, and at least every second for
                // a reload.
                let next = engine
                    .lock_trunks()
                    .deadline()
                    .unwrap_or(now + Duration::from_secs(1))
                    .min(now + Duration::from_secs(1));
                drop(engine);
                tokio::time::sleep_until(next.into()).await;
            }
        });
    }

    fn send_probe(&self, probe: &super::trunks::Probe) {
        let tag = format!("{:08x}", random_salt() as u32);
        let branch = format!("z9hG4bK{:016x}", random_salt());
        let mut options = Message::request(Method::Options, probe.uri.clone());
        options
            .push(
                Name::Via,
                format!("SIP/2.0/UDP {};branch={branch};rport", self.local),
            )
            .push(Name::MaxForwards, "70")
            .push(
                Name::From,
                format!("<sip:hotline@{}>;tag={tag}", self.local),
            )
            .push(Name::To, format!("<{}>", probe.uri))
            .push(Name::CallId, probe.call_id.clone())
            .push(Name::CSeq, "1 OPTIONS")
            .push(Name::Other("Accept".into()), "application/sdp");
        if !self.transport.send(Peer::udp(probe.addr), options.encode()) {
            self.unreachable(probe.addr);
        }
    }

    /// Nothing listens at `addr` (an ICMP error, §18.4): its trunks are
    /// down, and every call with a leg there hears of it at once.
    fn unreachable(&self, addr: std::net::SocketAddr) {
        tracing::debug!(to = %addr, "ICMP: unreachable");
        let changes = self.lock_trunks().on_unreachable(addr);
        for change in &changes {
            self.trunk_changed(change);
        }
        // Only the calls with a leg there: a forged ICMP flood must not
        // crowd every call's queue.
        for call in self
            .calls
            .primaries(|h| h.sources.load().addrs.contains(&addr))
        {
            call.notify(Event::Unreachable(Box::new(addr)));
        }
    }

    /// Asks every call to end cleanly: callers still being connected get
    /// 503, ringing seats a CANCEL, connected calls a BYE on both legs.
    /// Returns once the messages have had a moment to leave.
    pub async fn shutdown(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        let mut asked = 0;
        for call in self.calls.primaries(|_| true) {
            if call.notify(Event::Terminate) {
                asked += 1;
            }
        }
        if asked > 0 {
            tracing::info!(calls = asked, "ending calls in progress");
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        // The records of the calls just ended, written before exit.
        if !self.records.drain(Duration::from_secs(5)).await {
            tracing::warn!("call records still unwritten at exit");
        }
    }

    /// Hands a message to its call's task; a UDP message beyond the
    /// call's backlog is dropped (its sender retransmits), logged and
    /// counted.
    fn deliver(&self, call: &CallHandle, msg: Message, peer: Peer) {
        match call.deliver(msg, peer) {
            Ok(()) => {}
            Err(Undelivered::Backlog) => {
                self.metrics.sip_call_backlog_drops.inc();
                if let Some(suppressed) = self.quiet("queue_full", peer) {
                    tracing::warn!(call = call.call, from = %peer.addr, suppressed, "call queue full; UDP message dropped");
                }
            }
            // The call's task has just left its remains (or ended): they
            // answer, if anything is left to answer.
            Err(Undelivered::Gone(m)) => self.after_the_call(m.0, peer),
        }
    }

    /// A message that reached a call's task too late: the call's remains
    /// answer it, and a new call under the same Call-ID (an INVITE that is
    /// none of the old call's) starts as any new call does (the old call's
    /// entries are gone from the table before its queue closes).
    fn after_the_call(&self, msg: Message, peer: Peer) {
        let now = Instant::now();
        let Some(id) = msg.call_id() else { return };
        let handled = match self.calls.finished(id.as_str(), now) {
            Some(remains) => self.answer_finished(&remains, &msg, peer, now),
            None => false,
        };
        // Only while no call holds the Call-ID: a call that holds it now
        // took this INVITE already (its sender retransmits otherwise).
        if !handled
            && msg.method() == Some(&Method::Invite)
            && msg.to().is_none_or(|t| t.tag().is_none())
            && self.calls.get(id.as_str()).is_none()
        {
            self.new_call(msg, peer);
        }
    }

    /// A message for a finished call, answered from its remains. `false`
    /// when it is not the finished call's at all (a new INVITE under the
    /// same Call-ID).
    fn answer_finished(&self, remains: &Remains, msg: &Message, peer: Peer, now: Instant) -> bool {
        if msg.is_request() && !self.is_far_end(&remains.sources, peer) {
            self.metrics.sip_foreign_requests.inc();
            if let Some(suppressed) = self.quiet("foreign_request", peer) {
                tracing::info!(from = %peer.addr, suppressed, "request for a call from none of its far ends; dropped");
            }
            return true;
        }
        match remains.answer(msg, peer, now) {
            Answer::Send(to, bytes) => {
                let _ = self.transport.send(to, bytes);
            }
            Answer::Absorbed => {}
            Answer::NoDialog => self.reply(msg, peer, 481, "Call/Transaction Does Not Exist"),
            Answer::NotOurs => return false,
        }
        true
    }

    /// Whether a request for a call comes from one of its far ends: over
    /// TCP the host (the port is the connection's), a trunk from any of
    /// its sources; a seat may send from where it registers now.
    fn is_far_end(&self, sources: &FarEnds, peer: Peer) -> bool {
        sources.admits(peer) || self.registrar.seat_at(peer.addr, Instant::now()).is_some()
    }

    fn send(&self, peer: Peer, msg: &Message) {
        let _ = self.transport.send(peer, msg.encode());
    }

    fn reply(&self, req: &Message, peer: Peer, code: u16, reason: &str) {
        self.send(peer, &self.response(req, code, reason));
    }

    /// Our answer to a request outside any call.
    fn response(&self, req: &Message, code: u16, reason: &str) -> Message {
        let mut resp = req.response(code, reason, Some(&response_tag()));
        if code == 405 || code == 501 || (code == 200 && req.method() == Some(&Method::Options)) {
            resp.push(Name::Allow, ALLOW);
        }
        resp
    }

    fn handle(&self, bytes: Bytes, peer: Peer) {
        // CRLF keep-alives (RFC 5626 §3.5.1) are not messages.
        if bytes.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            return;
        }
        let msg = match Message::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.metrics.sip_parse_errors.inc();
                if let Some(suppressed) = self.quiet("malformed", peer) {
                    tracing::info!(from = %peer.addr, reason = e.reason, suppressed, "malformed SIP message");
                }
                if let Some(resp) = e.response {
                    self.send(peer, &resp);
                }
                return;
            }
        };
        match msg.method() {
            Some(m) => self
                .metrics
                .sip_requests
                .with_label_values(&[m.metric_label()])
                .inc(),
            None => {
                let code = msg.code().unwrap_or(0);
                let mut buf = [0u8; 3];
                let label = code_label(code, &mut buf);
                self.metrics.sip_responses.with_label_values(&[label]).inc();
            }
        }
        let mut msg = msg;
        if msg.is_request() {
            stamp_received(&mut msg, peer);
        }
        let Some(call_id) = msg.call_id().cloned() else {
            return;
        };
        // An existing call: its task takes it from here. A request must
        // come from one of the call's far ends (address and port): one from
        // anywhere else is dropped here, before it can take a place in the
        // call's queue (a flood of spoofed BYEs must not crowd out the real
        // one). Responses are matched by their unguessable branch.
        if let Some(call) = self.calls.get(call_id.as_str()) {
            let sources = call.sources.load();
            if msg.is_request() && !self.is_far_end(&sources, peer) {
                self.metrics.sip_foreign_requests.inc();
                if let Some(suppressed) = self.quiet("foreign_request", peer) {
                    tracing::info!(from = %peer.addr, suppressed, "request for a call from none of its far ends; dropped");
                }
                return;
            }
            self.deliver(&call, msg, peer);
            return;
        }
        // A finished call whose transactions linger: its remains answer
        // here, on the receiving thread.
        let now = Instant::now();
        if let Some(remains) = self.calls.finished(call_id.as_str(), now)
            && self.answer_finished(&remains, &msg, peer, now)
        {
            return;
        }
        let Some(method) = msg.method().cloned() else {
            if call_id.starts_with(PROBE_CALL_ID_PREFIX) {
                let code = msg.code().unwrap_or(0);
                let change = self.lock_trunks().on_response(call_id.as_str(), code);
                if let Some(change) = change {
                    self.trunk_changed(&change);
                }
            }
            return; // a response for no call of ours: stray or late
        };
        let in_dialog = msg.to().is_some_and(|t| t.tag().is_some());
        match method {
            Method::Invite if !in_dialog => self.new_call(msg, peer),
            Method::Ack => {} // for nothing we know: absorbed (§17.2.3)
            Method::Options if !in_dialog => self.reply(&msg, peer, 200, "OK"),
            Method::Register => self.register(&msg, peer),
            Method::Other(_) => self.reply(&msg, peer, 501, "Not Implemented"),
            Method::Invite
            | Method::Bye
            | Method::Cancel
            | Method::Info
            | Method::Update
            | Method::Options
            | Method::Prack => self.reply(&msg, peer, 481, "Call/Transaction Does Not Exist"),
            _ => self.reply(&msg, peer, 405, "Method Not Allowed"),
        }
    }

    fn new_call(&self, msg: Message, peer: Peer) {
        let mut table = self.table.guard();
        let trunk_source = table
            .trunks
            .iter()
            .any(|t| t.admits(peer.addr, peer.is_reliable()));
        // A seat's own call: from a registered seat's address, or from a
        // trunk's address but in a seat's name (a seat behind the carrier's
        // SBC). Either way it must authenticate like REGISTER; trust by IP
        // is for trunks only.
        let from_user = msg.from().and_then(|f| uri_number(f.uri));
        let named_seat = from_user
            .as_deref()
            .filter(|u| table.seats.iter().any(|s| s.id == *u))
            .map(str::to_string);
        let seat = if trunk_source {
            named_seat
        } else {
            named_seat.or_else(|| self.registrar.seat_at(peer.addr, Instant::now()))
        };
        if !trunk_source && seat.is_none() {
            self.metrics.untrusted_invites.inc();
            if let Some(suppressed) = self.quiet("untrusted_invite", peer) {
                tracing::info!(from = %peer.addr, suppressed, "INVITE from an address that is no configured trunk");
            }
            // For fail2ban only over TCP: a UDP source is forged for the
            // price of one packet, and a ban on it (a trunk, the
            // monitoring host) would be the attacker's. Never a trunk's
            // address (one that came on the wrong transport or port). Its
            // own limit, apart from the ordinary line's.
            let a_trunks = table
                .trunks
                .iter()
                .any(|t| t.sources.contains(&peer.addr.ip()));
            if peer.is_reliable() && !a_trunks && self.quiet("security_invite", peer).is_some() {
                crate::log_limit::security("untrusted_invite", peer.addr.ip());
            }
            self.reply(&msg, peer, 403, "Forbidden (not a configured trunk)");
            return;
        }
        // An INVITE-with-Replaces (RFC 3891) is never taken: a transfer's
        // dialogs all end here, and the gateway joins them itself; from a
        // trunk it could take over a caller's call.
        let replaces = msg.headers.iter().any(
            |h| matches!(&h.name, Name::Other(o) if o.as_str().eq_ignore_ascii_case("replaces")),
        );
        if replaces {
            tracing::info!(from = %peer.addr, "INVITE with Replaces refused");
            self.reply(
                &msg,
                peer,
                403,
                "Forbidden (INVITE with Replaces is not taken)",
            );
            return;
        }
        if let Some(seat) = &seat {
            drop(table);
            if let Err(resp) = self.authenticate_seat(&msg, peer, seat, Challenge::Proxy) {
                self.send(peer, &resp);
                return;
            }
            table = self.table.guard();
        }
        if msg
            .header(&Name::MaxForwards)
            .is_some_and(|v| v.as_str() == "0")
        {
            self.reply(&msg, peer, 483, "Too Many Hops");
            return;
        }
        // §8.2.2.3: we support no extension a caller may require (100rel,
        // timer, ...): 420 naming them, rather than ignoring the demand.
        let required: Vec<String> = msg
            .headers_named(&Name::Require)
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        if !required.is_empty() {
            let mut resp = msg.response(420, "Bad Extension", Some(&response_tag()));
            resp.push(Name::Other("Unsupported".into()), required.join(", "));
            self.send(peer, &resp);
            return;
        }
        let dialed = msg
            .request_uri()
            .and_then(|u| uri_number(u))
            .or_else(|| msg.to().and_then(|t| uri_number(t.uri)))
            .unwrap_or_default();
        let caller = msg.from().and_then(|f| uri_number(f.uri));
        // A seat's feature codes (*51 pause, *50 resume): the ACD is told,
        // the seat hears it is done.
        let feature = seat.as_ref().and_then(|seat| {
            let (input, prompt) = if dialed == table.acd.pause_code {
                let reason = "phone".to_string();
                (
                    AcdInput::Pause {
                        seat: seat.clone(),
                        reason,
                    },
                    "seat_paused",
                )
            } else if dialed == table.acd.resume_code {
                (AcdInput::Resume { seat: seat.clone() }, "seat_resumed")
            } else {
                return None;
            };
            Some((input, prompt))
        });
        // A seat on a call that calls out again is consulting before a
        // transfer: its INVITE goes to that call, which holds both of its
        // dialogs (and so can join caller and target itself).
        // (Only a call the seat is bridged to that would take it: a seat
        // merely rung for a call places its calls as any seat does.)
        if feature.is_none()
            && let Some(seat) = &seat
            && let Some(holder) = self.registrar.bridged_to(seat)
            && let Some(call) = self.calls.primaries(|h| h.call == holder).pop()
            && call.notify(Event::Consult(Box::new((msg.clone(), peer, seat.clone()))))
        {
            tracing::info!(seat = %seat, dialed = %dialed, "a seat on a call consults; given to its call");
            return;
        }
        let decision = routing::route(&table, &dialed, caller.as_deref(), chrono::Utc::now());
        let mut kind = decision.kind;
        let line = decision.line.unwrap_or("unknown").to_string();
        let decision_unit = decision.unit.map(str::to_string);
        let mut announce = None;
        let mut feature_input = None;
        let (targets, no_target, queue) = if let Some((input, prompt)) = feature {
            tracing::info!(seat = seat.as_deref().unwrap_or("-"), code = %dialed, "feature code");
            feature_input = Some(input);
            kind = Kind::Direct;
            announce = Some(vec![Item::prompt(prompt)]);
            (
                Vec::new(),
                Rejection::new(480, "Temporarily Unavailable", Outcome::Unavailable),
                None,
            )
        } else if seat.is_some()
            && decision.kind == Kind::Reject
            && table.seats.iter().any(|s| s.id == dialed)
        {
            // Seat to seat. Beyond that a seat reaches only what the table
            // routes (its lines, emergency numbers): no number outside it,
            // so a seat can never be used to call out.
            kind = Kind::Direct;
            (
                vec![Target::Seat { id: dialed.clone() }],
                Rejection::new(
                    486,
                    format!("Busy Here (seat {dialed} is busy)"),
                    Outcome::Unavailable,
                ),
                None,
            )
        } else {
            let trunks = self.trunks.lock().unwrap_or_else(|e| e.into_inner());
            let (targets, no_target) = targets_for(&table, &decision, &line, |id| trunks.is_up(id));
            (
                targets,
                no_target,
                QueuePlan::for_decision(&table, &decision, &line),
            )
        };
        // Say what is true: busy seats are not the same as none logged in.
        let now = Instant::now();
        let only_seats =
            !targets.is_empty() && targets.iter().all(|t| matches!(t, Target::Seat { .. }));
        let no_target = if only_seats
            && !targets
                .iter()
                .any(|t| matches!(t, Target::Seat { id } if self.registrar.is_registered(id, now)))
        {
            let why = match targets.as_slice() {
                [Target::Seat { id }] if seat.is_some() => format!("seat {id} is not logged in"),
                _ => format!("no seat for {line} is logged in"),
            };
            Rejection::new(
                480,
                format!("Temporarily Unavailable ({why})"),
                Outcome::Unavailable,
            )
        } else {
            no_target
        };

        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!("call", id, kind = kind.as_str(), line = %line);
        let _enter = span.enter();
        // One line at info per call, when it ends ("call ended", with what
        // this one would say); the steps between are debug.
        tracing::debug!(from = %peer.addr, dialed = %dialed, caller = caller.as_deref().unwrap_or("-"), "new call");
        let settings = Settings {
            timers: Timers {
                t1: table.sip.t1,
                t2: table.sip.t2,
                t4: table.sip.t4,
            },
            local: self.local.clone(),
            seat_ring: table.sip.seat_ring,
            max_ring: table.sip.max_ring,
            response_timeout: table.sip.response_timeout,
            retry_after: (kind == Kind::Emergency).then_some(table.sip.emergency_retry_after),
            media: None,
            own_names: vec![table.sip.realm.clone()],
            queue,
            announce,
            leader: None,
            queue_callback: None,
        };
        let Some(a_call_id) = msg.call_id().map(|c| c.to_string()) else {
            return;
        };
        let mut settings = settings;
        if decision.kind == Kind::LeaderSession {
            settings.leader = Some(Box::new(leader_plan(
                &table, &decision, &msg, &dialed, &line, &a_call_id, id,
            )));
        }
        // A queue that offers callbacks in turn: the ticket a caller taking
        // one would store (no spoken request; not a unit's item).
        let offers_callback = settings.queue.as_ref().is_some_and(|q| {
            table.queues.iter().any(|x| {
                let later = |o: &routing::QueueOverflow| *o == routing::QueueOverflow::Callback;
                x.id == q.queue
                    && (x.callback_offer_after.is_some()
                        || later(&x.overflow)
                        || later(&x.join_empty)
                        || later(&x.exit_action))
            })
        });
        // Only where one can be made: anchored media, a carrier trunk.
        let can_call_back = self.ports.is_some()
            && table
                .trunks
                .iter()
                .any(|t| t.role == TrunkRole::Carrier && t.target.is_some());
        if offers_callback && can_call_back {
            let mut plan = leader_plan(&table, &decision, &msg, &dialed, &line, &a_call_id, id);
            plan.draft.kind = crate::tickets::model::Kind::QueueCallback;
            plan.draft.tag = "预约回电".into();
            plan.draft.session = None;
            plan.dialogue.message = Duration::ZERO;
            plan.dialogue.promise = Some(crate::tickets::dialogue::prompts::IN_TURN);
            plan.session_ends = None;
            plan.end_ticket = false;
            plan.end_queue = None;
            settings.queue_callback = Some(Box::new(plan));
        }
        drop(table);
        // Nothing is listed before the task can run: a daemon shutting
        // down leaves no entry and no count behind.
        let Some(engine) = self.this.upgrade() else {
            return;
        };
        let (handle, inbox) = CallHandle::new(id, peer);
        if let Err(existing) = self.calls.claim(&a_call_id, handle.clone()) {
            // Another worker started this call a moment ago (the INVITE
            // was retransmitted): it is that call's retransmission.
            drop(_enter);
            self.deliver(&existing, msg, peer);
            return;
        }
        // A seat on a call of its own (a feature code's included: it
        // hears its prompt first), or rung by another seat, is not offered
        // queue calls meanwhile.
        let mut busy_seats: Vec<String> = seat.iter().cloned().collect();
        for t in &targets {
            if let Target::Seat { id } = t {
                busy_seats.push(id.clone());
            }
        }
        for seat in &busy_seats {
            self.dispatch.send(AcdInput::SeatBusy {
                seat: seat.clone(),
                call: id,
            });
        }
        // After the busy mark: a resumed seat is offered its next caller
        // once its own call (the prompt) is over, not in the middle of it.
        if let Some(input) = feature_input {
            self.dispatch.send(input);
        }
        let start = CallStart {
            id,
            busy_seats,
            settings,
            invite: msg,
            peer,
            targets,
            no_target,
        };
        self.metrics.active_calls.inc();
        drop(_enter);
        let labels = CallLabels {
            from: peer.addr,
            kind,
            line: metric_line(&engine.table.guard(), &line),
            view: crate::ops::CallView {
                id,
                call_id: a_call_id.clone(),
                caller: caller.clone(),
                dialed: dialed.clone(),
                line: line.clone(),
                kind: kind.as_str(),
                origin: if seat.is_some() { "seat" } else { "trunk" },
                unit: decision_unit,
                started: chrono::Utc::now(),
                now: crate::ops::CallState {
                    state: "setup",
                    queue: None,
                    seat: None,
                    handoff: None,
                    legs: Vec::new(),
                    answered: None,
                },
            },
        };
        // The call's future itself, not wrapped in another async block:
        // a wrapper would keep its own copy of every argument for the
        // call's whole life (a task's memory is its largest future).
        tokio::spawn(
            engine
                .run_call(Box::new(start), a_call_id, handle, inbox, labels)
                .instrument(span),
        );
    }

    /// Ports for both legs and the session that owns them, if anchoring.
    async fn open_media(
        &self,
    ) -> Result<Option<(SessionHandle, MediaPlan)>, crate::media::rtp::MediaError> {
        let Some(pool) = self.ports.as_ref() else {
            return Ok(None);
        };
        // Both or neither: a call is never half anchored, nor silently let
        // past the gateway (it would lose its prompts and recording).
        let (a, b) = (pool.allocate().await?, pool.allocate().await?);
        let prompts = self.prompts.load_full();
        let counters = crate::media::session::Counters {
            received: Some(self.metrics.rtp_packets.with_label_values(&["received"])),
            sent: Some(self.metrics.rtp_packets.with_label_values(&["sent"])),
            rejected: Some(self.metrics.rtp_packets.with_label_values(&["rejected"])),
        };
        let session =
            crate::media::session::start_counted(vec![a, b], self.media_timeout, counters);
        let hold = prompts
            .as_ref()
            .and_then(|lib| Playlist::new(lib, [Item::looping("hold_music")]).ok());
        let plan = MediaPlan {
            a_local: session.locals[0],
            b_local: session.locals[1],
            early: None,
            hold,
            streams: Some(Arc::new(MoreStreams {
                pool: pool.clone(),
                adder: session.stream_adder(),
            })),
        };
        Ok(Some((session, plan)))
    }

    /// Records the call when the table says so: every anchored call, or
    /// those during a leader session (热线问政, recorded for publication).
    /// One WAV per leg; a recording that fails never affects the call.
    /// `streams`: each stream recorded, with the leg's name in its file
    /// (`caller`, `far`, a three-way party's).
    fn start_recording(
        &self,
        session: &SessionHandle,
        kind: Kind,
        call_id: &str,
        streams: &[(usize, &str)],
    ) -> Vec<std::path::PathBuf> {
        let table = self.table.guard();
        let Some(rec) = &table.media.recordings else {
            return Vec::new();
        };
        if !(rec.all_calls || kind == Kind::LeaderSession) {
            return Vec::new();
        }
        let now = chrono::Utc::now().with_timezone(&table.calendar.timezone());
        let paths: Vec<(usize, std::path::PathBuf)> = streams
            .iter()
            .map(|&(stream, leg)| {
                let path =
                    crate::media::recorder::recording_path(&rec.dir, &rec.name, call_id, &now, leg);
                (stream, path)
            })
            .collect();
        let files = paths.iter().map(|(_, p)| p.clone()).collect();
        session.send(crate::media::session::Command::Record {
            dir: rec.dir.clone(),
            paths,
        });
        files
    }

    /// A leader session's call, once over, in the session's folder for
    /// publication: the two legs mixed into one WAV (when the leader
    /// answered it) and a line of the session's index, on a blocking
    /// thread (it waits for the recordings to be finished).
    fn publish_session_call(
        &self,
        call: &Call,
        leader: &Option<(Option<crate::tickets::model::SessionRef>, String)>,
        started: chrono::DateTime<chrono::Utc>,
        recorded: &[std::path::PathBuf],
    ) {
        use crate::media::publication::{self, Entry, SessionInfo};
        let Some((session, caller)) = leader else {
            return;
        };
        let table = self.table.guard();
        let Some(rec) = &table.media.recordings else {
            return;
        };
        let tz = table.calendar.timezone();
        let local = started.with_timezone(&tz);
        let info = SessionInfo {
            date: session
                .as_ref()
                .map_or_else(|| local.date_naive().to_string(), |s| s.date.to_string()),
            unit: session.as_ref().and_then(|s| s.unit.clone()),
            leader: session.as_ref().and_then(|s| s.leader.clone()),
            title: session.as_ref().and_then(|s| s.title.clone()),
        };
        let dir = publication::session_dir(&rec.dir, &info);
        let call_name = format!("{}", call.id);
        // Recorded from the answer on: the leader answered it.
        let mixed = (recorded.len() >= 2)
            .then(|| publication::mix_name(&local.format("%H%M%S").to_string(), &call_name));
        let entry = Entry {
            call: call_name,
            caller: crate::tickets::model::mask(caller),
            started: local.to_rfc3339(),
            ended: chrono::Utc::now().with_timezone(&tz).to_rfc3339(),
            seat: call.seat().map(str::to_string),
            ticket: call.ticket().map(str::to_string),
            recording: mixed.clone(),
        };
        let legs = recorded.to_vec();
        tokio::task::spawn_blocking(move || {
            if let Some(name) = &mixed
                && let Err(e) = publication::mix(&legs[0], &legs[1], &dir.join(name))
            {
                tracing::warn!(error = %e, "session recording not mixed");
            }
            if let Err(e) = publication::add_to_index(&dir, &info, entry) {
                tracing::warn!(error = %e, "session index not written");
            }
        });
    }

    async fn run_call(
        self: Arc<Self>,
        // Boxed: an argument's place in the future lasts as long as the
        // future, and the start is taken apart at once.
        start: Box<CallStart>,
        a_call_id: String,
        handle: CallHandle,
        mut rx: Inbox,
        labels: CallLabels,
    ) {
        let CallStart {
            id,
            busy_seats,
            mut settings,
            invite,
            peer,
            targets,
            no_target,
        } = unbox(start);
        // Whatever ends this task — the call, the linger cap, a panic —
        // the guard frees its seats and its entries.
        let mut guard = CallGuard {
            engine: &self,
            call: id,
            in_acd: !busy_seats.is_empty(),
            busy_seats,
            bound: vec![a_call_id],
            counted: false,
            unlisted: false,
        };
        let mut session = None;
        let (mut targets, mut no_target) = (targets, no_target);
        if !invite.body.is_empty() {
            match self.open_media().await {
                Ok(Some((handle, plan))) => {
                    settings.media = Some(plan);
                    session = Some(handle);
                }
                Ok(None) => {}
                // An emergency call is never refused for want of a port:
                // it goes through with its media relayed end to end.
                Err(e) if labels.kind == Kind::Emergency => {
                    tracing::error!(error = %e, "cannot anchor an emergency call's media; relaying its SDP untouched");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot anchor the call's media; refusing it");
                    targets.clear();
                    settings.queue = None;
                    let why = match e {
                        crate::media::rtp::MediaError::NoPort(..) => "no free RTP port",
                        crate::media::rtp::MediaError::Bind(_) => "media resources exhausted",
                    };
                    no_target = Rejection::new(
                        503,
                        format!("Service Unavailable (cannot anchor media: {why})"),
                        Outcome::Unavailable,
                    );
                }
            }
        }
        // A leader session's call is published with its session.
        let leader = settings
            .leader
            .as_ref()
            .map(|p| (p.draft.session.clone(), p.draft.caller_number.clone()));
        let started = chrono::Utc::now();
        let mut recorded: Vec<std::path::PathBuf> = Vec::new();
        let (mut call, first) = Call::start(
            id,
            settings,
            invite,
            peer,
            targets,
            no_target,
            &self.registrar,
            Instant::now(),
        );
        let mut setup_observed = false;
        let mut recording = false;
        let mut error_rounds = 0;
        let mut out = first;
        self.ops.call_started(labels.view.clone(), handle.clone());
        let mut shown = labels.view.now.clone();
        // The call's record, kept up as it runs; stored once its outcome
        // is known.
        let mut record = Some(crate::records::builder::Builder::new(labels.view.clone()));
        // Ended by us rather than by either party.
        let mut ended_by: Option<&'static str> = None;
        loop {
            let mut unreachable: Vec<Peer> = Vec::new();
            let mut three_way: Vec<String> = Vec::new();
            let mut transfers: Vec<String> = Vec::new();
            let mut consults: Vec<String> = Vec::new();
            for o in out.drain(..) {
                let common = OutputSinks {
                    call: id,
                    handle: &handle,
                    session: &session,
                };
                guard.in_acd |= matches!(o, Output::Acd(_) | Output::Seat { .. });
                let Some(o) = self.carry_out(o, &common, &mut guard.bound, &mut unreachable) else {
                    continue;
                };
                match o {
                    Output::ThreeWay { number } => three_way.push(number),
                    Output::Transfer { number } => transfers.push(number),
                    Output::Consult { number } => consults.push(number),
                    Output::Audit(a) => {
                        if let Some(r) = &mut record {
                            r.handoff(crate::records::Handoff {
                                kind: a.kind.as_str().to_string(),
                                seat: a.seat.clone(),
                                number: a.number.clone(),
                                target: a.target.clone(),
                                result: a.result.as_str().to_string(),
                            });
                        }
                        self.audit(&a)
                    }
                    Output::LeaderChoice(choice) => {
                        self.metrics
                            .leader_choice
                            .with_label_values(&[choice])
                            .inc();
                    }
                    Output::StoreTicket(ticket) => self.store_ticket(*ticket, handle.clone()),
                    Output::CallBack {
                        ticket,
                        queue,
                        arrival,
                    } => self.queue_callback(ticket, queue, arrival),
                    Output::Seat { seat, busy } => {
                        let call = id;
                        if busy {
                            guard.busy_seats.push(seat.clone());
                            self.dispatch.send(AcdInput::SeatBusy { seat, call });
                        } else if let Some(i) = guard.busy_seats.iter().position(|s| *s == seat) {
                            guard.busy_seats.remove(i);
                            self.dispatch.send(AcdInput::SeatFree { seat, call });
                        }
                    }
                    Output::Record { stream, name } => {
                        if recording && let Some(s) = &session {
                            let call_id = format!("{}-{}", guard.bound[0], id);
                            recorded.extend(self.start_recording(
                                s,
                                labels.kind,
                                &call_id,
                                &[(stream, &name)],
                            ));
                        }
                    }
                    // Carried out above.
                    Output::Send(..)
                    | Output::Bind(_)
                    | Output::Media(_)
                    | Output::Digit { .. }
                    | Output::Acd(_)
                    | Output::Prompt { .. } => {}
                }
            }
            // A seat's three-way: the number resolved through the table
            // alone, then back to the call (on the next pass, with any
            // transport error of this one).
            for number in three_way {
                let targets = self.three_way_targets(&number);
                out.extend(call.add_party(&number, targets, &self.registrar, Instant::now()));
            }
            // A seat's transfer: the same table, the same rule.
            for number in transfers {
                let targets = self.three_way_targets(&number);
                out.extend(call.transfer_to(&number, targets, &self.registrar, Instant::now()));
            }
            for number in consults {
                let targets = self.three_way_targets(&number);
                out.extend(call.consult_to(&number, targets, &self.registrar, Instant::now()));
            }
            // Transport errors go back to the call at once (§18.4); what it
            // sends in turn goes out on the next pass. Bounded, in case a
            // call keeps addressing an unreachable peer.
            if !unreachable.is_empty() && error_rounds < 4 {
                error_rounds += 1;
                for peer in unreachable {
                    out.extend(call.on_transport_error(peer, &self.registrar, Instant::now()));
                }
                continue;
            }
            error_rounds = 0;
            if !out.is_empty() {
                continue;
            }
            // Requests for the call are let in from its far ends only.
            if let Some(far_ends) = call.changed_far_ends() {
                handle.sources.store(Arc::new(far_ends));
            }
            if !setup_observed && let Some(t) = call.setup_time() {
                // Observed at the answer, so the histogram is live.
                setup_observed = true;
                self.metrics.call_setup_seconds.observe(t.as_secs_f64());
            }
            if !recording && call.bridged() {
                // Recorded from the seat's or trunk's answer: a refused call,
                // or a caller's wait in a queue, leaves no file.
                recording = true;
                if let Some(s) = &session {
                    recorded = self.start_recording(
                        s,
                        labels.kind,
                        &format!("{}-{}", guard.bound[0], call.id),
                        &[(0, "caller"), (call.joined_stream(), "far")],
                    );
                }
            }
            if !guard.counted
                && let Some(outcome) = call.outcome()
            {
                guard.counted = true;
                guard.free_seats();
                self.count(&call, outcome, &labels);
                if let Some(r) = record.take() {
                    self.keep_record(r, &call, outcome, ended_by, &recorded);
                }
                // The call is over: its media ends and its ports go back.
                session = None;
                self.publish_session_call(&call, &leader, started, &recorded);
            }
            if guard.counted {
                // Over for the API once its outcome is known (its
                // transactions may linger a while).
                if !guard.unlisted {
                    guard.unlisted = true;
                    let outcome = call.outcome().unwrap_or(Outcome::Failed);
                    self.ops.call_ended(id, outcome.as_str());
                }
            }
            if call.is_finished() {
                break;
            }
            // Over, and only retransmissions left to answer: the call's
            // remains take over and the task (with the call) goes.
            if guard.counted
                && let Some(remains) = call.remains(handle.sources.load_full())
            {
                self.leave_remains(remains, &mut rx, id, &guard.bound);
                break;
            }
            if !guard.counted {
                let wall = chrono::Utc::now();
                let now = call.state_view(Instant::now(), wall);
                if now != shown {
                    if let Some(r) = &mut record {
                        r.observe(&now, wall);
                    }
                    shown = now.clone();
                    self.ops.call_changed(id, now);
                }
            }
            let deadline = call.deadline();
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(Event::Message(event)) => {
                        let (msg, peer) = *event;
                        out = call.on_message(msg, peer, &self.registrar, Instant::now())
                    }
                    Some(Event::Hangup) => {
                        ended_by = ended_by.or(Some("operator"));
                        out = call.end_by_operator(&self.registrar, Instant::now())
                    }
                    Some(Event::Command(c)) => {
                        let (cmd, reply) = *c;
                        match call.on_command(cmd, &self.registrar, Instant::now()) {
                            Ok(o) => {
                                out = o;
                                let _ = reply.send(Ok(()));
                            }
                            Err(why) => {
                                let _ = reply.send(Err(why));
                            }
                        }
                    }
                    Some(Event::Unreachable(addr)) => {
                        out = call.on_unreachable(*addr, &self.registrar, Instant::now())
                    }
                    Some(Event::Terminate) => {
                        ended_by = ended_by.or(Some("shutdown"));
                        out = call.terminate(&self.registrar, Instant::now())
                    }
                    Some(Event::Acd(cmd)) => out = call.on_acd(*cmd, &self.registrar, Instant::now()),
                    Some(Event::Ticket(stored)) => {
                        out = call.on_ticket(*stored, &self.registrar, Instant::now())
                    }
                    Some(Event::Consult(c)) => {
                        let (msg, peer, seat) = *c;
                        out = call.on_consult(msg, peer, &seat, &self.registrar, Instant::now())
                    }
                    None => break,
                },
                _ = sleep_until(deadline) => out = call.on_timer(&self.registrar, Instant::now()),
                ev = media_event(&mut session) => match ev {
                    Some(MediaEvent::Digit { leg, digit }) => {
                        self.digit(leg, digit, "rtp");
                        out = call.on_digit(leg, digit, &self.registrar, Instant::now());
                    }
                    Some(MediaEvent::MediaTimeout { leg }) => {
                        self.metrics.media_timeouts.inc();
                        tracing::info!(leg, "media time-out");
                        out = call.on_media_timeout(leg, &self.registrar, Instant::now());
                    }
                    Some(MediaEvent::PromptDone { leg }) => {
                        out = call.on_prompt_done(leg, &self.registrar, Instant::now());
                    }
                    Some(MediaEvent::Quiet { leg, spoke }) => {
                        out = call.on_quiet(leg, spoke, &self.registrar, Instant::now());
                    }
                    None => session = None,
                },
            }
        }
        if !guard.counted {
            guard.counted = true;
            let outcome = call.outcome().unwrap_or(Outcome::Failed);
            self.count(&call, outcome, &labels);
            if let Some(r) = record.take() {
                self.keep_record(r, &call, outcome, ended_by, &recorded);
            }
        }
    }

    /// Lists a finished call's remains, then closes its queue and answers
    /// from them whatever was still in it: a message sent to the task from
    /// here on finds the queue closed and is answered from the remains
    /// too (see [`Engine::deliver`]), so nothing falls between the two.
    fn leave_remains(&self, remains: Remains, rx: &mut Inbox, call: u64, bound: &[String]) {
        self.calls.leave(remains);
        self.metrics
            .lingering_calls
            .set(self.calls.lingering() as i64);
        // Off the table before the queue closes: from here a message finds
        // the remains, and a new call under one of the Call-IDs can start.
        for id in bound {
            self.calls.release(id, call);
        }
        for ev in rx.close() {
            match ev {
                Event::Message(m) => {
                    let (msg, peer) = *m;
                    self.after_the_call(msg, peer);
                }
                // A seat's consultation for a call that is over: a call
                // of its own, as any INVITE of the seat's.
                Event::Consult(c) => {
                    let (msg, peer, _) = *c;
                    self.new_call(msg, peer);
                }
                Event::Command(c) => {
                    let (_, reply) = *c;
                    let _ = reply.send(Err("the call has ended".into()));
                }
                // Over already: nothing to end, offer or tell.
                _ => {}
            }
        }
    }

    /// Drops the remains of finished calls whose linger timers have all
    /// run out.
    fn sweep_finished(&self, now: Instant) {
        self.calls.sweep(now);
        // Set each time: the sets made as calls leave their remains may
        // land out of order.
        self.metrics
            .lingering_calls
            .set(self.calls.lingering() as i64);
    }

    /// The call's record, to the records' writer (the store and the
    /// JSON-lines file, in batches, on its own thread). A record that
    /// cannot be stored is logged and counted; the call is over either
    /// way.
    fn keep_record(
        &self,
        builder: crate::records::builder::Builder,
        call: &Call,
        outcome: Outcome,
        ended_by: Option<&'static str>,
        recorded: &[std::path::PathBuf],
    ) {
        let mut builder = builder;
        for path in recorded {
            builder.recording(path.display().to_string());
        }
        let reason = ended_by.map_or_else(|| call.end_reason(), str::to_string);
        let record = builder.finish(
            chrono::Utc::now(),
            outcome.as_str(),
            reason,
            call.ticket().map(str::to_string),
        );
        if self.ops.watched() {
            self.ops.publish(
                "record",
                serde_json::json!({"call": record.call, "result": record.result, "line": record.line}),
            );
        }
        self.records.keep(record);
    }

    /// Stores a caller's ticket on a blocking thread (SQLite's fsync, a
    /// PostgreSQL round trip) and tells the call the answer: its number
    /// only once committed; a store that failed, the caller hears so.
    fn store_ticket(&self, ticket: crate::tickets::NewTicket, call: CallHandle) {
        use crate::tickets::dialogue::Stored;
        let store = self.tickets.clone();
        let metrics = self.metrics.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _enter = span.enter();
            // The request's WAV is finished on the recorder's thread: the
            // ticket points at it only once it is whole.
            let mut ticket = ticket;
            if let Some(path) = ticket.request_recording.clone()
                && !crate::media::publication::wait_finished(
                    std::path::Path::new(&path),
                    Duration::from_secs(3),
                )
            {
                tracing::warn!(path = %path, "the request's recording is not whole; the ticket is stored without it");
                ticket.request_recording = None;
            }
            let stored = match store.create(&ticket, chrono::Utc::now()) {
                Ok(c) if c.existing => {
                    tracing::info!(ticket = %c.ticket.id, "the caller has this ticket open already");
                    Stored::Existing {
                        id: c.ticket.id.to_string(),
                    }
                }
                Ok(c) => {
                    metrics
                        .tickets_created
                        .with_label_values(&[&c.ticket.new.unit, c.ticket.new.kind.as_str()])
                        .inc();
                    tracing::info!(ticket = %c.ticket.id, unit = %c.ticket.new.unit, "ticket stored");
                    Stored::New {
                        id: c.ticket.id.to_string(),
                    }
                }
                Err(e) => {
                    metrics.tickets_failed.inc();
                    tracing::error!(error = %e, "ticket not stored; the caller is told to call again");
                    Stored::Failed
                }
            };
            call.notify(Event::Ticket(Box::new(stored)));
        });
    }

    /// Where a seat's three-way (`*3` + number + `#`) may go: another seat
    /// by its id, or a number the table routes to a trunk — a sub-centre's
    /// line, an emergency number, a line out over the carrier — with its
    /// alternates. Queued lines, unknown and barred numbers reach nothing:
    /// a seat can never call an arbitrary outside number. Emergency numbers
    /// are always routed, whatever the table's state.
    fn three_way_targets(&self, number: &str) -> Vec<Target> {
        let table = self.table.guard();
        if table.seats.iter().any(|s| s.id == number) {
            return vec![Target::Seat {
                id: number.to_string(),
            }];
        }
        let decision = routing::route(&table, number, None, chrono::Utc::now());
        if !matches!(decision.target, routing::Target::Trunk(_)) {
            return Vec::new();
        }
        let line = decision.line.unwrap_or(number).to_string();
        let trunks = self.trunks.lock().unwrap_or_else(|e| e.into_inner());
        targets_for(&table, &decision, &line, |id| trunks.is_up(id)).0
    }

    /// Plays prompts to a stream of a call's media, then hold music (or,
    /// with `hold` false, silence and a `PromptDone`). A prompt missing from
    /// the library is skipped with a warning: the caller still waits.
    fn play(&self, session: &SessionHandle, leg: usize, mut items: Vec<Item>, hold: bool) {
        let Some(lib) = self.prompts.load_full() else {
            return;
        };
        items.retain(|item| match item {
            Item::Prompt(name) | Item::Loop(name) if lib.get(name).is_none() => {
                tracing::warn!(prompt = %name, "prompt missing from the library; skipped");
                false
            }
            _ => true,
        });
        if hold {
            items.push(Item::looping("hold_music"));
        }
        match Playlist::new(&lib, items) {
            Ok(playlist) => session.send(crate::media::session::Command::Play {
                leg,
                playlist: Box::new(playlist),
            }),
            Err(e) => tracing::warn!(error = %e, "announcement not played"),
        }
    }

    /// A seat's hand-off, as it ended: one event line and the metric.
    fn audit(&self, a: &super::call::transfer::Audit) {
        self.ops.publish(
            "transfer",
            serde_json::json!({
                "kind": a.kind.as_str(),
                "seat": a.seat,
                "number": a.number,
                "target": a.target,
                "result": a.result.as_str(),
                "answered_after": a.answered_after.map(|d| d.as_millis() as f64 / 1000.0),
            }),
        );
        self.metrics
            .transfers
            .with_label_values(&[a.kind.as_str(), &a.target, a.result.as_str()])
            .inc();
        tracing::info!(
            event = "transfer",
            kind = a.kind.as_str(),
            seat = %a.seat,
            to = %a.number,
            target = %a.target,
            result = a.result.as_str(),
            answered_after_ms = a.answered_after.map(|d| d.as_millis() as u64),
            "hand-off"
        );
    }

    /// A key press on a call: reported in the log and the metrics. (What
    /// it chooses — the leader session's 1 or 2 — is the ACD's.)
    fn digit(&self, leg: usize, digit: Digit, source: &'static str) {
        self.metrics.dtmf_digits.with_label_values(&[source]).inc();
        tracing::info!(leg, %digit, source, "key pressed");
    }

    fn count(&self, call: &Call, outcome: Outcome, labels: &CallLabels) {
        self.metrics.active_calls.dec();
        if labels.kind == Kind::Emergency && call.final_status == Some(503) {
            self.metrics.emergency_failures.inc();
            tracing::warn!(
                line = %labels.line,
                status = call.final_status,
                "emergency call reached no emergency trunk; the carrier must route it"
            );
        }
        self.metrics
            .calls
            .with_label_values(&[labels.kind.as_str(), &labels.line, outcome.as_str()])
            .inc();
        // The call's one line at info: what it was, where it went, how it
        // ended (the steps are debug lines).
        let view = &labels.view;
        tracing::info!(
            from = %labels.from,
            dialed = %view.dialed,
            caller = view.caller.as_deref().unwrap_or("-"),
            origin = view.origin,
            outcome = outcome.as_str(),
            status = call.final_status,
            legs = call.legs_placed(),
            seat = call.seat().unwrap_or("-"),
            b_call_id = call.b_call_id().unwrap_or("-"),
            answer_ms = call.setup_time().map(|d| d.as_millis() as u64),
            seconds = (chrono::Utc::now() - view.started).num_milliseconds() as f64 / 1000.0,
            "call ended"
        );
    }

    // ── REGISTER (RFC 3261 §10.3) ────────────────────────────────────────

    fn register(&self, msg: &Message, peer: Peer) {
        // A retransmission of a REGISTER already answered gets the same
        // answer (§17.2.2), not a second look at its now-used credentials.
        let key = RecentKey::of(msg, peer);
        if let Some(key) = &key
            && let Some(bytes) = self.recent_registers.lock().ok().and_then(|r| r.get(key))
        {
            let _ = self.transport.send(peer, bytes);
            return;
        }
        let resp = self.register_response(msg, peer);
        let bytes = resp.encode();
        if let (Some(key), Ok(mut recent)) = (key, self.recent_registers.lock()) {
            recent.insert(key, bytes.clone(), Instant::now());
        }
        let _ = self.transport.send(peer, bytes);
    }

    fn register_response(&self, msg: &Message, peer: Peer) -> Message {
        let now = Instant::now();
        let Some(seat) = msg.to().and_then(|t| uri_number(t.uri)) else {
            return self.response(msg, 400, "Bad Request (To has no user)");
        };
        if let Err(resp) = self.authenticate_seat(msg, peer, &seat, Challenge::Registrar) {
            return *resp;
        }
        let (max_expires, max_contacts) = {
            let t = self.table.guard();
            (t.sip.max_register_expires, t.sip.max_contacts_per_seat)
        };

        // Which contacts, for how long (§10.3 steps 6–8).
        let header_expires = msg
            .header(&Name::Expires)
            .and_then(|v| v.parse::<u32>().ok());
        let contacts: Vec<&bytesstr::BytesStr> = msg.headers_named(&Name::Contact).collect();
        let star = contacts.iter().any(|c| c.as_str() == "*");
        let (cid, cseq) = (
            msg.call_id().map(|c| c.to_string()).unwrap_or_default(),
            msg.cseq().map_or(0, |c| c.0),
        );
        let result = if star {
            if contacts.len() != 1 || header_expires != Some(0) {
                return self.response(msg, 400, "Bad Request (Contact: * needs Expires: 0)");
            }
            self.registrar.register(
                &seat,
                Update::RemoveAll,
                peer,
                &cid,
                cseq,
                max_contacts,
                now,
            )
        } else if contacts.is_empty() {
            Ok(self
                .registrar
                .lookup(&seat, now)
                .into_iter()
                .map(|b| {
                    let left = b.expires_at.saturating_duration_since(now).as_secs() as u32;
                    (b.uri, left)
                })
                .collect())
        } else {
            if contacts.len() > max_contacts {
                return self.response(
                    msg,
                    403,
                    &format!("Forbidden (at most {max_contacts} contacts per seat)"),
                );
            }
            let mut list = Vec::with_capacity(contacts.len());
            for c in &contacts {
                let Ok(addr) = NameAddr::parse(c) else {
                    return self.response(msg, 400, "Bad Request (malformed Contact)");
                };
                let expires = addr
                    .param("expires")
                    .and_then(|e| e.parse::<u32>().ok())
                    .or(header_expires)
                    .unwrap_or(3600);
                if expires > 0 && expires < MIN_EXPIRES {
                    let mut resp = msg.response(423, "Interval Too Brief", Some(&response_tag()));
                    resp.push(Name::Other("Min-Expires".into()), MIN_EXPIRES.to_string());
                    return resp;
                }
                list.push((addr.uri.to_string(), expires.min(max_expires)));
            }
            self.registrar.register(
                &seat,
                Update::Contacts(&list),
                peer,
                &cid,
                cseq,
                max_contacts,
                now,
            )
        };
        match result {
            Err(RegisterError::OutOfOrder) => {
                self.response(msg, 500, "Server Internal Error (out-of-order REGISTER)")
            }
            Ok(bindings) => {
                let mut resp = msg.response(200, "OK", Some(&response_tag()));
                for (uri, left) in bindings {
                    resp.push(Name::Contact, format!("<{uri}>;expires={left}"));
                }
                // The ACD learns of it before anyone can see the gauge move.
                self.dispatch.send(AcdInput::Registration {
                    seat: seat.to_string(),
                });
                self.metrics
                    .registered_seats
                    .set(self.registrar.registered_count(now) as i64);
                tracing::info!(seat = %seat, from = %peer.addr, "registration updated");
                resp
            }
        }
    }

    /// Digest authentication of a seat (RFC 7616, RFC 3261 §22): by
    /// REGISTER (`401`/`Authorization`) or by a request it sends, such as
    /// its own INVITE (`407`/`Proxy-Authorization`). `Err` holds the
    /// answer: a challenge, or `403` for bad credentials or a source
    /// throttled for this seat. Passwords come from the table only.
    fn authenticate_seat(
        &self,
        msg: &Message,
        peer: Peer,
        seat: &str,
        kind: Challenge,
    ) -> Result<(), Box<Message>> {
        let now = Instant::now();
        let ip = peer.addr.ip();
        self.log_ended_blocks(now);
        let allowed = self
            .throttle
            .lock()
            .map(|t| t.allowed(ip, seat, now))
            .unwrap_or(true);
        if !allowed {
            self.metrics
                .auth_failures
                .with_label_values(&["throttled"])
                .inc();
            return Err(Box::new(self.response(
                msg,
                403,
                "Forbidden (too many failed attempts)",
            )));
        }
        let table = self.table.guard();
        let entry = table.seats.iter().find(|s| s.id == seat);
        let password = entry.and_then(|s| s.password.clone());
        let algorithms = entry
            .and_then(|s| s.digest_algorithms.clone())
            .unwrap_or_else(|| table.sip.digest_algorithms.clone());
        drop(table);
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let challenge = |stale| Box::new(self.challenge(msg, &algorithms, kind, unix, stale, ip));
        // §22.3: of several credentials (one per proxy on the path), ours
        // name our realm.
        let ours = format!("realm=\"{}\"", self.auth.realm());
        let name = kind.credentials();
        let Some(authorization) = msg
            .headers_named(&name)
            .find(|v| v.contains(&ours))
            .or_else(|| msg.header(&name))
        else {
            return Err(challenge(false));
        };
        let method = msg.method().map(|m| m.as_str()).unwrap_or_default();
        let verified = self.auth.verify(authorization, method, unix, ip, |user| {
            // Credentials are for this seat, and only from configuration.
            (user == seat).then(|| password.clone()).flatten()
        });
        let request_uri = msg.request_uri().map(|u| u.as_str()).unwrap_or_default();
        let verified = verified.and_then(|v| {
            if !algorithms.contains(&v.algorithm) {
                Err(AuthError::UnsupportedAlgorithm)
            } else if v.uri != request_uri {
                // RFC 7616 §3.4.6: the response must be for this request.
                Err(AuthError::Malformed(
                    "digest uri differs from the Request-URI".into(),
                ))
            } else {
                Ok(v)
            }
        });
        match verified {
            Ok(_) => {
                if let Ok(mut t) = self.throttle.lock() {
                    t.record_success(ip, seat, now);
                }
                Ok(())
            }
            Err(AuthError::BadNonce) => {
                // Not a nonce we gave this address: junk, or a blind spoofer.
                // A fresh challenge, nothing counted against the seat; with
                // stale=true, so a phone whose address changed since its
                // challenge retries with the new nonce instead of giving up.
                self.metrics
                    .auth_failures
                    .with_label_values(&["bad_nonce"])
                    .inc();
                Err(challenge(true))
            }
            Err(AuthError::StaleNonce) => Err(challenge(true)),
            Err(AuthError::Replay) => {
                // A captured request sent again: its credentials are spent.
                self.metrics
                    .auth_failures
                    .with_label_values(&["replay"])
                    .inc();
                if let Some(suppressed) = self.quiet("replay", peer) {
                    tracing::info!(from = %peer.addr, seat = %seat, suppressed, "replayed credentials refused");
                }
                Err(challenge(false))
            }
            Err(e) => {
                let reason = match e {
                    AuthError::WrongPassword => "wrong_password",
                    AuthError::UnknownUser => "unknown_user",
                    AuthError::BadNonce => "bad_nonce",
                    AuthError::WrongRealm => "wrong_realm",
                    AuthError::UnsupportedAlgorithm => "unsupported_algorithm",
                    _ => "malformed",
                };
                self.metrics
                    .auth_failures
                    .with_label_values(&[reason])
                    .inc();
                if e.counts_as_failure()
                    && let Ok(mut t) = self.throttle.lock()
                    && let Some(block) = t.record_failure(ip, seat, now)
                {
                    tracing::warn!(block = %block.scope, seconds = block.until.saturating_duration_since(now).as_secs(), "too many failed authentications; blocking");
                    crate::log_limit::security("sip_throttled", ip);
                }
                if let Some(suppressed) = self.quiet("auth_refused", peer) {
                    tracing::info!(from = %peer.addr, seat = %seat, error = %e, suppressed, "authentication refused");
                }
                // Its own limit: failures that do not count (a stale
                // nonce) must not use up the line fail2ban reads.
                if e.counts_as_failure() && self.quiet("security_auth", peer).is_some() {
                    crate::log_limit::security("sip_auth_failed", peer.addr.ip());
                }
                Err(Box::new(self.response(
                    msg,
                    403,
                    "Forbidden (bad credentials)",
                )))
            }
        }
    }

    /// Blocks of the failure throttle that have run out, each logged once
    /// (called at every authentication and every second).
    fn log_ended_blocks(&self, now: Instant) {
        let ended = self
            .throttle
            .lock()
            .map(|mut t| t.prune(now))
            .unwrap_or_default();
        for end in ended {
            tracing::info!(block = %end.scope, "authentication block ended");
        }
    }

    /// A `401` (registrar) or `407` (proxy) with one challenge per
    /// algorithm, in the seat's order (some phones read only the first).
    fn challenge(
        &self,
        msg: &Message,
        algorithms: &[Algorithm],
        kind: Challenge,
        unix: u64,
        stale: bool,
        source: std::net::IpAddr,
    ) -> Message {
        let (code, reason) = match kind {
            Challenge::Registrar => (401, "Unauthorized"),
            Challenge::Proxy => (407, "Proxy Authentication Required"),
        };
        let mut resp = msg.response(code, reason, Some(&response_tag()));
        let [sha256, md5] = self.auth.challenge(unix, stale, source);
        for alg in algorithms {
            let value = match alg {
                Algorithm::Sha256 => sha256.clone(),
                Algorithm::Md5 => md5.clone(),
            };
            resp.push(kind.challenge_header(), value);
        }
        resp
    }
}

/// Which challenge a seat gets (RFC 3261 §22.1, §22.3).
#[derive(Clone, Copy)]
enum Challenge {
    /// REGISTER: `401` with WWW-Authenticate.
    Registrar,
    /// A request it places: `407` with Proxy-Authenticate.
    Proxy,
}

impl Challenge {
    fn challenge_header(self) -> Name {
        match self {
            Challenge::Registrar => Name::WwwAuthenticate,
            Challenge::Proxy => Name::Other("Proxy-Authenticate".into()),
        }
    }

    fn credentials(self) -> Name {
        match self {
            Challenge::Registrar => Name::Authorization,
            Challenge::Proxy => Name::Other("Proxy-Authorization".into()),
        }
    }
}

/// A REGISTER's transaction (§17.2.3: branch, sent-by, method), and the
/// source it came from.
#[derive(Clone, PartialEq, Eq)]
struct RecentKey {
    peer: Peer,
    branch: String,
    cseq: u32,
}

impl RecentKey {
    fn of(msg: &Message, peer: Peer) -> Option<RecentKey> {
        let branch = msg.branch()?;
        Some(RecentKey {
            peer,
            branch: branch.to_string(),
            cseq: msg.cseq()?.0,
        })
    }
}

/// The last answers to REGISTERs, for their retransmissions: as long as a
/// non-INVITE server transaction would keep them (64·T1), at most 4,096.
#[derive(Default)]
struct RecentReplies {
    entries: std::collections::VecDeque<(RecentKey, Bytes, Instant)>,
}

impl RecentReplies {
    const KEEP: Duration = Duration::from_secs(32);
    const MAX: usize = 4096;

    fn get(&self, key: &RecentKey) -> Option<Bytes> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _, _)| k == key)
            .map(|(_, b, _)| b.clone())
    }

    fn insert(&mut self, key: RecentKey, bytes: Bytes, now: Instant) {
        while self
            .entries
            .front()
            .is_some_and(|(_, _, at)| now.duration_since(*at) > Self::KEEP)
            || self.entries.len() >= Self::MAX
        {
            self.entries.pop_front();
        }
        self.entries.push_back((key, bytes, now));
    }
}

/// RFC 3581 §4 and RFC 3261 §18.2.1: the top Via of a request records the
/// address it really came from, so the responses (which copy the Via)
/// tell a caller behind NAT how it is seen: `received` when the sent-by
/// host differs, and the source port in an empty `rport`.
fn stamp_received(msg: &mut Message, peer: Peer) {
    let Some(via) = msg.top_via() else { return };
    let Some(top) = msg.headers.iter_mut().find(|h| h.name == Name::Via) else {
        return;
    };
    let mut value = top.value.to_string();
    let src = peer.addr.ip();
    if via.rport == Some(None) {
        // Replace the bare `rport` with `rport=PORT`.
        let mut params: Vec<String> = value.split(';').map(str::to_string).collect();
        for p in params.iter_mut().skip(1) {
            if p.trim().eq_ignore_ascii_case("rport") {
                *p = format!("rport={}", peer.addr.port());
            }
        }
        value = params.join(";");
    }
    if via.ip != Some(src) && via.received.is_none() {
        value.push_str(&format!(";received={src}"));
    }
    top.value = value.into();
}

/// Shortest registration accepted (RFC 3261 §10.3 step 7, 423).
const MIN_EXPIRES: u32 = 60;

impl Sink for Engine {
    fn received(&self, bytes: Bytes, peer: Peer) {
        self.handle(bytes, peer);
    }

    fn framing_lost(&self, peer: Peer, reason: &'static str) {
        self.metrics.sip_parse_errors.inc();
        tracing::info!(from = %peer.addr, reason, "closing TCP connection: framing lost");
    }

    fn unreachable(&self, addr: std::net::SocketAddr) {
        Engine::unreachable(self, addr);
    }

    fn connection_closed(&self, peer: Peer) {
        // A seat registered over this connection can no longer be reached.
        let dropped = self.registrar.forget_peer(peer);
        if dropped > 0 {
            tracing::info!(peer = %peer.addr, bindings = dropped, "TCP connection closed; its registrations are gone");
            self.metrics
                .registered_seats
                .set(self.registrar.registered_count(Instant::now()) as i64);
        }
    }
}

#[derive(Clone)]
/// More RTP streams for a call's media session, for legs placed while
/// another still rings (ring-all offers): a port from the pool, added to
/// the running session.
struct MoreStreams {
    pool: Arc<PortPool>,
    adder: crate::media::session::StreamAdder,
}

impl std::fmt::Debug for MoreStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MoreStreams")
    }
}

impl super::call::StreamSource for MoreStreams {
    fn open(&self) -> Option<(usize, std::net::SocketAddr)> {
        let socket = self.pool.allocate_now().ok()?;
        let local = socket.local();
        Some((self.adder.add(socket)?, local))
    }
}

/// Frees what a call's task holds when the task ends, however it ends
/// (its drop runs on a panic too): every seat reserved for the call, its
/// entries in the call table, its place in the active-calls gauge.
struct CallGuard<'e> {
    engine: &'e Engine,
    call: u64,
    busy_seats: Vec<String>,
    /// The ACD has heard of the call (a seat marked busy, a queue
    /// joined): it is told when the call goes. A trunk call that never
    /// touched it (a sub-centre's, an emergency) costs it nothing.
    in_acd: bool,
    bound: Vec<String>,
    counted: bool,
    /// Taken off the control API's list of calls.
    unlisted: bool,
}

impl CallGuard<'_> {
    /// The seats this call kept busy for the ACD are free again (at the
    /// call's end, not when its transactions stop lingering).
    fn free_seats(&mut self) {
        for seat in self.busy_seats.drain(..) {
            self.engine.dispatch.send(AcdInput::SeatFree {
                seat,
                call: self.call,
            });
        }
    }
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        self.engine.registrar.release_call(self.call);
        self.free_seats();
        if self.in_acd {
            self.engine
                .dispatch
                .send(AcdInput::Released { call: self.call });
        }
        for id in &self.bound {
            self.engine.calls.release(id, self.call);
        }
        if !self.counted {
            self.engine.metrics.active_calls.dec();
        }
        if !self.unlisted {
            self.engine.ops.call_ended(self.call, "ended");
        }
    }
}

/// Where a call's task carries out the outputs every call has.
struct OutputSinks<'a> {
    call: u64,
    handle: &'a CallHandle,
    session: &'a Option<SessionHandle>,
}

impl Engine {
    /// Carries out what every call task does alike: sends (noting the
    /// peers that could not be reached), binds, media, keys, the ACD,
    /// prompts. Any other output comes back to the task.
    fn carry_out(
        &self,
        o: Output,
        to: &OutputSinks<'_>,
        bound: &mut Vec<String>,
        unreachable: &mut Vec<Peer>,
    ) -> Option<Output> {
        match o {
            Output::Send(peer, bytes) => {
                let sent = self.transport.send(peer, bytes);
                if !sent && !unreachable.contains(&peer) {
                    unreachable.push(peer);
                }
            }
            Output::Bind(call_id) => {
                self.calls.bind(call_id.clone(), to.handle.for_leg());
                bound.push(call_id);
            }
            Output::Media(cmd) => {
                if let Some(s) = to.session {
                    s.send(cmd);
                }
            }
            Output::Digit { leg, digit } => self.digit(leg, digit, "info"),
            Output::Acd(msg) => {
                let handle = matches!(msg, ToAcd::Join { .. }).then(|| to.handle.clone());
                self.dispatch.send(AcdInput::Call {
                    call: to.call,
                    msg,
                    handle,
                });
            }
            Output::Prompt { leg, items, hold } => {
                if let Some(s) = to.session {
                    self.play(s, leg, items, hold);
                }
            }
            other => return Some(other),
        }
        None
    }
}

/// What a call's task needs to start the call.
struct CallStart {
    id: u64,
    /// Seats the ACD was told this call keeps busy (the seat that placed
    /// it, the seat it rings).
    busy_seats: Vec<String>,
    settings: Settings,
    invite: Message,
    peer: Peer,
    targets: Vec<Target>,
    no_target: Rejection,
}

/// Takes a value out of its box, freeing the box at once (moved out in
/// place, a box stays allocated until the end of its variable's scope).
#[allow(clippy::boxed_local)] // The point: the box is freed on return.
fn unbox<T>(b: Box<T>) -> T {
    *b
}

/// The next event of a call's media session, if it has one.
async fn media_event(session: &mut Option<SessionHandle>) -> Option<MediaEvent> {
    match session {
        Some(s) => s.events.recv().await,
        None => std::future::pending().await,
    }
}

struct CallLabels {
    /// Where the INVITE came from.
    from: std::net::SocketAddr,
    kind: Kind,
    line: String,
    /// The call as the control API first lists it.
    view: crate::ops::CallView,
}

fn probe_policy(table: &Table) -> ProbePolicy {
    ProbePolicy {
        interval: table.sip.probe_interval,
        failures: table.sip.probe_failures,
    }
}

/// The To tag of a response outside any call: random like every tag we
/// make, so it neither fingerprints the product nor matches across answers.
fn response_tag() -> String {
    format!("{:016x}", random_salt())
}

fn random_salt() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

/// Lines are a bounded label set: the table's numbers, or "unknown".
fn metric_line(table: &Table, line: &str) -> String {
    if table.line(line).is_some() || table.emergency_line(line).is_some() {
        line.to_string()
    } else {
        "unknown".to_string()
    }
}

fn code_label(code: u16, buf: &mut [u8; 3]) -> &str {
    if !(100..=699).contains(&code) {
        return "other";
    }
    buf[0] = b'0' + (code / 100) as u8;
    buf[1] = b'0' + (code / 10 % 10) as u8;
    buf[2] = b'0' + (code % 10) as u8;
    std::str::from_utf8(buf).unwrap_or("other")
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// The ordered targets a decision offers, and what to answer when none
/// can take the call.
/// The ACD queue a call's seats come from, and what its caller hears
/// first: queued lines and leader sessions wait in their queue after the
/// welcome (a merged number's notice before it); dual-number lines in
/// their queue with their skill and expert seats; a sub-centre's call, if
/// its trunks fail, in the main queue after "you are being put through".
/// Emergency and other trunk calls never touch the ACD.
/// A leader session's call: how its caller chooses, and the ticket it
/// would take (numbered and due by the table's calendar, for the session's
/// unit), its request recorded below the requests folder.
fn leader_plan(
    table: &Table,
    d: &routing::Decision<'_>,
    invite: &Message,
    dialed: &str,
    line: &str,
    call_id: &str,
    id: u64,
) -> super::call::leader::LeaderPlan {
    use crate::tickets::dialogue::{Choice, Settings as DialogueSettings};
    use crate::tickets::model::{Kind as TicketKind, NewTicket, SessionRef, callback_number};
    let now = chrono::Utc::now();
    let deadline = table.calendar.deadline(now, table.ticket_due_working_days);
    let local = now.with_timezone(&table.calendar.timezone());
    let caller = caller_identity(invite).unwrap_or_default();
    let unit = d
        .unit
        .map(str::to_string)
        .unwrap_or_else(|| table.main_line().name.clone());
    super::call::leader::LeaderPlan {
        dialogue: DialogueSettings {
            timeout: table.leader.choice_timeout,
            default: if table.leader.default_ticket {
                Choice::Ticket
            } else {
                Choice::Wait
            },
            message: table.leader.message,
            message_silence: table.leader.message_silence,
            caller_number: callback_number(&caller),
            due_working_days: table.ticket_due_working_days,
            promise: None,
        },
        draft: NewTicket {
            day: local.date_naive(),
            callback_number: String::new(),
            caller_number: caller,
            dialed: dialed.to_string(),
            line: line.to_string(),
            unit,
            tag: "热线问政".into(),
            kind: TicketKind::LeaderSession,
            session: d.session.map(|s| SessionRef {
                unit: s.unit.clone(),
                leader: s.leader.clone(),
                title: s.title.clone(),
                date: s.date,
            }),
            due: deadline.due,
            due_date: deadline.due_date,
            due_approximate: deadline.approximate,
            request_recording: None,
            call_id: call_id.to_string(),
            recordings: Vec::new(),
        },
        session_ends: d.session.and_then(|s| {
            let left = (s.ends_at - now).to_std().ok()?;
            Some(Instant::now() + left)
        }),
        end_ticket: table.leader.end_ticket,
        end_queue: QueuePlan::main_queue(table, line),
        requests_dir: table.tickets.requests_dir.clone(),
        request_file: std::path::PathBuf::from(format!(
            "{}/{}-{id}.wav",
            local.format("%Y%m%d"),
            local.format("%H%M%S")
        )),
    }
}

/// The caller's number as its network asserts it (RFC 3325
/// P-Asserted-Identity), else as its From says.
fn caller_identity(invite: &Message) -> Option<String> {
    let asserted = invite
        .headers_named(&Name::Other("P-Asserted-Identity".into()))
        .find_map(|v| {
            let v = v.as_str();
            let uri = match (v.find('<'), v.find('>')) {
                (Some(a), Some(b)) if a < b => &v[a + 1..b],
                _ => v.trim(),
            };
            uri_number(uri)
        });
    asserted.or_else(|| invite.from().and_then(|f| uri_number(f.uri)))
}

/// The trunk, then its alternates, each with `number` in its URI: those
/// marked down are skipped while another is up; with all down, all are
/// still tried in turn (a probe can be wrong, and an emergency call must
/// not be refused on a guess).
fn trunk_chain(
    table: &Table,
    t: &routing::Trunk,
    number: &str,
    trunk_up: &impl Fn(&str) -> bool,
) -> Vec<Target> {
    let chain: Vec<&routing::Trunk> = std::iter::once(t)
        .chain(t.alternates.iter().filter_map(|id| table.trunk(id)))
        .collect();
    let any_up = chain.iter().any(|t| trunk_up(&t.id));
    chain
        .into_iter()
        .filter(|t| !any_up || trunk_up(&t.id))
        .filter_map(|t| {
            let addr = t.target?;
            Some(Target::Trunk {
                id: t.id.clone(),
                uri: format!("sip:{number}@{addr}"),
                peer: Peer::udp(addr),
                sources: t.sources.clone(),
            })
        })
        .collect()
}

fn targets_for(
    table: &Table,
    d: &routing::Decision<'_>,
    line: &str,
    trunk_up: impl Fn(&str) -> bool,
) -> (Vec<Target>, Rejection) {
    match (d.kind, &d.target) {
        (Kind::Reject, _) => {
            let r = d.reject.unwrap_or(routing::Reject {
                status: 404,
                reason: "Not Found",
            });
            (
                Vec::new(),
                Rejection::new(r.status, r.reason, Outcome::Rejected),
            )
        }
        (_, routing::Target::Trunk(t)) => {
            let targets = trunk_chain(table, t, line, &trunk_up);
            let role = match t.role {
                TrunkRole::Emergency => "emergency",
                TrunkRole::SubCentre => "sub-centre",
                TrunkRole::Carrier => "carrier",
            };
            (
                targets,
                Rejection::new(
                    503,
                    format!("Service Unavailable (no {role} trunk is up)"),
                    Outcome::Unavailable,
                ),
            )
        }
        // Seats come from the ACD (see `QueuePlan::for_decision`).
        (_, routing::Target::Seats { .. } | routing::Target::Queue(_)) => (
            Vec::new(),
            Rejection::new(
                480,
                format!("Temporarily Unavailable (no queue for {line})"),
                Outcome::Unavailable,
            ),
        ),
        (_, routing::Target::None) => (
            Vec::new(),
            Rejection::new(480, "Temporarily Unavailable", Outcome::Unavailable),
        ),
    }
}

#[path = "engine_callbacks.rs"]
mod callbacks;

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn options(via: &str) -> Message {
        let text = format!(
            "OPTIONS sip:h SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(Bytes::from(text)).unwrap()
    }

    #[test]
    fn the_top_via_records_where_a_request_came_from() {
        let peer = Peer::udp("203.0.113.5:40000".parse().unwrap());
        // Behind NAT, asking for rport: both filled in (RFC 3581 §4).
        let mut m = options("SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bKa;rport");
        stamp_received(&mut m, peer);
        let via = m.header(&Name::Via).unwrap().to_string();
        assert_eq!(
            via,
            "SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bKa;rport=40000;received=203.0.113.5"
        );
        // Sent from where it says: nothing to add (§18.2.1).
        let mut m = options("SIP/2.0/UDP 203.0.113.5:40000;branch=z9hG4bKb");
        stamp_received(&mut m, peer);
        assert_eq!(
            m.header(&Name::Via).unwrap().as_str(),
            "SIP/2.0/UDP 203.0.113.5:40000;branch=z9hG4bKb"
        );
        // The response copies it.
        let mut m = options("SIP/2.0/UDP host.example;branch=z9hG4bKc");
        stamp_received(&mut m, peer);
        let resp = m.response(200, "OK", None);
        assert!(
            resp.header(&Name::Via)
                .unwrap()
                .ends_with(";received=203.0.113.5")
        );
    }
}
