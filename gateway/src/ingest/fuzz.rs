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

/// A value of one of the top-level fields ingest checks or completes, as
/// JSON text: valid forms, forms it rewrites, and forms it refuses.
fn special_field() -> impl Strategy<Value = (String, String)> {
    let pick = |key: &'static str, values: &'static [&'static str]| {
        prop::sample::select(values).prop_map(move |v| (key.to_string(), v.to_string()))
    };
    prop_oneof![
        pick(
            "event_type",
            &["\"t\"", "\"tool_invoked\"", "\"\"", "3", "null", "{}"]
        ),
        pick(
            "event_id",
            &[
                "\"6F9619FF-8B86-D011-B42D-00CF4FC964FF\"",
                "\"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\"",
                "\"{0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b}\"",
                "\"nope\"",
                "null",
                "7",
                "{}"
            ]
        ),
        pick(
            "timestamp",
            &[
                "\"2024-01-02T03:04:05+02:00\"",
                "\"2024-01-02T03:04:05.120Z\"",
                "\"2024-01-02T03:04:05Z\"",
                "1700000000123",
                "-5",
                "1.5",
                "18446744073709551615",
                "null",
                "\"yesterday\"",
                "[]"
            ]
        ),
        pick(
            "level",
            &[
                "\"WARN\"",
                "\"warn\"",
                "\"Error\"",
                "\"info\"",
                "\"loud\"",
                "null",
                "1"
            ]
        ),
        pick("tool", &["\"x\"", "null", "5", "{}"]),
        pick("command", &["\"build\"", "null", "[\"a\"]"]),
        pick("error_type", &["\"E\"", "false"]),
        pick(
            "duration_ms",
            &[
                "12", "12.5", "-1", "-0.0", "0", "1e3", "null", "\"5\"", "{}"
            ]
        ),
        pick(
            "context",
            &[
                "{}",
                "{\"a\":1}",
                "{\"a\":{\"b\":[1,{}]}}",
                "null",
                "[]",
                "[1]",
                "\"x\"",
                "{\"\":1}",
                "{\"a\":1,\"a\":2}"
            ]
        ),
        pick("_client", &["\"forged\"", "null"]),
    ]
}

/// Any other member: a key (escapes, dots, an empty one, repeats) and a value.
fn other_field() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![
            prop::sample::select(&["a", "b", "a.b", "x[0]", "", "é", "q\"k", "tab\tk"][..])
                .prop_map(str::to_string),
            "[a-z]{1,12}",
        ],
        json_value(),
    )
        .prop_map(|(k, v)| (serde_json::to_string(&k).unwrap(), v.to_string()))
}

/// One event as JSON text, members in the order given (repeats kept).
fn event_text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(
            prop_oneof![
                special_field().prop_map(|(k, v)| (serde_json::to_string(&k).unwrap(), v)),
                other_field()
            ],
            0..7,
        ),
        prop::bool::weighted(0.9),
        any::<prop::sample::Index>(),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(mut members, typed, at, odd)| {
            if typed {
                let i = at.index(members.len() + 1);
                members.insert(i, ("\"event_type\"".into(), "\"t\"".into()));
            }
            if odd {
                // Not an object at all.
                return "[1]".to_string();
            }
            let inner: Vec<String> = members.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            format!("{{{}}}", inner.join(","))
        })
}

/// A body of such events: a JSON array, or NDJSON (blank lines, CRLF).
fn body_text() -> impl Strategy<Value = (bool, String, Vec<String>)> {
    (any::<bool>(), prop::collection::vec(event_text(), 0..6)).prop_map(|(nd, events)| {
        let body = if nd {
            events
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    if i % 3 == 2 {
                        format!("\r\n{e}\r\n")
                    } else {
                        format!("{e}\n")
                    }
                })
                .collect()
        } else {
            format!("[ {} ]", events.join(",\n"))
        };
        (nd, body, events)
    })
}

/// The limits: the defaults, or small ones that events run into.
fn some_limits() -> impl Strategy<Value = super::IngestLimits> {
    prop_oneof![
        Just(super::IngestLimits::default()),
        (1usize..5, 1usize..30, 1usize..20, 1usize..6).prop_map(
            |(depth, string, values, events)| {
                super::IngestLimits {
                    max_events: events,
                    event: limits::EventLimits {
                        max_depth: depth,
                        max_string: string,
                        max_values: values,
                    },
                    ..super::IngestLimits::default()
                }
            }
        ),
    ]
}

