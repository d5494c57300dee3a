//! Realistic telemetry: the gateway end-to-end bench's events
//! (`gateway/benches/support/events.rs`, included by path, so this crate
//! does not depend on the gateway): command lines, Python stack traces, config dumps and
//! plain messages with a nested context, 500-800 bytes as JSON each; one in
//! four carries an e-mail address, one in eight an IP address, one in
//! sixteen a vendor token. Deterministic.

pub mod sweep;

#[path = "../../../../gateway/benches/support/events.rs"]
#[allow(dead_code)]
mod events;

pub use events::*;
