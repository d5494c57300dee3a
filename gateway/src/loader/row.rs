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

/// The well-known fields of an event, read without building the rest of it
/// (every other member is skipped by the parser, not stored).
#[derive(serde::Deserialize)]
struct Known {
    event_id: Option<Value>,
    timestamp: Option<Value>,
    level: Option<Value>,
    event_type: Option<Value>,
    tool: Option<Value>,
    command: Option<Value>,
    duration_ms: Option<Value>,
    error_type: Option<Value>,
    context: Option<KnownContext>,
}

#[derive(serde::Deserialize)]
struct KnownContext {
    installation_id: Option<Value>,
    tool_version: Option<Value>,
    os: Option<Value>,
}

/// Build the row, or say why this message can never be loaded.
///
/// The well-known fields are read straight from the text; only an event
/// that does not fit that shape (a member given twice, a `context` that is
/// not an object, or no JSON object at all) is parsed whole, which also
/// names what is wrong with it. Both paths give the same row.
pub fn event_row(
    payload: &[u8],
    route: &str,
    received_at_ms: Option<i64>,
) -> Result<EventRow, String> {
    let text = std::str::from_utf8(payload).map_err(|e| format!("payload is not UTF-8: {e}"))?;
    let known = match serde_json::from_str::<Known>(text) {
        Ok(k) => k,
        Err(_) => known_from_value(text)?,
    };
    build(known, text, route, received_at_ms)
}

/// The slow path: the whole event as a JSON value.
fn known_from_value(text: &str) -> Result<Known, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("payload is not JSON: {e}"))?;
    let Value::Object(mut obj) = value else {
        return Err("payload is not a JSON object".into());
    };
    let mut take = |k: &str| obj.remove(k).filter(|v| !v.is_null());
    let context = match take("context") {
        Some(Value::Object(mut c)) => {
            let mut take = |k: &str| c.remove(k).filter(|v| !v.is_null());
            Some(KnownContext {
                installation_id: take("installation_id"),
                tool_version: take("tool_version"),
                os: take("os"),
            })
        }
        _ => None,
    };
    Ok(Known {
        event_id: take("event_id"),
        timestamp: take("timestamp"),
        level: take("level"),
        event_type: take("event_type"),
        tool: take("tool"),
        command: take("command"),
        duration_ms: take("duration_ms"),
        error_type: take("error_type"),
        context,
    })
}

fn build(
    known: Known,
    text: &str,
    route: &str,
    received_at_ms: Option<i64>,
) -> Result<EventRow, String> {
    let str_field = |v: Option<Value>| match v {
        Some(Value::String(s)) => s,
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let event_id = match known.event_id {
        Some(Value::String(s)) => {
            uuid::Uuid::parse_str(&s).map_err(|e| format!("event_id {s:?} is not a UUID: {e}"))?
        }
        _ => return Err("event_id is missing or not a string".into()),
    };
    let received_ms = received_at_ms.unwrap_or_else(now_ms);
    let timestamp_ms = match known.timestamp {
        Some(Value::String(s)) => {
            parse_rfc3339_ms(&s).ok_or_else(|| format!("timestamp {s:?} is not RFC 3339"))?
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
    let (duration_ms, has_duration) = match known.duration_ms {
        Some(Value::Number(n)) => (n.as_f64().unwrap_or(0.0), 1),
        _ => (0.0, 0),
    };
    let level = str_field(known.level);
    let error_type = str_field(known.error_type);
    let failed = u8::from(!error_type.is_empty() || FAILED_LEVELS.contains(&level.as_str()));
    let (installation_id, tool_version, os) = match known.context {
        Some(c) => (
            str_field(c.installation_id),
            str_field(c.tool_version),
            str_field(c.os),
        ),
        None => Default::default(),
    };
    Ok(EventRow {
        event_id,
        timestamp: (timestamp_ms / 1000) as u32,
        timestamp_ms: timestamp_ms as u64,
        received_at: (received_ms / 1000).clamp(0, MAX_DATETIME) as u32,
        level,
        event_type: str_field(known.event_type),
        tool: str_field(known.tool),
        command: str_field(known.command),
        duration_ms,
        has_duration,
        error_type,
        failed,
        installation_id,
        tool_version,
        os,
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
    fn reading_the_known_fields_gives_the_row_of_the_whole_value() {
        let id = "0193a7c2-0000-7000-8000-000000000001";
        for payload in [
            format!(
                r#"{{"event_id":"{id}","level":"warn","tool":"t","context":{{"os":"linux","extra":[1,{{"a":null}}]}},"message":"caf\u00e9 \"quoted\""}}"#
            ),
            format!(
                r#"{{"event_id":"{id}","tool":5,"command":{{"b":[1,2]}},"level":null,"context":{{"os":true,"tool_version":1.5}}}}"#
            ),
            format!(r#"{{"event_id":"{id}","context":"not an object","error_type":"E"}}"#),
            format!(
                r#"{{"event_id":"{id}","tool":"first","tool":"second","context":{{"os":"a","os":"b"}}}}"#
            ),
            format!(
                r#"{{"context":{{"installation_id":"i"}},"event_id":"{id}","timestamp":"2025-12-01T10:00:30Z","duration_ms":1.25,"event_type":"x\ny"}}"#
            ),
            format!(r#" {{ "event_id" : "{id}" , "duration_ms" : "12" , "context" : null }} "#),
        ] {
            let fast = event_row(payload.as_bytes(), "r", Some(1_764_583_300_000)).unwrap();
            let whole = build(
                known_from_value(&payload).unwrap(),
                &payload,
                "r",
                Some(1_764_583_300_000),
            )
            .unwrap();
            assert_eq!(fast, whole, "{payload}");
        }
        let r = event_row(
            format!(r#"{{"event_id":"{id}","tool":"first","tool":"second"}}"#).as_bytes(),
            "r",
            None,
        )
        .unwrap();
        assert_eq!(r.tool, "second", "the last of a member given twice wins");
        let r = event_row(
            format!(r#"{{"event_id":"{id}","tool":5,"context":{{"os":{{"k":[1]}}}}}}"#).as_bytes(),
            "r",
            None,
        )
        .unwrap();
        assert_eq!((r.tool.as_str(), r.os.as_str()), ("5", r#"{"k":[1]}"#));
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
