//! Callback tickets (热线问政工单): the promise made to a caller who would
//! not wait, from the key press to the citizen's callback (回访).
//!
//! [`model`] is the ticket and its life cycle, pure; [`dialogue`] what a
//! caller hears and keys during a leader session, pure; [`dispatch`]
//! delivers tickets to their units (signed webhooks, retried, dead-lettered);
//! [`report`] shows them to operators; [`store`] the one
//! interface every part of the gateway uses, written once in plain SQL
//! over a backend: [`sqlite`] (embedded, the default) or [`postgres`]
//! (shared by several gateways).

pub mod api;
pub mod callback;
pub mod dialogue;
pub mod dispatch;
pub mod model;
pub mod postgres;
pub mod report;
pub mod sqlite;
pub mod store;

pub use model::{Action, Created, Filter, Kind, NewTicket, Status, Ticket, TicketId};
pub use store::{Store, StoreError, open};
