//! The call machine driven directly: synthetic messages, synthetic time.
//!
//! Every test plays both far ends by hand: it builds the caller's requests
//! as text, reads back what the call sends (`Output::Send`, parsed again
//! with [`Message::parse`] as the far end would), answers it, and moves a
//! fake clock (`t0 + …`) by calling `on_timer` at each `deadline()`.
use super::*;
use crate::call::registrar::Update;
use crate::call::remains::Answer;
use crate::sip::message::StartLine;
use std::net::SocketAddr;

// ── The far ends ────────────────────────────────────────────────────────

const SDP_A: &str = "v=0\r\no=caller 1 1 IN IP4 192.0.2.10\r\ns=-\r\n\
                     c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8\r\n";
const SDP_B: &str = "v=0\r\no=seat 2 2 IN IP4 192.0.2.21\r\ns=-\r\n\
                     c=IN IP4 192.0.2.21\r\nt=0 0\r\nm=audio 50000 RTP/AVP 0\r\n";
const A_CALL_ID: &str = "a-leg-1@192.0.2.10";
const A_BRANCH: &str = "z9hG4bKcaller.invite";
const A_FROM: &str = "\"Alice\" <sip:13800138000@192.0.2.10>;tag=alice-tag";
const A_TO: &str = "<sip:12345@127.0.0.1>";
const A_CONTACT: &str = "sip:alice@192.0.2.10:5060";
const A_RECORD_ROUTE: &str = "<sip:edge.example;lr>";
/// The answering seat's Contact: deliberately not its registered address,
/// so in-dialog requests can be told from requests to the binding.
const B_CONTACT: &str = "sip:agent@192.0.2.21:5999";
const B_TAG: &str = "seat-tag";
const CALL: u64 = 7;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn caller() -> Peer {
    Peer::udp(SocketAddr::from(([192, 0, 2, 10], 5060)))
}

/// Seat `n`'s phone (as the registrar saw its REGISTER come from).
fn seat_peer(n: u8) -> Peer {
    Peer::udp(SocketAddr::from(([192, 0, 2, 20 + n], 5062)))
}

fn trunk_peer() -> Peer {
    Peer::udp(SocketAddr::from(([198, 51, 100, 7], 5060)))
}

fn seat_uri(id: &str, peer: Peer) -> String {
    format!("sip:{id}@{}", peer.addr)
}

fn settings() -> Settings {
    Settings {
        timers: Timers::default(),
        local: "127.0.0.1:5060".into(),
        seat_ring: secs(20),
        max_ring: secs(60),
        // Beyond a seat's ring and Timer B, so the tests of those pin
        // them; the tests of a silent target set it short.
        response_timeout: secs(40),
        retry_after: None,
        media: None,
        own_names: vec!["hotline".into()],
        queue: None,
        announce: None,
        leader: None,
        queue_callback: None,
    }
}

fn seat(id: &str) -> Target {
    Target::Seat { id: id.into() }
}

fn trunk() -> Target {
    Target::Trunk {
        id: "carrier".into(),
        uri: "sip:12345@198.51.100.7:5060".into(),
        peer: trunk_peer(),
        sources: vec![trunk_peer().addr.ip()],
    }
}

fn parse(text: &str) -> Message {
    Message::parse(Bytes::from(text.to_owned()))
        .unwrap_or_else(|e| panic!("test message does not parse ({e}):\n{text}"))
}

/// A message as the receiver sees it: encoded, then parsed.
fn wire(m: &Message) -> Message {
    Message::parse(m.encode()).expect("an encoded message parses back")
}

fn with_body(text: String, content_type: &str, body: &str) -> String {
    format!(
        "{text}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn no_body(text: String) -> String {
    format!("{text}Content-Length: 0\r\n\r\n")
}

/// The caller's INVITE: two Vias (it came through a proxy), rport, a
/// Record-Route, Max-Forwards 42 and an SDP offer.
fn caller_invite() -> Message {
    let head = format!(
        "INVITE sip:12345@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch={A_BRANCH};rport\r\n\
         Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKupstream.1\r\n\
         Max-Forwards: 42\r\n\
         From: {A_FROM}\r\n\
         To: {A_TO}\r\n\
         Call-ID: {A_CALL_ID}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <{A_CONTACT}>\r\n\
         Record-Route: {A_RECORD_ROUTE}\r\n"
    );
    parse(&with_body(head, "application/sdp", SDP_A))
}

/// A request from the caller inside its dialog with us (`to_tag` is ours).
fn caller_request(method: &str, cseq: u32, branch: &str, to_tag: &str) -> String {
    format!(
        "{method} sip:hotline@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: {A_FROM}\r\n\
         To: {A_TO};tag={to_tag}\r\n\
         Call-ID: {A_CALL_ID}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <{A_CONTACT}>\r\n"
    )
}

/// The caller's CANCEL for its INVITE (§9.1: same branch, To without tag).
fn caller_cancel(branch: &str) -> Message {
    parse(&no_body(format!(
        "CANCEL sip:12345@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: {A_FROM}\r\n\
         To: {A_TO}\r\n\
         Call-ID: {A_CALL_ID}\r\n\
         CSeq: 1 CANCEL\r\n"
    )))
}

/// The caller's ACK for our 2xx: a new transaction, CSeq of the INVITE.
fn caller_ack_2xx(to_tag: &str) -> Message {
    parse(&no_body(caller_request(
        "ACK",
        1,
        "z9hG4bKcaller.ack",
        to_tag,
    )))
}

/// The caller's ACK for a non-2xx final: the INVITE's branch (§17.1.1.3).
fn caller_ack_failure(to_tag: &str) -> Message {
    let text = caller_request("ACK", 1, A_BRANCH, to_tag)
        .replace("sip:hotline@127.0.0.1:5060", "sip:12345@127.0.0.1:5060");
    parse(&no_body(text))
}

/// A far end's response to `req`, with its To tag.
fn reply(req: &Message, code: u16, reason: &str, tag: &str) -> Message {
    req.response(code, reason, Some(tag))
}

/// A seat's response to our INVITE: its tag, and its Contact above 100.
fn seat_reply(invite: &Message, code: u16, reason: &str) -> Message {
    let mut r = reply(invite, code, reason, B_TAG);
    if code > 100 {
        r.push(Name::Contact, format!("<{B_CONTACT}>"));
    }
    r
}

/// The seat's 200 with its SDP answer and two Record-Routes.
fn seat_ok(invite: &Message) -> Message {
    let mut r = seat_reply(invite, 200, "OK");
    r.push(Name::RecordRoute, "<sip:p1.example;lr>")
        .push(Name::RecordRoute, "<sip:p2.example;lr>")
        .set(Name::ContentType, "application/sdp");
    r.body = Bytes::from_static(SDP_B.as_bytes());
    r
}

/// A request from the seat inside the B dialog that `invite` created.
fn seat_request(invite: &Message, method: &str, cseq: u32, branch: &str) -> String {
    format!(
        "{method} sip:hotline@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.21:5062;branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: {};tag={B_TAG}\r\n\
         To: {}\r\n\
         Call-ID: {}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <{B_CONTACT}>\r\n",
        hv(invite, Name::To),
        hv(invite, Name::From),
        hv(invite, Name::CallId),
    )
}

// ── Reading what the call sends ─────────────────────────────────────────

fn hv(m: &Message, name: Name) -> String {
    m.header(&name)
        .map(|v| v.to_string())
        .unwrap_or_else(|| panic!("no {} in\n{}", name.as_str(), text(m)))
}

fn text(m: &Message) -> String {
    String::from_utf8_lossy(&m.encode()).into_owned()
}

fn branch(m: &Message) -> String {
    m.top_via()
        .and_then(|v| v.branch)
        .expect("a Via with a branch")
}

fn to_tag(m: &Message) -> Option<String> {
    m.to().and_then(|t| t.tag().map(str::to_owned))
}

fn from_tag(m: &Message) -> Option<String> {
    m.from().and_then(|t| t.tag().map(str::to_owned))
}

fn uri(m: &Message) -> String {
    m.request_uri().expect("a request").to_string()
}

fn reason(m: &Message) -> String {
    match &m.start {
        StartLine::Response { reason, .. } => reason.to_string(),
        StartLine::Request { .. } => panic!("not a response"),
    }
}

fn routes(m: &Message) -> Vec<String> {
    m.headers_named(&Name::Route)
        .map(|v| v.to_string())
        .collect()
}

fn vias(m: &Message) -> Vec<String> {
    m.headers_named(&Name::Via).map(|v| v.to_string()).collect()
}

/// One message the call sent.
#[derive(Clone, Debug)]
struct Sent {
    at: Instant,
    peer: Peer,
    raw: Bytes,
    msg: Message,
}

impl Sent {
    fn is(&self, method: Method) -> bool {
        self.msg.method() == Some(&method)
    }
    fn is_code(&self, code: u16) -> bool {
        self.msg.code() == Some(code)
    }
    fn cseq(&self) -> String {
        hv(&self.msg, Name::CSeq)
    }
    fn call_id(&self) -> String {
        hv(&self.msg, Name::CallId)
    }
}

fn requests(sent: &[Sent], method: Method) -> Vec<&Sent> {
    sent.iter().filter(|s| s.is(method.clone())).collect()
}

fn responses(sent: &[Sent], code: u16) -> Vec<&Sent> {
    sent.iter().filter(|s| s.is_code(code)).collect()
}

fn to_peer(sent: &[Sent], peer: Peer) -> Vec<&Sent> {
    sent.iter().filter(|s| s.peer == peer).collect()
}

#[track_caller]
fn one<'a>(found: Vec<&'a Sent>, what: &str) -> &'a Sent {
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {what}, got {}: {:#?}",
        found.len(),
        found.iter().map(|s| text(&s.msg)).collect::<Vec<_>>()
    );
    found[0]
}

fn summary(sent: &[Sent]) -> Vec<String> {
    sent.iter()
        .map(|s| {
            let first = text(&s.msg).lines().next().unwrap_or_default().to_owned();
            format!("→ {}: {first} ({})", s.peer.addr, s.cseq())
        })
        .collect()
}

/// The key `c` as an RTP event's digit.
fn digit(c: char) -> Digit {
    let code = match c {
        '0'..='9' => c as u8 - b'0',
        '*' => 10,
        '#' => 11,
        _ => panic!("no key {c}"),
    };
    Digit::from_event_code(code).unwrap()
}

// ── The harness ─────────────────────────────────────────────────────────

/// A registrar with these seats registered at `t0` for an hour.
fn registrar(seats: &[(&str, Peer)], t0: Instant) -> Registrar {
    let reg = Registrar::new();
    for (id, peer) in seats {
        let contacts = [(seat_uri(id, *peer), 3600)];
        reg.register(
            id,
            Update::Contacts(&contacts),
            *peer,
            &format!("reg-{id}"),
            1,
            10,
            t0,
        )
        .expect("registers");
    }
    reg
}

/// A call and its clock.
struct Run {
    reg: Registrar,
    t0: Instant,
    now: Instant,
    call: Call,
    /// Every `Output::Bind`, in order.
    binds: Vec<String>,
    /// Everything sent, in order.
    log: Vec<Sent>,
    /// Commands for the media session (and SIP key presses), as Debug text.
    media: Vec<String>,
    /// What the call told the ACD, in order.
    acd: Vec<ToAcd>,
    /// The numbers a seat asked to bring in (`*3` + number + `#`).
    three_way: Vec<String>,
    /// The tickets the call asked to store.
    tickets: Vec<crate::tickets::model::NewTicket>,
    /// The numbers a seat asked to transfer to (a REFER, `#1`).
    transfers: Vec<String>,
    /// The hand-offs the call audited.
    audits: Vec<transfer::Audit>,
    /// The numbers a seat's own INVITE asked to consult.
    consults: Vec<String>,
}

impl Run {
    fn start(
        reg: Registrar,
        t0: Instant,
        settings: Settings,
        targets: Vec<Target>,
    ) -> (Run, Vec<Output>) {
        let (call, out) = Call::start(
            CALL,
            settings,
            caller_invite(),
            caller(),
            targets,
            Rejection::new(404, "Not Found (no such line)", Outcome::Unavailable),
            &reg,
            t0,
        );
        (Run::with(reg, t0, call), out)
    }

    /// A run of `call`, started at `t0`, with nothing seen yet.
    fn with(reg: Registrar, t0: Instant, call: Call) -> Run {
        Run {
            reg,
            t0,
            now: t0,
            call,
            binds: Vec::new(),
            log: Vec::new(),
            media: Vec::new(),
            acd: Vec::new(),
            three_way: Vec::new(),
            tickets: Vec::new(),
            transfers: Vec::new(),
            audits: Vec::new(),
            consults: Vec::new(),
        }
    }

    /// Seats "8001", "8002", … registered at `seat_peer(1)`, `seat_peer(2)`,
    /// … and tried in that order.
    fn seats(n: u8, settings: Settings) -> (Run, Vec<Sent>) {
        let t0 = Instant::now();
        let ids: Vec<String> = (1..=n).map(|i| format!("800{i}")).collect();
        let seats: Vec<(&str, Peer)> = ids
            .iter()
            .zip(1..)
            .map(|(id, i)| (id.as_str(), seat_peer(i)))
            .collect();
        let reg = registrar(&seats, t0);
        let targets = ids.iter().map(|id| seat(id)).collect();
        let (mut run, out) = Run::start(reg, t0, settings, targets);
        let sent = run.take(out, t0);
        (run, sent)
    }

    fn take(&mut self, out: Vec<Output>, at: Instant) -> Vec<Sent> {
        let mut sent = Vec::new();
        for o in out {
            match o {
                Output::Send(peer, raw) => {
                    let msg = Message::parse(raw.clone()).unwrap_or_else(|e| {
                        panic!(
                            "the call sent an unparsable message ({e}):\n{}",
                            String::from_utf8_lossy(&raw)
                        )
                    });
                    sent.push(Sent { at, peer, raw, msg });
                }
                Output::Bind(id) => self.binds.push(id),
                Output::Media(cmd) => self.media.push(format!("{cmd:?}")),
                Output::Digit { leg, digit } => self.media.push(format!("Digit {leg} {digit}")),
                Output::Acd(msg) => self.acd.push(msg),
                Output::Prompt { leg, items, hold } => self
                    .media
                    .push(format!("Prompt {leg} {items:?} hold={hold}")),
                Output::ThreeWay { number } => self.three_way.push(number),
                Output::Transfer { number } => self.transfers.push(number),
                Output::Consult { number } => self.consults.push(number),
                Output::Audit(a) => self.audits.push(a),
                Output::LeaderChoice(choice) => self.media.push(format!("Choice {choice}")),
                Output::StoreTicket(t) => self.tickets.push(*t),
                Output::Seat { seat, busy } => self.media.push(format!("Seat {seat} busy={busy}")),
                Output::Record { stream, name } => {
                    self.media.push(format!("Record {stream} {name}"))
                }
                Output::CallBack { ticket, queue, .. } => self
                    .media
                    .push(format!("CallBack {ticket} {} {}", queue.queue, queue.line)),
            }
        }
        self.log.extend(sent.iter().cloned());
        sent
    }

    /// `m` arrives from `from` at the current instant.
    fn recv(&mut self, m: &Message, from: Peer) -> Vec<Sent> {
        let out = self.call.on_message(wire(m), from, &self.reg, self.now);
        self.take(out, self.now)
    }

    /// Runs every timer due up to `t0 + offset`, each at its deadline, and
    /// leaves the clock there.
    fn advance(&mut self, offset: Duration) -> Vec<Sent> {
        let until = self.t0 + offset;
        assert!(until >= self.now, "the clock runs forward only");
        let mut sent = Vec::new();
        let mut steps = 0;
        while let Some(d) = self.call.deadline() {
            if d > until {
                break;
            }
            let at = d.max(self.now);
            self.now = at;
            let out = self.call.on_timer(&self.reg, at);
            sent.extend(self.take(out, at));
            steps += 1;
            assert!(steps < 10_000, "timers keep firing without progress");
        }
        self.now = until;
        sent
    }

