//! The callback machine driven directly: the seat's phone and the carrier
//! played by hand, synthetic time.
use super::*;
use crate::call::registrar::Update;
use crate::sip::transaction::Timers;

const SDP_SEAT: &str = "v=0\r\no=seat 2 2 IN IP4 192.0.2.21\r\ns=-\r\n\
                        c=IN IP4 192.0.2.21\r\nt=0 0\r\nm=audio 50000 RTP/AVP 8 101\r\n\
                        a=rtpmap:101 telephone-event/8000\r\n";
const SDP_CITIZEN: &str = "v=0\r\no=carrier 3 3 IN IP4 198.51.100.7\r\ns=-\r\n\
                           c=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 60000 RTP/AVP 8\r\n";
const TICKET: &str = "2612010007";

fn seat_peer() -> Peer {
    Peer::udp(SocketAddr::from(([192, 0, 2, 21], 5062)))
}

fn trunk_peer(n: u8) -> Peer {
    Peer::udp(SocketAddr::from(([198, 51, 100, n], 5060)))
}

fn trunk(n: u8) -> Target {
    Target::Trunk {
        id: format!("carrier{n}"),
        uri: format!("sip:13800138000@{}", trunk_peer(n).addr),
        peer: trunk_peer(n),
        sources: vec![trunk_peer(n).addr.ip()],
    }
}

fn settings() -> Settings {
    Settings {
        timers: Timers::default(),
        local: "127.0.0.1:5060".into(),
        seat_ring: Duration::from_secs(20),
        max_ring: Duration::from_secs(60),
        response_timeout: Duration::from_secs(40),
        retry_after: None,
        media: None,
        own_names: Vec::new(),
        queue: None,
        announce: None,
        leader: None,
        queue_callback: None,
    }
}

fn plan(trunks: u8, survey: bool, t0: Instant) -> CallbackPlan {
    CallbackPlan {
        ticket: TICKET.into(),
        queue: "general".into(),
        line: "12345".into(),
        skill: None,
        expert_seats: Vec::new(),
        arrival: t0,
        citizen: (7..7 + trunks).map(trunk).collect(),
        ring: Duration::from_secs(30),
        survey,
        rtp: [
            SocketAddr::from(([127, 0, 0, 1], 20000)),
            SocketAddr::from(([127, 0, 0, 1], 20002)),
        ],
        wait_cap: survey.then_some(WAIT_CAP),
    }
}

struct Run {
    cb: Callback,
    reg: Registrar,
    now: Instant,
    sent: Vec<(Peer, Message)>,
    acd: Vec<ToAcd>,
    media: Vec<String>,
    prompts: Vec<(usize, String)>,
}

impl Run {
    fn new(trunks: u8, survey: bool) -> Run {
        let t0 = Instant::now();
        let reg = Registrar::new();
        let contacts = [(format!("sip:8001@{}", seat_peer().addr), 3600)];
        reg.register(
            "8001",
            Update::Contacts(&contacts),
            seat_peer(),
            "reg-8001",
            1,
            10,
            t0,
        )
        .unwrap();
        let (cb, out) = Callback::start(9, settings(), plan(trunks, survey, t0), t0);
        let mut run = Run {
            cb,
            reg,
            now: t0,
            sent: Vec::new(),
            acd: Vec::new(),
            media: Vec::new(),
            prompts: Vec::new(),
        };
        run.take(out);
        run
    }

