//! `hotline simulate` runs the ACD that `hotline serve` runs: the same
//! scripted arrivals, played to the real daemon by SIPp callers and given
//! to the simulator as the daemon's own ENTERQUEUE instants, are answered
//! by the same seats in the same order.
//!
//! Both run on one table: the test table (queues on a test's time scale,
//! see `Gateway::start_with`: the general queue's wrap-up is 1 s, its
//! strategy longest idle) with the queue log on and only two seats that
//! serve 12345, 8001 and 8002 (8201 and 8202 are taken out: the simulator
//! logs in every seat of its table). The seats register in table order,
//! answer at once and hang up after 3 s, the simulator's fixed handle time.
//! Six callers dial 12345 half a second apart and stay on the line until
//! their seat hangs up:
//!
//! - 8001: caller 0 at 0 s, its call over at 3 s, free again at 4 s (1 s
//!   wrap-up); caller 2 (waiting since 1 s) at 4 s, over at 7 s; caller 4
//!   at 8 s, over at 11 s;
//! - 8002: caller 1 at 0.5 s, over at 3.5 s; caller 3 at 4.5 s, over at
//!   7.5 s; caller 5 at 8.5 s, over at 11.5 s.
//!
//! Every instant that puts a line in the queue log (an arrival, a connect,
//! a call's end) is at least half a second from any other, so the jitter of
//! a loopback run (milliseconds) cannot change the order of the lines. SIPp must be installed (`tests/run.sh` installs it): this test
//! fails, never skips, without it.

mod support;

use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::gateway::{Gateway, Sipp, scenario};
use support::{free_port, wait_for};

/// Each seat hangs up this long after it answered: the talk time, and the
/// simulator's fixed handle time.
const HOLD_MS: u32 = 3000;

/// When each caller dials 12345, after the first.
const ARRIVALS_MS: [u64; 6] = [0, 500, 1000, 1500, 2000, 2500];

/// The order the script gives: (caller, seat) of each CONNECT in turn.
const SCRIPTED: [(usize, &str); 6] = [
    (0, "8001"),
    (1, "8002"),
    (2, "8001"),
    (3, "8002"),
    (4, "8001"),
    (5, "8002"),
];

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

/// The table without seat `id` (its `[[seats]]` block and the blank line
/// after it).
fn without_seat(text: &str, id: &str) -> String {
    let head = format!("[[seats]]\nid = \"{id}\"\n");
    let start = text
        .find(&head)
        .unwrap_or_else(|| panic!("no seat {id} in the table"));
    let len = text[start..]
        .find("\n\n")
        .map_or(text.len() - start, |n| n + 2);
    format!("{}{}", &text[..start], &text[start + len..])
}

/// A queue log's text and its lines, each a JSON object.
fn read_log(path: &Path) -> (String, Vec<Value>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: {e}: {l}\n{text}", path.display()))
        })
        .collect();
    (text, lines)
}

/// The lines of `log` whose event is `kind`.
fn of_kind<'a>(log: &'a [Value], kind: &str) -> Vec<&'a Value> {
    log.iter().filter(|e| e["event"] == kind).collect()
}

/// The CONNECTs of a queue log in order, each as (the caller's place in
/// the order of ENTERQUEUE lines, the seat): call numbers are the daemon's
/// or the simulator's own, places are common to both.
fn answering_order(log: &[Value]) -> Result<Vec<(usize, String)>, String> {
    let mut place = HashMap::new();
    for e in of_kind(log, "ENTERQUEUE") {
        let call = e["call"]
            .as_u64()
            .ok_or_else(|| format!("ENTERQUEUE without a call number: {e}"))?;
        let next = place.len();
        place.entry(call).or_insert(next);
    }
    of_kind(log, "CONNECT")
        .into_iter()
        .map(|e| -> Result<(usize, String), String> {
            let call = e["call"]
                .as_u64()
                .ok_or_else(|| format!("CONNECT without a call number: {e}"))?;
            let at = *place
                .get(&call)
                .ok_or_else(|| format!("call {call} connected, never entered: {e}"))?;
            let seat = e["seat"]
                .as_str()
                .ok_or_else(|| format!("CONNECT without a seat: {e}"))?;
            Ok((at, seat.to_string()))
        })
        .collect()
}

