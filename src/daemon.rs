//! `hotline serve`: loads the table, serves metrics, and reloads the table on
//! SIGHUP and when the file changes. Shutdown is one `watch` channel handed
//! to every task; SIGINT or SIGTERM flips it.
//!
//! The SIP side (sockets, then the routing loop in [`crate::call::engine`])
//! reads the same [`SharedTable`], so a reload reaches the next call.

use crate::call::engine::Engine;
use crate::config::{ConfigError, SharedTable};
use crate::metrics::Metrics;
use crate::sip::transport::Transport;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub struct ServeOptions {
    pub config: PathBuf,
    /// Overrides `[metrics] listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// How often the table file is checked for changes.
    pub watch_interval: Duration,
    /// Overrides `[sip] listen_udp` and `listen_tcp` (one address for both).
    pub sip_listen: Option<SocketAddr>,
}

/// Applies one reload of `text` (the file as read, or why it could not be
/// read) and accounts for it in logs and metrics. Returns whether it went live.
/// `serving_metrics_on` is the metrics address taken from the table at
/// start-up (None when the command line chose it): a reload that changes it
/// is told to need a restart.
pub fn reload(
    shared: &SharedTable,
    metrics: &Metrics,
    text: Result<&str, ConfigError>,
    trigger: &str,
    serving_metrics_on: Option<SocketAddr>,
    api_on: Option<SocketAddr>,
    sip_listening: &[SocketAddr],
) -> bool {
    let refuse = |table: &crate::routing::Table| {
        let exposed = crate::config::demo_passwords_exposed(table, sip_listening);
        if !exposed.is_empty() {
            return Some(format!(
                "seats {} have demo passwords and SIP listens beyond loopback: change them, or set [sip] allow_demo_passwords = true",
                exposed.join(", ")
            ));
        }
        let plain = api_on
            .map(|on| plain_tokens_exposed(table, on))
            .unwrap_or_default();
        (!plain.is_empty()).then(|| {
            format!(
                "API tokens {} are written in plain and the API listens beyond loopback: give their token_sha256",
                plain.join(", ")
            )
        })
    };
    match text.and_then(|t| shared.reload_text_checked(t, refuse)) {
        Ok(warnings) => {
            for w in &warnings {
                tracing::warn!(trigger, "{w}");
            }
            let table = shared.load();
            metrics.routing_reloads.with_label_values(&["ok"]).inc();
            metrics.observe_table(&table, chrono::Utc::now().timestamp());
            tracing::info!(
                trigger,
                path = %shared.path().display(),
                lines = table.lines.len(),
                sessions = table.sessions.len(),
                "routing table reloaded"
            );
            if let Some(serving) = serving_metrics_on
                && table.metrics_listen != serving
            {
                tracing::warn!(
                    configured = %table.metrics_listen,
                    serving = %serving,
                    "[metrics] listen changed: it takes effect at the next restart"
                );
            }
            true
        }
        Err(e) => {
            metrics.routing_reloads.with_label_values(&["error"]).inc();
            match &e {
                ConfigError::Io { .. } => {
                    tracing::error!(trigger, "routing table refused, running table kept: {e}")
                }
                ConfigError::Invalid { errors, .. } => {
                    tracing::error!(
                        trigger,
                        errors = errors.len(),
                        "routing table refused, running table kept"
                    );
                    for d in errors {
                        tracing::error!(trigger, "{d}");
                    }
                }
            }
            false
        }
    }
}

/// Tokens written in plain (`token`, for demos) while the API would listen
/// beyond loopback: their names.
pub fn plain_tokens_exposed(table: &crate::routing::Table, listen: SocketAddr) -> Vec<String> {
    if listen.ip().is_loopback() {
        return Vec::new();
    }
    table
        .api_tokens
        .iter()
        .filter(|t| t.plain)
        .map(|t| t.name.clone())
        .collect()
}

