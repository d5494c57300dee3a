//! Turning request bodies into candidate events.

use super::{ApiError, IngestLimits};
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::Value;

/// An event refused before validation (an unparseable NDJSON line) or by it.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub field: String,
    pub message: String,
}

/// The body as sent was larger than `limits.max_wire_body_size` (set on
/// the raw body, before decompression, by the wire-limit layer).
#[derive(Debug, thiserror::Error)]
#[error("the request body as sent is larger than {limit} bytes")]
pub struct WireLimitError {
    pub limit: usize,
}

/// Find an error of type `T` in a chain, looking inside `io::Error`s too
/// (the decompressor wraps the raw body's errors in them).
fn find<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && let Some(t) = find::<T>(inner)
        {
            return Some(t);
        }
        cur = e.source();
    }
    None
}

fn size(n: usize) -> String {
    bytesize::ByteSize::b(n as u64).display().iec().to_string()
}

/// Read the (already decompressed) body within the limits: at most
/// `max_body_bytes` after decompression (413), the raw body within the wire
/// limit (413), all of it within `body_timeout` (408). Decompression stops
/// at the limit, so a gzip bomb is never inflated whole.
pub async fn read_body(body: Body, limits: &IngestLimits) -> Result<Bytes, ApiError> {
    let limit = limits.max_body_bytes;
    #[allow(clippy::disallowed_methods)] // the one place that reads bodies
    let read = tokio::time::timeout(limits.body_timeout, axum::body::to_bytes(body, limit)).await;
    let Ok(read) = read else {
        return Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within {} (limits.body_read_timeout)",
                humantime_serde::re::humantime::format_duration(limits.body_timeout)
            ),
        ));
    };
    match read {
        Ok(b) => Ok(b),
        Err(e) => {
            let inner = e.into_inner();
            if let Some(w) = find::<WireLimitError>(&*inner) {
                return Err(ApiError::too_large(format!(
                    "the request body as sent is larger than {} ({} bytes, limits.max_wire_body_size)",
                    size(w.limit),
                    w.limit
                )));
            }
            if find::<http_body_util::LengthLimitError>(&*inner).is_some() {
                Err(ApiError::too_large(format!(
                    "the request body is larger than {} ({limit} bytes, server.max_body_size; measured after decompression)",
                    size(limit)
                )))
            } else {
                Err(ApiError::bad_request(
                    "unreadable_body",
                    format!("could not read the request body (is the gzip stream valid?): {inner}"),
                ))
            }
        }
    }
}

enum Format {
    Json,
    Ndjson,
}

fn format(headers: &HeaderMap) -> Result<Format, ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(Format::Json);
    };
    let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
    let mime = ct.split(';').next().unwrap_or("").trim();
    match mime {
        "application/json" | "text/json" | "" => Ok(Format::Json),
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines"
        | "application/jsonlines" => Ok(Format::Ndjson),
        other => Err(ApiError::unsupported(format!(
            "content type {other:?} is not accepted; send application/json (an array, {{\"events\": [...]}} or one event) or application/x-ndjson (one event per line)"
        ))),
    }
}

/// Parse a batch body: a JSON array, `{"events": [...]}`, one JSON object, or NDJSON.
pub fn parse_batch(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<Result<Value, Refused>>, ApiError> {
    let body = strip_bom(body);
    match format(headers)? {
        Format::Json => {
            let v: Value = parse_json(body)?;
            match v {
                Value::Array(items) => Ok(items.into_iter().map(Ok).collect()),
                Value::Object(mut m) if m.contains_key("events") => match m.remove("events") {
                    Some(Value::Array(items)) => Ok(items.into_iter().map(Ok).collect()),
                    _ => Err(ApiError::bad_request(
                        "bad_body",
                        "field `events` must be an array of events",
                    )),
                },
                v @ Value::Object(_) => Ok(vec![Ok(v)]),
                _ => Err(ApiError::bad_request(
                    "bad_body",
                    "the body must be a JSON array of events, {\"events\": [...]}, or one event object",
                )),
            }
        }
        Format::Ndjson => {
            let text = std::str::from_utf8(body).map_err(|e| {
                ApiError::bad_request("bad_body", format!("the body is not UTF-8: {e}"))
            })?;
            let items: Vec<_> = text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(n, line)| {
                    serde_json::from_str::<Value>(line).map_err(|e| Refused {
                        field: String::new(),
                        message: format!("line {} is not valid JSON: {e}", n + 1),
                    })
                })
                .collect();
            if !items.is_empty() && items.iter().all(|i| i.is_err()) {
                let first = items[0]
                    .as_ref()
                    .err()
                    .map(|r| r.message.clone())
                    .unwrap_or_default();
                return Err(ApiError::bad_request(
                    "bad_body",
                    format!("no line of the NDJSON body is valid JSON ({first})"),
                ));
            }
            Ok(items)
        }
    }
}

