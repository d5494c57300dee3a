//! The request bodies of the seed documents, as written there, through the
//! real gateway.

use crate::support::*;
use serde_json::{Value, json};

/// Seed 000's `curl -X POST http://localhost:8080/event` body.
const SEED_000_EVENT: &str = r#"{
    "level": "INFO",
    "event_type": "tool_invoked",
    "tool": "migrateiq",
    "command": "scan",
    "context": {
      "installation_id": "test-uuid",
      "tool_version": "0.1.0",
      "python_version": "3.11.0",
      "os": "linux"
    }
  }"#;

/// Seed 001's probe measurement (`POST /events`).
const SEED_001_PROBE: &str = r#"{
  "event_id": "uuid",
  "client_id": "probe-1",
  "target": "https://example.com",
  "ts_ms": 1705330425000,
  "dns_ms": 15.2,
  "tcp_ms": 45.6,
  "tls_ms": 89.3,
  "ttfb_ms": 123.4,
  "total_ms": 156.7,
  "throughput_mbps": 85.2,
  "error_stage": null
}"#;

/// Seed 004's envelope, with its `...` placeholders (which are not JSON)
/// left out.
const SEED_004_ENVELOPE: &str = r#"{
  "api_version": "1.0",
  "events": [
    {
      "type": "execution",
      "data": {
        "execution_id": "uuid",
        "timestamp": "2025-01-15T10:30:00Z",
        "command_hash": "sha256...",
        "pattern": "Error",
        "exit_code": 0,
        "total_runtime": 45.3,
        "match_count": 1,
        "project_type": "nodejs"
      }
    },
    {
      "type": "match_event",
      "data": {
        "execution_id": "uuid",
        "match_number": 1,
        "timestamp_offset": 12.5,
        "stream_source": "stderr"
      }
    }
  ],
  "client": {
    "version": "0.0.1",
    "platform": "darwin",
    "anonymized": true
  }
}"#;

fn post(gw: &Gateway, path: &str, body: &str, key: Option<(&str, &str)>) -> (u16, Value) {
    let mut req = gw
        .http
        .post(format!("{}{path}", gw.url))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some((k, v)) = key {
        req = req.header(k, v);
    }
    let r = req.send().unwrap();
    let s = r.status().as_u16();
    (s, r.json().unwrap_or(Value::Null))
}

