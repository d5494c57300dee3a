//! The glue between ingest and the rest: runs a batch through the current
//! chain, hands the outcome to the sinks and answers once it is durable.
//!
//! At most `server.max_batches_in_flight` batches are in the chain or waiting
//! for a sink at once; a request that finds no room within
//! `server.busy_timeout` is refused with 503 and `Retry-After`, so a sink
//! that cannot keep up slows clients down instead of growing the gateway.
//! Of those, at most `plugins.workers` (the CPU cores) run through the chain
//! at once, so each plugin needs no more instances than that.

use crate::activity::Activity;
use crate::ingest::CLIENT_FIELD;
use crate::pipeline::registry::Registry;
use crate::pipeline::trace::{Step, Trace};
use crate::pipeline::{DeadLetterKind, Disposition, Events, Kept};
use crate::sinks::{BatchMeta, DEFAULT_DESTINATION, DLQ, Record, RecordKind, SinkError, Sinks};
use crate::telemetry::{Metrics, RefusedLabels, SinkLabels};
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use wraith_event::flat::{LineWriter, ValueRef};

/// Counts of what became of a submitted batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Submitted {
    /// Stored at their destination.
    pub accepted: usize,
    /// Dropped by a plugin on purpose.
    pub dropped: usize,
    /// Written to the dead-letter queue.
    pub dead_lettered: usize,
}

/// A batch of validated events and what the gateway knows about it.
#[derive(Debug)]
pub struct Batch {
    pub events: Events,
    pub meta: BatchMeta,
}

/// Why a batch could not be taken. Each is answered with 503 and
/// `Retry-After`: nothing of it was acknowledged, so sending it again is safe.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(
        "the gateway is at its limit of {limit} batches in flight (server.max_batches_in_flight); retry shortly"
    )]
    Busy { limit: usize },
    #[error("internal error while processing the batch: {0}")]
    Internal(String),
}

/// The running gateway's processing side.
pub struct Gateway {
    pub registry: Arc<Registry>,
    pub sinks: Sinks,
    pub metrics: Arc<Metrics>,
    /// Throughput history and recent dead-letter reasons (the status page).
    pub activity: Arc<Activity>,
    /// When the gateway started.
    pub started: std::time::Instant,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    /// Batches running through the chain at once (`plugins.workers`): the
    /// chain is CPU work, so more than the cores only costs plugin instances.
    chain_slots: Arc<Semaphore>,
    busy_timeout: Duration,
    /// The declared destinations, when the config declares any: an event
    /// routed elsewhere is dead-lettered instead of stored somewhere unplanned.
    destinations: arc_swap::ArcSwapOption<HashSet<String>>,
}

impl Gateway {
    pub fn new(
        registry: Arc<Registry>,
        sinks: Sinks,
        metrics: Arc<Metrics>,
        max_in_flight: usize,
        busy_timeout: Duration,
    ) -> Self {
        Gateway {
            registry,
            sinks,
            metrics,
            activity: Arc::new(Activity::default()),
            started: std::time::Instant::now(),
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            chain_slots: Arc::new(Semaphore::new(
                crate::config::PluginsConfig::default().workers(),
            )),
            busy_timeout,
            destinations: arc_swap::ArcSwapOption::empty(),
        }
    }

    /// Run at most `workers` batches through the chain at once.
    pub fn with_chain_workers(mut self, workers: usize) -> Self {
        self.chain_slots = Arc::new(Semaphore::new(workers.max(1)));
        self
    }

    /// Only these destinations (besides the default one) may be routed to.
    pub fn with_destinations(self, names: impl IntoIterator<Item = String>) -> Self {
        self.set_destinations(names);
        self
    }

    /// Replace the declared destinations (a config reload).
    pub fn set_destinations(&self, names: impl IntoIterator<Item = String>) {
        let set: HashSet<String> = names.into_iter().collect();
        self.destinations
            .store((!set.is_empty()).then(|| Arc::new(set)));
    }

