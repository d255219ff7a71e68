//! Attended (consult) transfer from the seat's phone: the seat holds its
//! caller, calls the target from its phone — a new INVITE from the
//! registered seat, which the driver hands to the seat's live call
//! ([`Call::on_consult`]) — talks to it, then REFERs with `Replaces`
//! (RFC 3891) on either of its two dialogs naming the other. Both of the
//! seat's dialogs end at the gateway, so the gateway joins caller and
//! target itself: no INVITE-with-Replaces ever goes out. A seat that hangs
//! up its call with the caller while it talks to the target leaves the
//! two together (`seat_left_after_intro`).
//!
//! The consultation's number is resolved as every seat's target is,
//! through the table only ([`Output::Consult`], answered with
//! [`Call::consult_to`]).

use super::conference::PartyMode;
use super::transfer::{Kind, Refusal, Result, is_emergency};
use super::{Call, Output, Phase, negotiate_offer, remote_command, sdp_body};
use crate::call::hunt::Hunt;
use crate::call::leg::{Leg, LegEvent, LegId, Parts, Target};
use crate::call::registrar::Registrar;
use crate::media::sdp;
use crate::media::session::Command as MediaCommand;
use crate::sip::message::{Message, Method, Name, uri_number};
use crate::sip::transport::Peer;
use std::time::Instant;

/// The seat's consultation: its own dialog with us, and what it called.
pub struct Consult {
    pub leg: LegId,
    stream: usize,
    number: String,
    seat: String,
    /// Our SDP answer to the seat's offer, sent with the target's answer.
    answer: String,
    /// The target answered: seat and target talk.
    answered: bool,
    /// Asked for with `*2` + number + `#` on the seat's own call: no
    /// dialog of its own (`leg` is the seat's leg with the caller).
    by_keys: bool,
    /// (`*4`) The seat talks to the caller again; the target waits.
    swapped: bool,
    started: Instant,
    target: String,
}

/// Whether `replaces` (`call-id;to-tag=..;from-tag=..`, RFC 3891) names
/// the dialog `call_id` between `ours` and `theirs`, whichever way round
/// its tags are written.
pub fn names_dialog(replaces: &str, call_id: &str, ours: &str, theirs: Option<&str>) -> bool {
    let mut parts = replaces.split(';');
    let Some(id) = parts.next() else {
        return false;
    };
    let (mut to, mut from) = (None, None);
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            match k.trim().to_ascii_lowercase().as_str() {
                "to-tag" => to = Some(v.trim()),
                "from-tag" => from = Some(v.trim()),
                _ => {}
            }
        }
    }
    let (Some(to), Some(from), Some(theirs)) = (to, from, theirs) else {
        return false;
    };
    id.trim() == call_id && ((to == ours && from == theirs) || (to == theirs && from == ours))
}

impl Call {
    /// The seat that may consult from its phone now: bridged to the caller
    /// with nothing else under way.
    fn takes_consult(&self) -> Option<String> {
        if self.phase != Phase::Connected
            || self.party.is_some()
            || self.transfer.is_some()
            || self.consult.is_some()
            || self.media.is_none()
        {
            return None;
        }
        self.current_leg()
            .filter(|l| l.is_answered())
            .and_then(|l| l.seat().map(str::to_string))
    }

    /// Keeps the registrar's word of which seat's own INVITE is this
    /// call's consultation.
    pub(super) fn tell_consultable(&mut self, registrar: &Registrar) {
        let now = self.takes_consult();
        if now == self.consultable {
            return;
        }
        if let Some(old) = self.consultable.take() {
            registrar.set_bridged(&old, self.id, false);
        }
        if let Some(seat) = &now {
            registrar.set_bridged(seat, self.id, true);
        }
        self.consultable = now;
    }

    /// Whether `leg` is the seat's consultation dialog (one keyed with
    /// `*2` has none: its leg is the seat's call with the caller).
    pub(super) fn is_consult(&self, leg: LegId) -> bool {
        self.consult
            .as_ref()
            .is_some_and(|c| c.leg == leg && !c.by_keys)
    }