    fn offset(&self, at: Instant) -> Duration {
        at - self.t0
    }

    /// The first INVITE of every B leg placed, in order (retransmissions
    /// left out).
    fn b_invites(&self) -> Vec<Sent> {
        let mut seen = Vec::new();
        self.log
            .iter()
            .filter(|s| {
                let initial =
                    s.is(Method::Invite) && s.peer != caller() && to_tag(&s.msg).is_none();
                let new = initial && !seen.contains(&s.call_id());
                if new {
                    seen.push(s.call_id());
                }
                new
            })
            .cloned()
            .collect()
    }

    fn last_b_invite(&self) -> Message {
        self.b_invites()
            .last()
            .expect("a B leg was placed")
            .msg
            .clone()
    }

    /// Drives `on_timer` at each deadline until the call is finished.
    /// Asserts that the deadline moves strictly forward every step, that an
    /// unfinished call always has a deadline, and that it takes at most
    /// `max_steps`. Returns the steps taken and the offset it finished at.
    fn finish(&mut self, max_steps: usize) -> (usize, Duration) {
        let mut steps = 0;
        let mut last = self.now;
        while !self.call.is_finished() {
            let d = self.call.deadline().unwrap_or_else(|| {
                panic!(
                    "at {:?} the call is not finished but has no deadline: \
                     its task would wait forever",
                    self.offset(self.now)
                )
            });
            assert!(
                d > last || (steps == 0 && d >= last),
                "deadline {:?} does not move forward from {:?}",
                self.offset(d),
                self.offset(last)
            );
            last = d;
            self.now = d;
            let out = self.call.on_timer(&self.reg, d);
            self.take(out, d);
            steps += 1;
            assert!(
                steps <= max_steps,
                "not finished after {max_steps} timer steps"
            );
        }
        assert!(self.call.outcome().is_some(), "finished without an outcome");
        (steps, self.offset(self.now))
    }
}

/// Seat 8001 rung at t0 and ringing: it sent 100 at 100 ms and 180 at 1 s.
fn ringing(n: u8, settings: Settings) -> (Run, Message, Message) {
    let (mut run, _) = Run::seats(n, settings);
    let invite = run.last_b_invite();
    run.advance(ms(100));
    run.recv(&seat_reply(&invite, 100, "Trying"), seat_peer(1));
    run.advance(secs(1));
    let sent = run.recv(&seat_reply(&invite, 180, "Ringing"), seat_peer(1));
    let ringing = one(responses(&sent, 180), "180 to the caller").msg.clone();
    (run, invite, ringing)
}

/// Seat 8001 answered at 3 s and the caller ACKed at once. Returns the run,
/// the INVITE the seat got and the 200 the caller got.
fn answered() -> (Run, Message, Message) {
    let (mut run, invite, _) = ringing(1, settings());
    run.advance(secs(3));
    let sent = run.recv(&seat_ok(&invite), seat_peer(1));
    let ok = one(responses(&sent, 200), "200 to the caller").msg.clone();
    let tag = to_tag(&ok).expect("our To tag");
    let sent = run.recv(&caller_ack_2xx(&tag), caller());
    assert!(
        sent.is_empty(),
        "an ACK is not answered: {:?}",
        summary(&sent)
    );
    (run, invite, ok)
}

// ── 1. Start ────────────────────────────────────────────────────────────

#[test]
fn start_answers_100_trying_at_once_and_invites_the_first_target_on_a_new_call_id() {
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1))], t0);
    let (mut run, out) = Run::start(reg, t0, settings(), vec![seat("8001")]);
    assert!(
        matches!(&out[0], Output::Send(p, _) if *p == caller()),
        "the first output is the 100 to the caller: {out:?}"
    );
    let bind_at = out
        .iter()
        .position(|o| matches!(o, Output::Bind(_)))
        .expect("the B Call-ID is bound");
    let invite_at = out
        .iter()
        .position(|o| matches!(o, Output::Send(p, _) if *p == seat_peer(1)))
        .expect("an INVITE to the seat");
    assert!(
        bind_at < invite_at,
        "bound before the INVITE can be answered"
    );
    let sent = run.take(out, t0);
    assert_eq!(sent.len(), 2, "{:?}", summary(&sent));

    let trying = &sent[0];
    assert!(trying.is_code(100));
    assert_eq!(reason(&trying.msg), "Trying");
    assert_eq!(vias(&trying.msg), vias(&caller_invite()));
    assert_eq!(trying.call_id(), A_CALL_ID);
    assert_eq!(trying.cseq(), "1 INVITE");

    let b = &sent[1];
    assert!(b.is(Method::Invite));
    assert_eq!(b.peer, seat_peer(1));
    assert_eq!(uri(&b.msg), seat_uri("8001", seat_peer(1)));
    let b_call_id = b.call_id();
    assert_ne!(b_call_id, A_CALL_ID, "a new Call-ID for the B leg");
    assert_eq!(run.binds, vec![b_call_id.clone()]);
    assert_eq!(run.call.b_call_id(), Some(b_call_id.as_str()));
    assert_eq!(vias(&b.msg).len(), 1, "only our Via: {}", text(&b.msg));
    let via = b.msg.top_via().expect("our Via");
    assert_eq!(via.transport, "UDP");
    assert_eq!((via.host.as_str(), via.port), ("127.0.0.1", Some(5060)));
    assert_eq!(via.rport, Some(None), "rport without a value");
    assert!(branch(&b.msg).starts_with("z9hG4bK"));
    assert_ne!(branch(&b.msg), A_BRANCH);
    assert_eq!(hv(&b.msg, Name::MaxForwards), "41", "one less than 42");
    assert_eq!(hv(&b.msg, Name::ContentType), "application/sdp");
    assert_eq!(&b.msg.body[..], SDP_A.as_bytes());
    assert_eq!(b.cseq(), "1 INVITE");
    assert!(from_tag(&b.msg).is_some());
    assert_eq!(to_tag(&b.msg), None);
    assert_eq!(run.call.seat(), Some("8001"));
    assert_eq!(run.call.outcome(), None);
    assert!(!run.call.is_finished());
}

// ── 2. No target ────────────────────────────────────────────────────────

#[test]
fn with_no_target_the_caller_gets_the_no_target_status_and_the_call_is_unavailable() {
    for targets in [vec![], vec![seat("8009")]] {
        let t0 = Instant::now();
        let (mut run, out) = Run::start(Registrar::new(), t0, settings(), targets);
        let sent = run.take(out, t0);
        assert!(run.binds.is_empty(), "no B leg: {:?}", run.binds);
        assert_eq!(sent.len(), 2, "{:?}", summary(&sent));
        assert!(sent.iter().all(|s| s.peer == caller()));
        assert!(sent[0].is_code(100));
        assert!(sent[1].is_code(404));
        assert_eq!(reason(&sent[1].msg), "Not Found (no such line)");
        assert!(to_tag(&sent[1].msg).is_some(), "a final carries our To tag");
        assert_eq!(run.call.outcome(), Some(Outcome::Unavailable));
        assert_eq!(run.call.final_status, Some(404));
        assert_eq!(run.call.b_call_id(), None);
    }
}

// ── 3. Seat choice and reservation ──────────────────────────────────────

#[test]
fn unregistered_and_busy_seats_are_skipped_and_the_rung_seat_is_held_until_the_call_ends() {
    let t0 = Instant::now();
    // 8001 is not registered; 8002 is registered but on call 99.
    let reg = registrar(&[("8002", seat_peer(2)), ("8003", seat_peer(3))], t0);
    assert!(reg.try_reserve("8002", 99));
    let targets = vec![seat("8001"), seat("8002"), seat("8003")];
    let (mut run, out) = Run::start(reg, t0, settings(), targets);
    let sent = run.take(out, t0);
    let invite = one(requests(&sent, Method::Invite), "INVITE").clone();
    assert_eq!(invite.peer, seat_peer(3));
    assert_eq!(uri(&invite.msg), seat_uri("8003", seat_peer(3)));
    assert_eq!(run.call.seat(), Some("8003"));
    assert!(run.reg.is_busy("8003"), "the rung seat is reserved");
    assert!(!run.reg.try_reserve("8003", 100), "by this call");

    // The caller gives up while 8003 rings; the seat is held until its
    // INVITE has ended with 487.
    run.advance(secs(1));
    run.recv(&seat_reply(&invite.msg, 180, "Ringing"), seat_peer(3));
    run.advance(secs(2));
    let sent = run.recv(&caller_cancel(A_BRANCH), caller());
    let cancel = one(requests(&sent, Method::Cancel), "CANCEL").msg.clone();
    assert!(run.reg.is_busy("8003"), "still ringing until its 487");
    run.recv(&reply(&cancel, 200, "OK", B_TAG), seat_peer(3));
    run.recv(
        &seat_reply(&invite.msg, 487, "Request Terminated"),
        seat_peer(3),
    );
    assert!(!run.reg.is_busy("8003"), "released when the call ended");
    assert!(run.reg.is_busy("8002"), "call 99 keeps its seat");
    assert!(!run.reg.is_busy("8001"));
}

// ── 4. Provisionals ─────────────────────────────────────────────────────

#[test]
fn a_180_from_b_reaches_the_caller_with_the_callers_headers_and_our_to_tag_but_a_100_does_not() {
    let (mut run, _) = Run::seats(1, settings());
    let invite = run.last_b_invite();
    let sent = run.recv(&seat_reply(&invite, 100, "Trying"), seat_peer(1));
    assert!(sent.is_empty(), "100 is hop by hop: {:?}", summary(&sent));

    let sent = run.recv(&seat_reply(&invite, 180, "Ringing"), seat_peer(1));
    let r = one(to_peer(&sent, caller()), "message to the caller");
    assert_eq!(sent.len(), 1, "{:?}", summary(&sent));
    assert!(r.is_code(180));
    assert_eq!(reason(&r.msg), "Ringing");
    let a = caller_invite();
    assert_eq!(vias(&r.msg), vias(&a), "every Via of the caller's INVITE");
    assert_eq!(hv(&r.msg, Name::From), A_FROM);
    assert_eq!(r.call_id(), A_CALL_ID);
    assert_eq!(r.cseq(), "1 INVITE");
    let tag = to_tag(&r.msg).expect("our To tag on the 180");
    assert_ne!(tag, B_TAG, "the caller's dialog is ours, not the seat's");
    assert_eq!(hv(&r.msg, Name::To), format!("{A_TO};tag={tag}"));
    assert_eq!(hv(&r.msg, Name::Contact), "<sip:hotline@127.0.0.1:5060>");
    assert_eq!(hv(&r.msg, Name::RecordRoute), A_RECORD_ROUTE);
}

// ── 5. Answer ───────────────────────────────────────────────────────────

#[test]
fn a_200_from_b_is_acked_in_dialog_relayed_with_its_sdp_and_retransmitted_until_the_callers_ack() {
    let (mut run, invite, ringing) = ringing(1, settings());
    let answer_at = secs(3);
    run.advance(answer_at);
    let sent = run.recv(&seat_ok(&invite), seat_peer(1));
    assert_eq!(sent.len(), 2, "{:?}", summary(&sent));

    let ack = one(requests(&sent, Method::Ack), "ACK to the seat");
    assert_eq!(ack.peer, seat_peer(1));
    assert_eq!(
        uri(&ack.msg),
        B_CONTACT,
        "Request-URI is the seat's Contact"
    );
    assert_eq!(ack.cseq(), "1 ACK");
    assert_eq!(ack.call_id(), hv(&invite, Name::CallId));
    assert_eq!(hv(&ack.msg, Name::From), hv(&invite, Name::From));
    assert_eq!(to_tag(&ack.msg).as_deref(), Some(B_TAG));
    assert_ne!(
        branch(&ack.msg),
        branch(&invite),
        "a 2xx ACK is its own transaction"
    );
    assert!(branch(&ack.msg).starts_with("z9hG4bK"));
    assert_eq!(
        routes(&ack.msg),
        ["<sip:p2.example;lr>", "<sip:p1.example;lr>"],
        "the route set is the Record-Route reversed"
    );

    let ok = one(to_peer(&sent, caller()), "200 to the caller");
    assert!(ok.is_code(200));
    assert_eq!(&ok.msg.body[..], SDP_B.as_bytes(), "B's SDP answer");
    assert_eq!(hv(&ok.msg, Name::ContentType), "application/sdp");
    assert_eq!(to_tag(&ok.msg), to_tag(&ringing), "the same tag as the 180");
    assert_eq!(vias(&ok.msg), vias(&caller_invite()));
    assert_eq!(run.call.outcome(), None, "answered is not ended");
    assert_eq!(run.call.setup_time(), Some(answer_at));

    // §13.3.1.4: T1, 2·T1, 4·T1, … capped at T2, until the ACK.
    let first = ok.raw.clone();
    let sent = run.advance(answer_at + ms(12_000));
    let again: Vec<Duration> = to_peer(&sent, caller())
        .iter()
        .map(|s| {
            assert_eq!(s.raw, first, "the same 200 again");
            s.at - run.t0 - answer_at
        })
        .collect();
    assert_eq!(
        again,
        [ms(500), ms(1500), ms(3500), ms(7500), ms(11_500)],
        "{:?}",
        summary(&sent)
    );
    assert_eq!(sent.len(), again.len(), "{:?}", summary(&sent));

    let tag = to_tag(&ok.msg).expect("our To tag");
    let sent = run.recv(&caller_ack_2xx(&tag), caller());
    assert!(sent.is_empty(), "{:?}", summary(&sent));
    let sent = run.advance(answer_at + secs(60));
    assert!(
        to_peer(&sent, caller()).is_empty(),
        "no 200 after the ACK: {:?}",
        summary(&sent)
    );
    assert_eq!(run.call.outcome(), None);
}

// ── 6. Retransmitted 200 ────────────────────────────────────────────────

#[test]
fn a_retransmitted_200_from_b_is_acked_again_but_relayed_once() {
    let (mut run, invite, _) = answered();
    run.advance(secs(3) + ms(500));
    let sent = run.recv(&seat_ok(&invite), seat_peer(1));
    let ack = one(requests(&sent, Method::Ack), "ACK");
    assert_eq!(sent.len(), 1, "{:?}", summary(&sent));
    assert_eq!(ack.peer, seat_peer(1));
    assert_eq!(ack.cseq(), "1 ACK");
    assert_eq!(uri(&ack.msg), B_CONTACT);
    assert_eq!(to_tag(&ack.msg).as_deref(), Some(B_TAG));
    assert_eq!(
        responses(&run.log, 200)
            .iter()
            .filter(|s| s.peer == caller())
            .count(),
        1,
        "the caller got one 200"
    );
}

// ── 7. Busy seats ───────────────────────────────────────────────────────

