//! End to end: events/s through HTTP → chain → file sink, from `wrk` on
//! loopback posting realistic bodies (see `support/`: 500–800-byte events,
//! stack traces, command lines, config dumps, some PII), for the chains
//! operators run, in one run, taking turns:
//!
//! - the empty chain (the baseline), and a bare in-process `serde_json`
//!   parse + serialise of the same bodies (the ceiling of any JSON gateway);
//! - the `scrub-email` test fixture;
//! - each first-party plugin alone, with its configuration from
//!   `plugins/plugins.toml`;
//! - the shipped four (`plugins/` as built by `cargo xtask plugins`).
//!
//! Each line reports events/s, the ratio to the empty chain, the gateway's
//! CPU time (user + system, from `/proc`) per event and the empty chain's
//! over it (the same ratio without the load generator's share of the
//! cores), the gateway's peak RSS under load and its idle RSS (both on a start that finds the
//! plugins in the compile cache, as every restart does) and the peak of the
//! first start, which compiles them.
//!
//! `cargo xtask bench --bench e2e` builds the plugins and installs `wrk`.
//! Settings by environment: `WRAITH_BENCH_SECS` (default 5),
//! `WRAITH_BENCH_CLIENTS` (connections, default 8), `WRAITH_BENCH_BATCH`
//! (events per request, default 100), `WRAITH_BENCH_FSYNC=1` (fsync on; off
//! by default, as the peer comparison in DESIGN ran), `WRAITH_BENCH_ONLY`
//! (comma-separated labels to run), `WRAITH_BENCH_ROUNDS` (default 3: every
//! chain runs once per round, in turn, and each ratio is taken within its
//! round, so that the machine's slow patches hit both sides of a ratio),
//! `WRAITH_WRK` (the `wrk` binary), and
//! `WRAITH_BENCH_COMPARE=/path/to/gateway` to run every chain on another
//! build of the gateway too and print this build's ratio to it, with
//! `WRAITH_BENCH_COMPARE_PLUGINS=/path/to/plugins` giving that build its own
//! first-party `.wasm` files (say, the previous commit's).

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::wrk::{cpu_seconds, env_or, rss_mib, start};

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The plugin files of one chain.
struct ChainSpec {
    label: &'static str,
    wasm: Vec<PathBuf>,
}

struct Settings {
    secs: u64,
    clients: u64,
    batch: usize,
    fsync: bool,
    wrk: PathBuf,
    script: PathBuf,
}

struct Outcome {
    rate: f64,
    /// The gateway's CPU time per event (user and system), in µs.
    cpu_us: f64,
    peak_mib: f64,
    idle_mib: f64,
    compile_peak_mib: f64,
}

fn run(spec: &ChainSpec, gateway: &Path, s: &Settings, plugins_from: Option<&Path>) -> Outcome {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("plugins");
    std::fs::create_dir(&dir).unwrap();
    for src in &spec.wasm {
        let src = match plugins_from {
            Some(d) if src.starts_with(repo().join("plugins")) => d.join(src.file_name().unwrap()),
            _ => src.clone(),
        };
        assert!(
            src.is_file(),
            "{} is missing: run `cargo xtask bench --bench e2e`",
            src.display()
        );
        std::fs::copy(&src, dir.join(src.file_name().unwrap())).unwrap();
    }
    // The shipped manifest gives each first-party plugin its configuration;
    // entries for plugins not in the folder are ignored.
    std::fs::copy(
        repo().join("plugins/plugins.toml"),
        dir.join("plugins.toml"),
    )
    .unwrap();
    let config = root.path().join("gateway.toml");
    std::fs::write(&config, format!("[sinks.file]\nfsync = {}\n", s.fsync)).unwrap();
    // The first start compiles the plugins (the compile peak); the measured
    // one loads them from the compile cache, as every later restart does.
    let (mut cold, _) = start(gateway, root.path(), &dir, &config);
    let compile_peak_mib = rss_mib(cold.id(), "VmHWM:");
    let _ = cold.kill();
    let _ = cold.wait();
    let (mut child, base) = start(gateway, root.path(), &dir, &config);
    // Let start-up settle.
    std::thread::sleep(Duration::from_millis(300));
    let idle_mib = rss_mib(child.id(), "VmRSS:");
    let cpu_before = cpu_seconds(child.id());
    let (requests, seconds) = support::wrk::run(
        &s.wrk,
        &s.script,
        &format!("{base}/v1/events"),
        s.clients,
        s.secs,
        spec.label,
    );
    let cpu = cpu_seconds(child.id()) - cpu_before;
    let peak_mib = rss_mib(child.id(), "VmHWM:");
    let _ = child.kill();
    let _ = child.wait();
    let events = requests * s.batch as f64;
    Outcome {
        rate: events / seconds,
        cpu_us: cpu * 1e6 / events,
        peak_mib,
        idle_mib,
        compile_peak_mib,
    }
}

