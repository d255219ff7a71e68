//! The ticket store: one small interface ([`Store`]), one implementation of
//! it ([`SqlStore`]) written once in plain SQL that SQLite and PostgreSQL
//! both speak, over a backend that gives it transactions
//! ([`super::sqlite`], [`super::postgres`]).
//!
//! Every change is one transaction, committed durably before the call
//! returns: a ticket, its first history event and its dispatch record (the
//! outbox a dispatcher delivers from) are written together or not at all,
//! so a ticket number is told to a caller only once it is stored, and a
//! crash at any instant leaves no half-written ticket. The number's serial
//! comes from a per-day counter updated in the same transaction, so two
//! gateways sharing one PostgreSQL never hand out the same number.
//!
//! The schema is versioned ([`MIGRATIONS`]); opening a store applies the
//! missing versions in one transaction.

use super::callback::{Attempt, Job, Outcome as CallbackOutcome};
use super::model::{
    Action, Created, Event, Filter, Kind, NewTicket, Refused, SessionRef, Status, Ticket, TicketId,
    transition,
};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use std::path::Path;
use std::sync::Arc;

/// What the daemon, the API and the CLI ask of a ticket store.
pub trait Store: Send + Sync {
    /// Stores a new ticket — or, when the caller already has an open one
    /// for the same unit, returns that one (`existing`).
    fn create(&self, new: &NewTicket, now: DateTime<Utc>) -> Result<Created, StoreError>;
    fn get(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError>;
    /// Tickets the filter admits, oldest first.
    fn list(&self, filter: &Filter) -> Result<Vec<Ticket>, StoreError>;
    /// Takes a step on a ticket, if its status allows (see
    /// [`super::model::transition`]), by `by` (a unit, `operator`,
    /// `callback`).
    fn apply(
        &self,
        id: &TicketId,
        action: &Action,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Ticket, StoreError>;
    /// The ticket's steps, in order.
    fn history(&self, id: &TicketId) -> Result<Vec<Event>, StoreError>;
    /// Deliveries due by `now` (the outbox), oldest first.
    fn pending_dispatches(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Dispatch>, StoreError>;
    /// A ticket's deliveries, each with its state.
    fn dispatches(&self, id: &TicketId) -> Result<Vec<Dispatch>, StoreError>;
    /// Gives a ticket's dead deliveries another round of attempts (an
    /// operator fixed the unit's endpoint): how many.
    fn redeliver(&self, id: &TicketId, now: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Per unit with open tickets: how many are open, and how many of
    /// those are overdue at `now`.
    fn open_by_unit(&self, now: DateTime<Utc>) -> Result<Vec<(String, i64, i64)>, StoreError>;
    /// What became of a delivery; delivered (or left to be pulled), the
    /// ticket is dispatched in the same transaction.
    fn dispatched(
        &self,
        webhook_id: &str,
        result: &DispatchResult,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Callbacks (回访) due by `now`, oldest first: pending and due, or
    /// held by a gateway whose lease ran out (it stopped mid-call).
    fn due_callbacks(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>, StoreError>;
    /// Takes a due callback until `lease_until`: the job as now held;
    /// `None` when another gateway sharing the store took it first.
    fn claim_callback(
        &self,
        job: &Job,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Job>, StoreError>;
    /// What a callback attempt came to, recorded with the seat that made
    /// it; the citizen's answer to the survey moves the ticket (visited or
    /// reopened) in the same transaction. `next`: when to try again
    /// (`None`: the callback is over, made or given up). Only the job as
    /// it was read or claimed moves: one another gateway took since (a
    /// lease run out) is left to it.
    fn callback_attempted(
        &self,
        job: &Job,
        outcome: CallbackOutcome,
        seat: Option<&str>,
        next: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// A ticket's callbacks and every attempt made, in order.
    fn callbacks(&self, id: &TicketId) -> Result<(Vec<Job>, Vec<Attempt>), StoreError>;
    /// Keeps finished calls' records, all in one transaction (each once:
    /// the same call again is ignored).
    fn record_calls(&self, records: &[crate::records::CallRecord]) -> Result<(), StoreError>;
    /// [`Store::record_calls`] of one.
    fn record_call(&self, record: &crate::records::CallRecord) -> Result<(), StoreError> {
        self.record_calls(std::slice::from_ref(record))
    }
    /// Records of calls started in `[since, until)`, oldest first.
    fn call_records(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<crate::records::CallRecord>, StoreError>;
    /// What the store is, for logs (`sqlite:/path`, `postgres://host/db`,
    /// never a password).
    fn describe(&self) -> String;
}

/// One delivery of a ticket to its unit (a row of the outbox).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dispatch {
    /// The id receivers dedupe on: the same across retries.
    pub webhook_id: String,
    pub ticket_id: String,
    pub unit: String,
    /// `created`, `reopened`, …: what the delivery announces.
    pub event: String,
    pub created: DateTime<Utc>,
    pub attempts: i64,
    pub next_at: DateTime<Utc>,
    /// `pending`, `delivered`, `pull` (the unit pulls it from the API),
    /// `dead` (given up: visible, for an operator).
    pub state: String,
    pub last_error: Option<String>,
}

/// What a delivery attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DispatchResult {
    Delivered,
    /// The unit has no endpoint: it pulls its tickets.
    Pulled,
    /// Try again at `at`.
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    /// Given up.
    Dead {
        error: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the ticket store {store}: {reason}")]
    Open { store: String, reason: String },
    #[error("ticket store: {0}")]
    Backend(String),
    #[error("no ticket {0}")]
    NotFound(String),
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("ticket store holds a malformed row: {0}")]
    Corrupt(String),
}

/// A value bound to or read from SQL: the three kinds the schema uses.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}

impl From<Option<String>> for Value {
    fn from(s: Option<String>) -> Value {
        s.map_or(Value::Null, Value::Text)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}

/// One open transaction: statements with `$1`, `$2`, … placeholders.
pub trait Tx {
    fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError>;
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, StoreError>;
}

/// What a database gives the store: transactions, and its few words of
/// dialect.
pub trait Backend: Send + Sync {
    /// Runs `f` in one transaction and commits it durably; an error rolls
    /// it back.
    fn transaction<T>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError>;
    /// Runs `f`, which only reads, in one transaction (SQLite: without
    /// taking the write lock, so a CLI reading never holds up a caller's
    /// ticket).
    fn read<T>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.transaction(f)
    }
    /// A statement that holds a lock keyed by `key` until the transaction
    /// ends, when the database needs one beyond its own write lock (two
    /// gateways creating a ticket for one caller at once).
    fn lock(&self, key: i64) -> Option<String>;
    /// Appended to a SELECT that reads a row about to be changed.
    fn for_update(&self) -> &'static str;
    fn describe(&self) -> String;
}

/// The schema, version by version. Plain SQL both dialects take: TEXT
/// and BIGINT columns only, times as RFC 3339 UTC text (which sorts).
pub const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE tickets (
        id TEXT PRIMARY KEY,
        callback_number TEXT NOT NULL,
        caller_number TEXT NOT NULL,
        dialed TEXT NOT NULL,
        line TEXT NOT NULL,
        unit TEXT NOT NULL,
        tag TEXT NOT NULL,
        kind TEXT NOT NULL,
        session_unit TEXT,
        session_leader TEXT,
        session_title TEXT,
        session_date TEXT,
        created TEXT NOT NULL,
        updated TEXT NOT NULL,
        due TEXT NOT NULL,
        due_date TEXT NOT NULL,
        due_approximate BIGINT NOT NULL,
        status TEXT NOT NULL,
        request_recording TEXT,
        call_id TEXT NOT NULL,
        recordings TEXT NOT NULL,
        reply TEXT,
        reason TEXT
    );
    CREATE INDEX tickets_by_unit ON tickets (unit, status);
    CREATE INDEX tickets_by_caller ON tickets (unit, callback_number);
    CREATE TABLE ticket_serials (day TEXT PRIMARY KEY, last BIGINT NOT NULL);
    CREATE TABLE ticket_events (
        ticket_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        at TEXT NOT NULL,
        action TEXT NOT NULL,
        by_whom TEXT NOT NULL,
        status TEXT NOT NULL,
        detail TEXT,
        PRIMARY KEY (ticket_id, seq)
    );
    CREATE TABLE ticket_dispatches (
        webhook_id TEXT PRIMARY KEY,
        ticket_id TEXT NOT NULL,
        unit TEXT NOT NULL,
        event TEXT NOT NULL,
        created TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        next_at TEXT NOT NULL,
        state TEXT NOT NULL,
        last_error TEXT
    );
    CREATE INDEX ticket_dispatches_due ON ticket_dispatches (state, next_at)",
    ),
    (
        2,
        // Callbacks owed (one per round: a ticket done again after a
        // reopen is called back again) and every attempt made. Tickets
        // already done when the store is upgraded are owed none: an
        // upgrade never starts calling a backlog.
        "CREATE TABLE ticket_callbacks (
        ticket_id TEXT NOT NULL,
        round BIGINT NOT NULL,
        number TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        next_at TEXT NOT NULL,
        state TEXT NOT NULL,
        lease_until TEXT,
        result TEXT,
        PRIMARY KEY (ticket_id, round)
    );
    CREATE INDEX ticket_callbacks_due ON ticket_callbacks (state, next_at);
    CREATE TABLE ticket_callback_attempts (
        ticket_id TEXT NOT NULL,
        round BIGINT NOT NULL,
        attempt BIGINT NOT NULL,
        at TEXT NOT NULL,
        result TEXT NOT NULL,
        seat TEXT,
        PRIMARY KEY (ticket_id, round, attempt)
    )",
    ),
    (
        3,
        // What a callback is: `visit` (回访 of a done ticket, with the
        // survey) or `queue` (a caller called back in its turn).
        "ALTER TABLE ticket_callbacks ADD COLUMN kind TEXT NOT NULL DEFAULT 'visit'",
    ),
    (
        4,
        // Call records: the columns a report selects on, and the whole
        // record as JSON.
        "CREATE TABLE call_records (
        call_id TEXT NOT NULL,
        started TEXT NOT NULL,
        ended TEXT NOT NULL,
        line TEXT NOT NULL,
        kind TEXT NOT NULL,
        result TEXT NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (call_id, started)
    );
    CREATE INDEX call_records_by_start ON call_records (started)",
    ),
];

/// The lock key under which schema changes are made.
const MIGRATION_LOCK: i64 = 0x686f_746c_696e_6501;

/// Opens the store a table names: `sqlite:PATH` (relative to `base`, the
/// table's folder) or `postgres://…` / `postgresql://…`.
pub fn open(spec: &str, base: &Path) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(path) = spec.strip_prefix("sqlite:") {
        let path = base.join(path);
        let backend = super::sqlite::Sqlite::open(&path)?;
        return Ok(Arc::new(SqlStore::new(backend)?));
    }
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        let backend = super::postgres::Postgres::connect(spec)?;
        return Ok(Arc::new(SqlStore::new(backend)?));
    }
    Err(StoreError::Open {
        store: super::postgres::redact(spec),
        reason: "a store is sqlite:PATH or postgres://…".into(),
    })
}

/// The store, written once over any [`Backend`].
pub struct SqlStore<B: Backend> {
    db: B,
}

impl<B: Backend> SqlStore<B> {
    /// Brings the schema up to date (under a lock, so two gateways starting
    /// at once do not both migrate).
    pub fn new(db: B) -> Result<SqlStore<B>, StoreError> {
        let lock = db.lock(MIGRATION_LOCK);
        db.transaction(&mut |tx| {
            if let Some(lock) = &lock {
                tx.query(lock, &[])?;
            }
            tx.exec(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                    version BIGINT PRIMARY KEY, applied TEXT NOT NULL)",
                &[],
            )?;
            let have = tx.query(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )?;
            let have = int(&have[0][0])?;
            for (version, sql) in MIGRATIONS {
                if *version <= have {
                    continue;
                }
                for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
                    tx.exec(statement, &[])?;
                }
                tx.exec(
                    "INSERT INTO schema_migrations (version, applied) VALUES ($1, $2)",
                    &[Value::Int(*version), time(Utc::now()).into()],
                )?;
            }
            Ok(())
        })?;
        Ok(SqlStore { db })
    }
}

