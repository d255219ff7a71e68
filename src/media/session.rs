//! One call's media: the task that owns its legs' RTP sockets.
//!
//! The call machine (SIP) tells it, through [`Command`]s, where each leg's
//! far end is and in which codec, what to play to whom (prompts, hold
//! music), and how to connect the legs: not at all, a pair relayed two
//! ways, or mixed for a three-way transfer. Legs can be added while it
//! runs (a seat rung beside another gets a stream of its own). It reports back key presses, prompts
//! that finished, legs that fell silent (a media time-out) and legs that
//! stopped speaking ([`Event`]). Dropping the
//! [`SessionHandle`] ends the task and gives the ports back.
//!
//! The pieces it drives are pure and tested on their own: [`super::rtp`]
//! (latch, rewriter, silence), [`super::prompt`] (playlist, pacer),
//! [`super::dtmf`], [`super::g711`], [`super::mixer`].

use super::batch;
use super::dtmf::{Digit, EventReceiver};
use super::g711::{Codec, SAMPLES_PER_FRAME};
use super::mixer::{Frame, Mixer, PartyId};
use super::prompt::{Pacer, Playlist};
use super::quiet::QuietDetector;
use super::recorder::Recorder;
use super::rtp::{
    Latch, MediaSocket, RELEARN_AFTER, Rewriter, RtpInfo, Silence, Source, Verdict, inspect,
    packet, restamp_in_place,
};
use bytes::Bytes;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// How the legs hear each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Each leg hears only what is played to it.
    Isolated,
    /// The paired legs hear each other (a bridged call; legs 0 and 1
    /// until a [`Command::Pair`] says otherwise).
    Relay,
    /// Every leg hears the sum of the others (three-way transfer, 三方转接).
    Mix,
}

#[derive(Debug)]
pub enum Command {
    /// What the leg's SDP negotiated: where to send, in which codec, and
    /// whether we may send at all (`send = false` while the far end holds).
    Remote {
        leg: usize,
        addr: Option<SocketAddr>,
        codec: Codec,
        /// The payload type the SDP gave the codec (`None`: its static
        /// one, 0 or 8; offers may map it to a dynamic number).
        payload_type: Option<u8>,
        telephone_event: Option<u8>,
        send: bool,
        /// Whether the far end sends to us (not on hold): only then is its
        /// silence a media time-out.
        expect: bool,
        /// The IPs the leg's RTP may come from (its SDP address and its
        /// SIP peer's): when the SDP address itself sends nothing (NAT),
        /// the first packet from one of these latches the leg, and a
        /// stranger who guesses the port is refused. Empty: the first
        /// sender (tests). A changed `addr` re-arms the latch.
        allowed: Vec<IpAddr>,
    },
    /// Play to one leg (instead of what the mode would send it).
    Play {
        leg: usize,
        playlist: Box<Playlist>,
    },
    StopPlay {
        leg: usize,
    },
    Connect(Mode),
    /// The leg is answered: from now on its silence (while it should be
    /// sending) is a media time-out. Ringing and early media are not.
    Watch {
        leg: usize,
    },
    /// A leg hangs up; the others stay connected. Its stream is silent
    /// until a [`Command::Remote`] gives it to a new leg.
    Leave {
        leg: usize,
    },
    /// Record what these legs say, one WAV per leg, below `dir` (the
    /// recordings directory, which must exist; folders below it are made).
    Record {
        dir: PathBuf,
        paths: Vec<(usize, PathBuf)>,
    },
    /// Stop recording this leg (a caller's spoken request is over): its
    /// WAV is finished.
    StopRecord {
        leg: usize,
    },
    /// Tell the call ([`Event::Quiet`], once) when this leg has said
    /// nothing for `after` (see [`super::quiet`]): a spoken request's end.
    /// Counted from now; [`Command::StopRecord`] and [`Command::Leave`]
    /// stop listening.
    EndOnSilence {
        leg: usize,
        after: Duration,
    },
    /// A new leg (a seat offered the call, a trunk): it gets the next
    /// index ([`StreamAdder`] hands them out in order).
    AddLeg {
        socket: MediaSocket,
    },
    /// In relay mode, these two legs hear each other (the caller's and the
    /// leg it is joined to); the others hear only what is played to them.
    Pair {
        a: usize,
        b: usize,
    },
    /// Whether this leg's key presses (RTP events) reach its partner; they
    /// are reported either way. A seat's are not relayed: its feature
    /// codes (the number it transfers to) are for the gateway only.
    RelayKeys {
        leg: usize,
        relay: bool,
    },
    /// Two conversations at once, each pair relayed apart (a seat whose
    /// phone holds both of its calls live, mixing them itself: its local
    /// conference).
    Pairs {
        first: (usize, usize),
        second: (usize, usize),
    },
    /// The call's topology: these legs hear each other and the others only
    /// what is played to them. Two are relayed packet for packet (a relay
    /// is a mix with one source each way); three or more are mixed, each
    /// hearing the sum of the others (三方, a conference of three). Fewer
    /// than two: every leg is on its own. A leg taken out of the bridge is
    /// not ended (it may be on hold, or ringing); [`Command::Leave`] ends
    /// one.
    Bridge {
        legs: Vec<usize>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Digit {
        leg: usize,
        digit: Digit,
    },
    PromptDone {
        leg: usize,
    },
    MediaTimeout {
        leg: usize,
    },
    /// The leg stopped speaking ([`Command::EndOnSilence`]); `spoke`:
    /// whether it said anything at all since it was listened to.
    Quiet {
        leg: usize,
        spoke: bool,
    },
}

/// The call's side of a running session.
pub struct SessionHandle {
    /// Unbounded: commands come only from the call's own task, one per
    /// SIP event at most, and a lost `Remote` or `Connect` is a call with
    /// one-way or no audio.
    commands: mpsc::UnboundedSender<Command>,
    pub events: mpsc::Receiver<Event>,
    /// Our RTP address for each leg, for its SDP.
    pub locals: Vec<SocketAddr>,
    /// The index the next added leg gets.
    added: Arc<std::sync::atomic::AtomicUsize>,
}

/// Hands out the indices of legs added to a running session, in the order
/// their [`Command::AddLeg`] is sent. It does not keep the session alive:
/// once the [`SessionHandle`] is dropped, the session ends and its ports
/// go back, adder or not.
#[derive(Clone)]
pub struct StreamAdder {
    commands: mpsc::WeakUnboundedSender<Command>,
    next: Arc<std::sync::atomic::AtomicUsize>,
}

impl StreamAdder {
    /// Adds `socket` as the session's next leg: its index; `None` when the
    /// session has ended (the socket's port goes back).
    pub fn add(&self, socket: MediaSocket) -> Option<usize> {
        let commands = self.commands.upgrade()?;
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        commands.send(Command::AddLeg { socket }).ok()?;
        Some(i)
    }
}

impl SessionHandle {
    /// For adding legs to this session while it runs.
    pub fn stream_adder(&self) -> StreamAdder {
        StreamAdder {
            commands: self.commands.downgrade(),
            next: self.added.clone(),
        }
    }

