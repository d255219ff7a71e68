//! The ACD end to end over loopback: callers from the carrier trunk (SIPp)
//! wait in real queues of the real daemon, hear their place as RTP, and
//! are offered to seats (SIPp and baresip) as the seats come free. The test
//! table runs queues on a test's time scale (see `Gateway::start_with`):
//! offers ring 2 s, wrap-up is 1 s, a dual-number caller widens to skilled
//! seats at 2 s and to general seats at 4 s. SIPp and baresip must be
//! installed (`tests/run.sh` installs them): these tests fail, never skip,
//! without them.

mod support;

use serde_json::Value;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;
use support::gateway::{
    Baresip, Gateway, Sipp, ends_in_baresip_voice, heard_prompt, listen, with_leader_session_now,
};
use support::{free_port, wait_for};

/// The test table with the queue event log on (`queue_log.jsonl` beside
/// the table).
fn with_queue_log(text: String) -> String {
    let on = text.replace(
        "# queue_log = \"queue_log.jsonl\"",
        "queue_log = \"queue_log.jsonl\"",
    );
    assert_ne!(on, text, "the shipped table names its queue log");
    on
}

/// The queue event log's lines so far, each a JSON object.
fn queue_log(gw: &Gateway) -> Vec<Value> {
    let text = std::fs::read_to_string(gw.dir().join("queue_log.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Waits until the queue log holds `n` lines whose event starts with
/// `event` (`COMPLETE`: `COMPLETECALLER` and `COMPLETEAGENT`); returns them.
fn wait_events(gw: &Gateway, event: &str, n: usize) -> Vec<Value> {
    let of_kind = || -> Vec<Value> {
        queue_log(gw)
            .into_iter()
            .filter(|e| e["event"].as_str().is_some_and(|k| k.starts_with(event)))
            .collect()
    };
    wait_for(Duration::from_secs(10), || {
        let seen = of_kind();
        (seen.len() >= n).then_some(seen)
    })
    .unwrap_or_else(|| {
        panic!(
            "{n} {event} never logged\n--- queue log\n{:#?}\n--- daemon\n{}",
            queue_log(gw),
            gw.daemon.log_text()
        )
    })
}

/// `hotline_queue_calls_total` for `queue` and `outcome` (0 when absent).
fn queue_calls(gw: &Gateway, queue: &str, outcome: &str) -> f64 {
    gw.metric(&format!(
        "hotline_queue_calls_total{{outcome=\"{outcome}\",queue=\"{queue}\"}}"
    ))
    .unwrap_or(0.0)
}

/// A `{queue="…"}` series.
fn of_queue(name: &str, queue: &str) -> String {
    format!("{name}{{queue=\"{queue}\"}}")
}

/// `hotline_seats` for `queue` in `state`.
fn seats(queue: &str, state: &str) -> String {
    format!("hotline_seats{{queue=\"{queue}\",state=\"{state}\"}}")
}

/// Where `clip` starts in `heard`, at or after `from`, sample for sample.
fn find(heard: &[i16], clip: &[i16], from: usize) -> Option<usize> {
    (from..=heard.len().checked_sub(clip.len())?).find(|&i| heard[i..i + clip.len()] == *clip)
}

/// Registers 8001 and makes it busy, the only general seat logged in: it
/// answers caller 1 to 12345, who hangs up `ms` later. Returns the seat
/// and caller 1.
fn the_only_seat_busy(gw: &Gateway, ms: u32) -> (Sipp, Sipp) {
    let port = free_port();
    gw.register("8001", port);
    let seat = gw.seat("8001", port, "answer", "wait_bye");
    let caller = gw.call_for("12345", "caller_bye", "[media_port]", ms);
    gw.wait_bridged(1.0);
    (seat, caller)
}

/// A caller from the trunk whose SDP names a socket of the test's, so the
/// test hears what the gateway plays to it. It waits for the far end's
/// BYE (`wait_bye`).
struct Listened {
    caller: Sipp,
    rtp: UdpSocket,
    from: Option<SocketAddr>,
}

impl Listened {
    fn call(gw: &Gateway, dialed: &str) -> Listened {
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = rtp.local_addr().unwrap().port().to_string();
        let caller = gw.call_for(dialed, "wait_bye", &port, 0);
        Listened {
            caller,
            rtp,
            from: None,
        }
    }

    /// What the caller hears for `span` (see [`listen`]).
    fn listen(&mut self, span: Duration) -> Vec<i16> {
        listen(&self.rtp, span, &mut self.from)
    }

    /// Presses `key` (0-9) as RFC 4733 events: start, continuation and a
    /// repeated end, to where the gateway's RTP came from.
    fn press(&self, key: u8) {
        use hotline::media::rtp::packet;
        let to = self.from.expect("RTP from the gateway first");
        for (k, (duration, end)) in [(160u16, false), (320, false), (480, true), (480, true)]
            .into_iter()
            .enumerate()
        {
            let flags = if end { 0x8a } else { 0x0a };
            let payload = [key, flags, (duration >> 8) as u8, duration as u8];
            let rtp = packet(101, k == 0, 500 + k as u16, 90_000, 0x5eed, &payload);
            self.rtp.send_to(&rtp, to).unwrap();
        }
    }
}

/// Asserts that `heard` holds `prompts` one right after the other (the
/// last one at least in part: `tail` samples of it), the first anywhere;
/// returns where the first starts.
fn assert_heard_in_order(heard: &[i16], prompts: &[&str], tail: usize) -> usize {
    let clips: Vec<Vec<i16>> = prompts.iter().map(|p| heard_prompt(p)).collect();
    let start = find(heard, &clips[0], 0)
        .unwrap_or_else(|| panic!("{} is not heard in {} samples", prompts[0], heard.len()));
    let mut at = start + clips[0].len();
    for (i, (name, clip)) in prompts.iter().zip(&clips).enumerate().skip(1) {
        let want = if i + 1 == clips.len() {
            &clip[..tail.min(clip.len())]
        } else {
            &clip[..]
        };
        assert!(
            heard.len() >= at + want.len(),
            "{name} is cut short: heard {} samples, {name} from {at}",
            heard.len()
        );
        assert!(
            heard[at..at + want.len()] == *want,
            "{name} does not follow at sample {at}"
        );
        at += clip.len();
    }
    start
}

/// The only seat takes caller 1; caller 2, answered by the gateway, hears
/// the welcome, then its place (you are next), then the start of its wait;
/// once the seat hangs up and its wrap-up has passed, it is offered caller
/// 2 and the two are bridged. Caller 1 is answered within the service level
/// (5 s here), caller 2 not.
#[test]
fn the_only_seat_takes_caller_1_while_caller_2_hears_its_place_then_caller_2() {
    let gw = Gateway::start_with("queue-two-callers", |t| {
        with_queue_log(t)
            .replacen("wrap_up_seconds = 1\n", "wrap_up_seconds = 3\n", 1)
            .replace("service_level_seconds = 20", "service_level_seconds = 5")
    });
    let port = free_port();
    gw.register("8001", port);
    // The seat hangs up caller 1 after 10.5 s: caller 2 hears the welcome
    // (6.2 s) and you_are_next (3 s) meanwhile.
    let seat = gw.seat_for("8001", port, "answer", "seat_bye", 10_500);
    let caller1 = gw.call("12345", "wait_bye");
    gw.wait_bridged(1.0);

    let mut caller2 = Listened::call(&gw, "12345");
    gw.wait_metric(&of_queue("hotline_queue_callers", "general"), 1.0);
    let heard = caller2.listen(Duration::from_millis(9_800));
    assert_eq!(
        gw.metric("hotline_seat_offers_total{result=\"answered\"}"),
        Some(1.0),
        "caller 2 is still waiting"
    );
    // …您是下一位，请稍候。预计等待时间…
    assert_heard_in_order(&heard, &["welcome", "you_are_next", "estimated_wait"], 2000);

    seat.expect_success(&gw);
    caller1.expect_success(&gw);
    // The same phone, free again; the gateway offers it caller 2 once the
    // seat's 3 s wrap-up is over.
    let seat = gw.seat_for("8001", port, "answer", "seat_bye", 1000);
    gw.wait_bridged(2.0);
    // Bridged: the seat's BYE reaches caller 2.
    seat.expect_success(&gw);
    caller2.caller.expect_success(&gw);
    gw.wait_metric("hotline_active_calls", 0.0);

    assert_eq!(queue_calls(&gw, "general", "answered"), 2.0);
    // Caller 1 at once, caller 2 after more than the 5 s service level.
    assert_eq!(
        gw.metric(&of_queue(
            "hotline_queue_answered_within_target_total",
            "general"
        )),
        Some(1.0)
    );
    assert_eq!(
        gw.metric("hotline_queue_wait_seconds_count{outcome=\"answered\",queue=\"general\"}"),
        Some(2.0)
    );
    let connects = wait_events(&gw, "CONNECT", 2);
    let wait = connects[1]["wait"].as_f64().unwrap();
    assert!(
        wait >= 10.5 + 3.0 - 1.0,
        "caller 2 was offered before the seat's call and wrap-up ended: waited {wait} s"
    );
    assert_eq!(gw.calls_total("queue", "12345", "completed"), 2.0);
}

/// A caller who hangs up after more than 5 s of waiting is an abandon (not
/// a short one), its wait in the histogram and the queue log; the queue is
/// empty again, and the call on the seat goes on undisturbed.
#[test]
fn a_caller_who_hangs_up_after_waiting_over_five_seconds_is_an_abandon() {
    let gw = Gateway::start_with("queue-abandon", with_queue_log);
    let (seat, caller1) = the_only_seat_busy(&gw, 9000);
    // Caller 2 waits (the only seat is busy), then hangs up after 6 s.
    let caller2 = gw.call_for("12345", "caller_bye", "[media_port]", 6000);
    let callers = of_queue("hotline_queue_callers", "general");
    gw.wait_metric(&callers, 1.0);
    caller2.expect_success(&gw);
    gw.wait_metric(&callers, 0.0);

    assert_eq!(queue_calls(&gw, "general", "abandoned"), 1.0);
    assert_eq!(queue_calls(&gw, "general", "short_abandoned"), 0.0);
    let wait = |series: &str| {
        gw.metric(&format!(
            "hotline_queue_wait_seconds_{series}{{outcome=\"abandoned\",queue=\"general\"}}"
        ))
    };
    assert_eq!(wait("count"), Some(1.0));
    let waited = wait("sum").unwrap();
    assert!(waited >= 6.0, "the abandon waited {waited} s");
    assert_eq!(
        gw.metric(
            "hotline_queue_wait_seconds_bucket{outcome=\"abandoned\",queue=\"general\",le=\"5\"}"
        ),
        Some(0.0)
    );
    let [abandon] = wait_events(&gw, "ABANDON", 1).try_into().unwrap();
    assert_eq!(abandon["queue"], "general");
    assert_eq!(abandon["position"], 1);
    assert!(abandon["wait"].as_f64().unwrap() >= 6.0, "{abandon}");
    assert_eq!(gw.calls_total("queue", "12345", "abandoned"), 1.0);
    // The waiting caller was never offered to the busy seat.
    assert_eq!(
        gw.metric("hotline_seat_offers_total{result=\"no_answer\"}"),
        Some(0.0)
    );

    caller1.expect_success(&gw);
    seat.expect_success(&gw);
    assert_eq!(queue_calls(&gw, "general", "answered"), 1.0);
    assert_eq!(gw.calls_total("queue", "12345", "completed"), 1.0);
}

/// 12348, a dual-number line with an expert seat, in one run: caller A
/// reaches the free expert seat 8101 at once; caller B, with 8101 busy,
/// waits and after the expert wait (2 s) goes to 8201, a seat with the
/// line's skill, although general seat 8001 is free; caller C, with 8101
/// and 8201 busy, goes to 8001 only after widening (4 s).
#[test]
fn a_12348_caller_reaches_the_expert_then_a_skilled_seat_then_after_widening_a_general_one() {
    let gw = Gateway::start_with("queue-dual-number", with_queue_log);
    let (expert, skilled, general) = (free_port(), free_port(), free_port());
    gw.register("8101", expert);
    gw.register("8201", skilled);
    gw.register("8001", general);
    let seat_expert = gw.seat_for("8101", expert, "answer", "seat_bye", 9000);
    let seat_skilled = gw.seat_for("8201", skilled, "answer", "seat_bye", 7000);
    let seat_general = gw.seat_for("8001", general, "answer", "seat_bye", 1000);

    let a = gw.call("12348", "wait_bye");
    gw.wait_bridged(1.0);
    let b = gw.call("12348", "wait_bye");
    gw.wait_bridged(2.0);
    let c = gw.call("12348", "wait_bye");
    gw.wait_bridged(3.0);
    for sipp in [c, seat_general, b, seat_skilled, a, seat_expert] {
        sipp.expect_success(&gw);
    }

    let enters = wait_events(&gw, "ENTERQUEUE", 3);
    let connects = wait_events(&gw, "CONNECT", 3);
    let calls: Vec<&Value> = enters.iter().map(|e| &e["call"]).collect();
    let seat_of = |call: &Value| {
        let c = connects
            .iter()
            .find(|c| c["call"] == *call)
            .unwrap_or_else(|| panic!("call {call} never connected: {connects:#?}"));
        (
            c["seat"].as_str().unwrap().to_string(),
            c["wait"].as_f64().unwrap(),
        )
    };
    let (seat, wait) = seat_of(calls[0]);
    assert_eq!(seat, "8101", "the expert seat first");
    assert!(
        wait < 2.0,
        "the free expert seat is offered at once ({wait} s)"
    );
    let (seat, wait) = seat_of(calls[1]);
    assert_eq!(seat, "8201", "a skilled seat once the expert wait is over");
    assert!(
        wait >= 2.0,
        "offered to 8201 after {wait} s, before the expert wait"
    );
    let (seat, wait) = seat_of(calls[2]);
    assert_eq!(seat, "8001", "a general seat after widening");
    assert!(
        wait >= 4.0,
        "offered to 8001 after {wait} s, before widening"
    );
    for e in &enters {
        assert_eq!(e["queue"], "general", "12348 waits in the main queue: {e}");
    }
    assert_eq!(queue_calls(&gw, "general", "answered"), 3.0);
    assert_eq!(gw.calls_total("direct", "12348", "completed"), 3.0);
}

/// A full queue gives its overflow, `busy`: with general holding at most
/// one caller and its only seat busy, caller 3 hears queue_busy and
/// goodbye and is hung up on (BYE), counted `full`; caller 2, waiting,
/// keeps its place.
#[test]
fn a_caller_finding_the_queue_full_hears_queue_busy_and_is_hung_up_on() {
    let gw = Gateway::start_with("queue-full", |t| {
        let one = t.replace("max_callers = 200", "max_callers = 1");
        assert_ne!(one, t);
        with_queue_log(one)
    });
    // Caller 2 gives up after 12 s, before the seat is free (14 s), and
    // is still waiting when caller 3 has heard its prompts (about 8 s),
    // with seconds to spare on a loaded machine.
    let (seat, caller1) = the_only_seat_busy(&gw, 14_000);
    let caller2 = gw.call_for("12345", "caller_bye", "[media_port]", 12_000);
    gw.wait_metric(&of_queue("hotline_queue_callers", "general"), 1.0);

    let mut caller3 = Listened::call(&gw, "12345");
    let heard = caller3.listen(Duration::from_millis(7_900));
    // 当前坐席全忙，请您稍后再拨。 then goodbye, in full.
    let goodbye = heard_prompt("goodbye").len();
    assert_heard_in_order(&heard, &["queue_busy", "goodbye"], goodbye);
    // Hung up on by the gateway once the prompts are over.
    caller3.caller.expect_success(&gw);
    assert_eq!(queue_calls(&gw, "general", "full"), 1.0);
    assert_eq!(gw.calls_total("queue", "12345", "unavailable"), 1.0);
    assert_eq!(
        gw.metric(&of_queue("hotline_queue_callers", "general")),
        Some(1.0),
        "caller 2 still waits"
    );
    wait_events(&gw, "FULL", 1);

    caller2.expect_success(&gw);
    caller1.expect_success(&gw);
    seat.expect_success(&gw);
    assert_eq!(queue_calls(&gw, "general", "abandoned"), 1.0);
    assert_eq!(queue_calls(&gw, "general", "answered"), 1.0);
}

/// The leader's queue overflows to `queue:general`: with its one leader
/// seat busy and its limit of one caller reached, caller 3 is moved to the
/// 12345 queue and served there by a general seat.
#[test]
fn a_full_leader_queue_overflows_to_the_general_queue() {
    let gw = Gateway::start_with("queue-leader-full", |t| {
        let one = t.replace("max_callers = 30", "max_callers = 1");
        assert_ne!(one, t);
        with_queue_log(with_leader_session_now(one))
    });
    let (leader, general) = (free_port(), free_port());
    gw.register("8900", leader);
    gw.register("8001", general);
    let seat_leader = gw.seat("8900", leader, "answer", "wait_bye");
    let seat_general = gw.seat_for("8001", general, "answer", "seat_bye", 1000);
    // During the session each caller chooses: 1, wait for the leader.
    let wait = Some('1');
    let caller1 = gw.call_keying("12345", "caller_bye", "[media_port]", 8000, wait);
    gw.wait_bridged(1.0);
    let caller2 = gw.call_keying("12345", "caller_bye", "[media_port]", 6000, wait);
    gw.wait_metric(&of_queue("hotline_queue_callers", "leader"), 1.0);
    let caller3 = gw.call_keying("12345", "wait_bye", "[media_port]", 0, wait);
    gw.wait_bridged(2.0);
    caller3.expect_success(&gw);
    seat_general.expect_success(&gw);

    assert_eq!(queue_calls(&gw, "leader", "full"), 1.0);
    assert_eq!(queue_calls(&gw, "general", "answered"), 1.0);
    let log = queue_log(&gw);
    let third = &wait_events(&gw, "ENTERQUEUE", 3)[2]["call"];
    assert_connected_via(
        &log,
        third,
        &["FULL leader", "ENTERQUEUE general", "CONNECT general"],
        "8001",
        0.0,
    );
    caller2.expect_success(&gw);
    caller1.expect_success(&gw);
    seat_leader.expect_success(&gw);
    assert_eq!(queue_calls(&gw, "leader", "answered"), 1.0);
    assert_eq!(gw.calls_total("leader_session", "12345", "completed"), 2.0);
    assert_eq!(
        gw.metric("hotline_leader_choice_total{choice=\"wait\"}"),
        Some(3.0)
    );
}

/// The queue gauges follow the seats and the callers: `hotline_seats`
/// counts the general queue's four seats by state (logged out, available
/// once registered, on call while bridged, wrap-up after), and the
/// estimated wait a joining caller would be told is (n + 1) · 180 s / 2
/// with two seats staffed, none free, and n callers waiting (0 while a
/// seat is free).
#[test]
fn seat_and_wait_gauges_follow_the_seats_and_the_callers() {
    let gw = Gateway::start_with("queue-gauges", |t| {
        t.replacen("wrap_up_seconds = 1\n", "wrap_up_seconds = 3\n", 1)
    });
    let state = |s: &str| seats("general", s);
    let ewt = of_queue("hotline_queue_estimated_wait_seconds", "general");
    // 8001, 8002, 8201 and 8202 serve general; none is registered.
    gw.wait_metric(&state("logged_out"), 4.0);
    assert_eq!(gw.metric(&state("available")), Some(0.0));
    assert_eq!(gw.metric(&ewt), Some(0.0), "no seat, no estimate");
    let (p1, p2) = (free_port(), free_port());
    gw.register("8001", p1);
    gw.register("8002", p2);
    gw.wait_metric(&state("available"), 2.0);
    assert_eq!(gw.metric(&state("logged_out")), Some(2.0));
    // A seat is free: a caller joining now waits nothing.
    assert_eq!(gw.metric(&ewt), Some(0.0), "a free seat, no wait");

    let seat1 = gw.seat("8001", p1, "answer", "wait_bye");
    let seat2 = gw.seat("8002", p2, "answer", "wait_bye");
    let caller1 = gw.call_for("12345", "caller_bye", "[media_port]", 5000);
    gw.wait_bridged(1.0);
    gw.wait_metric(&state("on_call"), 1.0);
    assert_eq!(gw.metric(&state("available")), Some(1.0));
    // Caller 2 hangs up well after caller 1's seat is out of its wrap-up.
    let caller2 = gw.call_for("12345", "caller_bye", "[media_port]", 10_000);
    gw.wait_bridged(2.0);
    gw.wait_metric(&state("on_call"), 2.0);
    assert_eq!(gw.metric(&state("available")), Some(0.0));
    assert_eq!(gw.metric(&ewt), Some(90.0), "nobody waits yet");

    // Caller 3 waits: a caller joining now would have one ahead.
    let caller3 = gw.call_for("12345", "caller_bye", "[media_port]", 2500);
    gw.wait_metric(&of_queue("hotline_queue_callers", "general"), 1.0);
    gw.wait_metric(&ewt, 180.0);
    let longest = of_queue("hotline_queue_longest_wait_seconds", "general");
    let waited = wait_for(Duration::from_secs(5), || {
        gw.metric(&longest).filter(|&w| w > 0.0)
    });
    assert!(waited.is_some(), "{longest} stays 0 while a caller waits");
    caller3.expect_success(&gw);
    gw.wait_metric(&of_queue("hotline_queue_callers", "general"), 0.0);
    gw.wait_metric(&ewt, 90.0);
    assert_eq!(gw.metric(&longest), Some(0.0));
    assert_eq!(queue_calls(&gw, "general", "short_abandoned"), 1.0);

    // Caller 1 hangs up: its seat wraps up 3 s, then is available again.
    caller1.expect_success(&gw);
    seat1.expect_success(&gw);
    gw.wait_metric(&state("wrap_up"), 1.0);
    assert_eq!(gw.metric(&state("on_call")), Some(1.0));
    gw.wait_metric(&state("available"), 1.0);
    assert_eq!(gw.metric(&state("wrap_up")), Some(0.0));
    caller2.expect_success(&gw);
    seat2.expect_success(&gw);
    gw.wait_metric(&state("wrap_up"), 1.0);
    gw.wait_metric(&state("available"), 2.0);
    assert_eq!(gw.metric(&state("on_call")), Some(0.0));
    assert_eq!(gw.metric(&state("logged_out")), Some(2.0));
    assert_eq!(
        gw.metric("hotline_seat_offers_total{result=\"answered\"}"),
        Some(2.0)
    );
}

/// A real phone as the seat: baresip, answering by itself, is busy with
/// caller 1; caller 2 waits hearing the welcome, and once caller 1 hangs up
/// and the wrap-up passes, baresip takes caller 2, who then hears the
/// phone's voice (its 440 Hz tone).
#[test]
fn a_baresip_seat_with_auto_answer_takes_a_queued_caller() {
    let gw = Gateway::start("queue-baresip");
    let phone = Baresip::start(&gw, "8001");
    gw.wait_metric(&seats("general", "available"), 1.0);
    let caller1 = gw.call_for("12345", "caller_bye", "[media_port]", 4000);
    gw.wait_bridged(1.0);
    let mut caller2 = Listened::call(&gw, "12345");
    gw.wait_metric(&of_queue("hotline_queue_callers", "general"), 1.0);
    let waiting = caller2.listen(Duration::from_millis(2500));
    let welcome = heard_prompt("welcome");
    assert!(
        find(&waiting, &welcome[..8000], 0).is_some(),
        "caller 2 hears the welcome while it waits ({} samples)",
        waiting.len()
    );
    caller1.expect_success(&gw);
    gw.wait_bridged(2.0);
    let talking = caller2.listen(Duration::from_millis(1500));
    assert!(
        ends_in_baresip_voice(&talking),
        "caller 2 hears the phone once bridged ({} samples)\n{}",
        talking.len(),
        phone.log_text()
    );
    let answer = phone.command("hangup");
    assert!(answer.contains("\"ok\":true"), "{answer}");
    caller2.caller.expect_success(&gw);
    gw.wait_metric("hotline_active_calls", 0.0);
    assert_eq!(queue_calls(&gw, "general", "answered"), 2.0);
    assert_eq!(gw.calls_total("queue", "12345", "completed"), 2.0);
}

/// The events of `call` in the queue log, in order.
fn events_of<'a>(log: &'a [Value], call: &Value) -> Vec<&'a Value> {
    log.iter().filter(|e| e["call"] == *call).collect()
}

/// Asserts that `call`'s lines in the queue log begin with `path` (each
/// "EVENT queue"), the last its CONNECT, to `seat` after waiting at least
/// `min_wait` seconds since its first arrival.
fn assert_connected_via(log: &[Value], call: &Value, path: &[&str], seat: &str, min_wait: f64) {
    let events = events_of(log, call);
    let seen: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["event"].as_str().unwrap(),
                e["queue"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert!(
        seen.len() >= path.len() && seen[..path.len()] == *path,
        "{seen:?}\n{log:#?}"
    );
    let connect = events[path.len() - 1];
    assert_eq!(connect["seat"], seat, "{connect}");
    let wait = connect["wait"].as_f64().unwrap();
    assert!(
        wait >= min_wait,
        "connected after {wait} s, not {min_wait} s: {connect}"
    );
}

/// With `[acd] queue_log` set, a served caller leaves ENTERQUEUE, CONNECT
/// and COMPLETE… lines, each one JSON object with the time, queue, call,
/// seat and wait.
#[test]
fn the_queue_log_has_enterqueue_connect_and_complete_lines_as_json() {
    let gw = Gateway::start_with("queue-log", with_queue_log);
    let port = free_port();
    gw.register("8001", port);
    let seat = gw.seat_for("8001", port, "answer", "seat_bye", 1000);
    let started = chrono::Utc::now();
    gw.call("12345", "wait_bye").expect_success(&gw);
    seat.expect_success(&gw);
    wait_events(&gw, "COMPLETE", 1);

    let log = queue_log(&gw);
    let call = &log[0]["call"];
    assert!(call.is_u64(), "{log:#?}");
    let events = events_of(&log, call);
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 3, "{log:#?}");
    assert_eq!(&kinds[..2], ["ENTERQUEUE", "CONNECT"], "{log:#?}");
    assert!(kinds[2].starts_with("COMPLETE"), "{log:#?}");
    let mut last = started - chrono::Duration::seconds(1);
    for e in &events {
        let time = chrono::DateTime::parse_from_rfc3339(e["time"].as_str().unwrap())
            .unwrap_or_else(|err| panic!("{err}: {e}"));
        assert!(time >= last, "times run forward: {log:#?}");
        last = time.into();
        assert_eq!(e["queue"], "general", "{e}");
        assert!(e["wait"].as_f64().is_some_and(|w| w >= 0.0), "{e}");
        assert_eq!(e["position"], 1, "{e}");
    }
    assert!(last <= chrono::Utc::now(), "{log:#?}");
    assert!(events[0]["seat"].is_null(), "{}", events[0]);
    assert_eq!(events[1]["seat"], "8001");
    assert_eq!(events[2]["seat"], "8001");
    // COMPLETE… carries the wait before the call was connected, and the
    // talk time (the seat held the call 1 s).
    assert_eq!(events[2]["wait"], events[1]["wait"]);
    let talk = events[2]["talk"].as_f64().unwrap();
    assert!(talk >= 1.0, "talk {talk} s");
}

/// COMPLETEAGENT when the seat hangs up, COMPLETECALLER when the caller
/// does (Asterisk's queue_log meaning).
#[test]
fn the_queue_log_tells_a_seat_hanging_up_from_a_caller_hanging_up() {
    let gw = Gateway::start_with("queue-log-who", with_queue_log);
    let port = free_port();
    gw.register("8001", port);
    let seat = gw.seat_for("8001", port, "answer", "seat_bye", 500);
    gw.call("12345", "wait_bye").expect_success(&gw);
    seat.expect_success(&gw);
    // Past its wrap-up, the seat takes the next caller at once.
    gw.wait_metric(&seats("general", "available"), 1.0);
    let seat = gw.seat("8001", port, "answer", "wait_bye");
    gw.call_for("12345", "caller_bye", "[media_port]", 500)
        .expect_success(&gw);
    seat.expect_success(&gw);

    let completes = wait_events(&gw, "COMPLETE", 2);
    let kinds: Vec<&str> = completes
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["COMPLETEAGENT", "COMPLETECALLER"],
        "the seat hung up the first call, the caller the second"
    );
}

