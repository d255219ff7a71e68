//! The ticket store's conformance: the same cases against SQLite (a file in
//! a temporary folder) and a real PostgreSQL that the test starts itself
//! (`initdb` and `pg_ctl` in a temporary folder, on a loopback port) and
//! stops. PostgreSQL must be installed (`tests/run.sh` installs it): the
//! PostgreSQL tests fail, never skip, without it.

mod support;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use hotline::tickets::model::{Action, Filter, Kind, NewTicket, Refused, Status, TicketId};
use hotline::tickets::store::DispatchResult;
use hotline::tickets::{Store, StoreError};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use support::free_port;

fn at(day: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, day, h, 0, 0).unwrap()
}

fn new(caller: &str, unit: &str) -> NewTicket {
    NewTicket {
        day: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        callback_number: caller.into(),
        caller_number: caller.into(),
        dialed: "12345".into(),
        line: "12345".into(),
        unit: unit.into(),
        tag: "热线问政".into(),
        kind: Kind::LeaderSession,
        session: Some(hotline::tickets::model::SessionRef {
            unit: Some(unit.into()),
            leader: Some("李兴志".into()),
            title: Some("局长".into()),
            date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        }),
        due: at(4, 16),
        due_date: NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
        due_approximate: false,
        request_recording: Some("requests/2612010001.wav".into()),
        call_id: "a-leg@carrier".into(),
        recordings: vec!["rec/caller.wav".into(), "rec/far.wav".into()],
    }
}

const UNIT: &str = "市交通运输局";

