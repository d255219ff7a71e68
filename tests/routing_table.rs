//! The shipped routing.toml against the seeds: every one of the 44 merged
//! numbers, in every form a caller's number can arrive in, routes as the
//! Chenzhou merger list (郴政办发〔2021〕22号) says; emergency numbers come
//! first; leader sessions start and stop on the second; tickets fall due on
//! the official working-day calendar.
//!
//! The expectations below are typed from the seeds, not read from the table.

use chrono::{DateTime, NaiveDate, Utc};
use hotline::config;
use hotline::routing::{Kind, Table, Target, route};
use std::path::Path;

fn shipped() -> Table {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/routing.toml"));
    config::load(path)
        .expect("shipped routing.toml is valid")
        .table
}

fn shipped_with(edit: impl Fn(&str) -> String) -> Table {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/routing.toml"));
    let text = std::fs::read_to_string(path).unwrap();
    let edited = edit(&text);
    assert_ne!(edited, text, "the edit changed nothing");
    match config::parse(&edited, path) {
        Ok(l) => l.table,
        Err(e) => panic!("{e}"),
    }
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// An ordinary working morning with no leader session.
const WEEKDAY: &str = "2026-11-20T10:00:00+08:00";

/// Every form a number can arrive in from a trunk or a softphone.
fn forms(n: &str) -> Vec<String> {
    let mut v = vec![
        n.to_string(),
        format!("0735{n}"),
        format!("+860735{n}"),
        format!("+86 735 {n}"),
        format!("tel:+86-735-{n}"),
        format!("sip:{n}@198.51.100.7;user=phone"),
        format!("sip:+86735{n}@gw.example"),
        format!("<sip:0735{n}@gw.example;user=phone>"),
        format!("tel:{n};phone-context=+86-735"),
    ];
    if n.len() <= 6 {
        // Service numbers: the country code alone is enough.
        v.push(format!("+86{n}"));
        v.push(format!("sip:+86{n}@gw.example"));
    }
    v
}

// 一、整体并入 (26): number, responsible unit (责任单位).
const WHOLE_MERGE: [(&str, &str); 26] = [
    ("12396", "市科学技术局"),
    ("12300", "市工信局"),
    ("12349", "市民政局"),
    ("12336", "市自然资源和规划局"),
    ("12312", "市商务局"),
    ("12301", "市文旅广体局"),
    ("12356", "市卫生健康委"),
    ("96119", "市消防救援支队"),
    ("12330", "市市场监管局"),
    ("12331", "市市场监管局"),
    ("12358", "市市场监管局"),
    ("12365", "市市场监管局"),
    ("12322", "市地震局"),
    ("12393", "市医疗保障局"),
    ("96322", "市水利局"),
    ("2912345", "北湖区人民政府"),
    ("2812345", "苏仙区人民政府"),
    ("3312345", "资兴市人民政府"),
    ("4412345", "桂阳县人民政府"),
    ("3712345", "宜章县人民政府"),
    ("5612345", "永兴县人民政府"),
    ("6712345", "嘉禾县人民政府"),
    ("6612345", "临武县人民政府"),
    ("8412345", "汝城县人民政府"),
    ("8812345", "桂东县人民政府"),
    ("5212345", "安仁县人民政府"),
];
/// "已暂停服务": callers hear that the number was merged into 12345.
const SUSPENDED: [&str; 4] = ["12396", "12349", "12356", "12393"];
/// "已归并到12315": they route as 12315.
const ROUTES_AS_12315: [&str; 4] = ["12330", "12331", "12358", "12365"];

// 二、双号并行 (12): number, unit, expert seat (设专家座席).
const DUAL_NUMBER: [(&str, &str, bool); 12] = [
    ("12348", "市司法局", true),
    ("12333", "市人社局", true),
    ("12369", "市生态环境局", false),
    ("12319", "市城管和综合执法局", false),
    ("12328", "市交通运输局", false),
    ("12316", "市农业农村局", false),
    ("12318", "市文旅广体局", false),
    ("12320", "市卫生健康委", true),
    ("12350", "市应急管理局", false),
    ("12315", "市市场监管局", true),
    ("12317", "市乡村振兴局", false),
    ("12385", "市残联", false),
];

// 三、设分中心 (6): number, level.
const SUB_CENTRE: [(&str, &str); 6] = [
    ("12360", "provincial"),
    ("12366", "city"),
    ("12313", "provincial"),
    ("12367", "provincial"),
    ("12305", "provincial"),
    ("12329", "provincial"),
];

#[test]
fn the_table_holds_all_44_numbers_of_the_merger_list_plus_12345() {
    let t = shipped();
    assert_eq!(WHOLE_MERGE.len() + DUAL_NUMBER.len() + SUB_CENTRE.len(), 44);
    assert_eq!(t.lines.len(), 45);
    assert_eq!(t.main_line().number, "12345");
    for (n, unit) in WHOLE_MERGE {
        let l = t.line(n).unwrap_or_else(|| panic!("{n} missing"));
        assert_eq!(l.mode.as_str(), "whole_merge", "{n}");
        assert_eq!(l.unit.as_deref(), Some(unit), "{n}");
        assert!(!l.name.is_empty());
    }
    for (n, unit, expert) in DUAL_NUMBER {
        let l = t.line(n).unwrap();
        assert_eq!(l.mode.as_str(), "dual_number", "{n}");
        assert_eq!(l.unit.as_deref(), Some(unit), "{n}");
        assert_eq!(l.expert_seat, expert, "{n}");
    }
    for (n, level) in SUB_CENTRE {
        let l = t.line(n).unwrap();
        assert_eq!(l.mode.as_str(), "sub_centre", "{n}");
        assert_eq!(l.level.map(|l| l.as_str()), Some(level), "{n}");
    }
}

#[test]
fn whole_merge_numbers_fold_into_the_12345_queue_in_every_form() {
    let t = shipped();
    let now = at(WEEKDAY);
    for (n, unit) in WHOLE_MERGE {
        if ROUTES_AS_12315.contains(&n) || n == "96119" {
            continue;
        }
        for form in forms(n) {
            let d = route(&t, &form, Some("13800000000"), now);
            assert_eq!(d.kind, Kind::Queue, "{form}");
            assert_eq!(d.line, Some(n), "{form}");
            assert_eq!(d.unit, Some(unit), "{form}");
            let Target::Queue(q) = d.target else {
                panic!("{form}: {:?}", d.target)
            };
            assert_eq!(q.id, "general", "{form}");
            let expected = SUSPENDED.contains(&n).then_some("merged_into_12345");
            assert_eq!(d.announcement, expected, "{form}");
        }
    }
}

#[test]
fn numbers_merged_into_12315_route_as_12315() {
    let t = shipped();
    let direct = route(&t, "12315", None, at(WEEKDAY));
    for n in ROUTES_AS_12315 {
        for form in forms(n) {
            let d = route(&t, &form, None, at(WEEKDAY));
            assert_eq!(d.kind, Kind::Direct, "{form}");
            assert_eq!(d.line, Some("12315"), "{form}");
            assert_eq!(d.dialed_line.map(|l| l.number.as_str()), Some(n));
            assert_eq!(d.unit, Some("市市场监管局"));
            let (
                Target::Seats {
                    expert_seats: a,
                    skill: sa,
                },
                Target::Seats {
                    expert_seats: b,
                    skill: sb,
                },
            ) = (d.target, direct.target)
            else {
                panic!("{form}: not seats")
            };
            assert_eq!((a, sa), (b, sb), "{form}: same seats as a call to 12315");
            assert_eq!(d.announcement, None);
        }
    }
}

#[test]
fn fire_hazard_line_96119_goes_to_the_fire_service_119() {
    let t = shipped();
    let fire = route(&t, "119", None, at(WEEKDAY));
    for form in forms("96119") {
        let d = route(&t, &form, None, at(WEEKDAY));
        assert_eq!(d.kind, Kind::Emergency, "{form}");
        assert_eq!(d.line, Some("119"), "{form}");
        assert_eq!(d.unit, Some("市消防救援支队"));
        let (Target::Trunk(a), Target::Trunk(b)) = (d.target, fire.target) else {
            panic!()
        };
        assert_eq!(a.uri, b.uri);
        assert_eq!(a.id, "emergency");
    }
}

#[test]
fn dual_number_lines_go_direct_expert_seat_first() {
    let t = shipped();
    for (n, unit, expert) in DUAL_NUMBER {
        for form in forms(n) {
            let d = route(&t, &form, None, at(WEEKDAY));
            assert_eq!(d.kind, Kind::Direct, "{form}");
            assert_eq!(d.line, Some(n));
            assert_eq!(d.unit, Some(unit));
            let Target::Seats {
                expert_seats,
                skill,
            } = d.target
            else {
                panic!("{form}")
            };
            assert_eq!(!expert_seats.is_empty(), expert, "{form}: expert seat");
            assert!(!skill.is_empty());
            // The skilled seats exist: someone can answer when the expert is busy.
            assert!(
                t.seats
                    .iter()
                    .any(|s| s.skills.iter().any(|k| k == skill) && !expert_seats.contains(&s.id)),
                "{n}"
            );
            for e in expert_seats {
                let seat = t.seats.iter().find(|s| &s.id == e).unwrap();
                assert!(seat.expert_for.iter().any(|l| l == n));
            }
        }
    }
}

#[test]
fn sub_centre_lines_go_to_their_trunk_with_three_way_transfer() {
    let t = shipped();
    for (n, level) in SUB_CENTRE {
        for form in forms(n) {
            let d = route(&t, &form, None, at(WEEKDAY));
            assert_eq!(d.kind, Kind::SubCentre, "{form}");
            assert!(d.three_way_transfer);
            let Target::Trunk(trunk) = d.target else {
                panic!()
            };
            assert_eq!(trunk.level.map(|l| l.as_str()), Some(level), "{form}");
            let expected = if level == "city" {
                "city_sub_centre"
            } else {
                "provincial_sub_centre"
            };
            assert_eq!(trunk.id, expected);
        }
    }
}

#[test]
fn emergency_numbers_always_reach_the_emergency_trunk() {
    let t = shipped();
    let during_session = at("2023-02-22T09:30:00+08:00");
    for n in ["110", "119", "120", "122"] {
        for when in [at(WEEKDAY), during_session] {
            for form in [
                n.to_string(),
                format!("0735{n}"),
                format!("+86735{n}"),
                format!("sip:{n}@gw;user=phone"),
            ] {
                let d = route(&t, &form, None, when);
                assert_eq!(d.kind, Kind::Emergency, "{form}");
                assert_eq!(d.line, Some(n));
                let Target::Trunk(trunk) = d.target else {
                    panic!()
                };
                assert_eq!(trunk.uri, "sip:127.0.0.1:5093");
            }
        }
    }
}

#[test]
fn a_barred_caller_is_refused_but_still_reaches_emergency_services() {
    let t = shipped_with(|s| s.replace("barred = []", r#"barred = ["+86 138 0000 0000"]"#));
    let d = route(&t, "12345", Some("13800000000"), at(WEEKDAY));
    assert_eq!(d.kind, Kind::Reject);
    assert_eq!(d.reject.unwrap().status, 403);
    let d = route(&t, "12345", Some("sip:+8613800000000@carrier"), at(WEEKDAY));
    assert_eq!(d.kind, Kind::Reject);
    let d = route(&t, "110", Some("13800000000"), at(WEEKDAY));
    assert_eq!(d.kind, Kind::Emergency);
    let d = route(&t, "12345", Some("13900000000"), at(WEEKDAY));
    assert_eq!(d.kind, Kind::Queue);
}

#[test]
fn unroutable_numbers_are_rejects_with_a_sip_status() {
    let t = shipped();
    for (dialed, status) in [
        ("99999", 404),
        ("07342912345", 404), // another city's county line
        ("13812345678", 404),
        ("+442079460000", 404),
        ("", 484),
        ("sip:alice@example.com", 484),
        ("12a45", 484),
        ("1234567890123456789012", 484),
    ] {
        let d = route(&t, dialed, None, at(WEEKDAY));
        assert_eq!(d.kind, Kind::Reject, "{dialed:?}");
        assert_eq!(d.reject.unwrap().status, status, "{dialed:?}");
        assert!(!d.reject.unwrap().reason.is_empty());
    }
}

#[test]
fn the_main_line_queues_outside_sessions() {
    let t = shipped();
    for form in forms("12345") {
        let d = route(&t, &form, None, at(WEEKDAY));
        assert_eq!(d.kind, Kind::Queue, "{form}");
        assert_eq!(d.line, Some("12345"));
    }
}

#[test]
fn leader_session_boundaries_are_exact_to_the_second() {
    let t = shipped();
    let kind = |s: &str| route(&t, "12345", None, at(s)).kind;
    assert_eq!(kind("2023-02-22T08:59:59+08:00"), Kind::Queue);
    assert_eq!(kind("2023-02-22T09:00:00+08:00"), Kind::LeaderSession);
    assert_eq!(kind("2023-02-22T10:59:59+08:00"), Kind::LeaderSession);
    assert_eq!(kind("2023-02-22T11:00:00+08:00"), Kind::Queue);
    assert_eq!(kind("2023-02-21T09:30:00+08:00"), Kind::Queue);
    assert_eq!(kind("2023-02-23T09:30:00+08:00"), Kind::Queue);
    // The same instants in UTC.
    assert_eq!(kind("2023-02-22T00:59:59Z"), Kind::Queue);
    assert_eq!(kind("2023-02-22T01:00:00Z"), Kind::LeaderSession);
    assert_eq!(kind("2023-02-22T03:00:00Z"), Kind::Queue);
}

#[test]
fn a_live_session_offers_the_leader_queue_or_a_ticket_to_the_unit() {
    let t = shipped();
    let d = route(&t, "073512345", None, at("2023-09-27T10:00:00+08:00"));
    assert_eq!(d.kind, Kind::LeaderSession);
    let s = d.session.unwrap();
    assert_eq!(s.unit.as_deref(), Some("衡阳银保监分局"));
    assert_eq!(s.leader.as_deref(), Some("曾拓绿"));
    assert_eq!(s.title.as_deref(), Some("局长"));
    assert_eq!(d.unit, Some("衡阳银保监分局"));
    let Target::Queue(q) = d.target else { panic!() };
    assert_eq!(q.id, "leader");
    // Sep 28 (Thu) is day 1; Sep 29–Oct 6 are the Mid-Autumn/National Day
    // holidays; Oct 7 and 8 (Sat, Sun) are make-up working days.
    let due = t
        .calendar
        .deadline(at("2023-09-27T10:00:00+08:00"), t.ticket_due_working_days);
    assert_eq!(due.due_date, NaiveDate::from_ymd_opt(2023, 10, 8).unwrap());
    assert!(!due.approximate);
    // Sessions capture the main line only; other lines route as usual.
    assert_eq!(
        route(&t, "12348", None, at("2023-09-27T10:00:00+08:00")).kind,
        Kind::Direct
    );
}

#[test]
fn all_fifteen_2023_sessions_are_live_at_ten_and_have_a_leader() {
    let t = shipped();
    let dates = [
        "02-22", "03-08", "03-22", "04-12", "04-26", "05-10", "05-24", "06-14", "07-26", "09-13",
        "09-27", "10-18", "11-01", "11-15", "12-06",
    ];
    for d in dates {
        let dec = route(&t, "12345", None, at(&format!("2023-{d}T10:00:00+08:00")));
        assert_eq!(dec.kind, Kind::LeaderSession, "{d}");
        assert!(dec.session.unwrap().leader.is_some());
    }
    assert_eq!(t.sessions.iter().filter(|s| s.rule.is_none()).count(), 15);
}

#[test]
fn the_2018_rule_holds_sessions_on_the_2nd_and_4th_wednesday() {
    let t = shipped();
    let mut dates: Vec<String> = t
        .sessions
        .iter()
        .filter(|s| s.rule.is_some())
        .map(|s| s.date.to_string())
        .collect();
    dates.sort();
    let expected = [
        "2018-01-10",
        "2018-01-24",
        "2018-02-14",
        "2018-02-28",
        "2018-03-14",
        "2018-03-28",
        "2018-04-11",
        "2018-04-25",
        "2018-05-09",
        "2018-05-23",
        "2018-06-13",
        "2018-06-27",
        "2018-07-11",
        "2018-07-25",
        "2018-08-08",
        "2018-08-22",
        "2018-09-12",
        "2018-09-26",
        "2018-10-10",
        "2018-10-24",
        "2018-11-14",
        "2018-11-28",
        "2018-12-12",
        "2018-12-26",
    ];
    assert_eq!(dates, expected);
    let d = route(&t, "12345", None, at("2018-03-14T09:00:00+08:00"));
    assert_eq!(d.kind, Kind::LeaderSession);
    // The rule names no unit: tickets go to the main line's unit.
    assert_eq!(d.unit, Some("市政府办公室（市长公开电话办公室）"));
}

const RULE_2025: &str = r#"
[[leader.rules]]
name = "test rule"
weekday = "wednesday"
weeks_of_month = [2]
from = "2025-09-01"
until = "2025-10-31"
unit = "市司法局"
"#;

/// The sessions the `test rule` produced, in date order.
fn test_rule_sessions(t: &Table) -> Vec<&hotline::routing::LeaderSession> {
    let mut held: Vec<_> = t
        .sessions
        .iter()
        .filter(|s| s.rule.as_deref() == Some("test rule"))
        .collect();
    held.sort_by_key(|s| s.date);
    held
}

fn with_rule(rule: &str) -> Table {
    shipped_with(|s| s.replace("\n[calendar]\n", &format!("\n{rule}\n[calendar]\n")))
}

#[test]
fn a_rule_session_on_a_holiday_moves_to_the_next_working_day() {
    // 2nd Wednesday of October 2025 is Oct 8, the last day of the National Day
    // holiday: the session moves to Thursday Oct 9.
    let t = with_rule(RULE_2025);
    let held = test_rule_sessions(&t);
    assert_eq!(held.len(), 2);
    assert_eq!(held[0].date.to_string(), "2025-09-10");
    assert_eq!(held[1].date.to_string(), "2025-10-09");
    assert_eq!(
        held[1].moved_from.map(|d| d.to_string()).as_deref(),
        Some("2025-10-08")
    );
    assert_eq!(
        route(&t, "12345", None, at("2025-10-08T10:00:00+08:00")).kind,
        Kind::Queue
    );
    assert_eq!(
        route(&t, "12345", None, at("2025-10-09T10:00:00+08:00")).kind,
        Kind::LeaderSession
    );
}

#[test]
fn a_moved_session_may_land_on_a_make_up_saturday() {
    // 4th Wednesday of January 2023 is Jan 25, inside Spring Festival (Jan 21–27);
    // the next working day is Saturday Jan 28, a make-up working day.
    let t = with_rule(
        &RULE_2025
            .replace("[2]", "[4]")
            .replace("2025-09-01", "2023-01-01")
            .replace("2025-10-31", "2023-01-31"),
    );
    let held = test_rule_sessions(&t);
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].date.to_string(), "2023-01-28");
    assert_eq!(
        route(&t, "12345", None, at("2023-01-28T09:00:00+08:00")).kind,
        Kind::LeaderSession
    );
}

#[test]
fn a_rule_may_skip_holidays_instead() {
    let t = with_rule(&RULE_2025.replace("unit = ", "if_holiday = \"skip\"\nunit = "));
    let held = test_rule_sessions(&t);
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].date.to_string(), "2025-09-10");
}

