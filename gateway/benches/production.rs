//! The production path's throughput against baselines measured in the same
//! run, on realistic events (~600 bytes: messages, command lines, stack
//! frames, nested context):
//!
//! 1. HTTP → empty chain → JetStream (acknowledged) against raw JetStream
//!    publishing of the same event lines from this process, ~1,000 publishes
//!    in flight with `Nats-Msg-Id` (goal ≥ 0.8×: the sink is not the
//!    bottleneck); the shipped first-party chain's figure beside it, and
//!    the same load on the file sink with fsync off (no NATS at all): what
//!    HTTP, the gateway and the load generator take of the two cores when
//!    the sink costs next to nothing.
//! 2. `gateway load` JetStream → ClickHouse against a raw `clickhouse` crate
//!    insert of the same rows in 10,000-row inserts into the same schema
//!    (table and per-minute materialized view) in a database of its own
//!    (goal ≥ 0.8×). Before it, the loader's own cost of turning one
//!    message into its row, against a `serde_json` parse of the same lines
//!    that keeps nothing.
//!
//! Needs `nats-server` and `clickhouse-server` (`cargo xtask test` installs
//! both; or set WRAITH_NATS_SERVER / WRAITH_CLICKHOUSE_SERVER) and the
//! first-party plugins (`cargo xtask plugins`). `WRAITH_BENCH_SECS` (default
//! 5), `WRAITH_BENCH_CLIENTS` (8), `WRAITH_BENCH_ROWS` (100000),
//! `WRAITH_BENCH_ROUNDS` (3: each part runs that many times, each on fresh
//! servers, the loader against the raw insert before and after it, and the
//! median ratios are printed),
//! `WRAITH_BENCH_ONLY` (`http` or `loader`: run one of the two parts, e.g.
//! to profile it), `WRAITH_BENCH_LOADER_LOG` (the loader's `RUST_LOG`;
//! `wraith_gateway::loader=debug` prints where each batch's time goes).
//! `WRAITH_BENCH_PROFILE=<n>` (or `<n>:scan`) starts no server: it turns
//! 1,024 of the lines into rows `n` times (or only parses them, keeping
//! nothing), for `valgrind --tool=callgrind`: the difference of two counts
//! (say 2 and 12 passes) over 10 × 1,024 is the cost per row.

#[path = "../tests/it/servers.rs"]
#[allow(dead_code)]
mod servers;

use serde_json::{Value, json};
use servers::{ClickHouse, Nats};
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A realistic event: 500–800 bytes, one in four with an e-mail address.
fn event(n: u64) -> Value {
    let message = match n % 4 {
        0 => format!(
            "deploy failed for ada.lovelace@example.com: connection reset by peer while uploading artifact {n} (attempt 3 of 5); retrying with backoff"
        ),
        1 => "Traceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/migrateiq/cli.py\", line 212, in run\n    plan = planner.build(config)\n  File \"/usr/lib/python3/dist-packages/migrateiq/plan.py\", line 88, in build\nKeyError: 'region'".to_string(),
        2 => "migrateiq scan --profile prod --region eu-west-1 --include 'services/*' --exclude 'legacy/**' --output json --max-depth 12".to_string(),
        _ => "scan finished: 1284 resources, 17 findings (3 high, 9 medium, 5 low), cache hit ratio 0.82, 4 workers".to_string(),
    };
    json!({
        "event_id": uuid::Uuid::new_v4().to_string(),
        "event_type": if n.is_multiple_of(10) { "tool_failed" } else { "tool_succeeded" },
        "tool": "migrateiq",
        "command": "scan",
        "level": if n.is_multiple_of(10) { "error" } else { "info" },
        "duration_ms": 840 + n % 1000,
        "error_type": if n.is_multiple_of(10) { "ConnectionReset" } else { "" },
        "message": message,
        "context": {"installation_id": "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f", "tool_version": "1.4.2", "os": "linux", "arch": "x86_64",
                    "python": "3.11.7", "ci": false, "terminal": {"columns": 120, "color": true}},
        "args": ["--profile", "prod", "--region", "eu-west-1"],
    })
}

