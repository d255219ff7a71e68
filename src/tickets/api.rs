//! The units' side of their tickets, over HTTP: a unit lists and reads its
//! own tickets and moves them — accept (签收), return (退回, with a
//! reason), extend (延期, with a reason and a new due date, before the old
//! one), done (办结, with its reply). Served beside `/metrics` by
//! [`crate::admin`], on loopback unless configured otherwise.
//!
//! Each unit has its own token (`[[tickets.units]] api_token`), sent as
//! `Authorization: Bearer …`: a unit sees and changes only its own
//! tickets — another unit's is "not found", as is one that does not
//! exist. Tokens are compared in constant time and never logged.
//!
//! [`handle`] is the whole API as a function of the request, the store and
//! "now", so it is tested without sockets; the admin server only carries
//! bytes to it (on a blocking thread: the store may fsync).

use super::model::{Action, Filter, Refused, Status, TicketId};
use super::report;
use super::store::{Store, StoreError};
use crate::routing::table::{ApiToken, TicketUnit};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// An answer: the status and a JSON body.
#[derive(Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

fn reply(status: u16, body: Value) -> Reply {
    Reply { status, body }
}

fn error(status: u16, message: impl Into<String>) -> Reply {
    reply(status, json!({ "error": message.into() }))
}

/// Who a bearer token belongs to: a unit's own `api_token`, or an
/// `[[api.tokens]]` token (`unit:<name>` gives that unit; other roles none).
fn principal(
    auth: Option<&str>,
    units: &[TicketUnit],
    tokens: &[ApiToken],
) -> Option<crate::ops::auth::Principal> {
    let token = crate::ops::auth::bearer(auth)?;
    crate::ops::auth::authenticate(token, tokens, units)
}

/// Whether `path` is the API's (the admin server sends those here).
pub fn is_api(path: &str) -> bool {
    path == "/api/tickets" || path.starts_with("/api/tickets/")
}

/// One API request, as the admin server read it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The query string, without its `?`.
    pub query: &'a str,
    /// The `Authorization` header.
    pub auth: Option<&'a str>,
    pub body: &'a [u8],
}

/// Answers one request.
pub fn handle(
    req: Request<'_>,
    store: &dyn Store,
    units: &[TicketUnit],
    tokens: &[ApiToken],
    now: DateTime<Utc>,
) -> Reply {
    let Request {
        method,
        path,
        query,
        auth,
        body,
    } = req;
    let Some(who) = principal(auth, units, tokens) else {
        return error(
            401,
            "a unit's token is needed: Authorization: Bearer <api_token>",
        );
    };
    let Some(name) = who.unit() else {
        return error(
            403,
            format!(
                "token `{}` is no unit's: tickets are the units' own",
                who.name
            ),
        );
    };
    let synthetic = TicketUnit {
        unit: name.to_string(),
        webhook_url: None,
        webhook_secret: None,
        api_token: None,
    };
    let unit = units.iter().find(|u| u.unit == name).unwrap_or(&synthetic);
    let rest: Vec<&str> = path
        .trim_start_matches("/api/tickets")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let result = match (method, rest.as_slice()) {
        ("GET", []) => list(query, unit, store, now),
        ("GET", [id]) => {
            own(id, unit, store).map(|t| reply(200, ticket_with_history(&t, store, now)))
        }
        ("POST", [id, step]) => change(id, step, body, unit, store, now),
        ("GET" | "POST", _) => Ok(error(404, "no such resource")),
        _ => Ok(error(405, "GET or POST")),
    };
    match result {
        Ok(r) => r,
        Err(StoreError::NotFound(id)) => error(404, format!("no ticket {id}")),
        // A step without what it needs is the request's fault; one the
        // status does not allow is a conflict.
        Err(StoreError::Refused(why @ (Refused::NoReason(_) | Refused::NoUnit))) => {
            error(400, why.to_string())
        }
        Err(StoreError::Refused(why)) => error(409, why.to_string()),
        Err(e) => {
            tracing::error!(error = %e, "ticket API: store error");
            error(503, "the ticket store is unavailable; try again")
        }
    }
}

fn list(
    query: &str,
    unit: &TicketUnit,
    store: &dyn Store,
    now: DateTime<Utc>,
) -> Result<Reply, StoreError> {
    let mut filter = Filter {
        unit: Some(unit.unit.clone()),
        ..Filter::default()
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "status" => match Status::parse(v) {
                Some(s) => filter.status = Some(s),
                None => return Ok(error(400, format!("unknown status `{v}`"))),
            },
            "overdue" if v == "true" || v.is_empty() => filter.overdue_at = Some(now),
            "overdue" if v == "false" => {}
            _ => return Ok(error(400, format!("unknown parameter `{k}`"))),
        }
    }
    let mut tickets = store.list(&filter)?;
    // A queue callback is the hotline's own promise, no unit's item.
    tickets.retain(|t| t.new.kind != super::model::Kind::QueueCallback);
    let list: Vec<Value> = tickets.iter().map(|t| report::to_json(t, now)).collect();
    Ok(reply(200, Value::Array(list)))
}

