//! End to end over loopback: the real daemon, SIPp as the carrier trunk,
//! the seats (registering with digest) and the sub-centre and emergency
//! trunks. Scenario templates live in `tests/sipp/`; each test fills in
//! its numbers and ports. SIPp must be installed (`tests/run.sh` installs
//! it): these tests fail, never skip, without it.

mod support;

use std::collections::HashMap;
use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};
use support::gateway::{Baresip, Gateway, ends_in_baresip_voice, heard_prompt, listen};
use support::{REPO, free_port, wait_for};

#[test]
fn a_call_to_12348_reaches_the_expert_seat_and_the_seat_hangs_up() {
    let gw = Gateway::start("expert");
    let port = free_port();
    gw.register("8101", port);
    let seat = gw.seat("8101", port, "answer", "seat_bye");
    let caller = gw.call("12348", "wait_bye");
    caller.expect_success(&gw);
    seat.expect_success(&gw);
    gw.wait_metric("hotline_active_calls", 0.0);
    assert_eq!(gw.calls_total("direct", "12348", "completed"), 1.0);
    assert_eq!(gw.metric("hotline_call_setup_seconds_count"), Some(1.0));
}

#[test]
fn a_call_to_12333_with_its_expert_seat_busy_reaches_another_skilled_seat() {
    let gw = Gateway::start("busy-expert");
    let (expert, other) = (free_port(), free_port());
    gw.register("8102", expert);
    gw.register("8201", other);
    let busy = gw.seat("8102", expert, "busy", "wait_bye");
    let answering = gw.seat("8201", other, "answer", "wait_bye");
    // The expert refuses; the skilled seat is offered from 2 s on.
    let caller = gw.call_for("12333", "caller_bye", "[media_port]", 4000);
    caller.expect_success(&gw);
    busy.expect_success(&gw);
    answering.expect_success(&gw);
    assert_eq!(gw.calls_total("direct", "12333", "completed"), 1.0);
}

#[test]
fn sub_centre_lines_go_out_over_their_trunks() {
    let gw = Gateway::start("sub-centre");
    let city = gw.trunk_uas("12366", gw.city);
    gw.call("12366", "caller_bye").expect_success(&gw);
    city.expect_success(&gw);
    let provincial = gw.trunk_uas("12360", gw.provincial);
    gw.call("12360", "caller_bye").expect_success(&gw);
    provincial.expect_success(&gw);
    assert_eq!(gw.calls_total("sub_centre", "12366", "completed"), 1.0);
    assert_eq!(gw.calls_total("sub_centre", "12360", "completed"), 1.0);
}

#[test]
fn emergency_calls_reach_the_emergency_trunk() {
    let gw = Gateway::start("emergency");
    // 96119 (forest fire) routes as 119.
    let trunk = gw.trunk_uas("119", gw.emergency);
    gw.call("96119", "caller_bye").expect_success(&gw);
    trunk.expect_success(&gw);
    let trunk = gw.trunk_uas("110", gw.emergency);
    gw.call("110", "caller_bye").expect_success(&gw);
    trunk.expect_success(&gw);
    assert_eq!(gw.calls_total("emergency", "119", "completed"), 1.0);
    assert_eq!(gw.calls_total("emergency", "110", "completed"), 1.0);
}

#[test]
fn the_caller_hangs_up_while_the_seat_rings() {
    let gw = Gateway::start("abandon");
    let port = free_port();
    gw.register("8101", port);
    let seat = gw.seat("8101", port, "never", "wait_bye");
    // Answered by the gateway to wait; gone a second later, while 8101
    // rings: the seat gets a CANCEL, the queue counts an abandon.
    let caller = gw.call_for("12348", "caller_bye", "[media_port]", 1000);
    caller.expect_success(&gw);
    seat.expect_success(&gw);
    gw.wait_metric("hotline_active_calls", 0.0);
    assert_eq!(gw.calls_total("direct", "12348", "abandoned"), 1.0);
    // Within 5 s: a short abandon, counted apart.
    assert_eq!(
        gw.metric("hotline_queue_calls_total{outcome=\"short_abandoned\",queue=\"general\"}"),
        Some(1.0)
    );
}

#[test]
fn a_seat_that_never_answers_is_cancelled_after_its_ring_time_and_the_caller_keeps_waiting() {
    let gw = Gateway::start("no-answer");
    let port = free_port();
    // 12315's expert seat; no other market seat is registered.
    gw.register("8104", port);
    let seat = gw.seat("8104", port, "never", "wait_bye");
    let caller = gw.call_for("12315", "caller_bye", "[media_port]", 4000);
    // The offer rings 2 s, then it is withdrawn (CANCEL).
    seat.expect_success(&gw);
    gw.wait_metric("hotline_seat_offers_total{result=\"no_answer\"}", 1.0);
    assert_eq!(
        gw.metric("hotline_active_calls"),
        Some(1.0),
        "still waiting"
    );
    caller.expect_success(&gw);
    assert_eq!(gw.calls_total("direct", "12315", "abandoned"), 1.0);
}

#[test]
fn the_caller_hangs_up_an_answered_call() {
    let gw = Gateway::start("caller-bye");
    let port = free_port();
    gw.register("8001", port);
    let seat = gw.seat("8001", port, "answer", "wait_bye");
    // 12345 itself: until queues exist, a free general seat takes it.
    gw.call("12345", "caller_bye").expect_success(&gw);
    seat.expect_success(&gw);
    assert_eq!(gw.calls_total("queue", "12345", "completed"), 1.0);
}

#[test]
fn an_invite_from_an_unknown_address_gets_403() {
    let gw = Gateway::start("acl");
    gw.expect_refused("127.0.0.2", "12345", "403", "SIP/2.0 403");
    assert_eq!(gw.metric("hotline_sip_untrusted_invites_total"), Some(1.0));
}

#[test]
fn a_register_with_a_wrong_password_gets_no_registration() {
    let gw = Gateway::start("bad-password");
    gw.sipp(
        "register.xml",
        &[
            ("SEAT", "8101"),
            ("PASSWORD", "not-the-password"),
            ("EXPECT", "403"),
        ],
        "127.0.0.1",
        free_port(),
        &["-s", "8101"],
    )
    .expect_success(&gw);
    assert_eq!(gw.metric("hotline_registered_seats"), Some(0.0));
    assert_eq!(
        gw.metric("hotline_sip_auth_failures_total{reason=\"wrong_password\"}"),
        Some(1.0)
    );
    // With no seat registered, a caller to 12348 is answered, told no seat
    // can take the call (queue_unavailable) and hung up on, not left
    // ringing forever.
    gw.call("12348", "wait_bye").expect_success(&gw);
    assert_eq!(
        gw.metric("hotline_queue_calls_total{outcome=\"empty\",queue=\"general\"}"),
        Some(1.0)
    );
    // A number the table does not list is a refusal, not a shortage.
    gw.expect_refused("127.0.0.1", "99999", "404", "SIP/2.0 404");
    gw.wait_metric(
        "hotline_calls_total{kind=\"reject\",line=\"unknown\",result=\"rejected\"}",
        1.0,
    );
    assert_eq!(gw.calls_total("direct", "12348", "unavailable"), 1.0);
}

