//! The control API's answers: queues, seats, calls and leader sessions,
//! read and acted on. The admin server authenticates the request and
//! carries bytes; this module decides. Every answer is JSON; an error is
//! `{"error": message}` and, for bad input, `"field"` naming what was
//! wrong.
//!
//! | resource | who |
//! |---|---|
//! | `GET /api/queues`, `/api/seats`, `/api/seats/{id}`, `/api/calls`, `/api/calls/{id}`, `/api/sessions`, `/api/tickets/summary` | viewer, supervisor |
//! | `POST /api/seats/{id}/pause` (`{"reason": …}`), `resume`, `logout`, `login`; `POST /api/calls/{id}/hangup` | supervisor |
//!
//! The documented shape of every answer is `ops/openapi.json`.

use super::auth::Principal;
use super::hub::Hub;
use crate::call::dispatch::{Dispatch, SeatCommand, SeatRefused};
use crate::config::SharedTable;
use crate::tickets::Store;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::sync::Arc;

/// What the control API works on.
#[derive(Clone)]
pub struct Context {
    pub hub: Arc<Hub>,
    pub dispatch: Dispatch,
    pub table: SharedTable,
    pub store: Arc<dyn Store>,
}

/// An answer: status and JSON body.
#[derive(Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

pub fn reply(status: u16, body: Value) -> Reply {
    Reply { status, body }
}

pub fn error(status: u16, message: impl Into<String>) -> Reply {
    reply(status, json!({ "error": message.into() }))
}

/// `400` naming the field that was wrong.
pub fn bad_field(field: &str, message: impl Into<String>) -> Reply {
    reply(400, json!({ "error": message.into(), "field": field }))
}

/// Whether `path` is the control API's (not the units' ticket API).
pub fn is_control(path: &str) -> bool {
    path.starts_with("/api/") && !crate::tickets::api::is_api(path)
        || path == "/api/tickets/summary"
}

/// Answers one control API request from an authenticated `who`.
pub async fn handle(
    method: &str,
    path: &str,
    body: &[u8],
    who: &Principal,
    ctx: &Context,
) -> Reply {
    let parts: Vec<&str> = path
        .trim_start_matches("/api/")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let acts = matches!(
        (method, parts.as_slice()),
        ("POST", ["seats", _, _] | ["calls", _, _])
    );
    if !who.can_read() || (acts && !who.can_act()) {
        let need = if acts {
            "supervisor"
        } else {
            "viewer or supervisor"
        };
        return error(
            403,
            format!(
                "token `{}` may not do this: it needs the role {need}",
                who.name
            ),
        );
    }
    match (method, parts.as_slice()) {
        ("GET", ["queues"]) => queues(ctx).await,
        ("GET", ["seats"]) => match ctx.dispatch.snapshot().await {
            Some(s) => reply(200, json!(s.seats)),
            None => unavailable(),
        },
        ("GET", ["seats", id]) => match ctx.dispatch.snapshot().await {
            Some(s) => match s.seats.into_iter().find(|x| x.id == *id) {
                Some(seat) => reply(200, json!(seat)),
                None => error(404, format!("no seat {id}")),
            },
            None => unavailable(),
        },
        ("POST", ["seats", id, step]) => seat_step(id, step, body, who, ctx).await,
        ("GET", ["calls"]) => {
            let now = Utc::now();
            let calls: Vec<Value> = ctx.hub.calls().iter().map(|c| call_json(c, now)).collect();
            reply(200, Value::Array(calls))
        }
        ("GET", ["calls", id]) => match id.parse().ok().and_then(|id| ctx.hub.call(id)) {
            Some(c) => reply(200, call_json(&c, Utc::now())),
            None => error(404, format!("no call {id} in progress")),
        },
        ("POST", ["calls", id, step]) => call_step(id, step, body, who, ctx).await,
        ("GET", ["sessions"]) => reply(200, sessions(&ctx.table.guard(), Utc::now())),
        ("GET", ["tickets", "summary"]) => ticket_summary(ctx).await,
        ("GET", _) | ("POST", _) => error(404, "no such resource"),
        _ => error(405, "GET or POST"),
    }
}

fn unavailable() -> Reply {
    error(503, "the ACD is not running")
}

