//! The Python client (sdk/python, stdlib only): its unit tests, and the
//! same flow as the Rust SDK's through the daemon to a real gateway.

use crate::support::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn python_dir() -> PathBuf {
    repo_root().join("sdk/python")
}

fn python() -> Command {
    let c = Command::new("python3");
    assert!(
        Command::new("python3").arg("--version").output().is_ok(),
        "python3 is needed for the Python client's tests: install it (any 3.8 or newer)"
    );
    c
}

fn tool(home: &Home, args: &[&str]) -> Tool {
    let mut c = home.command(std::path::Path::new("python3"));
    c.arg(python_dir().join("tests/tool.py"))
        .args(args)
        .env("PYTHONPATH", python_dir())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    Tool::spawn(c)
}

#[test]
fn python_unit_tests() {
    let out = python()
        .args(["-m", "unittest", "discover", "-v", "-s"])
        .arg(python_dir().join("tests"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python unit tests failed:\n{err}");
    assert!(err.contains("OK"), "{err}");
}

#[test]
fn python_client_through_the_daemon_across_an_outage() {
    let mut gw = Gateway::start();
    let home = Home::new(&gw.url());
    let mut t = tool(&home, &["--fail"]);
    t.send((1..=5).map(|i| format!("py {i} mail bob@example.org")));
    wait_for("5 events at the gateway", T, || {
        line_numbers(&gw.events()).len() >= 5
    });
    assert_eq!(home.status().unwrap()["parent_pid"], t.child.id());
    gw.stop();
    t.send((6..=12).map(|i| format!("py {i}")));
    wait_for("7 events in the spool", T, || {
        home.status_u64("/spool/events") == 7
    });
    gw.restart();
    let daemon = home.daemon_pid().expect("a running daemon");
    drop(t.child.stdin.take());
    // The tool raises at the end (--fail): a non-zero exit, on purpose.
    let status = wait_timeout(&mut t.child, T);
    assert!(!status.success());
    wait_for("the daemon to exit", T, || !alive(daemon));

    let events = by_id(&gw.events(), "py-tool");
    assert_eq!(line_numbers(&events), (1..=12).collect::<Vec<_>>());
    // tool_failed is routed to its own destination (level error), so file
    // order is not arrival order: compare as sets.
    let mut types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .filter(|t| *t != "line_processed")
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "tool_failed",
            "tool_invoked",
            "tool_invoked",
            "tool_succeeded"
        ]
    );
    let failed = events
        .iter()
        .find(|e| e["event_type"] == "tool_failed")
        .unwrap();
    assert_eq!(failed["error_type"], "KeyError");
    assert!(!failed.to_string().contains("must not be sent"), "{failed}");
    let id = std::fs::read_to_string(home.wraith_dir().join("installation_id")).unwrap();
    for e in &events {
        let ctx = &e["context"];
        assert_eq!(ctx["installation_id"], id.trim());
        assert_eq!(ctx["tool_version"], "2.0.0");
        assert_eq!(ctx["language"], "python");
        assert!(ctx["python_version"].as_str().unwrap().starts_with('3'));
        if let Some(sample) = e["sample"].as_str() {
            assert!(!sample.contains("bob@example.org"), "{e}");
        }
    }
    let scrubbed = events
        .iter()
        .filter(|e| e["sample"].as_str().is_some_and(|s| s.contains("[email]")))
        .count();
    assert_eq!(scrubbed, 5);
}

#[test]
fn python_opt_out_starts_nothing() {
    let gw = Gateway::start();
    for way in ["WRAITH_TELEMETRY=false", "DO_NOT_TRACK=1", "config"] {
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
        let mut t = tool(&home, &[]);
        t.send((1..=3).map(|i| format!("py {i}")));
        t.finish();
        assert_eq!(home.files(), before, "{way}: files written");
        assert!(!home.socket().exists(), "{way}");
    }
    // Control: telemetry on, the same tool's events arrive.
    let home = Home::new(&gw.url());
    let mut t = tool(&home, &[]);
    t.send(["py 1".to_string()]);
    t.finish();
    wait_for("the control run's events", T, || {
        by_id(&gw.events(), "py-tool").len() == 3
    });
    let all: Vec<Value> = gw.events();
    assert_eq!(line_numbers(&all), [1]);
}

#[test]
fn python_client_without_a_daemon_binary_sends_over_http() {
    let gw = Gateway::start();
    let mut home = Home::new(&gw.url());
    home.set("WRAITH_DAEMON", "/nonexistent/wraith-daemon")
        .set("PATH", "/usr/bin:/bin");
    let mut t = tool(&home, &[]);
    t.send((1..=3).map(|i| format!("py {i}")));
    t.finish();
    assert_eq!(line_numbers(&by_id(&gw.events(), "py-tool")), [1, 2, 3]);
    assert!(!home.socket().exists() && home.status().is_none());
}
