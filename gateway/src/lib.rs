//! # The Wraith gateway
//!
//! Tools send telemetry events over HTTP; the gateway checks them, runs every
//! batch through a chain of sandboxed WebAssembly plugins chosen by the
//! operator (scrubbing, validation, enrichment, routing) and stores what
//! survives. One event's way through:
//!
//! ```text
//! POST /v1/events ─▶ ingest ──────────▶ gateway::submit ──▶ pipeline::Chain::run ──▶ sinks
//!  (gzip, limits)    (parse, validate,   (bounded batches     (plugin 1 … plugin n,    (file: fsync; nats:
//!                     assign ids)         in flight)           host: deadline, memory)   JetStream acks; then 2xx)
//!
//! gateway load (loader): JetStream ─▶ batch ─▶ ClickHouse insert ─▶ ack
//! ```
//!
//! The main trade-off is when to answer the client: only after every sink has
//! made the events durable. A 2xx therefore means "stored" (or deliberately
//! dropped, or dead-lettered with a reason), never "queued in memory".
//!
//! Modules: [`config`] (the typed TOML tree), [`ingest`] (HTTP), [`pipeline`]
//! (chain, manifest, reload), [`host`] (wasmtime; the only module that knows
//! WIT types), [`sinks`] (file, NATS JetStream), [`loader`] (`gateway
//! load`), [`telemetry`] (logs and metrics), [`server`] (startup and
//! shutdown), [`ops`] (pid file, config reload on SIGHUP), [`status`] (the
//! status page), [`activity`] (throughput history, dead-letter reasons),
//! [`check`] (`gateway check`), [`starter`] (`gateway plugin new` and
//! `gateway plugin build`).

pub mod activity;
pub mod check;
pub mod config;
pub mod gateway;
pub mod host;
pub mod ingest;
pub mod loader;
pub mod ops;
pub mod pipeline;
pub mod server;
pub mod sinks;
pub mod starter;
pub mod status;
pub mod telemetry;
pub mod tls;

pub use server::{run, run_with};
