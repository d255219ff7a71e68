//! RTP on the wire: one UDP port per leg, and the relay between legs.
//!
//! The gateway anchors media: each leg talks RTP to a port of ours, taken
//! from the configured range and given back when the leg ends. What a leg
//! hears can change source — a prompt, then the agent's voice — so each
//! leg's outgoing stream keeps one SSRC of ours and continuous sequence
//! numbers and timestamps across those changes ([`Rewriter`]; RFC 3550
//! §5.1, §8.2). Callers behind NAT send from an address their SDP does not
//! name, so the far address is learnt from the first packet and then held:
//! only that source is heard and sent to, until it falls silent or the SDP
//! moves ([`Latch`], "symmetric RTP", RFC 4961). A leg that falls silent is
//! flagged after a configured time.
//!
//! The pure pieces take time as an argument; the per-call task that uses
//! them is [`super::session`].

use bytes::{Bytes, BytesMut};
use rtp::header::Header;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use webrtc_util::marshal::Unmarshal;

/// Samples per 20 ms frame at 8 kHz: the timestamp step of one packet.
const FRAME_SAMPLES: u32 = super::g711::SAMPLES_PER_FRAME as u32;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("no free RTP port in {0}..{1}")]
    NoPort(u16, u16),
    #[error("cannot bind an RTP port: {0}")]
    Bind(#[from] std::io::Error),
}

/// The RTP ports of one address, handed out one per leg (even ports, as
/// RFC 3550 §11 recommends, leaving the odd one for RTCP).
pub struct PortPool {
    ip: IpAddr,
    range: (u16, u16),
    free: Mutex<VecDeque<u16>>,
    /// Kept equal to the number of free ports, when set.
    gauge: Option<prometheus::IntGauge>,
}

impl PortPool {
    pub fn new(ip: IpAddr, start: u16, end: u16) -> Arc<PortPool> {
        let free = (start..end).filter(|p| p % 2 == 0).collect();
        Arc::new(PortPool {
            ip,
            range: (start, end),
            free: Mutex::new(free),
            gauge: None,
        })
    }

    /// A pool that keeps `gauge` at its number of free ports.
    pub fn with_gauge(
        ip: IpAddr,
        start: u16,
        end: u16,
        gauge: prometheus::IntGauge,
    ) -> Arc<PortPool> {
        let mut pool =
            Arc::try_unwrap(Self::new(ip, start, end)).unwrap_or_else(|_| unreachable!());
        gauge.set(pool.free.get_mut().map(|f| f.len()).unwrap_or(0) as i64);
        pool.gauge = Some(gauge);
        Arc::new(pool)
    }

    pub fn available(&self) -> usize {
        self.free.lock().map(|f| f.len()).unwrap_or(0)
    }

    /// Binds the next free port; ports another program holds are skipped
    /// (and put back at the end of the queue).
    pub async fn allocate(self: &Arc<Self>) -> Result<MediaSocket, MediaError> {
        self.allocate_now()
    }

    /// [`PortPool::allocate`] without waiting: the bind is immediate. Must
    /// run inside the tokio runtime (the socket is registered with it).
    pub fn allocate_now(self: &Arc<Self>) -> Result<MediaSocket, MediaError> {
        let tries = self.available();
        for _ in 0..tries {
            let Some(port) = self.free.lock().ok().and_then(|mut f| {
                let port = f.pop_front();
                if let Some(g) = &self.gauge {
                    g.set(f.len() as i64);
                }
                port
            }) else {
                break;
            };
            let bound = std::net::UdpSocket::bind(SocketAddr::new(self.ip, port))
                .and_then(|s| s.set_nonblocking(true).map(|()| s))
                .and_then(UdpSocket::from_std);
            match bound {
                Ok(socket) => {
                    return Ok(MediaSocket {
                        socket: Arc::new(socket),
                        port,
                        pool: self.clone(),
                    });
                }
                // Out of descriptors (or memory): no other port will do
                // better, and "no free port" would be untrue.
                Err(e) if is_resource_exhaustion(&e) => {
                    self.release(port);
                    return Err(MediaError::Bind(e));
                }
                // Taken by another program: try the next.
                Err(_) => self.release(port),
            }
        }
        Err(MediaError::NoPort(self.range.0, self.range.1))
    }