    fn take(&mut self, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Send(peer, bytes) => {
                    self.sent
                        .push((peer, Message::parse(bytes).expect("parses")));
                }
                Output::Acd(m) => self.acd.push(m),
                Output::Media(c) => self.media.push(format!("{c:?}")),
                Output::Prompt { leg, items, .. } => self.prompts.push((leg, format!("{items:?}"))),
                _ => {}
            }
        }
    }

    fn acd(&mut self, cmd: FromAcd) {
        let out = self.cb.on_acd(cmd, &self.reg, self.now);
        self.take(out);
    }

    fn deliver(&mut self, msg: Message, peer: Peer) {
        let out = self.cb.on_message(msg, peer, &self.reg, self.now);
        self.take(out);
    }

    fn prompt_done(&mut self, stream: usize) {
        let out = self.cb.on_prompt_done(stream, &self.reg, self.now);
        self.take(out);
    }

    fn key(&mut self, c: char) {
        let code = match c {
            '0'..='9' => c as u8 - b'0',
            '*' => 10,
            _ => 11,
        };
        let out = self.cb.on_digit(
            1,
            Digit::from_event_code(code).unwrap(),
            &self.reg,
            self.now,
        );
        self.take(out);
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        let out = self.cb.on_timer(&self.reg, self.now);
        self.take(out);
    }

    /// The last request of `method` sent to `peer`.
    fn last(&self, method: Method, peer: Peer) -> Message {
        self.sent
            .iter()
            .rev()
            .find(|(p, m)| *p == peer && m.method() == Some(&method))
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| panic!("no {method} to {}", peer.addr))
    }

    fn count(&self, method: Method, peer: Peer) -> usize {
        self.sent
            .iter()
            .filter(|(p, m)| *p == peer && m.method() == Some(&method))
            .count()
    }

    fn answer(&mut self, invite: &Message, peer: Peer, sdp: &str) {
        let mut ok = invite.response(200, "OK", Some("far-tag"));
        ok.push(Name::Contact, format!("<sip:far@{}>", peer.addr));
        ok.set(Name::ContentType, "application/sdp");
        ok.body = Bytes::from(sdp.to_string());
        self.deliver(ok, peer);
    }

    fn refuse(&mut self, invite: &Message, peer: Peer, code: u16) {
        let r = invite.response(code, "No", Some("far-tag"));
        self.deliver(r, peer);
    }

    /// A BYE from the far end of the dialog `invite` made (answered).
    fn bye_from(&mut self, invite: &Message, peer: Peer) {
        let text = format!(
            "BYE sip:hotline@127.0.0.1:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP {};branch=z9hG4bKbye{}\r\n\
             Max-Forwards: 70\r\nFrom: {};tag=far-tag\r\nTo: {}\r\nCall-ID: {}\r\n\
             CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
            peer.addr,
            peer.addr.port(),
            invite.header(&Name::To).unwrap(),
            invite.header(&Name::From).unwrap(),
            invite.call_id().unwrap(),
        );
        self.deliver(Message::parse(Bytes::from(text)).unwrap(), peer);
    }

    /// The seat answered and heard the whisper: the citizen is dialled.
    fn to_citizen(trunks: u8, survey: bool) -> (Run, Message) {
        let mut run = Run::new(trunks, survey);
        run.acd(FromAcd::Offer {
            seat: "8001".into(),
            ring: Duration::from_secs(15),
        });
        let seat_invite = run.last(Method::Invite, seat_peer());
        run.answer(&seat_invite, seat_peer(), SDP_SEAT);
        run.prompt_done(0);
        (run, seat_invite)
    }
}