#[test]
fn a_486_from_a_seat_is_acked_on_the_invite_branch_the_next_seat_tried_and_finally_486_relayed() {
    let (mut run, _) = Run::seats(2, settings());
    let first = run.last_b_invite();
    run.advance(ms(300));
    let busy = seat_reply(&first, 486, "Busy Here");
    let sent = run.recv(&busy, seat_peer(1));

    let ack = one(requests(&sent, Method::Ack), "ACK for the 486");
    assert_eq!(ack.peer, seat_peer(1));
    assert_eq!(
        branch(&ack.msg),
        branch(&first),
        "§17.1.1.3: the INVITE's branch"
    );
    assert_eq!(uri(&ack.msg), uri(&first));
    assert_eq!(ack.cseq(), "1 ACK");
    assert_eq!(ack.call_id(), hv(&first, Name::CallId));
    assert_eq!(hv(&ack.msg, Name::From), hv(&first, Name::From));
    assert_eq!(hv(&ack.msg, Name::To), hv(&busy, Name::To));
    assert!(!run.reg.is_busy("8001"), "the busy seat is released");

    let second = one(requests(&sent, Method::Invite), "INVITE to the next seat");
    assert_eq!(second.peer, seat_peer(2));
    assert_ne!(second.call_id(), hv(&first, Name::CallId));
    assert_eq!(run.binds.len(), 2);
    assert_eq!(run.binds[1], second.call_id());
    assert!(run.reg.is_busy("8002"));
    assert!(
        to_peer(&sent, caller()).is_empty(),
        "the caller hears nothing yet: {:?}",
        summary(&sent)
    );
    assert_eq!(run.call.outcome(), None);

    let second = second.msg.clone();
    run.advance(ms(600));
    let sent = run.recv(&seat_reply(&second, 486, "Busy Here"), seat_peer(2));
    let ack = one(requests(&sent, Method::Ack), "ACK for the second 486");
    assert_eq!(
        (ack.peer, branch(&ack.msg)),
        (seat_peer(2), branch(&second))
    );
    let busy = one(to_peer(&sent, caller()), "the final to the caller");
    assert!(busy.is_code(486));
    assert!(
        reason(&busy.msg).starts_with("Busy Here"),
        "{}",
        reason(&busy.msg)
    );
    assert!(reason(&busy.msg).len() > "Busy Here".len(), "with a reason");
    assert_eq!(run.call.outcome(), Some(Outcome::NoAnswer));
    assert_eq!(run.call.final_status, Some(486));
    assert!(!run.reg.is_busy("8002"));
}

#[test]
fn a_retransmitted_486_from_a_seat_already_passed_over_is_acked_again() {
    let (mut run, _) = Run::seats(2, settings());
    let first = run.last_b_invite();
    run.advance(ms(300));
    let busy = seat_reply(&first, 486, "Busy Here");
    run.recv(&busy, seat_peer(1));
    // Our ACK was lost: the seat's Timer G resends the 486.
    run.advance(ms(800));
    let sent = run.recv(&busy, seat_peer(1));
    let ack = one(requests(&sent, Method::Ack), "ACK for the resent 486");
    assert_eq!((ack.peer, branch(&ack.msg)), (seat_peer(1), branch(&first)));
}

// ── 8. Ring timeouts ────────────────────────────────────────────────────

/// Seats 8001–8003; a seat rings 20 s, the caller waits 30 s at most.
fn short_ring() -> Settings {
    Settings {
        seat_ring: secs(20),
        max_ring: secs(30),
        ..settings()
    }
}

#[test]
fn a_seat_that_rings_out_is_cancelled_and_the_next_tried_until_max_ring_ends_the_call_with_480() {
    let (mut run, first, _) = ringing(3, short_ring());
    assert_eq!(
        run.call.deadline(),
        Some(run.t0 + secs(20)),
        "the seat's turn"
    );
    let sent = run.advance(secs(20) - ms(1));
    assert!(sent.is_empty(), "{:?}", summary(&sent));

    let sent = run.advance(secs(20));
    let cancel = one(requests(&sent, Method::Cancel), "CANCEL");
    assert_eq!(cancel.peer, seat_peer(1));
    assert_eq!(
        uri(&cancel.msg),
        uri(&first),
        "§9.1: the INVITE's Request-URI"
    );
    assert_eq!(
        branch(&cancel.msg),
        branch(&first),
        "§9.1: the INVITE's branch"
    );
    assert_eq!(vias(&cancel.msg), vias(&first));
    assert_eq!(cancel.cseq(), "1 CANCEL");
    for name in [Name::CallId, Name::From, Name::To] {
        assert_eq!(hv(&cancel.msg, name.clone()), hv(&first, name));
    }
    let second = one(requests(&sent, Method::Invite), "INVITE to 8002");
    assert_eq!(second.peer, seat_peer(2));
    assert_eq!(run.call.seat(), Some("8002"));
    assert!(to_peer(&sent, caller()).is_empty(), "{:?}", summary(&sent));
    let second = second.msg.clone();

    run.advance(secs(21));
    run.recv(&seat_reply(&second, 180, "Ringing"), seat_peer(2));
    let sent = run.advance(secs(30) - ms(1));
    assert!(
        responses(&sent, 480).is_empty() && requests(&sent, Method::Invite).is_empty(),
        "{:?}",
        summary(&sent)
    );

    // max_ring: the caller's patience ends before 8002's turn does.
    let sent = run.advance(secs(30));
    let cancel = one(
        requests(&sent, Method::Cancel)
            .into_iter()
            .filter(|s| s.call_id() == hv(&second, Name::CallId))
            .collect(),
        "CANCEL to 8002",
    );
    assert_eq!(cancel.peer, seat_peer(2));
    assert_eq!(branch(&cancel.msg), branch(&second));
    let failed = one(to_peer(&sent, caller()), "the final to the caller");
    assert!(failed.is_code(480), "{}", text(&failed.msg));
    assert!(!reason(&failed.msg).is_empty());
    assert_eq!(run.call.outcome(), Some(Outcome::NoAnswer));
    assert_eq!(run.call.final_status, Some(480));
    assert!(
        run.b_invites().iter().all(|s| s.peer != seat_peer(3)),
        "8003 is never rung after max_ring"
    );

    // 8002 confirms: its 487 is ACKed and the seat freed.
    run.recv(&reply(&cancel.msg, 200, "OK", B_TAG), seat_peer(2));
    let sent = run.recv(
        &seat_reply(&second, 487, "Request Terminated"),
        seat_peer(2),
    );
    let ack = one(requests(&sent, Method::Ack), "ACK for the 487");
    assert_eq!(
        (ack.peer, branch(&ack.msg)),
        (seat_peer(2), branch(&second))
    );
    assert!(!run.reg.is_busy("8002"));
}

/// 8001 rang out at 20 s (CANCEL sent: it had sent 180); 8002 now rings.
fn rang_out() -> (Run, Message, Message) {
    let (mut run, first, _) = ringing(2, short_ring());
    run.advance(secs(20));
    let second = run.last_b_invite();
    assert_eq!(
        hv(&second, Name::CallId),
        run.binds[1],
        "8002 was rung on a new Call-ID"
    );
    (run, first, second)
}

#[test]
fn a_seat_that_rang_out_is_released_once_its_invite_is_cancelled() {
    let (mut run, first, _) = rang_out();
    let cancel = run
        .log
        .iter()
        .find(|s| s.is(Method::Cancel))
        .expect("CANCEL to 8001")
        .msg
        .clone();
    run.advance(secs(20) + ms(50));
    run.recv(&reply(&cancel, 200, "OK", B_TAG), seat_peer(1));
    run.recv(&seat_reply(&first, 487, "Request Terminated"), seat_peer(1));
    assert!(
        !run.reg.is_busy("8001"),
        "8001 is free for other calls once its INVITE has ended"
    );
}

#[test]
fn the_487_from_a_seat_that_rang_out_is_acked() {
    let (mut run, first, _) = rang_out();
    run.advance(secs(20) + ms(50));
    let sent = run.recv(&seat_reply(&first, 487, "Request Terminated"), seat_peer(1));
    let ack = one(requests(&sent, Method::Ack), "ACK for the 487");
    assert_eq!((ack.peer, branch(&ack.msg)), (seat_peer(1), branch(&first)));
}

#[test]
fn retransmissions_of_the_cancel_for_a_seat_that_rang_out_go_to_that_seat() {
    let (mut run, first, _) = rang_out();
    let sent = run.advance(secs(22));
    let cancels: Vec<&Sent> = requests(&sent, Method::Cancel);
    assert!(!cancels.is_empty(), "Timer E resends the unanswered CANCEL");
    for c in cancels {
        assert_eq!(c.call_id(), hv(&first, Name::CallId));
        assert_eq!(c.peer, seat_peer(1), "sent to {} instead", c.peer.addr);
    }
}

#[test]
fn a_seat_that_rang_out_before_any_provisional_is_cancelled_once_it_rings() {
    let (mut run, _) = Run::seats(2, short_ring());
    let first = run.last_b_invite();
    // 8001 stays silent (its 100 and 180 are lost) until after its turn.
    let sent = run.advance(secs(20));
    assert!(requests(&sent, Method::Cancel).is_empty(), "§9.1: not yet");
    assert_eq!(run.b_invites().len(), 2, "8002 is rung");
    run.advance(secs(21));
    let sent = run.recv(&seat_reply(&first, 180, "Ringing"), seat_peer(1));
    let cancel = one(requests(&sent, Method::Cancel), "the held-back CANCEL");
    assert_eq!(
        (cancel.peer, branch(&cancel.msg)),
        (seat_peer(1), branch(&first))
    );
    assert!(
        to_peer(&sent, caller()).is_empty(),
        "its 180 is not relayed"
    );
}

#[test]
fn a_late_answer_from_a_seat_that_rang_out_is_acked_and_hung_up() {
    let (mut run, first, _) = rang_out();
    run.advance(secs(20) + ms(50));
    let sent = run.recv(&seat_ok(&first), seat_peer(1));
    let ack = one(requests(&sent, Method::Ack), "ACK for the late 200");
    assert_eq!(ack.peer, seat_peer(1));
    assert_eq!(ack.call_id(), hv(&first, Name::CallId));
    let bye = one(requests(&sent, Method::Bye), "BYE for the late 200");
    assert_eq!(
        (bye.peer, uri(&bye.msg)),
        (seat_peer(1), B_CONTACT.to_owned())
    );
    assert!(to_peer(&sent, caller()).is_empty(), "{:?}", summary(&sent));
}

#[test]
fn a_bye_from_a_seat_that_rang_out_does_not_hang_up_the_next_seats_call() {
    let (mut run, first, second) = rang_out();
    run.advance(secs(22));
    run.recv(&seat_ok(&second), seat_peer(2));
    assert_eq!(run.call.setup_time(), Some(secs(22)));
    // 8001 had answered too (its 200 crossed our CANCEL), got no ACK, and
    // gives up with BYE.
    run.advance(secs(40));
    let bye = parse(&no_body(seat_request(&first, "BYE", 2, "z9hG4bKold.bye")));
    let sent = run.recv(&bye, seat_peer(1));
    assert!(
        requests(&sent, Method::Bye).is_empty(),
        "nobody else is hung up: {:?}",
        summary(&sent)
    );
    assert_eq!(run.call.outcome(), None, "the call with 8002 goes on");
}

// ── 9. CANCEL before a provisional ──────────────────────────────────────

#[test]
fn a_cancel_before_any_provisional_from_b_waits_for_it() {
    let (mut run, _) = Run::seats(1, settings());
    let invite = run.last_b_invite();
    run.advance(ms(200));
    let sent = run.recv(&caller_cancel(A_BRANCH), caller());
    let ok = one(responses(&sent, 200), "200 for the CANCEL");
    assert_eq!((ok.peer, ok.cseq()), (caller(), "1 CANCEL".to_owned()));
    let terminated = one(responses(&sent, 487), "487 for the INVITE");
    assert_eq!(terminated.peer, caller());
    assert!(
        requests(&sent, Method::Cancel).is_empty(),
        "§9.1: no CANCEL before a provisional: {:?}",
        summary(&sent)
    );
    assert_eq!(run.call.outcome(), Some(Outcome::Cancelled));

    // Timer A keeps resending the INVITE meanwhile; still no CANCEL.
    let sent = run.advance(ms(1_900));
    assert!(
        requests(&sent, Method::Cancel).is_empty(),
        "{:?}",
        summary(&sent)
    );
    assert!(!requests(&sent, Method::Invite).is_empty());

    let sent = run.recv(&seat_reply(&invite, 100, "Trying"), seat_peer(1));
    let cancel = one(requests(&sent, Method::Cancel), "the held-back CANCEL");
    assert_eq!(cancel.peer, seat_peer(1));
    assert_eq!(branch(&cancel.msg), branch(&invite));
    assert_eq!(cancel.cseq(), "1 CANCEL");
    assert_eq!(uri(&cancel.msg), uri(&invite));
    assert!(to_peer(&sent, caller()).is_empty(), "{:?}", summary(&sent));
    let cancel = cancel.clone();

    // Timer E resends it until the seat answers it ...
    let sent = run.advance(ms(1_900) + ms(500));
    let again = one(requests(&sent, Method::Cancel), "the CANCEL at T1");
    assert_eq!((again.peer, &again.raw), (seat_peer(1), &cancel.raw));
    run.recv(&reply(&cancel.msg, 200, "OK", B_TAG), seat_peer(1));
    let sent = run.advance(secs(10));
    assert!(
        requests(&sent, Method::Cancel).is_empty(),
        "{:?}",
        summary(&sent)
    );

    // ... and a later provisional does not send another.
    let sent = run.recv(&seat_reply(&invite, 180, "Ringing"), seat_peer(1));
    assert!(sent.is_empty(), "{:?}", summary(&sent));
}

// ── 10. The caller's CANCEL ─────────────────────────────────────────────

#[test]
fn a_cancel_from_the_caller_while_b_rings_ends_both_legs_and_a_racing_200_is_acked_and_hung_up() {
    let (mut run, invite, ringing) = ringing(1, settings());
    run.advance(secs(2));
    let sent = run.recv(&caller_cancel(A_BRANCH), caller());

    let ok = one(responses(&sent, 200), "200 for the CANCEL");
    assert_eq!(ok.peer, caller());
    assert_eq!(ok.cseq(), "1 CANCEL");
    assert_eq!(branch(&ok.msg), A_BRANCH);
    let terminated = one(responses(&sent, 487), "487 for the INVITE");
    assert_eq!(terminated.peer, caller());
    assert_eq!(terminated.cseq(), "1 INVITE");
    assert_eq!(to_tag(&terminated.msg), to_tag(&ringing), "the 180's tag");
    let cancel = one(requests(&sent, Method::Cancel), "CANCEL to the seat");
    assert_eq!(cancel.peer, seat_peer(1));
    assert_eq!(branch(&cancel.msg), branch(&invite));
    assert_eq!(run.call.outcome(), Some(Outcome::Cancelled));
    assert_eq!(run.call.final_status, Some(487));
    assert_eq!(sent.len(), 3, "{:?}", summary(&sent));

    // The seat answered before our CANCEL reached it.
    run.advance(secs(2) + ms(20));
    let sent = run.recv(&seat_ok(&invite), seat_peer(1));
    let ack = one(requests(&sent, Method::Ack), "ACK for the racing 200");
    assert_eq!(
        (ack.peer, uri(&ack.msg)),
        (seat_peer(1), B_CONTACT.to_owned())
    );
    assert_eq!(ack.cseq(), "1 ACK");
    assert_eq!(to_tag(&ack.msg).as_deref(), Some(B_TAG));
    let bye = one(requests(&sent, Method::Bye), "BYE for the racing 200");
    assert_eq!(
        (bye.peer, uri(&bye.msg)),
        (seat_peer(1), B_CONTACT.to_owned())
    );
    assert_eq!(bye.cseq(), "2 BYE");
    assert_eq!(bye.call_id(), hv(&invite, Name::CallId));
    assert_eq!(to_tag(&bye.msg).as_deref(), Some(B_TAG));
    assert_eq!(from_tag(&bye.msg), from_tag(&invite));
    let ack_at = run.log.iter().position(|s| s.is(Method::Ack)).unwrap_or(0);
    let bye_at = run.log.iter().position(|s| s.is(Method::Bye)).unwrap_or(0);
    assert!(ack_at < bye_at, "ACK first, then BYE");
    assert!(to_peer(&sent, caller()).is_empty(), "{:?}", summary(&sent));
    assert_eq!(run.call.outcome(), Some(Outcome::Cancelled));
    assert_eq!(run.call.setup_time(), None);
}

