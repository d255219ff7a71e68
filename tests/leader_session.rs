//! Leader sessions (热线问政) end to end over loopback: the real daemon on
//! a table whose session is live now, SIPp as the carrier. A caller who
//! keys 2 (a ticket), 1 (its own number) and # after speaking hears RTP
//! that decodes to the ticket prompts and the digits of the ticket the
//! store holds; a caller who keys 1 reaches the leader's seat. SIPp must be
//! installed (`tests/run.sh` installs it): these tests fail, never skip,
//! without it.

mod support;

use std::net::UdpSocket;
use std::time::Duration;
use support::free_port;
use support::gateway::{Gateway, heard_prompt, listen, with_leader_session_now};

fn find(heard: &[i16], clip: &[i16], from: usize) -> Option<usize> {
    (from..=heard.len().checked_sub(clip.len())?).find(|&i| heard[i..i + clip.len()] == *clip)
}

/// Where each of `prompts` is heard, in order, each after the one before.
fn heard_in_order(heard: &[i16], prompts: &[String]) -> Result<(), String> {
    let mut at = 0;
    for name in prompts {
        let clip = heard_prompt(name);
        match find(heard, &clip, at) {
            Some(i) => at = i + clip.len(),
            None => {
                return Err(format!(
                    "{name} not heard after sample {at} of {}",
                    heard.len()
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn a_caller_who_takes_a_ticket_hears_its_number_only_as_stored() {
    let gw = Gateway::start_with("leader-ticket", with_leader_session_now);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rtp.local_addr().unwrap().port().to_string();
    let caller = gw.sipp(
        "leader_ticket_call.xml",
        &[("MEDIA_PORT", &port), ("REQUEST_MS", "9500")],
        "127.0.0.1",
        free_port(),
        &["-timeout", "60s"],
    );
    let mut gateway = None;
    let heard = listen(&rtp, Duration::from_secs(32), &mut gateway);
    caller.expect_success(&gw);

    // The store has the ticket, with the caller's request.
    let db = rusqlite::Connection::open(gw.dir().join("tickets.db")).unwrap();
    let (id, number, unit, request, status): (String, String, String, Option<String>, String) = db
        .query_row(
            "SELECT id, callback_number, unit, request_recording, status FROM tickets",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(
        number, "13907350000",
        "called back on the number it called from"
    );
    assert_eq!(unit, "市发改委", "the session's unit");
    assert_eq!(status, "created");
    assert!(
        id.len() >= 10 && id.bytes().all(|b| b.is_ascii_digit()),
        "{id}"
    );
    let request = request.expect("a request was recorded");
    let wav = hound::WavReader::open(&request).unwrap();
    let secs = wav.duration() as f64 / 8000.0;
    assert!((1.0..=4.0).contains(&secs), "the request lasts {secs} s");

    // What the caller heard: the ticket prompts and that ticket's digits.
    let mut told = vec!["ticket_created".to_string()];
    told.extend(id.chars().map(|d| format!("digit_{d}")));
    told.extend(["ticket_due_in", "num_3", "ticket_due_days", "goodbye"].map(String::from));
    heard_in_order(&heard, &told).unwrap();
    let before = find(&heard, &heard_prompt("ticket_created"), 0).unwrap();
    for p in ["ticket_confirm_number", "ticket_record_request", "beep"] {
        let at = find(&heard, &heard_prompt(p)[..800], 0);
        assert!(at.is_some_and(|a| a < before), "{p} before the number");
    }

    assert_eq!(
        gw.metric("hotline_leader_choice_total{choice=\"ticket\"}"),
        Some(1.0)
    );
    assert_eq!(
        gw.metric("hotline_tickets_created_total{kind=\"leader_session\",unit=\"市发改委\"}"),
        Some(1.0)
    );
    assert_eq!(gw.calls_total("leader_session", "12345", "ticket"), 1.0);
    gw.wait_metric("hotline_active_calls", 0.0);

    // The operators' view of the same store, beside the running daemon.
    let config = gw.table.path.to_str().unwrap().to_string();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
            .args(["tickets", "--config", &config])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let list: serde_json::Value = serde_json::from_str(&cli(&["list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["kind"], "leader_session");
    assert_eq!(list[0]["tag"], "热线问政");
    assert_eq!(list[0]["session"]["leader"], "林喜洋");
    assert_eq!(list[0]["overdue"], false);
    let none: serde_json::Value =
        serde_json::from_str(&cli(&["list", "--overdue", "--json"])).unwrap();
    assert_eq!(none.as_array().unwrap().len(), 0);
    let shown: serde_json::Value = serde_json::from_str(&cli(&["show", &id, "--json"])).unwrap();
    assert_eq!(shown["history"][0]["action"], "create");
    let csv = cli(&["export", "--csv"]);
    assert!(csv.starts_with("id,status,overdue,"), "{csv}");
    assert!(csv.contains(&format!("{id},created,false,")), "{csv}");
}

#[test]
fn a_caller_who_presses_one_reaches_the_leaders_seat() {
    let gw = Gateway::start_with("leader-wait", with_leader_session_now);
    let leader = free_port();
    gw.register("8900", leader);
    let seat = gw.seat_for("8900", leader, "answer", "seat_bye", 500);
    let caller = gw.call_keying("12345", "wait_bye", "[media_port]", 0, Some('1'));
    seat.expect_success(&gw);
    caller.expect_success(&gw);
    assert_eq!(
        gw.metric("hotline_leader_choice_total{choice=\"wait\"}"),
        Some(1.0)
    );
    assert_eq!(gw.calls_total("leader_session", "12345", "completed"), 1.0);
}
