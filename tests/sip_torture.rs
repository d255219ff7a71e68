//! RFC 4475 torture messages against the parser facade: every valid message
//! of §3.1.1 parses, every invalid one of §3.1.2 is refused — with a `400`
//! (or the `505` RFC 4475 asks for `badvers`) when it is a request, silently
//! when it is a response. The daemon-level variant (sent over UDP while a
//! call is up) is in `tests/sip_calls.rs`.

use bytes::Bytes;
use hotline::sip::message::{Message, StartLine};
use std::path::Path;

fn load(dir: &str) -> Vec<(String, Bytes)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sip/torture")
        .join(dir);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "dat"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, Bytes::from(std::fs::read(&p).unwrap()))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_valid_torture_message_parses() {
    let messages = load("valid");
    assert_eq!(messages.len(), 13);
    let mut failures = Vec::new();
    for (name, bytes) in messages {
        if let Err(e) = Message::parse(bytes) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "refused valid messages:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_invalid_torture_message_is_refused() {
    let messages = load("invalid");
    assert_eq!(messages.len(), 19);
    let mut failures = Vec::new();
    for (name, bytes) in messages {
        let is_request = !bytes.starts_with(b"SIP/");
        match Message::parse(bytes) {
            Ok(_) => failures.push(format!("{name}: accepted")),
            Err(e) if is_request => {
                let expected = if name == "badvers" { 505 } else { 400 };
                match e.response.as_deref().map(|r| &r.start) {
                    Some(StartLine::Response { code, .. }) if *code == expected => {}
                    Some(StartLine::Response { code, .. }) => failures.push(format!(
                        "{name}: answered {code}, expected {expected} ({e})"
                    )),
                    _ => failures.push(format!("{name}: no response built ({e})")),
                }
            }
            Err(e) => assert!(e.response.is_none(), "{name}: a response is never answered"),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_valid_messages_keep_what_a_b2bua_relays() {
    let messages = load("valid");
    let get = |n: &str| messages.iter().find(|(m, _)| m == n).unwrap().1.clone();
    // Unknown method kept by name, with the CSeq matching it (intmeth).
    let m = Message::parse(get("intmeth")).unwrap();
    assert!(
        m.method()
            .unwrap()
            .as_str()
            .starts_with("!interesting-Method0123456789_*+`.%indeed'~")
    );
    // Several Vias in one line are separate entries (transports).
    let m = Message::parse(get("transports")).unwrap();
    assert!(m.headers_named(&hotline::sip::message::Name::Via).count() >= 2);
    // Trailing octets after the body are not part of it (dblreq).
    let m = Message::parse(get("dblreq")).unwrap();
    assert_eq!(m.body.len(), 0);
    // An empty reason phrase is fine (noreason).
    let m = Message::parse(get("noreason")).unwrap();
    assert_eq!(m.code(), Some(100));
}

/// Every torture message cut at every length and with bytes replaced by
/// the characters parsers trip on: the parser answers or refuses, and never
/// panics (a panic in the receive loop would stop SIP for everyone).
#[test]
fn mutated_messages_never_panic_the_parser() {
    let mut all = load("valid");
    all.extend(load("invalid"));
    all.extend(load("semantic"));
    let nasty: &[&[u8]] = &[
        b"\0",
        b"\xff",
        "é".as_bytes(),
        b":",
        b",",
        b";",
        b"<",
        b"\"",
        b"\r\n",
        b" ",
        b"%",
    ];
    let mut parsed = 0usize;
    for (_, bytes) in &all {
        let step = (bytes.len() / 200).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            let _ = Message::parse(bytes.slice(..cut));
            for n in nasty {
                let mut v = bytes[..cut].to_vec();
                v.extend_from_slice(n);
                v.extend_from_slice(&bytes[(cut + 1).min(bytes.len())..]);
                let _ = Message::parse(Bytes::from(v.clone()));
                let _ = hotline::sip::message::frame_length(&v);
                parsed += 2;
            }
        }
    }
    assert!(parsed > 100_000, "{parsed}");
}