/// Whether some caller of `log` waited over a second before its CONNECT.
fn someone_waited(log: &[Value]) -> bool {
    of_kind(log, "CONNECT")
        .iter()
        .any(|e| e["wait"].as_f64().is_some_and(|w| w > 1.0))
}

/// Seat `id`'s phone on the port it registered from, answering at once
/// and hanging up `HOLD_MS` later, for every call it is offered (as many as
/// there are callers, over the whole run).
fn seat(gw: &Gateway, id: &str, port: u16) -> Sipp {
    let calls = ARRIVALS_MS.len().to_string();
    gw.sipp(
        "seat.xml",
        &[
            ("MODE", "answer"),
            ("HANGUP", "seat_bye"),
            ("HOLD_MS", &HOLD_MS.to_string()),
        ],
        "127.0.0.1",
        port,
        &["-s", id, "-m", &calls, "-timeout", "60s"],
    )
}

/// A caller from the carrier trunk, `number`, to 12345, on the line until
/// the seat's BYE reaches it.
fn caller(gw: &Gateway, number: &str) -> Sipp {
    let shipped = scenario("trunk_call.xml");
    let text = shipped.replace("13907350000", number);
    assert_ne!(text, shipped, "trunk_call.xml names its caller");
    gw.sipp_text(
        "trunk_call.xml",
        text,
        &[
            ("DIALED", "12345"),
            ("HANGUP", "wait_bye"),
            ("MEDIA_PORT", "[media_port]"),
            ("PAUSE_MS", "0"),
            ("KEYS", "no_keys"),
            ("KEY", "1"),
        ],
        "127.0.0.1",
        free_port(),
        &[],
    )
}

