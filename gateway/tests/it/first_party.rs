//! The first-party chain exactly as `cargo xtask plugins` leaves it: the
//! top-level files of `plugins/` copied into another folder.

use crate::support::*;
use serde_json::json;
use std::path::{Path, PathBuf};

const FIRST_PARTY: [&str; 4] = ["schema-validate", "pii-scrub", "enrich", "route"];

fn first_party_dir() -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    for name in FIRST_PARTY {
        assert!(
            src.join(format!("{name}.wasm")).is_file(),
            "plugins/{name}.wasm is missing: build the first-party plugins with `cargo xtask plugins` (`cargo xtask test` does it)"
        );
    }
    src
}

/// Copy the top-level files of `plugins/` (the components, and the manifest
/// when `with_manifest`), each renamed into place.
fn copy_first_party_chain(dest: &Path, with_manifest: bool) {
    for entry in std::fs::read_dir(first_party_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if path.is_file() && (with_manifest || name.ends_with(".wasm")) {
            let tmp = dest.join(format!(".{name}.tmp"));
            std::fs::copy(&path, &tmp).unwrap();
            std::fs::rename(&tmp, dest.join(&name)).unwrap();
        }
    }
}

fn wait_for_first_party_chain(gw: &Gateway) {
    gw.wait_for(
        "the first-party chain",
        std::time::Duration::from_secs(60),
        |g| {
            let v = g.get_json("/v1/plugins");
            let names: Vec<&str> = v["plugins"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["state"] == "active")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            names == FIRST_PARTY
        },
    );
}

#[test]
fn the_default_chain_validates_scrubs_enriches_and_routes() {
    let gw = Gateway::start(&[]);
    copy_first_party_chain(&gw.plugins_dir(), true);
    wait_for_first_party_chain(&gw);
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

#[test]
fn gateway_check_shows_the_first_party_chain_on_the_sample_events() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/events.jsonl");
    let stdout = check_ok(&first_party_dir(), Some(&sample));
    for name in FIRST_PARTY {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("  ok    {name} "))),
            "{name} not loaded:\n{stdout}"
        );
    }
    let verdicts: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("verdict: "))
        .collect();
    assert_eq!(
        verdicts,
        [
            "keep -> events",
            "keep -> errors",
            "keep -> errors",
            "dropped by route: debug events are not collected",
            "keep -> events",
            "dead-letter (rejected by schema-validate): error_type: required",
        ],
        "{stdout}"
    );
    // What the README shows: every secret of the sample is gone after the chain.
    let after: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("after:   "))
        .collect();
    assert_eq!(after.len(), 4, "kept events have an after line:\n{stdout}");
    let all_after = after.join("\n");
    for secret in [
        "hunter2",
        "ada@example.com",
        "/home/ada",
        "/Users/grace",
        "203.0.113.7",
    ] {
        assert!(
            !all_after.contains(secret),
            "{secret} survived the chain:\n{all_after}"
        );
    }
    for shown in [
        "postgres://[password]@db.internal:5432/app from ~/work/app",
        "\"user_email\":\"[email]\"",
        "\"os_family\":\"macos\"",
        "\"duration_bucket\":\"1s-10s\"",
    ] {
        assert!(all_after.contains(shown), "no {shown} in\n{all_after}");
    }
}

