//! End to end: events/s through HTTP → chain → file sink (with fsync) from a
//! loopback load generator, for an empty chain (the baseline) and for a chain
//! with the `scrub-email` fixture, in the same run.
//!
//! `cargo xtask bench` builds the fixtures first. Settings by environment:
//! `WRAITH_BENCH_SECS` (default 5), `WRAITH_BENCH_CLIENTS` (default 8),
//! `WRAITH_BENCH_BATCH` (events per request, default 100), and
//! `WRAITH_BENCH_COMPARE=/path/to/gateway` to run every chain on another
//! build of the gateway too (e.g. the previous commit's), taking turns, and
//! print its ratio to this build.

use serde_json::{Value, json};
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

fn run(label: &str, gateway: &Path, plugins: &[&str], secs: u64, clients: u64, batch: u64) -> f64 {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("plugins");
    std::fs::create_dir(&dir).unwrap();
    for p in plugins {
        let src = target.join(format!("fixtures/{p}.wasm"));
        assert!(
            src.is_file(),
            "{} is missing: run `cargo xtask bench`",
            src.display()
        );
        std::fs::copy(&src, dir.join(format!("{p}.wasm"))).unwrap();
    }
    let mut child = Command::new(gateway)
        .args([
            "--plugins",
            dir.to_str().unwrap(),
            "--data-dir",
            root.path().join("data").to_str().unwrap(),
        ])
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = format!(
        "{}/v1/events",
        line.trim()
            .strip_prefix("wraith gateway listening on ")
            .unwrap()
    );
    let body: Vec<Value> = (0..batch)
        .map(|n| json!({"event_type": "tool_invoked", "tool": "migrateiq", "command": "scan", "level": "info",
                        "duration_ms": 840, "message": if n.is_multiple_of(4) { "mail ada@example.com" } else { "ok" },
                        "context": {"installation_id": "9f1c2d3e", "tool_version": "1.4.2", "os": "linux"}}))
        .collect();
    let body = Arc::new(serde_json::to_vec(&body).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (url, body, stop, sent) = (url.clone(), body.clone(), stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    let r = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.as_ref().clone())
                        .send()
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    sent.fetch_add(batch, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let rate = sent.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let peak = peak_rss_mib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    println!("{label:<40} {rate:>12.0} events/s   peak RSS {peak}");
    rate
}

/// The process's peak resident memory (Linux `VmHWM`), for the report.
fn peak_rss_mib(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.0} MiB", kib / 1024.0))
        })
        .unwrap_or_else(|| "n/a".into())
}

fn main() {
    let secs = env_or("WRAITH_BENCH_SECS", 5);
    let clients = env_or("WRAITH_BENCH_CLIENTS", 8);
    let batch = env_or("WRAITH_BENCH_BATCH", 100);
    println!(
        "end-to-end benchmark: {clients} clients, {batch} events per request, {secs} s each, fsync on"
    );
    let this = Path::new(env!("CARGO_BIN_EXE_gateway"));
    let other = std::env::var_os("WRAITH_BENCH_COMPARE").map(std::path::PathBuf::from);
    if let Some(other) = &other {
        assert!(
            other.is_file(),
            "WRAITH_BENCH_COMPARE={} is not a file",
            other.display()
        );
        println!("comparing with {}", other.display());
    }
    let mut rates = Vec::new();
    for (label, plugins) in [
        ("empty chain", &[][..]),
        ("scrub-email chain", &["scrub-email"][..]),
    ] {
        let mine = run(label, this, plugins, secs, clients, batch);
        if let Some(other) = &other {
            let theirs = run(
                &format!("{label}, other build"),
                other,
                plugins,
                secs,
                clients,
                batch,
            );
            println!(
                "  this build: {:.2}x the other on the {label}",
                mine / theirs
            );
        }
        rates.push(mine);
    }
    println!(
        "throughput with the plugin: {:.2}x the empty chain",
        rates[1] / rates[0]
    );
}
