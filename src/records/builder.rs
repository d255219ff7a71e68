//! A call's record put together while the call runs, from what its task
//! sees: each change of the call's state ([`crate::ops::CallState`]), its
//! hand-offs and recordings, and its end. Pure: times are inputs.

use super::{CallRecord, Handoff};
use crate::ops::{CallState, CallView};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
pub struct Builder {
    view: CallView,
    queued_at: Option<DateTime<Utc>>,
    connected_at: Option<DateTime<Utc>>,
    queue: Option<String>,
    offered: Vec<String>,
    answered_by: Option<String>,
    handoffs: Vec<Handoff>,
    recordings: Vec<String>,
}

fn secs(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds().max(0) as f64 / 1000.0
}

impl Builder {
    pub fn new(view: CallView) -> Builder {
        Builder {
            view,
            queued_at: None,
            connected_at: None,
            queue: None,
            offered: Vec::new(),
            answered_by: None,
            handoffs: Vec::new(),
            recordings: Vec::new(),
        }
    }

    /// The call as it is at `at`.
    pub fn observe(&mut self, s: &CallState, at: DateTime<Utc>) {
        if s.state == "queued" && self.queued_at.is_none() {
            self.queued_at = Some(at);
        }
        if let Some(q) = &s.queue {
            self.queue = Some(q.clone());
        }
        for leg in s.legs.iter().filter(|l| l.party == "seat") {
            if let Some(seat) = &leg.to
                && !self.offered.contains(seat)
            {
                self.offered.push(seat.clone());
            }
        }
        let put_through = matches!(s.state, "connected" | "conference");
        if put_through && self.connected_at.is_none() {
            // Seen as it happens: the call's task looks after every step.
            self.connected_at = Some(at);
            self.answered_by = s.seat.clone().or_else(|| {
                s.legs
                    .iter()
                    .find(|l| l.party == "trunk" && l.state == "answered")
                    .and_then(|l| l.to.clone())
            });
        }
    }

    pub fn handoff(&mut self, h: Handoff) {
        self.handoffs.push(h);
    }

    pub fn recording(&mut self, path: String) {
        if !self.recordings.contains(&path) {
            self.recordings.push(path);
        }
    }

    /// The record of the call that ended at `at` with `result`, told its
    /// `ticket`, ended on the wire as `end_reason`.
    pub fn finish(
        self,
        at: DateTime<Utc>,
        result: &str,
        end_reason: String,
        ticket: Option<String>,
    ) -> CallRecord {
        let v = self.view;
        let wait = self
            .queued_at
            .map(|q| secs(q, self.connected_at.unwrap_or(at)));
        CallRecord {
            call_id: v.call_id,
            call: v.id,
            started: v.started,
            ended: at,
            caller: v.caller,
            dialed: v.dialed,
            line: v.line,
            kind: v.kind.to_string(),
            origin: v.origin.to_string(),
            unit: v.unit,
            queue: self.queue,
            wait,
            seats_offered: self.offered,
            answered_by: self.answered_by,
            talk: self.connected_at.map(|c| secs(c, at)),
            handoffs: self.handoffs,
            recordings: self.recordings,
            result: result.to_string(),
            end_reason,
            ticket,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::LegView;
    use chrono::TimeZone;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_796_000_000 + s, 0).unwrap()
    }

    fn leg(leg: u32, party: &'static str, to: Option<&str>, state: &'static str) -> LegView {
        LegView {
            leg,
            party,
            to: to.map(str::to_string),
            state,
            peer: "127.0.0.1:5060".into(),
        }
    }

    fn state(state: &'static str, seat: Option<&str>, legs: Vec<LegView>) -> CallState {
        CallState {
            state,
            queue: Some("general".into()),
            seat: seat.map(str::to_string),
            handoff: None,
            legs,
            answered: None,
        }
    }

    fn view() -> CallView {
        CallView {
            id: 7,
            call_id: "a@carrier".into(),
            caller: Some("13907350000".into()),
            dialed: "12345".into(),
            line: "12345".into(),
            kind: "queue",
            origin: "trunk",
            unit: None,
            started: at(0),
            now: state("setup", None, vec![]),
        }
    }

    #[test]
    fn a_queued_call_answered_by_the_second_seat_offered() {
        let mut b = Builder::new(view());
        let caller = leg(0, "caller", None, "answered");
        b.observe(&state("queued", None, vec![caller.clone()]), at(1));
        b.observe(
            &state(
                "queued",
                None,
                vec![caller.clone(), leg(1, "seat", Some("8001"), "ringing")],
            ),
            at(5),
        );
        b.observe(
            &state(
                "queued",
                None,
                vec![
                    caller.clone(),
                    leg(1, "seat", Some("8001"), "ended"),
                    leg(2, "seat", Some("8002"), "ringing"),
                ],
            ),
            at(8),
        );
        b.observe(
            &state(
                "connected",
                Some("8002"),
                vec![caller, leg(2, "seat", Some("8002"), "answered")],
            ),
            at(10),
        );
        b.handoff(Handoff {
            kind: "blind".into(),
            seat: "8002".into(),
            number: "12366".into(),
            target: "city_sub_centre".into(),
            result: "completed".into(),
        });
        b.recording("rec/a.wav".into());
        b.recording("rec/a.wav".into());
        let r = b.finish(at(70), "completed", "caller_bye".into(), None);
        assert_eq!(r.seats_offered, ["8001", "8002"]);
        assert_eq!(r.answered_by.as_deref(), Some("8002"));
        assert_eq!(r.wait, Some(9.0));
        assert_eq!(r.talk, Some(60.0));
        assert_eq!(r.queue.as_deref(), Some("general"));
        assert_eq!(r.recordings, ["rec/a.wav"]);
        assert_eq!(r.handoffs.len(), 1);
        assert_eq!((r.started, r.ended), (at(0), at(70)));
    }

    #[test]
    fn a_caller_who_gives_up_waiting_has_a_wait_and_no_talk() {
        let mut b = Builder::new(view());
        b.observe(
            &state("queued", None, vec![leg(0, "caller", None, "answered")]),
            at(2),
        );
        let r = b.finish(at(32), "abandoned", "caller_bye".into(), None);
        assert_eq!((r.wait, r.talk, r.answered_by), (Some(30.0), None, None));
    }

    #[test]
    fn a_sub_centre_call_is_answered_by_its_trunk() {
        let mut v = view();
        v.kind = "sub_centre";
        let mut b = Builder::new(v);
        let mut s = state(
            "connected",
            None,
            vec![leg(1, "trunk", Some("city_sub_centre"), "answered")],
        );
        s.queue = None;
        b.observe(&s, at(3));
        let r = b.finish(at(13), "completed", "far_bye".into(), None);
        assert_eq!(
            (r.answered_by.as_deref(), r.wait, r.talk),
            (Some("city_sub_centre"), None, Some(10.0))
        );
    }
}
