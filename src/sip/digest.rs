//! Digest authentication for SIP, sans-I/O.
//!
//! The registrar challenges seats (agent phones) with `401` + `WWW-Authenticate`
//! and checks their `Authorization` header, as RFC 3261 §22 prescribes: HTTP
//! digest of RFC 2617, with the SHA-256 algorithm and the challenge ordering of
//! RFC 7616 / RFC 8760 §2.4. Old phones that answer in the RFC 2069 form
//! (no `qop`) are still accepted, once per nonce; `qop=auth-int` and the
//! `-sess` algorithms are refused with [`AuthError::UnsupportedQop`] /
//! [`AuthError::UnsupportedAlgorithm`] since we never offer them.
//!
//! Three parts:
//!
//! * [`Authenticator`] issues challenges and verifies responses. Nonces are
//!   stateless: each carries its issue time, a serial number that makes it
//!   unique, and an HMAC-SHA-256 tag over both and the realm, keyed with a
//!   secret that never leaves the process, so they can be checked without a
//!   table and cannot be forged. Replays are refused with a small table of
//!   nonce counts (RFC 7616 §3.4, the `nc` of RFC 2617 §3.2.2): see
//!   [`AuthError::Replay`].
//! * [`FailureThrottle`] blocks a user at a source address that keeps failing,
//!   and a whole address that floods, bounded in memory so an address scan
//!   cannot grow it.
//! * [`authorization_header`] builds the client side, for tests and for the
//!   gateway authenticating to a peer.
//!
//! Everything is sans-I/O: the current time is an argument, credentials come
//! from the caller (configuration), never from the request.
//!
//! The `Authorization` value is parsed here rather than with
//! `ezk_sip_types::header::typed::DigestResponse`, because that parser keeps
//! backslash escapes in quoted strings and fails on an escaped quote, matches
//! the scheme and parameter names case-sensitively (`digest` or `Username=`
//! are not recognised), and turns `nc` into a number — but the response hash
//! needs `nc` exactly as the client sent it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use rustc_hash::FxHashMap;
use sha2::Sha256;

/// Digest hash algorithm (RFC 7616 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5`: the RFC 2617 default; what most desk phones still speak.
    Md5,
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
}

impl Algorithm {
    /// The token as written in the `algorithm` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Parses the `algorithm` parameter. Tokens are case-insensitive
    /// (RFC 7616 §3.3 registers them, RFC 7235 compares them so).
    fn from_token(token: &str) -> Option<Self> {
        if token.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if token.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// Length of a hex digest: the `response` must have exactly this many digits.
    fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha256 => 64,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an `Authorization` header was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not parseable, or a required parameter is missing or ill-formed.
    #[error("malformed Authorization header: {0}")]
    Malformed(String),
    /// Another scheme (e.g. `Basic`); the caller should challenge.
    #[error("authorization scheme is not Digest")]
    NotDigest,
    /// The credentials are for a realm other than ours.
    #[error("credentials are for another realm")]
    WrongRealm,
    /// The configuration has no password for this username.
    #[error("unknown user")]
    UnknownUser,
    /// The nonce was not issued by this authenticator: forged, garbled, or
    /// from before a restart with a fresh random secret. Answer with a new
    /// challenge.
    #[error("nonce was not issued by this registrar")]
    BadNonce,
    /// The response is correct but the nonce has expired: re-challenge with
    /// `stale=true` so the phone retries without asking its user.
    #[error("nonce has expired")]
    StaleNonce,
    /// The response does not match the configured password.
    #[error("digest response does not match")]
    WrongPassword,
    /// An algorithm other than MD5 or SHA-256 (including the `-sess` variants).
    #[error("unsupported digest algorithm (only MD5 and SHA-256 are accepted)")]
    UnsupportedAlgorithm,
    /// A qop other than `auth`; in particular `auth-int`, whose body hash
    /// we do not implement and never offer.
    #[error("unsupported qop (only qop=auth or no qop is accepted; auth-int is not supported)")]
    UnsupportedQop,
    /// The response is correct, but this nonce was already used with this
    /// nonce count (or a higher one) by this user and client nonce: a
    /// captured request sent again, or a UDP retransmission of one already
    /// accepted. Without `qop` there is no count, so a nonce answers once.
    /// Answer with a plain new challenge (not `stale=true`: the nonce is not
    /// old, it is used up), as RFC 7616 §3.4 leaves the server to do.
    #[error("nonce count already used (replayed request)")]
    Replay,
}

impl AuthError {
    /// Whether this outcome should count towards [`FailureThrottle`].
    ///
    /// A stale nonce and a replay came with the right password, and a
    /// non-digest header is no guess at a password, so none is held against
    /// the source. Counting replays would also let anyone who captured one
    /// REGISTER lock its seat out by sending it again.
    /// Only a wrong answer to a nonce we issued to that address counts:
    /// anything a sender could make without seeing our challenge (junk, a
    /// nonce of ours replayed from elsewhere, another realm) does not, so
    /// no one can lock a seat out with forged requests.
    pub fn counts_as_failure(&self) -> bool {
        matches!(self, AuthError::WrongPassword | AuthError::UnknownUser)
    }
}

fn malformed(reason: impl Into<String>) -> AuthError {
    AuthError::Malformed(reason.into())
}

/// A successfully verified `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The authenticated username (the configuration key the password came from).
    pub username: String,
    /// The algorithm the client used.
    pub algorithm: Algorithm,
    /// The `uri` parameter, as the client sent it and as it went into the
    /// hash; the caller may compare it with the Request-URI.
    pub uri: String,
}

/// Issues digest challenges and verifies the answers, for one realm.
///
/// Shared by reference across threads: `verify` takes `&self`, and the
/// replay table sits behind a mutex held only for a map lookup.
pub struct Authenticator {
    realm: String,
    secret: [u8; 32],
    nonce_lifetime: Duration,
    /// Numbers the challenges, so two issued in the same second still get
    /// different nonces (a "fresh challenge" after a replay must be fresh).
    next_serial: AtomicU32,
    nonce_counts: Mutex<NonceCounts>,
}

impl fmt::Debug for Authenticator {
    // Hand-written so the secret never ends up in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("realm", &self.realm)
            .field("secret", &"<redacted>")
            .field("nonce_lifetime", &self.nonce_lifetime)
            .finish_non_exhaustive()
    }
}

/// Nonce layout: 16 hex digits of issue time (Unix seconds), 8 of serial
/// number, then the first 16 bytes of the HMAC tag in hex. Hex only, so it
/// never needs escaping.
const NONCE_TIME_HEX: usize = 16;
const NONCE_SERIAL_HEX: usize = 8;
const NONCE_TAG_BYTES: usize = 16;
const NONCE_LEN: usize = NONCE_TIME_HEX + NONCE_SERIAL_HEX + 2 * NONCE_TAG_BYTES;

/// Most nonce uses remembered for replay protection. An entry is made only
/// by a correct response, so a registrar of a few hundred seats uses a tiny
/// fraction; 65,536 entries of ~40 bytes are ~3 MB at worst.
const MAX_TRACKED_NONCES: usize = 65_536;

/// Upper bound on the header value we are willing to parse; a real one is a
/// few hundred bytes, so anything longer is junk and is refused cheaply.
const MAX_HEADER_LEN: usize = 8 * 1024;

/// Upper bound on the number of parameters (duplicate detection is quadratic).
const MAX_PARAMS: usize = 32;

impl Authenticator {
    /// An authenticator for `realm`, whose nonces are keyed with `secret` and
    /// expire (become stale) after `nonce_lifetime`.
    ///
    /// Several processes sharing a secret accept each other's nonces, but
    /// each keeps its own replay table: a request captured at one can be
    /// replayed once at another within the nonce lifetime, and likewise
    /// across a restart. With [`Authenticator::with_random_secret`] neither
    /// can happen.
    pub fn new(realm: impl Into<String>, secret: [u8; 32], nonce_lifetime: Duration) -> Self {
        Self {
            realm: realm.into(),
            secret,
            nonce_lifetime,
            next_serial: AtomicU32::new(0),
            nonce_counts: Mutex::new(NonceCounts::new(MAX_TRACKED_NONCES)),
        }
    }

    /// Like [`Authenticator::new`] with a secret from the OS random source.
    /// Nonces issued before a restart then fail as [`AuthError::BadNonce`],
    /// which phones recover from by answering the fresh challenge.
    ///
    /// # Panics
    ///
    /// If the OS has no usable random source: a guessable secret would let
    /// anyone mint nonces, so there is no safe fallback.
    pub fn with_random_secret(realm: impl Into<String>, nonce_lifetime: Duration) -> Self {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("OS random source unavailable for the digest secret");
        Self::new(realm, secret, nonce_lifetime)
    }

    /// The realm this authenticator challenges for.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Two `WWW-Authenticate` values for a `401`: SHA-256 first, then MD5, so
    /// that clients which take the first one they support prefer SHA-256
    /// (RFC 8760 §2.4, RFC 7616 §3.7). `stale` adds `stale=true`
    /// (after [`AuthError::StaleNonce`]). Both carry the same nonce, which no
    /// other call returns.
    pub fn challenge(&self, now_unix_secs: u64, stale: bool, source: IpAddr) -> [String; 2] {
        let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
        let nonce = self.nonce(now_unix_secs, serial, source);
        let realm = quote(&self.realm);
        let stale = if stale { ", stale=true" } else { "" };
        [Algorithm::Sha256, Algorithm::Md5].map(|algorithm| {
            format!(
                "Digest realm={realm}, nonce=\"{nonce}\", algorithm={algorithm}, qop=\"auth\"{stale}"
            )
        })
    }