/// Every case, against a store from `open` (a fresh, empty one each call;
/// `reopen` gives the same store again).
fn conformance(open: &dyn Fn() -> Arc<dyn Store>, reopen: &dyn Fn() -> Arc<dyn Store>) {
    let store = open();
    // A new ticket: numbered by its day and a serial, stored whole.
    let first = store.create(&new("13800138000", UNIT), at(1, 2)).unwrap();
    assert!(!first.existing);
    assert_eq!(first.ticket.id.as_str(), "2612010001");
    assert_eq!(first.ticket.status, Status::Created);
    let got = store.get(&first.ticket.id).unwrap().expect("stored");
    assert_eq!(got, first.ticket, "read back as written");
    assert_eq!(got.new, new("13800138000", UNIT));
    let second = store.create(&new("13900139000", UNIT), at(1, 3)).unwrap();
    assert_eq!(second.ticket.id.as_str(), "2612010002");
    // The same caller and unit while the first is open: the same ticket.
    let mut repeated = new("13800138000", UNIT);
    repeated.request_recording = Some("requests/2612010001-again.wav".into());
    let again = store.create(&repeated, at(1, 4)).unwrap();
    assert!(again.existing);
    assert_eq!(again.ticket.id, first.ticket.id);
    // What it said again is kept with the ticket it has.
    let told = store.history(&first.ticket.id).unwrap();
    assert_eq!(told.len(), 2, "{told:?}");
    assert_eq!(told[1].action, "request");
    assert_eq!(told[1].by, "caller");
    assert_eq!(told[1].status, Status::Created);
    assert_eq!(
        told[1].detail.as_deref(),
        Some("requests/2612010001-again.wav")
    );
    // Without a request, nothing is added.
    let mut silent = new("13800138000", UNIT);
    silent.request_recording = None;
    assert!(store.create(&silent, at(1, 4)).unwrap().existing);
    assert_eq!(store.history(&first.ticket.id).unwrap().len(), 2);
    // Another unit: a ticket of its own.
    let other = store
        .create(&new("13800138000", "市卫生健康委员会"), at(1, 5))
        .unwrap();
    assert!(!other.existing);
    assert_eq!(other.ticket.id.as_str(), "2612010003");
    // Another day: the serial starts again.
    let mut next_day = new("13700137000", UNIT);
    next_day.day = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
    let t = store.create(&next_day, at(2, 1)).unwrap();
    assert_eq!(t.ticket.id.as_str(), "2612020001");

    // The life cycle, step by step, each recorded.
    let id = first.ticket.id.clone();
    let step = |a: Action, by: &str, h: u32| store.apply(&id, &a, by, at(2, h));
    assert_eq!(
        step(Action::Dispatch, "dispatcher", 1).unwrap().status,
        Status::Dispatched
    );
    // Out of order: refused, nothing changed.
    let refused = step(Action::Done { reply: "x".into() }, UNIT, 2);
    assert!(
        matches!(
            refused,
            Err(StoreError::Refused(Refused::NotNow {
                from: Status::Dispatched,
                ..
            }))
        ),
        "{refused:?}"
    );
    assert_eq!(store.get(&id).unwrap().unwrap().status, Status::Dispatched);
    assert_eq!(
        step(Action::Accept, UNIT, 3).unwrap().status,
        Status::Accepted
    );
    let extended = step(
        Action::Extend {
            reason: "需现场核查".into(),
            due: at(8, 16),
        },
        UNIT,
        4,
    )
    .unwrap();
    assert_eq!(extended.status, Status::Extended);
    assert_eq!(extended.new.due, at(8, 16));
    assert_eq!(extended.reason.as_deref(), Some("需现场核查"));
    let done = step(
        Action::Done {
            reply: "已协调公交公司调整班次".into(),
        },
        UNIT,
        5,
    )
    .unwrap();
    assert_eq!(done.status, Status::Done);
    assert_eq!(done.reply.as_deref(), Some("已协调公交公司调整班次"));
    let reopened = step(Action::Visit { satisfied: false }, "callback", 6).unwrap();
    assert_eq!(reopened.status, Status::Reopened);
    assert_eq!(
        step(Action::Dispatch, "dispatcher", 7).unwrap().status,
        Status::Dispatched
    );
    step(Action::Accept, UNIT, 8).unwrap();
    step(
        Action::Done {
            reply: "已再次处理".into(),
        },
        UNIT,
        9,
    )
    .unwrap();
    let closed = step(Action::Visit { satisfied: true }, "callback", 10).unwrap();
    assert_eq!(closed.status, Status::Visited);
    let history = store.history(&id).unwrap();
    let actions: Vec<(&str, Status)> = history
        .iter()
        .map(|e| (e.action.as_str(), e.status))
        .collect();
    assert_eq!(
        actions,
        [
            ("create", Status::Created),
            ("request", Status::Created),
            ("dispatch", Status::Dispatched),
            ("accept", Status::Accepted),
            ("extend", Status::Extended),
            ("done", Status::Done),
            ("visit", Status::Reopened),
            ("dispatch", Status::Dispatched),
            ("accept", Status::Accepted),
            ("done", Status::Done),
            ("visit", Status::Visited),
        ]
    );
    assert_eq!(history[4].by, UNIT);
    assert_eq!(history[6].detail.as_deref(), Some("unsatisfied"));
    // Closed: the caller's next request is a new ticket.
    let fresh = store.create(&new("13800138000", UNIT), at(2, 11)).unwrap();
    assert!(!fresh.existing);

    // Returned, then given to another unit by an operator.
    let id2 = second.ticket.id.clone();
    store
        .apply(&id2, &Action::Dispatch, "dispatcher", at(1, 6))
        .unwrap();
    let returned = store
        .apply(
            &id2,
            &Action::Return {
                reason: "非本单位职责".into(),
            },
            UNIT,
            at(1, 7),
        )
        .unwrap();
    assert_eq!(returned.status, Status::Returned);
    let moved = store
        .apply(
            &id2,
            &Action::Reassign {
                unit: "市城市管理局".into(),
            },
            "operator",
            at(1, 8),
        )
        .unwrap();
    assert_eq!(
        (moved.status, moved.new.unit.as_str()),
        (Status::Created, "市城市管理局")
    );

    // Lists: by unit, by status, overdue (past due, not done).
    let all = store.list(&Filter::default()).unwrap();
    assert_eq!(all.len(), 5);
    assert!(
        all.windows(2).all(|w| w[0].created <= w[1].created),
        "oldest first"
    );
    let unit = store
        .list(&Filter {
            unit: Some(UNIT.into()),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(unit.len(), 3, "{unit:#?}");
    let created = store
        .list(&Filter {
            status: Some(Status::Created),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(created.len(), 4);
    let overdue = store
        .list(&Filter {
            overdue_at: Some(at(5, 0)),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(
        overdue.len(),
        4,
        "all but the closed one are past due on the 5th"
    );
    assert!(overdue.iter().all(|t| t.is_overdue(at(5, 0))));
    let none = store
        .list(&Filter {
            overdue_at: Some(at(4, 15)),
            ..Filter::default()
        })
        .unwrap();
    assert!(none.is_empty(), "{none:#?}");
    // The gauges' counts: open per unit, and of those overdue.
    let mut counts = store.open_by_unit(at(5, 0)).unwrap();
    counts.sort();
    let mut want = vec![
        ("市卫生健康委员会".to_string(), 1, 1),
        ("市城市管理局".to_string(), 1, 1),
        (UNIT.to_string(), 2, 2),
    ];
    want.sort();
    assert_eq!(counts, want);
    let early = store.open_by_unit(at(4, 15)).unwrap();
    assert!(
        early.iter().all(|(_, _, overdue)| *overdue == 0),
        "{early:?}"
    );

    // Unknown numbers.
    let unknown = TicketId::parse("2612019999").unwrap();
    assert_eq!(store.get(&unknown).unwrap(), None);
    assert!(matches!(
        store.apply(&unknown, &Action::Accept, UNIT, at(2, 1)),
        Err(StoreError::NotFound(_))
    ));

    // Opened again (a restart): everything is there, the serial goes on.
    drop(store);
    let store = reopen();
    assert_eq!(store.list(&Filter::default()).unwrap().len(), 5);
    let after = store.create(&new("13600136000", UNIT), at(1, 9)).unwrap();
    assert_eq!(after.ticket.id.as_str(), "2612010005");

    // Writers at once: every number distinct; one caller gets one ticket.
    let store: Arc<dyn Store> = store;
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..15)
                    .map(|i| {
                        let caller = format!("1350000{t}{i:03}");
                        let a = store.create(&new(&caller, UNIT), at(1, 10)).unwrap();
                        let b = store.create(&new("18800000000", UNIT), at(1, 10)).unwrap();
                        (a.ticket.id, b.ticket.id)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ids = Vec::new();
    let mut same = Vec::new();
    for t in threads {
        for (a, b) in t.join().unwrap() {
            ids.push(a);
            same.push(b);
        }
    }
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "no number handed out twice");
    same.dedup();
    assert_eq!(same.len(), 1, "one caller, one open ticket: {same:?}");
    assert!(!ids.contains(&same[0]));
}

/// Call records: kept once per call (the same call again is ignored),
/// read back whole by the start's range, oldest first, the end left out.
fn records_conformance(store: &dyn Store) {
    use hotline::records::{CallRecord, Handoff};
    let record = |call: u64, started: DateTime<Utc>| CallRecord {
        call_id: format!("{call}@carrier"),
        call,
        started,
        ended: started + chrono::Duration::seconds(90),
        caller: Some("13800138000".into()),
        dialed: "12345".into(),
        line: "12345".into(),
        kind: "queue".into(),
        origin: "trunk".into(),
        unit: Some("市民政局".into()),
        queue: Some("general".into()),
        wait: Some(12.5),
        seats_offered: vec!["8001".into(), "8002".into()],
        answered_by: Some("8002".into()),
        talk: Some(70.25),
        handoffs: vec![Handoff {
            kind: "attended".into(),
            seat: "8002".into(),
            number: "12366".into(),
            target: "city_sub_centre".into(),
            result: "completed".into(),
        }],
        recordings: vec!["recordings/a.wav".into()],
        result: "completed".into(),
        end_reason: "caller_bye".into(),
        ticket: None,
    };
    let (a, b, c) = (
        record(1, at(1, 9)),
        record(2, at(2, 9)),
        record(3, at(3, 9)),
    );
    // The same call again, changed: the first record stays.
    let mut later = a.clone();
    later.result = "failed".into();
    for r in [&b, &a, &c, &later] {
        store.record_call(r).unwrap();
    }
    assert_eq!(
        store.call_records(at(1, 0), at(3, 9)).unwrap(),
        vec![a.clone(), b]
    );
    assert_eq!(store.call_records(at(3, 9), at(4, 0)).unwrap(), vec![c]);
    assert!(store.call_records(at(5, 0), at(6, 0)).unwrap().is_empty());
}

/// The outbox: each new ticket has a delivery waiting; a retry waits for
/// its time, a delivery (or a unit that pulls) dispatches the ticket in the
/// same transaction, a dead one leaves it for an operator; a reopened
/// ticket is delivered again under a new id.
fn outbox_conformance(store: &dyn Store) {
    let a = store
        .create(&new("13800138000", UNIT), at(1, 2))
        .unwrap()
        .ticket;
    let b = store
        .create(&new("13900139000", UNIT), at(1, 2))
        .unwrap()
        .ticket;
    let c = store
        .create(&new("13700137000", UNIT), at(1, 2))
        .unwrap()
        .ticket;
    // Someone keying a stranger's number is not told the stranger's
    // ticket: a ticket of its own.
    let mut keyed = new("13800138000", UNIT);
    keyed.caller_number = "13500135000".into();
    let stranger = store.create(&keyed, at(1, 2)).unwrap();
    assert!(!stranger.existing);
    assert_ne!(stranger.ticket.id, a.id);
    let stranger_delivery = format!("msg_{}_1", stranger.ticket.id);
    store
        .dispatched(&stranger_delivery, &DispatchResult::Pulled, at(1, 2))
        .unwrap();
    // Settled once: a second dispatcher's late word changes nothing.
    store
        .dispatched(
            &stranger_delivery,
            &DispatchResult::Dead {
                error: "late".into(),
            },
            at(1, 2),
        )
        .unwrap();
    assert_eq!(
        store.dispatches(&stranger.ticket.id).unwrap()[0].state,
        "pull"
    );
    let due = store.pending_dispatches(at(1, 3), 10).unwrap();
    assert_eq!(due.len(), 3);
    assert_eq!(due[0].webhook_id, format!("msg_{}_1", a.id));
    assert_eq!(
        (due[0].event.as_str(), due[0].state.as_str()),
        ("created", "pending")
    );
    assert_eq!(
        store.pending_dispatches(at(1, 3), 2).unwrap().len(),
        2,
        "a limit"
    );
    assert!(
        store.pending_dispatches(at(1, 1), 10).unwrap().is_empty(),
        "not before it exists"
    );
    // A retry: not due again before its time.
    store
        .dispatched(
            &due[0].webhook_id,
            &DispatchResult::Retry {
                at: at(1, 5),
                error: "HTTP 503".into(),
            },
            at(1, 3),
        )
        .unwrap();
    assert_eq!(store.pending_dispatches(at(1, 4), 10).unwrap().len(), 2);
    let again = store.pending_dispatches(at(1, 5), 10).unwrap();
    assert_eq!(again.len(), 3);
    let first = again.iter().find(|d| d.ticket_id == a.id.as_str()).unwrap();
    assert_eq!(
        (first.attempts, first.last_error.as_deref()),
        (1, Some("HTTP 503"))
    );
    assert_eq!(store.get(&a.id).unwrap().unwrap().status, Status::Created);
    // Delivered: the ticket is dispatched, with the step in its history.
    store
        .dispatched(&first.webhook_id, &DispatchResult::Delivered, at(1, 6))
        .unwrap();
    assert_eq!(
        store.get(&a.id).unwrap().unwrap().status,
        Status::Dispatched
    );
    let h = store.history(&a.id).unwrap();
    assert_eq!(
        (h[1].action.as_str(), h[1].by.as_str()),
        ("dispatch", "dispatcher")
    );
    let d = &store.dispatches(&a.id).unwrap()[0];
    assert_eq!((d.state.as_str(), d.attempts), ("delivered", 2));
    // A unit without an endpoint pulls: dispatched too.
    let bd = &store.dispatches(&b.id).unwrap()[0];
    store
        .dispatched(&bd.webhook_id, &DispatchResult::Pulled, at(1, 6))
        .unwrap();
    assert_eq!(
        store.get(&b.id).unwrap().unwrap().status,
        Status::Dispatched
    );
    assert_eq!(store.dispatches(&b.id).unwrap()[0].state, "pull");
    // Dead: visible, the ticket not dispatched.
    let cd = &store.dispatches(&c.id).unwrap()[0];
    store
        .dispatched(
            &cd.webhook_id,
            &DispatchResult::Dead {
                error: "HTTP 404".into(),
            },
            at(1, 6),
        )
        .unwrap();
    assert_eq!(store.get(&c.id).unwrap().unwrap().status, Status::Created);
    assert_eq!(store.dispatches(&c.id).unwrap()[0].state, "dead");
    assert!(store.pending_dispatches(at(2, 0), 10).unwrap().is_empty());
    // An operator sends it again: pending, its attempts afresh.
    assert_eq!(store.redeliver(&c.id, at(1, 7)).unwrap(), 1);
    assert_eq!(
        store.redeliver(&c.id, at(1, 7)).unwrap(),
        0,
        "nothing dead left"
    );
    let again = store.pending_dispatches(at(1, 7), 10).unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 0));
    store
        .dispatched(&again[0].webhook_id, &DispatchResult::Delivered, at(1, 7))
        .unwrap();
    assert_eq!(
        store.get(&c.id).unwrap().unwrap().status,
        Status::Dispatched
    );
    // Reopened after an unsatisfied callback: delivered again, a new id.
    for (act, h) in [
        (Action::Accept, 7),
        (Action::Done { reply: "x".into() }, 8),
        (Action::Visit { satisfied: false }, 9),
    ] {
        store.apply(&a.id, &act, UNIT, at(1, h)).unwrap();
    }
    let due = store.pending_dispatches(at(1, 10), 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].webhook_id, format!("msg_{}_2", a.id));
    assert_eq!(due[0].event, "reopened");
    assert!(matches!(
        store.dispatched("msg_nope", &DispatchResult::Delivered, at(1, 10)),
        Err(StoreError::NotFound(_))
    ));
}

/// Callbacks (回访): a reply makes one due at once, in the same
/// transaction; one gateway claims it (a second claim of the same job
/// fails); attempts are recorded and rescheduled; the citizen's answer
/// visits the ticket in the same transaction; a lease run out makes the
/// job due again; a visit by hand finishes it; a reopened ticket done again
/// is owed a callback in a new round.
fn callback_conformance(store: &dyn Store) {
    use hotline::tickets::callback::Outcome;
    let a = store
        .create(&new("13800138000", UNIT), at(1, 2))
        .unwrap()
        .ticket;
    let b = store
        .create(&new("13900139000", UNIT), at(1, 2))
        .unwrap()
        .ticket;
    assert!(store.due_callbacks(at(2, 0), 10).unwrap().is_empty());
    for t in [&a, &b] {
        store
            .apply(&t.id, &Action::Dispatch, "dispatcher", at(1, 3))
            .unwrap();
        store.apply(&t.id, &Action::Accept, UNIT, at(1, 3)).unwrap();
        store
            .apply(
                &t.id,
                &Action::Done {
                    reply: "修好了".into(),
                },
                UNIT,
                at(1, 4),
            )
            .unwrap();
    }
    let due = store.due_callbacks(at(1, 4), 10).unwrap();
    assert_eq!(due.len(), 2, "{due:?}");
    let job = due
        .iter()
        .find(|j| j.ticket_id == a.id.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (job.round, job.attempts, job.number.as_str()),
        (1, 0, "13800138000")
    );
    assert_eq!(job.state, "pending");
    // Claimed once: the second gateway reading the same row loses.
    let held = store
        .claim_callback(&job, at(1, 6), at(1, 4))
        .unwrap()
        .expect("claimed");
    assert_eq!(
        (held.state.as_str(), held.lease_until),
        ("calling", Some(at(1, 6)))
    );
    assert!(
        store
            .claim_callback(&job, at(1, 6), at(1, 4))
            .unwrap()
            .is_none()
    );
    assert_eq!(store.due_callbacks(at(1, 5), 10).unwrap().len(), 1);
    // No answer: recorded, due again later.
    store
        .callback_attempted(
            &held,
            Outcome::NoAnswer,
            Some("8001"),
            Some(at(1, 7)),
            at(1, 5),
        )
        .unwrap();
    assert!(
        store
            .due_callbacks(at(1, 6), 10)
            .unwrap()
            .iter()
            .all(|j| j.ticket_id != a.id.as_str())
    );
    let job = store
        .due_callbacks(at(1, 7), 10)
        .unwrap()
        .into_iter()
        .find(|j| j.ticket_id == a.id.as_str())
        .unwrap();
    assert_eq!(
        (job.attempts, job.result.as_deref()),
        (1, Some("no_answer"))
    );
    // A seat lost before ringing costs no attempt.
    let held = store
        .claim_callback(&job, at(1, 9), at(1, 7))
        .unwrap()
        .unwrap();
    store
        .callback_attempted(&held, Outcome::NoSeat, None, Some(at(1, 7)), at(1, 7))
        .unwrap();
    let job = store
        .due_callbacks(at(1, 7), 10)
        .unwrap()
        .into_iter()
        .find(|j| j.ticket_id == a.id.as_str())
        .unwrap();
    assert_eq!(job.attempts, 1);
    // Satisfied: the ticket is visited in the same transaction, the job over.
    let held = store
        .claim_callback(&job, at(1, 9), at(1, 7))
        .unwrap()
        .unwrap();
    store
        .callback_attempted(&held, Outcome::Satisfied, Some("8002"), None, at(1, 8))
        .unwrap();
    assert_eq!(store.get(&a.id).unwrap().unwrap().status, Status::Visited);
    let history = store.history(&a.id).unwrap();
    let last = history.last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.by.as_str()),
        ("visit", "callback")
    );
    let (jobs, attempts) = store.callbacks(&a.id).unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].state.as_str(), jobs[0].attempts), ("finished", 2));
    let tried: Vec<(i64, &str, Option<&str>)> = attempts
        .iter()
        .map(|x| (x.attempt, x.result.as_str(), x.seat.as_deref()))
        .collect();
    assert_eq!(
        tried,
        vec![
            (1, "no_answer", Some("8001")),
            (2, "satisfied", Some("8002"))
        ]
    );
    // A gateway that stopped mid-call: its lease runs out, the job is due.
    let job_b = store.due_callbacks(at(1, 8), 10).unwrap().pop().unwrap();
    assert_eq!(job_b.ticket_id, b.id.as_str());
    let first = store
        .claim_callback(&job_b, at(1, 10), at(1, 8))
        .unwrap()
        .unwrap();
    assert!(store.due_callbacks(at(1, 9), 10).unwrap().is_empty());
    let stale = store.due_callbacks(at(1, 10), 10).unwrap().pop().unwrap();
    assert_eq!((stale.state.as_str(), stale.attempts), ("calling", 0));
    let second = store
        .claim_callback(&stale, at(1, 12), at(1, 10))
        .unwrap()
        .unwrap();
    // The first gateway, back after its lease ran out, moves nothing: the
    // job is the second's now.
    store
        .callback_attempted(&first, Outcome::Busy, None, Some(at(1, 20)), at(1, 11))
        .unwrap();
    let (jobs, attempts) = store.callbacks(&b.id).unwrap();
    assert_eq!((jobs[0].state.as_str(), jobs[0].attempts), ("calling", 0));
    assert!(attempts.is_empty());
    // Unsatisfied: reopened (back to the unit); done again, a new round.
    store
        .callback_attempted(&second, Outcome::Unsatisfied, Some("8001"), None, at(1, 11))
        .unwrap();
    assert_eq!(store.get(&b.id).unwrap().unwrap().status, Status::Reopened);
    store
        .apply(&b.id, &Action::Dispatch, "dispatcher", at(1, 12))
        .unwrap();
    store
        .apply(&b.id, &Action::Accept, UNIT, at(1, 12))
        .unwrap();
    store
        .apply(
            &b.id,
            &Action::Done {
                reply: "再次处理".into(),
            },
            UNIT,
            at(1, 12),
        )
        .unwrap();
    let again = store.due_callbacks(at(1, 12), 10).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].round, again[0].attempts), (2, 0));
    // Visited by hand (an operator called): nothing owed any more, and an
    // attempt finishing afterwards moves nothing.
    store
        .apply(
            &b.id,
            &Action::Visit { satisfied: true },
            "operator",
            at(1, 13),
        )
        .unwrap();
    assert!(store.due_callbacks(at(1, 14), 10).unwrap().is_empty());
    store
        .callback_attempted(&again[0], Outcome::Unsatisfied, None, None, at(1, 14))
        .unwrap();
    assert_eq!(store.get(&b.id).unwrap().unwrap().status, Status::Visited);
    let (jobs, _) = store.callbacks(&b.id).unwrap();
    assert_eq!(jobs[1].result.as_deref(), Some("satisfied"));
    // Attempts used up: given up, visible, no longer due.
    let c = store
        .create(&new("13700137000", UNIT), at(1, 2))
        .unwrap()
        .ticket;
    store
        .apply(&c.id, &Action::Dispatch, "dispatcher", at(1, 15))
        .unwrap();
    store
        .apply(&c.id, &Action::Accept, UNIT, at(1, 15))
        .unwrap();
    store
        .apply(&c.id, &Action::Done { reply: "x".into() }, UNIT, at(1, 15))
        .unwrap();
    let job_c = store.due_callbacks(at(1, 15), 10).unwrap().pop().unwrap();
    store
        .callback_attempted(&job_c, Outcome::Busy, None, None, at(1, 16))
        .unwrap();
    assert!(store.due_callbacks(at(2, 0), 10).unwrap().is_empty());
    let (jobs, _) = store.callbacks(&c.id).unwrap();
    assert_eq!(
        (jobs[0].state.as_str(), jobs[0].result.as_deref()),
        ("given_up", Some("busy"))
    );
    assert_eq!(store.get(&c.id).unwrap().unwrap().status, Status::Done);

    // A queue callback (回电 in the caller's turn): no unit's item (nothing
    // delivered), its job held at once by the gateway that took the call;
    // a caller asking again while it is owed is told the same ticket, and
    // may ask anew once it was given up; made, the ticket is closed.
    let mut q = new("13600136000", UNIT);
    q.kind = Kind::QueueCallback;
    let qt = store.create(&q, at(2, 9)).unwrap();
    assert!(!qt.existing);
    assert!(store.dispatches(&qt.ticket.id).unwrap().is_empty());
    let (jobs, _) = store.callbacks(&qt.ticket.id).unwrap();
    assert_eq!(
        (jobs[0].kind.as_str(), jobs[0].state.as_str()),
        ("queue", "calling")
    );
    let again = store.create(&q, at(2, 9)).unwrap();
    assert!(again.existing);
    assert_eq!(again.ticket.id, qt.ticket.id);
    // Not told a leader session's ticket of the same caller instead.
    let leader = store.create(&new("13600136000", UNIT), at(2, 9)).unwrap();
    assert!(!leader.existing);
    store
        .callback_attempted(&jobs[0], Outcome::Busy, None, None, at(2, 10))
        .unwrap();
    let fresh = store.create(&q, at(2, 11)).unwrap();
    assert!(!fresh.existing, "the first was given up");
    let (jobs, _) = store.callbacks(&fresh.ticket.id).unwrap();
    store
        .callback_attempted(&jobs[0], Outcome::Unrated, Some("8001"), None, at(2, 12))
        .unwrap();
    let closed = store.get(&fresh.ticket.id).unwrap().unwrap();
    assert_eq!(closed.status, Status::Visited);
    let last = store.history(&fresh.ticket.id).unwrap().pop().unwrap();
    assert_eq!(
        (last.action.as_str(), last.by.as_str()),
        ("called_back", "callback")
    );
}

