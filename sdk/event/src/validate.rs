//! Checking and completing events at ingest.

use crate::LEVELS;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Longest accepted `event_type`, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 128;

/// Why an event was refused. The message names the field and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EventError {
    /// The offending field, or empty when the event as a whole is wrong.
    pub field: &'static str,
    /// What is wrong, naming the field.
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> EventError {
    EventError {
        field,
        message: message.into(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Check an event and fill in what the client may leave out: a UUID v7
/// `event_id`, `timestamp` (now, RFC 3339 UTC) and `level` (`info`).
/// `timestamp` given as epoch milliseconds is rewritten as RFC 3339; `level` is
/// lower-cased (`WARN` and `warn` become `warning`). Everything else is kept as sent.
pub fn normalize(value: Value, now: OffsetDateTime) -> Result<Value, EventError> {
    let mut map = match value {
        Value::Object(m) => m,
        other => {
            return Err(err(
                "",
                format!("an event must be a JSON object, got {}", type_name(&other)),
            ));
        }
    };
    check_event_id(&mut map)?;
    check_timestamp(&mut map, now)?;
    check_level(&mut map)?;
    match map.get("event_type") {
        Some(Value::String(s)) if s.is_empty() => {
            return Err(err("event_type", "field `event_type` must not be empty"));
        }
        Some(Value::String(s)) if s.len() > MAX_EVENT_TYPE_LEN => {
            return Err(err(
                "event_type",
                format!("field `event_type` is longer than {MAX_EVENT_TYPE_LEN} bytes"),
            ));
        }
        Some(Value::String(_)) => {}
        Some(other) => {
            return Err(err(
                "event_type",
                format!(
                    "field `event_type` must be a string, got {}",
                    type_name(other)
                ),
            ));
        }
        None => return Err(err("event_type", "field `event_type` is required")),
    }
    for field in ["tool", "command", "error_type"] {
        if let Some(v) = map.get(field)
            && !v.is_string()
            && !v.is_null()
        {
            return Err(err(
                field,
                format!("field `{field}` must be a string, got {}", type_name(v)),
            ));
        }
    }
    if let Some(v) = map.get("duration_ms") {
        match v.as_f64() {
            Some(d) if d >= 0.0 => {}
            _ if v.is_null() => {}
            _ => {
                return Err(err(
                    "duration_ms",
                    "field `duration_ms` must be a non-negative number of milliseconds",
                ));
            }
        }
    }
    if let Some(v) = map.get("context")
        && !v.is_object()
        && !v.is_null()
    {
        return Err(err(
            "context",
            format!("field `context` must be an object, got {}", type_name(v)),
        ));
    }
    Ok(Value::Object(map))
}

fn check_event_id(map: &mut Map<String, Value>) -> Result<(), EventError> {
    match map.get_mut("event_id") {
        None | Some(Value::Null) => {
            map.insert(
                "event_id".into(),
                Value::String(new_event_id().as_str().to_string()),
            );
        }
        Some(Value::String(s)) => match event_id(s) {
            Some(id) => *s = id.as_str().to_string(),
            None => {
                return Err(err(
                    "event_id",
                    format!("field `event_id` is not a UUID: {:?}", truncate(s)),
                ));
            }
        },
        Some(other) => {
            return Err(err(
                "event_id",
                format!(
                    "field `event_id` must be a UUID string, got {}",
                    type_name(other)
                ),
            ));
        }
    }
    Ok(())
}

fn check_timestamp(map: &mut Map<String, Value>, now: OffsetDateTime) -> Result<(), EventError> {
    let ts = match map.get("timestamp") {
        None | Some(Value::Null) => now,
        Some(Value::String(s)) => timestamp_from_text(s)?,
        Some(Value::Number(n)) => {
            let ms = n.as_i64().ok_or_else(|| {
                err(
                    "timestamp",
                    "field `timestamp` as a number must be whole epoch milliseconds",
                )
            })?;
            timestamp_from_ms(ms)?
        }
        Some(other) => {
            return Err(err(
                "timestamp",
                format!(
                    "field `timestamp` must be an RFC 3339 string or epoch milliseconds, got {}",
                    type_name(other)
                ),
            ));
        }
    };
    map.insert("timestamp".into(), Value::String(timestamp_text(ts)?));
    Ok(())
}

/// A `timestamp` given as text, parsed.
pub(crate) fn timestamp_from_text(s: &str) -> Result<OffsetDateTime, EventError> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| {
        err(
            "timestamp",
            format!("field `timestamp` is not RFC 3339 ({e}): {:?}", truncate(s)),
        )
    })
}

/// A `timestamp` given as epoch milliseconds.
pub(crate) fn timestamp_from_ms(ms: i64) -> Result<OffsetDateTime, EventError> {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .map_err(|_| err("timestamp", "field `timestamp` is out of range"))
}

/// A timestamp as it is stored: RFC 3339 in UTC.
pub(crate) fn timestamp_text(ts: OffsetDateTime) -> Result<String, EventError> {
    ts.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|_| err("timestamp", "field `timestamp` is out of range"))
}

