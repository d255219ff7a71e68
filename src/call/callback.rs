//! A callback the gateway places itself (回访): no caller dialled in, so
//! both legs are ours. Agent first, so a citizen never answers to silence:
//!
//! 1. the callback waits in an ACD queue like a caller, and the seat the
//!    ACD offers is rung — its INVITE names the ticket (`X-Hotline-Ticket`
//!    and the display name);
//! 2. the seat answers and hears the ticket's number (a whisper);
//! 3. only then is the citizen dialled over the carrier trunk (its
//!    alternates tried in turn when one fails), and the two are bridged
//!    when the citizen answers;
//! 4. when the seat hangs up, the citizen hears the survey — satisfied 1,
//!    not satisfied 2 — and the key is the callback's outcome.
//!
//! The citizen not answering, busy, or a trunk failing: the seat hears so
//! and is let go, and the outcome says which (the runner retries later).
//!
//! Sans-I/O like [`super::Call`]: fed messages, the ACD's word, media
//! events and "now"; returns [`Output`]s for the engine's task.

use super::{
    Output, Settings, TELEPHONE_EVENT_PT, dtmf_in_info, leg_belongs, negotiate_offer,
    remote_command, sdp_body,
};
use crate::call::leg::{ALLOW, Leg, LegEvent, LegId, LegState, Parts, Target};
use crate::call::queue::{FromAcd, ToAcd};
use crate::call::registrar::Registrar;
use crate::media::dtmf::Digit;
use crate::media::g711::Codec;
use crate::media::prompt::Item;
use crate::media::sdp;
use crate::media::session::Command as MediaCommand;
use crate::sip::dialog::Dialog;
use crate::sip::message::{Message, Method, Name};
use crate::sip::transport::Peer;
use crate::tickets::callback::Outcome;
use bytes::Bytes;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The header a seat's phone (or its CTI) reads the ticket from.
pub const TICKET_HEADER: &str = "X-Hotline-Ticket";

/// To the seat before the citizen is dialled: 回访工单 + the number.
pub const WHISPER: &str = "callback_whisper";
/// To the seat, for a caller called back in its turn: 预约回电 + the number.
pub const QUEUE_WHISPER: &str = "queue_callback_whisper";
/// To the citizen once the seat has hung up: satisfied 1, not 2.
pub const SURVEY: &str = "callback_survey";
/// To the citizen after its answer.
pub const THANKS: &str = "callback_thanks";
/// To the seat when the citizen could not be reached.
pub const NOT_REACHED: &str = "callback_not_reached";

/// A prompt that never ends (a missing file, a lost event) does not hold
/// the callback: this long after it started, the call moves on.
const PROMPT_CAP: Duration = Duration::from_secs(30);
/// After the survey prompt, how long the citizen has to press a key; the
/// prompt is repeated once.
const SURVEY_WAIT: Duration = Duration::from_secs(8);
/// The longest a callback of a done ticket (回访) waits for a seat: it
/// leaves the queue then, and is made later (it never holds a seat from a
/// caller for long). A queue callback waits like the caller it stands for.
pub const WAIT_CAP: Duration = Duration::from_secs(45);
/// The longest a finished callback waits for its transactions.
const LINGER_CAP: Duration = Duration::from_secs(120);

