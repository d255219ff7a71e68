//! Blind transfers driven directly: the seat's REFER (or `#1` + number +
//! `#`), the driver's answer through `transfer_to`, the target ringing,
//! answering or failing, the seat's NOTIFYs, and the audit.
use super::*;
use crate::call::call::transfer::{Kind, Result as Done};

/// The seat's REFER in its dialog, with `headers`.
fn refer(seat_invite: &Message, cseq: u32, branch: &str, headers: &str) -> Message {
    parse(&no_body(format!(
        "{}{headers}",
        seat_request(seat_invite, "REFER", cseq, branch)
    )))
}

fn to_sub_centre(seat_invite: &Message) -> Message {
    refer(
        seat_invite,
        2,
        "z9hG4bKseat.refer",
        "Refer-To: <sip:12366@127.0.0.1>\r\nReferred-By: <sip:13800000000@evil.example>\r\n",
    )
}

impl Run {
    fn transfer_to(&mut self, number: &str, targets: Vec<Target>) -> Vec<Sent> {
        let out = self.call.transfer_to(number, targets, &self.reg, self.now);
        self.take(out, self.now)
    }
}

fn body(m: &Message) -> String {
    String::from_utf8_lossy(&m.body).into_owned()
}

/// A bridged call whose seat REFERred it to the sub-centre, accepted:
/// (run, our tag to the caller, our INVITE to the seat, our INVITE to the
/// sub-centre, the NOTIFY 100).
fn referred() -> (Run, String, Message, Message, Message) {
    let (mut run, tag, seat_invite) = bridged();
    let sent = run.recv(&to_sub_centre(&seat_invite), seat_peer(1));
    assert!(sent.is_empty(), "nothing before the table answers");
    assert_eq!(run.transfers, ["12366"]);
    let sent = run.transfer_to("12366", vec![sub_centre()]);
    let accepted = one(responses(&sent, 202), "202 to the REFER");
    assert_eq!(accepted.peer, seat_peer(1));
    let notify = one(requests(&sent, Method::Notify), "NOTIFY to the seat");
    assert_eq!(notify.peer, seat_peer(1));
    let invite = one(requests(&sent, Method::Invite), "INVITE to the sub-centre")
        .msg
        .clone();
    (run, tag, seat_invite, invite, notify.msg.clone())
}

#[test]
fn a_refer_to_the_sub_centre_rings_it_and_its_answer_takes_the_seats_place() {
    let (mut run, _tag, seat_invite, invite, notify) = referred();
    // NOTIFY 100 at once (RFC 3515 §2.4.5), in the seat's dialog.
    assert_eq!(hv(&notify, Name::CallId), hv(&seat_invite, Name::CallId));
    assert_eq!(hv(&notify, Name::Other("Event".into())), "refer;id=2");
    assert_eq!(
        hv(&notify, Name::Other("Subscription-State".into())),
        "active;expires=90"
    );
    assert_eq!(
        hv(&notify, Name::ContentType),
        "message/sipfrag;version=2.0"
    );
    assert_eq!(body(&notify), "SIP/2.0 100 Trying\r\n");
    // The target: the table's trunk, Referred-By our seat (not the REFER's).
    assert_eq!(uri(&invite), "sip:12366@198.51.100.7:5060");
    assert_eq!(
        hv(&invite, Name::Other("Referred-By".into())),
        "<sip:8001@127.0.0.1:5060>"
    );
    assert!(!text(&invite).contains("evil.example"));
    // The caller hears the notice and music; nobody hears anybody.
    assert!(run.has_media("Bridge { legs: [] }"), "{:?}", run.media);
    assert!(
        run.media
            .iter()
            .any(|m| m.starts_with("Prompt 0 [Prompt(\"transfer_notice\")] hold=true"))
    );
    run.recv(&reply(&invite, 180, "Ringing", T_TAG), trunk_peer());
    run.now += secs(3);
    let sent = run.recv(&trunk_ok(&invite), trunk_peer());
    one(requests(&sent, Method::Ack), "ACK to the sub-centre");
    // The seat hears 200 OK, then is hung up: NOTIFY before BYE.
    let to_seat = to_peer(&sent, seat_peer(1));
    assert_eq!(to_seat.len(), 2, "{:#?}", summary(&sent));
    assert!(to_seat[0].is(Method::Notify));
    assert_eq!(body(&to_seat[0].msg), "SIP/2.0 200 OK\r\n");
    assert_eq!(
        hv(&to_seat[0].msg, Name::Other("Subscription-State".into())),
        "terminated;reason=noresource"
    );
    assert!(to_seat[1].is(Method::Bye));
    assert!(to_peer(&sent, caller()).is_empty(), "the caller stays");
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [0, 2] }");
    assert!(
        run.has_media("Seat 8001 busy=false"),
        "a direct call's seat is free"
    );
    assert_eq!(run.audits.len(), 1);
    let a = &run.audits[0];
    assert_eq!((a.kind, a.result), (Kind::Blind, Done::Completed));
    assert_eq!(a.seat, "8001");
    assert_eq!(a.number, "12366");
    assert_eq!(a.target, "city_sub_centre");
    assert_eq!(a.answered_after, Some(secs(3)));
    assert_eq!(run.call.outcome(), None, "caller and sub-centre talk");
}

#[test]
fn a_busy_target_brings_the_caller_back_to_the_seat_and_the_seat_hears_why() {
    let (mut run, _tag, _seat_invite, invite, _) = referred();
    let sent = run.recv(&reply(&invite, 486, "Busy Here", T_TAG), trunk_peer());
    let notify = one(requests(&sent, Method::Notify), "the failure's NOTIFY");
    assert_eq!(body(&notify.msg), "SIP/2.0 486 Busy Here\r\n");
    assert!(requests(&sent, Method::Bye).is_empty());
    let tail: Vec<&String> = run.media.iter().rev().take(3).collect();
    assert_eq!(tail[2], "StopPlay { leg: 0 }");
    assert_eq!(tail[1], "Bridge { legs: [0, 1] }");
    assert!(tail[0].contains("three_way_failed"), "{tail:?}");
    assert_eq!(run.audits[0].result, Done::Busy);
    // And the seat may transfer again.
    run.transfers.clear();
    let again = refer(
        &_seat_invite,
        3,
        "z9hG4bKseat.refer2",
        "Refer-To: <sip:8002@hotline>\r\n",
    );
    run.recv(&again, seat_peer(1));
    assert_eq!(run.transfers, ["8002"]);
}

