//! Log lines an attacker can cause, rate-limited per kind and source.
//!
//! A line per untrusted INVITE, per malformed message or per dropped
//! message turns the log into an amplifier: a flood of junk becomes a flood
//! of disk writes. [`LogLimiter`] lets the first line of a kind from a
//! source through, then at most one per interval, each saying how many like
//! it were held back; [`LogLimiter::flush`] reports what is still held back
//! once its interval has passed, so a flood that stops is summed up too.
//! Sans-I/O: time is an argument. Memory is bounded: beyond `capacity`
//! sources, events of a kind are counted under one "any source" entry.

use rustc_hash::FxHashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Entry {
    /// When the last line of this kind and source was let through.
    logged: Instant,
    /// Events held back since.
    held: u64,
}

/// What was held back, for a summary line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub kind: &'static str,
    /// `None` for the "any source" entry that takes over when full.
    pub source: Option<IpAddr>,
    pub count: u64,
}

#[derive(Debug)]
pub struct LogLimiter {
    entries: Mutex<FxHashMap<(&'static str, IpAddr), Entry>>,
    interval: Duration,
    capacity: usize,
}

/// The key of the entry that counts every source once the map is full.
const ANY: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

impl LogLimiter {
    pub fn new(interval: Duration, capacity: usize) -> Self {
        LogLimiter {
            entries: Mutex::new(FxHashMap::default()),
            interval,
            capacity: capacity.max(1),
        }
    }

    /// Whether to log an event of `kind` from `source` now: `Some(n)` with
    /// `n` like events held back since the last line, or `None` to hold
    /// this one back.
    pub fn check(&self, kind: &'static str, source: IpAddr, now: Instant) -> Option<u64> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let key = if entries.contains_key(&(kind, source)) || entries.len() < self.capacity {
            (kind, source)
        } else {
            (kind, ANY)
        };
        match entries.get_mut(&key) {
            Some(e) if now.saturating_duration_since(e.logged) < self.interval => {
                e.held += 1;
                None
            }
            Some(e) => {
                let held = std::mem::take(&mut e.held);
                e.logged = now;
                Some(held)
            }
            None => {
                entries.insert(
                    key,
                    Entry {
                        logged: now,
                        held: 0,
                    },
                );
                Some(0)
            }
        }
    }

    /// What has been held back for a whole interval (to be logged as a
    /// summary); entries quiet for an interval are forgotten.
    pub fn flush(&self, now: Instant) -> Vec<Held> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        entries.retain(|&(kind, source), e| {
            if now.saturating_duration_since(e.logged) < self.interval {
                return true;
            }
            if e.held == 0 {
                return false;
            }
            out.push(Held {
                kind,
                source: (source != ANY).then_some(source),
                count: std::mem::take(&mut e.held),
            });
            e.logged = now;
            true
        });
        out
    }
}

/// How an accept loop answers a run of failures: a pause that doubles from
/// [`AcceptErrors::FIRST_PAUSE`] to [`AcceptErrors::MAX_PAUSE`], and a log
/// line at most once per [`AcceptErrors::LOG_EVERY`] carrying the count of
/// failures not logged since. Pure: it is told the time.
#[derive(Debug, Default)]
pub struct AcceptErrors {
    pause: Option<Duration>,
    last_logged: Option<Instant>,
    suppressed: u64,
}

/// What to do about one failed accept.
#[derive(Debug, PartialEq, Eq)]
pub struct AcceptFailure {
    /// Wait this long before accepting again.
    pub pause: Duration,
    /// Log now, saying this many failures went unlogged since the last line.
    pub log: Option<u64>,
}

impl AcceptErrors {
    pub const FIRST_PAUSE: Duration = Duration::from_millis(50);
    pub const MAX_PAUSE: Duration = Duration::from_secs(1);
    pub const LOG_EVERY: Duration = Duration::from_secs(10);

    pub fn failed(&mut self, now: Instant) -> AcceptFailure {
        let pause = self
            .pause
            .map_or(Self::FIRST_PAUSE, |p| (p * 2).min(Self::MAX_PAUSE));
        self.pause = Some(pause);
        let due = self
            .last_logged
            .is_none_or(|t| now.saturating_duration_since(t) >= Self::LOG_EVERY);
        let log = if due {
            self.last_logged = Some(now);
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        };
        AcceptFailure { pause, log }
    }

