//! SIP messages: our facade over the parser crate.
//!
//! The rest of the gateway speaks SIP only through this module, so the crate
//! behind it can be swapped. We frame and split messages ourselves (start
//! line, folded header lines, compact names, comma-separated values,
//! Content-Length) and keep every header value as the bytes that arrived:
//! a B2BUA relays foreign URIs and unknown headers, and must not re-escape
//! them. Typed views (Via, URIs) are parsed on demand with `ezk-sip-types`,
//! which parsed the most of RFC 4475 correctly of the crates measured (see
//! README, "SIP parser").
//!
//! Parsing is strict where RFC 3261 and RFC 4475 §3.1.2 say a message is
//! broken (request line spacing, CSeq, Content-Length, addresses) and lenient
//! where they say to be (whitespace, folding, unknown methods and headers).
//! A request that fails after its head is readable carries enough to answer
//! `400` (see [`ParseError::response`]).

use bytes::{BufMut, Bytes, BytesMut};
use bytesstr::BytesStr;
use ezk_sip_types::header::HeaderParse;
use ezk_sip_types::header::typed::Via as EzkVia;
use ezk_sip_types::host::Host;
use std::fmt;
use std::net::IpAddr;

/// The largest message we accept, datagram or stream frame. RFC 3261 §18.1.1
/// makes 1300 bytes the UDP comfort size; real INVITEs with big SDP stay
/// well under this.
pub const MAX_MESSAGE_SIZE: usize = 65_535;

/// More Vias than this is a loop or an attack (a response copies them all:
/// a reflection amplifier); RFC 3261's Max-Forwards default is 70.
const MAX_VIAS: usize = 70;

/// Header fields in one message, after splitting comma-separated values.
const MAX_HEADERS: usize = 256;

/// A SIP method. Unknown methods are kept by name: RFC 3261 §8.2.1 wants
/// them answered `501`/`405`, not rejected as malformed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Info,
    Update,
    Prack,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    Other(BytesStr),
}

impl Method {
    fn from_token(token: &BytesStr) -> Self {
        // Methods are case-sensitive (RFC 3261 §7.1).
        match token.as_str() {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            _ => Method::Other(token.clone()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Other(name) => name.as_str(),
            known => known.metric_label(),
        }
    }

    /// A bounded label for metrics: unknown methods fold into "other" so a
    /// scanner cannot grow the label set.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(_) => "other",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Header names we act on; everything else is carried as [`Name::Other`].
/// Compact forms (RFC 3261 §7.3.3) map to the long name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Name {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    MaxForwards,
    ContentLength,
    ContentType,
    Route,
    RecordRoute,
    Expires,
    Authorization,
    WwwAuthenticate,
    Allow,
    Supported,
    Require,
    Date,
    UserAgent,
    Server,
    Other(BytesStr),
}

impl Name {
    fn parse(raw: &BytesStr) -> Self {
        let s = raw.as_str();
        let is = |n: &str| s.eq_ignore_ascii_case(n);
        if s.len() == 1 {
            return match s.as_bytes()[0].to_ascii_lowercase() {
                b'v' => Name::Via,
                b'f' => Name::From,
                b't' => Name::To,
                b'i' => Name::CallId,
                b'm' => Name::Contact,
                b'l' => Name::ContentLength,
                b'c' => Name::ContentType,
                b'k' => Name::Supported,
                _ => Name::Other(raw.clone()),
            };
        }
        if is("via") {
            Name::Via
        } else if is("from") {
            Name::From
        } else if is("to") {
            Name::To
        } else if is("call-id") {
            Name::CallId
        } else if is("cseq") {
            Name::CSeq
        } else if is("contact") {
            Name::Contact
        } else if is("max-forwards") {
            Name::MaxForwards
        } else if is("content-length") {
            Name::ContentLength
        } else if is("content-type") {
            Name::ContentType
        } else if is("route") {
            Name::Route
        } else if is("record-route") {
            Name::RecordRoute
        } else if is("expires") {
            Name::Expires
        } else if is("authorization") {
            Name::Authorization
        } else if is("www-authenticate") {
            Name::WwwAuthenticate
        } else if is("allow") {
            Name::Allow
        } else if is("supported") {
            Name::Supported
        } else if is("require") {
            Name::Require
        } else if is("date") {
            Name::Date
        } else if is("user-agent") {
            Name::UserAgent
        } else if is("server") {
            Name::Server
        } else {
            Name::Other(raw.clone())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Name::Via => "Via",
            Name::From => "From",
            Name::To => "To",
            Name::CallId => "Call-ID",
            Name::CSeq => "CSeq",
            Name::Contact => "Contact",
            Name::MaxForwards => "Max-Forwards",
            Name::ContentLength => "Content-Length",
            Name::ContentType => "Content-Type",
            Name::Route => "Route",
            Name::RecordRoute => "Record-Route",
            Name::Expires => "Expires",
            Name::Authorization => "Authorization",
            Name::WwwAuthenticate => "WWW-Authenticate",
            Name::Allow => "Allow",
            Name::Supported => "Supported",
            Name::Require => "Require",
            Name::Date => "Date",
            Name::UserAgent => "User-Agent",
            Name::Server => "Server",
            Name::Other(name) => name.as_str(),
        }
    }

    /// Headers whose comma-separated values are separate entries
    /// (RFC 3261 §7.3.1). We split those we route on, so the top Via or
    /// the first Contact is always one entry.
    fn splits(&self) -> bool {
        matches!(
            self,
            Name::Via | Name::Contact | Name::Route | Name::RecordRoute
        )
    }
}

/// One header field value as it arrived (unfolded, trimmed).
#[derive(Clone, Debug)]
pub struct Header {
    pub name: Name,
    pub value: BytesStr,
}

#[derive(Clone, Debug)]
pub enum StartLine {
    Request { method: Method, uri: BytesStr },
    Response { code: u16, reason: BytesStr },
}

/// A parsed or built SIP message.
#[derive(Clone, Debug)]
pub struct Message {
    pub start: StartLine,
    pub headers: Vec<Header>,
    pub body: Bytes,
}

/// Why a message was refused. `response`, when present, is the `400` (or
/// `505`) to send back: the head was readable enough to address it.
#[derive(Debug)]
pub struct ParseError {
    pub reason: &'static str,
    pub response: Option<Box<Message>>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason)
    }
}