    /// The seat whose consultation runs.
    pub(super) fn consult_seat(&self) -> Option<String> {
        self.consult.as_ref().map(|c| c.seat.clone())
    }

    /// A new INVITE from seat `seat`, which this call's current leg
    /// talks to: its consultation. A retransmission goes to the leg it
    /// opened. Refused (`486`) unless the call is bridged to that seat,
    /// anchored, and no other hand-off is under way.
    pub fn on_consult(
        &mut self,
        invite: Message,
        peer: Peer,
        seat: &str,
        registrar: &Registrar,
        now: Instant,
    ) -> Vec<Output> {
        let call_id = invite.call_id().map(|c| c.to_string()).unwrap_or_default();
        if let Some(l) = self.legs.iter_mut().find(|l| l.dialog.call_id == call_id) {
            l.on_message(invite, peer, now);
            return self.finish_input(registrar, now);
        }
        let id = self.new_leg_id();
        let mut leg = Leg::incoming(
            id,
            self.id,
            invite.clone(),
            peer,
            self.settings.timers,
            self.settings.local.clone(),
            now,
        );
        leg.respond(100, "Trying", Parts::default(), now);
        self.legs.push(leg);
        self.out.push(Output::Bind(call_id));
        self.far_ends_changed = true;
        let ours = self.current_leg().and_then(|l| l.seat()) == Some(seat);
        if !ours
            || self.phase != Phase::Connected
            || self.party.is_some()
            || self.transfer.is_some()
            || self.consult.is_some()
            || self.media.is_none()
        {
            tracing::info!(call = self.id, seat, "consultation refused in this state");
            self.refuse_consult(id, 486, "Busy Here (no consultation now)", now);
            return self.finish_input(registrar, now);
        }
        let number = invite
            .request_uri()
            .and_then(|u| uri_number(u))
            .or_else(|| invite.to().and_then(|t| uri_number(t.uri)))
            .unwrap_or_default();
        let Some(stream) = self.open_stream(id) else {
            self.refuse_consult(id, 503, "Service Unavailable (no media port)", now);
            return self.finish_input(registrar, now);
        };
        let Some(body) = sdp_body(&invite) else {
            self.refuse_consult(id, 488, "Not Acceptable Here (no SDP offer)", now);
            return self.finish_input(registrar, now);
        };
        let m = self.media.as_ref().expect("anchored");
        let (local, session_id, version) = (
            m.streams[stream].local,
            m.session_id,
            m.streams[stream].version,
        );
        let (remote, neg) = match negotiate_offer(&body, local) {
            Ok(r) => r,
            Err((code, reason)) => {
                self.refuse_consult(id, code, &reason, now);
                return self.finish_input(registrar, now);
            }
        };
        self.out.push(Output::Media(remote_command(
            stream,
            peer.addr.ip(),
            &remote,
            &neg,
        )));
        tracing::info!(call = self.id, seat, %number, "the seat consults (its own INVITE)");
        self.consult = Some(Box::new(Consult {
            leg: id,
            stream,
            number: number.clone(),
            seat: seat.to_string(),
            answer: sdp::answer(&neg, local, session_id, version),
            answered: false,
            by_keys: false,
            swapped: false,
            started: now,
            target: "none".into(),
        }));
        self.out.push(Output::Consult { number });
        self.finish_input(registrar, now)
    }

    /// The seat keyed `*2` + number + `#`: a consultation without a dialog
    /// of its own. The caller waits on music while the number rings; the
    /// seat then talks to it, `*4` swaps between the two, `*3` joins all
    /// three, `*1` drops the target, and hanging up leaves caller and
    /// target together.
    pub(super) fn consult_by_keys(&mut self, number: String, now: Instant) {
        let (Some(leg), Some(seat)) = (
            self.current,
            self.current_leg()
                .and_then(|l| l.seat().map(str::to_string)),
        ) else {
            return;
        };
        if self.phase != Phase::Connected
            || self.party.is_some()
            || self.transfer.is_some()
            || self.consult.is_some()
            || self.media.is_none()
        {
            tracing::info!(call = self.id, %number, "consultation refused in this state");
            self.tell_seat(super::conference::PARTY_FAILED);
            return;
        }
        tracing::info!(call = self.id, %seat, %number, "the seat consults (*2)");
        let stream = self.stream_of(leg);
        self.consult = Some(Box::new(Consult {
            leg,
            stream,
            number: number.clone(),
            seat,
            answer: String::new(),
            answered: false,
            by_keys: true,
            swapped: false,
            started: now,
            target: "none".into(),
        }));
        self.out
            .push(Output::Media(MediaCommand::Bridge { legs: Vec::new() }));
        self.caller_music();
        self.out.push(Output::Consult { number });
    }