/// RFC 4475 §3.1.2 over the wire while a call is up: each invalid request
/// is answered 400 (505 for `badvers`) or dropped, responses are dropped,
/// the daemon counts them, and the call in progress ends normally.
#[test]
fn torture_messages_do_not_disturb_a_call_in_progress() {
    let gw = Gateway::start("torture");
    let (seat, caller) = gw.answered_call_to_12348(8000);

    let dir = Path::new(REPO).join("tests/sip/torture/invalid");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut answers: HashMap<String, Option<u16>> = HashMap::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        socket.send_to(&bytes, ("127.0.0.1", gw.sip)).unwrap();
        let mut buf = [0u8; 4096];
        let code = socket.recv(&mut buf).ok().and_then(|n| {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            text.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
        });
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        answers.insert(name, code);
    }
    for (name, code) in &answers {
        let is_response = std::fs::read(dir.join(format!("{name}.dat")))
            .unwrap()
            .starts_with(b"SIP/");
        match (is_response, code) {
            (true, None) => {}
            (false, Some(400)) => {}
            (false, Some(505)) if name == "badvers" => {}
            (false, None) => {}
            _ => panic!("{name}: unexpected answer {code:?}"),
        }
    }
    assert_eq!(
        gw.metric("hotline_active_calls"),
        Some(1.0),
        "the call was up the whole time the torture messages arrived"
    );
    let answered = answers.values().filter(|c| c.is_some()).count();
    assert!(
        answered >= 15,
        "most invalid requests get a 400: {answers:?}"
    );
    let parse_errors = gw.metric("hotline_sip_parse_errors_total").unwrap_or(0.0);
    assert!(
        parse_errors >= 19.0,
        "every torture message counted: {parse_errors}"
    );

    caller.expect_success(&gw);
    seat.expect_success(&gw);
    assert_eq!(gw.calls_total("direct", "12348", "completed"), 1.0);
}

#[test]
fn options_outside_a_dialog_is_answered_200_and_unknown_methods_501() {
    let gw = Gateway::start("options");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let local = socket.local_addr().unwrap();
    for (method, expect) in [
        ("OPTIONS", "SIP/2.0 200"),
        ("FROBNICATE", "SIP/2.0 501"),
        ("SUBSCRIBE", "SIP/2.0 405"),
    ] {
        let msg = format!(
            "{method} sip:hotline@127.0.0.1:{} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{method}\r\nMax-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:hotline@127.0.0.1>\r\nCall-ID: {method}-probe\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n",
            gw.sip
        );
        socket
            .send_to(msg.as_bytes(), ("127.0.0.1", gw.sip))
            .unwrap();
        let mut buf = [0u8; 2048];
        let n = socket.recv(&mut buf).expect("an answer");
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with(expect), "{method}: {text}");
        if expect != "SIP/2.0 200" || method == "OPTIONS" {
            assert!(
                text.contains("Allow: INVITE"),
                "{method} names what is allowed: {text}"
            );
        }
    }
    // An INVITE from the trunk requiring an extension we lack gets 420.
    let invite = format!(
        "INVITE sip:12345@127.0.0.1:{} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKreq;rport\r\nMax-Forwards: 70\r\nFrom: <sip:13907350000@127.0.0.1>;tag=1\r\nTo: <sip:12345@127.0.0.1>\r\nCall-ID: require-probe\r\nCSeq: 1 INVITE\r\nRequire: 100rel\r\nContent-Length: 0\r\n\r\n",
        gw.sip
    );
    socket
        .send_to(invite.as_bytes(), ("127.0.0.1", gw.sip))
        .unwrap();
    let mut buf = [0u8; 2048];
    let n = socket.recv(&mut buf).expect("an answer");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("SIP/2.0 420"), "{text}");
    assert!(text.contains("Unsupported: 100rel"), "{text}");
    // The response tells the sender the port it was seen from (RFC 3581).
    assert!(text.contains(&format!("rport={}", local.port())), "{text}");
}

#[test]
fn a_call_from_the_trunk_over_tcp_completes_both_ways() {
    let gw = Gateway::start("tcp");
    let port = free_port();
    gw.register("8101", port);
    let seat = gw.seat("8101", port, "answer", "seat_bye");
    // The caller's leg over TCP (framed by Content-Length); the seat's over UDP.
    gw.sipp(
        "trunk_call.xml",
        &[
            ("DIALED", "12348"),
            ("HANGUP", "wait_bye"),
            ("MEDIA_PORT", "[media_port]"),
            ("PAUSE_MS", "300"),
            ("KEYS", "no_keys"),
            ("KEY", "1"),
        ],
        "127.0.0.1",
        free_port(),
        &["-t", "t1"],
    )
    .expect_success(&gw);
    seat.expect_success(&gw);
    assert_eq!(gw.calls_total("direct", "12348", "completed"), 1.0);
}

/// Sends a REGISTER for seat 8101 from `socket` and returns the answer.
fn register_raw(
    gw: &Gateway,
    socket: &UdpSocket,
    cseq: u32,
    authorization: Option<&str>,
) -> String {
    exchange(
        gw,
        socket,
        &register_text(gw, socket, "8101", cseq, authorization),
    )
}

/// A REGISTER for `seat` from `socket`, its branch made of the CSeq.
fn register_text(
    gw: &Gateway,
    socket: &UdpSocket,
    seat: &str,
    cseq: u32,
    authorization: Option<&str>,
) -> String {
    let local = socket.local_addr().unwrap();
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    format!(
        "REGISTER sip:127.0.0.1:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKreg{seat}x{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{seat}@127.0.0.1>;tag=r1\r\nTo: <sip:{seat}@127.0.0.1>\r\nCall-ID: register-{seat}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{seat}@{local}>\r\n{auth}Expires: 60\r\nContent-Length: 0\r\n\r\n",
        sip = gw.sip
    )
}

/// Sends `msg` from `socket` and returns the first answer beyond 100.
fn exchange(gw: &Gateway, socket: &UdpSocket, msg: &str) -> String {
    socket
        .send_to(msg.as_bytes(), ("127.0.0.1", gw.sip))
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.recv(&mut buf).expect("an answer");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if !text.starts_with("SIP/2.0 100") {
            return text;
        }
    }
}