#[test]
fn refer_sub_false_gets_no_notify_and_a_second_refer_meanwhile_491() {
    let (mut run, _tag, seat_invite) = bridged();
    let r = refer(
        &seat_invite,
        2,
        "z9hG4bKseat.refer",
        "Refer-To: <sip:12366@127.0.0.1>\r\nRefer-Sub: false\r\n",
    );
    run.recv(&r, seat_peer(1));
    let sent = run.transfer_to("12366", vec![sub_centre()]);
    let accepted = one(responses(&sent, 202), "202");
    assert_eq!(
        hv(&accepted.msg, Name::Other("Refer-Sub".into())),
        "false",
        "RFC 4488"
    );
    assert!(requests(&sent, Method::Notify).is_empty());
    let invite = one(requests(&sent, Method::Invite), "INVITE").msg.clone();
    // A second REFER while the first rings: 491, nothing more placed.
    let dup = refer(
        &seat_invite,
        3,
        "z9hG4bKseat.refer2",
        "Refer-To: <sip:8002@127.0.0.1>\r\n",
    );
    let sent = run.recv(&dup, seat_peer(1));
    one(responses(&sent, 491), "491 to the second REFER");
    assert_eq!(run.transfers, ["12366"]);
    // Answered: no NOTIFY, only our BYE.
    let sent = run.recv(&trunk_ok(&invite), trunk_peer());
    let to_seat = to_peer(&sent, seat_peer(1));
    assert_eq!(to_seat.len(), 1);
    assert!(to_seat[0].is(Method::Bye));
}

#[test]
fn refers_we_do_not_take_are_refused_and_place_nothing() {
    for (headers, code) in [
        ("Refer-To: <sip:13800138000@evil.example>\r\n", 403),
        ("Refer-To: <sip:8002@127.0.0.1;method=BYE>\r\n", 403),
        (
            "Refer-To: <sip:8002@127.0.0.1?Replaces=other%3Bto-tag%3D1%3Bfrom-tag%3D2>\r\n",
            403,
        ),
        ("", 400),
    ] {
        let (mut run, _tag, seat_invite) = bridged();
        let sent = run.recv(&refer(&seat_invite, 2, "z9hG4bKr", headers), seat_peer(1));
        one(responses(&sent, code), "the refusal");
        assert!(requests(&sent, Method::Invite).is_empty());
        assert!(run.transfers.is_empty(), "{headers}");
        assert_eq!(run.audits.len(), 1);
        assert_eq!(run.audits[0].result, Done::Refused);
        assert_eq!(run.audits[0].target, "none");
    }
    // A number the table routes nowhere: 403 once the table says so.
    let (mut run, _tag, seat_invite) = bridged();
    let r = refer(
        &seat_invite,
        2,
        "z9hG4bKr",
        "Refer-To: <sip:13800138000@127.0.0.1>\r\n",
    );
    run.recv(&r, seat_peer(1));
    let sent = run.transfer_to("13800138000", Vec::new());
    one(responses(&sent, 403), "403: no seat or line of ours");
    assert!(requests(&sent, Method::Invite).is_empty());
    assert!(requests(&sent, Method::Notify).is_empty());
    assert_eq!(run.audits[0].result, Done::Refused);
}

#[test]
fn a_refer_from_the_callers_side_is_refused() {
    let (mut run, tag, _seat_invite) = bridged();
    let r = parse(&no_body(format!(
        "{}Refer-To: <sip:8002@127.0.0.1>\r\n",
        caller_request("REFER", 2, "z9hG4bKcaller.refer", &tag)
    )));
    let sent = run.recv(&r, caller());
    one(responses(&sent, 403), "403 to the trunk's REFER");
    assert!(to_peer(&sent, seat_peer(1)).is_empty(), "not relayed");
    assert!(run.transfers.is_empty());
}

#[test]
fn the_seat_hanging_up_after_202_leaves_the_caller_to_reach_the_target() {
    let (mut run, _tag, seat_invite, invite, _) = referred();
    let bye = parse(&no_body(seat_request(
        &seat_invite,
        "BYE",
        3,
        "z9hG4bKseat.bye",
    )));
    let sent = run.recv(&bye, seat_peer(1));
    one(responses(&sent, 200), "200 to the seat's BYE");
    assert!(to_peer(&sent, caller()).is_empty(), "the caller survives");
    assert!(
        requests(&sent, Method::Cancel).is_empty(),
        "the target still rings"
    );
    assert!(run.has_media("Seat 8001 busy=false"));
    assert_eq!(run.call.outcome(), None);
    let sent = run.recv(&trunk_ok(&invite), trunk_peer());
    assert!(
        to_peer(&sent, seat_peer(1)).is_empty(),
        "no NOTIFY to a gone seat"
    );
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [0, 2] }");
    assert_eq!(run.audits[0].result, Done::Completed);
}

#[test]
fn the_seat_gone_and_the_target_failing_a_direct_call_ends() {
    let (mut run, _tag, seat_invite, invite, _) = referred();
    let bye = parse(&no_body(seat_request(
        &seat_invite,
        "BYE",
        3,
        "z9hG4bKseat.bye",
    )));
    run.recv(&bye, seat_peer(1));
    let sent = run.recv(
        &reply(&invite, 480, "Temporarily Unavailable", T_TAG),
        trunk_peer(),
    );
    one(requests(&sent, Method::Bye), "BYE to the caller");
    assert_eq!(run.call.outcome(), Some(Outcome::Completed));
    assert_eq!(run.audits[0].result, Done::NoAnswer);
}