    /// Hold music to the caller (it waits while the seat consults).
    fn caller_music(&mut self) {
        let music = self.media.as_ref().and_then(|m| m.plan.hold.clone());
        if let Some(music) = music {
            self.out.push(Output::Media(MediaCommand::Play {
                leg: 0,
                playlist: Box::new(music),
            }));
        }
    }

    /// Whether the seat consults by keys (its keys steer it).
    /// Whether a consultation is under way, and then whether its target
    /// answered.
    pub(super) fn consultation(&self) -> Option<bool> {
        self.consult.as_ref().map(|c| c.answered)
    }

    pub(super) fn consulting_by_keys(&self) -> bool {
        self.consult.as_ref().is_some_and(|c| c.by_keys)
    }

    /// `*4`: the seat talks to the caller and the target waits on music,
    /// or the other way round again.
    pub(super) fn swap_consult(&mut self) {
        let Some(p) = &self.party else { return };
        let t = self.stream_of(p.leg);
        let Some(c) = self.consult.as_mut().filter(|c| c.by_keys && c.answered) else {
            return;
        };
        c.swapped = !c.swapped;
        let (swapped, seat) = (c.swapped, c.stream);
        let music = self.media.as_ref().and_then(|m| m.plan.hold.clone());
        let (talks, waits) = if swapped { (0, t) } else { (t, 0) };
        tracing::info!(call = self.id, swapped, "the seat swaps (*4)");
        self.out
            .push(Output::Media(MediaCommand::StopPlay { leg: talks }));
        self.out.push(Output::Media(MediaCommand::Bridge {
            legs: vec![seat, talks],
        }));
        if let Some(music) = music {
            self.out.push(Output::Media(MediaCommand::Play {
                leg: waits,
                playlist: Box::new(music),
            }));
        }
    }

    /// `*3#` while consulting: all three together (三方). Before the
    /// target answers, the seat hears that it cannot be.
    pub(super) fn consult_to_three_way(&mut self, now: Instant) {
        if !self.consult.as_ref().is_some_and(|c| c.answered) || self.party.is_none() {
            self.tell_seat(super::conference::PARTY_FAILED);
            return;
        }
        let Some(c) = self.consult.take() else {
            return;
        };
        let Some(p) = self.party.as_mut() else {
            return;
        };
        p.mode = PartyMode::ThreeWay;
        tracing::info!(call = self.id, "the consultation becomes a three-way call");
        self.phase = Phase::Conference;
        let legs = self.bridge_streams();
        for &leg in &legs {
            self.out.push(Output::Media(MediaCommand::StopPlay { leg }));
        }
        self.out.push(Output::Media(MediaCommand::Bridge { legs }));
        let after = now.saturating_duration_since(c.started);
        self.audit(
            if is_emergency(&c.number) {
                Kind::Emergency
            } else {
                Kind::ThreeWay
            },
            &c.seat,
            &c.number,
            &c.target,
            Result::Completed,
            Some(after),
        );
    }

    fn refuse_consult(&mut self, id: LegId, code: u16, reason: &str, now: Instant) {
        if let Some(l) = self.leg(id) {
            l.respond(code, reason, Parts::default(), now);
        }
    }

