//! What a call shows the control API of itself ([`crate::ops::CallState`]):
//! its phase, queue, seat, legs and any hand-off under way. Read after
//! every step of the call's task; the task publishes it only when it
//! changed.

use super::conference::PartyMode;
use super::{Call, Phase};
use crate::call::leg::{LegState, Target};
use crate::ops::{CallState, LegView};
use chrono::{DateTime, Utc};
use std::time::Instant;

impl Call {
    /// How the call ended on the wire, for its record: the final status
    /// the caller was answered, or which side hung up (`caller_bye`,
    /// `far_bye`: the seat or trunk).
    pub fn end_reason(&self) -> String {
        match self.final_status {
            Some(code) => code.to_string(),
            None if self.seat_hung_up => "far_bye".into(),
            None => "caller_bye".into(),
        }
    }

    /// The call now; `wall` is the wall clock at `now` (to date the answer).
    pub fn state_view(&self, now: Instant, wall: DateTime<Utc>) -> CallState {
        let state = match self.phase {
            Phase::Setup => "setup",
            Phase::Queued => "queued",
            Phase::Choosing => "choosing",
            Phase::Connected => "connected",
            Phase::Conference => "conference",
            Phase::Ended => "ended",
        };
        let handoff = if self.transfer.is_some() {
            Some("transfer")
        } else if self.consult.is_some() {
            Some("consult")
        } else {
            self.party.as_ref().map(|p| match p.mode {
                PartyMode::ThreeWay => "three_way",
                PartyMode::Transfer => "transfer",
                PartyMode::Consult => "consult",
            })
        };
        let legs = self
            .legs
            .iter()
            .map(|l| {
                let (party, to) = match l.target() {
                    None => ("caller", None),
                    Some(Target::Seat { id }) => ("seat", Some(id.clone())),
                    Some(Target::Trunk { id, .. }) => ("trunk", Some(id.clone())),
                };
                LegView {
                    leg: l.id.0,
                    party,
                    to,
                    state: match l.state() {
                        LegState::Setup { .. } => "ringing",
                        LegState::Answered => "answered",
                        LegState::Ended => "ended",
                    },
                    peer: l.peer.addr.to_string(),
                }
            })
            .collect();
        let answered = self.answered_at.map(|t| {
            wall - chrono::Duration::from_std(now.saturating_duration_since(t)).unwrap_or_default()
        });
        CallState {
            state,
            queue: self.joined.as_ref().map(|q| q.queue.clone()),
            seat: self.seat().map(str::to_string),
            handoff,
            legs,
            answered,
        }
    }
}