    /// Queues a command; none is ever dropped while the session runs (a
    /// session that has ended ignores it).
    pub fn send(&self, command: Command) {
        if self.commands.send(command).is_err() {
            tracing::debug!("media session gone; command ignored");
        }
    }
}

struct Leg {
    socket: MediaSocket,
    latch: Latch,
    rewriter: Rewriter,
    codec: Codec,
    payload_type: u8,
    telephone_event: Option<u8>,
    send: bool,
    expect: bool,
    /// Answered: only then is silence a time-out.
    watched: bool,
    active: bool,
    dtmf: EventReceiver,
    silence: Silence,
    timed_out: bool,
    playing: Option<(Box<Playlist>, Pacer)>,
    /// The latest decoded 20 ms from this leg, for the mixer (boxed: only
    /// a mixed call has one).
    heard: Option<Box<Frame>>,
    /// What this leg says, when the call is recorded.
    recorder: Option<RecordingWriter>,
    /// Listening for the end of what this leg says.
    quiet: Option<QuietDetector>,
    /// Our own counters for frames we generate (prompts, mixed audio).
    local_seq: u16,
    local_ts: u32,
    /// Packets refused by the latch, for the log.
    rejected: u64,
    /// Its key presses (RTP events) are relayed to its partner.
    relay_keys: bool,
}

impl Leg {
    /// Whether the leg's silence now counts: answered, live, and two-way
    /// (a held stream may send nothing, RFC 3264 §8.4).
    fn is_watched(&self) -> bool {
        self.active && self.watched && self.expect && !self.timed_out
    }
}

/// Packet counters a session adds to (the daemon's metrics).
#[derive(Clone, Default)]
pub struct Counters {
    pub received: Option<prometheus::IntCounter>,
    pub sent: Option<prometheus::IntCounter>,
    /// Packets refused because they did not come from the leg's latched
    /// source (injected or stray RTP); not counted as received.
    pub rejected: Option<prometheus::IntCounter>,
}

/// How a session runs.
#[derive(Clone)]
pub struct Settings {
    /// Silence from an answered, two-way leg that ends it.
    pub media_timeout: Duration,
    /// Silence from a leg's latched RTP source after which another source
    /// may latch ([`Latch`]).
    pub relearn_after: Duration,
    pub counters: Counters,
}

impl Settings {
    pub fn new(media_timeout: Duration) -> Self {
        Settings {
            media_timeout,
            relearn_after: RELEARN_AFTER,
            counters: Counters::default(),
        }
    }
}

/// Starts a session over `sockets` (one per leg).
pub fn start(sockets: Vec<MediaSocket>, media_timeout: Duration) -> SessionHandle {
    start_with(sockets, Settings::new(media_timeout))
}

/// [`start`], counting packets in, out and refused.
pub fn start_counted(
    sockets: Vec<MediaSocket>,
    media_timeout: Duration,
    counters: Counters,
) -> SessionHandle {
    start_with(
        sockets,
        Settings {
            counters,
            ..Settings::new(media_timeout)
        },
    )
}

/// Starts a session over `sockets` (one per leg) with `settings`.
pub fn start_with(sockets: Vec<MediaSocket>, settings: Settings) -> SessionHandle {
    let Settings {
        media_timeout,
        relearn_after,
        counters,
    } = settings;
    let locals = sockets.iter().map(MediaSocket::local).collect();
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::channel(32);
    let now = Instant::now();
    let made = LegSettings {
        relearn_after,
        media_timeout,
    };
    let legs: Vec<Leg> = sockets
        .into_iter()
        .map(|socket| made.leg(socket, now))
        .collect();
    let added = Arc::new(std::sync::atomic::AtomicUsize::new(legs.len()));
    tokio::spawn(run(legs, cmd_rx, ev_tx, made, counters));
    SessionHandle {
        commands: cmd_tx,
        events: ev_rx,
        locals,
        added,
    }
}

/// What a new leg of a session starts with.
#[derive(Clone, Copy)]
struct LegSettings {
    relearn_after: Duration,
    media_timeout: Duration,
}

impl LegSettings {
    fn leg(self, socket: MediaSocket, now: Instant) -> Leg {
        let r = random_u32();
        Leg {
            socket,
            latch: Latch::new(self.relearn_after),
            rewriter: Rewriter::new(random_u32(), r as u16, r.rotate_left(16)),
            codec: Codec::Pcmu,
            payload_type: Codec::Pcmu.payload_type(),
            telephone_event: None,
            send: true,
            expect: false,
            watched: false,
            active: true,
            dtmf: EventReceiver::new(),
            silence: Silence::new(now, self.media_timeout),
            timed_out: false,
            playing: None,
            heard: None,
            recorder: None,
            quiet: None,
            local_seq: 0,
            local_ts: 0,
            rejected: 0,
            relay_keys: true,
        }
    }
}

const MIX_TICK: Duration = Duration::from_millis(20);

async fn run(
    mut legs: Vec<Leg>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<Event>,
    made: LegSettings,
    counters: Counters,
) {
    let media_timeout = made.media_timeout;
    let mut mode = Mode::Isolated;
    let mut pair: Pairs = [(0, 1), NO_PAIR];
    // Empty until a three-way call mixes (most calls never do).
    let mut mixer: Option<Box<Mixer>> = None;
    let mut next_mix: Option<Instant> = None;
    let mut scratch_pcm: Vec<i16> = Vec::with_capacity(SAMPLES_PER_FRAME);
    let mut scratch_out: Vec<u8> = Vec::with_capacity(SAMPLES_PER_FRAME);
    let mut outbox = Outbox::default();
    let mut turn = 0usize;
    // The legs' sockets, for the receive; a leg added pushes its own.
    let mut sockets: Vec<Arc<UdpSocket>> = legs.iter().map(|l| l.socket.socket.clone()).collect();
    // One timer for the session's life, re-armed only when something is
    // due sooner than it is set for, or once it has fired. A packet moves
    // its leg's silence deadline later: that costs nothing, and the timer
    // going off before the new deadline only makes one more turn.
    let far = Instant::now() + Duration::from_secs(3600);
    let sleep = tokio::time::sleep_until(far.into());
    tokio::pin!(sleep);
    let mut armed = far;
    loop {
        let mut wake = Instant::now() + Duration::from_secs(3600);
        for leg in &legs {
            if let Some((_, pacer)) = &leg.playing {
                wake = wake.min(pacer.next_deadline());
            }
            if leg.is_watched() {
                wake = wake.min(leg.silence.deadline());
            }
            if let Some(q) = &leg.quiet {
                wake = wake.min(q.deadline());
            }
        }
        if let Some(t) = next_mix {
            wake = wake.min(t);
        }
        if wake < armed || sleep.is_elapsed() {
            sleep.as_mut().reset(wake.into());
            armed = wake;
        }
        let received = tokio::select! {
            cmd = commands.recv() => match cmd {
                None => {
                    for (i, leg) in legs.iter_mut().enumerate() {
                        finish_recording(i, leg);
                    }
                    break;
                }
                Some(cmd) => {
                    if let Command::AddLeg { socket } = cmd {
                        sockets.push(socket.socket.clone());
                        legs.push(made.leg(socket, Instant::now()));
                    } else if let Command::Pair { a, b } = cmd {
                        pair = [(a, b), NO_PAIR];
                    } else if let Command::Pairs { first, second } = cmd {
                        // Two conversations at once, each relayed apart.
                        pair = [first, second];
                        mode = Mode::Relay;
                        next_mix = None;
                        if let Some(m) = mixer.as_deref_mut() {
                            let parties: Vec<PartyId> = m.parties().collect();
                            for id in parties {
                                let _ = m.leave(id);
                            }
                        }
                    } else if let Command::Bridge { legs: members } = cmd {
                        bridge(&members, &mut legs, &mut mode, &mut pair, &mut mixer, &mut next_mix);
                    } else {
                        apply(cmd, &mut legs, &mut mode, &mut mixer, &mut next_mix);
                    }
                    None
                }
            },
            i = ready_any(&sockets, turn) => Some(i),
            _ = &mut sleep => None,
        };
        turn = turn.wrapping_add(1);
        let now = Instant::now();
        if let Some(i) = received {
            // What the socket has queued, taken and handled without a
            // yield (the batch's room is the thread's).
            let (accepted, rejected) = batch::with_batch(|b| {
                let n = b.recv(&sockets[i]).unwrap_or(0);
                let mut accepted = 0;
                for k in 0..n {
                    let (bytes, from) = b.get(k);
                    if on_packet(
                        i,
                        from,
                        &mut legs,
                        bytes,
                        (mode, pair),
                        &events,
                        &mut scratch_pcm,
                        &mut outbox,
                        now,
                    ) {
                        accepted += 1;
                    }
                }
                (accepted, n as u64 - accepted)
            });
            if let Some(c) = &counters.received
                && accepted > 0
            {
                c.inc_by(accepted);
            }
            if let Some(c) = &counters.rejected
                && rejected > 0
            {
                c.inc_by(rejected);
            }
        }
        // Prompts due now.
        for (i, leg) in legs.iter_mut().enumerate() {
            let Some((playlist, pacer)) = &mut leg.playing else {
                continue;
            };
            let mut done = false;
            while let Some(slot) = pacer.next_due(now) {
                let Some(frame) = playlist.next_frame() else {
                    done = true;
                    break;
                };
                scratch_out.clear();
                leg.codec.encode(&frame, &mut scratch_out);
                let (seq, ts) =
                    leg.rewriter
                        .rewrite(Source::Local, slot.sequence, slot.timestamp, now);
                let p = packet(
                    leg.payload_type,
                    slot.marker,
                    seq,
                    ts,
                    leg.rewriter.ssrc,
                    &scratch_out,
                );
                // Fields, not `outbox.send(leg, ..)`: the playlist is
                // borrowed.
                if leg.send
                    && leg.active
                    && let Some(target) = leg.latch.target()
                {
                    outbox.send(&leg.socket.socket, target, p);
                }
            }
            if done {
                leg.playing = None;
                let _ = events.try_send(Event::PromptDone { leg: i });
            }
        }
        // The conference tick.
        if mode == Mode::Mix && next_mix.is_some_and(|t| now >= t) {
            next_mix = next_mix.map(|t| t + MIX_TICK);
            let mixer = mixer.get_or_insert_with(Default::default);
            for (i, leg) in legs.iter_mut().enumerate() {
                if leg.active {
                    let frame = leg.heard.take().map_or([0; SAMPLES_PER_FRAME], |f| *f);
                    let _ = mixer.push(PartyId(i as u32), &frame);
                }
            }
            let mixed: Vec<(usize, Frame)> =
                mixer.mix().map(|(id, f)| (id.0 as usize, *f)).collect();
            for (i, frame) in mixed {
                let leg = &mut legs[i];
                if leg.playing.is_some() {
                    continue;
                }
                scratch_out.clear();
                leg.codec.encode(&frame, &mut scratch_out);
                leg.local_seq = leg.local_seq.wrapping_add(1);
                leg.local_ts = leg.local_ts.wrapping_add(SAMPLES_PER_FRAME as u32);
                let (seq, ts) =
                    leg.rewriter
                        .rewrite(Source::Local, leg.local_seq, leg.local_ts, now);
                let p = packet(
                    leg.payload_type,
                    false,
                    seq,
                    ts,
                    leg.rewriter.ssrc,
                    &scratch_out,
                );
                send_to(leg, &p, &mut outbox);
            }
        }
        // What could not go at once waits for its socket to be writable: a
        // fresh socket's first non-blocking send is refused until the
        // reactor has seen it.
        if let Some(c) = &counters.sent
            && outbox.sent + outbox.queued.len() as u64 > 0
        {
            c.inc_by(outbox.sent + outbox.queued.len() as u64);
        }
        outbox.sent = 0;
        for (socket, bytes, target) in outbox.queued.drain(..) {
            let _ = socket.send_to(&bytes, target).await;
        }
        // Silence.
        for (i, leg) in legs.iter_mut().enumerate() {
            if leg.is_watched() && leg.silence.timed_out(now) {
                leg.timed_out = true;
                tracing::info!(
                    leg = i,
                    timeout_s = media_timeout.as_secs(),
                    "media time-out: no RTP from the leg"
                );
                let _ = events.try_send(Event::MediaTimeout { leg: i });
            }
            if let Some(q) = &mut leg.quiet
                && q.is_quiet(now)
            {
                let spoke = q.spoke();
                match events.try_send(Event::Quiet { leg: i, spoke }) {
                    Ok(()) => {
                        tracing::info!(leg = i, spoke, "the leg fell quiet");
                        leg.quiet = None;
                    }
                    // The call is behind: told on a later turn.
                    Err(mpsc::error::TrySendError::Full(_)) => q.defer(now + MIX_TICK),
                    Err(mpsc::error::TrySendError::Closed(_)) => leg.quiet = None,
                }
            }
        }
    }
}

fn apply(
    cmd: Command,
    legs: &mut [Leg],
    mode: &mut Mode,
    mixer: &mut Option<Box<Mixer>>,
    next_mix: &mut Option<Instant>,
) {
    match cmd {
        Command::Remote {
            leg,
            addr,
            codec,
            payload_type,
            telephone_event,
            send,
            expect,
            allowed,
        } => {
            if let Some(l) = legs.get_mut(leg) {
                if !l.active {
                    // A stream whose leg left, given to a new leg (a second
                    // three-way party): live again, with nothing of the old.
                    l.active = true;
                    l.heard = None;
                    l.watched = false;
                }
                // Only a moved address re-arms the latch: a re-INVITE that
                // keeps it (hold, resume) keeps the learnt source.
                if l.latch.signalled() != addr {
                    l.latch.resignal(addr);
                }
                l.latch.allow(allowed);
                l.codec = codec;
                l.payload_type = payload_type.unwrap_or(codec.payload_type());
                l.telephone_event = telephone_event;
                l.send = send;
                l.expect = expect;
                // Silence is measured from now: ringing was not silence.
                l.silence.heard(Instant::now());
                l.timed_out = false;
            }
        }
        Command::Watch { leg } => {
            if let Some(l) = legs.get_mut(leg) {
                l.watched = true;
                l.silence.heard(Instant::now());
                l.timed_out = false;
            }
        }
        Command::Play { leg, playlist } => {
            if let Some(l) = legs.get_mut(leg) {
                let r = random_u32();
                l.playing = Some((playlist, Pacer::new(Instant::now(), r, r as u16)));
            }
        }
        Command::StopPlay { leg } => {
            if let Some(l) = legs.get_mut(leg) {
                l.playing = None;
            }
        }
        Command::Connect(m) => {
            *mode = m;
            if m == Mode::Mix {
                let mixer = mixer.get_or_insert_with(Default::default);
                for (i, l) in legs.iter().enumerate() {
                    if l.active && !mixer.contains(PartyId(i as u32)) {
                        let _ = mixer.join(PartyId(i as u32));
                    }
                }
                *next_mix = Some(Instant::now() + MIX_TICK);
            } else {
                *next_mix = None;
            }
        }
        Command::Leave { leg } => {
            if let Some(l) = legs.get_mut(leg) {
                l.active = false;
                l.playing = None;
                l.quiet = None;
                if let Some(m) = mixer.as_deref_mut() {
                    let _ = m.leave(PartyId(leg as u32));
                }
                finish_recording(leg, l);
            }
        }
        Command::RelayKeys { leg, relay } => {
            if let Some(l) = legs.get_mut(leg) {
                l.relay_keys = relay;
            }
        }
        Command::StopRecord { leg } => {
            if let Some(l) = legs.get_mut(leg) {
                l.quiet = None;
                finish_recording(leg, l);
            }
        }
        Command::EndOnSilence { leg, after } => {
            if let Some(l) = legs.get_mut(leg) {
                l.quiet = Some(QuietDetector::new(after, Instant::now()));
            }
        }
        Command::Record { dir, paths } => {
            for (i, path) in paths {
                // A recording that cannot start is logged; the call goes on.
                if let Some(l) = legs.get_mut(i) {
                    l.recorder = Some(RecordingWriter::start(i, dir.clone(), path));
                }
            }
        }
        // Taken by the session's loop itself.
        Command::AddLeg { .. }
        | Command::Pair { .. }
        | Command::Pairs { .. }
        | Command::Bridge { .. } => {}
    }
}

/// Sets the topology (see [`Command::Bridge`]): a pair is relayed, three
/// or more are mixed, and only the members are in the mixer. Legs that are
/// gone (or unknown) are left out.
fn bridge(
    members: &[usize],
    legs: &mut [Leg],
    mode: &mut Mode,
    pair: &mut Pairs,
    mixer: &mut Option<Box<Mixer>>,
    next_mix: &mut Option<Instant>,
) {
    let mut live: Vec<usize> = Vec::with_capacity(members.len());
    for &i in members {
        if legs.get(i).is_some_and(|l| l.active) && !live.contains(&i) {
            live.push(i);
        }
    }
    if let Some(m) = mixer.as_deref_mut() {
        let in_mixer: Vec<PartyId> = m.parties().collect();
        for id in in_mixer {
            if !live.contains(&(id.0 as usize)) {
                let _ = m.leave(id);
            }
        }
    }
    match live.as_slice() {
        [] | [_] => {
            *mode = Mode::Isolated;
            *next_mix = None;
            *pair = [(0, 1), NO_PAIR];
        }
        [a, b] => {
            *pair = [(*a, *b), NO_PAIR];
            *mode = Mode::Relay;
            *next_mix = None;
        }
        _ => {
            let mixer = mixer.get_or_insert_with(Default::default);
            for &i in &live {
                if !mixer.contains(PartyId(i as u32)) {
                    let _ = mixer.join(PartyId(i as u32));
                }
                // What a leg said before it joined is not mixed in late.
                legs[i].heard = None;
            }
            if *mode != Mode::Mix || next_mix.is_none() {
                *next_mix = Some(Instant::now() + MIX_TICK);
            }
            *mode = Mode::Mix;
        }
    }
}

/// Handles one packet that arrived on leg `i`. Returns false when the
/// leg's latch refused it (not from the leg's source): it is dropped, and
/// counted as rejected rather than received.
#[allow(clippy::too_many_arguments)]
fn on_packet(
    i: usize,
    from: SocketAddr,
    legs: &mut [Leg],
    bytes: &mut [u8],
    (mode, pair): (Mode, Pairs),
    events: &mpsc::Sender<Event>,
    pcm: &mut Vec<i16>,
    outbox: &mut Outbox,
    now: Instant,
) -> bool {
    let Some(info) = inspect(bytes) else {
        return true;
    };
    let leg = &mut legs[i];
    if !leg.active {
        return true;
    }
    match leg.latch.accept(from, now) {
        Verdict::Accepted => {}
        Verdict::Latched { replaced: None } => {
            tracing::debug!(leg = i, %from, "RTP source latched");
        }
        Verdict::Latched {
            replaced: Some(old),
        } => {
            tracing::info!(leg = i, %from, %old, "RTP source re-learnt");
        }
        Verdict::Rejected => {
            leg.rejected += 1;
            // Logged at 1, 2, 4, 8, ... refused packets: a flood costs a
            // handful of lines.
            if leg.rejected.is_power_of_two() {
                tracing::warn!(
                    leg = i,
                    %from,
                    latched = ?leg.latch.latched(),
                    rejected = leg.rejected,
                    "RTP from another source than the leg's refused"
                );
            }
            return false;
        }
    }
    leg.silence.heard(now);
    leg.timed_out = false;
    deliver(i, bytes, info, legs, (mode, pair), events, pcm, outbox, now);
    true
}

/// Acts on an accepted packet from leg `i`: a key press, a recording, the
/// relay or the mixer.
#[allow(clippy::too_many_arguments)]
fn deliver(
    i: usize,
    bytes: &mut [u8],
    info: RtpInfo,
    legs: &mut [Leg],
    (mode, pair): (Mode, Pairs),
    events: &mpsc::Sender<Event>,
    pcm: &mut Vec<i16>,
    outbox: &mut Outbox,
    now: Instant,
) {
    let leg = &mut legs[i];
    let payload = &bytes[info.payload_at..];
    if Some(info.payload_type) == leg.telephone_event {
        if let Some(digit) = leg
            .dtmf
            .on_packet(info.ts, info.marker, info.seq, payload, now)
        {
            tracing::info!(leg = i, %digit, "DTMF");
            let _ = events.try_send(Event::Digit { leg: i, digit });
        }
        // Bridged: the far end hears the key too (its IVR may need it),
        // in its own telephone-event payload type — unless the leg's keys
        // are the gateway's alone (a seat's feature codes).
        if mode == Mode::Relay
            && legs[i].relay_keys
            && let Some(to) = partner(legs, i, pair)
            && let Some(pt) = to.telephone_event
            && to.active
        {
            let (seq, ts) = to
                .rewriter
                .rewrite(Source::Relayed(info.ssrc), info.seq, info.ts, now);
            let p = packet(pt, info.marker, seq, ts, to.rewriter.ssrc, payload);
            send_to(to, &p, outbox);
        }
        return;
    }
    let codec = if info.payload_type == leg.payload_type {
        leg.codec
    } else {
        match Codec::from_payload_type(info.payload_type) {
            Some(c) => c,
            None => return,
        }
    };
    let leg = &mut legs[i];
    if leg.recorder.is_some() || leg.quiet.is_some() {
        pcm.clear();
        codec.decode(payload, pcm);
        if let Some(r) = &mut leg.recorder {
            r.write_packet(pcm, info.ssrc, info.ts, now);
        }
        if let Some(q) = &mut leg.quiet {
            q.frame(pcm, now);
        }
    }
    match mode {
        Mode::Isolated => {}
        Mode::Relay => {
            let Some(to) = partner(legs, i, pair) else {
                return;
            };
            if to.playing.is_some() || !to.active {
                return;
            }
            let (seq, ts) = to
                .rewriter
                .rewrite(Source::Relayed(info.ssrc), info.seq, info.ts, now);
            if to.codec == codec && to.payload_type == info.payload_type {
                restamp_in_place(bytes, seq, ts, to.rewriter.ssrc);
                send_to(to, bytes, outbox);
            } else if to.codec == codec {
                // The same codec under another payload type number.
                let out = packet(
                    to.payload_type,
                    info.marker,
                    seq,
                    ts,
                    to.rewriter.ssrc,
                    payload,
                );
                send_to(to, &out, outbox);
            } else {
                // Transcode between A-law and μ-law.
                pcm.clear();
                codec.decode(payload, pcm);
                let mut enc = Vec::with_capacity(pcm.len());
                to.codec.encode(pcm, &mut enc);
                let out = packet(
                    to.payload_type,
                    info.marker,
                    seq,
                    ts,
                    to.rewriter.ssrc,
                    &enc,
                );
                send_to(to, &out, outbox);
            }
        }
        Mode::Mix => {
            pcm.clear();
            codec.decode(payload, pcm);
            let mut frame = [0i16; SAMPLES_PER_FRAME];
            let k = pcm.len().min(SAMPLES_PER_FRAME);
            frame[..k].copy_from_slice(&pcm[..k]);
            legs[i].heard = Some(Box::new(frame));
        }
    }
}

/// A loop turn's sends. A packet goes at once when its socket takes it;
/// one it refuses (not yet writable) waits for the turn's end, and so does
/// every packet after it, so none overtakes another.
#[derive(Default)]
struct Outbox {
    /// Sent at once this turn, for the counter.
    sent: u64,
    /// To send, waiting for the socket, at the turn's end.
    queued: Vec<(Arc<UdpSocket>, Bytes, SocketAddr)>,
}

impl Outbox {
    fn send(&mut self, socket: &Arc<UdpSocket>, target: SocketAddr, bytes: impl AsRef<[u8]>) {
        let bytes = bytes.as_ref();
        if self.queued.is_empty() {
            match socket.try_send_to(bytes, target) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                // Sent, or refused for good (an unreachable target): a
                // datagram is not retried, as the awaited send does not.
                _ => {
                    self.sent += 1;
                    return;
                }
            }
        }
        self.queued
            .push((socket.clone(), Bytes::copy_from_slice(bytes), target));
    }
}

