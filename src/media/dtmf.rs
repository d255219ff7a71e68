//! DTMF: the keys a caller presses, from the wire to a menu choice.
//!
//! Callers answer the hotline's menus with the keypad ("press 1 to wait for
//! the leader, 2 for a callback ticket"). The digits reach us two ways:
//!
//! - **RFC 4733 telephone-events in RTP** — the normal way. [`EventReceiver`]
//!   turns the stream of event packets (several per key press, some of them
//!   deliberate duplicates) into exactly one [`Digit`] per press.
//! - **SIP INFO** — the fallback some trunks use: [`parse_dtmf_relay`] reads an
//!   `application/dtmf-relay` or `application/dtmf` body.
//!
//! Either way the digits feed a [`DigitCollector`], which applies the menu's
//! rules (how many digits, which key ends the input, how long to wait) and
//! hands back one [`Collected`] answer.
//!
//! All of it is sans-I/O: time comes in as an argument, nothing here owns a
//! socket or a timer, so every behaviour below is pinned by a deterministic
//! test. The telephone-event payload is four bytes (RFC 4733 §2.3) and the
//! `rtp` crate we use has no parser for it, so it is decoded here.

use std::fmt;
use std::time::{Duration, Instant};

/// A DTMF key: the twelve of a phone keypad and the A–D column some
/// equipment has. The discriminant is the RFC 4733 event code (§3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Digit {
    Zero = 0,
    One,
    Two,
    Three,
    Four,
    Five,
    Six,
    Seven,
    Eight,
    Nine,
    /// `*`, event code 10.
    Star,
    /// `#`, event code 11.
    Pound,
    A,
    B,
    C,
    D,
}

impl Digit {
    /// Every digit, in event-code order.
    pub const ALL: [Digit; 16] = [
        Digit::Zero,
        Digit::One,
        Digit::Two,
        Digit::Three,
        Digit::Four,
        Digit::Five,
        Digit::Six,
        Digit::Seven,
        Digit::Eight,
        Digit::Nine,
        Digit::Star,
        Digit::Pound,
        Digit::A,
        Digit::B,
        Digit::C,
        Digit::D,
    ];

    /// The digit an RFC 4733 event code stands for (§3.2): 0–9, then `*`,
    /// `#`, A–D. `None` for 16 (flash) and everything above.
    pub fn from_event_code(code: u8) -> Option<Digit> {
        Digit::ALL.get(usize::from(code)).copied()
    }

    /// The RFC 4733 event code (§3.2).
    pub fn event_code(self) -> u8 {
        self as u8
    }

    /// `'0'`–`'9'`, `'*'`, `'#'`, `'A'`–`'D'`; the letters in either case,
    /// since SIP INFO senders disagree on it.
    pub fn from_char(c: char) -> Option<Digit> {
        let code = match c.to_ascii_uppercase() {
            c @ '0'..='9' => c as u8 - b'0',
            '*' => 10,
            '#' => 11,
            c @ 'A'..='D' => c as u8 - b'A' + 12,
            _ => return None,
        };
        Digit::from_event_code(code)
    }

    /// The keypad character; letters in upper case.
    pub fn as_char(self) -> char {
        char::from(b"0123456789*#ABCD"[usize::from(self.event_code())])
    }
}

impl fmt::Display for Digit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

/// A set of digits, such as a menu's terminators. Sixteen bits, so it is
/// `Copy` and settings holding it need no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DigitSet(u16);

impl DigitSet {
    pub const EMPTY: DigitSet = DigitSet(0);

    /// The set of the given digits; `const` so a menu's terminators can be a
    /// constant (`DigitSet::of(&[Digit::Pound])`).
    pub const fn of(digits: &[Digit]) -> DigitSet {
        let mut bits = 0u16;
        let mut i = 0;
        while i < digits.len() {
            bits |= 1 << digits[i] as u8;
            i += 1;
        }
        DigitSet(bits)
    }

    pub const fn contains(self, digit: Digit) -> bool {
        self.0 & (1 << digit as u8) != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl FromIterator<Digit> for DigitSet {
    fn from_iter<I: IntoIterator<Item = Digit>>(iter: I) -> Self {
        DigitSet(iter.into_iter().fold(0, |bits, d| bits | 1 << d as u8))
    }
}

// ---------------------------------------------------------------------------
// RFC 4733 telephone-events in RTP
// ---------------------------------------------------------------------------

/// What a telephone-event names, among the events we negotiate (`0-16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A DTMF key, event codes 0–15 (RFC 4733 §3.2).
    Digit(Digit),
    /// Hook flash, event code 16 (§3.2). Recognised so that it is not taken
    /// for garbage, but no menu of ours uses it.
    Flash,
}

/// One telephone-event block as it travels in an RTP payload (RFC 4733 §2.3):
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     event     |E|R| volume    |          duration             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: Event,
    /// The E bit: this packet reports the end of the event (§2.3.2).
    pub end: bool,
    /// Power level in −dBm0, 0–63 (§2.3.4). The R bit beside it is reserved
    /// and ignored, as §2.3.3 requires of receivers.
    pub volume: u8,
    /// Length of the event so far, in RTP timestamp units from the packet's
    /// timestamp, which is the event's start (§2.3.5, §2.2.1).
    pub duration: u16,
}

/// Why a telephone-event payload was not understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("telephone-event payload of {0} bytes; an event takes 4")]
    Short(usize),
    #[error("event code {0} is neither DTMF nor flash; we negotiate only 0-16")]
    UnknownEvent(u8),
}

