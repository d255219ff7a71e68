//! Transfers (转接): a seat hands its caller to another seat, a sub-centre
//! or an emergency trunk, from its own phone.
//!
//! **Blind** (RFC 3515 REFER on the seat's leg, or the keys `#1`, the
//! number and `#`): the caller hears `transfer_notice` and hold music while the
//! target rings on a media stream of its own. The target answering
//! bridges it with the caller and releases the seat (a `NOTIFY` with
//! `SIP/2.0 200 OK`, then our BYE); the target busy or not answering
//! brings the caller back to the seat, or — when the seat has hung up
//! meanwhile — back to its queue by its first arrival (ahead of those who
//! came later), or, for a call that came through no queue, ends it.
//!
//! The REFER is checked here ([`parse_refer`]): the target is named only
//! by the number in the `Refer-To` user part, and that number is resolved
//! through our own routing table by the call's driver, never through the
//! URI's host — which must be ours. Any other URI header than `Replaces`
//! is dropped, and `method=` other than INVITE refused. Every hand-off is
//! audited ([`Audit`]).

use super::conference::{PARTY_FAILED, PartyMode};
use super::{Call, Output, Phase};
use crate::call::leg::{LegId, Parts, Target};
use crate::call::queue::ToAcd;
use crate::call::registrar::Registrar;
use crate::media::prompt::Item;
use crate::media::session::Command as MediaCommand;
use crate::sip::message::{Message, Name, NameAddr, SipUriView, uri_number};
use std::time::{Duration, Instant};

/// How a hand-off is made, for the audit and
/// `hotline_transfers_total{kind}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Blind,
    Attended,
    ThreeWay,
    Emergency,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Blind => "blind",
            Kind::Attended => "attended",
            Kind::ThreeWay => "three_way",
            Kind::Emergency => "emergency",
        }
    }
}

/// How a hand-off ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Result {
    Completed,
    NoAnswer,
    Busy,
    Failed,
    SeatLeftAfterIntro,
    ReturnedToQueue,
    /// Refused before any leg was placed: a target the table does not
    /// route, a foreign host, a trunk's REFER.
    Refused,
}

impl Result {
    pub fn as_str(self) -> &'static str {
        match self {
            Result::Completed => "completed",
            Result::NoAnswer => "no_answer",
            Result::Busy => "busy",
            Result::Failed => "failed",
            Result::SeatLeftAfterIntro => "seat_left_after_intro",
            Result::ReturnedToQueue => "returned_to_queue",
            Result::Refused => "refused",
        }
    }

    /// A target's final failure, as the audit tells it.
    pub fn of_failure(code: u16) -> Result {
        match code {
            486 | 600 => Result::Busy,
            408 | 480 | 487 => Result::NoAnswer,
            _ => Result::Failed,
        }
    }
}

/// One hand-off, for the event log and the metric.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audit {
    pub kind: Kind,
    /// The seat that made it.
    pub seat: String,
    /// The number it asked for.
    pub number: String,
    /// The target's trunk id, `seat`, or `none` (refused): bounded.
    pub target: String,
    pub result: Result,
    /// From the hand-off's start to the target's answer.
    pub answered_after: Option<Duration>,
}

/// The emergency numbers: a hand-off to one is audited as `emergency`.
pub fn is_emergency(number: &str) -> bool {
    matches!(number, "110" | "119" | "120" | "122")
}

/// What a REFER asks for, once checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refer {
    /// The Refer-To's user part: the number to resolve.
    pub number: String,
    /// `Replaces` (RFC 3891) from the Refer-To's headers: an attended
    /// transfer naming the dialog to replace (`call-id;to-tag=;from-tag=`).
    pub replaces: Option<String>,
    /// `Refer-Sub: false` (RFC 4488): no NOTIFYs wanted.
    pub subscribe: bool,
}

/// Why a REFER is refused: the status and its reason phrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub reason: &'static str,
}

const fn refuse(code: u16, reason: &'static str) -> Refusal {
    Refusal { code, reason }
}

/// Whether `host` (and `port`, if the URI gave one) is ours: the host of
/// `local` (`host:port`, as in our Via) or one of `names` (the digest
/// realm, a domain seats register to).
pub fn is_our_host(host: &str, port: Option<u16>, local: &str, names: &[String]) -> bool {
    let (our_host, our_port) = split_host_port(local);
    if port.is_some_and(|p| Some(p) != our_port) {
        return false;
    }
    host.eq_ignore_ascii_case(our_host) || names.iter().any(|n| host.eq_ignore_ascii_case(n))
}

