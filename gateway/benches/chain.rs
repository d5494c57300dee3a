//! The plugin chain alone: per-event cost of the `scrub-email` fixture run
//! through the wasmtime host, against the same logic run natively, in the same
//! run. Needs the fixtures: `cargo xtask bench` builds them first.
//!
//! Baselines:
//! - `native-direct`: clone the batch and scrub every string in place with
//!   the plugin's own `scrub` function (what a hand-written native filter does);
//! - `native-sdk`: the plugin itself compiled natively, through the SDK's
//!   flat layout and edit application (the same code path minus WebAssembly).

use fixture_scrub_email::{ScrubEmail, scrub};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wraith_gateway::host::{Host, Limits};
use wraith_gateway::pipeline::manifest::FailurePolicy;
use wraith_gateway::pipeline::{Chain, Disposition, Link};
use wraith_gateway::telemetry::Metrics;
use wraith_plugin::testing::Harness;

fn make_event(n: usize) -> Value {
    let user = if n.is_multiple_of(4) {
        format!("contact ada.lovelace{n}@example.com about it")
    } else {
        format!("user-{n}")
    };
    json!({
        "event_id": format!("01890a5d-ac96-774b-bcce-b302099a{n:04x}"),
        "timestamp": "2026-11-22T10:00:00Z",
        "level": "info",
        "event_type": "tool_invoked",
        "tool": "migrateiq",
        "command": "scan --deep",
        "duration_ms": 840,
        "error_type": null,
        "message": user,
        "context": {"installation_id": "9f1c2d3e", "tool_version": "1.4.2", "os": "linux"},
    })
}

fn scrub_value(v: &mut Value) {
    match v {
        Value::String(s) => {
            if let Some(clean) = scrub(s) {
                *s = clean;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(scrub_value),
        Value::Object(m) => m.values_mut().for_each(scrub_value),
        _ => {}
    }
}

/// Median ns per event over several timed rounds of about 200 ms each.
fn measure(batch: usize, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut iters = 0u64;
    while start.elapsed() < Duration::from_millis(100) {
        f();
        iters += 1;
    }
    let per_round = (iters * 2).max(1);
    let mut samples = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..per_round {
            f();
        }
        samples.push(t.elapsed().as_nanos() as f64 / (per_round as f64 * batch as f64));
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    samples[samples.len() / 2]
}

fn main() {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let wasm = target.join("fixtures/scrub-email.wasm");
    assert!(
        wasm.is_file(),
        "{} is missing: run `cargo xtask bench` (or `cargo xtask fixtures`)",
        wasm.display()
    );
    let metrics = Arc::new(Metrics::new());
    let host = Host::new(None, metrics).expect("host");
    let limits = Limits::from_config(&Default::default());
    let runtime = host
        .load("scrub-email", &wasm, "{}".into(), limits)
        .expect("load fixture");
    let chain = Chain::new(
        vec![Link {
            runtime,
            on_error: FailurePolicy::DeadLetter,
        }],
        1,
        1024,
    );
    let mut harness = Harness::<ScrubEmail>::new(json!({})).unwrap();

    println!("chain benchmark: scrub-email, 12-field events, 1 in 4 with an e-mail address");
    println!(
        "{:>6} {:>14} {:>14} {:>14} {:>10} {:>10}",
        "batch", "wasm ns/ev", "direct ns/ev", "sdk ns/ev", "vs direct", "vs sdk"
    );
    for batch in [1usize, 16, 128, 1024] {
        let events: Vec<Value> = (0..batch).map(make_event).collect();
        // Check once that all three agree.
        let mut direct = events.clone();
        direct.iter_mut().for_each(scrub_value);
        let via_wasm: Vec<Value> = chain
            .run(events.clone())
            .into_iter()
            .map(|d| match d {
                Disposition::Keep { event, .. } => event,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(via_wasm, direct, "wasm and native disagree");
        let via_sdk: Vec<Value> = harness
            .run(events.clone())
            .into_iter()
            .map(|p| p.event)
            .collect();
        assert_eq!(via_sdk, direct, "sdk and native disagree");

        let wasm_ns = measure(batch, || {
            std::hint::black_box(chain.run(events.clone()));
        });
        let direct_ns = measure(batch, || {
            let mut e = events.clone();
            e.iter_mut().for_each(scrub_value);
            std::hint::black_box(e);
        });
        let sdk_ns = measure(batch, || {
            std::hint::black_box(harness.run(events.clone()));
        });
        println!(
            "{batch:>6} {wasm_ns:>14.0} {direct_ns:>14.0} {sdk_ns:>14.0} {:>9.2}x {:>9.2}x",
            wasm_ns / direct_ns,
            wasm_ns / sdk_ns
        );
    }
}