/// Registers `seat` from `socket` with its demo password (MD5).
fn register_seat(gw: &Gateway, socket: &UdpSocket, seat: &str, cseq: u32) -> String {
    use hotline::sip::digest::{Algorithm, authorization_header};
    let challenge = exchange(gw, socket, &register_text(gw, socket, seat, cseq, None));
    assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
    let auth = authorization_header(
        seat,
        &format!("demo-{seat}-change-me"),
        "hotline.chenzhou",
        &nonce_of(&challenge),
        "REGISTER",
        &format!("sip:127.0.0.1:{}", gw.sip),
        Algorithm::Md5,
        Some("c0ffee"),
        1,
    );
    exchange(
        gw,
        socket,
        &register_text(gw, socket, seat, cseq + 1, Some(&auth)),
    )
}

fn nonce_of(challenge: &str) -> String {
    let at = challenge.find("nonce=\"").expect("a nonce") + 7;
    challenge[at..].split('"').next().unwrap().to_string()
}

#[test]
fn a_burst_of_wrong_passwords_from_one_source_is_throttled() {
    use hotline::sip::digest::{Algorithm, authorization_header};
    // This seat's phone may use SHA-256 (per seat; the default is MD5).
    let gw = Gateway::start_with("throttle", |t| {
        t.replace(
            "password = \"demo-8101-change-me\"",
            "password = \"demo-8101-change-me\"\ndigest_algorithms = [\"MD5\", \"SHA-256\"]",
        )
    });
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let uri = format!("sip:127.0.0.1:{}", gw.sip);
    let attempt = |cseq: u32, password: &str| -> String {
        let challenge = register_raw(&gw, &socket, cseq, None);
        assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
        let auth = authorization_header(
            "8101",
            password,
            "hotline.chenzhou",
            &nonce_of(&challenge),
            "REGISTER",
            &uri,
            Algorithm::Md5,
            Some("c0ffee"),
            1,
        );
        register_raw(&gw, &socket, cseq + 1, Some(&auth))
    };
    // SHA-256 works too (this seat is offered MD5 first, SHA-256 second).
    let challenge = register_raw(&gw, &socket, 1, None);
    let sha = challenge
        .lines()
        .find(|l| l.contains("SHA-256"))
        .expect("a SHA-256 challenge");
    let auth = authorization_header(
        "8101",
        "demo-8101-change-me",
        "hotline.chenzhou",
        &nonce_of(sha),
        "REGISTER",
        &uri,
        Algorithm::Sha256,
        Some("c0ffee"),
        1,
    );
    let ok = register_raw(&gw, &socket, 2, Some(&auth));
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(ok.contains(";expires=60"), "{ok}");

    for i in 0..11 {
        let answer = attempt(10 + 2 * i, "wrong-password");
        assert!(answer.starts_with("SIP/2.0 403"), "attempt {i}: {answer}");
    }
    // Now even the right password is refused from this source for a while.
    let blocked = register_raw(&gw, &socket, 100, None);
    assert!(
        blocked.starts_with("SIP/2.0 403") && blocked.contains("too many"),
        "{blocked}"
    );
    assert_eq!(
        gw.metric("hotline_sip_auth_failures_total{reason=\"wrong_password\"}"),
        Some(11.0)
    );
    assert!(gw.metric("hotline_sip_auth_failures_total{reason=\"throttled\"}") >= Some(1.0));
    assert!(
        gw.daemon.log_text().contains("blocking"),
        "the block is logged when it starts"
    );
    // Another seat behind the same address (one NAT, one SBC) is not
    // locked out by its neighbour's stale password.
    let other = register_seat(&gw, &socket, "8102", 1);
    assert!(other.starts_with("SIP/2.0 200"), "{other}");
}

/// A captured REGISTER sent again: its retransmission (same transaction)
/// gets the same answer and changes nothing; the same credentials in a new
/// request are spent, and get a fresh challenge.
#[test]
fn a_replayed_register_is_refused() {
    let gw = Gateway::start("replay");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let ok = register_seat(&gw, &socket, "8001", 1);
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    // What the phone sent, with its Authorization, as an eavesdropper kept it.
    let challenge = exchange(&gw, &socket, &register_text(&gw, &socket, "8001", 3, None));
    let auth = hotline::sip::digest::authorization_header(
        "8001",
        "demo-8001-change-me",
        "hotline.chenzhou",
        &nonce_of(&challenge),
        "REGISTER",
        &format!("sip:127.0.0.1:{}", gw.sip),
        hotline::sip::digest::Algorithm::Md5,
        Some("c0ffee"),
        1,
    );
    let captured = register_text(&gw, &socket, "8001", 4, Some(&auth));
    assert!(exchange(&gw, &socket, &captured).starts_with("SIP/2.0 200"));
    // A retransmission: the same answer.
    assert!(exchange(&gw, &socket, &captured).starts_with("SIP/2.0 200"));
    // Replayed as a new request: refused, with a new challenge.
    let replay = register_text(&gw, &socket, "8001", 5, Some(&auth));
    let answer = exchange(&gw, &socket, &replay);
    assert!(answer.starts_with("SIP/2.0 401"), "{answer}");
    assert_eq!(
        gw.metric("hotline_sip_auth_failures_total{reason=\"replay\"}"),
        Some(1.0)
    );
}

/// An INVITE to `dialed` from `socket` in seat `seat`'s name.
fn seat_invite(
    gw: &Gateway,
    socket: &UdpSocket,
    seat: &str,
    dialed: &str,
    cseq: u32,
    auth: Option<&str>,
) -> String {
    let local = socket.local_addr().unwrap();
    let auth = auth.map_or(String::new(), |a| format!("Proxy-Authorization: {a}\r\n"));
    format!(
        "INVITE sip:{dialed}@127.0.0.1:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKinv{dialed}x{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{seat}@127.0.0.1>;tag=s1\r\nTo: <sip:{dialed}@127.0.0.1>\r\nCall-ID: seat-call-{dialed}-{cseq}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:{seat}@{local}>\r\n{auth}Content-Length: 0\r\n\r\n",
        sip = gw.sip
    )
}

/// The seat's INVITE again, answering the 407 in `challenge`.
fn authenticated_seat_invite(
    gw: &Gateway,
    socket: &UdpSocket,
    seat: &str,
    dialed: &str,
    challenge: &str,
) -> String {
    let auth = hotline::sip::digest::authorization_header(
        seat,
        &format!("demo-{seat}-change-me"),
        "hotline.chenzhou",
        &nonce_of(challenge),
        "INVITE",
        &format!("sip:{dialed}@127.0.0.1:{}", gw.sip),
        hotline::sip::digest::Algorithm::Md5,
        Some("beef"),
        1,
    );
    seat_invite(gw, socket, seat, dialed, 2, Some(&auth))
}

