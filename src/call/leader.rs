//! A call during a leader session (热线问政): the caller is answered and
//! chooses between waiting for the leader and a callback ticket; a ticket
//! takes its callback number and spoken request, is stored, and only then
//! is its number read to the caller. The choice and its words are the
//! pure [`Dialogue`]; this is the call acting on it: prompts on the
//! caller's stream, the request recorded, the queue joined, the store
//! asked through the driver ([`Output::StoreTicket`], answered with
//! [`Call::on_ticket`]), the hang-up.
//!
//! A caller waiting for the leader who presses 2 leaves the queue for a
//! ticket after all.

use super::{Call, Outcome, Output, Phase};
use crate::call::queue::ToAcd;
use crate::call::registrar::Registrar;
use crate::call::timers::Purpose;
use crate::media::session::Command as MediaCommand;
use crate::tickets::dialogue::{self, Choice, Dialogue, Do, Stored};
use crate::tickets::model::NewTicket;
use std::path::PathBuf;
use std::time::Instant;

/// What a leader session's call needs: the dialogue's settings, the ticket
/// it would store (all but the callback number and the request), and where
/// the request is recorded.
#[derive(Clone, Debug)]
pub struct LeaderPlan {
    pub dialogue: dialogue::Settings,
    pub draft: NewTicket,
    /// The recordings folder for requests, and this call's file below it.
    pub requests_dir: PathBuf,
    pub request_file: PathBuf,
    /// When the session ends; a caller still waiting for the leader then
    /// takes a ticket (`end_ticket`, when it can: its media is anchored),
    /// or moves to the main line's queue (`end_queue`), keeping its place.
    pub session_ends: Option<Instant>,
    pub end_ticket: bool,
    pub end_queue: Option<crate::call::queue::QueuePlan>,
}

impl Call {
    /// Answers the caller and asks for its choice; false when the call
    /// cannot hold a dialogue (no anchored media: it waits in the queue
    /// as before).
    pub(super) fn start_choice(&mut self, now: Instant) -> bool {
        if self.media.is_none() || self.phase != Phase::Setup {
            return false;
        }
        let Some(plan) = self.settings.leader.as_ref() else {
            return false;
        };
        let dialogue = Dialogue::start(plan.dialogue.clone(), now);
        tracing::info!(call = self.id, "leader session: asking wait or ticket");
        self.respond_caller(200, "OK", None, now);
        self.answered_by_us = true;
        self.answered_at = Some(now);
        if let Some(m) = &mut self.media {
            m.early_playing = false;
        }
        self.out
            .push(Output::Media(MediaCommand::StopPlay { leg: 0 }));
        self.out.push(Output::Media(MediaCommand::Watch { leg: 0 }));
        self.phase = Phase::Choosing;
        self.dialogue = Some(Box::new(dialogue));
        self.follow_dialogue(now);
        true
    }

    /// Whether the dialogue has a key to read: choosing, or waiting for
    /// the leader (2 still takes a ticket).
    pub(super) fn dialogue_key(&mut self, key: char, now: Instant) -> bool {
        match self.phase {
            Phase::Choosing => {
                if let Some(d) = &mut self.dialogue {
                    d.key(key, now);
                }
                self.follow_dialogue(now);
                true
            }
            Phase::Queued
                if key == '2' && self.settings.leader.is_some() && self.answered_by_us =>
            {
                tracing::info!(call = self.id, "waiting caller takes a ticket instead");
                self.cancel_offers(now);
                self.out.push(Output::Acd(ToAcd::Left));
                self.phase = Phase::Choosing;
                let settings = self
                    .settings
                    .leader
                    .as_ref()
                    .map(|p| p.dialogue.clone())
                    .expect("checked above");
                self.dialogue = Some(Box::new(Dialogue::ticket_instead(settings, now)));
                self.follow_dialogue(now);
                true
            }
            _ => false,
        }
    }

    pub(super) fn dialogue_prompt_done(&mut self, now: Instant) {
        if self.phase == Phase::Choosing
            && let Some(d) = &mut self.dialogue
        {
            d.prompt_done(now);
            self.follow_dialogue(now);
        }
    }

    /// The caller fell quiet ([`crate::media::session::Event::Quiet`]).
    pub(super) fn dialogue_quiet(&mut self, spoke: bool, now: Instant) {
        if self.phase == Phase::Choosing
            && let Some(d) = &mut self.dialogue
        {
            d.quiet(spoke, now);
            self.follow_dialogue(now);
        }
    }

