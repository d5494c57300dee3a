//! OTLP/HTTP: `/v1/metrics`, `/v1/logs` and `/v1/traces`, protobuf and
//! JSON, decoded with the generated types of `opentelemetry-proto` (its
//! serde impls follow the OTLP/JSON mapping: lowerCamelCase names, 64-bit
//! integers as strings or numbers, hex trace and span ids).
//!
//! Every metric data point, log record and span becomes one event (the
//! mapping is written down in the README, "OpenTelemetry (OTLP/HTTP)"):
//!
//! - `event_type`: `metric`, `span`, and for logs the record's `event_name`
//!   when it has one, else `log`;
//! - `timestamp`: the point's `time_unix_nano`, the record's (or else its
//!   observed time), the span's start; `level` from the log severity or the
//!   span status;
//! - `name`: the metric or span name; `attributes`: the point's, record's
//!   or span's attributes as one object;
//! - `context.resource` and `context.scope`: the resource attributes and the
//!   instrumentation scope; `tool`: the resource's `service.name`.
//!
//! Answers follow the spec: 200 with an `Export*ServiceResponse` (with
//! `partial_success` naming how many items were refused and why) in the
//! request's encoding; 400 with a `google.rpc.Status` for a body that does
//! not decode; 503 with `Retry-After` when the gateway cannot take data
//! (exporters retry those).

use super::decode::Refused;
use super::{ApiError, AppState, Client, ingest_events};
use crate::sinks::BatchMeta;
use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{Metric, NumberDataPoint, metric, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{Span, span, status};
use prost::Message as _;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The three OTLP signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Metrics,
    Logs,
    Traces,
}

impl Signal {
    fn request_name(self) -> &'static str {
        match self {
            Signal::Metrics => "ExportMetricsServiceRequest",
            Signal::Logs => "ExportLogsServiceRequest",
            Signal::Traces => "ExportTraceServiceRequest",
        }
    }

    /// The `partial_success` counter's name in the JSON mapping.
    fn rejected_field(self) -> &'static str {
        match self {
            Signal::Metrics => "rejectedDataPoints",
            Signal::Logs => "rejectedLogRecords",
            Signal::Traces => "rejectedSpans",
        }
    }

    fn items(self) -> &'static str {
        match self {
            Signal::Metrics => "data points",
            Signal::Logs => "log records",
            Signal::Traces => "spans",
        }
    }
}

/// The two OTLP/HTTP encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn of(headers: &HeaderMap) -> Result<Encoding, String> {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        match ct.split(';').next().unwrap_or("").trim() {
            "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
            "application/json" => Ok(Encoding::Json),
            "" => Err("OTLP/HTTP requests need a Content-Type: application/x-protobuf or application/json".into()),
            other => Err(format!(
                "content type {other:?} is not OTLP/HTTP; send application/x-protobuf or application/json"
            )),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// `google.rpc.Status`, the body of every OTLP error answer (`code` and
