//! The monthly brief to the city government (月报, seed
//! `003_24cfda21df7954c7.txt`): how the line ran and how each unit handled
//! its items, from the call records and the ticket store.
//!
//! [`gather`] reads the month's records and tickets; [`build`] is pure (the
//! tests feed it a generated month with known totals) and gives the
//! figures, one self-contained HTML page in Chinese (inline SVG charts,
//! nothing fetched, prints on A4) and CSV tables.
//!
//! Definitions (the README repeats them):
//! - **answered**: put through to a seat or a trunk (`answered_by` set);
//!   **abandoned**: the caller hung up before that (`abandoned` or
//!   `cancelled`);
//! - **service level**: queue calls answered within their queue's target
//!   ÷ (queue calls answered + abandoned);
//! - **average speed of answer**: the mean wait of answered queue calls;
//! - a unit's ticket is **on time** when done (办结) by its due time,
//!   **overdue** when done late, or not done and past due at the period's
//!   end (one returned and not yet reassigned excepted); the **on-time
//!   rate** is on time ÷ (on time + overdue); **extended** counts tickets
//!   with an extension, **returned** the returns a unit made (to the unit
//!   that returned it); **satisfaction** is satisfied ÷ (satisfied +
//!   unsatisfied) 回访 answers. The tickets are those created in the
//!   month, as they stood at its end. Units are ranked by on-time rate,
//!   then satisfaction, then name.

use super::CallRecord;
use crate::routing::Table;
use crate::tickets::model::{Event, Kind as TicketKind, Ticket};
use crate::tickets::{Filter, Store, StoreError};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    pub fn parse(s: &str) -> Result<Month, anyhow::Error> {
        let bad = || anyhow::anyhow!("--month `{s}`: YYYY-MM, e.g. 2026-11");
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        let (year, month) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if y.len() != 4 || m.len() != 2 || !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(Month { year, month })
    }

    pub fn first(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or_default()
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn days(self) -> u32 {
        (self.next().first() - self.first()).num_days() as u32
    }

    /// Its first and the next month's first local midnight.
    pub fn bounds(self, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        // The day's first local instant (a zone whose clocks skip
        // midnight starts the day at 01:00).
        let midnight = |d: NaiveDate| {
            (0..4)
                .find_map(|h| {
                    tz.from_local_datetime(&d.and_hms_opt(h, 0, 0).unwrap_or_default())
                        .earliest()
                })
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        };
        (midnight(self.first()), midnight(self.next().first()))
    }
}

/// A ticket with its history.
#[derive(Debug, Clone)]
pub struct TicketFacts {
    pub ticket: Ticket,
    pub history: Vec<Event>,
}

/// What a month's report is built from.
#[derive(Debug, Clone, Default)]
pub struct Data {
    pub records: Vec<CallRecord>,
    /// The units' tickets created in the month (not the queue callbacks).
    pub tickets: Vec<TicketFacts>,
    /// The end of the period (the month's end, or now if sooner).
    pub as_of: DateTime<Utc>,
}

/// Reads the month from the store.
pub fn gather(store: &dyn Store, table: &Table, month: Month) -> Result<Data, StoreError> {
    let (start, end) = month.bounds(table.calendar.timezone());
    let records = store.call_records(start, end)?;
    let mut tickets = Vec::new();
    for t in store.list(&Filter::default())? {
        if t.new.kind == TicketKind::QueueCallback || t.created < start || t.created >= end {
            continue;
        }
        let history = store.history(&t.id)?;
        tickets.push(TicketFacts { ticket: t, history });
    }
    Ok(Data {
        records,
        tickets,
        as_of: end.min(Utc::now()),
    })
}

/// Calls of one line and routing mode.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineRow {
    pub line: String,
    pub kind: String,
    pub calls: u64,
    pub answered: u64,
    pub abandoned: u64,
}

/// Hand-offs of one kind to one target, by result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HandoffRow {
    pub kind: String,
    pub target: String,
    pub results: BTreeMap<String, u64>,
}