fn split_host_port(hostport: &str) -> (&str, Option<u16>) {
    if hostport.starts_with('[') {
        if let Some(close) = hostport.find(']') {
            let port = hostport[close + 1..]
                .strip_prefix(':')
                .and_then(|p| p.parse().ok());
            return (&hostport[..=close], port);
        }
        return (hostport, None);
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()),
        None => (hostport, None),
    }
}

/// Checks a REFER (RFC 3515) from a seat: one `Refer-To`, a `sip:` or
/// `sips:` URI on our host whose user part is a number, no `method=` but
/// INVITE; headers other than `Replaces` are dropped. `400` for a REFER
/// that is malformed, `403` for one that asks for what we do not do.
pub fn parse_refer(
    msg: &Message,
    local: &str,
    names: &[String],
) -> std::result::Result<Refer, Refusal> {
    let values: Vec<&str> = msg
        .headers
        .iter()
        .filter(|h| {
            matches!(&h.name, Name::Other(o) if o.as_str().eq_ignore_ascii_case("refer-to")
                || o.as_str().eq_ignore_ascii_case("r"))
        })
        .map(|h| h.value.as_str())
        .collect();
    let value = match values.as_slice() {
        [] => return Err(refuse(400, "Bad Request (no Refer-To)")),
        [one] => *one,
        _ => return Err(refuse(400, "Bad Request (more than one Refer-To)")),
    };
    let addr = NameAddr::parse(value).map_err(|_| refuse(400, "Bad Request (Refer-To)"))?;
    let Some(uri) = SipUriView::parse(addr.uri) else {
        return Err(refuse(
            403,
            "Forbidden (Refer-To must be a sip: URI of ours)",
        ));
    };
    if !is_our_host(uri.host, uri.port, local, names) {
        return Err(refuse(403, "Forbidden (Refer-To names another host)"));
    }
    if uri
        .param("method")
        .is_some_and(|m| !m.eq_ignore_ascii_case("INVITE"))
    {
        return Err(refuse(403, "Forbidden (only INVITE may be referred)"));
    }
    // The URI without its headers gives the number.
    let bare = match addr.uri.split_once('?') {
        Some((b, _)) => b,
        None => addr.uri,
    };
    let replaces = uri.headers.and_then(|h| {
        h.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            k.eq_ignore_ascii_case("replaces")
                .then(|| crate::sip::message::percent_decode(v))
        })
    });
    let number = uri_number(bare).unwrap_or_default();
    let is_number = !number.is_empty()
        && number.len() <= 32
        && number
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#');
    // With Replaces the dialog named is the target, whatever the URI's
    // user part says (a phone may name our Contact).
    if !is_number && replaces.is_none() {
        return Err(refuse(403, "Forbidden (Refer-To names no number)"));
    }
    let subscribe = !msg.headers.iter().any(|h| {
        matches!(&h.name, Name::Other(o) if o.as_str().eq_ignore_ascii_case("refer-sub"))
            && h.value.as_str().trim().eq_ignore_ascii_case("false")
    });
    Ok(Refer {
        number,
        replaces,
        subscribe,
    })
}

/// The reason phrase a target's final status is told with (RFC 3261
/// §21).
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "Temporarily Unavailable",
    }
}

/// The body of a NOTIFY for a REFER (RFC 3515 §2.4.5): the status line of
/// the target's answer.
pub fn sipfrag(code: u16, reason: &str) -> String {
    format!("SIP/2.0 {code} {reason}\r\n")
}

/// A transfer under way.
pub struct Transfer {
    pub kind: Kind,
    number: String,
    /// The seat that asked, and its leg.
    seat: String,
    seat_leg: LegId,
    /// The seat hung up after asking: the caller no longer goes back to it.
    seat_gone: bool,
    /// The REFER waiting for the number's resolution: its transaction.
    refer_tx: Option<u32>,
    /// NOTIFYs are owed on the seat's leg (a REFER without `Refer-Sub:
    /// false`): the REFER's CSeq, for `Event: refer;id=`.
    notify: Option<u32>,
    started: Instant,
    target: String,
}