/// `message`; `details` is never sent).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// An OTLP error answer: the HTTP status and a `Status` body in the
/// request's encoding (JSON when the encoding is unknown).
pub fn status_response(http: StatusCode, message: String, encoding: Encoding) -> Response {
    // gRPC codes, for the record only (clients act on the HTTP status).
    let code = match http.as_u16() {
        400 | 413 | 415 => 3, // INVALID_ARGUMENT
        401 => 16,            // UNAUTHENTICATED
        429 => 8,             // RESOURCE_EXHAUSTED
        503 => 14,            // UNAVAILABLE
        _ => 13,              // INTERNAL
    };
    let body = match encoding {
        Encoding::Protobuf => Status { code, message }.encode_to_vec(),
        Encoding::Json => json!({"code": code, "message": message})
            .to_string()
            .into_bytes(),
    };
    (
        http,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}

fn api_error_response(e: ApiError, encoding: Encoding) -> Response {
    let retry = e.status == StatusCode::SERVICE_UNAVAILABLE;
    if e.status.is_server_error() && e.code != "busy" && e.code != "unavailable" {
        tracing::error!(status = e.status.as_u16(), code = e.code, error = %e.message, "request failed");
    }
    let close = matches!(
        e.status,
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
    );
    let mut resp = status_response(e.status, e.message, encoding);
    if close {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if retry {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    resp
}

pub async fn metrics(
    state: State<Arc<AppState>>,
    client: Option<Extension<Client>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    export(state, client, headers, body, Signal::Metrics).await
}

pub async fn logs(
    state: State<Arc<AppState>>,
    client: Option<Extension<Client>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    export(state, client, headers, body, Signal::Logs).await
}

pub async fn traces(
    state: State<Arc<AppState>>,
    client: Option<Extension<Client>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    export(state, client, headers, body, Signal::Traces).await
}

async fn export(
    State(state): State<Arc<AppState>>,
    client: Option<Extension<Client>>,
    headers: HeaderMap,
    body: Body,
    signal: Signal,
) -> Response {
    let encoding = match Encoding::of(&headers) {
        Ok(e) => e,
        Err(m) => return status_response(StatusCode::UNSUPPORTED_MEDIA_TYPE, m, Encoding::Json),
    };
    let bytes = match super::decode::read_body(body, &state.limits()).await {
        Ok(b) => b,
        Err(e) => return api_error_response(e, encoding),
    };
    let now = OffsetDateTime::now_utc();
    let items = match to_events(signal, encoding, &bytes) {
        Ok(items) => items,
        Err(m) => return status_response(StatusCode::BAD_REQUEST, m, encoding),
    };
    if items.is_empty() {
        return success(signal, encoding, 0, String::new());
    }
    let mut meta = BatchMeta::now("otlp");
    meta.received_at = now;
    meta.client = client.map(|Extension(Client(c))| c);
    let answer = match ingest_events(&state, items, meta).await {
        Ok(a) => a,
        Err(e) => return api_error_response(e, encoding),
    };
    let rejected = answer.invalid + answer.dead_lettered;
    let mut message = String::new();
    if let Some(first) = answer.errors.first() {
        message = format!(
            "{} of the {} {} were refused; the first (item {}): {}",
            answer.invalid,
            answer.event_ids.len(),
            signal.items(),
            first.index + 1,
            first.message
        );
    }
    if answer.dead_lettered > 0 {
        if !message.is_empty() {
            message.push_str("; ");
        }
        message.push_str(&format!(
            "{} were rejected by the gateway's plugin chain (kept in its dead-letter queue)",
            answer.dead_lettered
        ));
    }
    success(signal, encoding, rejected, message)
}

fn success(signal: Signal, encoding: Encoding, rejected: usize, message: String) -> Response {
    use opentelemetry_proto::tonic::collector::{logs, metrics, trace};
    let rejected_i64 = rejected as i64;
    let partial = rejected > 0 || !message.is_empty();
    let body = match encoding {
        Encoding::Protobuf => match signal {
            Signal::Metrics => metrics::v1::ExportMetricsServiceResponse {
                partial_success: partial.then_some(metrics::v1::ExportMetricsPartialSuccess {
                    rejected_data_points: rejected_i64,
                    error_message: message,
                }),
            }
            .encode_to_vec(),
            Signal::Logs => logs::v1::ExportLogsServiceResponse {
                partial_success: partial.then_some(logs::v1::ExportLogsPartialSuccess {
                    rejected_log_records: rejected_i64,
                    error_message: message,
                }),
            }
            .encode_to_vec(),
            Signal::Traces => trace::v1::ExportTraceServiceResponse {
                partial_success: partial.then_some(trace::v1::ExportTracePartialSuccess {
                    rejected_spans: rejected_i64,
                    error_message: message,
                }),
            }
            .encode_to_vec(),
        },
        Encoding::Json => {
            let v = if partial {
                json!({"partialSuccess": {signal.rejected_field(): rejected.to_string(), "errorMessage": message}})
            } else {
                json!({})
            };
            v.to_string().into_bytes()
        }
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}

/// Decode an OTLP request body into one candidate event per item; a body
/// that does not decode is an error naming what is wrong.
pub fn to_events(
    signal: Signal,
    encoding: Encoding,
    body: &[u8],
) -> Result<Vec<Result<Value, Refused>>, String> {
    fn decode<T: prost::Message + Default + serde::de::DeserializeOwned>(
        signal: Signal,
        encoding: Encoding,
        body: &[u8],
    ) -> Result<T, String> {
        match encoding {
            Encoding::Protobuf => T::decode(body)
                .map_err(|e| format!("the body is not a protobuf {}: {e}", signal.request_name())),
            Encoding::Json => {
                if body.iter().all(|b| b.is_ascii_whitespace()) {
                    return Err("the request body is empty".into());
                }
                let mut de = serde_json::Deserializer::from_slice(body);
                let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
                    let path = e.path().to_string();
                    let inner = e.into_inner();
                    if path.is_empty() || path == "." {
                        format!(
                            "the body is not an OTLP/JSON {}: {inner}",
                            signal.request_name()
                        )
                    } else {
                        format!(
                            "the body is not an OTLP/JSON {}: at `{path}`: {inner}",
                            signal.request_name()
                        )
                    }
                })?;
                de.end().map_err(|e| {
                    format!(
                        "the body is not an OTLP/JSON {}: {e}",
                        signal.request_name()
                    )
                })?;
                Ok(value)
            }
        }
    }
    Ok(match signal {
        Signal::Metrics => metric_events(decode(signal, encoding, body)?),
        Signal::Logs => log_events(decode(signal, encoding, body)?),
        Signal::Traces => span_events(decode(signal, encoding, body)?),
    })
}

/// An attribute value as JSON: integers as numbers, bytes as base64, a
/// key-value list as an object; NaN and the infinities, which JSON cannot
/// hold, as the strings OTLP/JSON uses for them.
pub fn any_to_json(v: &AnyValue) -> Value {
    match &v.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => float(*d),
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(any_to_json).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => Value::Object(attributes(&kv.values)),
        Some(any_value::Value::BytesValue(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        // An index into a profile's string table: meaningless outside
        // profiles, which this gateway does not take.
        Some(any_value::Value::StringValueStrindex(_)) => Value::Null,
    }
}

fn float(d: f64) -> Value {
    serde_json::Number::from_f64(d)
        .map(Value::Number)
        .unwrap_or_else(|| {
            Value::String(
                if d.is_nan() {
                    "NaN"
                } else if d > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                }
                .into(),
            )
        })
}

fn attributes(kvs: &[KeyValue]) -> Map<String, Value> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(any_to_json).unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// Nanoseconds since the epoch as RFC 3339 UTC; `None` for 0 (unset).
fn nanos(t: u64) -> Option<Value> {
    if t == 0 {
        return None;
    }
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .map(Value::String)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What every event of one resource and scope shares: `context.resource`,
/// `context.scope`, and `tool` from `service.name`.
struct Origin {
    context: Map<String, Value>,
    tool: Option<Value>,
}

fn origin(
    resource: Option<&Resource>,
    resource_schema: &str,
    scope: Option<&InstrumentationScope>,
) -> Origin {
    let mut context = Map::new();
    let mut tool = None;
    if let Some(r) = resource {
        let attrs = attributes(&r.attributes);
        if let Some(Value::String(s)) = attrs.get("service.name") {
            tool = Some(Value::String(s.clone()));
        }
        if !attrs.is_empty() {
            context.insert("resource".into(), Value::Object(attrs));
        }
    }
    if !resource_schema.is_empty() {
        context.insert("schema_url".into(), Value::String(resource_schema.into()));
    }
    if let Some(s) = scope {
        let mut m = Map::new();
        if !s.name.is_empty() {
            m.insert("name".into(), Value::String(s.name.clone()));
        }
        if !s.version.is_empty() {
            m.insert("version".into(), Value::String(s.version.clone()));
        }
        if !s.attributes.is_empty() {
            m.insert(
                "attributes".into(),
                Value::Object(attributes(&s.attributes)),
            );
        }
        if !m.is_empty() {
            context.insert("scope".into(), Value::Object(m));
        }
    }
    Origin { context, tool }
}

impl Origin {
    /// A new event of `event_type` carrying this origin.
    fn event(&self, event_type: &str) -> Map<String, Value> {
        let mut e = Map::new();
        e.insert("event_type".into(), Value::String(event_type.into()));
        if let Some(t) = &self.tool {
            e.insert("tool".into(), t.clone());
        }
        if !self.context.is_empty() {
            e.insert("context".into(), Value::Object(self.context.clone()));
        }
        e
    }
}

fn temporality(t: i32) -> &'static str {
    match t {
        1 => "delta",
        2 => "cumulative",
        _ => "unspecified",
    }
}

fn metric_events(req: ExportMetricsServiceRequest) -> Vec<Result<Value, Refused>> {
    let mut out = Vec::new();
    for rm in &req.resource_metrics {
        for sm in &rm.scope_metrics {
            let o = origin(rm.resource.as_ref(), &rm.schema_url, sm.scope.as_ref());
            for m in &sm.metrics {
                metric_points(&o, m, &mut out);
            }
        }
    }
    out
}

/// What kind of metric a point belongs to: `kind`, with the temporality
/// and monotonicity where the kind has them.
struct Kind {
    kind: &'static str,
    temporality: Option<i32>,
    monotonic: Option<bool>,
}

const fn kind(kind: &'static str, temporality: Option<i32>, monotonic: Option<bool>) -> Kind {
    Kind {
        kind,
        temporality,
        monotonic,
    }
}

/// The fields every point of one metric shares.
fn point_base(
    o: &Origin,
    m: &Metric,
    k: Kind,
    attrs: &[KeyValue],
    start: u64,
    time: u64,
) -> Map<String, Value> {
    let Kind {
        kind,
        temporality: temporality_code,
        monotonic,
    } = k;
    let mut e = o.event("metric");
    if let Some(ts) = nanos(time) {
        e.insert("timestamp".into(), ts);
    }
    e.insert("name".into(), Value::String(m.name.clone()));
    let mut info = Map::new();
    info.insert("kind".into(), Value::String(kind.into()));
    if let Some(t) = temporality_code {
        info.insert("temporality".into(), Value::String(temporality(t).into()));
    }
    if let Some(mono) = monotonic {
        info.insert("monotonic".into(), Value::Bool(mono));
    }
    if !m.unit.is_empty() {
        info.insert("unit".into(), Value::String(m.unit.clone()));
    }
    if !m.description.is_empty() {
        info.insert("description".into(), Value::String(m.description.clone()));
    }
    e.insert("metric".into(), Value::Object(info));
    if let Some(ts) = nanos(start) {
        e.insert("start_timestamp".into(), ts);
    }
    e.insert("attributes".into(), Value::Object(attributes(attrs)));
    e
}

/// A gauge or sum point's value. A point without one (or with one that did
/// not decode: the generated serde reads a bad `asInt` as absent) is refused.
fn number_value(p: &NumberDataPoint) -> Result<Value, Refused> {
    match p.value {
        Some(number_data_point::Value::AsInt(i)) => Ok(Value::from(i)),
        Some(number_data_point::Value::AsDouble(d)) => Ok(float(d)),
        None => Err(Refused {
            field: "value".into(),
            message: "the data point has no value: `asInt` (an integer or a decimal string) or `asDouble` (a number)".into(),
        }),
    }
}

fn opt_float(v: Option<f64>) -> Value {
    v.map(float).unwrap_or(Value::Null)
}

fn metric_points(o: &Origin, m: &Metric, out: &mut Vec<Result<Value, Refused>>) {
    let push = |out: &mut Vec<_>, e: Map<String, Value>| out.push(Ok(Value::Object(e)));
    match &m.data {
        None => {}
        Some(metric::Data::Gauge(g)) => {
            for p in &g.data_points {
                let mut e = point_base(
                    o,
                    m,
                    kind("gauge", None, None),
                    &p.attributes,
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                );
                match number_value(p) {
                    Ok(v) => {
                        e.insert("value".into(), v);
                        push(out, e);
                    }
                    Err(r) => out.push(Err(r)),
                }
            }
        }
        Some(metric::Data::Sum(s)) => {
            for p in &s.data_points {
                let mut e = point_base(
                    o,
                    m,
                    kind("sum", Some(s.aggregation_temporality), Some(s.is_monotonic)),
                    &p.attributes,
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                );
                match number_value(p) {
                    Ok(v) => {
                        e.insert("value".into(), v);
                        push(out, e);
                    }
                    Err(r) => out.push(Err(r)),
                }
            }
        }
        Some(metric::Data::Histogram(h)) => {
            for p in &h.data_points {
                let mut e = point_base(
                    o,
                    m,
                    kind("histogram", Some(h.aggregation_temporality), None),
                    &p.attributes,
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                );
                e.insert(
                    "histogram".into(),
                    json!({
                        "count": p.count,
                        "sum": opt_float(p.sum),
                        "min": opt_float(p.min),
                        "max": opt_float(p.max),
                        "bucket_counts": p.bucket_counts,
                        "explicit_bounds": p.explicit_bounds.iter().map(|b| float(*b)).collect::<Vec<_>>(),
                    }),
                );
                push(out, e);
            }
        }
        Some(metric::Data::ExponentialHistogram(h)) => {
            for p in &h.data_points {
                let mut e = point_base(
                    o,
                    m,
                    kind(
                        "exponential_histogram",
                        Some(h.aggregation_temporality),
                        None,
                    ),
                    &p.attributes,
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                );
                let buckets = |b: &Option<opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets>| {
                    b.as_ref()
                        .map(|b| json!({"offset": b.offset, "bucket_counts": b.bucket_counts}))
                        .unwrap_or(Value::Null)
                };
                e.insert(
                    "histogram".into(),
                    json!({
                        "count": p.count,
                        "sum": opt_float(p.sum),
                        "min": opt_float(p.min),
                        "max": opt_float(p.max),
                        "scale": p.scale,
                        "zero_count": p.zero_count,
                        "zero_threshold": float(p.zero_threshold),
                        "positive": buckets(&p.positive),
                        "negative": buckets(&p.negative),
                    }),
                );
                push(out, e);
            }
        }
        Some(metric::Data::Summary(s)) => {
            for p in &s.data_points {
                let mut e = point_base(
                    o,
                    m,
                    kind("summary", None, None),
                    &p.attributes,
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                );
                e.insert(
                    "summary".into(),
                    json!({
                        "count": p.count,
                        "sum": float(p.sum),
                        "quantiles": p.quantile_values.iter().map(|q| json!({"quantile": float(q.quantile), "value": float(q.value)})).collect::<Vec<_>>(),
                    }),
                );
                push(out, e);
            }
        }
    }
}

/// The Wraith level of an OTLP severity number (1–4 TRACE and 5–8 DEBUG
/// are `debug`, 9–12 `info`, 13–16 `warning`, 17–20 `error`, 21–24
/// `fatal`), else of the severity text, else `info`.
fn level(number: i32, text: &str) -> &'static str {
    match number {
        1..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warning",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => match text.to_ascii_lowercase().as_str() {
            "trace" | "debug" => "debug",
            "warn" | "warning" => "warning",
            "error" => "error",
            "critical" => "critical",
            "fatal" => "fatal",
            _ => "info",
        },
    }
}