/// One unit's tickets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnitRow {
    pub unit: String,
    pub created: u64,
    pub on_time: u64,
    pub overdue: u64,
    pub extended: u64,
    pub returned: u64,
    pub satisfied: u64,
    pub unsatisfied: u64,
}

impl UnitRow {
    /// Of the tickets decided (done, or past due): those done on time. One
    /// not yet due counts for neither.
    pub fn on_time_rate(&self) -> Option<f64> {
        let n = self.on_time + self.overdue;
        (n > 0).then(|| self.on_time as f64 / n as f64)
    }

    pub fn satisfaction(&self) -> Option<f64> {
        let n = self.satisfied + self.unsatisfied;
        (n > 0).then(|| self.satisfied as f64 / n as f64)
    }
}

/// The month's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub centre: String,
    pub month: Month,
    pub calls: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub queue_answered: u64,
    pub queue_abandoned: u64,
    pub within_target: u64,
    /// Seconds.
    pub average_speed_of_answer: Option<f64>,
    pub by_line: Vec<LineRow>,
    /// Calls per day of the month (index 0 = the 1st).
    pub by_day: Vec<u64>,
    /// Calls per local hour.
    pub by_hour: [u64; 24],
    pub emergency_calls: u64,
    pub sub_centre_calls: u64,
    pub handoffs: Vec<HandoffRow>,
    /// Ranked, best first.
    pub units: Vec<UnitRow>,
}

impl Report {
    pub fn service_level(&self) -> Option<f64> {
        let n = self.queue_answered + self.queue_abandoned;
        (n > 0).then(|| self.within_target as f64 / n as f64)
    }

    /// The busiest days: (day of month, calls), most first, at most `n`.
    pub fn busiest_days(&self, n: usize) -> Vec<(u32, u64)> {
        let mut d: Vec<(u32, u64)> = self
            .by_day
            .iter()
            .enumerate()
            .map(|(i, c)| (i as u32 + 1, *c))
            .filter(|(_, c)| *c > 0)
            .collect();
        d.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        d.truncate(n);
        d
    }

    pub fn busiest_hour(&self) -> Option<(u32, u64)> {
        (0..24u32)
            .map(|h| (h, self.by_hour[h as usize]))
            .filter(|(_, c)| *c > 0)
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
    }
}

fn is_answered(r: &CallRecord) -> bool {
    r.answered_by.is_some()
}

fn is_abandoned(r: &CallRecord) -> bool {
    !is_answered(r) && matches!(r.result.as_str(), "abandoned" | "cancelled")
}