impl Call {
    /// A REFER on one of the call's legs. Only the seat the caller is
    /// joined to may transfer, on a bridged call with anchored media; the
    /// number goes to the driver for the table ([`Output::Transfer`]).
    pub(super) fn on_refer(&mut self, leg: LegId, tx: u32, msg: &Message, now: Instant) {
        let on_consult = self.is_consult(leg);
        let seat = if on_consult {
            self.consult_seat()
        } else {
            (Some(leg) == self.current)
                .then(|| {
                    self.current_leg()
                        .and_then(|l| l.seat().map(str::to_string))
                })
                .flatten()
        };
        let refused = |call: &mut Call, r: Refusal, number: &str, seat: &str| {
            tracing::info!(
                call = call.id,
                code = r.code,
                reason = r.reason,
                "REFER refused"
            );
            if let Some(l) = call.leg(leg) {
                l.reply(tx, r.code, r.reason, Parts::default(), now);
            }
            call.audit(Kind::Blind, seat, number, "none", Result::Refused, None);
        };
        let Some(seat) = seat else {
            return refused(
                self,
                refuse(403, "Forbidden (only a seat may transfer)"),
                "",
                "-",
            );
        };
        if self.transfer.is_some() {
            // One transfer at a time (a second REFER is a repeat, or glare
            // with the one under way).
            if let Some(l) = self.leg(leg) {
                l.reply(tx, 491, "Request Pending", Parts::default(), now);
            }
            return;
        }
        let names = self.settings.own_names.clone();
        let refer = match parse_refer(msg, &self.settings.local, &names) {
            Ok(r) => r,
            Err(r) => return refused(self, r, "", &seat),
        };
        if let Some(replaces) = &refer.replaces {
            // Attended: it must name the seat's other dialog with us.
            let cseq = msg.cseq().map(|c| c.0).unwrap_or(0);
            let subscribe = refer.subscribe.then_some(cseq);
            if let Err(r) = self.refer_replaces(leg, tx, replaces, subscribe, now) {
                tracing::info!(
                    call = self.id,
                    code = r.code,
                    reason = r.reason,
                    "REFER refused"
                );
                if let Some(l) = self.leg(leg) {
                    l.reply(tx, r.code, r.reason, Parts::default(), now);
                }
                self.audit(
                    Kind::Attended,
                    &seat,
                    &refer.number,
                    "none",
                    Result::Refused,
                    None,
                );
            }
            return;
        }
        if on_consult {
            let r = refuse(
                403,
                "Forbidden (transfer the call with the caller, not the consultation)",
            );
            return refused(self, r, &refer.number, &seat);
        }
        if self.phase != Phase::Connected || self.party.is_some() || self.media.is_none() {
            let r = refuse(
                403,
                "Forbidden (no transfer in a three-way call or without anchored media)",
            );
            return refused(self, r, &refer.number, &seat);
        }
        let cseq = msg.cseq().map(|c| c.0).unwrap_or(0);
        tracing::info!(call = self.id, %seat, number = %refer.number, "the seat transfers the call (REFER)");
        self.transfer = Some(Box::new(Transfer {
            kind: if is_emergency(&refer.number) {
                Kind::Emergency
            } else {
                Kind::Blind
            },
            number: refer.number.clone(),
            seat,
            seat_leg: leg,
            seat_gone: false,
            refer_tx: Some(tx),
            notify: refer.subscribe.then_some(cseq),
            started: now,
            target: "none".into(),
        }));
        self.out.push(Output::Transfer {
            number: refer.number,
        });
    }

    /// The seat keyed `#1` + number + `#`: a blind transfer without REFER.
    pub(super) fn blind_by_keys(&mut self, number: String, now: Instant) {
        let Some(seat) = self
            .current_leg()
            .and_then(|l| l.seat().map(str::to_string))
        else {
            return;
        };
        if self.phase != Phase::Connected
            || self.party.is_some()
            || self.transfer.is_some()
            || self.media.is_none()
        {
            tracing::info!(call = self.id, %number, "transfer refused in this state");
            self.tell_seat(PARTY_FAILED);
            return;
        }
        tracing::info!(call = self.id, %seat, %number, "the seat transfers the call (#1)");
        self.transfer = Some(Box::new(Transfer {
            kind: if is_emergency(&number) {
                Kind::Emergency
            } else {
                Kind::Blind
            },
            number: number.clone(),
            seat,
            seat_leg: self.current.expect("a seat"),
            seat_gone: false,
            refer_tx: None,
            notify: None,
            started: now,
            target: "none".into(),
        }));
        self.out.push(Output::Transfer { number });
    }

