//! Callbacks (回访) end to end over loopback: the real daemon, a SIPp seat
//! registered with it, SIPp as the citizen behind the carrier trunk. A
//! ticket the unit marks done is called back by itself: the seat first
//! (its INVITE names the ticket; it hears the whisper, decoded from RTP),
//! then the citizen, who hears the survey after the seat hangs up and
//! presses 1: the ticket is visited, by the callback. A busy citizen is
//! recorded and tried again later. SIPp must be installed (`tests/run.sh`
//! installs it): these tests fail, never skip, without it.

mod support;

use chrono::Utc;
use hotline::tickets::model::{Action, Kind, NewTicket, Status};
use hotline::tickets::{Store, TicketId};
use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;
use support::gateway::{Gateway, find, heard_in_order, heard_prompt, listen};
use support::{free_port, wait_for};

const CITIZEN: &str = "13907350000";
const UNIT: &str = "市交通运输局";

/// The test table with the carrier trunk on `carrier` and callbacks at
/// any hour, retried after 10 s.
fn table(carrier: u16) -> impl Fn(String) -> String {
    move |t: String| {
        let t2 = t
            .replace(
                "uri = \"sip:127.0.0.1:5080\"",
                &format!("uri = \"sip:127.0.0.1:{carrier}\""),
            )
            .replace(
                "calling_hours = \"08:00-21:00\"",
                "calling_hours = \"00:00-00:00\"",
            )
            .replace("retry_seconds = 1800", "retry_seconds = 10");
        assert!(t2.contains(&format!("127.0.0.1:{carrier}")) && t2.contains("00:00-00:00"));
        t2
    }
}

/// A ticket of the citizen's, stored by the gateway's own store file and
/// taken by its unit (派发, 签收): done is the next step.
fn ticket(store: &dyn Store) -> TicketId {
    let now = Utc::now();
    let day = now.date_naive();
    let t = store
        .create(
            &NewTicket {
                day,
                callback_number: CITIZEN.into(),
                caller_number: CITIZEN.into(),
                dialed: "12345".into(),
                line: "12345".into(),
                unit: UNIT.into(),
                tag: "热线问政".into(),
                kind: Kind::LeaderSession,
                session: None,
                due: now + chrono::Duration::days(3),
                due_date: day + chrono::Duration::days(3),
                due_approximate: false,
                request_recording: None,
                call_id: "test@carrier".into(),
                recordings: Vec::new(),
            },
            now,
        )
        .unwrap()
        .ticket;
    store
        .apply(&t.id, &Action::Dispatch, "dispatcher", now)
        .unwrap();
    store.apply(&t.id, &Action::Accept, UNIT, now).unwrap();
    t.id
}

fn done(store: &dyn Store, id: &TicketId) {
    store
        .apply(
            id,
            &Action::Done {
                reply: "已修复路灯".into(),
            },
            UNIT,
            Utc::now(),
        )
        .unwrap();
}

/// What arrives on `rtp` for `span`, decoded; nothing is sent back (two
/// listeners answering each other through the bridge would echo without
/// end). The seat's call is over well within the media time-out.
fn hear(rtp: &UdpSocket, span: Duration) -> Vec<i16> {
    use hotline::media::g711::Codec;
    use hotline::media::rtp::inspect;
    let mut heard = Vec::new();
    let mut buf = [0u8; 2048];
    let started = std::time::Instant::now();
    rtp.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    while started.elapsed() < span {
        if let Ok((n, _)) = rtp.recv_from(&mut buf)
            && let Some(info) = inspect(&buf[..n])
        {
            Codec::Pcmu.decode(&buf[info.payload_at..n], &mut heard);
        }
    }
    heard
}

/// A call to 12345 from the carrier (`caller_bye`: it hangs up `ms` after
/// the gateway answers), with SIPp's `args`.
fn trunk_call(gw: &Gateway, hangup: &str, ms: u32, args: &[&str]) -> support::gateway::Sipp {
    gw.sipp(
        "trunk_call.xml",
        &[
            ("DIALED", "12345"),
            ("HANGUP", hangup),
            ("MEDIA_PORT", "[media_port]"),
            ("PAUSE_MS", &ms.to_string()),
            ("KEYS", "no_keys"),
            ("KEY", "1"),
        ],
        "127.0.0.1",
        free_port(),
        args,
    )
}

/// A SIPp seat on `port` taking one callback: its INVITE must name a
/// ticket matching `ticket` (a regular expression); its SDP names RTP port
/// `media`; `hangup` `seat_bye` hangs up `hold_ms` after answering.
fn seat_callback(
    gw: &Gateway,
    port: u16,
    ticket: &str,
    media: &str,
    hangup: &str,
    hold_ms: &str,
    timeout: &str,
) -> support::gateway::Sipp {
    gw.sipp(
        "seat_callback.xml",
        &[
            ("TICKET", ticket),
            ("MEDIA_PORT", media),
            ("HANGUP", hangup),
            ("HOLD_MS", hold_ms),
        ],
        "127.0.0.1",
        port,
        &["-s", "8001", "-timeout", timeout],
    )
}

