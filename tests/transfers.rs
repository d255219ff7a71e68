//! Blind transfers end to end over loopback: a caller from the carrier
//! trunk (SIPp) reaches seat 8001 (SIPp) through the queue; the seat
//! REFERs the call (RFC 3515). Each party talks through a socket of the
//! test's own with a tone of its own — caller 400 Hz, seat 800 Hz, target
//! 1200 Hz — and what each hears is measured. SIPp must be installed
//! (`tests/run.sh` installs it): these tests fail, never skip, without it.

mod support;

use std::time::Duration;
use support::free_port;
use support::gateway::{Gateway, Sipp};
use support::phone::{Phone, assert_hears, run_until, window};

/// The transferring seat: SIPp `seat_refer.xml`, registered as 8001 from
/// `port`, its RTP to `rtp`, REFERring to `target` 2 s after it answers.
struct Refer<'a> {
    target: &'a str,
    host: String,
    code: &'a str,
    tail: &'a str,
    extra: &'a str,
    fail_code: &'a str,
    hold_ms: u32,
    after_ms: u32,
}

impl<'a> Refer<'a> {
    fn to(gw: &Gateway, target: &'a str, code: &'a str, tail: &'a str) -> Refer<'a> {
        Refer {
            target,
            host: format!("127.0.0.1:{}", gw.sip),
            code,
            tail,
            extra: "Subject: transfer",
            fail_code: "486",
            hold_ms: 2000,
            after_ms: 2000,
        }
    }

    fn start(&self, gw: &Gateway, port: u16, rtp: &str) -> Sipp {
        let hold = self.hold_ms.to_string();
        let after = self.after_ms.to_string();
        gw.sipp(
            "seat_refer.xml",
            &[
                ("MEDIA_PORT", rtp),
                ("REFER_AFTER_MS", &after),
                ("TARGET", self.target),
                ("TARGET_HOST", &self.host),
                ("EXTRA", self.extra),
                ("REFER_CODE", self.code),
                ("TAIL", self.tail),
                ("FAIL_CODE", self.fail_code),
                ("HOLD_MS", &hold),
            ],
            "127.0.0.1",
            port,
            &["-s", "8001", "-timeout", "40s"],
        )
    }
}

fn transfers(gw: &Gateway, kind: &str, target: &str, result: &str) -> f64 {
    gw.metric(&format!(
        "hotline_transfers_total{{kind=\"{kind}\",result=\"{result}\",target=\"{target}\"}}"
    ))
    .unwrap_or(0.0)
}

/// Runs the phones until the last of them (the transfer's target) hears
/// the caller.
fn until_target_hears(gw: &Gateway, phones: &mut [&mut Phone]) {
    let last = phones.len() - 1;
    let heard = run_until(phones, Duration::from_secs(15), |p| {
        p[last].last_heard().is_some()
    });
    assert!(
        heard,
        "the target never heard the caller\n{}",
        gw.daemon.log_text()
    );
}

/// The caller (400 Hz) and the target (1200 Hz) hear each other, and the
/// seat (800 Hz) no more.
fn assert_talk(
    caller: &Phone,
    target: &Phone,
    (start, end): (std::time::Instant, std::time::Instant),
) {
    assert_hears(
        "the caller",
        &caller.heard_between(start, end),
        &[1200.0],
        &[400.0, 800.0],
    );
    assert_hears(
        "the target",
        &target.heard_between(start, end),
        &[400.0],
        &[800.0, 1200.0],
    );
}

#[test]
fn a_seat_refers_its_caller_to_the_sub_centre_and_is_released() {
    let gw = Gateway::start("blind-sub-centre");
    let seat_port = free_port();
    gw.register("8001", seat_port);
    let (mut caller, mut seat, mut sub) =
        (Phone::new(400.0), Phone::new(800.0), Phone::new(1200.0));
    let sub_centre = gw.trunk_uas_rtp("12366", gw.city, &sub.port());
    let seat_phone =
        Refer::to(&gw, "12366", "202", "completed").start(&gw, seat_port, &seat.port());
    let call = gw.call_for("12345", "caller_bye", &caller.port(), 12_000);
    // Caller and seat talk until the REFER.
    let talking = run_until(
        &mut [&mut caller, &mut seat, &mut sub],
        Duration::from_secs(10),
        |p| p[1].last_heard().is_some() && p[0].heard.len() > 25,
    );
    assert!(
        talking,
        "caller and seat never talked\n{}",
        gw.daemon.log_text()
    );
    // The sub-centre hears the caller once it answers.
    until_target_hears(&gw, &mut [&mut caller, &mut seat, &mut sub]);
    let (start, end) = window(
        &mut [&mut caller, &mut seat, &mut sub],
        Duration::from_millis(500),
        Duration::from_millis(2500),
    );
    assert_talk(&caller, &sub, (start, end));
    assert!(
        seat.heard_between(start, end).is_empty(),
        "the seat is gone"
    );
    // Released while caller and sub-centre still talk: no longer on the
    // call for the ACD (in its wrap-up, then available).
    let released = support::wait_for(Duration::from_secs(2), || {
        (gw.metric("hotline_seats{queue=\"general\",state=\"on_call\"}") == Some(0.0)).then_some(())
    });
    assert!(released.is_some(), "the seat is still on the call");
    // 202, NOTIFY 100, NOTIFY 200 and our BYE reached the seat (its
    // scenario checks each); the caller's BYE ends the sub-centre's leg.
    seat_phone.expect_success(&gw);
    call.expect_success(&gw);
    sub_centre.expect_success(&gw);
    gw.wait_metric("hotline_active_calls", 0.0);
    assert_eq!(transfers(&gw, "blind", "city_sub_centre", "completed"), 1.0);
    let log = gw.daemon.log_text();
    assert!(log.contains("the seat transfers the call (REFER)"), "{log}");
    assert!(log.contains("hand-off"), "{log}");
}

#[test]
fn a_busy_target_seat_brings_the_caller_back_to_the_seat() {
    let gw = Gateway::start("blind-busy");
    let seat_port = free_port();
    gw.register("8001", seat_port);
    let (mut caller, mut seat) = (Phone::new(400.0), Phone::new(800.0));
    let mut refer = Refer::to(&gw, "8002", "202", "failed");
    refer.hold_ms = 7000;
    // Time for 8002 to log in after the caller reaches 8001.
    refer.after_ms = 5000;
    let seat_phone = refer.start(&gw, seat_port, &seat.port());
    let call = gw.call_for("12345", "wait_bye", &caller.port(), 0);
    gw.wait_bridged(1.0);
    // Seat 8002 logs in only now, so it is offered nothing but the
    // transfer, which it refuses (486).
    let busy_port = free_port();
    gw.register("8002", busy_port);
    let busy = gw.seat_for("8002", busy_port, "busy", "wait_bye", 0);
    busy.expect_success(&gw);
    // Back with the seat: each hears the other again.
    let back = run_until(
        &mut [&mut caller, &mut seat],
        Duration::from_secs(10),
        |_| {
            gw.metric("hotline_transfers_total{kind=\"blind\",result=\"busy\",target=\"seat\"}")
                .is_some()
        },
    );
    assert!(back, "the transfer never failed\n{}", gw.daemon.log_text());
    // The seat hears three_way_failed first (3 s).
    let (start, end) = window(
        &mut [&mut caller, &mut seat],
        Duration::from_millis(3500),
        Duration::from_millis(1500),
    );
    assert_hears(
        "the caller",
        &caller.heard_between(start, end),
        &[800.0],
        &[400.0],
    );
    assert_hears(
        "the seat",
        &seat.heard_between(start, end),
        &[400.0],
        &[800.0],
    );
    seat_phone.expect_success(&gw);
    call.expect_success(&gw);
    gw.wait_metric("hotline_active_calls", 0.0);
}

#[test]
fn refers_to_an_outside_number_or_a_foreign_host_get_403_and_place_nothing() {
    let gw = Gateway::start("blind-refused");
    let seat_port = free_port();
    gw.register("8001", seat_port);
    let (mut caller, mut seat) = (Phone::new(400.0), Phone::new(800.0));
    let outside = Refer::to(&gw, "13800138000", "403", "refused");
    let seat_phone = outside.start(&gw, seat_port, &seat.port());
    let call = gw.call_for("12345", "wait_bye", &caller.port(), 0);
    run_until(
        &mut [&mut caller, &mut seat],
        Duration::from_secs(6),
        |_| false,
    );
    seat_phone.expect_success(&gw);
    call.expect_success(&gw);
    // A foreign host, with a number the table does route.
    let mut foreign = Refer::to(&gw, "12366", "403", "refused");
    foreign.host = "192.0.2.1".into();
    let seat_phone = foreign.start(&gw, seat_port, &seat.port());
    let call = gw.call_for("12345", "wait_bye", &caller.port(), 0);
    run_until(
        &mut [&mut caller, &mut seat],
        Duration::from_secs(6),
        |_| false,
    );
    seat_phone.expect_success(&gw);
    call.expect_success(&gw);
    gw.wait_metric("hotline_active_calls", 0.0);
    assert_eq!(transfers(&gw, "blind", "none", "refused"), 2.0);
    // No leg was placed but the two seats' own: each call's one line at
    // info says how many legs it placed.
    let log = gw.daemon.log_text();
    let legs: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("call ended"))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("legs=")))
        .collect();
    assert_eq!(legs, ["legs=1", "legs=1"], "{log}");
}