    /// The answer to [`Output::Transfer`]: the number's targets through
    /// the table. None: the REFER gets `403` (nothing placed); else `202`
    /// and `NOTIFY 100`, the caller hears the notice and hold music, and
    /// the targets ring in turn.
    pub fn transfer_to(
        &mut self,
        number: &str,
        targets: Vec<Target>,
        registrar: &Registrar,
        now: Instant,
    ) -> Vec<Output> {
        let live = self.phase == Phase::Connected && self.party.is_none();
        let Some(t) = self.transfer.as_mut().filter(|t| t.number == number) else {
            return self.finish_input(registrar, now);
        };
        let refer_tx = t.refer_tx.take();
        let seat_leg = t.seat_leg;
        if targets.is_empty() || !live {
            let t = self.transfer.take().expect("checked");
            tracing::info!(
                call = self.id,
                number,
                "transfer refused: the table routes the number to no trunk or seat"
            );
            match refer_tx {
                Some(tx) => {
                    if let Some(l) = self.leg(seat_leg) {
                        l.reply(
                            tx,
                            403,
                            "Forbidden (the number reaches no seat or line of ours)",
                            Parts::default(),
                            now,
                        );
                    }
                }
                None => self.tell_seat(PARTY_FAILED),
            }
            self.audit(t.kind, &t.seat, number, "none", Result::Refused, None);
            return self.finish_input(registrar, now);
        }
        t.target = match &targets[0] {
            Target::Seat { .. } => "seat".into(),
            Target::Trunk { id, .. } => id.clone(),
        };
        let subscribe = t.notify;
        if let Some(tx) = refer_tx
            && let Some(l) = self.leg(seat_leg)
        {
            let parts = if subscribe.is_some() {
                Parts::default()
            } else {
                Parts::default().header(Name::Other("Refer-Sub".into()), "false")
            };
            l.reply(tx, 202, "Accepted", parts, now);
        }
        self.notify_seat(100, "Trying", now);
        // The caller waits on music; the seat hears nothing meanwhile.
        self.out
            .push(Output::Media(MediaCommand::Bridge { legs: Vec::new() }));
        self.out.push(Output::Prompt {
            leg: 0,
            items: vec![Item::prompt("transfer_notice")],
            hold: true,
        });
        let hunt = crate::call::hunt::Hunt::new(
            targets,
            self.settings.seat_ring,
            self.settings.max_ring,
            false,
        );
        self.ring_party(
            hunt,
            number.to_string(),
            PartyMode::Transfer,
            registrar,
            now,
        );
        self.finish_input(registrar, now)
    }

    /// A NOTIFY on the seat's leg with the target's progress, if the seat
    /// subscribed and is still there; a final one ends the subscription.
    fn notify_seat(&mut self, code: u16, reason: &str, now: Instant) {
        let Some(t) = &self.transfer else { return };
        let (Some(id), false) = (t.notify, t.seat_gone) else {
            return;
        };
        let leg = t.seat_leg;
        self.notify_on(leg, id, code, reason, now);
    }

    /// A NOTIFY for the REFER of CSeq `id` on `leg`: the target's status.
    pub(super) fn notify_on(&mut self, leg: LegId, id: u32, code: u16, reason: &str, now: Instant) {
        let state = if code >= 200 {
            "terminated;reason=noresource".to_string()
        } else {
            // Beyond the longest a target may ring: the seat need not
            // refresh its subscription.
            format!("active;expires={}", self.settings.max_ring.as_secs() + 30)
        };
        let parts = Parts {
            body: Some((
                "message/sipfrag;version=2.0".into(),
                sipfrag(code, reason).into(),
            )),
            headers: vec![
                (Name::Other("Event".into()), format!("refer;id={id}")),
                (Name::Other("Subscription-State".into()), state),
            ],
        };
        if let Some(l) = self.leg(leg) {
            l.request(crate::sip::message::Method::Notify, parts, now);
        }
    }

    /// `Referred-By` for the transfer's target: the seat, as we know it.
    pub(super) fn transfer_by(&self) -> Option<String> {
        let t = self.transfer.as_ref()?;
        Some(format!("<sip:{}@{}>", t.seat, self.settings.local))
    }