// ── 11. Stray CANCEL ────────────────────────────────────────────────────

#[test]
fn a_cancel_whose_branch_matches_nothing_gets_481() {
    let (mut run, invite, _) = ringing(1, settings());
    let sent = run.recv(&caller_cancel("z9hG4bKnot.this.one"), caller());
    let r = one(sent.iter().collect(), "response");
    assert!(r.is_code(481), "{}", text(&r.msg));
    assert_eq!(r.peer, caller());
    assert_eq!(r.cseq(), "1 CANCEL");
    assert_eq!(branch(&r.msg), "z9hG4bKnot.this.one");

    // A CANCEL from the seat's side matches none of our server INVITEs.
    let stray = seat_request(&invite, "CANCEL", 1, "z9hG4bKseat.cancel");
    let sent = run.recv(&parse(&no_body(stray)), seat_peer(1));
    let r = one(sent.iter().collect(), "response");
    assert!(r.is_code(481), "{}", text(&r.msg));
    assert_eq!(r.peer, seat_peer(1));

    assert_eq!(run.call.outcome(), None, "the call rings on");
    assert!(requests(&run.log, Method::Cancel).is_empty());
}

// ── 12. BYE ─────────────────────────────────────────────────────────────

#[test]
fn a_bye_from_the_caller_after_the_answer_is_answered_and_sent_on_in_the_seats_dialog() {
    let (mut run, invite, ok) = answered();
    let tag = to_tag(&ok).expect("our tag");
    run.advance(secs(10));
    let bye = parse(&no_body(caller_request(
        "BYE",
        2,
        "z9hG4bKcaller.bye",
        &tag,
    )));
    let sent = run.recv(&bye, caller());

    let done = one(to_peer(&sent, caller()), "200 for the BYE");
    assert!(done.is_code(200));
    assert_eq!(done.cseq(), "2 BYE");
    assert_eq!(branch(&done.msg), "z9hG4bKcaller.bye");
    let b = one(requests(&sent, Method::Bye), "BYE to the seat");
    assert_eq!(b.peer, seat_peer(1));
    assert_eq!(uri(&b.msg), B_CONTACT, "the seat's remote target");
    assert_eq!(
        routes(&b.msg),
        ["<sip:p2.example;lr>", "<sip:p1.example;lr>"],
        "the seat's route set"
    );
    assert_eq!(b.call_id(), hv(&invite, Name::CallId));
    assert_eq!(hv(&b.msg, Name::From), hv(&invite, Name::From));
    assert_eq!(to_tag(&b.msg).as_deref(), Some(B_TAG));
    assert_eq!(b.cseq(), "2 BYE");
    assert_eq!(run.call.outcome(), Some(Outcome::Completed));
    assert!(!run.reg.is_busy("8001"), "the seat is free again");
    assert_eq!(run.call.setup_time(), Some(secs(3)));
}

#[test]
fn a_bye_from_the_seat_after_the_answer_is_answered_and_sent_on_in_the_callers_dialog() {
    let (mut run, invite, ok) = answered();
    let tag = to_tag(&ok).expect("our tag");
    run.advance(secs(10));
    let bye = parse(&no_body(seat_request(&invite, "BYE", 1, "z9hG4bKseat.bye")));
    let sent = run.recv(&bye, seat_peer(1));

    let done = one(to_peer(&sent, seat_peer(1)), "200 for the seat's BYE");
    assert!(done.is_code(200));
    assert_eq!(done.cseq(), "1 BYE");
    let a = one(to_peer(&sent, caller()), "BYE to the caller");
    assert!(a.is(Method::Bye));
    assert_eq!(uri(&a.msg), A_CONTACT, "the caller's Contact");
    assert_eq!(routes(&a.msg), [A_RECORD_ROUTE], "the caller's route set");
    assert_eq!(a.call_id(), A_CALL_ID);
    assert_eq!(hv(&a.msg, Name::From), format!("{A_TO};tag={tag}"));
    assert_eq!(hv(&a.msg, Name::To), A_FROM);
    assert_eq!(a.cseq(), "1 BYE");
    assert_eq!(run.call.outcome(), Some(Outcome::Completed));
    assert!(!run.reg.is_busy("8001"));
}

#[test]
fn a_bye_from_the_caller_before_the_answer_cancels_the_ringing_seat() {
    let (mut run, invite, ringing) = ringing(1, settings());
    let tag = to_tag(&ringing).expect("early dialog tag");
    run.advance(secs(2));
    let bye = parse(&no_body(caller_request(
        "BYE",
        2,
        "z9hG4bKcaller.bye",
        &tag,
    )));
    let sent = run.recv(&bye, caller());
    assert!(!responses(&sent, 200).is_empty(), "the BYE is answered");
    let cancel = one(requests(&sent, Method::Cancel), "CANCEL to the seat");
    assert_eq!(branch(&cancel.msg), branch(&invite));
    assert!(
        !responses(&sent, 487).is_empty(),
        "§15.1.2: 487 for the INVITE"
    );
    assert!(run.reg.is_busy("8001"), "still ringing until its 487");
    assert_eq!(run.call.outcome(), Some(Outcome::Cancelled));
}

#[test]
fn an_early_bye_from_a_seat_passes_the_call_on_without_freeing_the_next_seat() {
    let (mut run, invite, _) = ringing(2, settings());
    run.advance(secs(2));
    let bye = parse(&no_body(seat_request(&invite, "BYE", 1, "z9hG4bKseat.bye")));
    let sent = run.recv(&bye, seat_peer(1));
    let next = one(requests(&sent, Method::Invite), "INVITE to 8002");
    assert_eq!(next.peer, seat_peer(2));
    assert!(!run.reg.is_busy("8001"));
    assert!(run.reg.is_busy("8002"), "8002 rings for this call");
}

// ── 13. In-dialog requests ──────────────────────────────────────────────

#[test]
fn an_info_from_the_caller_goes_to_the_seat_and_its_answer_comes_back() {
    let (mut run, invite, ok) = answered();
    let tag = to_tag(&ok).expect("our tag");
    run.advance(secs(5));
    let dtmf = "Signal=5\r\nDuration=160\r\n";
    let info = parse(&with_body(
        caller_request("INFO", 2, "z9hG4bKcaller.info", &tag),
        "application/dtmf-relay",
        dtmf,
    ));
    let sent = run.recv(&info, caller());
    let out = one(requests(&sent, Method::Info), "INFO to the seat");
    assert_eq!(sent.len(), 1, "{:?}", summary(&sent));
    assert_eq!(out.peer, seat_peer(1));
    assert_eq!(uri(&out.msg), B_CONTACT);
    assert_eq!(
        routes(&out.msg),
        ["<sip:p2.example;lr>", "<sip:p1.example;lr>"]
    );
    assert_eq!(out.call_id(), hv(&invite, Name::CallId));
    assert_eq!(hv(&out.msg, Name::From), hv(&invite, Name::From));
    assert_eq!(to_tag(&out.msg).as_deref(), Some(B_TAG));
    assert_eq!(out.cseq(), "2 INFO", "the B leg's next CSeq");
    assert_eq!(hv(&out.msg, Name::ContentType), "application/dtmf-relay");
    assert_eq!(&out.msg.body[..], dtmf.as_bytes());
    let out = out.msg.clone();

    run.advance(secs(5) + ms(40));
    let mut answer = reply(&out, 200, "OK", B_TAG);
    answer.set(Name::ContentType, "text/plain");
    answer.body = Bytes::from_static(b"got it");
    let sent = run.recv(&answer, seat_peer(1));
    let back = one(to_peer(&sent, caller()), "200 for the caller's INFO");
    assert_eq!(sent.len(), 1, "{:?}", summary(&sent));
    assert!(back.is_code(200));
    assert_eq!(vias(&back.msg), vias(&info), "the caller's transaction");
    assert_eq!(back.cseq(), "2 INFO");
    assert_eq!(back.call_id(), A_CALL_ID);
    assert_eq!(to_tag(&back.msg).as_deref(), Some(tag.as_str()));
    assert_eq!(&back.msg.body[..], b"got it");

    // A retransmitted INFO gets the same answer from the server transaction.
    let sent = run.recv(&info, caller());
    let again = one(sent.iter().collect(), "the 200 again");
    assert_eq!(again.raw, back.raw);
    assert_eq!(run.call.outcome(), None);
}

#[test]
fn a_reinvite_from_the_seat_goes_to_the_caller_and_the_answer_comes_back_until_acked() {
    let (mut run, invite, ok) = answered();
    let tag = to_tag(&ok).expect("our tag");
    run.advance(secs(5));
    let reinvite = parse(&with_body(
        seat_request(&invite, "INVITE", 10, "z9hG4bKseat.reinvite"),
        "application/sdp",
        SDP_B,
    ));
    let sent = run.recv(&reinvite, seat_peer(1));
    let trying = one(to_peer(&sent, seat_peer(1)), "100 to the seat");
    assert!(trying.is_code(100));
    assert_eq!(trying.cseq(), "10 INVITE");
    let out = one(to_peer(&sent, caller()), "re-INVITE to the caller");
    assert!(out.is(Method::Invite));
    assert_eq!(uri(&out.msg), A_CONTACT);
    assert_eq!(routes(&out.msg), [A_RECORD_ROUTE]);
    assert_eq!(out.call_id(), A_CALL_ID);
    assert_eq!(hv(&out.msg, Name::From), format!("{A_TO};tag={tag}"));
    assert_eq!(hv(&out.msg, Name::To), A_FROM);
    assert_eq!(out.cseq(), "1 INVITE", "our first request to the caller");
    assert_eq!(&out.msg.body[..], SDP_B.as_bytes());
    let out = out.msg.clone();

    run.advance(secs(5) + ms(30));
    let mut answer = reply(&out, 200, "OK", "alice-tag");
    answer
        .push(Name::Contact, format!("<{A_CONTACT}>"))
        .set(Name::ContentType, "application/sdp");
    answer.body = Bytes::from_static(SDP_A.as_bytes());
    let sent = run.recv(&answer, caller());
    let ack = one(requests(&sent, Method::Ack), "our ACK to the caller");
    assert_eq!(ack.peer, caller());
    assert_eq!(ack.cseq(), "1 ACK");
    assert_eq!(ack.call_id(), A_CALL_ID);
    let back = one(to_peer(&sent, seat_peer(1)), "200 for the seat's re-INVITE");
    assert!(back.is_code(200));
    assert_eq!(vias(&back.msg), vias(&reinvite));
    assert_eq!(back.cseq(), "10 INVITE");
    assert_eq!(back.call_id(), hv(&invite, Name::CallId));
    assert_eq!(&back.msg.body[..], SDP_A.as_bytes());
    let first = back.raw.clone();

    // Resent from T1 until the seat ACKs it; then never again.
    let sent = run.advance(secs(5) + ms(30) + ms(500));
    let again = one(to_peer(&sent, seat_peer(1)), "the 200 at T1");
    assert_eq!(again.raw, first);
    let seat_ack = parse(&no_body(seat_request(
        &invite,
        "ACK",
        10,
        "z9hG4bKseat.ack",
    )));
    let sent = run.recv(&seat_ack, seat_peer(1));
    assert!(sent.is_empty(), "{:?}", summary(&sent));
    let sent = run.advance(secs(60));
    assert!(
        to_peer(&sent, seat_peer(1)).is_empty(),
        "{:?}",
        summary(&sent)
    );
    assert_eq!(run.call.outcome(), None);
}

// ── 14. A silent trunk ──────────────────────────────────────────────────

#[test]
fn a_trunk_that_never_answers_times_out_with_timer_b_and_the_caller_gets_408() {
    let t0 = Instant::now();
    let (mut run, out) = Run::start(Registrar::new(), t0, settings(), vec![trunk()]);
    let sent = run.take(out, t0);
    let invite = one(requests(&sent, Method::Invite), "INVITE to the trunk");
    assert_eq!(invite.peer, trunk_peer());
    assert_eq!(uri(&invite.msg), "sip:12345@198.51.100.7:5060");
    assert_eq!(run.call.seat(), None);
    let first = invite.raw.clone();

    let sent = run.advance(secs(32) - ms(1));
    let resent: Vec<Duration> = requests(&sent, Method::Invite)
        .iter()
        .map(|s| {
            assert_eq!((s.peer, &s.raw), (trunk_peer(), &first));
            s.at - t0
        })
        .collect();
    // Timer A: T1 doubling without a cap.
    assert_eq!(
        resent,
        [
            ms(500),
            ms(1500),
            ms(3500),
            ms(7500),
            ms(15_500),
            ms(31_500)
        ]
    );
    assert!(to_peer(&sent, caller()).is_empty());
    assert_eq!(run.call.outcome(), None);

    // Timer B: 64·T1.
    let sent = run.advance(secs(32));
    let timeout = one(to_peer(&sent, caller()), "final to the caller");
    assert!(timeout.is_code(408), "{}", text(&timeout.msg));
    assert_eq!(reason(&timeout.msg), "Request Timeout");
    assert!(
        requests(&sent, Method::Cancel).is_empty(),
        "nothing to cancel"
    );
    assert_eq!(run.call.outcome(), Some(Outcome::Failed));
    assert_eq!(run.call.final_status, Some(408));

    let tag = to_tag(&timeout.msg).expect("our tag");
    run.recv(&caller_ack_failure(&tag), caller());
    let (steps, at) = run.finish(20);
    assert!(steps <= 2, "{steps} steps");
    assert_eq!(at, secs(32) + secs(5), "Timer I after the caller's ACK");
}

// ── 15. Lingering, and the end ──────────────────────────────────────────

#[test]
fn a_completed_call_finishes_only_after_its_linger_timers_and_deadlines_always_move_forward() {
    let (mut run, _, ok) = answered();
    let tag = to_tag(&ok).expect("our tag");
    run.advance(secs(10));
    let bye = parse(&no_body(caller_request(
        "BYE",
        2,
        "z9hG4bKcaller.bye",
        &tag,
    )));
    let sent = run.recv(&bye, caller());
    let b_bye = one(requests(&sent, Method::Bye), "BYE to the seat")
        .msg
        .clone();
    run.advance(secs(10) + ms(30));
    run.recv(&reply(&b_bye, 200, "OK", B_TAG), seat_peer(1));
    assert_eq!(run.call.outcome(), Some(Outcome::Completed));
    assert!(!run.call.is_finished(), "transactions still linger");

    // Timer J of the caller's BYE (64·T1 on UDP) is the last to run.
    let (steps, at) = run.finish(50);
    assert_eq!(at, secs(10) + secs(32));
    assert!(steps < 10, "{steps} steps");
    assert_eq!(run.call.deadline(), None);
}

// ── 15b. The remains of a finished call ─────────────────────────────────

fn sources() -> Arc<FarEnds> {
    Arc::new(FarEnds::default())
}

/// The raw bytes of what `sent` holds (a response, an ACK).
fn raw_of(sent: &[Sent]) -> Vec<Bytes> {
    sent.iter().map(|s| s.raw.clone()).collect()
}

