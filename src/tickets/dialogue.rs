//! What a caller hears and keys during a leader session (热线问政), as a
//! pure machine: the choice between waiting for the leader and a callback
//! ticket, the callback number, the spoken request, and the ticket number
//! read back once it is stored.
//!
//! Fed keys, prompt ends, timer expiries and the store's answer, each
//! with "now"; it returns what to do ([`Do`]) and its next deadline. The
//! call plays the prompts, records, asks the store and hangs up; this
//! decides. A key pressed during a prompt is taken at once (barge-in).
//!
//! The promise: the ticket number is spoken only after [`Dialogue::stored`]
//! says the store committed it; a store that failed makes the caller hear
//! that it should call again later, never a number.

use crate::media::prompt::Item;
use std::time::{Duration, Instant};

/// The prompts the dialogue plays (WAVs in `prompts/`).
pub mod prompts {
    pub const CHOICE: &str = "leader_session_choice";
    pub const CONFIRM_NUMBER: &str = "ticket_confirm_number";
    pub const KEY_NUMBER: &str = "ticket_key_number";
    pub const NUMBER_INVALID: &str = "ticket_number_invalid";
    pub const RECORD_REQUEST: &str = "ticket_record_request";
    pub const BEEP: &str = "beep";
    pub const CREATED: &str = "ticket_created";
    /// 我们将按您的排队顺序回电: a queue callback registered.
    pub const IN_TURN: &str = "queue_callback_registered";
    /// 当前坐席全忙，为您登记回电: the queue overflowed to a callback.
    pub const LATER_LEAD: &str = "callback_later";
    /// 坐席空闲后我们将尽快给您回电: that callback registered.
    pub const LATER: &str = "callback_later_registered";
    pub const EXISTING: &str = "ticket_existing";
    pub const DUE_IN: &str = "ticket_due_in";
    pub const DUE_DAYS: &str = "ticket_due_days";
    pub const UNAVAILABLE: &str = "ticket_unavailable";
    pub const GOODBYE: &str = "goodbye";
    pub const SESSION_OVER: &str = "leader_session_over";
}

/// What the caller chose, for `hotline_leader_choice_total{choice}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Pressed 1 (or the default when nothing was pressed).
    Wait,
    /// Pressed 2.
    Ticket,
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// How long the choice waits for a key after its prompt (repeated
    /// once), and a callback number for its next key.
    pub timeout: Duration,
    /// What a caller who presses nothing gets.
    pub default: Choice,
    /// The longest spoken request; zero: none is asked for.
    pub message: Duration,
    /// Quiet this long ends the request as `#` does; zero: only `#` and
    /// [`Settings::message`] end it.
    pub message_silence: Duration,
    /// The caller's own number, if it can be called back (see
    /// [`super::model::callback_number`]); `None`: withheld or not a
    /// number, so the caller must key one.
    pub caller_number: Option<String>,
    /// Working days the ticket is due in, for what the caller is told.
    pub due_working_days: u32,
    /// A callback (回电) instead of waiting: the prompt that tells the
    /// caller when it will be called back (in its turn, or once a seat is
    /// free), said after its ticket's number instead of a unit's due date.
    pub promise: Option<&'static str>,
}

/// What the call must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Do {
    /// Play these to the caller now, instead of whatever plays; a
    /// `prompt_done` follows when they end.
    Play(Vec<Item>),
    /// Stop what plays (the caller started keying).
    Silence,
    /// The caller chose (or was given) this; for the metric.
    Chose(Choice, bool),
    /// Put the caller in the leader's queue.
    Wait,
    /// Start recording what the caller says (the request); tell
    /// [`Dialogue::quiet`] once it has said nothing for this long.
    Record {
        end_on_silence: Option<Duration>,
    },
    StopRecording,
    /// Store the ticket: the number to call back, and whether a request
    /// was recorded.
    Store {
        callback_number: String,
        request: bool,
    },
    HangUp,
}

