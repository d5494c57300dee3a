//! `gateway load`: JetStream → ClickHouse.
//!
//! A durable pull consumer, shared by every loader process (JetStream hands
//! each message to one of them), fetches batches by count (`batch_size`) and
//! time (`flush_interval`), inserts them into ClickHouse with the
//! `clickhouse` crate and acknowledges them only after the insert succeeded.
//! While one batch is inserted the next is fetched and turned into rows on
//! another thread, so JetStream, the parsing and ClickHouse work at once; a
//! batch fetched ahead that had to wait longer than half of `ack_wait` is
//! given back rather than loaded (JetStream may have redelivered it).
//!
//! - ClickHouse away: the insert is retried with backoff while the batch is
//!   kept in hand (progress acks stop JetStream from redelivering it
//!   elsewhere); nothing is acknowledged, so a loader stopped meanwhile
//!   loses nothing. An insert that failed may have been stored all the
//!   same (ClickHouse went away before its answer arrived), so each retry
//!   first looks up the batch's `event_id`s and inserts only the rest.
//! - Exactly once: a message JetStream delivers again (its loader died
//!   between insert and ack) is looked up by `event_id` first and only
//!   acknowledged if it is already there, so neither the table nor the
//!   per-minute aggregate counts it twice. Two copies of one event in the
//!   same fetch (a message given back and handed over again while its
//!   earlier delivery's ack wait ran out) are stored once.
//! - A message that cannot become a row (not JSON, no UUID `event_id`, a
//!   timestamp ClickHouse cannot hold) is retried `max_deliveries` times,
//!   then written with its error to `dead_letters` and terminated.
//! - SIGTERM/SIGINT: the batch in hand and the one fetched ahead are
//!   finished and acknowledged, then the loader exits.

pub mod row;
pub mod schema;

use crate::config::Config;
use crate::sinks::nats::{self as nats_sink, DESTINATION_HEADER, NatsError, RECEIVED_AT_HEADER};
use async_nats::jetstream::{self, AckKind, consumer::pull};
use axum::Router;
use axum::routing::get;
use futures_util::StreamExt;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use row::{DeadLetterRow, EventRow};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A failpoint: with this set in the environment the loader exits right
/// after its first insert, before acknowledging it, as a crash would. The
/// tests use it to prove that a redelivered batch is not counted twice.
pub const CRASH_AFTER_INSERT: &str = "WRAITH_LOADER_CRASH_AFTER_INSERT";

/// How long past its `expires` a fetch may take before it is given up.
const FETCH_GRACE: Duration = Duration::from_secs(10);

