//! A conference of three (三方): the seat on a call brings a third party —
//! a sub-centre, another seat, an emergency trunk — into it. Caller, seat
//! and party are mixed, each hearing the other two; the seat may then
//! leave, and caller and party stay connected, relayed as a pair. The
//! party not answering leaves caller and seat as they were; the caller
//! hanging up ends the rest.
//!
//! The seat asks from its own phone with a feature code keyed during the
//! call, `*3` + number + `#` (Asterisk's three-way key, which agents
//! know), in RTP events or SIP INFO; `*1` drops the party again. The call
//! does not resolve the number: it asks its driver ([`Output::ThreeWay`]),
//! which resolves it through the routing table only — table lines that go
//! out over a trunk, seats by id, emergency numbers — and answers with
//! [`Call::add_party`]. A seat can never reach an outside number this way.

use super::transfer::{Kind, Result};
use super::{Call, Output, Phase};
use crate::call::hunt::Hunt;
use crate::call::leg::{LegEvent, LegId, Target};
use crate::call::queue::ToAcd;
use crate::call::registrar::Registrar;
use crate::call::timers::Purpose;
use crate::media::dtmf::Digit;
use crate::media::prompt::Item;
use crate::media::session::Command as MediaCommand;
use std::time::{Duration, Instant};

/// What the seat keyed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Feature {
    /// `*3` + number + `#`: ring the number and join it to the call.
    ThreeWay(String),
    /// `*1`: drop the party being brought in, ringing or joined.
    Abort,
    /// `#1` + number + `#`: a blind transfer (the caller goes to the
    /// number; the seat is free once it answers).
    Blind(String),
    /// `*2` + number + `#`: consult the number (an attended transfer).
    Consult(String),
    /// `*4`: swap between the caller and the consulted party.
    Swap,
}

/// A key more than this after the one before starts over: a feature code
/// is keyed in one go.
pub const KEY_GAP: Duration = Duration::from_secs(5);

/// The longest number a three-way may name.
const MAX_NUMBER: usize = 32;

/// The prompt the seat hears when the party could not be brought in.
pub const PARTY_FAILED: &str = "three_way_failed";

/// A three-way's kind for the audit: an emergency number's is the
/// emergency hand-off.
fn three_way_kind(number: &str) -> Kind {
    if super::transfer::is_emergency(number) {
        Kind::Emergency
    } else {
        Kind::ThreeWay
    }
}

/// Reads feature codes out of the keys a seat presses during a call.
/// Anything that is no feature code is ignored (the caller's IVR may need
/// the seat's keys; they are relayed to it as before).
#[derive(Debug, Default)]
pub struct Keys {
    keyed: String,
    last: Option<Instant>,
}

impl Keys {
    /// One key at `now`: the feature it completes, if any.
    pub fn push(&mut self, key: char, now: Instant) -> Option<Feature> {
        if self
            .last
            .is_some_and(|t| now.saturating_duration_since(t) > KEY_GAP)
        {
            self.keyed.clear();
        }
        self.last = Some(now);
        if self.keyed.is_empty() {
            if key == '*' || key == '#' {
                self.keyed.push(key);
            }
            return None;
        }
        self.keyed.push(key);
        let with_number =
            |k: &str| k.starts_with("*3") || k.starts_with("#1") || k.starts_with("*2");
        match self.keyed.as_str() {
            "*1" => {
                self.keyed.clear();
                Some(Feature::Abort)
            }
            "*4" => {
                self.keyed.clear();
                Some(Feature::Swap)
            }
            // `*3#` while consulting: join all three (no number).
            "*3#" => {
                self.keyed.clear();
                Some(Feature::ThreeWay(String::new()))
            }
            "*3" | "#1" | "*2" => None,
            k if with_number(k) && key == '#' => {
                let number = k[2..k.len() - 1].to_string();
                let code = k[..2].to_string();
                self.keyed.clear();
                match code.as_str() {
                    _ if number.is_empty() => None,
                    "*3" => Some(Feature::ThreeWay(number)),
                    "*2" => Some(Feature::Consult(number)),
                    _ => Some(Feature::Blind(number)),
                }
            }
            k if with_number(k) && key.is_ascii_digit() && k.len() <= 2 + MAX_NUMBER => None,
            _ => {
                // Not a code we know: start over, a star or hash starting
                // anew.
                self.keyed.clear();
                if key == '*' || key == '#' {
                    self.keyed.push(key);
                }
                None
            }
        }
    }
}