/// Whether an event's text repeats a key in one object, or sends the
/// client field (what the fast route leaves to the general one).
fn unusual(event: &Value, text: &str) -> bool {
    fn repeats(text: &str) -> bool {
        // Count members per object by reading the text's own structure.
        struct Check(bool);
        impl<'de> serde::de::Visitor<'de> for &mut Check {
            type Value = ();
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
                let mut seen = std::collections::HashSet::new();
                while let Some(k) = m.next_key::<String>()? {
                    if !seen.insert(k) {
                        self.0 = true;
                    }
                    m.next_value_seed(&mut *self)?;
                }
                Ok(())
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<(), A::Error> {
                while s.next_element_seed(&mut *self)?.is_some() {}
                Ok(())
            }
            fn visit_bool<E>(self, _: bool) -> Result<(), E> {
                Ok(())
            }
            fn visit_i64<E>(self, _: i64) -> Result<(), E> {
                Ok(())
            }
            fn visit_u64<E>(self, _: u64) -> Result<(), E> {
                Ok(())
            }
            fn visit_f64<E>(self, _: f64) -> Result<(), E> {
                Ok(())
            }
            fn visit_str<E>(self, _: &str) -> Result<(), E> {
                Ok(())
            }
            fn visit_unit<E>(self) -> Result<(), E> {
                Ok(())
            }
        }
        impl<'de> serde::de::DeserializeSeed<'de> for &mut Check {
            type Value = ();
            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
                d.deserialize_any(self)
            }
        }
        let mut c = Check(false);
        let mut de = serde_json::Deserializer::from_str(text);
        serde::de::DeserializeSeed::deserialize(&mut c, &mut de).is_ok() && c.0
    }
    event.get(super::CLIENT_FIELD).is_some() || repeats(text)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases().max(2000), failure_persistence: None, ..ProptestConfig::default() })]

    /// The fast route (a body straight into the flat layout) gives leaf for
    /// leaf what the general route (values, checks, defaults, the encoder)
    /// gives, or leaves the body to it; and it leaves to it only bodies
    /// that need it: a refused event, a repeated key, the client field,
    /// too many events, nothing at all.
    #[test]
    fn the_fast_route_is_the_general_route(
        (nd, body, texts) in body_text(),
        limits in some_limits(),
        client in prop::option::of(Just("suite")),
    ) {
        use wraith_event::flat::FlatBatch;
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let h = headers(if nd { "application/x-ndjson" } else { "application/json" });
        let fast = decode::parse_flat(&h, body.as_bytes(), &limits, client, now);
        // The general route, as ingest takes it.
        let items = decode::parse_batch(&h, body.as_bytes());
        let general: Option<Vec<Value>> = match &items {
            Ok(items) if !items.is_empty() && items.len() <= limits.max_events => items
                .iter()
                .cloned()
                .map(|i| i.and_then(|v| super::check_one(&limits.event, v, client, now)).ok())
                .collect(),
            _ => None,
        };
        match (&fast, general) {
            (Some(p), None) => prop_assert!(false, "the fast route took a body the general route refuses: {body}\n{p:?}"),
            (Some(p), Some(mut valid)) => {
                prop_assert_eq!(p.ids.len(), valid.len());
                for (i, v) in valid.iter_mut().enumerate() {
                    // A generated id is the one thing the routes do not share.
                    let id = uuid::Uuid::parse_str(&p.ids[i]).unwrap();
                    if v["event_id"] != Value::String(p.ids[i].clone()) {
                        prop_assert_eq!(id.get_version_num(), 7);
                        v["event_id"] = Value::String(p.ids[i].clone());
                    }
                }
                let expected = FlatBatch::encode(&valid);
                let (a, b) = (expected.view(), p.batch.view());
                prop_assert_eq!(a.len(), b.len());
                for i in 0..a.len() {
                    let (x, y): (Vec<_>, Vec<_>) = (a.event(i).leaves().collect(), b.event(i).leaves().collect());
                    prop_assert_eq!(x, y, "event {} of {}", i, body);
                }
            }
            (None, Some(valid)) => {
                // Left to the general route although every event is valid:
                // only for what the fast route does not read.
                let events: Vec<(Value, &String)> = texts
                    .iter()
                    .map(|t| (serde_json::from_str(t).unwrap(), t))
                    .collect();
                prop_assert_eq!(events.len(), valid.len());
                prop_assert!(
                    events.iter().any(|(v, t)| unusual(v, t)),
                    "the fast route left a plain body to the general route: {}", body
                );
            }
            (None, None) => {}
        }
    }
}
