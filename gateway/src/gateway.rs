//! The glue between ingest and the rest: runs a batch through the current
//! chain, hands the outcome to the sink and answers once it is durable.

use crate::pipeline::registry::Registry;
use crate::pipeline::{DeadLetterKind, Disposition};
use crate::sinks::file::FileSink;
use crate::sinks::{DLQ, Record, SinkError};
use crate::telemetry::{Metrics, SinkLabels};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

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

/// Why a batch could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("internal error while processing the batch: {0}")]
    Internal(String),
}

/// The running gateway's processing side.
pub struct Gateway {
    pub registry: Arc<Registry>,
    pub sink: FileSink,
    pub metrics: Arc<Metrics>,
}

impl Gateway {
    /// Run already-validated events through the chain and store the outcome.
    /// Returns only after the sink has made every stored event durable.
    pub async fn submit(&self, events: Vec<Value>) -> Result<Submitted, SubmitError> {
        let chain = self.registry.chain();
        let (records, submitted) = tokio::task::spawn_blocking(move || {
            let dispositions = chain.run(events);
            to_records(dispositions)
        })
        .await
        .map_err(|e| SubmitError::Internal(e.to_string()))?;
        let started = Instant::now();
        self.sink.write(records).await?;
        self.metrics
            .sink_write_seconds
            .get_or_create(&SinkLabels { sink: "file" })
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

/// Serialise dispositions into sink records.
pub fn to_records(dispositions: Vec<Disposition>) -> (Vec<Record>, Submitted) {
    let mut s = Submitted::default();
    let mut records = Vec::with_capacity(dispositions.len());
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    for d in dispositions {
        match d {
            Disposition::Keep { event, destination } => {
                s.accepted += 1;
                records.push(Record {
                    destination,
                    line: serde_json::to_vec(&event).expect("JSON values serialize"),
                });
            }
            Disposition::Drop { .. } => s.dropped += 1,
            Disposition::DeadLetter {
                event,
                plugin,
                kind,
                reason,
            } => {
                s.dead_lettered += 1;
                records.push(Record {
                    destination: DLQ.to_string(),
                    line: serde_json::to_vec(&dead_letter(event, &plugin, kind, &reason, &now))
                        .expect("JSON values serialize"),
                });
            }
        }
    }
    (records, s)
}

fn dead_letter(event: Value, plugin: &str, kind: DeadLetterKind, reason: &str, at: &str) -> Value {
    json!({
        "dlq": { "plugin": plugin, "kind": kind, "reason": reason, "at": at },
        "event": event,
    })
}