/// Runs until SIGINT or SIGTERM.
pub async fn serve(opts: ServeOptions) -> anyhow::Result<()> {
    // Signals first: a SIGHUP during start-up must not kill the daemon.
    let signals = Signals::install()?;
    let (bytes, text) = crate::config::read(&opts.config)?;
    let (shared, warnings) = SharedTable::open_text(&opts.config, &text)?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let metrics = Arc::new(Metrics::new());
    let table = shared.load();
    metrics.observe_table(&table, chrono::Utc::now().timestamp());
    let listen = opts.metrics_listen.unwrap_or(table.metrics_listen);
    let sip = table.sip.clone();
    tracing::info!(
        path = %opts.config.display(),
        lines = table.lines.len(),
        emergency = table.emergency.len(),
        sessions = table.sessions.len(),
        "routing table loaded"
    );
    drop(table);

    let plain = plain_tokens_exposed(&shared.guard(), listen);
    if !plain.is_empty() {
        anyhow::bail!(
            "refusing to serve the API on {listen} with tokens written in plain ({}): give their token_sha256 in {}, or keep [metrics] listen on loopback",
            plain.join(", "),
            opts.config.display()
        );
    }
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {listen}: {e}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "metrics listening on http://{bound}/metrics");

    let (udp, tcp) = match opts.sip_listen {
        Some(a) => (Some(a), Some(a)),
        None => (sip.listen_udp, sip.listen_tcp),
    };
    let listen_on: Vec<SocketAddr> = udp.into_iter().chain(tcp).collect();
    let exposed = crate::config::demo_passwords_exposed(&shared.guard(), &listen_on);
    if !exposed.is_empty() {
        anyhow::bail!(
            "refusing to listen for SIP on {} with demo passwords for seats {}: change them in {}, \
             or set [sip] allow_demo_passwords = true",
            sip_addresses(udp, tcp),
            exposed.join(", "),
            opts.config.display()
        );
    }
    // Descriptors are kept for media: TCP signalling may hold at most a
    // quarter of them, so calls can still bind their RTP ports when
    // connections pile up.
    let defaults = crate::sip::transport::TcpLimits::default();
    let max_connections = open_file_limit().map_or(defaults.max_connections, |n| {
        defaults.max_connections.min((n / 4).max(16) as usize)
    });
    if max_connections < defaults.max_connections {
        tracing::info!(
            max_connections,
            "TCP connections capped to a quarter of the open-file limit, the rest kept for media"
        );
    }
    let limits = crate::sip::transport::TcpLimits {
        max_connections,
        max_per_source: sip.tcp_max_per_source.min(max_connections),
        ..defaults
    };
    let (transport, sip_listener) = Transport::bind_with(udp, tcp, limits).await.map_err(|e| {
        anyhow::anyhow!("cannot listen for SIP on {}: {e}", sip_addresses(udp, tcp))
    })?;
    let bound_sip = transport.udp_local().or(transport.tcp_local());
    let local = advertised(sip.advertise, bound_sip);
    let (udp, tcp) = (transport.udp_local(), transport.tcp_local());
    tracing::info!(
        udp = %or_off(udp),
        tcp = %or_off(tcp),
        advertise = %local,
        "SIP listening on {}",
        sip_addresses(udp, tcp)
    );
    // The ticket store: one that cannot be opened stops the start, saying
    // which and why (a caller must never be told a number not stored).
    let (store_spec, requests_dir) = {
        let t = shared.guard();
        (t.tickets.store.clone(), t.tickets.requests_dir.clone())
    };
    let tickets = crate::tickets::open(&store_spec, std::path::Path::new("."))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::create_dir_all(&requests_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot make the requests folder {}: {e}",
            requests_dir.display()
        )
    })?;
    tracing::info!(store = %tickets.describe(), "ticket store open");
    spawn_dispatcher(shared.clone(), tickets.clone(), metrics.clone());
    let engine = Engine::new(
        shared.clone(),
        metrics.clone(),
        transport.clone(),
        local,
        tickets.clone(),
    );
    transport.run(sip_listener, engine.clone(), 2);
    engine.spawn_trunk_probes();
    engine.spawn_callbacks();

    let (stop_tx, stop_rx) = watch::channel(false);
    let admin = tokio::spawn(crate::admin::serve(
        listener,
        metrics.clone(),
        Some(crate::admin::Api {
            store: tickets.clone(),
            table: shared.clone(),
            hub: engine.ops.clone(),
            dispatch: engine.dispatch(),
        }),
        stop_rx.clone(),
    ));
    let Signals { hangup, shutdown } = signals;
    let watcher = tokio::spawn(watch_table(
        Watch {
            shared: shared.clone(),
            metrics: metrics.clone(),
            interval: opts.watch_interval,
            serving_metrics_on: opts.metrics_listen.is_none().then_some(listen),
            api_on: bound,
            sip_listening: listen_on.clone(),
            seen: bytes,
            engine: engine.clone(),
        },
        hangup,
        stop_rx,
    ));

    shutdown.wait().await;
    tracing::info!("shutting down");
    engine.shutdown().await;
    let _ = stop_tx.send(true);
    let _ = tokio::join!(admin, watcher);
    Ok(())
}