/// Trust by address is for trunks: a seat's own INVITE, whether from its
/// registered address or from a trunk's address in its name, must answer
/// a 407 like REGISTER's 401, and then reaches only what the table routes
/// — never an outside number.
#[test]
fn a_seat_places_calls_only_after_authenticating_and_only_to_table_numbers() {
    let gw = Gateway::start("seat-calls");
    // 127.0.0.2 is no trunk's address: a registered seat's phone.
    let phone = UdpSocket::bind("127.0.0.2:0").unwrap();
    phone
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let ok = register_seat(&gw, &phone, "8001", 1);
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let challenge = exchange(
        &gw,
        &phone,
        &seat_invite(&gw, &phone, "8001", "12348", 1, None),
    );
    assert!(challenge.starts_with("SIP/2.0 407"), "{challenge}");
    assert!(
        challenge.contains("Proxy-Authenticate: Digest"),
        "{challenge}"
    );
    assert!(challenge.contains("algorithm=MD5"), "{challenge}");
    // Authenticated: routed by the table. 12348 waits in its queue (its
    // expert seat is not logged in, and 8001, a general seat, is busy with
    // this very call): it rings, unanswered, until the seat gives up.
    let answer = exchange(
        &gw,
        &phone,
        &authenticated_seat_invite(&gw, &phone, "8001", "12348", &challenge),
    );
    assert!(answer.starts_with("SIP/2.0 180"), "{answer}");
    let local = phone.local_addr().unwrap();
    let cancel = format!(
        "CANCEL sip:12348@127.0.0.1:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKinv12348x2;rport\r\nMax-Forwards: 70\r\nFrom: <sip:8001@127.0.0.1>;tag=s1\r\nTo: <sip:12348@127.0.0.1>\r\nCall-ID: seat-call-12348-2\r\nCSeq: 2 CANCEL\r\nContent-Length: 0\r\n\r\n",
        sip = gw.sip
    );
    let mut answers = vec![exchange(&gw, &phone, &cancel)];
    let mut buf = [0u8; 4096];
    while !answers.iter().any(|a| a.starts_with("SIP/2.0 487")) {
        let n = phone.recv(&mut buf).expect("the 487");
        answers.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(
        answers
            .iter()
            .any(|a| a.starts_with("SIP/2.0 200") && a.contains("CANCEL")),
        "{answers:?}"
    );
    gw.wait_metric("hotline_active_calls", 0.0);
    // An outside number is no table number: refused.
    let challenge = exchange(
        &gw,
        &phone,
        &seat_invite(&gw, &phone, "8001", "013800138000", 1, None),
    );
    let answer = exchange(
        &gw,
        &phone,
        &authenticated_seat_invite(&gw, &phone, "8001", "013800138000", &challenge),
    );
    assert!(answer.starts_with("SIP/2.0 404"), "{answer}");
    // Wrong credentials: 403.
    let challenge = exchange(
        &gw,
        &phone,
        &seat_invite(&gw, &phone, "8001", "12345", 1, None),
    );
    let forged = authenticated_seat_invite(&gw, &phone, "8001", "12345", &challenge)
        .replace("seat-call-12345-2", "seat-call-12345-3");
    let wrong = forged.replace("response=\"", "response=\"0");
    assert!(exchange(&gw, &phone, &wrong).starts_with("SIP/2.0 403"));

    // From a trunk's address (127.0.0.1) in a seat's name: challenged too,
    // not taken as the carrier's.
    let sbc = UdpSocket::bind("127.0.0.1:0").unwrap();
    sbc.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let challenge = exchange(&gw, &sbc, &seat_invite(&gw, &sbc, "8002", "12345", 1, None));
    assert!(challenge.starts_with("SIP/2.0 407"), "{challenge}");
    assert_eq!(gw.metric("hotline_active_calls"), Some(0.0));
}

#[test]
fn stopping_the_daemon_hangs_up_calls_in_progress_cleanly() {
    let gw = Gateway::start("shutdown");
    let port = free_port();
    gw.register("8101", port);
    let seat = gw.seat("8101", port, "answer", "wait_bye");
    let caller = gw.call("12348", "wait_bye");
    gw.wait_bridged(1.0);
    // SIGTERM: both parties get a BYE rather than silence.
    gw.daemon.signal("TERM");
    caller.expect_success(&gw);
    seat.expect_success(&gw);
}

/// The gateway anchors media: a caller to 12345 hears the welcome prompt
/// as RTP while the seat rings — the decoded audio is the WAV through
/// μ-law — and a key pressed as RFC 4733 events is reported.
#[test]
fn a_caller_hears_the_welcome_as_rtp_and_a_key_press_is_reported() {
    use hotline::media::g711::Codec;
    use hotline::media::rtp::{inspect, packet};

    let gw = Gateway::start("early-media");
    // Both general seats ring (2 s each in the test table) and never answer.
    let (port1, port2) = (free_port(), free_port());
    gw.register("8001", port1);
    gw.register("8002", port2);
    let seat1 = gw.seat("8001", port1, "never", "wait_bye");
    let seat2 = gw.seat("8002", port2, "never", "wait_bye");
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    rtp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let rtp_port = rtp.local_addr().unwrap().port().to_string();
    // Answered by the gateway to wait; it hangs up after 3 s.
    let caller = gw.call_for("12345", "caller_bye", &rtp_port, 3000);

    // One second of what the caller hears.
    let mut heard = Vec::new();
    let mut gateway = None;
    let mut buf = [0u8; 2048];
    while heard.len() < 8000 {
        let (n, from) = rtp.recv_from(&mut buf).expect("RTP from the gateway");
        let info = inspect(&buf[..n]).expect("RTP");
        assert_eq!(info.payload_type, 0, "PCMU, as negotiated");
        Codec::Pcmu.decode(&buf[info.payload_at..n], &mut heard);
        gateway = Some(from);
    }
    let expected = heard_prompt("welcome");
    assert_eq!(
        &heard[..8000],
        &expected[..8000],
        "the caller hears welcome.wav"
    );

    // The caller presses 5: RFC 4733 start, continuation and end packets.
    let gateway = gateway.unwrap();
    for (k, (duration, end)) in [(160u16, false), (320, false), (480, true), (480, true)]
        .into_iter()
        .enumerate()
    {
        let payload = [
            5u8,
            if end { 0x8a } else { 0x0a },
            (duration >> 8) as u8,
            duration as u8,
        ];
        rtp.send_to(
            &packet(101, k == 0, 500 + k as u16, 90_000, 0x5eed, &payload),
            gateway,
        )
        .unwrap();
    }
    gw.wait_metric("hotline_dtmf_digits_total{source=\"rtp\"}", 1.0);
    assert!(
        gw.daemon.log_text().contains("key pressed"),
        "the digit is in the log"
    );

    caller.expect_success(&gw);
    seat1.expect_success(&gw);
    seat2.expect_success(&gw);
    assert_eq!(gw.calls_total("queue", "12345", "abandoned"), 1.0);
}

/// A seat puts the caller on hold for longer than the media time-out and,
/// like many phones, sends no RTP while it holds: the call stays up, the
/// caller hears hold_music.wav all along, and resuming ends the music.
#[test]
fn a_hold_longer_than_the_media_timeout_keeps_the_call_and_plays_hold_music() {
    use hotline::media::g711::Codec;
    use hotline::media::rtp::{inspect, packet};

    let gw = Gateway::start_with("hold", |t| {
        t.replace("media_timeout_seconds = 30", "media_timeout_seconds = 2")
    });
    let port = free_port();
    gw.register("8101", port);
    let seat = gw.sipp(
        "seat_hold.xml",
        &[("HOLD_MS", "4000")],
        "127.0.0.1",
        port,
        &["-s", "8101"],
    );
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    rtp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let rtp_port = rtp.local_addr().unwrap().port().to_string();
    // 12348 is a direct line: no early media, so the first audio the
    // caller hears is what the hold plays.
    let caller = gw.call_with_rtp("12348", "wait_bye", &rtp_port);

    // The caller keeps talking (its own leg must not time out); the seat
    // is silent. Collect what the caller hears for the hold's 4 s.
    let mut heard = Vec::new();
    let mut buf = [0u8; 2048];
    let mut seq = 0u16;
    let started = Instant::now();
    let mut gateway = None;
    while started.elapsed() < Duration::from_millis(7000) {
        rtp.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        if let Ok((n, from)) = rtp.recv_from(&mut buf) {
            let info = inspect(&buf[..n]).expect("RTP");
            Codec::Pcmu.decode(&buf[info.payload_at..n], &mut heard);
            gateway = Some(from);
        }
        if let Some(to) = gateway {
            seq = seq.wrapping_add(1);
            let _ = rtp.send_to(
                &packet(0, false, seq, u32::from(seq) * 160, 0xca11, &[0xff; 160]),
                to,
            );
        }
    }
    // Held 4 s: at least 3 s of music (the first packets after the 200).
    assert!(
        heard.len() >= 3 * 8000,
        "the caller heard {} samples while held\n{}",
        heard.len(),
        gw.daemon.log_text()
    );
    let expected = &heard_prompt("hold_music")[..8000];
    // Waiting for the seat (a moment), the caller already heard music; the
    // hold starts it again from the top.
    let start = (0..heard.len().saturating_sub(8000))
        .find(|&i| heard[i..i + 8000] == expected[..])
        .expect("the caller hears hold_music.wav");
    assert!(start < 8000, "the hold music came {start} samples late");
    let heard = &heard[start..];
    // Resumed 1.5 s before the seat's BYE: the music stopped there (held
    // 4 s; music up to the BYE would be 5.5 s).
    assert!(
        heard.len() <= 4 * 8000 + 6400,
        "hold music went on after the resume: {} samples",
        heard.len()
    );
    seat.expect_success(&gw);
    caller.expect_success(&gw);
    gw.wait_metric("hotline_active_calls", 0.0);
    assert_eq!(gw.metric("hotline_media_timeouts_total"), Some(0.0));
    assert_eq!(gw.calls_total("direct", "12348", "completed"), 1.0);
}

/// The test table with a second emergency trunk on `backup`, the first
/// one's alternate.
fn with_emergency_backup(text: String, backup: u16) -> String {
    text.replace(
        "[[trunks]]\nid = \"emergency\"\n",
        &format!(
            "[[trunks]]\nid = \"emergency_backup\"\nname = \"backup\"\nrole = \"emergency\"\n\
             uri = \"sip:127.0.0.1:{backup}\"\n\n\
             [[trunks]]\nid = \"emergency\"\nalternates = [\"emergency_backup\"]\n"
        ),
    )
    // Emergency numbers name their trunk once there are two.
    .replace("[[emergency]]\n", "[[emergency]]\ntrunk = \"emergency\"\n")
}

/// Nothing listens on the emergency trunks: the carrier gets 503 with
/// Retry-After at once (ICMP), not a 408 half a minute later, and can
/// route the call itself; with the backup trunk up, the call reaches it.
#[test]
fn an_emergency_call_with_its_trunk_down_gets_503_at_once_and_a_live_alternate_takes_it() {
    let backup = free_port();
    let gw = Gateway::start_with("emergency-down", |t| with_emergency_backup(t, backup));
    let started = Instant::now();
    gw.expect_refused("127.0.0.1", "120", "503", "Retry-After: [0-9]+");
    // Both trunks tried: at worst each waits out the 2 s response
    // time-out; ICMP makes it immediate. Timer B would take 32 s.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "503 after {:?}",
        started.elapsed()
    );
    gw.wait_metric("hotline_emergency_failures_total", 1.0);
    assert!(
        gw.daemon
            .log_text()
            .contains("emergency call reached no emergency trunk"),
        "a warning is logged"
    );

    let trunk = gw.trunk_uas("120", backup);
    gw.call("120", "caller_bye").expect_success(&gw);
    trunk.expect_success(&gw);
    assert_eq!(gw.calls_total("emergency", "120", "completed"), 1.0);
    assert_eq!(gw.metric("hotline_emergency_failures_total"), Some(1.0));
}