/// The figures of `data` (pure).
pub fn build(data: &Data, table: &Table, month: Month) -> Report {
    let tz = table.calendar.timezone();
    let target = |queue: &str| {
        table
            .queues
            .iter()
            .find(|q| q.id == queue)
            .map(|q| q.service_level.as_secs_f64())
    };
    let mut r = Report {
        centre: table.name.clone(),
        month,
        calls: 0,
        answered: 0,
        abandoned: 0,
        queue_answered: 0,
        queue_abandoned: 0,
        within_target: 0,
        average_speed_of_answer: None,
        by_line: Vec::new(),
        by_day: vec![0; month.days() as usize],
        by_hour: [0; 24],
        emergency_calls: 0,
        sub_centre_calls: 0,
        handoffs: Vec::new(),
        units: Vec::new(),
    };
    let mut waits = Vec::new();
    let mut lines: BTreeMap<(String, String), LineRow> = BTreeMap::new();
    let mut handoffs: BTreeMap<(String, String), HandoffRow> = BTreeMap::new();
    // Calls that came in: a seat's own calls (to a seat, a sub-centre, a
    // feature code) are no citizen's.
    for c in data.records.iter().filter(|c| c.origin == "trunk") {
        r.calls += 1;
        let (answered, abandoned) = (is_answered(c), is_abandoned(c));
        r.answered += u64::from(answered);
        r.abandoned += u64::from(abandoned);
        let row = lines
            .entry((c.line.clone(), c.kind.clone()))
            .or_insert_with(|| LineRow {
                line: c.line.clone(),
                kind: c.kind.clone(),
                ..LineRow::default()
            });
        row.calls += 1;
        row.answered += u64::from(answered);
        row.abandoned += u64::from(abandoned);
        if let Some(q) = &c.queue {
            if answered {
                r.queue_answered += 1;
                let w = c.wait.unwrap_or(0.0);
                waits.push(w);
                if target(q).is_some_and(|t| w <= t) {
                    r.within_target += 1;
                }
            } else if abandoned {
                r.queue_abandoned += 1;
            }
        }
        match c.kind.as_str() {
            "emergency" => r.emergency_calls += 1,
            "sub_centre" => r.sub_centre_calls += 1,
            _ => {}
        }
        let local = c.started.with_timezone(&tz);
        if local.year() == month.year && local.month() == month.month {
            r.by_day[local.day0() as usize] += 1;
        }
        r.by_hour[local.hour() as usize] += 1;
        for h in &c.handoffs {
            let row = handoffs
                .entry((h.kind.clone(), h.target.clone()))
                .or_insert_with(|| HandoffRow {
                    kind: h.kind.clone(),
                    target: h.target.clone(),
                    results: BTreeMap::new(),
                });
            *row.results.entry(h.result.clone()).or_default() += 1;
        }
    }
    r.average_speed_of_answer =
        (!waits.is_empty()).then(|| waits.iter().sum::<f64>() / waits.len() as f64);
    r.by_line = lines.into_values().collect();
    r.by_line
        .sort_by(|a, b| b.calls.cmp(&a.calls).then(a.line.cmp(&b.line)));
    r.handoffs = handoffs.into_values().collect();

    let mut units: BTreeMap<String, UnitRow> = BTreeMap::new();
    let row = |units: &mut BTreeMap<String, UnitRow>, unit: &str| {
        units.entry(unit.to_string()).or_insert_with(|| UnitRow {
            unit: unit.to_string(),
            ..UnitRow::default()
        });
    };
    for f in &data.tickets {
        let t = &f.ticket;
        // The ticket as it stood at the period's end: a report of a past
        // month reads the same whenever it is made.
        let history: Vec<&Event> = f.history.iter().filter(|e| e.at <= data.as_of).collect();
        let has = |action: &str| history.iter().any(|e| e.action == action);
        // A return is the returning unit's (its `by`), whoever holds the
        // ticket now.
        for e in history.iter().filter(|e| e.action == "return") {
            let by = if table.units.contains(&e.by) {
                e.by.as_str()
            } else {
                t.new.unit.as_str()
            };
            row(&mut units, by);
            if let Some(u) = units.get_mut(by) {
                u.returned += 1;
            }
        }
        row(&mut units, &t.new.unit);
        let Some(u) = units.get_mut(&t.new.unit) else {
            continue;
        };
        u.created += 1;
        let done_at = history.iter().find(|e| e.action == "done").map(|e| e.at);
        let returned_now = history
            .last()
            .is_some_and(|e| e.status == crate::tickets::Status::Returned);
        match done_at {
            Some(at) if at <= t.new.due => u.on_time += 1,
            Some(_) => u.overdue += 1,
            // Returned and not yet given to another unit: nobody's delay.
            None if data.as_of >= t.new.due && !returned_now => u.overdue += 1,
            None => {}
        }
        u.extended += u64::from(has("extend"));
        for e in history.iter().filter(|e| e.action == "visit") {
            match e.status {
                crate::tickets::Status::Visited => u.satisfied += 1,
                crate::tickets::Status::Reopened => u.unsatisfied += 1,
                _ => {}
            }
        }
    }
    let mut units: Vec<UnitRow> = units.into_values().collect();
    let key = |x: Option<f64>| x.unwrap_or(-1.0);
    units.sort_by(|a, b| {
        key(b.on_time_rate())
            .total_cmp(&key(a.on_time_rate()))
            .then(key(b.satisfaction()).total_cmp(&key(a.satisfaction())))
            .then(a.unit.cmp(&b.unit))
    });
    r.units = units;
    r
}

// ── Presentation ──────────────────────────────────────────────────────

