//! The production path against real servers: gateway → NATS JetStream →
//! loader → ClickHouse. Every test counts what it sent against what
//! ClickHouse holds, with `event_id`s chosen by the test so that "exactly
//! once" is checked id by id.

use crate::servers::{ClickHouse, Nats};
use crate::support::{Gateway, Options};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `gateway load` process.
pub struct Loader {
    child: Child,
    pub metrics_url: String,
    log: std::path::PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Loader {
    pub fn start(dir: &Path, nats: &str, clickhouse: &str) -> Loader {
        Self::start_env(dir, nats, clickhouse, &[])
    }

    pub fn start_env(dir: &Path, nats: &str, clickhouse: &str, env: &[(&str, &str)]) -> Loader {
        let config = dir.join("loader.toml");
        if !config.exists() {
            std::fs::write(
                &config,
                "[loader]\nflush_interval = \"200ms\"\nbatch_size = 2000\nack_wait = \"3s\"\n",
            )
            .unwrap();
        }
        let args = vec![
            "load".to_string(),
            "--nats".into(),
            nats.into(),
            "--clickhouse".into(),
            clickhouse.into(),
            "--metrics-listen".into(),
            "127.0.0.1:0".into(),
            "--config".into(),
            config.display().to_string(),
        ];
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let log = dir.join(format!(
            "loader-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let (child, metrics_url) = spawn_loader(&args, &env, &log);
        Loader {
            child,
            metrics_url,
            log,
            args,
            env,
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn restart(&mut self, env: &[(&str, &str)]) {
        self.kill();
        self.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (child, url) = spawn_loader(&self.args, &self.env, &self.log);
        self.child = child;
        self.metrics_url = url;
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn metrics(&self) -> String {
        reqwest::blocking::get(&self.metrics_url)
            .and_then(|r| r.text())
            .unwrap_or_default()
    }

    /// Wait for the process to exit by itself; its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn_loader(args: &[String], env: &[(String, String)], log: &Path) -> (Child, String) {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("RUST_LOG", "info,wraith_gateway::loader=debug")
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .expect("start gateway load");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("wraith loader metrics on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(url) => (child, url),
        Err(_) => {
            let _ = child.kill();
            panic!(
                "loader did not start; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }
}

/// A gateway with an empty chain publishing to NATS, once it is ready.
fn gateway_on(nats: &str) -> Gateway {
    let g = Gateway::start_with(Options {
        args: vec!["--nats".into(), nats.into()],
        ..Default::default()
    });
    wait_ready(&g);
    g
}

/// Until `/ready` says the gateway can take data (its stream checked).
fn wait_ready(g: &Gateway) {
    g.wait_for("the gateway to be ready", Duration::from_secs(60), |g| {
        g.http
            .get(format!("{}/ready", g.url))
            .send()
            .is_ok_and(|r| r.status().is_success())
    });
}

/// `n` events with ids chosen here, numbered from `from`.
pub fn events(from: usize, n: usize) -> Vec<Value> {
    (from..from + n)
        .map(|i| {
            json!({
                "event_id": uuid::Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0000 | i as u128).to_string(),
                "event_type": if i.is_multiple_of(10) { "tool_failed" } else { "tool_succeeded" },
                "tool": format!("tool-{}", i % 3),
                "command": "scan",
                "level": if i.is_multiple_of(10) { "error" } else { "info" },
                "duration_ms": (i % 100) as u64 * 10,
                "error_type": if i.is_multiple_of(10) { "Timeout" } else { "" },
                "context": {"os": "linux", "tool_version": "1.2.3", "installation_id": "inst-1"},
                "n": i,
            })
        })
        .collect()
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect()
}

/// POST a batch; whether the gateway acknowledged it (2xx).
fn post(g: &Gateway, batch: &[Value]) -> Result<(), u16> {
    let r = g
        .http
        .post(format!("{}/v1/events", g.url))
        .timeout(Duration::from_secs(15))
        .json(&batch)
        .send();
    match r {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(r.status().as_u16()),
        Err(_) => Err(0),
    }
}

/// [`assert_exactly_once`], printing the end of each loader's and each NATS
/// node's log when it fails (what they did is the first thing to read then).
pub fn assert_exactly_once_showing(
    ch: &ClickHouse,
    expected: &HashSet<String>,
    what: &str,
    loaders: &[Loader],
    nats: &[Nats],
) {
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_exactly_once(ch, expected, what)
    }));
    if let Err(panic) = checked {
        for (i, l) in loaders.iter().enumerate() {
            let log = l.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(400)..].join("\n");
            eprintln!("--- loader {i}, the end of its log:\n{tail}");
        }
        for (i, n) in nats.iter().enumerate() {
            let log = n.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(60)..].join("\n");
            eprintln!("--- nats-server n{}, the end of its log:\n{tail}", i + 1);
        }
        std::panic::resume_unwind(panic);
    }
}

/// Wait (up to a minute) until ClickHouse holds at least `n` rows in
/// `wraith.events`; the loader's log if it does not.
fn wait_for_rows(ch: &ClickHouse, n: u64, loader: &Loader) {
    let start = Instant::now();
    while ch.number("SELECT count() FROM wraith.events") < n {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{}",
            loader.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Wait until ClickHouse holds `n` rows in `wraith.events`, then check that
/// they are exactly `expected` (each once, none twice, none other).
pub fn assert_exactly_once(ch: &ClickHouse, expected: &HashSet<String>, what: &str) {
    let n = expected.len() as u64;
    let start = Instant::now();
    let mut seen = 0;
    while start.elapsed() < Duration::from_secs(90) {
        seen = ch.number("SELECT count() FROM wraith.events");
        if seen >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Rows that arrive late would be duplicates: give them a moment.
    std::thread::sleep(Duration::from_millis(1500));
    let rows = ch.number("SELECT count() FROM wraith.events");
    let distinct = ch.number("SELECT uniqExact(event_id) FROM wraith.events");
    let got: HashSet<String> = ch
        .query("SELECT toString(event_id) FROM wraith.events")
        .lines()
        .map(str::to_string)
        .collect();
    let missing: Vec<_> = expected.difference(&got).take(5).collect();
    assert!(
        missing.is_empty(),
        "{what}: {} acknowledged events missing from ClickHouse (e.g. {missing:?}); {seen} rows after waiting",
        expected.difference(&got).count()
    );
    assert_eq!(rows, distinct, "{what}: an event was inserted twice");
    let aggregated = ch.number("SELECT countMerge(events) FROM wraith.events_per_minute");
    assert_eq!(
        aggregated, rows,
        "{what}: the per-minute aggregate counts each event once"
    );
}

#[test]
fn ten_thousand_events_reach_clickhouse_exactly_once() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let g = gateway_on(&nats.url());
    let loader = Loader::start(g.root.path(), &nats.url(), &ch.url());
    let all = events(0, 10_000);
    for batch in all.chunks(100) {
        post(&g, batch).expect("every batch is acknowledged");
    }
    let expected: HashSet<String> = ids(&all).into_iter().collect();
    assert_exactly_once(&ch, &expected, "10,000 events");
    // The typed columns carry the well-known fields.
    let row = ch.query(&format!(
        "SELECT tool, command, event_type, level, duration_ms, error_type, failed, os, tool_version, installation_id, route FROM wraith.events WHERE event_id = '{}'",
        all[10]["event_id"].as_str().unwrap()
    ));
    assert_eq!(
        row.trim(),
        "tool-1\tscan\ttool_failed\terror\t100\tTimeout\t1\tlinux\t1.2.3\tinst-1\tevents"
    );
    // The per-minute aggregate: count and failures agree with the events.
    let failures = ch.number("SELECT sumMerge(failures) FROM wraith.events_per_minute");
    assert_eq!(failures, 1000, "one in ten events failed");
    let m = loader.metrics();
    assert!(
        m.lines()
            .any(|l| l == "wraith_loader_rows_inserted_total 10000"),
        "{m}"
    );
    // The gateway wrote no events to its data folder: they went to NATS.
    assert!(g.lines("events").is_empty());
    let ready = g.get_json("/ready");
    assert_eq!(ready["sinks"]["nats"]["state"], "ready", "{ready}");
}

#[test]
fn a_loader_killed_between_insert_and_ack_counts_nothing_twice() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let g = gateway_on(&nats.url());
    // This loader inserts its first batch, then dies before acknowledging it.
    let mut loader = Loader::start_env(
        g.root.path(),
        &nats.url(),
        &ch.url(),
        &[("WRAITH_LOADER_CRASH_AFTER_INSERT", "1")],
    );
    let all = events(0, 3000);
    for batch in all.chunks(100) {
        post(&g, batch).unwrap();
    }
    let status = loader
        .wait_exit(Duration::from_secs(60))
        .expect("the loader crashes after its first insert");
    assert!(!status.success());
    let inserted = ch.number("SELECT count() FROM wraith.events");
    assert!(
        inserted > 0,
        "the first batch was inserted before the crash"
    );
    // A healthy loader takes over: JetStream redelivers the unacknowledged
    // batch, and the loader finds those events already loaded.
    loader.restart(&[]);
    let expected: HashSet<String> = ids(&all).into_iter().collect();
    assert_exactly_once(&ch, &expected, "after a crash between insert and ack");
    // The crashed batch comes back once its ack wait (3 s) has passed.
    let skipped = || -> u64 {
        loader
            .metrics()
            .lines()
            .find_map(|l| l.strip_prefix("wraith_loader_duplicates_skipped_total "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let start = Instant::now();
    while skipped() < inserted && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        skipped(),
        inserted,
        "every event of the crashed batch was redelivered and skipped\n{}",
        loader.metrics()
    );
    assert_exactly_once(&ch, &expected, "after the crashed batch was redelivered");
}

#[test]
fn the_loader_killed_with_sigkill_mid_stream_loses_nothing() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let g = gateway_on(&nats.url());
    let mut loader = Loader::start(g.root.path(), &nats.url(), &ch.url());
    let all = events(0, 6000);
    for (i, batch) in all.chunks(100).enumerate() {
        post(&g, batch).unwrap();
        if i == 30 {
            loader.kill();
            loader.restart(&[]);
        }
    }
    let expected: HashSet<String> = ids(&all).into_iter().collect();
    assert_exactly_once(&ch, &expected, "loader SIGKILL");
}

#[test]
fn nats_going_away_gives_503s_and_loses_nothing_acknowledged() {
    let mut nats = Nats::start();
    let ch = ClickHouse::start();
    let g = gateway_on(&nats.url());
    let _loader = Loader::start(g.root.path(), &nats.url(), &ch.url());
    let mut acked = HashSet::new();
    let all = events(0, 2000);
    let mut refused = Vec::new();
    for (i, batch) in all.chunks(100).enumerate() {
        if i == 5 {
            nats.stop();
        }
        if i == 12 {
            nats.restart();
        }
        if i >= 12 {
            // The client retries until the gateway is back on NATS.
            let start = Instant::now();
            loop {
                match post(&g, batch) {
                    Ok(()) => break,
                    Err(s) => {
                        refused.push(s);
                        assert!(
                            start.elapsed() < Duration::from_secs(30),
                            "NATS came back but the gateway still refuses: {s}\n{}",
                            g.log()
                        );
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
            acked.extend(ids(batch));
            continue;
        }
        match post(&g, batch) {
            Ok(()) => acked.extend(ids(batch)),
            Err(s) => {
                assert_eq!(s, 503, "a sink that is away is a 503");
                refused.push(s);
                if i > 5 && i < 12 {
                    let r = g.http.get(format!("{}/ready", g.url)).send().unwrap();
                    assert_eq!(r.status(), 503, "/ready says the gateway cannot take data");
                    let h = g.http.get(format!("{}/health", g.url)).send().unwrap();
                    assert_eq!(h.status(), 200, "/health says it is alive");
                }
            }
        }
    }
    assert!(
        refused.iter().filter(|s| **s == 503).count() >= 5,
        "requests while NATS was away got 503: {refused:?}"
    );
    assert_exactly_once(&ch, &acked, "NATS stopped and restarted");
    g.assert_metrics(&["wraith_sink_up{sink=\"nats\"} 1"]);
    let m = g.get_text("/metrics");
    assert!(
        m.contains("wraith_batches_refused_total{reason=\"sink_unavailable\"}"),
        "{m}"
    );
}

#[test]
fn clickhouse_going_away_makes_the_loader_wait_and_catch_up() {
    let nats = Nats::start();
    let mut ch = ClickHouse::start();
    let g = gateway_on(&nats.url());
    let loader = Loader::start(g.root.path(), &nats.url(), &ch.url());
    let first = events(0, 500);
    post(&g, &first).unwrap();
    wait_for_rows(&ch, 500, &loader);
    ch.stop();
    let second = events(500, 1500);
    for batch in second.chunks(100) {
        post(&g, batch).expect("NATS still takes events while ClickHouse is away");
    }
    std::thread::sleep(Duration::from_secs(2));
    ch.restart();
    let expected: HashSet<String> = ids(&first).into_iter().chain(ids(&second)).collect();
    assert_exactly_once_showing(
        &ch,
        &expected,
        "ClickHouse stopped and restarted",
        std::slice::from_ref(&loader),
        std::slice::from_ref(&nats),
    );
    assert!(
        loader.log().contains("keeping the batch and retrying"),
        "{}",
        loader.log()
    );
}

#[test]
fn a_poison_message_ends_in_the_dead_letter_table() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let g = gateway_on(&nats.url());
    let loader = Loader::start(g.root.path(), &nats.url(), &ch.url());
    let good = events(0, 100);
    post(&g, &good).unwrap();
    // Someone else publishes garbage to the stream's subject.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = async_nats::connect(nats.url()).await.unwrap();
        let js = async_nats::jetstream::new(c);
        js.publish("telemetry.events", "this is not json".into())
            .await
            .unwrap()
            .await
            .unwrap();
        js.publish(
            "telemetry.events",
            r#"{"event_type":"x","event_id":"not-a-uuid"}"#.into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    });
    let more = events(100, 100);
    post(&g, &more).unwrap();
    let start = Instant::now();
    while ch.number("SELECT count() FROM wraith.dead_letters") < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no dead letters; loader log:\n{}",
            loader.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let rows = ch.query(
        "SELECT source, deliveries, error, payload FROM wraith.dead_letters ORDER BY stream_sequence",
    );
    let lines: Vec<&str> = rows.lines().collect();
    assert_eq!(lines.len(), 2, "{rows}");
    assert!(
        lines[0].starts_with("loader\t5\tpayload is not JSON"),
        "{rows}"
    );
    assert!(lines[0].ends_with("this is not json"), "{rows}");
    assert!(lines[1].contains("is not a UUID"), "{rows}");
    let expected: HashSet<String> = ids(&good).into_iter().chain(ids(&more)).collect();
    assert_exactly_once(&ch, &expected, "good events around poison");
    assert!(
        loader
            .metrics()
            .lines()
            .any(|l| l == "wraith_loader_dead_letters_total 2")
    );
}

/// The statements of `examples/queries.sql`, comments removed.
fn example_queries() -> Vec<String> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/queries.sql"),
    )
    .unwrap();
    text.split(";\n")
        .map(|s| {
            s.lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|s| !s.trim().is_empty())
        .collect()
}

/// The quantile ClickHouse's `quantiles` computes on fewer values than its
/// reservoir holds: linear interpolation between the sorted neighbours.
fn interpolated_quantile(sorted: &[f64], level: f64) -> f64 {
    let pos = level * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[test]
fn the_example_queries_answer_what_was_sent() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let g = gateway_on(&nats.url());
    let _loader = Loader::start(g.root.path(), &nats.url(), &ch.url());
    // Every event in one minute ten minutes ago, so the per-minute rows are known.
    let minute = (time::OffsetDateTime::now_utc().unix_timestamp() / 60 - 10) * 60;
    let mut all = events(0, 1000);
    for (i, e) in all.iter_mut().enumerate() {
        e["timestamp"] = json!(minute * 1000 + i as i64 * 7);
    }
    for batch in all.chunks(200) {
        post(&g, batch).unwrap();
    }
    let expected: HashSet<String> = ids(&all).into_iter().collect();
    assert_exactly_once(&ch, &expected, "example queries");
    let q = example_queries();
    assert_eq!(q.len(), 4, "the four analyst queries");

    assert_eq!(ch.query(&q[0]), "tool_succeeded\t900\ntool_failed\t100\n");

    let mut want = String::new();
    for t in 0..3 {
        let of_tool: Vec<&Value> = all
            .iter()
            .filter(|e| e["tool"] == format!("tool-{t}"))
            .collect();
        let failed = of_tool
            .iter()
            .filter(|e| e["event_type"] == "tool_failed")
            .count();
        let ok = of_tool.len() - failed;
        let rate = (failed as f64 / of_tool.len() as f64 * 100.0 * 100.0).round() / 100.0;
        want.push_str(&format!("tool-{t}\t{ok}\t{failed}\t{rate}\n"));
    }
    assert_eq!(ch.query(&q[1]), want);

    assert_eq!(ch.query(&q[2]), "Timeout\t100\n");

    let rows = ch.query(&q[3]);
    let mut groups = 0;
    for line in rows.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        let (tool, event_type) = (cols[1], cols[3]);
        let mut durations: Vec<f64> = all
            .iter()
            .filter(|e| e["tool"] == tool && e["event_type"] == event_type)
            .map(|e| e["duration_ms"].as_f64().unwrap())
            .collect();
        durations.sort_by(f64::total_cmp);
        assert_eq!(cols[4], durations.len().to_string(), "events in {line}");
        let failures = if event_type == "tool_failed" {
            durations.len()
        } else {
            0
        };
        assert_eq!(cols[5], failures.to_string(), "failures in {line}");
        let got: Vec<f64> = cols[6]
            .trim_matches(['[', ']'])
            .split(',')
            .map(|v| v.parse().unwrap())
            .collect();
        for (level, got) in [0.5, 0.95, 0.99].into_iter().zip(got) {
            let want = interpolated_quantile(&durations, level);
            assert!(
                (got - want).abs() <= 1.0,
                "P{} of {tool}/{event_type}: {got}, sent {want}",
                level * 100.0
            );
        }
        assert_eq!(
            cols[0],
            time::OffsetDateTime::from_unix_timestamp(minute)
                .unwrap()
                .format(time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second]"
                ))
                .unwrap()
        );
        groups += 1;
    }
    assert_eq!(
        groups, 6,
        "three tools × two event types in one minute:\n{rows}"
    );
}

#[test]
fn the_schema_and_queries_run_on_current_clickhouse() {
    let python = std::env::var_os("WRAITH_CHDB_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "python3".into());
    let has_chdb = Command::new(&python)
        .args(["-c", "import chdb"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        has_chdb,
        "chDB is not installed for {}: `pip install chdb-core` (`cargo xtask test` installs it and sets WRAITH_CHDB_PYTHON)",
        python.display()
    );
    let schema = crate::support::gateway_command()
        .args(["load", "--print-schema"])
        .output()
        .unwrap();
    assert!(schema.status.success());
    let ddl: Vec<String> = String::from_utf8(schema.stdout)
        .unwrap()
        .split(";\n")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    assert!(ddl.len() >= 5, "{ddl:?}");
    let insert = "INSERT INTO wraith.events (event_id, timestamp, timestamp_ms, received_at, level, event_type, tool, command, duration_ms, has_duration, error_type, failed, route, event) VALUES \
        ('0193a7c2-0000-7000-8000-000000000001', now(), 1, now(), 'info', 'tool_succeeded', 'a', 'scan', 100, 1, '', 0, 'events', '{}'), \
        ('0193a7c2-0000-7000-8000-000000000002', now(), 2, now(), 'error', 'tool_failed', 'a', 'scan', 300, 1, 'Timeout', 1, 'events', '{}'), \
        ('0193a7c2-0000-7000-8000-000000000002', now(), 2, now(), 'error', 'tool_failed', 'a', 'scan', 300, 1, 'Timeout', 1, 'events', '{}')";
    let mut statements = ddl.clone();
    // Twice: the migrations are idempotent on current ClickHouse too.
    statements.extend(ddl);
    statements.push(insert.to_string());
    statements.extend(example_queries());
    let script = r#"
import json, sys
from chdb import session
s = session.Session()
out = []
for stmt in json.load(sys.stdin):
    try:
        out.append(str(s.query(stmt, "TSV")))
    except Exception as e:
        print("FAILED:", stmt, "\n", e, file=sys.stderr)
        sys.exit(1)
print(json.dumps(out))
"#;
    let mut child = Command::new(&python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        serde_json::to_string(&statements).unwrap().as_bytes(),
    )
    .unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "a statement failed on current ClickHouse:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    let n = answers.len();
    // The duplicate row counts once with FINAL.
    assert_eq!(answers[n - 4], "tool_failed\t1\ntool_succeeded\t1\n");
    assert_eq!(answers[n - 3], "a\t1\t1\t50\n");
    assert_eq!(answers[n - 2], "Timeout\t1\n");
    assert!(
        answers[n - 1].contains("\ta\tscan\ttool_failed\t2\t2\t"),
        "{}",
        answers[n - 1]
    );
}

/// Post every batch, retrying a refused one (on the next gateway) until it is
/// acknowledged; `between` runs before each batch with its number.
fn post_all_retrying(
    gateways: &mut [Gateway],
    all: &[Value],
    mut between: impl FnMut(usize, &mut [Gateway]),
) -> HashSet<String> {
    let mut acked = HashSet::new();
    for (i, batch) in all.chunks(100).enumerate() {
        between(i, gateways);
        let start = Instant::now();
        let mut k = i;
        loop {
            let g = &gateways[k % gateways.len()];
            match post(g, batch) {
                Ok(()) => break,
                Err(s) => {
                    assert!(
                        start.elapsed() < Duration::from_secs(60),
                        "batch {i} refused for a minute (last status {s}); log:\n{}",
                        g.log()
                    );
                    k += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        acked.extend(ids(batch));
    }
    acked
}

#[test]
fn the_gateway_killed_with_sigkill_mid_stream_loses_nothing_acknowledged() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let mut gateways = vec![gateway_on(&nats.url())];
    let _loader = Loader::start(gateways[0].root.path(), &nats.url(), &ch.url());
    let all = events(0, 4000);
    // A client thread keeps posting while the gateway is killed under it.
    let url = gateways[0].url.clone();
    let acked = post_all_retrying(&mut gateways, &all, |i, gs| {
        if i == 15 || i == 30 {
            gs[0].kill_and_restart();
        }
        let _ = &url;
    });
    assert_exactly_once(&ch, &acked, "gateway SIGKILL");
}

#[test]
fn a_nats_cluster_two_gateways_and_two_loaders_store_each_event_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cluster = Nats::cluster(tmp.path());
    let urls = cluster.iter().map(Nats::url).collect::<Vec<_>>().join(",");
    let ch = ClickHouse::start();
    let gateway = || {
        Gateway::start_with(Options {
            args: vec!["--nats".into(), urls.clone()],
            extra_config: "[sinks.nats]\nreplicas = 3\n".into(),
            ..Default::default()
        })
    };
    let mut gateways = vec![gateway(), gateway()];
    for g in &gateways {
        wait_ready(g);
    }
    std::fs::write(
        tmp.path().join("loader.toml"),
        "[sinks.nats]\nreplicas = 3\n[loader]\nflush_interval = \"200ms\"\nbatch_size = 1000\nack_wait = \"3s\"\n",
    )
    .unwrap();
    // Wait until the replicated stream exists before the loaders join.
    gateways[0].wait_for("the stream on the cluster", Duration::from_secs(60), |g| {
        g.get_json("/ready")["sinks"]["nats"]["state"] == "ready"
    });
    let mut loaders = vec![
        Loader::start(tmp.path(), &urls, &ch.url()),
        Loader::start(tmp.path(), &urls, &ch.url()),
    ];
    let all = events(0, 6000);
    let acked = post_all_retrying(&mut gateways, &all, |i, _| {
        if i == 15 {
            cluster[1].kill();
        }
        if i == 30 {
            loaders[0].kill();
        }
        if i == 45 {
            cluster[1].restart_no_wait();
        }
    });
    assert_exactly_once_showing(
        &ch,
        &acked,
        "3-node cluster, a node and a loader killed",
        &loaders,
        &cluster,
    );
    drop(loaders);
}

#[test]
fn dead_letters_stay_local_unless_publishing_them_is_asked_for() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let start = |publish: bool| {
        let g = Gateway::start_with(Options {
            plugins: vec![("verdicts", "verdicts")],
            args: vec!["--nats".into(), nats.url()],
            extra_config: if publish {
                "[sinks.nats]\ndead_letters = true\n".into()
            } else {
                String::new()
            },
            ..Default::default()
        });
        wait_ready(&g);
        g
    };
    let quiet = start(false);
    let loud = start(true);
    let _loader = Loader::start(quiet.root.path(), &nats.url(), &ch.url());
    let mut batch = events(0, 10);
    batch[3]["reject_reason"] = json!("secret sauce");
    post(&quiet, &batch).unwrap();
    let mut batch = events(10, 10);
    batch[4]["reject_reason"] = json!("bad shape");
    post(&loud, &batch).unwrap();
    // Both keep their dead letter in the owner-only local file.
    for (g, reason) in [(&quiet, "secret sauce"), (&loud, "bad shape")] {
        let dlq = g.lines("dlq");
        assert_eq!(dlq.len(), 1);
        assert_eq!(dlq[0]["dlq"]["reason"], reason);
    }
    let kept: HashSet<String> = ids(&events(0, 20))
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 14)
        .map(|(_, id)| id)
        .collect();
    assert_exactly_once(&ch, &kept, "kept events");
    // Only the gateway that was asked to publishes its dead letter.
    let start = Instant::now();
    while ch.number("SELECT count() FROM wraith.dead_letters") < 1 {
        assert!(start.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let rows = ch.query("SELECT source, subject, error FROM wraith.dead_letters");
    assert_eq!(
        rows, "gateway\ttelemetry.dlq\trejected by verdicts: bad shape\n",
        "one dead letter, from the gateway that publishes them"
    );
}

#[test]
fn sigterm_makes_the_loader_finish_its_batch_and_exit() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let g = gateway_on(&nats.url());
    let mut loader = Loader::start(g.root.path(), &nats.url(), &ch.url());
    let all = events(0, 3000);
    for (i, batch) in all.chunks(100).enumerate() {
        post(&g, batch).unwrap();
        if i == 10 {
            Command::new("kill")
                .args(["-TERM", &loader.child.id().to_string()])
                .status()
                .unwrap();
        }
    }
    let status = loader
        .wait_exit(Duration::from_secs(30))
        .expect("the loader exits after SIGTERM");
    assert!(status.success(), "{status}\n{}", loader.log());
    assert!(loader.log().contains("loader stopped"), "{}", loader.log());
    let loaded = ch.number("SELECT count() FROM wraith.events");
    // What it had in hand was acknowledged: a new loader adds only the rest,
    // and nothing is redelivered.
    loader.restart(&[]);
    let expected: HashSet<String> = ids(&all).into_iter().collect();
    assert_exactly_once(&ch, &expected, "after SIGTERM");
    let m = loader.metrics();
    assert!(
        m.lines().any(|l| l == "wraith_loader_redeliveries_total 0"),
        "a batch was left unacknowledged ({loaded} rows before the restart)\n{m}"
    );
}

/// A loopback TCP proxy in front of ClickHouse that, once armed, lets the
/// next `INSERT` through and then drops the connection instead of passing
/// ClickHouse's answer back: the rows are stored, the loader sees a failure.
struct AnswerLosingProxy {
    pub url: String,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    dropped: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl AnswerLosingProxy {
    fn start(upstream_port: u16) -> Self {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let armed = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicUsize::new(0));
        let (a, d) = (armed.clone(), dropped.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    continue;
                };
                let insert_sent = Arc::new(AtomicBool::new(false));
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (armed, flag) = (a.clone(), insert_sent.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = c_read.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let chunk = &buf[..n];
                        if armed.load(Ordering::SeqCst)
                            && chunk.windows(6).any(|w| w == b"INSERT")
                            && armed.swap(false, Ordering::SeqCst)
                        {
                            flag.store(true, Ordering::SeqCst);
                        }
                        if s_write.write_all(chunk).is_err() {
                            break;
                        }
                    }
                    let _ = s_write.shutdown(Shutdown::Write);
                });
                let (mut s_read, mut c_write) = (server, client);
                let dropped = d.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = s_read.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        if insert_sent.load(Ordering::SeqCst) {
                            // ClickHouse answered the insert: it is stored.
                            // The loader never hears so.
                            dropped.fetch_add(1, Ordering::SeqCst);
                            let _ = c_write.shutdown(Shutdown::Both);
                            let _ = s_read.shutdown(Shutdown::Both);
                            return;
                        }
                        if c_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c_write.shutdown(Shutdown::Both);
                });
            }
        });
        Self {
            url,
            armed,
            dropped,
        }
    }

    fn arm(&self) {
        self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn dropped(&self) -> usize {
        self.dropped.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn an_insert_whose_answer_is_lost_is_not_stored_twice() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let proxy = AnswerLosingProxy::start(ch.http_port);
    let g = gateway_on(&nats.url());
    let loader = Loader::start(g.root.path(), &nats.url(), &proxy.url);
    // The first batch, through a proxy that passes everything: the loader
    // has migrated and is loading.
    let first = events(0, 100);
    post(&g, &first).unwrap();
    wait_for_rows(&ch, 100, &loader);
    // The next insert is stored, and its answer lost.
    proxy.arm();
    let second = events(100, 1100);
    for batch in second.chunks(100) {
        post(&g, batch).unwrap();
    }
    let expected: HashSet<String> = ids(&first).into_iter().chain(ids(&second)).collect();
    assert_exactly_once(&ch, &expected, "an insert stored but not answered");
    assert_eq!(proxy.dropped(), 1, "the proxy dropped one answer");
    let log = loader.log();
    assert!(
        log.contains("keeping the batch and retrying")
            && log.contains("a failed insert was stored after all"),
        "{log}"
    );
    let m = loader.metrics();
    assert!(
        m.lines()
            .any(|l| l.starts_with("wraith_loader_duplicates_skipped_total") && !l.ends_with(" 0")),
        "{m}"
    );
}
