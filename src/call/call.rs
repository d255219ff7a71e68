//! One call: its legs, who hears whom, and the controller that decides the
//! next step. The caller's leg ([`LegId::CALLER`]) is joined to the leg we
//! place — a seat, a trunk — tried in turn by the [`Hunt`]; legs we moved
//! on from (rang out, refused) stay in the call until their transactions
//! end, so a late 487 is ACKed and a late 2xx hung up by the leg itself.
//!
//! The legs speak SIP ([`super::leg`]); the call never builds a SIP
//! message. It answers the caller, places legs, relays in-dialog requests
//! between the two joined legs, and drives the media session (anchored
//! SDP per leg, early media, hold music, the bridge).
//!
//! Sans-I/O: [`Call`] is fed messages, "now" and timer expiries, and
//! returns [`Output`]s (bytes to send, Call-IDs to bind, media commands).
//! The engine's per-call task drives it; tests drive it directly.

use super::hunt::Hunt;
pub use super::leg::Target;
use super::leg::{Leg, LegEvent, LegId, LegState, Parts};
use super::queue::{FromAcd, QueuePlan, ToAcd};
use super::registrar::Registrar;
use super::remains::Remains;
use super::timers::{Purpose, Timers as CallTimers};
use crate::media::dtmf::{Digit, parse_dtmf_relay};
use crate::media::g711::Codec;
use crate::media::prompt::{Item, Playlist};
use crate::media::sdp;
use crate::media::session::Command as MediaCommand;
use crate::sip::message::{Message, Method, Name};
use crate::sip::transaction::Timers;
use crate::sip::transport::Peer;
use bytes::Bytes;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use super::leg::ALLOW;

/// What a seat's leg allows: a seat may transfer (REFER) and hears how
/// (NOTIFY).
pub const SEAT_ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY";

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
    /// Hosts besides [`Settings::local`]'s that name us in a REFER's
    /// `Refer-To` (the digest realm, a domain seats register to).
    pub own_names: Vec<String>,
    /// Seats come from this ACD queue: at once when there are no targets,
    /// or once the targets (a sub-centre's trunks) have all failed.
    pub queue: Option<QueuePlan>,
    /// Answer, play these prompts and hang up (a seat's feature code).
    pub announce: Option<Vec<Item>>,
    /// A leader session's call: the caller chooses to wait or take a ticket.
    /// Boxed, as the next: few calls have one, and every call (and its
    /// task) would carry its room.
    pub leader: Option<Box<leader::LeaderPlan>>,
    /// A queued call whose queue offers callbacks in turn (virtual hold):
    /// the ticket it would store, with the number dialogue's settings.
    pub queue_callback: Option<Box<leader::LeaderPlan>>,
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
    /// More streams, for legs placed while another still rings (a
    /// ring-all offer); without it they share the second stream.
    pub streams: Option<Arc<dyn StreamSource>>,
}

/// Where a call gets another media stream for a leg: the stream's index in
/// the call's media session and our RTP address for it. `None`: no port
/// free.
pub trait StreamSource: Send + Sync + std::fmt::Debug {
    fn open(&self) -> Option<(usize, SocketAddr)>;
}

/// One stream of the call's media session: the leg it carries now, and
/// what its SDP said.
struct Stream {
    leg: Option<LegId>,
    local: SocketAddr,
    /// Our SDP version (RFC 4566 `o=`).
    version: u64,
    /// The leg holds the call: the other party hears hold music.
    held: bool,
    /// The leg sent a re-INVITE without an offer: our 200 carried one, and
    /// its answer comes in the ACK (RFC 3264 §5, §14.2); the CSeq of that
    /// re-INVITE, which its ACK repeats.
    answer_in_ack: Option<u32>,
}

impl Stream {
    fn new(leg: Option<LegId>, local: SocketAddr, version: u64) -> Stream {
        Stream {
            leg,
            local,
            version,
            held: false,
            answer_in_ack: None,
        }
    }
}

/// The call's anchored media, once the caller's offer was accepted.
struct Media {
    plan: MediaPlan,
    session_id: u64,
    /// Our SDP answer to the caller, sent in the 183 and the 200.
    a_answer: String,
    a_codec: Codec,
    early_playing: bool,
    /// By index in the media session: 0 the caller's, 1 the first leg
    /// placed, then any opened for legs placed beside it.
    streams: Vec<Stream>,
}

impl Media {
    fn next_version(&mut self, stream: usize) -> u64 {
        self.streams[stream].version += 1;
        self.streams[stream].version
    }
}

/// The telephone-event payload type we offer (RFC 4733; 101 by custom).
const TELEPHONE_EVENT_PT: u8 = 101;

/// What the driver must do.
#[derive(Debug)]
pub enum Output {
    Send(Peer, Bytes),
    /// The call now also answers to this Call-ID (a leg placed).
    Bind(String),
    /// For the call's media session.
    Media(MediaCommand),
    /// A key press signalled in SIP (INFO, application/dtmf-relay).
    Digit {
        leg: usize,
        digit: Digit,
    },
    /// For the ACD.
    Acd(ToAcd),
    /// Play these prompts to a stream, then hold music if `hold` (else
    /// silence, and a `PromptDone` when they end).
    Prompt {
        leg: usize,
        items: Vec<Item>,
        hold: bool,
    },
    /// The seat asks to bring `number` into the call (`*3` + number +
    /// `#`): resolve it through the table and answer with
    /// [`Call::add_party`].
    ThreeWay {
        number: String,
    },
    /// The seat transfers the call to `number` (a REFER, or `#1` +
    /// number + `#`): resolve it through the table and answer with
    /// [`Call::transfer_to`].
    Transfer {
        number: String,
    },
    /// The seat's own INVITE asks to consult `number` (see [`consult`]):
    /// resolve it through the table and answer with [`Call::consult_to`].
    Consult {
        number: String,
    },
    /// A hand-off ended (or was refused): for the event log and
    /// `hotline_transfers_total`.
    Audit(transfer::Audit),
    /// A leader session's caller chose: `wait`, `ticket`, or `none` (the
    /// default, nothing pressed).
    LeaderChoice(&'static str),
    /// Store this ticket, then answer with [`Call::on_ticket`]; its number
    /// is told only then.
    StoreTicket(Box<crate::tickets::model::NewTicket>),
    /// A seat this call rings or frees outside the ACD's own offers (a
    /// three-way party, a seat leaving a direct call): the ACD offers it
    /// nothing while busy.
    Seat {
        seat: String,
        busy: bool,
    },
    /// Record this stream too, if the call is recorded (a party that
    /// joined), under this name.
    Record {
        stream: usize,
        name: String,
    },
    /// The caller took a callback in its turn: its ticket is stored and
    /// told; call it back from `queue` (`line`) keeping its place
    /// (`arrival`).
    CallBack {
        ticket: String,
        /// The queue it waited in (its skill and expert seats too).
        queue: QueuePlan,
        arrival: Instant,
    },
}

/// How the call ended, for `hotline_calls_total{result}` and the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered and later hung up.
    Completed,
    /// The caller hung up before an answer.
    Cancelled,
    /// The caller hung up while waiting in a queue.
    Abandoned,
    /// Nobody answered: every target refused, was busy, or rang out.
    NoAnswer,
    /// The far side refused with a final response we relayed.
    Failed,
    /// No target could be tried at all (no seat free, trunk unreachable).
    Unavailable,
    /// The table refuses the call: a number it does not list (404), a
    /// barred caller (403), a number that is no number (484).
    Rejected,
    /// A leader session's caller took a callback ticket (stored).
    Ticket,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Cancelled => "cancelled",
            Outcome::Abandoned => "abandoned",
            Outcome::NoAnswer => "no_answer",
            Outcome::Failed => "failed",
            Outcome::Unavailable => "unavailable",
            Outcome::Rejected => "rejected",
            Outcome::Ticket => "ticket",
        }
    }
}

/// A final response the call gives its caller when it cannot be put
/// through: the status, the reason phrase, and how the call is counted.
#[derive(Clone, Debug)]
pub struct Rejection {
    pub code: u16,
    pub reason: String,
    pub outcome: Outcome,
}

impl Rejection {
    pub fn new(code: u16, reason: impl Into<String>, outcome: Outcome) -> Rejection {
        Rejection {
            code,
            reason: reason.into(),
            outcome,
        }
    }

