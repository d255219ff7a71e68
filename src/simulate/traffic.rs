//! The calls of a simulated run: when each arrives, what it dialled, and
//! what chance gives it (its handle time, its patience, its choice in a
//! leader session, whether its seat hands it on).
//!
//! Three sources of arrival times:
//! - a CSV of arrivals (`time,dialed,caller`, the columns `hotline cdr
//!   export --csv` writes, `started` standing for `time`): a real day
//!   replayed;
//! - a profile of calls per half hour per dialled number (a wide CSV: a
//!   `start` column of `HH:MM`, then one column per number), arrivals a
//!   Poisson process at each half hour's rate; [`DEFAULT_PROFILE`] is the
//!   one shipped;
//! - one Poisson stream at a fixed rate (the synthetic single queue).
//!
//! Chance comes from two ChaCha8 streams of one seed: one for arrival
//! times, one for each call's draws, made in arrival order before the run.
//! So the same seed gives the same calls with 14 seats or with 15 (the
//! comparison is of the seats, not of luck), and the same on every
//! machine.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Exp1, Poisson, StandardNormal};
use std::time::Duration;

/// The profile shipped in the binary (also `sim/profile.csv`): a city
/// centre after its merger, about 2,000 calls a day (seed 004: Zhuzhou's
/// 1,500–2,000 after folding 32 lines), shaped as a government hotline's
/// day — quiet at night, a peak from 9 to 11, a second from 14 to 17 —
/// and spread over the shipped table's lines: most to 12345, the rest to
/// the merged and dual-number lines, a few to sub-centres and the
/// emergency numbers.
pub const DEFAULT_PROFILE: &str = include_str!("../../sim/profile.csv");

/// One call as the run will meet it.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    /// From the start of the run.
    pub at: Duration,
    pub dialed: String,
    pub caller: Option<String>,
    /// Talk time once a seat answers (the queue's wrap-up comes after).
    pub handle: Duration,
    /// How long the caller waits before hanging up; `None`: for ever.
    pub patience: Option<Duration>,
    /// In a leader session: takes a callback ticket rather than waiting.
    pub wants_ticket: bool,
    /// Its seat hands it to a sub-centre (three-way), staying on the
    /// call `Settings::transfer_extra` longer.
    pub transfer: bool,
    /// The seat ends the call (`COMPLETEAGENT`), not the caller; always
    /// for a call handed on.
    pub seat_hangs_up: bool,
}

/// An arrival before its draws: when, the number dialled, the caller.
pub type Timed = (Duration, String, Option<String>);

/// How handle times are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HandleDist {
    Exponential,
    /// Log-normal with this coefficient of variation (1 = as spread as an
    /// exponential, but with fewer very short calls).
    LogNormal {
        cv: f64,
    },
    Fixed,
}

/// What each call's draws follow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draws {
    pub handle_mean: Duration,
    pub handle: HandleDist,
    /// Mean of exponential patience; `None`: nobody hangs up waiting.
    pub patience_mean: Option<Duration>,
    /// Of leader-session callers, the share who take a ticket.
    pub ticket_share: f64,
    /// Of answered calls, the share handed to a sub-centre.
    pub transfer_share: f64,
    /// Of answered calls, the share the seat ends.
    pub seat_hangup_share: f64,
}

/// A bad arrivals or profile file: its line (1-based) and why.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("line {line}: {reason}")]
pub struct TrafficError {
    pub line: usize,
    pub reason: String,
}

fn err(line: usize, reason: impl Into<String>) -> TrafficError {
    TrafficError {
        line,
        reason: reason.into(),
    }
}

/// The run's clock: where its zero lies, and how long it lasts.
#[derive(Debug, Clone, Copy)]
pub struct Day {
    pub start: DateTime<Utc>,
    pub date: NaiveDate,
    pub tz: Tz,
    pub length: Duration,
}