    pub(super) fn dialogue_timer(&mut self, now: Instant) {
        if let Some(d) = &mut self.dialogue {
            d.timer(now);
        }
        self.follow_dialogue(now);
    }

    /// A waiting caller offered a callback in its turn pressed `*`: it
    /// leaves the queue for the number dialogue; once its ticket is told,
    /// the callback takes its place again ([`Output::CallBack`]).
    pub(super) fn queue_callback_key(&mut self, key: char, now: Instant) -> bool {
        // Not once the queue let the caller go (it hears why): the
        // queue is done with it.
        if key != crate::acd::announce::CALLBACK_KEY
            || self.phase != Phase::Queued
            || !self.callback_offered
            || !self.answered_by_us
            || self.timers.is_set(Purpose::Leave)
        {
            return false;
        }
        let Some(plan) = self.settings.queue_callback.as_ref() else {
            return false;
        };
        tracing::info!(
            call = self.id,
            "waiting caller takes a callback in its turn"
        );
        let settings = plan.dialogue.clone();
        self.cancel_offers(now);
        self.out.push(Output::Acd(ToAcd::Left));
        self.phase = Phase::Choosing;
        self.calling_back = true;
        self.dialogue = Some(Box::new(Dialogue::ticket_instead(settings, now)));
        self.follow_dialogue(now);
        true
    }

    /// The queue overflowed to a callback (`overflow = "callback"`): the
    /// ACD has let the caller go; it gives its number and is called back
    /// once a seat is free. False when the call cannot hold the dialogue
    /// (the caller is then let go as for `busy`).
    pub(super) fn callback_later(&mut self, now: Instant) -> bool {
        if !self.answered_by_us || self.media.is_none() {
            return false;
        }
        let Some(plan) = self.settings.queue_callback.as_ref() else {
            return false;
        };
        let mut settings = plan.dialogue.clone();
        settings.promise = Some(dialogue::prompts::LATER);
        self.cancel_offers(now);
        self.phase = Phase::Choosing;
        self.calling_back = true;
        self.later = true;
        self.dialogue = Some(Box::new(Dialogue::number_after(
            settings,
            dialogue::prompts::LATER_LEAD,
            now,
        )));
        self.follow_dialogue(now);
        true
    }

    /// The plan of the ticket the dialogue takes: the queue callback's or
    /// the leader session's.
    fn ticket_plan(&self) -> Option<&LeaderPlan> {
        if self.calling_back {
            self.settings.queue_callback.as_deref()
        } else {
            self.settings.leader.as_deref()
        }
    }

    /// The session ended while the caller waits for the leader: a ticket
    /// (the leader has gone), or the main line's queue with its place.
    pub(super) fn on_session_end(&mut self, now: Instant) {
        self.timers.clear(Purpose::SessionEnd);
        let Some(plan) = self.settings.leader.clone() else {
            return;
        };
        let ticket = plan.end_ticket && self.answered_by_us;
        // Nothing to do instead (no media for a ticket, no main queue):
        // the caller stays where it is.
        if self.phase != Phase::Queued || !(ticket || plan.end_queue.is_some()) {
            return;
        }
        self.cancel_offers(now);
        self.out.push(Output::Acd(ToAcd::Left));
        if ticket {
            tracing::info!(
                call = self.id,
                "leader session over: a ticket for the waiting caller"
            );
            self.phase = Phase::Choosing;
            self.dialogue = Some(Box::new(Dialogue::session_over(plan.dialogue.clone(), now)));
            self.follow_dialogue(now);
            return;
        }
        let Some(q) = plan.end_queue else {
            return;
        };
        tracing::info!(call = self.id, queue = %q.queue, "leader session over: to the main queue");
        if self.answered_by_us {
            self.out.push(Output::Prompt {
                leg: 0,
                items: vec![crate::media::prompt::Item::prompt("queue_moved")],
                hold: true,
            });
        }
        self.out.push(Output::Acd(ToAcd::Join {
            queue: q.queue,
            line: q.line,
            skill: q.skill,
            expert_seats: q.expert_seats,
            arrival: self.started,
        }));
    }