#[test]
fn hash_one_transfers_without_refer_and_star_one_cancels_it() {
    let (mut run, _tag, _seat_invite) = bridged();
    // The caller's keys are nobody's transfer.
    run.key(0, "#112366#");
    assert!(run.transfers.is_empty());
    run.key(1, "#112366#");
    assert_eq!(run.transfers, ["12366"]);
    let sent = run.transfer_to("12366", vec![sub_centre()]);
    assert!(responses(&sent, 202).is_empty(), "no REFER to answer");
    assert!(requests(&sent, Method::Notify).is_empty());
    let invite = one(requests(&sent, Method::Invite), "INVITE").msg.clone();
    run.recv(&reply(&invite, 180, "Ringing", T_TAG), trunk_peer());
    // *1: cancelled; the caller is back with the seat, told nothing.
    let sent = run.key(1, "*1");
    one(requests(&sent, Method::Cancel), "CANCEL to the target");
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [0, 1] }");
    assert!(!run.media.iter().any(|m| m.contains("three_way_failed")));
    assert_eq!(run.audits[0].result, Done::NoAnswer);
    assert_eq!(run.audits[0].kind, Kind::Blind);
}

#[test]
fn a_target_that_rings_out_is_cancelled_and_told_as_no_answer() {
    let (mut run, _tag, _seat_invite, invite, _) = referred();
    run.recv(&reply(&invite, 180, "Ringing", T_TAG), trunk_peer());
    // The only target rings for the caller's patience (60 s).
    assert!(requests(&run.advance(secs(59)), Method::Cancel).is_empty());
    let sent = run.advance(secs(61));
    // (Retransmitted until the 487.)
    assert!(
        !requests(&sent, Method::Cancel).is_empty(),
        "CANCEL at the ring time"
    );
    run.recv(
        &reply(&invite, 487, "Request Terminated", T_TAG),
        trunk_peer(),
    );
    assert_eq!(run.audits.len(), 1);
    assert_eq!(run.audits[0].result, Done::NoAnswer);
    let notify = run
        .log
        .iter()
        .rev()
        .find(|s| s.is(Method::Notify))
        .unwrap()
        .msg
        .clone();
    assert_eq!(body(&notify), "SIP/2.0 408 Request Timeout\r\n");
}

#[test]
fn a_transfer_to_110_is_an_emergency_hand_off() {
    let (mut run, _tag, seat_invite) = bridged();
    let r = refer(
        &seat_invite,
        2,
        "z9hG4bKr",
        "Refer-To: <sip:110@127.0.0.1>\r\n",
    );
    run.recv(&r, seat_peer(1));
    let sent = run.transfer_to("110", vec![sub_centre()]);
    let invite = one(requests(&sent, Method::Invite), "INVITE").msg.clone();
    run.recv(&trunk_ok(&invite), trunk_peer());
    assert_eq!(run.audits[0].kind, Kind::Emergency);
}

#[test]
fn the_seats_invite_allows_refer_and_says_it_supports_replaces() {
    let (run, _tag, seat_invite) = bridged();
    // Its keys (feature codes, the numbers it transfers to) are ours: the
    // caller does not hear them.
    assert!(
        run.has_media("RelayKeys { leg: 1, relay: false }"),
        "{:?}",
        run.media
    );
    assert!(hv(&seat_invite, Name::Allow).contains("REFER"));
    assert!(hv(&seat_invite, Name::Allow).contains("NOTIFY"));
    assert_eq!(hv(&seat_invite, Name::Supported), "replaces");
}

#[test]
fn the_seat_leaving_while_its_three_way_party_rings_hands_the_caller_over() {
    let (mut run, _tag, seat_invite, invite) = ringing_party();
    let bye = parse(&no_body(seat_request(
        &seat_invite,
        "BYE",
        3,
        "z9hG4bKseat.bye",
    )));
    let sent = run.recv(&bye, seat_peer(1));
    one(responses(&sent, 200), "200 to the seat's BYE");
    assert!(to_peer(&sent, caller()).is_empty(), "the caller stays");
    assert!(
        requests(&sent, Method::Cancel).is_empty(),
        "the party still rings"
    );
    assert!(
        run.media
            .iter()
            .any(|m| m.starts_with("Prompt 0 [Prompt(\"transfer_notice\")] hold=true"))
    );
    assert!(run.has_media("Seat 8001 busy=false"));
    run.now += secs(2);
    let sent = run.recv(&trunk_ok(&invite), trunk_peer());
    one(requests(&sent, Method::Ack), "ACK to the party");
    assert!(to_peer(&sent, seat_peer(1)).is_empty());
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [0, 2] }");
    assert_eq!(run.audits.len(), 1);
    assert_eq!(run.audits[0].kind, Kind::ThreeWay);
    assert_eq!(run.audits[0].result, Done::Completed);
    assert_eq!(run.call.outcome(), None);
}

// ── Attended: the seat's own consultation, then REFER with Replaces ────

const CONSULT_TAG: &str = "seat-consult-tag";
const CONSULT_ID: &str = "consult-1@192.0.2.21";

/// The seat's own INVITE (its second dialog) to `number`, with its offer.
fn consult_invite(number: &str) -> Message {
    parse(&with_body(
        format!(
            "INVITE sip:{number}@127.0.0.1:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.21:5062;branch=z9hG4bKconsult.1;rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:8001@127.0.0.1>;tag={CONSULT_TAG}\r\n\
             To: <sip:{number}@127.0.0.1>\r\n\
             Call-ID: {CONSULT_ID}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:8001@192.0.2.21:5062>\r\n"
        ),
        "application/sdp",
        "v=0\r\no=seat 9 9 IN IP4 192.0.2.21\r\ns=-\r\nc=IN IP4 192.0.2.21\r\nt=0 0\r\nm=audio 41000 RTP/AVP 0\r\n",
    ))
}

/// A request from the seat in its consultation dialog (we its UAS, our
/// tag `ours`).
fn consult_request(method: &str, cseq: u32, branch: &str, ours: &str, headers: &str) -> Message {
    parse(&no_body(format!(
        "{method} sip:hotline@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.21:5062;branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:8001@127.0.0.1>;tag={CONSULT_TAG}\r\n\
         To: <sip:12366@127.0.0.1>;tag={ours}\r\n\
         Call-ID: {CONSULT_ID}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:8001@192.0.2.21:5062>\r\n\
         {headers}"
    )))
}

