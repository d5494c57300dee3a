//! Turning an [`Event`](crate::Event) into one NDJSON line, on the caller's
//! thread: the tool's part of the cost of `track`.

use crate::Event;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Fields the SDK writes itself; a custom field of one of these names is skipped.
pub(crate) const RESERVED: [&str; 9] = [
    "event_id",
    "timestamp",
    "level",
    "event_type",
    "tool",
    "command",
    "duration_ms",
    "error_type",
    "context",
];

/// Event ids: UUIDv7 (epoch milliseconds, then 74 bits that are unique within
/// the process and random across processes). A counter run through a
/// bijective mixer (splitmix64) gives distinct bits for every event without a
/// lock or a system call.
pub(crate) struct Ids {
    seed: [u64; 2],
    counter: AtomicU64,
}

impl Ids {
    pub(crate) fn new() -> Ids {
        let r = uuid::Uuid::new_v4().as_u64_pair();
        Ids {
            seed: [r.0, r.1],
            counter: AtomicU64::new(0),
        }
    }

    pub(crate) fn next(&self, unix_ms: u64) -> uuid::Uuid {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // mix is a bijection, so `hi` differs for every n: ids never repeat
        // within a process.
        let hi = mix(n.wrapping_add(self.seed[0]));
        let lo = mix(n ^ self.seed[1]);
        let mut random = [0u8; 10];
        random[..8].copy_from_slice(&hi.to_le_bytes());
        random[8..].copy_from_slice(&lo.to_le_bytes()[..2]);
        uuid::Builder::from_unix_timestamp_millis(unix_ms, &random).into_uuid()
    }
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What every event of this process carries, encoded once at `init`:
/// `,"tool":"…"` and `,"context":{…}`.
pub(crate) struct Fixed {
    pub(crate) tool: String,
    pub(crate) context: String,
}

impl Fixed {
    pub(crate) fn new(tool: &str, context: &serde_json::Map<String, serde_json::Value>) -> Fixed {
        let mut t = b",\"tool\":".to_vec();
        json_str(&mut t, tool);
        let mut c = b",\"context\":".to_vec();
        let _ = serde_json::to_writer(&mut c, context);
        Fixed {
            tool: String::from_utf8(t).unwrap_or_default(),
            context: String::from_utf8(c).unwrap_or_default(),
        }
    }
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Append `event` as one JSON line (with its `\n`) to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, ids: &Ids, fixed: &Fixed, event: &Event<'_>) {
    let now = unix_ms();
    let mut id = uuid::Uuid::encode_buffer();
    let id = ids.next(now).hyphenated().encode_lower(&mut id);
    out.extend_from_slice(b"{\"event_id\":\"");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b"\",\"timestamp\":");
    let _ = write!(out, "{now}");
    out.extend_from_slice(b",\"level\":\"");
    out.extend_from_slice(event.level.as_str().as_bytes());
    out.extend_from_slice(b"\",\"event_type\":");
    json_str(out, event.event_type);
    out.extend_from_slice(fixed.tool.as_bytes());
    if let Some(c) = event.command {
        out.extend_from_slice(b",\"command\":");
        json_str(out, c);
    }
    if let Some(d) = event.duration_ms {
        let _ = write!(out, ",\"duration_ms\":{d}");
    }
    if let Some(e) = event.error_type {
        out.extend_from_slice(b",\"error_type\":");
        json_str(out, e);
    }
    for (k, v) in &event.fields {
        if RESERVED.contains(k) {
            continue;
        }
        out.push(b',');
        json_str(out, k);
        out.push(b':');
        let _ = serde_json::to_writer(&mut *out, v);
    }
    out.extend_from_slice(fixed.context.as_bytes());
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Level;
    use serde_json::json;
    use wraith_event::wire;

    fn check(event: Event<'_>, expected: serde_json::Value) {
        let ids = Ids::new();
        let mut ctx = serde_json::Map::new();
        ctx.insert("os".into(), json!("linux"));
        let fixed = Fixed::new("t\"ool", &ctx);
        let mut out = Vec::new();
        encode(&mut out, &ids, &fixed, &event);
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1);
        let mut v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        // The shared wire type reads what the SDK writes.
        let parsed: wire::Event = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed.event_type, event.event_type);
        assert_eq!(parsed.level, Some(event.level));
        let id = v["event_id"].as_str().unwrap();
        let id = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(id.get_version_num(), 7);
        assert!(v["timestamp"].as_u64().unwrap() > 1_700_000_000_000);
        let o = v.as_object_mut().unwrap();
        o.remove("event_id");
        o.remove("timestamp");
        assert_eq!(v, expected);
    }

    #[test]
    fn events_as_json() {
        check(
            Event::new("tool_invoked").command("scan"),
            json!({"level": "info", "event_type": "tool_invoked", "tool": "t\"ool", "command": "scan", "context": {"os": "linux"}}),
        );
        check(
            Event::new("tool_failed")
                .level(Level::Error)
                .command("deploy")
                .duration_ms(840)
                .error_type("Timeout")
                .field("attempt", 2)
                .field("nested", json!({"a": [1, "x\n"]}))
                .field("tool", "ignored: reserved")
                .field("context", "ignored too"),
            json!({"level": "error", "event_type": "tool_failed", "tool": "t\"ool", "command": "deploy",
                   "duration_ms": 840, "error_type": "Timeout", "attempt": 2, "nested": {"a": [1, "x\n"]},
                   "context": {"os": "linux"}}),
        );
    }

    #[test]
    fn ids_are_distinct_and_time_ordered() {
        let ids = Ids::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100_000 {
            assert!(seen.insert(ids.next(1_764_633_600_000)));
        }
        let a = ids.next(1_764_633_600_000);
        let b = ids.next(1_764_633_600_001);
        assert!(a < b);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
    }
}