/// The longest one insert may take before it is tried again: sending the
/// rows, and then ClickHouse's answer.
const INSERT_SEND_TIMEOUT: Duration = Duration::from_secs(60);
const INSERT_END_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest a lookup of redelivered events may take before it is retried.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the loader stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(
        "no ClickHouse URL: pass --clickhouse URL, set CLICKHOUSE_URL, or loader.clickhouse_url in the config"
    )]
    NoClickHouse,
    #[error("no NATS URL: pass --nats URL, set NATS_URL, or sinks.nats.url in the config")]
    NoNats,
    #[error(transparent)]
    Nats(#[from] NatsError),
    #[error("JetStream consumer `{consumer}`: {message}")]
    Consumer { consumer: String, message: String },
    #[error("cannot serve loader metrics on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// The loader's metrics (`/metrics` on `loader.metrics_listen`).
pub struct LoaderMetrics {
    registry: prometheus_client::registry::Registry,
    /// Rows inserted into the events tables.
    pub rows_inserted: Counter,
    /// Seconds per successful insert.
    pub insert_seconds: Histogram,
    /// Failed insert attempts (each retried).
    pub insert_errors: Counter,
    /// Messages JetStream delivered more than once.
    pub redeliveries: Counter,
    /// Redelivered events found already loaded and not inserted again.
    pub duplicates_skipped: Counter,
    /// Messages written to the dead-letter table.
    pub dead_letters: Counter,
    /// Messages of the stream not yet delivered to any loader (the lag).
    pub consumer_pending: Gauge,
    /// Messages delivered and not yet acknowledged.
    pub consumer_ack_pending: Gauge,
}

impl LoaderMetrics {
    pub fn new() -> Self {
        let mut registry = prometheus_client::registry::Registry::default();
        let m = LoaderMetrics {
            registry: Default::default(),
            rows_inserted: Counter::default(),
            insert_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            insert_errors: Counter::default(),
            redeliveries: Counter::default(),
            duplicates_skipped: Counter::default(),
            dead_letters: Counter::default(),
            consumer_pending: Gauge::default(),
            consumer_ack_pending: Gauge::default(),
        };
        let r = &mut registry;
        r.register(
            "wraith_loader_rows_inserted",
            "Rows inserted into ClickHouse",
            m.rows_inserted.clone(),
        );
        r.register(
            "wraith_loader_insert_seconds",
            "Duration of one successful ClickHouse insert",
            m.insert_seconds.clone(),
        );
        r.register(
            "wraith_loader_insert_errors",
            "Failed ClickHouse insert attempts (retried)",
            m.insert_errors.clone(),
        );
        r.register(
            "wraith_loader_redeliveries",
            "Messages JetStream delivered more than once",
            m.redeliveries.clone(),
        );
        r.register(
            "wraith_loader_duplicates_skipped",
            "Redelivered events already in ClickHouse, not inserted again",
            m.duplicates_skipped.clone(),
        );
        r.register(
            "wraith_loader_dead_letters",
            "Messages written to the dead-letter table",
            m.dead_letters.clone(),
        );
        r.register(
            "wraith_loader_consumer_pending",
            "Messages in the stream not yet delivered to a loader (consumer lag)",
            m.consumer_pending.clone(),
        );
        r.register(
            "wraith_loader_consumer_ack_pending",
            "Messages delivered to loaders and not yet acknowledged",
            m.consumer_ack_pending.clone(),
        );
        LoaderMetrics { registry, ..m }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

impl Default for LoaderMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A ClickHouse client for the loader's settings (plain HTTP, no
/// compression, no schema validation: what 18.16 and current servers both
/// speak).
pub fn clickhouse_client(config: &Config) -> clickhouse::Client {
    let l = &config.loader;
    clickhouse::Client::default()
        .with_url(l.clickhouse_url.trim_end_matches('/'))
        .with_user(&l.user)
        .with_password(&l.password)
        .with_validation(false)
        .with_compression(clickhouse::Compression::None)
}

/// Run until SIGTERM/SIGINT.
pub async fn run(config: Config) -> Result<(), LoadError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        crate::server::shutdown_signal().await;
        tracing::info!("stopping: finishing the batch in hand");
        let _ = stop_tx.send(true);
    });
    run_until(config, stop_rx).await
}