/// Events/s of a bare `serde_json` parse of the bodies into values and a
/// serialisation of each event as one line, on one thread: what any JSON
/// gateway pays at least, per core.
fn bare_serde(bodies: &[Vec<u8>], secs: u64) -> f64 {
    let started = Instant::now();
    let mut events = 0usize;
    let mut out = Vec::with_capacity(1 << 20);
    while started.elapsed() < Duration::from_secs(secs) {
        for body in bodies {
            let parsed: Vec<serde_json::Value> = serde_json::from_slice(body).unwrap();
            for e in &parsed {
                serde_json::to_writer(&mut out, e).unwrap();
                out.push(b'\n');
            }
            events += parsed.len();
            std::hint::black_box(&out);
            out.clear();
        }
    }
    events as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let secs = env_or("WRAITH_BENCH_SECS", 5);
    let s = Settings {
        secs,
        clients: env_or("WRAITH_BENCH_CLIENTS", 8),
        batch: env_or("WRAITH_BENCH_BATCH", 100) as usize,
        fsync: env_or("WRAITH_BENCH_FSYNC", 0) == 1,
        wrk: support::wrk::wrk_binary(),
        script: PathBuf::new(),
    };
    let work = tempfile::tempdir().unwrap();
    // A few different bodies, so caches see varied input; wrk cycles them.
    let bodies: Vec<Vec<u8>> = (0..8)
        .map(|k| serde_json::to_vec(&support::events(k * s.batch, s.batch)).unwrap())
        .collect();
    let script = support::wrk::script(work.path(), "events", &bodies, "application/json");
    let s = Settings { script, ..s };
    let avg = bodies.iter().map(Vec::len).sum::<usize>() as f64 / (bodies.len() * s.batch) as f64;
    println!(
        "end-to-end benchmark: wrk, {} connections, {} events per request ({avg:.0} bytes per event on average), {} s each, fsync {}",
        s.clients,
        s.batch,
        s.secs,
        if s.fsync { "on" } else { "off" }
    );

    let this = PathBuf::from(env!("CARGO_BIN_EXE_gateway"));
    let other = std::env::var_os("WRAITH_BENCH_COMPARE").map(PathBuf::from);
    if let Some(other) = &other {
        assert!(
            other.is_file(),
            "WRAITH_BENCH_COMPARE={} is not a file",
            other.display()
        );
        println!("comparing with {}", other.display());
    }
    let other_plugins = std::env::var_os("WRAITH_BENCH_COMPARE_PLUGINS").map(PathBuf::from);
    let first_party = |name: &str| repo().join(format!("plugins/{name}.wasm"));
    let specs = [
        ChainSpec {
            label: "empty chain",
            wasm: vec![],
        },
        ChainSpec {
            label: "scrub-email fixture",
            wasm: vec![target_dir().join("fixtures/scrub-email.wasm")],
        },
        ChainSpec {
            label: "schema-validate alone",
            wasm: vec![first_party("schema-validate")],
        },
        ChainSpec {
            label: "pii-scrub alone",
            wasm: vec![first_party("pii-scrub")],
        },
        ChainSpec {
            label: "enrich alone",
            wasm: vec![first_party("enrich")],
        },
        ChainSpec {
            label: "route alone",
            wasm: vec![first_party("route")],
        },
        ChainSpec {
            label: "the shipped four",
            wasm: ["schema-validate", "pii-scrub", "enrich", "route"]
                .iter()
                .map(|n| first_party(n))
                .collect(),
        },
    ];
    let only: Option<Vec<String>> = std::env::var("WRAITH_BENCH_ONLY")
        .ok()
        .map(|v| v.split(',').map(|x| x.trim().to_string()).collect());

    let rounds = env_or("WRAITH_BENCH_ROUNDS", 3).max(1) as usize;
    let selected: Vec<&ChainSpec> = specs
        .iter()
        .filter(|spec| {
            spec.label == "empty chain"
                || only
                    .as_ref()
                    .is_none_or(|o| o.iter().any(|l| l == spec.label))
        })
        .collect();
    // Rounds: every chain once per round, in turn, so that a slow patch of
    // the machine hits a round's chains alike; each ratio is taken within
    // its round, and the median round is reported.
    let mut mine: Vec<Vec<Outcome>> = selected.iter().map(|_| Vec::new()).collect();
    let mut theirs: Vec<Vec<Outcome>> = selected.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        eprintln!("round {} of {rounds}", round + 1);
        for (i, spec) in selected.iter().enumerate() {
            mine[i].push(run(spec, &this, &s, None));
            if let Some(o) = &other {
                theirs[i].push(run(spec, o, &s, other_plugins.as_deref()));
            }
        }
    }
    println!(
        "\n{rounds} rounds; events/s, CPU per event and idle RSS are the median round, the ratios the median of the rounds' ratios (events/s: their range beside it), peaks the highest; CPU is the gateway's (user + system) per event, and its ratio the empty chain's CPU per event over the chain's, so that it reads like the events/s ratio without the load generator's share of the cores"
    );
    println!(
        "\n{:<24} {:>12} {:>9} {:>13} {:>11} {:>8} {:>10} {:>10} {:>13}{}",
        "chain",
        "events/s",
        "vs empty",
        "range",
        "CPU µs/ev",
        "vs empty",
        "peak RSS",
        "idle RSS",
        "compile peak",
        if other.is_some() {
            "   vs other build (CPU per event)"
        } else {
            ""
        }
    );
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let line = |label: &str, runs: &[Outcome], base: &[Outcome], extra: String| {
        let ratios: Vec<f64> = runs
            .iter()
            .zip(base)
            .map(|(o, b)| o.rate / b.rate)
            .collect();
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &r| (l.min(r), h.max(r)));
        let cpu_ratios: Vec<f64> = runs
            .iter()
            .zip(base)
            .map(|(o, b)| b.cpu_us / o.cpu_us)
            .collect();
        println!(
            "{label:<24} {:>12.0} {:>8.2}x {:>13} {:>11.2} {:>7.2}x {:>6.0} MiB {:>6.0} MiB {:>9.0} MiB{extra}",
            median(runs.iter().map(|o| o.rate).collect()),
            median(ratios),
            format!("{lo:.2}-{hi:.2}x"),
            median(runs.iter().map(|o| o.cpu_us).collect()),
            median(cpu_ratios),
            runs.iter().map(|o| o.peak_mib).fold(0.0, f64::max),
            median(runs.iter().map(|o| o.idle_mib).collect()),
            runs.iter().map(|o| o.compile_peak_mib).fold(0.0, f64::max),
        );
    };
    for (i, spec) in selected.iter().enumerate() {
        match &other {
            None => line(spec.label, &mine[i], &mine[0], String::new()),
            Some(_) => {
                let r = median(mine[i].iter().map(|o| o.rate).collect())
                    / median(theirs[i].iter().map(|o| o.rate).collect());
                let c = median(theirs[i].iter().map(|o| o.cpu_us).collect())
                    / median(mine[i].iter().map(|o| o.cpu_us).collect());
                line(
                    spec.label,
                    &mine[i],
                    &mine[0],
                    format!("   {r:.2}x (CPU {c:.2}x)"),
                );
                line("  other build", &theirs[i], &theirs[0], String::new());
            }
        }
    }
    let empty = median(mine[0].iter().map(|o| o.rate).collect());
    let bare = bare_serde(&bodies, secs.min(3));
    println!(
        "\nbare serde_json parse + serialise of the same bodies, one thread: {bare:.0} events/s; the empty chain is {:.2}x of it",
        empty / bare
    );
}
