//! A leader session's call (热线问政) driven directly: the caller chooses
//! to wait or take a ticket, keys its number, leaves a request; the store
//! answers; only then is the number read. Synthetic messages and time.
use super::*;
use crate::call::call::leader::LeaderPlan;
use crate::tickets::dialogue::{Choice, Settings as DialogueSettings, Stored};
use crate::tickets::model::{Kind as TicketKind, NewTicket};
use chrono::{NaiveDate, TimeZone, Utc};

fn draft() -> NewTicket {
    NewTicket {
        day: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        callback_number: String::new(),
        caller_number: "13800138000".into(),
        dialed: "12345".into(),
        line: "12345".into(),
        unit: "市交通运输局".into(),
        tag: "热线问政".into(),
        kind: TicketKind::LeaderSession,
        session: None,
        due: Utc.with_ymd_and_hms(2026, 12, 4, 16, 0, 0).unwrap(),
        due_date: NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
        due_approximate: false,
        request_recording: None,
        call_id: A_CALL_ID.into(),
        recordings: Vec::new(),
    }
}

fn leader_settings(anchored_media: bool) -> Settings {
    let base = if anchored_media {
        anchored(false)
    } else {
        settings()
    };
    Settings {
        queue: Some(plan("leader", vec![Item::prompt("welcome")])),
        leader: Some(Box::new(LeaderPlan {
            dialogue: DialogueSettings {
                timeout: secs(8),
                default: Choice::Wait,
                message: secs(60),
                message_silence: secs(5),
                caller_number: Some("13800138000".into()),
                due_working_days: 3,
                promise: None,
            },
            draft: draft(),
            requests_dir: "/var/lib/hotline/requests".into(),
            request_file: "20261201/100000-7.wav".into(),
            session_ends: None,
            end_ticket: true,
            end_queue: Some(plan("general", vec![])),
        })),
        ..base
    }
}

impl Run {
    fn keys(&mut self, keys: &str) -> Vec<Sent> {
        let mut sent = Vec::new();
        for c in keys.chars() {
            let out = self.call.on_digit(0, digit(c), &self.reg, self.now);
            sent.extend(self.take(out, self.now));
        }
        sent
    }

    fn prompt_done(&mut self) -> Vec<Sent> {
        let out = self.call.on_prompt_done(0, &self.reg, self.now);
        self.take(out, self.now)
    }

    fn quiet(&mut self) -> Vec<Sent> {
        let out = self.call.on_quiet(0, true, &self.reg, self.now);
        self.take(out, self.now)
    }

    fn stored(&mut self, s: Stored) -> Vec<Sent> {
        let out = self.call.on_ticket(s, &self.reg, self.now);
        self.take(out, self.now)
    }

    fn last_prompt(&self) -> &str {
        self.media
            .iter()
            .rev()
            .find(|m| m.starts_with("Prompt "))
            .map(String::as_str)
            .unwrap_or("")
    }
}

/// A leader session's call, answered by us and asked its choice; our tag.
fn choosing() -> (Run, String) {
    let t0 = Instant::now();
    let reg = registrar(&[("8900", seat_peer(1))], t0);
    let (mut run, out) = Run::start(reg, t0, leader_settings(true), vec![]);
    let sent = run.take(out, t0);
    let ok = one(responses(&sent, 200), "200: answered to choose")
        .msg
        .clone();
    assert!(String::from_utf8_lossy(&ok.body).contains("m=audio 20000 "));
    let tag = to_tag(&ok).unwrap();
    run.recv(&caller_ack_2xx(&tag), caller());
    assert!(run.acd.is_empty(), "not in the queue before choosing");
    assert_eq!(
        run.last_prompt(),
        "Prompt 0 [Prompt(\"leader_session_choice\")] hold=false"
    );
    (run, tag)
}