#[test]
fn a_completed_calls_remains_answer_its_retransmissions_as_its_transactions_would() {
    let (mut run, invite, ok) = answered();
    let tag = to_tag(&ok).expect("our tag");
    // The ACK the seat's 200 got.
    let seat_ack = run
        .log
        .iter()
        .find(|s| s.peer == seat_peer(1) && s.is(Method::Ack))
        .expect("the seat's 200 ACKed")
        .raw
        .clone();
    run.advance(secs(10));
    let bye = parse(&no_body(caller_request(
        "BYE",
        2,
        "z9hG4bKcaller.bye",
        &tag,
    )));
    let sent = run.recv(&bye, caller());
    let bye_ok = one(responses(&sent, 200), "200 to the BYE").raw.clone();
    let b_bye = one(requests(&sent, Method::Bye), "BYE to the seat")
        .msg
        .clone();
    assert!(
        run.call.remains(sources()).is_none(),
        "our BYE to the seat still waits for its answer"
    );
    run.advance(secs(10) + ms(30));
    run.recv(&reply(&b_bye, 200, "OK", B_TAG), seat_peer(1));
    let remains = run
        .call
        .remains(sources())
        .expect("only linger timers left");
    let now = run.now;

    // Timer J of the caller's BYE is the last, as for the call itself.
    assert_eq!(remains.until - run.t0, secs(10) + secs(32));
    let ids: Vec<&str> = remains.call_ids().map(|i| &**i).collect();
    assert_eq!(ids.len(), 2, "the caller's Call-ID and the seat leg's");
    assert!(ids.contains(&A_CALL_ID));

    // The BYE again: the same 200, to the caller.
    assert_eq!(
        remains.answer(&wire(&bye), caller(), now),
        Answer::Send(caller(), bye_ok.clone())
    );
    // The caller's INVITE again (no To tag): absorbed, not a new call.
    assert_eq!(
        remains.answer(&caller_invite(), caller(), now),
        Answer::Absorbed
    );
    // ACKs are absorbed.
    assert_eq!(
        remains.answer(&caller_ack_2xx(&tag), caller(), now),
        Answer::Absorbed
    );
    // A CANCEL of the answered INVITE: 200 with our tag (§9.2).
    match remains.answer(&caller_cancel(A_BRANCH), caller(), now) {
        Answer::Send(to, bytes) => {
            assert_eq!(to, caller());
            let m = Message::parse(bytes).unwrap();
            assert_eq!(m.code(), Some(200));
            assert_eq!(to_tag(&m).as_deref(), Some(tag.as_str()));
        }
        other => panic!("CANCEL got {other:?}"),
    }
    // The seat's 200 again (it missed our ACK): the same ACK again.
    assert_eq!(
        remains.answer(&wire(&seat_ok(&invite)), seat_peer(1), now),
        Answer::Send(seat_peer(1), seat_ack.clone())
    );
    // A 2xx of another dialog (a fork) is not ACKed in our dialog's name.
    let mut fork = seat_ok(&invite);
    fork.set(Name::To, format!("{};tag=other", hv(&invite, Name::To)));
    assert_eq!(
        remains.answer(&wire(&fork), seat_peer(1), now),
        Answer::Absorbed
    );
    // The seat's 200 to our BYE again: absorbed (Timer K).
    assert_eq!(
        remains.answer(&wire(&reply(&b_bye, 200, "OK", B_TAG)), seat_peer(1), now),
        Answer::Absorbed
    );
    // A new request in the dialog that is over: 481.
    let info = parse(&no_body(caller_request(
        "INFO",
        3,
        "z9hG4bKcaller.info",
        &tag,
    )));
    assert_eq!(remains.answer(&info, caller(), now), Answer::NoDialog);
    // A new INVITE reusing the Call-ID (another branch, no tag): not ours.
    let text = text(&caller_invite()).replace(A_BRANCH, "z9hG4bKanother.call");
    assert_eq!(
        remains.answer(&parse(&text), caller(), now),
        Answer::NotOurs
    );

    // The live call answers the same retransmissions the same way.
    assert_eq!(raw_of(&run.recv(&bye, caller())), vec![bye_ok.clone()]);
    assert!(run.recv(&caller_invite(), caller()).is_empty());
    let again = run.recv(&seat_ok(&invite), seat_peer(1));
    assert_eq!(requests(&again, Method::Ack).len(), 1);

    // Each rule runs out with its timer: Timer K (5 s) for our BYE, L and
    // M (32 s after the answer at 3 s), J (32 s after the caller's BYE).
    let at = |s: u64| run.t0 + secs(s);
    assert_eq!(
        remains.answer(
            &wire(&reply(&b_bye, 200, "OK", B_TAG)),
            seat_peer(1),
            at(16)
        ),
        Answer::Absorbed
    );
    assert_eq!(
        remains.answer(&wire(&seat_ok(&invite)), seat_peer(1), at(36)),
        Answer::Absorbed,
        "Timer M over: nothing left to ACK"
    );
    assert_eq!(
        remains.answer(&wire(&bye), caller(), at(41)),
        Answer::Send(caller(), bye_ok)
    );
    // It is small: a few rules and two short messages.
    assert!(
        remains.held_bytes() < 2048,
        "{} bytes",
        remains.held_bytes()
    );
}

#[test]
fn a_refused_calls_remains_wait_for_the_callers_ack_and_re_ack_the_seats_refusal() {
    let (mut run, _) = Run::seats(1, settings());
    let invite = run.last_b_invite();
    run.advance(ms(300));
    let busy = seat_reply(&invite, 486, "Busy Here");
    let sent = run.recv(&busy, seat_peer(1));
    let refusal = one(to_peer(&sent, caller()), "486 to the caller")
        .msg
        .clone();
    let seat_ack = one(requests(&sent, Method::Ack), "ACK of the 486")
        .raw
        .clone();
    assert!(
        run.call.remains(sources()).is_none(),
        "the 486 to the caller is resent until its ACK (Timer G)"
    );
    run.advance(ms(400));
    run.recv(
        &caller_ack_failure(&to_tag(&refusal).expect("tag")),
        caller(),
    );
    let remains = run
        .call
        .remains(sources())
        .expect("only linger timers left");
    assert_eq!(
        remains.answer(&wire(&busy), seat_peer(1), run.now),
        Answer::Send(seat_peer(1), seat_ack),
        "Timer D: a retransmitted 486 is ACKed again"
    );
    assert_eq!(
        remains.answer(&caller_invite(), caller(), run.now),
        Answer::Absorbed
    );
    // Timer D (32 s from the 486) outlasts Timer I (5 s from the ACK).
    assert_eq!(remains.until - run.t0, ms(300) + secs(32));
}

#[test]
fn a_cancelled_call_finishes_after_its_linger_timers() {
    let (mut run, invite, ringing) = ringing(1, settings());
    run.advance(secs(2));
    let sent = run.recv(&caller_cancel(A_BRANCH), caller());
    let cancel = one(requests(&sent, Method::Cancel), "CANCEL").msg.clone();
    run.recv(
        &caller_ack_failure(&to_tag(&ringing).expect("tag")),
        caller(),
    );
    run.recv(&reply(&cancel, 200, "OK", B_TAG), seat_peer(1));
    let sent = run.recv(
        &seat_reply(&invite, 487, "Request Terminated"),
        seat_peer(1),
    );
    assert_eq!(requests(&sent, Method::Ack).len(), 1);
    assert!(!run.call.is_finished());
    // Timer D (32 s on UDP) for the seat's INVITE is the last.
    let (steps, at) = run.finish(50);
    assert_eq!(at, secs(2) + secs(32));
    assert!(steps < 10, "{steps} steps");
}

#[test]
fn a_refused_call_whose_caller_never_acks_finishes_after_timer_h() {
    let (mut run, _) = Run::seats(1, settings());
    let invite = run.last_b_invite();
    run.advance(ms(300));
    let sent = run.recv(&seat_reply(&invite, 486, "Busy Here"), seat_peer(1));
    let busy = one(to_peer(&sent, caller()), "486 to the caller")
        .raw
        .clone();
    let (steps, at) = run.finish(100);
    // The 486 is resent by Timer G (T1 doubling, capped at T2) until
    // Timer H (64·T1); the seat's INVITE lingers in Timer D (32 s) too.
    assert_eq!(at, ms(300) + secs(32));
    let resent = run
        .log
        .iter()
        .filter(|s| s.peer == caller() && s.raw == busy)
        .count();
    assert_eq!(resent, 1 + 10, "the first 486 and ten Timer G resends");
    assert!(steps < 20, "{steps} steps");
}

#[test]
fn a_b_leg_that_never_ends_its_cancelled_invite_does_not_keep_the_call_forever() {
    let (mut run, _, ringing) = ringing(1, settings());
    run.advance(secs(2));
    let sent = run.recv(&caller_cancel(A_BRANCH), caller());
    let cancel = one(requests(&sent, Method::Cancel), "CANCEL").msg.clone();
    run.recv(
        &caller_ack_failure(&to_tag(&ringing).expect("tag")),
        caller(),
    );
    run.recv(&reply(&cancel, 200, "OK", B_TAG), seat_peer(1));
    // No 487 ever comes: §9.1 says give the INVITE up after 64·T1.
    let (_, at) = run.finish(50);
    assert!(at <= secs(2) + secs(32) + secs(32), "finished at {at:?}");
}

// ── 16. Retransmitted INVITE ────────────────────────────────────────────

#[test]
fn a_retransmitted_invite_from_the_caller_gets_the_last_provisional_again_not_a_second_call() {
    let (mut run, sent) = Run::seats(2, settings());
    let trying = one(responses(&sent, 100), "100 Trying").raw.clone();
    let invite = run.last_b_invite();

    run.advance(ms(500));
    let sent = run.recv(&caller_invite(), caller());
    let again = one(to_peer(&sent, caller()), "the 100 again");
    assert_eq!(again.raw, trying);
    assert!(
        requests(&sent, Method::Invite).is_empty(),
        "{:?}",
        summary(&sent)
    );

    run.recv(&seat_reply(&invite, 180, "Ringing"), seat_peer(1));
    let ringing = run
        .log
        .iter()
        .rfind(|s| s.peer == caller() && s.is_code(180))
        .expect("the 180 relayed")
        .raw
        .clone();
    run.advance(ms(1500));
    let sent = run.recv(&caller_invite(), caller());
    let again = one(sent.iter().collect(), "the 180 again");
    assert_eq!((again.peer, &again.raw), (caller(), &ringing));

    assert_eq!(run.b_invites().len(), 1, "one B leg only");
    assert_eq!(run.binds.len(), 1, "one B Call-ID only");
    assert_eq!(run.call.seat(), Some("8001"));
    assert!(!run.reg.is_busy("8002"));
}

#[test]
fn a_bye_with_the_wrong_tags_or_from_elsewhere_is_refused_and_the_call_goes_on() {
    let (mut run, invite, ok) = answered();
    let tag = to_tag(&ok).expect("our tag");
    run.advance(secs(5));
    // Right Call-ID, wrong To tag.
    let forged = parse(&no_body(caller_request(
        "BYE",
        2,
        "z9hG4bKforged.1",
        "guessed",
    )));
    let sent = run.recv(&forged, caller());
    assert!(one(to_peer(&sent, caller()), "481").is_code(481));
    assert!(
        requests(&sent, Method::Bye).is_empty(),
        "nothing reaches the seat"
    );
    // Right tags, but from another address.
    let stranger = Peer::udp("198.51.100.66:5060".parse().unwrap());
    let forged = parse(&no_body(caller_request("BYE", 3, "z9hG4bKforged.2", &tag)));
    let sent = run.recv(&forged, stranger);
    assert!(one(to_peer(&sent, stranger), "481").is_code(481));
    assert!(requests(&sent, Method::Bye).is_empty());
    // Right tags, the caller's IP, but another port: not the caller.
    let neighbour = Peer::udp(SocketAddr::from(([192, 0, 2, 10], 5099)));
    let forged = parse(&no_body(caller_request("BYE", 4, "z9hG4bKforged.4", &tag)));
    let sent = run.recv(&forged, neighbour);
    assert!(one(to_peer(&sent, neighbour), "481").is_code(481));
    assert!(requests(&sent, Method::Bye).is_empty());
    assert_eq!(
        run.call.far_ends(),
        FarEnds {
            addrs: vec![caller().addr, seat_peer(1).addr],
            hosts: vec![],
        },
        "what the engine lets in for this call"
    );
    // A forged re-INVITE (a media redirect) from the seat's side with the
    // seat's Call-ID but not its tags is refused too.
    let reinvite = seat_request(&invite, "INVITE", 2, "z9hG4bKforged.3").replace(B_TAG, "other");
    let sent = run.recv(&parse(&no_body(reinvite)), seat_peer(1));
    assert!(requests(&sent, Method::Invite).is_empty());
    assert_eq!(run.call.outcome(), None, "the call is still up");
    assert!(run.reg.is_busy("8001"));
}

#[test]
fn a_second_answer_from_a_forking_far_end_is_acked_and_hung_up_and_the_call_stays_on_the_first() {
    let (mut run, invite, ok) = answered();
    // Another phone behind the same far end answers too (To tag "fork2").
    let mut second = reply(&invite, 200, "OK", "fork2");
    second.push(Name::Contact, "<sip:other@192.0.2.21:5099>");
    let sent = run.recv(&wire(&second), seat_peer(1));
    let ack = one(requests(&sent, Method::Ack), "ACK for the fork");
    assert_eq!(to_tag(&ack.msg).as_deref(), Some("fork2"));
    assert_eq!(uri(&ack.msg), "sip:other@192.0.2.21:5099");
    let bye = one(requests(&sent, Method::Bye), "BYE for the fork");
    assert_eq!(to_tag(&bye.msg).as_deref(), Some("fork2"));
    assert!(
        responses(&sent, 200).is_empty(),
        "nothing relayed to the caller"
    );
    assert_eq!(run.call.outcome(), None);
    // The caller's hang-up still reaches the first dialog.
    let tag = to_tag(&ok).expect("our tag");
    let caller_bye = parse(&no_body(caller_request(
        "BYE",
        2,
        "z9hG4bKcaller.bye2",
        &tag,
    )));
    let sent = run.recv(&caller_bye, caller());
    let bye = one(requests(&sent, Method::Bye), "BYE to the seat");
    assert_eq!(to_tag(&bye.msg).as_deref(), Some(B_TAG));
    assert_eq!(uri(&bye.msg), B_CONTACT);
}

#[test]
fn a_relayed_reinvite_left_pending_is_answered_487_at_hang_up_and_the_call_still_finishes() {
    let (mut run, _invite, ok) = answered();
    let tag = to_tag(&ok).expect("our tag");
    // The caller puts the call on hold; the seat says 100 and then nothing.
    let hold = parse(&with_body(
        caller_request("INVITE", 2, "z9hG4bKcaller.hold", &tag),
        "application/sdp",
        SDP_B,
    ));
    let sent = run.recv(&hold, caller());
    let relayed = one(requests(&sent, Method::Invite), "re-INVITE to the seat")
        .msg
        .clone();
    run.recv(&wire(&reply(&relayed, 100, "Trying", B_TAG)), seat_peer(1));
    // The caller hangs up.
    let bye = parse(&no_body(caller_request(
        "BYE",
        3,
        "z9hG4bKcaller.bye3",
        &tag,
    )));
    let sent = run.recv(&bye, caller());
    let terminated = responses(&sent, 487);
    assert_eq!(terminated.len(), 1, "{:?}", summary(&sent));
    assert_eq!(terminated[0].cseq(), "2 INVITE");
    assert_eq!(run.call.outcome(), Some(Outcome::Completed));
    let (steps, _) = run.finish(200);
    assert!(run.call.is_finished(), "finished after {steps} steps");
}

#[test]
fn a_redirect_or_challenge_from_a_trunk_is_not_relayed_to_the_caller() {
    for (code, reason) in [
        (302, "Moved Temporarily"),
        (407, "Proxy Authentication Required"),
    ] {
        let t0 = Instant::now();
        let (mut run, out) = Run::start(Registrar::new(), t0, settings(), vec![trunk()]);
        let sent = run.take(out, t0);
        let invite = one(requests(&sent, Method::Invite), "INVITE to the trunk")
            .msg
            .clone();
        let mut refusal = reply(&invite, code, reason, "trk");
        refusal.push(Name::Contact, "<sip:elsewhere@203.0.113.9>");
        let sent = run.recv(&wire(&refusal), trunk_peer());
        let to_caller = one(to_peer(&sent, caller()), "final to the caller");
        assert!(to_caller.is_code(503), "{code} became {:?}", summary(&sent));
        assert!(!text(&to_caller.msg).contains("elsewhere"));
        assert_eq!(run.call.outcome(), Some(Outcome::Failed));
    }
}

