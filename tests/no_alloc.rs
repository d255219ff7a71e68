//! The routing decision allocates nothing: a counting allocator watches the
//! thread while it decides calls over every kind of number and form.

use chrono::{DateTime, Utc};
use hotline::routing::route;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(|c| c.get()) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(|c| c.get()) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn deciding_a_call_allocates_nothing() {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/routing.toml"));
    let t = hotline::config::load(path).unwrap().table;
    let instants: Vec<DateTime<Utc>> = ["2026-11-20T10:00:00+08:00", "2023-02-22T10:00:00+08:00"]
        .iter()
        .map(|s| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc))
        .collect();
    let dialed: Vec<String> = [
        "12345",
        "2912345",
        "12348",
        "12331",
        "12366",
        "12360",
        "96119",
        "110",
        "12396",
        "99999",
        "",
        "sip:alice@x",
    ]
    .iter()
    .flat_map(|n| {
        [
            n.to_string(),
            format!("sip:{n}@gw;user=phone"),
            format!("tel:+86-735-{n}"),
            format!("<sip:%2B86735{n}@gw>"),
        ]
    })
    .collect();
    let callers = [
        None,
        Some("sip:+8613800000000@carrier"),
        Some("0735-2222222"),
    ];
    let mut decided = 0;
    const KINDS: [&str; 6] = [
        "emergency",
        "queue",
        "direct",
        "sub_centre",
        "leader_session",
        "reject",
    ];
    let mut seen = [false; 6];
    COUNTING.with(|c| c.set(true));
    for at in &instants {
        for d in &dialed {
            for c in callers {
                let dec = route(&t, d, c, *at);
                if let Some(i) = KINDS.iter().position(|k| *k == dec.kind.as_str()) {
                    seen[i] = true;
                }
                decided += 1;
            }
        }
    }
    COUNTING.with(|c| c.set(false));
    let allocations = ALLOCATIONS.with(|a| a.get());
    assert_eq!(decided, 2 * 48 * 3);
    // Every kind of decision was exercised.
    assert_eq!(seen, [true; 6], "kinds seen: {seen:?} of {KINDS:?}");
    assert_eq!(allocations, 0, "route() allocated {allocations} times");
}