#[test]
fn two_then_one_then_hash_stores_the_ticket_and_only_then_reads_its_number() {
    let (mut run, _) = choosing();
    run.keys("2");
    assert!(run.media.contains(&"Choice ticket".to_string()));
    assert!(run.last_prompt().contains("ticket_confirm_number"));
    // 1, then # (a mobile number starts with 1 too): its own number.
    run.keys("1#");
    assert!(run.last_prompt().contains("ticket_record_request"));
    run.prompt_done();
    assert!(
        run.media.iter().any(|m| m.starts_with(
            "Record { dir: \"/var/lib/hotline/requests\", paths: [(0, \"/var/lib/hotline/requests/20261201/100000-7.wav\")]"
        )),
        "{:?}",
        run.media
    );
    run.keys("#");
    assert_eq!(run.media.last().unwrap(), "StopRecord { leg: 0 }");
    assert_eq!(run.tickets.len(), 1);
    let t = &run.tickets[0];
    assert_eq!(t.callback_number, "13800138000");
    assert_eq!(
        t.request_recording.as_deref(),
        Some("/var/lib/hotline/requests/20261201/100000-7.wav")
    );
    assert_eq!(t.unit, "市交通运输局");
    // Nothing is read while the store works.
    assert!(!run.media.iter().any(|m| m.contains("Digits")));
    let sent = run.stored(Stored::New {
        id: "2612010001".into(),
    });
    assert!(sent.is_empty());
    let told = run.last_prompt().to_string();
    assert!(
        told.contains("ticket_created") && told.contains("Digits(\"2612010001\")"),
        "{told}"
    );
    assert!(
        told.contains("ticket_due_in") && told.contains("num_3"),
        "{told}"
    );
    // The goodbye ends: we hang up.
    let sent = run.prompt_done();
    let bye = one(requests(&sent, Method::Bye), "BYE to the caller");
    assert_eq!(bye.peer, caller());
    assert_eq!(run.call.outcome(), Some(Outcome::Ticket));
    assert!(run.acd.is_empty(), "the ACD never saw it");
    run.recv(&reply(&bye.msg, 200, "OK", "alice-tag"), caller());
    run.finish(100);
}

#[test]
fn a_caller_who_falls_quiet_ends_its_request_as_with_hash() {
    let (mut run, _) = choosing();
    run.keys("21#");
    // Quiet before the recording (a stale event) does nothing.
    run.quiet();
    assert!(run.tickets.is_empty());
    run.prompt_done();
    let n = run.media.len();
    assert_eq!(
        run.media[n - 1],
        "EndOnSilence { leg: 0, after: 5s }",
        "{:?}",
        run.media
    );
    assert!(run.media[n - 2].starts_with("Record {"));
    // Quiet on another leg (a seat's stream) is not the caller's.
    let out = run.call.on_quiet(1, true, &run.reg, run.now);
    run.take(out, run.now);
    assert_eq!(run.media.len(), n, "{:?}", run.media);
    assert!(run.tickets.is_empty());
    run.quiet();
    assert_eq!(run.media.last().unwrap(), "StopRecord { leg: 0 }");
    assert_eq!(run.tickets.len(), 1);
    assert_eq!(
        run.tickets[0].request_recording.as_deref(),
        Some("/var/lib/hotline/requests/20261201/100000-7.wav")
    );
    // Quiet again stores nothing more.
    run.quiet();
    assert_eq!(run.tickets.len(), 1);
}

#[test]
fn one_joins_the_leaders_queue_without_a_second_answer() {
    let (mut run, _) = choosing();
    let sent = run.keys("1");
    assert!(responses(&sent, 200).is_empty(), "answered once");
    assert!(run.media.contains(&"Choice wait".to_string()));
    assert!(matches!(&run.acd[..], [ToAcd::Join { queue, .. }] if queue == "leader"));
    // The queue's welcome plays once a seat is offered or a place is told.
    run.acd(FromAcd::Announce {
        items: vec![Item::prompt("queue_position")],
    });
    assert!(run.last_prompt().contains("welcome"));
}

