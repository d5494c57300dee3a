//! `<spool-dir>/status.json`: what the daemon is doing, written as it
//! changes (at most twice a second), read by `wraith-daemon status`.

use crate::daemon::Config;
use crate::spool::Spool;
use serde_json::{Value, json};
use std::path::Path;
use wraith_event::wire::BatchAnswer;

#[derive(Debug, Clone, Default)]
pub struct Status {
    pub pid: u32,
    pub version: &'static str,
    pub socket: String,
    pub endpoint: String,
    pub parent_pid: Option<u32>,
    pub dry_run: bool,
    pub started_ms: u64,
    pub stopped_ms: Option<u64>,
    /// Events received and queued in memory.
    pub queued: u64,
    pub received: u64,
    pub invalid_lines: u64,
    pub spool_batches: u64,
    pub spool_events: u64,
    pub spool_bytes: u64,
    pub sent_batches: u64,
    pub sent_events: u64,
    pub accepted: u64,
    pub dropped_by_gateway: u64,
    pub dead_lettered: u64,
    pub invalid_at_gateway: u64,
    /// Events in batches the gateway refused for good (4xx): not retried.
    pub rejected_events: u64,
    pub dropped_queue_full: u64,
    pub dropped_spool_full: u64,
    pub last_send_ms: Option<u64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<u64>,
    pub next_retry_ms: Option<u64>,
}

impl Status {
    pub fn new(cfg: &Config) -> Status {
        Status {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION"),
            socket: cfg.socket.display().to_string(),
            endpoint: cfg.endpoint.clone(),
            parent_pid: cfg.parent_pid,
            dry_run: cfg.dry_run,
            started_ms: crate::time::unix_ms(),
            ..Default::default()
        }
    }

    pub fn set_spool(&mut self, s: &Spool) {
        self.spool_batches = s.batches();
        self.spool_events = s.events();
        self.spool_bytes = s.bytes();
    }

    pub fn record_sent(&mut self, events: u64, answer: Option<&BatchAnswer>) {
        self.sent_batches += 1;
        self.sent_events += events;
        self.last_send_ms = Some(crate::time::unix_ms());
        self.next_retry_ms = None;
        if let Some(a) = answer {
            self.accepted += a.accepted as u64;
            self.dropped_by_gateway += a.dropped as u64;
            self.dead_lettered += a.dead_lettered as u64;
            self.invalid_at_gateway += a.invalid as u64;
        }
    }

    pub fn record_error(&mut self, e: String) {
        self.last_error = Some(e);
        self.last_error_ms = Some(crate::time::unix_ms());
    }

    pub fn to_json(&self) -> Value {
        json!({
            "pid": self.pid,
            "version": self.version,
            "socket": self.socket,
            "endpoint": self.endpoint,
            "parent_pid": self.parent_pid,
            "dry_run": self.dry_run,
            "started_ms": self.started_ms,
            "stopped_ms": self.stopped_ms,
            "queued": self.queued,
            "received": self.received,
            "invalid_lines": self.invalid_lines,
            "spool": {"batches": self.spool_batches, "events": self.spool_events, "bytes": self.spool_bytes},
            "sent": {"batches": self.sent_batches, "events": self.sent_events, "accepted": self.accepted,
                     "dropped": self.dropped_by_gateway, "dead_lettered": self.dead_lettered,
                     "invalid": self.invalid_at_gateway},
            "rejected_events": self.rejected_events,
            "dropped_queue_full": self.dropped_queue_full,
            "dropped_spool_full": self.dropped_spool_full,
            "last_send_ms": self.last_send_ms,
            "last_error": self.last_error,
            "last_error_ms": self.last_error_ms,
            "next_retry_ms": self.next_retry_ms,
        })
    }

    /// Write atomically (beside, then rename).
    pub fn write(&self, path: &Path) {
        let tmp = path.with_extension("json.tmp");
        let text = format!("{:#}\n", self.to_json());
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }
}

/// `wraith-daemon status`: the status file, and whether its daemon is alive.
pub fn show(spool_dir: &Path, json_out: bool) -> anyhow::Result<bool> {
    use anyhow::Context;
    let path = spool_dir.join("status.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if json_out {
                println!("{}", json!({"running": false}));
            } else {
                println!("not running (no status in {})", spool_dir.display());
            }
            return Ok(false);
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut v: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let pid = v["pid"].as_u64().unwrap_or(0) as u32;
    let running = v["stopped_ms"].is_null() && pid != 0 && crate::daemon::process_alive(pid);
    v["running"] = json!(running);
    if json_out {
        println!("{v}");
        return Ok(running);
    }
    let when = |k: &str| {
        v[k].as_u64()
            .map(crate::time::rfc3339)
            .unwrap_or_else(|| "never".into())
    };
    println!(
        "{} (pid {pid}, version {})",
        if running { "running" } else { "not running" },
        v["version"].as_str().unwrap_or("?")
    );
    println!("socket:     {}", v["socket"].as_str().unwrap_or(""));
    println!("endpoint:   {}", v["endpoint"].as_str().unwrap_or(""));
    println!("started:    {}", when("started_ms"));
    println!("queue:      {} events in memory", v["queued"]);
    println!(
        "spool:      {} batches, {} events, {} bytes",
        v["spool"]["batches"], v["spool"]["events"], v["spool"]["bytes"]
    );
    println!(
        "received:   {} events, {} invalid lines",
        v["received"], v["invalid_lines"]
    );
    println!(
        "sent:       {} events in {} batches ({} accepted, {} dropped, {} dead-lettered, {} invalid)",
        v["sent"]["events"],
        v["sent"]["batches"],
        v["sent"]["accepted"],
        v["sent"]["dropped"],
        v["sent"]["dead_lettered"],
        v["sent"]["invalid"]
    );
    println!(
        "lost:       {} refused by the gateway, {} queue full, {} spool full",
        v["rejected_events"], v["dropped_queue_full"], v["dropped_spool_full"]
    );
    println!("last send:  {}", when("last_send_ms"));
    match v["last_error"].as_str() {
        Some(e) => println!("last error: {e} (at {})", when("last_error_ms")),
        None => println!("last error: none"),
    }
    Ok(running)
}