/// What a callback is for.
#[derive(Clone, Debug)]
pub struct CallbackPlan {
    /// The ticket whose citizen is called back (its id, digits only).
    pub ticket: String,
    /// The queue whose seats make the call, the line it counts under.
    pub queue: String,
    pub line: String,
    /// The caller's skill and expert seats (a queue callback's, from the
    /// line it called).
    pub skill: Option<String>,
    pub expert_seats: Vec<String>,
    /// Its place in the queue (a queue callback keeps the caller's).
    pub arrival: Instant,
    /// Where the citizen is dialled: the carrier trunk, then its
    /// alternates, each with the number in its URI.
    pub citizen: Vec<Target>,
    /// How long the citizen's phone may ring.
    pub ring: Duration,
    /// Ask the citizen the survey after the seat hangs up (回访); a
    /// callback instead of waiting has none.
    pub survey: bool,
    /// Our RTP address for the seat's stream (0) and the citizen's (1).
    pub rtp: [SocketAddr; 2],
    /// The longest it waits in the queue for a seat (`None`: the queue's
    /// own limits only).
    pub wait_cap: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// In the queue; ringing the seats the ACD offers.
    Waiting,
    /// The seat answered and hears the ticket's number.
    Whisper,
    /// The citizen's phone rings.
    Dialling,
    /// Seat and citizen talk.
    Talking,
    /// The seat hung up; the citizen is asked, or is being thanked.
    Survey,
    /// The citizen was not reached; the seat hears so, then is let go.
    Closing,
    Ended,
}

pub struct Callback {
    pub id: u64,
    settings: Settings,
    plan: CallbackPlan,
    phase: Phase,
    legs: Vec<Leg>,
    next_leg: u32,
    /// Legs ringing seats the ACD offered.
    offers: Vec<(LegId, String)>,
    /// The seat that took the callback, and its leg.
    seat: Option<(LegId, String)>,
    /// The citizen's leg, and which of `plan.citizen` it rings.
    citizen: Option<LegId>,
    target: usize,
    /// The outcome, once known (reported by [`Callback::outcome`]).
    outcome: Option<Outcome>,
    /// What the citizen's last failure said, for when no target is left.
    failure: Outcome,
    session_id: u64,
    versions: [u64; 2],
    /// The one timer of each state (prompt cap, ring limit, survey wait).
    deadline: Option<Instant>,
    asked: u8,
    answered: bool,
    ended_at: Option<Instant>,
    forced: bool,
    acd_ended: bool,
    out: Vec<Output>,
}

impl Callback {
    /// A callback about to wait for a seat.
    pub fn start(
        id: u64,
        settings: Settings,
        plan: CallbackPlan,
        now: Instant,
    ) -> (Self, Vec<Output>) {
        let mut cb = Callback {
            id,
            settings,
            phase: Phase::Waiting,
            legs: Vec::new(),
            next_leg: 1,
            offers: Vec::new(),
            seat: None,
            citizen: None,
            target: 0,
            outcome: None,
            failure: Outcome::Failed,
            session_id: u64::from(crate::call::leg::random_u32()),
            versions: [0, 0],
            deadline: None,
            asked: 0,
            answered: false,
            ended_at: None,
            forced: false,
            acd_ended: false,
            out: Vec::new(),
            plan,
        };
        tracing::info!(call = id, ticket = %cb.plan.ticket, queue = %cb.plan.queue, "callback waiting for a seat");
        cb.out.push(Output::Acd(ToAcd::Join {
            queue: cb.plan.queue.clone(),
            line: cb.plan.line.clone(),
            skill: cb.plan.skill.clone(),
            expert_seats: cb.plan.expert_seats.clone(),
            arrival: cb.plan.arrival,
        }));
        cb.deadline = cb.plan.wait_cap.map(|cap| now + cap);
        let out = std::mem::take(&mut cb.out);
        (cb, out)
    }