async fn queues(ctx: &Context) -> Reply {
    let Some(snapshot) = ctx.dispatch.snapshot().await else {
        return unavailable();
    };
    let queues: Vec<Value> = snapshot
        .queues
        .iter()
        .map(|q| {
            let mut v = json!(q);
            // Each caller's line and number, from its call.
            if let Some(callers) = v["callers"].as_array_mut() {
                for c in callers {
                    if let Some(view) = c["call"].as_u64().and_then(|id| ctx.hub.call(id)) {
                        c["line"] = json!(view.line);
                        c["dialed"] = json!(view.dialed);
                        c["caller"] = json!(view.caller);
                    }
                }
            }
            v
        })
        .collect();
    reply(200, Value::Array(queues))
}

async fn seat_step(id: &str, step: &str, body: &[u8], who: &Principal, ctx: &Context) -> Reply {
    let command = match step {
        "pause" => {
            let parsed: Value = if body.is_empty() {
                json!({})
            } else {
                match serde_json::from_slice(body) {
                    Ok(v) => v,
                    Err(e) => return bad_field("body", format!("the body is not JSON: {e}")),
                }
            };
            match parsed.get("reason") {
                Some(Value::String(r)) if !r.trim().is_empty() && r.chars().count() <= 64 => {
                    SeatCommand::Pause {
                        reason: r.trim().to_string(),
                    }
                }
                Some(Value::String(_)) => {
                    return bad_field("reason", "reason: 1 to 64 characters");
                }
                Some(_) => return bad_field("reason", "reason: a string"),
                None => {
                    return bad_field("reason", "a pause needs its reason: {\"reason\": \"…\"}");
                }
            }
        }
        "resume" => SeatCommand::Resume,
        "logout" => SeatCommand::Logout,
        "login" => SeatCommand::Login,
        _ => {
            return error(
                404,
                format!("no such step `{step}`: pause, resume, logout or login"),
            );
        }
    };
    tracing::info!(seat = id, step, by = %who.name, "seat command");
    match ctx.dispatch.seat(id, command).await {
        Ok(seat) => {
            ctx.hub.publish(
                "seat_command",
                json!({"seat": id, "step": step, "by": who.name}),
            );
            reply(200, json!(seat))
        }
        Err(SeatRefused::Unknown) => error(404, format!("no seat {id}")),
        Err(SeatRefused::NotLoggedIn) => error(409, format!("seat {id} is not logged in")),
    }
}

async fn call_step(id: &str, step: &str, body: &[u8], who: &Principal, ctx: &Context) -> Reply {
    use crate::call::call::command::Command;
    let Some(call) = id
        .parse::<u64>()
        .ok()
        .filter(|id| ctx.hub.call(*id).is_some())
    else {
        return error(404, format!("no call {id} in progress"));
    };
    let gone = || error(404, format!("no call {id} in progress"));
    let number = || -> Result<String, Reply> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| bad_field("body", format!("the body is not JSON: {e}")))?;
        match v.get("number") {
            Some(Value::String(n))
                if !n.is_empty() && n.len() <= 32 && n.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Ok(n.clone())
            }
            Some(_) => Err(bad_field("number", "number: 1 to 32 digits")),
            None => Err(bad_field(
                "number",
                "the number to reach: {\"number\": \"12366\"}",
            )),
        }
    };
    let cmd = match step {
        "hangup" => {
            tracing::info!(call, by = %who.name, "call ended by a supervisor");
            return if ctx.hub.tell(call, crate::call::calls::Event::Hangup) {
                reply(202, json!({"call": call, "step": "hangup"}))
            } else {
                gone()
            };
        }
        "consult" | "transfer" => match number() {
            Ok(n) if step == "consult" => Command::Consult(n),
            Ok(n) => Command::Transfer(n),
            Err(r) => return r,
        },
        "join" => Command::Join,
        "complete" => Command::Complete,
        "leave" => Command::Leave,
        "cancel" => Command::Cancel,
        _ => {
            return error(
                404,
                format!(
                    "no such step `{step}`: hangup, consult, transfer, join, complete, leave or cancel"
                ),
            );
        }
    };
    tracing::info!(call, step, by = %who.name, "call command");
    match ctx.hub.command(call, cmd).await {
        Some(Ok(())) => {
            ctx.hub.publish(
                "call_command",
                json!({"call": call, "step": step, "by": who.name}),
            );
            reply(202, json!({"call": call, "step": step}))
        }
        Some(Err(why)) => error(409, why),
        None => gone(),
    }
}