/// Below this many open files the daemon may run out under load: SIP
/// allows 4,096 TCP connections, and every call leg holds RTP sockets.
pub const OPEN_FILES_WANTED: u64 = 4096;

/// Raises the soft open-file limit (RLIMIT_NOFILE) to the hard one, as far
/// as the system lets us, and logs what was obtained. Service managers
/// commonly start daemons at a soft 1,024 with a much higher hard limit;
/// the soft one is what `accept` runs into. Returns the soft limit now in
/// force, None where there is no such limit to read.
/// The soft open-file limit now, if it can be read.
fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit through a valid pointer.
        // (rlim_t is u64 here, not everywhere.)
        #[allow(clippy::unnecessary_cast)]
        (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0)
            .then_some(lim.rlim_cur as u64)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

pub fn raise_open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit through a valid pointer.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            let e = std::io::Error::last_os_error();
            tracing::warn!(error = %e, "cannot read the open-file limit");
            return None;
        }
        let before = lim.rlim_cur;
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            // SAFETY: setrlimit reads one rlimit through a valid pointer.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
                lim.rlim_cur = lim.rlim_max;
            } else {
                // e.g. macOS, whose hard limit may read "unlimited" while
                // the kernel caps the soft one lower.
                let e = std::io::Error::last_os_error();
                tracing::warn!(
                    error = %e,
                    soft = files(before),
                    hard = files(lim.rlim_max),
                    "cannot raise the open-file limit to the hard limit"
                );
            }
        }
        let soft = files(lim.rlim_cur);
        let hard = files(lim.rlim_max);
        if lim.rlim_cur > before {
            tracing::info!(
                soft,
                hard,
                was = files(before),
                "open-file limit raised to {soft}"
            );
        } else {
            tracing::info!(soft, hard, "open-file limit {soft}");
        }
        if soft < OPEN_FILES_WANTED {
            tracing::warn!(
                soft,
                "open-file limit {soft} is below {OPEN_FILES_WANTED}: SIP TCP connections and RTP ports may run out; raise LimitNOFILE (systemd) or ulimit -n"
            );
        }
        Some(soft)
    }
    #[cfg(not(unix))]
    None
}

/// `rlim_t` is 64 bits on most targets, 32 on some: as a count of files.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)]
fn files(n: libc::rlim_t) -> u64 {
    n as u64
}

/// The SIP addresses as an operator writes them: `udp 127.0.0.1:5060, tcp
/// 127.0.0.1:5060`, `off` for a transport that is disabled.
fn sip_addresses(udp: Option<SocketAddr>, tcp: Option<SocketAddr>) -> String {
    format!("udp {}, tcp {}", or_off(udp), or_off(tcp))
}

/// An address, or `off` (as `[sip] listen_udp = "off"` is written).
fn or_off(addr: Option<SocketAddr>) -> String {
    addr.map_or_else(|| "off".to_string(), |a| a.to_string())
}

