//! One call, as a back-to-back user agent: the caller's leg (A, where we
//! are the UAS) and the leg we place (B, where we are the UAC), each its own
//! dialog with its own transactions, joined here.
//!
//! Sans-I/O: [`Call`] is fed messages, "now" and timer expiries, and returns
//! [`Output`]s (bytes to send, seats to free). The engine's per-call task
//! drives it; tests drive it directly. It owns the list of targets to try
//! in turn (expert seat, then skilled seats; or one trunk) so a seat that is
//! busy, refuses or does not answer in time passes the call to the next.
//!
//! RFC 3261 sections: §8.2.6 responses, §9 CANCEL, §12 dialogs, §13 INVITE,
//! §15 BYE, §17 transactions (in [`crate::sip::transaction`]).

use super::registrar::Registrar;
use crate::media::dtmf::{Digit, parse_dtmf_relay};
use crate::media::g711::Codec;
use crate::media::prompt::Playlist;
use crate::media::sdp;
use crate::media::session::{Command as MediaCommand, Mode as MediaMode};
use crate::sip::dialog::Dialog;
use crate::sip::message::{Message, Method, Name, StartLine};
use crate::sip::transaction::{
    Action, ClientInvite, ClientNonInvite, ServerInvite, ServerNonInvite, Timers,
    Transport as Reliability,
};
use crate::sip::transport::Peer;
use bytes::Bytes;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Where the second leg may go, tried in order.
#[derive(Clone, Debug)]
pub enum Target {
    /// Out over a trunk: the Request-URI and where to send it.
    Trunk { id: String, uri: String, peer: Peer },
    /// A seat, if registered and free when its turn comes.
    Seat { id: String },
}

impl std::fmt::Display for Target {
    /// As an operator names it: `seat 8001`, `trunk emergency`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Seat { id } => write!(f, "seat {id}"),
            Target::Trunk { id, .. } => write!(f, "trunk {id}"),
        }
    }
}

/// Settings a call needs from the daemon.
#[derive(Clone, Debug)]
pub struct Settings {
    pub timers: Timers,
    /// Our address as written in Via and Contact (`host:port`).
    pub local: String,
    pub seat_ring: Duration,
    pub max_ring: Duration,
    /// A target that sends no response at all (not even `100`) this long
    /// is given up for the next: a seat phone that vanished, a dead trunk.
    pub response_timeout: Duration,
    /// Emergency calls: when no target takes the call, `503` with this
    /// `Retry-After`, so the carrier routes the call itself.
    pub retry_after: Option<u32>,
    /// Anchor this call's media on these ports; `None` relays SDP untouched.
    pub media: Option<MediaPlan>,
}

/// Where the call's media is anchored, and what the caller hears while
/// the call is being connected.
#[derive(Clone, Debug)]
pub struct MediaPlan {
    /// Our RTP address for the caller's leg (leg 0 of the media session).
    pub a_local: SocketAddr,
    /// Our RTP address for the leg we place (leg 1).
    pub b_local: SocketAddr,
    /// Played to the caller as early media until the call is answered.
    pub early: Option<Playlist>,
    /// Played to a party while the other holds the call (looping).
    pub hold: Option<Playlist>,
    /// Played to the caller when the call falls back from a trunk (a
    /// sub-centre that failed) to seats.
    pub fallback: Option<Playlist>,
}

/// The call's anchored media, once the caller's offer was accepted.
struct Media {
    plan: MediaPlan,
    session_id: u64,
    /// Our SDP answer to the caller, sent in the 183 and the 200.
    a_answer: String,
    a_version: u64,
    b_version: u64,
    a_codec: Codec,
    early_playing: bool,
    /// Which legs (A, B) hold the call now: the other hears hold music.
    held: [bool; 2],
    /// Legs that sent a re-INVITE without an offer: our 200 carried one,
    /// and its answer comes in their ACK (RFC 3264 §5, §14.2).
    /// (The CSeq of that re-INVITE, which its ACK repeats.)
    answer_in_ack: [Option<u32>; 2],
}

/// The telephone-event payload type we offer (RFC 4733; 101 by custom).
const TELEPHONE_EVENT_PT: u8 = 101;

/// What the driver must do.
#[derive(Debug)]
pub enum Output {
    Send(Peer, Bytes),
    /// The call now also answers to this Call-ID (its B leg).
    Bind(String),
    /// For the call's media session.
    Media(MediaCommand),
    /// A key press signalled in SIP (INFO, application/dtmf-relay).
    Digit {
        leg: usize,
        digit: Digit,
    },
}

/// How the call ended, for `hotline_calls_total{result}` and the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered and later hung up.
    Completed,
    /// The caller hung up before an answer.
    Cancelled,
    /// Nobody answered: every target refused, was busy, or rang out.
    NoAnswer,
    /// The far side refused with a final response we relayed.
    Failed,
    /// No target could be tried at all (no seat free, trunk unreachable).
    Unavailable,
    /// The table refuses the call: a number it does not list (404), a
    /// barred caller (403), a number that is no number (484).
    Rejected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Cancelled => "cancelled",
            Outcome::NoAnswer => "no_answer",
            Outcome::Failed => "failed",
            Outcome::Unavailable => "unavailable",
            Outcome::Rejected => "rejected",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Ringing a target (or about to).
    Setup,
    /// Both legs answered.
    Connected,
    /// Over: waiting only for transactions to finish their linger timers.
    Ended,
}

/// The caller's side: we are the UAS.
struct LegA {
    invite: Message,
    peer: Peer,
    tx: ServerInvite,
    branch: String,
    dialog: Dialog,
    invite_cseq: u32,
    answered: bool,
}

/// The side we place: we are the UAC.
struct LegB {
    target: Target,
    peer: Peer,
    invite: Message,
    tx: ClientInvite,
    branch: String,
    dialog: Dialog,
    provisional: bool,
    cancel_pending: bool,
    cancelled: bool,
    ring_deadline: Instant,
    /// Until the first response (any, `100` included) arrives.
    response_deadline: Instant,
    answered: bool,
    /// Where its responses came from, when not `peer` (a trunk answering
    /// from another port): its requests may come from there too.
    latched: Option<SocketAddr>,
    /// When we stop waiting for a final response after our CANCEL
    /// (§9.1: 64·T1; a far end may never send its 487).
    cancel_deadline: Option<Instant>,
    given_up: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    A,
    B,
}

impl Side {
    /// As the log says it.
    fn as_str(self) -> &'static str {
        match self {
            Side::A => "caller",
            Side::B => "far end",
        }
    }
}

enum Purpose {
    Cancel,
    Bye,
    /// A request relayed from the other leg: its response goes back to
    /// the server transaction with this branch there.
    Relay {
        server_branch: String,
    },
}

enum ServerTx {
    Invite(ServerInvite),
    NonInvite(ServerNonInvite),
}

enum ClientTx {
    Invite(ClientInvite),
    NonInvite(ClientNonInvite),
}

struct Server {
    side: Side,
    peer: Peer,
    branch: String,
    method: Method,
    request: Message,
    tx: ServerTx,
}

struct Client {
    side: Side,
    /// Where the request went: retransmissions follow it even after the
    /// call has moved on to another leg.
    peer: Peer,
    branch: String,
    method: Method,
    /// The relayed re-INVITE, kept to ACK its answers; other requests
    /// live on only as the transaction's bytes.
    request: Option<Message>,
    tx: ClientTx,
    purpose: Purpose,
}

pub struct Call {
    pub id: u64,
    settings: Settings,
    phase: Phase,
    a: LegA,
    b: Option<LegB>,
    /// Legs we moved on from (rang out, refused): their transactions still
    /// run — a 487 to ACK, a late 200 to ACK and hang up — and their seats
    /// stay reserved until they end.
    retired: Vec<LegB>,
    targets: VecDeque<Target>,
    servers: Vec<Server>,
    clients: Vec<Client>,
    started: Instant,
    max_ring_at: Instant,
    answered_at: Option<Instant>,
    outcome: Option<Outcome>,
    /// The final status answered to the caller when the call failed.
    pub final_status: Option<u16>,
    out: Vec<Output>,
    counter: u32,
    media: Option<Media>,
    /// When the call ended; it may linger at most [`LINGER_CAP`] after.
    ended_at: Option<Instant>,
    /// The linger cap ran out: whatever is still open is abandoned.
    forced: bool,
    /// The far ends changed (a leg placed, an answer from a new address)
    /// since the engine last asked.
    far_ends_changed: bool,
}

/// The longest a finished call waits for its transactions: their own
/// timers end them within 64·T1 (32 s by default); this is the backstop
/// against a far end that never answers a relayed request.
const LINGER_CAP: Duration = Duration::from_secs(120);

fn reliability(peer: Peer) -> Reliability {
    if peer.is_reliable() {
        Reliability::Reliable
    } else {
        Reliability::Unreliable
    }
}

