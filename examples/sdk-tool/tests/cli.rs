//! The example tool as a user runs it, telemetry off (the end-to-end tests
//! in sdk/daemon/tests/e2e run it with telemetry on, against a gateway).

use std::process::Command;

fn tool() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sdk-tool"));
    c.env("DO_NOT_TRACK", "1");
    c
}

#[test]
fn counts_lines_and_reports_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.txt");
    std::fs::write(&f, "one\ntwo\nthree\n").unwrap();
    let out = tool().arg("count").arg(&f).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "3\n");

    let out = tool().output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: sdk-tool"));
}
