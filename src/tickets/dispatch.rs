//! Delivering tickets to their units (交办): the dispatcher reads the
//! outbox the store writes with every ticket, and POSTs each delivery to
//! its unit's endpoint as JSON signed the way the Standard Webhooks spec
//! says — `webhook-id` (the same on every retry, so a receiver dedupes),
//! `webhook-timestamp`, and `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">`.
//!
//! At least once: a delivery counts only on a 2xx. Network errors, 5xx and
//! 429 are tried again after `dispatch_retry_seconds`, doubling each time;
//! any other status (the receiver refuses it for good), or the retry
//! budget spent, dead-letters it — kept, visible, for an operator. A unit
//! without an endpoint pulls its tickets from the API: its deliveries are
//! marked so and the ticket is dispatched at once.
//!
//! One round is [`run_once`], fed "now" and an HTTP client ([`Post`]), so
//! it is tested against a real receiver on loopback and a real store.

use super::model::TicketId;
use super::report;
use super::store::{DispatchResult, Store, StoreError, time};
use crate::routing::table::TicketUnit;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// How a delivery is sent: the status the receiver answered, or why none.
pub trait Post {
    fn post(&self, url: &str, headers: &[(&str, String)], body: &str) -> Result<u16, String>;
}

/// The real client (ureq: blocking, the dispatcher runs on a thread of
/// its own), with a 10 s budget per delivery.
pub struct Http {
    agent: ureq::Agent,
}

impl Default for Http {
    fn default() -> Http {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build();
        Http {
            agent: ureq::Agent::new_with_config(config),
        }
    }
}

impl Post for Http {
    fn post(&self, url: &str, headers: &[(&str, String)], body: &str) -> Result<u16, String> {
        let mut req = self
            .agent
            .post(url)
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        match req.send(body) {
            Ok(resp) => Ok(resp.status().as_u16()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The Standard Webhooks signature of `body` sent as `id` at `timestamp`
/// (Unix seconds).
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("v1,{sig}")
}

/// How long a delivery waits after its `attempts`th failure: the first
/// retry after `first`, each next twice as long, at most six hours.
pub fn backoff(first: Duration, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
    first
        .saturating_mul(factor)
        .min(Duration::from_secs(6 * 3600))
}

/// What one round did, for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    pub delivered: u64,
    pub pulled: u64,
    pub retried: u64,
    pub dead: u64,
}

/// Deliveries handled per round at most.
const BATCH: usize = 50;

/// One round: every delivery due at `now`, tried once.
pub fn run_once(
    store: &dyn Store,
    units: &[TicketUnit],
    first_retry: Duration,
    max_attempts: u32,
    post: &dyn Post,
    now: DateTime<Utc>,
) -> Result<Round, StoreError> {
    let mut round = Round::default();
    let started = std::time::Instant::now();
    for d in store.pending_dispatches(now, BATCH)? {
        // A slow endpoint must not hold the others back for long: the rest
        // wait for the next round.
        if started.elapsed() > ROUND_LIMIT {
            break;
        }
        if let Err(e) = deliver(
            store,
            units,
            first_retry,
            max_attempts,
            post,
            now,
            &d,
            &mut round,
        ) {
            // One delivery that cannot be handled (a malformed row) must
            // not stop the others: it is given up, visibly.
            tracing::error!(webhook_id = %d.webhook_id, error = %e, "ticket delivery cannot be handled; given up");
            round.dead += 1;
            let _ = store.dispatched(
                &d.webhook_id,
                &DispatchResult::Dead {
                    error: e.to_string(),
                },
                now,
            );
        }
    }
    Ok(round)
}

/// A round stops taking new deliveries after this long.
const ROUND_LIMIT: Duration = Duration::from_secs(20);

/// One delivery, tried once.
#[allow(clippy::too_many_arguments)]
fn deliver(
    store: &dyn Store,
    units: &[TicketUnit],
    first_retry: Duration,
    max_attempts: u32,
    post: &dyn Post,
    now: DateTime<Utc>,
    d: &super::store::Dispatch,
    round: &mut Round,
) -> Result<(), StoreError> {
    {
        let endpoint = units
            .iter()
            .find(|u| u.unit == d.unit)
            .and_then(|u| Some((u.webhook_url.as_deref()?, u.webhook_secret.as_deref()?)));
        let Some((url, key)) = endpoint else {
            store.dispatched(&d.webhook_id, &DispatchResult::Pulled, now)?;
            round.pulled += 1;
            return Ok(());
        };
        let ticket = TicketId::parse(&d.ticket_id)
            .map(|id| store.get(&id))
            .transpose()?
            .flatten();
        let Some(ticket) = ticket else {
            store.dispatched(
                &d.webhook_id,
                &DispatchResult::Dead {
                    error: "no such ticket".into(),
                },
                now,
            )?;
            round.dead += 1;
            return Ok(());
        };
        let body = serde_json::json!({
            "type": format!("ticket.{}", d.event),
            "timestamp": time(now),
            "data": report::to_json(&ticket, now),
        })
        .to_string();
        // Stamped as sent (a receiver refuses a stale timestamp), never
        // before the round's "now".
        let ts = Utc::now().max(now).timestamp();
        let headers = [
            ("webhook-id", d.webhook_id.clone()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", sign(key, &d.webhook_id, ts, &body)),
        ];
        let tried = u32::try_from(d.attempts)
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let again = |error: String| {
            if tried >= max_attempts {
                DispatchResult::Dead {
                    error: format!("{error} (after {tried} attempts)"),
                }
            } else {
                let wait = chrono::Duration::from_std(backoff(first_retry, tried))
                    .unwrap_or(chrono::Duration::hours(6));
                DispatchResult::Retry {
                    at: now + wait,
                    error,
                }
            }
        };
        let result = match post.post(url, &headers, &body) {
            Ok(code) if (200..300).contains(&code) => DispatchResult::Delivered,
            Ok(code) if code == 429 || code >= 500 => again(format!("HTTP {code}")),
            Ok(code) => DispatchResult::Dead {
                error: format!("HTTP {code}: refused"),
            },
            Err(e) => again(e),
        };
        match &result {
            DispatchResult::Delivered => {
                round.delivered += 1;
                tracing::info!(ticket = %d.ticket_id, unit = %d.unit, webhook_id = %d.webhook_id, "ticket delivered to its unit");
            }
            DispatchResult::Retry { at, error } => {
                round.retried += 1;
                tracing::warn!(ticket = %d.ticket_id, unit = %d.unit, %error, retry_at = %time(*at), "ticket delivery failed; retrying");
            }
            DispatchResult::Dead { error } => {
                round.dead += 1;
                tracing::error!(ticket = %d.ticket_id, unit = %d.unit, %error, "ticket delivery given up (dead-lettered)");
            }
            DispatchResult::Pulled => {}
        }
        store.dispatched(&d.webhook_id, &result, now)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_standard_webhooks_one() {
        // The example of the Standard Webhooks specification.
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let sig = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn retries_double_from_the_first_and_stop_at_six_hours() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(10), 1), s(10));
        assert_eq!(backoff(s(10), 2), s(20));
        assert_eq!(backoff(s(10), 4), s(80));
        assert_eq!(backoff(s(10), 30), s(6 * 3600));
        assert_eq!(backoff(s(3600), 40), s(6 * 3600));
    }
}