    /// Verifies an `Authorization` (or `Proxy-Authorization`) header value
    /// against the request `method` and the password `password_for` returns
    /// for the username in the header.
    ///
    /// Checks in this order: syntax, realm, algorithm, qop, that the nonce is
    /// ours, the user, the response, the nonce's age — so
    /// [`AuthError::StaleNonce`] means "right password, old nonce", exactly
    /// what `stale=true` tells the client (RFC 7616 §3.3) — and last the
    /// nonce count, so only a correct response can touch the replay table.
    ///
    /// Replay protection (RFC 7616 §3.4): for each nonce, username and
    /// client nonce, the highest `nc` accepted is remembered until the nonce
    /// expires, and a request whose `nc` is not higher is
    /// [`AuthError::Replay`]. A response without `qop` (RFC 2069) has no
    /// count, so its nonce is accepted once per user; our challenges always
    /// offer `qop=auth`, which SIPp, baresip and desk phones answer with, so
    /// this costs old phones at most an extra challenge per registration.
    ///
    /// A nonce is bound to the address it was sent to (its MAC covers it):
    /// an answer from anywhere else is [`AuthError::BadNonce`], so a blind
    /// spoofer, who never sees the challenge sent to the address it forges,
    /// cannot produce a failure that counts against a seat.
    pub fn verify<P: AsRef<str>>(
        &self,
        authorization: &str,
        method: &str,
        now_unix_secs: u64,
        source: IpAddr,
        password_for: impl FnOnce(&str) -> Option<P>,
    ) -> Result<Verified, AuthError> {
        let creds = Credentials::parse(authorization)?;
        if creds.realm != self.realm {
            return Err(AuthError::WrongRealm);
        }
        let issued = self.check_nonce(&creds.nonce, source)?;

        let password = password_for(&creds.username);
        // Hash even for an unknown user so the reply time does not tell which
        // usernames exist.
        let matches = creds.response_matches(password.as_ref().map_or("", |p| p.as_ref()), method);
        if password.is_none() {
            return Err(AuthError::UnknownUser);
        }
        if !matches {
            return Err(AuthError::WrongPassword);
        }

        // Our own nonces are never from the future unless the clock stepped
        // back; treat a skew either way the same as age.
        let lifetime = self.nonce_lifetime.as_secs();
        if now_unix_secs.abs_diff(issued) > lifetime {
            return Err(AuthError::StaleNonce);
        }

        // A poisoned lock only means another thread panicked mid-call; the
        // table is consistent after every single map operation.
        self.nonce_counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(
                issued,
                creds.replay_key(),
                creds.nonce_count(),
                now_unix_secs,
                lifetime,
            )?;

        Ok(Verified {
            username: creds.username,
            algorithm: creds.algorithm,
            uri: creds.uri,
        })
    }

    fn nonce(&self, issued: u64, serial: u32, source: IpAddr) -> String {
        let tag = self.nonce_tag(issued, serial, source);
        format!("{issued:016x}{serial:08x}{}", hex(&tag[..NONCE_TAG_BYTES]))
    }

    /// HMAC (not a bare hash of secret ‖ data) so that nothing about the tag
    /// leaks the key or allows extension; the realm is included so a nonce
    /// from one realm is useless in another that happens to share the secret.
    fn nonce_tag(&self, issued: u64, serial: u32, source: IpAddr) -> [u8; 32] {
        let source = match source.to_canonical() {
            IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            IpAddr::V6(a) => a.octets(),
        };
        hmac_sha256(
            &self.secret,
            &[
                &issued.to_be_bytes(),
                &serial.to_be_bytes(),
                &source,
                self.realm.as_bytes(),
            ],
        )
    }

    /// Returns the issue time of a nonce we issued, or `BadNonce`.
    fn check_nonce(&self, nonce: &str, source: IpAddr) -> Result<u64, AuthError> {
        if nonce.len() != NONCE_LEN || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AuthError::BadNonce);
        }
        let (time, rest) = nonce.split_at(NONCE_TIME_HEX);
        let (serial, tag) = rest.split_at(NONCE_SERIAL_HEX);
        let issued = u64::from_str_radix(time, 16).map_err(|_| AuthError::BadNonce)?;
        let serial = u32::from_str_radix(serial, 16).map_err(|_| AuthError::BadNonce)?;
        let expected = hex(&self.nonce_tag(issued, serial, source)[..NONCE_TAG_BYTES]);
        if constant_time_eq(expected.as_bytes(), tag.as_bytes()) {
            Ok(issued)
        } else {
            Err(AuthError::BadNonce)
        }
    }
}

/// The nonce counts accepted so far, for replay protection.
///
/// Keyed by the nonce's issue time first, so the entries that expire (and,
/// when full, the ones evicted) are at the front of the map; the rest of the
/// key is a hash of nonce, username and client nonce, 16 bytes whatever the
/// client sent.
#[derive(Debug)]
struct NonceCounts {
    /// (issue time, key) → highest `nc` accepted (0 without qop).
    seen: BTreeMap<(u64, [u8; 16]), u32>,
    /// Nonces issued before this time may have lost their entry — expired,
    /// or evicted when the table was full — so a first use of one cannot be
    /// told from a replay and is answered as stale.
    forgotten_before: u64,
    cap: usize,
}

impl NonceCounts {
    fn new(cap: usize) -> Self {
        Self {
            seen: BTreeMap::new(),
            forgotten_before: 0,
            cap: cap.max(1),
        }
    }

    /// Accepts a use of a nonce issued at `issued` (already checked to be
    /// ours and fresh) with count `nc` (`None`: no qop), or refuses it.
    fn admit(
        &mut self,
        issued: u64,
        key: [u8; 16],
        nc: Option<u32>,
        now: u64,
        lifetime: u64,
    ) -> Result<(), AuthError> {
        self.expire(now, lifetime);
        if let Some(highest) = self.seen.get_mut(&(issued, key)) {
            return match nc {
                Some(nc) if nc > *highest => {
                    *highest = nc;
                    Ok(())
                }
                _ => Err(AuthError::Replay),
            };
        }
        if issued < self.forgotten_before {
            return Err(AuthError::StaleNonce);
        }
        if self.seen.len() >= self.cap {
            // Full. Refusing first uses would lock every phone out until
            // entries expire, and anyone with one valid password can fill the
            // table (a new cnonce per request). So evict the oldest instead,
            // and from then on answer every nonce at least as old as stale,
            // since its entry may be the one gone: the phone retries with a
            // fresh nonce at once, and a replay of it is never accepted.
            let oldest = self.seen.first_key_value().map_or(0, |(&(t, _), _)| t);
            if oldest >= issued {
                // This one would be among the forgotten: refuse it, keep the rest.
                return Err(AuthError::StaleNonce);
            }
            self.seen.pop_first();
            self.forgotten_before = self.forgotten_before.max(oldest.saturating_add(1));
        }
        self.seen.insert((issued, key), nc.unwrap_or(0));
        Ok(())
    }

    /// Drops the entries of nonces older than the lifetime: `verify` refuses
    /// those as stale before it gets here. Raising `forgotten_before` with
    /// them keeps a backward clock step from reviving such a nonce.
    fn expire(&mut self, now: u64, lifetime: u64) {
        let cutoff = now.saturating_sub(lifetime);
        while let Some(entry) = self.seen.first_entry() {
            if entry.key().0 >= cutoff {
                break;
            }
            entry.remove();
        }
        self.forgotten_before = self.forgotten_before.max(cutoff);
    }
}

/// Builds a client `Authorization` value (RFC 7616 §3.4).
///
/// With `cnonce` set, the answer uses `qop=auth` with that client nonce and
/// nonce count `nc`; with `None` it is the legacy RFC 2069 form (no qop, `nc`
/// ignored), for servers that did not offer a qop. A challenge's `opaque`
/// must be echoed by the caller: append `, opaque="…"`.
///
/// Control characters cannot appear in a header value; they are dropped from
/// the quoted parameters (the hash still covers the originals, so such
/// credentials fail instead of injecting header lines).
#[allow(clippy::too_many_arguments)] // mirrors the digest inputs one to one
pub fn authorization_header(
    username: &str,
    password: &str,
    realm: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    algorithm: Algorithm,
    cnonce: Option<&str>,
    nc: u32,
) -> String {
    let nc = format!("{nc:08x}");
    let qop = cnonce.map(|cnonce| QopAuth {
        qop: "auth",
        nc: &nc,
        cnonce,
    });
    let response = ResponseInput {
        algorithm,
        username,
        realm,
        password,
        method,
        uri,
        nonce,
        qop,
    }
    .response();
    let mut header = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm={algorithm}",
        quote(username),
        quote(realm),
        quote(nonce),
        quote(uri),
    );
    if let Some(cnonce) = cnonce {
        header.push_str(&format!(", qop=auth, nc={nc}, cnonce={}", quote(cnonce)));
    }
    header
}

// ---------------------------------------------------------------------------
// Response computation (RFC 7616 §3.4.1–3.4.3, RFC 2617 §3.2.2, RFC 2069 §2.1.2)

struct QopAuth<'a> {
    /// The qop value as sent (`auth`, in whatever case the client wrote it).
    qop: &'a str,
    /// Exactly as sent: the hash covers the text, not the number.
    nc: &'a str,
    cnonce: &'a str,
}

struct ResponseInput<'a> {
    algorithm: Algorithm,
    username: &'a str,
    realm: &'a str,
    password: &'a str,
    method: &'a str,
    uri: &'a str,
    nonce: &'a str,
    /// `None`: the RFC 2069 form without qop.
    qop: Option<QopAuth<'a>>,
}

impl ResponseInput<'_> {
    /// The lowercase hex `response` value.
    fn response(&self) -> String {
        let alg = self.algorithm;
        let ha1 = h(alg, &[self.username, self.realm, self.password]);
        let ha2 = h(alg, &[self.method, self.uri]);
        match &self.qop {
            Some(q) => h(alg, &[&ha1, self.nonce, q.nc, q.cnonce, q.qop, &ha2]),
            None => h(alg, &[&ha1, self.nonce, &ha2]),
        }
    }
}

