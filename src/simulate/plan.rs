//! `--plan`: the fewest seats per half hour that meet a service-level
//! target, found by running the simulator, beside what Erlang C says.
//!
//! The plan pools the seats: every queued call may go to every seat (what
//! staffing is about; skills are the table's business). Half hours are
//! settled in time order, each with the seats of those before it fixed,
//! so a backlog carried over from a busy half hour counts against the
//! next. A half hour is judged on the callers who arrived in it, followed
//! for `service_level` past its end; it meets the target when, summed
//! over the replications, answered within `service_level` over offered
//! reaches it. Its seats must also keep the half hour before it meeting
//! its target (that one's last callers are answered in this one), so a
//! quiet half hour after a busy one keeps the seats to clear the backlog.
//! The search starts at Erlang C's figure (at none for a half hour without
//! calls) and walks down while the target holds, or up until it does. A
//! last run with the whole plan gives each half hour's service level.

use super::erlang::ErlangC;
use super::{Arrival, INTERVAL, Model, Settings, run};
use std::time::Duration;

/// One half hour of the plan.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Row {
    /// Seconds from the run's start.
    pub start: u64,
    /// Calls offered, averaged over the replications.
    pub calls: f64,
    pub erlang_c_seats: usize,
    pub seats: usize,
    /// With the whole plan in place.
    pub service_level: Option<f64>,
}

/// What the plan aims at.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub service_level: f64,
    pub within: Duration,
    /// Mean handle time including wrap-up, for Erlang C.
    pub handle: Duration,
    pub wrap_up: Duration,
}

/// Plans over `days` (one or more replications of the same traffic,
/// queued calls only).
pub fn plan(days: &[Vec<Arrival>], settings: &Settings, target: Target) -> Vec<Row> {
    let n = super::intervals(settings.length);
    let reps = days.len().max(1) as f64;
    let mut calls = vec![0u64; n];
    for a in days.iter().flatten() {
        calls[((a.at.as_secs() / INTERVAL.as_secs()) as usize).min(n - 1)] += 1;
    }
    let erlang: Vec<usize> = calls
        .iter()
        .map(|&c| {
            let traffic = c as f64 / reps / INTERVAL.as_secs_f64() * target.handle.as_secs_f64();
            ErlangC::seats_for(
                traffic,
                target.service_level,
                target.within.as_secs_f64() / target.handle.as_secs_f64().max(1e-9),
            )
        })
        .collect();
    let level = |seats: &[usize], upto: usize| -> Vec<(u64, u64)> {
        let mut s = settings.clone();
        s.roster = None;
        s.length =
            (INTERVAL * upto as u32 + target.within + Duration::from_secs(1)).min(settings.length);
        let model = Model::Pool {
            wrap_up: target.wrap_up,
            seats: seats.to_vec(),
        };
        let mut sums = vec![(0, 0); n];
        for day in days {
            let r = run(&model, day, &s, None);
            for (i, t) in r.intervals.iter().enumerate() {
                sums[i].0 += t.answered_within;
                sums[i].1 += t.offered;
            }
        }
        sums
    };
    let meets = |(within, offered): (u64, u64)| {
        offered == 0 || within as f64 >= target.service_level * offered as f64
    };
    let mut seats: Vec<usize> = Vec::with_capacity(n);
    // Whether each half hour met its target when it was settled.
    let mut met: Vec<bool> = Vec::with_capacity(n);
    for i in 0..n {
        let before = i.checked_sub(1);
        if calls[i] == 0 && before.is_none_or(|b| seats[b] == 0) {
            seats.push(0);
            met.push(true);
            continue;
        }
        let try_with = |k: usize, seats: &[usize]| {
            let mut trial = seats.to_vec();
            trial.push(k);
            let l = level(&trial, i + 1);
            meets(l[i]) && before.is_none_or(|b| !met[b] || meets(l[b]))
        };
        let floor = usize::from(calls[i] > 0);
        let cap = erlang[i].max(before.map_or(0, |b| seats[b])) * 4 + 20;
        let mut k = erlang[i].max(floor);
        let ok = if try_with(k, &seats) {
            while k > floor && try_with(k - 1, &seats) {
                k -= 1;
            }
            true
        } else {
            loop {
                k += 1;
                if try_with(k, &seats) {
                    break true;
                }
                if k >= cap {
                    break false;
                }
            }
        };
        seats.push(k);
        met.push(ok);
    }
    let whole = level(&seats, n);
    (0..n)
        .map(|i| Row {
            start: (INTERVAL * i as u32).as_secs(),
            calls: (calls[i] as f64 / reps * 100.0).round() / 100.0,
            erlang_c_seats: erlang[i],
            seats: seats[i],
            service_level: (whole[i].1 > 0)
                .then(|| (whole[i].0 as f64 / whole[i].1 as f64 * 10_000.0).round() / 10_000.0),
        })
        .collect()
}
