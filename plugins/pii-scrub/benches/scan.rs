//! Native scan speed of pii-scrub's rule set on 600-byte texts (clean prose,
//! clean text full of look-alikes, and dirty text), with every detector on
//! against the same rule set with the new rules turned off by config
//! (`generic_secret = "off"`, `decode = false`), measured in the same run.
//! The context checks and the vendor table refine old detectors and have no
//! switch; they are in both columns.
//!
//! Then **telemetry**: events shaped like the gateway's end-to-end bench
//! (`gateway/benches/support/`, copied here, ~746 bytes of JSON each:
//! command lines, Python stack traces, config dumps, a nested context,
//! timestamps, UUIDs, versions, one in four with an e-mail, some IPs and
//! tokens). Measured twice: `Ruleset::find_in` over every string leaf with
//! its field's name (the scan alone), and the whole plugin through the
//! SDK harness at batch 128 (keys, secret-named fields, paths, edits)
//! against a plugin that does nothing, in the same rounds; the difference
//! is pii-scrub's own per-event work.
//!
//! `cargo bench -p wraith-plugin-pii-scrub --bench scan`
//! (`WRAITH_BENCH_SECS` sets the time per variant, default 0.4 s, spread
//! over 25 rounds in which the variants take turns; best round kept;
//! `WRAITH_BENCH_PER_RULE=1` also prints each detector alone;
//! `WRAITH_BENCH_ONLY=texts` or `=telemetry` runs one part;
//! `WRAITH_BENCH_PER_FIELD=1` prints the scan's time per field name of the
//! telemetry events; `WRAITH_BENCH_PROFILE=<n>` runs only pii-scrub through
//! the harness on the telemetry events, `n` rounds of them (0: for
//! `WRAITH_BENCH_SECS`), for a profiler; `WRAITH_BENCH_SWEEP=<file>` writes
//! every match of a seeded random sweep to the file instead, for comparing
//! two builds).

mod support;

use serde_json::Value;
use std::hint::black_box;
use std::time::{Duration, Instant};
use wraith_plugin::testing::Harness;
use wraith_plugin::{Config, ConfigError, Event, Plugin, Verdict};
use wraith_plugin_pii_scrub::{Hit, Method, PiiScrub, RULES, Rule, Ruleset};

/// 600 bytes of log prose with nothing to scrub and few digits.
fn prose_text() -> String {
    let parts = [
        "Scan finished without findings. The worker pool drained its queue and ",
        "shut down cleanly; no retries were needed and the cache was warm. ",
        "Loaded plugin pii-scrub, schema-validate and enrich from the manifest; ",
        "the chain is healthy. Reading configuration from /etc/wraith/gateway.toml ",
        "and watching it for changes. Connected to the sink; batches are flushed ",
        "every second or when full. ConnectionError: upstream closed the stream, ",
        "reconnecting with backoff. Request handled: GET /api/v1/health returned OK. ",
    ];
    fit(parts.concat())
}

/// 600 bytes of telemetry with nothing to scrub but many look-alikes: ids,
/// versions, paths, timestamps, a URL with a percent escape, a commit hash.
fn ids_text() -> String {
    let parts = [
        "2026-11-22T10:00:00.123Z INFO scan finished in 840 ms with 3 findings; ",
        "tool=migrateiq version=1.4.2-rc.1 build 1.4.17 os=linux arch=x86_64; ",
        "event_id=01890a5d-ac96-774b-bcce-b302099a0042 installation=9f1c2d3e-8d4a-4e6b-9f0a-1c2d3e4f5a6b; ",
        "commit 3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39 on branch main; ",
        "command: scan --deep /usr/lib/x86_64-linux-gnu --jobs 4 --output=/var/tmp/report.json; ",
        "fetched https://registry.example.com/search?q=rust%20lang&page=2 in 0.25s (p99 1.2s); ",
        "ConnectionError retried 3 times, then succeeded. Workers: 8, queue depth 12, heap 512 MiB. ",
        "Next run scheduled for tomorrow at 02:00 UTC. ",
    ];
    fit(parts.concat())
}

