//! A party's phone for tests that measure who hears whom: a socket named
//! in its SDP, sending a tone of its own as paced PCMU and keeping what it
//! hears, measured with a Goertzel detector.
#![allow(dead_code)]

use hotline::media::g711::Codec;
use hotline::media::mixer::goertzel_power;
use hotline::media::rtp::{inspect, packet};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// One party's phone: a socket named in its SDP, the tone it says, what
/// it heard (decoded, with when it arrived), and the gateway's address for
/// it, learnt from the first packet the gateway sends.
pub struct Phone {
    socket: UdpSocket,
    freq: f64,
    gateway: Option<SocketAddr>,
    pub heard: Vec<(Instant, Vec<i16>)>,
    said: u32,
}

impl Phone {
    pub fn new(freq: f64) -> Phone {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        Phone {
            socket,
            freq,
            gateway: None,
            heard: Vec::new(),
            said: 0,
        }
    }

    pub fn port(&self) -> String {
        self.socket.local_addr().unwrap().port().to_string()
    }

    /// 20 ms: says its next frame (once it knows where to), takes in all
    /// that arrived.
    pub fn tick(&mut self) {
        if let Some(to) = self.gateway {
            let offset = self.said as usize * 160;
            let pcm: Vec<i16> = (0..160)
                .map(|i| {
                    let t = (offset + i) as f64 / 8000.0;
                    ((2.0 * std::f64::consts::PI * self.freq * t).sin() * 6000.0) as i16
                })
                .collect();
            let mut ulaw = Vec::new();
            Codec::Pcmu.encode(&pcm, &mut ulaw);
            let seq = self.said as u16;
            let p = packet(
                0,
                false,
                seq,
                self.said * 160,
                0x3000 + self.freq as u32,
                &ulaw,
            );
            let _ = self.socket.send_to(&p, to);
            self.said += 1;
        }
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = self.socket.recv_from(&mut buf) {
            if let Some(info) = inspect(&buf[..n]) {
                let mut pcm = Vec::new();
                if let Some(codec) = Codec::from_payload_type(info.payload_type) {
                    codec.decode(&buf[info.payload_at..n], &mut pcm);
                    self.heard.push((Instant::now(), pcm));
                }
                self.gateway = Some(from);
            }
        }
    }

    /// What it heard between `from` and `to`, as one run of samples.
    pub fn heard_between(&self, from: Instant, to: Instant) -> Vec<i16> {
        self.heard
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .flat_map(|(_, pcm)| pcm.iter().copied())
            .collect()
    }

    pub fn last_heard(&self) -> Option<Instant> {
        self.heard.last().map(|(t, _)| *t)
    }
}

/// Runs the phones' 20 ms ticks until `done` says so (or `limit` passes:
/// false).
pub fn run_until(
    phones: &mut [&mut Phone],
    limit: Duration,
    mut done: impl FnMut(&[&mut Phone]) -> bool,
) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        for p in phones.iter_mut() {
            p.tick();
        }
        if done(phones) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

pub fn power(pcm: &[i16], freq: f64) -> f64 {
    goertzel_power(pcm, freq, 8000.0) / pcm.len().max(1) as f64
}

/// Asserts that `pcm` (what `who` heard) carries each tone of `hears`
/// and none of `not`: each tone heard well above what is not heard.
#[track_caller]
pub fn assert_hears(who: &str, pcm: &[i16], hears: &[f64], not: &[f64]) {
    assert!(pcm.len() >= 8000, "{who} heard only {} samples", pcm.len());
    let heard: Vec<f64> = hears.iter().map(|f| power(pcm, *f)).collect();
    let absent: Vec<f64> = not.iter().map(|f| power(pcm, *f)).collect();
    let weakest = heard.iter().cloned().fold(f64::INFINITY, f64::min);
    let strongest_absent = absent.iter().cloned().fold(0.0, f64::max);
    assert!(
        weakest > 1_000.0 && weakest > 100.0 * strongest_absent,
        "{who}: tones {hears:?} at {heard:?}, tones {not:?} at {absent:?}"
    );
}

/// Runs the phones for `settle` (what was said before is still arriving),
/// then for `span`: the window measured, as (start, end).
pub fn window(phones: &mut [&mut Phone], settle: Duration, span: Duration) -> (Instant, Instant) {
    run_until(phones, settle, |_| false);
    let start = Instant::now();
    run_until(phones, span, |_| false);
    (start, Instant::now())
}
