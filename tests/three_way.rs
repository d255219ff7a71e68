//! Three-way calls (三方) end to end over loopback: a caller from the
//! carrier trunk (SIPp) reaches a 12345 seat (SIPp) through the queue; the
//! seat keys `*312366#` (SIP INFO, application/dtmf-relay) and the 12366
//! sub-centre (SIPp on the city sub-centre trunk) is brought into the
//! call. Each of the three talks through a socket of the test's own, a
//! tone each — the caller 400 Hz, the seat 800 Hz, the sub-centre 1200 Hz
//! — and what each hears is decoded and measured with a Goertzel detector:
//! each hears the other two and not itself; once the seat hangs up, caller
//! and sub-centre hear each other and the seat no more. SIPp must be
//! installed (`tests/run.sh` installs it): this test fails, never skips,
//! without it.

mod support;

use std::time::{Duration, Instant};
use support::free_port;
use support::gateway::{Gateway, Sipp, heard_prompt};
use support::phone::{Phone, assert_hears, run_until, window};

/// A seat phone (SIPp, registered from `port`) that answers with RTP to
/// `rtp_port`, keys the eight `keys` in SIP INFO `keys_after_ms` after
/// its answer, and hangs up `hold_ms` later.
fn seat_keying(
    gw: &Gateway,
    port: u16,
    rtp_port: &str,
    keys: &str,
    keys_after_ms: u32,
    hold_ms: u32,
) -> Sipp {
    let keys: Vec<String> = keys.chars().map(String::from).collect();
    assert_eq!(keys.len(), 8, "the scenario keys eight keys");
    let names: Vec<String> = (1..=8).map(|i| format!("K{i}")).collect();
    let (after, hold) = (keys_after_ms.to_string(), hold_ms.to_string());
    let mut vars: Vec<(&str, &str)> = vec![
        ("MEDIA_PORT", rtp_port),
        ("KEYS_AFTER_MS", &after),
        ("HOLD_MS", &hold),
    ];
    vars.extend(
        names
            .iter()
            .map(String::as_str)
            .zip(keys.iter().map(String::as_str)),
    );
    gw.sipp(
        "seat_three_way.xml",
        &vars,
        "127.0.0.1",
        port,
        &["-s", "8001"],
    )
}

fn find(heard: &[i16], clip: &[i16]) -> Option<usize> {
    (0..=heard.len().checked_sub(clip.len())?).find(|&i| heard[i..i + clip.len()] == *clip)
}

#[test]
fn a_seat_keys_star_three_brings_the_sub_centre_in_and_leaves_caller_and_sub_centre_talking() {
    let gw = Gateway::start("three-way");
    let seat_port = free_port();
    gw.register("8001", seat_port);
    let (mut caller, mut seat, mut sub) =
        (Phone::new(400.0), Phone::new(800.0), Phone::new(1200.0));
    let sub_centre = gw.trunk_uas_rtp("12366", gw.city, &sub.port());
    let seat_phone = seat_keying(&gw, seat_port, &seat.port(), "*312366#", 1000, 4000);
    let call = gw.call_for("12345", "caller_bye", &caller.port(), 12_000);

    // The sub-centre hears something once it is in the mix.
    let joined = run_until(
        &mut [&mut caller, &mut seat, &mut sub],
        Duration::from_secs(15),
        |p| p[2].last_heard().is_some(),
    );
    assert!(
        joined,
        "the sub-centre never joined\n{}",
        gw.daemon.log_text()
    );
    let (start, end) = window(
        &mut [&mut caller, &mut seat, &mut sub],
        Duration::from_millis(500),
        Duration::from_millis(2000),
    );
    assert_hears(
        "the caller",
        &caller.heard_between(start, end),
        &[800.0, 1200.0],
        &[400.0],
    );
    assert_hears(
        "the seat",
        &seat.heard_between(start, end),
        &[400.0, 1200.0],
        &[800.0],
    );
    assert_hears(
        "the sub-centre",
        &sub.heard_between(start, end),
        &[400.0, 800.0],
        &[1200.0],
    );

    // The seat hangs up: the gateway sends it nothing more.
    let left = run_until(
        &mut [&mut caller, &mut seat, &mut sub],
        Duration::from_secs(10),
        |p| {
            p[1].last_heard()
                .is_some_and(|t| t.elapsed() > Duration::from_millis(500))
        },
    );
    assert!(
        left,
        "the seat kept hearing the call\n{}",
        gw.daemon.log_text()
    );
    let (start, end) = window(
        &mut [&mut caller, &mut seat, &mut sub],
        Duration::from_millis(300),
        Duration::from_millis(2000),
    );
    assert_hears(
        "the caller, the seat gone",
        &caller.heard_between(start, end),
        &[1200.0],
        &[400.0, 800.0],
    );
    assert_hears(
        "the sub-centre, the seat gone",
        &sub.heard_between(start, end),
        &[400.0],
        &[800.0, 1200.0],
    );
    assert!(
        seat.heard_between(start, end).is_empty(),
        "the seat hears nothing"
    );

    // The caller hangs up; the gateway hangs up the sub-centre. Every
    // SIPp scenario ran to its end.
    seat_phone.expect_success(&gw);
    call.expect_success(&gw);
    sub_centre.expect_success(&gw);
    gw.wait_metric("hotline_active_calls", 0.0);
    let log = gw.daemon.log_text();
    assert!(log.contains("the seat asks for a three-way call"), "{log}");
    assert!(
        log.contains("third party answered: three-way call"),
        "{log}"
    );
    assert!(log.contains("the seat left the three-way call"), "{log}");
}

