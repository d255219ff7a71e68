//! The simulator against queueing theory, and its properties.
//!
//! Statistical checks use batch means: a long run is cut into batches
//! (after a warm-up batch dropped), each batch gives one estimate, and the
//! estimate's standard error comes from their spread. A figure passes
//! within four standard errors (Student's t with 19 degrees of freedom
//! puts 99.9% within 3.88), and the standard error must itself be small,
//! so a loose run cannot pass by being noisy. Seeds are fixed: the tests
//! are deterministic.

use super::erlang::{ErlangA, ErlangC};
use super::traffic::{self, Day, Draws, HandleDist, Profile};
use super::*;
use chrono::NaiveDate;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn settings(hours: u64, service_level: u64) -> Settings {
    Settings {
        length: secs(hours * 3600),
        service_level: secs(service_level),
        answer_delay: Duration::ZERO,
        transfer_extra: Duration::ZERO,
        sample_every: secs(60),
        roster: None,
    }
}

fn draws(handle: u64, patience: Option<u64>) -> Draws {
    Draws {
        handle_mean: secs(handle),
        handle: HandleDist::Exponential,
        patience_mean: patience.map(secs),
        ticket_share: 0.0,
        transfer_share: 0.0,
        seat_hangup_share: 0.5,
    }
}

#[test]
fn one_setting_leaves_every_other_draw_as_it_was() {
    let times = traffic::poisson(200.0, secs(3600), "pool", 1);
    let plain = traffic::draw(times.clone(), &draws(180, None), 1);
    let mut d = draws(180, Some(60));
    d.ticket_share = 0.5;
    let other = traffic::draw(times.clone(), &d, 1);
    d.handle = HandleDist::LogNormal { cv: 0.5 };
    let lognormal = traffic::draw(times, &d, 1);
    for ((a, b), c) in plain.iter().zip(&other).zip(&lognormal) {
        assert_eq!(
            (a.handle, a.transfer, a.seat_hangs_up),
            (b.handle, b.transfer, b.seat_hangs_up)
        );
        assert_eq!((b.patience, b.wants_ticket), (c.patience, c.wants_ticket));
    }
    assert!(other.iter().any(|a| a.wants_ticket) && other.iter().all(|a| a.patience.is_some()));
    assert_ne!(plain[0].handle, lognormal[0].handle);
}

/// The synthetic single queue: `per_hour` Poisson calls, exponential
/// handle times, `seats` seats, for `hours`.
fn pool(
    per_hour: f64,
    handle: u64,
    patience: Option<u64>,
    seats: usize,
    hours: u64,
    seed: u64,
) -> Run {
    let s = settings(hours, 20);
    let times = traffic::poisson(per_hour, s.length, "pool", seed);
    let arrivals = traffic::draw(times, &draws(handle, patience), seed);
    let model = Model::Pool {
        wrap_up: Duration::ZERO,
        seats: vec![seats],
    };
    run(&model, &arrivals, &s, None)
}

/// Batch estimates of a figure: `batches` batches of `hours_each`, the
/// first (warm-up) dropped; `f` maps a batch's calls to its estimate.
fn batches(r: &Run, hours_each: u64, f: impl Fn(&[&CallFacts], &Tally) -> f64) -> (f64, f64) {
    let per = (hours_each * 2) as usize;
    let n = r.intervals.len() / per;
    let mut xs = Vec::new();
    for b in 1..n {
        let mut t = Tally::default();
        for iv in &r.intervals[b * per..(b + 1) * per] {
            t.add(iv);
        }
        let from = secs(b as u64 * hours_each * 3600);
        let until = secs((b as u64 + 1) * hours_each * 3600);
        let calls: Vec<&CallFacts> = r
            .calls
            .iter()
            .filter(|c| c.arrival >= from && c.arrival < until)
            .collect();
        xs.push(f(&calls, &t));
    }
    let k = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / k;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (k - 1.0);
    (mean, (var / k).sqrt())
}

fn close(name: &str, (mean, se): (f64, f64), theory: f64, max_se: f64) {
    assert!(
        se <= max_se,
        "{name}: standard error {se:.5} too large to say anything"
    );
    assert!(
        (mean - theory).abs() <= 4.0 * se,
        "{name}: simulated {mean:.5} ± {se:.5}, theory {theory:.5}"
    );
}