#[test]
fn an_unreachable_seat_passes_the_call_to_the_next_at_once() {
    let (mut run, _) = Run::seats(2, settings());
    assert_eq!(run.b_invites().len(), 1);
    let now = run.now;
    let out = run.call.on_transport_error(seat_peer(1), &run.reg, now);
    let sent = run.take(out, now);
    let next = one(requests(&sent, Method::Invite), "INVITE to the next seat");
    assert_eq!(next.peer, seat_peer(2));
    assert!(!run.reg.is_busy("8001"), "the unreachable seat is freed");
    assert!(run.reg.is_busy("8002"));
}

#[test]
fn an_unreachable_caller_ends_an_answered_call() {
    let (mut run, _invite, _ok) = answered();
    let now = run.now;
    let out = run.call.on_transport_error(caller(), &run.reg, now);
    let sent = run.take(out, now);
    let bye = one(requests(&sent, Method::Bye), "BYE to the seat");
    assert_eq!(bye.peer, seat_peer(1));
    assert_eq!(run.call.outcome(), Some(Outcome::Completed));
    assert!(!run.reg.is_busy("8001"));
    let (steps, _) = run.finish(200);
    assert!(run.call.is_finished(), "{steps} steps");
}

#[test]
fn an_in_dialog_request_with_an_old_cseq_gets_500() {
    let (mut run, _invite, ok) = answered();
    let tag = to_tag(&ok).expect("our tag");
    // CSeq 1 is the INVITE's: a BYE must be numbered higher (§12.2.2).
    let stale = parse(&no_body(caller_request(
        "BYE",
        1,
        "z9hG4bKcaller.stale",
        &tag,
    )));
    let sent = run.recv(&stale, caller());
    assert!(one(to_peer(&sent, caller()), "500").is_code(500));
    assert!(requests(&sent, Method::Bye).is_empty());
    assert_eq!(run.call.outcome(), None);
}

// ── Anchored media ──────────────────────────────────────────────────────

fn anchored(early: bool) -> Settings {
    let lib = crate::media::prompt::PromptLibrary::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts"),
    )
    .unwrap();
    let early = early.then(|| {
        crate::media::prompt::Playlist::new(&lib, [crate::media::prompt::Item::prompt("welcome")])
            .unwrap()
    });
    let hold = crate::media::prompt::Playlist::new(
        &lib,
        [crate::media::prompt::Item::looping("hold_music")],
    )
    .ok();
    Settings {
        media: Some(MediaPlan {
            a_local: "127.0.0.1:20000".parse().unwrap(),
            b_local: "127.0.0.1:20002".parse().unwrap(),
            early,
            hold,
            streams: None,
        }),
        ..settings()
    }
}

#[test]
fn an_anchored_call_offers_our_ports_plays_early_media_and_bridges_on_answer() {
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1))], t0);
    let (mut run, out) = Run::start(reg, t0, anchored(true), vec![seat("8001")]);
    let sent = run.take(out, t0);
    // 183 with our SDP, from our A port, and the welcome playing.
    let progress = one(responses(&sent, 183), "183 to the caller");
    let body = String::from_utf8_lossy(&progress.msg.body).into_owned();
    assert!(body.contains("m=audio 20000 RTP/AVP 0"), "{body}");
    assert!(
        run.media
            .iter()
            .any(|m| m.starts_with("Remote { leg: 0, addr: Some(192.0.2.10:40000), codec: Pcmu")),
        "{:?}",
        run.media
    );
    assert!(
        run.media.iter().any(|m| m.starts_with("Play { leg: 0")),
        "{:?}",
        run.media
    );
    // The seat is offered our B port, the caller's codec first.
    let invite = one(requests(&sent, Method::Invite), "INVITE to the seat")
        .msg
        .clone();
    let offer = String::from_utf8_lossy(&invite.body).into_owned();
    assert!(offer.contains("m=audio 20002 RTP/AVP 0 8 101"), "{offer}");
    assert!(
        !offer.contains("192.0.2.10"),
        "the caller's address is not passed on"
    );
    // Ringing is not relayed over the early media.
    let sent = run.recv(&seat_reply(&invite, 180, "Ringing"), seat_peer(1));
    assert!(responses(&sent, 180).is_empty());
    // The answer: leg 1 learns the seat's RTP, the prompt stops, legs bridged.
    let sent = run.recv(&seat_ok(&invite), seat_peer(1));
    let ok = one(responses(&sent, 200), "200 to the caller");
    assert!(String::from_utf8_lossy(&ok.msg.body).contains("m=audio 20000 "));
    let tail: Vec<&String> = run.media.iter().rev().take(5).collect();
    assert!(
        tail[4].starts_with("Remote { leg: 1, addr: Some(192.0.2.21:50000)"),
        "{tail:?}"
    );
    // From the answer on, both legs' silence counts as a time-out.
    assert_eq!(tail[3], "Watch { leg: 0 }");
    assert_eq!(tail[2], "Watch { leg: 1 }");
    assert_eq!(tail[1], "StopPlay { leg: 0 }");
    // The caller's stream is paired with the seat's.
    assert_eq!(tail[0], "Bridge { legs: [0, 1] }");
}

#[test]
fn an_offer_without_a_codec_we_speak_gets_488() {
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1))], t0);
    let mut settings = anchored(false);
    settings.media.as_mut().unwrap().early = None;
    // The caller offers G.729 only.
    let mut g729 = caller_invite();
    g729.body = Bytes::from_static(
        b"v=0\r\no=c 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 40000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n",
    );
    let (call, out) = Call::start(
        CALL,
        settings,
        wire(&g729),
        caller(),
        vec![seat("8001")],
        Rejection::new(404, "x", Outcome::Unavailable),
        &reg,
        t0,
    );
    let mut run = Run::with(reg, t0, call);
    let sent = run.take(out, t0);
    let refused = one(
        to_peer(&sent, caller())
            .into_iter()
            .filter(|s| s.is_code(488))
            .collect(),
        "488",
    );
    assert!(reason(&refused.msg).starts_with("Not Acceptable Here"));
    assert!(
        requests(&sent, Method::Invite).is_empty(),
        "no seat is rung"
    );
    assert_eq!(run.call.outcome(), Some(Outcome::Failed));
}

#[test]
fn a_hold_reinvite_is_answered_here_and_only_changes_that_leg() {
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1))], t0);
    let (mut run, out) = Run::start(reg, t0, anchored(false), vec![seat("8001")]);
    let sent = run.take(out, t0);
    let invite = one(requests(&sent, Method::Invite), "INVITE to the seat")
        .msg
        .clone();
    let sent = run.recv(&seat_ok(&invite), seat_peer(1));
    let ok = one(responses(&sent, 200), "200").msg.clone();
    let tag = to_tag(&ok).unwrap();
    run.recv(&caller_ack_2xx(&tag), caller());
    let hold = parse(&with_body(
        caller_request("INVITE", 2, "z9hG4bKcaller.hold", &tag),
        "application/sdp",
        "v=0\r\no=caller 1 2 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=sendonly\r\n",
    ));
    let sent = run.recv(&hold, caller());
    assert!(
        requests(&sent, Method::Invite).is_empty(),
        "the seat is not disturbed"
    );
    let answer = one(responses(&sent, 200), "200 to the hold").msg.clone();
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    assert!(body.contains("a=recvonly"), "{body}");
    assert!(body.contains("m=audio 20000 "), "{body}");
    assert!(
        run.media.last().unwrap().contains("leg: 0")
            && run.media.last().unwrap().contains("send: false"),
        "{:?}",
        run.media.last()
    );
    assert_eq!(run.call.outcome(), None);
}

/// An anchored call answered by seat 8001 and ACKed; returns our To tag.
fn anchored_answered() -> (Run, String) {
    let (run, tag, _) = anchored_answered_with_invite();
    (run, tag)
}

/// [`anchored_answered`], and our INVITE to the seat (for its requests).
fn anchored_answered_with_invite() -> (Run, String, Message) {
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1))], t0);
    let (mut run, out) = Run::start(reg, t0, anchored(false), vec![seat("8001")]);
    let sent = run.take(out, t0);
    let invite = one(requests(&sent, Method::Invite), "INVITE to the seat")
        .msg
        .clone();
    let sent = run.recv(&seat_ok(&invite), seat_peer(1));
    let ok = one(responses(&sent, 200), "200").msg.clone();
    let tag = to_tag(&ok).unwrap();
    run.recv(&caller_ack_2xx(&tag), caller());
    (run, tag, invite)
}

fn start_with_offer(sdp_body: &str, content_type: &str) -> (Run, Vec<Sent>) {
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1))], t0);
    let mut invite = caller_invite();
    invite.set(Name::ContentType, content_type.to_string());
    invite.body = Bytes::from(sdp_body.to_string());
    let (call, out) = Call::start(
        CALL,
        anchored(false),
        wire(&invite),
        caller(),
        vec![seat("8001")],
        Rejection::new(404, "x", Outcome::Unavailable),
        &reg,
        t0,
    );
    let mut run = Run::with(reg, t0, call);
    let sent = run.take(out, t0);
    (run, sent)
}

#[test]
fn an_update_with_sdp_is_answered_here_and_not_relayed() {
    let (mut run, tag) = anchored_answered();
    let update = parse(&with_body(
        caller_request("UPDATE", 2, "z9hG4bKcaller.update", &tag),
        "application/sdp",
        "v=0\r\no=caller 1 3 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\n",
    ));
    let sent = run.recv(&update, caller());
    assert!(
        requests(&sent, Method::Update).is_empty(),
        "the seat never sees the caller's SDP"
    );
    let ok = one(responses(&sent, 200), "200 to the UPDATE").msg.clone();
    assert!(String::from_utf8_lossy(&ok.body).contains("m=audio 20000 "));
    assert!(
        run.media.last().unwrap().contains("192.0.2.10:40002"),
        "{:?}",
        run.media.last()
    );
}

#[test]
fn a_reinvite_without_sdp_gets_our_current_sdp_as_an_offer() {
    let (mut run, tag) = anchored_answered();
    let refresh = parse(&no_body(caller_request(
        "INVITE",
        2,
        "z9hG4bKcaller.refresh",
        &tag,
    )));
    let sent = run.recv(&refresh, caller());
    let ok = one(responses(&sent, 200), "200 to the refresh").msg.clone();
    let body = String::from_utf8_lossy(&ok.body).into_owned();
    assert!(body.contains("m=audio 20000 "), "{body}");
    assert_eq!(run.call.outcome(), None);
}

#[test]
fn a_media_timeout_on_an_answered_call_hangs_up_both_legs() {
    let (mut run, _) = anchored_answered();
    let now = run.now;
    let out = run.call.on_media_timeout(1, &run.reg, now);
    let sent = run.take(out, now);
    assert_eq!(
        requests(&sent, Method::Bye).len(),
        2,
        "{:?}",
        summary(&sent)
    );
    assert_eq!(run.call.outcome(), Some(Outcome::Completed));
    assert!(!run.reg.is_busy("8001"));
}

#[test]
fn the_sdp_part_of_a_multipart_sip_i_body_is_anchored() {
    let body = "--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\no=c 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\n\r\n--b1\r\nContent-Type: application/isup;version=itu-t92+\r\n\r\n\x01\x02\x03\r\n--b1--\r\n";
    let (run, sent) = start_with_offer(body, "multipart/mixed;boundary=b1");
    assert!(
        !requests(&sent, Method::Invite).is_empty(),
        "{:?}",
        summary(&sent)
    );
    assert!(
        run.media
            .iter()
            .any(|m| m.contains("192.0.2.10:40000") && m.contains("Pcma")),
        "{:?}",
        run.media
    );
}

#[test]
fn an_ipv6_offer_to_an_ipv4_port_is_not_acceptable() {
    let body = "v=0\r\no=c 1 1 IN IP6 2001:db8::10\r\ns=-\r\nc=IN IP6 2001:db8::10\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";
    let (run, sent) = start_with_offer(body, "application/sdp");
    assert!(
        one(
            to_peer(&sent, caller())
                .into_iter()
                .filter(|s| s.is_code(488))
                .collect(),
            "488"
        )
        .is_code(488)
    );
    assert_eq!(run.call.outcome(), Some(Outcome::Failed));
}

#[test]
fn a_dynamic_payload_type_for_a_static_codec_is_passed_to_the_media_session() {
    let body = "v=0\r\no=c 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 40000 RTP/AVP 96\r\na=rtpmap:96 PCMA/8000\r\n";
    let (run, _) = start_with_offer(body, "application/sdp");
    assert!(
        run.media
            .iter()
            .any(|m| m.contains("payload_type: Some(96)") && m.contains("Pcma")),
        "{:?}",
        run.media
    );
    assert!(
        run.media
            .iter()
            .any(|m| m.contains("allowed: [192.0.2.10]")),
        "the caller's address only: {:?}",
        run.media
    );
}

#[test]
fn a_seat_holding_the_call_is_not_timed_out_and_the_caller_hears_hold_music_until_resume() {
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1))], t0);
    let (mut run, out) = Run::start(reg, t0, anchored(false), vec![seat("8001")]);
    run.take(out, t0);
    assert!(
        !run.media.iter().any(|m| m.starts_with("Watch")),
        "a ringing call's silence is not watched: {:?}",
        run.media
    );
    let (mut run, _, invite) = anchored_answered_with_invite();
    for leg in 0..2 {
        assert!(
            run.media
                .iter()
                .any(|m| m == &format!("Watch {{ leg: {leg} }}")),
            "leg {leg} is watched once answered: {:?}",
            run.media
        );
    }
    // The seat presses hold: a=sendonly, and then (like many phones) it
    // sends no RTP at all.
    let hold = parse(&with_body(
        seat_request(&invite, "INVITE", 2, "z9hG4bKseat.hold"),
        "application/sdp",
        "v=0\r\no=seat 2 3 IN IP4 192.0.2.21\r\ns=-\r\nc=IN IP4 192.0.2.21\r\nt=0 0\r\nm=audio 50000 RTP/AVP 0\r\na=sendonly\r\n",
    ));
    let before = run.media.len();
    let sent = run.recv(&hold, seat_peer(1));
    let answer = one(responses(&sent, 200), "200 to the hold").msg.clone();
    assert!(String::from_utf8_lossy(&answer.body).contains("a=recvonly"));
    let new: Vec<&String> = run.media[before..].iter().collect();
    assert!(
        new.iter()
            .any(|m| m.contains("leg: 1") && m.contains("expect: false")),
        "a held leg's silence is no time-out: {new:?}"
    );
    assert!(
        new.iter()
            .any(|m| m.starts_with("Play { leg: 0") && m.contains("looping: true")),
        "the caller hears hold music: {new:?}"
    );
    // Resume: the music stops, the bridge is back, silence counts again.
    let resume = parse(&with_body(
        seat_request(&invite, "INVITE", 3, "z9hG4bKseat.resume"),
        "application/sdp",
        "v=0\r\no=seat 2 4 IN IP4 192.0.2.21\r\ns=-\r\nc=IN IP4 192.0.2.21\r\nt=0 0\r\nm=audio 50000 RTP/AVP 0\r\n",
    ));
    let before = run.media.len();
    run.recv(&resume, seat_peer(1));
    let new: Vec<&String> = run.media[before..].iter().collect();
    assert!(new.iter().any(|m| m == &"StopPlay { leg: 0 }"), "{new:?}");
    assert!(
        new.iter()
            .any(|m| m.contains("leg: 1") && m.contains("expect: true")),
        "{new:?}"
    );
    assert_eq!(run.call.outcome(), None, "the call goes on");
}

