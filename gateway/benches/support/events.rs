//! The realistic events themselves, shared by the gateway's benches and
//! pii-scrub's (which includes this file by path).

use serde_json::{Value, json};

const WORDS: &[&str] = &[
    "scan",
    "finished",
    "with",
    "three",
    "findings",
    "in",
    "the",
    "schema",
    "migration",
    "step",
    "retrying",
    "connection",
    "to",
    "upstream",
    "after",
    "timeout",
    "cache",
    "warm",
    "index",
    "rebuilt",
    "for",
    "tables",
    "queued",
    "worker",
    "pool",
    "resized",
    "latency",
    "budget",
    "exceeded",
    "by",
    "plan",
    "applied",
    "rows",
    "skipped",
    "because",
    "unchanged",
];

/// Filler prose of about `len` bytes, different for each `seed`.
fn prose(seed: usize, len: usize) -> String {
    let mut s = String::with_capacity(len + 16);
    let mut k = seed.wrapping_mul(2654435761);
    while s.len() < len {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(WORDS[k % WORDS.len()]);
        k = k
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            >> 7;
    }
    s
}

fn stack_trace(n: usize) -> String {
    format!(
        "Traceback (most recent call last):\n  File \"/usr/lib/python3.11/site-packages/migrateiq/cli.py\", line {}, in main\n    return run(args)\n  File \"/usr/lib/python3.11/site-packages/migrateiq/scan.py\", line {}, in run\n    conn = connect(cfg.dsn, timeout=cfg.timeout)\n  File \"/usr/lib/python3.11/site-packages/migrateiq/db.py\", line 88, in connect\n    raise ConnectionError(f\"could not reach {{host}}\")\nConnectionError: could not reach db-{}.internal:5432",
        40 + n % 60,
        100 + n % 300,
        n % 7
    )
}

fn command_line(n: usize) -> String {
    let mut c = format!(
        "migrateiq scan --deep --schema public --jobs {} --output /var/lib/migrateiq/reports/run-{n}.json --exclude 'tmp_*' --since 2026-11-0{}",
        1 + n % 8,
        1 + n % 9
    );
    if n % 16 == 3 {
        c.push_str(" --token ghp_8fK2mQ9xLw3vT7bN1cR5yH0dJ4sZ6aE2uP9i");
    }
    c
}

fn config_text(n: usize) -> String {
    format!(
        "[scan]\ndepth = deep\njobs = {}\nretries = 3\n[output]\nformat = json\npath = /var/lib/migrateiq/reports\n[db]\nhost = db-{}.internal\nport = 5432\npool = 16\n",
        1 + n % 8,
        n % 7
    )
}

/// One realistic event, the `n`th of a deterministic stream.
pub fn event(n: usize) -> Value {
    let target = 500 + (n * 37) % 300;
    let mut message = match n % 4 {
        0 => format!("scan of schema public failed after {} ms: ", 800 + n % 900),
        1 => "migration plan applied: ".to_string(),
        2 => "configuration loaded: ".to_string(),
        _ => "worker pool resized: ".to_string(),
    };
    if n.is_multiple_of(4) {
        message.push_str(&format!(
            "report sent to ada.lovelace{}@example.com; ",
            n % 100
        ));
    }
    if n % 8 == 1 {
        message.push_str(&format!("peer 203.0.113.{} closed the stream; ", n % 250));
    }
    let (event_type, extra) = match n % 4 {
        0 => (
            "tool_failed",
            json!({"error_type": "ConnectionError", "traceback": stack_trace(n)}),
        ),
        1 => ("tool_invoked", json!({"args": command_line(n)})),
        2 => ("tool_succeeded", json!({"config": config_text(n)})),
        _ => (
            "tool_succeeded",
            json!({"workers": {"before": 4, "after": 8, "queue_depth": n % 50}}),
        ),
    };
    let mut e = json!({
        "event_id": format!("01890a5d-ac96-774b-bcce-{:012x}", n),
        "timestamp": "2026-11-22T10:00:00.123Z",
        "level": if n % 10 == 9 { "error" } else { "info" },
        "event_type": event_type,
        "tool": "migrateiq",
        "command": "scan",
        "duration_ms": 840 + (n % 1000),
        "context": {
            "installation_id": format!("9f1c2d3e-8d4a-4e6b-9f0a-{:012x}", n % 977),
            "tool_version": "1.4.2",
            "os": "linux",
            "arch": "x86_64",
            "ci": n.is_multiple_of(3),
            "runtime": {"python": "3.11.7", "locale": "en_US.UTF-8", "terminal": "xterm-256color"},
        },
    });
    let obj = e.as_object_mut().unwrap();
    if let Value::Object(extra) = extra {
        obj.extend(extra);
    }
    let size = serde_json::to_vec(&e).unwrap().len() + message.len() + 14;
    if size < target {
        message.push_str(&prose(n, target - size));
    }
    e["message"] = Value::String(message);
    e
}

/// `count` events starting at the `from`th.
pub fn events(from: usize, count: usize) -> Vec<Value> {
    (from..from + count).map(event).collect()
}