/// Reloads while three callers wait (the only seat busy): the general
/// queue's announcement interval, strategy, wrap-up and limit changed in
/// four rewrites of the file (polled each second) and a reload on SIGHUP;
/// then the seat comes free and serves the three in the
/// order they arrived, none dropped: every caller is connected (CONNECT)
/// and ends with the seat's BYE.
#[test]
fn reloads_while_callers_wait_keep_their_order_and_drop_none() {
    let gw = Gateway::start_with("queue-reload", |t| {
        with_queue_log(t).replacen("wrap_up_seconds = 1\n", "wrap_up_seconds = 2\n", 1)
    });
    let port = free_port();
    gw.register("8001", port);
    let seat = gw.seat_for("8001", port, "answer", "seat_bye", 8000);
    let caller0 = gw.call("12345", "wait_bye");
    gw.wait_bridged(1.0);
    let callers = of_queue("hotline_queue_callers", "general");
    let waiting: Vec<Sipp> = (1..=3)
        .map(|n| {
            let caller = gw.call("12345", "wait_bye");
            gw.wait_metric(&callers, f64::from(n));
            caller
        })
        .collect();

    let original = std::fs::read_to_string(&gw.table.path).unwrap();
    let edit = |from: &str, to: &str, text: &str| {
        let changed = text.replacen(from, to, 1);
        assert_ne!(changed, text, "{from}");
        changed
    };
    let announce = edit("announce_seconds = 45", "announce_seconds = 10", &original);
    let strategy = edit(
        "strategy = \"longest_idle\"",
        "strategy = \"round_robin\"",
        &announce,
    );
    let wrap_up = edit("wrap_up_seconds = 2\n", "wrap_up_seconds = 3\n", &strategy);
    // The wrap-up back at 2 s, for the three.
    let limits = edit("max_callers = 200", "max_callers = 50", &strategy);
    let reloads = "hotline_routing_reloads_total{result=\"ok\"}";
    let reloaded = |n: f64| {
        let seen = wait_for(Duration::from_secs(5), || {
            gw.metric(reloads).filter(|&r| r >= n)
        });
        assert!(
            seen.is_some(),
            "reload {n} not seen\n{}",
            gw.daemon.log_text()
        );
    };
    for (n, text) in [announce, strategy, wrap_up, limits].iter().enumerate() {
        gw.table.write(text);
        reloaded(n as f64 + 1.0);
    }
    gw.daemon.signal("HUP");
    reloaded(5.0);
    assert!(
        gw.daemon
            .log_text()
            .contains("routing table reloaded trigger=\"sighup\""),
        "{}",
        gw.daemon.log_text()
    );
    assert_eq!(
        gw.metric(&callers),
        Some(3.0),
        "the reloads were over before the seat came free, no caller lost"
    );

    seat.expect_success(&gw);
    caller0.expect_success(&gw);
    // The same phone, free again, for the three (2 s wrap-up each).
    let seat = gw.sipp(
        "seat.xml",
        &[
            ("MODE", "answer"),
            ("HANGUP", "seat_bye"),
            ("HOLD_MS", "300"),
        ],
        "127.0.0.1",
        port,
        &["-s", "8001", "-m", "3"],
    );
    for caller in waiting {
        caller.expect_success(&gw);
    }
    seat.expect_success(&gw);

    let log = queue_log(&gw);
    let calls_of = |event: &str| -> Vec<Value> {
        log.iter()
            .filter(|e| e["event"] == event)
            .map(|e| e["call"].clone())
            .collect()
    };
    let entered = calls_of("ENTERQUEUE");
    assert_eq!(entered.len(), 4, "{log:#?}");
    assert_eq!(calls_of("CONNECT"), entered, "served in arrival order");
    for e in &log {
        let kind = e["event"].as_str().unwrap();
        assert!(
            ["ENTERQUEUE", "CONNECT"].contains(&kind) || kind.starts_with("COMPLETE"),
            "{e}"
        );
    }
    assert_eq!(queue_calls(&gw, "general", "answered"), 4.0);
    assert_eq!(gw.calls_total("queue", "12345", "completed"), 4.0);
}

