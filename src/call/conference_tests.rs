//! Three-way calls (三方) driven directly: the seat keys `*3` + number +
//! `#`, the driver answers with `add_party`, the party rings, answers,
//! leaves; the seat leaves; the caller hangs up. Synthetic messages and a
//! fake clock, as in the rest of the call's tests.
use super::*;

const T_TAG: &str = "subcentre-tag";
const SDP_T: &str = "v=0\r\no=sub 3 3 IN IP4 198.51.100.7\r\ns=-\r\n\
                     c=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 60000 RTP/AVP 0\r\n";

fn sub_centre() -> Target {
    Target::Trunk {
        id: "city_sub_centre".into(),
        uri: "sip:12366@198.51.100.7:5060".into(),
        peer: trunk_peer(),
        sources: vec![trunk_peer().addr.ip()],
    }
}

fn alternate() -> (Target, Peer) {
    let peer = Peer::udp(SocketAddr::from(([198, 51, 100, 8], 5060)));
    (
        Target::Trunk {
            id: "provincial_sub_centre".into(),
            uri: "sip:12366@198.51.100.8:5060".into(),
            peer,
            sources: vec![peer.addr.ip()],
        },
        peer,
    )
}

impl Run {
    /// Keys pressed on media stream `stream`, one by one.
    fn key(&mut self, stream: usize, keys: &str) -> Vec<Sent> {
        let mut sent = Vec::new();
        for c in keys.chars() {
            let out = self.call.on_digit(stream, digit(c), &self.reg, self.now);
            sent.extend(self.take(out, self.now));
        }
        sent
    }

    fn add_party(&mut self, number: &str, targets: Vec<Target>) -> Vec<Sent> {
        let out = self.call.add_party(number, targets, &self.reg, self.now);
        self.take(out, self.now)
    }

    fn has_media(&self, cmd: &str) -> bool {
        self.media.iter().any(|m| m == cmd)
    }
}

/// The sub-centre's 200 with its SDP.
fn trunk_ok(invite: &Message) -> Message {
    let mut r = reply(invite, 200, "OK", T_TAG);
    r.push(Name::Contact, "<sip:12366@198.51.100.7:5060>")
        .set(Name::ContentType, "application/sdp");
    r.body = Bytes::from_static(SDP_T.as_bytes());
    r
}

/// A request from the sub-centre in the dialog our `invite` made.
fn trunk_request(invite: &Message, method: &str, cseq: u32, branch: &str) -> Message {
    parse(&no_body(format!(
        "{method} sip:hotline@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 198.51.100.7:5060;branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: {};tag={T_TAG}\r\n\
         To: {}\r\n\
         Call-ID: {}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:12366@198.51.100.7:5060>\r\n",
        hv(invite, Name::To),
        hv(invite, Name::From),
        hv(invite, Name::CallId),
    )))
}

fn with_streams(mut s: Settings) -> Settings {
    if let Some(m) = s.media.as_mut() {
        m.streams = Some(std::sync::Arc::new(TestStreams(2.into())));
    }
    s
}

/// An anchored call answered by seat 8001 and ACKed, with streams to open
/// for more legs: (run, our tag to the caller, our INVITE to the seat).
fn bridged() -> (Run, String, Message) {
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1))], t0);
    let (mut run, out) = Run::start(reg, t0, with_streams(anchored(false)), vec![seat("8001")]);
    let sent = run.take(out, t0);
    let invite = one(requests(&sent, Method::Invite), "INVITE to the seat")
        .msg
        .clone();
    let sent = run.recv(&seat_ok(&invite), seat_peer(1));
    let ok = one(responses(&sent, 200), "200").msg.clone();
    let tag = to_tag(&ok).unwrap();
    run.recv(&caller_ack_2xx(&tag), caller());
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [0, 1] }");
    (run, tag, invite)
}

/// [`bridged`], then the seat keys `*312366#` and the sub-centre is rung:
/// also our INVITE to it.
fn ringing_party() -> (Run, String, Message, Message) {
    let (mut run, tag, seat_invite) = bridged();
    run.key(1, "*312366#");
    assert_eq!(run.three_way, ["12366"]);
    let sent = run.add_party("12366", vec![sub_centre()]);
    let invite = one(requests(&sent, Method::Invite), "INVITE to the sub-centre")
        .msg
        .clone();
    (run, tag, seat_invite, invite)
}

