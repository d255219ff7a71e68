//! A call waiting for a seat: what the call tells the ACD and what the ACD
//! tells the call.
//!
//! Seat state belongs to the ACD ([`crate::acd`]), not to calls: a call
//! joins a queue, the ACD offers it seats, and the call rings them, bridges
//! the one that answers and reports back. The two talk only through these
//! messages, carried by the engine between the call's task and the ACD's
//! (`call::dispatch`), so both stay pure and each is tested alone.

use crate::media::prompt::Item;
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
