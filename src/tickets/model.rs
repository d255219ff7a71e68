//! A callback ticket (热线问政工单) and its life cycle, pure.
//!
//! A ticket is the promise made to a caller who would not wait: the unit
//! (责任单位) handles the request within its working days, and the hotline
//! calls the citizen back (回访). Its number is read aloud and keyed on
//! phones, so it is digits only: the local date `YYMMDD` and a serial of
//! at least four digits that the store allocates in the same transaction
//! as the ticket (unique across restarts, and across gateways sharing one
//! store).
//!
//! The statuses are the steps every 12345 centre uses: created → dispatched
//! (派发) → accepted (签收) → done (办结, with the unit's reply) → visited
//! (回访: satisfied closes it; unsatisfied reopens it, back to the unit);
//! beside them returned (退回: not the unit's, with a reason; an operator
//! gives it to another unit) and extended (延期: a new due date, asked for
//! before the old one passes). Overdue is derived, never stored: past due
//! and not done. [`transition`] is the one place that says which step may
//! follow which.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use std::fmt;

/// A ticket's number: `YYMMDD` (the local date it was created) and a
/// serial, zero-padded to four digits and longer past 9,999 in a day.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TicketId(String);

impl TicketId {
    pub fn new(date: NaiveDate, serial: u64) -> TicketId {
        TicketId(format!(
            "{:02}{:02}{:02}{serial:04}",
            date.year().rem_euclid(100),
            date.month(),
            date.day()
        ))
    }

    /// A well-formed number: ten digits or more, the first six a date.
    pub fn parse(s: &str) -> Option<TicketId> {
        if s.len() < 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().ok();
        let (yy, mm, dd) = (n(0..2)?, n(2..4)?, n(4..6)?);
        NaiveDate::from_ymd_opt(2000 + yy as i32, mm, dd)?;
        (s[6..].parse::<u64>().ok()? > 0).then(|| TicketId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The local date the ticket was created on, from its number.
    pub fn date(&self) -> NaiveDate {
        let n = |r: std::ops::Range<usize>| self.0[r].parse::<u32>().unwrap_or(1);
        NaiveDate::from_ymd_opt(2000 + n(0..2) as i32, n(2..4), n(4..6)).unwrap_or_default()
    }

    /// The day part (`YYMMDD`), the key of the serial counter.
    pub fn day(date: NaiveDate) -> String {
        format!(
            "{:02}{:02}{:02}",
            date.year().rem_euclid(100),
            date.month(),
            date.day()
        )
    }
}

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why the ticket exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A caller during a leader session chose a ticket over waiting.
    LeaderSession,
    /// A queued caller asked to be called back instead of waiting.
    QueueCallback,
    /// A queue overflowed to a callback.
    Overflow,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::LeaderSession => "leader_session",
            Kind::QueueCallback => "queue_callback",
            Kind::Overflow => "overflow",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::LeaderSession, Kind::QueueCallback, Kind::Overflow]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Created,
    /// 派发: sent (or offered, to units that pull) to the unit.
    Dispatched,
    /// 签收: the unit took it.
    Accepted,
    /// 办结: the unit replied.
    Done,
    /// 回访 and satisfied: closed.
    Visited,
    /// 回访 and not satisfied: back to the unit.
    Reopened,
    /// 退回: the unit says it is not theirs.
    Returned,
    /// 延期: the unit has a later due date.
    Extended,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Created,
        Status::Dispatched,
        Status::Accepted,
        Status::Done,
        Status::Visited,
        Status::Reopened,
        Status::Returned,
        Status::Extended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Dispatched => "dispatched",
            Status::Accepted => "accepted",
            Status::Done => "done",
            Status::Visited => "visited",
            Status::Reopened => "reopened",
            Status::Returned => "returned",
            Status::Extended => "extended",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Still the unit's or the hotline's to finish: anything not closed.
    pub fn is_open(self) -> bool {
        self != Status::Visited
    }

    /// The unit has replied (or it is closed): no longer overdue.
    pub fn is_finished(self) -> bool {
        matches!(self, Status::Done | Status::Visited)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step someone takes on a ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Sent to (or made visible to) the unit.
    Dispatch,
    Accept,
    Return {
        reason: String,
    },
    Extend {
        reason: String,
        due: DateTime<Utc>,
    },
    Done {
        reply: String,
    },
    /// The citizen's answer to the callback.
    Visit {
        satisfied: bool,
    },
    /// An operator gives a returned ticket to another unit.
    Reassign {
        unit: String,
    },
    /// A queue callback (回电) was made: the caller who would not wait was
    /// called back and talked to a seat. Such a ticket is no unit's item.
    CalledBack,
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Dispatch => "dispatch",
            Action::Accept => "accept",
            Action::Return { .. } => "return",
            Action::Extend { .. } => "extend",
            Action::Done { .. } => "done",
            Action::Visit { .. } => "visit",
            Action::Reassign { .. } => "reassign",
            Action::CalledBack => "called_back",
        }
    }
}

