//! The NATS JetStream sink.
//!
//! Each surviving event is published to `<subject_prefix>.<destination>`
//! with `Nats-Msg-Id` set to its `event_id`, so a publish retried within the
//! stream's duplicate window (a client resending after a 503, a gateway
//! restarted mid-batch) is stored once. Every publish of a batch is in flight
//! at once; the batch is durable when JetStream has acknowledged each one.
//!
//! The client reconnects by itself. While it is disconnected, or before the
//! stream has been created or checked, [`Sink::readiness`] says why and writes
//! fail at once with [`SinkError::Unavailable`] (503 with `Retry-After` to the
//! client) instead of waiting for an acknowledgement that cannot come.

use super::{BatchMeta, Readiness, Record, RecordKind, Sink, SinkError, SinkFuture};
use crate::config::NatsSinkConfig;
use async_nats::connection::State;
use async_nats::jetstream::{self, message::PublishMessage, stream};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SINK: &str = "nats";

/// Header carrying the logical destination of a message.
pub const DESTINATION_HEADER: &str = "Wraith-Destination";
/// Header carrying when the gateway received the event (epoch milliseconds).
pub const RECEIVED_AT_HEADER: &str = "Wraith-Received-At";
/// Header carrying the authenticated client, when there is one.
pub const CLIENT_HEADER: &str = "Wraith-Client";

/// Why NATS could not be used.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("invalid NATS URL {url:?}: {message}")]
    Url { url: String, message: String },
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("JetStream stream `{stream}`: {message}")]
    Stream { stream: String, message: String },
}

/// Connect to NATS. Returns at once: the client keeps trying in the
/// background (a gateway may start before its NATS does) and reconnects
/// whenever the connection drops, backing off to at most one try per second.
pub async fn connect(url: &str, name: &str) -> Result<async_nats::Client, NatsError> {
    let addrs: Vec<async_nats::ServerAddr> = url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            u.parse().map_err(|e: std::io::Error| NatsError::Url {
                url: u.to_string(),
                message: e.to_string(),
            })
        })
        .collect::<Result<_, _>>()?;
    if addrs.is_empty() {
        return Err(NatsError::Url {
            url: url.to_string(),
            message: "no server given".into(),
        });
    }
    let shown = url.to_string();
    async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((attempts as u64 * 100).clamp(100, 1000))
        })
        .event_callback(move |event| {
            let url = shown.clone();
            async move {
                match event {
                    async_nats::Event::Connected => tracing::info!(%url, "connected to NATS"),
                    async_nats::Event::Disconnected => {
                        tracing::warn!(%url, "disconnected from NATS; reconnecting")
                    }
                    other => tracing::debug!(%url, event = %other, "NATS event"),
                }
            }
        })
        .connect(addrs)
        .await
        .map_err(|e| NatsError::Connect {
            url: url.to_string(),
            message: e.to_string(),
        })
}

/// The stream's configuration as the gateway wants it.
pub fn stream_config(cfg: &NatsSinkConfig) -> stream::Config {
    stream::Config {
        name: cfg.stream.clone(),
        subjects: vec![format!("{}.>", cfg.subject_prefix)],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_age: cfg.max_age,
        max_bytes: if cfg.max_bytes.as_u64() == 0 {
            -1
        } else {
            cfg.max_bytes.as_u64() as i64
        },
        duplicate_window: cfg.duplicate_window,
        num_replicas: cfg.replicas,
        ..Default::default()
    }
}

/// Create the stream, or check that the one there takes our subjects.
pub async fn ensure_stream(
    js: &jetstream::Context,
    cfg: &NatsSinkConfig,
) -> Result<stream::Stream, NatsError> {
    let err = |message: String| NatsError::Stream {
        stream: cfg.stream.clone(),
        message,
    };
    let want = stream_config(cfg);
    let mut stream = js
        .get_or_create_stream(want.clone())
        .await
        .map_err(|e| err(e.to_string()))?;
    let info = stream.info().await.map_err(|e| err(e.to_string()))?;
    let subject = &want.subjects[0];
    if !info.config.subjects.iter().any(|s| s == subject) {
        return Err(err(format!(
            "exists but takes subjects {:?}, not {subject:?}; add it to the stream or set sinks.nats.stream to another name",
            info.config.subjects
        )));
    }
    if info.config.duplicate_window.is_zero() {
        return Err(err(
            "exists without a duplicate window, so retried publishes would be stored twice".into(),
        ));
    }
    Ok(stream)
}

/// The JetStream sink.
pub struct NatsSink {
    client: async_nats::Client,
    js: jetstream::Context,
    url: String,
    /// Subject of each destination (`<prefix>.<name>` unless configured).
    subjects: Mutex<HashMap<Arc<str>, String>>,
    subject_prefix: String,
    dead_letter_subject: String,
    /// `None` once the stream exists and takes our subjects, else why not.
    stream_problem: Arc<Mutex<Option<String>>>,
}

