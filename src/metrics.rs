//! Prometheus metrics. One [`Metrics`] per daemon, its own registry (not the
//! process-global default), so tests can run several side by side.

use crate::routing::Table;
use prometheus::{Encoder, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

pub struct Metrics {
    pub registry: Registry,
    /// `hotline_routing_reloads_total{result="ok"|"error"}`.
    pub routing_reloads: IntCounterVec,
    /// Lines (numbers) in the running table.
    pub routing_lines: IntGauge,
    /// Leader sessions in the running table, dated and from rules.
    pub routing_leader_sessions: IntGauge,
    /// Unix time of the last table that loaded.
    pub routing_loaded_timestamp: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let routing_reloads = IntCounterVec::new(
            Opts::new(
                "hotline_routing_reloads_total",
                "Routing table reloads by result; an error keeps the running table",
            ),
            &["result"],
        )
        .expect("valid metric");
        let routing_lines = IntGauge::new(
            "hotline_routing_lines",
            "Lines in the running routing table",
        )
        .expect("valid metric");
        let routing_leader_sessions = IntGauge::new(
            "hotline_routing_leader_sessions",
            "Leader sessions (热线问政) in the running routing table",
        )
        .expect("valid metric");
        let routing_loaded_timestamp = IntGauge::new(
            "hotline_routing_loaded_timestamp_seconds",
            "Unix time the running routing table was loaded",
        )
        .expect("valid metric");
        for c in [
            Box::new(routing_reloads.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(routing_lines.clone()),
            Box::new(routing_leader_sessions.clone()),
            Box::new(routing_loaded_timestamp.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        // Both series exist from the start, so alerts on `error` see a 0.
        routing_reloads.with_label_values(&["ok"]);
        routing_reloads.with_label_values(&["error"]);
        Metrics {
            registry,
            routing_reloads,
            routing_lines,
            routing_leader_sessions,
            routing_loaded_timestamp,
        }
    }

    /// Records the shape of a table that just went live.
    pub fn observe_table(&self, table: &Table, loaded_at_unix: i64) {
        self.routing_lines.set(table.lines.len() as i64);
        self.routing_leader_sessions
            .set(table.sessions.len() as i64);
        self.routing_loaded_timestamp.set(loaded_at_unix);
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
