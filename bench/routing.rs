//! Criterion benchmarks of the routing decision, the hot path every call takes.
//!
//! - `decision/mix`: one decision over a realistic mix of numbers and the forms
//!   they arrive in (bare, with area code, +86, tel:, sip:), single-threaded.
//! - `decision/normalize`: number normalisation alone, same mix.
//! - `concurrent/readers=N[/reloading]`: N threads deciding through the shared
//!   table; with `reloading`, another thread swaps in a new table continuously.
//!
//! Run: `cargo bench --bench routing` (figures in bench/RESULTS.md).

use chrono::{DateTime, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hotline::config::{self, SharedTable};
use hotline::routing::route;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn table() -> hotline::routing::Table {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/routing.toml"));
    config::load(path).expect("valid routing.toml").table
}

/// Dialed strings roughly as a carrier trunk delivers them: most calls to
/// 12345, then county lines, merged and dual-number lines, some emergency and
/// some garbage, in every notation.
fn mix() -> Vec<(String, Option<String>)> {
    let numbers = [
        ("12345", 40),
        ("2912345", 5),
        ("07352812345", 3),
        ("12348", 4),
        ("12333", 4),
        ("12315", 4),
        ("12331", 2),
        ("12366", 3),
        ("12360", 2),
        ("96119", 1),
        ("110", 1),
        ("12396", 1),
        ("99999", 1),
    ];
    let mut out = Vec::new();
    for (n, weight) in numbers {
        let forms = [
            n.to_string(),
            format!("sip:{n}@198.51.100.7;user=phone"),
            format!("tel:+86-735-{n}"),
            format!("+86 735 {n}"),
            format!("sip:+86735{n}@carrier.example"),
        ];
        for i in 0..weight {
            let caller = (i % 3 == 0).then(|| format!("sip:+861380000{i:04}@carrier.example"));
            out.push((forms[i % forms.len()].clone(), caller));
        }
    }
    out
}

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2023-02-22T10:00:00+08:00")
        .unwrap()
        .with_timezone(&Utc)
}

fn single(c: &mut Criterion) {
    let t = table();
    let mix = mix();
    let now = at();
    let mut g = c.benchmark_group("decision");
    g.throughput(Throughput::Elements(mix.len() as u64));
    g.bench_function("mix", |b| {
        b.iter(|| {
            for (dialed, caller) in &mix {
                black_box(route(&t, black_box(dialed), caller.as_deref(), now));
            }
        })
    });
    g.bench_function("normalize", |b| {
        b.iter(|| {
            for (dialed, _) in &mix {
                let _ = black_box(t.numbering.normalize(black_box(dialed)));
            }
        })
    });
    g.finish();
}

/// Runs `iters` decisions split over `readers` threads, optionally while a
/// writer swaps tables, and returns the wall time.
fn run_concurrent(
    shared: &SharedTable,
    spare: &hotline::routing::Table,
    mix: &[(String, Option<String>)],
    readers: usize,
    iters: u64,
    reloading: bool,
) -> Duration {
    let stop = Arc::new(AtomicBool::new(false));
    let writer = reloading.then(|| {
        let shared = shared.clone();
        let stop = stop.clone();
        // Two prebuilt tables, swapped in turn: the writer's loop is the
        // atomic store alone, as in a reload after validation.
        let tables = [Arc::new(spare.clone()), shared.load()];
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                shared.replace(tables[(swaps % 2) as usize].clone());
                swaps += 1;
                std::thread::sleep(Duration::from_micros(100));
            }
            swaps
        })
    });
    let now = at();
    let per_thread = iters.div_ceil(readers as u64);
    let start = Instant::now();
    std::thread::scope(|s| {
        for r in 0..readers {
            let shared = shared.clone();
            s.spawn(move || {
                for i in r..r + per_thread as usize {
                    let guard = shared.guard();
                    let (dialed, caller) = &mix[i % mix.len()];
                    black_box(route(&guard, dialed, caller.as_deref(), now));
                }
            });
        }
    });
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    if let Some(w) = writer {
        let _ = w.join();
    }
    elapsed
}

fn concurrent(c: &mut Criterion) {
    let t = table();
    let shared = SharedTable::from_table(t.clone());
    let mix = mix();
    let mut g = c.benchmark_group("concurrent");
    g.throughput(Throughput::Elements(1));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    for readers in [1, cores] {
        for reloading in [false, true] {
            let id = format!(
                "readers={readers}{}",
                if reloading { "/reloading" } else { "" }
            );
            g.bench_function(BenchmarkId::from_parameter(id), |b| {
                b.iter_custom(|iters| run_concurrent(&shared, &t, &mix, readers, iters, reloading))
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1)).sample_size(30);
    targets = single, concurrent
}
criterion_main!(benches);
