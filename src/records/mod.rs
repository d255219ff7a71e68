//! Call records (CDR): one per call when it ends, in the ticket store (the
//! same SQLite file or PostgreSQL database) and, when `[records] jsonl`
//! names a file, as one JSON line each. `hotline cdr export` reads them
//! back; `hotline report` builds the monthly brief from them.
//!
//! A record says who called what and what became of it: the line and how
//! it was routed, the queue and the wait, every seat offered and the one
//! that answered, the talk time, each hand-off with its outcome, the
//! recordings, the result and how the call ended on the wire.

pub mod builder;
pub mod export;
pub mod report;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

fn trunk() -> String {
    "trunk".into()
}

/// A seat's or supervisor's hand-off during the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    /// `blind`, `attended`, `three_way`, `emergency`.
    pub kind: String,
    pub seat: String,
    pub number: String,
    /// The target's trunk id, `seat`, or `none`.
    pub target: String,
    /// `completed`, `busy`, `no_answer`, `failed`, `refused`, …
    pub result: String,
}

/// One finished call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The caller's SIP Call-ID.
    pub call_id: String,
    /// The gateway's own number for the call (restarts at 1 with the
    /// daemon; with `started`, unique).
    pub call: u64,
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
    pub caller: Option<String>,
    pub dialed: String,
    /// The canonical line whose rules applied.
    pub line: String,
    /// How it was routed: `queue`, `direct`, `sub_centre`, `emergency`,
    /// `leader_session`, `reject`.
    pub kind: String,
    /// `trunk` (a call that came in) or `seat` (one a seat placed: the
    /// monthly report counts only calls that came in).
    #[serde(default = "trunk")]
    pub origin: String,
    pub unit: Option<String>,
    pub queue: Option<String>,
    /// Seconds from joining the queue to a seat's answer (or to leaving).
    pub wait: Option<f64>,
    /// Every seat rung, in order, once each.
    pub seats_offered: Vec<String>,
    pub answered_by: Option<String>,
    /// Seconds from the answer (seat or trunk) to the end.
    pub talk: Option<f64>,
    pub handoffs: Vec<Handoff>,
    pub recordings: Vec<String>,
    /// `completed`, `cancelled`, `abandoned`, `no_answer`, `failed`,
    /// `unavailable`, `rejected`, `ticket`.
    pub result: String,
    /// How it ended on the wire: `caller_bye`, `far_bye` (the seat or the
    /// trunk), `operator`, `shutdown`, or the final status we answered
    /// (`480`, `486`, `503`, …).
    pub end_reason: String,
    /// The callback ticket the caller was told, if any.
    pub ticket: Option<String>,
}