const COLUMNS: &str = "id, callback_number, caller_number, dialed, line, unit, tag, kind, \
     session_unit, session_leader, session_title, session_date, created, updated, due, \
     due_date, due_approximate, status, request_recording, call_id, recordings, reply, reason";

impl<B: Backend> Store for SqlStore<B> {
    fn record_calls(&self, rs: &[crate::records::CallRecord]) -> Result<(), StoreError> {
        let mut rows = Vec::with_capacity(rs.len());
        for r in rs {
            let json = serde_json::to_string(r)
                .map_err(|e| StoreError::Corrupt(format!("call record: {e}")))?;
            rows.push([
                Value::from(r.call_id.as_str()),
                Value::from(time(r.started)),
                Value::from(time(r.ended)),
                Value::from(r.line.as_str()),
                Value::from(r.kind.as_str()),
                Value::from(r.result.as_str()),
                Value::from(json.as_str()),
            ]);
        }
        // One transaction (one fsync) for the whole batch.
        self.db.transaction(&mut |tx| {
            for params in &rows {
                tx.exec(
                    "INSERT INTO call_records (call_id, started, ended, line, kind, result, record) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                    params,
                )?;
            }
            Ok(())
        })
    }

    fn call_records(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<crate::records::CallRecord>, StoreError> {
        self.db.read(&mut |tx| {
            let rows = tx.query(
                "SELECT record FROM call_records WHERE started >= $1 AND started < $2 \
                 ORDER BY started, call_id",
                &[time(since).into(), time(until).into()],
            )?;
            rows.iter()
                .map(|r| {
                    let t = text(&r[0])?;
                    serde_json::from_str(&t)
                        .map_err(|e| StoreError::Corrupt(format!("call record: {e}")))
                })
                .collect()
        })
    }

    fn create(&self, new: &NewTicket, now: DateTime<Utc>) -> Result<Created, StoreError> {
        let lock = self.db.lock(caller_key(&new.unit, &new.callback_number));
        let for_update = self.db.for_update();
        self.db.transaction(&mut |tx| {
            if let Some(lock) = &lock {
                tx.query(lock, &[])?;
            }
            // One ticket in hand per caller and unit: the caller is told
            // the number it already has — but only for its own number
            // (whoever keys a stranger's number must not learn the
            // stranger's ticket), and only while the unit is still on it
            // (done, returned or closed: a new request is a new ticket).
            // Of the same kind: a caller asking to be called back in its
            // turn is not told a leader session's ticket instead.
            // A queue callback counts while it is still to be made (one
            // given up leaves the caller free to ask again).
            let active = if matches!(new.kind, Kind::QueueCallback | Kind::Overflow) {
                " AND EXISTS (SELECT 1 FROM ticket_callbacks c WHERE c.ticket_id = tickets.id \
                 AND c.state IN ('pending', 'calling'))"
            } else {
                ""
            };
            // Locked (PostgreSQL), as every writer of a ticket's history
            // locks it: a repeated request is added to a ticket no one
            // else is moving.
            let open = if new.callback_number == new.caller_number {
                tx.query(
                    &format!(
                        "SELECT {COLUMNS} FROM tickets \
                         WHERE unit = $1 AND callback_number = $2 AND kind = $3 \
                         AND status IN ('created', 'dispatched', 'accepted', 'extended', 'reopened'){active} \
                         ORDER BY created, id LIMIT 1{for_update}"
                    ),
                    &[
                        new.unit.as_str().into(),
                        new.callback_number.as_str().into(),
                        new.kind.as_str().into(),
                    ],
                )?
            } else {
                Vec::new()
            };
            if let Some(row) = open.first() {
                let existing = ticket(row)?;
                // What the caller said this time is not lost: the ticket it
                // has keeps it, as a request added to its history.
                if let Some(path) = &new.request_recording {
                    event(
                        tx,
                        &existing.id,
                        now,
                        "request",
                        "caller",
                        existing.status,
                        Some(path.clone()),
                    )?;
                }
                return Ok(Created {
                    ticket: existing,
                    existing: true,
                });
            }
            let day = TicketId::day(new.day);
            let serial = tx.query(
                "INSERT INTO ticket_serials (day, last) VALUES ($1, 1) \
                 ON CONFLICT (day) DO UPDATE SET last = ticket_serials.last + 1 \
                 RETURNING last",
                &[day.into()],
            )?;
            let serial = int(&serial[0][0])?;
            let id = TicketId::new(new.day, serial as u64);
            let s = new.session.as_ref();
            let at = time(now);
            tx.exec(
                &format!(
                    "INSERT INTO tickets ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
                     $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)"
                ),
                &[
                    id.as_str().into(),
                    new.callback_number.as_str().into(),
                    new.caller_number.as_str().into(),
                    new.dialed.as_str().into(),
                    new.line.as_str().into(),
                    new.unit.as_str().into(),
                    new.tag.as_str().into(),
                    new.kind.as_str().into(),
                    s.and_then(|s| s.unit.clone()).into(),
                    s.and_then(|s| s.leader.clone()).into(),
                    s.and_then(|s| s.title.clone()).into(),
                    s.map(|s| s.date.to_string()).into(),
                    at.as_str().into(),
                    at.as_str().into(),
                    time(new.due).into(),
                    new.due_date.to_string().into(),
                    Value::Int(i64::from(new.due_approximate)),
                    Status::Created.as_str().into(),
                    new.request_recording.clone().into(),
                    new.call_id.as_str().into(),
                    serde_json::to_string(&new.recordings)
                        .unwrap_or_else(|_| "[]".into())
                        .into(),
                    Value::Null,
                    Value::Null,
                ],
            )?;
            event(tx, &id, now, "create", "caller", Status::Created, None)?;
            if new.kind == Kind::Overflow {
                // Called back once a seat is free: any gateway's runner
                // makes it, as a callback of its own.
                tx.exec(
                    "INSERT INTO ticket_callbacks \
                     (ticket_id, round, number, attempts, next_at, state, kind) \
                     VALUES ($1, 1, $2, 0, $3, 'pending', 'queue')",
                    &[
                        id.as_str().into(),
                        new.callback_number.as_str().into(),
                        at.as_str().into(),
                    ],
                )?;
            } else if new.kind == Kind::QueueCallback {
                // No unit's item: the hotline calls back in the caller's
                // turn. The job is held at once by the gateway that took
                // the call (it keeps the caller's place); should that
                // gateway stop, the lease runs out and any gateway makes it.
                tx.exec(
                    "INSERT INTO ticket_callbacks \
                     (ticket_id, round, number, attempts, next_at, state, lease_until, kind) \
                     VALUES ($1, 1, $2, 0, $3, 'calling', $4, 'queue')",
                    &[
                        id.as_str().into(),
                        new.callback_number.as_str().into(),
                        at.as_str().into(),
                        time(now + chrono::Duration::hours(2)).into(),
                    ],
                )?;
            } else {
                outbox(tx, &id, &new.unit, "created", now)?;
            }
            Ok(Created {
                ticket: Ticket {
                    id: id.clone(),
                    new: new.clone(),
                    status: Status::Created,
                    created: parse_time(&at)?,
                    updated: parse_time(&at)?,
                    reply: None,
                    reason: None,
                },
                existing: false,
            })
        })
    }

