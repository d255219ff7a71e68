//! The embedded ticket store: SQLite (rusqlite, with SQLite bundled so
//! every machine runs the same version), in one file beside the table.
//!
//! WAL with `synchronous = FULL`: a commit is on disk (the WAL fsynced)
//! before it returns, so a ticket whose number a caller heard survives a
//! power cut. One connection, behind a mutex: SQLite has one writer
//! anyway, and a ticket is written at call-centre rates. `BEGIN IMMEDIATE`
//! takes the write lock at the start, so a transaction never fails half
//! way for another writer (a CLI beside the daemon waits up to the busy
//! timeout).

use super::store::{Backend, StoreError, Tx, Value};
use rusqlite::{Connection, types::Value as SqlValue};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

pub struct Sqlite {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Sqlite {
    pub fn open(path: &Path) -> Result<Sqlite, StoreError> {
        let fail = |e: rusqlite::Error| StoreError::Open {
            store: format!("sqlite:{}", path.display()),
            reason: e.to_string(),
        };
        let conn = Connection::open(path).map_err(fail)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(fail)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(fail)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Open {
                store: format!("sqlite:{}", path.display()),
                reason: format!("journal mode {mode}, not WAL"),
            });
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(fail)?;
        Ok(Sqlite {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// `$1` → `?1`: SQLite numbers its parameters that way.
fn dialect(sql: &str) -> String {
    sql.replace('$', "?")
}

/// The parameters as SQLite takes them, text borrowed (a call record's
/// JSON is not copied to be bound).
fn bind(params: &[Value]) -> Vec<rusqlite::types::ToSqlOutput<'_>> {
    use rusqlite::types::{ToSqlOutput, ValueRef};
    params
        .iter()
        .map(|v| match v {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(n) => ToSqlOutput::Borrowed(ValueRef::Integer(*n)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
        .collect()
}

struct SqliteTx<'c> {
    tx: &'c rusqlite::Transaction<'c>,
}

impl Tx for SqliteTx<'_> {
    fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        // Prepared once per connection and kept (the store runs a few
        // statements over and over: a call record per call).
        let mut stmt = self.tx.prepare_cached(&dialect(sql)).map_err(backend)?;
        let n = stmt
            .execute(rusqlite::params_from_iter(bind(params)))
            .map_err(backend)?;
        Ok(n as u64)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, StoreError> {
        let mut stmt = self.tx.prepare_cached(&dialect(sql)).map_err(backend)?;
        let columns = stmt.column_count();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(bind(params)), |row| {
                (0..columns)
                    .map(|i| {
                        Ok(match row.get::<_, SqlValue>(i)? {
                            SqlValue::Null => Value::Null,
                            SqlValue::Integer(n) => Value::Int(n),
                            SqlValue::Text(s) => Value::Text(s),
                            SqlValue::Real(f) => Value::Int(f as i64),
                            SqlValue::Blob(b) => Value::Text(String::from_utf8_lossy(&b).into()),
                        })
                    })
                    .collect::<Result<Vec<_>, rusqlite::Error>>()
            })
            .map_err(backend)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(backend)
    }
}

impl Backend for Sqlite {
    fn transaction<T>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend)?;
        let out = f(&mut SqliteTx { tx: &tx })?;
        tx.commit().map_err(backend)?;
        Ok(out)
    }

    fn read<T>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)
            .map_err(backend)?;
        let out = f(&mut SqliteTx { tx: &tx })?;
        tx.commit().map_err(backend)?;
        Ok(out)
    }

    fn lock(&self, _key: i64) -> Option<String> {
        // BEGIN IMMEDIATE already holds the database's one write lock.
        None
    }

    fn for_update(&self) -> &'static str {
        ""
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}