/// The party being brought in: the leg ringing or joined, the targets
/// left to try (its turn is the call's [`Purpose::PartyTurn`] timer).
pub struct Party {
    pub leg: LegId,
    hunt: Hunt,
    pub(super) number: String,
    pub(super) mode: PartyMode,
    /// When it was asked for, and the target it rings (for the audit).
    pub(super) started: Instant,
    pub(super) target: String,
}

/// What the party is rung for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartyMode {
    /// Mixed with caller and seat when it answers (三方).
    ThreeWay,
    /// Takes the seat's place with the caller (a blind transfer).
    Transfer,
    /// Talks to the seat's consultation leg (an attended transfer).
    Consult,
}

impl Call {
    /// Whether `leg` is the party being brought in.
    pub(super) fn is_party(&self, leg: LegId) -> bool {
        self.party.as_ref().is_some_and(|p| p.leg == leg)
    }

    /// The media stream of the seat the call is joined to, if it is a seat
    /// (a trunk's keys are no feature codes).
    fn seat_stream(&self) -> Option<usize> {
        let current = self.current?;
        let on_call = matches!(self.phase, Phase::Connected | Phase::Conference);
        (on_call && self.current_leg()?.seat().is_some()).then(|| self.stream_of(current))
    }

    /// A key pressed on media stream `stream` of a bridged call: the
    /// seat's keys may be a feature code.
    pub(super) fn on_call_key(&mut self, stream: usize, digit: Digit, now: Instant) {
        if self.seat_stream() != Some(stream) {
            return;
        }
        match self.keys.push(digit.as_char(), now) {
            Some(Feature::ThreeWay(_)) if self.consulting_by_keys() => {
                self.consult_to_three_way(now)
            }
            Some(Feature::ThreeWay(number)) if number.is_empty() => self.tell_seat(PARTY_FAILED),
            Some(Feature::ThreeWay(number)) => {
                if self.phase == Phase::Connected
                    && self.party.is_none()
                    && self.transfer.is_none()
                    && self.media.is_some()
                {
                    tracing::info!(call = self.id, %number, "the seat asks for a three-way call");
                    self.out.push(Output::ThreeWay { number });
                } else {
                    tracing::info!(
                        call = self.id,
                        %number,
                        "three-way refused: the call has a third party already, or no anchored media"
                    );
                    self.tell_seat(PARTY_FAILED);
                }
            }
            Some(Feature::Abort) if self.transfer.is_some() => self.abort_transfer(now),
            Some(Feature::Abort) if self.consulting_by_keys() => self.end_consult(now),
            Some(Feature::Abort) => self.drop_party(now),
            Some(Feature::Blind(number)) => self.blind_by_keys(number, now),
            Some(Feature::Consult(number)) => self.consult_by_keys(number, now),
            Some(Feature::Swap) => self.swap_consult(),
            None => {}
        }
    }

