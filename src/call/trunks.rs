//! Trunk health: is each trunk there to take a call?
//!
//! Like Kamailio's dispatcher, every trunk calls go out to (sub-centre and
//! emergency trunks; `probe = false` opts one out) is sent an OPTIONS probe every
//! `[sip] trunk_probe_interval_seconds`; `trunk_probe_failures` probes in a
//! row without an answer mark it down, one answer marks it up again. An
//! ICMP error for its address (RFC 3261 §18.4) marks it down at once. A
//! trunk marked down is skipped when a call picks its targets, so an
//! emergency call never waits on a trunk already known to be dead.
//!
//! Sans-I/O: [`TrunkMonitor`] is told the time, the probe answers and the
//! unreachable addresses, and returns the probes to send and the changes
//! to report. Any response counts as an answer: a 403 or 404 to OPTIONS
//! still proves a SIP stack is listening there.

use crate::routing::Trunk;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Call-IDs of our probes start so; the engine hands their responses here.
pub const PROBE_CALL_ID_PREFIX: &str = "probe-";

/// A probe to send: OPTIONS to `uri` at `addr`, with this Call-ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub trunk: String,
    pub uri: String,
    pub addr: SocketAddr,
    pub call_id: String,
}

/// A trunk went up or down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub trunk: String,
    pub up: bool,
    /// Why, for the log line.
    pub reason: &'static str,
}

/// Probe settings (from `[sip]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbePolicy {
    /// `None`: no probes; trunks are down only while ICMP says so.
    pub interval: Option<Duration>,
    pub failures: u32,
}

impl ProbePolicy {
    /// How long a probe may go unanswered: until the next is due, at most
    /// 5 s (a live trunk answers OPTIONS in milliseconds).
    fn timeout(&self) -> Duration {
        self.interval
            .map_or(Duration::from_secs(5), |i| i.min(Duration::from_secs(5)))
    }
}

#[derive(Debug)]
struct State {
    id: String,
    uri: String,
    addr: Option<SocketAddr>,
    probed: bool,
    up: bool,
    failures: u32,
    next_probe: Instant,
    /// The probe awaiting an answer: its Call-ID and when it expires.
    outstanding: Option<(String, Instant)>,
}

#[derive(Debug)]
pub struct TrunkMonitor {
    trunks: Vec<State>,
    policy: ProbePolicy,
    counter: u64,
    /// Random per monitor, so a probe's answer cannot be forged.
    salt: u64,
}

impl TrunkMonitor {
    pub fn new(trunks: &[Trunk], policy: ProbePolicy, salt: u64, now: Instant) -> Self {
        let mut m = TrunkMonitor {
            trunks: Vec::new(),
            policy,
            counter: 0,
            salt,
        };
        m.reconfigure(trunks, policy, now);
        m
    }

    /// A new table: trunks keep their state by id; new ones start up and
    /// are probed at once.
    pub fn reconfigure(&mut self, trunks: &[Trunk], policy: ProbePolicy, now: Instant) {
        self.policy = policy;
        let mut old = std::mem::take(&mut self.trunks);
        for t in trunks {
            let kept = old
                .iter()
                .position(|s| s.id == t.id && s.addr == t.target)
                .map(|i| old.swap_remove(i));
            let mut state = kept.unwrap_or(State {
                id: t.id.clone(),
                uri: String::new(),
                addr: t.target,
                probed: false,
                up: true,
                failures: 0,
                next_probe: now,
                outstanding: None,
            });
            state.uri = probe_uri(&t.uri);
            // Calls go out over sub-centre and emergency trunks only; a
            // carrier trunk sends us calls and is never a target.
            state.probed = t.probe
                && t.role != crate::routing::TrunkRole::Carrier
                && t.target.is_some()
                && policy.interval.is_some();
            if !state.probed {
                // Nothing would bring it back: an unprobed trunk is up.
                state.outstanding = None;
                state.up = true;
                state.failures = 0;
            }
            self.trunks.push(state);
        }
    }

    /// Whether calls may be sent to the trunk (unknown ids are up: the
    /// monitor only ever takes trunks away).
    pub fn is_up(&self, id: &str) -> bool {
        self.trunks.iter().find(|t| t.id == id).is_none_or(|t| t.up)
    }

    /// The trunks and whether each is up, in table order.
    pub fn states(&self) -> impl Iterator<Item = (&str, bool)> {
        self.trunks.iter().map(|t| (t.id.as_str(), t.up))
    }