/// A seat cannot use `*3` to call a number the table does not route to
/// a trunk or a seat: nothing is placed, the seat hears that it failed,
/// and the call goes on — the seat's hanging up still reaches the caller.
#[test]
fn a_three_way_to_a_number_the_table_does_not_route_places_nothing() {
    let gw = Gateway::start("three-way-refused");
    let seat_port = free_port();
    gw.register("8001", seat_port);
    let (mut caller, mut seat) = (Phone::new(400.0), Phone::new(800.0));
    let seat_phone = seat_keying(&gw, seat_port, &seat.port(), "*399999#", 500, 4000);
    let call = gw.call_for("12345", "wait_bye", &caller.port(), 0);
    let failed = heard_prompt("three_way_failed");
    let told = run_until(
        &mut [&mut caller, &mut seat],
        Duration::from_secs(15),
        |p| {
            let heard: Vec<i16> = p[1]
                .heard
                .iter()
                .flat_map(|(_, pcm)| pcm.iter().copied())
                .collect();
            find(&heard, &failed[..4000]).is_some()
        },
    );
    assert!(
        told,
        "the seat never heard three_way_failed\n{}",
        gw.daemon.log_text()
    );
    // Caller and seat still hear each other after the prompt.
    run_until(
        &mut [&mut caller, &mut seat],
        Duration::from_millis(2500),
        |_| false,
    );
    let start = Instant::now();
    run_until(
        &mut [&mut caller, &mut seat],
        Duration::from_millis(1500),
        |_| false,
    );
    let end = Instant::now();
    assert_hears(
        "the caller",
        &caller.heard_between(start, end),
        &[800.0],
        &[400.0],
    );
    seat_phone.expect_success(&gw);
    call.expect_success(&gw);
    gw.wait_metric("hotline_active_calls", 0.0);
    let log = gw.daemon.log_text();
    assert!(log.contains("three-way refused"), "{log}");
    assert!(!log.contains("ringing the third party"), "{log}");
}

