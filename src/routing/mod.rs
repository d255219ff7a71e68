//! The routing decision: a pure function of (dialed number, caller number,
//! instant, table) → where the call goes. No I/O, no clock, no allocation:
//! it is the hot path every call takes, and it is tested exhaustively.
//!
//! Order of precedence, each step final:
//! 1. the dialed string is normalised ([`number`]); garbage is a `reject`;
//! 2. an emergency number (110/119/120/122 as the table lists them) goes to
//!    the emergency trunk, before anything else, barred caller or not;
//! 3. a number the table does not list is a `reject` (404);
//! 4. the "routes as" chain is followed to the line whose rules apply; one
//!    that ends at an emergency number (96119 → 119) is an emergency call;
//! 5. a barred caller (harassment floods) is a `reject` (403);
//! 6. a leader session live on that line at this instant makes it a
//!    `leader_session` (queue for the leader or take a callback ticket);
//! 7. otherwise the line's mode decides: main and whole-merge lines `queue`,
//!    dual-number lines go `direct` to seats, sub-centre lines to their trunk.

pub mod calendar;
pub mod explain;
pub mod number;
pub mod table;

pub use calendar::{Deadline, WorkCalendar};
pub use number::{Number, NumberError, NumberingPlan};
pub use table::{
    AcdSettings, EmergencyLine, LeaderSession, Level, Line, Mode, Queue, QueueOverflow,
    QueueStrategy, Resolved, Seat, Table, Trunk, TrunkRole,
};

use chrono::{DateTime, Utc};

/// The kind of a decision, as `hotline route --json` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Emergency,
    Queue,
    Direct,
    SubCentre,
    LeaderSession,
    Reject,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Emergency => "emergency",
            Kind::Queue => "queue",
            Kind::Direct => "direct",
            Kind::SubCentre => "sub_centre",
            Kind::LeaderSession => "leader_session",
            Kind::Reject => "reject",
        }
    }
}

/// Where the second leg goes.
#[derive(Debug, Clone, Copy)]
pub enum Target<'t> {
    Queue(&'t Queue),
    /// Dual-number lines: the expert seats first, then any seat with `skill`.
    Seats {
        expert_seats: &'t [String],
        skill: &'t str,
    },
    Trunk(&'t Trunk),
    None,
}

/// A SIP final response for a call we will not route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    pub status: u16,
    pub reason: &'static str,
}

/// What to do with one call. Borrows from the table it was decided on.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'t> {
    pub kind: Kind,
    /// The dialed number in canonical form (absent when it could not be read).
    pub number: Option<Number>,
    /// The table entry for the dialed number, before "routes as".
    pub dialed_line: Option<&'t Line>,
    /// The canonical number whose rules apply (after "routes as").
    pub line: Option<&'t str>,
    /// The responsible unit (责任单位); during a leader session, the session's unit.
    pub unit: Option<&'t str>,
    pub target: Target<'t>,
    /// Prompt to play before anything else (e.g. "this number has been merged").
    pub announcement: Option<&'t str>,
    /// The live session, for `leader_session`.
    pub session: Option<&'t LeaderSession>,
    /// For `sub_centre`: three-way transfer (三方转接) is allowed.
    pub three_way_transfer: bool,
    pub reject: Option<Reject>,
}

impl<'t> Decision<'t> {
    fn reject(number: Option<Number>, status: u16, reason: &'static str) -> Self {
        Decision {
            kind: Kind::Reject,
            number,
            dialed_line: None,
            line: None,
            unit: None,
            target: Target::None,
            announcement: None,
            session: None,
            three_way_transfer: false,
            reject: Some(Reject { status, reason }),
        }
    }

    fn emergency(table: &'t Table, number: Number, idx: u32, dialed: Option<&'t Line>) -> Self {
        let e = &table.emergency[idx as usize];
        Decision {
            kind: Kind::Emergency,
            number: Some(number),
            dialed_line: dialed,
            line: Some(&e.number),
            unit: dialed.and_then(|l| l.unit.as_deref()).or(e.unit.as_deref()),
            target: Target::Trunk(&table.trunks[e.trunk as usize]),
            announcement: dialed.and_then(|l| l.announcement.as_deref()),
            session: None,
            three_way_transfer: false,
            reject: None,
        }
    }
}

/// Decides where a call to `dialed` from `caller` at instant `at` goes.
pub fn route<'t>(
    table: &'t Table,
    dialed: &str,
    caller: Option<&str>,
    at: DateTime<Utc>,
) -> Decision<'t> {
    let number = match table.numbering.normalize(dialed) {
        Ok(n) => n,
        Err(NumberError::TooLong) => {
            return Decision::reject(None, 484, "Address Incomplete: number too long");
        }
        Err(_) => return Decision::reject(None, 484, "Address Incomplete: not a telephone number"),
    };
    let key = number.key();
    if let Some(&e) = table.emergency_index.get(&key) {
        return Decision::emergency(table, number, e, None);
    }
    let Some(&li) = table.line_index.get(&key) else {
        return Decision::reject(
            Some(number),
            404,
            "Not Found: number not served by this hotline",
        );
    };
    let dialed_line = &table.lines[li as usize];
    let line = match dialed_line.resolved {
        // Routes as an emergency number (96119 → 119): emergency, barred or not.
        Resolved::Emergency(e) => return Decision::emergency(table, number, e, Some(dialed_line)),
        Resolved::Line(i) => &table.lines[i as usize],
    };
    if let Some(c) = caller
        && let Ok(c) = table.numbering.normalize(c)
        && table.barred_callers.contains(&c.key())
    {
        return Decision::reject(Some(number), 403, "Forbidden: caller barred");
    }
    let announcement = dialed_line
        .announcement
        .as_deref()
        .or(line.announcement.as_deref());
    let unit = dialed_line.unit.as_deref().or(line.unit.as_deref());
    let mut d = Decision {
        kind: Kind::Queue,
        number: Some(number),
        dialed_line: Some(dialed_line),
        line: Some(&line.number),
        unit,
        target: Target::None,
        announcement,
        session: None,
        three_way_transfer: false,
        reject: None,
    };
    if let Some(s) = live_session(line, at.timestamp()) {
        let session = &table.sessions[s as usize];
        d.kind = Kind::LeaderSession;
        d.unit = session
            .unit
            .as_deref()
            .or(table.main_line().unit.as_deref());
        d.target = Target::Queue(&table.queues[session.queue as usize]);
        d.session = Some(session);
        return d;
    }
    match line.mode {
        Mode::Main | Mode::WholeMerge => {
            // Validation guarantees a queue for these modes.
            let q = line.queue.unwrap_or(0) as usize;
            d.target = Target::Queue(&table.queues[q]);
        }
        Mode::DualNumber => {
            d.kind = Kind::Direct;
            d.target = Target::Seats {
                expert_seats: &line.expert_seats,
                skill: line.skill.as_deref().unwrap_or(""),
            };
        }
        Mode::SubCentre => {
            d.kind = Kind::SubCentre;
            d.three_way_transfer = true;
            let t = line.trunk.unwrap_or(0) as usize;
            d.target = Target::Trunk(&table.trunks[t]);
        }
    }
    d
}

/// The session live on `line` at Unix second `t`, if any.
fn live_session(line: &Line, t: i64) -> Option<u32> {
    let s = &line.sessions;
    let i = s.partition_point(|&(start, _, _)| start <= t);
    let &(_, end, idx) = s.get(i.checked_sub(1)?)?;
    (t < end).then_some(idx)
}