#[test]
fn a_long_run_matches_erlang_c() {
    // 100 calls per 30 minutes, 180 s handle, 14 seats: P(wait) 0.1741,
    // within 20 s 0.8884, ASA 7.84 s, occupancy 0.714. 21 batches of
    // 20 hours (about 84,000 calls).
    let r = pool(200.0, 180, None, 14, 420, 7);
    let c = ErlangC::new(10.0, 14).unwrap();
    assert!((c.p_wait - 0.1741).abs() < 1e-4);
    close(
        "p_wait",
        batches(&r, 20, |_, t| t.p_wait().unwrap()),
        c.p_wait,
        0.01,
    );
    close(
        "service level",
        batches(&r, 20, |_, t| t.service_level().unwrap()),
        c.service_level(20.0 / 180.0),
        0.01,
    );
    close(
        "ASA",
        batches(&r, 20, |_, t| t.asa().unwrap()),
        c.asa_handles * 180.0,
        0.8,
    );
    close(
        "occupancy",
        batches(&r, 20, |_, t| t.occupancy().unwrap()),
        c.occupancy,
        0.01,
    );
    assert_eq!(r.total.abandoned, 0);
}

#[test]
fn a_long_run_with_patience_matches_erlang_a() {
    // The same traffic on 11 seats, callers' patience 120 s on average:
    // heavily loaded, many abandon.
    let (lambda, mu, theta) = (200.0 / 3600.0, 1.0 / 180.0, 1.0 / 120.0);
    let a = ErlangA::new(lambda, mu, theta, 11);
    assert!(a.p_abandon > 0.03, "the case must have abandons");
    let r = pool(200.0, 180, Some(120), 11, 420, 11);
    close(
        "p_wait",
        batches(&r, 20, |_, t| t.p_wait().unwrap()),
        a.p_wait,
        0.01,
    );
    close(
        "p_abandon",
        batches(&r, 20, |_, t| t.p_abandon().unwrap()),
        a.p_abandon,
        0.01,
    );
    close(
        "occupancy",
        batches(&r, 20, |_, t| t.occupancy().unwrap()),
        a.occupancy,
        0.01,
    );
    close(
        "mean wait",
        batches(&r, 20, |calls, _| {
            let waits: Vec<f64> = calls
                .iter()
                .filter_map(|c| c.wait.map(|w| w.as_secs_f64()))
                .collect();
            waits.iter().sum::<f64>() / waits.len() as f64
        }),
        a.mean_wait,
        1.0,
    );
}

/// Each call's wait: to its answer, abandon or overflow, or to the run's
/// end for one still waiting.
fn waits(r: &Run) -> Vec<f64> {
    r.calls
        .iter()
        .map(|c| match (c.wait, c.outcome) {
            (Some(w), _) => w.as_secs_f64(),
            (None, Outcome::Open) => (r.length - c.arrival).as_secs_f64(),
            (None, _) => 0.0,
        })
        .collect()
}

#[test]
fn more_seats_never_lengthen_a_wait() {
    // 11 erlangs on 12 to 18 seats, the same calls each time. Without
    // patience, first come first served with the handle time the call's
    // own: no caller waits longer for one seat more. With patience, the
    // average wait over every caller (those who left counted to their
    // leaving) never grows either.
    for seed in 1..=4 {
        let mut last: Option<Vec<f64>> = None;
        for seats in 12..=18 {
            let w = waits(&pool(220.0, 180, None, seats, 12, seed));
            if let Some(before) = &last {
                for (i, (now, then)) in w.iter().zip(before).enumerate() {
                    assert!(
                        *now <= then + 1e-6,
                        "seed {seed}: call {i} waits {now} s with {seats} seats, {then} s with one fewer"
                    );
                }
            }
            last = Some(w);
        }
        let mut seen = Vec::new();
        for seats in 9..=16 {
            let w = waits(&pool(220.0, 180, Some(90), seats, 12, seed));
            seen.push((seats, w.iter().sum::<f64>() / w.len() as f64));
        }
        for pair in seen.windows(2) {
            assert!(pair[1].1 <= pair[0].1 + 1e-9, "seed {seed}: {seen:?}");
        }
        // Not a flat line: the seats matter.
        assert!(seen[0].1 > 2.0 * seen[seen.len() - 1].1 + 1.0, "{seen:?}");
    }
}