    /// Brings a third party into the bridged call (the answer to
    /// [`Output::ThreeWay`], or a command of the operator's API): rings
    /// `targets` in turn, each for the seat ring time; the first to answer
    /// is mixed with caller and seat. With no target, or a call that is not
    /// bridged with its media anchored, or a party already there, nothing
    /// is placed and the seat hears that it failed.
    pub fn add_party(
        &mut self,
        number: &str,
        targets: Vec<Target>,
        registrar: &Registrar,
        now: Instant,
    ) -> Vec<Output> {
        let refused = if self.phase != Phase::Connected
            || self.party.is_some()
            || self.transfer.is_some()
            || self.media.is_none()
        {
            tracing::info!(call = self.id, number, "three-way refused in this state");
            true
        } else if targets.is_empty() {
            tracing::info!(
                call = self.id,
                number,
                "three-way refused: the table routes the number to no trunk or seat"
            );
            true
        } else {
            false
        };
        if refused {
            self.tell_seat(PARTY_FAILED);
            let seat = self.seat_name();
            self.audit(
                three_way_kind(number),
                &seat,
                number,
                "none",
                Result::Refused,
                None,
            );
        } else {
            let hunt = Hunt::new(
                targets,
                self.settings.seat_ring,
                self.settings.max_ring,
                false,
            );
            self.ring_party(
                hunt,
                number.to_string(),
                PartyMode::ThreeWay,
                registrar,
                now,
            );
        }
        self.finish_input(registrar, now)
    }

    /// Rings the party's next target, on a media stream of its own; none
    /// left (or no stream free): the seat hears it failed (a transfer's
    /// failure goes its own way).
    pub(super) fn ring_party(
        &mut self,
        hunt: Hunt,
        number: String,
        mode: PartyMode,
        registrar: &Registrar,
        now: Instant,
    ) {
        // A new party: no earlier one's target in its audit.
        self.last_party_target = None;
        self.ring_party_after(hunt, number, mode, 480, now, registrar, now);
    }

    #[allow(clippy::too_many_arguments)]
    fn ring_party_after(
        &mut self,
        mut hunt: Hunt,
        number: String,
        mode: PartyMode,
        last_code: u16,
        started: Instant,
        registrar: &Registrar,
        now: Instant,
    ) {
        let Some(next) = hunt.next(registrar, self.id, now) else {
            tracing::info!(call = self.id, %number, "no target of the third party answered");
            self.party_exhausted(mode, &number, last_code, started, now);
            return;
        };
        let id = self.new_leg_id();
        let Some(stream) = self.open_stream(id) else {
            tracing::warn!(call = self.id, "no media stream free for a third party");
            if let Target::Seat { id } = &next.target {
                registrar.release(id, self.id);
            }
            self.party_exhausted(mode, &number, 503, started, now);
            return;
        };
        let target = match &next.target {
            Target::Seat { .. } => "seat".to_string(),
            Target::Trunk { id, .. } => id.clone(),
        };
        let ring = next.ring;
        tracing::info!(call = self.id, target = %next.target, "ringing the third party");
        if let Target::Seat { id: seat } = &next.target {
            // Not offered queue calls while it rings or talks here.
            self.marked.push((id, seat.clone()));
            self.out.push(Output::Seat {
                seat: seat.clone(),
                busy: true,
            });
        }
        if mode == PartyMode::Transfer {
            let by = self.transfer_by();
            self.referred_by = by;
        }
        self.place_on(id, stream, next, now);
        self.referred_by = None;
        self.timers.set(Purpose::PartyTurn, now + ring);
        self.party = Some(Box::new(Party {
            leg: id,
            hunt,
            number,
            mode,
            started,
            target,
        }));
    }

    /// No target of the party is left: a three-way's seat hears it, a
    /// transfer goes back (see [`Call::transfer_failed`]).
    fn party_exhausted(
        &mut self,
        mode: PartyMode,
        number: &str,
        last_code: u16,
        _started: Instant,
        now: Instant,
    ) {
        match mode {
            PartyMode::ThreeWay => {
                self.tell_seat(PARTY_FAILED);
                let seat = self.seat_name();
                let target = self
                    .last_party_target
                    .take()
                    .unwrap_or_else(|| "none".into());
                self.audit(
                    three_way_kind(number),
                    &seat,
                    number,
                    &target,
                    Result::of_failure(last_code),
                    None,
                );
            }
            PartyMode::Transfer => self.transfer_failed(last_code, now),
            PartyMode::Consult => self.consult_failed(last_code, now),
        }
    }