/// Waiting callers are told how many are ahead and how long they may
/// wait, in Mandarin numerals, the wait (n + 1) · AHT / seats rounded up
/// to whole minutes: with one seat and a 100 s handle time, the head
/// caller hears 您是下一位 … 约两分钟 (200 s → 两, not 二), the next
/// 您前面还有一位来电者在等候 … 约四分钟 (200 s → 3⅓ → 4).
#[test]
fn waiting_callers_hear_how_many_are_ahead_and_the_wait_in_mandarin_numerals() {
    let gw = Gateway::start_with("queue-numerals", |t| {
        t.replacen(
            "default_handle_seconds = 180",
            "default_handle_seconds = 100",
            1,
        )
    });
    let (_seat, _caller1) = the_only_seat_busy(&gw, 18_000);
    let callers = of_queue("hotline_queue_callers", "general");
    let mut head = Listened::call(&gw, "12345");
    gw.wait_metric(&callers, 1.0);
    let mut next = Listened::call(&gw, "12345");
    gw.wait_metric(&callers, 2.0);
    let span = Duration::from_millis(15_000);
    let head = std::thread::spawn(move || head.listen(span));
    let heard_next = next.listen(span);
    let heard_head = head.join().unwrap();
    // The last prompt, 分钟, at least in part (half a second).
    let minutes = 4000;
    assert_heard_in_order(
        &heard_head,
        &[
            "welcome",
            "you_are_next",
            "estimated_wait",
            "num_liang",
            "minutes",
        ],
        minutes,
    );
    assert_heard_in_order(
        &heard_next,
        &[
            "welcome",
            "queue_position",
            "num_1",
            "queue_callers",
            "estimated_wait",
            "num_4",
            "minutes",
        ],
        minutes,
    );
}