#[test]
fn a_caller_waiting_for_the_leader_who_presses_two_takes_a_ticket() {
    let (mut run, _) = choosing();
    run.keys("1");
    let invite = run.offer("8900");
    run.recv(&seat_reply(&invite, 180, "Ringing"), seat_peer(1));
    let sent = run.keys("2");
    one(
        requests(&sent, Method::Cancel),
        "CANCEL to the leader's seat",
    );
    assert_eq!(run.acd.last(), Some(&ToAcd::Left));
    assert!(run.last_prompt().contains("ticket_confirm_number"));
    // Other keys while waiting are still the ACD's.
    let (mut run, _) = choosing();
    run.keys("1");
    run.keys("5");
    assert_eq!(run.acd.last(), Some(&ToAcd::Key('5')));
}

#[test]
fn a_store_that_failed_reads_no_number_and_the_call_counts_as_failed() {
    let (mut run, _) = choosing();
    run.keys("21##");
    assert_eq!(run.tickets.len(), 1);
    assert_eq!(
        run.tickets[0].request_recording, None,
        "# before the tone: no request"
    );
    run.stored(Stored::Failed);
    let told = run.last_prompt().to_string();
    assert!(
        told.contains("ticket_unavailable") && !told.contains("Digits"),
        "{told}"
    );
    run.prompt_done();
    assert_eq!(run.call.outcome(), Some(Outcome::Failed));
}

#[test]
fn keys_in_sip_info_choose_too() {
    let (mut run, tag) = choosing();
    let info = parse(&with_body(
        caller_request("INFO", 2, "z9hG4bKcaller.info", &tag),
        "application/dtmf-relay",
        "Signal=1\r\nDuration=160\r\n",
    ));
    let sent = run.recv(&info, caller());
    one(responses(&sent, 200), "200 to the INFO");
    assert!(matches!(&run.acd[..], [ToAcd::Join { .. }]));
}

#[test]
fn a_caller_hanging_up_while_choosing_is_an_abandon_the_acd_never_sees() {
    let (mut run, tag) = choosing();
    let bye = parse(&no_body(caller_request(
        "BYE",
        2,
        "z9hG4bKcaller.bye",
        &tag,
    )));
    let sent = run.recv(&bye, caller());
    one(responses(&sent, 200), "200 to the BYE");
    assert_eq!(run.call.outcome(), Some(Outcome::Abandoned));
    assert!(run.acd.is_empty());
    run.finish(100);
}

#[test]
fn no_key_at_all_repeats_the_choice_once_then_waits() {
    let (mut run, _) = choosing();
    run.prompt_done();
    run.advance(secs(8));
    assert_eq!(
        run.media
            .iter()
            .filter(|m| m.contains("leader_session_choice"))
            .count(),
        2
    );
    run.prompt_done();
    let at = run.offset(run.now);
    run.advance(at + secs(8));
    assert!(run.media.contains(&"Choice none".to_string()));
    assert!(matches!(&run.acd[..], [ToAcd::Join { .. }]));
}

#[test]
fn without_anchored_media_there_is_no_choice_and_the_caller_waits_ringing() {
    let t0 = Instant::now();
    let reg = registrar(&[("8900", seat_peer(1))], t0);
    let (mut run, out) = Run::start(reg, t0, leader_settings(false), vec![]);
    let sent = run.take(out, t0);
    one(responses(&sent, 180), "180: waits unanswered");
    assert!(responses(&sent, 200).is_empty());
    assert!(matches!(&run.acd[..], [ToAcd::Join { .. }]));
}

