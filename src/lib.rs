//! hotline — a SIP/RTP call-routing gateway for consolidated public-service
//! hotlines (12345 政务服务便民热线).
//!
//! Where a call goes, in one minute:
//!
//! | module | what it is |
//! |---|---|
//! | [`config`] | `routing.toml`: schema, validation with file/line errors, the shared table and its atomic reload |
//! | [`routing`] | the pure decision: (dialed number, caller, instant, table) → where the call goes; number normalisation; working-day calendar |
//! | [`sip`] | SIP, sans-I/O: the message facade (parser behind it), dialogs, RFC 3261 transactions, digest authentication; and the UDP/TCP transport driver |
//! | [`call`] | a call of many legs: the leg machine (one dialog each: the caller's, every seat or trunk tried), the call that joins them and decides (with its timers by purpose, and the conference of three a seat brings a party into), hunting, what a waiting call and the ACD tell each other; the ACD's task; the routing loop (datagram → call task by Call-ID); the seat registrar; trunk health (OPTIONS probes, ICMP) |
//! | [`acd`] | the queues, pure: waiting callers by arrival, seats and their states, strategies, skill tiers, estimated wait, position announcements, queue_log events |
//! | [`media`] | RTP anchoring: SDP offer/answer, G.711, prompts and pacing, DTMF, the three-party mixer, recording, and the per-call media session task |
//! | [`tickets`] | callback tickets (热线问政工单): the ticket and its life cycle, pure; the store interface, written once in plain SQL over SQLite (embedded) or PostgreSQL (shared) |
//! | [`metrics`] | Prometheus metrics, one registry per daemon |
//! | [`admin`] | the HTTP endpoint serving `/metrics` (loopback by default) |
//! | [`log_limit`] | log lines an attacker can cause: rate-limited per kind and source; accept loops that back off |
//! | [`simulate`] | `hotline simulate`: a day of traffic through the real routing and ACD in simulated time (discrete events, seeded draws); figures per half hour, Erlang C/A, the seat plan, the HTML report |
//! | [`ops`] | the operator's surface: API tokens and roles, the live event hub, recent service-level windows, the control API's handlers, the wallboard page |
//! | [`records`] | call records (one per call), their writer thread, CSV export, the monthly report |
//! | [`daemon`] | `hotline serve`: wiring, reload triggers (SIGHUP, file change), shutdown |
//!

pub mod acd;
pub mod admin;
pub mod call;
pub mod config;
pub mod daemon;
pub mod log_limit;
pub mod media;
pub mod metrics;
pub mod ops;
pub mod records;
pub mod routing;
pub mod simulate;
pub mod sip;
pub mod sockaddr;
pub mod tickets;