#[test]
fn non_default_configs_take_effect_in_the_gateway() {
    let manifest = r#"
order = ["schema-validate", "pii-scrub", "enrich", "route"]
[plugins.schema-validate.config]
mode = "tag"
unknown_event_types = "reject"
[plugins.pii-scrub.config]
hash_key = "pii test key"
detectors = { email = "hash", ip = "remove" }
[plugins.enrich.config]
labels = { region = "eu-west-1" }
hash_ids = { key = "enrich test key", fields = ["context.installation_id"] }
[plugins.route.config]
rules = [
  { when = { field = "tool", prefix = "internal-" }, then = { drop = "internal tool" } },
  { when = { field = "command", regex = "^(deploy|rollback)( |$)" }, then = { route = "changes" } },
  { when = { field = "context.ci", exists = true }, then = { sample = { keep_one_in = 2, route = "ci" } } },
]
"#;
    let gw = Gateway::start_with(Options {
        manifest: Some(manifest.into()),
        ..Default::default()
    });
    copy_first_party_chain(&gw.plugins_dir(), false);
    wait_for_first_party_chain(&gw);

    let (s, a) = gw.post_json(
        "/v1/events",
        &json!([
            {"event_type": "tool_invoked", "tool": "migrateiq", "command": "deploy prod",
             "message": "by ada@example.com", "note": "from 198.51.100.4", "context": {"installation_id": "inst-1", "client_ip": "198.51.100.4"}},
            {"event_type": "tool_invoked", "tool": "migrateiq", "command": "rollback",
             "message": "by ada@example.com", "context": {"installation_id": "inst-1"}},
            {"event_type": "tool_invoked", "tool": "internal-probe", "command": "ping"},
            {"event_type": "deploy_started", "tool": "migrateiq", "command": "status", "context": {"installation_id": "inst-2"}},
        ]),
    );
    assert_eq!(s, 200, "{a}");
    assert_eq!(
        (
            a["accepted"].as_u64(),
            a["dropped"].as_u64(),
            a["dead_lettered"].as_u64()
        ),
        (Some(3), Some(1), Some(0)),
        "tag mode keeps invalid events: {a}"
    );
    let changes = gw.lines("changes");
    assert_eq!(changes.len(), 2, "regex route: {changes:?}");
    let (e1, e2) = (&changes[0], &changes[1]);
    // e-mail hashed: a stable pseudonym, the same for the same address.
    let m1 = e1["message"].as_str().unwrap();
    let m2 = e2["message"].as_str().unwrap();
    assert!(
        m1.starts_with("by ") && !m1.contains("ada@example.com") && !m1.contains("[email]"),
        "{m1}"
    );
    assert_eq!(m1, m2, "same address, same pseudonym");
    // IP set to remove: a field holding one is gone, wherever it is.
    assert!(e1["context"].get("client_ip").is_none(), "{e1}");
    assert!(e1.get("note").is_none(), "{e1}");
    assert!(!e1.to_string().contains("198.51.100.4"), "{e1}");
    // Installation ids hashed by enrich, stable and distinct.
    let id1 = e1["context"]["installation_id"].as_str().unwrap();
    assert_ne!(id1, "inst-1");
    assert_eq!(e2["context"]["installation_id"], id1);
    assert_eq!(e1["_wraith"]["labels"]["region"], "eu-west-1");
    // Unknown event type under tag mode: kept, with the error attached.
    let events = gw.lines("events");
    assert_eq!(events.len(), 1, "{events:?}");
    let errors = events[0]["_wraith"]["schema_errors"].to_string();
    assert!(errors.contains("no schema for"), "{errors}");
    assert_ne!(events[0]["context"]["installation_id"], id1);

    // Sampling by event_id: about half of the CI events are kept, and the
    // same events sent again are kept or dropped exactly as the first time.
    let ci: Vec<serde_json::Value> = (0..40)
        .map(|n| json!({"event_id": format!("00000000-0000-4000-8000-{n:012}"), "event_type": "tool_invoked",
                        "tool": "migrateiq", "command": "scan", "context": {"ci": true}, "n": n}))
        .collect();
    let (_, first) = gw.post_json("/v1/events", &json!(ci));
    let kept_first: Vec<u64> = gw
        .lines("ci")
        .iter()
        .map(|e| e["n"].as_u64().unwrap())
        .collect();
    let (_, second) = gw.post_json("/v1/events", &json!(ci));
    let kept_all: Vec<u64> = gw
        .lines("ci")
        .iter()
        .map(|e| e["n"].as_u64().unwrap())
        .collect();
    assert_eq!(first["accepted"], second["accepted"]);
    assert_eq!(&kept_all[..kept_first.len()], &kept_first[..]);
    assert_eq!(
        &kept_all[kept_first.len()..],
        &kept_first[..],
        "a retry was sampled differently"
    );
    assert!(
        (8..=32).contains(&kept_first.len()),
        "keep_one_in = 2 kept {} of 40",
        kept_first.len()
    );
}

#[test]
fn routed_destinations_must_be_declared_once_any_are() {
    let root = tempfile::tempdir().unwrap();
    let plugins = root.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    copy_first_party_chain(&plugins, true);
    let config = root.path().join("gateway.toml");
    // The route plugin sends errors to `errors`; only `audit` is declared.
    std::fs::write(&config, "[destinations.audit]\nfolder = \"audit-log\"\n").unwrap();
    let out = gateway_command()
        .args(["check", "--plugins", plugins.to_str().unwrap()])
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains(
            "FAIL  route routes to `errors`, which no sink knows: add [destinations.errors]"
        ),
        "{stdout}"
    );
    // The gateway refuses to start on it too.
    let mut child = gateway_command()
        .args(["--plugins", plugins.to_str().unwrap()])
        .args([
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--data-dir", root.path().join("data").to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the gateway started with an undeclared destination");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("route routes to `errors`"), "{stderr}");

    // Declared, with a folder of its own: error events land there.
    let gw = Gateway::start_with(Options {
        extra_config: "[destinations.errors]\nfolder = \"failures\"\n".into(),
        ..Default::default()
    });
    copy_first_party_chain(&gw.plugins_dir(), true);
    wait_for_first_party_chain(&gw);
    let (s, _) = gw.post_json(
        "/v1/events",
        &json!([{"event_type": "tool_failed", "tool": "t", "command": "deploy", "level": "error", "error_type": "Timeout", "duration_ms": 5}]),
    );
    assert_eq!(s, 200);
    assert_eq!(gw.lines("failures").len(), 1);
    assert!(gw.lines("errors").is_empty());
}
