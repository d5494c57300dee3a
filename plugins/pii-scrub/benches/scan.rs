//! Native scan speed of pii-scrub's rule set on 600-byte texts (clean prose,
//! clean text full of look-alikes, and dirty text), with every detector on
//! against the same rule set with the new rules turned off by config
//! (`generic_secret = "off"`, `decode = false`), measured in the same run.
//! The context checks and the vendor table refine old detectors and have no
//! switch; they are in both columns.
//!
//! `cargo bench -p wraith-plugin-pii-scrub --bench scan`
//! (`WRAITH_BENCH_SECS` sets the time per variant, default 0.4 s, spread
//! over 25 rounds in which the variants take turns; best round kept;
//! `WRAITH_BENCH_PER_RULE=1` also prints each detector alone).

use std::hint::black_box;
use std::time::{Duration, Instant};
use wraith_plugin_pii_scrub::{Hit, Method, RULES, Rule, Ruleset};

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