    /// The seat hung up while its three-way party still rings: the call is
    /// handed over — the caller waits on music for the party, as after a
    /// blind transfer whose seat left.
    pub(super) fn hand_over(
        &mut self,
        kind: Kind,
        number: String,
        started: Instant,
        target: String,
    ) {
        let (Some(seat_leg), Some(seat)) = (
            self.current,
            self.current_leg()
                .and_then(|l| l.seat().map(str::to_string)),
        ) else {
            return;
        };
        tracing::info!(
            call = self.id,
            "the seat left while its third party rings; the caller waits for it"
        );
        self.transfer = Some(Box::new(Transfer {
            kind,
            number,
            seat,
            seat_leg,
            seat_gone: false,
            refer_tx: None,
            notify: None,
            started,
            target,
        }));
        self.out
            .push(Output::Media(MediaCommand::Bridge { legs: Vec::new() }));
        self.out.push(Output::Prompt {
            leg: 0,
            items: vec![Item::prompt("transfer_notice")],
            hold: true,
        });
        self.transferor_left();
    }

    /// Whether a transfer is under way.
    pub(super) fn transferring(&self) -> bool {
        self.transfer.is_some()
    }

    /// The seat hung up while its transfer is under way: the caller stays,
    /// on music, for the target; the seat's part is over.
    pub(super) fn transferor_left(&mut self) {
        let Some(t) = &mut self.transfer else { return };
        if t.seat_gone {
            return;
        }
        tracing::info!(
            call = self.id,
            "the seat hung up during its transfer; the caller waits for the target"
        );
        t.seat_gone = true;
        let seat_leg = t.seat_leg;
        let seat_stream = self.stream_of(seat_leg);
        self.out
            .push(Output::Media(MediaCommand::Leave { leg: seat_stream }));
        self.release_seat();
    }

    /// The seat's part in the call is over (it transferred it): free for
    /// the ACD (after its wrap-up, for a queue call).
    fn release_seat(&mut self) {
        let Some(seat) = self.transfer.as_ref().map(|t| t.seat.clone()) else {
            return;
        };
        if !self.via_acd {
            self.out.push(Output::Seat { seat, busy: false });
        } else if !self.acd_done {
            self.acd_done = true;
            self.out.push(Output::Acd(ToAcd::Ended { by_seat: true }));
        }
    }

    /// The target answered: it takes the seat's place with the caller; the
    /// seat hears `200 OK` in its NOTIFY, then our BYE.
    pub(super) fn transfer_answered(
        &mut self,
        leg: LegId,
        msg: &Message,
        target: String,
        now: Instant,
    ) {
        let Some(t) = &mut self.transfer else { return };
        // The target that answered (an alternate, maybe), for the audit.
        t.target = target;
        let seat_leg = t.seat_leg;
        let seat_gone = t.seat_gone;
        tracing::info!(call = self.id, "the transfer's target answered");
        self.notify_seat(200, "OK", now);
        if !seat_gone {
            self.release_seat();
            let s = self.stream_of(seat_leg);
            self.out.push(Output::Media(MediaCommand::Leave { leg: s }));
            if let Some(l) = self.leg(seat_leg) {
                l.hang_up(now);
            }
        }
        self.party = None;
        self.current = Some(leg);
        self.seat_hung_up = false;
        let s = self.remote_from_answer(leg, msg);
        self.out.push(Output::Media(MediaCommand::Watch { leg: s }));
        self.out.push(Output::Record {
            stream: s,
            name: format!("party{}", leg.0),
        });
        self.out
            .push(Output::Media(MediaCommand::StopPlay { leg: 0 }));
        self.out
            .push(Output::Media(MediaCommand::Bridge { legs: vec![0, s] }));
        let t = self.transfer.take().expect("checked");
        let after = now.saturating_duration_since(t.started);
        self.audit(
            t.kind,
            &t.seat,
            &t.number,
            &t.target,
            Result::Completed,
            Some(after),
        );
    }

