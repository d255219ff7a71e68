//! The `hotline` command: `check`, `route`, `serve` and `tickets`.

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use hotline::config::{self, ConfigError};
use hotline::routing;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

mod simulate_cmd;

#[derive(Parser)]
#[command(
    name = "hotline",
    version,
    about = "SIP call-routing gateway for consolidated 12345 hotlines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a routing table: exit 0, or list every error with file, line and reason.
    Check {
        #[arg(default_value = "routing.toml")]
        file: PathBuf,
    },
    /// Explain what a call to NUMBER would do.
    Route {
        #[arg(long, default_value = "routing.toml")]
        config: PathBuf,
        /// The instant of the call, RFC 3339 (default: now).
        #[arg(long)]
        at: Option<String>,
        /// The caller's number.
        #[arg(long)]
        from: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// The dialed number, in any form (12345, 07352912345, tel:+86-735-2912345, sip:…).
        number: String,
    },
    /// Run the gateway: load the table, serve metrics, reload on SIGHUP or file change.
    Serve {
        #[arg(long, default_value = "routing.toml")]
        config: PathBuf,
        /// Metrics address, overriding `[metrics] listen` (default 127.0.0.1:9090).
        #[arg(long)]
        metrics_listen: Option<SocketAddr>,
        /// Seconds between checks of the table file for changes.
        #[arg(long, default_value_t = 1.0)]
        watch_interval: f64,
        /// SIP address for UDP and TCP, overriding `[sip] listen_udp`/`listen_tcp`.
        #[arg(long)]
        sip_listen: Option<SocketAddr>,
        /// Log lines on stderr: `text` (coloured on a terminal) or `json`
        /// (one object per line, for log shippers).
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Call records (CDR) in the store the table names: one per finished call.
    Cdr {
        #[arg(long, default_value = "routing.toml", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        action: CdrAction,
    },
    /// The monthly brief (月报): calls, service level, hand-offs, and each
    /// unit's tickets, ranked; one HTML file (SVG charts, opens offline)
    /// and CSV tables.
    Report {
        /// The month, YYYY-MM (local time of the table's timezone).
        #[arg(long)]
        month: String,
        #[arg(long, default_value = "routing.toml")]
        config: PathBuf,
        /// Where the HTML goes.
        #[arg(long, default_value = "report.html")]
        out: PathBuf,
        /// Also write the report's tables as CSV files into this folder.
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// A day of traffic through the table's real routing and ACD in
    /// simulated time: waits, service level, occupancy per half hour; an
    /// HTML report; the fewest seats per half hour for a target (--plan).
    /// With --calls-per-hour and --seats: one synthetic queue, to check
    /// against Erlang C.
    Simulate(Box<simulate_cmd::Args>),
    /// The callback tickets in the store the table names (`[tickets] store`):
    /// read them, and take an operator's steps.
    Tickets {
        #[arg(long, default_value = "routing.toml")]
        config: PathBuf,
        #[command(subcommand)]
        action: TicketsAction,
    },
}

#[derive(Subcommand)]
enum CdrAction {
    /// Records of calls started in [--since, --until), oldest first: JSON
    /// lines, or CSV.
    Export {
        /// A local date (YYYY-MM-DD, from its midnight) or an RFC 3339 instant.
        #[arg(long)]
        since: String,
        /// As --since; the end is left out.
        #[arg(long)]
        until: String,
        #[arg(long)]
        csv: bool,
    },
}

#[derive(Subcommand)]
enum TicketsAction {
    /// Tickets, oldest first.
    List {
        /// Only this unit's.
        #[arg(long)]
        unit: Option<String>,
        /// Only those in this status (created, dispatched, accepted, done,
        /// visited, reopened, returned, extended).
        #[arg(long)]
        status: Option<String>,
        /// Only those past due and not done.
        #[arg(long)]
        overdue: bool,
        /// A JSON list of ticket objects.
        #[arg(long)]
        json: bool,
    },
    /// One ticket with its history.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Every ticket as CSV (RFC 4180).
    Export {
        #[arg(long)]
        csv: bool,
    },
    /// Record the citizen's answer to a callback (回访) made by hand:
    /// satisfied closes the ticket, unsatisfied reopens it for its unit.
    Visit {
        id: String,
        #[arg(
            long,
            conflicts_with = "unsatisfied",
            required_unless_present = "unsatisfied"
        )]
        satisfied: bool,
        #[arg(long)]
        unsatisfied: bool,
    },
    /// Give a returned ticket (退回) to another unit.
    Reassign {
        id: String,
        #[arg(long)]
        unit: String,
    },
    /// Deliver a ticket whose delivery was given up (dead) again.
    Redeliver { id: String },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { file } => check(&file),
        Command::Route {
            config,
            at,
            from,
            json,
            number,
        } => match route(&config, at.as_deref(), from.as_deref(), json, &number) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::Cdr { config, action } => match cdr(&config, action) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::Report {
            month,
            config,
            out,
            csv,
        } => match report(&config, &month, &out, csv.as_deref()) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::Simulate(args) => match simulate_cmd::simulate(*args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::Tickets { config, action } => match tickets(&config, action) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::Serve {
            config,
            metrics_listen,
            watch_interval,
            sip_listen,
            log_format,
        } => {
            init_tracing(log_format);
            // Before any socket exists: process-wide, and the runtime's
            // threads share it.
            hotline::daemon::raise_open_file_limit();
            let opts = hotline::daemon::ServeOptions {
                config,
                metrics_listen,
                sip_listen,
                watch_interval: match Duration::try_from_secs_f64(
                    watch_interval.clamp(0.05, 86_400.0),
                ) {
                    Ok(d) => d,
                    Err(_) => {
                        serve_error(log_format, "--watch-interval must be a number of seconds");
                        return ExitCode::from(2);
                    }
                },
            };
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    serve_error(log_format, &format!("cannot start the runtime: {e}"));
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(hotline::daemon::serve(opts)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    if log_format == LogFormat::Text {
                        tracing::error!("{e:#}");
                    }
                    serve_error(log_format, &format!("{e:#}"));
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Logs go to stderr. Text is coloured only when stderr is a terminal (and
/// `NO_COLOR` is not set): a file or a pipe gets no escape codes. JSON is one
/// object per line, the event's fields beside `timestamp`, `level` and
/// `target`.
fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            logs.with_ansi(std::io::stderr().is_terminal() && !no_color)
                .init()
        }
        LogFormat::Json => logs.json().flatten_event(true).with_ansi(false).init(),
    }
}

/// Why `serve` could not run: a line on stderr, or, when logs are JSON, one
/// more log object, so that every line a log shipper reads parses.
fn serve_error(format: LogFormat, message: &str) {
    match format {
        LogFormat::Text => eprintln!("error: {message}"),
        LogFormat::Json => tracing::error!("{message}"),
    }
}

/// `hotline tickets`: reads the store the table names; `visit`, `reassign`
/// and `redeliver` are an operator's steps on it.
/// An instant from the command line: RFC 3339, or a local date (its
/// midnight in `tz`).
fn instant(s: &str, tz: chrono_tz::Tz, what: &str) -> anyhow::Result<DateTime<Utc>> {
    use chrono::TimeZone;
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .with_context(|| format!("{what} `{s}`: a date YYYY-MM-DD or an RFC 3339 instant"))?;
    tz.from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("{what} `{s}`: no such local midnight"))
}

