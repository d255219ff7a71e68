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

/// The control API's OpenAPI document, served as it ships.
pub const OPENAPI: &str = include_str!("../ops/openapi.json");
pub const OPENAPI_PATH: &str = "/api/openapi.json";

/// The wallboard: one page, its CSS and script inside, nothing fetched
/// from elsewhere.
pub const WALLBOARD: &str = include_str!("ops/wallboard.html");

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
        (&Method::GET, OPENAPI_PATH) => text(
            StatusCode::OK,
            "application/json; charset=utf-8",
            OPENAPI.to_string(),
        ),
        (&Method::GET, "/wallboard") => {
            let mut r = text(
                StatusCode::OK,
                "text/html; charset=utf-8",
                WALLBOARD.to_string(),
            );
            // Its own script and style only; it talks to this daemon only.
            r.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                header::HeaderValue::from_static(
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
                ),
            );
            r.headers_mut().insert(
                header::X_CONTENT_TYPE_OPTIONS,
                header::HeaderValue::from_static("nosniff"),
            );
            r
        }
        (_, "/metrics" | "/healthz" | OPENAPI_PATH | "/wallboard") => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        ),
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

/// The APIs' share of the admin endpoint: the ticket store, the table
/// (its tokens, as reloaded), and the control API's live picture.
#[derive(Clone)]
pub struct Api {
    pub store: Arc<dyn crate::tickets::Store>,
    pub table: crate::config::SharedTable,
    pub hub: Arc<crate::ops::Hub>,
    pub dispatch: crate::call::dispatch::Dispatch,
}

/// Event streams (`GET /api/events`) open at most; each holds one of the
/// [`MAX_CONNECTIONS`].
pub const MAX_STREAMS: usize = 16;

/// A comment line sent on a quiet event stream this often, so a reader
/// that went away is noticed (and proxies keep the stream open).
pub const STREAM_HEARTBEAT: Duration = Duration::from_secs(15);

/// Every answer's body: whole, or an event stream.
type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

fn whole(r: Response<Full<Bytes>>) -> Response<Body> {
    use http_body_util::BodyExt;
    r.map(|b| b.boxed_unsync())
}

/// An event stream's body: what its forwarding task hands over.
struct EventBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|b| b.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

/// The result label of an API answer's status.
fn result_label(status: u16) -> &'static str {
    match status {
        200..=299 => "ok",
        401 => "unauthorized",
        403 => "forbidden",
        400 | 413 => "bad_request",
        404 | 405 => "not_found",
        409 => "conflict",
        503 => "unavailable",
        _ => "error",
    }
}

