//! SIP transactions (RFC 3261 §17, with RFC 6026's "Accepted" states),
//! sans-I/O.
//!
//! A transaction is one request and every response to it (and, for an INVITE
//! answered with a failure, the ACK). It is the layer that makes SIP work over
//! UDP: the client side retransmits its request until a response arrives
//! (Timers A, E), the INVITE server side retransmits its final response until
//! the ACK arrives (Timer G, and for a 2xx the UAS core's loop of §13.3.1.4,
//! merged in here), both sides absorb the duplicates this creates instead of
//! bothering the transaction user (TU: the dialog and call logic above), and
//! both give up after 64·T1 so a vanished peer costs bounded state. On a
//! reliable transport the retransmissions are left to TCP.
//!
//! | machine | RFC | states |
//! |---|---|---|
//! | [`ClientInvite`] | 3261 §17.1.1, 6026 §7.2 | Calling, Proceeding, Completed, Accepted, Terminated |
//! | [`ClientNonInvite`] | 3261 §17.1.2 | Trying, Proceeding, Completed, Terminated |
//! | [`ServerInvite`] | 3261 §17.2.1, 6026 §7.1 | Proceeding, Completed, Confirmed, Accepted, Terminated |
//! | [`ServerNonInvite`] | 3261 §17.2.2 | Trying, Proceeding, Completed, Terminated |
//!
//! # Driving a machine
//!
//! The machines own no socket and no timer and never read the clock; they do
//! not parse SIP either. The driver (the tokio transport task) matches an
//! incoming message to its transaction (§17.1.3, §17.2.3; the driver keys the
//! transactions, see [`is_rfc3261_branch`]), then calls the input method with
//! the status code and the current instant, and does what the returned
//! [`Action`] says. After *every* call it re-reads [`deadline`] to re-arm its
//! one timer (calling `on_timer(now)` early or spuriously is harmless) and
//! drops the machine once [`is_terminated`] is true (§17.1.1.2: "destroyed the
//! instant it enters the Terminated state"). Time only ever comes from the
//! `now` arguments, which is what lets the tests below pin every timer to the
//! exact instant.
//!
//! Linger timers that are zero on reliable transports (D, I, J, K) end the
//! transaction within the call that starts them, rather than via a zero-length
//! timer.
//!
//! CANCEL needs nothing here: it is a non-INVITE transaction of its own, and
//! the TU answers the INVITE with 487 through [`ServerInvite::send_response`].
//!
//! [`deadline`]: ClientInvite::deadline
//! [`is_terminated`]: ClientInvite::is_terminated

mod client;
mod server;
mod timers;

pub use client::{ClientInvite, ClientNonInvite};
pub use server::{ServerInvite, ServerNonInvite};
pub use timers::{Timers, Transport};

use bytes::Bytes;
use std::fmt;
use std::time::Instant;

/// What the driver must do after feeding a machine an input. Inputs with
/// nothing to do return `None` (for example an absorbed retransmission).
///
/// [`Action::Timeout`], [`Action::AckTimeout`], [`Action::TransportError`]
/// and [`Action::Terminated`] all leave the machine terminated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send these bytes to the peer: a retransmitted request (Timers A, E),
    /// a retransmitted response (Timer G, the 2xx loop, or an answer to a
    /// retransmitted request) or a response the TU just handed to a server
    /// transaction.
    Transmit(Bytes),
    /// Pass the message just received up to the TU. Client machines only:
    /// provisional and final responses, and in Accepted the retransmitted or
    /// forked 2xx responses the TU must ACK itself (RFC 6026 §7.2).
    Deliver,
    /// Client INVITE: a retransmission of the non-2xx final already
    /// delivered arrived; send the ACK again (built by the driver from the
    /// request and this response, §17.1.1.3) but do not pass it up.
    SendAck,
    /// Client INVITE: first non-2xx final response. Pass it up *and* send an
    /// ACK for it (§17.1.1.2).
    DeliverAndAck,
    /// Timer B or F fired: no final response in 64·T1. The TU should act as
    /// if it had received 408 Request Timeout (§8.1.3.1).
    Timeout,
    /// Server INVITE: no ACK arrived in 64·T1 — Timer H for a non-2xx final
    /// (§17.2.1), or the end of the 2xx retransmissions (§13.3.1.4), after
    /// which the TU should end the session with BYE.
    AckTimeout,
    /// The driver reported a transport error; tell the TU (§17.1.4, §17.2.4).
    TransportError,
    /// A linger timer (D, I, J, K, L, M) ran out: the transaction ended with
    /// nothing more to do. Drop it.
    Terminated,
}