impl Day {
    /// The local day `date` in `tz` (23 to 25 hours across a clock change).
    pub fn local(date: NaiveDate, tz: Tz) -> Day {
        let at = |d: NaiveDate| {
            use chrono::TimeZone;
            // Where a clock change skips midnight, the day starts at the
            // first local time that exists.
            let midnight = d.and_time(NaiveTime::MIN);
            (0..=3)
                .find_map(|h| {
                    tz.from_local_datetime(&(midnight + chrono::Duration::hours(h)))
                        .earliest()
                })
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| midnight.and_utc())
        };
        let start = at(date);
        let end = at(date.succ_opt().unwrap_or(date));
        Day {
            start,
            date,
            tz,
            length: (end - start)
                .to_std()
                .unwrap_or(Duration::from_secs(86_400)),
        }
    }

    /// An offset as the local clock reads it, `HH:MM`.
    pub fn clock(&self, offset: Duration) -> String {
        let at = self.start + chrono::Duration::milliseconds(offset.as_millis() as i64);
        at.with_timezone(&self.tz).format("%H:%M").to_string()
    }

    /// The offset of a local `HH:MM[:SS[.fff]]` on this day.
    fn offset_of(&self, time: NaiveTime) -> Option<Duration> {
        use chrono::TimeZone;
        let local = self
            .tz
            .from_local_datetime(&self.date.and_time(time))
            .earliest()?;
        (local.with_timezone(&Utc) - self.start).to_std().ok()
    }
}

fn split_csv(line: &str) -> Vec<String> {
    // Fields as `cdr export` writes them: quoted when they hold a comma or
    // a quote, and a formula guard (a leading ') on text that would start
    // a formula.
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    fields
        .into_iter()
        .map(|f| {
            let f = f.trim();
            f.strip_prefix('\'').unwrap_or(f).to_string()
        })
        .collect()
}

/// Lines with their numbers, blank lines and `#` comments left out.
fn rows(text: &str) -> impl Iterator<Item = (usize, &str)> {
    // A spreadsheet's byte-order mark is not part of the first column.
    text.strip_prefix('\u{feff}')
        .unwrap_or(text)
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
}

fn parse_clock(s: &str) -> Option<NaiveTime> {
    ["%H:%M:%S%.f", "%H:%M"]
        .iter()
        .find_map(|f| NaiveTime::parse_from_str(s, f).ok())
}

/// A CSV of arrivals, oldest first once sorted: `time` (or `started`) an
/// RFC 3339 instant or a local `HH:MM[:SS]` of `day`; `dialed`; `caller`
/// optional. Other columns are ignored (a whole `cdr export` will do).
/// With `day` `None`, the day is the local date of the first instant.
pub fn read_arrivals(
    text: &str,
    day: Option<Day>,
    tz: Tz,
) -> Result<(Day, Vec<Timed>), TrafficError> {
    let mut lines = rows(text);
    let (hl, header) = lines.next().ok_or_else(|| err(1, "the file is empty"))?;
    let head = split_csv(header);
    let col = |names: &[&str]| head.iter().position(|h| names.contains(&h.as_str()));
    // A call record's `origin`: calls seats placed (seat to seat, feature
    // codes, their own outside calls) are not arrivals from the trunk.
    let origin_col = col(&["origin"]);
    let time_col = col(&["time", "started"])
        .ok_or_else(|| err(hl, "no `time` column (nor `started`, as cdr export writes)"))?;
    let dialed_col = col(&["dialed"]).ok_or_else(|| err(hl, "no `dialed` column"))?;
    let caller_col = col(&["caller"]);
    let mut day = day;
    let mut out = Vec::new();
    for (n, line) in lines {
        let f = split_csv(line);
        let get = |c: usize| f.get(c).map(String::as_str).unwrap_or("");
        if origin_col.is_some_and(|c| !matches!(get(c), "" | "trunk")) {
            continue;
        }
        let time = get(time_col);
        let dialed = get(dialed_col);
        if dialed.is_empty() {
            return Err(err(n, "`dialed` is empty"));
        }
        let at = if let Ok(instant) = DateTime::parse_from_rfc3339(time) {
            let instant = instant.with_timezone(&Utc);
            let d =
                *day.get_or_insert_with(|| Day::local(instant.with_timezone(&tz).date_naive(), tz));
            (instant - d.start).to_std().ok().filter(|o| *o < d.length)
        } else if let Some(clock) = parse_clock(time) {
            let d = day.ok_or_else(|| {
                err(
                    n,
                    format!("`{time}` is a time of day: give --date (or RFC 3339 instants)"),
                )
            })?;
            d.offset_of(clock)
        } else {
            return Err(err(
                n,
                format!("`{time}` is neither an RFC 3339 instant nor HH:MM[:SS]"),
            ));
        };
        let d = day.expect("set by the first row");
        let at = at.ok_or_else(|| err(n, format!("`{time}` is not on {}", d.date)))?;
        let caller = caller_col
            .map(get)
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        out.push((at, dialed.to_string(), caller));
    }
    let day = day.ok_or_else(|| err(hl + 1, "no arrivals"))?;
    // Records come in any order; the run takes them in time order (ties
    // keep the file's order).
    out.sort_by_key(|a| a.0);
    Ok((day, out))
}