    /// The store's answer to [`Output::StoreTicket`].
    pub fn on_ticket(
        &mut self,
        stored: Stored,
        registrar: &Registrar,
        now: Instant,
    ) -> Vec<Output> {
        let id = match &stored {
            Stored::New { id } | Stored::Existing { id } => Some(id.clone()),
            Stored::Failed => None,
        };
        if self.phase == Phase::Choosing
            && let Some(d) = &mut self.dialogue
        {
            // Too late (the caller was told it failed): stored, not told.
            let new = matches!(stored, Stored::New { .. });
            if d.stored(stored, now) {
                if self.calling_back
                    && !self.later
                    && new
                    && let (Some(ticket), Some(queue)) = (id.clone(), self.joined.clone())
                {
                    // Back in the queue at the caller's own arrival: the
                    // callback keeps its place.
                    self.out.push(Output::CallBack {
                        ticket,
                        queue: *queue,
                        arrival: self.started,
                    });
                }
                self.ticket = id;
            } else if let Some(id) = id {
                tracing::warn!(call = self.id, ticket = %id, "ticket stored after the caller was told the store failed");
            }
            self.follow_dialogue(now);
        }
        self.finish_input(registrar, now)
    }

    /// Carries out what the dialogue decided, and keeps its deadline.
    fn follow_dialogue(&mut self, now: Instant) {
        let Some(d) = &mut self.dialogue else { return };
        let steps = d.take();
        match d.deadline() {
            Some(t) => self.timers.set(Purpose::Dialogue, t),
            None => self.timers.clear(Purpose::Dialogue),
        }
        for step in steps {
            match step {
                Do::Play(items) => self.out.push(Output::Prompt {
                    leg: 0,
                    items,
                    hold: false,
                }),
                Do::Silence => self
                    .out
                    .push(Output::Media(MediaCommand::StopPlay { leg: 0 })),
                // Not a leader session's choice.
                Do::Chose(..) if self.calling_back => {}
                Do::Chose(choice, defaulted) => {
                    let label = match (choice, defaulted) {
                        (_, true) => "none",
                        (Choice::Wait, false) => "wait",
                        (Choice::Ticket, false) => "ticket",
                    };
                    tracing::info!(call = self.id, choice = label, "leader session choice");
                    self.out.push(Output::LeaderChoice(label));
                }
                Do::Wait => {
                    self.dialogue = None;
                    self.timers.clear(Purpose::Dialogue);
                    self.phase = Phase::Setup;
                    if !self.join_queue(now) {
                        self.fail_caller(
                            super::Rejection::new(
                                480,
                                "Temporarily Unavailable",
                                Outcome::Unavailable,
                            ),
                            now,
                        );
                    }
                    return;
                }
                Do::Record { end_on_silence } => {
                    if let Some(p) = self.ticket_plan().cloned() {
                        self.out.push(Output::Media(MediaCommand::Record {
                            dir: p.requests_dir.clone(),
                            // The recorder takes paths below its folder.
                            paths: vec![(0, p.requests_dir.join(&p.request_file))],
                        }));
                        if let Some(after) = end_on_silence {
                            self.out
                                .push(Output::Media(MediaCommand::EndOnSilence { leg: 0, after }));
                        }
                    }
                }
                Do::StopRecording => self
                    .out
                    .push(Output::Media(MediaCommand::StopRecord { leg: 0 })),
                Do::Store {
                    callback_number,
                    request,
                } => {
                    if let Some(p) = self.ticket_plan().cloned() {
                        let mut ticket = p.draft.clone();
                        if self.later {
                            ticket.kind = crate::tickets::model::Kind::Overflow;
                        }
                        ticket.callback_number = callback_number;
                        ticket.request_recording = request
                            .then(|| p.requests_dir.join(&p.request_file).display().to_string());
                        tracing::info!(call = self.id, "storing the ticket");
                        self.out.push(Output::StoreTicket(Box::new(ticket)));
                    }
                }
                Do::HangUp => {
                    self.dialogue = None;
                    self.timers.clear(Purpose::Dialogue);
                    self.caller().hang_up(now);
                    // No ticket: the store failed, or no number to call
                    // back was given.
                    let outcome = if self.ticket.is_some() {
                        Outcome::Ticket
                    } else {
                        Outcome::Failed
                    };
                    self.end(outcome);
                    return;
                }
            }
        }
    }
}