    /// No target of the transfer answered (`code`: the last one's final
    /// status): the seat's NOTIFY says so, and the caller goes back to the
    /// seat — or, the seat gone, to its queue, or away.
    pub(super) fn transfer_failed(&mut self, code: u16, now: Instant) {
        let last = self.last_party_target.take();
        let Some(t) = &mut self.transfer else { return };
        if let Some(last) = last {
            t.target = last;
        }
        let (seat_leg, seat_gone) = (t.seat_leg, t.seat_gone);
        let status = if code >= 300 { code } else { 480 };
        let reason = reason_phrase(status);
        tracing::info!(
            call = self.id,
            code = status,
            "the transfer's target did not answer"
        );
        self.notify_seat(status, reason, now);
        let t = self.transfer.take().expect("checked");
        let mut result = Result::of_failure(status);
        if !seat_gone {
            // Back to the seat; if it still holds, the caller's music goes
            // on until it resumes.
            let s = self.stream_of(seat_leg);
            let held = self
                .media
                .as_ref()
                .and_then(|m| m.streams.get(s))
                .is_some_and(|st| st.held);
            if !held {
                self.out
                    .push(Output::Media(MediaCommand::StopPlay { leg: 0 }));
            }
            self.out
                .push(Output::Media(MediaCommand::Bridge { legs: vec![0, s] }));
            if status != 487 {
                // Not when the seat cancelled it itself.
                self.tell_seat(PARTY_FAILED);
            }
        } else if self.rejoin_queue() {
            result = Result::ReturnedToQueue;
        } else {
            tracing::info!(call = self.id, "no seat to go back to; the call ends");
            self.caller().hang_up(now);
            self.end(super::Outcome::Completed);
        }
        self.audit(t.kind, &t.seat, &t.number, &t.target, result, None);
    }

    /// The seat keyed `*1` while its transfer rings: the target is
    /// cancelled and the caller is back with the seat.
    pub(super) fn abort_transfer(&mut self, now: Instant) {
        let Some(p) = self.party.take() else { return };
        tracing::info!(call = self.id, "the seat cancels its transfer");
        self.timers.clear(crate::call::timers::Purpose::PartyTurn);
        let s = self.stream_of(p.leg);
        if let Some(l) = self.leg(p.leg) {
            l.cancel(now);
        }
        self.out.push(Output::Media(MediaCommand::Leave { leg: s }));
        self.transfer_failed(487, now);
    }

    /// The caller, whose seat left during a transfer that failed, waits in
    /// the queue it came through again, by its first arrival.
    fn rejoin_queue(&mut self) -> bool {
        let Some(plan) = self.joined.clone() else {
            return false;
        };
        tracing::info!(call = self.id, queue = %plan.queue, "back to the queue, by first arrival");
        self.phase = Phase::Queued;
        self.current = None;
        self.acd_done = false;
        // Answered already: a seat offered now is bridged, not answered.
        self.answered_by_us = true;
        self.via_acd = true;
        self.out.push(Output::Acd(ToAcd::Join {
            queue: plan.queue,
            line: plan.line,
            skill: plan.skill,
            expert_seats: plan.expert_seats,
            arrival: self.started,
        }));
        true
    }

    /// The call ended with a transfer still under way (the caller hung
    /// up): it failed.
    pub(super) fn transfer_abandoned(&mut self) {
        if let Some(t) = self.transfer.take() {
            self.audit(t.kind, &t.seat, &t.number, &t.target, Result::Failed, None);
        }
    }

