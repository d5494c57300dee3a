//! OTLP/HTTP through the real gateway: the official OpenTelemetry Python
//! SDK's exporters (protobuf, gzip), seed 003's JSON counter exactly as
//! written, partial success, and the spec's error answers.

use crate::support::*;
use prost::Message as _;
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

/// The Python with the OpenTelemetry SDK and OTLP/HTTP exporters in it.
fn otel_python() -> PathBuf {
    let python = std::env::var_os("WRAITH_OTEL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| "python3".into());
    let ok = Command::new(&python)
        .args([
            "-c",
            "import opentelemetry.exporter.otlp.proto.http, opentelemetry.sdk",
        ])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "the OpenTelemetry Python SDK is not installed for {}: `pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http` \
         (`cargo xtask test` installs the pinned versions and sets WRAITH_OTEL_PYTHON)",
        python.display()
    );
    python
}

fn of_type<'a>(events: &'a [Value], ty: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_type"] == ty).collect()
}

#[test]
fn the_python_sdk_exporters_send_spans_metrics_and_logs() {
    let python = otel_python();
    let gw = Gateway::start_with(Options {
        extra_config: "[auth]\ntokens = [\"otel-app:tok-otel-1\"]\n".into(),
        ..Default::default()
    });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/otel_export.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&gw.url)
        .arg("tok-otel-1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the exporters failed:\n{stdout}\n{}\ngateway log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
    let events = gw.lines("events");
    for e in &events {
        assert_eq!(e["tool"], "otel-py", "{e}");
        assert_eq!(e["context"]["resource"]["service.version"], "1.2.3", "{e}");
        assert_eq!(e["_client"], "otel-app", "{e}");
        assert!(e["event_id"].is_string(), "{e}");
    }
    // Two spans: the child failed and points at its parent.
    let spans = of_type(&events, "span");
    assert_eq!(spans.len(), 2, "{events:#?}");
    let parent = spans.iter().find(|s| s["name"] == "checkout").unwrap();
    let child = spans.iter().find(|s| s["name"] == "db.query").unwrap();
    assert_eq!(parent["kind"], "server");
    assert_eq!(parent["attributes"]["http.request.method"], "POST");
    assert_eq!(parent["level"], "info");
    assert_eq!(
        parent["context"]["scope"],
        json!({"name": "wraith.test", "version": "0.1"})
    );
    assert_eq!(parent["trace_id"].as_str().unwrap().len(), 32);
    assert_eq!(child["trace_id"], parent["trace_id"]);
    assert_eq!(child["parent_span_id"], parent["span_id"]);
    assert_eq!(
        child["status"],
        json!({"code": "error", "message": "timeout"})
    );
    assert_eq!(child["level"], "error");
    assert_eq!(child["attributes"]["db.rows"], 3);
    assert!(child["duration_ms"].as_f64().unwrap() >= 0.0);
    // The counter and the histogram.
    let metrics = of_type(&events, "metric");
    let jobs = metrics.iter().find(|m| m["name"] == "jobs_done").unwrap();
    assert_eq!(jobs["value"], 3);
    assert_eq!(jobs["attributes"], json!({"queue": "fast"}));
    assert_eq!(
        jobs["metric"],
        json!({"kind": "sum", "temporality": "cumulative", "monotonic": true, "unit": "1", "description": "Jobs finished"})
    );
    let latency = metrics.iter().find(|m| m["name"] == "latency").unwrap();
    assert_eq!(latency["metric"]["kind"], "histogram");
    assert_eq!(latency["histogram"]["count"], 1);
    assert_eq!(latency["histogram"]["sum"], 12.5);
    // The log record.
    let logs = of_type(&events, "log");
    assert_eq!(logs.len(), 1, "{events:#?}");
    assert_eq!(logs[0]["level"], "warning");
    assert_eq!(logs[0]["body"], "disk almost full");
    assert_eq!(logs[0]["attributes"]["disk"], "sda1");
    assert_eq!(events.len(), 5, "{events:#?}");
    gw.assert_metrics(&["wraith_events_accepted_total 5"]);
}

/// Seed 003's request body, character for character.
const SEED_003: &str = r#"{
  "resourceMetrics": [{
    "resource": {
      "attributes": [
        {"key": "service.name", "value": {"stringValue": "trix-cli"}},
        {"key": "service.version", "value": {"stringValue": "0.19.3"}},
        {"key": "user.fingerprint", "value": {"stringValue": "abc123..."}}
      ]
    },
    "scopeMetrics": [{
      "scope": {},
      "metrics": [{
        "name": "trix_command_invocation",
        "sum": {
          "dataPoints": [{
            "attributes": [
              {"key": "command_name", "value": {"stringValue": "build"}}
            ],
            "startTimeUnixNano": "1640995200000000000",
            "timeUnixNano": "1640995200000000000", 
            "asInt": "1"
          }],
          "aggregationTemporality": 2,
          "isMonotonic": true
        }
      }]
    }]
  }]
}"#;