fn plugins_dir(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// Acknowledged events/s from `clients` HTTP clients posting `batch`-event
/// arrays for `secs`, and how many requests were refused (503) on the way:
/// a refused batch is sent again, as a client would.
fn http_load(url: &str, secs: u64, clients: u64, batch: u64) -> (f64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (url, stop, sent, refused) =
                (url.to_string(), stop.clone(), sent.clone(), refused.clone());
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::new();
                // Bodies are built before the clock starts (the raw
                // publisher's lines are too); each request copies one and
                // writes fresh `event_id`s into it, since JetStream would
                // drop repeats as duplicates.
                let templates: Vec<(Vec<u8>, Vec<usize>)> = (0..10)
                    .map(|k| {
                        let first = c * 1_000_000 + k * batch;
                        let body: Vec<Value> = (first..first + batch).map(event).collect();
                        let bytes = serde_json::to_vec(&body).unwrap();
                        let ids: Vec<usize> = body
                            .iter()
                            .map(|e| {
                                let id = e["event_id"].as_str().unwrap().as_bytes();
                                bytes.windows(id.len()).position(|w| w == id).unwrap()
                            })
                            .collect();
                        (bytes, ids)
                    })
                    .collect();
                let mut k = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (template, ids) = &templates[k % templates.len()];
                    k += 1;
                    let mut body = template.clone();
                    for &at in ids {
                        uuid::Uuid::new_v4()
                            .hyphenated()
                            .encode_lower(&mut body[at..at + 36]);
                    }
                    let r = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .unwrap();
                    match r.status().as_u16() {
                        200 => {
                            sent.fetch_add(batch, Ordering::Relaxed);
                        }
                        503 => {
                            if refused.fetch_add(1, Ordering::Relaxed) == 0 {
                                println!("  first 503: {}", r.text().unwrap_or_default().trim());
                            }
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        s => panic!("status {s}: {}", r.text().unwrap_or_default()),
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    (
        sent.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64(),
        refused.load(Ordering::Relaxed),
    )
}

/// A gateway on `plugins` publishing to NATS at `nats`, or, with `None`,
/// storing to its file sink with fsync off.
fn gateway(plugins: &Path, nats: Option<&str>, data: &Path) -> (std::process::Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway"));
    match nats {
        Some(url) => {
            cmd.args(["--nats", url]);
        }
        None => {
            let config = data.with_extension("toml");
            std::fs::write(&config, "[sinks.file]\nfsync = false\n").unwrap();
            cmd.args(["--config", config.to_str().unwrap()]);
        }
    }
    let mut child = cmd
        .args(["--plugins", plugins.to_str().unwrap()])
        .args(["--data-dir", data.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("wraith gateway listening on ")
        .expect("gateway started")
        .to_string();
    // Load starts once the gateway can take data (NATS connected, stream
    // checked, plugins loaded), as behind a load balancer that reads
    // `/ready`: a 503 counted below is one under load, not at start-up.
    let started = Instant::now();
    let http = reqwest::blocking::Client::new();
    while !http
        .get(format!("{url}/ready"))
        .send()
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the gateway was not ready within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, format!("{url}/v1/events"))
}

/// events/s of raw JetStream publishing (acks awaited, `window` in flight).
async fn raw_publish(nats: &str, subject: &str, secs: u64, window: usize) -> f64 {
    let client = async_nats::connect(nats).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let lines: Vec<(String, bytes::Bytes)> = (0..10_000u64)
        .map(|n| {
            let e = event(n);
            (
                e["event_id"].as_str().unwrap().to_string(),
                bytes::Bytes::from(serde_json::to_vec(&e).unwrap()),
            )
        })
        .collect();
    let started = Instant::now();
    let mut sent = 0u64;
    let mut round = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        let mut acks = Vec::with_capacity(window);
        for (id, line) in lines.iter().take(window) {
            let msg = async_nats::jetstream::message::PublishMessage::build()
                .payload(line.clone())
                .message_id(format!("{id}-{round}"));
            acks.push(js.send_publish(subject.to_string(), msg).await.unwrap());
        }
        for a in futures_util::future::join_all(acks.into_iter().map(|a| a.into_future())).await {
            a.unwrap();
        }
        sent += window as u64;
        round += 1;
    }
    sent as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    if let Ok(p) = std::env::var("WRAITH_BENCH_PROFILE") {
        profile_rows(&p);
        return;
    }
    let secs = env_or("WRAITH_BENCH_SECS", 5);
    let clients = env_or("WRAITH_BENCH_CLIENTS", 8);
    let rows = env_or("WRAITH_BENCH_ROWS", 100_000);
    let first_party = plugins_dir("../plugins");
    assert!(
        first_party.join("pii-scrub.wasm").is_file(),
        "the first-party plugins are missing: run `cargo xtask plugins`"
    );
    let sample = serde_json::to_vec(&event(0)).unwrap().len();
    println!(
        "production-path benchmark: {clients} clients × 100-event posts, {secs} s each, events ~{sample} bytes"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let only = std::env::var("WRAITH_BENCH_ONLY").unwrap_or_default();
    assert!(
        matches!(only.as_str(), "" | "http" | "loader"),
        "WRAITH_BENCH_ONLY is `http` or `loader`, not {only:?}"
    );
    let rounds = env_or("WRAITH_BENCH_ROUNDS", 3).max(1);
    let median_of = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    if only != "loader" {
        let mut runs = Vec::new();
        for r in 0..rounds {
            if rounds > 1 {
                println!("HTTP, round {} of {rounds}:", r + 1);
            }
            runs.push(http_part(&rt, secs, clients, &first_party));
        }
        if rounds > 1 {
            let (m, lo, hi) = median_of(runs.iter().map(|r| r.0).collect());
            let (ms, los, his) = median_of(runs.iter().map(|r| r.1).collect());
            println!(
                "HTTP → empty chain → JetStream against raw publishing, {rounds} rounds: median {m:.2}x (range {lo:.2}-{hi:.2}x); the shipped chain against the empty one: median {ms:.2}x (range {los:.2}-{his:.2}x)"
            );
        }
    }
    if only != "http" {
        let mut ratios: Vec<f64> = (0..rounds)
            .map(|r| {
                if rounds > 1 {
                    println!("loader, round {} of {rounds}:", r + 1);
                }
                loader_part(&rt, rows)
            })
            .collect();
        ratios.sort_by(|a, b| a.partial_cmp(b).unwrap());
        if rounds > 1 {
            println!(
                "loader steady drain against the raw insert, {rounds} rounds: median {:.2}x (range {:.2}-{:.2}x)",
                ratios[ratios.len() / 2],
                ratios[0],
                ratios[ratios.len() - 1]
            );
        }
    }
}

/// The loader's row step alone, `n` passes over 1,024 lines, the rows in a
/// list used again as the loader's batches use theirs (`<n>:scan`: the
/// parse that keeps nothing instead).
fn profile_rows(spec: &str) {
    let (n, scan) = match spec.strip_suffix(":scan") {
        Some(n) => (n, true),
        None => (spec, false),
    };
    let passes: usize = n.parse().expect("WRAITH_BENCH_PROFILE is <passes>[:scan]");
    let lines: Vec<Vec<u8>> = (0..1024)
        .map(|n| serde_json::to_vec(&event(n)).unwrap())
        .collect();
    let mut list = Vec::with_capacity(lines.len());
    for _ in 0..passes {
        list.clear();
        for l in &lines {
            if scan {
                std::hint::black_box(serde_json::from_slice::<serde::de::IgnoredAny>(l).unwrap());
            } else {
                list.push(wraith_gateway::loader::row::event_row(l, "events", None).unwrap());
            }
        }
        std::hint::black_box(&list);
    }
}

/// 1. HTTP → chain → JetStream against raw publishing.
///
/// Returns the empty chain's ratio to raw publishing and the shipped
/// chain's to the empty one.
fn http_part(
    rt: &tokio::runtime::Runtime,
    secs: u64,
    clients: u64,
    first_party: &Path,
) -> (f64, f64) {
    let nats = Nats::start();
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    // The gateway creates the stream the raw publisher uses too.
    let (mut g, url) = gateway(&empty, Some(&nats.url()), &tmp.path().join("d1"));
    let raw = rt.block_on(raw_publish(&nats.url(), "telemetry.bench", secs, 1000));
    let (empty_rate, empty_refused) = http_load(&url, secs, clients, 100);
    let _ = g.kill();
    let _ = g.wait();
    let (mut g, url) = gateway(first_party, Some(&nats.url()), &tmp.path().join("d2"));
    let (shipped_rate, shipped_refused) = http_load(&url, secs, clients, 100);
    let _ = g.kill();
    let _ = g.wait();
    // The same load with no NATS at all: what the gateway and the load
    // generator do on these two cores when the sink costs next to nothing.
    let (mut g, url) = gateway(&empty, None, &tmp.path().join("d3"));
    let (file_rate, _) = http_load(&url, secs, clients, 100);
    let _ = g.kill();
    let _ = g.wait();
    println!(
        "{:<48} {raw:>10.0} events/s",
        "raw JetStream publish (1,000 in flight)"
    );
    println!(
        "{:<48} {empty_rate:>10.0} events/s   {:.2}x raw   ({empty_refused} requests refused with 503)",
        "HTTP → empty chain → JetStream",
        empty_rate / raw
    );
    println!(
        "{:<48} {file_rate:>10.0} events/s   JetStream's figure is {:.2}x of it",
        "HTTP → empty chain → file sink (fsync off)",
        empty_rate / file_rate
    );
    println!(
        "{:<48} {shipped_rate:>10.0} events/s   {:.2}x raw, {:.2}x the empty chain   ({shipped_refused} refused)",
        "HTTP → shipped chain → JetStream",
        shipped_rate / raw,
        shipped_rate / empty_rate
    );
    // What the server said about its clients (a dropped connection under
    // load shows here as a slow consumer or a write deadline).
    for line in nats.log().lines().filter(|l| {
        [
            "Slow Consumer",
            "Write Deadline",
            "Stale",
            "[ERR]",
            "closed",
        ]
        .iter()
        .any(|w| l.contains(w))
    }) {
        println!("  nats-server: {line}");
    }
    (empty_rate / raw, shipped_rate / empty_rate)
}

/// 2. The loader against a raw insert of the same rows.
fn loader_part(rt: &tokio::runtime::Runtime, rows: u64) -> f64 {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let lines: Vec<Vec<u8>> = (0..rows)
        .map(|n| serde_json::to_vec(&event(n)).unwrap())
        .collect();
    let ch_client = clickhouse::Client::default()
        .with_url(ch.url())
        .with_validation(false)
        .with_compression(clickhouse::Compression::None);
    let mut config = wraith_gateway::config::Config::default();
    config.loader.clickhouse_url = ch.url();
    config.sinks.nats.url = nats.url();
    rt.block_on(async {
        wraith_gateway::loader::schema::migrate(&ch_client, "wraith", "events", &[])
            .await
            .unwrap();
        // The baseline inserts into the same schema in a database of its
        // own: the same table and the same per-minute materialized view,
        // which ClickHouse runs on every insert into `events`.
        for db in ["wraith_raw", "wraith_raw_after"] {
            wraith_gateway::loader::schema::migrate(&ch_client, db, "events", &[])
                .await
                .unwrap();
        }
    });
    // The loader's CPU per message is mostly reading the row out of the
    // JSON: held here against the floor of any JSON reader, a parse of the
    // same lines that keeps nothing. Rows go in 1,000-row lists used again,
    // as the loader's batches reuse their memory, so neither side pays for
    // touching fresh pages.
    fn ns_per_line(lines: &[Vec<u8>], mut each: impl FnMut(&[u8])) -> f64 {
        let started = Instant::now();
        lines.iter().for_each(|l| each(l));
        started.elapsed().as_nanos() as f64 / lines.len() as f64
    }
    let scan_ns = ns_per_line(&lines, |l| {
        serde_json::from_slice::<serde::de::IgnoredAny>(l).unwrap();
    });
    let mut list = Vec::with_capacity(1000);
    let row_ns = ns_per_line(&lines, |l| {
        if list.len() == 1000 {
            list.clear();
        }
        list.push(wraith_gateway::loader::row::event_row(l, "events", None).unwrap());
    });
    println!(
        "{:<48} {row_ns:>10.0} ns/row   {:.2}x a parse that keeps nothing ({scan_ns:.0} ns)",
        "loader: one message into its row",
        row_ns / scan_ns
    );
    let parsed: Vec<_> = lines
        .iter()
        .map(|l| wraith_gateway::loader::row::event_row(l, "events", None).unwrap())
        .collect();
    // The raw insert runs before the loader and again after it, each into
    // an empty database, and the loader is held to their mean: ClickHouse's
    // own speed moves a lot from minute to minute on this machine.
    let raw_insert = |db: &str| {
        let ch_db = ch_client.clone().with_database(db);
        let started = Instant::now();
        rt.block_on(async {
            for chunk in parsed.chunks(10_000) {
                let mut insert = ch_db
                    .insert::<wraith_gateway::loader::row::EventRow>("events")
                    .await
                    .unwrap();
                for r in chunk {
                    insert.write(r).await.unwrap();
                }
                insert.end().await.unwrap();
            }
        });
        rows as f64 / started.elapsed().as_secs_f64()
    };
    let raw_before = raw_insert("wraith_raw");
    // Fill the stream, then time the loader draining it.
    rt.block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        wraith_gateway::sinks::nats::ensure_stream(&js, &config.sinks.nats)
            .await
            .unwrap();
        for chunk in lines.chunks(1000) {
            let mut acks = Vec::new();
            for l in chunk {
                acks.push(
                    js.publish("telemetry.events", bytes::Bytes::from(l.clone()))
                        .await
                        .unwrap(),
                );
            }
            for a in acks {
                a.await.unwrap();
            }
        }
    });
    let started = Instant::now();
    let mut loader = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["load", "--nats", &nats.url(), "--clickhouse", &ch.url()])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .env(
            "RUST_LOG",
            std::env::var("WRAITH_BENCH_LOADER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Start-up (process, connections, schema check, consumer) until the
    // first rows land, then the steady drain of the rest.
    let mut first: Option<(Instant, u64)> = None;
    loop {
        let n = ch.number("SELECT count() FROM wraith.events");
        if n > 0 && first.is_none() {
            first = Some((Instant::now(), n));
        }
        if n >= rows {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the loader did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let loader_rows = rows as f64 / started.elapsed().as_secs_f64();
    let (t_first, n_first) = first.expect("rows arrived");
    let steady_rows = (rows - n_first) as f64 / t_first.elapsed().as_secs_f64();
    let startup = t_first.duration_since(started);
    let _ = loader.kill();
    let _ = loader.wait();
    let raw_after = raw_insert("wraith_raw_after");
    let raw_rows = (raw_before + raw_after) / 2.0;
    println!(
        "{:<48} {raw_rows:>10.0} rows/s   (before the loader {raw_before:.0}, after it {raw_after:.0})",
        "raw clickhouse insert (10,000-row inserts)"
    );
    println!(
        "{:<48} {loader_rows:>10.0} rows/s   {:.2}x raw (includes start-up and schema check)",
        "gateway load: JetStream → ClickHouse",
        loader_rows / raw_rows
    );
    println!(
        "{:<48} {steady_rows:>10.0} rows/s   {:.2}x raw (after the first {n_first} rows, {:.0} ms from start)",
        "  the same drain, start-up taken out",
        steady_rows / raw_rows,
        startup.as_secs_f64() * 1000.0
    );
    steady_rows / raw_rows
}
