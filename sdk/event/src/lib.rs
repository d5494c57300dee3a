//! The Wraith event model.
//!
//! An event is a JSON object. A few fields are well known and checked at ingest
//! ([`validate`]): `event_id`, `timestamp`, `level`, `event_type`, `tool`,
//! `command`, `duration_ms`, `error_type`, `context`. Every other field, nested
//! objects included, is kept as sent.
//!
//! [`flat`] is the layout in which batches of events cross the plugin boundary;
//! the gateway encodes with it and the plugin SDK decodes with it, so both sides
//! share one implementation.
//!
//! [`wire`] (feature `wire`) holds the HTTP API's shapes shared by the gateway,
//! `wraith-daemon` and `wraith-sdk`: the event, the batch answer, the error body.
//!
//! This crate has no async runtime and compiles to `wasm32-wasip2`.

#![warn(missing_docs)]

#[cfg(feature = "validate")]
pub mod body;
pub mod destination;
pub mod flat;
pub mod path;
#[cfg(feature = "validate")]
pub mod validate;
#[cfg(feature = "wire")]
pub mod wire;
mod words;

pub use serde_json::{Map, Value};

/// Event severities, lowest first, as written on the wire.
pub const LEVELS: [&str; 6] = ["debug", "info", "warning", "error", "critical", "fatal"];