/// `host:port` for Via and Contact: the configured address, else the bound
/// one, else — listening on every address — the address of the interface
/// that routes outwards, found by connecting a UDP socket (which sends
/// nothing). Writing 127.0.0.1 there would make every far end send its ACK
/// to itself and every answered call end after 32 s; that is the last
/// resort, with a warning.
fn advertised(advertise: Option<std::net::IpAddr>, bound: Option<SocketAddr>) -> String {
    let port = bound.map_or(5060, |b| b.port());
    let ip = match (advertise, bound) {
        (Some(ip), _) => ip,
        (None, Some(b)) if !b.ip().is_unspecified() => b.ip(),
        _ => match outward_ip() {
            Some(ip) => {
                tracing::info!(%ip, "no [sip] advertise: writing the outward interface's address in Via and Contact");
                ip
            }
            None => {
                tracing::warn!(
                    "no [sip] advertise and no outward interface: writing 127.0.0.1 in Via and Contact; set [sip] advertise"
                );
                std::net::IpAddr::from([127, 0, 0, 1])
            }
        },
    };
    SocketAddr::new(ip, port).to_string()
}

/// The local address the system would use towards the outside world. A UDP
/// `connect` only chooses a route; no packet leaves the host.
fn outward_ip() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // TEST-NET-1 (RFC 5737): never answered, only routed.
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// The process signals the daemon acts on, installed before anything else.
struct Signals {
    hangup: Hangup,
    shutdown: Shutdown,
}

struct Hangup(#[cfg(unix)] tokio::signal::unix::Signal);
struct Shutdown(#[cfg(unix)] tokio::signal::unix::Signal);

impl Signals {
    #[cfg(unix)]
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            hangup: Hangup(signal(SignalKind::hangup())?),
            shutdown: Shutdown(signal(SignalKind::terminate())?),
        })
    }

    #[cfg(not(unix))]
    fn install() -> anyhow::Result<Self> {
        Ok(Signals {
            hangup: Hangup(),
            shutdown: Shutdown(),
        })
    }
}

impl Hangup {
    async fn recv(&mut self) {
        #[cfg(unix)]
        if self.0.recv().await.is_some() {
            return;
        }
        std::future::pending::<()>().await
    }
}

impl Shutdown {
    /// Until SIGINT or SIGTERM.
    async fn wait(self) {
        #[cfg(unix)]
        {
            let mut term = self.0;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

struct Watch {
    shared: SharedTable,
    metrics: Arc<Metrics>,
    interval: Duration,
    /// See [`reload`].
    serving_metrics_on: Option<SocketAddr>,
    /// Where the API is served (whatever chose it): a table with plain
    /// tokens is refused beyond loopback.
    api_on: SocketAddr,
    /// Where SIP listens: a table with demo passwords is refused beyond
    /// loopback.
    sip_listening: Vec<SocketAddr>,
    /// The file's bytes as last loaded or refused.
    seen: Vec<u8>,
    /// Reloads its prompts with the table.
    engine: Arc<Engine>,
}

impl Watch {
    fn apply(&self, text: Result<String, ConfigError>, trigger: &str) {
        let loaded = reload(
            &self.shared,
            &self.metrics,
            text.as_deref().map_err(clone_io),
            trigger,
            self.serving_metrics_on,
            Some(self.api_on),
            &self.sip_listening,
        );
        if loaded {
            self.engine.reload_prompts();
        }
    }
}

/// Reloads on SIGHUP, and when the file's content changes (checked every
/// `interval`; a change must hold still for one more short look, so a file
/// caught half-written is not loaded).
async fn watch_table(mut w: Watch, mut hup: Hangup, mut stop: watch::Receiver<bool>) {
    let path = w.shared.path().to_path_buf();
    // The first look is one interval after start-up: the table was just
    // loaded, and an immediate look would race whoever edits it next.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + w.interval, w.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = hup.recv() => {
                let read = crate::config::read(&path);
                if let Ok((bytes, _)) = &read {
                    w.seen = bytes.clone();
                }
                w.apply(read.map(|(_, t)| t), "sighup");
            }
            _ = tick.tick() => {
                let Ok(now) = tokio::fs::read(&path).await else { continue };
                if now == w.seen {
                    continue;
                }
                tokio::time::sleep(w.interval.min(Duration::from_millis(250))).await;
                let Ok(settled) = tokio::fs::read(&path).await else { continue };
                if settled != now {
                    continue; // still being written: look again next tick
                }
                let text = crate::config::decode(&path, settled.clone());
                w.seen = settled;
                w.apply(text, "file_change");
            }
        }
    }
}