impl Call {
    /// A call for an INVITE that arrived at `now`. Sends `100 Trying` at
    /// once (§17.2.1) and starts on the first target; with no target,
    /// answers `status reason` to the caller.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        id: u64,
        settings: Settings,
        invite: Message,
        peer: Peer,
        targets: Vec<Target>,
        no_target: (u16, &str, Outcome),
        registrar: &Registrar,
        now: Instant,
    ) -> (Call, Vec<Output>) {
        let branch = invite.top_via().and_then(|v| v.branch).unwrap_or_default();
        let dialog = Dialog::uas(&invite, tag(id, 0), format!("sip:{}", peer.addr));
        let invite_cseq = invite.cseq().map_or(0, |c| c.0);
        let mut call = Call {
            id,
            phase: Phase::Setup,
            a: LegA {
                tx: ServerInvite::new(reliability(peer), settings.timers, now),
                invite,
                peer,
                branch,
                dialog,
                invite_cseq,
                answered: false,
            },
            b: None,
            retired: Vec::new(),
            targets: targets.into(),
            servers: Vec::new(),
            clients: Vec::new(),
            started: now,
            max_ring_at: now + settings.max_ring,
            answered_at: None,
            outcome: None,
            final_status: None,
            settings,
            out: Vec::new(),
            counter: 0,
            ended_at: None,
            forced: false,
            far_ends_changed: true,
            media: None,
        };
        call.respond_a(100, "Trying", None, now);
        if let Err((code, reason)) = call.anchor_media() {
            call.fail_a(code, &reason, Outcome::Failed, now);
            call.settle(now);
            let out = std::mem::take(&mut call.out);
            return (call, out);
        }
        if call.media.as_ref().is_some_and(|m| m.plan.early.is_some()) {
            // Early media (RFC 3960): the caller hears the welcome while
            // seats ring.
            call.respond_a(183, "Session Progress", None, now);
            let playlist = call.media.as_mut().and_then(|m| m.plan.early.take());
            if let (Some(m), Some(playlist)) = (call.media.as_mut(), playlist) {
                m.early_playing = true;
                call.out.push(Output::Media(MediaCommand::Play {
                    leg: 0,
                    playlist: Box::new(playlist),
                }));
            }
        }
        if !call.try_next_target(registrar, now) {
            call.fail_a(no_target.0, no_target.1, no_target.2, now);
        }
        call.settle(now);
        let out = std::mem::take(&mut call.out);
        (call, out)
    }

    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }

    /// Seconds from the INVITE to the answer, once answered.
    pub fn setup_time(&self) -> Option<Duration> {
        self.answered_at.map(|t| t - self.started)
    }

    /// [`Call::far_ends`], when they changed since the last time asked
    /// (so the engine copies them only then).
    pub fn changed_far_ends(&mut self) -> Option<Vec<SocketAddr>> {
        std::mem::take(&mut self.far_ends_changed).then(|| self.far_ends())
    }

    /// The addresses (and ports) the call's far ends send from: the only
    /// sources its requests are taken from.
    pub fn far_ends(&self) -> Vec<SocketAddr> {
        let mut out = vec![self.a.peer.addr];
        for leg in self.retired.iter().chain(self.b.as_ref()) {
            for addr in std::iter::once(leg.peer.addr).chain(leg.latched) {
                if !out.contains(&addr) {
                    out.push(addr);
                }
            }
        }
        out
    }

    /// The B leg's Call-ID, if one was placed.
    pub fn b_call_id(&self) -> Option<&str> {
        self.b.as_ref().map(|b| b.dialog.call_id.as_str())
    }

    /// The seat the call is on or ringing, if any.
    pub fn seat(&self) -> Option<&str> {
        match self.b.as_ref().map(|b| &b.target) {
            Some(Target::Seat { id }) => Some(id),
            _ => None,
        }
    }

    /// Whether nothing is left to do: the call is over and every
    /// transaction has finished lingering.
    pub fn is_finished(&self) -> bool {
        if self.forced {
            return true;
        }
        self.phase == Phase::Ended
            && self.a.tx.is_terminated()
            && self.b.as_ref().is_none_or(LegB::is_done)
            && self.retired.iter().all(LegB::is_done)
            && self.servers.iter().all(|s| s.is_terminated())
            && self.clients.iter().all(|c| c.is_terminated())
    }

    pub fn deadline(&self) -> Option<Instant> {
        let mut d: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                d = Some(d.map_or(t, |d| d.min(t)));
            }
        };
        consider(self.a.tx.deadline());
        for leg in self.retired.iter().chain(self.b.as_ref()) {
            if !leg.is_done() {
                consider(leg.tx.deadline());
                consider(leg.cancel_deadline);
            }
        }
        if let Some(b) = &self.b
            && self.phase == Phase::Setup
            && !b.answered
            && !b.cancelled
        {
            consider(Some(b.ring_deadline.min(self.max_ring_at)));
            if !b.provisional {
                consider(Some(b.response_deadline));
            }
        }
        if self.phase == Phase::Setup && self.b.is_none() {
            consider(Some(self.max_ring_at));
        }
        for s in &self.servers {
            consider(s.deadline());
        }
        for c in &self.clients {
            consider(c.deadline());
        }
        if !self.is_finished() {
            consider(self.ended_at.map(|t| t + LINGER_CAP));
        }
        d
    }

    /// After every input: once the call has ended, close what the end
    /// leaves open — a relayed re-INVITE still pending gets 487 (§15.1.2)
    /// and our own pending relays are abandoned — and enforce the cap.
    fn settle(&mut self, now: Instant) {
        if self.phase != Phase::Ended {
            return;
        }
        if self.ended_at.is_none() {
            self.ended_at = Some(now);
            for s in &mut self.servers {
                if let ServerTx::Invite(tx) = &s.tx
                    && tx.state() == crate::sip::transaction::State::Proceeding
                {
                    let resp = s.request.response(487, "Request Terminated", None).encode();
                    if let Some(Action::Transmit(bytes)) = s.send_response(487, resp, now) {
                        self.out.push(Output::Send(s.peer, bytes));
                    }
                }
            }
            self.clients.retain(|c| {
                !(matches!(c.tx, ClientTx::Invite(_)) && matches!(c.purpose, Purpose::Relay { .. }))
                    || c.is_terminated()
            });
        }
        if self.ended_at.is_some_and(|t| now >= t + LINGER_CAP) {
            tracing::warn!(
                call = self.id,
                "transactions still open after the linger cap; abandoning them"
            );
            self.forced = true;
        }
    }

    /// A message for this call arrived from `peer`.
    pub fn on_message(
        &mut self,
        msg: Message,
        peer: Peer,
        registrar: &Registrar,
        now: Instant,
    ) -> Vec<Output> {
        let call_id = msg.call_id().map(|c| c.as_str()).unwrap_or_default();
        let from_b = self.b.as_ref().is_some_and(|b| call_id == b.dialog.call_id);
        if !from_b
            && let Some(i) = self
                .retired
                .iter()
                .position(|l| l.dialog.call_id == call_id)
        {
            self.on_retired(i, msg, peer, registrar, now);
            self.settle(now);
            return std::mem::take(&mut self.out);
        }
        let side = if from_b { Side::B } else { Side::A };
        if msg.is_request() {
            self.on_request(side, msg, peer, registrar, now);
        } else {
            if side == Side::B
                && let Some(b) = &mut self.b
                && peer.addr != b.peer.addr
                && b.latched.is_none()
                && msg.top_via().and_then(|v| v.branch).as_deref() == Some(b.branch.as_str())
            {
                // The far end answers our INVITE from another port: its
                // in-dialog requests will come from there.
                b.latched = Some(peer.addr);
                self.far_ends_changed = true;
            }
            self.on_response(side, msg, registrar, now);
        }
        self.settle(now);
        std::mem::take(&mut self.out)
    }

    pub fn on_timer(&mut self, registrar: &Registrar, now: Instant) -> Vec<Output> {
        if let Some(action) = self.a.tx.on_timer(now) {
            match action {
                Action::Transmit(bytes) => self.out.push(Output::Send(self.a.peer, bytes)),
                Action::AckTimeout if self.a.answered => {
                    // §13.3.1.4: no ACK for our 2xx: end the session.
                    tracing::info!(
                        call = self.id,
                        "caller never acknowledged the answer; ending"
                    );
                    self.hang_up_both(registrar, now);
                }
                _ => {}
            }
        }
        if let Some(b) = &mut self.b
            && let Some(action) = b.tx.on_timer(now)
        {
            match action {
                Action::Transmit(bytes) => self.out.push(Output::Send(b.peer, bytes)),
                Action::Timeout | Action::TransportError => {
                    // Timer B: the target never answered at all (§17.1.1.2).
                    self.on_b_failure(408, "Request Timeout", registrar, now);
                }
                _ => {}
            }
        }
        self.legs_on_timer(registrar, now);
        // Ring limits: the seat's turn, then the caller's patience.
        if self.phase == Phase::Setup
            && let Some(b) = &self.b
            && !b.answered
            && !b.cancelled
        {
            if now >= self.max_ring_at {
                tracing::info!(call = self.id, "max ring time reached");
                self.cancel_b(now);
                self.targets.clear();
                self.fail_a(
                    480,
                    "Temporarily Unavailable (no answer)",
                    Outcome::NoAnswer,
                    now,
                );
            } else if !b.provisional && now >= b.response_deadline {
                // Nothing at all, not even 100 Trying: the phone or trunk is
                // gone. Waiting out its ring time would hold the caller.
                tracing::info!(
                    call = self.id,
                    target = %b.target,
                    "no response from the target; trying the next"
                );
                self.cancel_b(now);
                self.on_b_failure(408, "Request Timeout (no response)", registrar, now);
            } else if now >= b.ring_deadline {
                tracing::info!(
                    call = self.id,
                    "target did not answer in time; trying the next"
                );
                self.cancel_b(now);
                if !self.try_next_target(registrar, now) {
                    self.fail_a(
                        480,
                        "Temporarily Unavailable (no answer)",
                        Outcome::NoAnswer,
                        now,
                    );
                }
            }
        }
        for i in 0..self.servers.len() {
            let peer = self.servers[i].peer;
            if let Some(Action::Transmit(bytes)) = self.servers[i].on_timer(now) {
                self.out.push(Output::Send(peer, bytes));
            }
        }
        for i in 0..self.clients.len() {
            let peer = self.clients[i].peer;
            match self.clients[i].on_timer(now) {
                Some(Action::Transmit(bytes)) => self.out.push(Output::Send(peer, bytes)),
                Some(Action::Timeout) | Some(Action::TransportError) => {
                    let code = 408;
                    self.client_final(i, code, "Request Timeout", None, now);
                }
                _ => {}
            }
        }
        self.settle(now);
        self.gc();
        std::mem::take(&mut self.out)
    }

    /// Sending to `peer` failed at the transport (§8.1.3.1, §17.1.4,
    /// §17.2.4): the transactions towards it fail at once. A seat that
    /// cannot be reached passes the call on; a caller that cannot be
    /// reached ends it.
    pub fn on_transport_error(
        &mut self,
        peer: Peer,
        registrar: &Registrar,
        now: Instant,
    ) -> Vec<Output> {
        for leg in &mut self.retired {
            if leg.peer == peer && leg.tx.on_transport_error(now).is_some() {
                leg.release(registrar, self.id);
            }
        }
        self.fail_clients(|c| c.peer == peer, now);
        for sv in self.servers.iter_mut().filter(|s| s.peer == peer) {
            sv.on_transport_error(now);
        }
        let b_failed = match &mut self.b {
            Some(b) if b.peer == peer => b.tx.on_transport_error(now).is_some() && !b.answered,
            _ => false,
        };
        if b_failed {
            tracing::info!(call = self.id, "target unreachable; trying the next");
            self.on_b_failure(
                503,
                "Service Unavailable (target unreachable)",
                registrar,
                now,
            );
        }
        if self.a.peer == peer && self.a.tx.on_transport_error(now).is_some() {
            tracing::info!(call = self.id, "caller unreachable; ending the call");
            match self.phase {
                Phase::Setup => {
                    self.cancel_b(now);
                    self.targets.clear();
                    self.end(Outcome::Failed);
                }
                Phase::Connected => {
                    self.send_bye(Side::B, now);
                    self.end(Outcome::Completed);
                    self.release_seat(registrar);
                }
                Phase::Ended => {}
            }
        }
        self.settle(now);
        self.gc();
        std::mem::take(&mut self.out)
    }

    /// An ICMP error says nothing listens at `addr` (§18.4) — for some
    /// datagram sent there, which one is not known, and an ICMP error is
    /// easily forged. So only what still waits for its first answer from
    /// there fails: a leg that has not answered even `100`, a request with
    /// no response yet. An answered leg, a ringing one, and the caller's
    /// leg are never ended by it.
    pub fn on_unreachable(
        &mut self,
        addr: SocketAddr,
        registrar: &Registrar,
        now: Instant,
    ) -> Vec<Output> {
        let silent = |leg: &LegB| {
            leg.peer.addr == addr
                && !leg.peer.is_reliable()
                && !leg.provisional
                && !leg.answered
                && !leg.tx.is_terminated()
        };
        for leg in &mut self.retired {
            if silent(leg) && leg.tx.on_transport_error(now).is_some() {
                leg.release(registrar, self.id);
            }
        }
        self.fail_clients(
            |c| {
                c.peer.addr == addr
                    && !c.peer.is_reliable()
                    && matches!(
                        c.state(),
                        crate::sip::transaction::State::Calling
                            | crate::sip::transaction::State::Trying
                    )
            },
            now,
        );
        if self.phase == Phase::Setup
            && let Some(b) = &mut self.b
            && silent(b)
            && !b.cancelled
            && b.tx.on_transport_error(now).is_some()
        {
            tracing::info!(call = self.id, to = %addr, "target unreachable (ICMP); trying the next");
            self.on_b_failure(
                503,
                "Service Unavailable (target unreachable)",
                registrar,
                now,
            );
        }
        self.settle(now);
        self.gc();
        std::mem::take(&mut self.out)
    }

    /// Ends the client transactions `which` selects at a transport error;
    /// a relayed request's sender is answered `503` rather than left
    /// waiting (§8.1.3.1).
    fn fail_clients(&mut self, which: impl Fn(&Client) -> bool, now: Instant) {
        for i in 0..self.clients.len() {
            if !which(&self.clients[i]) || self.clients[i].is_terminated() {
                continue;
            }
            self.clients[i].on_transport_error(now);
            if matches!(self.clients[i].purpose, Purpose::Relay { .. }) {
                self.client_final(
                    i,
                    503,
                    "Service Unavailable (the far end is unreachable)",
                    None,
                    now,
                );
            }
        }
    }

    fn peer(&self, side: Side) -> Peer {
        match side {
            Side::A => self.a.peer,
            Side::B => self.b.as_ref().map_or(self.a.peer, |b| b.peer),
        }
    }

    fn gc(&mut self) {
        self.retired.retain(|l| !l.is_done());
        self.servers.retain(|s| !s.is_terminated());
        self.clients.retain(|c| !c.is_terminated());
    }

    // ── Leg A ────────────────────────────────────────────────────────────

    fn respond_a(&mut self, code: u16, reason: &str, relay: Option<&Message>, now: Instant) {
        let mut resp = self
            .a
            .invite
            .response(code, reason, Some(&self.a.dialog.local_tag));
        if code > 100 {
            let contact = format!("<sip:hotline@{}>", self.settings.local);
            resp.push(Name::Contact, contact);
            for rr in self.a.dialog.route_set() {
                resp.push(Name::RecordRoute, rr.clone());
            }
        }
        if code == 503
            && let Some(secs) = self.settings.retry_after
        {
            // §21.5.4: the carrier may try elsewhere at once.
            resp.push(Name::Other("Retry-After".into()), secs.to_string());
        }
        match &self.media {
            // Anchored: the caller only ever sees our SDP, in the 183 of
            // early media and in the 200 (RFC 3264 answer).
            Some(m) if code == 183 || (200..300).contains(&code) => {
                resp.set(Name::ContentType, "application/sdp");
                resp.body = Bytes::from(m.a_answer.clone());
            }
            Some(_) => {}
            None => {
                if let Some(src) = relay {
                    copy_body(src, &mut resp);
                }
            }
        }
        let bytes = resp.encode();
        if let Some(Action::Transmit(bytes)) = self.a.tx.send_response(code, bytes, now) {
            self.out.push(Output::Send(self.a.peer, bytes));
        }
        if (200..300).contains(&code) {
            self.a.answered = true;
        }
    }

    /// Ends the setup with a final failure to the caller.
    fn fail_a(&mut self, code: u16, reason: &str, outcome: Outcome, now: Instant) {
        if self.phase != Phase::Setup {
            return;
        }
        self.respond_a(code, reason, None, now);
        self.final_status = Some(code);
        self.end(outcome);
    }

    fn end(&mut self, outcome: Outcome) {
        if self.outcome.is_none() {
            self.outcome = Some(outcome);
        }
        self.phase = Phase::Ended;
        // A finished call lingers 32 s for its transactions' timers (which
        // keep their own encoded bytes); the caller's INVITE needs no more
        // than the fields a response copies.
        keep_response_fields(&mut self.a.invite);
    }

    // ── Leg B ────────────────────────────────────────────────────────────

    /// Places the B leg to the next target that can take it. False when
    /// none is left.
    fn try_next_target(&mut self, registrar: &Registrar, now: Instant) -> bool {
        while let Some(target) = self.targets.pop_front() {
            let (uri, peer) = match &target {
                Target::Trunk { uri, peer, .. } => (uri.clone(), *peer),
                Target::Seat { id } => {
                    let Some(binding) = registrar.lookup(id, now).into_iter().next() else {
                        continue;
                    };
                    if !registrar.try_reserve(id, self.id) {
                        continue;
                    }
                    (binding.uri, binding.peer)
                }
            };
            if matches!(target, Target::Seat { .. })
                && matches!(
                    self.b.as_ref().map(|b| &b.target),
                    Some(Target::Trunk { .. })
                )
            {
                self.play_fallback(now);
            }
            self.place_b(target, uri, peer, now);
            return true;
        }
        false
    }

    fn place_b(&mut self, target: Target, uri: String, peer: Peer, now: Instant) {
        self.counter += 1;
        let n = self.counter;
        // Unguessable: a Call-ID is all it takes to address a call's task.
        let call_id = format!("{:016x}{:08x}@hotline", random_u64(), n);
        let branch = self.branch();
        let caller = self
            .a
            .invite
            .from()
            .map(|f| crate::sip::message::uri_number(f.uri).unwrap_or_default())
            .unwrap_or_default();
        let local_uri = format!("sip:{}@{}", sanitize_user(&caller), self.settings.local);
        let dialog = Dialog::uac(call_id.clone(), &local_uri, tag(self.id, n), &uri);
        let mut invite = Message::request(Method::Invite, uri.clone());
        invite
            .push(Name::Via, self.via(peer, &branch))
            .push(Name::MaxForwards, max_forwards(&self.a.invite))
            .push(Name::From, dialog.local_addr().to_string())
            .push(Name::To, dialog.remote_addr().to_string())
            .push(Name::CallId, call_id.clone())
            .push(Name::CSeq, "1 INVITE")
            .push(
                Name::Contact,
                format!("<sip:hotline@{}>", self.settings.local),
            )
            .push(Name::Allow, ALLOW);
        match &mut self.media {
            Some(m) => {
                // Our offer from our B port: the caller's codec first, so no
                // transcoding is needed when the far end can take it.
                let other = match m.a_codec {
                    Codec::Pcmu => Codec::Pcma,
                    Codec::Pcma => Codec::Pcmu,
                };
                m.b_version = 1;
                let offer = sdp::offer(
                    &[m.a_codec, other],
                    TELEPHONE_EVENT_PT,
                    m.plan.b_local,
                    m.session_id,
                    m.b_version,
                    sdp::Direction::SendRecv,
                );
                invite.set(Name::ContentType, "application/sdp");
                invite.body = Bytes::from(offer);
            }
            None => copy_body(&self.a.invite, &mut invite),
        }
        let bytes = invite.encode();
        tracing::info!(call = self.id, target = %target, to = %peer.addr, b_call_id = %call_id, "placing second leg");
        if let Some(old) = self.b.take() {
            self.retired.push(old);
        }
        self.out.push(Output::Bind(call_id.clone()));
        self.far_ends_changed = true;
        self.out.push(Output::Send(peer, bytes.clone()));
        let tx = ClientInvite::new(bytes, reliability(peer), self.settings.timers, now);
        // A trunk rings for the caller's whole patience, unless other
        // targets follow it (an alternate, a sub-centre's fallback to the
        // 12345 seats): then it has a seat's ring, and they get their turn.
        let ring = match target {
            Target::Seat { .. } => self.settings.seat_ring,
            Target::Trunk { .. } if !self.targets.is_empty() => self.settings.seat_ring,
            Target::Trunk { .. } => self.settings.max_ring,
        };
        self.b = Some(LegB {
            target,
            peer,
            invite,
            tx,
            branch,
            dialog,
            provisional: false,
            cancel_pending: false,
            cancelled: false,
            ring_deadline: now + ring,
            response_deadline: now + self.settings.response_timeout,
            latched: None,
            answered: false,
            cancel_deadline: None,
            given_up: false,
        });
    }

    fn via(&mut self, peer: Peer, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {};branch={branch};rport",
            peer.transport_name(),
            self.settings.local
        )
    }

    fn branch(&mut self) -> String {
        self.counter += 1;
        new_branch(self.id, self.counter)
    }

    /// CANCELs the ringing B leg (§9.1): only after a provisional; before
    /// one, the CANCEL waits for it.
    fn cancel_b(&mut self, now: Instant) {
        let Some(b) = &mut self.b else { return };
        if b.answered || b.cancelled {
            return;
        }
        b.cancelled = true;
        if !b.provisional {
            b.cancel_pending = true;
            return;
        }
        self.send_cancel_b(now);
    }

    fn send_cancel_b(&mut self, now: Instant) {
        let Some(b) = &mut self.b else { return };
        let client = cancel_leg(b, self.settings.timers, now);
        self.out
            .push(Output::Send(client.peer, client.tx_request()));
        self.clients.push(client);
    }

    /// Sends the ACK and BYE for a forked 2xx we do not keep.
    fn send_fork_hangup(
        &mut self,
        peer: Peer,
        ack: Message,
        bye: Message,
        bye_branch: String,
        timers: Timers,
        now: Instant,
    ) {
        tracing::info!(
            call = self.id,
            "second answer from a forking far end; hanging it up"
        );
        self.out.push(Output::Send(peer, ack.encode()));
        let bytes = bye.encode();
        self.out.push(Output::Send(peer, bytes.clone()));
        self.clients.push(Client {
            side: Side::B,
            peer,
            branch: bye_branch,
            method: Method::Bye,
            request: None,
            tx: ClientTx::NonInvite(ClientNonInvite::new(bytes, reliability(peer), timers, now)),
            purpose: Purpose::Bye,
        });
    }

    /// Timers of the B legs beyond their transactions': the retired legs'
    /// retransmissions and time-outs, and giving up on a cancelled INVITE
    /// whose final response never comes.
    fn legs_on_timer(&mut self, registrar: &Registrar, now: Instant) {
        for i in 0..self.retired.len() {
            let leg = &mut self.retired[i];
            match leg.tx.on_timer(now) {
                Some(Action::Transmit(bytes)) => self.out.push(Output::Send(leg.peer, bytes)),
                Some(Action::Timeout) | Some(Action::TransportError) => {
                    leg.release(registrar, self.id)
                }
                _ => {}
            }
        }
        for leg in self.retired.iter_mut().chain(self.b.as_mut()) {
            if leg.cancel_deadline.is_some_and(|d| now >= d) && !leg.tx.is_terminated() {
                tracing::info!(call = self.id, b_call_id = %leg.dialog.call_id, "no final response to our CANCEL; giving up on the leg");
                leg.given_up = true;
                leg.release(registrar, self.id);
            }
        }
    }

    /// A message on a leg we moved on from: finish it cleanly.
    fn on_retired(
        &mut self,
        i: usize,
        msg: Message,
        peer: Peer,
        registrar: &Registrar,
        now: Instant,
    ) {
        let id = self.id;
        if let Some(method) = msg.method().cloned() {
            let leg = &mut self.retired[i];
            match method {
                Method::Ack => {}
                Method::Bye => {
                    self.out
                        .push(Output::Send(peer, msg.response(200, "OK", None).encode()));
                    leg.release(registrar, id);
                }
                _ => {
                    let resp = msg.response(481, "Call/Transaction Does Not Exist", None);
                    self.out.push(Output::Send(peer, resp.encode()));
                }
            }
            return;
        }
        let Some(code) = msg.code() else { return };
        let branch = msg.top_via().and_then(|v| v.branch).unwrap_or_default();
        let is_invite = msg.cseq().is_some_and(|c| c.1 == Method::Invite);
        if !(is_invite && branch == self.retired[i].branch) {
            // Its CANCEL's or BYE's response: an ordinary client transaction.
            self.on_response(Side::B, msg, registrar, now);
            return;
        }
        let timers = self.settings.timers;
        let local = self.settings.local.clone();
        let via_branch = self.branch();
        let leg = &mut self.retired[i];
        let action = leg.tx.on_response(code, now);
        if matches!(action, Some(Action::SendAck) | Some(Action::DeliverAndAck)) {
            self.out.push(Output::Send(
                leg.peer,
                ack_for_failure(&leg.invite, &msg).encode(),
            ));
        }
        if (100..200).contains(&code) {
            leg.provisional = true;
            if leg.cancel_pending {
                let client = cancel_leg(leg, timers, now);
                self.out
                    .push(Output::Send(client.peer, client.tx_request()));
                self.clients.push(client);
            }
        } else if (200..300).contains(&code) {
            // Answered after we moved on (§9.1 race): ACK, then hang up.
            if leg.answered && leg.dialog.is_other_dialog(&msg) {
                let bye_branch = new_branch(id, self.counter + 1);
                self.counter += 1;
                let leg = &self.retired[i];
                let peer = leg.peer;
                let (ack, bye) = fork_ack_and_bye(leg, &msg, &local, &via_branch, &bye_branch);
                self.send_fork_hangup(peer, ack, bye, bye_branch, timers, now);
                return;
            }
            if !leg.answered {
                leg.dialog.learn(&msg);
            }
            let ack = leg.dialog_request(Method::Ack, Some(1), &local, &via_branch);
            self.out.push(Output::Send(leg.peer, ack.encode()));
            if !leg.answered {
                leg.answered = true;
                self.counter += 1;
                let bye_branch = new_branch(id, self.counter);
                let leg = &mut self.retired[i];
                let bye = leg.dialog_request(Method::Bye, None, &local, &bye_branch);
                let bytes = bye.encode();
                self.out.push(Output::Send(leg.peer, bytes.clone()));
                self.clients.push(Client {
                    side: Side::B,
                    peer: leg.peer,
                    branch: bye_branch,
                    method: Method::Bye,
                    request: None,
                    tx: ClientTx::NonInvite(ClientNonInvite::new(
                        bytes,
                        reliability(leg.peer),
                        timers,
                        now,
                    )),
                    purpose: Purpose::Bye,
                });
                leg.release(registrar, id);
            }
        } else {
            leg.release(registrar, id);
        }
    }

    /// The B leg failed with `code`: try the next target while the call
    /// is still setting up, else tell the caller.
    fn on_b_failure(&mut self, code: u16, reason: &str, registrar: &Registrar, now: Instant) {
        let cancelled = self.b.as_ref().is_some_and(|b| b.cancelled);
        if let Some(b) = &self.b
            && let Target::Seat { id } = &b.target
        {
            registrar.release(id, self.id);
        }
        if self.phase != Phase::Setup {
            return;
        }
        let is_seat = matches!(
            self.b.as_ref().map(|b| &b.target),
            Some(Target::Seat { .. })
        );
        if cancelled && self.outcome.is_some() {
            return;
        }
        // Seats that are busy, refuse or time out pass the call on, and so
        // does a failing trunk (to its alternates, or a sub-centre's call
        // to the 12345 seats); the last trunk's answer is relayed.
        if now < self.max_ring_at && self.try_next_target(registrar, now) {
            return;
        }
        if self.settings.retry_after.is_some() {
            tracing::warn!(
                call = self.id,
                code,
                "no emergency trunk took the call; answering 503 so the carrier reroutes"
            );
            self.fail_a(
                503,
                "Service Unavailable (no emergency trunk answered)",
                Outcome::Failed,
                now,
            );
            return;
        }
        if is_seat {
            let (c, r) = if code == 486 || code == 600 {
                (486, "Busy Here (every seat for this line is busy)")
            } else {
                (480, "Temporarily Unavailable (no seat answered)")
            };
            self.fail_a(c, r, Outcome::NoAnswer, now);
        } else {
            // A redirect or a challenge from the far end is for us, not the
            // caller: relaying it would send the caller back to us or ask
            // it for credentials it has not got.
            let (code, reason) = match code {
                300..=399 | 401 | 407 => {
                    (503, "Service Unavailable (the far end refused the call)")
                }
                _ => (code, reason),
            };
            self.fail_a(code, reason, Outcome::Failed, now);
        }
    }

    fn on_response(&mut self, side: Side, msg: Message, registrar: &Registrar, now: Instant) {
        let Some(code) = msg.code() else { return };
        let branch = msg.top_via().and_then(|v| v.branch).unwrap_or_default();
        let method = msg.cseq().map(|c| c.1);
        // The initial INVITE on leg B.
        if side == Side::B
            && let Some(b) = &self.b
            && branch == b.branch
            && method == Some(Method::Invite)
        {
            self.on_b_invite_response(msg, code, registrar, now);
            return;
        }
        let Some(i) = self.clients.iter().position(|c| {
            c.side == side && c.branch == branch && Some(&c.method) == method.as_ref()
        }) else {
            return;
        };
        let action = self.clients[i].on_response(code, now);
        if code >= 200 && matches!(action, Some(Action::Deliver) | Some(Action::DeliverAndAck)) {
            let reason = reason_of(&msg);
            self.client_final(i, code, &reason, Some(&msg), now);
        } else if (100..200).contains(&code) && matches!(action, Some(Action::Deliver)) {
            // Provisional to a relayed request: relay it (not 100).
            if code > 100 {
                self.relay_response(i, code, &reason_of(&msg), &msg, now);
            }
        }
        if matches!(action, Some(Action::SendAck) | Some(Action::DeliverAndAck)) {
            // Non-2xx to a relayed re-INVITE: ACK it hop by hop.
            if let Some(request) = &self.clients[i].request {
                let ack = ack_for_failure(request, &msg);
                self.out
                    .push(Output::Send(self.clients[i].peer, ack.encode()));
            }
        }
        if (200..300).contains(&code) && self.clients[i].method == Method::Invite {
            // 2xx to a relayed re-INVITE: ACK it ourselves (§13.2.2.4).
            let cseq = self.clients[i]
                .request
                .as_ref()
                .and_then(|r| r.cseq())
                .map_or(1, |c| c.0);
            let ack = self.in_dialog_request(side, Method::Ack, Some(cseq));
            self.out.push(Output::Send(self.peer(side), ack.encode()));
        }
    }

    fn on_b_invite_response(
        &mut self,
        msg: Message,
        code: u16,
        registrar: &Registrar,
        now: Instant,
    ) {
        let Some(b) = &mut self.b else { return };
        let action = b.tx.on_response(code, now);
        match action {
            Some(Action::SendAck) | Some(Action::DeliverAndAck) => {
                let ack = ack_for_failure(&b.invite, &msg);
                self.out.push(Output::Send(b.peer, ack.encode()));
            }
            _ => {}
        }
        let delivered = matches!(action, Some(Action::Deliver) | Some(Action::DeliverAndAck));
        let Some(b) = &mut self.b else { return };
        if (100..200).contains(&code) {
            if !delivered {
                return;
            }
            b.provisional = true;
            // The early dialog's tag, so the far end's in-dialog requests
            // (an early BYE) are recognised before any 2xx (§12.1).
            b.dialog.learn_early(&msg);
            if b.cancel_pending {
                self.send_cancel_b(now);
                return;
            }
            let cancelled = b.cancelled;
            // While our early media plays, the caller has its 183; the far
            // end's ringing is not relayed over it.
            let early = self.media.as_ref().is_some_and(|m| m.early_playing);
            if code > 100 && !cancelled && self.phase == Phase::Setup && !early {
                let reason = reason_of(&msg);
                let code = if self.media.is_some() && code == 183 {
                    180
                } else {
                    code
                };
                self.respond_a(code, &reason, Some(&msg), now);
            }
        } else if (200..300).contains(&code) {
            // A second dialog from a forking far end (§13.2.2.4): ACK it
            // and hang it up; the call stays on the first.
            if b.answered && b.dialog.is_other_dialog(&msg) {
                let (peer, timers) = (b.peer, self.settings.timers);
                let (ack_branch, bye_branch) = (self.branch(), self.branch());
                let Some(b) = &self.b else { return };
                let (ack, bye) =
                    fork_ack_and_bye(b, &msg, &self.settings.local, &ack_branch, &bye_branch);
                self.send_fork_hangup(peer, ack, bye, bye_branch, timers, now);
                return;
            }
            // Learn the dialog from the first 2xx (§12.1.2); a retransmitted
            // one is ACKed again (RFC 6026 §7.2).
            if !b.answered {
                b.dialog.learn(&msg);
            }
            let ack = self.in_dialog_request(Side::B, Method::Ack, Some(1));
            let peer = self.peer(Side::B);
            self.out.push(Output::Send(peer, ack.encode()));
            let Some(b) = &mut self.b else { return };
            if b.answered {
                return; // a retransmission: ACKed again above, nothing else
            }
            b.answered = true;
            if b.cancelled || self.phase != Phase::Setup {
                // Answered after we gave up on it (§9.1 race): hang up.
                self.send_bye(Side::B, now);
                self.release_seat(registrar);
                return;
            }
            self.phase = Phase::Connected;
            self.answered_at = Some(now);
            self.connect_media(&msg);
            let reason = reason_of(&msg);
            self.respond_a(code, &reason, Some(&msg), now);
            tracing::info!(call = self.id, "answered");
        } else if delivered {
            let reason = reason_of(&msg);
            if b.cancelled && code == 487 {
                // Our CANCEL worked; the next target (if any) was already
                // tried by whoever cancelled.
                if let Target::Seat { id } = &b.target {
                    registrar.release(id, self.id);
                }
                return;
            }
            self.on_b_failure(code, &reason, registrar, now);
        }
    }

    /// A final response to one of our non-INVITE (or re-INVITE) requests.
    fn client_final(
        &mut self,
        i: usize,
        code: u16,
        reason: &str,
        msg: Option<&Message>,
        now: Instant,
    ) {
        match &self.clients[i].purpose {
            Purpose::Cancel | Purpose::Bye => {}
            Purpose::Relay { .. } => {
                let empty;
                let msg = match msg {
                    Some(m) => m,
                    None => {
                        empty = Message::request(Method::Ack, "sip:x");
                        &empty
                    }
                };
                self.relay_response(i, code, reason, msg, now);
            }
        }
    }

    fn relay_response(&mut self, i: usize, code: u16, reason: &str, msg: &Message, now: Instant) {
        let Purpose::Relay { server_branch } = &self.clients[i].purpose else {
            return;
        };
        let other = other(self.clients[i].side);
        let Some(s) = self
            .servers
            .iter_mut()
            .find(|s| s.side == other && s.branch == *server_branch)
        else {
            return;
        };
        // The server transaction's To already carries our tag: relayed
        // requests arrive inside the dialog.
        let mut resp = s.request.response(code, reason, None);
        copy_body(msg, &mut resp);
        if code > 100 && (200..300).contains(&code) {
            resp.push(
                Name::Contact,
                format!("<sip:hotline@{}>", self.settings.local),
            );
        }
        let bytes = resp.encode();
        let peer = match other {
            Side::A => self.a.peer,
            Side::B => self.b.as_ref().map_or(self.a.peer, |b| b.peer),
        };
        if let Some(Action::Transmit(bytes)) = s.send_response(code, bytes, now) {
            self.out.push(Output::Send(peer, bytes));
        }
    }

    // ── In-dialog requests ───────────────────────────────────────────────

    fn on_request(
        &mut self,
        side: Side,
        msg: Message,
        peer: Peer,
        registrar: &Registrar,
        now: Instant,
    ) {
        let Some(method) = msg.method().cloned() else {
            return;
        };
        let branch = msg.top_via().and_then(|v| v.branch).unwrap_or_default();
        if !self.belongs(side, &msg, peer, registrar, now) {
            tracing::info!(call = self.id, from = %peer.addr, method = %method, "request does not match the dialog; refused");
            if method != Method::Ack {
                let resp = msg.response(481, "Call/Transaction Does Not Exist", None);
                self.out.push(Output::Send(peer, resp.encode()));
            }
            return;
        }
        match (&method, side) {
            (Method::Invite, Side::A) if branch == self.a.branch => {
                // A retransmitted initial INVITE.
                if let Some(Action::Transmit(bytes)) = self.a.tx.on_request(now) {
                    self.out.push(Output::Send(self.a.peer, bytes));
                }
                return;
            }
            (Method::Ack, Side::A) => {
                if branch == self.a.branch {
                    self.a.tx.on_ack(now); // ACK of a non-2xx final
                } else if msg.cseq().is_some_and(|c| c.0 == self.a.invite_cseq) {
                    self.a.tx.on_ack_2xx(now);
                } else {
                    self.ack_relayed_invite(side, &msg, now);
                }
                return;
            }
            (Method::Ack, Side::B) => {
                self.ack_relayed_invite(side, &msg, now);
                return;
            }
            (Method::Cancel, _) if side == Side::B || branch != self.a.branch => {
                // §9.2: a CANCEL matching no INVITE transaction.
                let resp = msg.response(481, "Call/Transaction Does Not Exist", None);
                self.out.push(Output::Send(peer, resp.encode()));
                return;
            }
            (Method::Cancel, Side::A) => {
                // §9.2: the 200 carries the To tag the 487 will carry.
                let ok = msg
                    .response(200, "OK", Some(&self.a.dialog.local_tag))
                    .encode();
                self.out.push(Output::Send(self.a.peer, ok));
                self.caller_gives_up(now);
                return;
            }
            _ => {}
        }
        // Retransmission of a request we already have a transaction for.
        if let Some(s) = self
            .servers
            .iter_mut()
            .find(|s| s.side == side && s.branch == branch && s.method == method)
        {
            let action = s.on_request(now);
            if let Some(Action::Transmit(bytes)) = action {
                self.out.push(Output::Send(peer, bytes));
            }
            return;
        }
        // §12.2.2: a new request's CSeq must exceed the last one the far
        // end used in this dialog.
        let cseq = msg.cseq().map_or(0, |c| c.0);
        let dialog = match side {
            Side::A => Some(&mut self.a.dialog),
            Side::B => self.b.as_mut().map(|b| &mut b.dialog),
        };
        if dialog.is_some_and(|d| !d.accept_remote_cseq(cseq)) {
            let resp = msg.response(500, "Server Internal Error (CSeq out of order)", None);
            self.out.push(Output::Send(peer, resp.encode()));
            return;
        }
        let tx = match method {
            Method::Invite => ServerTx::Invite(ServerInvite::new(
                reliability(peer),
                self.settings.timers,
                now,
            )),
            _ => ServerTx::NonInvite(ServerNonInvite::new(
                reliability(peer),
                self.settings.timers,
                now,
            )),
        };
        self.servers.push(Server {
            side,
            peer,
            branch: branch.clone(),
            method: method.clone(),
            request: msg.clone(),
            tx,
        });
        let s = self.servers.len() - 1;
        if method == Method::Invite {
            let trying = msg.response(100, "Trying", None).encode();
            if let Some(Action::Transmit(b)) = self.servers[s].send_response(100, trying, now) {
                self.out.push(Output::Send(peer, b));
            }
        }
        if method == Method::Bye {
            let ok = msg.response(200, "OK", None).encode();
            if let Some(Action::Transmit(b)) = self.servers[s].send_response(200, ok, now) {
                self.out.push(Output::Send(peer, b));
            }
            tracing::info!(call = self.id, from = side.as_str(), "hang-up");
            match (self.phase, side) {
                (Phase::Connected, _) => {
                    self.send_bye(other(side), now);
                    self.end(Outcome::Completed);
                    self.release_seat(registrar);
                }
                // The caller hangs up while the target rings (§15.1.2):
                // the same as a CANCEL.
                (Phase::Setup, Side::A) => self.caller_gives_up(now),
                // An early-dialog BYE from the target (§15: a callee must
                // not send one; treat it as a refusal). Cancel its INVITE so
                // that leg ends; its seat is freed as the call moves on.
                (Phase::Setup, Side::B) => {
                    self.cancel_b(now);
                    self.on_b_failure(480, "Temporarily Unavailable", registrar, now);
                }
                (Phase::Ended, _) => {}
            }
            return;
        }
        if self.media.is_some() && self.phase == Phase::Connected {
            // Anchored media: a re-INVITE (hold, resume, a new address)
            // changes only its own leg's stream, answered here.
            // So does an UPDATE (RFC 3311): relaying its SDP would take the
            // media off the gateway.
            if method == Method::Invite || method == Method::Update {
                self.answer_reoffer(side, s, &msg, now);
                return;
            }
            if method == Method::Info
                && let Some(digit) = dtmf_in_info(&msg)
            {
                let leg = if side == Side::A { 0 } else { 1 };
                self.out.push(Output::Digit { leg, digit });
                let ok = msg.response(200, "OK", None).encode();
                if let Some(Action::Transmit(b)) = self.servers[s].send_response(200, ok, now) {
                    self.out.push(Output::Send(peer, b));
                }
                return;
            }
        }
        // Other in-dialog requests cross to the other leg once connected.
        if self.phase != Phase::Connected {
            let resp = msg.response(491, "Request Pending", None).encode();
            if let Some(Action::Transmit(b)) = self.servers[s].send_response(491, resp, now) {
                self.out.push(Output::Send(peer, b));
            }
            return;
        }
        let to = other(side);
        let mut relayed = self.in_dialog_request(to, method.clone(), None);
        copy_body(&msg, &mut relayed);
        let out_branch = relayed.top_via().and_then(|v| v.branch).unwrap_or_default();
        let bytes = relayed.encode();
        let to_peer = self.peer(to);
        self.out.push(Output::Send(to_peer, bytes.clone()));
        let tx = match method {
            Method::Invite => ClientTx::Invite(ClientInvite::new(
                bytes,
                reliability(to_peer),
                self.settings.timers,
                now,
            )),
            _ => ClientTx::NonInvite(ClientNonInvite::new(
                bytes,
                reliability(to_peer),
                self.settings.timers,
                now,
            )),
        };
        self.clients.push(Client {
            side: to,
            peer: to_peer,
            branch: out_branch,
            request: (method == Method::Invite).then_some(relayed),
            method,
            tx,
            purpose: Purpose::Relay {
                server_branch: branch,
            },
        });
    }

    /// Accepts the caller's SDP offer for anchoring: negotiates a codec,
    /// builds our answer from our A port, and tells the media session
    /// where the caller is. An offer we cannot take is `488` (RFC 3264
    /// §6). A caller without SDP (a late offer) is not anchored.
    fn anchor_media(&mut self) -> Result<(), (u16, String)> {
        let Some(plan) = self.settings.media.clone() else {
            return Ok(());
        };
        let Some(body) = sdp_body(&self.a.invite) else {
            tracing::info!(
                call = self.id,
                "no SDP offer from the caller; media not anchored"
            );
            return Ok(());
        };
        let (remote, neg) = negotiate_offer(&body, plan.a_local)?;
        let peer_ip = self.a.peer.addr.ip();
        let session_id = u64::from(random_u32());
        let a_answer = sdp::answer(&neg, plan.a_local, session_id, 1);
        self.out
            .push(Output::Media(remote_command(0, peer_ip, &remote, &neg)));
        self.media = Some(Media {
            plan,
            session_id,
            a_answer,
            a_version: 1,
            b_version: 0,
            a_codec: neg.codec,
            early_playing: false,
            held: [false; 2],
            answer_in_ack: [None; 2],
        });
        Ok(())
    }

    /// The call falls back from a trunk to seats (a sub-centre that
    /// failed): the caller hears why while the seats ring, as early media.
    fn play_fallback(&mut self, now: Instant) {
        let Some(playlist) = self.media.as_mut().and_then(|m| m.plan.fallback.take()) else {
            return;
        };
        tracing::info!(
            call = self.id,
            "trunk failed; falling back to the 12345 seats"
        );
        self.respond_a(183, "Session Progress", None, now);
        if let Some(m) = self.media.as_mut() {
            m.early_playing = true;
        }
        self.out.push(Output::Media(MediaCommand::Play {
            leg: 0,
            playlist: Box::new(playlist),
        }));
    }

    /// The far end answered: its SDP says where leg 1 goes; the prompt
    /// stops and the two legs are bridged.
    fn connect_media(&mut self, answer: &Message) {
        let peer_ip = self.peer(Side::B).addr.ip();
        let Some(m) = &mut self.media else { return };
        if let Some(body) = sdp_body(answer)
            && let Ok(remote) = sdp::parse(&body)
            && let Ok(neg) = sdp::negotiate(&remote, &[Codec::Pcmu, Codec::Pcma])
        {
            self.out
                .push(Output::Media(remote_command(1, peer_ip, &remote, &neg)));
        } else {
            tracing::info!(call = self.id, "the far end answered without usable SDP");
        }
        m.early_playing = false;
        // Only now is a leg's silence a sign of trouble: ringing, and the
        // caller's early media, are not.
        for leg in 0..2 {
            self.out.push(Output::Media(MediaCommand::Watch { leg }));
        }
        self.out
            .push(Output::Media(MediaCommand::StopPlay { leg: 0 }));
        self.out
            .push(Output::Media(MediaCommand::Connect(MediaMode::Relay)));
    }

    /// A new offer on an anchored leg (hold, resume, a moved far end):
    /// answered from our port for that leg, without disturbing the other.
    fn answer_reoffer(&mut self, side: Side, s: usize, msg: &Message, now: Instant) {
        let peer = self.servers[s].peer;
        let peer_ip = peer.addr.ip();
        let contact = format!("<sip:hotline@{}>", self.settings.local);
        let Some(m) = &mut self.media else { return };
        let (leg, local) = match side {
            Side::A => (0, m.plan.a_local),
            Side::B => (1, m.plan.b_local),
        };
        let resp = match sdp_body(msg) {
            // An UPDATE without an offer (a session-timer refresh, RFC
            // 4028) changes nothing, and its 2xx may carry no offer (RFC
            // 3311 §5.2).
            None if msg.method() == Some(&Method::Update) => {
                let mut ok = msg.response(200, "OK", None);
                ok.push(Name::Contact, contact);
                (200, ok)
            }
            // No offer (a session refresh, §14.2, or a phone that resumes
            // a hold this way): our offer, two-way — whatever the leg held
            // before — and its answer comes in the ACK.
            None => {
                let version = match side {
                    Side::A => {
                        m.a_version += 1;
                        m.a_version
                    }
                    Side::B => {
                        m.b_version += 1;
                        m.b_version
                    }
                };
                let sdp = sdp::offer(
                    &[m.a_codec],
                    TELEPHONE_EVENT_PT,
                    local,
                    m.session_id,
                    version,
                    sdp::Direction::SendRecv,
                );
                m.answer_in_ack[leg] = msg.cseq().map(|c| c.0);
                let mut ok = msg.response(200, "OK", None);
                ok.push(Name::Contact, contact);
                ok.set(Name::ContentType, "application/sdp");
                ok.body = Bytes::from(sdp);
                (200, ok)
            }
            Some(body) => match negotiate_offer(&body, local) {
                Ok((remote, neg)) => {
                    let version = match side {
                        Side::A => {
                            m.a_version += 1;
                            m.a_version
                        }
                        Side::B => {
                            m.b_version += 1;
                            m.b_version
                        }
                    };
                    m.answer_in_ack[leg] = None;
                    let answer = sdp::answer(&neg, local, m.session_id, version);
                    self.apply_remote(leg, peer_ip, &remote, &neg);
                    let Some(m) = &mut self.media else { return };
                    let mut ok = msg.response(200, "OK", None);
                    ok.push(Name::Contact, contact);
                    ok.set(Name::ContentType, "application/sdp");
                    ok.body = Bytes::from(answer);
                    if side == Side::A {
                        m.a_answer = String::from_utf8_lossy(&ok.body).into_owned();
                    }
                    (200, ok)
                }
                Err((code, reason)) => (code, msg.response(code, &reason, None)),
            },
        };
        if let Some(Action::Transmit(b)) =
            self.servers[s].send_response(resp.0, resp.1.encode(), now)
        {
            self.out.push(Output::Send(peer, b));
        }
    }

    /// A leg's new remote SDP (an offer it made, or its answer to ours):
    /// the stream follows it, and a hold starts or ends — RFC 3264 §8.4: the
    /// holder may send nothing at all, so the other party hears hold music
    /// until it resumes.
    fn apply_remote(
        &mut self,
        leg: usize,
        peer_ip: std::net::IpAddr,
        remote: &sdp::RemoteSdp,
        neg: &sdp::Negotiated,
    ) {
        let Some(m) = &mut self.media else { return };
        let holds = remote.is_hold();
        if m.held[leg] != holds {
            m.held[leg] = holds;
            let other_leg = 1 - leg;
            tracing::info!(call = self.id, leg, on_hold = holds, "hold");
            match (holds, &m.plan.hold) {
                (true, Some(music)) => self.out.push(Output::Media(MediaCommand::Play {
                    leg: other_leg,
                    playlist: Box::new(music.clone()),
                })),
                (true, None) => {}
                (false, _) => self
                    .out
                    .push(Output::Media(MediaCommand::StopPlay { leg: other_leg })),
            }
        }
        self.out
            .push(Output::Media(remote_command(leg, peer_ip, remote, neg)));
    }

    /// Whether a request really is this call's (§12.2.2): it comes from the
    /// leg's address, and — inside a dialog — carries our tag in To and the
    /// far end's in From. A Call-ID alone proves nothing.
    fn belongs(
        &self,
        side: Side,
        msg: &Message,
        peer: Peer,
        registrar: &Registrar,
        now: Instant,
    ) -> bool {
        let Some(method) = msg.method() else {
            return false;
        };
        let branch = msg.top_via().and_then(|v| v.branch).unwrap_or_default();
        let (leg_addrs, dialog) = match side {
            Side::A => ([Some(self.a.peer.addr), None], &self.a.dialog),
            Side::B => match &self.b {
                Some(b) => ([Some(b.peer.addr), b.latched], &b.dialog),
                None => return false,
            },
        };
        if !far_end_address(side, &leg_addrs, self.b.as_ref(), peer, registrar, now) {
            return false;
        }
        // The initial INVITE's retransmissions, its ACK for a failure and
        // its CANCEL match by branch and carry no To tag of ours yet.
        if side == Side::A
            && branch == self.a.branch
            && matches!(method, Method::Invite | Method::Ack | Method::Cancel)
        {
            return true;
        }
        dialog.has_tags_of(msg)
    }

    /// The ACK for a 2xx we sent to a re-INVITE: stop retransmitting it;
    /// if our 2xx carried the offer, the ACK carries the answer.
    fn ack_relayed_invite(&mut self, side: Side, msg: &Message, now: Instant) {
        let leg = if side == Side::A { 0 } else { 1 };
        let cseq = msg.cseq().map(|c| c.0);
        if let Some(m) = &mut self.media
            && cseq.is_some()
            && m.answer_in_ack[leg] == cseq
            && m.answer_in_ack[leg].take().is_some()
            && let Some(body) = sdp_body(msg)
        {
            match sdp::parse(&body).ok().and_then(|r| {
                sdp::negotiate(&r, &[Codec::Pcmu, Codec::Pcma])
                    .ok()
                    .map(|n| (r, n))
            }) {
                Some((remote, neg)) => {
                    let peer_ip = self.peer(side).addr.ip();
                    self.apply_remote(leg, peer_ip, &remote, &neg);
                }
                None => tracing::info!(call = self.id, leg, "no usable SDP answer in the ACK"),
            }
        }
        let cseq = msg.cseq().map(|c| c.0);
        for s in &mut self.servers {
            if s.side == side
                && s.method == Method::Invite
                && s.request.cseq().map(|c| c.0) == cseq
                && let ServerTx::Invite(tx) = &mut s.tx
            {
                tx.on_ack_2xx(now);
                tx.on_ack(now);
            }
        }
    }

    fn release_seat(&self, registrar: &Registrar) {
        if let Some(Target::Seat { id }) = self.b.as_ref().map(|b| &b.target) {
            registrar.release(id, self.id);
        }
    }

    /// Ends an answered call from our side: BYE on both legs.
    fn hang_up_both(&mut self, registrar: &Registrar, now: Instant) {
        if self.phase == Phase::Connected {
            self.send_bye(Side::A, now);
            self.send_bye(Side::B, now);
            self.end(Outcome::Completed);
            self.release_seat(registrar);
        }
    }

    /// The caller gave up while the call was being set up (CANCEL, or a
    /// BYE on the early dialog): 487 to the INVITE, CANCEL to the target.
    /// The ringing seat stays reserved until its INVITE ends.
    fn caller_gives_up(&mut self, now: Instant) {
        if self.phase != Phase::Setup {
            return;
        }
        tracing::info!(call = self.id, "caller cancelled");
        self.cancel_b(now);
        self.targets.clear();
        self.respond_a(487, "Request Terminated", None, now);
        self.final_status = Some(487);
        self.end(Outcome::Cancelled);
    }

    /// A leg of an answered call sent no RTP for the media time-out while
    /// it should have (not on hold): its far end is gone without a BYE
    /// (a rebooted SBC, a lost network). End the call so its seat and
    /// ports are freed.
    pub fn on_media_timeout(&mut self, registrar: &Registrar, now: Instant) -> Vec<Output> {
        if self.phase == Phase::Connected {
            tracing::info!(
                call = self.id,
                "media time-out on an answered call; hanging up"
            );
            self.hang_up_both(registrar, now);
            self.settle(now);
        }
        std::mem::take(&mut self.out)
    }

    /// Hang up everything, for shutdown or an operator's request.
    pub fn terminate(&mut self, registrar: &Registrar, now: Instant) -> Vec<Output> {
        match self.phase {
            Phase::Connected => self.hang_up_both(registrar, now),
            Phase::Setup => {
                self.cancel_b(now);
                self.targets.clear();
                self.fail_a(
                    503,
                    "Service Unavailable (shutting down)",
                    Outcome::Unavailable,
                    now,
                );
            }
            Phase::Ended => {}
        }
        self.release_seat(registrar);
        self.settle(now);
        std::mem::take(&mut self.out)
    }

    fn send_bye(&mut self, side: Side, now: Instant) {
        let bye = self.in_dialog_request(side, Method::Bye, None);
        let branch = bye.top_via().and_then(|v| v.branch).unwrap_or_default();
        let bytes = bye.encode();
        let peer = self.peer(side);
        self.out.push(Output::Send(peer, bytes.clone()));
        let tx = ClientNonInvite::new(bytes, reliability(peer), self.settings.timers, now);
        self.clients.push(Client {
            side,
            peer,
            branch,
            method: Method::Bye,
            request: None,
            tx: ClientTx::NonInvite(tx),
            purpose: Purpose::Bye,
        });
    }

    /// A request inside the dialog of one leg (§12.2.1.1). `cseq` given
    /// for ACK (it reuses the INVITE's); otherwise the next local CSeq.
    fn in_dialog_request(&mut self, side: Side, method: Method, cseq: Option<u32>) -> Message {
        let branch = self.branch();
        let local = self.settings.local.clone();
        match side {
            Side::A => {
                let n = cseq.unwrap_or_else(|| self.a.dialog.next_cseq());
                let transport = self.a.peer.transport_name();
                self.a.dialog.request(method, n, &local, transport, &branch)
            }
            Side::B => match self.b.as_mut() {
                Some(b) => b.dialog_request(method, cseq, &local, &branch),
                None => Message::request(method, "sip:invalid"),
            },
        }
    }
}