/// Calls per half hour per dialled number.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub numbers: Vec<String>,
    /// (start of the half hour as a local clock time, mean calls per number).
    pub rows: Vec<(NaiveTime, Vec<f64>)>,
}

impl Profile {
    pub fn parse(text: &str) -> Result<Profile, TrafficError> {
        let mut lines = rows(text);
        let (hl, header) = lines.next().ok_or_else(|| err(1, "the file is empty"))?;
        let head = split_csv(header);
        if head.first().map(String::as_str) != Some("start") {
            return Err(err(hl, "the first column must be `start` (HH:MM)"));
        }
        let numbers: Vec<String> = head[1..].to_vec();
        if numbers.is_empty() || numbers.iter().any(String::is_empty) {
            return Err(err(hl, "one column per dialled number after `start`"));
        }
        let mut out = Vec::new();
        for (n, line) in lines {
            let f = split_csv(line);
            if f.len() != head.len() {
                return Err(err(
                    n,
                    format!("{} fields, the header has {}", f.len(), head.len()),
                ));
            }
            let start = NaiveTime::parse_from_str(&f[0], "%H:%M")
                .map_err(|_| err(n, format!("`{}` is not HH:MM", f[0])))?;
            if start.minute() % 30 != 0 || start.second() != 0 {
                return Err(err(n, format!("`{}` does not start a half hour", f[0])));
            }
            if out
                .last()
                .is_some_and(|(t, _): &(NaiveTime, _)| *t >= start)
            {
                return Err(err(n, "half hours must go in order"));
            }
            let calls = f[1..]
                .iter()
                .map(|c| match c.parse::<f64>() {
                    Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
                    _ => Err(err(n, format!("`{c}` is not a number of calls"))),
                })
                .collect::<Result<Vec<f64>, _>>()?;
            out.push((start, calls));
        }
        if out.is_empty() {
            return Err(err(hl + 1, "no half hours"));
        }
        Ok(Profile { numbers, rows: out })
    }

    /// Calls per day, summed.
    pub fn total(&self) -> f64 {
        self.rows.iter().flat_map(|r| r.1.iter()).sum()
    }

    /// Poisson arrivals at each half hour's rate, over `day`, times
    /// `scale` (a busier day).
    pub fn arrivals(&self, day: &Day, scale: f64, seed: u64) -> Vec<Timed> {
        let mut rng = stream(seed, 0);
        let mut out = Vec::new();
        for (start, calls) in &self.rows {
            let Some(from) = day.offset_of(*start) else {
                continue;
            };
            let span = Duration::from_secs(1800).min(day.length.saturating_sub(from));
            for (number, &mean) in self.numbers.iter().zip(calls) {
                let mean = mean * scale;
                if mean <= 0.0 {
                    continue;
                }
                let n = Poisson::new(mean)
                    .map(|p| p.sample(&mut rng) as u64)
                    .unwrap_or(0);
                for _ in 0..n {
                    let at = from + span.mul_f64(rng.random::<f64>());
                    out.push((at, number.clone(), None));
                }
            }
        }
        out.sort_by_key(|a| a.0);
        out
    }
}

use chrono::Timelike;

/// A Poisson stream of `per_hour` calls to `dialed` over `length`.
pub fn poisson(per_hour: f64, length: Duration, dialed: &str, seed: u64) -> Vec<Timed> {
    let mut rng = stream(seed, 0);
    let mut out = Vec::new();
    let Ok(gap) = Exp::new(per_hour / 3600.0) else {
        return out;
    };
    let mut t = 0.0_f64;
    loop {
        t += gap.sample(&mut rng);
        if t >= length.as_secs_f64() {
            return out;
        }
        out.push((Duration::from_secs_f64(t), dialed.to_string(), None));
    }
}

