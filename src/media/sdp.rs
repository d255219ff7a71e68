//! SDP offer/answer for the legs whose media the gateway anchors, sans-I/O.
//!
//! Every leg negotiates with the gateway itself, never end to end: we offer
//! and answer with our own address and the RTP port allocated for that leg,
//! and relay audio between the legs ourselves. So this module only has to
//! speak one narrow dialect of the offer/answer model (RFC 3264) over SDP
//! (RFC 4566, now RFC 8866): one audio stream, RTP/AVP, G.711 at 8000 Hz —
//! PCMU (PT 0) or PCMA (PT 8), RFC 3551 §6 — plus `telephone-event/8000`
//! for DTMF (RFC 4733 §7), packetised at 20 ms. Codecs are
//! [`g711::Codec`]; this module only maps them to and from SDP.
//!
//! Four pure functions:
//!
//! * [`parse`] reads the remote description into a [`RemoteSdp`]: the first
//!   usable audio stream as a [`MediaDescription`] (address, port, payload
//!   formats in the offerer's order, DTMF payload type, ptime, direction),
//!   and a summary of every `m=` line so the other streams can be refused.
//! * [`negotiate`] picks the codec and the answer direction, or refuses
//!   with [`NotAcceptable`] (the caller answers `488 Not Acceptable Here`).
//! * [`answer`] and [`offer`] write our side.
//!
//! Parsing goes through the `sdp-types` crate. It already tolerates much
//! of what trunks send (LF-only line ends, missing `o=`/`s=`/`t=`, `c=` only
//! at media level, unknown attributes), but trailing whitespace breaks
//! `v=0 ` and direction attributes (`a=sendonly `), doubled spaces break the
//! `m=` line, a whitespace-only line is an error, and a session name in GBK
//! — common on domestic equipment — is not UTF-8. A small line-by-line
//! normalisation in front of it (`Normalised`) repairs exactly those,
//! keeping the original line numbers for error messages.
//!
//! Hold and resume arrive as new offers on the existing stream (RFC 3264
//! §8.4): `a=sendonly`/`a=inactive` to hold, `a=sendrecv` to resume, or the
//! pre-RFC 3264 form `c=IN IP4 0.0.0.0` (RFC 2543). All of them parse to a
//! [`Direction`] and a remote address that the caller applies to the running
//! stream; see [`RemoteSdp::is_hold`].

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use crate::media::g711::{self, CLOCK_RATE, Codec};
use sdp_types::{Attribute, Connection, Media, Origin, ParserError, RtpMap, Session, Time};

/// Media direction attribute (RFC 4566 §6, RFC 3264 §6.1), as `sdp-types`
/// models it. Re-exported so callers need not depend on that crate.
/// [`Direction::reverse`] is the answer mapping of RFC 3264 §6.1.
pub use sdp_types::Direction;

/// The only packetisation we send: one [`g711::FRAME`], 20 ms.
pub const PTIME_MS: u32 = g711::FRAME.as_millis() as u32;

/// The RFC 4733 events we offer and accept: the sixteen DTMF keys
/// `0`–`9`, `*`, `#`, `A`–`D` (RFC 4733 §3.2). Flash (16) is not used by
/// the hotline, so it is left out even when the remote offers `0-16`.
pub const DTMF_EVENTS: &str = "0-15";

/// The RTP profile we speak. SRTP (`RTP/SAVP`) and the feedback profiles
/// need machinery we do not have, so such streams are refused.
const PROFILE: &str = "RTP/AVP";

/// Why an SDP body could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is empty: no offer at all (an INVITE without SDP is a
    /// delayed offer, which the caller handles before calling [`parse`]).
    #[error("SDP body is empty")]
    Empty,
    /// A line other than free text (`s=`, `i=`, `u=`, `e=`, `p=`) is not
    /// UTF-8, so it cannot be interpreted.
    #[error("SDP line {line} is not UTF-8")]
    NotUtf8 {
        /// 1-based line number in the body as received.
        line: usize,
    },
    /// A line does not follow the SDP grammar.
    #[error("SDP line {line} is malformed ({reason}): {text:?}")]
    Malformed {
        /// 1-based line number in the body as received.
        line: usize,
        /// The line, without its line end and surrounding whitespace.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// There is no `m=audio` line.
    #[error("SDP has no audio stream")]
    NoAudio,
    /// The audio stream is active but neither it nor the session carries a
    /// `c=` line (RFC 4566 §5.7 requires one of them).
    #[error("SDP has no connection address (c=) for the audio stream")]
    NoConnection,
    /// The `c=` address is not an IP literal (e.g. a host name, which we
    /// would have to resolve).
    #[error("SDP connection address {address:?} is not an IP address")]
    BadAddress {
        /// The address as written.
        address: String,
    },
    /// The description is well formed but we cannot take part in it.
    #[error("SDP not acceptable: {0}")]
    NotAcceptable(#[from] NotAcceptable),
}

/// Why a well-formed description cannot be answered; the caller replies
/// `488 Not Acceptable Here` (RFC 3261 §21.4.26).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAcceptable {
    /// None of the offered payload formats is a codec we support.
    #[error("no supported codec among the offered formats {offered}")]
    NoCommonCodec {
        /// The offered formats, e.g. `18 G729/8000, 111 opus/48000/2`.
        offered: String,
    },
    /// The audio stream has port 0: the remote has disabled it.
    #[error("the audio stream is disabled (port 0)")]
    StreamDisabled,
    /// The audio stream uses a transport profile other than `RTP/AVP`.
    #[error("unsupported transport profile {0:?}")]
    Profile(String),
}

/// One payload format of the audio `m=` line, with what the attributes
/// say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadFormat {
    /// The RTP payload type, as listed on the `m=` line.
    pub payload_type: u8,
    /// Its `a=rtpmap`, if given; static types often come without one.
    pub rtpmap: Option<RtpMap>,
    /// The parameters of its `a=fmtp`, e.g. `0-16` for telephone-event.
    pub fmtp: Option<String>,
}

