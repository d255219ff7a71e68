//! The operations surface: the control API's pieces that are not HTTP —
//! who is asking ([`auth`]), the live picture of calls and the event
//! stream ([`hub`]), queue outcomes over recent windows ([`recent`]), and
//! the API's answers ([`control`]).

pub mod auth;
pub mod control;
pub mod hub;
pub mod recent;

pub use hub::{CallState, CallView, Hub, LegView};