/// Where a transaction stands once its call is over: whether it may still
/// send something of its own, or only waits out a linger timer answering
/// (or absorbing) retransmissions, which a compact record of the call can
/// do in its place (see `call::remains`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linger {
    /// Terminated: nothing left at all.
    Over,
    /// Only retransmissions to absorb or answer, until this instant
    /// (Timers D, I, J, K, L, M; for a server INVITE after its ACK).
    Absorbing(Instant),
    /// A retransmission timer runs or an answer is awaited: the
    /// transaction still acts on its own.
    Active,
}

/// The state of a machine. Each machine uses the subset its RFC figure
/// names (see the table in the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Calling,
    Trying,
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Calling => "Calling",
            State::Trying => "Trying",
            State::Proceeding => "Proceeding",
            State::Completed => "Completed",
            State::Confirmed => "Confirmed",
            State::Accepted => "Accepted",
            State::Terminated => "Terminated",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 3261 §8.1.1.7: a branch beginning with this marks a sender that builds
/// globally unique branches, so the branch alone (with sent-by and method)
/// identifies the transaction (§17.1.3, §17.2.3). Without it the driver must
/// fall back to RFC 2543 matching.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Whether a Via branch parameter was generated by an RFC 3261 element
/// (starts with the magic cookie `z9hG4bK`, compared exactly as the RFC
/// spells it), so the driver may key the transaction by branch.
pub fn is_rfc3261_branch(branch: &str) -> bool {
    branch.starts_with(MAGIC_COOKIE)
}

/// The response classes the machines distinguish. Codes outside 100..=699
/// are not SIP responses (RFC 3261 §7.2, §21) and are ignored by every
/// machine rather than guessed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Provisional,
    Success,
    Failure,
}

impl Class {
    fn of(code: u16) -> Option<Class> {
        match code {
            100..=199 => Some(Class::Provisional),
            200..=299 => Some(Class::Success),
            300..=699 => Some(Class::Failure),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_magic_cookie() {
        assert!(is_rfc3261_branch("z9hG4bK776asdhds"));
        assert!(is_rfc3261_branch("z9hG4bK"));
        assert!(!is_rfc3261_branch("776asdhds"));
        assert!(!is_rfc3261_branch("z9hg4bk776asdhds"));
        assert!(!is_rfc3261_branch("xz9hG4bK776"));
        assert!(!is_rfc3261_branch(""));
    }

    #[test]
    fn response_classes() {
        assert_eq!(Class::of(99), None);
        assert_eq!(Class::of(100), Some(Class::Provisional));
        assert_eq!(Class::of(199), Some(Class::Provisional));
        assert_eq!(Class::of(200), Some(Class::Success));
        assert_eq!(Class::of(299), Some(Class::Success));
        assert_eq!(Class::of(300), Some(Class::Failure));
        assert_eq!(Class::of(699), Some(Class::Failure));
        assert_eq!(Class::of(700), None);
    }
}

/// Shared by the machines' tests: run a machine's timers the way a driver
/// would, recording every firing as an offset from `base`.
#[cfg(test)]
mod test_util {
    use super::Action;
    use std::time::{Duration, Instant};

    pub(super) trait Machine {
        fn deadline(&self) -> Option<Instant>;
        fn on_timer(&mut self, now: Instant) -> Option<Action>;
    }

    macro_rules! impl_machine {
        ($($t:ty),*) => {$(
            impl Machine for $t {
                fn deadline(&self) -> Option<Instant> {
                    <$t>::deadline(self)
                }
                fn on_timer(&mut self, now: Instant) -> Option<Action> {
                    <$t>::on_timer(self, now)
                }
            }
        )*};
    }
    impl_machine!(
        super::ClientInvite,
        super::ClientNonInvite,
        super::ServerInvite,
        super::ServerNonInvite
    );

    /// Calls `on_timer` exactly at each deadline up to `base + until`; also
    /// checks that a call 1 ms before each deadline does nothing.
    pub(super) fn run(
        m: &mut impl Machine,
        base: Instant,
        until: Duration,
    ) -> Vec<(Duration, Option<Action>)> {
        let mut fired = Vec::new();
        while let Some(at) = m.deadline() {
            if at > base + until {
                break;
            }
            if at - base >= Duration::from_millis(1) {
                assert_eq!(m.on_timer(at - Duration::from_millis(1)), None);
                assert_eq!(m.deadline(), Some(at), "an early call moved the deadline");
            }
            fired.push((at - base, m.on_timer(at)));
            assert!(fired.len() < 1000, "timer loop does not end");
        }
        fired
    }

    pub(super) fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `n`·`unit` for each n, e.g. the cumulative Timer A schedule.
    pub(super) fn times(unit: Duration, multiples: &[u32]) -> Vec<Duration> {
        multiples.iter().map(|&n| unit * n).collect()
    }
}