/// The citizen behind the carrier trunk on `carrier`: `mode` `answer`
/// (keying `key` in INFO `after_ms` after it) or `busy`.
fn citizen_uas(
    gw: &Gateway,
    carrier: u16,
    mode: &str,
    media: &str,
    key: &str,
    after_ms: &str,
    timeout: &str,
) -> support::gateway::Sipp {
    gw.sipp(
        "citizen.xml",
        &[
            ("NUMBER", CITIZEN),
            ("MODE", mode),
            ("MEDIA_PORT", media),
            ("KEY", key),
            ("KEY_AFTER_MS", after_ms),
        ],
        "127.0.0.1",
        carrier,
        &["-timeout", timeout],
    )
}

fn open_store(gw: &Gateway) -> Arc<dyn Store> {
    hotline::tickets::open("sqlite:tickets.db", gw.dir()).unwrap()
}

#[test]
fn a_done_ticket_is_called_back_seat_first_and_the_citizens_key_closes_it() {
    let carrier = free_port();
    let gw = Gateway::start_with("callback-visit", table(carrier));
    let store = open_store(&gw);
    let id = ticket(&*store);
    let seat_port = free_port();
    gw.register("8001", seat_port);
    let (seat_rtp, citizen_rtp) = (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    let seat_media = seat_rtp.local_addr().unwrap().port().to_string();
    let citizen_media = citizen_rtp.local_addr().unwrap().port().to_string();
    // The seat talks 14 s after it answers (the whisper is about 7 s);
    // the citizen keys 1 16 s after it answered, once the survey is over.
    let seat = seat_callback(
        &gw,
        seat_port,
        id.as_str(),
        &seat_media,
        "seat_bye",
        "14000",
        "60s",
    );
    let citizen = citizen_uas(&gw, carrier, "answer", &citizen_media, "1", "16000", "60s");
    // Nothing is owed before the unit replies.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        gw.metric("hotline_callbacks_total{kind=\"visit\",result=\"satisfied\"}"),
        Some(0.0)
    );
    done(&*store, &id);
    let seat_heard = std::thread::spawn(move || hear(&seat_rtp, Duration::from_secs(12)));
    let citizen_heard =
        std::thread::spawn(move || listen(&citizen_rtp, Duration::from_secs(32), &mut None));
    seat.expect_success(&gw);
    citizen.expect_success(&gw);
    let seat_heard = seat_heard.join().unwrap();
    let citizen_heard = citizen_heard.join().unwrap();

    // The seat heard the whisper: 回访工单 and the ticket's digits.
    let mut whisper = vec!["callback_whisper".to_string()];
    whisper.extend(id.as_str().chars().map(|d| format!("digit_{d}")));
    heard_in_order(&seat_heard, &whisper).unwrap();
    // The citizen heard the survey, then thanks; never the whisper.
    heard_in_order(
        &citizen_heard,
        &["callback_survey".to_string(), "callback_thanks".to_string()],
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", gw.daemon.log_text()));
    assert!(find(&citizen_heard, &heard_prompt("callback_whisper"), 0).is_none());

    // The citizen's key closed the ticket, by the callback.
    let visited = wait_for(Duration::from_secs(10), || {
        (store.get(&id).unwrap().unwrap().status == Status::Visited).then_some(())
    });
    assert!(visited.is_some(), "{}", gw.daemon.log_text());
    let history = store.history(&id).unwrap();
    let last = history.last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.by.as_str()),
        ("visit", "callback")
    );
    assert_eq!(last.detail.as_deref(), Some("satisfied"));
    let (jobs, attempts) = store.callbacks(&id).unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state, "finished");
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0].result, "satisfied");
    assert_eq!(attempts[0].seat.as_deref(), Some("8001"));
    gw.wait_metric(
        "hotline_callbacks_total{kind=\"visit\",result=\"satisfied\"}",
        1.0,
    );
    // Not counted among callers' calls.
    assert_eq!(gw.metric("hotline_active_calls"), Some(0.0));
    // The operators' view lists the attempt.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["tickets", "--config", gw.table.path.to_str().unwrap()])
        .args(["show", id.as_str(), "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["status"], "visited");
    assert_eq!(shown["callbacks"][0]["state"], "finished");
    assert_eq!(shown["callbacks"][0]["tried"][0]["result"], "satisfied");
    assert_eq!(shown["callbacks"][0]["tried"][0]["seat"], "8001");
}

#[test]
fn a_busy_citizen_is_recorded_and_tried_again_later() {
    let carrier = free_port();
    let gw = Gateway::start_with("callback-busy", table(carrier));
    let store = open_store(&gw);
    let id = ticket(&*store);
    let seat_port = free_port();
    gw.register("8001", seat_port);
    let seat_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let seat_media = seat_rtp.local_addr().unwrap().port().to_string();
    let seat = seat_callback(
        &gw,
        seat_port,
        id.as_str(),
        &seat_media,
        "wait_bye",
        "0",
        "40s",
    );
    let citizen = citizen_uas(&gw, carrier, "busy", "0", "1", "0", "40s");
    done(&*store, &id);
    let heard = std::thread::spawn(move || hear(&seat_rtp, Duration::from_secs(16)));
    seat.expect_success(&gw);
    citizen.expect_success(&gw);
    // The seat heard the whisper, then that the citizen was not reached,
    // and was let go (the gateway's BYE).
    let mut told = vec!["callback_whisper".to_string()];
    told.extend(id.as_str().chars().map(|d| format!("digit_{d}")));
    told.push("callback_not_reached".into());
    heard_in_order(&heard.join().unwrap(), &told).unwrap();
    gw.wait_metric(
        "hotline_callbacks_total{kind=\"visit\",result=\"busy\"}",
        1.0,
    );
    let (jobs, attempts) = store.callbacks(&id).unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].result, "busy");
    assert_eq!(jobs[0].state, "pending", "tried again later");
    assert_eq!(jobs[0].attempts, 1);
    let wait = jobs[0].next_at - attempts[0].at;
    assert!(
        wait >= chrono::Duration::seconds(9) && wait <= chrono::Duration::seconds(11),
        "{wait:?}"
    );
    assert_eq!(store.get(&id).unwrap().unwrap().status, Status::Done);
}