#[test]
fn the_seat_hanging_up_right_after_202_leaves_the_caller_to_reach_the_target() {
    let gw = Gateway::start("blind-leave");
    let seat_port = free_port();
    gw.register("8001", seat_port);
    let (mut caller, mut seat, mut sub) =
        (Phone::new(400.0), Phone::new(800.0), Phone::new(1200.0));
    // It answers after the seat's BYE, so the seat is gone by then.
    let sub_centre = gw.trunk_uas_after("12366", gw.city, &sub.port(), 1500);
    let seat_phone = Refer::to(&gw, "12366", "202", "leave").start(&gw, seat_port, &seat.port());
    let call = gw.call_for("12345", "caller_bye", &caller.port(), 10_000);
    until_target_hears(&gw, &mut [&mut caller, &mut seat, &mut sub]);
    let (start, end) = window(
        &mut [&mut caller, &mut seat, &mut sub],
        Duration::from_millis(500),
        Duration::from_millis(2000),
    );
    assert_talk(&caller, &sub, (start, end));
    seat_phone.expect_success(&gw);
    call.expect_success(&gw);
    sub_centre.expect_success(&gw);
    gw.wait_metric("hotline_active_calls", 0.0);
    assert_eq!(transfers(&gw, "blind", "city_sub_centre", "completed"), 1.0);
}