impl std::error::Error for ParseError {}

fn refuse(reason: &'static str) -> ParseError {
    ParseError {
        reason,
        response: None,
    }
}

/// Where a stream frame ends: `Ok(Some(len))` once a whole message is
/// buffered, `Ok(None)` while more bytes are needed, `Err` when the head is
/// too large or its Content-Length is unusable (the connection must close:
/// framing is lost). Leading CRLFs (RFC 5626 keepalives) count as a frame of
/// their own so the caller can skip them.
///
/// This looks at the whole buffer every time; a connection that receives
/// its frames a piece at a time uses a [`Framer`], which gives the same
/// answers but looks at each byte only once.
pub fn frame_length(buf: &[u8]) -> Result<Option<usize>, &'static str> {
    Framer::default().frame_length(buf)
}

/// [`frame_length`] for one stream, remembering what it has already read
/// of the frame being received: how far the search for the blank line
/// ending the head got, and, once the head is whole, the frame's length.
/// A peer trickling a 64 KB head a byte at a time so costs 64 KB of
/// scanning, not 64 KB on every byte (2 GB).
///
/// Use it on a buffer that only grows at its end between calls, and from
/// which the caller removes the first `len` bytes whenever it answers
/// `Ok(Some(len))`; the framer then starts afresh on the next frame.
#[derive(Debug, Default)]
pub struct Framer {
    /// The blank line starts at no `\n` before this index.
    searched: usize,
    /// The frame's total length, once its head is whole.
    total: Option<usize>,
    /// Bytes looked at so far, over every frame: the work done, for tests
    /// (and anyone curious) to check it stays proportional to the input.
    examined: u64,
}

impl Framer {
    /// The buffered stream's first frame: as [`frame_length`].
    pub fn frame_length(&mut self, buf: &[u8]) -> Result<Option<usize>, &'static str> {
        let found = self.find(buf);
        if let Ok(Some(_)) = found {
            self.searched = 0;
            self.total = None;
        }
        found
    }

    /// How many bytes this framer has looked at, over all its frames.
    pub fn bytes_examined(&self) -> u64 {
        self.examined
    }

    fn find(&mut self, buf: &[u8]) -> Result<Option<usize>, &'static str> {
        if let Some(total) = self.total {
            return Ok((buf.len() >= total).then_some(total));
        }
        if self.searched == 0 {
            let keepalive = buf
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            self.examined += (keepalive + 1).min(buf.len()) as u64;
            if keepalive > 0 {
                return Ok(Some(keepalive));
            }
        }
        let Some(head_end) = self.find_head_end(buf) else {
            return if buf.len() > MAX_MESSAGE_SIZE {
                Err("message head exceeds the size limit")
            } else {
                Ok(None)
            };
        };
        let head = &buf[..head_end];
        // Read once per frame, when the head completes.
        self.examined += head.len() as u64;
        let mut length = None;
        for line in head.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let name = trim_bytes(&line[..colon]);
            if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
                let value = std::str::from_utf8(trim_bytes(&line[colon + 1..]))
                    .map_err(|_| "Content-Length is not a number")?;
                let n = value
                    .parse::<usize>()
                    .map_err(|_| "Content-Length is not a number")?;
                if length.is_some_and(|l| l != n) {
                    return Err("Content-Length given twice with different values");
                }
                length = Some(n);
            }
        }
        // RFC 3261 §18.3: on a stream, Content-Length is mandatory.
        let length = length.ok_or("Content-Length is missing on a stream")?;
        // Checked before adding: a huge length must not wrap around.
        if length > MAX_MESSAGE_SIZE || head_end + length > MAX_MESSAGE_SIZE {
            return Err("message exceeds the size limit");
        }
        let total = head_end + length;
        self.total = Some(total);
        Ok((buf.len() >= total).then_some(total))
    }

    /// [`find_head_end`], resumed where the last call stopped: each byte
    /// is looked at once, but for the last `\n` (and the `\r` after it)
    /// when the buffer ends too soon to tell whether the blank line
    /// follows.
    fn find_head_end(&mut self, buf: &[u8]) -> Option<usize> {
        let mut i = self.searched;
        while let Some(p) = memchr(b'\n', &buf[i..]) {
            let nl = i + p;
            let rest = &buf[nl + 1..];
            self.examined += (p + 1 + rest.len().min(2)) as u64;
            match rest {
                [b'\n', ..] => return Some(nl + 2),
                [b'\r', b'\n', ..] => return Some(nl + 3),
                // Too near the end to tell: this `\n` again next time.
                [] | [b'\r'] => {
                    self.searched = nl;
                    return None;
                }
                _ => i = nl + 1,
            }
        }
        self.examined += (buf.len() - i) as u64;
        self.searched = buf.len();
        None
    }
}

fn trim_bytes(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// Index just past the blank line ending the head (CRLFCRLF, or bare LFLF
/// which RFC 3261 §7 tolerates from sloppy senders).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = memchr(b'\n', &buf[i..]) {
        let nl = i + p;
        let rest = &buf[nl + 1..];
        if rest.starts_with(b"\r\n") {
            return Some(nl + 3);
        }
        if rest.starts_with(b"\n") {
            return Some(nl + 2);
        }
        i = nl + 1;
    }
    None
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

