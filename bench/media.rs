//! The media engine's per-packet work, in process: what one anchored call
//! costs the CPU apart from the sockets.
//!
//!     cargo bench --bench media

use criterion::{Criterion, criterion_group, criterion_main};
use hotline::media::g711::Codec;
use hotline::media::mixer::{Mixer, PartyId};
use hotline::media::rtp::{Rewriter, Source, inspect, packet, restamp};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn tone(freq: f64) -> [i16; 160] {
    let mut f = [0i16; 160];
    for (i, s) in f.iter_mut().enumerate() {
        *s = ((2.0 * std::f64::consts::PI * freq * i as f64 / 8000.0).sin() * 8000.0) as i16;
    }
    f
}

fn media(c: &mut Criterion) {
    let pcm = tone(440.0);
    let mut ulaw = Vec::with_capacity(160);
    Codec::Pcmu.encode(&pcm, &mut ulaw);

    c.bench_function("g711/encode_20ms", |b| {
        let mut out = Vec::with_capacity(160);
        b.iter(|| {
            out.clear();
            Codec::Pcmu.encode(black_box(&pcm), &mut out);
        })
    });
    c.bench_function("g711/decode_20ms", |b| {
        let mut out = Vec::with_capacity(160);
        b.iter(|| {
            out.clear();
            Codec::Pcmu.decode(black_box(&ulaw), &mut out);
        })
    });

    // One relayed packet: parse the header, rewrite, restamp.
    let p = packet(0, false, 1000, 160_000, 42, &ulaw);
    c.bench_function("relay/one_packet", |b| {
        let mut r = Rewriter::new(7, 1, 1);
        let t0 = Instant::now();
        let mut n = 0u16;
        b.iter(|| {
            n = n.wrapping_add(1);
            let info = inspect(black_box(&p)).unwrap();
            let (seq, ts) = r.rewrite(
                Source::Relayed(info.ssrc),
                info.seq.wrapping_add(n),
                info.ts,
                t0 + Duration::from_millis(20 * u64::from(n)),
            );
            black_box(restamp(&p, seq, ts, r.ssrc));
        })
    });

    // One 20 ms tick of a three-way call: decode three legs, mix, encode
    // three outputs.
    let tones = [tone(400.0), tone(700.0), tone(1100.0)];
    let payloads: Vec<Vec<u8>> = tones
        .iter()
        .map(|t| {
            let mut v = Vec::new();
            Codec::Pcma.encode(t, &mut v);
            v
        })
        .collect();
    c.bench_function("mixer/three_party_tick", |b| {
        let mut m = Mixer::new();
        for i in 0..3 {
            m.join(PartyId(i)).unwrap();
        }
        let mut pcm = Vec::with_capacity(160);
        let mut out = Vec::with_capacity(160);
        b.iter(|| {
            for (i, p) in payloads.iter().enumerate() {
                pcm.clear();
                Codec::Pcma.decode(p, &mut pcm);
                let frame: [i16; 160] = pcm[..160].try_into().unwrap();
                m.push(PartyId(i as u32), &frame).unwrap();
            }
            for (_, f) in m.mix() {
                out.clear();
                Codec::Pcma.encode(f, &mut out);
                black_box(&out);
            }
        })
    });
}

criterion_group!(benches, media);
criterion_main!(benches);