/// [`ringing_party`], answered: all three mixed.
fn three_way() -> (Run, String, Message, Message) {
    let (mut run, tag, seat_invite, invite) = ringing_party();
    let sent = run.recv(&trunk_ok(&invite), trunk_peer());
    one(requests(&sent, Method::Ack), "ACK to the sub-centre");
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [0, 1, 2] }");
    (run, tag, seat_invite, invite)
}

fn sdp_port(m: &Message) -> String {
    let body = String::from_utf8_lossy(&m.body).into_owned();
    body.lines()
        .find(|l| l.starts_with("m=audio "))
        .and_then(|l| l.split(' ').nth(1))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no m=audio in {body}"))
}

#[test]
fn the_seat_brings_in_a_sub_centre_all_three_are_mixed_and_the_seat_may_leave() {
    let (mut run, tag, seat_invite) = bridged();
    // The caller's keys are no feature code, whatever it presses.
    run.key(0, "*312366#");
    assert!(run.three_way.is_empty());
    run.key(1, "*312366#");
    assert_eq!(
        run.three_way,
        ["12366"],
        "the driver is asked to resolve it"
    );
    let sent = run.add_party("12366", vec![sub_centre()]);
    let invite = one(requests(&sent, Method::Invite), "INVITE to the sub-centre")
        .msg
        .clone();
    assert_eq!(invite_peer(&sent), trunk_peer());
    assert_eq!(uri(&invite), "sip:12366@198.51.100.7:5060");
    assert_eq!(sdp_port(&invite), "30004", "a media stream of its own");
    assert!(run.binds.contains(&hv(&invite, Name::CallId)));
    assert!(
        to_peer(&sent, caller()).is_empty(),
        "the caller is not disturbed"
    );
    // While it rings, caller and seat go on as they were.
    run.recv(&reply(&invite, 180, "Ringing", T_TAG), trunk_peer());
    assert!(!run.media.iter().any(|m| m.contains("[0, 1, 2]")));
    let sent = run.recv(&trunk_ok(&invite), trunk_peer());
    one(requests(&sent, Method::Ack), "ACK to the sub-centre");
    assert!(to_peer(&sent, caller()).is_empty());
    assert!(to_peer(&sent, seat_peer(1)).is_empty());
    assert!(
        run.media
            .iter()
            .any(|m| m.starts_with("Remote { leg: 2, addr: Some(198.51.100.7:60000)")),
        "{:?}",
        run.media
    );
    assert!(run.has_media("Watch { leg: 2 }"));
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [0, 1, 2] }");
    assert!(run.call.bridged());
    // The seat hangs up: caller and sub-centre stay, paired.
    let bye = parse(&no_body(seat_request(
        &seat_invite,
        "BYE",
        1,
        "z9hG4bKseat.bye",
    )));
    let sent = run.recv(&bye, seat_peer(1));
    one(responses(&sent, 200), "200 to the seat's BYE");
    assert!(
        requests(&sent, Method::Bye).is_empty(),
        "no one else is hung up"
    );
    let tail: Vec<&String> = run.media.iter().rev().take(2).collect();
    assert_eq!(tail[1], "Leave { leg: 1 }");
    assert_eq!(tail[0], "Bridge { legs: [0, 2] }");
    assert_eq!(run.call.outcome(), None);
    // The caller hangs up: the sub-centre gets the BYE.
    let bye = parse(&no_body(caller_request(
        "BYE",
        2,
        "z9hG4bKcaller.bye",
        &tag,
    )));
    let sent = run.recv(&bye, caller());
    one(responses(&sent, 200), "200 to the caller's BYE");
    let out = one(requests(&sent, Method::Bye), "BYE to the sub-centre");
    assert_eq!(out.peer, trunk_peer());
    assert_eq!(run.call.outcome(), Some(Outcome::Completed));
    let bye = out.msg.clone();
    run.recv(&reply(&bye, 200, "OK", T_TAG), trunk_peer());
    run.finish(100);
}

fn invite_peer(sent: &[Sent]) -> Peer {
    one(requests(sent, Method::Invite), "INVITE").peer
}

