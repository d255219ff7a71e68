//! Tickets as operators read them: one JSON object per ticket (the
//! `hotline tickets list --json` shape, and the API's), a line of text, and
//! CSV for a spreadsheet.

use super::callback::{Attempt, Job};
use super::model::{Event, Ticket};
use super::store::time;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// A ticket with every field, and `overdue` at `now`.
pub fn to_json(t: &Ticket, now: DateTime<Utc>) -> Value {
    let s = t.new.session.as_ref();
    json!({
        "id": t.id.as_str(),
        "status": t.status.as_str(),
        "overdue": t.is_overdue(now),
        "callback_number": t.new.callback_number,
        "caller_number": t.new.caller_number,
        "dialed": t.new.dialed,
        "line": t.new.line,
        "unit": t.new.unit,
        "tag": t.new.tag,
        "kind": t.new.kind.as_str(),
        "session": s.map(|s| json!({
            "unit": s.unit, "leader": s.leader, "title": s.title, "date": s.date.to_string(),
        })),
        "created": time(t.created),
        "updated": time(t.updated),
        "due": time(t.new.due),
        "due_date": t.new.due_date.to_string(),
        "due_approximate": t.new.due_approximate,
        "request_recording": t.new.request_recording,
        "call_id": t.new.call_id,
        "recordings": t.new.recordings,
        "reply": t.reply,
        "reason": t.reason,
    })
}

pub fn event_json(e: &Event) -> Value {
    json!({
        "at": time(e.at),
        "action": e.action,
        "by": e.by,
        "status": e.status.as_str(),
        "detail": e.detail,
    })
}

/// A ticket's callbacks (回访), each round with its attempts.
pub fn callbacks_json(jobs: &[Job], attempts: &[Attempt]) -> Value {
    jobs.iter()
        .map(|j| {
            json!({
                "round": j.round,
                "number": j.number,
                "state": j.state,
                "attempts": j.attempts,
                "next_at": time(j.next_at),
                "result": j.result,
                "tried": attempts
                    .iter()
                    .filter(|a| a.round == j.round)
                    .map(|a| json!({
                        "attempt": a.attempt,
                        "at": time(a.at),
                        "result": a.result,
                        "seat": a.seat,
                    }))
                    .collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// One line per ticket, for a terminal.
pub fn line(t: &Ticket, now: DateTime<Utc>) -> String {
    format!(
        "{}  {:<10}{}  due {}  {}  {}",
        t.id,
        t.status.as_str(),
        if t.is_overdue(now) { " OVERDUE" } else { "" },
        t.new.due_date,
        t.new.unit,
        t.new.callback_number
    )
}

const CSV_COLUMNS: [&str; 13] = [
    "id",
    "status",
    "overdue",
    "created",
    "due",
    "unit",
    "kind",
    "callback_number",
    "caller_number",
    "dialed",
    "line",
    "reply",
    "reason",
];

/// RFC 4180 CSV, with a header line.
pub fn csv(tickets: &[Ticket], now: DateTime<Utc>) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    for t in tickets {
        let fields = [
            t.id.to_string(),
            t.status.as_str().to_string(),
            t.is_overdue(now).to_string(),
            time(t.created),
            time(t.new.due),
            t.new.unit.clone(),
            t.new.kind.as_str().to_string(),
            t.new.callback_number.clone(),
            t.new.caller_number.clone(),
            t.new.dialed.clone(),
            t.new.line.clone(),
            t.reply.clone().unwrap_or_default(),
            t.reason.clone().unwrap_or_default(),
        ];
        let quoted: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&quoted.join(","));
        out.push_str("\r\n");
    }
    out
}

fn csv_field(s: &str) -> String {
    // A field a spreadsheet would run as a formula (a unit's reply that
    // starts with `=`) is shown as text.
    let s = &if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_fields_are_quoted_when_they_must_be() {
        assert_eq!(super::csv_field("市交通运输局"), "市交通运输局");
        assert_eq!(super::csv_field("已处理, 谢谢"), "\"已处理, 谢谢\"");
        assert_eq!(super::csv_field("说\"好\""), "\"说\"\"好\"\"\"");
        assert_eq!(super::csv_field("两行\n文字"), "\"两行\n文字\"");
        assert_eq!(
            super::csv_field("=HYPERLINK(\"x\")"),
            "\"'=HYPERLINK(\"\"x\"\")\""
        );
        assert_eq!(super::csv_field("-1"), "'-1");
    }
}