fn post(
    gw: &Gateway,
    path: &str,
    ct: &str,
    enc: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let mut req = gw
        .http
        .post(format!("{}{path}", gw.url))
        .header("content-type", ct)
        .body(body);
    if let Some(e) = enc {
        req = req.header("content-encoding", e);
    }
    let r = req.send().unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, r.bytes().unwrap().to_vec())
}

#[test]
fn seed_003_counter_as_json_and_gzip_and_the_spec_answers() {
    let gw = Gateway::start(&[]);
    let (s, ct, body) = post(
        &gw,
        "/v1/metrics",
        "application/json",
        None,
        SEED_003.into(),
    );
    assert_eq!(
        (s, ct.as_str()),
        (200, "application/json"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), json!({}));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(SEED_003.as_bytes()).unwrap();
    let (s, _, _) = post(
        &gw,
        "/v1/metrics",
        "application/json",
        Some("gzip"),
        gz.finish().unwrap(),
    );
    assert_eq!(s, 200);
    let events = gw.lines("events");
    assert_eq!(events.len(), 2);
    let e = &events[0];
    assert_eq!(e["event_type"], "metric");
    assert_eq!(e["name"], "trix_command_invocation");
    assert_eq!(e["value"], 1);
    assert_eq!(e["attributes"], json!({"command_name": "build"}));
    assert_eq!(e["timestamp"], "2022-01-01T00:00:00Z");
    assert_eq!(e["tool"], "trix-cli");
    assert_eq!(e["context"]["resource"]["user.fingerprint"], "abc123...");
    assert_eq!(e["metric"]["temporality"], "cumulative");
    assert!(e.get("_client").is_none(), "no tokens, no client: {e}");

    // Partial success: one good point, one whose string is past the limit.
    let big = "x".repeat(70 * 1024);
    let partial = SEED_003.replace("\"build\"", &format!("\"{big}\""));
    let mut two: Value = serde_json::from_str(SEED_003).unwrap();
    let other: Value = serde_json::from_str(&partial).unwrap();
    two["resourceMetrics"]
        .as_array_mut()
        .unwrap()
        .push(other["resourceMetrics"][0].clone());
    let (s, _, body) = post(
        &gw,
        "/v1/metrics",
        "application/json",
        None,
        two.to_string().into(),
    );
    assert_eq!(s, 200);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        answer["partialSuccess"]["rejectedDataPoints"], "1",
        "{answer}"
    );
    let msg = answer["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        msg.contains("`attributes.command_name` is a string of 71680 bytes"),
        "{msg}"
    );
    assert_eq!(gw.lines("events").len(), 3);

    // The same as protobuf, answered in protobuf.
    use opentelemetry_proto::tonic::collector::metrics::v1::{
        ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    };
    let req: ExportMetricsServiceRequest = serde_json::from_value(two).unwrap();
    let (s, ct, body) = post(
        &gw,
        "/v1/metrics",
        "application/x-protobuf",
        None,
        req.encode_to_vec(),
    );
    assert_eq!((s, ct.as_str()), (200, "application/x-protobuf"));
    let resp = ExportMetricsServiceResponse::decode(&body[..]).unwrap();
    assert_eq!(resp.partial_success.unwrap().rejected_data_points, 1);

    // Errors: a Status in the request's encoding, naming the problem.
    let (s, ct, body) = post(
        &gw,
        "/v1/traces",
        "application/json",
        None,
        br#"{"resourceSpans": {"x": 1}}"#.to_vec(),
    );
    assert_eq!((s, ct.as_str()), (400, "application/json"));
    let st: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("ExportTraceServiceRequest"),
        "{st}"
    );
    let (s, ct, body) = post(
        &gw,
        "/v1/logs",
        "application/x-protobuf",
        None,
        b"\x0a\xff\xff".to_vec(),
    );
    assert_eq!((s, ct.as_str()), (400, "application/x-protobuf"));
    let st = wraith_gateway::ingest::otlp::Status::decode(&body[..]).unwrap();
    assert!(
        st.message
            .contains("not a protobuf ExportLogsServiceRequest"),
        "{}",
        st.message
    );
    let (s, _, body) = post(&gw, "/v1/logs", "text/plain", None, b"hi".to_vec());
    assert_eq!(s, 415);
    assert!(String::from_utf8_lossy(&body).contains("not OTLP/HTTP"));
    let r = gw
        .http
        .get(format!("{}/v1/metrics", gw.url))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(gw.get_json("/health")["status"], "ok");
}