impl TelephoneEvent {
    /// Decodes the first event block of a payload.
    ///
    /// Bytes after it are ignored: they could only be further events packed
    /// into the same packet (§2.5.1.5), which is allowed solely for events that
    /// follow each other without a gap, and DTMF digits always have one.
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent, PayloadError> {
        let &[code, flags, d0, d1, ..] = payload else {
            return Err(PayloadError::Short(payload.len()));
        };
        let event = match code {
            16 => Event::Flash,
            _ => {
                Event::Digit(Digit::from_event_code(code).ok_or(PayloadError::UnknownEvent(code))?)
            }
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }
}

/// How long an event packet may plausibly be delayed in the network. A packet
/// of an unknown *older* event that arrives within this time of the newest
/// event's last packet is a late straggler; past it, the sender is believed
/// to have restarted its timestamp clock (see [`EventReceiver::on_packet`]),
/// so that a reset stream cannot leave us deaf to the caller's keys.
const LATE_PACKET_LIMIT: Duration = Duration::from_secs(2);

/// How many recent events' timestamps are remembered, so that their
/// stragglers — late packets, or end packets a sender still retransmits after
/// the next key went down — are recognised whatever their sequence number.
const REMEMBERED_EVENTS: usize = 4;

/// Long events are cut into segments of at most this many timestamp units
/// (RFC 4733 §2.5.1.3): the largest duration the 16-bit field holds.
const SEGMENT_LENGTH: u32 = 0xffff;

/// Turns RFC 4733 telephone-event packets into one [`Digit`] per key press.
///
/// A single press produces many packets (§2.5.1.2): the first, with the RTP
/// marker bit (§2.2.2), as soon as the key goes down; one every packet
/// interval while it is held, with a growing duration; and the final packet,
/// with the E bit, sent three times for reliability (§2.5.1.4), each copy
/// with a new sequence number (§2.5.1.6). Every one of them carries the same
/// RTP timestamp — the instant the event began (§2.2.1) — and that
/// timestamp, not the digit, is what identifies the event: pressing "1"
/// twice makes two events with two timestamps.
///
/// The digit is reported on the first packet of an event we see, whichever
/// it is: reporting at the start rather than at the end lets a menu cut its
/// prompt short the moment the key goes down, and a press whose first
/// packets were lost is still reported, once, from whatever packet arrives.
///
/// The state is a handful of remembered events, so memory is fixed and no
/// timer is needed; feed it only packets of the negotiated telephone-event
/// payload type, of one RTP stream.
#[derive(Debug, Clone, Default)]
pub struct EventReceiver {
    /// Timestamps of the most recent events (and long-event segments),
    /// newest first.
    recent: [Option<u32>; REMEMBERED_EVENTS],
    latest: Option<Latest>,
}

/// The newest event seen.
#[derive(Debug, Clone, Copy)]
struct Latest {
    timestamp: u32,
    event: Event,
    ended: bool,
    /// Highest sequence number seen since this event began; tells a late
    /// packet from a sender that restarted its timestamps.
    highest_sequence: u16,
    last_heard: Instant,
}

impl EventReceiver {
    pub fn new() -> Self {
        EventReceiver::default()
    }

    /// Takes one RTP packet of the telephone-event payload type; returns the
    /// digit if this packet is the first we see of a new key press.
    ///
    /// - A packet with the timestamp of the current event, or of one of the
    ///   few before it, is a continuation, a (retransmitted) end packet or a
    ///   late straggler of that event: nothing new.
    /// - A packet with an unknown timestamp *earlier* than the current event's
    ///   and an earlier sequence number is a straggler of an event whose
    ///   packets all came late, overtaken by a newer one: ignored, as a
    ///   jitter buffer drops late audio, rather than reported out of order.
    ///   (Timestamps and sequence numbers wrap, so both are compared modulo
    ///   their size, RFC 3550 §5.1.) If instead its sequence number is newer,
    ///   or the current event has been silent for longer than any packet is
    ///   delayed, the sender has restarted its timestamp clock (a re-INVITE or
    ///   transfer upstream) and the packet starts a new event.
    /// - A packet of the same event code, without marker, whose timestamp is
    ///   exactly one full segment after an unfinished event continues a key
    ///   held longer than the duration field can count, about 8 s at 8 kHz
    ///   (§2.5.1.3, §2.5.2.3): the same press.
    /// - Any other new timestamp is a new event.
    ///
    /// Payloads that are too short or name events other than DTMF and flash
    /// are ignored and leave the state untouched; flash is tracked as an
    /// event but not reported.
    pub fn on_packet(
        &mut self,
        rtp_timestamp: u32,
        marker: bool,
        sequence: u16,
        payload: &[u8],
        now: Instant,
    ) -> Option<Digit> {
        let Ok(packet) = TelephoneEvent::parse(payload) else {
            return None;
        };
        if let Some(latest) = &mut self.latest {
            if rtp_timestamp == latest.timestamp {
                latest.ended |= packet.end;
                latest.hear(sequence, now);
                return None;
            }
            if self.recent.contains(&Some(rtp_timestamp)) {
                return None;
            }
            if timestamp_before(rtp_timestamp, latest.timestamp) {
                let restarted = sequence_after(sequence, latest.highest_sequence)
                    || now.saturating_duration_since(latest.last_heard) >= LATE_PACKET_LIMIT;
                if !restarted {
                    return None;
                }
            } else if !marker
                && !latest.ended
                && packet.event == latest.event
                && rtp_timestamp == latest.timestamp.wrapping_add(SEGMENT_LENGTH)
            {
                latest.timestamp = rtp_timestamp;
                latest.ended = packet.end;
                latest.hear(sequence, now);
                self.remember(rtp_timestamp);
                return None;
            }
        }
        self.latest = Some(Latest {
            timestamp: rtp_timestamp,
            event: packet.event,
            ended: packet.end,
            highest_sequence: sequence,
            last_heard: now,
        });
        self.remember(rtp_timestamp);
        match packet.event {
            Event::Digit(digit) => Some(digit),
            Event::Flash => None,
        }
    }