#[test]
fn the_seat_is_rung_first_and_named_the_ticket_and_the_citizen_only_after_the_whisper() {
    let mut run = Run::new(1, true);
    assert!(matches!(&run.acd[..], [ToAcd::Join { queue, .. }] if queue == "general"));
    assert!(
        run.sent.is_empty(),
        "nothing is dialled before a seat is offered"
    );
    run.acd(FromAcd::Offer {
        seat: "8001".into(),
        ring: Duration::from_secs(15),
    });
    let invite = run.last(Method::Invite, seat_peer());
    assert_eq!(
        invite
            .header(&Name::Other(TICKET_HEADER.into()))
            .map(|v| v.to_string()),
        Some(TICKET.to_string())
    );
    let from = invite.header(&Name::From).unwrap().to_string();
    assert!(
        from.starts_with(&format!("\"回访 {TICKET}\" <sip:{TICKET}@")),
        "{from}"
    );
    assert!(String::from_utf8_lossy(&invite.body).contains("m=audio 20000"));
    assert_eq!(run.count(Method::Invite, trunk_peer(7)), 0);
    run.answer(&invite, seat_peer(), SDP_SEAT);
    assert_eq!(run.count(Method::Ack, seat_peer()), 1);
    assert!(run.acd.contains(&ToAcd::Answered {
        seat: "8001".into()
    }));
    let (leg, whisper) = run.prompts.last().unwrap().clone();
    assert_eq!(leg, 0);
    assert!(
        whisper.contains(WHISPER) && whisper.contains(TICKET),
        "{whisper}"
    );
    assert_eq!(
        run.count(Method::Invite, trunk_peer(7)),
        0,
        "not during the whisper"
    );
    run.prompt_done(0);
    let citizen = run.last(Method::Invite, trunk_peer(7));
    assert_eq!(
        citizen.request_uri().unwrap().to_string(),
        "sip:13800138000@198.51.100.7:5060"
    );
    assert!(String::from_utf8_lossy(&citizen.body).contains("m=audio 20002"));
    run.answer(&citizen, trunk_peer(7), SDP_CITIZEN);
    assert!(run.cb.bridged());
    assert!(
        run.media
            .last()
            .unwrap()
            .contains("Bridge { legs: [0, 1] }")
    );
    assert_eq!(run.cb.outcome(), None);
    // The seat hangs up: the citizen is asked.
    run.bye_from(&invite, seat_peer());
    assert!(run.acd.contains(&ToAcd::Ended { by_seat: true }));
    let (leg, survey) = run.prompts.last().unwrap().clone();
    assert_eq!(leg, 1);
    assert!(survey.contains(SURVEY));
    assert_eq!(
        run.count(Method::Bye, trunk_peer(7)),
        0,
        "the citizen stays for the survey"
    );
    run.prompt_done(1);
    run.key('1');
    assert_eq!(run.cb.outcome(), Some(Outcome::Satisfied));
    assert!(run.prompts.last().unwrap().1.contains(THANKS));
    run.prompt_done(1);
    let bye = run.last(Method::Bye, trunk_peer(7));
    let ok = bye.response(200, "OK", None);
    run.deliver(ok, trunk_peer(7));
    assert_eq!(run.cb.seat(), Some("8001"));
    assert!(run.cb.is_finished() || run.cb.deadline().is_some());
}

#[test]
fn a_wrong_key_asks_again_and_two_silences_leave_the_callback_unrated() {
    let (mut run, seat_invite) = Run::to_citizen(1, true);
    let citizen = run.last(Method::Invite, trunk_peer(7));
    run.answer(&citizen, trunk_peer(7), SDP_CITIZEN);
    run.bye_from(&seat_invite, seat_peer());
    run.prompt_done(1);
    run.key('7');
    let asked = run
        .prompts
        .iter()
        .filter(|(_, p)| p.contains(SURVEY))
        .count();
    assert_eq!(asked, 2);
    assert_eq!(run.cb.outcome(), None);
    run.key('2');
    assert_eq!(run.cb.outcome(), Some(Outcome::Unsatisfied));

    let (mut run, seat_invite) = Run::to_citizen(1, true);
    let citizen = run.last(Method::Invite, trunk_peer(7));
    run.answer(&citizen, trunk_peer(7), SDP_CITIZEN);
    run.bye_from(&seat_invite, seat_peer());
    run.prompt_done(1);
    run.advance(SURVEY_WAIT);
    run.prompt_done(1);
    assert_eq!(run.cb.outcome(), None, "asked once more");
    run.advance(SURVEY_WAIT);
    assert_eq!(run.cb.outcome(), Some(Outcome::Unrated));
    run.prompt_done(1);
    assert_eq!(run.count(Method::Bye, trunk_peer(7)), 1);
}

