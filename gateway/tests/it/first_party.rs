//! The first-party chain exactly as `cargo xtask plugins` leaves it: the
//! top-level files of `plugins/` copied into another folder.

use crate::support::*;
use serde_json::json;
use std::path::Path;

fn copy_first_party_chain(dest: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    for name in ["schema-validate", "pii-scrub", "enrich", "route"] {
        assert!(
            src.join(format!("{name}.wasm")).is_file(),
            "plugins/{name}.wasm is missing: build the first-party plugins with `cargo xtask plugins` (`cargo xtask test` does it)"
        );
    }
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dest.join(path.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn the_default_chain_validates_scrubs_enriches_and_routes() {
    let gw = Gateway::start(&[]);
    copy_first_party_chain(&gw.plugins_dir());
    gw.wait_for(
        "the first-party chain",
        std::time::Duration::from_secs(60),
        |g| {
            let v = g.get_json("/v1/plugins");
            let names: Vec<&str> = v["plugins"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            names == ["schema-validate", "pii-scrub", "enrich", "route"]
        },
    );
    let (s, a) = gw.post_json(
        "/v1/events",
        &json!([
            {"event_type": "tool_invoked", "tool": "migrateiq", "command": "scan --token ghp_1234567890abcdefghijklmnopqrstuvwxyzAB",
             "context": {"os": "darwin", "tool_version": "1.4.2", "user": "ada@example.com"}},
            {"event_type": "tool_failed", "tool": "migrateiq", "command": "deploy", "level": "error", "error_type": "Timeout",
             "duration_ms": 8412, "message": "connect postgres://deploy:hunter2@db.example.com/app from /home/ada/app failed",
             "context": {"client_ip": "203.0.113.7"}},
            {"event_type": "tool_succeeded", "tool": "migrateiq", "command": "plan", "duration_ms": 5, "level": "debug"},
            {"event_type": "tool_failed", "tool": "migrateiq", "command": "x", "duration_ms": 5},
            {"event_type": "tool_invoked", "command": "scan"},
        ]),
    );
    assert_eq!(s, 200, "{a}");
    assert_eq!(
        (
            a["accepted"].as_u64(),
            a["dropped"].as_u64(),
            a["dead_lettered"].as_u64()
        ),
        (Some(2), Some(1), Some(2)),
        "{a}"
    );
    // Kept and scrubbed, enriched, on the default destination.
    let events = gw.lines("events");
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["command"], "scan --token [token]");
    assert_eq!(e["context"]["user"], "[email]");
    assert_eq!(e["context"]["os_family"], "macos");
    assert_eq!(e["context"]["tool_version_major"], 1);
    assert_eq!(e["_wraith"]["labels"]["environment"], "development");
    let rules: Vec<&str> = e["_wraith"]["redactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&"token") && rules.contains(&"email"),
        "{rules:?}"
    );
    // Errors are routed to their own destination, scrubbed.
    let errors = gw.lines("errors");
    assert_eq!(errors.len(), 1);
    let text = errors[0].to_string();
    for secret in ["hunter2", "/home/ada", "203.0.113.7"] {
        assert!(!text.contains(secret), "{secret} reached the store: {text}");
    }
    assert_eq!(errors[0]["duration_bucket"], "1s-10s");
    // Invalid events are dead-lettered by schema-validate with the path and rule.
    let dlq = gw.lines("dlq");
    let reasons: Vec<&str> = dlq
        .iter()
        .map(|d| d["dlq"]["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("error_type: required")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("tool: required")),
        "{reasons:?}"
    );
    assert!(dlq.iter().all(|d| d["dlq"]["plugin"] == "schema-validate"));
    // The scrubber's counters reach /metrics.
    let metrics = gw.get_text("/metrics");
    assert!(
        metrics.contains(
            "wraith_plugin_counter_total{plugin=\"pii-scrub\",name=\"scrubbed_email\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "wraith_plugin_counter_total{plugin=\"schema-validate\",name=\"schema_rejected\"} 2"
        ),
        "{metrics}"
    );
}

#[test]
fn the_outside_authors_example_runs_in_the_gateway() {
    let gw = Gateway::start_with(Options {
        plugins: vec![("redact-names", "redact-names")],
        manifest: Some("[plugins.redact-names.config]\nnames = [\"project-atlas\"]\nhost_suffixes = [\".corp\"]\n".into()),
        ..Default::default()
    });
    let (s, a) = gw.post_json(
        "/v1/events",
        &json!([{"event_type": "t", "command": "deploy project-atlas to db1.corp"}]),
    );
    assert_eq!((s, a["accepted"].as_u64()), (200, Some(1)), "{a}");
    assert_eq!(
        gw.lines("events")[0]["command"],
        "deploy [redacted] to [redacted]"
    );
}
