//! The request shapes of the documents Wraith grew from, mapped onto
//! events (the README, "Other senders", writes the rules down):
//!
//! - the `/api/v1/events` envelope (`api_version`, `events: [{type, data}]`,
//!   `client`), answered `{"status", "received", "warnings"}`;
//! - network-probe measurements at `/events` (`client_id`, `target`,
//!   `ts_ms`, `dns_ms` … `error_stage`), which carry no `event_type`.

use super::ApiError;
use super::decode::Refused;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The envelope's events, and the warnings about the envelope itself.
pub struct Envelope {
    pub items: Vec<Result<Value, Refused>>,
    pub warnings: Vec<String>,
}

/// Unpack an `/api/v1/events` envelope: each `{type, data}` becomes an event
/// with `event_type` = `type` and the fields of `data`; the envelope's
/// `client` object goes into every event's `context.client`.
pub fn envelope(body: Value) -> Result<Envelope, ApiError> {
    let Value::Object(mut env) = body else {
        return Err(ApiError::bad_request(
            "bad_body",
            "the body must be an object {\"api_version\": \"1.0\", \"events\": [{\"type\": ..., \"data\": {...}}], \"client\": {...}}",
        ));
    };
    let mut warnings = Vec::new();
    match env.remove("api_version") {
        None | Some(Value::Null) => warnings.push("api_version is missing; read as 1.0".into()),
        Some(Value::String(v)) if v == "1" || v.starts_with("1.") => {}
        Some(Value::String(v)) => {
            return Err(ApiError::bad_request(
                "unsupported_api_version",
                format!("api_version {v:?} is not supported; this gateway takes 1.x"),
            ));
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "bad_body",
                "field `api_version` must be a string like \"1.0\"",
            ));
        }
    }
    let client = match env.remove("client") {
        None | Some(Value::Null) => None,
        Some(c @ Value::Object(_)) => Some(c),
        Some(_) => {
            return Err(ApiError::bad_request(
                "bad_body",
                "field `client` must be an object",
            ));
        }
    };
    let events = match env.remove("events") {
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ApiError::bad_request(
                "bad_body",
                "field `events` must be an array of {\"type\": ..., \"data\": {...}}",
            ));
        }
        None => {
            return Err(ApiError::bad_request(
                "bad_body",
                "field `events` is required: an array of {\"type\": ..., \"data\": {...}}",
            ));
        }
    };
    for k in env.keys() {
        warnings.push(format!("unknown field `{k}` ignored"));
    }
    let items = events
        .into_iter()
        .map(|item| envelope_item(item, client.as_ref()))
        .collect();
    Ok(Envelope { items, warnings })
}

fn envelope_item(item: Value, client: Option<&Value>) -> Result<Value, Refused> {
    let refused = |field: &str, message: &str| Refused {
        field: field.into(),
        message: message.into(),
    };
    let Value::Object(mut item) = item else {
        return Err(refused(
            "",
            "an envelope event must be an object {\"type\": ..., \"data\": {...}}",
        ));
    };
    let ty = match item.remove("type") {
        Some(Value::String(t)) => t,
        Some(_) => return Err(refused("type", "field `type` must be a string")),
        None => return Err(refused("type", "field `type` is required")),
    };
    let mut event = match item.remove("data") {
        Some(Value::Object(d)) => d,
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err(refused("data", "field `data` must be an object")),
    };
    event.insert("event_type".into(), Value::String(ty));
    if let Some(c) = client {
        match event
            .entry("context")
            .or_insert_with(|| Value::Object(Map::new()))
        {
            Value::Object(ctx) => {
                ctx.insert("client".into(), c.clone());
            }
            _ => {
                return Err(refused("context", "field `data.context` must be an object"));
            }
        }
    }
    Ok(Value::Object(event))
}

/// The `event_type` given to probe measurements.
pub const PROBE_EVENT_TYPE: &str = "probe_measurement";

/// Whether an `/events` item is a probe measurement: an object with
/// `ts_ms` and `target` or `client_id`, and no `event_type`.
pub fn is_probe(v: &Value) -> bool {
    v.as_object().is_some_and(|m| {
        !m.contains_key("event_type")
            && m.contains_key("ts_ms")
            && (m.contains_key("target") || m.contains_key("client_id"))
    })
}

