//! The example tool (wraith-sdk) → the daemon it starts → a real gateway.

use crate::support::*;
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn lines(range: std::ops::RangeInclusive<u64>) -> impl Iterator<Item = String> {
    range.map(|i| format!("line {i} from ada@example.com"))
}

fn check_context(home: &Home, e: &Value) {
    let ctx = &e["context"];
    let id = std::fs::read_to_string(home.wraith_dir().join("installation_id")).unwrap();
    assert_eq!(ctx["installation_id"], id.trim(), "{e}");
    assert_eq!(ctx["tool_version"], "0.1.0");
    assert_eq!(ctx["os"], std::env::consts::OS);
    assert_eq!(ctx["arch"], std::env::consts::ARCH);
    let text = e.to_string();
    let home_path = home.dir.path().display().to_string();
    assert!(!text.contains(&home_path), "a path in {text}");
    for secret in [std::env::var("USER").ok(), hostname()]
        .into_iter()
        .flatten()
    {
        if secret.len() > 2 {
            assert!(!ctx.to_string().contains(&secret), "{secret} in {ctx}");
        }
    }
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
}

/// The gateway goes away while the tool keeps sending and comes back on the
/// same address: every event arrives once, scrubbed, with its context.
#[test]
fn events_survive_a_gateway_outage_exactly_once() {
    let mut gw = Gateway::start();
    let home = Home::new(&gw.url());
    let mut tool = Tool::spawn({
        let mut c = home.command(&tool_bin());
        c.arg("process");
        c
    });
    tool.send(lines(1..=10));
    wait_for("the first 10 events at the gateway", T, || {
        line_numbers(&gw.events()).len() >= 10
    });
    // The daemon was started by the SDK with the tool as its parent.
    let status = home.status().expect("the daemon's status file");
    assert_eq!(status["parent_pid"], tool.child.id());
    let socket = home.socket();
    let mode = |p: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode(&socket), 0o600);
    assert_eq!(mode(socket.parent().unwrap()), 0o700);

    gw.stop();
    tool.send(lines(11..=30));
    wait_for("20 events in the spool", T, || {
        home.status_u64("/spool/events") == 20
    });
    assert!(home.status().unwrap()["last_error"].is_string());

    gw.restart();
    wait_for("the spool replayed", T, || {
        line_numbers(&gw.events()).len() >= 30
    });
    tool.send(lines(31..=35));
    let daemon = home.daemon_pid().expect("a running daemon");
    tool.finish();
    // Parent gone: the daemon flushes and exits.
    wait_for("the daemon to exit", T, || !alive(daemon));

    let events = by_id(&gw.events(), "sdk-tool");
    assert_eq!(line_numbers(&events), (1..=35).collect::<Vec<_>>());
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .filter(|t| *t != "line_processed")
        .collect();
    assert_eq!(types, ["tool_invoked", "tool_succeeded"]);
    for e in &events {
        check_context(&home, e);
        if e["event_type"] == "line_processed" {
            // pii-scrub ran: the address never reached the store.
            let sample = e["sample"].as_str().unwrap();
            assert!(!sample.contains("ada@example.com"), "{e}");
            assert!(sample.contains("[email]"), "{e}");
        }
    }
    assert!(gw.dead_lettered().is_empty(), "{:?}", gw.dead_lettered());
    let s = home.status().unwrap();
    assert_eq!(s["spool"]["events"], 0);
    assert!(!s["stopped_ms"].is_null());
}

/// The daemon is killed with SIGKILL holding a spool; the next start
/// (by the SDK, on the tool's next event) replays it: nothing lost, nothing twice.
#[test]
fn a_spool_survives_sigkill_and_is_replayed_once() {
    let mut gw = Gateway::start();
    gw.stop();
    let home = Home::new(&gw.url());
    let mut tool = Tool::spawn({
        let mut c = home.command(&tool_bin());
        c.arg("process");
        c
    });
    tool.send(lines(1..=40));
    // tool_invoked + 40 lines, all spooled.
    wait_for("41 events in the spool", T, || {
        home.status_u64("/spool/events") == 41
    });
    let daemon = home.daemon_pid().expect("a running daemon");
    unsafe { libc::kill(daemon as i32, libc::SIGKILL) };
    wait_for("the daemon to die", T, || !alive(daemon));
    let spooled = std::fs::read_dir(home.spool())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "ndjson")
        })
        .count();
    assert!(spooled >= 2, "{spooled} batch files");

    gw.restart();
    // The next event finds the socket dead; the SDK starts a new daemon,
    // which takes over the stale socket and replays the spool.
    tool.send(lines(41..=42));
    wait_for("every event at the gateway", T, || {
        line_numbers(&gw.events()).len() >= 42
    });
    let second = home.daemon_pid().expect("a second daemon");
    assert_ne!(second, daemon);
    tool.finish();
    wait_for("the daemon to exit", T, || !alive(second));
    let events = by_id(&gw.events(), "sdk-tool");
    assert_eq!(line_numbers(&events), (1..=42).collect::<Vec<_>>());
    assert_eq!(events.len(), 44, "tool_invoked, 42 lines, tool_succeeded");
}