    /// Rang out: nobody answered in time.
    fn no_answer() -> Rejection {
        Rejection::new(
            480,
            "Temporarily Unavailable (no answer)",
            Outcome::NoAnswer,
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Ringing a target (or about to).
    Setup,
    /// Waiting in an ACD queue for a seat; ringing the seats offered.
    Queued,
    /// The caller and the placed leg are joined.
    Connected,
    /// Caller, seat and a third party are mixed (三方).
    Conference,
    /// A leader session's caller, answered by us, choosing wait or ticket,
    /// or giving its ticket's details.
    Choosing,
    /// Over: waiting only for transactions to finish their linger timers.
    Ended,
}

/// A request relayed from one leg to the other: its responses go back to
/// the transaction it came in on.
struct Relay {
    from: LegId,
    server_tx: u32,
    to: LegId,
    client_tx: u32,
}

/// The addresses a call's requests are taken from: its legs' exact
/// transport addresses, and hosts that may send from any port (a trunk's
/// configured sources).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FarEnds {
    pub addrs: Vec<SocketAddr>,
    pub hosts: Vec<IpAddr>,
}

impl FarEnds {
    /// Whether `peer` is one of them: the exact address over UDP (another
    /// port of the same host is not the far end), the host over TCP (a
    /// connection's port is ephemeral and a blind spoofer cannot complete
    /// a handshake), or a trunk's source host.
    pub fn admits(&self, peer: Peer) -> bool {
        self.addrs.contains(&peer.addr)
            || (peer.is_reliable() && self.addrs.iter().any(|a| a.ip() == peer.addr.ip()))
            || self.hosts.contains(&peer.addr.ip())
    }
}

pub struct Call {
    pub id: u64,
    settings: Settings,
    phase: Phase,
    /// Every leg still alive, the caller's first.
    legs: Vec<Leg>,
    /// The placed leg the call rings or is joined to.
    current: Option<LegId>,
    next_leg: u32,
    hunt: Hunt,
    /// The call's own timers, by purpose (the legs keep their
    /// transactions' timers).
    timers: CallTimers,
    relays: Vec<Relay>,
    /// Seats the ACD offered the call, and the legs ringing them.
    offers: Vec<(LegId, String)>,
    /// The call went through the ACD: its end is the seat's wrap-up.
    via_acd: bool,
    /// We answered the caller ourselves (to wait in a queue).
    answered_by_us: bool,
    /// Played before the first announcement of the caller's place.
    intro: Option<Vec<Item>>,
    /// The seat hung up (for the ACD: COMPLETEAGENT, not COMPLETECALLER).
    seat_hung_up: bool,
    /// How a call we hang up that way counts, and why (for the BYE's
    /// `Reason`).
    leave_outcome: Outcome,
    leave_reason: Option<(u16, String)>,
    started: Instant,
    answered_at: Option<Instant>,
    outcome: Option<Outcome>,
    /// The final status answered to the caller when the call failed.
    pub final_status: Option<u16>,
    out: Vec<Output>,
    media: Option<Media>,
    /// When the call ended; it may linger at most [`LINGER_CAP`] after.
    ended_at: Option<Instant>,
    /// The linger cap ran out: whatever is still open is abandoned.
    forced: bool,
    /// The far ends changed (a leg placed, an answer from a new address)
    /// since the engine last asked.
    far_ends_changed: bool,
    /// A third party being brought in, ringing or mixed (see
    /// [`conference`]).
    party: Option<Box<conference::Party>>,
    /// Feature codes the seat keys during the call.
    keys: conference::Keys,
    /// The ACD was told the seat's part is over (it left a three-way call
    /// that goes on without it).
    acd_done: bool,
    /// Seats this call marked busy itself ([`Output::Seat`]), by the leg
    /// ringing or talking to them: freed when that leg ends.
    marked: Vec<(LegId, String)>,
    /// The leader session's dialogue, while it runs.
    dialogue: Option<Box<crate::tickets::dialogue::Dialogue>>,
    /// A seat's transfer under way (see [`transfer`]).
    transfer: Option<Box<transfer::Transfer>>,
    /// The seat's consultation, its own second dialog (see [`consult`]).
    consult: Option<Box<consult::Consult>>,
    /// `Referred-By` for the leg being placed (a transfer's target).
    referred_by: Option<String>,
    /// The last third party's target that failed, for the audit.
    last_party_target: Option<String>,
    /// The seat this call would take a consultation from now, as the
    /// registrar was told.
    consultable: Option<String>,
    /// The ticket the caller was told, once stored.
    ticket: Option<String>,
    /// The queue offered a callback in turn (its announcement said so).
    callback_offered: bool,
    /// The queue the call joined.
    joined: Option<Box<QueuePlan>>,
    /// The dialogue running is the queue callback's (not a leader
    /// session's).
    calling_back: bool,
    /// That callback is made once a seat is free (the queue overflowed),
    /// not in the caller's turn.
    later: bool,
}

/// The longest a finished call waits for its transactions: their own
/// timers end them within 64·T1 (32 s by default); this is the backstop
/// against a far end that never answers a relayed request.
const LINGER_CAP: Duration = Duration::from_secs(120);

/// How often a caller waiting unanswered hears 180 again (§13.3.1.1: a
/// UAS sends a provisional every minute; a proxy's Timer C is 3 minutes).
const RINGING_REFRESH: Duration = Duration::from_secs(60);

impl Call {
    /// A call for an INVITE that arrived at `now`. Sends `100 Trying` at
    /// once (§17.2.1) and starts on the first target; with no target,
    /// answers `no_target` to the caller.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        id: u64,
        settings: Settings,
        invite: Message,
        peer: Peer,
        targets: Vec<Target>,
        no_target: Rejection,
        registrar: &Registrar,
        now: Instant,
    ) -> (Call, Vec<Output>) {
        let caller = Leg::incoming(
            LegId::CALLER,
            id,
            invite,
            peer,
            settings.timers,
            settings.local.clone(),
            now,
        );
        let mut call = Call {
            id,
            phase: Phase::Setup,
            // The caller's and the leg placed: most calls have no more (a
            // leg is big; the first push would make room for four).
            legs: {
                let mut legs = Vec::with_capacity(2);
                legs.push(caller);
                legs
            },
            current: None,
            next_leg: 1,
            hunt: Hunt::new(
                targets,
                settings.seat_ring,
                settings.max_ring,
                settings.queue.is_some(),
            ),
            timers: {
                let mut t = CallTimers::default();
                t.set(Purpose::Patience, now + settings.max_ring);
                t
            },
            relays: Vec::new(),
            offers: Vec::new(),
            via_acd: false,
            answered_by_us: false,
            intro: None,
            seat_hung_up: false,
            leave_outcome: Outcome::Unavailable,
            leave_reason: None,
            started: now,
            answered_at: None,
            outcome: None,
            final_status: None,
            settings,
            out: Vec::new(),
            ended_at: None,
            forced: false,
            far_ends_changed: true,
            media: None,
            party: None,
            keys: conference::Keys::default(),
            acd_done: false,
            marked: Vec::new(),
            dialogue: None,
            transfer: None,
            consult: None,
            referred_by: None,
            last_party_target: None,
            consultable: None,
            ticket: None,
            callback_offered: false,
            joined: None,
            calling_back: false,
            later: false,
        };
        call.respond_caller(100, "Trying", None, now);
        if let Some(t) = call.settings.leader.as_ref().and_then(|p| p.session_ends) {
            call.timers.set(Purpose::SessionEnd, t);
        }
        if let Err((code, reason)) = call.anchor_media() {
            call.fail_caller(Rejection::new(code, reason, Outcome::Failed), now);
            let out = call.finish_input(registrar, now);
            return (call, out);
        }
        if let Some(items) = call.settings.announce.take() {
            call.announce_and_hang_up(items, now);
            let out = call.finish_input(registrar, now);
            return (call, out);
        }
        if call.media.as_ref().is_some_and(|m| m.plan.early.is_some()) {
            // Early media (RFC 3960): the caller hears the welcome while
            // seats ring.
            call.respond_caller(183, "Session Progress", None, now);
            let playlist = call.media.as_mut().and_then(|m| m.plan.early.take());
            if let (Some(m), Some(playlist)) = (call.media.as_mut(), playlist) {
                m.early_playing = true;
                call.out.push(Output::Media(MediaCommand::Play {
                    leg: 0,
                    playlist: Box::new(playlist),
                }));
            }
        }
        if !call.try_next_target(registrar, now) && !call.start_choice(now) && !call.join_queue(now)
        {
            call.fail_caller(no_target, now);
        }
        let out = call.finish_input(registrar, now);
        (call, out)
    }

    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }

    /// The media stream of the leg the caller is joined to (for the
    /// recording of that leg).
    pub fn joined_stream(&self) -> usize {
        self.current.map_or(1, |c| self.stream_of(c))
    }

    /// Whether the caller is (or was) put through to a seat or trunk; a
    /// caller answered only to wait is not.
    pub fn bridged(&self) -> bool {
        self.current_leg().is_some_and(Leg::is_answered)
            || matches!(self.phase, Phase::Connected | Phase::Conference)
    }

    /// Legs placed (seats offered, trunks tried), besides the caller's.
    pub fn legs_placed(&self) -> usize {
        self.legs.len().saturating_sub(1)
    }

    /// Seconds from the INVITE to the answer, once answered.
    pub fn setup_time(&self) -> Option<Duration> {
        self.answered_at.map(|t| t - self.started)
    }

    /// [`Call::far_ends`], when they changed since the last time asked
    /// (so the engine copies them only then).
    pub fn changed_far_ends(&mut self) -> Option<FarEnds> {
        std::mem::take(&mut self.far_ends_changed).then(|| self.far_ends())
    }

    /// Where the call's far ends send from: the only sources its requests
    /// are taken from.
    pub fn far_ends(&self) -> FarEnds {
        let mut f = FarEnds::default();
        for leg in &self.legs {
            for addr in leg.far_ends() {
                if !f.addrs.contains(&addr) {
                    f.addrs.push(addr);
                }
            }
            if let Some(Target::Trunk { sources, .. }) = leg.target() {
                for ip in sources {
                    if !f.hosts.contains(ip) {
                        f.hosts.push(*ip);
                    }
                }
            }
        }
        f
    }

    /// The current placed leg's Call-ID, if one was placed.
    pub fn b_call_id(&self) -> Option<&str> {
        self.current_leg().map(|l| l.dialog.call_id.as_str())
    }

    /// The ticket the caller was told, if it took one.
    pub fn ticket(&self) -> Option<&str> {
        self.ticket.as_deref()
    }

    /// The seat the call is on or ringing, if any.
    pub fn seat(&self) -> Option<&str> {
        self.current_leg().and_then(Leg::seat)
    }

    /// Whether nothing is left to do: the call is over and every
    /// transaction has finished lingering.
    pub fn is_finished(&self) -> bool {
        self.forced || (self.phase == Phase::Ended && self.legs.iter().all(Leg::is_done))
    }

    /// Once the call is over and its transactions only wait out their
    /// linger timers: the compact record that answers their
    /// retransmissions in the call's place (see [`super::remains`]).
    /// `None` while the call runs or any transaction still acts on its own.
    pub fn remains(&self, sources: Arc<FarEnds>) -> Option<Remains> {
        if self.phase != Phase::Ended || self.forced || !self.out.is_empty() {
            return None;
        }
        let legs = self
            .legs
            .iter()
            .map(Leg::remains)
            .collect::<Option<Vec<_>>>()?;
        Remains::new(self.id, sources, legs)
    }

    pub fn deadline(&self) -> Option<Instant> {
        let mut d: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                d = Some(d.map_or(t, |d| d.min(t)));
            }
        };
        for leg in &self.legs {
            consider(leg.deadline());
        }
        consider(self.timers.next(|p| self.timer_counts(p)));
        d
    }

    /// Whether a timer of the call's means anything in its state now.
    fn timer_counts(&self, purpose: Purpose) -> bool {
        let ringing = || {
            self.current_leg()
                .is_some_and(|l| !l.is_answered() && !l.is_abandoned())
        };
        match purpose {
            // A target's turn, while it rings; the caller's patience, while
            // a target rings or none could be tried yet.
            Purpose::Turn => self.phase == Phase::Setup && ringing(),
            Purpose::Patience => {
                self.phase == Phase::Setup && (self.current.is_none() || ringing())
            }
            Purpose::Ringing | Purpose::Leave => self.phase == Phase::Queued,
            Purpose::PartyTurn => self.phase == Phase::Connected && self.party.is_some(),
            Purpose::Dialogue => self.phase == Phase::Choosing,
            Purpose::SessionEnd => self.phase == Phase::Queued && self.settings.leader.is_some(),
            Purpose::Linger => !self.is_finished(),
        }
    }

    fn timer_due(&self, purpose: Purpose, now: Instant) -> bool {
        self.timers.due(purpose, now, |p| self.timer_counts(p))
    }

    // ── Inputs ───────────────────────────────────────────────────────────

    /// A message for this call arrived from `peer`.
    pub fn on_message(
        &mut self,
        msg: Message,
        peer: Peer,
        registrar: &Registrar,
        now: Instant,
    ) -> Vec<Output> {
        let call_id = msg.call_id().map(|c| c.as_str()).unwrap_or_default();
        let Some(i) = self.legs.iter().position(|l| l.dialog.call_id == call_id) else {
            return Vec::new();
        };
        if msg.is_request() && !self.belongs(i, &msg, peer, registrar, now) {
            let method = msg.method().cloned().unwrap_or(Method::Ack);
            tracing::info!(call = self.id, from = %peer.addr, method = %method, "request does not match the dialog; refused");
            if method != Method::Ack {
                let resp = msg.response(481, "Call/Transaction Does Not Exist", None);
                self.out.push(Output::Send(peer, resp.encode()));
            }
            return std::mem::take(&mut self.out);
        }
        let before: Vec<SocketAddr> = self.legs[i].far_ends().collect();
        self.legs[i].on_message(msg, peer, now);
        if self.legs[i].far_ends().ne(before) {
            self.far_ends_changed = true;
        }
        self.finish_input(registrar, now)
    }

    pub fn on_timer(&mut self, registrar: &Registrar, now: Instant) -> Vec<Output> {
        for leg in &mut self.legs {
            leg.on_timer(now);
        }
        self.drain(registrar, now);
        if self.timer_due(Purpose::PartyTurn, now) {
            self.on_party_timer(registrar, now);
        }
        if self.timer_due(Purpose::Dialogue, now) {
            self.dialogue_timer(now);
        }
        if self.timer_due(Purpose::SessionEnd, now) {
            self.on_session_end(now);
        }
        if self.timer_due(Purpose::Leave, now) {
            self.leave_queue(now);
        }
        if self.timer_due(Purpose::Ringing, now) {
            self.respond_caller(180, "Ringing", None, now);
            self.timers.set(Purpose::Ringing, now + RINGING_REFRESH);
        }
        // Ring limits: the seat's turn, then the caller's patience.
        if self.phase == Phase::Setup
            && let Some(leg) = self.current_leg()
            && !leg.is_answered()
            && !leg.is_abandoned()
        {
            let target = leg.target().map(|t| t.to_string()).unwrap_or_default();
            if self.timer_due(Purpose::Patience, now) {
                tracing::info!(call = self.id, "max ring time reached");
                self.cancel_current(now);
                self.hunt.clear();
                // A sub-centre that rings unanswered: the 12345 queue.
                if !self.join_queue(now) {
                    self.fail_caller(Rejection::no_answer(), now);
                }
            } else if self.timer_due(Purpose::Turn, now) {
                tracing::info!(
                    call = self.id,
                    target,
                    "target did not answer in time; trying the next"
                );
                self.cancel_current(now);
                if !self.try_next_target(registrar, now) && !self.join_queue(now) {
                    self.fail_caller(Rejection::no_answer(), now);
                }
            }
        }
        self.finish_input(registrar, now)
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
        for leg in &mut self.legs {
            leg.on_transport_error(peer, now);
        }
        self.finish_input(registrar, now)
    }

    /// An ICMP error says nothing listens at `addr` (§18.4). Only what
    /// still waits for its first answer from there fails (see
    /// [`Leg::on_unreachable`]); the caller's leg is never ended by it.
    pub fn on_unreachable(
        &mut self,
        addr: SocketAddr,
        registrar: &Registrar,
        now: Instant,
    ) -> Vec<Output> {
        for leg in self.legs.iter_mut().skip(1) {
            leg.on_unreachable(addr, now);
        }
        self.finish_input(registrar, now)
    }

    /// A leg of an answered call sent no RTP for the media time-out while
    /// it should have (not on hold): its far end is gone without a BYE
    /// (a rebooted SBC, a lost network). End the call so its seat and
    /// ports are freed.
    pub fn on_media_timeout(
        &mut self,
        stream: usize,
        registrar: &Registrar,
        now: Instant,
    ) -> Vec<Output> {
        let party = self.party.as_ref().map(|p| self.stream_of(p.leg));
        if self.phase == Phase::Conference && party == Some(stream) {
            // A silent third party leaves; caller and seat go on.
            tracing::info!(
                call = self.id,
                "media time-out on the third party; dropping it"
            );
            self.drop_party(now);
            return self.finish_input(registrar, now);
        }
        if matches!(self.phase, Phase::Queued | Phase::Choosing) && self.answered_by_us {
            tracing::info!(call = self.id, "media time-out while waiting; hanging up");
            self.cancel_offers(now);
            self.caller().hang_up(now);
            let outcome = self.waiting_outcome();
            self.end(outcome);
        }
        if matches!(self.phase, Phase::Connected | Phase::Conference) {
            tracing::info!(
                call = self.id,
                "media time-out on an answered call; hanging up"
            );
            self.hang_up_both(now);
        }
        self.finish_input(registrar, now)
    }

    /// Hang up everything, for shutdown or an operator's request.
    pub fn terminate(&mut self, registrar: &Registrar, now: Instant) -> Vec<Output> {
        self.stop(503, "Service Unavailable (shutting down)", registrar, now)
    }

    /// A supervisor ends the call (the control API): as at shutdown, but a
    /// caller not yet put through is told `480` (ended by the operator).
    pub fn end_by_operator(&mut self, registrar: &Registrar, now: Instant) -> Vec<Output> {
        tracing::info!("call ended by the operator");
        if self.phase == Phase::Queued && self.via_acd && !self.acd_done {
            // Out of the queue at once: no seat is offered a caller being
            // hung up on (its task may linger a while yet).
            self.acd_done = true;
            self.out.push(Output::Acd(ToAcd::Hungup));
        }
        self.stop(
            480,
            "Temporarily Unavailable (ended by the operator)",
            registrar,
            now,
        )
    }

    fn stop(
        &mut self,
        code: u16,
        reason: &'static str,
        registrar: &Registrar,
        now: Instant,
    ) -> Vec<Output> {
        match self.phase {
            Phase::Connected | Phase::Conference => self.hang_up_both(now),
            Phase::Queued if self.answered_by_us => self.leave_queue(now),
            Phase::Choosing => {
                self.caller().hang_up(now);
                // A ticket already told stays the call's outcome.
                let outcome = if self.ticket.is_some() {
                    Outcome::Ticket
                } else {
                    Outcome::Unavailable
                };
                self.end(outcome);
            }
            Phase::Queued | Phase::Setup => {
                self.cancel_offers(now);
                self.cancel_current(now);
                self.hunt.clear();
                self.phase = Phase::Setup;
                self.fail_caller(Rejection::new(code, reason, Outcome::Unavailable), now);
            }
            Phase::Ended => {}
        }
        self.finish_input(registrar, now)
    }

    // ── After every input ────────────────────────────────────────────────

    /// Collects what the legs send and report until they are quiet, frees
    /// the seats of legs that ended, closes what the end of the call
    /// leaves open, and hands the output over.
    fn finish_input(&mut self, registrar: &Registrar, now: Instant) -> Vec<Output> {
        self.drain(registrar, now);
        if self.phase == Phase::Ended {
            // A third party still ringing or joined goes with the call.
            self.end_consult(now);
            self.drop_party(now);
            self.transfer_abandoned();
        }
        self.settle(now);
        self.drain(registrar, now);
        self.release_ended_seats(registrar);
        self.unmark_ended_seats();
        self.tell_consultable(registrar);
        if self.phase == Phase::Ended || self.legs.len() > 2 {
            self.gc();
        }
        std::mem::take(&mut self.out)
    }

    fn drain(&mut self, registrar: &Registrar, now: Instant) {
        // Events may make legs send and report more; bounded, since each
        // pass consumes what the legs queued.
        for _ in 0..16 {
            let mut events = Vec::new();
            for leg in &mut self.legs {
                while let Some((peer, bytes)) = leg.poll_transmit() {
                    self.out.push(Output::Send(peer, bytes));
                }
                while let Some(ev) = leg.poll_event() {
                    events.push((leg.id, ev));
                }
            }
            if events.is_empty() {
                return;
            }
            for (leg, ev) in events {
                self.on_leg_event(leg, ev, registrar, now);
            }
        }
    }

    /// Once the call has ended: close what the end leaves open — a
    /// re-INVITE still pending gets 487 (§15.1.2), our own pending relays
    /// are let go — and enforce the linger cap.
    fn settle(&mut self, now: Instant) {
        if self.phase != Phase::Ended {
            return;
        }
        if self.ended_at.is_none() {
            self.ended_at = Some(now);
            self.timers.set(Purpose::Linger, now + LINGER_CAP);
            self.relays.clear();
            for leg in &mut self.legs {
                leg.close_pending(now);
            }
        }
        if !self.forced && self.timer_due(Purpose::Linger, now) {
            tracing::warn!(
                call = self.id,
                "transactions still open after the linger cap; abandoning them"
            );
            self.forced = true;
            for leg in &mut self.legs {
                leg.abandon();
            }
        }
    }

    /// A seat is held while a leg rings or talks to it; once the leg has
    /// ended it is free again — unless another live leg of this call is
    /// on the same seat.
    fn release_ended_seats(&self, registrar: &Registrar) {
        for leg in &self.legs {
            let Some(seat) = leg.seat() else { continue };
            if leg.state() != LegState::Ended {
                continue;
            }
            let held_elsewhere = self
                .legs
                .iter()
                .any(|l| l.id != leg.id && l.seat() == Some(seat) && l.state() != LegState::Ended);
            if !held_elsewhere {
                registrar.release(seat, self.id);
            }
        }
    }

    /// Seats marked busy by this call whose leg has ended are free.
    fn unmark_ended_seats(&mut self) {
        let ended = |id: LegId| {
            self.legs
                .iter()
                .find(|l| l.id == id)
                .is_none_or(|l| l.state() == LegState::Ended)
        };
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.marked)
            .into_iter()
            .partition(|(id, _)| ended(*id));
        self.marked = kept;
        for (_, seat) in gone {
            self.out.push(Output::Seat { seat, busy: false });
        }
    }

    fn gc(&mut self) {
        let current = self.current;
        let party = self.party.as_ref().map(|p| p.leg);
        self.legs.retain(|l| {
            l.id == LegId::CALLER || Some(l.id) == current || Some(l.id) == party || !l.is_done()
        });
    }

    fn leg(&mut self, id: LegId) -> Option<&mut Leg> {
        self.legs.iter_mut().find(|l| l.id == id)
    }

    /// The IP a leg's SIP comes from (its RTP may come from there too).
    fn leg_ip(&self, id: LegId) -> Option<IpAddr> {
        self.legs
            .iter()
            .find(|l| l.id == id)
            .map(|l| l.peer.addr.ip())
    }

    fn current_leg(&self) -> Option<&Leg> {
        let id = self.current?;
        self.legs.iter().find(|l| l.id == id)
    }

    fn caller(&mut self) -> &mut Leg {
        &mut self.legs[0]
    }

    // ── What the legs report ─────────────────────────────────────────────

    fn on_leg_event(&mut self, leg: LegId, ev: LegEvent, registrar: &Registrar, now: Instant) {
        let ev = match self.on_offer_event(leg, ev, now) {
            Some(ev) => ev,
            None => return,
        };
        let ev = match self.on_party_event(leg, ev, registrar, now) {
            Some(ev) => ev,
            None => return,
        };
        if self.is_consult(leg) {
            self.on_consult_event(leg, ev, now);
            return;
        }
        let is_current = Some(leg) == self.current;
        match ev {
            LegEvent::Request { tx, msg } => {
                if leg == LegId::CALLER || is_current || self.is_party(leg) {
                    self.on_in_dialog_request(leg, tx, msg, now);
                } else if let Some(l) = self.leg(leg) {
                    // A leg we moved on from has nothing to say.
                    l.reply(
                        tx,
                        481,
                        "Call/Transaction Does Not Exist",
                        Parts::default(),
                        now,
                    );
                }
            }
            LegEvent::Response {
                tx,
                code,
                reason,
                msg,
            } => self.on_relayed_response(leg, tx, code, &reason, msg.as_ref(), now),
            LegEvent::Ack { msg } => self.on_ack(leg, &msg),
            LegEvent::Cancelled => self.caller_gives_up(now),
            LegEvent::AckTimeout | LegEvent::Unreachable
                if matches!(self.phase, Phase::Queued | Phase::Choosing) =>
            {
                tracing::info!(
                    call = self.id,
                    "caller gone while waiting; leaving the queue"
                );
                self.cancel_offers(now);
                // §13.3.1.4: no ACK for our 2xx: the session ends with a BYE.
                self.caller().hang_up(now);
                let outcome = self.waiting_outcome();
                self.end(outcome);
            }
            LegEvent::AckTimeout => {
                // §13.3.1.4: no ACK for our 2xx: end the session.
                tracing::info!(
                    call = self.id,
                    "caller never acknowledged the answer; ending"
                );
                self.hang_up_both(now);
            }
            LegEvent::Unreachable => {
                tracing::info!(call = self.id, "caller unreachable; ending the call");
                match self.phase {
                    Phase::Setup => {
                        self.cancel_current(now);
                        self.hunt.clear();
                        self.end(Outcome::Failed);
                    }
                    Phase::Connected | Phase::Conference => {
                        if let Some(id) = self.current
                            && let Some(l) = self.leg(id)
                        {
                            l.hang_up(now);
                        }
                        self.end(Outcome::Completed);
                    }
                    Phase::Queued | Phase::Choosing | Phase::Ended => {}
                }
            }
            LegEvent::HungUp if leg == LegId::CALLER && self.phase == Phase::Choosing => {
                tracing::info!(
                    call = self.id,
                    "caller hung up during the leader session's dialogue"
                );
                let outcome = if self.ticket.is_some() {
                    Outcome::Ticket
                } else {
                    Outcome::Abandoned
                };
                self.end(outcome);
            }
            LegEvent::HungUp if leg == LegId::CALLER && self.phase == Phase::Queued => {
                tracing::info!(call = self.id, "caller hung up while waiting");
                self.cancel_offers(now);
                let outcome = self.waiting_outcome();
                self.end(outcome);
            }
            LegEvent::HungUp if is_current && self.phase == Phase::Conference => self.seat_left(),
            LegEvent::HungUp if is_current && self.transferring() => self.transferor_left(),
            LegEvent::HungUp
                if is_current
                    && self.phase == Phase::Connected
                    && self.seat_left_after_intro(now) => {}
            LegEvent::HungUp
                if is_current
                    && self.phase == Phase::Connected
                    && self.seat_left_ringing_party(now) => {}
            LegEvent::HungUp if leg == LegId::CALLER && self.phase == Phase::Conference => {
                tracing::info!(call = self.id, "the caller left the three-way call");
                if let Some(id) = self.current
                    && let Some(l) = self.leg(id)
                {
                    l.hang_up(now);
                }
                self.end(Outcome::Completed);
            }
            LegEvent::HungUp if leg == LegId::CALLER || is_current => {
                if self.phase == Phase::Connected {
                    self.seat_hung_up = leg != LegId::CALLER;
                    let other = if leg == LegId::CALLER {
                        self.current
                    } else {
                        Some(LegId::CALLER)
                    };
                    if let Some(other) = other
                        && let Some(l) = self.leg(other)
                    {
                        l.hang_up(now);
                    }
                    self.end(Outcome::Completed);
                }
            }
            LegEvent::HungUp => {}
            LegEvent::Progress { code, msg } if is_current => self.on_progress(code, &msg, now),
            LegEvent::Answered { msg } if is_current => self.on_answered(leg, &msg, now),
            LegEvent::Answered { .. } => {
                // Answered after we moved on from it (the leg hangs up
                // abandoned legs itself; this one was not).
                if let Some(l) = self.leg(leg) {
                    l.hang_up(now);
                }
            }
            LegEvent::Failed { code, reason } if is_current => {
                self.on_target_failed(code, &reason, registrar, now);
            }
            LegEvent::Silent if is_current && self.phase == Phase::Setup => {
                let target = self
                    .current_leg()
                    .and_then(Leg::target)
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                tracing::info!(
                    call = self.id,
                    target,
                    "no response from the target; trying the next"
                );
                self.cancel_current(now);
                self.on_target_failed(408, "Request Timeout (no response)", registrar, now);
            }
            LegEvent::Progress { .. } | LegEvent::Failed { .. } | LegEvent::Silent => {}
        }
    }

    fn on_progress(&mut self, code: u16, msg: &Message, now: Instant) {
        // While our early media plays, the caller has its 183; the far
        // end's ringing is not relayed over it.
        let early = self.media.as_ref().is_some_and(|m| m.early_playing);
        if self.phase != Phase::Setup || early {
            return;
        }
        let code = if self.media.is_some() && code == 183 {
            180
        } else {
            code
        };
        self.respond_caller(code, &super::leg::reason_of(msg), Some(msg), now);
    }

    fn on_answered(&mut self, leg: LegId, msg: &Message, now: Instant) {
        if self.phase != Phase::Setup {
            // Answered after the call moved on (§9.1 race): hang up.
            if let Some(l) = self.leg(leg) {
                l.hang_up(now);
            }
            return;
        }
        self.phase = Phase::Connected;
        self.answered_at = Some(now);
        self.connect_media(leg, msg);
        self.respond_caller(200, &super::leg::reason_of(msg), Some(msg), now);
        tracing::debug!(call = self.id, "answered");
    }

    /// The current target failed with `code`: try the next while the call
    /// is still setting up, else tell the caller.
    fn on_target_failed(&mut self, code: u16, reason: &str, registrar: &Registrar, now: Instant) {
        if self.phase != Phase::Setup {
            return;
        }
        let is_seat = self.current_leg().is_some_and(|l| l.seat().is_some());
        // Seats that are busy, refuse or time out pass the call on, and so
        // does a failing trunk (to its alternates, or a sub-centre's call
        // to the 12345 seats); the last trunk's answer is relayed.
        let patient = self.timers.get(Purpose::Patience).is_some_and(|t| now < t);
        if patient && self.try_next_target(registrar, now) {
            return;
        }
        // A sub-centre that fails: the caller waits for the 12345 seats.
        if self.join_queue(now) {
            return;
        }
        if self.settings.retry_after.is_some() {
            tracing::warn!(
                call = self.id,
                code,
                "no emergency trunk took the call; answering 503 so the carrier reroutes"
            );
            self.fail_caller(
                Rejection::new(
                    503,
                    "Service Unavailable (no emergency trunk answered)",
                    Outcome::Failed,
                ),
                now,
            );
            return;
        }
        let rejection = if is_seat {
            if code == 486 || code == 600 {
                Rejection::new(
                    486,
                    "Busy Here (every seat for this line is busy)",
                    Outcome::NoAnswer,
                )
            } else {
                Rejection::new(
                    480,
                    "Temporarily Unavailable (no seat answered)",
                    Outcome::NoAnswer,
                )
            }
        } else {
            // A redirect or a challenge from the far end is for us, not the
            // caller: relaying it would send the caller back to us or ask
            // it for credentials it has not got.
            match code {
                300..=399 | 401 | 407 => Rejection::new(
                    503,
                    "Service Unavailable (the far end refused the call)",
                    Outcome::Failed,
                ),
                _ => Rejection::new(code, reason, Outcome::Failed),
            }
        };
        self.fail_caller(rejection, now);
    }

    // ── The caller's leg ─────────────────────────────────────────────────

    fn respond_caller(&mut self, code: u16, reason: &str, relay: Option<&Message>, now: Instant) {
        let mut parts = Parts::default();
        if code == 503
            && let Some(secs) = self.settings.retry_after
        {
            // §21.5.4: the carrier may try elsewhere at once.
            parts = parts.header(Name::Other("Retry-After".into()), secs.to_string());
        }
        match &self.media {
            // Anchored: the caller only ever sees our SDP, in the 183 of
            // early media and in the 200 (RFC 3264 answer).
            Some(m) if code == 183 || (200..300).contains(&code) => {
                parts.body = Some(("application/sdp".into(), Bytes::from(m.a_answer.clone())));
            }
            Some(_) => {}
            None => {
                if let Some(src) = relay {
                    parts.body = Parts::body_of(src).body;
                }
            }
        }
        self.caller().respond(code, reason, parts, now);
    }

    /// Ends the setup with a final failure to the caller.
    fn fail_caller(&mut self, r: Rejection, now: Instant) {
        if self.phase != Phase::Setup {
            return;
        }
        self.respond_caller(r.code, &r.reason, None, now);
        self.final_status = Some(r.code);
        self.end(r.outcome);
    }

    fn end(&mut self, outcome: Outcome) {
        if self.outcome.is_none() {
            self.outcome = Some(outcome);
        }
        if self.via_acd && !self.acd_done {
            match self.phase {
                Phase::Connected | Phase::Conference => self.out.push(Output::Acd(ToAcd::Ended {
                    by_seat: self.seat_hung_up,
                })),
                Phase::Queued if outcome == Outcome::Abandoned => {
                    self.out.push(Output::Acd(ToAcd::Abandoned));
                }
                _ => {}
            }
        }
        self.phase = Phase::Ended;
        self.hunt.clear();
    }

    /// The caller gave up while the call was being set up (CANCEL, or a
    /// BYE on the early dialog): 487 to the INVITE, CANCEL to the target.
    /// The ringing seat stays reserved until its INVITE ends.
    fn caller_gives_up(&mut self, now: Instant) {
        let outcome = match self.phase {
            Phase::Setup => Outcome::Cancelled,
            // Waiting unanswered (media not anchored): an abandon.
            Phase::Queued if !self.answered_by_us => Outcome::Abandoned,
            _ => return,
        };
        tracing::info!(call = self.id, "caller cancelled");
        self.cancel_current(now);
        self.cancel_offers(now);
        self.hunt.clear();
        self.respond_caller(487, "Request Terminated", None, now);
        self.final_status = Some(487);
        self.end(outcome);
    }

    /// Ends an answered call from our side: BYE on both legs (and on a
    /// third party's, once the call has ended).
    fn hang_up_both(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Connected | Phase::Conference) {
            return;
        }
        self.caller().hang_up(now);
        if let Some(id) = self.current
            && let Some(l) = self.leg(id)
        {
            l.hang_up(now);
        }
        self.end(Outcome::Completed);
    }

    // ── Waiting in a queue ───────────────────────────────────────────────

    /// Puts the caller in its ACD queue, if the call has one and is still
    /// being set up. Anchored, the caller is answered now — a carrier
    /// gives up on a call that rings for minutes — and hears its place;
    /// unanchored it keeps ringing, since we have no media to answer with.
    fn join_queue(&mut self, now: Instant) -> bool {
        if self.phase != Phase::Setup {
            return false;
        }
        let Some(plan) = self.settings.queue.take() else {
            return false;
        };
        tracing::debug!(call = self.id, queue = %plan.queue, "waiting in the queue");
        self.phase = Phase::Queued;
        self.via_acd = true;
        self.current = None;
        self.timers.clear(Purpose::Turn);
        if self.answered_by_us {
            // Answered already (a leader session's caller who chose to wait).
        } else if self.media.is_some() {
            self.respond_caller(200, "OK", None, now);
            self.answered_by_us = true;
            self.answered_at = Some(now);
            if let Some(m) = &mut self.media {
                m.early_playing = false;
            }
            // A caller who loses coverage sends no BYE: its silence is.
            self.out.push(Output::Media(MediaCommand::Watch { leg: 0 }));
        } else {
            self.respond_caller(180, "Ringing", None, now);
            self.timers.set(Purpose::Ringing, now + RINGING_REFRESH);
        }
        self.joined = Some(Box::new(plan.clone()));
        self.intro = Some(plan.intro);
        self.out.push(Output::Acd(ToAcd::Join {
            queue: plan.queue,
            line: plan.line,
            skill: plan.skill,
            expert_seats: plan.expert_seats,
            arrival: self.started,
        }));
        true
    }

    /// What the ACD says to a waiting call.
    pub fn on_acd(&mut self, cmd: FromAcd, registrar: &Registrar, now: Instant) -> Vec<Output> {
        match cmd {
            FromAcd::Offer { seat, .. } => {
                // Offered a seat at once (no announcement of a place): the
                // caller hears the intro and music while it rings.
                if let Some(intro) = self.intro.take()
                    && self.answered_by_us
                {
                    self.out.push(Output::Prompt {
                        leg: 0,
                        items: intro,
                        hold: true,
                    });
                }
                self.offer(seat, registrar, now)
            }
            FromAcd::Retract { seat } => {
                if let Some(i) = self.offers.iter().position(|(_, s)| *s == seat) {
                    let (leg, _) = self.offers.remove(i);
                    if let Some(l) = self.leg(leg) {
                        l.cancel(now);
                    }
                }
            }
            FromAcd::Announce { mut items } if self.phase == Phase::Queued => {
                // The callback offered only to a caller that can take it
                // (a dialogue needs anchored media and the ticket's plan).
                let offer =
                    crate::media::prompt::Item::prompt(crate::acd::announce::QUEUE_CALLBACK_OFFER);
                if items.contains(&offer) {
                    if self.settings.queue_callback.is_some() && self.media.is_some() {
                        self.callback_offered = true;
                    } else {
                        items.retain(|i| *i != offer);
                    }
                }
                let mut all = self.intro.take().unwrap_or_default();
                all.extend(items);
                if self.answered_by_us {
                    self.out.push(Output::Prompt {
                        leg: 0,
                        items: all,
                        hold: true,
                    });
                }
            }
            FromAcd::CallBackLater { reason, .. }
                if self.phase == Phase::Queued && self.callback_later(now) =>
            {
                tracing::info!(call = self.id, %reason, "the queue overflowed to a callback");
            }
            FromAcd::Leave {
                items,
                code,
                reason,
            }
            | FromAcd::CallBackLater {
                items,
                code,
                reason,
            } if self.phase == Phase::Queued => {
                tracing::info!(call = self.id, %reason, "leaving the queue");
                self.cancel_offers(now);
                if self.answered_by_us {
                    // The caller hears why, then we hang up (at the
                    // latest after a minute, should the prompt not end).
                    self.out.push(Output::Prompt {
                        leg: 0,
                        items,
                        hold: false,
                    });
                    self.timers
                        .set(Purpose::Leave, now + Duration::from_secs(60));
                    self.leave_reason = Some((code, reason));
                } else {
                    self.phase = Phase::Setup;
                    self.fail_caller(Rejection::new(code, reason, Outcome::Unavailable), now);
                }
            }
            FromAcd::Announce { .. } | FromAcd::Leave { .. } | FromAcd::CallBackLater { .. } => {}
        }
        self.finish_input(registrar, now)
    }

    /// A key the caller pressed (RTP events, read by the media session).
    pub fn on_digit(
        &mut self,
        leg: usize,
        digit: Digit,
        registrar: &Registrar,
        now: Instant,
    ) -> Vec<Output> {
        if leg == 0 {
            self.caller_key(digit.as_char(), now);
        }
        self.on_call_key(leg, digit, now);
        self.finish_input(registrar, now)
    }

    /// A prompt played with `hold: false` has ended.
    pub fn on_prompt_done(
        &mut self,
        leg: usize,
        registrar: &Registrar,
        now: Instant,
    ) -> Vec<Output> {
        if leg == 0 && self.phase == Phase::Queued && self.timers.is_set(Purpose::Leave) {
            self.leave_queue(now);
        }
        if leg == 0 {
            self.dialogue_prompt_done(now);
        }
        self.finish_input(registrar, now)
    }

    /// The caller has stopped speaking (the media session listened, for a
    /// spoken request).
    pub fn on_quiet(
        &mut self,
        leg: usize,
        spoke: bool,
        registrar: &Registrar,
        now: Instant,
    ) -> Vec<Output> {
        if leg == 0 {
            self.dialogue_quiet(spoke, now);
        }
        self.finish_input(registrar, now)
    }

    /// A key the caller pressed (RTP or INFO): the leader session's
    /// dialogue's, else the ACD's while it waits.
    fn caller_key(&mut self, key: char, now: Instant) {
        if !self.queue_callback_key(key, now)
            && !self.dialogue_key(key, now)
            && self.phase == Phase::Queued
        {
            self.out.push(Output::Acd(ToAcd::Key(key)));
        }
    }

    /// How a waiting caller who goes away counts: an abandon, unless the
    /// queue had already let it go (it hung up during the goodbye), or the
    /// call was a feature code's.
    fn waiting_outcome(&self) -> Outcome {
        if self.ticket.is_some() {
            return Outcome::Ticket;
        }
        if self.timers.is_set(Purpose::Leave) {
            self.leave_outcome
        } else {
            Outcome::Abandoned
        }
    }

    /// Hangs up a caller we answered to wait.
    fn leave_queue(&mut self, now: Instant) {
        self.cancel_offers(now);
        let mut parts = Parts::default();
        if let Some((code, reason)) = self.leave_reason.take() {
            // RFC 3326: the carrier's records say why we hung up.
            let text = reason.replace('"', "'");
            parts = parts.header(
                Name::Other("Reason".into()),
                format!("SIP;cause={code};text=\"{text}\""),
            );
        }
        self.caller().hang_up_with(parts, now);
        self.end(self.leave_outcome);
    }

    /// Answers, plays `items` and hangs up when they end (a seat's feature
    /// code: "you are paused"). Without anchored media there is nothing to
    /// play: the answer is a final response saying what was done.
    fn announce_and_hang_up(&mut self, items: Vec<Item>, now: Instant) {
        if self.media.is_none() {
            self.fail_caller(
                Rejection::new(480, "Temporarily Unavailable (done)", Outcome::Completed),
                now,
            );
            return;
        }
        self.respond_caller(200, "OK", None, now);
        self.answered_by_us = true;
        self.answered_at = Some(now);
        self.phase = Phase::Queued;
        self.leave_outcome = Outcome::Completed;
        self.out.push(Output::Prompt {
            leg: 0,
            items,
            hold: false,
        });
        self.timers
            .set(Purpose::Leave, now + Duration::from_secs(30));
    }

    /// Rings a seat the ACD offers; one not registered now is refused at
    /// once.
    fn offer(&mut self, seat: String, registrar: &Registrar, now: Instant) {
        // The registrar's reservation keeps a seat rung for a queue from
        // being rung by a seat-to-seat call at the same time, and back.
        let binding = registrar
            .lookup(&seat, now)
            .into_iter()
            .next()
            .filter(|_| self.phase == Phase::Queued && registrar.try_reserve(&seat, self.id));
        let (Phase::Queued, Some(binding)) = (self.phase, binding) else {
            self.out.push(Output::Acd(ToAcd::OfferFailed {
                seat,
                no_answer: false,
            }));
            return;
        };
        let next = super::hunt::Next {
            target: Target::Seat { id: seat.clone() },
            uri: binding.uri,
            peer: binding.peer,
            ring: self.settings.seat_ring,
        };
        let id = self.place(next, now);
        self.offers.push((id, seat));
    }

    fn cancel_offers(&mut self, now: Instant) {
        for (leg, _) in std::mem::take(&mut self.offers) {
            if let Some(l) = self.leg(leg) {
                l.cancel(now);
            }
        }
    }

    /// What happens on a leg ringing a seat offered by the ACD; other
    /// legs' events come back for the usual handling.
    fn on_offer_event(&mut self, leg: LegId, ev: LegEvent, now: Instant) -> Option<LegEvent> {
        let Some(i) = self.offers.iter().position(|(l, _)| *l == leg) else {
            return Some(ev);
        };
        match ev {
            LegEvent::Answered { msg } => {
                let (_, seat) = self.offers.remove(i);
                if self.phase != Phase::Queued {
                    if let Some(l) = self.leg(leg) {
                        l.hang_up(now);
                    }
                    self.out.push(Output::Acd(ToAcd::OfferFailed {
                        seat,
                        no_answer: false,
                    }));
                    return None;
                }
                tracing::debug!(call = self.id, %seat, "seat answered");
                // The first seat to answer takes the call (ring_all).
                self.cancel_offers(now);
                self.phase = Phase::Connected;
                self.current = Some(leg);
                if !self.answered_by_us {
                    self.answered_at = Some(now);
                }
                self.connect_media(leg, &msg);
                if !self.answered_by_us {
                    self.respond_caller(200, &super::leg::reason_of(&msg), Some(&msg), now);
                }
                self.out.push(Output::Acd(ToAcd::Answered { seat }));
                None
            }
            LegEvent::Failed { code, .. } => {
                let (_, seat) = self.offers.remove(i);
                self.out.push(Output::Acd(ToAcd::OfferFailed {
                    seat,
                    no_answer: matches!(code, 408 | 480 | 487),
                }));
                None
            }
            LegEvent::Silent => {
                let (_, seat) = self.offers.remove(i);
                if let Some(l) = self.leg(leg) {
                    l.cancel(now);
                }
                self.out.push(Output::Acd(ToAcd::OfferFailed {
                    seat,
                    no_answer: true,
                }));
                None
            }
            LegEvent::Progress { .. } => None,
            ev => Some(ev),
        }
    }

    // ── Placed legs ──────────────────────────────────────────────────────

    /// Places a leg to the next target that can take the call. False when
    /// none is left.
    fn try_next_target(&mut self, registrar: &Registrar, now: Instant) -> bool {
        let Some(next) = self.hunt.next(registrar, self.id, now) else {
            return false;
        };
        let ring = next.ring;
        let id = self.place(next, now);
        self.current = Some(id);
        self.timers.set(Purpose::Turn, now + ring);
        true
    }

    fn place(&mut self, next: super::hunt::Next, now: Instant) -> LegId {
        let id = self.new_leg_id();
        let stream = self.stream_for(id);
        self.place_on(id, stream, next, now);
        id
    }

    fn new_leg_id(&mut self) -> LegId {
        let id = LegId(self.next_leg);
        self.next_leg += 1;
        id
    }

    /// Places leg `id` to `next`, offering media `stream`.
    fn place_on(&mut self, id: LegId, stream: usize, next: super::hunt::Next, now: Instant) {
        let caller_invite = self.legs[0].invite();
        let caller = caller_invite
            .from()
            .map(|f| crate::sip::message::uri_number(f.uri).unwrap_or_default())
            .unwrap_or_default();
        let (mut invite, dialog, branch) = Leg::invite_for(
            self.id,
            id,
            &next.uri,
            &caller,
            &max_forwards(caller_invite),
            next.peer,
            &self.settings.local,
        );
        match &mut self.media {
            Some(m) => {
                // Our offer from the leg's own port: the caller's codec
                // first, so no transcoding is needed when the far end can
                // take it.
                let other = match m.a_codec {
                    Codec::Pcmu => Codec::Pcma,
                    Codec::Pcma => Codec::Pcmu,
                };
                let st = &m.streams[stream];
                let offer = sdp::offer(
                    &[m.a_codec, other],
                    TELEPHONE_EVENT_PT,
                    st.local,
                    m.session_id,
                    st.version,
                    sdp::Direction::SendRecv,
                );
                invite.set(Name::ContentType, "application/sdp");
                invite.body = Bytes::from(offer);
            }
            None => {
                if let Some((ct, body)) = Parts::body_of(caller_invite).body {
                    invite.set(Name::ContentType, ct);
                    invite.body = body;
                }
            }
        }
        if let Target::Seat { .. } = next.target {
            // A seat may transfer the call (REFER, RFC 3515); Replaces is
            // understood (RFC 3891).
            invite.set(Name::Allow, SEAT_ALLOW);
            invite.set(Name::Supported, "replaces");
        }
        if let Some(by) = &self.referred_by {
            // Ours, from the authenticated seat: never a request's copy.
            invite.set(Name::Other("Referred-By".into()), by.clone());
        }
        let call_id = dialog.call_id.clone();
        tracing::debug!(call = self.id, target = %next.target, to = %next.peer.addr, b_call_id = %call_id, "placing second leg");
        // What the legs queued goes first (the caller's 100, a CANCEL).
        for leg in &mut self.legs {
            while let Some((peer, bytes)) = leg.poll_transmit() {
                self.out.push(Output::Send(peer, bytes));
            }
        }
        self.out.push(Output::Bind(call_id));
        self.far_ends_changed = true;
        let leg = Leg::outgoing(
            id,
            self.id,
            next.target,
            invite,
            dialog,
            branch,
            next.peer,
            self.settings.timers,
            self.settings.local.clone(),
            self.settings.response_timeout,
            now,
        );
        self.legs.push(leg);
    }

    fn cancel_current(&mut self, now: Instant) {
        if let Some(id) = self.current
            && let Some(l) = self.leg(id)
        {
            l.cancel(now);
        }
    }

    /// Whether a request really is this call's (§12.2.2): it comes from one
    /// of the leg's far ends — its address, a trunk's source, the address
    /// a seat registers from now (its NAT may have given it a new port) —
    /// and carries the leg's dialog tags.
    fn belongs(
        &self,
        i: usize,
        msg: &Message,
        peer: Peer,
        registrar: &Registrar,
        now: Instant,
    ) -> bool {
        leg_belongs(&self.legs[i], msg, peer, registrar, now)
    }

    // ── In-dialog requests ───────────────────────────────────────────────

    /// An in-dialog request on the caller's or the current leg.
    fn on_in_dialog_request(&mut self, leg: LegId, tx: u32, msg: Message, now: Instant) {
        let Some(method) = msg.method().cloned() else {
            return;
        };
        if method == Method::Refer {
            // Never relayed: a transfer is the gateway's to make.
            self.on_refer(leg, tx, &msg, now);
            return;
        }
        if self.media.is_some() && matches!(self.phase, Phase::Connected | Phase::Conference) {
            // Anchored media: a re-INVITE (hold, resume, a new address)
            // changes only its own leg's stream, answered here. So does an
            // UPDATE (RFC 3311): relaying its SDP would take the media off
            // the gateway.
            if method == Method::Invite || method == Method::Update {
                self.answer_reoffer(leg, tx, &msg, now);
                return;
            }
            if method == Method::Info
                && let Some(digit) = dtmf_in_info(&msg)
            {
                let stream = self.stream_of(leg);
                self.out.push(Output::Digit { leg: stream, digit });
                if let Some(l) = self.leg(leg) {
                    l.reply(tx, 200, "OK", Parts::default(), now);
                }
                self.on_call_key(stream, digit, now);
                return;
            }
        }
        if self.phase == Phase::Conference || self.is_party(leg) {
            // Three parties: no one leg is "the other" to relay to.
            let (code, reason, parts) = if method == Method::Options {
                (200, "OK", Parts::default().header(Name::Allow, ALLOW))
            } else {
                (
                    403,
                    "Forbidden (not relayed in a three-way call)",
                    Parts::default(),
                )
            };
            if let Some(l) = self.leg(leg) {
                l.reply(tx, code, reason, parts, now);
            }
            return;
        }
        if matches!(self.phase, Phase::Queued | Phase::Choosing) && leg == LegId::CALLER {
            // Waiting: a re-INVITE or UPDATE (hold, a session refresh) is
            // answered here, and an OPTIONS (a keep-alive); a key is for
            // the ACD; anything else waits.
            if method == Method::Options {
                if let Some(l) = self.leg(leg) {
                    l.reply(
                        tx,
                        200,
                        "OK",
                        Parts::default().header(Name::Allow, ALLOW),
                        now,
                    );
                }
                return;
            }
            if self.media.is_some() && (method == Method::Invite || method == Method::Update) {
                self.answer_reoffer(leg, tx, &msg, now);
                return;
            }
            if method == Method::Info
                && let Some(digit) = dtmf_in_info(&msg)
            {
                self.out.push(Output::Digit { leg: 0, digit });
                if let Some(l) = self.leg(leg) {
                    l.reply(tx, 200, "OK", Parts::default(), now);
                }
                self.caller_key(digit.as_char(), now);
                return;
            }
        }
        // While the caller's seat hands it on, there is no one to relay to
        // (the seat's dialog may be over): answered here.
        if self.transfer.is_some() && (leg == LegId::CALLER || Some(leg) == self.current) {
            // (A seat's SUBSCRIBE refreshes its REFER's subscription.)
            let refresh = leg != LegId::CALLER && method == Method::Subscribe;
            let (code, reason, parts) = if method == Method::Options || refresh {
                (200, "OK", Parts::default().header(Name::Allow, ALLOW))
            } else {
                (
                    403,
                    "Forbidden (not relayed during a transfer)",
                    Parts::default(),
                )
            };
            if let Some(l) = self.leg(leg) {
                l.reply(tx, code, reason, parts, now);
            }
            return;
        }
        // Other in-dialog requests cross to the other leg once connected.
        let other = if leg == LegId::CALLER {
            self.current
        } else {
            Some(LegId::CALLER)
        };
        let other = other.filter(|_| self.phase == Phase::Connected);
        let Some(other) = other else {
            if let Some(l) = self.leg(leg) {
                l.reply(tx, 491, "Request Pending", Parts::default(), now);
            }
            return;
        };
        let Some(to) = self.leg(other) else { return };
        let client_tx = to.request(method, Parts::body_of(&msg), now);
        self.relays.push(Relay {
            from: leg,
            server_tx: tx,
            to: other,
            client_tx,
        });
    }

    /// A response to a relayed request: back to where it came from.
    fn on_relayed_response(
        &mut self,
        leg: LegId,
        tx: u32,
        code: u16,
        reason: &str,
        msg: Option<&Message>,
        now: Instant,
    ) {
        let Some(i) = self
            .relays
            .iter()
            .position(|r| r.to == leg && r.client_tx == tx)
        else {
            return;
        };
        let (from, server_tx) = (self.relays[i].from, self.relays[i].server_tx);
        if code >= 200 {
            self.relays.swap_remove(i);
        }
        let parts = msg.map(Parts::body_of).unwrap_or_default();
        if let Some(l) = self.leg(from) {
            l.reply(server_tx, code, reason, parts, now);
        }
    }

    // ── Media ────────────────────────────────────────────────────────────

    /// Accepts the caller's SDP offer for anchoring: negotiates a codec,
    /// builds our answer from our A port, and tells the media session
    /// where the caller is. An offer we cannot take is `488` (RFC 3264
    /// §6). A caller without SDP (a late offer) is not anchored.
    fn anchor_media(&mut self) -> Result<(), (u16, String)> {
        // Taken, not copied: the call's media keeps it from here (this
        // runs once, on the caller's INVITE).
        let Some(plan) = self.settings.media.take() else {
            return Ok(());
        };
        let Some(body) = sdp_body(self.legs[0].invite()) else {
            tracing::info!(
                call = self.id,
                "no SDP offer from the caller; media not anchored"
            );
            return Ok(());
        };
        let (remote, neg) = negotiate_offer(&body, plan.a_local)?;
        let peer_ip = self.legs[0].peer.addr.ip();
        let session_id = u64::from(super::leg::random_u32());
        let a_answer = sdp::answer(&neg, plan.a_local, session_id, 1);
        self.out
            .push(Output::Media(remote_command(0, peer_ip, &remote, &neg)));
        let streams = vec![
            Stream::new(Some(LegId::CALLER), plan.a_local, 1),
            Stream::new(None, plan.b_local, 0),
        ];
        self.media = Some(Media {
            plan,
            session_id,
            a_answer,
            a_codec: neg.codec,
            early_playing: false,
            streams,
        });
        Ok(())
    }

    /// The far end answered: its SDP says where its stream goes; the
    /// prompt stops and the caller's stream is paired with it.
    fn connect_media(&mut self, leg: LegId, answer: &Message) {
        let s = self.remote_from_answer(leg, answer);
        let Some(m) = &mut self.media else { return };
        m.early_playing = false;
        // Only now is a leg's silence a sign of trouble: ringing, and the
        // caller's early media, are not.
        for leg in [0, s] {
            self.out.push(Output::Media(MediaCommand::Watch { leg }));
        }
        self.out
            .push(Output::Media(MediaCommand::StopPlay { leg: 0 }));
        self.out
            .push(Output::Media(MediaCommand::Bridge { legs: vec![0, s] }));
    }

    /// An answering leg's SDP says where its stream goes: the media session
    /// is told. Returns the leg's stream.
    fn remote_from_answer(&mut self, leg: LegId, answer: &Message) -> usize {
        let s = self.stream_of(leg);
        // A seat's keys are feature codes for us, never the caller's to
        // hear (SIP INFO keys are not relayed either); any other leg's are.
        let seat = self.legs.iter().any(|l| l.id == leg && l.seat().is_some());
        if self.media.is_some() {
            self.out.push(Output::Media(MediaCommand::RelayKeys {
                leg: s,
                relay: !seat,
            }));
        }
        let Some(peer_ip) = self.leg_ip(leg) else {
            return s;
        };
        if self.media.is_none() {
            return s;
        }
        if let Some(body) = sdp_body(answer)
            && let Ok(remote) = sdp::parse(&body)
            && let Ok(neg) = sdp::negotiate(&remote, &[Codec::Pcmu, Codec::Pcma])
        {
            self.out
                .push(Output::Media(remote_command(s, peer_ip, &remote, &neg)));
        } else {
            tracing::info!(call = self.id, "the far end answered without usable SDP");
        }
        s
    }

    /// The media stream a leg sends and receives on: the caller's is 0.
    fn stream_of(&self, leg: LegId) -> usize {
        self.media
            .as_ref()
            .and_then(|m| m.streams.iter().position(|s| s.leg == Some(leg)))
            .unwrap_or(if leg == LegId::CALLER { 0 } else { 1 })
    }

    /// The stream for a leg about to be placed: one whose leg is over or
    /// given up (a seat that rang out), else a new one, else — no port —
    /// the second stream, shared.
    fn stream_for(&mut self, id: LegId) -> usize {
        if let Some(s) = self.open_stream(id) {
            return s;
        }
        let Some(m) = self.media.as_mut() else {
            return 1;
        };
        let st = &mut m.streams[1];
        *st = Stream::new(Some(id), st.local, st.version + 1);
        1
    }

    /// A stream for leg `id` that no other live leg uses: one whose leg is
    /// over or given up, else a new one; `None` without media or a port.
    fn open_stream(&mut self, id: LegId) -> Option<usize> {
        let live = |leg: Option<LegId>| {
            leg.is_some_and(|l| {
                self.legs
                    .iter()
                    .any(|x| x.id == l && x.state() != LegState::Ended && !x.is_abandoned())
            })
        };
        let m = self.media.as_ref()?;
        let reuse = (1..m.streams.len()).find(|&i| !live(m.streams[i].leg));
        let s = match reuse {
            Some(i) => i,
            None => {
                let (i, local) = m.plan.streams.as_ref()?.open()?;
                let m = self.media.as_mut().expect("anchored");
                if m.streams.len() <= i {
                    m.streams.resize_with(i + 1, || Stream::new(None, local, 0));
                }
                m.streams[i] = Stream::new(None, local, 0);
                i
            }
        };
        let m = self.media.as_mut().expect("anchored");
        let st = &mut m.streams[s];
        *st = Stream::new(Some(id), st.local, st.version + 1);
        Some(s)
    }

    /// A new offer on an anchored leg (hold, resume, a moved far end):
    /// answered from our port for that leg, without disturbing the other.
    fn answer_reoffer(&mut self, leg: LegId, tx: u32, msg: &Message, now: Instant) {
        let s = self.stream_of(leg);
        let Some(peer_ip) = self.leg_ip(leg) else {
            return;
        };
        let Some(m) = &mut self.media else { return };
        let local = m.streams[s].local;
        let (code, reason, parts) = match sdp_body(msg) {
            // An UPDATE without an offer (a session-timer refresh, RFC
            // 4028) changes nothing, and its 2xx may carry no offer (RFC
            // 3311 §5.2).
            None if msg.method() == Some(&Method::Update) => {
                (200, "OK".to_string(), Parts::default())
            }
            // No offer (a session refresh, §14.2, or a phone that resumes
            // a hold this way): our offer, two-way — whatever the leg held
            // before — and its answer comes in the ACK.
            None => {
                let version = m.next_version(s);
                let offer = sdp::offer(
                    &[m.a_codec],
                    TELEPHONE_EVENT_PT,
                    local,
                    m.session_id,
                    version,
                    sdp::Direction::SendRecv,
                );
                m.streams[s].answer_in_ack = msg.cseq().map(|c| c.0);
                (200, "OK".to_string(), Parts::sdp(offer))
            }
            Some(body) => match negotiate_offer(&body, local) {
                Ok((remote, neg)) => {
                    let version = m.next_version(s);
                    m.streams[s].answer_in_ack = None;
                    let answer = sdp::answer(&neg, local, m.session_id, version);
                    if s == 0 {
                        m.a_answer = answer.clone();
                    }
                    self.apply_remote(s, peer_ip, &remote, &neg);
                    (200, "OK".to_string(), Parts::sdp(answer))
                }
                Err((code, reason)) => (code, reason, Parts::default()),
            },
        };
        if let Some(l) = self.leg(leg) {
            l.reply(tx, code, &reason, parts, now);
        }
    }

    /// A stream's new remote SDP (an offer its leg made, or its answer to
    /// ours): the stream follows it, and a hold starts or ends — RFC 3264
    /// §8.4: the holder may send nothing at all, so the other party hears
    /// hold music until it resumes.
    fn apply_remote(
        &mut self,
        s: usize,
        peer_ip: IpAddr,
        remote: &sdp::RemoteSdp,
        neg: &sdp::Negotiated,
    ) {
        let holds = remote.is_hold();
        let changed = self
            .media
            .as_ref()
            .is_some_and(|m| m.streams.get(s).is_some_and(|st| st.held != holds));
        // The seat swapping between its caller and its consultation on
        // its phone (holding one dialog, resuming the other).
        if changed && self.consult_hold(s, holds) {
            if let Some(m) = &mut self.media {
                m.streams[s].held = holds;
            }
            self.out
                .push(Output::Media(remote_command(s, peer_ip, remote, neg)));
            return;
        }
        let Some(m) = &mut self.media else { return };
        if m.streams[s].held != holds {
            m.streams[s].held = holds;
            // The caller's stream, or the one the caller is joined to.
            let other = if s == 0 {
                self.current
                    .and_then(|c| m.streams.iter().position(|st| st.leg == Some(c)))
                    .unwrap_or(1)
            } else {
                0
            };
            tracing::info!(call = self.id, leg = s, on_hold = holds, "hold");
            // In a three-way call the two others still hear each other: no
            // music over them.
            let music = m
                .plan
                .hold
                .as_ref()
                .filter(|_| self.phase != Phase::Conference);
            // A seat holding or resuming while its transfer rings: the
            // caller hears the transfer's music regardless.
            let transferring = self.transfer.is_some() && s != 0;
            match (holds, music) {
                _ if transferring => {}
                (true, Some(music)) => self.out.push(Output::Media(MediaCommand::Play {
                    leg: other,
                    playlist: Box::new(music.clone()),
                })),
                (true, None) => {}
                (false, _) => self
                    .out
                    .push(Output::Media(MediaCommand::StopPlay { leg: other })),
            }
        }
        self.out
            .push(Output::Media(remote_command(s, peer_ip, remote, neg)));
    }

    /// The ACK for our 2xx to a re-INVITE: if our 2xx carried the offer,
    /// the ACK carries the answer.
    fn on_ack(&mut self, leg: LegId, msg: &Message) {
        let s = self.stream_of(leg);
        let cseq = msg.cseq().map(|c| c.0);
        let Some(peer_ip) = self.leg_ip(leg) else {
            return;
        };
        if let Some(m) = &mut self.media
            && cseq.is_some()
            && m.streams[s].answer_in_ack == cseq
            && m.streams[s].answer_in_ack.take().is_some()
            && let Some(body) = sdp_body(msg)
        {
            match sdp::parse(&body).ok().and_then(|r| {
                sdp::negotiate(&r, &[Codec::Pcmu, Codec::Pcma])
                    .ok()
                    .map(|n| (r, n))
            }) {
                Some((remote, neg)) => self.apply_remote(s, peer_ip, &remote, &neg),
                None => tracing::info!(call = self.id, leg = s, "no usable SDP answer in the ACK"),
            }
        }
    }
}

