//! What the ACD is told about its queues and seats.
//!
//! These types are the ACD's own, independent of `routing::Table`: the daemon
//! builds a [`Config`] from the table with a small glue function, and the
//! simulator builds one directly. Keeping them apart lets the ACD be tested
//! and simulated without a `routing.toml`, and lets the table's schema change
//! without touching the state machine.
//!
//! The ACD assumes a validated configuration (the config module checks
//! `routing.toml` and names the offending key). It still stays consistent
//! when handed a bad one: a duplicate queue or seat id keeps its first entry,
//! an overflow to an unknown queue is `Busy`, and an unknown `main_queue`
//! makes a removed queue's callers overflow `Busy`.

use std::time::Duration;

/// How a queue chooses among the free seats eligible for its caller.
/// Ties are always broken by seat order in [`Config::seats`]: nothing in the
/// ACD is random.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// The seat that has been available longest (since its last call's
    /// wrap-up ended, its login or resume, or its last missed offer).
    #[default]
    LongestIdle,
    /// The next free seat after the one this queue offered last, in seat
    /// order, wrapping around (Asterisk's `rrmemory`).
    RoundRobin,
    /// The seat that has answered the fewest ACD calls since the ACD started.
    FewestCalls,
    /// Every eligible free seat at once; the first to answer wins and the
    /// others are retracted (the call CANCELs them).
    RingAll,
}

/// Where a caller goes when a queue cannot keep it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Announce and hang up (the call plays `queue_busy` or
    /// `queue_unavailable`, see [`super::Action::Overflowed`]).
    #[default]
    Busy,
    /// Into this queue, keeping the caller's original arrival.
    Queue(String),
    /// Offered a callback once a seat is free (the call asks its number);
    /// a call that cannot take one is as `Busy`.
    Callback,
}

/// One queue (队列): callers waiting for the seats with its skill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    pub id: String,
    /// A seat serves this queue when it has this skill.
    pub skill: String,
    pub strategy: Strategy,
    /// How long one offer rings before it is retracted (`ring_seconds`);
    /// zero rings until the seat answers or fails.
    pub ring: Duration,
    /// The seat's after-call work following a call from this queue.
    pub wrap_up: Duration,
    /// How often a waiting caller hears its position and wait; zero only at
    /// joining.
    pub announce_every: Duration,
    /// Answered within this wait counts toward the service level.
    pub service_level: Duration,
    /// Callers in the queue (waiting or being offered) beyond which a new
    /// caller overflows with [`super::ExitReason::Full`].
    pub max_callers: Option<usize>,
    /// Time in this queue after which a caller overflows with
    /// [`super::ExitReason::Timeout`]. Counted from entering this queue, so
    /// that an overflow queue gives its own patience.
    pub max_wait: Option<Duration>,
    /// Where a caller goes when no seat that could ever serve it is logged in.
    pub join_empty: Overflow,
    /// Where a caller goes when the queue is full or its wait is exceeded.
    pub overflow: Overflow,
    /// The digit that lets a waiting caller leave the queue.
    pub exit_key: Option<char>,
    /// Where the exit key takes the caller.
    pub exit_action: Overflow,
    /// Before this wait, only the caller's expert seats are offered.
    pub expert_wait: Duration,
    /// From this wait, every seat serving the queue is offered.
    pub widen_after: Duration,
    /// The seed of the average handle time before calls have been seen.
    pub default_handle: Duration,
    /// Offers missed in a row after which a seat is paused with reason
    /// `no_answer` (0: never).
    pub max_missed_offers: u32,
    /// Abandons shorter than this are counted apart (a caller who hung up
    /// at once did not really wait).
    pub short_abandon: Duration,
    /// A caller told a longer wait than this is offered a callback in its
    /// turn (virtual hold); `None`: never.
    pub callback_after: Option<Duration>,
}

impl QueueConfig {
    /// A queue with the documented defaults of `routing.toml`.
    pub fn new(id: impl Into<String>, skill: impl Into<String>) -> QueueConfig {
        QueueConfig {
            id: id.into(),
            skill: skill.into(),
            strategy: Strategy::LongestIdle,
            ring: Duration::from_secs(20),
            wrap_up: Duration::from_secs(10),
            announce_every: Duration::from_secs(45),
            service_level: Duration::from_secs(20),
            max_callers: None,
            max_wait: None,
            join_empty: Overflow::Busy,
            overflow: Overflow::Busy,
            exit_key: None,
            exit_action: Overflow::Busy,
            expert_wait: Duration::from_secs(10),
            widen_after: Duration::from_secs(30),
            default_handle: Duration::from_secs(180),
            max_missed_offers: 3,
            short_abandon: Duration::from_secs(5),
            callback_after: None,
        }
    }
}

/// One seat (坐席): a phone an agent answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeatConfig {
    pub id: String,
    pub skills: Vec<String>,
    /// Line numbers this seat is the expert seat (专家座席) for.
    pub expert_for: Vec<String>,
}

impl SeatConfig {
    pub fn new(id: impl Into<String>, skills: &[&str]) -> SeatConfig {
        SeatConfig {
            id: id.into(),
            skills: skills.iter().map(|s| s.to_string()).collect(),
            expert_for: Vec::new(),
        }
    }
}

/// Everything the ACD is configured with; replaced whole on reload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    pub queues: Vec<QueueConfig>,
    /// In this order: it breaks every tie between seats.
    pub seats: Vec<SeatConfig>,
    /// Where the callers of a queue removed by a reload go.
    pub main_queue: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_defaults_are_those_documented_for_routing_toml() {
        let q = QueueConfig::new("main", "general");
        assert_eq!(q.strategy, Strategy::LongestIdle);
        assert_eq!(q.ring, Duration::from_secs(20));
        assert_eq!(q.wrap_up, Duration::from_secs(10));
        assert_eq!(q.announce_every, Duration::from_secs(45));
        assert_eq!(q.service_level, Duration::from_secs(20));
        assert_eq!((q.max_callers, q.max_wait, q.exit_key), (None, None, None));
        assert_eq!(q.join_empty, Overflow::Busy);
        assert_eq!(q.overflow, Overflow::Busy);
        assert_eq!(q.exit_action, Overflow::Busy);
        assert_eq!(q.expert_wait, Duration::from_secs(10));
        assert_eq!(q.widen_after, Duration::from_secs(30));
        assert_eq!(q.default_handle, Duration::from_secs(180));
        assert_eq!(q.max_missed_offers, 3);
        assert_eq!(q.short_abandon, Duration::from_secs(5));
    }
}