/// Gives each arrival its draws, in arrival order, from the seed's second
/// stream. Every call takes the same five draws whatever the settings (a
/// unit exponential and a standard normal for its handle time, a unit
/// exponential for its patience, two uniforms for its choices), scaled
/// afterwards: so turning patience on, or changing the handle
/// distribution, leaves every other draw of every call as it was.
pub fn draw(times: Vec<Timed>, d: &Draws, seed: u64) -> Vec<Arrival> {
    let mut rng = stream(seed, 1);
    let mean = d.handle_mean.as_secs_f64();
    // Log-normal with mean `mean` and coefficient of variation `cv`.
    let (mu, sigma) = match d.handle {
        HandleDist::LogNormal { cv } => {
            let s2 = (1.0 + cv * cv).ln();
            (mean.max(1e-9).ln() - s2 / 2.0, s2.sqrt())
        }
        _ => (0.0, 0.0),
    };
    times
        .into_iter()
        .map(|(at, dialed, caller)| {
            let e: f64 = Exp1.sample(&mut rng);
            let z: f64 = StandardNormal.sample(&mut rng);
            let p: f64 = Exp1.sample(&mut rng);
            let ticket = rng.random::<f64>() < d.ticket_share;
            let transfer_draw = rng.random::<f64>();
            let hangup_draw = rng.random::<f64>();
            let handle = match d.handle {
                HandleDist::Exponential => e * mean,
                HandleDist::LogNormal { .. } => (mu + sigma * z).exp(),
                HandleDist::Fixed => mean,
            };
            let transfer = transfer_draw < d.transfer_share;
            Arrival {
                at,
                dialed,
                caller,
                handle: Duration::from_secs_f64(handle.clamp(0.0, 30.0 * 86_400.0)),
                patience: d
                    .patience_mean
                    .map(|m| Duration::from_secs_f64((p * m.as_secs_f64()).min(30.0 * 86_400.0))),
                wants_ticket: ticket,
                transfer,
                seat_hangs_up: transfer || hangup_draw < d.seat_hangup_share,
            }
        })
        .collect()
}

fn stream(seed: u64, n: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(n);
    rng
}

/// Shifts on duty: seat, from, until (local `HH:MM`; `24:00` is midnight
/// at the end of the day; an `until` before `from` runs past midnight, and
/// the day's part before it counts too). Several rows may name one seat;
/// its shifts that overlap or touch are one. `known` says which seats the
/// table has.
pub fn read_roster(
    text: &str,
    day: &Day,
    known: &dyn Fn(&str) -> bool,
) -> Result<Vec<(String, Duration, Duration)>, TrafficError> {
    let mut lines = rows(text);
    let (hl, header) = lines.next().ok_or_else(|| err(1, "the file is empty"))?;
    if split_csv(header) != ["seat", "from", "until"] {
        return Err(err(hl, "the header must be `seat,from,until`"));
    }
    let at = |n: usize, s: &str| -> Result<Duration, TrafficError> {
        if s == "24:00" {
            return Ok(day.length);
        }
        let t = NaiveTime::parse_from_str(s, "%H:%M")
            .map_err(|_| err(n, format!("`{s}` is not HH:MM")))?;
        day.offset_of(t)
            .ok_or_else(|| err(n, format!("`{s}` does not exist on {}", day.date)))
    };
    let mut spans: Vec<(String, Duration, Duration)> = Vec::new();
    for (n, line) in lines {
        let f = split_csv(line);
        let [seat, from, until] = f.as_slice() else {
            return Err(err(n, "three fields: seat, from, until"));
        };
        if !known(seat) {
            return Err(err(n, format!("seat `{seat}` is not in the table")));
        }
        let (from, until) = (at(n, from)?, at(n, until)?);
        if from < until {
            spans.push((seat.clone(), from, until));
        } else if from > until {
            spans.push((seat.clone(), Duration::ZERO, until));
            spans.push((seat.clone(), from, day.length));
        }
    }
    spans.sort();
    let mut out: Vec<(String, Duration, Duration)> = Vec::new();
    for (seat, from, until) in spans {
        match out.last_mut() {
            Some(last) if last.0 == seat && from <= last.2 => last.2 = last.2.max(until),
            _ => out.push((seat, from, until)),
        }
    }
    Ok(out)
}