impl Run {
    fn consult(&mut self, invite: &Message, seat: &str) -> Vec<Sent> {
        let out = self
            .call
            .on_consult(wire(invite), seat_peer(1), seat, &self.reg, self.now);
        self.take(out, self.now)
    }

    fn consult_to(&mut self, number: &str, targets: Vec<Target>) -> Vec<Sent> {
        let out = self.call.consult_to(number, targets, &self.reg, self.now);
        self.take(out, self.now)
    }
}

/// A bridged call whose seat consults the sub-centre, answered: (run, our
/// INVITE to the seat, our INVITE to the sub-centre, our tag in the
/// consultation).
fn consulted() -> (Run, Message, Message, String) {
    let (mut run, _tag, seat_invite) = bridged();
    let sent = run.consult(&consult_invite("12366"), "8001");
    one(responses(&sent, 100), "100 to the seat's own INVITE");
    assert_eq!(run.consults, ["12366"]);
    assert!(run.binds.contains(&CONSULT_ID.to_string()));
    let sent = run.consult_to("12366", vec![sub_centre()]);
    let invite = one(requests(&sent, Method::Invite), "INVITE to the sub-centre")
        .msg
        .clone();
    let sent = run.recv(&reply(&invite, 180, "Ringing", T_TAG), trunk_peer());
    one(responses(&sent, 180), "the seat hears it ring");
    let sent = run.recv(&trunk_ok(&invite), trunk_peer());
    let ok = one(responses(&sent, 200), "200 to the seat's consultation");
    assert_eq!(ok.peer, seat_peer(1));
    assert_eq!(hv(&ok.msg, Name::CallId), CONSULT_ID);
    assert_eq!(sdp_port(&ok.msg), "30004", "the consultation's own stream");
    let ours = to_tag(&ok.msg).unwrap();
    run.recv(
        &consult_request("ACK", 1, "z9hG4bKconsult.ack", &ours, ""),
        seat_peer(1),
    );
    // Seat and target talk; the caller is alone, on music.
    assert_eq!(
        run.media
            .iter()
            .filter(|m| m.starts_with("Play { leg: 0"))
            .count(),
        1
    );
    assert!(run.has_media("Bridge { legs: [2, 3] }"), "{:?}", run.media);
    (run, seat_invite, invite, ours)
}

fn assert_joined(run: &Run, sent: &[Sent], result: Done) {
    let byes: Vec<&Sent> = requests(sent, Method::Bye);
    assert_eq!(
        byes.len(),
        2,
        "both of the seat's dialogs end: {:#?}",
        summary(sent)
    );
    assert!(byes.iter().all(|b| b.peer == seat_peer(1)));
    assert!(to_peer(sent, caller()).is_empty());
    assert!(
        to_peer(sent, trunk_peer()).is_empty(),
        "no INVITE-with-Replaces, nothing"
    );
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [0, 3] }");
    assert!(run.has_media("Seat 8001 busy=false"));
    let a = run.audits.last().unwrap();
    assert_eq!((a.kind, a.result), (Kind::Attended, result));
    assert_eq!(a.target, "city_sub_centre");
    assert_eq!(run.call.outcome(), None);
}

#[test]
fn a_refer_with_replaces_on_the_callers_dialog_joins_caller_and_target() {
    let (mut run, seat_invite, _invite, ours) = consulted();
    let id = CONSULT_ID.replace('@', "%40");
    let replaces = format!("{id}%3Bto-tag%3D{ours}%3Bfrom-tag%3D{CONSULT_TAG}");
    let r = refer(
        &seat_invite,
        2,
        "z9hG4bKseat.refer",
        &format!("Refer-To: <sip:12366@127.0.0.1?Replaces={replaces}>\r\n"),
    );
    let sent = run.recv(&r, seat_peer(1));
    one(responses(&sent, 202), "202");
    let notifies = requests(&sent, Method::Notify);
    assert_eq!(notifies.len(), 2);
    assert_eq!(body(&notifies[1].msg), "SIP/2.0 200 OK\r\n");
    // NOTIFY before BYE.
    let order: Vec<bool> = to_peer(&sent, seat_peer(1))
        .iter()
        .filter(|s| s.is(Method::Notify) || s.is(Method::Bye))
        .map(|s| s.is(Method::Bye))
        .collect();
    assert_eq!(order, [false, false, true, true]);
    assert_joined(&run, &sent, Done::Completed);
}

#[test]
fn a_refer_with_replaces_on_the_consultation_joins_them_too() {
    let (mut run, seat_invite, _invite, ours) = consulted();
    let original = format!(
        "{}%3Bto-tag%3D{}%3Bfrom-tag%3D{}",
        hv(&seat_invite, Name::CallId).replace('@', "%40"),
        B_TAG,
        from_tag(&seat_invite).unwrap()
    );
    let r = consult_request(
        "REFER",
        2,
        "z9hG4bKconsult.refer",
        &ours,
        &format!("Refer-To: <sip:8001@127.0.0.1?Replaces={original}>\r\nRefer-Sub: false\r\n"),
    );
    let sent = run.recv(&r, seat_peer(1));
    one(responses(&sent, 202), "202");
    assert!(
        requests(&sent, Method::Notify).is_empty(),
        "Refer-Sub: false"
    );
    assert_joined(&run, &sent, Done::Completed);
}

#[test]
fn replaces_naming_another_dialog_is_refused() {
    let (mut run, seat_invite, _invite, ours) = consulted();
    for replaces in [
        format!("other%40h%3Bto-tag%3D{ours}%3Bfrom-tag%3D{CONSULT_TAG}"),
        format!(
            "{}%3Bto-tag%3Dnot-ours%3Bfrom-tag%3D{CONSULT_TAG}",
            CONSULT_ID.replace('@', "%40")
        ),
    ] {
        let r = refer(
            &seat_invite,
            2,
            "z9hG4bKseat.refer",
            &format!("Refer-To: <sip:12366@127.0.0.1?Replaces={replaces}>\r\n"),
        );
        let sent = run.recv(&r, seat_peer(1));
        one(responses(&sent, 403), "403");
        assert!(requests(&sent, Method::Bye).is_empty());
    }
    assert!(run.audits.iter().all(|a| a.result == Done::Refused));
    assert!(run.has_media("Bridge { legs: [2, 3] }"));
}