/// OPTIONS probes: a trunk nothing answers is down in hotline_trunk_up,
/// and up again once it answers.
#[test]
fn a_trunk_going_down_and_up_shows_in_hotline_trunk_up() {
    let gw = Gateway::start_with("trunk-probes", |t| {
        t.replace(
            "trunk_probe_interval_seconds = 0",
            "trunk_probe_interval_seconds = 1\ntrunk_probe_failures = 1",
        )
    });
    let series = "hotline_trunk_up{trunk=\"emergency\"}";
    gw.wait_metric(series, 0.0);
    let up = gw.sipp("options_uas.xml", &[], "127.0.0.1", gw.emergency, &[]);
    up.expect_success(&gw);
    gw.wait_metric(series, 1.0);
    let log = gw.daemon.log_text();
    assert!(log.contains("trunk down"), "{log}");
    assert!(log.contains("trunk up"), "{log}");
    // With its answers gone, it goes down again.
    gw.wait_metric(series, 0.0);
}

/// A sub-centre whose trunk is dead: the caller is still served, by the
/// 12345 seats.
#[test]
fn a_sub_centre_call_falls_back_to_the_12345_seats_when_its_trunk_is_dead() {
    let gw = Gateway::start("sub-centre-down");
    let port = free_port();
    gw.register("8001", port);
    let seat = gw.seat("8001", port, "answer", "wait_bye");
    gw.call("12366", "caller_bye").expect_success(&gw);
    seat.expect_success(&gw);
    assert_eq!(gw.calls_total("sub_centre", "12366", "completed"), 1.0);
}

/// The shipped digest defaults let a real phone log in: baresip 1.0
/// refuses a 401 that offers an algorithm it does not know.
#[test]
fn baresip_registers_with_the_shipped_digest_defaults() {
    let gw = Gateway::start("baresip-register");
    let phone = Baresip::start(&gw, "8001");
    let seen = wait_for(Duration::from_secs(10), || {
        (gw.metric("hotline_registered_seats") == Some(1.0)).then_some(())
    });
    assert!(
        seen.is_some(),
        "baresip did not register\n{}\n--- daemon\n{}",
        phone.log_text(),
        gw.daemon.log_text()
    );
    assert!(phone.log_text().contains("200 OK"), "{}", phone.log_text());
}

