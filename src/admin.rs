//! The admin HTTP endpoint: `GET /metrics` (Prometheus), `GET /healthz`,
//! and the units' ticket API under `/api/tickets` ([`crate::tickets::api`]).
//! It binds where the table says (`[metrics] listen`, loopback by default),
//! never to every interface unless an operator writes so.
//!
//! It must keep answering while someone misbehaves against it, and never
//! cost the SIP side its file descriptors or a core:
//! - out of descriptors, `accept` fails at once and forever; the loop backs
//!   off ([`crate::log_limit::AcceptErrors`]) and logs once per interval, not per failure;
//! - at most [`MAX_CONNECTIONS`] connections are held. When all are taken, a
//!   new one displaces the oldest that has not yet sent its request, so
//!   idle sockets cannot starve a scraper, which asks at once; when all are
//!   answering requests, the new one is closed;
//! - a request must arrive complete within [`REQUEST_TIMEOUT`], and each
//!   connection serves one request (no keep-alive: a scraper asks every
//!   15 s or so, so an idle connection is only a liability) and is over
//!   within [`CONNECTION_DEADLINE`] even if its client stops reading.

use crate::log_limit::AcceptErrors;
use crate::metrics::Metrics;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

/// Admin connections held at most. Prometheus and an operator's curl need a
/// handful; 64 leaves room for several scrapers and costs little.
pub const MAX_CONNECTIONS: usize = 64;

/// A request's head must have arrived, complete, this soon after the
/// connection was accepted.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection is closed this long after it was accepted whatever it is
/// doing (a client that sends its request but never reads the answer).
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(30);

fn respond(req: &Request<hyper::body::Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, ctype: &'static str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(ctype),
        );
        r
    };
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.encode(),
        ),
        (&Method::GET, "/healthz") => text(StatusCode::OK, "text/plain", "ok\n".into()),
        (_, "/metrics" | "/healthz") => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        ),
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

/// The ticket API's share of the admin endpoint: the store, and the table
/// (its units' tokens, as reloaded).
#[derive(Clone)]
pub struct Api {
    pub store: Arc<dyn crate::tickets::Store>,
    pub table: crate::config::SharedTable,
}

/// The largest request body the API reads.
const MAX_BODY: usize = 64 * 1024;

/// An API request: its body read (bounded), the answer computed on a
/// blocking thread (the store may fsync), as JSON.
async fn api_response(req: Request<hyper::body::Incoming>, api: Api) -> Response<Full<Bytes>> {
    use http_body_util::BodyExt;
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return json(
                413,
                &serde_json::json!({"error": "body too large or cut short"}),
            );
        }
    };
    let units = api.table.guard().tickets.units.clone();
    let store = api.store.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let req = crate::tickets::api::Request {
            method: &method,
            path: &path,
            query: &query,
            auth: auth.as_deref(),
            body: &body,
        };
        crate::tickets::api::handle(req, &*store, &units, chrono::Utc::now())
    })
    .await;
    match answer {
        Ok(r) => json(r.status, &r.body),
        Err(_) => json(500, &serde_json::json!({"error": "internal error"})),
    }
}

fn json(status: u16, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if status == 401 {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    r
}

/// Serves until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    api: Option<Api>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Slots::default();
    let mut errors = AcceptErrors::default();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE leaves the connection in the backlog, so the next
                // accept fails at once too: wait before trying again.
                metrics.admin_accept_errors.inc();
                let failure = errors.failed(Instant::now());
                let retry_ms = failure.pause.as_millis() as u64;
                match failure.log {
                    Some(0) => tracing::warn!(error = %e, retry_ms, "admin accept failed"),
                    Some(suppressed) => tracing::warn!(
                        error = %e,
                        suppressed,
                        retry_ms,
                        "admin accept failed ({suppressed} more since the last report)"
                    ),
                    None => {}
                }
                tokio::select! {
                    _ = tokio::time::sleep(failure.pause) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        };
        errors.succeeded();
        let dropped = |reason| metrics.admin_dropped.with_label_values(&[reason]).inc();
        let Some((slot, taken)) = slots.take() else {
            dropped("full");
            tracing::debug!(%peer, "admin connections all answering requests: closed the new one");
            continue;
        };
        if taken == Taken::Displaced {
            dropped("displaced");
            tracing::debug!(%peer, "admin connections full: closed the oldest one still silent");
        }
        tokio::spawn(connection(stream, peer, metrics.clone(), api.clone(), slot));
    }
}