    /// The seat's id, for the audit (`-` for none).
    fn seat_name(&self) -> String {
        self.current_leg()
            .and_then(|l| l.seat())
            .unwrap_or("-")
            .to_string()
    }

    /// The ringing party's turn ran out: the next target, if any.
    pub(super) fn on_party_timer(&mut self, registrar: &Registrar, now: Instant) {
        tracing::info!(call = self.id, "the third party did not answer in time");
        self.timers.clear(Purpose::PartyTurn);
        self.next_party(408, registrar, now);
    }

    /// Gives up on the party's current target (its final status `code`)
    /// and tries the next.
    fn next_party(&mut self, code: u16, registrar: &Registrar, now: Instant) {
        let Some(p) = self.party.take() else { return };
        if let Some(l) = self.leg(p.leg) {
            l.cancel(now);
        }
        self.last_party_target = Some(p.target);
        if self.phase == Phase::Connected {
            self.ring_party_after(p.hunt, p.number, p.mode, code, p.started, registrar, now);
        }
    }

    /// What happens on the party's leg; other legs' events come back for
    /// the usual handling.
    pub(super) fn on_party_event(
        &mut self,
        leg: LegId,
        ev: LegEvent,
        registrar: &Registrar,
        now: Instant,
    ) -> Option<LegEvent> {
        if !self.is_party(leg) {
            return Some(ev);
        }
        match ev {
            LegEvent::Answered { msg } => {
                if self.phase != Phase::Connected {
                    self.party = None;
                    if let Some(l) = self.leg(leg) {
                        l.hang_up(now);
                    }
                    return None;
                }
                self.timers.clear(Purpose::PartyTurn);
                let (mode, number, started, target) = {
                    let p = self.party.as_ref().expect("is_party");
                    (p.mode, p.number.clone(), p.started, p.target.clone())
                };
                if mode == PartyMode::Transfer {
                    self.transfer_answered(leg, &msg, target, now);
                    return None;
                }
                if mode == PartyMode::Consult {
                    self.consult_answered(leg, &msg, target, now);
                    return None;
                }
                let seat = self.seat_name();
                self.audit(
                    three_way_kind(&number),
                    &seat,
                    &number,
                    &target,
                    Result::Completed,
                    Some(now.saturating_duration_since(started)),
                );
                tracing::info!(call = self.id, "third party answered: three-way call");
                self.phase = Phase::Conference;
                let s = self.remote_from_answer(leg, &msg);
                self.out.push(Output::Media(MediaCommand::Watch { leg: s }));
                self.out.push(Output::Record {
                    stream: s,
                    name: format!("party{}", leg.0),
                });
                let legs = self.bridge_streams();
                // Whatever played to a member (music, a prompt) gives way
                // to the other two.
                for &leg in &legs {
                    self.out.push(Output::Media(MediaCommand::StopPlay { leg }));
                }
                self.out.push(Output::Media(MediaCommand::Bridge { legs }));
                None
            }
            LegEvent::Failed { code, reason } => {
                tracing::info!(call = self.id, code, %reason, "the third party refused");
                self.next_party(code, registrar, now);
                None
            }
            LegEvent::Silent => {
                tracing::info!(call = self.id, "no response from the third party");
                self.next_party(408, registrar, now);
                None
            }
            LegEvent::HungUp
                if self
                    .party
                    .as_ref()
                    .is_some_and(|p| p.mode == PartyMode::Consult) =>
            {
                tracing::info!(call = self.id, "the consulted target hung up");
                self.end_consult(now);
                None
            }
            LegEvent::HungUp => {
                if self.phase == Phase::Conference {
                    tracing::info!(call = self.id, "the third party left the three-way call");
                    let s = self.stream_of(leg);
                    self.party = None;
                    self.phase = Phase::Connected;
                    self.out.push(Output::Media(MediaCommand::Leave { leg: s }));
                    self.out.push(Output::Media(MediaCommand::Bridge {
                        legs: self.bridge_streams(),
                    }));
                }
                None
            }
            LegEvent::Progress { code, .. } => {
                if self
                    .party
                    .as_ref()
                    .is_some_and(|p| p.mode == PartyMode::Consult)
                {
                    self.consult_progress(code, now);
                }
                None
            }
            ev => Some(ev),
        }
    }

