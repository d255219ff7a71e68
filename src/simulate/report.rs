//! `--report report.html`: one self-contained page a centre manager reads
//! — the day's figures, callers waiting and seats busy across the day,
//! the service level per half hour against its target, the wait
//! distribution, the half hours in a table, and the plan when there is
//! one. Inline SVG and CSS only: it opens offline and prints on A4.

use super::plan::Row;
use super::stats::WAIT_BUCKETS;
use super::{INTERVAL, Run};
use crate::records::report::{bars, esc, page_start, pct, table};
use std::fmt::Write;

/// What the page says about the run besides its figures.
pub struct Heading<'a> {
    /// E.g. the centre's name and the date, or "synthetic queue".
    pub title: &'a str,
    /// The settings, one line each.
    pub settings: &'a [String],
    /// The half hour's label from its start (a local clock, or hours).
    pub clock: &'a dyn Fn(std::time::Duration) -> String,
    pub target: Option<f64>,
}

pub fn html(run: &Run, h: &Heading<'_>, plan: Option<&[Row]>) -> String {
    let title = format!("{} 话务模拟", h.title);
    let mut s = page_start(&title);
    let _ = write!(s, "<h1>{}</h1><ul id=\"settings\">", esc(&title));
    for line in h.settings {
        let _ = write!(s, "<li>{}</li>", esc(line));
    }
    s += "</ul>";
    let t = &run.total;
    let secs = |x: Option<f64>| x.map_or("—".into(), |x| format!("{x:.1}秒"));
    let _ = write!(
        s,
        "<h2>一、全天情况</h2><div class=\"kpi\">\
         <div>进入队列<b id=\"offered\">{}</b></div><div>接通<b id=\"answered\">{}</b></div>\
         <div>放弃<b id=\"abandoned\">{}</b></div><div>服务水平（{}秒）<b id=\"service-level\">{}</b></div>\
         <div>平均应答时长<b id=\"asa\">{}</b></div><div>需等待比例<b id=\"p-wait\">{}</b></div>\
         <div>座席占用率<b id=\"occupancy\">{}</b></div><div>最长等待<b id=\"longest-wait\">{}</b></div>\
         <div>溢出<b id=\"overflowed\">{}</b></div><div>工单<b id=\"tickets\">{}</b></div>\
         <div>转接分中心<b id=\"transfers\">{}</b></div><div>结束时仍在等待<b id=\"waiting-at-end\">{}</b></div></div>",
        t.offered,
        t.answered,
        t.abandoned,
        run.service_level.as_secs(),
        pct(t.service_level()),
        secs(t.asa()),
        pct(t.p_wait()),
        pct(t.occupancy()),
        secs(Some(t.longest_wait.as_secs_f64())),
        t.overflowed,
        t.tickets,
        t.transfers,
        run.waiting_at_end,
    );
    s += "<h2>二、排队与座席</h2>";
    s += &lines(run, h);
    s += "<h2>三、各时段服务水平</h2>";
    s += &levels(run, h);
    s += "<h2>四、等待时长分布（接通来电）</h2>";
    let mut buckets: Vec<(String, u64)> = Vec::new();
    for (i, n) in t.waits.iter().enumerate() {
        let label = match (i, WAIT_BUCKETS.get(i)) {
            (0, _) => "立即".to_string(),
            (_, Some(u)) => format!("≤{u}秒"),
            (_, None) => format!(">{}秒", WAIT_BUCKETS[WAIT_BUCKETS.len() - 1]),
        };
        buckets.push((label, *n));
    }
    s += &bars("接通前等待", &buckets, "chart-waits");
    s += "<h2>五、分时段明细</h2>";
    let rows: Vec<Vec<String>> = run
        .intervals
        .iter()
        .enumerate()
        .filter(|(_, t)| t.offered > 0 || t.staffed > 0.0)
        .map(|(i, t)| {
            vec![
                (h.clock)(INTERVAL * i as u32),
                t.offered.to_string(),
                t.answered.to_string(),
                t.abandoned.to_string(),
                pct(t.service_level()),
                secs(t.asa()),
                pct(t.occupancy()),
                format!("{:.1}", t.staffed / INTERVAL.as_secs_f64()),
            ]
        })
        .collect();
    s += &table(
        &[
            "时段",
            "进入队列",
            "接通",
            "放弃",
            "服务水平",
            "平均应答",
            "占用率",
            "在岗座席",
        ],
        &rows,
        "intervals",
    );
    if let Some(plan) = plan {
        s += "<h2>六、排班建议</h2><p>按模拟求得的每半小时最少座席数，与爱尔兰C公式（Erlang C）的结果并列。</p>";
        let rows: Vec<Vec<String>> = plan
            .iter()
            .filter(|r| r.calls > 0.0)
            .map(|r| {
                vec![
                    (h.clock)(std::time::Duration::from_secs(r.start)),
                    format!("{:.1}", r.calls),
                    r.seats.to_string(),
                    r.erlang_c_seats.to_string(),
                    pct(r.service_level),
                ]
            })
            .collect();
        s += &table(
            &[
                "时段",
                "来电",
                "模拟所需座席",
                "Erlang C",
                "按此排班的服务水平",
            ],
            &rows,
            "plan",
        );
    }
    s + "</body></html>\n"
}