impl LegB {
    /// Nothing more will happen on this leg.
    fn is_done(&self) -> bool {
        self.tx.is_terminated() || self.given_up
    }

    /// Frees the seat this leg rang, if it holds it for `call`.
    fn release(&self, registrar: &Registrar, call: u64) {
        if let Target::Seat { id } = &self.target {
            registrar.release(id, call);
        }
    }

    /// A request in this leg's dialog (§12.2.1.1); `cseq` given for ACK.
    fn dialog_request(
        &mut self,
        method: Method,
        cseq: Option<u32>,
        local: &str,
        branch: &str,
    ) -> Message {
        let n = cseq.unwrap_or_else(|| self.dialog.next_cseq());
        self.dialog
            .request(method, n, local, self.peer.transport_name(), branch)
    }

    /// A CANCEL's Request-URI is the INVITE's (§9.1).
    fn remote_target_for_cancel(&self) -> String {
        match &self.invite.start {
            StartLine::Request { uri, .. } => uri.to_string(),
            StartLine::Response { .. } => "sip:invalid".to_string(),
        }
    }
}

impl Server {
    fn on_transport_error(&mut self, now: Instant) {
        let _ = match &mut self.tx {
            ServerTx::Invite(t) => t.on_transport_error(now),
            ServerTx::NonInvite(t) => t.on_transport_error(now),
        };
    }