impl NatsSink {
    /// Connect and start making sure of the stream (retried every second
    /// until it works). `subjects` maps destinations whose subject is not the
    /// default one.
    pub async fn start(
        cfg: &NatsSinkConfig,
        subjects: HashMap<String, String>,
    ) -> Result<Arc<NatsSink>, NatsError> {
        let client = connect(&cfg.url, "wraith-gateway").await?;
        let js = jetstream::ContextBuilder::new()
            .timeout(cfg.ack_timeout)
            .ack_timeout(cfg.ack_timeout)
            .build(client.clone());
        let stream_problem = Arc::new(Mutex::new(Some(format!(
            "connecting to {} and checking stream `{}`",
            cfg.url, cfg.stream
        ))));
        let sink = Arc::new(NatsSink {
            client,
            js: js.clone(),
            url: cfg.url.clone(),
            subjects: Mutex::new(
                subjects
                    .into_iter()
                    .map(|(k, v)| (Arc::from(k.as_str()), v))
                    .collect(),
            ),
            subject_prefix: cfg.subject_prefix.clone(),
            dead_letter_subject: format!("{}.{}", cfg.subject_prefix, super::DLQ),
            stream_problem: stream_problem.clone(),
        });
        let cfg = cfg.clone();
        tokio::spawn(async move {
            let mut logged = false;
            loop {
                match ensure_stream(&js, &cfg).await {
                    Ok(_) => {
                        tracing::info!(stream = %cfg.stream, subjects = %format!("{}.>", cfg.subject_prefix), replicas = cfg.replicas, "JetStream stream ready");
                        *stream_problem.lock().expect("lock") = None;
                        break;
                    }
                    Err(e) => {
                        if !logged {
                            tracing::warn!(error = %e, "JetStream stream not ready yet; retrying every second");
                            logged = true;
                        }
                        *stream_problem.lock().expect("lock") = Some(e.to_string());
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(sink)
    }

    fn subject(&self, r: &Record) -> String {
        if r.kind == RecordKind::DeadLetter {
            return self.dead_letter_subject.clone();
        }
        let mut subjects = self.subjects.lock().expect("lock");
        if let Some(s) = subjects.get(&r.destination) {
            return s.clone();
        }
        let s = format!("{}.{}", self.subject_prefix, r.destination);
        // Destinations come from a bounded, validated set of names.
        if subjects.len() < 4096 {
            subjects.insert(r.destination.clone(), s.clone());
        }
        s
    }

    async fn publish_all(&self, records: Vec<Record>, meta: &BatchMeta) -> Result<(), SinkError> {
        if let Readiness::NotReady(message) = self.readiness() {
            return Err(SinkError::Unavailable {
                sink: SINK,
                message,
            });
        }
        let failed = |e: &dyn std::fmt::Display| SinkError::Write {
            sink: SINK,
            message: format!("publishing to {}: {e}", self.url),
        };
        let received_ms = (meta.received_at.unix_timestamp_nanos() / 1_000_000).to_string();
        let mut acks = Vec::with_capacity(records.len());
        for r in records {
            let subject = self.subject(&r);
            let mut msg = PublishMessage::build()
                .payload(r.line)
                .header(DESTINATION_HEADER, &*r.destination)
                .header(RECEIVED_AT_HEADER, received_ms.as_str());
            if let Some(id) = &r.event_id {
                msg = match r.kind {
                    RecordKind::Event => msg.message_id(&**id),
                    RecordKind::DeadLetter => msg.message_id(format!("dlq-{id}")),
                };
            }
            if let Some(client) = &meta.client {
                msg = msg.header(CLIENT_HEADER, &**client);
            }
            let ack = self
                .js
                .send_publish(subject, msg)
                .await
                .map_err(|e| failed(&e))?;
            acks.push(ack.into_future());
        }
        for result in futures_util::future::join_all(acks).await {
            result.map_err(|e| failed(&e))?;
        }
        Ok(())
    }
}

impl Sink for NatsSink {
    fn name(&self) -> &'static str {
        SINK
    }

    fn write<'a>(
        &'a self,
        records: Vec<Record>,
        meta: &'a BatchMeta,
    ) -> SinkFuture<'a, Result<(), SinkError>> {
        Box::pin(self.publish_all(records, meta))
    }

    fn readiness(&self) -> Readiness {
        match self.client.connection_state() {
            State::Connected => {}
            State::Pending => {
                return Readiness::NotReady(format!("connecting to NATS at {}", self.url));
            }
            State::Disconnected => {
                return Readiness::NotReady(format!(
                    "disconnected from NATS at {}; reconnecting",
                    self.url
                ));
            }
        }
        match &*self.stream_problem.lock().expect("lock") {
            None => Readiness::Ready,
            Some(p) => Readiness::NotReady(p.clone()),
        }
    }

    fn shutdown(&self) -> SinkFuture<'_, ()> {
        Box::pin(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), self.client.flush()).await;
        })
    }
}
