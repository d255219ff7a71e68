//! hotline — a SIP/RTP call-routing gateway for consolidated public-service
//! hotlines (12345 政务服务便民热线).
//!
//! Where a call goes, in one minute:
//!
//! | module | what it is |
//! |---|---|
//! | [`config`] | `routing.toml`: schema, validation with file/line errors, the shared table and its atomic reload |
//! | [`routing`] | the pure decision: (dialed number, caller, instant, table) → where the call goes; number normalisation; working-day calendar |
//! | [`sip`] | SIP, sans-I/O: the message facade (parser behind it), RFC 3261 transactions, digest authentication; and the UDP/TCP transport driver |
//! | [`call`] | the routing loop (datagram → call task by Call-ID), the B2BUA call machine joining the caller's leg to a seat or trunk, the seat registrar, trunk health (OPTIONS probes, ICMP) |
//! | [`acd`] | the queues, pure: waiting callers by arrival, seats and their states, strategies, skill tiers, estimated wait, position announcements, queue_log events |
//! | [`media`] | RTP anchoring: SDP offer/answer, G.711, prompts and pacing, DTMF, the three-party mixer, recording, and the per-call media session task |
//! | [`metrics`] | Prometheus metrics, one registry per daemon |
//! | [`admin`] | the HTTP endpoint serving `/metrics` (loopback by default) |
//! | [`log_limit`] | log lines an attacker can cause: rate-limited per kind and source; accept loops that back off |
//! | [`daemon`] | `hotline serve`: wiring, reload triggers (SIGHUP, file change), shutdown |
//!
//! Still to come, each as its own module beside these: the ACD on the wire
//! (calls waiting in `acd`'s queues, leader sessions) and `tickets` (the
//! crash-safe callback store).

pub mod acd;
pub mod admin;
pub mod call;
pub mod config;
pub mod daemon;
pub mod log_limit;
pub mod media;
pub mod metrics;
pub mod routing;
pub mod sip;