    /// Probes that are due, and trunks whose probe went unanswered.
    pub fn poll(&mut self, now: Instant) -> (Vec<Probe>, Vec<Change>) {
        let (mut probes, mut changes) = (Vec::new(), Vec::new());
        let policy = self.policy;
        for i in 0..self.trunks.len() {
            if !self.trunks[i].probed {
                continue;
            }
            if self.trunks[i]
                .outstanding
                .as_ref()
                .is_some_and(|o| now >= o.1)
            {
                self.trunks[i].outstanding = None;
                if let Some(c) = self.failed(i, "no answer to OPTIONS") {
                    changes.push(c);
                }
            }
            let t = &self.trunks[i];
            if t.outstanding.is_none()
                && now >= t.next_probe
                && let (Some(addr), Some(interval)) = (t.addr, policy.interval)
            {
                self.counter += 1;
                let call_id = format!(
                    "{PROBE_CALL_ID_PREFIX}{:016x}{:08x}@hotline",
                    self.salt ^ self.counter.rotate_left(32),
                    self.counter
                );
                let t = &mut self.trunks[i];
                t.outstanding = Some((call_id.clone(), now + policy.timeout()));
                t.next_probe = now + interval;
                probes.push(Probe {
                    trunk: t.id.clone(),
                    uri: t.uri.clone(),
                    addr,
                    call_id,
                });
            }
        }
        (probes, changes)
    }

    /// An answer (final response `code`) to the probe with this Call-ID.
    /// A `5xx`/`6xx` is a failure: an SBC out of service says `503`.
    pub fn on_response(&mut self, call_id: &str, code: u16) -> Option<Change> {
        let i = self
            .trunks
            .iter()
            .position(|t| t.outstanding.as_ref().is_some_and(|o| o.0 == call_id))?;
        if (100..200).contains(&code) {
            return None;
        }
        self.trunks[i].outstanding = None;
        if code >= 500 {
            return self.failed(i, "refuses OPTIONS with 5xx/6xx");
        }
        let t = &mut self.trunks[i];
        t.failures = 0;
        if t.up {
            return None;
        }
        t.up = true;
        Some(Change {
            trunk: t.id.clone(),
            up: true,
            reason: "answers OPTIONS",
        })
    }

    /// An ICMP error for `addr`: one failure for every probed trunk there
    /// (its probe, if one is out, has failed). Not "down" at once: an ICMP
    /// error is easily forged, and names no datagram. An unprobed trunk
    /// is left alone: nothing would tell us it had come back, and a call to
    /// it fails over on the ICMP error at once anyway.
    pub fn on_unreachable(&mut self, addr: SocketAddr) -> Vec<Change> {
        let mut changes = Vec::new();
        for i in 0..self.trunks.len() {
            let t = &mut self.trunks[i];
            if !(t.probed && t.addr == Some(addr)) {
                continue;
            }
            t.outstanding = None;
            if let Some(c) = self.failed(i, "unreachable (ICMP)") {
                changes.push(c);
            }
        }
        changes
    }

    /// When [`TrunkMonitor::poll`] next has something to do.
    pub fn deadline(&self) -> Option<Instant> {
        self.trunks
            .iter()
            .filter(|t| t.probed)
            .map(|t| match &t.outstanding {
                Some((_, expires)) => *expires,
                None => t.next_probe,
            })
            .min()
    }

    fn failed(&mut self, i: usize, reason: &'static str) -> Option<Change> {
        let failures = self.policy.failures;
        let t = &mut self.trunks[i];
        t.failures += 1;
        if t.up && t.failures >= failures {
            t.up = false;
            return Some(Change {
                trunk: t.id.clone(),
                up: false,
                reason,
            });
        }
        None
    }
}