#[test]
fn refer_sub_false_gets_the_transfer_without_any_notify() {
    let gw = Gateway::start("blind-no-sub");
    let seat_port = free_port();
    gw.register("8001", seat_port);
    let (mut caller, mut seat, mut sub) =
        (Phone::new(400.0), Phone::new(800.0), Phone::new(1200.0));
    let sub_centre = gw.trunk_uas_rtp("12366", gw.city, &sub.port());
    let mut refer = Refer::to(&gw, "12366", "202", "unsubscribed");
    refer.extra = "Refer-Sub: false";
    let seat_phone = refer.start(&gw, seat_port, &seat.port());
    let call = gw.call_for("12345", "caller_bye", &caller.port(), 8_000);
    until_target_hears(&gw, &mut [&mut caller, &mut seat, &mut sub]);
    // The seat's scenario takes no NOTIFY: one would fail it.
    seat_phone.expect_success(&gw);
    call.expect_success(&gw);
    sub_centre.expect_success(&gw);
    gw.wait_metric("hotline_active_calls", 0.0);
    assert_eq!(transfers(&gw, "blind", "city_sub_centre", "completed"), 1.0);
}

/// A real phone's transfer: baresip (the seat, answering by itself with a
/// 440 Hz voice) is told `transfer 12366` on its menu; it holds the caller
/// and REFERs; the caller ends up hearing the sub-centre, and the phone's
/// call is over.
#[test]
fn a_baresip_seat_transfers_its_caller_to_the_sub_centre() {
    use support::gateway::Baresip;
    let gw = Gateway::start("blind-baresip");
    let phone = Baresip::start(&gw, "8101");
    gw.wait_metric("hotline_registered_seats", 1.0);
    let (mut caller, mut sub) = (Phone::new(400.0), Phone::new(1200.0));
    let sub_centre = gw.trunk_uas_rtp("12366", gw.city, &sub.port());
    let call = gw.call_for("12348", "caller_bye", &caller.port(), 12_000);
    gw.wait_bridged(1.0);
    run_until(
        &mut [&mut caller, &mut sub],
        Duration::from_millis(1500),
        |_| false,
    );
    let answer = phone.command_with("transfer", "12366");
    assert!(
        answer.contains("\"ok\":true"),
        "{answer}\n{}",
        phone.log_text()
    );
    let joined = run_until(&mut [&mut caller, &mut sub], Duration::from_secs(15), |p| {
        p[1].last_heard().is_some()
    });
    assert!(
        joined,
        "the sub-centre never heard the caller\n{}\n--- daemon\n{}",
        phone.log_text(),
        gw.daemon.log_text()
    );
    let (start, end) = window(
        &mut [&mut caller, &mut sub],
        Duration::from_millis(500),
        Duration::from_millis(2000),
    );
    assert_hears(
        "the caller",
        &caller.heard_between(start, end),
        &[1200.0],
        &[400.0, 440.0],
    );
    assert_hears(
        "the sub-centre",
        &sub.heard_between(start, end),
        &[400.0],
        &[440.0, 1200.0],
    );
    call.expect_success(&gw);
    sub_centre.expect_success(&gw);
    gw.wait_metric("hotline_active_calls", 0.0);
    assert_eq!(transfers(&gw, "blind", "city_sub_centre", "completed"), 1.0);
    let log = gw.daemon.log_text();
    assert!(log.contains("the seat transfers the call (REFER)"), "{log}");
}

