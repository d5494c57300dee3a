use crate::support::*;
use serde_json::{Value, json};
use std::io::Write;

#[test]
fn accepts_every_body_shape_and_names_bad_events() {
    let gw = Gateway::start(&[("upper", "upper")]);
    // A JSON array with one bad event: the good ones are stored, the bad one named.
    let (status, answer) = gw.post_json(
        "/v1/events",
        &json!([event(1), {"event_type": "x", "level": "loud"}, event(2), "not an object"]),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["invalid"], 2);
    assert_eq!(answer["errors"][0]["index"], 1);
    assert_eq!(answer["errors"][0]["field"], "level");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("loud")
    );
    assert_eq!(answer["errors"][1]["index"], 3);
    assert!(answer["event_ids"][1].is_null());
    // {"events": [...]} on the alias.
    let (status, answer) = gw.post_json("/events", &json!({"events": [event(3)]}));
    assert_eq!((status, answer["accepted"].clone()), (200, json!(1)));
    // One event on /event.
    let (status, answer) = gw.post_json("/event", &event(4));
    assert_eq!((status, answer["accepted"].clone()), (200, json!(1)));
    // NDJSON with a broken line.
    let body = format!("{}\n{{broken\n\n{}\n", event(5), event(6));
    let (status, answer, _) = gw.post_raw(
        "/v1/events",
        Some("application/x-ndjson"),
        None,
        body.into_bytes(),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 2);
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("line 2"),
        "{answer}"
    );
    // gzip.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(json!([event(7), event(8)]).to_string().as_bytes())
        .unwrap();
    let (status, answer, _) = gw.post_raw(
        "/v1/events",
        Some("application/json"),
        Some("gzip"),
        gz.finish().unwrap(),
    );
    assert_eq!(
        (status, answer["accepted"].clone()),
        (200, json!(2)),
        "{answer}"
    );

    let stored = gw.lines("events");
    let ns: Vec<u64> = stored.iter().map(|e| e["n"].as_u64().unwrap()).collect();
    assert_eq!(ns, [1, 2, 3, 4, 5, 6, 7, 8]);
    for e in &stored {
        // Every stored event went through the chain and got an id and a time.
        assert!(e["command"].as_str().unwrap().starts_with("CMD-"), "{e}");
        uuid::Uuid::parse_str(e["event_id"].as_str().unwrap()).unwrap();
        assert!(e["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    // Ids in answers are the stored ids.
    assert!(
        stored
            .iter()
            .any(|e| e["event_id"] == answer["event_ids"][0])
    );
}

#[test]
fn bad_requests_get_specific_errors_and_the_gateway_stays_healthy() {
    let gw = Gateway::start_with(Options {
        plugins: vec![("upper", "upper")],
        extra_config: "[server]\nmax_body_size = \"64 KiB\"\nmax_events_per_request = 50\n".into(),
        ..Default::default()
    });
    let check = |status: u16, answer: &Value, want_status: u16, code: &str, needle: &str| {
        assert_eq!(status, want_status, "{answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        let msg = answer["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    };
    let (s, a, _) = gw.post_raw(
        "/v1/events",
        Some("application/json"),
        None,
        b"[{\"event_type\": ".to_vec(),
    );
    check(s, &a, 400, "invalid_json", "not valid JSON");
    let (s, a, _) = gw.post_raw("/v1/events", Some("application/json"), None, b"".to_vec());
    check(s, &a, 400, "empty_body", "empty");
    let (s, a, _) = gw.post_raw("/v1/events", Some("application/json"), None, b"[]".to_vec());
    check(s, &a, 400, "empty_batch", "no events");
    let (s, a, _) = gw.post_raw(
        "/v1/events",
        Some("application/x-www-form-urlencoded"),
        None,
        b"a=b".to_vec(),
    );
    check(s, &a, 415, "unsupported_media_type", "application/x-ndjson");
    let big = json!([{"event_type": "x", "blob": "y".repeat(70 * 1024)}]).to_string();
    let (s, a, _) = gw.post_raw(
        "/v1/events",
        Some("application/json"),
        None,
        big.into_bytes(),
    );
    check(s, &a, 413, "too_large", "65536 bytes");
    // A small gzip body that inflates past the limit is refused too.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(
        json!([{"event_type": "x", "blob": "y".repeat(1 << 20)}])
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let (s, a, _) = gw.post_raw(
        "/v1/events",
        Some("application/json"),
        Some("gzip"),
        gz.finish().unwrap(),
    );
    check(s, &a, 413, "too_large", "after decompression");
    let (s, a, _) = gw.post_raw(
        "/v1/events",
        Some("application/json"),
        Some("gzip"),
        b"not gzip at all".to_vec(),
    );
    check(s, &a, 400, "unreadable_body", "gzip");
    let (s, a, _) = gw.post_raw(
        "/v1/events",
        Some("application/json"),
        Some("br"),
        b"[]".to_vec(),
    );
    check(s, &a, 415, "unsupported_encoding", "\"br\"");
    let r = gw.http.get(format!("{}/v1/events", gw.url)).send().unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    let a: Value = r.json().unwrap();
    check(
        405,
        &a,
        405,
        "method_not_allowed",
        "GET is not allowed on /v1/events",
    );
    let many: Vec<Value> = (0..51).map(event).collect();
    let (s, a) = gw.post_json("/v1/events", &json!(many));
    check(s, &a, 413, "too_large", "at most 50");
    let (s, a) = gw.post_json("/event", &json!([event(1)]));
    check(s, &a, 400, "bad_body", "one event object");
    let (s, a) = gw.post_json("/v1/events", &json!({"events": 3}));
    check(s, &a, 400, "bad_body", "`events` must be an array");
    // Every event invalid: 400 with the per-event errors.
    let (s, a) = gw.post_json(
        "/v1/events",
        &json!([{"event_id": "nope", "event_type": "x"}]),
    );
    assert_eq!(s, 400);
    assert_eq!(a["errors"][0]["field"], "event_id");
    let (s, a) = gw.post_json("/nowhere", &json!({}));
    check(s, &a, 404, "not_found", "/v1/events");
    // Still healthy, still storing.
    assert_eq!(gw.get_json("/health")["status"], "ok");
    assert_eq!(gw.get_json("/ready")["status"], "ready");
    let (s, a) = gw.post_json("/v1/events", &json!([event(1)]));
    assert_eq!((s, a["accepted"].clone()), (200, json!(1)));
    assert_eq!(gw.lines("events").len(), 1);
    let metrics = gw.get_text("/metrics");
    assert!(
        metrics.contains("wraith_http_requests_total{route=\"/v1/events\",status=\"413\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wraith_events_invalid_total 1"),
        "{metrics}"
    );
}

#[test]
fn verdicts_route_drop_and_dead_letter() {
    let gw = Gateway::start(&[("verdicts", "verdicts")]);
    let (status, answer) = gw.post_json(
        "/v1/events",
        &json!([
            event(1),
            {"event_type": "x", "level": "debug"},
            {"event_type": "x", "reject_reason": "missing tool"},
            {"event_type": "x", "route_to": "audit"},
            {"event_type": "x", "route_to": "Not A Name"},
        ]),
    );
    assert_eq!(status, 200, "{answer}");
    // The bad route name is a malformed answer: the whole batch is
    // dead-lettered (fail closed), nothing reaches the store.
    assert_eq!(answer["accepted"], 0, "{answer}");
    assert_eq!(answer["dead_lettered"], 5);
    let dlq = gw.lines("dlq");
    assert_eq!(dlq.len(), 5);
    assert_eq!(dlq[0]["dlq"]["kind"], "faulted");
    assert!(
        dlq[0]["dlq"]["reason"]
            .as_str()
            .unwrap()
            .contains("malformed answer: route to \"Not A Name\"")
    );
    assert!(gw.lines("events").is_empty());

    let (status, answer) = gw.post_json(
        "/v1/events",
        &json!([event(1), {"event_type": "x", "level": "debug"}, {"event_type": "x", "reject_reason": "missing tool"}, {"event_type": "x", "route_to": "audit"}]),
    );
    assert_eq!(status, 200);
    assert_eq!(
        (
            answer["accepted"].as_u64(),
            answer["dropped"].as_u64(),
            answer["dead_lettered"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(gw.lines("events").len(), 1);
    assert_eq!(gw.lines("audit")[0]["route_to"], "audit");
    let dlq = gw.lines("dlq");
    let last = dlq.last().unwrap();
    assert_eq!(last["dlq"]["kind"], "rejected");
    assert_eq!(last["dlq"]["plugin"], "verdicts");
    assert_eq!(last["dlq"]["reason"], "missing tool");
    assert_eq!(last["event"]["reject_reason"], "missing tool");
    let p = gw.plugin("verdicts").unwrap();
    assert_eq!(
        (p["dropped"].as_u64(), p["rejected"].as_u64()),
        (Some(1), Some(1))
    );
    // The plugin listing says which file, which bytes, since when.
    let file = gw.plugins_dir().join("verdicts.wasm");
    assert_eq!(p["file"], file.display().to_string(), "{p}");
    let sha = {
        use sha2::Digest;
        sha2::Sha256::digest(std::fs::read(&file).unwrap())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(p["sha256"], sha, "{p}");
    let loaded_at = p["loaded_at"].as_str().unwrap();
    assert!(
        loaded_at.starts_with("20") && loaded_at.ends_with('Z') && loaded_at.contains('T'),
        "loaded_at is not an RFC 3339 UTC time: {loaded_at}"
    );
    assert_eq!(p["state"], "active");

    // Every count of both requests in /metrics: 9 events in, 5 faulted in
    // the first batch; 1 dropped, 1 rejected, 2 kept in the second.
    gw.assert_metrics(&[
        "wraith_events_received_total 9",
        "wraith_events_accepted_total 2",
        "wraith_events_dropped_total 1",
        "wraith_events_dead_lettered_total 6",
        "wraith_plugin_events_total{plugin=\"verdicts\",outcome=\"in\"} 9",
        "wraith_plugin_events_total{plugin=\"verdicts\",outcome=\"faulted\"} 5",
        "wraith_plugin_events_total{plugin=\"verdicts\",outcome=\"kept\"} 2",
        "wraith_plugin_events_total{plugin=\"verdicts\",outcome=\"dropped\"} 1",
        "wraith_plugin_events_total{plugin=\"verdicts\",outcome=\"rejected\"} 1",
        "wraith_plugin_call_seconds_count{plugin=\"verdicts\"} 2",
        "wraith_plugin_faults_total{plugin=\"verdicts\",reason=\"malformed\"} 1",
        "wraith_chain_plugins 1",
    ]);
}

#[test]
fn the_default_body_limit_is_five_mib() {
    // No `server.max_body_size` in this gateway's config: the default holds
    // (one string may be that long here).
    let gw = Gateway::start_with(Options {
        extra_config: "[limits]\nmax_string_length = \"8 MiB\"\n".into(),
        ..Default::default()
    });
    let limit = 5 * 1024 * 1024;
    let mut over = Vec::with_capacity(limit + 16);
    over.extend_from_slice(b"[{\"event_type\":\"t\",\"pad\":\"");
    over.resize(limit + 1 - 3, b'x');
    over.extend_from_slice(b"\"}]");
    assert_eq!(over.len(), limit + 1);
    let (s, a, _) = gw.post_raw("/v1/events", Some("application/json"), None, over);
    assert_eq!(s, 413, "{a}");
    assert_eq!(a["error"]["code"], "too_large", "{a}");
    assert!(
        a["error"]["message"]
            .as_str()
            .unwrap()
            .contains("5.0 MiB (5242880 bytes"),
        "the limit is named: {a}"
    );
    // One byte less is a valid request.
    let mut at = Vec::with_capacity(limit);
    at.extend_from_slice(b"[{\"event_type\":\"t\",\"pad\":\"");
    at.resize(limit - 3, b'x');
    at.extend_from_slice(b"\"}]");
    let (s, a, _) = gw.post_raw("/v1/events", Some("application/json"), None, at);
    assert_eq!((s, a["accepted"].as_u64()), (200, Some(1)), "{a}");
}

/// A body larger than the chain's batch (`plugins.max_batch`) runs as
/// several batches; on the fast route (an array or NDJSON of valid events
/// read straight into the flat layout) as on the general one, every event
/// is stored once, in order, edited, with the id the answer gave it.
#[test]
fn bodies_larger_than_a_batch_are_stored_whole_and_in_order() {
    let gw = Gateway::start_with(Options {
        plugins: vec![("upper", "upper")],
        extra_config: "max_batch = 7".into(),
        ..Default::default()
    });
    let events: Vec<Value> = (0..30).map(event).collect();
    let (status, answer) = gw.post_json("/v1/events", &Value::Array(events.clone()));
    assert_eq!(
        (status, answer["accepted"].clone()),
        (200, json!(30)),
        "{answer}"
    );
    let ndjson: String = (30..60).map(|n| format!("{}\n", event(n))).collect();
    let (status, second, _) = gw.post_raw(
        "/v1/events",
        Some("application/x-ndjson"),
        None,
        ndjson.into_bytes(),
    );
    assert_eq!(
        (status, second["accepted"].clone()),
        (200, json!(30)),
        "{second}"
    );
    // The general route (one refused event) on the same chain.
    let mut mixed: Vec<Value> = (60..75).map(event).collect();
    mixed.insert(3, json!({"event_type": ""}));
    let (status, third) = gw.post_json("/v1/events", &Value::Array(mixed));
    assert_eq!(
        (status, third["accepted"].clone()),
        (200, json!(15)),
        "{third}"
    );
    let lines = gw.lines("events");
    assert_eq!(lines.len(), 75);
    let mut ids: Vec<Value> = Vec::new();
    for answer in [&answer, &second, &third] {
        ids.extend(
            answer["event_ids"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| !i.is_null())
                .cloned(),
        );
    }
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(line["n"], json!(n), "{line}");
        assert_eq!(line["command"], json!(format!("CMD-{n}")), "{line}");
        assert_eq!(line["event_id"], ids[n], "{line}");
        assert_eq!(line["level"], "info");
    }
}