/// Run until `stop` turns true.
pub async fn run_until(config: Config, mut stop: watch::Receiver<bool>) -> Result<(), LoadError> {
    config.validate()?;
    if config.loader.clickhouse_url.trim().is_empty() {
        return Err(LoadError::NoClickHouse);
    }
    if !config.sinks.nats.enabled() {
        return Err(LoadError::NoNats);
    }
    let metrics = Arc::new(LoaderMetrics::new());
    let listener = tokio::net::TcpListener::bind(config.loader.metrics_listen)
        .await
        .map_err(|source| LoadError::Bind {
            addr: config.loader.metrics_listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| LoadError::Bind {
        addr: config.loader.metrics_listen,
        source,
    })?;
    let m = metrics.clone();
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = m.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        m.encode(),
                    )
                }
            }),
        )
        .route(
            "/health",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    println!("wraith loader metrics on http://{addr}/metrics");

    let n = &config.sinks.nats;
    let l = &config.loader;
    let client = nats_sink::connect(&n.url, "wraith-loader").await?;
    let js = jetstream::ContextBuilder::new()
        .timeout(n.ack_timeout)
        .build(client.clone());
    let stream = {
        let mut logged = false;
        loop {
            match nats_sink::ensure_stream(&js, n).await {
                Ok(s) => break s,
                Err(e) => {
                    if !logged {
                        tracing::warn!(error = %e, "waiting for NATS and the stream");
                        logged = true;
                    }
                    if sleep_or_stop(&mut stop, Duration::from_secs(1)).await {
                        return Ok(());
                    }
                }
            }
        }
    };
    let ch = clickhouse_client(&config);
    let extra_tables: Vec<String> = config
        .destinations
        .keys()
        .map(|d| config.table_of(d))
        .collect();
    {
        let mut logged = false;
        loop {
            match schema::migrate(&ch, &l.database, &l.table, &extra_tables).await {
                Ok(_) => break,
                Err(e) => {
                    if !logged {
                        tracing::warn!(error = %e, url = %l.clickhouse_url, "waiting for ClickHouse to create the schema");
                        logged = true;
                    }
                    if sleep_or_stop(&mut stop, Duration::from_secs(1)).await {
                        return Ok(());
                    }
                }
            }
        }
    }
    let ch = ch.with_database(&l.database);
    let consumer_err = |e: &dyn std::fmt::Display| LoadError::Consumer {
        consumer: l.consumer.clone(),
        message: e.to_string(),
    };
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            &l.consumer,
            pull::Config {
                durable_name: Some(l.consumer.clone()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: l.ack_wait,
                // The loader counts deliveries itself and dead-letters at
                // max_deliveries; JetStream must never give up first.
                max_deliver: -1,
                filter_subject: format!("{}.>", n.subject_prefix),
                max_ack_pending: (l.batch_size.max(1000) * 4) as i64,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| consumer_err(&e))?;
    tracing::info!(stream = %n.stream, consumer = %l.consumer, database = %l.database, table = %l.table, "loader running");
    let sorter = Arc::new(Sorter {
        tables: config
            .destinations
            .keys()
            .map(|d| (d.clone(), config.table_of(d)))
            .collect(),
        default_table: l.table.clone(),
        dlq_subject: format!("{}.{}", n.subject_prefix, crate::sinks::DLQ),
        max_deliveries: i64::from(l.max_deliveries),
        metrics: metrics.clone(),
    });
    let mut loader = Loader {
        ch,
        config: &config,
        metrics,
        waited: Duration::ZERO,
    };
    let fetch_sorted = || {
        let (consumer, sorter) = (consumer.clone(), sorter.clone());
        let (max, expires) = (l.batch_size, l.flush_interval);
        async move {
            let started = Instant::now();
            let messages = fetch(consumer, max, expires).await?;
            let fetched = started.elapsed();
            let fetched_at = Instant::now();
            // Sorting is CPU work: off the runtime's async threads it
            // does not hold up the insert in flight.
            let mut sorted = tokio::task::spawn_blocking(move || sorter.sort(messages))
                .await
                .map_err(|e| e.to_string())?;
            sorted.fetch = fetched;
            sorted.fetched_at = Some(fetched_at);
            Ok::<Sorted, String>(sorted)
        }
    };
    let mut last_info = Instant::now() - Duration::from_secs(10);
    let mut next: Option<tokio::task::JoinHandle<Result<Sorted, String>>> = None;
    let mut clickhouse_away = false;
    loop {
        if *stop.borrow() {
            break;
        }
        if last_info.elapsed() >= Duration::from_secs(2) {
            if let Ok(info) = consumer.get_info().await {
                loader.metrics.consumer_pending.set(info.num_pending as i64);
                loader
                    .metrics
                    .consumer_ack_pending
                    .set(info.num_ack_pending as i64);
            }
            last_info = Instant::now();
        }
        // The next batch is fetched and sorted while this one is inserted,
        // so JetStream, the parsing and ClickHouse work at the same time.
        let waited = Instant::now();
        let batch = match next.take() {
            Some(f) => f.await.unwrap_or_else(|e| Err(e.to_string())),
            None => fetch_sorted().await,
        };
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "fetching from JetStream failed; retrying");
                if sleep_or_stop(&mut stop, Duration::from_millis(500)).await {
                    break;
                }
                continue;
            }
        };
        if batch.messages == 0 {
            continue;
        }
        // A batch fetched ahead waited while the one before it was loaded;
        // if that took long (ClickHouse away, retries), JetStream may
        // already have handed these messages to another loader as if
        // this one had died. Give them back and fetch afresh rather
        // than insert them a second time without the redelivery check.
        if batch.waited_too_long(l.ack_wait) {
            tracing::info!(
                messages = batch.messages,
                "the batch fetched ahead waited too long; giving it back to JetStream"
            );
            batch.give_back().await;
            continue;
        }
        loader.waited = waited.elapsed();
        next = Some(tokio::spawn(fetch_sorted()));
        if !loader.load(batch, &mut stop).await {
            clickhouse_away = true;
            break;
        }
    }
    // The batch fetched ahead was delivered to this loader too: it is
    // loaded and acknowledged like the one before it (one try, as the
    // loader is stopping), so a restart finds nothing redelivered. When
    // ClickHouse is away, or the batch waited so long that JetStream may
    // have handed it to another loader, it goes back at once, for this
    // loader's next start or another loader, instead of after `ack_wait`.
    if let Some(f) = next.take()
        && let Ok(Ok(batch)) = f.await
        && batch.messages > 0
    {
        if clickhouse_away || batch.waited_too_long(l.ack_wait) {
            batch.give_back().await;
        } else {
            tracing::info!(
                messages = batch.messages,
                "loading the batch fetched ahead before stopping"
            );
            loader.load(batch, &mut stop).await;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), client.flush()).await;
    tracing::info!("loader stopped");
    Ok(())
}