/// The start of a printable report page (A4, CJK fonts, tables and
/// figures kept whole), up to the open `<body>`.
pub(crate) fn page_start(title: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{}</title><style>\
         body{{font-family:\"Noto Sans CJK SC\",\"Source Han Sans SC\",\"WenQuanYi Micro Hei\",\"Microsoft YaHei\",serif;max-width:960px;margin:2em auto;color:#111;line-height:1.5}}\
         h1{{font-size:1.6em;text-align:center}} h2{{font-size:1.2em;border-bottom:2px solid #2f6fdb;margin-top:1.6em}}\
         table{{border-collapse:collapse;width:100%;margin:.6em 0}} th,td{{border:1px solid #999;padding:.25em .5em;text-align:right}}\
         th{{background:#eef2fa}} td:nth-child(2),td:first-child{{text-align:left}}\
         .kpi{{display:grid;grid-template-columns:repeat(4,1fr);gap:.6em}} .kpi div{{border:1px solid #ccc;padding:.5em;text-align:center}}\
         .kpi b{{display:block;font-size:1.5em}} figure{{margin:.6em 0}} figcaption{{font-weight:bold}}\
         @page{{size:A4;margin:15mm}} @media print{{h2{{break-after:avoid}} table,figure{{break-inside:avoid}}}}\
         </style></head><body>",
        esc(title)
    );
    s
}

pub(crate) fn pct(x: Option<f64>) -> String {
    x.map_or("—".into(), |x| format!("{:.1}%", x * 100.0))
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn kind_zh(kind: &str) -> &str {
    match kind {
        "queue" => "并入12345",
        "direct" => "双号并行",
        "sub_centre" => "分中心",
        "emergency" => "紧急转接",
        "leader_session" => "热线问政",
        "reject" => "拒接",
        other => other,
    }
}

fn handoff_zh(kind: &str) -> &str {
    match kind {
        "blind" => "直接转接",
        "attended" => "咨询转接",
        "three_way" => "三方通话",
        "emergency" => "紧急移交",
        other => other,
    }
}

/// A bar chart as inline SVG: `bars` are (label, value).
pub(crate) fn bars(title: &str, bars: &[(String, u64)], id: &str) -> String {
    let (w, h, pad) = (720.0_f64, 220.0_f64, 28.0_f64);
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
    let n = bars.len().max(1) as f64;
    let step = (w - pad) / n;
    let mut s = format!(
        "<figure><figcaption>{}</figcaption><svg id=\"{id}\" viewBox=\"0 0 {w} {}\" width=\"100%\" role=\"img\" aria-label=\"{}\">",
        esc(title),
        h + 24.0,
        esc(title)
    );
    let _ = write!(
        s,
        "<line x1=\"{pad}\" y1=\"{h}\" x2=\"{w}\" y2=\"{h}\" stroke=\"#555\"/>"
    );
    for (i, (label, v)) in bars.iter().enumerate() {
        let bh = (*v as f64 / max) * (h - 20.0);
        let x = pad + i as f64 * step + step * 0.15;
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#2f6fdb\" data-value=\"{v}\"><title>{}: {v}</title></rect>",
            h - bh,
            step * 0.7,
            esc(label)
        );
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
            x + step * 0.35,
            h + 14.0,
            esc(label)
        );
        if *v > 0 {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"middle\">{v}</text>",
                x + step * 0.35,
                h - bh - 3.0
            );
        }
    }
    s + "</svg></figure>"
}