/// A caller waiting for the leader when the session ends at `t0 + 30 s`.
fn waiting_at_session_end(end_ticket: bool) -> Run {
    let t0 = Instant::now();
    let reg = registrar(&[("8900", seat_peer(1))], t0);
    let mut s = leader_settings(true);
    if let Some(p) = s.leader.as_mut() {
        p.session_ends = Some(t0 + secs(30));
        p.end_ticket = end_ticket;
    }
    let (mut run, out) = Run::start(reg, t0, s, vec![]);
    let sent = run.take(out, t0);
    let ok = one(responses(&sent, 200), "200").msg.clone();
    run.recv(&caller_ack_2xx(&to_tag(&ok).unwrap()), caller());
    run.keys("1");
    assert!(matches!(&run.acd[..], [ToAcd::Join { queue, .. }] if queue == "leader"));
    run
}

#[test]
fn a_caller_still_waiting_when_the_session_ends_takes_a_ticket() {
    let mut run = waiting_at_session_end(true);
    let invite = run.offer("8900");
    run.recv(&seat_reply(&invite, 180, "Ringing"), seat_peer(1));
    let sent = run.advance(secs(29));
    assert!(requests(&sent, Method::Cancel).is_empty());
    let sent = run.advance(secs(30));
    one(
        requests(&sent, Method::Cancel),
        "CANCEL to the leader's seat",
    );
    assert_eq!(run.acd.last(), Some(&ToAcd::Left));
    let told = run.last_prompt().to_string();
    assert!(
        told.contains("leader_session_over") && told.contains("ticket_confirm_number"),
        "{told}"
    );
    run.keys("1##");
    assert_eq!(run.tickets.len(), 1, "the ticket follows as if chosen");
}

#[test]
fn with_at_session_end_main_queue_the_caller_moves_keeping_its_arrival() {
    let mut run = waiting_at_session_end(false);
    run.advance(secs(31));
    let n = run.acd.len();
    assert_eq!(run.acd[n - 2], ToAcd::Left);
    match &run.acd[n - 1] {
        ToAcd::Join { queue, arrival, .. } => {
            assert_eq!(queue, "general");
            assert_eq!(*arrival, run.t0, "its place by its first arrival");
        }
        other => panic!("{other:?}"),
    }
    assert!(run.last_prompt().contains("queue_moved"));
    assert_eq!(run.call.outcome(), None);
}

/// A caller waiting in `general`, whose queue offers callbacks in turn.
fn waiting_with_callback() -> Run {
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1))], t0);
    let mut plan_ = *leader_settings(true).leader.unwrap();
    plan_.draft.kind = TicketKind::QueueCallback;
    plan_.dialogue.message = Duration::ZERO;
    plan_.dialogue.promise = Some(crate::tickets::dialogue::prompts::IN_TURN);
    let settings = Settings {
        queue: Some(plan("general", vec![])),
        queue_callback: Some(Box::new(plan_)),
        ..anchored(false)
    };
    let (mut run, out) = Run::start(reg, t0, settings, vec![]);
    let sent = run.take(out, t0);
    let ok = one(responses(&sent, 200), "200: waiting").msg.clone();
    run.recv(&caller_ack_2xx(&to_tag(&ok).unwrap()), caller());
    run
}

#[test]
fn star_before_the_offer_is_for_the_acd_and_after_it_takes_the_callback_keeping_the_place() {
    let mut run = waiting_with_callback();
    assert!(matches!(run.acd.last(), Some(ToAcd::Join { .. })));
    // Not offered yet: * is the ACD's (an exit key, perhaps).
    run.keys("*");
    assert_eq!(run.acd.last(), Some(&ToAcd::Key('*')));
    let out = run.call.on_acd(
        FromAcd::Announce {
            items: vec![Item::prompt(crate::acd::announce::QUEUE_CALLBACK_OFFER)],
        },
        &run.reg,
        run.now,
    );
    run.take(out, run.now);
    assert!(run.last_prompt().contains("queue_callback_offer"));
    run.keys("*");
    assert_eq!(
        run.acd.last(),
        Some(&ToAcd::Left),
        "out of the queue for the dialogue"
    );
    assert!(run.last_prompt().contains("ticket_confirm_number"));
    run.keys("1#");
    let t = run.tickets.last().expect("stored").clone();
    assert_eq!(t.kind, TicketKind::QueueCallback);
    assert_eq!(t.callback_number, "13800138000");
    assert!(t.request_recording.is_none(), "no spoken request");
    assert!(
        !run.media.iter().any(|m| m.starts_with("Choice")),
        "no leader choice counted"
    );
    run.stored(Stored::New {
        id: "2612010003".into(),
    });
    let told = run.last_prompt().to_string();
    assert!(
        told.contains("queue_callback_registered") && told.contains("2612010003"),
        "{told}"
    );
    assert!(
        run.media
            .iter()
            .any(|m| m == "CallBack 2612010003 general 12345"),
        "{:?}",
        run.media
    );
}