    fn release(&self, port: u16) {
        if let Ok(mut f) = self.free.lock() {
            f.push_back(port);
            if let Some(g) = &self.gauge {
                g.set(f.len() as i64);
            }
        }
    }
}

fn is_resource_exhaustion(e: &std::io::Error) -> bool {
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    const ENOBUFS: i32 = 105;
    const ENOMEM: i32 = 12;
    matches!(e.raw_os_error(), Some(EMFILE | ENFILE | ENOBUFS | ENOMEM))
}

/// A leg's RTP socket; its port goes back to the pool when dropped.
pub struct MediaSocket {
    pub socket: Arc<UdpSocket>,
    pub port: u16,
    pool: Arc<PortPool>,
}

impl std::fmt::Debug for MediaSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MediaSocket({})", self.local())
    }
}

impl MediaSocket {
    pub fn local(&self) -> SocketAddr {
        SocketAddr::new(self.pool.ip, self.port)
    }
}

impl Drop for MediaSocket {
    fn drop(&mut self) {
        self.pool.release(self.port);
    }
}

/// Keeps one outgoing stream continuous while its source changes.
///
/// Relayed packets keep their own spacing (a gap in the input's sequence
/// numbers is a loss the receiver should see); when a new source starts,
/// sequence numbers continue from the last one sent and the timestamp
/// advances by the wall-clock time since the last packet, so the receiver's
/// jitter buffer sees one stream, not a jump (RFC 3550 §5.1).
#[derive(Debug, Clone)]
pub struct Rewriter {
    pub ssrc: u32,
    source: Option<u32>,
    seq_offset: u16,
    ts_offset: u32,
    last: Option<Sent>,
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    seq: u16,
    ts: u32,
    at: Instant,
}

/// Where a packet came from, for the rewriter: another leg's SSRC, or our
/// own frames (prompts, mixed audio).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Relayed(u32),
    Local,
}

impl Rewriter {
    pub fn new(ssrc: u32, first_seq: u16, first_ts: u32) -> Self {
        Rewriter {
            ssrc,
            source: None,
            seq_offset: first_seq,
            ts_offset: first_ts,
            last: None,
        }
    }

    /// The sequence number and timestamp to send for a packet that came
    /// with `seq`/`ts` from `source` (for [`Source::Local`], pass the
    /// frame's own running counters).
    pub fn rewrite(&mut self, source: Source, seq: u16, ts: u32, now: Instant) -> (u16, u32) {
        let id = match source {
            Source::Relayed(ssrc) => Some(ssrc),
            Source::Local => None,
        };
        if self.source != id || self.last.is_none() {
            // A new source: continue right after what was last sent.
            let (next_seq, next_ts) = match self.last {
                Some(last) => {
                    let elapsed = now.saturating_duration_since(last.at);
                    let samples = (elapsed.as_micros() / 125) as u32; // 8 kHz
                    (
                        last.seq.wrapping_add(1),
                        last.ts.wrapping_add(samples.max(FRAME_SAMPLES)),
                    )
                }
                None => (self.seq_offset, self.ts_offset),
            };
            self.seq_offset = next_seq.wrapping_sub(seq);
            self.ts_offset = next_ts.wrapping_sub(ts);
            self.source = id;
        }
        let out = (
            seq.wrapping_add(self.seq_offset),
            ts.wrapping_add(self.ts_offset),
        );
        self.last = Some(Sent {
            seq: out.0,
            ts: out.1,
            at: now,
        });
        out
    }
}

/// How long a latched RTP source must be silent before another may take
/// its place ([`Latch`]): long enough that a live stream (a packet every
/// 20 ms) is never displaced, short enough that a NAT rebinding costs a
/// moment of audio, not the call.
pub const RELEARN_AFTER: Duration = Duration::from_secs(2);