    /// The seat hung up while its three-way party rings: the caller is
    /// handed to the party ([`Call::hand_over`]). False when no party
    /// rings for a three-way.
    pub(super) fn seat_left_ringing_party(&mut self, now: Instant) -> bool {
        if self.hand_over_consult(now) {
            return true;
        }
        // A consultation by keys whose target still rings is handed over
        // the same way (an attended transfer made before the answer).
        let keyed = self.consulting_by_keys();
        let Some(p) = self
            .party
            .as_mut()
            .filter(|p| p.mode == PartyMode::ThreeWay || (keyed && p.mode == PartyMode::Consult))
        else {
            return false;
        };
        let kind = if p.mode == PartyMode::Consult && !super::transfer::is_emergency(&p.number) {
            Kind::Attended
        } else {
            three_way_kind(&p.number)
        };
        p.mode = PartyMode::Transfer;
        let (number, started, target) = (p.number.clone(), p.started, p.target.clone());
        self.consult = None;
        self.hand_over(kind, number, started, target);
        true
    }

    /// The seat hung up a three-way call: caller and party go on, paired;
    /// the seat's part is over (its wrap-up starts).
    pub(super) fn seat_left(&mut self) {
        let Some(p) = self.party.take() else { return };
        let seat = self.current.map(|c| self.stream_of(c));
        tracing::info!(call = self.id, "the seat left the three-way call");
        if !self.via_acd
            && let Some(id) = self
                .current_leg()
                .and_then(|l| l.seat())
                .map(str::to_string)
        {
            // A direct call's seat is free once it has left, not when the
            // call it left ends.
            self.out.push(Output::Seat {
                seat: id,
                busy: false,
            });
        }
        self.current = Some(p.leg);
        self.phase = Phase::Connected;
        if let Some(s) = seat {
            self.out.push(Output::Media(MediaCommand::Leave { leg: s }));
        }
        self.out.push(Output::Media(MediaCommand::Bridge {
            legs: self.bridge_streams(),
        }));
        if self.via_acd && !self.acd_done {
            self.acd_done = true;
            self.out.push(Output::Acd(ToAcd::Ended { by_seat: true }));
        }
    }

    /// Drops the party (the seat's `*1`): a ringing one is cancelled, a
    /// joined one hung up, and caller and seat are as before.
    pub(super) fn drop_party(&mut self, now: Instant) {
        let Some(p) = self.party.take() else { return };
        tracing::info!(call = self.id, "the third party is dropped");
        let s = self.stream_of(p.leg);
        if let Some(l) = self.leg(p.leg) {
            l.cancel(now);
            l.hang_up(now);
        }
        if self.phase == Phase::Conference {
            self.phase = Phase::Connected;
            self.out.push(Output::Media(MediaCommand::Leave { leg: s }));
            self.out.push(Output::Media(MediaCommand::Bridge {
                legs: self.bridge_streams(),
            }));
        }
    }

    /// The streams that hear each other now: the caller's, the joined
    /// leg's and, in a three-way call, the party's.
    pub(super) fn bridge_streams(&self) -> Vec<usize> {
        let mut legs = vec![0];
        legs.extend(self.current.map(|c| self.stream_of(c)));
        if self.phase == Phase::Conference
            && let Some(p) = &self.party
        {
            legs.push(self.stream_of(p.leg));
        }
        legs
    }