/// A step that may not be taken now, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("a ticket that is {from} cannot be {action}ed")]
    NotNow { from: Status, action: &'static str },
    #[error("an extension must be asked for before the ticket is due ({due})")]
    ExtendTooLate { due: DateTime<Utc> },
    #[error("the new due date ({new}) must be later than the current one ({due})")]
    ExtendNotLater {
        due: DateTime<Utc>,
        new: DateTime<Utc>,
    },
    #[error("a {0} needs a reason")]
    NoReason(&'static str),
    #[error("a unit is needed")]
    NoUnit,
}

/// What a step changes: the new status, and for some steps the due date
/// or the unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub status: Status,
    pub due: Option<DateTime<Utc>>,
    pub unit: Option<String>,
}

/// Whether `action` may be taken on a ticket that is `from` and due at
/// `due`, at `now`; what it makes of the ticket.
pub fn transition(
    from: Status,
    due: DateTime<Utc>,
    action: &Action,
    now: DateTime<Utc>,
) -> Result<Step, Refused> {
    use Status::*;
    let to = |status| Step {
        status,
        due: None,
        unit: None,
    };
    let refuse = || Refused::NotNow {
        from,
        action: action.name(),
    };
    match (from, action) {
        (Created | Reopened, Action::Dispatch) => Ok(to(Dispatched)),
        (Dispatched, Action::Accept) => Ok(to(Accepted)),
        (Dispatched | Accepted | Extended, Action::Return { reason }) => {
            if reason.trim().is_empty() {
                return Err(Refused::NoReason("return"));
            }
            Ok(to(Returned))
        }
        (Accepted | Extended, Action::Extend { reason, due: new }) => {
            if reason.trim().is_empty() {
                return Err(Refused::NoReason("extension"));
            }
            if now >= due {
                return Err(Refused::ExtendTooLate { due });
            }
            if *new <= due {
                return Err(Refused::ExtendNotLater { due, new: *new });
            }
            Ok(Step {
                status: Extended,
                due: Some(*new),
                unit: None,
            })
        }
        (Accepted | Extended, Action::Done { .. }) => Ok(to(Done)),
        (Done, Action::Visit { satisfied: true }) => Ok(to(Visited)),
        (Created, Action::CalledBack) => Ok(to(Visited)),
        (Done, Action::Visit { satisfied: false }) => Ok(to(Reopened)),
        (Returned, Action::Reassign { unit }) => {
            if unit.trim().is_empty() {
                return Err(Refused::NoUnit);
            }
            Ok(Step {
                status: Created,
                due: None,
                unit: Some(unit.clone()),
            })
        }
        _ => Err(refuse()),
    }
}

/// A ticket about to be created: everything but its number, status and
/// history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTicket {
    /// The local date it is created on: its number starts with it.
    pub day: NaiveDate,
    /// The number the citizen is called back on.
    pub callback_number: String,
    /// The caller's number as it arrived (may be empty: withheld).
    pub caller_number: String,
    pub dialed: String,
    pub line: String,
    pub unit: String,
    pub tag: String,
    pub kind: Kind,
    pub session: Option<SessionRef>,
    pub due: DateTime<Utc>,
    pub due_date: NaiveDate,
    /// The due date crossed a year the calendar does not cover.
    pub due_approximate: bool,
    /// The caller's spoken request (诉求), a WAV the ticket refers to.
    pub request_recording: Option<String>,
    pub call_id: String,
    /// The call's recordings (per leg), when it was recorded.
    pub recordings: Vec<String>,
}

/// What [`super::store::Store::create`] did: stored a new ticket, or
/// found the caller's open one for the same unit (`existing`), whose number
/// the caller is told again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub ticket: Ticket,
    pub existing: bool,
}

/// The leader session a ticket came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRef {
    pub unit: Option<String>,
    pub leader: Option<String>,
    pub title: Option<String>,
    pub date: NaiveDate,
}

/// A stored ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub id: TicketId,
    pub new: NewTicket,
    pub status: Status,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// The unit's reply (办结), once done.
    pub reply: Option<String>,
    /// Why it was returned or extended, last.
    pub reason: Option<String>,
}