impl PayloadFormat {
    /// The supported codec this format carries, if any: by its rtpmap when
    /// present (mono at 8000 Hz only), else by the static table.
    pub fn codec(&self) -> Option<Codec> {
        match &self.rtpmap {
            Some(map) if map.clock_rate == CLOCK_RATE && is_mono(map) => {
                Codec::from_name(&map.encoding_name)
            }
            Some(_) => None,
            None => Codec::from_payload_type(self.payload_type),
        }
    }

    /// Whether this is `telephone-event/8000`, the only DTMF clock that
    /// matches a G.711 stream (RFC 4733 §2.1).
    pub fn is_telephone_event(&self) -> bool {
        self.rtpmap.as_ref().is_some_and(|map| {
            map.clock_rate == CLOCK_RATE
                && map.encoding_name.eq_ignore_ascii_case("telephone-event")
        })
    }

    /// `PT NAME/RATE[/PARAMS]`, or just the PT, for error messages.
    fn describe(&self) -> String {
        match &self.rtpmap {
            Some(map) => map.to_string(),
            None => self.payload_type.to_string(),
        }
    }
}

fn is_mono(map: &RtpMap) -> bool {
    map.encoding_params
        .as_deref()
        .is_none_or(|p| p.trim() == "1")
}

/// The remote audio stream we use, as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// Where the remote wants its RTP: media-level `c=`, else session-level.
    /// `0.0.0.0` (or `::`) is the RFC 2543 hold; see [`Self::direction`].
    pub address: IpAddr,
    /// The remote RTP port; 0 means the stream is disabled.
    pub port: u16,
    /// The transport profile, normally `RTP/AVP`.
    pub proto: String,
    /// The offered payload formats, in the remote's order of preference.
    pub formats: Vec<PayloadFormat>,
    /// The payload type of `telephone-event/8000`, if offered.
    pub telephone_event_pt: Option<u8>,
    /// `a=ptime` in milliseconds (media-level, else session-level), if any.
    pub ptime: Option<u32>,
    /// The remote's direction: media-level attribute, else session-level,
    /// else `sendrecv` (RFC 3264 §5.1). A null address means the remote
    /// cannot receive (RFC 3264 §8.4), so it removes the "recv" half:
    /// `sendrecv` becomes `sendonly`, `recvonly` becomes `inactive`.
    pub direction: Direction,
}

impl MediaDescription {
    /// Port 0: the remote has disabled or rejected the stream (RFC 3264 §5.1).
    pub fn is_disabled(&self) -> bool {
        self.port == 0
    }

    /// Where to send RTP, or `None` while there is nowhere to send it: the
    /// stream is disabled or the address is the RFC 2543 null address.
    pub fn rtp_target(&self) -> Option<SocketAddr> {
        (!self.is_disabled() && !self.address.is_unspecified())
            .then(|| SocketAddr::new(self.address, self.port))
    }
}

/// One `m=` line of the remote description, kept so the answer can repeat
/// every stream in order and refuse the ones we do not use (RFC 3264 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    /// The media type: `audio`, `video`, `image`, ...
    pub media: String,
    /// The remote port.
    pub port: u16,
    /// The transport profile.
    pub proto: String,
    /// The format list, single-spaced.
    pub formats: String,
}

/// A remote session description, reduced to what the gateway needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSdp {
    /// `o=` sess-id, naming the remote's session across re-offers.
    pub session_id: String,
    /// `o=` sess-version; unchanged in a re-offer means nothing changed
    /// (RFC 3264 §8).
    pub session_version: u64,
    /// The audio stream we use.
    pub audio: MediaDescription,
    /// Every `m=` line, in order; `media_lines[audio_index]` is [`Self::audio`].
    pub media_lines: Vec<MediaLine>,
    /// Position of the audio stream among [`Self::media_lines`].
    pub audio_index: usize,
}

impl RemoteSdp {
    /// Whether the remote has put us on hold: it does not want to receive
    /// audio (`sendonly`, `inactive`, or the null address of RFC 2543),
    /// while the stream itself stays up (RFC 3264 §8.4).
    pub fn is_hold(&self) -> bool {
        !self.audio.is_disabled() && !self.audio.direction.has_recv()
    }
}

/// The outcome of offer/answer for a leg: what to send, and what to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The codec for this leg.
    pub codec: Codec,
    /// Its payload type as the remote numbered it; the answer repeats it
    /// and RTP in both directions carries it (RFC 3264 §6.1).
    pub payload_type: u8,
    /// The remote's `telephone-event/8000` payload type, if it offered one;
    /// we then accept it too.
    pub telephone_event_pt: Option<u8>,
    /// Our direction: the remote's, mirrored (RFC 3264 §6.1).
    pub direction: Direction,
    /// Where to send RTP; `None` while the remote has no address for it.
    pub remote_rtp: Option<SocketAddr>,
    media_lines: Vec<MediaLine>,
    audio_index: usize,
}

/// Parses a remote session description (offer or answer).
///
/// Uses the first audio stream that is active and in `RTP/AVP`, or else
/// the first audio stream at all, so that [`negotiate`] can say precisely
/// why it is refused. Other streams are only summarised.
pub fn parse(body: &[u8]) -> Result<RemoteSdp, SdpError> {
    let normalised = Normalised::new(body)?;
    let session =
        Session::parse(normalised.text.as_bytes()).map_err(|e| normalised.parser_error(&e))?;

    let is_audio = |m: &Media| m.media.eq_ignore_ascii_case("audio");
    let audio_index = session
        .medias
        .iter()
        .position(|m| is_audio(m) && m.port != 0 && m.proto.eq_ignore_ascii_case(PROFILE))
        .or_else(|| session.medias.iter().position(is_audio))
        .ok_or(SdpError::NoAudio)?;
    let media = &session.medias[audio_index];

    let connection = media.connections.first().or(session.connection.as_ref());
    let address = match connection {
        Some(c) => connection_ip(c)?,
        None if media.port == 0 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        None => return Err(SdpError::NoConnection),
    };

    let formats = media
        .fmt
        .split_whitespace()
        .map(|token| {
            let payload_type = token
                .parse::<u8>()
                .ok()
                .filter(|pt| *pt <= 127)
                .ok_or_else(|| {
                    normalised.media_line_error(
                        audio_index,
                        format!("payload type {token:?} is not a number from 0 to 127"),
                    )
                })?;
            Ok(PayloadFormat {
                payload_type,
                rtpmap: rtpmap_for(media, payload_type),
                fmtp: fmtp_for(media, payload_type),
            })
        })
        .collect::<Result<Vec<_>, SdpError>>()?;

    let ptime = attribute_value(&media.attributes, "ptime")
        .or_else(|| attribute_value(&session.attributes, "ptime"))
        .and_then(parse_ptime);

    let signalled = direction_in(&media.attributes)
        .or_else(|| direction_in(&session.attributes))
        .unwrap_or_default();
    let direction = if address.is_unspecified() {
        without_receive(signalled)
    } else {
        signalled
    };

    let audio = MediaDescription {
        address,
        port: media.port,
        proto: media.proto.clone(),
        telephone_event_pt: formats
            .iter()
            .find(|f| f.is_telephone_event())
            .map(|f| f.payload_type),
        formats,
        ptime,
        direction,
    };

    let media_lines = session
        .medias
        .iter()
        .map(|m| MediaLine {
            media: m.media.clone(),
            port: m.port,
            proto: m.proto.clone(),
            formats: m.fmt.split_whitespace().collect::<Vec<_>>().join(" "),
        })
        .collect();

    Ok(RemoteSdp {
        session_id: session.origin.sess_id,
        session_version: session.origin.sess_version,
        audio,
        media_lines,
        audio_index,
    })
}

