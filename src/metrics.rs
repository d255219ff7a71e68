//! Prometheus metrics. One [`Metrics`] per daemon, its own registry (not the
//! process-global default), so tests can run several side by side.

use crate::routing::Table;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

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
    /// `hotline_calls_total{kind,line,result}`: finished calls.
    pub calls: IntCounterVec,
    pub active_calls: IntGauge,
    /// Finished calls whose transactions still linger (their remains).
    pub lingering_calls: IntGauge,
    /// `hotline_sip_requests_total{method}`: requests received.
    pub sip_requests: IntCounterVec,
    /// `hotline_sip_responses_total{code}`: responses received.
    pub sip_responses: IntCounterVec,
    /// Messages refused by the parser (answered 400 or dropped).
    pub sip_parse_errors: IntCounter,
    pub registered_seats: IntGauge,
    /// INVITE received → 200 OK relayed to the caller.
    pub call_setup_seconds: Histogram,
    /// `hotline_sip_auth_failures_total{reason}`.
    pub auth_failures: IntCounterVec,
    /// INVITEs refused because the source is no configured trunk.
    pub untrusted_invites: IntCounter,
    /// `hotline_dtmf_digits_total{source="rtp"|"info"}`: key presses.
    pub dtmf_digits: IntCounterVec,
    /// Legs that sent no RTP for the media time-out.
    pub media_timeouts: IntCounter,
    /// RTP ports not held by a leg.
    pub rtp_ports_free: IntGauge,
    /// `hotline_rtp_packets_total{direction="received"|"sent"|"rejected"}`;
    /// rejected: refused by a leg's latch, not from its RTP source.
    pub rtp_packets: IntCounterVec,
    /// `hotline_trunk_up{trunk}`: 1 while a trunk answers its probes.
    pub trunk_up: IntGaugeVec,
    /// Emergency calls that reached no emergency trunk (answered 503).
    pub emergency_failures: IntCounter,
    /// Requests for a call from none of its far ends, dropped unqueued.
    pub sip_foreign_requests: IntCounter,
    pub sip_call_backlog_drops: IntCounter,
    /// Failed accepts on the admin listener (out of file descriptors, ...).
    pub admin_accept_errors: IntCounter,
    /// `hotline_admin_connections_dropped_total{reason}`: admin connections
    /// closed by the daemon before they were answered.
    pub admin_dropped: IntCounterVec,
    /// `hotline_api_requests_total{result}`: control and ticket API
    /// requests by result (`ok`, `unauthorized`, `forbidden`,
    /// `bad_request`, `not_found`, `conflict`, `unavailable`, `error`).
    pub api_requests: IntCounterVec,
    /// `hotline_call_records_failed_total`: call records the store refused
    /// (the JSON-lines file, when configured, still has them).
    pub records_failed: IntCounter,
    /// `hotline_api_event_streams`: event streams open now.
    pub api_streams: IntGauge,
    /// `hotline_api_event_streams_dropped_total{reason="slow"|"full"}`.
    pub api_streams_dropped: IntCounterVec,
    /// The ACD's queues and seats.
    pub queue: QueueMetrics,
    /// `hotline_tickets_created_total{unit,kind}`: tickets stored (a
    /// caller told its existing one is not counted again).
    pub tickets_created: IntCounterVec,
    /// `hotline_ticket_store_failures_total`: tickets the store refused;
    /// their callers were told to call again, no number.
    pub tickets_failed: IntCounter,
    /// `hotline_leader_choice_total{choice="wait"|"ticket"|"none"}`.
    pub leader_choice: IntCounterVec,
    /// `hotline_ticket_dispatch_total{result="delivered"|"retry"|"dead"|"pulled"}`.
    pub ticket_dispatch: IntCounterVec,
    /// `hotline_callbacks_total{kind="visit",result=…}`: callback attempts
    /// and what they came to (see `tickets::callback::Outcome`).
    pub callbacks: IntCounterVec,
    /// `hotline_transfers_total{kind,target,result}`: seats' hand-offs
    /// (blind, attended, three_way, emergency), by the target's trunk id
    /// (or `seat`, `none`) and what they came to.
    pub transfers: IntCounterVec,
    /// `hotline_tickets_open{unit}`: not yet closed by a satisfied callback.
    pub tickets_open: IntGaugeVec,
    /// `hotline_tickets_overdue{unit}`: open, past due, not done.
    pub tickets_overdue: IntGaugeVec,
}