impl Message {
    /// Parses one message: a whole UDP datagram, or one frame cut by
    /// [`frame_length`]. On a datagram, octets after the body that
    /// Content-Length announces are ignored (RFC 3261 §18.3, RFC 4475
    /// `dblreq`); a body shorter than announced is an error (`clerr`).
    pub fn parse(datagram: Bytes) -> Result<Message, ParseError> {
        if datagram.len() > MAX_MESSAGE_SIZE {
            return Err(refuse("message exceeds the size limit"));
        }
        // A datagram without the blank line is read as all head (RFC 4475
        // `baddn` arrives so); a body then cannot exist.
        let head_end = find_head_end(&datagram).unwrap_or(datagram.len());
        let head = datagram.slice(..head_end);
        let head = BytesStr::from_utf8_bytes(head).map_err(|_| refuse("header is not UTF-8"))?;

        let mut lines = Lines::new(&head);
        let first = lines.next().ok_or_else(|| refuse("empty message"))?;
        // A broken request line still lets us answer 400 if the headers
        // say where to (RFC 4475 `lwsstart`, `ltgtruri`, ...).
        let (start, version_ok, start_error) = match parse_start_line(&first) {
            Ok((start, ok)) => (start, ok, None),
            Err(e) if first.starts_with("SIP/") => return Err(e),
            Err(e) => {
                let placeholder = StartLine::Request {
                    method: Method::Other(BytesStr::from_static("INVALID")),
                    uri: BytesStr::from_static("sip:invalid"),
                };
                (placeholder, true, Some(e.reason))
            }
        };

        let mut headers = Vec::with_capacity(16);
        let mut list_error = None;
        for line in lines {
            let colon = line
                .find(':')
                .ok_or_else(|| refuse("header line without a colon"))?;
            let raw_name = line.slice_ref(line[..colon].trim());
            if raw_name.is_empty() || !raw_name.bytes().all(is_token_byte) {
                return Err(refuse("malformed header name"));
            }
            let name = Name::parse(&raw_name);
            let value = line.slice_ref(line[colon + 1..].trim());
            if name.splits() {
                for part in split_commas(&value) {
                    if part.is_empty() {
                        // Answered 400 once the head is read (RFC 4475
                        // `badinv01`).
                        list_error = Some("empty element in a header list");
                        continue;
                    }
                    headers.push(Header {
                        name: name.clone(),
                        value: value.slice_ref(part),
                    });
                }
            } else {
                headers.push(Header { name, value });
            }
        }

        if headers.len() > MAX_HEADERS {
            return Err(refuse("too many header fields"));
        }
        let mut message = Message {
            start,
            headers,
            body: Bytes::new(),
        };
        if let Some(reason) = start_error.or(list_error) {
            return Err(message.refusal(reason));
        }
        let available = datagram.len() - head_end;
        let declared = match message.header(&Name::ContentLength) {
            None => available,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n <= available => n,
                Ok(_) => return Err(message.refusal("Content-Length exceeds the message")),
                Err(_) => return Err(message.refusal("Content-Length is not a number")),
            },
        };
        message.body = datagram.slice(head_end..head_end + declared);
        message.validate(version_ok)?;
        if !version_ok {
            // RFC 3261 §8.1.1.1 (SIP/2.0 only) and RFC 4475 `badvers`: 505.
            return Err(message.refusal_with(505, "Version Not Supported"));
        }
        Ok(message)
    }

    /// The checks RFC 3261 §8.1.1/§8.2 and RFC 4475 §3.1.2 ask of every
    /// request and response we act on.
    fn validate(&self, version_ok: bool) -> Result<(), ParseError> {
        let is_request = self.is_request();
        // A response we cannot read is dropped; a request gets a 400 once
        // the fields a response needs are sound.
        let fail = |reason| {
            if is_request {
                Err(self.refusal(reason))
            } else {
                Err(refuse(reason))
            }
        };
        let Some(via) = self.header(&Name::Via) else {
            return Err(refuse("missing Via"));
        };
        if self.call_id().is_none() {
            return fail("missing Call-ID");
        }
        for name in [Name::From, Name::To] {
            let mut values = self.headers_named(&name);
            let (Some(value), None) = (values.next(), values.next()) else {
                return fail("From and To must appear exactly once");
            };
            if NameAddr::parse(value).is_err() {
                return fail("malformed From or To");
            }
        }
        let Some((_, cseq_method)) = self.cseq() else {
            return fail("malformed CSeq");
        };
        // Of another SIP version, the Vias are that version's too: the
        // caller answers 505 instead (RFC 4475 `badvers`).
        if version_ok {
            let mut vias = 0;
            for v in self.headers_named(&Name::Via) {
                vias += 1;
                if !via_is_valid(v) {
                    return fail("malformed Via");
                }
            }
            if vias > MAX_VIAS {
                return fail("too many Via headers");
            }
        }
        let _ = via;
        if let StartLine::Request { method, uri } = &self.start {
            if *method != cseq_method {
                return fail("CSeq method does not match the request line");
            }
            if let Some(v) = self.header(&Name::MaxForwards)
                && v.parse::<u8>().is_err()
            {
                return fail("Max-Forwards is not a number from 0 to 255");
            }
            if SipUriView::parse(uri).is_some_and(|u| u.headers.is_some()) {
                return fail("Request-URI carries escaped headers");
            }
            if let Some(v) = self.header(&Name::Expires)
                && v.parse::<u32>().is_err()
            {
                return fail("Expires is not a number of seconds");
            }
            if let Some(v) = self.header(&Name::Date)
                && !v.ends_with("GMT")
            {
                return fail("Date is not in GMT (RFC 3261 §20.17)");
            }
            for contact in self.headers_named(&Name::Contact) {
                if contact.as_str() != "*" && NameAddr::parse(contact).is_err() {
                    return fail("malformed Contact");
                }
            }
        }
        Ok(())
    }

    fn refusal(&self, reason: &'static str) -> ParseError {
        ParseError {
            reason,
            response: self
                .can_answer()
                .then(|| Box::new(self.response(400, reason, None))),
        }
    }

    /// A request carrying the fields every response copies (§8.2.6.2),
    /// whether or not they are well formed: the response goes back to the
    /// packet's source, so a broken Via does not stop it.
    fn can_answer(&self) -> bool {
        // An ACK is never answered (RFC 3261 §17.2.1).
        self.is_request()
            && self.method() != Some(&Method::Ack)
            && [Name::Via, Name::From, Name::To, Name::CallId, Name::CSeq]
                .iter()
                .all(|n| self.header(n).is_some())
    }

    fn refusal_with(&self, code: u16, reason: &'static str) -> ParseError {
        ParseError {
            reason,
            response: self
                .can_answer()
                .then(|| Box::new(self.response(code, reason, None))),
        }
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn request_uri(&self) -> Option<&BytesStr> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    pub fn code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// The first value of a header.
    pub fn header(&self, name: &Name) -> Option<&BytesStr> {
        self.headers
            .iter()
            .find(|h| h.name == *name)
            .map(|h| &h.value)
    }

    pub fn headers_named<'m>(&'m self, name: &'m Name) -> impl Iterator<Item = &'m BytesStr> + 'm {
        self.headers
            .iter()
            .filter(move |h| h.name == *name)
            .map(|h| &h.value)
    }

    pub fn call_id(&self) -> Option<&BytesStr> {
        self.header(&Name::CallId).filter(|v| !v.is_empty())
    }

    /// CSeq number and method; the number must fit in 31 bits (§8.1.1.5).
    pub fn cseq(&self) -> Option<(u32, Method)> {
        let value = self.header(&Name::CSeq)?;
        let mut parts = value.split_ascii_whitespace();
        let number: u32 = parts.next()?.parse().ok()?;
        let method = parts.next()?;
        if number >= 1 << 31 || parts.next().is_some() || !method.bytes().all(is_token_byte) {
            return None;
        }
        Some((number, Method::from_token(&value.slice_ref(method))))
    }

    pub fn from(&self) -> Option<NameAddr<'_>> {
        NameAddr::parse(self.header(&Name::From)?).ok()
    }

    pub fn to(&self) -> Option<NameAddr<'_>> {
        NameAddr::parse(self.header(&Name::To)?).ok()
    }

    pub fn top_via(&self) -> Option<ViaInfo> {
        parse_via(self.header(&Name::Via)?)
    }

    /// The top Via's `branch` (what transactions are keyed by), read
    /// without the full parse [`Message::top_via`] makes and its copies.
    /// Of a message [`Message::parse`] took, it is `top_via()`'s branch.
    pub fn branch(&self) -> Option<&str> {
        let value = self.header(&Name::Via)?.as_str();
        // The params of the first via-parm run from its first `;` to the
        // comma that ends it (neither counts inside a quoted value); a
        // comma is put at the end so that the last param is looked at.
        let mut quoted = false;
        let mut from: Option<usize> = None;
        for (i, b) in value.bytes().chain(std::iter::once(b',')).enumerate() {
            if b == b'"' {
                quoted = !quoted;
                continue;
            }
            if quoted || (b != b';' && b != b',') {
                continue;
            }
            if let Some(f) = from
                && let Some((name, v)) = value[f..i].split_once('=')
            {
                let v = v.trim();
                // Named exactly as the full parse looks it up.
                if name.trim() == "branch" && !v.is_empty() {
                    return Some(v);
                }
            }
            if b == b',' {
                return None;
            }
            from = Some(i + 1);
        }
        None
    }

    /// `Content-Length` is written by [`Message::encode`] from the body;
    /// any value carried in `headers` is skipped.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(512 + self.body.len());
        match &self.start {
            StartLine::Request { method, uri } => {
                out.put_slice(method.as_str().as_bytes());
                out.put_u8(b' ');
                out.put_slice(uri.as_bytes());
                out.put_slice(b" SIP/2.0\r\n");
            }
            StartLine::Response { code, reason } => {
                out.put_slice(b"SIP/2.0 ");
                out.put_slice(itoa(*code as u64, &mut [0; 20]).as_bytes());
                out.put_u8(b' ');
                out.put_slice(reason.as_bytes());
                out.put_slice(b"\r\n");
            }
        }
        for h in &self.headers {
            if h.name == Name::ContentLength {
                continue;
            }
            out.put_slice(h.name.as_str().as_bytes());
            out.put_slice(b": ");
            out.put_slice(h.value.as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"Content-Length: ");
        out.put_slice(itoa(self.body.len() as u64, &mut [0; 20]).as_bytes());
        out.put_slice(b"\r\n\r\n");
        out.put_slice(&self.body);
        out.freeze()
    }

    /// A response to this request per RFC 3261 §8.2.6.2: Via (all), From,
    /// To, Call-ID and CSeq copied; `to_tag` added to To when it has none.
    pub fn response(&self, code: u16, reason: &str, to_tag: Option<&str>) -> Message {
        let mut headers = Vec::with_capacity(8);
        for h in &self.headers {
            match h.name {
                Name::Via | Name::From | Name::CallId | Name::CSeq => headers.push(h.clone()),
                Name::To => {
                    let value = match to_tag {
                        Some(tag) if code > 100 && !has_tag(&h.value) => {
                            BytesStr::from(format!("{};tag={tag}", h.value))
                        }
                        _ => h.value.clone(),
                    };
                    headers.push(Header {
                        name: Name::To,
                        value,
                    });
                }
                _ => {}
            }
        }
        Message {
            start: StartLine::Response {
                code,
                reason: BytesStr::from(reason.to_owned()),
            },
            headers,
            body: Bytes::new(),
        }
    }

    /// A new request with no headers; add them with [`Message::push`].
    pub fn request(method: Method, uri: impl Into<BytesStr>) -> Message {
        Message {
            start: StartLine::Request {
                method,
                uri: uri.into(),
            },
            headers: Vec::with_capacity(12),
            body: Bytes::new(),
        }
    }

    pub fn push(&mut self, name: Name, value: impl Into<BytesStr>) -> &mut Self {
        self.headers.push(Header {
            name,
            value: value.into(),
        });
        self
    }

    /// Replaces every value of `name` with one value.
    pub fn set(&mut self, name: Name, value: impl Into<BytesStr>) -> &mut Self {
        let value = value.into();
        match self.headers.iter().position(|h| h.name == name) {
            Some(i) => {
                self.headers[i].value = value;
                let mut seen = 0;
                self.headers.retain(|h| {
                    if h.name == name {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.headers.push(Header { name, value }),
        }
        self
    }

    pub fn remove(&mut self, name: &Name) {
        self.headers.retain(|h| h.name != *name);
    }

    /// Puts a Via on top (a new hop, RFC 3261 §8.1.1.7).
    pub fn push_via_front(&mut self, value: impl Into<BytesStr>) {
        self.headers.insert(
            0,
            Header {
                name: Name::Via,
                value: value.into(),
            },
        );
    }
}

/// Whether a From/To value carries a `tag` parameter.
fn has_tag(value: &str) -> bool {
    NameAddr::parse(value).is_ok_and(|a| a.param("tag").is_some())
}

fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

/// RFC 3261 §25.1 `token` characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn parse_start_line(line: &BytesStr) -> Result<(StartLine, bool), ParseError> {
    // RFC 3261 §7.1: exactly one SP between the three elements (RFC 4475
    // `lwsstart`, `trws`, `lwsruri`).
    if let Some(rest) = line.strip_prefix("SIP/") {
        let mut parts = rest.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if version != "2.0" {
            return Err(refuse("unsupported SIP version in status line"));
        }
        let code = parts.next().unwrap_or("");
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(refuse("status code is not three digits"));
        }
        let code: u16 = code.parse().map_err(|_| refuse("bad status code"))?;
        if !(100..=699).contains(&code) {
            return Err(refuse("status code out of range"));
        }
        let reason = line.slice_ref(parts.next().unwrap_or("").trim_end());
        return Ok((StartLine::Response { code, reason }, true));
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refuse("request line is not METHOD SP URI SP VERSION"));
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(refuse("malformed method"));
    }
    if !version.starts_with("SIP/") {
        return Err(refuse("not a SIP request"));
    }
    validate_uri(uri).map_err(refuse)?;
    let request = StartLine::Request {
        method: Method::from_token(&line.slice_ref(method)),
        uri: line.slice_ref(uri),
    };
    Ok((request, version == "SIP/2.0"))
}