/// The emergency hand-off: a seat keys `*3110#` and the police (SIPp on
/// the emergency trunk) join the call as a third party, while the table is
/// reloaded over and over; the seat stays on the line, all three hear each
/// other, and the hand-off is audited as `emergency`.
#[test]
fn a_seat_brings_110_into_the_call_and_stays_on_the_line() {
    let gw = Gateway::start("three-way-110");
    let seat_port = free_port();
    gw.register("8001", seat_port);
    let (mut caller, mut seat, mut police) =
        (Phone::new(400.0), Phone::new(800.0), Phone::new(1200.0));
    let trunk = gw.trunk_uas_rtp("110", gw.emergency, &police.port());
    // Two keys the caller's IVR may hear, then the code.
    let seat_phone = seat_keying(&gw, seat_port, &seat.port(), "00*3110#", 1000, 5000);
    let call = gw.call_for("12345", "wait_bye", &caller.port(), 0);
    // The table is reloaded again and again meanwhile (SIGHUP every
    // 100 ms): the hand-off to 110 waits on none of it.
    let mut ticks = 0u32;
    let joined = run_until(
        &mut [&mut caller, &mut seat, &mut police],
        Duration::from_secs(15),
        |p| {
            ticks += 1;
            if ticks.is_multiple_of(5) {
                gw.daemon.signal("HUP");
            }
            p[2].last_heard().is_some()
        },
    );
    assert!(joined, "110 never joined\n{}", gw.daemon.log_text());
    assert!(
        gw.metric("hotline_routing_reloads_total{result=\"ok\"}")
            .unwrap_or(0.0)
            >= 1.0,
        "the table was reloaded meanwhile"
    );
    let (start, end) = window(
        &mut [&mut caller, &mut seat, &mut police],
        Duration::from_millis(500),
        Duration::from_millis(2000),
    );
    assert_hears(
        "the caller",
        &caller.heard_between(start, end),
        &[800.0, 1200.0],
        &[400.0],
    );
    assert_hears(
        "the seat",
        &seat.heard_between(start, end),
        &[400.0, 1200.0],
        &[800.0],
    );
    assert_hears(
        "the police",
        &police.heard_between(start, end),
        &[400.0, 800.0],
        &[1200.0],
    );
    // The seat hangs up in the end; caller and police go on until the
    // caller's side is hung up with the rest.
    seat_phone.expect_success(&gw);
    drop(call);
    drop(trunk);
    assert_eq!(
        gw.metric(
            "hotline_transfers_total{kind=\"emergency\",result=\"completed\",target=\"emergency\"}"
        ),
        Some(1.0)
    );
}

/// An attended transfer by keys: the seat keys `*212366#`; the caller
/// waits on music while the seat talks to the sub-centre; the seat hangs
/// up and caller and sub-centre talk (`seat_left_after_intro`).
#[test]
fn a_seat_consults_the_sub_centre_by_keys_and_hanging_up_leaves_the_two_together() {
    let gw = Gateway::start("consult-keys");
    let seat_port = free_port();
    gw.register("8001", seat_port);
    let (mut caller, mut seat, mut sub) =
        (Phone::new(400.0), Phone::new(800.0), Phone::new(1200.0));
    let sub_centre = gw.trunk_uas_rtp("12366", gw.city, &sub.port());
    let seat_phone = seat_keying(&gw, seat_port, &seat.port(), "*212366#", 1000, 5000);
    let call = gw.call_for("12345", "caller_bye", &caller.port(), 14_000);
    let answered = run_until(
        &mut [&mut caller, &mut seat, &mut sub],
        Duration::from_secs(15),
        |p| p[2].last_heard().is_some(),
    );
    assert!(
        answered,
        "the sub-centre never answered\n{}",
        gw.daemon.log_text()
    );
    let (start, end) = window(
        &mut [&mut caller, &mut seat, &mut sub],
        Duration::from_millis(500),
        Duration::from_millis(1500),
    );
    // Seat and sub-centre talk; the caller hears neither.
    assert_hears(
        "the seat",
        &seat.heard_between(start, end),
        &[1200.0],
        &[400.0, 800.0],
    );
    assert_hears(
        "the sub-centre",
        &sub.heard_between(start, end),
        &[800.0],
        &[400.0, 1200.0],
    );
    let heard = caller.heard_between(start - Duration::from_secs(3), end);
    assert!(
        find(&heard, &heard_prompt("hold_music")[..800]).is_some(),
        "the caller waits on music"
    );
    // The seat hangs up: the caller and the sub-centre.
    let joined = run_until(
        &mut [&mut caller, &mut seat, &mut sub],
        Duration::from_secs(10),
        |_| {
            gw.metric("hotline_transfers_total{kind=\"attended\",result=\"seat_left_after_intro\",target=\"city_sub_centre\"}")
                == Some(1.0)
        },
    );
    assert!(joined, "not joined\n{}", gw.daemon.log_text());
    let (start, end) = window(
        &mut [&mut caller, &mut seat, &mut sub],
        Duration::from_millis(500),
        Duration::from_millis(1500),
    );
    assert_hears(
        "the caller",
        &caller.heard_between(start, end),
        &[1200.0],
        &[400.0, 800.0],
    );
    assert_hears(
        "the sub-centre",
        &sub.heard_between(start, end),
        &[400.0],
        &[800.0, 1200.0],
    );
    seat_phone.expect_success(&gw);
    call.expect_success(&gw);
    sub_centre.expect_success(&gw);
    gw.wait_metric("hotline_active_calls", 0.0);
}