/// Fetch up to `max` messages, waiting at most `expires` for them.
async fn fetch(
    consumer: jetstream::consumer::PullConsumer,
    max: usize,
    expires: Duration,
) -> Result<Vec<jetstream::Message>, String> {
    // JetStream ends a fetch at `expires`; a fetch whose end never comes
    // (a server gone mid-request) is given up a while after that, keeping
    // what arrived, so the loader never waits on it for good.
    let deadline = tokio::time::Instant::now() + expires + FETCH_GRACE;
    let batch = tokio::time::timeout_at(
        deadline,
        consumer
            .fetch()
            .max_messages(max)
            .expires(expires)
            .messages(),
    )
    .await
    .map_err(|_| format!("no answer to a fetch within {:?}", expires + FETCH_GRACE))?
    .map_err(|e| e.to_string())?;
    let mut batch = std::pin::pin!(batch);
    let mut messages = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, batch.next()).await {
            Ok(Some(Ok(m))) => messages.push(m),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                tracing::debug!(error = %e, "fetch ended early");
                break;
            }
            Err(_) => {
                tracing::warn!(
                    messages = messages.len(),
                    "a fetch did not end {FETCH_GRACE:?} after it expired; keeping what arrived"
                );
                break;
            }
        }
    }
    Ok(messages)
}

/// Sleep, or return `true` at once when asked to stop.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    let stopped = tokio::select! {
        _ = tokio::time::sleep(d) => None,
        _ = stop.wait_for(|s| *s) => Some(true),
    };
    stopped.unwrap_or_else(|| *stop.borrow())
}

struct Loader<'a> {
    ch: clickhouse::Client,
    config: &'a Config,
    metrics: Arc<LoaderMetrics>,
    /// How long the batch in hand was waited for after the previous one.
    waited: Duration,
}

