//! A call waiting for a seat: what the call tells the ACD and what the ACD
//! tells the call.
//!
//! Seat state belongs to the ACD ([`crate::acd`]), not to calls: a call
//! joins a queue, the ACD offers it seats, and the call rings them, bridges
//! the one that answers and reports back. The two talk only through these
//! messages, carried by the engine between the call's task and the ACD's
//! (`call::dispatch`), so both stay pure and each is tested alone.

use crate::media::prompt::Item;
use crate::routing::{self, Kind, Table};
use std::time::{Duration, Instant};

/// Where a call's seats come from: the ACD queue it joins, and what the
/// caller hears before its place in the queue.
#[derive(Clone, Debug)]
pub struct QueuePlan {
    pub queue: String,
    /// The line the caller dialled (canonical), for the queue log.
    pub line: String,
    /// Dual-number lines: the line's skill, and its expert seats first.
    pub skill: Option<String>,
    pub expert_seats: Vec<String>,
    /// Played once before the first announcement of the caller's place
    /// (a merged number's notice, the welcome).
    pub intro: Vec<Item>,
}

impl QueuePlan {
    /// The queue a routed call waits in, if it waits in one: a queue
    /// line's (or a live leader session's) queue; a dual-number line's
    /// queue with its skill and expert seats; for a sub-centre line, the
    /// main queue should its trunk fail. `serve` and `simulate` both ask
    /// here, so a simulated caller joins exactly the queue a real one
    /// would.
    pub fn for_decision(table: &Table, d: &routing::Decision<'_>, line: &str) -> Option<QueuePlan> {
        let main_queue = || {
            table
                .main_line()
                .queue
                .map(|q| table.queues[q as usize].id.clone())
        };
        let plan = |queue: String, intro: Vec<Item>| QueuePlan {
            queue,
            line: line.to_string(),
            skill: None,
            expert_seats: Vec::new(),
            intro,
        };
        let welcome = || {
            let mut intro: Vec<Item> = d.announcement.map(Item::prompt).into_iter().collect();
            intro.push(Item::prompt("welcome"));
            intro
        };
        match (d.kind, &d.target) {
            (Kind::Queue | Kind::LeaderSession, routing::Target::Queue(q)) => {
                Some(plan(q.id.clone(), welcome()))
            }
            (
                Kind::Direct,
                routing::Target::Seats {
                    expert_seats,
                    skill,
                },
            ) => {
                let resolved = d.dialed_line.map(|l| match l.resolved {
                    routing::Resolved::Line(i) => &table.lines[i as usize],
                    routing::Resolved::Emergency(_) => l,
                });
                let queue = resolved
                    .and_then(|l| l.queue)
                    .map(|q| table.queues[q as usize].id.clone())
                    .or_else(main_queue)?;
                let mut p = plan(
                    queue,
                    d.announcement.map(Item::prompt).into_iter().collect(),
                );
                p.skill = (!skill.is_empty()).then(|| skill.to_string());
                p.expert_seats = expert_seats.to_vec();
                Some(p)
            }
            (Kind::SubCentre, _) => {
                Some(plan(main_queue()?, vec![Item::prompt("transfer_notice")]))
            }
            _ => None,
        }
    }

    /// The main line's queue, for a leader session's caller moved there
    /// when the session ends.
    pub fn main_queue(table: &Table, line: &str) -> Option<QueuePlan> {
        let q = table.main_line().queue?;
        Some(QueuePlan {
            queue: table.queues[q as usize].id.clone(),
            line: line.to_string(),
            skill: None,
            expert_seats: Vec::new(),
            intro: Vec::new(),
        })
    }
}

/// What a call tells the ACD.
#[derive(Clone, Debug, PartialEq)]
pub enum ToAcd {
    /// The caller waits for a seat from `arrival` on (kept across a return
    /// to the queue, so the caller keeps its place).
    Join {
        queue: String,
        line: String,
        skill: Option<String>,
        expert_seats: Vec<String>,
        arrival: Instant,
    },
    /// The caller hung up while waiting (an abandon).
    Abandoned,
    /// The caller left the queue by a key of the call's own (a leader
    /// session's caller taking a ticket after all): counted as `exit_key`.
    Left,
    /// A supervisor ended the waiting call (the control API): counted as
    /// `operator`.
    Hungup,
    /// A key the caller pressed while waiting (an exit key, perhaps).
    Key(char),
    /// The seat offered answered and is bridged to the caller.
    Answered { seat: String },
    /// The seat offered did not take the call.
    OfferFailed { seat: String, no_answer: bool },
    /// The call with its seat is over (`by_seat`: the seat hung up): the
    /// seat wraps up.
    Ended { by_seat: bool },
}

/// What the ACD tells a call.
#[derive(Clone, Debug, PartialEq)]
pub enum FromAcd {
    /// Ring this seat for the caller.
    Offer { seat: String, ring: Duration },
    /// Stop ringing this seat (it rang out, or another seat answered).
    Retract { seat: String },
    /// Tell the caller its place and wait (prompt names and numerals).
    Announce { items: Vec<Item> },
    /// The caller leaves the queue: it hears `items` and is hung up
    /// (`code` and `reason` for a caller we never answered).
    Leave {
        items: Vec<Item>,
        code: u16,
        reason: String,
    },
    /// The caller leaves the queue (`overflow = "callback"`): it is
    /// offered a callback once a seat is free; a call that cannot take
    /// one does as [`FromAcd::Leave`] says.
    CallBackLater {
        items: Vec<Item>,
        code: u16,
        reason: String,
    },
}
