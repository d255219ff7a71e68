//! Leader sessions (热线问政) end to end over loopback: the real daemon on
//! a table whose session is live now, SIPp as the carrier. A caller who
//! keys 2 (a ticket), 1 (its own number) and # after speaking hears RTP
//! that decodes to the ticket prompts and the digits of the ticket the
//! store holds; a caller who keys 1 reaches the leader's seat. SIPp must be
//! installed (`tests/run.sh` installs it): these tests fail, never skip,
//! without it.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::free_port;
use support::gateway::{
    Gateway, find, heard_in_order, heard_prompt, listen, with_leader_session_now,
};

/// The session's unit's API token, in the test table.
const TOKEN: &str = "unit-token-of-the-fagaiwei-0001";

/// One HTTP/1.0 request to the admin endpoint: (status, body).
fn http(port: u16, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// One webhook request as the receiver got it.
#[derive(Clone, Debug)]
struct Hook {
    headers: Vec<(String, String)>,
    body: String,
}

impl Hook {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

/// A unit's webhook receiver on loopback: answers the first `fail`
/// requests 500, then 200; keeps every request.
fn receiver(fail: usize) -> (u16, Arc<Mutex<Vec<Hook>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got: Arc<Mutex<Vec<Hook>>> = Arc::default();
    let seen = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap_or(0);
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.trim_end().split_once(':') {
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                }
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let n = {
                let mut g = seen.lock().unwrap();
                g.push(Hook {
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                g.len()
            };
            let status = if n <= fail {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (port, got)
}

/// The test's own check of a Standard Webhooks signature.
fn signed_right(key: &[u8], hook: &Hook) -> bool {
    use base64::Engine as _;
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(
        format!(
            "{}.{}.{}",
            hook.header("webhook-id"),
            hook.header("webhook-timestamp"),
            hook.body
        )
        .as_bytes(),
    );
    let want = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    hook.header("webhook-signature") == format!("v1,{want}")
}

#[test]
fn a_caller_who_takes_a_ticket_hears_its_number_only_as_stored() {
    use base64::Engine as _;
    // The session's unit takes its tickets by webhook; its receiver fails
    // twice before it accepts.
    let (hook_port, hooks) = receiver(2);
    let key = [7u8; 32];
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    let gw = Gateway::start_with("leader-ticket", |t| {
        let with_unit = t.replace(
            "requests_dir = \"requests\"\n",
            &format!(
                "requests_dir = \"requests\"\ndispatch_retry_seconds = 1\n\n[[tickets.units]]\nunit = \"市发改委\"\nwebhook_url = \"http://127.0.0.1:{hook_port}/hotline\"\nwebhook_secret = \"{secret}\"\napi_token = \"{TOKEN}\"\n"
            ),
        );
        assert_ne!(with_unit, t);
        with_leader_session_now(with_unit)
    });
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rtp.local_addr().unwrap().port().to_string();
    let caller = gw.sipp(
        "leader_ticket_call.xml",
        &[
            ("MEDIA_PORT", &port),
            ("REQUEST_MS", "9500"),
            ("CALLER", "13907350000"),
        ],
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
    // Created, or already delivered to its unit (the dispatcher runs
    // while the number is read).
    assert!(
        ["created", "dispatched"].contains(&status.as_str()),
        "{status}"
    );
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

    // Delivered to the unit at least once, signed, the same id each try:
    // failed twice, retried, accepted.
    gw.wait_metric("hotline_ticket_dispatch_total{result=\"delivered\"}", 1.0);
    let got = hooks.lock().unwrap().clone();
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(
        got.iter()
            .all(|h| h.header("webhook-id") == got[0].header("webhook-id"))
    );
    assert_eq!(got[0].header("webhook-id"), format!("msg_{id}_1"));
    for h in &got {
        assert!(signed_right(&key, h), "bad signature: {h:?}");
        let body: serde_json::Value = serde_json::from_str(&h.body).unwrap();
        assert_eq!(body["type"], "ticket.created");
        assert_eq!(body["data"]["id"], id.as_str());
        assert_eq!(body["data"]["unit"], "市发改委");
    }
    assert_eq!(
        gw.metric("hotline_ticket_dispatch_total{result=\"retry\"}"),
        Some(2.0)
    );
    assert!(
        !gw.daemon.log_text().contains(&secret),
        "the secret is never logged"
    );

    // The operators' view of the same store, beside the running daemon.
    let config = gw.table.path.to_str().unwrap().to_string();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
            .args(["tickets", "--config", &config])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let list: serde_json::Value = serde_json::from_str(&cli(&["list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["kind"], "leader_session");
    assert_eq!(list[0]["tag"], "热线问政");
    assert_eq!(list[0]["session"]["leader"], "林喜洋");
    assert_eq!(list[0]["overdue"], false);
    assert_eq!(list[0]["status"], "dispatched", "delivered: the unit's now");
    let none: serde_json::Value =
        serde_json::from_str(&cli(&["list", "--overdue", "--json"])).unwrap();
    assert_eq!(none.as_array().unwrap().len(), 0);
    let shown: serde_json::Value = serde_json::from_str(&cli(&["show", &id, "--json"])).unwrap();
    assert_eq!(shown["history"][0]["action"], "create");
    // The unit's own API: its ticket, then signed for (签收).
    let (code, body) = http(gw.metrics, "GET", "/api/tickets", TOKEN, "");
    assert_eq!(code, 200, "{body}");
    let mine: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(mine[0]["id"], id.as_str());
    let (code, _) = http(
        gw.metrics,
        "GET",
        "/api/tickets",
        "not-a-token-of-any-unit",
        "",
    );
    assert_eq!(code, 401);
    let (code, body) = http(
        gw.metrics,
        "POST",
        &format!("/api/tickets/{id}/accept"),
        TOKEN,
        "",
    );
    assert_eq!(code, 200, "{body}");
    let accepted: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(accepted["status"], "accepted");
    assert!(
        !gw.daemon.log_text().contains(TOKEN),
        "tokens are never logged"
    );
    gw.wait_metric("hotline_tickets_open{unit=\"市发改委\"}", 1.0);
    assert_eq!(
        gw.metric("hotline_tickets_overdue{unit=\"市发改委\"}"),
        Some(0.0)
    );

    // The session's index lists the call that took the ticket.
    let index = session_index(&gw);
    assert_eq!(index["calls"][0]["ticket"], id.as_str(), "{index}");
    assert_eq!(index["calls"][0]["caller"], "139****0000");
    assert!(
        index["calls"][0]["recording"].is_null(),
        "no one answered it"
    );

    let csv = cli(&["export", "--csv"]);
    assert!(csv.starts_with("id,status,overdue,"), "{csv}");
    assert!(csv.contains(&format!("{id},accepted,false,")), "{csv}");

    // The unit finishes it; the callback made by hand, the citizen
    // satisfied, an operator closes it.
    let reply = r#"{"reply":"已协调相关科室处理"}"#;
    let (code, body) = http(
        gw.metrics,
        "POST",
        &format!("/api/tickets/{id}/done"),
        TOKEN,
        reply,
    );
    assert_eq!(code, 200, "{body}");
    let line = cli(&["visit", &id, "--satisfied"]);
    assert!(line.contains("visited"), "{line}");
    let shown: serde_json::Value = serde_json::from_str(&cli(&["show", &id, "--json"])).unwrap();
    let steps: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["create", "dispatch", "accept", "done", "visit"]);
}

/// A caller who keys 2 and 1#, speaks its request after the tone and
/// then says nothing, keying no `#`: its quiet ends the request (after
/// `message_silence_seconds`, long before `message_seconds`), and the
/// ticket is stored with what it said and read to it.
#[test]
fn a_caller_who_stops_speaking_ends_its_request_without_hash() {
    use hotline::media::g711::Codec;
    use hotline::media::mixer::goertzel_power;
    use hotline::media::rtp::{inspect, packet};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;
    let gw = Gateway::start_with("leader-quiet", |t| {
        let quiet = t.replace(
            "message_silence_seconds = 5\n",
            "message_silence_seconds = 3\n",
        );
        assert_ne!(quiet, t);
        with_leader_session_now(quiet)
    });
    // The ticket scenario without its closing `#`: after 1# it only
    // waits for the gateway to read the number and hang up.
    let template = support::gateway::scenario("leader_ticket_call.xml");
    let (head, tail) = template
        .split_once("  <pause milliseconds=\"@REQUEST_MS@\"/>")
        .unwrap();
    let (_, rest) = tail.split_once("  <recv request=\"BYE\"/>").unwrap();
    let text = format!("{head}  <recv request=\"BYE\"/>{rest}");
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rtp.local_addr().unwrap().port().to_string();
    let caller = gw.sipp_text(
        "leader_ticket_quiet.xml",
        text,
        // REQUEST_MS is left only in the scenario's comment.
        &[
            ("MEDIA_PORT", &port),
            ("CALLER", "13907350000"),
            ("REQUEST_MS", "0"),
        ],
        "127.0.0.1",
        free_port(),
        &["-timeout", "60s"],
    );
    // The caller's phone: paced RTP, silence until the tone after the
    // request's prompt, then 1.5 s of speech (a 700 Hz tone), then
    // silence again; it keeps everything it hears.
    let done = Arc::new(AtomicBool::new(false));
    let stop = done.clone();
    let phone = std::thread::spawn(move || {
        let beep = heard_prompt("beep");
        // 200 ms after the tone's end (recording starts as it ends),
        // then the words.
        let speech: Vec<i16> = std::iter::repeat_n(0, 1600)
            .chain((0..8000 * 3 / 2).map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * 700.0 * i as f64 / 8000.0).sin()) as i16
            }))
            .collect();
        let mut heard: Vec<i16> = Vec::new();
        let mut searched = 0;
        let mut spoken: Option<usize> = None;
        let mut gateway = None;
        let mut buf = [0u8; 2048];
        let started = Instant::now();
        let mut next = Instant::now();
        let mut seq = 0u16;
        rtp.set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
            if let Ok((n, from)) = rtp.recv_from(&mut buf)
                && let Some(info) = inspect(&buf[..n])
            {
                Codec::Pcmu.decode(&buf[info.payload_at..n], &mut heard);
                gateway = Some(from);
            }
            // The beep, looked for in what came since the last look.
            if spoken.is_none() && heard.len() > searched {
                match find(&heard, &beep, searched.saturating_sub(beep.len())) {
                    Some(_) => spoken = Some(0),
                    None => searched = heard.len(),
                }
            }
            let Some(to) = gateway else { continue };
            if Instant::now() < next {
                continue;
            }
            next += Duration::from_millis(20);
            let frame: &[i16] = match spoken {
                Some(at) if at < speech.len() => {
                    spoken = Some(at + 160);
                    &speech[at..at + 160]
                }
                _ => &[0; 160],
            };
            let mut ulaw = Vec::new();
            Codec::Pcmu.encode(frame, &mut ulaw);
            seq = seq.wrapping_add(1);
            let _ = rtp.send_to(
                &packet(0, false, seq, u32::from(seq) * 160, 0xca11, &ulaw),
                to,
            );
        }
        (heard, spoken.is_some())
    });
    caller.expect_success(&gw);
    done.store(true, Ordering::Relaxed);
    let (heard, spoke) = phone.join().unwrap();
    assert!(spoke, "the request's tone was never heard");

    let db = rusqlite::Connection::open(gw.dir().join("tickets.db")).unwrap();
    let (id, request): (String, Option<String>) = db
        .query_row("SELECT id, request_recording FROM tickets", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    // The request: what was said, then the quiet that ended it — seconds,
    // where `message_seconds` would have run a minute.
    let request = request.expect("a request was recorded");
    let samples: Vec<i16> = hound::WavReader::open(&request)
        .unwrap()
        .samples::<i16>()
        .map(|s| s.unwrap())
        .collect();
    let secs = samples.len() as f64 / 8000.0;
    assert!((3.5..=9.0).contains(&secs), "the request lasts {secs} s");
    let frames: Vec<f64> = samples
        .chunks(160)
        .map(|f| goertzel_power(f, 700.0, 8000.0).sqrt())
        .collect();
    let spoken = frames.iter().filter(|&&a| a > 4000.0).count();
    assert!(
        (60..=80).contains(&spoken),
        "1.5 s of speech recorded, {spoken} frames"
    );
    let last_voice = frames.iter().rposition(|&a| a > 4000.0).unwrap();
    let after = (frames.len() - 1 - last_voice) as f64 * 0.02;
    assert!(
        (2.5..=5.0).contains(&after),
        "the request ends {after} s after the caller's last word"
    );
    // Only then the ticket is told.
    let mut told = vec!["ticket_created".to_string()];
    told.extend(id.chars().map(|d| format!("digit_{d}")));
    told.push("goodbye".into());
    heard_in_order(&heard, &told).unwrap();
    assert!(gw.daemon.log_text().contains("the leg fell quiet"));
}

#[test]
fn a_caller_who_presses_one_reaches_the_leaders_seat() {
    let gw = Gateway::start_with("leader-wait", with_leader_session_now);
    let leader = free_port();
    gw.register("8900", leader);
    let seat = gw.seat_for("8900", leader, "answer", "seat_bye", 1500);
    // The caller talks (silence, as RTP) from a socket of the test's.
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rtp.local_addr().unwrap().port().to_string();
    let caller = gw.call_keying("12345", "wait_bye", &port, 0, Some('1'));
    let talk = std::thread::spawn(move || listen(&rtp, Duration::from_secs(6), &mut None));
    seat.expect_success(&gw);
    caller.expect_success(&gw);
    talk.join().unwrap();
    assert_eq!(
        gw.metric("hotline_leader_choice_total{choice=\"wait\"}"),
        Some(1.0)
    );
    assert_eq!(gw.calls_total("leader_session", "12345", "completed"), 1.0);

    // Ready to publish: the session's folder, its index, the mixed call.
    let index = session_index(&gw);
    let calls = index["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{index}");
    assert_eq!(calls[0]["caller"], "139****0000", "masked");
    assert_eq!(calls[0]["seat"], "8900");
    assert_eq!(index["session"]["leader"], "林喜洋");
    let file = calls[0]["recording"].as_str().expect("a mixed recording");
    let wav = hound::WavReader::open(session_folder(&gw).join(file))
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.daemon.log_text()));
    assert!(wav.duration() > 4000, "{} samples", wav.duration());
}

/// The live session's folder for publication.
fn session_folder(gw: &Gateway) -> std::path::PathBuf {
    use chrono::TimeZone;
    let today = chrono_tz::Asia::Shanghai
        .from_utc_datetime(&chrono::Utc::now().naive_utc())
        .date_naive();
    gw.dir()
        .join("recordings/sessions")
        .join(format!("{today}-市发改委"))
}

/// The session's index, once written (the call's end writes it).
fn session_index(gw: &Gateway) -> serde_json::Value {
    let path = session_folder(gw).join("index.json");
    let text = support::wait_for(Duration::from_secs(15), || {
        std::fs::read_to_string(&path).ok()
    })
    .unwrap_or_else(|| panic!("no {}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The ticket number a caller heard, read back from its audio: the digits
/// after `ticket_created` (or `ticket_existing`), each clip matched sample
/// for sample, and complete only if what follows them was heard too.
fn number_heard(heard: &[i16]) -> Option<String> {
    let digits: Vec<Vec<i16>> = (0..10)
        .map(|d| heard_prompt(&format!("digit_{d}")))
        .collect();
    for (intro, after) in [
        ("ticket_created", "ticket_due_in"),
        ("ticket_existing", "goodbye"),
    ] {
        let clip = heard_prompt(intro);
        let Some(start) = find(heard, &clip, 0) else {
            continue;
        };
        let mut at = start + clip.len();
        let mut number = String::new();
        'next: loop {
            for (d, c) in digits.iter().enumerate() {
                if heard.len() >= at + c.len() && heard[at..at + c.len()] == c[..] {
                    number.push(char::from(b'0' + d as u8));
                    at += c.len();
                    continue 'next;
                }
            }
            break;
        }
        let end = heard_prompt(after);
        let complete = heard.len() >= at + end.len() && heard[at..at + end.len()] == end[..];
        return complete.then_some(number);
    }
    None
}

/// kill -9 at instants spread over the whole dialogue — before a ticket
/// is stored, while its number is read, after — with callers taking
/// tickets, round after round on one store. Every number a caller heard
/// whole is in the store; every row is whole and well-formed; no number is
/// given twice; the SQLite file passes its integrity check.
#[test]
fn every_ticket_number_a_caller_heard_survives_sigkill() {
    let mut gw = Gateway::start_with("leader-kill", with_leader_session_now);
    // A spread of instants, and one from the clock (printed, to replay).
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_millis() as u64;
    // Reading a number takes about 13 s from the store; callers come 2 s
    // apart: the first kill comes while numbers are read, the second as
    // the first caller's ends, the last after two callers heard theirs.
    let kills = [5_500, 11_000 + seed * 7 % 2_000, 17_000 + seed % 1_500];
    eprintln!("kill instants (ms after the first caller): {kills:?}");
    let mut heard_numbers: Vec<String> = Vec::new();
    let mut caller_no = 0;
    for (round, kill_at) in kills.iter().enumerate() {
        let mut callers = Vec::new();
        for i in 0..3 {
            caller_no += 1;
            let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = rtp.local_addr().unwrap().port().to_string();
            let caller = format!("139073{caller_no:05}");
            let sipp = gw.sipp(
                "leader_ticket_call.xml",
                &[
                    ("MEDIA_PORT", &port),
                    ("REQUEST_MS", "200"),
                    ("CALLER", &caller),
                ],
                "127.0.0.1",
                free_port(),
                &["-timeout", "40s"],
            );
            let listener = std::thread::spawn(move || {
                let mut gateway = None;
                listen(&rtp, Duration::from_secs(20), &mut gateway)
            });
            callers.push((sipp, listener));
            if i < 2 {
                std::thread::sleep(Duration::from_millis(2_000));
            }
        }
        std::thread::sleep(Duration::from_millis(kill_at.saturating_sub(4_000)));
        gw.kill_and_restart(&format!("daemon-{round}.log"));
        for (sipp, listener) in callers {
            let heard = listener.join().unwrap();
            if let Some(n) = number_heard(&heard) {
                heard_numbers.push(n);
            }
            drop(sipp);
        }
    }
    assert!(
        !heard_numbers.is_empty(),
        "no caller heard a whole number: the test proves nothing"
    );
    let store = hotline::tickets::open("sqlite:tickets.db", gw.dir()).unwrap();
    // Every row parses whole (a half-written one would not).
    let all = store.list(&hotline::tickets::Filter::default()).unwrap();
    let ids: Vec<String> = all.iter().map(|t| t.id.to_string()).collect();
    for n in &heard_numbers {
        assert!(
            ids.contains(n),
            "{n} was heard but is not stored; stored: {ids:?}"
        );
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "a number given twice: {ids:?}");
    for t in &all {
        assert!(hotline::tickets::TicketId::parse(t.id.as_str()).is_some());
        assert!(t.new.callback_number.starts_with("139073"), "{t:?}");
    }
    let db = rusqlite::Connection::open(gw.dir().join("tickets.db")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    eprintln!(
        "{} numbers heard whole, {} tickets stored",
        heard_numbers.len(),
        ids.len()
    );
}
