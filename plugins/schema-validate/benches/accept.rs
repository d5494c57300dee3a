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
//! The validation is timed two ways: the schema walk alone
//! (`Validator::accepts`), and as the plugin runs it, with what each
//! structure decides remembered (`Validator::accepts_remembered`).
//!
//! `cargo bench -p wraith-plugin-schema-validate --bench accept`
//! (`WRAITH_BENCH_SECS`, default 2, spread over 15 rounds in which the three
//! take turns; medians are reported). `WRAITH_BENCH_PROFILE=<n>` runs only
//! the plugin's validation (`<n>:walk`: the schema walk alone), `n` passes
//! over the events (`0`: for `WRAITH_BENCH_SECS`), for `perf record` or
//! `valgrind --tool=callgrind`.

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
    let remembered = |plugin: &mut SchemaValidate| {
        let mut accepted = 0;
        let (validator, plans) = plugin.validator_and_plans();
        for b in &batches {
            let view = b.view();
            for i in 0..view.len() {
                let leaves: Vec<_> = view.event(i).leaves().collect();
                accepted += validator.accepts_remembered(&leaves, plans) as usize;
            }
        }
        accepted
    };
    assert_eq!(
        validate(&mut plugin),
        EVENTS,
        "every event takes the fast path"
    );
    assert_eq!(
        remembered(&mut plugin),
        EVENTS,
        "every event takes the remembered path"
    );
    let (hits, misses) = plugin.validator_and_plans().1.hits_and_misses();
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
        let (n, walk_only) = match n.strip_suffix(":walk") {
            Some(n) => (n, true),
            None => (n.as_str(), false),
        };
        let passes: usize = n.parse().unwrap_or(0);
        let start = Instant::now();
        let mut done = 0;
        while done < passes || (passes == 0 && start.elapsed().as_secs_f64() < secs) {
            if walk_only {
                black_box(validate(&mut plugin));
            } else {
                black_box(remembered(&mut plugin));
            }
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
    let rounds: Vec<(f64, f64, f64)> = (0..ROUNDS)
        .map(|_| {
            let v = time(&mut || {
                black_box(validate(&mut plugin));
            });
            let r = time(&mut || {
                black_box(remembered(&mut plugin));
            });
            let w = time(&mut || {
                black_box(walk());
            });
            (v, r, w)
        })
        .collect();
    let median = |f: &dyn Fn(&(f64, f64, f64)) -> f64| {
        let mut x: Vec<f64> = rounds.iter().map(f).collect();
        x.sort_by(f64::total_cmp);
        x[ROUNDS / 2]
    };
    let v = median(&|r| r.0);
    let r = median(&|r| r.1);
    let w = median(&|r| r.2);
    let ratio = median(&|x| (x.1 - x.2) / (x.0 - x.2));
    println!(
        "schema-validate, shipped config, {EVENTS} realistic events in batches of {BATCH}: median of {ROUNDS} rounds"
    );
    println!("  walk every leaf                        {w:>8.0} ns/event");
    println!(
        "  the schema walk (Validator::accepts)   {v:>8.0} ns/event, own work {:>6.0}",
        v - w
    );
    println!(
        "  the plugin's (structures remembered)   {r:>8.0} ns/event, own work {:>6.0}   {ratio:.2}x the walk's own work",
        r - w
    );
    println!(
        "  structures: {misses} planned, {hits} found planned (the first pass over the events)"
    );
}