/// Chooses the codec and the answer direction for a remote description.
///
/// The codec is the first of the remote's formats that is in `supported`:
/// the answerer keeps the offerer's preference (RFC 3264 §6.1), so the
/// order of `supported` does not matter, only its content (a trunk may be
/// configured for PCMA alone). `telephone-event/8000` is accepted whenever
/// offered. The direction is the remote's mirrored: `sendonly` ↔
/// `recvonly`, `inactive` and `sendrecv` unchanged (RFC 3264 §6.1).
///
/// Works the same on an answer to our own offer: there it reads which of
/// our codecs the remote took.
pub fn negotiate(remote: &RemoteSdp, supported: &[Codec]) -> Result<Negotiated, SdpError> {
    let audio = &remote.audio;
    if audio.is_disabled() {
        return Err(NotAcceptable::StreamDisabled.into());
    }
    if !audio.proto.eq_ignore_ascii_case(PROFILE) {
        return Err(NotAcceptable::Profile(audio.proto.clone()).into());
    }
    let (format, codec) = audio
        .formats
        .iter()
        .find_map(|f| {
            f.codec()
                .filter(|codec| supported.contains(codec))
                .map(|codec| (f, codec))
        })
        .ok_or_else(|| NotAcceptable::NoCommonCodec {
            offered: audio
                .formats
                .iter()
                .map(PayloadFormat::describe)
                .collect::<Vec<_>>()
                .join(", "),
        })?;

    Ok(Negotiated {
        codec,
        payload_type: format.payload_type,
        telephone_event_pt: audio.telephone_event_pt,
        direction: audio.direction.reverse(),
        remote_rtp: audio.rtp_target(),
        media_lines: remote.media_lines.clone(),
        audio_index: remote.audio_index,
    })
}

/// Writes our answer: the chosen codec alone (so the stream cannot switch
/// codecs mid-call), telephone-event if the remote offered it, and every
/// other stream of the offer refused with port 0, in the offer's order
/// (RFC 3264 §6).
///
/// `session_id` stays fixed for the leg; `version` increases with every
/// new description we send on it (RFC 3264 §8).
pub fn answer(neg: &Negotiated, local: SocketAddr, session_id: u64, version: u64) -> String {
    let medias = neg
        .media_lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            if index == neg.audio_index {
                audio_media(
                    local.port(),
                    &[(neg.payload_type, neg.codec)],
                    neg.telephone_event_pt,
                    neg.direction,
                )
            } else {
                refused_media(line)
            }
        })
        .collect();
    session_text(local.ip(), session_id, version, medias)
}

/// Writes our offer for a leg: `codecs` in our order of preference, each
/// with its static payload type, then telephone-event at
/// `telephone_event_pt` (a dynamic type, 96–127; 101 by custom).
///
/// For hold, offer again with [`Direction::SendOnly`] (or `Inactive`) and
/// resume with [`Direction::SendRecv`] (RFC 3264 §8.4).
pub fn offer(
    codecs: &[Codec],
    telephone_event_pt: u8,
    local: SocketAddr,
    session_id: u64,
    version: u64,
    direction: Direction,
) -> String {
    let formats: Vec<_> = codecs.iter().map(|c| (c.payload_type(), *c)).collect();
    let media = audio_media(local.port(), &formats, Some(telephone_event_pt), direction);
    session_text(local.ip(), session_id, version, vec![media])
}

fn session_text(ip: IpAddr, session_id: u64, version: u64, medias: Vec<Media>) -> String {
    // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; peers expect
    // plain `IN IP4` for those.
    let ip = ip.to_canonical();
    let mut session = Session::new(Origin::with_ip_addr(session_id, version, ip), "-");
    session.connection = Some(Connection::from_ip_addr(ip));
    session.times = vec![Time::new(0, 0)];
    session.medias = medias;
    // The writer ends every line with CRLF (RFC 4566 §5).
    session.to_string()
}

fn audio_media(
    port: u16,
    formats: &[(u8, Codec)],
    telephone_event_pt: Option<u8>,
    direction: Direction,
) -> Media {
    let mut fmt = String::new();
    let mut attributes = Vec::new();
    for &(pt, codec) in formats {
        let _ = write!(fmt, "{pt} ");
        attributes.push(RtpMap::new(pt, codec.name(), CLOCK_RATE).into());
    }
    if let Some(pt) = telephone_event_pt {
        let _ = write!(fmt, "{pt} ");
        attributes.push(RtpMap::new(pt, "telephone-event", CLOCK_RATE).into());
        attributes.push(Attribute::with_value("fmtp", format!("{pt} {DTMF_EVENTS}")));
    }
    attributes.push(Attribute::with_value("ptime", PTIME_MS));
    attributes.push(direction.into());
    Media {
        media: "audio".into(),
        port,
        num_ports: None,
        proto: PROFILE.into(),
        fmt: fmt.trim_end().into(),
        media_title: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes,
    }
}