    fn is_terminated(&self) -> bool {
        match &self.tx {
            ServerTx::Invite(t) => t.is_terminated(),
            ServerTx::NonInvite(t) => t.is_terminated(),
        }
    }
    fn deadline(&self) -> Option<Instant> {
        match &self.tx {
            ServerTx::Invite(t) => t.deadline(),
            ServerTx::NonInvite(t) => t.deadline(),
        }
    }
    fn on_timer(&mut self, now: Instant) -> Option<Action> {
        match &mut self.tx {
            ServerTx::Invite(t) => t.on_timer(now),
            ServerTx::NonInvite(t) => t.on_timer(now),
        }
    }
    fn on_request(&mut self, now: Instant) -> Option<Action> {
        match &mut self.tx {
            ServerTx::Invite(t) => t.on_request(now),
            ServerTx::NonInvite(t) => t.on_request(now),
        }
    }
    fn send_response(&mut self, code: u16, bytes: Bytes, now: Instant) -> Option<Action> {
        if code >= 200 {
            // Answered: retransmissions reuse the bytes; a late relayed
            // answer needs only the fields a response copies.
            keep_response_fields(&mut self.request);
        }
        match &mut self.tx {
            ServerTx::Invite(t) => t.send_response(code, bytes, now),
            ServerTx::NonInvite(t) => t.send_response(code, bytes, now),
        }
    }
}

