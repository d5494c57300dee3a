//! What a JSON line costs when the gateway writes it from an event's leaves
//! (`flat::write_event`, for events a plugin edited) against `serde_json`
//! writing the same event from its value (events no plugin touched), on the
//! realistic events of the gateway's end-to-end bench
//! (`gateway/benches/support/`, included by path: command lines, stack
//! traces, config dumps, a nested context, ~750 bytes of JSON each). Both
//! write into one buffer used again; the lines are checked equal first.
//!
//! `cargo bench -p wraith-event --bench lines` (`WRAITH_BENCH_SECS`,
//! default 2, spread over 15 rounds in which the two take turns; medians
//! reported). `WRAITH_BENCH_PROFILE=<n>` (or `<n>:json`) writes only the
//! lines from leaves (from values), `n` passes over the events, for
//! `perf record` or `valgrind --tool=callgrind`: the difference of two
//! counts (say 2 and 12 passes) over 10 × 1,024 is the cost per event.

mod common;

use common::events;

use std::hint::black_box;
use std::time::Instant;
use wraith_event::flat::{FlatBatch, LineWriter, write_event};

const EVENTS: usize = 1024;
const BATCH: usize = 128;
const ROUNDS: usize = 15;

fn main() {
    if common::listing() {
        return;
    }
    let secs = common::secs(2.0);
    let events = events::events(0, EVENTS);
    let batches: Vec<FlatBatch> = events.chunks(BATCH).map(FlatBatch::encode).collect();
    let mut out = Vec::with_capacity(4096);
    // One writer for all the lines, as the gateway keeps one per batch.
    let mut writer = LineWriter::default();
    let mut from_leaves = |out: &mut Vec<u8>| {
        let mut bytes = 0;
        for b in &batches {
            let view = b.view();
            for i in 0..view.len() {
                out.clear();
                writer.write(&view.event(i), out);
                bytes += black_box(&*out).len();
            }
        }
        bytes
    };
    let mut from_values = |out: &mut Vec<u8>| {
        let mut bytes = 0;
        for e in &events {
            out.clear();
            serde_json::to_writer(&mut *out, e).expect("writing to a Vec");
            bytes += black_box(&*out).len();
        }
        bytes
    };
    // The same lines, byte for byte.
    let mut k = 0;
    for b in &batches {
        let view = b.view();
        for i in 0..view.len() {
            out.clear();
            write_event(&view.event(i), &mut out);
            assert_eq!(
                out,
                serde_json::to_vec(&events[k]).expect("serialises"),
                "event {k}"
            );
            k += 1;
        }
    }

    if let Ok(n) = std::env::var("WRAITH_BENCH_PROFILE") {
        let (n, json) = match n.strip_suffix(":json") {
            Some(n) => (n.to_string(), true),
            None => (n, false),
        };
        let passes: usize = n.parse().unwrap_or(1);
        for _ in 0..passes {
            if json {
                black_box(from_values(&mut out));
            } else {
                black_box(from_leaves(&mut out));
            }
        }
        return;
    }

    let per_round = secs / ROUNDS as f64 / 2.0;
    let mut time = |f: &mut dyn FnMut(&mut Vec<u8>) -> usize| {
        let start = Instant::now();
        let mut passes = 0u64;
        while start.elapsed().as_secs_f64() < per_round {
            black_box(f(&mut out));
            passes += 1;
        }
        start.elapsed().as_nanos() as f64 / (passes as f64 * EVENTS as f64)
    };
    let mut rounds: Vec<(f64, f64)> = (0..ROUNDS)
        .map(|_| (time(&mut from_leaves), time(&mut from_values)))
        .collect();
    let bytes = from_values(&mut Vec::new()) as f64 / EVENTS as f64;
    rounds.sort_by(|a, b| (a.0 / a.1).total_cmp(&(b.0 / b.1)));
    let (l, v) = rounds[ROUNDS / 2];
    println!(
        "JSON lines, {EVENTS} realistic events ({bytes:.0} bytes each): median of {ROUNDS} rounds"
    );
    println!("  from the leaves (write_event)   {l:>7.0} ns/event");
    println!("  from the value (serde_json)     {v:>7.0} ns/event");
    println!("  leaves / value                  {:>7.2}x", l / v);
}