/// The Request-URI of a probe: the trunk's URI without a user part.
fn probe_uri(uri: &str) -> String {
    match uri.split_once(':') {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) => format!("{scheme}:{host}"),
            None => uri.to_string(),
        },
        None => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::TrunkRole;

    fn trunk(id: &str, port: u16, probe: bool) -> Trunk {
        Trunk {
            id: id.into(),
            name: id.into(),
            uri: format!("sip:127.0.0.1:{port}"),
            role: TrunkRole::Emergency,
            level: None,
            target: Some(SocketAddr::from(([127, 0, 0, 1], port))),
            sources: Vec::new(),
            alternates: Vec::new(),
            probe,
            tcp_only: None,
            source_ports: Vec::new(),
        }
    }

    fn policy() -> ProbePolicy {
        ProbePolicy {
            interval: Some(Duration::from_secs(10)),
            failures: 2,
        }
    }

    #[test]
    fn a_trunk_goes_down_after_the_configured_unanswered_probes_and_up_at_one_answer() {
        let t0 = Instant::now();
        let mut m = TrunkMonitor::new(&[trunk("e", 5093, true)], policy(), 1, t0);
        let (probes, changes) = m.poll(t0);
        assert_eq!(probes.len(), 1, "probed at once");
        assert_eq!(probes[0].uri, "sip:127.0.0.1:5093");
        assert!(changes.is_empty());
        assert_eq!(m.deadline(), Some(t0 + Duration::from_secs(5)));
        // First probe unanswered: still up (one of two).
        let (probes, changes) = m.poll(t0 + Duration::from_secs(5));
        assert!(probes.is_empty() && changes.is_empty());
        assert!(m.is_up("e"));
        let (probes, _) = m.poll(t0 + Duration::from_secs(10));
        assert_eq!(probes.len(), 1);
        let (_, changes) = m.poll(t0 + Duration::from_secs(15));
        assert_eq!(
            changes,
            vec![Change {
                trunk: "e".into(),
                up: false,
                reason: "no answer to OPTIONS"
            }]
        );
        assert!(!m.is_up("e"));
        // Still probed while down; one answer brings it back.
        let (probes, _) = m.poll(t0 + Duration::from_secs(20));
        assert_eq!(probes.len(), 1);
        assert_eq!(m.on_response("someone else's", 200), None);
        let change = m.on_response(&probes[0].call_id, 404).expect("a change");
        assert!(change.up, "any SIP answer but 5xx/6xx means it listens");
        assert!(m.is_up("e"));
        // A late duplicate answer changes nothing.
        assert_eq!(m.on_response(&probes[0].call_id, 200), None);
        // An SBC out of service answers 503: a failure.
        let (probes, _) = m.poll(t0 + Duration::from_secs(30));
        assert_eq!(m.on_response(&probes[0].call_id, 503), None, "one of two");
        let (probes, _) = m.poll(t0 + Duration::from_secs(40));
        let down = m.on_response(&probes[0].call_id, 503).expect("down");
        assert!(!down.up);
    }

    #[test]
    fn an_answer_resets_the_count_of_failures() {
        let t0 = Instant::now();
        let mut m = TrunkMonitor::new(&[trunk("e", 5093, true)], policy(), 1, t0);
        m.poll(t0);
        m.poll(t0 + Duration::from_secs(5)); // one failure
        let (p, _) = m.poll(t0 + Duration::from_secs(10));
        m.on_response(&p[0].call_id, 200);
        m.poll(t0 + Duration::from_secs(20));
        let (_, changes) = m.poll(t0 + Duration::from_secs(25));
        assert!(changes.is_empty(), "one failure after an answer: still up");
        assert!(m.is_up("e"));
    }

    #[test]
    fn icmp_counts_as_a_failed_probe_for_the_probed_trunks_at_the_address() {
        let t0 = Instant::now();
        let mut m = TrunkMonitor::new(
            &[trunk("a", 5093, true), trunk("b", 5094, false)],
            policy(),
            1,
            t0,
        );
        // Two failures mark it down (the policy); an ICMP error is one.
        let changes = m.on_unreachable(SocketAddr::from(([127, 0, 0, 1], 5093)));
        assert!(changes.is_empty() && m.is_up("a"));
        let changes = m.on_unreachable(SocketAddr::from(([127, 0, 0, 1], 5093)));
        assert_eq!(changes.len(), 1);
        assert!(!m.is_up("a"));
        assert!(
            m.on_unreachable(SocketAddr::from(([127, 0, 0, 1], 5093)))
                .is_empty()
        );
        // Unprobed: nothing would bring it back, so ICMP leaves it up.
        assert!(
            m.on_unreachable(SocketAddr::from(([127, 0, 0, 1], 5094)))
                .is_empty()
        );
        assert!(m.is_up("b"));
    }

    #[test]
    fn unprobed_trunks_are_never_polled_and_a_reload_keeps_state_by_id() {
        let t0 = Instant::now();
        let mut m = TrunkMonitor::new(&[trunk("a", 5093, true)], policy(), 1, t0);
        m.on_unreachable(SocketAddr::from(([127, 0, 0, 1], 5093)));
        m.on_unreachable(SocketAddr::from(([127, 0, 0, 1], 5093)));
        m.reconfigure(
            &[trunk("a", 5093, true), trunk("n", 5095, true)],
            policy(),
            t0,
        );
        assert!(!m.is_up("a"), "state kept across a reload");
        assert!(m.is_up("n"), "a new trunk starts up");
        m.reconfigure(
            &[trunk("a", 5093, false), trunk("n", 5095, true)],
            policy(),
            t0,
        );
        assert!(m.is_up("a"), "no longer probed: up");
        let (probes, _) = m.poll(t0 + Duration::from_secs(30));
        assert_eq!(probes.len(), 1, "only the probed trunk");
        assert!(m.is_up("not-a-trunk"));
        let off = ProbePolicy {
            interval: None,
            failures: 2,
        };
        m.reconfigure(&[trunk("n", 5095, true)], off, t0);
        assert_eq!(m.poll(t0), (Vec::new(), Vec::new()), "probes off");
    }
}