/// `H(part0 ":" part1 ":" …)` as lowercase hex.
fn h(algorithm: Algorithm, parts: &[&str]) -> String {
    fn joined<D: Digest>(parts: &[&str]) -> String {
        let mut d = D::new();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                d.update(b":");
            }
            d.update(part.as_bytes());
        }
        hex(&d.finalize())
    }
    match algorithm {
        Algorithm::Md5 => joined::<Md5>(parts),
        Algorithm::Sha256 => joined::<Sha256>(parts),
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// HMAC-SHA-256 (RFC 2104) over the concatenation of `parts`. The key is
/// shorter than the 64-byte block, so it is only zero-padded.
fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let mut inner = Sha256::new();
    inner.update(ipad);
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(opad);
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Compares without an early exit, so timing does not reveal how many leading
/// characters of a guess were right. Lengths are public (fixed per algorithm).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// `"…"` with `\` and `"` escaped (RFC 7230 §3.2.6) and control characters
/// other than HTAB dropped, since they cannot be carried in a header.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if is_ctl(c) && c != '\t' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------
// Parsing the Authorization value (RFC 7235 §2.1, RFC 7230 §3.2.6, RFC 7616 §3.4)

/// The digest parameters we use, validated.
#[derive(Debug, PartialEq, Eq)]
struct QopParams {
    qop: String,
    nc: String,
    cnonce: String,
}

#[derive(Debug)]
struct Credentials {
    username: String,
    realm: String,
    nonce: String,
    uri: String,
    /// Lowercased, length checked against the algorithm.
    response: String,
    algorithm: Algorithm,
    /// For qop=auth; `None` for the RFC 2069 form.
    qop: Option<QopParams>,
}

impl Credentials {
    fn parse(value: &str) -> Result<Self, AuthError> {
        if value.len() > MAX_HEADER_LEN {
            return Err(malformed("header value too long"));
        }
        let value = value.trim_matches(is_ws);
        let scheme_end = value.find(is_ws).unwrap_or(value.len());
        let (scheme, rest) = value.split_at(scheme_end);
        if scheme.is_empty() {
            return Err(malformed("empty header"));
        }
        if !scheme.bytes().all(is_tchar) {
            return Err(malformed("invalid authentication scheme"));
        }
        // Scheme names are case-insensitive (RFC 7235 §2.1).
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(AuthError::NotDigest);
        }
        let params = parse_params(rest)?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let required = |name: &str| get(name).ok_or_else(|| malformed(format!("missing {name}")));

        if get("username").is_none() && get("username*").is_some() {
            // RFC 7616 §3.4.4 extended usernames: SIP seats have ASCII names.
            return Err(malformed("username* is not supported"));
        }
        if get("userhash").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            // We never offer userhash (RFC 7616 §3.4.4).
            return Err(malformed("userhash is not supported"));
        }
        let username = required("username")?;
        let realm = required("realm")?;
        let nonce = required("nonce")?;
        let uri = required("uri")?;
        let response = required("response")?;

        // Absent means MD5 (RFC 2617 §3.2.1).
        let algorithm = match get("algorithm") {
            None => Algorithm::Md5,
            Some(token) => Algorithm::from_token(token).ok_or(AuthError::UnsupportedAlgorithm)?,
        };

        let qop = match get("qop") {
            None => None,
            Some(qop) if qop.eq_ignore_ascii_case("auth") => {
                let nc = required("nc")?;
                if nc.len() != 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(malformed("nc must be 8 hex digits"));
                }
                let cnonce = required("cnonce")?;
                if cnonce.is_empty() {
                    return Err(malformed("empty cnonce"));
                }
                Some(QopParams {
                    qop: qop.to_owned(),
                    nc: nc.to_owned(),
                    cnonce: cnonce.to_owned(),
                })
            }
            Some(_) => return Err(AuthError::UnsupportedQop),
        };

        if response.len() != algorithm.hex_len() || !response.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(malformed(format!(
                "response must be {} hex digits for {algorithm}",
                algorithm.hex_len()
            )));
        }

        Ok(Self {
            username: username.to_owned(),
            realm: realm.to_owned(),
            nonce: nonce.to_owned(),
            uri: uri.to_owned(),
            // RFC 7616 says lowercase hex; tolerate phones that shout.
            response: response.to_ascii_lowercase(),
            algorithm,
            qop,
        })
    }

    fn response_matches(&self, password: &str, method: &str) -> bool {
        let expected = ResponseInput {
            algorithm: self.algorithm,
            username: &self.username,
            realm: &self.realm,
            password,
            method,
            uri: &self.uri,
            nonce: &self.nonce,
            qop: self.qop.as_ref().map(|q| QopAuth {
                qop: &q.qop,
                nc: &q.nc,
                cnonce: &q.cnonce,
            }),
        }
        .response();
        constant_time_eq(expected.as_bytes(), self.response.as_bytes())
    }

    /// What a replay must repeat, hashed to a fixed size: the nonce, the
    /// user and the client nonce (all covered by the response, so a replayer
    /// cannot vary them). Two phones of one seat answering one challenge
    /// have different client nonces, so they do not collide.
    fn replay_key(&self) -> [u8; 16] {
        let cnonce = self.qop.as_ref().map(|q| q.cnonce.as_str());
        let mut d = Sha256::new();
        for part in [
            Some(self.nonce.as_str()),
            Some(self.username.as_str()),
            cnonce,
        ] {
            // Length-prefixed, so no two different triples hash the same input.
            match part {
                Some(p) => {
                    d.update([1]);
                    d.update((p.len() as u64).to_be_bytes());
                    d.update(p.as_bytes());
                }
                None => d.update([0]),
            }
        }
        let mut key = [0u8; 16];
        key.copy_from_slice(&d.finalize()[..16]);
        key
    }

    /// The nonce count as a number; `None` without qop.
    fn nonce_count(&self) -> Option<u32> {
        // Parsing checked that `nc` is exactly 8 hex digits, so it fits.
        self.qop
            .as_ref()
            .map(|q| u32::from_str_radix(&q.nc, 16).unwrap_or(u32::MAX))
    }
}

/// Parses `#auth-param`: `name = token / quoted-string`, comma separated,
/// empty list elements ignored (RFC 7230 §7). Names are returned as written;
/// quoted values are unescaped. Duplicates are refused, since which one a
/// client meant is ambiguous.
fn parse_params(s: &str) -> Result<Vec<(&str, String)>, AuthError> {
    let b = s.as_bytes();
    let skip_ws = |mut i: usize| {
        while i < b.len() && is_ws_byte(b[i]) {
            i += 1;
        }
        i
    };
    let mut params: Vec<(&str, String)> = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && (is_ws_byte(b[i]) || b[i] == b',') {
            i += 1;
        }
        if i == b.len() {
            break;
        }

        let start = i;
        while i < b.len() && is_tchar(b[i]) {
            i += 1;
        }
        if i == start {
            return Err(malformed("expected a parameter name"));
        }
        let name = &s[start..i];
        i = skip_ws(i);
        if b.get(i) != Some(&b'=') {
            return Err(malformed(format!("expected '=' after {name}")));
        }
        i = skip_ws(i + 1);

        let value = if b.get(i) == Some(&b'"') {
            let (value, len) = parse_quoted(&s[i + 1..])?;
            i += 1 + len;
            value
        } else {
            let start = i;
            while i < b.len() && is_tchar(b[i]) {
                i += 1;
            }
            if i == start {
                return Err(malformed(format!("missing value for {name}")));
            }
            s[start..i].to_owned()
        };

        if params.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Err(malformed(format!("duplicate {name}")));
        }
        if params.len() == MAX_PARAMS {
            return Err(malformed("too many parameters"));
        }
        params.push((name, value));

        i = skip_ws(i);
        match b.get(i) {
            None => break,
            Some(b',') => {}
            Some(_) => return Err(malformed(format!("expected ',' after {name}"))),
        }
    }
    if params.is_empty() {
        return Err(malformed("no parameters"));
    }
    Ok(params)
}

/// Parses the body of a quoted-string (after the opening quote). Returns the
/// unescaped value and the number of bytes consumed including the closing quote.
fn parse_quoted(s: &str) -> Result<(String, usize), AuthError> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, i + 1)),
            '\\' => match chars.next() {
                Some((_, e)) if !is_ctl(e) || e == '\t' => value.push(e),
                Some(_) => return Err(malformed("control character in quoted string")),
                None => break,
            },
            c if is_ctl(c) && c != '\t' => {
                return Err(malformed("control character in quoted string"));
            }
            c => value.push(c),
        }
    }
    Err(malformed("unterminated quoted string"))
}

/// RFC 7230 tchar.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_ctl(c: char) -> bool {
    c.is_ascii_control()
}

/// Whitespace between parameters. CR and LF are included because a header
/// that reaches us still folded (RFC 3261 §7.3.1 LWS) means the same as SP.
fn is_ws_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_ws(c: char) -> bool {
    c.is_ascii() && is_ws_byte(c as u8)
}

// ---------------------------------------------------------------------------
// Failure throttle

/// When [`FailureThrottle`] blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// One user at one source address is blocked when it fails more than
    /// this many times ...
    pub max_failures: u32,
    /// ... and the whole address, for every user, when its users together
    /// fail more than this many times (a flood, or a scan of usernames) ...
    pub max_failures_per_source: u32,
    /// ... and the user from every address it has not logged in from within
    /// `known_for`, when it fails more than this many times from anywhere
    /// (guessing from many addresses) ...
    pub max_failures_per_user: u32,
    /// ... within this window, counted from the first failure in the window.
    pub window: Duration,
    /// How long an address a user logged in from stays exempt from that
    /// user's account-wide block.
    pub known_for: Duration,
    /// How long a block lasts.
    pub block_for: Duration,
    /// Most counters kept at once (one per failing address and one per
    /// failing user at an address); beyond it the least recently failing
    /// unblocked ones are forgotten first.
    pub max_entries: usize,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            max_failures: 10,
            // Hundreds of seats can sit behind one NAT or SBC address; a
            // shift change with stale passwords stays well under this.
            max_failures_per_source: 200,
            max_failures_per_user: 30,
            window: Duration::from_secs(60),
            known_for: Duration::from_secs(3600),
            block_for: Duration::from_secs(60),
            max_entries: 20_000,
        }
    }
}

