//! Calls: the B2BUA state machine joining a caller's leg to the leg we
//! place ([`b2bua`]), the registrar of seats ([`registrar`]), the health
//! of the trunks calls go out on ([`trunks`]), and the routing loop that
//! feeds them from the sockets ([`engine`]).

pub mod b2bua;
pub mod engine;
pub mod registrar;
pub mod trunks;