    pub(super) fn audit(
        &mut self,
        kind: Kind,
        seat: &str,
        number: &str,
        target: &str,
        result: Result,
        answered_after: Option<Duration>,
    ) {
        self.out.push(Output::Audit(Audit {
            kind,
            seat: seat.to_string(),
            number: number.to_string(),
            target: target.to_string(),
            result,
            answered_after,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn refer(headers: &str) -> Message {
        let text = format!(
            "REFER sip:gw@127.0.0.1:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-1\r\n\
             From: <sip:8001@127.0.0.1>;tag=a\r\n\
             To: <sip:12345@127.0.0.1>;tag=b\r\n\
             Call-ID: c1\r\n\
             CSeq: 7 REFER\r\n\
             {headers}\
             Content-Length: 0\r\n\r\n"
        );
        Message::parse(Bytes::from(text)).unwrap()
    }

    fn check(headers: &str) -> std::result::Result<Refer, Refusal> {
        parse_refer(&refer(headers), "127.0.0.1:5060", &["hotline".into()])
    }

    #[test]
    fn a_refer_to_a_number_on_our_host_is_taken() {
        for h in [
            "Refer-To: <sip:8002@127.0.0.1>\r\n",
            "Refer-To: <sip:8002@127.0.0.1:5060>\r\n",
            "Refer-To: \"Seat\" <sip:8002@127.0.0.1;user=phone>\r\n",
            "Refer-To: sip:8002@127.0.0.1\r\n",
            "r: <sip:8002@HOTLINE>\r\n",
            "Refer-To: <sip:8002@127.0.0.1;method=INVITE>\r\n",
        ] {
            let r = check(h).unwrap_or_else(|e| panic!("{h}: {e:?}"));
            assert_eq!(r.number, "8002", "{h}");
            assert!(r.subscribe);
            assert_eq!(r.replaces, None);
        }
        let r = check("Refer-To: <sip:12366@127.0.0.1>\r\nRefer-Sub: false\r\n").unwrap();
        assert_eq!(r.number, "12366");
        assert!(!r.subscribe, "RFC 4488");
        let r = check("Refer-To: <sip:8002@127.0.0.1>\r\nRefer-Sub: true\r\n").unwrap();
        assert!(r.subscribe);
    }

    #[test]
    fn only_replaces_is_kept_of_the_uri_headers() {
        let r = check(
            "Refer-To: <sip:8002@127.0.0.1?Subject=hi&Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2&Priority=urgent>\r\n",
        )
        .unwrap();
        assert_eq!(r.number, "8002");
        assert_eq!(r.replaces.as_deref(), Some("abc@h;to-tag=1;from-tag=2"));
        let r = check("Refer-To: <sip:8002@127.0.0.1?Subject=hi>\r\n").unwrap();
        assert_eq!(r.replaces, None);
        // With Replaces, the user part need be no number (our Contact's).
        let r = check(
            "Refer-To: <sip:hotline@127.0.0.1:5060?Replaces=a%40b%3Bto-tag%3D1%3Bfrom-tag%3D2>\r\n",
        )
        .unwrap();
        assert_eq!(r.replaces.as_deref(), Some("a@b;to-tag=1;from-tag=2"));
    }

    #[test]
    fn what_we_do_not_do_is_refused() {
        for (h, code) in [
            ("", 400),
            (
                "Refer-To: <sip:8002@127.0.0.1>\r\nRefer-To: <sip:8003@127.0.0.1>\r\n",
                400,
            ),
            ("Refer-To: <sip:8002@127.0.0.1\r\n", 400),
            // A foreign host, or ours on another port.
            ("Refer-To: <sip:13800138000@evil.example>\r\n", 403),
            ("Refer-To: <sip:8002@127.0.0.2>\r\n", 403),
            ("Refer-To: <sip:8002@127.0.0.1:5070>\r\n", 403),
            ("Refer-To: <tel:13800138000>\r\n", 403),
            ("Refer-To: <mailto:a@b>\r\n", 403),
            ("Refer-To: <sip:8002@127.0.0.1;method=BYE>\r\n", 403),
            // No number: a name, nothing at all.
            ("Refer-To: <sip:alice@127.0.0.1>\r\n", 403),
            ("Refer-To: <sip:127.0.0.1>\r\n", 403),
        ] {
            assert_eq!(check(h).map_err(|e| e.code), Err(code), "{h}");
        }
    }

    #[test]
    fn our_host_is_our_via_host_or_a_configured_name() {
        let names = ["hotline.example".to_string()];
        assert!(is_our_host("10.0.0.5", None, "10.0.0.5:5060", &names));
        assert!(is_our_host("10.0.0.5", Some(5060), "10.0.0.5:5060", &names));
        assert!(!is_our_host(
            "10.0.0.5",
            Some(5061),
            "10.0.0.5:5060",
            &names
        ));
        assert!(is_our_host(
            "Hotline.Example",
            None,
            "10.0.0.5:5060",
            &names
        ));
        assert!(!is_our_host("10.0.0.6", None, "10.0.0.5:5060", &names));
        assert!(is_our_host("[::1]", Some(5060), "[::1]:5060", &[]));
        assert!(!is_our_host("[::2]", None, "[::1]:5060", &[]));
    }

    #[test]
    fn failures_are_told_as_busy_no_answer_or_failed() {
        assert_eq!(Result::of_failure(486), Result::Busy);
        assert_eq!(Result::of_failure(600), Result::Busy);
        assert_eq!(Result::of_failure(480), Result::NoAnswer);
        assert_eq!(Result::of_failure(408), Result::NoAnswer);
        assert_eq!(Result::of_failure(503), Result::Failed);
        assert_eq!(sipfrag(200, "OK"), "SIP/2.0 200 OK\r\n");
        assert!(is_emergency("110") && is_emergency("122") && !is_emergency("12345"));
    }
}
