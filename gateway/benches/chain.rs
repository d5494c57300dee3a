//! The plugin chain alone: per-event cost of the `scrub-email` fixture run
//! through the wasmtime host, against the same logic run natively, in the same
//! run. Needs the fixtures: `cargo xtask bench` builds them first.
//!
//! Baselines:
//! - `native-direct`: clone the batch and scrub every string in place with
//!   the plugin's own `scrub` function (what a hand-written native filter does);
//! - `native-sdk`: the plugin itself compiled natively, through the SDK's
//!   flat layout and edit application (the same code path minus WebAssembly).
//!
//! Then each first-party plugin, with its configuration from
//! `plugins/plugins.toml`, on realistic events (`support/`), reported *net*:
//! the clone of the batch that both columns pay is measured alone and taken
//! out of both, so the ratio is of the plugin's own cost. A line of stages
//! under each (encode, call, edit application) shows where it goes, and
//! the host's two ways of applying the answer and writing the lines (to JSON
//! values, or to the edited events' leaves) side by side.
//!
//! `WRAITH_BENCH_PROFILE=NAME` (`NAME:sdk`, or `shipped`) runs one plugin
//! and nothing else, for `perf record`: see `profile` below.
//! `WRAITH_BENCH_ONLY=first-party` runs only the first-party section.

mod support;

use fixture_scrub_email::{ScrubEmail, scrub};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wraith_event::flat::FlatBatch;
use wraith_gateway::host::{EncodedBatch, Host, Limits, PluginRuntime};
use wraith_gateway::pipeline::manifest::FailurePolicy;
use wraith_gateway::pipeline::{Chain, Disposition, Link};
use wraith_gateway::telemetry::Metrics;
use wraith_plugin::testing::Harness;
use wraith_plugin_pii_scrub::{PiiScrub, Ruleset};

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

/// Median ns per event of each variant. The variants take turns within each
/// round, so a slow patch of the machine (or of the allocator) hits all of
/// them alike instead of skewing one column.
fn measure_all(batch: usize, variants: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    const ROUNDS: usize = 15;
    let per_round: Vec<u64> = variants
        .iter_mut()
        .map(|f| {
            let start = Instant::now();
            let mut iters = 0u64;
            while start.elapsed() < Duration::from_millis(30) {
                f();
                iters += 1;
            }
            iters.max(1)
        })
        .collect();
    let mut samples = vec![Vec::with_capacity(ROUNDS); variants.len()];
    for _ in 0..ROUNDS {
        for (k, f) in variants.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..per_round[k] {
                f();
            }
            samples[k].push(t.elapsed().as_nanos() as f64 / (per_round[k] as f64 * batch as f64));
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(|a, b| a.partial_cmp(b).unwrap());
            s[s.len() / 2]
        })
        .collect()
}

fn measure(batch: usize, mut f: impl FnMut()) -> f64 {
    measure_all(batch, &mut [&mut f])[0]
}

/// A PII-heavy event: nested context, a URL with a password, a home path.
fn make_pii_event(n: usize) -> Value {
    let message = if n.is_multiple_of(4) {
        format!(
            "request from 203.0.113.{} by ada{n}@example.com failed: postgres://u:p@db/x",
            n % 250
        )
    } else {
        format!("scan finished in {n} ms, 3 findings")
    };
    json!({
        "event_id": format!("01890a5d-ac96-774b-bcce-b302099a{n:04x}"),
        "timestamp": "2026-11-22T10:00:00Z",
        "level": "info",
        "event_type": "tool_failed",
        "tool": "migrateiq",
        "command": "scan --deep /usr/lib/x86_64-linux-gnu",
        "duration_ms": 840,
        "error_type": "ConnectionError",
        "message": message,
        "context": {"installation_id": "9f1c2d3e-8d4a-4e6b-9f0a-1c2d3e4f5a6b", "tool_version": "1.4.2", "os": "linux"},
    })
}

fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn load_chain(name: &str, wasm: &Path, config: &str) -> (Chain, Arc<PluginRuntime>) {
    assert!(
        wasm.is_file(),
        "{} is missing: run `cargo xtask bench` (it builds plugins and fixtures)",
        wasm.display()
    );
    let host = Host::new(None, Arc::new(Metrics::new())).expect("host");
    let limits = Limits::from_config(&Default::default());
    let runtime = host
        .load(name, wasm, config.into(), limits)
        .expect("load plugin");
    let chain = Chain::new(
        vec![Link {
            runtime: runtime.clone(),
            on_error: FailurePolicy::DeadLetter,
            shadows: Vec::new(),
        }],
        1,
        1024,
    );
    (chain, runtime)
}

/// Where the time of one chain run goes, at one batch size: the parts a
/// wasm run has that a native call does not, each timed alone.
fn stages(runtime: &PluginRuntime, make: fn(usize) -> Value, batch: usize) {
    let events: Vec<Value> = (0..batch).map(make).collect();
    println!("  {}", stages_of(runtime, &events));
}

/// The stages of one plugin's run on `events`, as one line.
fn stages_of(runtime: &PluginRuntime, events: &[Value]) -> String {
    let batch = events.len();
    let events = events.to_vec();
    let events = &events;
    let clone_ns = measure(batch, || {
        std::hint::black_box(events.clone());
    });
    let encode_ns = measure(batch, || {
        std::hint::black_box(FlatBatch::encode(events));
    });
    let encoded = EncodedBatch::from(FlatBatch::encode(events));
    let answer = runtime.process(&encoded).expect("plugin answers");
    let call_ns = measure(batch, || {
        std::hint::black_box(runtime.process(&encoded).expect("plugin answers"));
    });
    let apply_ns = measure(batch, || {
        let mut e = events.clone();
        wraith_event::flat::apply_edits(&mut e, &answer.edits, &answer.edit_data).unwrap();
        std::hint::black_box(e);
    }) - clone_ns;
    // The host's two ways of applying the answer of a plugin that another
    // follows, and writing each kept event's JSON line at the end: edits
    // applied to the JSON values, the next batch built from the untouched
    // events' bytes and the edited events encoded again, every value
    // serialised; or edits applied to the edited events' leaves, the next
    // batch built from those and the untouched events' bytes, and the
    // edited events' lines written from their leaves. The clone is taken
    // out of the first.
    let (data, leaves, words) = encoded.parts();
    let view = wraith_event::flat::BatchView::lazy(data, leaves, words);
    // Taking turns in every round, so that the machine's slow patches hit
    // all three alike.
    let routes = measure_all(
        batch,
        &mut [
            &mut || {
                std::hint::black_box(events.clone());
            },
            &mut || {
                let mut e = events.clone();
                let changed =
                    wraith_event::flat::apply_edits(&mut e, &answer.edits, &answer.edit_data)
                        .unwrap();
                let mut next = FlatBatch::with_capacity(batch);
                for (i, v) in e.iter().enumerate() {
                    if changed[i] {
                        next.push_event(v);
                    } else {
                        next.push_copied(data, leaves, words, i);
                    }
                }
                std::hint::black_box(next);
                for v in &e {
                    std::hint::black_box(serde_json::to_vec(v).unwrap());
                }
                std::hint::black_box(e);
            },
            &mut || {
                let edits =
                    wraith_event::flat::Edits::check(&answer.edits, &answer.edit_data, batch)
                        .unwrap();
                let mut next = FlatBatch::with_capacity(batch);
                let mut rewriter = wraith_event::flat::Rewriter::default();
                for i in 0..batch {
                    if edits.touches(i) {
                        rewriter
                            .push_edited(&mut next, &view.event(i), &edits, i)
                            .unwrap();
                    } else {
                        next.push_copied(data, leaves, words, i);
                    }
                }
                for (i, v) in events.iter().enumerate() {
                    let line = if edits.touches(i) {
                        let mut line = Vec::with_capacity(640);
                        wraith_event::flat::write_event(&next.event(i), &mut line);
                        line
                    } else {
                        serde_json::to_vec(v).unwrap()
                    };
                    std::hint::black_box(line);
                }
                std::hint::black_box(next);
            },
        ],
    );
    let (json_route, flat_route) = (routes[1] - routes[0], routes[2]);
    format!(
        "at batch {batch}, ns/ev: clone {clone_ns:.0} (all three columns pay it), encode {encode_ns:.0}, wasm call {call_ns:.0}, apply edits {apply_ns:.0}; edits applied and lines written: to JSON values {json_route:.0}, to leaves {flat_route:.0} ({:.2}x)",
        flat_route / json_route
    )
}