/// One API request: authenticated here (a `401` counted and logged for
/// fail2ban, the token never), then the event stream, the units' ticket
/// API, or the control API.
async fn api_request(
    req: Request<hyper::body::Incoming>,
    peer: std::net::SocketAddr,
    api: Api,
    metrics: Arc<Metrics>,
    streaming: Arc<std::sync::atomic::AtomicBool>,
    shutdown: watch::Receiver<bool>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let who = {
        let t = api.table.guard();
        crate::ops::auth::bearer(auth.as_deref()).and_then(|token| {
            crate::ops::auth::authenticate(token, &t.api_tokens, &t.tickets.units)
        })
    };
    let count = |status: u16| {
        metrics
            .api_requests
            .with_label_values(&[result_label(status)])
            .inc();
    };
    let Some(who) = who else {
        count(401);
        static LIMIT: std::sync::OnceLock<crate::log_limit::LogLimiter> =
            std::sync::OnceLock::new();
        let limit =
            LIMIT.get_or_init(|| crate::log_limit::LogLimiter::new(Duration::from_secs(10), 4096));
        if limit
            .check("api_unauthorized", peer.ip(), Instant::now())
            .is_some()
        {
            crate::log_limit::security("api_unauthorized", peer.ip());
        }
        return whole(json(
            401,
            &serde_json::json!({"error": "a token is needed: Authorization: Bearer <token>"}),
        ));
    };
    if path == "/api/events" {
        let r = if req.method() != Method::GET {
            json(405, &serde_json::json!({"error": "GET only"}))
        } else if !who.can_read() {
            json(
                403,
                &serde_json::json!({"error": format!("token `{}` may not read the event stream", who.name)}),
            )
        } else {
            match event_stream(&api.hub, &metrics, shutdown) {
                Some(r) => {
                    count(200);
                    streaming.store(true, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(%peer, by = %who.name, "event stream opened");
                    return r;
                }
                None => json(
                    503,
                    &serde_json::json!({"error": format!("{MAX_STREAMS} event streams are open already")}),
                ),
            }
        };
        count(r.status().as_u16());
        return whole(r);
    }
    let r = if crate::ops::control::is_control(&path) {
        control_response(req, who, api).await
    } else {
        let method = req.method().clone();
        let r = api_response(req, api.clone()).await;
        if method == Method::POST && r.status().is_success() {
            let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            if let [_, _, id, step] = parts.as_slice() {
                api.hub.publish(
                    "ticket",
                    serde_json::json!({"event": step, "ticket": id, "unit": who.unit()}),
                );
            }
        }
        r
    };
    count(r.status().as_u16());
    whole(r)
}

/// A request's body, at most [`MAX_BODY`]; `413` otherwise.
async fn read_body(req: Request<hyper::body::Incoming>) -> Result<Bytes, Response<Full<Bytes>>> {
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
    {
        Ok(b) => Ok(b.to_bytes()),
        Err(_) => Err(json(
            413,
            &serde_json::json!({"error": "body too large or cut short"}),
        )),
    }
}

async fn control_response(
    req: Request<hyper::body::Incoming>,
    who: crate::ops::auth::Principal,
    api: Api,
) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let ctx = crate::ops::control::Context {
        hub: api.hub.clone(),
        dispatch: api.dispatch.clone(),
        table: api.table.clone(),
        store: api.store.clone(),
    };
    let r = crate::ops::control::handle(&method, &path, &body, &who, &ctx).await;
    json(r.status, &r.body)
}

/// Streams open now, across connections.
static STREAMS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Holds one of the [`MAX_STREAMS`] while its stream runs.
struct StreamSlot(Arc<Metrics>);

impl StreamSlot {
    fn take(metrics: &Arc<Metrics>) -> Option<StreamSlot> {
        use std::sync::atomic::Ordering;
        let taken = STREAMS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_STREAMS).then_some(n + 1)
            })
            .is_ok();
        if !taken {
            metrics
                .api_streams_dropped
                .with_label_values(&["full"])
                .inc();
            return None;
        }
        metrics.api_streams.inc();
        Some(StreamSlot(metrics.clone()))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        STREAMS.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        self.0.api_streams.dec();
    }
}

