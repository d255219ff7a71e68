//! The shared ticket store: PostgreSQL, so several gateways keep one set
//! of tickets (the `postgres` crate, the synchronous client over
//! tokio-postgres; the daemon calls the store from blocking threads).
//!
//! A commit returns once PostgreSQL has it durably (its default,
//! `synchronous_commit = on`). Two gateways creating a ticket for the same
//! caller and unit at once serialise on a transaction-scoped advisory lock
//! keyed by the two, so the second finds the first's ticket. A connection
//! that broke is opened again on the next use; the call that met the
//! broken one gets an error, and its caller hears "call again later".

use super::store::{Backend, StoreError, Tx, Value};
use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls};
use std::sync::Mutex;

pub struct Postgres {
    url: String,
    client: Mutex<Option<Client>>,
}

/// A connection that cannot hang a caller's ticket: connecting, and each
/// statement, are bounded; a dead peer is noticed by TCP keepalives.
fn open_client(url: &str) -> Result<Client, postgres::Error> {
    let mut config: postgres::Config = url.parse()?;
    config
        .connect_timeout(std::time::Duration::from_secs(5))
        .keepalives(true)
        .keepalives_idle(std::time::Duration::from_secs(30))
        .options("-c statement_timeout=10000 -c lock_timeout=10000");
    config.connect(NoTls)
}

impl Postgres {
    pub fn connect(url: &str) -> Result<Postgres, StoreError> {
        let client = open_client(url).map_err(|e| StoreError::Open {
            store: redact(url),
            reason: e.to_string(),
        })?;
        Ok(Postgres {
            url: url.to_string(),
            client: Mutex::new(Some(client)),
        })
    }
}

/// A store's URL without its password (in the user part, or a
/// `password=` parameter), for logs and errors.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // The host follows the last `@` (a password may hold one).
    let shown = match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_string(),
    };
    match shown.split_once('?') {
        Some((base, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_string(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
        None => shown,
    }
}

fn backend(e: postgres::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

struct PgTx<'a, 'c> {
    tx: &'a mut postgres::Transaction<'c>,
}

fn params(values: &[Value]) -> Vec<Box<dyn ToSql + Sync>> {
    values
        .iter()
        .map(|v| -> Box<dyn ToSql + Sync> {
            match v {
                Value::Null => Box::new(None::<String>),
                Value::Int(n) => Box::new(*n),
                Value::Text(s) => Box::new(s.clone()),
            }
        })
        .collect()
}

impl Tx for PgTx<'_, '_> {
    fn exec(&mut self, sql: &str, values: &[Value]) -> Result<u64, StoreError> {
        let owned = params(values);
        let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| b.as_ref()).collect();
        self.tx.execute(sql, &refs).map_err(backend)
    }

    fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Vec<Value>>, StoreError> {
        let owned = params(values);
        let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| b.as_ref()).collect();
        let rows = self.tx.query(sql, &refs).map_err(backend)?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        let ty = row.columns()[i].type_().clone();
                        Ok(if ty == Type::INT8 {
                            row.try_get::<_, Option<i64>>(i)
                                .map_err(backend)?
                                .map_or(Value::Null, Value::Int)
                        } else if ty == Type::INT4 {
                            row.try_get::<_, Option<i32>>(i)
                                .map_err(backend)?
                                .map_or(Value::Null, |n| Value::Int(i64::from(n)))
                        } else if ty == Type::VOID {
                            Value::Null
                        } else {
                            row.try_get::<_, Option<String>>(i)
                                .map_err(backend)?
                                .map_or(Value::Null, Value::Text)
                        })
                    })
                    .collect()
            })
            .collect()
    }
}

impl Backend for Postgres {
    fn transaction<T>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut slot = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_none_or(|c| c.is_closed()) {
            *slot = Some(open_client(&self.url).map_err(backend)?);
        }
        let client = slot.as_mut().expect("connected above");
        let result = (|| {
            let mut tx = client.transaction().map_err(backend)?;
            let out = f(&mut PgTx { tx: &mut tx })?;
            tx.commit().map_err(backend)?;
            Ok(out)
        })();
        if result.is_err() && client.is_closed() {
            *slot = None;
        }
        result
    }

    fn lock(&self, key: i64) -> Option<String> {
        Some(format!("SELECT pg_advisory_xact_lock({key})"))
    }

    fn for_update(&self) -> &'static str {
        " FOR UPDATE"
    }

    fn describe(&self) -> String {
        redact(&self.url)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(
            super::redact("postgres://hotline:s3cret@db.example:5432/tickets"),
            "postgres://hotline:***@db.example:5432/tickets"
        );
        assert_eq!(
            super::redact("postgres://localhost/tickets"),
            "postgres://localhost/tickets"
        );
        assert_eq!(
            super::redact("postgres://u:p@ss@db/t"),
            "postgres://u:***@db/t"
        );
        assert_eq!(
            super::redact("postgres://db/t?user=u&password=s3cret&sslmode=disable"),
            "postgres://db/t?user=u&password=***&sslmode=disable"
        );
    }
}
