//! The wallboard in a real browser: headless Chromium (Debian `chromium`)
//! loads `/wallboard` from the running daemon with a viewer's token in the
//! URL fragment, while two callers (SIPp) wait in the general queue for a
//! paused seat, tickets are due today and overdue, and a leader session is
//! set for tomorrow. The test reads the DOM Chromium dumps and checks the
//! figures, and writes a screenshot beside the test table as an artefact
//! (its path is printed). Chromium must be installed (`tests/run.sh`
//! installs it): this test fails, never skips, without it.

mod support;

use chrono::{Duration as Days, TimeZone, Utc};
use hotline::tickets::model::{Kind, NewTicket};
use std::time::Duration;
use support::gateway::Gateway;
use support::{free_port, wait_for};

const VIEWER: &str = "wallboard-demo-token-change-me";
const SUPERVISOR: &str = "supervisor-demo-token-change-me";

/// A leader session tomorrow (local), the only one still to come.
fn with_session_tomorrow(text: String) -> String {
    let tomorrow = chrono_tz::Asia::Shanghai
        .from_utc_datetime(&Utc::now().naive_utc())
        .date_naive()
        + Days::days(1);
    let next = text.replace(
        "sessions = [\n",
        &format!(
            "sessions = [\n  {{ date = \"{tomorrow}\", unit = \"市发改委\", leader = \"林喜洋\", title = \"主任\" }},\n"
        ),
    );
    assert_ne!(next, text, "the shipped table lists dated sessions");
    next
}

fn ticket(caller: &str, unit: &str, due: chrono::DateTime<Utc>) -> NewTicket {
    let day = chrono_tz::Asia::Shanghai
        .from_utc_datetime(&Utc::now().naive_utc())
        .date_naive();
    NewTicket {
        day,
        callback_number: caller.into(),
        caller_number: caller.into(),
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
        call_id: format!("{caller}@carrier"),
        recordings: vec![],
    }
}

fn post(port: u16, path: &str, body: &str) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.0\r\nAuthorization: Bearer {SUPERVISOR}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.split(' ').nth(1) == Some("200"), "{path}: {out}");
}

/// Chromium on the wallboard: a desktop's window, and scripts, fetches
/// and timers run until the page is idle (the event stream stays open and
/// does not hold it up).
fn chromium(args: &[&str], url: &str) -> std::process::Output {
    let mut all = vec!["--window-size=1920,1080", "--virtual-time-budget=5000"];
    all.extend_from_slice(args);
    support::chromium(&all, url)
}

/// The text of the element carrying `attrs` (in this order) in `dom`.
fn text_of(dom: &str, attrs: &str) -> Option<String> {
    let at = dom.find(attrs)?;
    let rest = &dom[at..];
    let start = rest.find('>')? + 1;
    let end = rest[start..].find('<')? + start;
    Some(rest[start..end].trim().to_string())
}

#[test]
fn the_wallboard_shows_waiting_callers_seats_tickets_and_the_next_session_in_a_real_browser() {
    let gw = Gateway::start_with("wallboard", with_session_tomorrow);
    // Tickets: one due later today, one overdue since yesterday, one done.
    let store = hotline::tickets::open("sqlite:tickets.db", gw.dir()).unwrap();
    let now = Utc::now();
    let midnight = chrono_tz::Asia::Shanghai
        .from_local_datetime(
            &(now.with_timezone(&chrono_tz::Asia::Shanghai).date_naive() + Days::days(1))
                .and_hms_opt(0, 0, 0)
                .unwrap(),
        )
        .unwrap()
        .with_timezone(&Utc);
    let later_today = now + (midnight - now) / 2;
    store
        .create(&ticket("13900000001", "市民政局", later_today), now)
        .unwrap();
    store
        .create(&ticket("13900000002", "市民政局", now - Days::days(1)), now)
        .unwrap();

    // Seat 8001 logs in and is paused; two callers wait for it.
    let port = free_port();
    gw.register("8001", port);
    post(gw.metrics, "/api/seats/8001/pause", r#"{"reason":"培训"}"#);
    let callers = [gw.call("12345", "wait_bye"), gw.call("12345", "wait_bye")];
    let waiting = wait_for(Duration::from_secs(10), || {
        let (_, text) = support::http_get_with(gw.metrics, "/api/queues", VIEWER)?;
        text.contains("\"waiting\":2").then_some(())
    });
    assert!(
        waiting.is_some(),
        "the callers never waited\n{}",
        gw.daemon.log_text()
    );

    let url = format!("http://127.0.0.1:{}/wallboard#token={VIEWER}", gw.metrics);
    let out = chromium(&["--dump-dom"], &url);
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        dom.contains("data-loaded="),
        "the page never loaded its figures:\n{dom}"
    );
    let field = |f: &str| text_of(&dom, &format!("data-field=\"{f}\" data-queue=\"general\""));
    assert_eq!(field("waiting").as_deref(), Some("2"), "{dom}");
    let longest = field("longest_wait").unwrap();
    assert!(longest.contains(':'), "longest wait as m:ss: {longest}");
    assert_eq!(field("abandoned_today").as_deref(), Some("0"));
    assert_eq!(
        field("service_level_today").as_deref(),
        Some("—"),
        "nobody answered or abandoned yet"
    );
    assert_eq!(field("seats_paused").as_deref(), Some("示忙 1"));
    assert!(
        dom.contains("data-seat=\"8001\" data-state=\"paused\""),
        "seat 8001 shows paused"
    );
    assert!(dom.contains("data-seat=\"8002\" data-state=\"logged_out\""));
    assert_eq!(
        text_of(&dom, "id=\"tickets-due-today\"").as_deref(),
        Some("1")
    );
    assert_eq!(
        text_of(&dom, "id=\"tickets-overdue\"").as_deref(),
        Some("1")
    );
    assert!(
        dom.contains("data-session=\"next\""),
        "the next session is shown"
    );
    assert!(
        dom.contains("市发改委 · 林喜洋"),
        "with its unit and leader"
    );
    assert!(dom.contains("09:00–11:00"), "and its time");
    assert!(
        dom.contains("12345综合受理"),
        "queues by their names, in Chinese"
    );

    // A wrong token: the login form, asking again.
    let bad = format!(
        "http://127.0.0.1:{}/wallboard#token=wrong-token-0123456789",
        gw.metrics
    );
    let out = chromium(&["--dump-dom"], &bad);
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(dom.contains("<form id=\"login\" class=\"card\">"), "{dom}");
    assert!(dom.contains("<p id=\"login-error\" class=\"\">"), "{dom}");

    // The artefact: what the wall screen shows.
    let shot = gw.dir().join("wallboard.png");
    chromium(&[&format!("--screenshot={}", shot.display())], &url);
    let png = std::fs::read(&shot).expect("a screenshot was written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let keep = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("wallboard.png");
    std::fs::copy(&shot, &keep).unwrap();
    println!("wallboard screenshot: {}", keep.display());

    drop(callers);
}
