//! Call records out of the store: JSON lines, or CSV for a spreadsheet
//! (lists joined with `;`, the hand-offs as `kind:number:result`).

use super::CallRecord;
use std::io::Write;

/// The CSV header, in column order.
pub const CSV_COLUMNS: &[&str] = &[
    "call_id",
    "started",
    "ended",
    "caller",
    "dialed",
    "line",
    "kind",
    "origin",
    "unit",
    "queue",
    "wait_seconds",
    "seats_offered",
    "answered_by",
    "talk_seconds",
    "handoffs",
    "recordings",
    "result",
    "end_reason",
    "ticket",
];

/// A CSV field, quoted when it must be (RFC 4180). A cell that starts as
/// a spreadsheet formula would (`=`, `+`, `-`, `@`, tab, CR: numbers and
/// names from SIP can) gets a leading `'`, so it stays text.
pub fn field(s: &str) -> String {
    let s = &if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

fn num(n: Option<f64>) -> String {
    n.map_or(String::new(), |n| format!("{n:.3}"))
}

pub fn csv_row(r: &CallRecord) -> String {
    let handoffs: Vec<String> = r
        .handoffs
        .iter()
        .map(|h| format!("{}:{}:{}", h.kind, h.number, h.result))
        .collect();
    let cells = [
        r.call_id.clone(),
        crate::tickets::store::time(r.started),
        crate::tickets::store::time(r.ended),
        opt(&r.caller).to_string(),
        r.dialed.clone(),
        r.line.clone(),
        r.kind.clone(),
        r.origin.clone(),
        opt(&r.unit).to_string(),
        opt(&r.queue).to_string(),
        num(r.wait),
        r.seats_offered.join(";"),
        opt(&r.answered_by).to_string(),
        num(r.talk),
        handoffs.join(";"),
        r.recordings.join(";"),
        r.result.clone(),
        r.end_reason.clone(),
        opt(&r.ticket).to_string(),
    ];
    cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(",")
}

/// Writes `records` as CSV (with its header) or JSON lines.
pub fn write(records: &[CallRecord], csv: bool, out: &mut dyn Write) -> std::io::Result<()> {
    if csv {
        writeln!(out, "{}", CSV_COLUMNS.join(","))?;
        for r in records {
            writeln!(out, "{}", csv_row(r))?;
        }
    } else {
        for r in records {
            writeln!(out, "{}", serde_json::to_string(r).unwrap_or_default())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_commas_quotes_or_newlines_are_quoted() {
        assert_eq!(field("8001"), "8001");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("x\ny"), "\"x\ny\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("+8613800138000"), "'+8613800138000");
        assert_eq!(field("@sum"), "'@sum");
    }
}