#[test]
fn a_caller_who_would_not_wait_is_called_back_in_its_turn() {
    let carrier = free_port();
    let gw = Gateway::start_with("callback-queue", |t| {
        let t = table(carrier)(t);
        let offered = t.replace(
            "id = \"general\"\nname = \"12345综合受理\"\n",
            "id = \"general\"\nname = \"12345综合受理\"\ncallback_offer_after_seconds = 0\n",
        );
        assert_ne!(offered, t);
        offered
    });
    let store = open_store(&gw);
    let seat_port = free_port();
    gw.register("8001", seat_port);
    // The only seat is busy with a first caller for 26 s.
    let long = ["-timeout", "60s"];
    let seat = gw.sipp(
        "seat.xml",
        &[
            ("MODE", "answer"),
            ("HANGUP", "seat_bye"),
            ("HOLD_MS", "26000"),
        ],
        "127.0.0.1",
        seat_port,
        &["-s", "8001", "-timeout", "60s"],
    );
    let first = trunk_call(&gw, "wait_bye", 0, &long);
    gw.wait_bridged(1.0);
    // A second caller hears the callback offered; 16 s on it keys * and
    // 1#, hears its ticket's number and the promise, and is let go.
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rtp.local_addr().unwrap().port().to_string();
    let second = gw.sipp(
        "queue_callback_call.xml",
        &[
            ("MEDIA_PORT", &port),
            ("OFFER_MS", "16000"),
            ("CALLER", CITIZEN),
        ],
        "127.0.0.1",
        free_port(),
        &["-timeout", "60s"],
    );
    let heard = std::thread::spawn(move || listen(&rtp, Duration::from_secs(40), &mut None));
    // A third caller arrives after it, and still waits when the seat is
    // free (24 s on; it leaves at 27 s, before its silence would be taken
    // for a dead line at 30): the seat is offered to the callback first,
    // at the second caller's place (its INVITE names the ticket: the SIPp
    // seat checks).
    std::thread::sleep(Duration::from_secs(3));
    let third = trunk_call(&gw, "caller_bye", 27000, &long);
    let citizen = citizen_uas(&gw, carrier, "answer", "[media_port]", "5", "500", "60s");
    seat.expect_success(&gw);
    let seat_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let seat_media = seat_rtp.local_addr().unwrap().port().to_string();
    let seat = seat_callback(
        &gw,
        seat_port,
        "[0-9]+",
        &seat_media,
        "seat_bye",
        "10000",
        "40s",
    );
    second.expect_success(&gw);
    let heard = heard.join().unwrap();
    let offer = heard_prompt("queue_callback_offer");
    assert!(
        find(&heard, &offer[..4000], 0).is_some(),
        "the offer was heard\n{}",
        gw.daemon.log_text()
    );
    let tickets = store.list(&hotline::tickets::Filter::default()).unwrap();
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    let id = tickets[0].id.clone();
    assert_eq!(tickets[0].new.kind, Kind::QueueCallback);
    assert_eq!(tickets[0].new.callback_number, CITIZEN);
    let mut told = vec!["ticket_created".to_string()];
    told.extend(id.as_str().chars().map(|d| format!("digit_{d}")));
    told.extend(["queue_callback_registered", "goodbye"].map(String::from));
    heard_in_order(&heard, &told).unwrap_or_else(|e| panic!("{e}\n{}", gw.daemon.log_text()));
    // Not a unit's item: nothing to deliver.
    assert!(store.dispatches(&id).unwrap().is_empty());
    seat.expect_success(&gw);
    citizen.expect_success(&gw);
    first.expect_success(&gw);
    // Called back: the ticket is closed by the callback, no survey asked.
    let closed = wait_for(Duration::from_secs(10), || {
        (store.get(&id).unwrap().unwrap().status == Status::Visited).then_some(())
    });
    assert!(closed.is_some(), "{}", gw.daemon.log_text());
    let last = store.history(&id).unwrap().pop().unwrap();
    assert_eq!(
        (last.action.as_str(), last.by.as_str()),
        ("called_back", "callback")
    );
    let (jobs, attempts) = store.callbacks(&id).unwrap();
    assert_eq!(
        (jobs[0].kind.as_str(), jobs[0].state.as_str()),
        ("queue", "finished")
    );
    assert_eq!(attempts[0].result, "unrated");
    assert_eq!(attempts[0].seat.as_deref(), Some("8001"));
    gw.wait_metric(
        "hotline_callbacks_total{kind=\"queue\",result=\"unrated\"}",
        1.0,
    );
    third.expect_success(&gw);
}