/// Symmetric RTP (RFC 4961): the far end's address is the one its packets
/// come from, and the only one they are taken from.
///
/// The latch takes the first packet from the SDP's address (c=/m=), or —
/// a party behind NAT, whose packets come from an address its SDP does not
/// name — the first from an allowed IP (the SDP's and the SIP peer's) at
/// any port. From then on only that exact source (IP and port) is
/// accepted, and we send only to it, so another sender on the same IP
/// (another program on the caller's host, another subscriber behind the
/// same NAT) can neither inject audio nor receive the call's. Two things
/// move the latch: the SDP's address itself arriving while a NAT-learnt
/// source is held (the signalled address outranks a guess), and the held
/// source falling silent for [`RELEARN_AFTER`] (a NAT that rebinds). A new
/// SDP address (a re-INVITE that moves the media) re-arms it at once.
///
/// Time is an argument; nothing here allocates per packet.
#[derive(Debug, Clone)]
pub struct Latch {
    /// From the SDP, used until a packet latches.
    signalled: Option<SocketAddr>,
    allowed: Vec<IpAddr>,
    relearn_after: Duration,
    held: Option<Held>,
}

/// The latched source and when it was last heard.
#[derive(Debug, Clone, Copy)]
struct Held {
    from: SocketAddr,
    last: Instant,
    /// When it latched.
    since: Instant,
    /// It is the SDP's address (not learnt from a NAT).
    signalled: bool,
}

/// What to do with a packet, by its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// From the latched source.
    Accepted,
    /// Its source is latched from now on; `replaced` is the source held
    /// before (silent long enough, or NAT-learnt and outranked by the SDP
    /// address), if any.
    Latched { replaced: Option<SocketAddr> },
    /// Not the leg's source: drop it, and send nothing there.
    Rejected,
}

impl Default for Latch {
    fn default() -> Self {
        Latch::new(RELEARN_AFTER)
    }
}

impl Latch {
    /// An empty latch (no SDP yet) that re-learns after `relearn_after`
    /// of silence from the latched source.
    pub fn new(relearn_after: Duration) -> Self {
        Latch {
            signalled: None,
            allowed: Vec::new(),
            relearn_after,
            held: None,
        }
    }

    /// The SDP's address.
    pub fn signalled(&self) -> Option<SocketAddr> {
        self.signalled
    }

    /// The latched source, if a packet has latched one.
    pub fn latched(&self) -> Option<SocketAddr> {
        self.held.map(|h| h.from)
    }

    /// Restricts which IPs may latch when the SDP's address does not send
    /// (the leg's SDP and SIP addresses); empty lets any sender latch
    /// (tests).
    pub fn allow(&mut self, ips: Vec<IpAddr>) {
        self.allowed = ips;
    }

    /// Whether to accept a packet that came from `from` at `now`.
    pub fn accept(&mut self, from: SocketAddr, now: Instant) -> Verdict {
        let negotiated = self.signalled == Some(from);
        let replaced = match &mut self.held {
            Some(held) if held.from == from => {
                held.last = now;
                return Verdict::Accepted;
            }
            Some(held) => {
                let live = now.saturating_duration_since(held.last) < self.relearn_after;
                // The SDP's address may take over from a NAT-learnt source
                // that raced it at the start of the stream; later, and
                // anything else, waits for silence (a spoofer of the SDP's
                // address must not take a live leg).
                let outranks = negotiated
                    && !held.signalled
                    && now.saturating_duration_since(held.since) < self.relearn_after;
                if live && !outranks {
                    return Verdict::Rejected;
                }
                Some(held.from)
            }
            None => None,
        };
        if !negotiated && !self.allowed.is_empty() && !self.allowed.contains(&from.ip()) {
            return Verdict::Rejected;
        }
        self.held = Some(Held {
            from,
            last: now,
            since: now,
            signalled: negotiated,
        });
        Verdict::Latched { replaced }
    }

    /// Where to send: the latched source, else the SDP's address.
    pub fn target(&self) -> Option<SocketAddr> {
        self.latched().or(self.signalled)
    }

    /// A re-INVITE moved the far end's media: learn again, at once.
    pub fn resignal(&mut self, signalled: Option<SocketAddr>) {
        self.signalled = signalled;
        self.held = None;
    }
}