/// With an exit key set, a waiting caller who presses it during the
/// welcome leaves at once for the exit action (`busy`: queue_busy, goodbye,
/// BYE), counted `exit_key` and logged EXITWITHKEY.
#[test]
fn a_waiting_caller_pressing_the_exit_key_leaves_the_queue() {
    let gw = Gateway::start_with("queue-exit-key", |t| {
        let keyed = t.replace(
            "# exit_key = \"0\"\n# exit_action = \"busy\"",
            "exit_key = \"0\"\nexit_action = \"busy\"",
        );
        assert_ne!(keyed, t);
        with_queue_log(keyed)
    });
    let (seat, caller1) = the_only_seat_busy(&gw, 12_000);
    let mut caller2 = Listened::call(&gw, "12345");
    gw.wait_metric(&of_queue("hotline_queue_callers", "general"), 1.0);
    let mut heard = caller2.listen(Duration::from_millis(1000));
    caller2.press(0);
    heard.extend(caller2.listen(Duration::from_millis(8000)));
    let goodbye = heard_prompt("goodbye").len();
    let busy = assert_heard_in_order(&heard, &["queue_busy", "goodbye"], goodbye);
    assert!(
        busy < heard_prompt("welcome").len(),
        "the key cut the welcome short: queue_busy from sample {busy}"
    );
    caller2.caller.expect_success(&gw);
    assert_eq!(queue_calls(&gw, "general", "exit_key"), 1.0);
    assert_eq!(
        gw.metric(&of_queue("hotline_queue_callers", "general")),
        Some(0.0)
    );
    let [exit] = wait_events(&gw, "EXITWITHKEY", 1).try_into().unwrap();
    assert_eq!(exit["queue"], "general", "{exit}");
    caller1.expect_success(&gw);
    seat.expect_success(&gw);
}

