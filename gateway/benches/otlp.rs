//! OTLP ingest against the Wraith JSON path, in one run: `wrk` posts the
//! same realistic events (see `support/`) to the real binary with the empty
//! chain, as
//!
//! - Wraith JSON arrays at `/v1/events` (the baseline);
//! - OTLP/HTTP logs at `/v1/logs`, protobuf (`application/x-protobuf`);
//! - OTLP/HTTP logs at `/v1/logs`, JSON (the OTLP/JSON mapping).
//!
//! Each event becomes one log record: the message as the body, every other
//! field as an attribute (nested objects as key-value lists), `tool` as the
//! resource's `service.name`; each request holds the same number of events
//! on every path. Reported: events/s, the ratio to the Wraith JSON path,
//! bytes per event on the wire, and peak RSS.
//!
//! `cargo xtask bench --bench otlp`. Settings: `WRAITH_BENCH_SECS`
//! (default 5), `WRAITH_BENCH_CLIENTS` (default 8), `WRAITH_BENCH_BATCH`
//! (events per request, default 100), `WRAITH_WRK`.

mod support;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use serde_json::Value;
use std::path::PathBuf;
use support::wrk::{env_or, rss_mib, start};

fn any(v: &Value) -> AnyValue {
    let value = match v {
        Value::Null => None,
        Value::Bool(b) => Some(any_value::Value::BoolValue(*b)),
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64().unwrap_or(0.0)),
        }),
        Value::String(s) => Some(any_value::Value::StringValue(s.clone())),
        Value::Array(a) => Some(any_value::Value::ArrayValue(ArrayValue {
            values: a.iter().map(any).collect(),
        })),
        Value::Object(m) => Some(any_value::Value::KvlistValue(KeyValueList {
            values: m
                .iter()
                .map(|(k, v)| KeyValue {
                    key: k.clone(),
                    value: Some(any(v)),
                    ..Default::default()
                })
                .collect(),
        })),
    };
    AnyValue { value }
}

/// The events as one OTLP logs request (one resource per tool).
fn logs_request(events: &[Value]) -> ExportLogsServiceRequest {
    let mut by_tool: Vec<(String, Vec<LogRecord>)> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let tool = e["tool"].as_str().unwrap_or("unknown").to_string();
        let attributes = e
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "tool" | "message"))
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: Some(any(v)),
                ..Default::default()
            })
            .collect();
        let record = LogRecord {
            time_unix_nano: 1_767_225_600_000_000_000 + i as u64 * 1_000_000,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(any(&e["message"])),
            attributes,
            ..Default::default()
        };
        match by_tool.iter_mut().find(|(t, _)| *t == tool) {
            Some((_, r)) => r.push(record),
            None => by_tool.push((tool, vec![record])),
        }
    }
    ExportLogsServiceRequest {
        resource_logs: by_tool
            .into_iter()
            .map(|(tool, log_records)| ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(any(&Value::String(tool))),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

fn main() {
    let secs = env_or("WRAITH_BENCH_SECS", 5);
    let clients = env_or("WRAITH_BENCH_CLIENTS", 8);
    let batch = env_or("WRAITH_BENCH_BATCH", 100) as usize;
    let wrk = support::wrk::wrk_binary();
    let work = tempfile::tempdir().unwrap();
    let batches: Vec<Vec<Value>> = (0..8).map(|k| support::events(k * batch, batch)).collect();
    let wraith: Vec<Vec<u8>> = batches
        .iter()
        .map(|b| serde_json::to_vec(b).unwrap())
        .collect();
    let proto: Vec<Vec<u8>> = batches
        .iter()
        .map(|b| logs_request(b).encode_to_vec())
        .collect();
    let json: Vec<Vec<u8>> = batches
        .iter()
        .map(|b| serde_json::to_vec(&logs_request(b)).unwrap())
        .collect();
    let paths = [
        (
            "Wraith JSON /v1/events",
            "/v1/events",
            "application/json",
            &wraith,
        ),
        (
            "OTLP protobuf /v1/logs",
            "/v1/logs",
            "application/x-protobuf",
            &proto,
        ),
        ("OTLP JSON /v1/logs", "/v1/logs", "application/json", &json),
    ];
    println!(
        "OTLP ingest benchmark: wrk, {clients} connections, {batch} events per request, {secs} s each, the empty chain, fsync off"
    );
    println!(
        "\n{:<24} {:>12} {:>10} {:>12} {:>10}",
        "path", "events/s", "vs JSON", "bytes/event", "peak RSS"
    );
    let gateway = PathBuf::from(env!("CARGO_BIN_EXE_gateway"));
    let mut baseline = None;
    for (label, path, content_type, bodies) in paths {
        let script = support::wrk::script(
            work.path(),
            &label.replace([' ', '/'], "-"),
            bodies,
            content_type,
        );
        let root = tempfile::tempdir().unwrap();
        let plugins = root.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        let config = root.path().join("gateway.toml");
        std::fs::write(&config, "[sinks.file]\nfsync = false\n").unwrap();
        let (mut child, base) = start(&gateway, root.path(), &plugins, &config);
        let (requests, seconds) = support::wrk::run(
            &wrk,
            &script,
            &format!("{base}{path}"),
            clients,
            secs,
            label,
        );
        let peak = rss_mib(child.id(), "VmHWM:");
        let _ = child.kill();
        let _ = child.wait();
        // Every request's events were stored: the bench measures ingest, not refusals.
        let stored: usize = std::fs::read_dir(root.path().join("data/events"))
            .unwrap()
            .map(|f| {
                std::fs::read_to_string(f.unwrap().path())
                    .unwrap()
                    .lines()
                    .count()
            })
            .sum();
        assert!(
            stored as f64 >= requests * batch as f64 * 0.99,
            "{label}: {stored} events stored for {requests} requests"
        );
        let rate = requests * batch as f64 / seconds;
        let base_rate = *baseline.get_or_insert(rate);
        let bytes =
            bodies.iter().map(Vec::len).sum::<usize>() as f64 / (bodies.len() * batch) as f64;
        println!(
            "{label:<24} {rate:>12.0} {:>9.2}x {bytes:>12.0} {peak:>6.0} MiB",
            rate / base_rate
        );
    }
}
