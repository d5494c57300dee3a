//! `curl`, a client nobody here wrote, against the real gateway: a gzip
//! body, NDJSON from a file, an OTLP/JSON export, and a bad body's answer.

use crate::support::*;
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::Command;

fn curl(args: &[&str]) -> (u16, Value) {
    let out = Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("`curl` is not installed ({e}): `apt-get install curl` (`cargo xtask test` installs it)")
        });
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text.rsplit_once('\n').unwrap();
    (
        code.trim().parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

fn gzip_file(path: &Path, bytes: &[u8]) {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    std::fs::write(path, gz.finish().unwrap()).unwrap();
}

#[test]
fn curl_sends_gzip_ndjson_and_otlp() {
    let gw = Gateway::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let url = |p: &str| format!("{}{p}", gw.url);

    // A gzip body: `curl --data-binary @events.json.gz -H 'Content-Encoding: gzip'`.
    let gz = dir.path().join("events.json.gz");
    gzip_file(
        &gz,
        serde_json::json!([event(1), event(2)])
            .to_string()
            .as_bytes(),
    );
    let (s, a) = curl(&[
        "-H",
        "content-type: application/json",
        "-H",
        "content-encoding: gzip",
        "--data-binary",
        &format!("@{}", gz.display()),
        &url("/v1/events"),
    ]);
    assert_eq!((s, a["accepted"].as_u64()), (200, Some(2)), "{a}");

    // NDJSON from a file.
    let nd = dir.path().join("events.ndjson");
    std::fs::write(&nd, format!("{}\n{}\n", event(3), event(4))).unwrap();
    let (s, a) = curl(&[
        "-H",
        "content-type: application/x-ndjson",
        "--data-binary",
        &format!("@{}", nd.display()),
        &url("/v1/events"),
    ]);
    assert_eq!((s, a["accepted"].as_u64()), (200, Some(2)), "{a}");

    // Seed 003's counter, gzip-compressed, as OTLP/JSON.
    let otlp = dir.path().join("metrics.json.gz");
    gzip_file(
        &otlp,
        br#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"trix-cli"}}]},
            "scopeMetrics":[{"scope":{},"metrics":[{"name":"trix_command_invocation","sum":{"dataPoints":[{"attributes":[{"key":"command_name","value":{"stringValue":"build"}}],
            "startTimeUnixNano":"1640995200000000000","timeUnixNano":"1640995200000000000","asInt":"1"}],"aggregationTemporality":2,"isMonotonic":true}}]}]}]}"#,
    );
    let (s, a) = curl(&[
        "-H",
        "content-type: application/json",
        "-H",
        "content-encoding: gzip",
        "--data-binary",
        &format!("@{}", otlp.display()),
        &url("/v1/metrics"),
    ]);
    assert_eq!(s, 200, "{a}");
    let stored = gw.lines("events");
    assert_eq!(stored.len(), 5);
    assert_eq!(stored[4]["name"], "trix_command_invocation");
    assert_eq!(stored[4]["tool"], "trix-cli");

    // A body that is not JSON: 400 with a message that names the problem.
    let (s, a) = curl(&[
        "-H",
        "content-type: application/json",
        "-d",
        "{\"event_type\": ",
        &url("/v1/events"),
    ]);
    assert_eq!(s, 400, "{a}");
    assert!(
        a["error"]["message"].as_str().unwrap().contains("JSON"),
        "{a}"
    );
    // And a bogus gzip body.
    let bogus = dir.path().join("bogus.gz");
    std::fs::write(&bogus, b"\x1f\x8bnot really gzip").unwrap();
    let (s, a) = curl(&[
        "-H",
        "content-type: application/json",
        "-H",
        "content-encoding: gzip",
        "--data-binary",
        &format!("@{}", bogus.display()),
        &url("/v1/events"),
    ]);
    assert_eq!(s, 400, "{a}");
    assert!(
        a["error"]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("gzip"),
        "{a}"
    );
}