/// `max_wait_seconds` with another queue as the overflow: a caller who
/// waited 10 s in general for its busy seat times out (EXITWITHTIMEOUT,
/// counted `timeout`) into the leader's queue, whose free seat takes it;
/// its wait still counts from its first arrival.
#[test]
fn a_caller_waiting_past_max_wait_overflows_to_another_queue() {
    let gw = Gateway::start_with("queue-timeout", |t| {
        let timed = t.replacen(
            "max_wait_seconds = 900\noverflow = \"busy\"",
            "max_wait_seconds = 10\noverflow = \"queue:leader\"",
            1,
        );
        assert_ne!(timed, t);
        with_queue_log(timed)
    });
    let (seat, caller1) = the_only_seat_busy(&gw, 13_000);
    let leader = free_port();
    gw.register("8900", leader);
    let seat_leader = gw.seat_for("8900", leader, "answer", "seat_bye", 500);
    let caller2 = gw.call("12345", "wait_bye");
    caller2.expect_success(&gw);
    seat_leader.expect_success(&gw);

    assert_eq!(queue_calls(&gw, "general", "timeout"), 1.0);
    assert_eq!(queue_calls(&gw, "leader", "answered"), 1.0);
    let log = queue_log(&gw);
    let second = &wait_events(&gw, "ENTERQUEUE", 2)[1]["call"];
    // Its wait counts from its first arrival.
    assert_connected_via(
        &log,
        second,
        &[
            "ENTERQUEUE general",
            "EXITWITHTIMEOUT general",
            "ENTERQUEUE leader",
            "CONNECT leader",
        ],
        "8900",
        10.0,
    );
    caller1.expect_success(&gw);
    seat.expect_success(&gw);
}

