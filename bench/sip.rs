//! Criterion benchmarks of the SIP message path every call's datagrams take.
//!
//! - `message/parse`: an INVITE as a carrier sends it (with SDP), parsed and
//!   validated (every Via, From/To, CSeq, …).
//! - `message/branch_full`: the top Via's branch through the full Via parse
//!   (`top_via()`), as transactions used to find it.
//! - `message/branch`: the same branch read directly (`branch()`).
//!
//! Run: `cargo bench --bench sip` (figures in bench/RESULTS.md).

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use hotline::sip::message::Message;
use std::hint::black_box;

const INVITE: &str = "INVITE sip:12366@127.0.0.1:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-21331-1-0;rport\r\n\
From: sipp <sip:13800138000@127.0.0.1:5060>;tag=21331SIPpTag001\r\n\
To: <sip:12366@127.0.0.1:5070>\r\n\
Call-ID: 1-21331@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:sipp@127.0.0.1:5060>\r\n\
Max-Forwards: 70\r\n\
Subject: Performance Test\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 129\r\n\
\r\n\
v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

fn bench(c: &mut Criterion) {
    let raw = Bytes::from_static(INVITE.as_bytes());
    let msg = Message::parse(raw.clone()).expect("a valid INVITE");
    assert_eq!(msg.branch(), Some("z9hG4bK-21331-1-0"));
    let mut g = c.benchmark_group("message");
    g.bench_function("parse", |b| {
        b.iter(|| Message::parse(black_box(raw.clone())).is_ok())
    });
    g.bench_function("branch_full", |b| {
        b.iter(|| black_box(&msg).top_via().and_then(|v| v.branch))
    });
    g.bench_function("branch", |b| {
        b.iter(|| black_box(&msg).branch().map(str::len))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