    /// The answer to [`Output::Consult`]: the number's targets through the
    /// table. None: `403` to the seat's INVITE; else they ring in turn.
    pub fn consult_to(
        &mut self,
        number: &str,
        targets: Vec<Target>,
        registrar: &Registrar,
        now: Instant,
    ) -> Vec<Output> {
        let Some(c) = self.consult.as_mut().filter(|c| c.number == number) else {
            return self.finish_input(registrar, now);
        };
        let (leg, seat, by_keys, stream) = (c.leg, c.seat.clone(), c.by_keys, c.stream);
        if targets.is_empty() || self.party.is_some() {
            tracing::info!(
                call = self.id,
                number,
                "consultation refused: the table routes the number to no trunk or seat"
            );
            self.consult = None;
            if by_keys {
                // Back with the caller, told so.
                self.out
                    .push(Output::Media(MediaCommand::StopPlay { leg: 0 }));
                self.out.push(Output::Media(MediaCommand::Bridge {
                    legs: vec![0, stream],
                }));
                self.tell_seat(super::conference::PARTY_FAILED);
            } else {
                self.refuse_consult(
                    leg,
                    403,
                    "Forbidden (the number reaches no seat or line of ours)",
                    now,
                );
            }
            self.audit(Kind::Attended, &seat, number, "none", Result::Refused, None);
            return self.finish_input(registrar, now);
        }
        c.target = match &targets[0] {
            Target::Seat { .. } => "seat".into(),
            Target::Trunk { id, .. } => id.clone(),
        };
        let hunt = Hunt::new(
            targets,
            self.settings.seat_ring,
            self.settings.max_ring,
            false,
        );
        self.ring_party(hunt, number.to_string(), PartyMode::Consult, registrar, now);
        self.finish_input(registrar, now)
    }

    /// The consultation's target rings or sends early media: the seat's
    /// phone hears it ring.
    pub(super) fn consult_progress(&mut self, code: u16, now: Instant) {
        let Some(c) = self.consult.as_ref().filter(|c| !c.by_keys) else {
            return;
        };
        let leg = c.leg;
        if let Some(l) = self.leg(leg) {
            l.respond(code.min(180), "Ringing", Parts::default(), now);
        }
    }

    /// The target answered the consultation: seat and target talk; the
    /// caller, on hold, hears music.
    pub(super) fn consult_answered(
        &mut self,
        target: LegId,
        msg: &Message,
        name: String,
        now: Instant,
    ) {
        let Some(c) = &mut self.consult else { return };
        c.answered = true;
        c.target = name;
        let (leg, stream, answer, by_keys) = (c.leg, c.stream, c.answer.clone(), c.by_keys);
        tracing::info!(call = self.id, "the consultation's target answered");
        if !by_keys && let Some(l) = self.leg(leg) {
            l.respond(200, "OK", Parts::sdp(answer), now);
        }
        let t = self.remote_from_answer(target, msg);
        for s in [stream, t] {
            self.out.push(Output::Media(MediaCommand::Watch { leg: s }));
        }
        self.out.push(Output::Media(MediaCommand::Bridge {
            legs: vec![stream, t],
        }));
        // The caller waits on music, whether or not the seat's phone put
        // it on hold first (keyed, it hears it already).
        if !by_keys {
            self.caller_music();
        }
    }

    /// No target of the consultation answered (`code`: the last one's
    /// final status): the seat's INVITE gets it.
    pub(super) fn consult_failed(&mut self, code: u16, now: Instant) {
        let last = self.last_party_target.take();
        let Some(mut c) = self.consult.take() else {
            return;
        };
        if let Some(last) = last {
            c.target = last;
        }
        let status = if code >= 300 { code } else { 480 };
        tracing::info!(
            call = self.id,
            code = status,
            "the consultation's target did not answer"
        );
        let reason = super::transfer::reason_phrase(status);
        if c.by_keys {
            // Back with the caller, told why.
            self.out
                .push(Output::Media(MediaCommand::StopPlay { leg: 0 }));
            self.out.push(Output::Media(MediaCommand::Bridge {
                legs: vec![0, c.stream],
            }));
            self.tell_seat(super::conference::PARTY_FAILED);
        } else if let Some(l) = self.leg(c.leg) {
            l.respond(status, reason, Parts::default(), now);
        }
        self.audit(
            Kind::Attended,
            &c.seat,
            &c.number,
            &c.target,
            Result::of_failure(status),
            None,
        );
    }