/// The table with a queue of its own, `legal`, for 12348's callers.
fn with_legal_queue(text: &str) -> String {
    let legal = text
        .replacen(
            "# ── Emergency numbers",
            "[[queues]]\nid = \"legal\"\nname = \"12348 法律服务\"\nskill = \"legal\"\n\n# ── Emergency numbers",
            1,
        )
        .replacen(
            "skill = \"legal\"\nremark = \"设专家座席\"",
            "skill = \"legal\"\nqueue = \"legal\"\nremark = \"设专家座席\"",
            1,
        );
    assert_eq!(legal.matches("queue = \"legal\"").count(), 1);
    legal
}

/// A reload that removes a queue hands its waiting callers to the main
/// queue, keeping their arrival, with an announcement (queue_moved): here
/// 12348 waits in its own queue `legal` while its expert seat is busy;
/// the reload removes `legal`, and the caller, moved to general, hears
/// queue_moved and is served by a general seat once its widening time
/// (10 s from its first arrival, in this test) has come.
#[test]
fn a_reload_removing_a_queue_moves_its_callers_to_the_main_queue() {
    let gw = Gateway::start_with("queue-removed", |t| {
        with_queue_log(t).replacen("widen_after_seconds = 4", "widen_after_seconds = 10", 1)
    });
    let before = std::fs::read_to_string(&gw.table.path).unwrap();
    let reloads = "hotline_routing_reloads_total{result=\"ok\"}";
    gw.table.write(&with_legal_queue(&before));
    gw.wait_metric(reloads, 1.0);

    let (expert, general) = (free_port(), free_port());
    gw.register("8101", expert);
    gw.register("8001", general);
    let seat_expert = gw.seat("8101", expert, "answer", "wait_bye");
    let caller1 = gw.call_for("12348", "caller_bye", "[media_port]", 13_000);
    gw.wait_bridged(1.0);
    let seat_general = gw.seat_for("8001", general, "answer", "seat_bye", 500);
    let mut caller2 = Listened::call(&gw, "12348");
    let legal = of_queue("hotline_queue_callers", "legal");
    gw.wait_metric(&legal, 1.0);
    let mut heard = caller2.listen(Duration::from_millis(1000));

    gw.table.write(&before);
    gw.wait_metric(reloads, 2.0);
    gw.wait_metric(&of_queue("hotline_queue_callers", "general"), 1.0);
    heard.extend(caller2.listen(Duration::from_millis(4500)));
    let moved = heard_prompt("queue_moved");
    assert!(
        find(&heard, &moved, 0).is_some(),
        "the moved caller hears queue_moved ({} samples)",
        heard.len()
    );
    gw.wait_bridged(2.0);
    seat_general.expect_success(&gw);
    caller2.caller.expect_success(&gw);

    let log = queue_log(&gw);
    let second = &wait_events(&gw, "ENTERQUEUE", 3)[1]["call"];
    // Its arrival was kept: widened after 10 s from it.
    assert_connected_via(
        &log,
        second,
        &["ENTERQUEUE legal", "ENTERQUEUE general", "CONNECT general"],
        "8001",
        10.0,
    );
    caller1.expect_success(&gw);
    seat_expert.expect_success(&gw);
}

