//! One JetStream message → one row of the events table.

use serde::Serialize;
use serde_json::Value;

/// A row of `<db>.<table>`; field order is the table's column order.
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize)]
pub struct EventRow {
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: uuid::Uuid,
    /// Seconds since the epoch (UTC).
    pub timestamp: u32,
    /// The same instant in milliseconds, for ordering within a second.
    pub timestamp_ms: u64,
    pub received_at: u32,
    pub level: String,
    pub event_type: String,
    pub tool: String,
    pub command: String,
    pub duration_ms: f64,
    pub has_duration: u8,
    pub error_type: String,
    pub failed: u8,
    pub installation_id: String,
    pub tool_version: String,
    pub os: String,
    pub route: String,
    /// The whole event as the chain left it.
    pub event: String,
}

/// A row of `<db>.dead_letters`.
#[derive(Debug, Clone, clickhouse::Row, Serialize)]
pub struct DeadLetterRow {
    pub at: u32,
    /// `loader` (could not be loaded) or `gateway` (a plugin rejected it).
    pub source: String,
    pub subject: String,
    pub stream_sequence: u64,
    pub deliveries: u32,
    pub error: String,
    pub payload: String,
}

/// Seconds of the last instant a ClickHouse `DateTime` holds.
const MAX_DATETIME: i64 = u32::MAX as i64;

/// Levels that count as failures in the aggregates (as does an `error_type`).
const FAILED_LEVELS: [&str; 3] = ["error", "critical", "fatal"];

/// Build the row, or say why this message can never be loaded.
pub fn event_row(
    payload: &[u8],
    route: &str,
    received_at_ms: Option<i64>,
) -> Result<EventRow, String> {
    let text = std::str::from_utf8(payload).map_err(|e| format!("payload is not UTF-8: {e}"))?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("payload is not JSON: {e}"))?;
    let Value::Object(obj) = &value else {
        return Err("payload is not a JSON object".into());
    };
    let str_field = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let event_id = match obj.get("event_id") {
        Some(Value::String(s)) => {
            uuid::Uuid::parse_str(s).map_err(|e| format!("event_id {s:?} is not a UUID: {e}"))?
        }
        _ => return Err("event_id is missing or not a string".into()),
    };
    let received_ms = received_at_ms.unwrap_or_else(now_ms);
    let timestamp_ms = match obj.get("timestamp") {
        Some(Value::String(s)) => {
            parse_rfc3339_ms(s).ok_or_else(|| format!("timestamp {s:?} is not RFC 3339"))?
        }
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| format!("timestamp {n} is not whole epoch milliseconds"))?,
        None | Some(Value::Null) => received_ms,
        Some(other) => {
            return Err(format!(
                "timestamp {other} is neither a string nor a number"
            ));
        }
    };
    if !(0..=MAX_DATETIME * 1000).contains(&timestamp_ms) {
        return Err(format!(
            "timestamp {timestamp_ms} ms is outside what ClickHouse's DateTime holds (1970 to 2106)"
        ));
    }
    let (duration_ms, has_duration) = match obj.get("duration_ms") {
        Some(Value::Number(n)) => (n.as_f64().unwrap_or(0.0), 1),
        _ => (0.0, 0),
    };
    let level = str_field(obj.get("level"));
    let error_type = str_field(obj.get("error_type"));
    let failed = u8::from(!error_type.is_empty() || FAILED_LEVELS.contains(&level.as_str()));
    let context = obj.get("context").and_then(Value::as_object);
    let ctx = |k: &str| str_field(context.and_then(|c| c.get(k)));
    Ok(EventRow {
        event_id,
        timestamp: (timestamp_ms / 1000) as u32,
        timestamp_ms: timestamp_ms as u64,
        received_at: (received_ms / 1000).clamp(0, MAX_DATETIME) as u32,
        level,
        event_type: str_field(obj.get("event_type")),
        tool: str_field(obj.get("tool")),
        command: str_field(obj.get("command")),
        duration_ms,
        has_duration,
        error_type,
        failed,
        installation_id: ctx("installation_id"),
        tool_version: ctx("tool_version"),
        os: ctx("os"),
        route: route.to_string(),
        event: text.to_string(),
    })
}

fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_fields_become_columns() {
        let e = br#"{"event_id":"0193a7c2-0000-7000-8000-000000000001","timestamp":"2025-12-01T10:00:30.250Z","level":"error","event_type":"tool_failed","tool":"migrateiq","command":"deploy","duration_ms":812,"error_type":"Timeout","context":{"installation_id":"i-1","tool_version":"0.1.0","os":"linux"},"extra":{"a":1}}"#;
        let r = event_row(e, "errors", Some(1_764_583_300_000)).unwrap();
        assert_eq!(
            r.event_id.to_string(),
            "0193a7c2-0000-7000-8000-000000000001"
        );
        assert_eq!(r.timestamp_ms, 1_764_583_230_250);
        assert_eq!(r.timestamp, 1_764_583_230);
        assert_eq!(r.received_at, 1_764_583_300);
        assert_eq!((r.duration_ms, r.has_duration), (812.0, 1));
        assert_eq!(r.failed, 1);
        assert_eq!(
            (r.tool.as_str(), r.command.as_str(), r.os.as_str()),
            ("migrateiq", "deploy", "linux")
        );
        assert_eq!(r.route, "errors");
        assert_eq!(r.event.as_bytes(), e);
        let ok = br#"{"event_id":"0193a7c2-0000-7000-8000-000000000002","timestamp":1764583230000,"level":"info","event_type":"x"}"#;
        let r = event_row(ok, "events", None).unwrap();
        assert_eq!(
            (r.failed, r.has_duration, r.timestamp),
            (0, 0, 1_764_583_230)
        );
    }

    #[test]
    fn poison_is_named() {
        for (payload, says) in [
            (&b"not json"[..], "not JSON"),
            (&b"[1]"[..], "not a JSON object"),
            (&br#"{"event_type":"x"}"#[..], "event_id is missing"),
            (&br#"{"event_id":"nope"}"#[..], "is not a UUID"),
            (
                &br#"{"event_id":"0193a7c2-0000-7000-8000-000000000001","timestamp":"yesterday"}"#
                    [..],
                "not RFC 3339",
            ),
            (
                &br#"{"event_id":"0193a7c2-0000-7000-8000-000000000001","timestamp":-5}"#[..],
                "outside",
            ),
            (&b"\xff"[..], "not UTF-8"),
        ] {
            let e = event_row(payload, "events", None).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }
}
