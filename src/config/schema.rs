//! The shape of `routing.toml` as written, before validation. Every value an
//! operator can get wrong is kept with its source span, so the validator can
//! say where; unknown keys are collected separately (see [`super::load`]).
//! The README's "routing.toml reference" documents each key.

use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
pub struct RawConfig {
    /// 责任单位: every unit a line, emergency number or session may name.
    #[serde(default)]
    pub units: Vec<S<String>>,
    pub gateway: S<RawGateway>,
    #[serde(default)]
    pub metrics: Option<S<RawMetrics>>,
    #[serde(default)]
    pub media: Option<S<RawMedia>>,
    #[serde(default)]
    pub sip: Option<S<RawSip>>,
    #[serde(default)]
    pub trunks: Vec<S<RawTrunk>>,
    #[serde(default)]
    pub queues: Vec<S<RawQueue>>,
    #[serde(default)]
    pub acd: Option<S<RawAcd>>,
    #[serde(default)]
    pub lines: Vec<S<RawLine>>,
    #[serde(default)]
    pub emergency: Vec<S<RawEmergency>>,
    #[serde(default)]
    pub seats: Vec<S<RawSeat>>,
    #[serde(default)]
    pub leader: Option<S<RawLeader>>,
    #[serde(default)]
    pub tickets: Option<S<RawTickets>>,
    #[serde(default)]
    pub callbacks: Option<S<RawCallbacks>>,
    pub calendar: S<RawCalendar>,
    #[serde(default)]
    pub callers: Option<S<RawCallers>>,
    #[serde(default)]
    pub api: Option<S<RawApi>>,
    #[serde(default)]
    pub records: Option<S<RawRecords>>,
}

/// `[records]`: call records, besides the store.
#[derive(Debug, Default, Deserialize)]
pub struct RawRecords {
    /// Also append each record as one JSON line to this file (relative to
    /// the table's folder).
    #[serde(default)]
    pub jsonl: Option<S<String>>,
}

/// `[api]`: who may use the control API and the wallboard.
#[derive(Debug, Default, Deserialize)]
pub struct RawApi {
    #[serde(default)]
    pub tokens: Vec<S<RawApiToken>>,
}

/// `[[api.tokens]]`: one bearer token, its name (for the log) and role.
#[derive(Deserialize)]
pub struct RawApiToken {
    pub name: S<String>,
    pub role: S<String>,
    /// The SHA-256 of the token, hex (production).
    #[serde(default)]
    pub token_sha256: Option<S<String>>,
    /// The token itself (demos; `check` warns).
    #[serde(default)]
    pub token: Option<S<String>>,
}