// ── Targets that are gone ───────────────────────────────────────────────

fn trunk_at(id: &str, last_octet: u8) -> Target {
    let peer = Peer::udp(SocketAddr::from(([198, 51, 100, last_octet], 5060)));
    Target::Trunk {
        id: id.into(),
        uri: format!("sip:120@{}", peer.addr),
        peer,
        sources: vec![peer.addr.ip()],
    }
}

fn with_response_timeout(mut s: Settings, t: Duration) -> Settings {
    s.response_timeout = t;
    s
}

#[test]
fn a_seat_phone_that_sends_nothing_is_passed_over_after_the_response_timeout_not_its_ring() {
    let (mut run, sent) = Run::seats(2, with_response_timeout(settings(), secs(2)));
    let first = one(requests(&sent, Method::Invite), "INVITE to 8001");
    assert_eq!(first.peer, seat_peer(1));
    // Nothing from 8001 (it vanished without unregistering): 8002 rings
    // after 2 s, not after its 20 s.
    let sent = run.advance(secs(2));
    let next = requests(&sent, Method::Invite)
        .into_iter()
        .find(|s| s.peer == seat_peer(2))
        .expect("the next seat is tried");
    assert_eq!(next.at - run.t0, secs(2));
    assert!(to_peer(&sent, caller()).is_empty(), "the caller waits on");
    // A seat that did answer 100 keeps its full ring time.
    let invite = next.msg.clone();
    run.recv(&seat_reply(&invite, 100, "Trying"), seat_peer(2));
    let sent = run.advance(secs(2 + 20) - ms(1));
    assert!(
        requests(&sent, Method::Cancel).is_empty(),
        "{:?}",
        summary(&sent)
    );
    let sent = run.advance(secs(2 + 20));
    assert!(
        requests(&sent, Method::Cancel)
            .iter()
            .any(|s| s.peer == seat_peer(2)),
        "cancelled only when its ring ran out: {:?}",
        summary(&sent)
    );
}

#[test]
fn an_emergency_call_tries_each_trunk_and_answers_503_with_retry_after_when_none_responds() {
    let t0 = Instant::now();
    let mut s = with_response_timeout(settings(), secs(2));
    s.retry_after = Some(5);
    let (mut run, out) = Run::start(
        Registrar::new(),
        t0,
        s,
        vec![trunk_at("emergency", 7), trunk_at("emergency_backup", 8)],
    );
    let sent = run.take(out, t0);
    let first = one(requests(&sent, Method::Invite), "INVITE to the first trunk");
    let first_peer = first.peer;
    // The kernel says nothing listens there (ICMP, §18.4): the backup is
    // tried at once.
    let out = run.call.on_transport_error(first_peer, &run.reg, t0);
    let sent = run.take(out, t0);
    let backup = one(requests(&sent, Method::Invite), "INVITE to the backup");
    assert_eq!(backup.peer.addr.ip().to_string(), "198.51.100.8");
    assert!(to_peer(&sent, caller()).is_empty());
    // The backup says nothing at all: 503 within the bound.
    let sent = run.advance(secs(2));
    let final_ = one(to_peer(&sent, caller()), "final to the carrier");
    assert!(final_.is_code(503), "{}", text(&final_.msg));
    assert_eq!(hv(&final_.msg, Name::Other("Retry-After".into())), "5");
    assert_eq!(final_.at - t0, secs(2));
    assert_eq!(run.call.outcome(), Some(Outcome::Failed));
}

#[test]
fn an_emergency_trunk_refusing_the_call_fails_over_and_the_last_refusal_becomes_503() {
    let t0 = Instant::now();
    let mut s = settings();
    s.retry_after = Some(5);
    let (mut run, out) = Run::start(
        Registrar::new(),
        t0,
        s,
        vec![trunk_at("emergency", 7), trunk_at("emergency_backup", 8)],
    );
    let sent = run.take(out, t0);
    let first = one(requests(&sent, Method::Invite), "INVITE").msg.clone();
    let sent = run.recv(&reply(&first, 500, "Server Error", "t1"), trunk_peer());
    let backup = one(requests(&sent, Method::Invite), "INVITE to the backup")
        .msg
        .clone();
    let backup_peer = Peer::udp(SocketAddr::from(([198, 51, 100, 8], 5060)));
    let sent = run.recv(&reply(&backup, 486, "Busy Here", "t2"), backup_peer);
    let final_ = one(to_peer(&sent, caller()), "final to the carrier");
    assert!(final_.is_code(503), "{}", text(&final_.msg));
    assert!(
        final_
            .msg
            .header(&Name::Other("Retry-After".into()))
            .is_some()
    );
}

#[test]
fn a_failing_sub_centre_falls_back_to_the_12345_queue_with_a_prompt() {
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1))], t0);
    let mut s = anchored(false);
    s.queue = Some(plan("general", vec![Item::prompt("transfer_notice")]));
    let (mut run, out) = Run::start(reg, t0, s, vec![trunk()]);
    let sent = run.take(out, t0);
    let invite = one(requests(&sent, Method::Invite), "INVITE to the sub-centre")
        .msg
        .clone();
    assert!(
        run.acd.is_empty(),
        "the ACD is not involved while the sub-centre is tried"
    );
    let sent = run.recv(
        &reply(&invite, 503, "Service Unavailable", "sc"),
        trunk_peer(),
    );
    assert!(
        responses(&sent, 503).is_empty(),
        "the caller is still served: {:?}",
        summary(&sent)
    );
    one(responses(&sent, 200), "answered by us, to wait");
    assert!(
        matches!(&run.acd[..], [ToAcd::Join { queue, arrival, .. }] if queue == "general" && *arrival == t0)
    );
    let out = run.call.on_acd(
        FromAcd::Announce {
            items: vec![Item::prompt("you_are_next")],
        },
        &run.reg,
        run.now,
    );
    run.take(out, run.now);
    let last = run.media.last().unwrap();
    assert!(
        last.starts_with(
            "Prompt 0 [Prompt(\"transfer_notice\"), Prompt(\"you_are_next\")] hold=true"
        ),
        "the notice, then the place: {last}"
    );
}

// ── Waiting in a queue ───────────────────────────────────────────────────

fn plan(queue: &str, intro: Vec<Item>) -> QueuePlan {
    QueuePlan {
        queue: queue.into(),
        line: "12345".into(),
        skill: None,
        expert_seats: Vec::new(),
        intro,
    }
}

/// A caller waiting in queue `general` (anchored, answered by us, ACKed),
/// seats 8001 and 8002 registered.
fn waiting() -> (Run, Message) {
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1)), ("8002", seat_peer(2))], t0);
    let mut s = anchored(false);
    s.queue = Some(plan("general", vec![Item::prompt("welcome")]));
    let (mut run, out) = Run::start(reg, t0, s, vec![]);
    let sent = run.take(out, t0);
    let ok = one(responses(&sent, 200), "200 to the caller").msg.clone();
    assert!(
        String::from_utf8_lossy(&ok.body).contains("m=audio 20000 "),
        "our SDP: the caller talks to the gateway while it waits"
    );
    assert!(
        requests(&sent, Method::Invite).is_empty(),
        "no seat rung before the ACD offers one"
    );
    run.recv(&caller_ack_2xx(&to_tag(&ok).unwrap()), caller());
    (run, ok)
}

impl Run {
    fn acd(&mut self, cmd: FromAcd) -> Vec<Sent> {
        let out = self.call.on_acd(cmd, &self.reg, self.now);
        self.take(out, self.now)
    }

    fn offer(&mut self, seat: &str) -> Message {
        let sent = self.acd(FromAcd::Offer {
            seat: seat.into(),
            ring: secs(20),
        });
        one(
            requests(&sent, Method::Invite),
            "INVITE to the seat offered",
        )
        .msg
        .clone()
    }
}

#[test]
fn a_queued_caller_is_answered_hears_its_place_and_is_bridged_to_the_seat_the_acd_offers() {
    let (mut run, _ok) = waiting();
    assert_eq!(run.acd.len(), 1, "{:?}", run.acd);
    assert!(matches!(&run.acd[0], ToAcd::Join { queue, .. } if queue == "general"));
    run.acd(FromAcd::Announce {
        items: vec![Item::prompt("queue_position")],
    });
    assert!(
        run.media
            .last()
            .unwrap()
            .starts_with("Prompt 0 [Prompt(\"welcome\"), Prompt(\"queue_position\")] hold=true")
    );
    // Later announcements come without the welcome.
    run.advance(secs(45));
    run.acd(FromAcd::Announce {
        items: vec![Item::prompt("you_are_next")],
    });
    assert!(
        run.media
            .last()
            .unwrap()
            .starts_with("Prompt 0 [Prompt(\"you_are_next\")]")
    );
    let invite = run.offer("8001");
    let offer = String::from_utf8_lossy(&invite.body).into_owned();
    assert!(offer.contains("m=audio 20002 "), "our B port: {offer}");
    let sent = run.recv(&seat_reply(&invite, 180, "Ringing"), seat_peer(1));
    assert!(
        to_peer(&sent, caller()).is_empty(),
        "the caller was answered already"
    );
    let sent = run.recv(&seat_ok(&invite), seat_peer(1));
    one(requests(&sent, Method::Ack), "ACK to the seat");
    assert!(
        to_peer(&sent, caller()).is_empty(),
        "nothing new for the caller in SIP"
    );
    assert_eq!(
        run.acd.last(),
        Some(&ToAcd::Answered {
            seat: "8001".into()
        })
    );
    let tail: Vec<&String> = run.media.iter().rev().take(2).collect();
    assert_eq!(tail[1], "StopPlay { leg: 0 }");
    assert_eq!(tail[0], "Bridge { legs: [0, 1] }");
    // The seat hangs up: the caller gets a BYE, the seat wraps up.
    let bye = parse(&no_body(seat_request(&invite, "BYE", 1, "z9hG4bKseat.bye")));
    let sent = run.recv(&bye, seat_peer(1));
    one(
        requests(
            &to_peer(&sent, caller())
                .into_iter()
                .cloned()
                .collect::<Vec<_>>(),
            Method::Bye,
        ),
        "BYE to the caller",
    );
    assert_eq!(run.acd.last(), Some(&ToAcd::Ended { by_seat: true }));
    assert_eq!(run.call.outcome(), Some(Outcome::Completed));
}

#[test]
fn a_caller_who_hangs_up_while_waiting_is_an_abandon_and_the_ringing_seat_is_cancelled() {
    let (mut run, ok) = waiting();
    let invite = run.offer("8001");
    run.recv(&seat_reply(&invite, 180, "Ringing"), seat_peer(1));
    let bye = parse(&no_body(caller_request(
        "BYE",
        2,
        "z9hG4bKcaller.bye",
        &to_tag(&ok).unwrap(),
    )));
    let sent = run.recv(&bye, caller());
    one(responses(&sent, 200), "200 for the caller's BYE");
    one(
        requests(&sent, Method::Cancel),
        "CANCEL to the ringing seat",
    );
    assert_eq!(run.acd.last(), Some(&ToAcd::Abandoned));
    assert_eq!(run.call.outcome(), Some(Outcome::Abandoned));
}

#[test]
fn ring_all_the_first_seat_to_answer_takes_the_call_and_the_other_is_cancelled() {
    let (mut run, _ok) = waiting();
    let first = run.offer("8001");
    let second = run.offer("8002");
    run.recv(&seat_reply(&first, 180, "Ringing"), seat_peer(1));
    run.recv(&seat_reply(&second, 180, "Ringing"), seat_peer(2));
    let sent = run.recv(&seat_ok(&second), seat_peer(2));
    let cancel = one(requests(&sent, Method::Cancel), "CANCEL to the other seat");
    assert_eq!(cancel.peer, seat_peer(1));
    assert_eq!(
        run.acd.last(),
        Some(&ToAcd::Answered {
            seat: "8002".into()
        })
    );
    // The loser's 487 is no news for the ACD: it retracted that offer.
    let n = run.acd.len();
    run.recv(&seat_reply(&first, 487, "Request Terminated"), seat_peer(1));
    assert_eq!(run.acd.len(), n, "{:?}", run.acd);
}

#[test]
fn an_offer_the_seat_cannot_take_is_reported_and_the_caller_keeps_waiting() {
    let (mut run, _ok) = waiting();
    // Not registered: refused at once, nothing sent.
    let sent = run.acd(FromAcd::Offer {
        seat: "8009".into(),
        ring: secs(20),
    });
    assert!(sent.is_empty());
    assert_eq!(
        run.acd.last(),
        Some(&ToAcd::OfferFailed {
            seat: "8009".into(),
            no_answer: false
        })
    );
    // Busy Here from the phone: rejected; the call still waits.
    let invite = run.offer("8001");
    run.recv(&seat_reply(&invite, 486, "Busy Here"), seat_peer(1));
    assert_eq!(
        run.acd.last(),
        Some(&ToAcd::OfferFailed {
            seat: "8001".into(),
            no_answer: false
        })
    );
    assert_eq!(run.call.outcome(), None);
    // Rang out: the ACD retracts, the call cancels.
    let invite = run.offer("8002");
    run.recv(&seat_reply(&invite, 180, "Ringing"), seat_peer(2));
    let sent = run.acd(FromAcd::Retract {
        seat: "8002".into(),
    });
    one(
        requests(&sent, Method::Cancel),
        "CANCEL to the seat that rang out",
    );
    assert_eq!(run.call.outcome(), None);
}

#[test]
fn a_key_pressed_while_waiting_goes_to_the_acd() {
    let (mut run, _ok) = waiting();
    let out = run
        .call
        .on_digit(0, crate::media::dtmf::Digit::Zero, &run.reg, run.now);
    run.take(out, run.now);
    assert_eq!(run.acd.last(), Some(&ToAcd::Key('0')));
}

#[test]
fn a_caller_the_queue_lets_go_hears_why_and_is_hung_up_when_the_prompt_ends() {
    let (mut run, _ok) = waiting();
    let sent = run.acd(FromAcd::Leave {
        items: vec![Item::prompt("queue_busy")],
        code: 486,
        reason: "Busy Here (the queue is full)".into(),
    });
    assert!(sent.is_empty(), "not hung up before the prompt");
    assert!(
        run.media
            .last()
            .unwrap()
            .starts_with("Prompt 0 [Prompt(\"queue_busy\")] hold=false")
    );
    let out = run.call.on_prompt_done(0, &run.reg, run.now);
    let sent = run.take(out, run.now);
    let bye = one(requests(&sent, Method::Bye), "BYE to the caller");
    assert_eq!(
        hv(&bye.msg, Name::Other("Reason".into())),
        "SIP;cause=486;text=\"Busy Here (the queue is full)\"",
        "RFC 3326: why we hung up"
    );
    assert_eq!(run.call.outcome(), Some(Outcome::Unavailable));
    // The ACD let it go itself: it is not told again.
    assert!(!run.acd.contains(&ToAcd::Abandoned));
}

#[test]
fn a_caller_let_go_is_hung_up_even_if_the_prompt_never_reports_its_end() {
    let (mut run, _ok) = waiting();
    run.acd(FromAcd::Leave {
        items: vec![Item::prompt("queue_busy")],
        code: 486,
        reason: "full".into(),
    });
    let sent = run.advance(secs(61));
    let byes = requests(&sent, Method::Bye);
    assert!(!byes.is_empty(), "BYE to the caller");
    assert!(
        byes.iter().all(|b| branch(&b.msg) == branch(&byes[0].msg)),
        "one BYE and its retransmissions"
    );
    assert_eq!(run.call.outcome(), Some(Outcome::Unavailable));
}