    /// A short prompt to the seat (the three-way failed); it hears the
    /// caller again when it ends.
    pub(super) fn tell_seat(&mut self, prompt: &str) {
        if let Some(s) = self.seat_stream() {
            self.out.push(Output::Prompt {
                leg: s,
                items: vec![Item::prompt(prompt)],
                hold: false,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(keys: &str, gap: Duration) -> Vec<Feature> {
        let t0 = Instant::now();
        let mut k = Keys::default();
        keys.chars()
            .enumerate()
            .filter_map(|(i, c)| k.push(c, t0 + gap * i as u32))
            .collect()
    }

    #[test]
    fn star_three_number_hash_asks_for_a_three_way_call() {
        let ms = Duration::from_millis(300);
        assert_eq!(keyed("*312366#", ms), [Feature::ThreeWay("12366".into())]);
        assert_eq!(keyed("*3110#", ms), [Feature::ThreeWay("110".into())]);
        // Keys before the code, and a star keyed twice, do not matter.
        assert_eq!(keyed("12**38001#", ms), [Feature::ThreeWay("8001".into())]);
        // Two codes in a row.
        assert_eq!(
            keyed("*38001#*1", ms),
            [Feature::ThreeWay("8001".into()), Feature::Abort]
        );
    }

    #[test]
    fn hash_one_number_hash_asks_for_a_blind_transfer() {
        let ms = Duration::from_millis(300);
        assert_eq!(keyed("#18002#", ms), [Feature::Blind("8002".into())]);
        assert_eq!(keyed("#112366#", ms), [Feature::Blind("12366".into())]);
        // A stray # first, then the code; a code after a three-way.
        assert_eq!(keyed("##18002#", ms), [Feature::Blind("8002".into())]);
        assert_eq!(
            keyed("*38001##18002#", ms),
            [
                Feature::ThreeWay("8001".into()),
                Feature::Blind("8002".into())
            ]
        );
        for keys in ["#1#", "#2", "#18002*", "#1a#"] {
            assert_eq!(keyed(keys, ms), [], "{keys}");
        }
    }

    #[test]
    fn what_is_no_feature_code_completes_nothing() {
        let ms = Duration::from_millis(300);
        for keys in [
            "", "3", "#", "*9", "*31*", "*3A#", "123#", "*2", "*2#", "*5",
        ] {
            assert_eq!(keyed(keys, ms), [], "{keys}");
        }
        // A number too long for any table.
        let long = format!("*3{}#", "1".repeat(MAX_NUMBER + 1));
        assert_eq!(keyed(&long, ms), []);
        let longest = format!("*3{}#", "1".repeat(MAX_NUMBER));
        assert_eq!(keyed(&longest, ms).len(), 1);
    }

    #[test]
    fn star_two_consults_star_four_swaps_and_star_three_hash_joins() {
        let ms = Duration::from_millis(300);
        assert_eq!(keyed("*28002#", ms), [Feature::Consult("8002".into())]);
        assert_eq!(
            keyed("*212366#*4*4*3#", ms),
            [
                Feature::Consult("12366".into()),
                Feature::Swap,
                Feature::Swap,
                Feature::ThreeWay(String::new())
            ]
        );
    }

    #[test]
    fn star_one_aborts() {
        assert_eq!(keyed("*1", Duration::from_millis(300)), [Feature::Abort]);
    }

    #[test]
    fn a_pause_longer_than_the_gap_starts_over() {
        let t0 = Instant::now();
        let mut k = Keys::default();
        assert_eq!(k.push('*', t0), None);
        assert_eq!(
            k.push('3', t0 + KEY_GAP),
            None,
            "at the gap: still one code"
        );
        assert_eq!(
            k.push('1', t0 + KEY_GAP * 2 + Duration::from_millis(1)),
            None
        );
        // The '1' began anew (and is no start); so the '#' completes nothing.
        assert_eq!(
            k.push('#', t0 + KEY_GAP * 2 + Duration::from_millis(2)),
            None
        );
        let t1 = t0 + KEY_GAP * 4;
        for (i, c) in "*38002#".chars().enumerate() {
            let got = k.push(c, t1 + Duration::from_millis(i as u64));
            if c == '#' {
                assert_eq!(got, Some(Feature::ThreeWay("8002".into())));
            } else {
                assert_eq!(got, None);
            }
        }
    }
}
