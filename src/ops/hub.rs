//! The daemon's live picture for the control API: the event stream and
//! the calls in progress.
//!
//! - **Events** go out on a broadcast channel: a send never waits, and a
//!   reader that falls [`BACKLOG`] events behind is dropped (its stream
//!   ends; it reconnects and reads the state again). Nothing is even
//!   serialised while nobody listens.
//! - **Calls** are listed by their tasks: each call's task puts its view
//!   here when it changes and takes it away when the call ends; the API
//!   reads the list and reaches a call through its handle.

use crate::call::calls::{CallHandle, Event as CallEvent};
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Events a stream may lag behind before it is dropped.
pub const BACKLOG: usize = 1024;

/// One leg of a live call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LegView {
    pub leg: u32,
    /// `caller`, `seat` or `trunk`.
    pub party: &'static str,
    /// The seat's id or the trunk's.
    pub to: Option<String>,
    /// `ringing`, `answered` or `ended`.
    pub state: &'static str,
    pub peer: String,
}

/// What a call's task knows of itself, as it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallState {
    /// `setup`, `queued`, `choosing`, `connected`, `conference`, `ended`.
    pub state: &'static str,
    pub queue: Option<String>,
    pub seat: Option<String>,
    /// A hand-off under way: `transfer`, `consult` or `three_way`.
    pub handoff: Option<&'static str>,
    pub legs: Vec<LegView>,
    pub answered: Option<DateTime<Utc>>,
}

/// A live call as `GET /api/calls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallView {
    pub id: u64,
    pub call_id: String,
    pub caller: Option<String>,
    pub dialed: String,
    pub line: String,
    /// The routing kind: `queue`, `direct`, `sub_centre`, `emergency`, …
    pub kind: &'static str,
    /// `trunk`: a call that came in (a citizen's); `seat`: one a seat
    /// placed (to a seat, a sub-centre, a feature code).
    pub origin: &'static str,
    pub unit: Option<String>,
    pub started: DateTime<Utc>,
    #[serde(flatten)]
    pub now: CallState,
}

struct LiveCall {
    view: CallView,
    handle: CallHandle,
}

/// See the module documentation.
pub struct Hub {
    events: broadcast::Sender<Arc<str>>,
    calls: DashMap<u64, LiveCall>,
    /// The ticket summary as last read, and when: wallboards ask for it
    /// on every event, and the store is read at most every
    /// [`SUMMARY_FOR`].
    pub summary: std::sync::Mutex<Option<(std::time::Instant, Value)>>,
}

/// How long a ticket summary is served before the store is read again.
pub const SUMMARY_FOR: std::time::Duration = std::time::Duration::from_secs(5);

impl Default for Hub {
    fn default() -> Self {
        Hub {
            events: broadcast::channel(BACKLOG).0,
            calls: DashMap::new(),
            summary: std::sync::Mutex::new(None),
        }
    }
}

impl Hub {
    /// Whether any stream is open (events cost nothing otherwise).
    pub fn watched(&self) -> bool {
        self.events.receiver_count() > 0
    }

    /// Sends `{"type": kind, "time": …, ...fields}` to every stream.
    pub fn publish(&self, kind: &str, fields: Value) {
        self.publish_at(kind, fields, Utc::now());
    }

    pub fn publish_at(&self, kind: &str, fields: Value, at: DateTime<Utc>) {
        if !self.watched() {
            return;
        }
        let mut obj = match fields {
            Value::Object(m) => m,
            other => {
                let mut m = serde_json::Map::new();
                m.insert("value".into(), other);
                m
            }
        };
        obj.insert("type".into(), Value::String(kind.to_string()));
        obj.insert(
            "time".into(),
            Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        let _ = self
            .events
            .send(Arc::from(Value::Object(obj).to_string().as_str()));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.events.subscribe()
    }

    /// A call's task lists its call (and tells the streams).
    pub fn call_started(&self, view: CallView, handle: CallHandle) {
        // The event is built only for a stream to read.
        if self.watched() {
            self.publish("call", call_event("started", &view));
        }
        self.calls.insert(view.id, LiveCall { view, handle });
    }

    /// A call's task updates what it is doing now.
    pub fn call_changed(&self, id: u64, now: CallState) {
        if let Some(mut c) = self.calls.get_mut(&id) {
            c.view.now = now;
            if self.watched() {
                self.publish("call", call_event("changed", &c.view));
            }
        }
    }

    /// The call is over: off the list, with how it ended.
    pub fn call_ended(&self, id: u64, outcome: &str) {
        // Off the list whether or not a stream reads the event.
        if let Some((_, mut c)) = self.calls.remove(&id)
            && self.watched()
        {
            c.view.now.state = "ended";
            let mut ev = call_event("ended", &c.view);
            ev["outcome"] = Value::String(outcome.to_string());
            self.publish("call", ev);
        }
    }

    pub fn calls(&self) -> Vec<CallView> {
        let mut v: Vec<CallView> = self.calls.iter().map(|c| c.view.clone()).collect();
        v.sort_by_key(|c| c.id);
        v
    }

    pub fn call(&self, id: u64) -> Option<CallView> {
        self.calls.get(&id).map(|c| c.view.clone())
    }

    /// Tells call `id` something; false when there is no such call (or
    /// its task has just ended).
    pub fn tell(&self, id: u64, event: CallEvent) -> bool {
        match self.calls.get(&id) {
            Some(c) => c.handle.notify(event),
            None => false,
        }
    }
}

impl Hub {
    /// Gives call `id` a supervisor's command; None when there is no such
    /// call, else whether it applied.
    pub async fn command(
        &self,
        id: u64,
        cmd: crate::call::call::command::Command,
    ) -> Option<Result<(), String>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if !self.tell(id, CallEvent::Command(Box::new((cmd, reply)))) {
            return None;
        }
        answer.await.ok()
    }
}

fn call_event(event: &str, view: &CallView) -> Value {
    let mut v = serde_json::to_value(view).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("call".into(), m.get("id").cloned().unwrap_or(Value::Null));
        m.insert("event".into(), Value::String(event.to_string()));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_that_falls_behind_is_dropped_and_senders_never_wait() {
        let hub = Hub::default();
        // Nobody listens: nothing is built or kept.
        hub.publish("seat", serde_json::json!({"seat": "8001"}));
        let mut slow = hub.subscribe();
        let mut fast = hub.subscribe();
        for i in 0..(BACKLOG + 10) {
            hub.publish("seat", serde_json::json!({"n": i}));
            let got = fast.try_recv().unwrap();
            let v: Value = serde_json::from_str(&got).unwrap();
            assert_eq!(v["type"], "seat");
            assert_eq!(v["n"], i);
            assert!(v["time"].as_str().unwrap().ends_with('Z'));
        }
        assert!(matches!(
            slow.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
    }
}