#[test]
fn tickets_fall_due_on_the_official_calendar() {
    let t = shipped();
    let due = |s: &str| t.calendar.deadline(at(s), 3).due_date.to_string();
    // Across a weekend: Friday → Mon, Tue, Wed.
    assert_eq!(due("2026-11-20T10:00:00+08:00"), "2026-11-25");
    // Across Spring Festival 2026 (Feb 15–23 off, Feb 14 and 28 worked).
    assert_eq!(due("2026-02-13T10:00:00+08:00"), "2026-02-25");
    // From the make-up Saturday itself: Feb 14 → Feb 24, 25, 26.
    assert_eq!(due("2026-02-14T10:00:00+08:00"), "2026-02-26");
    // Across National Day 2026 with make-up Saturday Oct 10: Sep 30 → Oct 8, 9, 10.
    assert_eq!(due("2026-09-30T10:00:00+08:00"), "2026-10-10");
    // Across May Day 2025 (May 1–5 off): Apr 30 → May 6, 7, 8.
    assert_eq!(due("2025-04-30T10:00:00+08:00"), "2025-05-08");
    // Late December 2026 runs into 2027, whose holidays are not published yet.
    assert!(
        t.calendar
            .deadline(at("2026-12-30T10:00:00+08:00"), 3)
            .approximate
    );
    assert!(
        !t.calendar
            .deadline(at("2026-12-01T10:00:00+08:00"), 3)
            .approximate
    );
}