/// A queue removed by a reload leaves no gauges behind: its callers, its
/// estimated wait and its seats by state are gone (or zero), not frozen at
/// what they were before the reload.
#[test]
fn a_queue_removed_by_a_reload_leaves_no_gauges_behind() {
    let gw = Gateway::start("queue-removed-gauges");
    let before = std::fs::read_to_string(&gw.table.path).unwrap();
    let reloads = "hotline_routing_reloads_total{result=\"ok\"}";
    gw.table.write(&with_legal_queue(&before));
    gw.wait_metric(reloads, 1.0);
    gw.register("8101", free_port());
    let available = seats("legal", "available");
    gw.wait_metric(&available, 1.0);
    gw.table.write(&before);
    gw.wait_metric(reloads, 2.0);
    for series in [
        available,
        of_queue("hotline_queue_estimated_wait_seconds", "legal"),
        of_queue("hotline_queue_callers", "legal"),
    ] {
        // The ACD takes the new table at its next look (within a second).
        let gone = wait_for(Duration::from_secs(5), || {
            let value = gw.metric(&series);
            (value.is_none() || value == Some(0.0)).then_some(())
        });
        assert!(
            gone.is_some(),
            "{series} is still {:?} after its queue was removed",
            gw.metric(&series)
        );
    }
}