impl Client {
    fn state(&self) -> crate::sip::transaction::State {
        match &self.tx {
            ClientTx::Invite(t) => t.state(),
            ClientTx::NonInvite(t) => t.state(),
        }
    }

    fn on_transport_error(&mut self, now: Instant) {
        let _ = match &mut self.tx {
            ClientTx::Invite(t) => t.on_transport_error(now),
            ClientTx::NonInvite(t) => t.on_transport_error(now),
        };
    }

    /// The encoded request, for its first transmission.
    fn tx_request(&self) -> Bytes {
        match &self.tx {
            ClientTx::Invite(t) => t.request().clone(),
            ClientTx::NonInvite(t) => t.request().clone(),
        }
    }

    fn is_terminated(&self) -> bool {
        match &self.tx {
            ClientTx::Invite(t) => t.is_terminated(),
            ClientTx::NonInvite(t) => t.is_terminated(),
        }
    }
    fn deadline(&self) -> Option<Instant> {
        match &self.tx {
            ClientTx::Invite(t) => t.deadline(),
            ClientTx::NonInvite(t) => t.deadline(),
        }
    }
    fn on_timer(&mut self, now: Instant) -> Option<Action> {
        match &mut self.tx {
            ClientTx::Invite(t) => t.on_timer(now),
            ClientTx::NonInvite(t) => t.on_timer(now),
        }
    }
    fn on_response(&mut self, code: u16, now: Instant) -> Option<Action> {
        match &mut self.tx {
            ClientTx::Invite(t) => t.on_response(code, now),
            ClientTx::NonInvite(t) => t.on_response(code, now),
        }
    }
}