/// The only error `config::read` gives is `Io`, and `io::Error` is not
/// `Clone`: rebuild it with the same kind and message.
fn clone_io(e: &ConfigError) -> ConfigError {
    match e {
        ConfigError::Io { path, source } => ConfigError::Io {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        ConfigError::Invalid { errors, warnings } => ConfigError::Invalid {
            errors: errors.clone(),
            warnings: warnings.clone(),
        },
    }
}

/// `hotline_tickets_open` and `hotline_tickets_overdue` by unit: every
/// unit of the table is shown, at 0 when it has none.
fn publish_ticket_counts(
    store: &dyn crate::tickets::Store,
    units: &[String],
    metrics: &crate::metrics::Metrics,
) {
    match store.open_by_unit(chrono::Utc::now()) {
        Ok(counts) => {
            for unit in units {
                let (open, overdue) = counts
                    .iter()
                    .find(|(u, _, _)| u == unit)
                    .map_or((0, 0), |(_, o, d)| (*o, *d));
                metrics.tickets_open.with_label_values(&[unit]).set(open);
                metrics
                    .tickets_overdue
                    .with_label_values(&[unit])
                    .set(overdue);
            }
            // A unit no longer in the table keeps its tickets: shown too.
            for (unit, open, overdue) in counts.iter().filter(|(u, _, _)| !units.contains(u)) {
                metrics.tickets_open.with_label_values(&[unit]).set(*open);
                metrics
                    .tickets_overdue
                    .with_label_values(&[unit])
                    .set(*overdue);
            }
        }
        Err(e) => tracing::warn!(error = %e, "ticket counts not read"),
    }
}

/// The ticket dispatcher: a thread of its own (deliveries block on the
/// network), one round a second, with the endpoints of the table running
/// now (a reload reaches it on the next round). It ends with the process.
fn spawn_dispatcher(
    table: crate::config::SharedTable,
    store: std::sync::Arc<dyn crate::tickets::Store>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
) {
    let spawned = std::thread::Builder::new()
        .name("ticket-dispatch".into())
        .spawn(move || {
            let http = crate::tickets::dispatch::Http::default();
            let mut round: u64 = 0;
            loop {
                // The open and overdue counts, every ten seconds.
                if round.is_multiple_of(10) {
                    let units: Vec<String> = table.guard().units.clone();
                    publish_ticket_counts(&*store, &units, &metrics);
                }
                round += 1;
                let (units, first, max) = {
                    let t = table.guard();
                    (
                        t.tickets.units.clone(),
                        t.tickets.dispatch_retry,
                        t.tickets.dispatch_max_attempts,
                    )
                };
                match crate::tickets::dispatch::run_once(
                    &*store,
                    &units,
                    first,
                    max,
                    &http,
                    chrono::Utc::now(),
                ) {
                    Ok(round) => {
                        let m = &metrics.ticket_dispatch;
                        m.with_label_values(&["delivered"]).inc_by(round.delivered);
                        m.with_label_values(&["retry"]).inc_by(round.retried);
                        m.with_label_values(&["dead"]).inc_by(round.dead);
                        m.with_label_values(&["pulled"]).inc_by(round.pulled);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "ticket dispatch round failed; next in a second")
                    }
                }
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "ticket dispatcher not started: tickets wait in the store");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_addresses_read_like_the_table_writes_them() {
        let a: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        assert_eq!(
            sip_addresses(Some(a), Some(a)),
            "udp 127.0.0.1:5060, tcp 127.0.0.1:5060"
        );
        assert_eq!(sip_addresses(None, Some(a)), "udp off, tcp 127.0.0.1:5060");
        assert_eq!(sip_addresses(Some(a), None), "udp 127.0.0.1:5060, tcp off");
    }
}