    /// The consultation ends without a transfer (the seat or the target
    /// hung up, the seat cancelled): the other side is ended too; the
    /// caller stays with the seat (still on hold until it resumes).
    pub(super) fn end_consult(&mut self, now: Instant) {
        let Some(c) = self.consult.take() else { return };
        tracing::info!(call = self.id, "the consultation ended");
        if let Some(p) = self.party.take() {
            let s = self.stream_of(p.leg);
            if let Some(l) = self.leg(p.leg) {
                l.cancel(now);
                l.hang_up(now);
            }
            self.out.push(Output::Media(MediaCommand::Leave { leg: s }));
        }
        let held = self
            .current
            .map(|s| self.stream_of(s))
            .and_then(|s| self.media.as_ref().and_then(|m| m.streams.get(s)))
            .is_some_and(|st| st.held);
        if !held {
            // The seat's call goes on, with the caller (music until the
            // seat resumes, if it holds it).
            self.out
                .push(Output::Media(MediaCommand::StopPlay { leg: 0 }));
        }
        if !c.by_keys {
            if let Some(l) = self.leg(c.leg) {
                if l.is_answered() {
                    l.hang_up(now);
                } else {
                    l.respond(487, "Request Terminated", Parts::default(), now);
                }
            }
            self.out
                .push(Output::Media(MediaCommand::Leave { leg: c.stream }));
        }
        if let Some(seat) = self.current.map(|c| self.stream_of(c)) {
            self.out.push(Output::Media(MediaCommand::Bridge {
                legs: vec![0, seat],
            }));
        }
    }

    /// A hold or resume on one of the seat's two dialogs while its phone
    /// consultation is answered: the seat talks to whom it resumed, the
    /// other waits on music. False when it is no such stream.
    pub(super) fn consult_hold(&mut self, s: usize, holds: bool) -> bool {
        let Some(c) = self.consult.as_ref().filter(|c| !c.by_keys && c.answered) else {
            return false;
        };
        let Some(p) = &self.party else { return false };
        let (consult, target) = (c.stream, self.stream_of(p.leg));
        let Some(seat) = self.current.map(|l| self.stream_of(l)) else {
            return false;
        };
        if s != seat && s != consult {
            return false;
        }
        // Which of the seat's two dialogs is live once this one holds or
        // resumes: the topology follows from both.
        let held = |st: usize| {
            if st == s {
                holds
            } else {
                self.media
                    .as_ref()
                    .and_then(|m| m.streams.get(st))
                    .is_some_and(|x| x.held)
            }
        };
        let (caller_live, consult_live) = (!held(seat), !held(consult));
        let music = self.media.as_ref().and_then(|m| m.plan.hold.clone());
        let play = |out: &mut Vec<Output>, leg: usize| {
            if let Some(music) = &music {
                out.push(Output::Media(MediaCommand::Play {
                    leg,
                    playlist: Box::new(music.clone()),
                }));
            }
        };
        match (caller_live, consult_live) {
            (true, true) => {
                // Both of the phone's calls live (its local conference,
                // which it mixes itself): each dialog talks to its own party.
                tracing::info!(
                    call = self.id,
                    "both of the seat's calls live: its own conference"
                );
                for leg in [0, target] {
                    self.out.push(Output::Media(MediaCommand::StopPlay { leg }));
                }
                self.out.push(Output::Media(MediaCommand::Pairs {
                    first: (0, seat),
                    second: (consult, target),
                }));
            }
            (true, false) => {
                tracing::info!(
                    call = self.id,
                    "the seat talks to its caller; the target waits"
                );
                self.out
                    .push(Output::Media(MediaCommand::StopPlay { leg: 0 }));
                self.out.push(Output::Media(MediaCommand::Bridge {
                    legs: vec![seat, 0],
                }));
                play(&mut self.out, target);
            }
            (false, true) => {
                tracing::info!(
                    call = self.id,
                    "the seat talks to the target; its caller waits"
                );
                self.out
                    .push(Output::Media(MediaCommand::StopPlay { leg: target }));
                self.out.push(Output::Media(MediaCommand::Bridge {
                    legs: vec![consult, target],
                }));
                play(&mut self.out, 0);
            }
            (false, false) => {
                self.out
                    .push(Output::Media(MediaCommand::Bridge { legs: Vec::new() }));
                play(&mut self.out, 0);
                play(&mut self.out, target);
            }
        }
        true
    }