/// ACK and BYE for a 2xx that opened another dialog on `leg`'s INVITE:
/// that dialog's tag, target and route set come from the response.
fn fork_ack_and_bye(
    leg: &LegB,
    resp: &Message,
    local: &str,
    ack_branch: &str,
    bye_branch: &str,
) -> (Message, Message) {
    let fork = leg.dialog.fork(resp);
    let transport = leg.peer.transport_name();
    let ack = fork.request(Method::Ack, 1, local, transport, ack_branch);
    let bye = fork.request(Method::Bye, 2, local, transport, bye_branch);
    (ack, bye)
}

/// The CANCEL for a leg's INVITE (§9.1): same Request-URI, Call-ID, From,
/// To, Via (so the same branch) and CSeq number; sent only after a
/// provisional, so until then it is held (`cancel_pending`).
fn cancel_leg(leg: &mut LegB, timers: Timers, now: Instant) -> Client {
    leg.cancel_pending = false;
    leg.cancel_deadline = Some(now + timers.timeout());
    let mut cancel = Message::request(Method::Cancel, leg.remote_target_for_cancel());
    for h in &leg.invite.headers {
        if matches!(
            h.name,
            Name::Via | Name::From | Name::To | Name::CallId | Name::MaxForwards
        ) {
            cancel.headers.push(h.clone());
        }
    }
    cancel.push(Name::CSeq, "1 CANCEL");
    let bytes = cancel.encode();
    Client {
        side: Side::B,
        peer: leg.peer,
        branch: leg.branch.clone(),
        method: Method::Cancel,
        request: None,
        tx: ClientTx::NonInvite(ClientNonInvite::new(
            bytes,
            reliability(leg.peer),
            timers,
            now,
        )),
        purpose: Purpose::Cancel,
    }
}