#[test]
fn the_caller_hanging_up_a_three_way_call_ends_it_for_all() {
    let (mut run, tag, _, _) = three_way();
    let bye = parse(&no_body(caller_request(
        "BYE",
        2,
        "z9hG4bKcaller.bye",
        &tag,
    )));
    let sent = run.recv(&bye, caller());
    let byes = requests(&sent, Method::Bye);
    assert_eq!(byes.len(), 2, "{:#?}", summary(&sent));
    assert!(byes.iter().any(|b| b.peer == seat_peer(1)));
    assert!(byes.iter().any(|b| b.peer == trunk_peer()));
    assert_eq!(run.call.outcome(), Some(Outcome::Completed));
    run.finish(200);
}

#[test]
fn the_party_leaving_puts_caller_and_seat_back_together() {
    let (mut run, tag, seat_invite, invite) = three_way();
    let bye = trunk_request(&invite, "BYE", 1, "z9hG4bKsub.bye");
    let sent = run.recv(&bye, trunk_peer());
    one(responses(&sent, 200), "200 to the sub-centre's BYE");
    assert!(requests(&sent, Method::Bye).is_empty());
    let tail: Vec<&String> = run.media.iter().rev().take(2).collect();
    assert_eq!(tail[1], "Leave { leg: 2 }");
    assert_eq!(tail[0], "Bridge { legs: [0, 1] }");
    // Still the seat's call: its hanging up ends it, and it can bring a
    // party in again.
    run.key(1, "*38002#");
    assert_eq!(run.three_way, ["12366", "8002"]);
    let bye = parse(&no_body(seat_request(
        &seat_invite,
        "BYE",
        1,
        "z9hG4bKseat.bye",
    )));
    let sent = run.recv(&bye, seat_peer(1));
    let out = one(requests(&sent, Method::Bye), "BYE to the caller");
    assert_eq!(out.peer, caller());
    assert_eq!(run.call.outcome(), Some(Outcome::Completed));
    let _ = tag;
}

#[test]
fn a_party_that_refuses_leaves_the_call_as_it_was_and_the_seat_is_told() {
    let (mut run, _, seat_invite, invite) = ringing_party();
    let sent = run.recv(&reply(&invite, 486, "Busy Here", T_TAG), trunk_peer());
    one(requests(&sent, Method::Ack), "ACK for the 486");
    assert!(to_peer(&sent, caller()).is_empty());
    let told = run.media.last().unwrap();
    assert!(
        told.starts_with("Prompt 1 ") && told.contains("three_way_failed"),
        "{told}"
    );
    assert!(!run.media.iter().any(|m| m.contains("[0, 1, 2]")));
    // The seat's call goes on: its BYE still ends it.
    let bye = parse(&no_body(seat_request(
        &seat_invite,
        "BYE",
        1,
        "z9hG4bKseat.bye",
    )));
    let sent = run.recv(&bye, seat_peer(1));
    one(requests(&sent, Method::Bye), "BYE to the caller");
    run.finish(200);
}

#[test]
fn a_party_that_rings_out_is_cancelled_and_the_next_target_tried() {
    let (mut run, _, _) = bridged();
    let (alt, alt_peer) = alternate();
    run.key(1, "*312366#");
    let sent = run.add_party("12366", vec![sub_centre(), alt]);
    let first = one(requests(&sent, Method::Invite), "INVITE").msg.clone();
    run.recv(&reply(&first, 180, "Ringing", T_TAG), trunk_peer());
    // An alternate follows: the first rings for a seat's ring time (20 s).
    let sent = run.advance(secs(19));
    assert!(requests(&sent, Method::Cancel).is_empty());
    let sent = run.advance(secs(21));
    let cancels = requests(&sent, Method::Cancel);
    assert!(!cancels.is_empty(), "CANCEL to the first");
    assert!(cancels.iter().all(|c| c.peer == trunk_peer()));
    let second = requests(&sent, Method::Invite);
    assert!(!second.is_empty() && second.iter().all(|i| i.peer == alt_peer));
    let second = second[0].msg.clone();
    run.recv(&reply(&second, 180, "Ringing", "alt-tag"), alt_peer);
    // The last target rings for the caller's patience (60 s), then is
    // given up too, and the seat hears so.
    let sent = run.advance(secs(20 + 61));
    assert!(
        requests(&sent, Method::Cancel)
            .iter()
            .any(|c| c.peer == alt_peer),
        "CANCEL to the alternate: {:#?}",
        summary(&sent)
    );
    assert!(
        run.media
            .iter()
            .any(|m| m.starts_with("Prompt 1 ") && m.contains("three_way_failed"))
    );
    assert_eq!(run.call.outcome(), None, "caller and seat still talk");
    assert!(!run.media.iter().any(|m| m.contains("[0, 1, 2]")));
}