#[test]
fn the_seat_hanging_up_the_caller_after_the_introduction_leaves_them_together() {
    let (mut run, seat_invite, _invite, _ours) = consulted();
    let bye = parse(&no_body(seat_request(
        &seat_invite,
        "BYE",
        3,
        "z9hG4bKseat.bye",
    )));
    let sent = run.recv(&bye, seat_peer(1));
    one(responses(&sent, 200), "200 to the seat's BYE");
    // Our BYE for the consultation; the caller stays.
    let byes = requests(&sent, Method::Bye);
    assert_eq!(byes.len(), 1);
    assert_eq!(hv(&byes[0].msg, Name::CallId), CONSULT_ID);
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [0, 3] }");
    assert_eq!(run.audits.last().unwrap().result, Done::SeatLeftAfterIntro);
    assert_eq!(run.call.outcome(), None);
}

#[test]
fn the_seat_ending_its_consultation_hangs_up_the_target_and_keeps_the_caller() {
    let (mut run, _seat_invite, invite, ours) = consulted();
    let bye = consult_request("BYE", 2, "z9hG4bKconsult.bye", &ours, "");
    let sent = run.recv(&bye, seat_peer(1));
    one(responses(&sent, 200), "200 to the consultation's BYE");
    let out = one(requests(&sent, Method::Bye), "BYE to the target");
    assert_eq!(out.peer, trunk_peer());
    assert_eq!(hv(&out.msg, Name::CallId), hv(&invite, Name::CallId));
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [0, 1] }");
    assert!(run.audits.is_empty(), "no hand-off was made");
    assert_eq!(run.call.outcome(), None);
}

#[test]
fn a_consultation_is_refused_for_another_seat_or_a_number_the_table_does_not_route() {
    let (mut run, _tag, _seat_invite) = bridged();
    let sent = run.consult(&consult_invite("12366"), "8009");
    one(responses(&sent, 486), "486: not this call's seat");
    assert!(run.consults.is_empty());
    let (mut run, _tag, _seat_invite) = bridged();
    run.consult(&consult_invite("13800138000"), "8001");
    let sent = run.consult_to("13800138000", Vec::new());
    one(responses(&sent, 403), "403: nothing of ours");
    assert!(requests(&sent, Method::Invite).is_empty());
    assert_eq!(run.audits[0].kind, Kind::Attended);
    assert_eq!(run.audits[0].result, Done::Refused);
}

#[test]
fn a_queue_call_whose_seat_left_goes_back_to_its_queue_by_first_arrival_when_the_target_fails() {
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1))], t0);
    let mut s = with_streams(anchored(false));
    s.queue = Some(plan("general", vec![]));
    let (mut run, out) = Run::start(reg, t0, s, vec![]);
    let sent = run.take(out, t0);
    let ok = one(responses(&sent, 200), "200 to the caller").msg.clone();
    run.recv(&caller_ack_2xx(&to_tag(&ok).unwrap()), caller());
    run.now += secs(30);
    let seat_invite = run.offer("8001");
    run.recv(&seat_ok(&seat_invite), seat_peer(1));
    assert_eq!(
        run.acd.last(),
        Some(&ToAcd::Answered {
            seat: "8001".into()
        })
    );
    run.recv(&to_sub_centre(&seat_invite), seat_peer(1));
    let sent = run.transfer_to("12366", vec![sub_centre()]);
    let invite = one(requests(&sent, Method::Invite), "INVITE").msg.clone();
    let bye = parse(&no_body(seat_request(
        &seat_invite,
        "BYE",
        3,
        "z9hG4bKseat.bye",
    )));
    run.recv(&bye, seat_peer(1));
    assert_eq!(
        run.acd.last(),
        Some(&ToAcd::Ended { by_seat: true }),
        "the seat's wrap-up starts"
    );
    run.now += secs(5);
    let sent = run.recv(&reply(&invite, 486, "Busy Here", T_TAG), trunk_peer());
    assert!(requests(&sent, Method::Bye).is_empty(), "the caller stays");
    match run.acd.last() {
        Some(ToAcd::Join { queue, arrival, .. }) => {
            assert_eq!(queue, "general");
            assert_eq!(*arrival, t0, "its first arrival: ahead of later callers");
        }
        other => panic!("not back in the queue: {other:?}"),
    }
    assert_eq!(run.audits[0].result, Done::ReturnedToQueue);
    // Offered again, it is bridged without a second answer.
    let again = run.offer("8001");
    let sent = run.recv(&seat_ok(&again), seat_peer(1));
    assert!(responses(&sent, 200).iter().all(|r| r.peer != caller()));
    assert_eq!(run.call.outcome(), None);
}

// ── Consulting by keys: *2, *4, *3#, *1, hanging up ────────────────────

/// A bridged call whose seat keyed `*212366#`, the sub-centre answered.
fn consulted_by_keys() -> (Run, Message, Message) {
    let (mut run, _tag, seat_invite) = bridged();
    run.key(0, "*212366#");
    assert!(run.consults.is_empty(), "the caller's keys are no one's");
    run.key(1, "*212366#");
    assert_eq!(run.consults, ["12366"]);
    assert!(run.has_media("Bridge { legs: [] }"));
    assert!(run.media.iter().any(|m| m.starts_with("Play { leg: 0")));
    let sent = run.consult_to("12366", vec![sub_centre()]);
    let invite = one(requests(&sent, Method::Invite), "INVITE").msg.clone();
    let sent = run.recv(&trunk_ok(&invite), trunk_peer());
    assert!(
        to_peer(&sent, seat_peer(1)).is_empty(),
        "the seat's own call carries the consultation: nothing to answer"
    );
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [1, 2] }");
    (run, seat_invite, invite)
}