impl Ticket {
    /// Past due and not done.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        now >= self.new.due && !self.status.is_finished()
    }
}

/// Which tickets to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub unit: Option<String>,
    pub status: Option<Status>,
    /// Only those overdue at this instant.
    pub overdue_at: Option<DateTime<Utc>>,
}

impl Filter {
    pub fn admits(&self, t: &Ticket) -> bool {
        self.unit.as_ref().is_none_or(|u| *u == t.new.unit)
            && self.status.is_none_or(|s| s == t.status)
            && self.overdue_at.is_none_or(|now| t.is_overdue(now))
    }
}

/// One step in a ticket's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub action: String,
    /// Who took it: `caller`, a unit, `operator`, `callback`.
    pub by: String,
    pub status: Status,
    pub detail: Option<String>,
}

/// A caller's number checked for a callback: a Chinese mobile (11 digits,
/// 1[3-9]…), or a fixed line with its area code (0 + 2 or 3 digits + 7 or
/// 8 digits: 10 to 12 digits in all). A `+86`/`0086` prefix is taken off.
/// `None`: not a number we can call back.
pub fn callback_number(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let digits = digits
        .strip_prefix("+86")
        .or_else(|| digits.strip_prefix("0086"))
        .unwrap_or(&digits);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let b = digits.as_bytes();
    let mobile = b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]);
    let fixed = (10..=12).contains(&b.len()) && b[0] == b'0' && b[1] != b'0';
    (mobile || fixed).then(|| digits.to_string())
}