    /// One of the `plugins.workers` places in the chain.
    async fn chain_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, SubmitError> {
        self.chain_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| SubmitError::Internal(e.to_string()))
    }

    /// Run already-validated events through the chain and store the outcome.
    /// Returns only after every sink has made its share durable.
    pub async fn submit(&self, batch: Batch) -> Result<Submitted, SubmitError> {
        let refused = |reason: &'static str| {
            self.metrics
                .batches_refused
                .get_or_create(&RefusedLabels { reason })
                .inc();
        };
        // Refuse before doing any work when a sink cannot take data.
        if let Some(e) = self.sinks.not_ready() {
            refused("sink_unavailable");
            return Err(e.into());
        }
        let permit =
            match tokio::time::timeout(self.busy_timeout, self.in_flight.clone().acquire_owned())
                .await
            {
                Ok(Ok(p)) => p,
                _ => {
                    refused("busy");
                    return Err(SubmitError::Busy {
                        limit: self.max_in_flight,
                    });
                }
            };
        let _in_flight = InFlight::new(&self.metrics);
        let started = std::time::Instant::now();
        let chain = self.registry.chain();
        let Batch { events, meta } = batch;
        let known = self.destinations.load_full();
        let slot = self.chain_slot().await?;
        let client = meta.client.clone();
        let activity = self.activity.clone();
        let (records, submitted) = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let dispositions = chain.run(events);
            to_records(
                dispositions,
                client.as_deref(),
                known.as_deref(),
                Some(&activity),
            )
        })
        .await
        .map_err(|e| SubmitError::Internal(e.to_string()))?;
        let metrics = &self.metrics;
        let result = self
            .sinks
            .write(records, &meta, |sink, took| {
                metrics
                    .sink_write_seconds
                    .get_or_create(&SinkLabels { sink })
                    .observe(took.as_secs_f64());
            })
            .await;
        drop(permit);
        if let Err(e) = result {
            refused("sink_error");
            self.metrics
                .sink_errors
                .get_or_create(&SinkLabels {
                    sink: sink_name(&e),
                })
                .inc();
            return Err(e.into());
        }
        self.metrics
            .batch_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics
            .events_accepted
            .inc_by(submitted.accepted as u64);
        self.metrics.events_dropped.inc_by(submitted.dropped as u64);
        self.metrics
            .events_dead_lettered
            .inc_by(submitted.dead_lettered as u64);
        Ok(submitted)
    }
}

impl Gateway {
    /// Run one event through the live chain a plugin at a time, storing
    /// nothing: the playground's answer. The client field and the declared
    /// destinations are applied as [`Gateway::submit`] applies them.
    pub async fn trace(
        &self,
        event: Value,
        client: Option<Arc<str>>,
    ) -> Result<Trace, SubmitError> {
        let chain = self.registry.chain();
        let known = self.destinations.load_full();
        let slot = self.chain_slot().await?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let mut t = chain.trace(event);
            if let Some(after) = &mut t.after {
                set_client(after, client.as_deref());
            }
            if let Some(reason) = t
                .destination
                .as_deref()
                .and_then(|d| undeclared(d, known.as_deref()))
            {
                t.steps.push(Step {
                    plugin: "gateway".into(),
                    verdict: "reject",
                    reason: Some(reason.clone()),
                    destination: None,
                    edits: Vec::new(),
                    shadows: Vec::new(),
                });
                t.verdict = "dead_letter";
                t.destination = None;
                t.reason = Some(reason);
                t.plugin = Some("gateway".into());
                t.after = None;
            }
            t
        })
        .await
        .map_err(|e| SubmitError::Internal(e.to_string()))
    }
}

/// The authenticated client's name in [`CLIENT_FIELD`], whatever a plugin
/// wrote there (and no such field for an anonymous request).
fn set_client(event: &mut Value, client: Option<&str>) {
    let Value::Object(m) = event else { return };
    match client {
        Some(c) => {
            if m.get(CLIENT_FIELD).and_then(Value::as_str) != Some(c) {
                m.insert(CLIENT_FIELD.into(), Value::String(c.to_string()));
            }
        }
        None => {
            m.remove(CLIENT_FIELD);
        }
    }
}

fn sink_name(e: &SinkError) -> &'static str {
    match e {
        SinkError::Write { sink, .. }
        | SinkError::Unavailable { sink, .. }
        | SinkError::Closed { sink } => sink,
    }
}

/// Keeps `batches_in_flight` right however `submit` ends.
struct InFlight<'a>(&'a Metrics);

impl<'a> InFlight<'a> {
    fn new(metrics: &'a Metrics) -> Self {
        metrics.batches_in_flight.inc();
        InFlight(metrics)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.batches_in_flight.dec();
    }
}

