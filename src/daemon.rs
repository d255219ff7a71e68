//! `hotline serve`: loads the table, serves metrics, and reloads the table on
//! SIGHUP and when the file changes. Shutdown is one `watch` channel handed
//! to every task; SIGINT or SIGTERM flips it.
//!
//! The SIP side joins here in the next step; the routing table it will read
//! is the [`SharedTable`] built below.

use crate::config::{ConfigError, SharedTable};
use crate::metrics::Metrics;
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
}

/// Applies one reload and accounts for it in logs and metrics.
pub fn reload(shared: &SharedTable, metrics: &Metrics, text: Option<&str>, trigger: &str) -> bool {
    let result = match text {
        Some(t) => shared.reload_text(t),
        None => shared.reload(),
    };
    match result {
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

/// Runs until SIGINT or SIGTERM.
pub async fn serve(opts: ServeOptions) -> anyhow::Result<()> {
    let (shared, warnings) = SharedTable::open(&opts.config)?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let metrics = Arc::new(Metrics::new());
    let table = shared.load();
    metrics.observe_table(&table, chrono::Utc::now().timestamp());
    let listen = opts.metrics_listen.unwrap_or(table.metrics_listen);
    tracing::info!(
        path = %opts.config.display(),
        lines = table.lines.len(),
        emergency = table.emergency.len(),
        sessions = table.sessions.len(),
        "routing table loaded"
    );
    drop(table);

    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {listen}: {e}"))?;
    tracing::info!(addr = %listener.local_addr()?, "metrics listening on http://{}/metrics", listener.local_addr()?);

    let (stop_tx, stop_rx) = watch::channel(false);
    let admin = tokio::spawn(crate::admin::serve(
        listener,
        metrics.clone(),
        stop_rx.clone(),
    ));
    let watcher = tokio::spawn(watch_table(
        shared.clone(),
        metrics.clone(),
        opts.watch_interval,
        stop_rx.clone(),
    ));

    wait_for_shutdown().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = tokio::join!(admin, watcher);
    Ok(())
}

#[cfg(unix)]
async fn wait_for_shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_shutdown() {
    let _ = tokio::signal::ctrl_c().await;
}

/// Reloads on SIGHUP, and when the file's content changes (checked every
/// `interval`; a change must hold still for one more short look, so a file
/// caught half-written is not loaded).
async fn watch_table(
    shared: SharedTable,
    metrics: Arc<Metrics>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let path = shared.path().to_path_buf();
    let mut seen = tokio::fs::read(&path).await.ok();
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .expect("install SIGHUP handler");
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let hup_recv = hup.recv();
        #[cfg(not(unix))]
        let hup_recv = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = stop.changed() => return,
            _ = hup_recv => {
                let now = tokio::fs::read(&path).await.ok();
                let text = now.as_deref().map(String::from_utf8_lossy);
                reload(&shared, &metrics, text.as_deref(), "sighup");
                seen = now;
            }
            _ = tick.tick() => {
                let Ok(now) = tokio::fs::read(&path).await else { continue };
                if seen.as_deref() == Some(now.as_slice()) {
                    continue;
                }
                tokio::time::sleep(interval.min(Duration::from_millis(250))).await;
                let Ok(settled) = tokio::fs::read(&path).await else { continue };
                if settled != now {
                    continue; // still being written: look again next tick
                }
                let text = String::from_utf8_lossy(&settled).into_owned();
                reload(&shared, &metrics, Some(&text), "file_change");
                seen = Some(settled);
            }
        }
    }
}