/// A number shown to the public (the session index): the middle masked,
/// `138****0000`.
pub fn mask(number: &str) -> String {
    let n = number.chars().count();
    if n < 8 {
        return "*".repeat(n);
    }
    let chars: Vec<char> = number.chars().collect();
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[n - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(n - 7))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, h, 0, 0).unwrap()
    }

    #[test]
    fn ticket_numbers_are_the_date_and_a_serial_in_digits() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        assert_eq!(TicketId::new(d, 1).as_str(), "2612010001");
        assert_eq!(TicketId::new(d, 9999).as_str(), "2612019999");
        assert_eq!(TicketId::new(d, 12345).as_str(), "26120112345");
        assert_eq!(TicketId::day(d), "261201");
        for ok in ["2612010001", "26120112345"] {
            assert_eq!(TicketId::parse(ok).map(|t| t.0), Some(ok.to_string()));
            assert_eq!(TicketId::parse(ok).unwrap().date(), d);
        }
        for bad in [
            "",
            "261201000",
            "2613010001",
            "2612320001",
            "26120a0001",
            "2612010000",
        ] {
            assert_eq!(TicketId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_life_cycle_follows_the_standard_steps() {
        use Status::*;
        let due = at(20);
        let step = |from, a: Action| transition(from, due, &a, at(10)).map(|s| s.status);
        assert_eq!(step(Created, Action::Dispatch), Ok(Dispatched));
        assert_eq!(step(Dispatched, Action::Accept), Ok(Accepted));
        let reply = || Action::Done {
            reply: "已处理".into(),
        };
        assert_eq!(step(Accepted, reply()), Ok(Done));
        assert_eq!(step(Extended, reply()), Ok(Done));
        assert_eq!(step(Done, Action::Visit { satisfied: true }), Ok(Visited));
        assert_eq!(step(Done, Action::Visit { satisfied: false }), Ok(Reopened));
        assert_eq!(step(Reopened, Action::Dispatch), Ok(Dispatched));
        let ret = || Action::Return {
            reason: "非本单位职责".into(),
        };
        for from in [Dispatched, Accepted, Extended] {
            assert_eq!(step(from, ret()), Ok(Returned));
        }
        let s = transition(
            Returned,
            due,
            &Action::Reassign {
                unit: "市交通运输局".into(),
            },
            at(10),
        )
        .unwrap();
        assert_eq!(s.status, Created);
        assert_eq!(s.unit.as_deref(), Some("市交通运输局"));
    }

    #[test]
    fn every_step_out_of_place_is_refused() {
        let due = at(20);
        let actions = [
            Action::Dispatch,
            Action::Accept,
            Action::Return { reason: "x".into() },
            Action::Extend {
                reason: "x".into(),
                due: at(23),
            },
            Action::Done { reply: "x".into() },
            Action::Visit { satisfied: true },
            Action::Visit { satisfied: false },
            Action::Reassign { unit: "u".into() },
        ];
        let allowed: &[(Status, &str)] = &[
            (Status::Created, "dispatch"),
            (Status::Reopened, "dispatch"),
            (Status::Dispatched, "accept"),
            (Status::Dispatched, "return"),
            (Status::Accepted, "return"),
            (Status::Extended, "return"),
            (Status::Accepted, "extend"),
            (Status::Extended, "extend"),
            (Status::Accepted, "done"),
            (Status::Extended, "done"),
            (Status::Done, "visit"),
            (Status::Returned, "reassign"),
        ];
        for from in Status::ALL {
            for a in &actions {
                let ok = transition(from, due, a, at(10)).is_ok();
                let expected = allowed.contains(&(from, a.name()));
                assert_eq!(ok, expected, "{from} + {}", a.name());
                if !expected {
                    assert_eq!(
                        transition(from, due, a, at(10)),
                        Err(Refused::NotNow {
                            from,
                            action: a.name()
                        })
                    );
                }
            }
        }
        // Visited is the only closed status.
        assert!(
            Status::ALL
                .iter()
                .all(|s| s.is_open() == (*s != Status::Visited))
        );
    }

    #[test]
    fn an_extension_needs_a_reason_a_later_date_and_to_come_before_the_due_date() {
        let due = at(20);
        let ext = |reason: &str, new| Action::Extend {
            reason: reason.into(),
            due: new,
        };
        let s = transition(Status::Accepted, due, &ext("需现场核查", at(23)), at(10)).unwrap();
        assert_eq!((s.status, s.due), (Status::Extended, Some(at(23))));
        assert_eq!(
            transition(Status::Accepted, due, &ext(" ", at(23)), at(10)),
            Err(Refused::NoReason("extension"))
        );
        assert_eq!(
            transition(Status::Accepted, due, &ext("x", at(20)), at(10)),
            Err(Refused::ExtendNotLater { due, new: at(20) })
        );
        assert_eq!(
            transition(Status::Accepted, due, &ext("x", at(23)), at(20)),
            Err(Refused::ExtendTooLate { due })
        );
        assert_eq!(
            transition(
                Status::Dispatched,
                due,
                &Action::Return { reason: "".into() },
                at(10)
            ),
            Err(Refused::NoReason("return"))
        );
    }

    #[test]
    fn overdue_is_past_due_and_not_done() {
        let t = |status| Ticket {
            id: TicketId("2612010001".into()),
            new: sample(),
            status,
            created: at(1),
            updated: at(1),
            reply: None,
            reason: None,
        };
        let due = sample().due;
        let after = due + chrono::Duration::seconds(1);
        assert!(!t(Status::Accepted).is_overdue(due - chrono::Duration::seconds(1)));
        assert!(t(Status::Accepted).is_overdue(due));
        assert!(t(Status::Reopened).is_overdue(after));
        assert!(!t(Status::Done).is_overdue(after));
        assert!(!t(Status::Visited).is_overdue(after));
    }

    pub(crate) fn sample() -> NewTicket {
        NewTicket {
            day: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            callback_number: "13800138000".into(),
            caller_number: "13800138000".into(),
            dialed: "12345".into(),
            line: "12345".into(),
            unit: "市交通运输局".into(),
            tag: "热线问政".into(),
            kind: Kind::LeaderSession,
            session: None,
            due: at(23),
            due_date: NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
            due_approximate: false,
            request_recording: None,
            call_id: "c1".into(),
            recordings: Vec::new(),
        }
    }

    #[test]
    fn callback_numbers_are_chinese_mobiles_or_fixed_lines_with_area_code() {
        for (raw, ok) in [
            ("13800138000", Some("13800138000")),
            ("+8613800138000", Some("13800138000")),
            ("008619912345678", Some("19912345678")),
            ("0734-8888888", Some("07348888888")),
            ("01088888888", Some("01088888888")),
            ("0755 88888888", Some("075588888888")),
            ("12800138000", None),
            ("1380013800", None),
            ("8888888", None),
            ("00088888888", None),
            ("anonymous", None),
            ("", None),
        ] {
            assert_eq!(callback_number(raw).as_deref(), ok, "{raw}");
        }
    }

    #[test]
    fn public_numbers_are_masked_in_the_middle() {
        assert_eq!(mask("13800000000"), "138****0000");
        assert_eq!(mask("07348888888"), "073****8888");
        assert_eq!(mask("12345678"), "123*5678");
        assert_eq!(mask("1234567"), "*******");
        assert_eq!(mask("12345"), "*****");
    }
}
