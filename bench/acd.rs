//! The ACD's dispatch decisions with many callers waiting: 1,000 seats
//! across 10 queues with skills, and 1,000 / 10,000 / 100,000 callers
//! waiting (all skilled seats busy).
//!
//! - `dispatch/seat_free/N`: a seat's call ends (no wrap-up), and the seat
//!   takes the earliest-arrived caller it may serve: `call_ended` → `Offer`.
//! - `dispatch/caller_free_seat/N`: a caller of a dual-number line joins a
//!   queue where N/10 wait and its expert seat is free: `join` → `Queued` +
//!   `Offer`.
//! - `dispatch/caller_waits/N`: a caller joins with no seat free: `join` →
//!   `Queued` (position, estimated wait) + `Announce`.
//!
//! Only the decision is timed; restoring the state for the next one (the
//! offer answered and a caller joining to keep N, or the caller leaving) is
//! not. The time must stay well under 10 µs and grow no faster than
//! logarithmically with N.
//!
//! Run: `cargo bench --bench acd`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hotline::acd::{
    Acd, Action, CallId, Config, Join, Leave, Party, QueueConfig, SeatConfig, SeatState,
};
use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::time::{Duration, Instant};

const QUEUES: usize = 10;
/// 990 skilled seats and one expert seat per queue's line.
const SKILLED: usize = 990;

fn config() -> Config {
    let queues = (0..QUEUES)
        .map(|q| {
            let mut c = QueueConfig::new(format!("q{q}"), format!("q{q}"));
            // A call's end frees its seat at once: the decision alone.
            c.wrap_up = Duration::ZERO;
            c
        })
        .collect();
    let mut seats: Vec<SeatConfig> = (0..SKILLED)
        .map(|i| {
            let mut skills = vec![format!("q{}", i % QUEUES), format!("q{}", (i + 3) % QUEUES)];
            if i % 7 == 0 {
                skills.push(format!("law{}", i % 5));
            }
            SeatConfig {
                id: format!("s{i}"),
                skills,
                expert_for: Vec::new(),
            }
        })
        .collect();
    // Expert-only seats (no skill): free while every skilled seat is busy.
    seats.extend((0..QUEUES).map(|q| SeatConfig {
        id: format!("x{q}"),
        skills: Vec::new(),
        expert_for: vec![line(q)],
    }));
    Config {
        queues,
        seats,
        main_queue: "q0".into(),
    }
}

/// Queue `q`'s dual-number line, with its expert seat `x{q}`.
fn line(q: usize) -> String {
    format!("1230{q}")
}

fn join(queue: usize, line: &str, skill: Option<String>, arrival: Instant) -> Join {
    Join {
        queue: format!("q{queue}"),
        line: line.into(),
        skill,
        expert_seats: Vec::new(),
        arrival,
    }
}

fn offered(out: &[Action]) -> Option<String> {
    out.iter().find_map(|a| match a {
        Action::Offer { seat, .. } => Some(seat.clone()),
        _ => None,
    })
}

/// An ACD with every skilled seat on a call and `waiting` callers queued,
/// at `now` (which the benchmark keeps: no timer fires), with the calls on
/// seats oldest first and the next call number.
struct Loaded {
    acd: Acd,
    now: Instant,
    on_seats: VecDeque<CallId>,
    /// The queue of each caller waiting.
    queue_of: HashMap<CallId, usize>,
    next: u64,
}

impl Loaded {
    fn new(waiting: usize) -> Loaded {
        let base = Instant::now();
        // Arrivals one second apart, so most callers are past every tier.
        let now = base + Duration::from_secs(waiting as u64 + 3600);
        let mut acd = Acd::new(config(), base);
        for i in 0..SKILLED {
            let _ = acd.seat_login(&format!("s{i}"), base);
        }
        for q in 0..QUEUES {
            let _ = acd.seat_login(&format!("x{q}"), base);
        }
        // Callers of each free seat's first queue until no skilled seat is
        // free: each is offered a free seat of that queue and answers.
        let mut on_seats = VecDeque::new();
        let mut next = 0;
        for i in 0..SKILLED {
            while acd.seat_state(&format!("s{i}")) == Some(SeatState::Available) {
                let call = CallId(next);
                next += 1;
                let out = acd.join(call, join(i % QUEUES, "12345", None, base), base);
                let seat = offered(&out).expect("a free seat");
                let _ = acd.offer_answered(call, &seat, base);
                on_seats.push_back(call);
            }
        }
        let mut loaded = Loaded {
            acd,
            now,
            on_seats,
            queue_of: HashMap::new(),
            next,
        };
        for i in 0..waiting {
            let arrival = now - Duration::from_secs((waiting - i) as u64);
            // A quarter of them from a line with a skill.
            let skill = (i % 4 == 0).then(|| format!("law{}", i % 5));
            loaded.join_waiting(i % QUEUES, skill, arrival);
        }
        loaded
    }

    /// One more caller waiting in queue `q`.
    fn join_waiting(&mut self, q: usize, skill: Option<String>, arrival: Instant) {
        let call = CallId(self.next);
        self.next += 1;
        let out = self
            .acd
            .join(call, join(q, "12345", skill, arrival), self.now);
        assert!(offered(&out).is_none(), "every skilled seat is busy");
        self.queue_of.insert(call, q);
    }
}

fn dispatch(c: &mut Criterion) {
    let mut g = c.benchmark_group("dispatch");
    for waiting in [1_000, 10_000, 100_000] {
        let mut l = Loaded::new(waiting);
        g.bench_function(BenchmarkId::new("seat_free", waiting), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let ended = l.on_seats.pop_front().unwrap();
                    let start = Instant::now();
                    let out = l.acd.call_ended(ended, Party::Seat, l.now);
                    timed += start.elapsed();
                    let (call, seat) = out
                        .iter()
                        .find_map(|a| match a {
                            Action::Offer { call, seat, .. } => Some((*call, seat.clone())),
                            _ => None,
                        })
                        .expect("the free seat takes a caller");
                    black_box(out);
                    let _ = l.acd.offer_answered(call, &seat, l.now);
                    l.on_seats.push_back(call);
                    // The same queue keeps as many waiting.
                    let q = l.queue_of.remove(&call).unwrap();
                    let now = l.now;
                    l.join_waiting(q, None, now);
                }
                timed
            })
        });

        g.bench_function(BenchmarkId::new("caller_free_seat", waiting), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for i in 0..iters {
                    let q = i as usize % QUEUES;
                    let call = CallId(l.next);
                    l.next += 1;
                    let j = join(q, &line(q), Some(format!("law{}", q % 5)), l.now);
                    let start = Instant::now();
                    let out = l.acd.join(call, j, l.now);
                    timed += start.elapsed();
                    assert_eq!(offered(&out), Some(format!("x{q}")));
                    black_box(out);
                    let _ = l.acd.leave(call, Leave::Abandoned, l.now);
                }
                timed
            })
        });

        g.bench_function(BenchmarkId::new("caller_waits", waiting), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for i in 0..iters {
                    let call = CallId(l.next);
                    l.next += 1;
                    let j = join(i as usize % QUEUES, "12345", None, l.now);
                    let start = Instant::now();
                    let out = l.acd.join(call, j, l.now);
                    timed += start.elapsed();
                    black_box(out);
                    let _ = l.acd.leave(call, Leave::Abandoned, l.now);
                }
                timed
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(30);
    targets = dispatch
}
criterion_main!(benches);