fn check_id(bytes: &[u8], len: usize, field: &'static str) -> Result<Option<Value>, Refused> {
    match bytes.len() {
        0 => Ok(None),
        n if n == len => Ok(Some(Value::String(hex(bytes)))),
        n => Err(Refused {
            field: field.into(),
            message: format!("`{field}` is {n} bytes long; OTLP ids of this kind are {len} bytes"),
        }),
    }
}

fn log_events(req: ExportLogsServiceRequest) -> Vec<Result<Value, Refused>> {
    let mut out = Vec::new();
    for rl in &req.resource_logs {
        for sl in &rl.scope_logs {
            let o = origin(rl.resource.as_ref(), &rl.schema_url, sl.scope.as_ref());
            for r in &sl.log_records {
                out.push(log_event(&o, r));
            }
        }
    }
    out
}

fn log_event(o: &Origin, r: &LogRecord) -> Result<Value, Refused> {
    let event_type = if r.event_name.is_empty() {
        "log"
    } else {
        r.event_name.as_str()
    };
    let mut e = o.event(event_type);
    if let Some(ts) = nanos(r.time_unix_nano).or_else(|| nanos(r.observed_time_unix_nano)) {
        e.insert("timestamp".into(), ts);
    }
    if let Some(ts) = nanos(r.observed_time_unix_nano) {
        e.insert("observed_timestamp".into(), ts);
    }
    e.insert(
        "level".into(),
        Value::String(level(r.severity_number, &r.severity_text).into()),
    );
    if !r.severity_text.is_empty() {
        e.insert(
            "severity_text".into(),
            Value::String(r.severity_text.clone()),
        );
    }
    if r.severity_number != 0 {
        e.insert("severity_number".into(), Value::from(r.severity_number));
    }
    if let Some(b) = &r.body {
        e.insert("body".into(), any_to_json(b));
    }
    e.insert(
        "attributes".into(),
        Value::Object(attributes(&r.attributes)),
    );
    if let Some(id) = check_id(&r.trace_id, 16, "trace_id")? {
        e.insert("trace_id".into(), id);
    }
    if let Some(id) = check_id(&r.span_id, 8, "span_id")? {
        e.insert("span_id".into(), id);
    }
    Ok(Value::Object(e))
}