/// Serialise dispositions into sink records, each line once, with the
/// client's name in [`CLIENT_FIELD`] whatever a plugin wrote there. With
/// `known` destinations, an event routed to another one is dead-lettered.
pub fn to_records(
    dispositions: Vec<Disposition>,
    client: Option<&str>,
    known: Option<&HashSet<String>>,
    activity: Option<&Activity>,
) -> (Vec<Record>, Submitted) {
    let mut s = Submitted::default();
    let mut records = Vec::with_capacity(dispositions.len());
    // Every line of the batch goes into one buffer, which the records then
    // share (one allocation, sized for the batch, instead of one per line).
    let mut lines: Vec<u8> = Vec::with_capacity(dispositions.len() * 1024);
    let mut ends: Vec<usize> = Vec::with_capacity(dispositions.len());
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let dlq: Arc<str> = Arc::from(DLQ);
    let mut last_destination: Option<Arc<str>> = None;
    let mut writer = LineWriter::default();
    for d in dispositions {
        let d = match d {
            Disposition::Keep { event, destination }
                if undeclared(&destination, known).is_some() =>
            {
                Disposition::DeadLetter {
                    event: event.into_value(),
                    plugin: "gateway".into(),
                    kind: DeadLetterKind::Rejected,
                    reason: undeclared(&destination, known).unwrap_or_default(),
                }
            }
            d => d,
        };
        match d {
            Disposition::Keep { event, destination } => {
                s.accepted += 1;
                // Consecutive events mostly share a destination: share the name.
                let destination = match &last_destination {
                    Some(l) if **l == *destination => l.clone(),
                    _ => {
                        let a: Arc<str> = Arc::from(destination.as_str());
                        last_destination = Some(a.clone());
                        a
                    }
                };
                let event_id = event_line(event, client, &mut lines, &mut writer);
                ends.push(lines.len());
                records.push(Record {
                    kind: RecordKind::Event,
                    destination,
                    event_id,
                    line: Bytes::new(),
                });
            }
            Disposition::Drop { .. } => s.dropped += 1,
            Disposition::DeadLetter {
                mut event,
                plugin,
                kind,
                reason,
            } => {
                set_client(&mut event, client);
                s.dead_lettered += 1;
                if let Some(a) = activity {
                    a.dead_letter(&now, &plugin, kind.as_str(), &reason);
                }
                let id = event_id(&event);
                serde_json::to_writer(
                    &mut lines,
                    &dead_letter(event, &plugin, kind, &reason, &now),
                )
                .expect("JSON values serialize");
                ends.push(lines.len());
                records.push(Record {
                    kind: RecordKind::DeadLetter,
                    destination: dlq.clone(),
                    event_id: id,
                    line: Bytes::new(),
                });
            }
        }
    }
    let lines = Bytes::from(lines);
    let mut start = 0;
    for (record, end) in records.iter_mut().zip(ends) {
        record.line = lines.slice(start..end);
        start = end;
    }
    (records, s)
}

/// Why `destination` may not be stored to, when the config declares
/// destinations and this is not one of them (nor the default).
fn undeclared(destination: &str, known: Option<&HashSet<String>>) -> Option<String> {
    (destination != DEFAULT_DESTINATION && known.is_some_and(|k| !k.contains(destination))).then(
        || format!("routed to `{destination}`, which is not among the config's [destinations]"),
    )
}

/// A kept event's JSON line, with the client field set, appended to
/// `line`; returns its `event_id`.
fn event_line(
    event: Kept,
    client: Option<&str>,
    line: &mut Vec<u8>,
    writer: &mut LineWriter,
) -> Option<Arc<str>> {
    let (batch, index) = match event {
        Kept::Value(mut v) => {
            set_client(&mut v, client);
            serde_json::to_writer(&mut *line, &v).expect("JSON values serialize");
            return event_id(&v);
        }
        Kept::Flat { batch, index } => (batch, index),
    };
    let view = batch.event(index);
    let id = view.get("event_id").and_then(|v| v.as_str()).map(Arc::from);
    // Written straight from the leaves when the field is already right:
    // what ingest set and no plugin touched.
    let right = match client {
        Some(c) => view.get(CLIENT_FIELD) == Some(ValueRef::String(c)),
        None => !view.has(CLIENT_FIELD),
    };
    if right {
        writer.write(&view, line);
    } else {
        let mut v = wraith_event::flat::to_value(&view);
        set_client(&mut v, client);
        serde_json::to_writer(&mut *line, &v).expect("JSON values serialize");
    }
    id
}