/// Resolves once `events` has fallen the whole backlog behind (its next
/// read would say it lagged).
async fn lagging(events: &tokio::sync::broadcast::Receiver<Arc<str>>) {
    loop {
        if events.len() > crate::ops::hub::BACKLOG {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `GET /api/events`: Server-Sent Events, one JSON object each. A task
/// forwards the hub's events to the connection one at a time; a reader
/// that falls the hub's backlog behind is dropped (`slow`), never waited
/// for.
fn event_stream(
    hub: &crate::ops::Hub,
    metrics: &Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) -> Option<Response<Body>> {
    use http_body_util::BodyExt;
    use tokio::sync::broadcast::error::RecvError;
    let slot = StreamSlot::take(metrics)?;
    let mut events = hub.subscribe();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let metrics = metrics.clone();
    tokio::spawn(async move {
        let _slot = slot;
        // The reader is told to reconnect after 2 s if the stream breaks.
        if tx
            .send(Bytes::from_static(b"retry: 2000\n: hotline events\n\n"))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let chunk = tokio::select! {
                ev = events.recv() => match ev {
                    Ok(e) => Bytes::from(format!("data: {e}\n\n")),
                    Err(RecvError::Lagged(_)) => {
                        metrics.api_streams_dropped.with_label_values(&["slow"]).inc();
                        tracing::info!("event stream reader too slow: dropped");
                        return;
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = tokio::time::sleep(STREAM_HEARTBEAT) => Bytes::from_static(b": keep-alive\n\n"),
                _ = shutdown.changed() => return,
            };
            // The connection takes one chunk at a time; while it is slow,
            // events wait in the hub's backlog, not here, and once the
            // backlog is full the reader is let go.
            tokio::select! {
                sent = tx.send(chunk) => if sent.is_err() { return },
                _ = lagging(&events) => {
                    metrics.api_streams_dropped.with_label_values(&["slow"]).inc();
                    tracing::info!("event stream reader too slow: dropped");
                    return;
                }
                // A reader that took nothing for two heartbeats has gone
                // (or stalled): its slot goes to another.
                _ = tokio::time::sleep(2 * STREAM_HEARTBEAT) => {
                    metrics.api_streams_dropped.with_label_values(&["slow"]).inc();
                    tracing::info!("event stream reader stalled: dropped");
                    return;
                }
                _ = shutdown.changed() => return,
            }
        }
    });
    let mut r = Response::new(EventBody(rx).boxed_unsync());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Some(r)
}

/// The largest request body the API reads.
const MAX_BODY: usize = 64 * 1024;

/// An API request: its body read (bounded), the answer computed on a
/// blocking thread (the store may fsync), as JSON.
async fn api_response(req: Request<hyper::body::Incoming>, api: Api) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (units, tokens) = {
        let t = api.table.guard();
        (t.tickets.units.clone(), t.api_tokens.clone())
    };
    let store = api.store.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let req = crate::tickets::api::Request {
            method: &method,
            path: &path,
            query: &query,
            auth: auth.as_deref(),
            body: &body,
        };
        crate::tickets::api::handle(req, &*store, &units, &tokens, chrono::Utc::now())
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
        tokio::spawn(connection(
            stream,
            peer,
            metrics.clone(),
            api.clone(),
            slot,
            shutdown.clone(),
        ));
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
    shutdown: watch::Receiver<bool>,
) {
    let Slot {
        id,
        slots,
        mut evicted,
    } = slot;
    let _release = Release(id, slots.clone());
    let counters = metrics.clone();
    // Set once the answer is an event stream: it outlives the deadline.
    let streaming = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stream_flag = streaming.clone();
    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        // The request is in: this connection is no longer displaceable.
        slots.busy(id);
        let api = api.clone();
        let metrics = metrics.clone();
        let streaming = stream_flag.clone();
        let shutdown = shutdown.clone();
        async move {
            let path = req.uri().path();
            Ok::<_, Infallible>(match api {
                Some(api) if path.starts_with("/api/") && path != OPENAPI_PATH => {
                    api_request(req, peer, api, metrics, streaming, shutdown).await
                }
                _ => whole(respond(&req, &metrics)),
            })
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_TIMEOUT)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let deadline = tokio::time::sleep(CONNECTION_DEADLINE);
    tokio::pin!(deadline);
    let mut past_deadline = false;
    let mut may_be_evicted = true;
    loop {
        tokio::select! {
            r = &mut conn => {
                match r {
                    Ok(()) => {}
                    Err(e) => {
                        if e.is_timeout() {
                            counters.admin_dropped.with_label_values(&["timeout"]).inc();
                        }
                        tracing::debug!(%peer, error = %e, "admin connection ended with an error")
                    }
                }
                return;
            }
            _ = &mut deadline, if !past_deadline => {
                if streaming.load(std::sync::atomic::Ordering::Relaxed) {
                    // An event stream runs until its reader or the daemon
                    // ends it.
                    past_deadline = true;
                    continue;
                }
                counters.admin_dropped.with_label_values(&["timeout"]).inc();
                tracing::debug!(%peer, "admin connection closed at its deadline");
                return;
            }
            // Only a send closes it: the sender is dropped, unsent, once the
            // request is in (see `Slots::busy`), and that must not.
            r = &mut evicted, if may_be_evicted => match r {
                Ok(()) => return,
                Err(_) => may_be_evicted = false,
            },
        }
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
