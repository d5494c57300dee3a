//! What `wraith_sdk::track` costs the tool, against an empty function call
//! in the same run, and what `init` adds to a tool's start-up.
//!
//! `cargo bench -p wraith-sdk --bench track`
//!
//! - disabled: `track` before `init` (the same path as opted out);
//! - enabled: `track` to a Unix socket served by a reader thread in this
//!   process (the SDK's own cost; the daemon's work happens in another
//!   process), timed in rounds of 1000 below the queue's capacity, each
//!   round flushed untimed, so no event is dropped;
//! - start-up: this binary re-run as a child that exits at once, that calls
//!   `init` opted out, and that calls `init` + one `track` with the socket up.

use std::hint::black_box;
use std::io::Read;
use std::os::unix::net::UnixListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wraith_sdk::Event;

#[inline(never)]
fn empty(e: Event<'_>) {
    black_box(&e);
}

fn event() -> Event<'static> {
    Event::new(black_box("tool_invoked")).command(black_box("scan"))
}

fn per_op(n: u64, f: impl Fn()) -> f64 {
    // Warm up, then the best of five runs.
    for _ in 0..n / 10 {
        f();
    }
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn child(mode: &str) {
    match mode {
        "exit" => {}
        "init" | "init-disabled" => {
            let _t = wraith_sdk::init("bench", "1.0.0");
            wraith_sdk::track(Event::new("tool_invoked").command("start"));
        }
        _ => unreachable!(),
    }
}

fn startup(dir: &std::path::Path, socket: &std::path::Path, mode: &str, runs: u32) -> f64 {
    let exe = std::env::current_exe().unwrap();
    let mut best = Vec::new();
    for _ in 0..runs {
        let mut c = Command::new(&exe);
        c.arg("--child")
            .arg(mode)
            .env("HOME", dir)
            .env("WRAITH_SOCKET", socket)
            .env("WRAITH_DAEMON", "/nonexistent")
            .env_remove("WRAITH_TELEMETRY")
            .env_remove("DO_NOT_TRACK");
        if mode == "init-disabled" {
            c.env("DO_NOT_TRACK", "1");
        }
        let t = Instant::now();
        let s = c.status().unwrap();
        assert!(s.success());
        best.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    best.sort_by(f64::total_cmp);
    best[best.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1]);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: no other thread exists yet; HOME points the installation id
    // into the temporary folder instead of the user's.
    unsafe { std::env::set_var("HOME", dir.path()) };
    let socket = dir.path().join("bench.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let received = Arc::new(AtomicU64::new(0));
    {
        let received = Arc::clone(&received);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let mut conn = conn.unwrap();
                let received = Arc::clone(&received);
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 1 << 16];
                    while let Ok(n) = conn.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let lines = buf[..n].iter().filter(|b| **b == b'\n').count();
                        received.fetch_add(lines as u64, Ordering::Relaxed);
                    }
                });
            }
        });
    }

    let baseline = per_op(10_000_000, || empty(event()));
    let disabled = per_op(10_000_000, || wraith_sdk::track(event()));

    let guard = wraith_sdk::Options::new("bench", "1.0.0")
        .socket(&socket)
        .mode(wraith_sdk::Mode::Daemon)
        .init();
    assert!(wraith_sdk::enabled());
    let rounds = 200u64;
    let per_round = 1000u64;
    let mut total = Duration::ZERO;
    let mut best_round = f64::INFINITY;
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..per_round {
            wraith_sdk::track(event());
        }
        let e = t.elapsed();
        total += e;
        best_round = best_round.min(e.as_nanos() as f64 / per_round as f64);
        guard.flush(Duration::from_secs(5));
    }
    let enabled = total.as_nanos() as f64 / (rounds * per_round) as f64;
    let tracked = rounds * per_round;
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.load(Ordering::Relaxed) < tracked && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let got = received.load(Ordering::Relaxed);

    let runs = 30;
    let start_exit = startup(dir.path(), &socket, "exit", runs);
    let start_off = startup(dir.path(), &socket, "init-disabled", runs);
    let start_on = startup(dir.path(), &socket, "init", runs);

    println!(
        "wraith-sdk track, per event (best of 5 runs; enabled: mean of {rounds} rounds of {per_round})"
    );
    println!("  empty function call (baseline) {baseline:>10.1} ns");
    println!(
        "  track, disabled                {disabled:>10.1} ns   {:.2}x the baseline",
        disabled / baseline
    );
    println!(
        "  track, enabled (to the socket) {enabled:>10.1} ns   {:.1}x the baseline (best round {best_round:.1} ns)",
        enabled / baseline
    );
    println!(
        "  delivered {got} of {tracked} events, {} dropped",
        wraith_sdk::dropped()
    );
    println!(
        "  vs the 0.57 ms per execution of seed 004's SQLite backend: {:.0}x cheaper",
        570_000.0 / enabled
    );
    println!("tool start-up, median of {runs} runs of a process");
    println!("  exits at once (baseline)       {start_exit:>10.2} ms");
    println!(
        "  init, opted out                {start_off:>10.2} ms   +{:.2} ms",
        start_off - start_exit
    );
    println!(
        "  init + one track, socket up    {start_on:>10.2} ms   +{:.2} ms",
        start_on - start_exit
    );
    drop(guard);
}