/// A real phone holds for longer than the media time-out: the call stays,
/// the caller hears hold_music.wav while held, and the phone's own voice
/// (a 440 Hz tone) again once it resumes.
#[test]
fn a_baresip_seat_holds_past_the_media_timeout_and_resumes_to_a_live_bridge() {
    let gw = Gateway::start_with("baresip-hold", |t| {
        t.replace("media_timeout_seconds = 30", "media_timeout_seconds = 2")
    });
    let phone = Baresip::start(&gw, "8101");
    gw.wait_metric("hotline_registered_seats", 1.0);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtp_port = rtp.local_addr().unwrap().port().to_string();
    let caller = gw.call_with_rtp("12348", "wait_bye", &rtp_port);
    gw.wait_bridged(1.0);

    let mut gateway = None;
    let before = listen(&rtp, Duration::from_millis(1500), &mut gateway);
    assert!(
        ends_in_baresip_voice(&before),
        "the caller hears the seat before the hold ({} samples)\n{}",
        before.len(),
        phone.log_text()
    );

    let answer = phone.command("hold");
    assert!(answer.contains("\"ok\":true"), "{answer}");
    let held = listen(&rtp, Duration::from_secs(4), &mut gateway);
    let expected = &heard_prompt("hold_music")[..16000];
    let start = held
        .windows(160)
        .position(|w| w == &expected[..160])
        .expect("hold_music.wav is heard while held");
    assert_eq!(
        &held[start..start + 16000],
        expected,
        "two seconds of hold music"
    );

    let answer = phone.command("resume");
    assert!(answer.contains("\"ok\":true"), "{answer}");
    let after = listen(&rtp, Duration::from_millis(1500), &mut gateway);
    assert!(
        ends_in_baresip_voice(&after),
        "after the resume the caller hears the seat again"
    );
    phone.command("hangup");
    caller.expect_success(&gw);
    gw.wait_metric("hotline_active_calls", 0.0);
    assert_eq!(gw.metric("hotline_media_timeouts_total"), Some(0.0));
    assert_eq!(gw.calls_total("direct", "12348", "completed"), 1.0);
}

/// A seat phone that vanished without unregistering: the kernel's ICMP
/// error moves the call to the next seat at once, not after the seat's
/// ring time (20 s here) or the response time-out (10 s here).
#[test]
fn a_vanished_seat_phone_is_passed_over_at_once() {
    let gw = Gateway::start_with("vanished-seat", |t| {
        t.replace("seat_ring_seconds = 2", "seat_ring_seconds = 20")
            .replace(
                "trunk_probe_interval_seconds = 0",
                "trunk_probe_interval_seconds = 0\nresponse_timeout_ms = 10000",
            )
            .replace("max_ring_seconds = 5", "max_ring_seconds = 60")
    });
    {
        // 8001 registers, then its phone is gone (the socket closes).
        let gone = UdpSocket::bind("127.0.0.1:0").unwrap();
        gone.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        assert!(register_seat(&gw, &gone, "8001", 1).starts_with("SIP/2.0 200"));
    }
    let port = free_port();
    gw.register("8002", port);
    let seat = gw.seat("8002", port, "answer", "wait_bye");
    // The caller stays 3 s: long enough for the INVITE's retransmission
    // (T1) should the kernel report only its ICMP error, far short of the
    // 20 s the vanished phone would otherwise ring.
    gw.call_for("12345", "caller_bye", "[media_port]", 3000)
        .expect_success(&gw);
    seat.expect_success(&gw);
    let setup = gw.metric("hotline_call_setup_seconds_sum").unwrap();
    assert!(setup < 5.0, "answered after {setup} s");
    assert!(
        gw.daemon.log_text().contains("target unreachable (ICMP)"),
        "{}",
        gw.daemon.log_text()
    );
}

// ── linphone, a phone with SHA-256 ──────────────────────────────────────

/// A seat that requires SHA-256 (`[[seats]] digest_algorithms`) is offered
/// only that, and linphone, which speaks it, registers.
#[test]
fn linphone_registers_with_sha256_when_its_seat_requires_it() {
    let gw = Gateway::start_with("linphone-sha256", |t| {
        t.replace(
            "password = \"demo-8101-change-me\"",
            "password = \"demo-8101-change-me\"\ndigest_algorithms = [\"SHA-256\"]",
        )
    });
    let phone = support::gateway::Linphone::start(&gw, "8101");
    let seen = wait_for(Duration::from_secs(10), || {
        (gw.metric("hotline_registered_seats") == Some(1.0)).then_some(())
    });
    let log = phone.log_text();
    assert!(seen.is_some(), "linphone did not register\n{log}");
    assert!(
        log.contains("algorithm=SHA-256") && !log.contains("algorithm=MD5"),
        "only SHA-256 offered and used"
    );
}

/// A call whose media cannot be anchored (here: every RTP port taken) is
/// refused with 503 saying why, never let past the gateway un-anchored
/// (it would lose its prompts and recording).
#[test]
fn a_call_that_cannot_be_anchored_is_refused_with_the_true_reason() {
    let ports = free_port() & !1;
    let gw = Gateway::start_with("no-rtp-port", |t| {
        t.replace(
            "rtp_ports = \"20000-29999\"",
            &format!("rtp_ports = \"{ports}-{}\"", ports + 3),
        )
    });
    let port = free_port();
    gw.register("8101", port);
    let seat = gw.seat("8101", port, "answer", "wait_bye");
    // The first call holds both ports of the range.
    let first = gw.call_with_rtp("12348", "wait_bye", &free_port().to_string());
    gw.wait_bridged(1.0);
    gw.expect_refused(
        "127.0.0.1",
        "12348",
        "503",
        "cannot anchor media: no free RTP port",
    );
    gw.daemon.signal("TERM");
    first.expect_success(&gw);
    seat.expect_success(&gw);
}

/// UDP source addresses can be forged, so an operator can require a
/// trunk's calls over TCP (or from given ports): an INVITE from the
/// carrier's address over UDP is then refused, over TCP it is served.
#[test]
fn a_trunk_restricted_to_tcp_refuses_its_address_over_udp() {
    // Every trunk of the test table sends from 127.0.0.1: all TCP only.
    let gw = Gateway::start_with("tcp-only-trunk", |t| {
        t.replace("[[trunks]]\n", "[[trunks]]\ntransport = \"tcp\"\n")
    });
    let port = free_port();
    gw.register("8101", port);
    gw.expect_refused("127.0.0.1", "12348", "403", "SIP/2.0 403");
    assert_eq!(gw.metric("hotline_sip_untrusted_invites_total"), Some(1.0));
    let seat = gw.seat("8101", port, "answer", "seat_bye");
    gw.sipp(
        "trunk_call.xml",
        &[
            ("DIALED", "12348"),
            ("HANGUP", "wait_bye"),
            ("MEDIA_PORT", "[media_port]"),
            ("PAUSE_MS", "300"),
            ("KEYS", "no_keys"),
            ("KEY", "1"),
        ],
        "127.0.0.1",
        free_port(),
        &["-t", "t1"],
    )
    .expect_success(&gw);
    seat.expect_success(&gw);
    assert_eq!(gw.calls_total("direct", "12348", "completed"), 1.0);
}

