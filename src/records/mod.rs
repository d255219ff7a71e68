//! Call records (CDR): one per call when it ends, in the ticket store (the
//! same SQLite file or PostgreSQL database) and, when `[records] jsonl`
//! names a file, as one JSON line each. `hotline cdr export` reads them
//! back; `hotline report` builds the monthly brief from them.
//!
//! A record says who called what and what became of it: the line and how
//! it was routed, the queue and the wait, every seat offered and the one
//! that answered, the talk time, each hand-off with its outcome, the
//! recordings, the result and how the call ended on the wire.

pub mod builder;
pub mod export;
pub mod report;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

fn trunk() -> String {
    "trunk".into()
}

/// A seat's or supervisor's hand-off during the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    /// `blind`, `attended`, `three_way`, `emergency`.
    pub kind: String,
    pub seat: String,
    pub number: String,
    /// The target's trunk id, `seat`, or `none`.
    pub target: String,
    /// `completed`, `busy`, `no_answer`, `failed`, `refused`, …
    pub result: String,
}

/// One finished call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The caller's SIP Call-ID.
    pub call_id: String,
    /// The gateway's own number for the call (restarts at 1 with the
    /// daemon; with `started`, unique).
    pub call: u64,
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
    pub caller: Option<String>,
    pub dialed: String,
    /// The canonical line whose rules applied.
    pub line: String,
    /// How it was routed: `queue`, `direct`, `sub_centre`, `emergency`,
    /// `leader_session`, `reject`.
    pub kind: String,
    /// `trunk` (a call that came in) or `seat` (one a seat placed: the
    /// monthly report counts only calls that came in).
    #[serde(default = "trunk")]
    pub origin: String,
    pub unit: Option<String>,
    pub queue: Option<String>,
    /// Seconds from joining the queue to a seat's answer (or to leaving).
    pub wait: Option<f64>,
    /// Every seat rung, in order, once each.
    pub seats_offered: Vec<String>,
    pub answered_by: Option<String>,
    /// Seconds from the answer (seat or trunk) to the end.
    pub talk: Option<f64>,
    pub handoffs: Vec<Handoff>,
    pub recordings: Vec<String>,
    /// `completed`, `cancelled`, `abandoned`, `no_answer`, `failed`,
    /// `unavailable`, `rejected`, `ticket`.
    pub result: String,
    /// How it ended on the wire: `caller_bye`, `far_bye` (the seat or the
    /// trunk), `operator`, `shutdown`, or the final status we answered
    /// (`480`, `486`, `503`, …).
    pub end_reason: String,
    /// The callback ticket the caller was told, if any.
    pub ticket: Option<String>,
}

/// Records wait at most this many for the writer; beyond, a record is
/// dropped (logged and counted), never waited for.
pub const WRITER_BACKLOG: usize = 65_536;

/// The most records written in one transaction.
const BATCH: usize = 512;

/// How long the writer gathers records after the first before it commits:
/// at thousands of calls a second, a few commits a second instead of one
/// fsync per call (a record is in the store at most this much later; no
/// one is told anything on the strength of it).
const GATHER: std::time::Duration = std::time::Duration::from_millis(50);

/// Writes call records on a thread of its own, in batches: one transaction
/// (one fsync) for all the records waiting, so thousands of calls a second
/// cost a few commits, and a call's end never waits on the store (nor
/// fills the runtime's blocking threads).
#[derive(Clone)]
pub struct Writer {
    /// Unbounded (no slots allocated ahead), with the backlog counted
    /// apart: a bounded channel would hold memory for every slot from the
    /// start.
    tx: std::sync::mpsc::Sender<CallRecord>,
    waiting: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    failed: prometheus::IntCounter,
}