    /// What happens on the seat's consultation leg.
    pub(super) fn on_consult_event(&mut self, leg: LegId, ev: LegEvent, now: Instant) {
        match ev {
            LegEvent::Request { tx, msg } => {
                let method = msg.method().cloned();
                match method {
                    Some(Method::Refer) => self.on_refer(leg, tx, &msg, now),
                    Some(Method::Invite) | Some(Method::Update) => {
                        self.answer_reoffer(leg, tx, &msg, now)
                    }
                    Some(Method::Options) => {
                        if let Some(l) = self.leg(leg) {
                            l.reply(
                                tx,
                                200,
                                "OK",
                                Parts::default().header(Name::Allow, super::SEAT_ALLOW),
                                now,
                            );
                        }
                    }
                    _ => {
                        if let Some(l) = self.leg(leg) {
                            l.reply(tx, 200, "OK", Parts::default(), now);
                        }
                    }
                }
            }
            LegEvent::Ack { msg } => self.on_ack(leg, &msg),
            LegEvent::HungUp
            | LegEvent::Cancelled
            | LegEvent::AckTimeout
            | LegEvent::Unreachable => self.end_consult(now),
            _ => {}
        }
    }

    /// A REFER with `Replaces` from the seat (`on`: the leg it came on):
    /// it must name the seat's other dialog with us, and the target must
    /// have answered; then caller and target are joined.
    pub(super) fn refer_replaces(
        &mut self,
        on: LegId,
        tx: u32,
        replaces: &str,
        subscribe: Option<u32>,
        now: Instant,
    ) -> std::result::Result<(), Refusal> {
        let refuse = |code, reason| Err(Refusal { code, reason });
        let Some(c) = self.consult.as_ref().filter(|c| !c.by_keys) else {
            return refuse(403, "Forbidden (Replaces names no dialog of this seat)");
        };
        let other = if on == c.leg {
            self.current
        } else {
            Some(c.leg)
        };
        let named = other
            .and_then(|o| self.legs.iter().find(|l| l.id == o))
            .is_some_and(|l| {
                names_dialog(
                    replaces,
                    &l.dialog.call_id,
                    &l.dialog.local_tag,
                    l.dialog.remote_tag.as_deref(),
                )
            });
        if !named {
            return refuse(403, "Forbidden (Replaces names no dialog of this seat)");
        }
        let answered = c.answered;
        if !answered && self.party.is_none() {
            // The table has not answered for the number yet: nothing rings
            // to hand the caller to.
            return refuse(491, "Request Pending (the consultation is not ringing yet)");
        }
        if let Some(l) = self.leg(on) {
            let parts = if subscribe.is_some() {
                Parts::default()
            } else {
                Parts::default().header(Name::Other("Refer-Sub".into()), "false")
            };
            l.reply(tx, 202, "Accepted", parts, now);
        }
        if let Some(id) = subscribe {
            self.notify_on(on, id, 100, "Trying", now);
            self.notify_on(on, id, 200, "OK", now);
        }
        if answered {
            self.join_consulted(Result::Completed, now);
        } else {
            // Before the target answered (semi-attended): the caller waits
            // for it as after a blind transfer; the seat is done.
            let seat_leg = self.current;
            self.hand_over_consult(now);
            if let Some(s) = seat_leg
                && let Some(l) = self.leg(s)
            {
                l.hang_up(now);
            }
        }
        Ok(())
    }