#[test]
fn the_sqlite_store_passes_the_conformance_cases() {
    let dir = std::env::temp_dir().join(format!("hotline-tickets-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let open = || hotline::tickets::open("sqlite:tickets.db", &dir).unwrap();
    conformance(&open, &open);
    outbox_conformance(&*hotline::tickets::open("sqlite:outbox.db", &dir).unwrap());
    callback_conformance(&*hotline::tickets::open("sqlite:callbacks.db", &dir).unwrap());
    records_conformance(&*hotline::tickets::open("sqlite:records.db", &dir).unwrap());
    // Write-ahead logging, kept in the file.
    let conn = rusqlite::Connection::open(dir.join("tickets.db")).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_store_that_cannot_be_opened_says_which_and_why() {
    let err = hotline::tickets::open("sqlite:no/such/folder/t.db", Path::new("/nonexistent"))
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("sqlite:/nonexistent/no/such/folder/t.db"),
        "{text}"
    );
    let err = hotline::tickets::open("mysql://x", Path::new("/"))
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("sqlite:PATH or postgres://"),
        "{err}"
    );
    let port = free_port();
    let err = hotline::tickets::open(
        &format!("postgres://hotline:secret@127.0.0.1:{port}/tickets"),
        Path::new("/"),
    )
    .err()
    .unwrap();
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("secret"), "no password in errors: {text}");
}