/// The number linphone-daemon gave its newest call (`Id: N` in the
/// answers and events it printed), waited for.
fn linphone_call_id(phone: &support::gateway::Linphone, command: &str) -> String {
    let answer = phone.command(command);
    answer
        .lines()
        .find_map(|l| l.strip_prefix("Id: ").map(|s| s.trim().to_string()))
        .unwrap_or_else(|| panic!("no call id in {answer:?}\n{}", phone.log_text()))
}

/// An attended transfer from a real phone: linphone-daemon is seat 8001;
/// it answers the caller, holds it, calls the 12366 sub-centre itself (its
/// own INVITE, which the gateway gives to the seat's call), and
/// `call-transfer`s the caller to that call: a REFER with Replaces. The
/// gateway joins caller and sub-centre itself — the sub-centre's SIPp
/// takes exactly one INVITE, so an INVITE-with-Replaces would fail it —
/// and both of the phone's calls end.
#[test]
fn a_linphone_seat_consults_the_sub_centre_then_transfers_its_caller_there() {
    linphone_attended("attended-linphone", false);
}

/// The same, the other way round: `call-transfer` of the consultation to
/// the caller's call sends the REFER on the consultation's dialog, with
/// Replaces naming the dialog with the caller.
#[test]
fn a_linphone_seat_transfers_with_the_refer_on_its_consultation() {
    linphone_attended("attended-linphone-back", true);
}