    fn get(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        self.db.read(&mut |tx| {
            let rows = tx.query(
                &format!("SELECT {COLUMNS} FROM tickets WHERE id = $1"),
                &[id.as_str().into()],
            )?;
            rows.first().map(|r| ticket(r)).transpose()
        })
    }

    fn list(&self, filter: &Filter) -> Result<Vec<Ticket>, StoreError> {
        self.db.read(&mut |tx| {
            let mut sql = format!("SELECT {COLUMNS} FROM tickets WHERE 1 = 1");
            let mut params = Vec::new();
            if let Some(unit) = &filter.unit {
                params.push(Value::from(unit.as_str()));
                sql += &format!(" AND unit = ${}", params.len());
            }
            if let Some(status) = filter.status {
                params.push(Value::from(status.as_str()));
                sql += &format!(" AND status = ${}", params.len());
            }
            if let Some(now) = filter.overdue_at {
                params.push(Value::from(time(now)));
                sql += &format!(
                    " AND due <= ${} AND status NOT IN ('done', 'visited')",
                    params.len()
                );
            }
            sql += " ORDER BY created, id";
            let rows = tx.query(&sql, &params)?;
            rows.iter().map(|r| ticket(r)).collect()
        })
    }

    fn apply(
        &self,
        id: &TicketId,
        action: &Action,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Ticket, StoreError> {
        let for_update = self.db.for_update();
        self.db
            .transaction(&mut |tx| apply_in(tx, for_update, id, action, by, now))
    }

    fn pending_dispatches(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Dispatch>, StoreError> {
        self.db.read(&mut |tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {DISPATCH_COLUMNS} FROM ticket_dispatches \
                     WHERE state = 'pending' AND next_at <= $1 ORDER BY next_at, webhook_id LIMIT $2"
                ),
                &[time(now).into(), Value::Int(limit as i64)],
            )?;
            rows.iter().map(|r| dispatch(r)).collect()
        })
    }

    fn redeliver(&self, id: &TicketId, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.db.transaction(&mut |tx| {
            tx.exec(
                "UPDATE ticket_dispatches SET state = 'pending', attempts = 0, next_at = $1, \
                 last_error = NULL WHERE ticket_id = $2 AND state = 'dead'",
                &[time(now).into(), id.as_str().into()],
            )
        })
    }

    fn open_by_unit(&self, now: DateTime<Utc>) -> Result<Vec<(String, i64, i64)>, StoreError> {
        self.db.read(&mut |tx| {
            let rows = tx.query(
                "SELECT unit, COUNT(*), \
                 SUM(CASE WHEN due <= $1 AND status <> 'done' THEN 1 ELSE 0 END) \
                 FROM tickets WHERE status <> 'visited' AND kind <> 'queue_callback' \
                 GROUP BY unit ORDER BY unit",
                &[time(now).into()],
            )?;
            rows.iter()
                .map(|r| Ok((text(&r[0])?, int(&r[1])?, int(&r[2])?)))
                .collect()
        })
    }

    fn dispatches(&self, id: &TicketId) -> Result<Vec<Dispatch>, StoreError> {
        self.db.read(&mut |tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {DISPATCH_COLUMNS} FROM ticket_dispatches \
                     WHERE ticket_id = $1 ORDER BY created, webhook_id"
                ),
                &[id.as_str().into()],
            )?;
            rows.iter().map(|r| dispatch(r)).collect()
        })
    }

    fn dispatched(
        &self,
        webhook_id: &str,
        result: &DispatchResult,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let for_update = self.db.for_update();
        self.db.transaction(&mut |tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {DISPATCH_COLUMNS} FROM ticket_dispatches WHERE webhook_id = $1{for_update}"
                ),
                &[webhook_id.into()],
            )?;
            let Some(d) = rows.first().map(|r| dispatch(r)).transpose()? else {
                return Err(StoreError::NotFound(webhook_id.to_string()));
            };
            let (state, next_at, error) = match result {
                DispatchResult::Delivered => ("delivered", now, None),
                DispatchResult::Pulled => ("pull", now, None),
                DispatchResult::Retry { at, error } => ("pending", *at, Some(error.clone())),
                DispatchResult::Dead { error } => ("dead", now, Some(error.clone())),
            };
            let tried = i64::from(!matches!(result, DispatchResult::Pulled));
            // Only a delivery still pending at the attempt we read: another
            // gateway's dispatcher on the same store may have settled it.
            let changed = tx.exec(
                "UPDATE ticket_dispatches SET state = $1, attempts = $2, next_at = $3, \
                 last_error = $4 WHERE webhook_id = $5 AND state = 'pending' AND attempts = $6",
                &[
                    state.into(),
                    Value::Int(d.attempts + tried),
                    time(next_at).into(),
                    error.into(),
                    webhook_id.into(),
                    Value::Int(d.attempts),
                ],
            )?;
            if changed == 0 {
                return Ok(());
            }
            // Delivered, or left for the unit to pull: the ticket is the
            // unit's now (派发), unless it moved on meanwhile.
            if matches!(result, DispatchResult::Delivered | DispatchResult::Pulled) {
                let id = TicketId::parse(&d.ticket_id)
                    .ok_or_else(|| StoreError::Corrupt(format!("id {:?}", d.ticket_id)))?;
                match apply_in(tx, for_update, &id, &Action::Dispatch, "dispatcher", now) {
                    Ok(_) | Err(StoreError::Refused(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
    }

    fn history(&self, id: &TicketId) -> Result<Vec<Event>, StoreError> {
        self.db.read(&mut |tx| {
            let rows = tx.query(
                "SELECT at, action, by_whom, status, detail FROM ticket_events \
                 WHERE ticket_id = $1 ORDER BY seq",
                &[id.as_str().into()],
            )?;
            rows.iter()
                .map(|r| {
                    Ok(Event {
                        at: parse_time(&text(&r[0])?)?,
                        action: text(&r[1])?,
                        by: text(&r[2])?,
                        status: status(&r[3])?,
                        detail: opt_text(&r[4])?,
                    })
                })
                .collect()
        })
    }

    fn due_callbacks(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Job>, StoreError> {
        self.db.read(&mut |tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM ticket_callbacks \
                     WHERE (state = 'pending' AND next_at <= $1) \
                     OR (state = 'calling' AND lease_until <= $1) \
                     ORDER BY next_at, ticket_id LIMIT $2"
                ),
                &[time(now).into(), Value::Int(limit as i64)],
            )?;
            rows.iter().map(|r| job_of(r)).collect()
        })
    }

    fn claim_callback(
        &self,
        job: &Job,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Job>, StoreError> {
        self.db.transaction(&mut |tx| {
            // Only the job as it was read: another gateway's claim (or
            // attempt) in between changes its state, lease or attempts.
            let changed = tx.exec(
                "UPDATE ticket_callbacks SET state = 'calling', lease_until = $1 \
                 WHERE ticket_id = $2 AND round = $3 AND attempts = $4 AND state = $5 \
                 AND COALESCE(lease_until, '') = $6 AND next_at <= $7",
                &[
                    time(lease_until).into(),
                    job.ticket_id.as_str().into(),
                    Value::Int(job.round),
                    Value::Int(job.attempts),
                    job.state.as_str().into(),
                    job.lease_until.map(time).unwrap_or_default().into(),
                    time(now).into(),
                ],
            )?;
            Ok((changed == 1).then(|| Job {
                state: "calling".into(),
                lease_until: Some(parse_time(&time(lease_until)).unwrap_or(lease_until)),
                ..job.clone()
            }))
        })
    }

    fn callback_attempted(
        &self,
        job: &Job,
        outcome: CallbackOutcome,
        seat: Option<&str>,
        next: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let for_update = self.db.for_update();
        self.db.transaction(&mut |tx| {
            // The ticket's row first, as `apply` takes it: a visit by hand
            // at the same moment waits instead of deadlocking.
            tx.query(
                &format!("SELECT id FROM tickets WHERE id = $1{for_update}"),
                &[job.ticket_id.as_str().into()],
            )?;
            let rows = tx.query(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM ticket_callbacks \
                     WHERE ticket_id = $1 AND round = $2{for_update}"
                ),
                &[job.ticket_id.as_str().into(), Value::Int(job.round)],
            )?;
            let Some(current) = rows.first().map(|r| job_of(r)).transpose()? else {
                return Err(StoreError::NotFound(job.ticket_id.clone()));
            };
            let finished = current.state == "finished";
            if !finished
                && (current.state != job.state
                    || current.lease_until != job.lease_until
                    || current.attempts != job.attempts)
            {
                // Another gateway holds it now: its attempt is the one that
                // counts.
                return Ok(());
            }
            let attempts = current.attempts + i64::from(outcome.counts());
            if outcome.counts() {
                tx.exec(
                    "INSERT INTO ticket_callback_attempts \
                     (ticket_id, round, attempt, at, result, seat) VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        job.ticket_id.as_str().into(),
                        Value::Int(job.round),
                        Value::Int(attempts),
                        time(now).into(),
                        outcome.as_str().into(),
                        seat.map(str::to_string).into(),
                    ],
                )?;
            }
            // Visited meanwhile by hand (the job finished): the attempt is
            // on record, nothing else moves.
            if finished {
                return Ok(());
            }
            let (state, next_at) = match next {
                Some(at) => ("pending", at),
                None if outcome.reached() => ("finished", now),
                None => ("given_up", now),
            };
            tx.exec(
                "UPDATE ticket_callbacks SET state = $1, attempts = $2, next_at = $3, \
                 lease_until = NULL, result = $4 WHERE ticket_id = $5 AND round = $6",
                &[
                    state.into(),
                    Value::Int(attempts),
                    time(next_at).into(),
                    outcome.as_str().into(),
                    job.ticket_id.as_str().into(),
                    Value::Int(job.round),
                ],
            )?;
            let action = match outcome {
                CallbackOutcome::Satisfied => Some(Action::Visit { satisfied: true }),
                CallbackOutcome::Unsatisfied => Some(Action::Visit { satisfied: false }),
                // A queue callback is over once the caller talked to a
                // seat (a done ticket's visit needs the survey's answer:
                // `CalledBack` is refused for it, and it stays done).
                CallbackOutcome::Unrated => Some(Action::CalledBack),
                _ => None,
            };
            if let Some(action) = action {
                let id = TicketId::parse(&job.ticket_id)
                    .ok_or_else(|| StoreError::Corrupt(format!("id {:?}", job.ticket_id)))?;
                match apply_in(tx, for_update, &id, &action, "callback", now) {
                    // Moved on by hand meanwhile: the answer stays on record.
                    Ok(_) | Err(StoreError::Refused(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
    }

    fn callbacks(&self, id: &TicketId) -> Result<(Vec<Job>, Vec<Attempt>), StoreError> {
        self.db.read(&mut |tx| {
            let jobs = tx.query(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM ticket_callbacks WHERE ticket_id = $1 ORDER BY round"
                ),
                &[id.as_str().into()],
            )?;
            let attempts = tx.query(
                "SELECT ticket_id, round, attempt, at, result, seat FROM ticket_callback_attempts \
                 WHERE ticket_id = $1 ORDER BY round, attempt",
                &[id.as_str().into()],
            )?;
            let jobs = jobs
                .iter()
                .map(|r| job_of(r))
                .collect::<Result<Vec<_>, _>>()?;
            let attempts = attempts
                .iter()
                .map(|r| {
                    Ok(Attempt {
                        ticket_id: text(&r[0])?,
                        round: int(&r[1])?,
                        attempt: int(&r[2])?,
                        at: parse_time(&text(&r[3])?)?,
                        result: text(&r[4])?,
                        seat: opt_text(&r[5])?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok((jobs, attempts))
        })
    }

    fn describe(&self) -> String {
        self.db.describe()
    }
}

const JOB_COLUMNS: &str =
    "ticket_id, round, number, attempts, next_at, state, lease_until, result, kind";

fn job_of(r: &[Value]) -> Result<Job, StoreError> {
    if r.len() != 9 {
        return Err(StoreError::Corrupt(format!("{} callback columns", r.len())));
    }
    Ok(Job {
        ticket_id: text(&r[0])?,
        round: int(&r[1])?,
        number: text(&r[2])?,
        attempts: int(&r[3])?,
        next_at: parse_time(&text(&r[4])?)?,
        state: text(&r[5])?,
        lease_until: opt_text(&r[6])?.map(|s| parse_time(&s)).transpose()?,
        result: opt_text(&r[7])?,
        kind: text(&r[8])?,
    })
}

/// [`Store::apply`] inside an open transaction.
fn apply_in(
    tx: &mut dyn Tx,
    for_update: &str,
    id: &TicketId,
    action: &Action,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Ticket, StoreError> {
    let rows = tx.query(
        &format!("SELECT {COLUMNS} FROM tickets WHERE id = $1{for_update}"),
        &[id.as_str().into()],
    )?;
    let Some(row) = rows.first() else {
        return Err(StoreError::NotFound(id.to_string()));
    };
    let mut t = ticket(row)?;
    let step = transition(t.status, t.new.due, action, now)?;
    let (reply, reason, detail) = match action {
        Action::Done { reply } => (Some(reply.clone()), t.reason.clone(), Some(reply.clone())),
        Action::Return { reason } => (t.reply.clone(), Some(reason.clone()), Some(reason.clone())),
        Action::Extend { reason, due } => (
            t.reply.clone(),
            Some(reason.clone()),
            Some(format!("{reason} (due {})", time(*due))),
        ),
        Action::Visit { satisfied } => (
            t.reply.clone(),
            t.reason.clone(),
            Some(
                if *satisfied {
                    "satisfied"
                } else {
                    "unsatisfied"
                }
                .to_string(),
            ),
        ),
        Action::Reassign { unit } => (t.reply.clone(), t.reason.clone(), Some(unit.clone())),
        Action::Dispatch | Action::Accept | Action::CalledBack => {
            (t.reply.clone(), t.reason.clone(), None)
        }
    };
    let due = step.due.unwrap_or(t.new.due);
    let unit = step.unit.clone().unwrap_or_else(|| t.new.unit.clone());
    let at = time(now);
    tx.exec(
        "UPDATE tickets SET status = $1, updated = $2, due = $3, unit = $4, reply = $5, \
                 reason = $6 WHERE id = $7",
        &[
            step.status.as_str().into(),
            at.as_str().into(),
            time(due).into(),
            unit.as_str().into(),
            reply.clone().into(),
            reason.clone().into(),
            id.as_str().into(),
        ],
    )?;
    event(tx, id, now, action.name(), by, step.status, detail.clone())?;
    // Back to a unit: delivered again.
    if matches!(step.status, Status::Reopened) || step.unit.is_some() {
        outbox(tx, id, &unit, step.status.as_str(), now)?;
    }
    // Replied: the citizen is owed a callback (回访), from now on. Visited
    // (by the callback, or by hand): none is owed any more.
    if step.status == Status::Done {
        tx.exec(
            "INSERT INTO ticket_callbacks (ticket_id, round, number, attempts, next_at, state) \
             SELECT $1, COALESCE(MAX(round), 0) + 1, $2, 0, $3, 'pending' FROM ticket_callbacks \
             WHERE ticket_id = $1",
            &[
                id.as_str().into(),
                t.new.callback_number.as_str().into(),
                at.as_str().into(),
            ],
        )?;
    }
    if let Action::Visit { satisfied } = action {
        let result = if *satisfied {
            "satisfied"
        } else {
            "unsatisfied"
        };
        tx.exec(
            "UPDATE ticket_callbacks SET state = 'finished', result = $1, lease_until = NULL \
             WHERE ticket_id = $2 AND state IN ('pending', 'calling')",
            &[result.into(), id.as_str().into()],
        )?;
    }
    t.status = step.status;
    t.updated = parse_time(&at)?;
    t.new.due = due;
    t.new.unit = unit;
    t.reply = reply;
    t.reason = reason;
    Ok(t)
}

fn event(
    tx: &mut dyn Tx,
    id: &TicketId,
    now: DateTime<Utc>,
    action: &str,
    by: &str,
    status: Status,
    detail: Option<String>,
) -> Result<(), StoreError> {
    tx.exec(
        "INSERT INTO ticket_events (ticket_id, seq, at, action, by_whom, status, detail) \
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6 FROM ticket_events \
         WHERE ticket_id = $1",
        &[
            id.as_str().into(),
            time(now).into(),
            action.into(),
            by.into(),
            status.as_str().into(),
            detail.into(),
        ],
    )?;
    Ok(())
}

/// A delivery for the dispatcher, written with the change it announces.
/// Its id is the webhook id a receiver dedupes on (stable across retries).
fn outbox(
    tx: &mut dyn Tx,
    id: &TicketId,
    unit: &str,
    what: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let n = tx.query(
        "SELECT COUNT(*) FROM ticket_dispatches WHERE ticket_id = $1",
        &[id.as_str().into()],
    )?;
    let n = int(&n[0][0])?;
    tx.exec(
        "INSERT INTO ticket_dispatches \
         (webhook_id, ticket_id, unit, event, created, attempts, next_at, state) \
         VALUES ($1, $2, $3, $4, $5, 0, $5, 'pending')",
        &[
            format!("msg_{id}_{}", n + 1).into(),
            id.as_str().into(),
            unit.into(),
            what.into(),
            time(now).into(),
        ],
    )?;
    Ok(())
}

/// The lock key for one caller's tickets at one unit.
fn caller_key(unit: &str, number: &str) -> i64 {
    // FNV-1a: stable across builds and machines (two gateways must agree).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in unit.bytes().chain([0]).chain(number.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

const DISPATCH_COLUMNS: &str =
    "webhook_id, ticket_id, unit, event, created, attempts, next_at, state, last_error";

fn dispatch(r: &[Value]) -> Result<Dispatch, StoreError> {
    if r.len() != 9 {
        return Err(StoreError::Corrupt(format!("{} dispatch columns", r.len())));
    }
    Ok(Dispatch {
        webhook_id: text(&r[0])?,
        ticket_id: text(&r[1])?,
        unit: text(&r[2])?,
        event: text(&r[3])?,
        created: parse_time(&text(&r[4])?)?,
        attempts: int(&r[5])?,
        next_at: parse_time(&text(&r[6])?)?,
        state: text(&r[7])?,
        last_error: opt_text(&r[8])?,
    })
}

/// Times as stored: RFC 3339, UTC, milliseconds (fixed width, so text
/// order is time order).
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("time {s:?}: {e}")))
}

fn int(v: &Value) -> Result<i64, StoreError> {
    match v {
        Value::Int(n) => Ok(*n),
        other => Err(StoreError::Corrupt(format!(
            "expected a number, got {other:?}"
        ))),
    }
}

fn text(v: &Value) -> Result<String, StoreError> {
    match v {
        Value::Text(s) => Ok(s.clone()),
        other => Err(StoreError::Corrupt(format!("expected text, got {other:?}"))),
    }
}

fn opt_text(v: &Value) -> Result<Option<String>, StoreError> {
    match v {
        Value::Null => Ok(None),
        v => text(v).map(Some),
    }
}

fn status(v: &Value) -> Result<Status, StoreError> {
    let s = text(v)?;
    Status::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("status {s:?}")))
}

fn date(s: &str) -> Result<NaiveDate, StoreError> {
    s.parse()
        .map_err(|e| StoreError::Corrupt(format!("date {s:?}: {e}")))
}

/// A row of [`COLUMNS`].
fn ticket(r: &[Value]) -> Result<Ticket, StoreError> {
    if r.len() != 23 {
        return Err(StoreError::Corrupt(format!("{} columns", r.len())));
    }
    let id = text(&r[0])?;
    let id = TicketId::parse(&id).ok_or_else(|| StoreError::Corrupt(format!("id {id:?}")))?;
    let kind = text(&r[7])?;
    let session = match opt_text(&r[11])? {
        Some(d) => Some(SessionRef {
            unit: opt_text(&r[8])?,
            leader: opt_text(&r[9])?,
            title: opt_text(&r[10])?,
            date: date(&d)?,
        }),
        None => None,
    };
    let recordings: Vec<String> = serde_json::from_str(&text(&r[20])?)
        .map_err(|e| StoreError::Corrupt(format!("recordings: {e}")))?;
    let created = parse_time(&text(&r[12])?)?;
    let new = NewTicket {
        day: id.date(),
        callback_number: text(&r[1])?,
        caller_number: text(&r[2])?,
        dialed: text(&r[3])?,
        line: text(&r[4])?,
        unit: text(&r[5])?,
        tag: text(&r[6])?,
        kind: Kind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("kind {kind:?}")))?,
        session,
        due: parse_time(&text(&r[14])?)?,
        due_date: date(&text(&r[15])?)?,
        due_approximate: int(&r[16])? != 0,
        request_recording: opt_text(&r[18])?,
        call_id: text(&r[19])?,
        recordings,
    };
    Ok(Ticket {
        new,
        id,
        status: status(&r[17])?,
        created,
        updated: parse_time(&text(&r[13])?)?,
        reply: opt_text(&r[21])?,
        reason: opt_text(&r[22])?,
    })
}