/// A seat pauses from its phone (baresip dials `*51`): it hears it is
/// paused and is hung up on, the queue log has PAUSE with reason `phone`,
/// and a caller waits instead of being offered to it; `*50` resumes it and
/// the waiting caller is put through to it.
#[test]
fn a_seat_pauses_and_resumes_from_its_phone_with_the_feature_codes() {
    let gw = Gateway::start_with("feature-codes", with_queue_log);
    let phone = Baresip::start(&gw, "8001");
    gw.wait_metric("hotline_registered_seats", 1.0);
    gw.wait_metric(&seats("general", "available"), 1.0);
    let answer = phone.command_with("dial", &format!("sip:*51@127.0.0.1:{}", gw.sip));
    assert!(answer.contains("\"ok\":true"), "{answer}");
    gw.wait_metric(&seats("general", "paused"), 1.0);
    // Answered, told, hung up by the gateway once seat_paused has played.
    gw.wait_metric("hotline_active_calls", 0.0);
    let pause = wait_events(&gw, "PAUSE", 1);
    assert_eq!(pause[0]["seat"], "8001");
    assert_eq!(pause[0]["reason"], "phone");

    // Paused, it is offered nothing: the caller waits.
    let mut caller = Listened::call(&gw, "12345");
    gw.wait_metric(&of_queue("hotline_queue_callers", "general"), 1.0);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        gw.metric("hotline_seat_offers_total{result=\"answered\"}"),
        Some(0.0)
    );
    assert_eq!(
        gw.metric(&of_queue("hotline_queue_callers", "general")),
        Some(1.0)
    );

    // *50: resumed once its own short call is over, then put through.
    let answer = phone.command_with("dial", &format!("sip:*50@127.0.0.1:{}", gw.sip));
    assert!(answer.contains("\"ok\":true"), "{answer}");
    wait_events(&gw, "UNPAUSE", 1);
    gw.wait_bridged(1.0);
    let talking = caller.listen(Duration::from_millis(1500));
    assert!(
        ends_in_baresip_voice(&talking),
        "the caller hears the phone once bridged ({} samples)\n{}",
        talking.len(),
        phone.log_text()
    );
    phone.command("hangup");
    caller.caller.expect_success(&gw);
    gw.wait_metric("hotline_active_calls", 0.0);
    assert_eq!(
        gw.calls_total("direct", "unknown", "completed"),
        2.0,
        "the two feature calls"
    );
}
