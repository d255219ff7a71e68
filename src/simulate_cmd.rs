//! `hotline simulate`: the command's edge — arguments, files, output —
//! around [`hotline::simulate`].

use anyhow::{Context, bail};
use chrono::NaiveDate;
use hotline::config;
use hotline::simulate::plan::{self, Row};
use hotline::simulate::stats::{Figures, Tally};
use hotline::simulate::traffic::{self, Day, Draws, HandleDist, Profile};
use hotline::simulate::{self as sim, INTERVAL, Model, Outcome, Run, Settings, report};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The routing table whose routing, queues, seats and leader sessions
    /// run.
    #[arg(long, default_value = "routing.toml")]
    config: PathBuf,
    /// Replay a day: a CSV with `time` (RFC 3339, or HH:MM[:SS] with
    /// --date), `dialed` and optional `caller` (`cdr export --csv` will do).
    #[arg(long, conflicts_with_all = ["profile", "calls_per_hour"])]
    arrivals: Option<PathBuf>,
    /// Mean calls per half hour per dialled number (a CSV: `start`, then a
    /// column per number); default: the shipped profile, ~2,000 calls a day.
    #[arg(long, conflicts_with = "calls_per_hour")]
    profile: Option<PathBuf>,
    /// Every half hour of the profile this many times busier.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// The day simulated, YYYY-MM-DD in the table's timezone (its leader
    /// sessions, its calendar); default: the arrivals' day, else today.
    #[arg(long)]
    date: Option<String>,
    /// Mean talk time once a seat answers (the queue's wrap-up follows).
    #[arg(long, default_value_t = 180.0)]
    handle_seconds: f64,
    #[arg(long, value_enum, default_value_t = Dist::Exponential)]
    handle_dist: Dist,
    /// The log-normal's coefficient of variation.
    #[arg(long, default_value_t = 1.0)]
    handle_cv: f64,
    /// Mean patience of a waiting caller (exponential); default: nobody
    /// hangs up while waiting.
    #[arg(long)]
    patience_seconds: Option<f64>,
    /// Shifts: a CSV `seat,from,until` (local HH:MM); default: every seat
    /// of the table all day.
    #[arg(long)]
    roster: Option<PathBuf>,
    /// Of leader-session callers, the share who take a callback ticket.
    #[arg(long, default_value_t = 0.3)]
    ticket_share: f64,
    /// Of answered calls, the share the seat hands to a sub-centre.
    #[arg(long, default_value_t = 0.0)]
    transfer_share: f64,
    /// How much longer a seat stays on a call it hands over (three-way).
    #[arg(long, default_value_t = 60.0)]
    transfer_seconds: f64,
    /// Of answered calls, the share the seat ends (`COMPLETEAGENT` in the
    /// queue log) rather than the caller.
    #[arg(long, default_value_t = 0.5)]
    seat_hangup_share: f64,
    /// How long a seat rings before it answers.
    #[arg(long, default_value_t = 0.0)]
    answer_seconds: f64,
    /// Answered within this counts toward the service level (default: the
    /// main queue's, 20 s in the synthetic queue).
    #[arg(long)]
    service_level_seconds: Option<f64>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The synthetic single queue: Poisson arrivals at this rate …
    #[arg(long, requires = "seats")]
    calls_per_hour: Option<f64>,
    /// … served by this many identical seats …
    #[arg(long, requires = "calls_per_hour")]
    seats: Option<usize>,
    /// … for this long.
    #[arg(long, default_value_t = 24.0)]
    hours: f64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Write a self-contained HTML report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write the queue log (as `serve`'s `[acd] queue_log`) here.
    #[arg(long)]
    log: Option<PathBuf>,
    /// The fewest seats per half hour meeting --target-service-level.
    #[arg(long)]
    plan: bool,
    #[arg(long, default_value_t = 0.8)]
    target_service_level: f64,
    /// Days of generated traffic the plan averages over.
    #[arg(long, default_value_t = 10)]
    replications: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Dist {
    Exponential,
    Lognormal,
    Fixed,
}

/// A week: the longest any time given in seconds may be.
const MAX_SECONDS: f64 = 7.0 * 86_400.0;

fn secs(name: &str, x: f64) -> anyhow::Result<Duration> {
    if !(0.0..=MAX_SECONDS).contains(&x) {
        bail!("--{name} must be a number of seconds from 0 to {MAX_SECONDS} (a week)");
    }
    Ok(Duration::from_secs_f64(x))
}

fn share(name: &str, x: f64) -> anyhow::Result<f64> {
    if !(0.0..=1.0).contains(&x) {
        bail!("--{name} must be between 0 and 1");
    }
    Ok(x)
}

fn read(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Where the traffic comes from, for generating replications.
enum Source {
    Replay,
    Profile(Profile),
    Poisson(f64),
}

#[derive(Serialize)]
struct Summary {
    calls: u64,
    #[serde(flatten)]
    figures: Figures,
    waiting_at_end: u64,
    emergency: u64,
    sub_centre: u64,
    rejected: u64,
}

#[derive(Serialize)]
struct Interval {
    start: u64,
    time: String,
    #[serde(flatten)]
    figures: Figures,
}

#[derive(Serialize)]
struct QueueFigures {
    queue: String,
    #[serde(flatten)]
    figures: Figures,
}

#[derive(Serialize)]
struct Output<'a> {
    mode: &'static str,
    date: Option<String>,
    seed: u64,
    summary: Summary,
    queues: Vec<QueueFigures>,
    intervals: Vec<Interval>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<&'a [Row]>,
}

pub fn simulate(a: Args) -> anyhow::Result<ExitCode> {
    let handle_mean = secs("handle-seconds", a.handle_seconds)?;
    if handle_mean.is_zero() {
        bail!("--handle-seconds must be more than 0");
    }
    let patience_mean = a
        .patience_seconds
        .map(|p| secs("patience-seconds", p))
        .transpose()?;
    if patience_mean.is_some_and(|p| p.is_zero()) {
        bail!("--patience-seconds must be more than 0");
    }
    if !(a.scale.is_finite() && a.scale >= 0.0) {
        bail!("--scale must be a number ≥ 0");
    }
    if !(a.handle_cv.is_finite() && a.handle_cv > 0.0) {
        bail!("--handle-cv must be more than 0");
    }
    let synthetic = a.calls_per_hour.is_some();
    let draws = Draws {
        handle_mean,
        handle: match a.handle_dist {
            Dist::Exponential => HandleDist::Exponential,
            Dist::Lognormal => HandleDist::LogNormal { cv: a.handle_cv },
            Dist::Fixed => HandleDist::Fixed,
        },
        patience_mean,
        ticket_share: share("ticket-share", a.ticket_share)?,
        transfer_share: share("transfer-share", a.transfer_share)?,
        seat_hangup_share: share("seat-hangup-share", a.seat_hangup_share)?,
    };
    let target_level = share("target-service-level", a.target_service_level)?;
    if a.scale > 1000.0 {
        bail!("--scale must be at most 1000");
    }
    if a.arrivals.is_some() && a.scale != 1.0 {
        eprintln!("warning: --scale applies to a profile, not to replayed arrivals: ignored");
    }
    let date = a
        .date
        .as_deref()
        .map(|d| {
            NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .with_context(|| format!("--date `{d}` is not YYYY-MM-DD"))
        })
        .transpose()?;
    let loaded;
    let (model, times, source, sl_default, wrap_up, day) = if let Some(rate) = a.calls_per_hour {
        if !(rate > 0.0 && rate <= 1e7) {
            bail!("--calls-per-hour must be more than 0 (at most 10,000,000)");
        }
        if !(a.hours >= 1.0 / 3600.0 && a.hours <= 24.0 * 366.0) {
            bail!("--hours must be from a second (1/3600) to a year (8784)");
        }
        let seats = a.seats.unwrap_or(0);
        if !(1..=100_000).contains(&seats) {
            bail!("--seats must be from 1 to 100,000");
        }
        if date.is_some() {
            eprintln!(
                "warning: --date is for a table's day; the synthetic queue's starts at 0:00: ignored"
            );
        }
        let length = Duration::from_secs_f64(a.hours * 3600.0);
        let times = traffic::poisson(rate, length, "pool", a.seed);
        let model = Model::Pool {
            wrap_up: Duration::ZERO,
            seats: vec![seats],
        };
        (
            model,
            times,
            Source::Poisson(rate),
            Duration::from_secs(20),
            Duration::ZERO,
            None,
        )
    } else {
        loaded = config::load(&a.config).map_err(|e| anyhow::anyhow!("{e}"))?;
        let table = &loaded.table;
        let tz = table.calendar.timezone();
        let given = date.map(|d| Day::local(d, tz));
        let (day, times, source) = match &a.arrivals {
            Some(path) => {
                let (day, times) = traffic::read_arrivals(&read(path)?, given, tz)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                (day, times, Source::Replay)
            }
            None => {
                let (name, text) = match &a.profile {
                    Some(p) => (p.display().to_string(), read(p)?),
                    None => (
                        "the shipped profile".to_string(),
                        traffic::DEFAULT_PROFILE.to_string(),
                    ),
                };
                let profile = Profile::parse(&text).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
                let day = given.unwrap_or_else(|| {
                    Day::local(chrono::Utc::now().with_timezone(&tz).date_naive(), tz)
                });
                let times = profile.arrivals(&day, a.scale, a.seed);
                (day, times, Source::Profile(profile))
            }
        };
        let main = table.main_line().queue.map(|q| &table.queues[q as usize]);
        let sl = main.map_or(Duration::from_secs(20), |q| q.service_level);
        let wrap = main.map_or(Duration::ZERO, |q| q.wrap_up);
        (
            Model::Table { table, day },
            times,
            source,
            sl,
            wrap,
            Some(day),
        )
    };
    let length = match (&model, day) {
        (Model::Table { .. }, Some(d)) => d.length,
        _ => Duration::from_secs_f64(a.hours * 3600.0),
    };
    let roster = match (&a.roster, day, &model) {
        (Some(path), Some(d), Model::Table { table, .. }) => {
            let known = |s: &str| table.seats.iter().any(|t| t.id == s);
            Some(
                traffic::read_roster(&read(path)?, &d, &known)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            )
        }
        (Some(_), ..) => bail!("--roster is for a table's seats; the synthetic queue has --seats"),
        _ => None,
    };
    // A seat that answers after its queue's ring time never answers: every
    // offer rings out and autopause takes the seats away.
    if let Model::Table { table, .. } = &model
        && let Some(q) = table
            .queues
            .iter()
            .filter(|q| !q.ring.is_zero())
            .min_by_key(|q| q.ring)
        && a.answer_seconds >= q.ring.as_secs_f64()
    {
        bail!(
            "--answer-seconds must be shorter than queue `{}`'s ring_seconds ({} s): seats would never answer",
            q.id,
            q.ring.as_secs_f64()
        );
    }
    let service_level = match a.service_level_seconds {
        Some(s) => secs("service-level-seconds", s)?,
        None => sl_default,
    };
    let settings = Settings {
        length,
        service_level,
        answer_delay: secs("answer-seconds", a.answer_seconds)?,
        transfer_extra: secs("transfer-seconds", a.transfer_seconds)?,
        sample_every: Duration::from_secs(60).max(length / 2000),
        roster,
    };
    let arrivals = traffic::draw(times, &draws, a.seed);
    let mut log_file = match &a.log {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        )),
        None => None,
    };
    let run = sim::run(
        &model,
        &arrivals,
        &settings,
        log_file.as_mut().map(|f| f as &mut dyn std::io::Write),
    );
    if let Some(e) = &run.log_error {
        bail!("cannot write the queue log: {e}");
    }
    if let Some(mut f) = log_file {
        std::io::Write::flush(&mut f).context("cannot write the queue log")?;
    }
    let unserved: BTreeSet<&str> = run
        .calls
        .iter()
        .zip(&arrivals)
        .filter(|(c, _)| c.outcome == Outcome::Rejected)
        .map(|(_, a)| a.dialed.as_str())
        .collect();
    if !unserved.is_empty() {
        eprintln!(
            "warning: {} calls were refused by the table (numbers it does not serve, barred callers): {}",
            run.total.rejected,
            unserved.into_iter().collect::<Vec<_>>().join(", ")
        );
    }

    let plan_rows = if a.plan {
        let target = target_level;
        let days = replications(&model, &arrivals, &settings, &source, &a, &draws, &run);
        Some(plan::plan(
            &days,
            &settings,
            plan::Target {
                service_level: target,
                within: service_level,
                handle: handle_mean
                    + wrap_up
                    + settings.transfer_extra.mul_f64(draws.transfer_share),
                wrap_up,
            },
        ))
    } else {
        None
    };

    let clock = |offset: Duration| match day {
        Some(d) if length <= Duration::from_secs(90_000) => d.clock(offset),
        _ => {
            let m = offset.as_secs() / 60;
            format!("{}:{:02}", m / 60, m % 60)
        }
    };
    let sl_secs = service_level.as_secs_f64();
    let figures = |t: &Tally, staffed_over: Option<f64>| {
        let mut f = t.figures(sl_secs);
        f.seats_staffed = staffed_over.map(|span| (t.staffed / span * 100.0).round() / 100.0);
        f
    };
    let out = Output {
        mode: if synthetic { "synthetic" } else { "table" },
        date: day.map(|d| d.date.to_string()),
        seed: a.seed,
        summary: Summary {
            calls: run.total.calls,
            figures: figures(&run.total, None),
            waiting_at_end: run.waiting_at_end,
            emergency: run.total.emergency,
            sub_centre: run.total.sub_centre,
            rejected: run.total.rejected,
        },
        queues: run
            .queues
            .iter()
            .zip(&run.per_queue)
            .map(|(q, t)| {
                // Seat time is not split between queues (a seat serves
                // several): no occupancy per queue.
                let mut figures = figures(t, None);
                figures.occupancy = None;
                QueueFigures {
                    queue: q.clone(),
                    figures,
                }
            })
            .collect(),
        intervals: run
            .intervals
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let start = INTERVAL * i as u32;
                let span = INTERVAL.min(length.saturating_sub(start)).as_secs_f64();
                Interval {
                    start: start.as_secs(),
                    time: clock(start),
                    figures: figures(t, Some(span)),
                }
            })
            .collect(),
        plan: plan_rows.as_deref(),
    };
    if a.json {
        print(&(serde_json::to_string(&out)? + "\n"));
    } else {
        print_text(&out, &run, &clock);
    }
    if let Some(path) = &a.report {
        let title = match (&model, day) {
            (Model::Table { table, .. }, Some(d)) => format!("{} {}", table.name, d.date),
            _ => format!(
                "单队列（{} 来电/小时，{} 座席）",
                a.calls_per_hour.unwrap_or(0.0),
                a.seats.unwrap_or(0)
            ),
        };
        let settings_lines = vec![
            format!(
                "来电 {}，进入队列 {}；平均通话 {} 秒（{}）{}",
                run.total.calls,
                run.total.offered,
                a.handle_seconds,
                match a.handle_dist {
                    Dist::Exponential => "指数分布",
                    Dist::Lognormal => "对数正态分布",
                    Dist::Fixed => "固定",
                },
                a.patience_seconds
                    .map_or("；不放弃".to_string(), |p| format!("；平均耐心 {p} 秒"))
            ),
            format!(
                "随机种子 {}；服务水平按 {} 秒内接通计",
                a.seed,
                service_level.as_secs()
            ),
        ];
        let html = report::html(
            &run,
            &report::Heading {
                title: &title,
                settings: &settings_lines,
                clock: &clock,
                target: Some(target_level),
            },
            plan_rows.as_deref(),
        );
        std::fs::write(path, html).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The days the plan averages over, queued calls only: the run's own for
/// a replayed day; for generated traffic, `--replications` days drawn
/// with the seeds from `--seed` on.
fn replications(
    model: &Model<'_>,
    arrivals: &[sim::Arrival],
    settings: &Settings,
    source: &Source,
    a: &Args,
    draws: &Draws,
    first: &Run,
) -> Vec<Vec<sim::Arrival>> {
    let queued = |run: &Run, arrivals: &[sim::Arrival]| -> Vec<sim::Arrival> {
        run.calls
            .iter()
            .zip(arrivals)
            .filter(|(c, _)| c.queue.is_some())
            .map(|(_, a)| a.clone())
            .collect()
    };
    let mut days = vec![queued(first, arrivals)];
    for k in 1..a.replications.max(1) as u64 {
        let seed = a.seed.wrapping_add(k);
        let times = match (source, model) {
            (Source::Replay, _) => break,
            (Source::Poisson(rate), _) => traffic::poisson(*rate, settings.length, "pool", seed),
            (Source::Profile(p), Model::Table { day, .. }) => p.arrivals(day, a.scale, seed),
            (Source::Profile(_), Model::Pool { .. }) => break,
        };
        let arrivals = traffic::draw(times, draws, seed);
        let run = sim::run(model, &arrivals, settings, None);
        days.push(queued(&run, &arrivals));
    }
    days
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn print(text: &str) {
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
}

fn print_text(out: &Output<'_>, run: &Run, clock: &dyn Fn(Duration) -> String) {
    let pct = |x: Option<f64>| x.map_or("—".to_string(), |x| format!("{:.1}%", x * 100.0));
    use std::fmt::Write as _;
    let mut o = String::new();
    let s = &out.summary;
    let f = &s.figures;
    let _ = writeln!(
        o,
        "{} calls{}: {} offered to queues, {} answered, {} abandoned, {} overflowed, {} waiting at the end",
        s.calls,
        out.date
            .as_ref()
            .map_or(String::new(), |d| format!(" on {d}")),
        f.offered,
        f.answered,
        f.abandoned,
        f.overflowed,
        s.waiting_at_end
    );
    let _ = writeln!(
        o,
        "service level {} within {} s, ASA {} s, P(wait) {}, P(abandon) {}, occupancy {}, longest wait {} s",
        pct(f.service_level),
        f.service_level_seconds,
        f.asa_seconds.map_or("—".into(), |x| format!("{x:.1}")),
        pct(f.p_wait),
        pct(f.p_abandon),
        pct(f.occupancy),
        f.longest_wait_seconds
    );
    let _ = writeln!(
        o,
        "tickets {}, callbacks {}, transfers {}; not queued: {} emergency, {} to sub-centres, {} refused",
        f.tickets, f.callbacks, f.transfers, s.emergency, s.sub_centre, s.rejected
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:>6} {:>7} {:>8} {:>9} {:>8} {:>7} {:>7} {:>9} {:>6}",
        "time", "offered", "answered", "abandoned", "SL", "ASA s", "occ", "longest s", "seats"
    );
    for (i, iv) in out.intervals.iter().enumerate() {
        let f = &iv.figures;
        let t = &run.intervals[i];
        if t.offered == 0 && t.staffed == 0.0 {
            continue;
        }
        let _ = writeln!(
            o,
            "{:>6} {:>7} {:>8} {:>9} {:>8} {:>7} {:>7} {:>9.0} {:>6.1}",
            iv.time,
            f.offered,
            f.answered,
            f.abandoned,
            pct(f.service_level),
            f.asa_seconds.map_or("—".into(), |x| format!("{x:.1}")),
            pct(f.occupancy),
            f.longest_wait_seconds,
            f.seats_staffed.unwrap_or(0.0)
        );
    }
    if let Some(plan) = out.plan {
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "{:>6} {:>7} {:>10} {:>9} {:>11}",
            "time", "calls", "sim seats", "Erlang C", "SL planned"
        );
        for r in plan.iter().filter(|r| r.calls > 0.0) {
            let _ = writeln!(
                o,
                "{:>6} {:>7.1} {:>10} {:>9} {:>11}",
                clock(Duration::from_secs(r.start)),
                r.calls,
                r.seats,
                r.erlang_c_seats,
                pct(r.service_level)
            );
        }
    }
    print(&o);
}
