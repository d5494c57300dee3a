//! Property tests over the ingest parsers: arbitrary bytes, arbitrary JSON
//! and mutated real requests never panic, and every refusal says something.
//! `WRAITH_FUZZ_CASES=100000 cargo test -p wraith-gateway --lib ingest::fuzz`
//! runs them for longer than the default 300 cases each.

use super::decode::{self, Refused};
use super::otlp::{self, Encoding, Signal};
use super::{limits, seeds};
use axum::http::{HeaderMap, HeaderValue, header};
use proptest::prelude::*;
use serde_json::Value;
use time::OffsetDateTime;

fn cases() -> u32 {
    std::env::var("WRAITH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

fn headers(ct: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
    h
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("event_type"),
            Just("ts_ms"),
            Just("target"),
            Just("type"),
            Just("data")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("event_type".to_string()),
                        Just("events".to_string()),
                        Just("ts_ms".to_string()),
                        Just("target".to_string()),
                        Just("type".to_string()),
                        Just("data".to_string()),
                        Just("client".to_string()),
                        Just("api_version".to_string()),
                        Just("timestamp".to_string()),
                        Just("level".to_string()),
                        "[a-z_]{1,8}",
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Every refusal carries a message.
fn said(items: &[Result<Value, Refused>]) {
    for i in items {
        if let Err(r) = i {
            assert!(!r.message.is_empty());
        }
    }
}

fn everything(body: &[u8]) {
    for ct in ["application/json", "application/x-ndjson"] {
        match decode::parse_batch(&headers(ct), body) {
            Ok(items) => {
                said(&items);
                for v in items.into_iter().flatten() {
                    let v = if seeds::is_probe(&v) {
                        seeds::probe(v)
                    } else {
                        v
                    };
                    let _ = limits::check_event(&v, &limits::EventLimits::default());
                    let _ = wraith_event::validate::normalize(v, OffsetDateTime::UNIX_EPOCH);
                }
            }
            Err(e) => assert!(!e.message.is_empty()),
        }
        match decode::parse_single(&headers(ct), body) {
            Ok(items) => said(&items),
            Err(e) => assert!(!e.message.is_empty()),
        }
    }
    if let Ok(v) = decode::parse_json_body(&headers("application/json"), body) {
        match seeds::envelope(v) {
            Ok(env) => said(&env.items),
            Err(e) => assert!(!e.message.is_empty()),
        }
    }
    for signal in [Signal::Metrics, Signal::Logs, Signal::Traces] {
        for enc in [Encoding::Json, Encoding::Protobuf] {
            match otlp::to_events(signal, enc, body) {
                Ok(items) => {
                    said(&items);
                    for v in items.into_iter().flatten() {
                        // What OTLP makes is always a valid event shape.
                        assert!(v["event_type"].is_string());
                    }
                }
                Err(m) => assert!(!m.is_empty()),
            }
        }
    }
}

/// A real request of each kind, to mutate.
fn seeds_bodies() -> Vec<Vec<u8>> {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use prost::Message as _;
    let seed_003 = r#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"trix-cli"}}]},"scopeMetrics":[{"scope":{},"metrics":[{"name":"trix_command_invocation","sum":{"dataPoints":[{"attributes":[{"key":"command_name","value":{"stringValue":"build"}}],"startTimeUnixNano":"1640995200000000000","timeUnixNano":"1640995200000000000","asInt":"1"}],"aggregationTemporality":2,"isMonotonic":true}}]}]}]}"#;
    let req: ExportMetricsServiceRequest = serde_json::from_str(seed_003).unwrap();
    vec![
        seed_003.as_bytes().to_vec(),
        req.encode_to_vec(),
        br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"x","startTimeUnixNano":"1","endTimeUnixNano":"2","attributes":[{"key":"a","value":{"arrayValue":{"values":[{"intValue":"1"}]}}}]}]}]}]}"#.to_vec(),
        br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1","severityNumber":9,"body":{"kvlistValue":{"values":[{"key":"k","value":{"bytesValue":"aGk="}}]}}}]}]}]}"#.to_vec(),
        br#"{"api_version":"1.0","events":[{"type":"execution","data":{"exit_code":0}}],"client":{"version":"0.0.1"}}"#.to_vec(),
        br#"[{"event_id":"uuid","client_id":"probe-1","target":"https://example.com","ts_ms":1705330425000,"total_ms":156.7,"error_stage":null}]"#.to_vec(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        everything(&body);
    }

    #[test]
    fn arbitrary_json(v in json_value()) {
        everything(v.to_string().as_bytes());
    }

    #[test]
    fn mutated_requests(
        which in 0usize..6,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut body = seeds_bodies()[which].clone();
        for (at, byte, op) in edits {
            if body.is_empty() {
                body.push(byte);
                continue;
            }
            let i = at.index(body.len());
            match op {
                0 => body[i] = byte,
                1 => body.insert(i, byte),
                _ => {
                    body.remove(i);
                }
            }
        }
        everything(&body);
    }
}
