//! A supervisor's word for a call in progress (the control API's `POST
//! /api/calls/{id}/…`): the same hand-offs the seat makes from its phone,
//! with the same rules — a number reaches only what the table routes.
//!
//! | command | what happens | the seat's keys |
//! |---|---|---|
//! | `consult` + number | the seat talks to the number, the caller waits on music | `*2`number`#` |
//! | `transfer` + number | a blind transfer | `#1`number`#` |
//! | `join` | the consultation becomes a three-way call | `*3#` |
//! | `complete` | the attended transfer completes: caller and target talk, the seat is let go (our BYE) | the seat hanging up |
//! | `leave` | the seat drops off a three-way call: caller and party talk on | the seat hanging up |
//! | `cancel` | the consultation, transfer or third party is dropped; caller and seat as before | `*1` |
//!
//! A command that does not apply to the call as it is now is refused with
//! the reason (the API answers `409`), and changes nothing.

use super::{Call, Output, Phase};
use crate::call::registrar::Registrar;
use std::time::Instant;

/// What a supervisor asks of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Consult(String),
    Transfer(String),
    Join,
    Complete,
    Leave,
    Cancel,
}

impl Call {
    /// Carries `cmd` out, or says why it does not apply now.
    pub fn on_command(
        &mut self,
        cmd: Command,
        registrar: &Registrar,
        now: Instant,
    ) -> Result<Vec<Output>, String> {
        let bridged_to_seat = matches!(self.phase, Phase::Connected | Phase::Conference)
            && self.current_leg().is_some_and(|l| l.seat().is_some());
        if !bridged_to_seat {
            return Err("the call is not talking to a seat".into());
        }
        let busy = self.party.is_some() || self.transfer.is_some() || self.consult.is_some();
        if self.consultation().is_some() && !self.consulting_by_keys() {
            // Its own second dialog: the phone completes or ends it (REFER,
            // hanging up), not we.
            return Err("the seat's phone holds this consultation itself".into());
        }
        match cmd {
            Command::Consult(number) | Command::Transfer(number) if busy => {
                return Err(format!(
                    "a hand-off is under way already; cancel it before another to {number}"
                ));
            }
            Command::Consult(_) | Command::Transfer(_) if self.media.is_none() => {
                return Err("the call's media is not anchored here".into());
            }
            Command::Consult(_) | Command::Transfer(_) if self.phase != Phase::Connected => {
                return Err("the call is a three-way call".into());
            }
            Command::Consult(number) => {
                tracing::info!(call = self.id, %number, "a supervisor consults for the seat");
                self.consult_by_keys(number, now);
            }
            Command::Transfer(number) => {
                tracing::info!(call = self.id, %number, "a supervisor transfers the call");
                self.blind_by_keys(number, now);
            }
            Command::Join => {
                if self.consultation() != Some(true) || self.party.is_none() {
                    return Err("no answered consultation to join".into());
                }
                self.consult_to_three_way(now);
            }
            Command::Complete => {
                let answered = self.consultation() == Some(true);
                let ringing = self.consultation() == Some(false);
                if !answered && !ringing {
                    return Err("no consultation to complete".into());
                }
                tracing::info!(call = self.id, "a supervisor completes the seat's transfer");
                if answered {
                    // Caller and target joined; the seat's dialogs end.
                    self.seat_left_after_intro(now);
                } else {
                    // The target still rings: the caller is handed over,
                    // and the seat let go.
                    self.hang_up_seat(now);
                    self.seat_left_ringing_party(now);
                }
            }
            Command::Leave => {
                if self.phase != Phase::Conference {
                    return Err("the call is no three-way call".into());
                }
                tracing::info!(
                    call = self.id,
                    "a supervisor lets the seat leave the three-way call"
                );
                self.hang_up_seat(now);
                self.seat_left();
            }
            Command::Cancel => {
                if self.transfer.is_some() {
                    self.abort_transfer(now);
                } else if self.consulting_by_keys() {
                    self.end_consult(now);
                } else if self.party.is_some() {
                    self.drop_party(now);
                } else {
                    return Err("no hand-off to cancel".into());
                }
            }
        }
        Ok(self.finish_input(registrar, now))
    }

    /// Our BYE to the seat the caller is joined to.
    fn hang_up_seat(&mut self, now: Instant) {
        if let Some(id) = self.current
            && let Some(l) = self.leg(id)
        {
            l.hang_up(now);
        }
    }
}