#[test]
fn the_same_seed_gives_the_same_run_and_another_seed_another() {
    let a = pool(200.0, 180, Some(100), 12, 10, 5);
    let b = pool(200.0, 180, Some(100), 12, 10, 5);
    let c = pool(200.0, 180, Some(100), 12, 10, 6);
    assert_eq!(format!("{:?}", a.calls), format!("{:?}", b.calls));
    assert_eq!(a.intervals, b.intervals);
    assert_eq!(a.samples, b.samples);
    assert_ne!(a.intervals, c.intervals);
}

fn conserved(r: &Run) {
    let t = &r.total;
    assert_eq!(
        t.offered,
        t.answered + t.abandoned + t.overflowed + r.waiting_at_end,
        "offered = answered + abandoned + overflowed + waiting: {t:?}"
    );
    let queued_away = r
        .calls
        .iter()
        .filter(|c| c.outcome == Outcome::Ticket)
        .count() as u64;
    assert_eq!(
        t.calls,
        t.offered + queued_away + t.emergency + t.sub_centre + t.rejected
    );
    let mut by_queue = Tally::default();
    for q in &r.per_queue {
        by_queue.add(q);
    }
    assert_eq!(by_queue.offered, t.offered);
    assert_eq!(by_queue.answered, t.answered);
    for c in &r.calls {
        if c.outcome == Outcome::Answered {
            assert!(c.seat.is_some() && c.wait.is_some());
        }
    }
}

#[test]
fn every_call_offered_is_answered_abandoned_overflowed_or_still_waiting() {
    // Overloaded (callers still waiting at the end), with and without
    // patience.
    for patience in [None, Some(60)] {
        let r = pool(400.0, 180, patience, 10, 6, 3);
        conserved(&r);
        if patience.is_none() {
            assert!(r.waiting_at_end > 0, "the overload leaves callers waiting");
        }
    }
}

fn shipped() -> crate::config::Loaded {
    crate::config::load(std::path::Path::new("routing.toml")).expect("the shipped table loads")
}

fn day_of(table: &Table, date: &str) -> Day {
    Day::local(
        NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap(),
        table.calendar.timezone(),
    )
}

fn table_run(
    table: &Table,
    date: &str,
    d: &Draws,
    scale: f64,
    seed: u64,
    log: Option<&mut dyn Write>,
) -> (Run, Vec<Arrival>) {
    let day = day_of(table, date);
    let profile = Profile::parse(traffic::DEFAULT_PROFILE).unwrap();
    let times = profile.arrivals(&day, scale, seed);
    let arrivals = traffic::draw(times, d, seed);
    let mut s = settings(24, 20);
    s.length = day.length;
    let model = Model::Table { table, day };
    (run(&model, &arrivals, &s, log), arrivals)
}

#[test]
fn on_the_shipped_day_each_call_follows_its_routing_decision() {
    let loaded = shipped();
    let table = &loaded.table;
    let mut d = draws(180, Some(240));
    d.ticket_share = 0.3;
    // A leader session day (2023-03-08, 09:00-11:00 on 12345).
    let mut log = Vec::new();
    let (r, arrivals) = table_run(table, "2023-03-08", &d, 1.0, 1, Some(&mut log));
    conserved(&r);
    let profile = Profile::parse(traffic::DEFAULT_PROFILE).unwrap();
    let expected = profile.total();
    assert!(
        (r.total.calls as f64 - expected).abs() < 4.0 * expected.sqrt(),
        "{} calls for a profile of {expected}",
        r.total.calls
    );
    // Each call's fate agrees with the routing decision at its instant
    // (that serve's ACD then does the same is tests/simulate_vs_serve.rs).
    let day = day_of(table, "2023-03-08");
    for (c, a) in r.calls.iter().zip(&arrivals) {
        let at = day.start + chrono::Duration::milliseconds(a.at.as_millis() as i64);
        let decision = routing::route(table, &a.dialed, None, at);
        match decision.kind {
            Kind::Emergency => assert_eq!(c.outcome, Outcome::Emergency, "{}", a.dialed),
            Kind::SubCentre => assert_eq!(c.outcome, Outcome::SubCentre, "{}", a.dialed),
            Kind::LeaderSession if a.wants_ticket => assert_eq!(c.outcome, Outcome::Ticket),
            Kind::LeaderSession => assert_eq!(r.queues[c.queue.unwrap() as usize], "leader"),
            Kind::Queue | Kind::Direct => {
                assert_eq!(r.queues[c.queue.unwrap() as usize], "general")
            }
            Kind::Reject => assert_eq!(c.outcome, Outcome::Rejected),
        }
    }
    assert!(r.total.emergency > 0 && r.total.sub_centre > 0);
    // Callers who chose a ticket, and those the session's end gave one.
    let chose = r
        .calls
        .iter()
        .filter(|c| c.outcome == Outcome::Ticket)
        .count() as u64;
    assert!(chose > 20, "{chose}");
    assert!(
        r.total.tickets > chose,
        "callers waiting at 11:00 take a ticket"
    );
    // Dual-number callers reach their expert seat: 12348's is 8101.
    let expert = r.seats.iter().position(|s| s == "8101").unwrap() as u32;
    assert!(
        r.calls
            .iter()
            .zip(&arrivals)
            .any(|(c, a)| a.dialed == "12348" && c.seat == Some(expert))
    );
    // The queue log is serve's: one JSON object a line, a time on the day.
    let log = String::from_utf8(log).unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert!(first["time"].as_str().unwrap().starts_with("2023-03-0"));
    let connects = log.lines().filter(|l| l.contains("\"CONNECT\"")).count() as u64;
    assert_eq!(connects, r.total.answered);
}

