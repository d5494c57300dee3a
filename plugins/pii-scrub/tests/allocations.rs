//! pii-scrub allocates nothing for an event without PII: the harness run of a
//! clean batch through pii-scrub allocates exactly as much as the same run
//! through a plugin that does nothing, so every extra allocation would be the
//! scrubber's own.

use serde_json::{Value, json};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use wraith_plugin::testing::Harness;
use wraith_plugin::{Config, ConfigError, Event, Plugin, Verdict};
use wraith_plugin_pii_scrub::PiiScrub;

/// Counts allocations made by the current thread (tests run in parallel).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Keeps every event as it is.
struct Nothing;

impl Plugin for Nothing {
    fn init(_: Config) -> Result<Self, ConfigError> {
        Ok(Nothing)
    }
    fn process(&mut self, _: &mut Event<'_>) -> Verdict {
        Verdict::Keep
    }
}

/// Events full of things that look like PII but are not: ids, versions,
/// hashes, timestamps, system paths, numbers, escaped text, nested objects
/// and arrays.
fn clean_batch() -> Vec<Value> {
    (0..64)
        .map(|n| {
            json!({
                "event_id": format!("01890a5d-ac96-774b-bcce-b302099a{n:04x}"),
                "timestamp": "2026-11-22T10:00:00.123Z",
                "level": "info",
                "event_type": "tool_failed",
                "tool": "migrateiq",
                "command": "scan --deep /usr/lib/x86_64-linux-gnu --jobs 4",
                "duration_ms": 840 + n,
                "error_type": "ConnectionError",
                "message": format!("scan finished in {n} ms with 3 findings (build 1.4.{n})"),
                "context": {
                    "installation_id": "9f1c2d3e-8d4a-4e6b-9f0a-1c2d3e4f5a6b",
                    "tool_version": "1.4.2-rc.1",
                    "commit": "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39",
                    "os": "linux",
                    "args": ["--verbose", "--output=/var/tmp/report.json"],
                    "sizes": [1024, 2048, 4096],
                    // Escaped text is decoded and scanned again, on the stack.
                    "url": format!("https://registry.example.com/search?q=rust%20lang&page={n}"),
                    "escaped": "{\"path\": \"\\/var\\/log\\/app.log\"}",
                    "driver_version": format!("10.2.14.{n}"),
                    "integrity": "sha512-Ua3Nz8T5Kp0vRq2Lm9Xw4Yb7Cj1Hf6Gd3Se8Af0Iu5Oy2Et9Rw4Qq7Zx1Vc6Bn3Mk==",
                },
            })
        })
        .collect()
}

/// Allocations of one harness run (after a warm-up run, so one-time
/// allocations of the thread or the harness do not count).
fn run_allocations<P: Plugin>(harness: &mut Harness<P>, events: &[Value]) -> u64 {
    harness.run(events.to_vec());
    let batch = events.to_vec();
    let before = allocations();
    let out = harness.run(batch);
    let n = allocations() - before;
    drop(out);
    n
}

#[test]
fn a_batch_without_pii_costs_no_allocation_in_the_scrubber() {
    let events = clean_batch();
    let mut scrub = Harness::<PiiScrub>::new(json!({})).unwrap();
    let out = scrub.run(events.clone());
    for (p, original) in out.iter().zip(&events) {
        assert_eq!(&p.event, original, "a clean event was changed");
    }
    let mut nothing = Harness::<Nothing>::new(json!({})).unwrap();
    let baseline = run_allocations(&mut nothing, &events);
    let scrubbed = run_allocations(&mut scrub, &events);
    assert_eq!(
        scrubbed,
        baseline,
        "pii-scrub allocated {} times more than a plugin that does nothing, on {} clean events",
        scrubbed as i64 - baseline as i64,
        events.len()
    );
}

#[test]
fn the_count_sees_allocations_when_something_is_scrubbed() {
    // The same comparison must notice real work, or the test above proves nothing.
    let mut events = clean_batch();
    events[3]["message"] = json!("mail ada@example.com from 203.0.113.9");
    let mut scrub = Harness::<PiiScrub>::new(json!({})).unwrap();
    let mut nothing = Harness::<Nothing>::new(json!({})).unwrap();
    let baseline = run_allocations(&mut nothing, &events);
    let scrubbed = run_allocations(&mut scrub, &events);
    assert!(
        scrubbed > baseline,
        "{scrubbed} allocations with PII, {baseline} without the scrubber"
    );
}