/// A linphone seat consults the sub-centre and transfers; with
/// `on_consult`, its REFER goes on the consultation's dialog.
fn linphone_attended(name: &str, on_consult: bool) {
    use support::gateway::Linphone;
    let gw = Gateway::start(name);
    let phone = Linphone::start(&gw, "8001");
    gw.wait_metric("hotline_registered_seats", 1.0);
    let (mut caller, mut sub) = (Phone::new(400.0), Phone::new(1200.0));
    let sub_centre = gw.trunk_uas_rtp("12366", gw.city, &sub.port());
    let call = gw.call_for("12345", "caller_bye", &caller.port(), 15_000);
    gw.wait_bridged(1.0);
    run_until(
        &mut [&mut caller, &mut sub],
        Duration::from_millis(1000),
        |_| false,
    );
    let first = phone.command("call-status");
    let caller_call = first
        .lines()
        .find_map(|l| l.strip_prefix("Id: ").map(|s| s.trim().to_string()))
        .unwrap_or_else(|| "1".into());
    let paused = phone.command(&format!("call-pause {caller_call}"));
    assert!(
        paused.contains("Status: Ok"),
        "{paused}\n{}",
        phone.log_text()
    );
    run_until(
        &mut [&mut caller, &mut sub],
        Duration::from_millis(1000),
        |_| false,
    );
    let consult = linphone_call_id(&phone, &format!("call sip:12366@127.0.0.1:{}", gw.sip));
    // The sub-centre answers the phone's own call: it hears the seat, or
    // at least is sent the consultation's stream.
    let answered = run_until(
        &mut [&mut caller, &mut sub],
        Duration::from_secs(15),
        |_| {
            gw.daemon
                .log_text()
                .contains("the consultation's target answered")
        },
    );
    assert!(
        answered,
        "the consultation was never answered\n{}\n--- daemon\n{}",
        phone.log_text(),
        gw.daemon.log_text()
    );
    run_until(
        &mut [&mut caller, &mut sub],
        Duration::from_millis(1500),
        |_| false,
    );
    let moved = if on_consult {
        phone.command(&format!("call-transfer {consult} {caller_call}"))
    } else {
        phone.command(&format!("call-transfer {caller_call} {consult}"))
    };
    assert!(
        moved.contains("Status: Ok"),
        "{moved}\n{}",
        phone.log_text()
    );
    let joined = run_until(
        &mut [&mut caller, &mut sub],
        Duration::from_secs(10),
        |_| transfers(&gw, "attended", "city_sub_centre", "completed") == 1.0,
    );
    assert!(
        joined,
        "no attended transfer\n{}\n--- daemon\n{}",
        phone.log_text(),
        gw.daemon.log_text()
    );
    let (start, end) = window(
        &mut [&mut caller, &mut sub],
        Duration::from_millis(500),
        Duration::from_millis(2000),
    );
    assert_hears(
        "the caller",
        &caller.heard_between(start, end),
        &[1200.0],
        &[400.0],
    );
    assert_hears(
        "the sub-centre",
        &sub.heard_between(start, end),
        &[400.0],
        &[1200.0],
    );
    call.expect_success(&gw);
    sub_centre.expect_success(&gw);
    gw.wait_metric("hotline_active_calls", 0.0);
    let log = gw.daemon.log_text();
    assert!(
        log.contains("a seat on a call consults; given to its call"),
        "{log}"
    );
    assert!(!log.contains("REFER refused"), "{log}");
}

/// An INVITE-with-Replaces from the trunk is refused: it could take over a
/// caller's call, and the gateway joins transfers itself.
#[test]
fn an_invite_with_replaces_from_the_trunk_is_refused() {
    let gw = Gateway::start("invite-replaces");
    let text = support::gateway::scenario("trunk_refused.xml").replacen(
        "      Max-Forwards: 70\n",
        "      Max-Forwards: 70\n      Replaces: a1@192.0.2.9;to-tag=1;from-tag=2\n",
        1,
    );
    assert!(text.contains("Replaces: a1"));
    gw.sipp_text(
        "trunk_refused_replaces.xml",
        text,
        &[("DIALED", "12345"), ("CODE", "403"), ("MATCH", "Replaces")],
        "127.0.0.1",
        free_port(),
        &[],
    )
    .expect_success(&gw);
    assert_eq!(gw.metric("hotline_active_calls").unwrap_or(0.0), 0.0);
}

