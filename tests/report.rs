//! The monthly report (月报) from a generated November 2026 with known
//! totals: call records written to the real SQLite ticket store, tickets
//! created and moved through their steps there, then `hotline report`
//! (the binary) builds the HTML and the CSVs, which are read back and
//! checked figure by figure.

mod support;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use hotline::records::{CallRecord, Handoff};
use hotline::tickets::model::{Action, Kind, NewTicket};
use std::process::Command;
use support::TempTable;

fn local(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(2026, 11, d, h, m, 0)
        .unwrap()
        .with_timezone(&Utc)
}

/// Call `i` of day `d`: the generator both the store and the expected
/// totals use.
struct Gen {
    d: u32,
    i: u32,
}

impl Gen {
    fn queued(&self) -> bool {
        self.i % 3 != 2
    }
    fn abandoned(&self) -> bool {
        self.i.is_multiple_of(5)
    }
    fn hour(&self) -> u32 {
        8 + self.i % 10
    }
    fn wait(&self) -> f64 {
        if self.abandoned() {
            30.0
        } else if self.i.is_multiple_of(2) {
            10.0
        } else {
            40.0
        }
    }
    fn record(&self) -> CallRecord {
        let started = local(self.d, self.hour(), self.i % 60);
        let (line, kind) = if self.queued() {
            ("12345", "queue")
        } else {
            ("12348", "direct")
        };
        let answered = !self.abandoned();
        CallRecord {
            call_id: format!("{}-{}@carrier", self.d, self.i),
            call: u64::from(self.d * 100 + self.i),
            started,
            ended: started + Duration::seconds(120),
            caller: Some("13907350000".into()),
            dialed: line.into(),
            line: line.into(),
            kind: kind.into(),
            origin: "trunk".into(),
            unit: None,
            queue: self.queued().then(|| "general".into()),
            wait: self.queued().then(|| self.wait()),
            seats_offered: vec!["8001".into()],
            answered_by: answered.then(|| "8001".into()),
            talk: answered.then_some(60.0),
            handoffs: vec![],
            recordings: vec![],
            result: if answered { "completed" } else { "abandoned" }.into(),
            end_reason: "caller_bye".into(),
            ticket: None,
        }
    }
}

fn handoff(kind: &str, target: &str, result: &str) -> Handoff {
    Handoff {
        kind: kind.into(),
        seat: "8001".into(),
        number: if kind == "emergency" { "110" } else { "12366" }.into(),
        target: target.into(),
        result: result.into(),
    }
}

fn ticket(n: u32, unit: &str, due: DateTime<Utc>) -> NewTicket {
    NewTicket {
        day: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
        callback_number: format!("1390735{n:04}"),
        caller_number: format!("1390735{n:04}"),
        dialed: "12345".into(),
        line: "12345".into(),
        unit: unit.into(),
        tag: "热线问政".into(),
        kind: Kind::LeaderSession,
        session: None,
        due,
        due_date: due.with_timezone(&chrono_tz::Asia::Shanghai).date_naive(),
        due_approximate: false,
        request_recording: None,
        call_id: format!("t{n}@carrier"),
        recordings: vec![],
    }
}

fn text_of(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest[start..].find('<').unwrap() + start;
    rest[start..end].to_string()
}

