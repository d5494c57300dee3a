//! Native cost of schema-validate's per-event work on realistic telemetry
//! (the gateway end-to-end bench's events, `gateway/benches/support/`,
//! included by path: command lines, stack traces, config dumps, a nested
//! context, ~750 bytes of JSON each), with the shipped config (the built-in
//! schemas, `mode = "reject"`): the events are encoded to the flat layout
//! once, then every event is validated from its leaves as the plugin does
//! in `process`. Its baseline, in the same rounds, is a walk that reads every
//! leaf and keeps nothing: the part of the cost any plugin that looks at
//! every leaf pays.
//!
//! `cargo bench -p wraith-plugin-schema-validate --bench accept`
//! (`WRAITH_BENCH_SECS`, default 2, spread over 15 rounds in which the two
//! take turns; the median round is reported). `WRAITH_BENCH_PROFILE=<n>`
//! runs only the validation, `n` passes over the events (`0`: for
//! `WRAITH_BENCH_SECS`), for `perf record` or `valgrind --tool=callgrind`.

#[path = "../../../gateway/benches/support/events.rs"]
#[allow(dead_code)]
mod events;

use std::hint::black_box;
use std::time::Instant;
use wraith_event::flat::{FlatBatch, ValueRef};
use wraith_plugin::testing::Harness;
use wraith_plugin::{Plugin, Verdict};
use wraith_plugin_schema_validate::SchemaValidate;

const EVENTS: usize = 1024;
const BATCH: usize = 128;
const ROUNDS: usize = 15;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs: f64 = std::env::var("WRAITH_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let events = events::events(0, EVENTS);
    let batches: Vec<FlatBatch> = events.chunks(BATCH).map(FlatBatch::encode).collect();
    let config: serde_json::Value =
        serde_json::json!({"mode": "reject", "unknown_event_types": "allow"});
    let mut plugin = SchemaValidate::init(wraith_plugin::Config::new(config.clone()))
        .expect("the shipped config");

    // Every event of the generator is valid; the harness (the full plugin,
    // edits and all) must agree that the fast path and the plugin keep them.
    let mut harness = Harness::<SchemaValidate>::new(config).expect("the shipped config");
    let kept = harness
        .run(events.clone())
        .iter()
        .filter(|p| p.verdict == Verdict::Keep)
        .count();
    assert_eq!(kept, EVENTS, "the realistic events are all valid");
    let validate = |plugin: &mut SchemaValidate| {
        let mut accepted = 0;
        for b in &batches {
            let view = b.view();
            for i in 0..view.len() {
                let leaves: Vec<_> = view.event(i).leaves().collect();
                accepted += plugin.validator().accepts(&leaves) as usize;
            }
        }
        accepted
    };
    assert_eq!(
        validate(&mut plugin),
        EVENTS,
        "every event takes the fast path"
    );
    let walk = || {
        let mut n = 0usize;
        for b in &batches {
            let view = b.view();
            for i in 0..view.len() {
                for leaf in view.event(i).leaves() {
                    n += leaf.path.len();
                    if let ValueRef::String(s) = leaf.value {
                        n += s.len();
                    }
                }
            }
        }
        n
    };

    if let Ok(n) = std::env::var("WRAITH_BENCH_PROFILE") {
        // Only the validation, `n` passes over the events (0: for `secs`),
        // for a profiler or an instruction count.
        let passes: usize = n.parse().unwrap_or(0);
        let start = Instant::now();
        let mut done = 0;
        while done < passes || (passes == 0 && start.elapsed().as_secs_f64() < secs) {
            black_box(validate(&mut plugin));
            done += 1;
        }
        return;
    }

    let per_round = secs / ROUNDS as f64 / 2.0;
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        let mut passes = 0u64;
        while start.elapsed().as_secs_f64() < per_round {
            f();
            passes += 1;
        }
        start.elapsed().as_nanos() as f64 / (passes as f64 * EVENTS as f64)
    };
    let mut rounds: Vec<(f64, f64)> = (0..ROUNDS)
        .map(|_| {
            let v = time(&mut || {
                black_box(validate(&mut plugin));
            });
            let w = time(&mut || {
                black_box(walk());
            });
            (v, w)
        })
        .collect();
    rounds.sort_by(|a, b| (a.0 - a.1).total_cmp(&(b.0 - b.1)));
    let (v, w) = rounds[ROUNDS / 2];
    println!(
        "schema-validate, shipped config, {EVENTS} realistic events in batches of {BATCH}: median of {ROUNDS} rounds"
    );
    println!("  validate from the leaves  {v:>8.0} ns/event");
    println!("  walk every leaf           {w:>8.0} ns/event");
    println!("  validation's own work     {:>8.0} ns/event", v - w);
}