    fn remember(&mut self, timestamp: u32) {
        self.recent.rotate_right(1);
        self.recent[0] = Some(timestamp);
    }
}

impl Latest {
    fn hear(&mut self, sequence: u16, now: Instant) {
        if sequence_after(sequence, self.highest_sequence) {
            self.highest_sequence = sequence;
        }
        self.last_heard = self.last_heard.max(now);
    }
}

/// `a` is earlier than `b` in the wrapping 32-bit timestamp space (RFC 3550 §5.1).
fn timestamp_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a` is later than `b` in the wrapping 16-bit sequence space (RFC 3550 §5.1).
fn sequence_after(a: u16, b: u16) -> bool {
    (a.wrapping_sub(b) as i16) > 0
}

// ---------------------------------------------------------------------------
// SIP INFO
// ---------------------------------------------------------------------------

/// The digit in the body of a SIP INFO carrying DTMF, for trunks that do not
/// send RFC 4733 events.
///
/// Takes either body:
/// - `application/dtmf-relay` (the de-facto Cisco format, no RFC):
///   `Signal=5\r\nDuration=160\r\n`. Keys are matched case-insensitively,
///   spaces around `=` and values are tolerated, lines may end in LF alone,
///   and `Duration` is ignored: the press is reported when it arrives.
/// - `application/dtmf`: the body is the digit itself.
///
/// The value is a keypad character (`0`–`9`, `*`, `#`, `A`–`D` in either
/// case) or, as some equipment sends it, the RFC 4733 event code (`10` for
/// `*`). Flash (`!` or `16`) and anything else give `None`.
pub fn parse_dtmf_relay(body: &str) -> Option<Digit> {
    let body = body.trim();
    if !body.contains('=') {
        return signal_value(body);
    }
    body.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("signal")
            .then(|| signal_value(value.trim()))
    })?
}

fn signal_value(value: &str) -> Option<Digit> {
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Digit::from_char(c),
        _ => value.parse().ok().and_then(Digit::from_event_code),
    }
}

// ---------------------------------------------------------------------------
// The digit collector
// ---------------------------------------------------------------------------

/// The most digits one collection may ask for: enough for any number a caller
/// types (an 18-character ID number, a ticket number), and a bound on the
/// memory a stream of forged events can make us hold.
pub const MAX_DIGITS_LIMIT: usize = 64;

/// The longest either timeout may be. Nobody waits ten minutes for a key, so
/// a larger value is a configuration mistake, and refusing it keeps the
/// deadline arithmetic far from overflow.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// The rules of one kind of input: a one-key menu, a callback number ended
/// by `#`, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Input is complete when this many digits (terminators not counted)
    /// have been pressed. 1 to [`MAX_DIGITS_LIMIT`].
    pub max_digits: usize,
    /// After a digit, how long to wait for the next before taking what we
    /// have. At most [`MAX_TIMEOUT`], as is the next.
    pub inter_digit_timeout: Duration,
    /// After [`DigitCollector::start`], how long to wait for the first digit
    /// before giving up with [`EndReason::NoInput`].
    pub first_digit_timeout: Duration,
    /// Keys that end the input early (typically `#`); not part of the digits.
    pub terminators: DigitSet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("max_digits must be between 1 and {MAX_DIGITS_LIMIT}, not {0}")]
    MaxDigits(usize),
    #[error("{name} must be at most {MAX_TIMEOUT:?}, not {timeout:?}")]
    Timeout {
        name: &'static str,
        timeout: Duration,
    },
}

/// What a collection produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    /// The digits pressed, as keypad characters, without the terminator.
    pub digits: String,
    pub reason: EndReason,
}

/// Why a collection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// `max_digits` digits were pressed.
    Complete,
    /// This terminator was pressed. The digits may be empty: a caller who
    /// presses only `#` has said something, and the menu decides what.
    Terminator(Digit),
    /// Some digits, then silence for `inter_digit_timeout`.
    InterDigitTimeout,
    /// No digit within `first_digit_timeout` of the start.
    NoInput,
}

/// Gathers digits into one answer under a menu's [`Settings`].
///
/// Digits pressed while no collection runs — before [`start`], or after one
/// ended — are kept as *type-ahead*: callers who know the menu press "2"
/// while the prompt is still playing, and expect it to count. `start` then
/// plays them in as if pressed at that instant, so the answer may be complete
/// at once. The buffer stops taking digits once it holds a complete answer
/// (`max_digits` digits, or a terminator), and never holds more than
/// `max_digits` keys; [`discard_type_ahead`] empties it where a menu must
/// not take earlier keys (e.g. after "the menu has changed").
///
/// Deadlines are inclusive: the timeout fires at `now >= deadline`, and a
/// digit arriving at or after the deadline, before the driver's timer has
/// run, loses the race — the collection times out and the digit becomes
/// type-ahead for the next one.
///
/// [`start`]: DigitCollector::start
/// [`discard_type_ahead`]: DigitCollector::discard_type_ahead
#[derive(Debug, Clone)]
pub struct DigitCollector {
    settings: Settings,
    type_ahead: Vec<Digit>,
    collecting: Option<Collecting>,
}

#[derive(Debug, Clone)]
struct Collecting {
    digits: String,
    deadline: Instant,
}