#[test]
fn a_busy_citizen_is_not_tried_on_another_trunk_and_the_seat_hears_so_then_is_let_go() {
    let (mut run, _) = Run::to_citizen(2, true);
    let citizen = run.last(Method::Invite, trunk_peer(7));
    run.refuse(&citizen, trunk_peer(7), 486);
    assert_eq!(run.cb.outcome(), Some(Outcome::Busy));
    assert_eq!(run.count(Method::Invite, trunk_peer(8)), 0);
    assert!(run.prompts.last().unwrap().1.contains(NOT_REACHED));
    run.prompt_done(0);
    assert_eq!(run.count(Method::Bye, seat_peer()), 1);
    assert!(run.acd.contains(&ToAcd::Ended { by_seat: false }));
}

#[test]
fn a_failing_trunk_gives_way_to_its_alternate_and_none_left_is_a_failure() {
    let (mut run, _) = Run::to_citizen(2, true);
    let first = run.last(Method::Invite, trunk_peer(7));
    run.refuse(&first, trunk_peer(7), 503);
    let second = run.last(Method::Invite, trunk_peer(8));
    assert_eq!(run.cb.outcome(), None);
    run.refuse(&second, trunk_peer(8), 502);
    assert_eq!(run.cb.outcome(), Some(Outcome::Failed));
}

#[test]
fn a_citizen_who_does_not_answer_is_cancelled_at_the_ring_limit() {
    let (mut run, _) = Run::to_citizen(1, true);
    let citizen = run.last(Method::Invite, trunk_peer(7));
    let ringing = citizen.response(180, "Ringing", Some("far-tag"));
    run.deliver(ringing, trunk_peer(7));
    run.advance(Duration::from_secs(30));
    assert_eq!(run.count(Method::Cancel, trunk_peer(7)), 1);
    assert_eq!(run.cb.outcome(), Some(Outcome::NoAnswer));
}

#[test]
fn the_citizen_hanging_up_while_talking_ends_the_call_unrated_and_frees_the_seat() {
    let (mut run, _) = Run::to_citizen(1, true);
    let citizen = run.last(Method::Invite, trunk_peer(7));
    run.answer(&citizen, trunk_peer(7), SDP_CITIZEN);
    run.bye_from(&citizen, trunk_peer(7));
    assert_eq!(run.cb.outcome(), Some(Outcome::Unrated));
    assert_eq!(run.count(Method::Bye, seat_peer()), 1);
    assert!(run.acd.contains(&ToAcd::Ended { by_seat: false }));
}

#[test]
fn the_seat_hanging_up_before_the_citizen_answers_cancels_the_citizen() {
    let (mut run, seat_invite) = Run::to_citizen(1, true);
    let citizen = run.last(Method::Invite, trunk_peer(7));
    run.deliver(
        citizen.response(180, "Ringing", Some("far-tag")),
        trunk_peer(7),
    );
    run.bye_from(&seat_invite, seat_peer());
    assert_eq!(run.count(Method::Cancel, trunk_peer(7)), 1);
    assert_eq!(run.cb.outcome(), Some(Outcome::Failed));
    assert!(run.acd.contains(&ToAcd::Ended { by_seat: true }));
}

#[test]
fn a_queue_that_lets_the_callback_go_dials_nobody() {
    let mut run = Run::new(1, true);
    run.acd(FromAcd::Leave {
        items: Vec::new(),
        code: 480,
        reason: "max wait".into(),
    });
    assert_eq!(run.cb.outcome(), Some(Outcome::NoSeat));
    assert!(run.sent.is_empty());
    assert!(run.cb.is_finished());
}