/// Map a probe measurement onto an event: `event_type` =
/// `probe_measurement`, `timestamp` from `ts_ms`, `duration_ms` from
/// `total_ms`, `error_type` from `error_stage` with `level` `error` (else
/// `info`); every field sent is kept. An `event_id` that is not a UUID is
/// kept as `probe_event_id` and replaced by a UUID derived from it, so a
/// resent measurement keeps its identity downstream.
pub fn probe(v: Value) -> Value {
    let Value::Object(mut m) = v else { return v };
    m.insert("event_type".into(), Value::String(PROBE_EVENT_TYPE.into()));
    if !m.contains_key("timestamp")
        && let Some(ts) = m.get("ts_ms").filter(|t| t.is_i64() || t.is_u64()).cloned()
    {
        m.insert("timestamp".into(), ts);
    }
    if !m.contains_key("duration_ms")
        && let Some(t) = m
            .get("total_ms")
            .filter(|t| t.as_f64().is_some_and(|t| t >= 0.0))
            .cloned()
    {
        m.insert("duration_ms".into(), t);
    }
    let failed = match m.get("error_stage") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    if !m.contains_key("level") {
        let level = if failed.is_some() { "error" } else { "info" };
        m.insert("level".into(), Value::String(level.into()));
    }
    if let Some(stage) = failed
        && !m.contains_key("error_type")
    {
        m.insert("error_type".into(), Value::String(stage));
    }
    if let Some(Value::String(id)) = m.get("event_id")
        && uuid::Uuid::parse_str(id).is_err()
    {
        let id = id.clone();
        let d = Sha256::digest(format!("probe:{id}").as_bytes());
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        m.insert(
            "event_id".into(),
            Value::String(uuid::Uuid::new_v8(b).to_string()),
        );
        m.insert("probe_event_id".into(), Value::String(id));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_events_take_type_data_and_client() {
        let env = envelope(json!({
            "api_version": "1.0",
            "events": [
                {"type": "execution", "data": {"execution_id": "e1", "exit_code": 0}},
                {"type": "match_event", "data": {"match_number": 1, "context": {"os": "linux"}}},
                {"data": {}},
                "nope",
            ],
            "client": {"version": "0.0.1", "platform": "darwin", "anonymized": true},
            "extra": 1,
        }))
        .unwrap();
        assert_eq!(env.warnings, vec!["unknown field `extra` ignored"]);
        let client = json!({"version": "0.0.1", "platform": "darwin", "anonymized": true});
        assert_eq!(
            env.items[0].as_ref().unwrap(),
            &json!({"execution_id": "e1", "exit_code": 0, "event_type": "execution", "context": {"client": client}})
        );
        assert_eq!(
            env.items[1].as_ref().unwrap()["context"],
            json!({"os": "linux", "client": client})
        );
        assert_eq!(
            env.items[2].as_ref().unwrap_err().message,
            "field `type` is required"
        );
        assert!(env.items[3].is_err());
        let e = envelope(json!({"api_version": "2.0", "events": []}))
            .err()
            .unwrap();
        assert!(
            e.message.contains("\"2.0\" is not supported"),
            "{}",
            e.message
        );
        let e = envelope(json!({"api_version": "1.0"})).err().unwrap();
        assert!(e.message.contains("`events` is required"), "{}", e.message);
        let env = envelope(json!({"events": []})).unwrap();
        assert_eq!(env.warnings, vec!["api_version is missing; read as 1.0"]);
    }

    #[test]
    fn probes_become_events() {
        let m = json!({"event_id": "uuid", "client_id": "probe-1", "target": "https://example.com",
            "ts_ms": 1705330425000u64, "dns_ms": 15.2, "total_ms": 156.7, "error_stage": null});
        assert!(is_probe(&m));
        let e = probe(m.clone());
        assert_eq!(e["event_type"], "probe_measurement");
        assert_eq!(e["timestamp"], 1705330425000u64);
        assert_eq!(e["duration_ms"], 156.7);
        assert_eq!(e["level"], "info");
        assert_eq!(e["probe_event_id"], "uuid");
        let id = uuid::Uuid::parse_str(e["event_id"].as_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 8);
        // The same measurement sent again has the same id.
        assert_eq!(probe(m)["event_id"], e["event_id"]);
        let e = probe(json!({"client_id": "p", "ts_ms": 1, "error_stage": "tls"}));
        assert_eq!(
            (e["level"].as_str(), e["error_type"].as_str()),
            (Some("error"), Some("tls"))
        );
        assert!(!is_probe(
            &json!({"event_type": "x", "ts_ms": 1, "target": "t"})
        ));
        assert!(!is_probe(&json!({"ts_ms": 1})));
    }
}