/// Closes a leg's recording: its writer finishes the WAV and logs where it
/// is.
fn finish_recording(_i: usize, leg: &mut Leg) {
    leg.recorder = None;
}

/// A recording written on its own thread: disk I/O (a slow or stalled
/// volume) must never hold up the media task, and so the calls. Frames go
/// through a bounded queue; when the disk falls behind, frames are dropped
/// and counted, never waited for.
struct RecordingWriter {
    frames: std::sync::mpsc::SyncSender<Vec<i16>>,
    dropped: u64,
    /// When recording began: every leg's track starts here, so the tracks
    /// of one call line up sample for sample.
    started: Instant,
    /// Samples written so far (or queued).
    written: u64,
    /// The last packet's source and RTP timestamp, to see gaps (loss, hold,
    /// silence suppression) and fill them with silence.
    last: Option<(u32, u32)>,
    last_len: u64,
}

/// The longest gap filled with silence at once (a leg back from a long
/// hold is re-aligned to the clock instead).
const MAX_GAP_SAMPLES: u32 = 8000 * 10;

/// Frames queued before dropping: 10 s of 20 ms frames.
const RECORDING_QUEUE: usize = 500;

impl RecordingWriter {
    fn start(leg: usize, dir: PathBuf, path: PathBuf) -> RecordingWriter {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<i16>>(RECORDING_QUEUE);
        let spawned = std::thread::Builder::new()
            .name("recording".into())
            .spawn(move || {
                let mut recorder = match Recorder::create_below(&dir, &path) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(leg, error = %e, "recording not started");
                        return;
                    }
                };
                // Until the call drops its end of the queue.
                for frame in rx {
                    recorder.write_frame(&frame);
                }
                match recorder.finish() {
                    Ok(summary) => tracing::info!(
                        leg,
                        path = %summary.path.display(),
                        seconds = summary.duration.as_secs(),
                        "recording written"
                    ),
                    Err(e) => tracing::warn!(leg, error = %e, "recording incomplete"),
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(leg, error = %e, "recording thread not started");
        }
        RecordingWriter {
            frames: tx,
            dropped: 0,
            started: Instant::now(),
            written: 0,
            last: None,
            last_len: 0,
        }
    }