// ── A PostgreSQL of the test's own ──────────────────────────────────────

/// A PostgreSQL server in a temporary folder, on a loopback port; stopped
/// (by its own data folder's pid file, `pg_ctl stop`) and removed when
/// dropped.
struct Postgres {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
}

fn pg_bin() -> PathBuf {
    if let Ok(out) = Command::new("sh")
        .args(["-c", "command -v pg_ctl"])
        .output()
        && out.status.success()
    {
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if let Ok(real) = std::fs::canonicalize(&p) {
            return real.parent().unwrap().to_path_buf();
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed: run tests/run.sh, which installs it")
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop().expect("no pg_ctl under /usr/lib/postgresql")
}

impl Postgres {
    fn start() -> Postgres {
        let bin = pg_bin();
        let dir =
            std::env::temp_dir().join(format!("hotline-pg-{}-{}", std::process::id(), free_port()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // PostgreSQL refuses to run as root: then as the `postgres` user,
        // which owns the folder.
        let root = unsafe { libc::geteuid() } == 0;
        if root {
            let out = Command::new("chown")
                .args(["-R", "postgres:postgres", dir.to_str().unwrap()])
                .status()
                .unwrap();
            assert!(out.success());
        }
        let run = |tool: &str, args: &[&str]| {
            let mut cmd = if root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
                c
            } else {
                Command::new(bin.join(tool))
            };
            let out = cmd.args(args).output().unwrap();
            assert!(
                out.status.success(),
                "{tool} {args:?} failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let data = dir.join("data");
        let data = data.to_str().unwrap();
        run(
            "initdb",
            &[
                "-D",
                data,
                "-A",
                "trust",
                "-U",
                "hotline",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        let port = free_port();
        let opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c max_connections=40",
            dir.display()
        );
        let log = dir.join("server.log");
        run(
            "pg_ctl",
            &[
                "-D",
                data,
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
        Postgres { dir, port, bin }
    }

    /// A new, empty database: its URL.
    fn database(&self, name: &str) -> String {
        let mut admin = postgres::Client::connect(
            &format!("postgres://hotline@127.0.0.1:{}/postgres", self.port),
            postgres::NoTls,
        )
        .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        format!("postgres://hotline@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let root = unsafe { libc::geteuid() } == 0;
        let mut cmd = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            c
        } else {
            Command::new(self.bin.join("pg_ctl"))
        };
        let _ = cmd
            .args(["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn the_postgres_store_passes_the_same_conformance_cases() {
    let pg = Postgres::start();
    let url = pg.database("tickets");
    let open = || hotline::tickets::open(&url, Path::new("/")).unwrap();
    conformance(&open, &open);
    let url = pg.database("outbox");
    outbox_conformance(&*hotline::tickets::open(&url, Path::new("/")).unwrap());
    let url = pg.database("callbacks");
    callback_conformance(&*hotline::tickets::open(&url, Path::new("/")).unwrap());
    let url = pg.database("records");
    records_conformance(&*hotline::tickets::open(&url, Path::new("/")).unwrap());
}

/// Two gateways sharing one PostgreSQL, each with its own connection,
/// creating at once: numbers never collide, and the schema is made once.
#[test]
fn two_gateways_on_one_postgres_never_hand_out_the_same_number() {
    let pg = Postgres::start();
    let url = pg.database("shared");
    let gateways: Vec<_> = (0..2)
        .map(|g| {
            let url = url.clone();
            std::thread::spawn(move || {
                let store = hotline::tickets::open(&url, Path::new("/")).unwrap();
                (0..40)
                    .map(|i| {
                        let caller = format!("1360000{g}{i:03}");
                        store
                            .create(&new(&caller, UNIT), at(1, 12))
                            .unwrap()
                            .ticket
                            .id
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ids: Vec<TicketId> = gateways
        .into_iter()
        .flat_map(|g| g.join().unwrap())
        .collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n);
    assert_eq!(ids.first().unwrap().as_str(), "2612010001");
    assert_eq!(ids.last().unwrap().as_str(), "2612010080");
}