/// The same length with PII of most kinds in it.
fn dirty_text() -> String {
    let parts = [
        "2026-11-22T10:00:00Z ERROR mail to ada.lovelace@example.com bounced from 203.0.113.42; ",
        "user home /home/ada/src/app, card 4111 1111 1111 1111, SSN: 219450912, phone +44 20 7946 0958; ",
        "Authorization: Bearer abc123def456ghi789jkl; token ghp_16C7e42F292c6912E7710c838347Ae178B4a; ",
        "redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%3Fu%3Dada%40example.org; ",
        "tool publish --key q8Rt2vLw0ZbX9kPm4sNc7yHj1uEa5GdF3oTiWxYz; ",
        "postgres://app:Hunt3r2024@db.internal:5432/prod; mac 00:1A:2B:3C:4D:5E; ",
        "firmware 4.12.3.9 kept, commit 3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39 kept. ",
    ];
    fit(parts.concat())
}

/// Exactly 600 bytes: repeated or cut at a character boundary.
fn fit(mut s: String) -> String {
    while s.len() < 600 {
        let again = s.clone();
        s.push_str(&again);
    }
    let mut end = 600;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

/// Bytes per second of `rules.find` on `text` over about `secs`.
fn throughput(rules: &Ruleset, text: &str, hits: &mut Vec<Hit>, secs: f64) -> f64 {
    let budget = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..256 {
            rules.find(black_box(text), hits);
            black_box(&*hits);
        }
        n += 256;
    }
    (n as f64 * text.len() as f64) / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let secs: f64 = std::env::var("WRAITH_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.4);
    if let Some(path) = std::env::var_os("WRAITH_BENCH_SWEEP") {
        support::sweep::run(&path.to_string_lossy());
        return;
    }
    let only = std::env::var("WRAITH_BENCH_ONLY").unwrap_or_default();
    if only != "telemetry" {
        texts(secs);
    }
    if only != "texts" {
        telemetry_events(secs);
    }
}

/// The three 600-byte texts, every detector against the new rules off.
fn texts(secs: f64) {
    let all = Ruleset::default();
    let mut methods = [Method::Mask; RULES];
    methods[Rule::GenericSecret as usize] = Method::Off;
    let without = Ruleset::new(methods, None).with_decoding(false);

    let prose = prose_text();
    let clean = ids_text();
    let dirty = dirty_text();
    let mut hits = Vec::new();
    for t in [&prose, &clean] {
        all.find(t, &mut hits);
        assert!(hits.is_empty(), "a clean text has matches: {hits:?}");
    }
    all.find(&dirty, &mut hits);
    let found = hits.len();
    assert!(found >= 12, "the dirty text has only {found} matches");

    if let Ok(which) = std::env::var("WRAITH_BENCH_PROFILE_TEXT") {
        // One text, every detector, a fixed number of scans: for counting
        // instructions.
        let text = match which.as_str() {
            "prose" => &prose,
            "ids" => &clean,
            _ => &dirty,
        };
        for _ in 0..10_000 {
            all.find(black_box(text), &mut hits);
            black_box(&hits);
        }
        return;
    }

    if std::env::var_os("WRAITH_BENCH_PER_RULE").is_some() {
        for rule in Rule::ALL {
            let one = Ruleset::only(rule);
            let p = throughput(&one, &prose, &mut hits, secs / 4.0);
            let c = throughput(&one, &clean, &mut hits, secs / 4.0);
            let d = throughput(&one, &dirty, &mut hits, secs / 4.0);
            println!(
                "{:<16} prose {:>8.1}   ids {:>8.1}   dirty {:>8.1} MB/s",
                rule.name(),
                p / 1e6,
                c / 1e6,
                d / 1e6
            );
        }
    }
    let variants: [(&str, &Ruleset, &str); 6] = [
        ("prose, every detector", &all, &prose),
        ("prose, new rules off", &without, &prose),
        ("ids, every detector", &all, &clean),
        ("ids, new rules off", &without, &clean),
        ("dirty, every detector", &all, &dirty),
        ("dirty, new rules off", &without, &dirty),
    ];
    // Many short rounds, the variants taking turns in each, so a busy
    // moment of the machine hits all of them alike; per variant the best
    // round, per pair the median of the per-round ratios.
    let rounds = 25;
    let mut best = [0f64; 6];
    let mut ratios: [Vec<f64>; 3] = Default::default();
    for _ in 0..rounds {
        let mut this = [0f64; 6];
        for (k, (_, rules, text)) in variants.iter().enumerate() {
            this[k] = throughput(rules, text, &mut hits, secs / rounds as f64);
            best[k] = best[k].max(this[k]);
        }
        for (k, r) in ratios.iter_mut().enumerate() {
            r.push(this[2 * k + 1] / this[2 * k]);
        }
    }
    println!(
        "pii-scrub scan, 600-byte texts ({found} matches in the dirty one), best of {rounds} rounds"
    );
    for (k, (name, _, _)) in variants.iter().enumerate() {
        println!(
            "{name:<28} {:>8.1} MB/s {:>8.0} ns/string",
            best[k] / 1e6,
            600.0 / best[k] * 1e9
        );
    }
    for (k, name) in ["prose", "ids", "dirty"].iter().enumerate() {
        let r = &mut ratios[k];
        r.sort_by(f64::total_cmp);
        println!(
            "  {name}: every detector costs {:.2}x the scan without the new rules (median of {rounds} rounds; quartiles {:.2}-{:.2})",
            r[rounds / 2],
            r[rounds / 4],
            r[3 * rounds / 4]
        );
    }
}

/// Keeps every event as it is: the harness's own cost.
struct Nothing;

impl Plugin for Nothing {
    fn init(_: Config) -> Result<Self, ConfigError> {
        Ok(Nothing)
    }
    fn process(&mut self, _: &mut Event<'_>) -> Verdict {
        Verdict::Keep
    }
}

/// Every string leaf of `v` with the last key above it (what the plugin's
/// value scan hands `Ruleset::find_in`).
fn string_leaves(v: &Value, key: Option<&str>, out: &mut Vec<(Option<String>, String)>) {
    match v {
        Value::String(s) => out.push((key.map(str::to_string), s.clone())),
        Value::Array(a) => a.iter().for_each(|x| string_leaves(x, key, out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| string_leaves(x, Some(k), out)),
        _ => {}
    }
}

/// Nanoseconds per event of `f` (which handles `per_call` events) over about
/// `secs`.
fn per_event(per_call: usize, secs: f64, mut f: impl FnMut()) -> f64 {
    let budget = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut calls = 0u64;
    while calls == 0 || start.elapsed() < budget {
        f();
        calls += 1;
    }
    start.elapsed().as_nanos() as f64 / (calls as f64 * per_call as f64)
}

/// Realistic events: the scan alone, and the whole plugin through the SDK
/// harness net of a plugin that does nothing.
fn telemetry_events(secs: f64) {
    const BATCH: usize = 128;
    const EVENTS: usize = 1024;
    let events = support::events(0, EVENTS);
    let bytes: usize = events
        .iter()
        .map(|e| serde_json::to_vec(e).map_or(0, |v| v.len()))
        .sum();
    let mut leaves = Vec::new();
    for e in &events {
        string_leaves(e, None, &mut leaves);
    }
    let text: usize = leaves.iter().map(|(_, s)| s.len()).sum();
    let batches: Vec<Vec<Value>> = events.chunks(BATCH).map(<[Value]>::to_vec).collect();

    let rules = Ruleset::default();
    let mut hits = Vec::new();
    let mut matched = 0;
    for (k, s) in &leaves {
        rules.find_in(k.as_deref(), s, &mut hits);
        matched += hits.len();
    }
    let mut scrub = Harness::<PiiScrub>::new(serde_json::json!({})).expect("default config");
    let mut nothing = Harness::<Nothing>::new(serde_json::json!({})).expect("no config");
    let edited = batches
        .iter()
        .flat_map(|b| scrub.run(b.clone()))
        .zip(&events)
        .filter(|(p, e)| p.event != **e)
        .count();

    if std::env::var_os("WRAITH_BENCH_PER_FIELD").is_some() {
        // `find_in` per field name: where the scan's time goes.
        let mut by: std::collections::BTreeMap<&str, (f64, usize, usize)> = Default::default();
        for (k, s) in &leaves {
            let start = Instant::now();
            for _ in 0..2000 {
                rules.find_in(black_box(k.as_deref()), black_box(s), &mut hits);
            }
            let e = by.entry(k.as_deref().unwrap_or("")).or_default();
            e.0 += start.elapsed().as_nanos() as f64 / 2000.0;
            e.1 += 1;
            e.2 += s.len();
        }
        println!("field                 leaves/event   bytes/leaf   find_in ns/event");
        for (k, (ns, n, len)) in by {
            println!(
                "{k:<20} {:>13.2} {:>12.1} {:>18.0}",
                n as f64 / EVENTS as f64,
                len as f64 / n as f64,
                ns / EVENTS as f64
            );
        }
        return;
    }
    if let Ok(n) = std::env::var("WRAITH_BENCH_PROFILE") {
        // Only the plugin through the harness, for a profiler: `n` times
        // every batch (each event once more per round), or for `secs`.
        let start = Instant::now();
        let rounds: usize = n.parse().unwrap_or(0);
        let mut done = 0;
        while done < rounds || (rounds == 0 && start.elapsed().as_secs_f64() < secs) {
            for b in &batches {
                black_box(scrub.run(b.clone()));
            }
            done += 1;
        }
        println!(
            "harness, pii-scrub (batch {BATCH}) {:.0} ns/event over {done} rounds",
            start.elapsed().as_nanos() as f64 / (done * EVENTS) as f64
        );
        return;
    }
    let rounds = 25;
    let slice = secs / rounds as f64;
    let mut best = [f64::INFINITY; 3];
    let mut nets = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let find = per_event(EVENTS, slice, || {
            for (k, s) in &leaves {
                rules.find_in(black_box(k.as_deref()), black_box(s), &mut hits);
                black_box(&hits);
            }
        });
        let mut b = 0;
        let with = per_event(BATCH, slice, || {
            black_box(scrub.run(batches[b % batches.len()].clone()));
            b += 1;
        });
        let mut b = 0;
        let without = per_event(BATCH, slice, || {
            black_box(nothing.run(batches[b % batches.len()].clone()));
            b += 1;
        });
        for (k, t) in [find, with, without].into_iter().enumerate() {
            best[k] = best[k].min(t);
        }
        nets.push(with - without);
    }
    nets.sort_by(f64::total_cmp);
    println!(
        "telemetry: {EVENTS} events like the gateway bench's, {:.0} bytes of JSON each, {} string leaves ({:.0} bytes of text) per event; {matched} matches, {edited} events edited; best of {rounds} rounds",
        bytes as f64 / EVENTS as f64,
        leaves.len() / EVENTS,
        text as f64 / EVENTS as f64
    );
    let mbs = |ns: f64, b: f64| b / ns * 1e3;
    println!(
        "find_in over the string leaves   {:>8.0} ns/event {:>8.1} MB/s of text",
        best[0],
        mbs(best[0], text as f64 / EVENTS as f64)
    );
    println!(
        "harness, pii-scrub (batch {BATCH})     {:>8.0} ns/event",
        best[1]
    );
    println!("harness, plugin doing nothing    {:>8.0} ns/event", best[2]);
    println!(
        "  pii-scrub's own work: {:.0} ns/event, {:.1} MB/s of JSON (median of {rounds} rounds; quartiles {:.0}-{:.0})",
        nets[rounds / 2],
        mbs(nets[rounds / 2], bytes as f64 / EVENTS as f64),
        nets[rounds / 4],
        nets[3 * rounds / 4]
    );
}