#[test]
fn metrics_listen_on_loopback_by_default() {
    let t = shipped_with(|s| {
        s.replace("[metrics]\n# Loopback only by default: expose it deliberately, behind your own access control.\nlisten = \"127.0.0.1:9090\"\n", "")
    });
    assert!(t.metrics_listen.ip().is_loopback());
    assert_eq!(t.metrics_listen.port(), 9090);
}

#[test]
fn another_citys_12345_is_not_a_local_county_line() {
    let t = shipped();
    // Xi'an (029) and Chengdu (028) 12345 look like 0735's 2912345 and
    // 2812345 once their trunk prefix is gone: they must keep it.
    for dialed in [
        "02912345",
        "+862912345",
        "0086 29 12345",
        "02812345",
        "tel:+86-28-12345",
    ] {
        let d = route(&t, dialed, None, at(WEEKDAY));
        assert_eq!(d.kind, Kind::Reject, "{dialed}");
        assert_eq!(d.reject.unwrap().status, 404, "{dialed}");
    }
}

#[test]
fn a_barred_caller_still_reaches_119_through_96119() {
    let t = shipped_with(|s| s.replace("barred = []", r#"barred = ["13800000000"]"#));
    let d = route(&t, "96119", Some("13800000000"), at(WEEKDAY));
    assert_eq!(d.kind, Kind::Emergency);
    assert_eq!(d.line, Some("119"));
}