impl Writer {
    /// Starts the writer over `store`, appending each record also to
    /// `jsonl` (as the table says now) when set.
    pub fn spawn(
        store: std::sync::Arc<dyn crate::tickets::Store>,
        jsonl: impl Fn() -> Option<std::path::PathBuf> + Send + 'static,
        failed: prometheus::IntCounter,
    ) -> Writer {
        let (tx, rx) = std::sync::mpsc::channel::<CallRecord>();
        let waiting = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let taken = waiting.clone();
        let counter = failed.clone();
        let spawned = std::thread::Builder::new()
            .name("call-records".into())
            .spawn(move || {
                let take = |batch: &mut Vec<CallRecord>| {
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(r) => batch.push(r),
                            Err(_) => break,
                        }
                    }
                };
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    take(&mut batch);
                    // Short of a full batch: asleep while more gather, then
                    // taken at once. A writer waiting in the channel would
                    // be woken by every call's record (a futex wake-up on
                    // the sending worker each time).
                    if batch.len() < BATCH {
                        std::thread::sleep(GATHER);
                        take(&mut batch);
                    }
                    if let Some(path) = jsonl() {
                        append_jsonl(&path, &batch);
                    }
                    if let Err(e) = store.record_calls(&batch) {
                        counter.inc_by(batch.len() as u64);
                        tracing::error!(error = %e, records = batch.len(), "call records not stored");
                    }
                    // Counted down once written: [`Writer::drain`] waits
                    // for this.
                    taken.fetch_sub(batch.len(), std::sync::atomic::Ordering::Relaxed);
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the call-record writer; records are not kept");
        }
        Writer {
            tx,
            waiting,
            failed,
        }
    }

    /// Waits (at most `limit`) until every record handed over is written:
    /// at shutdown, so the process does not exit under the last batch.
    /// Whether all were.
    pub async fn drain(&self, limit: std::time::Duration) -> bool {
        let until = std::time::Instant::now() + limit;
        while self.waiting.load(std::sync::atomic::Ordering::Relaxed) > 0 {
            if std::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        true
    }

    /// Hands `record` to the writer; never waits.
    pub fn keep(&self, record: CallRecord) {
        use std::sync::atomic::Ordering;
        let why = if self.waiting.load(Ordering::Relaxed) >= WRITER_BACKLOG {
            "the writer is behind"
        } else {
            self.waiting.fetch_add(1, Ordering::Relaxed);
            match self.tx.send(record) {
                Ok(()) => return,
                Err(_) => {
                    self.waiting.fetch_sub(1, Ordering::Relaxed);
                    "the writer stopped"
                }
            }
        };
        self.failed.inc();
        tracing::warn!(why, "call record dropped");
    }
}

fn append_jsonl(path: &std::path::Path, batch: &[CallRecord]) {
    let mut text = String::new();
    for r in batch {
        text += &serde_json::to_string(r).unwrap_or_default();
        text.push('\n');
    }
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "call records not written to the JSON-lines file");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn record(n: u64) -> CallRecord {
        let started = Utc.timestamp_opt(1_796_000_000 + n as i64, 0).unwrap();
        CallRecord {
            call_id: format!("{n}@carrier"),
            call: n,
            started,
            ended: started,
            caller: None,
            dialed: "12345".into(),
            line: "12345".into(),
            kind: "queue".into(),
            origin: "trunk".into(),
            unit: None,
            queue: None,
            wait: None,
            seats_offered: vec![],
            answered_by: None,
            talk: None,
            handoffs: vec![],
            recordings: vec![],
            result: "abandoned".into(),
            end_reason: "caller_bye".into(),
            ticket: None,
        }
    }

    #[test]
    fn the_writer_keeps_every_record_in_batches_and_the_json_lines_too() {
        let dir = std::env::temp_dir().join(format!("hotline-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = crate::tickets::open("sqlite:records.db", &dir).unwrap();
        let failed = prometheus::IntCounter::new("failed", "failed").unwrap();
        let jsonl = dir.join("calls.jsonl");
        let path = jsonl.clone();
        let writer = Writer::spawn(store.clone(), move || Some(path.clone()), failed.clone());
        for n in 0..2000 {
            writer.keep(record(n));
        }
        let all = |s: &dyn crate::tickets::Store| {
            s.call_records(
                Utc.timestamp_opt(0, 0).unwrap(),
                Utc.timestamp_opt(2_000_000_000, 0).unwrap(),
            )
            .unwrap()
        };
        let mut kept = Vec::new();
        for _ in 0..200 {
            kept = all(&*store);
            if kept.len() == 2000 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        assert_eq!(kept.len(), 2000);
        assert_eq!(kept[1999], record(1999));
        assert_eq!(failed.get(), 0);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        assert!(rt.block_on(writer.drain(std::time::Duration::from_secs(5))));
        let lines = std::fs::read_to_string(&jsonl).unwrap();
        assert_eq!(lines.lines().count(), 2000);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