/// The store's answer to [`Do::Store`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    New {
        id: String,
    },
    /// The caller already has an open ticket for the unit: its number.
    Existing {
        id: String,
    },
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// "Press 1 to wait, 2 for a ticket."
    Choice { repeated: bool },
    /// The callback number: 1 for the caller's own, or keyed + `#`.
    Number { keyed: String, repeated: bool },
    /// The request's prompt playing (`recording` false), then recording;
    /// the callback number chosen.
    Request { recording: bool, number: String },
    /// Waiting for the store.
    Storing,
    /// The last words; then we hang up.
    Closing,
    /// The caller waits in the queue, or we hung up.
    Over,
}

/// The longest number a caller may key.
const MAX_KEYED: usize = 20;

/// The goodbye is given this long to play before we hang up anyway.
const CLOSING_LIMIT: Duration = Duration::from_secs(60);

pub struct Dialogue {
    settings: Settings,
    state: State,
    deadline: Option<Instant>,
    out: Vec<Do>,
    /// The latest "now" an input brought: prompts get a backstop deadline
    /// from it, should their end never be reported.
    last: Instant,
}

/// A prompt whose end is never reported (no library, a lost event) is
/// taken as ended this long after it began.
const PROMPT_LIMIT: Duration = Duration::from_secs(45);

/// The store is given this long; then the caller hears it failed (and is
/// never told a number it might store later).
const STORE_LIMIT: Duration = Duration::from_secs(20);

impl Dialogue {
    /// The choice, played at once.
    pub fn start(settings: Settings, now: Instant) -> Dialogue {
        let mut d = Dialogue {
            settings,
            state: State::Choice { repeated: false },
            deadline: None,
            out: Vec::new(),
            last: now,
        };
        d.play(vec![Item::prompt(prompts::CHOICE)]);
        d
    }

    /// A caller waiting in the leader's queue pressed 2: a ticket after
    /// all.
    pub fn ticket_instead(settings: Settings, now: Instant) -> Dialogue {
        let mut d = Dialogue {
            settings,
            state: State::Over,
            deadline: None,
            out: Vec::new(),
            last: now,
        };
        d.out.push(Do::Chose(Choice::Ticket, false));
        d.ask_number();
        d
    }

    /// The session ended while the caller waited: the leader has gone, a
    /// ticket instead.
    pub fn session_over(settings: Settings, now: Instant) -> Dialogue {
        Dialogue::number_after(settings, prompts::SESSION_OVER, now)
    }

    /// Straight to the callback number, after `lead` (why: the session is
    /// over, the queue is full).
    pub fn number_after(settings: Settings, lead: &'static str, now: Instant) -> Dialogue {
        let mut d = Dialogue {
            settings,
            state: State::Number {
                keyed: String::new(),
                repeated: false,
            },
            deadline: None,
            out: Vec::new(),
            last: now,
        };
        let p = d.number_prompt();
        d.play(vec![Item::prompt(lead), p]);
        d
    }