#[test]
fn seed_000_single_and_batch_events() {
    let gw = Gateway::start(&[]);
    let (s, a) = post(&gw, "/event", SEED_000_EVENT, None);
    assert_eq!((s, a["accepted"].as_u64()), (200, Some(1)), "{a}");
    // The batch the daemon sends: {"events": [...]}, levels in upper case.
    let batch = json!({"events": [
        {"event_type": "tool_failed", "level": "ERROR", "tool": "migrateiq", "command": "scan", "error_type": "Timeout", "duration_ms": 1200},
        {"event_type": "exception_unhandled", "level": "CRITICAL", "tool": "verifyiq", "exception_type": "KeyError"},
        {"event_type": "daemon_stopping", "level": "WARNING", "reason": "idle"},
    ]});
    let (s, a) = post(&gw, "/events", &batch.to_string(), None);
    assert_eq!((s, a["accepted"].as_u64()), (200, Some(3)), "{a}");
    let stored = gw.lines("events");
    assert_eq!(stored.len(), 4);
    assert_eq!(stored[0]["level"], "info");
    assert_eq!(stored[0]["context"]["installation_id"], "test-uuid");
    assert_eq!(stored[0]["tool"], "migrateiq");
    let levels: Vec<&str> = stored[1..]
        .iter()
        .map(|e| e["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["error", "critical", "warning"]);
}

#[test]
fn seed_001_probe_measurements_at_events() {
    let gw = Gateway::start(&[]);
    let (s, a) = post(&gw, "/events", SEED_001_PROBE, None);
    assert_eq!((s, a["accepted"].as_u64()), (200, Some(1)), "{a}");
    let failed = SEED_001_PROBE
        .replace("\"error_stage\": null", "\"error_stage\": \"tls\"")
        .replace("\"event_id\": \"uuid\"", "\"event_id\": \"uuid-2\"");
    let (s, _) = post(&gw, "/events", &format!("[{failed}]"), None);
    assert_eq!(s, 200);
    // Sent again: the same event id, so downstream deduplication holds.
    let (s, again) = post(&gw, "/events", SEED_001_PROBE, None);
    assert_eq!(s, 200);
    assert_eq!(again["event_ids"][0], a["event_ids"][0]);
    let stored = gw.lines("events");
    let p = &stored[0];
    assert_eq!(p["event_type"], "probe_measurement");
    assert_eq!(p["timestamp"], "2024-01-15T14:53:45Z");
    assert_eq!(p["duration_ms"], 156.7);
    assert_eq!(p["level"], "info");
    assert_eq!(p["client_id"], "probe-1");
    assert_eq!(p["target"], "https://example.com");
    assert_eq!(p["ttfb_ms"], 123.4);
    assert_eq!(p["probe_event_id"], "uuid");
    assert!(p.get("error_type").is_none());
    assert_eq!(stored[1]["level"], "error");
    assert_eq!(stored[1]["error_type"], "tls");
    // At /v1/events, Wraith's own route, a probe body is not an event.
    let (s, a) = post(
        &gw,
        "/v1/events",
        &SEED_001_PROBE.replace("\"uuid\"", "null"),
        None,
    );
    assert_eq!(s, 400, "{a}");
    assert_eq!(a["errors"][0]["field"], "event_type");
}

#[test]
fn seed_004_envelope_answered_in_its_own_shape() {
    let gw = Gateway::start_with(Options {
        extra_config: "[auth]\ntokens = [\"earlyexit:ee-key-1\"]\n".into(),
        ..Default::default()
    });
    // API key in X-API-Key, as seed 004 allows.
    let (s, a) = post(
        &gw,
        "/api/v1/events",
        SEED_004_ENVELOPE,
        Some(("x-api-key", "ee-key-1")),
    );
    assert_eq!(s, 200, "{a}");
    assert_eq!(a, json!({"status": "ok", "received": 2, "warnings": []}));
    let stored = gw.lines("events");
    assert_eq!(stored[0]["event_type"], "execution");
    assert_eq!(stored[0]["timestamp"], "2025-01-15T10:30:00Z");
    assert_eq!(stored[0]["total_runtime"], 45.3);
    assert_eq!(stored[0]["_client"], "earlyexit");
    assert_eq!(
        stored[1]["context"]["client"],
        json!({"version": "0.0.1", "platform": "darwin", "anonymized": true})
    );
    assert_eq!(stored[1]["event_type"], "match_event");
    // Or as a bearer token; a bad event is a warning, the good one is kept.
    let body = json!({"api_version": "1.0", "events": [
        {"type": "execution", "data": {"exit_code": 1}},
        {"type": "execution", "data": {"timestamp": "yesterday"}},
    ], "extra": true});
    let (s, a) = post(
        &gw,
        "/api/v1/events",
        &body.to_string(),
        Some(("authorization", "Bearer ee-key-1")),
    );
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["status"], "ok");
    assert_eq!(a["received"], 1);
    let w: Vec<&str> = a["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(w[0], "unknown field `extra` ignored");
    assert!(
        w[1].starts_with("event 1 refused: field `timestamp` is not RFC 3339"),
        "{w:?}"
    );
    // All bad: 400 in the same shape.
    let (s, a) = post(
        &gw,
        "/api/v1/events",
        r#"{"api_version":"1.0","events":[{"data":{}}]}"#,
        Some(("x-api-key", "ee-key-1")),
    );
    assert_eq!((s, a["status"].as_str()), (400, Some("error")), "{a}");
    assert_eq!(a["received"], 0);
    let (s, a) = post(
        &gw,
        "/api/v1/events",
        r#"{"api_version":"2.0","events":[]}"#,
        Some(("x-api-key", "ee-key-1")),
    );
    assert_eq!(s, 400);
    assert!(
        a["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"2.0\" is not supported"),
        "{a}"
    );
    // Without the key: 401.
    let (s, a) = post(&gw, "/api/v1/events", SEED_004_ENVELOPE, None);
    assert_eq!(s, 401, "{a}");
}