fn event_id(event: &Value) -> Option<Arc<str>> {
    event.get("event_id").and_then(Value::as_str).map(Arc::from)
}

fn dead_letter(event: Value, plugin: &str, kind: DeadLetterKind, reason: &str, at: &str) -> Value {
    json!({
        "dlq": { "plugin": plugin, "kind": kind, "reason": reason, "at": at },
        "event": event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wraith_event::flat::FlatBatch;

    /// An edited event's line, written from its leaves, carries the
    /// client's name exactly as the same event as a JSON value does,
    /// whatever a plugin left in the field.
    #[test]
    fn the_client_field_on_leaves_is_the_client_field_on_values() {
        let events = [
            json!({"event_id": "a", "_client": "suite", "x": 1}),
            json!({"event_id": "b", "_client": "admin", "x": 2}),
            json!({"event_id": "c", "x": 3}),
            json!({"event_id": "d", "_client": {"forged": [1, 2]}, "x": 4}),
            json!({"_client": "admin", "event_id": "e", "x": 5, "y": 6}),
        ];
        let batch = Arc::new(FlatBatch::encode(&events));
        // One writer for every line, as a batch's lines share one.
        let mut writer = LineWriter::default();
        for client in [Some("suite"), None] {
            for (i, event) in events.iter().enumerate() {
                // Appended after what the buffer holds already.
                let (mut flat, mut value) = (b"before".to_vec(), b"before".to_vec());
                let flat_id = event_line(
                    Kept::Flat {
                        batch: batch.clone(),
                        index: i,
                    },
                    client,
                    &mut flat,
                    &mut writer,
                );
                let value_id =
                    event_line(Kept::Value(event.clone()), client, &mut value, &mut writer);
                assert_eq!(
                    String::from_utf8(flat).unwrap(),
                    String::from_utf8(value).unwrap(),
                    "{event} as {client:?}"
                );
                assert_eq!(flat_id, value_id);
            }
        }
    }

    /// The records of a batch share one buffer: each holds exactly its own
    /// line, whatever mix of leaves, values, dead letters and drops came
    /// before it.
    #[test]
    fn each_record_holds_its_own_line() {
        let events = [
            json!({"event_id": "a", "x": 1, "s": "short"}),
            json!({"event_id": "b", "nested": {"y": [1, 2, "three"]}}),
        ];
        let batch = Arc::new(FlatBatch::encode(&events));
        let dispositions = vec![
            Disposition::Keep {
                event: Kept::Flat {
                    batch: batch.clone(),
                    index: 1,
                },
                destination: "default".into(),
            },
            Disposition::Drop {
                plugin: "p".into(),
                reason: "r".into(),
            },
            Disposition::DeadLetter {
                event: json!({"event_id": "c"}),
                plugin: "p".into(),
                kind: DeadLetterKind::Rejected,
                reason: "no".into(),
            },
            Disposition::Keep {
                event: Kept::Value(json!({"event_id": "d", "z": null})),
                destination: "errors".into(),
            },
            Disposition::Keep {
                event: Kept::Flat { batch, index: 0 },
                destination: "default".into(),
            },
        ];
        let (records, submitted) = to_records(dispositions, Some("suite"), None, None);
        assert_eq!(
            (
                submitted.accepted,
                submitted.dropped,
                submitted.dead_lettered
            ),
            (3, 1, 1)
        );
        let lines: Vec<Value> = records
            .iter()
            .map(|r| serde_json::from_slice(&r.line).expect("one JSON value per line"))
            .collect();
        assert_eq!(
            lines[0],
            json!({"event_id": "b", "nested": {"y": [1, 2, "three"]}, "_client": "suite"})
        );
        assert_eq!(
            lines[1]["event"],
            json!({"event_id": "c", "_client": "suite"})
        );
        assert_eq!(lines[1]["dlq"]["reason"], "no");
        assert_eq!(
            lines[2],
            json!({"event_id": "d", "z": null, "_client": "suite"})
        );
        assert_eq!(
            lines[3],
            json!({"event_id": "a", "x": 1, "s": "short", "_client": "suite"})
        );
        let ids: Vec<_> = records.iter().map(|r| r.event_id.as_deref()).collect();
        assert_eq!(ids, [Some("b"), Some("c"), Some("d"), Some("a")]);
        assert_eq!(&*records[2].destination, "errors");
    }
}