#[test]
fn a_seat_not_registered_is_refused_to_the_acd_and_an_offer_that_rings_out_reported() {
    let mut run = Run::new(1, true);
    run.acd(FromAcd::Offer {
        seat: "8009".into(),
        ring: Duration::from_secs(15),
    });
    assert!(run.acd.contains(&ToAcd::OfferFailed {
        seat: "8009".into(),
        no_answer: false
    }));
    run.acd(FromAcd::Offer {
        seat: "8001".into(),
        ring: Duration::from_secs(15),
    });
    run.acd(FromAcd::Retract {
        seat: "8001".into(),
    });
    assert_eq!(
        run.count(Method::Cancel, seat_peer()),
        0,
        "CANCEL waits for a provisional"
    );
    let invite = run.last(Method::Invite, seat_peer());
    run.deliver(
        invite.response(180, "Ringing", Some("far-tag")),
        seat_peer(),
    );
    assert_eq!(run.count(Method::Cancel, seat_peer()), 1);
    run.refuse(&invite, seat_peer(), 487);
    // The ACD withdrew it itself: nothing more to report.
    assert_eq!(run.acd.len(), 2, "{:?}", run.acd);
    assert_eq!(run.count(Method::Ack, seat_peer()), 1);
}

#[test]
fn a_callback_without_survey_ends_when_the_seat_hangs_up() {
    let (mut run, seat_invite) = Run::to_citizen(1, false);
    let citizen = run.last(Method::Invite, trunk_peer(7));
    run.answer(&citizen, trunk_peer(7), SDP_CITIZEN);
    run.bye_from(&seat_invite, seat_peer());
    assert_eq!(run.cb.outcome(), Some(Outcome::Unrated));
    assert_eq!(run.count(Method::Bye, trunk_peer(7)), 1);
}

#[test]
fn no_seat_in_time_leaves_the_queue_and_costs_the_citizen_no_attempt() {
    let mut run = Run::new(1, true);
    run.advance(WAIT_CAP);
    assert_eq!(run.cb.outcome(), Some(Outcome::NoSeat));
    assert_eq!(run.acd.last(), Some(&ToAcd::Left));
    assert!(run.sent.is_empty());
    assert!(run.cb.is_finished());
}

#[test]
fn the_seat_hanging_up_during_the_whisper_is_no_attempt_on_the_citizen() {
    let mut run = Run::new(1, true);
    run.acd(FromAcd::Offer {
        seat: "8001".into(),
        ring: Duration::from_secs(15),
    });
    let invite = run.last(Method::Invite, seat_peer());
    run.answer(&invite, seat_peer(), SDP_SEAT);
    run.bye_from(&invite, seat_peer());
    assert_eq!(run.cb.outcome(), Some(Outcome::NoSeat));
    assert_eq!(run.count(Method::Invite, trunk_peer(7)), 0);
    assert!(run.acd.contains(&ToAcd::Ended { by_seat: true }));
}

#[test]
fn a_refresh_without_an_offer_is_answered_not_refused() {
    let (mut run, seat_invite) = Run::to_citizen(1, true);
    let citizen = run.last(Method::Invite, trunk_peer(7));
    run.answer(&citizen, trunk_peer(7), SDP_CITIZEN);
    let text = format!(
        "INVITE sip:hotline@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {};branch=z9hG4bKreinv\r\n\
         Max-Forwards: 70\r\nFrom: {};tag=far-tag\r\nTo: {}\r\nCall-ID: {}\r\n\
         CSeq: 3 INVITE\r\nContact: <sip:far@{}>\r\nContent-Length: 0\r\n\r\n",
        seat_peer().addr,
        seat_invite.header(&Name::To).unwrap(),
        seat_invite.header(&Name::From).unwrap(),
        seat_invite.call_id().unwrap(),
        seat_peer().addr,
    );
    run.deliver(Message::parse(Bytes::from(text)).unwrap(), seat_peer());
    let ok = run
        .sent
        .iter()
        .rev()
        .find(|(p, m)| *p == seat_peer() && m.code() == Some(200))
        .map(|(_, m)| m.clone())
        .expect("a 200 for the re-INVITE");
    assert!(
        String::from_utf8_lossy(&ok.body).contains("m=audio 20000"),
        "our offer"
    );
}