#[test]
fn star_one_cancels_a_ringing_party_and_hangs_up_a_joined_one() {
    let (mut run, _, _, invite) = ringing_party();
    // §9.1: the CANCEL waits for a provisional response.
    run.recv(&reply(&invite, 180, "Ringing", T_TAG), trunk_peer());
    let sent = run.key(1, "*1");
    let cancel = one(requests(&sent, Method::Cancel), "CANCEL to the sub-centre");
    assert_eq!(cancel.peer, trunk_peer());
    assert_eq!(run.call.outcome(), None);

    let (mut run, _, _, _) = three_way();
    let sent = run.key(1, "*1");
    let bye = one(requests(&sent, Method::Bye), "BYE to the sub-centre");
    assert_eq!(bye.peer, trunk_peer());
    let tail: Vec<&String> = run.media.iter().rev().take(2).collect();
    assert_eq!(tail[1], "Leave { leg: 2 }");
    assert_eq!(tail[0], "Bridge { legs: [0, 1] }");
    assert_eq!(run.call.outcome(), None);
}

#[test]
fn a_three_way_is_refused_without_a_target_with_one_already_or_while_not_bridged() {
    // No target: nothing placed, the seat is told.
    let (mut run, _, _) = bridged();
    let sent = run.add_party("99999", vec![]);
    assert!(requests(&sent, Method::Invite).is_empty());
    assert!(run.media.last().unwrap().contains("three_way_failed"));
    // A party already ringing: a second `*3` is not passed on.
    let (mut run, _, _, _) = ringing_party();
    run.key(1, "*38002#");
    assert_eq!(run.three_way, ["12366"]);
    assert!(run.media.last().unwrap().contains("three_way_failed"));
    let sent = run.add_party("8002", vec![seat("8002")]);
    assert!(requests(&sent, Method::Invite).is_empty());
    // A caller still being connected: no seat to ask, nothing placed.
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1))], t0);
    let (mut run, out) = Run::start(reg, t0, with_streams(anchored(false)), vec![seat("8001")]);
    run.take(out, t0);
    let sent = run.add_party("12366", vec![sub_centre()]);
    assert!(requests(&sent, Method::Invite).is_empty());
    // Without streams to open (no port free): refused, not placed on the
    // seat's stream.
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1))], t0);
    let (mut run, out) = Run::start(reg, t0, anchored(false), vec![seat("8001")]);
    let sent = run.take(out, t0);
    let invite = one(requests(&sent, Method::Invite), "INVITE").msg.clone();
    run.recv(&seat_ok(&invite), seat_peer(1));
    let sent = run.add_party("12366", vec![sub_centre()]);
    assert!(requests(&sent, Method::Invite).is_empty());
    assert!(run.media.last().unwrap().contains("three_way_failed"));
}

#[test]
fn a_seat_rung_as_the_party_is_reserved_and_freed_when_it_leaves() {
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1)), ("8002", seat_peer(2))], t0);
    let (mut run, out) = Run::start(reg, t0, with_streams(anchored(false)), vec![seat("8001")]);
    let sent = run.take(out, t0);
    let invite = one(requests(&sent, Method::Invite), "INVITE").msg.clone();
    run.recv(&seat_ok(&invite), seat_peer(1));
    let sent = run.add_party("8002", vec![seat("8002")]);
    let party = one(requests(&sent, Method::Invite), "INVITE to 8002");
    assert_eq!(party.peer, seat_peer(2));
    let party = party.msg.clone();
    assert!(
        !run.reg.try_reserve("8002", 99),
        "8002 is held by this call"
    );
    assert!(
        run.has_media("Seat 8002 busy=true"),
        "and the ACD offers it nothing meanwhile"
    );
    let sent = run.recv(&seat_reply(&party, 486, "Busy Here"), seat_peer(2));
    one(requests(&sent, Method::Ack), "ACK");
    assert!(run.reg.try_reserve("8002", 99), "and free once it refused");
    assert_eq!(run.media.last().unwrap(), "Seat 8002 busy=false");
}

