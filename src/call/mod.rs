//! Calls. A call is made of legs: [`leg`] is one SIP dialog with its
//! transactions (the caller's, each seat or trunk tried), [`call`] joins
//! them and decides the next step, [`hunt`] chooses the targets tried in
//! turn; [`registrar`] holds the seats' registrations, [`trunks`] the
//! health of the trunks calls go out on, [`calls`] the table of live calls
//! by Call-ID, and [`engine`] is the routing loop that feeds calls from the
//! sockets.

#[allow(clippy::module_inception)]
pub mod call;
pub mod calls;
pub mod engine;
pub mod hunt;
pub mod leg;
pub mod registrar;
pub mod trunks;
