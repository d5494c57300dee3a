//! Where events go after the chain, behind one small [`Sink`] trait.
//!
//! - [`file`]: JSON Lines under the data folder, the embedded default; it
//!   always keeps the dead letters (owner-only files).
//! - [`nats`]: NATS JetStream, on when a URL is configured; the loader
//!   (`crate::loader`) moves its events on into ClickHouse.
//!
//! [`Sinks`] fans one batch out to every sink it goes to and returns once all
//! of them made their part durable: each JSON line is serialised once and
//! shared (as [`Bytes`]) by every sink that takes it.

pub mod file;
pub mod nats;

use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use wraith_event::destination::{DEFAULT as DEFAULT_DESTINATION, DLQ};

/// What a record is, so each sink can take its share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// An event the chain kept.
    Event,
    /// A rejected or faulted event with its reason.
    DeadLetter,
}

/// One serialised event for the sinks.
#[derive(Debug, Clone)]
pub struct Record {
    pub kind: RecordKind,
    /// The logical destination: `events`, a route name, or [`DLQ`].
    pub destination: Arc<str>,
    /// One JSON document, without the trailing newline.
    pub line: Bytes,
    /// The event's `event_id`, the deduplication key downstream.
    pub event_id: Option<Arc<str>>,
}

/// What the gateway knows about a batch besides its events.
#[derive(Debug, Clone)]
pub struct BatchMeta {
    /// How the batch arrived (`http`, `ndjson`, …): a fixed set, fit for labels.
    pub source: &'static str,
    /// The authenticated client, when tokens are configured.
    pub client: Option<Arc<str>>,
    /// When the gateway received it.
    pub received_at: time::OffsetDateTime,
}

impl BatchMeta {
    /// Metadata for a batch received now.
    pub fn now(source: &'static str) -> Self {
        BatchMeta {
            source,
            client: None,
            received_at: time::OffsetDateTime::now_utc(),
        }
    }
}

/// Whether a sink can take data now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum Readiness {
    Ready,
    /// Not now; the reason says why (shown in `/ready`).
    NotReady(String),
}

/// Why a sink could not take data. Every variant is answered with 503 and
/// `Retry-After`: the client may send the same events again.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    #[error("sink `{sink}` could not write: {message}")]
    Write { sink: &'static str, message: String },
    #[error("sink `{sink}` is unavailable: {message}")]
    Unavailable { sink: &'static str, message: String },
    #[error("sink `{sink}` is shut down")]
    Closed { sink: &'static str },
}

/// A boxed future, so that sinks are object-safe.
pub type SinkFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A place events become durable.
pub trait Sink: Send + Sync {
    /// A short fixed name, used in metrics and messages (`file`, `nats`).
    fn name(&self) -> &'static str;
    /// Make `records` durable; resolves only once every one of them is.
    fn write<'a>(
        &'a self,
        records: Vec<Record>,
        meta: &'a BatchMeta,
    ) -> SinkFuture<'a, Result<(), SinkError>>;
    /// Whether a write could succeed now.
    fn readiness(&self) -> Readiness;
    /// Stop taking writes, finish the queued ones and release resources.
    fn shutdown(&self) -> SinkFuture<'_, ()>;
}

/// One sink and the share of records it takes.
pub struct Target {
    pub sink: Arc<dyn Sink>,
    pub events: bool,
    pub dead_letters: bool,
}

/// Every configured sink.
pub struct Sinks {
    targets: Vec<Target>,
}

impl Sinks {
    pub fn new(targets: Vec<Target>) -> Self {
        Sinks { targets }
    }

    /// The sinks, in configuration order.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The first sink that cannot take data now, with its reason.
    pub fn not_ready(&self) -> Option<SinkError> {
        self.targets.iter().find_map(|t| match t.sink.readiness() {
            Readiness::Ready => None,
            Readiness::NotReady(message) => Some(SinkError::Unavailable {
                sink: t.sink.name(),
                message,
            }),
        })
    }

    /// Hand every record to the sinks that take its kind, all at once, and
    /// return once each has made its share durable. `observe` is called with
    /// each sink's name and how long it took.
    pub async fn write(
        &self,
        records: Vec<Record>,
        meta: &BatchMeta,
        observe: impl Fn(&'static str, std::time::Duration),
    ) -> Result<(), SinkError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut writes = Vec::with_capacity(self.targets.len());
        for t in &self.targets {
            let share: Vec<Record> = records
                .iter()
                .filter(|r| match r.kind {
                    RecordKind::Event => t.events,
                    RecordKind::DeadLetter => t.dead_letters,
                })
                .cloned()
                .collect();
            if share.is_empty() {
                continue;
            }
            let sink = t.sink.clone();
            writes.push(async move {
                let started = std::time::Instant::now();
                let r = sink.write(share, meta).await;
                (sink.name(), started.elapsed(), r)
            });
        }
        let mut first_error = None;
        for (name, took, result) in futures_util::future::join_all(writes).await {
            observe(name, took);
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Shut every sink down.
    pub async fn shutdown(&self) {
        for t in &self.targets {
            t.sink.shutdown().await;
        }
    }
}