/// A stream we do not take: same media, profile and formats, port 0
/// (RFC 3264 §6; the format list must not be empty, so it is copied).
fn refused_media(line: &MediaLine) -> Media {
    Media {
        media: line.media.clone(),
        port: 0,
        num_ports: None,
        proto: line.proto.clone(),
        fmt: line.formats.clone(),
        media_title: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes: Vec::new(),
    }
}

fn connection_ip(connection: &Connection) -> Result<IpAddr, SdpError> {
    // try_address also accepts multicast `addr/ttl` forms; only the
    // address matters to us.
    connection
        .try_address()
        .map(|a| a.ip)
        .map_err(|_| SdpError::BadAddress {
            address: connection.connection_address.clone(),
        })
}

fn rtpmap_for(media: &Media, payload_type: u8) -> Option<RtpMap> {
    // A garbled rtpmap is ignored: a static type still works without it,
    // a dynamic one is then simply not recognised.
    media
        .attributes_typed::<RtpMap>()
        .filter_map(Result::ok)
        .find(|map| map.payload_type == payload_type)
}

fn fmtp_for(media: &Media, payload_type: u8) -> Option<String> {
    media
        .attributes
        .iter()
        .filter(|a| a.attribute.eq_ignore_ascii_case("fmtp"))
        .filter_map(|a| a.value.as_deref()?.split_once(' '))
        .find(|(pt, _)| pt.parse() == Ok(payload_type))
        .map(|(_, params)| params.trim().to_owned())
}

fn attribute_value<'a>(attributes: &'a [Attribute], name: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|a| a.attribute.eq_ignore_ascii_case(name))
        .and_then(|a| a.value.as_deref())
}

/// `a=ptime` is an integer by RFC 4566 §6, but `20.0` is seen in the wild.
fn parse_ptime(value: &str) -> Option<u32> {
    let ms = value.trim().parse::<f64>().ok()?;
    (ms.is_finite() && ms >= 1.0 && ms <= f64::from(u16::MAX)).then(|| ms.round() as u32)
}

fn direction_in(attributes: &[Attribute]) -> Option<Direction> {
    attributes
        .iter()
        .filter(|a| a.value.is_none())
        .find_map(|a| Direction::from_str(&a.attribute).ok())
}

/// What is left of a direction once the remote cannot receive.
fn without_receive(direction: Direction) -> Direction {
    match direction {
        Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
        Direction::RecvOnly | Direction::Inactive => Direction::Inactive,
    }
}

/// The body with the sloppiness `sdp-types` trips over repaired, line by
/// line, remembering where each line came from.
///
/// Lines end at CR, LF or CRLF; surrounding whitespace is dropped, blank
/// lines too; runs of spaces and tabs become one space (except in free
/// text); a free-text line that is not UTF-8 (a GBK session name) becomes
/// `-`, since we never read it. Everything else must be UTF-8.
struct Normalised {
    /// The repaired body, CRLF line ends.
    text: String,
    /// For each line of `text`: its 1-based number in the original body
    /// and its repaired content.
    lines: Vec<(usize, String)>,
}

impl Normalised {
    fn new(body: &[u8]) -> Result<Self, SdpError> {
        let mut lines = Vec::new();
        for (index, raw) in physical_lines(body).enumerate() {
            let number = index + 1;
            let trimmed = raw.trim_ascii();
            if trimmed.is_empty() {
                continue;
            }
            let free_text = matches!(trimmed, [b's' | b'i' | b'u' | b'e' | b'p', b'=', ..]);
            let line = match std::str::from_utf8(trimmed) {
                Ok(line) if free_text => line.to_owned(),
                Ok(line) => line.split_ascii_whitespace().collect::<Vec<_>>().join(" "),
                Err(_) if free_text => format!("{}=-", char::from(trimmed[0])),
                Err(_) => return Err(SdpError::NotUtf8 { line: number }),
            };
            lines.push((number, line));
        }
        if lines.is_empty() {
            return Err(SdpError::Empty);
        }
        let mut text = String::new();
        for (_, line) in &lines {
            text.push_str(line);
            text.push_str("\r\n");
        }
        Ok(Normalised { text, lines })
    }

    fn malformed(&self, index: usize, reason: impl Into<String>) -> SdpError {
        let (line, text) = self.lines[index.min(self.lines.len() - 1)].clone();
        SdpError::Malformed {
            line,
            text,
            reason: reason.into(),
        }
    }

    /// An error about the `index`-th `m=` line.
    fn media_line_error(&self, index: usize, reason: String) -> SdpError {
        let position = self
            .lines
            .iter()
            .enumerate()
            .filter(|(_, (_, line))| line.starts_with("m="))
            .nth(index)
            .map_or(0, |(position, _)| position);
        self.malformed(position, reason)
    }

    /// Maps an `sdp-types` error, whose line numbers count the repaired
    /// text, back to the line as received.
    #[allow(deprecated)] // the match must name the deprecated variants too
    fn parser_error(&self, error: &ParserError) -> SdpError {
        use ParserError as E;
        let (n, reason) = match error {
            E::InvalidLineFormat(n, what) => (*n, (*what).to_owned()),
            E::InvalidFieldEncoding(n, field) => (*n, format!("bad encoding in {field}")),
            E::InvalidFieldFormat(n, field) => (*n, format!("bad {field}")),
            E::MissingField(n, field) => (*n, format!("missing {field}")),
            E::FieldTrailingData(n, field) => (*n, format!("trailing data after {field}")),
            E::InvalidVersion(n, _) => (*n, "the version must be 0".to_owned()),
            E::MultipleVersions(n)
            | E::MultipleOrigins(n)
            | E::MultipleSessionNames(n)
            | E::MultipleSessionDescription(n)
            | E::MultipleUris(n)
            | E::MultipleConnections(n)
            | E::MultipleTimeZones(n)
            | E::MultipleMediaTitles(n)
            | E::MultipleKeys(n) => (*n, "this line may appear only once here".to_owned()),
            E::RepeatWithoutTime(n) => (*n, "r= without a preceding t=".to_owned()),
            E::UnexpectedLine(n, _) => (*n, "unexpected line".to_owned()),
            E::NoVersion | E::NoOrigin | E::NoSessionName => {
                (1, "an SDP body must begin with v=0".to_owned())
            }
        };
        self.malformed(n.saturating_sub(1), reason)
    }
}

