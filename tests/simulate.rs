//! `hotline simulate` as an operator runs it: a day on the shipped table,
//! the synthetic queue, its JSON, its report in a real browser, its plan,
//! and its refusals of bad input. (The figures against queueing theory
//! are unit tests beside the simulator; `tests/simulate_vs_serve.rs`
//! runs it against the daemon.) Chromium must be installed for the
//! report's test (`tests/run.sh` installs it): it fails, never skips,
//! without it.

mod support;

use serde_json::Value;
use support::*;

fn json(args: &[&str]) -> Value {
    let (code, out, err) = hotline(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

const SUMMARY_KEYS: [&str; 10] = [
    "offered",
    "answered",
    "abandoned",
    "service_level",
    "service_level_seconds",
    "asa_seconds",
    "p_wait",
    "p_abandon",
    "occupancy",
    "longest_wait_seconds",
];

#[test]
fn the_synthetic_queue_prints_its_summary_and_half_hours_as_json() {
    let v = json(&[
        "simulate",
        "--calls-per-hour",
        "200",
        "--handle-seconds",
        "180",
        "--seats",
        "14",
        "--hours",
        "8",
        "--patience-seconds",
        "300",
        "--service-level-seconds",
        "20",
        "--seed",
        "3",
        "--json",
    ]);
    assert_eq!(v["mode"], "synthetic");
    let s = &v["summary"];
    for k in SUMMARY_KEYS {
        assert!(
            s.get(k).is_some_and(|x| !x.is_null()),
            "summary lacks {k}: {s}"
        );
    }
    assert_eq!(s["service_level_seconds"], 20.0);
    let offered = s["offered"].as_u64().unwrap();
    assert!((1400..1800).contains(&offered), "{offered}");
    assert_eq!(
        offered,
        s["answered"].as_u64().unwrap()
            + s["abandoned"].as_u64().unwrap()
            + s["overflowed"].as_u64().unwrap()
            + s["waiting_at_end"].as_u64().unwrap()
    );
    let intervals = v["intervals"].as_array().unwrap();
    assert_eq!(intervals.len(), 16);
    for (i, iv) in intervals.iter().enumerate() {
        assert_eq!(iv["start"], (i * 1800) as u64);
        for k in SUMMARY_KEYS {
            assert!(iv.get(k).is_some(), "interval lacks {k}");
        }
        assert_eq!(iv["seats_staffed"], 14.0);
    }
    let sum: u64 = intervals
        .iter()
        .map(|i| i["offered"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, offered);
}

#[test]
fn the_same_seed_prints_the_same_bytes_and_another_seed_does_not() {
    let args = |seed: &'static str| {
        vec![
            "simulate",
            "--date",
            "2023-03-08",
            "--patience-seconds",
            "240",
            "--seed",
            seed,
            "--json",
        ]
    };
    let (a, b, c) = (
        hotline(&args("9")),
        hotline(&args("9")),
        hotline(&args("10")),
    );
    assert_eq!(a.0, 0, "{}", a.2);
    assert_eq!(a.1, b.1, "the same seed, the same output");
    assert_ne!(a.1, c.1);
    let (_, text1, _) = hotline(&["simulate", "--date", "2023-03-08", "--seed", "9"]);
    let (_, text2, _) = hotline(&["simulate", "--date", "2023-03-08", "--seed", "9"]);
    assert_eq!(text1, text2);
}

#[test]
fn a_day_on_the_shipped_table_counts_every_call_once() {
    // The default profile (about 2,000 calls) on a leader-session day.
    let v = json(&["simulate", "--date", "2023-03-08", "--json"]);
    assert_eq!(v["mode"], "table");
    assert_eq!(v["date"], "2023-03-08");
    let s = &v["summary"];
    let calls = s["calls"].as_u64().unwrap();
    assert!((1850..2200).contains(&calls), "{calls}");
    assert!(s["emergency"].as_u64().unwrap() > 0);
    assert!(s["sub_centre"].as_u64().unwrap() > 0);
    assert!(
        s["tickets"].as_u64().unwrap() > 0,
        "the session's callers take tickets"
    );
    assert_eq!(v["intervals"].as_array().unwrap().len(), 48);
    assert_eq!(v["intervals"][19]["time"], "09:30");
    let queues: Vec<&str> = v["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["queue"].as_str().unwrap())
        .collect();
    assert_eq!(queues, ["general", "leader"]);
}

#[test]
fn a_real_day_replays_from_a_cdr_export_and_a_roster_sets_the_shifts() {
    let dir = TempTable::new("simulate-replay");
    let csv = dir.dir.join("day.csv");
    std::fs::write(
        &csv,
        "call_id,started,caller,dialed\n\
         a,2026-12-02T01:00:00Z,13900000001,12345\n\
         b,2026-12-02T01:00:01Z,13900000002,12345\n\
         c,2026-12-02T01:00:02Z,13900000003,12348\n\
         d,2026-12-02T01:00:03Z,13900000004,110\n\
         e,2026-12-02T01:00:04Z,13900000005,99999\n",
    )
    .unwrap();
    let roster = dir.dir.join("roster.csv");
    std::fs::write(
        &roster,
        "seat,from,until\n8001,08:00,10:00\n8101,08:00,10:00\n",
    )
    .unwrap();
    let log = dir.dir.join("log.jsonl");
    let (code, out, err) = hotline(&[
        "simulate",
        "--arrivals",
        csv.to_str().unwrap(),
        "--roster",
        roster.to_str().unwrap(),
        "--handle-dist",
        "fixed",
        "--handle-seconds",
        "60",
        "--log",
        log.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("99999"), "an unserved number is named: {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["date"], "2026-12-02");
    let s = &v["summary"];
    assert_eq!(
        (
            s["calls"].as_u64(),
            s["offered"].as_u64(),
            s["emergency"].as_u64(),
            s["rejected"].as_u64()
        ),
        (Some(5), Some(3), Some(1), Some(1))
    );
    // One general seat on duty: the second 12345 caller waits the first's
    // 60 s plus the 10 s wrap-up; 12348's expert seat takes its caller.
    assert_eq!(s["answered"], 3);
    assert_eq!(s["longest_wait_seconds"], 69.0);
    let log = std::fs::read_to_string(&log).unwrap();
    let connects: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "CONNECT")
        .collect();
    let seats: Vec<&str> = connects
        .iter()
        .map(|e| e["seat"].as_str().unwrap())
        .collect();
    assert_eq!(seats, ["8001", "8101", "8001"]);
    assert_eq!(connects[2]["time"], "2026-12-02T01:01:10.000Z");
}

#[test]
fn the_report_is_one_page_that_opens_offline_in_a_browser() {
    let dir = TempTable::new("simulate-report");
    let html = dir.dir.join("report.html");
    let (code, _, err) = hotline(&[
        "simulate",
        "--date",
        "2023-03-08",
        "--patience-seconds",
        "180",
        "--report",
        html.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let page = std::fs::read_to_string(&html).unwrap();
    // Self-contained: nothing to fetch.
    for outside in ["<script", "src=", "href=", "@import", "url("] {
        assert!(
            !page.contains(outside),
            "the report refers outside: {outside}"
        );
    }
    for id in [
        "chart-load",
        "chart-service-level",
        "chart-waits",
        "intervals",
        "line-waiting",
        "target",
    ] {
        assert!(page.contains(&format!("id=\"{id}\"")), "no #{id}");
    }
    let png = dir.dir.join("report.png");
    let profile = format!("--user-data-dir={}", dir.dir.join("chromium").display());
    let url = format!("file://{}", html.display());
    let shot_arg = format!("--screenshot={}", png.display());
    chromium(&["--window-size=1000,2400", &profile, &shot_arg], &url);
    let shot = std::fs::read(&png).unwrap();
    assert!(
        shot.starts_with(b"\x89PNG") && shot.len() > 20_000,
        "{} bytes",
        shot.len()
    );
    let dom = chromium(&[&profile, "--dump-dom"], &url);
    let dom = String::from_utf8_lossy(&dom.stdout);
    // The browser parsed the charts: bars of the service level, one per
    // half hour with calls.
    assert!(dom.matches("<rect").count() > 40, "{dom}");
    let kept = std::path::Path::new(REPO).join("target/tmp");
    let _ = std::fs::create_dir_all(&kept);
    let _ = std::fs::copy(&png, kept.join("simulate-report.png"));
}

#[test]
fn a_plan_prints_seats_per_half_hour_beside_erlang_c() {
    let v = json(&[
        "simulate",
        "--calls-per-hour",
        "200",
        "--seats",
        "14",
        "--hours",
        "3",
        "--plan",
        "--target-service-level",
        "0.8",
        "--service-level-seconds",
        "20",
        "--replications",
        "6",
        "--json",
    ]);
    let plan = v["plan"].as_array().unwrap();
    assert_eq!(plan.len(), 6);
    for row in plan {
        let (sim, erlang) = (
            row["seats"].as_u64().unwrap(),
            row["erlang_c_seats"].as_u64().unwrap(),
        );
        assert!(
            (12..=15).contains(&sim) && (13..=15).contains(&erlang),
            "{row}"
        );
        // With the plan in place, every half hour meets the target.
        assert!(row["service_level"].as_f64().unwrap() >= 0.8, "{row}");
    }
    // The plan in text.
    let (code, out, _) = hotline(&[
        "simulate",
        "--calls-per-hour",
        "200",
        "--seats",
        "14",
        "--hours",
        "1",
        "--plan",
        "--replications",
        "3",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("Erlang C"), "{out}");
}

#[test]
fn every_flag_of_simulate_is_in_the_readme() {
    let (code, help, _) = hotline(&["simulate", "--help"]);
    assert_eq!(code, 0);
    let readme = std::fs::read_to_string(format!("{REPO}/README.md")).unwrap();
    let commands = &readme[readme.find("## Commands").unwrap()..];
    let commands = &commands[..commands.find("**`check`**").unwrap()];
    let section = &readme[readme.find("## Simulation").unwrap()..];
    let section = &section[..section.find("## Layout").unwrap()];
    // The options as help lists them, one a line: `  --flag <VALUE>`.
    let flags: Vec<&str> = help
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--"))
        .filter_map(|l| l.split([' ', '<']).next())
        .filter(|f| *f != "help")
        .collect();
    assert!(flags.len() > 25, "{flags:?}");
    for flag in flags {
        let flag = format!("--{flag}");
        assert!(commands.contains(&flag), "README Commands lacks {flag}");
        assert!(section.contains(&flag), "README Simulation lacks {flag}");
    }
}

#[test]
fn bad_input_is_refused_with_its_file_and_line() {
    let dir = TempTable::new("simulate-bad");
    let file = |name: &str, text: &str| {
        let path = dir.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let arrivals = file(
        "bad.csv",
        "time,dialed\n2026-12-02T01:00:00Z,12345\nlater,12345\n",
    );
    let profile = file("profile.csv", "start,12345\n09:00,ten\n");
    let roster = file("roster.csv", "seat,from,until\n9999,08:00,10:00\n");
    // (arguments, what the error must say)
    let cases: [(&[&str], &[&str]); 9] = [
        (&["--arrivals", &arrivals], &["bad.csv: line 3", "later"]),
        (&["--profile", &profile], &["profile.csv: line 2", "ten"]),
        (&["--roster", &roster], &["roster.csv: line 2", "9999"]),
        (&["--calls-per-hour", "100"], &["--seats"]),
        (&["--date", "2026-13-01"], &["2026-13-01"]),
        (&["--answer-seconds", "25"], &["ring_seconds"]),
        (&["--handle-seconds", "1e19"], &["--handle-seconds"]),
        (&["--ticket-share", "1.5"], &["--ticket-share"]),
        (
            &["--target-service-level", "80"],
            &["--target-service-level"],
        ),
    ];
    for (args, says) in cases {
        let mut all = vec!["simulate"];
        all.extend_from_slice(args);
        let (code, _, err) = hotline(&all);
        assert_eq!(code, 2, "{args:?}: {err}");
        for s in says {
            assert!(err.contains(s), "{args:?}: {err}");
        }
    }
}