/// Whether a request really is a leg's (§12.2.2): it comes from one of
/// the leg's far ends — its address, a trunk's source, the address a seat
/// registers from now (its NAT may have given it a new port) — and carries
/// the leg's dialog tags.
fn leg_belongs(leg: &Leg, msg: &Message, peer: Peer, registrar: &Registrar, now: Instant) -> bool {
    let far = FarEnds {
        addrs: leg.far_ends().collect(),
        hosts: match leg.target() {
            Some(Target::Trunk { sources, .. }) => sources.clone(),
            _ => Vec::new(),
        },
    };
    let from_far_end = far.admits(peer)
        || leg.seat().is_some_and(|id| {
            registrar
                .lookup(id, now)
                .iter()
                .any(|binding| binding.peer.addr == peer.addr)
        });
    from_far_end && leg.matches(msg)
}

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
    sip_peer: IpAddr,
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

fn max_forwards(invite: &Message) -> String {
    let mf = invite
        .header(&Name::MaxForwards)
        .and_then(|v| v.parse::<u8>().ok())
        .unwrap_or(70);
    mf.saturating_sub(1).to_string()
}

#[path = "callback.rs"]
pub mod callback;

#[path = "conference.rs"]
pub mod conference;

#[path = "leader.rs"]
pub mod leader;

#[path = "transfer.rs"]
pub mod transfer;

#[path = "consult.rs"]
pub mod consult;

#[path = "view.rs"]
mod view;

#[path = "command.rs"]
pub mod command;

#[cfg(test)]
#[path = "call_tests.rs"]
mod tests;
