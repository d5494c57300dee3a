//! The bad-input suite: hostile and broken requests through real sockets,
//! each answered with its 4xx and a message that names the problem, the
//! gateway healthy after every one, and the good events of a mixed batch
//! still stored.

use crate::limits::{LIMITS, addr, healthy, raw};
use crate::support::*;
use serde_json::json;
use std::io::Write;
use std::time::Duration;

const TOKEN: &str = "tok-bad-input";

/// A request on its own connection: the method, path, extra headers and body.
fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n");
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    if !has("authorization") && !has("x-api-key") && !has("no-auth") {
        r.push_str(&format!("X-API-Key: {TOKEN}\r\n"));
    }
    if !has("content-type") {
        r.push_str("Content-Type: application/json\r\n");
    }
    if !has("content-length") && !has("transfer-encoding") {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        if !k.eq_ignore_ascii_case("no-auth") {
            r.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    r.push_str("\r\n");
    let mut bytes = r.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn post(path: &str, body: &[u8]) -> Vec<u8> {
    request("POST", path, &[], body)
}

fn post_as(path: &str, ct: &str, body: &[u8]) -> Vec<u8> {
    request("POST", path, &[("Content-Type", ct)], body)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn gzipped(path: &str, body: Vec<u8>) -> Vec<u8> {
    request("POST", path, &[("Content-Encoding", "gzip")], &body)
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    status: u16,
    /// Text the answer must hold (empty: the status is all hyper sends).
    needle: &'static str,
}

fn case(name: &'static str, bytes: Vec<u8>, status: u16, needle: &'static str) -> Case {
    Case {
        name,
        bytes,
        status,
        needle,
    }
}

fn deep(n: usize, open: &str, close: &str) -> Vec<u8> {
    format!("{}{}", open.repeat(n), close.repeat(n)).into_bytes()
}

fn cases() -> Vec<Case> {
    let ev = |extra: serde_json::Value| {
        let mut e = json!({"event_type": "tool_invoked"});
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!([e]).to_string().into_bytes()
    };
    let wide: serde_json::Map<String, serde_json::Value> =
        (0..60).map(|i| (format!("k{i}"), json!(i))).collect();
    let nested = (0..9).fold(json!(1), |v, _| json!({"a": v}));
    let seed3 = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","sum":{"dataPoints":[{"asInt":"1","timeUnixNano":"1"}]}}]}]}]}"#;
    let bomb = {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(b"[{\"event_type\":\"x\",\"p\":\"").unwrap();
        let zeros = vec![b'0'; 1 << 20];
        for _ in 0..16 {
            gz.write_all(&zeros).unwrap();
        }
        gz.finish().unwrap()
    };
    let mut truncated_gzip = gzip(&ev(json!({})));
    truncated_gzip.truncate(truncated_gzip.len() / 2);
    let many_events = json!(
        (0..101)
            .map(|_| json!({"event_type": "x"}))
            .collect::<Vec<_>>()
    )
    .to_string()
    .into_bytes();
    let many_headers: Vec<(String, String)> =
        (0..150).map(|i| (format!("X-H{i}"), "v".into())).collect();
    let many_headers: Vec<(&str, &str)> = many_headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    vec![
        // JSON syntax.
        case(
            "truncated JSON",
            post("/v1/events", br#"[{"event_type":"a""#),
            400,
            "not valid JSON",
        ),
        case(
            "malformed JSON",
            post("/v1/events", b"{event_type: a}"),
            400,
            "not valid JSON",
        ),
        case(
            "empty body",
            post("/v1/events", b""),
            400,
            "the request body is empty",
        ),
        case(
            "whitespace body",
            post("/v1/events", b" \n\t "),
            400,
            "the request body is empty",
        ),
        case(
            "invalid UTF-8 in a string",
            post("/v1/events", b"[{\"event_type\":\"\xff\xfe\"}]"),
            400,
            "not valid JSON",
        ),
        case(
            "lone surrogate escape",
            post("/v1/events", br#"[{"event_type":"\ud800"}]"#),
            400,
            "not valid JSON",
        ),
        case(
            "NaN literal",
            post("/v1/events", br#"[{"event_type":"a","v":NaN}]"#),
            400,
            "not valid JSON",
        ),
        case(
            "Infinity literal",
            post("/v1/events", br#"[{"event_type":"a","v":Infinity}]"#),
            400,
            "not valid JSON",
        ),
        case(
            "-Infinity literal",
            post("/v1/events", br#"[{"event_type":"a","v":-Infinity}]"#),
            400,
            "not valid JSON",
        ),
        case(
            "1e400",
            post("/v1/events", br#"[{"event_type":"a","v":1e400}]"#),
            400,
            "number out of range",
        ),
        case(
            "10,000-deep arrays",
            post("/v1/events", &deep(10_000, "[", "]")),
            400,
            "recursion limit exceeded",
        ),
        case(
            "10,000-deep objects",
            post("/v1/events", &{
                let mut b = "{\"a\":".repeat(10_000).into_bytes();
                b.extend_from_slice(b"1");
                b.extend(std::iter::repeat_n(b'}', 10_000));
                b
            }),
            400,
            "recursion limit exceeded",
        ),
        case(
            "duplicate keys, the last of the wrong type",
            post("/v1/events", br#"[{"event_type":"a","event_type":5}]"#),
            400,
            "field `event_type` must be a string",
        ),
        case(
            "trailing garbage",
            post("/v1/events", br#"[{"event_type":"a"}] x"#),
            400,
            "trailing characters",
        ),
        // Body shapes.
        case(
            "a number",
            post("/v1/events", b"5"),
            400,
            "must be a JSON array of events",
        ),
        case(
            "a string",
            post("/v1/events", br#""events""#),
            400,
            "must be a JSON array of events",
        ),
        case(
            "events not an array",
            post("/v1/events", br#"{"events":5}"#),
            400,
            "`events` must be an array",
        ),
        case(
            "no events",
            post("/v1/events", br#"{"events":[]}"#),
            400,
            "holds no events",
        ),
        case(
            "an empty array",
            post("/v1/events", b"[]"),
            400,
            "holds no events",
        ),
        case(
            "events that are not objects",
            post("/v1/events", b"[1,\"x\",null]"),
            400,
            "an event must be a JSON object",
        ),
        case(
            "an array at /event",
            post("/event", br#"[{"event_type":"a"}]"#),
            400,
            "takes one event object",
        ),
        case(
            "too many events",
            post("/v1/events", &many_events),
            413,
            "server.max_events_per_request",
        ),
        // Field types.
        case(
            "event_type missing",
            post("/v1/events", br#"[{"tool":"t"}]"#),
            400,
            "`event_type` is required",
        ),
        case(
            "event_type a number",
            post("/v1/events", &ev(json!({"event_type": 5}))),
            400,
            "`event_type` must be a string",
        ),
        case(
            "event_type empty",
            post("/v1/events", &ev(json!({"event_type": ""}))),
            400,
            "must not be empty",
        ),
        case(
            "event_type too long",
            post("/v1/events", &ev(json!({"event_type": "e".repeat(200)}))),
            400,
            "longer than 128 bytes",
        ),
        case(
            "a level that is not one",
            post("/v1/events", &ev(json!({"level": "LOUD"}))),
            400,
            "field `level`",
        ),
        case(
            "a timestamp that is not one",
            post("/v1/events", &ev(json!({"timestamp": "yesterday"}))),
            400,
            "not RFC 3339",
        ),
        case(
            "a fractional epoch timestamp",
            post("/v1/events", &ev(json!({"timestamp": 1.5}))),
            400,
            "whole epoch milliseconds",
        ),
        case(
            "an event_id that is not a UUID",
            post("/v1/events", &ev(json!({"event_id": "42"}))),
            400,
            "not a UUID",
        ),
        case(
            "a negative duration",
            post("/v1/events", &ev(json!({"duration_ms": -1}))),
            400,
            "non-negative",
        ),
        case(
            "context not an object",
            post("/v1/events", &ev(json!({"context": [1]}))),
            400,
            "`context` must be an object",
        ),
        case(
            "tool a number",
            post("/v1/events", &ev(json!({"tool": 7}))),
            400,
            "`tool` must be a string",
        ),
        // Shape limits.
        case(
            "a huge string",
            post("/v1/events", &ev(json!({"s": "x".repeat(2000)}))),
            400,
            "limits.max_string_length",
        ),
        case(
            "a huge key",
            post("/v1/events", &ev(json!({"k".repeat(2000): 1}))),
            400,
            "limits.max_string_length",
        ),
        case(
            "a huge array",
            post("/v1/events", &ev(json!({"a": vec![1; 60]}))),
            400,
            "limits.max_fields_per_event",
        ),
        case(
            "many keys",
            post("/v1/events", &ev(json!({"w": wide}))),
            400,
            "limits.max_fields_per_event",
        ),
        case(
            "nested past max_depth",
            post("/v1/events", &ev(json!({"n": nested}))),
            400,
            "limits.max_depth",
        ),
        // NDJSON.
        case(
            "NDJSON, no good line",
            post_as("/v1/events", "application/x-ndjson", b"nope\n{\n"),
            400,
            "no line of the NDJSON body is valid JSON",
        ),
        case(
            "NDJSON, not UTF-8",
            post_as("/v1/events", "application/x-ndjson", b"\xff\xfe\n"),
            400,
            "not UTF-8",
        ),
        case(
            "NDJSON at /event",
            post_as("/event", "application/x-ndjson", b"{}\n"),
            415,
            "takes one JSON object",
        ),
        // Media types and encodings.
        case(
            "text/plain",
            post_as("/v1/events", "text/plain", b"hi"),
            415,
            "is not accepted",
        ),
        case(
            "Content-Encoding br",
            request("POST", "/v1/events", &[("Content-Encoding", "br")], b"xx"),
            415,
            "not supported; send gzip",
        ),
        case(
            "bogus gzip",
            gzipped("/v1/events", b"this is not gzip at all".to_vec()),
            400,
            "is the gzip stream valid",
        ),
        case(
            "truncated gzip",
            gzipped("/v1/events", truncated_gzip),
            400,
            "is the gzip stream valid",
        ),
        case(
            "a gzip bomb",
            gzipped("/v1/events", bomb),
            413,
            "measured after decompression",
        ),
        case(
            "gzip of a body past the limit after decompression",
            gzipped("/v1/events", gzip(&vec![b' '; 300 * 1024])),
            413,
            "server.max_body_size",
        ),
        case(
            "a body past the wire limit",
            post("/v1/events", &ev(json!({"p": "y".repeat(70 * 1024)}))),
            413,
            "limits.max_wire_body_size",
        ),
        // Framing.
        case(
            "a Content-Length that is not a number",
            request("POST", "/v1/events", &[("Content-Length", "ten")], b"[]"),
            400,
            "",
        ),
        case(
            "a chunk size that is not hex",
            request(
                "POST",
                "/v1/events",
                &[("Transfer-Encoding", "chunked")],
                b"zz\r\n[]\r\n0\r\n\r\n",
            ),
            400,
            "could not read the request body",
        ),
        case(
            "a chunk longer than its size",
            request(
                "POST",
                "/v1/events",
                &[("Transfer-Encoding", "chunked")],
                b"2\r\n[{}]\r\n0\r\n\r\n",
            ),
            400,
            "could not read the request body",
        ),
        case(
            "a request line that is not HTTP",
            b"HELLO THERE\r\n\r\n".to_vec(),
            400,
            "",
        ),
        case(
            "a Content-Length that lies (more than sent)",
            request(
                "POST",
                "/v1/events",
                &[("Content-Length", "100")],
                br#"[{"event_type":"a"}]"#,
            ),
            408,
            "limits.body_read_timeout",
        ),
        // Methods and paths.
        case(
            "GET on /v1/events",
            request("GET", "/v1/events", &[], b""),
            405,
            "GET is not allowed on /v1/events",
        ),
        case(
            "PUT on /v1/events",
            request("PUT", "/v1/events", &[], b"[]"),
            405,
            "PUT is not allowed",
        ),
        case(
            "DELETE on /v1/metrics",
            request("DELETE", "/v1/metrics", &[], b""),
            405,
            "DELETE is not allowed",
        ),
        case(
            "an unknown path",
            post("/v2/events", b"[]"),
            404,
            "no route for POST /v2/events",
        ),
        // Headers.
        case(
            "an oversized header",
            request(
                "POST",
                "/v1/events",
                &[("X-Pad", &"p".repeat(10 * 1024))],
                b"[]",
            ),
            431,
            "",
        ),
        case(
            "too many headers",
            request("POST", "/v1/events", &many_headers, b"[]"),
            431,
            "",
        ),
        // Tokens.
        case(
            "no token",
            request("POST", "/v1/events", &[("no-auth", "")], b"[]"),
            401,
            "a token is required",
        ),
        case(
            "a wrong token",
            request(
                "POST",
                "/v1/events",
                &[("X-API-Key", "tok-bad-inpuT")],
                b"[]",
            ),
            401,
            "not valid",
        ),
        case(
            "an empty bearer token",
            request("POST", "/v1/events", &[("Authorization", "Bearer")], b"[]"),
            401,
            "empty bearer token",
        ),
        case(
            "Basic auth",
            request(
                "POST",
                "/v1/events",
                &[("Authorization", "Basic dTpw")],
                b"[]",
            ),
            401,
            "`Basic` scheme",
        ),
        case(
            "an empty X-API-Key",
            request("POST", "/v1/events", &[("X-API-Key", "")], b"[]"),
            401,
            "X-API-Key header is empty",
        ),
        case(
            "a token that is not ASCII",
            request("POST", "/v1/events", &[("X-API-Key", "t\u{f6}k")], b"[]"),
            401,
            "not visible ASCII",
        ),
        // OTLP.
        case(
            "malformed protobuf",
            post_as("/v1/metrics", "application/x-protobuf", b"\x0a\xff\xff\xff"),
            400,
            "not a protobuf ExportMetricsServiceRequest",
        ),
        case(
            "OTLP JSON, resourceMetrics not a list",
            post("/v1/metrics", br#"{"resourceMetrics":5}"#),
            400,
            "at `resourceMetrics`",
        ),
        case(
            "OTLP JSON, asInt not a number",
            post(
                "/v1/metrics",
                seed3.replace("\"1\",", "\"one\",").as_bytes(),
            ),
            200,
            "the data point has no value",
        ),
        case(
            "OTLP JSON, a traceId that is not hex",
            post(
                "/v1/traces",
                br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#,
            ),
            400,
            "traceId",
        ),
        case(
            "OTLP JSON, a span without ids",
            post(
                "/v1/traces",
                br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x"}]}]}]}"#,
            ),
            200,
            "\"rejectedSpans\":\"1\"",
        ),
        case(
            "OTLP JSON, not JSON",
            post("/v1/logs", b"{"),
            400,
            "not an OTLP/JSON ExportLogsServiceRequest",
        ),
        case(
            "OTLP without a content type",
            request("POST", "/v1/logs", &[("Content-Type", "")], b"{}"),
            415,
            "need a Content-Type",
        ),
        case(
            "OTLP as text/plain",
            post_as("/v1/traces", "text/plain", b"{}"),
            415,
            "not OTLP/HTTP",
        ),
        // The envelope.
        case(
            "envelope, api_version 2",
            post("/api/v1/events", br#"{"api_version":"2.0","events":[]}"#),
            400,
            "is not supported",
        ),
        case(
            "envelope, events not an array",
            post("/api/v1/events", br#"{"api_version":"1.0","events":{}}"#),
            400,
            "`events` must be an array",
        ),
        case(
            "envelope, not an object",
            post("/api/v1/events", b"[]"),
            400,
            "the body must be an object",
        ),
        case(
            "envelope, no valid event",
            post(
                "/api/v1/events",
                br#"{"api_version":"1.0","events":[{"data":{}}]}"#,
            ),
            400,
            "field `type` is required",
        ),
        case(
            "envelope as NDJSON",
            post_as("/api/v1/events", "application/x-ndjson", b"{}\n"),
            415,
            "one JSON document",
        ),
    ]
}

#[test]
fn every_bad_request_gets_its_4xx_and_the_gateway_stays_healthy() {
    let gw = Gateway::start_with(Options {
        extra_config: format!(
            "{LIMITS}max_events_per_request = 100\n[auth]\ntokens = [\"suite:{TOKEN}\"]\n"
        ),
        ..Default::default()
    });
    let cases = cases();
    assert!(cases.len() >= 60, "{}", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let answer = raw(&gw, &c.bytes, Duration::from_secs(10));
        let status: u16 = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        if status != c.status || !body.contains(c.needle) {
            failures.push(format!(
                "{}: expected {} with {:?}, got {status}: {}",
                c.name,
                c.status,
                c.needle,
                &answer[..answer.len().min(600)]
            ));
        }
        healthy(&gw);
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // A slow head is cut off while /health answers.
    let mut slow = std::net::TcpStream::connect(addr(&gw)).unwrap();
    slow.write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    for _ in 0..3 {
        healthy(&gw);
        std::thread::sleep(Duration::from_millis(200));
    }
    // A mixed batch: the good events are stored, the bad ones named.
    let (s, a, _) = gw.post_raw(
        "/v1/events",
        Some("application/json"),
        None,
        json!([event(1), {"event_type": 5}, event(2), {"event_type": "x", "s": "x".repeat(2000)}])
            .to_string()
            .into_bytes(),
    );
    assert_eq!(s, 401, "the helper sends no token: {a}");
    let r = gw
        .http
        .post(format!("{}/v1/events", gw.url))
        .header("x-api-key", TOKEN)
        .header("content-type", "application/json")
        .body(
            json!([event(1), {"event_type": 5}, event(2), {"event_type": "x", "s": "x".repeat(2000)}])
                .to_string(),
        )
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let a: serde_json::Value = r.json().unwrap();
    assert_eq!(
        (a["accepted"].as_u64(), a["invalid"].as_u64()),
        (Some(2), Some(2)),
        "{a}"
    );
    let stored = gw.lines("events");
    let ns: Vec<u64> = stored.iter().filter_map(|e| e["n"].as_u64()).collect();
    assert_eq!(
        ns,
        [1, 2],
        "only the mixed batch's good events were stored: {stored:?}"
    );
    assert!(stored.iter().all(|e| e["_client"] == "suite"));
}