/// A batch body read straight into the flat layout with the ingest's
/// checks and defaults (`wraith_event::body`): a JSON array or NDJSON whose
/// events are all valid. `None` for anything else, which the general route
/// ([`parse_batch`] and the checks on values) answers.
pub fn parse_flat(
    headers: &HeaderMap,
    body: &[u8],
    limits: &IngestLimits,
    client: Option<&str>,
    now: time::OffsetDateTime,
) -> Option<wraith_event::body::Parsed> {
    let rules = wraith_event::body::Rules {
        max_depth: limits.event.max_depth,
        max_string: limits.event.max_string,
        max_values: limits.event.max_values,
        max_events: limits.max_events,
        client_field: super::CLIENT_FIELD,
        client,
        now,
    };
    let body = strip_bom(body);
    match format(headers).ok()? {
        Format::Json => wraith_event::body::json_array(body, &rules),
        Format::Ndjson => wraith_event::body::ndjson(body, &rules),
    }
}

/// Parse a single-event body (`POST /event`).
pub fn parse_single(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<Result<Value, Refused>>, ApiError> {
    let body = strip_bom(body);
    match format(headers)? {
        Format::Json => match parse_json(body)? {
            v @ Value::Object(_) => Ok(vec![Ok(v)]),
            _ => Err(ApiError::bad_request(
                "bad_body",
                "POST /event takes one event object; send batches to POST /v1/events",
            )),
        },
        Format::Ndjson => Err(ApiError::unsupported(
            "POST /event takes one JSON object (application/json); send NDJSON to POST /v1/events",
        )),
    }
}

/// Parse a body that must be one JSON document (`/api/v1/events`).
pub fn parse_json_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    match format(headers)? {
        Format::Json => parse_json(strip_bom(body)),
        Format::Ndjson => Err(ApiError::unsupported(
            "this route takes one JSON document (application/json)",
        )),
    }
}

/// A UTF-8 byte-order mark, as some Windows tools write before text, is not
/// part of the JSON.
fn strip_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::bad_request(
            "empty_body",
            "the request body is empty",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
        h
    }

    /// Parse `body` as `content_type`; the events, or the error's message.
    fn check(content_type: &str, body: &[u8], expected: Result<Vec<Value>, &str>) {
        let got = parse_batch(&headers(content_type), body).map(|items| {
            items
                .into_iter()
                .map(|i| i.unwrap_or_else(|r| Value::String(r.message)))
                .collect::<Vec<_>>()
        });
        match (got, expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(e), Err(needle)) => {
                let text = format!("{e:?}");
                assert!(text.contains(needle), "{text} lacks {needle:?}");
            }
            (got, want) => panic!("got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn body_shapes() {
        let a = serde_json::json!({"event_type": "a"});
        let b = serde_json::json!({"event_type": "b"});
        let json = "application/json";
        check(
            json,
            br#"[{"event_type":"a"},{"event_type":"b"}]"#,
            Ok(vec![a.clone(), b.clone()]),
        );
        check(
            json,
            br#"{"events":[{"event_type":"a"}]}"#,
            Ok(vec![a.clone()]),
        );
        check(json, br#"{"event_type":"a"}"#, Ok(vec![a.clone()]));
        check(
            json,
            b"\xEF\xBB\xBF[{\"event_type\":\"a\"}]",
            Ok(vec![a.clone()]),
        );
        check(json, b"  ", Err("the request body is empty"));
        check(
            json,
            br#"{"events":5}"#,
            Err("field `events` must be an array"),
        );
        check(json, b"5", Err("must be a JSON array of events"));
        check(json, b"[1", Err("not valid JSON"));
        let nd = "application/x-ndjson";
        check(
            nd,
            b"{\"event_type\":\"a\"}\n\n{\"event_type\":\"b\"}\n",
            Ok(vec![a.clone(), b]),
        );
        check(
            nd,
            b"\xEF\xBB\xBF{\"event_type\":\"a\"}\r\n",
            Ok(vec![a.clone()]),
        );
        check(
            nd,
            b"{\"event_type\":\"a\"}\nnope\n",
            Ok(vec![
                a,
                Value::String("line 2 is not valid JSON: expected ident at line 1 column 2".into()),
            ]),
        );
        check(
            nd,
            b"nope\n",
            Err("no line of the NDJSON body is valid JSON"),
        );
        check(nd, b"\xff\n", Err("not UTF-8"));
    }
}