#[test]
fn star_four_swaps_between_caller_and_target_and_hanging_up_joins_them() {
    let (mut run, seat_invite, _invite) = consulted_by_keys();
    run.key(1, "*4");
    let tail: Vec<&String> = run.media.iter().rev().take(3).collect();
    assert_eq!(tail[2], "StopPlay { leg: 0 }");
    assert_eq!(tail[1], "Bridge { legs: [1, 0] }");
    assert!(
        tail[0].starts_with("Play { leg: 2"),
        "the target waits on music"
    );
    run.key(1, "*4");
    assert!(run.has_media("Bridge { legs: [1, 2] }"));
    assert!(run.media.last().unwrap().starts_with("Play { leg: 0"));
    // The seat hangs up: caller and target together, nobody else hung up.
    let bye = parse(&no_body(seat_request(
        &seat_invite,
        "BYE",
        3,
        "z9hG4bKseat.bye",
    )));
    let sent = run.recv(&bye, seat_peer(1));
    one(responses(&sent, 200), "200 to the seat's BYE");
    assert!(
        requests(&sent, Method::Bye).is_empty(),
        "{:#?}",
        summary(&sent)
    );
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [0, 2] }");
    let a = run.audits.last().unwrap();
    assert_eq!(
        (a.kind, a.result),
        (Kind::Attended, Done::SeatLeftAfterIntro)
    );
    assert!(run.has_media("Seat 8001 busy=false"));
    assert_eq!(run.call.outcome(), None);
}

#[test]
fn star_three_hash_while_consulting_makes_it_a_three_way_call() {
    let (mut run, _seat_invite, _invite) = consulted_by_keys();
    run.key(1, "*3#");
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [0, 1, 2] }");
    let a = run.audits.last().unwrap();
    assert_eq!((a.kind, a.result), (Kind::ThreeWay, Done::Completed));
    // Now a three-way call: the seat may leave, the two go on.
    assert!(run.call.bridged());
}

#[test]
fn star_one_while_consulting_drops_the_target_and_the_seat_has_its_caller_back() {
    let (mut run, _seat_invite, invite) = consulted_by_keys();
    let sent = run.key(1, "*1");
    let bye = one(requests(&sent, Method::Bye), "BYE to the target");
    assert_eq!(hv(&bye.msg, Name::CallId), hv(&invite, Name::CallId));
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [0, 1] }");
    assert!(run.has_media("StopPlay { leg: 0 }"));
    assert!(run.audits.is_empty());
    // And the seat may consult again.
    run.consults.clear();
    run.key(1, "*28002#");
    assert_eq!(run.consults, ["8002"]);
}

#[test]
fn the_seat_leaving_while_its_consulted_target_rings_hands_the_caller_over() {
    let (mut run, _tag, seat_invite) = bridged();
    run.key(1, "*212366#");
    let sent = run.consult_to("12366", vec![sub_centre()]);
    let invite = one(requests(&sent, Method::Invite), "INVITE").msg.clone();
    let bye = parse(&no_body(seat_request(
        &seat_invite,
        "BYE",
        3,
        "z9hG4bKseat.bye",
    )));
    let sent = run.recv(&bye, seat_peer(1));
    assert!(to_peer(&sent, caller()).is_empty(), "the caller stays");
    run.recv(&trunk_ok(&invite), trunk_peer());
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [0, 2] }");
    let a = run.audits.last().unwrap();
    assert_eq!((a.kind, a.result), (Kind::Attended, Done::Completed));
}

// ── After review: refusals, the registrar's word, swaps, semi-attended ──

#[test]
fn a_keyed_consultation_the_table_does_not_route_gives_the_seat_its_caller_back() {
    let (mut run, _tag, _seat_invite) = bridged();
    run.key(1, "*213800138000#");
    let sent = run.consult_to("13800138000", Vec::new());
    assert!(requests(&sent, Method::Invite).is_empty());
    let tail: Vec<&String> = run.media.iter().rev().take(3).collect();
    assert_eq!(tail[2], "StopPlay { leg: 0 }");
    assert_eq!(tail[1], "Bridge { legs: [0, 1] }");
    assert!(tail[0].contains("three_way_failed"), "{tail:?}");
    assert_eq!(run.audits[0].result, Done::Refused);
    // Nothing is left half-made: the seat may consult again.
    run.consults.clear();
    run.key(1, "*212366#");
    assert_eq!(run.consults, ["12366"]);
}

#[test]
fn only_a_seat_bridged_to_its_caller_with_nothing_under_way_is_consultable() {
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1))], t0);
    let (mut run, out) = Run::start(reg, t0, with_streams(anchored(false)), vec![seat("8001")]);
    let sent = run.take(out, t0);
    let invite = one(requests(&sent, Method::Invite), "INVITE").msg.clone();
    assert_eq!(
        run.reg.bridged_to("8001"),
        None,
        "only rung: not on the call"
    );
    run.recv(&seat_ok(&invite), seat_peer(1));
    assert_eq!(run.reg.bridged_to("8001"), Some(CALL));
    // A transfer under way: its own INVITE is a call of its own again.
    run.recv(&to_sub_centre(&invite), seat_peer(1));
    run.transfer_to("12366", vec![sub_centre()]);
    assert_eq!(run.reg.bridged_to("8001"), None);
}

fn consult_hold(ours: &str, cseq: u32, direction: &str) -> Message {
    let mut m = consult_request(
        "INVITE",
        cseq,
        &format!("z9hG4bKconsult.re{cseq}"),
        ours,
        "",
    );
    m.set(Name::ContentType, "application/sdp");
    m.body = Bytes::from(format!(
        "v=0\r\no=seat 9 {cseq} IN IP4 192.0.2.21\r\ns=-\r\nc=IN IP4 192.0.2.21\r\nt=0 0\r\nm=audio 41000 RTP/AVP 0\r\na={direction}\r\n"
    ));
    m
}

fn seat_hold(seat_invite: &Message, cseq: u32, direction: &str) -> Message {
    parse(&with_body(
        seat_request(
            seat_invite,
            "INVITE",
            cseq,
            &format!("z9hG4bKseat.re{cseq}"),
        ),
        "application/sdp",
        &format!(
            "v=0\r\no=seat 2 {cseq} IN IP4 192.0.2.21\r\ns=-\r\nc=IN IP4 192.0.2.21\r\nt=0 0\r\nm=audio 50000 RTP/AVP 0\r\na={direction}\r\n"
        ),
    ))
}

