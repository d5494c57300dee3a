use crate::support::*;
use serde_json::json;
use std::process::Command;

#[test]
fn check_reports_plugins_and_shows_the_sample_before_and_after() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    install(&plugins, "upper", "upper");
    install(&plugins, "verdicts", "verdicts");
    let sample = tmp.path().join("events.jsonl");
    std::fs::write(
        &sample,
        "{\"event_type\": \"a\", \"command\": \"scan\"}\n{\"event_type\": \"b\", \"level\": \"debug\"}\n{\"event_type\": \"c\", \"reject_reason\": \"no\"}\nnot json\n",
    )
    .unwrap();
    let stdout = check_ok(&plugins, Some(&sample));
    assert!(stdout.contains("ok    upper"), "{stdout}");
    assert!(stdout.contains("\"command\":\"scan\""), "{stdout}");
    assert!(stdout.contains("\"command\":\"SCAN\""), "{stdout}");
    assert!(stdout.contains("verdict: keep -> events"), "{stdout}");
    assert!(
        stdout.contains("verdict: dropped by verdicts: debug level"),
        "{stdout}"
    );
    assert!(
        stdout.contains("verdict: dead-letter (rejected by verdicts): no"),
        "{stdout}"
    );
    assert!(
        stdout.contains("--- line 4 ---\ninvalid: not valid JSON"),
        "{stdout}"
    );
    // No server, no data written.
    assert!(!tmp.path().join("data").exists());

    // A plugin that does not load makes check fail and say why.
    install(&plugins, "bad-config", "needs");
    let out = gateway_command()
        .args(["check", "--plugins", plugins.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL")
            && stdout.contains("plugin `needs` refused its config: field `threshold`"),
        "{stdout}"
    );
}

#[test]
fn version_help_and_startup_errors() {
    let out = gateway_command().arg("version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("wraith:plugin@0.1.0"));
    let out = gateway_command().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "serve",
        "check",
        "--plugins",
        "--listen",
        "--data-dir",
        "--config",
        "127.0.0.1:8080",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = gateway_command()
        .args(["--plugins", tmp.path().join("nope").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    // A broken plugin at startup: refuse to run rather than run without it.
    std::fs::write(tmp.path().join("scrub.wasm"), b"garbage").unwrap();
    let out = gateway_command()
        .args([
            "--plugins",
            tmp.path().to_str().unwrap(),
            "--data-dir",
            tmp.path().join("d").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("refusing to start") && err.contains("scrub.wasm"),
        "{err}"
    );
    // A typo in the config file is named.
    let cfg = tmp.path().join("g.toml");
    std::fs::write(&cfg, "[plugins]\ncall_timeot = \"1s\"\n").unwrap();
    let out = gateway_command()
        .args(["--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `call_timeot`"), "{err}");
}

#[test]
fn sigterm_drains_and_a_restart_uses_the_compile_cache() {
    let root = tempfile::tempdir().unwrap();
    let plugins = root.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    install(&plugins, "upper", "upper");
    let data = root.path().join("data");
    let start = || {
        let mut child = gateway_command()
            .args([
                "--plugins",
                plugins.to_str().unwrap(),
                "--data-dir",
                data.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("wraith gateway listening on ")
            .unwrap()
            .to_string();
        (child, url)
    };
    let (mut child, url) = start();
    let http = reqwest::blocking::Client::new();
    for n in 0..20 {
        let r = http
            .post(format!("{url}/v1/events"))
            .json(&json!([event(n)]))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("gateway stopped"), "{stderr}");
    assert_eq!(read_lines(&data.join("events")).len(), 20);
    let cached = std::fs::read_dir(root.path().join("data-cache"))
        .unwrap()
        .count();
    assert_eq!(
        cached, 1,
        "one compiled plugin in the cache beside the data folder"
    );
    assert!(
        !data.join("cache").exists(),
        "the cache is not inside the data folder"
    );

    let (mut child, _url) = start();
    child.kill().unwrap();
    child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("from_cache=true"), "{stderr}");
}

/// A request body that sends its first part, says so, waits, then sends the
/// rest: a request that is in flight for as long as the test wants.
struct SlowBody {
    parts: Vec<Vec<u8>>,
    sent_first: Option<std::sync::mpsc::Sender<()>>,
    pause: std::time::Duration,
}

impl std::io::Read for SlowBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.parts.is_empty() {
            return Ok(0);
        }
        if self.parts.len() == 1
            && let Some(tx) = self.sent_first.take()
        {
            // The first part is on its way; hold the rest back.
            let _ = tx.send(());
            std::thread::sleep(self.pause);
        }
        let part = &mut self.parts[0];
        let n = part.len().min(buf.len());
        buf[..n].copy_from_slice(&part[..n]);
        part.drain(..n);
        if part.is_empty() {
            self.parts.remove(0);
        }
        Ok(n)
    }
}

/// SIGTERM or SIGINT while a request is being received: the gateway stops
/// taking connections, the request is answered and its events are on disk,
/// and the process exits cleanly.
fn check_signal_drains(signal: &str) {
    let mut gw = Gateway::start(&[("upper", "upper")]);
    let events: Vec<serde_json::Value> = (0..50).map(event).collect();
    let body = serde_json::to_vec(&events).unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    let (tx, rx) = std::sync::mpsc::channel();
    let url = format!("{}/v1/events", gw.url);
    let body = SlowBody {
        parts: vec![first.to_vec(), rest.to_vec()],
        sent_first: Some(tx),
        pause: std::time::Duration::from_secs(3),
    };
    let in_flight = std::thread::spawn(move || {
        let r = reqwest::blocking::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(reqwest::blocking::Body::new(body))
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<serde_json::Value>().unwrap())
    });
    rx.recv_timeout(std::time::Duration::from_secs(30))
        .expect("the slow request started");
    std::thread::sleep(std::time::Duration::from_millis(200));
    Command::new("kill")
        .args([&format!("-{signal}"), &gw.child.id().to_string()])
        .status()
        .unwrap();
    gw.wait_for_log("draining in-flight requests");
    assert!(
        !in_flight.is_finished(),
        "the request finished before the signal arrived: nothing was drained"
    );
    // No new connections once draining.
    let refused = reqwest::blocking::Client::new()
        .get(format!("{}/health", gw.url))
        .timeout(std::time::Duration::from_secs(5))
        .send();
    assert!(refused.is_err(), "a new request was served while draining");

    let (status, answer) = in_flight.join().unwrap();
    assert_eq!(
        (status, answer["accepted"].as_u64()),
        (200, Some(50)),
        "{answer}"
    );
    let exit = gw.child.wait().unwrap();
    assert!(exit.success(), "exit status {exit} after SIG{signal}");
    gw.wait_for_log("gateway stopped");
    let stored = gw.lines("events");
    assert_eq!(stored.len(), 50);
    assert!(
        stored
            .iter()
            .all(|e| e["command"].as_str().unwrap().starts_with("CMD-"))
    );
}

#[test]
fn sigterm_drains_a_request_in_flight() {
    check_signal_drains("TERM");
}

#[test]
fn sigint_drains_a_request_in_flight() {
    check_signal_drains("INT");
}