pub(crate) fn table(head: &[&str], rows: &[Vec<String>], id: &str) -> String {
    let mut s = format!("<table id=\"{id}\"><thead><tr>");
    for h in head {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s += "</tr></thead><tbody>";
    for r in rows {
        s += "<tr>";
        for c in r {
            let _ = write!(s, "<td>{}</td>", esc(c));
        }
        s += "</tr>";
    }
    s + "</tbody></table>"
}

impl Report {
    fn line_rows(&self) -> Vec<Vec<String>> {
        self.by_line
            .iter()
            .map(|l| {
                vec![
                    l.line.clone(),
                    kind_zh(&l.kind).to_string(),
                    l.calls.to_string(),
                    l.answered.to_string(),
                    l.abandoned.to_string(),
                ]
            })
            .collect()
    }

    fn handoff_rows(&self) -> Vec<Vec<String>> {
        self.handoffs
            .iter()
            .map(|h| {
                let total: u64 = h.results.values().sum();
                let results: Vec<String> =
                    h.results.iter().map(|(k, v)| format!("{k} {v}")).collect();
                vec![
                    handoff_zh(&h.kind).to_string(),
                    h.target.clone(),
                    total.to_string(),
                    h.results.get("completed").copied().unwrap_or(0).to_string(),
                    results.join("，"),
                ]
            })
            .collect()
    }

    fn unit_rows(&self) -> Vec<Vec<String>> {
        self.units
            .iter()
            .enumerate()
            .map(|(i, u)| {
                vec![
                    (i + 1).to_string(),
                    u.unit.clone(),
                    u.created.to_string(),
                    u.on_time.to_string(),
                    pct(u.on_time_rate()),
                    u.overdue.to_string(),
                    u.extended.to_string(),
                    u.returned.to_string(),
                    pct(u.satisfaction()),
                ]
            })
            .collect()
    }

    /// The report as one HTML page.
    pub fn html(&self) -> String {
        let title = format!(
            "{} {}年{}月运行情况月报",
            self.centre, self.month.year, self.month.month
        );
        let mut s = page_start(&title);
        let _ = write!(s, "<h1>{}</h1>", esc(&title));
        let asa = self
            .average_speed_of_answer
            .map_or("—".into(), |a| format!("{a:.1}秒"));
        let _ = write!(
            s,
            "<h2>一、总体情况</h2><div class=\"kpi\">\
             <div>来电总量<b id=\"calls\">{}</b></div><div>接通<b id=\"answered\">{}</b></div>\
             <div>放弃<b id=\"abandoned\">{}</b></div><div>服务水平<b id=\"service-level\">{}</b></div>\
             <div>平均应答时长<b id=\"asa\">{}</b></div><div>紧急来电<b id=\"emergency\">{}</b></div>\
             <div>分中心来电<b id=\"sub-centre\">{}</b></div><div>工单<b id=\"tickets\">{}</b></div></div>",
            self.calls,
            self.answered,
            self.abandoned,
            pct(self.service_level()),
            asa,
            self.emergency_calls,
            self.sub_centre_calls,
            self.units.iter().map(|u| u.created).sum::<u64>()
        );
        s += "<h2>二、分号码、分模式来电</h2>";
        s += &table(
            &["号码", "整合模式", "来电", "接通", "放弃"],
            &self.line_rows(),
            "by-line",
        );
        s += "<h2>三、来电高峰</h2>";
        let days: Vec<(String, u64)> = self
            .by_day
            .iter()
            .enumerate()
            .map(|(i, c)| ((i + 1).to_string(), *c))
            .collect();
        s += &bars("每日来电量", &days, "chart-days");
        let hours: Vec<(String, u64)> =
            (0..24).map(|h| (format!("{h}"), self.by_hour[h])).collect();
        s += &bars("各时段来电量（时）", &hours, "chart-hours");
        let busiest: Vec<String> = self
            .busiest_days(5)
            .iter()
            .map(|(d, c)| format!("{}月{}日 {}次", self.month.month, d, c))
            .collect();
        let _ = write!(
            s,
            "<p>来电最多的日期：<span id=\"busiest-days\">{}</span>。",
            esc(&busiest.join("、"))
        );
        if let Some((h, c)) = self.busiest_hour() {
            let _ = write!(
                s,
                "来电最集中的时段：<span id=\"busiest-hour\">{h}时至{}时</span>（{c}次）。",
                h + 1
            );
        }
        s += "</p><h2>四、紧急移交与分中心转接</h2>";
        if self.handoffs.is_empty() {
            s += "<p>本月无转接。</p>";
        } else {
            s += &table(
                &["类型", "去向", "次数", "成功", "结果"],
                &self.handoff_rows(),
                "handoffs",
            );
        }
        s += "<h2>五、承办单位工单办理情况（按按时办结率排名）</h2>";
        s += &table(
            &[
                "排名",
                "承办单位",
                "受理工单",
                "按时办结",
                "按时办结率",
                "超期",
                "延期",
                "退回",
                "回访满意率",
            ],
            &self.unit_rows(),
            "units",
        );
        s += "<p>说明：服务水平＝排队来电中在目标时长内接通数÷（接通数＋放弃数）；按时办结指在承办时限内办结；回访满意率＝满意÷（满意＋不满意）。</p>";
        s + "</body></html>\n"
    }

    /// The report's tables as CSV files: (file name, text).
    pub fn csvs(&self) -> Vec<(&'static str, String)> {
        let csv = |head: &[&str], rows: Vec<Vec<String>>| {
            let mut s = head.join(",") + "\n";
            for r in rows {
                s += &r
                    .iter()
                    .map(|c| super::export::field(c))
                    .collect::<Vec<_>>()
                    .join(",");
                s += "\n";
            }
            s
        };
        let summary = vec![vec![
            self.calls.to_string(),
            self.answered.to_string(),
            self.abandoned.to_string(),
            self.service_level()
                .map_or(String::new(), |x| format!("{x:.4}")),
            self.average_speed_of_answer
                .map_or(String::new(), |x| format!("{x:.1}")),
            self.emergency_calls.to_string(),
            self.sub_centre_calls.to_string(),
        ]];
        let days = self
            .by_day
            .iter()
            .enumerate()
            .map(|(i, c)| {
                vec![
                    format!(
                        "{:04}-{:02}-{:02}",
                        self.month.year,
                        self.month.month,
                        i + 1
                    ),
                    c.to_string(),
                ]
            })
            .collect();
        let hours = (0..24)
            .map(|h| vec![h.to_string(), self.by_hour[h].to_string()])
            .collect();
        vec![
            (
                "summary.csv",
                csv(
                    &[
                        "calls",
                        "answered",
                        "abandoned",
                        "service_level",
                        "average_speed_of_answer_seconds",
                        "emergency_calls",
                        "sub_centre_calls",
                    ],
                    summary,
                ),
            ),
            (
                "lines.csv",
                csv(
                    &["line", "mode", "calls", "answered", "abandoned"],
                    self.by_line
                        .iter()
                        .map(|l| {
                            vec![
                                l.line.clone(),
                                l.kind.clone(),
                                l.calls.to_string(),
                                l.answered.to_string(),
                                l.abandoned.to_string(),
                            ]
                        })
                        .collect(),
                ),
            ),
            ("days.csv", csv(&["date", "calls"], days)),
            ("hours.csv", csv(&["hour", "calls"], hours)),
            (
                "handoffs.csv",
                csv(
                    &["kind", "target", "result", "count"],
                    self.handoffs
                        .iter()
                        .flat_map(|h| {
                            h.results.iter().map(|(r, n)| {
                                vec![h.kind.clone(), h.target.clone(), r.clone(), n.to_string()]
                            })
                        })
                        .collect(),
                ),
            ),
            (
                "units.csv",
                csv(
                    &[
                        "rank",
                        "unit",
                        "created",
                        "on_time",
                        "on_time_rate",
                        "overdue",
                        "extended",
                        "returned",
                        "satisfied",
                        "unsatisfied",
                        "satisfaction",
                    ],
                    self.units
                        .iter()
                        .enumerate()
                        .map(|(i, u)| {
                            vec![
                                (i + 1).to_string(),
                                u.unit.clone(),
                                u.created.to_string(),
                                u.on_time.to_string(),
                                u.on_time_rate()
                                    .map_or(String::new(), |x| format!("{x:.4}")),
                                u.overdue.to_string(),
                                u.extended.to_string(),
                                u.returned.to_string(),
                                u.satisfied.to_string(),
                                u.unsatisfied.to_string(),
                                u.satisfaction()
                                    .map_or(String::new(), |x| format!("{x:.4}")),
                            ]
                        })
                        .collect(),
                ),
            ),
        ]
    }
}