/// With batches that would wait five minutes, the tool's exit alone makes
/// the daemon send and go; a critical event does not wait at all.
#[test]
fn parent_exit_flushes_and_critical_events_go_at_once() {
    let gw = Gateway::start();
    let mut home = Home::new(&gw.url());
    home.set("WRAITH_FLUSH_INTERVAL", "300")
        .set("WRAITH_BATCH_SIZE", "1000");
    let mut tool = Tool::spawn({
        let mut c = home.command(&tool_bin());
        c.arg("process");
        c
    });
    tool.send(lines(1..=3));
    tool.send(["crash now".to_string()]);
    wait_for("the critical event and those before it", T, || {
        line_numbers(&gw.events()).len() >= 4
    });
    let critical: Vec<Value> = gw
        .events()
        .into_iter()
        .filter(|e| e["level"] == "critical")
        .collect();
    assert_eq!(critical.len(), 1);
    assert_eq!(critical[0]["word"], "crash");
    tool.send(lines(5..=6));
    let daemon = home.daemon_pid().expect("a running daemon");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(line_numbers(&gw.events()).len(), 4, "batched, not sent yet");
    tool.finish();
    wait_for("the daemon to exit", T, || !alive(daemon));
    assert_eq!(
        line_numbers(&by_id(&gw.events(), "sdk-tool")),
        (1..=6).collect::<Vec<_>>()
    );
    assert!(!home.socket().exists(), "the daemon removes its socket");
}

/// A failing command: `tool_failed` with the error's type, never its message.
#[test]
fn a_failed_command_sends_its_error_type_only() {
    let gw = Gateway::start();
    let home = Home::new(&gw.url());
    let missing = home.dir.path().join("no-such-file.txt");
    let out = home
        .command(&tool_bin())
        .arg("count")
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!out.status.success());
    wait_for("tool_invoked and tool_failed", T, || {
        by_id(&gw.events(), "sdk-tool").len() == 2
    });
    let events = by_id(&gw.events(), "sdk-tool");
    let failed = events
        .iter()
        .find(|e| e["event_type"] == "tool_failed")
        .unwrap();
    assert_eq!(failed["error_type"], "std::io::error::Error");
    assert_eq!(failed["command"], "count");
    assert_eq!(failed["level"], "error");
    assert!(failed["duration_ms"].is_u64());
    let text = failed.to_string();
    assert!(
        !text.contains("no-such-file") && !text.contains("No such file"),
        "{text}"
    );
    check_context(&home, failed);
}

/// Each way of opting out: no daemon, no socket, no file, nothing received.
#[test]
fn opting_out_starts_nothing_and_sends_nothing() {
    let gw = Gateway::start();
    for way in [
        "WRAITH_TELEMETRY=false",
        "WRAITH_TELEMETRY=0",
        "DO_NOT_TRACK=1",
        "config",
    ] {
        let mut home = Home::new(&gw.url());
        match way.split_once('=') {
            Some((k, v)) => {
                home.set(k, v);
            }
            None => {
                std::fs::create_dir(home.wraith_dir()).unwrap();
                std::fs::write(
                    home.wraith_dir().join("config.json"),
                    r#"{"telemetry": false}"#,
                )
                .unwrap();
            }
        }
        let before = home.files();
        let mut tool = Tool::spawn({
            let mut c = home.command(&tool_bin());
            c.arg("process");
            c
        });
        tool.send(lines(1..=5));
        tool.send(["crash".to_string()]);
        tool.finish();
        assert_eq!(home.files(), before, "{way}: files written");
        assert!(!home.socket().exists(), "{way}");
        assert!(home.status().is_none(), "{way}: a daemon ran");
    }
    // A control run with telemetry on, so "nothing received" means something.
    let home = Home::new(&gw.url());
    let mut tool = Tool::spawn({
        let mut c = home.command(&tool_bin());
        c.arg("process");
        c
    });
    tool.send(lines(1..=1));
    tool.finish();
    wait_for("the control run's events", T, || {
        by_id(&gw.events(), "sdk-tool").len() == 3
    });
    assert_eq!(line_numbers(&gw.events()), [1]);
}

/// The direct-HTTP mode (no daemon) and the file mode.
#[test]
fn http_and_file_modes() {
    let gw = Gateway::start();
    let mut home = Home::new(&gw.url());
    home.set("WRAITH_MODE", "http");
    let mut tool = Tool::spawn({
        let mut c = home.command(&tool_bin());
        c.arg("process");
        c
    });
    tool.send(lines(1..=5));
    tool.finish();
    // Delivered before the tool exited: the guard flushes.
    assert_eq!(
        line_numbers(&by_id(&gw.events(), "sdk-tool")),
        [1, 2, 3, 4, 5]
    );
    assert!(
        !home.socket().exists() && home.status().is_none(),
        "no daemon in http mode"
    );

    let mut home = Home::new(&gw.url());
    let file = home.dir.path().join("out/events.jsonl");
    home.set("WRAITH_MODE", "file")
        .set("WRAITH_FILE", file.to_str().unwrap());
    let mut tool = Tool::spawn({
        let mut c = home.command(&tool_bin());
        c.arg("process");
        c
    });
    tool.send(lines(1..=3));
    tool.finish();
    let written: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(line_numbers(&written), [1, 2, 3]);
    assert_eq!(written.len(), 5);
    assert!(home.status().is_none());

    // Daemon mode on a machine without the daemon binary: straight to the
    // gateway instead.
    let gw = Gateway::start();
    let mut home = Home::new(&gw.url());
    home.set("WRAITH_DAEMON", "/nonexistent/wraith-daemon");
    let mut tool = Tool::spawn({
        let mut c = home.command(&tool_bin());
        c.arg("process");
        c
    });
    tool.send(lines(1..=2));
    tool.finish();
    assert_eq!(line_numbers(&by_id(&gw.events(), "sdk-tool")), [1, 2]);
    assert!(!home.socket().exists() && home.status().is_none());
}