#[test]
fn a_queue_with_no_seat_overflows_to_a_callback_made_once_a_seat_logs_in() {
    let carrier = free_port();
    let gw = Gateway::start_with("callback-later", |t| {
        let t = table(carrier)(t);
        // The general queue's (its first `join_empty`).
        let later = t.replacen("join_empty = \"busy\"", "join_empty = \"callback\"", 1);
        assert!(later.find("join_empty = \"callback\"") > later.find("id = \"general\""));
        assert!(later.find("join_empty = \"callback\"") < later.find("id = \"leader\""));
        assert_ne!(later, t);
        later
    });
    let store = open_store(&gw);
    // No seat is logged in: the caller is offered a callback at once,
    // gives its own number (* starts the number over, then 1#), and hears
    // its ticket and the promise.
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rtp.local_addr().unwrap().port().to_string();
    let caller = gw.sipp(
        "queue_callback_call.xml",
        &[
            ("MEDIA_PORT", &port),
            ("OFFER_MS", "12000"),
            ("CALLER", CITIZEN),
        ],
        "127.0.0.1",
        free_port(),
        &["-timeout", "60s"],
    );
    let heard = listen(&rtp, Duration::from_secs(40), &mut None);
    caller.expect_success(&gw);
    let tickets = store.list(&hotline::tickets::Filter::default()).unwrap();
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    let id = tickets[0].id.clone();
    assert_eq!(tickets[0].new.kind, Kind::Overflow);
    let mut told = vec!["callback_later".to_string(), "ticket_created".to_string()];
    told.extend(id.as_str().chars().map(|d| format!("digit_{d}")));
    told.extend(["callback_later_registered", "goodbye"].map(String::from));
    heard_in_order(&heard, &told).unwrap_or_else(|e| panic!("{e}\n{}", gw.daemon.log_text()));
    assert!(store.dispatches(&id).unwrap().is_empty(), "no unit's item");
    // A seat logs in and is idle: the callback is made, seat first.
    let seat_port = free_port();
    gw.register("8001", seat_port);
    let seat_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let seat_media = seat_rtp.local_addr().unwrap().port().to_string();
    let seat = seat_callback(
        &gw,
        seat_port,
        id.as_str(),
        &seat_media,
        "seat_bye",
        "9000",
        "40s",
    );
    let citizen = citizen_uas(&gw, carrier, "answer", "[media_port]", "5", "500", "40s");
    let whisper = std::thread::spawn(move || hear(&seat_rtp, Duration::from_secs(14)));
    seat.expect_success(&gw);
    citizen.expect_success(&gw);
    let mut said = vec!["queue_callback_whisper".to_string()];
    said.extend(id.as_str().chars().map(|d| format!("digit_{d}")));
    heard_in_order(&whisper.join().unwrap(), &said).unwrap();
    let closed = wait_for(Duration::from_secs(10), || {
        (store.get(&id).unwrap().unwrap().status == Status::Visited).then_some(())
    });
    assert!(closed.is_some(), "{}", gw.daemon.log_text());
    gw.wait_metric(
        "hotline_callbacks_total{kind=\"queue\",result=\"unrated\"}",
        1.0,
    );
}