#[test]
fn the_seat_swapping_on_its_phone_talks_to_whom_it_resumed() {
    let (mut run, seat_invite, _invite, ours) = consulted();
    // The phone held its caller before it consulted.
    run.recv(&seat_hold(&seat_invite, 2, "sendonly"), seat_peer(1));
    // Now it holds the consultation and resumes the caller.
    let before = run.media.len();
    run.recv(&consult_hold(&ours, 2, "sendonly"), seat_peer(1));
    assert!(
        run.media[before..]
            .iter()
            .any(|m| m.starts_with("Play { leg: 3")),
        "the target waits on music: {:?}",
        &run.media[before..]
    );
    let before = run.media.len();
    run.recv(&seat_hold(&seat_invite, 3, "sendrecv"), seat_peer(1));
    let new = &run.media[before..];
    assert!(new.contains(&"StopPlay { leg: 0 }".to_string()), "{new:?}");
    assert!(
        new.contains(&"Bridge { legs: [1, 0] }".to_string()),
        "{new:?}"
    );
    // And back to the consultation.
    run.recv(&seat_hold(&seat_invite, 4, "sendonly"), seat_peer(1));
    let before = run.media.len();
    run.recv(&consult_hold(&ours, 3, "sendrecv"), seat_peer(1));
    let new = &run.media[before..];
    assert!(
        new.contains(&"Bridge { legs: [2, 3] }".to_string()),
        "{new:?}"
    );
    assert!(
        new.iter().any(|m| m.starts_with("Play { leg: 0")),
        "{new:?}"
    );
}

/// The seat's consultation to the sub-centre, still ringing.
fn consult_ringing() -> (Run, Message, Message) {
    let (mut run, _tag, seat_invite) = bridged();
    run.consult(&consult_invite("12366"), "8001");
    let sent = run.consult_to("12366", vec![sub_centre()]);
    let invite = one(requests(&sent, Method::Invite), "INVITE").msg.clone();
    run.recv(&reply(&invite, 180, "Ringing", T_TAG), trunk_peer());
    (run, seat_invite, invite)
}

#[test]
fn a_refer_with_replaces_before_the_target_answers_hands_the_caller_over() {
    let (mut run, seat_invite, invite) = consult_ringing();
    let ringing = one(
        run.log
            .iter()
            .filter(|s| s.is_code(180) && s.peer == seat_peer(1))
            .collect(),
        "the seat's phone hears it ring",
    )
    .msg
    .clone();
    let ours = to_tag(&ringing).unwrap();
    let id = CONSULT_ID.replace('@', "%40");
    let r = refer(
        &seat_invite,
        2,
        "z9hG4bKseat.refer",
        &format!(
            "Refer-To: <sip:12366@127.0.0.1?Replaces={id}%3Bto-tag%3D{ours}%3Bfrom-tag%3D{CONSULT_TAG}>\r\n"
        ),
    );
    let sent = run.recv(&r, seat_peer(1));
    one(responses(&sent, 202), "202");
    one(responses(&sent, 487), "487 to the consultation's INVITE");
    one(
        requests(&sent, Method::Bye),
        "BYE on the seat's call with the caller",
    );
    assert!(to_peer(&sent, caller()).is_empty());
    run.recv(&trunk_ok(&invite), trunk_peer());
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [0, 3] }");
    let a = run.audits.last().unwrap();
    assert_eq!((a.kind, a.result), (Kind::Attended, Done::Completed));
}

#[test]
fn the_seat_hanging_up_its_caller_while_the_consultation_rings_hands_the_caller_over() {
    let (mut run, seat_invite, invite) = consult_ringing();
    let bye = parse(&no_body(seat_request(
        &seat_invite,
        "BYE",
        3,
        "z9hG4bKseat.bye",
    )));
    let sent = run.recv(&bye, seat_peer(1));
    one(responses(&sent, 487), "487 to the consultation's INVITE");
    assert!(to_peer(&sent, caller()).is_empty(), "the caller stays");
    run.recv(&trunk_ok(&invite), trunk_peer());
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [0, 3] }");
}

#[test]
fn the_caller_hanging_up_mid_consultation_ends_the_seats_consultation_and_the_target() {
    let (mut run, _seat_invite, _invite, _ours) = consulted();
    let tag = to_tag(
        &run.log
            .iter()
            .find(|s| s.is_code(200) && s.peer == caller())
            .unwrap()
            .msg,
    )
    .unwrap();
    let bye = parse(&no_body(caller_request(
        "BYE",
        2,
        "z9hG4bKcaller.bye",
        &tag,
    )));
    let sent = run.recv(&bye, caller());
    let byes = requests(&sent, Method::Bye);
    assert_eq!(
        byes.len(),
        3,
        "the seat's two dialogs and the target: {:#?}",
        summary(&sent)
    );
    assert_eq!(run.call.outcome(), Some(Outcome::Completed));
}

#[test]
fn both_of_the_seats_calls_live_are_two_conversations_its_phone_mixes() {
    let (mut run, seat_invite, _invite, ours) = consulted();
    run.recv(&seat_hold(&seat_invite, 2, "sendonly"), seat_peer(1));
    // The phone's local conference: it resumes its caller while the
    // consultation stays live.
    let before = run.media.len();
    run.recv(&seat_hold(&seat_invite, 3, "sendrecv"), seat_peer(1));
    let new = &run.media[before..];
    assert!(
        new.contains(&"Pairs { first: (0, 1), second: (2, 3) }".to_string()),
        "{new:?}"
    );
    assert!(new.contains(&"StopPlay { leg: 0 }".to_string()));
    // Holding the consultation again: the seat talks to its caller only.
    let before = run.media.len();
    run.recv(&consult_hold(&ours, 2, "sendonly"), seat_peer(1));
    let new = &run.media[before..];
    assert!(
        new.iter().any(|m| m.starts_with("Play { leg: 3")),
        "{new:?}"
    );
}

