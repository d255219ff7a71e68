//! Calls. A call is made of legs: [`leg`] is one SIP dialog with its
//! transactions (the caller's, each seat or trunk tried), [`call`] joins
//! them and decides the next step, [`hunt`] chooses the targets tried in
//! turn, [`queue`] what a call waiting for a seat and the ACD tell each
//! other; [`timers`] the call's own timers by purpose; [`registrar`] holds the seats' registrations, [`trunks`] the
//! health of the trunks calls go out on, [`calls`] the table of live calls
//! by Call-ID, [`dispatch`] the task that runs the ACD for the daemon,
//! and [`engine`] is the routing loop that feeds calls from the
//! sockets.

#[allow(clippy::module_inception)]
pub mod call;
pub mod calls;
pub mod dispatch;
pub mod engine;
pub mod hunt;
pub mod leg;
pub mod queue;
pub mod registrar;
pub mod remains;
pub mod timers;
pub mod trunks;