#[test]
fn a_roster_keeps_seats_out_of_their_off_hours() {
    let loaded = shipped();
    let table = &loaded.table;
    let day = day_of(table, "2026-12-02");
    let known = |s: &str| table.seats.iter().any(|t| t.id == s);
    let roster = traffic::read_roster(
        "seat,from,until\n8001,08:00,10:00\n8001,09:00,12:00\n8002,22:00,06:00\n8201,00:00,24:00\n",
        &day,
        &known,
    )
    .unwrap();
    // 8001's two rows are one shift.
    assert_eq!(roster.iter().filter(|r| r.0 == "8001").count(), 1);
    let e = traffic::read_roster(
        "seat,from,until\n8001,08:00,10:00\n9999,08:00,10:00\n",
        &day,
        &known,
    )
    .unwrap_err();
    assert_eq!(e.line, 3);
    assert!(e.reason.contains("9999"), "{e}");
    let profile = Profile::parse(traffic::DEFAULT_PROFILE).unwrap();
    let arrivals = traffic::draw(profile.arrivals(&day, 1.0, 2), &draws(120, Some(300)), 2);
    let mut s = settings(24, 20);
    s.length = day.length;
    s.roster = Some(roster);
    let r = run(&Model::Table { table, day }, &arrivals, &s, None);
    conserved(&r);
    let seat = |id: &str| r.seats.iter().position(|s| s == id).unwrap() as u32;
    for c in &r.calls {
        let h = c.arrival.as_secs_f64() / 3600.0;
        let connected = h + c.wait.unwrap_or_default().as_secs_f64() / 3600.0;
        if c.seat == Some(seat("8001")) {
            assert!(
                (8.0..12.0).contains(&connected),
                "8001 answered at {connected}"
            );
        }
        if c.seat == Some(seat("8002")) {
            assert!(
                !(6.0..22.0).contains(&connected),
                "8002 answered at {connected}"
            );
        }
        // Off the roster: never on duty.
        assert_ne!(c.seat, Some(seat("8202")));
    }
    assert!(r.calls.iter().any(|c| c.seat == Some(seat("8002"))));
}

#[test]
fn a_plan_lands_near_erlang_c_and_meets_its_target() {
    // Stationary traffic (10 erlangs): Erlang C asks 14 seats for 80% in
    // 20 s (13 give 79.6%); the simulated plan must be about that, and
    // meet it.
    let s = settings(4, 20);
    let days: Vec<Vec<Arrival>> = (0..8)
        .map(|k| {
            let times = traffic::poisson(200.0, s.length, "pool", 40 + k);
            traffic::draw(times, &draws(180, None), 40 + k)
        })
        .collect();
    let rows = plan::plan(
        &days,
        &s,
        plan::Target {
            service_level: 0.8,
            within: secs(20),
            handle: secs(180),
            wrap_up: Duration::ZERO,
        },
    );
    assert_eq!(rows.len(), 8);
    for r in &rows {
        // The half hour's own count of calls, about 100.
        assert!((13..=15).contains(&r.erlang_c_seats), "{r:?}");
        assert!((10..=15).contains(&r.seats), "{rows:?}");
    }
    // After the empty start, within one seat of the formula.
    assert!(
        rows[2..]
            .iter()
            .all(|r| r.seats.abs_diff(r.erlang_c_seats) <= 1),
        "{rows:?}"
    );
    // Every half hour meets the target with the plan in place.
    assert!(
        rows.iter().all(|r| r.service_level.unwrap() >= 0.8),
        "{rows:?}"
    );
    // One seat fewer everywhere misses the target.
    let fewer: Vec<usize> = rows.iter().map(|r| r.seats - 1).collect();
    let model = Model::Pool {
        wrap_up: Duration::ZERO,
        seats: fewer,
    };
    let mut t = Tally::default();
    for day in &days {
        t.add(&run(&model, day, &s, None).total);
    }
    assert!(t.service_level().unwrap() < 0.8);
}