/// A seat's contacts are capped (`max_contacts_per_seat`, 10): a REGISTER
/// naming more is refused, and re-registering from ever new contacts keeps
/// only the newest, so no seat's bindings (and 200 OK) grow without bound.
#[test]
fn a_seat_cannot_register_more_than_its_cap_of_contacts() {
    use hotline::sip::digest::{Algorithm, authorization_header};
    let gw = Gateway::start("contact-cap");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let local = socket.local_addr().unwrap();
    let register = |cseq: u32, contacts: &[String]| -> String {
        let text = |auth: &str| {
            let contact: String = contacts
                .iter()
                .map(|c| format!("Contact: <{c}>\r\n"))
                .collect();
            format!(
                "REGISTER sip:127.0.0.1:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKcap{cseq}x{};rport\r\nMax-Forwards: 70\r\nFrom: <sip:8001@127.0.0.1>;tag=c1\r\nTo: <sip:8001@127.0.0.1>\r\nCall-ID: cap\r\nCSeq: {cseq} REGISTER\r\n{contact}{auth}Expires: 600\r\nContent-Length: 0\r\n\r\n",
                auth.len(),
                sip = gw.sip
            )
        };
        let challenge = exchange(&gw, &socket, &text(""));
        let auth = authorization_header(
            "8001",
            "demo-8001-change-me",
            "hotline.chenzhou",
            &nonce_of(&challenge),
            "REGISTER",
            &format!("sip:127.0.0.1:{}", gw.sip),
            Algorithm::Md5,
            Some("cap"),
            1,
        );
        exchange(&gw, &socket, &text(&format!("Authorization: {auth}\r\n")))
    };
    let eleven: Vec<String> = (0..11).map(|n| format!("sip:8001@10.0.0.{n}")).collect();
    let answer = register(1, &eleven);
    assert!(
        answer.starts_with("SIP/2.0 403") && answer.contains("at most 10 contacts"),
        "{answer}"
    );
    let mut last = String::new();
    for n in 0..15u32 {
        last = register(10 + n, &[format!("sip:8001@10.1.0.{n}")]);
        assert!(last.starts_with("SIP/2.0 200"), "{last}");
    }
    assert_eq!(last.matches("Contact:").count(), 10, "{last}");
    assert!(last.contains("10.1.0.14"), "{last}");
    assert!(!last.contains("10.1.0.4>"), "{last}");
}

/// Spoofed BYEs with the call's Call-ID from another port of the caller's
/// address: dropped before they reach the call (none answered, each
/// counted), and the real BYE, sent in the middle of the flood, lands.
#[test]
fn a_flood_of_spoofed_byes_does_not_crowd_out_the_real_one() {
    let gw = Gateway::start("bye-flood");
    let (seat, caller) = gw.answered_call_to_12348(1500);
    // SIPp's Call-ID and From tag for its first call.
    let pid = caller.child.id();
    let call_id = format!("1-{pid}@127.0.0.1");
    let spoofer = UdpSocket::bind("127.0.0.1:0").unwrap();
    spoofer.set_nonblocking(true).unwrap();
    let local = spoofer.local_addr().unwrap();
    let mut sent = 0u32;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) && sent < 50_000 {
        let bye = format!(
            "BYE sip:hotline@127.0.0.1:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKspoof{sent}\r\nMax-Forwards: 70\r\nFrom: <sip:13907350000@127.0.0.1>;tag={pid}SIPpTag001\r\nTo: <sip:12348@127.0.0.1>;tag=guess\r\nCall-ID: {call_id}\r\nCSeq: {} BYE\r\nContent-Length: 0\r\n\r\n",
            sent + 10,
            sip = gw.sip
        );
        if spoofer
            .send_to(bye.as_bytes(), ("127.0.0.1", gw.sip))
            .is_ok()
        {
            sent += 1;
        }
        if sent.is_multiple_of(64) {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    seat.expect_success(&gw);
    caller.expect_success(&gw);
    gw.wait_metric("hotline_active_calls", 0.0);
    assert_eq!(gw.calls_total("direct", "12348", "completed"), 1.0);
    let dropped = gw.metric("hotline_sip_foreign_requests_total").unwrap();
    assert!(dropped >= 100.0, "{dropped} of {sent} counted");
    let mut buf = [0u8; 2048];
    assert!(
        spoofer.recv(&mut buf).is_err(),
        "a spoofer gets no answer to reflect"
    );
}

/// A blind spoofer forging a seat's address cannot lock the seat out: only
/// a wrong answer to a nonce issued to that very address counts, and junk
/// credentials or a nonce issued elsewhere get a fresh challenge instead.
#[test]
fn forged_credentials_count_for_nothing_and_lock_no_one_out() {
    use hotline::sip::digest::{Algorithm, authorization_header};
    let gw = Gateway::start("no-blind-lockout");
    let attacker = UdpSocket::bind("127.0.0.2:0").unwrap();
    attacker
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let victim = UdpSocket::bind("127.0.0.1:0").unwrap();
    victim
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    // A nonce the attacker got for itself, answered with a wrong password
    // from the victim's address (here: sent from the victim's socket, as a
    // forged source would be), and pure junk.
    let nonce = nonce_of(&exchange(
        &gw,
        &attacker,
        &register_text(&gw, &attacker, "8001", 1, None),
    ));
    for n in 0..20u32 {
        let junk = if n % 2 == 0 {
            authorization_header(
                "8001",
                "guess",
                "hotline.chenzhou",
                &nonce,
                "REGISTER",
                &format!("sip:127.0.0.1:{}", gw.sip),
                Algorithm::Md5,
                Some("x"),
                n + 1,
            )
        } else {
            "Digest username=\"8001\", realm=\"hotline.chenzhou\", nonce=\"00\", uri=\"sip:x\", response=\"00\"".to_string()
        };
        let answer = exchange(
            &gw,
            &victim,
            &register_text(&gw, &victim, "8001", 10 + n, Some(&junk)),
        );
        // A nonce issued elsewhere: a fresh challenge. Junk: refused.
        let expected = if n % 2 == 0 {
            "SIP/2.0 401"
        } else {
            "SIP/2.0 403"
        };
        assert!(answer.starts_with(expected), "{answer}");
    }
    assert_eq!(
        gw.metric("hotline_sip_auth_failures_total{reason=\"wrong_password\"}"),
        None,
        "no failure counted"
    );
    let ok = register_seat(&gw, &victim, "8001", 100);
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
}

/// RTP injected at the caller's leg from another port of the caller's own
/// address: the gateway ignores it (counted as rejected), sends the
/// injector nothing, and the caller keeps hearing the seat.
#[test]
fn injected_rtp_is_ignored_and_the_call_audio_stays_intact() {
    use hotline::media::mixer::goertzel_power;
    use hotline::media::rtp::packet;

    let gw = Gateway::start("rtp-inject");
    let phone = Baresip::start(&gw, "8101");
    gw.wait_metric("hotline_registered_seats", 1.0);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtp_port = rtp.local_addr().unwrap().port().to_string();
    let caller = gw.call_with_rtp("12348", "wait_bye", &rtp_port);
    gw.wait_bridged(1.0);
    let mut gateway = None;
    let before = listen(&rtp, Duration::from_millis(1000), &mut gateway);
    let gateway = gateway.expect("RTP from the gateway");
    assert!(before.len() > 4000, "{}", phone.log_text());

    // 250 packets of a 1,800 Hz tone at the caller's leg, 20 ms apart.
    let injector = UdpSocket::bind("127.0.0.1:0").unwrap();
    injector.set_nonblocking(true).unwrap();
    let mut tone = Vec::new();
    let samples: Vec<i16> = (0..160)
        .map(|i| (12000.0 * (2.0 * std::f64::consts::PI * 1800.0 * i as f64 / 8000.0).sin()) as i16)
        .collect();
    hotline::media::g711::Codec::Pcmu.encode(&samples, &mut tone);
    let mut heard = Vec::new();
    let mut gw_addr = Some(gateway);
    for k in 0..250u16 {
        let _ = injector.send_to(
            &packet(0, false, 1000 + k, 160 * u32::from(k), 0xbad, &tone),
            gateway,
        );
        heard.extend(listen(&rtp, Duration::from_millis(20), &mut gw_addr));
    }
    let mut buf = [0u8; 2048];
    assert!(
        injector.recv_from(&mut buf).is_err(),
        "the injector hears nothing of the call"
    );
    assert!(
        goertzel_power(&heard, 440.0, 8000.0) > 100.0 * goertzel_power(&heard, 1800.0, 8000.0),
        "the caller still hears the seat, not the injection"
    );
    let rejected = gw
        .metric("hotline_rtp_packets_total{direction=\"rejected\"}")
        .unwrap_or(0.0);
    assert!(rejected >= 200.0, "{rejected} rejected");
    phone.command("hangup");
    caller.expect_success(&gw);
}

// ── A finished call's remains ───────────────────────────────────────────

/// The caller's request for the raw-UDP caller below.
fn raw_caller_request(
    gw: &Gateway,
    socket: &UdpSocket,
    method: &str,
    cseq: u32,
    branch: &str,
    to_tag: Option<&str>,
) -> String {
    let local = socket.local_addr().unwrap();
    let to_tag = to_tag.map_or(String::new(), |t| format!(";tag={t}"));
    let body = if method == "INVITE" {
        format!(
            "v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
            free_port() & !1
        )
    } else {
        String::new()
    };
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "{method} sip:12366@127.0.0.1:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:13907350000@127.0.0.1>;tag=remains-caller\r\nTo: <sip:12366@127.0.0.1>{to_tag}\r\nCall-ID: remains-test-1@127.0.0.1\r\nCSeq: {cseq} {method}\r\nContact: <sip:13907350000@{local}>\r\n{content_type}Content-Length: {}\r\n\r\n{body}",
        body.len(),
        sip = gw.sip
    )
}