/// A real phone's own conference: linphone-daemon (seat 8001) answers the
/// caller, consults the sub-centre from its phone, then puts both of its
/// calls in its local conference (`conference add`), mixing them itself;
/// the gateway keeps each of the seat's dialogs talking to its own party,
/// so caller and sub-centre hear each other through the phone.
#[test]
fn a_linphone_seats_local_conference_joins_caller_and_sub_centre_through_the_phone() {
    use support::gateway::Linphone;
    let gw = Gateway::start("conference-linphone");
    let phone = Linphone::start(&gw, "8001");
    gw.wait_metric("hotline_registered_seats", 1.0);
    let (mut caller, mut sub) = (Phone::new(400.0), Phone::new(1200.0));
    let sub_centre = gw.trunk_uas_rtp("12366", gw.city, &sub.port());
    let call = gw.call_for("12345", "caller_bye", &caller.port(), 15_000);
    gw.wait_bridged(1.0);
    run_until(
        &mut [&mut caller, &mut sub],
        Duration::from_millis(1000),
        |_| false,
    );
    // The daemon numbers its calls from 1: the caller's is the first.
    let caller_call = "1".to_string();
    let paused = phone.command(&format!("call-pause {caller_call}"));
    assert!(paused.contains("Status: Ok"), "{paused}");
    run_until(
        &mut [&mut caller, &mut sub],
        Duration::from_millis(1000),
        |_| false,
    );
    let consult = linphone_call_id(&phone, &format!("call sip:12366@127.0.0.1:{}", gw.sip));
    let answered = run_until(
        &mut [&mut caller, &mut sub],
        Duration::from_secs(15),
        |_| {
            gw.daemon
                .log_text()
                .contains("the consultation's target answered")
        },
    );
    assert!(answered, "no consultation\n{}", gw.daemon.log_text());
    run_until(
        &mut [&mut caller, &mut sub],
        Duration::from_millis(1000),
        |_| false,
    );
    // (linphone-daemon 5.1 answers "Command failed" to `conference add`
    // even as it resumes the call into its mixer: what counts is what
    // the gateway sees.)
    for id in [&caller_call, &consult] {
        phone.command(&format!("conference add {id}"));
    }
    let live = run_until(
        &mut [&mut caller, &mut sub],
        Duration::from_secs(10),
        |_| {
            gw.daemon
                .log_text()
                .contains("both of the seat's calls live")
        },
    );
    assert!(
        live,
        "the phone never resumed both calls\n{}\n--- daemon\n{}",
        phone.log_text(),
        gw.daemon.log_text()
    );
    let (start, end) = window(
        &mut [&mut caller, &mut sub],
        Duration::from_millis(1000),
        Duration::from_millis(2000),
    );
    assert_hears(
        "the caller",
        &caller.heard_between(start, end),
        &[1200.0],
        &[],
    );
    assert_hears(
        "the sub-centre",
        &sub.heard_between(start, end),
        &[400.0],
        &[],
    );
    call.expect_success(&gw);
    drop(sub_centre);
}

/// A second REFER while the first one's target still rings gets `491`;
/// the first goes on to its end.
#[test]
fn a_second_refer_during_a_transfer_gets_491_and_the_first_completes() {
    let gw = Gateway::start("blind-duplicate");
    let seat_port = free_port();
    gw.register("8001", seat_port);
    let (mut caller, mut seat, mut sub) =
        (Phone::new(400.0), Phone::new(800.0), Phone::new(1200.0));
    // It answers late: the second REFER comes while it rings.
    let sub_centre = gw.trunk_uas_after("12366", gw.city, &sub.port(), 1500);
    let seat_phone =
        Refer::to(&gw, "12366", "202", "duplicate").start(&gw, seat_port, &seat.port());
    let call = gw.call_for("12345", "caller_bye", &caller.port(), 8_000);
    until_target_hears(&gw, &mut [&mut caller, &mut seat, &mut sub]);
    seat_phone.expect_success(&gw);
    call.expect_success(&gw);
    sub_centre.expect_success(&gw);
    gw.wait_metric("hotline_active_calls", 0.0);
    assert_eq!(transfers(&gw, "blind", "city_sub_centre", "completed"), 1.0);
}
