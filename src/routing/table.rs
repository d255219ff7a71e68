//! The compiled routing table: what `routing.toml` says, validated, indexed
//! and with every "routes as" chain and leader-session rule already resolved,
//! so that a decision is a few lookups. Built only by [`crate::config`].

use super::calendar::WorkCalendar;
use super::number::NumberingPlan;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rustc_hash::{FxHashMap, FxHashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// How a legacy hotline was folded into 12345 (归并方式).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The 12345 main line itself.
    Main,
    /// 整体并入: number cancelled, calls fold into the 12345 queues.
    WholeMerge,
    /// 双号并行: number kept, calls transferred directly to seats managed by 12345.
    DualNumber,
    /// 设分中心: number and seats stay at a sub-centre reached over a trunk.
    SubCentre,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Main => "main",
            Mode::WholeMerge => "whole_merge",
            Mode::DualNumber => "dual_number",
            Mode::SubCentre => "sub_centre",
        }
    }
}

/// City-level (市级) or provincial (省级) sub-centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    City,
    Provincial,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::City => "city",
            Level::Provincial => "provincial",
        }
    }
}

/// What a trunk is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrunkRole {
    /// The carrier trunk calls arrive from.
    Carrier,
    SubCentre,
    Emergency,
}

impl TrunkRole {
    /// As `role` is written in routing.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            TrunkRole::Carrier => "carrier",
            TrunkRole::SubCentre => "sub_centre",
            TrunkRole::Emergency => "emergency",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Trunk {
    pub id: String,
    pub name: String,
    pub uri: String,
    pub role: TrunkRole,
    pub level: Option<Level>,
    /// Where requests to this trunk go, when the URI names an IP address.
    pub target: Option<SocketAddr>,
    /// Source addresses allowed to send calls on this trunk.
    pub sources: Vec<IpAddr>,
    /// Ids of the trunks (same role) tried in turn after this one.
    pub alternates: Vec<String>,
    /// Whether OPTIONS probes watch this trunk.
    pub probe: bool,
    /// Calls from it only over TCP (`Some(true)`), only over UDP
    /// (`Some(false)`), or either.
    pub tcp_only: Option<bool>,
    /// Source ports calls from it may come from; empty: any.
    pub source_ports: Vec<u16>,
}

impl Trunk {
    /// Whether a request from `addr` (over TCP when `reliable`) may be
    /// this trunk's: its source address, and its transport and port when
    /// the table restricts them (UDP sources can be forged; see README).
    pub fn admits(&self, addr: std::net::SocketAddr, reliable: bool) -> bool {
        self.sources.contains(&addr.ip())
            && self.tcp_only.is_none_or(|tcp| tcp == reliable)
            // Ports say something over UDP only (a TCP source port is
            // ephemeral).
            && (reliable || self.source_ports.is_empty() || self.source_ports.contains(&addr.port()))
    }
}

/// How a queue chooses among the free seats that may take its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueStrategy {
    /// The seat free the longest (the fairest share of calls).
    LongestIdle,
    /// Each seat in turn, after the one offered last.
    RoundRobin,
    /// The seat that has taken the fewest calls.
    FewestCalls,
    /// Every free seat at once; the first to answer wins, the others get
    /// CANCEL.
    RingAll,
}

impl QueueStrategy {
    /// Every strategy, as `strategy` is written in routing.toml.
    pub const ALL: [QueueStrategy; 4] = [
        QueueStrategy::LongestIdle,
        QueueStrategy::RoundRobin,
        QueueStrategy::FewestCalls,
        QueueStrategy::RingAll,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QueueStrategy::LongestIdle => "longest_idle",
            QueueStrategy::RoundRobin => "round_robin",
            QueueStrategy::FewestCalls => "fewest_calls",
            QueueStrategy::RingAll => "ring_all",
        }
    }
}

/// Where a caller goes who cannot (or will not) wait in a queue: the queue
/// is full, the wait too long, no seat is logged in, or the exit key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueOverflow {
    /// `"busy"`: the caller hears why (`queue_busy`, `queue_unavailable`)
    /// and is hung up on.
    Busy,
    /// `"queue:<id>"`: into another queue, keeping the original arrival.
    /// Index into [`Table::queues`], never the queue's own.
    Queue(u32),
    /// `"callback"`: the caller gives its number and is called back once a
    /// seat is free (busy for a call that cannot).
    Callback,
}