/// Strips a request down to what [`Message::response`] copies (§8.2.6.2),
/// releasing its body and the datagram it was parsed from.
fn keep_response_fields(msg: &mut Message) {
    msg.headers.retain(|h| {
        matches!(
            h.name,
            Name::Via | Name::From | Name::To | Name::CallId | Name::CSeq
        )
    });
    for h in &mut msg.headers {
        h.value = bytesstr::BytesStr::from(h.value.as_str().to_owned());
    }
    msg.headers.shrink_to_fit();
    msg.body = Bytes::new();
}

/// Whether `peer` is the far end of a leg known at `leg_addrs`: that
/// transport address, port included, over UDP (another port of the same
/// host is not the far end); over TCP the host (a connection's port is
/// ephemeral, and a blind spoofer cannot complete a handshake); and for a
/// seat, the address its phone registers from now (its NAT may have given
/// it a new port since the call began).
fn far_end_address(
    side: Side,
    leg_addrs: &[Option<SocketAddr>],
    b: Option<&LegB>,
    peer: Peer,
    registrar: &Registrar,
    now: Instant,
) -> bool {
    let addrs = || leg_addrs.iter().flatten();
    if addrs().any(|a| *a == peer.addr) {
        return true;
    }
    if peer.is_reliable() && addrs().any(|a| a.ip() == peer.addr.ip()) {
        return true;
    }
    match (side, b.map(|b| &b.target)) {
        (Side::B, Some(Target::Seat { id })) => registrar
            .lookup(id, now)
            .iter()
            .any(|binding| binding.peer.addr == peer.addr),
        _ => false,
    }
}