/// The queues (ACD): what waits now, what happened to callers, the seats.
pub struct QueueMetrics {
    /// `hotline_queue_callers{queue}`: waiting now.
    pub callers: IntGaugeVec,
    /// `hotline_queue_longest_wait_seconds{queue}`: the head caller's wait.
    pub longest_wait: prometheus::GaugeVec,
    /// `hotline_queue_calls_total{queue,outcome}`.
    pub calls: IntCounterVec,
    /// `hotline_queue_wait_seconds{queue,outcome}`: answered and abandoned.
    pub wait: prometheus::HistogramVec,
    /// `hotline_queue_answered_within_target_total{queue}`.
    pub within_target: IntCounterVec,
    /// `hotline_queue_estimated_wait_seconds{queue}`: told a caller joining now.
    pub estimated_wait: prometheus::GaugeVec,
    /// `hotline_seats{queue,state}`.
    pub seats: IntGaugeVec,
    /// `hotline_seat_offers_total{result}`.
    pub offers: IntCounterVec,
}

impl QueueMetrics {
    fn new(registry: &Registry) -> QueueMetrics {
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("metric registered once");
            g
        };
        let fgauge = |name: &str, help: &str| {
            let g =
                prometheus::GaugeVec::new(Opts::new(name, help), &["queue"]).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("metric registered once");
            g
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("metric registered once");
            c
        };
        let wait = prometheus::HistogramVec::new(
            HistogramOpts::new(
                "hotline_queue_wait_seconds",
                "How long callers waited in a queue: answered and abandoned apart",
            )
            .buckets(vec![
                5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1200.0, 1800.0,
            ]),
            &["queue", "outcome"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(wait.clone()))
            .expect("metric registered once");
        let offers = counter(
            "hotline_seat_offers_total",
            "Calls offered to seats by the ACD, by result",
            &["result"],
        );
        for result in ["answered", "no_answer", "rejected"] {
            offers.with_label_values(&[result]);
        }
        QueueMetrics {
            callers: gauge(
                "hotline_queue_callers",
                "Callers waiting in the queue now",
                &["queue"],
            ),
            longest_wait: fgauge(
                "hotline_queue_longest_wait_seconds",
                "How long the caller at the head of the queue has waited",
            ),
            calls: counter(
                "hotline_queue_calls_total",
                "Callers who left the queue, by outcome",
                &["queue", "outcome"],
            ),
            wait,
            within_target: counter(
                "hotline_queue_answered_within_target_total",
                "Callers answered within the queue's service_level_seconds",
                &["queue"],
            ),
            estimated_wait: fgauge(
                "hotline_queue_estimated_wait_seconds",
                "The wait a caller joining the queue now is told",
            ),
            seats: gauge(
                "hotline_seats",
                "Seats serving the queue, by state (each seat once per queue it serves)",
                &["queue", "state"],
            ),
            offers,
        }
    }
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
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let calls = counter_vec(
            "hotline_calls_total",
            "Finished calls by routing kind, dialed line and result",
            &["kind", "line", "result"],
        );
        let active_calls =
            IntGauge::new("hotline_active_calls", "Calls in progress").expect("valid metric");
        let lingering_calls = IntGauge::new(
            "hotline_lingering_calls",
            "Finished calls whose transactions still answer retransmissions (Call-IDs)",
        )
        .expect("valid metric");
        let sip_requests = counter_vec(
            "hotline_sip_requests_total",
            "SIP requests received, by method (unknown methods as \"other\")",
            &["method"],
        );
        let sip_responses = counter_vec(
            "hotline_sip_responses_total",
            "SIP responses received, by status code",
            &["code"],
        );
        let sip_parse_errors = IntCounter::new(
            "hotline_sip_parse_errors_total",
            "SIP messages refused as malformed (answered 400 or dropped)",
        )
        .expect("valid metric");
        let registered_seats = IntGauge::new(
            "hotline_registered_seats",
            "Seats with at least one live registration",
        )
        .expect("valid metric");
        let call_setup_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "hotline_call_setup_seconds",
                "From the caller's INVITE to the answer relayed back",
            )
            .buckets(vec![
                0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0,
            ]),
        )
        .expect("valid metric");
        let auth_failures = counter_vec(
            "hotline_sip_auth_failures_total",
            "Failed seat authentications by reason",
            &["reason"],
        );
        let untrusted_invites = IntCounter::new(
            "hotline_sip_untrusted_invites_total",
            "INVITEs refused 403 because their source is no configured trunk",
        )
        .expect("valid metric");
        let dtmf_digits = counter_vec(
            "hotline_dtmf_digits_total",
            "Key presses received, by how they were signalled",
            &["source"],
        );
        let media_timeouts = IntCounter::new(
            "hotline_media_timeouts_total",
            "Legs that sent no RTP for the media time-out",
        )
        .expect("valid metric");
        let rtp_ports_free =
            IntGauge::new("hotline_rtp_ports_free", "RTP ports not held by a call leg")
                .expect("valid metric");
        let rtp_packets = counter_vec(
            "hotline_rtp_packets_total",
            "RTP packets received from and sent to call legs, and refused as not from the leg's source",
            &["direction"],
        );
        let trunk_up = IntGaugeVec::new(
            Opts::new(
                "hotline_trunk_up",
                "1 while the trunk answers its OPTIONS probes, 0 while it is down",
            ),
            &["trunk"],
        )
        .expect("valid metric");
        let emergency_failures = IntCounter::new(
            "hotline_emergency_failures_total",
            "Emergency calls that reached no emergency trunk (answered 503 so the carrier reroutes)",
        )
        .expect("valid metric");
        let sip_foreign_requests = IntCounter::new(
            "hotline_sip_foreign_requests_total",
            "Requests for a call that came from none of its far ends (address and port), dropped",
        )
        .expect("valid metric");
        let sip_call_backlog_drops = IntCounter::new(
            "hotline_sip_call_backlog_drops_total",
            "UDP messages dropped because their call had too many waiting (the sender retransmits); never TCP",
        )
        .expect("valid metric");
        let admin_accept_errors = IntCounter::new(
            "hotline_admin_accept_errors_total",
            "Failed accepts on the metrics listener (e.g. out of file descriptors)",
        )
        .expect("valid metric");
        let admin_dropped = counter_vec(
            "hotline_admin_connections_dropped_total",
            "Metrics connections closed unanswered: displaced by a newer one, full, or timed out",
            &["reason"],
        );
        for c in [
            Box::new(admin_accept_errors.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(admin_dropped.clone()),
            Box::new(rtp_packets.clone()),
            Box::new(sip_foreign_requests.clone()),
            Box::new(sip_call_backlog_drops.clone()),
            Box::new(trunk_up.clone()),
            Box::new(emergency_failures.clone()),
            Box::new(dtmf_digits.clone()),
            Box::new(media_timeouts.clone()),
            Box::new(rtp_ports_free.clone()),
            Box::new(routing_reloads.clone()),
            Box::new(routing_lines.clone()),
            Box::new(routing_leader_sessions.clone()),
            Box::new(routing_loaded_timestamp.clone()),
            Box::new(calls.clone()),
            Box::new(active_calls.clone()),
            Box::new(lingering_calls.clone()),
            Box::new(sip_requests.clone()),
            Box::new(sip_responses.clone()),
            Box::new(sip_parse_errors.clone()),
            Box::new(registered_seats.clone()),
            Box::new(call_setup_seconds.clone()),
            Box::new(auth_failures.clone()),
            Box::new(untrusted_invites.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        // Both series exist from the start, so alerts on `error` see a 0.
        routing_reloads.with_label_values(&["ok"]);
        routing_reloads.with_label_values(&["error"]);
        for reason in ["displaced", "full", "timeout"] {
            admin_dropped.with_label_values(&[reason]);
        }
        let tickets_created = counter_vec(
            "hotline_tickets_created_total",
            "Callback tickets stored, by unit and kind",
            &["unit", "kind"],
        );
        let tickets_failed = IntCounter::new(
            "hotline_ticket_store_failures_total",
            "Tickets the store could not take: the caller was told to call again, no number",
        )
        .expect("valid metric");
        registry
            .register(Box::new(tickets_failed.clone()))
            .expect("metric registered once");
        let leader_choice = counter_vec(
            "hotline_leader_choice_total",
            "Leader-session callers' choices: wait, ticket, or none (the default)",
            &["choice"],
        );
        for choice in ["wait", "ticket", "none"] {
            leader_choice.with_label_values(&[choice]);
        }
        let ticket_dispatch = counter_vec(
            "hotline_ticket_dispatch_total",
            "Ticket deliveries to units: delivered, retry (failed, tried again), dead (given up), pulled (the unit pulls)",
            &["result"],
        );
        for result in ["delivered", "retry", "dead", "pulled"] {
            ticket_dispatch.with_label_values(&[result]);
        }
        let callbacks = counter_vec(
            "hotline_callbacks_total",
            "Callbacks to citizens (回访) by what each attempt came to",
            &["kind", "result"],
        );
        for result in crate::tickets::callback::Outcome::ALL {
            for kind in ["visit", "queue"] {
                callbacks.with_label_values(&[kind, result.as_str()]);
            }
        }
        let transfers = counter_vec(
            "hotline_transfers_total",
            "Seats' hand-offs (blind, attended, three_way, emergency) by target (trunk id, seat, none) and result",
            &["kind", "target", "result"],
        );
        let unit_gauge = |name: &str, help: &str| {
            let g = IntGaugeVec::new(Opts::new(name, help), &["unit"]).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("metric registered once");
            g
        };
        let tickets_open = unit_gauge(
            "hotline_tickets_open",
            "Tickets not yet closed by a satisfied callback, by unit",
        );
        let tickets_overdue = unit_gauge(
            "hotline_tickets_overdue",
            "Open tickets past their due date and not done, by unit",
        );
        for c in [
            tickets_created.clone(),
            leader_choice.clone(),
            ticket_dispatch.clone(),
            callbacks.clone(),
            transfers.clone(),
        ] {
            registry
                .register(Box::new(c))
                .expect("metric registered once");
        }
        let api_requests = counter_vec(
            "hotline_api_requests_total",
            "Control and ticket API requests by result (unauthorized: no or a wrong token)",
            &["result"],
        );
        for r in [
            "ok",
            "unauthorized",
            "forbidden",
            "bad_request",
            "not_found",
            "conflict",
            "unavailable",
            "error",
        ] {
            api_requests.with_label_values(&[r]);
        }
        let api_streams_dropped = counter_vec(
            "hotline_api_event_streams_dropped_total",
            "Event streams ended by the daemon: a reader too slow to keep up, or too many streams open",
            &["reason"],
        );
        for r in ["slow", "full"] {
            api_streams_dropped.with_label_values(&[r]);
        }
        let api_streams = IntGauge::new(
            "hotline_api_event_streams",
            "Event streams (GET /api/events) open now",
        )
        .expect("valid metric");
        let records_failed = IntCounter::new(
            "hotline_call_records_failed_total",
            "Call records the store could not take (logged; the JSON-lines file, if any, has them)",
        )
        .expect("valid metric");
        for c in [
            Box::new(records_failed.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(api_requests.clone()),
            Box::new(api_streams_dropped.clone()),
            Box::new(api_streams.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        let registry_for_queues = registry.clone();
        Metrics {
            records_failed,
            api_requests,
            api_streams,
            api_streams_dropped,
            tickets_created,
            tickets_failed,
            leader_choice,
            ticket_dispatch,
            callbacks,
            transfers,
            tickets_open,
            tickets_overdue,
            registry,
            routing_reloads,
            routing_lines,
            routing_leader_sessions,
            routing_loaded_timestamp,
            calls,
            active_calls,
            lingering_calls,
            sip_requests,
            sip_responses,
            sip_parse_errors,
            registered_seats,
            call_setup_seconds,
            auth_failures,
            untrusted_invites,
            dtmf_digits,
            media_timeouts,
            rtp_ports_free,
            rtp_packets,
            trunk_up,
            emergency_failures,
            sip_foreign_requests,
            sip_call_backlog_drops,
            admin_accept_errors,
            admin_dropped,
            queue: QueueMetrics::new(&registry_for_queues),
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