/// One connection: a single request, read within [`REQUEST_TIMEOUT`],
/// the whole exchange within [`CONNECTION_DEADLINE`], or until its slot is
/// given to a newer connection.
async fn connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    metrics: Arc<Metrics>,
    api: Option<Api>,
    slot: Slot,
) {
    let Slot {
        id,
        slots,
        mut evicted,
    } = slot;
    let _release = Release(id, slots.clone());
    let counters = metrics.clone();
    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        // The request is in: this connection is no longer displaceable.
        slots.busy(id);
        let api = api
            .clone()
            .filter(|_| crate::tickets::api::is_api(req.uri().path()));
        let metrics = metrics.clone();
        async move {
            Ok::<_, Infallible>(match api {
                Some(api) => api_response(req, api).await,
                None => respond(&req, &metrics),
            })
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_TIMEOUT)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), svc);
    tokio::select! {
        r = tokio::time::timeout(CONNECTION_DEADLINE, conn) => match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                if e.is_timeout() {
                    counters.admin_dropped.with_label_values(&["timeout"]).inc();
                }
                tracing::debug!(%peer, error = %e, "admin connection ended with an error")
            }
            Err(_) => {
                counters.admin_dropped.with_label_values(&["timeout"]).inc();
                tracing::debug!(%peer, "admin connection closed at its deadline")
            }
        },
        // Only a send closes it: the sender is dropped, unsent, once the
        // request is in (see `Slots::busy`), and that must not.
        Ok(()) = &mut evicted => {}
    }
}

/// The connections held, by accept order, and whether each has sent its
/// request yet.
#[derive(Clone, Default)]
struct Slots(Arc<Mutex<SlotTable>>);

#[derive(Default)]
struct SlotTable {
    next: u64,
    /// id → the sender that closes the connection, while it is still
    /// waiting for its request; None once the request is being answered.
    held: BTreeMap<u64, Option<oneshot::Sender<()>>>,
}

/// How a slot was found.
#[derive(Debug, PartialEq, Eq)]
enum Taken {
    Free,
    /// The oldest connection still silent was closed for it.
    Displaced,
}

/// A connection's place in [`Slots`].
struct Slot {
    id: u64,
    slots: Slots,
    /// Fires when a newer connection takes this one's place.
    evicted: oneshot::Receiver<()>,
}

impl Slots {
    /// A slot for a new connection, or None when every slot is answering a
    /// request (each done within [`CONNECTION_DEADLINE`]); an older silent
    /// connection is closed to make room if need be.
    fn take(&self) -> Option<(Slot, Taken)> {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut taken = Taken::Free;
        if t.held.len() >= MAX_CONNECTIONS {
            let oldest_silent = t
                .held
                .iter()
                .find_map(|(id, close)| close.is_some().then_some(*id))?;
            if let Some(Some(close)) = t.held.remove(&oldest_silent) {
                let _ = close.send(());
            }
            taken = Taken::Displaced;
        }
        let id = t.next;
        t.next += 1;
        let (tx, rx) = oneshot::channel();
        t.held.insert(id, Some(tx));
        let slot = Slot {
            id,
            slots: self.clone(),
            evicted: rx,
        };
        Some((slot, taken))
    }

    /// The connection's request is in: it may no longer be displaced. Its
    /// close sender is dropped unsent.
    fn busy(&self, id: u64) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(close) = t.held.get_mut(&id) {
            *close = None;
        }
    }

    fn release(&self, id: u64) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        t.held.remove(&id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap().held.len()
    }
}

/// Frees a connection's slot however its task ends.
struct Release(u64, Slots);

impl Drop for Release {
    fn drop(&mut self) {
        self.1.release(self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_displaces_the_oldest_silent_connection() {
        let slots = Slots::default();
        let mut held: Vec<Slot> = (0..MAX_CONNECTIONS)
            .map(|_| slots.take().unwrap())
            .map(|(slot, taken)| {
                assert_eq!(taken, Taken::Free);
                slot
            })
            .collect();
        // The oldest is answering a request: it is kept; the next is not.
        slots.busy(held[0].id);
        let (newest, taken) = slots.take().unwrap();
        assert_eq!(taken, Taken::Displaced);
        assert_eq!(slots.len(), MAX_CONNECTIONS);
        assert_ne!(held[0].evicted.try_recv(), Ok(()));
        assert_eq!(held[1].evicted.try_recv(), Ok(()));
        assert_ne!(held[2].evicted.try_recv(), Ok(()));
        slots.release(held[1].id); // its task ends: a no-op, already gone
        assert_eq!(slots.len(), MAX_CONNECTIONS);
        // All answering requests: a new connection gets no slot.
        for s in held.iter().skip(2).chain([&newest]) {
            slots.busy(s.id);
        }
        assert!(slots.take().is_none());
        slots.release(newest.id);
        assert_eq!(slots.len(), MAX_CONNECTIONS - 1);
        assert!(slots.take().is_some());
    }
}
