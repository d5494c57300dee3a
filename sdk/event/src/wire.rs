//! What crosses the network between a client and the gateway's
//! `POST /v1/events`: the event a client sends ([`Event`]), the answer to a
//! batch ([`BatchAnswer`], with one [`EventErrorBody`] per refused event), and
//! the body of every error response ([`ErrorBody`]).
//!
//! These are the shapes the gateway writes today; the daemon and the SDK
//! read and write them through these types, so a change to the HTTP API is a
//! change here that all three see.
//!
//! Behind the `wire` feature (serde derive), so the plugin-side users of this
//! crate do not pay for it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Event severities, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Development noise; the first-party `route` plugin drops it.
    Debug,
    /// The default.
    Info,
    /// Something recovered.
    Warning,
    /// A failure of one operation.
    Error,
    /// A failure the tool cannot continue after; sent at once by the daemon.
    Critical,
    /// The tool is about to die; sent at once by the daemon.
    Fatal,
}

impl Level {
    /// As written on the wire (`"info"`).
    pub fn as_str(self) -> &'static str {
        crate::LEVELS[self as usize]
    }

    /// Parse a level as the gateway does: case-insensitive, `warn` for `warning`.
    pub fn parse(s: &str) -> Option<Level> {
        const ALL: [Level; 6] = [
            Level::Debug,
            Level::Info,
            Level::Warning,
            Level::Error,
            Level::Critical,
            Level::Fatal,
        ];
        if s.eq_ignore_ascii_case("warn") {
            return Some(Level::Warning);
        }
        ALL.into_iter().find(|l| s.eq_ignore_ascii_case(l.as_str()))
    }

    /// Whether an event of this level should leave the machine without
    /// waiting for a batch to fill (`critical`, `fatal`).
    pub fn is_urgent(self) -> bool {
        self >= Level::Critical
    }
}

/// One event as a client sends it. Only `event_type` is required; the
/// gateway fills in `event_id`, `timestamp` and `level` when they are missing.
/// Every other field, nested objects included, is kept in `extra` as sent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Event {
    /// A UUID; the key by which every later hop deduplicates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// RFC 3339 text or whole epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Value>,
    /// The severity; `info` when missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// What happened (`tool_invoked`, `tool_failed`, …).
    pub event_type: String,
    /// The tool that sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The tool's command or subcommand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// How long the command took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// The kind of error (a type name, never a message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Anonymous context: `installation_id`, `tool_version`, `os`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Map<String, Value>>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The answer to a batch (`200`, or `400` when every event was invalid).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BatchAnswer {
    /// Events stored (at the default or a routed destination).
    pub accepted: usize,
    /// Events a plugin dropped on purpose.
    pub dropped: usize,
    /// Events written to the dead-letter queue by a plugin's verdict or fault.
    pub dead_lettered: usize,
    /// Events refused as invalid (see `errors`); they were not stored.
    pub invalid: usize,
    /// The `event_id` of every event by position (`None` for invalid ones).
    pub event_ids: Vec<Option<String>>,
    /// One entry per invalid event.
    pub errors: Vec<EventErrorBody>,
}

/// One refused event of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventErrorBody {
    /// Its position in the batch, from 0.
    pub index: usize,
    /// The offending field, empty when the event as a whole is wrong.
    pub field: String,
    /// What is wrong, naming the field.
    pub message: String,
}

/// The body of every error response: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The inside of an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// A stable, machine-readable code (`empty_body`, `too_large`, `unavailable`, …).
    pub code: String,
    /// A sentence for people.
    pub message: String,
}

impl ErrorBody {
    /// A body with this code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check<T: serde::de::DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
        text: &str,
        expected: T,
    ) {
        let parsed: T = serde_json::from_str(text).unwrap();
        assert_eq!(parsed, expected);
        // And back to the same JSON.
        let again: Value = serde_json::to_value(&parsed).unwrap();
        assert_eq!(again, serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn batch_answer_as_the_gateway_documents_it() {
        // README's tour and gateway/src/ingest/mod.rs `BatchAnswer`.
        check(
            r#"{"accepted":1,"dropped":0,"dead_lettered":0,"invalid":0,"event_ids":["0193a0c4-7e42-7c8a-9d3e-5b1f0c2a7e11"],"errors":[]}"#,
            BatchAnswer {
                accepted: 1,
                event_ids: vec![Some("0193a0c4-7e42-7c8a-9d3e-5b1f0c2a7e11".into())],
                ..Default::default()
            },
        );
        check(
            r#"{"accepted":1,"dropped":1,"dead_lettered":1,"invalid":1,"event_ids":["a",null,"b","c"],"errors":[{"index":1,"field":"level","message":"field `level` is \"loud\"; expected one of debug, info, warning, error, critical, fatal"}]}"#,
            BatchAnswer {
                accepted: 1,
                dropped: 1,
                dead_lettered: 1,
                invalid: 1,
                event_ids: vec![Some("a".into()), None, Some("b".into()), Some("c".into())],
                errors: vec![EventErrorBody {
                    index: 1,
                    field: "level".into(),
                    message: "field `level` is \"loud\"; expected one of debug, info, warning, error, critical, fatal".into(),
                }],
            },
        );
    }

    #[test]
    fn error_body_as_the_gateway_documents_it() {
        // gateway/src/ingest/error.rs `ApiError::into_response`.
        check(
            r#"{"error":{"code":"empty_body","message":"the request body is empty"}}"#,
            ErrorBody::new("empty_body", "the request body is empty"),
        );
        check(
            r#"{"error":{"code":"unavailable","message":"sink full"}}"#,
            ErrorBody::new("unavailable", "sink full"),
        );
    }

    #[test]
    fn event_keeps_unknown_fields_and_takes_epoch_or_text_timestamps() {
        let e: Event = serde_json::from_value(json!({
            "event_type": "tool_failed", "level": "critical", "timestamp": 1764633600000u64,
            "tool": "t", "command": "c", "duration_ms": 840, "error_type": "Timeout",
            "context": {"os": "linux"}, "attempt": 2, "nested": {"a": [1]}
        }))
        .unwrap();
        assert_eq!(e.level, Some(Level::Critical));
        assert_eq!(e.duration_ms, Some(840.0));
        assert_eq!(e.extra["nested"], json!({"a": [1]}));
        assert_eq!(e.extra.len(), 2);
        let minimal: Event = serde_json::from_str(r#"{"event_type":"x"}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&minimal).unwrap(),
            r#"{"event_type":"x"}"#
        );
        assert!(serde_json::from_str::<Event>(r#"{"tool":"x"}"#).is_err());
    }

    #[test]
    fn levels() {
        for (i, name) in crate::LEVELS.iter().enumerate() {
            let l = Level::parse(name).unwrap();
            assert_eq!((l as usize, l.as_str()), (i, *name));
            assert_eq!(serde_json::to_value(l).unwrap(), json!(name));
        }
        assert_eq!(Level::parse("WARN"), Some(Level::Warning));
        assert_eq!(Level::parse("Fatal"), Some(Level::Fatal));
        assert_eq!(Level::parse("loud"), None);
        assert!(Level::Critical.is_urgent() && Level::Fatal.is_urgent());
        assert!(!Level::Error.is_urgent());
    }
}