    /// What the callback came to, once known (before its legs have quite
    /// finished): reported once the survey's key, or the failure, is in.
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }

    /// The seat that took it.
    pub fn seat(&self) -> Option<&str> {
        self.seat.as_ref().map(|(_, s)| s.as_str())
    }

    /// Seat and citizen are bridged (the engine starts the recording).
    pub fn bridged(&self) -> bool {
        self.answered
    }

    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Ended && (self.forced || self.legs.iter().all(|l| l.is_done()))
    }

    pub fn deadline(&self) -> Option<Instant> {
        let legs = self.legs.iter().filter_map(|l| l.deadline());
        legs.chain(self.deadline).min()
    }

    /// The addresses requests of this call may come from.
    pub fn far_ends(&self) -> super::FarEnds {
        let mut f = super::FarEnds::default();
        for leg in &self.legs {
            f.addrs.extend(leg.far_ends());
            if let Some(Target::Trunk { sources, .. }) = leg.target() {
                f.hosts.extend(sources.iter().copied());
            }
        }
        f
    }

    // ── Inputs ───────────────────────────────────────────────────────────

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
        if msg.is_request() && !leg_belongs(&self.legs[i], &msg, peer, registrar, now) {
            let method = msg.method().cloned().unwrap_or(Method::Ack);
            tracing::info!(call = self.id, from = %peer.addr, method = %method, "request does not match the dialog; refused");
            if method != Method::Ack {
                let resp = msg.response(481, "Call/Transaction Does Not Exist", None);
                self.out.push(Output::Send(peer, resp.encode()));
            }
            return std::mem::take(&mut self.out);
        }
        self.legs[i].on_message(msg, peer, now);
        self.finish(registrar, now)
    }

    pub fn on_timer(&mut self, registrar: &Registrar, now: Instant) -> Vec<Output> {
        for leg in &mut self.legs {
            leg.on_timer(now);
        }
        self.drain(registrar, now);
        if self.deadline.is_some_and(|d| d <= now) {
            self.deadline = None;
            match self.phase {
                Phase::Whisper => self.dial_citizen(now),
                Phase::Dialling => {
                    tracing::info!(call = self.id, "the citizen did not answer in time");
                    if let Some(l) = self.citizen.and_then(|id| leg_mut(&mut self.legs, id)) {
                        l.cancel(now);
                    }
                    self.citizen = None;
                    self.not_reached(Outcome::NoAnswer, now);
                }
                Phase::Survey => self.survey_timeout(now),
                Phase::Closing => self.end_all(now),
                Phase::Ended => {
                    // The linger cap: whatever is still open is let go.
                    self.forced = true;
                    for leg in &mut self.legs {
                        leg.abandon();
                    }
                }
                Phase::Waiting => {
                    tracing::info!(call = self.id, "no seat took the callback in time; later");
                    self.cancel_offers(now);
                    self.acd_ended = true;
                    self.out.push(Output::Acd(ToAcd::Left));
                    self.conclude(Outcome::NoSeat);
                    self.phase = Phase::Ended;
                }
                Phase::Talking => {}
            }
        }
        self.finish(registrar, now)
    }

    pub fn on_transport_error(
        &mut self,
        peer: Peer,
        registrar: &Registrar,
        now: Instant,
    ) -> Vec<Output> {
        for leg in &mut self.legs {
            leg.on_transport_error(peer, now);
        }
        self.finish(registrar, now)
    }

    pub fn on_unreachable(
        &mut self,
        addr: SocketAddr,
        registrar: &Registrar,
        now: Instant,
    ) -> Vec<Output> {
        for leg in &mut self.legs {
            leg.on_unreachable(addr, now);
        }
        self.finish(registrar, now)
    }

    pub fn on_acd(&mut self, cmd: FromAcd, registrar: &Registrar, now: Instant) -> Vec<Output> {
        match cmd {
            FromAcd::Offer { seat, .. } => self.offer(seat, registrar, now),
            FromAcd::Retract { seat } => {
                if let Some(i) = self.offers.iter().position(|(_, s)| *s == seat) {
                    let (leg, _) = self.offers.remove(i);
                    if let Some(l) = leg_mut(&mut self.legs, leg) {
                        l.cancel(now);
                    }
                }
            }
            FromAcd::Leave { reason, .. } | FromAcd::CallBackLater { reason, .. }
                if self.phase == Phase::Waiting =>
            {
                // The queue let it go (full, waited too long): no seat, no
                // attempt on the citizen.
                tracing::info!(call = self.id, %reason, "callback left the queue");
                self.acd_ended = true;
                self.cancel_offers(now);
                self.conclude(Outcome::NoSeat);
                self.phase = Phase::Ended;
            }
            FromAcd::Announce { .. } | FromAcd::Leave { .. } | FromAcd::CallBackLater { .. } => {}
        }
        self.finish(registrar, now)
    }

    /// A key (RTP event, read by the media session).
    pub fn on_digit(
        &mut self,
        stream: usize,
        digit: Digit,
        registrar: &Registrar,
        now: Instant,
    ) -> Vec<Output> {
        self.key(stream, digit, now);
        self.finish(registrar, now)
    }

    pub fn on_prompt_done(
        &mut self,
        stream: usize,
        registrar: &Registrar,
        now: Instant,
    ) -> Vec<Output> {
        match (self.phase, stream) {
            (Phase::Whisper, 0) => self.dial_citizen(now),
            (Phase::Closing, 0) => self.end_all(now),
            (Phase::Survey, 1) if self.outcome.is_some() => self.end_all(now),
            (Phase::Survey, 1) => self.deadline = Some(now + SURVEY_WAIT),
            _ => {}
        }
        self.finish(registrar, now)
    }

    /// A stream sent no RTP while it should have: its far end is gone.
    pub fn on_media_timeout(
        &mut self,
        stream: usize,
        registrar: &Registrar,
        now: Instant,
    ) -> Vec<Output> {
        tracing::info!(
            call = self.id,
            stream,
            "media time-out on a callback; hanging up"
        );
        if self.phase == Phase::Talking || self.phase == Phase::Survey {
            self.conclude(Outcome::Unrated);
        } else {
            self.conclude(Outcome::Failed);
        }
        self.end_all(now);
        self.finish(registrar, now)
    }

    /// The daemon stops: everything is hung up.
    pub fn terminate(&mut self, registrar: &Registrar, now: Instant) -> Vec<Output> {
        let outcome = match self.phase {
            Phase::Waiting => Outcome::NoSeat,
            Phase::Talking | Phase::Survey => Outcome::Unrated,
            _ => Outcome::Failed,
        };
        self.conclude(outcome);
        self.cancel_offers(now);
        self.end_all(now);
        self.finish(registrar, now)
    }

    // ── The steps ────────────────────────────────────────────────────────

    fn offer(&mut self, seat: String, registrar: &Registrar, now: Instant) {
        let binding = registrar
            .lookup(&seat, now)
            .into_iter()
            .next()
            .filter(|_| self.phase == Phase::Waiting && registrar.try_reserve(&seat, self.id));
        let Some(binding) = binding else {
            self.out.push(Output::Acd(ToAcd::OfferFailed {
                seat,
                no_answer: false,
            }));
            return;
        };
        let id = self.new_leg();
        let target = Target::Seat { id: seat.clone() };
        let ticket = self.plan.ticket.clone();
        let (mut invite, dialog, branch) = self.invite(id, 0, &binding.uri, binding.peer, &ticket);
        // The seat sees what the call is before answering: a 回访 of a
        // done ticket, or a 回电 in the caller's turn.
        let what = if self.plan.survey { "回访" } else { "回电" };
        let display = format!("\"{what} {ticket}\" ");
        if let Some(from) = invite.header(&Name::From).map(|f| f.to_string()) {
            invite.set(Name::From, format!("{display}{from}"));
        }
        invite.push(Name::Other(TICKET_HEADER.into()), ticket);
        self.send_invite(id, (invite, dialog, branch), binding.peer, target, now);
        self.offers.push((id, seat));
    }

    /// The INVITE for a leg offering our stream `stream`.
    fn invite(
        &mut self,
        id: LegId,
        stream: usize,
        uri: &str,
        peer: Peer,
        from: &str,
    ) -> (Message, Dialog, String) {
        let (mut invite, dialog, branch) =
            Leg::invite_for(self.id, id, uri, from, "70", peer, &self.settings.local);
        self.versions[stream] += 1;
        let offer = sdp::offer(
            &[Codec::Pcma, Codec::Pcmu],
            TELEPHONE_EVENT_PT,
            self.plan.rtp[stream],
            self.session_id,
            self.versions[stream],
            sdp::Direction::SendRecv,
        );
        invite.set(Name::ContentType, "application/sdp");
        invite.body = Bytes::from(offer);
        (invite, dialog, branch)
    }

    fn send_invite(
        &mut self,
        id: LegId,
        (invite, dialog, branch): (Message, Dialog, String),
        peer: Peer,
        target: Target,
        now: Instant,
    ) {
        let call_id = invite.call_id().map(|c| c.to_string()).unwrap_or_default();
        tracing::info!(call = self.id, %target, to = %peer.addr, b_call_id = %call_id, "callback placing a leg");
        self.out.push(Output::Bind(call_id));
        let leg = Leg::outgoing(
            id,
            self.id,
            target,
            invite,
            dialog,
            branch,
            peer,
            self.settings.timers,
            self.settings.local.clone(),
            self.settings.response_timeout,
            now,
        );
        self.legs.push(leg);
    }

    fn new_leg(&mut self) -> LegId {
        let id = LegId(self.next_leg);
        self.next_leg += 1;
        id
    }

    fn cancel_offers(&mut self, now: Instant) {
        for (leg, _) in std::mem::take(&mut self.offers) {
            if let Some(l) = leg_mut(&mut self.legs, leg) {
                l.cancel(now);
            }
        }
    }

    /// The seat answered: it hears the ticket's number.
    fn seat_answered(&mut self, leg: LegId, seat: String, msg: &Message, now: Instant) {
        tracing::info!(call = self.id, %seat, "seat took the callback");
        self.cancel_offers(now);
        self.remote(0, leg, msg);
        self.out.push(Output::Media(MediaCommand::Watch { leg: 0 }));
        self.out
            .push(Output::Acd(ToAcd::Answered { seat: seat.clone() }));
        self.seat = Some((leg, seat));
        self.phase = Phase::Whisper;
        self.out.push(Output::Prompt {
            leg: 0,
            items: vec![
                Item::prompt(if self.plan.survey {
                    WHISPER
                } else {
                    QUEUE_WHISPER
                }),
                Item::digits(self.plan.ticket.clone()),
            ],
            hold: false,
        });
        self.deadline = Some(now + PROMPT_CAP);
    }

    /// Rings the citizen on the next trunk; none left: not reached.
    fn dial_citizen(&mut self, now: Instant) {
        let Some(target) = self.plan.citizen.get(self.target).cloned() else {
            let why = self.failure;
            self.not_reached(why, now);
            return;
        };
        self.target += 1;
        let Target::Trunk { uri, peer, .. } = &target else {
            self.dial_citizen(now);
            return;
        };
        let (uri, peer) = (uri.clone(), *peer);
        let id = self.new_leg();
        // The citizen sees the hotline's own number calling.
        let line = self.plan.line.clone();
        let invite = self.invite(id, 1, &uri, peer, &line);
        self.send_invite(id, invite, peer, target, now);
        self.citizen = Some(id);
        self.phase = Phase::Dialling;
        self.deadline = Some(now + self.plan.ring);
        // The seat hears the carrier's ringback (early media), if any.
        self.out
            .push(Output::Media(MediaCommand::Bridge { legs: vec![0, 1] }));
    }

    /// The citizen could not be reached: the seat hears so, then is let go.
    fn not_reached(&mut self, outcome: Outcome, now: Instant) {
        tracing::info!(
            call = self.id,
            outcome = outcome.as_str(),
            "citizen not reached"
        );
        self.conclude(outcome);
        self.phase = Phase::Closing;
        self.out
            .push(Output::Media(MediaCommand::Bridge { legs: Vec::new() }));
        self.out.push(Output::Prompt {
            leg: 0,
            items: vec![Item::prompt(NOT_REACHED)],
            hold: false,
        });
        self.deadline = Some(now + PROMPT_CAP);
    }

    /// The seat hung up while talking: the survey, or the end.
    fn seat_left(&mut self, now: Instant) {
        self.tell_acd_ended(true);
        if !self.plan.survey {
            self.conclude(Outcome::Unrated);
            self.end_all(now);
            return;
        }
        self.phase = Phase::Survey;
        self.out.push(Output::Media(MediaCommand::Leave { leg: 0 }));
        self.out
            .push(Output::Media(MediaCommand::Bridge { legs: Vec::new() }));
        self.ask(now);
    }

    fn ask(&mut self, now: Instant) {
        self.asked += 1;
        self.out.push(Output::Prompt {
            leg: 1,
            items: vec![Item::prompt(SURVEY)],
            hold: false,
        });
        self.deadline = Some(now + PROMPT_CAP);
    }

    fn survey_timeout(&mut self, now: Instant) {
        if self.outcome.is_some() {
            self.end_all(now);
        } else if self.asked < 2 {
            self.ask(now);
        } else {
            tracing::info!(call = self.id, "no answer to the survey");
            self.conclude(Outcome::Unrated);
            self.out.push(Output::Prompt {
                leg: 1,
                items: vec![Item::prompt("goodbye")],
                hold: false,
            });
            self.deadline = Some(now + PROMPT_CAP);
        }
    }

    fn key(&mut self, stream: usize, digit: Digit, now: Instant) {
        if self.phase != Phase::Survey || stream != 1 || self.outcome.is_some() {
            return;
        }
        let outcome = match digit.as_char() {
            '1' => Outcome::Satisfied,
            '2' => Outcome::Unsatisfied,
            _ => {
                self.ask(now);
                return;
            }
        };
        tracing::info!(
            call = self.id,
            outcome = outcome.as_str(),
            "survey answered"
        );
        self.conclude(outcome);
        self.out.push(Output::Prompt {
            leg: 1,
            items: vec![Item::prompt(THANKS)],
            hold: false,
        });
        self.deadline = Some(now + PROMPT_CAP);
    }

    /// The outcome, once: a failure before the citizen was ever dialled
    /// (the seat hung up during the whisper, a shutdown) is no attempt on
    /// the citizen.
    fn conclude(&mut self, outcome: Outcome) {
        let outcome = if outcome == Outcome::Failed && self.target == 0 {
            Outcome::NoSeat
        } else {
            outcome
        };
        if self.outcome.is_none() {
            self.outcome = Some(outcome);
        }
    }

    fn tell_acd_ended(&mut self, by_seat: bool) {
        if !self.acd_ended && self.seat.is_some() {
            self.acd_ended = true;
            self.out.push(Output::Acd(ToAcd::Ended { by_seat }));
        }
    }

    /// Hangs up (or cancels) every leg still up, and ends.
    fn end_all(&mut self, now: Instant) {
        self.cancel_offers(now);
        for leg in &mut self.legs {
            match leg.state() {
                LegState::Answered => leg.hang_up(now),
                LegState::Setup { .. } => leg.cancel(now),
                LegState::Ended => {}
            }
        }
        self.tell_acd_ended(false);
        self.conclude(Outcome::Failed);
        self.phase = Phase::Ended;
    }

    fn remote(&mut self, stream: usize, leg: LegId, msg: &Message) {
        let Some(l) = self.legs.iter().find(|l| l.id == leg) else {
            return;
        };
        let ip = l.peer.addr.ip();
        if let Some(body) = sdp_body(msg)
            && let Ok(remote) = sdp::parse(&body)
            && let Ok(neg) = sdp::negotiate(&remote, &[Codec::Pcma, Codec::Pcmu])
        {
            self.out
                .push(Output::Media(remote_command(stream, ip, &remote, &neg)));
        } else {
            tracing::info!(call = self.id, stream, "answer without usable SDP");
        }
    }

    // ── Legs ─────────────────────────────────────────────────────────────

    fn finish(&mut self, registrar: &Registrar, now: Instant) -> Vec<Output> {
        self.drain(registrar, now);
        if self.phase == Phase::Ended && self.ended_at.is_none() {
            self.ended_at = Some(now);
            self.deadline = Some(now + LINGER_CAP);
            for leg in &mut self.legs {
                leg.close_pending(now);
            }
            self.drain(registrar, now);
        }
        // A seat is free once its leg ended, unless another live leg of
        // this callback rings it again.
        for leg in &self.legs {
            let Some(seat) = leg.seat() else { continue };
            let held_elsewhere = self
                .legs
                .iter()
                .any(|l| l.id != leg.id && l.seat() == Some(seat) && l.state() != LegState::Ended);
            if leg.state() == LegState::Ended && !held_elsewhere {
                registrar.release(seat, self.id);
            }
        }
        std::mem::take(&mut self.out)
    }

    fn drain(&mut self, registrar: &Registrar, now: Instant) {
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

    fn on_leg_event(&mut self, leg: LegId, ev: LegEvent, _registrar: &Registrar, now: Instant) {
        if let Some(i) = self.offers.iter().position(|(l, _)| *l == leg) {
            match ev {
                LegEvent::Answered { msg } => {
                    let (_, seat) = self.offers.remove(i);
                    if self.phase == Phase::Waiting {
                        self.seat_answered(leg, seat, &msg, now);
                    } else {
                        if let Some(l) = leg_mut(&mut self.legs, leg) {
                            l.hang_up(now);
                        }
                        self.out.push(Output::Acd(ToAcd::OfferFailed {
                            seat,
                            no_answer: false,
                        }));
                    }
                }
                LegEvent::Failed { code, .. } => {
                    let (_, seat) = self.offers.remove(i);
                    self.out.push(Output::Acd(ToAcd::OfferFailed {
                        seat,
                        no_answer: matches!(code, 408 | 480 | 487),
                    }));
                }
                LegEvent::Silent => {
                    let (_, seat) = self.offers.remove(i);
                    if let Some(l) = leg_mut(&mut self.legs, leg) {
                        l.cancel(now);
                    }
                    self.out.push(Output::Acd(ToAcd::OfferFailed {
                        seat,
                        no_answer: true,
                    }));
                }
                // An early UPDATE or INFO on a ringing seat is answered.
                LegEvent::Request { tx, msg } => self.in_dialog(leg, tx, msg, now),
                _ => {}
            }
            return;
        }
        let is_seat = self.seat.as_ref().is_some_and(|(l, _)| *l == leg);
        let is_citizen = self.citizen == Some(leg);
        match ev {
            LegEvent::Request { tx, msg } => self.in_dialog(leg, tx, msg, now),
            LegEvent::Progress { msg, .. } if is_citizen && sdp_body(&msg).is_some() => {
                self.remote(1, leg, &msg);
            }
            LegEvent::Answered { msg } if is_citizen && self.phase == Phase::Dialling => {
                tracing::info!(call = self.id, "citizen answered the callback");
                self.remote(1, leg, &msg);
                self.answered = true;
                self.phase = Phase::Talking;
                self.deadline = None;
                self.out.push(Output::Media(MediaCommand::Watch { leg: 1 }));
                self.out
                    .push(Output::Media(MediaCommand::Bridge { legs: vec![0, 1] }));
            }
            LegEvent::Answered { .. } if is_citizen => {
                // Answered after we gave up on it.
                if let Some(l) = leg_mut(&mut self.legs, leg) {
                    l.hang_up(now);
                }
            }
            LegEvent::Failed { code, reason } if is_citizen && self.phase == Phase::Dialling => {
                tracing::info!(call = self.id, code, %reason, "the citizen's call failed");
                self.citizen = None;
                self.failure = match code {
                    486 | 600 | 603 => Outcome::Busy,
                    408 | 480 | 487 => Outcome::NoAnswer,
                    _ => Outcome::Failed,
                };
                // A busy or absent citizen is not tried on another trunk;
                // a trunk that failed is.
                if matches!(self.failure, Outcome::Failed) {
                    self.dial_citizen(now);
                } else {
                    let why = self.failure;
                    self.not_reached(why, now);
                }
            }
            LegEvent::Silent if is_citizen && self.phase == Phase::Dialling => {
                if let Some(l) = leg_mut(&mut self.legs, leg) {
                    l.cancel(now);
                }
                self.citizen = None;
                self.dial_citizen(now);
            }
            LegEvent::Unreachable if is_citizen && self.phase == Phase::Dialling => {
                self.citizen = None;
                self.dial_citizen(now);
            }
            LegEvent::HungUp | LegEvent::AckTimeout | LegEvent::Unreachable if is_seat => {
                match self.phase {
                    Phase::Talking => self.seat_left(now),
                    Phase::Whisper | Phase::Dialling => {
                        tracing::info!(
                            call = self.id,
                            "the seat hung up before the citizen answered"
                        );
                        self.conclude(Outcome::Failed);
                        self.tell_acd_ended(true);
                        self.end_all(now);
                    }
                    Phase::Closing => {
                        self.tell_acd_ended(true);
                        self.end_all(now);
                    }
                    _ => {}
                }
            }
            LegEvent::HungUp | LegEvent::AckTimeout | LegEvent::Unreachable if is_citizen => {
                match self.phase {
                    Phase::Talking => {
                        tracing::info!(call = self.id, "the citizen hung up");
                        self.conclude(Outcome::Unrated);
                        self.tell_acd_ended(false);
                        self.end_all(now);
                    }
                    Phase::Survey => {
                        self.conclude(Outcome::Unrated);
                        self.end_all(now);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// An in-dialog request: a re-INVITE or UPDATE (hold, a refresh) is
    /// answered from our own port, a key in INFO is read, an OPTIONS
    /// answered; nothing is relayed (both legs are ours).
    fn in_dialog(&mut self, leg: LegId, tx: u32, msg: Message, now: Instant) {
        let Some(method) = msg.method().cloned() else {
            return;
        };
        let stream = if self.citizen == Some(leg) { 1 } else { 0 };
        let local = self.plan.rtp[stream];
        let (code, reason, parts) = match method {
            Method::Invite | Method::Update => match sdp_body(&msg)
                .map(|b| negotiate_offer(&b, local))
            {
                Some(Ok((remote, neg))) => {
                    let ip = self
                        .legs
                        .iter()
                        .find(|l| l.id == leg)
                        .map(|l| l.peer.addr.ip());
                    if let Some(ip) = ip {
                        self.out
                            .push(Output::Media(remote_command(stream, ip, &remote, &neg)));
                    }
                    self.versions[stream] += 1;
                    let answer = sdp::answer(&neg, local, self.session_id, self.versions[stream]);
                    (200, "OK".to_string(), Parts::sdp(answer))
                }
                Some(Err((code, reason))) => (code, reason, Parts::default()),
                // An UPDATE without a body (a session refresh) changes
                // nothing; a re-INVITE without one gets our offer, answered
                // in the ACK (RFC 3264 §5): the stream stays as it is.
                None if method == Method::Update => (200, "OK".to_string(), Parts::default()),
                None => {
                    self.versions[stream] += 1;
                    let offer = sdp::offer(
                        &[Codec::Pcma, Codec::Pcmu],
                        TELEPHONE_EVENT_PT,
                        local,
                        self.session_id,
                        self.versions[stream],
                        sdp::Direction::SendRecv,
                    );
                    (200, "OK".to_string(), Parts::sdp(offer))
                }
            },
            Method::Info => {
                if let Some(digit) = dtmf_in_info(&msg) {
                    self.out.push(Output::Digit { leg: stream, digit });
                    self.key(stream, digit, now);
                }
                (200, "OK".to_string(), Parts::default())
            }
            Method::Options => (
                200,
                "OK".to_string(),
                Parts::default().header(Name::Allow, ALLOW),
            ),
            _ => (
                403,
                "Forbidden (not during a callback)".to_string(),
                Parts::default(),
            ),
        };
        if let Some(l) = leg_mut(&mut self.legs, leg) {
            l.reply(tx, code, &reason, parts, now);
        }
    }
}

fn leg_mut(legs: &mut [Leg], id: LegId) -> Option<&mut Leg> {
    legs.iter_mut().find(|l| l.id == id)
}

#[cfg(test)]
#[path = "callback_tests.rs"]
mod tests;