impl DigitCollector {
    pub fn new(settings: Settings) -> Result<Self, SettingsError> {
        if !(1..=MAX_DIGITS_LIMIT).contains(&settings.max_digits) {
            return Err(SettingsError::MaxDigits(settings.max_digits));
        }
        for (name, timeout) in [
            ("inter_digit_timeout", settings.inter_digit_timeout),
            ("first_digit_timeout", settings.first_digit_timeout),
        ] {
            if timeout > MAX_TIMEOUT {
                return Err(SettingsError::Timeout { name, timeout });
            }
        }
        Ok(DigitCollector {
            settings,
            type_ahead: Vec::with_capacity(settings.max_digits),
            collecting: None,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Starts collecting (typically when the menu prompt begins or ends, as
    /// the menu prefers). Type-ahead digits count as pressed now; if they
    /// already make an answer it is returned at once. Starting while a
    /// collection runs abandons that one.
    pub fn start(&mut self, now: Instant) -> Option<Collected> {
        self.collecting = Some(Collecting {
            digits: String::with_capacity(self.settings.max_digits),
            deadline: now + self.settings.first_digit_timeout,
        });
        // The buffer holds at most one complete answer, so nothing after the
        // digit that completes it is lost.
        let type_ahead = std::mem::take(&mut self.type_ahead);
        let done = type_ahead.iter().find_map(|&d| self.accept(d, now));
        self.type_ahead = type_ahead;
        self.type_ahead.clear();
        done
    }

    /// Takes a digit from either source; returns the answer if it completes one.
    pub fn on_digit(&mut self, digit: Digit, now: Instant) -> Option<Collected> {
        match &self.collecting {
            Some(c) if now >= c.deadline => {
                let done = self.expire();
                self.buffer(digit);
                done
            }
            Some(_) => self.accept(digit, now),
            None => {
                self.buffer(digit);
                None
            }
        }
    }

    /// Call at (or after) [`deadline`](DigitCollector::deadline); returns the
    /// timed-out answer, or `None` if the deadline has not been reached.
    pub fn on_timer(&mut self, now: Instant) -> Option<Collected> {
        match &self.collecting {
            Some(c) if now >= c.deadline => self.expire(),
            _ => None,
        }
    }

    /// When [`on_timer`](DigitCollector::on_timer) must next be called;
    /// `None` while no collection runs.
    pub fn deadline(&self) -> Option<Instant> {
        self.collecting.as_ref().map(|c| c.deadline)
    }

    /// Forgets the type-ahead: the keys pressed while no collection ran.
    pub fn discard_type_ahead(&mut self) {
        self.type_ahead.clear();
    }

    fn accept(&mut self, digit: Digit, now: Instant) -> Option<Collected> {
        let c = self.collecting.as_mut()?;
        if self.settings.terminators.contains(digit) {
            return self.finish(EndReason::Terminator(digit));
        }
        c.digits.push(digit.as_char());
        if c.digits.len() >= self.settings.max_digits {
            return self.finish(EndReason::Complete);
        }
        c.deadline = now + self.settings.inter_digit_timeout;
        None
    }

    fn expire(&mut self) -> Option<Collected> {
        let empty = self.collecting.as_ref()?.digits.is_empty();
        self.finish(if empty {
            EndReason::NoInput
        } else {
            EndReason::InterDigitTimeout
        })
    }

    fn finish(&mut self, reason: EndReason) -> Option<Collected> {
        let c = self.collecting.take()?;
        Some(Collected {
            digits: c.digits,
            reason,
        })
    }

    fn buffer(&mut self, digit: Digit) {
        let terminated = self
            .type_ahead
            .last()
            .is_some_and(|&d| self.settings.terminators.contains(d));
        if !terminated && self.type_ahead.len() < self.settings.max_digits {
            self.type_ahead.push(digit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn digit(c: char) -> Digit {
        Digit::from_char(c).unwrap()
    }

    // ---- RFC 4733 packet captures -------------------------------------------------
    //
    // Each packet is (RTP timestamp, marker bit, sequence number, payload), the
    // payload laid out as in RFC 4733 §2.3:
    //
    //   byte 0     event code (§3.2: 0-9, 10 = *, 11 = #, 12-15 = A-D, 16 = flash)
    //   byte 1     E bit 0x80 | R bit 0x40 (reserved) | volume, 6 bits, -dBm0
    //   bytes 2-3  duration so far in timestamp units, big-endian (8 kHz: 400 = 50 ms)
    //
    // Timestamps are those of the telephone-event clock, 8000 Hz.

    #[derive(Debug, Clone, Copy)]
    struct Packet {
        timestamp: u32,
        marker: bool,
        sequence: u16,
        payload: &'static [u8],
    }

    const fn packet(timestamp: u32, marker: bool, sequence: u16, payload: &'static [u8]) -> Packet {
        Packet {
            timestamp,
            marker,
            sequence,
            payload,
        }
    }

    /// Key '1' held for 200 ms: event 1 at -10 dBm0, the event's start time
    /// 8000 as the timestamp of every packet (§2.2.1), the marker on the first
    /// (§2.2.2), a packet every 50 ms with the duration so far, then the end
    /// packet (E, 1600 = 200 ms) sent three times (§2.5.1.4). The sequence
    /// number goes up on every packet, retransmissions included (§2.5.1.6).
    const KEY_1: [Packet; 6] = [
        //     ts    M      seq  event E|vol  duration
        packet(8000, true, 100, &[0x01, 0x0a, 0x01, 0x90]), // 400
        packet(8000, false, 101, &[0x01, 0x0a, 0x03, 0x20]), // 800
        packet(8000, false, 102, &[0x01, 0x0a, 0x04, 0xb0]), // 1200
        packet(8000, false, 103, &[0x01, 0x8a, 0x06, 0x40]), // E, 1600
        packet(8000, false, 104, &[0x01, 0x8a, 0x06, 0x40]), // E, 1600, again
        packet(8000, false, 105, &[0x01, 0x8a, 0x06, 0x40]), // E, 1600, third copy
    ];

    /// Key '1' pressed again half a second after the first press began: the
    /// same digit, a new event, so a new timestamp (8000 + 4000). Audio
    /// packets took the sequence numbers in between.
    const KEY_1_AGAIN: [Packet; 6] = [
        packet(12000, true, 130, &[0x01, 0x0a, 0x01, 0x90]), // 400
        packet(12000, false, 131, &[0x01, 0x0a, 0x03, 0x20]), // 800
        packet(12000, false, 132, &[0x01, 0x0a, 0x04, 0xb0]), // 1200
        packet(12000, false, 133, &[0x01, 0x8a, 0x06, 0x40]), // E, 1600
        packet(12000, false, 134, &[0x01, 0x8a, 0x06, 0x40]), // E, 1600, again
        packet(12000, false, 135, &[0x01, 0x8a, 0x06, 0x40]), // E, 1600, third copy
    ];

    /// Key '2' at the same place in the stream as `KEY_1_AGAIN`.
    const KEY_2: [Packet; 6] = [
        packet(12000, true, 130, &[0x02, 0x0a, 0x01, 0x90]), // 400
        packet(12000, false, 131, &[0x02, 0x0a, 0x03, 0x20]), // 800
        packet(12000, false, 132, &[0x02, 0x0a, 0x04, 0xb0]), // 1200
        packet(12000, false, 133, &[0x02, 0x8a, 0x06, 0x40]), // E, 1600
        packet(12000, false, 134, &[0x02, 0x8a, 0x06, 0x40]), // E, 1600, again
        packet(12000, false, 135, &[0x02, 0x8a, 0x06, 0x40]), // E, 1600, third copy
    ];

    /// Key '#' (event 11) after `KEY_2`, timestamp 16000.
    const KEY_POUND: [Packet; 4] = [
        packet(16000, true, 160, &[0x0b, 0x0a, 0x01, 0x90]), // 400
        packet(16000, false, 161, &[0x0b, 0x8a, 0x03, 0x20]), // E, 800
        packet(16000, false, 162, &[0x0b, 0x8a, 0x03, 0x20]), // E, 800, again
        packet(16000, false, 163, &[0x0b, 0x8a, 0x03, 0x20]), // E, 800, third copy
    ];

    /// A receiver and the clock, packets arriving 20 ms apart.
    struct Wire {
        receiver: EventReceiver,
        now: Instant,
    }

    impl Wire {
        fn new() -> Self {
            Wire {
                receiver: EventReceiver::new(),
                now: Instant::now(),
            }
        }

        /// Delivers packets in this order; the digits reported, as text.
        fn deliver(&mut self, packets: &[Packet]) -> String {
            packets
                .iter()
                .filter_map(|p| self.one(*p))
                .map(Digit::as_char)
                .collect()
        }

        fn one(&mut self, p: Packet) -> Option<Digit> {
            self.now += ms(20);
            self.receiver
                .on_packet(p.timestamp, p.marker, p.sequence, p.payload, self.now)
        }
    }

    #[test]
    fn a_key_press_is_reported_once_on_its_first_packet() {
        let mut wire = Wire::new();
        let reported: Vec<_> = KEY_1.iter().map(|p| wire.one(*p)).collect();
        assert_eq!(reported, [Some(Digit::One), None, None, None, None, None]);
    }

    #[test]
    fn the_same_key_twice_is_two_presses() {
        let mut wire = Wire::new();
        assert_eq!(wire.deliver(&KEY_1), "1");
        assert_eq!(wire.deliver(&KEY_1_AGAIN), "1");
    }

    #[test]
    fn a_press_whose_first_packet_was_lost_is_still_reported_once() {
        let mut wire = Wire::new();
        assert_eq!(wire.one(KEY_1[1]), Some(Digit::One));
        assert_eq!(wire.deliver(&KEY_1[2..]), "");
    }

    #[test]
    fn a_press_seen_only_in_its_end_packets_is_reported_once() {
        let mut wire = Wire::new();
        assert_eq!(wire.deliver(&KEY_1[3..]), "1");
        assert_eq!(wire.deliver(&KEY_1_AGAIN[4..]), "1");
    }

    #[test]
    fn duplicated_end_packets_do_not_repeat_the_digit() {
        let mut wire = Wire::new();
        // The three copies the sender means to send, and the network
        // duplicating one of them (same sequence number).
        assert_eq!(wire.deliver(&KEY_1), "1");
        assert_eq!(wire.deliver(&[KEY_1[5], KEY_1[4], KEY_1[5]]), "");
    }

    #[test]
    fn a_late_packet_of_the_previous_event_is_not_reported_again() {
        let mut wire = Wire::new();
        assert_eq!(wire.deliver(&KEY_1[..5]), "1");
        assert_eq!(wire.deliver(&KEY_2[..2]), "2");
        // The third copy of '1''s end packet, overtaken by '2'.
        assert_eq!(wire.one(KEY_1[5]), None);
        // Even long after, a known event's straggler stays known.
        wire.now += Duration::from_secs(10);
        assert_eq!(wire.one(KEY_1[0]), None);
        assert_eq!(wire.deliver(&KEY_2[2..]), "");
    }

    #[test]
    fn end_packets_still_repeated_after_the_next_key_went_down_are_ignored() {
        // A fast dialler: '1' for 100 ms, '2' 40 ms after it; the sender sends
        // the last copy of '1''s end packet after '2' began, so that copy has
        // the newer sequence number.
        let packets = [
            packet(8000, true, 100, &[0x01, 0x0a, 0x01, 0x90]), // '1', 400
            packet(8000, false, 101, &[0x01, 0x8a, 0x03, 0x20]), // '1', E, 800
            packet(8000, false, 102, &[0x01, 0x8a, 0x03, 0x20]), // '1', E, 800, again
            packet(9120, true, 103, &[0x02, 0x0a, 0x00, 0xa0]), // '2' starts, 160
            packet(8000, false, 104, &[0x01, 0x8a, 0x03, 0x20]), // '1', E, third copy
            packet(9120, false, 105, &[0x02, 0x8a, 0x03, 0x20]), // '2', E, 800
            packet(9120, false, 106, &[0x02, 0x8a, 0x03, 0x20]), // '2', E, again
            packet(9120, false, 107, &[0x02, 0x8a, 0x03, 0x20]), // '2', E, third copy
        ];
        assert_eq!(Wire::new().deliver(&packets), "12");
    }

    #[test]
    fn an_event_whose_packets_all_came_late_is_dropped_not_reported_out_of_order() {
        let mut wire = Wire::new();
        assert_eq!(wire.deliver(&KEY_2), "2");
        assert_eq!(wire.deliver(&KEY_1), "");
    }

    #[test]
    fn garbage_payloads_are_ignored_and_disturb_nothing() {
        let garbage: [&'static [u8]; 6] = [
            &[],                       // empty
            &[0x01],                   // one byte
            &[0x01, 0x8a, 0x06],       // three bytes: no duration
            &[17, 0x0a, 0x01, 0x90],   // event 17: not DTMF, not flash
            &[0xff, 0xff, 0xff, 0xff], // event 255
            &[0x40, 0x0a, 0x01, 0x90], // event 64 (off-hook, RFC 4734): not negotiated
        ];
        let mut wire = Wire::new();
        assert_eq!(wire.deliver(&KEY_1[..2]), "1");
        for (i, payload) in garbage.into_iter().enumerate() {
            // Under the current event's timestamp, and under a new one.
            assert_eq!(wire.one(packet(8000, false, 102, payload)), None, "#{i}");
            assert_eq!(wire.one(packet(10000, true, 110, payload)), None, "#{i}");
        }
        assert_eq!(wire.deliver(&KEY_1[2..]), "");
        assert_eq!(wire.deliver(&KEY_1_AGAIN), "1");
    }

    #[test]
    fn flash_is_not_a_digit() {
        let flash = [
            packet(8000, true, 100, &[0x10, 0x0a, 0x01, 0x90]), // event 16, 400
            packet(8000, false, 101, &[0x10, 0x8a, 0x03, 0x20]), // E, 800
            packet(8000, false, 102, &[0x10, 0x8a, 0x03, 0x20]), // E, 800, again
        ];
        let mut wire = Wire::new();
        assert_eq!(wire.deliver(&flash), "");
        assert_eq!(wire.deliver(&KEY_2), "2");
    }

    #[test]
    fn a_key_held_longer_than_the_duration_field_counts_is_one_press() {
        // '5' held for 9 s: the first segment reaches the largest duration,
        // 0xffff, without E; the second segment begins where it ended, at
        // 8000 + 0xffff, without the marker (§2.5.1.3).
        let held = [
            packet(8000, true, 100, &[0x05, 0x0a, 0x01, 0x90]), // 400
            packet(8000, false, 101, &[0x05, 0x0a, 0xff, 0x00]), // 65280
            packet(8000, false, 102, &[0x05, 0x0a, 0xff, 0xff]), // 65535, segment full
            packet(73535, false, 103, &[0x05, 0x0a, 0x01, 0x90]), // next segment, 400
            packet(73535, false, 104, &[0x05, 0x8a, 0x1b, 0x58]), // E, 7000
            packet(73535, false, 105, &[0x05, 0x8a, 0x1b, 0x58]), // E, again
        ];
        let mut wire = Wire::new();
        assert_eq!(wire.deliver(&held), "5");
        // Pressing it again afterwards is a new press.
        let again = [packet(90000, true, 130, &[0x05, 0x0a, 0x01, 0x90])];
        assert_eq!(wire.deliver(&again), "5");
    }

    #[test]
    fn timestamps_and_sequence_numbers_wrap() {
        let before_wrap = [
            packet(u32::MAX - 100, true, 65534, &[0x03, 0x0a, 0x01, 0x90]), // '3', 400
            packet(u32::MAX - 100, false, 65535, &[0x03, 0x8a, 0x03, 0x20]), // E, 800
        ];
        let after_wrap = [
            packet(3900, true, 20, &[0x04, 0x0a, 0x01, 0x90]), // '4', 400
            packet(3900, false, 21, &[0x04, 0x8a, 0x03, 0x20]), // E, 800
        ];
        // An event nobody saw, from before the wrap, arriving late.
        let straggler = [packet(
            u32::MAX - 5000,
            false,
            65000,
            &[0x09, 0x8a, 0x03, 0x20],
        )];
        let mut wire = Wire::new();
        assert_eq!(wire.deliver(&before_wrap), "3");
        assert_eq!(wire.deliver(&after_wrap), "4");
        assert_eq!(wire.deliver(&straggler), "");
    }

    #[test]
    fn a_sender_that_restarts_its_timestamps_is_still_heard() {
        let mut wire = Wire::new();
        assert_eq!(wire.deliver(&KEY_2), "2");
        // Upstream switched media: the timestamp went back, the sequence
        // number carried on.
        let restarted = [packet(500, true, 140, &[0x07, 0x0a, 0x01, 0x90])];
        assert_eq!(wire.deliver(&restarted), "7");
    }

    #[test]
    fn an_older_timestamp_after_a_long_silence_is_a_new_event() {
        // Timestamp and sequence number both went back: within the late-packet
        // limit that is a straggler, past it a restarted sender.
        let restarted = [packet(500, true, 40, &[0x07, 0x0a, 0x01, 0x90])];
        let mut wire = Wire::new();
        assert_eq!(wire.deliver(&KEY_2), "2");
        wire.now += LATE_PACKET_LIMIT - ms(40);
        assert_eq!(wire.deliver(&restarted), "");
        let mut wire = Wire::new();
        assert_eq!(wire.deliver(&KEY_2), "2");
        wire.now += LATE_PACKET_LIMIT - ms(20);
        assert_eq!(wire.deliver(&restarted), "7");
    }

    #[test]
    fn the_payload_fields_are_decoded() {
        // '#', E set, R set (must be ignored), volume 63, duration 0x1234,
        // and a second packed block that is not read.
        let payload = [0x0b, 0xff, 0x12, 0x34, 0x05, 0x00, 0x00, 0x00];
        assert_eq!(
            TelephoneEvent::parse(&payload),
            Ok(TelephoneEvent {
                event: Event::Digit(Digit::Pound),
                end: true,
                volume: 63,
                duration: 0x1234,
            })
        );
        assert_eq!(
            TelephoneEvent::parse(&[0x10, 0x0a, 0x00, 0x00]).map(|e| (e.event, e.end, e.volume)),
            Ok((Event::Flash, false, 10))
        );
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3]),
            Err(PayloadError::Short(3))
        );
        assert_eq!(
            TelephoneEvent::parse(&[17, 0, 0, 0]),
            Err(PayloadError::UnknownEvent(17))
        );
    }

    #[test]
    fn event_codes_and_characters_map_one_to_one() {
        let chars: String = (0..=15)
            .map(|c| Digit::from_event_code(c).unwrap().as_char())
            .collect();
        assert_eq!(chars, "0123456789*#ABCD");
        for d in Digit::ALL {
            assert_eq!(Digit::from_event_code(d.event_code()), Some(d));
            assert_eq!(Digit::from_char(d.as_char()), Some(d));
            assert_eq!(d.to_string(), d.as_char().to_string());
        }
        assert_eq!(Digit::from_event_code(16), None);
        assert_eq!(Digit::from_char('b'), Some(Digit::B));
        for c in ['E', 'e', '!', ' ', '٣', 'x'] {
            assert_eq!(Digit::from_char(c), None, "{c:?}");
        }
    }

    // ---- SIP INFO -----------------------------------------------------------------

    #[test]
    fn dtmf_relay_bodies() {
        let cases = [
            ("Signal=5\r\nDuration=160\r\n", Some(Digit::Five)),
            ("signal=5\r\nduration=160\r\n", Some(Digit::Five)),
            ("SIGNAL = 5\r\n", Some(Digit::Five)),
            ("Signal= 5\r\nDuration= 160\r\n", Some(Digit::Five)),
            ("Signal=*\nDuration=100\n", Some(Digit::Star)),
            ("Signal=#\r\nDuration=250\r\n", Some(Digit::Pound)),
            ("Signal=a\r\n", Some(Digit::A)),
            ("Signal=D\r\n", Some(Digit::D)),
            ("Duration=160\r\nSignal=9\r\n", Some(Digit::Nine)),
            // Event codes, as some equipment sends them.
            ("Signal=10\r\nDuration=160\r\n", Some(Digit::Star)),
            ("Signal=11\r\n", Some(Digit::Pound)),
            // Flash, nonsense, nothing.
            ("Signal=!\r\nDuration=500\r\n", None),
            ("Signal=16\r\n", None),
            ("Signal=55\r\n", None),
            ("Signal=\r\nDuration=160\r\n", None),
            ("Duration=160\r\n", None),
            ("", None),
        ];
        for (body, expected) in cases {
            assert_eq!(parse_dtmf_relay(body), expected, "{body:?}");
        }
    }

    #[test]
    fn application_dtmf_bodies_are_the_digit() {
        assert_eq!(parse_dtmf_relay("5"), Some(Digit::Five));
        assert_eq!(parse_dtmf_relay("#\r\n"), Some(Digit::Pound));
        assert_eq!(parse_dtmf_relay(" * "), Some(Digit::Star));
        assert_eq!(parse_dtmf_relay("hello"), None);
        assert_eq!(parse_dtmf_relay("\r\n"), None);
    }

    // ---- Digit collector ----------------------------------------------------------

    /// Up to 4 digits, `#` ends early, 3 s between digits, 5 s for the first.
    fn settings() -> Settings {
        Settings {
            max_digits: 4,
            inter_digit_timeout: Duration::from_secs(3),
            first_digit_timeout: Duration::from_secs(5),
            terminators: DigitSet::of(&[Digit::Pound]),
        }
    }

    fn collector(settings: Settings) -> DigitCollector {
        DigitCollector::new(settings).unwrap()
    }

    fn collected(digits: &str, reason: EndReason) -> Option<Collected> {
        Some(Collected {
            digits: digits.to_owned(),
            reason,
        })
    }

    /// Presses the keys 1 s apart from `from`; what the last one returned.
    fn press(c: &mut DigitCollector, keys: &str, from: Instant) -> Option<Collected> {
        let mut result = None;
        for (i, k) in keys.chars().enumerate() {
            assert_eq!(result, None, "input ended before {k:?}");
            result = c.on_digit(digit(k), from + ms(1000 * i as u64));
        }
        result
    }

    #[test]
    fn input_is_complete_at_max_digits() {
        let t0 = Instant::now();
        let mut c = collector(settings());
        assert_eq!(c.start(t0), None);
        assert_eq!(
            press(&mut c, "1234", t0),
            collected("1234", EndReason::Complete)
        );
        assert_eq!(c.deadline(), None);
    }

    #[test]
    fn a_terminator_ends_input_and_is_not_among_the_digits() {
        let t0 = Instant::now();
        let mut c = collector(settings());
        c.start(t0);
        let pound = EndReason::Terminator(Digit::Pound);
        assert_eq!(press(&mut c, "12#", t0), collected("12", pound));
        // '#' alone is an answer too.
        c.start(t0);
        assert_eq!(press(&mut c, "#", t0), collected("", pound));
    }

    #[test]
    fn without_terminators_pound_is_an_ordinary_digit() {
        let t0 = Instant::now();
        let mut c = collector(Settings {
            terminators: DigitSet::EMPTY,
            ..settings()
        });
        c.start(t0);
        assert_eq!(
            press(&mut c, "12#4", t0),
            collected("12#4", EndReason::Complete)
        );
    }

    #[test]
    fn the_inter_digit_timeout_fires_at_its_exact_instant() {
        let t0 = Instant::now();
        let mut c = collector(settings());
        c.start(t0);
        assert_eq!(c.deadline(), Some(t0 + ms(5000)));
        assert_eq!(c.on_digit(Digit::One, t0 + ms(1000)), None);
        assert_eq!(c.deadline(), Some(t0 + ms(4000)));
        // Each digit restarts the wait.
        assert_eq!(c.on_digit(Digit::Two, t0 + ms(3500)), None);
        assert_eq!(c.deadline(), Some(t0 + ms(6500)));
        assert_eq!(c.on_timer(t0 + ms(6500) - Duration::from_nanos(1)), None);
        assert_eq!(
            c.on_timer(t0 + ms(6500)),
            collected("12", EndReason::InterDigitTimeout)
        );
        assert_eq!(c.deadline(), None);
        assert_eq!(c.on_timer(t0 + ms(9000)), None);
    }

    #[test]
    fn no_digit_before_the_first_digit_timeout_is_no_input() {
        let t0 = Instant::now();
        let mut c = collector(settings());
        c.start(t0);
        assert_eq!(c.on_timer(t0 + ms(4999)), None);
        assert_eq!(c.on_timer(t0 + ms(5000)), collected("", EndReason::NoInput));
        assert_eq!(c.deadline(), None);
    }

    #[test]
    fn a_digit_at_the_deadline_loses_the_race_and_waits_for_the_next_input() {
        let t0 = Instant::now();
        let mut c = collector(settings());
        c.start(t0);
        c.on_digit(Digit::One, t0 + ms(1000));
        // The driver's timer has not run yet when '2' arrives at the deadline.
        assert_eq!(
            c.on_digit(Digit::Two, t0 + ms(4000)),
            collected("1", EndReason::InterDigitTimeout)
        );
        let t1 = t0 + ms(10_000);
        assert_eq!(c.start(t1), None);
        assert_eq!(
            press(&mut c, "34#", t1),
            collected("234", EndReason::Terminator(Digit::Pound))
        );
    }

    #[test]
    fn keys_pressed_during_the_prompt_count_type_ahead() {
        // "Press 1 to wait for the leader, 2 for a callback": the caller
        // presses 2 before the prompt ends.
        let t0 = Instant::now();
        let mut menu = collector(Settings {
            max_digits: 1,
            ..settings()
        });
        assert_eq!(menu.on_digit(Digit::Two, t0), None);
        assert_eq!(menu.deadline(), None, "not collecting yet");
        assert_eq!(
            menu.start(t0 + ms(3000)),
            collected("2", EndReason::Complete)
        );
        assert_eq!(menu.deadline(), None);
    }

    #[test]
    fn partial_type_ahead_waits_for_the_rest_with_the_inter_digit_timeout() {
        let t0 = Instant::now();
        let mut c = collector(settings());
        press(&mut c, "12", t0);
        let started = t0 + ms(5000);
        assert_eq!(c.start(started), None);
        assert_eq!(c.deadline(), Some(started + ms(3000)));
        assert_eq!(
            press(&mut c, "34", started),
            collected("1234", EndReason::Complete)
        );
    }

    #[test]
    fn type_ahead_keeps_at_most_one_complete_answer() {
        let t0 = Instant::now();
        let mut c = collector(settings());
        press(&mut c, "123456", t0);
        // A flood of (perhaps forged) events while no input is wanted holds
        // no more than that either.
        for _ in 0..1000 {
            c.on_digit(Digit::Nine, t0 + ms(6000));
        }
        assert_eq!(c.type_ahead.len(), 4);
        assert_eq!(
            c.start(t0 + ms(7000)),
            collected("1234", EndReason::Complete)
        );
        // "56" was not kept: the next collection starts empty.
        assert_eq!(c.start(t0 + ms(8000)), None);
        assert_eq!(
            c.on_timer(t0 + ms(13_000)),
            collected("", EndReason::NoInput)
        );

        press(&mut c, "12#5", t0 + ms(20_000));
        let pound = EndReason::Terminator(Digit::Pound);
        assert_eq!(c.start(t0 + ms(25_000)), collected("12", pound));
        assert_eq!(c.start(t0 + ms(26_000)), None, "'5' after '#' was not kept");
    }

    #[test]
    fn keys_after_an_answer_are_type_ahead_for_the_next_input() {
        let t0 = Instant::now();
        let mut c = collector(Settings {
            max_digits: 1,
            ..settings()
        });
        c.start(t0);
        assert_eq!(
            c.on_digit(Digit::One, t0 + ms(500)),
            collected("1", EndReason::Complete)
        );
        assert_eq!(c.on_digit(Digit::Two, t0 + ms(700)), None);
        assert_eq!(c.start(t0 + ms(4000)), collected("2", EndReason::Complete));
    }

    #[test]
    fn discarded_type_ahead_is_forgotten() {
        let t0 = Instant::now();
        let mut c = collector(settings());
        press(&mut c, "99", t0);
        c.discard_type_ahead();
        assert_eq!(c.start(t0 + ms(2000)), None);
        assert_eq!(
            c.deadline(),
            Some(t0 + ms(7000)),
            "waiting for a first digit"
        );
    }

    #[test]
    fn starting_again_abandons_the_input_in_progress() {
        let t0 = Instant::now();
        let mut c = collector(settings());
        c.start(t0);
        press(&mut c, "12", t0);
        assert_eq!(c.start(t0 + ms(3000)), None);
        assert_eq!(
            press(&mut c, "3#", t0 + ms(3000)),
            collected("3", EndReason::Terminator(Digit::Pound))
        );
    }

    #[test]
    fn max_digits_must_be_between_1_and_the_limit() {
        for bad in [0, MAX_DIGITS_LIMIT + 1] {
            let err = DigitCollector::new(Settings {
                max_digits: bad,
                ..settings()
            })
            .unwrap_err();
            assert_eq!(err, SettingsError::MaxDigits(bad));
        }
        let most = Settings {
            max_digits: MAX_DIGITS_LIMIT,
            ..settings()
        };
        assert!(DigitCollector::new(most).is_ok());
    }

    #[test]
    fn timeouts_must_be_sensible() {
        let forever = Settings {
            first_digit_timeout: Duration::MAX,
            ..settings()
        };
        assert_eq!(
            DigitCollector::new(forever).unwrap_err(),
            SettingsError::Timeout {
                name: "first_digit_timeout",
                timeout: Duration::MAX
            }
        );
        let too_long = Settings {
            inter_digit_timeout: MAX_TIMEOUT + ms(1),
            ..settings()
        };
        assert!(DigitCollector::new(too_long).is_err());
        let longest = Settings {
            inter_digit_timeout: MAX_TIMEOUT,
            first_digit_timeout: MAX_TIMEOUT,
            ..settings()
        };
        assert!(DigitCollector::new(longest).is_ok());
    }

    #[test]
    fn digit_sets() {
        let set = DigitSet::of(&[Digit::Pound, Digit::Star]);
        assert!(set.contains(Digit::Pound) && set.contains(Digit::Star));
        assert!(!set.contains(Digit::Zero) && !set.contains(Digit::D));
        assert_eq!(set, [Digit::Star, Digit::Pound].into_iter().collect());
        assert!(DigitSet::EMPTY.is_empty() && !set.is_empty());
        assert_eq!(DigitSet::default(), DigitSet::EMPTY);
    }

    #[test]
    fn a_menu_answered_over_rtp() {
        // The caller types "2#" as telephone-events; the receiver and the
        // collector together make one answer of it.
        let mut wire = Wire::new();
        let mut c = collector(settings());
        c.start(wire.now);
        let mut answers = Vec::new();
        for p in KEY_2.iter().chain(&KEY_POUND) {
            if let Some(d) = wire.one(*p) {
                answers.extend(c.on_digit(d, wire.now));
            }
        }
        assert_eq!(
            answers,
            [collected("2", EndReason::Terminator(Digit::Pound)).unwrap()]
        );
    }
}