const W: f64 = 720.0;
const H: f64 = 220.0;
const PAD: f64 = 36.0;

fn frame(id: &str, caption: &str, max: f64, hours: f64) -> String {
    let mut s = format!(
        "<figure><figcaption>{}</figcaption><svg id=\"{id}\" viewBox=\"0 0 {W} {}\" width=\"100%\" role=\"img\" aria-label=\"{}\">",
        esc(caption),
        H + 24.0,
        esc(caption)
    );
    let _ = write!(
        s,
        "<line x1=\"{PAD}\" y1=\"{H}\" x2=\"{W}\" y2=\"{H}\" stroke=\"#555\"/><line x1=\"{PAD}\" y1=\"0\" x2=\"{PAD}\" y2=\"{H}\" stroke=\"#555\"/>"
    );
    let _ = write!(
        s,
        "<text x=\"2\" y=\"10\" font-size=\"10\">{}</text><text x=\"2\" y=\"{H}\" font-size=\"10\">0</text>",
        fmt_max(max)
    );
    let step = (hours / 12.0).ceil().max(1.0);
    let mut x = 0.0;
    while x <= hours {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"{}\">{x}</text>",
            PAD + x / hours.max(1e-9) * (W - PAD),
            H + 14.0,
            if x + step > hours { "end" } else { "middle" }
        );
        x += step;
    }
    s
}

fn fmt_max(max: f64) -> String {
    if max <= 1.0 {
        format!("{:.0}%", max * 100.0)
    } else {
        format!("{max:.0}")
    }
}

/// Callers waiting, seats busy and seats staffed, as lines over the run.
fn lines(run: &Run, h: &Heading<'_>) -> String {
    let hours = run.length.as_secs_f64() / 3600.0;
    let max = run
        .samples
        .iter()
        .map(|s| s.waiting.max(s.staffed) as f64)
        .fold(1.0, f64::max);
    let mut s = frame(
        "chart-load",
        "等待人数（红）、忙碌座席（蓝）与在岗座席（灰），横轴为小时",
        max,
        hours,
    );
    let _ = h;
    let path = |f: &dyn Fn(&super::Sample) -> f64| {
        let mut p = String::new();
        for (i, x) in run.samples.iter().enumerate() {
            let px = PAD + x.at.as_secs_f64() / 3600.0 / hours.max(1e-9) * (W - PAD);
            let py = H - f(x) / max * (H - 10.0);
            let _ = write!(p, "{}{px:.1},{py:.1}", if i == 0 { "M" } else { " L" });
        }
        p
    };
    for (id, colour, f) in [
        (
            "staffed",
            "#999",
            &(|x: &super::Sample| x.staffed as f64) as &dyn Fn(&super::Sample) -> f64,
        ),
        ("busy", "#2f6fdb", &|x: &super::Sample| x.busy as f64),
        ("waiting", "#d23", &|x: &super::Sample| x.waiting as f64),
    ] {
        let _ = write!(
            s,
            "<path id=\"line-{id}\" d=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"/>",
            path(f)
        );
    }
    s + "</svg></figure>"
}

/// The service level per half hour as bars, the target as a line.
fn levels(run: &Run, h: &Heading<'_>) -> String {
    let n = run.intervals.len().max(1) as f64;
    let hours = run.length.as_secs_f64() / 3600.0;
    let mut s = frame(
        "chart-service-level",
        &format!(
            "各半小时服务水平（{}秒内接通/进入队列）{}",
            run.service_level.as_secs(),
            h.target.map_or(String::new(), |t| format!(
                "，目标 {:.0}%（红线）",
                t * 100.0
            ))
        ),
        1.0,
        hours,
    );
    let step = (W - PAD) / n;
    for (i, t) in run.intervals.iter().enumerate() {
        let Some(level) = t.service_level() else {
            continue;
        };
        let bh = level * (H - 10.0);
        let miss = h.target.is_some_and(|target| level < target);
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{}\" data-value=\"{level:.4}\"><title>{}: {}</title></rect>",
            PAD + i as f64 * step + step * 0.1,
            H - bh,
            step * 0.8,
            if miss { "#e8a33d" } else { "#2f6fdb" },
            (h.clock)(INTERVAL * i as u32),
            pct(Some(level))
        );
    }
    if let Some(target) = h.target {
        let y = H - target * (H - 10.0);
        let _ = write!(
            s,
            "<line id=\"target\" x1=\"{PAD}\" y1=\"{y:.1}\" x2=\"{W}\" y2=\"{y:.1}\" stroke=\"#d23\" stroke-dasharray=\"4 3\"/>"
        );
    }
    s + "</svg></figure>"
}