#[test]
fn a_caller_told_its_existing_callback_is_not_queued_twice_and_no_offer_reaches_a_caller_that_cannot_take_it()
 {
    let mut run = waiting_with_callback();
    let out = run.call.on_acd(
        FromAcd::Announce {
            items: vec![Item::prompt(crate::acd::announce::QUEUE_CALLBACK_OFFER)],
        },
        &run.reg,
        run.now,
    );
    run.take(out, run.now);
    run.keys("*1#");
    run.stored(Stored::Existing {
        id: "2612010001".into(),
    });
    assert!(!run.media.iter().any(|m| m.starts_with("CallBack")));

    // Without the ticket's plan the offer is not played, and * stays the
    // ACD's.
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1))], t0);
    let settings = Settings {
        queue: Some(plan("general", vec![])),
        ..anchored(false)
    };
    let (mut run, out) = Run::start(reg, t0, settings, vec![]);
    run.take(out, t0);
    let out = run.call.on_acd(
        FromAcd::Announce {
            items: vec![
                Item::prompt("queue_position"),
                Item::prompt(crate::acd::announce::QUEUE_CALLBACK_OFFER),
            ],
        },
        &run.reg,
        run.now,
    );
    run.take(out, run.now);
    assert!(
        !run.last_prompt().contains("queue_callback_offer"),
        "{}",
        run.last_prompt()
    );
    run.keys("*");
    assert_eq!(run.acd.last(), Some(&ToAcd::Key('*')));
}

#[test]
fn a_queue_overflowing_to_a_callback_asks_the_number_and_leaves_the_callback_to_the_store() {
    let mut run = waiting_with_callback();
    let out = run.call.on_acd(
        FromAcd::CallBackLater {
            items: vec![Item::prompt("queue_busy")],
            code: 486,
            reason: "Busy Here (the queue is full)".into(),
        },
        &run.reg,
        run.now,
    );
    run.take(out, run.now);
    let asked = run.last_prompt().to_string();
    assert!(
        asked.contains("callback_later") && asked.contains("ticket_confirm_number"),
        "{asked}"
    );
    run.keys("1#");
    let t = run.tickets.last().expect("stored").clone();
    assert_eq!(t.kind, TicketKind::Overflow);
    run.stored(Stored::New {
        id: "2612010004".into(),
    });
    assert!(run.last_prompt().contains("callback_later_registered"));
    assert!(
        !run.media.iter().any(|m| m.starts_with("CallBack")),
        "made by the store's runner once a seat is free"
    );

    // A call that cannot hold the dialogue is let go as for busy.
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1))], t0);
    let settings = Settings {
        queue: Some(plan("general", vec![])),
        ..anchored(false)
    };
    let (mut run, out) = Run::start(reg, t0, settings, vec![]);
    run.take(out, t0);
    let out = run.call.on_acd(
        FromAcd::CallBackLater {
            items: vec![Item::prompt("queue_busy")],
            code: 486,
            reason: "Busy Here (the queue is full)".into(),
        },
        &run.reg,
        run.now,
    );
    run.take(out, run.now);
    assert!(
        run.last_prompt().contains("queue_busy"),
        "{}",
        run.last_prompt()
    );
}
