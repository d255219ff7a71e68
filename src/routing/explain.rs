//! A decision explained for people and scripts: what `hotline route` prints.
//! Not on the hot path (it allocates freely).

use super::{Decision, Kind, Table, Target};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// The decision as one JSON object: `kind`, `line`, `unit`, `target`,
/// `announcement`, and for `leader_session` the session's `leader` and the
/// callback `ticket` deadline.
pub fn to_json(
    table: &Table,
    d: &Decision<'_>,
    dialed: &str,
    caller: Option<&str>,
    at: DateTime<Utc>,
) -> Value {
    let tz = table.calendar.timezone();
    let local = |t: DateTime<Utc>| {
        t.with_timezone(&tz)
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    };
    let target = match d.target {
        Target::Queue(q) => {
            json!({"type": "queue", "queue": q.id, "name": q.name, "skill": q.skill})
        }
        Target::Seats {
            expert_seats,
            skill,
        } => {
            json!({"type": "seats", "expert_seats": expert_seats, "skill": skill})
        }
        Target::Trunk(t) => json!({"type": "trunk", "trunk": t.id, "uri": t.uri, "name": t.name}),
        Target::None => Value::Null,
    };
    let dialed_line = d.dialed_line.map(|l| {
        json!({
            "number": l.number, "name": l.name, "mode": l.mode.as_str(),
            "unit": l.unit, "remark": l.remark, "routes_as": l.routes_as,
        })
    });
    let rules = d.line.and_then(|n| table.line(n));
    let session = d.session.map(|s| {
        json!({
            "unit": s.unit, "leader": s.leader, "title": s.title,
            "date": s.date.to_string(),
            "start": s.start.format("%H:%M").to_string(),
            "end": s.end.format("%H:%M").to_string(),
            "starts_at": local(s.starts_at),
            "ends_at": local(s.ends_at),
            "rule": s.rule,
            "moved_from": s.moved_from.map(|m| m.to_string()),
        })
    });
    let ticket = (d.kind == Kind::LeaderSession).then(|| {
        let dl = table.calendar.deadline(at, table.ticket_due_working_days);
        json!({
            "unit": d.unit,
            "working_days": table.ticket_due_working_days,
            "due_date": dl.due_date.to_string(),
            "due": local(dl.due),
            "approximate": dl.approximate,
        })
    });
    json!({
        "kind": d.kind.as_str(),
        "dialed": dialed,
        "caller": caller,
        "at": local(at),
        "number": d.number.map(|n| n.to_string()),
        "line": d.line,
        "line_name": rules.map(|l| l.name.clone()).or_else(|| d.line.and_then(|n| table.emergency_line(n)).map(|e| e.name.clone())),
        "mode": rules.map(|l| l.mode.as_str()),
        "dialed_line": dialed_line,
        "unit": d.unit,
        "target": target,
        "announcement": d.announcement,
        "three_way_transfer": d.three_way_transfer,
        "sub_centre_level": rules.and_then(|l| l.level).map(|l| l.as_str()),
        "leader": d.session.and_then(|s| s.leader.clone()),
        "session": session,
        "ticket": ticket,
        "reject": d.reject.map(|r| json!({"status": r.status, "reason": r.reason})),
    })
}

/// The same, as a few lines of text.
pub fn to_text(table: &Table, d: &Decision<'_>, dialed: &str, at: DateTime<Utc>) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    let local = at.with_timezone(&table.calendar.timezone());
    line(format!(
        "call to {dialed} at {}",
        local.format("%Y-%m-%d %H:%M:%S %Z")
    ));
    if let Some(n) = d.number {
        line(format!("  number:       {n}"));
    }
    line(format!("  decision:     {}", d.kind.as_str()));
    if let Some(l) = d.dialed_line {
        line(format!(
            "  dialed line:  {} {} ({}){}",
            l.number,
            l.name,
            l.mode.as_str(),
            l.remark
                .as_deref()
                .map(|r| format!(" — {r}"))
                .unwrap_or_default()
        ));
    }
    if let Some(l) = d.line {
        line(format!("  rules of:     {l}"));
    }
    if let Some(u) = d.unit {
        line(format!("  unit:         {u}"));
    }
    match d.target {
        Target::Queue(q) => line(format!(
            "  target:       queue {} ({}), seats with skill `{}`",
            q.id, q.name, q.skill
        )),
        Target::Seats {
            expert_seats,
            skill,
        } => line(format!(
            "  target:       expert seat(s) [{}], then seats with skill `{skill}`",
            expert_seats.join(", ")
        )),
        Target::Trunk(t) => line(format!("  target:       trunk {} <{}>", t.id, t.uri)),
        Target::None => {}
    }
    if d.three_way_transfer {
        line("  three-way transfer (三方转接) allowed".into());
    }
    if let Some(a) = d.announcement {
        line(format!("  announcement: {a}"));
    }
    if let Some(s) = d.session {
        // A rule's session may name no unit, leader or title: what is
        // missing is left out, not printed as an empty word.
        fn given(v: Option<&str>) -> Option<&str> {
            v.map(str::trim).filter(|v| !v.is_empty())
        }
        let mut words = vec!["热线问政".to_string()];
        words.extend(given(s.unit.as_deref().or(s.rule.as_deref())).map(String::from));
        words.extend(given(s.leader.as_deref()).map(String::from));
        words.extend(given(s.title.as_deref()).map(|t| format!("({t})")));
        words.push(format!(
            "{}–{}",
            s.start.format("%H:%M"),
            s.end.format("%H:%M")
        ));
        line(format!(
            "  session:      {}{}",
            words.join(" "),
            s.moved_from
                .map(|m| format!(", moved from {m}"))
                .unwrap_or_default(),
        ));
        let dl = table.calendar.deadline(at, table.ticket_due_working_days);
        line(format!(
            "  or ticket:    callback ticket to {}, due by end of {}{}",
            d.unit.unwrap_or("the 12345 centre"),
            dl.due_date,
            if dl.approximate {
                " (approximate: calendar does not cover the period)"
            } else {
                ""
            }
        ));
    }
    if let Some(r) = d.reject {
        line(format!("  reject:       {} {}", r.status, r.reason));
    }
    out
}
