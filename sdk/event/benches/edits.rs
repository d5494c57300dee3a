//! The host's side of a plugin's edits, natively: the answer checked
//! (`Edits::check`) and applied to the edited events' leaves while the next
//! batch is built (`Rewriter::push_edited`), on the realistic events of the
//! gateway's end-to-end bench (`gateway/benches/support/`, included by
//! path) in batches of 128, with the five edits the enrich plugin makes to
//! every event with its shipped config (two integers and two strings under
//! `context` and the root, one label under `_wraith.labels`).
//!
//! `cargo bench -p wraith-event --bench edits` (`WRAITH_BENCH_SECS`,
//! default 2). `WRAITH_BENCH_PROFILE=<n>` (or `<n>:check`) runs only the
//! check and the rewrite (only the check), `n` passes over the events, for
//! `valgrind --tool=callgrind`: the difference of two counts (say 2 and 12
//! passes) over 10 × 1,024 is the cost per event.

mod common;

use common::events;

use std::hint::black_box;
use std::time::Instant;
use wraith_event::flat::{EditBuffer, Edits, FlatBatch, Rewriter, ValueRef};

const EVENTS: usize = 1024;
const BATCH: usize = 128;

fn main() {
    if common::listing() {
        return;
    }
    let secs = common::secs(2.0);
    let events = events::events(0, EVENTS);
    let batches: Vec<FlatBatch> = events.chunks(BATCH).map(FlatBatch::encode).collect();
    let answers: Vec<EditBuffer> = batches
        .iter()
        .map(|b| {
            let mut answer = EditBuffer::default();
            for i in 0..b.view().len() as u32 {
                answer.set(i, "context.tool_version_major", ValueRef::Number("1"));
                answer.set(i, "context.tool_version_minor", ValueRef::Number("12"));
                answer.set(i, "context.os_family", ValueRef::String("linux"));
                answer.set(i, "duration_bucket", ValueRef::String("100ms-1s"));
                answer.set(
                    i,
                    "_wraith.labels.environment",
                    ValueRef::String("development"),
                );
            }
            answer
        })
        .collect();
    let mut rewriter = Rewriter::default();
    let mut pass = |apply: bool| {
        let mut leaves = 0;
        for (batch, answer) in batches.iter().zip(&answers) {
            let view = batch.view();
            let edits = Edits::check(&answer.edits, &answer.data, view.len()).expect("valid");
            if !apply {
                black_box(edits);
                continue;
            }
            // Sized as the gateway sizes a plugin's next batch.
            let (more_data, more_leaves) = edits.growth();
            let mut next = FlatBatch::with_room(
                batch.data.len() + more_data,
                batch.leaves.len() + more_leaves,
                batch.events.len(),
            );
            for i in 0..view.len() {
                rewriter
                    .push_edited(&mut next, &view.event(i), &edits, i)
                    .expect("leaf edits");
            }
            leaves += black_box(next).len();
        }
        leaves
    };

    if let Ok(n) = std::env::var("WRAITH_BENCH_PROFILE") {
        let (n, check_only) = match n.strip_suffix(":check") {
            Some(n) => (n.to_string(), true),
            None => (n, false),
        };
        for _ in 0..n.parse().unwrap_or(1) {
            black_box(pass(!check_only));
        }
        return;
    }

    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        let mut passes = 0u64;
        while start.elapsed().as_secs_f64() < secs / 2.0 {
            f();
            passes += 1;
        }
        start.elapsed().as_nanos() as f64 / (passes as f64 * EVENTS as f64)
    };
    let check = time(&mut || {
        black_box(pass(false));
    });
    let both = time(&mut || {
        black_box(pass(true));
    });
    println!("five edits per event, {EVENTS} realistic events in batches of {BATCH}");
    println!("  checked                       {check:>7.0} ns/event");
    println!("  checked and applied to leaves {both:>7.0} ns/event");
}