#[test]
fn a_phone_that_never_held_its_caller_still_swaps_to_it() {
    let (mut run, _seat_invite, _invite, ours) = consulted();
    // It holds the consultation: the seat's live dialog is its caller's.
    let before = run.media.len();
    run.recv(&consult_hold(&ours, 2, "sendonly"), seat_peer(1));
    let new = &run.media[before..];
    assert!(
        new.contains(&"Bridge { legs: [1, 0] }".to_string()),
        "{new:?}"
    );
    assert!(new.contains(&"StopPlay { leg: 0 }".to_string()), "{new:?}");
    assert!(
        new.iter().any(|m| m.starts_with("Play { leg: 3")),
        "{new:?}"
    );
}

#[test]
fn a_replaces_before_the_consultation_rings_is_refused_and_changes_nothing() {
    let (mut run, _tag, seat_invite) = bridged();
    let sent = run.consult(&consult_invite("12366"), "8001");
    let ours = to_tag(&one(responses(&sent, 100), "100").msg).unwrap_or_default();
    let id = CONSULT_ID.replace('@', "%40");
    let r = refer(
        &seat_invite,
        2,
        "z9hG4bKseat.refer",
        &format!(
            "Refer-To: <sip:12366@127.0.0.1?Replaces={id}%3Bto-tag%3D{ours}%3Bfrom-tag%3D{CONSULT_TAG}>\r\n"
        ),
    );
    let sent = run.recv(&r, seat_peer(1));
    assert!(
        !responses(&sent, 202).iter().any(|_| true),
        "{:#?}",
        summary(&sent)
    );
    assert!(requests(&sent, Method::Bye).is_empty());
    // The table answers; the consultation goes on.
    let sent = run.consult_to("12366", vec![sub_centre()]);
    one(requests(&sent, Method::Invite), "INVITE to the sub-centre");
}

// ── A supervisor's commands (the control API) ───────────────────────────

/// One BYE among `sent`, and it went to the seat.
fn assert_bye_to_seat(sent: &[Sent]) {
    let bye = one(requests(sent, Method::Bye), "our BYE");
    assert_eq!(bye.peer, seat_peer(1), "the BYE goes to the seat");
}

impl Run {
    fn command(
        &mut self,
        cmd: crate::call::call::command::Command,
    ) -> std::result::Result<Vec<Sent>, String> {
        let out = self.call.on_command(cmd, &self.reg, self.now)?;
        Ok(self.take(out, self.now))
    }
}

#[test]
fn a_supervisor_consults_for_the_seat_and_completes_the_transfer() {
    use crate::call::call::command::Command;
    let (mut run, _tag, _seat_invite) = bridged();
    for (cmd, why) in [
        (Command::Complete, "no consultation to complete"),
        (Command::Join, "no answered consultation to join"),
        (Command::Cancel, "no hand-off to cancel"),
        (Command::Leave, "the call is no three-way call"),
    ] {
        assert_eq!(run.command(cmd).unwrap_err(), why);
    }
    assert!(
        run.media
            .last()
            .unwrap()
            .starts_with("Bridge { legs: [0, 1] }")
    );
    run.command(Command::Consult("12366".into())).unwrap();
    assert_eq!(run.consults, ["12366"]);
    let sent = run.consult_to("12366", vec![sub_centre()]);
    let invite = one(requests(&sent, Method::Invite), "INVITE").msg.clone();
    run.recv(&trunk_ok(&invite), trunk_peer());
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [1, 2] }");
    let again = run.command(Command::Transfer("12366".into())).unwrap_err();
    assert!(again.contains("under way"), "{again}");
    let sent = run.command(Command::Complete).unwrap();
    assert_bye_to_seat(&sent);
    assert!(to_peer(&sent, trunk_peer()).is_empty(), "the target stays");
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [0, 2] }");
    let a = run.audits.last().unwrap();
    assert_eq!(
        (a.kind, a.result),
        (Kind::Attended, Done::SeatLeftAfterIntro)
    );
}

#[test]
fn a_supervisor_cancels_a_consultation_and_the_seat_has_its_caller_back() {
    use crate::call::call::command::Command;
    let (mut run, _seat_invite, invite) = consulted_by_keys();
    let sent = run.command(Command::Cancel).unwrap();
    let bye = one(requests(&sent, Method::Bye), "BYE to the target");
    assert_eq!(hv(&bye.msg, Name::CallId), hv(&invite, Name::CallId));
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [0, 1] }");
    assert_eq!(
        run.command(Command::Cancel).unwrap_err(),
        "no hand-off to cancel"
    );
}

#[test]
fn a_supervisor_joins_the_consultation_to_a_three_way_call_and_the_seat_leaves_it() {
    use crate::call::call::command::Command;
    let (mut run, _seat_invite, _invite) = consulted_by_keys();
    run.command(Command::Join).unwrap();
    let view = run.call.state_view(run.now, chrono::Utc::now());
    assert_eq!(view.state, "conference");
    assert_eq!(view.handoff, Some("three_way"));
    let consult = run.command(Command::Consult("8002".into())).unwrap_err();
    assert!(consult.contains("under way"), "{consult}");
    let sent = run.command(Command::Leave).unwrap();
    assert_bye_to_seat(&sent);
    assert_eq!(run.media.last().unwrap(), "Bridge { legs: [0, 2] }");
    assert_eq!(
        run.call.state_view(run.now, chrono::Utc::now()).state,
        "connected"
    );
}

#[test]
fn a_supervisor_transfers_blind_and_a_call_not_talking_to_a_seat_takes_no_command() {
    use crate::call::call::command::Command;
    let (mut run, _tag, _seat_invite) = bridged();
    run.command(Command::Transfer("12366".into())).unwrap();
    assert_eq!(run.transfers, ["12366"]);
    let t0 = Instant::now();
    let reg = registrar(&[("8001", seat_peer(1))], t0);
    let (mut ringing, out) = Run::start(reg, t0, with_streams(anchored(false)), vec![seat("8001")]);
    ringing.take(out, t0);
    assert_eq!(
        ringing
            .command(Command::Consult("12366".into()))
            .unwrap_err(),
        "the call is not talking to a seat"
    );
}
