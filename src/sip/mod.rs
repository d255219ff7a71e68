//! SIP, sans-I/O: messages ([`message`], our facade over the parser crate),
//! dialogs (§12, [`dialog`]), transactions (RFC 3261 §17, [`transaction`]) and digest authentication
//! ([`digest`]). Nothing here owns a socket or reads the clock; the tokio
//! drivers in [`transport`] move bytes and pass "now" in.

pub mod dialog;
pub mod digest;
pub mod message;
pub mod transaction;
pub mod transport;