/// What a block shuts out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BlockScope {
    /// One user (a seat's account) from one address, after its own failures.
    /// The name is cut to [`MAX_THROTTLED_USER_LEN`] bytes.
    User { ip: IpAddr, user: String },
    /// Every user from one address: the flood ceiling.
    Source { ip: IpAddr },
    /// One user from every address it has not lately logged in from: the
    /// ceiling for guessing one seat's password from many addresses.
    Account { user: String },
}

/// As the log says it: `seat 8001 from 192.0.2.7`, `every seat from 192.0.2.7`.
impl fmt::Display for BlockScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockScope::User { ip, user } => write!(f, "seat {user} from {ip}"),
            BlockScope::Source { ip } => write!(f, "every seat from {ip}"),
            BlockScope::Account { user } => {
                write!(f, "seat {user} from addresses it has not logged in from")
            }
        }
    }
}

impl BlockScope {
    fn user(ip: IpAddr, user: &str) -> Self {
        BlockScope::User {
            ip,
            user: cut(user).to_owned(),
        }
    }

    fn account(user: &str) -> Self {
        BlockScope::Account {
            user: cut(user).to_owned(),
        }
    }
}

/// The source a failure counts against: an IPv4 address, or an IPv6 /64
/// (one host may use a whole /64, and must not get a fresh count per
/// address).
fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let o = v6.octets();
            let mut prefix = [0u8; 16];
            prefix[..8].copy_from_slice(&o[..8]);
            IpAddr::V6(std::net::Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// A user name cut to [`MAX_THROTTLED_USER_LEN`] bytes.
fn cut(user: &str) -> &str {
    let mut end = user.len().min(MAX_THROTTLED_USER_LEN);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    &user[..end]
}

/// Longest user name the throttle keeps, in bytes. Seat ids are short; the
/// name comes from the request, and must not make an entry large.
pub const MAX_THROTTLED_USER_LEN: usize = 64;

/// A block began: returned once, by the [`FailureThrottle::record_failure`]
/// call that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockStarted {
    pub scope: BlockScope,
    pub until: Instant,
}

/// A block was lifted: returned once, by the [`FailureThrottle::prune`] call
/// after it ran out (or after the entry was evicted to make room).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEnded {
    pub scope: BlockScope,
}

#[derive(Debug, Clone, Copy)]
struct Counter {
    window_start: Instant,
    failures: u32,
    last_failure: Instant,
    blocked_since: Option<Instant>,
}

impl Counter {
    fn new(now: Instant) -> Self {
        Self {
            window_start: now,
            failures: 0,
            last_failure: now,
            blocked_since: None,
        }
    }

    fn blocking(&self, now: Instant, policy: &ThrottlePolicy) -> bool {
        self.blocked_since
            .is_some_and(|since| now.saturating_duration_since(since) < policy.block_for)
    }

    /// Nothing left worth remembering: the block has run out, or the window
    /// has passed.
    fn expired(&self, now: Instant, policy: &ThrottlePolicy) -> bool {
        match self.blocked_since {
            Some(since) => now.saturating_duration_since(since) >= policy.block_for,
            None => now.saturating_duration_since(self.window_start) > policy.window,
        }
    }
}

/// How often [`FailureThrottle::prune`] looks through every entry; between
/// sweeps it only hands out ends already noticed, so it is cheap per request.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Counts authentication failures per (source address, user) and per source
/// address: more than `max_failures` failures of one user within `window`
/// block that user at that address for `block_for`, and more than
/// `max_failures_per_source` of all users together block the address.
/// So one phone with a stale password shuts out only itself, not every seat
/// behind the same NAT or SBC address, while a flood still shuts out the
/// flooder. Sans-I/O: the caller passes `now`.
///
/// A failure is counted for the address first; the failure that blocks the
/// address is not also counted for its user, and while a block is on, the
/// failures it covers count for nothing (so a phone stuck retrying a wrong
/// password gets out again). A success clears its user's count but not the
/// address's, which only time clears.
///
/// The window is fixed (it starts at the first failure and is not sliding),
/// which keeps an entry to a few words. Memory is capped at `max_entries`;
/// when full, expired entries are dropped, then the least recently failing
/// ones — blocked ones last — in batches of an eighth, so a scan from many
/// addresses costs amortised O(log n) per failure.
///
/// IPv4-mapped IPv6 addresses count as their IPv4 address, so a dual-stack
/// socket does not split one source in two.
#[derive(Debug, Clone, Default)]
pub struct FailureThrottle {
    policy: ThrottlePolicy,
    counters: FxHashMap<BlockScope, Counter>,
    /// Where each user last logged in from, and when: exempt from its
    /// account-wide block (a seat's own phone keeps working).
    known: FxHashMap<(IpAddr, String), Instant>,
    /// Blocks lifted and not yet handed out by `prune`.
    ended: Vec<BlockEnded>,
    next_sweep: Option<Instant>,
}

impl FailureThrottle {
    /// A throttle with the given policy.
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            ..Self::default()
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &ThrottlePolicy {
        &self.policy
    }

    /// Whether a request for `user` from `ip` may be authenticated now:
    /// neither the address nor that user at it is blocked. `user` is the
    /// account the request is for (for REGISTER, the seat in To), known
    /// before its credentials are checked.
    pub fn allowed(&self, ip: IpAddr, user: &str, now: Instant) -> bool {
        let ip = source_key(ip);
        let blocked = [BlockScope::Source { ip }, BlockScope::user(ip, user)]
            .iter()
            .any(|scope| self.blocking(scope, now));
        // The account-wide block shuts out only addresses that have failed
        // for this seat themselves (a new one gets one try), never one it
        // logged in from: a guesser cannot lock the seat's own phone out.
        let account_blocked = self.blocking(&BlockScope::account(user), now)
            && self.counters.contains_key(&BlockScope::user(ip, user))
            && !self.known(ip, user, now);
        !blocked && !account_blocked
    }

    /// Whether `user` logged in from `ip` lately.
    fn known(&self, ip: IpAddr, user: &str, now: Instant) -> bool {
        self.known
            .get(&(ip, cut(user).to_owned()))
            .is_some_and(|at| now.saturating_duration_since(*at) < self.policy.known_for)
    }

    /// Counts a failed authentication for `user` from `ip`. Returns the
    /// block it starts, if any — once per block, for the caller to log.
    pub fn record_failure(&mut self, ip: IpAddr, user: &str, now: Instant) -> Option<BlockStarted> {
        let ip = source_key(ip);
        let source = BlockScope::Source { ip };
        if self.blocking(&source, now) {
            return None;
        }
        let first = self
            .count(source, now)
            .or_else(|| self.count(BlockScope::user(ip, user), now));
        let account = self.count(BlockScope::account(user), now);
        first.or(account)
    }

    /// Clears the failure count of `user` at `ip` after a successful
    /// authentication. An active block stays: it is the penalty for the
    /// failures before it.
    pub fn record_success(&mut self, ip: IpAddr, user: &str, now: Instant) {
        let ip = source_key(ip);
        if self.known.len() >= self.policy.max_entries {
            let known_for = self.policy.known_for;
            self.known
                .retain(|_, at| now.saturating_duration_since(*at) < known_for);
        }
        if self.known.len() < self.policy.max_entries {
            self.known.insert((ip, cut(user).to_owned()), now);
        }
        let scope = BlockScope::user(ip, user);
        if self
            .counters
            .get(&scope)
            .is_some_and(|c| c.blocked_since.is_none())
        {
            self.counters.remove(&scope);
        }
    }

    /// Returns the blocks lifted since the last call, each once, and drops
    /// entries that no longer matter: unblocked ones whose window has passed
    /// and blocked ones whose block has run out. Looks through all entries
    /// at most once per second, so it may be called on every request.
    #[must_use = "the ended blocks are returned once, for the caller to log"]
    pub fn prune(&mut self, now: Instant) -> Vec<BlockEnded> {
        if self.next_sweep.is_none_or(|at| now >= at) {
            self.sweep(now);
            self.next_sweep = Some(now + SWEEP_EVERY);
        }
        std::mem::take(&mut self.ended)
    }

    /// Number of counters kept (addresses and users at addresses).
    pub fn len(&self) -> usize {
        self.counters.len()
    }

    /// Whether no counter is kept.
    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }

    fn blocking(&self, scope: &BlockScope, now: Instant) -> bool {
        self.counters
            .get(scope)
            .is_some_and(|c| c.blocking(now, &self.policy))
    }

    /// Counts one failure against `scope`; returns the block it starts.
    fn count(&mut self, scope: BlockScope, now: Instant) -> Option<BlockStarted> {
        let policy = self.policy;
        match self.counters.get(&scope).copied() {
            // Failures while blocked do not extend the block.
            Some(c) if c.blocking(now, &policy) => return None,
            // The block has run out: start afresh.
            Some(c) if c.blocked_since.is_some() => self.remove(&scope),
            Some(_) => {}
            None if self.counters.len() >= policy.max_entries => {
                self.make_room(now);
                if self.counters.len() >= policy.max_entries {
                    // Only with max_entries == 0: track nothing.
                    return None;
                }
            }
            None => {}
        }
        let limit = match scope {
            BlockScope::User { .. } => policy.max_failures,
            BlockScope::Source { .. } => policy.max_failures_per_source,
            BlockScope::Account { .. } => policy.max_failures_per_user,
        };
        let counter = self
            .counters
            .entry(scope.clone())
            .or_insert_with(|| Counter::new(now));
        counter.last_failure = now;
        if now.saturating_duration_since(counter.window_start) > policy.window {
            counter.window_start = now;
            counter.failures = 0;
        }
        counter.failures = counter.failures.saturating_add(1);
        if counter.failures <= limit {
            return None;
        }
        counter.blocked_since = Some(now);
        Some(BlockStarted {
            scope,
            until: now + policy.block_for,
        })
    }

    /// Forgets `scope`; if it had been blocked, its block has now ended.
    fn remove(&mut self, scope: &BlockScope) {
        if let Some(c) = self.counters.remove(scope)
            && c.blocked_since.is_some()
        {
            note_ended(&mut self.ended, scope, self.policy.max_entries);
        }
    }

    fn sweep(&mut self, now: Instant) {
        let policy = self.policy;
        self.known
            .retain(|_, at| now.saturating_duration_since(*at) < policy.known_for);
        let ended = &mut self.ended;
        self.counters.retain(|scope, c| {
            if !c.expired(now, &policy) {
                return true;
            }
            if c.blocked_since.is_some() {
                note_ended(ended, scope, policy.max_entries);
            }
            false
        });
    }

    fn make_room(&mut self, now: Instant) {
        self.sweep(now);
        let cap = self.policy.max_entries;
        if self.counters.len() < cap || self.counters.is_empty() {
            return;
        }
        // Evict a batch, not one, so the O(n) selection is paid once per
        // cap/8 insertions. Blocked entries sort after unblocked ones, then
        // oldest failure first.
        let evict = (cap / 8).max(1).min(self.counters.len());
        let mut order: Vec<(bool, Instant, BlockScope)> = self
            .counters
            .iter()
            .map(|(scope, c)| {
                // Account counters go last: forgetting one would lift the
                // cap on guessing that seat from many addresses.
                let keep = c.blocked_since.is_some() || matches!(scope, BlockScope::Account { .. });
                (keep, c.last_failure, scope.clone())
            })
            .collect();
        order.select_nth_unstable_by_key(evict - 1, |(blocked, last, _)| (*blocked, *last));
        for (_, _, scope) in &order[..evict] {
            self.remove(scope);
        }
    }
}