/// The parts of an RTP header the relay acts on. Anything that does not
/// parse as RTP version 2 is not relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpInfo {
    pub payload_type: u8,
    pub marker: bool,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    /// Offset of the payload in the packet.
    pub payload_at: usize,
}

pub fn inspect(packet: &[u8]) -> Option<RtpInfo> {
    let mut buf = packet;
    let header = Header::unmarshal(&mut buf).ok()?;
    if header.version != 2 {
        return None;
    }
    Some(RtpInfo {
        payload_type: header.payload_type,
        marker: header.marker,
        seq: header.sequence_number,
        ts: header.timestamp,
        ssrc: header.ssrc,
        payload_at: packet.len() - buf.len(),
    })
}

/// Writes a relayed packet with our SSRC, sequence number and timestamp in
/// place of the sender's (fixed header offsets, RFC 3550 §5.1).
pub fn restamp(packet: &[u8], seq: u16, ts: u32, ssrc: u32) -> Bytes {
    let mut out = BytesMut::from(packet);
    restamp_in_place(&mut out, seq, ts, ssrc);
    out.freeze()
}

/// [`restamp`] in the packet's own buffer (the relay's path: no copy).
/// `packet` is at least a fixed RTP header ([`inspect`] said so).
pub fn restamp_in_place(packet: &mut [u8], seq: u16, ts: u32, ssrc: u32) {
    packet[2..4].copy_from_slice(&seq.to_be_bytes());
    packet[4..8].copy_from_slice(&ts.to_be_bytes());
    packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// Builds one RTP packet of our own (a prompt frame).
pub fn packet(
    payload_type: u8,
    marker: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: &[u8],
) -> Bytes {
    let mut out = BytesMut::with_capacity(12 + payload.len());
    out.extend_from_slice(&[0x80, (u8::from(marker) << 7) | (payload_type & 0x7f)]);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&ts.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(payload);
    out.freeze()
}

/// Whether a leg has fallen silent: no packet for `timeout`.
#[derive(Debug, Clone, Copy)]
pub struct Silence {
    last: Instant,
    timeout: Duration,
}

impl Silence {
    pub fn new(now: Instant, timeout: Duration) -> Self {
        Silence { last: now, timeout }
    }

    pub fn heard(&mut self, now: Instant) {
        self.last = now;
    }

    pub fn timed_out(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last) >= self.timeout
    }

    pub fn deadline(&self) -> Instant {
        self.last + self.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn a_relayed_stream_keeps_its_own_spacing_and_our_numbers() {
        let now = t0();
        let mut r = Rewriter::new(0xabcd, 1000, 50_000);
        let a = r.rewrite(Source::Relayed(7), 10, 800, now);
        assert_eq!(a, (1000, 50_000));
        let b = r.rewrite(Source::Relayed(7), 11, 960, now + Duration::from_millis(20));
        assert_eq!(b, (1001, 50_160));
        // A lost packet on the way in stays a gap on the way out.
        let c = r.rewrite(
            Source::Relayed(7),
            13,
            1280,
            now + Duration::from_millis(60),
        );
        assert_eq!(c, (1003, 50_480));
    }

    #[test]
    fn a_new_source_continues_the_stream_without_a_jump() {
        let now = t0();
        let mut r = Rewriter::new(1, 65_534, u32::MAX - 100);
        // A prompt plays (our own frames)...
        r.rewrite(Source::Local, 0, 0, now);
        let last = r.rewrite(Source::Local, 1, 160, now + Duration::from_millis(20));
        assert_eq!(last, (65_535, (u32::MAX - 100).wrapping_add(160)));
        // ...then the agent answers 100 ms later with wild numbers of its own.
        let first = r.rewrite(
            Source::Relayed(99),
            31_000,
            7_777_777,
            now + Duration::from_millis(120),
        );
        assert_eq!(first.0, 0, "sequence continues across the wrap");
        assert_eq!(
            first.1,
            last.1.wrapping_add(800),
            "100 ms later = 800 samples"
        );
        let next = r.rewrite(
            Source::Relayed(99),
            31_001,
            7_777_937,
            now + Duration::from_millis(140),
        );
        assert_eq!(next, (1, first.1.wrapping_add(160)));
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// A latch for a caller whose SDP names 203.0.113.9:4000 and whose
    /// SIP comes from the same IP, as the call machine builds it.
    fn caller_latch() -> Latch {
        let mut l = Latch::new(Duration::from_secs(2));
        l.resignal(Some(addr("203.0.113.9:4000")));
        l.allow(vec!["203.0.113.9".parse().unwrap()]);
        l
    }

    #[test]
    fn the_first_packet_from_the_negotiated_address_latches() {
        let now = t0();
        let mut l = caller_latch();
        assert_eq!(l.target(), Some(addr("203.0.113.9:4000")), "SDP until then");
        assert_eq!(
            l.accept(addr("203.0.113.9:4000"), now),
            Verdict::Latched { replaced: None }
        );
        assert_eq!(l.latched(), Some(addr("203.0.113.9:4000")));
        assert_eq!(
            l.accept(addr("203.0.113.9:4000"), now + Duration::from_millis(20)),
            Verdict::Accepted
        );
    }

    #[test]
    fn another_port_of_the_same_ip_is_refused_while_the_latched_source_is_live() {
        let now = t0();
        let mut l = caller_latch();
        l.accept(addr("203.0.113.9:4000"), now);
        let injector = addr("203.0.113.9:4002");
        for k in 1..=100u64 {
            let at = now + Duration::from_millis(20 * k);
            assert_eq!(l.accept(injector, at), Verdict::Rejected);
            assert_eq!(l.accept(addr("203.0.113.9:4000"), at), Verdict::Accepted);
        }
        assert_eq!(l.target(), Some(addr("203.0.113.9:4000")), "no takeover");
        // A stranger's IP never latches, silent source or not.
        assert_eq!(
            l.accept(addr("198.51.100.1:4000"), now + Duration::from_secs(60)),
            Verdict::Rejected
        );
    }

    #[test]
    fn behind_nat_the_first_packet_from_an_allowed_ip_latches_at_any_port() {
        let now = t0();
        // The SDP names a private address that never sends to us; the SIP
        // peer's public IP is allowed.
        let mut l = Latch::new(Duration::from_secs(2));
        l.resignal(Some(addr("10.0.0.5:4000")));
        l.allow(vec![
            "203.0.113.9".parse().unwrap(),
            "10.0.0.5".parse().unwrap(),
        ]);
        assert_eq!(
            l.accept(addr("198.51.100.1:61000"), now),
            Verdict::Rejected,
            "a guessed port does not latch"
        );
        let nat = addr("203.0.113.9:61000");
        assert_eq!(l.accept(nat, now), Verdict::Latched { replaced: None });
        assert_eq!(l.target(), Some(nat), "answer where it comes from");
        // Held: another port of the same public IP is someone else.
        assert_eq!(
            l.accept(addr("203.0.113.9:61002"), now + Duration::from_millis(20)),
            Verdict::Rejected
        );
    }

    #[test]
    fn a_nat_learnt_source_is_not_taken_over_later_by_the_sdp_address() {
        let now = t0();
        let mut l = Latch::new(Duration::from_secs(2));
        l.resignal(Some(addr("10.0.0.5:4000")));
        l.allow(vec![
            "203.0.113.9".parse().unwrap(),
            "10.0.0.5".parse().unwrap(),
        ]);
        let nat = addr("203.0.113.9:61000");
        l.accept(nat, now);
        // Ten seconds into the call, live: a packet forging the SDP's
        // private address does not take the leg.
        for k in 0..500u64 {
            l.accept(nat, now + Duration::from_millis(20 * k));
        }
        assert_eq!(
            l.accept(addr("10.0.0.5:4000"), now + Duration::from_secs(10)),
            Verdict::Rejected
        );
        assert_eq!(l.target(), Some(nat));
    }

    #[test]
    fn the_negotiated_address_outranks_a_source_learnt_first() {
        let now = t0();
        let mut l = caller_latch();
        // Another sender on the caller's IP races the caller's first packet.
        let injector = addr("203.0.113.9:4002");
        assert_eq!(l.accept(injector, now), Verdict::Latched { replaced: None });
        let caller = addr("203.0.113.9:4000");
        assert_eq!(
            l.accept(caller, now + Duration::from_millis(5)),
            Verdict::Latched {
                replaced: Some(injector)
            }
        );
        // Once the SDP's own address holds it, nothing displaces it live.
        assert_eq!(
            l.accept(injector, now + Duration::from_millis(10)),
            Verdict::Rejected
        );
        assert_eq!(l.target(), Some(caller));
    }

    #[test]
    fn another_source_is_learnt_after_the_latched_one_falls_silent() {
        let now = t0();
        let mut l = Latch::new(Duration::from_secs(2));
        l.resignal(Some(addr("10.0.0.5:4000")));
        l.allow(vec!["203.0.113.9".parse().unwrap()]);
        let first = addr("203.0.113.9:61000");
        let rebound = addr("203.0.113.9:61002");
        l.accept(first, now);
        assert_eq!(
            l.accept(rebound, now + Duration::from_millis(1999)),
            Verdict::Rejected,
            "not yet silent for the window"
        );
        // The NAT rebinds: the old port has been silent for 2 s.
        assert_eq!(
            l.accept(rebound, now + Duration::from_secs(2)),
            Verdict::Latched {
                replaced: Some(first)
            }
        );
        assert_eq!(l.target(), Some(rebound));
        assert_eq!(
            l.accept(first, now + Duration::from_millis(2020)),
            Verdict::Rejected
        );
        // Even silent, a stranger's IP cannot re-learn.
        assert_eq!(
            l.accept(addr("198.51.100.1:5000"), now + Duration::from_secs(10)),
            Verdict::Rejected
        );
        assert_eq!(l.target(), Some(rebound));
    }

    #[test]
    fn a_new_sdp_address_re_arms_the_latch_at_once() {
        let now = t0();
        let mut l = caller_latch();
        l.accept(addr("203.0.113.9:4000"), now);
        // A re-INVITE moves the media to another port of the same host.
        let moved = addr("203.0.113.9:5000");
        l.resignal(Some(moved));
        assert_eq!(l.latched(), None);
        assert_eq!(l.target(), Some(moved), "send to the new SDP address");
        assert_eq!(
            l.accept(moved, now + Duration::from_millis(20)),
            Verdict::Latched { replaced: None }
        );
        assert_eq!(
            l.accept(addr("203.0.113.9:4000"), now + Duration::from_millis(40)),
            Verdict::Rejected,
            "the old port is no longer the leg's"
        );
    }

    #[test]
    fn without_allowed_addresses_the_first_sender_latches() {
        let now = t0();
        let mut l = Latch::default();
        l.resignal(Some(addr("10.0.0.5:4000")));
        let nat = addr("203.0.113.9:61000");
        assert_eq!(l.accept(nat, now), Verdict::Latched { replaced: None });
        assert_eq!(
            l.accept(addr("198.51.100.1:5000"), now + Duration::from_secs(1)),
            Verdict::Rejected
        );
    }

    #[test]
    fn silence_is_flagged_after_the_timeout() {
        let now = t0();
        let mut s = Silence::new(now, Duration::from_secs(30));
        assert!(!s.timed_out(now + Duration::from_secs(29)));
        s.heard(now + Duration::from_secs(29));
        assert!(!s.timed_out(now + Duration::from_secs(58)));
        assert!(s.timed_out(now + Duration::from_secs(59)));
    }

    #[test]
    fn packets_are_read_and_restamped() {
        let p = packet(0, true, 5, 1234, 42, &[1, 2, 3]);
        let info = inspect(&p).unwrap();
        assert_eq!(
            (info.payload_type, info.marker, info.seq, info.ts, info.ssrc),
            (0, true, 5, 1234, 42)
        );
        assert_eq!(&p[info.payload_at..], &[1, 2, 3]);
        let q = restamp(&p, 9, 99, 7);
        let info = inspect(&q).unwrap();
        assert_eq!(
            (info.seq, info.ts, info.ssrc, info.marker),
            (9, 99, 7, true)
        );
        assert!(inspect(&[0u8; 5]).is_none());
        assert!(inspect(&[0x40; 12]).is_none(), "version 1 is not RTP 2");
    }
}