/// A queue of the ACD (排队): who answers it and how callers wait in it.
/// Times are whole seconds in routing.toml.
#[derive(Debug, Clone)]
pub struct Queue {
    pub id: String,
    pub name: String,
    /// Seats with this skill answer the queue.
    pub skill: String,
    pub strategy: QueueStrategy,
    /// How long an offer rings a seat before the seat is passed over (and
    /// counted as a missed offer).
    pub ring: Duration,
    /// After each call a seat of this queue rests this long before the
    /// next offer.
    pub wrap_up: Duration,
    /// How often a waiting caller hears its position and estimated wait;
    /// `None` (`announce_seconds = 0`): never, hold music only.
    pub announce_every: Option<Duration>,
    /// An answer within this wait counts towards the service level.
    pub service_level: Duration,
    /// Most callers waiting at once; `None`: no limit.
    pub max_callers: Option<usize>,
    /// Longest wait before `overflow`; `None`: no limit.
    pub max_wait: Option<Duration>,
    /// Callers told a longer wait are offered a callback in their turn.
    pub callback_offer_after: Option<Duration>,
    /// Where a caller goes when no seat that could serve the queue is
    /// logged in.
    pub join_empty: QueueOverflow,
    /// Where a caller goes when the queue is full or `max_wait` is over.
    pub overflow: QueueOverflow,
    /// The key (0-9, `*`, `#`) that takes a waiting caller to `exit_action`.
    pub exit_key: Option<char>,
    pub exit_action: QueueOverflow,
    /// Dual-number lines: only the expert seats are offered the caller
    /// this long, then seats with the line's skill too.
    pub expert_wait: Duration,
    /// Dual-number lines: from this wait on, this queue's (general) seats
    /// too. Never shorter than `expert_wait`.
    pub widen_after: Duration,
    /// The handle time the wait estimate starts from, until real calls
    /// have been timed.
    pub default_handle: Duration,
    /// Offers unanswered in a row that pause a seat (reason `no_answer`);
    /// 0: never.
    pub max_missed_offers: u32,
    /// Callers who hang up sooner than this are counted as short abandons.
    pub short_abandon: Duration,
}

/// How a leader session's callers choose (热线问政: wait, or a ticket).
#[derive(Debug, Clone)]
pub struct LeaderSettings {
    pub choice_timeout: Duration,
    /// A caller who presses nothing waits (`false`) or gets a ticket.
    pub default_ticket: bool,
    /// The longest spoken request; zero: none asked for.
    pub message: Duration,
    /// Quiet this long ends a spoken request; zero: only `#` and
    /// `message` do.
    pub message_silence: Duration,
    /// Callers still waiting when the session ends take a ticket (`true`)
    /// or move to the main line's queue.
    pub end_ticket: bool,
}

/// Callbacks (回访) of done tickets.
#[derive(Clone, Debug)]
pub struct CallbackSettings {
    pub enabled: bool,
    /// Index into [`Table::queues`]: whose seats make them; `None`: the
    /// main line has no queue (callbacks are then not made).
    pub queue: Option<u32>,
    pub start: chrono::NaiveTime,
    pub end: chrono::NaiveTime,
    pub max_attempts: u32,
    pub retry: Duration,
    pub ring: Duration,
}

/// Where tickets are kept: the store (`sqlite:` path already made
/// absolute, or a `postgres://` URL) and the folder for requests.
#[derive(Clone)]
pub struct TicketSettings {
    pub store: String,
    pub requests_dir: PathBuf,
    pub dispatch_retry: Duration,
    pub dispatch_max_attempts: u32,
    pub units: Vec<TicketUnit>,
}

impl std::fmt::Debug for TicketSettings {
    /// The store without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketSettings")
            .field("store", &crate::tickets::postgres::redact(&self.store))
            .field("requests_dir", &self.requests_dir)
            .field("dispatch_retry", &self.dispatch_retry)
            .field("dispatch_max_attempts", &self.dispatch_max_attempts)
            .field("units", &self.units)
            .finish()
    }
}

/// A unit's delivery endpoint and API token (`[[tickets.units]]`).
#[derive(Clone)]
pub struct TicketUnit {
    pub unit: String,
    pub webhook_url: Option<String>,
    /// The signing key, decoded from `whsec_…`.
    pub webhook_secret: Option<Vec<u8>>,
    pub api_token: Option<String>,
}