/// A Request-URI: an absolute URI with a scheme, no brackets, no space
/// (RFC 4475 `ltgtruri`, `lwsruri`). `sip:`/`sips:` URIs must also parse as
/// SIP URIs; other schemes (`tel:`) pass through as given.
fn validate_uri(uri: &str) -> Result<(), &'static str> {
    let Some(colon) = uri.find(':') else {
        return Err("Request-URI has no scheme");
    };
    let scheme = &uri[..colon];
    if scheme.is_empty()
        || !scheme.as_bytes()[0].is_ascii_alphabetic()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return Err("Request-URI has a malformed scheme");
    }
    if uri
        .bytes()
        .any(|b| b"<>\"".contains(&b) || b.is_ascii_control())
    {
        return Err("Request-URI contains characters a URI cannot hold");
    }
    if (scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips"))
        && SipUriView::parse(uri).is_none()
    {
        return Err("malformed SIP Request-URI");
    }
    Ok(())
}

/// Splits a header value on commas outside quotes and angle brackets.
fn split_commas(value: &str) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut angle, mut escaped) = (0, false, false, false);
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts.into_iter()
}

/// Header lines with folding undone: a line starting with SP/HT continues
/// the previous one (RFC 3261 §7.3.1). Folded lines are joined with one SP.
struct Lines {
    lines: std::vec::IntoIter<BytesStr>,
}