/// Queues an ended block for `prune`. The queue is capped like the map, in
/// case a caller never prunes: then ends go unreported rather than piling up.
fn note_ended(ended: &mut Vec<BlockEnded>, scope: &BlockScope, cap: usize) {
    if ended.len() < cap {
        ended.push(BlockEnded {
            scope: scope.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    /// The address test challenges are sent to and answers come from.
    const SRC: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));
    use super::*;
    use std::collections::HashMap;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const REALM: &str = "hotline.example";
    const LIFETIME: Duration = Duration::from_secs(300);
    const T0: u64 = 1_750_000_000;

    fn auth() -> Authenticator {
        Authenticator::new(REALM, [7u8; 32], LIFETIME)
    }

    fn passwords() -> HashMap<String, String> {
        HashMap::from([
            ("1001".to_owned(), "s3cret".to_owned()),
            ("1002".to_owned(), "other\"pw\\".to_owned()),
        ])
    }

    /// Pulls the nonce out of a challenge, as a phone would.
    fn nonce_of(challenge: &str) -> String {
        let start = challenge.find("nonce=\"").unwrap() + 7;
        let end = start + challenge[start..].find('"').unwrap();
        challenge[start..end].to_owned()
    }

    fn verify_with(a: &Authenticator, header: &str, now: u64) -> Result<Verified, AuthError> {
        let pw = passwords();
        a.verify(header, "REGISTER", now, SRC, |u| {
            pw.get(u).map(String::as_str)
        })
    }

    fn response_of(
        algorithm: Algorithm,
        password: &str,
        method: &str,
        qop: Option<QopAuth<'_>>,
    ) -> String {
        ResponseInput {
            algorithm,
            username: "Mufasa",
            realm: "http-auth@example.org",
            password,
            method,
            uri: "/dir/index.html",
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            qop,
        }
        .response()
    }

    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    #[test]
    fn rfc7616_example_md5_and_sha256() {
        let qop = || {
            Some(QopAuth {
                qop: "auth",
                nc: "00000001",
                cnonce: RFC7616_CNONCE,
            })
        };
        assert_eq!(
            response_of(Algorithm::Md5, "Circle of Life", "GET", qop()),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
        assert_eq!(
            response_of(Algorithm::Sha256, "Circle of Life", "GET", qop()),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        // And through the client builder.
        let header = authorization_header(
            "Mufasa",
            "Circle of Life",
            "http-auth@example.org",
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            "GET",
            "/dir/index.html",
            Algorithm::Sha256,
            Some(RFC7616_CNONCE),
            1,
        );
        assert!(header.contains(
            "response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\""
        ));
        assert!(header.contains("nc=00000001"));
    }

    #[test]
    fn rfc7616_example_header_parses_and_matches() {
        // The header exactly as printed in RFC 7616 §3.9.1, still folded.
        let header = concat!(
            "Digest username=\"Mufasa\",\r\n",
            "       realm=\"http-auth@example.org\",\r\n",
            "       uri=\"/dir/index.html\",\r\n",
            "       algorithm=SHA-256,\r\n",
            "       nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",\r\n",
            "       nc=00000001,\r\n",
            "       cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\",\r\n",
            "       qop=auth,\r\n",
            "       response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\",\r\n",
            "       opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        );
        let creds = Credentials::parse(header).unwrap();
        assert_eq!(creds.username, "Mufasa");
        assert_eq!(creds.algorithm, Algorithm::Sha256);
        assert_eq!(creds.uri, "/dir/index.html");
        assert!(creds.response_matches("Circle of Life", "GET"));
        assert!(!creds.response_matches("Circle of Life", "POST"));
        assert!(!creds.response_matches("circle of life", "GET"));
    }

    #[test]
    fn rfc2617_example() {
        let header = r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let creds = Credentials::parse(header).unwrap();
        assert_eq!(creds.algorithm, Algorithm::Md5);
        assert_eq!(
            creds.qop,
            Some(QopParams {
                qop: "auth".into(),
                nc: "00000001".into(),
                cnonce: "0a4f113b".into(),
            })
        );
        assert!(creds.response_matches("Circle Of Life", "GET"));
        assert!(!creds.response_matches("Circle of Life", "GET"));

        let built = authorization_header(
            "Mufasa",
            "Circle Of Life",
            "testrealm@host.com",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "GET",
            "/dir/index.html",
            Algorithm::Md5,
            Some("0a4f113b"),
            1,
        );
        assert!(built.contains("response=\"6629fae49393a05397450978507c4ef1\""));

        // A correct response to a nonce we never issued is still refused.
        let a = Authenticator::new("testrealm@host.com", [1; 32], LIFETIME);
        let r = a.verify(header, "GET", T0, SRC, |_| Some("Circle Of Life"));
        assert_eq!(r, Err(AuthError::BadNonce));
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        // A 4-byte key zero-padded to 32 bytes is the same HMAC key.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let tag = hmac_sha256(&key, &[b"what do ya ", b"want for nothing?"]);
        assert_eq!(
            hex(&tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn challenge_format_and_order() {
        let a = auth();
        let [first, second] = a.challenge(T0, false, SRC);
        let nonce = nonce_of(&first);
        assert_eq!(nonce.len(), NONCE_LEN);
        assert_eq!(
            first,
            format!(
                "Digest realm=\"hotline.example\", nonce=\"{nonce}\", algorithm=SHA-256, qop=\"auth\""
            )
        );
        assert_eq!(
            second,
            format!(
                "Digest realm=\"hotline.example\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\""
            )
        );
        let [stale, _] = a.challenge(T0, true, SRC);
        assert!(stale.ends_with(", qop=\"auth\", stale=true"));
        // Every challenge has its own nonce, even within one second, so a
        // fresh challenge after a replay really is fresh.
        assert_ne!(nonce_of(&a.challenge(T0 + 1, false, SRC)[0]), nonce);
        assert_ne!(nonce_of(&a.challenge(T0, false, SRC)[0]), nonce);
        // The realm is escaped.
        let odd = Authenticator::new("a\"b", [0; 32], LIFETIME);
        assert!(odd.challenge(T0, false, SRC)[0].starts_with("Digest realm=\"a\\\"b\", "));
    }

    fn client(
        a: &Authenticator,
        user: &str,
        password: &str,
        algorithm: Algorithm,
        issued: u64,
        cnonce: Option<&str>,
    ) -> String {
        let nonce = nonce_of(&a.challenge(issued, false, SRC)[0]);
        authorization_header(
            user,
            password,
            a.realm(),
            &nonce,
            "REGISTER",
            "sip:hotline.example",
            algorithm,
            cnonce,
            1,
        )
    }

    #[test]
    fn round_trip_both_algorithms() {
        let a = auth();
        for algorithm in [Algorithm::Md5, Algorithm::Sha256] {
            let header = client(&a, "1001", "s3cret", algorithm, T0, Some("abc123"));
            assert_eq!(
                verify_with(&a, &header, T0 + 10),
                Ok(Verified {
                    username: "1001".into(),
                    algorithm,
                    uri: "sip:hotline.example".into(),
                })
            );
            // The method is part of the hash.
            let pw = passwords();
            assert_eq!(
                a.verify(&header, "INVITE", T0, SRC, |u| pw.get(u).cloned()),
                Err(AuthError::WrongPassword)
            );
        }
        // Quotes and backslashes in credentials survive escaping.
        let header = client(&a, "1002", "other\"pw\\", Algorithm::Sha256, T0, Some("x"));
        assert_eq!(verify_with(&a, &header, T0).unwrap().username, "1002");
    }

    #[test]
    fn legacy_no_qop_form() {
        let a = auth();
        let header = client(&a, "1001", "s3cret", Algorithm::Md5, T0, None);
        assert!(!header.contains("qop"));
        assert_eq!(
            verify_with(&a, &header, T0).map(|v| v.algorithm),
            Ok(Algorithm::Md5)
        );
        // Without qop there is no nonce count: a nonce answers once.
        assert_eq!(verify_with(&a, &header, T0), Err(AuthError::Replay));
        // An RFC 2069 phone does not send algorithm at all: MD5 is implied.
        let bare =
            client(&a, "1001", "s3cret", Algorithm::Md5, T0, None).replace(", algorithm=MD5", "");
        assert!(!bare.contains("algorithm"));
        assert!(verify_with(&a, &bare, T0).is_ok());
        let wrong = client(&a, "1001", "nope", Algorithm::Md5, T0, None);
        assert_eq!(verify_with(&a, &wrong, T0), Err(AuthError::WrongPassword));
    }

    #[test]
    fn case_insensitive_tokens() {
        let a = auth();
        let header = client(&a, "1001", "s3cret", Algorithm::Sha256, T0, Some("c"))
            .replacen("Digest", "dIGEST", 1)
            .replace("algorithm=SHA-256", "Algorithm=sha-256")
            .replace("qop=auth", "QOP=\"auth\"");
        assert_eq!(
            verify_with(&a, &header, T0).map(|v| v.algorithm),
            Ok(Algorithm::Sha256)
        );
        // Uppercase hex in the response is tolerated.
        let header = client(&a, "1001", "s3cret", Algorithm::Md5, T0, Some("c"));
        let start = header.find("response=\"").unwrap() + 10;
        let upper = format!(
            "{}{}{}",
            &header[..start],
            header[start..start + 32].to_ascii_uppercase(),
            &header[start + 32..]
        );
        assert!(verify_with(&a, &upper, T0).is_ok());
    }

    #[test]
    fn wrong_password_unknown_user_wrong_realm() {
        let a = auth();
        let header = client(&a, "1001", "guess", Algorithm::Sha256, T0, Some("c"));
        assert_eq!(verify_with(&a, &header, T0), Err(AuthError::WrongPassword));

        let header = client(&a, "9999", "s3cret", Algorithm::Sha256, T0, Some("c"));
        assert_eq!(verify_with(&a, &header, T0), Err(AuthError::UnknownUser));

        let other = Authenticator::new("elsewhere", [7u8; 32], LIFETIME);
        let header = client(&other, "1001", "s3cret", Algorithm::Md5, T0, Some("c"));
        assert_eq!(verify_with(&a, &header, T0), Err(AuthError::WrongRealm));
    }

    #[test]
    fn forged_nonces_are_refused() {
        let a = auth();
        let genuine = nonce_of(&a.challenge(T0, false, SRC)[0]);
        let build = |nonce: &str| {
            authorization_header(
                "1001",
                "s3cret",
                REALM,
                nonce,
                "REGISTER",
                "sip:hotline.example",
                Algorithm::Sha256,
                Some("c"),
                1,
            )
        };
        // Another secret, same realm and time.
        let forger = Authenticator::new(REALM, [8u8; 32], LIFETIME);
        let forged = nonce_of(&forger.challenge(T0, false, SRC)[0]);
        // Our tag with a moved timestamp (to extend its life) or serial.
        let retimed = format!("{:016x}{}", T0 + 1000, &genuine[NONCE_TIME_HEX..]);
        let reserialed = format!(
            "{}{:08x}{}",
            &genuine[..NONCE_TIME_HEX],
            1234,
            &genuine[NONCE_TIME_HEX + NONCE_SERIAL_HEX..]
        );
        // One flipped tag digit.
        let mut flipped = genuine.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        for nonce in [
            forged.as_str(),
            retimed.as_str(),
            reserialed.as_str(),
            flipped.as_str(),
            "",
            "abc",
            &genuine[..NONCE_LEN - 1],
            &genuine.to_ascii_uppercase(),
            &format!("{genuine}0"),
            &"z".repeat(NONCE_LEN),
        ] {
            assert_eq!(
                verify_with(&a, &build(nonce), T0),
                Err(AuthError::BadNonce),
                "nonce {nonce:?}"
            );
        }
        assert!(verify_with(&a, &build(&genuine), T0).is_ok());
    }

    #[test]
    fn expired_nonce_is_stale_only_with_right_password() {
        let a = auth();
        let good = client(&a, "1001", "s3cret", Algorithm::Sha256, T0, Some("c"));
        let life = LIFETIME.as_secs();
        assert!(verify_with(&a, &good, T0 + life).is_ok());
        assert_eq!(
            verify_with(&a, &good, T0 + life + 1),
            Err(AuthError::StaleNonce)
        );
        // Clock stepped back past the lifetime: also stale, not accepted.
        assert_eq!(
            verify_with(&a, &good, T0 - life - 1),
            Err(AuthError::StaleNonce)
        );
        let bad = client(&a, "1001", "guess", Algorithm::Sha256, T0, Some("c"));
        assert_eq!(
            verify_with(&a, &bad, T0 + life + 1),
            Err(AuthError::WrongPassword)
        );
        assert!(!AuthError::StaleNonce.counts_as_failure());
        assert!(AuthError::WrongPassword.counts_as_failure());
    }

    #[test]
    fn unsupported_algorithm_and_qop() {
        let a = auth();
        let header = client(&a, "1001", "s3cret", Algorithm::Md5, T0, Some("c"));
        for alg in ["MD5-sess", "SHA-512-256", "SHA-256-sess", "\"\""] {
            let h = header.replace("algorithm=MD5", &format!("algorithm={alg}"));
            assert_eq!(
                verify_with(&a, &h, T0),
                Err(AuthError::UnsupportedAlgorithm),
                "{alg}"
            );
        }
        for qop in [
            "auth-int",
            "\"auth-int\"",
            "auth,auth-int",
            "\"auth,auth-int\"",
        ] {
            let h = header.replace("qop=auth", &format!("qop={qop}"));
            let r = verify_with(&a, &h, T0);
            // An unquoted list is a syntax error; a quoted one is an unknown qop.
            assert!(
                matches!(r, Err(AuthError::UnsupportedQop | AuthError::Malformed(_))),
                "{qop}: {r:?}"
            );
        }
        let h = header.replace("qop=auth", "qop=auth-int");
        assert_eq!(verify_with(&a, &h, T0), Err(AuthError::UnsupportedQop));
        assert!(AuthError::UnsupportedQop.to_string().contains("auth-int"));
    }

    #[test]
    fn not_digest() {
        let a = auth();
        for h in [
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
            "Bearer x",
            "Digestive a=b",
        ] {
            assert_eq!(verify_with(&a, h, T0), Err(AuthError::NotDigest), "{h}");
        }
        assert!(!AuthError::NotDigest.counts_as_failure());
    }

    #[test]
    fn malformed_headers() {
        let a = auth();
        let good = client(&a, "1001", "s3cret", Algorithm::Md5, T0, Some("c"));
        assert!(verify_with(&a, &good, T0).is_ok());

        let mut cases: Vec<String> = [
            "",
            "   ",
            "Digest",
            "Digest ",
            "Digest ,,,",
            "Digest username",
            "Digest username=",
            "Digest username=\"abc",
            "Digest username=\"abc\\",
            "Digest username=\"abc\\\"",
            "Digest =\"abc\"",
            "Digest username=\"a\" realm=\"b\"",
            "Digest username=\"a\"junk",
            "Digest username=\"a\u{1}\"",
            "Digest username=\"a\\\u{0}\"",
            "Digest username=a\u{1}",
            "Digest username=\u{e9}",
            "Digest QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
            "Digest username=\"a\", username=\"b\"",
            "\u{0}\u{1}\u{2}",
            "Di\u{e9}gest username=\"a\"",
            "\"Digest\" a=b",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Each required field missing in turn.
        for field in [
            "username=",
            "realm=",
            "nonce=",
            "uri=",
            "response=",
            "nc=",
            "cnonce=",
        ] {
            let start = good.find(&format!(" {field}")).unwrap();
            let end = good[start + 1..]
                .find(", ")
                .map_or(good.len(), |e| start + 1 + e + 1);
            cases.push(format!("{}{}", &good[..start], &good[end..]));
        }
        cases.push(good.replace("nc=00000001", "nc=1"));
        cases.push(good.replace("nc=00000001", "nc=0000000g"));
        cases.push(good.replace("cnonce=\"c\"", "cnonce=\"\""));
        cases.push(good.replace("response=\"", "response=\"0"));
        cases.push(good.replace("response=\"", "response=\"zz"));
        cases.push(good.replace("username=\"1001\"", "username*=UTF-8''1001"));
        cases.push(format!("{good}, userhash=true"));
        cases.push(format!("{good}, realm=\"{REALM}\""));
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=x")).collect();
        cases.push(format!("Digest {}", many.join(", ")));
        cases.push(format!(
            "Digest username=\"{}\"",
            "x".repeat(MAX_HEADER_LEN)
        ));
        for case in &cases {
            let r = verify_with(&a, case, T0);
            assert!(matches!(r, Err(AuthError::Malformed(_))), "{case:?}: {r:?}");
        }
    }

    #[test]
    fn parser_details() {
        let params =
            parse_params(" a=\"x\\\"y\\\\z\" ,, B = tok ,c=\"\", d=\"\u{4e2d}\u{6587}\"\t,")
                .unwrap();
        assert_eq!(
            params,
            vec![
                ("a", "x\"y\\z".to_owned()),
                ("B", "tok".to_owned()),
                ("c", String::new()),
                ("d", "\u{4e2d}\u{6587}".to_owned()),
            ]
        );
    }

    #[test]
    fn mangled_headers_never_panic() {
        let a = auth();
        let good = client(&a, "1001", "s3cret", Algorithm::Sha256, T0, Some("c\"q"));
        let boundaries: Vec<usize> = (0..=good.len())
            .filter(|&i| good.is_char_boundary(i))
            .collect();
        for &i in &boundaries {
            let _ = verify_with(&a, &good[..i], T0);
            let _ = verify_with(&a, &good[i..], T0);
        }
        for (i, _) in good.char_indices() {
            for sub in ['"', '\\', ',', '=', ' ', '\u{0}', '\u{e9}', 'x'] {
                let mut s = good.clone();
                s.replace_range(i..i + 1, &sub.to_string());
                let _ = verify_with(&a, &s, T0);
            }
        }
    }

    #[test]
    fn password_lookup_may_return_owned_strings() {
        let a = auth();
        let header = client(&a, "1001", "s3cret", Algorithm::Md5, T0, Some("c"));
        let r = a.verify(&header, "REGISTER", T0, SRC, |u| {
            (u == "1001").then(|| String::from("s3cret"))
        });
        assert!(r.is_ok());
        assert_eq!(
            a.verify(&header, "REGISTER", T0, SRC, |_| None::<&str>),
            Err(AuthError::UnknownUser)
        );
    }

    #[test]
    fn debug_hides_secret() {
        let a = Authenticator::new(REALM, [0xab; 32], LIFETIME);
        let dbg = format!("{a:?}");
        assert!(!dbg.contains("171") && !dbg.contains("ab, "), "{dbg}");
        assert!(dbg.contains("redacted"));
        let r = Authenticator::with_random_secret(REALM, LIFETIME);
        assert_ne!(r.secret, [0u8; 32]);
    }

    // --- replay protection ------------------------------------------------

    /// An answer to `nonce` as a phone sends it, with its own nonce count.
    fn answer(nonce: &str, user: &str, password: &str, cnonce: &str, nc: u32) -> String {
        authorization_header(
            user,
            password,
            REALM,
            nonce,
            "REGISTER",
            "sip:hotline.example",
            Algorithm::Sha256,
            Some(cnonce),
            nc,
        )
    }

    fn tracked_nonces(a: &Authenticator) -> usize {
        a.nonce_counts.lock().unwrap().seen.len()
    }

    #[test]
    fn a_replayed_authorization_is_refused_and_a_higher_count_accepted() {
        let a = auth();
        let nonce = nonce_of(&a.challenge(T0, false, SRC)[0]);
        let first = answer(&nonce, "1001", "s3cret", "c1", 1);
        assert!(verify_with(&a, &first, T0).is_ok());
        // The same request again, as captured: refused.
        assert_eq!(verify_with(&a, &first, T0 + 1), Err(AuthError::Replay));
        // The phone's next request on the same nonce counts up: accepted.
        let second = answer(&nonce, "1001", "s3cret", "c1", 2);
        assert!(verify_with(&a, &second, T0 + 30).is_ok());
        assert_eq!(verify_with(&a, &second, T0 + 31), Err(AuthError::Replay));
        // A lower count than the highest seen: refused too.
        assert_eq!(verify_with(&a, &first, T0 + 32), Err(AuthError::Replay));
        // Counts may skip (a request lost on the way).
        let fifth = answer(&nonce, "1001", "s3cret", "c1", 5);
        assert!(verify_with(&a, &fifth, T0 + 33).is_ok());
        // Another phone (its own client nonce) or another user answering the
        // same challenge starts its own count.
        assert!(verify_with(&a, &answer(&nonce, "1001", "s3cret", "c2", 1), T0).is_ok());
        let other_user = answer(&nonce, "1002", "other\"pw\\", "c1", 1);
        assert!(verify_with(&a, &other_user, T0).is_ok());
        // A replay needs no password guess, and must not let its sender lock
        // the seat out through the throttle.
        assert!(!AuthError::Replay.counts_as_failure());
        // A wrong password is that, not a replay, and leaves the count alone.
        let guess = answer(&nonce, "1001", "guess", "c1", 6);
        assert_eq!(verify_with(&a, &guess, T0), Err(AuthError::WrongPassword));
        assert!(verify_with(&a, &answer(&nonce, "1001", "s3cret", "c1", 6), T0).is_ok());
    }

    #[test]
    fn replay_entries_expire_with_their_nonce() {
        let a = auth();
        let life = LIFETIME.as_secs();
        let old = client(&a, "1001", "s3cret", Algorithm::Sha256, T0, Some("c"));
        assert!(verify_with(&a, &old, T0).is_ok());
        assert_eq!(tracked_nonces(&a), 1);
        // Still within the lifetime: still remembered.
        let at_end = client(
            &a,
            "1001",
            "s3cret",
            Algorithm::Sha256,
            T0 + life,
            Some("c"),
        );
        assert!(verify_with(&a, &at_end, T0 + life).is_ok());
        assert_eq!(tracked_nonces(&a), 2);
        assert_eq!(verify_with(&a, &old, T0 + life), Err(AuthError::Replay));
        // One second later the first nonce is stale, and its entry is gone.
        let fresh = client(
            &a,
            "1001",
            "s3cret",
            Algorithm::Sha256,
            T0 + life + 1,
            Some("c"),
        );
        assert!(verify_with(&a, &fresh, T0 + life + 1).is_ok());
        assert_eq!(tracked_nonces(&a), 2);
        assert_eq!(
            verify_with(&a, &old, T0 + life + 1),
            Err(AuthError::StaleNonce)
        );
        // If the clock then steps back, the forgotten nonce does not come
        // back to life: it is stale, never accepted a second time.
        assert_eq!(verify_with(&a, &old, T0 + 10), Err(AuthError::StaleNonce));
    }

    #[test]
    fn the_replay_table_is_capped_and_never_accepts_a_forgotten_nonce() {
        let a = auth();
        let cap = 4;
        *a.nonce_counts.lock().unwrap() = NonceCounts::new(cap);
        let now = T0 + 20;
        let headers: Vec<String> = (0..10)
            .map(|i| client(&a, "1001", "s3cret", Algorithm::Sha256, T0 + i, Some("c")))
            .collect();
        for header in &headers {
            assert!(verify_with(&a, header, now).is_ok());
            assert!(tracked_nonces(&a) <= cap);
        }
        assert_eq!(tracked_nonces(&a), cap);
        // The oldest were evicted: sent again they are stale (the phone
        // retries with a fresh nonce), not accepted.
        for header in &headers[..6] {
            assert_eq!(verify_with(&a, header, now), Err(AuthError::StaleNonce));
        }
        // The newest are still tracked.
        for header in &headers[6..] {
            assert_eq!(verify_with(&a, header, now), Err(AuthError::Replay));
        }
        // A fresh nonce is still accepted with the table full.
        let fresh = client(&a, "1001", "s3cret", Algorithm::Sha256, now, Some("c"));
        assert!(verify_with(&a, &fresh, now).is_ok());
        assert_eq!(tracked_nonces(&a), cap);
    }

    #[test]
    fn only_a_correct_response_is_tracked() {
        let a = auth();
        let nonce = nonce_of(&a.challenge(T0, false, SRC)[0]);
        for nc in 1..100 {
            let guess = answer(&nonce, "1001", "guess", &format!("c{nc}"), nc);
            assert_eq!(verify_with(&a, &guess, T0), Err(AuthError::WrongPassword));
            let unknown = answer(&nonce, "9999", "s3cret", "c", nc);
            assert_eq!(verify_with(&a, &unknown, T0), Err(AuthError::UnknownUser));
        }
        assert_eq!(tracked_nonces(&a), 0);
    }

    // --- throttle ---------------------------------------------------------

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn throttle_blocks_a_user_after_more_than_n_failures_and_unblocks() {
        let mut t = FailureThrottle::default();
        let now = Instant::now();
        let src = ip(0x0a00_0001);
        for k in 0..10 {
            assert!(t.allowed(src, "1001", now), "before failure {k}");
            assert_eq!(t.record_failure(src, "1001", now + secs(k)), None);
        }
        assert!(t.allowed(src, "1001", now + secs(10)));
        assert!(t.record_failure(src, "1001", now + secs(10)).is_some());
        assert!(!t.allowed(src, "1001", now + secs(10)));
        // Failures while blocked do not extend the block.
        assert_eq!(t.record_failure(src, "1001", now + secs(40)), None);
        assert!(!t.allowed(src, "1001", now + secs(69)));
        assert!(t.allowed(src, "1001", now + secs(70)));
        // And it starts afresh.
        assert_eq!(t.record_failure(src, "1001", now + secs(71)), None);
        assert!(t.allowed(src, "1001", now + secs(71)));
    }

    #[test]
    fn one_users_failures_do_not_block_another_user_at_the_same_address() {
        let a = auth();
        let mut t = FailureThrottle::default();
        let now = Instant::now();
        let nat = ip(0xc633_6401);
        // A phone with a stale password keeps trying, behind the shared NAT.
        for _ in 0..11 {
            assert!(t.allowed(nat, "1001", now));
            let stale_pw = client(&a, "1001", "old", Algorithm::Sha256, T0, Some("c"));
            let e = verify_with(&a, &stale_pw, T0).unwrap_err();
            assert!(e.counts_as_failure());
            t.record_failure(nat, "1001", now);
        }
        assert!(!t.allowed(nat, "1001", now));
        // Its neighbour with the right password is let in.
        assert!(t.allowed(nat, "1002", now));
        let good = client(&a, "1002", "other\"pw\\", Algorithm::Sha256, T0, Some("c"));
        assert!(verify_with(&a, &good, T0).is_ok());
        t.record_success(nat, "1002", now);
        // Its own count is its own: ten failures still leave it in.
        for _ in 0..10 {
            t.record_failure(nat, "1002", now);
        }
        assert!(t.allowed(nat, "1002", now));
        // And the blocked user is blocked only at that address.
        assert!(t.allowed(ip(0xc633_6402), "1001", now));
        // A success does not lift an active block.
        t.record_success(nat, "1001", now);
        assert!(!t.allowed(nat, "1001", now + secs(1)));
    }

    #[test]
    fn a_blocked_user_is_blocked_for_the_minute_and_then_allowed() {
        let mut t = FailureThrottle::default();
        let now = Instant::now();
        let src = ip(1);
        for _ in 0..10 {
            t.record_failure(src, "1001", now);
        }
        let started = t.record_failure(src, "1001", now + secs(5)).unwrap();
        assert_eq!(started.until, now + secs(65));
        assert!(!t.allowed(src, "1001", now + secs(5)));
        assert!(!t.allowed(src, "1001", now + secs(65) - Duration::from_millis(1)));
        assert!(t.allowed(src, "1001", now + secs(65)));
    }

    #[test]
    fn the_per_source_ceiling_blocks_every_user_at_the_address() {
        let mut t = FailureThrottle::default();
        let now = Instant::now();
        let flooder = ip(0xcb00_7101);
        let ceiling = t.policy().max_failures_per_source;
        // A scan of usernames: one failure each, so no user is blocked ...
        for n in 0..ceiling {
            assert_eq!(t.record_failure(flooder, &format!("u{n}"), now), None);
        }
        assert!(t.allowed(flooder, "1001", now));
        // ... until the address as a whole is over the ceiling.
        let started = t.record_failure(flooder, "u-last", now + secs(1));
        assert_eq!(
            started,
            Some(BlockStarted {
                scope: BlockScope::Source { ip: flooder },
                until: now + secs(61),
            })
        );
        for user in ["1001", "1002", "u0", "never-seen"] {
            assert!(!t.allowed(flooder, user, now + secs(2)), "{user}");
        }
        // Even a user's success from there does not lift it; other
        // addresses are untouched.
        t.record_success(flooder, "1001", now + secs(2));
        assert!(!t.allowed(flooder, "1001", now + secs(2)));
        assert!(t.allowed(ip(0xcb00_7102), "1001", now + secs(2)));
        // Failures while blocked count for nothing and start no block.
        assert_eq!(t.record_failure(flooder, "u0", now + secs(3)), None);
        assert!(t.allowed(flooder, "1001", now + secs(61)));
        assert_eq!(
            t.prune(now + secs(61)),
            vec![BlockEnded {
                scope: BlockScope::Source { ip: flooder }
            }]
        );
    }

    #[test]
    fn block_start_and_end_are_reported_once_each() {
        let mut t = FailureThrottle::default();
        let now = Instant::now();
        let src = ip(7);
        let a = BlockScope::User {
            ip: src,
            user: "1001".into(),
        };
        let starts: Vec<BlockStarted> = (0..20)
            .filter_map(|_| t.record_failure(src, "1001", now))
            .collect();
        assert_eq!(
            starts,
            vec![BlockStarted {
                scope: a.clone(),
                until: now + secs(60),
            }]
        );
        assert!(t.prune(now + secs(1)).is_empty());
        assert!(t.prune(now + secs(59)).is_empty());
        assert_eq!(
            t.prune(now + secs(60)),
            vec![BlockEnded { scope: a.clone() }]
        );
        assert!(t.prune(now + secs(61)).is_empty());
        assert!(t.prune(now + secs(200)).is_empty());

        // A block noticed to be over by a new failure, before any prune, is
        // still reported exactly once.
        let b = BlockScope::User {
            ip: src,
            user: "1002".into(),
        };
        let later = now + secs(300);
        let starts = (0..11)
            .filter_map(|_| t.record_failure(src, "1002", later))
            .count();
        assert_eq!(starts, 1);
        assert_eq!(t.record_failure(src, "1002", later + secs(61)), None);
        assert_eq!(t.prune(later + secs(61)), vec![BlockEnded { scope: b }]);
        assert!(t.prune(later + secs(62)).is_empty());
        assert!(t.prune(later + secs(200)).is_empty());
    }

    #[test]
    fn guessing_one_seat_from_many_addresses_blocks_it_except_where_it_logged_in() {
        let mut t = FailureThrottle::new(ThrottlePolicy::default());
        let now = Instant::now();
        let phone = ip(0x0a00_0001);
        t.record_success(phone, "8001", now);
        // 31 failures from 4 addresses: none reaches 10 at one address.
        let mut started = None;
        for n in 0..31u32 {
            let from = ip(0xc633_6400 + n / 8);
            started = started.or(t.record_failure(from, "8001", now));
        }
        assert_eq!(
            started.map(|b| b.scope),
            Some(BlockScope::Account {
                user: "8001".into()
            })
        );
        // The guessing addresses are shut out; a new one gets one try, then
        // it too has failed for the seat and is shut out.
        assert!(
            !t.allowed(ip(0xc633_6400), "8001", now),
            "a guessing address"
        );
        let fresh = ip(0xc633_6499);
        assert!(t.allowed(fresh, "8001", now), "one try from a new address");
        t.record_failure(fresh, "8001", now);
        assert!(!t.allowed(fresh, "8001", now));
        assert!(t.allowed(phone, "8001", now), "the seat's own phone");
        // An address that never failed for the seat (a phone that moved) is
        // not locked out by someone else's guessing.
        assert!(t.allowed(ip(0x0a00_0099), "8001", now));
        assert!(t.allowed(ip(0xc633_6499), "8002", now), "another seat");
        assert!(t.allowed(ip(0xc633_6499), "8001", now + secs(61)));
    }

    #[test]
    fn a_nonce_answered_from_another_address_is_bad_and_counts_for_nothing() {
        let a = auth();
        let nonce = nonce_of(&a.challenge(T0, false, SRC)[0]);
        let header = authorization_header(
            "1001",
            "wrong",
            REALM,
            &nonce,
            "REGISTER",
            "sip:hotline.example",
            Algorithm::Md5,
            Some("x"),
            1,
        );
        let elsewhere = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9));
        let e = a
            .verify(&header, "REGISTER", T0, elsewhere, |_| Some("secret-1001"))
            .unwrap_err();
        assert_eq!(e, AuthError::BadNonce);
        assert!(!e.counts_as_failure(), "a blind spoofer counts nothing");
        let e = a
            .verify(&header, "REGISTER", T0, SRC, |_| Some("secret-1001"))
            .unwrap_err();
        assert_eq!(e, AuthError::WrongPassword);
        assert!(e.counts_as_failure());
        assert!(!AuthError::Malformed("x".into()).counts_as_failure());
        assert!(!AuthError::WrongRealm.counts_as_failure());
    }

    #[test]
    fn an_ipv6_host_counts_as_its_slash_64() {
        let mut t = FailureThrottle::new(ThrottlePolicy::default());
        let now = Instant::now();
        for n in 0..11u16 {
            let a = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, n + 1));
            t.record_failure(a, "8001", now);
        }
        let other = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, 9));
        assert!(!t.allowed(other, "8001", now), "the /64 is one source");
        let next = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
        assert!(t.allowed(next, "8001", now));
    }

    #[test]
    fn throttle_is_per_ip_and_canonical() {
        let mut t = FailureThrottle::new(ThrottlePolicy {
            max_failures: 2,
            ..ThrottlePolicy::default()
        });
        let now = Instant::now();
        let v4 = Ipv4Addr::new(192, 0, 2, 7);
        for _ in 0..3 {
            t.record_failure(IpAddr::V4(v4), "1001", now);
        }
        assert!(!t.allowed(IpAddr::V4(v4), "1001", now));
        assert!(!t.allowed(IpAddr::V6(v4.to_ipv6_mapped()), "1001", now));
        assert!(t.allowed(ip(0xc000_0208), "1001", now));
        assert!(t.allowed(IpAddr::V6(Ipv6Addr::LOCALHOST), "1001", now));
        // One counter for the address, one for the user at it, one for the
        // user from anywhere.
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn throttle_window_and_success_reset() {
        let mut t = FailureThrottle::new(ThrottlePolicy {
            max_failures: 2,
            window: secs(10),
            ..ThrottlePolicy::default()
        });
        let now = Instant::now();
        let src = ip(1);
        t.record_failure(src, "u", now);
        t.record_failure(src, "u", now);
        // Window over: the third failure opens a new window instead of blocking.
        t.record_failure(src, "u", now + secs(11));
        assert!(t.allowed(src, "u", now + secs(11)));
        t.record_failure(src, "u", now + secs(12));
        t.record_success(src, "u", now + secs(12));
        t.record_failure(src, "u", now + secs(12));
        t.record_failure(src, "u", now + secs(12));
        assert!(t.allowed(src, "u", now + secs(12)));
        t.record_failure(src, "u", now + secs(12));
        assert!(!t.allowed(src, "u", now + secs(12)));
        // Success does not lift an active block.
        t.record_success(src, "u", now + secs(12));
        assert!(!t.allowed(src, "u", now + secs(13)));
        // Prune drops expired windows and blocks.
        t.record_failure(ip(2), "u", now);
        assert_eq!(t.len(), 5);
        assert!(t.prune(now + secs(30)).is_empty());
        assert_eq!(t.len(), 1, "only the blocked user is kept");
        assert!(!t.allowed(src, "u", now + secs(30)));
        assert_eq!(t.prune(now + secs(200)).len(), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn throttle_stays_bounded_and_keeps_blocked_users() {
        let cap = 1000;
        let mut t = FailureThrottle::new(ThrottlePolicy {
            max_failures: 1,
            max_entries: cap,
            ..ThrottlePolicy::default()
        });
        let now = Instant::now();
        let attacker = ip(0xdead_beef);
        t.record_failure(attacker, "1001", now);
        t.record_failure(attacker, "1001", now);
        assert!(!t.allowed(attacker, "1001", now));
        for n in 0..20 * cap as u32 {
            t.record_failure(ip(n), "1001", now + Duration::from_millis(u64::from(n)));
            assert!(t.len() <= cap);
        }
        assert!(t.len() > cap / 2);
        assert!(!t.allowed(attacker, "1001", now + secs(1)));
        // The newest sources are the ones remembered.
        let newest = ip(20 * cap as u32 - 1);
        t.record_failure(newest, "1001", now + secs(30));
        assert!(!t.allowed(newest, "1001", now + secs(30)));
        // Nothing was blocked and then evicted, so no block has ended.
        assert!(t.prune(now + secs(30)).is_empty());

        // A user name from the request cannot make an entry large.
        let long = "9".repeat(10 * MAX_THROTTLED_USER_LEN);
        let started = t.record_failure(ip(1), &long, now + secs(31));
        let started = started.or_else(|| t.record_failure(ip(1), &long, now + secs(31)));
        match started.map(|s| s.scope) {
            Some(BlockScope::User { user, .. }) => assert_eq!(user.len(), MAX_THROTTLED_USER_LEN),
            other => panic!("{other:?}"),
        }
        assert!(!t.allowed(ip(1), &long, now + secs(31)));

        let mut none = FailureThrottle::new(ThrottlePolicy {
            max_entries: 0,
            ..ThrottlePolicy::default()
        });
        none.record_failure(attacker, "1001", now);
        assert!(none.is_empty());
    }
}