#[test]
fn simulate_answers_the_arrivals_serve_answered_with_the_same_seats_in_the_same_order() {
    let gw = Gateway::start_with("simulate-vs-serve", |t| {
        with_queue_log(without_seat(&without_seat(&t, "8201"), "8202"))
    });
    // The table the daemon loaded, for the simulator too.
    let table = std::fs::read_to_string(&gw.table.path).unwrap();
    let general = &table[table.find("id = \"general\"").unwrap()..];
    let general = &general[..general.find("[[queues]]").unwrap()];
    assert!(
        general.contains("strategy = \"longest_idle\"")
            && general.contains("wrap_up_seconds = 1\n"),
        "the script assumes longest idle and a 1 s wrap-up:\n{general}"
    );
    let general_seats = table
        .lines()
        .filter(|l| l.starts_with("skills = [") && l.contains("\"general\""))
        .count();
    assert_eq!(general_seats, 2, "only 8001 and 8002 serve 12345");

    // In table order: 8001 logs in first and is idle the longer, as the
    // simulator's seats, logged in together, break the tie.
    let (p1, p2) = (free_port(), free_port());
    gw.register("8001", p1);
    gw.register("8002", p2);
    let _seats = [seat(&gw, "8001", p1), seat(&gw, "8002", p2)];
    // Both phones listening before the first offer: an INVITE sent before
    // SIPp is up is retransmitted only 500 ms later, off the script.
    std::thread::sleep(Duration::from_millis(1000));

    let numbers: Vec<String> = (0..ARRIVALS_MS.len())
        .map(|i| format!("139073510{i:02}"))
        .collect();
    let start = Instant::now();
    let callers: Vec<Sipp> = ARRIVALS_MS
        .iter()
        .zip(&numbers)
        .map(|(&at, number)| {
            if let Some(rest) = Duration::from_millis(at).checked_sub(start.elapsed()) {
                std::thread::sleep(rest);
            }
            caller(&gw, number)
        })
        .collect();
    // Each ends with its seat's BYE.
    for c in callers {
        c.expect_success(&gw);
    }
    let queue_log = gw.dir().join("queue_log.jsonl");
    let (served_text, served) = wait_for(Duration::from_secs(10), || {
        let (text, log) = read_log(&queue_log);
        let completed = log
            .iter()
            .filter(|e| {
                e["event"]
                    .as_str()
                    .is_some_and(|k| k.starts_with("COMPLETE"))
            })
            .count();
        (completed >= ARRIVALS_MS.len()).then_some((text, log))
    })
    .unwrap_or_else(|| {
        panic!(
            "not every call completed\n--- queue log\n{}\n--- daemon\n{}",
            read_log(&queue_log).0,
            gw.daemon.log_text()
        )
    });
    for e in &served {
        let kind = e["event"].as_str().unwrap_or_default();
        assert!(
            ["ENTERQUEUE", "CONNECT"].contains(&kind) || kind.starts_with("COMPLETE"),
            "every offer answered at once, no caller lost: {e}\n{served_text}"
        );
    }

    // The arrivals, as the daemon logged them, in order: ENTERQUEUE i is
    // caller i (they came half a second apart).
    let enters = of_kind(&served, "ENTERQUEUE");
    assert_eq!(enters.len(), numbers.len(), "{served_text}");
    let mut csv = String::from("time,dialed,caller\n");
    for (e, number) in enters.iter().zip(&numbers) {
        let time = e["time"].as_str().unwrap_or_else(|| panic!("{e}"));
        csv += &format!("{time},12345,{number}\n");
    }
    // The simulator's files apart from the daemon's: the table's relative
    // paths (recordings, tickets, its queue log) resolve beside its copy.
    let sim = gw.dir().join("simulate");
    std::fs::create_dir_all(sim.join("recordings")).unwrap();
    let sim_table = sim.join("routing.toml");
    std::fs::write(&sim_table, &table).unwrap();
    let arrivals = sim.join("arrivals.csv");
    std::fs::write(&arrivals, &csv).unwrap();
    let sim_log = sim.join("sim.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["simulate", "--config", sim_table.to_str().unwrap()])
        .args(["--arrivals", arrivals.to_str().unwrap()])
        .args(["--handle-dist", "fixed"])
        .args(["--handle-seconds", &(HOLD_MS / 1000).to_string()])
        // The seats hang up (COMPLETEAGENT), as the SIPp seats do.
        .args(["--seat-hangup-share", "1"])
        .args(["--log", sim_log.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hotline simulate: {:?}\n--- stdout\n{}\n--- stderr\n{}\n--- arrivals\n{csv}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (simulated_text, simulated) = read_log(&sim_log);
    let logs = format!(
        "--- arrivals\n{csv}--- serve's queue log\n{served_text}--- simulate's log\n{simulated_text}"
    );

    let serve_order = answering_order(&served).unwrap_or_else(|e| panic!("serve: {e}\n{logs}"));
    let sim_order = answering_order(&simulated).unwrap_or_else(|e| panic!("simulate: {e}\n{logs}"));
    let scripted: Vec<(usize, String)> =
        SCRIPTED.iter().map(|&(c, s)| (c, s.to_string())).collect();
    assert_eq!(
        sim_order,
        serve_order,
        "simulate and serve answered the callers differently, (caller, seat) in turn \
         (serve {} the script)\n{logs}",
        if serve_order == scripted {
            "followed"
        } else {
            "did not follow"
        }
    );
    // Not trivially equal: both seats answered, a queue formed.
    for seat in ["8001", "8002"] {
        assert!(
            serve_order.iter().any(|(_, s)| s == seat),
            "{seat} answered nobody\n{logs}"
        );
    }
    assert_eq!(serve_order.len(), ARRIVALS_MS.len(), "{logs}");
    // Line for line the same events, in the same order.
    let kinds = |log: &[Value]| -> Vec<String> {
        log.iter()
            .map(|e| e["event"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        kinds(&simulated),
        kinds(&served),
        "the queue logs' events differ\n{logs}"
    );
    assert!(someone_waited(&served), "nobody waited in serve\n{logs}");
    assert!(
        someone_waited(&simulated),
        "nobody waited in simulate\n{logs}"
    );
}