#[test]
fn arrivals_read_as_cdr_export_writes_them_or_as_clock_times() {
    let tz = chrono_tz::Asia::Shanghai;
    // A whole `cdr export`: the calls seats placed are not arrivals.
    let csv = "call_id,started,ended,caller,dialed,origin\n\
               a,2026-12-02T01:00:05Z,x,13900000001,12345,trunk\n\
               s,2026-12-02T01:00:06Z,x,8001,8002,seat\n\
               b,2026-12-01T16:00:00Z,x,,12348,trunk\n";
    let (day, rows) = traffic::read_arrivals(csv, None, tz).unwrap();
    assert_eq!(day.date.to_string(), "2026-12-02");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], (Duration::ZERO, "12348".into(), None));
    assert_eq!(
        rows[1],
        (
            secs(9 * 3600 + 5),
            "12345".into(),
            Some("13900000001".into())
        )
    );
    let day = Day::local(NaiveDate::from_ymd_opt(2026, 12, 2).unwrap(), tz);
    let (_, rows) = traffic::read_arrivals(
        "time,dialed\n09:30,12345\n09:30:01.5,12366\n",
        Some(day),
        tz,
    )
    .unwrap();
    assert_eq!(rows[1].0, Duration::from_millis(34_201_500));
    let e = traffic::read_arrivals("time,dialed\n09:30,12345\n", None, tz).unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.reason.contains("--date"), "{e}");
    let e = traffic::read_arrivals("time,dialed\nsoon,12345\n", Some(day), tz).unwrap_err();
    assert_eq!((e.line, e.reason.contains("soon")), (2, true));
    let e = traffic::read_arrivals("when,dialed\n", Some(day), tz).unwrap_err();
    assert!(e.reason.contains("time"));
    let e = traffic::read_arrivals(
        "time,dialed\n2026-12-03T01:00:00+08:00,12345\n",
        Some(day),
        tz,
    )
    .unwrap_err();
    assert!(e.reason.contains("not on 2026-12-02"), "{e}");
}

#[test]
fn a_profile_is_checked_line_by_line_and_gives_its_rates() {
    let e = Profile::parse("begin,12345\n").unwrap_err();
    assert_eq!(e.line, 1);
    let e = Profile::parse("start,12345\n00:00,1\n00:15,1\n").unwrap_err();
    assert_eq!((e.line, e.reason.contains("half hour")), (3, true));
    let e = Profile::parse("start,12345\n00:00,-1\n").unwrap_err();
    assert_eq!(e.line, 2);
    let e = Profile::parse("start,12345,12366\n00:00,1\n").unwrap_err();
    assert!(e.reason.contains("fields"));
    let shipped = Profile::parse(traffic::DEFAULT_PROFILE).unwrap();
    assert!((1900.0..2100.0).contains(&shipped.total()));
    assert_eq!(shipped.rows.len(), 48);
    // Poisson counts at the half hour's rate: 200 a half hour over many
    // seeds averages 200.
    let p = Profile::parse("start,12345\n10:00,200\n").unwrap();
    let day = Day::local(
        NaiveDate::from_ymd_opt(2026, 12, 2).unwrap(),
        chrono_tz::Asia::Shanghai,
    );
    let n: usize = (0..50).map(|s| p.arrivals(&day, 1.0, s).len()).sum();
    assert!((n as f64 / 50.0 - 200.0).abs() < 4.0 * (200.0_f64 / 50.0).sqrt());
    let all = p.arrivals(&day, 1.0, 1);
    assert!(
        all.iter()
            .all(|a| a.0 >= secs(36_000) && a.0 < secs(37_800))
    );
}