/// An `event_id` as it is stored (hyphenated, lower case), or `None` when
/// the text is not a UUID.
pub(crate) fn event_id(s: &str) -> Option<IdText> {
    let id = uuid::Uuid::parse_str(s).ok()?;
    let mut text = IdText([0; uuid::fmt::Hyphenated::LENGTH]);
    id.hyphenated().encode_lower(&mut text.0);
    Some(text)
}

/// A fresh `event_id` (UUID v7), as it is stored.
pub(crate) fn new_event_id() -> IdText {
    let mut text = IdText([0; uuid::fmt::Hyphenated::LENGTH]);
    uuid::Uuid::now_v7().hyphenated().encode_lower(&mut text.0);
    text
}

/// A hyphenated UUID's text, without an allocation.
pub(crate) struct IdText([u8; uuid::fmt::Hyphenated::LENGTH]);

impl IdText {
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a UUID's text is ASCII")
    }
}

/// A `level` as it is stored (lower case, `warn` as `warning`), or `None`
/// when it is not one of [`LEVELS`].
pub(crate) fn level(s: &str) -> Option<&'static str> {
    let lower = s.to_ascii_lowercase();
    let lower = if lower == "warn" { "warning" } else { &lower };
    LEVELS.iter().find(|l| **l == lower).copied()
}

fn check_level(map: &mut Map<String, Value>) -> Result<(), EventError> {
    match map.get_mut("level") {
        None | Some(Value::Null) => {
            map.insert("level".into(), Value::String("info".into()));
        }
        Some(Value::String(s)) => match level(s) {
            Some(l) => *s = l.to_string(),
            None => {
                return Err(err(
                    "level",
                    format!(
                        "field `level` is {:?}; expected one of {}",
                        truncate(s),
                        LEVELS.join(", ")
                    ),
                ));
            }
        },
        Some(other) => {
            return Err(err(
                "level",
                format!("field `level` must be a string, got {}", type_name(other)),
            ));
        }
    }
    Ok(())
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    fn check_err(v: Value, field: &str, needle: &str) {
        let e = normalize(v, now()).unwrap_err();
        assert_eq!(e.field, field);
        assert!(
            e.message.contains(needle),
            "{:?} lacks {needle:?}",
            e.message
        );
    }

    #[test]
    fn fills_in_missing_fields() {
        let v = normalize(
            json!({"event_type": "tool_invoked", "extra": {"x": 1}}),
            now(),
        )
        .unwrap();
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(v["level"], "info");
        let id = uuid::Uuid::parse_str(v["event_id"].as_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(v["extra"], json!({"x": 1}));
    }

    #[test]
    fn normalises_given_fields() {
        let v = normalize(
            json!({"event_type": "t", "level": "WARN", "timestamp": 1_700_000_000_123i64,
                   "event_id": "6F9619FF-8B86-D011-B42D-00CF4FC964FF"}),
            now(),
        )
        .unwrap();
        assert_eq!(v["level"], "warning");
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20.123Z");
        assert_eq!(v["event_id"], "6f9619ff-8b86-d011-b42d-00cf4fc964ff");
        let v = normalize(
            json!({"event_type": "t", "timestamp": "2024-01-02T03:04:05+02:00"}),
            now(),
        )
        .unwrap();
        assert_eq!(v["timestamp"], "2024-01-02T01:04:05Z");
    }

    #[test]
    fn names_what_is_wrong() {
        check_err(json!([1]), "", "must be a JSON object, got an array");
        check_err(json!({}), "event_type", "required");
        check_err(json!({"event_type": ""}), "event_type", "must not be empty");
        check_err(json!({"event_type": 3}), "event_type", "must be a string");
        check_err(
            json!({"event_type": "t", "event_id": "nope"}),
            "event_id",
            "not a UUID",
        );
        check_err(
            json!({"event_type": "t", "timestamp": "yesterday"}),
            "timestamp",
            "RFC 3339",
        );
        check_err(
            json!({"event_type": "t", "timestamp": 1.5}),
            "timestamp",
            "whole epoch milliseconds",
        );
        check_err(
            json!({"event_type": "t", "level": "loud"}),
            "level",
            "expected one of debug, info",
        );
        check_err(
            json!({"event_type": "t", "duration_ms": -1}),
            "duration_ms",
            "non-negative",
        );
        check_err(
            json!({"event_type": "t", "context": "x"}),
            "context",
            "must be an object",
        );
        check_err(
            json!({"event_type": "t", "tool": 5}),
            "tool",
            "must be a string",
        );
    }
}