    /// An accept went through: the next failure starts from the shortest
    /// pause again (the log interval still holds).
    pub fn succeeded(&mut self) {
        self.pause = None;
    }
}

/// A security event as one line that fail2ban matches
/// (`ops/fail2ban/hotline.conf`): `security: <kind> from <address>` on the
/// `security` target. Only fixed words and the source address go in: a
/// name or path the remote party chose could otherwise make the line name
/// another address. Callers pass it through a [`LogLimiter`] first, so a
/// flood from one source logs at most a line per interval.
pub fn security(kind: &'static str, from: IpAddr) {
    tracing::warn!(target: "security", "{kind} from {from}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))
    }

    #[test]
    fn the_first_line_passes_then_one_per_interval_with_the_count_held_back() {
        let t0 = Instant::now();
        let l = LogLimiter::new(Duration::from_secs(10), 100);
        assert_eq!(l.check("untrusted", ip(1), t0), Some(0));
        for i in 1..=1000 {
            assert_eq!(
                l.check("untrusted", ip(1), t0 + Duration::from_millis(i)),
                None
            );
        }
        // Another source and another kind are their own.
        assert_eq!(l.check("untrusted", ip(2), t0), Some(0));
        assert_eq!(l.check("malformed", ip(1), t0), Some(0));
        assert_eq!(
            l.check("untrusted", ip(1), t0 + Duration::from_secs(10)),
            Some(1000)
        );
    }

    #[test]
    fn a_flood_that_stops_is_summed_up_by_flush_and_then_forgotten() {
        let t0 = Instant::now();
        let l = LogLimiter::new(Duration::from_secs(10), 100);
        l.check("queue_full", ip(1), t0);
        for _ in 0..50 {
            l.check("queue_full", ip(1), t0 + Duration::from_secs(1));
        }
        assert!(l.flush(t0 + Duration::from_secs(5)).is_empty(), "not yet");
        assert_eq!(
            l.flush(t0 + Duration::from_secs(10)),
            vec![Held {
                kind: "queue_full",
                source: Some(ip(1)),
                count: 50
            }]
        );
        assert!(l.flush(t0 + Duration::from_secs(20)).is_empty());
        // Forgotten: the next event is a first line again.
        assert_eq!(
            l.check("queue_full", ip(1), t0 + Duration::from_secs(21)),
            Some(0)
        );
    }

    #[test]
    fn memory_is_bounded_by_counting_the_overflow_under_any_source() {
        let t0 = Instant::now();
        let l = LogLimiter::new(Duration::from_secs(10), 3);
        for n in 0..3 {
            assert_eq!(l.check("untrusted", ip(n), t0), Some(0));
        }
        // Full: the fourth source onwards share one entry.
        assert_eq!(l.check("untrusted", ip(10), t0), Some(0));
        for n in 11..200 {
            assert_eq!(l.check("untrusted", ip(n), t0), None);
        }
        let held = l.flush(t0 + Duration::from_secs(10));
        assert_eq!(
            held,
            vec![Held {
                kind: "untrusted",
                source: None,
                count: 189
            }]
        );
    }

    #[test]
    fn accept_failures_back_off_to_a_second_and_log_once_per_interval() {
        let mut e = AcceptErrors::default();
        let t0 = Instant::now();
        let first = e.failed(t0);
        assert_eq!(first.pause, Duration::from_millis(50));
        assert_eq!(first.log, Some(0));
        let pauses: Vec<_> = (1..8)
            .map(|i| e.failed(t0 + Duration::from_millis(i)).pause.as_millis())
            .collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1000, 1000, 1000]);
        // Seven failures went unlogged; the next line, ten seconds on, says so.
        assert_eq!(e.failed(t0 + Duration::from_secs(9)).log, None);
        let later = e.failed(t0 + Duration::from_secs(10));
        assert_eq!(later.log, Some(8));
        // Success resets the pause, not the log interval.
        e.succeeded();
        let again = e.failed(t0 + Duration::from_secs(11));
        assert_eq!(again.pause, Duration::from_millis(50));
        assert_eq!(again.log, None);
    }
}