    /// The seat leaves while the target of its phone's consultation still
    /// rings: its consultation INVITE is ended (`487`) and the caller waits
    /// for the target, as after a blind transfer whose seat left. False
    /// when there is no such consultation.
    pub(super) fn hand_over_consult(&mut self, now: Instant) -> bool {
        if !self
            .consult
            .as_ref()
            .is_some_and(|c| !c.by_keys && !c.answered)
        {
            return false;
        }
        let Some(c) = self.consult.take() else {
            return false;
        };
        let Some(p) = self.party.as_mut() else {
            self.consult = Some(c);
            return false;
        };
        p.mode = PartyMode::Transfer;
        let (number, started, target) = (p.number.clone(), p.started, p.target.clone());
        if let Some(l) = self.leg(c.leg) {
            l.respond(487, "Request Terminated", Parts::default(), now);
        }
        self.out
            .push(Output::Media(MediaCommand::Leave { leg: c.stream }));
        let kind = if is_emergency(&number) {
            Kind::Emergency
        } else {
            Kind::Attended
        };
        self.hand_over(kind, number, started, target);
        true
    }

    /// The seat hung up its call with the caller while talking to the
    /// consulted target: it introduced them and left; they stay together.
    /// False when there is no answered consultation.
    pub(super) fn seat_left_after_intro(&mut self, now: Instant) -> bool {
        if !self.consult.as_ref().is_some_and(|c| c.answered) {
            return false;
        }
        tracing::info!(call = self.id, "the seat hung up after the introduction");
        self.join_consulted(Result::SeatLeftAfterIntro, now);
        true
    }

    /// Caller and the consulted target are joined; the seat's two dialogs
    /// end (our BYEs, after any NOTIFY) and the seat is free.
    fn join_consulted(&mut self, result: Result, now: Instant) {
        let Some(c) = self.consult.take() else { return };
        let Some(p) = self.party.take() else { return };
        let seat_leg = self.current;
        if let Some(s) = seat_leg {
            let stream = self.stream_of(s);
            self.out
                .push(Output::Media(MediaCommand::Leave { leg: stream }));
            if let Some(l) = self.leg(s) {
                l.hang_up(now);
            }
        }
        if !c.by_keys {
            self.out
                .push(Output::Media(MediaCommand::Leave { leg: c.stream }));
            if let Some(l) = self.leg(c.leg) {
                l.hang_up(now);
            }
        }
        // A target waiting on music (after `*4`) hears the caller now.
        let waiting = self.stream_of(p.leg);
        self.out
            .push(Output::Media(MediaCommand::StopPlay { leg: waiting }));
        if !self.via_acd {
            self.out.push(Output::Seat {
                seat: c.seat.clone(),
                busy: false,
            });
        } else if !self.acd_done {
            self.acd_done = true;
            self.out.push(Output::Acd(crate::call::queue::ToAcd::Ended {
                by_seat: true,
            }));
        }
        self.current = Some(p.leg);
        self.seat_hung_up = false;
        let t = self.stream_of(p.leg);
        self.out.push(Output::Record {
            stream: t,
            name: format!("party{}", p.leg.0),
        });
        self.out
            .push(Output::Media(MediaCommand::StopPlay { leg: 0 }));
        self.out
            .push(Output::Media(MediaCommand::Bridge { legs: vec![0, t] }));
        let kind = if is_emergency(&c.number) {
            Kind::Emergency
        } else {
            Kind::Attended
        };
        let after = now.saturating_duration_since(c.started);
        self.audit(kind, &c.seat, &c.number, &c.target, result, Some(after));
    }
}

#[cfg(test)]
mod tests {
    use super::names_dialog;

    #[test]
    fn replaces_names_a_dialog_by_its_call_id_and_both_tags_either_way() {
        let r = "abc@h;to-tag=ours;from-tag=seat";
        assert!(names_dialog(r, "abc@h", "ours", Some("seat")));
        assert!(names_dialog(
            "abc@h;from-tag=ours;to-tag=seat",
            "abc@h",
            "ours",
            Some("seat")
        ));
        assert!(names_dialog(
            "abc@h;to-tag=ours;from-tag=seat;early-only",
            "abc@h",
            "ours",
            Some("seat")
        ));
        assert!(!names_dialog(r, "other@h", "ours", Some("seat")));
        assert!(!names_dialog(r, "abc@h", "ours", Some("someone")));
        assert!(!names_dialog(r, "abc@h", "ours", None));
        assert!(!names_dialog(
            "abc@h;to-tag=ours",
            "abc@h",
            "ours",
            Some("seat")
        ));
        assert!(!names_dialog("", "abc@h", "ours", Some("seat")));
    }
}