/// What turns fetched messages into rows; shared with the task that
/// fetches the next batch, so that batch is parsed while this one is
/// inserted.
struct Sorter {
    /// Table of each destination that has its own.
    tables: HashMap<String, String>,
    default_table: String,
    dlq_subject: String,
    max_deliveries: i64,
    metrics: Arc<LoaderMetrics>,
}

/// A fetched batch, sorted: rows by table, and what to do with each message.
#[derive(Default)]
struct Sorted {
    messages: usize,
    /// Messages whose event was already in this batch.
    duplicates: usize,
    rows: HashMap<String, Vec<EventRow>>,
    /// Rows of messages delivered before, which may already be loaded.
    redelivered: Vec<(String, uuid::Uuid)>,
    ack: Vec<jetstream::Message>,
    retry: Vec<jetstream::Message>,
    dead: Vec<(jetstream::Message, DeadLetterRow)>,
    /// Time spent fetching and sorting.
    fetch: Duration,
    sort: Duration,
    /// When the fetch ended: JetStream's `ack_wait` runs from about then.
    fetched_at: Option<Instant>,
}

impl Sorted {
    /// Fetched so long ago that JetStream may have handed these messages to
    /// another loader (past half of `ack_wait`).
    fn waited_too_long(&self, ack_wait: Duration) -> bool {
        self.fetched_at.is_some_and(|t| t.elapsed() >= ack_wait / 2)
    }

    /// Give every message back to JetStream at once (a nak), instead of
    /// after `ack_wait`.
    async fn give_back(&self) {
        for m in self.all_messages() {
            let _ = m.ack_with(AckKind::Nak(None)).await;
        }
    }

    /// Every message of the batch, whatever was decided for it.
    fn all_messages(&self) -> impl Iterator<Item = &jetstream::Message> {
        let dead = self.dead.iter().map(|(m, _)| m);
        self.ack.iter().chain(&self.retry).chain(dead)
    }
}

impl Sorter {
    fn sort(&self, messages: Vec<jetstream::Message>) -> Sorted {
        let started = Instant::now();
        let mut out = Sorted {
            messages: messages.len(),
            ack: Vec::with_capacity(messages.len()),
            ..Default::default()
        };
        let mut seen: HashSet<(&str, uuid::Uuid)> = HashSet::with_capacity(messages.len());
        for m in messages {
            let (delivered, seq) = m
                .info()
                .map(|i| (i.delivered, i.stream_sequence))
                .unwrap_or((1, 0));
            if delivered > 1 {
                self.metrics.redeliveries.inc();
            }
            let header = |name: &str| {
                m.headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .map(|v| v.as_str())
            };
            if m.subject.as_str() == self.dlq_subject {
                let row = DeadLetterRow {
                    at: (row::now_ms() / 1000) as u32,
                    source: "gateway".into(),
                    subject: m.subject.to_string(),
                    stream_sequence: seq,
                    deliveries: delivered as u32,
                    error: dead_letter_reason(&m.payload),
                    payload: String::from_utf8_lossy(&m.payload).into_owned(),
                };
                out.dead.push((m, row));
                continue;
            }
            let destination = header(DESTINATION_HEADER).unwrap_or_else(|| {
                m.subject
                    .as_str()
                    .rsplit('.')
                    .next()
                    .unwrap_or(crate::sinks::DEFAULT_DESTINATION)
            });
            let received = header(RECEIVED_AT_HEADER).and_then(|v| v.parse::<i64>().ok());
            match row::event_row(&m.payload, destination, received) {
                Ok(r) => {
                    let table = self.tables.get(destination).unwrap_or(&self.default_table);
                    if !seen.insert((table.as_str(), r.event_id)) {
                        // The same event twice in one fetch: JetStream can
                        // hand over a message again (its ack wait ran out)
                        // next to a copy given back earlier. Stored once,
                        // both acknowledged.
                        self.metrics.duplicates_skipped.inc();
                        out.duplicates += 1;
                        out.ack.push(m);
                        continue;
                    }
                    if delivered > 1 {
                        out.redelivered.push((table.clone(), r.event_id));
                    }
                    match out.rows.get_mut(table) {
                        Some(list) => list.push(r),
                        None => {
                            // Sized for the whole batch: most batches go to
                            // one table, and growing a list of 10,000 rows
                            // copies it over and over.
                            let mut list = Vec::with_capacity(out.messages);
                            list.push(r);
                            out.rows.insert(table.clone(), list);
                        }
                    }
                    out.ack.push(m);
                }
                Err(error) if delivered >= self.max_deliveries => {
                    tracing::warn!(%error, stream_sequence = seq, deliveries = delivered, "message cannot be loaded; moving it to the dead-letter table");
                    let row = DeadLetterRow {
                        at: (row::now_ms() / 1000) as u32,
                        source: "loader".into(),
                        subject: m.subject.to_string(),
                        stream_sequence: seq,
                        deliveries: delivered as u32,
                        error,
                        payload: String::from_utf8_lossy(&m.payload).into_owned(),
                    };
                    out.dead.push((m, row));
                }
                Err(error) => {
                    tracing::debug!(%error, stream_sequence = seq, deliveries = delivered, "message cannot be loaded; it will be retried");
                    out.retry.push(m);
                }
            }
        }
        out.sort = started.elapsed();
        out
    }
}