/// The lines of `body`, each ended by CRLF, LF or a lone CR (RFC 4566 §5
/// asks for CRLF and tolerates LF; some old gear sends CR).
fn physical_lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = body;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .iter()
            .position(|b| matches!(b, b'\r' | b'\n'))
            .unwrap_or(rest.len());
        let line = &rest[..end];
        let ending = match rest.get(end..end + 2) {
            Some(b"\r\n") => 2,
            _ => usize::from(end < rest.len()),
        };
        rest = &rest[end + ending..];
        Some(line)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: &[Codec] = &[Codec::Pcmu, Codec::Pcma];

    fn local() -> SocketAddr {
        "192.0.2.10:30000".parse().unwrap()
    }

    fn sdp(lines: &[&str]) -> Vec<u8> {
        lines
            .iter()
            .flat_map(|l| [l, "\r\n"])
            .collect::<String>()
            .into_bytes()
    }

    /// An audio-only offer with the given direction line (or none).
    fn offer_with(connection: &str, port: u16, direction: Option<&str>) -> Vec<u8> {
        let m = format!("m=audio {port} RTP/AVP 8 101");
        let c = format!("c=IN IP4 {connection}");
        let mut lines = vec![
            "v=0",
            "o=trunk 77 2 IN IP4 198.51.100.7",
            "s=-",
            &c,
            "t=0 0",
            &m,
        ];
        lines.extend(["a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000"]);
        lines.extend(direction);
        sdp(&lines)
    }

    fn carrier_offer() -> Vec<u8> {
        sdp(&[
            "v=0",
            "o=HuaweiSoftX3000 1073741824 1073741825 IN IP4 198.51.100.7",
            "s=SIP Call",
            "c=IN IP4 198.51.100.8",
            "t=0 0",
            "m=audio 17480 RTP/AVP 8 0 101",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=ptime:20",
            "a=sendrecv",
        ])
    }

    fn codec_names(remote: &RemoteSdp) -> Vec<Option<String>> {
        let formats = &remote.audio.formats;
        formats
            .iter()
            .map(|f| f.rtpmap.as_ref().map(|m| m.encoding_name.clone()))
            .collect()
    }

    #[test]
    fn a_typical_carrier_offer_is_read_in_full() {
        let remote = parse(&carrier_offer()).unwrap();
        let audio = &remote.audio;
        assert_eq!(remote.session_id, "1073741824");
        assert_eq!(remote.session_version, 1073741825);
        assert_eq!(
            audio.rtp_target(),
            Some("198.51.100.8:17480".parse().unwrap())
        );
        let pts: Vec<u8> = audio.formats.iter().map(|f| f.payload_type).collect();
        assert_eq!(pts, [8, 0, 101]);
        let names = codec_names(&remote);
        assert_eq!(
            names,
            [
                Some("PCMA".into()),
                Some("PCMU".into()),
                Some("telephone-event".into())
            ]
        );
        assert_eq!(audio.formats[2].fmtp.as_deref(), Some("0-15"));
        assert_eq!(audio.telephone_event_pt, Some(101));
        assert_eq!(audio.ptime, Some(20));
        assert_eq!(audio.direction, Direction::SendRecv);
        assert!(!audio.is_disabled());
        assert!(!remote.is_hold());
    }

    #[test]
    fn the_answer_keeps_the_offerers_codec_order_and_names_only_the_chosen_codec() {
        let remote = parse(&carrier_offer()).unwrap();
        // Our list puts PCMU first; the offerer's order (PCMA first) wins.
        let neg = negotiate(&remote, BOTH).unwrap();
        assert_eq!((neg.codec, neg.payload_type), (Codec::Pcma, 8));
        assert_eq!(neg.telephone_event_pt, Some(101));
        assert_eq!(neg.direction, Direction::SendRecv);
        assert_eq!(neg.remote_rtp, Some("198.51.100.8:17480".parse().unwrap()));

        let text = answer(&neg, local(), 4242, 1);
        let expected = "v=0\r\n\
                        o=- 4242 1 IN IP4 192.0.2.10\r\n\
                        s=-\r\n\
                        c=IN IP4 192.0.2.10\r\n\
                        t=0 0\r\n\
                        m=audio 30000 RTP/AVP 8 101\r\n\
                        a=rtpmap:8 PCMA/8000\r\n\
                        a=rtpmap:101 telephone-event/8000\r\n\
                        a=fmtp:101 0-15\r\n\
                        a=ptime:20\r\n\
                        a=sendrecv\r\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn a_narrower_supported_set_skips_codecs_the_trunk_may_not_use() {
        let remote = parse(&carrier_offer()).unwrap();
        let neg = negotiate(&remote, &[Codec::Pcmu]).unwrap();
        assert_eq!((neg.codec, neg.payload_type), (Codec::Pcmu, 0));
    }

    #[test]
    fn sloppy_trunk_sdp_is_repaired_before_parsing() {
        // LF line ends, no s= and no t=, c= only at session level after
        // the o= line, trailing spaces and tabs, a whitespace-only line,
        // doubled spaces in m=, unknown attributes, static types without
        // rtpmap, and `a=sendonly ` with a trailing blank.
        let body = b"v=0 \n\
                     o=- 5 5 IN IP4 203.0.113.1\t\n\
                     c=IN IP4 203.0.113.2  \n\
                     \x20\x20\n\
                     m=audio  40000 RTP/AVP  0 8  101 \n\
                     a=rtpmap:101 telephone-event/8000 \n\
                     a=fmtp:101 0-16\n\
                     a=X-nat:0\n\
                     a=silenceSupp:off - - - -\n\
                     a=sendonly \n";
        let remote = parse(body).unwrap();
        let audio = &remote.audio;
        assert_eq!(
            audio.rtp_target(),
            Some("203.0.113.2:40000".parse().unwrap())
        );
        let codecs: Vec<_> = audio.formats.iter().map(PayloadFormat::codec).collect();
        assert_eq!(codecs, [Some(Codec::Pcmu), Some(Codec::Pcma), None]);
        assert_eq!(audio.telephone_event_pt, Some(101));
        assert_eq!(audio.formats[2].fmtp.as_deref(), Some("0-16"));
        assert_eq!(audio.ptime, None);
        assert_eq!(audio.direction, Direction::SendOnly);

        let neg = negotiate(&remote, BOTH).unwrap();
        assert_eq!(neg.codec, Codec::Pcmu);
        // We accept the digits only, whatever range was offered.
        assert!(answer(&neg, local(), 1, 1).contains("a=fmtp:101 0-15\r\n"));
    }

    #[test]
    fn bare_cr_line_ends_and_a_gbk_session_name_are_tolerated() {
        // "s=测试" in GBK: free text we never read, so it must not fail the call.
        let body = b"v=0\ro=- 1 1 IN IP4 203.0.113.1\rs=\xb2\xe2\xca\xd4\rc=IN IP4 203.0.113.1\rm=audio 4000 RTP/AVP 8\r";
        let remote = parse(body).unwrap();
        assert_eq!(remote.audio.port, 4000);
        assert_eq!(negotiate(&remote, BOTH).unwrap().codec, Codec::Pcma);
    }

    #[test]
    fn media_level_connection_overrides_the_session_level_one() {
        let body = sdp(&[
            "v=0",
            "o=- 1 1 IN IP4 203.0.113.1",
            "s=-",
            "c=IN IP4 203.0.113.1",
            "t=0 0",
            "m=audio 4000 RTP/AVP 0",
            "c=IN IP4 203.0.113.99",
        ]);
        let remote = parse(&body).unwrap();
        assert_eq!(
            remote.audio.address,
            "203.0.113.99".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn an_ipv6_offer_is_answered_over_ipv6() {
        let body = sdp(&[
            "v=0",
            "o=- 9 9 IN IP6 2001:db8::7",
            "s=-",
            "t=0 0",
            "m=audio 5004 RTP/AVP 0 101",
            "c=IN IP6 2001:db8::8",
            "a=rtpmap:101 telephone-event/8000",
        ]);
        let remote = parse(&body).unwrap();
        let target: SocketAddr = "[2001:db8::8]:5004".parse().unwrap();
        assert_eq!(remote.audio.rtp_target(), Some(target));

        let neg = negotiate(&remote, BOTH).unwrap();
        let ours: SocketAddr = "[2001:db8::1]:30002".parse().unwrap();
        let text = answer(&neg, ours, 7, 1);
        assert!(text.contains("o=- 7 1 IN IP6 2001:db8::1\r\n"), "{text}");
        assert!(text.contains("c=IN IP6 2001:db8::1\r\n"), "{text}");
        assert!(text.contains("m=audio 30002 RTP/AVP 0 101\r\n"), "{text}");
    }

    #[test]
    fn an_ipv4_mapped_local_address_is_written_as_ipv4() {
        let ours: SocketAddr = "[::ffff:192.0.2.10]:30000".parse().unwrap();
        let text = offer(&[Codec::Pcma], 101, ours, 1, 1, Direction::SendRecv);
        assert!(text.contains("c=IN IP4 192.0.2.10\r\n"), "{text}");
    }

    #[test]
    fn video_beside_audio_is_refused_with_port_zero_in_the_offers_order() {
        let body = sdp(&[
            "v=0",
            "o=- 1 1 IN IP4 203.0.113.1",
            "s=-",
            "c=IN IP4 203.0.113.1",
            "t=0 0",
            "m=video 6000 RTP/AVP 96 97",
            "a=rtpmap:96 H264/90000",
            "a=rtpmap:97 VP8/90000",
            "m=audio 4000 RTP/AVP 8 0",
        ]);
        let remote = parse(&body).unwrap();
        assert_eq!(remote.audio_index, 1);
        assert_eq!(remote.media_lines.len(), 2);
        let neg = negotiate(&remote, BOTH).unwrap();
        let text = answer(&neg, local(), 1, 1);

        let m_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(
            m_lines,
            ["m=video 0 RTP/AVP 96 97", "m=audio 30000 RTP/AVP 8"]
        );
        // The refused stream carries no attributes of its own.
        assert!(!text.contains("H264") && !text.contains(":96"), "{text}");

        let reparsed = parse(text.as_bytes()).unwrap();
        assert_eq!(reparsed.media_lines[0].port, 0);
        assert_eq!(reparsed.audio.port, 30000);
    }

    #[test]
    fn an_srtp_audio_line_is_passed_over_for_a_plain_rtp_one() {
        // Best-effort SRTP offers carry the stream twice.
        let body = sdp(&[
            "v=0",
            "o=- 1 1 IN IP4 203.0.113.1",
            "c=IN IP4 203.0.113.1",
            "m=audio 4000 RTP/SAVP 8",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
            "m=audio 4002 RTP/AVP 8",
        ]);
        let remote = parse(&body).unwrap();
        assert_eq!((remote.audio_index, remote.audio.port), (1, 4002));
        let text = answer(&negotiate(&remote, BOTH).unwrap(), local(), 1, 1);
        let m_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(m_lines, ["m=audio 0 RTP/SAVP 8", "m=audio 30000 RTP/AVP 8"]);
    }

    #[test]
    fn srtp_only_is_not_acceptable() {
        let body = sdp(&["v=0", "c=IN IP4 203.0.113.1", "m=audio 4000 RTP/SAVP 8"]);
        let err = negotiate(&parse(&body).unwrap(), BOTH).unwrap_err();
        assert_eq!(err, NotAcceptable::Profile("RTP/SAVP".into()).into());
    }

    #[test]
    fn g729_or_opus_only_is_not_acceptable() {
        for (fmt, rtpmap, listed) in [
            ("18", "a=rtpmap:18 G729/8000", "18 G729/8000"),
            ("111", "a=rtpmap:111 opus/48000/2", "111 opus/48000/2"),
            ("18 111", "a=fmtp:18 annexb=no", "18, 111"),
        ] {
            let m = format!("m=audio 4000 RTP/AVP {fmt}");
            let body = sdp(&["v=0", "c=IN IP4 203.0.113.1", &m, rtpmap]);
            let err = negotiate(&parse(&body).unwrap(), BOTH).unwrap_err();
            let offered = listed.to_owned();
            assert_eq!(
                err,
                SdpError::NotAcceptable(NotAcceptable::NoCommonCodec { offered })
            );
        }
    }

    #[test]
    fn pcma_at_another_clock_rate_or_in_stereo_is_not_g711() {
        let body = sdp(&[
            "v=0",
            "c=IN IP4 203.0.113.1",
            "m=audio 4000 RTP/AVP 96 97",
            "a=rtpmap:96 PCMA/16000",
            "a=rtpmap:97 PCMU/8000/2",
        ]);
        let err = negotiate(&parse(&body).unwrap(), BOTH).unwrap_err();
        assert!(matches!(
            err,
            SdpError::NotAcceptable(NotAcceptable::NoCommonCodec { .. })
        ));
    }

    #[test]
    fn a_dynamic_payload_type_for_g711_is_kept_as_the_remote_numbered_it() {
        let body = sdp(&[
            "v=0",
            "c=IN IP4 203.0.113.1",
            "m=audio 4000 RTP/AVP 98",
            "a=rtpmap:98 pcma/8000/1",
        ]);
        let neg = negotiate(&parse(&body).unwrap(), BOTH).unwrap();
        assert_eq!((neg.codec, neg.payload_type), (Codec::Pcma, 98));
        let text = answer(&neg, local(), 1, 1);
        assert!(
            text.contains("m=audio 30000 RTP/AVP 98\r\na=rtpmap:98 PCMA/8000\r\n"),
            "{text}"
        );
    }

    #[test]
    fn a_disabled_audio_stream_is_not_acceptable() {
        let body = sdp(&["v=0", "m=audio 0 RTP/AVP 8"]);
        let remote = parse(&body).unwrap();
        assert!(remote.audio.is_disabled());
        assert_eq!(remote.audio.rtp_target(), None);
        assert!(!remote.is_hold());
        let err = negotiate(&remote, BOTH).unwrap_err();
        assert_eq!(err, NotAcceptable::StreamDisabled.into());
    }

    #[test]
    fn every_direction_is_mirrored_in_the_answer() {
        for (offered, ours, hold) in [
            (None, Direction::SendRecv, false),
            (Some("a=sendrecv"), Direction::SendRecv, false),
            (Some("a=sendonly"), Direction::RecvOnly, true),
            (Some("a=recvonly"), Direction::SendOnly, false),
            (Some("a=inactive"), Direction::Inactive, true),
        ] {
            let remote = parse(&offer_with("203.0.113.5", 4000, offered)).unwrap();
            assert_eq!(remote.is_hold(), hold, "{offered:?}");
            let neg = negotiate(&remote, BOTH).unwrap();
            assert_eq!(neg.direction, ours, "{offered:?}");
            let line = format!("a={}\r\n", ours.as_str());
            assert!(answer(&neg, local(), 1, 1).ends_with(&line), "{offered:?}");
            // The stream stays up whatever the direction.
            assert_eq!(neg.remote_rtp, Some("203.0.113.5:4000".parse().unwrap()));
        }
    }

    #[test]
    fn a_session_level_direction_applies_unless_the_media_level_overrides_it() {
        let session_only = sdp(&[
            "v=0",
            "c=IN IP4 203.0.113.1",
            "a=inactive",
            "m=audio 4000 RTP/AVP 8",
        ]);
        assert_eq!(
            parse(&session_only).unwrap().audio.direction,
            Direction::Inactive
        );

        let both = sdp(&[
            "v=0",
            "c=IN IP4 203.0.113.1",
            "a=inactive",
            "m=audio 4000 RTP/AVP 8",
            "a=sendonly",
        ]);
        assert_eq!(parse(&both).unwrap().audio.direction, Direction::SendOnly);
    }

    #[test]
    fn rfc2543_hold_with_a_null_address_keeps_the_stream_but_stops_our_sending() {
        let remote = parse(&offer_with("0.0.0.0", 4000, None)).unwrap();
        assert!(remote.is_hold());
        assert!(!remote.audio.is_disabled());
        assert_eq!(remote.audio.direction, Direction::SendOnly);
        assert_eq!(remote.audio.rtp_target(), None);

        let neg = negotiate(&remote, BOTH).unwrap();
        assert_eq!(neg.direction, Direction::RecvOnly);
        assert_eq!(neg.remote_rtp, None);

        // recvonly with a null address leaves nothing either way.
        let remote = parse(&offer_with("0.0.0.0", 4000, Some("a=recvonly"))).unwrap();
        assert_eq!(remote.audio.direction, Direction::Inactive);
    }

    #[test]
    fn hold_and_resume_by_re_offer_move_the_running_stream() {
        let first = parse(&offer_with("203.0.113.5", 4000, None)).unwrap();
        let neg = negotiate(&first, BOTH).unwrap();
        assert_eq!(neg.remote_rtp, Some("203.0.113.5:4000".parse().unwrap()));

        // Hold from a media server on another address and port.
        let hold = parse(&offer_with("203.0.113.6", 4010, Some("a=sendonly"))).unwrap();
        assert!(hold.is_hold());
        let neg = negotiate(&hold, BOTH).unwrap();
        assert_eq!(neg.direction, Direction::RecvOnly);
        assert_eq!(neg.remote_rtp, Some("203.0.113.6:4010".parse().unwrap()));

        // Resume on yet another port.
        let resume = parse(&offer_with("203.0.113.5", 4020, Some("a=sendrecv"))).unwrap();
        assert!(!resume.is_hold());
        assert_eq!(resume.session_id, first.session_id);
        let neg = negotiate(&resume, BOTH).unwrap();
        assert_eq!(neg.direction, Direction::SendRecv);
        assert_eq!(neg.remote_rtp, Some("203.0.113.5:4020".parse().unwrap()));
        assert!(answer(&neg, local(), 1, 3).contains("o=- 1 3 IN IP4"));
    }

    #[test]
    fn our_offer_reads_back_through_our_own_parser() {
        let codecs = [Codec::Pcma, Codec::Pcmu];
        let text = offer(&codecs, 101, local(), 55, 2, Direction::SendOnly);
        assert!(text.ends_with("\r\n") && !text.replace("\r\n", "").contains('\n'));
        assert!(text.contains("m=audio 30000 RTP/AVP 8 0 101\r\n"), "{text}");
        assert!(text.contains("a=ptime:20\r\n"), "{text}");

        let back = parse(text.as_bytes()).unwrap();
        assert_eq!(back.session_id, "55");
        assert_eq!(back.session_version, 2);
        assert_eq!(back.audio.rtp_target(), Some(local()));
        let names = codec_names(&back);
        assert_eq!(
            names,
            [
                Some("PCMA".into()),
                Some("PCMU".into()),
                Some("telephone-event".into())
            ]
        );
        assert_eq!(back.audio.formats[2].fmtp.as_deref(), Some(DTMF_EVENTS));
        assert_eq!(back.audio.telephone_event_pt, Some(101));
        assert_eq!(back.audio.ptime, Some(PTIME_MS));
        assert_eq!(back.audio.direction, Direction::SendOnly);
        assert!(back.is_hold());
    }

    #[test]
    fn our_answer_reads_back_through_our_own_parser() {
        let neg = negotiate(&parse(&carrier_offer()).unwrap(), BOTH).unwrap();
        let back = parse(answer(&neg, local(), 9, 4).as_bytes()).unwrap();
        let again = negotiate(&back, BOTH).unwrap();
        assert_eq!(
            (again.codec, again.payload_type),
            (neg.codec, neg.payload_type)
        );
        assert_eq!(again.telephone_event_pt, Some(101));
        assert_eq!(again.remote_rtp, Some(local()));
        assert_eq!(back.audio.ptime, Some(PTIME_MS));
    }

    #[test]
    fn a_telephone_event_type_other_than_101_is_kept() {
        let body = sdp(&[
            "v=0",
            "c=IN IP4 203.0.113.1",
            "m=audio 4000 RTP/AVP 8 100 96",
            "a=rtpmap:100 telephone-event/16000",
            "a=rtpmap:96 telephone-event/8000",
            "a=fmtp:96 0-15",
        ]);
        let remote = parse(&body).unwrap();
        // The 16 kHz event stream does not fit an 8 kHz call.
        assert_eq!(remote.audio.telephone_event_pt, Some(96));
        let neg = negotiate(&remote, BOTH).unwrap();
        assert_eq!(neg.telephone_event_pt, Some(96));
        let text = answer(&neg, local(), 1, 1);
        assert!(text.contains("m=audio 30000 RTP/AVP 8 96\r\n"), "{text}");
        assert!(
            text.contains("a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\n"),
            "{text}"
        );
    }

    #[test]
    fn without_telephone_event_the_answer_offers_none() {
        let body = sdp(&["v=0", "c=IN IP4 203.0.113.1", "m=audio 4000 RTP/AVP 0"]);
        let neg = negotiate(&parse(&body).unwrap(), BOTH).unwrap();
        assert_eq!(neg.telephone_event_pt, None);
        let text = answer(&neg, local(), 1, 1);
        assert!(
            !text.contains("telephone-event") && !text.contains("fmtp"),
            "{text}"
        );
    }

    #[test]
    fn a_decimal_ptime_is_rounded_and_a_session_level_one_is_used() {
        let body = sdp(&[
            "v=0",
            "c=IN IP4 203.0.113.1",
            "a=ptime:30.0",
            "m=audio 4000 RTP/AVP 0",
        ]);
        assert_eq!(parse(&body).unwrap().audio.ptime, Some(30));
        let garbage = sdp(&[
            "v=0",
            "c=IN IP4 203.0.113.1",
            "m=audio 4000 RTP/AVP 0",
            "a=ptime:x",
        ]);
        assert_eq!(parse(&garbage).unwrap().audio.ptime, None);
    }

    #[test]
    fn errors_say_what_is_wrong_and_where() {
        assert_eq!(parse(b""), Err(SdpError::Empty));
        assert_eq!(parse(b" \r\n\r\n"), Err(SdpError::Empty));

        let not_utf8 = b"v=0\r\nc=IN IP4 203.0.113.1\r\na=tool:\xff\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert_eq!(parse(not_utf8), Err(SdpError::NotUtf8 { line: 3 }));

        // Line numbers count the body as received, blank lines included.
        let garbled =
            b"v=0\r\n\r\nc=IN IP4 203.0.113.1\r\nthis is not sdp\r\nm=audio 4000 RTP/AVP 0\r\n";
        match parse(garbled) {
            Err(SdpError::Malformed { line, text, .. }) => {
                assert_eq!((line, text.as_str()), (4, "this is not sdp"));
            }
            other => panic!("{other:?}"),
        }

        let bad_port = sdp(&["v=0", "c=IN IP4 203.0.113.1", "m=audio 99999 RTP/AVP 0"]);
        match parse(&bad_port) {
            Err(SdpError::Malformed { line, text, reason }) => {
                assert_eq!((line, text.as_str()), (3, "m=audio 99999 RTP/AVP 0"));
                assert!(reason.contains("port"), "{reason}");
            }
            other => panic!("{other:?}"),
        }

        let bad_pt = sdp(&[
            "v=0",
            "c=IN IP4 203.0.113.1",
            "m=video 0 RTP/AVP 96",
            "m=audio 4000 RTP/AVP 0 x",
        ]);
        match parse(&bad_pt) {
            Err(SdpError::Malformed { line, text, .. }) => {
                assert_eq!((line, text.as_str()), (4, "m=audio 4000 RTP/AVP 0 x"));
            }
            other => panic!("{other:?}"),
        }

        let not_v = sdp(&["o=- 1 1 IN IP4 203.0.113.1", "m=audio 4000 RTP/AVP 0"]);
        assert!(matches!(
            parse(&not_v),
            Err(SdpError::Malformed { line: 1, .. })
        ));

        let video_only = sdp(&["v=0", "c=IN IP4 203.0.113.1", "m=video 6000 RTP/AVP 96"]);
        assert_eq!(parse(&video_only), Err(SdpError::NoAudio));

        let no_c = sdp(&["v=0", "m=audio 4000 RTP/AVP 0"]);
        assert_eq!(parse(&no_c), Err(SdpError::NoConnection));

        let host = sdp(&[
            "v=0",
            "c=IN IP4 media.example.net",
            "m=audio 4000 RTP/AVP 0",
        ]);
        let address = "media.example.net".to_owned();
        assert_eq!(parse(&host), Err(SdpError::BadAddress { address }));
    }
}