#[test]
fn the_monthly_report_of_a_generated_month_has_its_known_totals() {
    let table = TempTable::new("report");
    let store = hotline::tickets::open("sqlite:tickets.db", &table.dir).unwrap();

    // Calls: day d has d calls.
    let (mut calls, mut answered, mut abandoned, mut q_answered, mut q_abandoned, mut within) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut waits = Vec::new();
    let mut hours = [0u64; 24];
    for d in 1..=30 {
        for i in 0..d {
            let g = Gen { d, i };
            store.record_call(&g.record()).unwrap();
            calls += 1;
            hours[g.hour() as usize] += 1;
            if g.abandoned() {
                abandoned += 1;
                q_abandoned += u64::from(g.queued());
            } else {
                answered += 1;
                if g.queued() {
                    q_answered += 1;
                    waits.push(g.wait());
                    within += u64::from(g.wait() <= 20.0);
                }
            }
        }
    }
    // Recorded twice, kept once.
    store.record_call(&Gen { d: 1, i: 0 }.record()).unwrap();
    // Outside the month: not counted.
    let mut december = Gen { d: 1, i: 1 }.record();
    december.started = local(30, 23, 0) + Duration::hours(2);
    december.call_id = "december@carrier".into();
    store.record_call(&december).unwrap();
    // Emergency calls and hand-offs.
    for n in 0..3 {
        let mut r = Gen { d: 2, i: 101 + n }.record();
        r.kind = "emergency".into();
        r.line = "110".into();
        r.queue = None;
        r.answered_by = Some("emergency".into());
        r.result = "completed".into();
        store.record_call(&r).unwrap();
    }
    let mut with_handoffs = Gen { d: 3, i: 101 }.record();
    with_handoffs.handoffs = vec![
        handoff("emergency", "emergency", "completed"),
        handoff("attended", "city_sub_centre", "busy"),
        handoff("attended", "city_sub_centre", "completed"),
    ];
    store.record_call(&with_handoffs).unwrap();
    let mut sub = Gen { d: 4, i: 101 }.record();
    sub.kind = "sub_centre".into();
    sub.line = "12366".into();
    sub.queue = None;
    store.record_call(&sub).unwrap();
    let extra = 5; // 3 emergency, 1 with hand-offs, 1 sub-centre (all answered)
    // A seat's own call (a feature code, a call to another seat) is no
    // citizen's: not counted.
    let mut own = Gen { d: 5, i: 101 }.record();
    own.origin = "seat".into();
    own.line = "unknown".into();
    store.record_call(&own).unwrap();
    assert_eq!(calls, 465);

    // Tickets: 市民政局 four (on time and satisfied; late; extended then on
    // time; never done, overdue); 市商务局 two (returned; on time and
    // unsatisfied).
    let (a, b) = ("市民政局", "市商务局");
    let created = local(2, 10, 0);
    let due = local(5, 17, 0);
    let mut ids = Vec::new();
    for (n, unit) in [(1, a), (2, a), (3, a), (4, a), (5, b), (6, b)] {
        let c = store.create(&ticket(n, unit, due), created).unwrap();
        store
            .apply(&c.ticket.id, &Action::Dispatch, "hotline", created)
            .unwrap();
        ids.push(c.ticket.id);
    }
    let step = |i: usize, action: Action, at: DateTime<Utc>| {
        let by = if i < 4 { a } else { b };
        store.apply(&ids[i], &action, by, at).unwrap();
    };
    let done = || Action::Done {
        reply: "已办结".into(),
    };
    step(0, Action::Accept, local(2, 11, 0));
    step(0, done(), local(4, 9, 0));
    store
        .apply(
            &ids[0],
            &Action::Visit { satisfied: true },
            "callback",
            local(6, 9, 0),
        )
        .unwrap();
    step(1, Action::Accept, local(2, 11, 0));
    step(1, done(), local(8, 9, 0));
    step(2, Action::Accept, local(2, 11, 0));
    step(
        2,
        Action::Extend {
            reason: "需现场核查".into(),
            due: local(12, 17, 0),
        },
        local(4, 9, 0),
    );
    step(2, done(), local(10, 9, 0));
    step(3, Action::Accept, local(2, 11, 0));
    step(
        4,
        Action::Return {
            reason: "不属本单位职责".into(),
        },
        local(3, 9, 0),
    );
    step(5, Action::Accept, local(2, 11, 0));
    step(5, done(), local(3, 9, 0));
    store
        .apply(
            &ids[5],
            &Action::Visit { satisfied: false },
            "callback",
            local(6, 9, 0),
        )
        .unwrap();
    drop(store);

    let out = table.dir.join("report.html");
    let csv = table.dir.join("csv");
    let run = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .current_dir(&table.dir)
        .args([
            "report",
            "--month",
            "2026-11",
            "--config",
            "routing.toml",
            "--out",
        ])
        .arg(&out)
        .arg("--csv")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let html = std::fs::read_to_string(&out).unwrap();

    let total = calls + extra;
    assert_eq!(text_of(&html, "calls"), total.to_string());
    assert_eq!(text_of(&html, "answered"), (answered + extra).to_string());
    assert_eq!(text_of(&html, "abandoned"), abandoned.to_string());
    let sl = within as f64 / (q_answered + q_abandoned) as f64;
    assert_eq!(
        text_of(&html, "service-level"),
        format!("{:.1}%", sl * 100.0)
    );
    let asa = waits.iter().sum::<f64>() / waits.len() as f64;
    assert_eq!(text_of(&html, "asa"), format!("{asa:.1}秒"));
    assert_eq!(text_of(&html, "emergency"), "3");
    assert_eq!(text_of(&html, "sub-centre"), "1");
    assert_eq!(text_of(&html, "tickets"), "6");
    assert!(text_of(&html, "busiest-days").starts_with("11月30日 30次、11月29日 29次"));
    let (peak, _) = hours
        .iter()
        .enumerate()
        .max_by(|x, y| x.1.cmp(y.1).then(y.0.cmp(&x.0)))
        .unwrap();
    assert!(text_of(&html, "busiest-hour").starts_with(&format!("{peak}时")));
    assert!(
        html.contains("<svg id=\"chart-days\""),
        "a chart of the days"
    );
    assert!(html.contains("data-value=\"30\""), "day 30's bar");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing fetched"
    );
    assert!(html.contains("年11月运行情况月报"));

    let read = |name: &str| std::fs::read_to_string(csv.join(name)).unwrap();
    let summary = read("summary.csv");
    let row: Vec<&str> = summary.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(row[0], total.to_string());
    assert_eq!(row[2], abandoned.to_string());
    let days = read("days.csv");
    assert_eq!(days.lines().count(), 31, "a header and 30 days");
    assert!(days.contains("2026-11-30,30\n"));
    assert!(
        days.contains("2026-11-02,5\n"),
        "2 generated and 3 emergency calls"
    );
    let handoffs = read("handoffs.csv");
    assert!(
        handoffs.contains("attended,city_sub_centre,busy,1\n"),
        "{handoffs}"
    );
    assert!(handoffs.contains("attended,city_sub_centre,completed,1\n"));
    assert!(handoffs.contains("emergency,emergency,completed,1\n"));
    let units = read("units.csv");
    let rows: Vec<Vec<&str>> = units
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    // rank,unit,created,on_time,on_time_rate,overdue,extended,returned,satisfied,unsatisfied,satisfaction
    // 市商务局: its one decided ticket on time (its return is not its
    // delay), its callback unsatisfied; 市民政局: two of four on time,
    // its callback satisfied. On-time rate first: 市商务局 ranks first.
    assert_eq!(rows[0][..6], ["1", b, "2", "1", "1.0000", "0"], "{units}");
    assert_eq!(rows[0][7], "1", "its return, counted to it");
    assert_eq!((rows[0][8], rows[0][9], rows[0][10]), ("0", "1", "0.0000"));
    assert_eq!(rows[1][..6], ["2", a, "4", "2", "0.5000", "2"], "{units}");
    assert_eq!(
        (rows[1][6], rows[1][7]),
        ("1", "0"),
        "one extended, none returned"
    );
    assert_eq!((rows[1][8], rows[1][9], rows[1][10]), ("1", "0", "1.0000"));
    let lines = read("lines.csv");
    assert!(
        lines.lines().nth(1).unwrap().starts_with("12345,queue,"),
        "the busiest line first: {lines}"
    );
}