fn kept(chain: &Chain, events: Vec<Value>) -> Vec<Value> {
    chain
        .run(events)
        .into_iter()
        .map(|d| match d {
            Disposition::Keep { event, .. } => event.into_value(),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

/// Run one section: the plugin through the host against two native baselines.
fn section<P: wraith_plugin::Plugin>(
    title: &str,
    chain: &Chain,
    harness: &mut Harness<P>,
    make: fn(usize) -> Value,
    direct: &dyn Fn(&mut Value),
) {
    println!("\n{title}");
    println!(
        "{:>6} {:>14} {:>14} {:>14} {:>10} {:>10}",
        "batch", "wasm ns/ev", "direct ns/ev", "sdk ns/ev", "vs direct", "vs sdk"
    );
    for batch in [1usize, 16, 128, 1024] {
        let events: Vec<Value> = (0..batch).map(make).collect();
        // Check once that the three agree, so the comparison is of equal work.
        let via_wasm = kept(chain, events.clone());
        let via_sdk: Vec<Value> = harness
            .run(events.clone())
            .into_iter()
            .map(|p| p.event)
            .collect();
        assert_eq!(via_wasm, via_sdk, "wasm and native plugin disagree");
        let ns = measure_all(
            batch,
            &mut [
                &mut || {
                    std::hint::black_box(chain.run(events.clone()));
                },
                &mut || {
                    let mut e = events.clone();
                    e.iter_mut().for_each(direct);
                    std::hint::black_box(e);
                },
                &mut || {
                    std::hint::black_box(harness.run(events.clone()));
                },
            ],
        );
        let (wasm_ns, direct_ns, sdk_ns) = (ns[0], ns[1], ns[2]);
        println!(
            "{batch:>6} {wasm_ns:>14.0} {direct_ns:>14.0} {sdk_ns:>14.0} {:>9.2}x {:>9.2}x",
            wasm_ns / direct_ns,
            wasm_ns / sdk_ns
        );
    }
}

fn main() {
    let target = target_dir();
    if let Ok(what) = std::env::var("WRAITH_BENCH_PROFILE") {
        return profile(&what);
    }
    if std::env::var("WRAITH_BENCH_ONLY").is_ok_and(|o| o == "first-party") {
        return first_party_section();
    }
    println!(
        "chain benchmark: ns per event, median of 15 interleaved rounds; each plugin against native code in the same run"
    );
    println!(
        "  direct = clone the batch and run the same scrub function over the serde_json values natively"
    );
    println!(
        "  sdk    = the same plugin compiled natively, through the SDK's flat layout and edit application"
    );

    let (chain, runtime) = load_chain(
        "scrub-email",
        &target.join("fixtures/scrub-email.wasm"),
        "{}",
    );
    let mut harness = Harness::<ScrubEmail>::new(json!({})).unwrap();
    // The direct baseline must agree with the plugin too.
    let sample: Vec<Value> = (0..16).map(make_event).collect();
    let mut direct = sample.clone();
    direct.iter_mut().for_each(scrub_value);
    assert_eq!(kept(&chain, sample), direct, "wasm and direct disagree");
    section(
        "scrub-email fixture (12-field events, 1 in 4 with an address)",
        &chain,
        &mut harness,
        make_event,
        &scrub_value,
    );
    stages(&runtime, make_event, 128);

    let pii = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/pii-scrub.wasm");
    let (chain, runtime) = load_chain("pii-scrub", &pii, "{\"annotate\": false}");
    let mut harness = Harness::<PiiScrub>::new(json!({"annotate": false})).unwrap();
    let rules = harness.plugin().ruleset().clone();
    let direct = move |v: &mut Value| scrub_strings(&rules, v);
    section(
        "pii-scrub, all detectors (12-field events, 1 in 4 with an IP, an e-mail and a URL password)",
        &chain,
        &mut harness,
        make_pii_event,
        &direct,
    );
    stages(&runtime, make_pii_event, 128);

    first_party_section();
    languages(&target, 128);
    shadow_cost(&target, 128);
}

/// Each first-party plugin with its shipped config on realistic events,
/// net of the clone, in wasm and natively through the SDK harness.
fn first_party_section() {
    let batch = 128;
    let avg = serde_json::to_vec(&support::events(0, batch))
        .unwrap()
        .len()
        / batch;
    println!(
        "\nfirst-party plugins, shipped config, realistic events (~{avg} bytes), batch {batch}, ns/event; net = minus the clone both pay"
    );
    println!(
        "{:<16} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "plugin", "wasm", "sdk", "clone", "net wasm", "net sdk", "net ratio"
    );
    first_party::<wraith_plugin_schema_validate::SchemaValidate>("schema-validate", batch);
    first_party::<PiiScrub>("pii-scrub", batch);
    first_party::<wraith_plugin_enrich::Enrich>("enrich", batch);
    first_party::<wraith_plugin_route::Route>("route", batch);
}

/// The same e-mail scrubber written in Rust (the `scrub-email` fixture),
/// Python (`examples/python-plugin`, componentize-py) and JavaScript
/// (`examples/js-plugin`, componentize-js), on the same events in the same
/// run, net of the clone.
fn languages(target: &Path, batch: usize) {
    let fixtures = target.join("fixtures");
    // redact-py/-js also replace one field and refuse listed types: point
    // the field nowhere and refuse nothing, and all three only mask e-mails.
    let config = r#"{"field": "no_such_field"}"#;
    let rows = [
        ("rust", "scrub-email", "{}"),
        ("python", "redact-py", config),
        ("javascript", "redact-js", config),
    ];
    let chains: Vec<Chain> = rows
        .iter()
        .map(|(_, f, c)| load_chain(f, &fixtures.join(format!("{f}.wasm")), c).0)
        .collect();
    let events: Vec<Value> = (0..batch).map(make_event).collect();
    let expected = kept(&chains[0], events.clone());
    for (c, (lang, ..)) in chains.iter().zip(&rows).skip(1) {
        assert_eq!(
            kept(c, events.clone()),
            expected,
            "{lang} and rust disagree"
        );
    }
    let mut runs: Vec<Box<dyn FnMut()>> = vec![Box::new(|| {
        std::hint::black_box(events.clone());
    })];
    for c in &chains {
        runs.push(Box::new(|| {
            std::hint::black_box(c.run(events.clone()));
        }));
    }
    let mut refs: Vec<&mut dyn FnMut()> = runs
        .iter_mut()
        .map(|b| &mut **b as &mut dyn FnMut())
        .collect();
    let ns = measure_all(batch, &mut refs);
    println!(
        "\nthe same e-mail scrubber in three languages (12-field events, batch {batch}), ns/event net of the clone ({:.0})",
        ns[0]
    );
    let rust = ns[1] - ns[0];
    for (k, (lang, fixture, _)) in rows.iter().enumerate() {
        let net = ns[k + 1] - ns[0];
        println!(
            "{:<12} {fixture:<12} {net:>10.0} {:>9.1}x rust",
            lang,
            net / rust
        );
    }
}

/// What a shadow adds to the live path: `scrub-email` alone against
/// `scrub-email` with a copy of itself as a shadow (compared on every batch).
fn shadow_cost(target: &Path, batch: usize) {
    use wraith_gateway::pipeline::shadow::Shadow;
    let wasm = target.join("fixtures/scrub-email.wasm");
    let (alone, live) = load_chain("scrub-email", &wasm, "{}");
    let (_, candidate) = load_chain("scrub-email-next", &wasm, "{}");
    let with_shadow = Chain::new(
        vec![Link {
            runtime: live,
            on_error: FailurePolicy::DeadLetter,
            shadows: vec![Shadow {
                runtime: candidate,
                stats: Arc::default(),
            }],
        }],
        1,
        1024,
    );
    let events: Vec<Value> = (0..batch).map(make_event).collect();
    assert_eq!(
        kept(&alone, events.clone()),
        kept(&with_shadow, events.clone())
    );
    let ns = measure_all(
        batch,
        &mut [
            &mut || {
                std::hint::black_box(events.clone());
            },
            &mut || {
                std::hint::black_box(alone.run(events.clone()));
            },
            &mut || {
                std::hint::black_box(with_shadow.run(events.clone()));
            },
        ],
    );
    let (live_ns, shadowed_ns) = (ns[1] - ns[0], ns[2] - ns[0]);
    println!(
        "\na shadow on the live path (scrub-email beside itself, batch {batch}): {live_ns:.0} ns/event alone, {shadowed_ns:.0} with the shadow: +{:.0} ns/event, {:.2}x",
        shadowed_ns - live_ns,
        shadowed_ns / live_ns
    );
}

/// A first-party plugin's config from the shipped manifest, as JSON.
fn shipped_config(name: &str) -> Value {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/plugins.toml"),
    )
    .expect("plugins/plugins.toml");
    let manifest: toml::Table = toml::from_str(&text).expect("manifest parses");
    let config = manifest
        .get("plugins")
        .and_then(|p| p.get(name))
        .and_then(|p| p.get("config"))
        .cloned()
        .unwrap_or(toml::Value::Table(Default::default()));
    serde_json::to_value(config).expect("config as JSON")
}

/// What a run decided per event: the event when kept (with its
/// destination), the verdict's kind otherwise.
fn outcomes(d: Vec<Disposition>) -> Vec<(Option<Value>, String)> {
    d.into_iter()
        .map(|d| match d {
            Disposition::Keep { event, destination } => (Some(event.into_value()), destination),
            Disposition::Drop { .. } => (None, "drop".into()),
            Disposition::DeadLetter { .. } => (None, "dead-letter".into()),
        })
        .collect()
}

fn harness_outcomes(p: Vec<wraith_plugin::testing::Processed>) -> Vec<(Option<Value>, String)> {
    use wraith_plugin::Verdict;
    p.into_iter()
        .map(|p| match p.verdict {
            Verdict::Keep => (Some(p.event), "events".into()),
            Verdict::Route(d) => (Some(p.event), d),
            Verdict::Drop(_) => (None, "drop".into()),
            Verdict::Reject(_) => (None, "dead-letter".into()),
        })
        .collect()
}

/// One first-party plugin, net of the batch clone, wasm against native SDK.
fn first_party<P: wraith_plugin::Plugin>(name: &str, batch: usize) {
    let config = shipped_config(name);
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../plugins/{name}.wasm"));
    let (chain, runtime) = load_chain(name, &wasm, &config.to_string());
    let mut harness = Harness::<P>::new(config).expect("plugin accepts the shipped config");
    let events = support::events(0, batch);
    assert_eq!(
        outcomes(chain.run(events.clone())),
        harness_outcomes(harness.run(events.clone())),
        "{name}: wasm and native disagree"
    );
    let ns = measure_all(
        batch,
        &mut [
            &mut || {
                std::hint::black_box(events.clone());
            },
            &mut || {
                std::hint::black_box(chain.run(events.clone()));
            },
            &mut || {
                std::hint::black_box(harness.run(events.clone()));
            },
        ],
    );
    let (clone, wasm_ns, sdk_ns) = (ns[0], ns[1] - ns[0], ns[2] - ns[0]);
    println!(
        "{name:<16} {:>10.0} {:>10.0} {clone:>10.0} {wasm_ns:>10.0} {sdk_ns:>10.0} {:>9.2}x",
        ns[1],
        ns[2],
        wasm_ns / sdk_ns
    );
    println!("{:<16} {}", "", stages_of(&runtime, &events));
}

fn scrub_strings(rules: &Ruleset, v: &mut Value) {
    match v {
        Value::String(s) => {
            if let Some(clean) = rules.scrub_str(s) {
                *s = clean;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| scrub_strings(rules, x)),
        Value::Object(m) => m.values_mut().for_each(|x| scrub_strings(rules, x)),
        _ => {}
    }
}

/// `WRAITH_BENCH_PROFILE=NAME` (or `NAME:sdk`): run one first-party plugin
/// with its shipped config on the realistic events, in wasm (or natively
/// through the SDK harness), for `WRAITH_BENCH_SECS` (default 10) and
/// nothing else, for `perf record` (with `WRAITH_WASM_PROFILER=perfmap`
/// the plugin's own functions are named). `NAME` may be `shipped` for the
/// four in their shipped order. `WRAITH_BENCH_PLUGINS=DIR` takes the
/// `.wasm` files from `DIR` instead of `plugins/`: a build with
/// `CARGO_PROFILE_PLUGIN_STRIP=false` keeps the function names.
fn profile(what: &str) {
    let (name, native) = match what.split_once(':') {
        Some((n, "sdk")) => (n, true),
        Some(_) => panic!("WRAITH_BENCH_PROFILE={what}: expected NAME or NAME:sdk"),
        None => (what, false),
    };
    let secs: u64 = std::env::var("WRAITH_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let events = support::events(0, 128);
    let mut batches = 0u64;
    let mut go = |f: &mut dyn FnMut()| {
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until {
            f();
            batches += 1;
        }
    };
    if native {
        let config = shipped_config(name);
        match name {
            "schema-validate" => {
                let mut h =
                    Harness::<wraith_plugin_schema_validate::SchemaValidate>::new(config).unwrap();
                go(&mut || drop(std::hint::black_box(h.run(events.clone()))));
            }
            "pii-scrub" => {
                let mut h = Harness::<PiiScrub>::new(config).unwrap();
                go(&mut || drop(std::hint::black_box(h.run(events.clone()))));
            }
            "enrich" => {
                let mut h = Harness::<wraith_plugin_enrich::Enrich>::new(config).unwrap();
                go(&mut || drop(std::hint::black_box(h.run(events.clone()))));
            }
            "route" => {
                let mut h = Harness::<wraith_plugin_route::Route>::new(config).unwrap();
                go(&mut || drop(std::hint::black_box(h.run(events.clone()))));
            }
            _ => panic!("WRAITH_BENCH_PROFILE: no first-party plugin {name:?}"),
        }
    } else {
        let names: Vec<&str> = if name == "shipped" {
            vec!["schema-validate", "pii-scrub", "enrich", "route"]
        } else {
            vec![name]
        };
        let host = Host::new(None, Arc::new(Metrics::new())).expect("host");
        let limits = Limits::from_config(&Default::default());
        let links = names
            .iter()
            .map(|n| {
                let dir = std::env::var_os("WRAITH_BENCH_PLUGINS")
                    .map(std::path::PathBuf::from)
                    .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins"));
                let wasm = dir.join(format!("{n}.wasm"));
                let runtime = host
                    .load(n, &wasm, shipped_config(n).to_string(), limits.clone())
                    .unwrap_or_else(|e| panic!("{n}: {e:#}"));
                Link {
                    runtime,
                    on_error: FailurePolicy::DeadLetter,
                    shadows: Vec::new(),
                }
            })
            .collect();
        let chain = Chain::new(links, 1, 1024);
        go(&mut || drop(std::hint::black_box(chain.run(events.clone()))));
    }
    println!(
        "{what}: {batches} batches of 128 in {secs} s, {:.0} ns/event including the clone",
        secs as f64 * 1e9 / (batches as f64 * 128.0)
    );
}