fn other(side: Side) -> Side {
    match side {
        Side::A => Side::B,
        Side::B => Side::A,
    }
}

/// Methods we take part in; sent in Allow (and with 405).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REGISTER";

/// Parses and negotiates an SDP offer for a leg whose RTP is at `local`:
/// `488` for what we cannot take (no PCMU/PCMA, no audio, an address family
/// our socket cannot reach), `400` for SDP that does not parse.
fn negotiate_offer(
    body: &[u8],
    local: SocketAddr,
) -> Result<(sdp::RemoteSdp, sdp::Negotiated), (u16, String)> {
    let remote = sdp::parse(body).map_err(|e| match e {
        sdp::SdpError::NoAudio | sdp::SdpError::NotAcceptable(_) => {
            (488, format!("Not Acceptable Here ({e})"))
        }
        _ => (400, format!("Bad Request (SDP: {e})")),
    })?;
    let neg = sdp::negotiate(&remote, &[Codec::Pcmu, Codec::Pcma])
        .map_err(|e| (488, format!("Not Acceptable Here ({e})")))?;
    if let Some(addr) = neg.remote_rtp
        && addr.is_ipv4() != local.is_ipv4()
    {
        return Err((488, "Not Acceptable Here (address family)".to_string()));
    }
    Ok((remote, neg))
}

/// What the media session needs to know of one leg's negotiated SDP.
fn remote_command(
    leg: usize,
    sip_peer: std::net::IpAddr,
    remote: &sdp::RemoteSdp,
    neg: &sdp::Negotiated,
) -> MediaCommand {
    let mut allowed = vec![sip_peer];
    if let Some(addr) = neg.remote_rtp
        && addr.ip() != sip_peer
    {
        allowed.push(addr.ip());
    }
    MediaCommand::Remote {
        leg,
        addr: neg.remote_rtp,
        codec: neg.codec,
        payload_type: Some(neg.payload_type),
        telephone_event: neg.telephone_event_pt,
        send: remote.audio.direction.has_recv(),
        // A held stream (sendonly, inactive) may carry no RTP at all (RFC
        // 3264 §8.4): only a two-way stream's silence is a dead far end.
        expect: remote.audio.direction == sdp::Direction::SendRecv && neg.remote_rtp.is_some(),
        allowed,
    }
}

/// The SDP in a message body: the body itself, or the `application/sdp`
/// part of a multipart body (SIP-I/SIP-T trunks send SDP with ISUP).
/// `None` when there is no SDP.
fn sdp_body(msg: &Message) -> Option<Bytes> {
    if msg.body.is_empty() {
        return None;
    }
    let ct = msg
        .header(&Name::ContentType)
        .map(|v| v.to_ascii_lowercase())
        .unwrap_or_else(|| "application/sdp".to_string());
    if ct.starts_with("application/sdp") {
        return Some(msg.body.clone());
    }
    if !ct.starts_with("multipart/") {
        return None;
    }
    let original = msg.header(&Name::ContentType)?.to_string();
    let boundary = original.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    })?;
    let text = std::str::from_utf8(&msg.body).ok()?;
    let delimiter = format!("--{boundary}");
    for part in text.split(delimiter.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.trim_start_matches(['\r', '\n']);
        let (head, body) = part
            .split_once("\r\n\r\n")
            .or_else(|| part.split_once("\n\n"))?;
        let is_sdp = head.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("content-type:") && l.contains("application/sdp")
        });
        if is_sdp {
            let body = body.trim_end_matches(['\r', '\n']);
            return Some(Bytes::from(format!("{body}\r\n")));
        }
    }
    None
}

/// A key press carried in SIP INFO (`application/dtmf-relay` or
/// `application/dtmf`), the fallback some trunks use instead of RFC 4733.
fn dtmf_in_info(msg: &Message) -> Option<Digit> {
    let ct = msg.header(&Name::ContentType)?.to_ascii_lowercase();
    if !ct.starts_with("application/dtmf") {
        return None;
    }
    parse_dtmf_relay(std::str::from_utf8(&msg.body).ok()?)
}

fn reason_of(msg: &Message) -> String {
    match &msg.start {
        StartLine::Response { reason, .. } => reason.to_string(),
        StartLine::Request { .. } => String::new(),
    }
}

fn copy_body(from: &Message, to: &mut Message) {
    if from.body.is_empty() {
        return;
    }
    if let Some(ct) = from.header(&Name::ContentType) {
        to.set(Name::ContentType, ct.clone());
    }
    to.body = from.body.clone();
}

fn max_forwards(invite: &Message) -> String {
    let mf = invite
        .header(&Name::MaxForwards)
        .and_then(|v| v.parse::<u8>().ok())
        .unwrap_or(70);
    mf.saturating_sub(1).to_string()
}

/// The ACK for a non-2xx final response (§17.1.1.3): same branch, Call-ID,
/// From and Request-URI as the INVITE, To from the response, CSeq ACK.
fn ack_for_failure(invite: &Message, response: &Message) -> Message {
    let uri = match &invite.start {
        StartLine::Request { uri, .. } => uri.clone(),
        StartLine::Response { .. } => "sip:invalid".into(),
    };
    let mut ack = Message::request(Method::Ack, uri);
    if let Some(via) = invite.header(&Name::Via) {
        ack.push(Name::Via, via.clone());
    }
    for name in [Name::MaxForwards, Name::From, Name::CallId] {
        if let Some(v) = invite.header(&name) {
            ack.push(name, v.clone());
        }
    }
    if let Some(to) = response.header(&Name::To) {
        ack.push(Name::To, to.clone());
    }
    for r in invite.headers_named(&Name::Route) {
        ack.push(Name::Route, r.clone());
    }
    let n = invite.cseq().map_or(1, |c| c.0);
    ack.push(Name::CSeq, format!("{n} ACK"));
    ack
}

/// Keeps a caller number safe to put in a SIP URI user part.
fn sanitize_user(user: &str) -> String {
    let clean: String = user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "+-.*#".contains(*c))
        .collect();
    if clean.is_empty() {
        "anonymous".to_string()
    } else {
        clean
    }
}

fn tag(call: u64, n: u32) -> String {
    format!("{call:x}{n:x}{:016x}", random_u64())
}

fn new_branch(call: u64, n: u32) -> String {
    format!("z9hG4bK{call:x}.{n}.{:016x}", random_u64())
}

fn random_u64() -> u64 {
    (u64::from(random_u32()) << 32) | u64::from(random_u32())
}

/// Tags, branches and our Call-IDs carry 64 random bits (RFC 3261 §19.3
/// asks for 32): in-dialog requests are accepted only with the right tags,
/// so the tags are what keeps a stranger from hanging up a call. A failing
/// system RNG falls back to the clock.
fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    random_bytes(&mut b);
    u32::from_le_bytes(b)
}

/// Random bytes from the system's generator, drawn 256 at a time into a
/// per-thread pool: a call needs a dozen tags and branches, and one
/// `getrandom` system call each showed in the load profile.
fn random_bytes(out: &mut [u8]) {
    use std::cell::RefCell;
    thread_local! {
        static POOL: RefCell<([u8; 256], usize)> = const { RefCell::new(([0; 256], 256)) };
    }
    POOL.with(|pool| {
        let (buf, used) = &mut *pool.borrow_mut();
        for byte in out.iter_mut() {
            if *used == buf.len() {
                if getrandom::fill(buf).is_err() {
                    // No system generator: the clock still keeps values
                    // unique, though no longer unguessable.
                    let nanos = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos());
                    for (i, b) in buf.iter_mut().enumerate() {
                        *b = (nanos >> ((i % 16) * 8)) as u8 ^ i as u8;
                    }
                }
                *used = 0;
            }
            *byte = buf[*used];
            *used += 1;
        }
    });
}

#[cfg(test)]
#[path = "b2bua_tests.rs"]
mod tests;