/// A call with its durations now.
fn call_json(c: &super::CallView, now: DateTime<Utc>) -> Value {
    let mut v = json!(c);
    let secs = |from: DateTime<Utc>| (now - from).num_milliseconds().max(0) as f64 / 1000.0;
    v["duration"] = json!(secs(c.started));
    v["talk"] = json!(c.now.answered.map(secs));
    v
}

/// Today's leader sessions and the next, with which are live.
pub fn sessions(table: &crate::routing::Table, now: DateTime<Utc>) -> Value {
    let today = table.calendar.local_date(now);
    let view = |s: &crate::routing::table::LeaderSession| {
        json!({
            "unit": s.unit,
            "leader": s.leader,
            "title": s.title,
            "date": s.date.to_string(),
            "start": s.start.format("%H:%M").to_string(),
            "end": s.end.format("%H:%M").to_string(),
            "starts_at": s.starts_at.to_rfc3339(),
            "ends_at": s.ends_at.to_rfc3339(),
            "lines": s.lines,
            "queue": table.queues.get(s.queue as usize).map(|q| q.id.clone()),
            "rule": s.rule,
            "live": s.starts_at <= now && now < s.ends_at,
        })
    };
    let live: Vec<Value> = table
        .sessions
        .iter()
        .filter(|s| s.starts_at <= now && now < s.ends_at)
        .map(view)
        .collect();
    let todays: Vec<Value> = table
        .sessions
        .iter()
        .filter(|s| s.date == today)
        .map(view)
        .collect();
    let next = table
        .sessions
        .iter()
        .filter(|s| s.starts_at > now)
        .min_by_key(|s| s.starts_at)
        .map(view);
    json!({ "live": live, "today": todays, "next": next })
}

async fn ticket_summary(ctx: &Context) -> Reply {
    // Wallboards ask on every event: the store is read at most every few
    // seconds.
    if let Ok(cached) = ctx.hub.summary.lock()
        && let Some((at, v)) = cached.as_ref()
        && at.elapsed() < super::hub::SUMMARY_FOR
    {
        return reply(200, v.clone());
    }
    let store = ctx.store.clone();
    let table = ctx.table.guard();
    let units = table.units.clone();
    let calendar = table.calendar.clone();
    drop(table);
    let now = Utc::now();
    let answer =
        tokio::task::spawn_blocking(move || store.list(&crate::tickets::model::Filter::default()))
            .await;
    let tickets = match answer {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "ticket summary: store error");
            return error(503, "the ticket store is unavailable; try again");
        }
        Err(_) => return error(500, "internal error"),
    };
    let v = summarise(&tickets, &units, &calendar, now);
    if let Ok(mut cached) = ctx.hub.summary.lock() {
        *cached = Some((std::time::Instant::now(), v.clone()));
    }
    reply(200, v)
}

/// Per unit: tickets open, due today (local) and not done, overdue.
pub fn summarise(
    tickets: &[crate::tickets::model::Ticket],
    units: &[String],
    calendar: &crate::routing::calendar::WorkCalendar,
    now: DateTime<Utc>,
) -> Value {
    use crate::tickets::model::Kind;
    let today = calendar.local_date(now);
    let mut rows: Vec<(String, [u64; 3])> = units.iter().map(|u| (u.clone(), [0; 3])).collect();
    for t in tickets.iter().filter(|t| t.new.kind != Kind::QueueCallback) {
        let i = match rows.iter().position(|(u, _)| *u == t.new.unit) {
            Some(i) => i,
            None => {
                rows.push((t.new.unit.clone(), [0; 3]));
                rows.len() - 1
            }
        };
        let r = &mut rows[i].1;
        if t.status.is_finished() {
            continue;
        }
        r[0] += 1;
        if calendar.local_date(t.new.due) == today {
            r[1] += 1;
        }
        if t.is_overdue(now) {
            r[2] += 1;
        }
    }
    let total = rows.iter().fold([0u64; 3], |mut a, (_, r)| {
        for k in 0..3 {
            a[k] += r[k];
        }
        a
    });
    json!({
        "open": total[0],
        "due_today": total[1],
        "overdue": total[2],
        "units": rows.iter().map(|(u, r)| json!({
            "unit": u, "open": r[0], "due_today": r[1], "overdue": r[2],
        })).collect::<Vec<_>>(),
    })
}