#[test]
fn an_icmp_error_fails_only_what_has_not_answered_yet() {
    // An answered call: ICMP naming the caller's or the seat's address
    // (stale, or forged) changes nothing.
    let (mut run, _invite, _ok) = answered();
    let now = run.now;
    for addr in [caller().addr, seat_peer(1).addr] {
        let out = run.call.on_unreachable(addr, &run.reg, now);
        let sent = run.take(out, now);
        assert!(sent.is_empty(), "{:?}", summary(&sent));
    }
    assert_eq!(run.call.outcome(), None);

    // A ringing seat (it sent 180) is not dropped either; a silent one is.
    let (mut run, sent) = Run::seats(2, settings());
    let first = one(requests(&sent, Method::Invite), "INVITE to 8001")
        .msg
        .clone();
    run.recv(&seat_reply(&first, 180, "Ringing"), seat_peer(1));
    let now = run.now;
    let out = run.call.on_unreachable(seat_peer(1).addr, &run.reg, now);
    assert!(requests(&run.take(out, now), Method::Invite).is_empty());
    let (mut run, _) = Run::seats(2, settings());
    let now = run.now;
    let out = run.call.on_unreachable(seat_peer(1).addr, &run.reg, now);
    let sent = run.take(out, now);
    let next = one(requests(&sent, Method::Invite), "INVITE to 8002");
    assert_eq!(next.peer, seat_peer(2));
}

#[test]
fn a_hold_ended_by_an_offerless_reinvite_takes_the_answer_from_the_ack() {
    let (mut run, _, invite) = anchored_answered_with_invite();
    let hold = parse(&with_body(
        seat_request(&invite, "INVITE", 2, "z9hG4bKseat.hold"),
        "application/sdp",
        "v=0\r\no=seat 2 3 IN IP4 192.0.2.21\r\ns=-\r\nc=IN IP4 192.0.2.21\r\nt=0 0\r\nm=audio 50000 RTP/AVP 0\r\na=sendonly\r\n",
    ));
    run.recv(&hold, seat_peer(1));
    assert!(run.media.iter().any(|m| m.starts_with("Play { leg: 0")));
    // Resume without an offer: our 200 offers two-way media...
    let resume = parse(&no_body(seat_request(
        &invite,
        "INVITE",
        3,
        "z9hG4bKseat.resume",
    )));
    let sent = run.recv(&resume, seat_peer(1));
    let ok = one(responses(&sent, 200), "200 with our offer").msg.clone();
    let offer = String::from_utf8_lossy(&ok.body).into_owned();
    assert!(offer.contains("a=sendrecv"), "{offer}");
    // ...and the seat's answer, in its ACK, ends the hold.
    let before = run.media.len();
    let ack = parse(&with_body(
        seat_request(&invite, "ACK", 3, "z9hG4bKseat.ack3"),
        "application/sdp",
        "v=0\r\no=seat 2 4 IN IP4 192.0.2.21\r\ns=-\r\nc=IN IP4 192.0.2.21\r\nt=0 0\r\nm=audio 50000 RTP/AVP 0\r\n",
    ));
    run.recv(&ack, seat_peer(1));
    let new: Vec<&String> = run.media[before..].iter().collect();
    assert!(new.iter().any(|m| m == &"StopPlay { leg: 0 }"), "{new:?}");
    assert!(
        new.iter()
            .any(|m| m.contains("leg: 1") && m.contains("expect: true")),
        "{new:?}"
    );
}

#[test]
fn a_seat_whose_nat_gave_it_a_new_port_is_still_its_far_end_once_it_re_registers() {
    let (mut run, invite, _) = answered();
    let moved = Peer::udp(SocketAddr::from(([192, 0, 2, 21], 6001)));
    let bye = parse(&no_body(seat_request(
        &invite,
        "BYE",
        2,
        "z9hG4bKseat.bye.moved",
    )));
    // Before it re-registers from there: another port is not the seat.
    let sent = run.recv(&bye, moved);
    assert!(one(to_peer(&sent, moved), "481").is_code(481));
    let contacts = [(seat_uri("8001", moved), 3600)];
    run.reg
        .register(
            "8001",
            Update::Contacts(&contacts),
            moved,
            "reg-8001",
            2,
            10,
            run.now,
        )
        .unwrap();
    let bye = parse(&no_body(seat_request(
        &invite,
        "BYE",
        3,
        "z9hG4bKseat.bye.moved2",
    )));
    let sent = run.recv(&bye, moved);
    assert!(one(to_peer(&sent, moved), "200").is_code(200));
    assert_eq!(
        requests(&sent, Method::Bye).len(),
        1,
        "relayed to the caller"
    );
    assert_eq!(run.call.outcome(), Some(Outcome::Completed));
}

// ── Review findings, each pinned ─────────────────────────────────────────

/// A trunk that answers from one of its configured sources may send its
/// BYE from another: both are the trunk.
#[test]
fn a_bye_from_a_trunks_second_source_address_is_the_trunks() {
    let t0 = Instant::now();
    let second = Peer::udp(SocketAddr::from(([198, 51, 100, 8], 5060)));
    let target = Target::Trunk {
        id: "carrier".into(),
        uri: "sip:12345@198.51.100.7:5060".into(),
        peer: trunk_peer(),
        sources: vec![trunk_peer().addr.ip(), second.addr.ip()],
    };
    let (mut run, out) = Run::start(Registrar::new(), t0, settings(), vec![target]);
    run.take(out, t0);
    let invite = run.last_b_invite();
    run.advance(ms(100));
    let sent = run.recv(&seat_ok(&invite), trunk_peer());
    let ok = one(responses(&sent, 200), "200 to the caller").msg.clone();
    run.recv(&caller_ack_2xx(&to_tag(&ok).unwrap()), caller());
    assert!(run.call.far_ends().admits(second), "the engine lets it in");
    let bye = parse(&no_body(seat_request(
        &invite,
        "BYE",
        1,
        "z9hG4bKtrunk.bye",
    )));
    let sent = run.recv(&bye, second);
    assert!(one(to_peer(&sent, second), "200 for the BYE").is_code(200));
    assert!(one(to_peer(&sent, caller()), "BYE to the caller").is(Method::Bye));
    assert_eq!(run.call.outcome(), Some(Outcome::Completed));
    // Another host is not the trunk.
    let stranger = Peer::udp(SocketAddr::from(([198, 51, 100, 9], 5060)));
    assert!(!run.call.far_ends().admits(stranger));
}

/// With T1 so long that 64·T1 outlasts the call's linger cap, a seat that
/// never answers our CANCEL is still freed: by the leg when it gives up,
/// and at the latest when the cap abandons what is left.
#[test]
fn a_seat_that_never_answers_our_cancel_is_freed_even_past_the_linger_cap() {
    let mut s = settings();
    s.timers.t1 = secs(10); // 64·T1 = 640 s, beyond the 120 s cap
    let (mut run, _invite, _ringing) = ringing(1, s);
    assert!(run.reg.is_busy("8001"));
    let sent = run.recv(&caller_cancel(A_BRANCH), caller());
    assert!(one(requests(&sent, Method::Cancel), "CANCEL to the seat").peer == seat_peer(1));
    // The seat answers nothing at all from now on.
    let (_steps, at) = run.finish(200);
    assert!(at <= secs(1 + 120 + 1), "finished by the cap, at {at:?}");
    assert!(!run.reg.is_busy("8001"), "the seat is free again");
}

/// A request on the seat's Call-ID that arrives before any leg exists in
/// that dialog, or from a leg moved on from, never reaches the caller.
#[test]
fn a_request_on_a_leg_moved_on_from_is_refused_and_reaches_no_one_else() {
    let (mut run, first, _second) = rang_out();
    let info = with_body(
        seat_request(&first, "INFO", 2, "z9hG4bKold.info"),
        "application/dtmf-relay",
        "Signal=5\r\nDuration=160\r\n",
    );
    let sent = run.recv(&parse(&info), seat_peer(1));
    let refused = one(sent.iter().collect(), "one answer");
    assert_eq!(refused.peer, seat_peer(1));
    assert!(refused.is_code(481), "{}", text(&refused.msg));
}

#[test]
fn a_feature_code_call_is_answered_hears_its_prompt_and_is_hung_up() {
    let t0 = Instant::now();
    let mut s = anchored(false);
    s.announce = Some(vec![Item::prompt("seat_paused")]);
    let (mut run, out) = Run::start(Registrar::new(), t0, s, vec![]);
    let sent = run.take(out, t0);
    let ok = one(responses(&sent, 200), "200 to the seat").msg.clone();
    assert!(
        run.media
            .last()
            .unwrap()
            .starts_with("Prompt 0 [Prompt(\"seat_paused\")] hold=false")
    );
    run.recv(&caller_ack_2xx(&to_tag(&ok).unwrap()), caller());
    let out = run.call.on_prompt_done(0, &run.reg, run.now);
    let sent = run.take(out, run.now);
    one(requests(&sent, Method::Bye), "BYE once the prompt ends");
    assert_eq!(run.call.outcome(), Some(Outcome::Completed));
    assert!(
        run.acd.is_empty(),
        "nothing for the ACD from the call itself"
    );
}

// ── Waiting: the ways out, pinned ────────────────────────────────────────

#[test]
fn a_waiting_caller_that_never_acks_our_answer_gets_a_bye() {
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1))], t0);
    let mut s = anchored(false);
    s.queue = Some(plan("general", vec![]));
    let (mut run, out) = Run::start(reg, t0, s, vec![]);
    run.take(out, t0);
    // No ACK: the 200 is retransmitted until Timer H (64·T1), then BYE.
    let sent = run.advance(secs(33));
    let byes = requests(&sent, Method::Bye);
    assert!(!byes.is_empty(), "BYE to the caller (§13.3.1.4)");
    assert!(
        byes.iter().all(|b| branch(&b.msg) == branch(&byes[0].msg)),
        "one BYE, retransmitted"
    );
    assert_eq!(run.call.outcome(), Some(Outcome::Abandoned));
    assert_eq!(run.acd.last(), Some(&ToAcd::Abandoned));
}

#[test]
fn a_sub_centre_that_rings_unanswered_hands_the_caller_to_the_queue() {
    let t0 = Instant::now();
    let mut s = anchored(false);
    s.queue = Some(plan("general", vec![Item::prompt("transfer_notice")]));
    let (mut run, out) = Run::start(Registrar::new(), t0, s, vec![trunk()]);
    let sent = run.take(out, t0);
    let invite = one(requests(&sent, Method::Invite), "INVITE to the sub-centre")
        .msg
        .clone();
    run.recv(&reply(&invite, 180, "Ringing", "sc"), trunk_peer());
    // A seat's ring (20 s), not the caller's whole patience.
    let sent = run.advance(secs(20));
    one(requests(&sent, Method::Cancel), "CANCEL to the sub-centre");
    one(responses(&sent, 200), "answered by us, to wait");
    assert!(
        matches!(run.acd.last(), Some(ToAcd::Join { .. })),
        "{:?}",
        run.acd
    );
}

/// Over TCP a 487 ends our INVITE at once: the CANCEL's give-up time must
/// not stay behind as a deadline in the past (a task spinning on it).
#[test]
fn a_seat_cancelled_over_tcp_leaves_no_deadline_behind() {
    let t0 = Instant::now();
    let tcp = Peer {
        addr: SocketAddr::from(([192, 0, 2, 31], 5062)),
        conn: Some(9),
    };
    let reg = registrar(&[("8001", tcp)], t0);
    let mut s = anchored(false);
    s.queue = Some(plan("general", vec![]));
    let (mut run, out) = Run::start(reg, t0, s, vec![]);
    let sent = run.take(out, t0);
    let ok = one(responses(&sent, 200), "200").msg.clone();
    run.recv(&caller_ack_2xx(&to_tag(&ok).unwrap()), caller());
    let invite = run.offer("8001");
    run.recv(&seat_reply(&invite, 180, "Ringing"), tcp);
    run.acd(FromAcd::Retract {
        seat: "8001".into(),
    });
    run.recv(&seat_reply(&invite, 487, "Request Terminated"), tcp);
    run.advance(secs(60));
    assert!(
        run.call.deadline().is_none_or(|d| d > run.now),
        "a deadline at {:?} while now is {:?}",
        run.call.deadline().map(|d| run.offset(d)),
        run.offset(run.now)
    );
    assert_eq!(run.call.outcome(), None, "still waiting");
}

#[test]
fn an_options_keep_alive_while_waiting_is_answered_200() {
    let (mut run, ok) = waiting();
    let options = parse(&no_body(caller_request(
        "OPTIONS",
        2,
        "z9hG4bKcaller.options",
        &to_tag(&ok).unwrap(),
    )));
    let sent = run.recv(&options, caller());
    assert!(one(responses(&sent, 200), "200 to the OPTIONS").cseq() == "2 OPTIONS");
}

/// Unanchored, a waiting caller is not answered: it hears 180 again every
/// minute so no proxy on the way gives up on it (§13.3.1.1, Timer C).
#[test]
fn an_unanswered_waiting_caller_hears_ringing_again_every_minute() {
    let t0 = Instant::now();
    let mut s = settings();
    s.queue = Some(plan("general", vec![]));
    let (mut run, out) = Run::start(Registrar::new(), t0, s, vec![]);
    let sent = run.take(out, t0);
    one(responses(&sent, 180), "180 at once");
    assert!(responses(&sent, 200).is_empty(), "nothing to answer with");
    let sent = run.advance(secs(59));
    assert!(responses(&sent, 180).is_empty());
    let sent = run.advance(secs(61));
    one(responses(&sent, 180), "180 again after a minute");
    let sent = run.advance(secs(121));
    one(responses(&sent, 180), "and again");
    assert_eq!(run.call.outcome(), None);
}

/// Streams for a test: indices from 2 on, ports 30000, 30002, ...
#[derive(Debug)]
struct TestStreams(std::sync::atomic::AtomicUsize);

impl crate::call::call::StreamSource for TestStreams {
    fn open(&self) -> Option<(usize, SocketAddr)> {
        let i = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some((i, SocketAddr::from(([127, 0, 0, 1], 30000 + 2 * i as u16))))
    }
}

/// Ring-all: each seat rung at once is offered its own stream (its own
/// port in our SDP); the one that answers is paired with the caller.
#[test]
fn seats_rung_at_once_each_get_their_own_stream_and_the_answering_one_is_paired() {
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1)), ("8002", seat_peer(2))], t0);
    let mut s = anchored(false);
    s.queue = Some(plan("general", vec![]));
    if let Some(m) = s.media.as_mut() {
        m.streams = Some(std::sync::Arc::new(TestStreams(2.into())));
    }
    let (mut run, out) = Run::start(reg, t0, s, vec![]);
    let sent = run.take(out, t0);
    let ok = one(responses(&sent, 200), "200").msg.clone();
    run.recv(&caller_ack_2xx(&to_tag(&ok).unwrap()), caller());
    let first = run.offer("8001");
    let second = run.offer("8002");
    let port = |m: &Message| {
        let body = String::from_utf8_lossy(&m.body).into_owned();
        body.lines()
            .find(|l| l.starts_with("m=audio "))
            .and_then(|l| l.split(' ').nth(1))
            .map(str::to_string)
            .unwrap()
    };
    assert_eq!(
        port(&first),
        "20002",
        "the first seat has the second stream"
    );
    assert_eq!(
        port(&second),
        "30004",
        "the second seat a stream of its own"
    );
    run.recv(&seat_reply(&second, 180, "Ringing"), seat_peer(2));
    run.recv(&seat_ok(&second), seat_peer(2));
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [0, 2] }");
    assert!(
        run.media
            .iter()
            .any(|m| m.starts_with("Remote { leg: 2, addr: Some(192.0.2.21:50000)")),
        "{:?}",
        run.media
    );
    assert_eq!(run.call.joined_stream(), 2, "recorded as the far leg");
}

#[path = "conference_tests.rs"]
mod conference;

#[path = "leader_tests.rs"]
mod leader;