fn cdr(config_path: &std::path::Path, action: CdrAction) -> anyhow::Result<ExitCode> {
    let loaded = config::load(config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let tz = loaded.table.calendar.timezone();
    let store = hotline::tickets::open(&loaded.table.tickets.store, std::path::Path::new("."))?;
    match action {
        CdrAction::Export { since, until, csv } => {
            let (since, until) = (
                instant(&since, tz, "--since")?,
                instant(&until, tz, "--until")?,
            );
            anyhow::ensure!(since < until, "--since must come before --until");
            let records = store.call_records(since, until)?;
            let mut out = std::io::stdout().lock();
            hotline::records::export::write(&records, csv, &mut out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn report(
    config_path: &std::path::Path,
    month: &str,
    out: &std::path::Path,
    csv: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let loaded = config::load(config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = hotline::tickets::open(&loaded.table.tickets.store, std::path::Path::new("."))?;
    let month = hotline::records::report::Month::parse(month)?;
    let data = hotline::records::report::gather(&*store, &loaded.table, month)?;
    let report = hotline::records::report::build(&data, &loaded.table, month);
    std::fs::write(out, report.html())
        .with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("report written to {}", out.display());
    if let Some(dir) = csv {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
        for (name, text) in report.csvs() {
            let path = dir.join(name);
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        eprintln!("CSV tables written to {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn tickets(config_path: &std::path::Path, action: TicketsAction) -> anyhow::Result<ExitCode> {
    use hotline::tickets::{Action, Filter, Status, TicketId, report};
    let ticket_id = |id: &str| {
        TicketId::parse(id)
            .with_context(|| format!("`{id}` is no ticket number (ten digits or more)"))
    };
    let loaded = config::load(config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = hotline::tickets::open(&loaded.table.tickets.store, std::path::Path::new("."))?;
    let now = Utc::now();
    match action {
        TicketsAction::List {
            unit,
            status,
            overdue,
            json,
        } => {
            let status = match status {
                Some(s) => Some(Status::parse(&s).with_context(|| {
                    format!("unknown status `{s}`: one of created, dispatched, accepted, done, visited, reopened, returned, extended")
                })?),
                None => None,
            };
            let filter = Filter {
                unit,
                status,
                overdue_at: overdue.then_some(now),
            };
            let list = store.list(&filter)?;
            if json {
                let v: Vec<_> = list.iter().map(|t| report::to_json(t, now)).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for t in &list {
                    println!("{}", report::line(t, now));
                }
            }
        }
        TicketsAction::Show { id, json } => {
            let parsed = ticket_id(&id)?;
            let Some(t) = store.get(&parsed)? else {
                eprintln!("no ticket {id}");
                return Ok(ExitCode::from(1));
            };
            let history = store.history(&parsed)?;
            let (jobs, attempts) = store.callbacks(&parsed)?;
            if json {
                let mut v = report::to_json(&t, now);
                v["history"] = history.iter().map(report::event_json).collect();
                v["callbacks"] = report::callbacks_json(&jobs, &attempts);
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report::to_json(&t, now))?
                );
                for e in &history {
                    println!(
                        "{}  {:<9} {:<10} by {}{}",
                        hotline::tickets::store::time(e.at),
                        e.action,
                        e.status.as_str(),
                        e.by,
                        e.detail
                            .as_ref()
                            .map(|d| format!(": {d}"))
                            .unwrap_or_default()
                    );
                }
                for a in &attempts {
                    println!(
                        "{}  callback  round {} attempt {}: {}{}",
                        hotline::tickets::store::time(a.at),
                        a.round,
                        a.attempt,
                        a.result,
                        a.seat
                            .as_ref()
                            .map(|s| format!(" (seat {s})"))
                            .unwrap_or_default()
                    );
                }
                for j in jobs.iter().filter(|j| j.state == "pending") {
                    println!(
                        "callback round {} due {}",
                        j.round,
                        hotline::tickets::store::time(j.next_at)
                    );
                }
            }
        }
        TicketsAction::Visit { id, satisfied, .. } => {
            let id = ticket_id(&id)?;
            let t = store.apply(&id, &Action::Visit { satisfied }, "operator", now)?;
            println!("{}", report::line(&t, now));
        }
        TicketsAction::Reassign { id, unit } => {
            if !loaded.table.units.contains(&unit) {
                anyhow::bail!("unknown unit `{unit}`: one of the table's `units`");
            }
            let id = ticket_id(&id)?;
            let t = store.apply(&id, &Action::Reassign { unit }, "operator", now)?;
            println!("{}", report::line(&t, now));
        }
        TicketsAction::Redeliver { id } => {
            let id = ticket_id(&id)?;
            let n = store.redeliver(&id, now)?;
            println!("{n} delivery(ies) of {id} sent again");
        }
        TicketsAction::Export { csv } => {
            if !csv {
                anyhow::bail!("export needs a format: --csv");
            }
            let list = store.list(&Filter::default())?;
            print!("{}", report::csv(&list, now));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn check(file: &std::path::Path) -> ExitCode {
    match config::load(file) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            let t = &loaded.table;
            let from_rules = t.sessions.iter().filter(|s| s.rule.is_some()).count();
            println!(
                "{}: ok: {} lines, {} emergency numbers, {} trunks, {} queues, {} seats, {} leader sessions ({} from rules), calendar {}",
                file.display(),
                t.lines.len(),
                t.emergency.len(),
                t.trunks.len(),
                t.queues.len(),
                t.seats.len(),
                t.sessions.len(),
                from_rules,
                t.calendar
                    .years()
                    .map(|y| y.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            ExitCode::SUCCESS
        }
        Err(ConfigError::Invalid { errors, warnings }) => {
            for d in warnings.iter().chain(errors.iter()) {
                eprintln!("{d}");
            }
            eprintln!(
                "{}: {} error{}; table refused",
                file.display(),
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            ExitCode::from(1)
        }
        Err(e @ ConfigError::Io { .. }) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn route(
    config_path: &std::path::Path,
    at: Option<&str>,
    from: Option<&str>,
    json: bool,
    number: &str,
) -> anyhow::Result<ExitCode> {
    let loaded = config::load(config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let table = loaded.table;
    let at: DateTime<Utc> = match at {
        Some(s) => DateTime::parse_from_rfc3339(s)
            .with_context(|| {
                format!("--at `{s}`: expected an RFC 3339 instant, e.g. 2023-02-22T09:30:00+08:00")
            })?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    let d = routing::route(&table, number, from, at);
    if json {
        let v = routing::explain::to_json(&table, &d, number, from, at);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", routing::explain::to_text(&table, &d, number, at));
    }
    Ok(ExitCode::SUCCESS)
}