#[test]
fn a_hold_in_a_three_way_call_is_answered_here_and_plays_no_music_over_the_others() {
    let (mut run, tag, _, _) = three_way();
    let before = run.media.len();
    let hold = parse(&with_body(
        caller_request("INVITE", 2, "z9hG4bKcaller.hold", &tag),
        "application/sdp",
        "v=0\r\no=caller 1 2 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=sendonly\r\n",
    ));
    let sent = run.recv(&hold, caller());
    one(responses(&sent, 200), "200 to the hold");
    assert!(requests(&sent, Method::Invite).is_empty());
    assert!(
        !run.media[before..].iter().any(|m| m.starts_with("Play ")),
        "{:?}",
        &run.media[before..]
    );
    // Requests that would be relayed in a call of two have no one other
    // leg here.
    let info = parse(&no_body(caller_request(
        "INFO",
        3,
        "z9hG4bKcaller.info",
        &tag,
    )));
    let sent = run.recv(&info, caller());
    one(responses(&sent, 403), "403 to the INFO");
}

#[test]
fn a_queued_call_tells_the_acd_once_when_its_seat_leaves_a_three_way_call() {
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1))], t0);
    let mut s = with_streams(anchored(false));
    s.queue = Some(plan("general", vec![]));
    let (mut run, out) = Run::start(reg, t0, s, vec![]);
    let sent = run.take(out, t0);
    let ok = one(responses(&sent, 200), "200").msg.clone();
    let tag = to_tag(&ok).unwrap();
    run.recv(&caller_ack_2xx(&tag), caller());
    let seat_invite = run.offer("8001");
    run.recv(&seat_ok(&seat_invite), seat_peer(1));
    let s = run.call.joined_stream();
    run.key(s, "*312366#");
    assert_eq!(run.three_way, ["12366"]);
    let sent = run.add_party("12366", vec![sub_centre()]);
    let invite = one(requests(&sent, Method::Invite), "INVITE").msg.clone();
    run.recv(&trunk_ok(&invite), trunk_peer());
    assert!(run.media.last().unwrap().starts_with("Bridge { legs: [0, "));
    let bye = parse(&no_body(seat_request(
        &seat_invite,
        "BYE",
        1,
        "z9hG4bKseat.bye",
    )));
    run.recv(&bye, seat_peer(1));
    let ended = |acd: &[ToAcd]| {
        acd.iter()
            .filter(|m| matches!(m, ToAcd::Ended { .. }))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ended(&run.acd),
        [ToAcd::Ended { by_seat: true }],
        "the seat wraps up while the call goes on"
    );
    let bye = parse(&no_body(caller_request(
        "BYE",
        2,
        "z9hG4bKcaller.bye",
        &tag,
    )));
    run.recv(&bye, caller());
    assert_eq!(run.call.outcome(), Some(Outcome::Completed));
    assert_eq!(ended(&run.acd).len(), 1, "told once: {:?}", run.acd);
}

#[test]
fn a_party_that_answers_is_recorded_on_its_own_stream() {
    let (run, _, _, _) = three_way();
    assert!(run.has_media("Record 2 party2"), "{:?}", run.media);
}

#[test]
fn a_silent_party_is_dropped_and_caller_and_seat_go_on() {
    let (mut run, _, _, _) = three_way();
    let out = run.call.on_media_timeout(2, &run.reg, run.now);
    let sent = run.take(out, run.now);
    let bye = one(requests(&sent, Method::Bye), "BYE to the silent party");
    assert_eq!(bye.peer, trunk_peer());
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [0, 1] }");
    assert_eq!(run.call.outcome(), None);
    // Silence on the caller's or the seat's stream still ends it all.
    let (mut run, _, _, _) = three_way();
    let out = run.call.on_media_timeout(1, &run.reg, run.now);
    let sent = run.take(out, run.now);
    assert_eq!(
        requests(&sent, Method::Bye).len(),
        3,
        "{:#?}",
        summary(&sent)
    );
    assert_eq!(run.call.outcome(), Some(Outcome::Completed));
}

#[test]
fn a_seat_leaving_a_direct_three_way_call_is_free_at_once() {
    let (mut run, _, seat_invite, _) = three_way();
    let bye = parse(&no_body(seat_request(
        &seat_invite,
        "BYE",
        1,
        "z9hG4bKseat.bye",
    )));
    run.recv(&bye, seat_peer(1));
    assert!(run.has_media("Seat 8001 busy=false"), "{:?}", run.media);
    assert!(run.acd.is_empty(), "not the ACD's call");
}

#[path = "transfer_tests.rs"]
mod transfer;