    /// What to do now, in order.
    pub fn take(&mut self) -> Vec<Do> {
        std::mem::take(&mut self.out)
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the dialogue is over (the caller waits, or is gone).
    pub fn is_over(&self) -> bool {
        self.state == State::Over
    }

    fn play(&mut self, items: Vec<Item>) {
        self.deadline = Some(self.last + PROMPT_LIMIT);
        self.out.push(Do::Play(items));
    }

    fn number_prompt(&self) -> Item {
        if self.settings.caller_number.is_some() {
            Item::prompt(prompts::CONFIRM_NUMBER)
        } else {
            Item::prompt(prompts::KEY_NUMBER)
        }
    }

    fn ask_number(&mut self) {
        self.state = State::Number {
            keyed: String::new(),
            repeated: false,
        };
        let p = self.number_prompt();
        self.play(vec![p]);
    }

    fn ask_request(&mut self, number: String) {
        if self.settings.message.is_zero() {
            self.store(number, false);
            return;
        }
        self.state = State::Request {
            recording: false,
            number,
        };
        self.play(vec![
            Item::prompt(prompts::RECORD_REQUEST),
            Item::prompt(prompts::BEEP),
        ]);
    }

    fn store(&mut self, number: String, request: bool) {
        self.state = State::Storing;
        self.deadline = Some(self.last + STORE_LIMIT);
        self.out.push(Do::Store {
            callback_number: number,
            request,
        });
    }

    fn close(&mut self, items: Vec<Item>, now: Instant) {
        self.state = State::Closing;
        self.play(items);
        self.deadline = Some(now + CLOSING_LIMIT);
    }

    /// A key the caller pressed.
    pub fn key(&mut self, key: char, now: Instant) {
        self.last = now;
        match self.state.clone() {
            State::Choice { .. } => match key {
                '1' => {
                    self.out.push(Do::Chose(Choice::Wait, false));
                    self.state = State::Over;
                    self.deadline = None;
                    self.out.push(Do::Wait);
                }
                '2' => {
                    self.out.push(Do::Chose(Choice::Ticket, false));
                    self.ask_number();
                }
                // Anything else: the choice again.
                _ => self.play(vec![Item::prompt(prompts::CHOICE)]),
            },
            State::Number {
                mut keyed,
                repeated,
            } => match key {
                '#' => self.number_keyed(keyed),
                '*' => {
                    // Start over.
                    self.state = State::Number {
                        keyed: String::new(),
                        repeated,
                    };
                    let p = self.number_prompt();
                    self.play(vec![p]);
                }
                d if d.is_ascii_digit() => {
                    if keyed.is_empty() {
                        self.out.push(Do::Silence);
                    }
                    keyed.push(d);
                    self.state = State::Number { keyed, repeated };
                    // The next key within the choice's time-out.
                    self.deadline = Some(now + self.settings.timeout);
                }
                _ => {}
            },
            State::Request { recording, number } => {
                if key == '#' {
                    if recording {
                        self.out.push(Do::StopRecording);
                    }
                    // `#` during the prompt: no request left.
                    self.store(number, recording);
                }
            }
            State::Storing | State::Closing | State::Over => {}
        }
    }

    fn number_keyed(&mut self, keyed: String) {
        // 1 alone (then # or a pause): the number the caller calls from. A
        // mobile number starts with 1 too, so 1 waits for what follows.
        if keyed == "1"
            && let Some(own) = self.settings.caller_number.clone()
        {
            self.ask_request(own);
            return;
        }
        match super::model::callback_number(&keyed).filter(|_| keyed.len() <= MAX_KEYED) {
            Some(n) => self.ask_request(n),
            None => {
                let repeated = matches!(self.state, State::Number { repeated: true, .. });
                self.state = State::Number {
                    keyed: String::new(),
                    repeated,
                };
                let p = self.number_prompt();
                self.play(vec![Item::prompt(prompts::NUMBER_INVALID), p]);
            }
        }
    }

    /// What was playing has ended.
    pub fn prompt_done(&mut self, now: Instant) {
        self.last = now;
        match self.state.clone() {
            State::Choice { .. } | State::Number { .. } => {
                self.deadline = Some(now + self.settings.timeout);
            }
            State::Request {
                recording: false,
                number,
            } => {
                self.state = State::Request {
                    recording: true,
                    number,
                };
                let quiet = self.settings.message_silence;
                self.out.push(Do::Record {
                    end_on_silence: (!quiet.is_zero()).then_some(quiet),
                });
                self.deadline = Some(now + self.settings.message);
            }
            State::Closing => {
                self.state = State::Over;
                self.deadline = None;
                self.out.push(Do::HangUp);
            }
            State::Request {
                recording: true, ..
            }
            | State::Storing
            | State::Over => {}
        }
    }

    /// The caller has said nothing for [`Settings::message_silence`]: a
    /// request being recorded ends as with `#` — as no request at all if
    /// it never `spoke`. Anything else ignores it (it came late).
    pub fn quiet(&mut self, spoke: bool, now: Instant) {
        if let State::Request {
            recording: true,
            number,
        } = self.state.clone()
        {
            self.last = now;
            self.out.push(Do::StopRecording);
            self.store(number, spoke);
        }
    }

    /// The deadline passed.
    pub fn timer(&mut self, now: Instant) {
        if self.deadline.is_none_or(|d| now < d) {
            return;
        }
        self.last = now;
        self.deadline = None;
        match self.state.clone() {
            State::Choice { repeated: false } => {
                self.state = State::Choice { repeated: true };
                self.play(vec![Item::prompt(prompts::CHOICE)]);
            }
            State::Choice { repeated: true } => {
                self.out.push(Do::Chose(self.settings.default, true));
                match self.settings.default {
                    Choice::Wait => {
                        self.state = State::Over;
                        self.out.push(Do::Wait);
                    }
                    Choice::Ticket => self.ask_number(),
                }
            }
            State::Number { keyed, .. } if !keyed.is_empty() => self.number_keyed(keyed),
            State::Number {
                repeated: false, ..
            } => {
                self.state = State::Number {
                    keyed: String::new(),
                    repeated: true,
                };
                let p = self.number_prompt();
                self.play(vec![p]);
            }
            State::Number { repeated: true, .. } => match self.settings.caller_number.clone() {
                // Nothing keyed twice: the caller's own number, if it has one.
                Some(own) => self.ask_request(own),
                None => self.close(vec![Item::prompt(prompts::GOODBYE)], now),
            },
            State::Request {
                recording: true,
                number,
            } => {
                self.out.push(Do::StopRecording);
                self.store(number, true);
            }
            State::Closing => {
                self.state = State::Over;
                self.out.push(Do::HangUp);
            }
            // The request's prompt never reported its end: record anyway.
            State::Request {
                recording: false, ..
            } => self.prompt_done(now),
            State::Storing => {
                self.stored(Stored::Failed, now);
            }
            State::Over => {}
        }
    }

    /// The store's answer: only now is a number spoken. False when it
    /// came too late (the caller was told the store failed).
    pub fn stored(&mut self, result: Stored, now: Instant) -> bool {
        if self.state != State::Storing {
            return false;
        }
        self.last = now;
        let items = match result {
            Stored::New { id } if self.settings.promise.is_some() => vec![
                Item::prompt(prompts::CREATED),
                Item::Digits(id),
                Item::prompt(self.settings.promise.unwrap_or(prompts::IN_TURN)),
                Item::prompt(prompts::GOODBYE),
            ],
            Stored::New { id } => {
                let mut items = vec![Item::prompt(prompts::CREATED), Item::Digits(id)];
                items.push(Item::prompt(prompts::DUE_IN));
                items.extend(
                    crate::acd::announce::numeral(self.settings.due_working_days)
                        .into_iter()
                        .map(Item::prompt),
                );
                items.push(Item::prompt(prompts::DUE_DAYS));
                items.push(Item::prompt(prompts::GOODBYE));
                items
            }
            Stored::Existing { id } => vec![
                Item::prompt(prompts::EXISTING),
                Item::Digits(id),
                Item::prompt(prompts::GOODBYE),
            ],
            Stored::Failed => vec![
                Item::prompt(prompts::UNAVAILABLE),
                Item::prompt(prompts::GOODBYE),
            ],
        };
        self.close(items, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "13800138000";

    fn settings(own: Option<&str>) -> Settings {
        Settings {
            timeout: Duration::from_secs(8),
            default: Choice::Wait,
            message: Duration::from_secs(60),
            message_silence: Duration::from_secs(5),
            caller_number: own.map(str::to_string),
            due_working_days: 3,
            promise: None,
        }
    }

    fn p(name: &str) -> Item {
        Item::prompt(name)
    }

    /// Recording, listening for 5 s of quiet.
    const RECORD: Do = Do::Record {
        end_on_silence: Some(Duration::from_secs(5)),
    };

    /// A dialogue and its clock.
    struct Run {
        d: Dialogue,
        t0: Instant,
    }

    impl Run {
        fn new(own: Option<&str>) -> (Run, Vec<Do>) {
            let t0 = Instant::now();
            let mut d = Dialogue::start(settings(own), t0);
            let out = d.take();
            (Run { d, t0 }, out)
        }
        fn at(&self, secs: u64) -> Instant {
            self.t0 + Duration::from_secs(secs)
        }
        fn keys(&mut self, keys: &str, secs: u64) -> Vec<Do> {
            for k in keys.chars() {
                self.d.key(k, self.at(secs));
            }
            self.d.take()
        }
        fn done(&mut self, secs: u64) -> Vec<Do> {
            self.d.prompt_done(self.at(secs));
            self.d.take()
        }
        fn timer(&mut self, secs: u64) -> Vec<Do> {
            self.d.timer(self.at(secs));
            self.d.take()
        }
    }

    #[test]
    fn one_waits_for_the_leader() {
        let (mut r, out) = Run::new(Some(OWN));
        assert_eq!(out, [Do::Play(vec![p(prompts::CHOICE)])]);
        // Barge-in: the key is taken while the prompt plays.
        assert_eq!(r.keys("1", 2), [Do::Chose(Choice::Wait, false), Do::Wait]);
        assert!(r.d.is_over());
        assert_eq!(r.d.deadline(), None);
    }

    #[test]
    fn two_confirm_own_number_speak_then_hash_stores_and_only_then_the_number_is_read() {
        let (mut r, _) = Run::new(Some(OWN));
        assert_eq!(
            r.keys("2", 3),
            [
                Do::Chose(Choice::Ticket, false),
                Do::Play(vec![p(prompts::CONFIRM_NUMBER)])
            ]
        );
        // 1 then # (or a pause): its own number.
        assert_eq!(
            r.keys("1#", 5),
            [
                Do::Silence,
                Do::Play(vec![p(prompts::RECORD_REQUEST), p(prompts::BEEP)])
            ]
        );
        assert_eq!(r.done(8), [RECORD]);
        assert_eq!(r.d.deadline(), Some(r.at(68)), "at most message_seconds");
        assert_eq!(
            r.keys("#", 20),
            [
                Do::StopRecording,
                Do::Store {
                    callback_number: OWN.into(),
                    request: true
                }
            ]
        );
        // Nothing is said while the store works, whatever is keyed.
        assert_eq!(r.keys("123#", 21), []);
        assert_eq!(r.timer(30), []);
        r.d.stored(
            Stored::New {
                id: "2612010001".into(),
            },
            r.at(21),
        );
        assert_eq!(
            r.d.take(),
            [Do::Play(vec![
                p(prompts::CREATED),
                Item::Digits("2612010001".into()),
                p(prompts::DUE_IN),
                p("num_3"),
                p(prompts::DUE_DAYS),
                p(prompts::GOODBYE),
            ])]
        );
        assert_eq!(r.done(40), [Do::HangUp]);
        assert!(r.d.is_over());
    }

    #[test]
    fn a_withheld_caller_must_key_a_number_and_a_wrong_one_is_asked_again() {
        let (mut r, _) = Run::new(None);
        assert_eq!(
            r.keys("2", 1),
            [
                Do::Chose(Choice::Ticket, false),
                Do::Play(vec![p(prompts::KEY_NUMBER)])
            ]
        );
        // 1 is no shortcut without a number of its own: it is a digit.
        assert_eq!(r.keys("1", 2), [Do::Silence]);
        assert_eq!(
            r.keys("2345#", 3),
            [Do::Play(vec![
                p(prompts::NUMBER_INVALID),
                p(prompts::KEY_NUMBER)
            ])]
        );
        assert_eq!(r.keys("0734", 4), [Do::Silence]);
        assert_eq!(r.keys("*", 4), [Do::Play(vec![p(prompts::KEY_NUMBER)])]);
        let out = r.keys("13912345678#", 5);
        assert_eq!(
            out.last(),
            Some(&Do::Play(vec![
                p(prompts::RECORD_REQUEST),
                p(prompts::BEEP)
            ]))
        );
        r.done(6);
        // The request ends by itself at message_seconds.
        assert_eq!(
            r.timer(66),
            [
                Do::StopRecording,
                Do::Store {
                    callback_number: "13912345678".into(),
                    request: true
                }
            ]
        );
    }

    #[test]
    fn a_number_keyed_without_hash_is_taken_after_the_time_out() {
        let (mut r, _) = Run::new(Some(OWN));
        r.keys("2", 1);
        r.keys("07348888888", 3);
        let out = r.timer(11);
        assert_eq!(
            out,
            [Do::Play(vec![p(prompts::RECORD_REQUEST), p(prompts::BEEP)])]
        );
        // Hash during the request's prompt: no request.
        assert_eq!(
            r.keys("#", 12),
            [Do::Store {
                callback_number: "07348888888".into(),
                request: false
            }]
        );
    }

    #[test]
    fn no_key_repeats_the_choice_once_then_the_default() {
        let (mut r, _) = Run::new(Some(OWN));
        assert_eq!(r.timer(5), [], "nothing while the prompt plays");
        r.done(10);
        assert_eq!(r.d.deadline(), Some(r.at(18)));
        assert_eq!(r.timer(17), []);
        assert_eq!(r.timer(18), [Do::Play(vec![p(prompts::CHOICE)])]);
        r.done(28);
        assert_eq!(r.timer(36), [Do::Chose(Choice::Wait, true), Do::Wait]);
        // The default may be a ticket.
        let t0 = Instant::now();
        let mut d = Dialogue::start(
            Settings {
                default: Choice::Ticket,
                ..settings(Some(OWN))
            },
            t0,
        );
        d.take();
        d.prompt_done(t0);
        d.timer(t0 + Duration::from_secs(8));
        assert_eq!(d.take(), [Do::Play(vec![p(prompts::CHOICE)])]);
        d.prompt_done(t0 + Duration::from_secs(10));
        d.timer(t0 + Duration::from_secs(18));
        assert_eq!(
            d.take(),
            [
                Do::Chose(Choice::Ticket, true),
                Do::Play(vec![p(prompts::CONFIRM_NUMBER)])
            ]
        );
    }

    #[test]
    fn any_other_key_repeats_the_choice() {
        let (mut r, _) = Run::new(Some(OWN));
        for k in ["3", "0", "*", "#", "9"] {
            assert_eq!(r.keys(k, 1), [Do::Play(vec![p(prompts::CHOICE)])], "{k}");
        }
    }

    #[test]
    fn no_number_twice_takes_the_callers_own_or_says_goodbye_to_a_withheld_one() {
        let (mut r, _) = Run::new(Some(OWN));
        r.keys("2", 1);
        r.done(4);
        assert_eq!(r.timer(12), [Do::Play(vec![p(prompts::CONFIRM_NUMBER)])]);
        r.done(15);
        assert_eq!(
            r.timer(23),
            [Do::Play(vec![p(prompts::RECORD_REQUEST), p(prompts::BEEP)])]
        );
        let (mut r, _) = Run::new(None);
        r.keys("2", 1);
        r.done(4);
        r.timer(12);
        r.done(15);
        assert_eq!(r.timer(23), [Do::Play(vec![p(prompts::GOODBYE)])]);
        assert_eq!(r.done(25), [Do::HangUp]);
    }

    #[test]
    fn an_existing_ticket_is_told_again_and_a_failed_store_tells_no_number() {
        for (result, expected) in [
            (
                Stored::Existing {
                    id: "2611280007".into(),
                },
                vec![
                    p(prompts::EXISTING),
                    Item::Digits("2611280007".into()),
                    p(prompts::GOODBYE),
                ],
            ),
            (
                Stored::Failed,
                vec![p(prompts::UNAVAILABLE), p(prompts::GOODBYE)],
            ),
        ] {
            let (mut r, _) = Run::new(Some(OWN));
            r.keys("21#", 1);
            // # during the request's prompt: stored without one.
            r.keys("#", 2);
            assert!(r.d.stored(result, r.at(3)));
            assert_eq!(r.d.take(), [Do::Play(expected)]);
            // Should the goodbye never end, we hang up anyway.
            assert_eq!(r.timer(63), [Do::HangUp]);
        }
    }

    #[test]
    fn quiet_ends_the_request_as_hash_does_and_only_while_recording() {
        let (mut r, _) = Run::new(Some(OWN));
        r.keys("21#", 1);
        // Quiet during the request's prompt (nothing listens yet) is
        // ignored; so is a key other than #.
        r.d.quiet(true, r.at(2));
        assert_eq!(r.d.take(), []);
        assert_eq!(r.done(8), [RECORD]);
        assert_eq!(r.keys("5", 9), []);
        r.d.quiet(true, r.at(20));
        assert_eq!(
            r.d.take(),
            [
                Do::StopRecording,
                Do::Store {
                    callback_number: OWN.into(),
                    request: true
                }
            ]
        );
        // Late: the store works already, and a second quiet is nothing.
        r.d.quiet(true, r.at(21));
        assert_eq!(r.d.take(), []);
        assert!(r.d.stored(
            Stored::New {
                id: "2612010001".into()
            },
            r.at(22)
        ));

        // A caller who said nothing at all leaves no request.
        let (mut r, _) = Run::new(Some(OWN));
        r.keys("21#", 1);
        r.done(8);
        r.d.quiet(false, r.at(13));
        assert_eq!(
            r.d.take(),
            [
                Do::StopRecording,
                Do::Store {
                    callback_number: OWN.into(),
                    request: false
                }
            ]
        );
    }

    #[test]
    fn no_silence_is_listened_for_when_message_silence_seconds_is_zero() {
        let now = Instant::now();
        let mut d = Dialogue::start(
            Settings {
                message_silence: Duration::ZERO,
                ..settings(Some(OWN))
            },
            now,
        );
        for k in "21#".chars() {
            d.key(k, now);
        }
        d.take();
        d.prompt_done(now);
        assert_eq!(
            d.take(),
            [Do::Record {
                end_on_silence: None
            }]
        );
    }

    #[test]
    fn no_request_is_asked_for_when_message_seconds_is_zero() {
        let now = Instant::now();
        let mut d = Dialogue::start(
            Settings {
                message: Duration::ZERO,
                ..settings(Some(OWN))
            },
            now,
        );
        d.key('2', now);
        d.key('1', now);
        d.key('#', now);
        let out = d.take();
        assert_eq!(
            out.last(),
            Some(&Do::Store {
                callback_number: OWN.into(),
                request: false
            })
        );
    }

    #[test]
    fn a_waiting_caller_pressing_two_goes_to_the_ticket() {
        let mut d = Dialogue::ticket_instead(settings(Some(OWN)), Instant::now());
        assert_eq!(
            d.take(),
            [
                Do::Chose(Choice::Ticket, false),
                Do::Play(vec![p(prompts::CONFIRM_NUMBER)])
            ]
        );
    }

    #[test]
    fn a_mobile_number_keyed_after_one_is_a_number_not_the_callers_own() {
        let (mut r, _) = Run::new(Some(OWN));
        r.keys("2", 1);
        r.keys("13912345678#", 2);
        r.done(9);
        assert_eq!(
            r.keys("#", 10),
            [
                Do::StopRecording,
                Do::Store {
                    callback_number: "13912345678".into(),
                    request: true
                }
            ]
        );
        // 1 and a pause: its own.
        let (mut r, _) = Run::new(Some(OWN));
        r.keys("21", 1);
        assert_eq!(
            r.timer(9),
            [Do::Play(vec![p(prompts::RECORD_REQUEST), p(prompts::BEEP)])]
        );
    }

    #[test]
    fn a_prompt_whose_end_is_never_reported_does_not_hold_the_caller() {
        let (mut r, _) = Run::new(Some(OWN));
        // No prompt_done at all: the choice is repeated at the backstop,
        // then the default applies.
        assert_eq!(r.timer(44), []);
        assert_eq!(r.timer(45), [Do::Play(vec![p(prompts::CHOICE)])]);
        assert_eq!(r.timer(90), [Do::Chose(Choice::Wait, true), Do::Wait]);
        // The request's prompt: recording starts anyway.
        let (mut r, _) = Run::new(Some(OWN));
        r.keys("21#", 1);
        assert_eq!(r.timer(46), [RECORD]);
    }

    #[test]
    fn a_store_that_never_answers_is_told_as_failed_and_a_late_answer_tells_no_number() {
        let (mut r, _) = Run::new(Some(OWN));
        r.keys("21#", 1);
        r.keys("#", 2);
        assert_eq!(r.timer(21), []);
        assert_eq!(
            r.timer(22),
            [Do::Play(vec![p(prompts::UNAVAILABLE), p(prompts::GOODBYE)])]
        );
        assert!(!r.d.stored(
            Stored::New {
                id: "2612010001".into()
            },
            r.at(23)
        ));
        assert_eq!(r.d.take(), [], "the number is not read after all");
    }
}