impl Lines {
    fn new(head: &BytesStr) -> Self {
        let mut out: Vec<BytesStr> = Vec::with_capacity(20);
        let mut folded: Option<String> = None;
        let raw: Vec<&str> = head
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        for line in raw {
            if line.is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) && !out.is_empty() {
                let joined = folded
                    .get_or_insert_with(|| out.last().map(|l| l.to_string()).unwrap_or_default());
                joined.push(' ');
                joined.push_str(line.trim_start());
                continue;
            }
            if let Some(joined) = folded.take()
                && let Some(last) = out.last_mut()
            {
                *last = BytesStr::from(joined);
            }
            out.push(head.slice_ref(line));
        }
        if let Some(joined) = folded.take()
            && let Some(last) = out.last_mut()
        {
            *last = BytesStr::from(joined);
        }
        Lines {
            lines: out.into_iter(),
        }
    }
}

impl Iterator for Lines {
    type Item = BytesStr;
    fn next(&mut self) -> Option<BytesStr> {
        self.lines.next()
    }
}

/// The parts of the top Via a proxy or UA acts on.
#[derive(Clone, Debug)]
pub struct ViaInfo {
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub ip: Option<IpAddr>,
    pub branch: Option<String>,
    pub rport: Option<Option<u16>>,
    pub received: Option<String>,
}

/// Whether a Via header value parses whole (the check [`Message::parse`]
/// makes of every Via, without building a [`ViaInfo`]).
fn via_is_valid(value: &BytesStr) -> bool {
    EzkVia::parse(value.as_ref(), value.as_str()).is_ok_and(|(rest, _)| rest.trim().is_empty())
}

fn parse_via(value: &BytesStr) -> Option<ViaInfo> {
    let (rest, via) = EzkVia::parse(value.as_ref(), value.as_str()).ok()?;
    if !rest.trim().is_empty() {
        return None;
    }
    let param = |name: &str| via.params.get(name);
    let rport = param("rport").map(|p| p.value.as_ref().and_then(|v| v.parse().ok()));
    let ip = via.sent_by.ip();
    let host = match &via.sent_by.host {
        Host::IP6(ip) => format!("[{ip}]"),
        Host::IP4(ip) => ip.to_string(),
        Host::Name(name) => name.to_string(),
    };
    Some(ViaInfo {
        transport: via.transport.to_string(),
        host,
        port: via.sent_by.port,
        ip,
        branch: param("branch").and_then(|p| p.value.as_ref().map(|v| v.to_string())),
        rport,
        received: param("received").and_then(|p| p.value.as_ref().map(|v| v.to_string())),
    })
}

/// A `name-addr` or `addr-spec` with header parameters (From, To, Contact,
/// Route), as slices of the header value: the URI is kept as written.
#[derive(Clone, Copy, Debug)]
pub struct NameAddr<'a> {
    pub display: Option<&'a str>,
    pub uri: &'a str,
    params: &'a str,
}