    /// Writes a packet's audio where it belongs in time: the first after
    /// the start (or after a new source, or a gap too long to trust the
    /// timestamps) by the wall clock, later ones by RTP timestamp, with
    /// silence in between.
    fn write_packet(&mut self, pcm: &[i16], ssrc: u32, ts: u32, now: Instant) {
        let expected = match self.last {
            Some((s, last_ts)) if s == ssrc => {
                let step = ts.wrapping_sub(last_ts);
                (step <= MAX_GAP_SAMPLES).then_some(step)
            }
            _ => None,
        };
        let silence = match expected {
            // The gap beyond the previous packet's own length.
            Some(step) => u64::from(step).saturating_sub(self.last_len),
            None => {
                let due = (now.saturating_duration_since(self.started).as_micros() / 125) as u64;
                due.saturating_sub(self.written)
            }
        };
        if silence > 0 {
            let silence = silence.min(u64::from(MAX_GAP_SAMPLES)) as usize;
            self.write(&vec![0i16; silence]);
        }
        self.write(pcm);
        self.last = Some((ssrc, ts));
        self.last_len = pcm.len() as u64;
    }

    fn write(&mut self, pcm: &[i16]) {
        self.written += pcm.len() as u64;
        if self.frames.try_send(pcm.to_vec()).is_err() {
            self.dropped += 1;
            if self.dropped.is_power_of_two() {
                tracing::warn!(
                    dropped = self.dropped,
                    "recording falls behind; frames dropped"
                );
            }
        }
    }
}

/// The relayed pairs: the first always, the second when two
/// conversations run at once ([`Command::Pairs`]).
type Pairs = [(usize, usize); 2];