impl std::fmt::Debug for TicketUnit {
    /// Secrets and tokens are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketUnit")
            .field("unit", &self.unit)
            .field("webhook_url", &self.webhook_url)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "***"),
            )
            .field("api_token", &self.api_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// A role of the control API (`[[api.tokens]] role`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiRole {
    /// Reads queues, seats, calls, sessions and the event stream.
    Viewer,
    /// Reads, and acts: pauses seats, ends calls, moves transfers.
    Supervisor,
    /// `unit:<name>`: that unit's tickets only.
    Unit(String),
}

impl ApiRole {
    pub fn as_str(&self) -> String {
        match self {
            ApiRole::Viewer => "viewer".into(),
            ApiRole::Supervisor => "supervisor".into(),
            ApiRole::Unit(u) => format!("unit:{u}"),
        }
    }
}

/// One bearer token of the control API: only its SHA-256 is kept.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub name: String,
    pub role: ApiRole,
    pub sha256: [u8; 32],
    /// Written in plain (`token`): for demos on loopback only.
    pub plain: bool,
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// `[acd]`: settings of the queues as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcdSettings {
    /// The JSON-lines queue event log (Asterisk `queue_log` names), or
    /// `None`: off.
    pub queue_log: Option<PathBuf>,
    /// What a seat dials from its phone to pause, and to resume, taking
    /// calls.
    pub pause_code: String,
    pub resume_code: String,
}

#[derive(Debug, Clone)]
pub struct Seat {
    pub id: String,
    pub name: String,
    pub skills: Vec<String>,
    /// Lines this seat is the expert seat (专家座席) for.
    pub expert_for: Vec<String>,
    /// Digest password from configuration; `None` means the seat cannot
    /// register.
    pub password: Option<String>,
    /// Digest challenges for this seat, when not `[sip]`'s.
    pub digest_algorithms: Option<Vec<crate::sip::digest::Algorithm>>,
}

/// `[media]`: where the gateway's RTP lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSettings {
    pub anchor: bool,
    /// First and one-past-last RTP port.
    pub rtp_ports: (u16, u16),
    pub rtp_address: Option<IpAddr>,
    /// A leg silent this long is flagged.
    pub media_timeout: Duration,
    /// Where recordings go, and which calls and how named.
    pub recordings: Option<Recordings>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recordings {
    pub dir: PathBuf,
    /// Every anchored call, or only those during leader sessions (热线问政,
    /// recorded for publication).
    pub all_calls: bool,
    pub name: String,
}

/// `[sip]`: how the gateway speaks SIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipSettings {
    pub listen_udp: Option<SocketAddr>,
    pub listen_tcp: Option<SocketAddr>,
    /// The address peers reach us at, written in Via and Contact.
    pub advertise: Option<IpAddr>,
    /// Digest realm seats authenticate in.
    pub realm: String,
    /// Digest algorithms challenged, most preferred first (RFC 8760 §2.4).
    pub digest_algorithms: Vec<crate::sip::digest::Algorithm>,
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
    /// How long one seat rings before the next is tried.
    pub seat_ring: Duration,
    /// How long a caller may hear ringing in all before the call fails.
    pub max_ring: Duration,
    /// The longest registration granted.
    pub max_register_expires: u32,
    /// A target silent this long (no response at all) is given up.
    pub response_timeout: Duration,
    /// `Retry-After` on the 503 of an emergency call no trunk took. A
    /// carrier proxy holds back every request to us that long (RFC 3261
    /// §21.5.4), so the default is 0: reroute this call, send the next.
    pub emergency_retry_after: u32,
    /// TCP connections one address (an IPv6 /64) may hold; trunks excepted.
    pub tcp_max_per_source: usize,
    /// Contacts one seat may have registered at once.
    pub max_contacts_per_seat: usize,
    /// Whether `serve` may listen beyond loopback with demo passwords.
    pub allow_demo_passwords: bool,
    /// OPTIONS probes of the trunks, if on.
    pub probe_interval: Option<Duration>,
    /// Unanswered probes in a row that mark a trunk down.
    pub probe_failures: u32,
}

/// Where a line's chain of "routes as" ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// Index into [`Table::lines`].
    Line(u32),
    /// Index into [`Table::emergency`].
    Emergency(u32),
}