/// Every datagram `socket` receives within `for_ms`.
fn received(socket: &UdpSocket, for_ms: u64) -> Vec<String> {
    let until = Instant::now() + Duration::from_millis(for_ms);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match socket.recv(&mut buf) {
            Ok(n) => got.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => break,
        }
    }
    got
}

/// Once a call is over and only its linger timers run, its compact remains
/// answer for it: the caller's BYE sent again gets the same `200`, its
/// INVITE sent again is absorbed (no second call), and a new request in
/// the ended dialog gets `481`.
#[test]
fn a_finished_calls_remains_answer_its_callers_retransmissions() {
    let gw = Gateway::start("remains");
    let city = gw.trunk_uas("12366", gw.city);
    // SIPp's port taken: it listens.
    let listening = wait_for(Duration::from_secs(10), || {
        UdpSocket::bind(("127.0.0.1", gw.city))
            .is_err()
            .then_some(())
    });
    assert!(listening.is_some(), "SIPp never bound its port");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let invite = raw_caller_request(&gw, &socket, "INVITE", 1, "z9hG4bKremains.inv", None);
    let ok = exchange(&gw, &socket, &invite);
    let ok = if ok.starts_with("SIP/2.0 180") || ok.starts_with("SIP/2.0 183") {
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.recv(&mut buf).expect("the answer");
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with("SIP/2.0 200") {
                break text;
            }
        }
    } else {
        ok
    };
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let tag = ok
        .lines()
        .find(|l| l.starts_with("To:"))
        .and_then(|l| l.split(";tag=").nth(1))
        .expect("our To tag")
        .trim()
        .to_string();
    let ack = raw_caller_request(&gw, &socket, "ACK", 1, "z9hG4bKremains.ack", Some(&tag));
    socket
        .send_to(ack.as_bytes(), ("127.0.0.1", gw.sip))
        .unwrap();
    let bye = raw_caller_request(&gw, &socket, "BYE", 2, "z9hG4bKremains.bye", Some(&tag));
    let bye_ok = exchange(&gw, &socket, &bye);
    assert!(bye_ok.starts_with("SIP/2.0 200"), "{bye_ok}");
    // The city trunk answers our BYE: only linger timers are left.
    city.expect_success(&gw);
    gw.wait_metric("hotline_lingering_calls", 2.0);
    assert_eq!(gw.metric("hotline_active_calls"), Some(0.0));

    // The BYE again: the same 200, byte for byte.
    socket
        .send_to(bye.as_bytes(), ("127.0.0.1", gw.sip))
        .unwrap();
    assert_eq!(received(&socket, 1000), vec![bye_ok]);
    // The INVITE again: absorbed, and no second call.
    socket
        .send_to(invite.as_bytes(), ("127.0.0.1", gw.sip))
        .unwrap();
    assert_eq!(received(&socket, 1000), Vec::<String>::new());
    assert_eq!(gw.calls_total("sub_centre", "12366", "completed"), 1.0);
    assert_eq!(
        gw.metric("hotline_sip_requests_total{method=\"INVITE\"}"),
        Some(2.0)
    );
    assert_eq!(gw.metric("hotline_active_calls"), Some(0.0));
    // A new request in the ended dialog: 481.
    let info = raw_caller_request(&gw, &socket, "INFO", 3, "z9hG4bKremains.info", Some(&tag));
    let answer = exchange(&gw, &socket, &info);
    assert!(answer.starts_with("SIP/2.0 481"), "{answer}");
}