/// No second pair.
const NO_PAIR: (usize, usize) = (usize::MAX, usize::MAX);

/// The leg a relayed leg's audio goes to: the paired legs hear each
/// other; a leg outside the pairs (or with no partner) relays to no one.
fn partner(legs: &mut [Leg], i: usize, pairs: Pairs) -> Option<&mut Leg> {
    let other = pairs.iter().find_map(|&(a, b)| match i {
        _ if i == a && i != b => Some(b),
        _ if i == b && i != a => Some(a),
        _ => None,
    })?;
    legs.get_mut(other)
}

/// Sends to the leg's far end, if it may be sent to.
fn send_to(leg: &Leg, bytes: &[u8], outbox: &mut Outbox) {
    if !leg.send || !leg.active {
        return;
    }
    if let Some(target) = leg.latch.target() {
        outbox.send(&leg.socket.socket, target, bytes);
    }
}

/// Waits until one of the sockets has something to read: its index.
async fn ready_any(sockets: &[Arc<UdpSocket>], start: usize) -> usize {
    use std::future::poll_fn;
    use std::task::Poll;
    let n = sockets.len();
    // A rotating start, so a flood on one leg cannot starve the others.
    // Readiness is the runtime's cached state (no system call); an error
    // (none is expected for UDP) counts as ready, and the read says.
    poll_fn(|cx| {
        for k in 0..n {
            let i = (start + k) % n;
            if sockets[i].poll_recv_ready(cx).is_ready() {
                return Poll::Ready(i);
            }
        }
        Poll::Pending
    })
    .await
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    u32::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::mixer::goertzel_power;
    use crate::media::rtp::PortPool;
    use std::net::IpAddr;

    fn tone(freq: f64, n: usize, offset: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                ((2.0 * std::f64::consts::PI * freq * (i + offset) as f64 / 8000.0).sin() * 8000.0)
                    as i16
            })
            .collect()
    }

    /// The shipped welcome prompt, as a playlist.
    fn welcome() -> crate::media::prompt::Playlist {
        let lib = crate::media::prompt::PromptLibrary::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts"),
        )
        .unwrap();
        crate::media::prompt::Playlist::new(&lib, [crate::media::prompt::Item::prompt("welcome")])
            .unwrap()
    }

    async fn recv_frames(sock: &UdpSocket, count: usize) -> Vec<i16> {
        let mut pcm = Vec::new();
        let mut buf = [0u8; 2048];
        for _ in 0..count {
            let n = tokio::time::timeout(Duration::from_secs(2), sock.recv(&mut buf))
                .await
                .expect("a packet in time")
                .unwrap();
            let info = inspect(&buf[..n]).unwrap();
            Codec::from_payload_type(info.payload_type)
                .unwrap()
                .decode(&buf[info.payload_at..n], &mut pcm);
        }
        pcm
    }

    /// Three parties on loopback, each sending its own tone: each hears the
    /// other two and not itself (a three-way transfer, measured with a
    /// Goertzel detector on the decoded RTP it receives).
    #[tokio::test]
    async fn in_a_three_way_call_each_party_hears_the_other_two() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let pool = PortPool::new(ip, 32_000, 32_100);
        let mut sockets = Vec::new();
        for _ in 0..3 {
            sockets.push(pool.allocate().await.unwrap());
        }
        let session = start(sockets, Duration::from_secs(30));
        let freqs = [400.0, 700.0, 1100.0];
        let mut parties = Vec::new();
        for (i, codec) in [Codec::Pcmu, Codec::Pcma, Codec::Pcmu]
            .into_iter()
            .enumerate()
        {
            let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            session.send(Command::Remote {
                leg: i,
                addr: Some(s.local_addr().unwrap()),
                codec,
                telephone_event: Some(101),
                send: true,
                payload_type: None,
                expect: true,
                allowed: Vec::new(),
            });
            parties.push((s, codec));
        }
        session.send(Command::Connect(Mode::Mix));
        // Everyone talks for a second, 20 ms at a time.
        let locals = session.locals.clone();
        let heard = talk(&parties, &locals, &freqs, 50, 0).await;
        for (i, pcm) in heard.iter().enumerate() {
            assert!(
                pcm.len() >= 160 * 20,
                "party {i} heard {} samples",
                pcm.len()
            );
            let tail = &pcm[pcm.len() - 160 * 20..];
            let power = |f: f64| goertzel_power(tail, f, 8000.0);
            for (j, f) in freqs.iter().enumerate() {
                if i == j {
                    assert!(power(*f) < 1e5, "party {i} hears itself: {}", power(*f));
                } else {
                    assert!(
                        power(*f) > 1e6,
                        "party {i} does not hear party {j}: {}",
                        power(*f)
                    );
                }
            }
        }
    }

    /// Parties talking on their own sockets, each a tone of its own, for
    /// `ticks` of 20 ms: what each heard, decoded.
    async fn talk(
        parties: &[(UdpSocket, Codec)],
        locals: &[SocketAddr],
        freqs: &[f64],
        ticks: usize,
        from_tick: usize,
    ) -> Vec<Vec<i16>> {
        let mut heard: Vec<Vec<i16>> = vec![Vec::new(); parties.len()];
        for tick in from_tick..from_tick + ticks {
            for (i, (s, codec)) in parties.iter().enumerate() {
                let pcm = tone(freqs[i], 160, tick * 160);
                let mut payload = Vec::new();
                codec.encode(&pcm, &mut payload);
                let p = packet(
                    codec.payload_type(),
                    false,
                    tick as u16,
                    (tick * 160) as u32,
                    1000 + i as u32,
                    &payload,
                );
                s.send_to(&p, locals[i]).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            for (i, (s, _)) in parties.iter().enumerate() {
                let mut buf = [0u8; 2048];
                while let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(1), s.recv(&mut buf)).await
                {
                    let info = inspect(&buf[..n]).unwrap();
                    Codec::from_payload_type(info.payload_type)
                        .unwrap()
                        .decode(&buf[info.payload_at..n], &mut heard[i]);
                }
            }
        }
        heard
    }

    /// Whether the last 400 ms of `pcm` carry `freq` (Goertzel).
    fn hears(pcm: &[i16], freq: f64) -> bool {
        pcm.len() >= 160 * 20 && goertzel_power(&pcm[pcm.len() - 160 * 20..], freq, 8000.0) > 1e6
    }

    /// The call's topology as a three-way call runs it: caller, seat and
    /// sub-centre bridged (each hears the other two, not itself) while a
    /// fourth leg — a seat that rang — is outside and hears nothing; then
    /// the seat leaves and the two left are re-paired, hearing each other.
    #[tokio::test]
    async fn a_bridge_of_three_mixes_only_its_members_and_a_leg_leaving_re_pairs_the_two() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let pool = PortPool::new(ip, 33_200, 33_300);
        let mut sockets = Vec::new();
        for _ in 0..4 {
            sockets.push(pool.allocate().await.unwrap());
        }
        let session = start(sockets, Duration::from_secs(30));
        let freqs = [400.0, 800.0, 1200.0, 1600.0];
        let mut parties = Vec::new();
        for (i, codec) in [Codec::Pcmu, Codec::Pcma, Codec::Pcmu, Codec::Pcmu]
            .into_iter()
            .enumerate()
        {
            let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            session.send(Command::Remote {
                leg: i,
                addr: Some(s.local_addr().unwrap()),
                codec,
                telephone_event: Some(101),
                send: true,
                payload_type: None,
                expect: true,
                allowed: Vec::new(),
            });
            parties.push((s, codec));
        }
        let locals = session.locals.clone();
        // First caller and seat, relayed; then the sub-centre joins.
        session.send(Command::Bridge { legs: vec![0, 1] });
        let heard = talk(&parties, &locals, &freqs, 25, 0).await;
        assert!(hears(&heard[0], 800.0) && hears(&heard[1], 400.0));
        assert!(!hears(&heard[2], 400.0) && !hears(&heard[0], 1200.0));
        session.send(Command::Bridge {
            legs: vec![0, 1, 2],
        });
        let heard = talk(&parties, &locals, &freqs, 50, 25).await;
        for (i, pcm) in heard.iter().enumerate().take(3) {
            for (j, &freq) in freqs.iter().enumerate() {
                let expected = i != j && j < 3;
                assert_eq!(hears(pcm, freq), expected, "party {i} hearing party {j}");
            }
        }
        assert!(
            heard[3].len() < 160 * 5,
            "the leg outside the bridge hears nothing: {} samples",
            heard[3].len()
        );
        // The seat hangs up: caller and sub-centre go on, relayed.
        session.send(Command::Leave { leg: 1 });
        session.send(Command::Bridge { legs: vec![0, 2] });
        let heard = talk(&parties, &locals, &freqs, 50, 75).await;
        assert!(hears(&heard[0], 1200.0), "the caller hears the sub-centre");
        assert!(hears(&heard[2], 400.0), "the sub-centre hears the caller");
        assert!(!hears(&heard[0], 800.0) && !hears(&heard[2], 800.0));
        assert!(!hears(&heard[0], 400.0), "the caller does not hear itself");
        assert!(heard[1].len() < 160 * 5, "the seat that left hears nothing");
        // The stream the seat left is given to a new party (a second
        // three-way): live again, mixed with the other two.
        let newcomer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        session.send(Command::Remote {
            leg: 1,
            addr: Some(newcomer.local_addr().unwrap()),
            codec: Codec::Pcmu,
            telephone_event: Some(101),
            send: true,
            payload_type: None,
            expect: true,
            allowed: Vec::new(),
        });
        session.send(Command::Bridge {
            legs: vec![0, 1, 2],
        });
        parties[1] = (newcomer, Codec::Pcmu);
        let heard = talk(&parties, &locals, &freqs, 50, 125).await;
        assert!(hears(&heard[1], 400.0) && hears(&heard[1], 1200.0));
        assert!(hears(&heard[0], 800.0) && hears(&heard[2], 800.0));
    }

    /// The security probe's attack: another port of the caller's IP floods
    /// the caller's leg with audio of its own while the caller talks. The
    /// seat hears the caller only, the injector hears nothing of the call,
    /// and every injected packet is counted as rejected, none as received.
    #[tokio::test]
    async fn another_port_of_the_callers_ip_can_neither_inject_nor_listen() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let pool = PortPool::new(ip, 33_000, 33_100);
        let a = pool.allocate().await.unwrap();
        let b = pool.allocate().await.unwrap();
        let counter = |name: &str| prometheus::IntCounter::new(name, name).unwrap();
        let (received, sent, rejected) = (counter("rx"), counter("tx"), counter("rej"));
        let session = start_counted(
            vec![a, b],
            Duration::from_secs(30),
            Counters {
                received: Some(received.clone()),
                sent: Some(sent.clone()),
                rejected: Some(rejected.clone()),
            },
        );
        let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let seat = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let injector = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for (leg, s) in [(0, &caller), (1, &seat)] {
            session.send(Command::Remote {
                leg,
                addr: Some(s.local_addr().unwrap()),
                codec: Codec::Pcmu,
                telephone_event: None,
                send: true,
                payload_type: None,
                expect: true,
                // As the call machine sends it: the SDP's IP and the SIP
                // peer's, here the same loopback address the injector has.
                allowed: vec![ip],
            });
        }
        session.send(Command::Connect(Mode::Relay));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let locals = session.locals.clone();
        let frame = |freq: f64, tick: usize| {
            let mut ulaw = Vec::new();
            Codec::Pcmu.encode(&tone(freq, 160, tick * 160), &mut ulaw);
            ulaw
        };
        let mut said = Vec::new();
        let mut seat_heard: Vec<Vec<u8>> = Vec::new();
        let mut caller_heard = 0usize;
        let mut buf = [0u8; 2048];
        for tick in 0..50usize {
            // The caller speaks first, so its first packet latches its leg.
            let voice = frame(500.0, tick);
            let p = packet(0, false, tick as u16, (tick * 160) as u32, 11, &voice);
            caller.send_to(&p, locals[0]).await.unwrap();
            said.push(voice);
            let p = packet(
                0,
                false,
                tick as u16,
                (tick * 160) as u32,
                22,
                &frame(900.0, tick),
            );
            seat.send_to(&p, locals[1]).await.unwrap();
            // 8 injected packets a tick: 400 in all.
            for k in 0..8usize {
                let n = tick * 8 + k;
                let p = packet(0, false, n as u16, (n * 160) as u32, 33, &frame(1800.0, n));
                injector.send_to(&p, locals[0]).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(1), seat.recv(&mut buf)).await
            {
                let info = inspect(&buf[..n]).unwrap();
                seat_heard.push(buf[info.payload_at..n].to_vec());
            }
            while let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_millis(1), caller.recv(&mut buf)).await
            {
                caller_heard += 1;
            }
        }
        let leak = tokio::time::timeout(Duration::from_millis(200), injector.recv(&mut buf)).await;
        assert!(leak.is_err(), "the injector hears nothing of the call");
        assert!(caller_heard > 0, "the caller hears the seat");
        assert!(
            seat_heard.len() >= 40,
            "the seat heard {} packets",
            seat_heard.len()
        );
        for payload in &seat_heard {
            assert!(
                said.contains(payload),
                "the seat hears what the caller said, nothing else"
            );
        }
        let mut pcm = Vec::new();
        for payload in &seat_heard {
            Codec::Pcmu.decode(payload, &mut pcm);
        }
        let power = |f: f64| goertzel_power(&pcm, f, 8000.0);
        assert!(power(500.0) > 1e6, "the caller's tone: {}", power(500.0));
        assert!(power(1800.0) < 1e5, "the injected tone: {}", power(1800.0));
        for _ in 0..100 {
            if rejected.get() >= 400 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(rejected.get(), 400, "every injected packet is refused");
        assert_eq!(
            received.get(),
            100,
            "the parties' packets, not the injector's"
        );
    }

    #[tokio::test]
    async fn only_an_answered_two_way_leg_times_out() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let pool = PortPool::new(ip, 32_400, 32_410);
        let sockets = vec![
            pool.allocate().await.unwrap(),
            pool.allocate().await.unwrap(),
        ];
        let timeout = Duration::from_millis(200);
        let mut session = start(sockets, timeout);
        let far = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let remote = |leg, expect| Command::Remote {
            leg,
            addr: Some(far.local_addr().unwrap()),
            codec: Codec::Pcmu,
            telephone_event: None,
            send: true,
            payload_type: None,
            expect,
            allowed: Vec::new(),
        };
        // Leg 0 rings (not watched); leg 1 is answered but on hold (a
        // sendonly far end may send nothing).
        session.send(remote(0, true));
        session.send(remote(1, false));
        session.send(Command::Watch { leg: 1 });
        let quiet = tokio::time::timeout(timeout * 4, session.events.recv()).await;
        assert!(
            quiet.is_err(),
            "no time-out while ringing or held: {quiet:?}"
        );
        // Answered: now its silence counts.
        session.send(Command::Watch { leg: 0 });
        let ev = tokio::time::timeout(timeout * 4, session.events.recv())
            .await
            .expect("a time-out");
        assert_eq!(ev, Some(Event::MediaTimeout { leg: 0 }));
    }

    /// A caller's spoken request: listened to, it speaks (a tone, real
    /// RTP), then sends silence; the session reports it quiet once, a
    /// window after its last voice frame, never while it speaks.
    #[tokio::test]
    async fn a_leg_listened_to_is_reported_quiet_once_it_stops_speaking() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let pool = PortPool::new(ip, 33_400, 33_410);
        let mut session = start(
            vec![pool.allocate().await.unwrap()],
            Duration::from_secs(30),
        );
        let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        session.send(Command::Remote {
            leg: 0,
            addr: Some(caller.local_addr().unwrap()),
            codec: Codec::Pcmu,
            telephone_event: None,
            send: true,
            payload_type: None,
            expect: true,
            allowed: Vec::new(),
        });
        let window = Duration::from_secs(1);
        session.send(Command::EndOnSilence {
            leg: 0,
            after: window,
        });
        let send = |k: usize, pcm: &[i16]| {
            let mut ulaw = Vec::new();
            Codec::Pcmu.encode(pcm, &mut ulaw);
            packet(0, false, k as u16, 160 * k as u32, 3, &ulaw)
        };
        // Four seconds of speech, paced: longer than the window, so only
        // its voice keeps the session from reporting quiet.
        let speech = tone(300.0, 160 * 200, 0);
        for (k, chunk) in speech.chunks(160).enumerate() {
            caller
                .send_to(&send(k, chunk), session.locals[0])
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(
                session.events.try_recv().is_err(),
                "nothing reported while it speaks (frame {k})"
            );
        }
        let stopped = Instant::now();
        // Then silence, as a phone sends it, until the report comes.
        let mut k = 200;
        let got = loop {
            caller
                .send_to(&send(k, &[0; 160]), session.locals[0])
                .await
                .unwrap();
            k += 1;
            if let Ok(ev) = session.events.try_recv() {
                break ev;
            }
            assert!(stopped.elapsed() < window * 10, "never reported quiet");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(
            got,
            Event::Quiet {
                leg: 0,
                spoke: true
            }
        );
        assert!(stopped.elapsed() >= window - Duration::from_millis(100));
        // Once: no second report, though it stays silent.
        let again = tokio::time::timeout(window, session.events.recv()).await;
        assert!(again.is_err(), "{again:?}");
    }

    /// A leg that stops sending at all is as quiet as one sending silence;
    /// and stopping the recording stops the listening.
    #[tokio::test]
    async fn quiet_is_measured_on_the_clock_and_ends_with_the_recording() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let pool = PortPool::new(ip, 33_410, 33_420);
        let mut session = start(
            vec![pool.allocate().await.unwrap()],
            Duration::from_secs(30),
        );
        let window = Duration::from_millis(300);
        session.send(Command::EndOnSilence {
            leg: 0,
            after: window,
        });
        let ev = tokio::time::timeout(window * 10, session.events.recv())
            .await
            .expect("reported without a packet");
        assert_eq!(
            ev,
            Some(Event::Quiet {
                leg: 0,
                spoke: false
            })
        );
        session.send(Command::EndOnSilence {
            leg: 0,
            after: window,
        });
        session.send(Command::StopRecord { leg: 0 });
        let none = tokio::time::timeout(window * 3, session.events.recv()).await;
        assert!(none.is_err(), "{none:?}");
    }

    #[tokio::test]
    async fn a_prompt_plays_as_paced_rtp_and_a_key_press_is_reported() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let pool = PortPool::new(ip, 32_200, 32_300);
        let socket = pool.allocate().await.unwrap();
        let mut session = start(vec![socket], Duration::from_secs(30));
        let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        session.send(Command::Remote {
            leg: 0,
            addr: Some(caller.local_addr().unwrap()),
            codec: Codec::Pcma,
            telephone_event: Some(101),
            send: true,
            payload_type: None,
            expect: true,
            allowed: Vec::new(),
        });
        let lib = crate::media::prompt::PromptLibrary::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts"),
        )
        .unwrap();
        let playlist =
            Playlist::new(&lib, [crate::media::prompt::Item::prompt("digit_5")]).unwrap();
        let frames = playlist.total_frames().unwrap();
        session.send(Command::Play {
            leg: 0,
            playlist: Box::new(playlist),
        });
        let pcm = recv_frames(&caller, frames).await;
        // What arrives is the WAV through A-law and back.
        let wav = lib.get("digit_5").unwrap();
        let mut expected = Vec::new();
        let mut enc = Vec::new();
        Codec::Pcma.encode(wav, &mut enc);
        Codec::Pcma.decode(&enc, &mut expected);
        assert_eq!(&pcm[..expected.len()], &expected[..]);
        let done = tokio::time::timeout(Duration::from_secs(2), session.events.recv())
            .await
            .unwrap();
        assert_eq!(done, Some(Event::PromptDone { leg: 0 }));
        // The caller presses 1 (RFC 4733, three packets and an end).
        for (k, (dur, end)) in [(400u16, false), (800, false), (1200, true)]
            .iter()
            .enumerate()
        {
            let payload = [
                1u8,
                if *end { 0x80 | 10 } else { 10 },
                (dur >> 8) as u8,
                *dur as u8,
            ];
            let p = packet(101, k == 0, 77 + k as u16, 123_456, 9, &payload);
            caller.send_to(&p, session.locals[0]).await.unwrap();
        }
        let ev = tokio::time::timeout(Duration::from_secs(2), session.events.recv())
            .await
            .unwrap();
        assert_eq!(
            ev,
            Some(Event::Digit {
                leg: 0,
                digit: Digit::One
            })
        );
    }

    /// A one-leg session (a caller waiting in a queue) in relay mode: its
    /// RTP goes nowhere, and the session keeps running.
    #[tokio::test]
    async fn a_one_leg_session_in_relay_mode_relays_to_no_one_and_keeps_running() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let pool = PortPool::new(ip, 32_540, 32_560);
        let session = start(
            vec![pool.allocate().await.unwrap()],
            Duration::from_secs(30),
        );
        let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        session.send(Command::Remote {
            leg: 0,
            addr: Some(caller.local_addr().unwrap()),
            codec: Codec::Pcmu,
            telephone_event: Some(101),
            send: true,
            payload_type: None,
            expect: true,
            allowed: Vec::new(),
        });
        session.send(Command::Connect(Mode::Relay));
        tokio::time::sleep(Duration::from_millis(20)).await;
        for i in 0..3u16 {
            caller
                .send_to(
                    &packet(0, false, i, 160 * u32::from(i), 5, &[0xff; 160]),
                    session.locals[0],
                )
                .await
                .unwrap();
            // A key press is relayed in relay mode too.
            caller
                .send_to(
                    &packet(101, i == 0, 10 + i, 0, 5, &[1, 10, 0, 160]),
                    session.locals[0],
                )
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Still alive: a prompt played to the leg arrives.
        session.send(Command::Play {
            leg: 0,
            playlist: Box::new(welcome()),
        });
        assert!(!recv_frames(&caller, 3).await.is_empty());
    }

    /// Commands queued faster than the session takes them are all applied,
    /// in order: the last `Remote` of a burst decides where RTP goes.
    #[tokio::test]
    async fn a_burst_of_commands_loses_none() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let pool = PortPool::new(ip, 32_560, 32_580);
        let session = start(
            vec![pool.allocate().await.unwrap()],
            Duration::from_secs(30),
        );
        let decoy = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // No await between these: the session task cannot run until all
        // 500 are queued (the old queue held 32).
        for n in 0..500 {
            let to = if n == 499 { &caller } else { &decoy };
            session.send(Command::Remote {
                leg: 0,
                addr: Some(to.local_addr().unwrap()),
                codec: Codec::Pcmu,
                telephone_event: None,
                send: true,
                payload_type: None,
                expect: false,
                allowed: Vec::new(),
            });
        }
        session.send(Command::Play {
            leg: 0,
            playlist: Box::new(welcome()),
        });
        assert!(
            !recv_frames(&caller, 3).await.is_empty(),
            "the last Remote and the Play arrived"
        );
    }

    /// The adder a call keeps for more streams must not keep the session
    /// (and its ports) alive once the call drops its handle: a lingering
    /// call would hold its ports for its whole linger.
    #[tokio::test]
    async fn a_stream_adder_does_not_keep_the_session_or_its_ports() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let pool = PortPool::new(ip, 32_640, 32_650);
        let all = pool.available();
        let session = start(
            vec![
                pool.allocate().await.unwrap(),
                pool.allocate().await.unwrap(),
            ],
            Duration::from_secs(30),
        );
        let adder = session.stream_adder();
        assert!(adder.add(pool.allocate_now().unwrap()).is_some());
        drop(session);
        for _ in 0..50 {
            if pool.available() == all {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(pool.available(), all, "every port back");
        assert!(
            adder.add(pool.allocate_now().unwrap()).is_none(),
            "the session is gone"
        );
        assert_eq!(pool.available(), all);
    }

    /// Two conversations at once (a seat's phone mixing its two calls):
    /// 0↔1 and 2↔3 are each relayed, and no packet crosses between them.
    #[tokio::test]
    async fn two_pairs_are_relayed_apart() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let pool = PortPool::new(ip, 33_420, 33_440);
        let mut sockets = Vec::new();
        for _ in 0..4 {
            sockets.push(pool.allocate().await.unwrap());
        }
        let session = start(sockets, Duration::from_secs(30));
        let mut far = Vec::new();
        for leg in 0..4 {
            let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            session.send(Command::Remote {
                leg,
                addr: Some(sock.local_addr().unwrap()),
                codec: Codec::Pcmu,
                telephone_event: None,
                send: true,
                payload_type: None,
                expect: true,
                allowed: Vec::new(),
            });
            far.push(sock);
        }
        session.send(Command::Pairs {
            first: (0, 1),
            second: (2, 3),
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut buf = [0u8; 2048];
        for (from, to) in [(0, 1), (1, 0), (2, 3), (3, 2)] {
            far[from]
                .send_to(
                    &packet(0, false, 1, 160, 7 + from as u32, &[0xff; 160]),
                    session.locals[from],
                )
                .await
                .unwrap();
            let n = tokio::time::timeout(Duration::from_secs(2), far[to].recv(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("{to} hears {from}"))
                .unwrap();
            assert!(inspect(&buf[..n]).is_some());
            for other in (0..4).filter(|&o| o != to) {
                let stray =
                    tokio::time::timeout(Duration::from_millis(50), far[other].recv(&mut buf))
                        .await;
                assert!(stray.is_err(), "{other} hears {from}");
            }
        }
    }

    /// A leg added to a running session (a second seat rung at once) can
    /// be paired with the caller: the caller's RTP then goes to it, and not
    /// to the leg it was not joined to.
    #[tokio::test]
    async fn an_added_leg_paired_with_the_caller_hears_it_and_the_other_does_not() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let pool = PortPool::new(ip, 32_600, 32_620);
        let a = pool.allocate().await.unwrap();
        let b = pool.allocate().await.unwrap();
        let session = start(vec![a, b], Duration::from_secs(30));
        let adder = session.stream_adder();
        let c = pool.allocate_now().unwrap();
        let c_local = c.local();
        assert_eq!(adder.add(c), Some(2), "the third leg");
        let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let first = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let second = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for (leg, sock) in [(0, &caller), (1, &first), (2, &second)] {
            session.send(Command::Remote {
                leg,
                addr: Some(sock.local_addr().unwrap()),
                codec: Codec::Pcmu,
                telephone_event: None,
                send: true,
                payload_type: None,
                expect: true,
                allowed: Vec::new(),
            });
        }
        session.send(Command::Pair { a: 0, b: 2 });
        session.send(Command::Connect(Mode::Relay));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut buf = [0u8; 2048];
        for i in 0..3u16 {
            caller
                .send_to(
                    &packet(0, false, i, 160 * u32::from(i), 5, &[0xff; 160]),
                    session.locals[0],
                )
                .await
                .unwrap();
            let n = tokio::time::timeout(Duration::from_secs(2), second.recv(&mut buf))
                .await
                .expect("the paired leg hears the caller")
                .unwrap();
            assert!(inspect(&buf[..n]).is_some());
        }
        let stray = tokio::time::timeout(Duration::from_millis(200), first.recv(&mut buf)).await;
        assert!(stray.is_err(), "the leg not paired hears nothing");
        // And back: the added leg's RTP reaches the caller.
        second
            .send_to(&packet(0, false, 9, 9, 6, &[0xff; 160]), c_local)
            .await
            .unwrap();
        let n = tokio::time::timeout(Duration::from_secs(2), caller.recv(&mut buf))
            .await
            .expect("the caller hears the added leg")
            .unwrap();
        assert!(inspect(&buf[..n]).is_some());
    }

    #[tokio::test]
    async fn a_bridged_call_relays_both_ways_with_our_numbers_and_transcodes_when_needed() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let pool = PortPool::new(ip, 32_400, 32_500);
        let a = pool.allocate().await.unwrap();
        let b = pool.allocate().await.unwrap();
        let session = start(vec![a, b], Duration::from_secs(30));
        let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let seat = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for (leg, s, codec) in [(0, &caller, Codec::Pcma), (1, &seat, Codec::Pcmu)] {
            session.send(Command::Remote {
                leg,
                addr: Some(s.local_addr().unwrap()),
                codec,
                telephone_event: Some(101),
                send: true,
                payload_type: None,
                expect: true,
                allowed: Vec::new(),
            });
        }
        session.send(Command::Connect(Mode::Relay));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let pcm = tone(500.0, 160, 0);
        let mut alaw = Vec::new();
        Codec::Pcma.encode(&pcm, &mut alaw);
        let mut buf = [0u8; 2048];
        let mut seqs = Vec::new();
        for i in 0..3u16 {
            caller
                .send_to(
                    &packet(8, false, 40 + i, 160 * u32::from(i), 5, &alaw),
                    session.locals[0],
                )
                .await
                .unwrap();
            let n = tokio::time::timeout(Duration::from_secs(2), seat.recv(&mut buf))
                .await
                .unwrap()
                .unwrap();
            let info = inspect(&buf[..n]).unwrap();
            assert_eq!(
                info.payload_type, 0,
                "A-law in, μ-law out: the seat negotiated PCMU"
            );
            assert_ne!(info.ssrc, 5, "our SSRC, not the caller's");
            seqs.push(info.seq);
        }
        assert_eq!(seqs[1], seqs[0].wrapping_add(1));
        assert_eq!(seqs[2], seqs[0].wrapping_add(2));
        seat.send_to(&packet(0, false, 1, 1, 6, &[0xff; 160]), session.locals[1])
            .await
            .unwrap();
        let n = tokio::time::timeout(Duration::from_secs(2), caller.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(inspect(&buf[..n]).unwrap().payload_type, 8);
    }

    #[tokio::test]
    async fn a_recorded_call_writes_what_each_leg_said_to_its_own_wav() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let pool = PortPool::new(ip, 32_600, 32_700);
        let a = pool.allocate().await.unwrap();
        let b = pool.allocate().await.unwrap();
        let dir = std::env::temp_dir().join(format!("hotline-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let session = start(vec![a, b], Duration::from_secs(30));
        let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let seat = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for (leg, s) in [(0, &caller), (1, &seat)] {
            session.send(Command::Remote {
                leg,
                addr: Some(s.local_addr().unwrap()),
                codec: Codec::Pcmu,
                telephone_event: None,
                send: true,
                payload_type: None,
                expect: true,
                allowed: Vec::new(),
            });
        }
        let paths = [
            dir.join("day/call-caller.wav"),
            dir.join("day/call-far.wav"),
        ];
        session.send(Command::Record {
            dir: dir.clone(),
            paths: paths.iter().cloned().enumerate().collect(),
        });
        session.send(Command::Connect(Mode::Relay));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let pcm = tone(300.0, 160 * 10, 0);
        // What the track should hold after its start: the frames, with
        // the lost one (k = 5) as silence.
        let mut sent = Vec::new();
        for (k, chunk) in pcm.chunks(160).enumerate() {
            let mut ulaw = Vec::new();
            Codec::Pcmu.encode(chunk, &mut ulaw);
            if k == 5 {
                sent.extend_from_slice(&[0i16; 160]);
                continue;
            }
            Codec::Pcmu.decode(&ulaw, &mut sent);
            caller
                .send_to(
                    &packet(0, false, k as u16, 160 * k as u32, 3, &ulaw),
                    session.locals[0],
                )
                .await
                .unwrap();
            let mut buf = [0u8; 2048];
            tokio::time::timeout(Duration::from_secs(2), seat.recv(&mut buf))
                .await
                .unwrap()
                .unwrap();
        }
        drop(session);
        // The session finishes its recordings as it ends.
        let mut samples: Vec<i16> = Vec::new();
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if let Ok(mut r) = hound::WavReader::open(&paths[0])
                && r.len() as usize >= sent.len()
            {
                samples = r.samples::<i16>().map(|x| x.unwrap()).collect();
                break;
            }
        }
        // The track starts when recording started (silence until the
        // caller's first packet, about 20 ms here), then holds what the
        // caller said, the lost packet filled with silence.
        let lead = samples.len() - sent.len();
        assert!(lead > 0 && lead < 8000, "lead-in of {lead} samples");
        assert!(samples[..lead].iter().all(|&x| x == 0));
        assert_eq!(
            &samples[lead..],
            &sent[..],
            "the caller's leg holds what the caller said, in time"
        );
        assert_eq!(
            hound::WavReader::open(&paths[1]).unwrap().len(),
            0,
            "the seat said nothing"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_key_press_is_reported_and_passed_to_the_bridged_party_in_its_payload_type() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let pool = PortPool::new(ip, 32_800, 32_900);
        let a = pool.allocate().await.unwrap();
        let b = pool.allocate().await.unwrap();
        let mut session = start(vec![a, b], Duration::from_secs(30));
        let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let ivr = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for (leg, s, te) in [(0, &caller, 101), (1, &ivr, 100)] {
            session.send(Command::Remote {
                leg,
                addr: Some(s.local_addr().unwrap()),
                codec: Codec::Pcmu,
                payload_type: None,
                telephone_event: Some(te),
                send: true,
                expect: true,
                allowed: vec![ip],
            });
        }
        session.send(Command::Connect(Mode::Relay));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let payload = [3u8, 0x0a, 0, 160];
        caller
            .send_to(&packet(101, true, 9, 4000, 77, &payload), session.locals[0])
            .await
            .unwrap();
        let mut buf = [0u8; 2048];
        let n = tokio::time::timeout(Duration::from_secs(2), ivr.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let info = inspect(&buf[..n]).unwrap();
        assert_eq!(
            info.payload_type, 100,
            "the IVR's own telephone-event number"
        );
        assert_eq!(&buf[info.payload_at..n], &payload);
        let ev = tokio::time::timeout(Duration::from_secs(2), session.events.recv())
            .await
            .unwrap();
        assert_eq!(
            ev,
            Some(Event::Digit {
                leg: 0,
                digit: Digit::Three
            })
        );
        // A leg whose keys are ours alone (a seat's feature code): still
        // reported, no longer relayed.
        session.send(Command::RelayKeys {
            leg: 0,
            relay: false,
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        caller
            .send_to(
                &packet(101, true, 10, 8000, 77, &[1u8, 0x0a, 0, 160]),
                session.locals[0],
            )
            .await
            .unwrap();
        let ev = tokio::time::timeout(Duration::from_secs(2), session.events.recv())
            .await
            .unwrap();
        assert_eq!(
            ev,
            Some(Event::Digit {
                leg: 0,
                digit: Digit::One
            })
        );
        let relayed = tokio::time::timeout(Duration::from_millis(300), ivr.recv(&mut buf)).await;
        assert!(relayed.is_err(), "not relayed: {relayed:?}");
    }
}
