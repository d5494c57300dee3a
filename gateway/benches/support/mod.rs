//! Realistic telemetry for the benchmarks: what tools actually send, not a
//! dozen short fields. Events rotate through command lines, stack traces,
//! config dumps and plain messages with a nested context; each is 500–800
//! bytes as JSON; one in four carries an e-mail address, one in eight an IP
//! address, one in sixteen a vendor token. Deterministic, so every chain in a
//! run sees the same bodies.

#![allow(dead_code)]

pub mod wrk;

mod events;

pub use events::*;