/// One dialable number of the merger list, or the 12345 main line.
#[derive(Debug, Clone)]
pub struct Line {
    pub number: String,
    pub name: String,
    /// 责任单位: the unit a work order for this line goes to.
    pub unit: Option<String>,
    pub mode: Mode,
    pub remark: Option<String>,
    /// "已归并到12315": this number routes as another one.
    pub routes_as: Option<String>,
    /// Where the chain of `routes_as` ends (itself when there is none).
    pub resolved: Resolved,
    pub announcement: Option<String>,
    /// Index into [`Table::queues`] for main, whole-merge and dual-number
    /// lines (whose queue's settings apply to their waiting callers, and
    /// whose seats take them after widening); `None` for sub-centre lines.
    pub queue: Option<u32>,
    /// Dual-number lines: seats with this skill answer after the expert seat.
    pub skill: Option<String>,
    pub expert_seat: bool,
    /// Ids of the seats that are this line's expert seats.
    pub expert_seats: Vec<String>,
    /// Sub-centre lines: level and the trunk (index into [`Table::trunks`]).
    pub level: Option<Level>,
    pub trunk: Option<u32>,
    /// Leader sessions that capture calls to this line, sorted, non-overlapping:
    /// (start, end, index into [`Table::sessions`]) with times as Unix seconds.
    pub sessions: Vec<(i64, i64, u32)>,
}

#[derive(Debug, Clone)]
pub struct EmergencyLine {
    pub number: String,
    pub name: String,
    pub unit: Option<String>,
    /// Index into [`Table::trunks`].
    pub trunk: u32,
}

/// One leader session (热线问政): the head of a unit answers in person.
#[derive(Debug, Clone)]
pub struct LeaderSession {
    /// The unit whose head answers; a recurring rule may leave it to a rota
    /// kept outside the table, and then tickets go to the main line's unit.
    pub unit: Option<String>,
    pub leader: Option<String>,
    pub title: Option<String>,
    pub date: NaiveDate,
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Index into [`Table::queues`]: where callers who wait are queued.
    pub queue: u32,
    /// Canonical numbers whose calls the session captures.
    pub lines: Vec<String>,
    /// For sessions made by a recurring rule: the rule's name, and the date
    /// the rule gave before a holiday moved it.
    pub rule: Option<String>,
    pub moved_from: Option<NaiveDate>,
}

/// The whole validated table. Immutable: a reload builds a new one.
#[derive(Debug, Clone)]
pub struct Table {
    pub source: PathBuf,
    pub name: String,
    pub numbering: NumberingPlan,
    pub main_line: u32,
    pub lines: Vec<Line>,
    pub emergency: Vec<EmergencyLine>,
    pub trunks: Vec<Trunk>,
    pub queues: Vec<Queue>,
    pub seats: Vec<Seat>,
    pub units: Vec<String>,
    pub sessions: Vec<LeaderSession>,
    pub calendar: WorkCalendar,
    /// Working days a leader-session callback ticket is due in.
    pub ticket_due_working_days: u32,
    pub leader: LeaderSettings,
    pub tickets: TicketSettings,
    pub callbacks: CallbackSettings,
    pub metrics_listen: SocketAddr,
    pub sip: SipSettings,
    pub prompts_dir: PathBuf,
    pub media: MediaSettings,
    pub acd: AcdSettings,
    /// `[[api.tokens]]`: the control API's bearer tokens.
    pub api_tokens: Vec<ApiToken>,
    /// `[records] jsonl`: each call record also as a JSON line here.
    pub records_jsonl: Option<PathBuf>,
    pub(crate) line_index: FxHashMap<u64, u32>,
    pub(crate) emergency_index: FxHashMap<u64, u32>,
    pub(crate) barred_callers: FxHashSet<u64>,
}

impl Table {
    pub fn line(&self, number: &str) -> Option<&Line> {
        let n = super::Number::from_digits(number).ok()?;
        self.line_index
            .get(&n.key())
            .map(|&i| &self.lines[i as usize])
    }

    pub fn emergency_line(&self, number: &str) -> Option<&EmergencyLine> {
        let n = super::Number::from_digits(number).ok()?;
        self.emergency_index
            .get(&n.key())
            .map(|&i| &self.emergency[i as usize])
    }

    pub fn trunk(&self, id: &str) -> Option<&Trunk> {
        self.trunks.iter().find(|t| t.id == id)
    }

    pub fn carrier_trunks(&self) -> impl Iterator<Item = &Trunk> {
        self.trunks.iter().filter(|t| t.role == TrunkRole::Carrier)
    }

    pub fn main_line(&self) -> &Line {
        &self.lines[self.main_line as usize]
    }

    pub fn barred_caller_count(&self) -> usize {
        self.barred_callers.len()
    }
}