fn span_events(req: ExportTraceServiceRequest) -> Vec<Result<Value, Refused>> {
    let mut out = Vec::new();
    for rs in &req.resource_spans {
        for ss in &rs.scope_spans {
            let o = origin(rs.resource.as_ref(), &rs.schema_url, ss.scope.as_ref());
            for s in &ss.spans {
                out.push(span_event(&o, s));
            }
        }
    }
    out
}

fn span_kind(k: i32) -> &'static str {
    match span::SpanKind::try_from(k) {
        Ok(span::SpanKind::Internal) => "internal",
        Ok(span::SpanKind::Server) => "server",
        Ok(span::SpanKind::Client) => "client",
        Ok(span::SpanKind::Producer) => "producer",
        Ok(span::SpanKind::Consumer) => "consumer",
        _ => "unspecified",
    }
}

fn span_event(o: &Origin, s: &Span) -> Result<Value, Refused> {
    let mut e = o.event("span");
    if let Some(ts) = nanos(s.start_time_unix_nano) {
        e.insert("timestamp".into(), ts);
    }
    let (code, message) = s
        .status
        .as_ref()
        .map(|st| (st.code, st.message.clone()))
        .unwrap_or((0, String::new()));
    let code = match status::StatusCode::try_from(code) {
        Ok(status::StatusCode::Ok) => "ok",
        Ok(status::StatusCode::Error) => "error",
        _ => "unset",
    };
    e.insert(
        "level".into(),
        Value::String(if code == "error" { "error" } else { "info" }.into()),
    );
    e.insert("name".into(), Value::String(s.name.clone()));
    match check_id(&s.trace_id, 16, "trace_id")? {
        Some(id) => e.insert("trace_id".into(), id),
        None => {
            return Err(Refused {
                field: "trace_id".into(),
                message: "a span needs a `trace_id` (16 bytes)".into(),
            });
        }
    };
    match check_id(&s.span_id, 8, "span_id")? {
        Some(id) => e.insert("span_id".into(), id),
        None => {
            return Err(Refused {
                field: "span_id".into(),
                message: "a span needs a `span_id` (8 bytes)".into(),
            });
        }
    };
    if let Some(id) = check_id(&s.parent_span_id, 8, "parent_span_id")? {
        e.insert("parent_span_id".into(), id);
    }
    if !s.trace_state.is_empty() {
        e.insert("trace_state".into(), Value::String(s.trace_state.clone()));
    }
    e.insert("kind".into(), Value::String(span_kind(s.kind).into()));
    if let Some(ts) = nanos(s.end_time_unix_nano) {
        e.insert("end_timestamp".into(), ts);
    }
    if s.end_time_unix_nano >= s.start_time_unix_nano && s.start_time_unix_nano > 0 {
        let ms = (s.end_time_unix_nano - s.start_time_unix_nano) as f64 / 1e6;
        e.insert("duration_ms".into(), float(ms));
    }
    let mut st = Map::new();
    st.insert("code".into(), Value::String(code.into()));
    if !message.is_empty() {
        st.insert("message".into(), Value::String(message));
    }
    e.insert("status".into(), Value::Object(st));
    e.insert(
        "attributes".into(),
        Value::Object(attributes(&s.attributes)),
    );
    if !s.events.is_empty() {
        let events: Vec<Value> = s
            .events
            .iter()
            .map(|ev| {
                json!({
                    "name": ev.name,
                    "timestamp": nanos(ev.time_unix_nano).unwrap_or(Value::Null),
                    "attributes": attributes(&ev.attributes),
                })
            })
            .collect();
        e.insert("events".into(), Value::Array(events));
    }
    if !s.links.is_empty() {
        let links: Vec<Value> = s
            .links
            .iter()
            .map(|l| {
                json!({
                    "trace_id": hex(&l.trace_id),
                    "span_id": hex(&l.span_id),
                    "attributes": attributes(&l.attributes),
                })
            })
            .collect();
        e.insert("links".into(), Value::Array(links));
    }
    Ok(Value::Object(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_003() -> &'static str {
        r#"{
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
}"#
    }

    fn events(signal: Signal, encoding: Encoding, body: &[u8]) -> Result<Vec<Value>, String> {
        to_events(signal, encoding, body).map(|items| {
            items
                .into_iter()
                .map(|i| i.unwrap_or_else(|r| Value::String(r.message)))
                .collect()
        })
    }

    #[test]
    fn seed_003_counter_becomes_one_event() {
        let got = events(Signal::Metrics, Encoding::Json, seed_003().as_bytes()).unwrap();
        assert_eq!(
            got,
            vec![json!({
                "event_type": "metric",
                "tool": "trix-cli",
                "context": {"resource": {"service.name": "trix-cli", "service.version": "0.19.3", "user.fingerprint": "abc123..."}},
                "timestamp": "2022-01-01T00:00:00Z",
                "name": "trix_command_invocation",
                "metric": {"kind": "sum", "temporality": "cumulative", "monotonic": true},
                "start_timestamp": "2022-01-01T00:00:00Z",
                "attributes": {"command_name": "build"},
                "value": 1,
            })]
        );
        // The same request as protobuf gives the same events.
        let req: ExportMetricsServiceRequest = serde_json::from_str(seed_003()).unwrap();
        let proto = events(Signal::Metrics, Encoding::Protobuf, &req.encode_to_vec()).unwrap();
        assert_eq!(proto, got);
    }

    #[test]
    fn logs_and_spans() {
        let logs = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
          "scopeLogs":[{"scope":{"name":"app","version":"1.2"},"logRecords":[
            {"timeUnixNano":"1700000000123456789","severityNumber":17,"severityText":"ERROR","body":{"stringValue":"disk full"},
             "attributes":[{"key":"n","value":{"intValue":"42"}},{"key":"ok","value":{"boolValue":true}},
                           {"key":"list","value":{"arrayValue":{"values":[{"doubleValue":1.5},{"kvlistValue":{"values":[{"key":"k","value":{"stringValue":"v"}}]}}]}}}],
             "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"},
            {"observedTimeUnixNano":"1700000000000000000","eventName":"checkout.done","body":{"bytesValue":"aGk="}},
            {"traceId":"abcd"}
          ]}]}]}"#;
        let got = events(Signal::Logs, Encoding::Json, logs.as_bytes()).unwrap();
        assert_eq!(
            got[0],
            json!({
                "event_type": "log", "tool": "svc",
                "context": {"resource": {"service.name": "svc"}, "scope": {"name": "app", "version": "1.2"}},
                "timestamp": "2023-11-14T22:13:20.123456789Z",
                "level": "error", "severity_text": "ERROR", "severity_number": 17, "body": "disk full",
                "attributes": {"n": 42, "ok": true, "list": [1.5, {"k": "v"}]},
                "trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174",
            })
        );
        assert_eq!(got[1]["event_type"], "checkout.done");
        assert_eq!(got[1]["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(got[1]["body"], "aGk=");
        assert_eq!(got[1]["level"], "info");
        assert_eq!(
            got[2],
            "`trace_id` is 2 bytes long; OTLP ids of this kind are 16 bytes"
        );
        let spans = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[
            {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":"eee19b7ec3c1b173",
             "name":"GET /","kind":2,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000250000000",
             "status":{"code":2,"message":"boom"},"events":[{"name":"retry","timeUnixNano":"1700000000100000000"}]},
            {"spanId":"eee19b7ec3c1b174","name":"no trace"}]}]}]}"#;
        let got = events(Signal::Traces, Encoding::Json, spans.as_bytes()).unwrap();
        assert_eq!(got[0]["kind"], "server");
        assert_eq!(got[0]["duration_ms"], 250.0);
        assert_eq!(got[0]["level"], "error");
        assert_eq!(
            got[0]["status"],
            json!({"code": "error", "message": "boom"})
        );
        assert_eq!(got[0]["parent_span_id"], "eee19b7ec3c1b173");
        assert_eq!(got[0]["events"][0]["timestamp"], "2023-11-14T22:13:20.1Z");
        assert_eq!(got[1], "a span needs a `trace_id` (16 bytes)");
    }

    #[test]
    fn bad_bodies_are_named() {
        let e = events(
            Signal::Metrics,
            Encoding::Json,
            br#"{"resourceMetrics": 5}"#,
        )
        .unwrap_err();
        assert!(e.contains("at `resourceMetrics`"), "{e}");
        let e = events(
            Signal::Metrics,
            Encoding::Json,
            seed_003()
                .replace("\"asInt\": \"1\"", "\"asInt\": \"one\"")
                .as_bytes(),
        )
        .unwrap();
        assert!(
            e[0].as_str()
                .unwrap()
                .starts_with("the data point has no value"),
            "{e:?}"
        );
        let e = events(
            Signal::Traces,
            Encoding::Json,
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#,
        )
        .unwrap_err();
        assert!(e.contains("traceId"), "{e}");
        let e = events(Signal::Logs, Encoding::Protobuf, b"\xff\xff\xff").unwrap_err();
        assert!(
            e.starts_with("the body is not a protobuf ExportLogsServiceRequest"),
            "{e}"
        );
        let e = events(Signal::Logs, Encoding::Json, b" ").unwrap_err();
        assert_eq!(e, "the request body is empty");
        // An empty request is valid and holds nothing.
        assert_eq!(
            events(Signal::Logs, Encoding::Json, b"{}").unwrap(),
            Vec::<Value>::new()
        );
        assert_eq!(
            events(Signal::Logs, Encoding::Protobuf, b"").unwrap(),
            Vec::<Value>::new()
        );
    }

    #[test]
    fn levels() {
        for (n, t, want) in [
            (1, "", "debug"),
            (9, "", "info"),
            (13, "", "warning"),
            (20, "", "error"),
            (24, "", "fatal"),
            (0, "WARN", "warning"),
            (0, "", "info"),
            (0, "critical", "critical"),
        ] {
            assert_eq!(level(n, t), want, "{n} {t}");
        }
    }
}