impl std::fmt::Debug for RawApiToken {
    /// The token is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawApiToken")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
pub struct RawGateway {
    pub name: String,
    pub country_code: S<String>,
    pub area_code: S<String>,
    pub timezone: S<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawMetrics {
    pub listen: S<String>,
}

/// `[sip]`: listening addresses, digest realm, RFC 3261 timers, ring limits.
#[derive(Debug, Default, Deserialize)]
pub struct RawSip {
    #[serde(default)]
    pub listen_udp: Option<S<String>>,
    #[serde(default)]
    pub listen_tcp: Option<S<String>>,
    /// The address written in Via and Contact when listening on 0.0.0.0.
    #[serde(default)]
    pub advertise: Option<S<String>>,
    #[serde(default)]
    pub realm: Option<S<String>>,
    /// Digest challenges offered, most preferred first.
    #[serde(default)]
    pub digest_algorithms: Option<Vec<S<String>>>,
    #[serde(default)]
    pub t1_ms: Option<S<u64>>,
    #[serde(default)]
    pub t2_ms: Option<S<u64>>,
    #[serde(default)]
    pub t4_ms: Option<S<u64>>,
    #[serde(default)]
    pub seat_ring_seconds: Option<S<u64>>,
    #[serde(default)]
    pub max_ring_seconds: Option<S<u64>>,
    #[serde(default)]
    pub max_register_expires: Option<S<u64>>,
    /// A seat or trunk that sends no response at all (not even 100) this
    /// long is given up for the next target.
    #[serde(default)]
    pub response_timeout_ms: Option<S<u64>>,
    /// OPTIONS probes of the trunks: every so many seconds (0: off), and
    /// how many unanswered in a row mark a trunk down.
    #[serde(default)]
    pub trunk_probe_interval_seconds: Option<S<u64>>,
    #[serde(default)]
    pub trunk_probe_failures: Option<S<u64>>,
    /// `Retry-After` on the 503 of an emergency call no trunk took.
    #[serde(default)]
    pub emergency_retry_after_seconds: Option<S<u64>>,
    /// TCP connections one address may hold open (trunks excepted).
    #[serde(default)]
    pub tcp_max_per_source: Option<S<u64>>,
    /// Contacts one seat may register at once (the oldest give way).
    #[serde(default)]
    pub max_contacts_per_seat: Option<S<u64>>,
    /// Serve seats with demo passwords on a non-loopback address anyway.
    #[serde(default)]
    pub allow_demo_passwords: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct RawMedia {
    pub prompts_dir: S<String>,
    /// RTP ports handed to legs, "20000-29999".
    #[serde(default)]
    pub rtp_ports: Option<S<String>>,
    /// The IP our RTP sockets bind and our SDP names; default: SIP's.
    #[serde(default)]
    pub rtp_address: Option<S<String>>,
    #[serde(default)]
    pub media_timeout_seconds: Option<S<u64>>,
    /// Anchor media (default true); false relays SDP untouched.
    #[serde(default)]
    pub anchor: Option<bool>,
    /// Where recordings go (relative to this file); unset: no recording.
    #[serde(default)]
    pub recordings_dir: Option<S<String>>,
    /// Which calls are recorded: "leader_sessions" (default) or "all".
    #[serde(default)]
    pub record: Option<S<String>>,
    /// File naming below recordings_dir: {date} {time} {call} {leg}.
    #[serde(default)]
    pub recording_name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawTrunk {
    pub id: S<String>,
    #[serde(default)]
    pub name: Option<String>,
    pub role: S<String>,
    pub uri: S<String>,
    #[serde(default)]
    pub level: Option<S<String>>,
    /// Source addresses allowed to send calls on this trunk; defaults to
    /// the URI's host when it is an IP address.
    #[serde(default)]
    pub sources: Vec<S<String>>,
    /// Trunks of the same role tried in turn when this one fails or is
    /// down.
    #[serde(default)]
    pub alternates: Vec<S<String>>,
    /// Probe this trunk with OPTIONS (default true).
    #[serde(default)]
    pub probe: Option<bool>,
    /// How calls from it must arrive: "any" (default), "udp" or "tcp".
    #[serde(default)]
    pub transport: Option<S<String>>,
    /// The source ports its calls come from; default any.
    #[serde(default)]
    pub source_ports: Vec<S<u64>>,
}

/// `[[queues]]`: every key but `id` and `skill` has a default (see
/// `validate::build_queue`).
#[derive(Debug, Deserialize)]
pub struct RawQueue {
    pub id: S<String>,
    #[serde(default)]
    pub name: Option<String>,
    pub skill: S<String>,
    /// "longest_idle" (default), "round_robin", "fewest_calls", "ring_all".
    #[serde(default)]
    pub strategy: Option<S<String>>,
    #[serde(default)]
    pub ring_seconds: Option<S<u64>>,
    #[serde(default)]
    pub wrap_up_seconds: Option<S<u64>>,
    /// 0: never announce position and wait.
    #[serde(default)]
    pub announce_seconds: Option<S<u64>>,
    #[serde(default)]
    pub service_level_seconds: Option<S<u64>>,
    #[serde(default)]
    pub max_callers: Option<S<u64>>,
    #[serde(default)]
    pub max_wait_seconds: Option<S<u64>>,
    /// A caller told a longer wait than this is offered a callback in its
    /// turn (press *); unset: never.
    #[serde(default)]
    pub callback_offer_after_seconds: Option<S<u64>>,
    /// "busy" or "queue:<id>", like `overflow` and `exit_action`.
    #[serde(default)]
    pub join_empty: Option<S<String>>,
    #[serde(default)]
    pub overflow: Option<S<String>>,
    /// One key: 0-9, `*` or `#`.
    #[serde(default)]
    pub exit_key: Option<S<String>>,
    #[serde(default)]
    pub exit_action: Option<S<String>>,
    #[serde(default)]
    pub expert_wait_seconds: Option<S<u64>>,
    #[serde(default)]
    pub widen_after_seconds: Option<S<u64>>,
    #[serde(default)]
    pub default_handle_seconds: Option<S<u64>>,
    #[serde(default)]
    pub max_missed_offers: Option<S<u64>>,
    #[serde(default)]
    pub short_abandon_seconds: Option<S<u64>>,
}

/// `[tickets]`: where callback tickets are stored.
#[derive(Debug, Default, Deserialize)]
pub struct RawTickets {
    /// `sqlite:PATH` (relative to this file) or `postgres://…`.
    #[serde(default)]
    pub store: Option<S<String>>,
    /// Where callers' spoken requests are written, relative to this file.
    #[serde(default)]
    pub requests_dir: Option<S<String>>,
    /// The first retry of a failed delivery waits this long; each next
    /// one twice as long.
    #[serde(default)]
    pub dispatch_retry_seconds: Option<S<u64>>,
    /// Deliveries tried this often are given up (dead-lettered).
    #[serde(default)]
    pub dispatch_max_attempts: Option<S<u64>>,
    /// Units' endpoints and API tokens.
    #[serde(default)]
    pub units: Vec<S<RawTicketUnit>>,
}

impl std::fmt::Debug for RawTicketUnit {
    /// The secret and the token are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawTicketUnit")
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

/// `[[tickets.units]]`: where a unit's tickets are delivered (a webhook,
/// signed per Standard Webhooks), and the token it uses the API with.
#[derive(Deserialize)]
pub struct RawTicketUnit {
    pub unit: S<String>,
    #[serde(default)]
    pub webhook_url: Option<S<String>>,
    /// `whsec_` and the base64 of the signing key.
    #[serde(default)]
    pub webhook_secret: Option<S<String>>,
    #[serde(default)]
    pub api_token: Option<S<String>>,
}

/// `[callbacks]`: calling citizens back once their ticket is done (回访).
#[derive(Debug, Default, Deserialize)]
pub struct RawCallbacks {
    /// Default true: done tickets are called back.
    #[serde(default)]
    pub enabled: Option<S<bool>>,
    /// The queue whose seats make the callbacks; default the main line's.
    #[serde(default)]
    pub queue: Option<S<String>>,
    /// Local hours callbacks are made in, "HH:MM-HH:MM" (default
    /// "08:00-21:00").
    #[serde(default)]
    pub calling_hours: Option<S<String>>,
    #[serde(default)]
    pub max_attempts: Option<S<u64>>,
    /// The wait after the first unanswered attempt; each next one twice
    /// as long.
    #[serde(default)]
    pub retry_seconds: Option<S<u64>>,
    /// How long the citizen's phone rings.
    #[serde(default)]
    pub ring_seconds: Option<S<u64>>,
}

/// `[acd]`: the queue event log and the seats' feature codes.
#[derive(Debug, Default, Deserialize)]
pub struct RawAcd {
    /// JSON-lines queue event log, relative to this file; unset: off.
    #[serde(default)]
    pub queue_log: Option<S<String>>,
    /// Dialled from a seat's phone: pause, resume taking calls.
    #[serde(default)]
    pub pause_code: Option<S<String>>,
    #[serde(default)]
    pub resume_code: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
pub struct RawLine {
    pub number: S<String>,
    pub name: String,
    #[serde(default)]
    pub unit: Option<S<String>>,
    pub mode: S<String>,
    #[serde(default)]
    pub remark: Option<String>,
    #[serde(default)]
    pub routes_as: Option<S<String>>,
    #[serde(default)]
    pub announcement: Option<S<String>>,
    #[serde(default)]
    pub queue: Option<S<String>>,
    #[serde(default)]
    pub skill: Option<S<String>>,
    #[serde(default)]
    pub expert_seat: Option<S<bool>>,
    #[serde(default)]
    pub level: Option<S<String>>,
    #[serde(default)]
    pub trunk: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
pub struct RawEmergency {
    pub number: S<String>,
    pub name: String,
    #[serde(default)]
    pub unit: Option<S<String>>,
    #[serde(default)]
    pub trunk: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
pub struct RawSeat {
    pub id: S<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub skills: Vec<S<String>>,
    #[serde(default)]
    pub expert_for: Vec<S<String>>,
    /// Digest password the seat's phone registers with. A seat without one
    /// cannot register.
    #[serde(default)]
    pub password: Option<S<String>>,
    /// Digest challenges offered to this seat's phone; default `[sip]`'s.
    #[serde(default)]
    pub digest_algorithms: Option<Vec<S<String>>>,
}

#[derive(Debug, Deserialize)]
pub struct RawLeader {
    pub queue: S<String>,
    #[serde(default)]
    pub lines: Vec<S<String>>,
    #[serde(default)]
    pub ticket_due_working_days: Option<S<u32>>,
    /// How long the wait-or-ticket choice waits for a key (repeated once).
    #[serde(default)]
    pub choice_timeout_seconds: Option<S<u64>>,
    /// "wait" (default) or "ticket": what a caller who presses nothing gets.
    #[serde(default)]
    pub default_choice: Option<S<String>>,
    /// The longest spoken request left with a ticket; 0: none asked for.
    #[serde(default)]
    pub message_seconds: Option<S<u64>>,
    /// Seconds of quiet that end a spoken request; 0: only `#` and
    /// `message_seconds` do.
    #[serde(default)]
    pub message_silence_seconds: Option<S<u64>>,
    /// "ticket" (default) or "main_queue": callers still waiting when the
    /// session ends.
    #[serde(default)]
    pub at_session_end: Option<S<String>>,
    #[serde(default)]
    pub start: Option<S<String>>,
    #[serde(default)]
    pub end: Option<S<String>>,
    #[serde(default)]
    pub sessions: Vec<S<RawSession>>,
    #[serde(default)]
    pub rules: Vec<S<RawRule>>,
}

#[derive(Debug, Deserialize)]
pub struct RawSession {
    pub date: S<String>,
    pub unit: S<String>,
    #[serde(default)]
    pub leader: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub start: Option<S<String>>,
    #[serde(default)]
    pub end: Option<S<String>>,
    #[serde(default)]
    pub lines: Option<Vec<S<String>>>,
}

#[derive(Debug, Deserialize)]
pub struct RawRule {
    pub name: String,
    pub weekday: S<String>,
    pub weeks_of_month: Vec<S<i64>>,
    pub from: S<String>,
    pub until: S<String>,
    #[serde(default)]
    pub if_holiday: Option<S<String>>,
    #[serde(default)]
    pub unit: Option<S<String>>,
    #[serde(default)]
    pub leader: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub start: Option<S<String>>,
    #[serde(default)]
    pub end: Option<S<String>>,
    #[serde(default)]
    pub lines: Option<Vec<S<String>>>,
}

#[derive(Debug, Deserialize)]
pub struct RawCalendar {
    #[serde(default)]
    pub weekend: Option<Vec<S<String>>>,
    pub years: Vec<S<i64>>,
    #[serde(default)]
    pub holidays: Vec<S<RawDays>>,
    #[serde(default)]
    pub workdays: Vec<S<RawDays>>,
}

#[derive(Debug, Deserialize)]
pub struct RawDays {
    pub name: String,
    /// `2023-10-01` or a range `2023-09-29..2023-10-06`.
    pub dates: S<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawCallers {
    #[serde(default)]
    pub barred: Vec<S<String>>,
}