impl<'a> NameAddr<'a> {
    /// RFC 3261 §20.10 / §25.1: `[display-name] <URI> *(;param)` or a bare
    /// URI whose `;params` belong to the header. Rejects what RFC 4475 calls
    /// invalid: unbalanced quotes (`quotbal`), non-token display names
    /// (`baddn`), whitespace inside the URI (`badaspec`), a bare URI with
    /// `,`, `?` or `;` ambiguity (`regbadct`).
    pub fn parse(value: &'a str) -> Result<Self, &'static str> {
        let value = value.trim();
        if value.is_empty() {
            return Err("empty address");
        }
        let (display, rest) = if let Some(after) = value.strip_prefix('"') {
            let end = closing_quote(after).ok_or("unterminated quoted display name")?;
            let rest = after[end + 1..].trim_start();
            if !rest.starts_with('<') {
                return Err("quoted display name without <URI>");
            }
            (Some(&value[..end + 2]), rest)
        } else if let Some(lt) = value.find('<') {
            let display = value[..lt].trim();
            if !display
                .split_ascii_whitespace()
                .all(|w| w.bytes().all(is_token_byte))
            {
                return Err("display name has characters that need quoting");
            }
            ((!display.is_empty()).then_some(display), &value[lt..])
        } else {
            // addr-spec: the URI ends at the first ';' (header params).
            let end = value.find(';').unwrap_or(value.len());
            let uri = value[..end].trim();
            if uri.contains([' ', '\t', ',', '?', '>', '"']) || !uri.contains(':') {
                return Err("malformed address");
            }
            check_params(&value[end..])?;
            return Ok(NameAddr {
                display: None,
                uri,
                params: &value[end..],
            });
        };
        let inner = rest.strip_prefix('<').ok_or("missing <URI>")?;
        let gt = inner.find('>').ok_or("missing > after URI")?;
        let uri = &inner[..gt];
        if uri.is_empty() || uri.contains([' ', '\t', '<']) || !uri.contains(':') {
            return Err("malformed URI in <>");
        }
        let params = &inner[gt + 1..];
        check_params(params)?;
        Ok(NameAddr {
            display,
            uri,
            params,
        })
    }

    /// A header parameter's value (`tag`, `expires`, `q`); `Some("")` for a
    /// flag parameter.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().trim_matches('"'))
        })
    }

    pub fn tag(&self) -> Option<&'a str> {
        self.param("tag").filter(|t| !t.is_empty())
    }
}

fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            return Some(i);
        }
    }
    None
}

fn check_params(params: &str) -> Result<(), &'static str> {
    let params = params.trim();
    if params.is_empty() {
        return Ok(());
    }
    let Some(list) = params.strip_prefix(';') else {
        return Err("unexpected text after address");
    };
    for p in list.split(';') {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || !k.bytes().all(is_token_byte) {
            return Err("malformed header parameter");
        }
        let quoted = v.len() >= 2 && v.starts_with('"') && v.ends_with('"');
        if !quoted && !v.bytes().all(|b| is_token_byte(b) || b"[]:".contains(&b)) {
            return Err("malformed header parameter value");
        }
    }
    Ok(())
}

/// The parts of a `sip:`/`sips:` URI we route on, as slices of the text.
#[derive(Clone, Copy, Debug)]
pub struct SipUriView<'a> {
    pub user: Option<&'a str>,
    pub host: &'a str,
    pub port: Option<u16>,
    pub params: &'a str,
    /// `?headers`, still escaped.
    pub headers: Option<&'a str>,
}

impl<'a> SipUriView<'a> {
    pub fn parse(uri: &'a str) -> Option<Self> {
        let rest = strip_prefix_ci(uri, "sip:").or_else(|| strip_prefix_ci(uri, "sips:"))?;
        // The user part may itself contain ';' and '?' (RFC 4475 `semiuri`,
        // `intmeth`); '@' cannot appear unescaped after it, so the last '@'
        // ends it. Headers ('?') follow the host and its parameters.
        let (user, hostpart) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (hostpart, headers) = match hostpart.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (hostpart, None),
        };
        let host_end = hostpart.find(';').unwrap_or(hostpart.len());
        let (hostport, params) = hostpart.split_at(host_end);
        let (host, port) = if hostport.starts_with('[') {
            let close = hostport.find(']')?;
            let port = hostport[close + 1..].strip_prefix(':');
            (&hostport[..=close], port)
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        let port = match port {
            Some(p) => Some(p.parse().ok()?),
            None => None,
        };
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b))
        {
            return None;
        }
        Some(SipUriView {
            user,
            host,
            port,
            params,
            headers,
        })
    }

    /// The host as an address, for IPv4 and bracketed IPv6 hosts.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()
    }

    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            k.eq_ignore_ascii_case(name).then_some(v)
        })
    }
}

/// Compared on bytes: a prefix length may fall inside a multi-byte
/// character of hostile input, where slicing the `str` would panic.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.as_bytes().get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix.as_bytes()) {
        // The prefix is ASCII and matched, so its end is a char boundary.
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// The telephone number a URI names: the user part of a `sip:`/`sips:` URI
/// (percent-decoded, visual separators kept for the numbering plan to
/// strip) or the number of a `tel:` URI (RFC 3966).
pub fn uri_number(uri: &str) -> Option<String> {
    if let Some(tel) = strip_prefix_ci(uri, "tel:") {
        let number = tel.split(';').next()?;
        return Some(percent_decode(number));
    }
    let view = SipUriView::parse(uri)?;
    let user = view.user?;
    // `user;params` (RFC 3261 §19.1.1 telephone-subscriber) keep the number.
    let user = user.split(';').next()?;
    Some(percent_decode(user))
}

pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quick_branch_is_the_full_parses_branch() {
        let vias = [
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1",
            "SIP/2.0/UDP 127.0.0.1:5070;rport;branch=z9hG4bKab;received=10.0.0.1",
            "SIP/2.0/UDP [::1]:5070 ; branch = z9hG4bK-sp ; rport",
            "SIP/2.0/TCP h.example;BRANCH=z9hG4bKUp",
            "SIP/2.0/UDP a:1;branch=z9hG4bKfirst, SIP/2.0/UDP b:2;branch=z9hG4bKsecond",
            "SIP/2.0/UDP a:1, SIP/2.0/UDP b:2;branch=z9hG4bKsecond",
            "SIP/2.0/UDP a:1;x=\"q;branch=no\";branch=z9hG4bKafter",
            "SIP/2.0/UDP a:1;x=\"q, b\";branch=z9hG4bKcomma",
            "SIP/2.0/UDP a:1;rport",
            "SIP/2.0/UDP a:1;branch",
            "SIP/2.0/UDP a:1;maddr=239.1.1.1;ttl=1;branch=z9hG4bKm",
        ];
        for via in vias {
            let raw = format!(
                "OPTIONS sip:b@h SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            );
            let m = Message::parse(Bytes::from(raw)).expect(via);
            let full = m.top_via().and_then(|v| v.branch);
            assert_eq!(m.branch(), full.as_deref(), "{via}");
        }
        let m = Message::parse(Bytes::from(request("OPTIONS sip:b@h SIP/2.0", ""))).unwrap();
        assert_eq!(m.branch(), Some("z9hG4bK1"));
    }

    fn request(start: &str, extra: &str) -> Vec<u8> {
        format!(
            "{start}\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c1\r\nCSeq: 1 {}\r\n{extra}Content-Length: 0\r\n\r\n",
            start.split(' ').next().unwrap()
        )
        .into_bytes()
    }

    #[test]
    fn non_ascii_in_a_uri_is_refused_without_a_panic() {
        for bytes in [
            request("OPTIONS ab:é SIP/2.0", ""),
            request("OPTIONS sip:é SIP/2.0", ""),
            request("REGISTER sip:h SIP/2.0", "").replace_to("To: <ab:é>"),
        ] {
            let _ = Message::parse(Bytes::from(bytes));
        }
        assert_eq!(uri_number("ab:é"), None);
        assert_eq!(uri_number("té"), None);
        assert_eq!(uri_number("tel:é"), Some("é".to_string()));
    }

    trait ReplaceTo {
        fn replace_to(self, to: &str) -> Vec<u8>;
    }
    impl ReplaceTo for Vec<u8> {
        fn replace_to(self, to: &str) -> Vec<u8> {
            String::from_utf8(self)
                .unwrap()
                .replace("To: <sip:b@h>", to)
                .into_bytes()
        }
    }

    #[test]
    fn a_huge_stream_content_length_is_an_error_not_a_wrap() {
        let huge = format!(
            "OPTIONS sip:a SIP/2.0\r\nContent-Length: {}\r\n\r\n",
            usize::MAX - 20
        );
        assert!(frame_length(huge.as_bytes()).is_err());
        let twice = "OPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\nl: 5\r\n\r\n";
        assert!(frame_length(twice.as_bytes()).is_err());
        let ok = "OPTIONS sip:a SIP/2.0\r\nContent-Length: 2\r\n\r\nab";
        assert_eq!(frame_length(ok.as_bytes()), Ok(Some(ok.len())));
        assert_eq!(frame_length(&ok.as_bytes()[..ok.len() - 1]), Ok(None));
    }

    /// `frame_length` as it was before [`Framer`]: the whole buffer read
    /// on every call. The oracle the framer must agree with.
    fn frame_length_before(buf: &[u8]) -> Result<Option<usize>, &'static str> {
        let keepalive = buf
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        if keepalive > 0 {
            return Ok(Some(keepalive));
        }
        let Some(head_end) = find_head_end(buf) else {
            return if buf.len() > MAX_MESSAGE_SIZE {
                Err("message head exceeds the size limit")
            } else {
                Ok(None)
            };
        };
        let mut length = None;
        for line in buf[..head_end].split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let name = trim_bytes(&line[..colon]);
            if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
                let value = std::str::from_utf8(trim_bytes(&line[colon + 1..]))
                    .map_err(|_| "Content-Length is not a number")?;
                let n = value
                    .parse::<usize>()
                    .map_err(|_| "Content-Length is not a number")?;
                if length.is_some_and(|l| l != n) {
                    return Err("Content-Length given twice with different values");
                }
                length = Some(n);
            }
        }
        let length = length.ok_or("Content-Length is missing on a stream")?;
        if length > MAX_MESSAGE_SIZE || head_end + length > MAX_MESSAGE_SIZE {
            return Err("message exceeds the size limit");
        }
        let total = head_end + length;
        Ok((buf.len() >= total).then_some(total))
    }

    /// Streams to frame: every input of the framing tests, pipelined
    /// messages with bodies and keepalives between, bare-LF heads, `\n\r`
    /// that is not a blank line, and each way framing breaks.
    fn framing_streams() -> Vec<Vec<u8>> {
        let huge = format!(
            "OPTIONS sip:a SIP/2.0\r\nContent-Length: {}\r\n\r\n",
            usize::MAX - 20
        );
        let options = String::from_utf8(request("OPTIONS sip:h SIP/2.0", "")).unwrap();
        let invite = "INVITE sip:1@h SIP/2.0\r\nl: 5\r\nContent-Length :  5 \r\n\r\nv=0\r\n";
        let mut streams: Vec<Vec<u8>> = [
            huge.as_str(),
            "OPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\nl: 5\r\n\r\n",
            "OPTIONS sip:a SIP/2.0\r\nContent-Length: 2\r\n\r\nab",
            "OPTIONS sip:a SIP/2.0\r\nContent-Length: 2\r\n\r\na",
            "OPTIONS sip:a SIP/2.0\nl: 3\n\nabcOPTIONS sip:b SIP/2.0\nl: 0\n\n",
            "OPTIONS sip:a SIP/2.0\r\nX: a\n\rb\r\nl: 1\r\n\r\nz\r\n\r\n",
            "OPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\n\r\n",
            "OPTIONS sip:a SIP/2.0\r\nContent-Length: x\r\n\r\n",
            "OPTIONS sip:a SIP/2.0\r\nContent-Length: \u{e9}\r\n\r\n",
            "OPTIONS sip:a SIP/2.0\r\nContent-Length: 70000\r\n\r\n",
            "\r\n\r\n\n\r",
            "",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        streams.push(format!("\r\n{options}\r\n\r\n{invite}{options}\n").into_bytes());
        streams.push(format!("{invite}{invite}\r\n{options}{options}").into_bytes());
        streams
    }

    /// Frames `stream` arriving in `chunks`, as the TCP reader does: after
    /// each chunk, every whole frame is cut off. Each answer is checked
    /// against the oracle on the same buffer. Returns the messages (the
    /// frames but keepalives, which come in as many pieces as the CRLFs
    /// arrived in), and the error that ended framing if one did.
    fn frame_in_chunks<'a>(
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> (Vec<Vec<u8>>, Option<&'static str>, Framer) {
        let mut framer = Framer::default();
        let mut buf = Vec::new();
        let mut frames = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                let got = framer.frame_length(&buf);
                assert_eq!(
                    got,
                    frame_length_before(&buf),
                    "on {:?}",
                    String::from_utf8_lossy(&buf)
                );
                match got {
                    Ok(Some(n)) => {
                        let frame: Vec<u8> = buf.drain(..n).collect();
                        if !frame.iter().all(|b| matches!(b, b'\r' | b'\n')) {
                            frames.push(frame);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return (frames, Some(e), framer),
                }
            }
        }
        (frames, None, framer)
    }

    #[test]
    fn the_framer_cuts_streams_as_before_however_they_are_split() {
        let (mut messages, mut errors) = (0, 0);
        for stream in framing_streams() {
            let whole = frame_in_chunks([stream.as_slice()]);
            let (frames, error) = (whole.0, whole.1);
            for cut in 0..=stream.len() {
                let (a, b) = stream.split_at(cut);
                let split = frame_in_chunks([a, b]);
                assert_eq!((&split.0, split.1), (&frames, error), "cut at {cut}");
            }
            let trickled = frame_in_chunks(stream.chunks(1));
            assert_eq!((&trickled.0, trickled.1), (&frames, error));
            messages += frames.len();
            errors += usize::from(error.is_some());
        }
        assert_eq!((messages, errors), (12, 5));
    }

    #[test]
    fn trickled_bytes_are_each_looked_at_a_bounded_number_of_times() {
        // A head with many short lines (many `\n` to look past), trickled a
        // byte at a time, sizes doubling: the work doubles with them.
        let head = |lines: usize| {
            let mut h = b"OPTIONS sip:a SIP/2.0\r\n".to_vec();
            h.extend(b"X: y\r\n".repeat(lines));
            h.extend(b"Content-Length: 0\r\n\r\n");
            h
        };
        let mut work = Vec::new();
        for lines in [500, 1000, 2000, 4000] {
            let h = head(lines);
            let mut framer = Framer::default();
            for end in 1..=h.len() {
                let got = framer.frame_length(&h[..end]).unwrap();
                assert_eq!(got, (end == h.len()).then_some(h.len()));
            }
            let examined = framer.bytes_examined();
            assert!(examined <= 4 * h.len() as u64, "{examined} for {}", h.len());
            work.push(examined);
        }
        for pair in work.windows(2) {
            assert!(pair[1] <= 2 * pair[0] + 64, "{work:?}");
        }
        // A head that never ends is refused at the size limit, having had
        // each of its bytes looked at about once.
        let mut framer = Framer::default();
        let endless = b"OPTIONS sip:a SIP/2.0\r\n".repeat(MAX_MESSAGE_SIZE / 20);
        let mut refused = None;
        for end in 1..=endless.len() {
            if let Err(e) = framer.frame_length(&endless[..end]) {
                refused = Some((end, e));
                break;
            }
        }
        assert_eq!(
            refused,
            Some((MAX_MESSAGE_SIZE + 1, "message head exceeds the size limit"))
        );
        assert!(framer.bytes_examined() <= 3 * MAX_MESSAGE_SIZE as u64);
    }

    #[test]
    fn empty_via_elements_and_via_floods_get_400() {
        let empty = request("OPTIONS sip:h SIP/2.0", "Via: SIP/2.0/UDP 10.0.0.1,,,\r\n");
        let e = Message::parse(Bytes::from(empty)).unwrap_err();
        assert_eq!(e.response.unwrap().code(), Some(400));
        let flood = "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n".repeat(80);
        let e = Message::parse(Bytes::from(request("OPTIONS sip:h SIP/2.0", &flood))).unwrap_err();
        assert_eq!(e.reason, "too many Via headers");
        let garbage = request("OPTIONS sip:h SIP/2.0", "").replace_via("Via: garbage");
        assert!(Message::parse(Bytes::from(garbage)).is_err());
    }

    trait ReplaceVia {
        fn replace_via(self, via: &str) -> Vec<u8>;
    }
    impl ReplaceVia for Vec<u8> {
        fn replace_via(self, via: &str) -> Vec<u8> {
            String::from_utf8(self)
                .unwrap()
                .replace("Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1", via)
                .into_bytes()
        }
    }

    #[test]
    fn an_ack_is_never_answered_even_when_broken() {
        let ack = request("ACK sip:h SIP/3.0", "");
        assert!(
            Message::parse(Bytes::from(ack))
                .unwrap_err()
                .response
                .is_none()
        );
        let ack = request("ACK sip:h SIP/2.0", "Max-Forwards: lots\r\n");
        assert!(
            Message::parse(Bytes::from(ack))
                .unwrap_err()
                .response
                .is_none()
        );
    }

    #[test]
    fn compact_and_folded_headers_and_tel_uris_are_read() {
        let text = "INVITE tel:+86-735-12345 SIP/2.0\r\nv: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKa, SIP/2.0/TCP h2;branch=z9hG4bKb\r\nf: <tel:13907350000>;tag=x\r\nt: <sip:12345@h>\r\ni: abc\r\nCSeq: 7\r\n  INVITE\r\nm: <sip:c@h>\r\nl: 0\r\n\r\n";
        let m = Message::parse(Bytes::from(text)).unwrap();
        assert_eq!(m.headers_named(&Name::Via).count(), 2);
        let via = m.top_via().unwrap();
        assert_eq!(via.ip, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(m.cseq().unwrap().0, 7);
        assert_eq!(
            uri_number(m.request_uri().unwrap()).as_deref(),
            Some("+86-735-12345")
        );
        assert_eq!(m.from().unwrap().tag(), Some("x"));
        // The foreign URI is relayed as written.
        assert!(
            m.encode()
                .starts_with(b"INVITE tel:+86-735-12345 SIP/2.0\r\n")
        );
    }
}