#[derive(clickhouse::Row, serde::Deserialize)]
struct Id {
    id: String,
}

impl Loader<'_> {
    /// Load one fetched batch. Returns `false` when the loader must stop
    /// without having finished it (it was asked to stop while ClickHouse was
    /// away; nothing of the batch was acknowledged).
    async fn load(&mut self, batch: Sorted, stop: &mut watch::Receiver<bool>) -> bool {
        let started = Instant::now();
        let Sorted {
            messages: fetched,
            duplicates,
            mut rows,
            redelivered,
            ack,
            retry,
            dead,
            fetch: fetch_time,
            sort: sort_time,
            fetched_at: _,
        } = batch;
        // Redelivered events may have been inserted by a loader that died
        // before its ack: insert only those that are not there.
        if !redelivered.is_empty() {
            let Some(present) = self.present(&redelivered, stop).await else {
                return false;
            };
            for (table, list) in rows.iter_mut() {
                let before = list.len();
                list.retain(|r| !present.contains(&(table.clone(), r.event_id)));
                self.metrics
                    .duplicates_skipped
                    .inc_by((before - list.len()) as u64);
            }
        }
        let checked = started.elapsed();
        let in_hand: Vec<&jetstream::Message> =
            ack.iter().chain(dead.iter().map(|(m, _)| m)).collect();
        for (table, list) in rows.iter_mut() {
            if list.is_empty() {
                continue;
            }
            if !self.insert_events(stop, &in_hand, table, list).await {
                return false;
            }
            self.metrics.rows_inserted.inc_by(list.len() as u64);
        }
        if !dead.is_empty() {
            let list: Vec<DeadLetterRow> = dead.iter().map(|(_, r)| r.clone()).collect();
            if !self
                .with_retry(stop, &in_hand, "dead-letter insert", || {
                    self.insert("dead_letters", &list)
                })
                .await
            {
                return false;
            }
            self.metrics.dead_letters.inc_by(list.len() as u64);
        }
        let inserted = started.elapsed();
        if std::env::var_os(CRASH_AFTER_INSERT).is_some() {
            // A failpoint for the tests: die where a crash hurts most.
            tracing::error!("{CRASH_AFTER_INSERT} is set: exiting between insert and ack");
            std::process::exit(86);
        }
        for m in &ack {
            if let Err(e) = m.ack().await {
                tracing::warn!(error = %e, "ack failed; JetStream will redeliver and the loader will skip it as loaded");
            }
        }
        for (m, _) in &dead {
            let _ = m.ack_with(AckKind::Term).await;
        }
        for m in &retry {
            let _ = m.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await;
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        tracing::debug!(
            messages = fetched,
            duplicates,
            fetch_ms = ms(fetch_time),
            sort_ms = ms(sort_time),
            waited_ms = ms(self.waited),
            check_ms = ms(checked),
            insert_ms = ms(inserted - checked),
            ack_ms = ms(started.elapsed() - inserted),
            "batch loaded"
        );
        true
    }

    /// Which of these (table, event_id) pairs are already loaded.
    async fn present(
        &self,
        ids: &[(String, uuid::Uuid)],
        stop: &mut watch::Receiver<bool>,
    ) -> Option<HashSet<(String, uuid::Uuid)>> {
        let mut by_table: HashMap<&str, Vec<uuid::Uuid>> = HashMap::new();
        for (t, id) in ids {
            by_table.entry(t.as_str()).or_default().push(*id);
        }
        let mut found = HashSet::new();
        for (table, list) in by_table {
            let mut delay = Duration::from_millis(200);
            loop {
                match self.lookup(table, &list).await {
                    Ok(ids) => {
                        found.extend(ids.into_iter().map(|u| (table.to_string(), u)));
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "looking up redelivered events failed; retrying");
                        if sleep_or_stop(stop, delay).await {
                            return None;
                        }
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
        Some(found)
    }

    /// One try at finding which of `ids` are in `table`. The ids go in
    /// chunks small enough for ClickHouse's `max_query_size` (256 KiB).
    async fn lookup(
        &self,
        table: &str,
        ids: &[uuid::Uuid],
    ) -> Result<HashSet<uuid::Uuid>, clickhouse::error::Error> {
        const CHUNK: usize = 4000;
        let mut found = HashSet::new();
        for chunk in ids.chunks(CHUNK) {
            let mut sql =
                format!("SELECT toString(event_id) AS id FROM {table} WHERE event_id IN (");
            for (i, id) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push('\'');
                sql.push_str(&id.hyphenated().to_string());
                sql.push('\'');
            }
            sql.push(')');
            let rows = tokio::time::timeout(LOOKUP_TIMEOUT, self.ch.query(&sql).fetch_all::<Id>())
                .await
                .unwrap_or_else(|_| {
                    Err(clickhouse::error::Error::Custom(format!(
                        "no answer within {LOOKUP_TIMEOUT:?}"
                    )))
                })?;
            found.extend(
                rows.iter()
                    .filter_map(|r| uuid::Uuid::parse_str(&r.id).ok()),
            );
        }
        Ok(found)
    }

    /// Insert the events of one table, retrying until they are in or the
    /// loader is asked to stop (`false`). A failed insert may still have
    /// been stored (ClickHouse went away after writing the part, before its
    /// answer arrived), so every retry first drops the rows that are there:
    /// the table and the per-minute aggregate see each event once.
    async fn insert_events(
        &self,
        stop: &mut watch::Receiver<bool>,
        in_hand: &[&jetstream::Message],
        table: &str,
        list: &mut Vec<EventRow>,
    ) -> bool {
        let mut backoff = Backoff::new("insert");
        loop {
            match self.insert_rest(table, list, backoff.failures > 0).await {
                Ok(()) => {
                    backoff.succeeded();
                    return true;
                }
                Err(e) => {
                    if !self.failed(&mut backoff, e, in_hand, stop).await {
                        return false;
                    }
                }
            }
        }
    }

    /// One try at [`Loader::insert_events`]: after a failed try, first drop
    /// the rows that are there.
    async fn insert_rest(
        &self,
        table: &str,
        list: &mut Vec<EventRow>,
        retry: bool,
    ) -> Result<(), clickhouse::error::Error> {
        if retry {
            let ids: Vec<uuid::Uuid> = list.iter().map(|r| r.event_id).collect();
            let present = self.lookup(table, &ids).await?;
            if !present.is_empty() {
                let before = list.len();
                list.retain(|r| !present.contains(&r.event_id));
                let skipped = before - list.len();
                self.metrics.duplicates_skipped.inc_by(skipped as u64);
                tracing::info!(
                    rows = skipped,
                    "a failed insert was stored after all; inserting only the rest"
                );
            }
        }
        if list.is_empty() {
            return Ok(());
        }
        self.insert(table, list).await
    }

    async fn insert<T: clickhouse::RowOwned + clickhouse::RowWrite>(
        &self,
        table: &str,
        rows: &[T],
    ) -> Result<(), clickhouse::error::Error> {
        let started = Instant::now();
        let mut insert = self
            .ch
            .insert::<T>(table)
            .await?
            .with_timeouts(Some(INSERT_SEND_TIMEOUT), Some(INSERT_END_TIMEOUT));
        for r in rows {
            insert.write(r).await?;
        }
        insert.end().await?;
        self.metrics
            .insert_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Retry `f` with backoff until it succeeds (`true`) or the loader is
    /// asked to stop (`false`).
    async fn with_retry<F, Fut>(
        &self,
        stop: &mut watch::Receiver<bool>,
        in_hand: &[&jetstream::Message],
        what: &'static str,
        f: F,
    ) -> bool
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), clickhouse::error::Error>>,
    {
        let mut backoff = Backoff::new(what);
        loop {
            match f().await {
                Ok(()) => {
                    backoff.succeeded();
                    return true;
                }
                Err(e) => {
                    if !self.failed(&mut backoff, e, in_hand, stop).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Count a failed ClickHouse call and wait before the next try. The
    /// messages in hand get progress acks meanwhile, so JetStream does not
    /// hand them to another loader. `false`: the loader was asked to stop.
    async fn failed(
        &self,
        b: &mut Backoff,
        e: clickhouse::error::Error,
        in_hand: &[&jetstream::Message],
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        b.failures += 1;
        self.metrics.insert_errors.inc();
        if b.failures == 1 || b.failures.is_power_of_two() {
            tracing::warn!(error = %e, attempts = b.failures, "ClickHouse {} failed; keeping the batch and retrying", b.what);
        }
        if b.last_progress.elapsed() >= self.config.loader.ack_wait / 3 {
            for m in in_hand {
                let _ = m.ack_with(AckKind::Progress).await;
            }
            b.last_progress = Instant::now();
        }
        if sleep_or_stop(stop, b.delay).await {
            tracing::warn!("stopping with a batch not loaded; JetStream will deliver it again");
            return false;
        }
        b.delay = (b.delay * 2).min(Duration::from_secs(5));
        true
    }
}

/// The state of retrying one ClickHouse call.
struct Backoff {
    what: &'static str,
    delay: Duration,
    last_progress: Instant,
    failures: u32,
}

impl Backoff {
    fn new(what: &'static str) -> Self {
        Self {
            what,
            delay: Duration::from_millis(200),
            last_progress: Instant::now(),
            failures: 0,
        }
    }

    fn succeeded(&self) {
        if self.failures > 0 {
            tracing::info!(
                attempts = self.failures + 1,
                "ClickHouse {} succeeded after retries",
                self.what
            );
        }
    }
}

/// The reason recorded in a dead letter the gateway published.
fn dead_letter_reason(payload: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| {
            let d = v.get("dlq")?;
            Some(format!(
                "{} by {}: {}",
                d.get("kind")?.as_str()?,
                d.get("plugin")?.as_str()?,
                d.get("reason")?.as_str()?
            ))
        })
        .unwrap_or_else(|| "dead letter from the gateway".into())
}