/// The unit's own ticket `id`; another unit's is not found.
fn own(id: &str, unit: &TicketUnit, store: &dyn Store) -> Result<super::model::Ticket, StoreError> {
    let not_found = || StoreError::NotFound(id.to_string());
    let parsed = TicketId::parse(id).ok_or_else(not_found)?;
    match store.get(&parsed)? {
        Some(t) if t.new.unit == unit.unit && t.new.kind != super::model::Kind::QueueCallback => {
            Ok(t)
        }
        _ => Err(not_found()),
    }
}

fn ticket_with_history(t: &super::model::Ticket, store: &dyn Store, now: DateTime<Utc>) -> Value {
    let mut v = report::to_json(t, now);
    v["history"] = store
        .history(&t.id)
        .map(|h| h.iter().map(report::event_json).collect())
        .unwrap_or_default();
    v
}

fn change(
    id: &str,
    step: &str,
    body: &[u8],
    unit: &TicketUnit,
    store: &dyn Store,
    now: DateTime<Utc>,
) -> Result<Reply, StoreError> {
    let t = own(id, unit, store)?;
    let input: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return Ok(error(400, format!("the body is no JSON object: {e}"))),
        }
    };
    let field = |name: &str| input.get(name).and_then(Value::as_str).map(str::to_string);
    let action = match step {
        "accept" => Action::Accept,
        "return" => Action::Return {
            reason: field("reason").unwrap_or_default(),
        },
        "done" => match field("reply") {
            Some(reply) if !reply.trim().is_empty() => Action::Done { reply },
            _ => return Ok(error(400, "done needs a \"reply\"")),
        },
        "extend" => {
            let due = field("due").and_then(|d| DateTime::parse_from_rfc3339(&d).ok());
            match due {
                Some(due) => Action::Extend {
                    reason: field("reason").unwrap_or_default(),
                    due: due.with_timezone(&Utc),
                },
                None => return Ok(error(400, "extend needs a \"due\" date (RFC 3339)")),
            }
        }
        _ => {
            return Ok(error(
                404,
                format!("no step `{step}`: accept, return, extend or done"),
            ));
        }
    };
    let changed = store.apply(&t.id, &action, &unit.unit, now)?;
    tracing::info!(ticket = %changed.id, unit = %unit.unit, step, status = %changed.status, "ticket moved by its unit");
    Ok(reply(200, ticket_with_history(&changed, store, now)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::model::{Kind, NewTicket};
    use chrono::{NaiveDate, TimeZone};

    fn at(day: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, day, h, 0, 0).unwrap()
    }

    fn units() -> Vec<TicketUnit> {
        ["市交通运输局", "市卫生健康委员会"]
            .iter()
            .enumerate()
            .map(|(i, u)| TicketUnit {
                unit: u.to_string(),
                webhook_url: None,
                webhook_secret: None,
                api_token: Some(format!("token-of-unit-{i}-0123456789")),
            })
            .collect()
    }

    fn ticket(unit: &str, caller: &str) -> NewTicket {
        NewTicket {
            day: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            callback_number: caller.into(),
            caller_number: caller.into(),
            dialed: "12345".into(),
            line: "12345".into(),
            unit: unit.into(),
            tag: "热线问政".into(),
            kind: Kind::LeaderSession,
            session: None,
            due: at(4, 16),
            due_date: NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
            due_approximate: false,
            request_recording: None,
            call_id: "c".into(),
            recordings: Vec::new(),
        }
    }

    /// A real SQLite store in a folder of its own, with one ticket for
    /// each unit, both dispatched.
    fn store(name: &str) -> (std::sync::Arc<dyn Store>, String, String) {
        let dir = std::env::temp_dir().join(format!("hotline-api-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let s = crate::tickets::open("sqlite:t.db", &dir).unwrap();
        let a = s
            .create(&ticket("市交通运输局", "13800138000"), at(1, 1))
            .unwrap()
            .ticket
            .id;
        let b = s
            .create(&ticket("市卫生健康委员会", "13900139000"), at(1, 1))
            .unwrap()
            .ticket
            .id;
        for id in [&a, &b] {
            s.apply(id, &Action::Dispatch, "dispatcher", at(1, 2))
                .unwrap();
        }
        (s, a.to_string(), b.to_string())
    }

    fn call(s: &dyn Store, method: &str, path: &str, token: Option<&str>, body: &str) -> Reply {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let auth = token.map(|t| format!("Bearer {t}"));
        let req = Request {
            method,
            path,
            query,
            auth: auth.as_deref(),
            body: body.as_bytes(),
        };
        handle(req, s, &units(), &[], at(2, 9))
    }

    const T0: &str = "token-of-unit-0-0123456789";
    const T1: &str = "token-of-unit-1-0123456789";

    #[test]
    fn without_a_units_token_nothing_is_shown() {
        let (s, a, _) = store("auth");
        for token in [None, Some("wrong"), Some("token-of-unit-0-012345678")] {
            let r = call(&*s, "GET", "/api/tickets", token, "");
            assert_eq!(r.status, 401, "{token:?}");
            let r = call(&*s, "GET", &format!("/api/tickets/{a}"), token, "");
            assert_eq!(r.status, 401);
        }
    }

    #[test]
    fn a_unit_sees_only_its_own_tickets() {
        let (s, a, b) = store("own");
        let r = call(&*s, "GET", "/api/tickets", Some(T0), "");
        assert_eq!(r.status, 200);
        let list = r.body.as_array().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["id"], a.as_str());
        let r = call(&*s, "GET", &format!("/api/tickets/{a}"), Some(T0), "");
        assert_eq!(
            (r.status, r.body["history"][0]["action"].as_str()),
            (200, Some("create"))
        );
        // Another unit's ticket is "not found", to read or to change.
        assert_eq!(
            call(&*s, "GET", &format!("/api/tickets/{b}"), Some(T0), "").status,
            404
        );
        assert_eq!(
            call(
                &*s,
                "POST",
                &format!("/api/tickets/{b}/accept"),
                Some(T0),
                ""
            )
            .status,
            404
        );
        assert_eq!(
            s.get(&TicketId::parse(&b).unwrap())
                .unwrap()
                .unwrap()
                .status,
            Status::Dispatched
        );
        assert_eq!(
            call(&*s, "GET", "/api/tickets/2612019999", Some(T0), "").status,
            404
        );
        assert_eq!(
            call(&*s, "GET", "/api/tickets/nonsense", Some(T0), "").status,
            404
        );
        // Filters.
        let r = call(&*s, "GET", "/api/tickets?status=accepted", Some(T0), "");
        assert_eq!(r.body.as_array().unwrap().len(), 0);
        let r = call(&*s, "GET", "/api/tickets?overdue=true", Some(T0), "");
        assert_eq!(r.body.as_array().unwrap().len(), 0);
        assert_eq!(
            call(&*s, "GET", "/api/tickets?status=lost", Some(T0), "").status,
            400
        );
        assert_eq!(
            call(&*s, "GET", "/api/tickets?color=red", Some(T0), "").status,
            400
        );
    }

    #[test]
    fn a_unit_accepts_extends_and_finishes_its_ticket_and_out_of_order_is_409() {
        let (s, a, _) = store("steps");
        let path = |step: &str| format!("/api/tickets/{a}/{step}");
        let r = call(
            &*s,
            "POST",
            &path("done"),
            Some(T0),
            r#"{"reply":"已处理"}"#,
        );
        assert_eq!(r.status, 409, "{:?}", r.body);
        let r = call(&*s, "POST", &path("accept"), Some(T0), "");
        assert_eq!(
            (r.status, r.body["status"].as_str()),
            (200, Some("accepted"))
        );
        let r = call(
            &*s,
            "POST",
            &path("extend"),
            Some(T0),
            r#"{"reason":"需现场核查"}"#,
        );
        assert_eq!(r.status, 400, "no due date");
        let r = call(
            &*s,
            "POST",
            &path("extend"),
            Some(T0),
            r#"{"reason":"需现场核查","due":"2026-12-08T16:00:00Z"}"#,
        );
        assert_eq!(
            (r.status, r.body["status"].as_str()),
            (200, Some("extended"))
        );
        assert_eq!(r.body["due"], "2026-12-08T16:00:00.000Z");
        let r = call(&*s, "POST", &path("done"), Some(T0), r#"{"reply":" "}"#);
        assert_eq!(r.status, 400);
        let r = call(&*s, "POST", &path("done"), Some(T0), "not json");
        assert_eq!(r.status, 400);
        let r = call(
            &*s,
            "POST",
            &path("done"),
            Some(T0),
            r#"{"reply":"已协调处理"}"#,
        );
        assert_eq!(
            (r.status, r.body["reply"].as_str()),
            (200, Some("已协调处理"))
        );
        let history = r.body["history"].as_array().unwrap();
        assert_eq!(history.last().unwrap()["by"], "市交通运输局");
        assert_eq!(call(&*s, "POST", &path("visit"), Some(T0), "").status, 404);
        assert_eq!(call(&*s, "DELETE", &path("done"), Some(T0), "").status, 405);
    }

    #[test]
    fn a_unit_returns_a_ticket_that_is_not_its_with_a_reason() {
        let (s, _, b) = store("return");
        let path = format!("/api/tickets/{b}/return");
        assert_eq!(
            call(&*s, "POST", &path, Some(T1), "{}").status,
            400,
            "a reason is needed"
        );
        let r = call(&*s, "POST", &path, Some(T1), r#"{"reason":"非本单位职责"}"#);
        assert_eq!(
            (r.status, r.body["status"].as_str()),
            (200, Some("returned"))
        );
        assert_eq!(r.body["reason"], "非本单位职责");
    }
}
